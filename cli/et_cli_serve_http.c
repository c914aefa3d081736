/*
 * edgetrace serve: the HTTP API, on libmicrohttpd (docs/serve.md, "The
 * API").  Jaeger's query endpoints with its JSON envelope, {"data",
 * "total", "limit", "offset", "errors"}, and edgetrace's own under
 * /api/edgetrace/.  One polling thread answers every request with one
 * read-only SQLite connection of its own.
 *
 * Everything a request holds is untrusted: parameters go through the
 * parsers of et_cli_serve_query.c, and every string of the answer
 * through jansson, invalid UTF-8 repaired (et_cli_json_string).
 */

#include <arpa/inet.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include <microhttpd.h>

#include "et_cli_serve.h"
#include "et_cli_json.h"
#include "et_cli_serve_ui.h"


typedef struct {
    et_serve_t        *sv;
    struct MHD_Connection *c;
    et_serve_args_t    args;
    unsigned           status;
    json_t            *data;
    json_t            *errors;     /* of a 200: the trace ids not found */
    size_t             limit;
    const char        *text;       /* a text/plain answer instead */
    const et_serve_asset_t *asset; /* a file of the web page instead */
    char               err[512];
} et_serve_req_t;


uint64_t
et_serve_now_us(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);

    return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}


static enum MHD_Result
et_serve_arg_add(void *cls, enum MHD_ValueKind kind, const char *key,
    size_t key_size, const char *value, size_t value_size)
{
    et_serve_args_t  *a;

    (void) kind;
    (void) key_size;
    a = cls;

    if (a->n == ET_SERVE_ARGS_MAX) {
        a->overflow = 1;
        return MHD_NO;
    }

    a->arg[a->n].key = key;
    a->arg[a->n].value = (const uint8_t *) (value ? value : "");
    a->arg[a->n].len = value ? value_size : 0;
    a->n++;

    return MHD_YES;
}


/* an error answer: Jaeger's envelope with errors [{code, msg}] */
static void
et_serve_fail(et_serve_req_t *rq, unsigned status, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 3, 4)))
#endif
    ;


static void
et_serve_fail(et_serve_req_t *rq, unsigned status, const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    vsnprintf(rq->err, sizeof(rq->err), fmt, ap);
    va_end(ap);

    rq->status = status;
    json_decref(rq->data);
    json_decref(rq->errors);
    rq->data = NULL;
    rq->errors = NULL;
}


static void
et_serve_bad(et_serve_req_t *rq, const char *why)
{
    et_serve_fail(rq, 400, "%s", why);
}


/* the data of a read, or a 500 when the database failed */
static void
et_serve_answer(et_serve_req_t *rq, json_t *data, const char *err)
{
    if (data == NULL) {
        et_serve_fail(rq, 500, "%s", err);
        return;
    }

    rq->status = 200;
    rq->data = data;
}


static void
et_serve_services(et_serve_req_t *rq)
{
    char  err[512];

    et_serve_answer(rq, et_serve_db_services(rq->sv->reader, err,
                                             sizeof(err)), err);
}


static void
et_serve_operations(et_serve_req_t *rq, const char *service, size_t len,
    int objects)
{
    char                   err[512];
    et_str_t               s;
    const char            *kind;
    const et_serve_arg_t  *a;

    kind = NULL;

    if (objects) {
        a = et_serve_arg(&rq->args, "service");

        if (a == NULL || a->len == 0) {
            et_serve_bad(rq, "parameter 'service' is required");
            return;
        }

        service = (const char *) a->value;
        len = a->len;
        a = et_serve_arg(&rq->args, "spanKind");

        if (a != NULL && a->len) {
            if (a->len == 6 && memcmp(a->value, "server", 6) == 0) {
                kind = "server";

            } else if (a->len == 6 && memcmp(a->value, "client", 6) == 0) {
                kind = "client";

            } else {
                /* the kinds edgetrace writes; a span of another is none */
                et_serve_answer(rq, json_array(), "out of memory");
                return;
            }
        }
    }

    if (len > ET_SERVE_ARG_MAX) {
        et_serve_bad(rq, "the service name is too long");
        return;
    }

    s.data = (const uint8_t *) service;
    s.len = len;

    et_serve_answer(rq, et_serve_db_operations(rq->sv->reader, &s, objects,
                                               kind, err, sizeof(err)), err);
}


