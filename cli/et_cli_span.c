/*
 * Stream entries back into spans: the reading side of the
 * stream entry (docs/stream.md, "The stream entry").
 *
 * Anything may be in the stream (a hand-written XADD, another version,
 * binary garbage), so every field the tool relies on is checked, and the
 * result says why an entry was refused.
 */

#include <string.h>

#include "et_cli.h"


typedef struct {
    const char  *name;
    size_t       len;
} et_cli_field_t;


#define F(s)  { s, sizeof(s) - 1 }

static const et_cli_field_t  et_cli_fields[] = {
    F("v"), F("trace_id"), F("span_id"), F("parent_id"), F("name"),
    F("kind"), F("start_ns"), F("end_ns"), F("status"), F("service.name"),
    F("tracestate")
};

#undef F

#define ET_F_V           0
#define ET_F_TRACE_ID    1
#define ET_F_SPAN_ID     2
#define ET_F_PARENT_ID   3
#define ET_F_NAME        4
#define ET_F_KIND        5
#define ET_F_START       6
#define ET_F_END         7
#define ET_F_STATUS      8
#define ET_F_SERVICE     9
#define ET_F_TRACESTATE  10
#define ET_F_N           11


static const char  *et_cli_reasons[] = {
    "valid",
    "not a list of fields and values",
    "not format version 1",
    "a required field is missing",
    "a field appears twice",
    "invalid trace_id",
    "invalid span_id",
    "invalid parent_id",
    "invalid kind",
    "invalid start_ns or end_ns",
    "invalid status",
    "empty name or service.name"
};


const char *
et_cli_span_reason(et_cli_span_rc_e rc)
{
    if ((size_t) rc >= sizeof(et_cli_reasons) / sizeof(et_cli_reasons[0])) {
        return "invalid";
    }

    return et_cli_reasons[rc];
}


static int
et_cli_field_index(const et_str_t *f)
{
    int  i;

    for (i = 0; i < ET_F_N; i++) {
        if (f->len == et_cli_fields[i].len
            && memcmp(f->data, et_cli_fields[i].name, f->len) == 0)
        {
            return i;
        }
    }

    return -1;
}


int
et_cli_span_known_field(const et_str_t *f)
{
    return et_cli_field_index(f) >= 0;
}


int
et_cli_span_event_field(const et_str_t *f)
{
    size_t  i;

    if (f->len < 7 || memcmp(f->data, "event.", 6) != 0) {
        return 0;
    }

    for (i = 6; i < f->len; i++) {
        if (f->data[i] < '0' || f->data[i] > '9') {
            return 0;
        }
    }

    return 1;
}


/* lowercase hex of exactly "n" digits, not all zero, into "dst" */
static int
et_cli_hex_id(const et_str_t *v, size_t n, char *dst)
{
    size_t  i;
    int     nonzero;

    if (v->len != n) {
        return ET_ERROR;
    }

    nonzero = 0;

    for (i = 0; i < n; i++) {
        if (!((v->data[i] >= '0' && v->data[i] <= '9')
              || (v->data[i] >= 'a' && v->data[i] <= 'f')))
        {
            return ET_ERROR;
        }

        nonzero |= v->data[i] != '0';
    }

    if (!nonzero) {
        return ET_ERROR;
    }

    memcpy(dst, v->data, n);
    dst[n] = '\0';

    return ET_OK;
}


static int
et_cli_parse_u64(const et_str_t *v, uint64_t *out)
{
    size_t    i;
    uint64_t  n, d;

    if (v->len == 0 || v->len > 20) {
        return ET_ERROR;
    }

    n = 0;

    for (i = 0; i < v->len; i++) {
        if (v->data[i] < '0' || v->data[i] > '9') {
            return ET_ERROR;
        }

        d = v->data[i] - '0';

        if (n > (UINT64_MAX - d) / 10) {
            return ET_ERROR;
        }

        n = n * 10 + d;
    }

    *out = n;

    return ET_OK;
}


uint64_t
et_cli_entry_ms(const et_str_t *id)
{
    size_t    i;
    et_str_t  ms;
    uint64_t  v;

    for (i = 0; i < id->len && id->data[i] != '-'; i++) {
        /* void */
    }

    ms.data = id->data;
    ms.len = i;

    if (et_cli_parse_u64(&ms, &v) != ET_OK) {
        return 0;
    }

    return v;
}


/* the two numbers of an entry id; ET_ERROR when it is not one */
static int
et_cli_entry_id(const et_str_t *id, uint64_t *ms, uint64_t *seq)
{
    size_t    i;
    et_str_t  a, b;

    for (i = 0; i < id->len && id->data[i] != '-'; i++) {
        /* void */
    }

    if (i == id->len) {
        return ET_ERROR;
    }

    a.data = id->data;
    a.len = i;
    b.data = id->data + i + 1;
    b.len = id->len - i - 1;

    if (et_cli_parse_u64(&a, ms) != ET_OK
        || et_cli_parse_u64(&b, seq) != ET_OK)
    {
        return ET_ERROR;
    }

    return ET_OK;
}


