/*
 * edgetrace serve: the SQLite database (docs/serve.md, "Storage").
 *
 * One row per span, unique by trace id and span id: a span delivered
 * twice (at least once) is absorbed by INSERT OR IGNORE, and counted
 * nowhere else.  Text from the stream is stored as BLOBs, byte for byte:
 * a client's URL path may hold anything, and the API repairs it only as
 * JSON needs.  Every statement is prepared, every value bound.
 */

#include <stdlib.h>
#include <string.h>

#include "et_cli_serve.h"
#include "et_cli_json.h"


static void et_serve_tag_fn(sqlite3_context *ctx, int argc,
    sqlite3_value **argv);


/* upper bounds of the histogram buckets, in us (docs/serve.md) */
static const uint64_t  et_serve_bounds[ET_SERVE_BUCKETS - 1] = {
    1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
    1000000, 2500000, 5000000, 10000000
};


/*
 * The duration histogram of a caller -> callee pair (the caller's span):
 * a column per bucket, h0 to h13, the buckets of the RED rows, so that
 * SQL sums it over minutes.  The columns are added to the table when it
 * has none, whether it was just created or made by a serve before them:
 * their rows count 0 durations.
 */
#define ET_SERVE_DEP_HIST(X)                                                  \
    X("h0") X("h1") X("h2") X("h3") X("h4") X("h5") X("h6") X("h7")          \
    X("h8") X("h9") X("h10") X("h11") X("h12") X("h13")

#define ET_SERVE_DEP_ADD(h)                                                   \
    "ALTER TABLE dependencies ADD COLUMN " h " INTEGER NOT NULL DEFAULT 0;"
#define ET_SERVE_DEP_COLUMN(h)  ", " h
#define ET_SERVE_DEP_UPDATE(h)  ", " h " = " h " + excluded." h
#define ET_SERVE_DEP_PARAM(h)   ", ?"
#define ET_SERVE_DEP_SUM(h)     ", SUM(" h ")"


static const char  et_serve_schema[] =
    "CREATE TABLE IF NOT EXISTS spans ("
    " id INTEGER PRIMARY KEY,"
    " trace_id TEXT NOT NULL,"
    " span_id TEXT NOT NULL,"
    " parent_id TEXT,"
    " service BLOB NOT NULL,"
    " name BLOB NOT NULL,"
    " kind INTEGER NOT NULL,"
    " start_us INTEGER NOT NULL,"
    " duration_us INTEGER NOT NULL,"
    " error INTEGER NOT NULL,"
    " tracestate BLOB,"
    " fields BLOB NOT NULL);"
    "CREATE UNIQUE INDEX IF NOT EXISTS spans_trace"
    " ON spans (trace_id, span_id);"
    "CREATE INDEX IF NOT EXISTS spans_operation"
    " ON spans (service, name, start_us);"
    "CREATE INDEX IF NOT EXISTS spans_window"
    " ON spans (service, start_us, duration_us, error);"
    /* the indexes of earlier versions that the ones above replace: a
     * trace's children are found with spans_trace, a duration or a status
     * within a service's window with spans_window (docs/serve.md) */
    "DROP INDEX IF EXISTS spans_parent;"
    "DROP INDEX IF EXISTS spans_service;"
    "DROP INDEX IF EXISTS spans_duration;"
    "DROP INDEX IF EXISTS spans_status;"
    "CREATE INDEX IF NOT EXISTS spans_start ON spans (start_us);"
    /* the table of a row per attribute of earlier versions: a search by
     * tags reads the span's own attributes instead (it walked the spans
     * of the window with the rows too), and the ingest saves 40% of its
     * time (docs/serve.md, "Storage") */
    "DROP TABLE IF EXISTS tags;"
    "CREATE TABLE IF NOT EXISTS operations ("
    " service BLOB NOT NULL, name BLOB NOT NULL, kind INTEGER NOT NULL,"
    " PRIMARY KEY (service, name, kind)) WITHOUT ROWID;"
    /* the words of each span, without their text (contentless) nor a
     * row of its size (columnsize = 0: for ranking, which the search
     * does not do; an earlier version's table keeps its rows) */
    "CREATE VIRTUAL TABLE IF NOT EXISTS span_text"
    " USING fts5 (body, content = '', columnsize = 0);"
    "CREATE TABLE IF NOT EXISTS red ("
    " minute INTEGER NOT NULL, service BLOB NOT NULL, name BLOB NOT NULL,"
    " count INTEGER NOT NULL, errors INTEGER NOT NULL,"
    " duration_sum INTEGER NOT NULL, duration_max INTEGER NOT NULL,"
    " histogram BLOB NOT NULL,"
    " PRIMARY KEY (minute, service, name)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS dependencies ("
    " minute INTEGER NOT NULL, parent BLOB NOT NULL, child BLOB NOT NULL,"
    " count INTEGER NOT NULL, errors INTEGER NOT NULL,"
    " PRIMARY KEY (minute, parent, child)) WITHOUT ROWID;";


static const char  et_serve_dep_hist[] =
    "BEGIN IMMEDIATE;"
    ET_SERVE_DEP_HIST(ET_SERVE_DEP_ADD)
    "COMMIT;";


typedef enum {
    ET_SERVE_INSERT = 0,
    ET_SERVE_OPERATION,
    ET_SERVE_TEXT,
    ET_SERVE_RED_GET,
    ET_SERVE_RED_PUT,
    ET_SERVE_TRACE,
    ET_SERVE_EDGE,
    ET_SERVE_BEGIN,
    ET_SERVE_COMMIT,
    ET_SERVE_ROLLBACK,
    ET_SERVE_NSTMTS
} et_serve_stmt_e;


static const char  *et_serve_sql[ET_SERVE_NSTMTS] = {
    "INSERT OR IGNORE INTO spans (trace_id, span_id, parent_id, service,"
    " name, kind, start_us, duration_us, error, tracestate, fields)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "INSERT OR IGNORE INTO operations (service, name, kind)"
    " VALUES (?, ?, ?)",
    "INSERT INTO span_text (rowid, body) VALUES (?, ?)",
    "SELECT count, errors, duration_sum, duration_max, histogram FROM red"
    " WHERE minute = ? AND service = ? AND name = ?",
    "INSERT OR REPLACE INTO red (minute, service, name, count, errors,"
    " duration_sum, duration_max, histogram)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    "SELECT span_id, parent_id, service, start_us, duration_us, error"
    " FROM spans WHERE trace_id = ?",
    "INSERT INTO dependencies (minute, parent, child, count, errors"
    ET_SERVE_DEP_HIST(ET_SERVE_DEP_COLUMN) ") VALUES (?, ?, ?, ?, ?"
    ET_SERVE_DEP_HIST(ET_SERVE_DEP_PARAM) ")"
    " ON CONFLICT (minute, parent, child)"
    " DO UPDATE SET count = count + excluded.count,"
    " errors = errors + excluded.errors"
    ET_SERVE_DEP_HIST(ET_SERVE_DEP_UPDATE),
    "BEGIN IMMEDIATE",
    "COMMIT",
    "ROLLBACK"
};


/* a growing buffer */
typedef struct {
    uint8_t       *data;
    size_t         size;
} et_serve_buf_t;


/*
 * A batch's aggregates, summed in memory and written once a row at the
 * end of its transaction: a RED row per (minute, service, span name), a
 * dependency row per (minute, caller, callee), an operation per (service,
 * span name, kind).  Its two strings are
 * copied into the batch's key bytes (a column's bytes do not outlive the
 * step that read them).
 */
typedef struct {
    uint64_t       minute;
    size_t         a;          /* service or caller: offset in "keys" */
    size_t         alen;
    size_t         b;          /* span name or callee */
    size_t         blen;
    uint32_t       hash;
    unsigned       edge;       /* 0: RED, 1: dependency, 2: operation
                                  (its kind in "minute") */
    uint64_t       count;
    uint64_t       errors;
    uint64_t       sum;
    uint64_t       max;
    uint64_t       hist[ET_SERVE_BUCKETS];
} et_serve_agg_t;


struct et_serve_store_s {
    sqlite3       *db;
    sqlite3_stmt  *stmt[ET_SERVE_NSTMTS];
    et_serve_buf_t fields;     /* a span's fields */
    et_serve_buf_t text;       /* and its text */
    et_serve_buf_t aggs;       /* the batch's et_serve_agg_t */
    et_serve_buf_t slots;      /* its hash table: agg index + 1, 0 empty */
    et_serve_buf_t keys;       /* and the bytes of their strings */
    size_t         naggs;
    size_t         nslots;     /* a power of two */
    size_t         nkeys;
    int            ids;        /* the span id among the words: format 1 */
};


/* the dependency rows have their histogram: 1, or 0 */
static int
et_serve_has_dep_hist(sqlite3 *db)
{
    sqlite3_stmt  *q;

    if (sqlite3_prepare_v2(db, "SELECT h0 FROM dependencies", -1, &q, NULL)
        != SQLITE_OK)
    {
        return 0;
    }

    sqlite3_finalize(q);

    return 1;
}


/*
 * A database's format (its user_version): 1, made on or after 2026-12-07,
 * has each span's id among its words in span_text and no span_id index,
 * whose random inserts were most of the ingest's writes at 10 million
 * spans; 0, made before, keeps the index, and its words are without the
 * id (docs/serve.md, "Storage").  A span's words are the same when it is
 * deleted as when it was stored: the format is the database's, for life.
 */
#define ET_SERVE_FORMAT_IDS  1


static int
et_serve_ids_in_text(sqlite3 *db)
{
    int            v;
    sqlite3_stmt  *q;

    v = 0;

    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, NULL)
        == SQLITE_OK)
    {
        if (sqlite3_step(q) == SQLITE_ROW) {
            v = sqlite3_column_int(q, 0);
        }

        sqlite3_finalize(q);
    }

    return v >= ET_SERVE_FORMAT_IDS;
}


int
et_serve_db_automerge(sqlite3 *db, int n)
{
    char  sql[128];

    snprintf(sql, sizeof(sql), "INSERT INTO span_text (span_text, rank)"
             " VALUES ('automerge', %d);", n);

    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}


