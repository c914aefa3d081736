/*
 * TLS to Redis ("rediss://", docs/nginx.md "edgetrace_redis_ssl_*",
 * docs/httpd.md "EdgeTraceRedisSSL*"), with OpenSSL: Debian 12's hiredis
 * 0.14 has no TLS, so nothing here goes through hiredis.
 *
 * A context holds what every connection shares: the CA to verify Redis's
 * certificate against (a file, or the system store), the client
 * certificate and key of mutual TLS, and the name to check.  Verification
 * is always on, TLS 1.2 at least, and there is no fallback to plaintext.
 *
 * A connection is an SSL object on a socket its caller connected and
 * keeps owning: et_tls_connect() shakes hands within a timeout, blocking
 * the caller in poll(); then et_tls_read() and et_tls_write() never
 * block, and say with ET_AGAIN which event to wait for in poll().
 *
 * Thread safety: a context may be shared by connections in several
 * threads once created; a connection belongs to one thread at a time.
 * OpenSSL's error queue is per thread: every call clears it first.
 *
 * OpenSSL writes with write(), not send(MSG_NOSIGNAL): a write on a
 * connection Redis closed raises SIGPIPE.  The exporter's thread blocks
 * every signal, and nginx and httpd ignore SIGPIPE; any other caller
 * blocks or ignores it.
 */

#ifndef ET_TLS_H
#define ET_TLS_H


#include <sys/types.h>

#include "et_core.h"


typedef struct et_tls_ctx_s  et_tls_ctx_t;
typedef struct et_tls_s      et_tls_t;


typedef struct {
    const char  *ca;     /* PEM CA bundle; NULL: the system store */
    const char  *cert;   /* PEM client certificate (and chain); or NULL */
    const char  *key;    /* PEM key of "cert"; NULL exactly when it is */
    const char  *name;   /* checked, and sent as SNI; NULL: the host */
} et_tls_conf_t;


/*
 * Creates a context, reading every file "conf" names now (the server
 * configuration's load: a missing or bad file is an error of its
 * directive).  The strings need not outlive the call.  NULL on failure,
 * with the reason in "err" (at most "size" bytes): "cannot load the CA
 * file \"/x\": No such file or directory", "cannot load the key \"/k\":
 * key values mismatch", "a certificate needs its key", ...  A key
 * protected by a passphrase is refused, never prompted for.
 */
et_tls_ctx_t *et_tls_ctx_create(const et_tls_conf_t *conf, char *err,
    size_t size);

/* frees a context; NULL is a no-op.  Its connections must be freed first. */
void et_tls_ctx_free(et_tls_ctx_t *ctx);


/*
 * Makes socket "fd" (connected, TCP) non-blocking and shakes hands on it
 * within "timeout_ms", checking the certificate against the context's CA
 * and name.  The name is the context's, or else "host": a host name is
 * checked against the certificate's DNS names and sent as SNI; an IP
 * address (v4 or v6) is checked against its IP addresses, and no SNI is
 * sent.
 *
 * NULL on failure, "fd" left open (the caller owns it), with the reason in
 * "err": "TLS: certificate verify failed: certificate has expired",
 * "TLS: certificate verify failed: hostname mismatch (name checked:
 * \"redis.example\")", "TLS: handshake failed: wrong version number",
 * "TLS: handshake timed out after 1000 ms".
 *
 * With TLS 1.3 a server that refuses the client's certificate says so
 * after the handshake: the refusal shows up on the first read.
 */
et_tls_t *et_tls_connect(et_tls_ctx_t *ctx, int fd, const char *host,
    unsigned timeout_ms, char *err, size_t size);

/*
 * Writes up to "len" bytes, never blocking; returns how many went (one TLS
 * record or more), ET_AGAIN when none could go now (wait in poll() for
 * et_tls_events()), or ET_ERROR with the reason in "err".
 *
 * After ET_AGAIN the call must be made again with the same bytes at "p"
 * (the pointer may move, the length may grow, not shrink): OpenSSL keeps
 * the record it began.  Partial writes are on: a return below "len" is no
 * error.
 */
ssize_t et_tls_write(et_tls_t *t, const void *p, size_t len, char *err,
    size_t size);

/*
 * Reads what has arrived, never blocking, until "size" bytes or nothing
 * more: poll() cannot see bytes OpenSSL has already taken off the socket,
 * so a return below "size" means the socket is drained.  Returns the
 * count, 0 when Redis closed the connection (with or without a
 * close_notify) and nothing was left, ET_AGAIN when nothing has arrived
 * (wait for et_tls_events()), ET_ERROR with the reason in "err".
 */
ssize_t et_tls_read(et_tls_t *t, void *buf, size_t size, char *err,
    size_t size_err);

/* after ET_AGAIN: POLLIN or POLLOUT, what the call is waiting for */
short et_tls_events(et_tls_t *t);

/*
 * Sends a close_notify if the socket takes it now, and frees the
 * connection; the socket stays open (the caller closes it).  NULL is a
 * no-op.
 */
void et_tls_free(et_tls_t *t);


#endif /* ET_TLS_H */
