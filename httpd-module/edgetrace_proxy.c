/*
 * mod_edgetrace: the client spans of the requests mod_proxy passes to a
 * backend, one per request.  Its tries are counted in proxy's pre_request
 * hook (once per balancer try), the context is written in proxy's fixups
 * hook (into the copy of headers_in that the backend request is built
 * from) and the span ends in request_status, once the failover loop is
 * over.
 */

#include "edgetrace_private.h"


/*
 * The last try's peer (host:port) and URL, in the root request's pool: the
 * balancer names the worker it picked (the URL is then the worker's and
 * the path of r->filename), else r->filename is "proxy:" and the URL.
 */
static void
edgetrace_client_target(request_rec *r, apr_pool_t *pool,
    edgetrace_client_t *cl)
{
    size_t       n;
    const char  *u, *p, *path, *proxied;

    proxied = r->filename && strncmp(r->filename, "proxy:", 6) == 0
              ? r->filename + 6 : NULL;

    u = apr_table_get(r->subprocess_env, "BALANCER_WORKER_NAME");

    if (u == NULL) {
        if (proxied == NULL) {
            return;
        }

        u = proxied;
        proxied = NULL;
    }

    p = strstr(u, "://");
    p = p ? p + 3 : u;
    n = strcspn(p, "/?#");

    cl->peer.data = apr_pmemdup(pool, p, n);
    cl->peer.len = n;

    /* the balancer's worker URL, then the path the request was given */
    path = proxied ? strstr(proxied, "://") : NULL;
    path = path ? path + 3 + strcspn(path + 3, "/?#") : "";

    cl->url.data = (const uint8_t *) apr_pstrcat(pool, u, path, NULL);
    cl->url.len = strlen((const char *) cl->url.data);
}


static void
edgetrace_client_close_try(request_rec *r, edgetrace_client_t *cl,
    unsigned status, uint64_t now)
{
    et_try_t  *ev;

    cl->open = 0;
    cl->status = status;

    edgetrace_client_target(r, edgetrace_root(r)->pool, cl);

    if (cl->tries > ET_TRIES_MAX) {
        return;
    }

    ev = &cl->events[cl->tries - 1];
    ev->peer = cl->peer;

    if (ev->peer.len == 0) {
        ev->peer.data = (const uint8_t *) "";
    }

    ev->status = status;
    ev->connect_ms = -1;
    ev->response_ms = (int64_t) ((now - cl->try_start_ns) / 1000000);
}


int
edgetrace_proxy_pre_request(proxy_worker **worker, proxy_balancer **balancer,
    request_rec *r, proxy_server_conf *conf, char **url)
{
    uint64_t      now;
    edgetrace_req_t     *req;
    edgetrace_ctx_t     *ctx;
    edgetrace_client_t  *cl;
    request_rec  *root;

    (void) worker;
    (void) balancer;
    (void) conf;
    (void) url;

    ctx = edgetrace_ctx(r);

    if (ctx == NULL || !ctx->traced) {
        return DECLINED;
    }

    now = et_clock_now_ns();
    req = edgetrace_req(r, 1);
    cl = req->client;

    if (cl == NULL) {
        root = edgetrace_root(r);

        cl = apr_pcalloc(root->pool, sizeof(edgetrace_client_t));
        /* a literal, or the client request's: it outlives a subrequest */
        cl->method = r->method;
        cl->start_ns = now;

        /* the id EDGETRACE_TRACEPARENT announced goes to the first one */
        if (!ctx->client_id_used && r->main == NULL) {
            memcpy(cl->span_id, ctx->client_id, ET_SPAN_ID_LEN);
            ctx->client_id_used = 1;

        } else {
            et_span_id_new(cl->span_id);
        }

        cl->next = ctx->clients;
        ctx->clients = cl;
        req->client = cl;

    } else if (cl->open) {
        /* the balancer tries another worker: the last try failed */
        edgetrace_client_close_try(r, cl, 0, now);
    }

    cl->open = 1;
    cl->tries++;
    cl->try_start_ns = now;

    if (cl->tries <= ET_TRIES_MAX) {
        cl->events[cl->tries - 1].header_ms = -1;
    }

    return DECLINED;
}


