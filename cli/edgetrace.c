/*
 * edgetrace: reads the spans the edgetrace modules write to a Redis
 * stream.  Global options, then a command: show, tail, top, export,
 * serve.
 */

#include <stdlib.h>
#include <string.h>

#include "et_cli.h"
#include "et_stream.h"


static const char  et_cli_usage[] =
"Usage: edgetrace [--redis URL] [--cluster] [--stream KEY] [--shards N]\n"
"                 [--timeout DURATION] [--cacert FILE] [--cert FILE]\n"
"                 [--key FILE] [--sni NAME] COMMAND [ARGS...]\n"
"\n"
"Reads the spans the edgetrace nginx and httpd modules write to a Redis\n"
"stream: shows traces, follows them live, summarises them, and forwards\n"
"them to an OTLP or Zipkin collector.\n"
"\n"
"Commands:\n"
"  show TRACE_ID   one trace as an indented tree, with timings\n"
"  tail            new spans as they arrive, one line each\n"
"  top             per service and span name: rate, errors, latency\n"
"  export          forward spans to an OTLP/HTTP or Zipkin collector\n"
"                  (a Redis consumer group: run several to share the work)\n"
"  serve           store spans in SQLite and answer Jaeger's query API\n"
"                  over HTTP\n"
"\n"
"Options:\n"
"  --redis URL       redis://[[user]:password@]host[:port][/db] or\n"
"                    unix:/path/to/redis.sock, as in the modules'\n"
"                    configuration; rediss:// for TLS (default:\n"
"                    $EDGETRACE_REDIS, or redis://127.0.0.1:6379)\n"
"  --cluster         a Redis Cluster, its seeds in --redis:\n"
"                    redis://[[user]:password@]host[:port][,host[:port]...]\n"
"                    (default: on when $EDGETRACE_CLUSTER is 1)\n"
"  --stream KEY      the stream (default: $EDGETRACE_STREAM, or\n"
"                    edgetrace:spans)\n"
"  --shards N        the stream's shards, 1 to 256: the shards=N the\n"
"                    modules write it with (default: $EDGETRACE_SHARDS,\n"
"                    or 1)\n"
"  --timeout DURATION\n"
"                    Redis connect and command timeout (default 5s)\n"
"  --cacert FILE     rediss://: the CA certificates (PEM) Redis's\n"
"                    certificate is checked against (default:\n"
"                    $EDGETRACE_CACERT, or the system's store)\n"
"  --cert FILE       rediss://: a client certificate (PEM), for Redis's\n"
"                    tls-auth-clients (default: $EDGETRACE_CERT)\n"
"  --key FILE        its key (PEM, no passphrase; default:\n"
"                    $EDGETRACE_KEY)\n"
"  --sni NAME        rediss://: the name Redis's certificate must have,\n"
"                    sent as SNI (default: $EDGETRACE_SNI, or the host\n"
"                    of --redis)\n"
"  -h, --help        show this help and exit\n"
"  -V, --version     show the version and exit\n"
"\n"
"Durations are a number and a unit: 250ms, 30s, 15m, 2h, 1d, 1h30m.\n"
"Run 'edgetrace COMMAND --help' for a command's options.\n"
"\n"
"Exit status: 0 success, 1 error (Redis unreachable, trace not found),\n"
"2 usage error, 3 the collector rejected spans (export), 4 the collector\n"
"could not be reached (export --once).\n";


/* "redis://user:***@h1:7000,h2:7001 (cluster)" */
static void
et_cli_seeds_shown(et_cli_t *cli)
{
    size_t                  i, len, size;
    const et_redis_seed_t  *seed;

    size = sizeof(cli->redis_shown);

    snprintf(cli->redis_shown, size, "%s://%.64s%s%s",
             cli->redis.tls ? "rediss" : "redis", cli->redis.user,
             cli->redis.password[0] ? ":***" : "",
             cli->redis.user[0] || cli->redis.password[0] ? "@" : "");

    for (i = 0; i < cli->redis.nseeds; i++) {
        seed = &cli->redis.seeds[i];
        len = strlen(cli->redis_shown);
        snprintf(cli->redis_shown + len, size - len, "%s%s%.64s%s:%d",
                 i ? "," : "", strchr(seed->host, ':') ? "[" : "",
                 seed->host, strchr(seed->host, ':') ? "]" : "", seed->port);
    }

    len = strlen(cli->redis_shown);
    snprintf(cli->redis_shown + len, size - len, " (cluster)");
}


