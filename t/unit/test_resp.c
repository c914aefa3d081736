/*
 * et_resp: counting Redis replies, fed whole, byte by byte and in every
 * two-piece split.
 */

#include <stdlib.h>

#include "tap.h"
#include "et_resp.h"


typedef struct {
    const char  *name;
    const char  *in;
    size_t       len;         /* 0: strlen(in) */
    int          rc;
    uint64_t     ok;
    uint64_t     errors;
    const char  *error;       /* the last error text, or NULL */
} resp_case_t;


static const resp_case_t  cases[] = {
    { "one entry id", "$15\r\n1700000000000-0\r\n", 0, ET_OK, 1, 0, NULL },
    { "three ids", "$3\r\n1-0\r\n$3\r\n2-0\r\n$4\r\n10-0\r\n", 0, ET_OK, 3, 0,
      NULL },
    { "an error", "-WRONGTYPE Operation against a key\r\n", 0, ET_OK, 0, 1,
      "WRONGTYPE Operation against a key" },
    { "ids and errors mixed", "$3\r\n1-0\r\n-ERR x\r\n$3\r\n2-0\r\n-ERR y\r\n",
      0, ET_OK, 2, 2, "ERR y" },
    { "status and integer", "+OK\r\n:12\r\n", 0, ET_OK, 2, 0, NULL },
    { "nil", "$-1\r\n", 0, ET_OK, 1, 0, NULL },
    { "empty bulk", "$0\r\n\r\n", 0, ET_OK, 1, 0, NULL },
    { "binary bulk", "$4\r\n\r\n\0\n\r\n", 10, ET_OK, 1, 0, NULL },
    { "incomplete bulk", "$15\r\n1700000", 0, ET_OK, 0, 0, NULL },
    { "incomplete error", "-ERR not yet", 0, ET_OK, 0, 0, NULL },
    { "nothing", "", 0, ET_OK, 0, 0, NULL },
    { "an array", "*1\r\n$1\r\na\r\n", 0, ET_ERROR, 0, 0, NULL },
    { "garbage", "hello\r\n", 0, ET_ERROR, 0, 0, NULL },
    { "a length that is not a number", "$1x\r\na\r\n", 0, ET_ERROR, 0, 0,
      NULL },
    { "a length without digits", "$\r\n", 0, ET_ERROR, 0, 0, NULL },
    { "nil other than -1", "$-2\r\n", 0, ET_ERROR, 0, 0, NULL },
    { "two signs", "$--1\r\n", 0, ET_ERROR, 0, 0, NULL },
    { "a huge length", "$99999999999\r\n", 0, ET_ERROR, 0, 0, NULL },
    { "a bulk without its CRLF", "$1\r\naXY", 0, ET_ERROR, 0, 0, NULL },
    { "a length without LF", "$1\rx", 0, ET_ERROR, 0, 0, NULL },
    { "good then garbage", "$3\r\n1-0\r\n!", 0, ET_ERROR, 1, 0, NULL },
    { "a long error is cut",
      "-ERR aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
      0, ET_OK, 0, 1,
      "ERR aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" },
    { "an error without CR", "-ERR lf only\n", 0, ET_OK, 0, 1,
      "ERR lf only" },
    { "ids around a status", "$3\r\n1-0\r\n+OK\r\n$3\r\n2-0\r\n", 0,
      ET_OK, 3, 0, NULL },
    { "ids then an incomplete id", "$3\r\n1-0\r\n$3\r\n2-0\r\n$3\r\n3-",
      0, ET_OK, 2, 0, NULL },
    { "a length with leading zeros", "$003\r\n1-0\r\n", 0, ET_OK, 1, 0,
      NULL },
    { "a nine-digit length, incomplete", "$100000000\r\nabc", 0, ET_OK, 0,
      0, NULL },
    { "an id longer than its length", "$2\r\n1-0\r\n", 0, ET_ERROR, 0, 0,
      NULL },
    { "an id shorter than its length", "$4\r\n1-0\r\n$3\r\n2-0\r\n", 0,
      ET_ERROR, 0, 0, NULL },
    { "an id with LF only", "$3\r\n1-0\n$3\r\n2-0\r\n", 0, ET_ERROR, 0, 0,
      NULL },
    { "a length with CR only", "$3\r1-0\r\n", 0, ET_ERROR, 0, 0, NULL },
    { "ids then a lone dollar", "$3\r\n1-0\r\n$3\r\n2-0\r\n$", 0, ET_OK, 2, 0,
      NULL },
};


/* feeds "in" in pieces: whole (step 0), a byte at a time (1), or split */
static int
feed(const resp_case_t *c, size_t len, size_t step, size_t split,
    et_resp_t *rs, uint64_t *ok, uint64_t *errors)
{
    int      rc;
    size_t   off, k;
    uint8_t *copy;

    /* an exact-size copy, so a read past the end shows under valgrind */
    copy = malloc(len ? len : 1);
    memcpy(copy, c->in, len);

    et_resp_init(rs);
    *ok = 0;
    *errors = 0;
    rc = ET_OK;

    for (off = 0; off < len && rc == ET_OK; off += k) {
        k = len - off;

        if (step) {
            k = step;
        } else if (split && off == 0) {
            k = split;
        }

        if (k > len - off) {
            k = len - off;
        }

        rc = et_resp_scan(rs, copy + off, k, ok, errors);
    }

    if (len == 0) {
        rc = et_resp_scan(rs, copy, 0, ok, errors);
    }

    free(copy);

    return rc;
}


int
main(void)
{
    int        rc, good;
    size_t     i, len, split;
    uint64_t   ok, errors;
    et_resp_t  rs;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        len = cases[i].len ? cases[i].len : strlen(cases[i].in);

        rc = feed(&cases[i], len, 0, 0, &rs, &ok, &errors);
        tap_is_int(rc, cases[i].rc, "%s: result, whole", cases[i].name);
        tap_is_int(ok, cases[i].ok, "%s: successes, whole", cases[i].name);
        tap_is_int(errors, cases[i].errors, "%s: errors, whole",
                   cases[i].name);

        if (cases[i].error) {
            tap_is_mem(rs.error, strlen(rs.error), cases[i].error,
                       "%s: error text", cases[i].name);
        }

        rc = feed(&cases[i], len, 1, 0, &rs, &ok, &errors);
        tap_ok(rc == cases[i].rc && ok == cases[i].ok
               && errors == cases[i].errors,
               "%s: the same byte by byte", cases[i].name);

        good = 1;

        for (split = 1; split < len; split++) {
            rc = feed(&cases[i], len, 0, split, &rs, &ok, &errors);

            if (rc != cases[i].rc || ok != cases[i].ok
                || errors != cases[i].errors)
            {
                good = 0;
                printf("# split at %zu differs\n", split);
            }
        }

        tap_ok(good, "%s: the same at every split", cases[i].name);
    }

    return tap_done();
}
