/*
 * libFuzzer: propagation as both adapters do it (et_propagation.h), from
 * a request's headers ("name: value" lines) to the values written
 * upstream: header matching (et_prop_header_find()), extraction in a
 * format order chosen by the first byte, the trace's beginning and the
 * values of the client span's headers.  What is written must parse back
 * to the trace that was begun, inside a buffer of exactly
 * et_prop_inject_size() bytes (on the heap, so that ASan sees an overrun),
 * and the next hop, reading those headers the same way, must continue
 * that trace from the client span.
 */

#include <stdlib.h>
#include <string.h>

#include "et_propagation.h"


static const unsigned  orders[6][3] = {
    { ET_PROP_W3C, ET_PROP_B3, ET_PROP_B3MULTI },
    { ET_PROP_W3C, ET_PROP_B3MULTI, ET_PROP_B3 },
    { ET_PROP_B3, ET_PROP_W3C, ET_PROP_B3MULTI },
    { ET_PROP_B3, ET_PROP_B3MULTI, ET_PROP_W3C },
    { ET_PROP_B3MULTI, ET_PROP_W3C, ET_PROP_B3 },
    { ET_PROP_B3MULTI, ET_PROP_B3, ET_PROP_W3C },
};


static void
check_ids(const et_context_t *back, const et_trace_t *t, const uint8_t *span)
{
    if (memcmp(back->trace_id, t->trace_id, ET_TRACE_ID_LEN) != 0
        || memcmp(back->span_id, span, ET_SPAN_ID_LEN) != 0
        || (back->flags & ET_FLAG_SAMPLED) != (t->flags & ET_FLAG_SAMPLED))
    {
        __builtin_trap();
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int              k, rc;
    size_t           n, ts_len;
    unsigned         mask, written, i;
    const uint8_t   *p, *end, *line, *colon, *nl;
    et_str_t         values[ET_HDRS];
    et_trace_t       t;
    et_sampler_t     half;
    et_context_t     parent, back;
    et_prop_found_t  f;
    uint8_t          ts[ET_TRACESTATE_MAX], ts2[ET_TRACESTATE_MAX], *out;
    uint8_t          span[ET_SPAN_ID_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8 };

    if (size < 1) {
        return 0;
    }

    n = 1 + data[0] % 3;
    mask = 0;

    for (i = 0; i < n; i++) {
        mask |= orders[(data[0] >> 2) % 6][i];
    }

    et_sampler_init(&half, 0.5);
    et_prop_found_init(&f);

    p = data + 1;
    end = data + size;

    while (p < end) {
        line = p;
        nl = memchr(p, '\n', end - p);
        p = nl ? nl + 1 : end;
        nl = nl ? nl : end;
        colon = memchr(line, ':', nl - line);

        if (colon == NULL) {
            continue;
        }

        k = et_prop_header_find(line, colon - line, mask);

        if (k >= 0) {
            if (!(et_prop_headers[k].format & mask)) {
                __builtin_trap();
            }

            et_prop_found_add(&f, k, colon + 1, nl - colon - 1);
        }
    }

    memset(&parent, 0, sizeof(parent));
    rc = et_prop_extract(&f, orders[(data[0] >> 2) % 6], n, &half, &parent,
                         ts, &ts_len, NULL);

    if (ts_len > ET_TRACESTATE_MAX) {
        __builtin_trap();
    }

    memset(&t, 0, sizeof(t));
    et_trace_begin(&t, rc, &parent, &half);
    t.tracestate.data = ts;
    t.tracestate.len = rc == ET_OK ? ts_len : 0;

    out = malloc(et_prop_inject_size(mask));
    if (out == NULL) {
        return 0;
    }

    written = et_prop_inject_values(&t, span, mask, out, values);

    for (k = 0; k < ET_HDRS; k++) {
        if (((written >> k) & 1) != !!(et_prop_headers[k].format & mask)
            || (values[k].len && !((written >> k) & 1)))
        {
            __builtin_trap();
        }
    }

    /* the traceparent comes first, whatever the formats */
    if (et_traceparent_parse(out, ET_TRACEPARENT_LEN, &back) != ET_W3C_OK) {
        __builtin_trap();
    }

    check_ids(&back, &t, span);

    if ((mask & ET_PROP_W3C)
        && (values[ET_HDR_TRACEPARENT].data != out
            || values[ET_HDR_TRACEPARENT].len != ET_TRACEPARENT_LEN))
    {
        __builtin_trap();
    }

    if (mask & ET_PROP_B3) {
        if (et_b3_parse(values[ET_HDR_B3].data, values[ET_HDR_B3].len, &back)
            != ET_B3_OK)
        {
            __builtin_trap();
        }

        check_ids(&back, &t, span);
    }

    if (mask & ET_PROP_B3MULTI) {
        if (et_b3multi_parse(values[ET_HDR_B3_TRACE_ID],
                             values[ET_HDR_B3_SPAN_ID],
                             values[ET_HDR_B3_PARENT_ID],
                             values[ET_HDR_B3_SAMPLED],
                             values[ET_HDR_B3_FLAGS], &back)
            != ET_B3_OK)
        {
            __builtin_trap();
        }

        check_ids(&back, &t, span);
    }

    /* the next hop */
    et_prop_found_init(&f);

    for (k = 0; k < ET_HDRS; k++) {
        if (values[k].len == 0) {
            continue;
        }

        if (et_prop_header_find(et_prop_headers[k].name.data,
                                et_prop_headers[k].name.len, mask)
            != k)
        {
            __builtin_trap();
        }

        et_prop_found_add(&f, k, values[k].data, values[k].len);
    }

    rc = et_prop_extract(&f, orders[(data[0] >> 2) % 6], n, &half, &back,
                         ts2, &ts_len, NULL);

    if (rc != ET_OK) {
        __builtin_trap();
    }

    check_ids(&back, &t, span);

    free(out);

    return 0;
}
