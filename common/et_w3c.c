/*
 * W3C Trace Context Level 2: traceparent and tracestate.
 *
 * Both parsers work on the bytes as received, whatever they are (NUL,
 * CR, LF, bytes above 0x7f): every rule is checked against explicit
 * character classes, and nothing is read past "len".
 */

#include <string.h>

#include "et_w3c.h"


/* offsets in a traceparent: "vv-<32 trace id>-<16 span id>-ff" */
#define ET_TP_TRACE_ID   3
#define ET_TP_DASH2      35
#define ET_TP_SPAN_ID    36
#define ET_TP_DASH3      52
#define ET_TP_FLAGS      53

#define ET_TS_KEY_MAX     256
#define ET_TS_VALUE_MAX   256

/* members longer than this are dropped first when truncating */
#define ET_TS_MEMBER_LARGE  128


typedef struct {
    const uint8_t  *data;          /* "key=value", OWS stripped */
    size_t          len;
    size_t          key_len;
    unsigned        keep:1;
} et_ts_member_t;


static et_w3c_rc_t et_tracestate_member(et_ts_member_t *m);


static const char  *et_w3c_reasons[] = {
    "ok",
    "empty value",
    "bad length",
    "bad version",
    "version ff",
    "missing '-' delimiter",
    "bad trace id",
    "zero trace id",
    "bad span id",
    "zero span id",
    "bad trace flags",
    "more than 32 tracestate keys",
    "tracestate member without '='",
    "bad tracestate key",
    "bad tracestate value"
};


const char *
et_w3c_reason(et_w3c_rc_t rc)
{
    size_t  i;

    i = (size_t) rc;

    if (i >= sizeof(et_w3c_reasons) / sizeof(et_w3c_reasons[0])) {
        return "unknown";
    }

    return et_w3c_reasons[i];
}


static int
et_w3c_is_lchex(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}


et_w3c_rc_t
et_traceparent_parse(const uint8_t *p, size_t len, et_context_t *ctx)
{
    uint8_t   version, flags;
    uint8_t   trace_id[ET_TRACE_ID_LEN];
    uint8_t   span_id[ET_SPAN_ID_LEN];
    et_str_t  v;

    v = et_str_trim_ows(p, len);
    p = v.data;
    len = v.len;

    if (len == 0) {
        return ET_W3C_EMPTY;
    }

    /*
     * The version prefix first: a future version decides how long the
     * value may be, and "ff" is invalid whatever follows.
     */

    version = 0;

    if (len >= 2) {
        if (et_hex_decode(&version, p, 1) != ET_OK) {
            return ET_W3C_BAD_VERSION;
        }

        if (version == 0xff) {
            return ET_W3C_VERSION_FF;
        }

        if (len >= 3 && p[2] != '-') {
            /* "000-": a version longer than 2 digits */
            return et_w3c_is_lchex(p[2]) ? ET_W3C_BAD_VERSION
                                         : ET_W3C_BAD_DELIMITER;
        }
    }

    if (len < ET_TRACEPARENT_LEN
        || (version == 0 && len != ET_TRACEPARENT_LEN))
    {
        return ET_W3C_BAD_LENGTH;
    }

    if (et_hex_decode(trace_id, p + ET_TP_TRACE_ID, ET_TRACE_ID_LEN)
        != ET_OK)
    {
        return ET_W3C_BAD_TRACE_ID;
    }

    if (p[ET_TP_DASH2] != '-') {
        return ET_W3C_BAD_DELIMITER;
    }

    if (et_id_is_zero(trace_id, ET_TRACE_ID_LEN)) {
        return ET_W3C_ZERO_TRACE_ID;
    }

    if (et_hex_decode(span_id, p + ET_TP_SPAN_ID, ET_SPAN_ID_LEN) != ET_OK) {
        return ET_W3C_BAD_SPAN_ID;
    }

    if (p[ET_TP_DASH3] != '-') {
        return ET_W3C_BAD_DELIMITER;
    }

    if (et_id_is_zero(span_id, ET_SPAN_ID_LEN)) {
        return ET_W3C_ZERO_SPAN_ID;
    }

    if (et_hex_decode(&flags, p + ET_TP_FLAGS, 1) != ET_OK) {
        return ET_W3C_BAD_FLAGS;
    }

    /* a future version may append fields, each after a '-' */
    if (len > ET_TRACEPARENT_LEN && p[ET_TRACEPARENT_LEN] != '-') {
        return ET_W3C_BAD_DELIMITER;
    }

    memcpy(ctx->trace_id, trace_id, ET_TRACE_ID_LEN);
    memcpy(ctx->span_id, span_id, ET_SPAN_ID_LEN);
    ctx->flags = flags & ET_FLAGS_KNOWN;

    return ET_W3C_OK;
}


