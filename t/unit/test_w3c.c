/*
 * Unit tests: et_w3c.c, W3C Trace Context Level 2.
 *
 * Every input is copied into a buffer of exactly its length first, so a
 * read past the end shows up under valgrind.
 */

#include <stdlib.h>
#include <string.h>

#include "et_core.h"
#include "et_id.h"
#include "et_span.h"
#include "et_w3c.h"
#include "tap.h"


#define IN(s)  (s), sizeof(s) - 1

#define TID    "4bf92f3577b34da6a3ce929d0e0e4736"
#define TID31  "4bf92f3577b34da6a3ce929d0e0e473"
#define SID    "00f067aa0ba902b7"
#define SID15  "00f067aa0ba902b"
#define ZTID   "00000000000000000000000000000000"
#define ZSID   "0000000000000000"

/* a traceparent with the test ids */
#define TP(version, flags)  version "-" TID "-" SID "-" flags

#define HOSTILE  8192


static uint8_t *
dup_exact(const void *p, size_t len)
{
    uint8_t  *d;

    if (len == 0) {
        return NULL;
    }

    d = malloc(len);
    if (d == NULL) {
        abort();
    }

    memcpy(d, p, len);

    return d;
}


/* traceparent */


typedef struct {
    const char   *name;
    const char   *in;
    size_t        len;
    et_w3c_rc_t   rc;
    const char   *trace_id;         /* expected when rc is ET_W3C_OK */
    const char   *span_id;
    uint8_t       flags;
} tp_case_t;


