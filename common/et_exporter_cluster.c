/*
 * The exporter on a Redis Cluster (docs/nginx.md "edgetrace_redis", with
 * "cluster"): the same queue, the same thread, another way out.
 *
 * The thread learns the slot map from any seed (CLUSTER SLOTS, or CLUSTER
 * SHARDS where SLOTS is gone), keeps one connection per master, and knows
 * each shard's slot from the start (the slot of the shard's key,
 * docs/stream.md "Sharded streams").  The entries queued are taken into a
 * window, in order, as they come; each goes to the master that serves its
 * shard's slot, written to it straight from the queue's ring with the
 * other entries for that master (one et_conn_send() of many iovecs,
 * nothing copied: one sendmsg(), or TLS records).  The entries stay in
 * the queue until they are answered for: the answered ones at the
 * window's tail leave it, counted, as the replies come, while later
 * ones are written (a pipeline, not a batch waited for whole), so that an
 * entry can be sent again whatever happens to the connection that carried
 * it.  Over TLS (rediss://) every connection is TLS, the slot map's
 * included (docs/nginx.md "edgetrace_redis").  While replies are due the thread looks at
 * them every ET_XC_SLICE_MS (or sooner: a kick, a fuller queue), all that
 * came at once, rather than waking up for each few a node sends.
 *
 * Replies are matched to entries in order, per connection, and counted
 * as with a single Redis (et_resp_scan_error(): an entry id is not built,
 * only an error's text is kept): MOVED points the slot at the master
 * named and sends the entry there (and the map is learnt again); ASK
 * sends ASKING and the entry to the node named, once; TRYAGAIN,
 * CLUSTERDOWN, LOADING and MASTERDOWN back off and send again; any other
 * error drops the entry (redis_error), as with a single Redis.  A
 * connection that breaks, or that has not answered for the I/O timeout,
 * is closed, the map is learnt again from any node that answers (a
 * failover shows there), and its unanswered entries are sent again:
 * delivery is at least once, so an entry whose reply was lost may be
 * stored twice.
 *
 * Counting (docs/counters.md): an entry stays queued until it leaves the
 * queue, then it is exported or dropped, so the identity holds exactly at
 * rest.  An entry a master acknowledged is exported, even if that master
 * then fails before its replica has it: Redis Cluster replicates
 * asynchronously, and the acknowledgment is all a client is told.
 *
 * A reply that is an array never answers XADD: it is a protocol error,
 * found at its first byte, so a node cannot make the thread allocate.
 * hiredis 0.14, which reads the slot map, allocates an array's elements
 * as soon as it reads the header: those readers refuse, per reply, more
 * array elements than ET_CLUSTER_ELEMENTS_MAX in all (et_cluster_guard).
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "et_clock.h"
#include "et_cluster.h"
#include "et_conn.h"
#include "et_slot.h"
#include "et_exporter_int.h"


/*
 * Entries in the window at most: a power of two, an entry's place in it
 * is what a connection's list of replies due holds.
 */
#define ET_XC_WINDOW         16384

/* the place of an ASKING command in a connection's list of replies due */
#define ET_XC_ASKING         ((uint32_t) -1)

#define ET_XC_ASKING_CMD     "*1\r\n$6\r\nASKING\r\n"

/* iovecs in one sendmsg() at most */
#define ET_XC_IOV            512

/* bytes of commands copied for one TLS write at most: four full records */
#define ET_XC_STAGE          (64 * 1024)

/*
 * While replies are due, the thread reads them this often; more often
 * once a quarter of the queue is taken (a small queue, a high rate): the
 * entries stay in the queue until they are answered.
 */
#define ET_XC_SLICE_MS       10
#define ET_XC_SLICE_MIN_MS   1

/* as with a single Redis: what is written rarely waits for room */
#define ET_XC_SNDBUF         (1024 * 1024)

/* the map is learnt again at most this often */
#define ET_XC_REFRESH_MS     100

#define ET_XC_ADDR           (ET_CLUSTER_HOST_MAX + 16)


enum {
    ET_XE_PENDING = 0,       /* to be sent */
    ET_XE_SENT,              /* its reply due on a connection */
    ET_XE_OK,                /* acknowledged */
    ET_XE_DROPPED            /* refused */
};


typedef struct {
    struct iovec     iov[2];       /* its bytes in the queue's ring */
    uint32_t         len;
    uint16_t         slot;
    uint8_t          niov;
    uint8_t          state;
    int              ask;          /* connection an ASK named, or -1 */
} et_xentry_t;


typedef struct {
    char             host[ET_CLUSTER_HOST_MAX + 1];
    int              port;
    char             addr[ET_XC_ADDR];
    et_conn_t        conn;         /* conn.fd -1: not connected */
    int              in_map;       /* a master of the current map */
    int              wanted;       /* an ASK named it */
    et_node_counters_t *stat;      /* on the status page */
    et_resp_t        resp;         /* where the reply bytes are */

    uint32_t        *due;          /* entries whose replies are due */
    size_t           due_size;
    size_t           due_head;
    size_t           due_len;
    size_t           sent;         /* of those, written whole */
    size_t           sent_off;     /* bytes of the next one written */

    uint64_t         progress_at;
    uint64_t         connect_at;
    unsigned         backoff_ms;
    uint64_t         connects;

    /* trouble with this node, logged at most once per ET_EXPORTER_LOG_MS */
    uint64_t         log_ms;
    uint64_t         events;
    uint64_t         lost;
    int              logged;
    char             detail[ET_EXPORTER_DETAIL];
} et_xconn_t;


struct et_xcluster_s {
    et_cluster_map_t    *map;
    et_cluster_map_t    *spare;
    int                  have_map;
    int                  refresh;      /* the map is to be learnt again */
    uint64_t             refresh_at;
    unsigned             refresh_backoff_ms;

    unsigned             shards;
    uint16_t             shard_slot[ET_STREAM_SHARDS_MAX];

    et_xconn_t          *conns;        /* ET_CLUSTER_MASTERS_MAX */
    unsigned             nconns;
    int                  node_conn[ET_CLUSTER_MASTERS_MAX];

