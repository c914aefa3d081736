/*
 * mod_edgetrace: a request's trace.
 *
 * The trace is decided once, in the header-parser hook of the client's
 * request (the per-directory configuration is final there, <If>
 * included); internal redirects and subrequests share it, found again
 * through the request they belong to.  The server span ends in
 * log_transaction, which also ends the client spans mod_proxy did not
 * report.  The status handler serves the counters of every child.
 */

#include "edgetrace_private.h"


#define EDGETRACE_STATUS_HANDLER  "edgetrace-status"


/* the client request that "r" (a subrequest or a redirect) belongs to */

request_rec *
edgetrace_root(request_rec *r)
{
    for ( ;; ) {
        if (r->main) {
            r = r->main;

        } else if (r->prev) {
            r = r->prev;

        } else {
            return r;
        }
    }
}


edgetrace_req_t *
edgetrace_req(request_rec *r, int create)
{
    edgetrace_req_t  *req;

    req = ap_get_module_config(r->request_config, &edgetrace_module);

    if (req == NULL && create) {
        req = apr_pcalloc(r->pool, sizeof(edgetrace_req_t));
        ap_set_module_config(r->request_config, &edgetrace_module, req);
    }

    return req;
}


edgetrace_ctx_t *
edgetrace_ctx(request_rec *r)
{
    edgetrace_req_t  *req, *root_req;
    request_rec      *root;

    req = edgetrace_req(r, 0);

    if (req && req->ctx) {
        return req->ctx;
    }

    root = edgetrace_root(r);

    if (root == r) {
        return NULL;
    }

    root_req = edgetrace_req(root, 0);

    if (root_req == NULL || root_req->ctx == NULL) {
        return NULL;
    }

    req = edgetrace_req(r, 1);
    req->ctx = root_req->ctx;

    return req->ctx;
}


/* one walk over the request's headers: the ones of the formats "mask" */

static void
edgetrace_scan_headers(request_rec *r, unsigned mask, et_prop_found_t *found)
{
    int                        i, k;
    const char                *key;
    const apr_array_header_t  *arr;
    const apr_table_entry_t   *e;

    et_prop_found_init(found);

    arr = apr_table_elts(r->headers_in);
    e = (const apr_table_entry_t *) arr->elts;

    for (i = 0; i < arr->nelts; i++) {
        key = e[i].key;

        /* every name of et_prop_headers[] starts with t, b or x */
        if (key == NULL
            || ((key[0] | 0x20) != 't' && (key[0] | 0x20) != 'b'
                && (key[0] | 0x20) != 'x'))
        {
            continue;
        }

        k = et_prop_header_find((const uint8_t *) key, strlen(key), mask);

        if (k >= 0) {
            et_prop_found_add(found, k, (const uint8_t *) e[i].val,
                              strlen(e[i].val));
        }
    }
}


static const unsigned  edgetrace_default_formats[] = {
    ET_PROP_FORMAT_DEFAULT
};


void
edgetrace_formats(edgetrace_dir_conf_t *dc, const unsigned **formats,
    unsigned *n, unsigned *mask)
{
    if (dc->nformats) {
        *formats = dc->formats;
        *n = dc->nformats;
        *mask = dc->format_mask;

    } else {
        *formats = edgetrace_default_formats;
        *n = 1;
        *mask = ET_PROP_FORMAT_DEFAULT;
    }
}


