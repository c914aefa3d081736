/*
 * edgetrace serve: who may ask (docs/serve.md, "Security").  HTTP basic
 * against a password file of bcrypt hashes (`htpasswd -B`), verified
 * with libcrypt's crypt_r(); a bearer token from a file, compared in
 * constant time; and the certificate and key of HTTPS, read and checked
 * against each other before libmicrohttpd is given them.
 *
 * Every file is read once, at the start: a line that cannot be used
 * stops serve there, with the file and the line, rather than locking out
 * a user later.
 */

#include <crypt.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "et_cli_serve.h"


#define ET_SERVE_FILE_MAX      (1024 * 1024)
#define ET_SERVE_TOKEN_MIN     32
#define ET_SERVE_TOKEN_MAX     1024
#define ET_SERVE_BCRYPT_LEN    60
/* an Authorization header longer than this is refused unread */
#define ET_SERVE_CREDENTIALS_MAX  1024


/* the whole of a small file, NUL-terminated; NULL and why in "err" */
static char *
et_serve_file_read(const char *path, const char *opt, size_t *len,
    char *err, size_t size)
{
    char    *buf;
    FILE    *f;
    size_t   n;

    f = fopen(path, "r");

    if (f == NULL) {
        snprintf(err, size, "%s %s: %s", opt, path, strerror(errno));
        return NULL;
    }

    buf = malloc(ET_SERVE_FILE_MAX + 1);

    if (buf == NULL) {
        fclose(f);
        snprintf(err, size, "%s %s: out of memory", opt, path);
        return NULL;
    }

    n = fread(buf, 1, ET_SERVE_FILE_MAX + 1, f);

    if (ferror(f) || n > ET_SERVE_FILE_MAX) {
        snprintf(err, size, "%s %s: %s", opt, path,
                 ferror(f) ? "cannot be read" : "larger than 1 MB");
        fclose(f);
        free(buf);
        return NULL;
    }

    fclose(f);
    buf[n] = '\0';
    *len = n;

    return buf;
}


/* equal, in a time that depends on the length of "secret" only */
static int
et_serve_equal(const uint8_t *p, size_t len, const uint8_t *secret,
    size_t slen)
{
    size_t    i;
    unsigned  d;

    d = len != slen;

    for (i = 0; i < slen; i++) {
        d |= secret[i] ^ (i < len ? p[i] : 0);
    }

    return d == 0;
}


static const char *
et_serve_hash_refused(const char *hash)
{
    if (strncmp(hash, "$apr1$", 6) == 0) {
        return "an MD5 ($apr1$) hash";
    }

    if (strncmp(hash, "{SHA}", 5) == 0) {
        return "a SHA-1 ({SHA}) hash";
    }

    if (hash[0] == '$') {
        return "a hash of another kind";
    }

    return "a plain or crypt() password";
}


int
et_serve_auth_users(et_serve_auth_t *au, const char *path, char *err,
    size_t size)
{
    int                  rc;
    char                *buf, *line, *next, *colon, *out;
    size_t               len, n, i, ln;
    struct crypt_data   *cd;
    et_serve_user_t     *u;

    buf = et_serve_file_read(path, "--auth-file", &len, err, size);

    if (buf == NULL) {
        return ET_ERROR;
    }

    cd = calloc(1, sizeof(struct crypt_data));

    if (cd == NULL || memchr(buf, '\0', len) != NULL) {
        snprintf(err, size, "--auth-file %s: %s", path,
                 cd ? "a NUL byte in the file" : "out of memory");
        free(cd);
        free(buf);
        return ET_ERROR;
    }

    rc = ET_ERROR;
    ln = 0;

    for (line = buf; line != NULL && *line != '\0'; line = next) {
        ln++;
        next = strchr(line, '\n');

        if (next != NULL) {
            *next++ = '\0';
        }

        n = strlen(line);

        if (n && line[n - 1] == '\r') {
            line[--n] = '\0';
        }

        /* as httpd's mod_authn_file: empty lines and comments */
        if (n == 0 || line[0] == '#') {
            continue;
        }

        colon = strchr(line, ':');

        if (colon == NULL || colon == line) {
            snprintf(err, size, "--auth-file %s:%zu: USER:HASH expected",
                     path, ln);
            goto failed;
        }

        *colon = '\0';

        for (i = 0; i < au->nusers; i++) {
            if (strcmp(au->users[i].user, line) == 0) {
                snprintf(err, size, "--auth-file %s:%zu: user \"%s\" "
                         "again", path, ln, line);
                goto failed;
            }
        }

        if (strncmp(colon + 1, "$2y$", 4) != 0
            && strncmp(colon + 1, "$2b$", 4) != 0)
        {
            snprintf(err, size, "--auth-file %s:%zu: user \"%s\": %s; only "
                     "bcrypt ($2y$, htpasswd -B) is verified", path, ln,
                     line, et_serve_hash_refused(colon + 1));
            goto failed;
        }

        out = crypt_r("", colon + 1, cd);

        if (strlen(colon + 1) != ET_SERVE_BCRYPT_LEN || out == NULL
            || out[0] == '*')
        {
            snprintf(err, size, "--auth-file %s:%zu: user \"%s\": a "
                     "malformed bcrypt hash", path, ln, line);
            goto failed;
        }

        u = realloc(au->users, (au->nusers + 1) * sizeof(et_serve_user_t));

        if (u == NULL) {
            snprintf(err, size, "--auth-file %s: out of memory", path);
            goto failed;
        }

        au->users = u;
        u[au->nusers].user = strdup(line);
        u[au->nusers].hash = strdup(colon + 1);
        au->nusers++;

        if (u[au->nusers - 1].user == NULL
            || u[au->nusers - 1].hash == NULL)
        {
            snprintf(err, size, "--auth-file %s: out of memory", path);
            goto failed;
        }
    }

    if (au->nusers == 0) {
        snprintf(err, size, "--auth-file %s: no user in it", path);
        goto failed;
    }

    rc = ET_OK;

failed:

    free(cd);
    free(buf);

    return rc;
}


