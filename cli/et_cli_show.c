/*
 * edgetrace show TRACE_ID: the trace's spans, from every service that
 * wrote to the stream, joined by their parent links into an indented tree.
 * Every span of a trace is in one shard of a sharded stream: only that
 * shard is read (docs/stream.md, "Sharded streams").
 */

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "et_cli.h"


static const char  et_cli_show_usage[] =
"Usage: edgetrace [GLOBAL OPTIONS] show TRACE_ID [--since DURATION]\n"
"\n"
"Prints one trace as an indented tree: each span's start offset from the\n"
"start of the trace, duration, status, span id, service, name and kind,\n"
"with its key attributes (method, path or upstream URL, status code,\n"
"upstream peer).  Spans of every service are joined by their parent\n"
"links; spans whose parent is not in the stream are listed as orphans.\n"
"Of a sharded stream (--shards), only the trace's own shard is read.\n"
"A trace with spans an outcome rule kept (edgetrace.sampling=outcome)\n"
"says so: the services behind the edge were told sampled=0, and their\n"
"spans are absent by design.\n"
"\n"
"Options:\n"
"  --since DURATION  how far back to look (default 15m; 0: the whole\n"
"                    stream).  Entry ids are millisecond timestamps, so\n"
"                    this bounds the scan.\n"
"  -h, --help        show this help and exit\n"
"\n"
"Exit status: 0 the trace was found, 1 it was not (or Redis failed),\n"
"2 usage error.\n";


typedef struct {
    et_cli_span_t   span;
    int             parent;       /* index in spans, -1: none found */
    int             printed;
} et_cli_node_t;


#define ET_CLI_BAR  20


typedef struct {
    char            trace_id[33];
    uint64_t        t0;           /* the trace's start */
    uint64_t        total;        /* and its length */
    et_cli_node_t  *nodes;
    size_t          n;
    size_t          size;
    int             page_used;
    redisReply    **pages;
    size_t          npages;
    uint64_t        invalid;
    int             failed;
} et_cli_show_t;


static int
et_cli_show_entry(void *data, const et_cli_span_t *span, et_cli_span_rc_e rc,
    const redisReply *entry)
{
    et_cli_show_t  *sh;
    et_cli_node_t  *nodes;
    et_str_t       *fields;

    (void) entry;

    sh = data;

    if (rc != ET_CLI_SPAN_OK) {
        sh->invalid++;
        return 0;
    }

    if (memcmp(span->trace_id, sh->trace_id, 32) != 0) {
        return 0;
    }

    if (sh->n == sh->size) {
        sh->size = sh->size ? sh->size * 2 : 16;
        nodes = realloc(sh->nodes, sh->size * sizeof(et_cli_node_t));

        if (nodes == NULL) {
            sh->failed = 1;
            return -1;
        }

        sh->nodes = nodes;
    }

    /* the entries' field array is reused: keep a copy of it */
    fields = malloc(span->nfields * sizeof(et_str_t));

    if (fields == NULL) {
        sh->failed = 1;
        return -1;
    }

    memcpy(fields, span->fields, span->nfields * sizeof(et_str_t));

    sh->nodes[sh->n].span = *span;
    sh->nodes[sh->n].span.fields = fields;
    sh->nodes[sh->n].parent = -1;
    sh->nodes[sh->n].printed = 0;
    sh->n++;
    sh->page_used = 1;

    return 0;
}


static void
et_cli_show_keep(void *data, redisReply *page)
{
    et_cli_show_t   *sh;
    redisReply     **pages;

    sh = data;

    if (!sh->page_used) {
        et_cli_reply_free(page);
        return;
    }

    sh->page_used = 0;

    pages = realloc(sh->pages, (sh->npages + 1) * sizeof(redisReply *));

    if (pages == NULL) {
        /* the spans point into it: keep it leaked rather than freed */
        sh->failed = 1;
        return;
    }

    sh->pages = pages;
    sh->pages[sh->npages++] = page;
}


