/*
 * TLS to Redis with OpenSSL (et_tls.h).
 *
 * The socket stays the caller's: the exporter writes its queue through
 * et_tls_write() in place of sendmsg(), with the same batches, and
 * SSL_MODE_ENABLE_PARTIAL_WRITE lets a full socket end a write after the
 * records that went, as a short sendmsg() would; the rest is written from
 * the queue again, never staged in a copy.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "et_clock.h"
#include "et_tls.h"


#define ET_TLS_NAME  256


struct et_tls_ctx_s {
    SSL_CTX  *ssl_ctx;
    char      name[ET_TLS_NAME];     /* empty: the host connected to */
};


struct et_tls_s {
    SSL      *ssl;
    short     events;
};


/* the reason of the oldest error queued, or of errno when it is a syscall */
static const char *
et_tls_reason(void)
{
    const char     *r;
    unsigned long   e;

    e = ERR_peek_error();

    if (e == 0) {
        return errno ? strerror(errno) : "unknown error";
    }

    if (ERR_SYSTEM_ERROR(e)) {
        return strerror(ERR_GET_REASON(e));
    }

    r = ERR_reason_error_string(e);

    return r ? r : "unknown error";
}


/* no passphrase is ever asked for: a protected key fails to load */
static int
et_tls_no_passphrase(char *buf, int size, int rwflag, void *data)
{
    (void) buf;
    (void) size;
    (void) rwflag;
    (void) data;

    return 0;
}


et_tls_ctx_t *
et_tls_ctx_create(const et_tls_conf_t *conf, char *err, size_t size)
{
    SSL_CTX       *sc;
    et_tls_ctx_t  *ctx;

    if ((conf->cert == NULL) != (conf->key == NULL)) {
        snprintf(err, size, conf->cert ? "a certificate needs its key"
                                       : "a key needs its certificate");
        return NULL;
    }

    if (conf->name && (conf->name[0] == '\0'
                       || strlen(conf->name) >= ET_TLS_NAME))
    {
        snprintf(err, size, "invalid name to check");
        return NULL;
    }

    ctx = calloc(1, sizeof(et_tls_ctx_t));
    if (ctx == NULL) {
        snprintf(err, size, "out of memory");
        return NULL;
    }

    ERR_clear_error();
    errno = 0;

    sc = SSL_CTX_new(TLS_client_method());
    if (sc == NULL) {
        snprintf(err, size, "cannot create a TLS context: %s",
                 et_tls_reason());
        goto failed;
    }

    ctx->ssl_ctx = sc;

    if (SSL_CTX_set_min_proto_version(sc, TLS1_2_VERSION) != 1) {
        snprintf(err, size, "cannot require TLS 1.2: %s", et_tls_reason());
        goto failed;
    }

    SSL_CTX_set_verify(sc, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_mode(sc, SSL_MODE_ENABLE_PARTIAL_WRITE
                         | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_default_passwd_cb(sc, et_tls_no_passphrase);

    if (conf->ca) {
        if (SSL_CTX_load_verify_locations(sc, conf->ca, NULL) != 1) {
            snprintf(err, size, "cannot load the CA file \"%s\": %s",
                     conf->ca, et_tls_reason());
            goto failed;
        }

    } else if (SSL_CTX_set_default_verify_paths(sc) != 1) {
        snprintf(err, size, "cannot load the system's CA store: %s",
                 et_tls_reason());
        goto failed;
    }

    if (conf->cert) {
        if (SSL_CTX_use_certificate_chain_file(sc, conf->cert) != 1) {
            snprintf(err, size, "cannot load the certificate \"%s\": %s",
                     conf->cert, et_tls_reason());
            goto failed;
        }

        if (SSL_CTX_use_PrivateKey_file(sc, conf->key, SSL_FILETYPE_PEM)
            != 1)
        {
            snprintf(err, size, "cannot load the key \"%s\": %s",
                     conf->key, et_tls_reason());
            goto failed;
        }
    }

    if (conf->name) {
        memcpy(ctx->name, conf->name, strlen(conf->name) + 1);
    }

    ERR_clear_error();

    return ctx;

failed:

    ERR_clear_error();
    et_tls_ctx_free(ctx);

    return NULL;
}


void
et_tls_ctx_free(et_tls_ctx_t *ctx)
{
    if (ctx == NULL) {
        return;
    }

    SSL_CTX_free(ctx->ssl_ctx);
    free(ctx);
}


/* what to check: a host name (and SNI), or an IP address (no SNI) */
static int
et_tls_name(SSL *ssl, const char *name)
{
    unsigned char  addr[16];

    if (inet_pton(AF_INET, name, addr) == 1
        || inet_pton(AF_INET6, name, addr) == 1)
    {
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name);
    }

    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);

    return SSL_set1_host(ssl, name) == 1
           && SSL_set_tlsext_host_name(ssl, name) == 1;
}


