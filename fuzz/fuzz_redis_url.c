/*
 * libFuzzer: et_redis_url_parse and et_redis_seeds_parse on the same
 * bytes
 */

#include <string.h>

#include "et_redis_url.h"


static void
check(int rc, const et_redis_url_t *url, const char *err, int cluster)
{
    size_t  i;

    if (rc != ET_OK) {
        if (err == NULL) {
            __builtin_trap();
        }

        return;
    }

    if (strlen(url->host) >= sizeof(url->host)
        || strlen(url->path) >= sizeof(url->path)
        || (url->path[0] == '\0' && (url->port < 1 || url->port > 65535))
        || url->nseeds > ET_REDIS_SEEDS_MAX
        || url->cluster != cluster
        || (url->path[0] == '\0' && url->nseeds == 0)
        || (!cluster && url->nseeds > 1)
        || (cluster && (url->db != 0 || url->path[0] != '\0')))
    {
        __builtin_trap();
    }

    for (i = 0; i < url->nseeds; i++) {
        if (strlen(url->seeds[i].host) >= sizeof(url->seeds[i].host)
            || url->seeds[i].host[0] == '\0'
            || url->seeds[i].port < 1 || url->seeds[i].port > 65535)
        {
            __builtin_trap();
        }
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int              rc;
    const char      *err;
    et_redis_url_t   url;

    err = NULL;
    rc = et_redis_url_parse(data, size, &url, &err);
    check(rc, &url, err, 0);

    err = NULL;
    rc = et_redis_seeds_parse(data, size, &url, &err);
    check(rc, &url, err, 1);

    return 0;
}
