/*
 * Unit tests: et_exporter_conf.c (the exporter's defaults, and the bounds
 * of its knobs, as both servers check them).
 */

#include <stdlib.h>

#include "tap.h"
#include "et_exporter_conf.h"


#define nelts(a)  (sizeof(a) / sizeof((a)[0]))


static void
test_conf_init(void)
{
    et_exporter_conf_t  conf, want;
    const char         *err;

    memset(&conf, 0xa5, sizeof(conf));

    tap_is_int(et_exporter_conf_init(&conf), ET_OK, "init: ET_OK");
    tap_is_int(conf.queue_size, 8 * 1024 * 1024, "init: queue 8m");
    tap_is_int(conf.flush_ms, 100, "init: flush interval 100ms");
    tap_is_int(conf.connect_timeout_ms, 1000, "init: connect timeout 1s");
    tap_is_int(conf.io_timeout_ms, 5000, "init: redis timeout 5s");
    tap_is_int(conf.stop_timeout_ms, 3000, "init: flush timeout 3s");
    tap_ok(conf.stream == NULL && conf.shared == 0 && conf.log == NULL
           && conf.log_data == NULL,
           "init: no stream, not shared, no log");

    memset(&want.redis, 0, sizeof(want.redis));
    tap_is_int(et_redis_url_parse((const uint8_t *) ET_REDIS_DEFAULT_URL,
                                  sizeof(ET_REDIS_DEFAULT_URL) - 1,
                                  &want.redis, &err),
               ET_OK, "init: the default URL parses");
    tap_ok(memcmp(&conf.redis, &want.redis, sizeof(want.redis)) == 0,
           "init: Redis at the default URL");
    tap_ok(strcmp(conf.redis.host, "127.0.0.1") == 0
           && conf.redis.port == 6379 && conf.redis.path[0] == '\0'
           && conf.redis.password[0] == '\0' && conf.redis.db == 0,
           "init: 127.0.0.1:6379, no AUTH, no SELECT");

    /* every default is within its knob's bounds */
    tap_ok(et_exporter_knob_check(ET_KNOB_QUEUE_SIZE, conf.queue_size, &err)
           == ET_OK
           && et_exporter_knob_check(ET_KNOB_FLUSH_INTERVAL, conf.flush_ms,
                                     &err) == ET_OK
           && et_exporter_knob_check(ET_KNOB_CONNECT_TIMEOUT,
                                     conf.connect_timeout_ms, &err) == ET_OK
           && et_exporter_knob_check(ET_KNOB_REDIS_TIMEOUT,
                                     conf.io_timeout_ms, &err) == ET_OK
           && et_exporter_knob_check(ET_KNOB_FLUSH_TIMEOUT,
                                     conf.stop_timeout_ms, &err) == ET_OK
           && et_exporter_knob_check(ET_KNOB_VALUE_MAX, ET_VALUE_MAX_DEFAULT,
                                     &err) == ET_OK,
           "init: every default within its bounds");
}


static void
test_knob_check(void)
{
    int           rc;
    size_t        i;
    const char   *err;

    static const char  flush[] =
        "must be from 1ms to 1s: spans reach Redis within a second";
    static const char  timeout[] = "must be from 1ms to 1h";

    static const struct {
        unsigned     knob;
        uint64_t     value;
        const char  *err;        /* NULL: ET_OK */
    } cases[] = {
        { ET_KNOB_QUEUE_SIZE, 0, "must be at least 4k" },
        { ET_KNOB_QUEUE_SIZE, 1024, "must be at least 4k" },
        { ET_KNOB_QUEUE_SIZE, 4095, "must be at least 4k" },
        { ET_KNOB_QUEUE_SIZE, 4096, NULL },
        { ET_KNOB_QUEUE_SIZE, 8 * 1024 * 1024, NULL },
        { ET_KNOB_QUEUE_SIZE, UINT64_MAX, NULL },

        { ET_KNOB_VALUE_MAX, 0, "must be from 1 to 64k" },
        { ET_KNOB_VALUE_MAX, 1, NULL },
        { ET_KNOB_VALUE_MAX, 65536, NULL },
        { ET_KNOB_VALUE_MAX, 65537, "must be from 1 to 64k" },
        { ET_KNOB_VALUE_MAX, 100 * 1024 * 1024, "must be from 1 to 64k" },
        { ET_KNOB_VALUE_MAX, UINT64_MAX, "must be from 1 to 64k" },

        { ET_KNOB_FLUSH_INTERVAL, 0, flush },
        { ET_KNOB_FLUSH_INTERVAL, 1, NULL },
        { ET_KNOB_FLUSH_INTERVAL, 1000, NULL },
        { ET_KNOB_FLUSH_INTERVAL, 1001, flush },
        { ET_KNOB_FLUSH_INTERVAL, 5000, flush },

        { ET_KNOB_CONNECT_TIMEOUT, 0, timeout },
        { ET_KNOB_CONNECT_TIMEOUT, 1, NULL },
        { ET_KNOB_CONNECT_TIMEOUT, 3600000, NULL },
        { ET_KNOB_CONNECT_TIMEOUT, 3600001, timeout },
        { ET_KNOB_REDIS_TIMEOUT, 0, timeout },
        { ET_KNOB_REDIS_TIMEOUT, 5000, NULL },
        { ET_KNOB_REDIS_TIMEOUT, 3600001, timeout },
        { ET_KNOB_FLUSH_TIMEOUT, 0, timeout },
        { ET_KNOB_FLUSH_TIMEOUT, 3600000, NULL },
        { ET_KNOB_FLUSH_TIMEOUT, (uint64_t) 50 * 86400 * 1000, timeout },
        { ET_KNOB_FLUSH_TIMEOUT, UINT64_MAX, timeout },

        { 6, 100, "is not a knob of the exporter" },
        { (unsigned) -1, 100, "is not a knob of the exporter" },
    };

    for (i = 0; i < nelts(cases); i++) {
        err = NULL;
        rc = et_exporter_knob_check(cases[i].knob, cases[i].value, &err);

        if (cases[i].err == NULL) {
            tap_ok(rc == ET_OK && err == NULL, "knob %u = %llu: accepted",
                   cases[i].knob, (unsigned long long) cases[i].value);

        } else {
            tap_ok(rc == ET_ERROR && err && strcmp(err, cases[i].err) == 0,
                   "knob %u = %llu: refused, \"%s\"", cases[i].knob,
                   (unsigned long long) cases[i].value, cases[i].err);
        }
    }

    /* the widest timeout fits the unsigned ms of et_exporter_conf_t */
    tap_ok((uint64_t) (unsigned) ET_TIMEOUT_MS_MAX == ET_TIMEOUT_MS_MAX,
           "the longest timeout fits an unsigned");
}


int
main(void)
{
    test_conf_init();
    test_knob_check();

    return tap_done();
}
