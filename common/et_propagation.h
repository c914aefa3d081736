/*
 * Propagation as both adapters do it: which request headers carry trace
 * context, how the configured formats are read (in their order, the first
 * valid one wins), how the trace of a request begins from what was read,
 * and what is written upstream (docs/propagation.md).
 *
 * Reading, once per request, when its tracing is decided (edgetrace_context
 * extract or propagate; with inject or ignore, rc is ET_DECLINED):
 *
 *   et_prop_found_init(&found);
 *   for each request header (name, value):
 *       k = et_prop_header_find(name, len, mask of the formats);
 *       if (k >= 0) et_prop_found_add(&found, k, value, value_len);
 *   rc = et_prop_extract(&found, formats, n, sampler, &parent, ts, ...);
 *   et_trace_begin(&trace, rc, &parent, sampler);
 *
 * (where no header was found, rc is ET_DECLINED: nginx skips the call).
 * The adapter keeps the tracestate carried (ts) in the request's memory.
 * Writing, for each client span (an upstream or proxied request), with
 * inject or propagate:
 *
 *   mask = et_prop_inject_values(&trace, span_id, formats mask, buf, v);
 *   for each header k in mask: v[k].len ? replace it with v[k] : remove it
 *
 * where replacing leaves one value under the name, whatever the client
 * sent, and the headers outside the mask are left alone.  nginx walks
 * r->headers_in.headers and keeps "buf" as long as the request (the
 * upstream reads the values later): the traceparent in its request
 * context, b3's value in the request's pool; httpd walks r->headers_in,
 * and copies the values in proxy's fixups.
 */

#ifndef ET_PROPAGATION_H
#define ET_PROPAGATION_H


#include <string.h>

#include "et_core.h"
#include "et_span.h"
#include "et_sampler.h"
#include "et_w3c.h"
#include "et_b3.h"


/* formats, as bits */
#define ET_PROP_W3C      1
#define ET_PROP_B3       2
#define ET_PROP_B3MULTI  4

#define ET_PROP_FORMATS_MAX  3

/* the headers, by index */
#define ET_HDR_TRACEPARENT   0
#define ET_HDR_TRACESTATE    1
#define ET_HDR_B3            2
#define ET_HDR_B3_TRACE_ID   3
#define ET_HDR_B3_SPAN_ID    4
#define ET_HDR_B3_PARENT_ID  5
#define ET_HDR_B3_SAMPLED    6
#define ET_HDR_B3_FLAGS      7
#define ET_HDRS              8

/* tracestate lines looked at; more make the tracestate invalid */
#define ET_TRACESTATE_LINES  32

/* context modes (docs/nginx.md "edgetrace_context") */
#define ET_CONTEXT_EXTRACT    0
#define ET_CONTEXT_INJECT     1
#define ET_CONTEXT_PROPAGATE  2
#define ET_CONTEXT_IGNORE     3

/*
 * What applies where the configuration sets nothing: edgetrace_context
 * and EdgeTraceContext propagate, edgetrace_propagation and
 * EdgeTracePropagation w3c (one format).
 */
#define ET_CONTEXT_DEFAULT      ET_CONTEXT_PROPAGATE
#define ET_PROP_FORMAT_DEFAULT  ET_PROP_W3C

/* et_prop_extract(): a sampling decision without ids (B3 "0", "1", "d") */
#define ET_PROP_DECISION  1


typedef struct {
    et_str_t    name;           /* as written upstream: "X-B3-TraceId" */
    et_str_t    lowcase;        /* "x-b3-traceid" */
    unsigned    format;         /* ET_PROP_* */
} et_prop_header_t;


extern const et_prop_header_t  et_prop_headers[ET_HDRS];


/* what a walk over a request's headers found */
typedef struct {
    uint8_t     count[ET_HDRS];       /* saturates: "more than one" is all
                                         that matters, and 33 tracestate
                                         lines are too many */
    et_str_t    first[ET_HDRS];       /* when count */
    et_str_t    states[ET_TRACESTATE_LINES];
} et_prop_found_t;


/* the trace a request belongs to, and its server span */
typedef struct {
    uint8_t     trace_id[ET_TRACE_ID_LEN];
    uint8_t     span_id[ET_SPAN_ID_LEN];
    uint8_t     parent_id[ET_SPAN_ID_LEN];
    uint8_t     flags;
    unsigned    has_parent:1;
    unsigned    sampled:1;
    et_str_t    tracestate;     /* points into the caller's buffer */
} et_trace_t;


/*
 * Bytes for the values et_prop_inject_values() writes: the traceparent,
 * then the b3 header; et_prop_inject_size() for "formats" only.
 */
#define ET_PROP_INJECT_SIZE  (ET_TRACEPARENT_LEN + ET_B3_SINGLE_LEN)

#define et_prop_inject_size(formats)                                          \
    (ET_TRACEPARENT_LEN + (((formats) & ET_PROP_B3) ? ET_B3_SINGLE_LEN : 0))


