/*
 * Propagation as both adapters do it.
 */

#include <string.h>

#include "et_propagation.h"
#include "et_id.h"


#define et_prop_header(name, lowcase, format)                                 \
    { et_string(name), et_string(lowcase), format }


const et_prop_header_t  et_prop_headers[ET_HDRS] = {
    et_prop_header("traceparent", "traceparent", ET_PROP_W3C),
    et_prop_header("tracestate", "tracestate", ET_PROP_W3C),
    et_prop_header("b3", "b3", ET_PROP_B3),
    et_prop_header("X-B3-TraceId", "x-b3-traceid", ET_PROP_B3MULTI),
    et_prop_header("X-B3-SpanId", "x-b3-spanid", ET_PROP_B3MULTI),
    et_prop_header("X-B3-ParentSpanId", "x-b3-parentspanid", ET_PROP_B3MULTI),
    et_prop_header("X-B3-Sampled", "x-b3-sampled", ET_PROP_B3MULTI),
    et_prop_header("X-B3-Flags", "x-b3-flags", ET_PROP_B3MULTI),
};


static const struct {
    et_str_t    name;
    int         value;
} et_prop_names[] = {
    { et_string("w3c"), ET_PROP_W3C },
    { et_string("b3"), ET_PROP_B3 },
    { et_string("b3multi"), ET_PROP_B3MULTI },
    { et_null_string, 0 }
}, et_prop_modes[] = {
    { et_string("extract"), ET_CONTEXT_EXTRACT },
    { et_string("inject"), ET_CONTEXT_INJECT },
    { et_string("propagate"), ET_CONTEXT_PROPAGATE },
    { et_string("ignore"), ET_CONTEXT_IGNORE },
    { et_null_string, -1 }
};


/* the lengths of each format's header names (et_prop_headers[]) */
#define et_prop_len(name)  (1u << (sizeof(name) - 1))

#define ET_PROP_LENGTHS_W3C  (et_prop_len("traceparent")                      \
                              | et_prop_len("tracestate"))
#define ET_PROP_LENGTHS_B3   et_prop_len("b3")
#define ET_PROP_LENGTHS_B3MULTI  (et_prop_len("x-b3-traceid")                 \
                                  | et_prop_len("x-b3-spanid")                \
                                  | et_prop_len("x-b3-parentspanid")          \
                                  | et_prop_len("x-b3-sampled")               \
                                  | et_prop_len("x-b3-flags"))


const uint32_t  et_prop_lengths[8] = {
    0,
    ET_PROP_LENGTHS_W3C,
    ET_PROP_LENGTHS_B3,
    ET_PROP_LENGTHS_W3C | ET_PROP_LENGTHS_B3,
    ET_PROP_LENGTHS_B3MULTI,
    ET_PROP_LENGTHS_W3C | ET_PROP_LENGTHS_B3MULTI,
    ET_PROP_LENGTHS_B3 | ET_PROP_LENGTHS_B3MULTI,
    ET_PROP_LENGTHS_W3C | ET_PROP_LENGTHS_B3 | ET_PROP_LENGTHS_B3MULTI
};


int
et_prop_header_match(const uint8_t *name, size_t len, unsigned formats)
{
    int             k;
    size_t          i;
    uint8_t         c;
    const uint8_t  *lc;

    for (k = 0; k < ET_HDRS; k++) {
        if (et_prop_headers[k].lowcase.len != len
            || !(et_prop_headers[k].format & formats))
        {
            continue;
        }

        lc = et_prop_headers[k].lowcase.data;

        for (i = 0; i < len; i++) {
            c = name[i];

            if (c >= 'A' && c <= 'Z') {
                c |= 0x20;
            }

            if (c != lc[i]) {
                break;
            }
        }

        if (i == len) {
            return k;
        }
    }

    return -1;
}


