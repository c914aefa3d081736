/*
 * edgetrace core: types shared by every core file.
 *
 * The core knows no server.  Strings cross the boundary as pointer + length;
 * functions that can fail return a result code; the core never prints and
 * never aborts: it reports through the adapter's log callback.
 */

#ifndef ET_CORE_H
#define ET_CORE_H


#include <stddef.h>
#include <stdint.h>
#include <string.h>


#define ET_OK         0
#define ET_ERROR     -1
#define ET_AGAIN     -2      /* nothing now: wait in poll(), try again */
#define ET_DECLINED  -5


typedef struct {
    size_t          len;
    const uint8_t  *data;
} et_str_t;


#define et_string(s)  { sizeof(s) - 1, (const uint8_t *) (s) }
#define et_null_string  { 0, NULL }


/* log levels, mapped by the adapters to NGX_LOG_* / APLOG_* */
#define ET_LOG_ERR     0
#define ET_LOG_WARN    1
#define ET_LOG_NOTICE  2
#define ET_LOG_INFO    3
#define ET_LOG_DEBUG   4

/* the "s" of a count's noun in a message: "1 span", "2 spans" */
#define et_plural(n)   ((n) == 1 ? "" : "s")


/*
 * The adapter's log sink.  "msg" is a complete line without a trailing
 * newline, "len" bytes long, not NUL-terminated.  It may be called from the
 * exporter's thread, never from a signal handler.
 */
typedef void (*et_log_pt)(void *data, int level, const char *msg,
    size_t len);


/* strips spaces and tabs around a header value (HTTP's OWS) */
et_str_t et_str_trim_ows(const uint8_t *p, size_t len);

/*
 * A decimal number of digits only (no sign, no space) in [min, max]
 * (0 <= min <= max), all of p..p+len; ET_ERROR otherwise, overflow
 * included.
 */
int et_parse_int(const uint8_t *p, size_t len, int64_t min, int64_t max,
    int64_t *v);


/*
 * Copies a short run of bytes without a call: most keys and values of a
 * span are under 32 bytes, and a libc call costs more than the copy.  The
 * fixed-size memcpy()s compile to single loads and stores, which may
 * overlap but never go outside [src, src + len) or [dst, dst + len).
 */
static inline uint8_t *
et_copy(uint8_t *dst, const uint8_t *src, size_t len)
{
    if (len >= 16) {
        if (len > 32) {
            memcpy(dst, src, len);

        } else {
            memcpy(dst, src, 16);
            memcpy(dst + len - 16, src + len - 16, 16);
        }

    } else if (len >= 8) {
        memcpy(dst, src, 8);
        memcpy(dst + len - 8, src + len - 8, 8);

    } else if (len >= 4) {
        memcpy(dst, src, 4);
        memcpy(dst + len - 4, src + len - 4, 4);

    } else if (len) {
        dst[0] = src[0];
        dst[len / 2] = src[len / 2];
        dst[len - 1] = src[len - 1];
    }

    return dst + len;
}


#endif /* ET_CORE_H */
