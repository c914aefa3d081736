/*
 * Unit tests: et_queue.c.
 *
 * Operation tables with the expected outcome of every step, a randomized
 * comparison against a simple model (exact "full" decisions, content,
 * entry counts), and threads: one producer and one consumer checking every
 * byte in order, then several producers with "shared".
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "et_core.h"
#include "et_queue.h"
#include "tap.h"


/* the byte at stream position "i": never a long run of one value */
static uint8_t
pattern(uint64_t i)
{
    return (uint8_t) ((i * 2654435761u) >> 13);
}


/* xorshift64*, a deterministic generator per test */
static uint64_t
rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;

    return *s * 2685821657736338717ULL;
}


/* ------------------------------------------------------------------------
 * The model: the entries queued, as lengths, and the stream positions.
 */

#define MODEL_MAX  4096

typedef struct {
    size_t    lens[MODEL_MAX];
    size_t    first;           /* index of the oldest entry */
    size_t    n;               /* entries queued */
    size_t    partial;         /* bytes of the oldest entry consumed */
    uint64_t  wpos;            /* bytes ever written */
    uint64_t  rpos;            /* bytes ever consumed or skipped */
} model_t;


static size_t
model_bytes(model_t *m)
{
    return (size_t) (m->wpos - m->rpos);
}


/* what the queue must decide for an entry of "len" bytes */
static int
model_fits(model_t *m, et_queue_t *q, size_t len)
{
    size_t  off;

    if (len == 0 || len > q->size) {
        return 0;
    }

    if (model_bytes(m) + len > q->size || m->n >= q->nlens) {
        return 0;
    }

    off = (size_t) (m->wpos % q->size);

    return off + len <= q->size || len <= q->scratch_size;
}


/* reserve, fill with the stream pattern, commit; 1 when it fit */
static int
model_write(model_t *m, et_queue_t *q, size_t len)
{
    size_t    i;
    uint8_t  *p;

    p = et_queue_reserve(q, len);

    if (p == NULL) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        p[i] = pattern(m->wpos + i);
    }

    et_queue_commit(q, p, len);

    m->lens[(m->first + m->n) % MODEL_MAX] = len;
    m->n++;
    m->wpos += len;

    return 1;
}


/* 1 when the iovecs hold exactly the pending bytes, in order */
static int
model_check_peek(model_t *m, struct iovec *iov, int niov, size_t total)
{
    int       k;
    size_t    i, seen;
    uint8_t  *p;

    if (total != model_bytes(m)) {
        return 0;
    }

    seen = 0;

    for (k = 0; k < niov; k++) {
        p = iov[k].iov_base;

        for (i = 0; i < iov[k].iov_len; i++) {
            if (p[i] != pattern(m->rpos + seen + i)) {
                return 0;
            }
        }

        seen += iov[k].iov_len;
    }

    return seen == total;
}


/* the entries the model completes by consuming "n" bytes */
static size_t
model_consume(model_t *m, size_t n)
{
    size_t  done, left;

    if (n > model_bytes(m)) {
        n = model_bytes(m);
    }

    m->rpos += n;
    done = 0;

    while (n) {
        left = m->lens[m->first] - m->partial;

        if (n < left) {
            m->partial += n;
            break;
        }

        n -= left;
        m->partial = 0;
        m->first = (m->first + 1) % MODEL_MAX;
        m->n--;
        done++;
    }

    return done;
}


static size_t
model_skip(model_t *m)
{
    if (m->partial == 0) {
        return 0;
    }

    m->rpos += m->lens[m->first] - m->partial;
    m->partial = 0;
    m->first = (m->first + 1) % MODEL_MAX;
    m->n--;

    return 1;
}


/* ------------------------------------------------------------------------
 * Tables.
 */

enum {
    OP_END = 0,
    OP_WRITE,      /* arg: length; want: 1 fits, 0 full */
    OP_PEEK,       /* want: bytes; want2: iovecs */
    OP_CONSUME,    /* arg: bytes; want: entries completed */
    OP_SKIP,       /* want: 1 skipped, 0 at a boundary */
    OP_PENDING     /* want: entries */
};


