/*
 * Propagation as both adapters do it: which request headers carry trace
 * context, how the configured formats are read (in their order, the first
 * valid one wins), how the trace of a request begins from what was read,
 * and what is written upstream.
 *
 * The adapter walks its server's header list once, hands each header whose
 * name et_prop_header_find() knows to et_prop_found_add(), and lets the
 * core decide.  Writing is the reverse: et_prop_inject_values() gives the
 * value of every header of the configured formats, empty for the ones the
 * adapter must remove.
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


/* bytes for the values et_prop_inject_values() writes */
#define ET_PROP_INJECT_SIZE  (ET_TRACEPARENT_LEN + ET_B3_SINGLE_LEN + 32    \
                              + 16 + 1)


/*
 * The index of the header named "name" (any case) if it belongs to one of
 * "formats", else -1.
 */
int et_prop_header_find(const uint8_t *name, size_t len, unsigned formats);

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
 * trace "t", written into "buf" (ET_PROP_INJECT_SIZE bytes): a header with
 * an empty value is one the adapter removes (stale X-B3-ParentSpanId and
 * X-B3-Flags; tracestate when none is carried), and headers of formats not
 * configured are left with len 0 and must be left alone.  Returns the mask
 * of headers to write or remove.
 */
unsigned et_prop_inject_values(const et_trace_t *t, const uint8_t *span_id,
    unsigned formats, uint8_t *buf, et_str_t values[ET_HDRS]);


#endif /* ET_PROPAGATION_H */
