/*
 * Talking to Redis: connecting as the modules do (the same URL syntax,
 * AUTH, SELECT), and reading entries out of XRANGE / XREAD replies.
 */

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "et_cli.h"
#include "et_hiredis.h"


#define ET_CLI_PAGE  "1000"

/* the arena's blocks: 1 MB, or one object larger than that */
#define ET_CLI_ARENA_BLOCK  (1024 * 1024)


/*
 * Replies to the stream reads, in an arena.  A batch of entries is a
 * reply of tens of thousands of objects, a few per field of each entry,
 * each two allocations and two frees by hiredis's own constructors (a
 * tenth of serve's ingest, docs/performance.md).  While a read is in
 * et_cli_arena_begin() .. et_cli_arena_end(), the replies the reader
 * builds are carved out of blocks kept from one read to the next, and
 * given back all at once by the next read's et_cli_arena_begin().
 * Outside, the reader builds hiredis's objects.  et_cli_reply_free()
 * frees either, and a reply made of both (the merged reply of a
 * cluster's shards).  The stream reads are the consuming thread's alone.
 */
typedef struct et_cli_arena_block_s  et_cli_arena_block_t;

struct et_cli_arena_block_s {
    et_cli_arena_block_t  *next;
    size_t                 size;
    size_t                 used;
    /* the objects follow */
};


static struct {
    et_cli_arena_block_t       *blocks;
    et_cli_arena_block_t       *cur;
    int                         on;
    redisReplyObjectFunctions   hiredis;  /* hiredis's own constructors */
    redisReplyObjectFunctions   fn;       /* the readers' */
} et_cli_arena;


/* the block holding "p", or NULL: an object of hiredis's */
static et_cli_arena_block_t *
et_cli_arena_of(const void *p)
{
    const uint8_t         *b;
    et_cli_arena_block_t  *blk;

    for (blk = et_cli_arena.blocks; blk != NULL; blk = blk->next) {
        b = (const uint8_t *) (blk + 1);

        if ((const uint8_t *) p >= b && (const uint8_t *) p < b + blk->size) {
            return blk;
        }
    }

    return NULL;
}


/* the blocks are used in the order of their list: those past "cur" are
 * free in this read */
static void *
et_cli_arena_alloc(size_t n)
{
    void                  *p;
    size_t                 size;
    et_cli_arena_block_t  *blk, *prev;

    n = (n + 15) & ~(size_t) 15;
    prev = NULL;
    blk = et_cli_arena.cur;

    /* the next block kept from an earlier read, else a new one last */
    while (blk != NULL && blk->used + n > blk->size) {
        prev = blk;
        blk = blk->next;

        if (blk != NULL) {
            blk->used = 0;
        }
    }

    if (blk == NULL) {
        size = n > ET_CLI_ARENA_BLOCK ? n : ET_CLI_ARENA_BLOCK;
        blk = malloc(sizeof(et_cli_arena_block_t) + size);

        if (blk == NULL) {
            return NULL;
        }

        blk->size = size;
        blk->used = 0;
        blk->next = NULL;

        if (prev != NULL) {
            prev->next = blk;

        } else {
            et_cli_arena.blocks = blk;
        }
    }

    et_cli_arena.cur = blk;
    p = (uint8_t *) (blk + 1) + blk->used;
    blk->used += n;

    return p;
}


/* an object of "type" in the arena, set in its parent as hiredis does */
static redisReply *
et_cli_arena_object(const redisReadTask *task, int type)
{
    redisReply  *r, *parent;

    r = et_cli_arena_alloc(sizeof(redisReply));

    if (r == NULL) {
        return NULL;
    }

    memset(r, 0, sizeof(redisReply));
    r->type = type;

    if (task->parent != NULL) {
        parent = task->parent->obj;
        parent->element[task->idx] = r;
    }

    return r;
}


static void *
et_cli_arena_string(const redisReadTask *task, char *str, size_t len)
{
    redisReply  *r;

    if (!et_cli_arena.on) {
        return et_cli_arena.hiredis.createString(task, str, len);
    }

    r = et_cli_arena_object(task, task->type);

    if (r == NULL || (r->str = et_cli_arena_alloc(len + 1)) == NULL) {
        return NULL;
    }

    memcpy(r->str, str, len);
    r->str[len] = '\0';
    r->len = len;

    return r;
}


