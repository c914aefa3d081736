/*
 * et_http: the shared HTTP span attributes, status and names, the span
 * skeleton and the protocol version.
 */

#include <stdlib.h>

#include "tap.h"
#include "et_http.h"


#define S(s)  ((et_str_t) { sizeof(s) - 1, (const uint8_t *) (s) })


static const et_attr_t *
find(const et_attr_t *a, size_t n, const et_key_t *key)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (a[i].key == key) {
            return &a[i];
        }
    }

    return NULL;
}


static void
test_split_peer(void)
{
    size_t    i;
    int64_t   port;
    et_str_t  addr;

    static const struct {
        const char  *peer;
        const char  *addr;
        int64_t      port;
    } cases[] = {
        { "127.0.0.1:8080", "127.0.0.1", 8080 },
        { "[::1]:443", "::1", 443 },
        { "::1", "::1", -1 },
        { "backend", "backend", -1 },
        { "unix:/run/app.sock", "unix:/run/app.sock", -1 },
        { "host:", "host:", -1 },
        { "host:99999", "host:99999", -1 },
        { "host:1234567", "host:1234567", -1 },
        { ":80", ":80", -1 },
        { "10.0.0.1:0", "10.0.0.1", 0 },
        { "10.0.0.1:65535", "10.0.0.1", 65535 },
        { "10.0.0.1:65536", "10.0.0.1:65536", -1 },
        { "10.0.0.1:00080", "10.0.0.1", 80 },
        { "10.0.0.1:000080", "10.0.0.1:000080", -1 },
        { "a:b:80", "a:b:80", -1 },
        { "[fe80::1]:8080", "fe80::1", 8080 },
        { "1:2", "1", 2 },
        { "", "", -1 },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        et_http_split_peer((et_str_t) { strlen(cases[i].peer),
                                        (const uint8_t *) cases[i].peer },
                           &addr, &port);
        tap_is_mem(addr.data, addr.len, cases[i].addr, "split \"%s\": address",
                   cases[i].peer);
        tap_is_int(port, cases[i].port, "split \"%s\": port", cases[i].peer);
    }
}


static void
test_server(void)
{
    size_t             i, n;
    et_span_t          span;
    et_attr_t          attrs[ET_HTTP_SERVER_ATTRS];
    const et_attr_t   *a;
    et_http_server_t   req;
    uint8_t            text[ET_HTTP_STATUS_TEXT];

    static const struct {
        const char  *target;
        unsigned     status;
        const char  *path;
        const char  *query;      /* NULL: no url.query */
        int          error;
        const char  *error_type;
    } cases[] = {
        { "/a/b?x=1&y=2", 200, "/a/b", "x=1&y=2", 0, NULL },
        { "/a?", 404, "/a", NULL, 0, NULL },
        { "/", 500, "/", NULL, 1, "500" },
        { "/q??", 503, "/q", "?", 1, "503" },
        { "", 0, "", NULL, 0, NULL },
        { "/x", 499, "/x", NULL, 0, NULL },
        { "/%0d%0a?\r\n", 200, "/%0d%0a", "\r\n", 0, NULL },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(&req, 0, sizeof(req));
        memset(&span, 0, sizeof(span));
        req.method = S("GET");
        req.target = (et_str_t) { strlen(cases[i].target),
                                  (const uint8_t *) cases[i].target };
        req.scheme = S("http");
        req.port = -1;
        req.status = cases[i].status;

        n = et_http_server_attrs(&req, &span, attrs, text);

        a = find(attrs, n, &et_key_url_path);
        tap_ok(a && a->str.len == strlen(cases[i].path)
               && memcmp(a->str.data, cases[i].path, a->str.len) == 0,
               "server \"%s\": url.path", cases[i].target);

        a = find(attrs, n, &et_key_url_query);
        if (cases[i].query) {
            tap_ok(a && a->str.len == strlen(cases[i].query)
                   && memcmp(a->str.data, cases[i].query, a->str.len) == 0,
                   "server \"%s\": url.query", cases[i].target);
        } else {
            tap_ok(a == NULL, "server \"%s\": no url.query", cases[i].target);
        }

        tap_is_int(span.status, cases[i].error ? ET_STATUS_ERROR
                                               : ET_STATUS_UNSET,
                   "server status %u: span status", cases[i].status);

        a = find(attrs, n, &et_key_error_type);
        if (cases[i].error_type) {
            tap_ok(a && a->str.len == strlen(cases[i].error_type)
                   && memcmp(a->str.data, cases[i].error_type, a->str.len)
                      == 0,
                   "server status %u: error.type", cases[i].status);
        } else {
            tap_ok(a == NULL, "server status %u: no error.type",
                   cases[i].status);
        }

        a = find(attrs, n, &et_key_http_response_status_code);
        tap_ok(cases[i].status ? (a && a->type == ET_ATTR_INT
                                  && a->num == cases[i].status)
                               : a == NULL,
               "server status %u: http.response.status_code",
               cases[i].status);

        tap_ok(n <= ET_HTTP_SERVER_ATTRS, "server: attribute bound");
    }

    /* every optional attribute present: the bound holds */
    memset(&req, 0, sizeof(req));
    req.method = S("POST");
    req.target = S("/p?q");
    req.scheme = S("https");
    req.host = S("example.com");
    req.port = 443;
    req.client_address = S("10.1.2.3");
    req.user_agent = S("ua");
    req.protocol_version = S("2");
    req.status = 502;

    n = et_http_server_attrs(&req, &span, attrs, text);
    tap_is_int(n, ET_HTTP_SERVER_ATTRS - 1, "server: all attributes");

    a = find(attrs, n, &et_key_server_port);
    tap_ok(a && a->type == ET_ATTR_INT && a->num == 443, "server.port");

    req.user_agent.len = 0;
    req.host.len = 0;
    req.port = -1;
    n = et_http_server_attrs(&req, &span, attrs, text);
    tap_ok(find(attrs, n, &et_key_user_agent_original) == NULL
           && find(attrs, n, &et_key_server_address) == NULL
           && find(attrs, n, &et_key_server_port) == NULL,
           "server: absent values give no attribute");
}


