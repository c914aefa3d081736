/*
 * mod_edgetrace: the Apache httpd adapter of the edgetrace core.
 *
 * This file is the module: its directives, its hooks and the process
 * side.  Every child process owns an exporter, started in child_init; the
 * counters live in shared memory kept in httpd's retained data, so they
 * survive the double configuration pass and graceful restarts.
 *
 * The rest is split by concern (edgetrace_private.h lists the files): the
 * configuration, a request's trace, mod_proxy's client spans, and the
 * spans themselves.
 */

#include <dlfcn.h>
#include <unistd.h>

#include "edgetrace_private.h"


#define EDGETRACE_TRY_FILTER      "EDGETRACE_TRY"

/* the per-directory directives: also in .htaccess, as mod_headers' */
#define EDGETRACE_DIR_CONTEXT     (RSRC_CONF | ACCESS_CONF | OR_FILEINFO)
#define EDGETRACE_RETAINED_KEY    "mod_edgetrace-metrics"

/* cmd->info of an exporter knob's directive: the knob, ET_KNOB_* */
#define EDGETRACE_KNOB(knob)      ((void *) (apr_size_t) (knob))


typedef struct {
    apr_shm_t          *shm;
} edgetrace_retained_t;


typedef void (*edgetrace_proxy_hook_pre_request_pt)(
    proxy_HOOK_pre_request_t *pf, const char * const *pre,
    const char * const *succ, int order);


int                         edgetrace_enabled;     /* EdgeTrace On somewhere */
int                         edgetrace_threaded;
int                         edgetrace_keeps;       /* EdgeTraceKeep used */
et_limit_conf_t             edgetrace_limit;       /* EdgeTraceSampleLimit */
et_exporter_t              *edgetrace_exporter;
et_counters_t              *edgetrace_counters;
et_metrics_t               *edgetrace_metrics;

/* the try filter's, as registered: no lookup by name */
ap_filter_rec_t            *edgetrace_try_filter_handle;

static et_stream_t          edgetrace_stream;
static et_exporter_conf_t   edgetrace_exporter_conf;


