/*
 * Counting Redis replies without building them.
 */


#include <string.h>

#include "et_resp.h"


#define ET_RESP_TYPE     0    /* the first byte of a reply */
#define ET_RESP_LINE     1    /* a status, integer or error line */
#define ET_RESP_LEN      2    /* a bulk string's length */
#define ET_RESP_LEN_LF   3
#define ET_RESP_BULK     4    /* its bytes */
#define ET_RESP_BULK_CR  5
#define ET_RESP_BULK_LF  6

#define ET_RESP_ERRLINE  7    /* an error line, its text kept */

/* a bulk reply longer than this is not an XADD answer */
#define ET_RESP_BULK_MAX  (512 * 1024 * 1024)


/*
 * The common case: a whole bulk reply (an entry id) in the buffer,
 * "$<len>\r\n", len bytes, "\r\n".  Returns its end, or NULL to leave it
 * to the state machine, byte by byte: a reply cut between two reads, a
 * length of more than 8 digits, anything malformed.
 */
static inline const uint8_t *
et_resp_bulk(const uint8_t *p, const uint8_t *end)
{
    size_t          len;
    const uint8_t  *q, *last;

    /* entry ids are 3 to 41 bytes long: two digits, most of the time */
    if (end - p >= 5
        && (unsigned) (p[1] - '0') < 10 && (unsigned) (p[2] - '0') < 10
        && p[3] == '\r' && p[4] == '\n')
    {
        len = (size_t) (p[1] - '0') * 10 + (size_t) (p[2] - '0');
        q = p + 5;

    } else {
        len = 0;
        q = p + 1;
        last = (end - q > 8) ? q + 8 : end;

        while (q < last && *q >= '0' && *q <= '9') {
            len = len * 10 + (size_t) (*q++ - '0');
        }

        if (q == p + 1 || end - q < 2 || q[0] != '\r' || q[1] != '\n') {
            return NULL;
        }

        q += 2;
    }

    if ((size_t) (end - q) < len + 2 || q[len] != '\r' || q[len + 1] != '\n')
    {
        return NULL;
    }

    return q + len + 2;
}


void
et_resp_init(et_resp_t *rs)
{
    memset(rs, 0, sizeof(et_resp_t));
    rs->state = ET_RESP_TYPE;
}


/*
 * Both scanners: with "stop", the scan ends after the first error reply
 * completed, its end returned in *last; otherwise *last is left alone.
 */
static inline int
et_resp_run(et_resp_t *rs, const uint8_t *p, size_t n, uint64_t *ok,
    uint64_t *errors, int stop, const uint8_t **last)
{
    size_t          k;
    uint8_t         c;
    const uint8_t  *end, *nl;

    end = p + n;

    while (p < end) {

        switch (rs->state) {

        case ET_RESP_TYPE:

            /* a run of entry ids, as a pipelined batch of XADD gets */
            while (*p == '$' && (nl = et_resp_bulk(p, end)) != NULL) {
                (*ok)++;
                p = nl;

                if (p == end) {
                    return ET_OK;
                }
            }

            c = *p++;

            switch (c) {
            case '$':
                rs->state = ET_RESP_LEN;
                rs->len = 0;
                rs->digits = 0;
                rs->negative = 0;
                break;

            case '+':
            case ':':
                rs->state = ET_RESP_LINE;
                break;

            case '-':
                rs->state = ET_RESP_ERRLINE;
                rs->error_len = 0;
                break;

            default:
                return ET_ERROR;
            }

            break;

        case ET_RESP_LINE:
        case ET_RESP_ERRLINE:
            nl = memchr(p, '\n', (size_t) (end - p));
            k = (size_t) ((nl ? nl : end) - p);

            if (rs->state == ET_RESP_ERRLINE) {
                if (k > sizeof(rs->error) - 1 - rs->error_len) {
                    k = sizeof(rs->error) - 1 - rs->error_len;
                }

                memcpy(rs->error + rs->error_len, p, k);
                rs->error_len += k;
            }

            if (nl == NULL) {
                p = end;
                break;
            }

            p = nl + 1;

            if (rs->state == ET_RESP_ERRLINE) {
                if (rs->error_len && rs->error[rs->error_len - 1] == '\r') {
                    rs->error_len--;
                }

                rs->error[rs->error_len] = '\0';
                (*errors)++;

                if (stop) {
                    rs->state = ET_RESP_TYPE;
                    *last = p;
                    return ET_OK;
                }

            } else {
                (*ok)++;
            }

            rs->state = ET_RESP_TYPE;
            break;

        case ET_RESP_LEN:
            c = *p++;

            if (c >= '0' && c <= '9') {
                rs->len = rs->len * 10 + (c - '0');
                rs->digits++;

                if (rs->len > ET_RESP_BULK_MAX) {
                    return ET_ERROR;
                }

            } else if (c == '-' && rs->digits == 0 && !rs->negative) {
                rs->negative = 1;

            } else if (c == '\r' && rs->digits) {
                rs->state = ET_RESP_LEN_LF;

            } else {
                return ET_ERROR;
            }

            break;

        case ET_RESP_LEN_LF:
            if (*p++ != '\n') {
                return ET_ERROR;
            }

            if (rs->negative) {

                /* "$-1": a nil, still an answer */
                if (rs->len != 1) {
                    return ET_ERROR;
                }

                (*ok)++;
                rs->state = ET_RESP_TYPE;
                break;
            }

            rs->state = rs->len ? ET_RESP_BULK : ET_RESP_BULK_CR;
            break;

        case ET_RESP_BULK:
            k = (size_t) (end - p);

            if (k > rs->len) {
                k = (size_t) rs->len;
            }

            p += k;
            rs->len -= k;

            if (rs->len == 0) {
                rs->state = ET_RESP_BULK_CR;
            }

            break;

        case ET_RESP_BULK_CR:
            if (*p++ != '\r') {
                return ET_ERROR;
            }

            rs->state = ET_RESP_BULK_LF;
            break;

        default: /* ET_RESP_BULK_LF */
            if (*p++ != '\n') {
                return ET_ERROR;
            }

            (*ok)++;
            rs->state = ET_RESP_TYPE;
            break;
        }
    }

    return ET_OK;
}


int
et_resp_scan(et_resp_t *rs, const uint8_t *p, size_t n, uint64_t *ok,
    uint64_t *errors)
{
    return et_resp_run(rs, p, n, ok, errors, 0, NULL);
}


int
et_resp_scan_error(et_resp_t *rs, const uint8_t *p, size_t n, size_t *used,
    uint64_t *ok, uint64_t *errors)
{
    int             rc;
    const uint8_t  *last;

    last = p + n;

    rc = et_resp_run(rs, p, n, ok, errors, 1, &last);

    *used = (size_t) (last - p);

    return rc;
}
