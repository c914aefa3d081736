/*
 * et_propagation: header names, the order of formats, how a trace begins
 * from what was read, the values written upstream, and what each context
 * mode reads and writes.
 */

#include "tap.h"
#include "et_propagation.h"


#define T32  "80f198ee56343ba864fe8b2a57d3eff7"
#define B32  "463ac35c9f6413ad48485a3953bb6124"
#define S16  "e457b5a2e4d86bd1"
#define C16  "a2fb4a1d1a96d312"
#define TP   "00-" T32 "-" S16 "-01"


typedef struct {
    const char  *name;
    unsigned     formats;
    int          index;
} find_case_t;


static const find_case_t  finds[] = {
    { "traceparent", ET_PROP_W3C, ET_HDR_TRACEPARENT },
    { "TraceParent", ET_PROP_W3C, ET_HDR_TRACEPARENT },
    { "TRACESTATE", ET_PROP_W3C, ET_HDR_TRACESTATE },
    { "traceparent", ET_PROP_B3 | ET_PROP_B3MULTI, -1 },
    { "b3", ET_PROP_B3, ET_HDR_B3 },
    { "B3", ET_PROP_B3, ET_HDR_B3 },
    { "b3", ET_PROP_B3MULTI, -1 },
    { "X-B3-TraceId", ET_PROP_B3MULTI, ET_HDR_B3_TRACE_ID },
    { "x-b3-spanid", ET_PROP_B3MULTI, ET_HDR_B3_SPAN_ID },
    { "X-B3-PARENTSPANID", ET_PROP_B3MULTI, ET_HDR_B3_PARENT_ID },
    { "x-b3-sampled", ET_PROP_B3MULTI, ET_HDR_B3_SAMPLED },
    { "X-B3-Flags", ET_PROP_B3MULTI, ET_HDR_B3_FLAGS },
    { "X-B3-Flags", ET_PROP_W3C | ET_PROP_B3, -1 },
    { "x_b3_flags", ET_PROP_B3MULTI, -1 },           /* '_' is not '-' */
    { "x\rb3-flags", ET_PROP_B3MULTI, -1 },          /* CR | 0x20 is '-' */
    { "traceparen", ET_PROP_W3C, -1 },
    { "traceparentx", ET_PROP_W3C, -1 },
    { "", ET_PROP_W3C | ET_PROP_B3 | ET_PROP_B3MULTI, -1 },
    { "b4", ET_PROP_B3, -1 },
};


/* what each context mode does (docs/nginx.md "edgetrace_context") */
typedef struct {
    int          mode;
    int          reads;
    int          writes;
} mode_case_t;


static const mode_case_t  modes[] = {
    { ET_CONTEXT_EXTRACT, 1, 0 },
    { ET_CONTEXT_INJECT, 0, 1 },
    { ET_CONTEXT_PROPAGATE, 1, 1 },
    { ET_CONTEXT_IGNORE, 0, 0 },
    { -1, 0, 0 },                                    /* no mode */
    { ET_CONTEXT_IGNORE + 1, 0, 0 },
};


/* a request's headers: name, value pairs, NULL-terminated */
typedef struct {
    const char  *what;
    const char  *headers[12];
    unsigned     formats[ET_PROP_FORMATS_MAX];
    size_t       nformats;
    int          rc;
    const char  *trace_id;        /* for ET_OK */
    int          sampled;         /* for ET_OK, ET_PROP_DECISION */
    const char  *tracestate;      /* for ET_OK */
} extract_case_t;


