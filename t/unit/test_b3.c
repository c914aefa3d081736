/*
 * et_b3: the single "b3" header and X-B3-*, case by case from the
 * openzipkin/b3-propagation text; where it is silent, OpenTelemetry's B3
 * propagator decides.
 */

#include "tap.h"
#include "et_b3.h"


#define T32  "80f198ee56343ba864fe8b2a57d3eff7"
#define T16  "a3ce929d0e0e4736"
#define S16  "e457b5a2e4d86bd1"
#define P16  "05e3ac9a4f6e3b90"
#define Z32  "00000000000000000000000000000000"
#define Z16  "0000000000000000"


typedef struct {
    const char  *in;
    et_b3_rc_t   rc;
    const char  *trace_id;    /* expected, 32 hex, for OK and DEFERRED */
    int          sampled;     /* for OK and SAMPLING_ONLY */
} b3_case_t;


static const b3_case_t  single[] = {
    /* the forms of the spec */
    { T32 "-" S16 "-1-" P16, ET_B3_OK, T32, 1 },
    { T32 "-" S16 "-1", ET_B3_OK, T32, 1 },
    { T32 "-" S16 "-0", ET_B3_OK, T32, 0 },
    { T32 "-" S16 "-d", ET_B3_OK, T32, 1 },            /* debug: sampled */
    { T32 "-" S16, ET_B3_DEFERRED, T32, 0 },           /* receiver decides */
    { T16 "-" S16 "-1", ET_B3_OK, "0000000000000000" T16, 1 },  /* 64-bit */
    { "0", ET_B3_SAMPLING_ONLY, NULL, 0 },
    { "1", ET_B3_SAMPLING_ONLY, NULL, 1 },
    { "d", ET_B3_SAMPLING_ONLY, NULL, 1 },
    { " \t" T32 "-" S16 "-1\t ", ET_B3_OK, T32, 1 },   /* OWS */

    /* rejected, with the reason */
    { "", ET_B3_EMPTY, NULL, 0 },
    { " \t ", ET_B3_EMPTY, NULL, 0 },
    { "2", ET_B3_BAD_SAMPLED, NULL, 0 },
    { "true", ET_B3_BAD_FORMAT, NULL, 0 },             /* only in X-B3 */
    { T32 "-" S16 "-2", ET_B3_BAD_SAMPLED, NULL, 0 },
    { T32 "-" S16 "-", ET_B3_BAD_SAMPLED, NULL, 0 },
    { T32 "-" S16 "-true", ET_B3_BAD_SAMPLED, NULL, 0 },
    { T32 "-" S16 "-1-" P16 "-x", ET_B3_BAD_FORMAT, NULL, 0 },
    { T32 "-" S16 "-1-" Z16, ET_B3_BAD_PARENT_ID, NULL, 0 },
    { T32 "-" S16 "-1-abc", ET_B3_BAD_PARENT_ID, NULL, 0 },
    { "80F198EE56343BA864FE8B2A57D3EFF7-" S16 "-1", ET_B3_BAD_TRACE_ID,
      NULL, 0 },                                       /* uppercase */
    { T32 "-E457B5A2E4D86BD1-1", ET_B3_BAD_SPAN_ID, NULL, 0 },
    { Z32 "-" S16 "-1", ET_B3_ZERO_TRACE_ID, NULL, 0 },
    { Z16 "-" S16 "-1", ET_B3_ZERO_TRACE_ID, NULL, 0 },
    { T32 "-" Z16 "-1", ET_B3_ZERO_SPAN_ID, NULL, 0 },
    { "80f198ee56343ba864fe8b2a57d3eff-" S16 "-1", ET_B3_BAD_TRACE_ID,
      NULL, 0 },                                       /* 31 digits */
    { "80f198ee56343ba86-" S16 "-1", ET_B3_BAD_TRACE_ID, NULL, 0 },
    { T32 "-e457b5a2e4d86bd-1", ET_B3_BAD_SPAN_ID, NULL, 0 },
    { T32 "-" T32 "-1", ET_B3_BAD_SPAN_ID, NULL, 0 },
    { T32, ET_B3_BAD_FORMAT, NULL, 0 },
    { T32 S16, ET_B3_BAD_FORMAT, NULL, 0 },
    { T32 "-" S16 "-1\tx", ET_B3_BAD_SAMPLED, NULL, 0 },
    { T32 "-" S16 "-1-" P16 "-" P16, ET_B3_BAD_FORMAT, NULL, 0 },
    { "-" S16 "-1", ET_B3_BAD_TRACE_ID, NULL, 0 },
    { "g0f198ee56343ba864fe8b2a57d3eff7-" S16 "-1", ET_B3_BAD_TRACE_ID,
      NULL, 0 },
};


