/*
 * A connection to one Redis, plain or TLS (et_conn.h).
 *
 * hiredis connects the socket (redisConnectWithTimeout(), with its host
 * name resolution and connect timeout), then hands it over
 * (redisFreeKeepFd()): hiredis 0.14 has no TLS, so what follows on the
 * socket, the handshake included, is this file's, the same for both.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "et_clock.h"
#include "et_cluster.h"
#include "et_conn.h"


/* an opening command's reply is read this much at a time */
#define ET_CONN_RBUF  4096

static int et_conn_poll(et_conn_t *c, uint64_t deadline);


int
et_conn_open(et_conn_t *c, const et_redis_url_t *url, const char *host,
    int port, et_tls_ctx_t *tls, unsigned timeout_ms, char *err, size_t size)
{
    int                 fd, flags;
    uint64_t            now, deadline;
    redisContext       *rc;
    struct timeval      tv;
    et_conn_call_t      opening;

    et_conn_init(c);

    deadline = et_clock_mono_ms() + timeout_ms;

    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;

    if (url->path[0]) {
        rc = redisConnectUnixWithTimeout(url->path, tv);

    } else {
        rc = redisConnectWithTimeout(host, port, tv);
    }

    if (rc == NULL) {
        snprintf(err, size, "out of memory");
        return ET_ERROR;
    }

    if (rc->err) {
        snprintf(err, size, "%s", rc->errstr);
        redisFree(rc);
        return ET_ERROR;
    }

    fd = redisFreeKeepFd(rc);

    /* children the server forks (CGI, piped logs) must not inherit it */
    (void) fcntl(fd, F_SETFD, FD_CLOEXEC);

    c->fd = fd;

    if (tls) {
        now = et_clock_mono_ms();

        c->tls = et_tls_connect(tls, fd, host,
                                now < deadline ? deadline - now : 1,
                                err, size);
        if (c->tls == NULL) {
            goto failed;
        }

    } else {
        flags = fcntl(fd, F_GETFL);

        if (flags == -1 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1) {
            snprintf(err, size, "fcntl(O_NONBLOCK) failed: %s",
                     strerror(errno));
            goto failed;
        }
    }

    /*
     * TLS with no command to send: a PING, so that a server refusing the
     * client's certificate (TLS 1.3 says so after the handshake) fails here
     */

    opening.conn = c;
    opening.deadline = deadline;

    /* the opening's commands, within the connect's deadline */
    if (et_redis_open(url, c->tls != NULL, et_conn_call,
                      &opening, err, size)
        != ET_OK)
    {
        goto failed;
    }

    return ET_OK;

failed:

    et_conn_close(c);

    return ET_ERROR;
}


redisReply *
et_conn_call(void *data, int argc, const char **argv, const size_t *argvlen,
    const char **errstr)
{
    et_conn_call_t  *o = data;

    redisReply  *reply;

    if (et_conn_command(o->conn, argc, argv, argvlen, o->deadline, &reply,
                        o->err, sizeof(o->err))
        != ET_OK)
    {
        *errstr = o->err;
        return NULL;
    }

    return reply;
}


/* waits for c->events until "deadline"; ET_ERROR when it has passed */
static int
et_conn_poll(et_conn_t *c, uint64_t deadline)
{
    uint64_t       now;
    struct pollfd  pfd;

    now = et_clock_mono_ms();

    if (now >= deadline) {
        return ET_ERROR;
    }

    pfd.fd = c->fd;
    pfd.events = c->events;
    pfd.revents = 0;

    (void) poll(&pfd, 1, (int) (deadline - now));

    return ET_OK;
}


