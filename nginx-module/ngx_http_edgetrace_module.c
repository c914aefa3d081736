/*
 * ngx_http_edgetrace_module: distributed tracing inside nginx.
 *
 * A server span per client request, a client span per upstream exchange
 * (and per subrequest that reaches an upstream), context continued from and
 * forwarded in the W3C headers, finished spans queued to a per-worker
 * exporter that writes them to a Redis stream off the request path.
 */


#include "ngx_http_edgetrace_module.h"


static ngx_int_t ngx_http_edgetrace_server_rewrite_handler(
    ngx_http_request_t *r);
static ngx_int_t ngx_http_edgetrace_rewrite_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_edgetrace_precontent_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_edgetrace_log_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_edgetrace_status_handler(ngx_http_request_t *r);
static void ngx_http_edgetrace_decide(ngx_http_request_t *r,
    ngx_http_edgetrace_ctx_t *ctx);
static ngx_int_t ngx_http_edgetrace_post_subrequest(ngx_http_request_t *r,
    void *data, ngx_int_t rc);
static void ngx_http_edgetrace_cleanup(void *data);
static void ngx_http_edgetrace_export_server(ngx_http_request_t *r,
    ngx_http_edgetrace_ctx_t *ctx, uint64_t now);
static void ngx_http_edgetrace_export_client(ngx_http_edgetrace_ctx_t *ctx,
    ngx_http_edgetrace_client_t *cl);
static ngx_int_t ngx_http_edgetrace_start_client(ngx_http_request_t *r,
    ngx_http_edgetrace_ctx_t *ctx);