/*
 * the trace of an id as the request gave it: the trace, JSON null when
 * there is none, or NULL when the request has failed (a 400 or a 500);
 * "trace_id" gets the id as stored (32 lowercase hex digits)
 */
static json_t *
et_serve_trace_get(et_serve_req_t *rq, const uint8_t *id, size_t len,
    char *trace_id)
{
    char     err[512];
    json_t  *t;

    if (et_serve_hex_id(id, len, trace_id, 32) != ET_OK) {
        et_serve_bad(rq, "cannot parse traceID: 1 to 32 hex digits, not all "
                     "zero, expected");
        return NULL;
    }

    t = et_serve_db_trace(rq->sv->reader, trace_id, err, sizeof(err));

    if (t == NULL) {
        et_serve_fail(rq, 500, "%s", err);
    }

    return t;
}


static void
et_serve_trace(et_serve_req_t *rq, const char *id, size_t len)
{
    char     trace_id[33];
    json_t  *t;

    t = et_serve_trace_get(rq, (const uint8_t *) id, len, trace_id);

    if (t == NULL) {
        return;
    }

    if (json_is_null(t)) {
        et_serve_fail(rq, 404, "trace not found");
        return;
    }

    rq->status = 200;
    rq->data = json_pack("[o]", t);

    if (rq->data == NULL) {
        et_serve_fail(rq, 500, "out of memory");
    }
}


static void
et_serve_span_trace(et_serve_req_t *rq, const char *id, size_t len)
{
    int   rc;
    char  err[512], span_id[17], trace_id[33];

    if (et_serve_hex_id((const uint8_t *) id, len, span_id, 16) != ET_OK) {
        et_serve_bad(rq, "cannot parse spanID: 1 to 16 hex digits, not all "
                     "zero, expected");
        return;
    }

    rc = et_serve_db_span_trace(rq->sv->reader, span_id, trace_id, err,
                                sizeof(err));

    if (rc == ET_DECLINED) {
        et_serve_fail(rq, 404, "span not found");
        return;
    }

    if (rc != ET_OK) {
        et_serve_fail(rq, 500, "%s", err);
        return;
    }

    et_serve_trace(rq, trace_id, 32);
}


/*
 * /api/traces?traceID=...&traceID=...: the traces of those ids, as
 * Jaeger's query service answers Jaeger UI's lookup of several ids and its
 * trace comparison: the other parameters are not read, and an id not
 * found is an error of the answer beside the traces found (200).
 */
static void
et_serve_traces_by_id(et_serve_req_t *rq)
{
    char     trace_id[33];
    size_t   i;
    json_t  *t;

    rq->data = json_array();
    rq->errors = json_array();

    if (rq->data == NULL || rq->errors == NULL) {
        et_serve_fail(rq, 500, "out of memory");
        return;
    }

    if (rq->args.overflow) {
        et_serve_fail(rq, 400, "more than %d query parameters",
                      ET_SERVE_ARGS_MAX);
        return;
    }

    for (i = 0; i < rq->args.n; i++) {
        if (strcmp(rq->args.arg[i].key, "traceID") != 0) {
            continue;
        }

        t = et_serve_trace_get(rq, rq->args.arg[i].value,
                               rq->args.arg[i].len, trace_id);

        if (t == NULL) {
            return;
        }

        if (json_is_null(t)
            ? json_array_append_new(rq->errors,
                                    json_pack("{s:i, s:s, s:s}", "code",
                                              404, "msg", "trace not found",
                                              "traceID", trace_id))
            : json_array_append_new(rq->data, t))
        {
            et_serve_fail(rq, 500, "out of memory");
            return;
        }
    }

    rq->status = 200;

    if (json_array_size(rq->errors) == 0) {
        json_decref(rq->errors);
        rq->errors = NULL;
    }
}


