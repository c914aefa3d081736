/*
 * libFuzzer: the query parameters of edgetrace serve's API, as
 * libmicrohttpd hands them over (any bytes, NULs included).  The input
 * is split at '&' into parameters and at the first '=' into key and
 * value; every parser must give a query or a reason, and a reason that
 * is a NUL-terminated string; the FTS5 query of a keyword must be quoted
 * phrases only.
 */

#include <stdlib.h>
#include <string.h>

#include "et_cli_serve.h"


static void
et_fuzz_check(int rc, et_serve_query_t *q, const char *err)
{
    size_t  i, n;
    int     quoted;

    if (rc != ET_OK && (err[0] == '\0' || strlen(err) >= 512)) {
        abort();
    }

    if (rc == ET_OK && q->match != NULL) {
        /* every byte inside a phrase, or a space between two */
        n = strlen(q->match);
        quoted = 0;

        for (i = 0; i < n; i++) {
            if (q->match[i] == '"') {
                if (quoted && i + 1 < n && q->match[i + 1] == '"') {
                    i++;
                    continue;
                }

                quoted = !quoted;
                continue;
            }

            if (!quoted && q->match[i] != ' ') {
                abort();
            }
        }

        if (quoted) {
            abort();
        }
    }

    if (rc == ET_OK && (q->limit > ET_SERVE_LIMIT_MAX
                        || q->start_us > q->end_us))
    {
        abort();
    }

    et_serve_query_free(q);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char              err[512], id[33];
    char             *buf, *keys;
    size_t            i, start, eq;
    et_serve_args_t   a;
    et_serve_query_t  q;

    /* the keys NUL-terminated, as libmicrohttpd gives them */
    buf = malloc(size + 1);
    keys = malloc(size + 1);

    if (buf == NULL || keys == NULL) {
        free(buf);
        free(keys);
        return 0;
    }

    memcpy(buf, data, size);
    memset(&a, 0, sizeof(a));
    start = 0;

    for (i = 0; i <= size; i++) {
        if (i < size && data[i] != '&') {
            continue;
        }

        if (a.n == ET_SERVE_ARGS_MAX) {
            a.overflow = 1;
            break;
        }

        for (eq = start; eq < i && data[eq] != '='; eq++) {
            /* void */
        }

        memcpy(keys + start, data + start, eq - start);
        keys[eq] = '\0';
        a.arg[a.n].key = keys + start;
        a.arg[a.n].value = (const uint8_t *) buf + (eq < i ? eq + 1 : i);
        a.arg[a.n].len = eq < i ? i - eq - 1 : 0;
        a.n++;
        start = i + 1;
    }

    err[0] = '\0';
    et_fuzz_check(et_serve_traces_parse(&a, 1765000000000000ULL, &q, err,
                                        sizeof(err)), &q, err);
    err[0] = '\0';
    et_fuzz_check(et_serve_search_parse(&a, 1765000000000000ULL, &q, err,
                                        sizeof(err)), &q, err);
    err[0] = '\0';
    et_fuzz_check(et_serve_deps_parse(&a, 1765000000000000ULL, &q, err,
                                      sizeof(err)), &q, err);
    err[0] = '\0';
    et_fuzz_check(et_serve_red_parse(&a, 1765000000000000ULL, &q, err,
                                     sizeof(err)), &q, err);

    if (et_serve_hex_id(data, size, id, 32) == ET_OK && strlen(id) != 32) {
        abort();
    }

    free(buf);
    free(keys);

    return 0;
}
