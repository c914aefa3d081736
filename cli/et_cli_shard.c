/*
 * The shards of a sharded stream (docs/stream.md, "Sharded streams"): the
 * modules' shards=N is the command's --shards N, and both name shard i
 * with the core's et_stream_shard_key(), so the command reads exactly the
 * keys the modules write.
 */

#include <stdlib.h>
#include <string.h>

#include "et_cli.h"
#include "et_id.h"
#include "et_stream.h"


int
et_cli_shards_parse(const char *name, const char *value, unsigned *n)
{
    int64_t  v;

    /* the modules' rule: decimal digits only, 1 to 256 */
    if (et_parse_int((const uint8_t *) value, strlen(value), 1,
                     ET_STREAM_SHARDS_MAX, &v)
        != ET_OK)
    {
        et_cli_error("invalid %s \"%s\": a number from 1 to %d, the "
                     "shards=N of the modules' stream", name, value,
                     ET_STREAM_SHARDS_MAX);
        return ET_ERROR;
    }

    *n = (unsigned) v;

    return ET_OK;
}


int
et_cli_shards_init(et_cli_t *cli)
{
    char        *p;
    size_t       klen, size, len;
    unsigned     i;
    const char  *err;

    klen = strlen(cli->stream);

    /* the modules' own check; one shard reads any key, as before */
    if (cli->shards > 1
        && et_stream_key_check((const uint8_t *) cli->stream, klen,
                               cli->shards, &err)
           != ET_OK)
    {
        et_cli_error("--stream \"%s\": %s", cli->stream, err);
        return ET_ERROR;
    }

    size = klen + ET_STREAM_SHARD_SUFFIX_MAX + 1;

    cli->keys = calloc(cli->shards, sizeof(char *));
    cli->stream_shown = malloc(klen + sizeof(" (256 shards)"));

    if (cli->keys == NULL || cli->stream_shown == NULL) {
        et_cli_error("out of memory");
        return ET_ERROR;
    }

    if (cli->shards == 1) {
        memcpy(cli->stream_shown, cli->stream, klen + 1);

    } else {
        sprintf(cli->stream_shown, "%s (%u shards)", cli->stream,
                cli->shards);
    }

    for (i = 0; i < cli->shards; i++) {
        p = malloc(size);

        if (p == NULL) {
            et_cli_error("out of memory");
            return ET_ERROR;
        }

        cli->keys[i] = p;

        len = et_stream_shard_key((uint8_t *) p, size - 1,
                                  (const uint8_t *) cli->stream, klen, i,
                                  cli->shards);

        if (len == 0) {
            et_cli_error("--stream \"%s\": cannot name its shard %u of %u",
                         cli->stream, i, cli->shards);
            return ET_ERROR;
        }

        p[len] = '\0';
    }

    return ET_OK;
}


void
et_cli_shards_free(et_cli_t *cli)
{
    unsigned  i;

    if (cli->keys) {
        for (i = 0; i < cli->shards; i++) {
            free(cli->keys[i]);
        }
    }

    free(cli->keys);
    free(cli->stream_shown);
    cli->keys = NULL;
    cli->stream_shown = NULL;
}


int
et_cli_shard_index(const et_cli_t *cli, const redisReply *key, unsigned hint)
{
    size_t    len;
    unsigned  i, s;

    if (key->type != REDIS_REPLY_STRING) {
        return -1;
    }

    for (i = 0; i < cli->shards; i++) {
        s = (hint + i) % cli->shards;
        len = strlen(cli->keys[s]);

        if (len == key->len && memcmp(cli->keys[s], key->str, len) == 0) {
            return (int) s;
        }
    }

    return -1;
}


unsigned
et_cli_shard_of(const et_cli_t *cli, const char *trace_id)
{
    uint8_t  id[ET_TRACE_ID_LEN];

    if (cli->shards == 1
        || et_hex_decode(id, (const uint8_t *) trace_id, ET_TRACE_ID_LEN)
           != ET_OK)
    {
        return 0;
    }

    return et_stream_shard(id, cli->shards);
}
