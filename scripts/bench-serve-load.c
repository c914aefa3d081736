/*
 * bench-serve-load: the spans of make bench-serve, and only there.
 *
 * It makes traces of the shape the demo chain writes (docs/stream.md):
 * an nginx edge's server span and its client span to an httpd app tier,
 * the app's server span and its client span to a backend, four entries a
 * trace, with the attributes the modules write: methods, URL paths and
 * queries with ids in them, user agents of browsers, client addresses,
 * status codes (about 3% errors), the upstream try as an event.  The
 * traces start evenly over a time window, the durations spread from a
 * millisecond to seconds.  The same seed makes the same spans.
 *
 *   bench-serve-load xadd PORT KEY SPANS SEED END_S WINDOW_S
 *       XADDs them to the Redis on 127.0.0.1:PORT, pipelined
 *   bench-serve-load fill DB SPANS SEED END_S WINDOW_S
 *       stores them into serve's database DB with serve's own store code
 *       (et_serve_store(), 2000 spans a transaction as serve's --batch,
 *       or $BATCH), from span $FROM on (0)
 *   bench-serve-load ids SPANS SEED COUNT
 *       prints the ids of COUNT traces spread over the SPANS spans, each
 *       with the URL path of its edge span and the id of its app span
 *
 * The tests never use it.
 */

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "et_cli.h"
#include "et_cli_serve.h"


#define LOAD_BATCH    2000
#define LOAD_FIELDS   64


typedef struct {
    char      buf[4096];
    size_t    len;
    et_str_t  f[LOAD_FIELDS];
    size_t    n;
} load_entry_t;


static const char  *load_agents[] = {
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
    "like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/"
    "605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, "
    "like Gecko) Chrome/131.0.6778.81 Mobile Safari/537.36",
    "okhttp/4.12.0",
    "curl/7.88.1",
    "Googlebot/2.1 (+http://www.google.com/bot.html)"
};


typedef struct {
    const char  *method;
    const char  *location;     /* the span name's path: the location */
    const char  *path;         /* a printf format with one %u */
    const char  *query;        /* or NULL */
    const char  *app;          /* the app tier's service */
    unsigned     share;        /* in 1000ths */
} load_route_t;


static const load_route_t  load_routes[] = {
    { "GET", "/api/v2/orders", "/api/v2/orders/%u/items", NULL, "orders",
      300 },
    { "GET", "/api/v2/catalog", "/api/v2/catalog/products/%u",
      "fields=price,stock,images&currency=EUR", "catalog", 300 },
    { "GET", "/api/v2/search", "/api/v2/search/%u", "q=running+shoes+size+42"
      "&page=2&sort=relevance", "catalog", 150 },
    { "POST", "/api/v2/cart", "/api/v2/cart/%u/lines", NULL, "orders", 120 },
    { "POST", "/api/v2/checkout", "/api/v2/checkout/%u/payment", NULL,
      "payments", 50 },
    { "GET", "/api/v2/accounts", "/api/v2/accounts/%u/preferences", NULL,
      "accounts", 80 }
};


static uint64_t
load_rand(uint64_t *s)
{
    uint64_t  z;

    z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;

    return z ^ (z >> 31);
}


static void
load_add(load_entry_t *e, const char *k, const char *fmt, ...)
{
    int      n;
    va_list  ap;

    e->f[e->n].data = (uint8_t *) e->buf + e->len;
    e->f[e->n].len = strlen(k);
    memcpy(e->buf + e->len, k, e->f[e->n].len);
    e->len += e->f[e->n].len;
    e->n++;

    va_start(ap, fmt);
    n = vsnprintf(e->buf + e->len, sizeof(e->buf) - e->len, fmt, ap);
    va_end(ap);

    e->f[e->n].data = (uint8_t *) e->buf + e->len;
    e->f[e->n].len = (size_t) n;
    e->len += (size_t) n;
    e->n++;
}


/* a duration in us: mostly milliseconds, a tail to seconds */
static uint64_t
load_duration(uint64_t *s, uint64_t base)
{
    uint64_t  r;

    r = load_rand(s) % 1000;

    if (r < 900) {
        return base + load_rand(s) % (base * 4 + 1);
    }

    if (r < 990) {
        return base * 5 + load_rand(s) % 200000;
    }

    return 250000 + load_rand(s) % 4000000;
}


