/*
 * edgetrace serve: the stream stored in SQLite, and a JSON API over it
 * that follows Jaeger's query API (docs/serve.md).  What its files share.
 *
 * Two threads: the main one consumes the stream (et_cli_consume) and is
 * the database's only writer; libmicrohttpd's one polling thread answers
 * the API with a connection of its own, which WAL lets read while the
 * writer commits.  They share et_serve_status_t, under its lock.
 */

#ifndef ET_CLI_SERVE_H
#define ET_CLI_SERVE_H


#include <pthread.h>
#include <sys/socket.h>

#include <jansson.h>
#include <sqlite3.h>

#include "et_cli.h"


#define ET_SERVE_ARGS_MAX      64     /* query parameters of a request */
#define ET_SERVE_ARG_MAX       4096   /* bytes of a parameter's value */
#define ET_SERVE_TAGS_MAX      16     /* tag/tags of a trace search */
#define ET_SERVE_KEYWORD_MAX   256
#define ET_SERVE_LIMIT         100    /* Jaeger's default search limit */
#define ET_SERVE_LIMIT_MAX     1000   /* a bigger limit is lowered to it */
#define ET_SERVE_TRACE_SPANS   10000  /* spans returned of one trace */
#define ET_SERVE_POINTS_MAX    1440   /* points of a RED series */

#define ET_SERVE_US_PER_MIN    60000000ULL

/* the buckets of the per-minute duration histogram, upper bounds in us;
 * the last bucket has none */
#define ET_SERVE_BUCKETS       14


/* one query parameter, as libmicrohttpd decoded it: any bytes */
typedef struct {
    const char     *key;
    const uint8_t  *value;
    size_t          len;
} et_serve_arg_t;

typedef struct {
    et_serve_arg_t  arg[ET_SERVE_ARGS_MAX];
    size_t          n;
    int             overflow;      /* more than ET_SERVE_ARGS_MAX */
} et_serve_args_t;


/* /api/traces, /api/edgetrace/search and /api/edgetrace/red, parsed */
typedef struct {
    et_str_t        service;       /* len 0: none */
    et_str_t        operation;
    uint64_t        start_us;
    uint64_t        end_us;
    uint64_t        min_us;        /* 0: none */
    uint64_t        max_us;        /* 0: none */
    size_t          limit;
    size_t          ntags;
    et_str_t        tag_key[ET_SERVE_TAGS_MAX];
    et_str_t        tag_value[ET_SERVE_TAGS_MAX];
    json_t         *tags_doc;      /* holds the values of tags={...} */
    char           *match;         /* the keyword as an FTS5 query */
    uint64_t        step_us;       /* RED: the width of a point */
} et_serve_query_t;


/* ingestion and API state, shared by the two threads */
typedef struct {
    pthread_mutex_t lock;
    int             redis_up;      /* the consumer reads Redis */
    int             redis_known;   /* it has tried once */
    int             store_failing; /* the last commit failed */
    char            store_error[256];
    uint64_t        stored;        /* spans committed */
    uint64_t        duplicates;    /* spans already stored */
    uint64_t        batches;
    uint64_t        store_failures;
    uint64_t        redis_lost;    /* times Redis became unreachable */
    uint64_t        last_commit_ms;/* Unix ms of the last commit */
    uint64_t        newest_ms;     /* the latest end of a span stored */
    uint64_t        trimmed;       /* spans trimmed by --retain */
    uint64_t        trimmed_size;  /* and by --max-size */
    uint64_t        trim_failures;
    int             over_size;     /* the newest spans alone are over it */
    uint64_t        requests;
    uint64_t        bad_requests;  /* answered 4xx */
    uint64_t        failed_requests; /* answered 5xx */
    uint64_t        query_us;      /* time spent answering */
    uint64_t        auth_failures; /* answered 401 */
} et_serve_status_t;


/* --auth-file: a user and the bcrypt hash of its password */
typedef struct {
    char           *user;
    char           *hash;
} et_serve_user_t;

/* who may ask: nothing loaded, everyone (loopback only) */
typedef struct {
    et_serve_user_t *users;        /* --auth-file */
    size_t          nusers;
    char           *token;         /* --token-file */
    size_t          token_len;
} et_serve_auth_t;


typedef struct et_serve_store_s   et_serve_store_t;
typedef struct et_serve_trim_s    et_serve_trim_t;
typedef struct et_serve_size_s    et_serve_size_t;