/* a new database (no spans table yet): 1 */
static int
et_serve_db_new(sqlite3 *db)
{
    int            n;
    sqlite3_stmt  *q;

    n = 1;

    if (sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM sqlite_master"
                           " WHERE name = 'spans'", -1, &q, NULL)
        == SQLITE_OK)
    {
        if (sqlite3_step(q) == SQLITE_ROW) {
            n = sqlite3_column_int(q, 0);
        }

        sqlite3_finalize(q);
    }

    return n == 0;
}


sqlite3 *
et_serve_db_open(const char *path, int writer, char *err, size_t size)
{
    int       rc, fresh;
    char     *msg;
    sqlite3  *db;

    rc = sqlite3_open_v2(path, &db, writer
                         ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                           | SQLITE_OPEN_NOMUTEX
                         : SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
                         NULL);

    if (rc != SQLITE_OK) {
        snprintf(err, size, "cannot open %s: %s", path,
                 db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return NULL;
    }

    /* the API's reads wait for a commit in progress rather than fail */
    sqlite3_busy_timeout(db, 5000);
    sqlite3_extended_result_codes(db, 1);

    /* 64 MB of page cache, and the file's first GB read through mmap(2)
     * rather than copied by pread(2) (docs/serve.md, "Storage") */
    msg = NULL;
    rc = sqlite3_exec(db, "PRAGMA cache_size = -65536;"
                      "PRAGMA mmap_size = 1073741824;", NULL, NULL, &msg);

    if (rc == SQLITE_OK) {
        rc = sqlite3_create_function(db, "edgetrace_tag", 3,
                                     SQLITE_UTF8 | SQLITE_DETERMINISTIC
                                     | SQLITE_INNOCUOUS, NULL,
                                     et_serve_tag_fn, NULL, NULL);
    }

    if (!writer && rc == SQLITE_OK) {
        return db;
    }

    /* WAL: readers do not block the writer; NORMAL: a commit is durable
     * at the next checkpoint, and never corrupt; a checkpoint every 128 MB
     * of WAL rather than 4: a page written by several batches is copied
     * back once; a new database's free pages can go back to the
     * filesystem (--max-size), an older one's cannot (docs/serve.md) */
    if (rc == SQLITE_OK) {
        rc = sqlite3_exec(db, "PRAGMA auto_vacuum = INCREMENTAL;"
                          "PRAGMA journal_mode = WAL;"
                          "PRAGMA synchronous = NORMAL;"
                          "PRAGMA wal_autocheckpoint = 32768;", NULL, NULL,
                          &msg);
    }

    fresh = rc == SQLITE_OK && et_serve_db_new(db);

    if (rc == SQLITE_OK) {
        rc = sqlite3_exec(db, et_serve_schema, NULL, NULL, &msg);
    }

    if (rc == SQLITE_OK && fresh) {
        rc = sqlite3_exec(db, "PRAGMA user_version = 1;", NULL, NULL, &msg);
    }

    /* the span id's index of the databases made before (format 0) */
    if (rc == SQLITE_OK) {
        rc = sqlite3_exec(db, et_serve_ids_in_text(db)
                              ? "DROP INDEX IF EXISTS spans_span;"
                              : "CREATE INDEX IF NOT EXISTS spans_span"
                                " ON spans (span_id);", NULL, NULL, &msg);
    }

    /* a new database's FTS5 merges 16 segments of a level rather than 4
     * (et_serve_db_automerge) */
    if (rc == SQLITE_OK && fresh) {
        rc = et_serve_db_automerge(db, ET_SERVE_AUTOMERGE);
    }

    if (rc == SQLITE_OK && et_serve_has_dep_hist(db) == 0) {
        rc = sqlite3_exec(db, et_serve_dep_hist, NULL, NULL, &msg);

        if (rc != SQLITE_OK) {
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        }
    }

    if (rc != SQLITE_OK) {
        snprintf(err, size, "%s: %s", path,
                 msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        sqlite3_close(db);
        return NULL;
    }

    return db;
}


int
et_serve_prepare_all(sqlite3 *db, const char **sql, int n,
    sqlite3_stmt **stmt, char *err, size_t size)
{
    int  i;

    for (i = 0; i < n; i++) {
        if (sqlite3_prepare_v3(db, sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                               &stmt[i], NULL)
            != SQLITE_OK)
        {
            snprintf(err, size, "%s", sqlite3_errmsg(db));
            return ET_ERROR;
        }
    }

    return ET_OK;
}


void
et_serve_finalize_all(sqlite3_stmt **stmt, int n)
{
    int  i;

    for (i = 0; i < n; i++) {
        sqlite3_finalize(stmt[i]);
    }
}


et_serve_store_t *
et_serve_store_init(sqlite3 *db, char *err, size_t size)
{
    et_serve_store_t  *st;

    st = calloc(1, sizeof(et_serve_store_t));

    if (st == NULL) {
        snprintf(err, size, "out of memory");
        return NULL;
    }

    st->db = db;
    st->ids = et_serve_ids_in_text(db);

    if (et_serve_prepare_all(db, et_serve_sql, ET_SERVE_NSTMTS, st->stmt,
                             err, size)
        != ET_OK)
    {
        et_serve_store_free(st);
        return NULL;
    }

    return st;
}


void
et_serve_store_free(et_serve_store_t *st)
{
    if (st == NULL) {
        return;
    }

    et_serve_finalize_all(st->stmt, ET_SERVE_NSTMTS);

    free(st->fields.data);
    free(st->text.data);
    free(st->aggs.data);
    free(st->slots.data);
    free(st->keys.data);
    free(st);
}


unsigned
et_serve_bucket(uint64_t us)
{
    unsigned  b;

    for (b = 0; b < ET_SERVE_BUCKETS - 1; b++) {
        if (us <= et_serve_bounds[b]) {
            return b;
        }
    }

    return ET_SERVE_BUCKETS - 1;
}


static int
et_serve_reserve(et_serve_buf_t *b, size_t size)
{
    uint8_t  *p;

    if (size <= b->size) {
        return ET_OK;
    }

    p = realloc(b->data, size);

    if (p == NULL) {
        return ET_ERROR;
    }

    b->data = p;
    b->size = size;

    return ET_OK;
}


static void
et_serve_put32(uint8_t *p, size_t v)
{
    p[0] = (uint8_t) (v >> 24);
    p[1] = (uint8_t) (v >> 16);
    p[2] = (uint8_t) (v >> 8);
    p[3] = (uint8_t) v;
}


static size_t
et_serve_get32(const uint8_t *p)
{
    return (size_t) p[0] << 24 | (size_t) p[1] << 16 | (size_t) p[2] << 8
           | p[3];
}


/*
 * The fields that are not the entry's own (attributes and events), in
 * order, each a 4-byte big-endian length and its bytes: key, value.
 */
static size_t
et_serve_fields(et_serve_buf_t *b, const et_cli_span_t *s)
{
    size_t           i, n, need;
    const et_str_t  *f;

    need = 0;

    for (i = 0; i + 1 < s->nfields; i += 2) {
        need += 8 + s->fields[i].len + s->fields[i + 1].len;
    }

    if (et_serve_reserve(b, need + 1) != ET_OK) {
        return (size_t) -1;
    }

    n = 0;

    for (i = 0; i + 1 < s->nfields; i += 2) {
        f = &s->fields[i];

        if (et_cli_span_known_field(f)) {
            continue;
        }

        et_serve_put32(b->data + n, f->len);
        memcpy(b->data + n + 4, f->data, f->len);
        n += 4 + f->len;
        et_serve_put32(b->data + n, f[1].len);
        memcpy(b->data + n + 4, f[1].data, f[1].len);
        n += 4 + f[1].len;
    }

    return n;
}


/*
 * The next field of a fields BLOB from "*off": 1 and its key and value,
 * 0 at the end (or at a length that does not fit: the BLOB is read, never
 * trusted)
 */
static int
et_serve_field_next(const uint8_t *f, size_t flen, size_t *off, et_str_t *k,
    et_str_t *v)
{
    size_t  o, klen, vlen;

    o = *off;

    if (f == NULL || o > flen || flen - o < 4) {
        return 0;
    }

    klen = et_serve_get32(f + o);

    if (klen > flen - o - 4 || flen - o - 4 - klen < 4) {
        return 0;
    }

    k->data = f + o + 4;
    k->len = klen;
    o += 4 + klen;
    vlen = et_serve_get32(f + o);

    if (vlen > flen - o - 4) {
        return 0;
    }

    v->data = f + o + 4;
    v->len = vlen;
    *off = o + 4 + vlen;

    return 1;
}


/*
 * The text FTS5 indexes, from the name and the fields BLOB: the span id
 * (format 1, else NULL), the name and every value, valid UTF-8.  The same
 * bytes again when the span is trimmed: a contentless FTS5 table is told
 * what it deletes.
 */
static size_t
et_serve_text(et_serve_buf_t *b, const char *span_id, const uint8_t *name,
    size_t nlen, const uint8_t *f, size_t flen)
{
    size_t    n, off, need;
    et_str_t  k, v;

    need = 17 + ET_CLI_UTF8_MAX(nlen) + 1;
    off = 0;

    while (et_serve_field_next(f, flen, &off, &k, &v)) {
        need += ET_CLI_UTF8_MAX(v.len) + 1;
    }

    if (et_serve_reserve(b, need) != ET_OK) {
        return (size_t) -1;
    }

    n = 0;

    /* the span id, a word of 16 hex digits (format 1) */
    if (span_id != NULL) {
        memcpy(b->data, span_id, 16);
        b->data[16] = '\n';
        n = 17;
    }

    n += et_cli_utf8_sanitize(name, nlen, b->data + n);
    off = 0;

    while (et_serve_field_next(f, flen, &off, &k, &v)) {
        b->data[n++] = '\n';
        n += et_cli_utf8_sanitize(v.data, v.len, b->data + n);
    }

    return n;
}


/*
 * edgetrace_tag(fields, key, value), in SQL: 1 when an attribute of the
 * fields BLOB has the key and the value, byte for byte, 0 otherwise.  A
 * search by tags asks it of the spans of its service and window
 * (docs/serve.md, "Storage"); an event is no attribute.
 */
static void
et_serve_tag_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    size_t          off, flen, klen, vlen;
    et_str_t        k, v;
    const uint8_t  *f, *key, *value;

    (void) argc;

    /* the bytes of each argument, whether bound as a BLOB or as text */
    f = sqlite3_value_blob(argv[0]);
    flen = (size_t) sqlite3_value_bytes(argv[0]);
    key = sqlite3_value_blob(argv[1]);
    klen = (size_t) sqlite3_value_bytes(argv[1]);
    value = sqlite3_value_blob(argv[2]);
    vlen = (size_t) sqlite3_value_bytes(argv[2]);
    off = 0;

    while (et_serve_field_next(f, flen, &off, &k, &v)) {
        if (k.len == klen && v.len == vlen
            && (klen == 0 || memcmp(k.data, key, klen) == 0)
            && (vlen == 0 || memcmp(v.data, value, vlen) == 0)
            && !et_cli_span_event_field(&k))
        {
            sqlite3_result_int(ctx, 1);
            return;
        }
    }

    sqlite3_result_int(ctx, 0);
}


static int
et_serve_blob(sqlite3_stmt *stmt, int i, const et_str_t *s)
{
    /* an empty BLOB, not NULL: the columns are NOT NULL */
    return sqlite3_bind_blob(stmt, i, s->len ? (const void *) s->data : "",
                             (int) s->len, SQLITE_STATIC);
}


static int
et_serve_step(sqlite3_stmt *stmt)
{
    int  rc;

    rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);

    return rc;
}


