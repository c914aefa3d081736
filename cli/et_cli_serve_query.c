/*
 * edgetrace serve: the query parameters of the API, as Jaeger's query
 * service reads them (docs/serve.md, "The API"): start and end in Unix
 * microseconds, minDuration and maxDuration as Go durations ("250ms",
 * "1.5s", "500us"), tag=key:value and tags={"key":"value"}, endTs and
 * lookback in milliseconds.  Whatever a parameter holds, the answer is a
 * parsed query or a reason for a 400: these run on bytes from the
 * network.
 */

#include <stdlib.h>
#include <string.h>

#include "et_cli_serve.h"


#define ET_SERVE_LOOKBACK_US   (2ULL * 24 * 3600 * 1000000)  /* Jaeger's */
#define ET_SERVE_DEPS_LOOKBACK (24ULL * 3600 * 1000)         /* ms */


const et_serve_arg_t *
et_serve_arg(const et_serve_args_t *a, const char *key)
{
    size_t  i;

    for (i = 0; i < a->n; i++) {
        if (strcmp(a->arg[i].key, key) == 0) {
            return &a->arg[i];
        }
    }

    return NULL;
}


void
et_serve_query_free(et_serve_query_t *q)
{
    json_decref(q->tags_doc);
    free(q->match);
    q->tags_doc = NULL;
    q->match = NULL;
}


int
et_serve_hex_id(const uint8_t *p, size_t len, char *id, size_t digits)
{
    size_t  i, pad;
    int     zero;

    if (len == 0 || len > digits) {
        return ET_ERROR;
    }

    pad = digits - len;
    memset(id, '0', pad);
    zero = 1;

    for (i = 0; i < len; i++) {
        if (p[i] >= '0' && p[i] <= '9') {
            id[pad + i] = (char) p[i];

        } else if ((p[i] | 0x20) >= 'a' && (p[i] | 0x20) <= 'f') {
            id[pad + i] = (char) (p[i] | 0x20);

        } else {
            return ET_ERROR;
        }

        zero &= p[i] == '0';
    }

    id[digits] = '\0';

    return zero ? ET_ERROR : ET_OK;
}


/* a decimal number of at most 19 digits; NULL "a": "*v" is kept */
static int
et_serve_u64(const et_serve_arg_t *a, uint64_t *v, char *err, size_t size)
{
    size_t    i;
    uint64_t  n;

    if (a == NULL) {
        return ET_OK;
    }

    if (a->len == 0 || a->len > 19) {
        goto invalid;
    }

    n = 0;

    for (i = 0; i < a->len; i++) {
        if (a->value[i] < '0' || a->value[i] > '9') {
            goto invalid;
        }

        n = n * 10 + (a->value[i] - '0');
    }

    *v = n;

    return ET_OK;

invalid:

    snprintf(err, size, "unable to parse param '%s': a decimal number "
             "expected", a->key);

    return ET_ERROR;
}


/* a duration ("1.5ms", "2s", Jaeger's Go syntax less its µs) */
static int
et_serve_duration(const et_serve_arg_t *a, uint64_t *us, char *err,
    size_t size)
{
    char         buf[64];
    size_t       i, n;
    uint64_t     ns;
    const char  *why;

    if (a == NULL) {
        return ET_OK;
    }

    if (a->len == 0 || a->len >= sizeof(buf)
        || memchr(a->value, '\0', a->len) != NULL)
    {
        why = "a duration such as 250ms or 1.5s expected";
        goto invalid;
    }

    /*
     * Go's time.ParseDuration, Jaeger's, reads microseconds as "us",
     * "\u00b5s" and "\u03bcs"; Grafana passes on what is typed
     */
    for (i = 0, n = 0; i < a->len; i++) {
        if (i + 2 < a->len && a->value[i + 2] == 's'
            && ((a->value[i] == 0xc2 && a->value[i + 1] == 0xb5)
                || (a->value[i] == 0xce && a->value[i + 1] == 0xbc)))
        {
            buf[n++] = 'u';
            i++;
            continue;
        }

        buf[n++] = (char) a->value[i];
    }

    buf[n] = '\0';

    if (et_cli_duration_parse(buf, &ns, &why) != ET_OK) {
        goto invalid;
    }

    *us = ns / 1000;

    return ET_OK;

invalid:

    snprintf(err, size, "unable to parse param '%s': %s", a->key, why);

    return ET_ERROR;
}