static const extract_case_t  extracts[] = {
    { "w3c alone",
      { "traceparent", TP, NULL },
      { ET_PROP_W3C }, 1, ET_OK, T32, 1, "" },

    { "w3c with tracestate lines joined",
      { "traceparent", TP, "tracestate", "a=1", "TraceState", "b=2", NULL },
      { ET_PROP_W3C }, 1, ET_OK, T32, 1, "a=1,b=2" },

    { "a tracestate key on two lines: the first kept, the rest too",
      { "traceparent", TP, "tracestate", "a=1,b=2", "tracestate", "a=3,c=4",
        NULL },
      { ET_PROP_W3C }, 1, ET_OK, T32, 1, "a=1,b=2,c=4" },

    { "an invalid tracestate is dropped, the parent kept",
      { "traceparent", TP, "tracestate", "A=1", NULL },
      { ET_PROP_W3C }, 1, ET_OK, T32, 1, "" },

    { "two traceparent lines: restart",
      { "traceparent", TP, "traceparent", TP, NULL },
      { ET_PROP_W3C }, 1, ET_DECLINED, NULL, 0, NULL },

    { "w3c first and invalid, b3 second and valid: b3",
      { "traceparent", "00-xyz", "b3", B32 "-" C16 "-0", NULL },
      { ET_PROP_W3C, ET_PROP_B3 }, 2, ET_OK, B32, 0, "" },

    { "both valid and disagreeing: the first listed wins (b3)",
      { "traceparent", TP, "b3", B32 "-" C16 "-0", NULL },
      { ET_PROP_B3, ET_PROP_W3C }, 2, ET_OK, B32, 0, "" },

    { "both valid and disagreeing: the first listed wins (w3c)",
      { "traceparent", TP, "b3", B32 "-" C16 "-0", NULL },
      { ET_PROP_W3C, ET_PROP_B3 }, 2, ET_OK, T32, 1, "" },

    { "b3 not configured: not read",
      { "b3", B32 "-" C16 "-1", NULL },
      { ET_PROP_W3C }, 1, ET_DECLINED, NULL, 0, NULL },

    { "b3 sampling state only: a decision",
      { "b3", "0", NULL },
      { ET_PROP_B3 }, 1, ET_PROP_DECISION, NULL, 0, NULL },

    { "b3 deferred: the sampler decides (never)",
      { "b3", B32 "-" C16, NULL },
      { ET_PROP_B3 }, 1, ET_OK, B32, 0, "" },

    { "two b3 headers: invalid",
      { "b3", B32 "-" C16 "-1", "b3", B32 "-" C16 "-1", NULL },
      { ET_PROP_B3 }, 1, ET_DECLINED, NULL, 0, NULL },

    { "b3multi",
      { "X-B3-TraceId", B32, "X-B3-SpanId", C16, "X-B3-Sampled", "1", NULL },
      { ET_PROP_B3MULTI }, 1, ET_OK, B32, 1, "" },

    { "b3multi debug flag",
      { "X-B3-TraceId", B32, "X-B3-SpanId", C16, "X-B3-Flags", "1", NULL },
      { ET_PROP_B3MULTI }, 1, ET_OK, B32, 1, "" },

    { "b3multi with a header sent twice: invalid, w3c next",
      { "X-B3-TraceId", B32, "X-B3-SpanId", C16, "x-b3-spanid", C16,
        "traceparent", TP, NULL },
      { ET_PROP_B3MULTI, ET_PROP_W3C }, 2, ET_OK, T32, 1, "" },

    { "nothing",
      { "accept", "*/*", NULL },
      { ET_PROP_W3C, ET_PROP_B3, ET_PROP_B3MULTI }, 3, ET_DECLINED, NULL, 0,
      NULL },
};


static int
scan(const extract_case_t *c, et_prop_found_t *f)
{
    int          k, i;
    unsigned     mask;
    size_t       j;

    mask = 0;

    for (j = 0; j < c->nformats; j++) {
        mask |= c->formats[j];
    }

    et_prop_found_init(f);

    for (i = 0; c->headers[i]; i += 2) {
        k = et_prop_header_find((const uint8_t *) c->headers[i],
                                strlen(c->headers[i]), mask);
        if (k >= 0) {
            et_prop_found_add(f, k, (const uint8_t *) c->headers[i + 1],
                              strlen(c->headers[i + 1]));
        }
    }

    return 0;
}


static void
test_find(void)
{
    size_t  i;
    int     k;

    for (i = 0; i < sizeof(finds) / sizeof(finds[0]); i++) {
        k = et_prop_header_find((const uint8_t *) finds[i].name,
                                strlen(finds[i].name), finds[i].formats);
        tap_is_int(k, finds[i].index, "header '%s' in formats %u",
                   finds[i].name, finds[i].formats);
    }
}


/*
 * Every header under every set of formats, in its own case and in
 * uppercase: found exactly when one of the formats is its own (the tables
 * of lengths and first letters that reject the other headers inline agree
 * with et_prop_headers[]); and every other name of the same lengths is
 * rejected.
 */