uint8_t *
et_traceparent_write(uint8_t *dst, const uint8_t trace_id[ET_TRACE_ID_LEN],
    const uint8_t span_id[ET_SPAN_ID_LEN], uint8_t flags)
{
    /* the bits we do not know are reserved: senders must set them to 0 */
    flags &= ET_FLAGS_KNOWN;

    *dst++ = '0';
    *dst++ = '0';
    *dst++ = '-';
    dst = et_hex_encode16(dst, trace_id);
    *dst++ = '-';
    dst = et_hex_encode8(dst, span_id);
    *dst++ = '-';
    *dst++ = '0';
    *dst++ = (uint8_t) ('0' + flags);

    return dst;
}


static int
et_ts_is_key_first(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}


static int
et_ts_is_key_char(uint8_t c)
{
    return et_ts_is_key_first(c)
           || c == '_' || c == '-' || c == '*' || c == '/' || c == '@';
}


static int
et_ts_is_value_char(uint8_t c)
{
    return c >= 0x20 && c <= 0x7e && c != ',' && c != '=';
}


/* validates one non-empty, OWS-stripped list member */
static et_w3c_rc_t
et_tracestate_member(et_ts_member_t *m)
{
    size_t          i, vlen;
    const uint8_t  *eq, *value;

    eq = memchr(m->data, '=', m->len);

    if (eq == NULL) {
        return ET_W3C_TS_BAD_MEMBER;
    }

    m->key_len = eq - m->data;

    if (m->key_len == 0 || m->key_len > ET_TS_KEY_MAX
        || !et_ts_is_key_first(m->data[0]))
    {
        return ET_W3C_TS_BAD_KEY;
    }

    for (i = 1; i < m->key_len; i++) {
        if (!et_ts_is_key_char(m->data[i])) {
            return ET_W3C_TS_BAD_KEY;
        }
    }

    value = eq + 1;
    vlen = m->len - m->key_len - 1;

    /*
     * Leading spaces belong to the value; trailing ones are OWS and were
     * stripped with the member, so the last check is only a safeguard.
     */

    if (vlen == 0 || vlen > ET_TS_VALUE_MAX || value[vlen - 1] == ' ') {
        return ET_W3C_TS_BAD_VALUE;
    }

    for (i = 0; i < vlen; i++) {
        if (!et_ts_is_value_char(value[i])) {
            return ET_W3C_TS_BAD_VALUE;
        }
    }

    return ET_W3C_OK;
}


et_w3c_rc_t
et_tracestate_parse(const et_str_t *lines, size_t nlines, uint8_t *out,
    size_t *out_len)
{
    size_t           i, j, n, kept, sum, total;
    uint8_t         *o;
    et_str_t         s;
    et_w3c_rc_t      rc;
    const uint8_t   *p, *end, *comma;
    et_ts_member_t   next, members[ET_TRACESTATE_MEMBERS_MAX];

    *out_len = 0;
    n = 0;
    sum = 0;

    /* lines are one list: splitting each at ',' is the same as joining */

    for (i = 0; i < nlines; i++) {

        if (lines[i].len == 0) {
            continue;
        }

        p = lines[i].data;
        end = p + lines[i].len;

        for ( ;; ) {
            comma = memchr(p, ',', end - p);

            if (comma == NULL) {
                comma = end;
            }

            s = et_str_trim_ows(p, comma - p);

            if (s.len) {
                next.data = s.data;
                next.len = s.len;
                next.keep = 1;

                rc = et_tracestate_member(&next);
                if (rc != ET_W3C_OK) {
                    return rc;
                }

                /*
                 * Unique keys are the sender's duty; a receiver may drop
                 * the duplicates of a key it does not own, and must keep
                 * the rest.  The first is the newest: later ones go.
                 */

                for (j = 0; j < n; j++) {
                    if (members[j].key_len == next.key_len
                        && memcmp(members[j].data, next.data, next.key_len)
                           == 0)
                    {
                        break;
                    }
                }

                if (j == n) {
                    if (n == ET_TRACESTATE_MEMBERS_MAX) {
                        return ET_W3C_TS_TOO_MANY;
                    }

                    members[n++] = next;
                    sum += next.len;
                }
            }

            if (comma == end) {
                break;
            }

            p = comma + 1;
        }
    }

    /*
     * Truncation by whole members, as the spec orders it: members longer
     * than 128 characters go first (the last one first, since the end of
     * the list holds the oldest entries), then members from the end.
     */

    kept = n;
    total = kept ? sum + kept - 1 : 0;

    while (total > ET_TRACESTATE_MAX) {

        for (j = n; j > 0; j--) {
            if (members[j - 1].keep
                && members[j - 1].len > ET_TS_MEMBER_LARGE)
            {
                break;
            }
        }

        if (j == 0) {
            for (j = n; j > 0; j--) {
                if (members[j - 1].keep) {
                    break;
                }
            }
        }

        members[j - 1].keep = 0;
        sum -= members[j - 1].len;
        kept--;
        total = kept ? sum + kept - 1 : 0;
    }

    o = out;

    for (j = 0; j < n; j++) {
        if (!members[j].keep) {
            continue;
        }

        if (o != out) {
            *o++ = ',';
        }

        memcpy(o, members[j].data, members[j].len);
        o += members[j].len;
    }

    *out_len = o - out;

    return ET_W3C_OK;
}
