/*
 * edgetrace tail: new spans as they reach the stream (XREAD BLOCK), one
 * line each, until interrupted.  A lost Redis is reconnected to, and the
 * stream is followed on from the last entry shown.  The shards of a
 * sharded stream are read by one XREAD (one per shard on a cluster,
 * et_cli_streams) and merged by entry id (docs/cli.md, "tail").
 */

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "et_cli.h"


static const char  et_cli_tail_usage[] =
"Usage: edgetrace [GLOBAL OPTIONS] tail [--service NAME] [--errors]\n"
"                 [--slower-than DURATION]\n"
"\n"
"Follows the stream: prints each new span as it arrives, one line each:\n"
"the span's start (local time), trace id, span id, status, duration,\n"
"service, name, kind and key attributes.  Runs until interrupted; when\n"
"Redis goes away it reconnects and goes on from the last span shown.\n"
"The shards of a sharded stream (--shards) are followed together, their\n"
"spans merged in the order they reached Redis (by entry id).\n"
"\n"
"Options:\n"
"  --service NAME    only spans of this service.name (repeatable)\n"
"  --errors          only spans whose status is error\n"
"  --slower-than DURATION\n"
"                    only spans that lasted longer than this\n"
"  -h, --help        show this help and exit\n";


#define ET_CLI_TAIL_SERVICES  16
#define ET_CLI_TAIL_RETRY     (5 * ET_CLI_NS_PER_S)

/* XREAD's COUNT, per shard */
#define ET_CLI_TAIL_COUNT     100
#define ET_CLI_TAIL_COUNT_S   "100"


typedef struct {
    const char  *services[ET_CLI_TAIL_SERVICES];
    size_t       nservices;
    int          errors;
    uint64_t     slower_than;
    char       (*last)[64];       /* per shard: the last entry shown */
} et_cli_tail_t;


/* an entry of an XREAD reply, and its shard */
typedef struct {
    redisReply  *entry;
    et_str_t     id;
    unsigned     shard;
    size_t       n;               /* its place in its shard's list */
} et_cli_tail_entry_t;


static int
et_cli_tail_entry(void *data, const et_cli_span_t *s, et_cli_span_rc_e rc,
    const redisReply *entry)
{
    char            t[32], dur[32];
    size_t          i, len;
    time_t          sec;
    struct tm       tm;
    et_cli_tail_t  *tl;

    (void) entry;

    tl = data;

    if (rc != ET_CLI_SPAN_OK) {
        fflush(stdout);
        fprintf(stderr, "edgetrace: tail: skipped entry ");
        et_cli_print_safe(stderr, s->id.data, s->id.len);
        fprintf(stderr, ": %s\n", et_cli_span_reason(rc));
        return 0;
    }

    if (tl->errors && !s->error) {
        return 0;
    }

    if (tl->slower_than && s->end_ns - s->start_ns <= tl->slower_than) {
        return 0;
    }

    if (tl->nservices) {
        for (i = 0; i < tl->nservices; i++) {
            len = strlen(tl->services[i]);

            if (len == s->service.len
                && memcmp(s->service.data, tl->services[i], len) == 0)
            {
                break;
            }
        }

        if (i == tl->nservices) {
            return 0;
        }
    }

    sec = (time_t) (s->start_ns / ET_CLI_NS_PER_S);
    localtime_r(&sec, &tm);
    strftime(t, sizeof(t), "%H:%M:%S", &tm);

    printf("%s.%03u %s %s %-5s %11s  ", t,
           (unsigned) (s->start_ns % ET_CLI_NS_PER_S / ET_CLI_NS_PER_MS),
           s->trace_id, s->span_id, s->error ? "ERROR" : "ok",
           et_cli_duration_ms(dur, sizeof(dur), s->end_ns - s->start_ns));
    et_cli_print_span(stdout, s);

    return 0;
}


/* the id of an entry of an XRANGE/XREAD list; len 0 when it has none */
static et_str_t
et_cli_tail_id(const redisReply *e)
{
    et_str_t  id;

    id.len = 0;
    id.data = NULL;

    if (e->type == REDIS_REPLY_ARRAY && e->elements >= 1
        && e->element[0]->type == REDIS_REPLY_STRING)
    {
        id.len = e->element[0]->len;
        id.data = (const uint8_t *) e->element[0]->str;
    }

    return id;
}


