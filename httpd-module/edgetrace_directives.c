/*
 * mod_edgetrace: the handlers of the tracing directives (EdgeTrace,
 * EdgeTraceServiceName, EdgeTraceSample, EdgeTraceContext,
 * EdgeTracePropagation, EdgeTraceSpanName, EdgeTraceAttribute,
 * EdgeTraceKeep, EdgeTraceSampleLimit: docs/httpd.md).
 */

#include "edgetrace_private.h"


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
