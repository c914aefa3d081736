/*
 * ngx_http_edgetrace_module: $edgetrace_* variables.
 *
 * They work from the rewrite phase on: the first one evaluated decides the
 * request's tracing if the rewrite handler has not yet.  Empty when the
 * request is not traced.
 */


#include "ngx_http_edgetrace_module.h"


#define NGX_HTTP_EDGETRACE_VAR_TRACE_ID     0
#define NGX_HTTP_EDGETRACE_VAR_SPAN_ID      1
#define NGX_HTTP_EDGETRACE_VAR_PARENT_ID    2
#define NGX_HTTP_EDGETRACE_VAR_SAMPLED      3
#define NGX_HTTP_EDGETRACE_VAR_TRACEPARENT  4
#define NGX_HTTP_EDGETRACE_VAR_SAMPLING     5


static ngx_int_t ngx_http_edgetrace_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


static ngx_http_variable_t  ngx_http_edgetrace_vars[] = {

    { ngx_string("edgetrace_trace_id"), NULL, ngx_http_edgetrace_variable,
      NGX_HTTP_EDGETRACE_VAR_TRACE_ID, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("edgetrace_span_id"), NULL, ngx_http_edgetrace_variable,
      NGX_HTTP_EDGETRACE_VAR_SPAN_ID, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("edgetrace_parent_id"), NULL, ngx_http_edgetrace_variable,
      NGX_HTTP_EDGETRACE_VAR_PARENT_ID, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("edgetrace_sampled"), NULL, ngx_http_edgetrace_variable,
      NGX_HTTP_EDGETRACE_VAR_SAMPLED, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("edgetrace_traceparent"), NULL, ngx_http_edgetrace_variable,
      NGX_HTTP_EDGETRACE_VAR_TRACEPARENT, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("edgetrace_sampling"), NULL, ngx_http_edgetrace_variable,
      NGX_HTTP_EDGETRACE_VAR_SAMPLING, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


static ngx_int_t
ngx_http_edgetrace_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                       *p;
    et_str_t                      name;
    ngx_http_edgetrace_ctx_t     *ctx;
    ngx_http_edgetrace_client_t  *cl;

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->len = 0;
    v->data = (u_char *) "";

    ctx = ngx_http_edgetrace_traced(r);

    if (ctx == NULL) {
        return NGX_OK;
    }

    switch (data) {

    case NGX_HTTP_EDGETRACE_VAR_TRACE_ID:
        p = ngx_pnalloc(r->pool, 2 * ET_TRACE_ID_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        v->len = et_hex_encode16(p, ctx->trace.trace_id) - p;
        v->data = p;
        break;

    case NGX_HTTP_EDGETRACE_VAR_SPAN_ID:
    case NGX_HTTP_EDGETRACE_VAR_PARENT_ID:
        if (data == NGX_HTTP_EDGETRACE_VAR_PARENT_ID
            && !ctx->trace.has_parent)
        {
            break;
        }

        p = ngx_pnalloc(r->pool, 2 * ET_SPAN_ID_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        v->len = et_hex_encode8(p, data == NGX_HTTP_EDGETRACE_VAR_SPAN_ID
                                   ? ctx->trace.span_id : ctx->trace.parent_id)
                 - p;
        v->data = p;
        break;

    case NGX_HTTP_EDGETRACE_VAR_SAMPLED:
        v->len = 1;
        v->data = (u_char *) (ctx->trace.sampled ? "1" : "0");
        break;

    case NGX_HTTP_EDGETRACE_VAR_SAMPLING:
        name = et_sampling_name(ctx->sampling);
        v->len = name.len;
        v->data = (u_char *) name.data;
        break;

    default: /* NGX_HTTP_EDGETRACE_VAR_TRACEPARENT */
        cl = (r != r->main) ? ngx_http_edgetrace_find_client(ctx, r) : NULL;

        v->len = ET_TRACEPARENT_LEN;
        v->data = cl ? cl->traceparent
                     : ngx_http_edgetrace_traceparent(ctx);
        break;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_edgetrace_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_edgetrace_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}
