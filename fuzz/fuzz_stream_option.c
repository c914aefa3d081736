/*
 * libFuzzer: et_stream_parse_option, et_stream_key_check and
 * et_stream_init on any bytes.  The input is cut at spaces into options,
 * given one after the other as a directive gives them; its first word is
 * also the stream key.  With the options taken, a span is encoded: its
 * entry must be exactly et_entry_size() bytes, and go to its shard's key,
 * whose slot is in the shard's range (docs/stream.md, "Sharded streams").
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdlib.h>
#include <string.h>

#include "et_slot.h"
#include "et_stream.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t            len, klen, n;
    uint8_t          *buf, *entry, name[ET_STREAM_KEY_MAX
                                         + ET_STREAM_SHARD_SUFFIX_MAX];
    unsigned          i;
    const char       *err;
    et_span_t         span;
    et_stream_t       st;
    const uint8_t    *p, *last, *word;
    et_stream_opts_t  opts, before;

    et_stream_opts_init(&opts);

    p = data;
    last = data + size;
    klen = 0;

    for (n = 0; p <= last; n++) {
        word = p;
        p = memchr(p, ' ', (size_t) (last - p));
        if (p == NULL) {
            p = last;
        }

        len = (size_t) (p - word);

        if (n == 0) {
            klen = len;
        }

        err = NULL;
        before = opts;

        if (et_stream_parse_option(word, len, &opts, &err) != ET_OK
            && (err == NULL || memcmp(&opts, &before, sizeof(opts)) != 0))
        {
            __builtin_trap();
        }

        if (opts.shards == 0 || opts.shards > ET_STREAM_SHARDS_MAX) {
            __builtin_trap();
        }

        p++;
    }

    err = NULL;

    if (et_stream_key_check(data, klen, opts.shards, &err) != ET_OK) {
        if (err == NULL) {
            __builtin_trap();
        }

        /* a key refused here is refused by et_stream_init too */
        opts.maxlen = 1000;
    }

    buf = malloc(ET_STREAM_BUF_SIZE(klen, opts.shards));

    if (et_stream_init(&st, buf, data, klen, opts.maxlen, opts.shards, 0)
        != ET_OK)
    {
        if (et_stream_key_check(data, klen, opts.shards, &err) == ET_OK
            && opts.maxlen <= INT64_MAX)
        {
            __builtin_trap();
        }

        free(buf);
        return 0;
    }

    /* a span whose trace id is the input's last bytes */
    memset(&span, 0, sizeof(et_span_t));
    memcpy(span.trace_id + 16 - (size < 16 ? size : 16),
           data + size - (size < 16 ? size : 16), size < 16 ? size : 16);

    len = et_entry_size(&st, &span);
    entry = malloc(len);

    if (et_entry_write(&st, &span, entry) != entry + len
        || len > et_entry_size_max(&st, &span)
        || len < et_entry_size_min(&st))
    {
        __builtin_trap();
    }

    i = et_stream_shard(span.trace_id, opts.shards);
    n = et_stream_shard_key(name, sizeof(name), data, klen, i, opts.shards);

    if (n == 0 || memmem(entry, len, name, n) == NULL
        || (opts.shards > 1
            && et_slot(name, n) * opts.shards / ET_SLOTS != i))
    {
        __builtin_trap();
    }

    free(entry);
    free(buf);

    return 0;
}
