/*
 * ngx_http_edgetrace_module: trace context in r->headers_in.
 *
 * The upstream modules forward every element of r->headers_in.headers, so
 * context goes upstream by writing that list: ours replaces whatever the
 * client sent under the same names, never a second value beside it.  Which
 * headers carry context, how they are read and what they carry upstream
 * is the core's (et_propagation.h): this file walks nginx's list.
 */


#include "ngx_http_edgetrace_module.h"


/* what one walk over the request's header list found */
typedef struct {
    ngx_uint_t        total;
    ngx_uint_t        found;            /* any of them */
    ngx_table_elt_t  *first[ET_HDRS];   /* when found.count */
    et_prop_found_t   values;
} ngx_http_edgetrace_scan_t;


static ngx_uint_t
ngx_http_edgetrace_formats_mask(ngx_http_request_t *r)
{
    ngx_http_edgetrace_loc_conf_t  *elcf;

    elcf = ngx_http_get_module_loc_conf(r, ngx_http_edgetrace_module);

    return elcf->formats_mask;
}


static void
ngx_http_edgetrace_scan(ngx_http_request_t *r, ngx_uint_t formats,
    ngx_http_edgetrace_scan_t *scan)
{
    ngx_int_t         k;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    /* first[] and the values are written as they are found */
    scan->total = 0;
    scan->found = 0;
    et_prop_found_init(&scan->values);

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

        scan->total++;

        k = et_prop_header_find(h[i].key.data, h[i].key.len, formats);

        if (k < 0) {
            continue;
        }

        scan->found = 1;

        if (scan->values.count[k] == 0) {
            scan->first[k] = &h[i];
        }

        et_prop_found_add(&scan->values, k, h[i].value.data, h[i].value.len);
    }
}


/* the elements of the request's header list */

static ngx_uint_t
ngx_http_edgetrace_count(ngx_http_request_t *r)
{
    ngx_uint_t        n;
    ngx_list_part_t  *part;

    n = 0;

    for (part = &r->headers_in.headers.part; part; part = part->next) {
        n += part->nelts;
    }

    return n;
}


/*
 * Continues the incoming context, trying the configured formats in their
 * order (et_prop_extract()): ET_OK with the parent in "parent" and the
 * tracestate carried in ctx->trace; ET_PROP_DECISION when the first valid
 * format carries only a sampling decision (B3 "0", "1", "d"), in
 * parent->flags; ET_DECLINED when no format is valid (the trace restarts).
 */

ngx_int_t
ngx_http_edgetrace_extract(ngx_http_request_t *r,
    ngx_http_edgetrace_ctx_t *ctx, et_context_t *parent)
{
    u_char                         *ts;
    size_t                          len;
    ngx_int_t                       rc;
    ngx_uint_t                      formats;
    const char                     *why;
    ngx_http_edgetrace_scan_t       scan;
    ngx_http_edgetrace_loc_conf_t  *elcf;

    elcf = ngx_http_get_module_loc_conf(r, ngx_http_edgetrace_module);

    formats = ngx_http_edgetrace_formats_mask(r);
    ngx_http_edgetrace_scan(r, formats, &scan);

    /* the common case, remembered so that injection need not scan again */
    if (!scan.found) {
        ctx->clean_formats = formats;
        ctx->clean_n = scan.total;
        ctx->clean_elts = r->headers_in.headers.part.elts;
        return ET_DECLINED;
    }

    ts = NULL;

    if (scan.values.count[ET_HDR_TRACESTATE]) {
        ts = ngx_pnalloc(r->pool, ET_TRACESTATE_MAX);
        if (ts == NULL) {
            scan.values.count[ET_HDR_TRACESTATE] = 0;
        }
    }

    len = 0;
    why = NULL;

    rc = et_prop_extract(&scan.values, elcf->formats, elcf->nformats,
                         &elcf->sampler, parent, ts, &len, &why);

    if (rc == ET_DECLINED && why) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "edgetrace: incoming context ignored: %s", why);
    }

    if (rc == ET_OK && len) {
        ctx->trace.tracestate.data = ts;
        ctx->trace.tracestate.len = len;
    }

    return rc;
}


static ngx_int_t
ngx_http_edgetrace_push(ngx_http_request_t *r, ngx_uint_t hash,
    const et_prop_header_t *eh, et_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_in.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = hash;
    h->key.len = eh->name.len;
    h->key.data = (u_char *) eh->name.data;
    h->lowcase_key = (u_char *) eh->lowcase.data;
    h->value.len = value->len;
    h->value.data = (u_char *) value->data;

    return NGX_OK;
}


/*
 * Writes the headers of the configured formats for the client span
 * "span_id" into the request's headers, removing every other value of
 * those names, and the span's traceparent into "traceparent", whatever
 * else fails (ET_TRACEPARENT_LEN bytes that live as long as the request:
 * the upstream reads the values later).  With "copy" (a subrequest, whose
 * list shares its parts with the main request's) the list is always
 * rebuilt in the request's own memory.
 */

