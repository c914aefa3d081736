/*
 * mod_edgetrace: the Apache httpd adapter of the edgetrace core.
 *
 * A request's trace is decided once, in the header-parser hook of the
 * client's request (the per-directory configuration is final there, <If>
 * included); internal redirects and subrequests belong to it.  The server
 * span starts at r->request_time and ends in log_transaction.  Each request
 * that mod_proxy passes to a backend gets one client span: its tries are
 * counted in proxy's pre_request hook (once per balancer try), the context
 * is written in proxy's fixups hook (into the copy of headers_in that the
 * backend request is built from) and the span ends in request_status, once
 * the failover loop is over.
 *
 * Every child process owns an exporter, started in child_init; the counters
 * live in shared memory kept in httpd's retained data, so they survive the
 * double configuration pass and graceful restarts.
 */

#include <dlfcn.h>
#include <string.h>
#include <unistd.h>

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


#define ET_UNSET          -1
#define ET_ATTRS_MAX      64
#define ET_USER_ATTRS_MAX 40
#define ET_TRIES_MAX      16

#define ET_STATUS_HANDLER  "edgetrace-status"
#define ET_TRY_FILTER      "EDGETRACE_TRY"

/* the per-directory directives: also in .htaccess, as mod_headers' */
#define ET_DIR_CONTEXT     (RSRC_CONF | ACCESS_CONF | OR_FILEINFO)
#define ET_RETAINED_KEY    "mod_edgetrace-metrics"


module AP_MODULE_DECLARE_DATA edgetrace_module;


typedef struct {
    et_key_t            key;
    const char         *value;            /* literal, or NULL */
    ap_expr_info_t     *expr;
} et_dir_attr_t;


/* directory configuration: EdgeTrace On also works in server context */
typedef struct {
    int                 enable;           /* ET_UNSET, 0, 1 */
    int                 context;          /* ET_UNSET, ET_CONTEXT_* */
    int                 sample_set;
    double              ratio;
    et_sampler_t        sampler;
    unsigned            formats[ET_PROP_FORMATS_MAX];
    unsigned            nformats;         /* 0: unset */
    unsigned            format_mask;
    int                 span_name_set;
    const char         *span_name;
    ap_expr_info_t     *span_name_expr;
    apr_array_header_t *attrs;            /* et_dir_attr_t */
} et_dir_conf_t;


typedef struct {
    const char         *service_name;     /* NULL: unset */
    et_str_t            service;          /* RESP field and value */

    /* the main server's only */
    const char         *redis;
    et_redis_url_t      url;
    const char         *stream_key;
    uint64_t            maxlen;
    int                 maxlen_set;
    apr_size_t          queue_size;
    apr_size_t          value_max;
    apr_interval_time_t flush_interval;
    apr_interval_time_t connect_timeout;
    apr_interval_time_t redis_timeout;
    apr_interval_time_t flush_timeout;
} et_srv_conf_t;


typedef struct et_client_s  et_client_t;

/* the client span of one request that mod_proxy passed to a backend */
struct et_client_s {
    request_rec        *r;
    uint8_t             span_id[ET_SPAN_ID_LEN];
    uint64_t            start_ns;
    uint64_t            end_ns;
    uint64_t            try_start_ns;
    unsigned            tries;
    unsigned            status;           /* the last try's */
    unsigned            open:1;           /* a try is running */
    unsigned            done:1;           /* exported, or not sampled */
    et_str_t            peer;             /* the last try's */
    et_str_t            url;
    et_try_t            events[ET_TRIES_MAX];
    et_client_t        *next;
};


/* the client request's trace, shared by its redirects and subrequests */
typedef struct {
    et_trace_t          trace;
    uint8_t             client_id[ET_SPAN_ID_LEN];
    unsigned            decided:1;
    unsigned            traced:1;
    unsigned            writes:1;
    unsigned            client_id_used:1;
    char                trace_hex[2 * ET_TRACE_ID_LEN + 1];
    char                span_hex[2 * ET_SPAN_ID_LEN + 1];
    char                parent_hex[2 * ET_SPAN_ID_LEN + 1];
    char                traceparent[ET_TRACEPARENT_LEN + 1];
    et_client_t        *clients;
} et_ctx_t;


/* r->request_config of every request the module met */
typedef struct {
    et_ctx_t           *ctx;
    et_client_t        *client;
} et_req_t;


typedef struct {
    apr_shm_t          *shm;
} et_retained_t;


typedef void (*et_proxy_hook_pre_request_pt)(proxy_HOOK_pre_request_t *pf,
    const char * const *pre, const char * const *succ, int order);


static int                  et_enabled;      /* EdgeTrace On somewhere */
static int                  et_threaded;
static et_stream_t          et_stream;
static et_exporter_conf_t   et_exporter_conf;
static et_exporter_t       *et_exporter;
static et_counters_t       *et_counters;
static et_metrics_t        *et_metrics;
static ap_filter_rec_t     *et_try_filter_handle;  /* no lookup by name */


static const char *
et_set_size(apr_size_t *size, const char *arg)
{
    char        *end;
    apr_int64_t  n, unit;

    if (!apr_isdigit(arg[0])) {
        return "must be a size: a number with an optional k or m suffix";
    }

    n = apr_strtoi64(arg, &end, 10);
    unit = 1;

    switch (*end) {
    case 'k': case 'K':
        unit = 1024;
        end++;
        break;
    case 'm': case 'M':
        unit = 1024 * 1024;
        end++;
        break;
    }

    if (*end != '\0' || n < 0 || n > (APR_INT64_C(1) << 40) / unit) {
        return "must be a size: a number with an optional k or m suffix";
    }

    *size = (apr_size_t) (n * unit);

    return NULL;
}


/* configuration */

static void *
et_create_dir_conf(apr_pool_t *p, char *dir)
{
    et_dir_conf_t  *dc;

    (void) dir;

    dc = apr_pcalloc(p, sizeof(et_dir_conf_t));

    dc->enable = ET_UNSET;
    dc->context = ET_UNSET;

    /* unset samples everything, as the root of every merge does */
    dc->ratio = 1;
    (void) et_sampler_init(&dc->sampler, 1);

    return dc;
}