static void *
et_cli_arena_array(const redisReadTask *task, et_redis_count_t n)
{
    redisReply  *r;

    if (!et_cli_arena.on) {
        return et_cli_arena.hiredis.createArray(task, n);
    }

    r = et_cli_arena_object(task, REDIS_REPLY_ARRAY);

    if (r == NULL) {
        return NULL;
    }

    if (n > 0) {
        r->element = et_cli_arena_alloc((size_t) n * sizeof(redisReply *));

        if (r->element == NULL) {
            return NULL;
        }

        memset(r->element, 0, (size_t) n * sizeof(redisReply *));
    }

    r->elements = n;

    return r;
}


static void *
et_cli_arena_integer(const redisReadTask *task, long long v)
{
    redisReply  *r;

    if (!et_cli_arena.on) {
        return et_cli_arena.hiredis.createInteger(task, v);
    }

    r = et_cli_arena_object(task, REDIS_REPLY_INTEGER);

    if (r != NULL) {
        r->integer = v;
    }

    return r;
}


static void *
et_cli_arena_nil(const redisReadTask *task)
{
    if (!et_cli_arena.on) {
        return et_cli_arena.hiredis.createNil(task);
    }

    return et_cli_arena_object(task, REDIS_REPLY_NIL);
}


static void
et_cli_arena_free(void *r)
{
    et_cli_reply_free(r);
}


/*
 * The reader of a new connection builds its replies with the arena's
 * constructors.  hiredis's own are taken from the first reader: every
 * reader starts with them.  The CLI speaks RESP2 (it never sends HELLO
 * 3): hiredis 1.x's constructors of RESP3's types stay its own.
 */
static void
et_cli_arena_reader(redisReader *r)
{
    if (et_cli_arena.fn.createString == NULL) {
        et_cli_arena.hiredis = *r->fn;
        et_cli_arena.fn = *r->fn;
        et_cli_arena.fn.createString = et_cli_arena_string;
        et_cli_arena.fn.createArray = et_cli_arena_array;
        et_cli_arena.fn.createInteger = et_cli_arena_integer;
        et_cli_arena.fn.createNil = et_cli_arena_nil;
        et_cli_arena.fn.freeObject = et_cli_arena_free;
    }

    r->fn = &et_cli_arena.fn;
}


void
et_cli_arena_begin(void)
{
    et_cli_arena.cur = et_cli_arena.blocks;

    if (et_cli_arena.cur != NULL) {
        et_cli_arena.cur->used = 0;
    }

    et_cli_arena.on = 1;
}


void
et_cli_arena_end(void)
{
    et_cli_arena.on = 0;
}


void
et_cli_reply_free(redisReply *r)
{
    size_t  i;

    /* in the arena: given back by the next read, with its elements */
    if (r == NULL || et_cli_arena_of(r) != NULL) {
        return;
    }

    /* hiredis's, whose elements may be the arena's */
    if (r->type == REDIS_REPLY_ARRAY) {
        for (i = 0; i < r->elements; i++) {
            et_cli_reply_free(r->element[i]);
        }

        r->elements = 0;
    }

    freeReplyObject(r);
}


void
et_cli_arena_release(void)
{
    et_cli_arena_block_t  *blk;

    while ((blk = et_cli_arena.blocks) != NULL) {
        et_cli_arena.blocks = blk->next;
        free(blk);
    }

    et_cli_arena.cur = NULL;
}