/*
 * For each set of formats (a mask of ET_PROP_*): bit N set when one of its
 * headers is N bytes long.  Most request headers are told apart by their
 * length alone, the rest by their first letter (ET_PROP_FIRSTS).
 */
extern const uint32_t  et_prop_lengths[8];

/* bit N set when a header's name starts with the letter 'a' + N: t, b, x */
#define ET_PROP_FIRSTS  ((1u << ('t' - 'a')) | (1u << ('b' - 'a'))           \
                         | (1u << ('x' - 'a')))


/* et_prop_header_find() past its first tests */
int et_prop_header_match(const uint8_t *name, size_t len, unsigned formats);


/*
 * The index of the header named "name" (len bytes, any case) in
 * et_prop_headers[] if it belongs to one of "formats", else -1.  Called
 * for every request header: nearly all of them are rejected here, by
 * their length and first letter, without a call.
 */
static inline int
et_prop_header_find(const uint8_t *name, size_t len, unsigned formats)
{
    unsigned  c;

    if (len > 31 || !((et_prop_lengths[formats & 7] >> len) & 1)) {
        return -1;
    }

    /* no header of any format is 0 bytes long: name[0] exists */
    c = (unsigned) (name[0] | 0x20) - 'a';

    if (c > 25 || !((ET_PROP_FIRSTS >> c) & 1)) {
        return -1;
    }

    return et_prop_header_match(name, len, formats);
}

/* parses a format name ("w3c", "b3", "b3multi"): its bit, or 0 */
unsigned et_prop_format_parse(const uint8_t *p, size_t len);

/* parses a context mode name: ET_CONTEXT_*, or -1 */
int et_prop_context_parse(const uint8_t *p, size_t len);


/*
 * What a context mode (ET_CONTEXT_*) does, as docs/nginx.md
 * "edgetrace_context" tables it: et_prop_context_reads() is 1 for the
 * modes that read the incoming context (extract, propagate),
 * et_prop_context_writes() for those that write the module's own context
 * upstream (inject, propagate).  Both are 0 for ignore and for a value
 * that is no mode.
 */
static inline int
et_prop_context_reads(int mode)
{
    return mode == ET_CONTEXT_EXTRACT || mode == ET_CONTEXT_PROPAGATE;
}


static inline int
et_prop_context_writes(int mode)
{
    return mode == ET_CONTEXT_INJECT || mode == ET_CONTEXT_PROPAGATE;
}


static inline void
et_prop_found_init(et_prop_found_t *f)
{
    memset(f->count, 0, sizeof(f->count));
}


static inline void
et_prop_found_add(et_prop_found_t *f, int k, const uint8_t *value,
    size_t len)
{
    unsigned  n;

    n = f->count[k];

    if (n < 255) {
        f->count[k] = (uint8_t) (n + 1);
    }

    if (n == 0) {
        f->first[k].data = value;
        f->first[k].len = len;
    }

    if (k == ET_HDR_TRACESTATE && n < ET_TRACESTATE_LINES) {
        f->states[n].data = value;
        f->states[n].len = len;
    }
}


/*
 * Tries "formats" (n of them, in order) against what was found: ET_OK with
 * the parent context in "parent" (a B3 context without a sampling state
 * gets the sampler's decision) and the tracestate carried in "ts"
 * (ET_TRACESTATE_MAX bytes, *ts_len 0 when none or invalid);
 * ET_PROP_DECISION with only parent->flags; ET_DECLINED when no format is
 * valid.  "why", when not NULL, gets the last rejection's reason.
 */
int et_prop_extract(const et_prop_found_t *f, const unsigned *formats,
    size_t n, const et_sampler_t *sampler, et_context_t *parent,
    uint8_t *ts, size_t *ts_len, const char **why);

/*
 * Begins the trace of a request from et_prop_extract()'s result "rc":
 * continues the parent (ET_OK), or starts a new root with a new trace id,
 * sampled by the client's decision (ET_PROP_DECISION) or the sampler, and
 * the random flag set.  Draws the server span's id.
 */
void et_trace_begin(et_trace_t *t, int rc, const et_context_t *parent,
    const et_sampler_t *sampler);

/*
 * The values of every header of "formats" for a client span "span_id" of
 * trace "t": a header with an empty value is one the adapter removes
 * (stale X-B3-ParentSpanId and X-B3-Flags; tracestate when none is
 * carried), and headers of formats not configured are left with len 0 and
 * must be left alone.  Returns the mask (bit k: header k) of headers to
 * write or remove.
 *
 * "buf" (et_prop_inject_size(formats) bytes, at most ET_PROP_INJECT_SIZE)
 * always begins with the client span's traceparent, whatever the formats
 * (what an adapter shows the configuration: $edgetrace_traceparent,
 * EDGETRACE_TRACEPARENT).  The values point into "buf", into
 * t->tracestate, or to static strings: they live as long as "buf" and the
 * tracestate.  Cannot fail.
 */
unsigned et_prop_inject_values(const et_trace_t *t, const uint8_t *span_id,
    unsigned formats, uint8_t *buf, et_str_t values[ET_HDRS]);


#endif /* ET_PROPAGATION_H */
