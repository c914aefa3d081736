/*
 * The exporter on a Redis Cluster (docs/nginx.md "edgetrace_redis", with
 * "cluster"): the same queue, the same thread, another way out.
 *
 * The thread learns the slot map from any seed (CLUSTER SLOTS, or CLUSTER
 * SHARDS where SLOTS is gone), keeps one connection per master, and knows
 * each shard's slot from the start (the slot of the shard's key,
 * docs/stream.md "Sharded streams").  A batch is the entries queued when
 * it starts; each entry goes to the master that serves its shard's slot,
 * all of a master's entries in one write.  The entries stay in the queue
 * until every master has answered for its part: only then is the batch
 * consumed and counted, so that an entry can be sent again whatever
 * happens to the connection that carried it.
 *
 * Replies are matched to entries in order, per connection, with hiredis's
 * reader (a cluster's replies must be read, not only counted): MOVED
 * points the slot at the master named and sends the entry there (and the
 * map is learnt again); ASK sends ASKING and the entry to the node named,
 * once; TRYAGAIN, CLUSTERDOWN, LOADING and MASTERDOWN back off and send
 * again; any other error drops the entry (redis_error), as with a single
 * Redis.  A connection that breaks, or that has not answered for the I/O
 * timeout, is closed, the map is learnt again from any node that answers
 * (a failover shows there), and its unanswered entries are sent again:
 * delivery is at least once, so an entry whose reply was lost may be
 * stored twice.
 *
 * Counting (docs/counters.md): an entry stays queued until its batch is
 * consumed, then it is exported or dropped, so the identity holds exactly
 * at rest.  An entry a master acknowledged is exported, even if that
 * master then fails before its replica has it: Redis Cluster replicates
 * asynchronously, and the acknowledgment is all a client is told.
 *
 * hiredis 0.14 allocates an array's elements as soon as it reads the
 * header: the readers of cluster connections refuse, per reply, more
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
#include "et_slot.h"
#include "et_exporter_int.h"


/* entries in one batch at most */
#define ET_XC_BATCH          16384

/* bytes a reply may pile up in a reader before it is complete */
#define ET_XC_READER_MAX     (64 * 1024 * 1024)

/* the place of an ASKING command in a connection's list of replies due */
#define ET_XC_ASKING         ((uint32_t) -1)

#define ET_XC_ASKING_CMD     "*1\r\n$6\r\nASKING\r\n"

/* the map is learnt again at most this often */
#define ET_XC_REFRESH_MS     100

#define ET_XC_ADDR           (ET_CLUSTER_HOST_MAX + 16)


enum {
    ET_XE_PENDING = 0,
    ET_XE_SENT,
    ET_XE_DONE
};


