/*
 * The stream entry (docs/stream.md, "The stream entry") as one RESP XADD command.
 *
 * Every argument is a RESP bulk string ("$<len>\r\n<bytes>\r\n"), so a
 * value is taken byte for byte, whatever it holds: CR, LF, NUL or text that
 * looks like RESP cannot end it early or add a field.  Field names and their
 * length prefixes are constants; only ids, numbers and values are written
 * per span, with no snprintf.  et_entry_size() and et_entry_write() walk the
 * span the same way, and the size is exact: the queue reserves it.
 */

#include <string.h>

#include "et_slot.h"
#include "et_stream.h"


/* a MAXLEN beyond this is refused by Redis ("value is out of range") */
#define ET_STREAM_MAXLEN_MAX  ((uint64_t) INT64_MAX)


#define et_cpylit(p, s)                                                       \
    (memcpy(p, s, sizeof(s) - 1), (p) + sizeof(s) - 1)


/* constant fields, with their values when those are constant too */
#define ET_F_V          "$1\r\nv\r\n$1\r\n1\r\n"
#define ET_F_TRACE_ID   "$8\r\ntrace_id\r\n$32\r\n"
#define ET_F_SPAN_ID    "$7\r\nspan_id\r\n$16\r\n"
#define ET_F_PARENT_ID  "$9\r\nparent_id\r\n$16\r\n"
#define ET_F_NAME       "$4\r\nname\r\n"
#define ET_F_SERVER     "$4\r\nkind\r\n$6\r\nserver\r\n"
#define ET_F_CLIENT     "$4\r\nkind\r\n$6\r\nclient\r\n"
#define ET_F_START_NS   "$8\r\nstart_ns\r\n"
#define ET_F_END_NS     "$6\r\nend_ns\r\n"
#define ET_F_UNSET      "$6\r\nstatus\r\n$5\r\nunset\r\n"
#define ET_F_ERROR      "$6\r\nstatus\r\n$5\r\nerror\r\n"
#define ET_F_TRACESTATE "$10\r\ntracestate\r\n"
#define ET_F_SAMPLING   "$18\r\nedgetrace.sampling\r\n"

/* the event fields "event.<i>" below 10 share one length prefix */
#define ET_F_EVENT      "$7\r\nevent."

#define ET_E_PEER       "upstream.try peer="
#define ET_E_STATUS     " status="
#define ET_E_CONNECT    " connect_ms="
#define ET_E_HEADER     " header_ms="
#define ET_E_RESPONSE   " response_ms="

#define ET_LIT_LEN(s)   (sizeof(s) - 1)

/* the fields every span has: v ... status */
#define ET_FIXED_FIELDS  8

/* the fixed part of an id field: name, "$32\r\n"/"$16\r\n", hex, "\r\n" */
#define ET_ID_FIELD_SIZE(f, n)  (ET_LIT_LEN(f) + 2 * (n) + 2)


static const char  et_dec_pairs[201] =
    "00010203040506070809"
    "10111213141516171819"
    "20212223242526272829"
    "30313233343536373839"
    "40414243444546474849"
    "50515253545556575859"
    "60616263646566676869"
    "70717273747576777879"
    "80818283848586878889"
    "90919293949596979899";


static const uint64_t  et_pow10[20] = {
    1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL,
    10000000ULL, 100000000ULL, 1000000000ULL, 10000000000ULL,
    100000000000ULL, 1000000000000ULL, 10000000000000ULL,
    100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL,
    100000000000000000ULL, 1000000000000000000ULL,
    10000000000000000000ULL
};


/*
 * The number of decimal digits of "v": the bit length times log10(2)
 * (1233 / 4096) is the digit count or one less, and one compare decides.
 */
static inline size_t
et_dec_len(uint64_t v)
{
    size_t  n;

    n = ((size_t) (64 - __builtin_clzll(v | 1)) * 1233) >> 12;

    return n + ((v | 1) >= et_pow10[n]);
}


