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


#define ET_OK         0
#define ET_ERROR     -1
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


/*
 * The adapter's log sink.  "msg" is a complete line without a trailing
 * newline, "len" bytes long, not NUL-terminated.  It may be called from the
 * exporter's thread, never from a signal handler.
 */
typedef void (*et_log_pt)(void *data, int level, const char *msg,
    size_t len);


/* strips spaces and tabs around a header value (HTTP's OWS) */
et_str_t et_str_trim_ows(const uint8_t *p, size_t len);


#endif /* ET_CORE_H */