    /* the window: entries taken from the queue and not consumed yet */
    et_xentry_t         *win;          /* ET_XC_WINDOW, a ring */
    uint8_t             *stage;        /* ET_XC_STAGE, for TLS writes */
    uint64_t             tail;         /* the oldest, the queue's tail */
    uint64_t             routed;       /* the first never routed */
    uint64_t             head;         /* past the last taken */
    size_t               again;        /* pending, before "routed" */
    et_queue_iter_t      it;           /* where the next is taken */

    uint64_t             retry_at;     /* TRYAGAIN, CLUSTERDOWN */
    unsigned             retry_ms;

    /* the map's trouble, logged as a node's is */
    et_xconn_t           mapper;
};


static void et_xc_trouble(et_exporter_t *ex, et_xconn_t *c, uint64_t lost,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void et_xc_report(et_exporter_t *ex, et_xconn_t *c, uint64_t now,
    int force);
static void et_xc_broken(et_exporter_t *ex, et_xconn_t *c,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));


/* the key of an XADD command from "$4\r\nXADD\r\n" on; NULL if none */
static const uint8_t *
et_xc_key(const uint8_t *p, const uint8_t *last, size_t *klen)
{
    size_t  n;

    if (last - p < 10 || memcmp(p, "$4\r\nXADD\r\n", 10) != 0) {
        return NULL;
    }

    p += 10;

    if (p == last || *p++ != '$') {
        return NULL;
    }

    n = 0;

    while (p < last && *p >= '0' && *p <= '9' && n <= ET_STREAM_KEY_MAX) {
        n = n * 10 + (size_t) (*p++ - '0');
    }

    if (last - p < 2 || p[0] != '\r' || p[1] != '\n') {
        return NULL;
    }

    p += 2;

    if ((size_t) (last - p) < n) {
        return NULL;
    }

    *klen = n;

    return p;
}


/*
 * The slot of an entry: its shard's, found from the shard number in its
 * key ("<key>:<i>{<j>}", docs/stream.md; the key itself has no brace
 * when there are shards), read backwards from the key's end; the slot of
 * the key itself for anything else.  Byte by byte, without memchr(): it
 * runs for every span, and the fields it reads are a few bytes long.
 */
static unsigned
et_xc_entry_slot(et_xcluster_t *xc, const struct iovec *iov, int niov,
    size_t len)
{
    size_t          n, klen, first;
    unsigned        i, m;
    const uint8_t  *p, *last, *key, *d;
    uint8_t         buf[ET_STREAM_KEY_MAX + 64];

    if (xc->shards == 1) {
        return xc->shard_slot[0];
    }

    n = len < sizeof(buf) ? len : sizeof(buf);
    first = iov[0].iov_len;

    if (niov == 1 || first >= n) {
        p = iov[0].iov_base;

    } else {
        memcpy(buf, iov[0].iov_base, first);
        memcpy(buf + first, iov[1].iov_base, n - first);
        p = buf;
    }

    last = p + n;

    /* "*<argc>\r\n" */
    for (d = p + 1; d < last && *d != '\n'; d++) {
        /* void */
    }

    key = d < last ? et_xc_key(d + 1, last, &klen) : NULL;

    if (key == NULL) {
        return xc->shard_slot[0];
    }

    /* "}", the tag, "{", the shard's number, ":" */
    d = key + klen - 1;

    if (klen < 5 || *d != '}') {
        return et_slot(key, klen);
    }

    while (d > key && *d != '{' && key + klen - d < 8) {
        d--;
    }

    if (*d != '{') {
        return et_slot(key, klen);
    }

    i = 0;
    m = 1;

    while (d - 1 > key && d[-1] >= '0' && d[-1] <= '9' && m <= 100) {
        i += (unsigned) (d[-1] - '0') * m;
        m *= 10;
        d--;
    }

    if (m > 1 && d[-1] == ':' && i < xc->shards) {
        return xc->shard_slot[i];
    }

    return et_slot(key, klen);
}


et_xcluster_t *
et_xcluster_create(et_exporter_t *ex)
{
    size_t              klen;
    unsigned            i;
    redisReader        *r;
    const uint8_t      *key;
    const et_str_t     *prefix;
    et_xcluster_t      *xc;

    /* the guard's table is set up here, before the thread runs */
    r = redisReaderCreate();

    if (r == NULL) {
        goto nomem;
    }

    et_cluster_guard(r, &klen);
    redisReaderFree(r);

    xc = calloc(1, sizeof(et_xcluster_t));

    if (xc == NULL) {
        goto nomem;
    }

    xc->map = malloc(sizeof(et_cluster_map_t));
    xc->spare = malloc(sizeof(et_cluster_map_t));
    xc->conns = calloc(ET_CLUSTER_MASTERS_MAX, sizeof(et_xconn_t));
    xc->win = malloc(ET_XC_WINDOW * sizeof(et_xentry_t));
    xc->stage = ex->conf.redis.tls ? malloc(ET_XC_STAGE) : NULL;

    if (xc->map == NULL || xc->spare == NULL || xc->conns == NULL
        || xc->win == NULL || (ex->conf.redis.tls && xc->stage == NULL))
    {
        et_xcluster_free(xc);
        goto nomem;
    }

    xc->refresh_backoff_ms = ET_BACKOFF_MIN_MS;
    xc->retry_ms = ET_BACKOFF_MIN_MS;
    xc->shards = ex->conf.stream->shards;

    /* each shard's slot, once: the slot of the key in its prefix */

    for (i = 0; i < xc->shards; i++) {
        prefix = &ex->conf.stream->prefix[i];
        key = et_xc_key(prefix->data, prefix->data + prefix->len, &klen);

        if (key == NULL) {
            et_exporter_log(ex, ET_LOG_ERR, "exporter: shard %u has no key",
                            i);
            et_xcluster_free(xc);
            return NULL;
        }

        xc->shard_slot[i] = (uint16_t) et_slot(key, klen);
    }

    snprintf(xc->mapper.addr, sizeof(xc->mapper.addr), "%s", "slot map");

    return xc;

nomem:

    et_exporter_log(ex, ET_LOG_ERR, "exporter: out of memory");

    return NULL;
}