void
et_cli_error(const char *fmt, ...)
{
    va_list  ap;

    fflush(stdout);
    fputs("edgetrace: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}


static struct timeval
et_cli_tv(uint64_t ns)
{
    struct timeval  tv;

    tv.tv_sec = (time_t) (ns / ET_CLI_NS_PER_S);
    tv.tv_usec = (suseconds_t) (ns % ET_CLI_NS_PER_S / 1000);

    return tv;
}


redisContext *
et_cli_redis_connect(const et_cli_t *cli, const char *host, int port,
    char *err, size_t size)
{
    char                   addr[300];
    const char            *shown;
    redisContext          *c;
    const et_redis_url_t  *url;

    url = &cli->redis;
    shown = cli->redis_shown;

    if (host != NULL) {
        /* a cluster's node */
        snprintf(addr, sizeof(addr), strchr(host, ':') ? "[%s]:%d" : "%s:%d",
                 host, port);
        shown = addr;
    }

    if (url->tls) {
        /* opened with its AUTH and SELECT, its certificate checked */
        c = et_cli_tls_connect(cli, host ? host : url->host,
                               host ? port : url->port, shown, err, size);
        if (c == NULL) {
            return NULL;
        }

    } else if (host != NULL) {
        c = redisConnectWithTimeout(host, port, et_cli_tv(cli->timeout_ns));

    } else if (url->path[0]) {
        c = redisConnectUnixWithTimeout(url->path, et_cli_tv(cli->timeout_ns));

    } else {
        c = redisConnectWithTimeout(url->host, url->port,
                                    et_cli_tv(cli->timeout_ns));
    }

    if (c == NULL) {
        snprintf(err, size, "cannot connect to Redis at %s: out of memory",
                 shown);
        return NULL;
    }

    if (c->err) {
        snprintf(err, size, "cannot connect to Redis at %s: %s", shown,
                 c->errstr);
        redisFree(c);
        return NULL;
    }

    et_cli_arena_reader(c->reader);

    if (redisSetTimeout(c, et_cli_tv(cli->timeout_ns + cli->block_ns))
        != REDIS_OK)
    {
        snprintf(err, size, "Redis at %s: cannot set a timeout: %s", shown,
                 c->errstr);
        et_cli_redis_disconnect(c);
        return NULL;
    }

    if (!url->tls && et_redis_handshake(c, url, err, size) != ET_OK) {
        redisFree(c);
        return NULL;
    }

    return c;
}


int
et_cli_redis_open(et_cli_t *cli, uint64_t block_ns, char *err, size_t size)
{
    int  rc;

    et_cli_redis_close(cli);

    cli->block_ns = block_ns;

    if (cli->cluster) {
        rc = et_cli_cluster_open(cli, err, size);

    } else {
        cli->c = et_cli_redis_connect(cli, NULL, 0, err, size);
        rc = cli->c != NULL ? ET_OK : ET_ERROR;
    }

    cli->open = rc == ET_OK;

    return rc;
}


void
et_cli_redis_close(et_cli_t *cli)
{
    if (cli->c != NULL) {
        et_cli_redis_disconnect(cli->c);
        cli->c = NULL;
    }

    if (cli->cl != NULL) {
        et_cli_cluster_close(cli);
    }

    cli->open = 0;
}


void
et_cli_redis_free(et_cli_t *cli)
{
    et_cli_redis_close(cli);
    et_cli_cluster_free(cli);
}


redisReply *
et_cli_command(et_cli_t *cli, const char *key, int argc, const char **argv,
    const size_t *lens, char *err, size_t size)
{
    redisReply  *r;

    if (!cli->open) {
        snprintf(err, size, "not connected");
        return NULL;
    }

    if (cli->cluster) {
        r = et_cli_cluster_command(cli, key, argc, argv, lens, err, size);

    } else {
        r = redisCommandArgv(cli->c, argc, argv, lens);

        if (r == NULL) {
            snprintf(err, size, "%s", et_cli_redis_why(cli->c));
        }
    }

    if (r == NULL) {
        et_cli_redis_close(cli);
    }

    return r;
}


redisReply *
et_cli_streams(et_cli_t *cli, int argc, const char **argv, char **ids,
    int block, char *err, size_t size)
{
    int           n;
    unsigned      s;
    const char  **a;
    redisReply   *r;

    if (!cli->open) {
        snprintf(err, size, "not connected");
        return NULL;
    }

    if (cli->cluster) {
        r = et_cli_cluster_streams(cli, argc, argv, ids, err, size);

        if (r == NULL) {
            et_cli_redis_close(cli);

        } else if (block && r->type == REDIS_REPLY_NIL) {
            /* nothing on any shard: ask again after a while */
            usleep(ET_CLI_POLL_MS * 1000);
        }

        return r;
    }

    /* one Redis: one command over every shard, today's */
    a = malloc((argc + 3 + 2 * cli->shards) * sizeof(char *));

    if (a == NULL) {
        snprintf(err, size, "out of memory");
        return NULL;
    }

    memcpy(a, argv, argc * sizeof(char *));
    n = argc;

    if (block) {
        a[n++] = "BLOCK";
        a[n++] = ET_CLI_BLOCK_MS;
    }

    a[n++] = "STREAMS";

    for (s = 0; s < cli->shards; s++) {
        a[n + s] = cli->keys[s];
        a[n + cli->shards + s] = ids[s];
    }

    n += 2 * cli->shards;

    et_cli_arena_begin();
    r = et_cli_command(cli, cli->stream, n, a, NULL, err, size);
    et_cli_arena_end();

    free(a);

    return r;
}


/* "err" becomes "CMD [KEY] failed: err" */
static void
et_cli_prefix(char *err, size_t size, const char *cmd, const char *key)
{
    char  why[512];

    snprintf(why, sizeof(why), "%s", err);
    snprintf(err, size, "%s%s%s failed: %s", cmd, key ? " " : "",
             key ? key : "", why);
}


static int
et_cli_is_string(const redisReply *r)
{
    return r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS;
}


int
et_cli_entries(const redisReply *list, et_cli_entry_pt handler, void *data)
{
    int               rc;
    size_t            i, j, n;
    et_str_t          id, *fields;
    et_cli_span_t     span;
    et_cli_span_rc_e  src;
    redisReply       *e, *kv;

    if (list == NULL || list->type != REDIS_REPLY_ARRAY) {
        return 0;
    }

    fields = NULL;
    n = 0;

    for (i = 0; i < list->elements; i++) {
        e = list->element[i];

        id.len = 0;
        id.data = NULL;
        src = ET_CLI_SPAN_NOT_ENTRY;

        if (e->type == REDIS_REPLY_ARRAY && e->elements == 2
            && et_cli_is_string(e->element[0]))
        {
            id.len = e->element[0]->len;
            id.data = (const uint8_t *) e->element[0]->str;
            kv = e->element[1];

            if (kv->type == REDIS_REPLY_ARRAY) {
                if (kv->elements > n) {
                    free(fields);
                    n = kv->elements;
                    fields = malloc(n * sizeof(et_str_t));

                    if (fields == NULL) {
                        et_cli_error("out of memory");
                        return -1;
                    }
                }

                for (j = 0; j < kv->elements; j++) {
                    if (!et_cli_is_string(kv->element[j])) {
                        break;
                    }

                    fields[j].len = kv->element[j]->len;
                    fields[j].data = (const uint8_t *) kv->element[j]->str;
                }

                if (j == kv->elements) {
                    src = et_cli_span_parse(&id, fields, j, &span);
                }
            }
        }

        if (src != ET_CLI_SPAN_OK) {
            span.id = id;
        }

        rc = handler(data, &span, src, e);

        if (rc != 0) {
            free(fields);
            return rc;
        }
    }

    free(fields);

    return 0;
}


int
et_cli_stream_end(et_cli_t *cli, const char *key, int last, char *id,
    size_t size, char *err, size_t esize)
{
    const char  *argv[6];
    redisReply  *r, *e;

    argv[0] = last ? "XREVRANGE" : "XRANGE";
    argv[1] = key;
    argv[2] = last ? "+" : "-";
    argv[3] = last ? "-" : "+";
    argv[4] = "COUNT";
    argv[5] = "1";

    r = et_cli_command(cli, key, 6, argv, NULL, err, esize);

    if (r == NULL) {
        /* err is the reason: the same message */
        et_cli_prefix(err, esize, argv[0], NULL);
        return ET_ERROR;
    }

    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(err, esize, "%s %s failed: %s", argv[0], key, r->str);
        et_cli_reply_free(r);
        return ET_ERROR;
    }

    snprintf(id, size, "0-0");

    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
        e = r->element[0];

        if (e->type == REDIS_REPLY_ARRAY && e->elements >= 1
            && e->element[0]->type == REDIS_REPLY_STRING
            && e->element[0]->len < size)
        {
            memcpy(id, e->element[0]->str, e->element[0]->len);
            id[e->element[0]->len] = '\0';
        }
    }

    et_cli_reply_free(r);

    return ET_OK;
}


