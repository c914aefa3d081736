/*
 * Unit tests: et_id.c (ids, generator, hex), et_clock.c, et_core.c.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "et_core.h"
#include "et_id.h"
#include "et_clock.h"
#include "tap.h"



#define FORK_IDS  8


static uint8_t *
dup_exact(const uint8_t *p, size_t len)
{
    uint8_t  *d;

    /* exact size, so valgrind sees any read past the end */
    d = malloc(len ? len : 1);
    if (d == NULL) {
        abort();
    }

    memcpy(d, p, len);

    return d;
}


static void
test_trim(void)
{
    size_t    i;
    uint8_t  *in;
    et_str_t  s;

    static const struct {
        const char  *name;
        const char  *in;
        size_t       len;
        const char  *want;
        size_t       want_len;
    } cases[] = {
        { "empty", "", 0, "", 0 },
        { "one space", " ", 1, "", 0 },
        { "one tab", "\t", 1, "", 0 },
        { "only OWS", " \t \t ", 5, "", 0 },
        { "nothing to trim", "a", 1, "a", 1 },
        { "spaces around", "  a  ", 5, "a", 1 },
        { "tabs around", "\t\ta\t\t", 5, "a", 1 },
        { "mixed around", " \t a b \t ", 9, "a b", 3 },
        { "inner OWS kept", "a \t b", 5, "a \t b", 5 },
        { "CR is not OWS", "\ra\r", 3, "\ra\r", 3 },
        { "LF is not OWS", "\na\n", 3, "\na\n", 3 },
        { "VT is not OWS", "\va", 2, "\va", 2 },
        { "NUL is not OWS", " a\0 ", 4, "a\0", 2 },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        in = dup_exact((const uint8_t *) cases[i].in, cases[i].len);
        s = et_str_trim_ows(in, cases[i].len);

        tap_ok(s.len == cases[i].want_len
               && memcmp(s.data, cases[i].want, s.len) == 0
               && (s.len == 0 || (s.data >= in
                                  && s.data + s.len <= in + cases[i].len)),
               "trim: %s", cases[i].name);

        free(in);
    }

    s = et_str_trim_ows(NULL, 0);
    tap_ok(s.len == 0, "trim: NULL, 0");
}


static void
test_hex(void)
{
    size_t    i;
    uint8_t   bytes[256], hex[512], back[256], *end, *in;
    int       rc;

    static const struct {
        const char  *bytes;
        size_t       n;
        const char  *hex;
    } enc[] = {
        { "", 0, "" },
        { "\x00", 1, "00" },
        { "\xff", 1, "ff" },
        { "\x0a\x1b\x2c\x3d", 4, "0a1b2c3d" },
        { "\x4b\xf9\x2f\x35\x77\xb3\x4d\xa6", 8, "4bf92f3577b34da6" },
    };

    static const struct {
        const char  *name;
        const char  *hex;
        size_t       n;
        int          rc;
        const char  *bytes;
    } dec[] = {
        { "zeros", "0000", 2, ET_OK, "\x00\x00" },
        { "all digits", "0123456789abcdef", 8, ET_OK,
          "\x01\x23\x45\x67\x89\xab\xcd\xef" },
        { "ff", "ff", 1, ET_OK, "\xff" },
        { "uppercase A", "0A", 1, ET_ERROR, NULL },
        { "uppercase F high", "Ff", 1, ET_ERROR, NULL },
        { "uppercase everywhere", "ABCDEF", 3, ET_ERROR, NULL },
        { "g", "0g", 1, ET_ERROR, NULL },
        { "space", " 0", 1, ET_ERROR, NULL },
        { "dash", "-1", 1, ET_ERROR, NULL },
        { "bad last pair", "00000x", 3, ET_ERROR, NULL },
        { "NUL", "0\0", 1, ET_ERROR, NULL },
        { "byte 0x80", "\x80" "0", 1, ET_ERROR, NULL },
        { "byte 0xff", "0\xff", 1, ET_ERROR, NULL },
        { "'0' - 1 and 'f' + 1", "/g", 1, ET_ERROR, NULL },
        { "'9' + 1 and 'a' - 1", ":`", 1, ET_ERROR, NULL },
    };

    for (i = 0; i < sizeof(enc) / sizeof(enc[0]); i++) {
        end = et_hex_encode(hex, (const uint8_t *) enc[i].bytes, enc[i].n);
        tap_is_mem(hex, end - hex, enc[i].hex, "hex encode: %s",
                   enc[i].hex[0] ? enc[i].hex : "(nothing)");
    }

    for (i = 0; i < sizeof(dec) / sizeof(dec[0]); i++) {
        in = dup_exact((const uint8_t *) dec[i].hex, 2 * dec[i].n);
        rc = et_hex_decode(back, in, dec[i].n);
        free(in);

        tap_ok(rc == dec[i].rc
               && (rc != ET_OK || memcmp(back, dec[i].bytes, dec[i].n) == 0),
               "hex decode: %s -> %s", dec[i].name,
               dec[i].rc == ET_OK ? "ok" : "error");
    }

    for (i = 0; i < 256; i++) {
        bytes[i] = (uint8_t) i;
    }

    end = et_hex_encode(hex, bytes, 256);
    rc = et_hex_decode(back, hex, 256);

    tap_ok(end == hex + 512 && rc == ET_OK
           && memcmp(back, bytes, 256) == 0,
           "hex round trip of all 256 byte values");

    for (i = 0; i < 512; i++) {
        if (!((hex[i] >= '0' && hex[i] <= '9')
              || (hex[i] >= 'a' && hex[i] <= 'f')))
        {
            break;
        }
    }

    tap_ok(i == 512, "hex encode writes lowercase digits only");
}