static void
et_xc_close(et_xconn_t *c)
{
    if (c->conn.fd != -1) {
        et_conn_close(&c->conn);
        __atomic_sub_fetch(&c->stat->connected, 1, __ATOMIC_RELAXED);
    }
}


/* trouble with a node, counted for it too (docs/counters.md) */
static void
et_xc_error(et_exporter_t *ex, et_xconn_t *c)
{
    et_counter_add(&ex->counters->redis_errors, 1, 0);
    et_counter_add(&c->stat->errors, 1, 0);
}


void
et_xcluster_free(et_xcluster_t *xc)
{
    unsigned  i;

    if (xc == NULL) {
        return;
    }

    if (xc->conns) {
        for (i = 0; i < xc->nconns; i++) {
            et_xc_close(&xc->conns[i]);
            free(xc->conns[i].due);
        }
    }

    free(xc->conns);
    free(xc->map);
    free(xc->spare);
    free(xc->win);
    free(xc->stage);
    free(xc);
}


/* the gauges: masters connected, out of how many (docs/counters.md) */
static void
et_xc_gauges(et_exporter_t *ex)
{
    unsigned        i, up;
    et_xcluster_t  *xc;

    xc = ex->cluster;
    up = 0;

    for (i = 0; i < xc->nconns; i++) {
        if (xc->conns[i].in_map && xc->conns[i].conn.fd != -1) {
            up++;
        }
    }

    __atomic_store_n(&ex->counters->redis_connected, up, __ATOMIC_RELAXED);
    __atomic_store_n(&ex->counters->redis_nodes,
                     xc->have_map ? xc->map->nnodes : 0, __ATOMIC_RELAXED);
}


static void
et_xc_addr(char *buf, size_t size, const char *host, int port)
{
    if (strchr(host, ':')) {
        snprintf(buf, size, "[%s]:%d", host, port);

    } else {
        snprintf(buf, size, "%s:%d", host, port);
    }
}


/* the connection to host:port, made (not connected) if new; -1: no room */
static int
et_xc_conn(et_exporter_t *ex, const char *host, int port)
{
    unsigned        i;
    et_xconn_t     *c;
    et_xcluster_t  *xc;

    xc = ex->cluster;

    for (i = 0; i < xc->nconns; i++) {
        if (xc->conns[i].port == port && strcmp(xc->conns[i].host, host) == 0)
        {
            return (int) i;
        }
    }

    if (xc->nconns == ET_CLUSTER_MASTERS_MAX || strlen(host) >= sizeof(c->host))
    {
        return -1;
    }

    c = &xc->conns[xc->nconns];
    memset(c, 0, sizeof(et_xconn_t));

    strcpy(c->host, host);
    c->port = port;
    et_conn_init(&c->conn);
    c->backoff_ms = ET_BACKOFF_MIN_MS;
    et_xc_addr(c->addr, sizeof(c->addr), host, port);
    c->stat = et_metrics_node(ex->counters, c->addr);

    return (int) xc->nconns++;
}


/*
 * A blocking connection to a node, plain or TLS as the seeds' URL says
 * (the name checked is the node's, unless the configuration names one:
 * et_tls_connect()), authenticated: a cluster has no SELECT
 * (et_redis_seeds_parse).
 */
static int
et_xc_dial(et_exporter_t *ex, et_conn_t *conn, const char *host, int port,
    char *err, size_t size)
{
    return et_conn_open(conn, &ex->conf.redis, host, port,
                        ex->conf.redis.tls ? ex->conf.tls : NULL,
                        ex->conf.connect_timeout_ms, err, size);
}


static void
et_xc_backoff(unsigned *ms)
{
    *ms *= 2;

    if (*ms > ET_BACKOFF_MAX_MS) {
        *ms = ET_BACKOFF_MAX_MS;
    }
}


static int
et_xc_open(et_exporter_t *ex, et_xconn_t *c)
{
    int             size;
    uint64_t        now;
    char            err[ET_EXPORTER_DETAIL];

    if (et_xc_dial(ex, &c->conn, c->host, c->port, err, sizeof(err))
        != ET_OK)
    {
        goto failed;
    }

    size = ET_XC_SNDBUF;
    (void) setsockopt(c->conn.fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(int));

    __atomic_add_fetch(&c->stat->connected, 1, __ATOMIC_RELAXED);
    et_resp_init(&c->resp);
    c->due_head = 0;
    c->due_len = 0;
    c->sent = 0;
    c->sent_off = 0;
    c->progress_at = et_clock_mono_ms();

    if (c->connects++ > 0) {
        et_counter_add(&ex->counters->redis_reconnects, 1, 0);
        et_exporter_log(ex, ET_LOG_NOTICE,
                        "connected to redis cluster node %s again", c->addr);

    } else {
        et_exporter_log(ex, ET_LOG_INFO,
                        "connected to redis cluster node %s", c->addr);
    }

    et_xc_report(ex, c, c->progress_at, 1);

    return ET_OK;

failed:

    et_xc_error(ex, c);

    now = et_clock_mono_ms();
    c->connect_at = now + c->backoff_ms;
    et_xc_backoff(&c->backoff_ms);

    et_xc_trouble(ex, c, 0, "cannot connect: %s", err);

    /* a master gone: its replica may have taken over */
    ex->cluster->refresh = 1;

    return ET_ERROR;
}


/* asks one node for the slot map; ET_OK with "spare" filled */
static int
et_xc_ask_map(et_exporter_t *ex, const char *host, int port, char *err,
    size_t size)
{
    int                 rc;
    size_t              left;
    et_conn_t           conn;
    et_conn_call_t      call;

    if (et_xc_dial(ex, &conn, host, port, err, size) != ET_OK) {
        return ET_ERROR;
    }

    /* a seed may be anything: its replies' arrays are bounded */
    conn.left = &left;
    call.conn = &conn;
    call.deadline = et_clock_mono_ms() + ex->conf.connect_timeout_ms;

    rc = et_cluster_fetch(et_conn_call, &call, &left, host,
                          ex->cluster->spare, err, size);

    et_conn_close(&conn);

    return rc == ET_OK ? ET_OK : ET_ERROR;
}


