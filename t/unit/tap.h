/*
 * A minimal TAP producer for the core's table-driven unit tests.
 * Each test binary prints a TAP stream; the t/unit/NAME.t wrappers run
 * them under prove.
 */

#ifndef ET_TAP_H
#define ET_TAP_H


#include <stdarg.h>
#include <stdio.h>
#include <string.h>


static int  tap_n;
static int  tap_failed;


static void
tap_ok(int cond, const char *fmt, ...)
{
    va_list  ap;

    tap_n++;

    if (!cond) {
        tap_failed++;
    }

    printf("%sok %d - ", cond ? "" : "not ", tap_n);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}


#define tap_is_int(got, want, ...)                                            \
    do {                                                                      \
        long long  g_ = (long long) (got), w_ = (long long) (want);           \
        tap_ok(g_ == w_, __VA_ARGS__);                                        \
        if (g_ != w_) {                                                       \
            printf("#   got: %lld\n#   expected: %lld\n", g_, w_);            \
        }                                                                     \
    } while (0)


/* compares "len" bytes at "got" with the NUL-terminated "want" */
#define tap_is_mem(got, len, want, ...)                                       \
    do {                                                                      \
        size_t  l_ = (size_t) (len);                                          \
        int     m_ = (l_ == strlen(want)                                      \
                      && memcmp((got), (want), l_) == 0);                     \
        tap_ok(m_, __VA_ARGS__);                                              \
        if (!m_) {                                                            \
            printf("#   got: '%.*s'\n#   expected: '%s'\n",                   \
                   (int) l_, (const char *) (got), (want));                   \
        }                                                                     \
    } while (0)


static int
tap_done(void)
{
    printf("1..%d\n", tap_n);
    return tap_failed ? 1 : 0;
}


#endif /* ET_TAP_H */