static char *ngx_http_edgetrace(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_edgetrace_redis(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_edgetrace_stream(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_edgetrace_sample(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_edgetrace_context(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_edgetrace_propagation(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_edgetrace_attribute(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_edgetrace_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_edgetrace_span_name(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_edgetrace_check_service_name(ngx_conf_t *cf,
    void *post, void *data);
static char *ngx_http_edgetrace_check_flush_interval(ngx_conf_t *cf,
    void *post, void *data);
static char *ngx_http_edgetrace_check_queue_size(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_http_edgetrace_check_value_max(ngx_conf_t *cf, void *post,
    void *data);

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


/* a context with the pool cleanup that marks it, recycled by the worker */
typedef struct ngx_http_edgetrace_holder_s  ngx_http_edgetrace_holder_t;

struct ngx_http_edgetrace_holder_s {
    ngx_pool_cleanup_t              cleanup;
    ngx_http_edgetrace_ctx_t        ctx;
    ngx_http_edgetrace_holder_t    *next;          /* when free */
};


static ngx_http_edgetrace_holder_t  *ngx_http_edgetrace_free;


/* the worker's exporter and its counters slot */
static et_exporter_t  *ngx_http_edgetrace_exporter;
static et_counters_t  *ngx_http_edgetrace_counters;
static et_metrics_t   *ngx_http_edgetrace_metrics;


static ngx_conf_enum_t  ngx_http_edgetrace_contexts[] = {
    { ngx_string("extract"), ET_CONTEXT_EXTRACT },
    { ngx_string("inject"), ET_CONTEXT_INJECT },
    { ngx_string("propagate"), ET_CONTEXT_PROPAGATE },
    { ngx_string("ignore"), ET_CONTEXT_IGNORE },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_edgetrace_formats[] = {
    { ngx_string("w3c"), ET_PROP_W3C },
    { ngx_string("b3"), ET_PROP_B3 },
    { ngx_string("b3multi"), ET_PROP_B3MULTI },
    { ngx_null_string, 0 }
};


/*
 * Bounds are checked as each directive is read, so that an error names
 * the directive's own file and line (init_main_conf would only know the
 * end of the http block).
 */

static ngx_conf_post_handler_pt  ngx_http_edgetrace_service_name_p =
    ngx_http_edgetrace_check_service_name;
static ngx_conf_post_handler_pt  ngx_http_edgetrace_flush_interval_p =
    ngx_http_edgetrace_check_flush_interval;
static ngx_conf_post_handler_pt  ngx_http_edgetrace_queue_size_p =
    ngx_http_edgetrace_check_queue_size;
static ngx_conf_post_handler_pt  ngx_http_edgetrace_value_max_p =
    ngx_http_edgetrace_check_value_max;


static ngx_command_t  ngx_http_edgetrace_commands[] = {

    { ngx_string("edgetrace"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_edgetrace,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("edgetrace_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_edgetrace_redis,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("edgetrace_stream"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
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
      &ngx_http_edgetrace_queue_size_p },

    { ngx_string("edgetrace_flush_interval"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_edgetrace_main_conf_t, flush_interval),
      &ngx_http_edgetrace_flush_interval_p },

    { ngx_string("edgetrace_redis_connect_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_edgetrace_main_conf_t, connect_timeout),
      NULL },

    { ngx_string("edgetrace_redis_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_edgetrace_main_conf_t, redis_timeout),
      NULL },

    { ngx_string("edgetrace_flush_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_edgetrace_main_conf_t, flush_timeout),
      NULL },

    { ngx_string("edgetrace_value_max_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_edgetrace_main_conf_t, value_max),
      &ngx_http_edgetrace_value_max_p },

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


/*
 * The main request's context.  An internal redirect zeroes r->ctx, and so
 * does a response a filter finishes itself (ngx_http_filter_finalize_request:
 * a failed If-Match, say), so the context is also kept as a pool cleanup's
 * data and found there again, as realip finds its own.
 */

ngx_http_edgetrace_ctx_t *
ngx_http_edgetrace_get_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t        *cln;
    ngx_http_edgetrace_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_edgetrace_module);

    if (ctx != NULL || !(r->internal || r->filter_finalize)) {
        return ctx;
    }

    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_edgetrace_cleanup) {
            ctx = cln->data;

            if (ctx->request == r) {
                ngx_http_set_ctx(r, ctx, ngx_http_edgetrace_module);
                return ctx;
            }
        }
    }

    return NULL;
}


static void
ngx_http_edgetrace_cleanup(void *data)
{
    ngx_http_edgetrace_holder_t  *holder;

    /*
     * Back to the worker's free list.  ngx_destroy_pool() reads this
     * cleanup's "next" after the call, so the holder is only linked, never
     * freed: the list is as long as the most requests ever traced at once.
     */

    holder = (ngx_http_edgetrace_holder_t *)
                 ((u_char *) data - offsetof(ngx_http_edgetrace_holder_t, ctx));

    holder->next = ngx_http_edgetrace_free;
    ngx_http_edgetrace_free = holder;
}


/* the main request's context when the request is traced, else NULL */

ngx_http_edgetrace_ctx_t *
ngx_http_edgetrace_traced(ngx_http_request_t *r)
{
    ngx_http_edgetrace_ctx_t  *ctx;

    ctx = ngx_http_edgetrace_get_ctx(r->main);

    if (ctx == NULL) {
        return NULL;
    }

    if (!ctx->decided) {
        ngx_http_edgetrace_decide(r->main, ctx);
    }

    return ctx->traced ? ctx : NULL;
}


/*
 * The client span id and the traceparent the main request's upstream gets
 * (or would get), made when first needed: a request that reaches no
 * upstream and whose $edgetrace_traceparent nobody reads never pays for
 * them.
 */

static void
ngx_http_edgetrace_client_id(ngx_http_edgetrace_ctx_t *ctx)
{
    if (!ctx->has_client_id) {
        et_span_id_new(ctx->client_id);
        ctx->has_client_id = 1;
    }
}


u_char *
ngx_http_edgetrace_traceparent(ngx_http_edgetrace_ctx_t *ctx)
{
    ngx_http_edgetrace_client_id(ctx);

    if (!ctx->has_traceparent) {
        et_traceparent_write(ctx->traceparent, ctx->trace.trace_id,
                             ctx->client_id, ctx->trace.flags);
        ctx->has_traceparent = 1;
    }

    return ctx->traceparent;
}


ngx_http_edgetrace_client_t *
ngx_http_edgetrace_find_client(ngx_http_edgetrace_ctx_t *ctx,
    ngx_http_request_t *r)
{
    ngx_http_edgetrace_client_t  *cl;

    for (cl = ctx->clients; cl; cl = cl->next) {
        if (cl->request == r) {
            return cl;
        }
    }

    return NULL;
}


/*
 * The first handler a main request meets (and the first again after every
 * internal redirect): the start time, as early as the module can take it.
 */

static ngx_int_t
ngx_http_edgetrace_server_rewrite_handler(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t             *cln;
    ngx_http_edgetrace_ctx_t       *ctx;
    ngx_http_edgetrace_holder_t    *holder;
    ngx_http_edgetrace_srv_conf_t  *escf;

    if (r != r->main) {
        return NGX_DECLINED;
    }

    escf = ngx_http_get_module_srv_conf(r, ngx_http_edgetrace_module);

    if (!escf->maybe || ngx_http_edgetrace_get_ctx(r) != NULL) {
        return NGX_DECLINED;
    }

    /*
     * The context and the pool cleanup that marks it (what
     * ngx_pool_cleanup_add() would allocate) are taken from the worker's
     * recycled ones: a traced request takes no room in its own pool, which
     * would otherwise often need one more block for them.  The cleanup
     * gives the holder back when the pool is destroyed.
     */

    holder = ngx_http_edgetrace_free;

    if (holder != NULL) {
        ngx_http_edgetrace_free = holder->next;

    } else {
        holder = ngx_alloc(sizeof(ngx_http_edgetrace_holder_t),
                           r->connection->log);
        if (holder == NULL) {
            return NGX_DECLINED;
        }
    }

    ctx = &holder->ctx;
    ngx_memzero(ctx, sizeof(ngx_http_edgetrace_ctx_t));

    cln = &holder->cleanup;
    cln->handler = ngx_http_edgetrace_cleanup;
    cln->data = ctx;
    cln->next = r->pool->cleanup;
    r->pool->cleanup = cln;
    ctx->request = r;
    ctx->start_ns = et_clock_now_ns();

    ngx_http_set_ctx(r, ctx, ngx_http_edgetrace_module);

    return NGX_DECLINED;
}


/* the location is known: the request's tracing is decided once, here */

static ngx_int_t
ngx_http_edgetrace_rewrite_handler(ngx_http_request_t *r)
{
    ngx_http_edgetrace_ctx_t  *ctx;

    if (r != r->main) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_edgetrace_get_ctx(r);

    if (ctx != NULL && !ctx->decided) {
        ngx_http_edgetrace_decide(r, ctx);
    }

    return NGX_DECLINED;
}


static ngx_uint_t
ngx_http_edgetrace_true(ngx_str_t *v)
{
    return v->len != 0 && !(v->len == 1 && v->data[0] == '0');
}


static void
ngx_http_edgetrace_decide(ngx_http_request_t *r, ngx_http_edgetrace_ctx_t *ctx)
{
    ngx_int_t                       rc;
    ngx_str_t                       v;
    et_context_t                    parent;
    ngx_uint_t                      mode, i;
    ngx_conf_enum_t                *e;
    ngx_http_edgetrace_loc_conf_t  *elcf;

    ctx->decided = 1;

    elcf = ngx_http_get_module_loc_conf(r, ngx_http_edgetrace_module);

    switch (elcf->enable) {

    case NGX_HTTP_EDGETRACE_OFF:
        return;

    case NGX_HTTP_EDGETRACE_VAR:
        if (ngx_http_complex_value(r, elcf->enable_value, &v) != NGX_OK
            || !ngx_http_edgetrace_true(&v))
        {
            return;
        }

        break;

    default:
        break;
    }

    mode = elcf->context;

    if (mode == NGX_HTTP_EDGETRACE_CTX_VAR) {

        /* a value that names no mode: inject, the one that trusts nothing */
        mode = ET_CONTEXT_INJECT;

        if (ngx_http_complex_value(r, elcf->context_value, &v) == NGX_OK) {
            for (e = ngx_http_edgetrace_contexts, i = 0; e[i].name.len; i++) {
                if (e[i].name.len == v.len
                    && ngx_strncmp(e[i].name.data, v.data, v.len) == 0)
                {
                    mode = e[i].value;
                    break;
                }
            }
        }
    }

    ctx->traced = 1;
    ctx->mode = mode;
    ctx->writes = (mode == ET_CONTEXT_INJECT
                   || mode == ET_CONTEXT_PROPAGATE);

    rc = ET_DECLINED;

    if (mode == ET_CONTEXT_EXTRACT || mode == ET_CONTEXT_PROPAGATE) {
        rc = ngx_http_edgetrace_extract(r, ctx, &parent);
    }

    /* continued, or a new root (sampled by the client's B3 decision or ours) */
    et_trace_begin(&ctx->trace, rc, &parent, &elcf->sampler);

    if (ngx_http_edgetrace_counters) {
        et_counter_add(&ngx_http_edgetrace_counters->requests, 1, 0);

        if (ctx->trace.sampled) {
            et_counter_add(&ngx_http_edgetrace_counters->requests_sampled, 1,
                           0);
        }
    }
}


/*
 * The request's URI as grpc_pass sends it (its :path): the client's, or
 * one nginx made (a rewrite, a redirect) escaped and with its arguments.
 * Kept as an exchange starts, since a later redirect changes r->uri.
 */

static void
ngx_http_edgetrace_request_uri(ngx_http_request_t *r, ngx_str_t *uri)
{
    u_char     *p;
    uintptr_t   escape;

    if (r->valid_unparsed_uri) {
        *uri = r->unparsed_uri;
        return;
    }

    escape = 2 * ngx_escape_uri(NULL, r->uri.data, r->uri.len,
                                NGX_ESCAPE_URI);

    if (escape == 0 && r->args.len == 0) {
        *uri = r->uri;
        return;
    }

    p = ngx_pnalloc(r->pool, r->uri.len + escape + 1 + r->args.len);
    if (p == NULL) {
        *uri = r->uri;
        return;
    }

    uri->data = p;
    p = (u_char *) ngx_escape_uri(p, r->uri.data, r->uri.len, NGX_ESCAPE_URI);

    if (r->args.len) {
        *p++ = '?';
        p = ngx_copy(p, r->args.data, r->args.len);
    }

    uri->len = p - uri->data;
}


/*
 * The URI an upstream got, for url.full: grpc_pass leaves u->uri empty and
 * sends the request's own ("sent", kept as the exchange started); the
 * FastCGI, uwsgi and SCGI protocols carry no URI of their own.
 */

static ngx_str_t
ngx_http_edgetrace_upstream_uri(ngx_http_upstream_t *u, ngx_str_t *sent)
{
    if (u->uri.len == 0
        && u->schema.len >= sizeof("grpc") - 1
        && ngx_strncmp(u->schema.data, "grpc", sizeof("grpc") - 1) == 0)
    {
        return *sent;
    }

    return u->uri;
}


/*
 * The main request's upstream exchange starts.  After an internal redirect
 * (X-Accel-Redirect, error_page) a finished exchange is kept as its own
 * client span and the next one gets a new id: retries within one exchange
 * (proxy_next_upstream) are events of one span, separate exchanges are not.
 */

static ngx_int_t
ngx_http_edgetrace_start_client(ngx_http_request_t *r,
    ngx_http_edgetrace_ctx_t *ctx)
{
    ngx_uint_t                    n;
    ngx_http_edgetrace_client_t  *cl;

    if (ctx->client_start_ns) {
        n = r->upstream_states ? r->upstream_states->nelts : 0;

        if (n <= ctx->client_first) {
            /* nothing reached an upstream yet: the same exchange */
            return NGX_DECLINED;
        }

        cl = ngx_pcalloc(r->pool, sizeof(ngx_http_edgetrace_client_t));
        if (cl == NULL) {
            return NGX_DECLINED;
        }

        cl->request = r;
        ngx_memcpy(cl->span_id, ctx->client_id, ET_SPAN_ID_LEN);
        cl->start_ns = ctx->client_start_ns;
        cl->end_ns = et_clock_now_ns();
        cl->first = ctx->client_first;
        cl->last = n;

        if (r->upstream) {
            cl->schema = r->upstream->schema;
            cl->uri = ngx_http_edgetrace_upstream_uri(r->upstream,
                                                      &ctx->client_uri);
        }

        cl->next = ctx->clients;
        ctx->clients = cl;

        ctx->client_first = n;
        et_span_id_new(ctx->client_id);
        ctx->has_traceparent = 0;
    }

    ngx_http_edgetrace_client_id(ctx);
    ctx->client_start_ns = et_clock_now_ns();
    ngx_http_edgetrace_request_uri(r, &ctx->client_uri);

    if (ctx->writes) {
        (void) ngx_http_edgetrace_inject(r, ctx, ctx->client_id,
                                         ctx->traceparent, 0);
        ctx->has_traceparent = 1;
    }

    return NGX_DECLINED;
}


/*
 * Just before the content handler: a request that a content handler (an
 * upstream module among them) takes over gets its client span's start and,
 * when the module writes context, the headers the upstream will see.
 * Subrequests skip the access phase, but not this one.
 */

static ngx_int_t
ngx_http_edgetrace_precontent_handler(ngx_http_request_t *r)
{
    ngx_http_edgetrace_ctx_t     *ctx;
    ngx_http_edgetrace_client_t  *cl;

    if (r->content_handler == NULL
        || r->content_handler == ngx_http_edgetrace_status_handler)
    {
        return NGX_DECLINED;
    }

    ctx = ngx_http_edgetrace_traced(r);

    if (ctx == NULL) {
        return NGX_DECLINED;
    }

    if (r == r->main) {
        return ngx_http_edgetrace_start_client(r, ctx);
    }

    if (ngx_http_edgetrace_find_client(ctx, r) != NULL) {
        return NGX_DECLINED;
    }

    cl = ngx_palloc(r->pool, sizeof(ngx_http_edgetrace_client_t));
    if (cl == NULL) {
        return NGX_DECLINED;
    }

    ngx_memzero(cl, sizeof(ngx_http_edgetrace_client_t));
    cl->request = r;
    et_span_id_new(cl->span_id);
    cl->start_ns = et_clock_now_ns();
    ngx_http_edgetrace_request_uri(r, &cl->uri);

    /* the subrequest's end is when its creator hears of it */
    cl->next_ps = r->post_subrequest;
    cl->ps.handler = ngx_http_edgetrace_post_subrequest;
    cl->ps.data = cl;
    r->post_subrequest = &cl->ps;

    cl->next = ctx->clients;
    ctx->clients = cl;

    if (ctx->writes) {
        (void) ngx_http_edgetrace_inject(r, ctx, cl->span_id,
                                         cl->traceparent, 1);

    } else {
        et_traceparent_write(cl->traceparent, ctx->trace.trace_id,
                             cl->span_id, ctx->trace.flags);
    }

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_edgetrace_post_subrequest(ngx_http_request_t *r, void *data,
    ngx_int_t rc)
{
    ngx_http_edgetrace_client_t  *cl = data;

    cl->end_ns = et_clock_now_ns();

    if (cl->next_ps && cl->next_ps->handler) {
        return cl->next_ps->handler(r, cl->next_ps->data, rc);
    }

    return rc;
}


/*
 * The log phase of the main request: every subrequest is done by now, so
 * the client spans of subrequests (which run no log phase of their own) are
 * collected here too.
 */

static ngx_int_t
ngx_http_edgetrace_log_handler(ngx_http_request_t *r)
{
    uint64_t                      now;
    ngx_http_edgetrace_ctx_t     *ctx;
    ngx_http_edgetrace_client_t  *cl, current;

    if (r != r->main || ngx_http_edgetrace_exporter == NULL) {
        return NGX_OK;
    }

    ctx = ngx_http_edgetrace_traced(r);

    if (ctx == NULL || !ctx->trace.sampled) {
        return NGX_OK;
    }

    now = et_clock_now_ns();

    ngx_http_edgetrace_export_server(r, ctx, now);

    if (ctx->client_start_ns && r->upstream_states
        && r->upstream_states->nelts > ctx->client_first)
    {
        ngx_memzero(&current, sizeof(ngx_http_edgetrace_client_t));
        current.request = r;
        ngx_memcpy(current.span_id, ctx->client_id, ET_SPAN_ID_LEN);
        current.start_ns = ctx->client_start_ns;
        current.end_ns = now;
        current.first = ctx->client_first;
        current.uri = ctx->client_uri;

        ngx_http_edgetrace_export_client(ctx, &current);
    }

    for (cl = ctx->clients; cl; cl = cl->next) {
        if (cl->request->upstream_states
            && cl->request->upstream_states->nelts > cl->first)
        {
            if (cl->end_ns == 0) {
                cl->end_ns = now;
            }

            ngx_http_edgetrace_export_client(ctx, cl);
        }
    }

    return NGX_OK;
}


static ngx_uint_t
ngx_http_edgetrace_status_code(ngx_http_request_t *r)
{
    if (r->err_status) {
        return r->err_status;
    }

    return r->headers_out.status;
}


#define ngx_http_edgetrace_et_str(s)                                          \
    (et_str_t) { (s).len, (s).data }


static void
ngx_http_edgetrace_export_server(ngx_http_request_t *r,
    ngx_http_edgetrace_ctx_t *ctx, uint64_t now)
{
    size_t                           n;
    ngx_str_t                        v;
    ngx_uint_t                       i;
    et_span_t                        span;
    et_attr_t                        attrs[NGX_HTTP_EDGETRACE_ATTRS_MAX];
    ngx_connection_t                *c;
    et_http_server_t                 req;
    ngx_http_core_loc_conf_t        *clcf;
    ngx_http_edgetrace_attr_t       *ua;
    ngx_http_edgetrace_srv_conf_t   *escf;
    ngx_http_edgetrace_loc_conf_t   *elcf;
    ngx_http_edgetrace_main_conf_t  *emcf;
    u_char                           name[256];
    u_char                           text[ET_HTTP_STATUS_TEXT];

    static et_str_t  versions[] = {
        et_string("0.9"), et_string("1.0"), et_string("1.1"), et_string("2")
    };

    c = r->connection;
    elcf = ngx_http_get_module_loc_conf(r, ngx_http_edgetrace_module);
    escf = ngx_http_get_module_srv_conf(r, ngx_http_edgetrace_module);
    emcf = ngx_http_get_module_main_conf(r, ngx_http_edgetrace_module);

    ngx_memzero(&span, sizeof(et_span_t));
    ngx_memcpy(span.trace_id, ctx->trace.trace_id, ET_TRACE_ID_LEN);
    ngx_memcpy(span.span_id, ctx->trace.span_id, ET_SPAN_ID_LEN);

    if (ctx->trace.has_parent) {
        ngx_memcpy(span.parent_id, ctx->trace.parent_id, ET_SPAN_ID_LEN);
        span.has_parent = 1;
    }

    span.kind = ET_SPAN_SERVER;
    span.start_ns = ctx->start_ns;
    span.end_ns = now > ctx->start_ns ? now : ctx->start_ns;
    span.service = &escf->service;
    span.tracestate = ngx_http_edgetrace_et_str(ctx->trace.tracestate);

    /* a name whose variables are all empty falls back to the default */
    if (elcf->span_name
        && ngx_http_complex_value(r, elcf->span_name, &v) == NGX_OK
        && v.len)
    {
        span.name.data = v.data;
        span.name.len = ngx_min(v.len, emcf->value_max);

    } else {
        clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);
        span.name.data = name;
        span.name.len = et_http_span_name(name, sizeof(name),
                                  ngx_http_edgetrace_et_str(r->method_name),
                                  ngx_http_edgetrace_et_str(clcf->name));
    }

    req.method = ngx_http_edgetrace_et_str(r->method_name);

    /* the target as the client sent it, before any rewrite */
    req.target = r->unparsed_uri.data
                 ? ngx_http_edgetrace_et_str(r->unparsed_uri)
                 : ngx_http_edgetrace_et_str(r->uri);

#if (NGX_HTTP_SSL)
    if (c->ssl) {
        req.scheme = (et_str_t) et_string("https");
    } else
#endif
    {
        req.scheme = (et_str_t) et_string("http");
    }

    req.host = ngx_http_edgetrace_et_str(r->headers_in.server);

    req.port = -1;

    if (ngx_connection_local_sockaddr(c, NULL, 0) == NGX_OK) {
        req.port = ngx_inet_get_port(c->local_sockaddr);
    }

    req.client_address = ngx_http_edgetrace_et_str(c->addr_text);

    req.user_agent.len = 0;

    if (r->headers_in.user_agent) {
        req.user_agent =
                 ngx_http_edgetrace_et_str(r->headers_in.user_agent->value);
    }

    switch (r->http_version) {
    case NGX_HTTP_VERSION_9:
        req.protocol_version = versions[0];
        break;
    case NGX_HTTP_VERSION_10:
        req.protocol_version = versions[1];
        break;
    case NGX_HTTP_VERSION_20:
        req.protocol_version = versions[3];
        break;
    default:
        req.protocol_version = versions[2];
        break;
    }

    req.status = ngx_http_edgetrace_status_code(r);

    n = et_http_server_attrs(&req, &span, attrs, text);

    if (elcf->attributes) {
        ua = elcf->attributes->elts;

        for (i = 0; i < elcf->attributes->nelts; i++) {
            if (ngx_http_complex_value(r, &ua[i].value, &v) != NGX_OK) {
                continue;
            }

            attrs[n].key = &ua[i].key;
            attrs[n].type = ET_ATTR_STRING;
            attrs[n].str = ngx_http_edgetrace_et_str(v);
            n++;
        }
    }

    span.attrs = attrs;
    span.nattrs = n;

    (void) et_exporter_submit(ngx_http_edgetrace_exporter, &span);
}


static int64_t
ngx_http_edgetrace_msec(ngx_msec_t ms)
{
    return ms == (ngx_msec_t) -1 ? -1 : (int64_t) ms;
}


static void
ngx_http_edgetrace_export_client(ngx_http_edgetrace_ctx_t *ctx,
    ngx_http_edgetrace_client_t *cl)
{
    u_char                         *p;
    size_t                          ntries;
    ngx_str_t                      *peer, schema, uri;
    ngx_uint_t                      i, last, status;
    ngx_http_request_t             *r;
    et_span_t                       span;
    et_try_t                        events[NGX_HTTP_EDGETRACE_TRIES_MAX];
    et_attr_t                       attrs[ET_HTTP_CLIENT_ATTRS];
    et_http_client_t                req;
    ngx_http_upstream_t            *u;
    ngx_http_upstream_state_t      *st;
    ngx_http_edgetrace_srv_conf_t  *escf;
    u_char                          url[1024];
    u_char                          text[ET_HTTP_STATUS_TEXT];

    r = cl->request;
    escf = ngx_http_get_module_srv_conf(r, ngx_http_edgetrace_module);

    ngx_memzero(&span, sizeof(et_span_t));
    ngx_memcpy(span.trace_id, ctx->trace.trace_id, ET_TRACE_ID_LEN);
    ngx_memcpy(span.span_id, cl->span_id, ET_SPAN_ID_LEN);
    ngx_memcpy(span.parent_id, ctx->trace.span_id, ET_SPAN_ID_LEN);
    span.has_parent = 1;
    span.kind = ET_SPAN_CLIENT;
    span.start_ns = cl->start_ns;
    span.end_ns = cl->end_ns > cl->start_ns ? cl->end_ns : cl->start_ns;
    span.name = ngx_http_edgetrace_et_str(r->method_name);
    span.tracestate = ngx_http_edgetrace_et_str(ctx->trace.tracestate);
    span.service = &escf->service;

    ngx_memzero(&req, sizeof(et_http_client_t));
    req.method = span.name;

    /* one event per try; a state without a peer marks a redirect */
    st = r->upstream_states->elts;
    last = cl->last ? cl->last : r->upstream_states->nelts;
    peer = NULL;
    ntries = 0;

    for (i = cl->first; i < last; i++) {
        if (st[i].peer == NULL) {
            continue;
        }

        /*
         * ngx_http_upstream_next() writes the status nginx will answer
         * with (502, 504) into the state of a try that got no response:
         * the status is the upstream's only when its response header was
         * read, which is when header_time is set.
         */

        status = (st[i].header_time != (ngx_msec_t) -1) ? st[i].status : 0;

        req.tries++;
        req.status = status;
        peer = st[i].peer;

        if (ntries == NGX_HTTP_EDGETRACE_TRIES_MAX) {
            continue;
        }

        events[ntries].peer = ngx_http_edgetrace_et_str(*peer);
        events[ntries].status = status;
        events[ntries].connect_ms = ngx_http_edgetrace_msec(st[i].connect_time);
        events[ntries].header_ms = ngx_http_edgetrace_msec(st[i].header_time);
        events[ntries].response_ms =
                                ngx_http_edgetrace_msec(st[i].response_time);
        ntries++;
    }

    span.tries = events;
    span.ntries = ntries;

    schema = cl->schema;
    uri = cl->uri;
    u = r->upstream;

    if (schema.data == NULL && u) {
        schema = u->schema;
        uri = ngx_http_edgetrace_upstream_uri(u, &cl->uri);
    }

    if (peer) {
        req.peer = ngx_http_edgetrace_et_str(*peer);

        if (schema.len) {
            p = et_copy(url, schema.data, ngx_min(schema.len, 16));
            p = et_copy(p, peer->data, ngx_min(peer->len, 256));
            p = et_copy(p, uri.data,
                        ngx_min(uri.len, (size_t) (url + sizeof(url) - p)));
            req.url.data = url;
            req.url.len = p - url;
        }
    }

    span.nattrs = et_http_client_attrs(&req, &span, attrs, text);
    span.attrs = attrs;

    (void) et_exporter_submit(ngx_http_edgetrace_exporter, &span);
}


static ngx_int_t
ngx_http_edgetrace_status_handler(ngx_http_request_t *r)
{
    size_t             len;
    ngx_int_t          rc;
    ngx_buf_t         *b;
    ngx_chain_t        out;
    et_metrics_sum_t   sum;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    b = ngx_create_temp_buf(r->pool, ET_METRICS_TEXT_MAX);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memzero(&sum, sizeof(et_metrics_sum_t));

    if (ngx_http_edgetrace_metrics) {
        et_metrics_sum(ngx_http_edgetrace_metrics, &sum);
    }

    len = et_metrics_format(&sum, b->pos, ET_METRICS_TEXT_MAX);
    b->last = b->pos + len;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    ngx_str_set(&r->headers_out.content_type,
                "text/plain; version=0.0.4; charset=utf-8");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/* configuration */

static char *
ngx_http_edgetrace(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_edgetrace_loc_conf_t *elcf = conf;

    ngx_str_t                         *value;
    ngx_http_edgetrace_main_conf_t    *emcf;
    ngx_http_compile_complex_value_t   ccv;

    if (elcf->enable != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    /* any case, as nginx's own on/off flags */

    if (ngx_strcasecmp(value[1].data, (u_char *) "off") == 0) {
        elcf->enable = NGX_HTTP_EDGETRACE_OFF;
        return NGX_CONF_OK;
    }

    if (ngx_strcasecmp(value[1].data, (u_char *) "on") == 0) {
        elcf->enable = NGX_HTTP_EDGETRACE_ON;

    } else if (ngx_http_script_variables_count(&value[1])) {
        elcf->enable_value = ngx_palloc(cf->pool,
                                        sizeof(ngx_http_complex_value_t));
        if (elcf->enable_value == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));
        ccv.cf = cf;
        ccv.value = &value[1];
        ccv.complex_value = elcf->enable_value;

        if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        elcf->enable = NGX_HTTP_EDGETRACE_VAR;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\", it must be \"on\", \"off\" "
                           "or a variable", &value[1]);
        return NGX_CONF_ERROR;
    }

    emcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_edgetrace_module);
    emcf->enabled = 1;

    return NGX_CONF_OK;
}


static char *
ngx_http_edgetrace_redis(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_edgetrace_main_conf_t *emcf = conf;

    ngx_str_t   *value;
    const char  *err;

    if (emcf->redis.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (et_redis_url_parse(value[1].data, value[1].len,
                           &emcf->exporter.redis, &err)
        != ET_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid Redis URL \"%V\": %s",
                           &value[1], err);
        return NGX_CONF_ERROR;
    }

    emcf->redis = value[1];

    return NGX_CONF_OK;
}


static char *
ngx_http_edgetrace_stream(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_edgetrace_main_conf_t *emcf = conf;

    ngx_str_t   *value;
    const char  *err;

    if (emcf->stream_key.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0 || value[1].len > ET_STREAM_KEY_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid stream key \"%V\": it must be 1 to %d "
                           "bytes", &value[1], ET_STREAM_KEY_MAX);
        return NGX_CONF_ERROR;
    }

    emcf->stream_key = value[1];

    if (cf->args->nelts == 3
        && et_stream_parse_option(value[2].data, value[2].len, &emcf->maxlen,
                                  &err)
           != ET_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid parameter \"%V\": %s",
                           &value[2], err);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_edgetrace_sample(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_edgetrace_loc_conf_t *elcf = conf;

    ngx_str_t  *value;

    if (elcf->ratio >= 0) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (et_sampler_parse_ratio(value[1].data, value[1].len, &elcf->ratio)
        != ET_OK)
    {
        elcf->ratio = -1;
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid ratio \"%V\", it must be a number from "
                           "0 to 1", &value[1]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_edgetrace_context(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_edgetrace_loc_conf_t *elcf = conf;

    ngx_str_t                         *value;
    ngx_uint_t                         i;
    ngx_http_compile_complex_value_t   ccv;

    if (elcf->context != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (i = 0; ngx_http_edgetrace_contexts[i].name.len; i++) {
        if (ngx_strcmp(ngx_http_edgetrace_contexts[i].name.data,
                       value[1].data) == 0)
        {
            elcf->context = ngx_http_edgetrace_contexts[i].value;
            return NGX_CONF_OK;
        }
    }

    if (ngx_http_script_variables_count(&value[1]) == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\", it must be \"extract\", "
                           "\"inject\", \"propagate\", \"ignore\" or a "
                           "variable", &value[1]);
        return NGX_CONF_ERROR;
    }

    elcf->context_value = ngx_palloc(cf->pool,
                                     sizeof(ngx_http_complex_value_t));
    if (elcf->context_value == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));
    ccv.cf = cf;
    ccv.value = &value[1];
    ccv.complex_value = elcf->context_value;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    elcf->context = NGX_HTTP_EDGETRACE_CTX_VAR;

    return NGX_CONF_OK;
}


static char *
ngx_http_edgetrace_propagation(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_edgetrace_loc_conf_t *elcf = conf;

    ngx_str_t   *value;
    ngx_uint_t   i, j, k;

    if (elcf->nformats != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;
    elcf->nformats = 0;

    for (i = 1; i < cf->args->nelts; i++) {

        for (j = 0; ngx_http_edgetrace_formats[j].name.len; j++) {
            if (ngx_strcmp(ngx_http_edgetrace_formats[j].name.data,
                           value[i].data) == 0)
            {
                break;
            }
        }

        if (ngx_http_edgetrace_formats[j].name.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid format \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        for (k = 0; k < elcf->nformats; k++) {
            if (elcf->formats[k] == ngx_http_edgetrace_formats[j].value) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "format \"%V\" is duplicate", &value[i]);
                return NGX_CONF_ERROR;
            }
        }

        if (elcf->nformats == ET_PROP_FORMATS_MAX) {
            return "has too many formats";
        }

        elcf->formats[elcf->nformats++] = ngx_http_edgetrace_formats[j].value;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_edgetrace_attribute(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_edgetrace_loc_conf_t *elcf = conf;

    u_char                            *buf;
    ngx_str_t                         *value;
    const char                        *err;
    ngx_http_edgetrace_attr_t         *a;
    ngx_http_compile_complex_value_t   ccv;

    value = cf->args->elts;

    if (et_attr_name_check(value[1].data, value[1].len, &err) != ET_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid attribute name \"%V\": %s", &value[1], err);
        return NGX_CONF_ERROR;
    }

    if (elcf->attributes == NGX_CONF_UNSET_PTR) {
        elcf->attributes = ngx_array_create(cf->pool, 4,
                                          sizeof(ngx_http_edgetrace_attr_t));
        if (elcf->attributes == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    if (elcf->attributes->nelts == NGX_HTTP_EDGETRACE_USER_ATTRS_MAX) {
        return "is used too many times";
    }

    a = ngx_array_push(elcf->attributes);
    if (a == NULL) {
        return NGX_CONF_ERROR;
    }

    buf = ngx_pnalloc(cf->pool, ET_KEY_RESP_SIZE(value[1].len));
    if (buf == NULL) {
        return NGX_CONF_ERROR;
    }

    et_key_init(&a->key, buf, value[1].data, value[1].len);

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));
    ccv.cf = cf;
    ccv.value = &value[2];
    ccv.complex_value = &a->value;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_edgetrace_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t        *clcf;
    ngx_http_edgetrace_main_conf_t  *emcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_edgetrace_status_handler;

    emcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_edgetrace_module);
    emcf->status = 1;

    return NGX_CONF_OK;
}


static char *
ngx_http_edgetrace_span_name(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t  *value;

    value = cf->args->elts;

    if (value[1].len == 0) {
        return "must not be empty";
    }

    return ngx_http_set_complex_value_slot(cf, cmd, conf);
}


static char *
ngx_http_edgetrace_check_service_name(ngx_conf_t *cf, void *post, void *data)
{
    ngx_str_t  *name = data;

    if (name->len == 0 || name->len > 255) {
        return "must be 1 to 255 bytes";
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_edgetrace_check_flush_interval(ngx_conf_t *cf, void *post,
    void *data)
{
    ngx_msec_t  *ms = data;

    if (*ms == 0 || *ms > 1000) {
        return "must be from 1ms to 1s: spans reach Redis within a second";
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_edgetrace_check_queue_size(ngx_conf_t *cf, void *post, void *data)
{
    size_t  *size = data;

    if (*size < 4096) {
        return "must be at least 4k";
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_edgetrace_check_value_max(ngx_conf_t *cf, void *post, void *data)
{
    size_t  *size = data;

    if (*size == 0 || *size > 65536) {
        return "must be from 1 to 64k";
    }

    return NGX_CONF_OK;
}


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
     *     emcf->stream_key = { 0, NULL };
     *     emcf->enabled = 0;
     *     emcf->status = 0;
     */

    emcf->maxlen = ET_STREAM_DEFAULT_MAXLEN;
    emcf->flush_interval = NGX_CONF_UNSET_MSEC;
    emcf->connect_timeout = NGX_CONF_UNSET_MSEC;
    emcf->redis_timeout = NGX_CONF_UNSET_MSEC;
    emcf->flush_timeout = NGX_CONF_UNSET_MSEC;
    emcf->queue_size = NGX_CONF_UNSET_SIZE;
    emcf->value_max = NGX_CONF_UNSET_SIZE;

    return emcf;
}


static char *
ngx_http_edgetrace_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_edgetrace_main_conf_t *emcf = conf;

    u_char              *buf;
    const char          *err;
    et_exporter_conf_t  *ec;

    static ngx_str_t  default_url = ngx_string(ET_REDIS_DEFAULT_URL);
    static ngx_str_t  default_key = ngx_string(ET_STREAM_DEFAULT_KEY);

    ngx_conf_init_msec_value(emcf->flush_interval, ET_FLUSH_MS_DEFAULT);
    ngx_conf_init_msec_value(emcf->connect_timeout,
                             ET_CONNECT_TIMEOUT_MS_DEFAULT);
    ngx_conf_init_msec_value(emcf->redis_timeout, ET_IO_TIMEOUT_MS_DEFAULT);
    ngx_conf_init_msec_value(emcf->flush_timeout, ET_STOP_TIMEOUT_MS_DEFAULT);
    ngx_conf_init_size_value(emcf->queue_size, ET_QUEUE_SIZE_DEFAULT);
    ngx_conf_init_size_value(emcf->value_max, ET_VALUE_MAX_DEFAULT);

    if (emcf->redis.data == NULL) {
        if (et_redis_url_parse(default_url.data, default_url.len,
                               &emcf->exporter.redis, &err)
            != ET_OK)
        {
            return NGX_CONF_ERROR;
        }

        emcf->redis = default_url;
    }

    if (emcf->stream_key.data == NULL) {
        emcf->stream_key = default_key;
    }

    buf = ngx_pnalloc(cf->pool, ET_STREAM_PREFIX_SIZE(emcf->stream_key.len));
    if (buf == NULL) {
        return NGX_CONF_ERROR;
    }

    if (et_stream_init(&emcf->stream, buf, emcf->stream_key.data,
                       emcf->stream_key.len, emcf->maxlen, emcf->value_max)
        != ET_OK)
    {
        return NGX_CONF_ERROR;
    }

    ec = &emcf->exporter;
    ec->stream = &emcf->stream;
    ec->queue_size = emcf->queue_size;
    ec->flush_ms = emcf->flush_interval;
    ec->connect_timeout_ms = emcf->connect_timeout;
    ec->io_timeout_ms = emcf->redis_timeout;
    ec->stop_timeout_ms = emcf->flush_timeout;
    ec->shared = 0;
    ec->log = ngx_http_edgetrace_log;

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

    buf = ngx_pnalloc(cf->pool, ET_FIELD_RESP_SIZE(sizeof("service.name") - 1,
                                                   conf->service_name.len));
    if (buf == NULL) {
        return NGX_CONF_ERROR;
    }

    et_field_init(&conf->service, buf, (const uint8_t *) "service.name",
                  sizeof("service.name") - 1, conf->service_name.data,
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
                        ? ET_CONTEXT_PROPAGATE : prev->context;
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
            conf->formats[0] = ET_PROP_W3C;
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
