/*
 * Parent-based sampler.  A new root is sampled with probability "ratio",
 * decided from the trace id's low 56 bits (as OpenTelemetry's
 * TraceIdRatioBased sampler does), so the decision is consistent for a
 * given trace id and costs no extra random number.
 */

#ifndef ET_SAMPLER_H
#define ET_SAMPLER_H


#include "et_core.h"
#include "et_id.h"


typedef struct {
    uint64_t   threshold;      /* sampled when low 56 bits < threshold */
    unsigned   always:1;
    unsigned   never:1;
} et_sampler_t;


/* ratio in [0, 1]; ET_ERROR otherwise (NaN included) */
int et_sampler_init(et_sampler_t *s, double ratio);

/*
 * parses a ratio the way config files write it: "1", "0", "0.25", ".5";
 * ET_ERROR for anything else (signs, exponents, > 1, garbage)
 */
int et_sampler_parse_ratio(const uint8_t *p, size_t len, double *ratio);

int et_sampler_sampled(const et_sampler_t *s,
    const uint8_t trace_id[ET_TRACE_ID_LEN]);


#endif /* ET_SAMPLER_H */
