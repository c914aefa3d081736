/*
 * The collector's side of export: libcurl, one easy handle reused, so
 * batches share a kept-alive connection (and TLS session, for https).
 */

#include <string.h>

#include "et_cli_http.h"


static size_t
et_cli_http_write(char *p, size_t size, size_t n, void *data)
{
    size_t          len, room;
    et_cli_http_t  *h;

    h = data;
    len = size * n;
    room = sizeof(h->body) - 1 - h->body_len;

    if (room) {
        memcpy(h->body + h->body_len, p, len < room ? len : room);
        h->body_len += len < room ? len : room;
        h->body[h->body_len] = '\0';
    }

    return len;
}


int
et_cli_http_init(et_cli_http_t *h, const char *url, uint64_t timeout_ns,
    const char **headers, char *err, size_t size)
{
    long                ms;
    struct curl_slist  *l;

    memset(h, 0, sizeof(et_cli_http_t));

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, size, "cannot initialise libcurl");
        return ET_ERROR;
    }

    h->curl = curl_easy_init();
    h->headers = curl_slist_append(NULL, "Content-Type: application/json");

    if (h->curl == NULL || h->headers == NULL) {
        snprintf(err, size, "cannot initialise libcurl");
        return ET_ERROR;
    }

    ms = (long) (timeout_ns / ET_CLI_NS_PER_MS);

    if (curl_easy_setopt(h->curl, CURLOPT_URL, url) != CURLE_OK
        || curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, h->headers)
           != CURLE_OK
        || curl_easy_setopt(h->curl, CURLOPT_USERAGENT,
                            "edgetrace/" ET_CLI_VERSION) != CURLE_OK
        || curl_easy_setopt(h->curl, CURLOPT_TIMEOUT_MS, ms) != CURLE_OK
        || curl_easy_setopt(h->curl, CURLOPT_CONNECTTIMEOUT_MS, ms)
           != CURLE_OK
        /* signals are ours (SIGTERM stops the forwarder) */
        || curl_easy_setopt(h->curl, CURLOPT_NOSIGNAL, 1L) != CURLE_OK
        || curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION,
                            et_cli_http_write) != CURLE_OK
        || curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, h) != CURLE_OK
        || curl_easy_setopt(h->curl, CURLOPT_ERRORBUFFER, h->errbuf)
           != CURLE_OK)
    {
        snprintf(err, size, "cannot set up libcurl for \"%s\"", url);
        return ET_ERROR;
    }

    /* "Expect: 100-continue" costs a round trip per large batch */
    l = curl_slist_append(h->headers, "Expect:");

    while (l != NULL && headers != NULL && *headers != NULL) {
        l = curl_slist_append(h->headers, *headers++);
    }

    if (l == NULL
        || curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, h->headers)
           != CURLE_OK)
    {
        snprintf(err, size, "cannot set up libcurl");
        return ET_ERROR;
    }

    return ET_OK;
}


long
et_cli_http_post(et_cli_http_t *h, const char *data, size_t len, char *err,
    size_t size)
{
    long           status;
    size_t         i;
    CURLcode       rc;
    unsigned char  c;

    h->body_len = 0;
    h->body[0] = '\0';
    h->errbuf[0] = '\0';

    curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, data);
    curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) len);

    rc = curl_easy_perform(h->curl);

    if (rc != CURLE_OK) {
        snprintf(err, size, "%s", h->errbuf[0] ? h->errbuf
                                               : curl_easy_strerror(rc));
        return 0;
    }

    /* the answer is shown in one line of a message: no control bytes */
    for (i = 0; i < h->body_len; i++) {
        c = (unsigned char) h->body[i];

        if (c < 0x20 || c >= 0x7f) {
            h->body[i] = (c == '\n' || c == '\r' || c == '\t') ? ' ' : '?';
        }
    }

    while (h->body_len && h->body[h->body_len - 1] == ' ') {
        h->body[--h->body_len] = '\0';
    }

    status = 0;
    curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);

    if (status == 0) {
        snprintf(err, size, "no HTTP status in the answer");
    }

    return status;
}


void
et_cli_http_free(et_cli_http_t *h)
{
    if (h->curl) {
        curl_easy_cleanup(h->curl);
    }

    curl_slist_free_all(h->headers);
    curl_global_cleanup();
}