/* an endpoint of parameters: parsed (or a 400), then read */
static void
et_serve_query(et_serve_req_t *rq, et_serve_parse_pt parse,
    et_serve_read_pt get)
{
    char              err[512];
    et_serve_query_t  q;

    if (parse(&rq->args, et_serve_now_us(), &q, err, sizeof(err)) != ET_OK) {
        et_serve_bad(rq, err);

    } else {
        rq->limit = q.limit;
        et_serve_answer(rq, get(rq->sv->reader, &q, err, sizeof(err)), err);
    }

    et_serve_query_free(&q);
}


/* the database's bytes on disk: the file and its WAL */
static uint64_t
et_serve_db_bytes(const char *path)
{
    char         wal[4096];
    uint64_t     n;
    struct stat  st;

    n = 0;

    if (stat(path, &st) == 0) {
        n += (uint64_t) st.st_size;
    }

    snprintf(wal, sizeof(wal), "%s-wal", path);

    if (stat(wal, &st) == 0) {
        n += (uint64_t) st.st_size;
    }

    return n;
}


/* a copy of the counters, taken under the lock */
static void
et_serve_counters(et_serve_t *sv, et_serve_status_t *s)
{
    pthread_mutex_lock(&sv->status.lock);
    *s = sv->status;
    pthread_mutex_unlock(&sv->status.lock);
}


static void
et_serve_status(et_serve_req_t *rq)
{
    const char         *ingestion;
    et_serve_status_t   s;

    et_serve_counters(rq->sv, &s);

    /* paused: Redis cannot be read, or the store refuses the batches */
    ingestion = !s.redis_known ? "starting"
                : !s.redis_up ? "paused"
                : s.store_failing ? "paused" : "running";

    rq->status = 200;
    rq->data = json_pack("{s:s, s:s, s:o, s:s, s:o, s:s, s:o,"
                         " s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I,"
                         " s:I, s:I, s:I, s:I, s:I}, s:I, s:I, s:I, s:I}",
                         "ingestion", ingestion,
                         "redis", !s.redis_known ? "connecting"
                                  : s.redis_up ? "up" : "down",
                         "redisUrl", et_cli_json_string(
                             (const uint8_t *) rq->sv->cli->redis_shown,
                             strlen(rq->sv->cli->redis_shown)),
                         "store", s.store_failing ? "failing" : "ok",
                         "storeError", s.store_failing
                                       ? et_cli_json_string(
                                             (const uint8_t *) s.store_error,
                                             strlen(s.store_error))
                                       : json_null(),
                         "stream", rq->sv->cli->stream_shown,
                         "database", et_cli_json_string(
                             (const uint8_t *) rq->sv->path,
                             strlen(rq->sv->path)),
                         "counters",
                         "spansStored", (json_int_t) s.stored,
                         "duplicates", (json_int_t) s.duplicates,
                         "batches", (json_int_t) s.batches,
                         "storeFailures", (json_int_t) s.store_failures,
                         "redisLost", (json_int_t) s.redis_lost,
                         "requests", (json_int_t) s.requests,
                         "badRequests", (json_int_t) s.bad_requests,
                         "failedRequests", (json_int_t) s.failed_requests,
                         "authFailures", (json_int_t) s.auth_failures,
                         "queryMicroseconds", (json_int_t) s.query_us,
                         "databaseBytes",
                         (json_int_t) et_serve_db_bytes(rq->sv->path),
                         "spansTrimmed", (json_int_t) s.trimmed,
                         "spansTrimmedBySize", (json_int_t) s.trimmed_size,
                         "trimFailures", (json_int_t) s.trim_failures,
                         "lastCommit", (json_int_t) s.last_commit_ms,
                         "newestSpan", (json_int_t) s.newest_ms,
                         "retainSeconds",
                         (json_int_t) (rq->sv->retain_us / 1000000),
                         "maxSizeBytes", (json_int_t) rq->sv->max_size);

    if (rq->data == NULL) {
        et_serve_fail(rq, 500, "out of memory");
    }
}