static int
et_serve_tag_add(et_serve_query_t *q, const uint8_t *k, size_t klen,
    const uint8_t *v, size_t vlen, char *err, size_t size)
{
    if (q->ntags == ET_SERVE_TAGS_MAX) {
        snprintf(err, size, "at most %d tags", ET_SERVE_TAGS_MAX);
        return ET_ERROR;
    }

    if (klen == 0) {
        snprintf(err, size, "malformed 'tag' parameter: an empty key");
        return ET_ERROR;
    }

    q->tag_key[q->ntags].data = k;
    q->tag_key[q->ntags].len = klen;
    q->tag_value[q->ntags].data = v;
    q->tag_value[q->ntags].len = vlen;
    q->ntags++;

    return ET_OK;
}


/* tag=key:value (repeated) and tags={"key":"value",...} */
static int
et_serve_tags(const et_serve_args_t *a, et_serve_query_t *q, char *err,
    size_t size)
{
    size_t          i;
    json_t         *v;
    const char     *k;
    const uint8_t  *colon;
    json_error_t    jerr;

    for (i = 0; i < a->n; i++) {
        if (strcmp(a->arg[i].key, "tag") == 0) {
            colon = memchr(a->arg[i].value, ':', a->arg[i].len);

            if (colon == NULL) {
                snprintf(err, size, "malformed 'tag' parameter, expecting "
                         "key:value");
                return ET_ERROR;
            }

            if (et_serve_tag_add(q, a->arg[i].value,
                                 colon - a->arg[i].value, colon + 1,
                                 a->arg[i].len - (colon - a->arg[i].value)
                                 - 1, err, size)
                != ET_OK)
            {
                return ET_ERROR;
            }

            continue;
        }

        if (strcmp(a->arg[i].key, "tags") != 0) {
            continue;
        }

        if (q->tags_doc != NULL) {
            snprintf(err, size, "'tags' given twice");
            return ET_ERROR;
        }

        q->tags_doc = json_loadb((const char *) a->arg[i].value,
                                 a->arg[i].len, JSON_REJECT_DUPLICATES,
                                 &jerr);

        if (q->tags_doc == NULL || !json_is_object(q->tags_doc)) {
            snprintf(err, size, "malformed 'tags' parameter: a JSON object "
                     "of strings expected");
            return ET_ERROR;
        }

        json_object_foreach(q->tags_doc, k, v) {
            if (!json_is_string(v)) {
                snprintf(err, size, "malformed 'tags' parameter: the value "
                         "of each key must be a string");
                return ET_ERROR;
            }

            if (et_serve_tag_add(q, (const uint8_t *) k, strlen(k),
                                 (const uint8_t *) json_string_value(v),
                                 json_string_length(v), err, size)
                != ET_OK)
            {
                return ET_ERROR;
            }
        }
    }

    return ET_OK;
}


/* start and end (us), defaults: now and the lookback before it */
static int
et_serve_times(const et_serve_args_t *a, uint64_t now_us,
    et_serve_query_t *q, char *err, size_t size)
{
    q->end_us = now_us;

    if (et_serve_u64(et_serve_arg(a, "end"), &q->end_us, err, size)
        != ET_OK)
    {
        return ET_ERROR;
    }

    q->start_us = q->end_us > ET_SERVE_LOOKBACK_US
                  ? q->end_us - ET_SERVE_LOOKBACK_US : 0;

    if (et_serve_u64(et_serve_arg(a, "start"), &q->start_us, err, size)
        != ET_OK)
    {
        return ET_ERROR;
    }

    if (q->start_us > q->end_us) {
        snprintf(err, size, "'start' is after 'end'");
        return ET_ERROR;
    }

    return ET_OK;
}