static int
et_cli_tail_by_id(const void *a, const void *b)
{
    int                         rc;
    const et_cli_tail_entry_t  *x = a, *y = b;

    rc = et_cli_entry_id_cmp(&x->id, &y->id);

    if (rc != 0) {
        return rc;
    }

    if (x->shard != y->shard) {
        return x->shard < y->shard ? -1 : 1;
    }

    return x->n < y->n ? -1 : x->n > y->n;
}


/*
 * Prints the entries of an XREAD reply, the shards merged by entry id, and
 * moves each shard's cursor past what was printed.  A shard that returned
 * a full COUNT may hold further entries older than another shard's last
 * ones: what lies past the smallest last id of such shards waits for the
 * next XREAD, so the lines come out in entry id order across replies too.
 */
static int
et_cli_tail_reply(et_cli_tail_t *tl, const et_cli_t *cli, redisReply *r)
{
    int                   rc, have_cut, k;
    size_t                i, j, n, total;
    unsigned              s;
    et_str_t              cut, id;
    redisReply           *st, *list, **sorted, merged;
    et_cli_tail_entry_t  *all;

    total = 0;

    for (i = 0; i < r->elements; i++) {
        st = r->element[i];

        if (st->type == REDIS_REPLY_ARRAY && st->elements == 2
            && st->element[1]->type == REDIS_REPLY_ARRAY)
        {
            total += st->element[1]->elements;
        }
    }

    if (total == 0) {
        return 0;
    }

    all = malloc(total * sizeof(et_cli_tail_entry_t));
    sorted = malloc(total * sizeof(redisReply *));

    if (all == NULL || sorted == NULL) {
        free(all);
        free(sorted);
        return -1;
    }

    n = 0;
    have_cut = 0;
    cut.len = 0;
    cut.data = NULL;
    s = 0;

    for (i = 0; i < r->elements; i++) {
        st = r->element[i];

        if (st->type != REDIS_REPLY_ARRAY || st->elements != 2
            || st->element[1]->type != REDIS_REPLY_ARRAY
            || (k = et_cli_shard_index(cli, st->element[0], s)) < 0)
        {
            continue;
        }

        s = (unsigned) k;
        list = st->element[1];

        for (j = 0; j < list->elements; j++) {
            all[n].entry = list->element[j];
            all[n].id = et_cli_tail_id(list->element[j]);
            all[n].shard = s;
            all[n].n = j;
            n++;
        }

        if (list->elements >= ET_CLI_TAIL_COUNT) {
            id = all[n - 1].id;

            if (!have_cut || et_cli_entry_id_cmp(&id, &cut) < 0) {
                cut = id;
                have_cut = 1;
            }
        }
    }

    qsort(all, n, sizeof(et_cli_tail_entry_t), et_cli_tail_by_id);

    for (i = 0; i < n; i++) {
        if (have_cut && et_cli_entry_id_cmp(&all[i].id, &cut) > 0) {
            break;
        }

        sorted[i] = all[i].entry;
        id = all[i].id;

        if (id.len && id.len < sizeof(tl->last[0])) {
            memcpy(tl->last[all[i].shard], id.data, id.len);
            tl->last[all[i].shard][id.len] = '\0';
        }
    }

    /* the merged entries, as the list et_cli_entries() reads */
    memset(&merged, 0, sizeof(redisReply));
    merged.type = REDIS_REPLY_ARRAY;
    merged.elements = i;
    merged.element = sorted;

    rc = et_cli_entries(&merged, et_cli_tail_entry, tl);

    free(all);
    free(sorted);

    return rc;
}


static void
et_cli_tail_sleep(uint64_t ns)
{
    struct timespec  ts;

    ts.tv_sec = (time_t) (ns / ET_CLI_NS_PER_S);
    ts.tv_nsec = (long) (ns % ET_CLI_NS_PER_S);
    nanosleep(&ts, NULL);
}