typedef struct {
    et_cli_t          *cli;
    const char        *path;       /* the database */
    const char        *listen;
    struct sockaddr_storage  listen_sa;  /* --listen, parsed */
    et_serve_status_t  status;
    sqlite3           *reader;     /* the API thread's */
    void              *daemon;     /* struct MHD_Daemon */
    et_serve_store_t  *store;
    et_serve_auth_t    auth;
    const char        *tls_cert;   /* --tls-cert, --tls-key: HTTPS */
    const char        *tls_key;
    char              *tls_cert_pem;
    char              *tls_key_pem;

    uint64_t           retain_us;  /* --retain; 0: everything is kept */
    uint64_t           max_size;   /* --max-size; 0: no bound */
    et_serve_size_t   *size;       /* its trimming, by the writer */
    int                size_failing; /* its last step failed */
    pthread_t          trimmer;
    int                trimming;   /* the trimmer thread runs */
    int                stop;       /* it is to end, under status.lock */
    pthread_cond_t     wake;
} et_serve_t;


/* ---- et_cli_serve_query.c: query parameters (pure) ---- */

/* the value of "key" (the first one), or NULL */
const et_serve_arg_t *et_serve_arg(const et_serve_args_t *a,
    const char *key);

/* a parser of the parameters of an endpoint, as those below */
typedef int (*et_serve_parse_pt)(const et_serve_args_t *a, uint64_t now_us,
    et_serve_query_t *q, char *err, size_t size);

/*
 * Each parser fills "q" (et_serve_query_free() it after, whatever the
 * result) and returns ET_OK, or ET_ERROR with the reason in "err", to be
 * answered with a 400.  "now_us": the time defaults are taken from.
 */
int et_serve_traces_parse(const et_serve_args_t *a, uint64_t now_us,
    et_serve_query_t *q, char *err, size_t size);
int et_serve_search_parse(const et_serve_args_t *a, uint64_t now_us,
    et_serve_query_t *q, char *err, size_t size);
int et_serve_deps_parse(const et_serve_args_t *a, uint64_t now_us,
    et_serve_query_t *q, char *err, size_t size);
int et_serve_red_parse(const et_serve_args_t *a, uint64_t now_us,
    et_serve_query_t *q, char *err, size_t size);

void et_serve_query_free(et_serve_query_t *q);

/*
 * A trace id (1 to 32 hex digits, Jaeger's: zeros are added in front)
 * into 32 lowercase hex; a span id (1 to 16) into 16.  ET_ERROR when not
 * one, or all zero.
 */
int et_serve_hex_id(const uint8_t *p, size_t len, char *id, size_t digits);


/* ---- et_cli_serve_db.c: the database ---- */

/* opens (the writer: creates) the database; a message in "err" */
sqlite3 *et_serve_db_open(const char *path, int writer, char *err,
    size_t size);

/* the "n" statements of "sql" prepared once for the life of "db" (ET_ERROR
 * and SQLite's message in "err"), and finalized */
int et_serve_prepare_all(sqlite3 *db, const char **sql, int n,
    sqlite3_stmt **stmt, char *err, size_t size);
void et_serve_finalize_all(sqlite3_stmt **stmt, int n);

et_serve_store_t *et_serve_store_init(sqlite3 *db, char *err, size_t size);
void et_serve_store_free(et_serve_store_t *st);

/*
 * Stores "n" spans in one transaction: ET_OK once committed (*stored and
 * *dups counted), ET_DECLINED when SQLite failed (rolled back, "err"
 * says why: a full disk, a lock).
 */
int et_serve_store(et_serve_store_t *st, const et_cli_span_t *spans,
    size_t n, uint64_t *stored, uint64_t *dups, char *err, size_t size);

/* --retain: trimming with a connection of its own (et_serve_db_open) */
et_serve_trim_t *et_serve_trim_init(sqlite3 *db, char *err, size_t size);
void et_serve_trim_free(et_serve_trim_t *tr);

/*
 * Trims, in one transaction, at most "max" spans that started before
 * "before_us", with their text, and the per-minute aggregates
 * before it: ET_OK and *trimmed (below "max": nothing older is left),
 * or ET_ERROR with SQLite's message (rolled back).
 */
int et_serve_trim(et_serve_trim_t *tr, uint64_t before_us, size_t max,
    uint64_t *trimmed, char *err, size_t size);

/* the bucket of a duration in the histogram */
unsigned et_serve_bucket(uint64_t us);

/*
 * The API's reads, each a Jaeger "data" value (NULL and a message in
 * "err" when SQLite failed).  et_serve_db_trace() gives JSON null for an
 * unknown trace.
 */
typedef json_t *(*et_serve_read_pt)(sqlite3 *db, const et_serve_query_t *q,
    char *err, size_t size);