static void *
et_merge_dir_conf(apr_pool_t *p, void *parent, void *child)
{
    et_dir_conf_t  *prev = parent;
    et_dir_conf_t  *conf = child;

    int             i, j;
    et_dir_conf_t  *dc;
    et_dir_attr_t  *pa, *ca;

    dc = apr_pcalloc(p, sizeof(et_dir_conf_t));

    dc->enable = conf->enable != ET_UNSET ? conf->enable : prev->enable;
    dc->context = conf->context != ET_UNSET ? conf->context : prev->context;

    if (conf->sample_set) {
        dc->sample_set = 1;
        dc->ratio = conf->ratio;
        dc->sampler = conf->sampler;

    } else {
        dc->sample_set = prev->sample_set;
        dc->ratio = prev->ratio;
        dc->sampler = prev->sampler;
    }

    if (conf->nformats) {
        memcpy(dc->formats, conf->formats, sizeof(dc->formats));
        dc->nformats = conf->nformats;
        dc->format_mask = conf->format_mask;

    } else {
        memcpy(dc->formats, prev->formats, sizeof(dc->formats));
        dc->nformats = prev->nformats;
        dc->format_mask = prev->format_mask;
    }

    if (conf->span_name_set) {
        dc->span_name_set = 1;
        dc->span_name = conf->span_name;
        dc->span_name_expr = conf->span_name_expr;

    } else {
        dc->span_name_set = prev->span_name_set;
        dc->span_name = prev->span_name;
        dc->span_name_expr = prev->span_name_expr;
    }

    /* attributes add up; a name set again in the child takes its value */

    if (prev->attrs == NULL || conf->attrs == NULL) {
        dc->attrs = conf->attrs ? conf->attrs : prev->attrs;
        return dc;
    }

    dc->attrs = apr_array_make(p, prev->attrs->nelts + conf->attrs->nelts,
                               sizeof(et_dir_attr_t));

    pa = (et_dir_attr_t *) prev->attrs->elts;
    ca = (et_dir_attr_t *) conf->attrs->elts;

    for (i = 0; i < prev->attrs->nelts; i++) {
        for (j = 0; j < conf->attrs->nelts; j++) {
            if (pa[i].key.name.len == ca[j].key.name.len
                && memcmp(pa[i].key.name.data, ca[j].key.name.data,
                          pa[i].key.name.len) == 0)
            {
                break;
            }
        }

        if (j == conf->attrs->nelts) {
            *(et_dir_attr_t *) apr_array_push(dc->attrs) = pa[i];
        }
    }

    for (j = 0; j < conf->attrs->nelts; j++) {
        if (dc->attrs->nelts == ET_USER_ATTRS_MAX) {
            break;
        }

        *(et_dir_attr_t *) apr_array_push(dc->attrs) = ca[j];
    }

    return dc;
}


static void *
et_create_srv_conf(apr_pool_t *p, server_rec *s)
{
    et_srv_conf_t  *sc;

    (void) s;

    sc = apr_pcalloc(p, sizeof(et_srv_conf_t));

    sc->queue_size = ET_QUEUE_SIZE_DEFAULT;
    sc->value_max = ET_VALUE_MAX_DEFAULT;
    sc->flush_interval = apr_time_from_msec(ET_FLUSH_MS_DEFAULT);
    sc->connect_timeout = apr_time_from_msec(ET_CONNECT_TIMEOUT_MS_DEFAULT);
    sc->redis_timeout = apr_time_from_msec(ET_IO_TIMEOUT_MS_DEFAULT);
    sc->flush_timeout = apr_time_from_msec(ET_STOP_TIMEOUT_MS_DEFAULT);

    return sc;
}


static void *
et_merge_srv_conf(apr_pool_t *p, void *parent, void *child)
{
    et_srv_conf_t  *prev = parent;
    et_srv_conf_t  *conf = child;

    et_srv_conf_t  *sc;

    sc = apr_palloc(p, sizeof(et_srv_conf_t));
    *sc = *prev;

    sc->service_name = conf->service_name ? conf->service_name
                                          : prev->service_name;

    return sc;
}


static const char *
et_cmd_enable(cmd_parms *cmd, void *conf, int on)
{
    et_dir_conf_t  *dc = conf;

    (void) cmd;

    dc->enable = on ? 1 : 0;

    if (on) {
        et_enabled = 1;
    }

    return NULL;
}


/* the main server's configuration, for the directives it alone takes */

static et_srv_conf_t *
et_main_conf(cmd_parms *cmd, const char **err)
{
    *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    if (*err) {
        return NULL;
    }

    return ap_get_module_config(cmd->server->module_config, &edgetrace_module);
}


static const char *
et_cmd_redis(cmd_parms *cmd, void *conf, const char *arg)
{
    const char     *err;
    et_srv_conf_t  *sc;

    (void) conf;

    sc = et_main_conf(cmd, &err);
    if (sc == NULL) {
        return err;
    }

    if (et_redis_url_parse((const uint8_t *) arg, strlen(arg), &sc->url,
                           &err)
        != ET_OK)
    {
        return apr_psprintf(cmd->pool, "EdgeTraceRedis \"%s\": %s", arg,
                            err);
    }

    sc->redis = arg;

    return NULL;
}


static const char *
et_cmd_stream(cmd_parms *cmd, void *conf, const char *key, const char *opt)
{
    const char     *err;
    et_srv_conf_t  *sc;

    (void) conf;

    sc = et_main_conf(cmd, &err);
    if (sc == NULL) {
        return err;
    }

    if (key[0] == '\0' || strlen(key) > ET_STREAM_KEY_MAX) {
        return apr_psprintf(cmd->pool, "EdgeTraceStream: the key must be 1 "
                            "to %d bytes long", ET_STREAM_KEY_MAX);
    }

    sc->stream_key = key;

    if (opt) {
        if (et_stream_parse_option((const uint8_t *) opt, strlen(opt),
                                   &sc->maxlen, &err)
            != ET_OK)
        {
            return apr_psprintf(cmd->pool, "EdgeTraceStream \"%s\": %s", opt,
                                err);
        }

        sc->maxlen_set = 1;
    }

    return NULL;
}


static const char *
et_cmd_service_name(cmd_parms *cmd, void *conf, const char *arg)
{
    et_srv_conf_t  *sc;

    (void) conf;

    if (arg[0] == '\0') {
        return "EdgeTraceServiceName: the name must not be empty";
    }

    sc = ap_get_module_config(cmd->server->module_config, &edgetrace_module);
    sc->service_name = arg;

    return NULL;
}


static const char *
et_cmd_sample(cmd_parms *cmd, void *conf, const char *arg)
{
    et_dir_conf_t  *dc = conf;

    if (et_sampler_parse_ratio((const uint8_t *) arg, strlen(arg),
                               &dc->ratio)
        != ET_OK
        || et_sampler_init(&dc->sampler, dc->ratio) != ET_OK)
    {
        return apr_psprintf(cmd->pool, "EdgeTraceSample \"%s\": the ratio "
                            "must be a number from 0 to 1", arg);
    }

    dc->sample_set = 1;

    return NULL;
}


