/*
 * Unit tests: et_keep.c (outcome rules, docs/nginx.md "edgetrace_keep").
 */

#include <stdlib.h>
#include <string.h>

#include "et_core.h"
#include "et_keep.h"
#include "tap.h"


#define nelts(a)  (sizeof(a) / sizeof((a)[0]))

#define MS  1000000ULL
#define S   (1000 * MS)


static void
test_duration(void)
{
    size_t       i;
    int          rc;
    uint64_t     ns;
    const char  *why;

    static const struct {
        const char  *in;
        int          rc;
        uint64_t     ns;
        const char  *why;      /* a word of the reason */
    } cases[] = {
        { "200ms", ET_OK, 200 * MS, NULL },
        { "1s", ET_OK, S, NULL },
        { "2", ET_OK, 2 * S, NULL },              /* seconds, as nginx */
        { "1m", ET_OK, 60 * S, NULL },
        { "1h", ET_OK, 3600 * S, NULL },
        { "1d", ET_OK, 86400 * S, NULL },
        { "1s500ms", ET_OK, 1500 * MS, NULL },
        { "1m30s", ET_OK, 90 * S, NULL },
        { "1ms", ET_OK, MS, NULL },
        { "86400000ms", ET_OK, 86400 * S, NULL },
        { "0001s", ET_OK, S, NULL },
        { "", ET_ERROR, 0, "no duration" },
        { "-1", ET_ERROR, 0, "not a duration" },
        { "+1s", ET_ERROR, 0, "not a duration" },
        { " 1s", ET_ERROR, 0, "not a duration" },
        { "1s ", ET_ERROR, 0, "unit" },
        { "10x", ET_ERROR, 0, "unit" },
        { "10 ms", ET_ERROR, 0, "unit" },
        { "1.5s", ET_ERROR, 0, "unit" },
        { "1w", ET_ERROR, 0, "unit" },
        { "1M", ET_ERROR, 0, "unit" },
        { "ms", ET_ERROR, 0, "not a duration" },
        { "s", ET_ERROR, 0, "not a duration" },
        { "0", ET_ERROR, 0, "longer than 0" },
        { "0ms", ET_ERROR, 0, "longer than 0" },
        { "0s0ms", ET_ERROR, 0, "longer than 0" },
        { "1ms1s", ET_ERROR, 0, "longer one after" },
        { "1s1s", ET_ERROR, 0, "repeats" },
        { "1m30", ET_ERROR, 0, "without a unit" },
        { "1d1ms", ET_ERROR, 0, "longer than 1d" },
        { "2d", ET_ERROR, 0, "longer than 1d" },
        { "25h", ET_ERROR, 0, "longer than 1d" },
        { "86400001ms", ET_ERROR, 0, "longer than 1d" },
        { "99999999999999999999999s", ET_ERROR, 0, "longer than 1d" },
        { "18446744073709551617ms", ET_ERROR, 0, "longer than 1d" },
    };

    for (i = 0; i < nelts(cases); i++) {
        ns = 7;
        why = NULL;
        rc = et_keep_parse_duration((const uint8_t *) cases[i].in,
                                    strlen(cases[i].in), &ns, &why);

        tap_is_int(rc, cases[i].rc, "duration \"%s\": result", cases[i].in);

        if (cases[i].rc == ET_OK) {
            tap_is_int(ns, cases[i].ns, "duration \"%s\": value",
                       cases[i].in);

        } else {
            tap_ok(ns == 7 && why != NULL && strstr(why, cases[i].why),
                   "duration \"%s\": %s", cases[i].in, why ? why : "(null)");
        }
    }
}


