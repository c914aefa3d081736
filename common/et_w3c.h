/*
 * W3C Trace Context Level 2: traceparent and tracestate.
 *
 * Parsers are pure: they take the raw header value (OWS, spaces and tabs,
 * is stripped here), and return why they rejected it.
 */

#ifndef ET_W3C_H
#define ET_W3C_H


#include "et_core.h"
#include "et_span.h"


#define ET_TRACEPARENT_LEN  55
#define ET_TRACESTATE_MAX   512
#define ET_TRACESTATE_MEMBERS_MAX  32


typedef enum {
    ET_W3C_OK = 0,
    ET_W3C_EMPTY,             /* no value */
    ET_W3C_BAD_LENGTH,        /* version 00 and not 55 chars, or < 55 */
    ET_W3C_BAD_VERSION,       /* not 2 lowercase hex digits */
    ET_W3C_VERSION_FF,        /* version ff is forbidden */
    ET_W3C_BAD_DELIMITER,     /* '-' missing where required */
    ET_W3C_BAD_TRACE_ID,      /* not 32 lowercase hex digits */
    ET_W3C_ZERO_TRACE_ID,
    ET_W3C_BAD_SPAN_ID,       /* not 16 lowercase hex digits */
    ET_W3C_ZERO_SPAN_ID,
    ET_W3C_BAD_FLAGS,         /* not 2 lowercase hex digits */

    ET_W3C_TS_TOO_MANY,       /* more than 32 keys */
    ET_W3C_TS_BAD_MEMBER,     /* no '=' */
    ET_W3C_TS_BAD_KEY,
    ET_W3C_TS_BAD_VALUE
} et_w3c_rc_t;


/* a short constant text for a result code ("zero trace id") */
const char *et_w3c_reason(et_w3c_rc_t rc);


/*
 * Parses one traceparent value.  Versions above 00 (but not ff) are parsed
 * by the spec's rules for future versions: the first 55 characters as
 * version 00, then either the end or '-'.  On ET_W3C_OK "ctx" holds the
 * ids and the known flags (sampled, random); otherwise it is untouched.
 */
et_w3c_rc_t et_traceparent_parse(const uint8_t *p, size_t len,
    et_context_t *ctx);

/* writes the 55-character version-00 traceparent; returns its end */
uint8_t *et_traceparent_write(uint8_t *dst,
    const uint8_t trace_id[ET_TRACE_ID_LEN],
    const uint8_t span_id[ET_SPAN_ID_LEN], uint8_t flags);


/*
 * Validates and combines tracestate header lines (several lines are one
 * list, joined by ','), and writes the combined list, normalized to
 * "key=value,key=value", into "out" (ET_TRACESTATE_MAX bytes), truncated to
 * at most 512 characters by whole members: members longer than 128
 * characters go first, then members from the end.  Empty members (",,")
 * are allowed and dropped; so is every member whose key an earlier member
 * has (the first one is kept), and only the members kept count towards
 * the limit of 32.  On any error the whole tracestate is invalid and
 * *out_len is 0.
 */
et_w3c_rc_t et_tracestate_parse(const et_str_t *lines, size_t nlines,
    uint8_t *out, size_t *out_len);


#endif /* ET_W3C_H */
