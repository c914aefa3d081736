/*
 * The head-sampling rate limit (docs/nginx.md "edgetrace_sample_limit"): a
 * token bucket shared by every process of a server, as a GCRA (the
 * "theoretical arrival time" form of a token bucket), whose whole state
 * is one 64-bit word updated with a compare-and-swap: no lock, and the
 * same bound however the requests spread over workers or threads.
 *
 * The bucket holds "rate" tokens and gains "rate" a second: over any W
 * seconds, at most rate * W + rate head-sampled new roots pass.
 */

#ifndef ET_LIMIT_H
#define ET_LIMIT_H


#include "et_core.h"
#include "et_propagation.h"


#define ET_LIMIT_RATE_MAX  1000000


/* what the configuration gives, read only on the request path */
typedef struct {
    uint64_t   interval_ns;    /* a token every interval; 0: no limit */
    uint64_t   tolerance_ns;   /* (rate - 1) intervals: the burst */
} et_limit_conf_t;


/* the bucket's state, in memory every process sees (zeroed: full) */
typedef struct {
    uint64_t   tat;            /* when the bucket is full again, ns */
} et_limit_t;


/*
 * Parses "N/s" (N from 1 to ET_LIMIT_RATE_MAX, digits only) into "rate";
 * ET_ERROR with a constant text in "why" otherwise.
 */
int et_limit_parse(const uint8_t *p, size_t len, uint32_t *rate,
    const char **why);

/* "rate" a second; 0: no limit */
void et_limit_conf_init(et_limit_conf_t *c, uint32_t rate);

/*
 * Takes a token at "now_ns" (any clock every process shares; a step back
 * of the clock refills the bucket rather than closing it): non-zero when
 * one was there.  Safe from any number of threads and processes at once.
 */
int et_limit_take(et_limit_t *l, const et_limit_conf_t *c, uint64_t now_ns);

/*
 * Applies the limit to a trace just begun (et_trace_begin()): a new root
 * the head sampler (or the client's own decision without a parent) chose
 * takes a token, and without one is unsampled, its flags too, so that
 * upstreams get sampled=0.  A parent that arrived sampled is honoured.
 * Returns non-zero when the trace was limited.  "l" NULL, or a conf
 * without a limit: nothing is limited.
 */
static inline int
et_limit_trace(et_trace_t *t, et_limit_t *l, const et_limit_conf_t *c,
    uint64_t now_ns)
{
    if (!t->sampled || t->has_parent || c->interval_ns == 0 || l == NULL) {
        return 0;
    }

    if (et_limit_take(l, c, now_ns)) {
        return 0;
    }

    t->flags &= (uint8_t) ~ET_FLAG_SAMPLED;
    t->sampled = 0;

    return 1;
}


#endif /* ET_LIMIT_H */