/* the fixed-size encoders agree with the generic one, and stay in bounds */
static void
test_hex_fixed(void)
{
    size_t    i, j;
    uint8_t   want[40], got[40];

    static const struct {
        const char  *name;
        const char  *bytes;              /* 16 bytes */
        const char  *hex;                /* of all 16 */
    } cases[] = {
        { "zeros", "\x00\x00\x00\x00\x00\x00\x00\x00"
                   "\x00\x00\x00\x00\x00\x00\x00\x00",
          "00000000000000000000000000000000" },
        { "ones", "\xff\xff\xff\xff\xff\xff\xff\xff"
                  "\xff\xff\xff\xff\xff\xff\xff\xff",
          "ffffffffffffffffffffffffffffffff" },
        { "W3C example", "\x4b\xf9\x2f\x35\x77\xb3\x4d\xa6"
                         "\xa3\xce\x92\x9d\x0e\x0e\x47\x36",
          "4bf92f3577b34da6a3ce929d0e0e4736" },
        { "nibbles 9 and a side by side", "\x9a\xa9\x09\x0a\x90\xa0"
                                          "\x89\xab\x01\x23\x45\x67"
                                          "\x89\xab\xcd\xef",
          "9aa9090a90a089ab0123456789abcdef" },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(got, '#', sizeof(got));

        tap_ok(et_hex_encode16(got, (const uint8_t *) cases[i].bytes)
               == got + 32
               && memcmp(got, cases[i].hex, 32) == 0 && got[32] == '#',
               "hex encode16: %s", cases[i].name);

        memset(got, '#', sizeof(got));

        tap_ok(et_hex_encode8(got, (const uint8_t *) cases[i].bytes)
               == got + 16
               && memcmp(got, cases[i].hex, 16) == 0 && got[16] == '#',
               "hex encode8: %s", cases[i].name);
    }

    /* every byte value in every position */

    for (i = 0; i < 256; i += 16) {
        uint8_t  bytes[16];

        for (j = 0; j < 16; j++) {
            bytes[j] = (uint8_t) (i + j * 17);
        }

        et_hex_encode(want, bytes, 16);
        et_hex_encode16(got, bytes);

        if (memcmp(want, got, 32) != 0) {
            break;
        }

        et_hex_encode8(got, bytes + 8);

        if (memcmp(want + 16, got, 16) != 0) {
            break;
        }
    }

    tap_ok(i >= 256, "hex encode16/encode8 match et_hex_encode for every "
           "byte value");
}