/* points each master of the map at its connection */
static void
et_xc_adopt(et_exporter_t *ex)
{
    int                 k;
    unsigned            i;
    et_xcluster_t      *xc;
    et_cluster_map_t   *map;

    xc = ex->cluster;
    map = xc->map;

    for (i = 0; i < xc->nconns; i++) {
        xc->conns[i].in_map = 0;
    }

    for (i = 0; i < map->nnodes; i++) {
        k = et_xc_conn(ex, map->nodes[i].host, map->nodes[i].port);
        xc->node_conn[i] = k;

        if (k >= 0) {
            xc->conns[k].in_map = 1;
        }
    }

    et_xc_gauges(ex);
}


/*
 * Learns the map from the seeds, then from the nodes known: any node of a
 * cluster serves it, and after a failover the seeds may be the ones gone.
 */
static int
et_xc_refresh(et_exporter_t *ex)
{
    size_t              i, n;
    uint64_t            now;
    et_xcluster_t      *xc;
    et_cluster_map_t   *map;
    const char         *host;
    int                 port;
    et_node_counters_t *stat;
    char                why[ET_EXPORTER_DETAIL];
    char                err[ET_XC_ADDR + 2 + ET_EXPORTER_DETAIL];
    char                addr[ET_XC_ADDR];

    xc = ex->cluster;
    n = ex->conf.redis.nseeds + xc->nconns;
    err[0] = '\0';

    for (i = 0; i < n; i++) {
        if (i < ex->conf.redis.nseeds) {
            host = ex->conf.redis.seeds[i].host;
            port = ex->conf.redis.seeds[i].port;

        } else {
            host = xc->conns[i - ex->conf.redis.nseeds].host;
            port = xc->conns[i - ex->conf.redis.nseeds].port;
        }

        if (et_xc_ask_map(ex, host, port, why, sizeof(why)) != ET_OK) {
            /* the node's error, on the page by its address (counters.md) */
            et_xc_addr(addr, sizeof(addr), host, port);
            stat = et_metrics_node(ex->counters, addr);

            et_counter_add(&ex->counters->redis_errors, 1, 0);
            et_counter_add(&stat->errors, 1, 0);

            snprintf(err, sizeof(err), "%s: %s", addr, why);
            continue;
        }

        map = xc->map;
        xc->map = xc->spare;
        xc->spare = map;

        if (!xc->have_map) {
            et_exporter_log(ex, ET_LOG_INFO,
                            "redis cluster: %u master%s, %u of 16384 slots "
                            "served, as %s:%d says", xc->map->nnodes,
                            et_plural(xc->map->nnodes), xc->map->covered,
                            host, port);
        }

        xc->have_map = 1;
        xc->refresh = 0;
        now = et_clock_mono_ms();

        if (xc->map->covered < ET_CLUSTER_SLOTS) {
            /* asked again, less and less often, until the slots are served */
            xc->refresh_at = now + xc->refresh_backoff_ms;
            et_xc_backoff(&xc->refresh_backoff_ms);

            et_xc_trouble(ex, &xc->mapper, 0, "%u of 16384 slots served by "
                          "no master, as %s:%d says",
                          ET_CLUSTER_SLOTS - xc->map->covered, host, port);

        } else {
            xc->refresh_backoff_ms = ET_BACKOFF_MIN_MS;
            xc->refresh_at = now + ET_XC_REFRESH_MS;
        }

        et_xc_adopt(ex);

        return ET_OK;
    }

    now = et_clock_mono_ms();
    xc->refresh_at = now + xc->refresh_backoff_ms;
    et_xc_backoff(&xc->refresh_backoff_ms);

    et_xc_trouble(ex, &xc->mapper, 0, "no node gave the slot map: %s", err);

    return ET_ERROR;
}


/*
 * Takes the entries queued since the last time into the window, as many
 * as it has room for.
 */
static void
et_xc_take(et_exporter_t *ex)
{
    int              niov;
    size_t           len;
    uint64_t         seq, head;
    et_xentry_t     *e;
    et_xcluster_t   *xc;

    xc = ex->cluster;
    head = xc->head;

    if (head == xc->tail) {
        et_queue_first(&ex->queue, &xc->it);

    } else {
        et_queue_more(&ex->queue, &xc->it);
    }

    while (head - xc->tail < ET_XC_WINDOW) {
        e = &xc->win[head & (ET_XC_WINDOW - 1)];

        len = et_queue_next(&ex->queue, &xc->it, e->iov, &niov);

        if (len == 0) {
            break;
        }

        /*
         * the request path wrote the entry on another CPU: its first
         * bytes are asked for now, all of them before the first is read
         */
        __builtin_prefetch(e->iov[0].iov_base);

        e->len = (uint32_t) len;
        e->niov = (uint8_t) niov;
        e->state = ET_XE_PENDING;
        e->ask = -1;

        head++;
    }

    for (seq = xc->head; seq != head; seq++) {
        e = &xc->win[seq & (ET_XC_WINDOW - 1)];
        e->slot = (uint16_t) et_xc_entry_slot(xc, e->iov, e->niov, e->len);
    }

    xc->head = head;
}


/*
 * The answered entries at the window's tail leave the queue, counted
 * (docs/counters.md): an entry is queued until then.  With "all" (at
 * stop), every entry taken leaves, those not answered as dropped: it
 * returns how many.
 */
