/*
 * Unit tests: cli/et_cli_utf8.c, raw bytes made valid UTF-8 for JSON and
 * safe for terminals.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "et_cli.h"
#include "tap.h"


#define nelts(a)  (sizeof(a) / sizeof((a)[0]))
#define R         "\xef\xbf\xbd"
#define T(s)      (s), sizeof(s) - 1


int
main(void)
{
    size_t    i, n;
    uint8_t  *out;
    char     *buf;
    size_t    size;
    FILE     *f;

    static const struct {
        const char  *what;
        const char  *in;
        size_t       len;
        const char  *out;
        int          valid;
    } cases[] = {
        { "ASCII", T("GET /x?a=b"), "GET /x?a=b", 1 },
        { "empty", T(""), "", 1 },
        { "NUL kept", T("a\0b"), "a\0b", 1 },
        { "2-byte", T("\xc3\xa9"), "\xc3\xa9", 1 },
        { "3-byte", T("\xe2\x82\xac"), "\xe2\x82\xac", 1 },
        { "4-byte", T("\xf0\x9f\x98\x80"), "\xf0\x9f\x98\x80", 1 },
        { "U+10FFFF", T("\xf4\x8f\xbf\xbf"), "\xf4\x8f\xbf\xbf", 1 },
        { "U+FFFD itself", T(R), R, 1 },
        { "stray continuation", T("a\x80z"), "a" R "z", 0 },
        { "0xff 0xfe", T("\xff\xfe"), R R, 0 },
        { "overlong /", T("\xc0\xaf"), R R, 0 },
        { "overlong 3-byte", T("\xe0\x80\xaf"), R R R, 0 },
        { "surrogate", T("\xed\xa0\x80"), R R R, 0 },
        { "above U+10FFFF", T("\xf4\x90\x80\x80"), R R R R, 0 },
        { "0xf5", T("\xf5\x80\x80\x80"), R R R R, 0 },
        { "truncated at end", T("ab\xe2\x82"), "ab" R R, 0 },
        { "truncated mid", T("\xe2\x82z"), R R "z", 0 },
        { "4-byte cut", T("\xf0\x9f\x98"), R R R, 0 },
    };

    for (i = 0; i < nelts(cases); i++) {
        out = malloc(ET_CLI_UTF8_MAX(cases[i].len) + 1);

        if (out == NULL) {
            return 1;
        }

        n = et_cli_utf8_sanitize((const uint8_t *) cases[i].in, cases[i].len,
                                 out);
        tap_ok(n == (cases[i].valid ? cases[i].len : strlen(cases[i].out))
               && memcmp(out, cases[i].out, n) == 0, "sanitize: %s",
               cases[i].what);
        tap_is_int(et_cli_utf8_valid((const uint8_t *) cases[i].in,
                                     cases[i].len), cases[i].valid,
                   "valid: %s", cases[i].what);
        tap_ok(et_cli_utf8_valid(out, n), "sanitized is valid: %s",
               cases[i].what);
        free(out);
    }

    /* terminals: controls and invalid bytes escaped, UTF-8 kept */
    f = open_memstream(&buf, &size);

    if (f == NULL) {
        return 1;
    }

    n = et_cli_print_safe(f, (const uint8_t *) "a\x1b[31m\\\xc3\xa9\xff"
                          "\xc2\x9b\n", 13);
    fclose(f);
    tap_is_mem(buf, size, "a\\x1b[31m\\x5c\xc3\xa9\\xff\\xc2\\x9b\\x0a",
               "print_safe escapes ESC, backslash, invalid, C1, newline");
    tap_is_int(n, 1 + 4 + 4 + 4 + 1 + 4 + 8 + 4, "print_safe columns");
    free(buf);

    return tap_done();
}
