/*
 * Unit tests: et_redis_url.c.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "et_core.h"
#include "et_redis_url.h"
#include "tap.h"


#define T(s)  (s), sizeof(s) - 1

#define ET_MUST  "the URL must start with \"redis://\", \"rediss://\" or " \
                 "\"unix:\""

#define nelts(a)  (sizeof(a) / sizeof((a)[0]))


static uint8_t *
dup_exact(const void *p, size_t len)
{
    uint8_t  *d;

    /* exact size, so valgrind sees any read past the end */
    d = malloc(len ? len : 1);
    if (d == NULL) {
        abort();
    }

    if (len) {
        memcpy(d, p, len);
    }

    return d;
}


/* a printable copy of a URL for test names */
static const char *
esc(const char *s, size_t len)
{
    size_t  i, n;

    static char  buf[300];

    n = 0;

    for (i = 0; i < len && n < 72; i++) {
        if ((unsigned char) s[i] < 0x20 || (unsigned char) s[i] >= 0x7f) {
            n += (size_t) sprintf(buf + n, "\\x%02x", (unsigned char) s[i]);

        } else {
            buf[n++] = s[i];
        }
    }

    if (i < len) {
        n += (size_t) sprintf(buf + n, "...");
    }

    buf[n] = '\0';

    return buf;
}


static void
test_valid(void)
{
    int              rc;
    size_t           i;
    uint8_t         *in;
    const char      *err;
    et_redis_url_t   u;

    static const struct {
        const char  *in;
        size_t       len;
        const char  *host;
        int          port;
        const char  *path;
        const char  *user;
        const char  *password;
        int          db;
    } cases[] = {
        { T(ET_REDIS_DEFAULT_URL), "127.0.0.1", 6379, "", "", "", 0 },
        { T("redis://localhost"), "localhost", 6379, "", "", "", 0 },
        { T("redis://localhost/"), "localhost", 6379, "", "", "", 0 },
        { T("redis://redis.internal:7000/3"), "redis.internal", 7000, "", "",
          "", 3 },
        { T("redis://my_host-1.example.com:1"), "my_host-1.example.com", 1,
          "", "", "", 0 },
        { T("redis://h:65535"), "h", 65535, "", "", "", 0 },
        { T("redis://h:06379"), "h", 6379, "", "", "", 0 },
        { T("redis://h/2147483647"), "h", 6379, "", "", "", 2147483647 },
        { T("redis://h:6380/0"), "h", 6380, "", "", "", 0 },
        { T("REDIS://h"), "h", 6379, "", "", "", 0 },
        { T("redis://[::1]"), "::1", 6379, "", "", "", 0 },
        { T("redis://[::1]:6380/1"), "::1", 6380, "", "", "", 1 },
        { T("redis://[2001:db8::7]/5"), "2001:db8::7", 6379, "", "", "", 5 },
        { T("redis://[::ffff:192.0.2.1]:7"), "::ffff:192.0.2.1", 7, "", "",
          "", 0 },
        { T("redis://:secret@h"), "h", 6379, "", "", "secret", 0 },
        { T("redis://alice:secret@h:7000/2"), "h", 7000, "", "alice",
          "secret", 2 },
        { T("redis://:p%40ss%3Aw%2Fo%25rd@h"), "h", 6379, "", "",
          "p@ss:w/o%rd", 0 },
        { T("redis://al%69ce:%c3%a9t%C3%A9@h"), "h", 6379, "", "alice",
          "\xc3\xa9t\xc3\xa9", 0 },
        { T("redis://:a:b:c@h"), "h", 6379, "", "", "a:b:c", 0 },
        { T("redis://:p@ss@h"), "h", 6379, "", "", "p@ss", 0 },
        { T("redis://:pa/ss@h/4"), "h", 6379, "", "", "pa/ss", 4 },
        { T("redis://:pa+ss@[::1]:1"), "::1", 1, "", "", "pa+ss", 0 },
        { T("unix:/run/redis/redis.sock"), "", 0, "/run/redis/redis.sock",
          "", "", 0 },
        { T("UNIX:/r.sock"), "", 0, "/r.sock", "", "", 0 },
        { T("unix:/"), "", 0, "/", "", "", 0 },
        { T("unix:/a b"), "", 0, "/a b", "", "", 0 },
        { T("rediss://localhost"), "localhost", 6379, "", "", "", 0 },
        { T("REDISS://h:6380"), "h", 6380, "", "", "", 0 },
        { T("rediss://alice:secret@redis.internal:7000/3"),
          "redis.internal", 7000, "", "alice", "secret", 3 },
        { T("rediss://[::1]:6380/1"), "::1", 6380, "", "", "", 1 },
    };

    for (i = 0; i < nelts(cases); i++) {
        in = dup_exact(cases[i].in, cases[i].len);
        err = NULL;
        memset(&u, 0x5a, sizeof(u));

        rc = et_redis_url_parse(in, cases[i].len, &u, &err);

        tap_ok(rc == ET_OK
               && strcmp(u.host, cases[i].host) == 0
               && u.port == cases[i].port
               && strcmp(u.path, cases[i].path) == 0
               && strcmp(u.user, cases[i].user) == 0
               && strcmp(u.password, cases[i].password) == 0
               && u.db == cases[i].db
               && u.tls == (strncasecmp(cases[i].in, "rediss://", 9) == 0),
               "valid: %s", esc(cases[i].in, cases[i].len));

        if (rc != ET_OK) {
            printf("#   error: %s\n", err ? err : "(none)");

        } else if (u.port != cases[i].port || u.db != cases[i].db
                   || strcmp(u.host, cases[i].host) != 0)
        {
            printf("#   host '%s' port %d path '%s' user '%s' password '%s' "
                   "db %d\n", u.host, u.port, u.path, u.user, u.password,
                   u.db);
        }

        free(in);
    }
}