/*
 * The first output of a proxied request comes when the backend's response
 * header is in: the running try's header_ms.  The filter then leaves.
 */

apr_status_t
edgetrace_try_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    edgetrace_req_t     *req;
    edgetrace_client_t  *cl;

    req = edgetrace_req(f->r, 0);
    cl = req ? req->client : NULL;

    if (cl && cl->open && cl->tries <= ET_TRIES_MAX) {
        cl->events[cl->tries - 1].header_ms =
                (int64_t) ((et_clock_now_ns() - cl->try_start_ns) / 1000000);
    }

    ap_remove_output_filter(f);

    return ap_pass_brigade(f->next, bb);
}


void
edgetrace_insert_filter(request_rec *r)
{
    edgetrace_ctx_t  *ctx;

    if (r->proxyreq == PROXYREQ_NONE) {
        return;
    }

    ctx = edgetrace_ctx(r);

    /* an unsampled request's tries are timed when a rule may keep it */
    if (ctx && ctx->traced && (ctx->trace.sampled || edgetrace_keeps)) {
        ap_add_output_filter_handle(edgetrace_try_filter_handle, NULL, r,
                                    r->connection);
    }
}


/* runs while the backend request is built, on a copy of headers_in */

int
edgetrace_proxy_fixups(request_rec *r)
{
    int                    k;
    unsigned               mask, n;
    edgetrace_req_t       *req;
    edgetrace_ctx_t       *ctx;
    et_str_t               values[ET_HDRS];
    const char            *name;
    edgetrace_dir_conf_t  *dc;
    const unsigned        *formats;
    uint8_t                buf[ET_PROP_INJECT_SIZE];

    ctx = edgetrace_ctx(r);

    if (ctx == NULL || !ctx->traced || !ctx->writes) {
        return DECLINED;
    }

    req = edgetrace_req(r, 0);

    if (req == NULL || req->client == NULL) {
        return DECLINED;
    }

    dc = EDGETRACE_DIR_CONF(r);
    edgetrace_formats(dc, &formats, &n, &mask);

    mask = et_prop_inject_values(&ctx->trace, req->client->span_id, mask,
                                 buf, values);

    for (k = 0; k < ET_HDRS; k++) {
        if (!(mask & (1u << k))) {
            continue;
        }

        name = (const char *) et_prop_headers[k].name.data;

        if (values[k].len) {
            apr_table_set(r->headers_in, name,
                          apr_pstrmemdup(r->pool,
                                         (const char *) values[k].data,
                                         values[k].len));

        } else {
            apr_table_unset(r->headers_in, name);
        }
    }

    return DECLINED;
}


/* once per proxied request, after the failover loop */

int
edgetrace_proxy_request_status(int *status, request_rec *r)
{
    uint64_t             now;
    unsigned             code;
    edgetrace_req_t     *req;
    edgetrace_ctx_t     *ctx;
    edgetrace_client_t  *cl;

    ctx = edgetrace_ctx(r);
    req = edgetrace_req(r, 0);

    if (ctx == NULL || req == NULL || req->client == NULL
        || req->client->done)
    {
        return DECLINED;
    }

    cl = req->client;
    now = et_clock_now_ns();

    /* OK or DONE: a backend answered; an HTTP error: mod_proxy's own */
    code = (*status == OK || *status == DONE) ? (unsigned) r->status : 0;

    if (cl->open) {
        edgetrace_client_close_try(r, cl, code, now);
    }

    cl->end_ns = now;
    cl->ended = 1;

    /*
     * An unsampled request's waits for its end, where EdgeTraceKeep may
     * keep it (edgetrace_log_transaction()).
     */
    if (ctx->trace.sampled) {
        edgetrace_export_client(r, ctx, cl);
    }

    return DECLINED;
}
