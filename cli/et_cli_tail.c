#include "et_cli.h"
int
et_cli_tail(et_cli_t *cli, int argc, char **argv)
{
    (void) cli; (void) argc; (void) argv;
    return 1;
}
