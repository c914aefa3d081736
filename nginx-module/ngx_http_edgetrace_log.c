/*
 * ngx_http_edgetrace_module: the exporter's log lines, written by the
 * worker.
 *
 * The exporter runs in a thread of its own.  nginx stamps an error log line
 * with the worker's cached time, which only the worker's event loop brings
 * up to date (ngx_time_update() is not for other threads to call): a line
 * written from the exporter thread while the worker waits for events, Redis
 * down and no traffic, would carry the time of the worker's last event,
 * minutes old.  So the thread only queues its message and wakes the worker
 * through a pipe, as a thread pool's finished task wakes it through
 * ngx_notify(), and the worker writes the line itself with ngx_log_error():
 * with its time just updated by the event loop, through every error_log the
 * worker has (files, syslog, memory), from the thread that owns them.
 * ngx_notify() is not used: it holds one handler per process, the thread
 * pools' own.
 */


#include "ngx_http_edgetrace_module.h"

#include <pthread.h>


/* the exporter logs at most a few lines a second (it rate-limits them) */
#define NGX_HTTP_EDGETRACE_LOG_LINES   16
#define NGX_HTTP_EDGETRACE_LOG_LEN     512


typedef struct {
    ngx_uint_t                      level;
    size_t                          len;
    u_char                          text[NGX_HTTP_EDGETRACE_LOG_LEN];
} ngx_http_edgetrace_log_line_t;


static void ngx_http_edgetrace_log_read_handler(ngx_event_t *ev);
static void ngx_http_edgetrace_log_flush(ngx_log_t *log);


static pthread_mutex_t                ngx_http_edgetrace_log_lock =
    PTHREAD_MUTEX_INITIALIZER;
static ngx_http_edgetrace_log_line_t  ngx_http_edgetrace_log_lines[
                                          NGX_HTTP_EDGETRACE_LOG_LINES];
static ngx_uint_t                     ngx_http_edgetrace_log_n;
static ngx_uint_t                     ngx_http_edgetrace_log_lost;

/* the worker's thread, and the pipe's ends: [0] the worker reads */
static pthread_t                      ngx_http_edgetrace_log_worker;
static ngx_fd_t                       ngx_http_edgetrace_log_fd[2] = {
                                          -1, -1 };
static ngx_connection_t              *ngx_http_edgetrace_log_conn;


static ngx_uint_t  ngx_http_edgetrace_log_levels[] = {
    NGX_LOG_ERR, NGX_LOG_WARN, NGX_LOG_NOTICE, NGX_LOG_INFO, NGX_LOG_DEBUG
};


/* the core's log callback (et_exporter_conf_t.log), in any thread */

void
ngx_http_edgetrace_log(void *data, int level, const char *msg, size_t len)
{
    ngx_log_t                      *log = data;
    ngx_uint_t                      lvl;
    ngx_http_edgetrace_log_line_t  *line;

    lvl = ngx_http_edgetrace_log_levels[level <= ET_LOG_DEBUG
                                        ? level : ET_LOG_DEBUG];

    if (ngx_http_edgetrace_log_fd[1] == -1
        || pthread_equal(pthread_self(), ngx_http_edgetrace_log_worker))
    {
        ngx_log_error(lvl, log, 0, "edgetrace: %*s", len, msg);
        return;
    }

    if (log->log_level < lvl) {
        return;
    }

    (void) pthread_mutex_lock(&ngx_http_edgetrace_log_lock);

    if (ngx_http_edgetrace_log_n == NGX_HTTP_EDGETRACE_LOG_LINES) {
        ngx_http_edgetrace_log_lost++;

    } else {
        line = &ngx_http_edgetrace_log_lines[ngx_http_edgetrace_log_n++];
        line->level = lvl;
        line->len = ngx_min(len, NGX_HTTP_EDGETRACE_LOG_LEN);
        ngx_memcpy(line->text, msg, line->len);
    }

    (void) pthread_mutex_unlock(&ngx_http_edgetrace_log_lock);

    if (write(ngx_http_edgetrace_log_fd[1], "", 1) == -1) {
        /* EAGAIN: the full pipe already holds a wake-up */
    }
}


/* init_process: before the exporter starts */

