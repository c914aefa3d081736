/*
 * Unit tests: et_span.c (keys, constant fields) and et_stream.c (the
 * stream entry), ending with a round trip through a real Redis whose port
 * is in ET_REDIS_PORT (t/unit/stream.t starts one).
 *
 * Entries are checked three ways: byte for byte against hand-written
 * commands; against a slow reference encoder (snprintf, one field at a
 * time) for generated spans; and by reading them back from Redis.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "et_core.h"
#include "et_id.h"
#include "et_slot.h"
#include "et_span.h"
#include "et_stream.h"
#include "et_keep.h"
#include "tap.h"
#include "tap_redis.h"


#define S(s)  (const uint8_t *) (s), sizeof(s) - 1
#define T(s)  (s), sizeof(s) - 1

#define nelts(a)  (sizeof(a) / sizeof((a)[0]))

#define MAX_PAIRS  64
#define GENERATED  2000


/* one field of the expected entry, owned (malloc) */
typedef struct {
    uint8_t  *name;
    size_t    name_len;
    uint8_t  *value;
    size_t    value_len;
} pair_t;


static uint8_t *
dup_mem(const void *p, size_t len)
{
    uint8_t  *d;

    /* exact size, so valgrind sees any access past the end */
    d = malloc(len ? len : 1);
    if (d == NULL) {
        abort();
    }

    if (len) {
        memcpy(d, p, len);
    }

    return d;
}


static void
print_escaped(const char *label, const uint8_t *p, size_t len)
{
    size_t  i;

    printf("#   %s (%zu bytes): '", label, len);

    for (i = 0; i < len && i < 2000; i++) {
        if (p[i] == '\r') {
            printf("\\r");

        } else if (p[i] == '\n') {
            printf("\\n");

        } else if (p[i] < 0x20 || p[i] >= 0x7f) {
            printf("\\x%02x", p[i]);

        } else {
            putchar(p[i]);
        }
    }

    printf("%s'\n", i < len ? "..." : "");
}


/* a printable copy for test names (4 rotating buffers) */
static const char *
esc(const void *data, size_t len)
{
    size_t          i, n;
    const uint8_t  *p;

    static char      bufs[4][256];
    static unsigned  next;

    char  *b;

    b = bufs[next++ % 4];
    p = data;
    n = 0;

    for (i = 0; i < len && n < sizeof(bufs[0]) - 8; i++) {
        if (p[i] == '\r') {
            n += (size_t) sprintf(b + n, "\\r");

        } else if (p[i] == '\n') {
            n += (size_t) sprintf(b + n, "\\n");

        } else if (p[i] < 0x20 || p[i] >= 0x7f) {
            n += (size_t) sprintf(b + n, "\\x%02x", p[i]);

        } else {
            b[n++] = (char) p[i];
        }
    }

    b[n] = '\0';

    return b;
}


static void
is_bytes(const uint8_t *got, size_t glen, const void *want, size_t wlen,
    const char *name)
{
    int  ok;

    ok = glen == wlen && (wlen == 0 || memcmp(got, want, wlen) == 0);

    tap_ok(ok, "%s", name);

    if (!ok) {
        print_escaped("got", got, glen);
        print_escaped("expected", want, wlen);
    }
}


/* --- a reference encoder: slow and obvious --- */


static void
pair_add(pair_t *pairs, size_t *n, const void *name, size_t nlen,
    const void *value, size_t vlen)
{
    if (*n == MAX_PAIRS) {
        abort();
    }

    pairs[*n].name = dup_mem(name, nlen);
    pairs[*n].name_len = nlen;
    pairs[*n].value = dup_mem(value, vlen);
    pairs[*n].value_len = vlen;
    (*n)++;
}


static void
pair_add_str(pair_t *pairs, size_t *n, const char *name, const char *value)
{
    pair_add(pairs, n, name, strlen(name), value, strlen(value));
}


static void
pairs_free(pair_t *pairs, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        free(pairs[i].name);
        free(pairs[i].value);
    }
}


static void
hex(char *dst, const uint8_t *id, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        sprintf(dst + 2 * i, "%02x", id[i]);
    }
}


static size_t
min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}


static void
ref_num(char *buf, int64_t v)
{
    if (v < 0) {
        strcpy(buf, "-");

    } else {
        sprintf(buf, "%lld", (long long) v);
    }
}


/* the fields of "The stream entry" that "span" should be encoded to */
static size_t
ref_pairs(const et_span_t *span, size_t value_max, pair_t *pairs)
{
    char              buf[12000], name[32], id[40], st[24], c[24], h[24];
    char              r[24], peer[11000], tail[160];
    size_t            n, i, plen;
    const et_attr_t  *a;
    const et_try_t   *t;

    n = 0;

    pair_add_str(pairs, &n, "v", "1");
    hex(id, span->trace_id, 16);
    pair_add_str(pairs, &n, "trace_id", id);
    hex(id, span->span_id, 8);
    pair_add_str(pairs, &n, "span_id", id);

    if (span->has_parent) {
        hex(id, span->parent_id, 8);
        pair_add_str(pairs, &n, "parent_id", id);
    }

    pair_add(pairs, &n, "name", 4, span->name.data,
             min_size(span->name.len, value_max));
    pair_add_str(pairs, &n, "kind",
                 span->kind == ET_SPAN_CLIENT ? "client" : "server");
    sprintf(buf, "%llu", (unsigned long long) span->start_ns);
    pair_add_str(pairs, &n, "start_ns", buf);
    sprintf(buf, "%llu", (unsigned long long) span->end_ns);
    pair_add_str(pairs, &n, "end_ns", buf);
    pair_add_str(pairs, &n, "status",
                 span->status == ET_STATUS_ERROR ? "error" : "unset");

    if (span->service && span->service->len) {
        /* et_field_init() is checked on its own, below */
        pair_add_str(pairs, &n, "service.name", "");
        free(pairs[n - 1].value);
        pairs[n - 1].value = NULL;
    }

    /* et_keep.h: a constant field after service.name */
    if (span->sampling) {
        pair_add_str(pairs, &n, "edgetrace.sampling",
                     span->sampling == et_sampling_field(ET_SAMPLING_HEAD)
                     ? "head" : "outcome");
    }

    if (span->tracestate.len) {
        pair_add(pairs, &n, "tracestate", 10, span->tracestate.data,
                 span->tracestate.len);
    }

    for (i = 0; i < span->nattrs; i++) {
        a = &span->attrs[i];

        if (a->type == ET_ATTR_INT) {
            sprintf(buf, "%lld", (long long) a->num);
            pair_add(pairs, &n, a->key->name.data, a->key->name.len,
                     buf, strlen(buf));

        } else {
            pair_add(pairs, &n, a->key->name.data, a->key->name.len,
                     a->str.data, min_size(a->str.len, value_max));
        }
    }

    for (i = 0; i < span->ntries; i++) {
        t = &span->tries[i];

        plen = min_size(t->peer.len, value_max);

        if (plen) {
            memcpy(peer, t->peer.data, plen);

        } else {
            peer[0] = '-';
            plen = 1;
        }

        ref_num(st, t->status ? (int64_t) t->status : -1);
        ref_num(c, t->connect_ms);
        ref_num(h, t->header_ms);
        ref_num(r, t->response_ms);

        sprintf(name, "event.%zu", i);
        sprintf(tail, " status=%s connect_ms=%s header_ms=%s response_ms=%s",
                st, c, h, r);
        memcpy(buf, "upstream.try peer=", 18);
        memcpy(buf + 18, peer, plen);
        memcpy(buf + 18 + plen, tail, strlen(tail));

        pair_add(pairs, &n, name, strlen(name), buf,
                 18 + plen + strlen(tail));
    }

    return n;
}


static size_t
ref_bulk(uint8_t *p, const void *data, size_t len)
{
    size_t  n;

    n = (size_t) sprintf((char *) p, "$%zu\r\n", len);
    memcpy(p + n, data, len);
    memcpy(p + n + len, "\r\n", 2);

    return n + len + 2;
}


/* the whole command, from the pairs; the service field is taken as is */
static size_t
ref_entry(uint8_t *out, const char *key, size_t klen, uint64_t maxlen,
    const et_span_t *span, const pair_t *pairs, size_t npairs)
{
    char     num[24];
    size_t   off, i;

    off = (size_t) sprintf((char *) out, "*%zu\r\n",
                           (maxlen ? 6 : 3) + 2 * npairs);

    off += ref_bulk(out + off, "XADD", 4);
    off += ref_bulk(out + off, key, klen);

    if (maxlen) {
        sprintf(num, "%llu", (unsigned long long) maxlen);
        off += ref_bulk(out + off, "MAXLEN", 6);
        off += ref_bulk(out + off, "~", 1);
        off += ref_bulk(out + off, num, strlen(num));
    }

    off += ref_bulk(out + off, "*", 1);

    for (i = 0; i < npairs; i++) {
        if (pairs[i].value == NULL) {
            memcpy(out + off, span->service->data, span->service->len);
            off += span->service->len;
            continue;
        }

        off += ref_bulk(out + off, pairs[i].name, pairs[i].name_len);
        off += ref_bulk(out + off, pairs[i].value, pairs[i].value_len);
    }

    return off;
}


/*
 * Parses a RESP array of bulk strings the way Redis does; returns the
 * number of arguments, or -1 when the bytes are not exactly one command.
 */
static long
resp_parse(const uint8_t *p, size_t len, et_str_t *args, size_t nargs)
{
    char           *end;
    size_t          i;
    unsigned long   n, blen;
    const uint8_t  *last;

    last = p + len;

    if (len < 4 || *p != '*') {
        return -1;
    }

    n = strtoul((const char *) p + 1, &end, 10);
    p = (const uint8_t *) end;

    if (last - p < 2 || p[0] != '\r' || p[1] != '\n' || n > nargs) {
        return -1;
    }

    p += 2;

    for (i = 0; i < n; i++) {
        if (last - p < 4 || *p != '$' || p[1] < '0' || p[1] > '9') {
            return -1;
        }

        blen = strtoul((const char *) p + 1, &end, 10);
        p = (const uint8_t *) end;

        if ((size_t) (last - p) < blen + 4 || p[0] != '\r' || p[1] != '\n') {
            return -1;
        }

        args[i].data = p + 2;
        args[i].len = blen;
        p += 2 + blen;

        if (p[0] != '\r' || p[1] != '\n') {
            return -1;
        }

        p += 2;
    }

    return p == last ? (long) n : -1;
}


