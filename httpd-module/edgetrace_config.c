/*
 * mod_edgetrace: the per-directory and server configuration, and the
 * handlers of the EdgeTrace* directives (the table is in mod_edgetrace.c).
 *
 * The per-directory directives merge with a real unset state, so that an
 * "EdgeTrace Off" in a <Location> beats an "On" above it; the exporter's
 * directives are the main server's only.
 */

#include "edgetrace_private.h"


/*
 * Where the directive of each exporter knob keeps its value: the knob
 * (ET_KNOB_*) is the directive's cmd->info, and the core checks the value
 * (docs/httpd.md "Exporter tuning").
 */
static const apr_size_t  edgetrace_knob_offsets[] = {
    [ET_KNOB_QUEUE_SIZE] =
        APR_OFFSETOF(edgetrace_srv_conf_t, exporter.queue_size),
    [ET_KNOB_VALUE_MAX] =
        APR_OFFSETOF(edgetrace_srv_conf_t, value_max),
    [ET_KNOB_FLUSH_INTERVAL] =
        APR_OFFSETOF(edgetrace_srv_conf_t, exporter.flush_ms),
    [ET_KNOB_CONNECT_TIMEOUT] =
        APR_OFFSETOF(edgetrace_srv_conf_t, exporter.connect_timeout_ms),
    [ET_KNOB_REDIS_TIMEOUT] =
        APR_OFFSETOF(edgetrace_srv_conf_t, exporter.io_timeout_ms),
    [ET_KNOB_FLUSH_TIMEOUT] =
        APR_OFFSETOF(edgetrace_srv_conf_t, exporter.stop_timeout_ms)
};


static const char *
edgetrace_set_size(apr_size_t *size, const char *arg)
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


void *
edgetrace_create_dir_conf(apr_pool_t *p, char *dir)
{
    edgetrace_dir_conf_t  *dc;

    (void) dir;

    dc = apr_pcalloc(p, sizeof(edgetrace_dir_conf_t));

    dc->enable = EDGETRACE_UNSET;
    dc->context = EDGETRACE_UNSET;

    /* unset samples everything, as the root of every merge does */
    dc->ratio = 1;
    (void) et_sampler_init(&dc->sampler, 1);

    return dc;
}


/*
 * EdgeTraceKeep's rules add up, as attributes do; "EdgeTraceKeep Off"
 * leaves the level its own rules only (docs/httpd.md "EdgeTraceKeep").
 */
static edgetrace_keep_t *
edgetrace_merge_keep(apr_pool_t *p, edgetrace_dir_conf_t *prev,
    edgetrace_dir_conf_t *conf)
{
    edgetrace_keep_t  *keep;

    if (conf->keep_off || prev->keep == NULL || conf->keep == NULL) {
        return (conf->keep || conf->keep_off) ? conf->keep : prev->keep;
    }

    keep = apr_palloc(p, sizeof(edgetrace_keep_t));
    keep->rules = prev->keep->rules;
    et_keep_merge(&keep->rules, &conf->keep->rules);

    if (prev->keep->exprs == NULL || conf->keep->exprs == NULL) {
        keep->exprs = conf->keep->exprs ? conf->keep->exprs
                                        : prev->keep->exprs;

    } else {
        keep->exprs = apr_array_append(p, prev->keep->exprs,
                                       conf->keep->exprs);
    }

    return keep;
}


void *
edgetrace_merge_dir_conf(apr_pool_t *p, void *parent, void *child)
{
    edgetrace_dir_conf_t  *prev = parent;
    edgetrace_dir_conf_t  *conf = child;

    int                    i, j;
    edgetrace_dir_conf_t  *dc;
    edgetrace_dir_attr_t  *pa, *ca;

    dc = apr_pcalloc(p, sizeof(edgetrace_dir_conf_t));

    dc->enable = conf->enable != EDGETRACE_UNSET ? conf->enable : prev->enable;
    dc->context = conf->context != EDGETRACE_UNSET ? conf->context
                                                   : prev->context;

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

    dc->keep = edgetrace_merge_keep(p, prev, conf);

    /* attributes add up; a name set again in the child takes its value */

    if (prev->attrs == NULL || conf->attrs == NULL) {
        dc->attrs = conf->attrs ? conf->attrs : prev->attrs;
        return dc;
    }

    dc->attrs = apr_array_make(p, prev->attrs->nelts + conf->attrs->nelts,
                               sizeof(edgetrace_dir_attr_t));

    pa = (edgetrace_dir_attr_t *) prev->attrs->elts;
    ca = (edgetrace_dir_attr_t *) conf->attrs->elts;

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
            *(edgetrace_dir_attr_t *) apr_array_push(dc->attrs) = pa[i];
        }
    }

    for (j = 0; j < conf->attrs->nelts; j++) {
        if (dc->attrs->nelts == ET_USER_ATTRS_MAX) {
            break;
        }

        *(edgetrace_dir_attr_t *) apr_array_push(dc->attrs) = ca[j];
    }

    return dc;
}


