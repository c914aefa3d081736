/*
 * The command over TLS (rediss://, docs/cli.md "TLS"): its options, and
 * hiredis contexts on TLS connections.
 *
 * hiredis 0.14 has no TLS, and the command keeps hiredis for its commands
 * (pipelines, blocking reads, timeouts): the connection is opened as the
 * exporter opens its own (et_conn_open(): TCP, the handshake, AUTH and
 * SELECT), then hiredis is given one end of a socketpair, and a thread of
 * its own, the pump, moves bytes between the other end and the TLS
 * connection.  The certificate is checked before hiredis sees a byte:
 * a failed check is a failed connect, never a plaintext one.
 *
 * The pump ends when hiredis closes its end (et_cli_redis_disconnect(),
 * which then joins the thread).  Redis closing the connection, or
 * failing, closes the TLS connection: what came before is handed over,
 * then hiredis reads the end of the stream, and the reason is kept for
 * et_cli_redis_why().
 */

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "et_cli.h"
#include "et_conn.h"


/* bytes in flight each way: a TLS record is at most 16k */
#define ET_CLI_PUMP_BUF  65536


typedef struct et_cli_pump_s  et_cli_pump_t;

struct et_cli_pump_s {
    et_cli_pump_t     *next;
    redisContext      *c;         /* hiredis's end */
    int                fd;        /* the pump's end of the pair */
    et_conn_t          conn;      /* Redis's side */
    pthread_t          thread;
    pthread_mutex_t    mutex;
    char               why[256];  /* under "mutex" */
    size_t             up_len;    /* hiredis to Redis */
    size_t             down_len;  /* Redis to hiredis */
    uint8_t            up[ET_CLI_PUMP_BUF];
    uint8_t            down[ET_CLI_PUMP_BUF];
};


/* the pumps running, found by their hiredis context (one thread uses it) */
static et_cli_pump_t  *et_cli_pumps;


static const struct {
    const char  *option;
    const char  *env;
} et_cli_tls_names[ET_CLI_TLS_NOPTS] = {
    { "--cacert", "EDGETRACE_CACERT" },
    { "--cert",   "EDGETRACE_CERT" },
    { "--key",    "EDGETRACE_KEY" },
    { "--sni",    "EDGETRACE_SNI" },
};


void
et_cli_tls_env(et_cli_t *cli)
{
    int          i;
    const char  *v;

    for (i = 0; i < ET_CLI_TLS_NOPTS; i++) {
        v = getenv(et_cli_tls_names[i].env);

        /* as for the other variables, empty is unset */
        if (v != NULL && v[0] != '\0') {
            cli->tls_value[i] = v;
            cli->tls_from[i] = et_cli_tls_names[i].env;
        }
    }
}


int
et_cli_tls_option(et_cli_t *cli, int argc, char **argv, int *i)
{
    int          k, rc;
    const char  *v;

    for (k = 0; k < ET_CLI_TLS_NOPTS; k++) {
        rc = et_cli_opt_value(argc, argv, i, et_cli_tls_names[k].option, &v);

        if (rc == 0) {
            continue;
        }

        if (rc == 1 && v[0] == '\0') {
            et_cli_error("%s: the value is empty",
                         et_cli_tls_names[k].option);
            return -1;
        }

        if (rc == 1) {
            cli->tls_value[k] = v;
            cli->tls_from[k] = et_cli_tls_names[k].option;
        }

        return rc;
    }

    return 0;
}


/* "--cacert" or "$EDGETRACE_CACERT" */
static const char *
et_cli_tls_from(const et_cli_t *cli, int k, char *buf, size_t size)
{
    const char  *from;

    from = cli->tls_from[k];

    if (from[0] == '-') {
        return from;
    }

    snprintf(buf, size, "$%s", from);

    return buf;
}


int
et_cli_tls_init(et_cli_t *cli)
{
    int             k;
    char            err[1024], from[64];
    et_tls_conf_t   conf;

    for (k = 0; k < ET_CLI_TLS_NOPTS; k++) {
        if (cli->tls_value[k] != NULL && !cli->redis.tls) {
            /* a TLS setting given for a plaintext URL: never plaintext
             * believed to be TLS */
            et_cli_error("%s is for TLS: it needs a rediss:// URL, and "
                         "Redis is at %s",
                         et_cli_tls_from(cli, k, from, sizeof(from)),
                         cli->redis_shown);
            return ET_ERROR;
        }
    }

    if (!cli->redis.tls) {
        return ET_OK;
    }

    if ((cli->tls_value[ET_CLI_TLS_CERT] == NULL)
        != (cli->tls_value[ET_CLI_TLS_KEY] == NULL))
    {
        k = cli->tls_value[ET_CLI_TLS_CERT] ? ET_CLI_TLS_CERT
                                             : ET_CLI_TLS_KEY;
        et_cli_error(k == ET_CLI_TLS_CERT
                     ? "%s needs its key, --key (or $EDGETRACE_KEY)"
                     : "%s needs its certificate, --cert "
                       "(or $EDGETRACE_CERT)",
                     et_cli_tls_from(cli, k, from, sizeof(from)));
        return ET_ERROR;
    }

    conf.ca = cli->tls_value[ET_CLI_TLS_CACERT];
    conf.cert = cli->tls_value[ET_CLI_TLS_CERT];
    conf.key = cli->tls_value[ET_CLI_TLS_KEY];
    conf.name = cli->tls_value[ET_CLI_TLS_SNI];

    cli->tls = et_tls_ctx_create(&conf, err, sizeof(err));

    if (cli->tls == NULL) {
        et_cli_error("TLS: %s", err);
        return ET_ERROR;
    }

    return ET_OK;
}