static void
test_find_all(void)
{
    int          k, want, wrong;
    size_t       i, len;
    unsigned     formats;
    uint8_t      name[32];

    for (k = 0; k < ET_HDRS; k++) {
        len = et_prop_headers[k].lowcase.len;

        for (formats = 0; formats < 8; formats++) {
            want = (et_prop_headers[k].format & formats) ? k : -1;

            tap_is_int(et_prop_header_find(et_prop_headers[k].name.data, len,
                                           formats),
                       want, "%s in formats %u",
                       et_prop_headers[k].name.data, formats);

            for (i = 0; i < len; i++) {
                name[i] = et_prop_headers[k].lowcase.data[i];

                if (name[i] >= 'a' && name[i] <= 'z') {
                    name[i] &= ~0x20;
                }
            }

            tap_is_int(et_prop_header_find(name, len, formats), want,
                       "%.*s in formats %u", (int) len, name, formats);
        }
    }

    /* one letter changed anywhere, for each header: none is found */
    wrong = 0;

    for (k = 0; k < ET_HDRS; k++) {
        len = et_prop_headers[k].lowcase.len;

        for (i = 0; i < len; i++) {
            memcpy(name, et_prop_headers[k].lowcase.data, len);
            name[i] ^= 0x01;

            if (et_prop_header_find(name, len, 7) >= 0) {
                wrong++;
            }
        }
    }

    tap_is_int(wrong, 0, "a name one letter off is no header");
}


static void
test_extract(void)
{
    int              rc;
    size_t           i, ts_len;
    uint8_t          ts[ET_TRACESTATE_MAX], hex[32];
    et_sampler_t     never;
    et_context_t     parent;
    et_prop_found_t  f;

    et_sampler_init(&never, 0);

    for (i = 0; i < sizeof(extracts) / sizeof(extracts[0]); i++) {
        const extract_case_t  *c = &extracts[i];

        scan(c, &f);
        memset(&parent, 0, sizeof(parent));

        rc = et_prop_extract(&f, c->formats, c->nformats, &never, &parent,
                             ts, &ts_len, NULL);

        tap_is_int(rc, c->rc, "%s: result", c->what);

        if (rc == ET_OK && c->rc == ET_OK) {
            et_hex_encode(hex, parent.trace_id, ET_TRACE_ID_LEN);
            tap_is_mem(hex, 32, c->trace_id, "%s: trace id", c->what);
            tap_is_int(parent.flags & ET_FLAG_SAMPLED, c->sampled,
                       "%s: sampled", c->what);
            tap_is_mem(ts, ts_len, c->tracestate, "%s: tracestate", c->what);
        }

        if (rc == ET_PROP_DECISION) {
            tap_is_int(parent.flags & ET_FLAG_SAMPLED, c->sampled,
                       "%s: decision", c->what);
        }
    }
}


static void
test_too_many_tracestates(void)
{
    int              rc, i;
    size_t           ts_len;
    unsigned         w3c = ET_PROP_W3C;
    uint8_t          ts[ET_TRACESTATE_MAX];
    et_sampler_t     always;
    et_context_t     parent;
    et_prop_found_t  f;

    et_sampler_init(&always, 1);
    et_prop_found_init(&f);
    et_prop_found_add(&f, ET_HDR_TRACEPARENT, (const uint8_t *) TP,
                      sizeof(TP) - 1);

    for (i = 0; i < ET_TRACESTATE_LINES + 1; i++) {
        et_prop_found_add(&f, ET_HDR_TRACESTATE, (const uint8_t *) "a=1", 3);
    }

    rc = et_prop_extract(&f, &w3c, 1, &always, &parent, ts, &ts_len, NULL);
    tap_is_int(rc, ET_OK, "33 tracestate lines: the parent is kept");
    tap_is_int(ts_len, 0, "33 tracestate lines: no tracestate");

    /* counts saturate: 1000 lines are never taken for a few */
    for (i = 0; i < 1000; i++) {
        et_prop_found_add(&f, ET_HDR_TRACESTATE, (const uint8_t *) "a=1", 3);
        et_prop_found_add(&f, ET_HDR_TRACEPARENT, (const uint8_t *) TP,
                          sizeof(TP) - 1);
    }

    tap_is_int(f.count[ET_HDR_TRACESTATE], 255, "a count saturates");
    rc = et_prop_extract(&f, &w3c, 1, &always, &parent, ts, &ts_len, NULL);
    tap_is_int(rc, ET_DECLINED, "1001 traceparent lines: restart");

    f.count[ET_HDR_TRACEPARENT] = 1;
    rc = et_prop_extract(&f, &w3c, 1, &always, &parent, ts, &ts_len, NULL);
    tap_is_int(ts_len, 0, "1033 tracestate lines: no tracestate");
}


