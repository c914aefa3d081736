/*
 * ngx_http_edgetrace_module: the main request's context, found again after
 * an internal redirect, and the decision whether the request is traced.
 */


#include "ngx_http_edgetrace_module.h"


/* the holders of destroyed pools, for the next requests' contexts */
ngx_http_edgetrace_holder_t  *ngx_http_edgetrace_free;


/*
 * The main request's context.  An internal redirect zeroes r->ctx, and so
 * does a response a filter finishes itself (ngx_http_filter_finalize_request:
 * a failed If-Match, say), so the context is also kept as a pool cleanup's
 * data and found there again, as realip finds its own.
 */

ngx_http_edgetrace_ctx_t *
ngx_http_edgetrace_get_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t        *cln;
    ngx_http_edgetrace_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_edgetrace_module);

    if (ctx != NULL || !(r->internal || r->filter_finalize)) {
        return ctx;
    }

    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_edgetrace_cleanup) {
            ctx = cln->data;

            if (ctx->request == r) {
                ngx_http_set_ctx(r, ctx, ngx_http_edgetrace_module);
                return ctx;
            }
        }
    }

    return NULL;
}


void
ngx_http_edgetrace_cleanup(void *data)
{
    ngx_http_edgetrace_holder_t  *holder;

    /*
     * Back to the worker's free list.  ngx_destroy_pool() reads this
     * cleanup's "next" after the call, so the holder is only linked, never
     * freed: the list is as long as the most requests ever traced at once.
     */

    holder = (ngx_http_edgetrace_holder_t *)
                 ((u_char *) data - offsetof(ngx_http_edgetrace_holder_t, ctx));

    holder->next = ngx_http_edgetrace_free;
    ngx_http_edgetrace_free = holder;
}


/* the main request's context when the request is traced, else NULL */

ngx_http_edgetrace_ctx_t *
ngx_http_edgetrace_traced(ngx_http_request_t *r)
{
    ngx_http_edgetrace_ctx_t  *ctx;

    ctx = ngx_http_edgetrace_get_ctx(r->main);

    if (ctx == NULL) {
        return NULL;
    }

    if (!ctx->decided) {
        ngx_http_edgetrace_decide(r->main, ctx);
    }

    return ctx->traced ? ctx : NULL;
}


/*
 * The client span id and the traceparent the main request's upstream gets
 * (or would get), made when first needed: a request that reaches no
 * upstream and whose $edgetrace_traceparent nobody reads never pays for
 * them.
 */

void
ngx_http_edgetrace_client_id(ngx_http_edgetrace_ctx_t *ctx)
{
    if (!ctx->has_client_id) {
        et_span_id_new(ctx->client_id);
        ctx->has_client_id = 1;
    }
}


u_char *
ngx_http_edgetrace_traceparent(ngx_http_edgetrace_ctx_t *ctx)
{
    ngx_http_edgetrace_client_id(ctx);

    if (!ctx->has_traceparent) {
        et_traceparent_write(ctx->traceparent, ctx->trace.trace_id,
                             ctx->client_id, ctx->trace.flags);
        ctx->has_traceparent = 1;
    }

    return ctx->traceparent;
}


ngx_http_edgetrace_client_t *
ngx_http_edgetrace_find_client(ngx_http_edgetrace_ctx_t *ctx,
    ngx_http_request_t *r)
{
    ngx_http_edgetrace_client_t  *cl;

    for (cl = ctx->clients; cl; cl = cl->next) {
        if (cl->request == r) {
            return cl;
        }
    }

    return NULL;
}


static ngx_uint_t
ngx_http_edgetrace_true(ngx_str_t *v)
{
    return v->len != 0 && !(v->len == 1 && v->data[0] == '0');
}


