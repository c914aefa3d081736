/*
 * Unit tests: et_sampler.c.
 */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "et_core.h"
#include "et_id.h"
#include "et_sampler.h"
#include "tap.h"


#define S(s)  (s), sizeof(s) - 1

#define TWO_56  72057594037927936ULL


/* no fabs(): the Makefile links unit tests without -lm */
static double
dist(double a, double b)
{
    return a > b ? a - b : b - a;
}


static void
test_init(void)
{
    size_t        i;
    int           rc;
    et_sampler_t  s;

    static const struct {
        const char  *name;
        double       ratio;
        int          rc;
        uint64_t     threshold;
        unsigned     always;
        unsigned     never;
    } cases[] = {
        { "0", 0.0, ET_OK, 0, 0, 1 },
        { "1", 1.0, ET_OK, TWO_56, 1, 0 },
        { "0.5", 0.5, ET_OK, TWO_56 / 2, 0, 0 },
        { "0.25", 0.25, ET_OK, TWO_56 / 4, 0, 0 },
        { "2^-56", 1.0 / 72057594037927936.0, ET_OK, 1, 0, 0 },
        { "-0.0", -0.0, ET_OK, 0, 0, 1 },
        { "-0.1", -0.1, ET_ERROR, 0, 0, 0 },
        { "1.0000001", 1.0000001, ET_ERROR, 0, 0, 0 },
        { "2", 2.0, ET_ERROR, 0, 0, 0 },
        { "NaN", NAN, ET_ERROR, 0, 0, 0 },
        { "+inf", INFINITY, ET_ERROR, 0, 0, 0 },
        { "-inf", -INFINITY, ET_ERROR, 0, 0, 0 },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(&s, 0, sizeof(s));
        rc = et_sampler_init(&s, cases[i].ratio);

        tap_ok(rc == cases[i].rc
               && (rc != ET_OK
                   || (s.threshold == cases[i].threshold
                       && s.always == cases[i].always
                       && s.never == cases[i].never)),
               "init %s -> %s", cases[i].name,
               cases[i].rc == ET_OK ? "ok" : "error");
    }
}


static void
test_sampled(void)
{
    size_t        i;
    uint8_t       id[ET_TRACE_ID_LEN];
    et_sampler_t  s;

    /*
     * Crafted trace ids: only bytes 9..15 (the low 56 bits) decide; the
     * high bytes are set to values that would flip the decision if they
     * were looked at.
     */

    static const struct {
        const char  *name;
        double       ratio;
        const char  *trace_id;
        int          sampled;
    } cases[] = {
        { "ratio 0, low bits 0", 0.0,
          "ffffffffffffffffff00000000000000", 0 },
        { "ratio 0, low bits max", 0.0,
          "00000000000000000000000000000000", 0 },
        { "ratio 1, low bits max", 1.0,
          "000000000000000000ffffffffffffff", 1 },
        { "ratio 1, all bits max", 1.0,
          "ffffffffffffffffffffffffffffffff", 1 },
        { "ratio 0.5, low bits 0", 0.5,
          "ffffffffffffffffff00000000000000", 1 },
        { "ratio 0.5, low bits 2^55 - 1", 0.5,
          "ffffffffffffffffff7fffffffffffff", 1 },
        { "ratio 0.5, low bits 2^55", 0.5,
          "00000000000000000080000000000000", 0 },
        { "ratio 0.5, low bits max", 0.5,
          "000000000000000000ffffffffffffff", 0 },
        { "ratio 0.5, byte 8 ignored", 0.5,
          "0000000000000000ff7fffffffffffff", 1 },
        { "ratio 0.25, low bits 2^54 - 1", 0.25,
          "ffffffffffffffffff3fffffffffffff", 1 },
        { "ratio 0.25, low bits 2^54", 0.25,
          "00000000000000000040000000000000", 0 },
        { "ratio 2^-56, low bits 0", 1.0 / 72057594037927936.0,
          "ffffffffffffffffff00000000000000", 1 },
        { "ratio 2^-56, low bits 1", 1.0 / 72057594037927936.0,
          "ffffffffffffffffff00000000000001", 0 },
        { "ratio 0.999, low bits max", 0.999,
          "000000000000000000ffffffffffffff", 0 },
        { "ratio 0.999, low bits 0", 0.999,
          "00000000000000000000000000000000", 1 },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (et_sampler_init(&s, cases[i].ratio) != ET_OK
            || strlen(cases[i].trace_id) != 2 * ET_TRACE_ID_LEN
            || et_hex_decode(id, (const uint8_t *) cases[i].trace_id,
                             ET_TRACE_ID_LEN) != ET_OK)
        {
            tap_ok(0, "sampled: %s (bad test case)", cases[i].name);
            continue;
        }

        tap_is_int(et_sampler_sampled(&s, id), cases[i].sampled,
                   "sampled: %s -> %s", cases[i].name,
                   cases[i].sampled ? "yes" : "no");
    }
}


