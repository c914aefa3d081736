/* libFuzzer: et_b3_parse on any bytes; a valid parse writes back */

#include <string.h>

#include "et_b3.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    et_b3_rc_t    rc;
    et_context_t  ctx, back;
    uint8_t       out[ET_B3_SINGLE_LEN];

    rc = et_b3_parse(data, size, &ctx);

    if (rc == ET_B3_OK || rc == ET_B3_DEFERRED) {
        et_b3_write(out, ctx.trace_id, ctx.span_id, ctx.flags);

        if (et_b3_parse(out, sizeof(out), &back) != ET_B3_OK
            || memcmp(back.trace_id, ctx.trace_id, ET_TRACE_ID_LEN) != 0
            || memcmp(back.span_id, ctx.span_id, ET_SPAN_ID_LEN) != 0)
        {
            __builtin_trap();
        }
    }

    return 0;
}
