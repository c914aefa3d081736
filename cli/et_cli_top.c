#include "et_cli.h"
int
et_cli_top(et_cli_t *cli, int argc, char **argv)
{
    (void) cli; (void) argc; (void) argv;
    return 1;
}
