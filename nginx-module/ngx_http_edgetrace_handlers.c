/*
 * ngx_http_edgetrace_module: the phase handlers.
 */


#include "ngx_http_edgetrace_module.h"


static ngx_int_t ngx_http_edgetrace_post_subrequest(ngx_http_request_t *r,
    void *data, ngx_int_t rc);


/*
 * The first handler a main request meets (and the first again after every
 * internal redirect): the start time, as early as the module can take it.
 */

ngx_int_t
ngx_http_edgetrace_server_rewrite_handler(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t             *cln;
    ngx_http_edgetrace_ctx_t       *ctx;
    ngx_http_edgetrace_holder_t    *holder;
    ngx_http_edgetrace_srv_conf_t  *escf;

    if (r != r->main) {
        return NGX_DECLINED;
    }

    escf = ngx_http_get_module_srv_conf(r, ngx_http_edgetrace_module);

    if (!escf->maybe || ngx_http_edgetrace_get_ctx(r) != NULL) {
        return NGX_DECLINED;
    }

    /*
     * The context and the pool cleanup that marks it (what
     * ngx_pool_cleanup_add() would allocate) are taken from the worker's
     * recycled ones: a traced request takes no room in its own pool, which
     * would otherwise often need one more block for them.  The cleanup
     * gives the holder back when the pool is destroyed.
     */

    holder = ngx_http_edgetrace_free;

    if (holder != NULL) {
        ngx_http_edgetrace_free = holder->next;

    } else {
        holder = ngx_alloc(sizeof(ngx_http_edgetrace_holder_t),
                           r->connection->log);
        if (holder == NULL) {
            return NGX_DECLINED;
        }
    }

    ctx = &holder->ctx;
    ngx_memzero(ctx, sizeof(ngx_http_edgetrace_ctx_t));

    cln = &holder->cleanup;
    cln->handler = ngx_http_edgetrace_cleanup;
    cln->data = ctx;
    cln->next = r->pool->cleanup;
    r->pool->cleanup = cln;
    ctx->request = r;
    ctx->start_ns = et_clock_now_ns();

    ngx_http_set_ctx(r, ctx, ngx_http_edgetrace_module);

    return NGX_DECLINED;
}


/* the location is known: the request's tracing is decided once, here */

ngx_int_t
ngx_http_edgetrace_rewrite_handler(ngx_http_request_t *r)
{
    ngx_http_edgetrace_ctx_t  *ctx;

    if (r != r->main) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_edgetrace_get_ctx(r);

    if (ctx != NULL && !ctx->decided) {
        ngx_http_edgetrace_decide(r, ctx);
    }

    return NGX_DECLINED;
}


/*
 * Just before the content handler: a request that a content handler (an
 * upstream module among them) takes over gets its client span's start and,
 * when the module writes context, the headers the upstream will see.
 * Subrequests skip the access phase, but not this one.
 */

ngx_int_t
ngx_http_edgetrace_precontent_handler(ngx_http_request_t *r)
{
    ngx_http_edgetrace_ctx_t     *ctx;
    ngx_http_edgetrace_client_t  *cl;

    if (r->content_handler == NULL
        || r->content_handler == ngx_http_edgetrace_status_handler)
    {
        return NGX_DECLINED;
    }

    ctx = ngx_http_edgetrace_traced(r);

    if (ctx == NULL) {
        return NGX_DECLINED;
    }

    if (r == r->main) {
        return ngx_http_edgetrace_start_client(r, ctx);
    }

    if (ngx_http_edgetrace_find_client(ctx, r) != NULL) {
        return NGX_DECLINED;
    }

    cl = ngx_palloc(r->pool, sizeof(ngx_http_edgetrace_client_t));
    if (cl == NULL) {
        return NGX_DECLINED;
    }

    ngx_memzero(cl, sizeof(ngx_http_edgetrace_client_t));
    cl->request = r;
    et_span_id_new(cl->span_id);
    cl->start_ns = et_clock_now_ns();
    ngx_http_edgetrace_request_uri(r, &cl->uri);

    /* the subrequest's end is when its creator hears of it */
    cl->next_ps = r->post_subrequest;
    cl->ps.handler = ngx_http_edgetrace_post_subrequest;
    cl->ps.data = cl;
    r->post_subrequest = &cl->ps;

    cl->next = ctx->clients;
    ctx->clients = cl;

    if (ctx->writes) {
        (void) ngx_http_edgetrace_inject(r, ctx, cl->span_id,
                                         cl->traceparent, 1);

    } else {
        et_traceparent_write(cl->traceparent, ctx->trace.trace_id,
                             cl->span_id, ctx->trace.flags);
    }

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_edgetrace_post_subrequest(ngx_http_request_t *r, void *data,
    ngx_int_t rc)
{
    ngx_http_edgetrace_client_t  *cl = data;

    cl->end_ns = et_clock_now_ns();

    if (cl->next_ps && cl->next_ps->handler) {
        return cl->next_ps->handler(r, cl->next_ps->data, rc);
    }

    return rc;
}


/*
 * The log phase of the main request: every subrequest is done by now, so
 * the client spans of subrequests (which run no log phase of their own) are
 * collected here too.
 */

ngx_int_t
ngx_http_edgetrace_log_handler(ngx_http_request_t *r)
{
    uint64_t                        now;
    ngx_http_edgetrace_ctx_t       *ctx;
    ngx_http_edgetrace_client_t    *cl, current;
    ngx_http_edgetrace_loc_conf_t  *elcf;

    if (r != r->main || ngx_http_edgetrace_exporter == NULL) {
        return NGX_OK;
    }

    ctx = ngx_http_edgetrace_traced(r);

    if (ctx == NULL) {
        return NGX_OK;
    }

    if (ctx->trace.sampled) {
        now = et_clock_now_ns();

    } else {
        /*
         * Kept by its outcome, with the ids it had (docs/nginx.md); a
         * location without rules costs this test only.
         */
        elcf = ngx_http_get_module_loc_conf(r, ngx_http_edgetrace_module);

        if (elcf->keep == NULL
            || !ngx_http_edgetrace_kept(r, ctx, elcf->keep, &now))
        {
            return NGX_OK;
        }

        if (now == 0) {
            now = et_clock_now_ns();
        }
    }

    ngx_http_edgetrace_export_server(r, ctx, now);

    if (ctx->client_start_ns && r->upstream_states
        && r->upstream_states->nelts > ctx->client_first)
    {
        ngx_memzero(&current, sizeof(ngx_http_edgetrace_client_t));
        current.request = r;
        ngx_memcpy(current.span_id, ctx->client_id, ET_SPAN_ID_LEN);
        current.start_ns = ctx->client_start_ns;
        current.end_ns = now;
        current.first = ctx->client_first;
        current.uri = ctx->client_uri;

        ngx_http_edgetrace_export_client(ctx, &current);
    }

    for (cl = ctx->clients; cl; cl = cl->next) {
        if (cl->request->upstream_states
            && cl->request->upstream_states->nelts > cl->first)
        {
            if (cl->end_ns == 0) {
                cl->end_ns = now;
            }

            ngx_http_edgetrace_export_client(ctx, cl);
        }
    }

    return NGX_OK;
}
