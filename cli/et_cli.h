/*
 * edgetrace, the command-line tool: what its files share.
 *
 * The tool reads the stream the modules write (docs/stream.md, "The
 * stream entry").  Entries are parsed into et_cli_span_t, which points
 * into the hiredis reply that holds them: a span lives as long as that
 * reply.
 */

#ifndef ET_CLI_H
#define ET_CLI_H


#include <stdio.h>

#include <hiredis/hiredis.h>

#include "et_core.h"
#include "et_redis_url.h"
#include "et_tls.h"


#define ET_CLI_VERSION      "0.1.0"

#define ET_CLI_EXIT_OK           0
#define ET_CLI_EXIT_ERROR        1
#define ET_CLI_EXIT_USAGE        2
#define ET_CLI_EXIT_REJECT       3
#define ET_CLI_EXIT_UNAVAILABLE  4   /* export --once: collector down */

#define ET_CLI_NS_PER_MS    1000000ULL
#define ET_CLI_NS_PER_S     1000000000ULL


typedef struct et_cli_cluster_s  et_cli_cluster_t;


/* the TLS settings of rediss:// (docs/cli.md "TLS"), as redis-cli names
 * them */
typedef enum {
    ET_CLI_TLS_CACERT = 0,
    ET_CLI_TLS_CERT,
    ET_CLI_TLS_KEY,
    ET_CLI_TLS_SNI,
    ET_CLI_TLS_NOPTS
} et_cli_tls_opt_e;


/* the global options, and the connection to Redis */
typedef struct {
    const char         *redis_text;
    et_redis_url_t      redis;
    char                redis_shown[1500]; /* the URL, password hidden */
    const char         *stream;
    uint64_t            timeout_ns;   /* Redis connect and command timeout */

    /* --shards: the stream's N shards and the key of each (docs/stream.md,
     * "Sharded streams"); one shard: keys[0] is "stream" */
    unsigned            shards;
    char              **keys;
    char               *stream_shown; /* "KEY", or "KEY (N shards)" */

    /* --cluster: the seeds of a Redis Cluster in "redis" (docs/cli.md,
     * "Redis Cluster") */
    int                 cluster;

    /* rediss://: the value of each TLS setting, and the option or
     * variable that gave it (for messages); the context made of them */
    const char         *tls_value[ET_CLI_TLS_NOPTS];
    const char         *tls_from[ET_CLI_TLS_NOPTS];
    et_tls_ctx_t       *tls;

    /* open (et_cli_redis_open): one Redis's connection, or a cluster's
     * slot map and its masters' connections */
    int                 open;
    uint64_t            block_ns;
    redisContext       *c;
    et_cli_cluster_t   *cl;
} et_cli_t;


/* why an entry is not an edgetrace span (version 1) */
typedef enum {
    ET_CLI_SPAN_OK = 0,
    ET_CLI_SPAN_NOT_ENTRY,      /* not an id and an even list of fields */
    ET_CLI_SPAN_VERSION,        /* "v" is not 1 */
    ET_CLI_SPAN_MISSING,        /* a required field is absent */
    ET_CLI_SPAN_DUPLICATE,      /* a known field appears twice */
    ET_CLI_SPAN_TRACE_ID,       /* not 32 lowercase hex, or all zero */
    ET_CLI_SPAN_SPAN_ID,        /* not 16 lowercase hex, or all zero */
    ET_CLI_SPAN_PARENT_ID,      /* not 16 lowercase hex, or all zero */
    ET_CLI_SPAN_KIND,           /* neither server nor client */
    ET_CLI_SPAN_TIME,           /* not a decimal uint64, or end < start */
    ET_CLI_SPAN_STATUS,         /* neither unset nor error */
    ET_CLI_SPAN_EMPTY           /* an empty name or service.name */
} et_cli_span_rc_e;


#define ET_CLI_KIND_SERVER  0
#define ET_CLI_KIND_CLIENT  1


typedef struct {
    et_str_t        id;           /* the entry id, "<ms>-<seq>" */
    char            trace_id[33];
    char            span_id[17];
    char            parent_id[17];/* empty for a root span */
    et_str_t        name;
    et_str_t        service;
    et_str_t        tracestate;   /* len 0 when absent */
    int             kind;
    int             error;
    uint64_t        start_ns;
    uint64_t        end_ns;
    const et_str_t *fields;       /* field, value, field, value, ... */
    size_t          nfields;      /* the number of strings in "fields" */
} et_cli_span_t;


/* ---- et_cli_span.c ---- */

/*
 * Parses an entry's "n" strings (field, value, ...) into "span", which
 * keeps pointers into "fields" (they must outlive it).  Returns
 * ET_CLI_SPAN_OK or why the entry is not a span; on failure "span" is
 * garbage.  Pure: no allocation.
 */
