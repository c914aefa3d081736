/*
 * edgetrace export: a consumer-group forwarder from the stream to an
 * OTLP/HTTP or Zipkin collector.
 *
 * At least once: a batch's entries are acknowledged (XACK) only after the
 * collector answered 2xx.  What a forwarder read but did not acknowledge
 * stays in the group's pending list: the same consumer reads it again when
 * it restarts, and any other forwarder takes it over (XAUTOCLAIM) once it
 * has been idle for --claim-idle.  Entries that are not spans are counted
 * and acknowledged (they would block the group otherwise); pending entries
 * trimmed away by MAXLEN are counted as lost.
 *
 * Of a sharded stream, the group is one on every shard: one XREADGROUP
 * reads all of them (one per shard on a cluster, et_cli_streams), and
 * claiming and acknowledging go shard by shard, each on its shard's
 * master (docs/cli.md, "export" and "Redis Cluster").
 */

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "et_cli.h"
#include "et_cli_http.h"
#include "et_cli_json.h"


static const char  et_cli_export_usage[] =
"Usage: edgetrace [GLOBAL OPTIONS] export (--otlp URL | --zipkin URL)\n"
"                 [--group G] [--consumer C] [--batch N] [--once]\n"
"                 [--claim-idle DURATION] [--http-timeout DURATION]\n"
"                 [--from-now] [--header 'NAME: VALUE']...\n"
"\n"
"Forwards the spans of the stream to a collector, as a member of a Redis\n"
"consumer group: run several forwarders with the same group to share the\n"
"stream between them (of a sharded stream, --shards, the group is on\n"
"every shard, and they share all of them).  An entry is acknowledged\n"
"only once the collector answered 2xx; until then it stays pending, and\n"
"is read again by this consumer when it restarts, or taken over by\n"
"another member of the group when it has been idle for --claim-idle.\n"
"\n"
"Collector (one of them; the URL is used exactly as given):\n"
"  --otlp URL        OTLP/HTTP with JSON, e.g.\n"
"                    http://127.0.0.1:4318/v1/traces\n"
"  --zipkin URL      Zipkin v2 JSON, e.g.\n"
"                    http://127.0.0.1:9411/api/v2/spans\n"
"\n"
"Options:\n"
"  --group G         consumer group (default edgetrace-otlp or\n"
"                    edgetrace-zipkin); created at the start of the\n"
"                    stream when missing\n"
"  --from-now        a group created now starts with new entries instead\n"
"  --consumer C      this forwarder's name in the group (default: the\n"
"                    host name, the same on every run); a forwarder run\n"
"                    again under the same name first resends what it\n"
"                    left pending.  Forwarders running at the same time\n"
"                    need different names\n"
"  --batch N         spans per request (default 200)\n"
"  --once            deliver what is in the stream (and what other\n"
"                    consumers left idle), then exit; a batch is tried\n"
"                    6 times at most\n"
"  --claim-idle DURATION\n"
"                    take over entries another consumer has left pending\n"
"                    this long (default 1m)\n"
"  --http-timeout DURATION\n"
"                    collector connect and request timeout (default 10s)\n"
"  --header 'NAME: VALUE'\n"
"                    an HTTP header sent with every request, e.g.\n"
"                    'Authorization: Bearer TOKEN' (repeatable)\n"
"  -h, --help        show this help and exit\n"
"\n"
"Collector down, or answering 5xx, 408 or 429: nothing is acknowledged,\n"
"the batch is retried with a backoff (250ms doubling to 10s); with\n"
"--once, after 6 attempts the forwarder gives up and exits with status\n"
"4, the batch pending.  Any other 4xx: the collector refuses the spans,\n"
"retrying cannot help; the answer is shown, the entries stay pending and\n"
"the forwarder exits with status 3.  Either way a run under the same\n"
"--group and --consumer resends the pending batch first.  Redis\n"
"unreachable: an error with --once, otherwise it reconnects.\n"
"SIGINT or SIGTERM: the batch in flight is abandoned (it stays pending),\n"
"the counts are printed, the exit status is 0.\n";


#define ET_CLI_BACKOFF_MIN   (250 * ET_CLI_NS_PER_MS)
#define ET_CLI_BACKOFF_MAX   (10 * ET_CLI_NS_PER_S)
#define ET_CLI_REDIS_RETRY   (5 * ET_CLI_NS_PER_S)
#define ET_CLI_REASONS_SHOWN 3
#define ET_CLI_HEADERS       16

/* --once gives up on a batch after this many attempts: about 8s of
 * backoff, plus --http-timeout per attempt, so a cron job ends */
#define ET_CLI_ONCE_TRIES    6


typedef enum {
    ET_CLI_DELIVERED = 0,
    ET_CLI_REDIS_LOST,
    ET_CLI_REJECTED,
    ET_CLI_GAVE_UP,
    ET_CLI_STOPPED,
    ET_CLI_FAILED
} et_cli_export_rc_e;


typedef struct {
    et_cli_t          *cli;
    const char        *cmd;           /* "export", or "serve" */
    et_cli_consume_t  *sink;          /* serve's store; NULL: a collector */
    const char        *url;
    int                zipkin;
    const char        *group;
    const char        *consumer;
    size_t             batch;
    int                once;
    int                from_now;
    uint64_t           claim_idle_ns;
    uint64_t           http_timeout_ns;

    et_cli_http_t      http;

    /* XREADGROUP's COUNT per shard: about --batch entries in all */
    char               count[32];

    /* the batch being delivered: spans, and every id to acknowledge with
     * its shard; "shard" is the one entries are being added from */
    et_cli_span_t     *spans;
    size_t             nspans;
    const char       **ids;
    size_t            *id_lens;
    unsigned          *id_shards;
    size_t            *shard_ids;     /* per shard: its ids in the batch */
    size_t             nids;
    size_t             ids_size;
    size_t             batch_invalid;
    size_t             batch_trimmed;
    char               reasons[512];
    size_t             nreasons;
    unsigned           shard;
    int                claiming;
    et_cli_export_rc_e rc;            /* why adding entries stopped */

    uint64_t           exported;
    uint64_t           batches;
    uint64_t           invalid;
    uint64_t           trimmed;
    uint64_t           claimed;
    uint64_t           rejected;
    uint64_t           partial;       /* OTLP partialSuccess.rejectedSpans */
    uint64_t           http_failures;

    /* per shard: its own pending entries read (to own_cursor) */
    int                own_pending_done;
    char             (*own_cursor)[64];
    unsigned char     *own_done;
    uint64_t           next_claim;
    int                redis_down;
    int                announced;
} et_cli_export_t;


