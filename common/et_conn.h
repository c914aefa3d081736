/*
 * A connection to one Redis, plain or TLS (et_tls.h): the exporter's
 * socket once hiredis has connected it.  The opening (TLS handshake, AUTH,
 * SELECT) is one code path for both: commands formatted by hiredis
 * (redisFormatCommandArgv) and replies parsed by its redisReader, over
 * et_conn_send() and et_conn_recv(), which the exporter then uses for its
 * batches.
 */

#ifndef ET_CONN_H
#define ET_CONN_H


#include <sys/types.h>
#include <sys/uio.h>

#include "et_core.h"
#include "et_redis_url.h"
#include "et_tls.h"


typedef struct {
    int        fd;       /* -1: closed */
    et_tls_t  *tls;      /* NULL: plaintext */
    short      events;   /* what the last ET_AGAIN waits for */

    /*
     * et_conn_command()'s replies: NULL, or their array elements bounded
     * with this budget (et_cluster_guard(): a seed may be anything)
     */
    size_t    *left;
} et_conn_t;


/* a connection closed, before et_conn_open() */
#define et_conn_init(c)                                                     \
    ((c)->fd = -1, (c)->tls = NULL, (c)->events = 0, (c)->left = NULL)


/*
 * Connects to "host":"port" (url->path, when set, is a unix socket), shakes
 * hands with "tls" (NULL: plaintext; must outlive the connection), and
 * sends the opening commands the URL asks for (et_redis_open()); with TLS
 * and none of them, a PING, so that a server refusing the client's
 * certificate (TLS 1.3 says so after the handshake) fails here.  All
 * within "timeout_ms", blocking the caller: host names are resolved here.
 *
 * ET_OK with the socket non-blocking and closed on exec; ET_ERROR with the
 * reason in "err" (at most "size" bytes, the password never in it) and
 * "c" closed.
 */
int et_conn_open(et_conn_t *c, const et_redis_url_t *url, const char *host,
    int port, et_tls_ctx_t *tls, unsigned timeout_ms, char *err, size_t size);

/*
 * Writes what it can of "niov" buffers (at most IOV_MAX) without
 * blocking, in order (plaintext: one sendmsg(); TLS: a record or more per
 * buffer, each record a write(), so join small buffers first): the
 * byte count, short only when the socket is full; ET_AGAIN when nothing
 * went; ET_ERROR with the reason in "err".  After a short count or
 * ET_AGAIN, wait in poll() for c->events (TLS may need POLLIN), and start
 * the next call with the bytes that did not go (TLS needs them:
 * et_tls_write()).
 */
ssize_t et_conn_send(et_conn_t *c, const struct iovec *iov, int niov,
    char *err, size_t size);

/*
 * Reads without blocking: the byte count (below "size": drained, for TLS
 * too), 0 when Redis closed the connection, ET_AGAIN when nothing came
 * (c->events is POLLIN, or POLLOUT for a TLS record to finish), ET_ERROR
 * with the reason in "err".
 */
ssize_t et_conn_recv(et_conn_t *c, void *buf, size_t size, char *err,
    size_t size_err);

/*
 * One command on an open connection, blocking until "deadline" (monotonic
 * ms): its reply in *reply (freeReplyObject() it), error replies
 * included.  ET_ERROR when no reply came, with the reason in "err",
 * without the command's name: "timed out", "connection closed by redis",
 * "TLS: read failed: ...", "write failed: ...".
 */
struct redisReply;

int et_conn_command(et_conn_t *c, int argc, const char **argv,
    const size_t *argvlen, uint64_t deadline, struct redisReply **reply,
    char *err, size_t size);

/*
 * et_conn_command() as an et_redis_command_pt (et_redis_open(),
 * et_cluster_fetch()): "data" is one of these, *errstr its "err".
 */
typedef struct {
    et_conn_t     *conn;
    uint64_t       deadline;     /* monotonic ms */
    char           err[160];
} et_conn_call_t;

struct redisReply *et_conn_call(void *data, int argc, const char **argv,
    const size_t *argvlen, const char **errstr);

/* closes the connection (TLS's close_notify when it goes now); idempotent */
void et_conn_close(et_conn_t *c);


#endif /* ET_CONN_H */