et_cli_span_rc_e et_cli_span_parse(const et_str_t *id, const et_str_t *fields,
    size_t n, et_cli_span_t *span);

/* a short constant text for a result code ("wrong version") */
const char *et_cli_span_reason(et_cli_span_rc_e rc);

/* the value of attribute "name", or NULL */
const et_str_t *et_cli_span_attr(const et_cli_span_t *span, const char *name);

/*
 * 1 when the span was kept by an outcome rule ("edgetrace.sampling" is
 * "outcome"), 0 when head-sampled or without the field (spans written
 * before it existed): docs/stream.md
 */
int et_cli_span_outcome(const et_cli_span_t *span);

/* 1 for the fields of the entry format, which are not attributes */
int et_cli_span_known_field(const et_str_t *f);

/* 1 when "f" is an "event.<n>" field */
int et_cli_span_event_field(const et_str_t *f);


/* the millisecond part of an entry id; 0 when it is not one */
uint64_t et_cli_entry_ms(const et_str_t *id);

/*
 * Compares two entry ids ("<ms>-<seq>") as Redis orders them: < 0, 0 or
 * > 0.  An id that is not one sorts first.
 */
int et_cli_entry_id_cmp(const et_str_t *a, const et_str_t *b);


/* ---- et_cli_shard.c ---- */

/*
 * Parses the value of --shards (or of $EDGETRACE_SHARDS, "name" the one
 * to name in the message): 1 to ET_STREAM_SHARDS_MAX, the modules'
 * shards=N.  A usage message and ET_ERROR otherwise.
 */
int et_cli_shards_parse(const char *name, const char *value, unsigned *n);

/*
 * Names the shards of cli->stream (cli->shards of them) into cli->keys
 * and cli->stream_shown, allocated; a usage message and ET_ERROR for a
 * key that cannot be sharded, or out of memory.
 */
int et_cli_shards_init(et_cli_t *cli);

void et_cli_shards_free(et_cli_t *cli);

/*
 * The shard whose key is the string reply "key" (a stream of an XREAD
 * reply), or -1.  Replies name the streams in the order asked for: the
 * search starts at "hint", the shard of the stream before.
 */
int et_cli_shard_index(const et_cli_t *cli, const redisReply *key,
    unsigned hint);

/* the shard of a trace, from its 32 lowercase hex digits */
unsigned et_cli_shard_of(const et_cli_t *cli, const char *trace_id);


/* ---- et_cli_duration.c ---- */

/*
 * Parses a duration: one or more "<number><unit>" ("1h30m", "250ms",
 * "1.5s"), units ns, us, ms, s, m, h, d; a bare number is seconds.
 * ET_ERROR with a constant text in "err" when it is not one, or overflows.
 */
int et_cli_duration_parse(const char *s, uint64_t *ns, const char **err);

/*
 * Parses a size: a number of bytes, "k", "m" or "g" after it (either
 * case, powers of 1024: "512k", "10g").  ET_ERROR with a constant text in
 * "err" when it is not one, or past 64 bits.
 */
int et_cli_size_parse(const char *s, uint64_t *bytes, const char **err);

/* writes "ns" as milliseconds with three decimals ("12.345ms") */
char *et_cli_duration_ms(char *buf, size_t size, uint64_t ns);


/* ---- et_cli_utf8.c ---- */

/* the bytes et_cli_utf8_sanitize() may write for "len" bytes of input */
#define ET_CLI_UTF8_MAX(len)  ((len) * 3)

/*
 * Copies "p" to "dst", each byte of an invalid UTF-8 sequence (overlong
 * forms, surrogates, code points above U+10FFFF, truncated or stray
 * continuation bytes) replaced by U+FFFD.  "dst" has
 * ET_CLI_UTF8_MAX(len) bytes.  Returns the bytes written.
 */
size_t et_cli_utf8_sanitize(const uint8_t *p, size_t len, uint8_t *dst);

/* 1 when "p" is valid UTF-8 */
int et_cli_utf8_valid(const uint8_t *p, size_t len);

/*
 * Writes bytes for a terminal: valid printable UTF-8 as is, control
 * characters and invalid bytes as \xNN, so no value can move the cursor
 * or change the terminal's state.  Returns the columns written (a
 * character each, four for an escape).
 */
size_t et_cli_print_safe(FILE *f, const uint8_t *p, size_t len);


/* ---- et_cli_redis.c ---- */

/*
 * Connects and authenticates as the URL says: one connection, or with
 * --cluster the slot map from a seed (the masters are connected to as
 * commands need them).  ET_ERROR with a message in "err" when that fails;
 * ET_DECLINED when retrying cannot help (--cluster on a Redis that is not
 * a cluster node).  Commands time out after --timeout, plus "block_ns"
 * for a connection whose commands block (XREAD BLOCK): Redis ends a block
 * only to about 100ms.
 */
