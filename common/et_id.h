/*
 * Trace and span ids.
 *
 * Ids come from a per-thread xoshiro256** generator seeded from the kernel
 * (getrandom).  A fork handler bumps a generation counter, so every process
 * and every thread reseeds before its first id: two workers never share a
 * sequence even if the adapter forgets to call et_id_seed().
 */

#ifndef ET_ID_H
#define ET_ID_H


#include "et_core.h"


#define ET_TRACE_ID_LEN  16
#define ET_SPAN_ID_LEN   8


/* reseeds the calling thread now; call after fork (init_process/child_init) */
void et_id_seed(void);

/* fills a new random id; never all zero */
void et_trace_id_new(uint8_t id[ET_TRACE_ID_LEN]);
void et_span_id_new(uint8_t id[ET_SPAN_ID_LEN]);

/* one random 64-bit value from the same generator */
uint64_t et_random64(void);

int et_id_is_zero(const uint8_t *id, size_t n);

/* writes 2 * n lowercase hex digits; returns the end of what was written */
uint8_t *et_hex_encode(uint8_t *dst, const uint8_t *src, size_t n);

/*
 * decodes 2 * n lowercase hex digits into n bytes; ET_ERROR when any
 * character is not [0-9a-f] (uppercase is invalid in W3C Trace Context)
 */
int et_hex_decode(uint8_t *dst, const uint8_t *src, size_t n);


#endif /* ET_ID_H */
