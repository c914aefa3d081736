/* libFuzzer: et_stream_parse_option and et_stream_init on any bytes */

#include <stdlib.h>

#include "et_stream.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t      *buf;
    uint64_t      maxlen;
    const char   *err;
    et_stream_t   st;

    err = NULL;

    if (et_stream_parse_option(data, size, &maxlen, &err) != ET_OK) {
        if (err == NULL) {
            __builtin_trap();
        }

        maxlen = 1000;
    }

    /* the same bytes as a stream key */
    buf = malloc(ET_STREAM_PREFIX_SIZE(size));
    (void) et_stream_init(&st, buf, data, size, maxlen, 0);
    free(buf);

    return 0;
}
