/*
 * The counters the status handler serves: one slot per process in shared
 * memory, summed by the status handler.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/types.h>

#include "et_metrics.h"


#define et_load(p)  __atomic_load_n(p, __ATOMIC_RELAXED)


/* the slack lets the table start on a cache line wherever the memory does */
size_t
et_metrics_size(uint32_t nslots)
{
    return sizeof(et_metrics_t) + (size_t) nslots * sizeof(et_slot_t)
           + ET_CACHE_LINE - 1;
}


et_metrics_t *
et_metrics_at(void *mem)
{
    uintptr_t  a;

    a = ((uintptr_t) mem + ET_CACHE_LINE - 1)
        & ~(uintptr_t) (ET_CACHE_LINE - 1);

    return (et_metrics_t *) a;
}


et_metrics_t *
et_metrics_init(void *mem, uint32_t nslots)
{
    et_metrics_t  *m;

    m = et_metrics_at(mem);
    memset(m, 0, sizeof(et_metrics_t) + (size_t) nslots * sizeof(et_slot_t));
    m->nslots = nslots;

    return m;
}


/* kill(pid, 0) fails with EPERM for a live process of another user */
static int
et_pid_alive(int32_t pid)
{
    return pid > 0 && (kill((pid_t) pid, 0) == 0 || errno == EPERM);
}


void
et_metrics_gauges_zero(et_counters_t *c)
{
    unsigned  i;

    for (i = 0; i < ET_METRICS_NODES; i++) {
        __atomic_store_n(&c->nodes[i].connected, 0, __ATOMIC_RELAXED);
    }

    __atomic_store_n(&c->redis_connected, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&c->redis_nodes, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&c->queue_in, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&c->queue_out, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&c->inflight, 0, __ATOMIC_RELAXED);
}


