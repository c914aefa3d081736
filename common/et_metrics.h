/*
 * The counters the status handler serves (docs/counters.md).
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
#include "et_limit.h"


#define ET_CACHE_LINE  64


/*
 * A span is counted in "spans" after its outcome on the request path
 * (queued, or dropped_queue_full), so that whoever reads "spans" first
 * sees the outcome of every span it counts.  The queued gauge is not
 * derived from the other counters: it is the queue's own count of entries
 * (queue_in - queue_out, see et_queue_count()) plus the entries written and
 * not yet acknowledged (inflight); a span counted and then lost shows as
 * spans > exported + dropped + queued.
 */

/*
 * A Redis Cluster master a process writes to, on the status page by its
 * address (docs/counters.md "Redis Cluster").  The exporter thread claims
 * an entry the first time it meets the master: "addr" is written once,
 * then "used" is published with release; the status handler reads "used"
 * with acquire, and then "addr" never changes under it.  A master that
 * finds no entry (more than ET_METRICS_NODES - 1 of them, or an address
 * that does not fit or would need escaping) is counted in the last entry,
 * whose address is "other".
 */

#define ET_METRICS_NODES      8
#define ET_METRICS_NODE_ADDR  48    /* "[IPv6 address]:port" and its NUL */

typedef struct {
    char       addr[ET_METRICS_NODE_ADDR];
    uint32_t   used;
    uint32_t   connected;           /* gauge: connections to it now */
    uint64_t   errors;              /* its part of redis_errors */
} et_node_counters_t;


typedef struct {
    /* written on the request path */
    uint64_t   requests;
    uint64_t   requests_sampled;
    uint64_t   spans;
    uint64_t   dropped_queue_full;
    uint64_t   queue_in;            /* gauge: entries ever put in the queue */
    uint64_t   requests_kept;       /* by an outcome rule */
    uint64_t   requests_rate_limited;
    uint8_t    pad0[ET_CACHE_LINE - 7 * sizeof(uint64_t)];

    /* written by the exporter thread */
    uint64_t   exported;
    uint64_t   dropped_redis_error;
    uint64_t   redis_errors;
    uint64_t   redis_reconnects;
    uint64_t   redis_connected;     /* gauge: 0 or 1 per slot; in a
                                       cluster, masters connected */
    uint64_t   queue_out;           /* gauge: entries ever taken from it */
    uint64_t   inflight;            /* gauge: written, not acknowledged */
    uint64_t   redis_nodes;         /* gauge: a cluster's masters, or 0 */

    /* written by the exporter thread of a cluster */
    uint64_t   redis_redirects[2];  /* MOVED, ASK */
    uint8_t    pad1[ET_CACHE_LINE - 2 * sizeof(uint64_t)];
    et_node_counters_t  nodes[ET_METRICS_NODES];
} __attribute__((aligned(ET_CACHE_LINE))) et_counters_t;


typedef struct {
    et_counters_t   counters;
    int32_t         pid;            /* 0: free */
    uint8_t         pad[ET_CACHE_LINE - sizeof(int32_t)];
} __attribute__((aligned(ET_CACHE_LINE))) et_slot_t;


/*
 * The table's first line also holds the head-sampling rate limit's bucket
 * (et_limit.h), as every process of the server sees this memory.
 */
typedef struct {
    uint32_t        nslots;
    uint32_t        pad0;
    et_limit_t      limit;
    uint8_t         pad[ET_CACHE_LINE - 2 * sizeof(uint32_t)
                        - sizeof(et_limit_t)];
    et_slot_t       slots[];
} __attribute__((aligned(ET_CACHE_LINE))) et_metrics_t;


/* the masters on the page at most; the last is "other" */
#define ET_METRICS_PAGE_NODES  32

typedef struct {
    char       addr[ET_METRICS_NODE_ADDR];
    uint64_t   errors;
    uint64_t   connected;
} et_node_sum_t;


/* the sum over slots */
typedef struct {
    uint64_t   requests;
    uint64_t   requests_sampled;
    uint64_t   requests_kept;
    uint64_t   requests_rate_limited;
    uint64_t   spans;
    uint64_t   exported;
    uint64_t   dropped_queue_full;
    uint64_t   dropped_redis_error;
    uint64_t   queued;
    uint64_t   redis_errors;
    uint64_t   redis_reconnects;
    uint64_t   redis_connected;
    uint64_t   redis_nodes;
    uint64_t   redis_redirects[2];
    unsigned   nnodes;
    et_node_sum_t  nodes[ET_METRICS_PAGE_NODES];
} et_metrics_sum_t;