static void
test_begin(void)
{
    et_trace_t    t;
    et_sampler_t  always, never;
    et_context_t  parent;
    uint8_t       hex[32];

    et_sampler_init(&always, 1);
    et_sampler_init(&never, 0);

    et_traceparent_parse((const uint8_t *) TP, sizeof(TP) - 1, &parent);

    memset(&t, 0, sizeof(t));
    et_trace_begin(&t, ET_OK, &parent, &never);
    et_hex_encode(hex, t.trace_id, ET_TRACE_ID_LEN);
    tap_is_mem(hex, 32, T32, "continued: the parent's trace id");
    et_hex_encode(hex, t.parent_id, ET_SPAN_ID_LEN);
    tap_is_mem(hex, 16, S16, "continued: the parent span");
    tap_ok(t.has_parent && t.sampled && t.flags == ET_FLAG_SAMPLED,
           "continued: the parent's flags, no random flag added");
    tap_ok(!et_id_is_zero(t.span_id, ET_SPAN_ID_LEN), "a server span id");

    et_trace_begin(&t, ET_DECLINED, &parent, &always);
    tap_ok(!t.has_parent && t.flags == (ET_FLAG_SAMPLED | ET_FLAG_RANDOM),
           "new root, sampler says yes: flags 03");
    tap_ok(memcmp(t.trace_id, parent.trace_id, ET_TRACE_ID_LEN) != 0,
           "new root: a new trace id");

    et_trace_begin(&t, ET_DECLINED, &parent, &never);
    tap_ok(!t.sampled && t.flags == ET_FLAG_RANDOM,
           "new root, sampler says no: flags 02");

    parent.flags = 0;
    et_trace_begin(&t, ET_PROP_DECISION, &parent, &always);
    tap_ok(!t.sampled && !t.has_parent,
           "a client's decision (0) wins over the sampler");

    parent.flags = ET_FLAG_SAMPLED;
    et_trace_begin(&t, ET_PROP_DECISION, &parent, &never);
    tap_ok(t.sampled && t.flags == (ET_FLAG_SAMPLED | ET_FLAG_RANDOM),
           "a client's decision (1) wins over the sampler");
}


/* the trace of TP continued (sampled), and the client span C16 */
static void
continued(et_trace_t *t, uint8_t *span)
{
    et_sampler_t  never;
    et_context_t  parent;

    et_sampler_init(&never, 0);
    et_traceparent_parse((const uint8_t *) TP, sizeof(TP) - 1, &parent);
    et_trace_begin(t, ET_OK, &parent, &never);
    t->tracestate.len = 0;
    et_hex_decode(span, (const uint8_t *) C16, ET_SPAN_ID_LEN);
}


/* b3, X-B3-TraceId and X-B3-SpanId for continued()'s span, sampled */
static void
is_b3(const et_str_t *v, const char *what)
{
    tap_is_mem(v[ET_HDR_B3].data, v[ET_HDR_B3].len, T32 "-" C16 "-1",
               "%s: b3, no parent, the decision", what);
    tap_is_mem(v[ET_HDR_B3_TRACE_ID].data, v[ET_HDR_B3_TRACE_ID].len, T32,
               "%s: X-B3-TraceId", what);
    tap_is_mem(v[ET_HDR_B3_SPAN_ID].data, v[ET_HDR_B3_SPAN_ID].len, C16,
               "%s: X-B3-SpanId", what);
}


static void
test_inject(void)
{
    unsigned      mask;
    et_trace_t    t;
    et_str_t      v[ET_HDRS];
    uint8_t       buf[ET_PROP_INJECT_SIZE], span[ET_SPAN_ID_LEN];

    continued(&t, span);
    t.tracestate.data = (const uint8_t *) "k=v";
    t.tracestate.len = 3;

    mask = et_prop_inject_values(&t, span,
                         ET_PROP_W3C | ET_PROP_B3 | ET_PROP_B3MULTI, buf, v);
    tap_is_int(mask, 0xff, "all formats: every header written or removed");
    tap_is_mem(v[ET_HDR_TRACEPARENT].data, v[ET_HDR_TRACEPARENT].len,
               "00-" T32 "-" C16 "-01", "traceparent carries the span");
    tap_is_mem(v[ET_HDR_TRACESTATE].data, v[ET_HDR_TRACESTATE].len, "k=v",
               "tracestate carried");
    is_b3(v, "all formats");
    tap_is_mem(v[ET_HDR_B3_SAMPLED].data, v[ET_HDR_B3_SAMPLED].len, "1",
               "X-B3-Sampled");
    tap_is_int(v[ET_HDR_B3_PARENT_ID].len, 0, "X-B3-ParentSpanId removed");
    tap_is_int(v[ET_HDR_B3_FLAGS].len, 0, "X-B3-Flags removed");

    t.tracestate.len = 0;
    t.flags = 0;
    mask = et_prop_inject_values(&t, span, ET_PROP_W3C, buf, v);
    tap_is_int(mask, (1 << ET_HDR_TRACEPARENT) | (1 << ET_HDR_TRACESTATE),
               "w3c only: the b3 headers are left alone");
    tap_is_mem(v[ET_HDR_TRACEPARENT].data, v[ET_HDR_TRACEPARENT].len,
               "00-" T32 "-" C16 "-00", "unsampled traceparent");
    tap_is_int(v[ET_HDR_TRACESTATE].len, 0, "no tracestate: removed");

    mask = et_prop_inject_values(&t, span, ET_PROP_B3MULTI, buf, v);
    tap_is_mem(v[ET_HDR_B3_SAMPLED].data, v[ET_HDR_B3_SAMPLED].len, "0",
               "X-B3-Sampled: 0");
    tap_is_int(mask, 0xf8, "b3multi only: five headers");
}


