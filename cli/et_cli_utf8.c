/*
 * Attribute values are whatever bytes a client sent.  JSON must be UTF-8
 * and terminals must not be driven by them: values are made valid UTF-8
 * (RFC 3629) before they reach the JSON library, and escaped before they
 * reach a terminal.
 */

#include "et_cli.h"


/*
 * The length of the valid UTF-8 sequence at "p" (at most "len" bytes
 * available), 0 when the bytes there do not start one.
 */
static size_t
et_cli_utf8_seq(const uint8_t *p, size_t len)
{
    uint8_t  c;
    size_t   n, i;
    uint8_t  lo, hi;

    c = p[0];

    if (c < 0x80) {
        return 1;
    }

    /* the first continuation byte's range rules out overlong forms,
     * surrogates and code points above U+10FFFF (RFC 3629, section 4) */
    lo = 0x80;
    hi = 0xbf;

    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;

    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;

        if (c == 0xe0) {
            lo = 0xa0;

        } else if (c == 0xed) {
            hi = 0x9f;
        }

    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;

        if (c == 0xf0) {
            lo = 0x90;

        } else if (c == 0xf4) {
            hi = 0x8f;
        }

    } else {
        return 0;
    }

    if (len < n) {
        return 0;
    }

    if (p[1] < lo || p[1] > hi) {
        return 0;
    }

    for (i = 2; i < n; i++) {
        if (p[i] < 0x80 || p[i] > 0xbf) {
            return 0;
        }
    }

    return n;
}


int
et_cli_utf8_valid(const uint8_t *p, size_t len)
{
    size_t  i, n;

    for (i = 0; i < len; i += n) {
        n = et_cli_utf8_seq(p + i, len - i);

        if (n == 0) {
            return 0;
        }
    }

    return 1;
}


size_t
et_cli_utf8_sanitize(const uint8_t *p, size_t len, uint8_t *dst)
{
    size_t    i, n;
    uint8_t  *d;

    d = dst;

    for (i = 0; i < len; i += n) {
        n = et_cli_utf8_seq(p + i, len - i);

        if (n == 0) {
            /* U+FFFD REPLACEMENT CHARACTER, one per invalid byte */
            *d++ = 0xef;
            *d++ = 0xbf;
            *d++ = 0xbd;
            n = 1;
            continue;
        }

        while (n--) {
            *d++ = p[i++];
        }

        n = 0;
    }

    return (size_t) (d - dst);
}


size_t
et_cli_print_safe(FILE *f, const uint8_t *p, size_t len)
{
    size_t  i, n, cols;

    cols = 0;

    for (i = 0; i < len; i += n) {
        n = et_cli_utf8_seq(p + i, len - i);

        if (n == 1 && p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\') {
            fputc(p[i], f);
            cols++;
            continue;
        }

        /* C1 controls (U+0080..U+009F) drive terminals too */
        if (n >= 2 && !(n == 2 && p[i] == 0xc2 && p[i + 1] < 0xa0)) {
            fwrite(p + i, 1, n, f);
            cols++;
            continue;
        }

        fprintf(f, "\\x%02x", p[i]);
        cols += 4;
        n = 1;
    }

    return cols;
}
