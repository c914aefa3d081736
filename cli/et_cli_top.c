/*
 * edgetrace top: the stream's recent spans summed up per service, kind and
 * span name: throughput, errors, latency percentiles and the slowest
 * traces, from the raw spans; of a sharded stream, summed over its shards
 * (docs/cli.md, "top").
 */

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "et_cli.h"


static const char  et_cli_top_usage[] =
"Usage: edgetrace [GLOBAL OPTIONS] top [--since DURATION] [--slowest N]\n"
"                                       [--sampling head|outcome]\n"
"\n"
"Sums up the spans of the last DURATION per service, kind and span name:\n"
"how many, the rate per second over the window, the share of errors,\n"
"the 50th, 95th and 99th percentile durations (nearest rank), and the\n"
"ids of the slowest traces, to hand to 'edgetrace show'.  Busiest first.\n"
"When the stream's first entry is younger than the window (a new or a\n"
"trimmed stream), the rates are over the time since that entry.  A\n"
"sharded stream (--shards) is summed over its shards; its first entry is\n"
"the youngest of the shards' first entries.\n"
"\n"
"Options:\n"
"  --since DURATION  the window (default 15m; 0: the whole stream, the\n"
"                    rate then over the time since its first entry)\n"
"  --slowest N       slowest traces listed per line (default 3, 0: none)\n"
"  --sampling HOW    only the spans head-sampled (head: the sampled share\n"
"                    of all traffic) or kept by an outcome rule (outcome:\n"
"                    errors and slow requests head sampling missed)\n"
"  -h, --help        show this help and exit\n";


#define ET_CLI_TOP_SLOWEST_MAX  20
#define ET_CLI_TOP_BUCKETS      1024


typedef struct {
    uint64_t    ns;
    char        trace_id[33];
} et_cli_slow_t;


typedef struct et_cli_group_s  et_cli_group_t;

struct et_cli_group_s {
    et_cli_group_t  *next;
    uint64_t         hash;
    char            *service;
    size_t           service_len;
    char            *name;
    size_t           name_len;
    int              kind;
    uint64_t        *durations;
    size_t           n;
    size_t           size;
    uint64_t         errors;
    et_cli_slow_t    slow[ET_CLI_TOP_SLOWEST_MAX];
    size_t           nslow;
};


typedef struct {
    et_cli_group_t  *buckets[ET_CLI_TOP_BUCKETS];
    size_t           ngroups;
    size_t           nslowest;
    int              sampling;     /* -1: all; 0: head; 1: outcome */
    uint64_t         spans;
    uint64_t         invalid;
    int              failed;
} et_cli_top_t;


static uint64_t
et_cli_fnv(uint64_t h, const uint8_t *p, size_t len)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }

    return h;
}


static et_cli_group_t *
et_cli_top_group(et_cli_top_t *top, const et_cli_span_t *s)
{
    uint64_t         h;
    uint8_t          k;
    et_cli_group_t  *g;

    k = (uint8_t) s->kind;
    h = et_cli_fnv(14695981039346656037ULL, s->service.data, s->service.len);
    h = et_cli_fnv(h, &k, 1);
    h = et_cli_fnv(h, s->name.data, s->name.len);

    for (g = top->buckets[h % ET_CLI_TOP_BUCKETS]; g; g = g->next) {
        if (g->hash == h && g->kind == s->kind
            && g->service_len == s->service.len
            && g->name_len == s->name.len
            && memcmp(g->service, s->service.data, s->service.len) == 0
            && memcmp(g->name, s->name.data, s->name.len) == 0)
        {
            return g;
        }
    }

    g = calloc(1, sizeof(et_cli_group_t));

    if (g == NULL) {
        return NULL;
    }

    g->service = malloc(s->service.len + s->name.len + 1);

    if (g->service == NULL) {
        free(g);
        return NULL;
    }

    memcpy(g->service, s->service.data, s->service.len);
    g->service_len = s->service.len;
    g->name = g->service + s->service.len;
    memcpy(g->name, s->name.data, s->name.len);
    g->name_len = s->name.len;
    g->kind = s->kind;
    g->hash = h;
    g->next = top->buckets[h % ET_CLI_TOP_BUCKETS];
    top->buckets[h % ET_CLI_TOP_BUCKETS] = g;
    top->ngroups++;

    return g;
}