ngx_int_t
ngx_http_edgetrace_log_start(ngx_cycle_t *cycle)
{
    ngx_int_t          rc;
    ngx_event_t       *rev;
    ngx_connection_t  *c;

    ngx_http_edgetrace_log_worker = pthread_self();

    if (pipe(ngx_http_edgetrace_log_fd) == -1) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_errno,
                      "edgetrace: pipe() failed");
        ngx_http_edgetrace_log_fd[0] = -1;
        ngx_http_edgetrace_log_fd[1] = -1;
        return NGX_ERROR;
    }

    if (ngx_nonblocking(ngx_http_edgetrace_log_fd[0]) == -1
        || ngx_nonblocking(ngx_http_edgetrace_log_fd[1]) == -1)
    {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_errno,
                      "edgetrace: " ngx_nonblocking_n " failed");
        goto failed;
    }

    c = ngx_get_connection(ngx_http_edgetrace_log_fd[0], cycle->log);
    if (c == NULL) {
        goto failed;
    }

    c->pool = cycle->pool;
    rev = c->read;
    rev->log = cycle->log;
    rev->handler = ngx_http_edgetrace_log_read_handler;

    /* the worker's own, as its channel to the master: not a client's */
    rev->channel = 1;
    c->write->channel = 1;

    if (ngx_add_conn && (ngx_event_flags & NGX_USE_EPOLL_EVENT) == 0) {
        rc = ngx_add_conn(c);

    } else {
        rc = ngx_add_event(rev, NGX_READ_EVENT, 0);
    }

    if (rc != NGX_OK) {
        ngx_free_connection(c);
        goto failed;
    }

    ngx_http_edgetrace_log_conn = c;

    return NGX_OK;

failed:

    /* the lines are still written, from the thread, with a stale time */

    (void) close(ngx_http_edgetrace_log_fd[0]);
    (void) close(ngx_http_edgetrace_log_fd[1]);
    ngx_http_edgetrace_log_fd[0] = -1;
    ngx_http_edgetrace_log_fd[1] = -1;

    return NGX_ERROR;
}


/* exit_process: after the exporter's thread is gone */

void
ngx_http_edgetrace_log_stop(ngx_cycle_t *cycle)
{
    if (ngx_http_edgetrace_log_conn == NULL) {
        return;
    }

    /* the stop may have taken seconds: this thread may update the time */
    ngx_time_update();
    ngx_http_edgetrace_log_flush(ngx_http_edgetrace_log_conn->read->log);

    ngx_close_connection(ngx_http_edgetrace_log_conn);
    ngx_http_edgetrace_log_conn = NULL;

    (void) close(ngx_http_edgetrace_log_fd[1]);
    ngx_http_edgetrace_log_fd[0] = -1;
    ngx_http_edgetrace_log_fd[1] = -1;
}


static void
ngx_http_edgetrace_log_read_handler(ngx_event_t *ev)
{
    u_char  buf[64];

    /* level-triggered: the pipe is emptied, or the worker would spin */
    while (read(ngx_http_edgetrace_log_fd[0], buf, sizeof(buf)) > 0) {
        /* void */
    }

    ngx_http_edgetrace_log_flush(ev->log);
}


static void
ngx_http_edgetrace_log_flush(ngx_log_t *log)
{
    ngx_uint_t                      i, n, lost;
    ngx_http_edgetrace_log_line_t   lines[NGX_HTTP_EDGETRACE_LOG_LINES];

    (void) pthread_mutex_lock(&ngx_http_edgetrace_log_lock);

    n = ngx_http_edgetrace_log_n;
    lost = ngx_http_edgetrace_log_lost;
    ngx_memcpy(lines, ngx_http_edgetrace_log_lines,
               n * sizeof(ngx_http_edgetrace_log_line_t));
    ngx_http_edgetrace_log_n = 0;
    ngx_http_edgetrace_log_lost = 0;

    (void) pthread_mutex_unlock(&ngx_http_edgetrace_log_lock);

    for (i = 0; i < n; i++) {
        ngx_log_error(lines[i].level, log, 0, "edgetrace: %*s",
                      lines[i].len, lines[i].text);
    }

    if (lost) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "edgetrace: %ui exporter log lines lost while the "
                      "worker was busy", lost);
    }
}
