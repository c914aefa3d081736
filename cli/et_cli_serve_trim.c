/*
 * edgetrace serve --max-size: the database kept under a size, the oldest
 * spans trimmed first (docs/serve.md, "Retention by size").
 *
 * What is measured is the pages in use (page_count - freelist_count), not
 * the file: deleting from the contentless FTS5 index writes delete
 * markers before a merge drops them, so the file may grow while spans are
 * deleted, but the pages that hold spans (their attributes in them) and
 * indexes go to the free list at once.  The free pages past the file's
 * share go back to the filesystem with incremental_vacuum (a database
 * created with auto_vacuum = INCREMENTAL, as et_serve_db_open() does),
 * and the WAL is checkpointed and truncated at its share of the bound.
 *
 * The writer calls et_serve_size_step() after each commit: one step is at
 * most one trim of ET_SERVE_SIZE_CHUNK spans, one FTS5 merge of at most
 * ET_SERVE_SIZE_MERGE_MAX pages and one vacuum of 256 pages, so that
 * ingestion waits for no more.
 */

#include <stdlib.h>
#include <string.h>

#include "et_cli_serve.h"


#define ET_SERVE_SIZE_CHUNK      1000  /* spans trimmed by a step */
#define ET_SERVE_SIZE_WAL_MAX    (64ULL << 20)
#define ET_SERVE_SIZE_MERGE_MIN  64    /* FTS5 pages merged by a step */
#define ET_SERVE_SIZE_MERGE_MAX  1024


typedef enum {
    ET_SERVE_SIZE_PAGES = 0,
    ET_SERVE_SIZE_SPANS,
    ET_SERVE_SIZE_OLDEST,
    ET_SERVE_SIZE_NEWEST,
    ET_SERVE_SIZE_VACUUM_PAGES,
    ET_SERVE_SIZE_MERGE,
    ET_SERVE_SIZE_NSTMTS
} et_serve_size_stmt_e;


static const char  *et_serve_size_sql[ET_SERVE_SIZE_NSTMTS] = {
    "SELECT page_count, freelist_count"
    " FROM pragma_page_count(), pragma_freelist_count()",
    "SELECT min(id), max(id) FROM spans",
    "SELECT start_us FROM spans ORDER BY start_us LIMIT 1 OFFSET ?",
    "SELECT start_us FROM spans ORDER BY start_us DESC LIMIT 1 OFFSET ?",
    "PRAGMA incremental_vacuum(256)",  /* pages given back by a step */
    "INSERT INTO span_text (span_text, rank) VALUES ('merge', ?)"
};


struct et_serve_size_s {
    sqlite3          *db;
    sqlite3_stmt     *stmt[ET_SERVE_SIZE_NSTMTS];
    et_serve_trim_t  *tr;
    uint64_t          page_size;
    uint64_t          high;        /* pages in use that start a trim */
    uint64_t          low;         /* and end it */
    uint64_t          file;        /* pages of the file past which free
                                      pages are given back */
    int               merge;       /* FTS5 pages merged by a step */
    size_t            keep;        /* the newest spans never trimmed */
    int               trimming;    /* between high and low */
    int               incremental; /* auto_vacuum = INCREMENTAL */
};


/* a one-row statement's first two integer columns (0 when NULL) */
static int
et_serve_size_row(sqlite3_stmt *q, sqlite3_int64 *a, sqlite3_int64 *b)
{
    int  rc;

    rc = sqlite3_step(q);

    if (rc == SQLITE_ROW) {
        *a = sqlite3_column_int64(q, 0);

        if (b != NULL) {
            *b = sqlite3_column_int64(q, 1);
        }

        rc = sqlite3_column_type(q, 0) == SQLITE_NULL ? SQLITE_DONE
                                                       : SQLITE_ROW;
    }

    sqlite3_reset(q);

    return rc;
}


/* a statement run to its end (incremental_vacuum gives a row per page):
 * SQLITE_DONE or the error */
static int
et_serve_size_exec(sqlite3_stmt *q)
{
    int  rc;

    do {
        rc = sqlite3_step(q);
    } while (rc == SQLITE_ROW);

    sqlite3_reset(q);

    return rc;
}


