/*
 * ngx_http_edgetrace_module: the directives, read at configuration time.
 */


#include "ngx_http_edgetrace_module.h"


char *
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


char *
ngx_http_edgetrace_redis(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_edgetrace_main_conf_t *emcf = conf;

    ngx_int_t    rc;
    ngx_str_t   *value;
    const char  *err;

    if (emcf->redis.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 3) {
        if (ngx_strcasecmp(value[2].data, (u_char *) "cluster") != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[2]);
            return NGX_CONF_ERROR;
        }

        rc = et_redis_seeds_parse(value[1].data, value[1].len,
                                  &emcf->exporter.redis, &err);

    } else {
        rc = et_redis_url_parse(value[1].data, value[1].len,
                                &emcf->exporter.redis, &err);
    }

    if (rc != ET_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid Redis URL \"%V\": %s",
                           &value[1], err);
        return NGX_CONF_ERROR;
    }

    emcf->redis = value[1];
    emcf->redis_file = cf->conf_file->file.name;
    emcf->redis_line = cf->conf_file->line;

    return NGX_CONF_OK;
}


/*
 * edgetrace_redis_ssl_*: kept with the place they were given, for the
 * errors found once the whole http block is read (ngx_http_edgetrace_tls())
 */
char *
ngx_http_edgetrace_redis_ssl(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t                 *value;
    ngx_http_edgetrace_ssl_t  *ssl;

    ssl = (ngx_http_edgetrace_ssl_t *) ((u_char *) conf + cmd->offset);

    if (ssl->value.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0) {
        return "invalid value";
    }

    ssl->value = value[1];
    ssl->file = cf->conf_file->file.name;
    ssl->line = cf->conf_file->line;

    return NGX_CONF_OK;
}


/* an error about a directive read earlier, at its file:line */
static char *
ngx_http_edgetrace_ssl_error(ngx_conf_t *cf, ngx_str_t *file,
    ngx_uint_t line, const char *name, const char *err)
{
    ngx_log_error(NGX_LOG_EMERG, cf->log, 0, "\"%s\" %s in %V:%ui", name,
                  err, file, line);

    return NGX_CONF_ERROR;
}


static void
ngx_http_edgetrace_tls_cleanup(void *data)
{
    et_tls_ctx_free(data);
}


/*
 * The TLS context of a rediss:// URL, made in the master as the
 * configuration is read, so that nginx -t checks its files and the
 * workers need not read them (docs/nginx.md "edgetrace_redis").
 */