static et_cli_export_rc_e et_cli_export_deliver(et_cli_export_t *ex);


/* messages name the command whose consumer speaks */
#define et_cli_export_error(ex, fmt, ...)                                     \
    et_cli_error("%s: " fmt, (ex)->cmd, ##__VA_ARGS__)


static volatile sig_atomic_t  et_cli_stop;


static void
et_cli_export_signal(int signo)
{
    (void) signo;
    et_cli_stop = 1;
}


static uint64_t
et_cli_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (uint64_t) ts.tv_sec * ET_CLI_NS_PER_S + (uint64_t) ts.tv_nsec;
}


/* sleeps, cut short by SIGINT/SIGTERM */
static void
et_cli_sleep(uint64_t ns)
{
    struct timespec  ts;

    ts.tv_sec = (time_t) (ns / ET_CLI_NS_PER_S);
    ts.tv_nsec = (long) (ns % ET_CLI_NS_PER_S);

    while (!et_cli_stop && nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        /* void */
    }
}


/* tells serve whether Redis can be read, as it changes */
static void
et_cli_export_redis(et_cli_export_t *ex)
{
    if (ex->sink != NULL && ex->sink->redis != NULL) {
        ex->sink->redis(ex->sink->data, !ex->redis_down);
    }
}


static void
et_cli_export_lost(et_cli_export_t *ex, const char *what)
{
    if (!ex->redis_down) {
        et_cli_export_error(ex, "Redis at %s: %s; reconnecting",
                            ex->cli->redis_shown, what);
    }

    ex->redis_down = 1;
    et_cli_redis_close(ex->cli);
}


/*
 * A reply "r" (NULL: Redis lost, "err" says why) checked for errors: NULL
 * and "failed" 1 when Redis is to be opened again, 2 for another error.
 */
static redisReply *
et_cli_export_check(et_cli_export_t *ex, const char *cmd, const char *key,
    redisReply *r, const char *err, int *failed)
{
    *failed = 0;

    if (r == NULL) {
        et_cli_export_lost(ex, err);
        *failed = 1;
        return NULL;
    }

    if (r->type == REDIS_REPLY_ERROR) {
        et_cli_export_error(ex, "%s on %s: %.*s", cmd, key,
                            (int) (r->len < 300 ? r->len : 300), r->str);

        /* the group (or the stream) was deleted under us: connecting
         * again creates it, as at the start */
        if (strncmp(r->str, "NOGROUP", 7) == 0) {
            et_cli_reply_free(r);
            et_cli_redis_close(ex->cli);
            *failed = 1;
            return NULL;
        }

        et_cli_reply_free(r);
        *failed = 2;
        return NULL;
    }

    return r;
}


/* a command about "key", its reply checked as above */
static redisReply *
et_cli_export_cmd(et_cli_export_t *ex, const char *key, int argc,
    const char **argv, const size_t *lens, int *failed)
{
    char         err[512];
    redisReply  *r;

    r = et_cli_command(ex->cli, key, argc, argv, lens, err, sizeof(err));

    return et_cli_export_check(ex, argv[0], key, r, err, failed);
}


static int
et_cli_export_connect(et_cli_export_t *ex)
{
    int          failed, rc;
    char         err[512];
    unsigned     s;
    const char  *argv[6];
    redisReply  *r;

    rc = et_cli_redis_open(ex->cli, ET_CLI_BLOCK_NS, err, sizeof(err));

    if (rc == ET_DECLINED) {
        et_cli_export_error(ex, "%s", err);
        return ET_DECLINED;
    }

    if (rc != ET_OK) {
        if (ex->once || !ex->redis_down) {
            et_cli_export_error(ex, "%s%s", err,
                                ex->once ? "" : "; retrying");
        }

        ex->redis_down = 1;
        et_cli_export_redis(ex);
        return ET_ERROR;
    }

    for (s = 0; s < ex->cli->shards; s++) {
        argv[0] = "XGROUP";
        argv[1] = "CREATE";
        argv[2] = ex->cli->keys[s];
        argv[3] = ex->group;
        argv[4] = ex->from_now ? "$" : "0";
        argv[5] = "MKSTREAM";

        r = et_cli_command(ex->cli, argv[2], 6, argv, NULL, err,
                           sizeof(err));

        if (r == NULL) {
            et_cli_export_lost(ex, err);
            return ET_ERROR;
        }

        failed = r->type == REDIS_REPLY_ERROR
                 && strncmp(r->str, "BUSYGROUP", 9) != 0;

        if (failed) {
            et_cli_export_error(ex, "cannot create group %s on %s: %s",
                                ex->group, ex->cli->keys[s], r->str);
        }

        et_cli_reply_free(r);

        if (failed) {
            /* not the connection: retrying cannot help (WRONGTYPE...) */
            et_cli_redis_close(ex->cli);
            return ET_DECLINED;
        }
    }

    if (ex->redis_down) {
        et_cli_export_error(ex, "Redis at %s is back", ex->cli->redis_shown);
        ex->redis_down = 0;
    }

    et_cli_export_redis(ex);

    /* said once the group exists: from now on nothing is missed */
    if (!ex->once && !ex->announced) {
        et_cli_export_error(ex, "%s %s %s %s as %s in group %s",
                            ex->sink ? "storing" : "forwarding",
                            ex->cli->stream_shown, ex->sink ? "in" : "to",
                            ex->url, ex->consumer, ex->group);
        ex->announced = 1;
    }

    /* what this consumer left pending is read again first */
    ex->own_pending_done = 0;

    for (s = 0; s < ex->cli->shards; s++) {
        strcpy(ex->own_cursor[s], "0");
        ex->own_done[s] = 0;
    }

    return ET_OK;
}


