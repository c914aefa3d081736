/*
 * edgetrace serve: the stream(s) stored in SQLite through a consumer
 * group, export's (et_cli_consume), and served as Jaeger's query API
 * (docs/serve.md).  A batch is acknowledged only once its transaction has
 * committed; a span delivered twice is absorbed by its ids.
 */

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <microhttpd.h>

#include "et_cli_serve.h"


static const char  et_cli_serve_usage[] =
"Usage: edgetrace [GLOBAL OPTIONS] serve [--db PATH] [--listen ADDR:PORT]\n"
"                 [--auth-file FILE] [--token-file FILE]\n"
"                 [--tls-cert FILE --tls-key FILE]\n"
"                 [--retain DURATION] [--max-size SIZE] [--group G]\n"
"                 [--consumer C] [--batch N]\n"
"                 [--claim-idle DURATION] [--from-now]\n"
"\n"
"Stores the spans of the stream (every shard, --shards) in an SQLite\n"
"database, and answers queries about them over HTTP with Jaeger's query\n"
"API (/api/services, /api/traces, /api/dependencies...), which Grafana's\n"
"Jaeger data source reads, and edgetrace's own (/api/edgetrace/search,\n"
"/api/edgetrace/red, /api/edgetrace/status, /metrics): see\n"
"docs/serve.md.  It reads the stream as a member of a Redis consumer\n"
"group, as export does: a batch is acknowledged once it is committed;\n"
"what was read but not committed is read again.\n"
"\n"
"Options:\n"
"  --db PATH         the database, created when missing (default\n"
"                    edgetrace.db)\n"
"  --listen ADDR:PORT\n"
"                    where the API listens (default 127.0.0.1:16686): a\n"
"                    numeric address, loopback (127.0.0.1, [::1]) unless\n"
"                    --auth-file or --token-file is given\n"
"  --auth-file FILE  every request needs HTTP basic credentials of a user\n"
"                    of FILE, made by htpasswd -B (bcrypt only)\n"
"  --token-file FILE or the bearer token FILE holds, one line of at\n"
"                    least 32 characters\n"
"  --tls-cert FILE, --tls-key FILE\n"
"                    HTTPS with this PEM certificate (its chain after it)\n"
"                    and its key\n"
"  --retain DURATION the spans that started longer ago than this are\n"
"                    deleted, with their aggregates, in the background\n"
"                    (default: none, every span is kept)\n"
"  --max-size SIZE   the database and its WAL are kept under SIZE (k, m\n"
"                    or g after it: 10g; at least 1m), the oldest spans\n"
"                    trimmed first (default: no bound)\n"
"  --group G         consumer group (default edgetrace-serve); created at\n"
"                    the start of the stream when missing\n"
"  --from-now        a group created now starts with new entries instead\n"
"  --consumer C      this reader's name in the group (default: the host\n"
"                    name)\n"
"  --batch N         spans per transaction (default 2000)\n"
"  --claim-idle DURATION\n"
"                    take over entries another consumer has left pending\n"
"                    this long (default 1m)\n"
"  -h, --help        show this help and exit\n"
"\n"
"Redis down: the API goes on answering from the database, and\n"
"/api/edgetrace/status says ingestion is paused until Redis is back.  The\n"
"database refusing a batch (a full disk): nothing is acknowledged, the\n"
"batch is tried again.  SIGINT or SIGTERM: the batch in flight is left\n"
"pending, the exit status is 0.\n";


static void
et_cli_serve_redis(void *data, int up)
{
    et_serve_t  *sv;

    sv = data;

    pthread_mutex_lock(&sv->status.lock);

    if (sv->status.redis_up && !up) {
        sv->status.redis_lost++;
    }

    sv->status.redis_up = up;
    sv->status.redis_known = 1;

    pthread_mutex_unlock(&sv->status.lock);
}