void
et_cli_tls_free(et_cli_t *cli)
{
    et_tls_ctx_free(cli->tls);
    cli->tls = NULL;
}


/*
 * Redis's side ended: the first reason is kept, for et_cli_redis_why(),
 * and never changes after
 */
static void
et_cli_pump_ended(et_cli_pump_t *p, const char *why)
{
    pthread_mutex_lock(&p->mutex);

    if (p->why[0] == '\0') {
        snprintf(p->why, sizeof(p->why), "%s", why);
    }

    pthread_mutex_unlock(&p->mutex);
}


/*
 * After a send or a receive on Redis's side: 1 when bytes went; 0 when
 * the call waits (for the event added to "events"), or when Redis's side
 * ended ("ended" set): an error, or closed by Redis, which hiredis then
 * reports as without TLS.
 */
static int
et_cli_pump_moved(et_cli_pump_t *p, ssize_t n, const char *why,
    short *events, int *ended)
{
    if (n == ET_AGAIN) {
        *events |= p->conn.events;
        return 0;
    }

    if (n == ET_ERROR) {
        et_cli_pump_ended(p, why);
    }

    if (n == ET_ERROR || n == 0) {
        *ended = 1;
        return 0;
    }

    return 1;
}


/*
 * The pump's thread.  Each turn moves what it can each way, without
 * blocking; it waits in poll() only after a turn that moved nothing, for
 * what each side last asked for (TLS may want POLLIN to write, or
 * POLLOUT to read).  A TLS read fills its buffer or drains what OpenSSL
 * holds, which poll() cannot see; a write that waits is made again with
 * the same bytes first, as et_tls_write() requires: "up" only loses
 * bytes from its head once they went.
 */
static void *
et_cli_pump(void *data)
{
    et_cli_pump_t  *p = data;

    int             moved, ended;
    char            why[256];
    short           tev, pev;
    ssize_t         n;
    struct iovec    iov;
    struct pollfd   pfd[2];

    ended = 0;

    for ( ;; ) {
        moved = 0;
        tev = 0;
        pev = 0;

        if (!ended && p->up_len) {
            iov.iov_base = p->up;
            iov.iov_len = p->up_len;

            n = et_conn_send(&p->conn, &iov, 1, why, sizeof(why));

            if (et_cli_pump_moved(p, n, why, &tev, &ended)) {
                p->up_len -= (size_t) n;
                memmove(p->up, p->up + n, p->up_len);
                moved = 1;
            }
        }

        if (!ended && p->down_len < ET_CLI_PUMP_BUF) {
            n = et_conn_recv(&p->conn, p->down + p->down_len,
                             ET_CLI_PUMP_BUF - p->down_len, why,
                             sizeof(why));

            if (et_cli_pump_moved(p, n, why, &tev, &ended)) {
                p->down_len += (size_t) n;
                moved = 1;
            }
        }

        if (p->down_len) {
            n = send(p->fd, p->down, p->down_len,
                     MSG_NOSIGNAL | MSG_DONTWAIT);

            if (n > 0) {
                p->down_len -= (size_t) n;
                memmove(p->down, p->down + n, p->down_len);
                moved = 1;

            } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
                pev |= POLLOUT;

            } else if (errno != EINTR) {
                break;
            }
        }

        if (ended && p->down_len == 0 && p->conn.fd != -1) {
            /*
             * hiredis reads the end of the stream; its end stays open
             * until it closes it: hiredis writes with write(), and a
             * write to a closed pair would raise SIGPIPE, where a
             * connection Redis closed gives it an error to report
             */
            et_conn_close(&p->conn);
            (void) shutdown(p->fd, SHUT_WR);
            p->up_len = 0;
            moved = 1;
        }

        if (p->up_len < ET_CLI_PUMP_BUF) {
            n = recv(p->fd, p->up + p->up_len, ET_CLI_PUMP_BUF - p->up_len,
                     MSG_DONTWAIT);

            if (n > 0) {
                /* once Redis's side ended, what hiredis sends is dropped:
                 * it reads the end of the stream next */
                p->up_len = ended ? 0 : p->up_len + (size_t) n;
                moved = 1;

            } else if (n == 0) {
                break;

            } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
                pev |= POLLIN;

            } else if (errno != EINTR) {
                break;
            }
        }

        if (moved) {
            continue;
        }

        pfd[0].fd = p->fd;
        pfd[0].events = pev;
        pfd[0].revents = 0;
        pfd[1].fd = ended ? -1 : p->conn.fd;
        pfd[1].events = tev;
        pfd[1].revents = 0;

        if (poll(pfd, 2, -1) == -1 && errno != EINTR) {
            et_cli_pump_ended(p, strerror(errno));
            break;
        }

        /* hiredis closed its end: reported even when not asked for */
        if (pfd[0].revents & (POLLHUP | POLLERR | POLLNVAL)) {
            break;
        }
    }

    /* Redis's side, with a close_notify, unless it ended first */
    et_conn_close(&p->conn);
    close(p->fd);
    p->fd = -1;

    return NULL;
}


