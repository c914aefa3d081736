/* libFuzzer: et_b3multi_parse on five values split on '\n' */

#include <string.h>

#include "et_b3.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t        i, n, start;
    et_str_t      v[5];
    et_context_t  ctx;

    memset(v, 0, sizeof(v));
    n = 0;
    start = 0;

    for (i = 0; i <= size && n < 5; i++) {
        if (i == size || data[i] == '\n') {
            v[n].data = data + start;
            v[n].len = i - start;
            n++;
            start = i + 1;
        }
    }

    (void) et_b3multi_parse(v[0], v[1], v[2], v[3], v[4], &ctx);

    return 0;
}