/* a pass of the trimmer every so often, and once at the start */
#define ET_CLI_SERVE_TRIM_EVERY  10
#define ET_CLI_SERVE_TRIM_CHUNK  1000

/* --max-size's least: a few batches of spans fit */
#define ET_CLI_SERVE_SIZE_MIN    (1ULL << 20)

/* the stream idle: --max-size's steps for this long at most, a read then */
#define ET_CLI_SERVE_IDLE_MS     200


static void
et_cli_serve_trim_pass(et_serve_t *sv, et_serve_trim_t *tr, int *failing)
{
    int       rc, stop;
    char      err[256];
    uint64_t  n, now;

    now = et_serve_now_us();

    do {
        rc = et_serve_trim(tr, now > sv->retain_us ? now - sv->retain_us : 0,
                           ET_CLI_SERVE_TRIM_CHUNK, &n, err, sizeof(err));

        pthread_mutex_lock(&sv->status.lock);

        if (rc == ET_OK) {
            sv->status.trimmed += n;

        } else {
            sv->status.trim_failures++;
        }

        stop = sv->stop;

        pthread_mutex_unlock(&sv->status.lock);

        /* said once per outage, not once per pass */
        if (rc != ET_OK && !*failing) {
            et_cli_error("serve: %s: cannot trim (--retain): %s; trying "
                         "again", sv->path, err);
        }

        *failing = rc != ET_OK;

    } while (rc == ET_OK && n == ET_CLI_SERVE_TRIM_CHUNK && !stop);
}


/* --retain: trims in the background, on a connection of its own */
static void *
et_cli_serve_trimmer(void *data)
{
    int               failing;
    char              err[512];
    sqlite3          *db;
    et_serve_t       *sv;
    struct timespec   ts;
    et_serve_trim_t  *tr;

    sv = data;
    tr = NULL;
    db = et_serve_db_open(sv->path, 1, err, sizeof(err));

    if (db != NULL) {
        tr = et_serve_trim_init(db, err, sizeof(err));
    }

    if (tr == NULL) {
        et_cli_error("serve: %s: no trimming (--retain): %s", sv->path, err);
        sqlite3_close(db);
        return NULL;
    }

    failing = 0;

    pthread_mutex_lock(&sv->status.lock);

    while (!sv->stop) {
        pthread_mutex_unlock(&sv->status.lock);

        et_cli_serve_trim_pass(sv, tr, &failing);

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += ET_CLI_SERVE_TRIM_EVERY;

        pthread_mutex_lock(&sv->status.lock);

        while (!sv->stop
               && pthread_cond_timedwait(&sv->wake, &sv->status.lock, &ts)
                  != ETIMEDOUT)
        {
            /* void */
        }
    }

    pthread_mutex_unlock(&sv->status.lock);

    et_serve_trim_free(tr);
    sqlite3_close(db);

    return NULL;
}


/*
 * --max-size: a step of trimming after a commit, by the writer, so that
 * no other writer waits for the lock and the trimming keeps pace with the
 * batches; "failing" says a failure once per outage.
 */
static int
et_cli_serve_size(et_serve_t *sv, int *failing)
{
    int                    rc;
    char                   err[256];
    et_serve_size_state_t  st;

    rc = et_serve_size_step(sv->size, &st, err, sizeof(err));

    pthread_mutex_lock(&sv->status.lock);

    if (rc == ET_OK) {
        sv->status.trimmed_size += st.trimmed;

        if (st.over && !sv->status.over_size) {
            et_cli_error("serve: %s: the newest spans alone take %llu "
                         "bytes, over --max-size; kept", sv->path,
                         (unsigned long long) st.used_bytes);
        }

        sv->status.over_size = st.over;

    } else {
        sv->status.trim_failures++;

        if (!*failing) {
            et_cli_error("serve: %s: cannot trim (--max-size): %s; trying "
                         "again", sv->path, err);
        }
    }

    pthread_mutex_unlock(&sv->status.lock);

    *failing = rc != ET_OK;

    return rc == ET_OK && st.more;
}