/* writes the "len" digits of "v" < 10^8 (len == et_dec_len(v)) */
static inline uint8_t *
et_dec_write32(uint8_t *p, uint32_t v, size_t len)
{
    uint8_t   *end;
    uint32_t   i;

    end = p + len;
    p = end;

    while (v >= 100) {
        i = (v % 100) * 2;
        v /= 100;
        *--p = (uint8_t) et_dec_pairs[i + 1];
        *--p = (uint8_t) et_dec_pairs[i];
    }

    if (v >= 10) {
        i = v * 2;
        *--p = (uint8_t) et_dec_pairs[i + 1];
        *--p = (uint8_t) et_dec_pairs[i];

    } else {
        *--p = (uint8_t) ('0' + v);
    }

    return end;
}


/* exactly 8 digits, leading zeros included: four independent pairs */
static inline uint8_t *
et_dec_write8(uint8_t *p, uint32_t v)
{
    uint32_t  hi, lo;

    hi = v / 10000;
    lo = v % 10000;

    memcpy(p, &et_dec_pairs[(hi / 100) * 2], 2);
    memcpy(p + 2, &et_dec_pairs[(hi % 100) * 2], 2);
    memcpy(p + 4, &et_dec_pairs[(lo / 100) * 2], 2);
    memcpy(p + 6, &et_dec_pairs[(lo % 100) * 2], 2);

    return p + 8;
}


/*
 * Writes the "len" digits of "v" (len == et_dec_len(v)); returns the end.
 * Large numbers (nanosecond times have 19 digits) are cut into 8-digit
 * chunks written with 32-bit arithmetic, rather than one long chain of
 * 64-bit divisions.
 */
static inline uint8_t *
et_dec_write(uint8_t *p, uint64_t v, size_t len)
{
    uint64_t  hi;

    if (len <= 8) {
        return et_dec_write32(p, (uint32_t) v, len);
    }

    hi = v / 100000000;

    if (len <= 16) {
        p = et_dec_write32(p, (uint32_t) hi, len - 8);

    } else {
        p = et_dec_write32(p, (uint32_t) (hi / 100000000), len - 16);
        p = et_dec_write8(p, (uint32_t) (hi % 100000000));
    }

    return et_dec_write8(p, (uint32_t) (v % 100000000));
}


/*
 * The digits of a number that is usually small (an argument count, a
 * status, a port, milliseconds): no call, and no loop below 100.
 */
static inline uint8_t *
et_num_write(uint8_t *p, uint64_t v, size_t len)
{
    if (v < 10) {
        *p = (uint8_t) ('0' + v);
        return p + 1;
    }

    if (v < 100) {
        memcpy(p, &et_dec_pairs[v * 2], 2);
        return p + 2;
    }

    if (v < 100000000) {
        return et_dec_write32(p, (uint32_t) v, len);
    }

    return et_dec_write(p, v, len);
}


/* the 10 digits of a time's seconds, 10^9 <= v < 10^10 */
static inline uint8_t *
et_sec_write(uint8_t *p, uint64_t v)
{
    uint64_t  hi;

    hi = v / 100000000;
    memcpy(p, &et_dec_pairs[hi * 2], 2);

    return et_dec_write8(p + 2, (uint32_t) (v - hi * 100000000));
}


/* the size of a bulk string of "len" bytes; most are short */
static inline size_t
et_bulk_size(size_t len)
{
    if (len < 10) {
        return len + 6;
    }

    if (len < 100) {
        return len + 7;
    }

    return 1 + et_dec_len(len) + 2 + len + 2;
}


static inline uint8_t *
et_bulk_write(uint8_t *p, const uint8_t *data, size_t len)
{
    *p++ = '$';

    if (len < 10) {
        *p++ = (uint8_t) ('0' + len);

    } else if (len < 100) {
        memcpy(p, &et_dec_pairs[len * 2], 2);
        p += 2;

    } else {
        p = et_dec_write(p, len, et_dec_len(len));
    }

    memcpy(p, "\r\n", 2);
    p = et_copy(p + 2, data, len);
    memcpy(p, "\r\n", 2);

    return p + 2;
}


