/*
 * Unit tests: et_exporter.c, against real Redis servers started by
 * t/unit/exporter.t:
 *
 *   ET_REDIS_PORT       a plain redis-server
 *   ET_REDIS_UNIX       the same server's unix socket
 *   ET_REDIS_AUTH_PORT  one started with --requirepass ET_REDIS_PASSWORD
 *   ET_REDIS_DEAD_PORT  a port nobody listens on; this test starts its own
 *                       redis-server there (ET_REDIS_SERVER, ET_REDIS_DIR)
 *                       to check that the exporter resumes, and stops it
 *
 * plus in-process fake servers that never reply or reply garbage.  Every
 * test ends with the counters' invariant, checked exactly:
 *
 *   spans == exported + dropped_queue_full + dropped_redis_error
 *
 * With "bench" as argument, it measures the process CPU time per span
 * instead (ET_BENCH_SPANS spans, 200000 by default, paced at ~50k/s).
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "et_core.h"
#include "et_clock.h"
#include "et_id.h"
#include "et_span.h"
#include "et_stream.h"
#include "et_metrics.h"
#include "et_exporter.h"
#include "et_tls.h"
#include "tap.h"


/* ------------------------------------------------------------------------
 * Spans: a realistic server span, about 600 bytes of RESP.
 */

static et_str_t  service;
static uint8_t   service_buf[ET_FIELD_RESP_SIZE(12, 5)];

#define A_STR(k, v)  { &k, ET_ATTR_STRING, et_string(v), 0 }
#define A_INT(k, v)  { &k, ET_ATTR_INT, et_null_string, v }

static const et_attr_t  attrs[] = {
    A_STR(et_key_http_request_method, "GET"),
    A_STR(et_key_url_path, "/api/v1/items/42"),
    A_STR(et_key_url_query, "expand=owner&limit=10"),
    A_STR(et_key_url_scheme, "http"),
    A_STR(et_key_server_address, "gateway.example.com"),
    A_INT(et_key_server_port, 80),
    A_STR(et_key_client_address, "192.0.2.17"),
    A_STR(et_key_user_agent_original,
          "Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101"),
    A_STR(et_key_network_protocol_version, "1.1"),
    A_INT(et_key_http_response_status_code, 200),
};


static void
make_span(et_span_t *s, uint64_t i)
{
    memset(s, 0, sizeof(et_span_t));

    memcpy(s->trace_id, &i, sizeof(i));
    s->trace_id[15] = 0xab;
    memcpy(s->span_id, &i, sizeof(i));
    s->span_id[7] ^= 0x5a;
    s->parent_id[0] = 1;
    s->has_parent = 1;
    s->kind = ET_SPAN_SERVER;
    s->status = ET_STATUS_UNSET;
    s->start_ns = 1700000000000000000ULL + i * 1000;
    s->end_ns = s->start_ns + 123456;
    s->name.data = (const uint8_t *) "GET /api/v1/items/{id}";
    s->name.len = sizeof("GET /api/v1/items/{id}") - 1;
    s->service = &service;
    s->attrs = attrs;
    s->nattrs = sizeof(attrs) / sizeof(attrs[0]);
}


/* ------------------------------------------------------------------------
 * The log: every line kept, to count them.
 */

#define LOG_MAX  1024

static pthread_mutex_t  log_lock = PTHREAD_MUTEX_INITIALIZER;
static char            *log_lines[LOG_MAX];
static int              log_n;


static void
log_cb(void *data, int level, const char *msg, size_t len)
{
    char  *line;

    (void) data;
    (void) level;

    line = malloc(len + 1);
    if (line == NULL) {
        return;
    }

    memcpy(line, msg, len);
    line[len] = '\0';

    if (getenv("ET_TEST_VERBOSE")) {
        printf("# log: %s\n", line);
    }

    pthread_mutex_lock(&log_lock);

    if (log_n < LOG_MAX) {
        log_lines[log_n++] = line;

    } else {
        free(line);
    }

    pthread_mutex_unlock(&log_lock);
}


static void
log_clear(void)
{
    int  i;

    pthread_mutex_lock(&log_lock);

    for (i = 0; i < log_n; i++) {
        free(log_lines[i]);
    }

    log_n = 0;

    pthread_mutex_unlock(&log_lock);
}


/* the lines containing "s"; the last one is printed as a diagnostic */
static int
log_count(const char *s)
{
    int  i, n;

    n = 0;

    pthread_mutex_lock(&log_lock);

    for (i = 0; i < log_n; i++) {
        if (strstr(log_lines[i], s)) {
            n++;

            if (n == 1) {
                printf("#   log: %s\n", log_lines[i]);
            }
        }
    }

    pthread_mutex_unlock(&log_lock);

    return n;
}


/* a line is written just after the counters move: wait for it */
static int
wait_log(const char *s, unsigned timeout_ms)
{
    int       n;
    uint64_t  start;

    start = et_clock_mono_ms();

    for ( ;; ) {
        pthread_mutex_lock(&log_lock);

        for (n = 0; n < log_n; n++) {
            if (strstr(log_lines[n], s)) {
                break;
            }
        }

        n = (n < log_n);

        pthread_mutex_unlock(&log_lock);

        if (n || et_clock_mono_ms() - start >= timeout_ms) {
            return n ? log_count(s) : 0;
        }

        usleep(5000);
    }
}


/*
 * The sum of the numbers following "after" in the lines containing "s":
 * what the rate-limited lines report adds up.
 */
static uint64_t
log_sum(const char *s, const char *after)
{
    int        i;
    char      *p;
    uint64_t   sum;

    sum = 0;

    pthread_mutex_lock(&log_lock);

    for (i = 0; i < log_n; i++) {
        if (strstr(log_lines[i], s) == NULL) {
            continue;
        }

        p = strstr(log_lines[i], after);

        if (p) {
            sum += strtoull(p + strlen(after), NULL, 10);
        }
    }

    pthread_mutex_unlock(&log_lock);

    return sum;
}


/* ------------------------------------------------------------------------
 * Helpers.
 */

/* a TLS context on ET_TLS_DIR's CA file "ca"; NULL (and a failed test) */
static et_tls_ctx_t *
tls_ctx(const char *ca)
{
    char            path[512], err[256];
    const char     *dir;
    et_tls_ctx_t   *ctx;
    et_tls_conf_t   tc;

    dir = getenv("ET_TLS_DIR");
    snprintf(path, sizeof(path), "%s/%s", dir ? dir : ".", ca);

    memset(&tc, 0, sizeof(tc));
    tc.ca = path;

    ctx = et_tls_ctx_create(&tc, err, sizeof(err));

    if (ctx == NULL) {
        tap_ok(0, "TLS context on %s: %s", path, err);
    }

    return ctx;
}


static int
env_int(const char *name)
{
    const char  *v;

    v = getenv(name);

    return v ? atoi(v) : 0;
}


static void
sleep_ms(unsigned ms)
{
    struct timespec  ts;

    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long) (ms % 1000) * 1000000;

    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
        /* void */
    }
}


static uint64_t
now_us(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}


static uint64_t
get(const uint64_t *c)
{
    return __atomic_load_n(c, __ATOMIC_RELAXED);
}


/* exported + dropped, both reasons */
static uint64_t
settled(et_counters_t *c)
{
    return get(&c->exported) + get(&c->dropped_queue_full)
           + get(&c->dropped_redis_error);
}


/* waits until every span is exported or dropped; returns the ms waited */
static long
wait_settled(et_counters_t *c, unsigned timeout_ms)
{
    uint64_t  start;

    start = et_clock_mono_ms();

    while (settled(c) != get(&c->spans)) {
        if (et_clock_mono_ms() - start >= timeout_ms) {
            return -1;
        }

        sleep_ms(5);
    }

    return (long) (et_clock_mono_ms() - start);
}


static int
wait_value(const uint64_t *c, uint64_t want, unsigned timeout_ms)
{
    uint64_t  start;

    start = et_clock_mono_ms();

    while (get(c) < want) {
        if (et_clock_mono_ms() - start >= timeout_ms) {
            return 0;
        }

        sleep_ms(5);
    }

    return 1;
}


/* the queued gauge as the status handler reads it: counted by the queue */
static uint64_t
queued_gauge(et_counters_t *c)
{
    return get(&c->queue_in) - get(&c->queue_out) + get(&c->inflight);
}


/*
 * At rest, with the queued gauge the queue counts: a span counted and
 * then lost breaks it, and the exporter says so in a line.
 */
static void
check_invariant(const char *name, et_counters_t *c)
{
    uint64_t  spans, done;

    spans = get(&c->spans);
    done = settled(c) + queued_gauge(c);

    tap_ok(spans == done, "%s: spans %llu == exported %llu + queue_full "
           "%llu + redis_error %llu + queued %llu", name,
           (unsigned long long) spans,
           (unsigned long long) get(&c->exported),
           (unsigned long long) get(&c->dropped_queue_full),
           (unsigned long long) get(&c->dropped_redis_error),
           (unsigned long long) queued_gauge(c));
    tap_is_int(log_count("no longer add up"), 0,
               "%s: no span went missing", name);
}


static void
conf_init(et_exporter_conf_t *conf, const et_stream_t *st, int port)
{
    memset(conf, 0, sizeof(et_exporter_conf_t));

    snprintf(conf->redis.host, sizeof(conf->redis.host), "127.0.0.1");
    conf->redis.port = port;
    conf->stream = st;
    conf->queue_size = ET_QUEUE_SIZE_DEFAULT;
    conf->flush_ms = ET_FLUSH_MS_DEFAULT;
    conf->connect_timeout_ms = ET_CONNECT_TIMEOUT_MS_DEFAULT;
    conf->io_timeout_ms = ET_IO_TIMEOUT_MS_DEFAULT;
    conf->stop_timeout_ms = ET_STOP_TIMEOUT_MS_DEFAULT;
    conf->log = log_cb;
}