static void
test_is_zero(void)
{
    size_t  i;

    static const struct {
        const char  *name;
        const char  *id;
        size_t       n;
        int          zero;
    } cases[] = {
        { "empty", "", 0, 1 },
        { "8 zero bytes", "\0\0\0\0\0\0\0\0", 8, 1 },
        { "16 zero bytes", "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16, 1 },
        { "last byte set", "\0\0\0\0\0\0\0\x01", 8, 0 },
        { "first byte set", "\x80\0\0\0\0\0\0\0", 8, 0 },
        { "middle of 16", "\0\0\0\0\0\0\0\0\x10\0\0\0\0\0\0\0", 16, 0 },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tap_is_int(et_id_is_zero((const uint8_t *) cases[i].id, cases[i].n),
                   cases[i].zero, "id is zero: %s", cases[i].name);
    }
}


static int
cmp16(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}


static int
cmp8(const void *a, const void *b)
{
    return memcmp(a, b, 8);
}


static void
test_ids(void)
{
    size_t     i, n, zero, dup;
    uint64_t   v, ones, zeros;
    uint8_t  (*trace)[ET_TRACE_ID_LEN];
    uint8_t  (*span)[ET_SPAN_ID_LEN];

    n = 100000;

    trace = malloc(n * ET_TRACE_ID_LEN);
    span = malloc(n * ET_SPAN_ID_LEN);
    if (trace == NULL || span == NULL) {
        abort();
    }

    zero = 0;

    for (i = 0; i < n; i++) {
        et_trace_id_new(trace[i]);
        et_span_id_new(span[i]);

        zero += et_id_is_zero(trace[i], ET_TRACE_ID_LEN);
        zero += et_id_is_zero(span[i], ET_SPAN_ID_LEN);
    }

    tap_is_int(zero, 0, "no zero id in %zu trace and span ids", n);

    qsort(trace, n, ET_TRACE_ID_LEN, cmp16);
    qsort(span, n, ET_SPAN_ID_LEN, cmp8);

    dup = 0;

    for (i = 1; i < n; i++) {
        dup += (memcmp(trace[i - 1], trace[i], ET_TRACE_ID_LEN) == 0);
    }

    tap_is_int(dup, 0, "%zu trace ids are distinct", n);

    dup = 0;

    for (i = 1; i < n; i++) {
        dup += (memcmp(span[i - 1], span[i], ET_SPAN_ID_LEN) == 0);
    }

    tap_is_int(dup, 0, "%zu span ids are distinct", n);

    free(trace);
    free(span);

    /* every bit of et_random64() takes both values */
    ones = 0;
    zeros = 0;

    for (i = 0; i < 1000; i++) {
        v = et_random64();
        ones |= v;
        zeros |= ~v;
    }

    tap_ok(ones == UINT64_MAX && zeros == UINT64_MAX,
           "every bit of et_random64() is seen set and clear");

    /* reseeding starts a new sequence */
    {
        uint8_t  a[ET_TRACE_ID_LEN], b[ET_TRACE_ID_LEN];

        et_id_seed();
        et_trace_id_new(a);
        et_id_seed();
        et_trace_id_new(b);

        tap_ok(memcmp(a, b, ET_TRACE_ID_LEN) != 0,
               "et_id_seed() starts a different sequence");
    }
}


/* the first ids a forked child draws, sent back through a pipe */
static int
child_ids(uint8_t ids[FORK_IDS][ET_TRACE_ID_LEN])
{
    int      fd[2], status;
    pid_t    pid;
    size_t   i, got;
    ssize_t  n;

    if (pipe(fd) != 0) {
        return -1;
    }

    pid = fork();

    if (pid < 0) {
        return -1;
    }

    if (pid == 0) {
        close(fd[0]);

        for (i = 0; i < FORK_IDS; i++) {
            et_trace_id_new(ids[i]);
        }

        n = write(fd[1], ids, FORK_IDS * ET_TRACE_ID_LEN);
        _exit(n == FORK_IDS * ET_TRACE_ID_LEN ? 0 : 1);
    }

    close(fd[1]);

    got = 0;

    while (got < FORK_IDS * ET_TRACE_ID_LEN) {
        n = read(fd[0], (uint8_t *) ids + got,
                 FORK_IDS * ET_TRACE_ID_LEN - got);
        if (n <= 0) {
            break;
        }

        got += n;
    }

    close(fd[0]);

    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)
        || WEXITSTATUS(status) != 0 || got != FORK_IDS * ET_TRACE_ID_LEN)
    {
        return -1;
    }

    return 0;
}