typedef struct {
    int     op;
    size_t  arg;
    long    want;
    int     want2;
} op_t;


typedef struct {
    const char  *name;
    size_t       size;
    size_t       nentries;
    op_t         ops[16];
} case_t;


static const case_t  cases[] = {

    { "empty", 100, 4, {
        { OP_PEEK, 0, 0, 0 }, { OP_PENDING, 0, 0, 0 },
        { OP_CONSUME, 0, 0, 0 }, { OP_CONSUME, 10, 0, 0 },
        { OP_SKIP, 0, 0, 0 } } },

    { "one entry", 100, 4, {
        { OP_WRITE, 10, 1, 0 }, { OP_PENDING, 0, 1, 0 },
        { OP_PEEK, 0, 10, 1 }, { OP_CONSUME, 10, 1, 0 },
        { OP_PEEK, 0, 0, 0 }, { OP_PENDING, 0, 0, 0 } } },

    { "zero length refused", 100, 4, {
        { OP_WRITE, 0, 0, 0 }, { OP_PENDING, 0, 0, 0 } } },

    { "larger than the queue", 100, 4, {
        { OP_WRITE, 101, 0, 0 }, { OP_WRITE, 100, 1, 0 },
        { OP_PEEK, 0, 100, 1 } } },

    { "full by bytes", 100, 8, {
        { OP_WRITE, 60, 1, 0 }, { OP_WRITE, 41, 0, 0 },
        { OP_WRITE, 40, 1, 0 }, { OP_WRITE, 1, 0, 0 },
        { OP_PEEK, 0, 100, 1 }, { OP_PENDING, 0, 2, 0 },
        { OP_CONSUME, 60, 1, 0 }, { OP_WRITE, 60, 1, 0 },
        { OP_WRITE, 1, 0, 0 }, { OP_PEEK, 0, 100, 2 } } },

    { "full by slots", 100, 4, {
        { OP_WRITE, 1, 1, 0 }, { OP_WRITE, 1, 1, 0 },
        { OP_WRITE, 1, 1, 0 }, { OP_WRITE, 1, 1, 0 },
        { OP_WRITE, 1, 0, 0 }, { OP_PENDING, 0, 4, 0 },
        { OP_CONSUME, 1, 1, 0 }, { OP_WRITE, 1, 1, 0 },
        { OP_WRITE, 1, 0, 0 }, { OP_PEEK, 0, 4, 1 } } },

    { "wrap through scratch", 100, 4, {
        { OP_WRITE, 60, 1, 0 }, { OP_CONSUME, 60, 1, 0 },
        { OP_WRITE, 50, 1, 0 }, { OP_PEEK, 0, 50, 2 },
        { OP_CONSUME, 50, 1, 0 }, { OP_WRITE, 90, 1, 0 },
        { OP_PEEK, 0, 90, 1 } } },

    { "exactly to the end", 100, 4, {
        { OP_WRITE, 70, 1, 0 }, { OP_WRITE, 30, 1, 0 },
        { OP_PEEK, 0, 100, 1 }, { OP_CONSUME, 100, 2, 0 },
        { OP_WRITE, 100, 1, 0 }, { OP_PEEK, 0, 100, 1 } } },

    { "partial consume", 100, 4, {
        { OP_WRITE, 10, 1, 0 }, { OP_WRITE, 10, 1, 0 },
        { OP_CONSUME, 5, 0, 0 }, { OP_PENDING, 0, 2, 0 },
        { OP_PEEK, 0, 15, 1 }, { OP_CONSUME, 10, 1, 0 },
        { OP_PENDING, 0, 1, 0 }, { OP_PEEK, 0, 5, 1 },
        { OP_CONSUME, 5, 1, 0 }, { OP_PENDING, 0, 0, 0 } } },

    { "skip partial", 100, 4, {
        { OP_WRITE, 10, 1, 0 }, { OP_WRITE, 10, 1, 0 },
        { OP_CONSUME, 13, 1, 0 }, { OP_SKIP, 0, 1, 0 },
        { OP_PENDING, 0, 0, 0 }, { OP_PEEK, 0, 0, 0 },
        { OP_SKIP, 0, 0, 0 }, { OP_WRITE, 100, 1, 0 } } },

    { "skip at a boundary", 100, 4, {
        { OP_WRITE, 10, 1, 0 }, { OP_CONSUME, 10, 1, 0 },
        { OP_SKIP, 0, 0, 0 }, { OP_WRITE, 10, 1, 0 },
        { OP_SKIP, 0, 0, 0 }, { OP_PENDING, 0, 1, 0 } } },

    { "partial consume frees bytes", 100, 4, {
        { OP_WRITE, 60, 1, 0 }, { OP_CONSUME, 30, 0, 0 },
        { OP_WRITE, 71, 0, 0 }, { OP_WRITE, 70, 1, 0 },
        { OP_PEEK, 0, 100, 2 }, { OP_CONSUME, 100, 2, 0 } } },

    { "consume more than peeked", 100, 4, {
        { OP_WRITE, 10, 1, 0 }, { OP_CONSUME, 1000, 1, 0 },
        { OP_PEEK, 0, 0, 0 }, { OP_WRITE, 100, 1, 0 } } },

    { "skip then wrap", 100, 4, {
        { OP_WRITE, 80, 1, 0 }, { OP_CONSUME, 1, 0, 0 },
        { OP_SKIP, 0, 1, 0 }, { OP_WRITE, 40, 1, 0 },
        { OP_PEEK, 0, 40, 2 }, { OP_CONSUME, 39, 0, 0 },
        { OP_SKIP, 0, 1, 0 }, { OP_PENDING, 0, 0, 0 } } },
};