/*
 * The TLS connection (et_conn_open()), the pair, and the pump's thread
 * started on them: the pump, with hiredis's end of the pair in *fd; NULL
 * with the reason in "why".  SIGPIPE is blocked by the caller.
 */
static et_cli_pump_t *
et_cli_pump_start(const et_cli_t *cli, const char *host, int port, int *fd,
    char *why, size_t size)
{
    int             sv[2], rc;
    uint64_t        ms;
    sigset_t        all, old;
    et_cli_pump_t  *p;

    p = calloc(1, sizeof(et_cli_pump_t));

    if (p == NULL) {
        snprintf(why, size, "out of memory");
        return NULL;
    }

    ms = cli->timeout_ns / ET_CLI_NS_PER_MS;

    if (et_conn_open(&p->conn, &cli->redis, host, port, cli->tls,
                     ms > 86400000 ? 86400000 : (unsigned) ms, why, size)
        != ET_OK)
    {
        free(p);
        return NULL;
    }

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
        snprintf(why, size, "socketpair() failed: %s", strerror(errno));
        goto failed;
    }

    p->fd = sv[1];
    pthread_mutex_init(&p->mutex, NULL);

    /* signals (export's SIGINT and SIGTERM) are the main thread's */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&p->thread, NULL, et_cli_pump, p);
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    if (rc != 0) {
        snprintf(why, size, "pthread_create() failed: %s", strerror(rc));
        pthread_mutex_destroy(&p->mutex);
        close(sv[0]);
        close(sv[1]);
        goto failed;
    }

    *fd = sv[0];

    return p;

failed:

    et_conn_close(&p->conn);
    free(p);

    return NULL;
}


redisContext *
et_cli_tls_connect(const et_cli_t *cli, const char *host, int port,
    const char *shown, char *err, size_t size)
{
    int               fd;
    char              why[512];
    sigset_t          pipe, old, pending;
    redisContext     *c;
    et_cli_pump_t    *p;
    struct timespec   zero;

    /*
     * OpenSSL writes with write(): a Redis that closes during the
     * handshake must not kill the command with SIGPIPE, which the
     * commands other than export leave to end them when stdout is a pipe
     * closed.  The signal is blocked while this thread writes TLS, and
     * one raised is taken.
     */
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, &old);

    p = et_cli_pump_start(cli, host, port, &fd, why, sizeof(why));

    if (!sigismember(&old, SIGPIPE) && sigpending(&pending) == 0
        && sigismember(&pending, SIGPIPE) == 1)
    {
        zero.tv_sec = 0;
        zero.tv_nsec = 0;
        (void) sigtimedwait(&pipe, NULL, &zero);
    }

    pthread_sigmask(SIG_SETMASK, &old, NULL);

    if (p == NULL) {
        snprintf(err, size, "cannot connect to Redis at %s: %s", shown, why);
        return NULL;
    }

    c = redisConnectFd(fd);

    if (c == NULL || c->err) {
        snprintf(err, size, "cannot connect to Redis at %s: %s", shown,
                 c ? c->errstr : "out of memory");

        /* closing hiredis's end ends the pump */
        if (c != NULL) {
            redisFree(c);

        } else {
            close(fd);
        }

        pthread_join(p->thread, NULL);
        pthread_mutex_destroy(&p->mutex);
        free(p);
        return NULL;
    }

    p->c = c;
    p->next = et_cli_pumps;
    et_cli_pumps = p;

    return c;
}


void
et_cli_redis_disconnect(redisContext *c)
{
    et_cli_pump_t  *p, **pp;

    for (pp = &et_cli_pumps; *pp != NULL; pp = &(*pp)->next) {
        if ((*pp)->c == c) {
            break;
        }
    }

    p = *pp;

    /* closing hiredis's end ends the pump */
    redisFree(c);

    if (p == NULL) {
        return;
    }

    *pp = p->next;

    pthread_join(p->thread, NULL);
    pthread_mutex_destroy(&p->mutex);
    free(p);
}


const char *
et_cli_redis_why(redisContext *c)
{
    int             found;
    et_cli_pump_t  *p;

    for (p = et_cli_pumps; p != NULL; p = p->next) {
        if (p->c == c) {
            break;
        }
    }

    if (p == NULL) {
        return c->errstr;
    }

    /* hiredis's own reason, unless Redis's side ended with one */
    pthread_mutex_lock(&p->mutex);
    found = p->why[0] != '\0';
    pthread_mutex_unlock(&p->mutex);

    return found ? p->why : c->errstr;
}