static void
test_client(void)
{
    size_t             i, n;
    et_span_t          span;
    et_attr_t          attrs[ET_HTTP_CLIENT_ATTRS];
    const et_attr_t   *a;
    et_http_client_t   req;
    uint8_t            text[ET_HTTP_STATUS_TEXT];

    static const struct {
        unsigned     status;
        unsigned     tries;
        int          error;
        const char  *error_type;
        int64_t      resend;     /* -1: no attribute */
    } cases[] = {
        { 200, 1, 0, NULL, -1 },
        { 200, 2, 1 - 1, NULL, 1 },
        { 0, 1, 1, "no_response", -1 },
        { 404, 1, 1, "404", -1 },
        { 502, 3, 1, "502", 2 },
        { 399, 0, 0, NULL, -1 },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(&req, 0, sizeof(req));
        memset(&span, 0, sizeof(span));
        req.method = S("GET");
        req.url = S("http://127.0.0.1:8080/x");
        req.peer = S("127.0.0.1:8080");
        req.status = cases[i].status;
        req.tries = cases[i].tries;

        n = et_http_client_attrs(&req, &span, attrs, text);

        tap_ok(n <= ET_HTTP_CLIENT_ATTRS, "client: attribute bound");
        tap_is_int(span.status, cases[i].error ? ET_STATUS_ERROR
                                               : ET_STATUS_UNSET,
                   "client %u/%u: span status", cases[i].status,
                   cases[i].tries);

        a = find(attrs, n, &et_key_error_type);
        if (cases[i].error_type) {
            tap_ok(a && a->str.len == strlen(cases[i].error_type)
                   && memcmp(a->str.data, cases[i].error_type, a->str.len)
                      == 0,
                   "client %u: error.type", cases[i].status);
        } else {
            tap_ok(a == NULL, "client %u: no error.type", cases[i].status);
        }

        a = find(attrs, n, &et_key_http_request_resend_count);
        tap_ok(cases[i].resend < 0 ? a == NULL
                                   : (a && a->num == cases[i].resend),
               "client %u tries: resend_count", cases[i].tries);

        a = find(attrs, n, &et_key_server_port);
        tap_ok(a && a->num == 8080, "client: server.port of the peer");
    }
}