static const tp_case_t  tp_cases[] = {

    /* valid values and the flags we keep */

    { "sampled", IN(TP("00", "01")), ET_W3C_OK, TID, SID, 0x01 },
    { "not sampled", IN(TP("00", "00")), ET_W3C_OK, TID, SID, 0x00 },
    { "random flag", IN(TP("00", "02")), ET_W3C_OK, TID, SID, 0x02 },
    { "sampled and random", IN(TP("00", "03")), ET_W3C_OK, TID, SID, 0x03 },
    { "unknown flags dropped (ff)", IN(TP("00", "ff")), ET_W3C_OK,
      TID, SID, 0x03 },
    { "unknown flags dropped (09)", IN(TP("00", "09")), ET_W3C_OK,
      TID, SID, 0x01 },
    { "unknown flags dropped (fc)", IN(TP("00", "fc")), ET_W3C_OK,
      TID, SID, 0x00 },
    { "spec example",
      IN("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
      ET_W3C_OK, "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331",
      0x01 },
    { "ids with one non-zero digit",
      IN("00-00000000000000000000000000000001-0000000000000001-01"),
      ET_W3C_OK, "00000000000000000000000000000001", "0000000000000001",
      0x01 },

    /* OWS: spaces and tabs around the value */

    { "leading space", IN(" " TP("00", "01")), ET_W3C_OK, TID, SID, 1 },
    { "leading tab", IN("\t" TP("00", "01")), ET_W3C_OK, TID, SID, 1 },
    { "trailing space", IN(TP("00", "01") " "), ET_W3C_OK, TID, SID, 1 },
    { "trailing tab", IN(TP("00", "01") "\t"), ET_W3C_OK, TID, SID, 1 },
    { "tabs and spaces around", IN("\t \t" TP("00", "01") " \t "),
      ET_W3C_OK, TID, SID, 1 },
    { "OWS around a future version", IN("\t" TP("cc", "01") "-x\t"),
      ET_W3C_OK, TID, SID, 1 },

    /* empty and short */

    { "empty", IN(""), ET_W3C_EMPTY, NULL, NULL, 0 },
    { "spaces only", IN("   "), ET_W3C_EMPTY, NULL, NULL, 0 },
    { "tabs only", IN("\t\t"), ET_W3C_EMPTY, NULL, NULL, 0 },
    { "OWS only", IN(" \t \t "), ET_W3C_EMPTY, NULL, NULL, 0 },
    { "one digit", IN("0"), ET_W3C_BAD_LENGTH, NULL, NULL, 0 },
    { "version only", IN("00"), ET_W3C_BAD_LENGTH, NULL, NULL, 0 },
    { "version and '-'", IN("00-"), ET_W3C_BAD_LENGTH, NULL, NULL, 0 },
    { "no span id", IN("00-" TID), ET_W3C_BAD_LENGTH, NULL, NULL, 0 },
    { "no flags", IN("00-" TID "-" SID), ET_W3C_BAD_LENGTH, NULL, NULL, 0 },
    { "no flags, with '-'", IN("00-" TID "-" SID "-"), ET_W3C_BAD_LENGTH,
      NULL, NULL, 0 },
    { "one flags digit", IN("00-" TID "-" SID "-1"), ET_W3C_BAD_LENGTH,
      NULL, NULL, 0 },
    { "trace id of 31 digits", IN("00-" TID31 "-" SID "-01"),
      ET_W3C_BAD_LENGTH, NULL, NULL, 0 },
    { "span id of 15 digits", IN("00-" TID "-" SID15 "-01"),
      ET_W3C_BAD_LENGTH, NULL, NULL, 0 },

    /* version 00 is exactly 55 characters */

    { "version 00, 56 chars", IN(TP("00", "01") "."), ET_W3C_BAD_LENGTH,
      NULL, NULL, 0 },
    { "version 00, trailing '-'", IN(TP("00", "01") "-"),
      ET_W3C_BAD_LENGTH, NULL, NULL, 0 },
    { "version 00 with a future field",
      IN(TP("00", "01") "-what-the-future-will-be-like"),
      ET_W3C_BAD_LENGTH, NULL, NULL, 0 },
    { "trace id of 33 digits", IN("00-" TID "7-" SID "-01"),
      ET_W3C_BAD_LENGTH, NULL, NULL, 0 },
    { "span id of 17 digits", IN("00-" TID "-" SID "7-01"),
      ET_W3C_BAD_LENGTH, NULL, NULL, 0 },
    { "three flags digits", IN(TP("00", "001")), ET_W3C_BAD_LENGTH,
      NULL, NULL, 0 },

    /* future versions: 55 characters as 00, then the end or '-' */

    { "version 01, 55 chars", IN(TP("01", "01")), ET_W3C_OK, TID, SID, 1 },
    { "version cc, 55 chars", IN(TP("cc", "00")), ET_W3C_OK, TID, SID, 0 },
    { "version fe, 55 chars", IN(TP("fe", "01")), ET_W3C_OK, TID, SID, 1 },
    { "future version with extra fields",
      IN(TP("cc", "01") "-what-the-future-will-be-like"), ET_W3C_OK,
      TID, SID, 1 },
    { "future version, trailing '-'", IN(TP("cc", "01") "-"), ET_W3C_OK,
      TID, SID, 1 },
    { "future version keeps known flags only", IN(TP("cc", "ff") "-00"),
      ET_W3C_OK, TID, SID, 3 },
    { "future version, char 55 is '.'",
      IN(TP("cc", "01") ".what-the-future-will-be-like"),
      ET_W3C_BAD_DELIMITER, NULL, NULL, 0 },
    { "future version, three flags digits", IN(TP("cc", "011")),
      ET_W3C_BAD_DELIMITER, NULL, NULL, 0 },
    { "future version, char 55 is a space", IN(TP("cc", "01") " x"),
      ET_W3C_BAD_DELIMITER, NULL, NULL, 0 },
    { "future version, 54 chars", IN("cc-" TID "-" SID "-0"),
      ET_W3C_BAD_LENGTH, NULL, NULL, 0 },
    { "future version, zero trace id", IN("cc-" ZTID "-" SID "-01-x"),
      ET_W3C_ZERO_TRACE_ID, NULL, NULL, 0 },
    { "future version, uppercase span id",
      IN("cc-" TID "-00F067AA0BA902B7-01-x"), ET_W3C_BAD_SPAN_ID,
      NULL, NULL, 0 },

    /* version */

    { "version ff", IN(TP("ff", "01")), ET_W3C_VERSION_FF, NULL, NULL, 0 },
    { "version ff with extra fields", IN(TP("ff", "01") "-00"),
      ET_W3C_VERSION_FF, NULL, NULL, 0 },
    { "version ff, short", IN("ff-"), ET_W3C_VERSION_FF, NULL, NULL, 0 },
    { "uppercase version", IN(TP("0A", "01")), ET_W3C_BAD_VERSION,
      NULL, NULL, 0 },
    { "uppercase version FF", IN(TP("FF", "01")), ET_W3C_BAD_VERSION,
      NULL, NULL, 0 },
    { "version '.0'", IN(TP(".0", "01")), ET_W3C_BAD_VERSION,
      NULL, NULL, 0 },
    { "version '0.'", IN(TP("0.", "01")), ET_W3C_BAD_VERSION,
      NULL, NULL, 0 },
    { "version of one digit", IN(TP("0", "01")), ET_W3C_BAD_VERSION,
      NULL, NULL, 0 },
    { "version of three digits", IN(TP("000", "01")), ET_W3C_BAD_VERSION,
      NULL, NULL, 0 },
    { "version of four digits", IN(TP("0000", "01")), ET_W3C_BAD_VERSION,
      NULL, NULL, 0 },
    { "non-ASCII version", IN("\xc3\xa9-" TID "-" SID "-01"),
      ET_W3C_BAD_VERSION, NULL, NULL, 0 },
    { "NUL version", IN("\0\0-" TID "-" SID "-01"), ET_W3C_BAD_VERSION,
      NULL, NULL, 0 },

    /* delimiters */

    { "'_' after the version", IN("00_" TID "-" SID "-01"),
      ET_W3C_BAD_DELIMITER, NULL, NULL, 0 },
    { "'_' after the trace id", IN("00-" TID "_" SID "-01"),
      ET_W3C_BAD_DELIMITER, NULL, NULL, 0 },
    { "'_' after the span id", IN("00-" TID "-" SID "_01"),
      ET_W3C_BAD_DELIMITER, NULL, NULL, 0 },

    /* trace id */

    { "uppercase trace id",
      IN("00-4BF92F3577B34DA6A3CE929D0E0E4736-" SID "-01"),
      ET_W3C_BAD_TRACE_ID, NULL, NULL, 0 },
    { "one uppercase digit in the trace id",
      IN("00-4bf92f3577b34da6a3ce929d0e0e473A-" SID "-01"),
      ET_W3C_BAD_TRACE_ID, NULL, NULL, 0 },
    { "'.' at the trace id's start",
      IN("00-.bf92f3577b34da6a3ce929d0e0e4736-" SID "-01"),
      ET_W3C_BAD_TRACE_ID, NULL, NULL, 0 },
    { "'.' at the trace id's end",
      IN("00-4bf92f3577b34da6a3ce929d0e0e473.-" SID "-01"),
      ET_W3C_BAD_TRACE_ID, NULL, NULL, 0 },
    { "space inside the trace id",
      IN("00-4bf92f3577b34da6 3ce929d0e0e4736-" SID "-01"),
      ET_W3C_BAD_TRACE_ID, NULL, NULL, 0 },
    { "zero trace id", IN("00-" ZTID "-" SID "-01"), ET_W3C_ZERO_TRACE_ID,
      NULL, NULL, 0 },
    { "zero trace id and span id", IN("00-" ZTID "-" ZSID "-01"),
      ET_W3C_ZERO_TRACE_ID, NULL, NULL, 0 },

    /* span (parent) id */

    { "uppercase span id", IN("00-" TID "-00F067AA0BA902B7-01"),
      ET_W3C_BAD_SPAN_ID, NULL, NULL, 0 },
    { "'.' at the span id's start", IN("00-" TID "-.0f067aa0ba902b7-01"),
      ET_W3C_BAD_SPAN_ID, NULL, NULL, 0 },
    { "'.' at the span id's end", IN("00-" TID "-00f067aa0ba902b.-01"),
      ET_W3C_BAD_SPAN_ID, NULL, NULL, 0 },
    { "zero span id", IN("00-" TID "-" ZSID "-01"), ET_W3C_ZERO_SPAN_ID,
      NULL, NULL, 0 },

    /* flags */

    { "uppercase flags", IN(TP("00", "0A")), ET_W3C_BAD_FLAGS,
      NULL, NULL, 0 },
    { "flags '.0'", IN(TP("00", ".0")), ET_W3C_BAD_FLAGS, NULL, NULL, 0 },
    { "flags '0.'", IN(TP("00", "0.")), ET_W3C_BAD_FLAGS, NULL, NULL, 0 },
    { "flags 'g1'", IN(TP("00", "g1")), ET_W3C_BAD_FLAGS, NULL, NULL, 0 },
    { "flags with a NUL", IN(TP("00", "0\0")), ET_W3C_BAD_FLAGS,
      NULL, NULL, 0 },
    { "non-ASCII flags", IN(TP("00", "\xff\xfe")), ET_W3C_BAD_FLAGS,
      NULL, NULL, 0 },

    /* CR, LF and other bytes that are not OWS */

    { "CR LF after the value", IN(TP("00", "01") "\r\n"),
      ET_W3C_BAD_LENGTH, NULL, NULL, 0 },
    { "CR LF before the value", IN("\r\n" TP("00", "01")),
      ET_W3C_BAD_VERSION, NULL, NULL, 0 },
    { "CR LF inside the trace id",
      IN("00-4bf92f3577b34da6a3ce929d0e0e47\r\n-" SID "-01"),
      ET_W3C_BAD_TRACE_ID, NULL, NULL, 0 },
    { "LF inside the span id", IN("00-" TID "-00f067aa\n0ba902b7-01"),
      ET_W3C_BAD_LENGTH, NULL, NULL, 0 },
    { "LF replacing a span id digit", IN("00-" TID "-00f067aa\nba902b7-01"),
      ET_W3C_BAD_SPAN_ID, NULL, NULL, 0 },
    { "folded line (CR LF tab) after the value",
      IN(TP("00", "01") "\r\n\t"), ET_W3C_BAD_LENGTH, NULL, NULL, 0 },
    { "vertical tab before the value", IN("\v" TP("00", "01")),
      ET_W3C_BAD_VERSION, NULL, NULL, 0 },
    { "no-break space before the value", IN("\xc2\xa0" TP("00", "01")),
      ET_W3C_BAD_VERSION, NULL, NULL, 0 },
    { "non-ASCII in the trace id",
      IN("00-4bf92f3577b34da6a3ce929d0e0e47\xc3\xa9-" SID "-01"),
      ET_W3C_BAD_TRACE_ID, NULL, NULL, 0 },
    { "non-ASCII in the span id", IN("00-" TID "-00f067aa0ba902\xc3\xa9-01"),
      ET_W3C_BAD_SPAN_ID, NULL, NULL, 0 },
    { "two values joined by ','", IN(TP("00", "01") "," TP("00", "01")),
      ET_W3C_BAD_LENGTH, NULL, NULL, 0 },
};


static void
tp_check(const char *name, const uint8_t *in, size_t len, et_w3c_rc_t want,
    const char *trace_id, const char *span_id, uint8_t flags)
{
    int            ok;
    uint8_t       *buf, hex[2 * ET_TRACE_ID_LEN];
    et_w3c_rc_t    rc;
    et_context_t   ctx, untouched;

    buf = dup_exact(in, len);

    memset(&ctx, 0xa5, sizeof(ctx));
    memset(&untouched, 0xa5, sizeof(untouched));

    rc = et_traceparent_parse(buf, len, &ctx);
    free(buf);

    ok = (rc == want);

    if (ok && rc == ET_W3C_OK) {
        et_hex_encode(hex, ctx.trace_id, ET_TRACE_ID_LEN);
        ok = (memcmp(hex, trace_id, 2 * ET_TRACE_ID_LEN) == 0);

        et_hex_encode(hex, ctx.span_id, ET_SPAN_ID_LEN);
        ok = ok && (memcmp(hex, span_id, 2 * ET_SPAN_ID_LEN) == 0);

        ok = ok && (ctx.flags == flags);

    } else if (ok) {
        ok = (memcmp(&ctx, &untouched, sizeof(ctx)) == 0);
    }

    tap_ok(ok, "traceparent: %s -> %s", name, et_w3c_reason(want));

    if (rc != want) {
        printf("#   got: %s\n", et_w3c_reason(rc));
    }
}


static void
test_traceparent(void)
{
    size_t              i;
    uint8_t            *big;
    const tp_case_t    *c;
    static const char   valid[] = TP("00", "01");
    static const char   future[] = TP("cc", "01");

    for (i = 0; i < sizeof(tp_cases) / sizeof(tp_cases[0]); i++) {
        c = &tp_cases[i];
        tp_check(c->name, (const uint8_t *) c->in, c->len, c->rc,
                 c->trace_id, c->span_id, c->flags);
    }

    tp_check("NULL, 0", NULL, 0, ET_W3C_EMPTY, NULL, NULL, 0);

    /* very long values */

    big = malloc(3 * HOSTILE);
    if (big == NULL) {
        abort();
    }

    memcpy(big, valid, 55);
    memset(big + 55, 'x', HOSTILE);
    tp_check("version 00 followed by 8 KB", big, 55 + HOSTILE,
             ET_W3C_BAD_LENGTH, NULL, NULL, 0);

    memcpy(big, future, 55);
    big[55] = '-';
    memset(big + 56, 'x', HOSTILE);
    tp_check("future version with an 8 KB field", big, 56 + HOSTILE,
             ET_W3C_OK, TID, SID, 1);

    memcpy(big, future, 55);
    memset(big + 55, 'x', HOSTILE);
    tp_check("future version followed by 8 KB without '-'", big,
             55 + HOSTILE, ET_W3C_BAD_DELIMITER, NULL, NULL, 0);

    memset(big, ' ', HOSTILE);
    memcpy(big + HOSTILE, valid, 55);
    memset(big + HOSTILE + 55, '\t', HOSTILE);
    tp_check("8 KB of spaces, the value, 8 KB of tabs", big,
             2 * HOSTILE + 55, ET_W3C_OK, TID, SID, 1);

    memset(big, ' ', 3 * HOSTILE);
    tp_check("24 KB of spaces", big, 3 * HOSTILE, ET_W3C_EMPTY,
             NULL, NULL, 0);

    memset(big, '\0', HOSTILE);
    tp_check("8 KB of NUL bytes", big, HOSTILE, ET_W3C_BAD_VERSION,
             NULL, NULL, 0);

    memset(big, '0', HOSTILE);
    tp_check("8 KB of '0'", big, HOSTILE, ET_W3C_BAD_VERSION, NULL, NULL, 0);

    memset(big, '-', HOSTILE);
    tp_check("8 KB of '-'", big, HOSTILE, ET_W3C_BAD_VERSION, NULL, NULL, 0);

    for (i = 0; i < HOSTILE; i++) {
        big[i] = (uint8_t) (i * 7919 >> 3);
    }

    big[0] = 'c';
    big[1] = 'c';
    big[2] = '-';
    tp_check("future version followed by 8 KB of binary", big, HOSTILE,
             ET_W3C_BAD_TRACE_ID, NULL, NULL, 0);

    free(big);
}


static void
test_traceparent_write(void)
{
    size_t         i;
    uint8_t       *buf, *end, trace_id[ET_TRACE_ID_LEN];
    uint8_t        span_id[ET_SPAN_ID_LEN], flags;
    et_w3c_rc_t    rc;
    et_context_t   ctx;

    static const struct {
        uint8_t      flags;
        const char  *want;
    } cases[] = {
        { 0x00, TP("00", "00") },
        { 0x01, TP("00", "01") },
        { 0x02, TP("00", "02") },
        { 0x03, TP("00", "03") },
        { 0xff, TP("00", "03") },
        { 0x80, TP("00", "00") },
        { 0x05, TP("00", "01") },
    };

    et_hex_decode(trace_id, (const uint8_t *) TID, ET_TRACE_ID_LEN);
    et_hex_decode(span_id, (const uint8_t *) SID, ET_SPAN_ID_LEN);

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        /* exactly 55 bytes: valgrind catches a longer write */
        buf = malloc(ET_TRACEPARENT_LEN);
        if (buf == NULL) {
            abort();
        }

        end = et_traceparent_write(buf, trace_id, span_id, cases[i].flags);

        tap_is_mem(buf, end - buf, cases[i].want,
                   "traceparent write: flags 0x%02x", cases[i].flags);

        free(buf);
    }

    /* a future version is written back as 00, its extra fields dropped */
    buf = malloc(ET_TRACEPARENT_LEN);
    if (buf == NULL) {
        abort();
    }

    rc = et_traceparent_parse(
        (const uint8_t *) IN(TP("cc", "ff") "-what-the-future-will-be-like"),
        &ctx);
    end = et_traceparent_write(buf, ctx.trace_id, ctx.span_id, ctx.flags);

    tap_ok(rc == ET_W3C_OK && end - buf == ET_TRACEPARENT_LEN
           && memcmp(buf, TP("00", "03"), ET_TRACEPARENT_LEN) == 0,
           "traceparent write: a future version is downgraded to 00");

    /* round trips of random ids */
    for (i = 0; i < 1000; i++) {
        et_trace_id_new(trace_id);
        et_span_id_new(span_id);
        flags = (uint8_t) (i & ET_FLAGS_KNOWN);

        end = et_traceparent_write(buf, trace_id, span_id, flags);
        rc = et_traceparent_parse(buf, end - buf, &ctx);

        if (rc != ET_W3C_OK
            || memcmp(ctx.trace_id, trace_id, ET_TRACE_ID_LEN) != 0
            || memcmp(ctx.span_id, span_id, ET_SPAN_ID_LEN) != 0
            || ctx.flags != flags)
        {
            break;
        }
    }

    tap_is_int(i, 1000, "traceparent: write then parse 1000 random ids");

    free(buf);
}


