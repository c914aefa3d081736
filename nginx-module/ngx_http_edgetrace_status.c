/*
 * ngx_http_edgetrace_module: edgetrace_status, the counters of all workers
 * in the Prometheus text format.
 */


#include "ngx_http_edgetrace_module.h"


ngx_int_t
ngx_http_edgetrace_status_handler(ngx_http_request_t *r)
{
    size_t             len;
    ngx_int_t          rc;
    ngx_buf_t         *b;
    ngx_chain_t        out;
    ngx_table_elt_t   *h;
    et_metrics_sum_t   sum;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    b = ngx_create_temp_buf(r->pool, ET_METRICS_TEXT_MAX);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memzero(&sum, sizeof(et_metrics_sum_t));

    if (ngx_http_edgetrace_metrics) {
        et_metrics_sum(ngx_http_edgetrace_metrics, &sum);
    }

    len = et_metrics_format(&sum, b->pos, ET_METRICS_TEXT_MAX);
    b->last = b->pos + len;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    ngx_str_set(&r->headers_out.content_type, ET_METRICS_CONTENT_TYPE);
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    /* no cache may answer a scrape with older counters */
    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Cache-Control");
    ngx_str_set(&h->value, ET_METRICS_CACHE_CONTROL);

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}