void *
edgetrace_create_srv_conf(apr_pool_t *p, server_rec *s)
{
    edgetrace_srv_conf_t  *sc;

    (void) s;

    sc = apr_pcalloc(p, sizeof(edgetrace_srv_conf_t));

    /* it fails only if the default URL does not parse: a unit test's job */
    (void) et_exporter_conf_init(&sc->exporter);
    sc->value_max = ET_VALUE_MAX_DEFAULT;
    et_stream_opts_init(&sc->stream_opts);

    return sc;
}


void *
edgetrace_merge_srv_conf(apr_pool_t *p, void *parent, void *child)
{
    edgetrace_srv_conf_t  *prev = parent;
    edgetrace_srv_conf_t  *conf = child;

    edgetrace_srv_conf_t  *sc;

    sc = apr_palloc(p, sizeof(edgetrace_srv_conf_t));
    *sc = *prev;

    sc->service_name = conf->service_name ? conf->service_name
                                          : prev->service_name;

    return sc;
}


const char *
edgetrace_cmd_enable(cmd_parms *cmd, void *conf, int on)
{
    edgetrace_dir_conf_t  *dc = conf;

    (void) cmd;

    dc->enable = on ? 1 : 0;

    if (on) {
        edgetrace_enabled = 1;
    }

    return NULL;
}


/* the main server's configuration, for the directives it alone takes */

static edgetrace_srv_conf_t *
edgetrace_main_conf(cmd_parms *cmd, const char **err)
{
    *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    if (*err) {
        return NULL;
    }

    return EDGETRACE_SRV_CONF(cmd->server);
}


const char *
edgetrace_cmd_redis(cmd_parms *cmd, void *conf, const char *arg,
    const char *mode)
{
    int                    rc;
    const char            *err;
    edgetrace_srv_conf_t  *sc;

    (void) conf;

    sc = edgetrace_main_conf(cmd, &err);
    if (sc == NULL) {
        return err;
    }

    if (mode) {
        if (ap_cstr_casecmp(mode, "cluster") != 0) {
            return apr_psprintf(cmd->pool, "EdgeTraceRedis: invalid "
                                "parameter \"%s\"", mode);
        }

        rc = et_redis_seeds_parse((const uint8_t *) arg, strlen(arg),
                                  &sc->exporter.redis, &err);

    } else {
        rc = et_redis_url_parse((const uint8_t *) arg, strlen(arg),
                                &sc->exporter.redis, &err);
    }

    if (rc != ET_OK) {
        return apr_psprintf(cmd->pool, "EdgeTraceRedis \"%s\": %s", arg,
                            err);
    }

    sc->redis_file = cmd->directive->filename;
    sc->redis_line = (unsigned) cmd->directive->line_num;

    return NULL;
}


/*
 * EdgeTraceRedisSSL*: kept with the place they were given, for the errors
 * found once the whole configuration is read (edgetrace_tls()); files
 * relative to ServerRoot, as mod_ssl's
 */
const char *
edgetrace_cmd_redis_ssl(cmd_parms *cmd, void *conf, const char *arg)
{
    unsigned               i;
    const char            *err;
    edgetrace_ssl_t       *ssl;
    edgetrace_srv_conf_t  *sc;

    (void) conf;

    sc = edgetrace_main_conf(cmd, &err);
    if (sc == NULL) {
        return err;
    }

    i = (unsigned) (apr_size_t) cmd->info;
    ssl = &sc->ssl[i];

    if (ssl->value) {
        return apr_psprintf(cmd->pool, "%s is given twice",
                            cmd->cmd->name);
    }

    if (*arg == '\0') {
        return apr_psprintf(cmd->pool, "%s must not be empty",
                            cmd->cmd->name);
    }

    if (i != EDGETRACE_SSL_NAME) {
        arg = ap_server_root_relative(cmd->pool, arg);

        if (arg == NULL) {
            return apr_psprintf(cmd->pool, "%s: invalid path",
                                cmd->cmd->name);
        }
    }

    ssl->value = arg;
    ssl->file = cmd->directive->filename;
    ssl->line = (unsigned) cmd->directive->line_num;

    return NULL;
}


