/*
 * The unit tests' connection to the redis-server their t/unit/NAME.t
 * wrapper started, whose port is in ET_REDIS_PORT.  Include after tap.h
 * and <hiredis/hiredis.h>.
 */

#ifndef ET_TAP_REDIS_H
#define ET_TAP_REDIS_H


#include <stdlib.h>


/*
 * NULL, and a failed test, when there is no such Redis; "wrapper" names
 * the t/unit/NAME.t that starts it.
 */
static redisContext *
tap_redis_connect(const char *wrapper)
{
    int             port;
    const char     *env;
    redisContext   *c;
    struct timeval  tv = { 5, 0 };

    env = getenv("ET_REDIS_PORT");

    if (env == NULL || (port = atoi(env)) <= 0) {
        tap_ok(0, "ET_REDIS_PORT is set (run %s, which starts "
               "redis-server)", wrapper);
        return NULL;
    }

    c = redisConnectWithTimeout("127.0.0.1", port, tv);

    tap_ok(c != NULL && c->err == 0, "connected to Redis on port %d%s%s",
           port, c == NULL || c->err ? ": " : "",
           c == NULL ? "out of memory" : c->errstr);

    if (c != NULL && c->err) {
        redisFree(c);
        return NULL;
    }

    return c;
}


#endif /* ET_TAP_REDIS_H */