static const command_rec  edgetrace_cmds[] = {

    AP_INIT_FLAG("EdgeTrace", edgetrace_cmd_enable, NULL,
                 EDGETRACE_DIR_CONTEXT,
                 "On to trace requests here, Off not to"),

    AP_INIT_TAKE12("EdgeTraceRedis", edgetrace_cmd_redis, NULL, RSRC_CONF,
                   "where spans go: redis[s]://[[user]:password@]host[:port]"
                   "[/db] or unix:/path; a cluster's seeds: redis://[[user]:"
                   "password@]host[:port][,host[:port]...] cluster"),

    AP_INIT_TAKE1("EdgeTraceRedisSSLCACertificateFile",
                  edgetrace_cmd_redis_ssl, EDGETRACE_KNOB(EDGETRACE_SSL_CA),
                  RSRC_CONF,
                  "rediss://: the CA certificates (PEM) Redis's certificate "
                  "is verified against; default: the system's"),

    AP_INIT_TAKE1("EdgeTraceRedisSSLCertificateFile",
                  edgetrace_cmd_redis_ssl,
                  EDGETRACE_KNOB(EDGETRACE_SSL_CERT), RSRC_CONF,
                  "rediss://: the client certificate (PEM) for mutual TLS"),

    AP_INIT_TAKE1("EdgeTraceRedisSSLCertificateKeyFile",
                  edgetrace_cmd_redis_ssl,
                  EDGETRACE_KNOB(EDGETRACE_SSL_KEY), RSRC_CONF,
                  "rediss://: the client certificate's key (PEM)"),

    AP_INIT_TAKE1("EdgeTraceRedisSSLName", edgetrace_cmd_redis_ssl,
                  EDGETRACE_KNOB(EDGETRACE_SSL_NAME), RSRC_CONF,
                  "rediss://: the name Redis's certificate must hold, sent "
                  "as SNI; default: the URL's host"),

    AP_INIT_TAKE123("EdgeTraceStream", edgetrace_cmd_stream, NULL,
                    RSRC_CONF, "the stream key, then maxlen=N and shards=N"),

    AP_INIT_TAKE1("EdgeTraceServiceName", edgetrace_cmd_service_name, NULL,
                  RSRC_CONF, "service.name of the spans"),

    AP_INIT_TAKE1("EdgeTraceSample", edgetrace_cmd_sample, NULL,
                  EDGETRACE_DIR_CONTEXT,
                  "probability (0 to 1) that a new trace is sampled"),

    AP_INIT_TAKE1("EdgeTraceContext", edgetrace_cmd_context, NULL,
                  EDGETRACE_DIR_CONTEXT,
                  "extract, inject, propagate or ignore"),

    AP_INIT_RAW_ARGS("EdgeTracePropagation", edgetrace_cmd_propagation, NULL,
                     EDGETRACE_DIR_CONTEXT,
                     "formats read and written: w3c, b3, b3multi"),

    AP_INIT_TAKE1("EdgeTraceSpanName", edgetrace_cmd_span_name, NULL,
                  EDGETRACE_DIR_CONTEXT,
                  "the server span's name, or expr=..."),

    AP_INIT_TAKE2("EdgeTraceAttribute", edgetrace_cmd_attribute, NULL,
                  EDGETRACE_DIR_CONTEXT,
                  "an attribute name and a value, or expr=..."),

    AP_INIT_ITERATE("EdgeTraceKeep", edgetrace_cmd_keep, NULL,
                    EDGETRACE_DIR_CONTEXT,
                    "rules that keep an unsampled request by its outcome: "
                    "status=5xx, status=429, slower=500ms, expr=..., or Off"),

    AP_INIT_TAKE1("EdgeTraceSampleLimit", edgetrace_cmd_sample_limit, NULL,
                  RSRC_CONF,
                  "at most N/s new traces head-sampled by the server"),

    AP_INIT_TAKE1("EdgeTraceQueueSize", edgetrace_cmd_size,
                  EDGETRACE_KNOB(ET_KNOB_QUEUE_SIZE),
                  RSRC_CONF,
                  "bytes of spans queued per child while Redis is away"),

    AP_INIT_TAKE1("EdgeTraceValueMaxSize", edgetrace_cmd_size,
                  EDGETRACE_KNOB(ET_KNOB_VALUE_MAX),
                  RSRC_CONF,
                  "attribute values longer than this are cut"),

    AP_INIT_TAKE1("EdgeTraceFlushInterval", edgetrace_cmd_time,
                  EDGETRACE_KNOB(ET_KNOB_FLUSH_INTERVAL),
                  RSRC_CONF, "how often queued spans are written"),

    AP_INIT_TAKE1("EdgeTraceRedisConnectTimeout", edgetrace_cmd_time,
                  EDGETRACE_KNOB(ET_KNOB_CONNECT_TIMEOUT),
                  RSRC_CONF, "connect timeout"),

    AP_INIT_TAKE1("EdgeTraceRedisTimeout", edgetrace_cmd_time,
                  EDGETRACE_KNOB(ET_KNOB_REDIS_TIMEOUT),
                  RSRC_CONF, "no progress for this long: connection dead"),

    AP_INIT_TAKE1("EdgeTraceFlushTimeout", edgetrace_cmd_time,
                  EDGETRACE_KNOB(ET_KNOB_FLUSH_TIMEOUT),
                  RSRC_CONF, "how long a stopping child flushes"),

    { NULL }
};


/* the process side */