#define ET_METRICS_SLOTS_DEFAULT  512


/*
 * The bytes a table of "nslots" needs, with room to start it on a cache
 * line: shared memory need not be aligned (apr_shm's base is not), and
 * the slots are laid out as their type's alignment says.
 */
size_t et_metrics_size(uint32_t nslots);

/* the table in memory of et_metrics_size() bytes: its aligned start */
et_metrics_t *et_metrics_at(void *mem);

/* zeroes a table of "nslots" in memory of et_metrics_size() bytes */
et_metrics_t *et_metrics_init(void *mem, uint32_t nslots);

/*
 * Claims a free slot for "pid" (atomically, across processes): a slot
 * freed by an exited process is reused and its counters keep adding up.
 * NULL when every slot is taken.
 */
et_counters_t *et_metrics_claim(et_metrics_t *m, int32_t pid);

/*
 * The slot's gauges to zero (its exporter stopped, or a new process's
 * queue counts its entries from 0); the counters stay.
 */
void et_metrics_gauges_zero(et_counters_t *c);

/* gauges to zero and the slot free again; the counters stay */
void et_metrics_release(et_metrics_t *m, et_counters_t *c);

/*
 * Sums every slot.  Queued is queue_in - queue_out + inflight per slot;
 * slots whose process is gone contribute no gauges.
 */
void et_metrics_sum(const et_metrics_t *m, et_metrics_sum_t *sum);

/*
 * The exporter thread of the slot "c": the entry of the master at "addr"
 * (NUL-terminated), claimed if it is new; "other" when none is left or the
 * address does not fit (see et_node_counters_t).  Never NULL.
 */
et_node_counters_t *et_metrics_node(et_counters_t *c, const char *addr);

/* the Prometheus text exposition of "sum"; returns the bytes written */
size_t et_metrics_format(const et_metrics_sum_t *sum, uint8_t *buf,
    size_t size);

#define ET_METRICS_TEXT_MAX  8192

/*
 * The response headers of the counters page, in both servers: the
 * Prometheus text format's media type (docs/counters.md), and no-store, as
 * every scrape must see the counters of its own moment, never a cached
 * page.
 */
#define ET_METRICS_CONTENT_TYPE   "text/plain; version=0.0.4; charset=utf-8"
#define ET_METRICS_CACHE_CONTROL  "no-store"


/*
 * Counter updates.  "shared" is non-zero when several threads write the
 * same request-side counters (httpd's threaded MPMs).
 */
static inline void
et_counter_add(uint64_t *c, uint64_t n, int shared)
{
    /* release: what was written before is seen by whoever reads this */

    if (shared) {
        __atomic_fetch_add(c, n, __ATOMIC_RELEASE);

    } else {
        __atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + n,
                         __ATOMIC_RELEASE);
    }
}


/*
 * Counts a request whose tracing was decided (the module is on for it) in
 * "requests", and in "requests_sampled" when "sampled".  "c" is the
 * process's slot, or NULL when it has none (no free slot, or before
 * child/worker init): then nothing is counted.  "shared" as for
 * et_counter_add().
 */
static inline void
et_metrics_count_request(et_counters_t *c, int sampled, int shared)
{
    if (c == NULL) {
        return;
    }

    et_counter_add(&c->requests, 1, shared);

    if (sampled) {
        et_counter_add(&c->requests_sampled, 1, shared);
    }
}


/*
 * Counts a request that head sampling did not sample and an outcome rule
 * kept (at its end), in requests_sampled_total{reason="outcome"}.
 */
static inline void
et_metrics_count_kept(et_counters_t *c, int shared)
{
    if (c != NULL) {
        et_counter_add(&c->requests_kept, 1, shared);
    }
}


/*
 * Counts a request the rate limit unsampled (et_limit_trace()), in
 * requests_rate_limited_total; count it in et_metrics_count_request() as
 * not sampled.
 */
static inline void
et_metrics_count_limited(et_counters_t *c, int shared)
{
    if (c != NULL) {
        et_counter_add(&c->requests_rate_limited, 1, shared);
    }
}


#endif /* ET_METRICS_H */