static const char *
et_cmd_context(cmd_parms *cmd, void *conf, const char *arg)
{
    int             mode;
    et_dir_conf_t  *dc = conf;

    mode = et_prop_context_parse((const uint8_t *) arg, strlen(arg));

    if (mode < 0) {
        return apr_psprintf(cmd->pool, "EdgeTraceContext \"%s\": must be "
                            "extract, inject, propagate or ignore", arg);
    }

    dc->context = mode;

    return NULL;
}


static const char *
et_cmd_propagation(cmd_parms *cmd, void *conf, const char *args)
{
    char           *w;
    unsigned        f;
    et_dir_conf_t  *dc = conf;

    dc->nformats = 0;
    dc->format_mask = 0;

    while (*(w = ap_getword_conf(cmd->temp_pool, &args)) != '\0') {
        f = et_prop_format_parse((const uint8_t *) w, strlen(w));

        if (f == 0) {
            return apr_psprintf(cmd->pool, "EdgeTracePropagation \"%s\": "
                                "the formats are w3c, b3 and b3multi", w);
        }

        if (dc->format_mask & f) {
            return apr_psprintf(cmd->pool, "EdgeTracePropagation: \"%s\" "
                                "is given twice", w);
        }

        dc->formats[dc->nformats++] = f;
        dc->format_mask |= f;
    }

    if (dc->nformats == 0) {
        return "EdgeTracePropagation needs at least one format";
    }

    return NULL;
}


/* "expr=..." is an httpd expression, anything else a literal */

static const char *
et_value(cmd_parms *cmd, const char *arg, const char **value,
    ap_expr_info_t **expr)
{
    const char  *err;

    *value = NULL;
    *expr = NULL;

    if (strncasecmp(arg, "expr=", 5) != 0) {
        *value = arg;
        return NULL;
    }

    err = NULL;
    *expr = ap_expr_parse_cmd(cmd, arg + 5, AP_EXPR_FLAG_STRING_RESULT,
                              &err, NULL);

    if (err) {
        return apr_psprintf(cmd->pool, "%s: cannot parse expression "
                            "\"%s\": %s", cmd->cmd->name, arg + 5, err);
    }

    return NULL;
}


static const char *
et_cmd_span_name(cmd_parms *cmd, void *conf, const char *arg)
{
    et_dir_conf_t  *dc = conf;

    dc->span_name_set = 1;

    return et_value(cmd, arg, &dc->span_name, &dc->span_name_expr);
}


static const char *
et_cmd_attribute(cmd_parms *cmd, void *conf, const char *name,
    const char *value)
{
    int             i;
    uint8_t        *buf;
    size_t          len;
    const char     *err;
    et_dir_attr_t  *a;
    et_dir_conf_t  *dc = conf;

    len = strlen(name);

    if (et_attr_name_check((const uint8_t *) name, len, &err) != ET_OK) {
        return apr_psprintf(cmd->pool, "EdgeTraceAttribute \"%s\": %s", name,
                            err);
    }

    if (dc->attrs == NULL) {
        dc->attrs = apr_array_make(cmd->pool, 4, sizeof(et_dir_attr_t));
    }

    a = (et_dir_attr_t *) dc->attrs->elts;

    for (i = 0; i < dc->attrs->nelts; i++) {
        if (a[i].key.name.len == len
            && memcmp(a[i].key.name.data, name, len) == 0)
        {
            return apr_psprintf(cmd->pool, "EdgeTraceAttribute \"%s\" is "
                                "set twice in the same context", name);
        }
    }

    if (dc->attrs->nelts == ET_USER_ATTRS_MAX) {
        return apr_psprintf(cmd->pool, "EdgeTraceAttribute: at most %d "
                            "attributes", ET_USER_ATTRS_MAX);
    }

    a = apr_array_push(dc->attrs);

    buf = apr_palloc(cmd->pool, ET_KEY_RESP_SIZE(len));
    et_key_init(&a->key, buf, (const uint8_t *) name, len);

    return et_value(cmd, value, &a->value, &a->expr);
}


/* EdgeTraceQueueSize, EdgeTraceValueMaxSize */

static const char *
et_cmd_size(cmd_parms *cmd, void *conf, const char *arg)
{
    const char     *err;
    apr_size_t     *size;
    et_srv_conf_t  *sc;

    (void) conf;

    sc = et_main_conf(cmd, &err);
    if (sc == NULL) {
        return err;
    }
    size = (apr_size_t *) ((char *) sc + (apr_size_t) cmd->info);

    err = et_set_size(size, arg);
    if (err) {
        return apr_psprintf(cmd->pool, "%s \"%s\" %s", cmd->cmd->name, arg,
                            err);
    }

    if (size == &sc->queue_size && *size < 4096) {
        return "EdgeTraceQueueSize must be at least 4k";
    }

    if (size == &sc->value_max && (*size == 0 || *size > 65536)) {
        return "EdgeTraceValueMaxSize must be from 1 to 64k";
    }

    return NULL;
}


/* the timeouts and the flush interval: "100ms", "1s", "5" (seconds) */

static const char *
et_cmd_time(cmd_parms *cmd, void *conf, const char *arg)
{
    const char           *err;
    et_srv_conf_t        *sc;
    apr_interval_time_t  *t;

    (void) conf;

    sc = et_main_conf(cmd, &err);
    if (sc == NULL) {
        return err;
    }
    t = (apr_interval_time_t *) ((char *) sc + (apr_size_t) cmd->info);

    if (!apr_isdigit(arg[0])
        || ap_timeout_parameter_parse(arg, t, "s") != APR_SUCCESS
        || *t <= 0 || *t > apr_time_from_sec(3600))
    {
        return apr_psprintf(cmd->pool, "%s \"%s\": must be a time such as "
                            "100ms or 5s, at most an hour", cmd->cmd->name,
                            arg);
    }

    if (t == &sc->flush_interval && *t > apr_time_from_sec(1)) {
        return "EdgeTraceFlushInterval must be from 1ms to 1s: spans reach "
               "Redis within a second";
    }

    return NULL;
}