/*
 * The stream idle: --max-size's steps go on while they have work (a bound
 * lowered, a file with pages to give back), for at most
 * ET_CLI_SERVE_IDLE_MS, the next read then (docs/serve.md)
 */
static void
et_cli_serve_idle(void *data)
{
    uint64_t     until;
    et_serve_t  *sv;

    sv = data;

    if (sv->size == NULL) {
        return;
    }

    until = et_serve_now_us() + ET_CLI_SERVE_IDLE_MS * 1000;

    while (et_cli_serve_size(sv, &sv->size_failing)
           && et_serve_now_us() < until)
    {
        /* void */
    }
}


/* --max-size's trimming prepared, or, without, FTS5's own merging on
 * (a run with --max-size turned it off) */
static int
et_cli_serve_size_init(et_serve_t *sv, sqlite3 *db, size_t batch)
{
    char  err[512];

    if (sv->max_size == 0) {
        if (et_serve_db_automerge(db, ET_SERVE_AUTOMERGE) != SQLITE_OK) {
            et_cli_error("serve: %s: %s", sv->path, sqlite3_errmsg(db));
        }

        return ET_OK;
    }

    sv->size = et_serve_size_init(db, sv->max_size, batch, err, sizeof(err));

    if (sv->size == NULL) {
        et_cli_error("serve: %s: --max-size: %s", sv->path, err);
        return ET_ERROR;
    }

    if (!et_serve_size_incremental(sv->size)) {
        et_cli_error("serve: %s was created without auto_vacuum: "
                     "--max-size keeps its pages in use under the bound, "
                     "its file does not shrink (docs/serve.md)", sv->path);
    }

    return ET_OK;
}


static int
et_cli_serve_store(void *data, const et_cli_span_t *spans, size_t n)
{
    int          rc;
    char         err[256];
    size_t       i;
    uint64_t     stored, dups, newest;
    et_serve_t  *sv;

    sv = data;
    stored = 0;
    dups = 0;
    newest = 0;

    for (i = 0; i < n; i++) {
        newest = spans[i].end_ns > newest ? spans[i].end_ns : newest;
    }

    rc = et_serve_store(sv->store, spans, n, &stored, &dups, err,
                        sizeof(err));

    pthread_mutex_lock(&sv->status.lock);

    if (rc == ET_OK) {
        sv->status.stored += stored;
        sv->status.duplicates += dups;
        sv->status.batches++;
        sv->status.last_commit_ms = et_serve_now_us() / 1000;

        if (newest / ET_CLI_NS_PER_MS > sv->status.newest_ms) {
            sv->status.newest_ms = newest / ET_CLI_NS_PER_MS;
        }

        if (sv->status.store_failing) {
            et_cli_error("serve: %s stores again", sv->path);
        }

        sv->status.store_failing = 0;

    } else {
        /* said once per outage, not once per retry */
        if (!sv->status.store_failing) {
            et_cli_error("serve: %s: %s; nothing acknowledged, retrying",
                         sv->path, err);
        }

        sv->status.store_failing = 1;
        sv->status.store_failures++;
        snprintf(sv->status.store_error, sizeof(sv->status.store_error),
                 "%s", err);
    }

    pthread_mutex_unlock(&sv->status.lock);

    if (rc == ET_OK && sv->size != NULL) {
        et_cli_serve_size(sv, &sv->size_failing);
    }

    return rc;
}