static uint64_t
et_xc_consume(et_exporter_t *ex, int all)
{
    size_t          bytes;
    uint64_t        ok, dropped, unanswered;
    et_xentry_t    *e;
    et_xcluster_t  *xc;

    xc = ex->cluster;
    bytes = 0;
    ok = 0;
    dropped = 0;
    unanswered = 0;

    while (xc->tail != xc->head) {
        e = &xc->win[xc->tail & (ET_XC_WINDOW - 1)];

        if (e->state == ET_XE_OK) {
            ok++;

        } else if (e->state == ET_XE_DROPPED) {
            dropped++;

        } else if (all) {
            unanswered++;

        } else {
            break;
        }

        bytes += e->len;
        xc->tail++;
    }

    if (bytes == 0) {
        return 0;
    }

    if (all) {
        xc->routed = xc->tail;
        xc->again = 0;
    }

    (void) et_queue_consume(&ex->queue, bytes);

    if (ok) {
        et_counter_add(&ex->counters->exported, ok, 0);

        /* the cluster takes spans again: the next refusal backs off anew */
        if (et_clock_mono_ms() >= xc->retry_at) {
            xc->retry_ms = ET_BACKOFF_MIN_MS;
        }
    }

    if (dropped + unanswered) {
        et_counter_add(&ex->counters->dropped_redis_error,
                       dropped + unanswered, 0);
    }

    return unanswered;
}


/* a reply due on "c", its command to be written; ET_ERROR: no memory */
static int
et_xc_due(et_xconn_t *c, uint32_t ref)
{
    size_t     n;
    uint32_t  *due;

    if (c->due_head + c->due_len == c->due_size) {

        if (c->due_head >= c->due_size / 2 && c->due_head > 0) {
            /* read from the head: the room it left, at most half moved */
            memmove(c->due, c->due + c->due_head,
                    c->due_len * sizeof(uint32_t));
            c->due_head = 0;

        } else {
            n = c->due_size ? c->due_size * 2 : 1024;
            due = realloc(c->due, n * sizeof(uint32_t));

            if (due == NULL) {
                return ET_ERROR;
            }

            c->due = due;
            c->due_size = n;
        }
    }

    c->due[c->due_head + c->due_len++] = ref;

    return ET_OK;
}


/* the reply due first on "c", taken off its list */
static uint32_t
et_xc_pop(et_xconn_t *c)
{
    uint32_t  ref;

    ref = c->due[c->due_head++];
    c->due_len--;
    c->sent--;

    if (c->due_len == 0) {
        c->due_head = 0;
    }

    return ref;
}


/*
 * An entry to the master that serves its slot (or to the node an ASK
 * named), its reply due there; ET_DECLINED: nowhere to go yet.
 */
static int
et_xc_assign(et_exporter_t *ex, et_xentry_t *e, uint32_t ref, uint64_t now)
{
    int              k;
    unsigned         node;
    et_xconn_t      *c;
    et_xcluster_t   *xc;

    xc = ex->cluster;

    if (e->ask >= 0) {
        k = e->ask;

    } else {
        if (!xc->have_map) {
            return ET_DECLINED;
        }

        node = xc->map->slots[e->slot];

        if (node == ET_CLUSTER_NO_NODE) {
            /* a slot no master serves: wait for a map that has one */
            xc->refresh = 1;
            return ET_DECLINED;
        }

        k = xc->node_conn[node];
    }

    if (k < 0) {
        return ET_DECLINED;
    }

    c = &xc->conns[k];

    if (c->conn.fd == -1) {
        return ET_DECLINED;
    }

    if (c->due_len == 0) {
        c->progress_at = now;
    }

    if (e->ask >= 0 && et_xc_due(c, ET_XC_ASKING) != ET_OK) {
        return ET_DECLINED;
    }

    if (et_xc_due(c, ref) != ET_OK) {
        return ET_DECLINED;
    }

    e->state = ET_XE_SENT;

    return ET_OK;
}


/*
 * The entries never routed, and those sent back (a redirection, a
 * refusal to retry, a connection lost), to their masters' lists.
 */
static void
et_xc_route(et_exporter_t *ex)
{
    size_t          again;
    uint64_t        seq, now;
    et_xentry_t    *e;
    et_xcluster_t  *xc;

    xc = ex->cluster;
    now = et_clock_mono_ms();

    if (xc->again) {
        again = 0;

        for (seq = xc->tail; seq != xc->routed; seq++) {
            e = &xc->win[seq & (ET_XC_WINDOW - 1)];

            if (e->state == ET_XE_PENDING
                && et_xc_assign(ex, e, (uint32_t) (seq & (ET_XC_WINDOW - 1)),
                                now)
                   != ET_OK)
            {
                again++;
            }
        }

        xc->again = again;
    }

    for ( /* void */ ; xc->routed != xc->head; xc->routed++) {
        seq = xc->routed;
        e = &xc->win[seq & (ET_XC_WINDOW - 1)];

        if (et_xc_assign(ex, e, (uint32_t) (seq & (ET_XC_WINDOW - 1)), now)
            != ET_OK)
        {
            xc->again++;
        }
    }
}


/* the connections wanted and not connected, when their backoff is over */
static void
et_xc_connect(et_exporter_t *ex)
{
    unsigned        i;
    uint64_t        now;
    et_xconn_t     *c;
    et_xcluster_t  *xc;

    xc = ex->cluster;
    now = et_clock_mono_ms();

    for (i = 0; i < xc->nconns; i++) {
        c = &xc->conns[i];

        if (c->conn.fd == -1 && (c->in_map || c->wanted)
            && now >= c->connect_at)
        {
            (void) et_xc_open(ex, c);
        }
    }

    et_xc_gauges(ex);
}


/*
 * The connection is unusable: the entries it carried and that were not
 * answered are sent again (at least once), wherever the map says once it
 * is learnt again.
 */
