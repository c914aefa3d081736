/*
 * The exporter: a per-process thread that writes the queue to Redis.
 *
 * hiredis 0.14 is used for what it does well and nothing else.  Its
 * blocking API connects (with a timeout); then the socket is taken over
 * (et_conn.c): TLS's handshake for rediss://, AUTH and SELECT, then it is
 * non-blocking, the queue's bytes, already encoded as RESP commands, are
 * written with one sendmsg() per batch straight from the ring (with TLS,
 * SSL_write() on each of the ring's two pieces, no copy), and the
 * replies are only counted, acknowledged or refused, by et_resp_scan(),
 * which builds no reply object (hiredis's reader would allocate one per
 * XADD, or cost a callback per reply).  The async API is not used: it has
 * no timeouts and resolves host names synchronously anyway.
 *
 * The thread sleeps on a futex between batches, so that no producer takes
 * a lock to wake it: it wakes every flush interval, when a producer finds
 * the queue crossing half full (or 512 KB, ET_EXPORTER_KICK), or at stop.
 * Each cycle it reads the replies that piled up since the previous batch,
 * without blocking, then writes everything queued.  A socket that is full
 * mid-batch is waited on with poll(), reading replies meanwhile.
 *
 * Accounting: the request side counts "spans" and "dropped_queue_full"
 * (et_exporter_submit() only), the thread counts everything else.  An entry
 * is queued until it is completely written, then in flight until its reply
 * arrives; when a connection breaks, the entries in flight and a partially
 * written one are dropped (redis_error): a command is never sent twice, so
 * an entry is never stored twice.  Hence at rest
 *
 *     spans == exported + dropped_queue_full + dropped_redis_error + queued
 *
 * exactly, with queued = entries in the queue (counted by the queue) +
 * entries in flight.  Queued is counted, not derived, so the identity can
 * fail: the thread checks it every cycle and logs the spans that went
 * missing (et_exporter_account()).
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "et_clock.h"
#include "et_conn.h"
#include "et_queue.h"
#include "et_resp.h"
#include "et_exporter.h"
#include "et_exporter_int.h"


/* asked for; Linux caps it at net.core.wmem_max unless privileged */
#define ET_EXPORTER_SNDBUF     (1024 * 1024)

/* poll() reports replies only when this much piled up */
#define ET_EXPORTER_RCVLOWAT   (32 * 1024)

/* an entry up to this size is encoded on the stack under "shared" */
#define ET_EXPORTER_STACK_ENTRY  4096

/*
 * A producer wakes the thread when the queue crosses half full, or this
 * many bytes, whichever is less.  Batches of a few megabytes left the
 * cache before the kernel copied them, and each was a stall of a
 * millisecond for whatever shared the CPU with the thread or with Redis
 * (wrk's p99 1.3 ms against 0.5 ms); 512 KB batches cost the thread less
 * per span (0.12-0.15 us against 0.19-0.23) and stall nobody.
 */
#define ET_EXPORTER_KICK       (512 * 1024)

static void *et_exporter_thread(void *data);
static void et_exporter_cycle(et_exporter_t *ex);
static int et_exporter_wait(et_exporter_t *ex);
static void et_exporter_finish(et_exporter_t *ex);
static int et_exporter_connect(et_exporter_t *ex);
static void et_exporter_broken(et_exporter_t *ex, const char *fmt, ...);
static void et_exporter_close(et_exporter_t *ex);
static int et_exporter_read(et_exporter_t *ex);
static int et_exporter_write(et_exporter_t *ex, uint64_t deadline);
static void et_exporter_trouble(et_exporter_t *ex, int kind,
    uint64_t events, uint64_t lost, const char *detail);
static void et_exporter_report(et_exporter_t *ex, int kind, uint64_t now,
    int force);