static void
test_reason(void)
{
    size_t       i, j;
    int          ok;
    const char  *a, *b;

    static const struct {
        et_w3c_rc_t   rc;
        const char   *want;
    } cases[] = {
        { ET_W3C_OK, "ok" },
        { ET_W3C_VERSION_FF, "version ff" },
        { ET_W3C_ZERO_TRACE_ID, "zero trace id" },
        { ET_W3C_ZERO_SPAN_ID, "zero span id" },
        { ET_W3C_TS_BAD_VALUE, "bad tracestate value" },
        { (et_w3c_rc_t) 1000, "unknown" },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        a = et_w3c_reason(cases[i].rc);
        tap_ok(a != NULL && strcmp(a, cases[i].want) == 0,
               "reason of %d is '%s'", (int) cases[i].rc, cases[i].want);
    }

    ok = 1;

    for (i = ET_W3C_OK; i <= ET_W3C_TS_BAD_VALUE; i++) {
        a = et_w3c_reason((et_w3c_rc_t) i);

        if (a == NULL || a[0] == '\0' || strcmp(a, "unknown") == 0) {
            ok = 0;
        }

        for (j = ET_W3C_OK; j < i; j++) {
            b = et_w3c_reason((et_w3c_rc_t) j);
            if (a != NULL && b != NULL && strcmp(a, b) == 0) {
                ok = 0;
            }
        }
    }

    tap_ok(ok, "every result code has its own reason");
}