static int
et_cli_export_add_id(et_cli_export_t *ex, const et_str_t *id)
{
    size_t       n;
    size_t      *lens;
    unsigned    *shards;
    const char **ids;

    if (ex->nids == ex->ids_size) {
        n = ex->ids_size ? ex->ids_size * 2 : 64;
        ids = realloc(ex->ids, n * sizeof(char *));

        if (ids == NULL) {
            return ET_ERROR;
        }

        ex->ids = ids;
        lens = realloc(ex->id_lens, n * sizeof(size_t));

        if (lens == NULL) {
            return ET_ERROR;
        }

        ex->id_lens = lens;
        shards = realloc(ex->id_shards, n * sizeof(unsigned));

        if (shards == NULL) {
            return ET_ERROR;
        }

        ex->id_shards = shards;
        ex->ids_size = n;
    }

    ex->ids[ex->nids] = (const char *) id->data;
    ex->id_lens[ex->nids] = id->len;
    ex->id_shards[ex->nids] = ex->shard;
    ex->shard_ids[ex->shard]++;
    ex->nids++;

    return ET_OK;
}


static int
et_cli_export_entry(void *data, const et_cli_span_t *span,
    et_cli_span_rc_e rc, const redisReply *entry)
{
    size_t            n;
    et_str_t         *fields;
    et_cli_export_t  *ex;

    ex = data;

    if (span->id.len == 0) {
        /* no id: nothing to acknowledge either */
        ex->batch_invalid++;
        return 0;
    }

    /* a reply of several shards holds more than a batch */
    if (ex->nids == ex->batch) {
        ex->rc = et_cli_export_deliver(ex);

        if (ex->rc != ET_CLI_DELIVERED) {
            return 1;
        }
    }

    if (et_cli_export_add_id(ex, &span->id) != ET_OK) {
        return -1;
    }

    /* a pending entry deleted from the stream: [id, nil] */
    if (entry->type == REDIS_REPLY_ARRAY && entry->elements == 2
        && entry->element[1]->type == REDIS_REPLY_NIL)
    {
        ex->batch_trimmed++;
        return 0;
    }

    ex->claimed += ex->claiming;

    if (rc != ET_CLI_SPAN_OK) {
        ex->batch_invalid++;

        if (ex->nreasons < ET_CLI_REASONS_SHOWN) {
            n = strlen(ex->reasons);
            snprintf(ex->reasons + n, sizeof(ex->reasons) - n, "%s%.*s: %s",
                     n ? "; " : "", (int) (span->id.len < 40 ? span->id.len
                                                             : 40),
                     (const char *) span->id.data, et_cli_span_reason(rc));
            ex->nreasons++;
        }

        return 0;
    }

    fields = malloc(span->nfields * sizeof(et_str_t));

    if (fields == NULL) {
        return -1;
    }

    memcpy(fields, span->fields, span->nfields * sizeof(et_str_t));
    ex->spans[ex->nspans] = *span;
    ex->spans[ex->nspans].fields = fields;
    ex->nspans++;

    return 0;
}


static void
et_cli_export_clear(et_cli_export_t *ex)
{
    size_t  i;

    for (i = 0; i < ex->nspans; i++) {
        free((void *) ex->spans[i].fields);
    }

    for (i = 0; i < ex->nids; i++) {
        ex->shard_ids[ex->id_shards[i]] = 0;
    }

    ex->nspans = 0;
    ex->nids = 0;
    ex->batch_invalid = 0;
    ex->batch_trimmed = 0;
    ex->reasons[0] = '\0';
    ex->nreasons = 0;
}


/*
 * OTLP/HTTP: a 200 may carry {"partialSuccess": {"rejectedSpans": N,
 * "errorMessage": "..."}}: the collector dropped N of the spans, and
 * sending them again would not change its mind.  Counted and reported.
 */
static void
et_cli_export_partial(et_cli_export_t *ex)
{
    json_t        *doc, *ps, *n, *msg;
    int64_t        rejected;
    const char    *text;
    json_error_t   err;

    if (ex->http.body_len == 0) {
        return;
    }

    doc = json_loadb(ex->http.body, ex->http.body_len, 0, &err);
    ps = json_object_get(doc, "partialSuccess");
    n = json_object_get(ps, "rejectedSpans");
    msg = json_object_get(ps, "errorMessage");

    /* int64 in the protobuf JSON mapping: a string, or a number */
    rejected = 0;

    if (json_is_integer(n)) {
        rejected = json_integer_value(n);

    } else if (json_is_string(n)) {
        text = json_string_value(n);

        if (et_parse_int((const uint8_t *) text, strlen(text), 0, INT64_MAX,
                         &rejected)
            != ET_OK)
        {
            rejected = 0;
        }
    }

    if (rejected > 0) {
        ex->partial += (uint64_t) rejected;
        et_cli_export_error(ex, "%s accepted the batch but rejected %lld "
                            "of its %zu spans: %s", ex->url,
                            (long long) rejected, ex->nspans,
                            json_is_string(msg) ? json_string_value(msg)
                                                : "(no reason given)");
    }

    json_decref(doc);
}


/*
 * The batch was not acknowledged: says where it waits and the run that
 * sends it, the same group and consumer (it reads its own pending
 * entries first).
 */
static void
et_cli_export_kept(et_cli_export_t *ex, const char *why, const char *fix)
{
    et_cli_export_error(ex, "%s%s; nothing acknowledged: the batch stays "
                        "pending in group %s for consumer %s (%srun export "
                        "again with --group %s --consumer %s: it resends the "
                        "batch first)", ex->url, why, ex->group,
                        ex->consumer, fix, ex->group, ex->consumer);
}


