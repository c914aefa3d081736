/*
 * ngx_http_edgetrace_module: trace context in r->headers_in.
 *
 * The upstream modules forward every element of r->headers_in.headers, so
 * context goes upstream by writing that list: ours replaces whatever the
 * client sent under the same names, never a second value beside it.
 */


#include "ngx_http_edgetrace_module.h"


#define NGX_HTTP_EDGETRACE_TRACESTATE_LINES  32


/* the request headers of the propagation formats */

#define NGX_HTTP_EDGETRACE_TRACEPARENT     0
#define NGX_HTTP_EDGETRACE_TRACESTATE      1
#define NGX_HTTP_EDGETRACE_B3_SINGLE       2
#define NGX_HTTP_EDGETRACE_B3_TRACE_ID     3
#define NGX_HTTP_EDGETRACE_B3_SPAN_ID      4
#define NGX_HTTP_EDGETRACE_B3_PARENT_ID    5
#define NGX_HTTP_EDGETRACE_B3_SAMPLED      6
#define NGX_HTTP_EDGETRACE_B3_FLAGS        7
#define NGX_HTTP_EDGETRACE_HEADERS         8


typedef struct {
    ngx_str_t         name;             /* lowercase */
    ngx_uint_t        format;
} ngx_http_edgetrace_header_t;


static ngx_http_edgetrace_header_t  ngx_http_edgetrace_headers[] = {
    { ngx_string("traceparent"), NGX_HTTP_EDGETRACE_W3C },
    { ngx_string("tracestate"), NGX_HTTP_EDGETRACE_W3C },
    { ngx_string("b3"), NGX_HTTP_EDGETRACE_B3 },
    { ngx_string("x-b3-traceid"), NGX_HTTP_EDGETRACE_B3MULTI },
    { ngx_string("x-b3-spanid"), NGX_HTTP_EDGETRACE_B3MULTI },
    { ngx_string("x-b3-parentspanid"), NGX_HTTP_EDGETRACE_B3MULTI },
    { ngx_string("x-b3-sampled"), NGX_HTTP_EDGETRACE_B3MULTI },
    { ngx_string("x-b3-flags"), NGX_HTTP_EDGETRACE_B3MULTI },
};


/* the names as they are written upstream */
static ngx_str_t  ngx_http_edgetrace_header_keys[] = {
    ngx_string("traceparent"),
    ngx_string("tracestate"),
    ngx_string("b3"),
    ngx_string("X-B3-TraceId"),
    ngx_string("X-B3-SpanId"),
    ngx_string("X-B3-ParentSpanId"),
    ngx_string("X-B3-Sampled"),
    ngx_string("X-B3-Flags"),
};


/* what one walk over the request's header list found */
typedef struct {
    ngx_uint_t        total;
    ngx_uint_t        found;            /* any of them */
    u_char            count[NGX_HTTP_EDGETRACE_HEADERS];  /* at most 255 */
    ngx_table_elt_t  *first[NGX_HTTP_EDGETRACE_HEADERS];  /* when count */
    et_str_t          states[NGX_HTTP_EDGETRACE_TRACESTATE_LINES];
} ngx_http_edgetrace_scan_t;


/*
 * For each set of formats (a mask of NGX_HTTP_EDGETRACE_W3C ...): bit N
 * set when one of its headers is N bytes long.  Most request headers are
 * told apart by their length alone.
 */
static uint32_t  ngx_http_edgetrace_lengths[8];

/* bit N set when a header's name starts with the letter 'a' + N */
static uint32_t  ngx_http_edgetrace_firsts;

/* the headers of each length: no two formats share more than two */
static int8_t    ngx_http_edgetrace_by_length[32][2];


/* the header's index in ngx_http_edgetrace_headers[], or -1 */