typedef struct {
    struct iovec     iov[2];
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
    int              fd;           /* -1: not connected */
    int              in_map;       /* a master of the current map */
    int              wanted;       /* an ASK named it */
    redisReader     *reader;
    size_t           elements;     /* left to the reply being read */

    uint8_t         *out;          /* this round's commands for the node */
    size_t           out_size;
    size_t           out_len;
    size_t           out_sent;

    uint32_t        *due;          /* entries whose replies are due */
    size_t           due_size;
    size_t           due_head;
    size_t           due_len;

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

    et_xentry_t         *batch;
    size_t               nbatch;
    size_t               unresolved;   /* pending or sent */
    size_t               batch_bytes;
    uint64_t             ok;
    uint64_t             dropped;
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
 * key ("<key>:<i>{<j>}", docs/stream.md); the slot of the key itself for
 * anything else.
 */
static unsigned
et_xc_entry_slot(et_xcluster_t *xc, const struct iovec *iov, int niov,
    size_t len)
{
    size_t          n, klen, first;
    unsigned        i;
    const uint8_t  *p, *last, *key, *brace, *d;
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
    p = memchr(p, '\n', n);

    if (p == NULL) {
        return xc->shard_slot[0];
    }

    key = et_xc_key(p + 1, last, &klen);

    if (key == NULL) {
        return xc->shard_slot[0];
    }

    brace = memchr(key, '{', klen);

    if (brace) {
        d = brace;
        i = 0;
        n = 1;

        while (d > key && d[-1] >= '0' && d[-1] <= '9' && n <= 100) {
            i += (unsigned) (d[-1] - '0') * (unsigned) n;
            n *= 10;
            d--;
        }

        if (d < brace && d > key && d[-1] == ':' && i < xc->shards) {
            return xc->shard_slot[i];
        }
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
    xc->batch = malloc(ET_XC_BATCH * sizeof(et_xentry_t));

    if (xc->map == NULL || xc->spare == NULL || xc->conns == NULL
        || xc->batch == NULL)
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
    if (c->fd != -1) {
        close(c->fd);
        c->fd = -1;
    }

    if (c->reader) {
        redisReaderFree(c->reader);
        c->reader = NULL;
    }
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
            free(xc->conns[i].out);
            free(xc->conns[i].due);
        }
    }

    free(xc->conns);
    free(xc->map);
    free(xc->spare);
    free(xc->batch);
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
        if (xc->conns[i].in_map && xc->conns[i].fd != -1) {
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
et_xc_conn(et_xcluster_t *xc, const char *host, int port)
{
    unsigned     i;
    et_xconn_t  *c;

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
    c->fd = -1;
    c->backoff_ms = ET_BACKOFF_MIN_MS;
    et_xc_addr(c->addr, sizeof(c->addr), host, port);

    return (int) xc->nconns++;
}


/* a blocking connection, authenticated, its reader guarded */
static redisContext *
et_xc_dial(et_exporter_t *ex, const char *host, int port, size_t *left,
    char *err, size_t size)
{
    redisContext    *c;
    struct timeval   tv;

    tv = et_exporter_tv(ex->conf.connect_timeout_ms);

    c = redisConnectWithTimeout(host, port, tv);

    if (c == NULL) {
        snprintf(err, size, "out of memory");
        return NULL;
    }

    if (c->err) {
        snprintf(err, size, "%s", c->errstr);
        redisFree(c);
        return NULL;
    }

    et_cluster_guard(c->reader, left);

    if (redisSetTimeout(c, tv) != REDIS_OK) {
        snprintf(err, size, "cannot set a timeout: %s", c->errstr);
        redisFree(c);
        return NULL;
    }

    /* AUTH only: a cluster has no SELECT (et_redis_seeds_parse) */
    if (et_redis_handshake(c, &ex->conf.redis, err, size) != ET_OK) {
        redisFree(c);
        return NULL;
    }

    return c;
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
    int             fd;
    size_t          left;
    uint64_t        now;
    redisContext   *rc;
    char            err[ET_EXPORTER_DETAIL];

    rc = et_xc_dial(ex, c->host, c->port, &left, err, sizeof(err));

    if (rc == NULL) {
        goto failed;
    }

    fd = et_exporter_keep_fd(rc, err, sizeof(err));

    if (fd == -1) {
        goto failed;
    }

    c->reader = redisReaderCreate();

    if (c->reader == NULL) {
        snprintf(err, sizeof(err), "out of memory");
        close(fd);
        goto failed;
    }

    et_cluster_guard(c->reader, &c->elements);

    c->fd = fd;
    c->out_len = 0;
    c->out_sent = 0;
    c->due_head = 0;
    c->due_len = 0;
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

    et_counter_add(&ex->counters->redis_errors, 1, 0);

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
    redisContext       *c;
    et_cluster_map_t   *map;

    map = ex->cluster->spare;

    c = et_xc_dial(ex, host, port, &left, err, size);

    if (c == NULL) {
        return ET_ERROR;
    }

    rc = et_cluster_fetch(c, &left, host, map, err, size);

    redisFree(c);

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
        k = et_xc_conn(xc, map->nodes[i].host, map->nodes[i].port);
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
    char                err[ET_EXPORTER_DETAIL];

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

        if (et_xc_ask_map(ex, host, port, err, sizeof(err)) != ET_OK) {
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

    et_counter_add(&ex->counters->redis_errors, 1, 0);

    now = et_clock_mono_ms();
    xc->refresh_at = now + xc->refresh_backoff_ms;
    et_xc_backoff(&xc->refresh_backoff_ms);

    et_xc_trouble(ex, &xc->mapper, 0, "no node gave the slot map: %s", err);

    return ET_ERROR;
}


/* takes the entries queued now as the batch */
static size_t
et_xc_take(et_exporter_t *ex)
{
    int               niov;
    size_t            len;
    et_xentry_t      *e;
    et_xcluster_t    *xc;
    et_queue_iter_t   it;

    xc = ex->cluster;

    et_queue_first(&ex->queue, &it);

    xc->nbatch = 0;
    xc->batch_bytes = 0;
    xc->ok = 0;
    xc->dropped = 0;

    while (xc->nbatch < ET_XC_BATCH) {
        e = &xc->batch[xc->nbatch];

        len = et_queue_next(&ex->queue, &it, e->iov, &niov);

        if (len == 0) {
            break;
        }

        e->len = (uint32_t) len;
        e->niov = (uint8_t) niov;
        e->state = ET_XE_PENDING;
        e->ask = -1;
        e->slot = (uint16_t) et_xc_entry_slot(xc, e->iov, niov, len);

        xc->batch_bytes += len;
        xc->nbatch++;
    }

    xc->unresolved = xc->nbatch;

    return xc->nbatch;
}


/* every entry answered for: the batch leaves the queue, counted */
static void
et_xc_done(et_exporter_t *ex)
{
    et_xcluster_t  *xc;

    xc = ex->cluster;

    (void) et_queue_consume(&ex->queue, xc->batch_bytes);

    if (xc->ok) {
        et_counter_add(&ex->counters->exported, xc->ok, 0);
    }

    if (xc->dropped) {
        et_counter_add(&ex->counters->dropped_redis_error, xc->dropped, 0);
    }

    xc->nbatch = 0;
    xc->batch_bytes = 0;
    xc->unresolved = 0;
    xc->ok = 0;
    xc->dropped = 0;
    xc->retry_ms = ET_BACKOFF_MIN_MS;
}


static int
et_xc_grow(void **p, size_t *size, size_t need, size_t unit)
{
    size_t   n;
    void    *q;

    if (need <= *size) {
        return ET_OK;
    }

    n = *size ? *size : 4096 / unit;

    while (n < need) {
        n *= 2;
    }

    q = realloc(*p, n * unit);

    if (q == NULL) {
        return ET_ERROR;
    }

    *p = q;
    *size = n;

    return ET_OK;
}


/* queues an entry's bytes for the node, and the reply they are due */
static int
et_xc_put(et_xconn_t *c, const struct iovec *iov, int niov, uint32_t due)
{
    int     i;
    size_t  len;

    len = iov[0].iov_len + (niov == 2 ? iov[1].iov_len : 0);

    /* the replies due are a list read from its head: room at the front */
    if (c->due_head > 0 && c->due_head + c->due_len == c->due_size) {
        memmove(c->due, c->due + c->due_head, c->due_len * sizeof(uint32_t));
        c->due_head = 0;
    }

    if (et_xc_grow((void **) &c->out, &c->out_size, c->out_len + len, 1)
        != ET_OK
        || et_xc_grow((void **) &c->due, &c->due_size,
                      c->due_head + c->due_len + 1, sizeof(uint32_t))
           != ET_OK)
    {
        return ET_ERROR;
    }

    for (i = 0; i < niov; i++) {
        memcpy(c->out + c->out_len, iov[i].iov_base, iov[i].iov_len);
        c->out_len += iov[i].iov_len;
    }

    c->due[c->due_head + c->due_len++] = due;

    return ET_OK;
}


/* the pending entries of the batch to their masters' buffers */
static void
et_xc_route(et_exporter_t *ex)
{
    int              k;
    size_t           i;
    unsigned         node;
    uint64_t         now;
    et_xconn_t      *c;
    et_xentry_t     *e;
    struct iovec     asking;
    et_xcluster_t   *xc;

    xc = ex->cluster;
    now = et_clock_mono_ms();

    asking.iov_base = (void *) ET_XC_ASKING_CMD;
    asking.iov_len = sizeof(ET_XC_ASKING_CMD) - 1;

    for (i = 0; i < xc->nbatch; i++) {
        e = &xc->batch[i];

        if (e->state != ET_XE_PENDING) {
            continue;
        }

        if (e->ask >= 0) {
            k = e->ask;

        } else {
            if (!xc->have_map) {
                return;
            }

            node = xc->map->slots[e->slot];

            if (node == ET_CLUSTER_NO_NODE) {
                /* a slot no master serves: wait for a map that has one */
                xc->refresh = 1;
                continue;
            }

            k = xc->node_conn[node];
        }

        if (k < 0) {
            continue;
        }

        c = &xc->conns[k];

        if (c->fd == -1) {
            continue;
        }

        if (c->due_len == 0) {
            c->progress_at = now;
        }

        if (e->ask >= 0 && et_xc_put(c, &asking, 1, ET_XC_ASKING) != ET_OK) {
            return;
        }

        if (et_xc_put(c, e->iov, e->niov, (uint32_t) i) != ET_OK) {
            return;
        }

        e->state = ET_XE_SENT;
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

        if (c->fd == -1 && (c->in_map || c->wanted) && now >= c->connect_at)
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
    uint32_t        n;
    uint64_t        again, now;
    va_list         args;
    et_xcluster_t  *xc;
    char            detail[ET_EXPORTER_DETAIL];

    xc = ex->cluster;

    va_start(args, fmt);
    vsnprintf(detail, sizeof(detail), fmt, args);
    va_end(args);

    again = 0;

    for (i = 0; i < c->due_len; i++) {
        n = c->due[c->due_head + i];

        if (n != ET_XC_ASKING && n < xc->nbatch
            && xc->batch[n].state == ET_XE_SENT)
        {
            xc->batch[n].state = ET_XE_PENDING;
            again++;
        }
    }

    c->due_head = 0;
    c->due_len = 0;
    c->out_len = 0;
    c->out_sent = 0;

    et_xc_close(c);

    et_counter_add(&ex->counters->redis_errors, 1, 0);

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


static int
et_xc_is(const redisReply *r, const char *word)
{
    size_t  n;

    n = strlen(word);

    return r->len >= n && memcmp(r->str, word, n) == 0
           && (r->len == n || r->str[n] == ' ');
}


/* one reply, to the entry due first on "c" */
static int
et_xc_reply(et_exporter_t *ex, et_xconn_t *c, redisReply *r)
{
    int              k, port;
    uint32_t         n;
    unsigned         slot, i;
    uint64_t         now;
    et_xentry_t     *e;
    et_xcluster_t   *xc;
    et_cluster_map_t *map;
    char             host[ET_CLUSTER_HOST_MAX + 1];

    xc = ex->cluster;

    if (c->due_len == 0) {
        et_xc_broken(ex, c, "protocol error: a reply to nothing");
        return ET_ERROR;
    }

    n = c->due[c->due_head];
    c->due_head++;
    c->due_len--;

    if (c->due_len == 0) {
        c->due_head = 0;
    }

    if (n == ET_XC_ASKING || n >= xc->nbatch) {
        /* ASKING's +OK; its error shows again in the entry's reply */
        return ET_OK;
    }

    e = &xc->batch[n];

    if (e->state != ET_XE_SENT) {
        return ET_OK;
    }

    e->ask = -1;

    if (r->type != REDIS_REPLY_ERROR) {
        e->state = ET_XE_DONE;
        xc->ok++;
        xc->unresolved--;
        return ET_OK;
    }

    now = et_clock_mono_ms();

    if (et_xc_is(r, "MOVED") || et_xc_is(r, "ASK")) {

        if (et_cluster_redirect(r->str, r->len, &slot, host, sizeof(host),
                                &port)
            != ET_OK)
        {
            goto refused;
        }

        if (host[0] == '\0') {
            strcpy(host, c->host);
        }

        k = et_xc_conn(xc, host, port);

        if (k < 0) {
            goto refused;
        }

        e->state = ET_XE_PENDING;

        if (r->str[0] == 'A') {
            /* resharding: this entry alone, once, to the node named */
            e->ask = k;
            xc->conns[k].wanted = 1;
            return ET_OK;
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

        return ET_OK;
    }

    if (et_xc_is(r, "TRYAGAIN") || et_xc_is(r, "CLUSTERDOWN")
        || et_xc_is(r, "LOADING") || et_xc_is(r, "MASTERDOWN"))
    {
        e->state = ET_XE_PENDING;

        if (xc->retry_at <= now) {
            xc->retry_at = now + xc->retry_ms;
            et_xc_backoff(&xc->retry_ms);
            et_xc_trouble(ex, c, 0, "\"%.*s\": sent again later",
                          (int) (r->len < 100 ? r->len : 100), r->str);
        }

        if (r->str[0] != 'T') {
            xc->refresh = 1;
        }

        return ET_OK;
    }

refused:

    e->state = ET_XE_DONE;
    xc->dropped++;
    xc->unresolved--;

    et_counter_add(&ex->counters->redis_errors, 1, 0);
    et_xc_trouble(ex, c, 1, "refused a span: \"%.*s\"",
                  (int) (r->len < 100 ? r->len : 100), r->str);

    return ET_OK;
}


/* reads and handles every reply available now; ET_ERROR: closed */
static int
et_xc_read(et_exporter_t *ex, et_xconn_t *c)
{
    ssize_t   n;
    void     *reply;

    for ( ;; ) {
        n = recv(c->fd, ex->rbuf, ET_EXPORTER_RBUF, MSG_DONTWAIT);

        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }

            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return ET_OK;
            }

            et_xc_broken(ex, c, "read failed: %s", strerror(errno));
            return ET_ERROR;
        }

        if (n == 0) {
            et_xc_broken(ex, c, "connection closed by the node");
            return ET_ERROR;
        }

        if (redisReaderFeed(c->reader, (const char *) ex->rbuf, (size_t) n)
            != REDIS_OK)
        {
            et_xc_broken(ex, c, "out of memory");
            return ET_ERROR;
        }

        c->progress_at = et_clock_mono_ms();

        for ( ;; ) {
            reply = NULL;

            if (redisReaderGetReply(c->reader, &reply) != REDIS_OK) {
                et_xc_broken(ex, c, "protocol error: %s",
                             c->reader->errstr);
                return ET_ERROR;
            }

            if (reply == NULL) {
                break;
            }

            c->elements = ET_CLUSTER_ELEMENTS_MAX;

            if (et_xc_reply(ex, c, reply) != ET_OK) {
                freeReplyObject(reply);
                return ET_ERROR;
            }

            freeReplyObject(reply);
        }

        if (c->reader->len - c->reader->pos > ET_XC_READER_MAX) {
            et_xc_broken(ex, c, "protocol error: a reply of more than "
                         "64 MB");
            return ET_ERROR;
        }
    }
}


static int
et_xc_send(et_exporter_t *ex, et_xconn_t *c)
{
    ssize_t  w;

    while (c->out_sent < c->out_len) {
        w = send(c->fd, c->out + c->out_sent, c->out_len - c->out_sent,
                 MSG_NOSIGNAL | MSG_DONTWAIT);

        if (w == -1) {
            if (errno == EINTR) {
                continue;
            }

            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return ET_OK;
            }

            et_xc_broken(ex, c, "write failed: %s", strerror(errno));
            return ET_ERROR;
        }

        c->out_sent += (size_t) w;
        c->progress_at = et_clock_mono_ms();
    }

    c->out_len = 0;
    c->out_sent = 0;

    return ET_OK;
}


/*
 * One round of I/O on every connection with something to send or a reply
 * due: writes, then waits up to a poll slice for replies.  Returns 0 when
 * no connection had anything in flight.
 */
static int
et_xc_io(et_exporter_t *ex, uint64_t deadline)
{
    int             timeout;
    unsigned        i, n;
    uint64_t        now;
    et_xconn_t     *c;
    et_xcluster_t  *xc;
    unsigned        idx[ET_CLUSTER_MASTERS_MAX];
    struct pollfd   pfd[ET_CLUSTER_MASTERS_MAX];

    xc = ex->cluster;
    n = 0;

    for (i = 0; i < xc->nconns; i++) {
        c = &xc->conns[i];

        if (c->fd == -1 || c->due_len == 0) {
            continue;
        }

        if (c->out_sent < c->out_len && et_xc_send(ex, c) != ET_OK) {
            continue;
        }

        pfd[n].fd = c->fd;
        pfd[n].events = POLLIN | (c->out_sent < c->out_len ? POLLOUT : 0);
        pfd[n].revents = 0;
        idx[n++] = i;
    }

    if (n == 0) {
        return 0;
    }

    now = et_clock_mono_ms();
    timeout = ET_EXPORTER_POLL_MS;

    if (deadline) {
        timeout = deadline > now ? (int) (deadline - now) : 0;

        if (timeout > ET_EXPORTER_POLL_MS) {
            timeout = ET_EXPORTER_POLL_MS;
        }
    }

    if (poll(pfd, n, timeout) > 0) {
        for (i = 0; i < n; i++) {
            c = &xc->conns[idx[i]];

            if ((pfd[i].revents & (POLLIN | POLLERR | POLLHUP))
                && et_xc_read(ex, c) != ET_OK)
            {
                continue;
            }

            if ((pfd[i].revents & POLLOUT) && c->fd != -1) {
                (void) et_xc_send(ex, c);
            }
        }
    }

    now = et_clock_mono_ms();

    for (i = 0; i < n; i++) {
        c = &xc->conns[idx[i]];

        if (c->fd != -1 && c->due_len
            && now - c->progress_at >= ex->conf.io_timeout_ms)
        {
            et_xc_broken(ex, c, "no reply for %u ms", ex->conf.io_timeout_ms);
        }
    }

    return 1;
}


/* the earliest moment something blocked may move again */
static uint64_t
et_xc_next(et_xcluster_t *xc)
{
    unsigned     i;
    uint64_t     at;
    et_xconn_t  *c;

    at = xc->retry_at;

    if ((xc->refresh || !xc->have_map) && (at == 0 || xc->refresh_at < at)) {
        at = xc->refresh_at;
    }

    for (i = 0; i < xc->nconns; i++) {
        c = &xc->conns[i];

        if (c->fd == -1 && (c->in_map || c->wanted)
            && (at == 0 || c->connect_at < at))
        {
            at = c->connect_at;
        }
    }

    return at;
}


/*
 * Sends the batch (taking one if there is none) until every entry of it
 * is answered for.  ET_OK: done, or nothing queued; ET_DECLINED: blocked
 * (a backoff, the map, a connection), or stopped by stop or "deadline".
 */
static int
et_xc_run(et_exporter_t *ex, uint64_t deadline)
{
    uint64_t        now;
    et_xcluster_t  *xc;

    xc = ex->cluster;

    if (xc->nbatch == 0 && et_xc_take(ex) == 0) {
        return ET_OK;
    }

    for ( ;; ) {

        if (xc->unresolved == 0) {
            et_xc_done(ex);
            return ET_OK;
        }

        now = et_clock_mono_ms();

        if ((deadline && now >= deadline)
            || (deadline == 0 && __atomic_load_n(&ex->stop, __ATOMIC_RELAXED)))
        {
            return ET_DECLINED;
        }

        if ((xc->refresh || !xc->have_map) && now >= xc->refresh_at) {
            (void) et_xc_refresh(ex);
        }

        et_xc_connect(ex);

        if (et_clock_mono_ms() >= xc->retry_at) {
            et_xc_route(ex);
        }

        if (!et_xc_io(ex, deadline) && xc->unresolved) {
            ex->connect_at = et_xc_next(xc);
            return ET_DECLINED;
        }
    }
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


void
et_xcluster_cycle(et_exporter_t *ex)
{
    et_xcluster_t  *xc;

    xc = ex->cluster;

    if (!xc->have_map && et_clock_mono_ms() >= xc->refresh_at
        && et_xc_refresh(ex) == ET_OK)
    {
        et_xc_connect(ex);
    }

    (void) et_xc_run(ex, 0);

    et_xc_reports(ex, 0);
}


/*
 * At stop: sends what is queued within stop_timeout_ms; what is left,
 * answered for or not, is dropped (redis_error) and the line says so.
 */
void
et_xcluster_finish(et_exporter_t *ex)
{
    int             rc;
    unsigned        i;
    uint64_t        now, deadline, lost, wait;
    et_xcluster_t  *xc;


    xc = ex->cluster;
    deadline = et_clock_mono_ms() + ex->conf.stop_timeout_ms;

    while (et_exporter_pending(ex)) {
        rc = et_xc_run(ex, deadline);
        now = et_clock_mono_ms();

        if (now >= deadline) {
            break;
        }

        if (rc == ET_DECLINED) {
            wait = ex->connect_at > now ? ex->connect_at - now : 1;

            if (wait > deadline - now) {
                wait = deadline - now;
            }

            if (wait > ET_EXPORTER_POLL_MS) {
                wait = ET_EXPORTER_POLL_MS;
            }

            (void) poll(NULL, 0, (int) wait);
        }
    }

    /* a batch left half answered: its answers count, the rest is lost */
    if (xc->nbatch) {
        xc->dropped += xc->unresolved;
        xc->unresolved = 0;
        et_xc_done(ex);
    }

    et_xc_reports(ex, 1);

    lost = et_exporter_pending(ex);

    if (lost) {
        et_counter_add(&ex->counters->dropped_redis_error, lost, 0);

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
