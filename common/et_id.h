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


/*
 * The fixed sizes of ids, inline: an id is encoded for every span (and
 * for every traceparent), and the generic loop costs more than the bytes.
 * SSE2 (every x86_64) spreads the nibbles of 16 bytes at once.
 */

#if defined(__SSE2__)

#include <emmintrin.h>


static inline __m128i
et_hex_ascii(__m128i n)
{
    __m128i  gt;

    /* '0' + n, and 'a' - 10 + n for the nibbles above 9 */
    gt = _mm_cmpgt_epi8(n, _mm_set1_epi8(9));

    return _mm_add_epi8(_mm_add_epi8(n, _mm_set1_epi8('0')),
                        _mm_and_si128(gt, _mm_set1_epi8('a' - '0' - 10)));
}


static inline __m128i
et_hex_spread(__m128i v, __m128i *hi)
{
    __m128i  m;

    m = _mm_set1_epi8(0x0f);
    *hi = _mm_and_si128(_mm_srli_epi16(v, 4), m);

    return _mm_and_si128(v, m);
}


/* writes 32 lowercase hex digits of 16 bytes; returns the end */
static inline uint8_t *
et_hex_encode16(uint8_t *dst, const uint8_t *src)
{
    __m128i  v, hi, lo;

    v = _mm_loadu_si128((const __m128i *) (const void *) src);
    lo = et_hex_spread(v, &hi);

    _mm_storeu_si128((__m128i *) (void *) dst,
                     et_hex_ascii(_mm_unpacklo_epi8(hi, lo)));
    _mm_storeu_si128((__m128i *) (void *) (dst + 16),
                     et_hex_ascii(_mm_unpackhi_epi8(hi, lo)));

    return dst + 32;
}


/* writes 16 lowercase hex digits of 8 bytes; returns the end */
static inline uint8_t *
et_hex_encode8(uint8_t *dst, const uint8_t *src)
{
    __m128i  v, hi, lo;

    v = _mm_loadl_epi64((const __m128i *) (const void *) src);
    lo = et_hex_spread(v, &hi);

    _mm_storeu_si128((__m128i *) (void *) dst,
                     et_hex_ascii(_mm_unpacklo_epi8(hi, lo)));

    return dst + 16;
}

#else

#define et_hex_encode16(dst, src)  et_hex_encode(dst, src, 16)
#define et_hex_encode8(dst, src)   et_hex_encode(dst, src, 8)

#endif


#endif /* ET_ID_H */
