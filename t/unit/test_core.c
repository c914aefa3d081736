/*
 * et_core: OWS trimming and decimal numbers, case by case.
 */

#include "tap.h"
#include "et_core.h"


typedef struct {
    const char  *in;
    int64_t      min;
    int64_t      max;
    int          rc;
    int64_t      value;
} int_case_t;


static const int_case_t  ints[] = {
    { "502", 0, INT64_MAX, ET_OK, 502 },
    { "0", 0, 9, ET_OK, 0 },
    { "007", 0, 9, ET_OK, 7 },
    { "9", 0, 9, ET_OK, 9 },
    { "10", 0, 9, ET_ERROR, 0 },             /* above max */
    { "0", 1, 65535, ET_ERROR, 0 },          /* below min */
    { "65535", 1, 65535, ET_OK, 65535 },
    { "65536", 1, 65535, ET_ERROR, 0 },
    { "", 0, INT64_MAX, ET_ERROR, 0 },
    { "-1", 0, INT64_MAX, ET_ERROR, 0 },
    { "+1", 0, INT64_MAX, ET_ERROR, 0 },
    { " 1", 0, INT64_MAX, ET_ERROR, 0 },
    { "1 ", 0, INT64_MAX, ET_ERROR, 0 },
    { "1e3", 0, INT64_MAX, ET_ERROR, 0 },
    { "9223372036854775807", 0, INT64_MAX, ET_OK, INT64_MAX },
    { "9223372036854775808", 0, INT64_MAX, ET_ERROR, 0 },
    { "18446744073709551616", 0, INT64_MAX, ET_ERROR, 0 },  /* 2^64 */
    { "99999999999999999999999", 0, INT64_MAX, ET_ERROR, 0 },
    { "00000000000000000000001", 0, INT64_MAX, ET_OK, 1 },
    { "5", 3, 2, ET_ERROR, 0 },              /* an empty range */
};


typedef struct {
    const char  *in;
    const char  *out;
} trim_case_t;


static const trim_case_t  trims[] = {
    { "a", "a" },
    { " \ta b\t ", "a b" },
    { "\t\t", "" },
    { "", "" },
    { "\r a", "\r a" },                      /* only spaces and tabs */
};


int
main(void)
{
    int       rc;
    size_t    i;
    int64_t   v;
    et_str_t  s;

    for (i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        v = -1;
        rc = et_parse_int((const uint8_t *) ints[i].in, strlen(ints[i].in),
                          ints[i].min, ints[i].max, &v);
        tap_is_int(rc, ints[i].rc, "int '%s' in [%lld, %lld]", ints[i].in,
                   (long long) ints[i].min, (long long) ints[i].max);

        if (ints[i].rc == ET_OK) {
            tap_is_int(v, ints[i].value, "int '%s': value", ints[i].in);

        } else {
            tap_is_int(v, -1, "int '%s': untouched", ints[i].in);
        }
    }

    for (i = 0; i < sizeof(trims) / sizeof(trims[0]); i++) {
        s = et_str_trim_ows((const uint8_t *) trims[i].in,
                            strlen(trims[i].in));
        tap_is_mem(s.data, s.len, trims[i].out, "trim '%s'", trims[i].in);
    }

    return tap_done();
}