et_exporter_t *
et_exporter_start(const et_exporter_conf_t *conf, et_counters_t *counters)
{
    int                  rc;
    size_t               min;
    sigset_t             all, old;
    et_exporter_t       *ex;

    if (conf->stream == NULL || counters == NULL) {
        if (conf->log) {
            conf->log(conf->log_data, ET_LOG_ERR,
                      "exporter: no stream or counters",
                      sizeof("exporter: no stream or counters")
                      - 1);
        }

        return NULL;
    }

    /* never plaintext for rediss:// (docs/nginx.md "edgetrace_redis") */
    if (conf->redis.tls && conf->tls == NULL) {
        if (conf->log) {
            conf->log(conf->log_data, ET_LOG_ERR,
                      "exporter: rediss:// needs a TLS context",
                      sizeof("exporter: rediss:// needs a TLS context") - 1);
        }

        return NULL;
    }

    ex = calloc(1, sizeof(et_exporter_t));
    if (ex == NULL) {
        if (conf->log) {
            conf->log(conf->log_data, ET_LOG_ERR,
                      "exporter: out of memory",
                      sizeof("exporter: out of memory") - 1);
        }

        return NULL;
    }

    ex->conf = *conf;
    ex->counters = counters;
    et_conn_init(&ex->conn);
    ex->backoff_ms = ET_BACKOFF_MIN_MS;

    /* zero means the default, so adapters may leave knobs unset */

    if (ex->conf.queue_size == 0) {
        ex->conf.queue_size = ET_QUEUE_SIZE_DEFAULT;
    }

    if (ex->conf.flush_ms == 0) {
        ex->conf.flush_ms = ET_FLUSH_MS_DEFAULT;
    }

    if (ex->conf.connect_timeout_ms == 0) {
        ex->conf.connect_timeout_ms = ET_CONNECT_TIMEOUT_MS_DEFAULT;
    }

    if (ex->conf.io_timeout_ms == 0) {
        ex->conf.io_timeout_ms = ET_IO_TIMEOUT_MS_DEFAULT;
    }

    if (ex->conf.stop_timeout_ms == 0) {
        ex->conf.stop_timeout_ms = ET_STOP_TIMEOUT_MS_DEFAULT;
    }

    if (ex->conf.redis.path[0]) {
        snprintf(ex->addr, sizeof(ex->addr), "unix:%s",
                 ex->conf.redis.path);

    } else if (strchr(ex->conf.redis.host, ':')) {
        snprintf(ex->addr, sizeof(ex->addr), "[%s]:%d",
                 ex->conf.redis.host, ex->conf.redis.port);

    } else {
        snprintf(ex->addr, sizeof(ex->addr), "%s:%d",
                 ex->conf.redis.host, ex->conf.redis.port);
    }

    /*
     * The smallest entry bounds the number of entries the bytes can hold:
     * with that many slots, only bytes ever make the queue full.
     */

    min = et_entry_size_min(conf->stream);

    if (et_queue_init(&ex->queue, ex->conf.queue_size,
                      ex->conf.queue_size / min + 1, conf->shared)
        != ET_OK)
    {
        et_exporter_log(ex, ET_LOG_ERR,
                        "exporter: cannot allocate a queue of "
                        "%zu bytes", ex->conf.queue_size);
        free(ex);
        return NULL;
    }

    if (ex->conf.redis.cluster) {
        ex->cluster = et_xcluster_create(ex);

        if (ex->cluster == NULL) {
            et_queue_free(&ex->queue);
            free(ex);
            return NULL;
        }
    }

    /*
     * A slot taken over from an exited process keeps its counters: this
     * exporter accounts for what is added from now on.  Field by field:
     * httpd's shared memory does not align the slots as their type says,
     * and a copy of the whole struct may use aligned vector moves.
     */
    ex->base_spans = counters->spans;
    ex->base_done = counters->exported + counters->dropped_queue_full
                    + counters->dropped_redis_error;

    et_queue_count(&ex->queue, &counters->queue_in, &counters->queue_out);
    et_exporter_inflight(ex, 0);

    ex->kick_bytes = ex->conf.queue_size / 2;

    if (ex->kick_bytes > ET_EXPORTER_KICK) {
        ex->kick_bytes = ET_EXPORTER_KICK;
    }

    /*
     * Every signal is blocked in the thread, so that the server's signals
     * (nginx unblocks them before init_process) reach its own thread.
     */

    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);

    rc = pthread_create(&ex->thread, NULL, et_exporter_thread, ex);

    pthread_sigmask(SIG_SETMASK, &old, NULL);

    if (rc != 0) {
        et_exporter_log(ex, ET_LOG_ERR,
                        "exporter: cannot start its thread: %s",
                        strerror(rc));
        et_xcluster_free(ex->cluster);
        et_queue_free(&ex->queue);
        free(ex);
        return NULL;
    }

    pthread_setname_np(ex->thread, "edgetrace");

    return ex;
}


/*
 * Wakes the thread without a lock: the futex word goes to 1, and only the
 * caller that made it so enters the kernel.
 */
static void
et_exporter_kick(et_exporter_t *ex)
{
    if (__atomic_exchange_n(&ex->wake, 1, __ATOMIC_RELEASE) == 0) {
        (void) syscall(SYS_futex, &ex->wake, FUTEX_WAKE_PRIVATE, 1,
                       NULL, NULL, 0);
    }
}