int
et_serve_auth_token(et_serve_auth_t *au, const char *path, char *err,
    size_t size)
{
    char    *buf;
    size_t   len, i;

    buf = et_serve_file_read(path, "--token-file", &len, err, size);

    if (buf == NULL) {
        return ET_ERROR;
    }

    /* one line: its end is not the token's */
    if (len && buf[len - 1] == '\n') {
        buf[--len] = '\0';

        if (len && buf[len - 1] == '\r') {
            buf[--len] = '\0';
        }
    }

    /* RFC 6750's token68: what a header carries unquoted */
    for (i = 0; i < len; i++) {
        if (!((buf[i] >= 'a' && buf[i] <= 'z')
              || (buf[i] >= 'A' && buf[i] <= 'Z')
              || (buf[i] >= '0' && buf[i] <= '9')
              || (buf[i] != '\0' && strchr("-._~+/=", buf[i]) != NULL)))
        {
            break;
        }
    }

    if (i < len || len < ET_SERVE_TOKEN_MIN || len > ET_SERVE_TOKEN_MAX) {
        snprintf(err, size, "--token-file %s: %s", path,
                 i < len ? "one line of letters, digits and -._~+/= "
                           "expected"
                 : len < ET_SERVE_TOKEN_MIN ? "the token is shorter than "
                                              "32 characters"
                 : "the token is longer than 1024 characters");
        free(buf);
        return ET_ERROR;
    }

    au->token = buf;
    au->token_len = len;

    return ET_OK;
}


