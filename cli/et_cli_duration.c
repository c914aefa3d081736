/*
 * Durations on the command line: "15m", "250ms", "1h30m", "1.5s"; and
 * sizes: "512k", "10g", as nginx reads them.
 */

#include <stdio.h>
#include <string.h>

#include "et_cli.h"


typedef struct {
    const char  *name;
    uint64_t     ns;
} et_cli_unit_t;


/* longest names first: "ms" before "m" */
static const et_cli_unit_t  et_cli_units[] = {
    { "ns", 1ULL },
    { "us", 1000ULL },
    { "ms", 1000000ULL },
    { "s",  1000000000ULL },
    { "m",  60ULL * 1000000000ULL },
    { "h",  3600ULL * 1000000000ULL },
    { "d",  86400ULL * 1000000000ULL }
};


int
et_cli_duration_parse(const char *s, uint64_t *ns, const char **err)
{
    size_t      i, n, len;
    uint64_t    whole, frac, scale, total, unit, v;
    const char  *p;

    if (s == NULL || *s == '\0') {
        *err = "empty duration";
        return ET_ERROR;
    }

    total = 0;
    p = s;

    while (*p) {
        if (*p < '0' || *p > '9') {
            *err = "a duration is a number and a unit (ms, s, m, h, d)";
            return ET_ERROR;
        }

        whole = 0;

        for (n = 0; *p >= '0' && *p <= '9'; p++, n++) {
            if (n >= 15) {
                *err = "duration too long";
                return ET_ERROR;
            }

            whole = whole * 10 + (uint64_t) (*p - '0');
        }

        frac = 0;
        scale = 1;

        if (*p == '.') {
            p++;

            if (*p < '0' || *p > '9') {
                *err = "a duration is a number and a unit (ms, s, m, h, d)";
                return ET_ERROR;
            }

            for ( /* void */ ; *p >= '0' && *p <= '9'; p++) {
                /* digits beyond nanoseconds of a day do not matter */
                if (scale < 100000000000000ULL) {
                    frac = frac * 10 + (uint64_t) (*p - '0');
                    scale *= 10;
                }
            }
        }

        unit = 0;

        if (*p == '\0' && p - s > 0 && total == 0) {
            /* a bare number: seconds, as sleep(1) reads it */
            unit = ET_CLI_NS_PER_S;

        } else {
            for (i = 0; i < sizeof(et_cli_units) / sizeof(et_cli_units[0]);
                 i++)
            {
                len = strlen(et_cli_units[i].name);

                if (strncmp(p, et_cli_units[i].name, len) == 0) {
                    unit = et_cli_units[i].ns;
                    p += len;
                    break;
                }
            }

            if (unit == 0) {
                *err = "unknown unit (ns, us, ms, s, m, h, d)";
                return ET_ERROR;
            }
        }

        if (whole > UINT64_MAX / unit) {
            *err = "duration too long";
            return ET_ERROR;
        }

        v = whole * unit;

        /* frac / scale of a unit; unit / scale first would lose digits */
        if (frac) {
            if (unit >= scale) {
                v += frac * (unit / scale);

            } else {
                v += frac / (scale / unit);
            }
        }

        if (v > UINT64_MAX - total) {
            *err = "duration too long";
            return ET_ERROR;
        }

        total += v;
    }

    *ns = total;

    return ET_OK;
}


char *
et_cli_duration_ms(char *buf, size_t size, uint64_t ns)
{
    snprintf(buf, size, "%llu.%03llums",
             (unsigned long long) (ns / ET_CLI_NS_PER_MS),
             (unsigned long long) (ns % ET_CLI_NS_PER_MS / 1000));

    return buf;
}


static const char  et_cli_size_syntax[] =
    "a size is a number of bytes, with k, m or g after it (10g)";


int
et_cli_size_parse(const char *s, uint64_t *bytes, const char **err)
{
    uint64_t     v, unit;
    const char  *p;

    if (s == NULL || *s < '0' || *s > '9') {
        *err = et_cli_size_syntax;
        return ET_ERROR;
    }

    v = 0;

    for (p = s; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - 9) / 10) {
            *err = "size too big";
            return ET_ERROR;
        }

        v = v * 10 + (uint64_t) (*p - '0');
    }

    switch (*p) {

    case '\0':
        unit = 1;
        break;

    case 'k': case 'K':
        unit = 1ULL << 10;
        break;

    case 'm': case 'M':
        unit = 1ULL << 20;
        break;

    case 'g': case 'G':
        unit = 1ULL << 30;
        break;

    default:
        *err = et_cli_size_syntax;
        return ET_ERROR;
    }

    if (unit != 1 && p[1] != '\0') {
        *err = et_cli_size_syntax;
        return ET_ERROR;
    }

    if (v > UINT64_MAX / unit) {
        *err = "size too big";
        return ET_ERROR;
    }

    *bytes = v * unit;

    return ET_OK;
}
