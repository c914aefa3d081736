/*
 * The stream entry (docs/stream.md, "The stream entry"), encoded directly as
 * the RESP "XADD <key> MAXLEN ~ <maxlen> * field value ..." command, to the
 * key of the span's shard (docs/stream.md, "Sharded streams").
 *
 * Everything constant (the command, the key of each shard, the trim
 * options, field names and their length prefixes) is built once by
 * et_stream_init(); encoding a span writes only the argument count, ids,
 * times and values.
 */

#ifndef ET_STREAM_H
#define ET_STREAM_H


#include "et_core.h"
#include "et_span.h"


#define ET_STREAM_DEFAULT_KEY     "edgetrace:spans"
#define ET_STREAM_DEFAULT_MAXLEN  1000000
#define ET_STREAM_KEY_MAX         1024

/* shards=N: N from 1 to ET_STREAM_SHARDS_MAX (docs/stream.md) */
#define ET_STREAM_SHARDS_MAX      256

/* what a shard adds to the key: ":<shard>{<tag>}", the tag below 10^5 */
#define ET_STREAM_SHARD_SUFFIX_MAX  (1 + 3 + 1 + 5 + 1)

/* attribute values (and names) longer than this are cut */
#define ET_VALUE_MAX_DEFAULT      1024


typedef struct {
    unsigned    prefix_args;  /* the arguments each prefix holds */
    unsigned    shards;
    size_t      prefix_max;   /* the longest prefix, and the shortest */
    size_t      prefix_min;
    size_t      value_max;
    uint64_t    maxlen;       /* 0: no trimming */

    /* per shard, from "$4\r\nXADD\r\n" up to "*\r\n" */
    et_str_t    prefix[ET_STREAM_SHARDS_MAX];
} et_stream_t;


/* the options after the stream key, each given at most once */
typedef struct {
    uint64_t    maxlen;
    unsigned    shards;
    unsigned    given;        /* a bit per option: maxlen, shards */
} et_stream_opts_t;


/* the bytes et_stream_init() needs for a key of "klen" bytes, one shard */
#define ET_STREAM_PREFIX_SIZE(klen)  ((klen) + 96)

/* ... and for "n" shards */
#define ET_STREAM_BUF_SIZE(klen, n)                                           \
    ((n) <= 1 ? ET_STREAM_PREFIX_SIZE(klen)                                   \
              : (n) * ET_STREAM_PREFIX_SIZE((klen)                            \
                                            + ET_STREAM_SHARD_SUFFIX_MAX))


/*
 * The name of shard "i" (0 <= i < n) of the "n" shards of stream "key"
 * (docs/stream.md, "Sharded streams"): "key" itself when n is 1, else
 * "<key>:<i>{<j>}", where j is the smallest number whose decimal digits
 * hash to a Redis Cluster slot in the i-th of n equal ranges of slots.
 * Writes it at "buf" ("size" bytes, klen + ET_STREAM_SHARD_SUFFIX_MAX are
 * enough), without a NUL, and returns its length; 0, with nothing
 * written, for an empty key, n outside 1 to ET_STREAM_SHARDS_MAX, i not
 * below n, a key holding "{" when n > 1 (its own hash tag would place
 * every shard on one slot), or a buffer too small.
 */
size_t et_stream_shard_key(uint8_t *buf, size_t size, const uint8_t *key,
    size_t klen, unsigned i, unsigned n);


/*
 * The shard of a span, 0 to n - 1 (docs/stream.md, "Sharded streams"):
 * the last 8 bytes of its trace id, a big-endian number, modulo n.  Every
 * span of a trace lands in one shard, whichever server wrote it.
 */
static inline unsigned
et_stream_shard(const uint8_t *trace_id, unsigned n)
{
    uint64_t  v;
    unsigned  i;

    v = 0;

    for (i = 8; i < 16; i++) {
        v = v << 8 | trace_id[i];
    }

    return (unsigned) (v % n);
}


/* the defaults: maxlen ET_STREAM_DEFAULT_MAXLEN, 1 shard, nothing given */
void et_stream_opts_init(et_stream_opts_t *opts);

/*
 * Parses one option after the key into "opts", in any order:
 * "maxlen=N" (N a decimal uint64, 0 meaning no trimming) or "shards=N"
 * (N from 1 to ET_STREAM_SHARDS_MAX).  An option given twice is refused.
 * "err" gets a constant text on ET_ERROR, and "opts" is left as it was.
 */
int et_stream_parse_option(const uint8_t *p, size_t len,
    et_stream_opts_t *opts, const char **err);

/*
 * Whether "key" can be the stream key of "shards" shards: 1 to
 * ET_STREAM_KEY_MAX bytes, and no "{" when sharded (docs/stream.md,
 * "Sharded streams").  "err" gets a constant text on ET_ERROR.
 */
int et_stream_key_check(const uint8_t *key, size_t klen, unsigned shards,
    const char **err);

/*
 * Builds the command prefix of each of the "shards" shards in "buf"
 * (ET_STREAM_BUF_SIZE(klen, shards) bytes, owned by the caller, which
 * must outlive "st").  ET_ERROR when et_stream_key_check() refuses the
 * key, or for a maxlen or a count of shards out of range.
 */
int et_stream_init(et_stream_t *st, uint8_t *buf, const uint8_t *key,
    size_t klen, uint64_t maxlen, unsigned shards, size_t value_max);

/* the exact size of the span's entry, in bytes */
size_t et_entry_size(const et_stream_t *st, const et_span_t *span);

/* the size of the smallest entry any span can make */
size_t et_entry_size_min(const et_stream_t *st);

/*
 * A bound on the entry's size, cheaper than the exact et_entry_size(): the
 * queue reserves this much, et_entry_write() then says how much it used.
 */
size_t et_entry_size_max(const et_stream_t *st, const et_span_t *span);

/*
 * Writes the entry, to the key of the span's shard, at "dst"
 * (et_entry_size() bytes); returns its end.
 */
uint8_t *et_entry_write(const et_stream_t *st, const et_span_t *span,
    uint8_t *dst);


#endif /* ET_STREAM_H */