int et_cli_redis_open(et_cli_t *cli, uint64_t block_ns, char *err,
    size_t size);

/* closes the connections (a cluster's map is kept, to ask its nodes) */
void et_cli_redis_close(et_cli_t *cli);

/* frees what et_cli_redis_open() allocated */
void et_cli_redis_free(et_cli_t *cli);

/*
 * The same on a connection of its own, for et_cli_redis_open() (over TLS
 * for a rediss:// URL: et_cli_tls_connect()); freed with
 * et_cli_redis_disconnect()
 */
redisContext *et_cli_redis_connect(const et_cli_t *cli, const char *host,
    int port, char *err, size_t size);

/*
 * Runs a command about "key" (the key it reads or writes: the master of
 * its slot runs it, in a cluster).  The reply, an error reply included,
 * is the caller's to free.  NULL when Redis was lost, with a message in
 * "err": every connection is then closed, and et_cli_redis_open() opens
 * them again.
 */
redisReply *et_cli_command(et_cli_t *cli, const char *key, int argc,
    const char **argv, const size_t *lens, char *err, size_t size);

/*
 * XREAD or XREADGROUP over every shard: "argv" is the command before its
 * STREAMS, "ids" the id of each shard.  The reply is one XREAD's over all
 * shards: an array of [key, entries] (nil when there is nothing), or the
 * first error reply; NULL as et_cli_command()'s.  "block": wait for
 * entries, about ET_CLI_BLOCK_MS at most (BLOCK on one Redis; a cluster
 * is asked again every ET_CLI_POLL_MS, docs/cli.md "Redis Cluster").
 */
redisReply *et_cli_streams(et_cli_t *cli, int argc, const char **argv,
    char **ids, int block, char *err, size_t size);

/*
 * The replies read between et_cli_arena_begin() and et_cli_arena_end()
 * (et_cli_streams()'s) are built in an arena, which the next
 * et_cli_arena_begin() empties: such a reply lives until the next stream
 * read.  et_cli_reply_free() frees any reply of the CLI's connections,
 * the arena's (nothing to do) or hiredis's; freeReplyObject() only
 * hiredis's.  et_cli_arena_release() gives the arena's memory back, at
 * exit.
 */
void et_cli_arena_begin(void);
void et_cli_arena_end(void);
void et_cli_reply_free(redisReply *r);
void et_cli_arena_release(void);

/* the BLOCK of tail's XREAD and export's XREADGROUP */
#define ET_CLI_BLOCK_MS  "1000"
#define ET_CLI_BLOCK_NS  (1000 * ET_CLI_NS_PER_MS)

/* a cluster has no BLOCK over several slots: its shards are polled */
#define ET_CLI_POLL_MS   100

/* reads the entries of an XRANGE/XREAD entry list */
typedef int (*et_cli_entry_pt)(void *data, const et_cli_span_t *span,
    et_cli_span_rc_e rc, const redisReply *entry);

/*
 * Calls "handler" for each entry of the array "list" (as XRANGE returns
 * it).  Entries that are not spans are passed with their rc.  Returns
 * the handler's first non-zero result, or 0.
 */
int et_cli_entries(const redisReply *list, et_cli_entry_pt handler,
    void *data);

/*
 * Reads the stream "key" from "since_ms" (entry ids are milliseconds) to
 * its end with XRANGE in pages, calling "handler" per entry.  A handler
 * may keep pointers into the replies: each page is handed to "keep"
 * (which takes ownership, or frees it) when not NULL, and is freed
 * otherwise.
 */
int et_cli_scan(et_cli_t *cli, const char *key, uint64_t since_ms,
    et_cli_entry_pt handler, void *data,
    void (*keep)(void *data, redisReply *page), char *err, size_t size);

/*
 * The id of the last entry (last != 0) or the first one of the stream
 * "key", "0-0" for an empty stream; ET_ERROR with a message in "err".
 */
int et_cli_stream_end(et_cli_t *cli, const char *key, int last,
    char *id, size_t size, char *err, size_t esize);

/* the key attributes of a span on one line ("GET /x 200") */
void et_cli_print_summary(FILE *f, const et_cli_span_t *span);

/* "service: name [kind] <summary>" and the end of the line */
void et_cli_print_span(FILE *f, const et_cli_span_t *span);

/*
 * Matches argv[*i] as "NAME VALUE" or "NAME=VALUE": 1 and "value" set
 * (*i moved past the value), 0 when it is another argument, -1 (with a
 * message) when the value is missing.
 */
int et_cli_opt_value(int argc, char **argv, int *i, const char *name,
    const char **value);

/* a duration option's value, or a usage message and ET_ERROR */
int et_cli_opt_duration(const char *name, const char *value, uint64_t *ns);