/* a decimal number (at most 20 digits) as a bulk string */
static inline size_t
et_bulk_uint_size(uint64_t v)
{
    size_t  n;

    n = et_dec_len(v);

    return (n < 10 ? 4 : 5) + n + 2;
}


static inline uint8_t *
et_bulk_uint_write(uint8_t *p, uint64_t v)
{
    size_t  n;

    n = et_dec_len(v);

    *p++ = '$';

    if (n < 10) {
        *p++ = (uint8_t) ('0' + n);

    } else {
        *p++ = (uint8_t) ('0' + n / 10);
        *p++ = (uint8_t) ('0' + n % 10);
    }

    *p++ = '\r';
    *p++ = '\n';
    p = et_dec_write(p, v, n);
    *p++ = '\r';
    *p++ = '\n';

    return p;
}


/*
 * start_ns and end_ns.  Times of this era (2001 to 2286) have 19 digits,
 * 10 of seconds and 9 of nanoseconds, and the two times of a span nearly
 * always share their seconds: those digits are written once and copied.
 * Any other time takes the general path.
 */

#define ET_NS_PER_SEC   1000000000ULL
#define ET_NS_MIN       (ET_NS_PER_SEC * ET_NS_PER_SEC)
#define ET_NS_MAX       (10 * ET_NS_MIN)


static inline uint8_t *
et_ns_frac_write(uint8_t *p, uint32_t frac)
{
    *p++ = (uint8_t) ('0' + frac / 100000000);

    return et_dec_write8(p, frac % 100000000);
}


static uint8_t *
et_times_write(uint8_t *p, uint64_t start, uint64_t end)
{
    uint8_t   *sec;
    uint64_t   ss, es;

    if (start < ET_NS_MIN || start >= ET_NS_MAX
        || end < ET_NS_MIN || end >= ET_NS_MAX)
    {
        p = et_cpylit(p, ET_F_START_NS);
        p = et_bulk_uint_write(p, start);
        p = et_cpylit(p, ET_F_END_NS);

        return et_bulk_uint_write(p, end);
    }

    ss = start / ET_NS_PER_SEC;
    es = end / ET_NS_PER_SEC;

    p = et_cpylit(p, ET_F_START_NS "$19\r\n");
    sec = p;
    p = et_sec_write(p, ss);
    p = et_ns_frac_write(p, (uint32_t) (start - ss * ET_NS_PER_SEC));

    p = et_cpylit(p, "\r\n" ET_F_END_NS "$19\r\n");

    if (es == ss) {
        memcpy(p, sec, 10);
        p += 10;

    } else {
        p = et_sec_write(p, es);
    }

    p = et_ns_frac_write(p, (uint32_t) (end - es * ET_NS_PER_SEC));
    *p++ = '\r';
    *p++ = '\n';

    return p;
}


/* the magnitude of a signed value, INT64_MIN included */
static inline uint64_t
et_int_abs(int64_t v)
{
    return v < 0 ? (uint64_t) -(v + 1) + 1 : (uint64_t) v;
}


static inline size_t
et_bulk_int_size(int64_t v)
{
    size_t  n;

    n = et_dec_len(et_int_abs(v)) + (v < 0);

    return (n < 10 ? 4 : 5) + n + 2;
}


static inline uint8_t *
et_bulk_int_write(uint8_t *p, int64_t v)
{
    size_t    n, d;
    uint64_t  u;

    u = et_int_abs(v);
    d = et_dec_len(u);
    n = d + (v < 0);

    *p++ = '$';

    if (n < 10) {
        *p++ = (uint8_t) ('0' + n);

    } else {
        *p++ = (uint8_t) ('0' + n / 10);
        *p++ = (uint8_t) ('0' + n % 10);
    }

    *p++ = '\r';
    *p++ = '\n';

    if (v < 0) {
        *p++ = '-';
    }

    p = et_num_write(p, u, d);
    *p++ = '\r';
    *p++ = '\n';

    return p;
}