unsigned
et_prop_format_parse(const uint8_t *p, size_t len)
{
    int  i;

    for (i = 0; et_prop_names[i].name.len; i++) {
        if (et_prop_names[i].name.len == len
            && memcmp(et_prop_names[i].name.data, p, len) == 0)
        {
            return (unsigned) et_prop_names[i].value;
        }
    }

    return 0;
}


int
et_prop_context_parse(const uint8_t *p, size_t len)
{
    int  i;

    for (i = 0; et_prop_modes[i].name.len; i++) {
        if (et_prop_modes[i].name.len == len
            && memcmp(et_prop_modes[i].name.data, p, len) == 0)
        {
            return et_prop_modes[i].value;
        }
    }

    return -1;
}


static int
et_prop_extract_w3c(const et_prop_found_t *f, et_context_t *parent,
    uint8_t *ts, size_t *ts_len, const char **why)
{
    et_w3c_rc_t  rc;

    /* two traceparent lines cannot both be the parent: restart */
    if (f->count[ET_HDR_TRACEPARENT] != 1) {
        *why = f->count[ET_HDR_TRACEPARENT] ? "several traceparent headers"
                                             : "no traceparent";
        return ET_DECLINED;
    }

    rc = et_traceparent_parse(f->first[ET_HDR_TRACEPARENT].data,
                              f->first[ET_HDR_TRACEPARENT].len, parent);

    if (rc != ET_W3C_OK) {
        *why = et_w3c_reason(rc);
        return ET_DECLINED;
    }

    *ts_len = 0;

    if (f->count[ET_HDR_TRACESTATE] == 0
        || f->count[ET_HDR_TRACESTATE] > ET_TRACESTATE_LINES)
    {
        return ET_OK;
    }

    if (et_tracestate_parse(f->states, f->count[ET_HDR_TRACESTATE], ts,
                            ts_len)
        != ET_W3C_OK)
    {
        *ts_len = 0;
    }

    return ET_OK;
}


static int
et_prop_extract_b3(const et_prop_found_t *f, unsigned format,
    const et_sampler_t *sampler, et_context_t *parent, const char **why)
{
    int         k;
    et_b3_rc_t  rc;

    if (format == ET_PROP_B3) {
        if (f->count[ET_HDR_B3] != 1) {
            *why = f->count[ET_HDR_B3] ? "several b3 headers" : "no b3";
            return ET_DECLINED;
        }

        rc = et_b3_parse(f->first[ET_HDR_B3].data, f->first[ET_HDR_B3].len,
                         parent);

    } else {
        et_str_t  v[ET_HDRS];

        for (k = ET_HDR_B3_TRACE_ID; k <= ET_HDR_B3_FLAGS; k++) {
            if (f->count[k] > 1) {
                *why = "a X-B3 header sent twice";
                return ET_DECLINED;
            }

            v[k].data = f->first[k].data;
            v[k].len = f->count[k] ? f->first[k].len : 0;
        }

        rc = et_b3multi_parse(v[ET_HDR_B3_TRACE_ID], v[ET_HDR_B3_SPAN_ID],
                              v[ET_HDR_B3_PARENT_ID], v[ET_HDR_B3_SAMPLED],
                              v[ET_HDR_B3_FLAGS], parent);
    }

    switch (rc) {

    case ET_B3_OK:
        return ET_OK;

    case ET_B3_DEFERRED:
        /* no sampling state: the receiver decides, as for a root */
        parent->flags = et_sampler_sampled(sampler, parent->trace_id)
                        ? ET_FLAG_SAMPLED : 0;
        return ET_OK;

    case ET_B3_SAMPLING_ONLY:
        return ET_PROP_DECISION;

    default:
        *why = et_b3_reason(rc);
        return ET_DECLINED;
    }
}


