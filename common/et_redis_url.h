/*
 * Where spans go: "redis://[[user]:password@]host[:port][/db]" or
 * "unix:/path/to/redis.sock"; a Redis Cluster's seeds:
 * "redis://[[user]:password@]host[:port][,host[:port]...]", sharing the
 * credentials (docs/nginx.md "edgetrace_redis").  "rediss://" in place of
 * "redis://" is the same over TLS (et_tls.h), the port's default 6379 as
 * redis-cli's.
 */

#ifndef ET_REDIS_URL_H
#define ET_REDIS_URL_H


#include "et_core.h"


#define ET_REDIS_DEFAULT_URL  "redis://127.0.0.1:6379"


#define ET_REDIS_SEEDS_MAX    16


typedef struct {
    char        host[256];    /* NUL-terminated; brackets of IPv6 removed */
    int         port;
} et_redis_seed_t;


typedef struct {
    char        host[256];    /* NUL-terminated; brackets of IPv6 removed */
    int         port;
    char        path[108];    /* unix socket, or empty */
    char        user[256];    /* empty: AUTH with password only */
    char        password[512];/* empty: no AUTH */
    int         db;           /* 0: no SELECT; always 0 in a cluster */
    int         tls;          /* rediss:// */

    int              cluster; /* the seeds of a Redis Cluster */
    size_t           nseeds;  /* redis://: 1 to ET_REDIS_SEEDS_MAX */
    et_redis_seed_t  seeds[ET_REDIS_SEEDS_MAX]; /* [0] is host:port */
} et_redis_url_t;


/*
 * Parses a URL into "url".  User and password may be percent-encoded.
 * On ET_ERROR, "err" gets a constant text saying what is wrong
 * ("invalid port", "the password is empty").
 */
int et_redis_url_parse(const uint8_t *p, size_t len, et_redis_url_t *url,
    const char **err);

/*
 * Parses a cluster's seeds into "url": "cluster" set, at least one seed in
 * "seeds", the first also in "host" and "port".  Refused, with the reason
 * in "err": "unix:", a database other than 0 ("a cluster has database 0
 * only: it has no SELECT"), more than ET_REDIS_SEEDS_MAX seeds, a seed
 * given twice.  et_redis_url_parse() refuses several hosts ("several hosts
 * need cluster mode").  "url" is only written on ET_OK.
 */
int et_redis_seeds_parse(const uint8_t *p, size_t len, et_redis_url_t *url,
    const char **err);


/*
 * The commands that open a connection as the URL asks, AUTH (with the
 * user when the URL has one) then SELECT: command "i" (from 0) is set in
 * "argv" and "argvlen" (3 each), its argument count returned; 0 past the
 * last one.  The arguments point into "url" and into "db", a buffer of
 * ET_REDIS_HELLO_DB bytes, which must outlive their use.
 */
#define ET_REDIS_HELLO_DB  16

int et_redis_hello(const et_redis_url_t *url, unsigned i, const char **argv,
    size_t *argvlen, char *db);

/*
 * A reply to "command" of the opening (a NULL reply: none came, "errstr"
 * says why): ET_ERROR for none or an error reply, with a message in "err"
 * (at most "size" bytes; the arguments, a password, never in it).
 */
struct redisReply;

int et_redis_reply_check(const char *command, const struct redisReply *reply,
    const char *errstr, char *err, size_t size);

/*
 * One blocking command of the opening: its reply (error replies
 * included), or NULL with the reason in *errstr.
 */
typedef struct redisReply *(*et_redis_command_pt)(void *data, int argc,
    const char **argv, const size_t *argvlen, const char **errstr);

/*
 * The opening commands (et_redis_hello()) through "command", each reply
 * checked; with "ping" and none of them, a PING.  ET_ERROR with a message
 * in "err" (at most "size" bytes, the password never in it).
 */
int et_redis_open(const et_redis_url_t *url, int ping,
    et_redis_command_pt command, void *data, char *err, size_t size);

/*
 * On a connected context in blocking mode: the opening commands
 * (et_redis_hello()).  ET_ERROR with a message in "err" (at most "size"
 * bytes, the password never in it).
 */
struct redisContext;

int et_redis_handshake(struct redisContext *c, const et_redis_url_t *url,
    char *err, size_t size);

/*
 * An et_redis_command_pt on a connected context in blocking mode ("data"):
 * redisCommandArgv(), *errstr the context's.
 */
struct redisReply *et_redis_context_command(void *data, int argc,
    const char **argv, const size_t *argvlen, const char **errstr);


#endif /* ET_REDIS_URL_H */