et_serve_size_t *
et_serve_size_init(sqlite3 *db, uint64_t max, size_t keep, char *err,
    size_t size)
{
    char               sql[256];
    uint64_t           wal;
    sqlite3_int64      page_size, vacuum;
    sqlite3_stmt      *q;
    et_serve_size_t   *sz;

    sz = calloc(1, sizeof(et_serve_size_t));

    if (sz == NULL) {
        snprintf(err, size, "out of memory");
        return NULL;
    }

    sz->db = db;
    sz->keep = keep;

    if (et_serve_prepare_all(db, et_serve_size_sql, ET_SERVE_SIZE_NSTMTS,
                             sz->stmt, err, size)
        != ET_OK)
    {
        et_serve_size_free(sz);
        return NULL;
    }

    if (sqlite3_prepare_v2(db, "SELECT page_size, auto_vacuum"
                           " FROM pragma_page_size(), pragma_auto_vacuum()",
                           -1, &q, NULL)
        != SQLITE_OK)
    {
        goto failed;
    }

    page_size = 0;
    vacuum = 0;
    et_serve_size_row(q, &page_size, &vacuum);
    sqlite3_finalize(q);

    if (page_size <= 0) {
        goto failed;
    }

    sz->page_size = (uint64_t) page_size;
    sz->incremental = vacuum == 2;

    /*
     * The bound, shared (docs/serve.md): a sixteenth for the WAL, which is
     * checkpointed when it holds that much and truncated to it after; the
     * pages in use trimmed from 13/16 of it down to 12/16; the free pages
     * past 14/16 given back.  The rest is the margin of a step: the batch
     * committed before it, the merge in it.
     */
    wal = max / 16 < ET_SERVE_SIZE_WAL_MAX ? max / 16 : ET_SERVE_SIZE_WAL_MAX;
    sz->high = max / 16 * 13 / sz->page_size;
    sz->low = max / 16 * 12 / sz->page_size;
    sz->file = max / 16 * 14 / sz->page_size;
    sz->merge = (int) (wal / sz->page_size / 2);
    sz->merge = sz->merge < ET_SERVE_SIZE_MERGE_MIN ? ET_SERVE_SIZE_MERGE_MIN
                : sz->merge > ET_SERVE_SIZE_MERGE_MAX ? ET_SERVE_SIZE_MERGE_MAX
                : sz->merge;

    /*
     * Debian's SQLite zeroes every page it frees (SECURE_DELETE), which
     * writes a trimmed page to the WAL once more: FAST zeroes what is
     * deleted in the pages written anyway, and no more.  FTS5 merges its
     * segments in the steps, a bounded number of pages at a time, rather
     * than when a batch happens to fill a level (automerge), which may
     * rewrite the whole index in one transaction.
     */
    snprintf(sql, sizeof(sql), "PRAGMA wal_autocheckpoint = %llu;"
             "PRAGMA journal_size_limit = %llu;"
             "PRAGMA secure_delete = FAST;",
             (unsigned long long) (wal / sz->page_size),
             (unsigned long long) wal);

    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK
        || et_serve_db_automerge(db, 0) != SQLITE_OK)
    {
        goto failed;
    }

    sz->tr = et_serve_trim_init(db, err, size);

    if (sz->tr == NULL) {
        et_serve_size_free(sz);
        return NULL;
    }

    return sz;

failed:

    snprintf(err, size, "%s", sqlite3_errmsg(db));
    et_serve_size_free(sz);

    return NULL;
}


void
et_serve_size_free(et_serve_size_t *sz)
{
    if (sz == NULL) {
        return;
    }

    et_serve_finalize_all(sz->stmt, ET_SERVE_SIZE_NSTMTS);

    et_serve_trim_free(sz->tr);
    free(sz);
}


int
et_serve_size_incremental(et_serve_size_t *sz)
{
    return sz->incremental;
}


/*
 * How many spans to trim to bring "used" pages down to the low mark (from
 * the pages per span: the rowids span the spans stored, near enough), and
 * the start they are before: the start of the first span kept, and never
 * past the newest "keep" spans.  0 when none may go.
 */