/* GET /metrics: the counters in Prometheus's text format */
static void
et_serve_metrics(et_serve_req_t *rq)
{
    char               *buf;
    et_serve_status_t   s;

    et_serve_counters(rq->sv, &s);

    if (asprintf(&buf,
        "# HELP edgetrace_serve_spans_stored_total Spans committed to the "
        "database.\n"
        "# TYPE edgetrace_serve_spans_stored_total counter\n"
        "edgetrace_serve_spans_stored_total %llu\n"
        "# HELP edgetrace_serve_duplicates_total Spans delivered again and "
        "absorbed.\n"
        "# TYPE edgetrace_serve_duplicates_total counter\n"
        "edgetrace_serve_duplicates_total %llu\n"
        "# HELP edgetrace_serve_store_failures_total Batches the database "
        "refused (left pending).\n"
        "# TYPE edgetrace_serve_store_failures_total counter\n"
        "edgetrace_serve_store_failures_total %llu\n"
        "# HELP edgetrace_serve_spans_trimmed_total Spans deleted by "
        "--retain.\n"
        "# TYPE edgetrace_serve_spans_trimmed_total counter\n"
        "edgetrace_serve_spans_trimmed_total %llu\n"
        "# HELP edgetrace_serve_spans_trimmed_by_size_total Spans deleted "
        "by --max-size.\n"
        "# TYPE edgetrace_serve_spans_trimmed_by_size_total counter\n"
        "edgetrace_serve_spans_trimmed_by_size_total %llu\n"
        "# HELP edgetrace_serve_redis_lost_total Times Redis became "
        "unreachable.\n"
        "# TYPE edgetrace_serve_redis_lost_total counter\n"
        "edgetrace_serve_redis_lost_total %llu\n"
        "# HELP edgetrace_serve_ingestion_paused 1 while nothing can be "
        "ingested.\n"
        "# TYPE edgetrace_serve_ingestion_paused gauge\n"
        "edgetrace_serve_ingestion_paused %d\n"
        "# HELP edgetrace_serve_newest_span_seconds The end of the newest "
        "span stored, Unix time: now minus it is the lag.\n"
        "# TYPE edgetrace_serve_newest_span_seconds gauge\n"
        "edgetrace_serve_newest_span_seconds %.3f\n"
        "# HELP edgetrace_serve_database_bytes The database and its WAL on "
        "disk.\n"
        "# TYPE edgetrace_serve_database_bytes gauge\n"
        "edgetrace_serve_database_bytes %llu\n"
        "# HELP edgetrace_serve_requests_total API requests answered.\n"
        "# TYPE edgetrace_serve_requests_total counter\n"
        "edgetrace_serve_requests_total %llu\n"
        "# HELP edgetrace_serve_auth_failures_total Requests refused for "
        "want of valid credentials (401).\n"
        "# TYPE edgetrace_serve_auth_failures_total counter\n"
        "edgetrace_serve_auth_failures_total %llu\n"
        "# HELP edgetrace_serve_query_seconds_total Time spent answering "
        "them.\n"
        "# TYPE edgetrace_serve_query_seconds_total counter\n"
        "edgetrace_serve_query_seconds_total %.6f\n",
        (unsigned long long) s.stored, (unsigned long long) s.duplicates,
        (unsigned long long) s.store_failures,
        (unsigned long long) s.trimmed,
        (unsigned long long) s.trimmed_size,
        (unsigned long long) s.redis_lost,
        s.redis_known && (!s.redis_up || s.store_failing),
        (double) s.newest_ms / 1e3,
        (unsigned long long) et_serve_db_bytes(rq->sv->path),
        (unsigned long long) s.requests,
        (unsigned long long) s.auth_failures, (double) s.query_us / 1e6)
        < 0)
    {
        et_serve_fail(rq, 500, "out of memory");
        return;
    }

    rq->status = 200;
    rq->text = buf;
}