static apr_status_t
edgetrace_tls_cleanup(void *data)
{
    et_tls_ctx_free(data);

    return APR_SUCCESS;
}


/* an error about a directive read earlier, in httpd's words for its own */
static int
edgetrace_ssl_error(server_rec *s, const char *file, unsigned line,
    const char *name, const char *err)
{
    ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, s,
                 "Syntax error on line %u of %s: %s %s", line,
                 file ? file : "(unknown)", name, err);

    return HTTP_INTERNAL_SERVER_ERROR;
}


/*
 * The TLS context of a rediss:// URL, made in the parent as the
 * configuration is read (check_config: apache2 -t too), so that the
 * children need not read the files (docs/httpd.md "EdgeTraceRedis").
 */
int
edgetrace_tls(apr_pool_t *pconf, server_rec *s)
{
    char                   err[256];
    unsigned               i;
    et_tls_ctx_t          *ctx;
    et_tls_conf_t          tc;
    edgetrace_ssl_t       *ssl;
    edgetrace_srv_conf_t  *sc;

    static const char  *names[EDGETRACE_SSL_N] = {
        "EdgeTraceRedisSSLCACertificateFile",
        "EdgeTraceRedisSSLCertificateFile",
        "EdgeTraceRedisSSLCertificateKeyFile",
        "EdgeTraceRedisSSLName"
    };

    sc = EDGETRACE_SRV_CONF(s);
    ssl = sc->ssl;
    sc->exporter.tls = NULL;

    if (!sc->exporter.redis.tls) {
        for (i = 0; i < EDGETRACE_SSL_N; i++) {
            if (ssl[i].value) {
                return edgetrace_ssl_error(s, ssl[i].file, ssl[i].line,
                                           names[i],
                                           "needs a rediss:// URL");
            }
        }

        return OK;
    }

    if ((ssl[EDGETRACE_SSL_CERT].value == NULL)
        != (ssl[EDGETRACE_SSL_KEY].value == NULL))
    {
        i = ssl[EDGETRACE_SSL_CERT].value ? EDGETRACE_SSL_CERT
                                          : EDGETRACE_SSL_KEY;

        return edgetrace_ssl_error(s, ssl[i].file, ssl[i].line, names[i],
                                   i == EDGETRACE_SSL_CERT
                                   ? "needs its key"
                                   : "needs its certificate");
    }

    tc.ca = ssl[EDGETRACE_SSL_CA].value;
    tc.cert = ssl[EDGETRACE_SSL_CERT].value;
    tc.key = ssl[EDGETRACE_SSL_KEY].value;
    tc.name = ssl[EDGETRACE_SSL_NAME].value;

    ctx = et_tls_ctx_create(&tc, err, sizeof(err));

    if (ctx == NULL) {
        /* the directive the error is about, else EdgeTraceRedis */
        for (i = 0; i < EDGETRACE_SSL_N; i++) {
            if (ssl[i].value && strstr(err, ssl[i].value) != NULL) {
                return edgetrace_ssl_error(s, ssl[i].file, ssl[i].line,
                                           names[i], err);
            }
        }

        return edgetrace_ssl_error(s, sc->redis_file, sc->redis_line,
                                   "EdgeTraceRedis", err);
    }

    apr_pool_cleanup_register(pconf, ctx, edgetrace_tls_cleanup,
                              apr_pool_cleanup_null);

    sc->exporter.tls = ctx;

    return OK;
}


