/*
 * mod_edgetrace: the per-directory and server configurations, created and
 * merged.  The per-directory directives merge with a real unset state, so
 * that an "EdgeTrace Off" in a <Location> beats an "On" above it.  The
 * directives' handlers are in edgetrace_directives.c (tracing) and
 * edgetrace_exporter.c (the exporter's, the main server's only); their
 * table is in mod_edgetrace.c.
 */

#include "edgetrace_private.h"


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


/* the main server's configuration, for the directives it alone takes */

edgetrace_srv_conf_t *
edgetrace_main_conf(cmd_parms *cmd, const char **err)
{
    *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    if (*err) {
        return NULL;
    }

    return EDGETRACE_SRV_CONF(cmd->server);
}
