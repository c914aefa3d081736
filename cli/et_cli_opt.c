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


/* an option's value read by "parse" (a duration, a size), or the error
 * naming the option */
static int
et_cli_opt_number(const char *name, const char *value, uint64_t *out,
    int (*parse)(const char *s, uint64_t *out, const char **err))
{
    const char  *err;

    if (parse(value, out, &err) != ET_OK) {
        et_cli_error("invalid %s \"%s\": %s", name, value, err);
        return ET_ERROR;
    }

    return ET_OK;
}


int
et_cli_opt_duration(const char *name, const char *value, uint64_t *ns)
{
    return et_cli_opt_number(name, value, ns, et_cli_duration_parse);
}


int
et_cli_opt_size(const char *name, const char *value, uint64_t *bytes)
{
    return et_cli_opt_number(name, value, bytes, et_cli_size_parse);
}