const char *
edgetrace_cmd_stream(cmd_parms *cmd, void *conf, const char *key,
    const char *opt1, const char *opt2)
{
    int                    i;
    const char            *err, *opts[2];
    edgetrace_srv_conf_t  *sc;

    (void) conf;

    sc = edgetrace_main_conf(cmd, &err);
    if (sc == NULL) {
        return err;
    }

    if (key[0] == '\0' || strlen(key) > ET_STREAM_KEY_MAX) {
        return apr_psprintf(cmd->pool, "EdgeTraceStream: the key must be 1 "
                            "to %d bytes long", ET_STREAM_KEY_MAX);
    }

    sc->stream_key = key;

    /* the last EdgeTraceStream wins, its options with it */
    et_stream_opts_init(&sc->stream_opts);

    opts[0] = opt1;
    opts[1] = opt2;

    for (i = 0; i < 2 && opts[i]; i++) {
        if (et_stream_parse_option((const uint8_t *) opts[i], strlen(opts[i]),
                                   &sc->stream_opts, &err)
            != ET_OK)
        {
            return apr_psprintf(cmd->pool, "EdgeTraceStream \"%s\": %s",
                                opts[i], err);
        }
    }

    if (et_stream_key_check((const uint8_t *) key, strlen(key),
                            sc->stream_opts.shards, &err)
        != ET_OK)
    {
        return apr_psprintf(cmd->pool, "EdgeTraceStream \"%s\": %s", key,
                            err);
    }

    return NULL;
}


const char *
edgetrace_cmd_service_name(cmd_parms *cmd, void *conf, const char *arg)
{
    const char            *err;
    edgetrace_srv_conf_t  *sc;

    (void) conf;

    if (et_service_name_check((const uint8_t *) arg, strlen(arg), &err)
        != ET_OK)
    {
        return apr_psprintf(cmd->pool, "EdgeTraceServiceName \"%s\": %s",
                            arg, err);
    }

    sc = EDGETRACE_SRV_CONF(cmd->server);
    sc->service_name = arg;

    return NULL;
}


