/*
 * The collectors' JSON formats, built with jansson.  The spans point into
 * hiredis replies; the JSON owns copies of everything.
 */

#ifndef ET_CLI_JSON_H
#define ET_CLI_JSON_H


#include <jansson.h>

#include "et_cli.h"


/* a JSON string of any bytes: invalid UTF-8 becomes U+FFFD; NULL: ENOMEM */
json_t *et_cli_json_string(const uint8_t *p, size_t len);

/* 1 for an attribute the OpenTelemetry conventions type as int */
int et_cli_json_int_attr(const et_str_t *name);

/*
 * An OTLP ExportTraceServiceRequest (POST /v1/traces, JSON encoding): one
 * resource per service.name.  NULL when out of memory.
 */
json_t *et_cli_otlp(const et_cli_span_t *spans, size_t n);

/* a Zipkin v2 span list (POST /api/v2/spans); NULL when out of memory */
json_t *et_cli_zipkin(const et_cli_span_t *spans, size_t n);


#endif /* ET_CLI_JSON_H */