static void
test_tables(void)
{
    int           niov;
    size_t        i, k, got;
    model_t      *m;
    et_queue_t    q;
    const op_t   *op;
    struct iovec  iov[2];

    m = malloc(sizeof(model_t));

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(m, 0, sizeof(model_t));

        if (et_queue_init(&q, cases[i].size, cases[i].nentries, 0)
            != ET_OK)
        {
            tap_ok(0, "%s: init", cases[i].name);
            continue;
        }

        for (k = 0; k < 16 && cases[i].ops[k].op != OP_END; k++) {
            op = &cases[i].ops[k];

            switch (op->op) {

            case OP_WRITE:
                tap_is_int(model_write(m, &q, op->arg), op->want,
                           "%s: step %zu: write %zu", cases[i].name, k + 1,
                           op->arg);
                break;

            case OP_PEEK:
                got = et_queue_peek(&q, iov, &niov);
                tap_is_int(got, op->want, "%s: step %zu: peek bytes",
                           cases[i].name, k + 1);
                tap_is_int(niov, op->want2, "%s: step %zu: peek iovecs",
                           cases[i].name, k + 1);
                tap_ok(model_check_peek(m, iov, niov, got),
                       "%s: step %zu: peek content", cases[i].name, k + 1);
                break;

            case OP_CONSUME:
                /* the contract: consume follows a peek */
                (void) et_queue_peek(&q, iov, &niov);
                got = et_queue_consume(&q, op->arg);
                tap_is_int(got, op->want, "%s: step %zu: consume %zu",
                           cases[i].name, k + 1, op->arg);
                tap_is_int(model_consume(m, op->arg), op->want,
                           "%s: step %zu: model agrees", cases[i].name,
                           k + 1);
                break;

            case OP_SKIP:
                tap_is_int(et_queue_skip_partial(&q), op->want,
                           "%s: step %zu: skip_partial", cases[i].name,
                           k + 1);
                model_skip(m);
                break;

            default: /* OP_PENDING */
                tap_is_int(et_queue_pending(&q), op->want,
                           "%s: step %zu: pending", cases[i].name, k + 1);
                break;
            }
        }

        et_queue_free(&q);
    }

    free(m);
}