char *
ngx_http_edgetrace_tls(ngx_conf_t *cf, ngx_http_edgetrace_main_conf_t *emcf)
{
    char                       err[NGX_MAX_ERROR_STR / 2];
    ngx_uint_t                 i;
    et_tls_ctx_t              *ctx;
    et_tls_conf_t              tc;
    ngx_pool_cleanup_t        *cln;
    ngx_http_edgetrace_ssl_t  *ssl[4], *which;

    static const char  *names[4] = {
        "edgetrace_redis_ssl_trusted_certificate",
        "edgetrace_redis_ssl_certificate",
        "edgetrace_redis_ssl_certificate_key",
        "edgetrace_redis_ssl_name"
    };

    ssl[0] = &emcf->ssl_trusted_certificate;
    ssl[1] = &emcf->ssl_certificate;
    ssl[2] = &emcf->ssl_certificate_key;
    ssl[3] = &emcf->ssl_name;

    if (!emcf->exporter.redis.tls) {
        for (i = 0; i < 4; i++) {
            if (ssl[i]->value.data) {
                return ngx_http_edgetrace_ssl_error(cf, &ssl[i]->file,
                                                    ssl[i]->line, names[i],
                                                    "needs a rediss:// URL");
            }
        }

        return NGX_CONF_OK;
    }

    if ((ssl[1]->value.data == NULL) != (ssl[2]->value.data == NULL)) {
        i = ssl[1]->value.data ? 1 : 2;

        return ngx_http_edgetrace_ssl_error(cf, &ssl[i]->file, ssl[i]->line,
                                            names[i],
                                            i == 1 ? "needs its key"
                                                   : "needs its certificate");
    }

    /* files relative to the prefix, as ssl_certificate's */
    for (i = 0; i < 3; i++) {
        if (ssl[i]->value.data
            && ngx_conf_full_name(cf->cycle, &ssl[i]->value, 1) != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    tc.ca = (const char *) ssl[0]->value.data;
    tc.cert = (const char *) ssl[1]->value.data;
    tc.key = (const char *) ssl[2]->value.data;
    tc.name = (const char *) ssl[3]->value.data;

    ctx = et_tls_ctx_create(&tc, err, sizeof(err));

    if (ctx == NULL) {
        /* the directive the error is about, else edgetrace_redis */
        which = NULL;

        for (i = 0; i < 4; i++) {
            if (ssl[i]->value.data
                && ngx_strstr(err, ssl[i]->value.data) != NULL)
            {
                which = ssl[i];
                break;
            }
        }

        if (which) {
            return ngx_http_edgetrace_ssl_error(cf, &which->file,
                                                which->line, names[i], err);
        }

        return ngx_http_edgetrace_ssl_error(cf, &emcf->redis_file,
                                            emcf->redis_line,
                                            "edgetrace_redis", err);
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        et_tls_ctx_free(ctx);
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_edgetrace_tls_cleanup;
    cln->data = ctx;

    emcf->exporter.tls = ctx;

    return NGX_CONF_OK;
}


char *
ngx_http_edgetrace_stream(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_edgetrace_main_conf_t *emcf = conf;

    ngx_str_t   *value;
    ngx_uint_t   i;
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

    for (i = 2; i < cf->args->nelts; i++) {
        if (et_stream_parse_option(value[i].data, value[i].len,
                                   &emcf->stream_opts, &err)
            != ET_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\": %s", &value[i], err);
            return NGX_CONF_ERROR;
        }
    }

    if (et_stream_key_check(value[1].data, value[1].len,
                            emcf->stream_opts.shards, &err)
        != ET_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid stream key \"%V\": %s", &value[1], err);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


char *
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


char *
ngx_http_edgetrace_context(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_edgetrace_loc_conf_t *elcf = conf;

    int                                mode;
    ngx_str_t                         *value;
    ngx_http_compile_complex_value_t   ccv;

    if (elcf->context != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    mode = et_prop_context_parse(value[1].data, value[1].len);

    if (mode >= 0) {
        elcf->context = mode;
        return NGX_CONF_OK;
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


char *
ngx_http_edgetrace_propagation(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_edgetrace_loc_conf_t *elcf = conf;

    unsigned     format;
    ngx_str_t   *value;
    ngx_uint_t   i, k;

    if (elcf->nformats != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;
    elcf->nformats = 0;

    for (i = 1; i < cf->args->nelts; i++) {

        format = et_prop_format_parse(value[i].data, value[i].len);

        if (format == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid format \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        for (k = 0; k < elcf->nformats; k++) {
            if (elcf->formats[k] == format) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "format \"%V\" is duplicate", &value[i]);
                return NGX_CONF_ERROR;
            }
        }

        if (elcf->nformats == ET_PROP_FORMATS_MAX) {
            return "has too many formats";
        }

        elcf->formats[elcf->nformats++] = format;
    }

    return NGX_CONF_OK;
}


char *
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

    if (elcf->attributes->nelts == ET_USER_ATTRS_MAX) {
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


/*
 * edgetrace_keep status=5xx | status=429 | slower=200ms | $variable ...:
 * the rules of one level, all of them, as edgetrace_attribute's are
 * (docs/nginx.md "edgetrace_keep"); "off" alone takes none.
 */

char *
ngx_http_edgetrace_keep(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_edgetrace_loc_conf_t *elcf = conf;

    int                         rc;
    ngx_str_t                  *value, name;
    ngx_int_t                  *index;
    ngx_uint_t                  i;
    const char                 *why;
    ngx_http_edgetrace_keep_t  *keep;

    value = cf->args->elts;

    if (cf->args->nelts == 2
        && value[1].len == 3 && ngx_strncmp(value[1].data, "off", 3) == 0)
    {
        if (elcf->keep != NGX_CONF_UNSET_PTR) {
            return "is duplicate";
        }

        elcf->keep = NULL;
        return NGX_CONF_OK;
    }

    if (elcf->keep == NULL) {
        return "is duplicate";
    }

    if (elcf->keep == NGX_CONF_UNSET_PTR) {
        elcf->keep = ngx_pcalloc(cf->pool, sizeof(ngx_http_edgetrace_keep_t));
        if (elcf->keep == NULL) {
            return NGX_CONF_ERROR;
        }

        et_keep_init(&elcf->keep->rules);
    }

    keep = elcf->keep;

    for (i = 1; i < cf->args->nelts; i++) {

        rc = et_keep_parse(&keep->rules, value[i].data, value[i].len, &why);

        if (rc == ET_OK) {
            continue;
        }

        if (rc == ET_ERROR) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid rule \"%V\": it %s", &value[i], why);
            return NGX_CONF_ERROR;
        }

        /* "$name" or "${name}", one variable and nothing else */

        name = value[i];

        if (name.len > 1 && name.data[0] == '$') {
            name.data++;
            name.len--;

            if (name.len > 2 && name.data[0] == '{'
                && name.data[name.len - 1] == '}')
            {
                name.data++;
                name.len -= 2;
            }
        }

        if (name.len == value[i].len || name.len == 0
            || ngx_strlchr(name.data, name.data + name.len, '$') != NULL
            || ngx_strlchr(name.data, name.data + name.len, '{') != NULL
            || ngx_strlchr(name.data, name.data + name.len, '}') != NULL)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid rule \"%V\": it must be "
                               "status=CODE, status=Nxx, slower=TIME or one "
                               "$variable", &value[i]);
            return NGX_CONF_ERROR;
        }

        if (keep->variables == NULL) {
            keep->variables = ngx_array_create(cf->pool, 2, sizeof(ngx_int_t));
            if (keep->variables == NULL) {
                return NGX_CONF_ERROR;
            }
        }

        index = ngx_array_push(keep->variables);
        if (index == NULL) {
            return NGX_CONF_ERROR;
        }

        *index = ngx_http_get_variable_index(cf, &name);
        if (*index == NGX_ERROR) {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/* edgetrace_sample_limit N/s (docs/nginx.md "edgetrace_sample_limit") */

char *
ngx_http_edgetrace_sample_limit(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_edgetrace_main_conf_t *emcf = conf;

    uint32_t     rate;
    ngx_str_t   *value;
    const char  *why;

    if (emcf->limit_rate != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (et_limit_parse(value[1].data, value[1].len, &rate, &why) != ET_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid limit \"%V\": it %s", &value[1], why);
        return NGX_CONF_ERROR;
    }

    emcf->limit_rate = rate;

    return NGX_CONF_OK;
}


char *
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


char *
ngx_http_edgetrace_span_name(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t  *value;

    value = cf->args->elts;

    if (value[1].len == 0) {
        return "must not be empty";
    }

    return ngx_http_set_complex_value_slot(cf, cmd, conf);
}


char *
ngx_http_edgetrace_check_service_name(ngx_conf_t *cf, void *post, void *data)
{
    ngx_str_t  *name = data;

    const char  *err;

    if (et_service_name_check(name->data, name->len, &err) != ET_OK) {
        return (char *) err;
    }

    return NGX_CONF_OK;
}


/* the exporter's knobs, held to the bounds of docs/nginx.md */

static char *
ngx_http_edgetrace_check_knob(ngx_http_edgetrace_knob_t *k, uint64_t value)
{
    const char  *err;

    if (et_exporter_knob_check(k->knob, value, &err) != ET_OK) {
        return (char *) err;
    }

    return NGX_CONF_OK;
}


char *
ngx_http_edgetrace_check_size(ngx_conf_t *cf, void *post, void *data)
{
    size_t  *size = data;

    return ngx_http_edgetrace_check_knob(post, *size);
}


char *
ngx_http_edgetrace_check_msec(ngx_conf_t *cf, void *post, void *data)
{
    ngx_msec_t  *ms = data;

    return ngx_http_edgetrace_check_knob(post, *ms);
}