/* tracestate */


typedef struct {
    const char   *name;
    et_str_t      lines[4];
    size_t        nlines;
    et_w3c_rc_t   rc;
    const char   *want;             /* "" when rc is an error */
} ts_case_t;


#define L(s)  et_string(s)


static const ts_case_t  ts_cases[] = {

    /* lists, lines and OWS */

    { "one member", { L("foo=1") }, 1, ET_W3C_OK, "foo=1" },
    { "two members", { L("foo=1,bar=2") }, 1, ET_W3C_OK, "foo=1,bar=2" },
    { "three lines are one list, in order",
      { L("foo=1,bar=2"), L("rojo=1,congo=2"), L("baz=3") }, 3, ET_W3C_OK,
      "foo=1,bar=2,rojo=1,congo=2,baz=3" },
    { "spaces and tabs around commas",
      { L("foo=1 \t , \t bar=2, \t baz=3") }, 1, ET_W3C_OK,
      "foo=1,bar=2,baz=3" },
    { "tabs and spaces around commas",
      { L("foo=1\t \t,\t \tbar=2,\t \tbaz=3") }, 1, ET_W3C_OK,
      "foo=1,bar=2,baz=3" },
    { "leading space", { L(" foo=1") }, 1, ET_W3C_OK, "foo=1" },
    { "leading tab", { L("\tfoo=1") }, 1, ET_W3C_OK, "foo=1" },
    { "trailing space", { L("foo=1 ") }, 1, ET_W3C_OK, "foo=1" },
    { "trailing tab", { L("foo=1\t") }, 1, ET_W3C_OK, "foo=1" },
    { "OWS on both sides", { L("\t foo=1 \t") }, 1, ET_W3C_OK, "foo=1" },

    /* empty members */

    { "no lines", { L("") }, 0, ET_W3C_OK, "" },
    { "one empty line", { L("") }, 1, ET_W3C_OK, "" },
    { "OWS-only line", { L(" \t ") }, 1, ET_W3C_OK, "" },
    { "empty line, then a member", { L(""), L("foo=1") }, 2, ET_W3C_OK,
      "foo=1" },
    { "a member, then an empty line", { L("foo=1"), L("") }, 2, ET_W3C_OK,
      "foo=1" },
    { "empty member in the middle", { L("foo=1,,bar=2") }, 1, ET_W3C_OK,
      "foo=1,bar=2" },
    { "commas only", { L(",,,") }, 1, ET_W3C_OK, "" },
    { "leading and trailing commas", { L(",foo=1,") }, 1, ET_W3C_OK,
      "foo=1" },
    { "whitespace-only members", { L(" , \t ,foo=1, ") }, 1, ET_W3C_OK,
      "foo=1" },
    { "commas at line boundaries", { L("foo=1,"), L(",bar=2") }, 2,
      ET_W3C_OK, "foo=1,bar=2" },

    /* values */

    { "leading spaces of a value are kept", { L("foo=  1") }, 1, ET_W3C_OK,
      "foo=  1" },
    { "inner space of a value is kept", { L("foo=a b") }, 1, ET_W3C_OK,
      "foo=a b" },
    { "trailing spaces of a value are OWS", { L("foo=1   ,bar=2") }, 1,
      ET_W3C_OK, "foo=1,bar=2" },
    { "value with '='", { L("foo=bar=baz") }, 1, ET_W3C_TS_BAD_VALUE, "" },
    { "value with ',' (the rest has no '=')", { L("foo=a,b") }, 1,
      ET_W3C_TS_BAD_MEMBER, "" },
    { "value with ',' (the rest is a member)", { L("foo=a,b=c") }, 1,
      ET_W3C_OK, "foo=a,b=c" },
    { "empty value", { L("foo=") }, 1, ET_W3C_TS_BAD_VALUE, "" },
    { "empty value, then a member", { L("foo=,bar=3") }, 1,
      ET_W3C_TS_BAD_VALUE, "" },
    { "value of one space", { L("foo= ") }, 1, ET_W3C_TS_BAD_VALUE, "" },
    { "value of spaces, then a member", { L("foo=  ,bar=3") }, 1,
      ET_W3C_TS_BAD_VALUE, "" },
    { "value with a tab", { L("foo=a\tb") }, 1, ET_W3C_TS_BAD_VALUE, "" },
    { "value with CR LF", { L("foo=a\r\nb") }, 1, ET_W3C_TS_BAD_VALUE, "" },
    { "CR LF after the list", { L("foo=1\r\n") }, 1, ET_W3C_TS_BAD_VALUE,
      "" },
    { "value with DEL", { L("foo=a\x7f") }, 1, ET_W3C_TS_BAD_VALUE, "" },
    { "value with a control char", { L("foo=a\x01") }, 1,
      ET_W3C_TS_BAD_VALUE, "" },
    { "value with a NUL", { L("foo=a\0b") }, 1, ET_W3C_TS_BAD_VALUE, "" },
    { "value with UTF-8", { L("foo=caf\xc3\xa9") }, 1, ET_W3C_TS_BAD_VALUE,
      "" },

    /* members and keys */

    { "no '='", { L("foo") }, 1, ET_W3C_TS_BAD_MEMBER, "" },
    { "no '=' after a valid member", { L("foo=1,bar") }, 1,
      ET_W3C_TS_BAD_MEMBER, "" },
    { "empty key", { L("=1") }, 1, ET_W3C_TS_BAD_KEY, "" },
    { "uppercase key", { L("FOO=1") }, 1, ET_W3C_TS_BAD_KEY, "" },
    { "one uppercase letter in a key", { L("fOo=1") }, 1, ET_W3C_TS_BAD_KEY,
      "" },
    { "key with '.'", { L("foo.bar=1") }, 1, ET_W3C_TS_BAD_KEY, "" },
    { "space before '='", { L("foo =1") }, 1, ET_W3C_TS_BAD_KEY, "" },
    { "space inside a key", { L("fo o=1") }, 1, ET_W3C_TS_BAD_KEY, "" },
    { "tab inside a key", { L("fo\to=1") }, 1, ET_W3C_TS_BAD_KEY, "" },
    { "key starting with '_'", { L("_foo=1") }, 1, ET_W3C_TS_BAD_KEY, "" },
    { "key starting with '-'", { L("-foo=1") }, 1, ET_W3C_TS_BAD_KEY, "" },
    { "key starting with '*'", { L("*foo=1") }, 1, ET_W3C_TS_BAD_KEY, "" },
    { "key starting with '/'", { L("/foo=1") }, 1, ET_W3C_TS_BAD_KEY, "" },
    { "key starting with '@'", { L("@foo=1,bar=2") }, 1, ET_W3C_TS_BAD_KEY,
      "" },
    { "key starting with a digit", { L("0foo=1") }, 1, ET_W3C_OK,
      "0foo=1" },
    { "key of one char", { L("a=1") }, 1, ET_W3C_OK, "a=1" },
    { "every key char", { L("a0_-*/@z9=1") }, 1, ET_W3C_OK, "a0_-*/@z9=1" },
    { "key 'foo@'", { L("foo@=1,bar=2") }, 1, ET_W3C_OK, "foo@=1,bar=2" },
    { "key 'foo@@bar'", { L("foo@@bar=1,bar=2") }, 1, ET_W3C_OK,
      "foo@@bar=1,bar=2" },
    { "key 'foo@bar@baz'", { L("foo@bar@baz=1,bar=2") }, 1, ET_W3C_OK,
      "foo@bar@baz=1,bar=2" },
    { "key 'tenant@vendor'", { L("tenant@vendor=1") }, 1, ET_W3C_OK,
      "tenant@vendor=1" },
    { "key with an uppercase vendor", { L("foo@Bar=1") }, 1,
      ET_W3C_TS_BAD_KEY, "" },
    { "key with UTF-8", { L("f\xc3\xb6o=1") }, 1, ET_W3C_TS_BAD_KEY, "" },
    { "key with a NUL", { L("fo\0o=1") }, 1, ET_W3C_TS_BAD_KEY, "" },
    { "member starting with a NUL", { L("a=1,\0b=2") }, 1,
      ET_W3C_TS_BAD_KEY, "" },
    { "one bad member spoils the whole list",
      { L("foo=1"), L("BAR=2"), L("baz=3") }, 3, ET_W3C_TS_BAD_KEY, "" },

    /* duplicates: the first of a key is kept, the rest of the list too */

    { "same key, same value", { L("foo=1,foo=1") }, 1, ET_W3C_OK,
      "foo=1" },
    { "same key, other value", { L("foo=1,foo=2") }, 1, ET_W3C_OK,
      "foo=1" },
    { "same member on two lines", { L("foo=1"), L("foo=1") }, 2, ET_W3C_OK,
      "foo=1" },
    { "same key on two lines", { L("foo=1"), L("foo=2") }, 2, ET_W3C_OK,
      "foo=1" },
    { "duplicate far apart", { L("foo=1,bar=2"), L("baz=3,foo=4") }, 2,
      ET_W3C_OK, "foo=1,bar=2,baz=3" },
    { "members after a duplicate are kept, in order",
      { L("a=1,b=2,a=3,c=4,b=5,d=6") }, 1, ET_W3C_OK, "a=1,b=2,c=4,d=6" },
    { "a key thrice, OWS around", { L(" k=1 ,k=2"), L("\tk=3 , x=y") }, 2,
      ET_W3C_OK, "k=1,x=y" },
    { "a key that is a prefix of the duplicate's",
      { L("foo=1,foobar=2,foo=3,foobar=4") }, 1, ET_W3C_OK,
      "foo=1,foobar=2" },
    { "a bad duplicate still spoils the list", { L("foo=1,foo=") }, 1,
      ET_W3C_TS_BAD_VALUE, "" },
    { "a duplicate with a bad key spoils the list", { L("foo=1"),
      L("foo=2,Foo=3") }, 2, ET_W3C_TS_BAD_KEY, "" },
    { "similar keys are not duplicates",
      { L("foo=1,foo@=2,foo@x=3,fo=4,fooo=5") }, 1, ET_W3C_OK,
      "foo=1,foo@=2,foo@x=3,fo=4,fooo=5" },
};