/* strict base64, padded; ET_ERROR on anything else */
static int
et_serve_base64(const char *p, size_t len, uint8_t *out, size_t *n)
{
    size_t    i, k;
    uint32_t  v;
    int       c, pad;

    static const char  digits[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    if (len == 0 || len % 4) {
        return ET_ERROR;
    }

    k = 0;
    pad = 0;

    for (i = 0; i < len; i += 4) {
        v = 0;

        for (c = 0; c < 4; c++) {
            const char  *d;

            if (p[i + c] == '=' && i + 4 == len && c >= 2) {
                pad++;
                v <<= 6;
                continue;
            }

            d = p[i + c] ? strchr(digits, p[i + c]) : NULL;

            if (d == NULL || pad) {
                return ET_ERROR;
            }

            v = (v << 6) | (uint32_t) (d - digits);
        }

        out[k++] = v >> 16;
        out[k++] = (v >> 8) & 0xff;
        out[k++] = v & 0xff;
    }

    *n = k - pad;

    return ET_OK;
}


static int
et_serve_auth_basic(const et_serve_auth_t *au, const char *p, size_t len)
{
    int                 ok;
    char               *out;
    size_t              n, i;
    uint8_t             buf[ET_SERVE_CREDENTIALS_MAX];
    uint8_t            *colon;
    struct crypt_data  *cd;
    const char         *hash;

    if (au->nusers == 0 || et_serve_base64(p, len, buf, &n) != ET_OK
        || n == sizeof(buf))
    {
        return ET_DECLINED;
    }

    buf[n] = '\0';
    colon = memchr(buf, ':', n);

    /* crypt() reads a C string: a NUL in the password is none */
    if (colon == NULL || colon == buf || memchr(buf, '\0', n) != NULL) {
        return ET_DECLINED;
    }

    *colon = '\0';

    /* an unknown user costs a bcrypt too: the time says nothing */
    hash = au->users[0].hash;
    ok = 0;

    for (i = 0; i < au->nusers; i++) {
        if (strcmp(au->users[i].user, (char *) buf) == 0) {
            hash = au->users[i].hash;
            ok = 1;
            break;
        }
    }

    cd = calloc(1, sizeof(struct crypt_data));

    if (cd == NULL) {
        return ET_DECLINED;
    }

    out = crypt_r((char *) colon + 1, hash, cd);

    ok = ok && out != NULL
         && et_serve_equal((uint8_t *) out, strlen(out),
                           (const uint8_t *) hash, strlen(hash));

    free(cd);

    return ok ? ET_OK : ET_DECLINED;
}


int
et_serve_auth_check(const et_serve_auth_t *au, const char *header)
{
    size_t  len;

    if (header == NULL) {
        return ET_DECLINED;
    }

    len = strlen(header);

    if (len > ET_SERVE_CREDENTIALS_MAX) {
        return ET_DECLINED;
    }

    if (len > 6 && strncasecmp(header, "Basic ", 6) == 0) {
        header += 6;

        while (*header == ' ') {
            header++;
        }

        return et_serve_auth_basic(au, header, strlen(header));
    }

    if (len > 7 && strncasecmp(header, "Bearer ", 7) == 0
        && au->token != NULL)
    {
        header += 7;

        while (*header == ' ') {
            header++;
        }

        return et_serve_equal((const uint8_t *) header, strlen(header),
                              (const uint8_t *) au->token, au->token_len)
               ? ET_OK : ET_DECLINED;
    }

    return ET_DECLINED;
}


void
et_serve_auth_free(et_serve_auth_t *au)
{
    size_t  i;

    for (i = 0; i < au->nusers; i++) {
        free(au->users[i].user);
        free(au->users[i].hash);
    }

    free(au->users);
    free(au->token);
    memset(au, 0, sizeof(et_serve_auth_t));
}


static int
et_serve_no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void) buf;
    (void) size;
    (void) rwflag;
    (void) u;

    return -1;
}


int
et_serve_tls_load(et_serve_t *sv, char *err, size_t size)
{
    int        rc;
    BIO       *b;
    X509      *x;
    size_t     len;
    EVP_PKEY  *k;

    sv->tls_cert_pem = et_serve_file_read(sv->tls_cert, "--tls-cert", &len,
                                          err, size);

    if (sv->tls_cert_pem == NULL) {
        return ET_ERROR;
    }

    sv->tls_key_pem = et_serve_file_read(sv->tls_key, "--tls-key", &len,
                                         err, size);

    if (sv->tls_key_pem == NULL) {
        return ET_ERROR;
    }

    x = NULL;
    k = NULL;
    rc = ET_ERROR;

    b = BIO_new_mem_buf(sv->tls_cert_pem, -1);
    x = b ? PEM_read_bio_X509(b, NULL, et_serve_no_passphrase, NULL) : NULL;
    BIO_free(b);

    if (x == NULL) {
        snprintf(err, size, "--tls-cert %s: no PEM certificate in it",
                 sv->tls_cert);
        goto done;
    }

    b = BIO_new_mem_buf(sv->tls_key_pem, -1);
    k = b ? PEM_read_bio_PrivateKey(b, NULL, et_serve_no_passphrase, NULL)
          : NULL;
    BIO_free(b);

    if (k == NULL) {
        snprintf(err, size, "--tls-key %s: no PEM private key in it (a key "
                 "with a passphrase is not read)", sv->tls_key);
        goto done;
    }

    if (X509_check_private_key(x, k) != 1) {
        snprintf(err, size, "--tls-key %s does not match the certificate "
                 "of --tls-cert %s", sv->tls_key, sv->tls_cert);
        goto done;
    }

    rc = ET_OK;

done:

    ERR_clear_error();
    X509_free(x);
    EVP_PKEY_free(k);

    return rc;
}
