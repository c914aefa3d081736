/* libFuzzer: et_tracestate_parse on any bytes, split into lines on '\n' */

#include <string.h>

#include "et_w3c.h"


#define LINES  40


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t       i, n, start, len;
    et_str_t     lines[LINES];
    et_w3c_rc_t  rc;
    uint8_t      out[ET_TRACESTATE_MAX], again[ET_TRACESTATE_MAX];

    n = 0;
    start = 0;

    for (i = 0; i <= size && n < LINES; i++) {
        if (i == size || data[i] == '\n') {
            lines[n].data = data + start;
            lines[n].len = i - start;
            n++;
            start = i + 1;
        }
    }

    len = 12345;
    rc = et_tracestate_parse(lines, n, out, &len);

    if (rc != ET_W3C_OK) {
        if (len != 0) {
            __builtin_trap();
        }

        return 0;
    }

    if (len > ET_TRACESTATE_MAX) {
        __builtin_trap();
    }

    /* what we forward parses to itself */
    lines[0].data = out;
    lines[0].len = len;

    if (et_tracestate_parse(lines, 1, again, &n) != ET_W3C_OK
        || n != len || memcmp(out, again, len) != 0)
    {
        __builtin_trap();
    }

    return 0;
}
