/*
 * B3 propagation (openzipkin/b3-propagation): the single "b3" header and
 * the X-B3-* headers.
 *
 * Parsers are pure: they take the raw header values (OWS stripped here)
 * and say why they rejected them.  Where the B3 text is silent they do
 * what OpenTelemetry's B3 propagator does.
 */

#ifndef ET_B3_H
#define ET_B3_H


#include "et_core.h"
#include "et_span.h"


/* "<32 hex>-<16 hex>-<0|1>" */
#define ET_B3_SINGLE_LEN  51


typedef enum {
    ET_B3_OK = 0,             /* ids and a sampling decision */
    ET_B3_DEFERRED,           /* ids, no decision: the receiver samples */
    ET_B3_SAMPLING_ONLY,      /* a decision and no ids: a new trace */
    ET_B3_EMPTY,              /* nothing there */
    ET_B3_BAD_FORMAT,         /* wrong number of fields, stray characters */
    ET_B3_BAD_TRACE_ID,       /* not 16 or 32 lowercase hex digits */
    ET_B3_ZERO_TRACE_ID,
    ET_B3_BAD_SPAN_ID,        /* not 16 lowercase hex digits */
    ET_B3_ZERO_SPAN_ID,
    ET_B3_BAD_SAMPLED,        /* not 0, 1, d (true, false for X-B3-Sampled) */
    ET_B3_BAD_PARENT_ID,
    ET_B3_MISSING_ID          /* a trace id without span id, or the reverse */
} et_b3_rc_t;


const char *et_b3_reason(et_b3_rc_t rc);


/*
 * Parses a "b3" header.  On ET_B3_OK and ET_B3_DEFERRED "ctx" holds the
 * ids (a 64-bit trace id left-padded with zeros) and, for ET_B3_OK, the
 * sampled flag (debug "d" means sampled); on ET_B3_SAMPLING_ONLY only
 * ctx->flags is set.  Otherwise "ctx" is untouched.
 */
et_b3_rc_t et_b3_parse(const uint8_t *p, size_t len, et_context_t *ctx);

/*
 * The same for X-B3-TraceId, X-B3-SpanId, X-B3-ParentSpanId, X-B3-Sampled
 * and X-B3-Flags; an absent header has len 0.  X-B3-Flags: 1 (debug)
 * means sampled and wins over X-B3-Sampled.
 */
et_b3_rc_t et_b3multi_parse(et_str_t trace_id, et_str_t span_id,
    et_str_t parent_id, et_str_t sampled, et_str_t flags, et_context_t *ctx);

/*
 * Writes "<trace id>-<span id>-<1|0>" (ET_B3_SINGLE_LEN bytes, a 128-bit
 * trace id, no parent: the receiver does not need it); returns its end.
 */
uint8_t *et_b3_write(uint8_t *dst, const uint8_t trace_id[ET_TRACE_ID_LEN],
    const uint8_t span_id[ET_SPAN_ID_LEN], uint8_t flags);


#endif /* ET_B3_H */
