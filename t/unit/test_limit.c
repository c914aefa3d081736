/*
 * Unit tests: et_limit.c (docs/nginx.md "edgetrace_sample_limit").
 */

#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#include "et_core.h"
#include "et_limit.h"
#include "tap.h"


#define nelts(a)  (sizeof(a) / sizeof((a)[0]))

#define MS  1000000ULL
#define S   (1000 * MS)

/* a clock far from 0, as CLOCK_REALTIME is */
#define T0  (1765000000ULL * S)


static void
test_parse(void)
{
    size_t       i;
    int          rc;
    uint32_t     rate;
    const char  *why;

    static const struct {
        const char  *in;
        int          rc;
        uint32_t     rate;
    } cases[] = {
        { "100/s", ET_OK, 100 },
        { "1/s", ET_OK, 1 },
        { "1000000/s", ET_OK, 1000000 },
        { "0100/s", ET_OK, 100 },
        { "0/s", ET_ERROR, 0 },
        { "1000001/s", ET_ERROR, 0 },
        { "99999999999999999999999/s", ET_ERROR, 0 },
        { "100", ET_ERROR, 0 },
        { "100/", ET_ERROR, 0 },
        { "100/m", ET_ERROR, 0 },
        { "100/S", ET_ERROR, 0 },
        { "100/ s", ET_ERROR, 0 },
        { "100 /s", ET_ERROR, 0 },
        { "-1/s", ET_ERROR, 0 },
        { "+1/s", ET_ERROR, 0 },
        { "1.5/s", ET_ERROR, 0 },
        { "/s", ET_ERROR, 0 },
        { "s", ET_ERROR, 0 },
        { "", ET_ERROR, 0 },
        { "100/s/s", ET_ERROR, 0 },
    };

    for (i = 0; i < nelts(cases); i++) {
        rate = 7;
        why = NULL;
        rc = et_limit_parse((const uint8_t *) cases[i].in,
                            strlen(cases[i].in), &rate, &why);

        tap_is_int(rc, cases[i].rc, "limit \"%s\": result", cases[i].in);

        if (rc == ET_OK) {
            tap_is_int(rate, cases[i].rate, "limit \"%s\": rate",
                       cases[i].in);

        } else {
            tap_ok(rate == 7 && why != NULL, "limit \"%s\": %s", cases[i].in,
                   why ? why : "(null)");
        }
    }
}


/* tokens taken at "n" requests spread evenly over "ns" from "start" */
static unsigned
take_many(et_limit_t *l, const et_limit_conf_t *c, uint64_t start,
    uint64_t ns, unsigned n)
{
    unsigned  i, got;

    got = 0;

    for (i = 0; i < n; i++) {
        got += et_limit_take(l, c, start + ns * i / n) ? 1 : 0;
    }

    return got;
}


static void
test_bucket(void)
{
    unsigned         got;
    et_limit_t       l;
    et_limit_conf_t  c;

    et_limit_conf_init(&c, 0);
    tap_ok(c.interval_ns == 0, "rate 0: no limit");

    et_limit_conf_init(&c, 100);
    tap_ok(c.interval_ns == 10 * MS && c.tolerance_ns == 99 * 10 * MS,
           "100/s: a token every 10ms, a burst of 100");

    /* a burst at one moment: the bucket's 100, then nothing */
    memset(&l, 0, sizeof(l));
    got = take_many(&l, &c, T0, 0, 10000);
    tap_is_int(got, 100, "10000 at once: 100 pass");

    /* 10 ms later, one more */
    tap_ok(!et_limit_take(&l, &c, T0 + 9 * MS), "9ms later: none");
    tap_ok(et_limit_take(&l, &c, T0 + 10 * MS), "10ms later: one");
    tap_ok(!et_limit_take(&l, &c, T0 + 10 * MS), "and only one");

    /* 10000 over 2 s, from a full bucket: at most 100 + 200 */
    memset(&l, 0, sizeof(l));
    got = take_many(&l, &c, T0, 2 * S, 10000);
    tap_ok(got <= 300 && got >= 299, "10000 over 2s at 100/s: %u pass "
           "(at most 300)", got);

    /* below the rate, everything passes */
    memset(&l, 0, sizeof(l));
    got = take_many(&l, &c, T0, 10 * S, 900);
    tap_is_int(got, 900, "90/s at 100/s: every one passes");

    /* an idle bucket fills up to its size, no more */
    memset(&l, 0, sizeof(l));
    (void) take_many(&l, &c, T0, 0, 1000);
    got = take_many(&l, &c, T0 + 3600 * S, 0, 1000);
    tap_is_int(got, 100, "after an hour idle: a burst of 100 again");

    /* a clock a little behind (another worker's older reading): limited */
    memset(&l, 0, sizeof(l));
    (void) take_many(&l, &c, T0, 0, 100);
    tap_ok(!et_limit_take(&l, &c, T0 - 500 * MS),
           "a reading 500ms older: still limited");

    /* the clock stepped back an hour: the bucket starts again */
    tap_ok(et_limit_take(&l, &c, T0 - 3600 * S),
           "clock back an hour: not closed for an hour");
    got = take_many(&l, &c, T0 - 3600 * S, 0, 1000);
    tap_is_int(got, 99, "and then limited at its rate again");

    /* 1/s: the smallest */
    et_limit_conf_init(&c, 1);
    memset(&l, 0, sizeof(l));
    got = take_many(&l, &c, T0, 10 * S, 10000);
    tap_ok(got <= 11 && got >= 10, "1/s over 10s: %u pass", got);

    /* 3/s: an interval rounded up, never above the rate */
    et_limit_conf_init(&c, 3);
    memset(&l, 0, sizeof(l));
    got = take_many(&l, &c, T0, 100 * S, 100000);
    tap_ok(got <= 303 && got >= 300, "3/s over 100s: %u pass", got);

    /* 1000000/s */
    et_limit_conf_init(&c, ET_LIMIT_RATE_MAX);
    memset(&l, 0, sizeof(l));
    got = take_many(&l, &c, T0, 0, 2000000);
    tap_is_int(got, 1000000, "1000000/s at once: a million pass");
}