static void
test_invalid(void)
{
    int              rc;
    size_t           i;
    uint8_t         *in;
    const char      *err;
    et_redis_url_t   u, before;

    static char  long_host[300], long_path[200], long_user[300];
    static char  long_password[600], ok_path[200], ok_host[300];
    static char  ok_password[600];

    static struct {
        const char  *in;
        size_t       len;
        const char  *err;
    } cases[] = {
        { T(""), "the URL is empty" },
        { T("rediss://"), "the host is missing" },
        { T("rediss://h:0"), "invalid port" },
        { T("rediss://a:1,b:2"), "several hosts need cluster mode" },
        { T("rediss:/h"), ET_MUST },
        { T("http://h"), ET_MUST },
        { T("redis:/h"), ET_MUST },
        { T("redis:h"), ET_MUST },
        { T("h:6379"), ET_MUST },
        { T("127.0.0.1"),
          ET_MUST },
        { T(" redis://h"),
          ET_MUST },
        { T("redis://"), "the host is missing" },
        { T("redis://:6379"), "the host is missing" },
        { T("redis:///0"), "the host is missing" },
        { T("redis://:pw@"), "the host is missing" },
        { T("redis://:pw@:6379"), "the host is missing" },
        { T("redis://[]:6379"), "the host is missing" },
        { T("redis://h:"), "invalid port" },
        { T("redis://h:0"), "invalid port" },
        { T("redis://h:65536"), "invalid port" },
        { T("redis://h:99999999999999999999"), "invalid port" },
        { T("redis://h:-1"), "invalid port" },
        { T("redis://h:+1"), "invalid port" },
        { T("redis://h:63 79"), "invalid port" },
        { T("redis://h:6379x"), "invalid port" },
        { T("redis://h:6379:6380"), "invalid port" },
        { T("redis://h/x"), "invalid database number" },
        { T("redis://h/-1"), "invalid database number" },
        { T("redis://h/2147483648"), "invalid database number" },
        { T("redis://h/1/2"), "invalid database number" },
        { T("redis://h/1?timeout=1"), "invalid database number" },
        { T("redis://h/ 1"), "invalid database number" },
        { T("redis://h/99999999999999999999999"), "invalid database number" },
        { T("redis://h h"), "invalid host" },
        { T("redis://h?x"), "invalid host" },
        { T("redis://h#x"), "invalid host" },
        { T("redis://h%41"), "invalid host" },
        { T("redis://\xc3\xa9"), "invalid host" },
        { T("redis://[::1]x"), "invalid host" },
        { T("redis://[::1"), "the IPv6 address has no closing ']'" },
        { T("redis://[::1]]"), "invalid host" },
        { T("redis://[::g]"), "invalid IPv6 address" },
        { T("redis://[fe80::1%25eth0]"), "invalid IPv6 address" },
        { T("redis://[1.2.3.4]"), "invalid IPv6 address" },
        { T("redis://pw@h"), "the user info must be \"[user]:password\"" },
        { T("redis://@h"), "the user info must be \"[user]:password\"" },
        { T("redis://:@h"), "the password is empty" },
        { T("redis://alice:@h"), "the password is empty" },
        { T("redis://:%00@h"), "the user or password contains a NUL byte" },
        { T("redis://a%00:pw@h"), "the user or password contains a NUL byte" },
        { T("redis://:%@h"),
          "invalid percent-encoding in the user or password" },
        { T("redis://:%4@h"),
          "invalid percent-encoding in the user or password" },
        { T("redis://:%zz@h"),
          "invalid percent-encoding in the user or password" },
        { T("redis://%g1:pw@h"),
          "invalid percent-encoding in the user or password" },
        { T("redis://h\0"), "the URL contains a NUL byte" },
        { T("redis://:p\0w@h"), "the URL contains a NUL byte" },
        { T("unix:/a\0b"), "the URL contains a NUL byte" },
        { T("unix:"), "the unix socket path is missing" },
        { T("unix:run/redis.sock"), "the unix socket path must be absolute" },
        { T("unix:~/redis.sock"), "the unix socket path must be absolute" },
        { T("redis://a:1,b:2"), "several hosts need cluster mode" },
        { T("redis://a,b"), "several hosts need cluster mode" },
        { T("redis://a:1,"), "several hosts need cluster mode" },
        { NULL, 0, "the host is too long" },
        { NULL, 0, "the unix socket path is too long" },
        { NULL, 0, "the user is too long" },
        { NULL, 0, "the password is too long" },
    };

    /* one byte over each limit; the limit itself is tested below */
    strcpy(long_host, "redis://");
    memset(long_host + 8, 'h', 256);
    strcpy(long_path, "unix:/");
    memset(long_path + 6, 'p', 107);
    strcpy(long_user, "redis://");
    memset(long_user + 8, 'u', 256);
    strcat(long_user, ":pw@h");
    strcpy(long_password, "redis://:");
    memset(long_password + 9, 'p', 512);
    strcat(long_password, "@h");

    i = nelts(cases) - 4;
    cases[i].in = long_host;
    cases[i++].len = strlen(long_host);
    cases[i].in = long_path;
    cases[i++].len = strlen(long_path);
    cases[i].in = long_user;
    cases[i++].len = strlen(long_user);
    cases[i].in = long_password;
    cases[i].len = strlen(long_password);

    for (i = 0; i < nelts(cases); i++) {
        in = dup_exact(cases[i].in, cases[i].len);
        err = NULL;
        memset(&u, 0x5a, sizeof(u));
        before = u;

        rc = et_redis_url_parse(in, cases[i].len, &u, &err);

        tap_ok(rc == ET_ERROR && err != NULL
               && strcmp(err, cases[i].err) == 0
               && memcmp(&u, &before, sizeof(u)) == 0,
               "invalid: %s: %s", esc(cases[i].in, cases[i].len),
               cases[i].err);

        if (rc != ET_ERROR || err == NULL || strcmp(err, cases[i].err) != 0) {
            printf("#   rc %d, error: %s\n", rc, err ? err : "(none)");
        }

        free(in);
    }

    /* exactly at the limits: accepted, not cut */

    strcpy(ok_host, "redis://");
    memset(ok_host + 8, 'h', 255);
    rc = et_redis_url_parse((const uint8_t *) ok_host, strlen(ok_host), &u,
                            &err);
    tap_ok(rc == ET_OK && strlen(u.host) == 255, "a host of 255 bytes");

    strcpy(ok_path, "unix:/");
    memset(ok_path + 6, 'p', 106);
    rc = et_redis_url_parse((const uint8_t *) ok_path, strlen(ok_path), &u,
                            &err);
    tap_ok(rc == ET_OK && strlen(u.path) == 107,
           "a unix socket path of 107 bytes (108 with the NUL)");

    /* a percent-encoded password is measured decoded: 511 "%41" */
    strcpy(ok_password, "redis://:");

    for (i = 0; i < 511; i++) {
        strcat(ok_password, i < 500 ? "A" : "%41");
    }

    strcat(ok_password, "@h");
    rc = et_redis_url_parse((const uint8_t *) ok_password,
                            strlen(ok_password), &u, &err);
    tap_ok(rc == ET_OK && strlen(u.password) == 511
           && strspn(u.password, "A") == 511,
           "a password of 511 bytes, partly percent-encoded");
}