static const command_rec  et_cmds[] = {

    AP_INIT_FLAG("EdgeTrace", et_cmd_enable, NULL, ET_DIR_CONTEXT,
                 "On to trace requests here, Off not to"),

    AP_INIT_TAKE1("EdgeTraceRedis", et_cmd_redis, NULL, RSRC_CONF,
                  "where spans go: redis://[[user]:password@]host[:port][/db]"
                  " or unix:/path"),

    AP_INIT_TAKE12("EdgeTraceStream", et_cmd_stream, NULL, RSRC_CONF,
                   "the stream key, and maxlen=N"),

    AP_INIT_TAKE1("EdgeTraceServiceName", et_cmd_service_name, NULL,
                  RSRC_CONF, "service.name of the spans"),

    AP_INIT_TAKE1("EdgeTraceSample", et_cmd_sample, NULL,
                  ET_DIR_CONTEXT,
                  "probability (0 to 1) that a new trace is sampled"),

    AP_INIT_TAKE1("EdgeTraceContext", et_cmd_context, NULL,
                  ET_DIR_CONTEXT,
                  "extract, inject, propagate or ignore"),

    AP_INIT_RAW_ARGS("EdgeTracePropagation", et_cmd_propagation, NULL,
                     ET_DIR_CONTEXT,
                     "formats read and written: w3c, b3, b3multi"),

    AP_INIT_TAKE1("EdgeTraceSpanName", et_cmd_span_name, NULL,
                  ET_DIR_CONTEXT,
                  "the server span's name, or expr=..."),

    AP_INIT_TAKE2("EdgeTraceAttribute", et_cmd_attribute, NULL,
                  ET_DIR_CONTEXT,
                  "an attribute name and a value, or expr=..."),

    AP_INIT_TAKE1("EdgeTraceQueueSize", et_cmd_size,
                  (void *) APR_OFFSETOF(et_srv_conf_t, queue_size), RSRC_CONF,
                  "bytes of spans queued per child while Redis is away"),

    AP_INIT_TAKE1("EdgeTraceValueMaxSize", et_cmd_size,
                  (void *) APR_OFFSETOF(et_srv_conf_t, value_max), RSRC_CONF,
                  "attribute values longer than this are cut"),

    AP_INIT_TAKE1("EdgeTraceFlushInterval", et_cmd_time,
                  (void *) APR_OFFSETOF(et_srv_conf_t, flush_interval),
                  RSRC_CONF, "how often queued spans are written"),

    AP_INIT_TAKE1("EdgeTraceRedisConnectTimeout", et_cmd_time,
                  (void *) APR_OFFSETOF(et_srv_conf_t, connect_timeout),
                  RSRC_CONF, "connect timeout"),

    AP_INIT_TAKE1("EdgeTraceRedisTimeout", et_cmd_time,
                  (void *) APR_OFFSETOF(et_srv_conf_t, redis_timeout),
                  RSRC_CONF, "no progress for this long: connection dead"),

    AP_INIT_TAKE1("EdgeTraceFlushTimeout", et_cmd_time,
                  (void *) APR_OFFSETOF(et_srv_conf_t, flush_timeout),
                  RSRC_CONF, "how long a stopping child flushes"),

    { NULL }
};


/* the request side */

static et_dir_conf_t *
et_dir_conf(request_rec *r)
{
    return ap_get_module_config(r->per_dir_config, &edgetrace_module);
}


static et_srv_conf_t *
et_srv_conf(request_rec *r)
{
    return ap_get_module_config(r->server->module_config, &edgetrace_module);
}


/* the client request that "r" (a subrequest or a redirect) belongs to */

static request_rec *
et_root(request_rec *r)
{
    for ( ;; ) {
        if (r->main) {
            r = r->main;

        } else if (r->prev) {
            r = r->prev;

        } else {
            return r;
        }
    }
}


static et_req_t *
et_req(request_rec *r, int create)
{
    et_req_t  *req;

    req = ap_get_module_config(r->request_config, &edgetrace_module);

    if (req == NULL && create) {
        req = apr_pcalloc(r->pool, sizeof(et_req_t));
        ap_set_module_config(r->request_config, &edgetrace_module, req);
    }

    return req;
}


static et_ctx_t *
et_ctx(request_rec *r)
{
    et_req_t     *req, *root_req;
    request_rec  *root;

    req = et_req(r, 0);

    if (req && req->ctx) {
        return req->ctx;
    }

    root = et_root(r);

    if (root == r) {
        return NULL;
    }

    root_req = et_req(root, 0);

    if (root_req == NULL || root_req->ctx == NULL) {
        return NULL;
    }

    req = et_req(r, 1);
    req->ctx = root_req->ctx;

    return req->ctx;
}


/* one walk over the request's headers: the ones of the formats "mask" */

static void
et_scan_headers(request_rec *r, unsigned mask, et_prop_found_t *found)
{
    int                        i, k;
    const char                *key;
    const apr_array_header_t  *arr;
    const apr_table_entry_t   *e;

    et_prop_found_init(found);

    arr = apr_table_elts(r->headers_in);
    e = (const apr_table_entry_t *) arr->elts;

    for (i = 0; i < arr->nelts; i++) {
        key = e[i].key;

        /* every name of et_prop_headers[] starts with t, b or x */
        if (key == NULL
            || ((key[0] | 0x20) != 't' && (key[0] | 0x20) != 'b'
                && (key[0] | 0x20) != 'x'))
        {
            continue;
        }

        k = et_prop_header_find((const uint8_t *) key, strlen(key), mask);

        if (k >= 0) {
            et_prop_found_add(found, k, (const uint8_t *) e[i].val,
                              strlen(e[i].val));
        }
    }
}


static const unsigned  et_default_formats[] = { ET_PROP_W3C };


static void
et_formats(et_dir_conf_t *dc, const unsigned **formats, unsigned *n,
    unsigned *mask)
{
    if (dc->nformats) {
        *formats = dc->formats;
        *n = dc->nformats;
        *mask = dc->format_mask;

    } else {
        *formats = et_default_formats;
        *n = 1;
        *mask = ET_PROP_W3C;
    }
}


