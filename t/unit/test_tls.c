/*
 * Unit tests: et_tls.c and et_conn.c, against the redis-servers with TLS
 * ports that t/unit/tls.t starts, with certificates it made with openssl
 * (t/lib/Edgetrace/Tls.pm) in ET_TLS_DIR.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "et_core.h"
#include "et_clock.h"
#include "et_conn.h"
#include "et_resp.h"
#include "et_tls.h"
#include "tap.h"


#define nelts(a)  (sizeof(a) / sizeof((a)[0]))


static const char  *dir;
static char         paths[16][512];
static unsigned     npaths;


/* ET_TLS_DIR/name */
static const char *
pki(const char *name)
{
    char  *p;

    if (name == NULL) {
        return NULL;
    }

    p = paths[npaths++ % nelts(paths)];
    snprintf(p, sizeof(paths[0]), "%s/%s", dir, name);

    return p;
}


static int
env_int(const char *name)
{
    const char  *v;

    v = getenv(name);

    return v ? atoi(v) : 0;
}


static et_tls_ctx_t *
ctx(const char *ca, const char *cert, const char *key, const char *name)
{
    char            err[256];
    et_tls_ctx_t   *c;
    et_tls_conf_t   conf;

    conf.ca = pki(ca);
    conf.cert = pki(cert);
    conf.key = pki(key);
    conf.name = name;

    c = et_tls_ctx_create(&conf, err, sizeof(err));

    if (c == NULL) {
        printf("#   et_tls_ctx_create: %s\n", err);
    }

    return c;
}


static void
test_ctx_errors(void)
{
    size_t          i;
    char            err[256];
    et_tls_ctx_t   *c;
    et_tls_conf_t   conf;

    static const struct {
        const char  *ca, *cert, *key, *name;
        const char  *err;
    } cases[] = {
        { "missing.crt", NULL, NULL, NULL,
          "cannot load the CA file \"%s/missing.crt\": No such file or "
          "directory" },
        { "ca.key", NULL, NULL, NULL,
          "cannot load the CA file \"%s/ca.key\": " },
        { "ca.crt", "client.crt", NULL, NULL,
          "a certificate needs its key" },
        { "ca.crt", NULL, "client.key", NULL,
          "a key needs its certificate" },
        { "ca.crt", "missing.crt", "client.key", NULL,
          "cannot load the certificate \"%s/missing.crt\": No such file "
          "or directory" },
        { "ca.crt", "client.crt", "missing.key", NULL,
          "cannot load the key \"%s/missing.key\": No such file or "
          "directory" },
        { "ca.crt", "client.crt", "server.key", NULL,
          "cannot load the key \"%s/server.key\": key values mismatch" },
        { "ca.crt", NULL, NULL, "", "invalid name to check" },
    };

    for (i = 0; i < nelts(cases); i++) {
        char  want[512];

        conf.ca = pki(cases[i].ca);
        conf.cert = pki(cases[i].cert);
        conf.key = pki(cases[i].key);
        conf.name = cases[i].name;
        err[0] = '\0';

        snprintf(want, sizeof(want), cases[i].err, dir);

        c = et_tls_ctx_create(&conf, err, sizeof(err));

        tap_ok(c == NULL && strncmp(err, want, strlen(want)) == 0,
               "context refused: %s", err);

        et_tls_ctx_free(c);
    }

    /* the system store, and a client certificate with its key */

    c = ctx(NULL, NULL, NULL, NULL);
    tap_ok(c != NULL, "context: the system store");
    et_tls_ctx_free(c);

    c = ctx("ca.crt", "client.crt", "client.key", "localhost");
    tap_ok(c != NULL, "context: CA, client certificate and key, name");
    et_tls_ctx_free(c);
}


