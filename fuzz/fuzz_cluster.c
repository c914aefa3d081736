/*
 * libFuzzer: any bytes through hiredis's reader, then the reply, when it
 * is one, through both slot map parsers (et_cluster).  The first byte
 * picks which parser runs first; the map must hold together either way.
 *
 * hiredis 0.14 allocates an array's element vector as soon as it reads
 * the header ("*1400000000"), so the reader here refuses arrays of more
 * than FUZZ_CLUSTER_ELEMENTS: the parsers, not hiredis's allocations, are
 * what is fuzzed.
 */

#include <stdlib.h>

#include <hiredis/hiredis.h>

#include "et_cluster.h"


#define FUZZ_CLUSTER_ELEMENTS  4096


static redisReplyObjectFunctions  fuzz_cluster_fn;
static void *(*fuzz_cluster_create_array)(const redisReadTask *task, int n);


static void *
fuzz_cluster_array(const redisReadTask *task, int n)
{
    if (n > FUZZ_CLUSTER_ELEMENTS) {
        return NULL;
    }

    return fuzz_cluster_create_array(task, n);
}


static void
fuzz_cluster_check(int rc, const char *err, const et_cluster_map_t *map)
{
    unsigned                  s, covered;
    const et_cluster_node_t  *node;

    if (rc != ET_OK) {
        if (err == NULL || map->nnodes != 0 || map->covered != 0
            || et_cluster_node(map, 0) != NULL)
        {
            __builtin_trap();
        }

        return;
    }

    if (map->nnodes > ET_CLUSTER_MASTERS_MAX) {
        __builtin_trap();
    }

    covered = 0;

    for (s = 0; s < ET_CLUSTER_SLOTS; s++) {
        node = et_cluster_node(map, s);

        if (node == NULL) {
            continue;
        }

        covered++;

        if (node->port < 1 || node->port > 65535
            || strlen(node->host) > ET_CLUSTER_HOST_MAX)
        {
            __builtin_trap();
        }
    }

    if (covered != map->covered) {
        __builtin_trap();
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                rc;
    void              *reply;
    const char        *err;
    redisReader       *rd;
    et_cluster_map_t  *map;

    if (size < 1) {
        return 0;
    }

    rd = redisReaderCreate();

    if (rd == NULL) {
        return 0;
    }

    /* NULL from createArray: the reader fails with "Out of memory" */
    if (fuzz_cluster_create_array == NULL) {
        fuzz_cluster_fn = *rd->fn;
        fuzz_cluster_create_array = fuzz_cluster_fn.createArray;
        fuzz_cluster_fn.createArray = fuzz_cluster_array;
    }

    rd->fn = &fuzz_cluster_fn;

    reply = NULL;

    if (redisReaderFeed(rd, (const char *) data + 1, size - 1) != REDIS_OK
        || redisReaderGetReply(rd, &reply) != REDIS_OK
        || reply == NULL)
    {
        redisReaderFree(rd);
        return 0;
    }

    map = malloc(sizeof(et_cluster_map_t));

    err = NULL;
    rc = (data[0] & 1) ? et_cluster_shards_parse(reply, map, &err)
                       : et_cluster_slots_parse(reply, map, &err);
    fuzz_cluster_check(rc, err, map);

    err = NULL;
    rc = (data[0] & 1) ? et_cluster_slots_parse(reply, map, &err)
                       : et_cluster_shards_parse(reply, map, &err);
    fuzz_cluster_check(rc, err, map);

    free(map);
    freeReplyObject(reply);
    redisReaderFree(rd);

    return 0;
}