/*
 * Publishes an entry of "len" bytes written at "p" (a reservation of the
 * queue), waking the thread only when it makes the queue cross kick_bytes,
 * not once per span: the flush interval does the rest.  The queue's lock,
 * when shared, is held from the reservation to here, so head_bytes is
 * stable.
 */
static void
et_exporter_commit(et_exporter_t *ex, uint8_t *p, size_t len)
{
    int          kick;
    uint64_t     used;
    et_queue_t  *q;

    q = &ex->queue;

    used = q->head_bytes - __atomic_load_n(&q->tail_bytes, __ATOMIC_ACQUIRE);
    kick = used < ex->kick_bytes && used + len >= ex->kick_bytes;

    et_queue_commit(q, p, len);

    if (kick) {
        et_exporter_kick(ex);
    }
}


/*
 * A span is counted after its outcome: et_exporter_account() reads "spans"
 * first, and must find the outcome of every span it counts.
 */
static void
et_exporter_counted(et_exporter_t *ex)
{
    et_counter_add(&ex->counters->spans, 1, ex->conf.shared);
}


/* no room in the queue: the span is dropped, and counted */
static int
et_exporter_full(et_exporter_t *ex)
{
    et_counter_add(&ex->counters->dropped_queue_full, 1, ex->conf.shared);
    et_exporter_counted(ex);

    return ET_DECLINED;
}


/*
 * Several producer threads (httpd's threaded MPMs): the entry is encoded
 * on the stack, outside the queue's lock, which is then held only for a
 * copy.  Held for the encoding, a thread preempted in it made the others
 * sleep on the lock: each of those sleeps is two context switches.
 */
static __attribute__((noinline)) int
et_exporter_submit_copy(et_exporter_t *ex, const et_span_t *span)
{
    size_t    len;
    uint8_t  *p;
    uint8_t   buf[ET_EXPORTER_STACK_ENTRY];

    len = (size_t) (et_entry_write(ex->conf.stream, span, buf) - buf);

    p = et_queue_reserve(&ex->queue, len);

    if (p == NULL) {
        return et_exporter_full(ex);
    }

    et_copy(p, buf, len);

    et_exporter_commit(ex, p, len);
    et_exporter_counted(ex);

    return ET_OK;
}


int
et_exporter_submit(et_exporter_t *ex, const et_span_t *span)
{
    size_t    len;
    uint8_t  *p;

    /* a bound, not the exact size: the writer tells how much it used */
    len = et_entry_size_max(ex->conf.stream, span);

    if (ex->conf.shared && len <= ET_EXPORTER_STACK_ENTRY) {

        /*
         * encoded before the reservation: while Redis is away and the
         * queue stays full, a drop should not cost an encoding
         */
        if (et_queue_no_room(&ex->queue, len)) {
            return et_exporter_full(ex);
        }

        return et_exporter_submit_copy(ex, span);
    }

    /* one producer (or an entry too large for the stack): in place */

    p = et_queue_reserve(&ex->queue, len);

    if (p == NULL) {
        return et_exporter_full(ex);
    }

    len = (size_t) (et_entry_write(ex->conf.stream, span, p) - p);

    et_exporter_commit(ex, p, len);
    et_exporter_counted(ex);

    return ET_OK;
}


void
et_exporter_stop(et_exporter_t *ex)
{
    if (ex == NULL) {
        return;
    }

    __atomic_store_n(&ex->stop, 1, __ATOMIC_RELAXED);
    et_exporter_kick(ex);

    pthread_join(ex->thread, NULL);

    /* what was left in the queue is counted as dropped by now */
    et_metrics_gauges_zero(ex->counters);

    et_xcluster_free(ex->cluster);

    et_queue_free(&ex->queue);
    free(ex);
}


/*
 * A worker pinned to a CPU (worker_cpu_affinity) would pin its exporter
 * there too, and each batch would then take the CPU from the requests it
 * serves: the thread may run on any CPU instead.
 */
static void
et_exporter_unpin(void)
{
    long       i, n;
    cpu_set_t  set;

    n = sysconf(_SC_NPROCESSORS_ONLN);

    if (n <= 1) {
        return;
    }

    CPU_ZERO(&set);

    for (i = 0; i < n && i < CPU_SETSIZE; i++) {
        CPU_SET(i, &set);
    }

    (void) pthread_setaffinity_np(pthread_self(), sizeof(cpu_set_t), &set);
}


static void *
et_exporter_thread(void *data)
{
    et_exporter_t  *ex;

    ex = data;

    et_exporter_unpin();

    do {
        et_exporter_cycle(ex);
    } while (et_exporter_wait(ex) == 0);

    et_exporter_finish(ex);

    return NULL;
}