int
et_prop_extract(const et_prop_found_t *f, const unsigned *formats,
    size_t n, const et_sampler_t *sampler, et_context_t *parent,
    uint8_t *ts, size_t *ts_len, const char **why)
{
    int          rc;
    size_t       i;
    const char  *reason;

    *ts_len = 0;
    reason = "no context";

    for (i = 0; i < n; i++) {

        if (formats[i] == ET_PROP_W3C) {
            rc = et_prop_extract_w3c(f, parent, ts, ts_len, &reason);

        } else {
            rc = et_prop_extract_b3(f, formats[i], sampler, parent, &reason);
        }

        if (rc != ET_DECLINED) {
            return rc;
        }
    }

    if (why) {
        *why = reason;
    }

    return ET_DECLINED;
}


void
et_trace_begin(et_trace_t *t, int rc, const et_context_t *parent,
    const et_sampler_t *sampler)
{
    if (rc == ET_OK) {
        memcpy(t->trace_id, parent->trace_id, ET_TRACE_ID_LEN);
        memcpy(t->parent_id, parent->span_id, ET_SPAN_ID_LEN);
        t->flags = parent->flags;
        t->has_parent = 1;

    } else {
        et_trace_id_new(t->trace_id);

        if (rc == ET_PROP_DECISION) {
            t->flags = parent->flags & ET_FLAG_SAMPLED;

        } else {
            t->flags = et_sampler_sampled(sampler, t->trace_id)
                       ? ET_FLAG_SAMPLED : 0;
        }

        t->flags |= ET_FLAG_RANDOM;
        t->has_parent = 0;
        t->tracestate.len = 0;
    }

    t->sampled = (t->flags & ET_FLAG_SAMPLED) ? 1 : 0;

    et_span_id_new(t->span_id);
}


unsigned
et_prop_inject_values(const et_trace_t *t, const uint8_t *span_id,
    unsigned formats, uint8_t *buf, et_str_t values[ET_HDRS])
{
    int       k;
    unsigned  mask;

    mask = 0;

    for (k = 0; k < ET_HDRS; k++) {
        values[k].len = 0;
    }

    /* "00-<trace id>-<span id>-<flags>": the ids of b3multi are in it */
    et_traceparent_write(buf, t->trace_id, span_id, t->flags);

    if (formats & ET_PROP_W3C) {
        mask |= (1u << ET_HDR_TRACEPARENT) | (1u << ET_HDR_TRACESTATE);

        values[ET_HDR_TRACEPARENT].data = buf;
        values[ET_HDR_TRACEPARENT].len = ET_TRACEPARENT_LEN;
        values[ET_HDR_TRACESTATE] = t->tracestate;
    }

    if (formats & ET_PROP_B3) {
        mask |= 1u << ET_HDR_B3;

        values[ET_HDR_B3].data = buf + ET_TRACEPARENT_LEN;
        values[ET_HDR_B3].len = et_b3_write(buf + ET_TRACEPARENT_LEN,
                                            t->trace_id, span_id, t->flags)
                                - values[ET_HDR_B3].data;
    }

    if (formats & ET_PROP_B3MULTI) {
        /* X-B3-ParentSpanId and X-B3-Flags: removed */
        mask |= (1u << ET_HDR_B3_TRACE_ID) | (1u << ET_HDR_B3_SPAN_ID)
                | (1u << ET_HDR_B3_PARENT_ID) | (1u << ET_HDR_B3_SAMPLED)
                | (1u << ET_HDR_B3_FLAGS);

        values[ET_HDR_B3_TRACE_ID].data = buf + sizeof("00-") - 1;
        values[ET_HDR_B3_TRACE_ID].len = 2 * ET_TRACE_ID_LEN;

        values[ET_HDR_B3_SPAN_ID].data = buf + sizeof("00-") - 1
                                         + 2 * ET_TRACE_ID_LEN + 1;
        values[ET_HDR_B3_SPAN_ID].len = 2 * ET_SPAN_ID_LEN;

        values[ET_HDR_B3_SAMPLED].data = (const uint8_t *)
                                 ((t->flags & ET_FLAG_SAMPLED) ? "1" : "0");
        values[ET_HDR_B3_SAMPLED].len = 1;
    }

    return mask;
}