static void
stream_init(et_stream_t *st, uint8_t *buf, const char *key)
{
    if (et_stream_init(st, buf, (const uint8_t *) key, strlen(key), 0, 1,
                       ET_VALUE_MAX_DEFAULT)
        != ET_OK)
    {
        printf("Bail out! et_stream_init\n");
        exit(1);
    }
}


/* a blocking client for checks; NULL (and a failed test) if unreachable */
static redisContext *
client(int port, const char *password, int db)
{
    redisReply    *r;
    redisContext  *c;

    c = redisConnect("127.0.0.1", port);

    if (c == NULL || c->err) {
        tap_ok(0, "client: connect to port %d", port);
        if (c) {
            redisFree(c);
        }

        return NULL;
    }

    if (password) {
        r = redisCommand(c, "AUTH %s", password);
        if (r) {
            freeReplyObject(r);
        }
    }

    if (db) {
        r = redisCommand(c, "SELECT %d", db);
        if (r) {
            freeReplyObject(r);
        }
    }

    return c;
}


static long long
command_int(redisContext *c, const char *fmt, const char *arg)
{
    long long    v;
    redisReply  *r;

    if (c == NULL) {
        return -1;
    }

    r = redisCommand(c, fmt, arg);

    if (r == NULL) {
        return -1;
    }

    v = (r->type == REDIS_REPLY_INTEGER) ? r->integer : -2;
    freeReplyObject(r);

    return v;
}


static long long
xlen(redisContext *c, const char *key)
{
    return command_int(c, "XLEN %s", key);
}


static void
del(redisContext *c, const char *key)
{
    (void) command_int(c, "DEL %s", key);
}


/* waits until the stream holds "want" entries */
static int
wait_xlen(redisContext *c, const char *key, long long want,
    unsigned timeout_ms)
{
    uint64_t  start;

    start = et_clock_mono_ms();

    while (xlen(c, key) < want) {
        if (et_clock_mono_ms() - start >= timeout_ms) {
            return 0;
        }

        sleep_ms(5);
    }

    return 1;
}


static void
submit_n(et_exporter_t *ex, uint64_t from, uint64_t n)
{
    uint64_t   i;
    et_span_t  span;

    for (i = from; i < from + n; i++) {
        make_span(&span, i);
        (void) et_exporter_submit(ex, &span);
    }
}


/* ------------------------------------------------------------------------
 * A redis-server of our own, on the dead port, to see the exporter resume.
 */

static pid_t
redis_start(int port)
{
    int           fd;
    char          p[16];
    pid_t         pid;
    const char   *bin, *dir;
    redisContext *c;
    uint64_t      start;

    bin = getenv("ET_REDIS_SERVER");
    dir = getenv("ET_REDIS_DIR");
    snprintf(p, sizeof(p), "%d", port);

    pid = fork();

    if (pid == 0) {
        /* never outlives this test, even if it crashes */
        prctl(PR_SET_PDEATHSIG, SIGKILL);

        fd = open("/dev/null", O_WRONLY);
        if (fd != -1) {
            dup2(fd, 1);
            dup2(fd, 2);
        }

        execlp(bin ? bin : "redis-server", "redis-server", "--port", p,
               "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
               "--dir", dir ? dir : "/tmp", "--daemonize", "no",
               (char *) NULL);
        _exit(127);
    }

    if (pid == -1) {
        return -1;
    }

    start = et_clock_mono_ms();

    while (et_clock_mono_ms() - start < 10000) {
        c = redisConnect("127.0.0.1", port);

        if (c && !c->err) {
            redisFree(c);
            return pid;
        }

        if (c) {
            redisFree(c);
        }

        if (waitpid(pid, NULL, WNOHANG) == pid) {
            return -1;
        }

        sleep_ms(20);
    }

    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);

    return -1;
}


static void
redis_kill(pid_t pid)
{
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
}


/* ------------------------------------------------------------------------
 * A fake server: accepts, reads everything, and either never replies or
 * replies garbage.
 */

#define FAKE_SILENT   0
#define FAKE_GARBAGE  1
#define FAKE_HOLD     2     /* stops reading at hold 1, at 2 replies 64 KB */

/* one reply of 64 KB exactly, the size of the exporter's reads */
#define FAKE_REPLY    65536

typedef struct {
    int        lfd;
    int        port;
    int        mode;
    int        accepted;
    int        stop;
    int        hold;
    uint64_t   bytes;         /* read so far */
    pthread_t  thread;
} fake_t;


/* FAKE_HOLD's reply: a bulk string, one success for the exporter */
static void
fake_reply(int fd)
{
    char    *r;
    size_t   len;

    r = malloc(FAKE_REPLY);
    if (r == NULL) {
        return;
    }

    len = (size_t) sprintf(r, "$%d\r\n", FAKE_REPLY - 8 - 2);
    memset(r + len, 'x', FAKE_REPLY - len - 2);
    memcpy(r + FAKE_REPLY - 2, "\r\n", 2);

    (void) write(fd, r, FAKE_REPLY);
    free(r);
}


static void *
fake_serve(void *data)
{
    int              fd;
    char             buf[65536];
    ssize_t          n;
    fake_t          *f;
    struct timeval   tv;

    f = data;

    while (!__atomic_load_n(&f->stop, __ATOMIC_RELAXED)) {
        fd = accept(f->lfd, NULL, NULL);

        if (fd == -1) {
            continue;
        }

        __atomic_add_fetch(&f->accepted, 1, __ATOMIC_RELAXED);

        /* the listener's timeout is inherited: reads here block */
        memset(&tv, 0, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));

        for ( ;; ) {
            if (f->mode == FAKE_HOLD) {
                while (__atomic_load_n(&f->hold, __ATOMIC_ACQUIRE) == 1) {
                    sleep_ms(5);
                }

                if (__atomic_load_n(&f->hold, __ATOMIC_ACQUIRE) == 2) {
                    /* read alone, before the socket has room again */
                    fake_reply(fd);
                    sleep_ms(200);
                    __atomic_store_n(&f->hold, 3, __ATOMIC_RELEASE);
                }
            }

            n = read(fd, buf, sizeof(buf));

            if (n <= 0) {
                break;
            }

            __atomic_add_fetch(&f->bytes, (uint64_t) n, __ATOMIC_RELAXED);

            if (f->mode == FAKE_GARBAGE) {
                (void) write(fd, "?garbage\r\n", 10);
            }
        }

        close(fd);
    }

    return NULL;
}