/* "event.<i>" */
static inline size_t
et_event_name_size(size_t i)
{
    size_t  n;

    if (i < 10) {
        return ET_LIT_LEN(ET_F_EVENT) + 1 + 2;
    }

    n = ET_LIT_LEN("event.") + et_dec_len(i);

    return 1 + et_dec_len(n) + 2 + n + 2;
}


static inline uint8_t *
et_event_name_write(uint8_t *p, size_t i)
{
    size_t  n, d;

    if (i < 10) {
        p = et_cpylit(p, ET_F_EVENT);
        *p++ = (uint8_t) ('0' + i);

    } else {
        d = et_dec_len(i);
        n = ET_LIT_LEN("event.") + d;
        *p++ = '$';
        p = et_dec_write(p, n, et_dec_len(n));
        p = et_cpylit(p, "\r\nevent.");
        p = et_dec_write(p, i, d);
    }

    *p++ = '\r';
    *p++ = '\n';

    return p;
}


/* a try's time or status: the number, or '-' when unknown */
static inline size_t
et_event_num_len(int64_t v)
{
    return v < 0 ? 1 : et_dec_len((uint64_t) v);
}


static inline uint8_t *
et_event_num_write(uint8_t *p, int64_t v)
{
    if (v < 0) {
        *p++ = '-';
        return p;
    }

    return et_num_write(p, (uint64_t) v, et_dec_len((uint64_t) v));
}


static inline size_t
et_event_peer_len(const et_stream_t *st, const et_try_t *t)
{
    if (t->peer.len == 0) {
        return 1;
    }

    return t->peer.len < st->value_max ? t->peer.len : st->value_max;
}


/* the length of the event's value, without its bulk framing */
static inline size_t
et_event_value_len(const et_stream_t *st, const et_try_t *t)
{
    return ET_LIT_LEN(ET_E_PEER) + et_event_peer_len(st, t)
           + ET_LIT_LEN(ET_E_STATUS)
           + et_event_num_len(t->status ? (int64_t) t->status : -1)
           + ET_LIT_LEN(ET_E_CONNECT) + et_event_num_len(t->connect_ms)
           + ET_LIT_LEN(ET_E_HEADER) + et_event_num_len(t->header_ms)
           + ET_LIT_LEN(ET_E_RESPONSE) + et_event_num_len(t->response_ms);
}


static inline uint8_t *
et_event_value_write(uint8_t *p, const et_stream_t *st, const et_try_t *t,
    size_t len)
{
    *p++ = '$';
    p = et_num_write(p, len, et_dec_len(len));
    *p++ = '\r';
    *p++ = '\n';

    p = et_cpylit(p, ET_E_PEER);

    if (t->peer.len == 0) {
        *p++ = '-';

    } else {
        p = et_copy(p, t->peer.data, et_event_peer_len(st, t));
    }

    p = et_cpylit(p, ET_E_STATUS);
    p = et_event_num_write(p, t->status ? (int64_t) t->status : -1);
    p = et_cpylit(p, ET_E_CONNECT);
    p = et_event_num_write(p, t->connect_ms);
    p = et_cpylit(p, ET_E_HEADER);
    p = et_event_num_write(p, t->header_ms);
    p = et_cpylit(p, ET_E_RESPONSE);
    p = et_event_num_write(p, t->response_ms);

    *p++ = '\r';
    *p++ = '\n';

    return p;
}


static inline size_t
et_trunc(const et_stream_t *st, size_t len)
{
    return len < st->value_max ? len : st->value_max;
}


static inline int
et_has_service(const et_span_t *span)
{
    return span->service != NULL && span->service->len != 0;
}


/* the sampling field: its name, and its value already encoded */
static inline size_t
et_sampling_size(const et_span_t *span)
{
    return span->sampling != NULL
           ? ET_LIT_LEN(ET_F_SAMPLING) + span->sampling->len : 0;
}


/* the prefix of a span's shard, out of line: see et_stream_prefix() */
static __attribute__((noinline)) const et_str_t *
et_stream_prefix_shard(const et_stream_t *st, const et_span_t *span)
{
    return &st->prefix[et_stream_shard(span->trace_id, st->shards)];
}