typedef struct {
    const char  *trace_id, *span_id, *parent_id, *sampled, *flags;
    et_b3_rc_t   rc;
    int          sampled_out;
} b3multi_case_t;


static const b3multi_case_t  multi[] = {
    { T32, S16, P16, "1", "", ET_B3_OK, 1 },
    { T32, S16, "", "0", "", ET_B3_OK, 0 },
    { T32, S16, "", "true", "", ET_B3_OK, 1 },         /* old clients */
    { T32, S16, "", "false", "", ET_B3_OK, 0 },
    { T32, S16, "", "", "1", ET_B3_OK, 1 },            /* debug */
    { T32, S16, "", "0", "1", ET_B3_OK, 1 },           /* debug wins */
    { T32, S16, "", "", "", ET_B3_DEFERRED, 0 },
    { T32, S16, "", "", "0", ET_B3_DEFERRED, 0 },      /* flags 0: nothing */
    { T16, S16, "", "1", "", ET_B3_OK, 1 },
    { "", "", "", "0", "", ET_B3_SAMPLING_ONLY, 0 },
    { "", "", "", "1", "", ET_B3_SAMPLING_ONLY, 1 },
    { "", "", "", "", "1", ET_B3_SAMPLING_ONLY, 1 },
    { "", "", "", "", "", ET_B3_EMPTY, 0 },
    { T32, "", "", "1", "", ET_B3_MISSING_ID, 0 },
    { "", S16, "", "1", "", ET_B3_MISSING_ID, 0 },
    { "", "", P16, "1", "", ET_B3_MISSING_ID, 0 },
    { T32, S16, "", "d", "", ET_B3_BAD_SAMPLED, 0 },
    { T32, S16, "", "yes", "", ET_B3_BAD_SAMPLED, 0 },
    { T32, S16, "", "TRUE", "", ET_B3_BAD_SAMPLED, 0 },
    { Z32, S16, "", "1", "", ET_B3_ZERO_TRACE_ID, 0 },
    { T32, Z16, "", "1", "", ET_B3_ZERO_SPAN_ID, 0 },
    { T32, S16, Z16, "1", "", ET_B3_BAD_PARENT_ID, 0 },
    { T32 "0", S16, "", "1", "", ET_B3_BAD_TRACE_ID, 0 },
    { T32, "E457B5A2E4D86BD1", "", "1", "", ET_B3_BAD_SPAN_ID, 0 },
    { " " T32 "\t", "\t" S16, "", " 1 ", "", ET_B3_OK, 1 },
};


static et_str_t
str(const char *s)
{
    et_str_t  v;

    v.data = (const uint8_t *) s;
    v.len = strlen(s);

    return v;
}


