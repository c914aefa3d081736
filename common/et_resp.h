/*
 * Counting Redis replies without building them.
 *
 * The exporter only needs to know, for each XADD it pipelined, whether
 * Redis took it: a bulk string (the entry id), a status or an integer is a
 * success, an error reply ("-ERR ...") a failure.  This scanner walks the
 * reply bytes as they arrive, in pieces of any size, keeps its place
 * between pieces, allocates nothing and copies nothing but the first error
 * text.  Arrays never answer XADD: they are a protocol error here.
 */

#ifndef ET_RESP_H
#define ET_RESP_H


#include "et_core.h"


/* room for a MOVED or ASK naming a host of 255 bytes (et_cluster.h) */
#define ET_RESP_ERROR_MAX  288


typedef struct {
    int        state;
    unsigned   digits;
    unsigned   negative:1;
    uint64_t   len;                       /* bulk bytes still to skip */
    size_t     error_len;
    char       error[ET_RESP_ERROR_MAX];  /* the last error reply's text */
} et_resp_t;


/* a scanner at the start of a reply */
void et_resp_init(et_resp_t *rs);

/*
 * Scans "n" bytes, adding the replies completed in them to *ok and
 * *errors.  ET_ERROR when the bytes are not RESP replies (the connection
 * must be dropped); the counts then hold what was complete before.
 */
int et_resp_scan(et_resp_t *rs, const uint8_t *p, size_t n, uint64_t *ok,
    uint64_t *errors);

/*
 * The same, but the scan stops right after the first error reply that
 * completes, so that a caller matching replies to commands in order (a
 * Redis Cluster's redirections, et_exporter_cluster.c) reads each error's
 * text in rs->error before the next: *used is the bytes scanned (all "n"
 * when no error completed), *errors grows by at most 1.
 */
int et_resp_scan_error(et_resp_t *rs, const uint8_t *p, size_t n,
    size_t *used, uint64_t *ok, uint64_t *errors);


#endif /* ET_RESP_H */
