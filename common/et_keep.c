/*
 * Outcome rules (docs/nginx.md "edgetrace_keep"): status classes and codes,
 * and durations written as nginx writes times.
 */

#include "et_keep.h"


#define ET_NS_MS  1000000ULL


void
et_keep_init(et_keep_t *k)
{
    memset(k, 0, sizeof(et_keep_t));
}


static int
et_keep_prefix(const uint8_t *p, size_t len, const char *prefix, size_t n)
{
    return len >= n && memcmp(p, prefix, n) == 0;
}


/* "5xx" or "503": the first and the last code named, or ET_ERROR */
static int
et_keep_parse_status(const uint8_t *p, size_t len, unsigned *first,
    unsigned *last)
{
    unsigned  c;

    if (len != 3 || p[0] < '1' || p[0] > '5') {
        return ET_ERROR;
    }

    c = (unsigned) (p[0] - '0') * 100;

    if ((p[1] == 'x' || p[1] == 'X') && (p[2] == 'x' || p[2] == 'X')) {
        *first = c;
        *last = c + 99;
        return ET_OK;
    }

    if (p[1] < '0' || p[1] > '9' || p[2] < '0' || p[2] > '9') {
        return ET_ERROR;
    }

    c += (unsigned) (p[1] - '0') * 10 + (unsigned) (p[2] - '0');

    *first = c;
    *last = c;

    return ET_OK;
}


int
et_keep_parse_duration(const uint8_t *p, size_t len, uint64_t *ns,
    const char **why)
{
    size_t     i;
    unsigned   u, prev, digits;
    uint64_t   v, total, scale;

    static const uint64_t  scales[] = {
        86400000 * ET_NS_MS, 3600000 * ET_NS_MS, 60000 * ET_NS_MS,
        1000 * ET_NS_MS, ET_NS_MS
    };

    if (len == 0) {
        *why = "has no duration";
        return ET_ERROR;
    }

    total = 0;
    prev = 0;
    i = 0;

    while (i < len) {
        v = 0;
        digits = 0;

        for ( /* void */ ; i < len && p[i] >= '0' && p[i] <= '9'; i++) {
            v = v * 10 + (uint64_t) (p[i] - '0');
            digits++;

            if (v > ET_KEEP_SLOWER_MAX / ET_NS_MS) {
                *why = "is longer than 1d";
                return ET_ERROR;
            }
        }

        if (digits == 0) {
            *why = "is not a duration: digits and a unit, as 500ms or 1s";
            return ET_ERROR;
        }

        /* units from the longest: d, h, m, s, ms (0: none) */

        if (i == len) {
            if (prev != 0) {
                *why = "has digits without a unit after a unit";
                return ET_ERROR;
            }

            u = 4;                      /* digits alone: seconds */

        } else if (p[i] == 'm' && i + 1 < len && p[i + 1] == 's') {
            u = 5;
            i += 2;

        } else {
            switch (p[i]) {
            case 'd': u = 1; break;
            case 'h': u = 2; break;
            case 'm': u = 3; break;
            case 's': u = 4; break;
            default:  u = 0; break;
            }

            i++;
        }

        if (u == 0) {
            *why = "has a unit other than ms, s, m, h or d";
            return ET_ERROR;
        }

        if (u <= prev) {
            *why = "repeats a unit or writes a longer one after a shorter";
            return ET_ERROR;
        }

        prev = u;
        scale = scales[u - 1];

        if (v > ET_KEEP_SLOWER_MAX / scale
            || total + v * scale > ET_KEEP_SLOWER_MAX)
        {
            *why = "is longer than 1d";
            return ET_ERROR;
        }

        total += v * scale;
    }

    if (total == 0) {
        *why = "must be longer than 0";
        return ET_ERROR;
    }

    *ns = total;

    return ET_OK;
}


int
et_keep_parse(et_keep_t *k, const uint8_t *p, size_t len, const char **why)
{
    unsigned  s, first, last;
    uint64_t  ns;

    if (et_keep_prefix(p, len, "status=", sizeof("status=") - 1)) {
        p += sizeof("status=") - 1;
        len -= sizeof("status=") - 1;

        if (et_keep_parse_status(p, len, &first, &last) != ET_OK) {
            *why = "is not a status: a code from 100 to 599, or a class "
                   "from 1xx to 5xx";
            return ET_ERROR;
        }

        for (s = first; s <= last; s++) {
            k->status[s / 64] |= (uint64_t) 1 << (s % 64);
        }

        k->nrules++;

        return ET_OK;
    }

    if (et_keep_prefix(p, len, "slower=", sizeof("slower=") - 1)) {
        if (et_keep_parse_duration(p + sizeof("slower=") - 1,
                                   len - (sizeof("slower=") - 1), &ns, why)
            != ET_OK)
        {
            return ET_ERROR;
        }

        /* any one rule keeps: the shortest duration decides */
        if (k->slower_ns == 0 || ns < k->slower_ns) {
            k->slower_ns = ns;
        }

        k->nrules++;

        return ET_OK;
    }

    return ET_DECLINED;
}


void
et_keep_merge(et_keep_t *to, const et_keep_t *from)
{
    size_t  i;

    for (i = 0; i < sizeof(to->status) / sizeof(to->status[0]); i++) {
        to->status[i] |= from->status[i];
    }

    if (from->slower_ns
        && (to->slower_ns == 0 || from->slower_ns < to->slower_ns))
    {
        to->slower_ns = from->slower_ns;
    }

    to->nrules += from->nrules;
}


/* by ET_SAMPLING_*: only head and outcome are exported */
const et_str_t  et_sampling_values[4] = {
    et_null_string, et_string("$4\r\nhead\r\n"),
    et_string("$7\r\noutcome\r\n"), et_null_string
};


et_str_t
et_sampling_name(unsigned sampling)
{
    static const et_str_t  names[] = {
        et_string(""), et_string("head"), et_string("outcome"),
        et_string("limited")
    };

    return names[sampling < 4 ? sampling : 0];
}