/* a file of the web page (docs/ui.md), or NULL */
static const et_serve_asset_t *
et_serve_asset(const char *url)
{
    const et_serve_asset_t  *a;

    for (a = et_serve_assets; a->path != NULL; a++) {
        if (strcmp(url, a->path) == 0) {
            return a;
        }
    }

    return NULL;
}


/* the route of "url" (decoded by libmicrohttpd) */
static void
et_serve_route(et_serve_req_t *rq, const char *url)
{
    size_t       len;
    const char  *p;

    len = strlen(url);

    if (strcmp(url, "/api/services") == 0) {
        et_serve_services(rq);

    } else if (strncmp(url, "/api/services/", 14) == 0 && len > 25
               && strcmp(url + len - 11, "/operations") == 0)
    {
        /* the service may hold a "/" (sent as %2F) */
        et_serve_operations(rq, url + 14, len - 25, 0);

    } else if (strcmp(url, "/api/operations") == 0) {
        et_serve_operations(rq, NULL, 0, 1);

    } else if (strcmp(url, "/api/traces") == 0
               && et_serve_arg(&rq->args, "traceID") != NULL)
    {
        et_serve_traces_by_id(rq);

    } else if (strcmp(url, "/api/traces") == 0) {
        et_serve_query(rq, et_serve_traces_parse, et_serve_db_traces);

    } else if (strncmp(url, "/api/traces/", 12) == 0) {
        et_serve_trace(rq, url + 12, len - 12);

    } else if (strcmp(url, "/api/dependencies") == 0) {
        et_serve_query(rq, et_serve_deps_parse, et_serve_db_dependencies);

    } else if (strcmp(url, "/api/edgetrace/status") == 0) {
        et_serve_status(rq);

    } else if (strcmp(url, "/api/edgetrace/search") == 0) {
        et_serve_query(rq, et_serve_search_parse, et_serve_db_search);

    } else if (strcmp(url, "/api/edgetrace/dependencies") == 0) {
        et_serve_query(rq, et_serve_deps_parse, et_serve_db_edges);

    } else if (strcmp(url, "/api/edgetrace/red") == 0) {
        et_serve_query(rq, et_serve_red_parse, et_serve_db_red);

    } else if (strncmp(url, "/api/edgetrace/spans/", 21) == 0) {
        p = url + 21;
        et_serve_span_trace(rq, p, len - 21);

    } else if (strcmp(url, "/metrics") == 0) {
        et_serve_metrics(rq);

    } else if ((rq->asset = et_serve_asset(url)) != NULL) {
        rq->status = 200;

    } else {
        et_serve_fail(rq, 404, "no such endpoint (see docs/serve.md)");
    }
}


/* the envelope: {"data", "total", "limit", "offset", "errors"} */
static char *
et_serve_body(et_serve_req_t *rq)
{
    char    *body;
    json_t  *doc, *errors;

    if (rq->status == 200) {
        errors = rq->errors ? rq->errors : json_null();
        rq->errors = NULL;

    } else {
        errors = json_pack("[{s:i, s:o}]", "code", (int) rq->status, "msg",
                           et_cli_json_string((const uint8_t *) rq->err,
                                              strlen(rq->err)));
    }

    doc = json_pack("{s:o, s:I, s:I, s:i, s:o}",
                    "data", rq->data ? rq->data : json_null(),
                    "total", (json_int_t) (json_is_array(rq->data)
                                           ? json_array_size(rq->data) : 0),
                    "limit", (json_int_t) rq->limit,
                    "offset", 0,
                    "errors", errors);
    rq->data = NULL;

    if (doc == NULL) {
        return NULL;
    }

    body = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);

    return body;
}


