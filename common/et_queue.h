/*
 * The bounded queue between the request path and the exporter thread.
 *
 * Encoded entries (RESP XADD commands) are written straight into a byte
 * ring, so a batch leaves with one write of at most two iovecs and nothing
 * is copied twice.  A parallel ring of entry lengths lets the consumer count
 * whole entries.  One producer and one consumer run without locks; with
 * "shared" set, producers take a mutex among themselves (httpd's threaded
 * MPMs).  Memory is bounded by "size" bytes plus 4 bytes per entry slot,
 * however long the consumer stalls: a producer that finds no room is told
 * so and the entry is dropped by the caller.
 */

#ifndef ET_QUEUE_H
#define ET_QUEUE_H


#include <pthread.h>
#include <sys/uio.h>

#include "et_core.h"


typedef struct {
    uint8_t          *buf;
    size_t            size;          /* bytes in buf */
    uint32_t         *lens;
    size_t            nlens;         /* entry slots */
    uint8_t          *scratch;       /* for an entry that wraps around */
    size_t            scratch_size;
    int               shared;
    pthread_mutex_t   lock;

    /* producer side */
    uint64_t          head_bytes;
    uint64_t          head_entries;  /* published with release */
    size_t            head_off;      /* head_bytes % size */
    size_t            head_slot;     /* head_entries % nlens */
    uint64_t         *count_in;      /* head_entries, seen elsewhere */

    /* consumer side */
    uint64_t          tail_bytes;    /* published with release */
    uint64_t          tail_entries;  /* published with release */
    uint64_t          seen_entries;  /* entries whose bytes are in end */
    uint64_t          end_bytes;     /* end of the bytes of seen entries */
    size_t            partial;       /* bytes of the first entry consumed */
    size_t            tail_slot;     /* tail_entries % nlens */
    size_t            seen_slot;     /* seen_entries % nlens */
    uint64_t         *count_out;     /* tail_entries, seen elsewhere */
} et_queue_t;


/*
 * Allocates a queue of "size" bytes and "nentries" entry slots (malloc).
 * ET_ERROR when memory is short or a size is 0.
 */
int et_queue_init(et_queue_t *q, size_t size, size_t nentries, int shared);
void et_queue_free(et_queue_t *q);

/*
 * From now on the queue keeps *in equal to the entries ever published and
 * *out to the entries ever consumed or skipped (both start at 0), so that
 * another process (the status handler, from shared memory) can count the
 * entries in the queue.  *in is stored before the entry is published, *out
 * with release after the consumer's own positions.  Call it before the
 * first entry, with neither side running.
 */
void et_queue_count(et_queue_t *q, uint64_t *in, uint64_t *out);

/*
 * Producer: room for an entry of at most "len" bytes, to be written then
 * published with et_queue_commit(q, p, n), n <= len.  NULL when the queue
 * is full (no bytes or no entry slot left): nothing to commit then.  With
 * "shared", the lock is held from a successful reserve until its commit.
 */
uint8_t *et_queue_reserve(et_queue_t *q, size_t len);

/*
 * Producer, without the lock: 1 when an entry of "len" bytes would find no
 * room now (the answer may be stale by the time it is used: a hint, so that
 * an entry is not encoded only to be dropped).
 */
int et_queue_no_room(et_queue_t *q, size_t len);
void et_queue_commit(et_queue_t *q, uint8_t *p, size_t len);

/* Consumer: the bytes of the published entries not consumed yet */
size_t et_queue_ready(et_queue_t *q);

/*
 * Consumer: the same bytes as at most two iovecs (the ring may wrap);
 * returns their total and sets *niov.
 */
size_t et_queue_peek(et_queue_t *q, struct iovec iov[2], int *niov);

/*
 * Consumer: "n" bytes of what peek returned were sent; frees them and
 * returns how many entries were completed by them.
 */
size_t et_queue_consume(et_queue_t *q, size_t n);

/*
 * Consumer: when a connection broke in the middle of an entry, the rest of
 * that entry is skipped (a partial command must never be resent); returns
 * 1 when an entry was skipped, 0 when the queue was at an entry boundary.
 */
size_t et_queue_skip_partial(et_queue_t *q);

/*
 * Consumer: the entries et_queue_ready() saw, one by one, oldest first,
 * for a consumer that sends each entry to its own place (a Redis Cluster's
 * masters, et_exporter_cluster.c) and consumes them only once all are
 * sent.  Nothing may be partly consumed: the iteration starts at the tail.
 * et_queue_next() gives an entry as one or two iovecs (the ring may wrap)
 * and returns its length, 0 after the last.
 */
typedef struct {
    uint64_t          pos;           /* byte position of the next entry */
    uint64_t          entry;         /* entries before it, ever */
    size_t            slot;
    uint64_t          left;          /* entries left */
} et_queue_iter_t;

void et_queue_first(et_queue_t *q, et_queue_iter_t *it);
size_t et_queue_next(et_queue_t *q, et_queue_iter_t *it,
    struct iovec iov[2], int *niov);

/*
 * Consumer: the iteration goes on into the entries published since it
 * started (or since the last call), so that a consumer may consume the
 * entries before the iterator, and keep on taking entries, without
 * starting again at the tail (a pipeline, et_exporter_cluster.c).
 */
void et_queue_more(et_queue_t *q, et_queue_iter_t *it);

/* entries published and not yet consumed (consumer side) */
uint64_t et_queue_pending(et_queue_t *q);


#endif /* ET_QUEUE_H */