static et_cli_export_rc_e
et_cli_export_post(et_cli_export_t *ex)
{
    int          blen;
    long         status;
    char        *body, err[CURL_ERROR_SIZE + 64], why[CURL_ERROR_SIZE + 512];
    json_t      *doc;
    size_t       len, n;
    uint64_t     backoff, failures;

    doc = ex->zipkin ? et_cli_zipkin(ex->spans, ex->nspans)
                     : et_cli_otlp(ex->spans, ex->nspans);

    if (doc == NULL) {
        et_cli_export_error(ex, "out of memory");
        return ET_CLI_FAILED;
    }

    body = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);

    if (body == NULL) {
        et_cli_export_error(ex, "out of memory");
        return ET_CLI_FAILED;
    }

    len = strlen(body);
    backoff = ET_CLI_BACKOFF_MIN;
    failures = 0;

    for ( ;; ) {
        err[0] = '\0';
        status = et_cli_http_post(&ex->http, body, len, err, sizeof(err));

        if (status >= 200 && status < 300) {
            if (failures) {
                et_cli_export_error(ex, "%s accepted the batch after %llu "
                                    "failed attempt%s", ex->url,
                                    (unsigned long long) failures,
                                    failures == 1 ? "" : "s");
            }

            if (!ex->zipkin) {
                et_cli_export_partial(ex);
            }

            free(body);
            return ET_CLI_DELIVERED;
        }

        blen = (int) (ex->http.body_len < 300 ? ex->http.body_len : 300);

        if (status != 0 && status != 408 && status != 429 && status < 500) {
            snprintf(why, sizeof(why), " rejected %zu span%s: HTTP %ld%s%.*s",
                     ex->nspans, ex->nspans == 1 ? "" : "s", status,
                     blen ? ": " : "", blen, ex->http.body);
            et_cli_export_kept(ex, why, "fix the collector or the URL, "
                               "then ");
            ex->rejected += ex->nspans;
            free(body);
            return ET_CLI_REJECTED;
        }

        failures++;
        ex->http_failures++;

        if (status == 0) {
            snprintf(why, sizeof(why), ": %s", err);

        } else {
            snprintf(why, sizeof(why), " answered HTTP %ld%s%.*s", status,
                     blen ? ": " : "", blen, ex->http.body);
        }

        if (ex->once && failures == ET_CLI_ONCE_TRIES) {
            n = strlen(why);
            snprintf(why + n, sizeof(why) - n, "; giving up after %d "
                     "attempts (--once)", ET_CLI_ONCE_TRIES);
            et_cli_export_kept(ex, why, "");
            free(body);
            return ET_CLI_GAVE_UP;
        }

        et_cli_export_error(ex, "%s%s; nothing acknowledged, retrying in "
                            "%llums",
                            ex->url, why,
                            (unsigned long long) (backoff / ET_CLI_NS_PER_MS));

        et_cli_sleep(backoff);

        if (et_cli_stop) {
            free(body);
            return ET_CLI_STOPPED;
        }

        backoff = backoff * 2 > ET_CLI_BACKOFF_MAX ? ET_CLI_BACKOFF_MAX
                                                   : backoff * 2;
    }
}


/*
 * serve: the batch into its store, tried again after a backoff while the
 * store declines it (nothing is acknowledged that was not stored)
 */
static et_cli_export_rc_e
et_cli_export_store(et_cli_export_t *ex)
{
    int       rc;
    uint64_t  backoff;

    backoff = ET_CLI_BACKOFF_MIN;

    for ( ;; ) {
        rc = ex->sink->store(ex->sink->data, ex->spans, ex->nspans);

        if (rc == ET_OK) {
            return ET_CLI_DELIVERED;
        }

        if (rc != ET_DECLINED) {
            return ET_CLI_FAILED;
        }

        et_cli_sleep(backoff);

        if (et_cli_stop) {
            return ET_CLI_STOPPED;
        }

        backoff = backoff * 2 > ET_CLI_BACKOFF_MAX ? ET_CLI_BACKOFF_MAX
                                                   : backoff * 2;
    }
}


/* XACK of a batch's ids, shard by shard, at most 1000 ids a command */
static et_cli_export_rc_e
et_cli_export_ack(et_cli_export_t *ex)
{
    int           failed;
    size_t        i, n, chunk;
    size_t       *lens;
    unsigned      s;
    const char  **argv;
    redisReply   *r;

    chunk = ex->nids < 1000 ? ex->nids : 1000;
    argv = malloc((chunk + 3) * sizeof(char *));
    lens = malloc((chunk + 3) * sizeof(size_t));

    if (argv == NULL || lens == NULL) {
        free(argv);
        free(lens);
        et_cli_export_error(ex, "out of memory");
        return ET_CLI_FAILED;
    }

    argv[0] = "XACK";
    argv[2] = ex->group;
    lens[0] = 4;
    lens[2] = strlen(ex->group);

    for (s = 0; s < ex->cli->shards; s++) {
        if (ex->shard_ids[s] == 0) {
            continue;
        }

        argv[1] = ex->cli->keys[s];
        lens[1] = strlen(ex->cli->keys[s]);
        n = 0;

        for (i = 0; i < ex->nids; i++) {
            if (ex->id_shards[i] == s) {
                argv[3 + n] = ex->ids[i];
                lens[3 + n] = ex->id_lens[i];
                n++;
            }

            if (n == chunk || (n && i == ex->nids - 1)) {
                r = et_cli_export_cmd(ex, argv[1], (int) n + 3, argv, lens,
                                      &failed);

                if (r == NULL) {
                    free(argv);
                    free(lens);
                    return failed == 1 ? ET_CLI_REDIS_LOST : ET_CLI_FAILED;
                }

                et_cli_reply_free(r);
                n = 0;
            }
        }
    }

    free(argv);
    free(lens);

    return ET_CLI_DELIVERED;
}