static void
edgetrace_log(void *data, int level, const char *msg, size_t len)
{
    server_rec  *s = data;
    int          lvl;

    switch (level) {
    case ET_LOG_ERR:
        lvl = APLOG_ERR;
        break;
    case ET_LOG_WARN:
        lvl = APLOG_WARNING;
        break;
    case ET_LOG_NOTICE:
        lvl = APLOG_NOTICE;
        break;
    case ET_LOG_INFO:
        lvl = APLOG_INFO;
        break;
    default:
        lvl = APLOG_DEBUG;
        break;
    }

    ap_log_error(APLOG_MARK, lvl, 0, s, "%.*s", (int) len, msg);
}


static int
edgetrace_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    edgetrace_proxy_hook_pre_request_pt  hook;

    (void) pconf;
    (void) plog;
    (void) ptemp;

    edgetrace_enabled = 0;
    edgetrace_keeps = 0;

    /*
     * pre_request is not an optional hook: mod_proxy exports the function
     * that registers it.  Looked up here, once every LoadModule has run,
     * so that the module loads with or without mod_proxy, in any order.
     */
    hook = (edgetrace_proxy_hook_pre_request_pt)
               dlsym(RTLD_DEFAULT, "proxy_hook_pre_request");
    if (hook) {
        hook(edgetrace_proxy_pre_request, NULL, NULL, APR_HOOK_REALLY_FIRST);
    }

    return OK;
}


static int
edgetrace_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
    server_rec *s)
{
    uint8_t             *buf;
    size_t               size, len;
    server_rec          *vs;
    const char          *name, *key;
    apr_status_t         rv;
    edgetrace_retained_t       *ret;
    edgetrace_srv_conf_t       *sc, *vc;
    et_exporter_conf_t  *ec;

    (void) plog;
    (void) ptemp;

    sc = EDGETRACE_SRV_CONF(s);

    /* the counters: one table for the server's lifetime */
    size = et_metrics_size(ET_METRICS_SLOTS_DEFAULT);
    ret = ap_retained_data_get(EDGETRACE_RETAINED_KEY);

    if (ret == NULL) {
        ret = ap_retained_data_create(EDGETRACE_RETAINED_KEY,
                                      sizeof(edgetrace_retained_t));
        ret->shm = NULL;
    }

    if (ret->shm == NULL) {
        rv = apr_shm_create(&ret->shm, size, NULL, s->process->pool);

        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                         "cannot create the shared memory of the counters");
            ret->shm = NULL;
            return HTTP_INTERNAL_SERVER_ERROR;
        }

        et_metrics_init(apr_shm_baseaddr_get(ret->shm),
                        ET_METRICS_SLOTS_DEFAULT);
    }

    edgetrace_metrics = et_metrics_at(apr_shm_baseaddr_get(ret->shm));

    /* service.name, built once per virtual host */
    for (vs = s; vs; vs = vs->next) {
        vc = EDGETRACE_SRV_CONF(vs);
        name = vc->service_name ? vc->service_name
               : (sc->service_name ? sc->service_name : "httpd");
        len = strlen(name);

        buf = apr_palloc(pconf, ET_SERVICE_FIELD_SIZE(len));
        et_service_field_init(&vc->service, buf, (const uint8_t *) name, len);
    }

    /* Redis and the knobs, defaults included (edgetrace_create_srv_conf) */
    ec = &edgetrace_exporter_conf;
    *ec = sc->exporter;

    key = sc->stream_key ? sc->stream_key : ET_STREAM_DEFAULT_KEY;
    len = strlen(key);
    buf = apr_palloc(pconf, ET_STREAM_BUF_SIZE(len, sc->stream_opts.shards));

    if (et_stream_init(&edgetrace_stream, buf, (const uint8_t *) key, len,
                       sc->stream_opts.maxlen, sc->stream_opts.shards,
                       sc->value_max)
        != ET_OK)
    {
        return HTTP_INTERNAL_SERVER_ERROR;
    }

    et_limit_conf_init(&edgetrace_limit, sc->limit_rate);

    ec->stream = &edgetrace_stream;
    ec->log = edgetrace_log;
    ec->log_data = s;

    return OK;
}