/* 1 when the table holds a variable named EDGETRACE_... already */
static int
et_env_has_ours(apr_table_t *env)
{
    int                        i;
    const char                *key;
    const apr_array_header_t  *arr;
    const apr_table_entry_t   *e;

    arr = apr_table_elts(env);
    e = (const apr_table_entry_t *) arr->elts;

    for (i = 0; i < arr->nelts; i++) {
        key = e[i].key;

        if (key && (key[0] | 0x20) == 'e'
            && strncasecmp(key, "EDGETRACE_", sizeof("EDGETRACE_") - 1) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/*
 * The five names share their first ten letters, and apr_table_setn()
 * compares each with those set before it: 970 instructions a request.
 * Usually none is there yet (an internal redirect renames the previous
 * request's to REDIRECT_...): then they are appended, with no search.
 */
static void
et_set_env(request_rec *r, et_ctx_t *ctx)
{
    void        (*set)(apr_table_t *t, const char *key, const char *val);
    apr_table_t  *env;

    env = r->subprocess_env;
    set = et_env_has_ours(env) ? apr_table_setn : apr_table_addn;

    set(env, "EDGETRACE_TRACE_ID", ctx->trace_hex);
    set(env, "EDGETRACE_SPAN_ID", ctx->span_hex);
    set(env, "EDGETRACE_PARENT_ID", ctx->parent_hex);
    set(env, "EDGETRACE_SAMPLED", ctx->trace.sampled ? "1" : "0");
    set(env, "EDGETRACE_TRACEPARENT", ctx->traceparent);
}


/* the client request's tracing, decided once with its final config */

static et_ctx_t *
et_decide(request_rec *r)
{
    int              rc, mode;
    char            *p;
    size_t           ts_len;
    unsigned         n, mask;
    et_req_t        *req;
    et_ctx_t        *ctx;
    const char      *why;
    et_prop_found_t  found;
    et_context_t     parent;
    et_dir_conf_t   *dc;
    const unsigned  *formats;
    uint8_t          ts[ET_TRACESTATE_MAX];

    req = et_req(r, 1);

    ctx = apr_pcalloc(r->pool, sizeof(et_ctx_t));
    req->ctx = ctx;
    ctx->decided = 1;

    dc = et_dir_conf(r);

    if (dc->enable != 1) {
        return ctx;
    }

    mode = dc->context != ET_UNSET ? dc->context : ET_CONTEXT_PROPAGATE;

    ctx->traced = 1;
    ctx->writes = (mode == ET_CONTEXT_INJECT || mode == ET_CONTEXT_PROPAGATE);

    rc = ET_DECLINED;
    ts_len = 0;

    if (mode == ET_CONTEXT_EXTRACT || mode == ET_CONTEXT_PROPAGATE) {
        et_formats(dc, &formats, &n, &mask);
        et_scan_headers(r, mask, &found);

        why = NULL;
        rc = et_prop_extract(&found, formats, n, &dc->sampler, &parent,
                             ts, &ts_len, &why);

        if (rc == ET_DECLINED && why) {
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                          "incoming context ignored: %s", why);
        }
    }

    et_trace_begin(&ctx->trace, rc, &parent, &dc->sampler);

    if (rc == ET_OK && ts_len) {
        p = apr_pmemdup(r->pool, ts, ts_len);
        ctx->trace.tracestate.data = (const uint8_t *) p;
        ctx->trace.tracestate.len = ts_len;

    } else {
        ctx->trace.tracestate.len = 0;
    }

    et_span_id_new(ctx->client_id);

    *et_hex_encode16((uint8_t *) ctx->trace_hex, ctx->trace.trace_id) = '\0';
    *et_hex_encode8((uint8_t *) ctx->span_hex, ctx->trace.span_id) = '\0';

    if (ctx->trace.has_parent) {
        *et_hex_encode8((uint8_t *) ctx->parent_hex, ctx->trace.parent_id)
            = '\0';
    }

    *et_traceparent_write((uint8_t *) ctx->traceparent, ctx->trace.trace_id,
                          ctx->client_id, ctx->trace.flags) = '\0';

    if (et_counters) {
        et_counter_add(&et_counters->requests, 1, et_threaded);

        if (ctx->trace.sampled) {
            et_counter_add(&et_counters->requests_sampled, 1, et_threaded);
        }
    }

    return ctx;
}


/*
 * The header parser runs for client requests and again after each
 * internal redirect, with the per-directory configuration final.
 */

static int
et_header_parser(request_rec *r)
{
    et_ctx_t  *ctx;

    if (r->prev) {
        ctx = et_ctx(r);

        if (ctx && ctx->traced) {
            et_set_env(r, ctx);
        }

        return DECLINED;
    }

    ctx = et_ctx(r);

    if (ctx == NULL) {
        ctx = et_decide(r);
    }

    if (ctx->traced) {
        et_set_env(r, ctx);
    }

    return DECLINED;
}


/* mod_proxy: one client span per request passed to a backend */

/*
 * The last try's peer (host:port) and URL, in the root request's pool: the
 * balancer names the worker it picked (the URL is then the worker's and
 * the path of r->filename), else r->filename is "proxy:" and the URL.
 */
static void
et_client_target(request_rec *r, apr_pool_t *pool, et_client_t *cl)
{
    size_t       n;
    const char  *u, *p, *path, *proxied;

    proxied = r->filename && strncmp(r->filename, "proxy:", 6) == 0
              ? r->filename + 6 : NULL;

    u = apr_table_get(r->subprocess_env, "BALANCER_WORKER_NAME");

    if (u == NULL) {
        if (proxied == NULL) {
            return;
        }

        u = proxied;
        proxied = NULL;
    }

    p = strstr(u, "://");
    p = p ? p + 3 : u;
    n = strcspn(p, "/?#");

    cl->peer.data = apr_pmemdup(pool, p, n);
    cl->peer.len = n;

    /* the balancer's worker URL, then the path the request was given */
    path = proxied ? strstr(proxied, "://") : NULL;
    path = path ? path + 3 + strcspn(path + 3, "/?#") : "";

    cl->url.data = (const uint8_t *) apr_pstrcat(pool, u, path, NULL);
    cl->url.len = strlen((const char *) cl->url.data);
}


static void
et_client_close_try(request_rec *r, et_client_t *cl, unsigned status,
    uint64_t now)
{
    et_try_t  *ev;

    cl->open = 0;
    cl->status = status;

    et_client_target(r, et_root(r)->pool, cl);

    if (cl->tries > ET_TRIES_MAX) {
        return;
    }

    ev = &cl->events[cl->tries - 1];
    ev->peer = cl->peer;

    if (ev->peer.len == 0) {
        ev->peer.data = (const uint8_t *) "";
    }

    ev->status = status;
    ev->connect_ms = -1;
    ev->response_ms = (int64_t) ((now - cl->try_start_ns) / 1000000);
}


static int
et_proxy_pre_request(proxy_worker **worker, proxy_balancer **balancer,
    request_rec *r, proxy_server_conf *conf, char **url)
{
    uint64_t      now;
    et_req_t     *req;
    et_ctx_t     *ctx;
    et_client_t  *cl;
    request_rec  *root;

    (void) worker;
    (void) balancer;
    (void) conf;
    (void) url;

    ctx = et_ctx(r);

    if (ctx == NULL || !ctx->traced) {
        return DECLINED;
    }

    now = et_clock_now_ns();
    req = et_req(r, 1);
    cl = req->client;

    if (cl == NULL) {
        root = et_root(r);

        cl = apr_pcalloc(root->pool, sizeof(et_client_t));
        cl->r = r;
        cl->start_ns = now;

        /* the id EDGETRACE_TRACEPARENT announced goes to the first one */
        if (!ctx->client_id_used && r->main == NULL) {
            memcpy(cl->span_id, ctx->client_id, ET_SPAN_ID_LEN);
            ctx->client_id_used = 1;

        } else {
            et_span_id_new(cl->span_id);
        }

        cl->next = ctx->clients;
        ctx->clients = cl;
        req->client = cl;

    } else if (cl->open) {
        /* the balancer tries another worker: the last try failed */
        et_client_close_try(r, cl, 0, now);
    }

    cl->open = 1;
    cl->tries++;
    cl->try_start_ns = now;

    if (cl->tries <= ET_TRIES_MAX) {
        cl->events[cl->tries - 1].header_ms = -1;
    }

    return DECLINED;
}


/*
 * The first output of a proxied request comes when the backend's response
 * header is in: the running try's header_ms.  The filter then leaves.
 */

static apr_status_t
et_try_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    et_req_t     *req;
    et_client_t  *cl;

    req = et_req(f->r, 0);
    cl = req ? req->client : NULL;

    if (cl && cl->open && cl->tries <= ET_TRIES_MAX) {
        cl->events[cl->tries - 1].header_ms =
                (int64_t) ((et_clock_now_ns() - cl->try_start_ns) / 1000000);
    }

    ap_remove_output_filter(f);

    return ap_pass_brigade(f->next, bb);
}


static void
et_insert_filter(request_rec *r)
{
    et_ctx_t  *ctx;

    if (r->proxyreq == PROXYREQ_NONE) {
        return;
    }

    ctx = et_ctx(r);

    if (ctx && ctx->traced && ctx->trace.sampled) {
        ap_add_output_filter_handle(et_try_filter_handle, NULL, r,
                                    r->connection);
    }
}


/* runs while the backend request is built, on a copy of headers_in */

static int
et_proxy_fixups(request_rec *r)
{
    int            k;
    unsigned       mask, n;
    et_req_t      *req;
    et_ctx_t      *ctx;
    et_str_t       values[ET_HDRS];
    const char    *name;
    et_dir_conf_t *dc;
    const unsigned *formats;
    uint8_t        buf[ET_PROP_INJECT_SIZE];

    ctx = et_ctx(r);

    if (ctx == NULL || !ctx->traced || !ctx->writes) {
        return DECLINED;
    }

    req = et_req(r, 0);

    if (req == NULL || req->client == NULL) {
        return DECLINED;
    }

    dc = et_dir_conf(r);
    et_formats(dc, &formats, &n, &mask);

    mask = et_prop_inject_values(&ctx->trace, req->client->span_id, mask,
                                 buf, values);

    for (k = 0; k < ET_HDRS; k++) {
        if (!(mask & (1u << k))) {
            continue;
        }

        name = (const char *) et_prop_headers[k].name.data;

        if (values[k].len) {
            apr_table_set(r->headers_in, name,
                          apr_pstrmemdup(r->pool,
                                         (const char *) values[k].data,
                                         values[k].len));

        } else {
            apr_table_unset(r->headers_in, name);
        }
    }

    return DECLINED;
}


static void
et_export_client(request_rec *r, et_ctx_t *ctx, et_client_t *cl)
{
    et_span_t         span;
    et_attr_t         attrs[ET_HTTP_CLIENT_ATTRS];
    et_srv_conf_t    *sc;
    et_http_client_t  req;
    uint8_t           text[ET_HTTP_STATUS_TEXT];

    cl->done = 1;

    if (!ctx->trace.sampled || et_exporter == NULL) {
        return;
    }

    sc = et_srv_conf(r);

    memset(&span, 0, sizeof(et_span_t));
    memcpy(span.trace_id, ctx->trace.trace_id, ET_TRACE_ID_LEN);
    memcpy(span.span_id, cl->span_id, ET_SPAN_ID_LEN);
    memcpy(span.parent_id, ctx->trace.span_id, ET_SPAN_ID_LEN);
    span.has_parent = 1;
    span.kind = ET_SPAN_CLIENT;
    span.start_ns = cl->start_ns;
    span.end_ns = cl->end_ns > cl->start_ns ? cl->end_ns : cl->start_ns;
    span.name.data = (const uint8_t *) cl->r->method;
    span.name.len = strlen(cl->r->method);
    span.tracestate = ctx->trace.tracestate;
    span.service = &sc->service;
    span.tries = cl->events;
    span.ntries = cl->tries < ET_TRIES_MAX ? cl->tries : ET_TRIES_MAX;

    memset(&req, 0, sizeof(et_http_client_t));
    req.method = span.name;
    req.status = cl->status;
    req.tries = cl->tries;

    /* empty when no try reached a backend: no attribute then */
    req.peer = cl->peer;
    req.url = cl->url;

    span.nattrs = et_http_client_attrs(&req, &span, attrs, text);
    span.attrs = attrs;

    (void) et_exporter_submit(et_exporter, &span);
}


/* once per proxied request, after the failover loop */

static int
et_proxy_request_status(int *status, request_rec *r)
{
    uint64_t      now;
    unsigned      code;
    et_req_t     *req;
    et_ctx_t     *ctx;
    et_client_t  *cl;

    ctx = et_ctx(r);
    req = et_req(r, 0);

    if (ctx == NULL || req == NULL || req->client == NULL
        || req->client->done)
    {
        return DECLINED;
    }

    cl = req->client;
    now = et_clock_now_ns();

    /* OK or DONE: a backend answered; an HTTP error: mod_proxy's own */
    code = (*status == OK || *status == DONE) ? (unsigned) r->status : 0;

    if (cl->open) {
        et_client_close_try(r, cl, code, now);
    }

    cl->end_ns = now;

    et_export_client(r, ctx, cl);

    return DECLINED;
}


static void
et_export_server(request_rec *r, et_ctx_t *ctx)
{
    int               i;
    size_t            n;
    const char       *v, *err, *ua;
    request_rec      *last;
    et_span_t         span;
    et_attr_t         attrs[ET_ATTRS_MAX];
    et_dir_attr_t    *da;
    et_dir_conf_t    *dc;
    et_str_t          route;
    et_srv_conf_t    *sc;
    et_http_server_t  req;
    core_dir_config  *cd;
    uint8_t           name[256];
    uint8_t           text[ET_HTTP_STATUS_TEXT];

    static et_str_t  versions[] = {
        et_string("0.9"), et_string("1.0"), et_string("1.1"), et_string("2")
    };

    /* the request that answered: the last internal redirect */
    for (last = r; last->next; last = last->next) { /* void */ }

    dc = et_dir_conf(last);
    sc = et_srv_conf(r);

    memset(&span, 0, sizeof(et_span_t));
    memcpy(span.trace_id, ctx->trace.trace_id, ET_TRACE_ID_LEN);
    memcpy(span.span_id, ctx->trace.span_id, ET_SPAN_ID_LEN);

    if (ctx->trace.has_parent) {
        memcpy(span.parent_id, ctx->trace.parent_id, ET_SPAN_ID_LEN);
        span.has_parent = 1;
    }

    span.kind = ET_SPAN_SERVER;
    span.start_ns = (uint64_t) r->request_time * 1000;
    span.end_ns = et_clock_now_ns();

    if (span.end_ns < span.start_ns) {
        span.end_ns = span.start_ns;
    }

    span.service = &sc->service;
    span.tracestate = ctx->trace.tracestate;

    memset(&req, 0, sizeof(et_http_server_t));
    req.method.data = (const uint8_t *) (r->method ? r->method : "");
    req.method.len = strlen((const char *) req.method.data);

    v = NULL;

    if (dc->span_name_expr) {
        err = NULL;
        v = ap_expr_str_exec(last, dc->span_name_expr, &err);

        if (err) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                          "EdgeTraceSpanName: %s", err);
            v = NULL;
        }

    } else if (dc->span_name) {
        v = dc->span_name;
    }

    /* a name whose expression is empty falls back to the default */
    if (v && *v) {
        span.name.data = (const uint8_t *) v;
        span.name.len = strlen(v);

    } else {
        /*
         * The path of the <Location>, <Directory> or <Files> section that
         * configured the request last (core's record of it); an <If> has
         * none.
         */
        cd = ap_get_core_module_config(last->per_dir_config);
        route.len = 0;

        if (cd && cd->d && cd->d[0] != '*') {
            route.data = (const uint8_t *) cd->d;
            route.len = strlen(cd->d);
        }

        span.name.data = name;
        span.name.len = et_http_span_name(name, sizeof(name), req.method,
                                          route);
    }

    v = r->unparsed_uri ? r->unparsed_uri : (r->uri ? r->uri : "");
    req.target.data = (const uint8_t *) v;
    req.target.len = strlen(v);

    v = ap_http_scheme(r);
    req.scheme.data = (const uint8_t *) (v ? v : "http");
    req.scheme.len = strlen((const char *) req.scheme.data);

    if (r->hostname) {
        req.host.data = (const uint8_t *) r->hostname;
        req.host.len = strlen(r->hostname);
    }

    req.port = r->connection->local_addr
               ? (int64_t) r->connection->local_addr->port : -1;

    if (r->useragent_ip) {
        req.client_address.data = (const uint8_t *) r->useragent_ip;
        req.client_address.len = strlen(r->useragent_ip);
    }

    ua = apr_table_get(r->headers_in, "User-Agent");

    if (ua) {
        req.user_agent.data = (const uint8_t *) ua;
        req.user_agent.len = strlen(ua);
    }

    if (r->proto_num >= HTTP_VERSION(2, 0)) {
        req.protocol_version = versions[3];

    } else if (r->proto_num >= HTTP_VERSION(1, 1)) {
        req.protocol_version = versions[2];

    } else if (r->proto_num >= HTTP_VERSION(1, 0)) {
        req.protocol_version = versions[1];

    } else {
        req.protocol_version = versions[0];
    }

    req.status = last->status > 0 ? (unsigned) last->status : 0;

    n = et_http_server_attrs(&req, &span, attrs, text);

    if (dc->attrs) {
        da = (et_dir_attr_t *) dc->attrs->elts;

        for (i = 0; i < dc->attrs->nelts && n < ET_ATTRS_MAX; i++) {
            v = da[i].value;

            if (da[i].expr) {
                err = NULL;
                v = ap_expr_str_exec(last, da[i].expr, &err);

                if (err) {
                    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                                  "EdgeTraceAttribute %.*s: %s",
                                  (int) da[i].key.name.len,
                                  da[i].key.name.data, err);
                    continue;
                }
            }

            if (v == NULL) {
                continue;
            }

            attrs[n].key = &da[i].key;
            attrs[n].type = ET_ATTR_STRING;
            attrs[n].str.data = (const uint8_t *) v;
            attrs[n].str.len = strlen(v);
            n++;
        }
    }

    span.attrs = attrs;
    span.nattrs = n;

    (void) et_exporter_submit(et_exporter, &span);
}