/* size, then write into a buffer of exactly that size */
static uint8_t *
encode_quiet(const et_stream_t *st, const et_span_t *span, size_t *len,
    int *ok)
{
    size_t    size;
    uint8_t  *buf, *end;

    size = et_entry_size(st, span);
    buf = malloc(size);
    if (buf == NULL) {
        abort();
    }

    end = et_entry_write(st, span, buf);

    if (end != buf + size) {
        printf("#   et_entry_size %zu, et_entry_write wrote %ld\n", size,
               (long) (end - buf));
        *ok = 0;
    }

    /* what the queue reserves must hold the entry */
    if (et_entry_size_max(st, span) < size) {
        printf("#   et_entry_size_max %zu < et_entry_size %zu\n",
               et_entry_size_max(st, span), size);
        *ok = 0;
    }

    *len = size;

    return buf;
}


static uint8_t *
encode(const et_stream_t *st, const et_span_t *span, size_t *len,
    const char *name)
{
    int       ok;
    uint8_t  *buf;

    ok = 1;
    buf = encode_quiet(st, span, len, &ok);

    tap_ok(ok, "%s: write returns dst + et_entry_size() <= the bound", name);

    return buf;
}


/*
 * The exact size, the same bytes as the reference encoder, and one command
 * of the expected number of arguments; says why on stdout when not.
 */
static int
check_ref(const et_stream_t *st, const char *key, size_t klen,
    const et_span_t *span)
{
    int       ok;
    long      nargs;
    size_t    len, rlen, npairs;
    pair_t    pairs[MAX_PAIRS];
    uint8_t  *buf, *ref;
    et_str_t  args[2 * MAX_PAIRS + 8];

    ok = 1;
    buf = encode_quiet(st, span, &len, &ok);

    npairs = ref_pairs(span, st->value_max, pairs);
    ref = malloc(len + 65536);
    if (ref == NULL) {
        abort();
    }

    rlen = ref_entry(ref, key, klen, st->maxlen, span, pairs, npairs);

    if (rlen != len || memcmp(buf, ref, len) != 0) {
        print_escaped("got", buf, len);
        print_escaped("reference", ref, rlen);
        ok = 0;
    }

    nargs = resp_parse(buf, len, args, nelts(args));

    if (nargs != (long) (st->prefix_args + 2 * npairs)) {
        printf("#   %ld arguments, expected %zu\n", nargs,
               st->prefix_args + 2 * npairs);
        ok = 0;
    }

    pairs_free(pairs, npairs);
    free(ref);
    free(buf);

    return ok;
}


/* --- keys and constant fields --- */


static void
test_keys(void)
{
    size_t    i;
    uint8_t   buf[ET_KEY_RESP_SIZE(64)], *name;
    et_key_t  k;

    static const struct {
        const et_key_t  *key;
        const char      *name;
    } keys[] = {
        { &et_key_http_request_method, "http.request.method" },
        { &et_key_url_path, "url.path" },
        { &et_key_url_query, "url.query" },
        { &et_key_url_scheme, "url.scheme" },
        { &et_key_url_full, "url.full" },
        { &et_key_server_address, "server.address" },
        { &et_key_server_port, "server.port" },
        { &et_key_client_address, "client.address" },
        { &et_key_user_agent_original, "user_agent.original" },
        { &et_key_network_protocol_version, "network.protocol.version" },
        { &et_key_http_response_status_code, "http.response.status_code" },
        { &et_key_http_request_resend_count, "http.request.resend_count" },
        { &et_key_error_type, "error.type" },
    };

    static const struct {
        const char  *name;
        size_t       len;
        const char  *want;
        size_t       want_len;
    } built[] = {
        { "", 0, "$0\r\n\r\n", 6 },
        { "a", 1, "$1\r\na\r\n", 7 },
        { "app.tenant", 10, "$10\r\napp.tenant\r\n", 17 },
        { "a\r\nb\0c", 6, "$6\r\na\r\nb\0c\r\n", 12 },
    };

    for (i = 0; i < nelts(keys); i++) {
        et_key_init(&k, buf, (const uint8_t *) keys[i].name,
                    strlen(keys[i].name));

        is_bytes(keys[i].key->name.data, keys[i].key->name.len,
                 keys[i].name, strlen(keys[i].name), keys[i].name);
        is_bytes(keys[i].key->resp.data, keys[i].key->resp.len,
                 k.resp.data, k.resp.len, "  its RESP form");
    }

    for (i = 0; i < nelts(built); i++) {
        /* the key must not point into the caller's copy of the name */
        name = dup_mem(built[i].name, built[i].len);
        et_key_init(&k, buf, name, built[i].len);
        memset(name, 'X', built[i].len);
        free(name);

        is_bytes(k.resp.data, k.resp.len, built[i].want, built[i].want_len,
                 "et_key_init: RESP form");
        is_bytes(k.name.data, k.name.len, built[i].name, built[i].len,
                 "et_key_init: name");
        tap_ok(k.resp.len <= ET_KEY_RESP_SIZE(built[i].len),
               "et_key_init: within ET_KEY_RESP_SIZE");
    }
}


static void
test_field(void)
{
    size_t    i;
    uint8_t   buf[ET_FIELD_RESP_SIZE(16, 1000)];
    et_str_t  f;

    static const struct {
        const char  *key;
        const char  *value;
        size_t       vlen;
        const char  *want;
    } cases[] = {
        { "service.name", "nginx", 5,
          "$12\r\nservice.name\r\n$5\r\nnginx\r\n" },
        { "service.name", "", 0, "$12\r\nservice.name\r\n$0\r\n\r\n" },
        { "k", "a\r\n$1\r\nb", 8, "$1\r\nk\r\n$8\r\na\r\n$1\r\nb\r\n" },
    };

    for (i = 0; i < nelts(cases); i++) {
        et_field_init(&f, buf, (const uint8_t *) cases[i].key,
                      strlen(cases[i].key), (const uint8_t *) cases[i].value,
                      cases[i].vlen);
        is_bytes(f.data, f.len, cases[i].want, strlen(cases[i].want),
                 "et_field_init");
        tap_ok(f.data == buf && f.len <= sizeof(buf),
               "et_field_init: in the caller's buffer");
    }
}


/* --- shards --- */


static void
test_shard_key(void)
{
    size_t    i, len;
    uint8_t   buf[64];

    static const struct {
        const char  *key;
        size_t       klen;
        unsigned     i;
        unsigned     n;
        size_t       size;
        const char  *want;     /* NULL: refused */
    } cases[] = {
        { T("edgetrace:spans"), 0, 1, 64, "edgetrace:spans" },
        { T("a{b}"), 0, 1, 64, "a{b}" },
        { T("s"), 0, 1, 1, "s" },
        { T("edgetrace:spans"), 0, 4, 64, "edgetrace:spans:0{3}" },
        { T("edgetrace:spans"), 1, 4, 64, "edgetrace:spans:1{2}" },
        { T("edgetrace:spans"), 2, 4, 64, "edgetrace:spans:2{1}" },
        { T("edgetrace:spans"), 3, 4, 64, "edgetrace:spans:3{0}" },
        { T("s"), 0, 8, 64, "s:0{3}" },
        { T("s"), 1, 8, 64, "s:1{43}" },
        { T("s"), 2, 8, 64, "s:2{2}" },
        { T("s"), 3, 8, 64, "s:3{42}" },
        { T("s"), 4, 8, 64, "s:4{1}" },
        { T("s"), 5, 8, 64, "s:5{41}" },
        { T("s"), 6, 8, 64, "s:6{0}" },
        { T("s"), 7, 8, 64, "s:7{40}" },
        { T("s"), 0, 256, 64, "s:0{460}" },
        { T("s"), 100, 256, 64, "s:100{208}" },
        { T("s"), 255, 256, 64, "s:255{430}" },
        { T("s}"), 1, 2, 64, "s}:1{0}" },
        { T("s"), 3, 4, 6, "s:3{0}" },
        { T("s"), 3, 4, 5, NULL },
        { T("edgetrace:spans"), 0, 1, 14, NULL },
        { T("s"), 0, 0, 64, NULL },
        { T("s"), 0, 257, 64, NULL },
        { T("s"), 4, 4, 64, NULL },
        { T("s"), 1, 1, 64, NULL },
        { T(""), 0, 1, 64, NULL },
        { T(""), 0, 4, 64, NULL },
        { T("a{b}"), 0, 2, 64, NULL },
        { T("{"), 1, 256, 64, NULL },
    };

    for (i = 0; i < nelts(cases); i++) {
        memset(buf, '#', sizeof(buf));

        len = et_stream_shard_key(buf, cases[i].size,
                                  (const uint8_t *) cases[i].key,
                                  cases[i].klen, cases[i].i, cases[i].n);

        if (cases[i].want) {
            tap_is_mem(buf, len, cases[i].want, "shard %u of %u of \"%s\"",
                       cases[i].i, cases[i].n, cases[i].key);

        } else {
            tap_ok(len == 0 && buf[0] == '#',
                   "shard %u of %u of \"%s\" in %zu bytes: refused",
                   cases[i].i, cases[i].n, cases[i].key, cases[i].size);
        }
    }
}


/*
 * Every shard of every count: the tag's slot is in the shard's range, and
 * no smaller number has its slot there (found here the slow way, from the
 * slots of the numbers in order).
 */
static void
test_shard_ranges(void)
{
    char      num[32];
    size_t    len, nlen;
    unsigned  i, j, n, slot, bad, first[ET_STREAM_SHARDS_MAX], found;
    uint8_t   buf[1 + ET_STREAM_SHARD_SUFFIX_MAX];

    static unsigned  slots[2000];

    for (j = 0; j < nelts(slots); j++) {
        nlen = (size_t) snprintf(num, sizeof(num), "%u", j);
        slots[j] = et_slot((const uint8_t *) num, nlen);
    }

    bad = 0;

    for (n = 2; n <= ET_STREAM_SHARDS_MAX; n++) {
        memset(first, 0xff, sizeof(first));
        found = 0;

        for (j = 0; j < nelts(slots) && found < n; j++) {
            i = slots[j] * n / ET_SLOTS;

            if (first[i] == 0xffffffff) {
                first[i] = j;
                found++;
            }
        }

        for (i = 0; i < n; i++) {
            len = et_stream_shard_key(buf, sizeof(buf), (const uint8_t *) "s",
                                      1, i, n);
            nlen = (size_t) snprintf(num, sizeof(num), "s:%u{%u}", i,
                                     first[i]);
            slot = et_slot(buf, len);

            if (len != nlen || memcmp(buf, num, len) != 0
                || slot * n / ET_SLOTS != i)
            {
                if (bad++ == 0) {
                    printf("#   shard %u of %u: '%.*s', expected '%s', "
                           "slot %u\n", i, n, (int) len, buf, num, slot);
                }
            }
        }
    }

    tap_is_int(bad, 0, "shards 2 to %d: each tag is the smallest number "
               "whose slot is in the shard's range", ET_STREAM_SHARDS_MAX);
}