static int
et_cli_top_entry(void *data, const et_cli_span_t *s, et_cli_span_rc_e rc,
    const redisReply *entry)
{
    size_t           i, j, size;
    uint64_t         d, *durations;
    et_cli_top_t    *top;
    et_cli_group_t  *g;

    (void) entry;

    top = data;

    if (rc != ET_CLI_SPAN_OK) {
        top->invalid++;
        return 0;
    }

    if (top->sampling >= 0 && et_cli_span_outcome(s) != top->sampling) {
        return 0;
    }

    top->spans++;

    g = et_cli_top_group(top, s);

    if (g == NULL) {
        top->failed = 1;
        return -1;
    }

    if (g->n == g->size) {
        size = g->size ? g->size * 2 : 64;
        durations = realloc(g->durations, size * sizeof(uint64_t));

        if (durations == NULL) {
            top->failed = 1;
            return -1;
        }

        g->durations = durations;
        g->size = size;
    }

    d = s->end_ns - s->start_ns;
    g->durations[g->n++] = d;
    g->errors += s->error;

    /* the slowest traces, slowest first; a trace appears once */
    for (i = 0; i < g->nslow; i++) {
        if (strcmp(g->slow[i].trace_id, s->trace_id) == 0) {
            break;
        }
    }

    if (i < g->nslow) {
        if (g->slow[i].ns >= d) {
            return 0;
        }

        memmove(&g->slow[i], &g->slow[i + 1],
                (g->nslow - i - 1) * sizeof(et_cli_slow_t));
        g->nslow--;
    }

    for (i = 0; i < g->nslow && g->slow[i].ns >= d; i++) {
        /* void */
    }

    if (i >= top->nslowest) {
        return 0;
    }

    j = g->nslow < top->nslowest ? g->nslow : top->nslowest - 1;
    memmove(&g->slow[i + 1], &g->slow[i], (j - i) * sizeof(et_cli_slow_t));
    g->slow[i].ns = d;
    memcpy(g->slow[i].trace_id, s->trace_id, sizeof(s->trace_id));

    if (g->nslow < top->nslowest) {
        g->nslow++;
    }

    return 0;
}


static int
et_cli_top_u64(const void *a, const void *b)
{
    uint64_t  x = *(const uint64_t *) a, y = *(const uint64_t *) b;

    return x < y ? -1 : x > y;
}


static int
et_cli_top_busiest(const void *a, const void *b)
{
    int                    rc;
    size_t                 n;
    const et_cli_group_t  *x = *(et_cli_group_t * const *) a;
    const et_cli_group_t  *y = *(et_cli_group_t * const *) b;

    if (x->n != y->n) {
        return x->n > y->n ? -1 : 1;
    }

    n = x->service_len < y->service_len ? x->service_len : y->service_len;
    rc = memcmp(x->service, y->service, n);

    if (rc || x->service_len != y->service_len) {
        return rc ? rc : (x->service_len < y->service_len ? -1 : 1);
    }

    if (x->kind != y->kind) {
        return x->kind - y->kind;
    }

    n = x->name_len < y->name_len ? x->name_len : y->name_len;
    rc = memcmp(x->name, y->name, n);

    return rc ? rc : (x->name_len < y->name_len ? -1
                                                : x->name_len > y->name_len);
}


/* nearest rank: the smallest value with at least p% of them at or below */
static uint64_t
et_cli_top_pct(const et_cli_group_t *g, unsigned p)
{
    size_t  rank;

    rank = (g->n * p + 99) / 100;

    return g->durations[rank ? rank - 1 : 0];
}


/* "ms" in its two largest units, as --since takes it: "1h40m", "45s" */
static char *
et_cli_top_age(char *buf, size_t size, uint64_t ms)
{
    unsigned long long  s;

    s = ms / 1000;

    if (s >= 86400) {
        snprintf(buf, size, "%llud%lluh", s / 86400, s % 86400 / 3600);

    } else if (s >= 3600) {
        snprintf(buf, size, "%lluh%llum", s / 3600, s % 3600 / 60);

    } else if (s >= 60) {
        snprintf(buf, size, "%llum%llus", s / 60, s % 60);

    } else {
        snprintf(buf, size, "%llus", s);
    }

    return buf;
}


/* a column of the table: the bytes made safe, padded to "width" */
static void
et_cli_top_cell(const char *p, size_t len, size_t width)
{
    size_t  cols;

    cols = et_cli_print_safe(stdout, (const uint8_t *) p, len);

    do {
        fputc(' ', stdout);
    } while (++cols < width + 1);
}