/*
 * The buffer: the traceparent first, whatever the formats (the adapters
 * show it to the configuration), and every value inside the buffer's
 * et_prop_inject_size() bytes or a static string, so that an adapter that
 * keeps the buffer (nginx: the traceparent in its request context) keeps
 * the values.
 */
static void
test_inject_buffer(void)
{
    int           k, outside;
    unsigned      formats;
    et_trace_t    t;
    et_str_t      v[ET_HDRS];
    uint8_t       buf[ET_PROP_INJECT_SIZE + 1], span[ET_SPAN_ID_LEN];

    continued(&t, span);

    for (formats = 0; formats < 8; formats++) {
        memset(buf, '#', sizeof(buf));
        (void) et_prop_inject_values(&t, span, formats, buf, v);

        tap_is_mem(buf, ET_TRACEPARENT_LEN, "00-" T32 "-" C16 "-01",
                   "formats %u: the traceparent first", formats);
        tap_is_int(buf[et_prop_inject_size(formats)], '#',
                   "formats %u: nothing written past its size", formats);
        tap_ok(et_prop_inject_size(formats) <= ET_PROP_INJECT_SIZE,
               "formats %u: within ET_PROP_INJECT_SIZE", formats);

        outside = 0;

        for (k = 0; k < ET_HDRS; k++) {
            if (v[k].len
                && k != ET_HDR_B3_SAMPLED
                && (v[k].data < buf
                    || v[k].data + v[k].len
                       > buf + et_prop_inject_size(formats)))
            {
                outside++;
            }
        }

        tap_is_int(outside, 0, "formats %u: the values are in the buffer",
                   formats);
    }

    (void) et_prop_inject_values(&t, span, ET_PROP_B3 | ET_PROP_B3MULTI,
                                 buf, v);
    is_b3(v, "without w3c");
}


static void
test_names(void)
{
    tap_is_int(et_prop_format_parse((const uint8_t *) "b3multi", 7),
               ET_PROP_B3MULTI, "format b3multi");
    tap_is_int(et_prop_format_parse((const uint8_t *) "W3C", 3), 0,
               "format names are lowercase");
    tap_is_int(et_prop_format_parse((const uint8_t *) "b3m", 3), 0,
               "no prefixes");
    tap_is_int(et_prop_context_parse((const uint8_t *) "propagate", 9),
               ET_CONTEXT_PROPAGATE, "mode propagate");
    tap_is_int(et_prop_context_parse((const uint8_t *) "ignore", 6),
               ET_CONTEXT_IGNORE, "mode ignore");
    tap_is_int(et_prop_context_parse((const uint8_t *) "inject ", 7), -1,
               "no trailing space");
    tap_is_int(et_prop_context_parse((const uint8_t *) "", 0), -1,
               "empty mode");
}


static void
test_modes(void)
{
    size_t  i;

    for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        tap_is_int(et_prop_context_reads(modes[i].mode), modes[i].reads,
                   "mode %d reads: %d", modes[i].mode, modes[i].reads);
        tap_is_int(et_prop_context_writes(modes[i].mode), modes[i].writes,
                   "mode %d writes: %d", modes[i].mode, modes[i].writes);
    }

    /* the defaults the docs give */
    tap_is_int(ET_CONTEXT_DEFAULT,
               et_prop_context_parse((const uint8_t *) "propagate", 9),
               "default mode: propagate");
    tap_is_int(ET_PROP_FORMAT_DEFAULT,
               et_prop_format_parse((const uint8_t *) "w3c", 3),
               "default format: w3c");
}


int
main(void)
{
    test_find();
    test_find_all();
    test_extract();
    test_too_many_tracestates();
    test_begin();
    test_inject();
    test_inject_buffer();
    test_names();
    test_modes();

    return tap_done();
}