static void
test_init(void)
{
    et_queue_t  q;

    tap_is_int(et_queue_init(&q, 0, 16, 0), ET_ERROR, "init: size 0");
    tap_is_int(et_queue_init(&q, 1024, 0, 0), ET_ERROR, "init: 0 slots");

    tap_is_int(et_queue_init(&q, 1024, 16, 1), ET_OK, "init: shared");
    tap_is_int(q.scratch_size, 1024, "init: scratch no larger than the ring");
    et_queue_free(&q);
    et_queue_free(&q);
    tap_ok(q.buf == NULL, "free twice is harmless");

    tap_is_int(et_queue_init(&q, 1 << 20, 16, 0), ET_OK, "init: 1 MiB");
    tap_is_int(q.scratch_size, 64 * 1024, "init: scratch of 64 KiB");
    et_queue_free(&q);
}


/* an entry that would wrap and is larger than scratch is refused */
static void
test_scratch_limit(void)
{
    int           niov;
    size_t        size;
    model_t      *m;
    et_queue_t    q;
    struct iovec  iov[2];

    m = calloc(1, sizeof(model_t));
    size = 128 * 1024;

    if (et_queue_init(&q, size, 64, 0) != ET_OK) {
        tap_ok(0, "scratch limit: init");
        return;
    }

    /* the head at 100 KiB, the ring empty */
    tap_ok(model_write(m, &q, 100 * 1024), "scratch limit: 100 KiB entry");
    (void) et_queue_peek(&q, iov, &niov);
    tap_is_int(et_queue_consume(&q, 100 * 1024), 1, "scratch limit: consumed");
    model_consume(m, 100 * 1024);

    tap_ok(!model_write(m, &q, 70 * 1024),
           "scratch limit: a 70 KiB entry wrapping is refused");
    tap_ok(model_write(m, &q, 64 * 1024),
           "scratch limit: a 64 KiB entry wrapping fits");
    tap_is_int(et_queue_peek(&q, iov, &niov), 64 * 1024,
               "scratch limit: peek");
    tap_is_int(niov, 2, "scratch limit: in two parts");
    tap_ok(model_check_peek(m, iov, niov, 64 * 1024),
           "scratch limit: content");

    et_queue_free(&q);
    free(m);
}


/* an entry reserved for more than it turns out to be, in place and wrapped */
static void
test_commit_less(void)
{
    int           niov;
    size_t        i, n;
    uint8_t      *p;
    et_queue_t    q;
    struct iovec  iov[2];
    uint8_t       got[64];

    if (et_queue_init(&q, 100, 8, 0) != ET_OK) {
        tap_ok(0, "commit less: init");
        return;
    }

    /* in place: 40 reserved, 10 written */
    p = et_queue_reserve(&q, 40);
    memset(p, 'a', 10);
    et_queue_commit(&q, p, 10);
    tap_is_int(et_queue_peek(&q, iov, &niov), 10, "commit less: 10 bytes");
    tap_is_int(et_queue_consume(&q, 10), 1, "commit less: one entry");

    /* move the head to 80: 20 bytes left before the end */
    p = et_queue_reserve(&q, 70);
    et_queue_commit(&q, p, 70);
    (void) et_queue_peek(&q, iov, &niov);
    (void) et_queue_consume(&q, 70);

    /* reserved 50 (does not fit before the end: scratch), wrote 15 */
    p = et_queue_reserve(&q, 50);
    tap_ok(p == q.scratch, "commit less: a wrapping reserve gets scratch");
    memset(p, 'b', 15);
    et_queue_commit(&q, p, 15);
    n = et_queue_peek(&q, iov, &niov);
    tap_is_int(n, 15, "commit less, wrapped: 15 bytes");
    tap_is_int(niov, 1, "commit less, wrapped: written before the end");

    memcpy(got, iov[0].iov_base, iov[0].iov_len);

    for (i = 0; i < 15 && got[i] == 'b'; i++) { /* void */ }

    tap_is_int(i, 15, "commit less, wrapped: the bytes");
    tap_is_int(et_queue_consume(&q, 15), 1, "commit less, wrapped: one entry");

    /* reserved 50 again from 5 before the end, wrote 30: both parts */
    p = et_queue_reserve(&q, 50);
    tap_ok(p == q.scratch, "commit less: scratch again");
    memset(p, 'c', 30);
    et_queue_commit(&q, p, 30);
    n = et_queue_peek(&q, iov, &niov);
    tap_is_int(n, 30, "commit less, split: 30 bytes");
    tap_is_int(niov, 2, "commit less, split: in two parts");
    tap_is_int(et_queue_consume(&q, 30), 1, "commit less, split: one entry");

    et_queue_free(&q);
}


