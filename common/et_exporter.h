/*
 * The exporter: one per worker/child process.  Request threads encode
 * finished spans into its queue; its own thread (started with every signal
 * blocked) writes them to Redis in pipelined batches and counts the
 * replies.  A request never waits on Redis: when the queue is full the span
 * is dropped and counted.
 *
 * The thread wakes every flush interval (or early, when the queue is half
 * full or holds 512 KB), drains the replies that piled up since the last
 * batch, and writes the queue's bytes in one write.  A broken connection
 * is retried with a backoff doubling from 100 ms up to 5 s; spans written
 * but not acknowledged when it broke are counted as dropped (redis_error).
 * The slot's queued gauge is counted by the queue, and the thread logs
 * spans counted that went missing (see et_metrics.h).
 */

#ifndef ET_EXPORTER_H
#define ET_EXPORTER_H


#include "et_core.h"
#include "et_span.h"
#include "et_stream.h"
#include "et_redis_url.h"
#include "et_metrics.h"
#include "et_exporter_conf.h"


typedef struct et_exporter_s  et_exporter_t;


#define ET_BACKOFF_MIN_MS             100
#define ET_BACKOFF_MAX_MS             5000


/*
 * Creates the exporter (malloc) and starts its thread; "counters" (a slot
 * in shared memory, see et_metrics.h) must outlive it.  NULL on failure,
 * after logging why.  Call it in the worker/child process, after fork.
 */
et_exporter_t *et_exporter_start(const et_exporter_conf_t *conf,
    et_counters_t *counters);

/*
 * Encodes a finished span into the queue and counts it (spans, and
 * dropped_queue_full when there is no room).  Never blocks on Redis.
 * Returns ET_OK, or ET_DECLINED when the span was dropped.
 */
int et_exporter_submit(et_exporter_t *ex, const et_span_t *span);

/*
 * Flushes what is queued within stop_timeout_ms, counts what could not be
 * sent as dropped (redis_error) and logs why (Redis unreachable, the
 * connection broken: then it does not wait; or no reply in time), stops
 * the thread, zeroes the slot's gauges and frees everything.
 */
void et_exporter_stop(et_exporter_t *ex);


#endif /* ET_EXPORTER_H */