static void
ts_check(const char *name, const et_str_t *lines, size_t nlines,
    et_w3c_rc_t want, const char *want_out)
{
    int           ok;
    size_t        i, out_len;
    uint8_t      *out;
    et_str_t     *copy;
    et_w3c_rc_t   rc;

    copy = malloc((nlines ? nlines : 1) * sizeof(et_str_t));
    out = malloc(ET_TRACESTATE_MAX);
    if (copy == NULL || out == NULL) {
        abort();
    }

    for (i = 0; i < nlines; i++) {
        copy[i].len = lines[i].len;
        copy[i].data = dup_exact(lines[i].data, lines[i].len);
    }

    out_len = 12345;
    rc = et_tracestate_parse(copy, nlines, out, &out_len);

    ok = (rc == want && out_len == strlen(want_out)
          && memcmp(out, want_out, out_len) == 0);

    tap_ok(ok, "tracestate: %s -> %s", name, et_w3c_reason(want));

    if (!ok) {
        printf("#   got: %s, %zu: '%.*s'\n#   expected: %zu: '%s'\n",
               et_w3c_reason(rc), out_len,
               (int) (out_len <= ET_TRACESTATE_MAX ? out_len : 0), out,
               strlen(want_out), want_out);
    }

    for (i = 0; i < nlines; i++) {
        free((void *) copy[i].data);
    }

    free(copy);
    free(out);
}