static void
test_shard(void)
{
    size_t   i;
    uint8_t  id[ET_TRACE_ID_LEN];

    static const struct {
        const char  *hex;
        unsigned     n;
        unsigned     want;
    } cases[] = {
        { "00000000000000000000000000000005", 1, 0 },
        { "00000000000000000000000000000005", 4, 1 },
        { "ffffffffffffffff0000000000000005", 4, 1 },
        { "00000000000000000000000000000100", 256, 0 },
        { "000000000000000000000000000001ff", 256, 255 },
        { "0000000000000000ffffffffffffffff", 3, 0 },
        { "0000000000000000ffffffffffffffff", 7, 1 },
        { "0000000000000000ffffffffffffffff", 256, 255 },
        { "00000000000000000102030405060708", 1000, 856 },
        /* a 64-bit B3 trace id, padded at the front */
        { "0000000000000000463ac35c9f6413ad", 4, 1 },
        { "0000000000000000463ac35c9f6413ad", 8, 5 },
        { "0000000000000000463ac35c9f6413ad", 256, 173 },
        { "4bf92f3577b34da6a3ce929d0e0e4736", 8, 6 },
        { "4bf92f3577b34da6a3ce929d0e0e4736", 256, 54 },
    };

    for (i = 0; i < nelts(cases); i++) {
        et_hex_decode(id, (const uint8_t *) cases[i].hex, ET_TRACE_ID_LEN);
        tap_is_int(et_stream_shard(id, cases[i].n), cases[i].want,
                   "trace %s, %u shards: shard %u", cases[i].hex, cases[i].n,
                   cases[i].want);
    }
}


/* --- options and prefix --- */


static void
test_option(void)
{
    int               rc;
    size_t            i, j;
    uint8_t          *in;
    const char       *err;
    et_stream_opts_t  opts, before;

    static const struct {
        const char  *in;
        size_t       len;
        int          rc;
        uint64_t     maxlen;
        unsigned     shards;
        const char  *err;
    } cases[] = {
        { T("maxlen=0"), ET_OK, 0, 1, NULL },
        { T("maxlen=1"), ET_OK, 1, 1, NULL },
        { T("maxlen=1000000"), ET_OK, 1000000, 1, NULL },
        { T("maxlen=007"), ET_OK, 7, 1, NULL },
        { T("maxlen=9223372036854775807"), ET_OK, 9223372036854775807ULL, 1,
          NULL },
        { T("maxlen=9223372036854775808"), ET_ERROR, 0, 0,
          "maxlen is too large" },
        { T("maxlen=18446744073709551615"), ET_ERROR, 0, 0,
          "maxlen is too large" },
        { T("maxlen=18446744073709551616"), ET_ERROR, 0, 0,
          "maxlen is too large" },
        { T("maxlen=100000000000000000000000"), ET_ERROR, 0, 0,
          "maxlen is too large" },
        { T("maxlen="), ET_ERROR, 0, 0, "maxlen has no value" },
        { T("maxlen=-1"), ET_ERROR, 0, 0, "maxlen must be a decimal number" },
        { T("maxlen=+1"), ET_ERROR, 0, 0, "maxlen must be a decimal number" },
        { T("maxlen= 1"), ET_ERROR, 0, 0, "maxlen must be a decimal number" },
        { T("maxlen=1 "), ET_ERROR, 0, 0, "maxlen must be a decimal number" },
        { T("maxlen=1k"), ET_ERROR, 0, 0, "maxlen must be a decimal number" },
        { T("maxlen=0x10"), ET_ERROR, 0, 0,
          "maxlen must be a decimal number" },
        { T("maxlen=1e6"), ET_ERROR, 0, 0, "maxlen must be a decimal number" },
        { T("maxlen=1\0"), ET_ERROR, 0, 0, "maxlen must be a decimal number" },
        { T("maxlen==1"), ET_ERROR, 0, 0, "maxlen must be a decimal number" },
        { T("shards=1"), ET_OK, ET_STREAM_DEFAULT_MAXLEN, 1, NULL },
        { T("shards=4"), ET_OK, ET_STREAM_DEFAULT_MAXLEN, 4, NULL },
        { T("shards=256"), ET_OK, ET_STREAM_DEFAULT_MAXLEN, 256, NULL },
        { T("shards=0256"), ET_OK, ET_STREAM_DEFAULT_MAXLEN, 256, NULL },
        { T("shards=0"), ET_ERROR, 0, 0, "shards must be 1 to 256" },
        { T("shards=000"), ET_ERROR, 0, 0, "shards must be 1 to 256" },
        { T("shards=257"), ET_ERROR, 0, 0, "shards must be 1 to 256" },
        { T("shards=4294967296"), ET_ERROR, 0, 0, "shards must be 1 to 256" },
        { T("shards=99999999999999999999999"), ET_ERROR, 0, 0,
          "shards must be 1 to 256" },
        { T("shards="), ET_ERROR, 0, 0, "shards has no value" },
        { T("shards=x"), ET_ERROR, 0, 0, "shards must be a decimal number" },
        { T("shards=-1"), ET_ERROR, 0, 0, "shards must be a decimal number" },
        { T("shards=4 "), ET_ERROR, 0, 0, "shards must be a decimal number" },
        { T("shards=4\0"), ET_ERROR, 0, 0, "shards must be a decimal number" },
        { T("shards=1.5"), ET_ERROR, 0, 0, "shards must be a decimal number" },
        { T("MAXLEN=1"), ET_ERROR, 0, 0,
          "unknown option, expected \"maxlen=N\" or \"shards=N\"" },
        { T("Shards=4"), ET_ERROR, 0, 0,
          "unknown option, expected \"maxlen=N\" or \"shards=N\"" },
        { T("maxlen"), ET_ERROR, 0, 0,
          "unknown option, expected \"maxlen=N\" or \"shards=N\"" },
        { T("shards"), ET_ERROR, 0, 0,
          "unknown option, expected \"maxlen=N\" or \"shards=N\"" },
        { T("shard=4"), ET_ERROR, 0, 0,
          "unknown option, expected \"maxlen=N\" or \"shards=N\"" },
        { T("max=1"), ET_ERROR, 0, 0,
          "unknown option, expected \"maxlen=N\" or \"shards=N\"" },
        { T(" maxlen=1"), ET_ERROR, 0, 0,
          "unknown option, expected \"maxlen=N\" or \"shards=N\"" },
        { T(""), ET_ERROR, 0, 0,
          "unknown option, expected \"maxlen=N\" or \"shards=N\"" },
        { T("minid=5"), ET_ERROR, 0, 0,
          "unknown option, expected \"maxlen=N\" or \"shards=N\"" },
    };

    /* several options, one after the other, as a directive gives them */
    static const struct {
        const char  *in[3];
        int          rc;       /* of the last */
        uint64_t     maxlen;   /* after all */
        unsigned     shards;
        const char  *err;
    } seqs[] = {
        { { "maxlen=5", "shards=4", NULL }, ET_OK, 5, 4, NULL },
        { { "shards=4", "maxlen=5", NULL }, ET_OK, 5, 4, NULL },
        { { "shards=4", "maxlen=0", NULL }, ET_OK, 0, 4, NULL },
        { { "maxlen=5", "maxlen=6", NULL }, ET_ERROR, 5, 1,
          "maxlen is duplicate" },
        { { "maxlen=5", "maxlen=5", NULL }, ET_ERROR, 5, 1,
          "maxlen is duplicate" },
        { { "shards=4", "shards=8", NULL }, ET_ERROR,
          ET_STREAM_DEFAULT_MAXLEN, 4, "shards is duplicate" },
        { { "shards=2", "maxlen=7", "shards=2" }, ET_ERROR, 7, 2,
          "shards is duplicate" },
        { { "shards=2", "maxlen=7", "maxlen=x" }, ET_ERROR, 7, 2,
          "maxlen must be a decimal number" },
        { { "shards=2", "shards=0", NULL }, ET_ERROR,
          ET_STREAM_DEFAULT_MAXLEN, 2, "shards must be 1 to 256" },
    };

    for (i = 0; i < nelts(cases); i++) {
        in = dup_mem(cases[i].in, cases[i].len);
        et_stream_opts_init(&opts);
        before = opts;
        err = NULL;

        rc = et_stream_parse_option(in, cases[i].len, &opts, &err);

        if (cases[i].rc == ET_OK) {
            tap_ok(rc == ET_OK && opts.maxlen == cases[i].maxlen
                   && opts.shards == cases[i].shards,
                   "option \"%s\": maxlen %llu, %u shards",
                   esc(cases[i].in, cases[i].len),
                   (unsigned long long) cases[i].maxlen, cases[i].shards);

        } else {
            tap_ok(rc == ET_ERROR
                   && memcmp(&opts, &before, sizeof(opts)) == 0
                   && err != NULL && strcmp(err, cases[i].err) == 0,
                   "option \"%s\": %s", esc(cases[i].in, cases[i].len),
                   cases[i].err);

            if (err && strcmp(err, cases[i].err) != 0) {
                printf("#   got: %s\n", err);
            }
        }

        free(in);
    }

    for (i = 0; i < nelts(seqs); i++) {
        et_stream_opts_init(&opts);
        err = NULL;
        rc = ET_OK;

        for (j = 0; j < 3 && seqs[i].in[j]; j++) {
            if (rc != ET_OK) {
                break;
            }

            rc = et_stream_parse_option((const uint8_t *) seqs[i].in[j],
                                        strlen(seqs[i].in[j]), &opts, &err);
        }

        tap_ok(rc == seqs[i].rc && opts.maxlen == seqs[i].maxlen
               && opts.shards == seqs[i].shards
               && (seqs[i].err == NULL
                   || (err && strcmp(err, seqs[i].err) == 0)),
               "options \"%s\" \"%s\"%s%s: %s", seqs[i].in[0], seqs[i].in[1],
               seqs[i].in[2] ? " " : "", seqs[i].in[2] ? seqs[i].in[2] : "",
               seqs[i].err ? seqs[i].err : "taken");

        if (rc != seqs[i].rc || (seqs[i].err && err
                                 && strcmp(err, seqs[i].err) != 0))
        {
            printf("#   rc %d, maxlen %llu, shards %u, err %s\n", rc,
                   (unsigned long long) opts.maxlen, opts.shards,
                   err ? err : "-");
        }
    }
}