static int
et_serve_limit(const et_serve_args_t *a, et_serve_query_t *q, char *err,
    size_t size)
{
    uint64_t  n;

    n = 0;

    if (et_serve_u64(et_serve_arg(a, "limit"), &n, err, size) != ET_OK) {
        return ET_ERROR;
    }

    q->limit = n == 0 ? ET_SERVE_LIMIT
                      : n > ET_SERVE_LIMIT_MAX ? ET_SERVE_LIMIT_MAX : n;

    return ET_OK;
}


/* every parameter a string of at most ET_SERVE_ARG_MAX bytes */
static int
et_serve_args_check(const et_serve_args_t *a, char *err, size_t size)
{
    size_t  i;

    if (a->overflow) {
        snprintf(err, size, "more than %d query parameters",
                 ET_SERVE_ARGS_MAX);
        return ET_ERROR;
    }

    for (i = 0; i < a->n; i++) {
        if (a->arg[i].len > ET_SERVE_ARG_MAX) {
            snprintf(err, size, "parameter '%.64s' is longer than %d bytes",
                     a->arg[i].key, ET_SERVE_ARG_MAX);
            return ET_ERROR;
        }
    }

    return ET_OK;
}


static void
et_serve_str(const et_serve_arg_t *a, et_str_t *s)
{
    if (a != NULL) {
        s->data = a->value;
        s->len = a->len;
    }
}


int
et_serve_traces_parse(const et_serve_args_t *a, uint64_t now_us,
    et_serve_query_t *q, char *err, size_t size)
{
    memset(q, 0, sizeof(et_serve_query_t));

    if (et_serve_args_check(a, err, size) != ET_OK) {
        return ET_ERROR;
    }

    et_serve_str(et_serve_arg(a, "service"), &q->service);
    et_serve_str(et_serve_arg(a, "operation"), &q->operation);

    if (q->service.len == 0) {
        snprintf(err, size, "parameter 'service' is required");
        return ET_ERROR;
    }

    if (et_serve_times(a, now_us, q, err, size) != ET_OK
        || et_serve_limit(a, q, err, size) != ET_OK
        || et_serve_duration(et_serve_arg(a, "minDuration"), &q->min_us,
                             err, size) != ET_OK
        || et_serve_duration(et_serve_arg(a, "maxDuration"), &q->max_us,
                             err, size) != ET_OK
        || et_serve_tags(a, q, err, size) != ET_OK)
    {
        return ET_ERROR;
    }

    if (q->min_us && q->max_us && q->max_us < q->min_us) {
        snprintf(err, size, "'maxDuration' should be greater than "
                 "'minDuration'");
        return ET_ERROR;
    }

    return ET_OK;
}


/*
 * q=: each word a phrase of FTS5, in double quotes (a quote inside
 * doubled), so that no byte of it is FTS5 syntax
 */