static void
test_rate(void)
{
    size_t        i, j, n, hits;
    double        frac;
    uint8_t       id[ET_TRACE_ID_LEN];
    et_sampler_t  s;

    static const double  ratios[] = { 0.0, 0.01, 0.25, 0.5, 0.9, 1.0 };

    n = 200000;

    for (j = 0; j < sizeof(ratios) / sizeof(ratios[0]); j++) {
        et_sampler_init(&s, ratios[j]);
        hits = 0;

        for (i = 0; i < n; i++) {
            et_trace_id_new(id);
            hits += et_sampler_sampled(&s, id);
        }

        frac = (double) hits / n;

        /* 200000 draws: 5 standard deviations are at most 0.0056 */
        tap_ok(dist(frac, ratios[j]) < 0.006,
               "rate: ratio %.2f samples %.4f of random trace ids",
               ratios[j], frac);
    }

    /* the decision depends on the trace id only */
    et_sampler_init(&s, 0.5);
    et_trace_id_new(id);

    hits = 0;

    for (i = 0; i < 100; i++) {
        hits += et_sampler_sampled(&s, id);
    }

    tap_ok(hits == 0 || hits == 100, "rate: same trace id, same decision");
}


static void
test_parse(void)
{
    size_t    i;
    int       rc;
    double    ratio;
    uint8_t  *in;

    static const struct {
        const char  *in;
        size_t       len;
        int          rc;
        double       ratio;
    } cases[] = {
        { S("1"), ET_OK, 1.0 },
        { S("0"), ET_OK, 0.0 },
        { S("0.25"), ET_OK, 0.25 },
        { S(".5"), ET_OK, 0.5 },
        { S("0.5"), ET_OK, 0.5 },
        { S("1.0"), ET_OK, 1.0 },
        { S("1.000000"), ET_OK, 1.0 },
        { S("0.0"), ET_OK, 0.0 },
        { S("0."), ET_OK, 0.0 },
        { S("1."), ET_OK, 1.0 },
        { S("00.5"), ET_OK, 0.5 },
        { S("01"), ET_OK, 1.0 },
        { S("0.001"), ET_OK, 0.001 },
        { S("0.000000000000000000000000001"), ET_OK, 0.0 },
        { S("0.3333333333333333333333333333"), ET_OK, 1.0 / 3.0 },
        { S("0.99999999"), ET_OK, 0.99999999 },

        { S(""), ET_ERROR, 0 },
        { S("."), ET_ERROR, 0 },
        { S(".."), ET_ERROR, 0 },
        { S("0..5"), ET_ERROR, 0 },
        { S("0.5."), ET_ERROR, 0 },
        { S("-0.5"), ET_ERROR, 0 },
        { S("-0"), ET_ERROR, 0 },
        { S("+0.5"), ET_ERROR, 0 },
        { S("1e-1"), ET_ERROR, 0 },
        { S("5E-1"), ET_ERROR, 0 },
        { S("1.5"), ET_ERROR, 0 },
        { S("1.0001"), ET_ERROR, 0 },
        { S("1.00000000000000000000001"), ET_ERROR, 0 },
        { S("2"), ET_ERROR, 0 },
        { S("10"), ET_ERROR, 0 },
        { S("100000000000000000000000000"), ET_ERROR, 0 },
        { S("nan"), ET_ERROR, 0 },
        { S("NaN"), ET_ERROR, 0 },
        { S("inf"), ET_ERROR, 0 },
        { S("infinity"), ET_ERROR, 0 },
        { S("0x1"), ET_ERROR, 0 },
        { S("0,5"), ET_ERROR, 0 },
        { S("0.5x"), ET_ERROR, 0 },
        { S("0.5%"), ET_ERROR, 0 },
        { S(" 0.5"), ET_ERROR, 0 },
        { S("0.5 "), ET_ERROR, 0 },
        { S("0.5\0"), ET_ERROR, 0 },
        { S("\xc2\xbd"), ET_ERROR, 0 },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        in = malloc(cases[i].len ? cases[i].len : 1);
        if (in == NULL) {
            abort();
        }

        memcpy(in, cases[i].in, cases[i].len);

        ratio = -1.0;
        rc = et_sampler_parse_ratio(in, cases[i].len, &ratio);
        free(in);

        tap_ok(rc == cases[i].rc
               && (rc != ET_OK || dist(ratio, cases[i].ratio) < 1e-15)
               && (rc == ET_OK || ratio == -1.0),
               "parse '%.*s' -> %s", (int) cases[i].len, cases[i].in,
               cases[i].rc == ET_OK ? "ok" : "error");
    }
}


int
main(void)
{
    test_init();
    test_sampled();
    test_rate();
    test_parse();

    return tap_done();
}
