/*
 * Redis URLs: "redis://[[user]:password@]host[:port][/db]", the same with
 * "rediss://" for TLS, "unix:/path/to/redis.sock", and a cluster's seeds
 * "redis[s]://[[user]:password@]host[:port][,host[:port]...]".
 *
 * The parse is strict: a field that does not fit is an error, never cut,
 * and the result is only stored when the whole URL is valid.
 */

#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "et_redis_url.h"


#define ET_REDIS_DEFAULT_PORT  6379
#define ET_REDIS_DB_MAX        2147483647


static int
et_url_prefix(const uint8_t *p, size_t len, const char *prefix)
{
    size_t  i, n;
    int     c;

    n = strlen(prefix);

    if (len < n) {
        return 0;
    }

    /* schemes are case-insensitive (RFC 3986, 3.1) */
    for (i = 0; i < n; i++) {
        c = p[i];

        if (c >= 'A' && c <= 'Z') {
            c += 'a' - 'A';
        }

        if (c != prefix[i]) {
            return 0;
        }
    }

    return 1;
}


static int
et_url_hex(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return -1;
}


/* percent-decodes into "dst" of "size" bytes, NUL-terminated */
static const char *
et_url_decode(char *dst, size_t size, const uint8_t *p, size_t len,
    const char *too_long)
{
    int             hi, lo;
    size_t          n;
    const uint8_t  *last;

    n = 0;
    last = p + len;

    while (p < last) {
        if (*p == '%') {
            if (last - p < 3
                || (hi = et_url_hex(p[1])) < 0
                || (lo = et_url_hex(p[2])) < 0)
            {
                return "invalid percent-encoding in the user or password";
            }

            if (hi == 0 && lo == 0) {
                return "the user or password contains a NUL byte";
            }

            if (n + 1 >= size) {
                return too_long;
            }

            dst[n++] = (char) (hi << 4 | lo);
            p += 3;
            continue;
        }

        if (n + 1 >= size) {
            return too_long;
        }

        dst[n++] = (char) *p++;
    }

    dst[n] = '\0';

    return NULL;
}


static int
et_url_host_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}


static int
et_url_ipv6_char(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')
           || (c >= 'A' && c <= 'F') || c == ':' || c == '.';
}


static const char *
et_url_parse_unix(const uint8_t *p, size_t len, et_redis_url_t *u)
{
    if (len == 0) {
        return "the unix socket path is missing";
    }

    if (p[0] != '/') {
        return "the unix socket path must be absolute";
    }

    if (len >= sizeof(u->path)) {
        return "the unix socket path is too long";
    }

    memcpy(u->path, p, len);
    u->path[len] = '\0';

    return NULL;
}


/* one "host[:port]", up to the ',' or '/' that follows it */
static const char *
et_url_parse_seed(const uint8_t **pp, const uint8_t *last,
    et_redis_seed_t *seed)
{
    int64_t         n;
    const uint8_t  *p, *host, *host_end, *colon;

    p = *pp;

    if (p < last && *p == '[') {
        host = ++p;

        while (p < last && *p != ']') {
            if (!et_url_ipv6_char(*p)) {
                return "invalid IPv6 address";
            }

            p++;
        }

        if (p == last) {
            return "the IPv6 address has no closing ']'";
        }

        host_end = p++;

        if (host_end == host) {
            return "the host is missing";
        }

        if (memchr(host, ':', (size_t) (host_end - host)) == NULL) {
            return "invalid IPv6 address";
        }

    } else {
        host = p;

        while (p < last && *p != ':' && *p != '/' && *p != ',') {
            if (!et_url_host_char(*p)) {
                return "invalid host";
            }

            p++;
        }

        host_end = p;

        if (host_end == host) {
            return "the host is missing";
        }
    }

    if ((size_t) (host_end - host) >= sizeof(seed->host)) {
        return "the host is too long";
    }

    memcpy(seed->host, host, (size_t) (host_end - host));
    seed->host[host_end - host] = '\0';

    seed->port = ET_REDIS_DEFAULT_PORT;

    if (p < last && *p == ':') {
        colon = ++p;

        while (p < last && *p != '/' && *p != ',') {
            p++;
        }

        if (et_parse_int(colon, (size_t) (p - colon), 1, 65535, &n)
            != ET_OK)
        {
            return "invalid port";
        }

        seed->port = (int) n;
    }

    if (p < last && *p != '/' && *p != ',') {
        return "invalid host";
    }

    *pp = p;

    return NULL;
}


