/*
 * Unit tests: cli/et_cli_span.c, stream entries read back into spans.
 */

#include <stdlib.h>
#include <string.h>

#include "et_cli.h"
#include "tap.h"


#define nelts(a)  (sizeof(a) / sizeof((a)[0]))

#define TID  "4bf92f3577b34da6a3ce929d0e0e4736"
#define SID  "00f067aa0ba902b7"

/* a valid server span, field by field; cases replace or drop fields */
#define BASE                                                                  \
    "v", "1", "trace_id", TID, "span_id", SID, "name", "GET /",               \
    "kind", "server", "start_ns", "1700000000000000000",                      \
    "end_ns", "1700000000001000000", "status", "unset",                       \
    "service.name", "nginx"


typedef struct {
    const char        *what;
    const char        *f[32];
    et_cli_span_rc_e   rc;
} et_case_t;


static const et_case_t  cases[] = {
    { "valid", { BASE, NULL }, ET_CLI_SPAN_OK },
    { "valid with parent, tracestate, attributes",
      { BASE, "parent_id", "00f067aa0ba902b8", "tracestate", "a=b",
        "url.path", "/x", "event.0", "upstream.try peer=-", NULL },
      ET_CLI_SPAN_OK },
    { "client", { "kind", "client", "v", "1", "trace_id", TID, "span_id", SID,
                  "name", "n", "start_ns", "0", "end_ns", "0",
                  "status", "error", "service.name", "s", NULL },
      ET_CLI_SPAN_OK },
    { "empty", { NULL }, ET_CLI_SPAN_NOT_ENTRY },
    { "odd", { BASE, "url.path", NULL }, ET_CLI_SPAN_NOT_ENTRY },
    { "no v", { "trace_id", TID, "span_id", SID, "name", "n",
                "kind", "server", "start_ns", "1", "end_ns", "2",
                "status", "unset", "service.name", "s", NULL },
      ET_CLI_SPAN_MISSING },
    { "v 2", { "v", "2", "trace_id", TID, NULL }, ET_CLI_SPAN_VERSION },
    { "v 10", { "v", "10", NULL }, ET_CLI_SPAN_VERSION },
    { "v empty", { "v", "", NULL }, ET_CLI_SPAN_VERSION },
    { "hand-written", { "hello", "world", NULL }, ET_CLI_SPAN_MISSING },
    { "no service.name", { "v", "1", "trace_id", TID, "span_id", SID,
                           "name", "n", "kind", "server", "start_ns", "1",
                           "end_ns", "2", "status", "unset", NULL },
      ET_CLI_SPAN_MISSING },
    { "twice", { BASE, "span_id", SID, NULL }, ET_CLI_SPAN_DUPLICATE },
    { "v twice", { BASE, "v", "1", NULL }, ET_CLI_SPAN_DUPLICATE },
    { "trace id upper case",
      { "trace_id", "4BF92F3577B34DA6A3CE929D0E0E4736", "v", "1",
        "span_id", SID, "name", "n", "kind", "server", "start_ns", "1",
        "end_ns", "2", "status", "unset", "service.name", "s", NULL },
      ET_CLI_SPAN_TRACE_ID },
    { "trace id short",
      { "trace_id", "4bf92f3577b34da6a3ce929d0e0e473", "v", "1",
        "span_id", SID, "name", "n", "kind", "server", "start_ns", "1",
        "end_ns", "2", "status", "unset", "service.name", "s", NULL },
      ET_CLI_SPAN_TRACE_ID },
    { "trace id zero",
      { "trace_id", "00000000000000000000000000000000", "v", "1",
        "span_id", SID, "name", "n", "kind", "server", "start_ns", "1",
        "end_ns", "2", "status", "unset", "service.name", "s", NULL },
      ET_CLI_SPAN_TRACE_ID },
    { "span id not hex",
      { "span_id", "00f067aa0ba902bg", "v", "1", "trace_id", TID,
        "name", "n", "kind", "server", "start_ns", "1", "end_ns", "2",
        "status", "unset", "service.name", "s", NULL },
      ET_CLI_SPAN_SPAN_ID },
    { "parent zero", { BASE, "parent_id", "0000000000000000", NULL },
      ET_CLI_SPAN_PARENT_ID },
    { "parent long", { BASE, "parent_id", "00f067aa0ba902b7a", NULL },
      ET_CLI_SPAN_PARENT_ID },
    { "kind internal",
      { "kind", "internal", "v", "1", "trace_id", TID, "span_id", SID,
        "name", "n", "start_ns", "1", "end_ns", "2", "status", "unset",
        "service.name", "s", NULL },
      ET_CLI_SPAN_KIND },
    { "end before start",
      { "start_ns", "2", "end_ns", "1", "v", "1", "trace_id", TID,
        "span_id", SID, "name", "n", "kind", "server", "status", "unset",
        "service.name", "s", NULL },
      ET_CLI_SPAN_TIME },
    { "time not decimal",
      { "start_ns", "1e9", "end_ns", "2000000000", "v", "1", "trace_id",
        TID, "span_id", SID, "name", "n", "kind", "server",
        "status", "unset", "service.name", "s", NULL },
      ET_CLI_SPAN_TIME },
    { "time negative",
      { "start_ns", "-1", "end_ns", "2", "v", "1", "trace_id", TID,
        "span_id", SID, "name", "n", "kind", "server", "status", "unset",
        "service.name", "s", NULL },
      ET_CLI_SPAN_TIME },
    { "time above uint64",
      { "start_ns", "1", "end_ns", "18446744073709551616", "v", "1",
        "trace_id", TID, "span_id", SID, "name", "n", "kind", "server",
        "status", "unset", "service.name", "s", NULL },
      ET_CLI_SPAN_TIME },
    { "time uint64 max",
      { "start_ns", "1", "end_ns", "18446744073709551615", "v", "1",
        "trace_id", TID, "span_id", SID, "name", "n", "kind", "server",
        "status", "unset", "service.name", "s", NULL },
      ET_CLI_SPAN_OK },
    { "status ok",
      { "status", "ok", "v", "1", "trace_id", TID, "span_id", SID,
        "name", "n", "kind", "server", "start_ns", "1", "end_ns", "2",
        "service.name", "s", NULL },
      ET_CLI_SPAN_STATUS },
    { "empty name",
      { "name", "", "v", "1", "trace_id", TID, "span_id", SID,
        "kind", "server", "start_ns", "1", "end_ns", "2",
        "status", "unset", "service.name", "s", NULL },
      ET_CLI_SPAN_EMPTY },
};


