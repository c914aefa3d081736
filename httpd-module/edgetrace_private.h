/*
 * mod_edgetrace: what the module's files share.
 *
 * mod_edgetrace.c       the module: directives, hooks, the process side
 * edgetrace_config.c    per-directory and server configuration: created,
 *                       merged
 * edgetrace_directives.c  the tracing directives' handlers
 * edgetrace_exporter.c  the exporter's directives: Redis, TLS, stream, knobs
 * edgetrace_request.c   a request's trace: the decision, the environment,
 *                       the end of the request, the status handler
 * edgetrace_proxy.c     the client spans of mod_proxy's requests
 * edgetrace_span.c      server and client spans, built and exported
 */

#ifndef EDGETRACE_PRIVATE_H
#define EDGETRACE_PRIVATE_H


#include <string.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "ap_expr.h"
#include "ap_mpm.h"
#include "apr_optional_hooks.h"
#include "apr_shm.h"
#include "apr_strings.h"
#include "mod_proxy.h"

#include "et_core.h"
#include "et_id.h"
#include "et_clock.h"
#include "et_span.h"
#include "et_sampler.h"
#include "et_stream.h"
#include "et_exporter.h"
#include "et_metrics.h"
#include "et_propagation.h"
#include "et_http.h"
#include "et_keep.h"
#include "et_limit.h"


#define EDGETRACE_UNSET          -1


extern module AP_MODULE_DECLARE_DATA edgetrace_module;


#define EDGETRACE_DIR_CONF(r)                                                 \
    ((edgetrace_dir_conf_t *) ap_get_module_config((r)->per_dir_config,       \
                                                   &edgetrace_module))

#define EDGETRACE_SRV_CONF(s)                                                 \
    ((edgetrace_srv_conf_t *) ap_get_module_config((s)->module_config,        \
                                                   &edgetrace_module))


typedef struct {
    et_key_t                key;
    const char             *value;        /* literal, or NULL */
    ap_expr_info_t         *expr;
} edgetrace_dir_attr_t;


/*
 * EdgeTraceKeep's rules: the core's status= and slower=, and the
 * expressions (kept when true at the end of the request).
 */
typedef struct {
    et_keep_t               rules;
    apr_array_header_t     *exprs;        /* ap_expr_info_t * */
} edgetrace_keep_t;


/* directory configuration: EdgeTrace On also works in server context */
typedef struct {
    int                     enable;       /* EDGETRACE_UNSET, 0, 1 */
    int                     context;      /* EDGETRACE_UNSET, ET_CONTEXT_* */
    int                     sample_set;
    double                  ratio;
    et_sampler_t            sampler;
    unsigned                formats[ET_PROP_FORMATS_MAX];
    unsigned                nformats;     /* 0: unset */
    unsigned                format_mask;
    int                     span_name_set;
    const char             *span_name;
    ap_expr_info_t         *span_name_expr;
    apr_array_header_t     *attrs;        /* edgetrace_dir_attr_t */
    edgetrace_keep_t       *keep;         /* NULL: no rules */
    int                     keep_off;     /* EdgeTraceKeep Off here */
} edgetrace_dir_conf_t;


/* the EdgeTraceRedisSSL* directives, in this order */
#define EDGETRACE_SSL_CA          0
#define EDGETRACE_SSL_CERT        1
#define EDGETRACE_SSL_KEY         2
#define EDGETRACE_SSL_NAME        3
#define EDGETRACE_SSL_N           4


/* an EdgeTraceRedisSSL* file or name, and where it was given */
typedef struct {
    const char             *value;        /* NULL: unset */
    const char             *file;
    unsigned                line;
} edgetrace_ssl_t;


typedef struct {
    const char             *service_name; /* NULL: unset */
    et_str_t                service;      /* RESP field and value */

    /* the main server's only */
    et_exporter_conf_t      exporter;     /* Redis and the knobs */
    const char             *redis_file;   /* EdgeTraceRedis's place */
    unsigned                redis_line;
    edgetrace_ssl_t         ssl[EDGETRACE_SSL_N];  /* rediss:// */
    const char             *stream_key;
    et_stream_opts_t        stream_opts;
    apr_size_t              value_max;
    uint32_t                limit_rate;   /* EdgeTraceSampleLimit; 0: none */
} edgetrace_srv_conf_t;


typedef struct edgetrace_client_s  edgetrace_client_t;

/* the client span of one request that mod_proxy passed to a backend */
struct edgetrace_client_s {
    const char             *method;
    uint8_t                 span_id[ET_SPAN_ID_LEN];
    uint64_t                start_ns;
    uint64_t                end_ns;
    uint64_t                try_start_ns;
    unsigned                tries;
    unsigned                status;       /* the last try's */
    unsigned                open:1;       /* a try is running */
    unsigned                ended:1;      /* mod_proxy reported its end */
    unsigned                done:1;       /* exported, or not sampled */
    et_str_t                peer;         /* the last try's */
    et_str_t                url;
    et_try_t                events[ET_TRIES_MAX];
    edgetrace_client_t     *next;
};


