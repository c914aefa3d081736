/*
 * Unit tests: cli/et_cli_duration.c, durations and sizes on the command
 * line.
 */

#include <string.h>

#include "et_cli.h"
#include "tap.h"


#define nelts(a)  (sizeof(a) / sizeof((a)[0]))

#define MS  1000000ULL
#define S   1000000000ULL


int
main(void)
{
    int          rc;
    size_t       i;
    uint64_t     ns;
    const char  *err;
    char         buf[32];

    static const struct {
        const char  *in;
        int          rc;
        uint64_t     ns;
    } cases[] = {
        { "15m", ET_OK, 15 * 60 * S },
        { "250ms", ET_OK, 250 * MS },
        { "1h30m", ET_OK, 90 * 60 * S },
        { "1.5s", ET_OK, 1500 * MS },
        { "0.25ms", ET_OK, 250000 },
        { "2d", ET_OK, 2 * 86400 * S },
        { "10us", ET_OK, 10000 },
        { "7ns", ET_OK, 7 },
        { "30", ET_OK, 30 * S },
        { "0", ET_OK, 0 },
        { "1m1s1ms", ET_OK, 61 * S + MS },
        { "0.1234567891s", ET_OK, 123456789 },
        { "", ET_ERROR, 0 },
        { "m", ET_ERROR, 0 },
        { "1x", ET_ERROR, 0 },
        { "1.s", ET_ERROR, 0 },
        { ".5s", ET_ERROR, 0 },
        { "-1s", ET_ERROR, 0 },
        { "1h30", ET_ERROR, 0 },
        { "1 s", ET_ERROR, 0 },
        { "213504d", ET_ERROR, 0 },
        { "1000000000000000s", ET_ERROR, 0 },
        { "200000d200000d", ET_ERROR, 0 },
    };

    static const struct {
        const char  *in;
        int          rc;
        uint64_t     bytes;
    } sizes[] = {
        { "10g", ET_OK, 10ULL << 30 },
        { "10G", ET_OK, 10ULL << 30 },
        { "4m", ET_OK, 4ULL << 20 },
        { "512k", ET_OK, 512ULL << 10 },
        { "1000", ET_OK, 1000 },
        { "0", ET_OK, 0 },
        { "17179869183g", ET_OK, 17179869183ULL << 30 },
        { "17179869184g", ET_ERROR, 0 },
        { "99999999999999999999", ET_ERROR, 0 },
        { "", ET_ERROR, 0 },
        { "g", ET_ERROR, 0 },
        { "10x", ET_ERROR, 0 },
        { "10gb", ET_ERROR, 0 },
        { "1.5g", ET_ERROR, 0 },
        { "-1m", ET_ERROR, 0 },
        { " 1m", ET_ERROR, 0 },
        { "1 m", ET_ERROR, 0 },
        { "10t", ET_ERROR, 0 },
    };

    for (i = 0; i < nelts(cases); i++) {
        ns = 12345;
        err = NULL;

        if (cases[i].rc == ET_OK) {
            tap_ok(et_cli_duration_parse(cases[i].in, &ns, &err) == ET_OK
                   && ns == cases[i].ns, "\"%s\"", cases[i].in);

        } else {
            tap_ok(et_cli_duration_parse(cases[i].in, &ns, &err) == ET_ERROR
                   && err != NULL && ns == 12345, "\"%s\" refused: %s",
                   cases[i].in, err ? err : "(no reason)");
        }
    }

    tap_ok(et_cli_duration_parse(NULL, &ns, &err) == ET_ERROR, "NULL");

    et_cli_duration_ms(buf, sizeof(buf), 12345678);
    tap_is_mem(buf, strlen(buf), "12.345ms", "12345678ns as ms");
    et_cli_duration_ms(buf, sizeof(buf), 999);
    tap_is_mem(buf, strlen(buf), "0.000ms", "below a microsecond");
    et_cli_duration_ms(buf, sizeof(buf), 3600 * S);
    tap_is_mem(buf, strlen(buf), "3600000.000ms", "an hour");

    for (i = 0; i < nelts(sizes); i++) {
        ns = 12345;
        err = NULL;

        if (sizes[i].rc == ET_OK) {
            tap_ok(et_cli_size_parse(sizes[i].in, &ns, &err) == ET_OK
                   && ns == sizes[i].bytes, "size \"%s\"", sizes[i].in);

        } else {
            rc = et_cli_size_parse(sizes[i].in, &ns, &err);
            tap_ok(rc == ET_ERROR && err != NULL && ns == 12345,
                   "size \"%s\" refused: %s", sizes[i].in,
                   err ? err : "(no reason)");
        }
    }

    tap_ok(et_cli_size_parse(NULL, &ns, &err) == ET_ERROR, "size NULL");

    return tap_done();
}