/*
 * Waits for the next cycle: the flush interval, a kick or stop.  The
 * futex sleeps only while the word is 0, so a kick that came before the
 * wait is not lost; the deadline is absolute, on CLOCK_MONOTONIC.
 * Returns 1 when the exporter is stopping.
 */
static int
et_exporter_wait(et_exporter_t *ex)
{
    uint64_t         now, until;
    struct timespec  ts;

    now = et_clock_mono_ms();
    until = now + ex->conf.flush_ms;

    if (ex->conn.fd == -1 && ex->connect_at > now && ex->connect_at < until) {
        until = ex->connect_at;
    }

    ts.tv_sec = (time_t) (until / 1000);
    ts.tv_nsec = (long) (until % 1000) * 1000000;

    /*
     * A producer that crossed the mark while a batch was being written
     * counted that batch as still queued, and did not kick: connected, the
     * thread does not sleep on as much as the mark.
     */
    while ((ex->conn.fd == -1 || et_queue_ready(&ex->queue) < ex->kick_bytes)
           && __atomic_load_n(&ex->wake, __ATOMIC_ACQUIRE) == 0)
    {
        /* EAGAIN: kicked meanwhile, EINTR: woken for nothing */
        if (syscall(SYS_futex, &ex->wake, FUTEX_WAIT_BITSET_PRIVATE, 0, &ts,
                    NULL, FUTEX_BITSET_MATCH_ANY) != 0
            && errno != EAGAIN && errno != EINTR)
        {
            break;
        }
    }

    /* an exchange: it reads the last kick, and so sees what came before */
    (void) __atomic_exchange_n(&ex->wake, 0, __ATOMIC_ACQ_REL);

    return __atomic_load_n(&ex->stop, __ATOMIC_RELAXED);
}


uint64_t
et_exporter_pending(et_exporter_t *ex)
{
    return et_queue_pending(&ex->queue);
}


static void
et_exporter_cycle(et_exporter_t *ex)
{
    uint64_t  now;

    if (ex->cluster) {
        et_xcluster_cycle(ex);
        return;
    }

    now = et_clock_mono_ms();

    if (ex->conn.fd == -1 && now >= ex->connect_at) {
        (void) et_exporter_connect(ex);
    }

    if (ex->conn.fd != -1
        && et_exporter_read(ex) == ET_OK
        && et_exporter_write(ex, 0) == ET_OK)
    {
        now = et_clock_mono_ms();

        if (ex->inflight && now - ex->progress_at >= ex->conf.io_timeout_ms)
        {
            et_exporter_broken(ex, "no reply for %u ms",
                               ex->conf.io_timeout_ms);
        }
    }

    et_exporter_queue_full(ex);
    et_exporter_account(ex);
    et_exporter_reports(ex, 0);
}


/* entries written and not acknowledged, seen by the status handler too */
void
et_exporter_inflight(et_exporter_t *ex, uint64_t n)
{
    ex->inflight = n;
    __atomic_store_n(&ex->counters->inflight, n, __ATOMIC_RELEASE);
}


/*
 * Spans counted and neither queued, exported nor dropped: lost without a
 * trace, by a fault in the accounting itself.  "spans" is read first, and
 * a producer counts a span after its outcome: every span read here has its
 * outcome seen below, so a span being submitted meanwhile can hide a loss
 * for a moment, never show one that is not there.  The thread's own
 * counters it reads exactly.
 */
void
et_exporter_account(et_exporter_t *ex)
{
    uint64_t        spans, done, lost;
    et_counters_t  *c;

    c = ex->counters;

    spans = __atomic_load_n(&c->spans, __ATOMIC_ACQUIRE) - ex->base_spans;

    done = __atomic_load_n(&c->dropped_queue_full, __ATOMIC_RELAXED)
           + __atomic_load_n(&c->exported, __ATOMIC_RELAXED)
           + __atomic_load_n(&c->dropped_redis_error, __ATOMIC_RELAXED)
           - ex->base_done
           + et_exporter_pending(ex) + ex->inflight;

    if (spans > done && spans - done > ex->missing) {
        lost = spans - done - ex->missing;
        ex->missing = spans - done;
        et_exporter_trouble(ex, ET_TROUBLE_ACCOUNT, 1, lost, NULL);
    }
}