static void
et_xc_broken(et_exporter_t *ex, et_xconn_t *c, const char *fmt, ...)
{
    size_t          i;
    uint32_t        ref;
    uint64_t        again, now;
    va_list         args;
    et_xentry_t    *e;
    et_xcluster_t  *xc;
    char            detail[ET_EXPORTER_DETAIL];

    xc = ex->cluster;

    va_start(args, fmt);
    vsnprintf(detail, sizeof(detail), fmt, args);
    va_end(args);

    again = 0;

    for (i = 0; i < c->due_len; i++) {
        ref = c->due[c->due_head + i];

        if (ref == ET_XC_ASKING) {
            continue;
        }

        e = &xc->win[ref];

        if (e->state == ET_XE_SENT) {
            e->state = ET_XE_PENDING;
            again++;
        }
    }

    xc->again += again;

    c->due_head = 0;
    c->due_len = 0;
    c->sent = 0;
    c->sent_off = 0;

    et_xc_close(c);

    et_xc_error(ex, c);

    now = et_clock_mono_ms();

    if (now - c->progress_at >= c->backoff_ms) {
        c->backoff_ms = ET_BACKOFF_MIN_MS;
    }

    c->connect_at = now + c->backoff_ms;
    et_xc_backoff(&c->backoff_ms);

    xc->refresh = 1;

    et_xc_trouble(ex, c, 0, "connection lost: %s (%llu span%s to send "
                  "again)", detail, (unsigned long long) again,
                  et_plural(again));

    et_xc_gauges(ex);
}


/* the error is "word", alone or followed by a space */
static int
et_xc_is(const char *err, size_t len, const char *word)
{
    size_t  n;

    n = strlen(word);

    return len >= n && memcmp(err, word, n) == 0
           && (len == n || err[n] == ' ');
}


/* "n" replies that are not errors, to the entries due first on "c" */
static void
et_xc_answered(et_exporter_t *ex, et_xconn_t *c, uint64_t n)
{
    uint32_t        ref;
    et_xentry_t    *e;
    et_xcluster_t  *xc;

    xc = ex->cluster;

    while (n--) {
        ref = et_xc_pop(c);

        /* ASKING's +OK */
        if (ref == ET_XC_ASKING) {
            continue;
        }

        e = &xc->win[ref];

        if (e->state == ET_XE_SENT) {
            e->state = ET_XE_OK;
            e->ask = -1;
        }
    }
}


/* an error reply, "err", to the entry due first on "c" */
static void
et_xc_refused(et_exporter_t *ex, et_xconn_t *c, const char *err, size_t len)
{
    int               k, port;
    uint32_t          ref;
    unsigned          slot, i;
    uint64_t          now;
    et_xentry_t      *e;
    et_xcluster_t    *xc;
    et_cluster_map_t *map;
    char              host[ET_CLUSTER_HOST_MAX + 1];

    xc = ex->cluster;

    ref = et_xc_pop(c);

    if (ref == ET_XC_ASKING) {
        /* ASKING's error shows again in the entry's reply */
        return;
    }

    e = &xc->win[ref];

    if (e->state != ET_XE_SENT) {
        return;
    }

    e->ask = -1;
    now = et_clock_mono_ms();

    if (et_xc_is(err, len, "MOVED") || et_xc_is(err, len, "ASK")) {

        if (et_cluster_redirect(err, len, &slot, host, sizeof(host), &port)
            != ET_OK)
        {
            goto refused;
        }

        if (host[0] == '\0') {
            strcpy(host, c->host);
        }

        k = et_xc_conn(ex, host, port);

        if (k < 0) {
            goto refused;
        }

        e->state = ET_XE_PENDING;
        xc->again++;

        /* counted: a routing fault shows as redirections that go on */
        et_counter_add(&ex->counters->redis_redirects[err[0] == 'A'], 1, 0);

        if (err[0] == 'A') {
            /* resharding: this entry alone, once, to the node named */
            e->ask = k;
            xc->conns[k].wanted = 1;
            return;
        }

        /* the slot is the node's now; the whole map is learnt again */
        map = xc->map;

        for (i = 0; i < map->nnodes; i++) {
            if (xc->node_conn[i] == k) {
                break;
            }
        }

        if (i == map->nnodes && map->nnodes < ET_CLUSTER_MASTERS_MAX) {
            snprintf(map->nodes[i].host, sizeof(map->nodes[i].host), "%s",
                     host);
            map->nodes[i].port = port;
            map->nnodes++;
            xc->node_conn[i] = k;
            xc->conns[k].in_map = 1;
        }

        if (i < map->nnodes && slot == e->slot) {
            if (map->slots[slot] == ET_CLUSTER_NO_NODE) {
                map->covered++;
            }

            map->slots[slot] = (uint8_t) i;
        }

        xc->refresh = 1;

        return;
    }

    if (et_xc_is(err, len, "TRYAGAIN") || et_xc_is(err, len, "CLUSTERDOWN")
        || et_xc_is(err, len, "LOADING") || et_xc_is(err, len, "MASTERDOWN"))
    {
        e->state = ET_XE_PENDING;
        xc->again++;

        if (xc->retry_at <= now) {
            xc->retry_at = now + xc->retry_ms;
            et_xc_backoff(&xc->retry_ms);
            et_xc_trouble(ex, c, 0, "\"%.*s\": sent again later",
                          (int) (len < 100 ? len : 100), err);
        }

        if (err[0] != 'T') {
            xc->refresh = 1;
        }

        return;
    }

refused:

    e->state = ET_XE_DROPPED;

    et_xc_error(ex, c);
    et_xc_trouble(ex, c, 1, "refused a span: \"%.*s\"",
                  (int) (len < 100 ? len : 100), err);
}


/*
 * Reads and handles every reply available now, counting the entry ids
 * without building them (et_resp_scan_error(): only an error's text is
 * kept, and an array, which never answers XADD, is a protocol error, so a
 * node cannot make the thread allocate).  ET_ERROR: closed.
 */
