/*
 * ngx_http_edgetrace_module: the server and client spans, assembled from
 * the request and its upstream states and handed to the exporter.
 */


#include "ngx_http_edgetrace_module.h"


/*
 * The request's URI as grpc_pass sends it (its :path): the client's, or
 * one nginx made (a rewrite, a redirect) escaped and with its arguments.
 * Kept as an exchange starts, since a later redirect changes r->uri.
 */

void
ngx_http_edgetrace_request_uri(ngx_http_request_t *r, ngx_str_t *uri)
{
    u_char     *p;
    uintptr_t   escape;

    if (r->valid_unparsed_uri) {
        *uri = r->unparsed_uri;
        return;
    }

    escape = 2 * ngx_escape_uri(NULL, r->uri.data, r->uri.len,
                                NGX_ESCAPE_URI);

    if (escape == 0 && r->args.len == 0) {
        *uri = r->uri;
        return;
    }

    p = ngx_pnalloc(r->pool, r->uri.len + escape + 1 + r->args.len);
    if (p == NULL) {
        *uri = r->uri;
        return;
    }

    uri->data = p;
    p = (u_char *) ngx_escape_uri(p, r->uri.data, r->uri.len, NGX_ESCAPE_URI);

    if (r->args.len) {
        *p++ = '?';
        p = ngx_copy(p, r->args.data, r->args.len);
    }

    uri->len = p - uri->data;
}


/*
 * The URI an upstream got, for url.full: grpc_pass leaves u->uri empty and
 * sends the request's own ("sent", kept as the exchange started); the
 * FastCGI, uwsgi and SCGI protocols carry no URI of their own.
 */

static ngx_str_t
ngx_http_edgetrace_upstream_uri(ngx_http_upstream_t *u, ngx_str_t *sent)
{
    if (u->uri.len == 0
        && u->schema.len >= sizeof("grpc") - 1
        && ngx_strncmp(u->schema.data, "grpc", sizeof("grpc") - 1) == 0)
    {
        return *sent;
    }

    return u->uri;
}


/*
 * The main request's upstream exchange starts.  After an internal redirect
 * (X-Accel-Redirect, error_page) a finished exchange is kept as its own
 * client span and the next one gets a new id: retries within one exchange
 * (proxy_next_upstream) are events of one span, separate exchanges are not.
 */

ngx_int_t
ngx_http_edgetrace_start_client(ngx_http_request_t *r,
    ngx_http_edgetrace_ctx_t *ctx)
{
    ngx_uint_t                    n;
    ngx_http_edgetrace_client_t  *cl;

    if (ctx->client_start_ns) {
        n = r->upstream_states ? r->upstream_states->nelts : 0;

        if (n <= ctx->client_first) {
            /* nothing reached an upstream yet: the same exchange */
            return NGX_DECLINED;
        }

        cl = ngx_pcalloc(r->pool, sizeof(ngx_http_edgetrace_client_t));
        if (cl == NULL) {
            return NGX_DECLINED;
        }

        cl->request = r;
        ngx_memcpy(cl->span_id, ctx->client_id, ET_SPAN_ID_LEN);
        cl->start_ns = ctx->client_start_ns;
        cl->end_ns = et_clock_now_ns();
        cl->first = ctx->client_first;
        cl->last = n;

        if (r->upstream) {
            cl->schema = r->upstream->schema;
            cl->uri = ngx_http_edgetrace_upstream_uri(r->upstream,
                                                      &ctx->client_uri);
        }

        cl->next = ctx->clients;
        ctx->clients = cl;

        ctx->client_first = n;
        et_span_id_new(ctx->client_id);
        ctx->has_traceparent = 0;
    }

    ngx_http_edgetrace_client_id(ctx);
    ctx->client_start_ns = et_clock_now_ns();
    ngx_http_edgetrace_request_uri(r, &ctx->client_uri);

    if (ctx->writes) {
        (void) ngx_http_edgetrace_inject(r, ctx, ctx->client_id,
                                         ctx->traceparent, 0);
        ctx->has_traceparent = 1;
    }

    return NGX_DECLINED;
}


