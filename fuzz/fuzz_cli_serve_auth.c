/*
 * libFuzzer: who may ask edgetrace serve (docs/serve.md, "Security").
 * The first byte picks what the rest is:
 *
 *   0  a password file (--auth-file): users or a reason;
 *   1  a token file (--token-file): a token of RFC 6750's characters,
 *      32 to 1024 of them, or a reason;
 *   2  an Authorization header, as libmicrohttpd hands it over (a C
 *      string), against one user and one token: it passes only as
 *      exactly their credentials.
 *
 * bcrypt stays out of the loop: at cost 31 one crypt_r() takes days, and
 * a password file may ask for it.  crypt_r() is replaced here by a
 * stand-in that checks the setting as libxcrypt's bcrypt does (prefix,
 * cost, 22 characters of salt) and derives the rest from the password,
 * so that the code around it runs as with the real one.  The real
 * bcrypt is exercised by t/unit/cli_serve_auth.t and t/cli/047.
 */

#include <crypt.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "et_cli_serve.h"


/* base64 of "alice:s3cret": 12 bytes, no padding, one spelling only */
#define ET_FUZZ_BASIC  "YWxpY2U6czNjcmV0"
#define ET_FUZZ_TOKEN  "0123456789abcdef0123456789abcdef-._~+/="
#define ET_FUZZ_SALT   "$2y$05$abcdefghijklmnopqrstuu"


static const char  et_fuzz_b64[] =
    "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";


char *
crypt_r(const char *phrase, const char *setting, struct crypt_data *data)
{
    size_t    i;
    uint64_t  h;
    char     *out;

    out = data->output;

    if (strncmp(setting, "$2y$", 4) != 0 && strncmp(setting, "$2b$", 4) != 0
        && strncmp(setting, "$2a$", 4) != 0)
    {
        goto failed;
    }

    if (setting[4] < '0' || setting[4] > '3' || setting[5] < '0'
        || setting[5] > '9' || setting[6] != '$'
        || (setting[4] - '0') * 10 + setting[5] - '0' < 4
        || (setting[4] - '0') * 10 + setting[5] - '0' > 31)
    {
        goto failed;
    }

    for (i = 7; i < 29; i++) {
        if (setting[i] == '\0' || strchr(et_fuzz_b64, setting[i]) == NULL) {
            goto failed;
        }
    }

    memcpy(out, setting, 29);
    h = 14695981039346656037ULL;

    for (i = 0; phrase[i] != '\0'; i++) {
        h = (h ^ (uint8_t) phrase[i]) * 1099511628211ULL;
    }

    for (i = 29; i < 60; i++) {
        h = (h ^ (uint8_t) setting[i % 29]) * 1099511628211ULL;
        out[i] = et_fuzz_b64[(h >> 32) % 64];
    }

    out[60] = '\0';

    return out;

failed:

    /* libxcrypt's failure token: never a valid hash */
    strcpy(out, setting[0] == '*' && setting[1] == '0' ? "*1" : "*0");

    return out;
}


static int              et_fuzz_fd = -1;
static char             et_fuzz_path[64];
static et_serve_auth_t  et_fuzz_au;


/* a file of "data", in memory, and a path that opens it */
static const char *
et_fuzz_file(const uint8_t *data, size_t size)
{
    if (et_fuzz_fd == -1) {
        et_fuzz_fd = memfd_create("et-fuzz-auth", 0);

        if (et_fuzz_fd == -1) {
            abort();
        }

        snprintf(et_fuzz_path, sizeof(et_fuzz_path), "/proc/self/fd/%d",
                 et_fuzz_fd);
    }

    if (ftruncate(et_fuzz_fd, 0) != 0
        || pwrite(et_fuzz_fd, data, size, 0) != (ssize_t) size)
    {
        abort();
    }

    return et_fuzz_path;
}


/* a password file ("token" 0) or a token file: what is kept, or why not */
static void
et_fuzz_read(int token, const uint8_t *data, size_t size)
{
    char             err[512];
    size_t           i;
    const char      *path;
    et_serve_auth_t  au;

    memset(&au, 0, sizeof(et_serve_auth_t));
    err[0] = '\0';
    path = et_fuzz_file(data, size);

    if ((token ? et_serve_auth_token(&au, path, err, sizeof(err))
               : et_serve_auth_users(&au, path, err, sizeof(err)))
        != ET_OK)
    {
        if (err[0] == '\0' || strlen(err) >= 512) {
            abort();
        }

        et_serve_auth_free(&au);
        return;
    }

    if (token ? au.token_len < 32 || au.token_len > 1024
                || strlen(au.token) != au.token_len
              : au.nusers == 0)
    {
        abort();
    }

    for (i = 0; i < au.nusers; i++) {
        if (au.users[i].user[0] == '\0'
            || strpbrk(au.users[i].user, ":\n") != NULL
            || strlen(au.users[i].hash) != 60
            || strncmp(au.users[i].hash, "$2", 2) != 0)
        {
            abort();
        }
    }

    /* RFC 6750's token68 characters only */
    for (i = 0; i < au.token_len; i++) {
        if ((au.token[i] == '\0' || strchr("-._~+/=", au.token[i]) == NULL)
            && !((au.token[i] | 0x20) >= 'a' && (au.token[i] | 0x20) <= 'z')
            && !(au.token[i] >= '0' && au.token[i] <= '9'))
        {
            abort();
        }
    }

    et_serve_auth_free(&au);
}


/* alice and the token, read from files as serve reads them */
static void
et_fuzz_setup(void)
{
    char                err[512], line[256];
    struct crypt_data   cd;

    memset(&cd, 0, sizeof(cd));
    snprintf(line, sizeof(line), "# a comment\nalice:%s\nbob:%s\n",
             crypt_r("s3cret", ET_FUZZ_SALT, &cd),
             "$2b$04$zyxwvutsrqponmlkjihgfe0123456789ABCDEFGHIJKLMNOPQRSTU");

    if (et_serve_auth_users(&et_fuzz_au,
                            et_fuzz_file((uint8_t *) line, strlen(line)),
                            err, sizeof(err)) != ET_OK
        || et_serve_auth_token(&et_fuzz_au,
                               et_fuzz_file((uint8_t *) ET_FUZZ_TOKEN "\n",
                                            sizeof(ET_FUZZ_TOKEN)),
                               err, sizeof(err)) != ET_OK)
    {
        fprintf(stderr, "fuzz_cli_serve_auth: %s\n", err);
        abort();
    }
}


static void
et_fuzz_header(const uint8_t *data, size_t size)
{
    char        *h;
    const char  *p;

    h = malloc(size + 1);

    if (h == NULL) {
        return;
    }

    memcpy(h, data, size);
    h[size] = '\0';

    if (et_serve_auth_check(&et_fuzz_au, h) == ET_OK) {
        /* the scheme, spaces, and exactly the credentials */
        p = h + (strncasecmp(h, "Basic ", 6) == 0 ? 6 : 7);
        p += strspn(p, " ");

        if (strcmp(p, strncasecmp(h, "Basic ", 6) == 0 ? ET_FUZZ_BASIC
                                                       : ET_FUZZ_TOKEN)
            != 0)
        {
            abort();
        }
    }

    free(h);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (et_fuzz_au.nusers == 0) {
        et_fuzz_setup();
    }

    if (size == 0) {
        return 0;
    }

    switch (data[0] % 3) {

    case 0:
    case 1:
        et_fuzz_read(data[0] % 3, data + 1, size - 1);
        break;

    default:
        et_fuzz_header(data + 1, size - 1);
        break;
    }

    return 0;
}