/* a size option's value ("10g"), or a usage message and ET_ERROR */
int et_cli_opt_size(const char *name, const char *value, uint64_t *bytes);

/* prints "edgetrace: <msg>" on stderr */
void et_cli_error(const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 1, 2)))
#endif
    ;


/* ---- et_cli_tls.c ---- */

/* the TLS settings of the environment ($EDGETRACE_CACERT, ...) */
void et_cli_tls_env(et_cli_t *cli);

/*
 * Matches argv[*i] as one of the TLS options (--cacert, --cert, --key,
 * --sni), as et_cli_opt_value() does: 1, 0 or -1 (with a message).
 */
int et_cli_tls_option(et_cli_t *cli, int argc, char **argv, int *i);

/*
 * Once the URL is parsed: the context of a rediss:// URL, its files read
 * now.  A usage message and ET_ERROR for a file that cannot be loaded, a
 * certificate without its key (or a key without its certificate), or a
 * TLS setting without a rediss:// URL.
 */
int et_cli_tls_init(et_cli_t *cli);

void et_cli_tls_free(et_cli_t *cli);

/*
 * A hiredis context on a TLS connection to "host":"port", opened as the
 * exporter opens its own (et_conn_open(): the handshake, AUTH, SELECT,
 * or a PING): hiredis 0.14 has no TLS, so it is given one end of a
 * socketpair, and a thread pumps bytes between the other end and the TLS
 * connection.  NULL with "cannot connect to Redis at <shown>: <why>" in
 * "err".  Freed with et_cli_redis_disconnect(), never redisFree().
 */
redisContext *et_cli_tls_connect(const et_cli_t *cli, const char *host,
    int port, const char *shown, char *err, size_t size);

/* frees a context of et_cli_redis_connect(): a TLS one's thread ends */
void et_cli_redis_disconnect(redisContext *c);

/*
 * Why a command on "c" failed: c->errstr, or for TLS the reason the
 * thread saw on Redis's side, when it saw one ("TLS: read failed: ...")
 */
const char *et_cli_redis_why(redisContext *c);


/* ---- et_cli_cluster.c ---- */

/* et_cli_redis_open(), et_cli_command(), et_cli_streams() on a cluster */
int et_cli_cluster_open(et_cli_t *cli, char *err, size_t size);
void et_cli_cluster_close(et_cli_t *cli);
void et_cli_cluster_free(et_cli_t *cli);
redisReply *et_cli_cluster_command(et_cli_t *cli, const char *key, int argc,
    const char **argv, const size_t *lens, char *err, size_t size);
redisReply *et_cli_cluster_streams(et_cli_t *cli, int argc,
    const char **argv, char **ids, char *err, size_t size);


/* ---- et_cli_export.c: its consumer group, for serve's store ---- */

typedef struct {
    const char   *cmd;          /* the command, in messages: "serve" */
    const char   *target;       /* where the spans go, in messages */

    /* the consumer group's options (et_cli_consume_opt) */
    const char   *group;
    const char   *consumer;     /* NULL: the host name */
    size_t        batch;
    uint64_t      claim_idle_ns;
    int           from_now;

    /*
     * Stores a batch of spans (pointing into replies that are freed after
     * the call): ET_OK, and the batch is acknowledged; ET_DECLINED, and it
     * is tried again after a backoff (250ms doubling to 10s), nothing
     * acknowledged; ET_ERROR ends the run.
     */
    int         (*store)(void *data, const et_cli_span_t *spans, size_t n);

    /* Redis can be read (up 1) or not (0): on every connection attempt */
    void        (*redis)(void *data, int up);

    /* a read of new entries found none (after its BLOCK): a moment for
     * work that waits for no batch; NULL: none */
    void        (*idle)(void *data);
    void         *data;
} et_cli_consume_t;

/*
 * Consumes the stream(s) into conf->store as export does into a
 * collector, until SIGINT, SIGTERM or et_cli_consume_stop().  Returns an
 * exit status.
 */
int et_cli_consume(et_cli_t *cli, et_cli_consume_t *conf);

/* --group, --consumer, --batch, --claim-idle, --from-now: as
 * et_cli_opt_value() returns, -1 after a usage message */
int et_cli_consume_opt(int argc, char **argv, int *i, et_cli_consume_t *conf);

void et_cli_consume_stop(void);


/* ---- the subcommands ---- */

int et_cli_show(et_cli_t *cli, int argc, char **argv);
int et_cli_tail(et_cli_t *cli, int argc, char **argv);
int et_cli_top(et_cli_t *cli, int argc, char **argv);
int et_cli_export(et_cli_t *cli, int argc, char **argv);
int et_cli_serve(et_cli_t *cli, int argc, char **argv);


#endif /* ET_CLI_H */