ngx_uint_t
ngx_http_edgetrace_status_code(ngx_http_request_t *r)
{
    if (r->err_status) {
        return r->err_status;
    }

    return r->headers_out.status;
}


#define ngx_http_edgetrace_et_str(s)                                          \
    (et_str_t) { (s).len, (s).data }


void
ngx_http_edgetrace_export_server(ngx_http_request_t *r,
    ngx_http_edgetrace_ctx_t *ctx, uint64_t now)
{
    size_t                           n;
    ngx_str_t                        v;
    ngx_uint_t                       i;
    et_span_t                        span;
    et_attr_t                        attrs[ET_ATTRS_MAX];
    ngx_connection_t                *c;
    et_http_server_t                 req;
    ngx_http_core_loc_conf_t        *clcf;
    ngx_http_edgetrace_attr_t       *ua;
    ngx_http_edgetrace_srv_conf_t   *escf;
    ngx_http_edgetrace_loc_conf_t   *elcf;
    u_char                           name[ET_HTTP_SPAN_NAME_SIZE];
    u_char                           text[ET_HTTP_STATUS_TEXT];

    c = r->connection;
    elcf = ngx_http_get_module_loc_conf(r, ngx_http_edgetrace_module);
    escf = ngx_http_get_module_srv_conf(r, ngx_http_edgetrace_module);

    (void) et_http_span_init(&span, &ctx->trace, ET_SPAN_SERVER, NULL,
                             ctx->start_ns, now, &escf->service);
    span.sampling = et_sampling_field(ctx->sampling);

    /* a name whose variables are all empty falls back to the default */
    if (elcf->span_name
        && ngx_http_complex_value(r, elcf->span_name, &v) == NGX_OK
        && v.len)
    {
        span.name = ngx_http_edgetrace_et_str(v);

    } else {
        clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);
        span.name.data = name;
        span.name.len = et_http_span_name(name, sizeof(name),
                                  ngx_http_edgetrace_et_str(r->method_name),
                                  ngx_http_edgetrace_et_str(clcf->name));
    }

    req.method = ngx_http_edgetrace_et_str(r->method_name);

    /* the target as the client sent it, before any rewrite */
    req.target = r->unparsed_uri.data
                 ? ngx_http_edgetrace_et_str(r->unparsed_uri)
                 : ngx_http_edgetrace_et_str(r->uri);

#if (NGX_HTTP_SSL)
    if (c->ssl) {
        req.scheme = (et_str_t) et_string("https");
    } else
#endif
    {
        req.scheme = (et_str_t) et_string("http");
    }

    req.host = ngx_http_edgetrace_et_str(r->headers_in.server);

    req.port = -1;

    if (ngx_connection_local_sockaddr(c, NULL, 0) == NGX_OK) {
        req.port = ngx_inet_get_port(c->local_sockaddr);
    }

    req.client_address = ngx_http_edgetrace_et_str(c->addr_text);

    req.user_agent.len = 0;

    if (r->headers_in.user_agent) {
        req.user_agent =
                 ngx_http_edgetrace_et_str(r->headers_in.user_agent->value);
    }

    req.protocol_version = et_http_version(r->http_version);

    req.status = ngx_http_edgetrace_status_code(r);

    n = et_http_server_attrs(&req, &span, attrs, text);

    if (elcf->attributes) {
        ua = elcf->attributes->elts;

        for (i = 0; i < elcf->attributes->nelts; i++) {
            if (ngx_http_complex_value(r, &ua[i].value, &v) != NGX_OK) {
                continue;
            }

            if (et_attr_add_string(attrs, &n, ET_ATTRS_MAX, &ua[i].key,
                                   ngx_http_edgetrace_et_str(v))
                != ET_OK)
            {
                break;
            }
        }
    }

    span.attrs = attrs;
    span.nattrs = n;

    (void) et_exporter_submit(ngx_http_edgetrace_exporter, &span);
}