/* delivers and acknowledges the batch gathered, and empties it */
static et_cli_export_rc_e
et_cli_export_deliver(et_cli_export_t *ex)
{
    et_cli_export_rc_e  rc;

    if (ex->batch_invalid) {
        et_cli_export_error(ex, "skipped %zu %s (%s%s)", ex->batch_invalid,
                            ex->batch_invalid == 1
                            ? "entry that is not an edgetrace span"
                            : "entries that are not edgetrace spans",
                            ex->reasons,
                            ex->batch_invalid > ex->nreasons ? "; ..." : "");
    }

    if (ex->batch_trimmed) {
        et_cli_export_error(ex, "%zu pending entr%s had been trimmed from the "
                            "stream (MAXLEN) before delivery: lost",
                            ex->batch_trimmed,
                            ex->batch_trimmed == 1 ? "y" : "ies");
    }

    if (ex->nspans) {
        rc = ex->sink ? et_cli_export_store(ex) : et_cli_export_post(ex);

        if (rc != ET_CLI_DELIVERED) {
            return rc;
        }
    }

    if (ex->nids) {
        rc = et_cli_export_ack(ex);

        if (rc != ET_CLI_DELIVERED) {
            return rc;
        }
    }

    /* counted once acknowledged: a batch resent after a crash counts once
     * more, as it was sent once more */
    ex->exported += ex->nspans;
    ex->invalid += ex->batch_invalid;
    ex->trimmed += ex->batch_trimmed;
    ex->batches += ex->nspans != 0;

    et_cli_export_clear(ex);

    return ET_CLI_DELIVERED;
}


/*
 * Adds the entries of "list" (an entry array of shard "shard") to the
 * batch, delivering each batch that fills up on the way.
 */
static et_cli_export_rc_e
et_cli_export_add(et_cli_export_t *ex, const redisReply *list,
    unsigned shard)
{
    ex->shard = shard;
    ex->rc = ET_CLI_DELIVERED;

    if (et_cli_entries(list, et_cli_export_entry, ex) != 0) {
        if (ex->rc == ET_CLI_DELIVERED) {
            et_cli_export_error(ex, "out of memory");
            return ET_CLI_FAILED;
        }

        return ex->rc;
    }

    return ET_CLI_DELIVERED;
}


/*
 * Notes where shard "s" goes on with its own pending entries after "list":
 * after its last id, or nowhere when there were none.
 */
static void
et_cli_export_own(et_cli_export_t *ex, unsigned s, const redisReply *list)
{
    const redisReply  *last;

    if (ex->own_done[s]) {
        return;
    }

    if (list == NULL || list->elements == 0) {
        ex->own_done[s] = 1;
        return;
    }

    /* the pending list is read in pages: go on after the last id */
    last = list->element[list->elements - 1];

    if (last->type == REDIS_REPLY_ARRAY && last->elements >= 1
        && last->element[0]->type == REDIS_REPLY_STRING
        && last->element[0]->len < sizeof(ex->own_cursor[s]))
    {
        memcpy(ex->own_cursor[s], last->element[0]->str,
               last->element[0]->len);
        ex->own_cursor[s][last->element[0]->len] = '\0';

    } else {
        ex->own_done[s] = 1;
    }
}


/*
 * One XREADGROUP over every shard: this consumer's own pending entries
 * first (from id 0, after a (re)start), then new ones.  *got: entries
 * there were.
 */
static et_cli_export_rc_e
et_cli_export_read(et_cli_export_t *ex, size_t *got)
{
    int                 failed, k;
    char                err[512];
    size_t              i;
    unsigned            s, n, hint;
    const char         *argv[6];
    char              **ids;
    redisReply         *r, *st, **lists;
    et_cli_export_rc_e  rc;

    n = ex->cli->shards;
    ids = malloc(n * sizeof(char *));
    lists = calloc(n, sizeof(redisReply *));

    if (ids == NULL || lists == NULL) {
        free(ids);
        free(lists);
        et_cli_export_error(ex, "out of memory");
        return ET_CLI_FAILED;
    }

    /* XREADGROUP GROUP g c COUNT n [BLOCK ms] STREAMS key... id... */
    argv[0] = "XREADGROUP";
    argv[1] = "GROUP";
    argv[2] = ex->group;
    argv[3] = ex->consumer;
    argv[4] = "COUNT";
    argv[5] = ex->count;

    for (s = 0; s < n; s++) {
        ids[s] = ex->own_pending_done ? (char *) ">" : ex->own_cursor[s];
    }

    *got = 0;

    r = et_cli_streams(ex->cli, 6, argv, ids,
                       !ex->once && ex->own_pending_done, err, sizeof(err));
    r = et_cli_export_check(ex, argv[0], ex->cli->stream_shown, r, err,
                            &failed);
    free(ids);

    if (r == NULL) {
        free(lists);
        return failed == 1 ? ET_CLI_REDIS_LOST : ET_CLI_FAILED;
    }

    /* nil: nothing new (or the block timed out) */
    hint = 0;

    if (r->type == REDIS_REPLY_ARRAY) {
        for (i = 0; i < r->elements; i++) {
            st = r->element[i];

            if (st->type != REDIS_REPLY_ARRAY || st->elements != 2
                || st->element[1]->type != REDIS_REPLY_ARRAY
                || (k = et_cli_shard_index(ex->cli, st->element[0], hint)) < 0)
            {
                continue;
            }

            hint = (unsigned) k;
            lists[hint] = st->element[1];
            *got += st->element[1]->elements;
        }
    }

    if (!ex->own_pending_done) {
        ex->own_pending_done = 1;

        for (s = 0; s < n; s++) {
            et_cli_export_own(ex, s, lists[s]);
            ex->own_pending_done &= ex->own_done[s];
        }
    }

    et_cli_export_clear(ex);
    rc = ET_CLI_DELIVERED;

    for (s = 0; s < n && rc == ET_CLI_DELIVERED; s++) {
        if (lists[s] != NULL) {
            rc = et_cli_export_add(ex, lists[s], s);
        }
    }

    if (rc == ET_CLI_DELIVERED) {
        rc = et_cli_export_deliver(ex);
    }

    et_cli_reply_free(r);
    free(lists);

    return rc;
}