/* the client request's trace, shared by its redirects and subrequests */
typedef struct {
    et_trace_t              trace;
    uint8_t                 client_id[ET_SPAN_ID_LEN];
    unsigned                decided:1;
    unsigned                traced:1;
    unsigned                writes:1;
    unsigned                client_id_used:1;
    unsigned                sampling:2;   /* ET_SAMPLING_* */
    char                    trace_hex[2 * ET_TRACE_ID_LEN + 1];
    char                    span_hex[2 * ET_SPAN_ID_LEN + 1];
    char                    parent_hex[2 * ET_SPAN_ID_LEN + 1];
    char                    traceparent[ET_TRACEPARENT_LEN + 1];
    edgetrace_client_t     *clients;
} edgetrace_ctx_t;


/* r->request_config of every request the module met */
typedef struct {
    edgetrace_ctx_t        *ctx;
    edgetrace_client_t     *client;
} edgetrace_req_t;


/* the process side (mod_edgetrace.c) */

extern int                  edgetrace_enabled;     /* EdgeTrace On somewhere */
extern int                  edgetrace_threaded;
extern int                  edgetrace_keeps;       /* EdgeTraceKeep used */
extern et_limit_conf_t      edgetrace_limit;
extern et_exporter_t       *edgetrace_exporter;
extern et_counters_t       *edgetrace_counters;
extern et_metrics_t        *edgetrace_metrics;
extern ap_filter_rec_t     *edgetrace_try_filter_handle;


/* edgetrace_config.c */

void *edgetrace_create_dir_conf(apr_pool_t *p, char *dir);
void *edgetrace_merge_dir_conf(apr_pool_t *p, void *parent, void *child);
void *edgetrace_create_srv_conf(apr_pool_t *p, server_rec *s);
void *edgetrace_merge_srv_conf(apr_pool_t *p, void *parent, void *child);

/* the main server's configuration, or NULL with "err" for another context */
edgetrace_srv_conf_t *edgetrace_main_conf(cmd_parms *cmd, const char **err);


/* edgetrace_directives.c */

const char *edgetrace_cmd_enable(cmd_parms *cmd, void *conf, int on);
const char *edgetrace_cmd_service_name(cmd_parms *cmd, void *conf,
    const char *arg);
const char *edgetrace_cmd_sample(cmd_parms *cmd, void *conf, const char *arg);
const char *edgetrace_cmd_context(cmd_parms *cmd, void *conf,
    const char *arg);
const char *edgetrace_cmd_propagation(cmd_parms *cmd, void *conf,
    const char *args);
const char *edgetrace_cmd_span_name(cmd_parms *cmd, void *conf,
    const char *arg);
const char *edgetrace_cmd_attribute(cmd_parms *cmd, void *conf,
    const char *name, const char *value);
const char *edgetrace_cmd_keep(cmd_parms *cmd, void *conf, const char *arg);
const char *edgetrace_cmd_sample_limit(cmd_parms *cmd, void *conf,
    const char *arg);


/* edgetrace_exporter.c */

const char *edgetrace_cmd_redis(cmd_parms *cmd, void *conf, const char *arg,
    const char *mode);
const char *edgetrace_cmd_redis_ssl(cmd_parms *cmd, void *conf,
    const char *arg);
int edgetrace_tls(apr_pool_t *pconf, server_rec *s);
const char *edgetrace_cmd_stream(cmd_parms *cmd, void *conf, const char *key,
    const char *opt1, const char *opt2);
const char *edgetrace_cmd_size(cmd_parms *cmd, void *conf, const char *arg);
const char *edgetrace_cmd_time(cmd_parms *cmd, void *conf, const char *arg);


/* edgetrace_request.c */

request_rec *edgetrace_root(request_rec *r);
edgetrace_req_t *edgetrace_req(request_rec *r, int create);
edgetrace_ctx_t *edgetrace_ctx(request_rec *r);
void edgetrace_formats(edgetrace_dir_conf_t *dc, const unsigned **formats,
    unsigned *n, unsigned *mask);

int edgetrace_header_parser(request_rec *r);
int edgetrace_log_transaction(request_rec *r);
int edgetrace_status_handler(request_rec *r);


/* edgetrace_proxy.c */

int edgetrace_proxy_pre_request(proxy_worker **worker,
    proxy_balancer **balancer, request_rec *r, proxy_server_conf *conf,
    char **url);
void edgetrace_insert_filter(request_rec *r);
apr_status_t edgetrace_try_filter(ap_filter_t *f, apr_bucket_brigade *bb);
int edgetrace_proxy_fixups(request_rec *r);
int edgetrace_proxy_request_status(int *status, request_rec *r);


/* edgetrace_span.c */

void edgetrace_export_server(request_rec *r, edgetrace_ctx_t *ctx,
    uint64_t now);
void edgetrace_export_client(request_rec *r, edgetrace_ctx_t *ctx,
    edgetrace_client_t *cl);


#endif /* EDGETRACE_PRIVATE_H */