static int64_t
ngx_http_edgetrace_msec(ngx_msec_t ms)
{
    return ms == (ngx_msec_t) -1 ? -1 : (int64_t) ms;
}


void
ngx_http_edgetrace_export_client(ngx_http_edgetrace_ctx_t *ctx,
    ngx_http_edgetrace_client_t *cl)
{
    u_char                         *p;
    size_t                          ntries;
    ngx_str_t                      *peer, schema, uri;
    ngx_uint_t                      i, last, status;
    ngx_http_request_t             *r;
    et_span_t                       span;
    et_try_t                        events[ET_TRIES_MAX];
    et_attr_t                       attrs[ET_HTTP_CLIENT_ATTRS];
    et_http_client_t                req;
    ngx_http_upstream_t            *u;
    ngx_http_upstream_state_t      *st;
    ngx_http_edgetrace_srv_conf_t  *escf;
    u_char                          url[1024];
    u_char                          text[ET_HTTP_STATUS_TEXT];

    r = cl->request;
    escf = ngx_http_get_module_srv_conf(r, ngx_http_edgetrace_module);

    (void) et_http_span_init(&span, &ctx->trace, ET_SPAN_CLIENT, cl->span_id,
                             cl->start_ns, cl->end_ns, &escf->service);
    span.sampling = et_sampling_field(ctx->sampling);
    span.name = ngx_http_edgetrace_et_str(r->method_name);

    ngx_memzero(&req, sizeof(et_http_client_t));
    req.method = span.name;

    /* one event per try; a state without a peer marks a redirect */
    st = r->upstream_states->elts;
    last = cl->last ? cl->last : r->upstream_states->nelts;
    peer = NULL;
    ntries = 0;

    for (i = cl->first; i < last; i++) {
        if (st[i].peer == NULL) {
            continue;
        }

        /*
         * ngx_http_upstream_next() writes the status nginx will answer
         * with (502, 504) into the state of a try that got no response:
         * the status is the upstream's only when its response header was
         * read, which is when header_time is set.
         */

        status = (st[i].header_time != (ngx_msec_t) -1) ? st[i].status : 0;

        req.tries++;
        req.status = status;
        peer = st[i].peer;

        if (ntries == ET_TRIES_MAX) {
            continue;
        }

        events[ntries].peer = ngx_http_edgetrace_et_str(*peer);
        events[ntries].status = status;
        events[ntries].connect_ms = ngx_http_edgetrace_msec(st[i].connect_time);
        events[ntries].header_ms = ngx_http_edgetrace_msec(st[i].header_time);
        events[ntries].response_ms =
                                ngx_http_edgetrace_msec(st[i].response_time);
        ntries++;
    }

    span.tries = events;
    span.ntries = ntries;

    schema = cl->schema;
    uri = cl->uri;
    u = r->upstream;

    if (schema.data == NULL && u) {
        schema = u->schema;
        uri = ngx_http_edgetrace_upstream_uri(u, &cl->uri);
    }

    if (peer) {
        req.peer = ngx_http_edgetrace_et_str(*peer);

        if (schema.len) {
            p = et_copy(url, schema.data, ngx_min(schema.len, 16));
            p = et_copy(p, peer->data, ngx_min(peer->len, 256));
            p = et_copy(p, uri.data,
                        ngx_min(uri.len, (size_t) (url + sizeof(url) - p)));
            req.url.data = url;
            req.url.len = p - url;
        }
    }

    span.nattrs = et_http_client_attrs(&req, &span, attrs, text);
    span.attrs = attrs;

    (void) et_exporter_submit(ngx_http_edgetrace_exporter, &span);
}
