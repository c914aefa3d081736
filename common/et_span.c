/*
 * The span model: attribute keys and constant fields, encoded as RESP bulk
 * strings once, so that encoding a span only copies them.
 */

#include <string.h>

#include "et_span.h"


/*
 * A key whose RESP form is a compile-time constant; "n" is the name's
 * length as a string literal (t/unit/test_stream.c checks every one against
 * et_key_init()).
 */
#define et_key(name, n)                                                       \
    { et_string(name), et_string("$" n "\r\n" name "\r\n") }


const et_key_t  et_key_http_request_method =
    et_key("http.request.method", "19");
const et_key_t  et_key_url_path =
    et_key("url.path", "8");
const et_key_t  et_key_url_query =
    et_key("url.query", "9");
const et_key_t  et_key_url_scheme =
    et_key("url.scheme", "10");
const et_key_t  et_key_url_full =
    et_key("url.full", "8");
const et_key_t  et_key_server_address =
    et_key("server.address", "14");
const et_key_t  et_key_server_port =
    et_key("server.port", "11");
const et_key_t  et_key_client_address =
    et_key("client.address", "14");
const et_key_t  et_key_user_agent_original =
    et_key("user_agent.original", "19");
const et_key_t  et_key_network_protocol_version =
    et_key("network.protocol.version", "24");
const et_key_t  et_key_http_response_status_code =
    et_key("http.response.status_code", "25");
const et_key_t  et_key_http_request_resend_count =
    et_key("http.request.resend_count", "25");
const et_key_t  et_key_error_type =
    et_key("error.type", "10");


/* "$<len>\r\n<data>\r\n"; config time only, so no need to be fast */
static uint8_t *
et_span_bulk(uint8_t *p, const uint8_t *data, size_t len)
{
    size_t   n, v;
    uint8_t  digits[20];

    n = 0;
    v = len;

    do {
        digits[n++] = (uint8_t) ('0' + v % 10);
        v /= 10;
    } while (v);

    *p++ = '$';

    while (n) {
        *p++ = digits[--n];
    }

    *p++ = '\r';
    *p++ = '\n';

    if (len) {
        memcpy(p, data, len);
        p += len;
    }

    *p++ = '\r';
    *p++ = '\n';

    return p;
}


void
et_key_init(et_key_t *key, uint8_t *buf, const uint8_t *name, size_t len)
{
    uint8_t  *p;

    p = et_span_bulk(buf, name, len);

    /* the name is kept in "buf" too: the caller's copy may go away */
    key->name.len = len;
    key->name.data = p - 2 - len;
    key->resp.len = (size_t) (p - buf);
    key->resp.data = buf;
}


void
et_field_init(et_str_t *out, uint8_t *buf, const uint8_t *key, size_t klen,
    const uint8_t *value, size_t vlen)
{
    uint8_t  *p;

    p = et_span_bulk(buf, key, klen);
    p = et_span_bulk(p, value, vlen);

    out->len = (size_t) (p - buf);
    out->data = buf;
}


/* fields of the entry that a user attribute must not duplicate */
static const et_str_t  et_span_reserved[] = {
    et_string("v"), et_string("trace_id"), et_string("span_id"),
    et_string("parent_id"), et_string("name"), et_string("kind"),
    et_string("start_ns"), et_string("end_ns"), et_string("status"),
    et_string("service.name"), et_string("tracestate"),
    et_string("event."), et_string("http.request.method"),
    et_string("url.path"), et_string("url.query"),
    et_string("url.scheme"), et_string("url.full"),
    et_string("server.address"), et_string("server.port"),
    et_string("client.address"), et_string("user_agent.original"),
    et_string("network.protocol.version"),
    et_string("http.response.status_code"),
    et_string("http.request.resend_count"), et_string("error.type"),
    et_null_string
};


int
et_attr_name_check(const uint8_t *name, size_t len, const char **err)
{
    size_t           i;
    const et_str_t  *r;

    if (len == 0 || len > ET_ATTR_NAME_MAX) {
        *err = "an attribute name is 1 to 255 characters long";
        return ET_ERROR;
    }

    for (i = 0; i < len; i++) {
        if (name[i] <= ' ' || name[i] >= 0x7f) {
            *err = "an attribute name is printable ASCII without spaces";
            return ET_ERROR;
        }
    }

    for (r = et_span_reserved; r->len; r++) {
        if ((r->data[r->len - 1] == '.'
             && len > r->len && memcmp(name, r->data, r->len) == 0)
            || (r->len == len && memcmp(name, r->data, len) == 0))
        {
            *err = "the attribute name is reserved: the module sets it";
            return ET_ERROR;
        }
    }

    return ET_OK;
}


int
et_service_name_check(const uint8_t *name, size_t len, const char **err)
{
    (void) name;

    if (len == 0 || len > ET_SERVICE_NAME_MAX) {
        *err = "must be 1 to 255 bytes";
        return ET_ERROR;
    }

    return ET_OK;
}


void
et_service_field_init(et_str_t *out, uint8_t *buf, const uint8_t *name,
    size_t len)
{
    et_field_init(out, buf, (const uint8_t *) "service.name",
                  sizeof("service.name") - 1, name, len);
}