static size_t
build(const et_case_t *c, et_str_t *fields)
{
    size_t  n;

    for (n = 0; c->f[n]; n++) {
        fields[n].len = strlen(c->f[n]);
        fields[n].data = (const uint8_t *) c->f[n];
    }

    return n;
}


/* entry ids compared as Redis orders them (tail merges shards by them) */
static const struct {
    const char  *a;
    const char  *b;
    int          cmp;
} id_cases[] = {
    { "1-0", "1-0", 0 },
    { "1-0", "1-1", -1 },
    { "2-0", "1-9", 1 },
    { "10-0", "9-0", 1 },                 /* numbers, not strings */
    { "1700000000000-10", "1700000000000-9", 1 },
    { "18446744073709551615-0", "18446744073709551614-5", 1 },
    { "x", "1-0", -1 },                   /* not ids: first */
    { "1-0", "x", 1 },
    { "x", "y", 0 },
    { "1", "1-0", -1 },
    { "1-", "0-0", -1 },
    { "-1", "0-0", -1 },
    { "1-0-0", "0-0", -1 },
    { "18446744073709551616-0", "0-0", -1 }, /* overflows */
    { "", "0-0", -1 }
};


int
main(void)
{
    size_t            i, n;
    et_str_t          id, fields[32];
    et_cli_span_t     s;
    et_cli_span_rc_e  rc;
    const et_str_t   *v;

    id.data = (const uint8_t *) "1700000000000-0";
    id.len = 15;

    for (i = 0; i < nelts(cases); i++) {
        n = build(&cases[i], fields);
        memset(&s, 0x5a, sizeof(s));
        rc = et_cli_span_parse(&id, fields, n, &s);
        tap_is_int(rc, cases[i].rc, "%s: %s", cases[i].what,
                   et_cli_span_reason(cases[i].rc));
    }

    /* what a valid entry gives */
    n = build(&cases[1], fields);
    rc = et_cli_span_parse(&id, fields, n, &s);
    tap_is_int(rc, ET_CLI_SPAN_OK, "parsed");
    tap_is_mem(s.trace_id, strlen(s.trace_id), TID, "trace id");
    tap_is_mem(s.span_id, strlen(s.span_id), SID, "span id");
    tap_is_mem(s.parent_id, strlen(s.parent_id), "00f067aa0ba902b8",
               "parent id");
    tap_is_mem(s.name.data, s.name.len, "GET /", "name");
    tap_is_mem(s.service.data, s.service.len, "nginx", "service");
    tap_is_mem(s.tracestate.data, s.tracestate.len, "a=b", "tracestate");
    tap_is_int(s.kind, ET_CLI_KIND_SERVER, "kind");
    tap_is_int(s.error, 0, "status");
    tap_ok(s.start_ns == 1700000000000000000ULL, "start_ns");
    tap_ok(s.end_ns == 1700000000001000000ULL, "end_ns");
    v = et_cli_span_attr(&s, "url.path");
    tap_ok(v != NULL && v->len == 2 && memcmp(v->data, "/x", 2) == 0,
           "attribute url.path");
    tap_ok(et_cli_span_attr(&s, "url.query") == NULL, "absent attribute");
    tap_ok(et_cli_span_known_field(&fields[0]), "v is a known field");
    tap_ok(!et_cli_span_known_field(&fields[22]), "url.path is not");
    tap_ok(et_cli_span_event_field(&fields[24]), "event.0 is an event");
    tap_ok(s.parent_id[0] != '\0', "parent set");

    n = build(&cases[0], fields);
    rc = et_cli_span_parse(&id, fields, n, &s);
    tap_ok(rc == ET_CLI_SPAN_OK && s.parent_id[0] == '\0'
           && s.tracestate.len == 0, "root: no parent, no tracestate");

    /* a NUL inside a value is just a byte; inside "v" it is not "1" */
    n = build(&cases[0], fields);
    fields[1].data = (const uint8_t *) "1\0";
    fields[1].len = 2;
    tap_is_int(et_cli_span_parse(&id, fields, n, &s), ET_CLI_SPAN_VERSION,
               "v \"1\\0\"");

    tap_is_int(et_cli_span_parse(NULL, fields, n, &s),
               ET_CLI_SPAN_NOT_ENTRY, "no id");

    id.data = (const uint8_t *) "1700000000123-7";
    tap_ok(et_cli_entry_ms(&id) == 1700000000123ULL, "entry id ms");
    id.data = (const uint8_t *) "x";
    id.len = 1;
    tap_ok(et_cli_entry_ms(&id) == 0, "entry id not a number");

    for (i = 0; i < nelts(id_cases); i++) {
        et_str_t  a, b;
        int       c;

        a.data = (const uint8_t *) id_cases[i].a;
        a.len = strlen(id_cases[i].a);
        b.data = (const uint8_t *) id_cases[i].b;
        b.len = strlen(id_cases[i].b);
        c = et_cli_entry_id_cmp(&a, &b);
        tap_is_int(c < 0 ? -1 : c > 0, id_cases[i].cmp, "\"%s\" vs \"%s\"",
                   id_cases[i].a, id_cases[i].b);
    }

    return tap_done();
}