/* "b" holds at least "size" bytes, grown by doubling */
static int
et_serve_grow(et_serve_buf_t *b, size_t size)
{
    return et_serve_reserve(b, size <= b->size ? size
                                               : size < 2 * b->size
                                                 ? 2 * b->size : size);
}


static uint32_t
et_serve_agg_hash(unsigned edge, uint64_t minute, const uint8_t *a,
    size_t alen, const uint8_t *b, size_t blen)
{
    size_t    i;
    uint32_t  h;

    /* FNV-1a over the kind, the minute and the two strings */
    h = 2166136261u ^ edge;

    for (i = 0; i < 8; i++) {
        h = (h ^ (uint8_t) (minute >> (8 * i))) * 16777619u;
    }

    for (i = 0; i < alen; i++) {
        h = (h ^ a[i]) * 16777619u;
    }

    h = (h ^ 0xff) * 16777619u;

    for (i = 0; i < blen; i++) {
        h = (h ^ b[i]) * 16777619u;
    }

    return h;
}


/* the slots rebuilt for at least "n" aggregates, at most half full */
static int
et_serve_agg_rehash(et_serve_store_t *st, size_t n)
{
    size_t           i, k, nslots, mask;
    uint32_t        *slot;
    et_serve_agg_t  *g;

    for (nslots = 64; nslots < 2 * n; nslots *= 2) {
        /* void */
    }

    if (et_serve_reserve(&st->slots, nslots * sizeof(uint32_t)) != ET_OK) {
        return ET_ERROR;
    }

    slot = (uint32_t *) st->slots.data;
    memset(slot, 0, nslots * sizeof(uint32_t));
    mask = nslots - 1;
    g = (et_serve_agg_t *) st->aggs.data;

    for (i = 0; i < st->naggs; i++) {
        for (k = g[i].hash & mask; slot[k]; k = (k + 1) & mask) {
            /* void */
        }

        slot[k] = (uint32_t) i + 1;
    }

    st->nslots = nslots;

    return ET_OK;
}


/* the batch's aggregate of a key, new and zero the first time; NULL: no
 * memory */
static et_serve_agg_t *
et_serve_agg(et_serve_store_t *st, unsigned edge, uint64_t minute,
    const void *a, size_t alen, const void *b, size_t blen)
{
    size_t           k, mask;
    uint32_t        *slot, h;
    et_serve_agg_t  *g;

    if (2 * (st->naggs + 1) > st->nslots
        && et_serve_agg_rehash(st, st->naggs + 1) != ET_OK)
    {
        return NULL;
    }

    h = et_serve_agg_hash(edge, minute, a, alen, b, blen);
    slot = (uint32_t *) st->slots.data;
    mask = st->nslots - 1;

    for (k = h & mask; slot[k]; k = (k + 1) & mask) {
        g = (et_serve_agg_t *) st->aggs.data + slot[k] - 1;

        if (g->hash == h && g->edge == edge && g->minute == minute
            && g->alen == alen && g->blen == blen
            && memcmp(st->keys.data + g->a, a, alen) == 0
            && memcmp(st->keys.data + g->b, b, blen) == 0)
        {
            return g;
        }
    }

    if (et_serve_grow(&st->aggs, (st->naggs + 1) * sizeof(et_serve_agg_t))
        != ET_OK
        || et_serve_grow(&st->keys, st->nkeys + alen + blen + 1) != ET_OK)
    {
        return NULL;
    }

    g = (et_serve_agg_t *) st->aggs.data + st->naggs;
    memset(g, 0, sizeof(et_serve_agg_t));
    g->minute = minute;
    g->hash = h;
    g->edge = edge;
    g->a = st->nkeys;
    g->alen = alen;
    memcpy(st->keys.data + st->nkeys, a, alen);
    st->nkeys += alen;
    g->b = st->nkeys;
    g->blen = blen;
    memcpy(st->keys.data + st->nkeys, b, blen);
    st->nkeys += blen;

    slot[k] = (uint32_t) ++st->naggs;

    return g;
}


/* the span in its per-minute RED row of the batch */
static int
et_serve_red(et_serve_store_t *st, const et_cli_span_t *s, uint64_t start,
    uint64_t dur)
{
    et_serve_agg_t  *g;

    g = et_serve_agg(st, 0, start / ET_SERVE_US_PER_MIN, s->service.data,
                     s->service.len, s->name.data, s->name.len);

    if (g == NULL) {
        return SQLITE_NOMEM;
    }

    g->count++;
    g->errors += s->error != 0;
    g->sum += dur;
    g->max = dur > g->max ? dur : g->max;
    g->hist[et_serve_bucket(dur)]++;

    return SQLITE_DONE;
}


/* a caller -> callee call in the batch's dependency row of its minute:
 * the callee's failure, the caller's span's duration ("dur_us", in the
 * histogram) */
static int
et_serve_edge(et_serve_store_t *st, uint64_t start_us, const void *parent,
    int plen, const void *child, int clen, int error, uint64_t dur_us)
{
    et_serve_agg_t  *g;

    g = et_serve_agg(st, 1, start_us / ET_SERVE_US_PER_MIN, parent,
                     (size_t) plen, child, (size_t) clen);

    if (g == NULL) {
        return SQLITE_NOMEM;
    }

    g->count++;
    g->errors += error != 0;
    g->hist[et_serve_bucket(dur_us)]++;

    return SQLITE_DONE;
}


/* a RED row of the batch added to the one stored */
static int
et_serve_red_write(et_serve_store_t *st, const et_serve_agg_t *g)
{
    int             rc;
    uint8_t         hist[ET_SERVE_BUCKETS * 8];
    unsigned        b, k;
    uint64_t        count, errors, sum, max, v;
    sqlite3_stmt   *get, *put;
    const uint8_t  *h;
    et_str_t        svc, name;

    get = st->stmt[ET_SERVE_RED_GET];
    put = st->stmt[ET_SERVE_RED_PUT];
    svc.data = st->keys.data + g->a;
    svc.len = g->alen;
    name.data = st->keys.data + g->b;
    name.len = g->blen;

    sqlite3_bind_int64(get, 1, (sqlite3_int64) g->minute);
    et_serve_blob(get, 2, &svc);
    et_serve_blob(get, 3, &name);

    memset(hist, 0, sizeof(hist));
    count = 0;
    errors = 0;
    sum = 0;
    max = 0;

    rc = sqlite3_step(get);

    if (rc == SQLITE_ROW) {
        count = (uint64_t) sqlite3_column_int64(get, 0);
        errors = (uint64_t) sqlite3_column_int64(get, 1);
        sum = (uint64_t) sqlite3_column_int64(get, 2);
        max = (uint64_t) sqlite3_column_int64(get, 3);
        h = sqlite3_column_blob(get, 4);

        if (h != NULL && sqlite3_column_bytes(get, 4) == sizeof(hist)) {
            memcpy(hist, h, sizeof(hist));
        }

    } else if (rc != SQLITE_DONE) {
        sqlite3_reset(get);
        return rc;
    }

    sqlite3_reset(get);
    sqlite3_clear_bindings(get);

    /* the histogram: a big-endian uint64 per bucket */
    for (b = 0; b < ET_SERVE_BUCKETS; b++) {
        v = 0;

        for (k = 0; k < 8; k++) {
            v = v << 8 | hist[b * 8 + k];
        }

        v += g->hist[b];

        for (k = 0; k < 8; k++) {
            hist[b * 8 + 7 - k] = (uint8_t) (v >> (8 * k));
        }
    }

    sqlite3_bind_int64(put, 1, (sqlite3_int64) g->minute);
    et_serve_blob(put, 2, &svc);
    et_serve_blob(put, 3, &name);
    sqlite3_bind_int64(put, 4, (sqlite3_int64) (count + g->count));
    sqlite3_bind_int64(put, 5, (sqlite3_int64) (errors + g->errors));
    sqlite3_bind_int64(put, 6, (sqlite3_int64) (sum + g->sum));
    sqlite3_bind_int64(put, 7, (sqlite3_int64) (g->max > max ? g->max
                                                              : max));
    sqlite3_bind_blob(put, 8, hist, sizeof(hist), SQLITE_STATIC);

    return et_serve_step(put);
}


/* the batch's aggregates and operations, each row written once, in the
 * transaction */