/* 1 when the table holds a variable named EDGETRACE_... already */
static int
edgetrace_env_has_ours(apr_table_t *env)
{
    int                        i;
    const char                *key;
    const apr_array_header_t  *arr;
    const apr_table_entry_t   *e;

    arr = apr_table_elts(env);
    e = (const apr_table_entry_t *) arr->elts;

    for (i = 0; i < arr->nelts; i++) {
        key = e[i].key;

        if (key && (key[0] | 0x20) == 'e'
            && strncasecmp(key, "EDGETRACE_", sizeof("EDGETRACE_") - 1) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/*
 * The six names share their first ten letters, and apr_table_setn()
 * compares each with those set before it: 970 instructions a request.
 * Usually none is there yet (an internal redirect renames the previous
 * request's to REDIRECT_...): then they are appended, with no search.
 */
static void
edgetrace_set_env(request_rec *r, edgetrace_ctx_t *ctx)
{
    void        (*set)(apr_table_t *t, const char *key, const char *val);
    apr_table_t  *env;

    env = r->subprocess_env;
    set = edgetrace_env_has_ours(env) ? apr_table_setn : apr_table_addn;

    set(env, "EDGETRACE_TRACE_ID", ctx->trace_hex);
    set(env, "EDGETRACE_SPAN_ID", ctx->span_hex);
    set(env, "EDGETRACE_PARENT_ID", ctx->parent_hex);
    set(env, "EDGETRACE_SAMPLED", ctx->trace.sampled ? "1" : "0");
    set(env, "EDGETRACE_TRACEPARENT", ctx->traceparent);
    set(env, "EDGETRACE_SAMPLING",
        (const char *) et_sampling_name(ctx->sampling).data);
}


/* the client request's tracing, decided once with its final config */

static edgetrace_ctx_t *
edgetrace_decide(request_rec *r)
{
    int                    rc, mode;
    char                  *p;
    size_t                 ts_len;
    unsigned               n, mask;
    edgetrace_req_t       *req;
    edgetrace_ctx_t       *ctx;
    const char            *why;
    et_prop_found_t        found;
    et_context_t           parent;
    edgetrace_dir_conf_t  *dc;
    const unsigned        *formats;
    uint8_t                ts[ET_TRACESTATE_MAX];

    req = edgetrace_req(r, 1);

    ctx = apr_pcalloc(r->pool, sizeof(edgetrace_ctx_t));
    req->ctx = ctx;
    ctx->decided = 1;

    dc = EDGETRACE_DIR_CONF(r);

    if (dc->enable != 1) {
        return ctx;
    }

    mode = dc->context != EDGETRACE_UNSET ? dc->context : ET_CONTEXT_DEFAULT;

    ctx->traced = 1;
    ctx->writes = et_prop_context_writes(mode);

    rc = ET_DECLINED;
    ts_len = 0;

    if (et_prop_context_reads(mode)) {
        edgetrace_formats(dc, &formats, &n, &mask);
        edgetrace_scan_headers(r, mask, &found);

        why = NULL;
        rc = et_prop_extract(&found, formats, n, &dc->sampler, &parent,
                             ts, &ts_len, &why);

        if (rc == ET_DECLINED && why) {
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                          "incoming context ignored: %s", why);
        }
    }

    et_trace_begin(&ctx->trace, rc, &parent, &dc->sampler);

    if (ctx->trace.sampled) {
        ctx->sampling = ET_SAMPLING_HEAD;

        /*
         * A new root, before anything is written to a backend; the clock
         * now, not r->request_time, which a client slow to send its
         * headers would set too far back for the shared bucket.
         */
        if (edgetrace_limit.interval_ns
            && et_limit_trace(&ctx->trace,
                              edgetrace_metrics ? &edgetrace_metrics->limit
                                                : NULL,
                              &edgetrace_limit, et_clock_now_ns()))
        {
            ctx->sampling = ET_SAMPLING_LIMITED;
            et_metrics_count_limited(edgetrace_counters, edgetrace_threaded);
        }
    }

    if (rc == ET_OK && ts_len) {
        p = apr_pmemdup(r->pool, ts, ts_len);
        ctx->trace.tracestate.data = (const uint8_t *) p;
        ctx->trace.tracestate.len = ts_len;

    } else {
        ctx->trace.tracestate.len = 0;
    }

    et_span_id_new(ctx->client_id);

    *et_hex_encode16((uint8_t *) ctx->trace_hex, ctx->trace.trace_id) = '\0';
    *et_hex_encode8((uint8_t *) ctx->span_hex, ctx->trace.span_id) = '\0';

    if (ctx->trace.has_parent) {
        *et_hex_encode8((uint8_t *) ctx->parent_hex, ctx->trace.parent_id)
            = '\0';
    }

    *et_traceparent_write((uint8_t *) ctx->traceparent, ctx->trace.trace_id,
                          ctx->client_id, ctx->trace.flags) = '\0';

    et_metrics_count_request(edgetrace_counters, ctx->trace.sampled,
                             edgetrace_threaded);

    return ctx;
}


/*
 * The header parser runs for client requests and again after each
 * internal redirect, with the per-directory configuration final.
 */

int
edgetrace_header_parser(request_rec *r)
{
    edgetrace_ctx_t  *ctx;

    if (r->prev) {
        ctx = edgetrace_ctx(r);

        if (ctx && ctx->traced) {
            edgetrace_set_env(r, ctx);
        }

        return DECLINED;
    }

    ctx = edgetrace_ctx(r);

    if (ctx == NULL) {
        ctx = edgetrace_decide(r);
    }

    if (ctx->traced) {
        edgetrace_set_env(r, ctx);
    }

    return DECLINED;
}


/*
 * At the end of a request head sampling did not sample: whether the
 * EdgeTraceKeep rules of the request that answered ("last") keep it
 * (docs/httpd.md "EdgeTraceKeep").  The clock is read only for a slower=
 * rule, into "now" (0 otherwise).
 */
static int
edgetrace_kept(request_rec *r, request_rec *last, edgetrace_ctx_t *ctx,
    edgetrace_keep_t *keep, uint64_t *now)
{
    int               i;
    const char       *err;
    ap_expr_info_t  **expr;

    *now = 0;

    if (et_keep_timed(&keep->rules)) {
        *now = et_clock_now_ns();
    }

    if (et_keep_match(&keep->rules,
                      last->status > 0 ? (unsigned) last->status : 0,
                      *now - (uint64_t) r->request_time * 1000))
    {
        goto kept;
    }

    if (keep->exprs) {
        expr = (ap_expr_info_t **) keep->exprs->elts;

        for (i = 0; i < keep->exprs->nelts; i++) {
            err = NULL;

            if (ap_expr_exec(last, expr[i], &err) > 0) {
                goto kept;
            }

            if (err) {
                ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                              "EdgeTraceKeep: %s", err);
            }
        }
    }

    return 0;

kept:

    ctx->sampling = ET_SAMPLING_OUTCOME;
    et_metrics_count_kept(edgetrace_counters, edgetrace_threaded);

    /* for a CustomLog's %{EDGETRACE_SAMPLING}e, which reads "last" */
    apr_table_setn(last->subprocess_env, "EDGETRACE_SAMPLING", "outcome");

    if (last != r) {
        apr_table_setn(r->subprocess_env, "EDGETRACE_SAMPLING", "outcome");
    }

    return 1;
}


int
edgetrace_log_transaction(request_rec *r)
{
    uint64_t               now;
    request_rec           *last;
    edgetrace_req_t       *req;
    edgetrace_ctx_t       *ctx;
    edgetrace_client_t    *cl;
    edgetrace_dir_conf_t  *dc;

    if (r->main || r->prev) {
        return DECLINED;
    }

    req = edgetrace_req(r, 0);
    ctx = req ? req->ctx : NULL;

    if (ctx == NULL) {
        /*
         * Ended before the header parser (a redirect by the core, a URL
         * mapping error): decided now.  Requests httpd could not read are
         * not traced.
         */
        if (r->method == NULL || r->the_request == NULL
            || r->status == HTTP_BAD_REQUEST
            || r->status == HTTP_REQUEST_TIME_OUT
            || r->status == HTTP_REQUEST_URI_TOO_LARGE
            || r->status == HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE)
        {
            return DECLINED;
        }

        ctx = edgetrace_decide(r);
    }

    if (!ctx->traced || edgetrace_exporter == NULL) {
        return DECLINED;
    }

    now = 0;

    if (!ctx->trace.sampled) {
        /* the request that answered: the last internal redirect */
        for (last = r; last->next; last = last->next) { /* void */ }

        dc = EDGETRACE_DIR_CONF(last);

        if (dc->keep == NULL || !edgetrace_kept(r, last, ctx, dc->keep, &now))
        {
            return DECLINED;
        }
    }

    if (now == 0) {
        now = et_clock_now_ns();
    }

    /* the exchanges mod_proxy did not report the end of, then the rest */
    for (cl = ctx->clients; cl; cl = cl->next) {
        if (cl->done) {
            continue;
        }

        if (!cl->ended) {
            if (cl->open) {
                cl->open = 0;
                cl->status = 0;
            }

            cl->end_ns = now;
        }

        edgetrace_export_client(r, ctx, cl);
    }

    edgetrace_export_server(r, ctx, now);

    return DECLINED;
}


/* SetHandler edgetrace-status: the counters of every child */

int
edgetrace_status_handler(request_rec *r)
{
    size_t            n;
    et_metrics_sum_t  sum;
    uint8_t           buf[ET_METRICS_TEXT_MAX];

    if (r->handler == NULL
        || strcmp(r->handler, EDGETRACE_STATUS_HANDLER) != 0)
    {
        return DECLINED;
    }

    r->allowed |= (AP_METHOD_BIT << M_GET);

    if (r->method_number != M_GET) {
        return HTTP_METHOD_NOT_ALLOWED;
    }

    if (edgetrace_metrics == NULL) {
        return HTTP_SERVICE_UNAVAILABLE;
    }

    et_metrics_sum(edgetrace_metrics, &sum);
    n = et_metrics_format(&sum, buf, sizeof(buf));

    ap_set_content_type(r, ET_METRICS_CONTENT_TYPE);
    ap_set_content_length(r, n);
    apr_table_setn(r->headers_out, "Cache-Control", ET_METRICS_CACHE_CONTROL);

    if (!r->header_only) {
        ap_rwrite(buf, (int) n, r);
    }

    return OK;
}