const char *
edgetrace_cmd_sample(cmd_parms *cmd, void *conf, const char *arg)
{
    edgetrace_dir_conf_t  *dc = conf;

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


const char *
edgetrace_cmd_context(cmd_parms *cmd, void *conf, const char *arg)
{
    int                    mode;
    edgetrace_dir_conf_t  *dc = conf;

    mode = et_prop_context_parse((const uint8_t *) arg, strlen(arg));

    if (mode < 0) {
        return apr_psprintf(cmd->pool, "EdgeTraceContext \"%s\": must be "
                            "extract, inject, propagate or ignore", arg);
    }

    dc->context = mode;

    return NULL;
}


const char *
edgetrace_cmd_propagation(cmd_parms *cmd, void *conf, const char *args)
{
    char                  *w;
    unsigned               f;
    edgetrace_dir_conf_t  *dc = conf;

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
edgetrace_value(cmd_parms *cmd, const char *arg, const char **value,
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


const char *
edgetrace_cmd_span_name(cmd_parms *cmd, void *conf, const char *arg)
{
    edgetrace_dir_conf_t  *dc = conf;

    dc->span_name_set = 1;

    return edgetrace_value(cmd, arg, &dc->span_name, &dc->span_name_expr);
}


const char *
edgetrace_cmd_attribute(cmd_parms *cmd, void *conf, const char *name,
    const char *value)
{
    int             i;
    uint8_t        *buf;
    size_t          len;
    const char     *err;
    edgetrace_dir_attr_t  *a;
    edgetrace_dir_conf_t  *dc = conf;

    len = strlen(name);

    if (et_attr_name_check((const uint8_t *) name, len, &err) != ET_OK) {
        return apr_psprintf(cmd->pool, "EdgeTraceAttribute \"%s\": %s", name,
                            err);
    }

    if (dc->attrs == NULL) {
        dc->attrs = apr_array_make(cmd->pool, 4, sizeof(edgetrace_dir_attr_t));
    }

    a = (edgetrace_dir_attr_t *) dc->attrs->elts;

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

    return edgetrace_value(cmd, value, &a->value, &a->expr);
}


/*
 * EdgeTraceKeep status=5xx | status=429 | slower=200ms | expr=... | Off,
 * one rule an argument (docs/httpd.md "EdgeTraceKeep")
 */

const char *
edgetrace_cmd_keep(cmd_parms *cmd, void *conf, const char *arg)
{
    int                    rc;
    const char            *why;
    ap_expr_info_t        *expr;
    edgetrace_dir_conf_t  *dc = conf;

    if (strcasecmp(arg, "Off") == 0) {
        dc->keep_off = 1;
        return NULL;
    }

    if (dc->keep == NULL) {
        dc->keep = apr_pcalloc(cmd->pool, sizeof(edgetrace_keep_t));
        et_keep_init(&dc->keep->rules);
    }

    edgetrace_keeps = 1;

    why = NULL;
    rc = et_keep_parse(&dc->keep->rules, (const uint8_t *) arg, strlen(arg),
                       &why);

    if (rc == ET_OK) {
        return NULL;
    }

    if (rc == ET_ERROR) {
        return apr_psprintf(cmd->pool, "EdgeTraceKeep \"%s\": it %s", arg,
                            why);
    }

    if (strncasecmp(arg, "expr=", 5) != 0) {
        return apr_psprintf(cmd->pool, "EdgeTraceKeep \"%s\": a rule is "
                            "status=CODE, status=Nxx, slower=TIME, "
                            "expr=EXPRESSION or Off", arg);
    }

    expr = ap_expr_parse_cmd(cmd, arg + 5, 0, &why, NULL);

    if (why) {
        return apr_psprintf(cmd->pool, "EdgeTraceKeep: cannot parse "
                            "expression \"%s\": %s", arg + 5, why);
    }

    if (dc->keep->exprs == NULL) {
        dc->keep->exprs = apr_array_make(cmd->pool, 2,
                                         sizeof(ap_expr_info_t *));
    }

    *(ap_expr_info_t **) apr_array_push(dc->keep->exprs) = expr;

    return NULL;
}


/* EdgeTraceSampleLimit N/s (docs/httpd.md "EdgeTraceSampleLimit") */

const char *
edgetrace_cmd_sample_limit(cmd_parms *cmd, void *conf, const char *arg)
{
    uint32_t               rate;
    const char            *err;
    edgetrace_srv_conf_t  *sc;

    (void) conf;

    sc = edgetrace_main_conf(cmd, &err);
    if (sc == NULL) {
        return err;
    }

    if (et_limit_parse((const uint8_t *) arg, strlen(arg), &rate, &err)
        != ET_OK)
    {
        return apr_psprintf(cmd->pool, "EdgeTraceSampleLimit \"%s\": it %s",
                            arg, err);
    }

    sc->limit_rate = rate;

    return NULL;
}


/*
 * The value of the exporter knob that "cmd" sets (ET_KNOB_* in cmd->info),
 * in the knob's unit, checked by the core: where it goes in the main
 * server's configuration, or NULL with the reason in "err".
 */
static void *
edgetrace_knob(cmd_parms *cmd, const char *arg, uint64_t value,
    const char **err)
{
    unsigned  knob;

    knob = (unsigned) (apr_size_t) cmd->info;

    if (et_exporter_knob_check(knob, value, err) != ET_OK) {
        *err = apr_psprintf(cmd->pool, "%s \"%s\": %s", cmd->cmd->name, arg,
                            *err);
        return NULL;
    }

    return (char *) EDGETRACE_SRV_CONF(cmd->server)
           + edgetrace_knob_offsets[knob];
}


/* EdgeTraceQueueSize, EdgeTraceValueMaxSize: "64k", "8m", "4096" (bytes) */

const char *
edgetrace_cmd_size(cmd_parms *cmd, void *conf, const char *arg)
{
    const char  *err;
    apr_size_t  *field, size;

    (void) conf;

    err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    if (err) {
        return err;
    }

    err = edgetrace_set_size(&size, arg);
    if (err) {
        return apr_psprintf(cmd->pool, "%s \"%s\" %s", cmd->cmd->name, arg,
                            err);
    }

    field = edgetrace_knob(cmd, arg, (uint64_t) size, &err);
    if (field == NULL) {
        return err;
    }

    *field = size;

    return NULL;
}


/* the timeouts and the flush interval: "100ms", "1s", "5" (seconds) */

const char *
edgetrace_cmd_time(cmd_parms *cmd, void *conf, const char *arg)
{
    unsigned             *field;
    const char           *err;
    apr_interval_time_t   t;

    (void) conf;

    err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    if (err) {
        return err;
    }

    if (!apr_isdigit(arg[0])
        || ap_timeout_parameter_parse(arg, &t, "s") != APR_SUCCESS
        || t < 0)
    {
        return apr_psprintf(cmd->pool, "%s \"%s\": must be a time such as "
                            "100ms or 5s", cmd->cmd->name, arg);
    }

    /* milliseconds, as the core's configuration keeps them */
    field = edgetrace_knob(cmd, arg, (uint64_t) apr_time_as_msec(t), &err);
    if (field == NULL) {
        return err;
    }

    *field = (unsigned) apr_time_as_msec(t);

    return NULL;
}
