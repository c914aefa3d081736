/*
 * Unit tests: cli/et_cli_json.c, spans as OTLP/HTTP JSON and Zipkin v2
 * JSON, byte for byte (jansson keeps the order fields are set in).
 */

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "et_cli.h"
#include "et_cli_json.h"
#include "tap.h"


#define S(s)  { sizeof(s) - 1, (const uint8_t *) (s) }


static const et_str_t  server_fields[] = {
    S("v"), S("1"),
    S("trace_id"), S("4bf92f3577b34da6a3ce929d0e0e4736"),
    S("span_id"), S("00f067aa0ba902b7"),
    S("name"), S("GET /"),
    S("kind"), S("server"),
    S("start_ns"), S("1700000000000001000"),
    S("end_ns"), S("1700000000002000500"),
    S("status"), S("error"),
    S("service.name"), S("nginx"),
    S("tracestate"), S("a=b"),
    S("http.request.method"), S("GET"),
    S("server.port"), S("8080"),
    S("http.response.status_code"), S("503"),
    S("user_agent.original"), S("a\xff\0b"),
    S("error.type"), S("503"),
};

static const et_str_t  client_fields[] = {
    S("v"), S("1"),
    S("trace_id"), S("4bf92f3577b34da6a3ce929d0e0e4736"),
    S("span_id"), S("00f067aa0ba902b8"),
    S("parent_id"), S("00f067aa0ba902b7"),
    S("name"), S("proxy"),
    S("kind"), S("client"),
    S("start_ns"), S("1700000000000002000"),
    S("end_ns"), S("1700000000000002000"),
    S("status"), S("unset"),
    S("service.name"), S("nginx"),
    S("server.address"), S("::1"),
    S("server.port"), S("x1"),
    S("k\xc0"), S("v"),
    S("event.0"), S("upstream.try peer=[::1]:81 status=502 connect_ms=-"
                    " header_ms=3"),
};


static void
is_json(json_t *doc, const char *want, const char *what)
{
    char  *got;

    got = doc ? json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    tap_ok(got != NULL && strcmp(got, want) == 0, "%s", what);

    if (got == NULL || strcmp(got, want) != 0) {
        printf("#   got:      %s\n#   expected: %s\n", got ? got : "NULL",
               want);
    }

    free(got);
    json_decref(doc);
}


int
main(void)
{
    et_str_t       id = S("1700000000000-0");
    et_cli_span_t  spans[2];

    tap_is_int(et_cli_span_parse(&id, server_fields,
                                 sizeof(server_fields) / sizeof(et_str_t),
                                 &spans[0]), ET_CLI_SPAN_OK, "server span");
    tap_is_int(et_cli_span_parse(&id, client_fields,
                                 sizeof(client_fields) / sizeof(et_str_t),
                                 &spans[1]), ET_CLI_SPAN_OK, "client span");

    is_json(et_cli_otlp(spans, 2),
        "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":"
        "\"service.name\",\"value\":{\"stringValue\":\"nginx\"}}]},"
        "\"scopeSpans\":[{\"scope\":{\"name\":\"edgetrace\",\"version\":\""
        ET_CLI_VERSION "\"},\"spans\":["
        "{\"traceId\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"spanId\":"
        "\"00f067aa0ba902b7\",\"traceState\":\"a=b\",\"name\":\"GET /\","
        "\"kind\":2,\"startTimeUnixNano\":\"1700000000000001000\","
        "\"endTimeUnixNano\":\"1700000000002000500\",\"attributes\":["
        "{\"key\":\"http.request.method\",\"value\":{\"stringValue\":"
        "\"GET\"}},{\"key\":\"server.port\",\"value\":{\"intValue\":"
        "\"8080\"}},{\"key\":\"http.response.status_code\",\"value\":"
        "{\"intValue\":\"503\"}},{\"key\":\"user_agent.original\","
        "\"value\":{\"stringValue\":\"a\xef\xbf\xbd\\u0000b\"}},{\"key\":"
        "\"error.type\",\"value\":{\"stringValue\":\"503\"}}],\"status\":"
        "{\"code\":2,\"message\":\"503\"}},"
        "{\"traceId\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"spanId\":"
        "\"00f067aa0ba902b8\",\"parentSpanId\":\"00f067aa0ba902b7\","
        "\"name\":\"proxy\",\"kind\":3,\"startTimeUnixNano\":"
        "\"1700000000000002000\",\"endTimeUnixNano\":\"1700000000000002000\","
        "\"attributes\":[{\"key\":\"server.address\",\"value\":"
        "{\"stringValue\":\"::1\"}},{\"key\":\"server.port\",\"value\":"
        "{\"stringValue\":\"x1\"}},{\"key\":\"k\xef\xbf\xbd\",\"value\":"
        "{\"stringValue\":\"v\"}}],\"events\":[{\"timeUnixNano\":"
        "\"1700000000000002000\",\"name\":\"upstream.try\",\"attributes\":"
        "[{\"key\":\"peer\",\"value\":{\"stringValue\":\"[::1]:81\"}},"
        "{\"key\":\"status\",\"value\":{\"intValue\":\"502\"}},{\"key\":"
        "\"header_ms\",\"value\":{\"intValue\":\"3\"}}]}],\"status\":"
        "{\"code\":0}}]}]}]}",
        "OTLP: resource, scope, ids, kinds, times, typed attributes, "
        "events, status, invalid UTF-8 and NUL");

    is_json(et_cli_zipkin(spans, 2),
        "[{\"traceId\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"id\":"
        "\"00f067aa0ba902b7\",\"name\":\"GET /\",\"kind\":\"SERVER\","
        "\"timestamp\":1700000000000001,\"duration\":1999,"
        "\"localEndpoint\":{\"serviceName\":\"nginx\"},\"tags\":{"
        "\"http.request.method\":\"GET\",\"server.port\":\"8080\","
        "\"http.response.status_code\":\"503\",\"user_agent.original\":"
        "\"a\xef\xbf\xbd\\u0000b\",\"error.type\":\"503\",\"error\":\"503\"}},"
        "{\"traceId\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"id\":"
        "\"00f067aa0ba902b8\",\"parentId\":\"00f067aa0ba902b7\",\"name\":"
        "\"proxy\",\"kind\":\"CLIENT\",\"timestamp\":1700000000000002,"
        "\"duration\":1,\"localEndpoint\":{\"serviceName\":\"nginx\"},"
        "\"remoteEndpoint\":{\"ipv6\":\"::1\"},\"tags\":{\"server.address\":"
        "\"::1\",\"server.port\":\"x1\",\"k\xef\xbf\xbd\":\"v\"},"
        "\"annotations\":[{\"timestamp\":1700000000000002,\"value\":"
        "\"upstream.try peer=[::1]:81 status=502 connect_ms=- header_ms=3\""
        "}]}]",
        "Zipkin: microseconds, a zero duration as 1, kinds, endpoints, "
        "tags, error tag, annotations, invalid UTF-8 and NUL");

    is_json(et_cli_json_string((const uint8_t *) "\xe2\x82", 2),
            "\"\xef\xbf\xbd\xef\xbf\xbd\"", "a cut sequence: two U+FFFD");

    return tap_done();
}
