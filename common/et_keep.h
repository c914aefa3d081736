/*
 * Outcome rules: a request that head sampling did not sample is exported
 * at its end when its outcome (status, duration) matches a rule
 * (docs/nginx.md "edgetrace_keep", docs/stream.md "edgetrace.sampling").
 *
 * The rules of one configuration level are parsed once, at config time,
 * into one et_keep_t; a request's outcome is then tested with
 * et_keep_match(), without a call.  Rules the server evaluates itself (an
 * nginx variable, an httpd expression) are the adapter's: et_keep_parse()
 * declines them.
 */

#ifndef ET_KEEP_H
#define ET_KEEP_H


#include "et_core.h"
#include "et_span.h"


/* status codes a rule may name: 100 to 599 */
#define ET_KEEP_STATUS_MIN   100
#define ET_KEEP_STATUS_MAX   599

/* the longest slower= a rule may give: one day */
#define ET_KEEP_SLOWER_MAX   86400000000000ULL


typedef struct {
    uint64_t   status[(ET_KEEP_STATUS_MAX + 64) / 64];   /* a bit a code */
    uint64_t   slower_ns;      /* kept when longer; 0: no slower= rule */
    unsigned   nrules;         /* status= and slower= rules added */
} et_keep_t;


/* how a request came to be exported, or not: $edgetrace_sampling */
#define ET_SAMPLING_NONE      0    /* not sampled, not kept */
#define ET_SAMPLING_HEAD      1    /* sampled as it began */
#define ET_SAMPLING_OUTCOME   2    /* kept by an outcome rule */
#define ET_SAMPLING_LIMITED   3    /* sampled, then refused by the limit */


/* no rules */
void et_keep_init(et_keep_t *k);

/*
 * Adds the rule "p" (len bytes, as written in the configuration) to "k":
 *
 *   status=5xx    a class, 1xx to 5xx
 *   status=503    a code, 100 to 599
 *   slower=200ms  longer than a duration: digits and a unit (ms, s, m, h,
 *                 d), several in decreasing units ("1s500ms"), or digits
 *                 alone for seconds, as nginx writes times; more than 0,
 *                 at most 1d
 *
 * ET_OK when added; ET_DECLINED, with "k" unchanged, when "p" starts with
 * neither "status=" nor "slower=" (the adapter's own forms); ET_ERROR, with
 * "k" unchanged and a constant text in "why" that follows the rule as
 * written ("status=6xx": "is not a status ..."), otherwise.
 */
int et_keep_parse(et_keep_t *k, const uint8_t *p, size_t len,
    const char **why);

/*
 * Adds the rules of "from" to those of "to": the status codes of both, the
 * shorter slower= (httpd's per-directory merge, where rules add up; docs/
 * httpd.md "EdgeTraceKeep").
 */
void et_keep_merge(et_keep_t *to, const et_keep_t *from);

/*
 * A duration as slower= takes it, in nanoseconds; ET_ERROR with a constant
 * text in "why" for an empty, signed, unit-less-after-a-unit, unknown-unit,
 * zero or too long duration.
 */
int et_keep_parse_duration(const uint8_t *p, size_t len, uint64_t *ns,
    const char **why);


/* non-zero when a rule needs the request's duration: read the clock */
static inline int
et_keep_timed(const et_keep_t *k)
{
    return k->slower_ns != 0;
}


/*
 * Non-zero when "status" (0: none) or "duration_ns" (read only when
 * et_keep_timed()) matches a rule of "k".
 */
static inline int
et_keep_match(const et_keep_t *k, unsigned status, uint64_t duration_ns)
{
    if (status <= ET_KEEP_STATUS_MAX
        && (k->status[status / 64] >> (status % 64)) & 1)
    {
        return 1;
    }

    return k->slower_ns != 0 && duration_ns > k->slower_ns;
}


/* "head", "outcome", "limited" or "" for ET_SAMPLING_*; static strings */
et_str_t et_sampling_name(unsigned sampling);

/*
 * The value of a span's "edgetrace.sampling" field (et_span_t.sampling),
 * how an exported span was kept: "head" for ET_SAMPLING_HEAD, "outcome"
 * for ET_SAMPLING_OUTCOME, already RESP-encoded (the encoder copies it
 * after the field's name, rather than sizing and encoding an attribute);
 * NULL for the others, which are not exported.  Static.
 */
extern const et_str_t  et_sampling_values[4];

static inline const et_str_t *
et_sampling_field(unsigned sampling)
{
    if (sampling == ET_SAMPLING_HEAD || sampling == ET_SAMPLING_OUTCOME) {
        return &et_sampling_values[sampling];
    }

    return NULL;
}


#endif /* ET_KEEP_H */
