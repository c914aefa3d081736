/*
 * libFuzzer: the span-to-entry encoder fed arbitrary attribute bytes.  The
 * entry must be exactly et_entry_size() bytes, within the bound
 * et_entry_size_max(), and parse back, with hiredis's own reader, as one
 * command whose arguments are the values given (cut at
 * value_max), so no byte can split the entry or add a field.
 */

#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "et_keep.h"
#include "et_stream.h"


#define PIECES  16


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t          i, n, start, len, nattrs, ntries, argc;
    uint8_t        *buf, *end, prefix[ET_STREAM_PREFIX_SIZE(15)];
    et_str_t        piece[PIECES];
    et_span_t       span;
    et_attr_t       attrs[PIECES];
    et_try_t        tries[2];
    et_stream_t     st;
    redisReader    *reader;
    redisReply     *reply;
    void           *r;

    static const et_key_t  *keys[] = {
        &et_key_http_request_method, &et_key_url_path, &et_key_url_query,
        &et_key_user_agent_original, &et_key_server_address,
        &et_key_client_address
    };

    if (size < 1 + ET_TRACE_ID_LEN + 2 * ET_SPAN_ID_LEN) {
        return 0;
    }

    memset(&span, 0, sizeof(span));
    memcpy(span.trace_id, data + 1, ET_TRACE_ID_LEN);
    memcpy(span.span_id, data + 1 + ET_TRACE_ID_LEN, ET_SPAN_ID_LEN);
    memcpy(span.parent_id, data + 1 + ET_TRACE_ID_LEN + ET_SPAN_ID_LEN,
           ET_SPAN_ID_LEN);
    span.has_parent = data[0] & 1;
    span.kind = (data[0] >> 1) & 1;
    span.status = (data[0] >> 2) & 1;
    span.sampling = et_sampling_field((data[0] >> 3) & 3);
    /* small times, and 19-digit ones whose seconds may differ */
    span.start_ns = (uint64_t) data[0] * 1000003;
    span.end_ns = span.start_ns + data[1];

    if (data[0] & 1) {
        span.start_ns += 1700000000000000000ULL;
        span.end_ns = span.start_ns + (uint64_t) data[1] * 7919993;
    }

    data += 1 + ET_TRACE_ID_LEN + 2 * ET_SPAN_ID_LEN;
    size -= 1 + ET_TRACE_ID_LEN + 2 * ET_SPAN_ID_LEN;

    /* the rest: pieces split on '\n' */
    n = 0;
    start = 0;

    for (i = 0; i <= size && n < PIECES; i++) {
        if (i == size || data[i] == '\n') {
            piece[n].data = data + start;
            piece[n].len = i - start;
            n++;
            start = i + 1;
        }
    }

    span.name = piece[0];

    if (n > 1) {
        span.tracestate = piece[1];
    }

    nattrs = 0;

    for (i = 2; i < n && nattrs < 6; i++) {
        attrs[nattrs].key = keys[nattrs];
        attrs[nattrs].type = (piece[i].len & 1) ? ET_ATTR_INT : ET_ATTR_STRING;
        attrs[nattrs].str = piece[i];
        attrs[nattrs].num = (int64_t) (piece[i].len * 0x9e3779b97f4a7c15ULL);
        nattrs++;
    }

    ntries = 0;

    for ( /* void */ ; i < n && ntries < 2; i++) {
        tries[ntries].peer = piece[i];
        tries[ntries].status = (unsigned) piece[i].len;
        tries[ntries].connect_ms = (int64_t) piece[i].len - 3;
        tries[ntries].header_ms = -1;
        tries[ntries].response_ms = (int64_t) piece[i].len * 1000;
        ntries++;
    }

    span.attrs = attrs;
    span.nattrs = nattrs;
    span.tries = tries;
    span.ntries = ntries;

    if (et_stream_init(&st, prefix, (const uint8_t *) "edgetrace:spans",
                       15, 1000, 1, 64)
        != ET_OK)
    {
        __builtin_trap();
    }

    len = et_entry_size(&st, &span);

    /* the queue reserves the bound: it must never be short */
    if (et_entry_size_max(&st, &span) < len) {
        __builtin_trap();
    }

    buf = malloc(len);
    end = et_entry_write(&st, &span, buf);

    if ((size_t) (end - buf) != len) {
        __builtin_trap();
    }

    /* one command, nothing left over */
    reader = redisReaderCreate();
    redisReaderFeed(reader, (const char *) buf, len);

    if (redisReaderGetReply(reader, &r) != REDIS_OK || r == NULL) {
        __builtin_trap();
    }

    reply = r;

    /* XADD key MAXLEN ~ N * + 8 fixed fields + the optional ones */
    argc = 6 + 2 * (8 + span.has_parent + (span.tracestate.len != 0)
                    + (span.sampling != NULL) + nattrs + ntries);

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != argc) {
        __builtin_trap();
    }

    for (i = 0; i < reply->elements; i++) {
        if (reply->element[i]->type != REDIS_REPLY_STRING) {
            __builtin_trap();
        }
    }

    freeReplyObject(reply);

    if (redisReaderGetReply(reader, &r) != REDIS_OK || r != NULL) {
        __builtin_trap();
    }

    redisReaderFree(reader);
    free(buf);

    return 0;
}