static int
et_serve_aggs_write(et_serve_store_t *st)
{
    int              rc;
    size_t           i;
    unsigned         b;
    sqlite3_stmt    *e, *o;
    et_serve_agg_t  *g;

    rc = SQLITE_DONE;
    e = st->stmt[ET_SERVE_EDGE];

    for (i = 0; i < st->naggs && rc == SQLITE_DONE; i++) {
        g = (et_serve_agg_t *) st->aggs.data + i;

        if (g->edge == 0) {
            rc = et_serve_red_write(st, g);
            continue;
        }

        if (g->edge == 2) {
            o = st->stmt[ET_SERVE_OPERATION];
            sqlite3_bind_blob(o, 1, g->alen ? st->keys.data + g->a
                                            : (void *) "",
                              (int) g->alen, SQLITE_STATIC);
            sqlite3_bind_blob(o, 2, g->blen ? st->keys.data + g->b
                                            : (void *) "",
                              (int) g->blen, SQLITE_STATIC);
            sqlite3_bind_int(o, 3, (int) g->minute);
            rc = et_serve_step(o);
            continue;
        }

        sqlite3_bind_int64(e, 1, (sqlite3_int64) g->minute);
        sqlite3_bind_blob(e, 2, g->alen ? st->keys.data + g->a : (void *) "",
                          (int) g->alen, SQLITE_STATIC);
        sqlite3_bind_blob(e, 3, g->blen ? st->keys.data + g->b : (void *) "",
                          (int) g->blen, SQLITE_STATIC);
        sqlite3_bind_int64(e, 4, (sqlite3_int64) g->count);
        sqlite3_bind_int64(e, 5, (sqlite3_int64) g->errors);

        for (b = 0; b < ET_SERVE_BUCKETS; b++) {
            sqlite3_bind_int64(e, 6 + (int) b, (sqlite3_int64) g->hist[b]);
        }

        rc = et_serve_step(e);
    }

    return rc;
}


/*
 * The caller -> callee pairs a new span makes with the spans already
 * stored: its parent of another service, its children of other services.
 * Each pair is counted once, when the later of its two spans arrives.
 * The spans of the trace are read once, in the order of the trace id's
 * index, for both.
 */
static int
et_serve_edges(et_serve_store_t *st, const et_cli_span_t *s,
    uint64_t start, uint64_t dur)
{
    int            rc, other;
    size_t         len;
    const void    *service;
    sqlite3_stmt  *q;

    q = st->stmt[ET_SERVE_TRACE];
    sqlite3_bind_text(q, 1, s->trace_id, 32, SQLITE_STATIC);

    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        service = sqlite3_column_blob(q, 2);
        len = (size_t) sqlite3_column_bytes(q, 2);
        other = len != s->service.len
                || (len && memcmp(service, s->service.data, len) != 0);

        rc = SQLITE_DONE;

        if (!other) {
            continue;
        }

        /* its parent: the caller */
        if (s->parent_id[0] && sqlite3_column_bytes(q, 0) == 16
            && memcmp(sqlite3_column_text(q, 0), s->parent_id, 16) == 0)
        {
            rc = et_serve_edge(st, start, service, (int) len,
                               s->service.data, (int) s->service.len,
                               s->error != 0,
                               (uint64_t) sqlite3_column_int64(q, 4));
        }

        /* a child: the callee */
        if (rc == SQLITE_DONE && sqlite3_column_bytes(q, 1) == 16
            && memcmp(sqlite3_column_text(q, 1), s->span_id, 16) == 0)
        {
            rc = et_serve_edge(st, (uint64_t) sqlite3_column_int64(q, 3),
                               s->service.data, (int) s->service.len,
                               service, (int) len, sqlite3_column_int(q, 5),
                               dur);
        }

        if (rc != SQLITE_DONE) {
            break;
        }
    }

    sqlite3_reset(q);
    sqlite3_clear_bindings(q);

    return rc;
}


/* one span, in the open transaction: SQLITE_DONE, or SQLite's error */
static int
et_serve_store_span(et_serve_store_t *st, const et_cli_span_t *s,
    int *stored)
{
    int            rc;
    size_t         n, flen;
    uint64_t       start, dur;
    sqlite3_int64  row;
    sqlite3_stmt  *ins;

    *stored = 0;
    start = s->start_ns / 1000;
    dur = (s->end_ns - s->start_ns) / 1000;

    flen = et_serve_fields(&st->fields, s);

    if (flen == (size_t) -1) {
        return SQLITE_NOMEM;
    }

    ins = st->stmt[ET_SERVE_INSERT];
    sqlite3_bind_text(ins, 1, s->trace_id, 32, SQLITE_STATIC);
    sqlite3_bind_text(ins, 2, s->span_id, 16, SQLITE_STATIC);

    if (s->parent_id[0]) {
        sqlite3_bind_text(ins, 3, s->parent_id, 16, SQLITE_STATIC);
    }

    et_serve_blob(ins, 4, &s->service);
    et_serve_blob(ins, 5, &s->name);
    sqlite3_bind_int(ins, 6, s->kind);
    sqlite3_bind_int64(ins, 7, (sqlite3_int64) start);
    sqlite3_bind_int64(ins, 8, (sqlite3_int64) dur);
    sqlite3_bind_int(ins, 9, s->error != 0);

    if (s->tracestate.len) {
        et_serve_blob(ins, 10, &s->tracestate);
    }

    sqlite3_bind_blob(ins, 11, flen ? (const void *) st->fields.data : "",
                      (int) flen, SQLITE_STATIC);

    rc = et_serve_step(ins);

    if (rc != SQLITE_DONE) {
        return rc;
    }

    /* a duplicate: stored before, counted before */
    if (sqlite3_changes(st->db) == 0) {
        return SQLITE_DONE;
    }

    *stored = 1;
    row = sqlite3_last_insert_rowid(st->db);

    /* the operation, kept with the batch's aggregates: written once */
    if (et_serve_agg(st, 2, (uint64_t) s->kind, s->service.data,
                     s->service.len, s->name.data, s->name.len)
        == NULL)
    {
        return SQLITE_NOMEM;
    }

    n = et_serve_text(&st->text, st->ids ? s->span_id : NULL, s->name.data,
                      s->name.len, st->fields.data, flen);

    if (n == (size_t) -1) {
        return SQLITE_NOMEM;
    }

    sqlite3_bind_int64(st->stmt[ET_SERVE_TEXT], 1, row);
    sqlite3_bind_text(st->stmt[ET_SERVE_TEXT], 2,
                      n ? (char *) st->text.data : "", (int) n,
                      SQLITE_STATIC);

    rc = et_serve_step(st->stmt[ET_SERVE_TEXT]);

    if (rc != SQLITE_DONE) {
        return rc;
    }

    rc = et_serve_red(st, s, start, dur);

    if (rc != SQLITE_DONE) {
        return rc;
    }

    return et_serve_edges(st, s, start, dur);
}


int
et_serve_store(et_serve_store_t *st, const et_cli_span_t *spans, size_t n,
    uint64_t *stored, uint64_t *dups, char *err, size_t size)
{
    int       rc, one;
    size_t    i;
    uint64_t  new;

    rc = et_serve_step(st->stmt[ET_SERVE_BEGIN]);
    new = 0;
    st->naggs = 0;
    st->nkeys = 0;

    if (st->nslots) {
        memset(st->slots.data, 0, st->nslots * sizeof(uint32_t));
    }

    for (i = 0; i < n && rc == SQLITE_DONE; i++) {
        rc = et_serve_store_span(st, &spans[i], &one);
        new += one;
    }

    if (rc == SQLITE_DONE) {
        rc = et_serve_aggs_write(st);
    }

    if (rc == SQLITE_DONE) {
        rc = et_serve_step(st->stmt[ET_SERVE_COMMIT]);
    }

    if (rc != SQLITE_DONE) {
        snprintf(err, size, "%s", sqlite3_errmsg(st->db));

        if (!sqlite3_get_autocommit(st->db)) {
            et_serve_step(st->stmt[ET_SERVE_ROLLBACK]);
        }

        return ET_DECLINED;
    }

    *stored += new;
    *dups += n - new;

    return ET_OK;
}


/* ---- reads ---- */


static void
et_serve_db_error(sqlite3 *db, char *err, size_t size)
{
    snprintf(err, size, "database: %s", sqlite3_errmsg(db));
}


static json_t *
et_serve_column_string(sqlite3_stmt *q, int i)
{
    const void  *p;

    p = sqlite3_column_blob(q, i);

    return et_cli_json_string(p ? p : (const void *) "",
                              (size_t) sqlite3_column_bytes(q, i));
}


static int
et_serve_push(json_t *list, json_t *v)
{
    return v != NULL && json_array_append_new(list, v) == 0 ? ET_OK
                                                            : ET_ERROR;
}


typedef json_t *(*et_serve_row_pt)(sqlite3_stmt *q);


/* a Jaeger envelope's data: an element per row of "q", finalized here */
static json_t *
et_serve_rows(sqlite3 *db, sqlite3_stmt *q, et_serve_row_pt row, char *err,
    size_t size)
{
    int      rc;
    json_t  *list;

    list = json_array();
    rc = SQLITE_NOMEM;

    while (list != NULL && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (et_serve_push(list, row(q)) != ET_OK) {
            rc = SQLITE_NOMEM;
            break;
        }
    }

    if (rc != SQLITE_DONE) {
        if (rc == SQLITE_NOMEM) {
            snprintf(err, size, "out of memory");

        } else {
            et_serve_db_error(db, err, size);
        }

        json_decref(list);
        list = NULL;
    }

    sqlite3_finalize(q);

    return list;
}


static json_t *
et_serve_row_string(sqlite3_stmt *q)
{
    return et_serve_column_string(q, 0);
}


static const char *
et_serve_kind(sqlite3_stmt *q, int i)
{
    return sqlite3_column_int(q, i) == ET_CLI_KIND_CLIENT ? "client"
                                                          : "server";
}


static json_t *
et_serve_row_operation(sqlite3_stmt *q)
{
    return json_pack("{s:o, s:s}", "name", et_serve_column_string(q, 0),
                     "spanKind", et_serve_kind(q, 1));
}


static json_t *
et_serve_row_dependency(sqlite3_stmt *q)
{
    return json_pack("{s:o, s:o, s:I, s:I}", "parent",
                     et_serve_column_string(q, 0), "child",
                     et_serve_column_string(q, 1), "callCount",
                     (json_int_t) sqlite3_column_int64(q, 2), "errorCount",
                     (json_int_t) sqlite3_column_int64(q, 3));
}


