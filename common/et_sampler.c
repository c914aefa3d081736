/*
 * Parent-based sampler: the ratio part.  The decision for a new root
 * follows OpenTelemetry's TraceIdRatioBased sampler on the trace id's low
 * 56 bits (bytes 9..15, big-endian), the bits W3C Trace Context Level 2
 * requires to be random when the random flag is set.
 */

#include "et_sampler.h"


#define ET_SAMPLER_SCALE  72057594037927936.0     /* 2^56 */

/* fraction digits beyond this cannot change a double in [0, 1] */
#define ET_SAMPLER_DIGITS_MAX  18


int
et_sampler_init(et_sampler_t *s, double ratio)
{
    /* written so that NaN fails too */
    if (!(ratio >= 0.0 && ratio <= 1.0)) {
        return ET_ERROR;
    }

    /* exact: scaling by a power of two only changes the exponent */
    s->threshold = (uint64_t) (ratio * ET_SAMPLER_SCALE);
    s->always = (ratio == 1.0);
    s->never = (ratio == 0.0);

    return ET_OK;
}


int
et_sampler_parse_ratio(const uint8_t *p, size_t len, double *ratio)
{
    size_t     i, ndigits, nfrac;
    uint64_t   ipart, mantissa;
    double     scale;
    unsigned   dot, nonzero_frac;

    ipart = 0;
    mantissa = 0;
    scale = 1.0;
    ndigits = 0;
    nfrac = 0;
    dot = 0;
    nonzero_frac = 0;

    for (i = 0; i < len; i++) {

        if (p[i] == '.') {
            if (dot) {
                return ET_ERROR;
            }

            dot = 1;
            continue;
        }

        if (p[i] < '0' || p[i] > '9') {
            return ET_ERROR;
        }

        ndigits++;

        if (!dot) {
            ipart = ipart * 10 + (p[i] - '0');

            if (ipart > 1) {
                return ET_ERROR;
            }

            continue;
        }

        if (p[i] != '0') {
            nonzero_frac = 1;
        }

        if (nfrac < ET_SAMPLER_DIGITS_MAX) {
            mantissa = mantissa * 10 + (p[i] - '0');
            scale *= 10.0;
            nfrac++;
        }
    }

    if (ndigits == 0 || (ipart == 1 && nonzero_frac)) {
        return ET_ERROR;
    }

    *ratio = (double) ipart + (double) mantissa / scale;

    return ET_OK;
}


int
et_sampler_sampled(const et_sampler_t *s,
    const uint8_t trace_id[ET_TRACE_ID_LEN])
{
    uint64_t  low;

    if (s->always) {
        return 1;
    }

    if (s->never) {
        return 0;
    }

    low = (uint64_t) trace_id[9] << 48
          | (uint64_t) trace_id[10] << 40
          | (uint64_t) trace_id[11] << 32
          | (uint64_t) trace_id[12] << 24
          | (uint64_t) trace_id[13] << 16
          | (uint64_t) trace_id[14] << 8
          | (uint64_t) trace_id[15];

    return low < s->threshold;
}