/* et_conn_open() on 127.0.0.1:port; "want" NULL: success expected */
static void
open_case(const char *what, et_tls_ctx_t *tls, const char *url_text,
    int port, const char *want)
{
    int              rc;
    char             err[256];
    const char      *e;
    et_conn_t        c;
    et_redis_url_t   url;

    if (et_redis_url_parse((const uint8_t *) url_text, strlen(url_text),
                           &url, &e)
        != ET_OK)
    {
        tap_ok(0, "%s: url %s: %s", what, url_text, e);
        return;
    }

    err[0] = '\0';

    rc = et_conn_open(&c, &url, url.host, port, tls, 2000, err,
                      sizeof(err));

    if (want == NULL) {
        tap_ok(rc == ET_OK, "%s: connected%s%s", what, rc ? ": " : "", err);

    } else {
        tap_ok(rc == ET_ERROR && strstr(err, want) != NULL,
               "%s: refused with \"%s\" (got \"%s\")", what, want, err);
        tap_ok(c.fd == -1 && c.tls == NULL, "%s: closed", what);
    }

    et_conn_close(&c);
}


static void
test_verify(void)
{
    int            port;
    size_t         i;
    char           url[128];
    et_tls_ctx_t  *c[4];

    static const struct {
        const char  *what;
        unsigned     ctx;       /* ca, other, named, misnamed */
        const char  *host;
        const char  *port;
        const char  *want;      /* NULL: connected */
    } cases[] = {
        { "valid, the IP checked", 0, "127.0.0.1", "ET_TLS_PORT", NULL },
        { "valid, a name checked", 2, "127.0.0.1", "ET_TLS_PORT", NULL },
        { "valid, the host's name", 0, "localhost", "ET_TLS_PORT", NULL },

        /* Redis sends its CA with its certificate */
        { "wrong CA", 1, "127.0.0.1", "ET_TLS_PORT",
          "TLS: certificate verify failed: self-signed certificate in "
          "certificate chain" },
        { "wrong name", 3, "127.0.0.1", "ET_TLS_PORT",
          "TLS: certificate verify failed: hostname mismatch "
          "(name checked: \"redis.example\")" },
        { "expired", 0, "127.0.0.1", "ET_TLS_EXPIRED_PORT",
          "TLS: certificate verify failed: certificate has expired" },
        { "wrong IP", 0, "127.0.0.1", "ET_TLS_WRONG_NAME_PORT",
          "TLS: certificate verify failed: IP address mismatch "
          "(name checked: \"127.0.0.1\")" },
        { "another CA's certificate", 0, "127.0.0.1", "ET_TLS_FOREIGN_PORT",
          "TLS: certificate verify failed: unable to get local issuer "
          "certificate" },

        /* Redis takes the ClientHello for the start of a command, waits */
        { "a plaintext port", 0, "127.0.0.1", "ET_TLS_PLAIN_PORT",
          "TLS: handshake timed out after" },
    };

    c[0] = ctx("ca.crt", NULL, NULL, NULL);
    c[1] = ctx("other_ca.crt", NULL, NULL, NULL);
    c[2] = ctx("ca.crt", NULL, NULL, "localhost");
    c[3] = ctx("ca.crt", NULL, NULL, "redis.example");

    for (i = 0; i < nelts(cases); i++) {
        if (c[cases[i].ctx] == NULL) {
            tap_ok(0, "%s: a context", cases[i].what);
            continue;
        }

        port = env_int(cases[i].port);
        snprintf(url, sizeof(url), "rediss://%s:%d", cases[i].host, port);

        open_case(cases[i].what, c[cases[i].ctx], url, port,
                  cases[i].want);
    }

    for (i = 0; i < nelts(c); i++) {
        et_tls_ctx_free(c[i]);
    }
}


static void
test_mutual(void)
{
    int            port;
    char           url[128];
    et_tls_ctx_t  *ca, *client;

    port = env_int("ET_TLS_MUTUAL_PORT");

    ca = ctx("ca.crt", NULL, NULL, NULL);
    client = ctx("ca.crt", "client.crt", "client.key", NULL);

    if (ca == NULL || client == NULL) {
        tap_ok(0, "contexts for mutual TLS");
        goto done;
    }

    snprintf(url, sizeof(url), "rediss://127.0.0.1:%d", port);

    open_case("mutual TLS with the client certificate", client, url, port,
              NULL);

    /* TLS 1.3: the server's refusal comes after the handshake, at PING */
    open_case("mutual TLS without a client certificate", ca, url, port,
              "TLS: read failed: tlsv13 alert certificate required");

done:

    et_tls_ctx_free(ca);
    et_tls_ctx_free(client);
}


