/*
 * ngx_http_edgetrace_module: what the module's files share.
 */

#ifndef NGX_HTTP_EDGETRACE_MODULE_H
#define NGX_HTTP_EDGETRACE_MODULE_H


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "et_core.h"
#include "et_id.h"
#include "et_clock.h"
#include "et_span.h"
#include "et_sampler.h"
#include "et_stream.h"
#include "et_exporter.h"
#include "et_exporter_conf.h"
#include "et_metrics.h"
#include "et_w3c.h"
#include "et_b3.h"
#include "et_propagation.h"
#include "et_http.h"
#include "et_keep.h"
#include "et_limit.h"


extern ngx_module_t  ngx_http_edgetrace_module;


/*
 * The module's own functions call each other across its files.  Hidden,
 * those calls are direct; with the default visibility a shared object
 * calls them through its PLT (about 30 instructions a proxied request,
 * measured on 2026-12-06).  ngx_http_edgetrace_module stays visible.
 */
#if (__GNUC__)
#pragma GCC visibility push(hidden)
#endif


#define NGX_HTTP_EDGETRACE_OFF       0
#define NGX_HTTP_EDGETRACE_ON        1
#define NGX_HTTP_EDGETRACE_VAR       2

/* edgetrace_context: ET_CONTEXT_* (et_propagation.h), or a variable */
#define NGX_HTTP_EDGETRACE_CTX_VAR    4


/* an exporter knob's bounds check: its post handler and ET_KNOB_* */
typedef struct {
    ngx_conf_post_handler_pt     post_handler;
    unsigned                     knob;
} ngx_http_edgetrace_knob_t;


typedef struct {
    et_key_t                     key;
    ngx_http_complex_value_t     value;
} ngx_http_edgetrace_attr_t;


/*
 * edgetrace_keep's rules of one level: the core's status= and slower=,
 * and the variables (kept when non-empty and not "0" at the log phase).
 */
typedef struct {
    et_keep_t                    rules;
    ngx_array_t                 *variables;      /* ngx_int_t indexes */
} ngx_http_edgetrace_keep_t;


/* an edgetrace_redis_ssl_* file or name, and where it was given */
typedef struct {
    ngx_str_t                    value;          /* NUL-terminated */
    ngx_str_t                    file;
    ngx_uint_t                   line;
} ngx_http_edgetrace_ssl_t;


typedef struct {
    et_exporter_conf_t           exporter;
    et_stream_t                  stream;
    ngx_str_t                    redis;          /* as written */
    ngx_str_t                    redis_file;     /* where */
    ngx_uint_t                   redis_line;

    /* rediss:// (docs/nginx.md "edgetrace_redis_ssl_trusted_certificate") */
    ngx_http_edgetrace_ssl_t     ssl_trusted_certificate;
    ngx_http_edgetrace_ssl_t     ssl_certificate;
    ngx_http_edgetrace_ssl_t     ssl_certificate_key;
    ngx_http_edgetrace_ssl_t     ssl_name;
    ngx_str_t                    stream_key;
    et_stream_opts_t             stream_opts;

    ngx_msec_t                   flush_interval;
    ngx_msec_t                   connect_timeout;
    ngx_msec_t                   redis_timeout;
    ngx_msec_t                   flush_timeout;
    size_t                       queue_size;
    size_t                       value_max;

    ngx_uint_t                   hashes[ET_HDRS];

    ngx_uint_t                   limit_rate;     /* edgetrace_sample_limit */
    et_limit_conf_t              limit;

    ngx_flag_t                   enabled;        /* tracing on somewhere */
    ngx_flag_t                   status;         /* edgetrace_status used */
    ngx_shm_zone_t              *shm_zone;
} ngx_http_edgetrace_main_conf_t;


typedef struct {
    ngx_str_t                    service_name;
    et_str_t                     service;        /* RESP field and value */
    ngx_flag_t                   maybe;          /* tracing on somewhere */
} ngx_http_edgetrace_srv_conf_t;


