/*
 * edgetrace on a Redis Cluster (--cluster, docs/cli.md "Redis Cluster"):
 * the slot map from a seed (the core's et_cluster, as the modules learn
 * it), a connection to each master a command needs, and each shard's
 * commands on the master that serves the slot of its key.
 *
 * A cluster refuses a command whose keys lie in different slots
 * (CROSSSLOT), and each shard has a slot of its own (docs/stream.md,
 * "Sharded streams"): the XREAD or XREADGROUP over the shards becomes one
 * per shard, those of a master written to it together (a pipeline), and
 * their replies are joined into the reply one XREAD over every shard
 * gives, so that tail and export read them as they read one Redis's.
 *
 * A redirection is followed once: MOVED (the slot has moved) learns the
 * map again and sends the command to the slot's new master; ASK (the slot
 * is moving) sends ASKING and the command to the node named.  A master
 * lost, or CLUSTERDOWN, TRYAGAIN, MASTERDOWN or LOADING (a failover or a
 * resharding under way), is Redis lost: the caller opens again, which
 * learns the map again, from the seeds, then from the nodes it knew.
 */

#include <stdlib.h>
#include <string.h>

#include "et_cli.h"
#include "et_cluster.h"
#include "et_slot.h"


struct et_cli_cluster_s {
    et_cluster_map_t   *map;
    et_cluster_map_t   *spare;
    int                 have_map;
    unsigned           *shard_slot;
    redisContext       *conns[ET_CLUSTER_MASTERS_MAX];  /* per map node */
};


#define ET_CLI_ADDR  (ET_CLUSTER_HOST_MAX + 16)