static void
test_key_check(void)
{
    size_t       i;
    const char  *err;

    static const uint8_t  big[ET_STREAM_KEY_MAX + 1];

    static const struct {
        const uint8_t  *key;
        size_t          klen;
        unsigned        shards;
        const char     *err;   /* NULL: taken */
    } cases[] = {
        { S("edgetrace:spans"), 1, NULL },
        { S("edgetrace:spans"), 256, NULL },
        { S("a{b}"), 1, NULL },
        { S("a}b"), 8, NULL },
        { big, ET_STREAM_KEY_MAX, 256, NULL },
        { S("a{b}"), 2, "a sharded stream's key must not hold \"{\": its "
                        "hash tag would put every shard on one slot" },
        { S("{"), 256, "a sharded stream's key must not hold \"{\": its "
                       "hash tag would put every shard on one slot" },
        { S(""), 1, "the key must be 1 to 1024 bytes" },
        { big, ET_STREAM_KEY_MAX + 1, 1, "the key must be 1 to 1024 bytes" },
    };

    for (i = 0; i < nelts(cases); i++) {
        err = NULL;

        if (cases[i].err == NULL) {
            tap_is_int(et_stream_key_check(cases[i].key, cases[i].klen,
                                           cases[i].shards, &err),
                       ET_OK, "key \"%s\", %u shards: taken",
                       esc(cases[i].key, cases[i].klen > 20 ? 20
                                                            : cases[i].klen),
                       cases[i].shards);
            continue;
        }

        tap_ok(et_stream_key_check(cases[i].key, cases[i].klen,
                                   cases[i].shards, &err) == ET_ERROR
               && err && strcmp(err, cases[i].err) == 0,
               "key \"%s\", %u shards: %s",
               esc(cases[i].key, cases[i].klen > 20 ? 20 : cases[i].klen),
               cases[i].shards, cases[i].err);
    }
}


static void
test_prefix(void)
{
    int          rc;
    size_t       i;
    uint8_t     *buf, *key;
    et_stream_t  st;

    static uint8_t  big[ET_STREAM_KEY_MAX + 1];

    static const struct {
        const char  *key;
        size_t       klen;
        uint64_t     maxlen;
        int          rc;
        unsigned     args;
        const char  *want;
    } cases[] = {
        { T("s"), 0, ET_OK, 3,
          "$4\r\nXADD\r\n$1\r\ns\r\n$1\r\n*\r\n" },
        { T("edgetrace:spans"), 1000000, ET_OK, 6,
          "$4\r\nXADD\r\n$15\r\nedgetrace:spans\r\n"
          "$6\r\nMAXLEN\r\n$1\r\n~\r\n$7\r\n1000000\r\n$1\r\n*\r\n" },
        { T("k"), 9, ET_OK, 6,
          "$4\r\nXADD\r\n$1\r\nk\r\n"
          "$6\r\nMAXLEN\r\n$1\r\n~\r\n$1\r\n9\r\n$1\r\n*\r\n" },
        { T("k"), 9223372036854775807ULL, ET_OK, 6,
          "$4\r\nXADD\r\n$1\r\nk\r\n$6\r\nMAXLEN\r\n$1\r\n~\r\n"
          "$19\r\n9223372036854775807\r\n$1\r\n*\r\n" },
        { T("a b\r\n"), 10, ET_OK, 6,
          "$4\r\nXADD\r\n$5\r\na b\r\n\r\n"
          "$6\r\nMAXLEN\r\n$1\r\n~\r\n$2\r\n10\r\n$1\r\n*\r\n" },
        { T(""), 0, ET_ERROR, 0, NULL },
        { T("k"), 9223372036854775808ULL, ET_ERROR, 0, NULL },
    };

    for (i = 0; i < nelts(cases); i++) {
        key = dup_mem(cases[i].key, cases[i].klen);
        buf = malloc(ET_STREAM_PREFIX_SIZE(cases[i].klen));
        if (buf == NULL) {
            abort();
        }

        rc = et_stream_init(&st, buf, key, cases[i].klen, cases[i].maxlen,
                            1, 1024);
        free(key);

        tap_is_int(rc, cases[i].rc, "stream init \"%s\" maxlen %llu: rc",
                   esc(cases[i].key, cases[i].klen),
                   (unsigned long long) cases[i].maxlen);

        if (rc == ET_OK && cases[i].rc == ET_OK) {
            is_bytes(st.prefix[0].data, st.prefix[0].len, cases[i].want,
                     strlen(cases[i].want), "  prefix");
            tap_is_int(st.prefix_args, cases[i].args, "  prefix arguments");
            tap_ok(st.maxlen == cases[i].maxlen && st.value_max == 1024,
                   "  maxlen and value_max kept");
        }

        free(buf);
    }

    memset(big, 'k', sizeof(big));

    buf = malloc(ET_STREAM_PREFIX_SIZE(ET_STREAM_KEY_MAX));
    if (buf == NULL) {
        abort();
    }

    rc = et_stream_init(&st, buf, big, ET_STREAM_KEY_MAX, 100, 1, 10);
    tap_ok(rc == ET_OK && st.prefix[0].len <= ET_STREAM_PREFIX_SIZE(1024),
           "stream init: a key of ET_STREAM_KEY_MAX bytes");

    rc = et_stream_init(&st, buf, big, ET_STREAM_KEY_MAX + 1, 100, 1, 10);
    tap_is_int(rc, ET_ERROR, "stream init: a key one byte too long");

    rc = et_stream_init(&st, buf, big, 1, 0, 1, 0);
    tap_ok(rc == ET_OK && st.value_max == ET_VALUE_MAX_DEFAULT,
           "stream init: value_max 0 is the default");

    free(buf);
}


/* the prefixes of the shards: one per shard, each with its shard's key */
static void
test_prefix_shards(void)
{
    int          rc, ok;
    size_t       i, n, len, size, min, max;
    uint8_t     *buf, name[64], want[128];
    et_stream_t  st;

    static uint8_t  big[ET_STREAM_KEY_MAX];

    static const char  *want4[] = {
        "$4\r\nXADD\r\n$6\r\ns:0{3}\r\n"
        "$6\r\nMAXLEN\r\n$1\r\n~\r\n$2\r\n10\r\n$1\r\n*\r\n",
        "$4\r\nXADD\r\n$6\r\ns:1{2}\r\n"
        "$6\r\nMAXLEN\r\n$1\r\n~\r\n$2\r\n10\r\n$1\r\n*\r\n",
        "$4\r\nXADD\r\n$6\r\ns:2{1}\r\n"
        "$6\r\nMAXLEN\r\n$1\r\n~\r\n$2\r\n10\r\n$1\r\n*\r\n",
        "$4\r\nXADD\r\n$6\r\ns:3{0}\r\n"
        "$6\r\nMAXLEN\r\n$1\r\n~\r\n$2\r\n10\r\n$1\r\n*\r\n",
    };

    buf = malloc(ET_STREAM_BUF_SIZE(1, 4));
    if (buf == NULL) {
        abort();
    }

    rc = et_stream_init(&st, buf, S("s"), 10, 4, 1024);
    tap_ok(rc == ET_OK && st.shards == 4 && st.prefix_args == 6,
           "stream init \"s\" maxlen=10 shards=4");

    for (i = 0; rc == ET_OK && i < 4; i++) {
        is_bytes(st.prefix[i].data, st.prefix[i].len, want4[i],
                 strlen(want4[i]), "  prefix of shard %zu");
    }

    tap_ok(st.prefix_min == strlen(want4[0])
           && st.prefix_max == strlen(want4[0]),
           "  the shortest and longest prefixes");

    free(buf);

    /* shards of 2 to 6 digits' tags and 1 to 3 digits' numbers */
    buf = malloc(ET_STREAM_BUF_SIZE(15, 256));
    if (buf == NULL) {
        abort();
    }

    rc = et_stream_init(&st, buf, S("edgetrace:spans"), 0, 256, 1024);
    ok = rc == ET_OK && st.prefix_args == 3;
    min = SIZE_MAX;
    max = 0;

    for (i = 0; ok && i < 256; i++) {
        len = et_stream_shard_key(name, sizeof(name), S("edgetrace:spans"),
                                  (unsigned) i, 256);
        n = (size_t) snprintf((char *) want, sizeof(want),
                              "$4\r\nXADD\r\n$%zu\r\n%.*s\r\n$1\r\n*\r\n",
                              len, (int) len, name);
        ok = st.prefix[i].len == n && memcmp(st.prefix[i].data, want, n) == 0;
        min = n < min ? n : min;
        max = n > max ? n : max;
    }

    tap_ok(ok && st.prefix_min == min && st.prefix_max == max && min < max,
           "stream init shards=256: each prefix names its shard (%zu to %zu "
           "bytes)", st.prefix_min, st.prefix_max);

    free(buf);

    /* every count of shards fits ET_STREAM_BUF_SIZE, the longest key too */
    ok = 1;

    for (n = 1; n <= ET_STREAM_SHARDS_MAX; n++) {
        memset(big, 'k', sizeof(big));
        size = ET_STREAM_BUF_SIZE(ET_STREAM_KEY_MAX, n);
        buf = malloc(size);
        if (buf == NULL) {
            abort();
        }

        rc = et_stream_init(&st, buf, big, ET_STREAM_KEY_MAX, 1000000, n,
                            1024);
        ok &= rc == ET_OK
              && st.prefix[n - 1].data + st.prefix[n - 1].len <= buf + size;
        free(buf);
    }

    tap_ok(ok, "stream init: 1 to %d shards of a key of %d bytes, in "
           "ET_STREAM_BUF_SIZE", ET_STREAM_SHARDS_MAX, ET_STREAM_KEY_MAX);

    buf = malloc(ET_STREAM_BUF_SIZE(4, 257));
    if (buf == NULL) {
        abort();
    }

    tap_is_int(et_stream_init(&st, buf, S("s"), 0, 0, 1024), ET_ERROR,
               "stream init: 0 shards");
    tap_is_int(et_stream_init(&st, buf, S("s"), 0, 257, 1024), ET_ERROR,
               "stream init: 257 shards");
    tap_is_int(et_stream_init(&st, buf, S("a{b}"), 0, 2, 1024), ET_ERROR,
               "stream init: a key with \"{\", 2 shards");
    tap_is_int(et_stream_init(&st, buf, S("a{b}"), 0, 1, 1024), ET_OK,
               "stream init: a key with \"{\", 1 shard");

    free(buf);
}


/* --- entries --- */


static const uint8_t  tid[16] = {
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
    0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f
};

static const uint8_t  sid[8] = {
    0xde, 0xad, 0xbe, 0xef, 0x00, 0x11, 0x22, 0x33
};

static const uint8_t  pid[8] = {
    0x01, 0x02, 0x03, 0x04, 0xa5, 0xff, 0x70, 0x80
};


static void
span_base(et_span_t *span)
{
    memset(span, 0, sizeof(et_span_t));
    memcpy(span->trace_id, tid, 16);
    memcpy(span->span_id, sid, 8);
    memcpy(span->parent_id, pid, 8);
}