/* drops on the request side are reported from the thread: it never logs */
void
et_exporter_queue_full(et_exporter_t *ex)
{
    uint64_t  full;

    full = __atomic_load_n(&ex->counters->dropped_queue_full,
                           __ATOMIC_RELAXED);

    if (full != ex->full_seen) {
        et_exporter_trouble(ex, ET_TROUBLE_QUEUE, 1, full - ex->full_seen,
                            NULL);
        ex->full_seen = full;
    }
}


/*
 * At stop: flushes the queue and waits for the replies within
 * stop_timeout_ms, with one connect attempt if there is no connection;
 * what remains is lost, and the line that says so tells why: Redis
 * unreachable or the connection broken (nothing was waited for then), or
 * no answer within the time it really waited.
 */
static void
et_exporter_finish(et_exporter_t *ex)
{
    int            rc, size, broken;
    uint64_t       now, start, deadline, lost, written;
    struct pollfd  pfd;

    if (ex->cluster) {
        et_xcluster_finish(ex);
        return;
    }

    start = et_clock_mono_ms();
    deadline = start + ex->conf.stop_timeout_ms;
    broken = 0;

    if (ex->conn.fd == -1 && et_exporter_pending(ex)) {
        (void) et_exporter_connect(ex);
    }

    if (ex->conn.fd != -1) {
        /* the last replies are waited for: each one counts now */
        size = 1;
        (void) setsockopt(ex->conn.fd, SOL_SOCKET, SO_RCVLOWAT, &size,
                          sizeof(int));
    }

    while (ex->conn.fd != -1 && (et_exporter_pending(ex) || ex->inflight)) {

        if (et_exporter_read(ex) != ET_OK) {
            broken = 1;
            break;
        }

        rc = et_exporter_write(ex, deadline);

        if (rc == ET_ERROR) {
            broken = 1;
            break;
        }

        if (et_exporter_pending(ex) == 0 && ex->inflight == 0) {
            break;
        }

        now = et_clock_mono_ms();

        if (rc == ET_DECLINED || now >= deadline) {
            break;
        }

        if (now - ex->progress_at >= ex->conf.io_timeout_ms) {
            et_exporter_broken(ex, "no reply for %u ms",
                               ex->conf.io_timeout_ms);
            broken = 1;
            break;
        }

        pfd.fd = ex->conn.fd;
        pfd.events = POLLIN;
        pfd.revents = 0;

        (void) poll(&pfd, 1, (int) (deadline - now < ET_EXPORTER_POLL_MS
                                    ? deadline - now : ET_EXPORTER_POLL_MS));
    }

    /* the lines held back by the rate limit, as things were */
    et_exporter_queue_full(ex);
    et_exporter_account(ex);
    et_exporter_reports(ex, 1);

    written = ex->inflight;
    lost = et_exporter_pending(ex) + written;

    if (lost == 0) {
        et_exporter_close(ex);
        return;
    }

    et_counter_add(&ex->counters->dropped_redis_error, lost, 0);
    et_exporter_inflight(ex, 0);

    if (broken) {
        et_exporter_log(ex, ET_LOG_ERR,
                        "exporter stopping: %llu span%s dropped at exit: "
                        "the connection to redis at %s broke (%s)",
                        (unsigned long long) lost, et_plural(lost), ex->addr,
                        ex->trouble[ET_TROUBLE_IO].detail);

    } else if (ex->conn.fd == -1) {
        et_exporter_log(ex, ET_LOG_ERR,
                        "exporter stopping: %llu span%s dropped at exit: "
                        "redis at %s unreachable (%s)",
                        (unsigned long long) lost, et_plural(lost), ex->addr,
                        ex->trouble[ET_TROUBLE_CONNECT].detail);

    } else {
        et_exporter_log(ex, ET_LOG_ERR,
                        "exporter stopping: %llu span%s dropped at exit: "
                        "not acknowledged by redis at %s within the flush "
                        "timeout (waited %llu ms; %llu of them were "
                        "written, redis may still store those)",
                        (unsigned long long) lost, et_plural(lost), ex->addr,
                        (unsigned long long) (et_clock_mono_ms() - start),
                        (unsigned long long) written);
    }

    et_exporter_close(ex);
}


