/*
 * Command-line options, the way getopt_long users expect them:
 * "--name VALUE" and "--name=VALUE".
 */

#include <string.h>

#include "et_cli.h"


int
et_cli_opt_value(int argc, char **argv, int *i, const char *name,
    const char **value)
{
    size_t       len;
    const char  *a;

    a = argv[*i];
    len = strlen(name);

    if (strncmp(a, name, len) != 0) {
        return 0;
    }

    if (a[len] == '=') {
        *value = a + len + 1;
        return 1;
    }

    if (a[len] != '\0') {
        return 0;
    }

    if (*i + 1 >= argc) {
        et_cli_error("option %s needs a value (see --help)", name);
        return -1;
    }

    *i += 1;
    *value = argv[*i];

    return 1;
}


int
et_cli_opt_duration(const char *name, const char *value, uint64_t *ns)
{
    const char  *err;

    if (et_cli_duration_parse(value, ns, &err) != ET_OK) {
        et_cli_error("invalid %s \"%s\": %s", name, value, err);
        return ET_ERROR;
    }

    return ET_OK;
}


int
et_cli_opt_size(const char *name, const char *value, uint64_t *bytes)
{
    const char  *err;

    if (et_cli_size_parse(value, bytes, &err) != ET_OK) {
        et_cli_error("invalid %s \"%s\": %s", name, value, err);
        return ET_ERROR;
    }

    return ET_OK;
}