static enum MHD_Result
et_serve_handler(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
    char                *body;
    uint64_t             t0;
    et_serve_t          *sv;
    enum MHD_Result      ret;
    et_serve_req_t       rq;
    struct MHD_Response *resp;

    (void) version;
    (void) upload_data;
    (void) upload_data_size;
    (void) con_cls;

    sv = cls;
    t0 = et_serve_now_us();
    resp = NULL;

    memset(&rq, 0, sizeof(et_serve_req_t));
    rq.sv = sv;
    rq.c = c;

    if ((sv->auth.nusers || sv->auth.token_len)
        && et_serve_auth_check(&sv->auth,
                               MHD_lookup_connection_value(c,
                                   MHD_HEADER_KIND,
                                   MHD_HTTP_HEADER_AUTHORIZATION))
           != ET_OK)
    {
        /* every path, the page and /metrics too (docs/serve.md,
         * "Security") */
        et_serve_fail(&rq, 401, "valid credentials required");

    } else if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        et_serve_fail(&rq, 405, "only GET and HEAD");

    } else {
        MHD_get_connection_values_n(c, MHD_GET_ARGUMENT_KIND,
                                    et_serve_arg_add, &rq.args);
        et_serve_route(&rq, url);
    }

    if (rq.asset != NULL) {
        body = NULL;
        resp = MHD_create_response_from_buffer(rq.asset->len,
                                               (void *) rq.asset->data,
                                               MHD_RESPMEM_PERSISTENT);

    } else if (rq.text != NULL) {
        body = (char *) rq.text;

    } else {
        body = et_serve_body(&rq);

        if (body == NULL) {
            return MHD_NO;
        }
    }

    if (body != NULL) {
        resp = MHD_create_response_from_buffer(strlen(body), body,
                                               MHD_RESPMEM_MUST_FREE);
    }

    if (resp == NULL) {
        free(body);
        return MHD_NO;
    }

    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            rq.asset ? rq.asset->type
                            : rq.text ? "text/plain; version=0.0.4"
                            : "application/json; charset=utf-8");

    if (rq.asset != NULL) {
        /* span data reaches the page as JSON and is only ever set as
         * text: no script but the page's own runs (docs/ui.md) */
        MHD_add_response_header(resp, "Content-Security-Policy",
                                "default-src 'self'; script-src 'self'; "
                                "object-src 'none'; base-uri 'none'; "
                                "form-action 'self'; "
                                "frame-ancestors 'none'");
        MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    }

    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");

    if (rq.status == 405) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    }

    if (rq.status == 401 && sv->auth.nusers) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Basic realm=\"edgetrace\", "
                                "charset=\"UTF-8\"");
    }

    if (rq.status == 401 && sv->auth.token_len) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer realm=\"edgetrace\"");
    }

    ret = MHD_queue_response(c, rq.status, resp);
    MHD_destroy_response(resp);

    pthread_mutex_lock(&sv->status.lock);
    sv->status.requests++;
    sv->status.bad_requests += rq.status >= 400 && rq.status < 500;
    sv->status.failed_requests += rq.status >= 500;
    sv->status.auth_failures += rq.status == 401;
    sv->status.query_us += et_serve_now_us() - t0;
    pthread_mutex_unlock(&sv->status.lock);

    return ret;
}