static int
et_cli_show_by_start(const void *a, const void *b)
{
    int                   rc;
    size_t                n;
    const et_cli_node_t  *x = a, *y = b;

    if (x->span.start_ns != y->span.start_ns) {
        return x->span.start_ns < y->span.start_ns ? -1 : 1;
    }

    /* a parent before its children when they start together */
    if (x->span.kind != y->span.kind) {
        return x->span.kind - y->span.kind;
    }

    /*
     * Then by name and span id: qsort() need not keep the order of equal
     * elements (glibc's has not since 2.37), and siblings that start
     * together would be drawn in another order on another libc.
     */
    n = x->span.name.len < y->span.name.len ? x->span.name.len
                                             : y->span.name.len;
    rc = n ? memcmp(x->span.name.data, y->span.name.data, n) : 0;

    if (rc || x->span.name.len != y->span.name.len) {
        return rc ? rc : (x->span.name.len < y->span.name.len ? -1 : 1);
    }

    return strcmp(x->span.span_id, y->span.span_id);
}


/* where the span lies in the trace, on ET_CLI_BAR columns */
static void
et_cli_show_bar(char *bar, uint64_t off, uint64_t dur, uint64_t total)
{
    size_t  from, to;
    double  x;

    if (total == 0) {
        from = 0;
        to = 1;

    } else {
        /* doubles: hand-written times can be far apart */
        from = (size_t) ((double) off / (double) total * ET_CLI_BAR);
        x = (double) (off + dur) / (double) total * ET_CLI_BAR;
        to = (size_t) x;
        to += (double) to < x;
    }

    if (from >= ET_CLI_BAR) {
        from = ET_CLI_BAR - 1;
    }

    if (to > ET_CLI_BAR) {
        to = ET_CLI_BAR;
    }

    if (to <= from) {
        to = from + 1;
    }

    bar[0] = '|';
    memset(bar + 1, ' ', ET_CLI_BAR);
    memset(bar + 1 + from, '=', to - from);
    bar[ET_CLI_BAR + 1] = '|';
    bar[ET_CLI_BAR + 2] = '\0';
}


static void
et_cli_show_line(et_cli_show_t *sh, size_t i, uint64_t t0, const char *indent,
    const char *branch)
{
    char                  off[32], dur[32], bar[ET_CLI_BAR + 3];
    const et_cli_span_t  *s;

    s = &sh->nodes[i].span;

    et_cli_show_bar(bar, s->start_ns - sh->t0, s->end_ns - s->start_ns,
                    sh->total);

    et_cli_duration_ms(off + 1, sizeof(off) - 1, s->start_ns - t0);
    off[0] = '+';
    et_cli_duration_ms(dur, sizeof(dur), s->end_ns - s->start_ns);

    printf("%-12s %-11s %-6s %s  %s  %s%s", off, dur,
           s->error ? "ERROR" : "ok", s->span_id, bar, indent, branch);

    et_cli_print_span(stdout, s);
}


static void
et_cli_show_tree(et_cli_show_t *sh, size_t i, uint64_t t0, char *indent,
    size_t ilen, const char *branch)
{
    size_t  j, last, n;

    sh->nodes[i].printed = 1;
    indent[ilen] = '\0';
    et_cli_show_line(sh, i, t0, indent, branch);

    last = (size_t) -1;

    for (j = 0; j < sh->n; j++) {
        if (sh->nodes[j].parent == (int) i && !sh->nodes[j].printed) {
            last = j;
        }
    }

    if (last == (size_t) -1) {
        return;
    }

    /* children are indented under the branch glyph; deep trees stop
     * growing the indent rather than overflow it */
    n = ilen;

    if (branch[0] != '\0' && ilen + 8 < 256) {
        n = ilen + (size_t) sprintf(indent + ilen, "%s",
                                    strcmp(branch, "\xe2\x94\x94\xe2\x94\x80 ")
                                    == 0 ? "   " : "\xe2\x94\x82  ");
    }

    for (j = 0; j < sh->n; j++) {
        if (sh->nodes[j].parent != (int) i || sh->nodes[j].printed) {
            continue;
        }

        et_cli_show_tree(sh, j, t0, indent, n,
                         j == last ? "\xe2\x94\x94\xe2\x94\x80 "
                                   : "\xe2\x94\x9c\xe2\x94\x80 ");
        indent[n] = '\0';
    }
}