/*
 * The span's fields array must outlive the handler when a handler keeps
 * spans: et_cli_entries() reuses one array, so keeping handlers copy
 * what they need (see show and top).
 */
int
et_cli_scan(et_cli_t *cli, const char *key, uint64_t since_ms,
    et_cli_entry_pt handler, void *data,
    void (*keep)(void *data, redisReply *page), char *err, size_t size)
{
    int          rc;
    char         start[64];
    const char  *argv[6];
    redisReply  *r, *last;

    snprintf(start, sizeof(start), "%llu", (unsigned long long) since_ms);

    for ( ;; ) {
        argv[0] = "XRANGE";
        argv[1] = key;
        argv[2] = start;
        argv[3] = "+";
        argv[4] = "COUNT";
        argv[5] = ET_CLI_PAGE;

        r = et_cli_command(cli, key, 6, argv, NULL, err, size);

        if (r == NULL) {
            et_cli_prefix(err, size, "XRANGE", key);
            return ET_ERROR;
        }

        if (r->type == REDIS_REPLY_ERROR) {
            snprintf(err, size, "XRANGE %s failed: %.*s", key,
                     (int) (r->len < 200 ? r->len : 200), r->str);
            et_cli_reply_free(r);
            return ET_ERROR;
        }

        if (r->type != REDIS_REPLY_ARRAY) {
            snprintf(err, size, "XRANGE %s: unexpected reply", key);
            et_cli_reply_free(r);
            return ET_ERROR;
        }

        if (r->elements == 0) {
            et_cli_reply_free(r);
            return ET_OK;
        }

        rc = et_cli_entries(r, handler, data);

        if (rc < 0) {
            et_cli_reply_free(r);
            snprintf(err, size, "out of memory");
            return ET_ERROR;
        }

        /* the next page starts after the last entry (exclusive range) */
        last = r->element[r->elements - 1];

        if (last->type != REDIS_REPLY_ARRAY || last->elements < 1
            || !et_cli_is_string(last->element[0])
            || last->element[0]->len > sizeof(start) - 2)
        {
            snprintf(err, size, "XRANGE %s: unexpected reply", key);
            et_cli_reply_free(r);
            return ET_ERROR;
        }

        start[0] = '(';
        memcpy(start + 1, last->element[0]->str, last->element[0]->len);
        start[1 + last->element[0]->len] = '\0';

        if (keep) {
            keep(data, r);

        } else {
            et_cli_reply_free(r);
        }

        if (rc > 0) {
            return ET_OK;
        }
    }
}