#define PREFIX_S  "$4\r\nXADD\r\n$1\r\ns\r\n$1\r\n*\r\n"
#define PREFIX_ET "$4\r\nXADD\r\n$15\r\nedgetrace:spans\r\n"                 \
                  "$6\r\nMAXLEN\r\n$1\r\n~\r\n$7\r\n1000000\r\n$1\r\n*\r\n"
#define IDS       "$1\r\nv\r\n$1\r\n1\r\n"                                     \
                  "$8\r\ntrace_id\r\n$32\r\n"                                 \
                  "000102030405060708090a0b0c0d0e0f\r\n"                      \
                  "$7\r\nspan_id\r\n$16\r\ndeadbeef00112233\r\n"
#define PARENT    "$9\r\nparent_id\r\n$16\r\n01020304a5ff7080\r\n"


static void
test_entries(void)
{
    size_t        i, len;
    uint8_t      *buf, kbuf[ET_KEY_RESP_SIZE(8)];
    uint8_t       sbuf[ET_FIELD_RESP_SIZE(12, 3)];
    et_key_t      kn;
    et_str_t      service;
    et_span_t     span;
    et_attr_t     attrs[8];
    et_try_t      tries[2];
    et_stream_t   st_s, st_et;
    uint8_t       pbuf_s[ET_STREAM_PREFIX_SIZE(1)];
    uint8_t       pbuf_et[ET_STREAM_PREFIX_SIZE(15)];

    static const char  *want[] = {

        /* 0: a root server span, nothing optional */
        "*19\r\n" PREFIX_S IDS
        "$4\r\nname\r\n$5\r\nGET /\r\n"
        "$4\r\nkind\r\n$6\r\nserver\r\n"
        "$8\r\nstart_ns\r\n$19\r\n1700000000000000000\r\n"
        "$6\r\nend_ns\r\n$19\r\n1700000000000123456\r\n"
        "$6\r\nstatus\r\n$5\r\nunset\r\n",

        /* 1: a client span with everything */
        "*38\r\n" PREFIX_ET IDS PARENT
        "$4\r\nname\r\n$0\r\n\r\n"
        "$4\r\nkind\r\n$6\r\nclient\r\n"
        "$8\r\nstart_ns\r\n$1\r\n0\r\n"
        "$6\r\nend_ns\r\n$1\r\n9\r\n"
        "$6\r\nstatus\r\n$5\r\nerror\r\n"
        "$12\r\nservice.name\r\n$3\r\nsvc\r\n"
        "$10\r\ntracestate\r\n$3\r\na=b\r\n"
        "$8\r\nurl.full\r\n$10\r\nhttp://u/x\r\n"
        "$11\r\nserver.port\r\n$4\r\n8080\r\n"
        "$25\r\nhttp.request.resend_count\r\n$1\r\n1\r\n"
        "$7\r\nevent.0\r\n$82\r\nupstream.try peer=127.0.0.1:8081 "
        "status=502 connect_ms=1 header_ms=2 response_ms=3\r\n"
        "$7\r\nevent.1\r\n$67\r\nupstream.try peer=- status=- "
        "connect_ms=- header_ms=- response_ms=0\r\n",

        /* 2: numbers at their limits */
        "*29\r\n" PREFIX_S IDS
        "$4\r\nname\r\n$1\r\nx\r\n"
        "$4\r\nkind\r\n$6\r\nserver\r\n"
        "$8\r\nstart_ns\r\n$20\r\n18446744073709551615\r\n"
        "$6\r\nend_ns\r\n$10\r\n1000000000\r\n"
        "$6\r\nstatus\r\n$5\r\nunset\r\n"
        "$1\r\nn\r\n$20\r\n-9223372036854775808\r\n"
        "$1\r\nn\r\n$19\r\n9223372036854775807\r\n"
        "$1\r\nn\r\n$2\r\n-1\r\n"
        "$1\r\nn\r\n$1\r\n0\r\n"
        "$1\r\nn\r\n$2\r\n99\r\n",
    };

    et_stream_init(&st_s, pbuf_s, S("s"), 0, 1, 1024);
    et_stream_init(&st_et, pbuf_et, S("edgetrace:spans"), 1000000, 1, 1024);
    et_key_init(&kn, kbuf, S("n"));
    et_field_init(&service, sbuf, S("service.name"), S("svc"));

    for (i = 0; i < nelts(want); i++) {
        span_base(&span);

        switch (i) {

        case 0:
            span.name.data = (const uint8_t *) "GET /";
            span.name.len = 5;
            span.start_ns = 1700000000000000000ULL;
            span.end_ns = 1700000000000123456ULL;
            break;

        case 1:
            span.has_parent = 1;
            span.kind = ET_SPAN_CLIENT;
            span.status = ET_STATUS_ERROR;
            span.end_ns = 9;
            span.service = &service;
            span.tracestate.data = (const uint8_t *) "a=b";
            span.tracestate.len = 3;

            memset(attrs, 0, sizeof(attrs));
            attrs[0].key = &et_key_url_full;
            attrs[0].type = ET_ATTR_STRING;
            attrs[0].str.data = (const uint8_t *) "http://u/x";
            attrs[0].str.len = 10;
            attrs[1].key = &et_key_server_port;
            attrs[1].type = ET_ATTR_INT;
            attrs[1].num = 8080;
            attrs[2].key = &et_key_http_request_resend_count;
            attrs[2].type = ET_ATTR_INT;
            attrs[2].num = 1;
            span.attrs = attrs;
            span.nattrs = 3;

            tries[0].peer.data = (const uint8_t *) "127.0.0.1:8081";
            tries[0].peer.len = 14;
            tries[0].status = 502;
            tries[0].connect_ms = 1;
            tries[0].header_ms = 2;
            tries[0].response_ms = 3;
            tries[1].peer.data = NULL;
            tries[1].peer.len = 0;
            tries[1].status = 0;
            tries[1].connect_ms = -1;
            tries[1].header_ms = -1;
            tries[1].response_ms = 0;
            span.tries = tries;
            span.ntries = 2;
            break;

        case 2:
            span.name.data = (const uint8_t *) "x";
            span.name.len = 1;
            span.start_ns = UINT64_MAX;
            span.end_ns = 1000000000;

            memset(attrs, 0, sizeof(attrs));
            attrs[0].key = &kn;
            attrs[0].type = ET_ATTR_INT;
            attrs[0].num = INT64_MIN;
            attrs[1].key = &kn;
            attrs[1].type = ET_ATTR_INT;
            attrs[1].num = INT64_MAX;
            attrs[2].key = &kn;
            attrs[2].type = ET_ATTR_INT;
            attrs[2].num = -1;
            attrs[3].key = &kn;
            attrs[3].type = ET_ATTR_INT;
            attrs[3].num = 0;
            attrs[4].key = &kn;
            attrs[4].type = ET_ATTR_INT;
            attrs[4].num = 99;
            span.attrs = attrs;
            span.nattrs = 5;
            break;
        }

        buf = encode(i == 1 ? &st_et : &st_s, &span, &len, "entry");
        is_bytes(buf, len, want[i], strlen(want[i]), "  exact bytes");
        free(buf);

        if (i == 1) {
            tap_ok(check_ref(&st_et, "edgetrace:spans", 15, &span),
                   "  same as the reference encoder");

        } else {
            tap_ok(check_ref(&st_s, "s", 1, &span),
                   "  same as the reference encoder");
        }
    }
}


/*
 * Times: 19-digit times share their seconds' digits, anything else takes
 * the general path; both give the decimal the reference encoder prints.
 */
/*
 * Sharded: the entry of a span is the one a single stream named as its
 * shard writes, byte for byte; spans of one trace share their shard.
 */
static void
test_shard_entries(void)
{
    size_t        i, j, k, size, len;
    uint8_t      *buf, *one, *pbuf, *pbuf1, name[32], kbuf[ET_KEY_RESP_SIZE(8)];
    unsigned      shard, seen[4];
    et_key_t      kn;
    et_span_t     span;
    et_attr_t     attrs[2];
    et_try_t      tries[1];
    et_stream_t   st, st1;

    static const char  want[] =
        "*19\r\n$4\r\nXADD\r\n$6\r\ns:3{0}\r\n$1\r\n*\r\n" IDS
        "$4\r\nname\r\n$5\r\nGET /\r\n"
        "$4\r\nkind\r\n$6\r\nserver\r\n"
        "$8\r\nstart_ns\r\n$19\r\n1700000000000000000\r\n"
        "$6\r\nend_ns\r\n$19\r\n1700000000000123456\r\n"
        "$6\r\nstatus\r\n$5\r\nunset\r\n";

    pbuf = malloc(ET_STREAM_BUF_SIZE(1, 4));
    pbuf1 = malloc(ET_STREAM_PREFIX_SIZE(8));
    buf = malloc(4096);
    one = malloc(4096);
    if (pbuf == NULL || pbuf1 == NULL || buf == NULL || one == NULL) {
        abort();
    }

    et_stream_init(&st, pbuf, S("s"), 0, 4, 1024);
    et_key_init(&kn, kbuf, S("n"));

    /* trace ...0c0d0e0f: 0x08090a0b0c0d0e0f mod 4 is 3 */
    span_base(&span);
    span.name.data = (const uint8_t *) "GET /";
    span.name.len = 5;
    span.start_ns = 1700000000000000000ULL;
    span.end_ns = 1700000000000123456ULL;

    size = et_entry_size(&st, &span);
    len = (size_t) (et_entry_write(&st, &span, buf) - buf);
    is_bytes(buf, len, want, sizeof(want) - 1,
             "shards=4: a span of trace ...0e0f goes to s:3{0}");
    tap_ok(size == len && et_entry_size_max(&st, &span) >= size
           && et_entry_size_min(&st) <= size,
           "shards=4: et_entry_size exact, within the bound and the minimum");

    /* 16 traces, each with a server and a client span */
    memset(seen, 0, sizeof(seen));

    for (i = 0; i < 16; i++) {
        for (k = 0; k < 2; k++) {
            span_base(&span);
            span.trace_id[0] = (uint8_t) (0xa0 + i);
            span.trace_id[15] = (uint8_t) (i * 37 + 5);
            span.trace_id[9] = (uint8_t) i;
            span.span_id[7] = (uint8_t) k;
            span.has_parent = k;
            span.kind = k ? ET_SPAN_CLIENT : ET_SPAN_SERVER;
            span.name.data = (const uint8_t *) "GET /x";
            span.name.len = k ? 6 : 5;
            span.start_ns = 1700000000000000000ULL + i;
            span.end_ns = span.start_ns + 1000;
            attrs[0].key = &kn;
            attrs[0].type = ET_ATTR_INT;
            attrs[0].num = (int64_t) i;
            attrs[1].key = &kn;
            attrs[1].type = ET_ATTR_STRING;
            attrs[1].str.data = (const uint8_t *) "value";
            attrs[1].str.len = 5;
            span.attrs = attrs;
            span.nattrs = 2;
            tries[0].peer.data = (const uint8_t *) "127.0.0.1:80";
            tries[0].peer.len = 12;
            tries[0].status = 200;
            tries[0].connect_ms = 1;
            tries[0].header_ms = 2;
            tries[0].response_ms = 3;
            span.tries = tries;
            span.ntries = k;

            shard = et_stream_shard(span.trace_id, 4);
            seen[shard]++;

            j = et_stream_shard_key(name, sizeof(name), S("s"), shard, 4);
            et_stream_init(&st1, pbuf1, name, j, 0, 1, 1024);

            size = et_entry_size(&st, &span);
            len = (size_t) (et_entry_write(&st, &span, buf) - buf);

            tap_ok(len == size
                   && len == (size_t) (et_entry_write(&st1, &span, one) - one)
                   && memcmp(buf, one, len) == 0
                   && et_entry_size_max(&st, &span) >= size
                   && et_entry_size_min(&st) <= size,
                   "shards=4: trace %zu's %s span is the entry of its "
                   "shard's key %.*s", i, k ? "client" : "server", (int) j,
                   name);
        }
    }

    tap_ok(seen[0] && seen[1] && seen[2] && seen[3],
           "shards=4: the 16 traces reach every shard (%u %u %u %u)",
           seen[0], seen[1], seen[2], seen[3]);

    /* the smallest entry: an empty span in the shard of the shortest name */
    free(pbuf);
    pbuf = malloc(ET_STREAM_BUF_SIZE(1, 256));
    if (pbuf == NULL) {
        abort();
    }

    et_stream_init(&st, pbuf, S("s"), 0, 256, 1024);
    len = SIZE_MAX;

    for (i = 0; i < 256; i++) {
        memset(&span, 0, sizeof(et_span_t));
        span.trace_id[15] = (uint8_t) i;
        size = et_entry_size(&st, &span);
        len = size < len ? size : len;
    }

    tap_is_int(et_entry_size_min(&st), len,
               "shards=256: et_entry_size_min is the smallest entry of any "
               "shard");

    free(pbuf);
    free(pbuf1);
    free(buf);
    free(one);
}


