/*
 * libFuzzer: et_keep_parse and et_limit_parse on any bytes.  A rule
 * refused leaves the rules as they were and says why; a rule taken keeps
 * what it names (a status= rule one code at least, a slower= rule a
 * duration from 1ns to 1d), and matching reads no bit outside the set.
 */

#include <stdlib.h>
#include <string.h>

#include "et_keep.h"
#include "et_limit.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int           rc;
    unsigned      s, kept;
    uint32_t      rate;
    et_keep_t     k, before;
    const char   *why;

    et_keep_init(&k);
    before = k;
    why = NULL;

    rc = et_keep_parse(&k, data, size, &why);

    switch (rc) {

    case ET_OK:
        kept = 0;

        for (s = 0; s < 1000; s++) {
            kept += et_keep_match(&k, s, 0) ? 1 : 0;
        }

        if (k.nrules != 1
            || (k.slower_ns == 0 && (kept == 0 || kept > 100))
            || (k.slower_ns != 0 && (kept != 0
                                     || k.slower_ns > ET_KEEP_SLOWER_MAX
                                     || !et_keep_match(&k, 0, UINT64_MAX))))
        {
            __builtin_trap();
        }

        break;

    case ET_ERROR:
        if (why == NULL || memcmp(&k, &before, sizeof(k)) != 0) {
            __builtin_trap();
        }

        break;

    case ET_DECLINED:
        if (memcmp(&k, &before, sizeof(k)) != 0) {
            __builtin_trap();
        }

        break;

    default:
        __builtin_trap();
    }

    why = NULL;
    rate = 0;

    if (et_limit_parse(data, size, &rate, &why) == ET_OK) {
        if (rate == 0 || rate > ET_LIMIT_RATE_MAX) {
            __builtin_trap();
        }

    } else if (why == NULL) {
        __builtin_trap();
    }

    return 0;
}
