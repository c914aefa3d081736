/*
 * B3 propagation: "b3" and X-B3-*.
 */


#include <string.h>

#include "et_b3.h"


static const char  *et_b3_reasons[] = {
    "ok",
    "no sampling state: the receiver decides",
    "sampling state only",
    "empty",
    "malformed",
    "trace id is not 16 or 32 lowercase hex digits",
    "trace id is all zeros",
    "span id is not 16 lowercase hex digits",
    "span id is all zeros",
    "invalid sampling state",
    "parent span id is not 16 lowercase hex digits",
    "trace id and span id must come together"
};


const char *
et_b3_reason(et_b3_rc_t rc)
{
    if ((size_t) rc >= sizeof(et_b3_reasons) / sizeof(et_b3_reasons[0])) {
        return "unknown";
    }

    return et_b3_reasons[rc];
}


/* a 16- or 32-digit trace id, left-padded to 128 bits */
static et_b3_rc_t
et_b3_trace_id(et_str_t v, uint8_t id[ET_TRACE_ID_LEN])
{
    memset(id, 0, ET_TRACE_ID_LEN);

    if (v.len == 32) {
        if (et_hex_decode(id, v.data, 16) != ET_OK) {
            return ET_B3_BAD_TRACE_ID;
        }

    } else if (v.len == 16) {
        if (et_hex_decode(id + 8, v.data, 8) != ET_OK) {
            return ET_B3_BAD_TRACE_ID;
        }

    } else {
        return ET_B3_BAD_TRACE_ID;
    }

    return et_id_is_zero(id, ET_TRACE_ID_LEN) ? ET_B3_ZERO_TRACE_ID : ET_B3_OK;
}


static et_b3_rc_t
et_b3_span_id(et_str_t v, uint8_t id[ET_SPAN_ID_LEN], et_b3_rc_t bad)
{
    if (v.len != 16 || et_hex_decode(id, v.data, 8) != ET_OK) {
        return bad;
    }

    if (et_id_is_zero(id, ET_SPAN_ID_LEN)) {
        return bad == ET_B3_BAD_SPAN_ID ? ET_B3_ZERO_SPAN_ID : bad;
    }

    return ET_B3_OK;
}


/* "0", "1", "d"; with "words", also "true" and "false" (X-B3-Sampled) */
static int
et_b3_sampled(et_str_t v, int words, uint8_t *flags)
{
    if (v.len == 1) {
        switch (v.data[0]) {
        case '0':
            *flags = 0;
            return ET_OK;
        case '1':
            *flags = ET_FLAG_SAMPLED;
            return ET_OK;
        case 'd':
            if (!words) {
                *flags = ET_FLAG_SAMPLED;
                return ET_OK;
            }
            break;
        }

        return ET_ERROR;
    }

    if (words && v.len == 4 && memcmp(v.data, "true", 4) == 0) {
        *flags = ET_FLAG_SAMPLED;
        return ET_OK;
    }

    if (words && v.len == 5 && memcmp(v.data, "false", 5) == 0) {
        *flags = 0;
        return ET_OK;
    }

    return ET_ERROR;
}