static int
et_log_transaction(request_rec *r)
{
    uint64_t      now;
    et_req_t     *req;
    et_ctx_t     *ctx;
    et_client_t  *cl;

    if (r->main || r->prev) {
        return DECLINED;
    }

    req = et_req(r, 0);
    ctx = req ? req->ctx : NULL;

    if (ctx == NULL) {
        /*
         * Ended before the header parser (a redirect by the core, a URL
         * mapping error): decided now.  Requests httpd could not read are
         * not traced.
         */
        if (r->method == NULL || r->the_request == NULL
            || r->status == HTTP_BAD_REQUEST
            || r->status == HTTP_REQUEST_TIME_OUT
            || r->status == HTTP_REQUEST_URI_TOO_LARGE
            || r->status == HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE)
        {
            return DECLINED;
        }

        ctx = et_decide(r);
    }

    if (!ctx->traced) {
        return DECLINED;
    }

    /* exchanges mod_proxy did not report the end of */
    now = et_clock_now_ns();

    for (cl = ctx->clients; cl; cl = cl->next) {
        if (cl->done) {
            continue;
        }

        if (cl->open) {
            cl->open = 0;
            cl->status = 0;
        }

        cl->end_ns = now;
        et_export_client(r, ctx, cl);
    }

    if (ctx->trace.sampled && et_exporter) {
        et_export_server(r, ctx);
    }

    return DECLINED;
}