static void
test_times(void)
{
    char          want[128];
    size_t        i, len;
    uint8_t      *buf;
    et_span_t     span;
    et_stream_t   st;
    uint8_t       pbuf[ET_STREAM_PREFIX_SIZE(1)];

    static const struct {
        const char  *name;
        uint64_t     start;
        uint64_t     end;
    } cases[] = {
        { "same second", 1700000000000000000ULL, 1700000000999999999ULL },
        { "next second", 1700000000999999999ULL, 1700000001000000000ULL },
        { "nanoseconds with leading zeros", 1700000000000000001ULL,
          1700000000000000010ULL },
        { "seconds differ in every digit", 1999999999999999999ULL,
          2000000000000000000ULL },
        { "first 19-digit time", 1000000000000000000ULL,
          1000000000000000000ULL },
        { "last 19-digit time", 9999999999999999999ULL,
          9999999999999999999ULL },
        { "start below 19 digits", 999999999999999999ULL,
          1000000000000000000ULL },
        { "end above 19 digits", 9999999999999999999ULL,
          10000000000000000000ULL },
        { "end before start", 1700000001000000000ULL,
          1700000000000000000ULL },
        { "zero", 0, 0 },
        { "largest", UINT64_MAX, UINT64_MAX },
    };

    et_stream_init(&st, pbuf, S("s"), 0, 1, 1024);

    for (i = 0; i < nelts(cases); i++) {
        span_base(&span);
        span.start_ns = cases[i].start;
        span.end_ns = cases[i].end;

        buf = encode(&st, &span, &len, cases[i].name);

        snprintf(want, sizeof(want),
                 "$8\r\nstart_ns\r\n$%d\r\n%llu\r\n"
                 "$6\r\nend_ns\r\n$%d\r\n%llu\r\n",
                 snprintf(NULL, 0, "%llu", (unsigned long long) span.start_ns),
                 (unsigned long long) span.start_ns,
                 snprintf(NULL, 0, "%llu", (unsigned long long) span.end_ns),
                 (unsigned long long) span.end_ns);

        tap_ok(memmem(buf, len, want, strlen(want)) != NULL,
               "  times written as %llu and %llu",
               (unsigned long long) span.start_ns,
               (unsigned long long) span.end_ns);
        free(buf);

        tap_ok(check_ref(&st, "s", 1, &span), "  same as the reference "
               "encoder");
    }
}


/* --- generated spans, against the reference --- */


static uint64_t  rng = 0x9e3779b97f4a7c15ULL;


static uint64_t
rnd(void)
{
    /* xorshift64*: deterministic, so a failure can be replayed */
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;

    return rng * 2685821657736338717ULL;
}


/* lengths around every change in the width of "$<len>" */
static size_t
rnd_len(size_t max)
{
    static const size_t  edges[] = {
        0, 1, 9, 10, 11, 99, 100, 101, 999, 1000, 1001, 1023, 1024, 1025,
        2000, 9999, 10000, 10001
    };

    size_t  n;

    n = (rnd() & 1) ? edges[rnd() % nelts(edges)] : rnd() % 200;

    return n < max ? n : max;
}


static int64_t
rnd_int(void)
{
    static const int64_t  edges[] = {
        0, 1, -1, 9, 10, -9, -10, 99, 100, 999999999, 1000000000,
        -1000000000, INT64_MAX, INT64_MIN, INT64_MIN + 1, INT64_MAX - 1
    };

    return (rnd() & 1) ? edges[rnd() % nelts(edges)] : (int64_t) rnd();
}


static void
test_generated(void)
{
    size_t        i, j, n, klen;
    uint8_t      *pool, kbufs[4][ET_KEY_RESP_SIZE(20)];
    uint8_t       sbuf[ET_FIELD_RESP_SIZE(12, 20)];
    uint8_t       pbuf[ET_STREAM_PREFIX_SIZE(32)];
    et_key_t      keys[4];
    et_str_t      service;
    et_span_t     span;
    et_attr_t     attrs[20];
    et_try_t      tries[14];
    et_stream_t   st;
    char          key[32];
    int           ok;

    static const size_t  value_max[] = { 1, 5, 10, 100, 1024, 65536 };

    static const char  *knames[] = { "a", "app.tenant", "x.y.z", "k\r\nk" };

    pool = malloc(20000);
    if (pool == NULL) {
        abort();
    }

    for (i = 0; i < 20000; i++) {
        pool[i] = (uint8_t) rnd();
    }

    for (i = 0; i < nelts(knames); i++) {
        et_key_init(&keys[i], kbufs[i], (const uint8_t *) knames[i],
                    strlen(knames[i]));
    }

    et_field_init(&service, sbuf, S("service.name"), S("gateway"));

    ok = 1;

    for (i = 0; i < GENERATED; i++) {
        klen = (size_t) sprintf(key, "stream:%llu",
                                (unsigned long long) (rnd() % 100000));
        et_stream_init(&st, pbuf, (const uint8_t *) key, klen,
                       (rnd() & 1) ? rnd() % 2000000 : 0, 1,
                       value_max[rnd() % nelts(value_max)]);

        span_base(&span);

        for (j = 0; j < 16; j++) {
            span.trace_id[j] = (uint8_t) rnd();
        }

        for (j = 0; j < 8; j++) {
            span.span_id[j] = (uint8_t) rnd();
            span.parent_id[j] = (uint8_t) rnd();
        }

        span.has_parent = rnd() & 1;
        span.kind = rnd() & 1;
        span.status = rnd() & 1;
        span.start_ns = (rnd() & 1) ? rnd() : rnd() % 1000;
        span.end_ns = span.start_ns + rnd() % 1000000000;
        span.name.len = rnd_len(10001);
        span.name.data = pool + rnd() % 9000;
        span.service = (rnd() & 1) ? &service : NULL;
        span.sampling = et_sampling_field(rnd() % 3);
        span.tracestate.len = rnd() % 3 ? 0 : rnd_len(512);
        span.tracestate.data = pool + rnd() % 9000;

        n = rnd() % nelts(attrs);

        for (j = 0; j < n; j++) {
            attrs[j].key = &keys[rnd() % nelts(keys)];
            attrs[j].type = (rnd() & 1) ? ET_ATTR_INT : ET_ATTR_STRING;
            attrs[j].num = rnd_int();
            attrs[j].str.len = rnd_len(10001);
            attrs[j].str.data = pool + rnd() % 9000;
        }

        span.attrs = attrs;
        span.nattrs = n;

        n = (rnd() & 3) ? rnd() % 3 : rnd() % nelts(tries);

        for (j = 0; j < n; j++) {
            tries[j].peer.len = rnd_len(2000);
            tries[j].peer.data = pool + rnd() % 9000;
            tries[j].status = (rnd() & 1) ? 0 : (unsigned) (rnd() % 1000);
            tries[j].connect_ms = (rnd() & 1) ? -1 : (int64_t) (rnd() % 100000);
            tries[j].header_ms = (rnd() & 1) ? -1 : (int64_t) (rnd() % 10);
            tries[j].response_ms = (rnd() & 3) ? (int64_t) (rnd() % 1000000)
                                               : -1;
        }

        span.tries = tries;
        span.ntries = n;

        if (!check_ref(&st, key, klen, &span)) {
            printf("#   generated span %zu differs\n", i);
            ok = 0;
            break;
        }
    }

    tap_ok(ok, "%d generated spans: exact size, same bytes as the "
           "reference encoder, one command each", GENERATED);

    free(pool);
}


/* --- hostile values and truncation --- */


static const struct {
    const char  *name;
    const char  *value;
    size_t       len;
} hostile[] = {
    { "CRLF", T("a\r\nb") },
    { "CRLF only", T("\r\n") },
    { "NUL", T("a\0b") },
    { "NUL only", T("\0") },
    { "a bulk header", T("$3\r\n") },
    { "a whole field", T("x\r\n$6\r\nstatus\r\n$5\r\nerror") },
    { "a new command", T("\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n") },
    { "an array header", T("*1\r\n") },
    { "lone CR", T("\r") },
    { "lone LF", T("\n") },
    { "high bytes", T("\xff\xfe\x80\xc3\x28") },
    { "empty", T("") },
};