/*
 * The prefix of the span's shard.  One shard needs no trace id: its test
 * is all a single stream pays, and the shard's arithmetic stays out of
 * the encoder's registers.
 */
static inline const et_str_t *
et_stream_prefix(const et_stream_t *st, const et_span_t *span)
{
    if (__builtin_expect(st->shards == 1, 1)) {
        return &st->prefix[0];
    }

    return et_stream_prefix_shard(st, span);
}


/* the fields (pairs of arguments) after the prefix */
static inline size_t
et_entry_fields(const et_span_t *span)
{
    return ET_FIXED_FIELDS + span->has_parent + et_has_service(span)
           + (span->sampling != NULL)
           + (span->tracestate.len != 0) + span->nattrs + span->ntries;
}


/*
 * Writes "v" in decimal; returns the end.  Config time only: the encoder's
 * own digit writers stay inlined where the spans need them.
 */
static uint8_t *
et_stream_dec(uint8_t *p, uint32_t v)
{
    size_t    n;
    uint8_t   digits[10];

    n = 0;

    do {
        digits[n++] = (uint8_t) ('0' + v % 10);
        v /= 10;
    } while (v);

    while (n) {
        *p++ = digits[--n];
    }

    return p;
}


/*
 * The hash tag of shard "i" of "n": the smallest number whose decimal
 * digits hash to a slot in [i * ET_SLOTS / n, (i + 1) * ET_SLOTS / n).
 * Every range of 1 to 256 is reached below 1100; the bound only stops
 * the loop.
 */
static int
et_stream_shard_tag(unsigned i, unsigned n, uint8_t *tag, size_t *len)
{
    size_t    d;
    uint32_t  j;

    for (j = 0; j < 100000; j++) {
        d = (size_t) (et_stream_dec(tag, j) - tag);

        if (et_slot(tag, d) * n / ET_SLOTS == i) {
            *len = d;
            return ET_OK;
        }
    }

    return ET_ERROR;
}


size_t
et_stream_shard_key(uint8_t *buf, size_t size, const uint8_t *key,
    size_t klen, unsigned i, unsigned n)
{
    size_t    len, tlen, ilen;
    uint8_t  *p, tag[5], num[3];

    if (klen == 0 || n == 0 || n > ET_STREAM_SHARDS_MAX || i >= n) {
        return 0;
    }

    if (n == 1) {
        if (klen > size) {
            return 0;
        }

        memcpy(buf, key, klen);
        return klen;
    }

    if (memchr(key, '{', klen) != NULL
        || et_stream_shard_tag(i, n, tag, &tlen) != ET_OK)
    {
        return 0;
    }

    ilen = (size_t) (et_stream_dec(num, i) - num);
    len = klen + 1 + ilen + 1 + tlen + 1;

    if (len > size) {
        return 0;
    }

    memcpy(buf, key, klen);
    p = buf + klen;
    *p++ = ':';
    memcpy(p, num, ilen);
    p += ilen;
    *p++ = '{';
    memcpy(p, tag, tlen);
    p[tlen] = '}';

    return len;
}


void
et_stream_opts_init(et_stream_opts_t *opts)
{
    opts->maxlen = ET_STREAM_DEFAULT_MAXLEN;
    opts->shards = 1;
    opts->given = 0;
}


/* the options after the key, in the order of their bits in opts->given */
typedef struct {
    et_str_t     name;        /* "maxlen=" */
    uint64_t     min;
    uint64_t     max;

    /* no value, not a number, out of range, given twice */
    const char  *errors[4];
} et_stream_option_t;


static const et_stream_option_t  et_stream_options[] = {
    { et_string("maxlen="), 0, ET_STREAM_MAXLEN_MAX,
      { "maxlen has no value", "maxlen must be a decimal number",
        "maxlen is too large", "maxlen is duplicate" } },

    { et_string("shards="), 1, ET_STREAM_SHARDS_MAX,
      { "shards has no value", "shards must be a decimal number",
        "shards must be 1 to 256", "shards is duplicate" } },
};


