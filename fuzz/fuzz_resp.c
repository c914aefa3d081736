/* libFuzzer: et_resp_scan on any bytes, whole and in two pieces */

#include "et_resp.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int        rc1, rc2;
    size_t     half;
    uint64_t   ok1, err1, ok2, err2;
    et_resp_t  rs;

    ok1 = err1 = ok2 = err2 = 0;

    et_resp_init(&rs);
    rc1 = et_resp_scan(&rs, data, size, &ok1, &err1);

    half = size ? data[0] % (size + 1) : 0;

    et_resp_init(&rs);
    rc2 = et_resp_scan(&rs, data, half, &ok2, &err2);

    if (rc2 == ET_OK) {
        rc2 = et_resp_scan(&rs, data + half, size - half, &ok2, &err2);
    }

    if (rc1 != rc2 || ok1 != ok2 || err1 != err2) {
        __builtin_trap();
    }

    return 0;
}