typedef struct {
    ngx_uint_t                   enable;
    ngx_http_complex_value_t    *enable_value;
    ngx_uint_t                   context;
    ngx_http_complex_value_t    *context_value;
    double                       ratio;
    et_sampler_t                 sampler;
    unsigned                     formats[ET_PROP_FORMATS_MAX];
    ngx_uint_t                   nformats;
    ngx_uint_t                   formats_mask;   /* of formats[] */
    ngx_http_complex_value_t    *span_name;
    ngx_array_t                 *attributes;     /* ngx_http_edgetrace_attr_t */
    ngx_http_edgetrace_keep_t   *keep;           /* NULL: no rules */
} ngx_http_edgetrace_loc_conf_t;


typedef struct ngx_http_edgetrace_client_s  ngx_http_edgetrace_client_t;

/*
 * A client span kept until the main request's log phase: a subrequest's,
 * or an upstream exchange of the main request that an internal redirect
 * ended (X-Accel-Redirect, error_page), with its tries in the main
 * request's upstream states from "first" to "last".
 */
struct ngx_http_edgetrace_client_s {
    ngx_http_request_t             *request;
    uint8_t                         span_id[ET_SPAN_ID_LEN];
    uint64_t                        start_ns;
    uint64_t                        end_ns;
    ngx_uint_t                      first;
    ngx_uint_t                      last;         /* 0: to the end */
    ngx_str_t                       schema;       /* with uri: url.full's */
    ngx_str_t                       uri;          /* or the request's */
    ngx_http_post_subrequest_t      ps;
    ngx_http_post_subrequest_t     *next_ps;
    u_char                          traceparent[ET_TRACEPARENT_LEN];
    ngx_http_edgetrace_client_t    *next;
};


/* the main request's trace; survives internal redirects */
typedef struct {
    ngx_http_request_t             *request;
    uint64_t                        start_ns;
    uint64_t                        client_start_ns;   /* 0: no upstream */
    ngx_uint_t                      client_first;      /* its first state */
    ngx_str_t                       client_uri;        /* as it started */

    et_trace_t                      trace;   /* ids, flags, tracestate */
    uint8_t                         client_id[ET_SPAN_ID_LEN];

    unsigned                        decided:1;
    unsigned                        traced:1;
    unsigned                        writes:1;          /* inject, propagate */
    unsigned                        has_client_id:1;   /* made */
    unsigned                        has_traceparent:1; /* for client_id */
    unsigned                        mode:3;
    unsigned                        sampling:2;        /* ET_SAMPLING_* */

    /* extraction found no header of these formats in a list of clean_n */
    unsigned                        clean_formats:3;
    ngx_uint_t                      clean_n;
    void                           *clean_elts;

    u_char                          traceparent[ET_TRACEPARENT_LEN];

    ngx_http_edgetrace_client_t    *clients;
} ngx_http_edgetrace_ctx_t;


/* a context with the pool cleanup that marks it, recycled by the worker */
typedef struct ngx_http_edgetrace_holder_s  ngx_http_edgetrace_holder_t;

struct ngx_http_edgetrace_holder_s {
    ngx_pool_cleanup_t              cleanup;
    ngx_http_edgetrace_ctx_t        ctx;
    ngx_http_edgetrace_holder_t    *next;          /* when free */
};



/* the worker's exporter and its counters slot (init_process) */
extern et_exporter_t  *ngx_http_edgetrace_exporter;
extern et_counters_t  *ngx_http_edgetrace_counters;
extern et_metrics_t   *ngx_http_edgetrace_metrics;

/* the holders of destroyed pools (ngx_http_edgetrace_request.c) */
extern ngx_http_edgetrace_holder_t  *ngx_http_edgetrace_free;


