/*
 * Unit tests: cli/et_cli_serve_query.c, the query parameters of
 * edgetrace serve's API (docs/serve.md): each query string, the parser's
 * result and its reason, side by side.
 */

#include <stdlib.h>
#include <string.h>

#include "et_cli_serve.h"
#include "tap.h"


#define nelts(a)  (sizeof(a) / sizeof((a)[0]))

#define NOW  1765000000000000ULL     /* us */
#define DAY  (24ULL * 3600 * 1000000)


enum { TRACES, SEARCH, DEPS, RED };


/* "k=v&k=v", %XX decoded, into "a" (whose strings live in "buf") */
static void
args_of(const char *qs, et_serve_args_t *a, char *buf)
{
    char    *p, *kv, *eq, *save;
    size_t   i, n;

    memset(a, 0, sizeof(et_serve_args_t));
    strcpy(buf, qs);

    for (kv = strtok_r(buf, "&", &save); kv; kv = strtok_r(NULL, "&", &save))
    {
        if (a->n == ET_SERVE_ARGS_MAX) {
            a->overflow = 1;
            break;
        }

        eq = strchr(kv, '=');

        if (eq) {
            *eq++ = '\0';
        }

        p = eq ? eq : kv + strlen(kv);

        for (i = 0, n = 0; p[i]; i++) {
            if (p[i] == '%' && p[i + 1] && p[i + 2]) {
                char  hex[3] = { p[i + 1], p[i + 2], 0 };

                p[n++] = (char) strtol(hex, NULL, 16);
                i += 2;

            } else {
                p[n++] = p[i];
            }
        }

        a->arg[a->n].key = kv;
        a->arg[a->n].value = (const uint8_t *) p;
        a->arg[a->n].len = n;
        a->n++;
    }
}


static int
run(int which, const char *qs, et_serve_query_t *q, char *err, size_t size)
{
    int              rc;
    static char      buf[65536];
    et_serve_args_t  a;

    args_of(qs, &a, buf);
    err[0] = '\0';

    switch (which) {
    case TRACES:
        rc = et_serve_traces_parse(&a, NOW, q, err, size);
        break;
    case SEARCH:
        rc = et_serve_search_parse(&a, NOW, q, err, size);
        break;
    default:
        rc = which == RED ? et_serve_red_parse(&a, NOW, q, err, size)
                          : et_serve_deps_parse(&a, NOW, q, err, size);
    }

    return rc;
}