static json_int_t et_serve_quantile(const uint64_t *hist, uint64_t count,
    double p);


/*
 * /api/edgetrace/dependencies: a pair with its rates, and the quantiles
 * of the caller's spans' durations, null when none was counted (rows of
 * a database made before the histogram)
 */
static json_t *
et_serve_row_edge(sqlite3_stmt *q)
{
    int         b;
    uint64_t    hist[ET_SERVE_BUCKETS], n, count;
    json_t     *e;
    const char *p[3] = { "p50", "p95", "p99" };
    double      share[3] = { 0.50, 0.95, 0.99 };

    n = 0;

    for (b = 0; b < ET_SERVE_BUCKETS; b++) {
        hist[b] = (uint64_t) sqlite3_column_int64(q, 5 + b);
        n += hist[b];
    }

    count = (uint64_t) sqlite3_column_int64(q, 2);

    e = json_pack("{s:o, s:o, s:I, s:I, s:f, s:f, s:I}", "parent",
                  et_serve_column_string(q, 0), "child",
                  et_serve_column_string(q, 1), "callCount",
                  (json_int_t) count, "errorCount",
                  (json_int_t) sqlite3_column_int64(q, 3), "callRate",
                  sqlite3_column_double(q, 4), "errorRate",
                  count ? (double) sqlite3_column_int64(q, 3) / count : 0.0,
                  "durationCount", (json_int_t) n);

    for (b = 0; e != NULL && b < 3; b++) {
        if (json_object_set_new(e, p[b], n ? json_integer(
                                    et_serve_quantile(hist, n, share[b]))
                                           : json_null())
            != 0)
        {
            json_decref(e);
            e = NULL;
        }
    }

    return e;
}


static json_t *
et_serve_row_match(sqlite3_stmt *q)
{
    return json_pack("{s:s, s:s, s:o, s:o, s:s, s:I, s:I, s:b}",
                     "traceID", sqlite3_column_text(q, 0),
                     "spanID", sqlite3_column_text(q, 1),
                     "serviceName", et_serve_column_string(q, 2),
                     "operationName", et_serve_column_string(q, 3),
                     "spanKind", et_serve_kind(q, 4),
                     "startTime", (json_int_t) sqlite3_column_int64(q, 5),
                     "duration", (json_int_t) sqlite3_column_int64(q, 6),
                     "error", sqlite3_column_int(q, 7));
}


static sqlite3_stmt *
et_serve_prepare(sqlite3 *db, const char *sql, char *err, size_t size)
{
    sqlite3_stmt  *q;

    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK) {
        et_serve_db_error(db, err, size);
        return NULL;
    }

    return q;
}


json_t *
et_serve_db_services(sqlite3 *db, char *err, size_t size)
{
    sqlite3_stmt  *q;

    q = et_serve_prepare(db, "SELECT DISTINCT service FROM operations"
                         " ORDER BY service", err, size);

    return q ? et_serve_rows(db, q, et_serve_row_string, err, size) : NULL;
}


/*
 * /api/services/{service}/operations: names; /api/operations: objects
 * {"name", "spanKind"}, of one kind when "kind" is not NULL
 */
json_t *
et_serve_db_operations(sqlite3 *db, const et_str_t *service, int objects,
    const char *kind, char *err, size_t size)
{
    sqlite3_stmt  *q;

    q = et_serve_prepare(db, objects
                         ? "SELECT name, kind FROM operations"
                           " WHERE service = ?1 AND (?2 IS NULL OR kind = ?2)"
                           " ORDER BY name, kind"
                         : "SELECT DISTINCT name FROM operations"
                           " WHERE service = ?1 ORDER BY name", err, size);

    if (q == NULL) {
        return NULL;
    }

    et_serve_blob(q, 1, service);

    if (objects && kind != NULL) {
        sqlite3_bind_int(q, 2, strcmp(kind, "client") == 0
                               ? ET_CLI_KIND_CLIENT : ET_CLI_KIND_SERVER);
    }

    return et_serve_rows(db, q, objects ? et_serve_row_operation
                                        : et_serve_row_string, err, size);
}


/* a Jaeger tag: {"key", "type", "value"} */
static json_t *
et_serve_tag(const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen)
{
    int64_t   n;
    et_str_t  name;

    name.data = k;
    name.len = klen;

    if (et_cli_json_int_attr(&name)
        && et_parse_int(v, vlen, 0, INT64_MAX, &n) == ET_OK)
    {
        return json_pack("{s:o, s:s, s:I}", "key", et_cli_json_string(k, klen),
                         "type", "int64", "value", (json_int_t) n);
    }

    return json_pack("{s:o, s:s, s:o}", "key", et_cli_json_string(k, klen),
                     "type", "string", "value", et_cli_json_string(v, vlen));
}


/*
 * An "event.<i>" value, "upstream.try peer=... status=...", as a Jaeger
 * log: the entry has no time per try, the log takes the span's start
 */
static json_t *
et_serve_log(uint64_t start_us, const uint8_t *p, size_t len)
{
    size_t   i, j, eq;
    json_t  *fields;

    fields = json_array();

    if (fields == NULL) {
        return NULL;
    }

    for (i = 0; i < len && p[i] != ' '; i++) {
        /* void */
    }

    if (et_serve_push(fields, et_serve_tag((const uint8_t *) "event", 5, p,
                                           i))
        != ET_OK)
    {
        json_decref(fields);
        return NULL;
    }

    while (i < len) {
        i++;

        for (j = i, eq = 0; j < len && p[j] != ' '; j++) {
            if (p[j] == '=' && eq == 0) {
                eq = j;
            }
        }

        if (eq > i
            && et_serve_push(fields, et_serve_tag(p + i, eq - i, p + eq + 1,
                                                  j - eq - 1))
               != ET_OK)
        {
            json_decref(fields);
            return NULL;
        }

        i = j;
    }

    return json_pack("{s:I, s:o}", "timestamp", (json_int_t) start_us,
                     "fields", fields);
}


/*
 * The span of a row of et_serve_span_sql, as Jaeger's UI model has it;
 * "processes" maps its service to a process id ("p1", "p2"...).
 */
#define ET_SERVE_SPAN_COLUMNS                                                 \
    "trace_id, span_id, parent_id, service, name, kind, start_us,"            \
    " duration_us, error, tracestate, fields"

static json_t *
et_serve_span(sqlite3_stmt *q, json_t *processes, json_t *pids)
{
    char           pid[32];
    size_t         flen, off;
    json_t        *span, *tags, *logs, *refs, *svc, *p;
    uint64_t       start;
    const uint8_t *f;
    et_str_t       fk, fv;

    svc = et_serve_column_string(q, 3);

    if (svc == NULL) {
        return NULL;
    }

    /* the process of the service, one per service of the trace */
    p = json_object_get(pids, json_string_value(svc));

    if (p == NULL) {
        snprintf(pid, sizeof(pid), "p%zu", json_object_size(pids) + 1);

        if (json_object_set_new(pids, json_string_value(svc),
                                json_string(pid)) != 0
            || json_object_set_new(processes, pid,
                                   json_pack("{s:O, s:[]}", "serviceName",
                                             svc, "tags")) != 0)
        {
            json_decref(svc);
            return NULL;
        }

    } else {
        snprintf(pid, sizeof(pid), "%s", json_string_value(p));
    }

    json_decref(svc);

    start = (uint64_t) sqlite3_column_int64(q, 6);
    tags = json_array();
    logs = json_array();
    refs = json_array();

    if (tags == NULL || logs == NULL || refs == NULL) {
        goto failed;
    }

    if (sqlite3_column_type(q, 2) != SQLITE_NULL
        && et_serve_push(refs, json_pack("{s:s, s:s, s:s}", "refType",
                                         "CHILD_OF", "traceID",
                                         sqlite3_column_text(q, 0),
                                         "spanID",
                                         sqlite3_column_text(q, 2)))
           != ET_OK)
    {
        goto failed;
    }

    if (et_serve_push(tags, json_pack("{s:s, s:s, s:s}", "key", "span.kind",
                                      "type", "string", "value",
                                      et_serve_kind(q, 5)))
        != ET_OK)
    {
        goto failed;
    }

    /* Jaeger marks a failed span with the tag error=true */
    if (sqlite3_column_int(q, 8)
        && et_serve_push(tags, json_pack("{s:s, s:s, s:b}", "key", "error",
                                         "type", "bool", "value", 1))
           != ET_OK)
    {
        goto failed;
    }

    if (sqlite3_column_type(q, 9) != SQLITE_NULL
        && et_serve_push(tags, et_serve_tag((const uint8_t *) "w3c.tracestate",
                                            14, sqlite3_column_blob(q, 9),
                                            (size_t)
                                            sqlite3_column_bytes(q, 9)))
           != ET_OK)
    {
        goto failed;
    }

    f = sqlite3_column_blob(q, 10);
    flen = (size_t) sqlite3_column_bytes(q, 10);
    off = 0;

    while (et_serve_field_next(f, flen, &off, &fk, &fv)) {
        if (et_cli_span_event_field(&fk)) {
            if (et_serve_push(logs, et_serve_log(start, fv.data, fv.len))
                != ET_OK)
            {
                goto failed;
            }

            continue;
        }

        if (et_serve_push(tags, et_serve_tag(fk.data, fk.len, fv.data,
                                             fv.len))
            != ET_OK)
        {
            goto failed;
        }
    }

    span = json_pack("{s:s, s:s, s:i, s:o, s:o, s:I, s:I, s:o, s:o, s:s,"
                     " s:n}",
                     "traceID", sqlite3_column_text(q, 0),
                     "spanID", sqlite3_column_text(q, 1),
                     "flags", 1,
                     "operationName", et_serve_column_string(q, 4),
                     "references", refs,
                     "startTime", (json_int_t) start,
                     "duration", (json_int_t) sqlite3_column_int64(q, 7),
                     "tags", tags,
                     "logs", logs,
                     "processID", pid,
                     "warnings");

    return span;

failed:

    json_decref(tags);
    json_decref(logs);
    json_decref(refs);

    return NULL;
}