/* a failed handshake's reason: the certificate's, else OpenSSL's */
static void
et_tls_handshake_error(SSL *ssl, int rc, const char *name, char *err,
    size_t size)
{
    long  v;

    v = SSL_get_verify_result(ssl);

    if (v != X509_V_OK) {
        if (v == X509_V_ERR_HOSTNAME_MISMATCH
            || v == X509_V_ERR_IP_ADDRESS_MISMATCH)
        {
            snprintf(err, size, "TLS: certificate verify failed: %s "
                     "(name checked: \"%s\")",
                     X509_verify_cert_error_string(v), name);

        } else {
            snprintf(err, size, "TLS: certificate verify failed: %s",
                     X509_verify_cert_error_string(v));
        }

        return;
    }

    if (SSL_get_error(ssl, rc) == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
    {
        snprintf(err, size, "TLS: handshake failed: %s",
                 errno ? strerror(errno) : "connection closed by the peer");
        return;
    }

    snprintf(err, size, "TLS: handshake failed: %s", et_tls_reason());
}


et_tls_t *
et_tls_connect(et_tls_ctx_t *ctx, int fd, const char *host,
    unsigned timeout_ms, char *err, size_t size)
{
    int             rc, e, flags;
    uint64_t        now, deadline;
    et_tls_t       *t;
    const char     *name;
    struct pollfd   pfd;

    deadline = et_clock_mono_ms() + timeout_ms;
    name = ctx->name[0] ? ctx->name : host;

    flags = fcntl(fd, F_GETFL);

    if (flags == -1 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1) {
        snprintf(err, size, "fcntl(O_NONBLOCK) failed: %s", strerror(errno));
        return NULL;
    }

    t = calloc(1, sizeof(et_tls_t));
    if (t == NULL) {
        snprintf(err, size, "out of memory");
        return NULL;
    }

    ERR_clear_error();

    t->ssl = SSL_new(ctx->ssl_ctx);

    if (t->ssl == NULL
        || SSL_set_fd(t->ssl, fd) != 1
        || !et_tls_name(t->ssl, name))
    {
        snprintf(err, size, "TLS: cannot set up the connection: %s",
                 et_tls_reason());
        goto failed;
    }

    for ( ;; ) {
        ERR_clear_error();
        errno = 0;

        rc = SSL_connect(t->ssl);

        if (rc == 1) {
            break;
        }

        e = SSL_get_error(t->ssl, rc);

        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            et_tls_handshake_error(t->ssl, rc, name, err, size);
            goto failed;
        }

        now = et_clock_mono_ms();

        if (now >= deadline) {
            snprintf(err, size, "TLS: handshake timed out after %u ms",
                     timeout_ms);
            goto failed;
        }

        pfd.fd = fd;
        pfd.events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
        pfd.revents = 0;

        (void) poll(&pfd, 1, (int) (deadline - now));
    }

    ERR_clear_error();

    return t;

failed:

    ERR_clear_error();
    SSL_free(t->ssl);
    free(t);

    return NULL;
}


/*
 * After a read or a write that did not go: ET_AGAIN with the event to wait
 * for, 0 for a connection closed by the peer, or ET_ERROR.
 */
static ssize_t
et_tls_failed(et_tls_t *t, int rc, const char *op, char *err, size_t size)
{
    int            e;
    unsigned long  reason;

    e = SSL_get_error(t->ssl, rc);

    switch (e) {

    case SSL_ERROR_WANT_READ:
        t->events = POLLIN;
        return ET_AGAIN;

    case SSL_ERROR_WANT_WRITE:
        t->events = POLLOUT;
        return ET_AGAIN;

    case SSL_ERROR_ZERO_RETURN:
        return 0;

    case SSL_ERROR_SYSCALL:
        if (ERR_peek_error() == 0) {
            if (errno == 0) {
                return 0;
            }

            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                t->events = *op == 'r' ? POLLIN : POLLOUT;
                return ET_AGAIN;
            }

            snprintf(err, size, "%s failed: %s", op, strerror(errno));
            return ET_ERROR;
        }

        break;

    default:
        break;
    }

    /* OpenSSL 3 tells a close without close_notify apart: a close still */
    reason = ERR_GET_REASON(ERR_peek_error());

    if (reason == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        return 0;
    }

    snprintf(err, size, "TLS: %s failed: %s", op, et_tls_reason());

    return ET_ERROR;
}


ssize_t
et_tls_write(et_tls_t *t, const void *p, size_t len, char *err, size_t size)
{
    int      n;
    ssize_t  rc;

    ERR_clear_error();
    errno = 0;

    n = SSL_write(t->ssl, p, len > INT_MAX ? INT_MAX : (int) len);

    if (n > 0) {
        return n;
    }

    rc = et_tls_failed(t, n, "write", err, size);

    if (rc == 0) {
        snprintf(err, size, "write failed: connection closed by the peer");
        return ET_ERROR;
    }

    return rc;
}


ssize_t
et_tls_read(et_tls_t *t, void *buf, size_t size, char *err, size_t size_err)
{
    int      n;
    size_t   got;
    ssize_t  rc;

    got = 0;

    while (got < size) {
        ERR_clear_error();
        errno = 0;

        n = SSL_read(t->ssl, (uint8_t *) buf + got,
                     size - got > INT_MAX ? INT_MAX : (int) (size - got));

        if (n > 0) {
            got += (size_t) n;
            continue;
        }

        rc = et_tls_failed(t, n, "read", err, size_err);

        if (got) {
            /* what came before a close or an error is handed over first */
            break;
        }

        return rc;
    }

    return (ssize_t) got;
}


short
et_tls_events(et_tls_t *t)
{
    return t->events;
}


void
et_tls_free(et_tls_t *t)
{
    if (t == NULL) {
        return;
    }

    /* a socket that is full or gone does not get it, and need not */
    ERR_clear_error();
    (void) SSL_shutdown(t->ssl);
    ERR_clear_error();

    SSL_free(t->ssl);
    free(t);
}
