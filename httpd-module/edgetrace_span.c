/*
 * mod_edgetrace: the server span of a client request and the client span
 * of a proxied one, built from httpd's records and handed to the exporter.
 */

#include "edgetrace_private.h"


void
edgetrace_export_client(request_rec *r, edgetrace_ctx_t *ctx,
    edgetrace_client_t *cl)
{
    et_span_t              span;
    et_attr_t              attrs[ET_HTTP_CLIENT_ATTRS];
    edgetrace_srv_conf_t  *sc;
    et_http_client_t       req;
    uint8_t                text[ET_HTTP_STATUS_TEXT];

    cl->done = 1;

    if ((!ctx->trace.sampled && ctx->sampling != ET_SAMPLING_OUTCOME)
        || edgetrace_exporter == NULL)
    {
        return;
    }

    sc = EDGETRACE_SRV_CONF(r->server);

    (void) et_http_span_init(&span, &ctx->trace, ET_SPAN_CLIENT, cl->span_id,
                             cl->start_ns, cl->end_ns, &sc->service);
    span.sampling = et_sampling_field(ctx->sampling);

    span.name.data = (const uint8_t *) cl->method;
    span.name.len = strlen(cl->method);
    span.tries = cl->events;
    span.ntries = cl->tries < ET_TRIES_MAX ? cl->tries : ET_TRIES_MAX;

    memset(&req, 0, sizeof(et_http_client_t));
    req.method = span.name;
    req.status = cl->status;
    req.tries = cl->tries;

    /* empty when no try reached a backend: no attribute then */
    req.peer = cl->peer;
    req.url = cl->url;

    span.nattrs = et_http_client_attrs(&req, &span, attrs, text);
    span.attrs = attrs;

    (void) et_exporter_submit(edgetrace_exporter, &span);
}


void
edgetrace_export_server(request_rec *r, edgetrace_ctx_t *ctx, uint64_t now)
{
    int                    i;
    size_t                 n;
    const char            *v, *err, *ua;
    request_rec           *last;
    et_span_t              span;
    et_attr_t              attrs[ET_ATTRS_MAX];
    edgetrace_dir_attr_t  *da;
    edgetrace_dir_conf_t  *dc;
    et_str_t               route, value;
    edgetrace_srv_conf_t  *sc;
    et_http_server_t       req;
    core_dir_config       *cd;
    uint8_t                name[ET_HTTP_SPAN_NAME_SIZE];
    uint8_t                text[ET_HTTP_STATUS_TEXT];

    /* the request that answered: the last internal redirect */
    for (last = r; last->next; last = last->next) { /* void */ }

    dc = EDGETRACE_DIR_CONF(last);
    sc = EDGETRACE_SRV_CONF(r->server);

    (void) et_http_span_init(&span, &ctx->trace, ET_SPAN_SERVER, NULL,
                             (uint64_t) r->request_time * 1000, now,
                             &sc->service);
    span.sampling = et_sampling_field(ctx->sampling);

    memset(&req, 0, sizeof(et_http_server_t));
    req.method.data = (const uint8_t *) (r->method ? r->method : "");
    req.method.len = strlen((const char *) req.method.data);

    v = NULL;

    if (dc->span_name_expr) {
        err = NULL;
        v = ap_expr_str_exec(last, dc->span_name_expr, &err);

        if (err) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                          "EdgeTraceSpanName: %s", err);
            v = NULL;
        }

    } else if (dc->span_name) {
        v = dc->span_name;
    }

    /* a name whose expression is empty falls back to the default */
    if (v && *v) {
        span.name.data = (const uint8_t *) v;
        span.name.len = strlen(v);

    } else {
        /*
         * The path of the <Location>, <Directory> or <Files> section that
         * configured the request last (core's record of it); an <If> has
         * none.
         */
        cd = ap_get_core_module_config(last->per_dir_config);
        route.len = 0;

        if (cd && cd->d && cd->d[0] != '*') {
            route.data = (const uint8_t *) cd->d;
            route.len = strlen(cd->d);
        }

        span.name.data = name;
        span.name.len = et_http_span_name(name, sizeof(name), req.method,
                                          route);
    }

    v = r->unparsed_uri ? r->unparsed_uri : (r->uri ? r->uri : "");
    req.target.data = (const uint8_t *) v;
    req.target.len = strlen(v);

    v = ap_http_scheme(r);
    req.scheme.data = (const uint8_t *) (v ? v : "http");
    req.scheme.len = strlen((const char *) req.scheme.data);

    if (r->hostname) {
        req.host.data = (const uint8_t *) r->hostname;
        req.host.len = strlen(r->hostname);
    }

    req.port = r->connection->local_addr
               ? (int64_t) r->connection->local_addr->port : -1;

    if (r->useragent_ip) {
        req.client_address.data = (const uint8_t *) r->useragent_ip;
        req.client_address.len = strlen(r->useragent_ip);
    }

    ua = apr_table_get(r->headers_in, "User-Agent");

    if (ua) {
        req.user_agent.data = (const uint8_t *) ua;
        req.user_agent.len = strlen(ua);
    }

    req.protocol_version = et_http_version((unsigned) r->proto_num);

    req.status = last->status > 0 ? (unsigned) last->status : 0;

    n = et_http_server_attrs(&req, &span, attrs, text);

    if (dc->attrs) {
        da = (edgetrace_dir_attr_t *) dc->attrs->elts;

        for (i = 0; i < dc->attrs->nelts; i++) {
            v = da[i].value;

            if (da[i].expr) {
                err = NULL;
                v = ap_expr_str_exec(last, da[i].expr, &err);

                if (err) {
                    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                                  "EdgeTraceAttribute %.*s: %s",
                                  (int) da[i].key.name.len,
                                  da[i].key.name.data, err);
                    continue;
                }
            }

            if (v == NULL) {
                continue;
            }

            value.data = (const uint8_t *) v;
            value.len = strlen(v);

            if (et_attr_add_string(attrs, &n, ET_ATTRS_MAX, &da[i].key, value)
                != ET_OK)
            {
                break;
            }
        }
    }

    span.attrs = attrs;
    span.nattrs = n;

    (void) et_exporter_submit(edgetrace_exporter, &span);
}
