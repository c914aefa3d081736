/*
 * Wall clock in nanoseconds since the Unix epoch (CLOCK_REALTIME, vDSO).
 */

#ifndef ET_CLOCK_H
#define ET_CLOCK_H


#include "et_core.h"


uint64_t et_clock_now_ns(void);

/* CLOCK_MONOTONIC in milliseconds, for timeouts and backoff */
uint64_t et_clock_mono_ms(void);


#endif /* ET_CLOCK_H */
