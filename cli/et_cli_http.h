/*
 * POSTing JSON to a collector with libcurl: one handle, so the connection
 * is kept alive between batches.
 */

#ifndef ET_CLI_HTTP_H
#define ET_CLI_HTTP_H


#include <curl/curl.h>

#include "et_cli.h"


typedef struct {
    CURL               *curl;
    struct curl_slist  *headers;
    char                body[4096];   /* the start of the last answer */
    size_t              body_len;
    char                errbuf[CURL_ERROR_SIZE];
} et_cli_http_t;


/*
 * "headers" (NULL-terminated, "Name: value" each, may be NULL) are sent
 * with every request, after Content-Type.  ET_ERROR with a message in
 * "err" when libcurl cannot be set up.
 */
int et_cli_http_init(et_cli_http_t *h, const char *url, uint64_t timeout_ns,
    const char **headers, char *err, size_t size);

/*
 * POSTs "len" bytes of JSON.  Returns the HTTP status, or 0 when there was
 * no answer (connection refused, timeout...), the reason in "err".  The
 * first bytes of the answer's body are in h->body.
 */
long et_cli_http_post(et_cli_http_t *h, const char *data, size_t len,
    char *err, size_t size);

void et_cli_http_free(et_cli_http_t *h);


#endif /* ET_CLI_HTTP_H */