/*
 * A full XAUTOCLAIM pass over shard "s": entries other consumers left
 * pending longer than --claim-idle become this consumer's and are
 * delivered.  Redis 7 lists the ids of claimed entries that no longer
 * exist (trimmed) in a third element and drops them from the pending
 * list.
 */
static et_cli_export_rc_e
et_cli_export_claim_shard(et_cli_export_t *ex, unsigned s, size_t *got)
{
    int                 failed;
    char                idle[32], count[32], cursor[64];
    size_t              n;
    const char         *argv[8];
    redisReply         *r, *del;
    et_cli_export_rc_e  rc;

    snprintf(idle, sizeof(idle), "%llu",
             (unsigned long long) (ex->claim_idle_ns / ET_CLI_NS_PER_MS));
    snprintf(count, sizeof(count), "%zu", ex->batch);
    strcpy(cursor, "0-0");

    do {
        argv[0] = "XAUTOCLAIM";
        argv[1] = ex->cli->keys[s];
        argv[2] = ex->group;
        argv[3] = ex->consumer;
        argv[4] = idle;
        argv[5] = cursor;
        argv[6] = "COUNT";
        argv[7] = count;

        r = et_cli_export_cmd(ex, argv[1], 8, argv, NULL, &failed);

        if (r == NULL) {
            return failed == 1 ? ET_CLI_REDIS_LOST : ET_CLI_FAILED;
        }

        if (r->type != REDIS_REPLY_ARRAY || r->elements < 2
            || r->element[0]->type != REDIS_REPLY_STRING
            || r->element[0]->len >= sizeof(cursor)
            || r->element[1]->type != REDIS_REPLY_ARRAY)
        {
            et_cli_export_error(ex, "unexpected XAUTOCLAIM reply");
            et_cli_reply_free(r);
            return ET_CLI_FAILED;
        }

        memcpy(cursor, r->element[0]->str, r->element[0]->len);
        cursor[r->element[0]->len] = '\0';

        if (r->elements >= 3 && r->element[2]->type == REDIS_REPLY_ARRAY) {
            del = r->element[2];
            n = del->elements;

            if (n) {
                ex->trimmed += n;
                et_cli_export_error(ex, "%zu pending entr%s left by another "
                                    "consumer had been trimmed from the stream "
                                    "(MAXLEN) before delivery: lost", n,
                                    n == 1 ? "y" : "ies");
            }
        }

        *got += r->element[1]->elements;

        if (r->element[1]->elements) {
            et_cli_export_clear(ex);
            ex->claiming = 1;
            rc = et_cli_export_add(ex, r->element[1], s);
            ex->claiming = 0;

            if (rc == ET_CLI_DELIVERED) {
                rc = et_cli_export_deliver(ex);
            }

            if (rc != ET_CLI_DELIVERED) {
                et_cli_reply_free(r);
                return rc;
            }
        }

        et_cli_reply_free(r);

    } while (strcmp(cursor, "0-0") != 0 && !et_cli_stop);

    return ET_CLI_DELIVERED;
}


/* XAUTOCLAIM passes over every shard; *got: the entries claimed */
static et_cli_export_rc_e
et_cli_export_claim(et_cli_export_t *ex, size_t *got)
{
    unsigned            s;
    et_cli_export_rc_e  rc;

    *got = 0;

    for (s = 0; s < ex->cli->shards && !et_cli_stop; s++) {
        rc = et_cli_export_claim_shard(ex, s, got);

        if (rc != ET_CLI_DELIVERED) {
            return rc;
        }
    }

    return ET_CLI_DELIVERED;
}


/*
 * Leaves the group tidy: a consumer with nothing pending is removed.  One
 * script, so the check and the removal are atomic: a forwarder running
 * under the same name may have read entries in between, and
 * DELCONSUMER would drop them from the pending list for good.
 */
static void
et_cli_export_leave(et_cli_export_t *ex)
{
    char         err[512];
    unsigned     s;
    const char  *argv[6];
    redisReply  *r;

    argv[0] = "EVAL";
    argv[1] = "if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, "
              "ARGV[2]) == 0 then return redis.call('XGROUP', "
              "'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2]) end return -1";
    argv[2] = "1";
    argv[4] = ex->group;
    argv[5] = ex->consumer;

    /* shard by shard: the consumer of each shard is its own */
    for (s = 0; s < ex->cli->shards && ex->cli->open; s++) {
        argv[3] = ex->cli->keys[s];

        r = et_cli_command(ex->cli, argv[3], 6, argv, NULL, err,
                           sizeof(err));

        if (r == NULL) {
            return;
        }

        et_cli_reply_free(r);
    }
}


static void
et_cli_export_free(et_cli_export_t *ex)
{
    if (ex->shard_ids != NULL) {
        et_cli_export_clear(ex);
    }

    free(ex->spans);
    free(ex->ids);
    free(ex->id_lens);
    free(ex->id_shards);
    free(ex->shard_ids);
    free(ex->own_cursor);
    free(ex->own_done);

    if (ex->cli->open) {
        et_cli_redis_close(ex->cli);
    }

    if (ex->sink == NULL) {
        et_cli_http_free(&ex->http);
    }
}


/* the exit status of a run that ended with "rc" */
static int
et_cli_export_status(et_cli_export_rc_e rc)
{
    switch (rc) {

    case ET_CLI_DELIVERED:
    case ET_CLI_STOPPED:
        return ET_CLI_EXIT_OK;

    case ET_CLI_REJECTED:
        return ET_CLI_EXIT_REJECT;

    case ET_CLI_GAVE_UP:
        return ET_CLI_EXIT_UNAVAILABLE;

    default:
        return ET_CLI_EXIT_ERROR;
    }
}