static void
test_span_name(void)
{
    size_t   i, n;
    uint8_t  buf[16];

    static const struct {
        const char  *method;
        const char  *route;
        size_t       size;
        const char  *want;
    } cases[] = {
        { "GET", "/api", 16, "GET /api" },
        { "GET", "", 16, "GET" },
        { "POST", "@fallback", 16, "POST @fallback" },
        { "GET", "/a-very-long-location", 16, "GET /a-very-long" },
        { "GET", "/x", 3, "GET" },
        { "GET", "/x", 4, "GET " },
        { "", "/x", 16, " /x" },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        n = et_http_span_name(buf, cases[i].size,
                              (et_str_t) { strlen(cases[i].method),
                                           (const uint8_t *) cases[i].method },
                              (et_str_t) { strlen(cases[i].route),
                                           (const uint8_t *) cases[i].route });
        tap_is_mem(buf, n, cases[i].want, "span name \"%s\" \"%s\" in %zu",
                   cases[i].method, cases[i].route, cases[i].size);
    }
}


static void
trace_fill(et_trace_t *t, int has_parent)
{
    size_t  i;

    memset(t, 0, sizeof(et_trace_t));

    for (i = 0; i < ET_TRACE_ID_LEN; i++) {
        t->trace_id[i] = (uint8_t) (0x10 + i);
    }

    for (i = 0; i < ET_SPAN_ID_LEN; i++) {
        t->span_id[i] = (uint8_t) (0x40 + i);
        t->parent_id[i] = (uint8_t) (0x60 + i);
    }

    t->flags = ET_FLAG_SAMPLED;
    t->has_parent = has_parent;
    t->sampled = 1;
    t->tracestate = S("k=v");
}


static void
test_span_init(void)
{
    int              rc;
    size_t           i;
    et_span_t        span;
    et_trace_t       t;
    static uint8_t   zero[ET_SPAN_ID_LEN];
    static et_str_t  service = et_string("$12\r\nservice.name\r\n$1\r\nx\r\n");
    static uint8_t   client[ET_SPAN_ID_LEN] = {
        0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7
    };

    static const struct {
        const char  *what;
        unsigned     kind;
        int          has_parent;
        int          client;
        uint64_t     start, end, want_end;
        int          rc;
    } cases[] = {
        { "server, continued", ET_SPAN_SERVER, 1, 0, 100, 200, 200, ET_OK },
        { "server, a new root", ET_SPAN_SERVER, 0, 0, 100, 200, 200, ET_OK },
        { "server, the id argument ignored", ET_SPAN_SERVER, 0, 1, 5, 5, 5,
          ET_OK },
        { "server, the clock stepped back", ET_SPAN_SERVER, 1, 0, 300, 200,
          300, ET_OK },
        { "client of a continued trace", ET_SPAN_CLIENT, 1, 1, 100, 150, 150,
          ET_OK },
        { "client of a new root", ET_SPAN_CLIENT, 0, 1, 100, 150, 150,
          ET_OK },
        { "client, the clock stepped back", ET_SPAN_CLIENT, 0, 1, 150, 0, 150,
          ET_OK },
        { "client without an id", ET_SPAN_CLIENT, 1, 0, 1, 2, 0, ET_ERROR },
        { "an unknown kind", 2, 1, 1, 1, 2, 0, ET_ERROR },
        { "kind -1", (unsigned) -1, 1, 1, 1, 2, 0, ET_ERROR },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        trace_fill(&t, cases[i].has_parent);
        memset(&span, 0xa5, sizeof(span));

        rc = et_http_span_init(&span, &t, cases[i].kind,
                               cases[i].client ? client : NULL,
                               cases[i].start, cases[i].end, &service);

        tap_is_int(rc, cases[i].rc, "span init, %s: result", cases[i].what);

        if (rc != ET_OK) {
            tap_ok(span.service == NULL && span.has_parent == 0
                   && span.nattrs == 0 && span.end_ns == 0
                   && memcmp(span.span_id, zero, ET_SPAN_ID_LEN) == 0,
                   "span init, %s: the span is zeroed", cases[i].what);
            continue;
        }

        tap_ok(memcmp(span.trace_id, t.trace_id, ET_TRACE_ID_LEN) == 0,
               "span init, %s: trace id", cases[i].what);
        tap_is_int(span.kind, cases[i].kind, "span init, %s: kind",
                   cases[i].what);
        tap_is_int(span.start_ns, cases[i].start, "span init, %s: start",
                   cases[i].what);
        tap_is_int(span.end_ns, cases[i].want_end, "span init, %s: end",
                   cases[i].what);
        tap_ok(span.service == &service, "span init, %s: service",
               cases[i].what);
        tap_is_mem(span.tracestate.data, span.tracestate.len, "k=v",
                   "span init, %s: tracestate", cases[i].what);
        tap_ok(span.name.len == 0 && span.status == ET_STATUS_UNSET
               && span.attrs == NULL && span.nattrs == 0
               && span.tries == NULL && span.ntries == 0,
               "span init, %s: name, status, attributes and tries empty",
               cases[i].what);

        if (cases[i].kind == ET_SPAN_SERVER) {
            tap_ok(memcmp(span.span_id, t.span_id, ET_SPAN_ID_LEN) == 0,
                   "span init, %s: the server span's id", cases[i].what);
            tap_is_int(span.has_parent, cases[i].has_parent,
                       "span init, %s: a parent when continued",
                       cases[i].what);
            tap_ok(memcmp(span.parent_id,
                          cases[i].has_parent ? t.parent_id : zero,
                          ET_SPAN_ID_LEN) == 0,
                   "span init, %s: the parent id", cases[i].what);

        } else {
            tap_ok(memcmp(span.span_id, client, ET_SPAN_ID_LEN) == 0,
                   "span init, %s: the client id", cases[i].what);
            tap_ok(span.has_parent
                   && memcmp(span.parent_id, t.span_id, ET_SPAN_ID_LEN) == 0,
                   "span init, %s: the server span is the parent",
                   cases[i].what);
        }
    }

    /* no tracestate carried: none on the span */
    trace_fill(&t, 1);
    t.tracestate.len = 0;
    t.tracestate.data = NULL;
    (void) et_http_span_init(&span, &t, ET_SPAN_SERVER, NULL, 1, 2, NULL);
    tap_ok(span.tracestate.len == 0 && span.service == NULL,
           "span init: no tracestate, no service");
}


