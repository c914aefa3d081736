/*
 * ngx_http_edgetrace_module: distributed tracing inside nginx.
 *
 * A server span per client request, a client span per upstream exchange
 * (and per subrequest that reaches an upstream), context continued from and
 * forwarded in the W3C headers, finished spans queued to a per-worker
 * exporter that writes them to a Redis stream off the request path.
 *
 * This file registers the module: its directives, configuration, shared
 * counters, phase handlers and the worker's exporter.
 */


#include "ngx_http_edgetrace_module.h"


static ngx_int_t ngx_http_edgetrace_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_edgetrace_postconfiguration(ngx_conf_t *cf);
static void *ngx_http_edgetrace_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_edgetrace_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_edgetrace_create_srv_conf(ngx_conf_t *cf);
static char *ngx_http_edgetrace_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child);
static void *ngx_http_edgetrace_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_edgetrace_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_edgetrace_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_int_t ngx_http_edgetrace_init_process(ngx_cycle_t *cycle);
static void ngx_http_edgetrace_exit_process(ngx_cycle_t *cycle);


/* the worker's exporter and its counters slot */
et_exporter_t  *ngx_http_edgetrace_exporter;
et_counters_t  *ngx_http_edgetrace_counters;
et_metrics_t   *ngx_http_edgetrace_metrics;


/*
 * Bounds are checked as each directive is read, so that an error names
 * the directive's own file and line (init_main_conf would only know the
 * end of the http block).
 */

static ngx_conf_post_handler_pt  ngx_http_edgetrace_service_name_p =
    ngx_http_edgetrace_check_service_name;

/* indexed by ET_KNOB_* */
static ngx_http_edgetrace_knob_t  ngx_http_edgetrace_knobs[] = {
    { ngx_http_edgetrace_check_size, ET_KNOB_QUEUE_SIZE },
    { ngx_http_edgetrace_check_size, ET_KNOB_VALUE_MAX },
    { ngx_http_edgetrace_check_msec, ET_KNOB_FLUSH_INTERVAL },
    { ngx_http_edgetrace_check_msec, ET_KNOB_CONNECT_TIMEOUT },
    { ngx_http_edgetrace_check_msec, ET_KNOB_REDIS_TIMEOUT },
    { ngx_http_edgetrace_check_msec, ET_KNOB_FLUSH_TIMEOUT }
};


