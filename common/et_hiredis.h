/*
 * What differs between the hiredis releases edgetrace builds with:
 * 0.14 (Debian 12) and 1.x (Debian 13).
 */

#ifndef ET_HIREDIS_H
#define ET_HIREDIS_H

#include <hiredis/hiredis.h>

/* the element count of a reader's array constructor: int before 1.0 */
#if (HIREDIS_MAJOR >= 1)
typedef size_t  et_redis_count_t;
#else
typedef int     et_redis_count_t;
#endif

#endif /* ET_HIREDIS_H */