et_counters_t *
et_metrics_claim(et_metrics_t *m, int32_t pid)
{
    int32_t     old;
    uint32_t    i;
    et_slot_t  *slot;

    if (pid <= 0) {
        return NULL;
    }

    /* a free slot first: its counters are final, nobody writes them */

    for (i = 0; i < m->nslots; i++) {
        slot = &m->slots[i];
        old = 0;

        if (__atomic_load_n(&slot->pid, __ATOMIC_RELAXED) == 0
            && __atomic_compare_exchange_n(&slot->pid, &old, pid, 0,
                                           __ATOMIC_ACQ_REL,
                                           __ATOMIC_RELAXED))
        {
            return &slot->counters;
        }
    }

    /*
     * Then the slot of a process that died without releasing it (a crashed
     * worker).  The compare-and-swap makes sure only one claimer takes it.
     */

    for (i = 0; i < m->nslots; i++) {
        slot = &m->slots[i];
        old = __atomic_load_n(&slot->pid, __ATOMIC_RELAXED);

        if (old == 0 || old == pid || et_pid_alive(old)) {
            continue;
        }

        if (__atomic_compare_exchange_n(&slot->pid, &old, pid, 0,
                                        __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
        {
            et_metrics_gauges_zero(&slot->counters);
            return &slot->counters;
        }
    }

    return NULL;
}


void
et_metrics_release(et_metrics_t *m, et_counters_t *c)
{
    et_slot_t  *slot;

    if (c == NULL) {
        return;
    }

    slot = (et_slot_t *) ((uint8_t *) c - offsetof(et_slot_t, counters));

    if (slot < &m->slots[0] || slot >= &m->slots[m->nslots]) {
        return;
    }

    et_metrics_gauges_zero(c);
    __atomic_store_n(&slot->pid, 0, __ATOMIC_RELEASE);
}


/* an address as a label value: printable, nothing to escape */
static int
et_node_addr_ok(const char *addr, size_t len)
{
    size_t  i;

    if (len == 0 || len >= ET_METRICS_NODE_ADDR) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (addr[i] <= ' ' || addr[i] > '~' || addr[i] == '"'
            || addr[i] == '\\')
        {
            return 0;
        }
    }

    return 1;
}


et_node_counters_t *
et_metrics_node(et_counters_t *c, const char *addr)
{
    size_t               len;
    unsigned             i;
    et_node_counters_t  *n, *other;

    len = strlen(addr);
    other = &c->nodes[ET_METRICS_NODES - 1];

    for (i = 0; i < ET_METRICS_NODES - 1; i++) {
        n = &c->nodes[i];

        if (!n->used) {
            break;
        }

        if (strcmp(n->addr, addr) == 0) {
            return n;
        }
    }

    if (i == ET_METRICS_NODES - 1 || !et_node_addr_ok(addr, len)) {
        n = other;
        addr = "other";
        len = 5;

        if (n->used) {
            return n;
        }
    }

    /* the slot's entries are this thread's alone: written, then shown */
    memcpy(n->addr, addr, len + 1);
    __atomic_store_n(&n->used, 1, __ATOMIC_RELEASE);

    return n;
}


/* the sum's entry of a master; its last place is kept for "other" */
static et_node_sum_t *
et_metrics_node_sum(et_metrics_sum_t *sum, const char *addr)
{
    unsigned        k;
    et_node_sum_t  *ns;

    for (k = 0; k < sum->nnodes; k++) {
        if (strncmp(sum->nodes[k].addr, addr, ET_METRICS_NODE_ADDR) == 0) {
            return &sum->nodes[k];
        }
    }

    if (sum->nnodes >= ET_METRICS_PAGE_NODES - 1
        && strcmp(addr, "other") != 0)
    {
        return et_metrics_node_sum(sum, "other");
    }

    ns = &sum->nodes[sum->nnodes++];

    strncpy(ns->addr, addr, ET_METRICS_NODE_ADDR - 1);
    ns->addr[ET_METRICS_NODE_ADDR - 1] = '\0';

    return ns;
}


/* a slot's masters into the sum's, by address */
static void
et_metrics_sum_nodes(const et_counters_t *c, int alive,
    et_metrics_sum_t *sum)
{
    unsigned                   i;
    et_node_sum_t             *ns;
    const et_node_counters_t  *n;

    for (i = 0; i < ET_METRICS_NODES; i++) {
        n = &c->nodes[i];

        if (!__atomic_load_n(&n->used, __ATOMIC_ACQUIRE)) {
            continue;
        }

        ns = et_metrics_node_sum(sum, n->addr);
        ns->errors += et_load(&n->errors);

        if (alive) {
            ns->connected += et_load(&n->connected);
        }
    }
}


void
et_metrics_sum(const et_metrics_t *m, et_metrics_sum_t *sum)
{
    int32_t               pid;
    uint32_t              i;
    uint64_t              in, out, inflight;
    const et_slot_t      *slot;
    const et_counters_t  *c;

    memset(sum, 0, sizeof(et_metrics_sum_t));

    for (i = 0; i < m->nslots; i++) {
        slot = &m->slots[i];
        c = &slot->counters;

        pid = __atomic_load_n(&slot->pid, __ATOMIC_ACQUIRE);

        sum->spans += et_load(&c->spans);
        sum->exported += et_load(&c->exported);
        sum->dropped_queue_full += et_load(&c->dropped_queue_full);
        sum->dropped_redis_error += et_load(&c->dropped_redis_error);
        sum->requests += et_load(&c->requests);
        sum->requests_sampled += et_load(&c->requests_sampled);
        sum->requests_kept += et_load(&c->requests_kept);
        sum->requests_rate_limited += et_load(&c->requests_rate_limited);
        sum->redis_errors += et_load(&c->redis_errors);
        sum->redis_reconnects += et_load(&c->redis_reconnects);
        sum->redis_redirects[0] += et_load(&c->redis_redirects[0]);
        sum->redis_redirects[1] += et_load(&c->redis_redirects[1]);

        et_metrics_sum_nodes(c, pid != 0 && et_pid_alive(pid), sum);

        if (pid != 0 && et_pid_alive(pid)) {

            /*
             * Exact at rest; read while the thread writes a batch, its
             * entries may be missed or seen twice for that moment.
             * queue_in is read last: it is never behind queue_out then.
             */
            out = __atomic_load_n(&c->queue_out, __ATOMIC_ACQUIRE);
            inflight = et_load(&c->inflight);
            in = __atomic_load_n(&c->queue_in, __ATOMIC_ACQUIRE);

            sum->queued += (in > out ? in - out : 0) + inflight;
            sum->redis_connected += et_load(&c->redis_connected);
            sum->redis_nodes += et_load(&c->redis_nodes);
        }
    }
}


typedef struct {
    uint8_t  *pos;
    uint8_t  *last;
    int       full;
} et_out_t;


static void
et_out_str(et_out_t *out, const char *s)
{
    size_t  len;

    len = strlen(s);

    if (out->full || len > (size_t) (out->last - out->pos)) {
        out->full = 1;
        return;
    }

    memcpy(out->pos, s, len);
    out->pos += len;
}


static void
et_out_uint(et_out_t *out, uint64_t v)
{
    char  digits[24], *p;

    p = digits + sizeof(digits) - 1;
    *p = '\0';

    do {
        *--p = (char) ('0' + v % 10);
        v /= 10;
    } while (v);

    et_out_str(out, p);
}


/*
 * A family, and its samples: one without labels, or one per label (the
 * reasons of requests_sampled_total and spans_dropped_total).
 */
typedef struct {
    const char  *name;
    const char  *type;
    const char  *help;
    const char  *labels[2];     /* NULL: one sample without */
} et_metric_family_t;


/* a family's HELP and TYPE lines */
static void
et_out_family(et_out_t *out, const et_metric_family_t *f)
{
    et_out_str(out, "# HELP ");
    et_out_str(out, f->name);
    et_out_str(out, " ");
    et_out_str(out, f->help);
    et_out_str(out, "\n# TYPE ");
    et_out_str(out, f->name);
    et_out_str(out, " ");
    et_out_str(out, f->type);
    et_out_str(out, "\n");
}


size_t
et_metrics_format(const et_metrics_sum_t *sum, uint8_t *buf, size_t size)
{
    size_t     i, j;
    uint8_t   *done;
    et_out_t   out;

    static const et_metric_family_t  families[] = {
        { "edgetrace_requests_total", "counter",
          "Client requests traced, sampled or not.", { NULL, NULL } },
        { "edgetrace_requests_sampled_total", "counter",
          "Client requests traced and exported, by how they were kept.",
          { "{reason=\"head\"} ", "{reason=\"outcome\"} " } },
        { "edgetrace_requests_rate_limited_total", "counter",
          "New roots head sampling chose and the rate limit refused.",
          { NULL, NULL } },
        { "edgetrace_spans_total", "counter",
          "Spans finished and handed to the exporter.", { NULL, NULL } },
        { "edgetrace_spans_exported_total", "counter",
          "Spans acknowledged by Redis.", { NULL, NULL } },
        { "edgetrace_spans_dropped_total", "counter",
          "Spans lost, by reason.",
          { "{reason=\"queue_full\"} ", "{reason=\"redis_error\"} " } },
        { "edgetrace_spans_queued", "gauge",
          "Spans waiting in the exporters' queues now.", { NULL, NULL } },
        { "edgetrace_redis_errors_total", "counter",
          "Failed Redis connects and writes, and Redis error replies.",
          { NULL, NULL } },
        { "edgetrace_redis_reconnects_total", "counter",
          "Successful reconnects to Redis.", { NULL, NULL } },
        { "edgetrace_redis_connected", "gauge",
          "Processes connected to Redis now.", { NULL, NULL } },
        { "edgetrace_redis_nodes", "gauge",
          "Redis Cluster masters each process writes to, summed over "
          "processes.", { NULL, NULL } },
        { "edgetrace_redis_redirects_total", "counter",
          "Spans a Redis Cluster master redirected to another, by kind.",
          { "{kind=\"moved\"} ", "{kind=\"ask\"} " } }
    };

    /* a cluster's masters, a sample each (et_metrics_sum_t.nodes) */
    static const et_metric_family_t  nodes[] = {
        { "edgetrace_redis_node_errors_total", "counter",
          "Failed connects, writes and error replies, by Redis Cluster "
          "master.", { NULL, NULL } },
        { "edgetrace_redis_node_connected", "gauge",
          "Connections to each Redis Cluster master now, summed over "
          "processes.", { NULL, NULL } }
    };

    uint64_t  values[sizeof(families) / sizeof(families[0])][2];

    values[0][0] = sum->requests;
    values[1][0] = sum->requests_sampled;
    values[1][1] = sum->requests_kept;
    values[2][0] = sum->requests_rate_limited;
    values[3][0] = sum->spans;
    values[4][0] = sum->exported;
    values[5][0] = sum->dropped_queue_full;
    values[5][1] = sum->dropped_redis_error;
    values[6][0] = sum->queued;
    values[7][0] = sum->redis_errors;
    values[8][0] = sum->redis_reconnects;
    values[9][0] = sum->redis_connected;
    values[10][0] = sum->redis_nodes;
    values[11][0] = sum->redis_redirects[0];
    values[11][1] = sum->redis_redirects[1];

    out.pos = buf;
    out.last = buf + size;
    out.full = 0;

    for (i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
        done = out.pos;

        /*
         * the cluster's families only with a cluster: a single Redis's
         * page stays as it was (docs/counters.md)
         */
        if (i == 10 && sum->redis_nodes == 0 && sum->nnodes == 0) {
            return (size_t) (out.pos - buf);
        }

        et_out_family(&out, &families[i]);

        for (j = 0; j < 2; j++) {
            if (j == 1 && families[i].labels[1] == NULL) {
                break;
            }

            et_out_str(&out, families[i].name);
            et_out_str(&out, families[i].labels[j] ? families[i].labels[j]
                                                   : " ");
            et_out_uint(&out, values[i][j]);
            et_out_str(&out, "\n");
        }

        /* whole families only: a cut one would be misread by a scraper */
        if (out.full) {
            return (size_t) (done - buf);
        }
    }

    for (i = 0; i < sizeof(nodes) / sizeof(nodes[0]) && sum->nnodes; i++) {

        if (sum->nnodes > ET_METRICS_PAGE_NODES) {
            break;
        }

        done = out.pos;

        et_out_family(&out, &nodes[i]);

        for (j = 0; j < sum->nnodes; j++) {
            et_out_str(&out, nodes[i].name);
            et_out_str(&out, "{node=\"");
            et_out_str(&out, sum->nodes[j].addr);
            et_out_str(&out, "\"} ");
            et_out_uint(&out, i == 0 ? sum->nodes[j].errors
                                     : sum->nodes[j].connected);
            et_out_str(&out, "\n");
        }

        if (out.full) {
            return (size_t) (done - buf);
        }
    }

    return (size_t) (out.pos - buf);
}