/* the trace id of trace "i" of "seed" */
static void
load_trace_id(uint64_t seed, uint64_t i, char *id)
{
    uint64_t  s;

    s = seed * 1000003 + i;
    snprintf(id, 33, "%016llx%016llx",
             (unsigned long long) (load_rand(&s) | 1),
             (unsigned long long) load_rand(&s));
}


/* the four entries of trace "i" */
static void
load_trace(uint64_t seed, uint64_t i, uint64_t start_ns, load_entry_t *e)
{
    char                 trace[33], sid[4][17], path[128], peer[32];
    unsigned             id, status, app_status, k, r;
    uint64_t             s, d[4], st[4];
    const char          *agent, *app, *method;
    const load_route_t  *rt;

    load_trace_id(seed, i, trace);
    s = seed ^ (i * 0x2545f4914f6cdd1dULL);

    for (k = 0; k < 4; k++) {
        snprintf(sid[k], 17, "%016llx",
                 (unsigned long long) (load_rand(&s) | 1));
    }

    r = (unsigned) (load_rand(&s) % 1000);

    for (k = 0; r >= load_routes[k].share; k++) {
        r -= load_routes[k].share;
    }

    rt = &load_routes[k];
    method = rt->method;
    app = rt->app;
    id = (unsigned) (load_rand(&s) % 5000000);
    snprintf(path, sizeof(path), rt->path, id);
    agent = load_agents[load_rand(&s) % (sizeof(load_agents)
                                         / sizeof(load_agents[0]))];

    r = (unsigned) (load_rand(&s) % 1000);
    app_status = r < 10 ? 500 : r < 30 ? 404 : r < 40 ? 201 : 200;
    status = app_status == 500 && r < 3 ? 502 : app_status;
    snprintf(peer, sizeof(peer), "10.0.%u.%u", (unsigned) (load_rand(&s) % 4),
             10 + (unsigned) (load_rand(&s) % 20));

    /* the backend's time, then each tier's around it */
    d[3] = load_duration(&s, 800);
    d[2] = d[3] + 200 + load_rand(&s) % 800;
    d[1] = d[2] + 300 + load_rand(&s) % 700;
    d[0] = d[1] + 50 + load_rand(&s) % 150;
    st[0] = start_ns;
    st[1] = st[0] + (20 + load_rand(&s) % 80) * 1000;
    st[2] = st[1] + (150 + load_rand(&s) % 300) * 1000;
    st[3] = st[2] + (30 + load_rand(&s) % 60) * 1000;

    for (k = 0; k < 4; k++) {
        e[k].len = 0;
        e[k].n = 0;
        load_add(&e[k], "v", "1");
        load_add(&e[k], "trace_id", "%s", trace);
        load_add(&e[k], "span_id", "%s", sid[k]);

        if (k) {
            load_add(&e[k], "parent_id", "%s", sid[k - 1]);
        }

        load_add(&e[k], "name", "%s %s", method, rt->location);
        load_add(&e[k], "kind", "%s", k % 2 ? "client" : "server");
        load_add(&e[k], "start_ns", "%llu", (unsigned long long) st[k]);
        load_add(&e[k], "end_ns", "%llu",
                 (unsigned long long) (st[k] + d[k] * 1000));
        load_add(&e[k], "status", "%s",
                 (k < 2 ? status : app_status) >= 500 ? "error" : "unset");
        load_add(&e[k], "service.name", "%s", k < 2 ? "edge" : app);
        load_add(&e[k], "edgetrace.sampling", "head");
        load_add(&e[k], "http.request.method", "%s", method);
    }

    /* the edge's server span, as nginx writes it */
    load_add(&e[0], "url.path", "%s", path);

    if (rt->query) {
        load_add(&e[0], "url.query", "%s", rt->query);
    }

    load_add(&e[0], "url.scheme", "https");
    load_add(&e[0], "server.address", "shop.example.com");
    load_add(&e[0], "server.port", "443");
    load_add(&e[0], "client.address", "%u.%u.%u.%u",
             (unsigned) (load_rand(&s) % 223 + 1),
             (unsigned) (load_rand(&s) % 256),
             (unsigned) (load_rand(&s) % 256),
             (unsigned) (load_rand(&s) % 254 + 1));
    load_add(&e[0], "user_agent.original", "%s", agent);
    load_add(&e[0], "network.protocol.version", "2");
    load_add(&e[0], "http.response.status_code", "%u", status);

    if (status >= 500) {
        load_add(&e[0], "error.type", "%u", status);
    }

    /* its client span to the app tier */
    load_add(&e[1], "url.full", "http://%s:8080%s%s%s", peer, path,
             rt->query ? "?" : "", rt->query ? rt->query : "");
    load_add(&e[1], "server.address", "%s", peer);
    load_add(&e[1], "server.port", "8080");

    if (status == 502) {
        load_add(&e[1], "error.type", "no_response");
        load_add(&e[1], "event.0", "upstream.try peer=%s:8080 status=-"
                 " connect_ms=0 header_ms=- response_ms=%llu", peer,
                 (unsigned long long) (d[1] / 1000));

    } else {
        load_add(&e[1], "http.response.status_code", "%u", app_status);
        load_add(&e[1], "event.0", "upstream.try peer=%s:8080 status=%u"
                 " connect_ms=0 header_ms=%llu response_ms=%llu", peer,
                 app_status, (unsigned long long) (d[2] / 1000),
                 (unsigned long long) (d[1] / 1000));
    }

    /* the app's server span, as httpd writes it */
    load_add(&e[2], "url.path", "%s", path);

    if (rt->query) {
        load_add(&e[2], "url.query", "%s", rt->query);
    }

    load_add(&e[2], "url.scheme", "http");
    load_add(&e[2], "server.address", "%s", peer);
    load_add(&e[2], "server.port", "8080");
    load_add(&e[2], "client.address", "10.0.0.%u",
             2 + (unsigned) (load_rand(&s) % 3));
    load_add(&e[2], "user_agent.original", "%s", agent);
    load_add(&e[2], "network.protocol.version", "1.1");
    load_add(&e[2], "http.response.status_code", "%u", app_status);

    if (app_status >= 500) {
        load_add(&e[2], "error.type", "%u", app_status);
    }

    /* and its client span to the backend */
    load_add(&e[3], "url.full", "http://127.0.0.1:9000%s", path);
    load_add(&e[3], "server.address", "127.0.0.1");
    load_add(&e[3], "server.port", "9000");
    load_add(&e[3], "http.response.status_code", "%u", app_status);

    if (app_status >= 500) {
        load_add(&e[3], "error.type", "%u", app_status);
    }
}


