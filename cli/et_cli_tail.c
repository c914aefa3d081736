/*
 * edgetrace tail: new spans as they reach the stream (XREAD BLOCK), one
 * line each, until interrupted.  A lost Redis is reconnected to, and the
 * stream is followed on from the last entry shown.
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
"\n"
"Options:\n"
"  --service NAME    only spans of this service.name (repeatable)\n"
"  --errors          only spans whose status is error\n"
"  --slower-than DURATION\n"
"                    only spans that lasted longer than this\n"
"  -h, --help        show this help and exit\n";


#define ET_CLI_TAIL_SERVICES  16
#define ET_CLI_TAIL_RETRY     (5 * ET_CLI_NS_PER_S)


typedef struct {
    const char  *services[ET_CLI_TAIL_SERVICES];
    size_t       nservices;
    int          errors;
    uint64_t     slower_than;
    char         last[64];
} et_cli_tail_t;


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

    if (s->id.len && s->id.len < sizeof(tl->last)) {
        memcpy(tl->last, s->id.data, s->id.len);
        tl->last[s->id.len] = '\0';
    }

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


static void
et_cli_tail_sleep(uint64_t ns)
{
    struct timespec  ts;

    ts.tv_sec = (time_t) (ns / ET_CLI_NS_PER_S);
    ts.tv_nsec = (long) (ns % ET_CLI_NS_PER_S);
    nanosleep(&ts, NULL);
}


int
et_cli_tail(et_cli_t *cli, int argc, char **argv)
{
    int            i, rc, down;
    char           err[512];
    uint64_t       retry;
    const char    *v, *args[8];
    redisReply    *r;
    redisContext  *c;
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

    c = et_cli_redis_connect(cli, ET_CLI_BLOCK_NS, err, sizeof(err));

    if (c == NULL) {
        et_cli_error("%s", err);
        return ET_CLI_EXIT_ERROR;
    }

    if (et_cli_stream_end(c, cli, 1, tl.last, sizeof(tl.last), err,
                          sizeof(err))
        != ET_OK)
    {
        et_cli_error("%s", err);
        redisFree(c);
        return ET_CLI_EXIT_ERROR;
    }

    /* each line reaches a pipe as it is printed */
    setvbuf(stdout, NULL, _IOLBF, 0);

    et_cli_error("tail: following %s at %s (interrupt to stop)",
                 cli->stream, cli->redis_shown);

    down = 0;
    retry = 250 * ET_CLI_NS_PER_MS;

    for ( ;; ) {
        if (c == NULL) {
            c = et_cli_redis_connect(cli, ET_CLI_BLOCK_NS, err, sizeof(err));

            if (c == NULL) {
                et_cli_tail_sleep(retry);
                retry = retry * 2 > ET_CLI_TAIL_RETRY ? ET_CLI_TAIL_RETRY
                                                      : retry * 2;
                continue;
            }

            et_cli_error("tail: Redis at %s is back; following on from %s",
                         cli->redis_shown, tl.last);
            down = 0;
            retry = 250 * ET_CLI_NS_PER_MS;
        }

        args[0] = "XREAD";
        args[1] = "COUNT";
        args[2] = "100";
        args[3] = "BLOCK";
        args[4] = ET_CLI_BLOCK_MS;
        args[5] = "STREAMS";
        args[6] = cli->stream;
        args[7] = tl.last;

        r = redisCommandArgv(c, 8, args, NULL);

        if (r == NULL) {
            if (!down) {
                et_cli_error("tail: lost Redis at %s: %s; reconnecting",
                             cli->redis_shown, c->errstr);
            }

            down = 1;
            redisFree(c);
            c = NULL;
            continue;
        }

        if (r->type == REDIS_REPLY_ERROR) {
            et_cli_error("tail: XREAD %s: %s", cli->stream, r->str);
            freeReplyObject(r);
            redisFree(c);
            return ET_CLI_EXIT_ERROR;
        }

        if (r->type == REDIS_REPLY_ARRAY && r->elements == 1
            && r->element[0]->type == REDIS_REPLY_ARRAY
            && r->element[0]->elements == 2)
        {
            if (et_cli_entries(r->element[0]->element[1], et_cli_tail_entry,
                               &tl) != 0)
            {
                et_cli_error("tail: out of memory");
                freeReplyObject(r);
                redisFree(c);
                return ET_CLI_EXIT_ERROR;
            }
        }

        freeReplyObject(r);
    }
}
