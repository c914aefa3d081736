/*
 * Unit tests: et_metrics.c (slots in shared memory, sums, the Prometheus
 * text).
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "et_core.h"
#include "et_metrics.h"
#include "tap.h"


#define nelts(a)  (sizeof(a) / sizeof((a)[0]))

#define CHILDREN         8
#define CLAIMS_PER_CHILD 8


static et_metrics_t *
metrics_new(uint32_t nslots)
{
    void  *p;

    p = mmap(NULL, et_metrics_size(nslots), PROT_READ | PROT_WRITE,
             MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED) {
        abort();
    }

    /* mmap's pages are aligned: the table starts where they do */
    return et_metrics_init(p, nslots);
}


static void
metrics_free(et_metrics_t *m)
{
    munmap(m, et_metrics_size(m->nslots));
}


static long
slot_of(et_metrics_t *m, et_counters_t *c)
{
    return c ? (long) ((et_slot_t *) c - m->slots) : -1;
}


/* a pid that existed and is gone: a child, reaped */
static int32_t
dead_pid(void)
{
    pid_t  pid;

    pid = fork();

    if (pid == 0) {
        _exit(0);
    }

    waitpid(pid, NULL, 0);

    return (int32_t) pid;
}


/*
 * Shared memory that does not start on a cache line (apr_shm's base is 8
 * bytes past a page): the table is moved to the next line, stays inside
 * the memory, and a slot is claimed and counted there.
 */
static void
test_unaligned(void)
{
    size_t          off, size;
    uint8_t        *p;
    et_metrics_t   *m;
    et_counters_t  *c;

    for (off = 1; off < ET_CACHE_LINE; off += 7) {
        size = et_metrics_size(4);
        p = mmap(NULL, size + off, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            abort();
        }

        memset(p, 0xff, size + off);
        m = et_metrics_init(p + off, 4);
        c = et_metrics_claim(m, getpid());

        tap_ok((uintptr_t) m % ET_CACHE_LINE == 0
               && (uint8_t *) m >= p + off
               && (uint8_t *) &m->slots[4] <= p + off + size
               && m == et_metrics_at(p + off)
               && c != NULL && c->spans == 0,
               "memory %zu bytes past a line: the table aligned inside it",
               off);

        munmap(p, size + off);
    }
}


static void
test_layout(void)
{
    uint32_t       i;
    et_metrics_t  *m;
    int            zero;

    tap_is_int(sizeof(et_counters_t) % ET_CACHE_LINE, 0,
               "counters: whole cache lines");
    tap_is_int(offsetof(et_counters_t, exported), ET_CACHE_LINE,
               "counters: the exporter's on their own cache line");
    tap_is_int(sizeof(et_slot_t) % ET_CACHE_LINE, 0, "slot: whole lines");
    tap_is_int(offsetof(et_metrics_t, slots), ET_CACHE_LINE,
               "table: slots start on the second line");
    tap_is_int(et_metrics_size(0), sizeof(et_metrics_t) + ET_CACHE_LINE - 1,
               "size of 0 slots, with the slack to align it");
    tap_is_int(et_metrics_size(512), sizeof(et_metrics_t)
               + 512 * sizeof(et_slot_t) + ET_CACHE_LINE - 1,
               "size of 512 slots");

    m = mmap(NULL, et_metrics_size(4), PROT_READ | PROT_WRITE,
             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        abort();
    }

    memset(m, 0xff, et_metrics_size(4));
    m = et_metrics_init(m, 4);

    zero = 1;

    for (i = 0; i < 4; i++) {
        zero &= m->slots[i].pid == 0 && m->slots[i].counters.spans == 0
                && m->slots[i].counters.redis_connected == 0;
    }

    tap_ok(m->nslots == 4 && zero, "init: every slot free and zero");

    metrics_free(m);

    test_unaligned();
}


