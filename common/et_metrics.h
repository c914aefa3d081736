/*
 * The counters of SPEC section 6.
 *
 * Each worker (or child) process claims one slot of a table that the
 * adapter places in shared memory; the status handler sums every slot.
 * Slots keep their counters when their process exits, so the sums never go
 * backwards across reloads; gauges are per slot and go to zero at exit.
 *
 * Every counter has a single writer thread (the request side or the
 * exporter thread), so the request side updates them without locked
 * instructions unless the adapter has several request threads.
 */

#ifndef ET_METRICS_H
#define ET_METRICS_H


#include "et_core.h"


#define ET_CACHE_LINE  64


typedef struct {
    /* written on the request path */
    uint64_t   requests;
    uint64_t   requests_sampled;
    uint64_t   spans;
    uint64_t   dropped_queue_full;
    uint8_t    pad0[ET_CACHE_LINE - 4 * sizeof(uint64_t)];

    /* written by the exporter thread */
    uint64_t   exported;
    uint64_t   dropped_redis_error;
    uint64_t   redis_errors;
    uint64_t   redis_reconnects;
    uint64_t   redis_connected;     /* gauge: 0 or 1 per slot */
    uint8_t    pad1[ET_CACHE_LINE - 5 * sizeof(uint64_t)];
} __attribute__((aligned(ET_CACHE_LINE))) et_counters_t;


typedef struct {
    et_counters_t   counters;
    int32_t         pid;            /* 0: free */
    uint8_t         pad[ET_CACHE_LINE - sizeof(int32_t)];
} __attribute__((aligned(ET_CACHE_LINE))) et_slot_t;


typedef struct {
    uint32_t        nslots;
    uint8_t         pad[ET_CACHE_LINE - sizeof(uint32_t)];
    et_slot_t       slots[];
} __attribute__((aligned(ET_CACHE_LINE))) et_metrics_t;


/* the sum over slots, with the queued gauge derived from the counters */
typedef struct {
    uint64_t   requests;
    uint64_t   requests_sampled;
    uint64_t   spans;
    uint64_t   exported;
    uint64_t   dropped_queue_full;
    uint64_t   dropped_redis_error;
    uint64_t   queued;
    uint64_t   redis_errors;
    uint64_t   redis_reconnects;
    uint64_t   redis_connected;
} et_metrics_sum_t;


#define ET_METRICS_SLOTS_DEFAULT  512


size_t et_metrics_size(uint32_t nslots);

/* zeroes a table of "nslots" in memory of et_metrics_size() bytes */
void et_metrics_init(et_metrics_t *m, uint32_t nslots);

/*
 * Claims a free slot for "pid" (atomically, across processes): a slot
 * freed by an exited process is reused and its counters keep adding up.
 * NULL when every slot is taken.
 */
et_counters_t *et_metrics_claim(et_metrics_t *m, int32_t pid);

/* gauges to zero and the slot free again; the counters stay */
void et_metrics_release(et_metrics_t *m, et_counters_t *c);

/*
 * Sums every slot.  Queued is spans - exported - dropped per slot (exact
 * at rest); slots whose process is gone contribute no gauges.
 */
void et_metrics_sum(const et_metrics_t *m, et_metrics_sum_t *sum);

/* the Prometheus text exposition of "sum"; returns the bytes written */
size_t et_metrics_format(const et_metrics_sum_t *sum, uint8_t *buf,
    size_t size);

#define ET_METRICS_TEXT_MAX  2048


/*
 * Counter updates.  "shared" is non-zero when several threads write the
 * same request-side counters (httpd's threaded MPMs).
 */
static inline void
et_counter_add(uint64_t *c, uint64_t n, int shared)
{
    if (shared) {
        __atomic_fetch_add(c, n, __ATOMIC_RELAXED);

    } else {
        __atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + n,
                         __ATOMIC_RELAXED);
    }
}


#endif /* ET_METRICS_H */