int
main(void)
{
    size_t        i;
    uint8_t       hex[32], out[ET_B3_SINGLE_LEN + 1];
    et_b3_rc_t    rc;
    et_context_t  ctx;

    static const uint8_t  trace[16] = {
        0x80, 0xf1, 0x98, 0xee, 0x56, 0x34, 0x3b, 0xa8,
        0x64, 0xfe, 0x8b, 0x2a, 0x57, 0xd3, 0xef, 0xf7
    };
    static const uint8_t  span[8] = {
        0xe4, 0x57, 0xb5, 0xa2, 0xe4, 0xd8, 0x6b, 0xd1
    };

    for (i = 0; i < sizeof(single) / sizeof(single[0]); i++) {
        memset(&ctx, 0x5a, sizeof(ctx));
        rc = et_b3_parse((const uint8_t *) single[i].in,
                         strlen(single[i].in), &ctx);

        tap_ok(rc == single[i].rc, "b3 \"%s\": %s", single[i].in,
               et_b3_reason(single[i].rc));
        if (rc != single[i].rc) {
            printf("#   got: %s\n", et_b3_reason(rc));
        }

        if (single[i].trace_id && rc == single[i].rc) {
            et_hex_encode(hex, ctx.trace_id, 16);
            tap_is_mem(hex, 32, single[i].trace_id, "b3 \"%s\": trace id",
                       single[i].in);
            et_hex_encode(hex, ctx.span_id, 8);
            tap_is_mem(hex, 16, S16, "b3 \"%s\": span id", single[i].in);
        }

        if ((rc == ET_B3_OK || rc == ET_B3_SAMPLING_ONLY)
            && rc == single[i].rc)
        {
            tap_is_int(ctx.flags & ET_FLAG_SAMPLED,
                       single[i].sampled ? ET_FLAG_SAMPLED : 0,
                       "b3 \"%s\": sampled", single[i].in);
        }
    }

    for (i = 0; i < sizeof(multi) / sizeof(multi[0]); i++) {
        memset(&ctx, 0x5a, sizeof(ctx));
        rc = et_b3multi_parse(str(multi[i].trace_id), str(multi[i].span_id),
                              str(multi[i].parent_id), str(multi[i].sampled),
                              str(multi[i].flags), &ctx);

        tap_ok(rc == multi[i].rc,
               "b3multi \"%s\" \"%s\" \"%s\" \"%s\" \"%s\": %s",
               multi[i].trace_id, multi[i].span_id, multi[i].parent_id,
               multi[i].sampled, multi[i].flags, et_b3_reason(multi[i].rc));
        if (rc != multi[i].rc) {
            printf("#   got: %s\n", et_b3_reason(rc));
        }

        if ((rc == ET_B3_OK || rc == ET_B3_SAMPLING_ONLY)
            && rc == multi[i].rc)
        {
            tap_is_int(ctx.flags & ET_FLAG_SAMPLED,
                       multi[i].sampled_out ? ET_FLAG_SAMPLED : 0,
                       "b3multi case %zu: sampled", i);
        }
    }

    /* an 8 KB value is refused, not read past */
    {
        static char  big[8192];

        memset(big, 'a', sizeof(big) - 1);
        rc = et_b3_parse((const uint8_t *) big, sizeof(big) - 1, &ctx);
        tap_ok(rc == ET_B3_BAD_FORMAT, "b3: 8 KB of garbage is malformed");
    }

    /* the writer: 128-bit trace id, span id, 1/0, no parent */
    *et_b3_write(out, trace, span, ET_FLAG_SAMPLED | ET_FLAG_RANDOM) = '\0';
    tap_is_mem(out, strlen((char *) out), T32 "-" S16 "-1", "b3 written");
    *et_b3_write(out, trace, span, ET_FLAG_RANDOM) = '\0';
    tap_is_mem(out, strlen((char *) out), T32 "-" S16 "-0",
               "b3 written, unsampled");

    rc = et_b3_parse(out, ET_B3_SINGLE_LEN, &ctx);
    tap_ok(rc == ET_B3_OK && memcmp(ctx.trace_id, trace, 16) == 0
           && memcmp(ctx.span_id, span, 8) == 0 && ctx.flags == 0,
           "b3 written parses back");

    return tap_done();
}