static int
load_xadd(int argc, char **argv, uint64_t spans, uint64_t seed,
    uint64_t end_ns, uint64_t window_ns)
{
    size_t          k, j, pending;
    uint64_t        i, traces;
    redisReply     *r;
    const char     *av[LOAD_FIELDS + 3];
    size_t          al[LOAD_FIELDS + 3];
    redisContext   *c;
    load_entry_t    e[4];

    (void) argc;

    c = redisConnect("127.0.0.1", atoi(argv[2]));

    if (c == NULL || c->err) {
        fprintf(stderr, "bench-serve-load: redis: %s\n",
                c ? c->errstr : "out of memory");
        return 1;
    }

    traces = spans / 4;
    pending = 0;

    for (i = 0; i < traces; i++) {
        load_trace(seed, i, end_ns - window_ns + window_ns / traces * i, e);

        for (k = 0; k < 4; k++) {
            av[0] = "XADD";
            al[0] = 4;
            av[1] = argv[3];
            al[1] = strlen(argv[3]);
            av[2] = "*";
            al[2] = 1;

            for (j = 0; j < e[k].n; j++) {
                av[3 + j] = (const char *) e[k].f[j].data;
                al[3 + j] = e[k].f[j].len;
            }

            redisAppendCommandArgv(c, (int) (3 + e[k].n), av, al);
            pending++;
        }

        while (pending > 2000 || (i + 1 == traces && pending)) {
            if (redisGetReply(c, (void **) &r) != REDIS_OK
                || r->type == REDIS_REPLY_ERROR)
            {
                fprintf(stderr, "bench-serve-load: XADD: %s\n",
                        c->err ? c->errstr : r->str);
                return 1;
            }

            freeReplyObject(r);
            pending--;
        }
    }

    redisFree(c);

    return 0;
}