static void
test_claim(void)
{
    size_t             i;
    long               got;
    int32_t            pid;
    et_counters_t     *c;
    et_metrics_t      *m;
    et_metrics_sum_t   sum;

    enum { CLAIM, RELEASE, RELEASE_BAD, SET };
    enum { SELF, PARENT, INIT, DEAD, ZERO, NEGATIVE };

    static const struct {
        const char  *name;
        int          op;
        int          who;
        long         slot;       /* CLAIM: the slot expected, -1: NULL */
    } steps[] = {
        { "first claim takes slot 0", CLAIM, SELF, 0 },
        { "a second process gets slot 1", CLAIM, PARENT, 1 },
        { "a third gets slot 2", CLAIM, INIT, 2 },
        { "table full of live processes: NULL", CLAIM, SELF, -1 },
        { "set counters on slot 1", SET, 0, 1 },
        { "release slot 1", RELEASE, 0, 1 },
        { "pid 0 is not a process: NULL", CLAIM, ZERO, -1 },
        { "a negative pid: NULL", CLAIM, NEGATIVE, -1 },
        { "the freed slot is reused", CLAIM, INIT, 1 },
        { "full again: NULL", CLAIM, DEAD, -1 },
        { "release slot 2", RELEASE, 0, 2 },
        { "a pointer outside the table is ignored", RELEASE_BAD, 0, 0 },
        { "a process that then dies takes slot 2", CLAIM, DEAD, 2 },
        { "its slot is taken over once it is gone", CLAIM, SELF, 2 },
        { "and then the table is full", CLAIM, SELF, -1 },
    };

    m = metrics_new(3);

    for (i = 0; i < nelts(steps); i++) {
        switch (steps[i].who) {
        case SELF:
            pid = (int32_t) getpid();
            break;
        case PARENT:
            pid = (int32_t) getppid();
            break;
        case INIT:
            pid = 1;
            break;
        case DEAD:
            pid = dead_pid();
            break;
        case ZERO:
            pid = 0;
            break;
        default:
            pid = -5;
            break;
        }

        switch (steps[i].op) {

        case CLAIM:
            c = et_metrics_claim(m, pid);
            got = slot_of(m, c);
            tap_is_int(got, steps[i].slot, "claim: %s", steps[i].name);

            if (got >= 0) {
                tap_ok(m->slots[got].pid == pid, "  the slot holds the pid");
            }

            break;

        case SET:
            c = &m->slots[steps[i].slot].counters;
            c->spans = 10;
            c->exported = 7;
            c->queue_in = 9;
            c->queue_out = 7;
            c->inflight = 1;
            c->redis_connected = 1;

            /* the only counters in the table: the sum is theirs alone */
            et_metrics_sum(m, &sum);
            tap_ok(sum.spans == 10 && sum.exported == 7 && sum.queued == 3
                   && sum.redis_connected == 1,
                   "%s: the sum sees them, and a live slot's gauge",
                   steps[i].name);
            break;

        case RELEASE:
            c = &m->slots[steps[i].slot].counters;
            c->redis_connected = 1;
            et_metrics_release(m, c);
            tap_ok(m->slots[steps[i].slot].pid == 0
                   && c->redis_connected == 0,
                   "%s: free, gauge zero", steps[i].name);
            break;

        case RELEASE_BAD:
            et_metrics_release(m, NULL);
            et_metrics_release(m, (et_counters_t *) &m->slots[3]);
            tap_ok(m->slots[0].pid != 0 && m->slots[1].pid != 0,
                   "release: NULL and %s", steps[i].name);
            break;
        }
    }

    /* slot 1 was released and reused: its counters kept adding up */
    tap_ok(m->slots[1].counters.spans == 10
           && m->slots[1].counters.exported == 7
           && m->slots[1].counters.redis_connected == 0,
           "a reused slot keeps its counters, not its gauge");

    metrics_free(m);
}


