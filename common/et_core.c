/*
 * edgetrace core: small helpers shared by every core file.
 */

#include "et_core.h"


et_str_t
et_str_trim_ows(const uint8_t *p, size_t len)
{
    et_str_t  s;

    while (len && (p[0] == ' ' || p[0] == '\t')) {
        p++;
        len--;
    }

    while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) {
        len--;
    }

    s.len = len;
    s.data = p;

    return s;
}