static ngx_int_t
ngx_http_edgetrace_header(ngx_table_elt_t *h, ngx_uint_t formats)
{
    ngx_int_t                     k;
    ngx_uint_t                    i;
    ngx_http_edgetrace_header_t  *eh;

    if (h->key.len >= 32
        || !(ngx_http_edgetrace_lengths[formats & 7] & (1u << h->key.len))
        || h->lowcase_key == NULL)
    {
        return -1;
    }

    for (i = 0; i < 2; i++) {
        k = ngx_http_edgetrace_by_length[h->key.len][i];

        if (k < 0) {
            break;
        }

        eh = &ngx_http_edgetrace_headers[k];

        if (h->lowcase_key[0] == eh->name.data[0]
            && (eh->format & formats)
            && ngx_strncmp(h->lowcase_key, eh->name.data, eh->name.len) == 0)
        {
            return k;
        }
    }

    return -1;
}


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
    uint32_t          lengths;
    ngx_int_t         k;
    ngx_uint_t        i, n, c;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    /* first[] and the states are written as they are found */
    ngx_memzero(scan, offsetof(ngx_http_edgetrace_scan_t, first));

    lengths = ngx_http_edgetrace_lengths[formats & 7];

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

        /*
         * The tests of ngx_http_edgetrace_header() that reject nearly every
         * request header, without a call: the length, then the first
         * letter.
         */

        if (h[i].key.len >= 32 || !(lengths & (1u << h[i].key.len))
            || h[i].lowcase_key == NULL)
        {
            continue;
        }

        c = (ngx_uint_t) h[i].lowcase_key[0] - 'a';

        if (c >= 26 || !(ngx_http_edgetrace_firsts & (1u << c))) {
            continue;
        }

        k = ngx_http_edgetrace_header(&h[i], formats);

        if (k < 0) {
            continue;
        }

        scan->found = 1;

        /* a count saturates: "more than one" is all that matters */
        n = scan->count[k];

        if (n < 255) {
            scan->count[k] = (u_char) (n + 1);
        }

        if (n == 0) {
            scan->first[k] = &h[i];
        }

        if (k == NGX_HTTP_EDGETRACE_TRACESTATE
            && n < NGX_HTTP_EDGETRACE_TRACESTATE_LINES)
        {
            scan->states[n].data = h[i].value.data;
            scan->states[n].len = h[i].value.len;
        }
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


/* W3C: NGX_OK with the context and the tracestate, or NGX_DECLINED */

static ngx_int_t
ngx_http_edgetrace_extract_w3c(ngx_http_request_t *r,
    ngx_http_edgetrace_ctx_t *ctx, ngx_http_edgetrace_scan_t *scan)
{
    u_char           *buf;
    size_t            len;
    ngx_uint_t        nstates;
    et_w3c_rc_t       rc;
    et_context_t      parent;
    ngx_table_elt_t  *tp;

    /* two traceparent lines cannot both be the parent: restart */
    if (scan->count[NGX_HTTP_EDGETRACE_TRACEPARENT] != 1) {
        return NGX_DECLINED;
    }

    tp = scan->first[NGX_HTTP_EDGETRACE_TRACEPARENT];

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

    nstates = scan->count[NGX_HTTP_EDGETRACE_TRACESTATE];

    if (nstates == 0 || nstates > NGX_HTTP_EDGETRACE_TRACESTATE_LINES) {
        return NGX_OK;
    }

    buf = ngx_pnalloc(r->pool, ET_TRACESTATE_MAX);
    if (buf == NULL) {
        return NGX_OK;
    }

    len = 0;
    rc = et_tracestate_parse(scan->states, nstates, buf, &len);

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


static et_str_t
ngx_http_edgetrace_value(ngx_http_edgetrace_scan_t *scan, ngx_uint_t k)
{
    et_str_t  v;

    v.len = 0;
    v.data = NULL;

    if (scan->count[k]) {
        v.data = scan->first[k]->value.data;
        v.len = scan->first[k]->value.len;
    }

    return v;
}


/* B3, single or multi: NGX_OK, NGX_DONE (a decision only), NGX_DECLINED */

static ngx_int_t
ngx_http_edgetrace_extract_b3(ngx_http_request_t *r,
    ngx_http_edgetrace_ctx_t *ctx, ngx_http_edgetrace_scan_t *scan,
    ngx_uint_t format)
{
    ngx_uint_t                      k;
    et_b3_rc_t                      rc;
    et_context_t                    parent;
    ngx_http_edgetrace_loc_conf_t  *elcf;

    if (format == NGX_HTTP_EDGETRACE_B3) {
        if (scan->count[NGX_HTTP_EDGETRACE_B3_SINGLE] != 1) {
            return NGX_DECLINED;
        }

        rc = et_b3_parse(scan->first[NGX_HTTP_EDGETRACE_B3_SINGLE]->value.data,
                         scan->first[NGX_HTTP_EDGETRACE_B3_SINGLE]->value.len,
                         &parent);

    } else {
        for (k = NGX_HTTP_EDGETRACE_B3_TRACE_ID;
             k <= NGX_HTTP_EDGETRACE_B3_FLAGS;
             k++)
        {
            if (scan->count[k] > 1) {
                return NGX_DECLINED;
            }
        }

        rc = et_b3multi_parse(
                ngx_http_edgetrace_value(scan, NGX_HTTP_EDGETRACE_B3_TRACE_ID),
                ngx_http_edgetrace_value(scan, NGX_HTTP_EDGETRACE_B3_SPAN_ID),
                ngx_http_edgetrace_value(scan, NGX_HTTP_EDGETRACE_B3_PARENT_ID),
                ngx_http_edgetrace_value(scan, NGX_HTTP_EDGETRACE_B3_SAMPLED),
                ngx_http_edgetrace_value(scan, NGX_HTTP_EDGETRACE_B3_FLAGS),
                &parent);
    }

    switch (rc) {

    case ET_B3_OK:
    case ET_B3_DEFERRED:
        ngx_memcpy(ctx->trace_id, parent.trace_id, ET_TRACE_ID_LEN);
        ngx_memcpy(ctx->parent_id, parent.span_id, ET_SPAN_ID_LEN);
        ctx->flags = parent.flags;

        if (rc == ET_B3_DEFERRED) {
            /* no sampling state: the receiver decides, as for a root */
            elcf = ngx_http_get_module_loc_conf(r, ngx_http_edgetrace_module);
            ctx->flags = et_sampler_sampled(&elcf->sampler, ctx->trace_id)
                         ? ET_FLAG_SAMPLED : 0;
        }

        return NGX_OK;

    case ET_B3_SAMPLING_ONLY:
        ctx->flags = parent.flags;
        return NGX_DONE;

    default:
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "edgetrace: b3 ignored: %s", et_b3_reason(rc));
        return NGX_DECLINED;
    }
}