static void
et_cli_cluster_addr(char *buf, size_t size, const char *host, int port)
{
    snprintf(buf, size, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
}


static int
et_cli_cluster_is(const redisReply *r, const char *word)
{
    size_t  n;

    n = strlen(word);

    return r->type == REDIS_REPLY_ERROR && r->len >= n
           && memcmp(r->str, word, n) == 0
           && (r->len == n || r->str[n] == ' ');
}


/*
 * Asks one node for the map, into "spare": ET_OK, ET_ERROR, or
 * ET_DECLINED for a Redis that is not a cluster node.  The node's reader
 * is guarded: a seed may be anything.
 */
static int
et_cli_cluster_ask(et_cli_t *cli, const char *host, int port, char *err,
    size_t size)
{
    int                rc;
    char               addr[ET_CLI_ADDR], why[300];
    size_t             left;
    redisContext      *c;

    et_cli_cluster_addr(addr, sizeof(addr), host, port);

    c = et_cli_redis_connect(cli, host, port, err, size);

    if (c == NULL) {
        return ET_ERROR;
    }

    et_cluster_guard(c->reader, &left);

    rc = et_cluster_fetch(et_redis_context_command, c, &left, host,
                          cli->cl->spare, why, sizeof(why));

    et_cli_redis_disconnect(c);

    if (rc == ET_DECLINED) {
        snprintf(err, size, "Redis at %s is %s: --cluster reads a cluster; "
                 "without it, one Redis", addr, why);

    } else if (rc != ET_OK) {
        snprintf(err, size, "Redis at %s: %s", addr, why);
    }

    return rc;
}


/*
 * Learns the map from the seeds, then from the nodes of the map known:
 * after a failover the seeds may be the nodes gone.  The connections of
 * masters still in the map are kept.
 */
static int
et_cli_cluster_learn(et_cli_t *cli, char *err, size_t size)
{
    int                 rc, port, declined;
    char                why[512];
    size_t              i, n;
    unsigned            j, k;
    const char         *host;
    redisContext       *conns[ET_CLUSTER_MASTERS_MAX];
    et_cli_cluster_t   *cl;
    et_cluster_map_t   *old;

    cl = cli->cl;
    n = cli->redis.nseeds + (cl->have_map ? cl->map->nnodes : 0);
    declined = 0;
    why[0] = '\0';

    for (i = 0; i < n; i++) {
        if (i < cli->redis.nseeds) {
            host = cli->redis.seeds[i].host;
            port = cli->redis.seeds[i].port;

        } else {
            host = cl->map->nodes[i - cli->redis.nseeds].host;
            port = cl->map->nodes[i - cli->redis.nseeds].port;
        }

        rc = et_cli_cluster_ask(cli, host, port, err, size);

        if (rc == ET_DECLINED) {
            declined = 1;
            snprintf(why, sizeof(why), "%s", err);
        }

        if (rc != ET_OK) {
            continue;
        }

        old = cl->map;
        cl->map = cl->spare;
        cl->spare = old;

        for (j = 0; j < cl->map->nnodes; j++) {
            conns[j] = NULL;

            for (k = 0; cl->have_map && k < old->nnodes; k++) {
                if (cl->conns[k] != NULL
                    && old->nodes[k].port == cl->map->nodes[j].port
                    && strcmp(old->nodes[k].host, cl->map->nodes[j].host)
                       == 0)
                {
                    conns[j] = cl->conns[k];
                    cl->conns[k] = NULL;
                    break;
                }
            }
        }

        for (k = 0; k < ET_CLUSTER_MASTERS_MAX; k++) {
            if (cl->conns[k] != NULL) {
                et_cli_redis_disconnect(cl->conns[k]);
            }

            cl->conns[k] = k < cl->map->nnodes ? conns[k] : NULL;
        }

        cl->have_map = 1;

        return ET_OK;
    }

    if (declined) {
        snprintf(err, size, "%s", why);
        return ET_DECLINED;
    }

    memcpy(why, err, size < sizeof(why) ? size : sizeof(why));
    why[sizeof(why) - 1] = '\0';
    snprintf(err, size, "no node of the cluster gave its slot map: %s",
             why);

    return ET_ERROR;
}


int
et_cli_cluster_open(et_cli_t *cli, char *err, size_t size)
{
    unsigned           s;
    et_cli_cluster_t  *cl;

    if (cli->cl == NULL) {
        cl = calloc(1, sizeof(et_cli_cluster_t));

        if (cl == NULL) {
            snprintf(err, size, "out of memory");
            return ET_ERROR;
        }

        cli->cl = cl;

        cl->map = malloc(sizeof(et_cluster_map_t));
        cl->spare = malloc(sizeof(et_cluster_map_t));
        cl->shard_slot = malloc(cli->shards * sizeof(unsigned));

        if (cl->map == NULL || cl->spare == NULL || cl->shard_slot == NULL) {
            snprintf(err, size, "out of memory");
            return ET_ERROR;
        }

        for (s = 0; s < cli->shards; s++) {
            cl->shard_slot[s] = et_slot((const uint8_t *) cli->keys[s],
                                        strlen(cli->keys[s]));
        }
    }

    return et_cli_cluster_learn(cli, err, size);
}


void
et_cli_cluster_close(et_cli_t *cli)
{
    unsigned  k;

    for (k = 0; k < ET_CLUSTER_MASTERS_MAX; k++) {
        if (cli->cl->conns[k] != NULL) {
            et_cli_redis_disconnect(cli->cl->conns[k]);
            cli->cl->conns[k] = NULL;
        }
    }
}


void
et_cli_cluster_free(et_cli_t *cli)
{
    if (cli->cl == NULL) {
        return;
    }

    free(cli->cl->map);
    free(cli->cl->spare);
    free(cli->cl->shard_slot);
    free(cli->cl);
    cli->cl = NULL;
}


/* the master of "slot", its index in the map; -1 with a message */
static int
et_cli_cluster_node(et_cli_t *cli, unsigned slot, char *err, size_t size)
{
    et_cluster_map_t         *map;
    const et_cluster_node_t  *node;

    map = cli->cl->map;
    node = et_cluster_node(map, slot);

    if (node == NULL) {
        snprintf(err, size, "no master serves slot %u (%u of 16384 slots "
                 "served): the cluster is not whole", slot, map->covered);
        return -1;
    }

    return (int) (node - map->nodes);
}


/* the connection to master "k" of the map, made when first needed */
static redisContext *
et_cli_cluster_conn(et_cli_t *cli, int k, char *err, size_t size)
{
    et_cli_cluster_t  *cl;

    cl = cli->cl;

    if (cl->conns[k] == NULL) {
        cl->conns[k] = et_cli_redis_connect(cli, cl->map->nodes[k].host,
                                            cl->map->nodes[k].port, err,
                                            size);
    }

    return cl->conns[k];
}


/* the index of host:port in the map, or -1 */
static int
et_cli_cluster_find(et_cli_t *cli, const char *host, int port)
{
    unsigned           k;
    et_cluster_map_t  *map;

    map = cli->cl->map;

    for (k = 0; k < map->nnodes; k++) {
        if (map->nodes[k].port == port
            && strcmp(map->nodes[k].host, host) == 0)
        {
            return (int) k;
        }
    }

    return -1;
}


/*
 * 1 (and "r" freed, "err" set) for an error reply that says the cluster
 * is failing over, resharding or down: Redis lost, for the caller
 */
static int
et_cli_cluster_down(redisReply *r, const char *addr, char *err, size_t size)
{
    if (!et_cli_cluster_is(r, "CLUSTERDOWN")
        && !et_cli_cluster_is(r, "TRYAGAIN")
        && !et_cli_cluster_is(r, "MASTERDOWN")
        && !et_cli_cluster_is(r, "LOADING"))
    {
        return 0;
    }

    snprintf(err, size, "Redis at %s: %.*s", addr,
             (int) (r->len < 200 ? r->len : 200), r->str);
    et_cli_reply_free(r);

    return 1;
}


/*
 * The reply "r" of the node at "host" ("addr" in messages): a failover's
 * errors become NULL (Redis lost), a redirection is followed once, any
 * other reply is returned.
 */
static redisReply *
et_cli_cluster_check(et_cli_t *cli, const char *host, const char *addr,
    redisReply *r, int argc, const char **argv, const size_t *lens,
    char *err, size_t size)
{
    int            k, port, ask;
    char           to[ET_CLUSTER_HOST_MAX + 1], toaddr[ET_CLI_ADDR];
    unsigned       slot;
    redisReply    *asking;
    redisContext  *c, *once;

    if (r->type != REDIS_REPLY_ERROR) {
        return r;
    }

    if (et_cli_cluster_down(r, addr, err, size)) {
        return NULL;
    }

    if (!et_cli_cluster_is(r, "MOVED") && !et_cli_cluster_is(r, "ASK")) {
        return r;
    }

    if (et_cluster_redirect(r->str, r->len, &slot, to, sizeof(to), &port)
        != ET_OK)
    {
        return r;
    }

    if (to[0] == '\0') {
        snprintf(to, sizeof(to), "%s", host);
    }

    ask = r->str[0] == 'A';
    et_cli_reply_free(r);

    et_cli_cluster_addr(toaddr, sizeof(toaddr), to, port);

    if (!ask) {
        /* the slot has moved: the map is learnt again */
        if (et_cli_cluster_learn(cli, err, size) != ET_OK) {
            return NULL;
        }

        k = et_cli_cluster_find(cli, to, port);

        if (k < 0) {
            k = et_cli_cluster_node(cli, slot, err, size);

            if (k < 0) {
                return NULL;
            }
        }

        c = et_cli_cluster_conn(cli, k, err, size);

        if (c == NULL) {
            return NULL;
        }

        r = redisCommandArgv(c, argc, argv, lens);

        if (r == NULL) {
            snprintf(err, size, "Redis at %s: %s", toaddr,
                     et_cli_redis_why(c));
            return NULL;
        }

        return et_cli_cluster_down(r, toaddr, err, size) ? NULL : r;
    }

    /* the slot is moving: this command alone, to the node named */
    once = NULL;
    k = et_cli_cluster_find(cli, to, port);

    if (k >= 0) {
        c = et_cli_cluster_conn(cli, k, err, size);

    } else {
        once = et_cli_redis_connect(cli, to, port, err, size);
        c = once;
    }

    if (c == NULL) {
        return NULL;
    }

    r = NULL;
    asking = NULL;

    if (redisAppendCommand(c, "ASKING") != REDIS_OK
        || redisAppendCommandArgv(c, argc, argv, lens) != REDIS_OK
        || redisGetReply(c, (void **) &asking) != REDIS_OK
        || redisGetReply(c, (void **) &r) != REDIS_OK)
    {
        snprintf(err, size, "Redis at %s: %s", toaddr,
                 et_cli_redis_why(c));
        r = NULL;
    }

    if (asking != NULL) {
        et_cli_reply_free(asking);
    }

    if (once != NULL) {
        et_cli_redis_disconnect(once);
    }

    return r != NULL && et_cli_cluster_down(r, toaddr, err, size) ? NULL : r;
}


redisReply *
et_cli_cluster_command(et_cli_t *cli, const char *key, int argc,
    const char **argv, const size_t *lens, char *err, size_t size)
{
    int                k;
    char               host[ET_CLUSTER_HOST_MAX + 1], addr[ET_CLI_ADDR];
    redisReply        *r;
    redisContext      *c;
    et_cluster_node_t *node;

    k = et_cli_cluster_node(cli, et_slot((const uint8_t *) key, strlen(key)),
                            err, size);

    if (k < 0) {
        return NULL;
    }

    node = &cli->cl->map->nodes[k];
    snprintf(host, sizeof(host), "%s", node->host);
    et_cli_cluster_addr(addr, sizeof(addr), node->host, node->port);

    c = et_cli_cluster_conn(cli, k, err, size);

    if (c == NULL) {
        return NULL;
    }

    r = redisCommandArgv(c, argc, argv, lens);

    if (r == NULL) {
        snprintf(err, size, "Redis at %s: %s", addr,
                 et_cli_redis_why(c));
        return NULL;
    }

    return et_cli_cluster_check(cli, host, addr, r, argc, argv, lens, err,
                                size);
}


redisReply *
et_cli_cluster_streams(et_cli_t *cli, int argc, const char **argv,
    char **ids, char *err, size_t size)
{
    int                 *node, k, failed;
    char                 host[ET_CLUSTER_HOST_MAX + 1], addr[ET_CLI_ADDR];
    size_t               n;
    unsigned             s, nnodes;
    const char         **a;
    redisReply         **parts, *r, *st;
    redisContext        *c;
    et_cli_cluster_t    *cl;
    et_cluster_node_t   *nd;

    cl = cli->cl;
    r = NULL;
    failed = 1;

    parts = calloc(cli->shards, sizeof(redisReply *));
    node = malloc(cli->shards * sizeof(int));
    a = malloc((argc + 3) * sizeof(char *));

    if (parts == NULL || node == NULL || a == NULL) {
        snprintf(err, size, "out of memory");
        goto done;
    }

    memcpy(a, argv, argc * sizeof(char *));
    a[argc] = "STREAMS";

    for (s = 0; s < cli->shards; s++) {
        node[s] = et_cli_cluster_node(cli, cl->shard_slot[s], err, size);

        if (node[s] < 0) {
            goto done;
        }
    }

    /* one write per master: its shards' commands, then their replies */
    nnodes = cl->map->nnodes;

    for (k = 0; k < (int) nnodes; k++) {
        for (s = 0; s < cli->shards; s++) {
            if (node[s] != k) {
                continue;
            }

            c = et_cli_cluster_conn(cli, k, err, size);

            if (c == NULL) {
                goto done;
            }

            a[argc + 1] = cli->keys[s];
            a[argc + 2] = ids[s];

            if (redisAppendCommandArgv(c, argc + 3, a, NULL) != REDIS_OK) {
                snprintf(err, size, "out of memory");
                goto done;
            }
        }
    }

    /* the replies in the arena: the redirections followed below are not */
    et_cli_arena_begin();

    for (k = 0; k < (int) nnodes; k++) {
        for (s = 0; s < cli->shards; s++) {
            if (node[s] != k) {
                continue;
            }

            c = cl->conns[k];

            if (redisGetReply(c, (void **) &parts[s]) != REDIS_OK) {
                et_cli_arena_end();
                nd = &cl->map->nodes[k];
                et_cli_cluster_addr(addr, sizeof(addr), nd->host, nd->port);
                snprintf(err, size, "Redis at %s: %s", addr,
                 et_cli_redis_why(c));
                parts[s] = NULL;
                goto done;
            }
        }
    }

    et_cli_arena_end();

    /* redirections and errors, shard by shard (the map may change) */
    for (s = 0; s < cli->shards; s++) {
        nd = &cl->map->nodes[node[s]];
        snprintf(host, sizeof(host), "%s", nd->host);
        et_cli_cluster_addr(addr, sizeof(addr), nd->host, nd->port);

        a[argc + 1] = cli->keys[s];
        a[argc + 2] = ids[s];

        parts[s] = et_cli_cluster_check(cli, host, addr, parts[s], argc + 3,
                                        a, NULL, err, size);

        if (parts[s] == NULL) {
            goto done;
        }

        if (parts[s]->type == REDIS_REPLY_ERROR) {
            /* the first error is the reply */
            r = parts[s];
            parts[s] = NULL;
            failed = 0;
            goto done;
        }
    }

    n = 0;

    for (s = 0; s < cli->shards; s++) {
        n += parts[s]->type == REDIS_REPLY_ARRAY && parts[s]->elements > 0;
    }

    r = calloc(1, sizeof(redisReply));

    if (r == NULL || (n && (r->element = calloc(n, sizeof(redisReply *)))
                           == NULL))
    {
        free(r);
        r = NULL;
        snprintf(err, size, "out of memory");
        goto done;
    }

    r->type = n ? REDIS_REPLY_ARRAY : REDIS_REPLY_NIL;

    /* [key, entries] of each shard, taken from its reply */
    for (s = 0; s < cli->shards; s++) {
        if (parts[s]->type == REDIS_REPLY_ARRAY && parts[s]->elements > 0) {
            st = parts[s]->element[0];
            parts[s]->element[0] = NULL;
            r->element[r->elements++] = st;
        }
    }

    failed = 0;

done:

    if (parts != NULL) {
        for (s = 0; s < cli->shards; s++) {
            if (parts[s] != NULL) {
                et_cli_reply_free(parts[s]);
            }
        }
    }

    free(parts);
    free(node);
    free(a);

    return failed ? NULL : r;
}