static void
test_hostile(void)
{
    long         nargs;
    size_t       i, len;
    uint8_t     *buf, *v, pbuf[ET_STREAM_PREFIX_SIZE(1)];
    et_str_t     args[64];
    et_span_t    span;
    et_attr_t    attr;
    et_try_t     try;
    et_stream_t  st;

    et_stream_init(&st, pbuf, S("s"), 0, 1, 1024);

    for (i = 0; i < nelts(hostile); i++) {
        v = dup_mem(hostile[i].value, hostile[i].len);

        span_base(&span);
        span.name.data = v;
        span.name.len = hostile[i].len;
        span.tracestate.data = v;
        span.tracestate.len = hostile[i].len;

        attr.key = &et_key_user_agent_original;
        attr.type = ET_ATTR_STRING;
        attr.str.data = v;
        attr.str.len = hostile[i].len;
        span.attrs = &attr;
        span.nattrs = 1;

        try.peer.data = v;
        try.peer.len = hostile[i].len;
        try.status = 200;
        try.connect_ms = 0;
        try.header_ms = 0;
        try.response_ms = 0;
        span.tries = &try;
        span.ntries = 1;

        buf = encode(&st, &span, &len, hostile[i].name);
        nargs = resp_parse(buf, len, args, nelts(args));

        /* 3 prefix, 8 fixed fields, tracestate, attribute, event */
        tap_is_int(nargs, 3 + 2 * (8 + (hostile[i].len ? 1 : 0) + 2),
                   "%s: still one command, no field added", hostile[i].name);

        if (nargs > 10) {
            is_bytes(args[10].data, args[10].len, hostile[i].value,
                     hostile[i].len, "  name value intact");
            is_bytes(args[nargs - 3].data, args[nargs - 3].len,
                     hostile[i].value, hostile[i].len,
                     "  attribute value intact");
        }

        tap_ok(check_ref(&st, "s", 1, &span),
               "  same as the reference encoder");

        free(buf);
        free(v);
    }
}


static void
test_truncation(void)
{
    size_t       i, len;
    long         nargs;
    uint8_t     *buf, pbuf[ET_STREAM_PREFIX_SIZE(1)];
    et_str_t     args[64];
    et_span_t    span;
    et_attr_t    attrs[3];
    et_try_t     try;
    et_stream_t  st;

    static const struct {
        size_t       value_max;
        const char  *value;
        const char  *want;
    } cases[] = {
        { 5, "abcdefgh", "abcde" },
        { 5, "abcdef", "abcde" },
        { 5, "abcde", "abcde" },
        { 5, "abcd", "abcd" },
        { 5, "", "" },
        { 1, "ab", "a" },
        { 3, "a\r\nb", "a\r\n" },
        { 2, "a\r\nb", "a\r" },
    };

    for (i = 0; i < nelts(cases); i++) {
        et_stream_init(&st, pbuf, S("s"), 0, 1, cases[i].value_max);

        span_base(&span);
        span.name.data = (const uint8_t *) cases[i].value;
        span.name.len = strlen(cases[i].value);
        span.tracestate.data = (const uint8_t *) "k=0123456789";
        span.tracestate.len = 12;

        attrs[0].key = &et_key_url_path;
        attrs[0].type = ET_ATTR_STRING;
        attrs[0].str.data = (const uint8_t *) cases[i].value;
        attrs[0].str.len = strlen(cases[i].value);
        attrs[1].key = &et_key_http_response_status_code;
        attrs[1].type = ET_ATTR_INT;
        attrs[1].num = -1234567;
        span.attrs = attrs;
        span.nattrs = 2;

        try.peer.data = (const uint8_t *) cases[i].value;
        try.peer.len = strlen(cases[i].value);
        try.status = 0;
        try.connect_ms = -1;
        try.header_ms = -1;
        try.response_ms = -1;
        span.tries = &try;
        span.ntries = 1;

        buf = encode(&st, &span, &len, "truncation");
        nargs = resp_parse(buf, len, args, nelts(args));

        tap_is_int(nargs, 3 + 2 * 12, "value_max %zu \"%s\": one command",
                   cases[i].value_max,
                   esc(cases[i].value, strlen(cases[i].value)));

        if (nargs == 27) {
            is_bytes(args[10].data, args[10].len, cases[i].want,
                     strlen(cases[i].want), "  name cut");
            is_bytes(args[20].data, args[20].len, "k=0123456789", 12,
                     "  tracestate not cut (the parser bounds it)");
            is_bytes(args[22].data, args[22].len, cases[i].want,
                     strlen(cases[i].want), "  string attribute cut");
            is_bytes(args[24].data, args[24].len, "-1234567", 8,
                     "  integer attribute not cut");
        }

        tap_ok(check_ref(&st, "s", 1, &span),
               "  same as the reference encoder");
        free(buf);
    }
}


/* --- through a real Redis --- */


/* sends an entry as is, pipelined */
static int
redis_send(redisContext *c, const et_stream_t *st, const et_span_t *span)
{
    int       rc;
    size_t    size;
    uint8_t  *buf;

    size = et_entry_size(st, span);
    buf = malloc(size);
    if (buf == NULL) {
        abort();
    }

    if (et_entry_write(st, span, buf) != buf + size) {
        free(buf);
        return REDIS_ERR;
    }

    rc = redisAppendFormattedCommand(c, (const char *) buf, size);
    free(buf);

    return rc;
}


/* the reply of an XADD: the new entry's id */
static int
redis_xadd_reply(redisContext *c)
{
    int          ok;
    redisReply  *r;

    if (redisGetReply(c, (void **) &r) != REDIS_OK) {
        printf("#   redis: %s\n", c->errstr);
        return 0;
    }

    ok = r->type == REDIS_REPLY_STRING && memchr(r->str, '-', r->len);

    if (!ok && r->type == REDIS_REPLY_ERROR) {
        printf("#   redis: %.*s\n", (int) r->len, r->str);
    }

    freeReplyObject(r);

    return ok;
}


static long long
redis_xlen(redisContext *c, const uint8_t *key, size_t klen)
{
    long long    n;
    redisReply  *r;

    r = redisCommand(c, "XLEN %b", key, klen);

    if (r == NULL) {
        return -1;
    }

    n = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);

    return n;
}


static void
redis_del(redisContext *c, const uint8_t *key, size_t klen)
{
    redisReply  *r;

    r = redisCommand(c, "DEL %b", key, klen);

    if (r) {
        freeReplyObject(r);
    }
}


/* compares one entry read back ([id, [f, v, ...]]) with the expected pairs */
static int
entry_matches(const redisReply *e, const et_span_t *span, size_t value_max,
    const char *name)
{
    size_t             i, npairs;
    pair_t             pairs[MAX_PAIRS];
    const redisReply  *f, *v;
    int                ok;

    npairs = ref_pairs(span, value_max, pairs);

    ok = e->type == REDIS_REPLY_ARRAY && e->elements == 2
         && e->element[1]->type == REDIS_REPLY_ARRAY
         && e->element[1]->elements == 2 * npairs;

    if (!ok) {
        printf("#   %s: %zu fields expected, got %zu\n", name, npairs,
               e->type == REDIS_REPLY_ARRAY && e->elements == 2
               ? e->element[1]->elements / 2 : 0);
        pairs_free(pairs, npairs);
        return 0;
    }

    for (i = 0; i < npairs; i++) {
        f = e->element[1]->element[2 * i];
        v = e->element[1]->element[2 * i + 1];

        if (pairs[i].value == NULL) {
            /* service.name: its value is the tail of et_field_init() */
            pairs[i].value = dup_mem("svc\r\n\0\x01", 7);
            pairs[i].value_len = 7;
        }

        if (f->len != pairs[i].name_len
            || memcmp(f->str, pairs[i].name, f->len) != 0
            || v->len != pairs[i].value_len
            || (v->len && memcmp(v->str, pairs[i].value, v->len) != 0))
        {
            printf("#   %s: field %zu differs\n", name, i);
            print_escaped("got field", (const uint8_t *) f->str, f->len);
            print_escaped("got value", (const uint8_t *) v->str, v->len);
            print_escaped("expected field", pairs[i].name, pairs[i].name_len);
            print_escaped("expected value", pairs[i].value,
                          pairs[i].value_len);
            ok = 0;
        }
    }

    pairs_free(pairs, npairs);

    return ok;
}


/*
 * Sharded: spans of 24 traces, 3 each, to 4 shards of a real Redis; each
 * shard's entries are of its own traces, and the lengths add up.
 */
static void
test_redis_shards(redisContext *c)
{
    int           ok;
    size_t        i, j, k, len, total;
    uint8_t      *pbuf, name[4][32], id[ET_TRACE_ID_LEN];
    size_t        nlen[4];
    unsigned      bad;
    et_span_t     span;
    et_stream_t   st;
    redisReply   *r, *f;

    pbuf = malloc(ET_STREAM_BUF_SIZE(10, 4));
    if (pbuf == NULL) {
        abort();
    }

    et_stream_init(&st, pbuf, S("et:test:sh"), 0, 4, 1024);

    for (i = 0; i < 4; i++) {
        nlen[i] = et_stream_shard_key(name[i], sizeof(name[i]),
                                      S("et:test:sh"), (unsigned) i, 4);
        redis_del(c, name[i], nlen[i]);
    }

    ok = 1;

    for (i = 0; i < 24; i++) {
        for (k = 0; k < 3; k++) {
            span_base(&span);

            /* the same trace for the 3 spans */
            memset(span.trace_id, (int) i, 8);
            span.trace_id[15] = (uint8_t) (i * 7);
            span.trace_id[8] = (uint8_t) i;
            memset(span.trace_id + 9, 0x5a, 6);
            span.span_id[0] = (uint8_t) k;
            span.start_ns = 1700000000000000000ULL;
            span.end_ns = span.start_ns + k;

            ok &= redis_send(c, &st, &span) == REDIS_OK;
        }
    }

    for (i = 0; i < 72; i++) {
        ok &= redis_xadd_reply(c);
    }

    tap_ok(ok, "shards=4: 72 entries sent raw, pipelined: each got an id");

    total = 0;
    bad = 0;

    for (i = 0; i < 4; i++) {
        r = redisCommand(c, "XRANGE %b - +", name[i], nlen[i]);

        if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
            bad++;
            continue;
        }

        for (j = 0; j < r->elements; j++) {
            /* v 1 trace_id <hex> ... */
            f = r->element[j]->element[1]->element[3];
            len = f->len;

            if (len != 32
                || et_hex_decode(id, (const uint8_t *) f->str, 16) != ET_OK
                || et_stream_shard(id, 4) != i)
            {
                bad++;
            }
        }

        total += r->elements;
        tap_ok(r->elements > 0, "shards=4: shard %.*s holds %zu entries",
               (int) nlen[i], name[i], r->elements);
        freeReplyObject(r);
        redis_del(c, name[i], nlen[i]);
    }

    tap_ok(total == 72 && bad == 0,
           "shards=4: every entry is in its trace's shard, %zu in all", total);

    free(pbuf);
}