static int
load_fill(char **argv, uint64_t spans, uint64_t seed, uint64_t end_ns,
    uint64_t window_ns)
{
    char               err[256], (*ids)[32];
    size_t             n, k, batch;
    sqlite3           *db;
    uint64_t           i, traces, stored, dups;
    et_str_t           id;
    load_entry_t      *e;
    et_cli_span_t     *sp;
    et_serve_store_t  *st;

    db = et_serve_db_open(argv[2], 1, err, sizeof(err));
    st = db ? et_serve_store_init(db, err, sizeof(err)) : NULL;

    batch = getenv("BATCH") ? strtoul(getenv("BATCH"), NULL, 10) : 0;
    batch = batch >= 4 ? batch : LOAD_BATCH;
    e = calloc(batch, sizeof(load_entry_t));
    sp = calloc(batch, sizeof(et_cli_span_t));
    ids = calloc(batch, 32);

    if (st == NULL || e == NULL || sp == NULL || ids == NULL) {
        fprintf(stderr, "bench-serve-load: %s\n", err);
        return 1;
    }

    /* a fill is made once: a commit is durable enough when the database
     * is thrown away after a crash (serve itself runs with NORMAL) */
    if (sqlite3_exec(db, "PRAGMA synchronous = OFF", NULL, NULL, NULL)
        != SQLITE_OK)
    {
        fprintf(stderr, "bench-serve-load: %s\n", sqlite3_errmsg(db));
        return 1;
    }

    traces = spans / 4;
    stored = 0;
    dups = 0;
    n = 0;

    /* $FROM: the fill resumed at that span, after an interrupted one */
    i = getenv("FROM") ? strtoull(getenv("FROM"), NULL, 10) / 4 : 0;

    for (/* void */; i < traces; i++) {
        load_trace(seed, i, end_ns - window_ns + window_ns / traces * i,
                   &e[n]);

        for (k = n; k < n + 4; k++) {
            id.len = (size_t) snprintf(ids[k], sizeof(ids[k]), "%llu-%zu",
                                       (unsigned long long) (end_ns / 1000000),
                                       k);
            id.data = (uint8_t *) ids[k];

            if (et_cli_span_parse(&id, e[k].f, e[k].n, &sp[k])
                != ET_CLI_SPAN_OK)
            {
                fprintf(stderr, "bench-serve-load: a span that does not"
                        " parse\n");
                return 1;
            }
        }

        n += 4;

        if (n + 4 > batch || i + 1 == traces) {
            if (et_serve_store(st, sp, n, &stored, &dups, err, sizeof(err))
                != ET_OK)
            {
                fprintf(stderr, "bench-serve-load: %s\n", err);
                return 1;
            }

            n = 0;
        }
    }

    et_serve_store_free(st);
    sqlite3_close(db);
    printf("%llu\n", (unsigned long long) stored);

    return 0;
}


int
main(int argc, char **argv)
{
    uint64_t             spans, seed, end_ns, window_ns, i, count;
    static load_entry_t  e[4];

    if (argc < 2) {
        argv[1] = "";
    }

    if (argc == 5 && strcmp(argv[1], "ids") == 0) {
        spans = strtoull(argv[2], NULL, 10);
        seed = strtoull(argv[3], NULL, 10);
        count = strtoull(argv[4], NULL, 10);

        for (i = 0; i < count && count <= spans / 4; i++) {
            load_trace(seed, i * (spans / 4 / count), 0, e);

            /* the trace id, the edge's url.path, the app's span id */
            printf("%.*s %.*s %.*s\n", (int) e[0].f[3].len, e[0].f[3].data,
                   (int) e[0].f[23].len, e[0].f[23].data,
                   (int) e[2].f[5].len, e[2].f[5].data);
        }

        return 0;
    }

    if (argc != (strcmp(argv[1], "xadd") == 0 ? 8 : 7)) {
        fprintf(stderr, "usage: bench-serve-load xadd PORT KEY SPANS SEED"
                " END_S WINDOW_S\n"
                "       bench-serve-load fill DB SPANS SEED END_S"
                " WINDOW_S\n"
                "       bench-serve-load ids SPANS SEED COUNT\n");
        return 2;
    }

    spans = strtoull(argv[argc - 4], NULL, 10);
    seed = strtoull(argv[argc - 3], NULL, 10);
    end_ns = strtoull(argv[argc - 2], NULL, 10) * 1000000000ULL;
    window_ns = strtoull(argv[argc - 1], NULL, 10) * 1000000000ULL;

    if (spans < 4 || window_ns == 0 || window_ns > end_ns) {
        fprintf(stderr, "bench-serve-load: invalid numbers\n");
        return 2;
    }

    if (strcmp(argv[1], "xadd") == 0) {
        return load_xadd(argc, argv, spans, seed, end_ns, window_ns);
    }

    if (strcmp(argv[1], "fill") == 0) {
        return load_fill(argv, spans, seed, end_ns, window_ns);
    }

    fprintf(stderr, "bench-serve-load: xadd or fill\n");

    return 2;
}