json_t *
et_serve_db_trace(sqlite3 *db, const char *trace_id, char *err, size_t size)
{
    int            rc;
    json_t        *spans, *processes, *pids, *trace;
    sqlite3_stmt  *q;

    q = et_serve_prepare(db, "SELECT " ET_SERVE_SPAN_COLUMNS " FROM spans"
                         " WHERE trace_id = ? ORDER BY start_us, id LIMIT ?",
                         err, size);

    if (q == NULL) {
        return NULL;
    }

    sqlite3_bind_text(q, 1, trace_id, 32, SQLITE_STATIC);
    sqlite3_bind_int(q, 2, ET_SERVE_TRACE_SPANS);

    spans = json_array();
    processes = json_object();
    pids = json_object();
    trace = NULL;

    if (spans == NULL || processes == NULL || pids == NULL) {
        goto nomem;
    }

    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (et_serve_push(spans, et_serve_span(q, processes, pids))
            != ET_OK)
        {
            goto nomem;
        }
    }

    if (rc != SQLITE_DONE) {
        et_serve_db_error(db, err, size);
        goto failed;
    }

    sqlite3_finalize(q);
    json_decref(pids);

    if (json_array_size(spans) == 0) {
        json_decref(spans);
        json_decref(processes);
        return json_null();
    }

    trace = json_pack("{s:s, s:o, s:o, s:n}", "traceID", trace_id,
                      "spans", spans, "processes", processes, "warnings");

    if (trace == NULL) {
        snprintf(err, size, "out of memory");
    }

    return trace;

nomem:

    snprintf(err, size, "out of memory");

failed:

    sqlite3_finalize(q);
    json_decref(spans);
    json_decref(processes);
    json_decref(pids);

    return NULL;
}


/*
 * The traces of the trace ids in column 0 of "q", finalized here, each
 * once, at most "limit": "q" gives the matching spans the most recent
 * first, so that a trace comes at its most recent match, and the scan
 * stops at the limit-th trace instead of grouping every span of the
 * window (docs/serve.md, "Performance").
 */
static json_t *
et_serve_traces_of(sqlite3 *db, sqlite3_stmt *q, uint64_t limit, char *err,
    size_t size)
{
    int      rc;
    char     id[33];
    json_t  *list, *seen, *t;

    list = json_array();
    seen = json_object();
    rc = SQLITE_DONE;

    if (list == NULL || seen == NULL) {
        sqlite3_finalize(q);
        json_decref(list);
        json_decref(seen);
        snprintf(err, size, "out of memory");
        return NULL;
    }

    while (json_object_size(seen) < limit
           && (rc = sqlite3_step(q)) == SQLITE_ROW)
    {
        if (sqlite3_column_bytes(q, 0) != 32) {
            continue;
        }

        memcpy(id, sqlite3_column_text(q, 0), 32);
        id[32] = '\0';

        if (json_object_get(seen, id) != NULL) {
            continue;
        }

        if (json_object_set_new(seen, id, json_true()) != 0) {
            rc = SQLITE_NOMEM;
            break;
        }

        t = et_serve_db_trace(db, id, err, size);

        if (t == NULL) {
            sqlite3_finalize(q);
            json_decref(list);
            json_decref(seen);
            return NULL;
        }

        if (json_is_null(t)) {
            json_decref(t);
            continue;
        }

        if (json_array_append_new(list, t) != 0) {
            rc = SQLITE_NOMEM;
            break;
        }
    }

    if (json_object_size(seen) >= limit) {
        rc = SQLITE_DONE;
    }

    if (rc != SQLITE_DONE) {
        et_serve_db_error(db, err, size);
        json_decref(list);
        list = NULL;
    }

    sqlite3_finalize(q);
    json_decref(seen);

    return list;
}


/* start and end, as parameters "i" and "i + 1": a uint64 past SQLite's
 * int64 is the end of time */
static void
et_serve_bind_window(sqlite3_stmt *st, int i, const et_serve_query_t *q)
{
    sqlite3_bind_int64(st, i, (sqlite3_int64) (q->start_us > INT64_MAX
                                               ? INT64_MAX : q->start_us));
    sqlite3_bind_int64(st, i + 1, (sqlite3_int64) (q->end_us > INT64_MAX
                                                   ? INT64_MAX : q->end_us));
}


/* a search by tags reads the spans with their words when at most this
 * many have them, else the spans of the window (docs/serve.md) */
#define ET_SERVE_TAG_WORDS_MAX  20000


static int
et_serve_tag_is_error(const et_str_t *k)
{
    return k->len == 5 && memcmp(k->data, "error", 5) == 0;
}


/*
 * The tags' values that have a word (an ASCII letter or digit: FTS5's
 * unicode61 makes a word of it), each a phrase of FTS5 in double quotes
 * (a quote inside doubled), AND between them: a span with the tags has
 * their words, as its values were indexed (the same UTF-8 repair).  NULL
 * when no value has a word, or out of memory.
 */
static char *
et_serve_tag_match(const et_serve_query_t *q)
{
    char           *m;
    size_t          i, j, n, len, need;
    uint8_t        *v;
    const et_str_t *t;

    need = 1;

    for (i = 0; i < q->ntags; i++) {
        need += 2 * ET_CLI_UTF8_MAX(q->tag_value[i].len) + 8;
    }

    m = malloc(need);
    v = malloc(need);

    if (m == NULL || v == NULL) {
        free(m);
        free(v);
        return NULL;
    }

    n = 0;

    for (i = 0; i < q->ntags; i++) {
        t = &q->tag_value[i];

        for (j = 0; j < t->len; j++) {
            if ((t->data[j] >= '0' && t->data[j] <= '9')
                || ((t->data[j] | 0x20) >= 'a' && (t->data[j] | 0x20) <= 'z'))
            {
                break;
            }
        }

        if (j == t->len || et_serve_tag_is_error(&q->tag_key[i])) {
            continue;
        }

        len = et_cli_utf8_sanitize(t->data, t->len, v);
        n += (size_t) sprintf(m + n, "%s\"", n ? " AND " : "");

        for (j = 0; j < len; j++) {
            if (v[j] == '"') {
                m[n++] = '"';
            }

            m[n++] = (char) v[j];
        }

        m[n++] = '"';
    }

    m[n] = '\0';
    free(v);

    if (n == 0) {
        free(m);
        return NULL;
    }

    return m;
}


/* at most ET_SERVE_TAG_WORDS_MAX spans have the words of "match": 1 */
static int
et_serve_tag_words_few(sqlite3 *db, const char *match)
{
    int            few;
    sqlite3_stmt  *q;

    few = 0;

    if (sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM (SELECT 1 FROM span_text"
                           " WHERE span_text MATCH ?1 LIMIT ?2)", -1, &q,
                           NULL)
        != SQLITE_OK)
    {
        return 0;
    }

    sqlite3_bind_text(q, 1, match, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 2, ET_SERVE_TAG_WORDS_MAX + 1);

    if (sqlite3_step(q) == SQLITE_ROW) {
        few = sqlite3_column_int(q, 0) <= ET_SERVE_TAG_WORDS_MAX;
    }

    sqlite3_finalize(q);

    return few;
}


/*
 * /api/traces: the most recent traces with a span that matches.  The SQL
 * is made of constant fragments, one per condition given; every value is
 * bound (docs/serve.md).  With tags whose words few spans have, those
 * spans are read (through span_text) rather than every span of the
 * service's window: a tag no span of the window has would read them all.
 */
json_t *
et_serve_db_traces(sqlite3 *db, const et_serve_query_t *q, char *err,
    size_t size)
{
    char           sql[4096], *match;
    size_t         i, n, len;
    json_t        *r;
    sqlite3_stmt  *st;

    match = et_serve_tag_match(q);

    if (match != NULL && !et_serve_tag_words_few(db, match)) {
        free(match);
        match = NULL;
    }

    len = (size_t) snprintf(sql, sizeof(sql),
                            "SELECT trace_id FROM %s"
                            " WHERE service = ?1 AND start_us >= ?2"
                            " AND start_us <= ?3%s%s%s",
                            match != NULL
                            ? "(SELECT rowid AS r FROM span_text"
                              " WHERE span_text MATCH ?7) AS m"
                              " CROSS JOIN spans ON spans.id = m.r"
                            : "spans",
                            q->operation.len ? " AND name = ?4" : "",
                            q->min_us ? " AND duration_us >= ?5" : "",
                            q->max_us ? " AND duration_us <= ?6" : "");

    for (i = 0; i < q->ntags; i++) {
        n = 8 + 2 * i;

        /* error=true|false: the span's status, as Jaeger tags it */
        if (et_serve_tag_is_error(&q->tag_key[i])) {
            len += (size_t) snprintf(sql + len, sizeof(sql) - len,
                                     " AND error = (?%zu = 'true')", n + 1);
            continue;
        }

        len += (size_t) snprintf(sql + len, sizeof(sql) - len,
                                 " AND edgetrace_tag(fields, ?%zu, ?%zu)",
                                 n, n + 1);
    }

    snprintf(sql + len, sizeof(sql) - len, " ORDER BY start_us DESC");

    st = et_serve_prepare(db, sql, err, size);

    if (st == NULL) {
        free(match);
        return NULL;
    }

    et_serve_blob(st, 1, &q->service);
    et_serve_bind_window(st, 2, q);

    if (match != NULL) {
        sqlite3_bind_text(st, 7, match, -1, SQLITE_STATIC);
    }

    if (q->operation.len) {
        et_serve_blob(st, 4, &q->operation);
    }

    sqlite3_bind_int64(st, 5, (sqlite3_int64) q->min_us);
    sqlite3_bind_int64(st, 6, (sqlite3_int64) q->max_us);
    for (i = 0; i < q->ntags; i++) {
        n = 8 + 2 * i;
        et_serve_blob(st, (int) n, &q->tag_key[i]);

        /* text, so that 'true' compares as the literal does */
        sqlite3_bind_text(st, (int) n + 1,
                          q->tag_value[i].len ? (const char *)
                                                q->tag_value[i].data : "",
                          (int) q->tag_value[i].len, SQLITE_STATIC);

        if (!et_serve_tag_is_error(&q->tag_key[i])) {
            et_serve_blob(st, (int) n + 1, &q->tag_value[i]);
        }
    }

    /* the statement is finalized there, before "match" goes */
    r = et_serve_traces_of(db, st, q->limit, err, size);
    free(match);

    return r;
}


