/*
 * Spans as the collectors take them: OTLP/HTTP JSON
 * (ExportTraceServiceRequest, the protobuf JSON mapping: hex ids, 64-bit
 * integers as decimal strings) and Zipkin v2 JSON (a list of spans,
 * microseconds).
 *
 * Every byte string from the stream goes through et_cli_json_string():
 * jansson refuses invalid UTF-8, and a client's header may hold anything.
 */

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "et_cli.h"
#include "et_cli_json.h"


/* attributes the OpenTelemetry conventions type as int */
static const char  *et_cli_int_attrs[] = {
    "http.response.status_code", "server.port", "client.port",
    "http.request.resend_count", "network.peer.port", NULL
};


json_t *
et_cli_json_string(const uint8_t *p, size_t len)
{
    json_t   *j;
    uint8_t  *buf;
    size_t    n;

    if (et_cli_utf8_valid(p, len)) {
        return json_stringn_nocheck(len ? (const char *) p : "", len);
    }

    buf = malloc(ET_CLI_UTF8_MAX(len));

    if (buf == NULL) {
        return NULL;
    }

    n = et_cli_utf8_sanitize(p, len, buf);
    j = json_stringn_nocheck((const char *) buf, n);
    free(buf);

    return j;
}


/*
 * object[key] = value, "key" of any bytes; ET_ERROR when out of memory.
 * A NUL is valid in a JSON key but many parsers (jansson among them)
 * refuse it: in keys it becomes U+FFFD like an invalid byte.
 */
static int
et_cli_json_setn(json_t *obj, const uint8_t *key, size_t klen, json_t *v)
{
    int       rc;
    size_t    i, n;
    uint8_t  *buf;

    if (v == NULL) {
        return ET_ERROR;
    }

    if (memchr(key, '\0', klen) == NULL && et_cli_utf8_valid(key, klen)) {
        return json_object_setn_new_nocheck(obj, klen ? (const char *) key
                                                      : "", klen, v)
               == 0 ? ET_OK : ET_ERROR;
    }

    buf = malloc(klen + ET_CLI_UTF8_MAX(klen));

    if (buf == NULL) {
        json_decref(v);
        return ET_ERROR;
    }

    /* 0xff is never valid UTF-8: the repair replaces it */
    for (i = 0; i < klen; i++) {
        buf[i] = key[i] ? key[i] : 0xff;
    }

    n = et_cli_utf8_sanitize(buf, klen, buf + klen);
    rc = json_object_setn_new_nocheck(obj, (const char *) buf + klen, n, v);
    free(buf);

    return rc == 0 ? ET_OK : ET_ERROR;
}


static int
et_cli_json_set(json_t *obj, const char *key, json_t *v)
{
    if (v == NULL) {
        return ET_ERROR;
    }

    return json_object_set_new_nocheck(obj, key, v) == 0 ? ET_OK : ET_ERROR;
}


/* "key" set to the array "a" only when it has elements; "a" is taken */

static int
et_cli_json_set_list(json_t *obj, const char *key, json_t *a)
{
    if (json_array_size(a) == 0) {
        json_decref(a);
        return ET_OK;
    }

    return et_cli_json_set(obj, key, a);
}


static int
et_cli_json_push(json_t *arr, json_t *v)
{
    if (v == NULL) {
        return ET_ERROR;
    }

    return json_array_append_new(arr, v) == 0 ? ET_OK : ET_ERROR;
}


static json_t *
et_cli_json_u64(uint64_t v)
{
    char  buf[32];

    snprintf(buf, sizeof(buf), "%llu", (unsigned long long) v);

    return json_string_nocheck(buf);
}


