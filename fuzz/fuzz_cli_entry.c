/*
 * libFuzzer: the command-line tool's reading side fed arbitrary entries.
 * The input is split at 0x00 0x00 into fields and values; whatever the
 * parser accepts is encoded as OTLP and Zipkin JSON, which must come out
 * as valid UTF-8 JSON that jansson reads back.  Raw bytes go through the
 * UTF-8 repair, whose output must always be valid.
 */

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "et_cli.h"
#include "et_cli_json.h"


#define FIELDS  64


static void
et_fuzz_json(json_t *doc)
{
    char          *text;
    json_t        *back;
    json_error_t   err;

    if (doc == NULL) {
        abort();
    }

    text = json_dumps(doc, JSON_COMPACT);

    if (text == NULL || !et_cli_utf8_valid((uint8_t *) text, strlen(text))) {
        abort();
    }

    /* "\u0000" is valid JSON; jansson wants to be told */
    back = json_loads(text, JSON_ALLOW_NUL, &err);

    if (back == NULL) {
        abort();
    }

    json_decref(back);
    free(text);
    json_decref(doc);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t          i, n, start, len;
    uint8_t        *fixed;
    et_str_t        id, fields[FIELDS];
    et_cli_span_t   span;

    fixed = malloc(ET_CLI_UTF8_MAX(size) + 1);

    if (fixed == NULL) {
        return 0;
    }

    len = et_cli_utf8_sanitize(data, size, fixed);

    if (!et_cli_utf8_valid(fixed, len)) {
        abort();
    }

    free(fixed);

    n = 0;
    start = 0;

    for (i = 0; i + 1 < size && n < FIELDS; i++) {
        if (data[i] == 0 && data[i + 1] == 0) {
            fields[n].data = data + start;
            fields[n].len = i - start;
            n++;
            start = i + 2;
            i++;
        }
    }

    if (n < FIELDS && start <= size) {
        fields[n].data = data + start;
        fields[n].len = size - start;
        n++;
    }

    id.data = (const uint8_t *) "1-0";
    id.len = 3;

    if (et_cli_span_parse(&id, fields, n, &span) != ET_CLI_SPAN_OK) {
        return 0;
    }

    et_fuzz_json(et_cli_otlp(&span, 1));
    et_fuzz_json(et_cli_zipkin(&span, 1));

    return 0;
}