/*
 * et_queue_first() and et_queue_next(): the entries one by one, oldest
 * first, one wrapping around the end of the ring in two parts; nothing
 * while an entry is partly consumed.
 */
static void
test_iter(void)
{
    int              niov;
    size_t           i, len;
    uint8_t         *p;
    et_queue_t       q;
    struct iovec     iov[2];
    et_queue_iter_t  it;

    static const struct {
        size_t   len;
        int      niov;
        size_t   first;
    } want[] = { { 30, 1, 30 }, { 20, 1, 20 }, { 40, 2, 10 }, { 5, 1, 5 } };

    if (et_queue_init(&q, 100, 8, 0) != ET_OK) {
        tap_ok(0, "iter: init");
        return;
    }

    /* the tail at 40, so that the third entry wraps */
    p = et_queue_reserve(&q, 40);
    et_queue_commit(&q, p, 40);
    (void) et_queue_peek(&q, iov, &niov);
    (void) et_queue_consume(&q, 40);

    et_queue_first(&q, &it);
    tap_is_int(et_queue_next(&q, &it, iov, &niov), 0, "iter: empty");

    for (i = 0; i < 4; i++) {
        p = et_queue_reserve(&q, want[i].len);
        memset(p, 'a' + (int) i, want[i].len);
        et_queue_commit(&q, p, want[i].len);
    }

    et_queue_first(&q, &it);

    for (i = 0; i < 4; i++) {
        len = et_queue_next(&q, &it, iov, &niov);
        tap_ok(len == want[i].len && niov == want[i].niov
               && iov[0].iov_len == want[i].first
               && ((uint8_t *) iov[0].iov_base)[0] == 'a' + i
               && (niov == 1
                   || (iov[1].iov_len == len - want[i].first
                       && ((uint8_t *) iov[1].iov_base)[0] == 'a' + i)),
               "iter: entry %zu, %zu bytes in %d part%s", i, want[i].len,
               want[i].niov, want[i].niov == 1 ? "" : "s");
    }

    tap_is_int(et_queue_next(&q, &it, iov, &niov), 0, "iter: after the last");
    tap_is_int(et_queue_pending(&q), 4, "iter: nothing consumed");

    /* consumed one and a half: the iteration starts nowhere */
    tap_is_int(et_queue_consume(&q, 40), 1, "iter: 40 bytes consumed");
    et_queue_first(&q, &it);
    tap_is_int(et_queue_next(&q, &it, iov, &niov), 0,
               "iter: nothing while an entry is partly consumed");

    tap_is_int(et_queue_consume(&q, 10), 1, "iter: the rest of it");
    et_queue_first(&q, &it);
    len = et_queue_next(&q, &it, iov, &niov);
    tap_ok(len == 40 && niov == 2, "iter: from the wrapping entry on");

    et_queue_free(&q);
}


/*
 * Random operations against the model: every "full" decision (and the
 * lock-free "no room" hint), every peek and every entry count must agree.
 */
