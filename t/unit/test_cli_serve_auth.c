/*
 * Unit tests: cli/et_cli_serve_auth.c, who may ask edgetrace serve
 * (docs/serve.md, "Security"): each Authorization header and the answer,
 * each password or token file and the reason it is refused, side by side.
 */

#include <crypt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "et_cli_serve.h"
#include "tap.h"


#define nelts(a)  (sizeof(a) / sizeof((a)[0]))

/* "alice:s3cret pass" in base64, and a token of each character allowed */
#define ALICE     "YWxpY2U6czNjcmV0IHBhc3M="
#define TOKEN     "0123456789abcdef0123456789abcdef-._~+/="


static char  dir[] = "/tmp/et-unit-auth-XXXXXX";


/* a file of "text" in the test's directory; its path */
static const char *
file_of(const char *name, const char *text)
{
    FILE        *f;
    static char  path[256];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");

    if (f == NULL) {
        perror(path);
        exit(1);
    }

    fputs(text, f);
    fclose(f);

    return path;
}


static void
test_check(void)
{
    char                err[512], text[512], *hash;
    size_t              i;
    struct crypt_data  *cd;
    et_serve_auth_t     au;

    static const struct {
        const char  *header;
        int          rc;
        const char  *what;
    } cases[] = {
        { "Basic " ALICE, ET_OK, "alice" },
        { "basic " ALICE, ET_OK, "the scheme in lower case" },
        { "BASIC   " ALICE, ET_OK, "upper case, spaces" },
        { "Basic YWxpY2U6czNjcmV0IHBhc3N4", ET_DECLINED, "a wrong password" },
        { "Basic Y2Fyb2w6czNjcmV0IHBhc3M=", ET_DECLINED, "an unknown user" },
        { "Basic YWxpY2U6", ET_DECLINED, "an empty password" },
        { "Basic OnMzY3JldCBwYXNz", ET_DECLINED, "no user" },
        { "Basic YWxpY2VzM2NyZXQgcGFzcw==", ET_DECLINED, "no colon" },
        { "Basic YWxpY2U6czNjcmV0IHBhc3MAeA==", ET_DECLINED, "a NUL" },
        { "Basic YWxpY2U6czNjcmV0IHBhc3M", ET_DECLINED, "no padding" },
        { "Basic YWxpY2U6czNjcmV0IHBhc3M=a", ET_DECLINED, "after padding" },
        { "Basic YW=pY2U6", ET_DECLINED, "padding inside" },
        { "Basic ====", ET_DECLINED, "padding only" },
        { "Basic !!!!", ET_DECLINED, "not base64" },
        { "Basic ", ET_DECLINED, "nothing after the scheme" },
        { "Basic", ET_DECLINED, "the scheme alone" },
        { "", ET_DECLINED, "empty" },
        { "Digest " ALICE, ET_DECLINED, "another scheme" },
        { "Bearer " TOKEN, ET_OK, "the token" },
        { "bearer " TOKEN, ET_OK, "the token, lower case" },
        { "Bearer " TOKEN "x", ET_DECLINED, "the token and more" },
        { "Bearer 0123456789abcdef0123456789abcdef-._~+/", ET_DECLINED,
          "a prefix of the token" },
        { "Bearer ", ET_DECLINED, "no token" },
        { "Bearer" TOKEN, ET_DECLINED, "no space" },
    };

    memset(&au, 0, sizeof(et_serve_auth_t));

    /* a hash as htpasswd -B makes it, of cost 5 */
    cd = calloc(1, sizeof(struct crypt_data));
    hash = crypt_r("s3cret pass", "$2b$05$abcdefghijklmnopqrstuu", cd);
    snprintf(text, sizeof(text), "# users\n\nalice:%s\r\nbob:%s\n", hash,
             hash);
    free(cd);

    tap_ok(et_serve_auth_users(&au, file_of("users", text), err,
                               sizeof(err)) == ET_OK,
           "a password file of two users");
    tap_ok(et_serve_auth_token(&au, file_of("token", TOKEN "\r\n"), err,
                               sizeof(err)) == ET_OK,
           "a token file");
    tap_is_int(au.nusers, 2, "two users");
    tap_is_int(au.token_len, strlen(TOKEN), "the token without its line end");

    for (i = 0; i < nelts(cases); i++) {
        tap_is_int(et_serve_auth_check(&au, cases[i].header), cases[i].rc,
                   "Authorization: %s", cases[i].what);
    }

    tap_ok(et_serve_auth_check(&au, NULL) == ET_DECLINED, "no header");

    memset(text, 'A', sizeof(text));
    memcpy(text, "Basic ", 6);
    text[sizeof(text) - 1] = '\0';
    tap_ok(et_serve_auth_check(&au, text) == ET_DECLINED, "a long one");

    et_serve_auth_free(&au);
    tap_ok(et_serve_auth_check(&au, "Basic " ALICE) == ET_DECLINED,
           "nothing loaded: basic declined");
}