int
main(void)
{
    int               rc;
    char              err[512], id[33], *big;
    size_t            i;
    et_serve_query_t  q;

    static const struct {
        int          which;
        const char  *qs;
        int          rc;
        const char  *err;     /* a part of the reason */
    } cases[] = {
        { TRACES, "service=edge", ET_OK, "" },
        { TRACES, "service=edge&operation=GET&limit=20&start=1&end=2"
                  "&minDuration=1ms&maxDuration=1.5s", ET_OK, "" },
        { TRACES, "", ET_ERROR, "'service' is required" },
        { TRACES, "service=", ET_ERROR, "'service' is required" },
        { TRACES, "service=edge&limit=abc", ET_ERROR, "param 'limit'" },
        { TRACES, "service=edge&limit=-1", ET_ERROR, "param 'limit'" },
        { TRACES, "service=edge&limit=", ET_ERROR, "param 'limit'" },
        { TRACES, "service=edge&limit=99999999999999999999", ET_ERROR,
          "param 'limit'" },
        { TRACES, "service=edge&start=1e6", ET_ERROR, "param 'start'" },
        { TRACES, "service=edge&end=%00", ET_ERROR, "param 'end'" },
        { TRACES, "service=edge&start=5&end=4", ET_ERROR,
          "'start' is after 'end'" },
        { TRACES, "service=edge&minDuration=fast", ET_ERROR,
          "param 'minDuration'" },
        { TRACES, "service=edge&maxDuration=1ms%00s", ET_ERROR,
          "param 'maxDuration'" },
        { TRACES, "service=edge&minDuration=2s&maxDuration=1s", ET_ERROR,
          "'maxDuration' should be greater" },
        { TRACES, "service=edge&tag=http.response.status_code:500", ET_OK,
          "" },
        { TRACES, "service=edge&tag=nocolon", ET_ERROR,
          "malformed 'tag'" },
        { TRACES, "service=edge&tag=:v", ET_ERROR, "an empty key" },
        { TRACES, "service=edge&tags=%7B%22a%22%3A%22b%22%7D", ET_OK, "" },
        { TRACES, "service=edge&tags=%7B%22a%22%3A1%7D", ET_ERROR,
          "must be a string" },
        { TRACES, "service=edge&tags=%5B%5D", ET_ERROR,
          "a JSON object of strings" },
        { TRACES, "service=edge&tags=%7B", ET_ERROR,
          "a JSON object of strings" },
        { TRACES, "service=edge&tags=%7B%22a%22%3A%22b%22%2C%22a%22%3A"
                  "%22c%22%7D", ET_ERROR, "a JSON object of strings" },
        { TRACES, "service=edge&tags=%7B%7D&tags=%7B%7D", ET_ERROR,
          "'tags' given twice" },
        { SEARCH, "q=GET", ET_OK, "" },
        { SEARCH, "", ET_ERROR, "'q' is required" },
        { SEARCH, "q=%20%20", ET_ERROR, "has no word" },
        { SEARCH, "q=a%00b", ET_ERROR, "NUL" },
        { SEARCH, "q=x&limit=x", ET_ERROR, "param 'limit'" },
        { DEPS, "", ET_OK, "" },
        { DEPS, "endTs=1765000000000&lookback=604800000", ET_OK, "" },
        { DEPS, "endTs=abc", ET_ERROR, "param 'endTs'" },
        { DEPS, "lookback=-5", ET_ERROR, "param 'lookback'" },
        { DEPS, "endTs=9999999999999999999", ET_ERROR, "out of range" },
        { RED, "", ET_OK, "" },
        { RED, "step=1000", ET_ERROR, "whole number of minutes" },
        { RED, "step=0", ET_ERROR, "whole number of minutes" },
        { RED, "lookback=604800000", ET_ERROR, "more than 1440 points" },
        { RED, "lookback=604800000&step=600000", ET_OK, "" },
    };

    for (i = 0; i < nelts(cases); i++) {
        rc = run(cases[i].which, cases[i].qs, &q, err, sizeof(err));
        tap_is_int(rc, cases[i].rc, "\"%s\": %s", cases[i].qs,
                   cases[i].rc == ET_OK ? "parsed" : "refused");
        tap_ok(strstr(err, cases[i].err) != NULL, "\"%s\": reason \"%s\"",
                   cases[i].qs, err);
        et_serve_query_free(&q);
    }

    /* what the parsers give */
    run(TRACES, "service=edge", &q, err, sizeof(err));
    tap_is_int(q.limit, ET_SERVE_LIMIT, "limit: Jaeger's default of 100");
    tap_ok(q.end_us == NOW && q.start_us == NOW - 2 * DAY,
           "start and end: the last two days, as Jaeger");
    et_serve_query_free(&q);

    run(TRACES, "service=edge&limit=100000000&minDuration=1.5ms"
        "&maxDuration=2s&start=10&end=20", &q, err, sizeof(err));
    tap_is_int(q.limit, ET_SERVE_LIMIT_MAX, "a huge limit is lowered");
    tap_is_int(q.min_us, 1500, "minDuration in us");
    tap_is_int(q.max_us, 2000000, "maxDuration in us");
    tap_ok(q.start_us == 10 && q.end_us == 20, "start and end in us");
    et_serve_query_free(&q);

    /* Go's spellings of microseconds, as Grafana passes them on */
    run(TRACES, "service=edge&minDuration=500%C2%B5s&maxDuration=1m2.5%CE%BCs",
        &q, err, sizeof(err));
    tap_is_int(q.min_us, 500, "minDuration=500\u00b5s (micro sign)");
    tap_is_int(q.max_us, 60000002, "maxDuration=1m2.5\u03bcs (mu)");
    et_serve_query_free(&q);

    tap_is_int(run(TRACES, "service=edge&minDuration=5%C2%B5", &q, err,
                   sizeof(err)), ET_ERROR, "\u00b5 without the s: refused");
    et_serve_query_free(&q);

    run(TRACES, "service=e&tag=url.path:/a:b&tags=%7B%22k%22%3A%22v%22%7D",
        &q, err, sizeof(err));
    tap_is_int(q.ntags, 2, "tag and tags together");
    tap_is_mem(q.tag_key[0].data, q.tag_key[0].len, "url.path",
               "tag: the key before the first colon");
    tap_is_mem(q.tag_value[0].data, q.tag_value[0].len, "/a:b",
               "tag: the value after it");
    tap_is_mem(q.tag_value[1].data, q.tag_value[1].len, "v", "tags: value");
    et_serve_query_free(&q);

    run(SEARCH, "q=a%22b%20%20c%20*%20OR%20NEAR(x)", &q, err, sizeof(err));
    tap_ok(q.match && strcmp(q.match, "\"a\"\"b\" \"c\" \"*\" \"OR\" "
                                      "\"NEAR(x)\"") == 0,
           "q: each word a quoted FTS5 phrase, quotes doubled (%s)",
           q.match ? q.match : "NULL");
    et_serve_query_free(&q);

    run(DEPS, "endTs=1000&lookback=5000", &q, err, sizeof(err));
    tap_ok(q.start_us == 0 && q.end_us == 1000000,
           "a lookback past 1970 starts at 0");
    et_serve_query_free(&q);

    /* more parameters than the request may have, or a long one */
    big = malloc(ET_SERVE_ARG_MAX + 64);
    strcpy(big, "service=edge&operation=");
    memset(big + strlen(big), 'x', ET_SERVE_ARG_MAX + 1);
    big[23 + ET_SERVE_ARG_MAX + 1] = '\0';
    rc = run(TRACES, big, &q, err, sizeof(err));
    tap_ok(rc == ET_ERROR && strstr(err, "longer than 4096"),
           "a parameter longer than 4096 bytes: %s", err);
    et_serve_query_free(&q);

    big[0] = '\0';

    for (i = 0; i < ET_SERVE_ARGS_MAX + 1; i++) {
        strcat(big, "a=1&");
    }

    strcat(big, "service=x");
    rc = run(TRACES, big, &q, err, sizeof(err));
    tap_ok(rc == ET_ERROR && strstr(err, "more than 64"),
           "more than 64 parameters: %s", err);
    et_serve_query_free(&q);
    free(big);

    /* ids, as Jaeger takes them */
    tap_ok(et_serve_hex_id((const uint8_t *) "4BF92F3577B34DA6A3CE929D0E0E4736",
                           32, id, 32) == ET_OK
           && strcmp(id, "4bf92f3577b34da6a3ce929d0e0e4736") == 0,
           "trace id: uppercase taken, lowercased");
    tap_ok(et_serve_hex_id((const uint8_t *) "a3ce929d0e0e4736", 16, id, 32)
           == ET_OK && strcmp(id, "0000000000000000a3ce929d0e0e4736") == 0,
           "trace id: 64 bits padded in front");
    tap_ok(et_serve_hex_id((const uint8_t *) "000", 3, id, 32) == ET_ERROR,
           "trace id: all zero refused");
    tap_ok(et_serve_hex_id((const uint8_t *) "xyz", 3, id, 32) == ET_ERROR,
           "trace id: not hex refused");
    tap_ok(et_serve_hex_id((const uint8_t *) "", 0, id, 32) == ET_ERROR,
           "trace id: empty refused");
    tap_ok(et_serve_hex_id((const uint8_t *) "11111111111111111111111111111"
                           "11111", 34, id, 32) == ET_ERROR,
           "trace id: 34 digits refused");
    tap_ok(et_serve_hex_id((const uint8_t *) "12\0004", 4, id, 16)
           == ET_ERROR, "span id: a NUL refused");

    /* the histogram's buckets */
    tap_is_int(et_serve_bucket(0), 0, "bucket: 0us");
    tap_is_int(et_serve_bucket(1000), 0, "bucket: 1ms is the first");
    tap_is_int(et_serve_bucket(1001), 1, "bucket: above 1ms, the second");
    tap_is_int(et_serve_bucket(UINT64_MAX), ET_SERVE_BUCKETS - 1,
               "bucket: the last has no bound");

    return tap_done();
}