json_t *et_serve_db_services(sqlite3 *db, char *err, size_t size);
json_t *et_serve_db_operations(sqlite3 *db, const et_str_t *service,
    int objects, const char *kind, char *err, size_t size);
json_t *et_serve_db_trace(sqlite3 *db, const char *trace_id, char *err,
    size_t size);
json_t *et_serve_db_traces(sqlite3 *db, const et_serve_query_t *q,
    char *err, size_t size);
json_t *et_serve_db_dependencies(sqlite3 *db, const et_serve_query_t *q,
    char *err, size_t size);
json_t *et_serve_db_edges(sqlite3 *db, const et_serve_query_t *q,
    char *err, size_t size);
json_t *et_serve_db_search(sqlite3 *db, const et_serve_query_t *q,
    char *err, size_t size);
json_t *et_serve_db_red(sqlite3 *db, const et_serve_query_t *q, char *err,
    size_t size);
int et_serve_db_span_trace(sqlite3 *db, const char *span_id, char *trace_id,
    char *err, size_t size);


/*
 * FTS5's automerge of span_text: ET_SERVE_AUTOMERGE, 16 segments of a
 * level merged rather than FTS5's 4, so that a word is rewritten half as
 * often and a search reads a few more segments; 0 while --max-size merges
 * in its own steps.  Set by the writer that stores the batches, at its
 * start (a new database has it from its making): not by other
 * connections.  SQLite's result code.
 */
#define ET_SERVE_AUTOMERGE  16

int et_serve_db_automerge(sqlite3 *db, int n);


/* ---- et_cli_serve_trim.c: --max-size ---- */

/* what a step did, and found */
typedef struct {
    uint64_t        trimmed;       /* spans */
    uint64_t        used_bytes;    /* pages in use, before the step */
    uint64_t        file_bytes;    /* pages of the file */
    int             over;          /* over, and nothing older to trim */
    int             more;          /* a next step has work: spans to
                                      trim, segments to merge, or free
                                      pages to give back */
} et_serve_size_state_t;

/*
 * Trimming by size on "db", the writer's connection: the WAL checkpointed
 * and truncated at an eighth of "max" (at most 64 MB), the pages in use
 * kept under the rest, the newest "keep" spans never trimmed.  NULL and a
 * message in "err" when SQLite fails.
 */
et_serve_size_t *et_serve_size_init(sqlite3 *db, uint64_t max, size_t keep,
    char *err, size_t size);
void et_serve_size_free(et_serve_size_t *sz);

/* the database was made with auto_vacuum = INCREMENTAL: its file shrinks */
int et_serve_size_incremental(et_serve_size_t *sz);

/*
 * One bounded step, outside a transaction: at most one trim of the oldest
 * spans (a transaction) when the pages in use are over the bound, and a
 * few free pages given back.  ET_ERROR with SQLite's message (the trim
 * rolled back).
 */
int et_serve_size_step(et_serve_size_t *sz, et_serve_size_state_t *state,
    char *err, size_t size);

/* ---- et_cli_serve_auth.c: credentials and HTTPS ---- */

/*
 * --auth-file (htpasswd -B) and --token-file, read into "au": ET_ERROR
 * with the file (and its line) and the reason in "err".
 */
int et_serve_auth_users(et_serve_auth_t *au, const char *path, char *err,
    size_t size);
int et_serve_auth_token(et_serve_auth_t *au, const char *path, char *err,
    size_t size);

/* an Authorization header (NULL: none): ET_OK when it is valid */
int et_serve_auth_check(const et_serve_auth_t *au, const char *header);
void et_serve_auth_free(et_serve_auth_t *au);

/* sv->tls_cert and sv->tls_key read into their _pem, and checked to be
 * a certificate and its key; ET_ERROR and why in "err" */
int et_serve_tls_load(et_serve_t *sv, char *err, size_t size);


/* ---- et_cli_serve_http.c: the API ---- */

/*
 * Parses --listen ADDR:PORT ([V6]:PORT) into sv->listen_sa: a numeric
 * address, loopback unless credentials are asked for (docs/serve.md,
 * "Security"); ET_ERROR and why in "err".  Done with the options, before
 * anything is opened.
 */
int et_serve_listen(et_serve_t *sv, char *err, size_t size);
int et_serve_http_start(et_serve_t *sv, char *err, size_t size);
void et_serve_http_stop(et_serve_t *sv);

/* Unix time in microseconds */
uint64_t et_serve_now_us(void);


#endif /* ET_CLI_SERVE_H */