static int
fake_start(fake_t *f, int mode)
{
    int                 one;
    socklen_t           len;
    struct timeval      tv;
    struct sockaddr_in  sin;

    memset(f, 0, sizeof(fake_t));
    f->mode = mode;

    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    one = 1;
    setsockopt(f->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(int));

    /* accept() wakes up now and then to see "stop" */
    tv.tv_sec = 0;
    tv.tv_usec = 100000;
    setsockopt(f->lfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    if (bind(f->lfd, (struct sockaddr *) &sin, sizeof(sin)) != 0
        || listen(f->lfd, 16) != 0)
    {
        close(f->lfd);
        return -1;
    }

    len = sizeof(sin);
    getsockname(f->lfd, (struct sockaddr *) &sin, &len);
    f->port = ntohs(sin.sin_port);

    return pthread_create(&f->thread, NULL, fake_serve, f);
}


static void
fake_stop(fake_t *f)
{
    __atomic_store_n(&f->stop, 1, __ATOMIC_RELAXED);
    shutdown(f->lfd, SHUT_RDWR);
    pthread_join(f->thread, NULL);
    close(f->lfd);
}


/*
 * A fake server of "mode" and an exporter writing to it, with these
 * timeouts (0: the default); NULL, after a failed test, when either does
 * not start.  The log is cleared.
 */
static et_exporter_t *
fake_exporter(fake_t *f, int mode, const char *name, et_stream_t *st,
    uint8_t *buf, et_exporter_conf_t *conf, et_counters_t *cnt,
    unsigned io_timeout_ms, unsigned stop_timeout_ms)
{
    et_exporter_t  *ex;

    if (fake_start(f, mode) != 0) {
        tap_ok(0, "%s: fake server", name);
        return NULL;
    }

    log_clear();

    stream_init(st, buf, "et:fake");
    conf_init(conf, st, f->port);

    if (io_timeout_ms) {
        conf->io_timeout_ms = io_timeout_ms;
    }

    if (stop_timeout_ms) {
        conf->stop_timeout_ms = stop_timeout_ms;
    }

    memset(cnt, 0, sizeof(et_counters_t));

    ex = et_exporter_start(conf, cnt);

    if (ex == NULL) {
        tap_ok(0, "%s: started", name);
        fake_stop(f);
    }

    return ex;
}


/* ------------------------------------------------------------------------
 * The tests.
 */

static void
test_export(int port)
{
    int                  failed;
    long                 ms;
    uint64_t             i;
    et_span_t            span;
    redisReply          *r;
    redisContext        *c;
    et_stream_t          st;
    et_exporter_t       *ex;
    et_counters_t        cnt;
    et_exporter_conf_t   conf;
    uint8_t              buf[ET_STREAM_PREFIX_SIZE(64)];

    c = client(port, NULL, 0);
    del(c, "et:export");

    stream_init(&st, buf, "et:export");
    conf_init(&conf, &st, port);
    memset(&cnt, 0, sizeof(cnt));

    ex = et_exporter_start(&conf, &cnt);
    tap_ok(ex != NULL, "export: started");

    if (ex == NULL) {
        redisFree(c);
        return;
    }

    tap_ok(wait_value(&cnt.redis_connected, 1, 1000),
           "export: connects at start");

    failed = 0;

    for (i = 0; i < 5000; i++) {
        make_span(&span, i);
        failed += (et_exporter_submit(ex, &span) != ET_OK);
    }

    tap_is_int(failed, 0, "export: every submit returns ET_OK");

    ms = wait_settled(&cnt, 1000);
    tap_ok(ms >= 0, "export: 5000 spans acknowledged within 1 s (%ld ms)",
           ms);
    tap_is_int(get(&cnt.exported), 5000, "export: exported counter");
    tap_is_int(xlen(c, "et:export"), 5000, "export: XLEN");
    tap_is_int(get(&cnt.spans), 5000, "export: spans counter");
    tap_is_int(get(&cnt.redis_errors), 0, "export: no redis errors");
    tap_is_int(get(&cnt.redis_reconnects), 0, "export: no reconnects");
    check_invariant("export: at rest", &cnt);

    /* a span reaches Redis within a flush interval or two */
    make_span(&span, 99999);
    et_exporter_submit(ex, &span);
    ms = wait_settled(&cnt, 1000);
    tap_ok(ms >= 0 && ms < 500, "export: a single span within %ld ms", ms);

    r = c ? redisCommand(c, "XRANGE et:export - + COUNT 1") : NULL;
    tap_ok(r && r->type == REDIS_REPLY_ARRAY && r->elements == 1
           && r->element[0]->elements == 2
           && r->element[0]->element[1]->elements >= 4
           && strcmp(r->element[0]->element[1]->element[0]->str, "v") == 0
           && strcmp(r->element[0]->element[1]->element[3]->str,
                     "0000000000000000000000000000" "00ab") == 0,
           "export: the first entry is span 0, as encoded");
    if (r) {
        freeReplyObject(r);
    }

    et_exporter_stop(ex);
    tap_is_int(get(&cnt.redis_connected), 0, "export: disconnected at stop");
    check_invariant("export: after stop", &cnt);

    del(c, "et:export");
    redisFree(c);
}


/*
 * Sharded (docs/stream.md, "Sharded streams"): 8 shards over the one
 * connection, by one producer (in place) and by several (on the stack);
 * each shard holds only its traces' spans, the lengths add up to the
 * spans exported, and the counters keep their identity.
 */
static void
test_export_shards(int port)
{
    int                  shared;
    char                 key[32];
    size_t               len;
    uint64_t             i;
    unsigned             s, bad;
    et_span_t            span;
    long long            sum, n;
    redisReply          *r, *f;
    redisContext        *c;
    et_stream_t          st;
    et_exporter_t       *ex;
    et_counters_t        cnt;
    et_exporter_conf_t   conf;
    uint8_t              id[ET_TRACE_ID_LEN];
    uint8_t              buf[ET_STREAM_BUF_SIZE(8, 8)];

    c = client(port, NULL, 0);

    for (shared = 0; shared < 2; shared++) {
        if (et_stream_init(&st, buf, (const uint8_t *) "et:xsh", 6, 0, 8,
                           ET_VALUE_MAX_DEFAULT)
            != ET_OK)
        {
            tap_ok(0, "shards: stream");
            break;
        }

        for (s = 0; s < 8; s++) {
            len = et_stream_shard_key((uint8_t *) key, sizeof(key) - 1,
                                      (const uint8_t *) "et:xsh", 6, s, 8);
            key[len] = '\0';
            del(c, key);
        }

        conf_init(&conf, &st, port);
        conf.shared = shared;
        memset(&cnt, 0, sizeof(cnt));

        ex = et_exporter_start(&conf, &cnt);
        if (ex == NULL) {
            tap_ok(0, "shards: started");
            break;
        }

        /* 400 traces of 10 spans each, their spans interleaved */
        for (i = 0; i < 4000; i++) {
            make_span(&span, i);
            memset(span.trace_id, 0x11, 8);
            span.trace_id[8] = 0x80;
            span.trace_id[14] = (uint8_t) ((i % 400) >> 8);
            span.trace_id[15] = (uint8_t) (i % 400);
            (void) et_exporter_submit(ex, &span);
        }

        tap_ok(wait_settled(&cnt, 2000) >= 0,
               "shards, %s: 4000 spans acknowledged",
               shared ? "shared" : "one producer");

        sum = 0;
        bad = 0;

        for (s = 0; s < 8; s++) {
            len = et_stream_shard_key((uint8_t *) key, sizeof(key) - 1,
                                      (const uint8_t *) "et:xsh", 6, s, 8);
            key[len] = '\0';

            n = xlen(c, key);
            sum += n;
            bad += n != 500;

            r = redisCommand(c, "XRANGE %s - +", key);

            for (i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements;
                 i++)
            {
                f = r->element[i]->element[1]->element[3];

                if (f->len != 32
                    || et_hex_decode(id, (const uint8_t *) f->str, 16)
                       != ET_OK
                    || et_stream_shard(id, 8) != s)
                {
                    bad++;
                }
            }

            if (r) {
                freeReplyObject(r);
            }

            del(c, key);
        }

        tap_ok(bad == 0, "shards, %s: each of the 8 shards holds its 50 "
               "traces' 500 spans, and only those",
               shared ? "shared" : "one producer");
        tap_is_int(sum, get(&cnt.exported),
                   "shards, %s: the XLENs add up to the spans exported",
                   shared ? "shared" : "one producer");

        et_exporter_stop(ex);

        tap_is_int(get(&cnt.exported), 4000, "shards, %s: exported",
                   shared ? "shared" : "one producer");
        check_invariant(shared ? "shards, shared" : "shards, one producer",
                        &cnt);
    }

    redisFree(c);
}


/* everything queued at stop is flushed */
static void
test_stop_flush(int port, const char *unix_path)
{
    int                  n;
    redisContext        *c;
    et_stream_t          st;
    et_exporter_t       *ex;
    et_counters_t        cnt;
    et_exporter_conf_t   conf;
    uint8_t              buf[ET_STREAM_PREFIX_SIZE(64)];

    c = client(port, NULL, 0);

    for (n = 0; n < 2; n++) {
        del(c, "et:stop");

        stream_init(&st, buf, "et:stop");
        conf_init(&conf, &st, port);
        memset(&cnt, 0, sizeof(cnt));

        if (n == 1) {
            if (unix_path == NULL) {
                tap_ok(0, "stop: ET_REDIS_UNIX is set");
                break;
            }

            snprintf(conf.redis.path, sizeof(conf.redis.path), "%s",
                     unix_path);
        }

        ex = et_exporter_start(&conf, &cnt);
        if (ex == NULL) {
            tap_ok(0, "stop: started");
            break;
        }

        submit_n(ex, 0, 10000);
        et_exporter_stop(ex);

        tap_is_int(xlen(c, "et:stop"), 10000,
                   "stop%s: 10000 spans submitted then stop: XLEN",
                   n ? " (unix socket)" : "");
        tap_is_int(get(&cnt.exported), 10000, "stop%s: exported",
                   n ? " (unix socket)" : "");
        check_invariant(n ? "stop (unix socket)" : "stop", &cnt);
    }

    del(c, "et:stop");
    redisFree(c);
}


/* the key holds a string: every XADD gets WRONGTYPE */
static void
test_error_replies(int port)
{
    int                  i, lines;
    redisReply          *r;
    redisContext        *c;
    et_stream_t          st;
    et_exporter_t       *ex;
    et_counters_t        cnt;
    et_exporter_conf_t   conf;
    uint8_t              buf[ET_STREAM_PREFIX_SIZE(64)];

    c = client(port, NULL, 0);
    r = c ? redisCommand(c, "SET et:string x") : NULL;
    if (r) {
        freeReplyObject(r);
    }

    log_clear();

    stream_init(&st, buf, "et:string");
    conf_init(&conf, &st, port);
    memset(&cnt, 0, sizeof(cnt));

    ex = et_exporter_start(&conf, &cnt);
    if (ex == NULL) {
        tap_ok(0, "error replies: started");
        redisFree(c);
        return;
    }

    /* 1.5 s of errors: two or three lines at most */
    for (i = 0; i < 15; i++) {
        submit_n(ex, (uint64_t) i * 100, 100);
        sleep_ms(100);
    }

    tap_ok(wait_settled(&cnt, 2000) >= 0, "error replies: settled");
    tap_is_int(get(&cnt.dropped_redis_error), 1500,
               "error replies: dropped (redis_error)");
    tap_is_int(get(&cnt.redis_errors), 1500,
               "error replies: redis errors, one per reply");
    tap_is_int(get(&cnt.exported), 0, "error replies: none exported");
    tap_is_int(get(&cnt.redis_connected), 1,
               "error replies: the connection stays");

    et_exporter_stop(ex);

    lines = log_count("WRONGTYPE");
    tap_ok(lines >= 1 && lines <= 3,
           "error replies: logged rate-limited (%d lines)", lines);
    tap_is_int(log_sum("WRONGTYPE", "error replies, "), 1500,
               "error replies: the lines add up to the spans lost");
    check_invariant("error replies", &cnt);

    del(c, "et:string");
    redisFree(c);
}


/*
 * Redis absent: submit never blocks, the queue fills up and drops are
 * counted; then Redis appears on that port and the exporter resumes by
 * itself; then Redis dies under load and comes back.
 */
static void
test_absent_and_resume(int dead_port)
{
    int                  lines;
    pid_t                pid;
    uint64_t             i, t0, t, worst, queued, before;
    et_span_t            span;
    redisContext        *c;
    et_stream_t          st;
    et_exporter_t       *ex;
    et_counters_t        cnt;
    et_exporter_conf_t   conf;
    uint8_t              buf[ET_STREAM_PREFIX_SIZE(64)];

    log_clear();

    stream_init(&st, buf, "et:resume");
    conf_init(&conf, &st, dead_port);
    conf.queue_size = 64 * 1024;
    memset(&cnt, 0, sizeof(cnt));

    ex = et_exporter_start(&conf, &cnt);
    if (ex == NULL) {
        tap_ok(0, "absent: started");
        return;
    }

    worst = 0;

    for (i = 0; i < 2000; i++) {
        make_span(&span, i);

        t0 = now_us();
        (void) et_exporter_submit(ex, &span);
        t = now_us() - t0;

        if (t > worst) {
            worst = t;
        }

        if (i % 100 == 0) {
            sleep_ms(1);
        }
    }

    tap_ok(worst < 1000, "absent: submit never blocks (worst %llu us)",
           (unsigned long long) worst);
    tap_is_int(get(&cnt.spans), 2000, "absent: spans counted");
    tap_ok(get(&cnt.dropped_queue_full) > 1000,
           "absent: queue full drops counted (%llu)",
           (unsigned long long) get(&cnt.dropped_queue_full));
    tap_is_int(get(&cnt.exported), 0, "absent: nothing exported");
    tap_is_int(get(&cnt.dropped_redis_error), 0,
               "absent: nothing lost to redis errors");

    queued = get(&cnt.spans) - settled(&cnt);
    tap_ok(queued > 50 && queued < 200,
           "absent: what fits stays queued (%llu)",
           (unsigned long long) queued);

    /* the backoff: 100, 200, 400, 800 ms... */
    sleep_ms(1600);
    tap_ok(get(&cnt.redis_errors) >= 3 && get(&cnt.redis_errors) <= 6,
           "absent: connect failures with backoff (%llu in 1.6 s)",
           (unsigned long long) get(&cnt.redis_errors));
    tap_is_int(get(&cnt.redis_connected), 0, "absent: not connected");

    lines = log_count("cannot connect");
    tap_ok(lines >= 1 && lines <= 3,
           "absent: connect failures logged rate-limited (%d lines)", lines);
    /* the first line reports the first failure: a count of one */
    tap_is_int(log_count("(1 failed attempt, "), 1,
               "absent: the first line says \"1 failed attempt\"");
    lines = log_count("queue full");
    tap_ok(lines >= 1 && lines <= 3,
           "absent: queue full logged rate-limited (%d lines)", lines);

    /* Redis appears: the queued spans go, within the backoff */

    pid = redis_start(dead_port);
    tap_ok(pid > 0, "resume: redis-server started on the dead port");

    if (pid <= 0) {
        et_exporter_stop(ex);
        return;
    }

    tap_ok(wait_settled(&cnt, 7000) >= 0,
           "resume: the queued spans are exported");
    tap_is_int(get(&cnt.exported), queued, "resume: exported == queued");
    tap_is_int(get(&cnt.redis_connected), 1, "resume: connected");
    tap_is_int(get(&cnt.redis_reconnects), 0,
               "resume: the first connect is no reconnect");

    c = client(dead_port, NULL, 0);
    tap_is_int(xlen(c, "et:resume"), queued, "resume: XLEN");
    redisFree(c);

    submit_n(ex, 10000, 100);
    tap_ok(wait_settled(&cnt, 1000) >= 0, "resume: new spans exported");
    check_invariant("resume", &cnt);

    /* Redis dies under load */

    before = get(&cnt.redis_errors);
    log_clear();

    for (i = 0; i < 20; i++) {
        submit_n(ex, 20000 + i * 50, 50);

        if (i == 10) {
            redis_kill(pid);
        }

        sleep_ms(10);
    }

    sleep_ms(300);
    tap_ok(get(&cnt.redis_errors) > before,
           "broken: the lost connection is counted");
    tap_is_int(get(&cnt.redis_connected), 0, "broken: not connected");
    tap_ok(wait_log("connection to redis", 1000) >= 1, "broken: logged");

    pid = redis_start(dead_port);
    tap_ok(pid > 0, "broken: redis-server started again");

    tap_ok(wait_value(&cnt.redis_reconnects, 1, 7000),
           "broken: reconnected");
    tap_ok(wait_settled(&cnt, 2000) >= 0, "broken: settled again");
    tap_ok(wait_log("again", 1000) >= 1, "broken: the reconnect is logged");
    check_invariant("broken", &cnt);

    submit_n(ex, 30000, 100);
    et_exporter_stop(ex);
    check_invariant("broken: after stop", &cnt);

    c = client(dead_port, NULL, 0);
    tap_ok(xlen(c, "et:resume") >= 100,
           "broken: spans after the restart reached redis");
    redisFree(c);

    redis_kill(pid);
}


/* a server that reads and never replies: the connection is declared dead */
static void
test_no_reply(void)
{
    fake_t               f;
    et_stream_t          st;
    et_exporter_t       *ex;
    et_counters_t        cnt;
    et_exporter_conf_t   conf;
    uint8_t              buf[ET_STREAM_PREFIX_SIZE(64)];

    ex = fake_exporter(&f, FAKE_SILENT, "no reply", &st, buf, &conf, &cnt,
                       300, 200);
    if (ex == NULL) {
        return;
    }

    submit_n(ex, 0, 10);

    tap_ok(wait_value(&cnt.dropped_redis_error, 10, 2000),
           "no reply: in-flight spans dropped after io_timeout");
    tap_ok(get(&cnt.redis_errors) >= 1, "no reply: a redis error");
    tap_ok(wait_log("no reply", 1000) >= 1, "no reply: logged");
    tap_ok(wait_value(&cnt.redis_reconnects, 1, 2000),
           "no reply: reconnects");

    submit_n(ex, 10, 5);
    et_exporter_stop(ex);

    tap_is_int(get(&cnt.exported), 0, "no reply: nothing exported");
    check_invariant("no reply", &cnt);

    fake_stop(&f);
}


/* garbage instead of RESP: a protocol error, the spans are lost */
static void
test_garbage(void)
{
    fake_t               f;
    et_stream_t          st;
    et_exporter_t       *ex;
    et_counters_t        cnt;
    et_exporter_conf_t   conf;
    uint8_t              buf[ET_STREAM_PREFIX_SIZE(64)];

    ex = fake_exporter(&f, FAKE_GARBAGE, "garbage", &st, buf, &conf, &cnt,
                       0, 200);
    if (ex == NULL) {
        return;
    }

    submit_n(ex, 0, 20);

    tap_ok(wait_settled(&cnt, 2000) >= 0, "garbage: settled");
    tap_is_int(get(&cnt.dropped_redis_error), 20, "garbage: all lost");
    tap_ok(wait_log("protocol error", 1000) >= 1, "garbage: logged");

    et_exporter_stop(ex);
    check_invariant("garbage", &cnt);

    fake_stop(&f);
}


static void
test_auth(int port, const char *password)
{
    int                  k;
    redisReply          *r;
    redisContext        *c;
    et_stream_t          st;
    et_exporter_t       *ex;
    et_counters_t        cnt;
    et_exporter_conf_t   conf;
    uint8_t              buf[ET_STREAM_PREFIX_SIZE(64)];

    /* ok: exported; connected: else refused at connect; else replies */
    static const struct {
        const char  *name;
        const char  *user;
        const char  *password;
        int          ok;
        int          connected;
        const char  *log;
    } cases[] = {
        { "auth: password", "", NULL, 1, 1, NULL },
        { "auth: user and password", "alice", "w0nder land", 1, 1, NULL },
        { "auth: wrong password", "", "wrong", 0, 0, "AUTH failed" },
        { "auth: wrong user", "bob", "w0nder land", 0, 0, "WRONGPASS" },
        /* Redis 7 closes on a long command before AUTH */
        { "auth: no password", "", "", 0, -1, "unauthenticated" },
    };

    c = client(port, password, 0);

    /* an ACL user, whose password has a space: AUTH user pass */
    r = c ? redisCommand(c, "ACL SETUSER alice on >%s ~* &* +@all",
                         "w0nder land")
          : NULL;
    tap_ok(r && r->type == REDIS_REPLY_STATUS, "auth: ACL user created");
    if (r) {
        freeReplyObject(r);
    }

    for (k = 0; k < (int) (sizeof(cases) / sizeof(cases[0])); k++) {
        del(c, "et:auth");
        log_clear();

        stream_init(&st, buf, "et:auth");
        conf_init(&conf, &st, port);
        conf.stop_timeout_ms = 300;
        snprintf(conf.redis.user, sizeof(conf.redis.user), "%s",
                 cases[k].user);
        snprintf(conf.redis.password, sizeof(conf.redis.password), "%s",
                 cases[k].password ? cases[k].password : password);
        memset(&cnt, 0, sizeof(cnt));

        ex = et_exporter_start(&conf, &cnt);
        if (ex == NULL) {
            tap_ok(0, "%s: started", cases[k].name);
            continue;
        }

        submit_n(ex, 0, 100);

        if (cases[k].ok) {
            tap_ok(wait_settled(&cnt, 1000) >= 0, "%s: settled",
                   cases[k].name);
            tap_is_int(get(&cnt.exported), 100, "%s: exported",
                       cases[k].name);
            tap_is_int(xlen(c, "et:auth"), 100, "%s: XLEN", cases[k].name);
            tap_is_int(get(&cnt.redis_errors), 0, "%s: no errors",
                       cases[k].name);

        } else {
            sleep_ms(300);
            tap_ok(get(&cnt.redis_errors) >= 1, "%s: counted as a redis "
                   "error", cases[k].name);
            if (cases[k].connected >= 0) {
                tap_is_int(get(&cnt.redis_connected), cases[k].connected,
                           "%s: connected", cases[k].name);
            }

            tap_ok(wait_log(cases[k].log, 1000) >= 1, "%s: logged why",
                   cases[k].name);
        }

        et_exporter_stop(ex);

        if (!cases[k].ok) {
            tap_is_int(get(&cnt.dropped_redis_error), 100,
                       "%s: lost (%s)", cases[k].name,
                       cases[k].connected ? "replies" : "at stop");
            tap_is_int(xlen(c, "et:auth"), 0, "%s: nothing stored",
                       cases[k].name);
        }

        check_invariant(cases[k].name, &cnt);
    }

    del(c, "et:auth");
    redisFree(c);
}


static void
test_select(int port)
{
    redisContext        *c, *c0;
    et_stream_t          st;
    et_exporter_t       *ex;
    et_counters_t        cnt;
    et_exporter_conf_t   conf;
    uint8_t              buf[ET_STREAM_PREFIX_SIZE(64)];

    c = client(port, NULL, 3);
    c0 = client(port, NULL, 0);
    del(c, "et:db");
    del(c0, "et:db");

    stream_init(&st, buf, "et:db");
    conf_init(&conf, &st, port);
    conf.redis.db = 3;
    memset(&cnt, 0, sizeof(cnt));

    ex = et_exporter_start(&conf, &cnt);
    if (ex == NULL) {
        tap_ok(0, "select: started");
        return;
    }

    submit_n(ex, 0, 100);
    tap_ok(wait_settled(&cnt, 1000) >= 0, "select: settled");
    et_exporter_stop(ex);

    tap_is_int(xlen(c, "et:db"), 100, "select: XLEN in db 3");
    tap_is_int(xlen(c0, "et:db"), 0, "select: nothing in db 0");
    check_invariant("select", &cnt);

    conf.redis.db = 100000;
    memset(&cnt, 0, sizeof(cnt));
    log_clear();

    ex = et_exporter_start(&conf, &cnt);
    if (ex) {
        sleep_ms(200);
        tap_ok(wait_log("SELECT failed", 1000) >= 1,
               "select: an invalid db is logged");
        et_exporter_stop(ex);
    }

    del(c, "et:db");
    redisFree(c);
    redisFree(c0);
}


/* several request threads ("shared"): every span counted once, stored once */

#define SHARED_THREADS  4
#define SHARED_SPANS    5000

typedef struct {
    et_exporter_t  *ex;
    uint64_t        from;
} submitter_t;


/* SHARED_THREADS threads run "fn", each on its own range of span numbers */
static void
run_submitters(et_exporter_t *ex, void *(*fn)(void *))
{
    int           k;
    pthread_t     t[SHARED_THREADS];
    submitter_t   sub[SHARED_THREADS];

    for (k = 0; k < SHARED_THREADS; k++) {
        sub[k].ex = ex;
        sub[k].from = (uint64_t) k * 1000000;
        pthread_create(&t[k], NULL, fn, &sub[k]);
    }

    for (k = 0; k < SHARED_THREADS; k++) {
        pthread_join(t[k], NULL);
    }
}


/* one span in ten too large for the stack: encoded in place, under the lock */
#define SHARED_BIG      5000

static uint8_t  shared_big[SHARED_BIG];


static void *
shared_submit(void *data)
{
    uint64_t      i;
    et_span_t     span;
    submitter_t  *s;

    s = data;

    for (i = s->from; i < s->from + SHARED_SPANS; i++) {
        make_span(&span, i);

        if (i % 10 == 0) {
            span.name.data = shared_big;
            span.name.len = SHARED_BIG;
        }

        (void) et_exporter_submit(s->ex, &span);
    }

    return NULL;
}


/* entries of "key" whose name is the big one, and whose is the usual one */
static void
count_names(redisContext *c, const char *key, long long *big,
    long long *usual)
{
    size_t      i, j;
    redisReply *r, *f;

    *big = 0;
    *usual = 0;

    r = redisCommand(c, "XRANGE %s - +", key);

    for (i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        f = r->element[i]->element[1];

        for (j = 0; j + 1 < f->elements; j += 2) {
            if (strcmp(f->element[j]->str, "name") != 0) {
                continue;
            }

            if (f->element[j + 1]->len == SHARED_BIG
                && memcmp(f->element[j + 1]->str, shared_big, SHARED_BIG)
                   == 0)
            {
                (*big)++;

            } else if (strcmp(f->element[j + 1]->str,
                              "GET /api/v1/items/{id}") == 0)
            {
                (*usual)++;
            }
        }
    }

    if (r) {
        freeReplyObject(r);
    }
}


static void
test_shared(int port)
{
    redisContext        *c;
    et_stream_t          st;
    et_exporter_t       *ex;
    et_counters_t        cnt;
    et_exporter_conf_t   conf;
    long long            big, usual;
    uint8_t              buf[ET_STREAM_PREFIX_SIZE(64)];

    memset(shared_big, 'n', SHARED_BIG);
    shared_big[SHARED_BIG - 1] = 'N';

    c = client(port, NULL, 0);
    del(c, "et:shared");

    /* values up to the big name: those entries exceed the stack buffer */
    if (et_stream_init(&st, buf, (const uint8_t *) "et:shared",
                       sizeof("et:shared") - 1, 0, 1, SHARED_BIG)
        != ET_OK)
    {
        tap_ok(0, "shared: stream");
        return;
    }

    conf_init(&conf, &st, port);
    conf.shared = 1;
    conf.queue_size = 1024 * 1024;
    memset(&cnt, 0, sizeof(cnt));

    ex = et_exporter_start(&conf, &cnt);
    if (ex == NULL) {
        tap_ok(0, "shared: started");
        return;
    }

    run_submitters(ex, shared_submit);

    et_exporter_stop(ex);

    tap_is_int(get(&cnt.spans), SHARED_THREADS * SHARED_SPANS,
               "shared: every span counted");
    tap_is_int(xlen(c, "et:shared"), get(&cnt.exported),
               "shared: XLEN == exported (%llu, %llu dropped: queue full)",
               (unsigned long long) get(&cnt.exported),
               (unsigned long long) get(&cnt.dropped_queue_full));
    tap_is_int(get(&cnt.dropped_redis_error), 0, "shared: no redis error");
    check_invariant("shared", &cnt);

    /* encoded on the stack or in place, every entry arrived whole */
    count_names(c, "et:shared", &big, &usual);
    tap_is_int(big + usual, xlen(c, "et:shared"),
               "shared: every entry intact (%lld big, %lld usual)", big,
               usual);
    tap_ok(big > 0 && usual > big, "shared: both paths taken");

    del(c, "et:shared");
    redisFree(c);
}


static void *
absent_submit(void *data)
{
    submitter_t  *s;

    s = data;
    submit_n(s->ex, s->from, SHARED_SPANS);

    return NULL;
}


/*
 * Stop while Redis is absent: what is queued is counted as lost, and the
 * stop is bounded.  With several request threads ("shared") they fill the
 * queue first; then a span is dropped before it is encoded (the lock-free
 * "no room" hint), but never while there is room for it.
 */
static void
test_stop_absent(int dead_port, int shared)
{
    size_t               max;
    uint64_t             queued, t0;
    et_span_t            span;
    const char          *name;
    et_stream_t          st;
    et_exporter_t       *ex;
    et_counters_t        cnt;
    et_exporter_conf_t   conf;
    uint8_t              buf[ET_STREAM_PREFIX_SIZE(64)];
    char                 line[128];

    name = shared ? "shared absent" : "stop absent";

    log_clear();

    /* a long flush timeout: with nothing to send to, stop does not wait */
    stream_init(&st, buf, "et:absent");
    conf_init(&conf, &st, dead_port);
    conf.shared = shared;
    conf.stop_timeout_ms = 3000;
    memset(&cnt, 0, sizeof(cnt));

    if (shared) {
        conf.queue_size = 64 * 1024;
    }

    ex = et_exporter_start(&conf, &cnt);
    if (ex == NULL) {
        tap_ok(0, "%s: started", name);
        return;
    }

    if (shared) {
        run_submitters(ex, absent_submit);

        make_span(&span, 0);
        max = et_entry_size_max(&st, &span);
        queued = queued_gauge(&cnt);

        tap_is_int(queued, get(&cnt.spans) - settled(&cnt),
                   "%s: the queue counts what was not dropped", name);

        tap_is_int(get(&cnt.spans), SHARED_THREADS * SHARED_SPANS,
                   "%s: every span counted", name);
        tap_is_int(get(&cnt.exported), 0, "%s: nothing exported", name);
        tap_ok(queued * max >= conf.queue_size - max && queued * max > 0,
               "%s: the queue was filled before drops (%llu queued, "
               "entries of at most %zu bytes)", name,
               (unsigned long long) queued, max);
        tap_is_int(get(&cnt.dropped_queue_full),
                   SHARED_THREADS * SHARED_SPANS - queued,
                   "%s: the rest dropped, queue full", name);

    } else {
        submit_n(ex, 0, 300);
        queued = 300;
        tap_is_int(queued_gauge(&cnt), 300, "%s: the queue counts 300",
                   name);
    }

    t0 = et_clock_mono_ms();
    et_exporter_stop(ex);
    t0 = et_clock_mono_ms() - t0;

    tap_ok(t0 < 1000, "%s: Redis unreachable, stop waits for nothing "
           "(%llu ms, flush timeout 3000 ms)", name,
           (unsigned long long) t0);
    tap_is_int(get(&cnt.dropped_redis_error), queued,
               "%s: the queued spans are lost (redis_error)", name);
    snprintf(line, sizeof(line), "exporter stopping: %llu spans dropped at "
             "exit: redis at 127.0.0.1:%d unreachable (",
             (unsigned long long) queued, dead_port);
    tap_is_int(log_count(line), 1, "%s: the line says why: %s", name, line);
    tap_is_int(log_count("within"), 0, "%s: no wait is claimed", name);
    check_invariant(name, &cnt);
}


/*
 * Redis answers nothing at stop (stalled): stop waits the flush timeout,
 * no less and not much more, and the line tells how long it waited.
 */
static void
test_stop_stalled(void)
{
    fake_t               f;
    uint64_t             t0;
    et_stream_t          st;
    et_exporter_t       *ex;
    et_counters_t        cnt;
    et_exporter_conf_t   conf;
    uint8_t              buf[ET_STREAM_PREFIX_SIZE(64)];

    ex = fake_exporter(&f, FAKE_SILENT, "stop stalled", &st, buf, &conf,
                       &cnt, 0, 600);
    if (ex == NULL) {
        return;
    }

    submit_n(ex, 0, 20);
    tap_ok(wait_value(&cnt.inflight, 20, 2000),
           "stop stalled: 20 spans written, in flight");
    tap_is_int(queued_gauge(&cnt), 20, "stop stalled: queued counts them");

    t0 = et_clock_mono_ms();
    et_exporter_stop(ex);
    t0 = et_clock_mono_ms() - t0;

    tap_ok(t0 >= 550 && t0 < 2000, "stop stalled: stop waited the flush "
           "timeout, 600 ms (%llu ms)", (unsigned long long) t0);
    tap_is_int(get(&cnt.dropped_redis_error), 20,
               "stop stalled: the 20 spans dropped (redis_error)");
    tap_is_int(log_count("exporter stopping: 20 spans dropped at exit: "
                         "not acknowledged by redis at 127.0.0.1:"), 1,
               "stop stalled: the line says they were not acknowledged");
    tap_is_int(log_count("20 of them were written"), 1,
               "stop stalled: and that they were written");
    tap_is_int(log_count("waited 5") + log_count("waited 6")
               + log_count("waited 7"), 1,
               "stop stalled: and how long it waited");
    check_invariant("stop stalled", &cnt);

    fake_stop(&f);
}


/*
 * A span counted and then lost (spans moved without a submit, as a
 * producer that skipped its enqueue would): the thread says so.
 */
static void
test_missing(int port)
{
    redisContext        *c;
    et_stream_t          st;
    et_exporter_t       *ex;
    et_counters_t        cnt;
    et_exporter_conf_t   conf;
    uint8_t              buf[ET_STREAM_PREFIX_SIZE(64)];

    c = client(port, NULL, 0);
    del(c, "et:missing");
    log_clear();

    stream_init(&st, buf, "et:missing");
    conf_init(&conf, &st, port);
    memset(&cnt, 0, sizeof(cnt));

    /* a slot taken over: what an earlier process counted is not missing */
    cnt.spans = 1000;
    cnt.exported = 990;
    cnt.dropped_queue_full = 10;

    ex = et_exporter_start(&conf, &cnt);
    if (ex == NULL) {
        tap_ok(0, "missing: started");
        redisFree(c);
        return;
    }

    submit_n(ex, 0, 10);
    tap_ok(wait_xlen(c, "et:missing", 10, 2000), "missing: 10 in the stream");
    tap_ok(wait_settled(&cnt, 2000) >= 0, "missing: settled");
    sleep_ms(300);
    tap_is_int(log_count("no longer add up"), 0,
               "missing: none while the counters add up");

    __atomic_add_fetch(&cnt.spans, 3, __ATOMIC_RELEASE);

    tap_ok(wait_log("3 spans counted but neither exported, dropped nor "
                    "queued since the last report (3 in all): the "
                    "counters no longer add up", 2000) == 1,
           "missing: 3 spans counted and lost are reported");

    submit_n(ex, 10, 5);
    et_exporter_stop(ex);

    tap_is_int(xlen(c, "et:missing"), 15, "missing: XLEN");
    tap_is_int(log_count("no longer add up"), 1,
               "missing: reported once, not again at stop");
    tap_is_int(get(&cnt.spans) - settled(&cnt), 3,
               "missing: the identity is off by the 3");

    del(c, "et:missing");
    redisFree(c);
}


/*
 * The thread wakes before the flush interval when the queue crosses half
 * full or 512 KB, whichever is less: "below" bytes of spans wait for the
 * (long) interval, "above" more send a batch.  The replies are counted at
 * the next cycle, 10 s away, so Redis tells whether the batch went.
 */
static void
test_kick(int port, const char *name, size_t queue_size, size_t below,
    size_t above)
{
    size_t               size, n, i;
    uint64_t             start;
    int                  woke;
    unsigned             rounds;
    long long            before;
    et_span_t            span;
    redisContext        *c;
    et_stream_t          st;
    et_exporter_t       *ex;
    et_counters_t        cnt;
    et_exporter_conf_t   conf;
    uint8_t              buf[ET_STREAM_PREFIX_SIZE(64)];

    c = client(port, NULL, 0);
    del(c, "et:kick");

    stream_init(&st, buf, "et:kick");
    conf_init(&conf, &st, port);
    conf.flush_ms = 10000;
    conf.queue_size = queue_size;
    memset(&cnt, 0, sizeof(cnt));

    ex = et_exporter_start(&conf, &cnt);
    if (ex == NULL) {
        tap_ok(0, "%s: started", name);
        return;
    }

    tap_ok(wait_value(&cnt.redis_connected, 1, 1000), "%s: connected", name);

    make_span(&span, 0);
    size = et_entry_size(&st, &span);

    submit_n(ex, 0, below / size);
    sleep_ms(300);
    tap_is_int(xlen(c, "et:kick"), 0, "%s: %zu KB do not wake the thread",
               name, below / 1024);

    submit_n(ex, 100000, above / size);
    start = et_clock_mono_ms();

    woke = wait_xlen(c, "et:kick", 1, 1000);
    tap_ok(woke, "%s: %zu KB wake the thread (%lld spans in %llu ms)", name,
           (below + above) / 1024, xlen(c, "et:kick"),
           (unsigned long long) (et_clock_mono_ms() - start));

    /*
     * Kicks in a row: each round queues more than the mark on top of what
     * the previous one left below it, so each must wake the thread, 30
     * times; the flush interval (10 s) cannot be what writes them.  A
     * round starts once the thread gave back the batch it wrote: on a
     * loaded machine it may still hold it as the XADDs land, the round
     * then finds the queue above the mark already (no crossing, no kick)
     * and fills it, and what is left when the batch is given back lies
     * below the mark, for the flush interval.
     */
    n = (below + above) / size;
    rounds = 0;

    for (i = 0; i < 30; i++) {
        start = et_clock_mono_ms();

        while ((get(&cnt.queue_in) - get(&cnt.queue_out)) * size > below
               && et_clock_mono_ms() - start < 5000)
        {
            sleep_ms(1);
        }

        before = xlen(c, "et:kick");
        submit_n(ex, 200000 + i * n, n);

        if (!wait_xlen(c, "et:kick", before + 1, 1000)) {
            break;
        }

        rounds++;
    }

    tap_is_int(rounds, 30, "%s: 30 kicks in a row, each wakes the thread",
               name);

    et_exporter_stop(ex);
    check_invariant(name, &cnt);

    tap_is_int(xlen(c, "et:kick"), get(&cnt.exported), "%s: XLEN", name);

    del(c, "et:kick");
    redisFree(c);
}


/* the thread runs with every signal blocked; the caller's mask is kept */
static void
test_signals(int port)
{
    int                  found, same, i;
    uint64_t             mask, want;
    char                 path[300], line[256];
    FILE                *fp;
    DIR                 *d;
    sigset_t             before, after;
    struct dirent       *de;
    et_stream_t          st;
    et_exporter_t       *ex;
    et_counters_t        cnt;
    et_exporter_conf_t   conf;
    uint8_t              buf[ET_STREAM_PREFIX_SIZE(64)];

    stream_init(&st, buf, "et:signals");
    conf_init(&conf, &st, port);
    memset(&cnt, 0, sizeof(cnt));

    pthread_sigmask(SIG_SETMASK, NULL, &before);

    ex = et_exporter_start(&conf, &cnt);
    if (ex == NULL) {
        tap_ok(0, "signals: started");
        return;
    }

    pthread_sigmask(SIG_SETMASK, NULL, &after);

    same = 1;

    for (i = 1; i < SIGRTMAX; i++) {
        same &= (sigismember(&before, i) == sigismember(&after, i));
    }

    tap_ok(same, "signals: the caller's mask is restored");

    found = 0;
    d = opendir("/proc/self/task");

    while (d && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') {
            continue;
        }

        snprintf(path, sizeof(path), "/proc/self/task/%s/comm", de->d_name);
        fp = fopen(path, "r");

        if (fp == NULL) {
            continue;
        }

        if (fgets(line, sizeof(line), fp) == NULL
            || strncmp(line, "edgetrace", 9) != 0)
        {
            fclose(fp);
            continue;
        }

        fclose(fp);

        snprintf(path, sizeof(path), "/proc/self/task/%s/status",
                 de->d_name);
        fp = fopen(path, "r");

        while (fp && fgets(line, sizeof(line), fp)) {
            if (strncmp(line, "SigBlk:", 7) == 0) {
                /*
                 * Every standard signal but SIGKILL and SIGSTOP, which
                 * cannot be blocked (glibc keeps two real-time signals of
                 * its own, valgrind another)
                 */
                mask = strtoull(line + 7, NULL, 16);
                want = 0x7fffffffULL & ~(1ULL << (SIGKILL - 1))
                       & ~(1ULL << (SIGSTOP - 1));
                found = (mask & want) == want;

                if (!found) {
                    printf("#   thread %s", line);
                }
            }
        }

        if (fp) {
            fclose(fp);
        }
    }

    if (d) {
        closedir(d);
    }

    tap_ok(found, "signals: the thread \"edgetrace\" blocks every signal");

    et_exporter_stop(ex);
}