#define THREADS  4
#define TAKES    200000

static et_limit_t       shared_limit;
static et_limit_conf_t  shared_conf;


static void *
taker(void *arg)
{
    unsigned  *got = arg;

    /* every thread at the same moment: only the bucket's size passes */
    *got = take_many(&shared_limit, &shared_conf, T0, 0, TAKES);

    return NULL;
}


static void
test_threads(void)
{
    unsigned   i, got[THREADS], sum;
    pthread_t  t[THREADS];

    et_limit_conf_init(&shared_conf, 1000);
    memset(&shared_limit, 0, sizeof(shared_limit));

    for (i = 0; i < THREADS; i++) {
        if (pthread_create(&t[i], NULL, taker, &got[i]) != 0) {
            abort();
        }
    }

    sum = 0;

    for (i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        sum += got[i];
    }

    tap_is_int(sum, 1000, "4 threads at once, 1000/s: exactly 1000 pass");
}


static void
test_trace(void)
{
    et_trace_t       t;
    et_limit_t       l;
    et_limit_conf_t  c, none;

    et_limit_conf_init(&c, 1);
    et_limit_conf_init(&none, 0);
    memset(&l, 0, sizeof(l));

    /* a sampled new root takes the one token */
    memset(&t, 0, sizeof(t));
    t.flags = ET_FLAG_SAMPLED | ET_FLAG_RANDOM;
    t.sampled = 1;
    tap_ok(!et_limit_trace(&t, &l, &c, T0) && t.sampled
           && t.flags == (ET_FLAG_SAMPLED | ET_FLAG_RANDOM),
           "trace: a new root takes a token");

    /* the next is unsampled, flags too */
    tap_ok(et_limit_trace(&t, &l, &c, T0) && !t.sampled
           && t.flags == ET_FLAG_RANDOM,
           "trace: the next is limited, its flags unsampled");

    /* an unsampled root takes nothing */
    tap_ok(!et_limit_trace(&t, &l, &c, T0) && !t.sampled,
           "trace: an unsampled root is not limited");

    /* a sampled parent passes, with no token left */
    t.flags = ET_FLAG_SAMPLED;
    t.sampled = 1;
    t.has_parent = 1;
    tap_ok(!et_limit_trace(&t, &l, &c, T0) && t.sampled
           && t.flags == ET_FLAG_SAMPLED,
           "trace: a parent that arrived sampled is honoured");

    /* no limit, no bucket */
    t.has_parent = 0;
    tap_ok(!et_limit_trace(&t, &l, &none, T0) && t.sampled,
           "trace: no limit configured");
    tap_ok(!et_limit_trace(&t, NULL, &c, T0) && t.sampled,
           "trace: no bucket (no shared memory)");
}


int
main(void)
{
    test_parse();
    test_bucket();
    test_threads();
    test_trace();

    return tap_done();
}
