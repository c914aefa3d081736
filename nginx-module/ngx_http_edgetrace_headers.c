/*
 * ngx_http_edgetrace_module: trace context in r->headers_in.
 *
 * The upstream modules forward every element of r->headers_in.headers, so
 * context goes upstream by writing that list: ours replaces whatever the
 * client sent under the same names, never a second value beside it.
 */


#include "ngx_http_edgetrace_module.h"


#define NGX_HTTP_EDGETRACE_TRACESTATE_LINES  32


static ngx_uint_t
ngx_http_edgetrace_is(ngx_table_elt_t *h, const char *name, size_t len)
{
    return h->key.len == len && h->lowcase_key
           && ngx_strncmp(h->lowcase_key, name, len) == 0;
}


/*
 * Continues the incoming context: NGX_OK with the trace id, the parent span
 * id, the flags and the tracestate in "ctx"; NGX_DECLINED when the request
 * carries no valid context (the trace restarts).
 */

ngx_int_t
ngx_http_edgetrace_extract(ngx_http_request_t *r,
    ngx_http_edgetrace_ctx_t *ctx)
{
    u_char            *buf;
    size_t             len;
    et_str_t           states[NGX_HTTP_EDGETRACE_TRACESTATE_LINES];
    ngx_uint_t         i, nparents, nstates;
    et_w3c_rc_t        rc;
    et_context_t       parent;
    ngx_list_part_t   *part;
    ngx_table_elt_t   *h, *tp;

    tp = NULL;
    nparents = 0;
    nstates = 0;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;

            if (part->nelts == 0) {
                i = (ngx_uint_t) -1;
                continue;
            }
        }

        if (ngx_http_edgetrace_is(&h[i], "traceparent", 11)) {
            tp = &h[i];
            nparents++;

        } else if (ngx_http_edgetrace_is(&h[i], "tracestate", 10)) {
            if (nstates < NGX_HTTP_EDGETRACE_TRACESTATE_LINES) {
                states[nstates].data = h[i].value.data;
                states[nstates].len = h[i].value.len;
            }

            nstates++;
        }
    }

    /* two traceparent lines cannot both be the parent: restart */
    if (nparents != 1) {
        return NGX_DECLINED;
    }

    rc = et_traceparent_parse(tp->value.data, tp->value.len, &parent);

    if (rc != ET_W3C_OK) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "edgetrace: traceparent ignored: %s",
                       et_w3c_reason(rc));
        return NGX_DECLINED;
    }

    ngx_memcpy(ctx->trace_id, parent.trace_id, ET_TRACE_ID_LEN);
    ngx_memcpy(ctx->parent_id, parent.span_id, ET_SPAN_ID_LEN);
    ctx->flags = parent.flags;

    if (nstates == 0 || nstates > NGX_HTTP_EDGETRACE_TRACESTATE_LINES) {
        return NGX_OK;
    }

    buf = ngx_pnalloc(r->pool, ET_TRACESTATE_MAX);
    if (buf == NULL) {
        return NGX_OK;
    }

    len = 0;
    rc = et_tracestate_parse(states, nstates, buf, &len);

    if (rc == ET_W3C_OK && len) {
        ctx->tracestate.data = buf;
        ctx->tracestate.len = len;

    } else if (rc != ET_W3C_OK) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "edgetrace: tracestate dropped: %s",
                       et_w3c_reason(rc));
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_edgetrace_push(ngx_http_request_t *r, ngx_uint_t hash,
    const char *name, size_t len, u_char *value, size_t vlen)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_in.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = hash;
    h->key.data = (u_char *) name;
    h->key.len = len;
    h->lowcase_key = (u_char *) name;
    h->value.data = value;
    h->value.len = vlen;

    return NGX_OK;
}


/*
 * Writes "traceparent" (and the tracestate carried, when there is one) into
 * the request's headers, removing every other value of those names.  With
 * "copy" (a subrequest, whose list shares its parts with the main
 * request's) the list is always rebuilt in the request's own memory.
 */

ngx_int_t
ngx_http_edgetrace_inject(ngx_http_request_t *r, ngx_http_edgetrace_ctx_t *ctx,
    u_char *traceparent, ngx_uint_t copy)
{
    ngx_str_t                        ts;
    ngx_uint_t                       i, n, nparents, nstates;
    ngx_list_t                       old;
    ngx_list_part_t                 *part;
    ngx_table_elt_t                 *h, *tp, *st, *e;
    ngx_http_edgetrace_main_conf_t  *emcf;

    emcf = ngx_http_get_module_main_conf(r, ngx_http_edgetrace_module);

    /* a new root carries no tracestate */
    ts = ctx->tracestate;

    if (r->headers_in.headers.part.elts == NULL) {
        /* HTTP/0.9: nginx made no header list */
        if (ngx_list_init(&r->headers_in.headers, r->pool, 2,
                          sizeof(ngx_table_elt_t))
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    tp = NULL;
    st = NULL;
    n = 0;
    nparents = 0;
    nstates = 0;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;

            if (part->nelts == 0) {
                i = (ngx_uint_t) -1;
                continue;
            }
        }

        n++;

        if (ngx_http_edgetrace_is(&h[i], "traceparent", 11)) {
            tp = &h[i];
            nparents++;

        } else if (ngx_http_edgetrace_is(&h[i], "tracestate", 10)) {
            st = &h[i];
            nstates++;
        }
    }

    if (!copy && nparents <= 1 && (nstates == 0 || (nstates == 1 && ts.len))) {

        /* the common case: replace in place, or add */

        if (tp) {
            tp->value.data = traceparent;
            tp->value.len = ET_TRACEPARENT_LEN;

        } else if (ngx_http_edgetrace_push(r, emcf->traceparent_hash,
                                           "traceparent", 11, traceparent,
                                           ET_TRACEPARENT_LEN)
                   != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (st) {
            st->value = ts;
            return NGX_OK;
        }

        if (ts.len) {
            return ngx_http_edgetrace_push(r, emcf->tracestate_hash,
                                           "tracestate", 10, ts.data, ts.len);
        }

        return NGX_OK;
    }

    /*
     * Rebuild the list without the stale values.  The old elements stay in
     * the pool, so the r->headers_in pointers to them remain valid.
     */

    old = r->headers_in.headers;

    if (ngx_list_init(&r->headers_in.headers, r->pool, n + 2,
                      sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        r->headers_in.headers = old;
        return NGX_ERROR;
    }

    part = &old.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;

            if (part->nelts == 0) {
                i = (ngx_uint_t) -1;
                continue;
            }
        }

        if (ngx_http_edgetrace_is(&h[i], "traceparent", 11)
            || ngx_http_edgetrace_is(&h[i], "tracestate", 10))
        {
            continue;
        }

        e = ngx_list_push(&r->headers_in.headers);
        if (e == NULL) {
            return NGX_ERROR;
        }

        *e = h[i];
    }

    if (ngx_http_edgetrace_push(r, emcf->traceparent_hash, "traceparent", 11,
                                traceparent, ET_TRACEPARENT_LEN)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ts.len) {
        return ngx_http_edgetrace_push(r, emcf->tracestate_hash, "tracestate",
                                       10, ts.data, ts.len);
    }

    return NGX_OK;
}