/* follows the stream until interrupted; the exit status on an error */
static int
et_cli_tail_run(et_cli_tail_t *tl, et_cli_t *cli, char **ids)
{
    int          down, rc;
    char         err[512];
    unsigned     i;
    uint64_t     retry;
    const char  *args[3];
    redisReply  *r;

    rc = et_cli_redis_open(cli, ET_CLI_BLOCK_NS, err, sizeof(err));

    for (i = 0; i < cli->shards && rc == ET_OK; i++) {
        rc = et_cli_stream_end(cli, cli->keys[i], 1, tl->last[i],
                               sizeof(tl->last[i]), err, sizeof(err));
        ids[i] = tl->last[i];
    }

    if (rc != ET_OK) {
        et_cli_error("%s", err);
        return ET_CLI_EXIT_ERROR;
    }

    /* each line reaches a pipe as it is printed */
    setvbuf(stdout, NULL, _IOLBF, 0);

    et_cli_error("tail: following %s at %s (interrupt to stop)",
                 cli->stream_shown, cli->redis_shown);

    down = 0;
    retry = 250 * ET_CLI_NS_PER_MS;

    args[0] = "XREAD";
    args[1] = "COUNT";
    args[2] = ET_CLI_TAIL_COUNT_S;

    for ( ;; ) {
        if (!cli->open) {
            rc = et_cli_redis_open(cli, ET_CLI_BLOCK_NS, err, sizeof(err));

            if (rc != ET_OK) {
                et_cli_tail_sleep(retry);
                retry = retry * 2 > ET_CLI_TAIL_RETRY ? ET_CLI_TAIL_RETRY
                                                      : retry * 2;
                continue;
            }

            et_cli_error("tail: Redis at %s is back; following on from %s",
                         cli->redis_shown,
                         cli->shards == 1 ? tl->last[0]
                                          : "the last entry shown of each "
                                            "shard");
            down = 0;
            retry = 250 * ET_CLI_NS_PER_MS;
        }

        r = et_cli_streams(cli, 3, args, ids, 1, err, sizeof(err));

        if (r == NULL) {
            if (!down) {
                et_cli_error("tail: lost Redis at %s: %s; reconnecting",
                             cli->redis_shown, err);
            }

            down = 1;
            continue;
        }

        if (r->type == REDIS_REPLY_ERROR) {
            et_cli_error("tail: XREAD %s: %s", cli->stream_shown, r->str);
            et_cli_reply_free(r);
            return ET_CLI_EXIT_ERROR;
        }

        if (r->type == REDIS_REPLY_ARRAY
            && et_cli_tail_reply(tl, cli, r) != 0)
        {
            et_cli_error("tail: out of memory");
            et_cli_reply_free(r);
            return ET_CLI_EXIT_ERROR;
        }

        et_cli_reply_free(r);
    }
}


int
et_cli_tail(et_cli_t *cli, int argc, char **argv)
{
    int            i, rc;
    char         **ids;
    const char    *v;
    et_cli_tail_t  tl;

    memset(&tl, 0, sizeof(et_cli_tail_t));

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(et_cli_tail_usage, stdout);
            return ET_CLI_EXIT_OK;
        }

        if (strcmp(argv[i], "--errors") == 0) {
            tl.errors = 1;
            continue;
        }

        if ((rc = et_cli_opt_value(argc, argv, &i, "--service", &v)) == 1) {
            if (tl.nservices == ET_CLI_TAIL_SERVICES) {
                et_cli_error("tail: at most %d --service options",
                             ET_CLI_TAIL_SERVICES);
                return ET_CLI_EXIT_USAGE;
            }

            tl.services[tl.nservices++] = v;
            continue;
        }

        if (rc == 0
            && (rc = et_cli_opt_value(argc, argv, &i, "--slower-than", &v))
               == 1)
        {
            if (et_cli_opt_duration("--slower-than", v, &tl.slower_than)
                != ET_OK)
            {
                return ET_CLI_EXIT_USAGE;
            }

            continue;
        }

        if (rc == 0) {
            et_cli_error("tail: unexpected argument \"%s\" "
                         "(see edgetrace tail --help)", argv[i]);
        }

        return ET_CLI_EXIT_USAGE;
    }

    tl.last = calloc(cli->shards, sizeof(tl.last[0]));
    ids = calloc(cli->shards, sizeof(char *));

    if (tl.last == NULL || ids == NULL) {
        et_cli_error("out of memory");
        free(tl.last);
        free(ids);
        return ET_CLI_EXIT_ERROR;
    }

    rc = et_cli_tail_run(&tl, cli, ids);

    free(tl.last);
    free(ids);

    return rc;
}
