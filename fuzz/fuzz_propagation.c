/*
 * libFuzzer: a request's headers ("name: value" lines) through header
 * matching, extraction in a format order chosen by the first byte, the
 * trace's beginning and the values written upstream: what is written
 * must parse back to the trace that was begun.
 */

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


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int              k, rc;
    size_t           n, ts_len;
    unsigned         mask, i;
    const uint8_t   *p, *end, *line, *colon, *nl;
    et_str_t         values[ET_HDRS];
    et_trace_t       t;
    et_sampler_t     half;
    et_context_t     parent, back;
    et_prop_found_t  f;
    uint8_t          ts[ET_TRACESTATE_MAX], out[ET_PROP_INJECT_SIZE];
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

    (void) et_prop_inject_values(&t, span, mask, out, values);

    if ((mask & ET_PROP_W3C)
        && (et_traceparent_parse(values[ET_HDR_TRACEPARENT].data,
                                 values[ET_HDR_TRACEPARENT].len, &back)
            != ET_W3C_OK
            || memcmp(back.trace_id, t.trace_id, ET_TRACE_ID_LEN) != 0))
    {
        __builtin_trap();
    }

    if ((mask & ET_PROP_B3)
        && et_b3_parse(values[ET_HDR_B3].data, values[ET_HDR_B3].len, &back)
           != ET_B3_OK)
    {
        __builtin_trap();
    }

    return 0;
}