int
main(int argc, char **argv)
{
    int          i, rc;
    size_t       len;
    const char  *v, *err, *cmd, *shards, *shards_name;
    et_cli_t     cli;
    int        (*run)(et_cli_t *cli, int argc, char **argv);

    memset(&cli, 0, sizeof(et_cli_t));

    cli.redis_text = getenv("EDGETRACE_REDIS");
    cli.stream = getenv("EDGETRACE_STREAM");
    cli.timeout_ns = 5 * ET_CLI_NS_PER_S;
    cli.shards = 1;
    shards = getenv("EDGETRACE_SHARDS");
    shards_name = "$EDGETRACE_SHARDS";

    /* as for the other variables, empty is unset */
    v = getenv("EDGETRACE_CLUSTER");

    if (v != NULL && v[0] != '\0') {
        if (strcmp(v, "1") != 0 && strcmp(v, "0") != 0) {
            et_cli_error("invalid $EDGETRACE_CLUSTER \"%s\": 1 (a Redis "
                         "Cluster) or 0", v);
            return ET_CLI_EXIT_USAGE;
        }

        cli.cluster = v[0] == '1';
    }

    if (cli.redis_text == NULL || cli.redis_text[0] == '\0') {
        cli.redis_text = ET_REDIS_DEFAULT_URL;
    }

    if (cli.stream == NULL || cli.stream[0] == '\0') {
        cli.stream = ET_STREAM_DEFAULT_KEY;
    }

    et_cli_tls_env(&cli);

    for (i = 1; i < argc && argv[i][0] == '-'; i++) {

        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(et_cli_usage, stdout);
            return ET_CLI_EXIT_OK;
        }

        if (strcmp(argv[i], "-V") == 0 || strcmp(argv[i], "--version") == 0)
        {
            printf("edgetrace %s\n", ET_CLI_VERSION);
            return ET_CLI_EXIT_OK;
        }

        if (strcmp(argv[i], "--cluster") == 0) {
            cli.cluster = 1;
            continue;
        }

        rc = et_cli_opt_value(argc, argv, &i, "--redis", &v);

        if (rc == 1) {
            cli.redis_text = v;
            continue;
        }

        if (rc == 0) {
            rc = et_cli_opt_value(argc, argv, &i, "--stream", &v);

            if (rc == 1) {
                if (v[0] == '\0') {
                    et_cli_error("--stream: the key is empty");
                    return ET_CLI_EXIT_USAGE;
                }

                cli.stream = v;
                continue;
            }
        }

        if (rc == 0) {
            rc = et_cli_opt_value(argc, argv, &i, "--shards", &v);

            if (rc == 1) {
                shards = v;
                shards_name = "--shards";
                continue;
            }
        }

        if (rc == 0) {
            rc = et_cli_opt_value(argc, argv, &i, "--timeout", &v);

            if (rc == 1) {
                if (et_cli_opt_duration("--timeout", v, &cli.timeout_ns)
                    != ET_OK)
                {
                    return ET_CLI_EXIT_USAGE;
                }

                if (cli.timeout_ns < ET_CLI_NS_PER_MS) {
                    et_cli_error("--timeout must be at least 1ms");
                    return ET_CLI_EXIT_USAGE;
                }

                continue;
            }
        }

        if (rc == 0) {
            rc = et_cli_tls_option(&cli, argc, argv, &i);

            if (rc == 1) {
                continue;
            }
        }

        if (rc == 0) {
            et_cli_error("unknown option %s (see edgetrace --help)", argv[i]);
        }

        return ET_CLI_EXIT_USAGE;
    }

    if (i >= argc) {
        fputs(et_cli_usage, stderr);
        return ET_CLI_EXIT_USAGE;
    }

    /* an empty variable is an unset one, as for the other two; an empty
     * --shards is refused */
    if (shards != NULL
        && (shards[0] != '\0' || shards_name[0] == '-')
        && et_cli_shards_parse(shards_name, shards, &cli.shards) != ET_OK)
    {
        return ET_CLI_EXIT_USAGE;
    }

    len = strlen(cli.redis_text);

    if ((cli.cluster ? et_redis_seeds_parse((const uint8_t *) cli.redis_text,
                                            len, &cli.redis, &err)
                     : et_redis_url_parse((const uint8_t *) cli.redis_text,
                                          len, &cli.redis, &err))
        != ET_OK)
    {
        et_cli_error("invalid --redis \"%s\": %s%s", cli.redis_text, err,
                     cli.cluster ? " (--cluster)" : "");
        return ET_CLI_EXIT_USAGE;
    }

    /* messages name the Redis they are about, never its password */
    if (cli.cluster) {
        et_cli_seeds_shown(&cli);

    } else if (cli.redis.path[0]) {
        snprintf(cli.redis_shown, sizeof(cli.redis_shown), "unix:%s",
                 cli.redis.path);

    } else {
        snprintf(cli.redis_shown, sizeof(cli.redis_shown),
                 "%s://%.64s%s%s%s%.64s%s:%d",
                 cli.redis.tls ? "rediss" : "redis", cli.redis.user,
                 cli.redis.password[0] ? ":***" : "",
                 cli.redis.user[0] || cli.redis.password[0] ? "@" : "",
                 strchr(cli.redis.host, ':') ? "[" : "", cli.redis.host,
                 strchr(cli.redis.host, ':') ? "]" : "", cli.redis.port);

        if (cli.redis.db) {
            len = strlen(cli.redis_shown);
            snprintf(cli.redis_shown + len, sizeof(cli.redis_shown) - len,
                     "/%d", cli.redis.db);
        }
    }

    cmd = argv[i];

    /* the command sees its own name as argv[0] */
    argc -= i;
    argv += i;

    if (strcmp(cmd, "help") == 0) {
        if (argc > 1) {
            char  *h[] = { argv[1], (char *) "--help", NULL };

            if (strcmp(argv[1], "show") == 0) {
                return et_cli_show(&cli, 2, h);
            }

            if (strcmp(argv[1], "tail") == 0) {
                return et_cli_tail(&cli, 2, h);
            }

            if (strcmp(argv[1], "top") == 0) {
                return et_cli_top(&cli, 2, h);
            }

            if (strcmp(argv[1], "export") == 0) {
                return et_cli_export(&cli, 2, h);
            }

            if (strcmp(argv[1], "serve") == 0) {
                return et_cli_serve(&cli, 2, h);
            }
        }

        fputs(et_cli_usage, stdout);
        return ET_CLI_EXIT_OK;
    }

    run = strcmp(cmd, "show") == 0 ? et_cli_show
          : strcmp(cmd, "tail") == 0 ? et_cli_tail
          : strcmp(cmd, "top") == 0 ? et_cli_top
          : strcmp(cmd, "export") == 0 ? et_cli_export
          : strcmp(cmd, "serve") == 0 ? et_cli_serve : NULL;

    if (run == NULL) {
        et_cli_error("unknown command \"%s\" (see edgetrace --help)", cmd);
        return ET_CLI_EXIT_USAGE;
    }

    /* the TLS files are read before the command runs: a missing one is
     * a usage error */
    rc = et_cli_shards_init(&cli) == ET_OK && et_cli_tls_init(&cli) == ET_OK
         ? run(&cli, argc, argv) : ET_CLI_EXIT_USAGE;
    et_cli_redis_free(&cli);
    et_cli_arena_release();
    et_cli_tls_free(&cli);
    et_cli_shards_free(&cli);

    return rc;
}