/* --auth-file, --token-file, --tls-cert and --tls-key read, or why not */
static int
et_cli_serve_secure(et_serve_t *sv, const char *auth_file,
    const char *token_file)
{
    char  err[512];

    if (auth_file != NULL
        && et_serve_auth_users(&sv->auth, auth_file, err, sizeof(err))
           != ET_OK)
    {
        goto failed;
    }

    if (token_file != NULL
        && et_serve_auth_token(&sv->auth, token_file, err, sizeof(err))
           != ET_OK)
    {
        goto failed;
    }

    if ((sv->tls_cert == NULL) != (sv->tls_key == NULL)) {
        snprintf(err, sizeof(err), "--tls-cert and --tls-key go together");
        goto failed;
    }

    if (sv->tls_cert == NULL) {
        return ET_OK;
    }

    if (!MHD_is_feature_supported(MHD_FEATURE_TLS)) {
        snprintf(err, sizeof(err), "--tls-cert: this libmicrohttpd was "
                 "built without TLS");
        goto failed;
    }

    if (et_serve_tls_load(sv, err, sizeof(err)) == ET_OK) {
        return ET_OK;
    }

failed:

    et_cli_error("serve: %s", err);

    return ET_ERROR;
}


int
et_cli_serve(et_cli_t *cli, int argc, char **argv)
{
    int               i, rc;
    char              err[512];
    size_t            k;
    sqlite3          *db;
    const char       *v, *auth_file, *token_file;
    et_serve_t        sv;
    et_cli_consume_t  conf;

    struct {
        const char   *name;
        const char  **value;
    } strs[] = {
        { "--listen", &sv.listen },
        { "--auth-file", &auth_file },
        { "--token-file", &token_file },
        { "--tls-cert", &sv.tls_cert },
        { "--tls-key", &sv.tls_key },
    };

    /* before SQLite's first use: no count of its memory, which takes a
     * global lock at each of its allocations (docs/serve.md) */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);

    memset(&sv, 0, sizeof(et_serve_t));
    memset(&conf, 0, sizeof(et_cli_consume_t));
    sv.cli = cli;
    sv.path = "edgetrace.db";
    sv.listen = "127.0.0.1:16686";
    conf.cmd = "serve";
    conf.group = "edgetrace-serve";
    conf.batch = 2000;
    conf.claim_idle_ns = 60 * ET_CLI_NS_PER_S;
    auth_file = NULL;
    token_file = NULL;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(et_cli_serve_usage, stdout);
            return ET_CLI_EXIT_OK;
        }

        if ((rc = et_cli_consume_opt(argc, argv, &i, &conf)) == 1) {
            continue;
        }

        if (rc == 0
            && (rc = et_cli_opt_value(argc, argv, &i, "--db", &v)) == 1)
        {
            if (v[0] == '\0') {
                et_cli_error("serve: --db: the path is empty");
                return ET_CLI_EXIT_USAGE;
            }

            sv.path = v;
            continue;
        }

        /* the options that take a string as it is */
        for (k = 0; rc == 0 && k < sizeof(strs) / sizeof(strs[0]); k++) {
            rc = et_cli_opt_value(argc, argv, &i, strs[k].name,
                                  strs[k].value);
        }

        if (rc == 1) {
            continue;
        }

        if (rc == 0
            && (rc = et_cli_opt_value(argc, argv, &i, "--retain", &v)) == 1)
        {
            if (et_cli_opt_duration("--retain", v, &sv.retain_us) != ET_OK) {
                return ET_CLI_EXIT_USAGE;
            }

            sv.retain_us /= 1000;

            if (sv.retain_us < 1000000) {
                et_cli_error("serve: --retain must be at least 1s");
                return ET_CLI_EXIT_USAGE;
            }

            continue;
        }

        if (rc == 0
            && (rc = et_cli_opt_value(argc, argv, &i, "--max-size", &v)) == 1)
        {
            if (et_cli_opt_size("--max-size", v, &sv.max_size) != ET_OK) {
                return ET_CLI_EXIT_USAGE;
            }

            if (sv.max_size < ET_CLI_SERVE_SIZE_MIN) {
                et_cli_error("serve: --max-size must be at least 1m");
                return ET_CLI_EXIT_USAGE;
            }

            continue;
        }

        if (rc == 0) {
            et_cli_error("serve: unexpected argument \"%s\" "
                         "(see edgetrace serve --help)", argv[i]);
        }

        return ET_CLI_EXIT_USAGE;
    }

    err[0] = '\0';

    if (et_cli_serve_secure(&sv, auth_file, token_file) != ET_OK
        || et_serve_listen(&sv, err, sizeof(err)) != ET_OK)
    {
        if (err[0]) {
            et_cli_error("serve: %s", err);
        }

        et_serve_auth_free(&sv.auth);
        free(sv.tls_cert_pem);
        free(sv.tls_key_pem);
        return ET_CLI_EXIT_USAGE;
    }

    /* a file size limit (RLIMIT_FSIZE) fails a write with EFBIG, as a full
     * disk does with ENOSPC, instead of killing the process: the batch is
     * kept pending and tried again (docs/serve.md, "Ingestion") */
    signal(SIGXFSZ, SIG_IGN);

    conf.target = sv.path;
    conf.store = et_cli_serve_store;
    conf.redis = et_cli_serve_redis;
    conf.idle = et_cli_serve_idle;
    conf.data = &sv;

    if (pthread_mutex_init(&sv.status.lock, NULL) != 0) {
        et_cli_error("serve: cannot create a lock");
        return ET_CLI_EXIT_ERROR;
    }

    if (pthread_cond_init(&sv.wake, NULL) != 0) {
        et_cli_error("serve: cannot create a condition");
        pthread_mutex_destroy(&sv.status.lock);
        return ET_CLI_EXIT_ERROR;
    }

    db = et_serve_db_open(sv.path, 1, err, sizeof(err));

    if (db == NULL) {
        et_cli_error("serve: %s", err);
        pthread_mutex_destroy(&sv.status.lock);
        return ET_CLI_EXIT_ERROR;
    }

    sv.store = et_serve_store_init(db, err, sizeof(err));

    if (sv.store == NULL) {
        et_cli_error("serve: %s", err);
        rc = ET_CLI_EXIT_ERROR;
        goto done;
    }

    if (et_cli_serve_size_init(&sv, db, conf.batch) != ET_OK) {
        rc = ET_CLI_EXIT_ERROR;
        goto done;
    }

    if (et_serve_http_start(&sv, err, sizeof(err)) != ET_OK) {
        et_cli_error("serve: %s", err);
        rc = ET_CLI_EXIT_ERROR;
        goto done;
    }

    et_cli_error("serve: the API listens on %s://%s%s%s",
                 sv.tls_cert ? "https" : "http", sv.listen, "/api/services",
                 sv.auth.nusers || sv.auth.token_len
                 ? ", credentials required" : "");

    if (sv.retain_us) {
        if (pthread_create(&sv.trimmer, NULL, et_cli_serve_trimmer, &sv)
            != 0)
        {
            et_cli_error("serve: cannot start the trimmer (--retain)");
            rc = ET_CLI_EXIT_ERROR;
            goto done;
        }

        sv.trimming = 1;
    }

    /* the stream, until SIGINT or SIGTERM; the API answers meanwhile */
    rc = et_cli_consume(cli, &conf);

done:

    if (sv.trimming) {
        pthread_mutex_lock(&sv.status.lock);
        sv.stop = 1;
        pthread_cond_signal(&sv.wake);
        pthread_mutex_unlock(&sv.status.lock);
        pthread_join(sv.trimmer, NULL);
    }

    et_serve_http_stop(&sv);
    et_serve_size_free(sv.size);
    et_serve_store_free(sv.store);
    sqlite3_close(db);
    pthread_cond_destroy(&sv.wake);
    pthread_mutex_destroy(&sv.status.lock);
    et_serve_auth_free(&sv.auth);
    free(sv.tls_cert_pem);
    free(sv.tls_key_pem);

    return rc;
}