static void
test_files(void)
{
    char             err[512];
    size_t           i;
    et_serve_auth_t  au;

    static const struct {
        int          token;
        const char  *text;
        const char  *reason;      /* NULL: accepted */
    } cases[] = {
        { 0, "a:$apr1$abcdefgh$0123456789abcdefghijkl\n",
          "f:1: user \"a\": an MD5 ($apr1$) hash; only bcrypt" },
        { 0, "a:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=\n",
          "f:1: user \"a\": a SHA-1 ({SHA}) hash" },
        { 0, "#\na:plain\n", "f:2: user \"a\": a plain or crypt() password" },
        { 0, "a:$6$salt$hash\n", "f:1: user \"a\": a hash of another kind" },
        { 0, "a:$2y$05$abc\n", "f:1: user \"a\": a malformed bcrypt hash" },
        { 0, "a:$2y$05$!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n",
          "f:1: user \"a\": a malformed bcrypt hash" },
        { 0, "nocolon\n", "f:1: USER:HASH expected" },
        { 0, ":$2y$05$abc\n", "f:1: USER:HASH expected" },
        { 0, "# nobody\n\n", "no user in it" },
        { 0, "", "no user in it" },
        { 1, "short\n", "shorter than 32 characters" },
        { 1, TOKEN "\n" TOKEN "\n", "one line of letters" },
        { 1, "0123456789abcdef 0123456789abcdef\n", "one line of letters" },
        { 1, TOKEN "\n", NULL },
        { 1, TOKEN, NULL },
    };

    for (i = 0; i < nelts(cases); i++) {
        int  rc;

        memset(&au, 0, sizeof(et_serve_auth_t));
        err[0] = '\0';
        rc = cases[i].token
             ? et_serve_auth_token(&au, file_of("f", cases[i].text), err,
                                   sizeof(err))
             : et_serve_auth_users(&au, file_of("f", cases[i].text), err,
                                   sizeof(err));

        if (cases[i].reason == NULL) {
            tap_ok(rc == ET_OK, "file %zu accepted", i);

        } else {
            tap_ok(rc == ET_ERROR && strstr(err, cases[i].reason) != NULL,
                   "file %zu refused: %s", i, cases[i].reason);

            if (rc != ET_ERROR || strstr(err, cases[i].reason) == NULL) {
                printf("#   got: %s\n", err);
            }
        }

        et_serve_auth_free(&au);
    }

    /* a NUL in the token, which no header carries (fuzz_cli_serve_auth) */
    {
        FILE               *f;
        const char         *path;
        static const char   nul[] = "0123456789abcdef\0" "0123456789abcdef\n";

        path = file_of("f", "");
        f = fopen(path, "w");

        if (f == NULL || fwrite(nul, 1, sizeof(nul) - 1, f) != sizeof(nul) - 1
            || fclose(f) != 0)
        {
            perror("f");
            exit(1);
        }

        memset(&au, 0, sizeof(et_serve_auth_t));
        tap_ok(et_serve_auth_token(&au, path, err, sizeof(err))
               == ET_ERROR && strstr(err, "one line of letters") != NULL,
               "a token file with a NUL byte refused");
        et_serve_auth_free(&au);
    }

    tap_ok(et_serve_auth_users(&au, "/nonexistent/users", err, sizeof(err))
           == ET_ERROR && strstr(err, "No such file") != NULL,
           "a missing file: why");
}


int
main(void)
{
    int   rc;
    char  path[256];

    if (mkdtemp(dir) == NULL) {
        perror(dir);
        return 1;
    }

    test_check();
    test_files();

    rc = tap_done();

    snprintf(path, sizeof(path), "%s/users", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/token", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/f", dir);
    unlink(path);
    rmdir(dir);

    return rc;
}