/* ------------------------------------------------------------------------
 * The measure: process CPU time per span, both threads, encoding included.
 */

static double
cpu_ns(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);

    return (double) ts.tv_sec * 1e9 + (double) ts.tv_nsec;
}


static double
thread_cpu_ns(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);

    return (double) ts.tv_sec * 1e9 + (double) ts.tv_nsec;
}


static int
bench(int port)
{
    uint64_t             n, i, total;
    double               c0, c1, e0, e1, t0, t1, s0, sub;
    size_t               size;
    uint8_t             *out;
    et_span_t            span;
    redisContext        *c;
    et_stream_t          st;
    et_exporter_t       *ex;
    et_counters_t        cnt, base;
    et_exporter_conf_t   conf;
    uint8_t              buf[ET_STREAM_PREFIX_SIZE(64)];

    total = getenv("ET_BENCH_SPANS") ? strtoull(getenv("ET_BENCH_SPANS"),
                                                NULL, 10)
                                     : 200000;

    c = client(port, NULL, 0);
    del(c, "et:bench");

    if (et_stream_init(&st, buf, (const uint8_t *) "et:bench", 8, 1000000, 1,
                       ET_VALUE_MAX_DEFAULT)
        != ET_OK)
    {
        return 1;
    }

    make_span(&span, 1);
    size = et_entry_size(&st, &span);
    out = malloc(size);

    /* the encoding alone, for reference */
    e0 = cpu_ns();

    for (i = 0; i < total; i++) {
        span.start_ns++;
        et_entry_write(&st, &span, out);
    }

    e1 = cpu_ns();
    free(out);

    conf_init(&conf, &st, port);
    memset(&cnt, 0, sizeof(cnt));

    if (getenv("ET_BENCH_FLUSH_MS")) {
        conf.flush_ms = (unsigned) atoi(getenv("ET_BENCH_FLUSH_MS"));
    }

    if (getenv("ET_BENCH_QUEUE")) {
        conf.queue_size = (size_t) atol(getenv("ET_BENCH_QUEUE"));
    }

    ex = et_exporter_start(&conf, &cnt);
    if (ex == NULL) {
        return 1;
    }

    wait_value(&cnt.redis_connected, 1, 1000);

    /*
     * Warm up: a long-running worker has touched its whole ring once (the
     * first pass costs a page fault per 4 KiB), so the measure starts after
     * one pass.
     */
    for (n = 0; n < conf.queue_size / size + 500; n += 500) {
        submit_n(ex, n, 500);
        sleep_ms(10);
    }

    wait_settled(&cnt, 5000);
    base = cnt;

    c0 = cpu_ns();
    t0 = thread_cpu_ns();

    /* paced at about 50k spans/s, as a busy gateway would */
    sub = 0;

    for (n = 0; n < total; n += 500) {
        s0 = thread_cpu_ns();

        for (i = n; i < n + 500 && i < total; i++) {
            make_span(&span, i);
            (void) et_exporter_submit(ex, &span);
        }

        sub += thread_cpu_ns() - s0;
        sleep_ms(10);
    }

    t1 = thread_cpu_ns();
    wait_settled(&cnt, 5000);
    c1 = cpu_ns();

    et_exporter_stop(ex);

    printf("# %llu spans of %zu bytes: exported %llu, dropped %llu\n",
           (unsigned long long) total, size,
           (unsigned long long) (get(&cnt.exported) - base.exported),
           (unsigned long long) (settled(&cnt) - settled(&base)
                                 - (get(&cnt.exported) - base.exported)));
    printf("# encoding alone: %.0f ns per span\n", (e1 - e0) / total);
    printf("# process CPU (submit + exporter thread): %.0f ns per span\n",
           (c1 - c0) / total);
    printf("# of which the submitting thread: %.0f ns per span, "
           "%.0f ns in make_span + submit, the rest in pacing sleeps\n",
           (t1 - t0) / total, sub / total);

    del(c, "et:bench");
    redisFree(c);

    return 0;
}