/* runtime-built cases: a few big strings */
static char  ts_a[3 * HOSTILE], ts_b[3 * HOSTILE], ts_want[3 * HOSTILE];


static et_str_t
str(const char *s)
{
    et_str_t  v;

    v.len = strlen(s);
    v.data = (const uint8_t *) s;

    return v;
}


/* appends "key=vvv..." of exactly "len" characters, with a ',' if needed */
static void
add_member(char *list, const char *key, size_t len)
{
    size_t  n, klen;

    n = strlen(list);
    klen = strlen(key);

    if (n) {
        list[n++] = ',';
    }

    memcpy(list + n, key, klen);
    list[n + klen] = '=';
    memset(list + n + klen + 1, 'v', len - klen - 1);
    list[n + len] = '\0';
}


static void
test_tracestate(void)
{
    size_t           i, j;
    char             key[16];
    et_str_t         lines[8];
    const ts_case_t *c;

    for (i = 0; i < sizeof(ts_cases) / sizeof(ts_cases[0]); i++) {
        c = &ts_cases[i];
        ts_check(c->name, c->lines, c->nlines, c->rc, c->want);
    }

    /* 32 members are allowed, 33 are not (spread over lines, as W3C's) */

    for (j = 0; j < 2; j++) {
        char  buf[4][128];

        buf[0][0] = buf[1][0] = buf[2][0] = buf[3][0] = '\0';
        ts_want[0] = '\0';

        for (i = 1; i <= 32 + j; i++) {
            snprintf(key, sizeof(key), "bar%02zu", i);
            add_member(buf[(i - 1) / 10], key, 8);
            add_member(ts_want, key, 8);
        }

        for (i = 0; i < 4; i++) {
            lines[i] = str(buf[i]);
        }

        lines[4] = str(" , ,\t,,");

        ts_check(j ? "33 members on 4 lines" : "32 members on 4 lines",
                 lines, 4, j ? ET_W3C_TS_TOO_MANY : ET_W3C_OK,
                 j ? "" : ts_want);

        if (j == 0) {
            ts_check("32 members and empty members", lines, 5, ET_W3C_OK,
                     ts_want);
        }
    }

    ts_a[0] = '\0';

    for (i = 1; i <= 33; i++) {
        snprintf(key, sizeof(key), "k%zu", i);
        add_member(ts_a, key, 8);
    }

    lines[0] = str(ts_a);
    ts_check("33 members on one line", lines, 1, ET_W3C_TS_TOO_MANY, "");

    /* only the members kept count: towards 32, and towards 512 bytes */

    ts_want[0] = '\0';

    for (i = 1; i <= 32; i++) {
        snprintf(key, sizeof(key), "k%zu", i);
        add_member(ts_want, key, 8);
    }

    strcpy(ts_a, ts_want);

    for (i = 1; i <= 8; i++) {
        snprintf(key, sizeof(key), "k%zu", i);
        add_member(ts_a, key, 9);
    }

    lines[0] = str(ts_a);
    ts_check("32 keys and 8 duplicates", lines, 1, ET_W3C_OK, ts_want);

    ts_a[0] = '\0';
    ts_want[0] = '\0';

    for (i = 1; i <= 5; i++) {
        snprintf(key, sizeof(key), "k%zu", i);
        add_member(ts_a, key, 99);
        add_member(ts_want, key, 99);
        add_member(ts_a, key, 99);
    }

    lines[0] = str(ts_a);
    ts_check("5 members of 99 and their duplicates fit in 512", lines, 1,
             ET_W3C_OK, ts_want);

    /* key and value lengths */

    lines[0] = str("foo=1");

    memset(ts_a, 'z', 256);
    strcpy(ts_a + 256, "=1");
    lines[1] = str(ts_a);
    strcpy(ts_want, "foo=1,");
    strcat(ts_want, ts_a);
    ts_check("key of 256 chars", lines, 2, ET_W3C_OK, ts_want);

    memset(ts_a, 'z', 257);
    strcpy(ts_a + 257, "=1");
    lines[1] = str(ts_a);
    ts_check("key of 257 chars", lines, 2, ET_W3C_TS_BAD_KEY, "");

    memset(ts_a, 't', 241);
    ts_a[241] = '@';
    memset(ts_a + 242, 'v', 14);
    strcpy(ts_a + 256, "=1");
    lines[1] = str(ts_a);
    strcpy(ts_want, "foo=1,");
    strcat(ts_want, ts_a);
    ts_check("key of 241 + '@' + 14 chars", lines, 2, ET_W3C_OK, ts_want);

    memset(ts_a, 't', 242);
    strcpy(ts_a + 242, "@v=1");
    lines[1] = str(ts_a);
    strcpy(ts_want, "foo=1,");
    strcat(ts_want, ts_a);
    ts_check("key of 242 + '@' + 1 chars", lines, 2, ET_W3C_OK, ts_want);

    strcpy(ts_a, "t@vvvvvvvvvvvvvvv=1");
    lines[1] = str(ts_a);
    ts_check("key of 1 + '@' + 15 chars", lines, 2, ET_W3C_OK,
             "foo=1,t@vvvvvvvvvvvvvvv=1");

    ts_a[0] = 'a';
    memset(ts_a + 1, '@', 255);
    strcpy(ts_a + 256, "=1");
    lines[1] = str(ts_a);
    strcpy(ts_want, "foo=1,");
    strcat(ts_want, ts_a);
    ts_check("key of 'a' and 255 '@'", lines, 2, ET_W3C_OK, ts_want);

    ts_a[0] = 'a';
    memset(ts_a + 1, '@', 256);
    strcpy(ts_a + 257, "=1");
    lines[1] = str(ts_a);
    ts_check("key of 'a' and 256 '@'", lines, 2, ET_W3C_TS_BAD_KEY, "");

    ts_a[0] = '\0';
    add_member(ts_a, "k", 2 + 256);
    lines[1] = str(ts_a);
    strcpy(ts_want, "foo=1,");
    strcat(ts_want, ts_a);
    ts_check("value of 256 chars", lines, 2, ET_W3C_OK, ts_want);

    ts_a[0] = '\0';
    add_member(ts_a, "k", 2 + 257);
    lines[1] = str(ts_a);
    ts_check("value of 257 chars", lines, 2, ET_W3C_TS_BAD_VALUE, "");

    strcpy(ts_a, "k=");
    j = 2;

    for (i = 0x20; i <= 0x7e; i++) {
        if (i != ',' && i != '=') {
            ts_a[j++] = (char) i;
        }
    }

    ts_a[j] = '\0';
    lines[0] = str(ts_a);
    ts_check("value of every allowed char", lines, 1, ET_W3C_OK, ts_a);

    /*
     * Truncation to 512 characters by whole members: those longer than
     * 128 go first, then members from the end.
     */

    ts_a[0] = '\0';
    add_member(ts_a, "a", 100);
    add_member(ts_a, "b", 100);
    add_member(ts_a, "c", 100);
    add_member(ts_a, "d", 100);
    add_member(ts_a, "e", 108);
    lines[0] = str(ts_a);
    ts_check("exactly 512 chars: kept whole", lines, 1, ET_W3C_OK, ts_a);

    ts_a[0] = '\0';
    ts_want[0] = '\0';
    add_member(ts_a, "a", 100);
    add_member(ts_want, "a", 100);
    add_member(ts_a, "b", 100);
    add_member(ts_want, "b", 100);
    add_member(ts_a, "c", 100);
    add_member(ts_want, "c", 100);
    add_member(ts_a, "d", 100);
    add_member(ts_want, "d", 100);
    add_member(ts_a, "e", 109);
    lines[0] = str(ts_a);
    ts_check("513 chars: the last member goes", lines, 1, ET_W3C_OK,
             ts_want);

    ts_a[0] = '\0';
    ts_want[0] = '\0';
    add_member(ts_a, "a", 102);
    add_member(ts_want, "a", 102);
    add_member(ts_a, "big", 204);
    add_member(ts_a, "c", 102);
    add_member(ts_want, "c", 102);
    add_member(ts_a, "d", 102);
    add_member(ts_want, "d", 102);
    add_member(ts_a, "e", 102);
    add_member(ts_want, "e", 102);
    lines[0] = str(ts_a);
    ts_check("a member > 128 chars goes before the last one", lines, 1,
             ET_W3C_OK, ts_want);

    ts_a[0] = '\0';
    ts_want[0] = '\0';
    add_member(ts_a, "y", 129);
    add_member(ts_a, "x", 128);
    add_member(ts_want, "x", 128);
    add_member(ts_a, "a", 100);
    add_member(ts_want, "a", 100);
    add_member(ts_a, "b", 100);
    add_member(ts_want, "b", 100);
    add_member(ts_a, "c", 100);
    add_member(ts_want, "c", 100);
    lines[0] = str(ts_a);
    ts_check("129 chars is large, 128 is not", lines, 1, ET_W3C_OK,
             ts_want);

    ts_a[0] = '\0';
    ts_want[0] = '\0';
    add_member(ts_a, "p", 200);
    add_member(ts_want, "p", 200);
    add_member(ts_a, "q", 200);
    add_member(ts_a, "a", 100);
    add_member(ts_want, "a", 100);
    add_member(ts_a, "b", 100);
    add_member(ts_want, "b", 100);
    add_member(ts_a, "c", 100);
    add_member(ts_want, "c", 100);
    lines[0] = str(ts_a);
    ts_check("large members go only as needed, the last one first",
             lines, 1, ET_W3C_OK, ts_want);

    ts_a[0] = '\0';
    ts_want[0] = '\0';
    add_member(ts_a, "p", 200);
    add_member(ts_a, "a", 100);
    add_member(ts_want, "a", 100);
    add_member(ts_a, "b", 100);
    add_member(ts_want, "b", 100);
    add_member(ts_a, "c", 100);
    add_member(ts_want, "c", 100);
    add_member(ts_a, "d", 100);
    add_member(ts_want, "d", 100);
    add_member(ts_a, "e", 100);
    add_member(ts_want, "e", 100);
    add_member(ts_a, "f", 100);
    lines[0] = str(ts_a);
    ts_check("large members first, then from the end", lines, 1, ET_W3C_OK,
             ts_want);

    ts_a[0] = '\0';
    ts_b[0] = '\0';
    ts_want[0] = '\0';
    add_member(ts_a, "a", 129);
    add_member(ts_want, "a", 129);
    add_member(ts_a, "b", 129);
    add_member(ts_want, "b", 129);
    add_member(ts_b, "c", 129);
    add_member(ts_want, "c", 129);
    add_member(ts_b, "d", 129);
    lines[0] = str(ts_a);
    lines[1] = str(ts_b);
    ts_check("four large members on two lines: the last goes", lines, 2,
             ET_W3C_OK, ts_want);

    memset(ts_a, 'k', 256);
    ts_a[256] = '=';
    memset(ts_a + 257, 'v', 255);
    ts_a[512] = '\0';
    lines[0] = str(ts_a);
    ts_check("one member of 512 chars is kept", lines, 1, ET_W3C_OK, ts_a);

    memset(ts_a, 'k', 256);
    ts_a[256] = '=';
    memset(ts_a + 257, 'v', 256);
    ts_a[513] = '\0';
    lines[0] = str(ts_a);
    ts_check("one member of 513 chars: nothing left", lines, 1, ET_W3C_OK,
             "");

    /* hostile input */

    ts_a[0] = '\0';
    add_member(ts_a, "a", HOSTILE);
    lines[0] = str(ts_a);
    ts_check("8 KB value", lines, 1, ET_W3C_TS_BAD_VALUE, "");

    memset(ts_a, 'a', HOSTILE);
    strcpy(ts_a + HOSTILE, "=1");
    lines[0] = str(ts_a);
    ts_check("8 KB key", lines, 1, ET_W3C_TS_BAD_KEY, "");

    memset(ts_a, 'a', HOSTILE);
    ts_a[HOSTILE] = '\0';
    lines[0] = str(ts_a);
    ts_check("8 KB without '='", lines, 1, ET_W3C_TS_BAD_MEMBER, "");

    memset(ts_a, ',', HOSTILE);
    ts_a[HOSTILE] = '\0';
    lines[0] = str(ts_a);
    ts_check("8 KB of commas", lines, 1, ET_W3C_OK, "");

    for (i = 0; i < HOSTILE; i++) {
        ts_a[i] = " ,\t"[i % 3];
    }

    ts_a[HOSTILE] = '\0';
    lines[0] = str(ts_a);
    ts_check("8 KB of OWS and commas", lines, 1, ET_W3C_OK, "");

    ts_a[0] = '\0';

    for (i = 0; strlen(ts_a) < HOSTILE; i++) {
        snprintf(key, sizeof(key), "k%zu", i);
        add_member(ts_a, key, 12);
    }

    lines[0] = str(ts_a);
    ts_check("8 KB of distinct members", lines, 1, ET_W3C_TS_TOO_MANY, "");

    memset(ts_a, '\0', HOSTILE);
    lines[0].len = HOSTILE;
    lines[0].data = (const uint8_t *) ts_a;
    ts_check("8 KB of NUL bytes", lines, 1, ET_W3C_TS_BAD_MEMBER, "");

    ts_a[100] = '=';
    ts_check("NUL bytes around '='", lines, 1, ET_W3C_TS_BAD_KEY, "");

    memcpy(ts_a, "a=", 2);
    memset(ts_a + 2, '\0', HOSTILE - 2);
    ts_check("value of NUL bytes", lines, 1, ET_W3C_TS_BAD_VALUE, "");

    for (i = 0; i < HOSTILE; i++) {
        ts_a[i] = (char) (i * 7919 >> 3);
    }

    ts_check("8 KB of binary", lines, 1, ET_W3C_TS_BAD_KEY, "");

    {
        et_str_t  many[1000];

        for (i = 0; i < 1000; i++) {
            many[i] = str(i % 2 ? "" : " , ");
        }

        ts_check("1000 empty lines", many, 1000, ET_W3C_OK, "");

        many[999] = str("a=1");
        ts_check("999 empty lines and a member", many, 1000, ET_W3C_OK,
                 "a=1");

        for (i = 0; i < 1000; i++) {
            many[i] = str("a=1");
        }

        ts_check("1000 lines of one member", many, 1000, ET_W3C_OK,
                 "a=1");
    }
}


int
main(void)
{
    test_traceparent();
    test_traceparent_write();
    test_reason();
    test_tracestate();

    return tap_done();
}