int
et_stream_parse_option(const uint8_t *p, size_t len, et_stream_opts_t *opts,
    const char **err)
{
    size_t                     i;
    uint64_t                   n;
    unsigned                   d;
    const uint8_t             *last;
    const et_stream_option_t  *o;

    for (i = 0; i < sizeof(et_stream_options) / sizeof(et_stream_options[0]);
         i++)
    {
        o = &et_stream_options[i];

        if (len >= o->name.len && memcmp(p, o->name.data, o->name.len) == 0) {
            goto found;
        }
    }

    *err = "unknown option, expected \"maxlen=N\" or \"shards=N\"";

    return ET_ERROR;

found:

    last = p + len;
    p += o->name.len;

    if (p == last) {
        *err = o->errors[0];
        return ET_ERROR;
    }

    for (n = 0; p < last; p++) {
        if (*p < '0' || *p > '9') {
            *err = o->errors[1];
            return ET_ERROR;
        }

        d = *p - '0';

        if (n > (o->max - d) / 10) {
            *err = o->errors[2];
            return ET_ERROR;
        }

        n = n * 10 + d;
    }

    if (n < o->min) {
        *err = o->errors[2];
        return ET_ERROR;
    }

    if (opts->given & (1u << i)) {
        *err = o->errors[3];
        return ET_ERROR;
    }

    opts->given |= 1u << i;

    if (i == 0) {
        opts->maxlen = n;

    } else {
        opts->shards = (unsigned) n;
    }

    return ET_OK;
}


int
et_stream_key_check(const uint8_t *key, size_t klen, unsigned shards,
    const char **err)
{
    if (klen == 0 || klen > ET_STREAM_KEY_MAX) {
        *err = "the key must be 1 to 1024 bytes";
        return ET_ERROR;
    }

    if (shards > 1 && memchr(key, '{', klen) != NULL) {
        *err = "a sharded stream's key must not hold \"{\": its hash tag "
               "would put every shard on one slot";
        return ET_ERROR;
    }

    return ET_OK;
}


int
et_stream_init(et_stream_t *st, uint8_t *buf, const uint8_t *key,
    size_t klen, uint64_t maxlen, unsigned shards, size_t value_max)
{
    size_t       i, len, tlen;
    uint8_t     *p, name[ET_STREAM_KEY_MAX + ET_STREAM_SHARD_SUFFIX_MAX];
    uint8_t      tail[64];
    const char  *err;

    if (et_stream_key_check(key, klen, shards, &err) != ET_OK
        || shards == 0 || shards > ET_STREAM_SHARDS_MAX
        || maxlen > ET_STREAM_MAXLEN_MAX)
    {
        return ET_ERROR;
    }

    /* what follows the key, the same in every shard's prefix */
    p = tail;

    if (maxlen) {
        p = et_cpylit(p, "$6\r\nMAXLEN\r\n$1\r\n~\r\n");
        p = et_bulk_uint_write(p, maxlen);
    }

    p = et_cpylit(p, "$1\r\n*\r\n");
    tlen = (size_t) (p - tail);

    st->prefix_args = 3 + (maxlen ? 3 : 0);
    st->shards = shards;
    st->prefix_max = 0;
    st->prefix_min = SIZE_MAX;

    p = buf;

    /* each prefix: "XADD <shard's key> [MAXLEN ~ <maxlen>] *" */

    for (i = 0; i < shards; i++) {
        len = et_stream_shard_key(name, sizeof(name), key, klen,
                                  (unsigned) i, shards);
        if (len == 0) {
            return ET_ERROR;
        }

        st->prefix[i].data = p;

        p = et_cpylit(p, "$4\r\nXADD\r\n");
        p = et_bulk_write(p, name, len);
        p = et_copy(p, tail, tlen);

        st->prefix[i].len = (size_t) (p - st->prefix[i].data);

        if (st->prefix[i].len > st->prefix_max) {
            st->prefix_max = st->prefix[i].len;
        }

        if (st->prefix[i].len < st->prefix_min) {
            st->prefix_min = st->prefix[i].len;
        }
    }

    st->maxlen = maxlen;

    /* 0 would make every value empty: take it as "the default" */
    st->value_max = value_max ? value_max : ET_VALUE_MAX_DEFAULT;

    return ET_OK;
}


