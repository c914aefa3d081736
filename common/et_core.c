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


int
et_parse_int(const uint8_t *p, size_t len, int64_t min, int64_t max,
    int64_t *v)
{
    size_t    i;
    uint64_t  n, d;

    if (len == 0 || min < 0 || max < min) {
        return ET_ERROR;
    }

    n = 0;

    for (i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return ET_ERROR;
        }

        d = (uint64_t) (p[i] - '0');

        /* n * 10 + d > max, asked without overflowing */
        if (d > (uint64_t) max || n > ((uint64_t) max - d) / 10) {
            return ET_ERROR;
        }

        n = n * 10 + d;
    }

    if (n < (uint64_t) min) {
        return ET_ERROR;
    }

    *v = (int64_t) n;

    return ET_OK;
}
