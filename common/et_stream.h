/*
 * The stream entry (docs/stream.md, "The stream entry"), encoded directly as
 * the RESP "XADD <key> MAXLEN ~ <maxlen> * field value ..." command.
 *
 * Everything constant (the command, the key, the trim options, field names
 * and their length prefixes) is built once by et_stream_init(); encoding a
 * span writes only the argument count, ids, times and values.
 */

#ifndef ET_STREAM_H
#define ET_STREAM_H


#include "et_core.h"
#include "et_span.h"


#define ET_STREAM_DEFAULT_KEY     "edgetrace:spans"
#define ET_STREAM_DEFAULT_MAXLEN  1000000
#define ET_STREAM_KEY_MAX         1024

/* attribute values (and names) longer than this are cut */
#define ET_VALUE_MAX_DEFAULT      1024


typedef struct {
    et_str_t    prefix;       /* from "$4\r\nXADD\r\n" up to "*\r\n" */
    unsigned    prefix_args;  /* the arguments "prefix" holds */
    size_t      value_max;
    uint64_t    maxlen;       /* 0: no trimming */
} et_stream_t;


/* the bytes et_stream_init() needs for a key of "klen" bytes */
#define ET_STREAM_PREFIX_SIZE(klen)  ((klen) + 96)


/*
 * Parses the options after the key: "maxlen=N" (N a decimal uint64,
 * 0 meaning no trimming).  "err" gets a constant text on ET_ERROR.
 */
int et_stream_parse_option(const uint8_t *p, size_t len, uint64_t *maxlen,
    const char **err);

/*
 * Builds the command prefix in "buf" (ET_STREAM_PREFIX_SIZE(klen) bytes,
 * owned by the caller, which must outlive "st").  ET_ERROR for an empty
 * key or one longer than ET_STREAM_KEY_MAX.
 */
int et_stream_init(et_stream_t *st, uint8_t *buf, const uint8_t *key,
    size_t klen, uint64_t maxlen, size_t value_max);

/* the exact size of the span's entry, in bytes */
size_t et_entry_size(const et_stream_t *st, const et_span_t *span);

/*
 * A bound on the entry's size, cheaper than the exact et_entry_size(): the
 * queue reserves this much, et_entry_write() then says how much it used.
 */
size_t et_entry_size_max(const et_stream_t *st, const et_span_t *span);

/* writes the entry at "dst" (et_entry_size() bytes); returns its end */
uint8_t *et_entry_write(const et_stream_t *st, const et_span_t *span,
    uint8_t *dst);


#endif /* ET_STREAM_H */
