/*
 * The head-sampling rate limit: a GCRA token bucket in one word
 * (et_limit.h, docs/nginx.md "edgetrace_sample_limit").
 */

#include "et_limit.h"


#define ET_NS_S  1000000000ULL

/* how far apart the clocks of two takers may be: see et_limit_take() */
#define ET_LIMIT_SKEW_NS  ET_NS_S


int
et_limit_parse(const uint8_t *p, size_t len, uint32_t *rate,
    const char **why)
{
    int64_t  n;

    if (len < 3 || p[len - 2] != '/' || p[len - 1] != 's') {
        *why = "is not a rate: a number and \"/s\", as 100/s";
        return ET_ERROR;
    }

    if (et_parse_int(p, len - 2, 1, ET_LIMIT_RATE_MAX, &n) != ET_OK) {
        *why = "must be 1/s to 1000000/s";
        return ET_ERROR;
    }

    *rate = (uint32_t) n;

    return ET_OK;
}


void
et_limit_conf_init(et_limit_conf_t *c, uint32_t rate)
{
    if (rate == 0) {
        c->interval_ns = 0;
        c->tolerance_ns = 0;
        return;
    }

    /* rounded up: never more than "rate" a second */
    c->interval_ns = (ET_NS_S + rate - 1) / rate;
    c->tolerance_ns = (uint64_t) (rate - 1) * c->interval_ns;
}


int
et_limit_take(et_limit_t *l, const et_limit_conf_t *c, uint64_t now_ns)
{
    uint64_t  tat, base, next;

    tat = __atomic_load_n(&l->tat, __ATOMIC_RELAXED);

    do {
        base = tat;

        if (tat > now_ns + c->tolerance_ns) {

            /*
             * A token taken moves "tat" at most tolerance and one interval
             * beyond its taker's clock; the takers' clocks differ by the
             * moments they were read, well under ET_LIMIT_SKEW_NS.  Beyond
             * that, the clock went back: the bucket starts again.
             */
            if (tat <= now_ns + c->tolerance_ns + c->interval_ns
                       + ET_LIMIT_SKEW_NS)
            {
                return 0;
            }

            base = now_ns;
        }

        next = (base > now_ns ? base : now_ns) + c->interval_ns;

    } while (!__atomic_compare_exchange_n(&l->tat, &tat, next, 1,
                                          __ATOMIC_RELAXED, __ATOMIC_RELAXED));

    return 1;
}