static int
et_cli_export_run(et_cli_export_t *ex)
{
    int                 reading_new, crc;
    size_t              got, claimed;
    uint64_t            now, retry;
    et_cli_export_rc_e  rc;

    retry = ET_CLI_BACKOFF_MIN;

    while (!et_cli_stop) {

        if (!ex->cli->open) {
            crc = et_cli_export_connect(ex);

            if (crc != ET_OK) {
                if (ex->once || crc == ET_DECLINED) {
                    return ET_CLI_EXIT_ERROR;
                }

                et_cli_sleep(retry);
                retry = retry * 2 > ET_CLI_REDIS_RETRY ? ET_CLI_REDIS_RETRY
                                                       : retry * 2;
                continue;
            }

            retry = ET_CLI_BACKOFF_MIN;
        }

        got = 0;
        claimed = 0;
        now = et_cli_now();
        reading_new = 0;

        if (ex->own_pending_done && now >= ex->next_claim) {
            /* half the idle time: a dead consumer's entries wait at most
             * one and a half times --claim-idle */
            ex->next_claim = now + ex->claim_idle_ns / 2;
            rc = et_cli_export_claim(ex, &claimed);

        } else {
            reading_new = ex->own_pending_done;
            rc = et_cli_export_read(ex, &got);
        }

        if (rc == ET_CLI_REDIS_LOST && !ex->once) {
            continue;
        }

        if (rc != ET_CLI_DELIVERED) {
            return et_cli_export_status(rc);
        }

        if (reading_new && got == 0 && ex->sink != NULL
            && ex->sink->idle != NULL)
        {
            ex->sink->idle(ex->sink->data);
        }

        /* --once: done when neither new nor claimable entries are left */
        if (ex->once && reading_new && got == 0) {
            rc = et_cli_export_claim(ex, &claimed);

            if (rc != ET_CLI_DELIVERED || claimed == 0) {
                return et_cli_export_status(rc);
            }
        }
    }

    return ET_CLI_EXIT_OK;
}


/*
 * The options of the consumer group, shared with serve: 1 when argv[*i]
 * was one (*i moved past its value), 0 when it is another argument, -1
 * after a usage message.
 */
int
et_cli_consume_opt(int argc, char **argv, int *i, et_cli_consume_t *conf)
{
    int            rc;
    char          *end;
    const char    *v;
    unsigned long  n;

    if (strcmp(argv[*i], "--from-now") == 0) {
        conf->from_now = 1;
        return 1;
    }

    if ((rc = et_cli_opt_value(argc, argv, i, "--group", &v)) == 1) {
        conf->group = v;
        return 1;
    }

    if (rc == 0
        && (rc = et_cli_opt_value(argc, argv, i, "--consumer", &v)) == 1)
    {
        conf->consumer = v;
        return 1;
    }

    if (rc == 0
        && (rc = et_cli_opt_value(argc, argv, i, "--batch", &v)) == 1)
    {
        errno = 0;
        n = strtoul(v, &end, 10);

        if (v[0] < '0' || v[0] > '9' || *end != '\0' || errno
            || n == 0 || n > 10000)
        {
            et_cli_error("%s: invalid --batch \"%s\": a number from 1 to "
                         "10000", conf->cmd, v);
            return -1;
        }

        conf->batch = n;
        return 1;
    }

    if (rc == 0
        && (rc = et_cli_opt_value(argc, argv, i, "--claim-idle", &v)) == 1)
    {
        if (et_cli_opt_duration("--claim-idle", v, &conf->claim_idle_ns)
            != ET_OK)
        {
            return -1;
        }

        if (conf->claim_idle_ns < ET_CLI_NS_PER_MS) {
            et_cli_error("%s: --claim-idle must be at least 1ms", conf->cmd);
            return -1;
        }

        return 1;
    }

    return rc;
}


/*
 * Runs the consumer "ex" holds the options of, to its end: --batch sized
 * buffers, the signals, the loop, leaving the group, the counts.
 */
static int
et_cli_export_start(et_cli_export_t *ex)
{
    int               rc;
    char              host[256], partial[128];
    et_cli_t         *cli;
    struct sigaction  sa;

    cli = ex->cli;

    if (ex->consumer == NULL) {
        /* the same name on every run: a run after a rejection, a crash or
         * a --once that gave up resends what the last one left pending */
        if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0') {
            strcpy(host, "edgetrace");
        }

        host[sizeof(host) - 1] = '\0';
        ex->consumer = host;
    }

    if (ex->group[0] == '\0' || ex->consumer[0] == '\0') {
        et_cli_export_error(ex, "empty --group or --consumer");
        et_cli_export_free(ex);
        return ET_CLI_EXIT_USAGE;
    }

    /*
     * XREADGROUP's COUNT is per stream: of N shards, each is asked for
     * its share of a batch, so that one read is about one batch
     */
    snprintf(ex->count, sizeof(ex->count), "%zu",
             (ex->batch + cli->shards - 1) / cli->shards);

    ex->spans = malloc(ex->batch * sizeof(et_cli_span_t));
    ex->shard_ids = calloc(cli->shards, sizeof(size_t));
    ex->own_cursor = calloc(cli->shards, sizeof(ex->own_cursor[0]));
    ex->own_done = calloc(cli->shards, 1);

    if (ex->spans == NULL || ex->shard_ids == NULL || ex->own_cursor == NULL
        || ex->own_done == NULL)
    {
        et_cli_export_error(ex, "out of memory");
        et_cli_export_free(ex);
        return ET_CLI_EXIT_ERROR;
    }

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = et_cli_export_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    rc = et_cli_export_run(ex);

    if (rc == ET_CLI_EXIT_OK) {
        et_cli_export_leave(ex);
    }

    if (ex->partial) {
        snprintf(partial, sizeof(partial), " (%llu of them rejected by the "
                 "collector)", (unsigned long long) ex->partial);

    } else {
        partial[0] = '\0';
    }

    et_cli_export_error(ex, "%llu span%s %s in %llu batch%s%s; "
                        "%llu invalid entr%s skipped; %llu entr%s trimmed "
                        "before delivery; %llu entr%s taken over from other "
                        "consumers",
                        (unsigned long long) ex->exported,
                        ex->exported == 1 ? "" : "s",
                        ex->sink ? "stored" : "exported",
                        (unsigned long long) ex->batches,
                        ex->batches == 1 ? "" : "es", partial,
                        (unsigned long long) ex->invalid,
                        ex->invalid == 1 ? "y" : "ies",
                        (unsigned long long) ex->trimmed,
                        ex->trimmed == 1 ? "y" : "ies",
                        (unsigned long long) ex->claimed,
                        ex->claimed == 1 ? "y" : "ies");

    et_cli_export_free(ex);

    return rc;
}