/* Redis asleep for "secs", from now: DEBUG SLEEP sent, the reply not read */
static int
redis_sleep(int port, int secs)
{
    int                 fd;
    char                cmd[64];
    struct sockaddr_in  sin;

    fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((uint16_t) port);

    snprintf(cmd, sizeof(cmd), "*3\r\n$5\r\nDEBUG\r\n$5\r\nSLEEP\r\n"
             "$1\r\n%d\r\n", secs);

    if (fd == -1
        || connect(fd, (struct sockaddr *) &sin, sizeof(sin)) != 0
        || write(fd, cmd, strlen(cmd)) != (ssize_t) strlen(cmd))
    {
        if (fd != -1) {
            close(fd);
        }

        return -1;
    }

    return fd;
}


/*
 * Batches of megabytes, far more than the socket takes at once: the
 * thread waits for room with poll(), reading the replies that arrive
 * meanwhile; a read must not make it forget that it waits for room (it
 * would then wake only for more replies, and stall once they stop).
 */
static void
test_burst(int port)
{
    long                 ms;
    size_t               n;
    redisContext        *c;
    et_span_t            span;
    et_stream_t          st;
    et_exporter_t       *ex;
    et_counters_t        cnt;
    et_exporter_conf_t   conf;
    uint8_t              buf[ET_STREAM_PREFIX_SIZE(64)];

    c = client(port, NULL, 0);
    del(c, "et:burst");

    stream_init(&st, buf, "et:burst");
    conf_init(&conf, &st, port);
    conf.queue_size = 32 * 1024 * 1024;
    conf.flush_ms = 1000;
    conf.io_timeout_ms = 3000;
    memset(&cnt, 0, sizeof(cnt));
    log_clear();

    ex = et_exporter_start(&conf, &cnt);
    if (ex == NULL) {
        tap_ok(0, "burst: started");
        return;
    }

    tap_ok(wait_value(&cnt.redis_connected, 1, 1000), "burst: connected");

    make_span(&span, 0);
    n = 24 * 1024 * 1024 / et_entry_size(&st, &span);

    /* three rounds, each a few batches of megabytes */
    submit_n(ex, 0, n / 3);
    sleep_ms(50);
    submit_n(ex, n / 3, n / 3);
    sleep_ms(50);
    submit_n(ex, 2 * (n / 3), n / 3);

    ms = wait_settled(&cnt, 2500);
    tap_ok(ms >= 0, "burst: %zu spans acknowledged within 2.5 s (%ld ms)",
           3 * (n / 3), ms);
    tap_is_int(get(&cnt.redis_errors), 0, "burst: no redis error");
    tap_is_int(log_count("could not write"), 0, "burst: no write stalled");

    et_exporter_stop(ex);
    check_invariant("burst", &cnt);
    tap_is_int(xlen(c, "et:burst"), get(&cnt.exported), "burst: XLEN");

    del(c, "et:burst");
    redisFree(c);
}


