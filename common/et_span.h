/*
 * The span model: what a propagation format extracts (et_context_t) and
 * what the encoder writes (et_span_t).
 *
 * A span does not own its strings: they point into the request's memory
 * (or the configuration) and must stay valid until et_exporter_submit()
 * returns, which copies everything into the queue in encoded form.
 */

#ifndef ET_SPAN_H
#define ET_SPAN_H


#include "et_core.h"
#include "et_id.h"


/* W3C trace-flags bits; B3 states map onto the same bits */
#define ET_FLAG_SAMPLED  0x01
#define ET_FLAG_RANDOM   0x02
#define ET_FLAGS_KNOWN   0x03


typedef struct {
    uint8_t    trace_id[ET_TRACE_ID_LEN];
    uint8_t    span_id[ET_SPAN_ID_LEN];
    uint8_t    flags;                     /* ET_FLAG_* only */
} et_context_t;


#define ET_SPAN_SERVER  0
#define ET_SPAN_CLIENT  1

#define ET_STATUS_UNSET  0
#define ET_STATUS_ERROR  1

#define ET_ATTR_STRING  0
#define ET_ATTR_INT     1


/*
 * An attribute key: its name and the name already encoded as a RESP bulk
 * string ("$N\r\nname\r\n"), built once (static tables or config time).
 */
typedef struct {
    et_str_t   name;
    et_str_t   resp;
} et_key_t;


/* the bytes et_key_init() needs for a name of "len" bytes */
#define ET_KEY_RESP_SIZE(len)  ((len) + 24)

/* builds a key in "buf" (ET_KEY_RESP_SIZE(len) bytes, owned by the caller) */
void et_key_init(et_key_t *key, uint8_t *buf, const uint8_t *name,
    size_t len);


/* the OpenTelemetry semantic-convention keys of docs/stream.md "Spans" */
extern const et_key_t  et_key_http_request_method;
extern const et_key_t  et_key_url_path;
extern const et_key_t  et_key_url_query;
extern const et_key_t  et_key_url_scheme;
extern const et_key_t  et_key_url_full;
extern const et_key_t  et_key_server_address;
extern const et_key_t  et_key_server_port;
extern const et_key_t  et_key_client_address;
extern const et_key_t  et_key_user_agent_original;
extern const et_key_t  et_key_network_protocol_version;
extern const et_key_t  et_key_http_response_status_code;
extern const et_key_t  et_key_http_request_resend_count;
extern const et_key_t  et_key_error_type;


typedef struct {
    const et_key_t  *key;
    int              type;                /* ET_ATTR_* */
    et_str_t         str;
    int64_t          num;
} et_attr_t;


/*
 * One try of an upstream exchange, recorded as a span event.  Times are in
 * milliseconds, -1 when unknown; status 0 when no response was received.
 */
typedef struct {
    et_str_t    peer;                     /* "address:port" as text */
    unsigned    status;
    int64_t     connect_ms;
    int64_t     header_ms;
    int64_t     response_ms;
} et_try_t;


typedef struct {
    uint8_t          trace_id[ET_TRACE_ID_LEN];
    uint8_t          span_id[ET_SPAN_ID_LEN];
    uint8_t          parent_id[ET_SPAN_ID_LEN];
    unsigned         has_parent:1;
    unsigned         kind:1;              /* ET_SPAN_* */
    unsigned         status:1;            /* ET_STATUS_* */

    uint64_t         start_ns;
    uint64_t         end_ns;

    et_str_t         name;
    et_str_t         tracestate;          /* empty: no field */

    /* "service.name" field and value, RESP-encoded: et_field_init() */
    const et_str_t  *service;

    /*
     * the "edgetrace.sampling" field's value, RESP-encoded and constant:
     * et_sampling_field() (et_keep.h); NULL: no such field
     */
    const et_str_t  *sampling;

    const et_attr_t *attrs;
    size_t           nattrs;

    const et_try_t  *tries;
    size_t           ntries;
} et_span_t;


/* the bytes et_field_init() needs for a field and a value */
#define ET_FIELD_RESP_SIZE(klen, vlen)  ((klen) + (vlen) + 48)

/*
 * Encodes a constant field and its value as two RESP bulk strings into
 * "buf" (ET_FIELD_RESP_SIZE bytes, owned by the caller): used for
 * service.name, built once at config time.
 */
void et_field_init(et_str_t *out, uint8_t *buf, const uint8_t *key,
    size_t klen, const uint8_t *value, size_t vlen);


/* the longest name a user attribute may have */
#define ET_ATTR_NAME_MAX  255

/*
 * The bounds of a span, the same in both servers: its attributes (the
 * standard ones of et_http.h and the user's), the user attributes one
 * configuration level may hold (edgetrace_attribute, EdgeTraceAttribute),
 * the tries of a client span recorded as events (more are counted in
 * http.request.resend_count but not listed), and a service.name's bytes.
 */
#define ET_ATTRS_MAX         64
#define ET_USER_ATTRS_MAX    40
#define ET_TRIES_MAX         16
#define ET_SERVICE_NAME_MAX  255

/*
 * Checks a user attribute's name (edgetrace_attribute,
 * EdgeTraceAttribute): printable ASCII, at most ET_ATTR_NAME_MAX bytes,
 * none of the entry's own fields or standard attributes.  ET_ERROR with a
 * constant text in "err".
 */
int et_attr_name_check(const uint8_t *name, size_t len, const char **err);

/*
 * Checks a service name (edgetrace_service_name, EdgeTraceServiceName): 1
 * to ET_SERVICE_NAME_MAX bytes, any bytes (the field is binary-safe).
 * ET_ERROR with a constant text in "err", written to follow the
 * directive's name: "must be 1 to 255 bytes".
 */
int et_service_name_check(const uint8_t *name, size_t len, const char **err);


/* the bytes et_service_field_init() needs for a name of "len" bytes */
#define ET_SERVICE_FIELD_SIZE(len)                                            \
    ET_FIELD_RESP_SIZE(sizeof("service.name") - 1, len)

/*
 * The span's "service.name" field and its value "name", encoded once at
 * config time into "buf" (ET_SERVICE_FIELD_SIZE(len) bytes, owned by the
 * caller and living as long as the configuration) for et_span_t.service.
 */
void et_service_field_init(et_str_t *out, uint8_t *buf, const uint8_t *name,
    size_t len);


/*
 * Appends the string attribute "key" = "value" at attrs[*n] and advances
 * *n; "max" is the room in "attrs".  ET_DECLINED, with nothing added, when
 * the array is full.  An empty value is an attribute with an empty string
 * (a variable or expression that comes out empty, in both servers); a
 * value of any length is taken whole and cut at the stream's value_max
 * (edgetrace_value_max_size) when the span is encoded.  Nothing is copied:
 * "key" and value.data must stay valid until et_exporter_submit() returns.
 */
static inline int
et_attr_add_string(et_attr_t *attrs, size_t *n, size_t max,
    const et_key_t *key, et_str_t value)
{
    et_attr_t  *a;

    if (*n >= max) {
        return ET_DECLINED;
    }

    a = &attrs[(*n)++];
    a->key = key;
    a->type = ET_ATTR_STRING;
    a->str = value;
    a->num = 0;

    return ET_OK;
}


#endif /* ET_SPAN_H */