static int
et_exporter_connect(et_exporter_t *ex)
{
    int              fd, size;
    uint64_t         now;
    char             err[ET_EXPORTER_DETAIL];

    /* blocking: host names are resolved here, in the thread */

    if (et_conn_open(&ex->conn, &ex->conf.redis, ex->conf.redis.host,
                     ex->conf.redis.port,
                     ex->conf.redis.tls ? ex->conf.tls : NULL,
                     ex->conf.connect_timeout_ms, err, sizeof(err))
        != ET_OK)
    {
        goto failed;
    }

    fd = ex->conn.fd;

    /* a batch should fit, so that it rarely has to wait mid-way */
    size = ET_EXPORTER_SNDBUF;
    (void) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(int));

    /* see et_exporter_write() */
    size = ET_EXPORTER_RCVLOWAT;
    (void) setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &size, sizeof(int));

    et_resp_init(&ex->resp);
    et_exporter_inflight(ex, 0);
    ex->connects++;

    now = et_clock_mono_ms();
    ex->progress_at = now;
    ex->connected_at = now;

    __atomic_store_n(&ex->counters->redis_connected, 1, __ATOMIC_RELAXED);

    if (ex->connects > 1) {
        et_counter_add(&ex->counters->redis_reconnects, 1, 0);
        et_exporter_trouble(ex, ET_TROUBLE_RECONNECT, 1, 0, NULL);

    } else {
        et_exporter_log(ex, ET_LOG_INFO, "connected to redis at %s",
                        ex->addr);
    }

    /* the connect failures before this one are reported now */
    et_exporter_report(ex, ET_TROUBLE_CONNECT, now, 1);

    return ET_OK;

failed:

    et_counter_add(&ex->counters->redis_errors, 1, 0);

    now = et_clock_mono_ms();
    ex->connect_at = now + ex->backoff_ms;

    et_exporter_trouble(ex, ET_TROUBLE_CONNECT, 1, 0, err);

    ex->backoff_ms *= 2;

    if (ex->backoff_ms > ET_BACKOFF_MAX_MS) {
        ex->backoff_ms = ET_BACKOFF_MAX_MS;
    }

    return ET_ERROR;
}


/*
 * The connection is unusable: what was written and not acknowledged is
 * lost, and so is a partially written entry (sending its rest on a new
 * connection would be garbage, sending it whole again could store it
 * twice).
 */
static void
et_exporter_broken(et_exporter_t *ex, const char *fmt, ...)
{
    va_list   args;
    uint64_t  lost, now;
    char      detail[ET_EXPORTER_DETAIL];

    va_start(args, fmt);
    vsnprintf(detail, sizeof(detail), fmt, args);
    va_end(args);

    lost = ex->inflight + et_queue_skip_partial(&ex->queue);
    et_exporter_inflight(ex, 0);

    if (lost) {
        et_counter_add(&ex->counters->dropped_redis_error, lost, 0);
    }

    et_counter_add(&ex->counters->redis_errors, 1, 0);

    et_exporter_close(ex);

    /*
     * A connection that had been up a while starts a new backoff; one
     * that breaks as soon as it is made (refused after connect) doubles it.
     */

    now = et_clock_mono_ms();

    if (now - ex->connected_at >= ex->backoff_ms) {
        ex->backoff_ms = ET_BACKOFF_MIN_MS;
    }

    ex->connect_at = now + ex->backoff_ms;

    et_exporter_trouble(ex, ET_TROUBLE_IO, 1, lost, detail);

    ex->backoff_ms *= 2;

    if (ex->backoff_ms > ET_BACKOFF_MAX_MS) {
        ex->backoff_ms = ET_BACKOFF_MAX_MS;
    }
}


static void
et_exporter_close(et_exporter_t *ex)
{
    et_conn_close(&ex->conn);

    __atomic_store_n(&ex->counters->redis_connected, 0, __ATOMIC_RELAXED);
}


/*
 * Reads and counts every reply available now, without blocking.  On
 * ET_ERROR the connection was found broken and is closed.
 */
