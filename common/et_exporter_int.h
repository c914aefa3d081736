/*
 * The exporter's own state, shared by its single-Redis path
 * (et_exporter.c) and its Redis Cluster path (et_exporter_cluster.c).
 * Nothing outside those two files includes it.
 */

#ifndef ET_EXPORTER_INT_H
#define ET_EXPORTER_INT_H


#include <pthread.h>
#include <sys/time.h>

#include "et_conn.h"
#include "et_queue.h"
#include "et_resp.h"
#include "et_exporter.h"


/* replies are read this much at a time */
#define ET_EXPORTER_RBUF       (64 * 1024)

/* the longest wait in poll(), so that stop is noticed */
#define ET_EXPORTER_POLL_MS    100

/* at most one line per kind of trouble per this interval */
#define ET_EXPORTER_LOG_MS     1000

#define ET_EXPORTER_DETAIL     160
#define ET_EXPORTER_LINE       512
#define ET_EXPORTER_ADDR       (sizeof(((et_redis_url_t *) 0)->host) + 16)


typedef struct et_xcluster_s  et_xcluster_t;


/* kinds of trouble, each logged at most once per ET_EXPORTER_LOG_MS */
enum {
    ET_TROUBLE_CONNECT = 0,
    ET_TROUBLE_IO,
    ET_TROUBLE_REPLY,
    ET_TROUBLE_QUEUE,
    ET_TROUBLE_RECONNECT,
    ET_TROUBLE_ACCOUNT,
    ET_TROUBLE_N
};


typedef struct {
    uint64_t   last_ms;          /* when the last line was written */
    unsigned   logged;           /* a line was ever written */
    uint64_t   events;           /* since the last line */
    uint64_t   lost;             /* spans lost since the last line */
    uint64_t   mark;             /* drops counted when the last line was */
    char       detail[ET_EXPORTER_DETAIL];
} et_trouble_t;


struct et_exporter_s {
    et_exporter_conf_t   conf;
    et_counters_t       *counters;
    et_queue_t           queue;
    size_t               kick_bytes;   /* half the queue, at most 512 KB */

    pthread_t            thread;
    uint32_t             wake;         /* futex: 1 when kicked or stopped */
    int                  stop;

    /* everything below belongs to the thread */

    et_conn_t            conn;         /* fd -1: not connected */
    et_resp_t            resp;          /* where the reply bytes are */
    uint64_t             inflight;     /* written, not acknowledged */
    uint64_t             connects;     /* successful */
    unsigned             backoff_ms;
    uint64_t             connect_at;   /* next attempt, monotonic ms */
    uint64_t             connected_at;
    uint64_t             progress_at;  /* last write or reply */
    uint64_t             full_seen;    /* dropped_queue_full reported */
    uint64_t             missing;      /* unaccounted spans reported */

    /* the slot's counters at start */
    uint64_t             base_spans;
    uint64_t             base_done;    /* exported and dropped */

    char                 addr[ET_EXPORTER_ADDR];
    et_trouble_t         trouble[ET_TROUBLE_N];

    et_xcluster_t       *cluster;      /* NULL: a single Redis */

    uint8_t              rbuf[ET_EXPORTER_RBUF];
};



/*
 * Shared by both paths: the queued gauge, the identity check, the queue's
 * drops and the held-back log lines (et_exporter.c).
 */
uint64_t et_exporter_pending(et_exporter_t *ex);
void et_exporter_inflight(et_exporter_t *ex, uint64_t n);
void et_exporter_account(et_exporter_t *ex);
void et_exporter_queue_full(et_exporter_t *ex);
void et_exporter_reports(et_exporter_t *ex, int force);
void et_exporter_log(et_exporter_t *ex, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* the Redis Cluster path (et_exporter_cluster.c) */
et_xcluster_t *et_xcluster_create(et_exporter_t *ex);
void et_xcluster_cycle(et_exporter_t *ex);
void et_xcluster_finish(et_exporter_t *ex);
void et_xcluster_free(et_xcluster_t *xc);


#endif /* ET_EXPORTER_INT_H */