int
et_cli_entry_id_cmp(const et_str_t *a, const et_str_t *b)
{
    int       va, vb;
    uint64_t  ams, aseq, bms, bseq;

    va = et_cli_entry_id(a, &ams, &aseq) == ET_OK;
    vb = et_cli_entry_id(b, &bms, &bseq) == ET_OK;

    if (!va || !vb) {
        return va - vb;
    }

    if (ams != bms) {
        return ams < bms ? -1 : 1;
    }

    return aseq < bseq ? -1 : aseq > bseq;
}


et_cli_span_rc_e
et_cli_span_parse(const et_str_t *id, const et_str_t *fields, size_t n,
    et_cli_span_t *span)
{
    int              k;
    size_t           i;
    const et_str_t  *seen[ET_F_N], *v;

    if (n % 2 != 0 || n == 0 || id == NULL || id->len == 0) {
        return ET_CLI_SPAN_NOT_ENTRY;
    }

    memset(seen, 0, sizeof(seen));

    for (i = 0; i < n; i += 2) {
        k = et_cli_field_index(&fields[i]);

        if (k < 0) {
            continue;
        }

        if (seen[k] != NULL) {
            return ET_CLI_SPAN_DUPLICATE;
        }

        seen[k] = &fields[i + 1];
    }

    if (seen[ET_F_V] == NULL) {
        return ET_CLI_SPAN_MISSING;
    }

    if (seen[ET_F_V]->len != 1 || seen[ET_F_V]->data[0] != '1') {
        return ET_CLI_SPAN_VERSION;
    }

    for (k = 0; k < ET_F_N; k++) {
        if (seen[k] == NULL && k != ET_F_PARENT_ID && k != ET_F_TRACESTATE) {
            return ET_CLI_SPAN_MISSING;
        }
    }

    span->id = *id;
    span->fields = fields;
    span->nfields = n;

    if (et_cli_hex_id(seen[ET_F_TRACE_ID], 32, span->trace_id) != ET_OK) {
        return ET_CLI_SPAN_TRACE_ID;
    }

    if (et_cli_hex_id(seen[ET_F_SPAN_ID], 16, span->span_id) != ET_OK) {
        return ET_CLI_SPAN_SPAN_ID;
    }

    span->parent_id[0] = '\0';

    if (seen[ET_F_PARENT_ID] != NULL
        && et_cli_hex_id(seen[ET_F_PARENT_ID], 16, span->parent_id) != ET_OK)
    {
        return ET_CLI_SPAN_PARENT_ID;
    }

    v = seen[ET_F_KIND];

    if (v->len == 6 && memcmp(v->data, "server", 6) == 0) {
        span->kind = ET_CLI_KIND_SERVER;

    } else if (v->len == 6 && memcmp(v->data, "client", 6) == 0) {
        span->kind = ET_CLI_KIND_CLIENT;

    } else {
        return ET_CLI_SPAN_KIND;
    }

    if (et_cli_parse_u64(seen[ET_F_START], &span->start_ns) != ET_OK
        || et_cli_parse_u64(seen[ET_F_END], &span->end_ns) != ET_OK
        || span->end_ns < span->start_ns)
    {
        return ET_CLI_SPAN_TIME;
    }

    v = seen[ET_F_STATUS];

    if (v->len == 5 && memcmp(v->data, "unset", 5) == 0) {
        span->error = 0;

    } else if (v->len == 5 && memcmp(v->data, "error", 5) == 0) {
        span->error = 1;

    } else {
        return ET_CLI_SPAN_STATUS;
    }

    span->name = *seen[ET_F_NAME];
    span->service = *seen[ET_F_SERVICE];

    if (span->name.len == 0 || span->service.len == 0) {
        return ET_CLI_SPAN_EMPTY;
    }

    if (seen[ET_F_TRACESTATE] != NULL) {
        span->tracestate = *seen[ET_F_TRACESTATE];

    } else {
        span->tracestate.len = 0;
        span->tracestate.data = NULL;
    }

    return ET_CLI_SPAN_OK;
}


int
et_cli_span_outcome(const et_cli_span_t *span)
{
    const et_str_t  *v;

    v = et_cli_span_attr(span, "edgetrace.sampling");

    return v != NULL && v->len == sizeof("outcome") - 1
           && memcmp(v->data, "outcome", sizeof("outcome") - 1) == 0;
}


const et_str_t *
et_cli_span_attr(const et_cli_span_t *span, const char *name)
{
    size_t  i, len;

    len = strlen(name);

    for (i = 0; i < span->nfields; i += 2) {
        if (span->fields[i].len == len
            && memcmp(span->fields[i].data, name, len) == 0)
        {
            return &span->fields[i + 1];
        }
    }

    return NULL;
}