ngx_int_t
ngx_http_edgetrace_inject(ngx_http_request_t *r, ngx_http_edgetrace_ctx_t *ctx,
    const uint8_t *span_id, u_char *traceparent, ngx_uint_t copy)
{
    u_char                          *buf;
    ngx_int_t                        k;
    et_str_t                         values[ET_HDRS];
    ngx_uint_t                       i, formats, mask, in_place;
    ngx_list_t                       old;
    ngx_list_part_t                 *part;
    ngx_table_elt_t                 *h, *e;
    ngx_http_edgetrace_scan_t        scan;
    ngx_http_edgetrace_main_conf_t  *emcf;

    /*
     * What each header of the configured formats is to carry (len 0:
     * none), written after the traceparent: only b3 needs more room.
     */

    formats = ngx_http_edgetrace_formats_mask(r);
    buf = traceparent;

    if (et_prop_inject_size(formats) > ET_TRACEPARENT_LEN) {
        buf = ngx_pnalloc(r->pool, et_prop_inject_size(formats));
        if (buf == NULL) {
            et_traceparent_write(traceparent, ctx->trace.trace_id, span_id,
                                 ctx->trace.flags);
            return NGX_ERROR;
        }
    }

    mask = et_prop_inject_values(&ctx->trace, span_id, formats, buf, values);

    if (buf != traceparent) {
        ngx_memcpy(traceparent, buf, ET_TRACEPARENT_LEN);
    }

    emcf = ngx_http_get_module_main_conf(r, ngx_http_edgetrace_module);

    if (r->headers_in.headers.part.elts == NULL) {
        /* HTTP/0.9: nginx made no header list */
        if (ngx_list_init(&r->headers_in.headers, r->pool, 2,
                          sizeof(ngx_table_elt_t))
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    /*
     * Extraction scanned this very list and found none of these headers:
     * unless the list was rebuilt or grew since (another module's work),
     * it still holds none, and the scan is not repeated.  Once ours are
     * added, the next injection (after an internal redirect) scans.
     */

    if (!copy
        && ctx->clean_elts != NULL
        && ctx->clean_elts == r->headers_in.headers.part.elts
        && (formats & ~(ngx_uint_t) ctx->clean_formats) == 0
        && ngx_http_edgetrace_count(r) == ctx->clean_n)
    {
        et_prop_found_init(&scan.values);
        scan.total = ctx->clean_n;
        scan.found = 0;

    } else {
        ngx_http_edgetrace_scan(r, formats, &scan);
    }

    ctx->clean_elts = NULL;

    /*
     * The common case: each name at most once, and replaced in place.
     * Only the headers of "mask" were looked for: the loops end at its
     * last.
     */

    in_place = !copy;

    for (k = 0; scan.found && (mask >> k); k++) {
        if (scan.values.count[k] > 1
            || (scan.values.count[k] == 1 && values[k].len == 0))
        {
            in_place = 0;
        }
    }

    if (in_place) {
        for (k = 0; mask >> k; k++) {
            if (scan.values.count[k]) {
                scan.first[k]->value.len = values[k].len;
                scan.first[k]->value.data = (u_char *) values[k].data;

            } else if (values[k].len
                       && ngx_http_edgetrace_push(r, emcf->hashes[k],
                                      &et_prop_headers[k], &values[k])
                          != NGX_OK)
            {
                return NGX_ERROR;
            }
        }

        return NGX_OK;
    }

    /*
     * Rebuild the list without the stale values.  The old elements stay in
     * the pool, so the r->headers_in pointers to them remain valid; a
     * subrequest's list shares its parts with the main request's, so it
     * is never changed in place.
     */

    old = r->headers_in.headers;

    if (ngx_list_init(&r->headers_in.headers, r->pool,
                      scan.total + ET_HDRS,
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

        if (et_prop_header_find(h[i].key.data, h[i].key.len, formats) >= 0) {
            continue;
        }

        e = ngx_list_push(&r->headers_in.headers);
        if (e == NULL) {
            return NGX_ERROR;
        }

        *e = h[i];
    }

    for (k = 0; mask >> k; k++) {
        if (values[k].len
            && ngx_http_edgetrace_push(r, emcf->hashes[k],
                                       &et_prop_headers[k], &values[k])
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* the headers' hashes, as nginx's header parser computes them */

void
ngx_http_edgetrace_init_headers(ngx_http_edgetrace_main_conf_t *emcf)
{
    ngx_uint_t  k;

    for (k = 0; k < ET_HDRS; k++) {
        emcf->hashes[k] = ngx_hash_key((u_char *) et_prop_headers[k]
                                                  .lowcase.data,
                                       et_prop_headers[k].lowcase.len);
    }
}