static int
et_xc_read(et_exporter_t *ex, et_xconn_t *c)
{
    int             rc;
    size_t          used;
    ssize_t         n;
    uint64_t        ok, errors;
    const uint8_t  *p, *end;
    char            err[ET_EXPORTER_DETAIL];

    for ( ;; ) {
        n = et_conn_recv(&c->conn, ex->rbuf, ET_EXPORTER_RBUF, err,
                         sizeof(err));

        if (n == ET_AGAIN) {
            return ET_OK;
        }

        if (n == ET_ERROR) {
            et_xc_broken(ex, c, "%s", err);
            return ET_ERROR;
        }

        if (n == 0) {
            et_xc_broken(ex, c, "connection closed by the node");
            return ET_ERROR;
        }

        c->progress_at = et_clock_mono_ms();

        p = ex->rbuf;
        end = p + n;

        while (p < end) {
            ok = 0;
            errors = 0;

            rc = et_resp_scan_error(&c->resp, p, (size_t) (end - p), &used,
                                    &ok, &errors);

            if (ok + errors > c->sent) {
                et_xc_broken(ex, c, "protocol error: a reply to nothing");
                return ET_ERROR;
            }

            /* the replies before a breakage count */
            et_xc_answered(ex, c, ok);

            if (rc != ET_OK) {
                et_xc_broken(ex, c, "protocol error: not a reply to XADD");
                return ET_ERROR;
            }

            if (errors) {
                et_xc_refused(ex, c, c->resp.error, c->resp.error_len);
            }

            p += used;
        }

        if ((size_t) n < ET_EXPORTER_RBUF) {
            /* most likely drained: spare the read that says so */
            return ET_OK;
        }
    }
}


/* the bytes of the command "ref" refers to, as at most two iovecs */
static size_t
et_xc_iov(et_xcluster_t *xc, uint32_t ref, struct iovec *iov, int *niov)
{
    et_xentry_t  *e;

    if (ref == ET_XC_ASKING) {
        iov[0].iov_base = (void *) ET_XC_ASKING_CMD;
        iov[0].iov_len = sizeof(ET_XC_ASKING_CMD) - 1;
        *niov = 1;

        return iov[0].iov_len;
    }

    e = &xc->win[ref];

    iov[0] = e->iov[0];
    iov[1] = e->iov[1];
    *niov = e->niov;

    return e->len;
}


/*
 * Writes the commands of "c" not written yet, straight from the queue's
 * ring (nothing is copied), as many as the socket takes now.
 */
static int
et_xc_send(et_exporter_t *ex, et_xconn_t *c)
{
    int             niov, n, first, j;
    size_t          i, skip, len, k;
    ssize_t         w;
    et_xcluster_t  *xc;
    struct iovec    iov[ET_XC_IOV];
    char            err[ET_EXPORTER_DETAIL];

    xc = ex->cluster;

    while (c->sent < c->due_len) {
        n = 0;

        for (i = c->sent; i < c->due_len && n <= ET_XC_IOV - 2; i++) {
            (void) et_xc_iov(xc, c->due[c->due_head + i], &iov[n], &niov);
            n += niov;
        }

        /* the part of the first command written already */
        first = 0;
        skip = c->sent_off;

        while (skip >= iov[first].iov_len) {
            skip -= iov[first].iov_len;
            first++;
        }

        iov[first].iov_base = (uint8_t *) iov[first].iov_base + skip;
        iov[first].iov_len -= skip;

        if (c->conn.tls) {
            /*
             * TLS: the commands copied into one buffer, to go as full
             * records rather than a record and a write() each.  Copied
             * again alike after ET_AGAIN, it begins with the same bytes
             * and is no shorter, as et_tls_write() needs: commands are
             * only added after the ones not written.
             */
            len = 0;

            for (j = first; j < n && len < ET_XC_STAGE; j++) {
                k = ET_XC_STAGE - len;
                k = iov[j].iov_len < k ? iov[j].iov_len : k;

                memcpy(xc->stage + len, iov[j].iov_base, k);
                len += k;
            }

            iov[0].iov_base = xc->stage;
            iov[0].iov_len = len;
            first = 0;
            n = 1;
        }

        /* from the first byte not written */
        w = et_conn_send(&c->conn, iov + first, n - first, err,
                         sizeof(err));

        if (w == ET_AGAIN) {
            return ET_OK;
        }

        if (w == ET_ERROR) {
            et_xc_broken(ex, c, "%s", err);
            return ET_ERROR;
        }

        c->progress_at = et_clock_mono_ms();

        /* the commands written whole, and how much of the next */
        while (w > 0) {
            len = et_xc_iov(xc, c->due[c->due_head + c->sent], iov, &niov)
                  - c->sent_off;

            if ((size_t) w < len) {
                c->sent_off += (size_t) w;
                break;
            }

            w -= (ssize_t) len;
            c->sent_off = 0;
            c->sent++;
        }
    }

    return ET_OK;
}


/*
 * One pass over the cluster, without waiting: the map and the connections
 * when due, the replies that came, the answered entries out of the queue,
 * the entries queued since the last pass in, and everything written that
 * the sockets take.
 */
static void
et_xc_step(et_exporter_t *ex)
{
    unsigned        i;
    uint64_t        now;
    et_xconn_t     *c;
    et_xcluster_t  *xc;

    xc = ex->cluster;
    now = et_clock_mono_ms();

    if ((xc->refresh || !xc->have_map) && now >= xc->refresh_at) {
        (void) et_xc_refresh(ex);
    }

    et_xc_connect(ex);

    for (i = 0; i < xc->nconns; i++) {
        c = &xc->conns[i];

        if (c->conn.fd != -1 && c->sent) {
            (void) et_xc_read(ex, c);
        }
    }

    et_xc_consume(ex, 0);
    et_xc_take(ex);

    now = et_clock_mono_ms();

    if (now >= xc->retry_at) {
        et_xc_route(ex);
    }

    for (i = 0; i < xc->nconns; i++) {
        c = &xc->conns[i];

        if (c->conn.fd != -1 && c->sent < c->due_len) {
            (void) et_xc_send(ex, c);
        }
    }

    /* after the sends: progress_at is never later than now */
    now = et_clock_mono_ms();

    for (i = 0; i < xc->nconns; i++) {
        c = &xc->conns[i];

        if (c->conn.fd != -1 && c->due_len
            && now - c->progress_at >= ex->conf.io_timeout_ms)
        {
            et_xc_broken(ex, c, "no reply for %u ms", ex->conf.io_timeout_ms);
        }
    }
}