size_t
et_entry_size(const et_stream_t *st, const et_span_t *span)
{
    size_t            size, i, len;
    const et_attr_t  *a;

    len = st->prefix_args + 2 * et_entry_fields(span);

    size = 1 + et_dec_len(len) + 2
           + et_stream_prefix(st, span)->len
           + ET_LIT_LEN(ET_F_V)
           + ET_ID_FIELD_SIZE(ET_F_TRACE_ID, ET_TRACE_ID_LEN)
           + ET_ID_FIELD_SIZE(ET_F_SPAN_ID, ET_SPAN_ID_LEN)
           + ET_LIT_LEN(ET_F_NAME) + et_bulk_size(et_trunc(st, span->name.len))
           + ET_LIT_LEN(ET_F_SERVER)
           + ET_LIT_LEN(ET_F_START_NS) + et_bulk_uint_size(span->start_ns)
           + ET_LIT_LEN(ET_F_END_NS) + et_bulk_uint_size(span->end_ns)
           + ET_LIT_LEN(ET_F_UNSET);

    if (span->has_parent) {
        size += ET_ID_FIELD_SIZE(ET_F_PARENT_ID, ET_SPAN_ID_LEN);
    }

    if (et_has_service(span)) {
        size += span->service->len;
    }

    size += et_sampling_size(span);

    if (span->tracestate.len) {
        size += ET_LIT_LEN(ET_F_TRACESTATE)
                + et_bulk_size(span->tracestate.len);
    }

    for (i = 0; i < span->nattrs; i++) {
        a = &span->attrs[i];

        size += a->key->resp.len;

        if (a->type == ET_ATTR_INT) {
            size += et_bulk_int_size(a->num);

        } else {
            size += et_bulk_size(et_trunc(st, a->str.len));
        }
    }

    for (i = 0; i < span->ntries; i++) {
        size += et_event_name_size(i)
                + et_bulk_size(et_event_value_len(st, &span->tries[i]));
    }

    return size;
}


size_t
et_entry_size_min(const et_stream_t *st)
{
    et_span_t  empty;

    /* no field of its own; its shard's prefix replaced by the shortest */
    memset(&empty, 0, sizeof(et_span_t));

    return et_entry_size(st, &empty) - et_stream_prefix(st, &empty)->len
           + st->prefix_min;
}


/* "$<len>\r\n" and "\r\n" around a value: at most 20 digits */
#define ET_BULK_MAX      25

/* a decimal int64 as a bulk string */
#define ET_BULK_INT_MAX  (ET_BULK_MAX + 20)

/* "*<argc>\r\n", the constant fields, ids and times at their longest */
#define ET_FIXED_MAX                                                          \
    (ET_BULK_MAX + ET_LIT_LEN(ET_F_V)                                         \
     + ET_ID_FIELD_SIZE(ET_F_TRACE_ID, ET_TRACE_ID_LEN)                       \
     + ET_ID_FIELD_SIZE(ET_F_SPAN_ID, ET_SPAN_ID_LEN)                         \
     + ET_ID_FIELD_SIZE(ET_F_PARENT_ID, ET_SPAN_ID_LEN)                       \
     + ET_LIT_LEN(ET_F_NAME) + ET_BULK_MAX                                    \
     + ET_LIT_LEN(ET_F_SERVER)                                                \
     + ET_LIT_LEN(ET_F_START_NS) + ET_BULK_INT_MAX                            \
     + ET_LIT_LEN(ET_F_END_NS) + ET_BULK_INT_MAX                              \
     + ET_LIT_LEN(ET_F_UNSET)                                                 \
     + ET_LIT_LEN(ET_F_TRACESTATE) + ET_BULK_MAX)


