/*
 * HTTP span attributes shared by the nginx and httpd adapters.
 */


#include <string.h>

#include "et_http.h"


static const et_str_t  et_no_response = et_string("no_response");


/* a server span holds the standard attributes and every user attribute */
typedef char  et_http_attrs_fit[(ET_HTTP_SERVER_ATTRS + ET_USER_ATTRS_MAX
                                 <= ET_ATTRS_MAX) ? 1 : -1];


static void
et_http_str(et_attr_t *a, const et_key_t *key, et_str_t v)
{
    a->key = key;
    a->type = ET_ATTR_STRING;
    a->str = v;
}


static void
et_http_int(et_attr_t *a, const et_key_t *key, int64_t n)
{
    a->key = key;
    a->type = ET_ATTR_INT;
    a->num = n;
}


static et_str_t
et_http_status_text(uint8_t *text, unsigned status)
{
    size_t    n;
    et_str_t  s;
    uint8_t   digits[ET_HTTP_STATUS_TEXT];

    n = 0;

    do {
        digits[n++] = (uint8_t) ('0' + status % 10);
        status /= 10;
    } while (status && n < ET_HTTP_STATUS_TEXT);

    for (s.len = 0; n; s.len++) {
        text[s.len] = digits[--n];
    }

    s.data = text;

    return s;
}


size_t
et_http_server_attrs(const et_http_server_t *req, et_span_t *span,
    et_attr_t *attrs, uint8_t *text)
{
    size_t          n;
    et_str_t        path, query;
    const uint8_t  *q;

    n = 0;

    et_http_str(&attrs[n++], &et_key_http_request_method, req->method);

    path = req->target;
    query.len = 0;
    query.data = NULL;

    q = path.len ? memchr(path.data, '?', path.len) : NULL;

    if (q) {
        query.data = q + 1;
        query.len = path.len - (size_t) (q + 1 - path.data);
        path.len = (size_t) (q - path.data);
    }

    et_http_str(&attrs[n++], &et_key_url_path, path);

    if (query.len) {
        et_http_str(&attrs[n++], &et_key_url_query, query);
    }

    et_http_str(&attrs[n++], &et_key_url_scheme, req->scheme);

    if (req->host.len) {
        et_http_str(&attrs[n++], &et_key_server_address, req->host);
    }

    if (req->port >= 0) {
        et_http_int(&attrs[n++], &et_key_server_port, req->port);
    }

    if (req->client_address.len) {
        et_http_str(&attrs[n++], &et_key_client_address, req->client_address);
    }

    if (req->user_agent.len) {
        et_http_str(&attrs[n++], &et_key_user_agent_original,
                    req->user_agent);
    }

    if (req->protocol_version.len) {
        et_http_str(&attrs[n++], &et_key_network_protocol_version,
                    req->protocol_version);
    }

    if (req->status) {
        et_http_int(&attrs[n++], &et_key_http_response_status_code,
                    req->status);
    }

    span->status = ET_STATUS_UNSET;

    if (req->status >= 500) {
        span->status = ET_STATUS_ERROR;
        et_http_str(&attrs[n++], &et_key_error_type,
                    et_http_status_text(text, req->status));
    }

    return n;
}


size_t
et_http_client_attrs(const et_http_client_t *req, et_span_t *span,
    et_attr_t *attrs, uint8_t *text)
{
    size_t    n;
    int64_t   port;
    et_str_t  addr;

    n = 0;

    et_http_str(&attrs[n++], &et_key_http_request_method, req->method);

    if (req->url.len) {
        et_http_str(&attrs[n++], &et_key_url_full, req->url);
    }

    if (req->peer.len) {
        et_http_split_peer(req->peer, &addr, &port);

        et_http_str(&attrs[n++], &et_key_server_address, addr);

        if (port >= 0) {
            et_http_int(&attrs[n++], &et_key_server_port, port);
        }
    }

    if (req->status) {
        et_http_int(&attrs[n++], &et_key_http_response_status_code,
                    req->status);
    }

    if (req->tries > 1) {
        et_http_int(&attrs[n++], &et_key_http_request_resend_count,
                    req->tries - 1);
    }

    span->status = ET_STATUS_UNSET;

    if (req->status == 0) {
        span->status = ET_STATUS_ERROR;
        et_http_str(&attrs[n++], &et_key_error_type, et_no_response);

    } else if (req->status >= 400) {
        span->status = ET_STATUS_ERROR;
        et_http_str(&attrs[n++], &et_key_error_type,
                    et_http_status_text(text, req->status));
    }

    return n;
}


void
et_http_split_peer(et_str_t peer, et_str_t *addr, int64_t *port)
{
    size_t          i, j;
    int64_t         n;
    const uint8_t  *p;

    *addr = peer;
    *port = -1;

    p = peer.data;
    i = peer.len;

    while (i && p[i - 1] >= '0' && p[i - 1] <= '9') {
        i--;
    }

    if (i <= 1 || i == peer.len || p[i - 1] != ':' || peer.len - i > 5) {
        return;
    }

    /* "::1" alone is an address, not "::" and port 1 */
    if (p[0] != '[' && memchr(p, ':', i - 1) != NULL) {
        return;
    }

    n = 0;

    for (j = i; j < peer.len; j++) {
        n = n * 10 + (p[j] - '0');
    }

    if (n > 65535) {
        return;
    }

    *port = n;
    addr->len = i - 1;

    if (addr->len >= 2 && p[0] == '[' && p[addr->len - 1] == ']') {
        addr->data = p + 1;
        addr->len -= 2;
    }
}


size_t
et_http_span_name(uint8_t *buf, size_t size, et_str_t method,
    et_str_t route)
{
    size_t  n;

    /* a few bytes each, per span: et_copy(), not a libc call */

    n = method.len < size ? method.len : size;
    et_copy(buf, method.data, n);

    if (route.len && n < size) {
        buf[n++] = ' ';

        if (route.len > size - n) {
            route.len = size - n;
        }

        et_copy(buf + n, route.data, route.len);
        n += route.len;
    }

    return n;
}