int
et_serve_listen(et_serve_t *sv, char *err, size_t size)
{
    int                       anywhere;
    char                      host[128];
    char                     *end;
    size_t                    hlen;
    const char               *listen, *colon, *h, *port;
    unsigned long             n;
    struct addrinfo           hints, *ai;
    struct sockaddr_storage  *sa;

    listen = sv->listen;
    sa = &sv->listen_sa;
    anywhere = sv->auth.nusers || sv->auth.token_len;

    if (listen[0] == '[') {
        colon = strstr(listen, "]:");
        h = listen + 1;
        hlen = colon ? (size_t) (colon - h) : 0;
        port = colon ? colon + 2 : NULL;

    } else {
        colon = strrchr(listen, ':');
        h = listen;
        hlen = colon ? (size_t) (colon - h) : 0;
        port = colon ? colon + 1 : NULL;
    }

    if (port == NULL || hlen == 0 || hlen >= sizeof(host)) {
        snprintf(err, size, "invalid --listen \"%s\": ADDR:PORT expected",
                 listen);
        return ET_ERROR;
    }

    n = strtoul(port, &end, 10);

    if (port[0] < '0' || port[0] > '9' || *end != '\0' || n == 0
        || n > 65535)
    {
        snprintf(err, size, "invalid --listen \"%s\": the port is 1 to "
                 "65535", listen);
        return ET_ERROR;
    }

    memcpy(host, h, hlen);
    host[hlen] = '\0';

    memset(&hints, 0, sizeof(hints));
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    hints.ai_socktype = SOCK_STREAM;

    if (getaddrinfo(host, port, &hints, &ai) != 0) {
        snprintf(err, size, "invalid --listen \"%s\": a numeric IPv4 or "
                 "[IPv6] address expected", listen);
        return ET_ERROR;
    }

    memset(sa, 0, sizeof(*sa));
    memcpy(sa, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);

    if (!anywhere
        && !(sa->ss_family == AF_INET
          && (ntohl(((struct sockaddr_in *) sa)->sin_addr.s_addr) >> 24)
             == 127)
        && !(sa->ss_family == AF_INET6
             && IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *) sa)
                                     ->sin6_addr)))
    {
        snprintf(err, size, "invalid --listen \"%s\": without "
                 "--auth-file or --token-file, serve listens on loopback "
                 "addresses only (127.0.0.0/8, [::1])", listen);
        return ET_ERROR;
    }

    return ET_OK;
}


int
et_serve_http_start(et_serve_t *sv, char *err, size_t size)
{
    char                     *msg;
    unsigned                  flags;
    sigset_t                  set, old;

    sv->reader = et_serve_db_open(sv->path, 0, err, size);

    if (sv->reader == NULL) {
        return ET_ERROR;
    }

    /* the API only ever reads */
    msg = NULL;

    if (sqlite3_exec(sv->reader, "PRAGMA query_only = 1;", NULL, NULL, &msg)
        != SQLITE_OK)
    {
        snprintf(err, size, "%s: %s", sv->path, msg ? msg : "query_only");
        sqlite3_free(msg);
        return ET_ERROR;
    }

    flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;

    if (sv->listen_sa.ss_family == AF_INET6) {
        flags |= MHD_USE_IPv6;
    }

    if (sv->tls_cert_pem != NULL) {
        flags |= MHD_USE_TLS;
    }

    /* SIGINT and SIGTERM go to the main thread, whose waits they cut
     * short: the API's thread is started with them blocked */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, &old);

    sv->daemon = MHD_start_daemon(flags, 0, NULL, NULL, et_serve_handler, sv,
                                  MHD_OPTION_SOCK_ADDR,
                                  (struct sockaddr *) &sv->listen_sa,
                                  MHD_OPTION_CONNECTION_LIMIT,
                                  (unsigned int) 256,
                                  MHD_OPTION_CONNECTION_TIMEOUT,
                                  (unsigned int) 30,
                                  /* without TLS, the list ends here */
                                  sv->tls_cert_pem ? MHD_OPTION_HTTPS_MEM_CERT
                                                   : MHD_OPTION_END,
                                  sv->tls_cert_pem,
                                  MHD_OPTION_HTTPS_MEM_KEY, sv->tls_key_pem,
                                  MHD_OPTION_END);

    pthread_sigmask(SIG_SETMASK, &old, NULL);

    if (sv->daemon == NULL) {
        snprintf(err, size, "cannot listen on %s (in use, or not an address "
                 "of this host)", sv->listen);
        return ET_ERROR;
    }

    return ET_OK;
}


void
et_serve_http_stop(et_serve_t *sv)
{
    if (sv->daemon != NULL) {
        MHD_stop_daemon(sv->daemon);
        sv->daemon = NULL;
    }

    sqlite3_close(sv->reader);
    sv->reader = NULL;
}