static void
test_redis(void)
{
    int           ok;
    size_t        i, j, n;
    uint8_t       pbuf[ET_STREAM_PREFIX_SIZE(32)], binary[256];
    uint8_t       sbuf[ET_FIELD_RESP_SIZE(12, 7)], kbuf[ET_KEY_RESP_SIZE(8)];
    et_key_t      kbin;
    et_str_t      service;
    et_span_t     spans[nelts(hostile) + 3];
    et_attr_t     attrs[nelts(hostile) + 3][4];
    et_try_t      tries[2];
    et_stream_t   st;
    long long     xlen;
    redisReply   *r;
    redisContext *c;

    static const uint8_t  key[] = "et:test:\r\n$1\r\nstream";

    c = tap_redis_connect("t/unit/stream.t");
    if (c == NULL) {
        return;
    }

    for (i = 0; i < 256; i++) {
        binary[i] = (uint8_t) i;
    }

    /* a key and a service name that are not text either */
    redis_del(c, key, sizeof(key) - 1);
    et_stream_init(&st, pbuf, key, sizeof(key) - 1, 1000, 1, 1024);
    et_field_init(&service, sbuf, S("service.name"),
                  (const uint8_t *) "svc\r\n\0\x01", 7);
    et_key_init(&kbin, kbuf, (const uint8_t *) "bin\0\r\n", 6);

    n = 0;

    for (i = 0; i < nelts(hostile); i++) {
        span_base(&spans[n]);
        spans[n].name.data = (const uint8_t *) hostile[i].value;
        spans[n].name.len = hostile[i].len;
        spans[n].start_ns = 1700000000000000000ULL + i;
        spans[n].end_ns = spans[n].start_ns + 1000 * i;
        spans[n].service = &service;
        spans[n].sampling = et_sampling_field(ET_SAMPLING_HEAD + i % 2);

        attrs[n][0].key = &et_key_user_agent_original;
        attrs[n][0].type = ET_ATTR_STRING;
        attrs[n][0].str.data = (const uint8_t *) hostile[i].value;
        attrs[n][0].str.len = hostile[i].len;
        attrs[n][1].key = &kbin;
        attrs[n][1].type = ET_ATTR_STRING;
        attrs[n][1].str.data = binary;
        attrs[n][1].str.len = 256;
        attrs[n][2].key = &et_key_server_port;
        attrs[n][2].type = ET_ATTR_INT;
        attrs[n][2].num = -(int64_t) i;
        spans[n].attrs = attrs[n];
        spans[n].nattrs = 3;
        n++;
    }

    /* a client span with retries and every optional field */
    span_base(&spans[n]);
    spans[n].has_parent = 1;
    spans[n].kind = ET_SPAN_CLIENT;
    spans[n].status = ET_STATUS_ERROR;
    spans[n].name.data = (const uint8_t *) "GET upstream";
    spans[n].name.len = 12;
    spans[n].start_ns = 1;
    spans[n].end_ns = UINT64_MAX;
    spans[n].tracestate.data = (const uint8_t *) "vendor=a,other@x=b";
    spans[n].tracestate.len = 18;
    attrs[n][0].key = &et_key_http_request_resend_count;
    attrs[n][0].type = ET_ATTR_INT;
    attrs[n][0].num = 1;
    attrs[n][1].key = &et_key_url_full;
    attrs[n][1].type = ET_ATTR_STRING;
    attrs[n][1].str.data = binary;
    attrs[n][1].str.len = 256;
    spans[n].attrs = attrs[n];
    spans[n].nattrs = 2;
    tries[0].peer.data = (const uint8_t *) "[::1]:8080";
    tries[0].peer.len = 10;
    tries[0].status = 0;
    tries[0].connect_ms = -1;
    tries[0].header_ms = -1;
    tries[0].response_ms = 3000;
    tries[1].peer.data = (const uint8_t *) "10.0.0.2:80";
    tries[1].peer.len = 11;
    tries[1].status = 200;
    tries[1].connect_ms = 0;
    tries[1].header_ms = 12;
    tries[1].response_ms = 13;
    spans[n].tries = tries;
    spans[n].ntries = 2;
    n++;

    /* a span whose values are cut: value_max 1024, a value of 2000 */
    span_base(&spans[n]);
    spans[n].name.data = (const uint8_t *) "cut";
    spans[n].name.len = 3;
    attrs[n][0].key = &et_key_url_query;
    attrs[n][0].type = ET_ATTR_STRING;
    attrs[n][0].str.data = (const uint8_t *) calloc(1, 2000);
    attrs[n][0].str.len = 2000;
    spans[n].attrs = attrs[n];
    spans[n].nattrs = 1;
    n++;

    ok = 1;

    for (i = 0; i < n; i++) {
        ok &= redis_send(c, &st, &spans[i]) == REDIS_OK;
    }

    for (i = 0; i < n; i++) {
        ok &= redis_xadd_reply(c);
    }

    tap_ok(ok, "%zu entries sent raw, pipelined: each got an id", n);

    r = redisCommand(c, "XRANGE %b - +", key, sizeof(key) - 1);

    ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == n;
    tap_ok(ok, "XRANGE returns the %zu entries", n);

    if (ok) {
        for (i = 0; i < n; i++) {
            tap_ok(entry_matches(r->element[i], &spans[i], 1024,
                                 i < nelts(hostile) ? hostile[i].name
                                                    : "span"),
                   "entry %zu read back: every field and value, byte for "
                   "byte (%s)", i,
                   i < nelts(hostile) ? hostile[i].name
                   : i == nelts(hostile) ? "client span with tries"
                                         : "value cut at 1024");
        }
    }

    if (r) {
        freeReplyObject(r);
    }

    free((void *) attrs[n - 1][0].str.data);

    /* trimming: MAXLEN ~ 10 keeps at least 10, and about a macro node */

    for (j = 0; j < 2; j++) {
        redis_del(c, S("et:test:trim"));
        et_stream_init(&st, pbuf, S("et:test:trim"), j ? 0 : 10, 1, 1024);

        ok = 1;

        for (i = 0; i < 1000; i++) {
            span_base(&spans[0]);
            spans[0].start_ns = i;
            ok &= redis_send(c, &st, &spans[0]) == REDIS_OK;
        }

        for (i = 0; i < 1000; i++) {
            ok &= redis_xadd_reply(c);
        }

        xlen = redis_xlen(c, S("et:test:trim"));

        if (j == 0) {
            tap_ok(ok && xlen >= 10 && xlen <= 10 + 200,
                   "maxlen=10: 1000 entries trimmed to about 10 (%lld)",
                   xlen);

            r = redisCommand(c, "XREVRANGE et:test:trim + - COUNT 1");
            tap_ok(r && r->type == REDIS_REPLY_ARRAY && r->elements == 1
                   && r->element[0]->element[1]->elements > 11
                   && strcmp(r->element[0]->element[1]->element[11]->str,
                             "999") == 0,
                   "maxlen=10: the newest entry is kept");
            if (r) {
                freeReplyObject(r);
            }

        } else {
            tap_ok(ok && xlen == 1000, "maxlen=0: no trimming (%lld)", xlen);
        }
    }

    redis_del(c, S("et:test:trim"));
    redis_del(c, key, sizeof(key) - 1);

    test_redis_shards(c);

    redisFree(c);
}


/* --- cost --- */


static void
bench(void)
{
    size_t           i, n, size;
    uint8_t          pbuf[ET_STREAM_PREFIX_SIZE(15)], *buf, *end;
    uint8_t          sbuf[ET_FIELD_RESP_SIZE(12, 5)];
    et_str_t         service;
    et_span_t        span;
    et_attr_t        attrs[10];
    et_stream_t      st;
    struct timespec  t0, t1;
    double           ns;
    const char      *env;
    uint64_t         sum;

    static const char  ua[] =
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like "
        "Gecko) Chrome/120.0.0.0 Safari/537.36";

    env = getenv("ET_BENCH_N");
    n = env ? (size_t) atol(env) : 200000;

    et_stream_init(&st, pbuf, S("edgetrace:spans"), 1000000, 1, 1024);
    et_field_init(&service, sbuf, S("service.name"), S("nginx"));

    span_base(&span);
    span.has_parent = 1;
    span.name.data = (const uint8_t *) "GET /api/v1/orders";
    span.name.len = 18;
    span.start_ns = 1732500000123456789ULL;
    span.end_ns = 1732500000124456789ULL;
    span.service = &service;

#define ATTR_S(i, k, v)                                                       \
    attrs[i].key = &k; attrs[i].type = ET_ATTR_STRING;                        \
    attrs[i].str.data = (const uint8_t *) v; attrs[i].str.len = sizeof(v) - 1
#define ATTR_I(i, k, v)                                                       \
    attrs[i].key = &k; attrs[i].type = ET_ATTR_INT; attrs[i].num = v

    ATTR_S(0, et_key_http_request_method, "GET");
    ATTR_S(1, et_key_url_path, "/api/v1/orders/12345/items");
    ATTR_S(2, et_key_url_query, "page=2&per_page=50&sort=created_at");
    ATTR_S(3, et_key_url_scheme, "https");
    ATTR_S(4, et_key_server_address, "shop.example.com");
    ATTR_I(5, et_key_server_port, 443);
    ATTR_S(6, et_key_client_address, "203.0.113.195");
    ATTR_S(7, et_key_user_agent_original, ua);
    ATTR_S(8, et_key_network_protocol_version, "1.1");
    ATTR_I(9, et_key_http_response_status_code, 200);

    span.attrs = attrs;
    span.nattrs = 10;

    size = et_entry_size(&st, &span);
    buf = malloc(size);
    if (buf == NULL) {
        abort();
    }

    sum = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);

    for (i = 0; i < n; i++) {
        span.end_ns++;
        size = et_entry_size(&st, &span);
        end = et_entry_write(&st, &span, buf);
        sum += (uint64_t) (end - buf) + size + buf[size - 3];
    }

    clock_gettime(CLOCK_MONOTONIC, &t1);

    ns = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec))
         / (double) (n ? n : 1);

    printf("# encode (size + write) of a 20-field server span of %zu bytes: "
           "%.0f ns per span over %zu spans (check %llu)\n",
           size, ns, n, (unsigned long long) (sum & 0xff));

    free(buf);
}


int
main(void)
{
    test_keys();
    test_field();
    test_shard_key();
    test_shard_ranges();
    test_shard();
    test_option();
    test_key_check();
    test_prefix();
    test_prefix_shards();
    test_entries();
    test_shard_entries();
    test_times();
    test_hostile();
    test_truncation();
    test_generated();
    test_redis();
    bench();

    return tap_done();
}