int
et_serve_search_parse(const et_serve_args_t *a, uint64_t now_us,
    et_serve_query_t *q, char *err, size_t size)
{
    char                  *m;
    size_t                 i, n;
    int                    in_word;
    const et_serve_arg_t  *k;

    memset(q, 0, sizeof(et_serve_query_t));

    if (et_serve_args_check(a, err, size) != ET_OK) {
        return ET_ERROR;
    }

    k = et_serve_arg(a, "q");

    if (k == NULL || k->len == 0) {
        snprintf(err, size, "parameter 'q' is required");
        return ET_ERROR;
    }

    if (k->len > ET_SERVE_KEYWORD_MAX) {
        snprintf(err, size, "parameter 'q' is longer than %d bytes",
                 ET_SERVE_KEYWORD_MAX);
        return ET_ERROR;
    }

    if (memchr(k->value, '\0', k->len) != NULL) {
        snprintf(err, size, "parameter 'q' holds a NUL byte");
        return ET_ERROR;
    }

    et_serve_str(et_serve_arg(a, "service"), &q->service);

    if (et_serve_times(a, now_us, q, err, size) != ET_OK
        || et_serve_limit(a, q, err, size) != ET_OK)
    {
        return ET_ERROR;
    }

    /* at worst each byte a word of its own: "x" and a space */
    m = malloc(k->len * 4 + 1);

    if (m == NULL) {
        snprintf(err, size, "out of memory");
        return ET_ERROR;
    }

    n = 0;
    in_word = 0;

    for (i = 0; i < k->len; i++) {
        if (k->value[i] == ' ' || k->value[i] == '\t' || k->value[i] == '\n'
            || k->value[i] == '\r')
        {
            if (in_word) {
                m[n++] = '"';
                m[n++] = ' ';
                in_word = 0;
            }

            continue;
        }

        if (!in_word) {
            m[n++] = '"';
            in_word = 1;
        }

        if (k->value[i] == '"') {
            m[n++] = '"';
        }

        m[n++] = (char) k->value[i];
    }

    if (in_word) {
        m[n++] = '"';
    }

    m[n] = '\0';
    q->match = m;

    if (n == 0) {
        snprintf(err, size, "parameter 'q' has no word");
        return ET_ERROR;
    }

    return ET_OK;
}


/*
 * endTs and lookback in ms (Jaeger's /api/dependencies), and for RED a
 * service, an operation and step (ms, whole minutes)
 */
static int
et_serve_window_parse(const et_serve_args_t *a, uint64_t now_us, int red,
    et_serve_query_t *q, char *err, size_t size)
{
    uint64_t  end_ms, lookback_ms, step_ms;

    memset(q, 0, sizeof(et_serve_query_t));

    if (et_serve_args_check(a, err, size) != ET_OK) {
        return ET_ERROR;
    }

    end_ms = now_us / 1000;
    lookback_ms = ET_SERVE_DEPS_LOOKBACK;
    step_ms = 60000;

    if (et_serve_u64(et_serve_arg(a, "endTs"), &end_ms, err, size) != ET_OK
        || et_serve_u64(et_serve_arg(a, "lookback"), &lookback_ms, err,
                        size) != ET_OK
        || et_serve_u64(et_serve_arg(a, "step"), &step_ms, err, size)
           != ET_OK)
    {
        return ET_ERROR;
    }

    /* microseconds from here on: below 2^64 */
    if (end_ms > UINT64_MAX / 1000 || lookback_ms > UINT64_MAX / 1000) {
        snprintf(err, size, "'endTs' or 'lookback' is out of range");
        return ET_ERROR;
    }

    if (step_ms == 0 || step_ms % 60000 != 0) {
        snprintf(err, size, "'step' must be a whole number of minutes, in "
                 "milliseconds (60000, 300000...)");
        return ET_ERROR;
    }

    q->end_us = end_ms * 1000;
    q->start_us = lookback_ms * 1000 < q->end_us
                  ? q->end_us - lookback_ms * 1000 : 0;
    q->step_us = step_ms * 1000;

    if (red && (q->end_us - q->start_us) / q->step_us > ET_SERVE_POINTS_MAX)
    {
        snprintf(err, size, "'lookback' / 'step' gives more than %d points",
                 ET_SERVE_POINTS_MAX);
        return ET_ERROR;
    }

    et_serve_str(et_serve_arg(a, "service"), &q->service);
    et_serve_str(et_serve_arg(a, "operation"), &q->operation);

    return ET_OK;
}


int
et_serve_deps_parse(const et_serve_args_t *a, uint64_t now_us,
    et_serve_query_t *q, char *err, size_t size)
{
    return et_serve_window_parse(a, now_us, 0, q, err, size);
}


int
et_serve_red_parse(const et_serve_args_t *a, uint64_t now_us,
    et_serve_query_t *q, char *err, size_t size)
{
    return et_serve_window_parse(a, now_us, 1, q, err, size);
}
