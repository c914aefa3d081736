/* libFuzzer: et_traceparent_parse on any bytes; a valid parse writes back */

#include <string.h>

#include "et_w3c.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t       out[ET_TRACEPARENT_LEN];
    et_context_t  ctx;

    if (et_traceparent_parse(data, size, &ctx) == ET_W3C_OK) {
        if (et_id_is_zero(ctx.trace_id, ET_TRACE_ID_LEN)
            || et_id_is_zero(ctx.span_id, ET_SPAN_ID_LEN)
            || (ctx.flags & ~ET_FLAGS_KNOWN))
        {
            __builtin_trap();
        }

        et_traceparent_write(out, ctx.trace_id, ctx.span_id, ctx.flags);

        if (et_traceparent_parse(out, sizeof(out), &ctx) != ET_W3C_OK) {
            __builtin_trap();
        }
    }

    return 0;
}