/*
 * Over TLS, Redis asleep while megabytes are queued: the socket fills and
 * SSL_write stops mid-record (WANT_WRITE); the thread waits for room,
 * reading the replies meanwhile (TLS drains until it would block), and
 * resumes with the same bytes: everything acknowledged, no write stalled
 * (docs/nginx.md "edgetrace_redis_timeout": "could not write").
 */
static void
test_tls_burst(int tls_port, int plain_port, et_tls_ctx_t *ca)
{
    int                  fd;
    long                 ms;
    size_t               n;
    redisContext        *c;
    et_span_t            span;
    et_stream_t          st;
    et_exporter_t       *ex;
    et_counters_t        cnt;
    et_exporter_conf_t   conf;
    uint8_t              buf[ET_STREAM_PREFIX_SIZE(64)];

    c = client(plain_port, NULL, 0);
    del(c, "et:tls:burst");

    stream_init(&st, buf, "et:tls:burst");
    conf_init(&conf, &st, tls_port);
    conf.redis.tls = 1;
    conf.tls = ca;
    conf.queue_size = 32 * 1024 * 1024;
    conf.io_timeout_ms = 2000;
    memset(&cnt, 0, sizeof(cnt));
    log_clear();

    ex = et_exporter_start(&conf, &cnt);
    if (ex == NULL || !wait_value(&cnt.redis_connected, 1, 2000)) {
        tap_ok(0, "tls burst: connected");
        et_exporter_stop(ex);
        redisFree(c);
        return;
    }

    make_span(&span, 0);
    n = 12 * 1024 * 1024 / et_entry_size(&st, &span);

    fd = redis_sleep(plain_port, 1);
    tap_ok(fd != -1, "tls burst: Redis asleep for 1 s");
    sleep_ms(50);

    submit_n(ex, 0, n);

    ms = wait_settled(&cnt, 6000);
    tap_ok(ms >= 0, "tls burst: %zu spans acknowledged (%ld ms)", n, ms);
    tap_is_int(get(&cnt.redis_errors), 0, "tls burst: no redis error");
    tap_is_int(log_count("could not write"), 0,
               "tls burst: no write stalled");

    et_exporter_stop(ex);
    check_invariant("tls burst", &cnt);

    if (fd != -1) {
        close(fd);
    }

    del(c, "et:tls:burst");
    redisFree(c);
}