static int
et_exporter_read(et_exporter_t *ex)
{
    int          rc;
    ssize_t      n;
    uint64_t     ok, errors, before, got;
    const char  *bad;
    char         err[ET_EXPORTER_DETAIL];

    ok = 0;
    errors = 0;
    rc = ET_OK;

    for ( ;; ) {
        n = et_conn_recv(&ex->conn, ex->rbuf, ET_EXPORTER_RBUF, err,
                         sizeof(err));

        if (n == ET_AGAIN) {
            break;
        }

        if (n == ET_ERROR) {
            et_exporter_broken(ex, "%s", err);
            rc = ET_ERROR;
            goto done;
        }

        if (n == 0) {
            et_exporter_broken(ex, "connection closed by redis");
            rc = ET_ERROR;
            goto done;
        }

        before = ok + errors;
        bad = NULL;

        if (et_resp_scan(&ex->resp, ex->rbuf, (size_t) n, &ok, &errors)
            != ET_OK)
        {
            bad = "protocol error: not a reply";
        }

        got = ok + errors - before;

        if (got > ex->inflight) {
            ok -= got - ex->inflight;
            got = ex->inflight;
            bad = "protocol error: a reply to nothing";
        }

        /* replies before a breakage count; the rest in flight is lost */
        et_exporter_inflight(ex, ex->inflight - got);

        if (bad) {
            et_exporter_broken(ex, "%s", bad);
            rc = ET_ERROR;
            goto done;
        }

        if ((size_t) n < ET_EXPORTER_RBUF) {
            /* most likely drained: spare the read that says so */
            break;
        }
    }

done:

    /* replies read before a breakage still count */

    if (ok) {
        et_counter_add(&ex->counters->exported, ok, 0);

        /* the connection works: the next outage starts a new backoff */
        ex->backoff_ms = ET_BACKOFF_MIN_MS;
    }

    if (errors) {
        et_counter_add(&ex->counters->dropped_redis_error, errors, 0);
        et_counter_add(&ex->counters->redis_errors, errors, 0);
        et_exporter_trouble(ex, ET_TROUBLE_REPLY, errors, errors,
                            ex->resp.error);
    }

    if (ok || errors) {
        ex->progress_at = et_clock_mono_ms();
    }

    return rc;
}


/*
 * Writes the entries queued now, in one sendmsg() unless the socket fills
 * up; then it waits for room (reading replies meanwhile) in slices, so that
 * stop is noticed.  Returns ET_OK when everything was written, ET_ERROR
 * when the connection broke (it is closed), ET_DECLINED when stopped by
 * stop or by "deadline" (monotonic ms, 0: none).
 */
static int
et_exporter_write(et_exporter_t *ex, uint64_t deadline)
{
    int            niov, timeout, writable;
    short          want;
    size_t         left, n;
    ssize_t        w;
    uint64_t       now, idle;
    struct iovec   iov[2];
    struct pollfd  pfd;
    char           err[ET_EXPORTER_DETAIL];

    left = et_queue_peek(&ex->queue, iov, &niov);

    writable = 1;
    want = POLLOUT;

    while (left) {

        if (writable) {
            w = et_conn_send(&ex->conn, iov, niov, err, sizeof(err));

            if (w == ET_ERROR) {
                et_exporter_broken(ex, "%s", err);
                return ET_ERROR;
            }

            if (w > 0) {
                et_exporter_inflight(ex, ex->inflight
                                     + et_queue_consume(&ex->queue,
                                                        (size_t) w));
                ex->progress_at = et_clock_mono_ms();
                left -= (size_t) w;

                if (left == 0) {
                    break;
                }

                n = (size_t) w;

                while (n >= iov[0].iov_len) {
                    n -= iov[0].iov_len;
                    iov[0] = iov[1];
                    niov--;
                }

                iov[0].iov_base = (uint8_t *) iov[0].iov_base + n;
                iov[0].iov_len -= n;
            }

            /*
             * a short write: the socket is full until poll() says not;
             * TLS may wait for a record to read first (a read meanwhile
             * sets its own event: this one is the write's)
             */
            writable = 0;
            want = ex->conn.events;
        }

        now = et_clock_mono_ms();
        idle = now - ex->progress_at;

        if (idle >= ex->conf.io_timeout_ms) {
            et_exporter_broken(ex, "could not write for %u ms",
                               ex->conf.io_timeout_ms);
            return ET_ERROR;
        }

        if ((deadline && now >= deadline)
            || (deadline == 0 && __atomic_load_n(&ex->stop, __ATOMIC_RELAXED)))
        {
            return ET_DECLINED;
        }

        timeout = ET_EXPORTER_POLL_MS;

        if (ex->conf.io_timeout_ms - idle < (uint64_t) timeout) {
            timeout = (int) (ex->conf.io_timeout_ms - idle);
        }

        if (deadline && deadline - now < (uint64_t) timeout) {
            timeout = (int) (deadline - now);
        }

        /*
         * Replies are read meanwhile, but only once many have piled up
         * (SO_RCVLOWAT): waking up for every few replies Redis sends as it
         * works through the batch is what makes a sender expensive.
         */

        pfd.fd = ex->conn.fd;
        pfd.events = POLLIN | want;
        pfd.revents = 0;

        if (poll(&pfd, 1, timeout) <= 0) {
            continue;
        }

        if ((pfd.revents & (POLLIN | POLLERR | POLLHUP))
            && et_exporter_read(ex) != ET_OK)
        {
            return ET_ERROR;
        }

        if (pfd.revents & want) {
            writable = 1;
        }
    }

    return ET_OK;
}


