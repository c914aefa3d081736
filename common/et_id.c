/*
 * Trace and span ids: a per-thread xoshiro256** generator (Blackman and
 * Vigna), seeded from getrandom().
 *
 * Nothing on the id path takes a lock or makes a system call: the only
 * shared state is a generation counter that a fork handler bumps in the
 * child, so a forked worker (or a thread started later) notices that its
 * state is stale and reseeds before its next id.  Without this, every nginx
 * worker forked from a master that had already drawn an id would repeat the
 * master's sequence.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "et_id.h"


typedef struct {
    uint64_t   s[4];
    unsigned   generation;      /* et_id_generation when seeded; 0: never */
} et_rng_t;


static void et_rng_seed(et_rng_t *rng);
static void et_id_atfork_init(void);
static void et_id_atfork_child(void);


/*
 * initial-exec: the module is dlopen()ed, and the default (dynamic) model
 * would call __tls_get_addr() for every id; glibc keeps static TLS room
 * for a few small variables of dlopen()ed objects
 */
static __thread et_rng_t  et_rng __attribute__((tls_model("initial-exec")));

/* written only by the fork child handler, while the child has one thread */
static unsigned           et_id_generation = 1;
static pthread_once_t     et_id_once = PTHREAD_ONCE_INIT;


/* "%02x" of every byte value, so encoding is one 2-byte copy per byte */
static const char  et_hex_pairs[512 + 1] =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
    "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
    "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
    "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
    "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
    "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
    "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";


/* the value of a lowercase hex digit; 0xff for every other byte */
#define XX  0xff

static const uint8_t  et_hex_values[256] = {
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
     0,  1,  2,  3,  4,  5,  6,  7,  8,  9, XX, XX, XX, XX, XX, XX,
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
    XX, 10, 11, 12, 13, 14, 15, XX, XX, XX, XX, XX, XX, XX, XX, XX,
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX
};

#undef XX


static inline uint64_t
et_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}


static inline uint64_t
et_rng_next(et_rng_t *rng)
{
    uint64_t  *s, r, t;

    s = rng->s;

    r = et_rotl(s[1] * 5, 7) * 9;
    t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];

    s[2] ^= t;
    s[3] = et_rotl(s[3], 45);

    return r;
}


static inline et_rng_t *
et_rng_get(void)
{
    et_rng_t  *rng;

    rng = &et_rng;

    if (rng->generation != et_id_generation) {
        et_rng_seed(rng);
    }

    return rng;
}


static uint64_t
et_splitmix64(uint64_t *x)
{
    uint64_t  z;

    z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;

    return z ^ (z >> 31);
}


static void
et_rng_seed(et_rng_t *rng)
{
    size_t           got;
    ssize_t          n;
    uint64_t         x;
    unsigned         i;
    struct timespec  ts;
    uint8_t          buf[sizeof(rng->s)];

    (void) pthread_once(&et_id_once, et_id_atfork_init);

    got = 0;

    while (got < sizeof(buf)) {
        n = getrandom(buf + got, sizeof(buf) - got, 0);

        if (n > 0) {
            got += (size_t) n;
            continue;
        }

        if (n < 0 && errno == EINTR) {
            continue;
        }

        break;
    }

    memcpy(rng->s, buf, sizeof(rng->s));

    if (got < sizeof(buf)) {

        /*
         * No kernel randomness (seccomp, an old kernel): the best we have
         * is what differs between processes, threads and moments.
         */

        (void) clock_gettime(CLOCK_REALTIME, &ts);

        x = (uint64_t) ts.tv_sec * 1000000000 + (uint64_t) ts.tv_nsec;
        x ^= (uint64_t) getpid() << 32;
        x ^= (uint64_t) (uintptr_t) rng;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        x ^= (uint64_t) ts.tv_nsec << 20;

        for (i = 0; i < 4; i++) {
            rng->s[i] ^= et_splitmix64(&x);
        }
    }

    /* xoshiro's one forbidden state */
    if ((rng->s[0] | rng->s[1] | rng->s[2] | rng->s[3]) == 0) {
        rng->s[0] = 0x9e3779b97f4a7c15ULL;
    }

    rng->generation = et_id_generation;
}


static void
et_id_atfork_init(void)
{
    (void) pthread_atfork(NULL, NULL, et_id_atfork_child);
}


static void
et_id_atfork_child(void)
{
    if (++et_id_generation == 0) {
        et_id_generation = 1;
    }
}


void
et_id_seed(void)
{
    et_rng_seed(&et_rng);
}


void
et_trace_id_new(uint8_t id[ET_TRACE_ID_LEN])
{
    uint64_t   hi, lo;
    et_rng_t  *rng;

    rng = et_rng_get();

    do {
        hi = et_rng_next(rng);
        lo = et_rng_next(rng);
    } while ((hi | lo) == 0);

    memcpy(id, &hi, sizeof(uint64_t));
    memcpy(id + sizeof(uint64_t), &lo, sizeof(uint64_t));
}


void
et_span_id_new(uint8_t id[ET_SPAN_ID_LEN])
{
    uint64_t   v;
    et_rng_t  *rng;

    rng = et_rng_get();

    do {
        v = et_rng_next(rng);
    } while (v == 0);

    memcpy(id, &v, sizeof(uint64_t));
}


uint64_t
et_random64(void)
{
    return et_rng_next(et_rng_get());
}


int
et_id_is_zero(const uint8_t *id, size_t n)
{
    uint8_t  acc;

    acc = 0;

    while (n--) {
        acc |= *id++;
    }

    return acc == 0;
}


/* one 2-byte load and one 2-byte store per byte, four bytes a round */
uint8_t *
et_hex_encode(uint8_t *dst, const uint8_t *src, size_t n)
{
    while (n >= 4) {
        memcpy(dst, &et_hex_pairs[src[0] * 2], 2);
        memcpy(dst + 2, &et_hex_pairs[src[1] * 2], 2);
        memcpy(dst + 4, &et_hex_pairs[src[2] * 2], 2);
        memcpy(dst + 6, &et_hex_pairs[src[3] * 2], 2);
        dst += 8;
        src += 4;
        n -= 4;
    }

    while (n--) {
        memcpy(dst, &et_hex_pairs[*src++ * 2], 2);
        dst += 2;
    }

    return dst;
}


int
et_hex_decode(uint8_t *dst, const uint8_t *src, size_t n)
{
    uint8_t  hi, lo, bad;

    bad = 0;

    while (n--) {
        hi = et_hex_values[src[0]];
        lo = et_hex_values[src[1]];
        src += 2;

        bad |= hi | lo;
        *dst++ = (uint8_t) (hi << 4 | lo);
    }

    /* valid digits are 0..15, so any high bit means a bad character */
    return (bad & 0xf0) ? ET_ERROR : ET_OK;
}
