/* libFuzzer: et_redis_url_parse on any bytes */

#include <string.h>

#include "et_redis_url.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char      *err;
    et_redis_url_t   url;

    err = NULL;

    if (et_redis_url_parse(data, size, &url, &err) == ET_OK) {
        if (strlen(url.host) >= sizeof(url.host)
            || strlen(url.path) >= sizeof(url.path)
            || (url.path[0] == '\0' && (url.port < 1 || url.port > 65535)))
        {
            __builtin_trap();
        }

    } else if (err == NULL) {
        __builtin_trap();
    }

    return 0;
}