static void
test_model(const char *name, size_t size, size_t nentries, size_t maxlen,
    uint64_t seed, unsigned steps)
{
    int           niov, ok;
    size_t        len, got, want, total;
    unsigned      i, fits, full, wraps;
    model_t      *m;
    uint64_t      r, in, out;
    et_queue_t    q;
    struct iovec  iov[2];

    m = calloc(1, sizeof(model_t));

    if (et_queue_init(&q, size, nentries, 0) != ET_OK) {
        tap_ok(0, "%s: init", name);
        free(m);
        return;
    }

    /* the counts a status handler reads, garbage before they are set */
    in = 12345;
    out = 678;
    et_queue_count(&q, &in, &out);

    ok = 1;
    fits = 0;
    full = 0;
    wraps = 0;

    for (i = 0; i < steps && ok; i++) {
        r = rnd(&seed);

        switch (r % 8) {

        case 0: case 1: case 2: case 3:
            len = (size_t) (rnd(&seed) % (maxlen + 1));

            /* the lock-free hint: no room by bytes or by slots */
            want = model_bytes(m) + len > size || m->n >= nentries;
            got = (size_t) et_queue_no_room(&q, len);

            if (got != want) {
                tap_ok(0, "%s: step %u: no room for %zu: got %zu, model %zu",
                       name, i, len, got, want);
                ok = 0;
                break;
            }

            want = (size_t) model_fits(m, &q, len);

            if (want && (m->wpos % size) + len > size) {
                wraps++;
            }

            got = (size_t) model_write(m, &q, len);

            if (got != want) {
                tap_ok(0, "%s: step %u: write %zu: got %zu, model %zu",
                       name, i, len, got, want);
                ok = 0;
            }

            fits += (got != 0);
            full += (got == 0);
            break;

        case 4: case 5: case 6:
            total = et_queue_peek(&q, iov, &niov);

            if (!model_check_peek(m, iov, niov, total)) {
                tap_ok(0, "%s: step %u: peek", name, i);
                ok = 0;
                break;
            }

            len = total ? (size_t) (rnd(&seed) % (total + 1)) : 0;

            /* now and then, everything */
            if (r & 0x100) {
                len = total;
            }

            got = et_queue_consume(&q, len);
            want = model_consume(m, len);

            if (got != want) {
                tap_ok(0, "%s: step %u: consume %zu: got %zu, model %zu",
                       name, i, len, got, want);
                ok = 0;
            }

            break;

        default:
            got = et_queue_skip_partial(&q);
            want = model_skip(m);

            if (got != want) {
                tap_ok(0, "%s: step %u: skip", name, i);
                ok = 0;
            }

            break;
        }

        if (ok && et_queue_pending(&q) != m->n) {
            tap_ok(0, "%s: step %u: pending %llu, model %zu", name, i,
                   (unsigned long long) et_queue_pending(&q), m->n);
            ok = 0;
        }

        if (ok && in - out != m->n) {
            tap_ok(0, "%s: step %u: counted in %llu - out %llu, model %zu",
                   name, i, (unsigned long long) in,
                   (unsigned long long) out, m->n);
            ok = 0;
        }
    }

    tap_ok(ok, "%s: %u steps agree with the model (%u written, %u full, "
           "%u wrapped)", name, steps, fits, full, wraps);

    tap_ok(fits > steps / 8 && full > 0,
           "%s: both outcomes were exercised", name);

    et_queue_free(&q);
    free(m);
}


/* ------------------------------------------------------------------------
 * One producer, one consumer: every byte arrives, in order.
 */

typedef struct {
    et_queue_t  *q;
    uint64_t     entries;
    uint64_t     seed;
    size_t       maxlen;
    uint64_t     full;          /* reserve refused, retried */
} stress_t;


static void *
stress_producer(void *data)
{
    size_t     len, i;
    uint8_t   *p;
    uint64_t   n, pos, seed;
    stress_t  *s;

    s = data;
    seed = s->seed;
    pos = 0;

    for (n = 0; n < s->entries; n++) {
        len = 1 + (size_t) (rnd(&seed) % s->maxlen);

        while ((p = et_queue_reserve(s->q, len)) == NULL) {
            s->full++;
            sched_yield();
        }

        for (i = 0; i < len; i++) {
            p[i] = pattern(pos + i);
        }

        et_queue_commit(s->q, p, len);
        pos += len;
    }

    return NULL;
}