static void
et_cli_top_free(et_cli_top_t *top)
{
    size_t           i;
    et_cli_group_t  *g, *next;

    for (i = 0; i < ET_CLI_TOP_BUCKETS; i++) {
        for (g = top->buckets[i]; g; g = next) {
            next = g->next;
            free(g->durations);
            free(g->service);
            free(g);
        }
    }
}


int
et_cli_top(et_cli_t *cli, int argc, char **argv)
{
    int               i, rc;
    char              err[512], p50[32], p95[32], p99[32], age[48],
                      first[64], *end;
    size_t            j, k, n, wsvc, wname;
    double            window;
    uint64_t          since_ns, since_ms, now_ms, first_ms, start_ms, held_ms,
                      ms;
    const char       *v, *since, *how;
    et_cli_top_t     *top;
    et_str_t          id;
    et_cli_group_t  **list, *g;
    struct timespec   ts;
    unsigned long     slowest;
    int               sampling;
    unsigned          s;

    since = "15m";
    since_ns = 15 * 60 * ET_CLI_NS_PER_S;
    slowest = 3;
    sampling = -1;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(et_cli_top_usage, stdout);
            return ET_CLI_EXIT_OK;
        }

        if ((rc = et_cli_opt_value(argc, argv, &i, "--since", &v)) == 1) {
            if (et_cli_opt_duration("--since", v, &since_ns) != ET_OK) {
                return ET_CLI_EXIT_USAGE;
            }

            since = v;
            continue;
        }

        if (rc == 0
            && (rc = et_cli_opt_value(argc, argv, &i, "--slowest", &v)) == 1)
        {
            slowest = strtoul(v, &end, 10);

            if (v[0] < '0' || v[0] > '9' || *end != '\0'
                || slowest > ET_CLI_TOP_SLOWEST_MAX)
            {
                et_cli_error("top: invalid --slowest \"%s\": a number from "
                             "0 to %d", v, ET_CLI_TOP_SLOWEST_MAX);
                return ET_CLI_EXIT_USAGE;
            }

            continue;
        }

        if (rc == 0
            && (rc = et_cli_opt_value(argc, argv, &i, "--sampling", &v)) == 1)
        {
            if (strcmp(v, "head") == 0) {
                sampling = 0;

            } else if (strcmp(v, "outcome") == 0) {
                sampling = 1;

            } else {
                et_cli_error("top: invalid --sampling \"%s\": head or "
                             "outcome", v);
                return ET_CLI_EXIT_USAGE;
            }

            continue;
        }

        if (rc == 0) {
            et_cli_error("top: unexpected argument \"%s\" "
                         "(see edgetrace top --help)", argv[i]);
        }

        return ET_CLI_EXIT_USAGE;
    }

    top = calloc(1, sizeof(et_cli_top_t));

    if (top == NULL) {
        et_cli_error("out of memory");
        return ET_CLI_EXIT_ERROR;
    }

    top->nslowest = slowest;
    top->sampling = sampling;

    clock_gettime(CLOCK_REALTIME, &ts);
    now_ms = (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
    since_ms = (since_ns == 0 || since_ns / ET_CLI_NS_PER_MS >= now_ms)
               ? 0 : now_ms - since_ns / ET_CLI_NS_PER_MS;

    if (et_cli_redis_open(cli, 0, err, sizeof(err)) != ET_OK) {
        et_cli_error("%s", err);
        free(top);
        return ET_CLI_EXIT_ERROR;
    }

    rc = ET_OK;
    first_ms = 0;

    for (s = 0; s < cli->shards && rc == ET_OK; s++) {
        rc = et_cli_scan(cli, cli->keys[s], since_ms, et_cli_top_entry, top,
                         NULL, err, sizeof(err));

        /*
         * The stream holds nothing older than its first entry; of shards,
         * every one holds the time since the youngest first entry (an
         * empty shard, "0-0", holds no time to speak of).
         */
        if (rc == ET_OK) {
            rc = et_cli_stream_end(cli, cli->keys[s], 0, first, sizeof(first),
                                   err, sizeof(err));
            id.len = strlen(first);
            id.data = (const uint8_t *) first;
            ms = et_cli_entry_ms(&id);
            first_ms = ms > first_ms ? ms : first_ms;
        }
    }

    et_cli_redis_close(cli);

    if (rc != ET_OK || top->failed) {
        et_cli_error("%s", top->failed ? "out of memory" : err);
        et_cli_top_free(top);
        free(top);
        return ET_CLI_EXIT_ERROR;
    }

    list = malloc((top->ngroups ? top->ngroups : 1) * sizeof(*list));

    if (list == NULL) {
        et_cli_error("out of memory");
        et_cli_top_free(top);
        free(top);
        return ET_CLI_EXIT_ERROR;
    }

    n = 0;
    wsvc = 7;
    wname = 4;

    for (j = 0; j < ET_CLI_TOP_BUCKETS; j++) {
        for (g = top->buckets[j]; g; g = g->next) {
            list[n++] = g;
            qsort(g->durations, g->n, sizeof(uint64_t), et_cli_top_u64);
            wsvc = g->service_len > wsvc ? g->service_len : wsvc;
            wname = g->name_len > wname ? g->name_len : wname;
        }
    }

    wsvc = wsvc > 24 ? 24 : wsvc;
    wname = wname > 40 ? 40 : wname;

    qsort(list, n, sizeof(*list), et_cli_top_busiest);

    /*
     * The rates are over the part of the window the stream holds: a
     * stream begun (or trimmed) 5 minutes ago holds no 15 minutes of
     * spans.  At least a second, for a stream a moment old.
     */
    start_ms = first_ms > since_ms ? first_ms : since_ms;
    held_ms = now_ms > start_ms ? now_ms - start_ms : 0;
    window = held_ms > 1000 ? (double) held_ms / 1000 : 1;

    how = sampling < 0 ? "" : (sampling ? " kept by outcome" : " head-sampled");

    if (since_ms) {
        printf("%s: %llu span%s%s in the last %s", cli->stream_shown,
               (unsigned long long) top->spans, top->spans == 1 ? "" : "s",
               how, since);

        if (top->spans && first_ms > since_ms) {
            printf(" (the stream starts %s ago: rates over that)",
                   et_cli_top_age(age, sizeof(age), held_ms));
        }

    } else {
        printf("%s: %llu span%s%s", cli->stream_shown,
               (unsigned long long) top->spans, top->spans == 1 ? "" : "s",
               how);
    }

    if (top->invalid) {
        printf(" (and %llu entr%s that %s not %sspan%s)",
               (unsigned long long) top->invalid,
               top->invalid == 1 ? "y" : "ies",
               top->invalid == 1 ? "is" : "are",
               top->invalid == 1 ? "a " : "",
               top->invalid == 1 ? "" : "s");
    }

    printf("\n");

    if (n) {
        printf("\n%-*s %-6s %-*s %7s %8s %7s %11s %11s %11s\n", (int) wsvc,
               "SERVICE", "KIND", (int) wname, "NAME", "COUNT", "RATE/s",
               "ERRORS", "P50", "P95", "P99");
    }

    for (j = 0; j < n; j++) {
        g = list[j];

        et_cli_top_cell(g->service, g->service_len, wsvc);
        printf("%-6s ", g->kind == ET_CLI_KIND_SERVER ? "server" : "client");
        et_cli_top_cell(g->name, g->name_len, wname);
        printf("%7zu %8.2f %6.1f%% %11s %11s %11s\n", g->n,
               (double) g->n / window, 100.0 * (double) g->errors
                                       / (double) g->n,
               et_cli_duration_ms(p50, sizeof(p50), et_cli_top_pct(g, 50)),
               et_cli_duration_ms(p95, sizeof(p95), et_cli_top_pct(g, 95)),
               et_cli_duration_ms(p99, sizeof(p99), et_cli_top_pct(g, 99)));
    }

    if (n && slowest) {
        printf("\nslowest traces:\n");

        for (j = 0; j < n; j++) {
            g = list[j];

            et_cli_print_safe(stdout, (const uint8_t *) g->service,
                              g->service_len);
            fputs(": ", stdout);
            et_cli_print_safe(stdout, (const uint8_t *) g->name,
                              g->name_len);
            printf(" [%s]\n",
                   g->kind == ET_CLI_KIND_SERVER ? "server" : "client");

            for (k = 0; k < g->nslow; k++) {
                printf("  %11s  %s\n",
                       et_cli_duration_ms(p50, sizeof(p50), g->slow[k].ns),
                       g->slow[k].trace_id);
            }
        }
    }

    free(list);
    et_cli_top_free(top);
    free(top);

    return ET_CLI_EXIT_OK;
}