/* records a trouble; logs it now unless a line was written recently */
static void
et_exporter_trouble(et_exporter_t *ex, int kind, uint64_t events,
    uint64_t lost, const char *detail)
{
    et_trouble_t  *t;

    t = &ex->trouble[kind];

    t->events += events;
    t->lost += lost;

    if (detail) {
        snprintf(t->detail, sizeof(t->detail), "%.*s",
                 (int) sizeof(t->detail) - 1, detail);
    }

    et_exporter_report(ex, kind, et_clock_mono_ms(), 0);
}


static void
et_exporter_report(et_exporter_t *ex, int kind, uint64_t now, int force)
{
    uint64_t       drops;
    et_trouble_t  *t;

    t = &ex->trouble[kind];

    if (t->events == 0) {
        return;
    }

    if (!force && t->logged && now - t->last_ms < ET_EXPORTER_LOG_MS) {
        return;
    }

    switch (kind) {

    case ET_TROUBLE_CONNECT:

        /* while disconnected, spans are lost when the queue fills up */
        drops = __atomic_load_n(&ex->counters->dropped_queue_full,
                                __ATOMIC_RELAXED)
                + __atomic_load_n(&ex->counters->dropped_redis_error,
                                  __ATOMIC_RELAXED);

        et_exporter_log(ex, ET_LOG_ERR,
                        "cannot connect to redis at %s: %s "
                        "(%llu failed attempt%s, %llu span%s lost since the "
                        "last report; %llu queued)",
                        ex->addr, t->detail, (unsigned long long) t->events,
                        et_plural(t->events),
                        (unsigned long long) (drops - t->mark),
                        et_plural(drops - t->mark),
                        (unsigned long long) et_exporter_pending(ex));

        t->mark = drops;
        break;

    case ET_TROUBLE_IO:
        et_exporter_log(ex, ET_LOG_ERR,
                        "connection to redis at %s lost: %s "
                        "(%llu time%s, %llu span%s lost since the last "
                        "report)",
                        ex->addr, t->detail, (unsigned long long) t->events,
                        et_plural(t->events), (unsigned long long) t->lost,
                        et_plural(t->lost));
        break;

    case ET_TROUBLE_REPLY:
        et_exporter_log(ex, ET_LOG_ERR,
                        "redis at %s refused spans: \"%s\" "
                        "(%llu error repl%s, %llu span%s lost since the "
                        "last report)",
                        ex->addr, t->detail, (unsigned long long) t->events,
                        t->events == 1 ? "y" : "ies",
                        (unsigned long long) t->lost, et_plural(t->lost));
        break;

    case ET_TROUBLE_QUEUE:
        et_exporter_log(ex, ET_LOG_WARN,
                        "queue full (%zu bytes): %llu span%s "
                        "lost since the last report",
                        ex->conf.queue_size, (unsigned long long) t->lost,
                        et_plural(t->lost));
        break;

    case ET_TROUBLE_ACCOUNT:
        et_exporter_log(ex, ET_LOG_ERR,
                        "%llu span%s counted but neither exported, dropped "
                        "nor queued since the last report (%llu in all): "
                        "the counters no longer add up",
                        (unsigned long long) t->lost, et_plural(t->lost),
                        (unsigned long long) ex->missing);
        break;

    default: /* ET_TROUBLE_RECONNECT */
        et_exporter_log(ex, ET_LOG_NOTICE,
                        "connected to redis at %s again "
                        "(%llu reconnect%s since the last report)",
                        ex->addr, (unsigned long long) t->events,
                        et_plural(t->events));
        break;
    }

    t->events = 0;
    t->lost = 0;
    t->last_ms = now;
    t->logged = 1;
}


/* the troubles held back by the rate limit, once their second is over */
void
et_exporter_reports(et_exporter_t *ex, int force)
{
    int       kind;
    uint64_t  now;

    now = et_clock_mono_ms();

    for (kind = 0; kind < ET_TROUBLE_N; kind++) {
        et_exporter_report(ex, kind, now, force);
    }
}


void
et_exporter_log(et_exporter_t *ex, int level, const char *fmt, ...)
{
    int      n;
    char     line[ET_EXPORTER_LINE];
    va_list  args;

    if (ex->conf.log == NULL) {
        return;
    }

    va_start(args, fmt);
    n = vsnprintf(line, sizeof(line), fmt, args);
    va_end(args);

    if (n < 0) {
        return;
    }

    if ((size_t) n >= sizeof(line)) {
        n = sizeof(line) - 1;
    }

    ex->conf.log(ex->conf.log_data, level, line, (size_t) n);
}