int
et_cli_json_int_attr(const et_str_t *name)
{
    size_t  i, len;

    for (i = 0; et_cli_int_attrs[i]; i++) {
        len = strlen(et_cli_int_attrs[i]);

        if (name->len == len
            && memcmp(name->data, et_cli_int_attrs[i], len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/* {"key": k, "value": {"stringValue" | "intValue": v}} */
static json_t *
et_cli_otlp_kv(const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen,
    int as_int)
{
    int64_t   n;
    json_t   *kv, *val;

    kv = json_object();
    val = json_object();

    if (kv == NULL || val == NULL) {
        json_decref(kv);
        json_decref(val);
        return NULL;
    }

    if (et_cli_json_set(kv, "key", et_cli_json_string(k, klen)) != ET_OK) {
        goto failed;
    }

    if (as_int && et_parse_int(v, vlen, 0, INT64_MAX, &n) == ET_OK) {
        /* int64 in the protobuf JSON mapping: a decimal string */
        if (et_cli_json_set(val, "intValue", et_cli_json_u64((uint64_t) n))
            != ET_OK)
        {
            goto failed;
        }

    } else if (et_cli_json_set(val, "stringValue",
                               et_cli_json_string(v, vlen))
               != ET_OK)
    {
        goto failed;
    }

    if (et_cli_json_set(kv, "value", val) != ET_OK) {
        json_decref(kv);
        return NULL;
    }

    return kv;

failed:

    json_decref(kv);
    json_decref(val);

    return NULL;
}


/*
 * An "event.<i>" value: "upstream.try peer=127.0.0.1:8081 status=502
 * connect_ms=- header_ms=- response_ms=0".  The entry carries no time
 * per try: the events take the span's start time.
 */
static json_t *
et_cli_otlp_event(const et_cli_span_t *span, const et_str_t *v)
{
    int              as_int;
    size_t           i, j, eq;
    json_t          *ev, *attrs;
    const uint8_t   *p;

    ev = json_object();
    attrs = json_array();

    if (ev == NULL || attrs == NULL) {
        goto failed;
    }

    p = v->data;

    for (i = 0; i < v->len && p[i] != ' '; i++) {
        /* void */
    }

    if (et_cli_json_set(ev, "timeUnixNano", et_cli_json_u64(span->start_ns))
        != ET_OK
        || et_cli_json_set(ev, "name", et_cli_json_string(p, i)) != ET_OK)
    {
        goto failed;
    }

    while (i < v->len) {
        i++;

        for (j = i, eq = 0; j < v->len && p[j] != ' '; j++) {
            if (p[j] == '=' && eq == 0) {
                eq = j;
            }
        }

        /* "-": nginx did not measure it */
        if (eq > i && !(j - eq == 2 && p[eq + 1] == '-')) {
            as_int = !(eq - i == 4 && memcmp(p + i, "peer", 4) == 0);

            if (et_cli_json_push(attrs, et_cli_otlp_kv(p + i, eq - i,
                                                       p + eq + 1,
                                                       j - eq - 1, as_int))
                != ET_OK)
            {
                goto failed;
            }
        }

        i = j;
    }

    if (et_cli_json_set(ev, "attributes", attrs) != ET_OK) {
        json_decref(ev);
        return NULL;
    }

    return ev;

failed:

    json_decref(ev);
    json_decref(attrs);

    return NULL;
}


static json_t *
et_cli_otlp_span(const et_cli_span_t *s)
{
    size_t           i;
    json_t          *o, *attrs, *events, *status;
    const et_str_t  *f, *err;

    o = json_object();
    attrs = json_array();
    events = json_array();
    status = json_object();

    if (o == NULL || attrs == NULL || events == NULL || status == NULL) {
        goto failed;
    }

    if (et_cli_json_set(o, "traceId", json_string_nocheck(s->trace_id))
        || et_cli_json_set(o, "spanId", json_string_nocheck(s->span_id))
        || (s->parent_id[0]
            && et_cli_json_set(o, "parentSpanId",
                               json_string_nocheck(s->parent_id)))
        || (s->tracestate.len
            && et_cli_json_set(o, "traceState",
                               et_cli_json_string(s->tracestate.data,
                                                  s->tracestate.len)))
        || et_cli_json_set(o, "name",
                           et_cli_json_string(s->name.data, s->name.len))
        /* SPAN_KIND_SERVER = 2, SPAN_KIND_CLIENT = 3 */
        || et_cli_json_set(o, "kind", json_integer(
                               s->kind == ET_CLI_KIND_SERVER ? 2 : 3))
        || et_cli_json_set(o, "startTimeUnixNano",
                           et_cli_json_u64(s->start_ns))
        || et_cli_json_set(o, "endTimeUnixNano", et_cli_json_u64(s->end_ns)))
    {
        goto failed;
    }

    for (i = 0; i < s->nfields; i += 2) {
        f = &s->fields[i];

        if (et_cli_span_known_field(f)) {
            continue;
        }

        if (et_cli_span_event_field(f)) {
            if (et_cli_json_push(events, et_cli_otlp_event(s, f + 1))
                != ET_OK)
            {
                goto failed;
            }

            continue;
        }

        if (et_cli_json_push(attrs, et_cli_otlp_kv(f->data, f->len,
                                                   f[1].data, f[1].len,
                                                   et_cli_json_int_attr(f)))
            != ET_OK)
        {
            goto failed;
        }
    }

    /* STATUS_CODE_ERROR = 2, STATUS_CODE_UNSET = 0 */
    if (s->error) {
        err = et_cli_span_attr(s, "error.type");

        if (et_cli_json_set(status, "code", json_integer(2)) != ET_OK
            || (err && et_cli_json_set(status, "message",
                                       et_cli_json_string(err->data,
                                                          err->len))
                       != ET_OK))
        {
            goto failed;
        }

    } else if (et_cli_json_set(status, "code", json_integer(0)) != ET_OK) {
        goto failed;
    }

    if (et_cli_json_set(o, "attributes", attrs) != ET_OK) {
        attrs = NULL;
        goto failed;
    }

    attrs = NULL;

    if (et_cli_json_set_list(o, "events", events) != ET_OK) {
        events = NULL;
        goto failed;
    }

    events = NULL;

    if (et_cli_json_set(o, "status", status) != ET_OK) {
        status = NULL;
        goto failed;
    }

    return o;

failed:

    json_decref(o);
    json_decref(attrs);
    json_decref(events);
    json_decref(status);

    return NULL;
}


json_t *
et_cli_otlp(const et_cli_span_t *spans, size_t n)
{
    size_t                i, k, nres;
    json_t               *root, *list, *rs, *res, *attrs, *ss, *ssl, *scope;
    json_t              **span_lists;
    const et_cli_span_t **res_span;

    root = json_object();
    list = json_array();
    span_lists = calloc(n ? n : 1, sizeof(json_t *));
    res_span = calloc(n ? n : 1, sizeof(et_cli_span_t *));

    if (root == NULL || list == NULL || span_lists == NULL
        || res_span == NULL)
    {
        goto failed;
    }

    if (et_cli_json_set(root, "resourceSpans", list) != ET_OK) {
        list = NULL;
        goto failed;
    }

    nres = 0;

    for (i = 0; i < n; i++) {

        /* one resource per service.name, in the order they first appear */
        for (k = 0; k < nres; k++) {
            if (res_span[k]->service.len == spans[i].service.len
                && memcmp(res_span[k]->service.data, spans[i].service.data,
                          spans[i].service.len) == 0)
            {
                break;
            }
        }

        if (k == nres) {
            rs = json_object();
            res = json_object();
            attrs = json_array();
            ss = json_object();
            ssl = json_array();
            scope = json_object();
            span_lists[k] = json_array();

            if (et_cli_json_push(list, rs) != ET_OK
                || et_cli_json_set(rs, "resource", res) != ET_OK
                || et_cli_json_set(res, "attributes", attrs) != ET_OK
                || et_cli_json_push(attrs, et_cli_otlp_kv(
                       (const uint8_t *) "service.name", 12,
                       spans[i].service.data, spans[i].service.len, 0))
                   != ET_OK
                || et_cli_json_set(rs, "scopeSpans", ssl) != ET_OK
                || et_cli_json_push(ssl, ss) != ET_OK
                || et_cli_json_set(ss, "scope", scope) != ET_OK
                || et_cli_json_set(scope, "name",
                                   json_string_nocheck("edgetrace"))
                   != ET_OK
                || et_cli_json_set(scope, "version",
                                   json_string_nocheck(ET_CLI_VERSION))
                   != ET_OK
                || span_lists[k] == NULL
                || json_object_set_nocheck(ss, "spans", span_lists[k]) != 0)
            {
                /* the pieces not yet linked are lost with the process */
                goto failed;
            }

            res_span[k] = &spans[i];
            nres++;
        }

        if (et_cli_json_push(span_lists[k], et_cli_otlp_span(&spans[i]))
            != ET_OK)
        {
            goto failed;
        }
    }

    for (k = 0; k < nres; k++) {
        json_decref(span_lists[k]);
    }

    free(span_lists);
    free(res_span);

    return root;

failed:

    if (span_lists) {
        for (k = 0; k < n; k++) {
            json_decref(span_lists[k]);
        }
    }

    free(span_lists);
    free(res_span);
    json_decref(root);

    return NULL;
}


/* Zipkin's Endpoint: an address is ipv4 or ipv6, a name serviceName */
static json_t *
et_cli_zipkin_endpoint(const et_str_t *addr, const et_str_t *port)
{
    int64_t   n;
    char      buf[64];
    json_t   *ep;
    uint8_t   bin[16];
    size_t    len;

    ep = json_object();

    if (ep == NULL) {
        return NULL;
    }

    if (addr && addr->len) {
        len = addr->len;

        /* "[::1]" in a Host header */
        if (len > 2 && addr->data[0] == '[' && addr->data[len - 1] == ']') {
            len -= 2;
            memcpy(buf, addr->data + 1, len < sizeof(buf) ? len : 0);

        } else if (len < sizeof(buf)) {
            memcpy(buf, addr->data, len);
        }

        if (len < sizeof(buf)) {
            buf[len] = '\0';
        }

        if (len < sizeof(buf) && memchr(buf, '\0', len) == NULL
            && inet_pton(AF_INET, buf, bin) == 1)
        {
            if (et_cli_json_set(ep, "ipv4", json_string_nocheck(buf))
                != ET_OK)
            {
                goto failed;
            }

        } else if (len < sizeof(buf) && memchr(buf, '\0', len) == NULL
                   && inet_pton(AF_INET6, buf, bin) == 1)
        {
            if (et_cli_json_set(ep, "ipv6", json_string_nocheck(buf))
                != ET_OK)
            {
                goto failed;
            }

        } else if (et_cli_json_set(ep, "serviceName",
                                   et_cli_json_string(addr->data, addr->len))
                   != ET_OK)
        {
            goto failed;
        }
    }

    if (port && et_parse_int(port->data, port->len, 1, 65535, &n) == ET_OK) {
        if (et_cli_json_set(ep, "port", json_integer(n)) != ET_OK) {
            goto failed;
        }
    }

    return ep;

failed:

    json_decref(ep);

    return NULL;
}


static json_t *
et_cli_zipkin_span(const et_cli_span_t *s)
{
    size_t           i;
    uint64_t         us;
    json_t          *o, *tags, *ann, *a, *ep;
    const et_str_t  *f, *err;

    o = json_object();
    tags = json_object();
    ann = json_array();

    if (o == NULL || tags == NULL || ann == NULL) {
        goto failed;
    }

    /* Zipkin reads a zero duration as unknown: a span lasts >= 1 us */
    us = (s->end_ns - s->start_ns) / 1000;

    if (et_cli_json_set(o, "traceId", json_string_nocheck(s->trace_id))
        || et_cli_json_set(o, "id", json_string_nocheck(s->span_id))
        || (s->parent_id[0]
            && et_cli_json_set(o, "parentId",
                               json_string_nocheck(s->parent_id)))
        || et_cli_json_set(o, "name",
                           et_cli_json_string(s->name.data, s->name.len))
        || et_cli_json_set(o, "kind", json_string_nocheck(
                               s->kind == ET_CLI_KIND_SERVER ? "SERVER"
                                                             : "CLIENT"))
        || et_cli_json_set(o, "timestamp",
                           json_integer((json_int_t) (s->start_ns / 1000)))
        || et_cli_json_set(o, "duration",
                           json_integer((json_int_t) (us ? us : 1))))
    {
        goto failed;
    }

    ep = json_object();

    if (et_cli_json_set(o, "localEndpoint", ep) != ET_OK
        || et_cli_json_set(ep, "serviceName",
                           et_cli_json_string(s->service.data,
                                              s->service.len))
           != ET_OK)
    {
        goto failed;
    }

    if (s->kind == ET_CLI_KIND_CLIENT
        && et_cli_span_attr(s, "server.address") != NULL)
    {
        if (et_cli_json_set(o, "remoteEndpoint", et_cli_zipkin_endpoint(
                                et_cli_span_attr(s, "server.address"),
                                et_cli_span_attr(s, "server.port")))
            != ET_OK)
        {
            goto failed;
        }
    }

    for (i = 0; i < s->nfields; i += 2) {
        f = &s->fields[i];

        if (et_cli_span_known_field(f)) {
            continue;
        }

        if (et_cli_span_event_field(f)) {
            a = json_object();

            if (et_cli_json_push(ann, a) != ET_OK
                || et_cli_json_set(a, "timestamp", json_integer(
                                       (json_int_t) (s->start_ns / 1000)))
                   != ET_OK
                || et_cli_json_set(a, "value", et_cli_json_string(
                                       f[1].data, f[1].len))
                   != ET_OK)
            {
                goto failed;
            }

            continue;
        }

        if (et_cli_json_setn(tags, f->data, f->len,
                             et_cli_json_string(f[1].data, f[1].len))
            != ET_OK)
        {
            goto failed;
        }
    }

    /* Zipkin marks a failed span with an "error" tag */
    if (s->error) {
        err = et_cli_span_attr(s, "error.type");

        if (et_cli_json_set(tags, "error",
                            err ? et_cli_json_string(err->data, err->len)
                                : json_string_nocheck("true"))
            != ET_OK)
        {
            goto failed;
        }
    }

    if (et_cli_json_set(o, "tags", tags) != ET_OK) {
        tags = NULL;
        goto failed;
    }

    tags = NULL;

    if (et_cli_json_set_list(o, "annotations", ann) != ET_OK) {
        ann = NULL;
        goto failed;
    }

    return o;

failed:

    json_decref(o);
    json_decref(tags);
    json_decref(ann);

    return NULL;
}


json_t *
et_cli_zipkin(const et_cli_span_t *spans, size_t n)
{
    size_t   i;
    json_t  *list;

    list = json_array();

    if (list == NULL) {
        return NULL;
    }

    for (i = 0; i < n; i++) {
        if (et_cli_json_push(list, et_cli_zipkin_span(&spans[i])) != ET_OK) {
            json_decref(list);
            return NULL;
        }
    }

    return list;
}
