/*
 * The bounded single-producer, single-consumer queue of encoded entries.
 *
 * Positions are monotonically increasing 64-bit counters (they never wrap in
 * practice); the ring offset is the position modulo the size.  The producer
 * owns head_bytes and publishes whole entries by advancing head_entries with
 * a release store, after their bytes and their length slot are written.  The
 * consumer never reads head_bytes: it learns the bytes from the lengths of
 * the entries it sees, so there is a single published producer position and
 * nothing to keep consistent between two.  The consumer gives space back by
 * advancing tail_bytes and tail_entries with release stores, after it is
 * done reading what they cover.
 *
 * An entry that would wrap around the end of the ring is written into the
 * scratch buffer and copied in two parts at commit: the encoder always
 * writes contiguous memory, and the consumer still sees at most two iovecs.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdlib.h>
#include <string.h>

#include "et_queue.h"


#define ET_QUEUE_SCRATCH_SIZE  (64 * 1024)


int
et_queue_init(et_queue_t *q, size_t size, size_t nentries, int shared)
{
    memset(q, 0, sizeof(et_queue_t));

    if (size == 0 || nentries == 0 || nentries > SIZE_MAX / sizeof(uint32_t))
    {
        return ET_ERROR;
    }

    q->size = size;
    q->nlens = nentries;
    q->scratch_size = size < ET_QUEUE_SCRATCH_SIZE ? size
                                                    : ET_QUEUE_SCRATCH_SIZE;
    q->shared = shared;

    q->buf = malloc(size);
    q->lens = malloc(nentries * sizeof(uint32_t));
    q->scratch = malloc(q->scratch_size);

    if (q->buf == NULL || q->lens == NULL || q->scratch == NULL) {
        goto failed;
    }

    if (pthread_mutex_init(&q->lock, NULL) != 0) {
        goto failed;
    }

    return ET_OK;

failed:

    free(q->buf);
    free(q->lens);
    free(q->scratch);
    memset(q, 0, sizeof(et_queue_t));

    return ET_ERROR;
}


void
et_queue_free(et_queue_t *q)
{
    if (q->buf == NULL) {
        return;
    }

    pthread_mutex_destroy(&q->lock);

    free(q->buf);
    free(q->lens);
    free(q->scratch);

    memset(q, 0, sizeof(et_queue_t));
}


void
et_queue_count(et_queue_t *q, uint64_t *in, uint64_t *out)
{
    q->count_in = in;
    q->count_out = out;

    __atomic_store_n(in, q->head_entries, __ATOMIC_RELAXED);
    __atomic_store_n(out, q->tail_entries, __ATOMIC_RELEASE);
}


uint8_t *
et_queue_reserve(et_queue_t *q, size_t len)
{
    size_t    off;
    uint64_t  tail_bytes, tail_entries;

    if (len == 0 || len > q->size || len > UINT32_MAX) {
        return NULL;
    }

    if (q->shared) {
        pthread_mutex_lock(&q->lock);
    }

    /* acquire: the consumer is done with what it gave back */
    tail_bytes = __atomic_load_n(&q->tail_bytes, __ATOMIC_ACQUIRE);
    tail_entries = __atomic_load_n(&q->tail_entries, __ATOMIC_ACQUIRE);

    if (q->head_bytes - tail_bytes + len > q->size
        || q->head_entries - tail_entries >= q->nlens)
    {
        goto full;
    }

    off = q->head_off;

    if (off + len <= q->size) {
        return q->buf + off;
    }

    if (len <= q->scratch_size) {
        return q->scratch;
    }

full:

    if (q->shared) {
        pthread_mutex_unlock(&q->lock);
    }

    return NULL;
}


int
et_queue_no_room(et_queue_t *q, size_t len)
{
    uint64_t  head_bytes, head_entries, tail_bytes, tail_entries;

    head_bytes = __atomic_load_n(&q->head_bytes, __ATOMIC_RELAXED);
    head_entries = __atomic_load_n(&q->head_entries, __ATOMIC_RELAXED);
    tail_bytes = __atomic_load_n(&q->tail_bytes, __ATOMIC_RELAXED);
    tail_entries = __atomic_load_n(&q->tail_entries, __ATOMIC_RELAXED);

    return head_bytes - tail_bytes + len > q->size
           || head_entries - tail_entries >= q->nlens;
}


void
et_queue_commit(et_queue_t *q, uint8_t *p, size_t len)
{
    size_t  off, n;

    if (p == q->scratch) {
        off = q->head_off;
        n = q->size - off;

        /* reserved for more: what was written may fit before the end */
        if (len <= n) {
            memcpy(q->buf + off, p, len);

        } else {
            memcpy(q->buf + off, p, n);
            memcpy(q->buf, p + n, len - n);
        }
    }

    q->lens[q->head_slot] = (uint32_t) len;

    /* atomic only for et_queue_no_room(), which reads it without the lock */
    __atomic_store_n(&q->head_bytes, q->head_bytes + len, __ATOMIC_RELAXED);

    /* the ring positions by addition: a division per span is not cheap */

    q->head_off += len;

    if (q->head_off >= q->size) {
        q->head_off -= q->size;
    }

    if (++q->head_slot == q->nlens) {
        q->head_slot = 0;
    }

    /* before the entry: a consumer that sees it sees it counted */
    if (q->count_in) {
        __atomic_store_n(q->count_in, q->head_entries + 1, __ATOMIC_RELAXED);
    }

    /* release: the bytes and the length are visible before the entry */
    __atomic_store_n(&q->head_entries, q->head_entries + 1,
                     __ATOMIC_RELEASE);

    if (q->shared) {
        pthread_mutex_unlock(&q->lock);
    }
}