et_b3_rc_t
et_b3_parse(const uint8_t *p, size_t len, et_context_t *ctx)
{
    size_t        i, n;
    uint8_t       flags, parent[ET_SPAN_ID_LEN];
    et_str_t      v, f[4];
    et_b3_rc_t    rc;
    et_context_t  c;

    v = et_str_trim_ows(p, len);

    if (v.len == 0) {
        return ET_B3_EMPTY;
    }

    /* split on '-': at most four fields */

    n = 0;
    f[0].data = v.data;

    for (i = 0; i < v.len; i++) {
        if (v.data[i] == '-') {
            if (n == 3) {
                return ET_B3_BAD_FORMAT;
            }

            f[n].len = (size_t) (v.data + i - f[n].data);
            n++;
            f[n].data = v.data + i + 1;
        }
    }

    f[n].len = (size_t) (v.data + v.len - f[n].data);
    n++;

    if (n == 1) {
        /* the lone sampling state: "0", "1" or "d" */
        if (et_b3_sampled(f[0], 0, &flags) != ET_OK) {
            return v.len == 1 ? ET_B3_BAD_SAMPLED : ET_B3_BAD_FORMAT;
        }

        ctx->flags = flags;
        return ET_B3_SAMPLING_ONLY;
    }

    rc = et_b3_trace_id(f[0], c.trace_id);
    if (rc != ET_B3_OK) {
        return rc;
    }

    rc = et_b3_span_id(f[1], c.span_id, ET_B3_BAD_SPAN_ID);
    if (rc != ET_B3_OK) {
        return rc;
    }

    c.flags = 0;

    if (n >= 3 && et_b3_sampled(f[2], 0, &c.flags) != ET_OK) {
        return ET_B3_BAD_SAMPLED;
    }

    if (n == 4) {
        rc = et_b3_span_id(f[3], parent, ET_B3_BAD_PARENT_ID);
        if (rc != ET_B3_OK) {
            return rc;
        }
    }

    *ctx = c;

    return n >= 3 ? ET_B3_OK : ET_B3_DEFERRED;
}


et_b3_rc_t
et_b3multi_parse(et_str_t trace_id, et_str_t span_id, et_str_t parent_id,
    et_str_t sampled, et_str_t flags, et_context_t *ctx)
{
    uint8_t       f, parent[ET_SPAN_ID_LEN];
    et_b3_rc_t    rc;
    et_context_t  c;
    int           decided;

    trace_id = et_str_trim_ows(trace_id.data, trace_id.len);
    span_id = et_str_trim_ows(span_id.data, span_id.len);
    parent_id = et_str_trim_ows(parent_id.data, parent_id.len);
    sampled = et_str_trim_ows(sampled.data, sampled.len);
    flags = et_str_trim_ows(flags.data, flags.len);

    decided = 0;
    f = 0;

    if (flags.len) {
        /* "1" is debug, which means sampled; anything else is ignored */
        if (flags.len == 1 && flags.data[0] == '1') {
            f = ET_FLAG_SAMPLED;
            decided = 1;
        }
    }

    if (!decided && sampled.len) {
        if (et_b3_sampled(sampled, 1, &f) != ET_OK) {
            return ET_B3_BAD_SAMPLED;
        }

        decided = 1;
    }

    if (trace_id.len == 0 && span_id.len == 0) {
        if (parent_id.len == 0 && decided) {
            ctx->flags = f;
            return ET_B3_SAMPLING_ONLY;
        }

        return parent_id.len ? ET_B3_MISSING_ID : ET_B3_EMPTY;
    }

    if (trace_id.len == 0 || span_id.len == 0) {
        return ET_B3_MISSING_ID;
    }

    rc = et_b3_trace_id(trace_id, c.trace_id);
    if (rc != ET_B3_OK) {
        return rc;
    }

    rc = et_b3_span_id(span_id, c.span_id, ET_B3_BAD_SPAN_ID);
    if (rc != ET_B3_OK) {
        return rc;
    }

    if (parent_id.len) {
        rc = et_b3_span_id(parent_id, parent, ET_B3_BAD_PARENT_ID);
        if (rc != ET_B3_OK) {
            return rc;
        }
    }

    c.flags = f;
    *ctx = c;

    return decided ? ET_B3_OK : ET_B3_DEFERRED;
}


uint8_t *
et_b3_write(uint8_t *dst, const uint8_t trace_id[ET_TRACE_ID_LEN],
    const uint8_t span_id[ET_SPAN_ID_LEN], uint8_t flags)
{
    dst = et_hex_encode16(dst, trace_id);
    *dst++ = '-';
    dst = et_hex_encode8(dst, span_id);
    *dst++ = '-';
    *dst++ = (flags & ET_FLAG_SAMPLED) ? '1' : '0';

    return dst;
}