static void
test_stress(uint64_t entries, size_t size, size_t nentries, size_t maxlen)
{
    int           niov, k, ok;
    size_t        i, total, n, len, left;
    uint8_t      *p;
    uint64_t      pos, done, want_done, seed, cseed, ends;
    stress_t      s;
    pthread_t     t;
    et_queue_t    q;
    struct iovec  iov[2];

    if (et_queue_init(&q, size, nentries, 0) != ET_OK) {
        tap_ok(0, "stress: init");
        return;
    }

    s.q = &q;
    s.entries = entries;
    s.seed = 0x9e3779b97f4a7c15ULL;
    s.maxlen = maxlen;
    s.full = 0;

    if (pthread_create(&t, NULL, stress_producer, &s) != 0) {
        tap_ok(0, "stress: pthread_create");
        et_queue_free(&q);
        return;
    }

    /* the consumer replays the producer's lengths to know the entries */
    seed = s.seed;
    cseed = 12345;
    ends = 1 + (rnd(&seed) % maxlen);   /* end of the first entry */
    want_done = 0;
    pos = 0;
    done = 0;
    ok = 1;

    while (done < entries) {
        total = et_queue_peek(&q, iov, &niov);

        if (total == 0) {
            sched_yield();
            continue;
        }

        if (!ok) {
            /* drain, so that the producer finishes */
            done += et_queue_consume(&q, total);
            continue;
        }

        for (k = 0; k < niov && ok; k++) {
            p = iov[k].iov_base;

            for (i = 0; i < iov[k].iov_len; i++) {
                if (p[i] != pattern(pos + i)) {
                    tap_ok(0, "stress: byte %llu",
                           (unsigned long long) (pos + i));
                    ok = 0;
                    break;
                }
            }

            pos += iov[k].iov_len;
        }

        pos -= total;

        /* consume in random pieces: partial entries on the way */
        left = total;

        while (left && ok) {
            n = 1 + (size_t) (rnd(&cseed) % left);

            if (rnd(&cseed) & 1) {
                n = left;
            }

            len = et_queue_consume(&q, n);
            pos += n;
            left -= n;
            done += len;

            while (ends <= pos) {
                want_done++;

                if (want_done < entries) {
                    ends += 1 + (rnd(&seed) % maxlen);

                } else {
                    ends = UINT64_MAX;
                }
            }

            if (done != want_done) {
                tap_ok(0, "stress: %llu entries completed, expected %llu",
                       (unsigned long long) done,
                       (unsigned long long) want_done);
                ok = 0;
            }
        }
    }

    pthread_join(t, NULL);

    tap_ok(ok, "stress: %llu entries, %llu bytes in order (producer "
           "found it full %llu times)", (unsigned long long) entries,
           (unsigned long long) pos, (unsigned long long) s.full);

    tap_is_int(et_queue_peek(&q, iov, &niov), 0, "stress: nothing left");
    tap_is_int(et_queue_pending(&q), 0, "stress: no entry pending");

    et_queue_free(&q);
}


/* ------------------------------------------------------------------------
 * Several producers with "shared": entries are whole and in each producer's
 * order.  An entry: length (4 bytes), producer (1), sequence (4), filler.
 */

#define SHARED_PRODUCERS  3

typedef struct {
    et_queue_t  *q;
    unsigned     id;
    uint32_t     entries;
} producer_t;


static void *
shared_producer(void *data)
{
    size_t       len, i;
    uint8_t     *p;
    uint32_t     seq, l32;
    uint64_t     seed;
    producer_t  *pr;

    pr = data;
    seed = 77 + pr->id;

    for (seq = 0; seq < pr->entries; seq++) {
        len = 9 + (size_t) (rnd(&seed) % 600);

        while ((p = et_queue_reserve(pr->q, len)) == NULL) {
            sched_yield();
        }

        l32 = (uint32_t) len;
        memcpy(p, &l32, 4);
        p[4] = (uint8_t) pr->id;
        memcpy(p + 5, &seq, 4);

        for (i = 9; i < len; i++) {
            p[i] = (uint8_t) (pr->id * 31 + seq + i);
        }

        et_queue_commit(pr->q, p, len);
    }

    return NULL;
}


