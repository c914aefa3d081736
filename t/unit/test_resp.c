/*
 * et_resp: counting Redis replies, fed whole, byte by byte and in every
 * two-piece split.
 */

#include <stdlib.h>

#include "tap.h"
#include "et_resp.h"


/* 66 bytes, to build errors longer than ET_RESP_ERROR_MAX */
#define A66                                                                   \
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"


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
      "-ERR " A66 A66 A66 A66 A66 "\r\n",
      0, ET_OK, 0, 1, "ERR " A66 A66 A66 A66 "aaaaaaaaaaaaaaaaaaa" },
    { "a MOVED naming a host of 255 bytes is whole",
      "-MOVED 16383 " A66 A66 A66
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:65535\r\n",
      0, ET_OK, 0, 1,
      "MOVED 16383 " A66 A66 A66
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:65535" },
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


/*
 * Scans a piece with et_resp_scan(), or ("stop") with et_resp_scan_error()
 * again and again: that one must stop right after each error, only there,
 * and come to the same counts.  -100: it did not.
 */
static int
scan(et_resp_t *rs, const uint8_t *p, size_t n, int stop, uint64_t *ok,
    uint64_t *errors)
{
    int       rc;
    size_t    used;
    uint64_t  e;

    if (!stop) {
        return et_resp_scan(rs, p, n, ok, errors);
    }

    do {
        e = 0;
        rc = et_resp_scan_error(rs, p, n, &used, ok, &e);

        if (rc != ET_OK) {
            return rc;
        }

        if (used > n || e > 1 || (e == 0 && used != n)
            || (e == 1 && (rs->error_len == 0 || p[used - 1] != '\n')))
        {
            return -100;
        }

        *errors += e;
        p += used;
        n -= used;
    } while (n);

    return ET_OK;
}


/* feeds "in" in pieces: whole (step 0), a byte at a time (1), or split */
static int
feed(const resp_case_t *c, size_t len, size_t step, size_t split, int stop,
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

        rc = scan(rs, copy + off, k, stop, ok, errors);
    }

    if (len == 0) {
        rc = scan(rs, copy, 0, stop, ok, errors);
    }

    free(copy);

    return rc;
}


int
main(void)
{
    int        rc, good, stop;
    size_t     i, len, split, used;
    uint64_t   ok, errors;
    et_resp_t  rs;
    const char *in;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        len = cases[i].len ? cases[i].len : strlen(cases[i].in);

        rc = feed(&cases[i], len, 0, 0, 0, &rs, &ok, &errors);
        tap_is_int(rc, cases[i].rc, "%s: result, whole", cases[i].name);
        tap_is_int(ok, cases[i].ok, "%s: successes, whole", cases[i].name);
        tap_is_int(errors, cases[i].errors, "%s: errors, whole",
                   cases[i].name);

        if (cases[i].error) {
            tap_is_mem(rs.error, strlen(rs.error), cases[i].error,
                       "%s: error text", cases[i].name);
        }

        rc = feed(&cases[i], len, 1, 0, 0, &rs, &ok, &errors);
        tap_ok(rc == cases[i].rc && ok == cases[i].ok
               && errors == cases[i].errors,
               "%s: the same byte by byte", cases[i].name);

        for (stop = 0; stop < 2; stop++) {
            good = 1;

            for (split = !stop; split < len; split++) {
                rc = feed(&cases[i], len, 0, split, stop, &rs, &ok, &errors);

                if (rc != cases[i].rc || ok != cases[i].ok
                    || errors != cases[i].errors)
                {
                    good = 0;
                    printf("# split at %zu differs\n", split);
                }
            }

            tap_ok(good, "%s: the same at every split%s", cases[i].name,
                   stop ? ", stopping at each error" : "");
        }
    }

    /* stopped at an error, its text is there before the next reply's */
    in = "$3\r\n1-0\r\n-ASK 7 h:1\r\n-MOVED 8 h:2\r\n$3\r\n2-0\r\n";
    len = strlen(in);
    et_resp_init(&rs);
    ok = 0;
    errors = 0;
    rc = et_resp_scan_error(&rs, (const uint8_t *) in, len, &used, &ok,
                            &errors);
    tap_ok(rc == ET_OK && ok == 1 && errors == 1 && used == 21
           && strcmp(rs.error, "ASK 7 h:1") == 0,
           "scan_error: an id, then stopped after the first error");

    rc = et_resp_scan_error(&rs, (const uint8_t *) in + 21, len - 21, &used,
                            &ok, &errors);
    tap_ok(rc == ET_OK && ok == 1 && errors == 2 && used == 14
           && strcmp(rs.error, "MOVED 8 h:2") == 0,
           "scan_error: then after the second");

    rc = et_resp_scan_error(&rs, (const uint8_t *) in + 35, len - 35, &used,
                            &ok, &errors);
    tap_ok(rc == ET_OK && ok == 2 && errors == 2 && used == 9,
           "scan_error: then to the end");

    return tap_done();
}