static void
et_cli_print_attr(FILE *f, const et_cli_span_t *span, const char *name,
    const char *before)
{
    const et_str_t  *v;

    v = et_cli_span_attr(span, name);

    if (v == NULL || v->len == 0) {
        return;
    }

    fputs(before, f);
    et_cli_print_safe(f, v->data, v->len);
}


void
et_cli_print_span(FILE *f, const et_cli_span_t *span)
{
    et_cli_print_safe(f, span->service.data, span->service.len);
    fputs(": ", f);
    et_cli_print_safe(f, span->name.data, span->name.len);
    fprintf(f, " [%s]", span->kind == ET_CLI_KIND_SERVER ? "server"
                                                          : "client");
    et_cli_print_summary(f, span);
    fputc('\n', f);
}


void
et_cli_print_summary(FILE *f, const et_cli_span_t *span)
{
    const et_str_t  *addr;

    et_cli_print_attr(f, span, "http.request.method", " ");

    if (span->kind == ET_CLI_KIND_SERVER) {
        et_cli_print_attr(f, span, "url.path", " ");
        et_cli_print_attr(f, span, "url.query", "?");

    } else {
        et_cli_print_attr(f, span, "url.full", " ");
    }

    et_cli_print_attr(f, span, "http.response.status_code", " ");

    if (span->kind == ET_CLI_KIND_CLIENT) {
        addr = et_cli_span_attr(span, "server.address");

        if (addr != NULL) {
            et_cli_print_attr(f, span, "server.address", " peer=");
            et_cli_print_attr(f, span, "server.port", ":");
        }

        et_cli_print_attr(f, span, "http.request.resend_count", " resends=");
    }

    if (span->error) {
        et_cli_print_attr(f, span, "error.type", " error=");
    }
}