static void
test_seeds(void)
{
    int              rc, ok;
    size_t           i, j;
    uint8_t         *in;
    const char      *err;
    et_redis_url_t   u, before;

    static char  many[600];

    static const struct {
        const char  *in;
        size_t       len;
        const char  *password;
        size_t       n;
        const char  *hosts[3];
        int          ports[3];
    } valid[] = {
        { T("redis://h1:7000"), "", 1, { "h1" }, { 7000 } },
        { T("redis://h1:7000,h2:7001"), "", 2, { "h1", "h2" },
          { 7000, 7001 } },
        { T("redis://h1,h2:7001,h3"), "", 3, { "h1", "h2", "h3" },
          { 6379, 7001, 6379 } },
        { T("redis://:p,w@a:1,b:2"), "p,w", 2, { "a", "b" }, { 1, 2 } },
        { T("redis://:pw@[::1]:7000,[::1]:7001/"), "pw", 2,
          { "::1", "::1" }, { 7000, 7001 } },
        { T("redis://h:7000/0"), "", 1, { "h" }, { 7000 } },
        { T("redis://h:7000,h:7001,H:7000"), "", 3, { "h", "h", "H" },
          { 7000, 7001, 7000 } },
        { T("rediss://:pw@h1:7000,h2:7001"), "pw", 2, { "h1", "h2" },
          { 7000, 7001 } },
    };

    static struct {
        const char  *in;
        size_t       len;
        const char  *err;
    } invalid[] = {
        { T("redis://h:7000/1"),
          "a cluster has database 0 only: it has no SELECT" },
        { T("redis://a:1,b:2/3"),
          "a cluster has database 0 only: it has no SELECT" },
        { T("unix:/r.sock"),
          "a cluster's seeds are \"redis://host:port[,host:port...]\"" },
        { T("h:1,h:2"),
          "a cluster's seeds are \"redis://host:port[,host:port...]\"" },
        { T("rediss://a:1,b:2/1"),
          "a cluster has database 0 only: it has no SELECT" },
        { T(""), "the URL is empty" },
        { T("redis://a:1,a:1"), "a seed is given twice" },
        { T("redis://a,a:6379"), "a seed is given twice" },
        { T("redis://a:1,"), "the host is missing" },
        { T("redis://,a:1"), "the host is missing" },
        { T("redis://a:1,,b:2"), "the host is missing" },
        { T("redis://a:1,:2"), "the host is missing" },
        { T("redis://a:1,b:"), "invalid port" },
        { T("redis://a:1,b:0"), "invalid port" },
        { T("redis://a:,b:2"), "invalid port" },
        { T("redis://a:1,b:2:3"), "invalid port" },
        { T("redis://a:1,b c"), "invalid host" },
        { T("redis://a:1;b:2"), "invalid port" },
        { T("redis://a;b:2"), "invalid host" },
        { T("redis://[::1],[::1"), "the IPv6 address has no closing ']'" },
        { T("redis://[::1]x,b"), "invalid host" },
        { T("redis://a:1/0,b:2"), "invalid database number" },
        { T("redis://a:1,b:2\0"), "the URL contains a NUL byte" },
        { NULL, 0, "more than 16 seeds" },
    };

    for (i = 0; i < nelts(valid); i++) {
        in = dup_exact(valid[i].in, valid[i].len);
        err = NULL;
        memset(&u, 0x5a, sizeof(u));

        rc = et_redis_seeds_parse(in, valid[i].len, &u, &err);

        ok = rc == ET_OK && u.cluster && u.db == 0
             && u.nseeds == valid[i].n
             && strcmp(u.password, valid[i].password) == 0
             && strcmp(u.host, valid[i].hosts[0]) == 0
             && u.port == valid[i].ports[0]
             && u.tls == (strncmp(valid[i].in, "rediss://", 9) == 0);

        for (j = 0; ok && j < valid[i].n; j++) {
            ok = strcmp(u.seeds[j].host, valid[i].hosts[j]) == 0
                 && u.seeds[j].port == valid[i].ports[j];
        }

        tap_ok(ok, "seeds: %s", esc(valid[i].in, valid[i].len));

        if (rc != ET_OK) {
            printf("#   error: %s\n", err ? err : "(none)");
        }

        free(in);
    }

    /* 17 seeds, one over the bound */
    strcpy(many, "redis://");

    for (i = 0; i < ET_REDIS_SEEDS_MAX + 1; i++) {
        sprintf(many + strlen(many), "%sh:%u", i ? "," : "",
                (unsigned) (7000 + i));
    }

    invalid[nelts(invalid) - 1].in = many;
    invalid[nelts(invalid) - 1].len = strlen(many);

    for (i = 0; i < nelts(invalid); i++) {
        in = dup_exact(invalid[i].in, invalid[i].len);
        err = NULL;
        memset(&u, 0x5a, sizeof(u));
        before = u;

        rc = et_redis_seeds_parse(in, invalid[i].len, &u, &err);

        tap_ok(rc == ET_ERROR && err != NULL
               && strcmp(err, invalid[i].err) == 0
               && memcmp(&u, &before, sizeof(u)) == 0,
               "seeds refused: %s: %s", esc(invalid[i].in, invalid[i].len),
               invalid[i].err);

        if (rc != ET_ERROR || err == NULL
            || strcmp(err, invalid[i].err) != 0)
        {
            printf("#   rc %d, error: %s\n", rc, err ? err : "(none)");
        }

        free(in);
    }

    /* exactly 16 seeds */
    *strrchr(many, ',') = '\0';
    rc = et_redis_seeds_parse((const uint8_t *) many, strlen(many), &u, &err);
    tap_ok(rc == ET_OK && u.nseeds == ET_REDIS_SEEDS_MAX
           && u.seeds[15].port == 7015, "16 seeds");

    /* a single Redis: one seed, not a cluster */
    rc = et_redis_url_parse((const uint8_t *) "redis://h:7000", 14, &u, &err);
    tap_ok(rc == ET_OK && !u.cluster && u.nseeds == 1
           && strcmp(u.seeds[0].host, "h") == 0 && u.seeds[0].port == 7000,
           "a single Redis's URL: one seed, no cluster");
}


int
main(void)
{
    test_valid();
    test_invalid();
    test_seeds();

    return tap_done();
}