/* AUTH and SELECT over TLS: the same opening as plaintext */
static void
test_auth(void)
{
    int            port, rc;
    char           url[256], err[256];
    const char    *e, *password, *argv[2];
    size_t         argvlen[2];
    et_conn_t      c;
    redisReply    *reply;
    et_tls_ctx_t  *ca;
    et_redis_url_t u;

    port = env_int("ET_TLS_AUTH_PORT");
    password = getenv("ET_TLS_PASSWORD");

    ca = ctx("ca.crt", NULL, NULL, NULL);

    if (ca == NULL || password == NULL) {
        tap_ok(0, "context and password for AUTH over TLS");
        et_tls_ctx_free(ca);
        return;
    }

    snprintf(url, sizeof(url), "rediss://127.0.0.1:%d/3", port);
    open_case("no password", ca, url, port, "SELECT failed: NOAUTH");

    snprintf(url, sizeof(url), "rediss://:wrong@127.0.0.1:%d", port);
    open_case("a wrong password", ca, url, port, "AUTH failed: WRONGPASS");

    snprintf(url, sizeof(url), "rediss://:%s@127.0.0.1:%d/3", password,
             port);

    if (et_redis_url_parse((const uint8_t *) url, strlen(url), &u, &e)
        != ET_OK)
    {
        tap_ok(0, "url: %s", e);
        et_tls_ctx_free(ca);
        return;
    }

    rc = et_conn_open(&c, &u, u.host, port, ca, 2000, err, sizeof(err));
    tap_ok(rc == ET_OK, "AUTH and SELECT over TLS%s%s", rc ? ": " : "",
           rc ? err : "");

    if (rc == ET_OK) {
        argv[0] = "CLIENT";
        argv[1] = "INFO";
        argvlen[0] = 6;
        argvlen[1] = 4;
        reply = NULL;

        rc = et_conn_command(&c, 2, argv, argvlen, et_clock_mono_ms() + 2000,
                             &reply, err, sizeof(err));

        tap_ok(rc == ET_OK && reply && reply->type != REDIS_REPLY_ERROR
               && strstr(reply->str, " db=3 ") != NULL,
               "the connection is on database 3");

        if (reply) {
            freeReplyObject(reply);
        }
    }

    et_conn_close(&c);
    et_tls_ctx_free(ca);
}


/*
 * A batch far larger than the socket buffers, written in two pieces as
 * the queue's ring hands them over and read back while it goes: partial
 * writes resumed with the same bytes, reads drained until nothing is left.
 */