/*
 * Continues the incoming context, trying the configured formats in their
 * order: NGX_OK with the trace id, the parent span id and the flags (and
 * the tracestate) in "ctx"; NGX_DONE when the first valid format carries
 * only a sampling decision (B3 "0", "1", "d"), in ctx->flags; NGX_DECLINED
 * when no format is valid (the trace restarts).
 */

ngx_int_t
ngx_http_edgetrace_extract(ngx_http_request_t *r,
    ngx_http_edgetrace_ctx_t *ctx)
{
    ngx_int_t                       rc;
    ngx_uint_t                      i, formats;
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
    }

    for (i = 0; i < elcf->nformats; i++) {

        if (elcf->formats[i] == NGX_HTTP_EDGETRACE_W3C) {
            rc = ngx_http_edgetrace_extract_w3c(r, ctx, &scan);

        } else {
            rc = ngx_http_edgetrace_extract_b3(r, ctx, &scan,
                                               elcf->formats[i]);
        }

        if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_edgetrace_push(ngx_http_request_t *r, ngx_uint_t hash,
    ngx_str_t *key, ngx_str_t *lowcase, ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_in.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = hash;
    h->key = *key;
    h->lowcase_key = lowcase->data;
    h->value = *value;

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
    const uint8_t *span_id, u_char *traceparent, ngx_uint_t copy)
{
    u_char                          *b3;
    ngx_int_t                        k;
    ngx_str_t                        values[NGX_HTTP_EDGETRACE_HEADERS];
    ngx_uint_t                       i, formats, in_place;
    ngx_list_t                       old;
    ngx_list_part_t                 *part;
    ngx_table_elt_t                 *h, *e;
    ngx_http_edgetrace_scan_t        scan;
    ngx_http_edgetrace_main_conf_t  *emcf;

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

    /* what each header of the configured formats is to carry; len 0: none */

    formats = ngx_http_edgetrace_formats_mask(r);
    ngx_memzero(values, sizeof(values));

    if (formats & NGX_HTTP_EDGETRACE_W3C) {
        values[NGX_HTTP_EDGETRACE_TRACEPARENT].data = traceparent;
        values[NGX_HTTP_EDGETRACE_TRACEPARENT].len = ET_TRACEPARENT_LEN;

        /* a new root carries no tracestate */
        values[NGX_HTTP_EDGETRACE_TRACESTATE] = ctx->tracestate;
    }

    if (formats & NGX_HTTP_EDGETRACE_B3) {
        b3 = ngx_pnalloc(r->pool, ET_B3_SINGLE_LEN);
        if (b3 == NULL) {
            return NGX_ERROR;
        }

        values[NGX_HTTP_EDGETRACE_B3_SINGLE].data = b3;
        values[NGX_HTTP_EDGETRACE_B3_SINGLE].len =
                 et_b3_write(b3, ctx->trace_id, span_id, ctx->flags) - b3;
    }

    if (formats & NGX_HTTP_EDGETRACE_B3MULTI) {

        /* the ids as the traceparent has them: "00-<trace>-<span>-<flags>" */

        values[NGX_HTTP_EDGETRACE_B3_TRACE_ID].data = traceparent + 3;
        values[NGX_HTTP_EDGETRACE_B3_TRACE_ID].len = 2 * ET_TRACE_ID_LEN;
        values[NGX_HTTP_EDGETRACE_B3_SPAN_ID].data = traceparent + 36;
        values[NGX_HTTP_EDGETRACE_B3_SPAN_ID].len = 2 * ET_SPAN_ID_LEN;
        values[NGX_HTTP_EDGETRACE_B3_SAMPLED].data =
                       (u_char *) ((ctx->flags & ET_FLAG_SAMPLED) ? "1" : "0");
        values[NGX_HTTP_EDGETRACE_B3_SAMPLED].len = 1;
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
        ngx_memzero(&scan, offsetof(ngx_http_edgetrace_scan_t, first));
        scan.total = ctx->clean_n;
        scan.found = 0;

    } else {
        ngx_http_edgetrace_scan(r, formats, &scan);
    }

    ctx->clean_elts = NULL;

    /* the common case: each name at most once, and replaced in place */

    in_place = !copy;

    for (k = 0; scan.found && k < NGX_HTTP_EDGETRACE_HEADERS; k++) {
        if (scan.count[k] > 1 || (scan.count[k] == 1 && values[k].len == 0)) {
            in_place = 0;
        }
    }

    if (in_place) {
        for (k = 0; k < NGX_HTTP_EDGETRACE_HEADERS; k++) {
            if (scan.count[k]) {
                scan.first[k]->value = values[k];

            } else if (values[k].len
                       && ngx_http_edgetrace_push(r, emcf->hashes[k],
                                      &ngx_http_edgetrace_header_keys[k],
                                      &ngx_http_edgetrace_headers[k].name,
                                      &values[k])
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
                      scan.total + NGX_HTTP_EDGETRACE_HEADERS,
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

        if (ngx_http_edgetrace_header(&h[i], formats) >= 0) {
            continue;
        }

        e = ngx_list_push(&r->headers_in.headers);
        if (e == NULL) {
            return NGX_ERROR;
        }

        *e = h[i];
    }

    for (k = 0; k < NGX_HTTP_EDGETRACE_HEADERS; k++) {
        if (values[k].len
            && ngx_http_edgetrace_push(r, emcf->hashes[k],
                                       &ngx_http_edgetrace_header_keys[k],
                                       &ngx_http_edgetrace_headers[k].name,
                                       &values[k])
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
    size_t      len;
    ngx_uint_t  k, formats;

    ngx_memset(ngx_http_edgetrace_by_length, -1,
               sizeof(ngx_http_edgetrace_by_length));

    for (k = 0; k < NGX_HTTP_EDGETRACE_HEADERS; k++) {
        len = ngx_http_edgetrace_headers[k].name.len;
        ngx_http_edgetrace_by_length[len]
                          [ngx_http_edgetrace_by_length[len][0] >= 0] = k;

        emcf->hashes[k] = ngx_hash_key(ngx_http_edgetrace_headers[k].name.data,
                                       ngx_http_edgetrace_headers[k].name.len);

        /* every name starts with a lowercase letter */
        ngx_http_edgetrace_firsts |=
                    1u << (ngx_http_edgetrace_headers[k].name.data[0] - 'a');

        for (formats = 0; formats < 8; formats++) {
            if (ngx_http_edgetrace_headers[k].format & formats) {
                ngx_http_edgetrace_lengths[formats] |=
                                1u << ngx_http_edgetrace_headers[k].name.len;
            }
        }
    }
}