static void
test_parse(void)
{
    size_t       i;
    int          rc;
    et_keep_t    k, before;
    const char  *why;

    static const struct {
        const char  *in;
        int          rc;
        unsigned     keeps;     /* a status it keeps, or 0 */
        unsigned     skips;     /* one it does not, or 0 */
        uint64_t     slower;
    } cases[] = {
        { "status=5xx", ET_OK, 500, 499, 0 },
        { "status=5xx", ET_OK, 599, 600, 0 },
        { "status=5XX", ET_OK, 503, 429, 0 },
        { "status=1xx", ET_OK, 100, 200, 0 },
        { "status=4xx", ET_OK, 404, 500, 0 },
        { "status=429", ET_OK, 429, 428, 0 },
        { "status=100", ET_OK, 100, 101, 0 },
        { "status=599", ET_OK, 599, 598, 0 },
        { "slower=200ms", ET_OK, 0, 500, 200 * MS },
        { "slower=1s", ET_OK, 0, 500, S },
        { "status=6xx", ET_ERROR, 0, 0, 0 },
        { "status=0xx", ET_ERROR, 0, 0, 0 },
        { "status=600", ET_ERROR, 0, 0, 0 },
        { "status=099", ET_ERROR, 0, 0, 0 },
        { "status=99", ET_ERROR, 0, 0, 0 },
        { "status=1000", ET_ERROR, 0, 0, 0 },
        { "status=", ET_ERROR, 0, 0, 0 },
        { "status=5x", ET_ERROR, 0, 0, 0 },
        { "status=50x", ET_ERROR, 0, 0, 0 },
        { "status=5x0", ET_ERROR, 0, 0, 0 },
        { "status=-50", ET_ERROR, 0, 0, 0 },
        { "status=5xx,4xx", ET_ERROR, 0, 0, 0 },
        { "status= 500", ET_ERROR, 0, 0, 0 },
        { "slower=-1", ET_ERROR, 0, 0, 0 },
        { "slower=10x", ET_ERROR, 0, 0, 0 },
        { "slower=0", ET_ERROR, 0, 0, 0 },
        { "slower=", ET_ERROR, 0, 0, 0 },
        { "$var", ET_DECLINED, 0, 0, 0 },
        { "expr=%{REQUEST_STATUS} == 500", ET_DECLINED, 0, 0, 0 },
        { "status", ET_DECLINED, 0, 0, 0 },
        { "Status=500", ET_DECLINED, 0, 0, 0 },
        { "slow=1s", ET_DECLINED, 0, 0, 0 },
        { "", ET_DECLINED, 0, 0, 0 },
    };

    for (i = 0; i < nelts(cases); i++) {
        et_keep_init(&k);
        before = k;
        why = NULL;

        rc = et_keep_parse(&k, (const uint8_t *) cases[i].in,
                           strlen(cases[i].in), &why);

        tap_is_int(rc, cases[i].rc, "rule \"%s\": result", cases[i].in);

        if (rc != ET_OK) {
            tap_ok(memcmp(&k, &before, sizeof(k)) == 0
                   && (rc == ET_DECLINED || why != NULL),
                   "rule \"%s\": no rule added%s%s", cases[i].in,
                   why ? ", " : "", why ? why : "");
            continue;
        }

        tap_ok(k.nrules == 1 && k.slower_ns == cases[i].slower,
               "rule \"%s\": one rule, slower %llu", cases[i].in,
               (unsigned long long) k.slower_ns);

        if (cases[i].keeps) {
            tap_ok(et_keep_match(&k, cases[i].keeps, 0),
                   "rule \"%s\" keeps %u", cases[i].in, cases[i].keeps);
        }

        if (cases[i].skips) {
            tap_ok(!et_keep_match(&k, cases[i].skips, 0),
                   "rule \"%s\" does not keep %u", cases[i].in,
                   cases[i].skips);
        }
    }
}