int
et_conn_command(et_conn_t *c, int argc, const char **argv,
    const size_t *argvlen, uint64_t deadline, redisReply **reply, char *err,
    size_t size)
{
    int            len, rc;
    char          *cmd;
    void          *r;
    ssize_t        n;
    redisReader   *reader;
    struct iovec   iov;
    char           buf[ET_CONN_RBUF];

    len = redisFormatCommandArgv(&cmd, argc, argv, argvlen);

    if (len < 0) {
        snprintf(err, size, "out of memory");
        return ET_ERROR;
    }

    iov.iov_base = cmd;
    iov.iov_len = (size_t) len;

    while (iov.iov_len) {
        n = et_conn_send(c, &iov, 1, err, size);

        if (n == ET_ERROR) {
            free(cmd);

            /*
             * A server refusing the client's certificate sends its alert
             * and closes: a write may meet the reset before a read meets
             * the alert, which says why
             */
            if (c->tls) {
                (void) et_conn_recv(c, buf, sizeof(buf), err, size);
            }

            return ET_ERROR;
        }

        if (n == ET_AGAIN) {
            if (et_conn_poll(c, deadline) != ET_OK) {
                free(cmd);
                goto timedout;
            }

            continue;
        }

        iov.iov_base = (char *) iov.iov_base + n;
        iov.iov_len -= (size_t) n;
    }

    free(cmd);

    reader = redisReaderCreate();
    if (reader == NULL) {
        snprintf(err, size, "out of memory");
        return ET_ERROR;
    }

    if (c->left) {
        et_cluster_guard(reader, c->left);
    }

    r = NULL;

    for ( ;; ) {
        rc = redisReaderGetReply(reader, &r);

        if (rc != REDIS_OK) {
            snprintf(err, size, "%s", reader->errstr);
            break;
        }

        if (r) {
            *reply = r;
            redisReaderFree(reader);
            return ET_OK;
        }

        n = et_conn_recv(c, buf, sizeof(buf), err, size);

        if (n == ET_AGAIN) {
            if (et_conn_poll(c, deadline) != ET_OK) {
                redisReaderFree(reader);
                goto timedout;
            }

            continue;
        }

        if (n == 0) {
            snprintf(err, size, "connection closed by redis");
            break;
        }

        if (n == ET_ERROR) {
            break;
        }

        if (redisReaderFeed(reader, buf, (size_t) n) != REDIS_OK) {
            snprintf(err, size, "%s", reader->errstr);
            break;
        }
    }

    redisReaderFree(reader);

    return ET_ERROR;

timedout:

    snprintf(err, size, "timed out");

    return ET_ERROR;
}


ssize_t
et_conn_send(et_conn_t *c, const struct iovec *iov, int niov, char *err,
    size_t size)
{
    int            i;
    size_t         sent, done;
    ssize_t        n;
    struct msghdr  msg;

    if (c->tls == NULL) {
        memset(&msg, 0, sizeof(struct msghdr));
        msg.msg_iov = (struct iovec *) iov;
        msg.msg_iovlen = (size_t) niov;

        /* a short count too waits for room */
        c->events = POLLOUT;

        for ( ;; ) {
            /* MSG_NOSIGNAL: a closed connection gives EPIPE, not SIGPIPE */
            n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);

            if (n >= 0) {
                return n;
            }

            if (errno == EINTR) {
                continue;
            }

            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                c->events = POLLOUT;
                return ET_AGAIN;
            }

            snprintf(err, size, "write failed: %s", strerror(errno));
            return ET_ERROR;
        }
    }

    /*
     * TLS: one buffer after the other, each from where the last write
     * stopped; a write ends after a record or a few, so it is repeated
     * until the socket is full (ET_AGAIN) or everything went
     */

    sent = 0;

    for (i = 0; i < niov; i++) {
        done = 0;

        while (done < iov[i].iov_len) {
            n = et_tls_write(c->tls, (uint8_t *) iov[i].iov_base + done,
                             iov[i].iov_len - done, err, size);

            if (n == ET_ERROR) {
                return ET_ERROR;
            }

            if (n == ET_AGAIN) {
                c->events = et_tls_events(c->tls);
                return sent + done ? (ssize_t) (sent + done) : ET_AGAIN;
            }

            done += (size_t) n;
        }

        sent += done;
    }

    return (ssize_t) sent;
}


ssize_t
et_conn_recv(et_conn_t *c, void *buf, size_t size, char *err,
    size_t size_err)
{
    ssize_t  n;

    if (c->tls) {
        n = et_tls_read(c->tls, buf, size, err, size_err);

        if (n == ET_AGAIN) {
            c->events = et_tls_events(c->tls);
        }

        return n;
    }

    for ( ;; ) {
        n = recv(c->fd, buf, size, MSG_DONTWAIT);

        if (n >= 0) {
            return n;
        }

        if (errno == EINTR) {
            continue;
        }

        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            c->events = POLLIN;
            return ET_AGAIN;
        }

        snprintf(err, size_err, "read failed: %s", strerror(errno));
        return ET_ERROR;
    }
}


void
et_conn_close(et_conn_t *c)
{
    if (c->tls) {
        et_tls_free(c->tls);
        c->tls = NULL;
    }

    if (c->fd != -1) {
        close(c->fd);
        c->fd = -1;
    }
}