/* adds the lengths of newly published entries to end_bytes */
static void
et_queue_see(et_queue_t *q)
{
    size_t    slot;
    uint64_t  head, seen, end;

    head = __atomic_load_n(&q->head_entries, __ATOMIC_ACQUIRE);

    seen = q->seen_entries;
    slot = q->seen_slot;
    end = q->end_bytes;

    while (seen != head) {
        end += q->lens[slot];
        seen++;

        if (++slot == q->nlens) {
            slot = 0;
        }
    }

    q->seen_entries = seen;
    q->seen_slot = slot;
    q->end_bytes = end;
}


size_t
et_queue_ready(et_queue_t *q)
{
    et_queue_see(q);

    return (size_t) (q->end_bytes - q->tail_bytes);
}


/* "len" bytes from byte position "pos" as at most two iovecs */
static void
et_queue_iov(et_queue_t *q, uint64_t pos, size_t len, struct iovec iov[2],
    int *niov)
{
    size_t  off, first;

    off = (size_t) (pos % q->size);
    first = q->size - off;

    iov[0].iov_base = q->buf + off;

    if (len <= first) {
        iov[0].iov_len = len;
        *niov = 1;

    } else {
        iov[0].iov_len = first;
        iov[1].iov_base = q->buf;
        iov[1].iov_len = len - first;
        *niov = 2;
    }
}


size_t
et_queue_peek(et_queue_t *q, struct iovec iov[2], int *niov)
{
    size_t  len;

    len = et_queue_ready(q);

    if (len == 0) {
        *niov = 0;
        return 0;
    }

    et_queue_iov(q, q->tail_bytes, len, iov, niov);

    return len;
}


size_t
et_queue_consume(et_queue_t *q, size_t n)
{
    size_t    done, left, len, slot;
    uint64_t  tail;

    if (n > q->end_bytes - q->tail_bytes) {
        n = (size_t) (q->end_bytes - q->tail_bytes);
    }

    if (n == 0) {
        return 0;
    }

    tail = q->tail_entries;
    slot = q->tail_slot;
    done = 0;
    left = n;

    while (left) {
        len = q->lens[slot] - q->partial;

        if (left < len) {
            q->partial += left;
            break;
        }

        left -= len;
        q->partial = 0;
        tail++;
        done++;

        if (++slot == q->nlens) {
            slot = 0;
        }
    }

    q->tail_slot = slot;

    /* release: the lengths and bytes given back were read before this */
    __atomic_store_n(&q->tail_bytes, q->tail_bytes + n, __ATOMIC_RELEASE);
    __atomic_store_n(&q->tail_entries, tail, __ATOMIC_RELEASE);

    if (q->count_out && done) {
        __atomic_store_n(q->count_out, tail, __ATOMIC_RELEASE);
    }

    return done;
}


size_t
et_queue_skip_partial(et_queue_t *q)
{
    size_t  rest;

    if (q->partial == 0) {
        return 0;
    }

    rest = q->lens[q->tail_slot] - q->partial;
    q->partial = 0;

    if (++q->tail_slot == q->nlens) {
        q->tail_slot = 0;
    }

    __atomic_store_n(&q->tail_bytes, q->tail_bytes + rest, __ATOMIC_RELEASE);
    __atomic_store_n(&q->tail_entries, q->tail_entries + 1, __ATOMIC_RELEASE);

    if (q->count_out) {
        __atomic_store_n(q->count_out, q->tail_entries, __ATOMIC_RELEASE);
    }

    return 1;
}


void
et_queue_first(et_queue_t *q, et_queue_iter_t *it)
{
    et_queue_see(q);

    it->pos = q->tail_bytes;
    it->entry = q->tail_entries;
    it->slot = q->tail_slot;
    it->left = q->partial ? 0 : q->seen_entries - q->tail_entries;
}


void
et_queue_more(et_queue_t *q, et_queue_iter_t *it)
{
    et_queue_see(q);

    it->left = q->partial ? 0 : q->seen_entries - it->entry;
}


size_t
et_queue_next(et_queue_t *q, et_queue_iter_t *it, struct iovec iov[2],
    int *niov)
{
    size_t  len;

    if (it->left == 0) {
        *niov = 0;
        return 0;
    }

    len = q->lens[it->slot];

    et_queue_iov(q, it->pos, len, iov, niov);

    it->pos += len;
    it->entry++;
    it->left--;

    if (++it->slot == q->nlens) {
        it->slot = 0;
    }

    return len;
}


uint64_t
et_queue_pending(et_queue_t *q)
{
    return __atomic_load_n(&q->head_entries, __ATOMIC_ACQUIRE)
           - q->tail_entries;
}