static apr_status_t
edgetrace_child_exit(void *data)
{
    (void) data;

    if (edgetrace_exporter) {
        et_exporter_stop(edgetrace_exporter);
        edgetrace_exporter = NULL;
    }

    if (edgetrace_counters && edgetrace_metrics) {
        et_metrics_release(edgetrace_metrics, edgetrace_counters);
    }

    edgetrace_counters = NULL;

    return APR_SUCCESS;
}


static void
edgetrace_child_init(apr_pool_t *pchild, server_rec *s)
{
    int  threaded;

    (void) s;

    /* no Redis connection when tracing is on nowhere */
    if (!edgetrace_enabled || edgetrace_metrics == NULL) {
        return;
    }

    et_id_seed();

    threaded = 0;

    if (ap_mpm_query(AP_MPMQ_IS_THREADED, &threaded) != APR_SUCCESS) {
        threaded = AP_MPMQ_NOT_SUPPORTED;
    }

    edgetrace_threaded = (threaded != AP_MPMQ_NOT_SUPPORTED);
    edgetrace_exporter_conf.shared = edgetrace_threaded;

    edgetrace_counters = et_metrics_claim(edgetrace_metrics,
                                          (int32_t) getpid());

    if (edgetrace_counters == NULL) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                     "no free counter slot: this child does not trace");
        return;
    }

    edgetrace_exporter = et_exporter_start(&edgetrace_exporter_conf,
                                           edgetrace_counters);

    apr_pool_cleanup_register(pchild, NULL, edgetrace_child_exit,
                              apr_pool_cleanup_null);
}


/* after the configuration is read, apache2 -t included */
static int
edgetrace_check_config(apr_pool_t *pconf, apr_pool_t *plog,
    apr_pool_t *ptemp, server_rec *s)
{
    (void) plog;
    (void) ptemp;

    return edgetrace_tls(pconf, s);
}


static void
edgetrace_register_hooks(apr_pool_t *p)
{
    (void) p;

    ap_hook_pre_config(edgetrace_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(edgetrace_check_config, NULL, NULL,
                         APR_HOOK_MIDDLE);
    ap_hook_post_config(edgetrace_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(edgetrace_child_init, NULL, NULL, APR_HOOK_MIDDLE);

    /* before mod_setenvif and mod_headers read the environment */
    ap_hook_header_parser(edgetrace_header_parser, NULL, NULL,
                          APR_HOOK_REALLY_FIRST);
    ap_hook_handler(edgetrace_status_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_insert_filter(edgetrace_insert_filter, NULL, NULL,
                          APR_HOOK_MIDDLE);
    edgetrace_try_filter_handle =
        ap_register_output_filter(EDGETRACE_TRY_FILTER, edgetrace_try_filter,
                                  NULL, AP_FTYPE_CONTENT_SET);
    /*
     * before mod_log_config's, so that a CustomLog's %{EDGETRACE_SAMPLING}e
     * knows whether EdgeTraceKeep kept the request (docs/httpd.md)
     */
    ap_hook_log_transaction(edgetrace_log_transaction, NULL, NULL,
                            APR_HOOK_FIRST);

    APR_OPTIONAL_HOOK(proxy, fixups, edgetrace_proxy_fixups, NULL, NULL,
                      APR_HOOK_LAST);
    APR_OPTIONAL_HOOK(proxy, request_status, edgetrace_proxy_request_status,
                      NULL, NULL, APR_HOOK_MIDDLE);
}


AP_DECLARE_MODULE(edgetrace) = {
    STANDARD20_MODULE_STUFF,
    edgetrace_create_dir_conf,
    edgetrace_merge_dir_conf,
    edgetrace_create_srv_conf,
    edgetrace_merge_srv_conf,
    edgetrace_cmds,
    edgetrace_register_hooks
#if defined(AP_MODULE_FLAG_ALWAYS_MERGE)
    , AP_MODULE_FLAG_NONE
#endif
};