static int
any_shared(uint8_t a[FORK_IDS][ET_TRACE_ID_LEN],
    uint8_t b[FORK_IDS][ET_TRACE_ID_LEN])
{
    size_t  i, j;

    for (i = 0; i < FORK_IDS; i++) {
        for (j = 0; j < FORK_IDS; j++) {
            if (memcmp(a[i], b[j], ET_TRACE_ID_LEN) == 0) {
                return 1;
            }
        }
    }

    return 0;
}


static void
test_fork(void)
{
    size_t   i;
    uint8_t  first[ET_TRACE_ID_LEN];
    uint8_t  parent[FORK_IDS][ET_TRACE_ID_LEN];
    uint8_t  child1[FORK_IDS][ET_TRACE_ID_LEN];
    uint8_t  child2[FORK_IDS][ET_TRACE_ID_LEN];

    /* the parent's generator is seeded and in use before the forks */
    et_trace_id_new(first);

    tap_is_int(child_ids(child1), 0, "fork: first child reports its ids");
    tap_is_int(child_ids(child2), 0, "fork: second child reports its ids");

    for (i = 0; i < FORK_IDS; i++) {
        et_trace_id_new(parent[i]);
    }

    tap_ok(!any_shared(parent, child1),
           "fork: child ids differ from the parent's next ids");
    tap_ok(!any_shared(child1, child2),
           "fork: two children of one parent draw different ids");
}


static void *
thread_ids(void *arg)
{
    size_t  i;
    uint8_t (*ids)[ET_TRACE_ID_LEN] = arg;

    for (i = 0; i < FORK_IDS; i++) {
        et_trace_id_new(ids[i]);
    }

    return NULL;
}


static void
test_threads(void)
{
    pthread_t  t1, t2;
    uint8_t    a[FORK_IDS][ET_TRACE_ID_LEN];
    uint8_t    b[FORK_IDS][ET_TRACE_ID_LEN];
    int        rc;

    rc = pthread_create(&t1, NULL, thread_ids, a);
    rc |= pthread_create(&t2, NULL, thread_ids, b);
    rc |= pthread_join(t1, NULL);
    rc |= pthread_join(t2, NULL);

    tap_ok(rc == 0 && !any_shared(a, b),
           "threads: two threads draw different ids");
}


static void
test_speed(void)
{
    size_t           i, n;
    uint8_t          id[ET_TRACE_ID_LEN], acc;
    uint64_t         t0, t1;
    struct timespec  ts;

    n = 1000000;
    acc = 0;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    t0 = (uint64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;

    for (i = 0; i < n; i++) {
        et_trace_id_new(id);
        acc ^= id[0];
    }

    clock_gettime(CLOCK_MONOTONIC, &ts);
    t1 = (uint64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;

    /* informational: timing asserts would be flaky (and valgrind is slow) */
    printf("# %.1f ns per trace id (%u)\n", (double) (t1 - t0) / n, acc);
}


static void
test_clock(void)
{
    uint64_t         ns, m0, m1, prev, now;
    time_t           t;
    size_t           i;
    int              mono;
    struct timespec  req;

    t = time(NULL);
    ns = et_clock_now_ns();

    tap_ok(ns / 1000000000 >= (uint64_t) t - 1
           && ns / 1000000000 <= (uint64_t) t + 1,
           "clock: now_ns agrees with time()");

    mono = 1;
    prev = et_clock_mono_ms();

    for (i = 0; i < 1000; i++) {
        now = et_clock_mono_ms();
        if (now < prev) {
            mono = 0;
        }

        prev = now;
    }

    tap_ok(mono, "clock: mono_ms never goes back");

    m0 = et_clock_mono_ms();
    req.tv_sec = 0;
    req.tv_nsec = 30 * 1000000;
    nanosleep(&req, NULL);
    m1 = et_clock_mono_ms();

    tap_ok(m1 - m0 >= 29 && m1 - m0 < 2000,
           "clock: mono_ms advances in milliseconds (%llu ms for 30 ms)",
           (unsigned long long) (m1 - m0));
}


int
main(void)
{
    test_trim();
    test_hex();
    test_hex_fixed();
    test_is_zero();
    test_ids();
    test_fork();
    test_threads();
    test_clock();
    test_speed();

    return tap_done();
}