static void
test_sum(void)
{
    size_t             i;
    int32_t            gone;
    et_metrics_t      *m;
    et_counters_t     *c;
    et_metrics_sum_t   s;

    enum { FREE, ALIVE, DEAD };

    static const struct {
        int        state;
        uint64_t   v[9];   /* requests, sampled, spans, queue_full, exported,
                              redis_error, errors, reconnects, connected */
    } slots[] = {
        { ALIVE, { 10, 8, 12, 2, 7, 1, 3, 1, 1 } },
        { FREE,  { 100, 50, 60, 0, 55, 5, 4, 2, 1 } },   /* racy gauge */
        { DEAD,  { 1, 1, 4, 0, 1, 0, 9, 0, 1 } },        /* crashed */
        { ALIVE, { 0, 0, 3, 0, 5, 0, 0, 0, 0 } },
        { ALIVE, { 5, 5, 9, 1, 3, 0, 0, 4, 1 } },
        { FREE,  { 0, 0, 0, 0, 0, 0, 0, 0, 0 } },
    };

    /* queue_in, queue_out, inflight: queued is counted, not derived */
    static const uint64_t  queue[][3] = {
        { 9, 8, 1 },        /* queued 2 */
        { 5, 0, 0 },        /* free: no gauge */
        { 3, 0, 0 },        /* crashed: no gauge */
        { 2, 3, 0 },        /* racy: out read ahead of in, not below 0 */
        { 7, 3, 1 },        /* queued 5 */
        { 0, 0, 0 },
    };

    static const et_metrics_sum_t  want = {
        .requests = 116,
        .requests_sampled = 64,
        .requests_kept = 70,
        .requests_rate_limited = 57,
        .spans = 88,
        .exported = 71,
        .dropped_queue_full = 3,
        .dropped_redis_error = 6,
        .queued = 7,
        .redis_errors = 16,
        .redis_reconnects = 7,
        .redis_connected = 2,
    };

    m = metrics_new(nelts(slots));
    gone = dead_pid();

    for (i = 0; i < nelts(slots); i++) {
        m->slots[i].pid = slots[i].state == ALIVE ? (int32_t) getpid()
                          : slots[i].state == DEAD ? gone : 0;

        c = &m->slots[i].counters;
        c->requests = slots[i].v[0];
        c->requests_sampled = slots[i].v[1];
        c->spans = slots[i].v[2];
        c->dropped_queue_full = slots[i].v[3];
        c->exported = slots[i].v[4];
        c->dropped_redis_error = slots[i].v[5];
        c->redis_errors = slots[i].v[6];
        c->redis_reconnects = slots[i].v[7];
        c->redis_connected = slots[i].v[8];
        c->requests_kept = slots[i].v[1] + 1;
        c->requests_rate_limited = slots[i].v[0] / 2;
        c->queue_in = queue[i][0];
        c->queue_out = queue[i][1];
        c->inflight = queue[i][2];
    }

    memset(&s, 0xff, sizeof(s));
    et_metrics_sum(m, &s);

#define SUM_IS(f)                                                             \
    tap_is_int(s.f, want.f, "sum: " #f)

    SUM_IS(requests);
    SUM_IS(requests_sampled);
    SUM_IS(requests_kept);
    SUM_IS(requests_rate_limited);
    SUM_IS(spans);
    SUM_IS(exported);
    SUM_IS(dropped_queue_full);
    SUM_IS(dropped_redis_error);
    SUM_IS(queued);
    SUM_IS(redis_errors);
    SUM_IS(redis_reconnects);
    SUM_IS(redis_connected);

    metrics_free(m);

    /* at rest the identity of docs/counters.md holds exactly */

    m = metrics_new(4);
    c = et_metrics_claim(m, (int32_t) getpid());
    c->spans = 1000;
    c->exported = 900;
    c->dropped_queue_full = 40;
    c->dropped_redis_error = 10;
    c->queue_in = 60;
    c->queue_out = 20;
    c->inflight = 10;
    et_metrics_sum(m, &s);

    tap_ok(s.spans == s.exported + s.dropped_queue_full
                      + s.dropped_redis_error + s.queued
           && s.queued == 50,
           "spans = exported + dropped + queued");

    /* a span counted, then lost: the identity no longer holds */
    c->spans++;
    et_metrics_sum(m, &s);

    tap_ok(s.spans == s.exported + s.dropped_queue_full
                      + s.dropped_redis_error + s.queued + 1,
           "a span counted and lost shows: spans = exported + dropped + "
           "queued + 1");

    metrics_free(m);
}


static const char  text_small[] =
    "# HELP edgetrace_requests_total Client requests traced, sampled or not.\n"
    "# TYPE edgetrace_requests_total counter\n"
    "edgetrace_requests_total 1\n"
    "# HELP edgetrace_requests_sampled_total Client requests traced and "
    "exported, by how they were kept.\n"
    "# TYPE edgetrace_requests_sampled_total counter\n"
    "edgetrace_requests_sampled_total{reason=\"head\"} 2\n"
    "edgetrace_requests_sampled_total{reason=\"outcome\"} 11\n"
    "# HELP edgetrace_requests_rate_limited_total New roots head sampling "
    "chose and the rate limit refused.\n"
    "# TYPE edgetrace_requests_rate_limited_total counter\n"
    "edgetrace_requests_rate_limited_total 12\n"
    "# HELP edgetrace_spans_total Spans finished and handed to the "
    "exporter.\n"
    "# TYPE edgetrace_spans_total counter\n"
    "edgetrace_spans_total 3\n"
    "# HELP edgetrace_spans_exported_total Spans acknowledged by Redis.\n"
    "# TYPE edgetrace_spans_exported_total counter\n"
    "edgetrace_spans_exported_total 4\n"
    "# HELP edgetrace_spans_dropped_total Spans lost, by reason.\n"
    "# TYPE edgetrace_spans_dropped_total counter\n"
    "edgetrace_spans_dropped_total{reason=\"queue_full\"} 5\n"
    "edgetrace_spans_dropped_total{reason=\"redis_error\"} 6\n"
    "# HELP edgetrace_spans_queued Spans waiting in the exporters' queues "
    "now.\n"
    "# TYPE edgetrace_spans_queued gauge\n"
    "edgetrace_spans_queued 7\n"
    "# HELP edgetrace_redis_errors_total Failed Redis connects and writes, "
    "and Redis error replies.\n"
    "# TYPE edgetrace_redis_errors_total counter\n"
    "edgetrace_redis_errors_total 8\n"
    "# HELP edgetrace_redis_reconnects_total Successful reconnects to "
    "Redis.\n"
    "# TYPE edgetrace_redis_reconnects_total counter\n"
    "edgetrace_redis_reconnects_total 9\n"
    "# HELP edgetrace_redis_connected Processes connected to Redis now.\n"
    "# TYPE edgetrace_redis_connected gauge\n"
    "edgetrace_redis_connected 10\n";


static void
test_format(void)
{
    int                ok;
    size_t             i, n, len, full;
    char              *all;
    uint8_t           *buf;
    et_metrics_sum_t   s;

    static const et_metrics_sum_t  small = {
        .requests = 1, .requests_sampled = 2, .spans = 3, .exported = 4,
        .dropped_queue_full = 5, .dropped_redis_error = 6, .queued = 7,
        .redis_errors = 8, .redis_reconnects = 9, .redis_connected = 10,
        .requests_kept = 11, .requests_rate_limited = 12,
    };

    static const struct {
        const char  *line;
    } zero_lines[] = {
        { "\nedgetrace_requests_total 0\n" },
        { "\nedgetrace_requests_sampled_total{reason=\"outcome\"} 0\n" },
        { "\nedgetrace_requests_rate_limited_total 0\n" },
        { "\nedgetrace_spans_dropped_total{reason=\"queue_full\"} 0\n" },
        { "\nedgetrace_spans_dropped_total{reason=\"redis_error\"} 0\n" },
        { "\nedgetrace_redis_connected 0\n" },
    };

    buf = malloc(ET_METRICS_TEXT_MAX);
    if (buf == NULL) {
        abort();
    }

    len = et_metrics_format(&small, buf, ET_METRICS_TEXT_MAX);
    tap_is_mem(buf, len, text_small, "format: the exact text");

    /* a cluster: one more family, after the others (docs/counters.md) */
    s = small;
    s.redis_nodes = 11;
    len = et_metrics_format(&s, buf, ET_METRICS_TEXT_MAX);
    n = sizeof(text_small) - 1;
    tap_ok(len > n && memcmp(buf, text_small, n) == 0,
           "format, cluster: the single Redis's text first");
    tap_is_mem(buf + n, len - n,
               "# HELP edgetrace_redis_nodes Redis Cluster masters each "
               "process writes to, summed over processes.\n"
               "# TYPE edgetrace_redis_nodes gauge\n"
               "edgetrace_redis_nodes 11\n"
               "# HELP edgetrace_redis_redirects_total Spans a Redis "
               "Cluster master redirected to another, by kind.\n"
               "# TYPE edgetrace_redis_redirects_total counter\n"
               "edgetrace_redis_redirects_total{kind=\"moved\"} 0\n"
               "edgetrace_redis_redirects_total{kind=\"ask\"} 0\n",
               "format, cluster: then edgetrace_redis_nodes and "
               "edgetrace_redis_redirects_total");

    memset(&s, 0, sizeof(s));
    len = et_metrics_format(&s, buf, ET_METRICS_TEXT_MAX);
    buf[len < ET_METRICS_TEXT_MAX ? len : ET_METRICS_TEXT_MAX - 1] = '\0';

    for (i = 0; i < nelts(zero_lines); i++) {
        tap_ok(strstr((char *) buf, zero_lines[i].line) != NULL,
               "format: zero is written as 0 (%.*s)",
               (int) strlen(zero_lines[i].line) - 2, zero_lines[i].line + 1);
    }

    /* every value, and a page of masters with the longest addresses */
    memset(&s, 0xff, sizeof(s));
    s.nnodes = ET_METRICS_PAGE_NODES;

    for (i = 0; i < ET_METRICS_PAGE_NODES; i++) {
        memset(s.nodes[i].addr, 'h', ET_METRICS_NODE_ADDR - 1);
        s.nodes[i].addr[ET_METRICS_NODE_ADDR - 1] = '\0';
    }

    full = et_metrics_format(&s, buf, ET_METRICS_TEXT_MAX);
    tap_ok(full < ET_METRICS_TEXT_MAX && full > 0,
           "format: every value at its largest fits ET_METRICS_TEXT_MAX "
           "(%zu bytes)", full);
    buf[full] = '\0';
    tap_ok(strstr((char *) buf, "edgetrace_spans_total 18446744073709551615\n")
           != NULL, "format: 64-bit values in full");

    /* every smaller buffer: never overrun, a prefix of whole families */

    all = malloc(full + 1);
    if (all == NULL) {
        abort();
    }

    memcpy(all, buf, full + 1);
    ok = 1;

    for (n = 0; n <= full + 1; n++) {
        free(buf);
        buf = malloc(n ? n : 1);
        if (buf == NULL) {
            abort();
        }

        len = et_metrics_format(&s, buf, n);

        if (len > n || memcmp(buf, all, len) != 0
            || (n >= full && len != full)
            || (len < full && strncmp(all + len, "# HELP ", 7) != 0))
        {
            printf("#   size %zu: %zu bytes written\n", n, len);
            ok = 0;
            break;
        }
    }

    tap_ok(ok, "format: bounded by the buffer for every size 0..%zu, whole "
           "families only", full + 1);

    free(all);
    free(buf);
    buf = malloc(full + 1);
    if (buf == NULL) {
        abort();
    }

    len = et_metrics_format(&small, buf, strlen(text_small) - 1);
    tap_ok(len < strlen(text_small) && len > 0
           && memcmp(buf, text_small, len) == 0
           && strncmp(text_small + len, "# HELP edgetrace_redis_connected ",
                      33) == 0,
           "format: one byte short drops the last family whole");

    len = et_metrics_format(&small, buf, 10);
    tap_is_int(len, 0, "format: no room for one family: nothing");

    free(buf);
}


static void
test_processes(void)
{
    int                go[2], done[2], hold[2], ok, status;
    long               idx;
    size_t             i, j;
    pid_t              pids[CHILDREN];
    char               byte;
    et_metrics_t      *m;
    et_counters_t     *c;
    et_metrics_sum_t   s;
    volatile long     *got;

    m = metrics_new(CHILDREN * CLAIMS_PER_CHILD);

    got = mmap(NULL, sizeof(long) * CHILDREN * CLAIMS_PER_CHILD,
               PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (got == MAP_FAILED || pipe(go) != 0 || pipe(done) != 0
        || pipe(hold) != 0)
    {
        abort();
    }

    for (i = 0; i < CHILDREN; i++) {
        pids[i] = fork();

        if (pids[i] == 0) {
            close(go[1]);
            close(done[0]);
            close(hold[1]);

            /* all start together, to race for the same free slots */
            if (read(go[0], &byte, 1) != 0) {
                _exit(2);
            }

            for (j = 0; j < CLAIMS_PER_CHILD; j++) {
                c = et_metrics_claim(m, (int32_t) getpid());
                got[i * CLAIMS_PER_CHILD + j] = slot_of(m, c);

                if (c) {
                    et_counter_add(&c->spans, 5, 0);
                    et_counter_add(&c->exported, 3, 0);
                    et_counter_add(&c->queue_in, 2, 0);
                    et_counter_add(&c->redis_connected, 1, 0);
                }
            }

            /* tell the parent, then stay alive until it has looked */
            close(done[1]);

            if (read(hold[0], &byte, 1) != 0) {
                _exit(2);
            }

            _exit(0);
        }
    }

    close(done[1]);
    close(go[0]);
    close(hold[0]);

    /* closing the write end lets every child read EOF at once */
    close(go[1]);

    /* EOF once every child has claimed and closed its end */
    if (read(done[0], &byte, 1) != 0) {
        abort();
    }

    close(done[0]);

    ok = 1;

    for (i = 0; i < CHILDREN * CLAIMS_PER_CHILD; i++) {
        idx = got[i];

        if (idx < 0 || m->slots[idx].pid != pids[i / CLAIMS_PER_CHILD]) {
            ok = 0;
        }

        for (j = 0; j < i; j++) {
            if (got[j] == idx) {
                ok = 0;
            }
        }
    }

    tap_ok(ok, "%d processes racing for %d slots: each got distinct ones, "
           "holding its pid", CHILDREN, CHILDREN * CLAIMS_PER_CHILD);

    tap_ok(et_metrics_claim(m, (int32_t) getpid()) == NULL,
           "the table is full while they live");

    et_metrics_sum(m, &s);
    tap_ok(s.spans == 5 * CHILDREN * CLAIMS_PER_CHILD
           && s.queued == 2 * CHILDREN * CLAIMS_PER_CHILD
           && s.redis_connected == CHILDREN * CLAIMS_PER_CHILD,
           "the sum sees the children's counters and gauges");

    close(hold[1]);
    ok = 1;

    for (i = 0; i < CHILDREN; i++) {
        ok &= waitpid(pids[i], &status, 0) == pids[i]
              && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }

    tap_ok(ok, "the children exited");

    /* they died without releasing: counters stay, gauges go */
    et_metrics_sum(m, &s);
    tap_ok(s.spans == 5 * CHILDREN * CLAIMS_PER_CHILD
           && s.exported == 3 * CHILDREN * CLAIMS_PER_CHILD
           && s.queued == 0 && s.redis_connected == 0,
           "after they are gone: counters kept, no gauges");

    c = et_metrics_claim(m, (int32_t) getpid());
    tap_ok(c != NULL && c->spans == 5 && c->redis_connected == 0
           && c->queue_in == 0,
           "a slot of a gone process is taken over, its gauges zeroed");

    munmap((void *) got, sizeof(long) * CHILDREN * CLAIMS_PER_CHILD);
    metrics_free(m);
}


static void
test_count_request(void)
{
    size_t          i;
    et_metrics_t   *m;
    et_counters_t  *c;

    static const struct {
        const char  *what;
        int          sampled;
        int          shared;
        uint64_t     requests;
        uint64_t     sampled_n;
    } cases[] = {
        { "not sampled", 0, 0, 1, 0 },
        { "sampled", 1, 0, 2, 1 },
        { "sampled, shared", 1, 1, 3, 2 },
        { "not sampled, shared", 0, 1, 4, 2 },
        { "sampled as any non-zero", 2, 0, 5, 3 },
    };

    m = metrics_new(2);
    c = et_metrics_claim(m, 1);

    for (i = 0; i < nelts(cases); i++) {
        et_metrics_count_request(c, cases[i].sampled, cases[i].shared);
        tap_is_int(c->requests, cases[i].requests,
                   "count request, %s: requests", cases[i].what);
        tap_is_int(c->requests_sampled, cases[i].sampled_n,
                   "count request, %s: requests_sampled", cases[i].what);
    }

    tap_ok(c->spans == 0 && c->exported == 0 && c->queue_in == 0
           && c->requests_kept == 0 && c->requests_rate_limited == 0,
           "count request: no other counter moves");

    et_metrics_count_kept(c, 0);
    et_metrics_count_kept(c, 1);
    et_metrics_count_limited(c, 0);
    tap_ok(c->requests_kept == 2 && c->requests_rate_limited == 1
           && c->requests == 5 && c->requests_sampled == 3,
           "count kept and limited: their own counters only");

    et_metrics_count_kept(NULL, 0);
    et_metrics_count_limited(NULL, 1);

    /* no slot (none free, or before init): nothing, and no crash */
    et_metrics_count_request(NULL, 1, 0);
    et_metrics_count_request(NULL, 0, 1);
    tap_ok(m->slots[1].counters.requests == 0,
           "count request: without a slot nothing is counted");

    metrics_free(m);
}


static void
test_headers(void)
{
    tap_is_mem(ET_METRICS_CONTENT_TYPE, strlen(ET_METRICS_CONTENT_TYPE),
               "text/plain; version=0.0.4; charset=utf-8",
               "headers: the Prometheus text format, with its charset");
    tap_is_mem(ET_METRICS_CACHE_CONTROL, strlen(ET_METRICS_CACHE_CONTROL),
               "no-store", "headers: no cache keeps a scrape");
}


/*
 * A cluster's masters (docs/counters.md "Redis Cluster"): claimed by
 * address in a slot, "other" past the bound or for an address that does
 * not fit, summed by address over slots (connected only from live ones),
 * the page bounded too, and written a sample each.
 */
static void
test_nodes(void)
{
    int                  good;
    size_t               len;
    unsigned             i;
    uint8_t             *buf;
    et_metrics_t        *m;
    et_counters_t       *a, *b;
    et_metrics_sum_t     s;
    et_node_counters_t  *n0, *n1, *n;
    char                 addr[64];

    m = metrics_new(40);
    a = et_metrics_claim(m, (int32_t) getpid());
    b = &m->slots[1].counters;
    m->slots[1].pid = dead_pid();

    n0 = et_metrics_node(a, "127.0.0.1:7000");
    n1 = et_metrics_node(a, "127.0.0.1:7001");
    tap_ok(n0 == &a->nodes[0] && n1 == &a->nodes[1]
           && et_metrics_node(a, "127.0.0.1:7000") == n0,
           "nodes: claimed in order, found again by address");

    n = et_metrics_node(a, "a-host-name-longer-than-a-label-may-hold"
                           ".example:7000");
    tap_ok(n == &a->nodes[ET_METRICS_NODES - 1]
           && strcmp(n->addr, "other") == 0,
           "nodes: an address that does not fit is \"other\"");
    tap_ok(et_metrics_node(a, "bad\"quote:1") == n,
           "nodes: an address to escape is \"other\"");

    for (i = 2; i < ET_METRICS_NODES + 3; i++) {
        snprintf(addr, sizeof(addr), "10.0.0.%u:7000", i);
        n = et_metrics_node(a, addr);
    }

    tap_ok(n == &a->nodes[ET_METRICS_NODES - 1]
           && strcmp(a->nodes[ET_METRICS_NODES - 2].addr, "10.0.0.6:7000")
              == 0,
           "nodes: past %d masters, \"other\"", ET_METRICS_NODES - 1);

    n0->errors = 3;
    n0->connected = 1;
    n->connected = 2;

    /* a slot of a process that exited: its errors count, not its gauge */
    et_metrics_node(b, "127.0.0.1:7000")->errors = 4;
    et_metrics_node(b, "127.0.0.1:7000")->connected = 1;
    et_metrics_node(b, "127.0.0.1:7009")->errors = 1;

    et_metrics_sum(m, &s);
    tap_ok(s.nnodes == ET_METRICS_NODES + 1
           && strcmp(s.nodes[0].addr, "127.0.0.1:7000") == 0
           && s.nodes[0].errors == 7 && s.nodes[0].connected == 1
           && strcmp(s.nodes[ET_METRICS_NODES].addr, "127.0.0.1:7009") == 0
           && s.nodes[ET_METRICS_NODES].errors == 1,
           "nodes: summed by address over slots, gauges from live ones");

    /* the page: 31 masters, then "other" */
    for (i = 2; i < 40; i++) {
        m->slots[i].pid = m->slots[1].pid;
        snprintf(addr, sizeof(addr), "10.1.0.%u:7000", i);
        et_metrics_node(&m->slots[i].counters, addr)->errors = 1;
    }

    et_metrics_sum(m, &s);
    good = s.nnodes == ET_METRICS_PAGE_NODES - 1;

    for (i = 0; i < s.nnodes; i++) {
        good &= strcmp(s.nodes[i].addr, "other") != 0
                || i == ET_METRICS_NODES - 1;
    }

    /* 9 masters from slots 0 and 1, and "other": 22 more fit, 16 do not */
    tap_ok(good && strcmp(s.nodes[ET_METRICS_NODES - 1].addr, "other") == 0
           && s.nodes[ET_METRICS_NODES - 1].errors == 16,
           "nodes: at most %d on the page, the rest \"other\"",
           ET_METRICS_PAGE_NODES);

    /* without an "other" so far, the page's last place is one */
    for (i = 0; i < 40; i++) {
        memset(m->slots[i].counters.nodes, 0,
               sizeof(m->slots[i].counters.nodes));
        snprintf(addr, sizeof(addr), "10.2.0.%u:7000", i);
        et_metrics_node(&m->slots[i].counters, addr)->errors = 1;
    }

    et_metrics_sum(m, &s);
    tap_ok(s.nnodes == ET_METRICS_PAGE_NODES
           && strcmp(s.nodes[ET_METRICS_PAGE_NODES - 1].addr, "other") == 0
           && s.nodes[ET_METRICS_PAGE_NODES - 1].errors == 40 - 31,
           "nodes: 31 masters and \"other\" for the 9 more");

    buf = malloc(ET_METRICS_TEXT_MAX);
    if (buf == NULL) {
        abort();
    }

    memset(&s, 0, sizeof(s));
    s.redis_nodes = 2;
    s.nnodes = 2;
    strcpy(s.nodes[0].addr, "127.0.0.1:7000");
    s.nodes[0].errors = 3;
    s.nodes[0].connected = 1;
    strcpy(s.nodes[1].addr, "[::1]:7001");

    len = et_metrics_format(&s, buf, ET_METRICS_TEXT_MAX);
    buf[len < ET_METRICS_TEXT_MAX ? len : ET_METRICS_TEXT_MAX - 1] = '\0';
    tap_ok(strstr((char *) buf,
                  "# TYPE edgetrace_redis_node_errors_total counter\n"
                  "edgetrace_redis_node_errors_total"
                  "{node=\"127.0.0.1:7000\"} 3\n"
                  "edgetrace_redis_node_errors_total"
                  "{node=\"[::1]:7001\"} 0\n")
           != NULL
           && strstr((char *) buf,
                     "# TYPE edgetrace_redis_node_connected gauge\n"
                     "edgetrace_redis_node_connected"
                     "{node=\"127.0.0.1:7000\"} 1\n"
                     "edgetrace_redis_node_connected"
                     "{node=\"[::1]:7001\"} 0\n")
              != NULL,
           "nodes: a sample per master, labelled by address");

    free(buf);
    metrics_free(m);
}


int
main(void)
{
    test_layout();
    test_claim();
    test_sum();
    test_format();
    test_processes();
    test_count_request();
    test_headers();
    test_nodes();

    return tap_done();
}
