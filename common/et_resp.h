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


#define ET_RESP_ERROR_MAX  128


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


#endif /* ET_RESP_H */
