/*
 * The exporter's configuration: defaults and bounds, one table for both
 * servers.
 */


#include <string.h>

#include "et_exporter_conf.h"


typedef struct {
    uint64_t      min;
    uint64_t      max;
    const char   *err;
} et_knob_t;


/* indexed by ET_KNOB_* */
static const et_knob_t  et_knobs[] = {
    { ET_QUEUE_SIZE_MIN, UINT64_MAX, "must be at least 4k" },
    { 1, ET_VALUE_MAX_MAX, "must be from 1 to 64k" },
    { 1, ET_FLUSH_MS_MAX,
      "must be from 1ms to 1s: spans reach Redis within a second" },
    { 1, ET_TIMEOUT_MS_MAX, "must be from 1ms to 1h" },
    { 1, ET_TIMEOUT_MS_MAX, "must be from 1ms to 1h" },
    { 1, ET_TIMEOUT_MS_MAX, "must be from 1ms to 1h" }
};


int
et_exporter_conf_init(et_exporter_conf_t *conf)
{
    const char  *err;

    memset(conf, 0, sizeof(et_exporter_conf_t));

    conf->queue_size = ET_QUEUE_SIZE_DEFAULT;
    conf->flush_ms = ET_FLUSH_MS_DEFAULT;
    conf->connect_timeout_ms = ET_CONNECT_TIMEOUT_MS_DEFAULT;
    conf->io_timeout_ms = ET_IO_TIMEOUT_MS_DEFAULT;
    conf->stop_timeout_ms = ET_STOP_TIMEOUT_MS_DEFAULT;

    return et_redis_url_parse((const uint8_t *) ET_REDIS_DEFAULT_URL,
                              sizeof(ET_REDIS_DEFAULT_URL) - 1, &conf->redis,
                              &err);
}


int
et_exporter_knob_check(unsigned knob, uint64_t value, const char **err)
{
    const et_knob_t  *k;

    if (knob >= sizeof(et_knobs) / sizeof(et_knobs[0])) {
        *err = "is not a knob of the exporter";
        return ET_ERROR;
    }

    k = &et_knobs[knob];

    if (value < k->min || value > k->max) {
        *err = k->err;
        return ET_ERROR;
    }

    return ET_OK;
}

