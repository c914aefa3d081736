/*
 * The exporter's configuration, the same in both servers: its defaults and
 * the bounds of the knobs a user sets (docs/nginx.md "Exporter tuning",
 * docs/httpd.md "Exporter tuning").  The adapter parses each knob with its
 * server's own parser (nginx's size and time slots, httpd's sizes and
 * ap_timeout_parameter_parse()), checks it here as the directive is read,
 * so that the error names the directive's line, and prints the reason
 * after the directive's name.
 */

#ifndef ET_EXPORTER_CONF_H
#define ET_EXPORTER_CONF_H


#include "et_core.h"
#include "et_stream.h"
#include "et_redis_url.h"
#include "et_tls.h"


typedef struct {
    et_redis_url_t     redis;
    et_tls_ctx_t      *tls;             /* rediss://; must outlive it */
    const et_stream_t *stream;          /* must outlive the exporter */

    size_t             queue_size;      /* bytes */
    unsigned           flush_ms;        /* batch interval */
    unsigned           connect_timeout_ms;
    unsigned           io_timeout_ms;   /* no progress: connection dead */
    unsigned           stop_timeout_ms; /* flush budget at stop */
    int                shared;          /* several producer threads */

    et_log_pt          log;
    void              *log_data;
} et_exporter_conf_t;


#define ET_QUEUE_SIZE_DEFAULT         (8 * 1024 * 1024)
#define ET_FLUSH_MS_DEFAULT           100
#define ET_CONNECT_TIMEOUT_MS_DEFAULT 1000
#define ET_IO_TIMEOUT_MS_DEFAULT      5000
#define ET_STOP_TIMEOUT_MS_DEFAULT    3000

/* the bounds et_exporter_knob_check() holds the knobs to */
#define ET_QUEUE_SIZE_MIN             4096
#define ET_VALUE_MAX_MAX              65536
#define ET_FLUSH_MS_MAX               1000
#define ET_TIMEOUT_MS_MAX             3600000


/* the knobs, and the unit of the value et_exporter_knob_check() takes */
#define ET_KNOB_QUEUE_SIZE       0      /* bytes, at least 4k */
#define ET_KNOB_VALUE_MAX        1      /* bytes, 1 to 64k */
#define ET_KNOB_FLUSH_INTERVAL   2      /* ms, 1ms to 1s */
#define ET_KNOB_CONNECT_TIMEOUT  3      /* ms, 1ms to 1h */
#define ET_KNOB_REDIS_TIMEOUT    4      /* ms, 1ms to 1h: io_timeout_ms */
#define ET_KNOB_FLUSH_TIMEOUT    5      /* ms, 1ms to 1h: stop_timeout_ms */


/*
 * Sets every field of "conf" to its default: Redis at ET_REDIS_DEFAULT_URL,
 * the ET_*_DEFAULT sizes and times, no stream, not shared, no log.  The
 * adapter then sets what the configuration gives, the stream, "shared" and
 * the log.  ET_ERROR only if the default URL does not parse, which a unit
 * test rules out.
 */
int et_exporter_conf_init(et_exporter_conf_t *conf);

/*
 * Checks the value of knob "knob" (ET_KNOB_*, in the unit the knob's
 * comment gives).  ET_ERROR for a value out of its bounds or an unknown
 * knob, with a constant text in "err" written to follow the directive's
 * name: "must be from 1ms to 1s: spans reach Redis within a second".
 */
int et_exporter_knob_check(unsigned knob, uint64_t value, const char **err);


#endif /* ET_EXPORTER_CONF_H */