/* the caller -> callee pairs of the window, "sql" their columns */
static json_t *
et_serve_pairs(sqlite3 *db, const et_serve_query_t *q, const char *sql,
    et_serve_row_pt row, char *err, size_t size)
{
    double         minutes;
    sqlite3_stmt  *st;

    st = et_serve_prepare(db, sql, err, size);

    if (st == NULL) {
        return NULL;
    }

    sqlite3_bind_int64(st, 1, (sqlite3_int64) (q->start_us
                                               / ET_SERVE_US_PER_MIN));
    sqlite3_bind_int64(st, 2, (sqlite3_int64) (q->end_us
                                               / ET_SERVE_US_PER_MIN));

    /* a rate per minute of the window, however long (unused by Jaeger's
     * query: bound to nothing) */
    minutes = (double) (q->end_us - q->start_us) / ET_SERVE_US_PER_MIN;
    sqlite3_bind_double(st, 3, minutes > 0 ? minutes : 1);

    return et_serve_rows(db, st, row, err, size);
}


json_t *
et_serve_db_dependencies(sqlite3 *db, const et_serve_query_t *q, char *err,
    size_t size)
{
    return et_serve_pairs(db, q, "SELECT parent, child, SUM(count),"
                          " SUM(errors) FROM dependencies"
                          " WHERE minute >= ?1 AND minute <= ?2"
                          " GROUP BY parent, child ORDER BY parent, child",
                          et_serve_row_dependency, err, size);
}


json_t *
et_serve_db_edges(sqlite3 *db, const et_serve_query_t *q, char *err,
    size_t size)
{
    return et_serve_pairs(db, q, "SELECT parent, child, SUM(count),"
                          " SUM(errors), SUM(count) / ?3"
                          ET_SERVE_DEP_HIST(ET_SERVE_DEP_SUM)
                          " FROM dependencies"
                          " WHERE minute >= ?1 AND minute <= ?2"
                          " GROUP BY parent, child ORDER BY parent, child",
                          et_serve_row_edge, err, size);
}


/*
 * /api/edgetrace/search: the spans whose name or a value has the words,
 * the last "limit" stored, newest first.  FTS5 walks its matches from the
 * last stored down and stops at the limit: a word in millions of spans
 * costs what a rare one does (docs/serve.md, "Performance").
 */
json_t *
et_serve_db_search(sqlite3 *db, const et_serve_query_t *q, char *err,
    size_t size)
{
    sqlite3_stmt  *st;

    st = et_serve_prepare(db, "SELECT * FROM (SELECT s.trace_id, s.span_id,"
                          " s.service, s.name, s.kind, s.start_us,"
                          " s.duration_us, s.error FROM span_text"
                          " JOIN spans s ON s.id = span_text.rowid"
                          " WHERE span_text MATCH ?1"
                          " AND s.start_us >= ?2 AND s.start_us <= ?3"
                          " AND (?4 IS NULL OR s.service = ?4)"
                          " ORDER BY span_text.rowid DESC LIMIT ?5)"
                          " ORDER BY start_us DESC", err, size);

    if (st == NULL) {
        return NULL;
    }

    sqlite3_bind_text(st, 1, q->match, -1, SQLITE_STATIC);
    et_serve_bind_window(st, 2, q);

    if (q->service.len) {
        et_serve_blob(st, 4, &q->service);
    }

    sqlite3_bind_int64(st, 5, (sqlite3_int64) q->limit);

    return et_serve_rows(db, st, et_serve_row_match, err, size);
}


/* the duration below which a share "p" of the histogram's spans are */
static json_int_t
et_serve_quantile(const uint64_t *hist, uint64_t count, double p)
{
    unsigned  b;
    uint64_t  seen, want;

    want = (uint64_t) ((double) count * p + 0.999999);
    seen = 0;

    for (b = 0; b < ET_SERVE_BUCKETS - 1; b++) {
        seen += hist[b];

        if (seen >= want) {
            return (json_int_t) et_serve_bounds[b];
        }
    }

    /* past the last bound: the bucket has no upper end */
    return -1;
}


typedef struct {
    json_t    *series;
    json_t    *points;
    uint64_t   count;
    uint64_t   errors;
    uint64_t   sum;
    uint64_t   max;
    uint64_t   hist[ET_SERVE_BUCKETS];
    uint64_t   p_ts;
    uint64_t   p_count;
    uint64_t   p_errors;
    uint64_t   p_sum;
} et_serve_red_t;


static int
et_serve_red_point(et_serve_red_t *r)
{
    json_t  *o;

    if (r->p_count == 0) {
        return ET_OK;
    }

    o = json_pack("{s:I, s:I, s:I, s:I}", "ts",
                  (json_int_t) (r->p_ts / 1000), "count",
                  (json_int_t) r->p_count, "errors",
                  (json_int_t) r->p_errors, "avgDuration",
                  (json_int_t) (r->p_sum / r->p_count));

    r->p_count = 0;
    r->p_errors = 0;
    r->p_sum = 0;

    return et_serve_push(r->points, o);
}


/* the series of one service and span name, ended */
static int
et_serve_red_end(et_serve_red_t *r, json_t *list, json_t *svc, json_t *op)
{
    json_t  *o;

    if (et_serve_red_point(r) != ET_OK) {
        return ET_ERROR;
    }

    o = json_pack("{s:O, s:O, s:I, s:I, s:f, s:I, s:I, s:I, s:I, s:I, s:O}",
                  "service", svc, "operation", op,
                  "count", (json_int_t) r->count,
                  "errors", (json_int_t) r->errors,
                  "errorRate", r->count ? (double) r->errors
                                          / (double) r->count : 0.0,
                  "avgDuration", (json_int_t) (r->count ? r->sum / r->count
                                                        : 0),
                  "maxDuration", (json_int_t) r->max,
                  "p50", et_serve_quantile(r->hist, r->count, 0.50),
                  "p95", et_serve_quantile(r->hist, r->count, 0.95),
                  "p99", et_serve_quantile(r->hist, r->count, 0.99),
                  "points", r->points);

    json_decref(r->points);
    r->points = NULL;

    return et_serve_push(list, o);
}


/*
 * /api/edgetrace/red: per service and span name, from the per-minute
 * aggregates: rate, errors, durations, and a point per "step"
 */
json_t *
et_serve_db_red(sqlite3 *db, const et_serve_query_t *q, char *err,
    size_t size)
{
    int             rc, same;
    json_t         *list, *svc, *op, *s2, *o2;
    unsigned        b, k;
    uint64_t        ts, v;
    sqlite3_stmt   *st;
    et_serve_red_t  r;
    const uint8_t  *h;

    st = et_serve_prepare(db, "SELECT service, name, minute, count, errors,"
                          " duration_sum, duration_max, histogram FROM red"
                          " WHERE minute >= ?1 AND minute <= ?2"
                          " AND (?3 IS NULL OR service = ?3)"
                          " AND (?4 IS NULL OR name = ?4)"
                          " ORDER BY service, name, minute", err, size);

    if (st == NULL) {
        return NULL;
    }

    sqlite3_bind_int64(st, 1, (sqlite3_int64) (q->start_us
                                               / ET_SERVE_US_PER_MIN));
    sqlite3_bind_int64(st, 2, (sqlite3_int64) (q->end_us
                                               / ET_SERVE_US_PER_MIN));

    if (q->service.len) {
        et_serve_blob(st, 3, &q->service);
    }

    if (q->operation.len) {
        et_serve_blob(st, 4, &q->operation);
    }

    list = json_array();
    svc = NULL;
    op = NULL;
    memset(&r, 0, sizeof(r));

    while (list != NULL && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        s2 = et_serve_column_string(st, 0);
        o2 = et_serve_column_string(st, 1);

        if (s2 == NULL || o2 == NULL) {
            json_decref(s2);
            json_decref(o2);
            rc = SQLITE_NOMEM;
            break;
        }

        same = svc != NULL && json_equal(svc, s2) && json_equal(op, o2);

        if (!same) {
            if (svc != NULL && et_serve_red_end(&r, list, svc, op) != ET_OK)
            {
                json_decref(s2);
                json_decref(o2);
                rc = SQLITE_NOMEM;
                break;
            }

            json_decref(svc);
            json_decref(op);
            svc = s2;
            op = o2;
            memset(&r, 0, sizeof(r));
            r.points = json_array();

            if (r.points == NULL) {
                rc = SQLITE_NOMEM;
                break;
            }

        } else {
            json_decref(s2);
            json_decref(o2);
        }

        /* a point per step, at multiples of it since 1970 */
        ts = (uint64_t) sqlite3_column_int64(st, 2) * ET_SERVE_US_PER_MIN;
        ts -= ts % q->step_us;

        if (r.p_count && ts != r.p_ts && et_serve_red_point(&r) != ET_OK) {
            rc = SQLITE_NOMEM;
            break;
        }

        r.p_ts = ts;
        v = (uint64_t) sqlite3_column_int64(st, 3);
        r.count += v;
        r.p_count += v;
        v = (uint64_t) sqlite3_column_int64(st, 4);
        r.errors += v;
        r.p_errors += v;
        v = (uint64_t) sqlite3_column_int64(st, 5);
        r.sum += v;
        r.p_sum += v;
        v = (uint64_t) sqlite3_column_int64(st, 6);
        r.max = v > r.max ? v : r.max;

        h = sqlite3_column_blob(st, 7);

        if (h != NULL
            && sqlite3_column_bytes(st, 7) == ET_SERVE_BUCKETS * 8)
        {
            for (b = 0; b < ET_SERVE_BUCKETS; b++) {
                for (v = 0, k = 0; k < 8; k++) {
                    v = v << 8 | h[b * 8 + k];
                }

                r.hist[b] += v;
            }
        }
    }

    if (list != NULL && rc == SQLITE_DONE && svc != NULL
        && et_serve_red_end(&r, list, svc, op) != ET_OK)
    {
        rc = SQLITE_NOMEM;
    }

    json_decref(svc);
    json_decref(op);
    json_decref(r.points);

    if (list == NULL || rc == SQLITE_NOMEM) {
        snprintf(err, size, "out of memory");
        json_decref(list);
        list = NULL;

    } else if (rc != SQLITE_DONE) {
        et_serve_db_error(db, err, size);
        json_decref(list);
        list = NULL;
    }

    sqlite3_finalize(st);

    return list;
}