/* the directives and their bounds (ngx_http_edgetrace_directives.c) */
char *ngx_http_edgetrace(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_edgetrace_redis(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_edgetrace_redis_ssl(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_edgetrace_tls(ngx_conf_t *cf,
    ngx_http_edgetrace_main_conf_t *emcf);
char *ngx_http_edgetrace_stream(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_edgetrace_sample(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_edgetrace_context(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_edgetrace_propagation(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_edgetrace_attribute(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_edgetrace_keep(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_edgetrace_sample_limit(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_edgetrace_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_edgetrace_span_name(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_edgetrace_check_service_name(ngx_conf_t *cf, void *post,
    void *data);
char *ngx_http_edgetrace_check_size(ngx_conf_t *cf, void *post, void *data);
char *ngx_http_edgetrace_check_msec(ngx_conf_t *cf, void *post, void *data);

/* the phase handlers (ngx_http_edgetrace_handlers.c) */
ngx_int_t ngx_http_edgetrace_server_rewrite_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_edgetrace_rewrite_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_edgetrace_precontent_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_edgetrace_log_handler(ngx_http_request_t *r);

/* the spans (ngx_http_edgetrace_span.c) */
void ngx_http_edgetrace_request_uri(ngx_http_request_t *r, ngx_str_t *uri);
ngx_uint_t ngx_http_edgetrace_status_code(ngx_http_request_t *r);
ngx_int_t ngx_http_edgetrace_start_client(ngx_http_request_t *r,
    ngx_http_edgetrace_ctx_t *ctx);
void ngx_http_edgetrace_export_server(ngx_http_request_t *r,
    ngx_http_edgetrace_ctx_t *ctx, uint64_t now);
void ngx_http_edgetrace_export_client(ngx_http_edgetrace_ctx_t *ctx,
    ngx_http_edgetrace_client_t *cl);

/* edgetrace_status (ngx_http_edgetrace_status.c) */
ngx_int_t ngx_http_edgetrace_status_handler(ngx_http_request_t *r);

/* the request's context and decision (ngx_http_edgetrace_request.c) */
void ngx_http_edgetrace_cleanup(void *data);
void ngx_http_edgetrace_decide(ngx_http_request_t *r,
    ngx_http_edgetrace_ctx_t *ctx);
ngx_uint_t ngx_http_edgetrace_kept(ngx_http_request_t *r,
    ngx_http_edgetrace_ctx_t *ctx, ngx_http_edgetrace_keep_t *keep,
    uint64_t *now);
void ngx_http_edgetrace_client_id(ngx_http_edgetrace_ctx_t *ctx);
ngx_http_edgetrace_ctx_t *ngx_http_edgetrace_get_ctx(ngx_http_request_t *r);
ngx_http_edgetrace_client_t *ngx_http_edgetrace_find_client(
    ngx_http_edgetrace_ctx_t *ctx, ngx_http_request_t *r);
ngx_http_edgetrace_ctx_t *ngx_http_edgetrace_traced(ngx_http_request_t *r);
u_char *ngx_http_edgetrace_traceparent(ngx_http_edgetrace_ctx_t *ctx);

/* $edgetrace_* (ngx_http_edgetrace_variables.c) */
ngx_int_t ngx_http_edgetrace_add_variables(ngx_conf_t *cf);

/* header glue: extraction from and injection into r->headers_in */
ngx_int_t ngx_http_edgetrace_extract(ngx_http_request_t *r,
    ngx_http_edgetrace_ctx_t *ctx, et_context_t *parent);
ngx_int_t ngx_http_edgetrace_inject(ngx_http_request_t *r,
    ngx_http_edgetrace_ctx_t *ctx, const uint8_t *span_id,
    u_char *traceparent, ngx_uint_t copy);
void ngx_http_edgetrace_init_headers(ngx_http_edgetrace_main_conf_t *emcf);

/* the exporter's log lines, handed from its thread to the worker */
void ngx_http_edgetrace_log(void *data, int level, const char *msg,
    size_t len);
ngx_int_t ngx_http_edgetrace_log_start(ngx_cycle_t *cycle);
void ngx_http_edgetrace_log_stop(ngx_cycle_t *cycle);


#if (__GNUC__)
#pragma GCC visibility pop
#endif

#endif /* NGX_HTTP_EDGETRACE_MODULE_H */