static void
test_shared(uint32_t entries)
{
    int           niov, ok;
    size_t        total, i, off, len;
    uint8_t      *stream, *e;
    uint32_t      next[SHARED_PRODUCERS], seq, l32, got;
    uint64_t      done, want;
    unsigned      k, id;
    pthread_t     t[SHARED_PRODUCERS];
    producer_t    pr[SHARED_PRODUCERS];
    et_queue_t    q;
    struct iovec  iov[2];

    if (et_queue_init(&q, 8192, 64, 1) != ET_OK) {
        tap_ok(0, "shared: init");
        return;
    }

    for (k = 0; k < SHARED_PRODUCERS; k++) {
        pr[k].q = &q;
        pr[k].id = k;
        pr[k].entries = entries;
        next[k] = 0;
        pthread_create(&t[k], NULL, shared_producer, &pr[k]);
    }

    /* the bytes are copied out, entries parsed from the copy */
    stream = malloc(8192 + 1024);
    off = 0;
    done = 0;
    want = (uint64_t) entries * SHARED_PRODUCERS;
    ok = 1;

    while (done < want) {
        total = et_queue_peek(&q, iov, &niov);

        if (total == 0) {
            sched_yield();
            continue;
        }

        if (!ok) {
            /* drain, so that the producers finish */
            done += et_queue_consume(&q, total);
            continue;
        }

        memcpy(stream + off, iov[0].iov_base, iov[0].iov_len);

        if (niov == 2) {
            memcpy(stream + off + iov[0].iov_len, iov[1].iov_base,
                   iov[1].iov_len);
        }

        off += total;
        got = (uint32_t) et_queue_consume(&q, total);

        /* every entry the queue says is complete parses whole */
        e = stream;

        for (i = 0; i < got && ok; i++) {
            memcpy(&l32, e, 4);
            id = e[4];
            memcpy(&seq, e + 5, 4);

            if (id >= SHARED_PRODUCERS || seq != next[id]
                || e + l32 > stream + off)
            {
                tap_ok(0, "shared: entry %llu is torn or out of order",
                       (unsigned long long) done);
                ok = 0;
                break;
            }

            for (len = 9; len < l32; len++) {
                if (e[len] != (uint8_t) (id * 31 + seq + len)) {
                    tap_ok(0, "shared: entry %llu content",
                           (unsigned long long) done);
                    ok = 0;
                    break;
                }
            }

            next[id]++;
            e += l32;
        }

        done += got;

        /* a partial entry stays for the next round */
        len = (size_t) (stream + off - e);
        memmove(stream, e, len);
        off = len;
    }

    for (k = 0; k < SHARED_PRODUCERS; k++) {
        pthread_join(t[k], NULL);
    }

    if (ok) {
        tap_ok(done == want && off == 0,
               "shared: %u producers x %u entries, whole and in order",
               SHARED_PRODUCERS, entries);
    }

    free(stream);
    et_queue_free(&q);
}


int
main(void)
{
    uint64_t     entries;
    const char  *env;

    env = getenv("ET_STRESS_ENTRIES");
    entries = env ? strtoull(env, NULL, 10) : 100000;

    test_init();
    test_tables();
    test_scratch_limit();
    test_commit_less();
    test_iter();

    test_model("model: small ring", 100, 8, 40, 1, 200000);
    test_model("model: slots bind", 1000, 4, 30, 2, 200000);
    test_model("model: odd size", 997, 64, 300, 3, 200000);
    test_model("model: scratch limit", 150000, 16, 90000, 4, 3000);

    test_stress(entries, 16 * 1024, 64, 3000);
    test_stress(entries, 4093, 1000, 200);
    test_shared((uint32_t) (entries / 10));

    return tap_done();
}