static void
et_cli_show_free(et_cli_show_t *sh)
{
    size_t  i;

    for (i = 0; i < sh->n; i++) {
        free((void *) sh->nodes[i].span.fields);
    }

    for (i = 0; i < sh->npages; i++) {
        et_cli_reply_free(sh->pages[i]);
    }

    free(sh->nodes);
    free(sh->pages);
}


int
et_cli_show(et_cli_t *cli, int argc, char **argv)
{
    int             i, rc, found;
    char            err[512], indent[320], dur[32];
    size_t          j, k, len, nservices, nerrors, norphans, nkept;
    uint64_t        since_ns, since_ms, now_ms, t0, t1;
    const char     *v, *id, *since, *key;
    et_cli_show_t   sh;
    struct timespec ts;

    id = NULL;
    since = "15m";
    since_ns = 15 * 60 * ET_CLI_NS_PER_S;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(et_cli_show_usage, stdout);
            return ET_CLI_EXIT_OK;
        }

        rc = et_cli_opt_value(argc, argv, &i, "--since", &v);

        if (rc < 0) {
            return ET_CLI_EXIT_USAGE;
        }

        if (rc == 1) {
            if (et_cli_opt_duration("--since", v, &since_ns) != ET_OK) {
                return ET_CLI_EXIT_USAGE;
            }

            since = v;
            continue;
        }

        if (argv[i][0] == '-' || id != NULL) {
            et_cli_error("show: unexpected argument \"%s\" "
                         "(see edgetrace show --help)", argv[i]);
            return ET_CLI_EXIT_USAGE;
        }

        id = argv[i];
    }

    if (id == NULL) {
        et_cli_error("show: a trace id is needed "
                     "(see edgetrace show --help)");
        return ET_CLI_EXIT_USAGE;
    }

    memset(&sh, 0, sizeof(et_cli_show_t));

    len = strlen(id);

    for (j = 0; j < len && j < 32; j++) {
        sh.trace_id[j] = (id[j] >= 'A' && id[j] <= 'F') ? id[j] + 32 : id[j];

        if (!((sh.trace_id[j] >= '0' && sh.trace_id[j] <= '9')
              || (sh.trace_id[j] >= 'a' && sh.trace_id[j] <= 'f')))
        {
            break;
        }
    }

    if (len != 32 || j != 32) {
        et_cli_error("show: \"%s\" is not a trace id (32 hex digits)", id);
        return ET_CLI_EXIT_USAGE;
    }

    clock_gettime(CLOCK_REALTIME, &ts);
    now_ms = (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
    since_ms = (since_ns == 0 || since_ns / ET_CLI_NS_PER_MS >= now_ms)
               ? 0 : now_ms - since_ns / ET_CLI_NS_PER_MS;

    if (et_cli_redis_open(cli, 0, err, sizeof(err)) != ET_OK) {
        et_cli_error("%s", err);
        return ET_CLI_EXIT_ERROR;
    }

    key = cli->keys[et_cli_shard_of(cli, sh.trace_id)];

    rc = et_cli_scan(cli, key, since_ms, et_cli_show_entry, &sh,
                     et_cli_show_keep, err, sizeof(err));
    et_cli_redis_close(cli);

    if (rc != ET_OK || sh.failed) {
        et_cli_error("%s", sh.failed ? "out of memory" : err);
        et_cli_show_free(&sh);
        return ET_CLI_EXIT_ERROR;
    }

    if (sh.n == 0) {
        if (since_ms) {
            et_cli_error("trace %s not found in %s: no span of it in the "
                         "last %s (a longer --since looks further back)",
                         sh.trace_id, key, since);

        } else {
            et_cli_error("trace %s not found in %s", sh.trace_id, key);
        }

        et_cli_show_free(&sh);
        return ET_CLI_EXIT_ERROR;
    }

    qsort(sh.nodes, sh.n, sizeof(et_cli_node_t), et_cli_show_by_start);

    t0 = sh.nodes[0].span.start_ns;
    t1 = t0;
    nerrors = 0;
    nservices = 0;
    nkept = 0;

    for (j = 0; j < sh.n; j++) {
        if (sh.nodes[j].span.end_ns > t1) {
            t1 = sh.nodes[j].span.end_ns;
        }

        nerrors += sh.nodes[j].span.error;
        nkept += et_cli_span_outcome(&sh.nodes[j].span);

        found = 0;

        for (k = 0; k < j; k++) {
            if (sh.nodes[k].span.service.len == sh.nodes[j].span.service.len
                && memcmp(sh.nodes[k].span.service.data,
                          sh.nodes[j].span.service.data,
                          sh.nodes[j].span.service.len) == 0)
            {
                found = 1;
                break;
            }
        }

        nservices += !found;

        if (sh.nodes[j].span.parent_id[0] == '\0') {
            continue;
        }

        for (k = 0; k < sh.n; k++) {
            if (k != j && strcmp(sh.nodes[k].span.span_id,
                                 sh.nodes[j].span.parent_id) == 0)
            {
                sh.nodes[j].parent = (int) k;
                break;
            }
        }
    }

    printf("trace %s: %zu span%s, %zu service%s, %zu error%s, %s\n",
           sh.trace_id, sh.n, sh.n == 1 ? "" : "s",
           nservices, nservices == 1 ? "" : "s",
           nerrors, nerrors == 1 ? "" : "s",
           et_cli_duration_ms(dur, sizeof(dur), t1 - t0));

    /* docs/stream.md: the trace of a request kept by outcome is partial */
    if (nkept) {
        printf("kept by outcome: downstream spans absent (%zu span%s kept "
               "by an outcome rule; the services %s called were told "
               "sampled=0)\n", nkept, nkept == 1 ? "" : "s",
               nkept == 1 ? "it" : "they");
    }

    printf("\n");

    sh.t0 = t0;
    sh.total = t1 - t0;

    printf("%-12s %-11s %-6s %-16s  %-*s  %s\n", "OFFSET", "DURATION",
           "STATUS", "SPAN ID", ET_CLI_BAR + 2, "WATERFALL",
           "SERVICE: NAME [KIND] ATTRIBUTES");

    norphans = 0;

    for (j = 0; j < sh.n; j++) {
        if (sh.nodes[j].span.parent_id[0] == '\0' && !sh.nodes[j].printed) {
            et_cli_show_tree(&sh, j, t0, indent, 0, "");

        } else if (sh.nodes[j].parent < 0) {
            norphans++;
        }
    }

    if (norphans) {
        printf("\norphans: spans whose parent is not in the stream\n");

        for (j = 0; j < sh.n; j++) {
            if (sh.nodes[j].span.parent_id[0] != '\0'
                && sh.nodes[j].parent < 0 && !sh.nodes[j].printed)
            {
                printf("parent %s:\n", sh.nodes[j].span.parent_id);
                et_cli_show_tree(&sh, j, t0, indent, 0, "");
            }
        }
    }

    /* a cycle of parent links (hand-written entries) leaves spans unseen */
    for (j = 0; j < sh.n; j++) {
        if (!sh.nodes[j].printed) {
            printf("\nnot reachable from a root (a loop of parent ids):\n");

            for (k = j; k < sh.n; k++) {
                if (!sh.nodes[k].printed) {
                    sh.nodes[k].printed = 1;
                    et_cli_show_line(&sh, k, t0, "", "");
                }
            }

            break;
        }
    }

    if (sh.invalid) {
        fflush(stdout);
        et_cli_error("skipped %llu %s", (unsigned long long) sh.invalid,
                     sh.invalid == 1 ? "entry that is not an edgetrace span"
                                     : "entries that are not edgetrace spans");
    }

    et_cli_show_free(&sh);

    return ET_CLI_EXIT_OK;
}