static const char *
et_url_parse_tcp(const uint8_t *p, size_t len, int cluster,
    et_redis_url_t *u)
{
    size_t          i, ulen;
    int64_t         n;
    const char     *err;
    const uint8_t  *last, *at, *colon;

    last = p + len;

    /*
     * The user info ends at the last '@': host, port and db have none, so
     * a password with an unencoded '@' or '/' still parses as intended.
     */
    at = NULL;

    for (i = len; i > 0; i--) {
        if (p[i - 1] == '@') {
            at = p + i - 1;
            break;
        }
    }

    if (at) {
        colon = memchr(p, ':', (size_t) (at - p));

        if (colon == NULL) {
            return "the user info must be \"[user]:password\"";
        }

        ulen = (size_t) (colon - p);

        err = et_url_decode(u->user, sizeof(u->user), p, ulen,
                            "the user is too long");
        if (err) {
            return err;
        }

        err = et_url_decode(u->password, sizeof(u->password), colon + 1,
                            (size_t) (at - colon - 1),
                            "the password is too long");
        if (err) {
            return err;
        }

        if (u->password[0] == '\0') {
            return "the password is empty";
        }

        p = at + 1;
    }

    /* seeds, separated by ',' (docs/nginx.md "edgetrace_redis") */

    for ( ;; ) {
        if (u->nseeds == ET_REDIS_SEEDS_MAX) {
            return "more than 16 seeds";
        }

        err = et_url_parse_seed(&p, last, &u->seeds[u->nseeds]);
        if (err) {
            return err;
        }

        for (i = 0; i < u->nseeds; i++) {
            if (u->seeds[i].port == u->seeds[u->nseeds].port
                && strcmp(u->seeds[i].host, u->seeds[u->nseeds].host) == 0)
            {
                return "a seed is given twice";
            }
        }

        u->nseeds++;

        if (p == last || *p != ',') {
            break;
        }

        if (!cluster) {
            return "several hosts need cluster mode";
        }

        p++;
    }

    /* the first seed is the host of a single Redis */
    memcpy(u->host, u->seeds[0].host, sizeof(u->host));
    u->port = u->seeds[0].port;

    /* db: "/" alone is db 0 */

    if (p < last) {
        p++;

        if (p < last) {
            if (et_parse_int(p, (size_t) (last - p), 0, ET_REDIS_DB_MAX, &n)
                != ET_OK)
            {
                return "invalid database number";
            }

            u->db = (int) n;
        }
    }

    if (cluster && u->db != 0) {
        return "a cluster has database 0 only: it has no SELECT";
    }

    return NULL;
}


static int
et_url_parse(const uint8_t *p, size_t len, int cluster, et_redis_url_t *url,
    const char **err)
{
    const char      *e;
    et_redis_url_t   u;

    memset(&u, 0, sizeof(et_redis_url_t));

    u.cluster = cluster;

    if (len == 0) {
        e = "the URL is empty";

    } else if (memchr(p, '\0', len) != NULL) {
        e = "the URL contains a NUL byte";

    } else if (et_url_prefix(p, len, "rediss://")) {
        u.tls = 1;
        e = et_url_parse_tcp(p + 9, len - 9, cluster, &u);

    } else if (et_url_prefix(p, len, "redis://")) {
        e = et_url_parse_tcp(p + 8, len - 8, cluster, &u);

    } else if (cluster) {
        e = "a cluster's seeds are \"redis://host:port[,host:port...]\"";

    } else if (et_url_prefix(p, len, "unix:")) {
        e = et_url_parse_unix(p + 5, len - 5, &u);

    } else {
        e = "the URL must start with \"redis://\", \"rediss://\" or "
            "\"unix:\"";
    }

    if (e) {
        *err = e;
        return ET_ERROR;
    }

    *url = u;

    return ET_OK;
}


int
et_redis_url_parse(const uint8_t *p, size_t len, et_redis_url_t *url,
    const char **err)
{
    return et_url_parse(p, len, 0, url, err);
}


int
et_redis_seeds_parse(const uint8_t *p, size_t len, et_redis_url_t *url,
    const char **err)
{
    return et_url_parse(p, len, 1, url, err);
}


int
et_redis_hello(const et_redis_url_t *url, unsigned i, const char **argv,
    size_t *argvlen, char *db)
{
    int       argc;
    unsigned  n;

    n = 0;
    argc = 0;

    if (url->password[0] && n++ == i) {
        argv[argc++] = "AUTH";

        if (url->user[0]) {
            argv[argc++] = url->user;
        }

        argv[argc++] = url->password;

    } else if (url->db != 0 && n++ == i) {
        snprintf(db, ET_REDIS_HELLO_DB, "%d", url->db);
        argv[argc++] = "SELECT";
        argv[argc++] = db;
    }

    for (n = 0; n < (unsigned) argc; n++) {
        argvlen[n] = strlen(argv[n]);
    }

    return argc;
}


int
et_redis_reply_check(const char *command, const redisReply *reply,
    const char *errstr, char *err, size_t size)
{
    if (reply == NULL) {
        snprintf(err, size, "%s failed: %s", command,
                 errstr && errstr[0] ? errstr : "no reply");
        return ET_ERROR;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        snprintf(err, size, "%s failed: %.*s", command,
                 (int) (reply->len < 120 ? reply->len : 120), reply->str);
        return ET_ERROR;
    }

    return ET_OK;
}


int
et_redis_open(const et_redis_url_t *url, int ping, et_redis_command_pt command,
    void *data, char *err, size_t size)
{
    int           argc, rc;
    unsigned      i;
    size_t        argvlen[3];
    redisReply   *reply;
    const char   *argv[3], *errstr;
    char          db[ET_REDIS_HELLO_DB];

    for (i = 0; ; i++) {
        argc = et_redis_hello(url, i, argv, argvlen, db);

        if (argc == 0) {
            if (i > 0 || !ping) {
                return ET_OK;
            }

            argv[0] = "PING";
            argvlen[0] = 4;
            argc = 1;
            ping = 0;
        }

        errstr = NULL;
        reply = command(data, argc, argv, argvlen, &errstr);

        rc = et_redis_reply_check(argv[0], reply, errstr, err, size);

        if (reply) {
            freeReplyObject(reply);
        }

        if (rc != ET_OK) {
            return ET_ERROR;
        }
    }
}


/* argv: a password may hold spaces or '%', never formatted */
redisReply *
et_redis_context_command(void *data, int argc, const char **argv,
    const size_t *argvlen, const char **errstr)
{
    redisContext  *c = data;

    redisReply  *reply;

    reply = redisCommandArgv(c, argc, argv, argvlen);
    *errstr = c->errstr;

    return reply;
}


int
et_redis_handshake(redisContext *c, const et_redis_url_t *url, char *err,
    size_t size)
{
    return et_redis_open(url, 0, et_redis_context_command, c, err, size);
}
