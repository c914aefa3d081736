/*
 * What both adapters do alike with an HTTP exchange: the attributes of a
 * server span and of a client span (OpenTelemetry's stable HTTP semantic
 * conventions, docs/stream.md "Spans"), their status, and the default span name.
 * The adapter fills a plain description from its server's request; the
 * core turns it into attributes.
 */

#ifndef ET_HTTP_H
#define ET_HTTP_H


#include "et_core.h"
#include "et_span.h"
#include "et_propagation.h"


/* attributes et_http_server_attrs() and et_http_client_attrs() may add */
#define ET_HTTP_SERVER_ATTRS  12
#define ET_HTTP_CLIENT_ATTRS  8

/* bytes for a status code written as error.type */
#define ET_HTTP_STATUS_TEXT   8

/* bytes for a default span name, et_http_span_name()'s buffer */
#define ET_HTTP_SPAN_NAME_SIZE  256


typedef struct {
    et_str_t   method;
    et_str_t   target;            /* the request target as sent: path?query */
    et_str_t   scheme;            /* "http", "https" */
    et_str_t   host;              /* Host header without port, or empty */
    int64_t    port;              /* the local port, -1 when unknown */
    et_str_t   client_address;
    et_str_t   user_agent;        /* empty: not sent */
    et_str_t   protocol_version;  /* "1.1", "2" ... */
    unsigned   status;            /* 0: none */
} et_http_server_t;


typedef struct {
    et_str_t   method;
    et_str_t   url;               /* the upstream URL, or empty */
    et_str_t   peer;              /* the last peer, "addr:port", or empty */
    unsigned   status;            /* the last try's status, 0: none */
    unsigned   tries;             /* 0 or 1: no resend */
} et_http_client_t;


/*
 * Fills "attrs" (ET_HTTP_SERVER_ATTRS entries) and sets span->status;
 * "text" (ET_HTTP_STATUS_TEXT bytes) holds error.type's value and must
 * live as long as the attributes.  Returns the number of attributes.
 */
size_t et_http_server_attrs(const et_http_server_t *req, et_span_t *span,
    et_attr_t *attrs, uint8_t *text);

/* the same for a client span (ET_HTTP_CLIENT_ATTRS entries) */
size_t et_http_client_attrs(const et_http_client_t *req, et_span_t *span,
    et_attr_t *attrs, uint8_t *text);

/*
 * Splits "10.0.0.1:8080", "[::1]:8080" or "host" into address and port
 * (-1 when there is none).
 */
void et_http_split_peer(et_str_t peer, et_str_t *addr, int64_t *port);

/*
 * The default server span name: the method, a space and the name of the
 * location (nginx) or directory (httpd) that served it, written to "buf"
 * (at most "size" bytes, cut there).  Returns the length.
 */
size_t et_http_span_name(uint8_t *buf, size_t size, et_str_t method,
    et_str_t route);


/*
 * Zeroes "span" and writes what every span of a request's trace "t"
 * shares: the trace id, the tracestate, the service field ("service", from
 * et_service_field_init()) and the times, an end before the start (a
 * clock step) becoming the start.  By "kind":
 *
 *   ET_SPAN_SERVER: the server span's own id (t->span_id) and, when the
 *   trace was continued, its parent (t->parent_id); "client_id" is not
 *   read and may be NULL;
 *   ET_SPAN_CLIENT: "client_id" (ET_SPAN_ID_LEN bytes) as the id, and the
 *   server span as the parent.
 *
 * The name, status, attributes and tries are left empty for the caller.
 * ET_ERROR, with "span" zeroed, for another kind, or a client span without
 * an id.  The span points at t->tracestate and at "service": both must stay
 * valid until et_exporter_submit() returns.  Inline, as the calls for
 * every span fold the constant kind (make bench-instructions).
 */
static inline int
et_http_span_init(et_span_t *span, const et_trace_t *t, unsigned kind,
    const uint8_t *client_id, uint64_t start_ns, uint64_t end_ns,
    const et_str_t *service)
{
    memset(span, 0, sizeof(et_span_t));

    switch (kind) {

    case ET_SPAN_SERVER:
        memcpy(span->span_id, t->span_id, ET_SPAN_ID_LEN);

        if (t->has_parent) {
            memcpy(span->parent_id, t->parent_id, ET_SPAN_ID_LEN);
            span->has_parent = 1;
        }

        break;

    case ET_SPAN_CLIENT:
        if (client_id == NULL) {
            return ET_ERROR;
        }

        memcpy(span->span_id, client_id, ET_SPAN_ID_LEN);
        memcpy(span->parent_id, t->span_id, ET_SPAN_ID_LEN);
        span->has_parent = 1;
        break;

    default:
        return ET_ERROR;
    }

    memcpy(span->trace_id, t->trace_id, ET_TRACE_ID_LEN);
    span->kind = kind;
    span->start_ns = start_ns;
    span->end_ns = end_ns > start_ns ? end_ns : start_ns;
    span->tracestate = t->tracestate;
    span->service = service;

    return ET_OK;
}


/*
 * network.protocol.version of an HTTP version numbered as both servers
 * number it, 1000 * major + minor (nginx's r->http_version, httpd's
 * r->proto_num): "0.9", "1.0", "1.1", "2" or "3".  A minor version the
 * protocol does not have counts as the highest one below it ("1.5" is
 * "1.1", "2.1" is "2"), a major above 3 as "3".  The string is static.
 * Inline: it runs for every server span.
 */
static inline et_str_t
et_http_version(unsigned version)
{
    static const et_str_t  versions[] = {
        et_string("0.9"), et_string("1.0"), et_string("1.1"), et_string("2"),
        et_string("3")
    };

    if (version >= 3000) {
        return versions[4];
    }

    if (version >= 2000) {
        return versions[3];
    }

    if (version >= 1001) {
        return versions[2];
    }

    if (version >= 1000) {
        return versions[1];
    }

    return versions[0];
}


#endif /* ET_HTTP_H */