static int
et_serve_size_cut(et_serve_size_t *sz, uint64_t used, size_t *n,
    uint64_t *before_us)
{
    int            rc;
    uint64_t       spans, want;
    sqlite3_int64  first, last, kept, newest;

    *before_us = 0;

    rc = et_serve_size_row(sz->stmt[ET_SERVE_SIZE_SPANS], &first, &last);

    if (rc != SQLITE_ROW) {
        return rc;
    }

    spans = (uint64_t) (last - first) + 1;
    want = (used - sz->low) * spans / used + 1;
    *n = want < ET_SERVE_SIZE_CHUNK ? (size_t) want : ET_SERVE_SIZE_CHUNK;

    sqlite3_bind_int64(sz->stmt[ET_SERVE_SIZE_NEWEST], 1,
                       (sqlite3_int64) sz->keep);
    rc = et_serve_size_row(sz->stmt[ET_SERVE_SIZE_NEWEST], &newest, NULL);

    if (rc != SQLITE_ROW) {
        return rc;
    }

    sqlite3_bind_int64(sz->stmt[ET_SERVE_SIZE_OLDEST], 1,
                       (sqlite3_int64) *n);
    rc = et_serve_size_row(sz->stmt[ET_SERVE_SIZE_OLDEST], &kept, NULL);

    if (rc == SQLITE_DONE) {
        kept = newest;

    } else if (rc != SQLITE_ROW) {
        return rc;
    }

    *before_us = (uint64_t) (kept < newest ? kept : newest);

    return SQLITE_DONE;
}


int
et_serve_size_step(et_serve_size_t *sz, et_serve_size_state_t *state,
    char *err, size_t size)
{
    int            rc;
    size_t         n;
    uint64_t       used, before_us, trimmed;
    sqlite3_int64  pages, free_pages, changes;

    state->trimmed = 0;
    state->over = 0;
    state->more = 0;

    rc = et_serve_size_row(sz->stmt[ET_SERVE_SIZE_PAGES], &pages,
                           &free_pages);

    if (rc != SQLITE_ROW) {
        goto failed;
    }

    rc = SQLITE_DONE;
    used = (uint64_t) (pages - free_pages);
    state->used_bytes = used * sz->page_size;
    state->file_bytes = (uint64_t) pages * sz->page_size;

    if (used > sz->high) {
        sz->trimming = 1;

    } else if (used <= sz->low) {
        sz->trimming = 0;
    }

    if (sz->trimming) {
        rc = et_serve_size_cut(sz, used, &n, &before_us);

        if (rc != SQLITE_DONE) {
            goto failed;
        }

        if (before_us == 0) {
            /* nothing older than the newest spans: over, and kept */
            state->over = used > sz->high;

        } else if (et_serve_trim(sz->tr, before_us, n, &trimmed, err, size)
                   != ET_OK)
        {
            return ET_ERROR;

        } else {
            state->trimmed = trimmed;
            state->over = trimmed == 0 && used > sz->high;
        }
    }

    /* FTS5's segments merged, the delete markers of the trimmed spans
     * with them, a few pages at a time; two changes or more: it merged
     * (FTS5's documentation of 'merge'), and a next step may merge more.
     * A positive count merges only a level of several segments; over the
     * bound with no span left to trim, the markers may sit in fewer, and
     * a negative count merges those too */
    changes = sqlite3_total_changes64(sz->db);
    sqlite3_bind_int(sz->stmt[ET_SERVE_SIZE_MERGE], 1,
                     state->over ? -sz->merge : sz->merge);
    rc = et_serve_size_exec(sz->stmt[ET_SERVE_SIZE_MERGE]);

    if (rc != SQLITE_DONE) {
        goto failed;
    }

    state->more = sqlite3_total_changes64(sz->db) - changes >= 2;

    /* the free pages past the file's share back to the filesystem, a few
     * at a time; the file itself shrinks at the next checkpoint */
    if (sz->incremental && free_pages > 0 && (uint64_t) pages > sz->file) {
        if (et_serve_size_exec(sz->stmt[ET_SERVE_SIZE_VACUUM_PAGES])
            != SQLITE_DONE)
        {
            goto failed;
        }

        state->more = 1;
    }

    state->more |= state->trimmed > 0;

    return ET_OK;

failed:

    snprintf(err, size, "%s", sqlite3_errmsg(sz->db));

    return ET_ERROR;
}