/*
 * The earliest moment something blocked may move again (a backoff, the
 * map, a connection), 0 if nothing is; "busy" is set when replies are
 * due or entries wait for room in the window.
 */
static uint64_t
et_xc_next(et_exporter_t *ex, uint64_t now, int *busy)
{
    unsigned        i;
    uint64_t        at;
    et_xconn_t     *c;
    et_xcluster_t  *xc;

    xc = ex->cluster;
    at = 0;
    *busy = xc->it.left > 0;

    if (xc->again && xc->retry_at > now) {
        at = xc->retry_at;
    }

    if ((xc->refresh || !xc->have_map) && (at == 0 || xc->refresh_at < at)) {
        at = xc->refresh_at;
    }

    for (i = 0; i < xc->nconns; i++) {
        c = &xc->conns[i];

        if (c->conn.fd != -1) {
            *busy |= c->due_len > 0;

        } else if ((c->in_map || c->wanted)
                   && (at == 0 || c->connect_at < at))
        {
            at = c->connect_at;
        }
    }

    return at;
}


/* the accounting and the lines held back by the rate limits */
static void
et_xc_reports(et_exporter_t *ex, int force)
{
    unsigned        i;
    uint64_t        now;
    et_xcluster_t  *xc;

    xc = ex->cluster;

    et_exporter_queue_full(ex);
    et_exporter_account(ex);
    et_exporter_reports(ex, force);

    now = et_clock_mono_ms();

    et_xc_report(ex, &xc->mapper, now, force);

    for (i = 0; i < xc->nconns; i++) {
        et_xc_report(ex, &xc->conns[i], now, force);
    }
}


/*
 * A cycle of the thread: one pass, then the moment of the next one for
 * et_exporter_wait() (connect_at), which a kick or the flush interval may
 * come before.
 */
void
et_xcluster_cycle(et_exporter_t *ex)
{
    int       busy;
    uint64_t  at, now, slice;

    et_xc_step(ex);
    et_xc_reports(ex, 0);

    now = et_clock_mono_ms();
    at = et_xc_next(ex, now, &busy);

    slice = et_queue_ready(&ex->queue) > ex->conf.queue_size / 4
            ? ET_XC_SLICE_MIN_MS : ET_XC_SLICE_MS;

    if (busy && (at == 0 || at > now + slice)) {
        at = now + slice;
    }

    /* a moment passed already: as soon as the wait allows */
    if (at && at <= now) {
        at = now + 1;
    }

    ex->connect_at = at;
}


/*
 * At stop: sends what is queued within stop_timeout_ms, waiting for the
 * replies in poll(); what is left, answered for or not, is dropped
 * (redis_error) and the line says so.
 */
void
et_xcluster_finish(et_exporter_t *ex)
{
    int             busy, timeout;
    unsigned        i, n;
    uint64_t        now, deadline, lost, unanswered, at;
    et_xconn_t     *c;
    et_xcluster_t  *xc;
    struct pollfd   pfd[ET_CLUSTER_MASTERS_MAX];

    xc = ex->cluster;
    deadline = et_clock_mono_ms() + ex->conf.stop_timeout_ms;

    for ( ;; ) {
        et_xc_step(ex);

        now = et_clock_mono_ms();

        if (et_exporter_pending(ex) == 0 || now >= deadline) {
            break;
        }

        at = et_xc_next(ex, now, &busy);

        if (at == 0 || at > deadline) {
            at = deadline;
        }

        timeout = at > now ? (int) (at - now) : 0;

        if (timeout > ET_EXPORTER_POLL_MS) {
            timeout = ET_EXPORTER_POLL_MS;
        }

        n = 0;

        for (i = 0; i < xc->nconns; i++) {
            c = &xc->conns[i];

            if (c->conn.fd != -1 && c->due_len) {
                pfd[n].fd = c->conn.fd;
                pfd[n].events = POLLIN
                                | (c->sent < c->due_len ? POLLOUT : 0);
                pfd[n].revents = 0;
                n++;
            }
        }

        (void) poll(n ? pfd : NULL, n, timeout);
    }

    /* the answers count; what was taken and not answered is lost */
    unanswered = et_xc_consume(ex, 1);
    et_xc_reports(ex, 1);

    lost = et_exporter_pending(ex);

    if (lost) {
        et_counter_add(&ex->counters->dropped_redis_error, lost, 0);
    }

    lost += unanswered;

    if (lost) {
        et_exporter_log(ex, ET_LOG_ERR,
                        "exporter stopping: %llu span%s dropped at exit: "
                        "the redis cluster did not take them within the "
                        "flush timeout", (unsigned long long) lost,
                        et_plural(lost));
    }

    for (i = 0; i < xc->nconns; i++) {
        et_xc_close(&xc->conns[i]);
    }

    et_xc_gauges(ex);
}


/* records a node's trouble; logs it unless a line was written recently */
static void
et_xc_trouble(et_exporter_t *ex, et_xconn_t *c, uint64_t lost,
    const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    vsnprintf(c->detail, sizeof(c->detail), fmt, args);
    va_end(args);

    c->events++;
    c->lost += lost;

    et_xc_report(ex, c, et_clock_mono_ms(), 0);
}


static void
et_xc_report(et_exporter_t *ex, et_xconn_t *c, uint64_t now, int force)
{
    if (c->events == 0) {
        return;
    }

    if (!force && c->logged && now - c->log_ms < ET_EXPORTER_LOG_MS) {
        return;
    }

    /* the slot map's trouble is nobody's: it has no host */
    et_exporter_log(ex, ET_LOG_ERR,
                    "redis cluster%s %s: %s (%llu time%s, %llu span%s "
                    "lost since the last report)",
                    c->host[0] ? " node" : ",", c->addr, c->detail,
                    (unsigned long long) c->events, et_plural(c->events),
                    (unsigned long long) c->lost, et_plural(c->lost));

    c->events = 0;
    c->lost = 0;
    c->log_ms = now;
    c->logged = 1;
}