/*
 * The socket full mid-batch, and a reply read while the thread waits for
 * room, drained until recv() would block: the wait that follows is still
 * for room, not for more replies, which never come here (the thread would
 * stall until the I/O timeout: "could not write").
 */
static void
test_wait_room(void)
{
    int                  written;
    size_t               size, n;
    uint64_t             total;
    fake_t               f;
    et_span_t            span;
    et_stream_t          st;
    et_exporter_t       *ex;
    et_counters_t        cnt;
    et_exporter_conf_t   conf;
    uint8_t              buf[ET_STREAM_PREFIX_SIZE(64)];

    if (fake_start(&f, FAKE_HOLD) != 0) {
        tap_ok(0, "wait for room: fake server");
        return;
    }

    log_clear();
    stream_init(&st, buf, "et:fake");
    conf_init(&conf, &st, f.port);
    conf.queue_size = 16 * 1024 * 1024;
    conf.io_timeout_ms = 1500;
    conf.stop_timeout_ms = 200;
    memset(&cnt, 0, sizeof(cnt));

    ex = et_exporter_start(&conf, &cnt);
    if (ex == NULL) {
        tap_ok(0, "wait for room: started");
        fake_stop(&f);
        return;
    }

    make_span(&span, 0);
    size = et_entry_size(&st, &span);

    /* one span in flight, for the reply to answer */
    submit_n(ex, 0, 1);
    tap_ok(wait_value(&f.bytes, size, 2000), "wait for room: one span sent");

    /* megabytes the fake does not read: the socket fills */
    __atomic_store_n(&f.hold, 1, __ATOMIC_RELEASE);
    n = 6 * 1024 * 1024 / size;
    submit_n(ex, 1, n);
    sleep_ms(300);

    /* one reply of 64 KB, then everything read, no other reply */
    __atomic_store_n(&f.hold, 2, __ATOMIC_RELEASE);
    total = (uint64_t) (n + 1) * size;

    written = wait_value(&f.bytes, total, 1000);
    tap_ok(written, "wait for room: the whole batch written after the reply "
           "(%llu of %llu bytes)",
           (unsigned long long) get(&f.bytes), (unsigned long long) total);
    tap_is_int(log_count("could not write"), 0,
               "wait for room: no write stalled");
    tap_is_int(get(&cnt.exported), 1, "wait for room: the reply counted");

    et_exporter_stop(ex);
    check_invariant("wait for room", &cnt);

    fake_stop(&f);
}