static void
test_version(void)
{
    size_t    i;
    et_str_t  v;

    static const struct {
        unsigned     version;
        const char  *want;
    } cases[] = {
        { 9, "0.9" },              /* nginx's and httpd's HTTP/0.9 */
        { 0, "0.9" },
        { 999, "0.9" },
        { 1000, "1.0" },
        { 1001, "1.1" },
        { 1002, "1.1" },           /* HTTP/1.2: no such version */
        { 1999, "1.1" },
        { 2000, "2" },
        { 2001, "2" },
        { 3000, "3" },             /* nginx's NGX_HTTP_VERSION_30 */
        { 3001, "3" },
        { 9000, "3" },
        { (unsigned) -1, "3" },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        v = et_http_version(cases[i].version);
        tap_is_mem(v.data, v.len, cases[i].want, "version %u",
                   cases[i].version);
    }
}


static void
test_limits(void)
{
    size_t   n;
    uint8_t  name[ET_HTTP_SPAN_NAME_SIZE];
    uint8_t  route[300];

    /* a server span: every standard attribute and every user attribute */
    tap_ok(ET_HTTP_SERVER_ATTRS + ET_USER_ATTRS_MAX <= ET_ATTRS_MAX,
           "limits: ET_ATTRS_MAX holds ET_HTTP_SERVER_ATTRS and "
           "ET_USER_ATTRS_MAX");

    memset(route, 'r', sizeof(route));
    n = et_http_span_name(name, sizeof(name), S("GET"),
                          (et_str_t) { sizeof(route), route });
    tap_is_int(n, ET_HTTP_SPAN_NAME_SIZE,
               "limits: a long default name fills ET_HTTP_SPAN_NAME_SIZE");
}


int
main(void)
{
    test_split_peer();
    test_server();
    test_client();
    test_span_name();
    test_span_init();
    test_version();
    test_limits();

    return tap_done();
}