/* SetHandler edgetrace-status: the counters of every child */

static int
et_status_handler(request_rec *r)
{
    size_t            n;
    et_metrics_sum_t  sum;
    uint8_t           buf[ET_METRICS_TEXT_MAX];

    if (r->handler == NULL || strcmp(r->handler, ET_STATUS_HANDLER) != 0) {
        return DECLINED;
    }

    r->allowed |= (AP_METHOD_BIT << M_GET);

    if (r->method_number != M_GET) {
        return HTTP_METHOD_NOT_ALLOWED;
    }

    if (et_metrics == NULL) {
        return HTTP_SERVICE_UNAVAILABLE;
    }

    et_metrics_sum(et_metrics, &sum);
    n = et_metrics_format(&sum, buf, sizeof(buf));

    ap_set_content_type(r, "text/plain; version=0.0.4");
    ap_set_content_length(r, n);
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");

    if (!r->header_only) {
        ap_rwrite(buf, (int) n, r);
    }

    return OK;
}


/* the process side */

static void
et_log(void *data, int level, const char *msg, size_t len)
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
et_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    et_proxy_hook_pre_request_pt  hook;

    (void) pconf;
    (void) plog;
    (void) ptemp;

    et_enabled = 0;

    /*
     * pre_request is not an optional hook: mod_proxy exports the function
     * that registers it.  Looked up here, once every LoadModule has run,
     * so that the module loads with or without mod_proxy, in any order.
     */
    hook = (et_proxy_hook_pre_request_pt) dlsym(RTLD_DEFAULT,
                                                "proxy_hook_pre_request");
    if (hook) {
        hook(et_proxy_pre_request, NULL, NULL, APR_HOOK_REALLY_FIRST);
    }

    return OK;
}