/* an event's value but its peer, its four numbers at their longest */
#define ET_EVENT_MAX                                                          \
    (ET_BULK_MAX + ET_LIT_LEN(ET_E_PEER) + ET_LIT_LEN(ET_E_STATUS)            \
     + ET_LIT_LEN(ET_E_CONNECT) + ET_LIT_LEN(ET_E_HEADER)                     \
     + ET_LIT_LEN(ET_E_RESPONSE) + 4 * 20)


size_t
et_entry_size_max(const et_stream_t *st, const et_span_t *span)
{
    size_t            size, i;
    const et_attr_t  *a;

    size = ET_FIXED_MAX + st->prefix_max + et_trunc(st, span->name.len)
           + span->tracestate.len;

    if (et_has_service(span)) {
        size += span->service->len;
    }

    size += et_sampling_size(span);

    for (i = 0; i < span->nattrs; i++) {
        a = &span->attrs[i];

        size += a->key->resp.len
                + (a->type == ET_ATTR_INT ? ET_BULK_INT_MAX
                                          : ET_BULK_MAX
                                            + et_trunc(st, a->str.len));
    }

    for (i = 0; i < span->ntries; i++) {
        size += et_event_name_size(i) + ET_EVENT_MAX
                + et_event_peer_len(st, &span->tries[i]);
    }

    return size;
}


uint8_t *
et_entry_write(const et_stream_t *st, const et_span_t *span, uint8_t *dst)
{
    size_t            i, n;
    uint8_t          *p;
    const et_str_t   *prefix;
    const et_attr_t  *a;

    p = dst;

    n = st->prefix_args + 2 * et_entry_fields(span);

    *p++ = '*';
    p = et_num_write(p, n, et_dec_len(n));
    *p++ = '\r';
    *p++ = '\n';

    prefix = et_stream_prefix(st, span);
    p = et_copy(p, prefix->data, prefix->len);

    p = et_cpylit(p, ET_F_V);

    p = et_cpylit(p, ET_F_TRACE_ID);
    p = et_hex_encode16(p, span->trace_id);
    *p++ = '\r';
    *p++ = '\n';

    p = et_cpylit(p, ET_F_SPAN_ID);
    p = et_hex_encode8(p, span->span_id);
    *p++ = '\r';
    *p++ = '\n';

    if (span->has_parent) {
        p = et_cpylit(p, ET_F_PARENT_ID);
        p = et_hex_encode8(p, span->parent_id);
        *p++ = '\r';
        *p++ = '\n';
    }

    p = et_cpylit(p, ET_F_NAME);
    p = et_bulk_write(p, span->name.data, et_trunc(st, span->name.len));

    if (span->kind == ET_SPAN_CLIENT) {
        p = et_cpylit(p, ET_F_CLIENT);

    } else {
        p = et_cpylit(p, ET_F_SERVER);
    }

    p = et_times_write(p, span->start_ns, span->end_ns);

    if (span->status == ET_STATUS_ERROR) {
        p = et_cpylit(p, ET_F_ERROR);

    } else {
        p = et_cpylit(p, ET_F_UNSET);
    }

    if (et_has_service(span)) {
        p = et_copy(p, span->service->data, span->service->len);
    }

    /* a literal and a short value: copies of known size, no libc call */
    if (span->sampling != NULL) {
        p = et_cpylit(p, ET_F_SAMPLING);
        p = et_copy(p, span->sampling->data, span->sampling->len);
    }

    if (span->tracestate.len) {
        p = et_cpylit(p, ET_F_TRACESTATE);
        p = et_bulk_write(p, span->tracestate.data, span->tracestate.len);
    }

    for (i = 0; i < span->nattrs; i++) {
        a = &span->attrs[i];

        p = et_copy(p, a->key->resp.data, a->key->resp.len);

        if (a->type == ET_ATTR_INT) {
            p = et_bulk_int_write(p, a->num);

        } else {
            p = et_bulk_write(p, a->str.data, et_trunc(st, a->str.len));
        }
    }

    for (i = 0; i < span->ntries; i++) {
        p = et_event_name_write(p, i);
        p = et_event_value_write(p, st, &span->tries[i],
                                 et_event_value_len(st, &span->tries[i]));
    }

    return p;
}