/* the trace of a span id: ET_OK, ET_DECLINED when unknown, ET_ERROR */
int
et_serve_db_span_trace(sqlite3 *db, const char *span_id, char *trace_id,
    char *err, size_t size)
{
    int            rc;
    char           word[19];
    sqlite3_stmt  *q;

    /* format 1: the spans with the id among their words, the one that has
     * it for an id; format 0: its index */
    q = et_serve_prepare(db, et_serve_ids_in_text(db)
                             ? "SELECT s.trace_id FROM span_text"
                               " JOIN spans s ON s.id = span_text.rowid"
                               " WHERE span_text MATCH ?2 AND s.span_id = ?1"
                               " LIMIT 1"
                             : "SELECT trace_id FROM spans WHERE span_id = ?1"
                               " LIMIT 1", err, size);

    if (q == NULL) {
        return ET_ERROR;
    }

    /* the id is 16 hex digits (the API checked them): a word of FTS5 */
    snprintf(word, sizeof(word), "\"%.16s\"", span_id);
    sqlite3_bind_text(q, 1, span_id, 16, SQLITE_STATIC);

    if (sqlite3_bind_parameter_count(q) == 2) {
        sqlite3_bind_text(q, 2, word, -1, SQLITE_STATIC);
    }
    rc = sqlite3_step(q);

    if (rc == SQLITE_ROW && sqlite3_column_bytes(q, 0) == 32) {
        memcpy(trace_id, sqlite3_column_text(q, 0), 32);
        trace_id[32] = '\0';
        sqlite3_finalize(q);
        return ET_OK;
    }

    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        et_serve_db_error(db, err, size);
        sqlite3_finalize(q);
        return ET_ERROR;
    }

    sqlite3_finalize(q);

    return ET_DECLINED;
}


/* ---- retention (--retain): the spans older than a time, trimmed ---- */

typedef enum {
    ET_SERVE_TRIM_OLD = 0,
    ET_SERVE_TRIM_TEXT,
    ET_SERVE_TRIM_SPAN,
    ET_SERVE_TRIM_RED,
    ET_SERVE_TRIM_DEPS,
    ET_SERVE_TRIM_BEGIN,
    ET_SERVE_TRIM_COMMIT,
    ET_SERVE_TRIM_ROLLBACK,
    ET_SERVE_TRIM_NSTMTS
} et_serve_trim_stmt_e;


static const char  *et_serve_trim_sql[ET_SERVE_TRIM_NSTMTS] = {
    "SELECT id, name, fields, span_id FROM spans WHERE start_us < ?"
    " ORDER BY start_us LIMIT ?",
    "INSERT INTO span_text (span_text, rowid, body) VALUES ('delete', ?, ?)",
    "DELETE FROM spans WHERE id = ?",
    "DELETE FROM red WHERE minute < ?",
    "DELETE FROM dependencies WHERE minute < ?",
    "BEGIN IMMEDIATE",
    "COMMIT",
    "ROLLBACK"
};


struct et_serve_trim_s {
    sqlite3       *db;
    sqlite3_stmt  *stmt[ET_SERVE_TRIM_NSTMTS];
    et_serve_buf_t rows;       /* a chunk's ids, names and fields */
    et_serve_buf_t text;
    int            ids;        /* the span id among the words: format 1 */
};


et_serve_trim_t *
et_serve_trim_init(sqlite3 *db, char *err, size_t size)
{
    et_serve_trim_t  *tr;

    tr = calloc(1, sizeof(et_serve_trim_t));

    if (tr == NULL) {
        snprintf(err, size, "out of memory");
        return NULL;
    }

    tr->db = db;
    tr->ids = et_serve_ids_in_text(db);

    if (et_serve_prepare_all(db, et_serve_trim_sql, ET_SERVE_TRIM_NSTMTS,
                             tr->stmt, err, size)
        != ET_OK)
    {
        et_serve_trim_free(tr);
        return NULL;
    }

    return tr;
}


void
et_serve_trim_free(et_serve_trim_t *tr)
{
    if (tr == NULL) {
        return;
    }

    et_serve_finalize_all(tr->stmt, ET_SERVE_TRIM_NSTMTS);
    free(tr->rows.data);
    free(tr->text.data);
    free(tr);
}


/* one span of a chunk: its text, itself (its attributes in its row) */
static int
et_serve_trim_span(et_serve_trim_t *tr, sqlite3_int64 id, const char *span_id,
    const uint8_t *name, size_t nlen, const uint8_t *f, size_t flen)
{
    int            rc;
    size_t         n;
    sqlite3_stmt  *q;

    n = et_serve_text(&tr->text, tr->ids ? span_id : NULL, name, nlen, f,
                      flen);

    if (n == (size_t) -1) {
        return SQLITE_NOMEM;
    }

    q = tr->stmt[ET_SERVE_TRIM_TEXT];
    sqlite3_bind_int64(q, 1, id);
    sqlite3_bind_text(q, 2, n ? (char *) tr->text.data : "", (int) n,
                      SQLITE_STATIC);

    rc = et_serve_step(q);

    if (rc == SQLITE_DONE) {
        sqlite3_bind_int64(tr->stmt[ET_SERVE_TRIM_SPAN], 1, id);
        rc = et_serve_step(tr->stmt[ET_SERVE_TRIM_SPAN]);
    }

    return rc;
}


/*
 * One transaction: at most "max" spans that started before "before_us"
 * (the oldest first), and the aggregates of the minutes before it.  The
 * rows are read first, then deleted: never under a running SELECT.
 */
int
et_serve_trim(et_serve_trim_t *tr, uint64_t before_us, size_t max,
    uint64_t *trimmed, char *err, size_t size)
{
    int             rc;
    size_t          n, len, off, count;
    uint8_t        *p;
    uint64_t        nlen, flen;
    sqlite3_int64   id;
    sqlite3_stmt   *q;
    const uint8_t  *name, *f;

    *trimmed = 0;
    rc = et_serve_step(tr->stmt[ET_SERVE_TRIM_BEGIN]);

    /* the chunk, each row: id, name length, fields length, span id (16
     * bytes), name, fields */
    q = tr->stmt[ET_SERVE_TRIM_OLD];
    sqlite3_bind_int64(q, 1, (sqlite3_int64) (before_us > INT64_MAX
                                              ? INT64_MAX : before_us));
    sqlite3_bind_int64(q, 2, (sqlite3_int64) max);
    len = 0;
    count = 0;

    while (rc == SQLITE_DONE && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        nlen = (uint64_t) sqlite3_column_bytes(q, 1);
        flen = (uint64_t) sqlite3_column_bytes(q, 2);

        if (et_serve_reserve(&tr->rows, len + 40 + nlen + flen) != ET_OK) {
            rc = SQLITE_NOMEM;
            break;
        }

        id = sqlite3_column_int64(q, 0);
        p = tr->rows.data + len;
        memcpy(p, &id, 8);
        memcpy(p + 8, &nlen, 8);
        memcpy(p + 16, &flen, 8);

        /* 16 hex digits, as stored (anything else: the words had no id
         * word that matched it either) */
        memset(p + 24, '0', 16);
        memcpy(p + 24, sqlite3_column_text(q, 3) ? sqlite3_column_text(q, 3)
                                                 : (const uint8_t *) "",
               sqlite3_column_bytes(q, 3) < 16 ? sqlite3_column_bytes(q, 3)
                                               : 16);

        if (nlen) {
            memcpy(p + 40, sqlite3_column_blob(q, 1), nlen);
        }

        if (flen) {
            memcpy(p + 40 + nlen, sqlite3_column_blob(q, 2), flen);
        }

        len += 40 + nlen + flen;
        count++;
        rc = SQLITE_DONE;
    }

    sqlite3_reset(q);
    sqlite3_clear_bindings(q);

    for (off = 0, n = 0; rc == SQLITE_DONE && n < count; n++) {
        p = tr->rows.data + off;
        memcpy(&id, p, 8);
        memcpy(&nlen, p + 8, 8);
        memcpy(&flen, p + 16, 8);
        name = p + 40;
        f = p + 40 + nlen;
        off += 40 + nlen + flen;

        rc = et_serve_trim_span(tr, id, (const char *) p + 24, name,
                                (size_t) nlen, f, (size_t) flen);
    }

    if (rc == SQLITE_DONE) {
        sqlite3_bind_int64(tr->stmt[ET_SERVE_TRIM_RED], 1,
                           (sqlite3_int64) (before_us / ET_SERVE_US_PER_MIN));
        rc = et_serve_step(tr->stmt[ET_SERVE_TRIM_RED]);
    }

    if (rc == SQLITE_DONE) {
        sqlite3_bind_int64(tr->stmt[ET_SERVE_TRIM_DEPS], 1,
                           (sqlite3_int64) (before_us / ET_SERVE_US_PER_MIN));
        rc = et_serve_step(tr->stmt[ET_SERVE_TRIM_DEPS]);
    }

    if (rc == SQLITE_DONE) {
        rc = et_serve_step(tr->stmt[ET_SERVE_TRIM_COMMIT]);
    }

    if (rc != SQLITE_DONE) {
        snprintf(err, size, "%s", rc == SQLITE_NOMEM ? "out of memory"
                                                     : sqlite3_errmsg(tr->db));

        if (!sqlite3_get_autocommit(tr->db)) {
            et_serve_step(tr->stmt[ET_SERVE_TRIM_ROLLBACK]);
        }

        return ET_ERROR;
    }

    *trimmed = count;

    return ET_OK;
}