static ngx_command_t  ngx_http_edgetrace_commands[] = {

    { ngx_string("edgetrace"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_edgetrace,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("edgetrace_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_edgetrace_redis,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("edgetrace_redis_ssl_trusted_certificate"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_edgetrace_redis_ssl,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_edgetrace_main_conf_t, ssl_trusted_certificate),
      NULL },

    { ngx_string("edgetrace_redis_ssl_certificate"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_edgetrace_redis_ssl,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_edgetrace_main_conf_t, ssl_certificate),
      NULL },

    { ngx_string("edgetrace_redis_ssl_certificate_key"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_edgetrace_redis_ssl,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_edgetrace_main_conf_t, ssl_certificate_key),
      NULL },

    { ngx_string("edgetrace_redis_ssl_name"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_edgetrace_redis_ssl,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_edgetrace_main_conf_t, ssl_name),
      NULL },

    { ngx_string("edgetrace_stream"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE123,
      ngx_http_edgetrace_stream,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("edgetrace_service_name"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_edgetrace_srv_conf_t, service_name),
      &ngx_http_edgetrace_service_name_p },

    { ngx_string("edgetrace_sample"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_edgetrace_sample,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("edgetrace_context"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_edgetrace_context,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("edgetrace_propagation"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_edgetrace_propagation,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("edgetrace_span_name"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_edgetrace_span_name,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_edgetrace_loc_conf_t, span_name),
      NULL },

    { ngx_string("edgetrace_attribute"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE2,
      ngx_http_edgetrace_attribute,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("edgetrace_keep"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_edgetrace_keep,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("edgetrace_sample_limit"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_edgetrace_sample_limit,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("edgetrace_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_edgetrace_status,
      0,
      0,
      NULL },

    { ngx_string("edgetrace_queue_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_edgetrace_main_conf_t, queue_size),
      &ngx_http_edgetrace_knobs[ET_KNOB_QUEUE_SIZE] },

    { ngx_string("edgetrace_flush_interval"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_edgetrace_main_conf_t, flush_interval),
      &ngx_http_edgetrace_knobs[ET_KNOB_FLUSH_INTERVAL] },

    { ngx_string("edgetrace_redis_connect_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_edgetrace_main_conf_t, connect_timeout),
      &ngx_http_edgetrace_knobs[ET_KNOB_CONNECT_TIMEOUT] },

    { ngx_string("edgetrace_redis_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_edgetrace_main_conf_t, redis_timeout),
      &ngx_http_edgetrace_knobs[ET_KNOB_REDIS_TIMEOUT] },

    { ngx_string("edgetrace_flush_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_edgetrace_main_conf_t, flush_timeout),
      &ngx_http_edgetrace_knobs[ET_KNOB_FLUSH_TIMEOUT] },

    { ngx_string("edgetrace_value_max_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_edgetrace_main_conf_t, value_max),
      &ngx_http_edgetrace_knobs[ET_KNOB_VALUE_MAX] },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_edgetrace_module_ctx = {
    ngx_http_edgetrace_preconfiguration,   /* preconfiguration */
    ngx_http_edgetrace_postconfiguration,  /* postconfiguration */

    ngx_http_edgetrace_create_main_conf,   /* create main configuration */
    ngx_http_edgetrace_init_main_conf,     /* init main configuration */

    ngx_http_edgetrace_create_srv_conf,    /* create server configuration */
    ngx_http_edgetrace_merge_srv_conf,     /* merge server configuration */

    ngx_http_edgetrace_create_loc_conf,    /* create location configuration */
    ngx_http_edgetrace_merge_loc_conf      /* merge location configuration */
};


ngx_module_t  ngx_http_edgetrace_module = {
    NGX_MODULE_V1,
    &ngx_http_edgetrace_module_ctx,        /* module context */
    ngx_http_edgetrace_commands,           /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_edgetrace_init_process,       /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_edgetrace_exit_process,       /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_str_t  ngx_http_edgetrace_zone_name = ngx_string("edgetrace");


static ngx_int_t
ngx_http_edgetrace_preconfiguration(ngx_conf_t *cf)
{
    return ngx_http_edgetrace_add_variables(cf);
}


static ngx_int_t
ngx_http_edgetrace_push_handler(ngx_http_core_main_conf_t *cmcf,
    ngx_http_phases phase, ngx_http_handler_pt handler)
{
    ngx_http_handler_pt  *h;

    h = ngx_array_push(&cmcf->phases[phase].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = handler;

    return NGX_OK;
}


static ngx_int_t
ngx_http_edgetrace_postconfiguration(ngx_conf_t *cf)
{
    ngx_uint_t                       n;
    ngx_http_handler_pt             *h;
    ngx_http_core_main_conf_t       *cmcf;
    ngx_http_edgetrace_main_conf_t  *emcf;

    emcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_edgetrace_module);

    if (emcf->enabled || emcf->status) {
        emcf->shm_zone = ngx_shared_memory_add(cf,
                                      &ngx_http_edgetrace_zone_name,
                                      et_metrics_size(ET_METRICS_SLOTS_DEFAULT)
                                      + 8 * ngx_pagesize,
                                      &ngx_http_edgetrace_module);
        if (emcf->shm_zone == NULL) {
            return NGX_ERROR;
        }

        emcf->shm_zone->init = ngx_http_edgetrace_init_zone;
    }

    if (!emcf->enabled) {
        return NGX_OK;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    if (ngx_http_edgetrace_push_handler(cmcf, NGX_HTTP_SERVER_REWRITE_PHASE,
                              ngx_http_edgetrace_server_rewrite_handler)
        != NGX_OK
        || ngx_http_edgetrace_push_handler(cmcf, NGX_HTTP_REWRITE_PHASE,
                                     ngx_http_edgetrace_rewrite_handler)
           != NGX_OK
        || ngx_http_edgetrace_push_handler(cmcf, NGX_HTTP_PRECONTENT_PHASE,
                                     ngx_http_edgetrace_precontent_handler)
           != NGX_OK
        || ngx_http_edgetrace_push_handler(cmcf, NGX_HTTP_LOG_PHASE,
                                     ngx_http_edgetrace_log_handler)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    /*
     * The log phase's handlers run in the order they were added, and the
     * access log's was added before: the module's goes first, so that
     * $edgetrace_sampling in an access log knows whether edgetrace_keep
     * kept the request (docs/nginx.md).
     */
    h = cmcf->phases[NGX_HTTP_LOG_PHASE].handlers.elts;
    n = cmcf->phases[NGX_HTTP_LOG_PHASE].handlers.nelts;
    ngx_memmove(&h[1], &h[0], (n - 1) * sizeof(ngx_http_handler_pt));
    h[0] = ngx_http_edgetrace_log_handler;

    return NGX_OK;
}


static void *
ngx_http_edgetrace_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_edgetrace_main_conf_t  *emcf;

    emcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_edgetrace_main_conf_t));
    if (emcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     emcf->redis = { 0, NULL };
     *     emcf->ssl_* = { { 0, NULL }, { 0, NULL }, 0 };
     *     emcf->stream_key = { 0, NULL };
     *     emcf->enabled = 0;
     *     emcf->status = 0;
     */

    /* the defaults, and Redis before any edgetrace_redis replaces it */
    if (et_exporter_conf_init(&emcf->exporter) != ET_OK) {
        return NULL;
    }

    et_stream_opts_init(&emcf->stream_opts);
    emcf->flush_interval = NGX_CONF_UNSET_MSEC;
    emcf->connect_timeout = NGX_CONF_UNSET_MSEC;
    emcf->redis_timeout = NGX_CONF_UNSET_MSEC;
    emcf->flush_timeout = NGX_CONF_UNSET_MSEC;
    emcf->queue_size = NGX_CONF_UNSET_SIZE;
    emcf->value_max = NGX_CONF_UNSET_SIZE;
    emcf->limit_rate = NGX_CONF_UNSET_UINT;

    return emcf;
}


static char *
ngx_http_edgetrace_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_edgetrace_main_conf_t *emcf = conf;

    u_char              *buf;
    et_exporter_conf_t  *ec;

    static ngx_str_t  default_key = ngx_string(ET_STREAM_DEFAULT_KEY);

    ec = &emcf->exporter;

    ngx_conf_init_msec_value(emcf->flush_interval, ec->flush_ms);
    ngx_conf_init_msec_value(emcf->connect_timeout, ec->connect_timeout_ms);
    ngx_conf_init_msec_value(emcf->redis_timeout, ec->io_timeout_ms);
    ngx_conf_init_msec_value(emcf->flush_timeout, ec->stop_timeout_ms);
    ngx_conf_init_size_value(emcf->queue_size, ec->queue_size);
    ngx_conf_init_size_value(emcf->value_max, ET_VALUE_MAX_DEFAULT);
    ngx_conf_init_uint_value(emcf->limit_rate, 0);

    et_limit_conf_init(&emcf->limit, (uint32_t) emcf->limit_rate);

    if (emcf->stream_key.data == NULL) {
        emcf->stream_key = default_key;
    }

    buf = ngx_pnalloc(cf->pool, ET_STREAM_BUF_SIZE(emcf->stream_key.len,
                                                   emcf->stream_opts.shards));
    if (buf == NULL) {
        return NGX_CONF_ERROR;
    }

    if (et_stream_init(&emcf->stream, buf, emcf->stream_key.data,
                       emcf->stream_key.len, emcf->stream_opts.maxlen,
                       emcf->stream_opts.shards, emcf->value_max)
        != ET_OK)
    {
        return NGX_CONF_ERROR;
    }

    ec->stream = &emcf->stream;
    ec->queue_size = emcf->queue_size;
    ec->flush_ms = emcf->flush_interval;
    ec->connect_timeout_ms = emcf->connect_timeout;
    ec->io_timeout_ms = emcf->redis_timeout;
    ec->stop_timeout_ms = emcf->flush_timeout;
    ec->log = ngx_http_edgetrace_log;

    if (ngx_http_edgetrace_tls(cf, emcf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_http_edgetrace_init_headers(emcf);

    return NGX_CONF_OK;
}


static void *
ngx_http_edgetrace_create_srv_conf(ngx_conf_t *cf)
{
    ngx_http_edgetrace_srv_conf_t  *escf;

    escf = ngx_pcalloc(cf->pool, sizeof(ngx_http_edgetrace_srv_conf_t));
    if (escf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     escf->service_name = { 0, NULL };
     *     escf->service = { 0, NULL };
     *     escf->maybe = 0;
     */

    return escf;
}


static char *
ngx_http_edgetrace_merge_srv_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_edgetrace_srv_conf_t *prev = parent;
    ngx_http_edgetrace_srv_conf_t *conf = child;

    u_char  *buf;

    ngx_conf_merge_str_value(conf->service_name, prev->service_name, "nginx");

    buf = ngx_pnalloc(cf->pool, ET_SERVICE_FIELD_SIZE(conf->service_name.len));
    if (buf == NULL) {
        return NGX_CONF_ERROR;
    }

    et_service_field_init(&conf->service, buf, conf->service_name.data,
                          conf->service_name.len);

    return NGX_CONF_OK;
}


static void *
ngx_http_edgetrace_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_edgetrace_loc_conf_t  *elcf;

    elcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_edgetrace_loc_conf_t));
    if (elcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     elcf->enable_value = NULL;
     *     elcf->context_value = NULL;
     *     elcf->formats = { 0 };
     *     elcf->sampler = { 0 };
     */

    elcf->enable = NGX_CONF_UNSET_UINT;
    elcf->context = NGX_CONF_UNSET_UINT;
    elcf->ratio = -1;
    elcf->nformats = NGX_CONF_UNSET_UINT;
    elcf->span_name = NGX_CONF_UNSET_PTR;
    elcf->attributes = NGX_CONF_UNSET_PTR;
    elcf->keep = NGX_CONF_UNSET_PTR;

    return elcf;
}


static char *
ngx_http_edgetrace_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_edgetrace_loc_conf_t *prev = parent;
    ngx_http_edgetrace_loc_conf_t *conf = child;

    ngx_uint_t                      i;
    ngx_http_edgetrace_srv_conf_t  *escf;

    if (conf->enable == NGX_CONF_UNSET_UINT) {
        conf->enable = (prev->enable == NGX_CONF_UNSET_UINT)
                       ? NGX_HTTP_EDGETRACE_OFF : prev->enable;
        conf->enable_value = prev->enable_value;
    }

    if (conf->context == NGX_CONF_UNSET_UINT) {
        conf->context = (prev->context == NGX_CONF_UNSET_UINT)
                        ? ET_CONTEXT_DEFAULT : prev->context;
        conf->context_value = prev->context_value;
    }

    if (conf->ratio < 0) {
        conf->ratio = (prev->ratio < 0) ? 1.0 : prev->ratio;
    }

    if (et_sampler_init(&conf->sampler, conf->ratio) != ET_OK) {
        return NGX_CONF_ERROR;
    }

    if (conf->nformats == NGX_CONF_UNSET_UINT) {
        if (prev->nformats == NGX_CONF_UNSET_UINT) {
            conf->formats[0] = ET_PROP_FORMAT_DEFAULT;
            conf->nformats = 1;

        } else {
            ngx_memcpy(conf->formats, prev->formats, sizeof(conf->formats));
            conf->nformats = prev->nformats;
        }
    }

    conf->formats_mask = 0;

    for (i = 0; i < conf->nformats; i++) {
        conf->formats_mask |= conf->formats[i];
    }

    ngx_conf_merge_ptr_value(conf->span_name, prev->span_name, NULL);
    ngx_conf_merge_ptr_value(conf->attributes, prev->attributes, NULL);
    ngx_conf_merge_ptr_value(conf->keep, prev->keep, NULL);

    /* lets a server where tracing is off everywhere skip the module */
    if (conf->enable != NGX_HTTP_EDGETRACE_OFF) {
        escf = ngx_http_conf_get_module_srv_conf(cf,
                                                 ngx_http_edgetrace_module);
        escf->maybe = 1;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_edgetrace_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    void             *p;
    size_t            size;
    et_metrics_t     *m;
    ngx_slab_pool_t  *shpool;

    if (data) {
        /* a reload: the counters of running and exited workers go on */
        shm_zone->data = data;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        shm_zone->data = shpool->data;
        return NGX_OK;
    }

    size = et_metrics_size(ET_METRICS_SLOTS_DEFAULT);

    p = ngx_slab_alloc(shpool, size);
    if (p == NULL) {
        return NGX_ERROR;
    }

    m = et_metrics_init(p, ET_METRICS_SLOTS_DEFAULT);

    shpool->data = m;
    shm_zone->data = m;

    return NGX_OK;
}


static ngx_int_t
ngx_http_edgetrace_init_process(ngx_cycle_t *cycle)
{
    ngx_http_edgetrace_main_conf_t  *emcf;

    /* the cache manager and loader run init_process too */
    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    emcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_edgetrace_module);

    if (emcf == NULL || emcf->shm_zone == NULL) {
        return NGX_OK;
    }

    ngx_http_edgetrace_metrics = emcf->shm_zone->data;

    if (!emcf->enabled) {
        return NGX_OK;
    }

    et_id_seed();

    ngx_http_edgetrace_counters = et_metrics_claim(ngx_http_edgetrace_metrics,
                                                   ngx_pid);

    if (ngx_http_edgetrace_counters == NULL) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "edgetrace: no free counters slot, "
                      "tracing is off in this worker");
        return NGX_OK;
    }

    emcf->exporter.log_data = cycle->log;

    /* without it, the exporter's lines are written from its thread */
    (void) ngx_http_edgetrace_log_start(cycle);

    ngx_http_edgetrace_exporter = et_exporter_start(&emcf->exporter,
                                                ngx_http_edgetrace_counters);

    if (ngx_http_edgetrace_exporter == NULL) {
        et_metrics_release(ngx_http_edgetrace_metrics,
                           ngx_http_edgetrace_counters);
        ngx_http_edgetrace_counters = NULL;
    }

    return NGX_OK;
}


static void
ngx_http_edgetrace_exit_process(ngx_cycle_t *cycle)
{
    if (ngx_http_edgetrace_exporter) {
        et_exporter_stop(ngx_http_edgetrace_exporter);
        ngx_http_edgetrace_exporter = NULL;
    }

    ngx_http_edgetrace_log_stop(cycle);

    if (ngx_http_edgetrace_counters) {
        et_metrics_release(ngx_http_edgetrace_metrics,
                           ngx_http_edgetrace_counters);
        ngx_http_edgetrace_counters = NULL;
    }
}