void
ngx_http_edgetrace_decide(ngx_http_request_t *r, ngx_http_edgetrace_ctx_t *ctx)
{
    int                              named;
    ngx_int_t                        rc;
    ngx_str_t                        v;
    et_context_t                     parent;
    ngx_uint_t                       mode;
    ngx_http_edgetrace_loc_conf_t   *elcf;
    ngx_http_edgetrace_main_conf_t  *emcf;

    ctx->decided = 1;

    elcf = ngx_http_get_module_loc_conf(r, ngx_http_edgetrace_module);

    switch (elcf->enable) {

    case NGX_HTTP_EDGETRACE_OFF:
        return;

    case NGX_HTTP_EDGETRACE_VAR:
        if (ngx_http_complex_value(r, elcf->enable_value, &v) != NGX_OK
            || !ngx_http_edgetrace_true(&v))
        {
            return;
        }

        break;

    default:
        break;
    }

    mode = elcf->context;

    if (mode == NGX_HTTP_EDGETRACE_CTX_VAR) {

        /* a value that names no mode: inject, the one that trusts nothing */
        mode = ET_CONTEXT_INJECT;

        if (ngx_http_complex_value(r, elcf->context_value, &v) == NGX_OK) {
            named = et_prop_context_parse(v.data, v.len);

            if (named >= 0) {
                mode = named;
            }
        }
    }

    ctx->traced = 1;
    ctx->mode = mode;
    ctx->writes = et_prop_context_writes(mode);

    rc = ET_DECLINED;

    if (et_prop_context_reads(mode)) {
        rc = ngx_http_edgetrace_extract(r, ctx, &parent);
    }

    /* continued, or a new root (sampled by the client's B3 decision or ours) */
    et_trace_begin(&ctx->trace, rc, &parent, &elcf->sampler);

    if (ctx->trace.sampled) {
        ctx->sampling = ET_SAMPLING_HEAD;

        /* a new root, before anything is written upstream */
        emcf = ngx_http_get_module_main_conf(r, ngx_http_edgetrace_module);

        if (emcf->limit.interval_ns
            && et_limit_trace(&ctx->trace, ngx_http_edgetrace_metrics
                                           ? &ngx_http_edgetrace_metrics->limit
                                           : NULL,
                              &emcf->limit, ctx->start_ns))
        {
            ctx->sampling = ET_SAMPLING_LIMITED;
            et_metrics_count_limited(ngx_http_edgetrace_counters, 0);
        }
    }

    et_metrics_count_request(ngx_http_edgetrace_counters, ctx->trace.sampled,
                             0);
}


/*
 * At the log phase of a request head sampling did not sample: whether the
 * edgetrace_keep rules of its location ("keep", not NULL) keep it
 * (docs/nginx.md "edgetrace_keep").  The clock is read only for a slower=
 * rule, into "now" (0 otherwise).
 */

ngx_uint_t
ngx_http_edgetrace_kept(ngx_http_request_t *r, ngx_http_edgetrace_ctx_t *ctx,
    ngx_http_edgetrace_keep_t *keep, uint64_t *now)
{
    ngx_int_t                  *index;
    ngx_uint_t                  i;
    ngx_str_t                   v;
    ngx_http_variable_value_t  *vv;

    *now = 0;

    if (et_keep_timed(&keep->rules)) {
        *now = et_clock_now_ns();
    }

    if (et_keep_match(&keep->rules, ngx_http_edgetrace_status_code(r),
                      *now - ctx->start_ns))
    {
        goto kept;
    }

    if (keep->variables) {
        index = keep->variables->elts;

        for (i = 0; i < keep->variables->nelts; i++) {
            vv = ngx_http_get_indexed_variable(r, index[i]);

            if (vv == NULL || vv->not_found) {
                continue;
            }

            v.len = vv->len;
            v.data = vv->data;

            if (ngx_http_edgetrace_true(&v)) {
                goto kept;
            }
        }
    }

    return 0;

kept:

    ctx->sampling = ET_SAMPLING_OUTCOME;
    et_metrics_count_kept(ngx_http_edgetrace_counters, 0);

    return 1;
}