int
et_cli_consume(et_cli_t *cli, et_cli_consume_t *conf)
{
    et_cli_export_t  ex;

    memset(&ex, 0, sizeof(et_cli_export_t));
    ex.cli = cli;
    ex.cmd = conf->cmd;
    ex.url = conf->target;
    ex.sink = conf;
    ex.group = conf->group;
    ex.consumer = conf->consumer;
    ex.batch = conf->batch;
    ex.claim_idle_ns = conf->claim_idle_ns;
    ex.from_now = conf->from_now;

    return et_cli_export_start(&ex);
}


/* stops a consumer from another thread than its own, as SIGTERM does */
void
et_cli_consume_stop(void)
{
    et_cli_stop = 1;
}


int
et_cli_export(et_cli_t *cli, int argc, char **argv)
{
    int                i, rc;
    char               err[512];
    size_t             nheaders;
    const char        *v, *otlp, *zipkin, *headers[ET_CLI_HEADERS + 1];
    et_cli_export_t    ex;
    et_cli_consume_t   conf;

    memset(&ex, 0, sizeof(et_cli_export_t));
    memset(&conf, 0, sizeof(et_cli_consume_t));
    ex.cli = cli;
    ex.cmd = "export";
    conf.cmd = "export";
    conf.batch = 200;
    conf.claim_idle_ns = 60 * ET_CLI_NS_PER_S;
    ex.http_timeout_ns = 10 * ET_CLI_NS_PER_S;
    otlp = NULL;
    zipkin = NULL;
    nheaders = 0;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(et_cli_export_usage, stdout);
            return ET_CLI_EXIT_OK;
        }

        if (strcmp(argv[i], "--once") == 0) {
            ex.once = 1;
            continue;
        }

        if ((rc = et_cli_consume_opt(argc, argv, &i, &conf)) == 1) {
            continue;
        }

        if (rc == 0
            && (rc = et_cli_opt_value(argc, argv, &i, "--otlp", &v)) == 1)
        {
            otlp = v;
            continue;
        }

        if (rc == 0
            && (rc = et_cli_opt_value(argc, argv, &i, "--zipkin", &v)) == 1)
        {
            zipkin = v;
            continue;
        }

        if (rc == 0
            && (rc = et_cli_opt_value(argc, argv, &i, "--header", &v)) == 1)
        {
            /* a header line, as curl -H takes it: no CR or LF inside */
            if (strchr(v, ':') == NULL || v[0] == ':'
                || strpbrk(v, "\r\n") != NULL)
            {
                et_cli_error("export: invalid --header \"%s\": "
                             "\"Name: value\" expected", v);
                return ET_CLI_EXIT_USAGE;
            }

            if (nheaders == ET_CLI_HEADERS) {
                et_cli_error("export: at most %d --header options",
                             ET_CLI_HEADERS);
                return ET_CLI_EXIT_USAGE;
            }

            headers[nheaders++] = v;
            continue;
        }

        if (rc == 0
            && (rc = et_cli_opt_value(argc, argv, &i, "--http-timeout", &v))
               == 1)
        {
            if (et_cli_opt_duration("--http-timeout", v,
                                    &ex.http_timeout_ns) != ET_OK)
            {
                return ET_CLI_EXIT_USAGE;
            }

            if (ex.http_timeout_ns < ET_CLI_NS_PER_MS) {
                et_cli_error("export: --http-timeout must be at least 1ms");
                return ET_CLI_EXIT_USAGE;
            }

            continue;
        }

        if (rc == 0) {
            et_cli_error("export: unexpected argument \"%s\" "
                         "(see edgetrace export --help)", argv[i]);
        }

        return ET_CLI_EXIT_USAGE;
    }

    if ((otlp == NULL) == (zipkin == NULL)) {
        et_cli_error("export: give one collector, --otlp URL or "
                     "--zipkin URL (see edgetrace export --help)");
        return ET_CLI_EXIT_USAGE;
    }

    ex.url = otlp ? otlp : zipkin;
    ex.zipkin = zipkin != NULL;

    if (strncmp(ex.url, "http://", 7) != 0
        && strncmp(ex.url, "https://", 8) != 0)
    {
        et_cli_error("export: \"%s\" is not an http:// or https:// URL",
                     ex.url);
        return ET_CLI_EXIT_USAGE;
    }

    ex.group = conf.group;
    ex.consumer = conf.consumer;
    ex.batch = conf.batch;
    ex.claim_idle_ns = conf.claim_idle_ns;
    ex.from_now = conf.from_now;

    if (ex.group == NULL) {
        ex.group = ex.zipkin ? "edgetrace-zipkin" : "edgetrace-otlp";
    }

    headers[nheaders] = NULL;

    if (et_cli_http_init(&ex.http, ex.url, ex.http_timeout_ns, headers, err,
                         sizeof(err)) != ET_OK)
    {
        et_cli_error("export: %s", err);
        et_cli_export_free(&ex);
        return ET_CLI_EXIT_ERROR;
    }

    return et_cli_export_start(&ex);
}