static void
test_batch(void)
{
    int              port, rc, want_n;
    char             url[128], err[256];
    const char      *e;
    size_t           len, one, off, split;
    ssize_t          n;
    uint8_t         *buf, rbuf[16384];
    uint64_t         ok, errors, deadline;
    et_conn_t        c;
    et_resp_t        resp;
    struct iovec     iov[2];
    struct pollfd    pfd;
    et_tls_ctx_t    *ca;
    et_redis_url_t   u;

    static const char  cmd[] =
        "*5\r\n$4\r\nXADD\r\n$12\r\net:tls:batch\r\n$1\r\n*\r\n"
        "$1\r\nk\r\n$200\r\n";

    port = env_int("ET_TLS_PORT");
    ca = ctx("ca.crt", NULL, NULL, NULL);

    snprintf(url, sizeof(url), "rediss://127.0.0.1:%d", port);

    if (ca == NULL
        || et_redis_url_parse((const uint8_t *) url, strlen(url), &u, &e)
           != ET_OK
        || et_conn_open(&c, &u, u.host, port, ca, 2000, err, sizeof(err))
           != ET_OK)
    {
        tap_ok(0, "batch: connected");
        et_tls_ctx_free(ca);
        return;
    }

    want_n = 20000;
    one = sizeof(cmd) - 1 + 200 + 2;
    len = one * (size_t) want_n;

    buf = malloc(len);
    if (buf == NULL) {
        abort();
    }

    for (off = 0; off < len; off += one) {
        memcpy(buf + off, cmd, sizeof(cmd) - 1);
        memset(buf + off + sizeof(cmd) - 1, 'v', 200);
        memcpy(buf + off + one - 2, "\r\n", 2);
    }

    split = len / 3 + 7;
    off = 0;
    ok = 0;
    errors = 0;
    rc = ET_OK;
    et_resp_init(&resp);
    deadline = et_clock_mono_ms() + 20000;

    while ((off < len || ok + errors < (uint64_t) want_n)
           && et_clock_mono_ms() < deadline)
    {
        if (off < len) {
            if (off < split) {
                iov[0].iov_base = buf + off;
                iov[0].iov_len = split - off;
                iov[1].iov_base = buf + split;
                iov[1].iov_len = len - split;

            } else {
                iov[0].iov_base = buf + off;
                iov[0].iov_len = len - off;
            }

            n = et_conn_send(&c, iov, off < split ? 2 : 1, err, sizeof(err));

            if (n == ET_ERROR) {
                rc = ET_ERROR;
                break;
            }

            if (n > 0) {
                off += (size_t) n;
            }
        }

        n = et_conn_recv(&c, rbuf, sizeof(rbuf), err, sizeof(err));

        if (n == ET_ERROR || n == 0) {
            rc = ET_ERROR;
            break;
        }

        if (n > 0) {
            (void) et_resp_scan(&resp, rbuf, (size_t) n, &ok, &errors);
            continue;
        }

        pfd.fd = c.fd;
        pfd.events = POLLIN | (off < len ? POLLOUT : 0);
        pfd.revents = 0;
        (void) poll(&pfd, 1, 100);
    }

    tap_ok(rc == ET_OK && off == len,
           "batch: %zu bytes written over TLS%s%s", len, rc ? ": " : "",
           rc ? err : "");
    tap_ok(ok == (uint64_t) want_n && errors == 0,
           "batch: %d replies, all acknowledged (got %llu, %llu errors)",
           want_n, (unsigned long long) ok, (unsigned long long) errors);

    free(buf);
    et_conn_close(&c);
    et_tls_ctx_free(ca);
}


/* a server that accepts the connection and never answers */
static void
test_timeout(void)
{
    int                 s, fd;
    char                err[256];
    uint64_t            start, took;
    socklen_t           len;
    et_tls_t           *t;
    et_tls_ctx_t       *ca;
    struct sockaddr_in  sin;

    ca = ctx("ca.crt", NULL, NULL, NULL);

    s = socket(AF_INET, SOCK_STREAM, 0);
    fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof(sin);

    if (ca == NULL || s == -1 || fd == -1
        || bind(s, (struct sockaddr *) &sin, sizeof(sin)) != 0
        || listen(s, 1) != 0
        || getsockname(s, (struct sockaddr *) &sin, &len) != 0
        || connect(fd, (struct sockaddr *) &sin, sizeof(sin)) != 0)
    {
        tap_ok(0, "timeout: a silent server");
        goto done;
    }

    start = et_clock_mono_ms();
    t = et_tls_connect(ca, fd, "127.0.0.1", 300, err, sizeof(err));
    took = et_clock_mono_ms() - start;

    tap_ok(t == NULL
           && strcmp(err, "TLS: handshake timed out after 300 ms") == 0,
           "timeout: \"%s\"", t ? "connected" : err);
    tap_ok(took >= 290 && took < 1500, "timeout: within the time (%llu ms)",
           (unsigned long long) took);

    et_tls_free(t);

done:

    if (s != -1) {
        close(s);
    }

    if (fd != -1) {
        close(fd);
    }

    et_tls_ctx_free(ca);
}


int
main(void)
{
    signal(SIGPIPE, SIG_IGN);

    dir = getenv("ET_TLS_DIR");

    if (dir == NULL || env_int("ET_TLS_PORT") == 0) {
        printf("Bail out! ET_TLS_DIR and ET_TLS_PORT are not set (run "
               "t/unit/tls.t)\n");
        return 1;
    }

    test_ctx_errors();
    test_verify();
    test_mutual();
    test_auth();
    test_batch();
    test_timeout();

    return tap_done();
}
