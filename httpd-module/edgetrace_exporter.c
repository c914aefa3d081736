/*
 * mod_edgetrace: the handlers of the exporter's directives, the main
 * server's only: where spans go (EdgeTraceRedis, its TLS files,
 * EdgeTraceStream) and the exporter's knobs (docs/httpd.md "Exporter
 * tuning"); the TLS context made once the configuration is read.
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