static void
test_match(void)
{
    et_keep_t    k;
    const char  *why;

#define ADD(s)                                                                \
    tap_is_int(et_keep_parse(&k, (const uint8_t *) (s), sizeof(s) - 1,       \
                             &why), ET_OK, "add " s)

    et_keep_init(&k);
    tap_ok(!et_keep_timed(&k) && !et_keep_match(&k, 500, 100 * S),
           "no rules: nothing kept, no clock");

    ADD("status=5xx");
    ADD("status=429");
    tap_ok(!et_keep_timed(&k), "status rules only: no clock");

    ADD("slower=500ms");
    ADD("slower=1s");
    ADD("slower=200ms");
    tap_ok(et_keep_timed(&k) && k.slower_ns == 200 * MS && k.nrules == 5,
           "several slower=: the shortest decides");

    tap_ok(et_keep_match(&k, 500, 0), "500 kept");
    tap_ok(et_keep_match(&k, 503, 0), "503 kept");
    tap_ok(et_keep_match(&k, 429, 0), "429 kept");
    tap_ok(!et_keep_match(&k, 430, 0), "430 not kept");
    tap_ok(!et_keep_match(&k, 200, 200 * MS), "200 at exactly 200ms: not "
           "slower");
    tap_ok(et_keep_match(&k, 200, 200 * MS + 1), "200 at 200ms + 1ns: kept");
    tap_ok(!et_keep_match(&k, 0, 0), "status 0 (none): not kept");
    tap_ok(!et_keep_match(&k, 600, 0), "600: no rule can name it");
    tap_ok(!et_keep_match(&k, 999, 0), "999: not kept");
    tap_ok(!et_keep_match(&k, 65535, 0), "65535: not kept, no overrun");
    tap_ok(!et_keep_match(&k, (unsigned) -1, 0), "UINT_MAX: not kept");
}


static void
test_merge(void)
{
    et_keep_t    k, a, none;
    const char  *why;

    et_keep_init(&none);
    et_keep_init(&a);
    (void) et_keep_parse(&a, (const uint8_t *) "status=404", 10, &why);
    (void) et_keep_parse(&a, (const uint8_t *) "slower=1s", 9, &why);

    et_keep_init(&k);
    ADD("status=5xx");
    ADD("slower=2s");

    et_keep_merge(&k, &a);
    tap_ok(et_keep_match(&k, 404, 0) && et_keep_match(&k, 503, 0)
           && !et_keep_match(&k, 403, 0),
           "merge: the status codes of both");
    tap_ok(k.slower_ns == 1000 * MS && k.nrules == 4,
           "merge: the shorter slower=, the rules of both");

    et_keep_merge(&k, &none);
    tap_ok(k.slower_ns == 1000 * MS && k.nrules == 4,
           "merge: no rules add nothing");

    et_keep_merge(&none, &a);
    tap_ok(none.slower_ns == 1000 * MS && et_keep_match(&none, 404, 0),
           "merge: into no rules");
}


static void
test_names(void)
{
    size_t           i;
    et_str_t         s;
    const et_str_t  *f;

    static const struct {
        unsigned     sampling;
        const char  *name;
        const char  *field;     /* the field's value, RESP; NULL: none */
    } cases[] = {
        { ET_SAMPLING_NONE, "", NULL },
        { ET_SAMPLING_HEAD, "head", "$4\r\nhead\r\n" },
        { ET_SAMPLING_OUTCOME, "outcome", "$7\r\noutcome\r\n" },
        { ET_SAMPLING_LIMITED, "limited", NULL },
        { 99, "", NULL },
    };

    for (i = 0; i < nelts(cases); i++) {
        s = et_sampling_name(cases[i].sampling);
        tap_is_mem(s.data, s.len, cases[i].name, "sampling %u: name \"%s\"",
                   cases[i].sampling, cases[i].name);

        f = et_sampling_field(cases[i].sampling);

        if (cases[i].field == NULL) {
            tap_ok(f == NULL, "sampling %u: no field, not exported",
                   cases[i].sampling);

        } else if (f == NULL) {
            tap_ok(0, "sampling %u: a field", cases[i].sampling);

        } else {
            tap_is_mem(f->data, f->len, cases[i].field,
                       "sampling %u: the field's value, encoded",
                       cases[i].sampling);
        }
    }
}


int
main(void)
{
    test_duration();
    test_parse();
    test_match();
    test_merge();
    test_names();

    return tap_done();
}