/*
 * rediss:// (docs/nginx.md "edgetrace_redis_ssl_trusted_certificate"):
 * spans exported over TLS, in batches far larger than a record; with the
 * wrong CA nothing is sent, the failures are counted and logged with the
 * reason, and the counters add up; without a context, no exporter at all.
 */
static void
test_tls(int tls_port, int plain_port)
{
    long                 ms;
    uint64_t             i;
    et_span_t            span;
    redisContext        *c;
    et_stream_t          st;
    et_tls_ctx_t        *ca, *other;
    et_exporter_t       *ex;
    et_counters_t        cnt;
    et_exporter_conf_t   conf;
    uint8_t              buf[ET_STREAM_PREFIX_SIZE(64)];

    log_clear();

    c = client(plain_port, NULL, 0);
    del(c, "et:tls");

    ca = tls_ctx("ca.crt");
    other = tls_ctx("other_ca.crt");

    stream_init(&st, buf, "et:tls");
    conf_init(&conf, &st, tls_port);
    conf.redis.tls = 1;

    /* never plaintext */
    memset(&cnt, 0, sizeof(cnt));
    ex = et_exporter_start(&conf, &cnt);
    tap_ok(ex == NULL && log_count("rediss:// needs a TLS context") == 1,
           "tls: no exporter for rediss:// without a context");
    et_exporter_stop(ex);

    conf.tls = ca;
    memset(&cnt, 0, sizeof(cnt));

    ex = et_exporter_start(&conf, &cnt);
    tap_ok(ex != NULL && wait_value(&cnt.redis_connected, 1, 2000),
           "tls: connected");

    if (ex != NULL) {
        /*
         * 5,000 spans at a time, each lot exported before the next: the
         * queue never fills, however slow a loaded machine runs the
         * exporter thread; what is checked is that every span written
         * over TLS arrives
         */
        for (i = 0; i < 30000; i++) {
            if (i % 5000 == 0 && !wait_value(&cnt.exported, i, 10000)) {
                break;
            }

            make_span(&span, i);
            (void) et_exporter_submit(ex, &span);
        }

        ms = wait_settled(&cnt, 5000);
        tap_ok(ms >= 0, "tls: 30000 spans acknowledged (%ld ms)", ms);
        tap_is_int(get(&cnt.dropped_queue_full), 0,
                   "tls: none dropped for a full queue");
        tap_is_int(get(&cnt.exported), 30000, "tls: exported counter");
        tap_is_int(xlen(c, "et:tls"), 30000, "tls: XLEN");
        tap_is_int(get(&cnt.redis_errors), 0, "tls: no redis errors");

        et_exporter_stop(ex);
        check_invariant("tls: after stop", &cnt);
    }

    /* the wrong CA: refused at every attempt, never written */

    del(c, "et:tls");
    log_clear();
    conf.tls = other;
    memset(&cnt, 0, sizeof(cnt));

    ex = et_exporter_start(&conf, &cnt);

    if (ex != NULL) {
        submit_n(ex, 0, 100);

        tap_ok(wait_log("TLS: certificate verify failed: self-signed "
                        "certificate in certificate chain", 2000),
               "wrong CA: logged with the reason");
        tap_ok(log_count("cannot connect to redis at 127.0.0.1:") >= 1,
               "wrong CA: the line names the address");

        sleep_ms(300);
        tap_ok(get(&cnt.redis_errors) >= 2,
               "wrong CA: each attempt counted (%llu)",
               (unsigned long long) get(&cnt.redis_errors));
        tap_is_int(get(&cnt.redis_connected), 0, "wrong CA: not connected");

        et_exporter_stop(ex);

        tap_is_int(get(&cnt.exported), 0, "wrong CA: nothing exported");
        tap_is_int(get(&cnt.dropped_redis_error), 100,
                   "wrong CA: the spans dropped at stop");
        check_invariant("wrong CA: after stop", &cnt);
    }

    tap_is_int(xlen(c, "et:tls"), 0, "wrong CA: nothing reached Redis");

    if (ca) {
        test_tls_burst(tls_port, plain_port, ca);
    }

    log_clear();
    et_tls_ctx_free(ca);
    et_tls_ctx_free(other);
    del(c, "et:tls");
    redisFree(c);
}


int
main(int argc, char **argv)
{
    int          port, dead, auth;
    const char  *password, *unix_path;

    signal(SIGPIPE, SIG_IGN);

    et_field_init(&service, service_buf, (const uint8_t *) "service.name",
                  12, (const uint8_t *) "nginx", 5);

    port = env_int("ET_REDIS_PORT");
    dead = env_int("ET_REDIS_DEAD_PORT");
    auth = env_int("ET_REDIS_AUTH_PORT");
    password = getenv("ET_REDIS_PASSWORD");
    unix_path = getenv("ET_REDIS_UNIX");

    if (port == 0) {
        printf("Bail out! ET_REDIS_PORT is not set (run t/unit/exporter.t)"
               "\n");
        return 1;
    }

    if (argc > 1 && strcmp(argv[1], "bench") == 0) {
        return bench(port);
    }

    test_export(port);
    test_export_shards(port);
    test_stop_flush(port, unix_path);
    test_error_replies(port);
    test_select(port);
    /* half of 256 KB; 512 KB, not half of 8 MB */
    test_kick(port, "kick", 256 * 1024, 100 * 1024, 60 * 1024);
    test_kick(port, "kick cap", 8 * 1024 * 1024, 400 * 1024, 160 * 1024);
    test_shared(port);
    test_signals(port);
    test_no_reply();
    test_garbage();
    test_stop_stalled();
    test_missing(port);
    test_burst(port);
    test_wait_room();

    if (env_int("ET_TLS_PORT")) {
        test_tls(env_int("ET_TLS_PORT"), port);

    } else {
        tap_ok(0, "ET_TLS_PORT is set");
    }

    if (auth && password) {
        test_auth(auth, password);

    } else {
        tap_ok(0, "ET_REDIS_AUTH_PORT and ET_REDIS_PASSWORD are set");
    }

    if (dead) {
        test_stop_absent(dead, 0);
        test_stop_absent(dead, 1);
        test_absent_and_resume(dead);

    } else {
        tap_ok(0, "ET_REDIS_DEAD_PORT is set");
    }

    log_clear();

    return tap_done();
}