static int
et_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
    server_rec *s)
{
    uint8_t             *buf;
    size_t               size, len;
    server_rec          *vs;
    const char          *name, *key;
    apr_status_t         rv;
    et_retained_t       *ret;
    et_srv_conf_t       *sc, *vc;
    et_exporter_conf_t  *ec;

    (void) plog;
    (void) ptemp;

    sc = ap_get_module_config(s->module_config, &edgetrace_module);

    /* the counters: one table for the server's lifetime */
    size = et_metrics_size(ET_METRICS_SLOTS_DEFAULT);
    ret = ap_retained_data_get(ET_RETAINED_KEY);

    if (ret == NULL) {
        ret = ap_retained_data_create(ET_RETAINED_KEY, sizeof(et_retained_t));
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

    et_metrics = et_metrics_at(apr_shm_baseaddr_get(ret->shm));

    /* service.name, built once per virtual host */
    for (vs = s; vs; vs = vs->next) {
        vc = ap_get_module_config(vs->module_config, &edgetrace_module);
        name = vc->service_name ? vc->service_name
               : (sc->service_name ? sc->service_name : "httpd");
        len = strlen(name);

        buf = apr_palloc(pconf, ET_FIELD_RESP_SIZE(12, len));
        et_field_init(&vc->service, buf, (const uint8_t *) "service.name", 12,
                      (const uint8_t *) name, len);
    }

    ec = &et_exporter_conf;
    memset(ec, 0, sizeof(et_exporter_conf_t));

    if (sc->redis) {
        ec->redis = sc->url;

    } else if (et_redis_url_parse((const uint8_t *) ET_REDIS_DEFAULT_URL,
                                  sizeof(ET_REDIS_DEFAULT_URL) - 1,
                                  &ec->redis, &name)
               != ET_OK)
    {
        return HTTP_INTERNAL_SERVER_ERROR;
    }

    key = sc->stream_key ? sc->stream_key : ET_STREAM_DEFAULT_KEY;
    len = strlen(key);
    buf = apr_palloc(pconf, ET_STREAM_PREFIX_SIZE(len));

    if (et_stream_init(&et_stream, buf, (const uint8_t *) key, len,
                       sc->maxlen_set ? sc->maxlen : ET_STREAM_DEFAULT_MAXLEN,
                       sc->value_max)
        != ET_OK)
    {
        return HTTP_INTERNAL_SERVER_ERROR;
    }

    ec->stream = &et_stream;
    ec->queue_size = sc->queue_size;
    ec->flush_ms = (unsigned) apr_time_as_msec(sc->flush_interval);
    ec->connect_timeout_ms = (unsigned) apr_time_as_msec(sc->connect_timeout);
    ec->io_timeout_ms = (unsigned) apr_time_as_msec(sc->redis_timeout);
    ec->stop_timeout_ms = (unsigned) apr_time_as_msec(sc->flush_timeout);
    ec->log = et_log;
    ec->log_data = s;

    return OK;
}


static apr_status_t
et_child_exit(void *data)
{
    (void) data;

    if (et_exporter) {
        et_exporter_stop(et_exporter);
        et_exporter = NULL;
    }

    if (et_counters && et_metrics) {
        et_metrics_release(et_metrics, et_counters);
    }

    et_counters = NULL;

    return APR_SUCCESS;
}


static void
et_child_init(apr_pool_t *pchild, server_rec *s)
{
    int  threaded;

    (void) s;

    /* no Redis connection when tracing is on nowhere */
    if (!et_enabled || et_metrics == NULL) {
        return;
    }

    et_id_seed();

    threaded = 0;

    if (ap_mpm_query(AP_MPMQ_IS_THREADED, &threaded) != APR_SUCCESS) {
        threaded = AP_MPMQ_NOT_SUPPORTED;
    }

    et_threaded = (threaded != AP_MPMQ_NOT_SUPPORTED);
    et_exporter_conf.shared = et_threaded;

    et_counters = et_metrics_claim(et_metrics, (int32_t) getpid());

    if (et_counters == NULL) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                     "no free counter slot: this child does not trace");
        return;
    }

    et_exporter = et_exporter_start(&et_exporter_conf, et_counters);

    apr_pool_cleanup_register(pchild, NULL, et_child_exit,
                              apr_pool_cleanup_null);
}


static void
et_register_hooks(apr_pool_t *p)
{
    (void) p;

    ap_hook_pre_config(et_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(et_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(et_child_init, NULL, NULL, APR_HOOK_MIDDLE);

    /* before mod_setenvif and mod_headers read the environment */
    ap_hook_header_parser(et_header_parser, NULL, NULL,
                          APR_HOOK_REALLY_FIRST);
    ap_hook_handler(et_status_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_insert_filter(et_insert_filter, NULL, NULL, APR_HOOK_MIDDLE);
    et_try_filter_handle = ap_register_output_filter(ET_TRY_FILTER,
                                                     et_try_filter, NULL,
                                                     AP_FTYPE_CONTENT_SET);
    ap_hook_log_transaction(et_log_transaction, NULL, NULL,
                            APR_HOOK_MIDDLE);

    APR_OPTIONAL_HOOK(proxy, fixups, et_proxy_fixups, NULL, NULL,
                      APR_HOOK_LAST);
    APR_OPTIONAL_HOOK(proxy, request_status, et_proxy_request_status, NULL,
                      NULL, APR_HOOK_MIDDLE);
}


AP_DECLARE_MODULE(edgetrace) = {
    STANDARD20_MODULE_STUFF,
    et_create_dir_conf,
    et_merge_dir_conf,
    et_create_srv_conf,
    et_merge_srv_conf,
    et_cmds,
    et_register_hooks
#if defined(AP_MODULE_FLAG_ALWAYS_MERGE)
    , AP_MODULE_FLAG_NONE
#endif
};
