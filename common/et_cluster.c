/*
 * The Redis Cluster slot map, from CLUSTER SLOTS or CLUSTER SHARDS
 * replies (et_cluster.h says what the map holds and what is refused).
 *
 * Every element is checked for its type before it is read, and every
 * index against the element count hiredis gives: a hostile node can make
 * the parse fail, never read past the reply.
 */

#include <stdio.h>
#include <string.h>

#include "et_cluster.h"
#include "et_hiredis.h"


#define ET_CLUSTER_PORT_MAX  65535


/* what a CLUSTER SHARDS node gives the map, in this order */
static const char *const  et_cluster_node_keys[] = {
    "endpoint", "port", "role", "health"
};


static void
et_cluster_reset(et_cluster_map_t *map)
{
    map->nnodes = 0;
    map->covered = 0;
    memset(map->slots, ET_CLUSTER_NO_NODE, sizeof(map->slots));
}


/* a NULL or "" endpoint: the node does not know it, "host" stays empty */
static const char *
et_cluster_host(const redisReply *r, char *host)
{
    size_t          i;
    unsigned char   c;

    host[0] = '\0';

    if (r->type == REDIS_REPLY_NIL) {
        return NULL;
    }

    if (r->type != REDIS_REPLY_STRING) {
        return "a node's host is not a string";
    }

    if (r->len > ET_CLUSTER_HOST_MAX) {
        return "a node's host is too long";
    }

    /* cluster-preferred-endpoint-type is hostname, and none is set */
    if (r->len == 1 && r->str[0] == '?') {
        return "a node's endpoint is unknown (\"?\")";
    }

    for (i = 0; i < r->len; i++) {
        c = (unsigned char) r->str[i];

        if (c <= ' ' || c >= 0x7f) {
            return "a node's host has a space or a control byte";
        }
    }

    memcpy(host, r->str, r->len);
    host[r->len] = '\0';

    return NULL;
}


static const char *
et_cluster_port(const redisReply *r, int *port)
{
    if (r->type != REDIS_REPLY_INTEGER) {
        return "a node's port is not an integer";
    }

    if (r->integer < 1 || r->integer > ET_CLUSTER_PORT_MAX) {
        return "a node's port is out of range";
    }

    *port = (int) r->integer;

    return NULL;
}


/* the master's index in the node table, added when it is not there yet */
static const char *
et_cluster_master(et_cluster_map_t *map, const char *host, int port,
    unsigned *index)
{
    unsigned            i;
    et_cluster_node_t  *node;

    for (i = 0; i < map->nnodes; i++) {
        node = &map->nodes[i];

        if (node->port == port && strcmp(node->host, host) == 0) {
            *index = i;
            return NULL;
        }
    }

    if (map->nnodes == ET_CLUSTER_MASTERS_MAX) {
        return "too many masters";
    }

    node = &map->nodes[map->nnodes];
    strcpy(node->host, host);
    node->port = port;
    *index = map->nnodes++;

    return NULL;
}


static const char *
et_cluster_slot(const redisReply *r, long long *slot)
{
    if (r->type != REDIS_REPLY_INTEGER) {
        return "a slot is not an integer";
    }

    if (r->integer < 0 || r->integer >= ET_CLUSTER_SLOTS) {
        return "a slot is out of range";
    }

    *slot = r->integer;

    return NULL;
}


static const char *
et_cluster_assign(et_cluster_map_t *map, const redisReply *first,
    const redisReply *last, unsigned index)
{
    long long    start, end, s;
    const char  *err;

    err = et_cluster_slot(first, &start);

    if (err == NULL) {
        err = et_cluster_slot(last, &end);
    }

    if (err != NULL) {
        return err;
    }

    if (start > end) {
        return "a slot range ends before it starts";
    }

    for (s = start; s <= end; s++) {
        if (map->slots[s] != ET_CLUSTER_NO_NODE) {
            return "overlapping slot ranges";
        }

        map->slots[s] = (uint8_t) index;
    }

    map->covered += (unsigned) (end - start + 1);

    return NULL;
}


/* [host, port, id, metadata...]: host and port, the rest may be absent */
static const char *
et_cluster_slots_node(const redisReply *r, char *host, int *port)
{
    const char  *err;

    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2) {
        return "a node is not [host, port, ...]";
    }

    err = et_cluster_host(r->element[0], host);

    if (err == NULL) {
        err = et_cluster_port(r->element[1], port);
    }

    if (err == NULL && r->elements > 2
        && r->element[2]->type != REDIS_REPLY_STRING)
    {
        return "a node's id is not a string";
    }

    return err;
}


static const char *
et_cluster_reply(const redisReply *reply)
{
    if (reply == NULL) {
        return "no reply";
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        return "an error reply";
    }

    if (reply->type != REDIS_REPLY_ARRAY) {
        return "the reply is not an array";
    }

    return NULL;
}


int
et_cluster_slots_parse(const struct redisReply *reply, et_cluster_map_t *map,
    const char **err)
{
    int                port;
    char               host[ET_CLUSTER_HOST_MAX + 1];
    size_t             i, j;
    unsigned           index;
    const char        *e;
    const redisReply  *range;

    et_cluster_reset(map);

    e = et_cluster_reply(reply);

    for (i = 0; e == NULL && i < reply->elements; i++) {
        range = reply->element[i];

        if (range->type != REDIS_REPLY_ARRAY || range->elements < 3) {
            e = "a slot range is not [start, end, master, ...]";
            break;
        }

        /*
         * backwards: the replicas are checked and left out, and "host"
         * and "port" end with the master's, the range's third element
         */
        for (j = range->elements - 1; e == NULL && j >= 2; j--) {
            e = et_cluster_slots_node(range->element[j], host, &port);
        }

        if (e == NULL) {
            e = et_cluster_master(map, host, port, &index);
        }

        if (e == NULL) {
            e = et_cluster_assign(map, range->element[0], range->element[1],
                                  index);
        }
    }

    if (e != NULL) {
        et_cluster_reset(map);
        *err = e;
        return ET_ERROR;
    }

    return ET_OK;
}


/*
 * The values of the keys "names" of a RESP2 map (a flat key/value array)
 * into "vals", NULL where the key is absent.  A key given twice is an
 * error: which one a node meant cannot be told.
 */
static const char *
et_cluster_fields(const redisReply *m, const char *const *names,
    const redisReply **vals, size_t n)
{
    size_t             i, k, len;
    const redisReply  *key;

    if (m->type != REDIS_REPLY_ARRAY || m->elements % 2) {
        return "a shard or a node is not a map";
    }

    for (k = 0; k < n; k++) {
        vals[k] = NULL;
    }

    for (i = 0; i < m->elements; i += 2) {
        key = m->element[i];

        if (key->type != REDIS_REPLY_STRING) {
            return "a map key is not a string";
        }

        for (k = 0; k < n; k++) {
            len = strlen(names[k]);

            if (key->len == len && memcmp(key->str, names[k], len) == 0) {
                break;
            }
        }

        if (k == n) {
            continue;
        }

        if (vals[k] != NULL) {
            return "a map key given twice";
        }

        vals[k] = m->element[i + 1];
    }

    return NULL;
}


/*
 * The shard's master, when "node" is one: *master is set once.  A master
 * whose health is "fail" ("failed" in Redis's documentation) is one that
 * a replica replaced: Redis 8 (Debian 13's) lists it in the shard beside
 * the new master until it comes back as a replica, where Redis 7.0
 * (Debian 12's) lists it as a shard of its own, without slots.  It serves
 * no slot.
 */
static const char *
et_cluster_shards_node(const redisReply *node, const redisReply **master)
{
    const char               *e;
    const redisReply         *v[4];

    e = et_cluster_fields(node, et_cluster_node_keys, v, 4);

    if (e != NULL) {
        return e;
    }

    if (v[0] == NULL || v[1] == NULL || v[2] == NULL) {
        return "a node without endpoint, port or role";
    }

    if (v[2]->type != REDIS_REPLY_STRING) {
        return "a node's role is not a string";
    }

    if (v[2]->len != 6 || memcmp(v[2]->str, "master", 6) != 0) {
        return NULL;
    }

    if (v[3] != NULL && v[3]->type == REDIS_REPLY_STRING
        && ((v[3]->len == 4 && memcmp(v[3]->str, "fail", 4) == 0)
            || (v[3]->len == 6 && memcmp(v[3]->str, "failed", 6) == 0)))
    {
        return NULL;
    }

    if (*master != NULL) {
        return "a shard with two masters";
    }

    *master = node;

    return NULL;
}


static const char *
et_cluster_shard(et_cluster_map_t *map, const redisReply *shard)
{
    int                       port;
    char                      host[ET_CLUSTER_HOST_MAX + 1];
    size_t                    i;
    unsigned                  index;
    const char               *e;
    const redisReply         *v[3], *master, *slots, *nodes;
    static const char *const  shard_names[] = { "slots", "nodes" };

    e = et_cluster_fields(shard, shard_names, v, 2);

    if (e != NULL) {
        return e;
    }

    slots = v[0];
    nodes = v[1];

    if (slots == NULL || nodes == NULL) {
        return "a shard without slots or nodes";
    }

    if (slots->type != REDIS_REPLY_ARRAY || slots->elements % 2) {
        return "a shard's slots are not start, end pairs";
    }

    if (nodes->type != REDIS_REPLY_ARRAY) {
        return "a shard's nodes are not an array";
    }

    master = NULL;

    for (i = 0; i < nodes->elements; i++) {
        e = et_cluster_shards_node(nodes->element[i], &master);

        if (e != NULL) {
            return e;
        }
    }

    if (slots->elements == 0) {
        return NULL;
    }

    if (master == NULL) {
        return "a shard with slots and no master";
    }

    (void) et_cluster_fields(master, et_cluster_node_keys, v, 3);

    e = et_cluster_host(v[0], host);

    if (e == NULL) {
        e = et_cluster_port(v[1], &port);
    }

    if (e == NULL) {
        e = et_cluster_master(map, host, port, &index);
    }

    for (i = 0; e == NULL && i < slots->elements; i += 2) {
        e = et_cluster_assign(map, slots->element[i], slots->element[i + 1],
                              index);
    }

    return e;
}


int
et_cluster_shards_parse(const struct redisReply *reply, et_cluster_map_t *map,
    const char **err)
{
    size_t       i;
    const char  *e;

    et_cluster_reset(map);

    e = et_cluster_reply(reply);

    for (i = 0; e == NULL && i < reply->elements; i++) {
        e = et_cluster_shard(map, reply->element[i]);
    }

    if (e != NULL) {
        et_cluster_reset(map);
        *err = e;
        return ET_ERROR;
    }

    return ET_OK;
}


const et_cluster_node_t *
et_cluster_node(const et_cluster_map_t *map, unsigned slot)
{
    if (slot >= ET_CLUSTER_SLOTS || map->slots[slot] >= map->nnodes) {
        return NULL;
    }

    return &map->nodes[map->slots[slot]];
}


int
et_cluster_redirect(const char *s, size_t len, unsigned *slot, char *host,
    size_t size, int *port)
{
    int64_t      n;
    const char  *p, *last, *sp, *colon;

    last = s + len;

    sp = memchr(s, ' ', len);

    if (sp == NULL) {
        return ET_ERROR;
    }

    p = sp + 1;
    sp = memchr(p, ' ', (size_t) (last - p));

    if (sp == NULL
        || et_parse_int((const uint8_t *) p, (size_t) (sp - p), 0,
                        ET_CLUSTER_SLOTS - 1, &n)
           != ET_OK)
    {
        return ET_ERROR;
    }

    *slot = (unsigned) n;
    p = sp + 1;

    /* the port after the last ':', an IPv6 address before it */
    colon = NULL;

    for (sp = p; sp < last; sp++) {
        if (*sp == ':') {
            colon = sp;

        } else if (*sp <= ' ' || *sp == 0x7f) {
            return ET_ERROR;
        }
    }

    if (colon == NULL || (size_t) (colon - p) >= size
        || et_parse_int((const uint8_t *) colon + 1,
                        (size_t) (last - colon - 1), 1, 65535, &n)
           != ET_OK)
    {
        return ET_ERROR;
    }

    memcpy(host, p, (size_t) (colon - p));
    host[colon - p] = '\0';
    *port = (int) n;

    return ET_OK;
}


/* hiredis's own array constructor, which the guard's wraps */
static redisReplyObjectFunctions   et_cluster_fn;
static void *(*et_cluster_create_array)(const redisReadTask *task,
    et_redis_count_t n);


/* hiredis's array constructor, with a budget of elements per reply */
static void *
et_cluster_array(const redisReadTask *task, et_redis_count_t n)
{
    size_t     *left;
    long long   count;

    left = task->privdata;

    if (left == NULL) {
        return NULL;
    }

    count = (long long) n;

    if (count < 0 || *left == ET_CLUSTER_REFUSED
        || (unsigned long long) count > *left)
    {
        *left = ET_CLUSTER_REFUSED;
        return NULL;
    }

    *left -= (size_t) count;

    return et_cluster_create_array(task, n);
}


void
et_cluster_guard(redisReader *r, size_t *left)
{
    if (et_cluster_create_array == NULL) {
        et_cluster_fn = *r->fn;
        et_cluster_create_array = et_cluster_fn.createArray;
        et_cluster_fn.createArray = et_cluster_array;
    }

    *left = ET_CLUSTER_ELEMENTS_MAX;
    r->fn = &et_cluster_fn;
    r->privdata = left;
}


int
et_cluster_fetch(et_redis_command_pt command, void *data, size_t *left,
    const char *host, et_cluster_map_t *map, char *err, size_t size)
{
    int          rc;
    unsigned     i;
    size_t       argvlen[2];
    const char  *why, *errstr, *argv[2];
    redisReply  *r;

    argv[0] = "CLUSTER";
    argvlen[0] = sizeof("CLUSTER") - 1;
    argv[1] = "SLOTS";
    argvlen[1] = sizeof("SLOTS") - 1;

    *left = ET_CLUSTER_ELEMENTS_MAX;
    errstr = NULL;
    r = command(data, 2, argv, argvlen, &errstr);

    if (r != NULL && r->type == REDIS_REPLY_ERROR
        && strstr(r->str, "cluster support disabled") != NULL)
    {
        snprintf(err, size, "not a Redis Cluster node (%.*s)",
                 (int) (r->len < 120 ? r->len : 120), r->str);
        freeReplyObject(r);
        et_cluster_reset(map);
        return ET_DECLINED;
    }

    if (r != NULL && r->type == REDIS_REPLY_ERROR) {
        /* a Redis without CLUSTER SLOTS (deprecated since 7.0) */
        freeReplyObject(r);
        argv[1] = "SHARDS";
        argvlen[1] = sizeof("SHARDS") - 1;

        *left = ET_CLUSTER_ELEMENTS_MAX;
        errstr = NULL;
        r = command(data, 2, argv, argvlen, &errstr);
        rc = r ? et_cluster_shards_parse(r, map, &why) : ET_ERROR;

    } else {
        rc = r ? et_cluster_slots_parse(r, map, &why) : ET_ERROR;
    }

    if (r == NULL && *left == ET_CLUSTER_REFUSED) {
        snprintf(err, size, "CLUSTER SLOTS failed: a reply of more than %u "
                 "array elements, refused", ET_CLUSTER_ELEMENTS_MAX);

    } else if (r == NULL) {
        snprintf(err, size, "CLUSTER SLOTS failed: %s",
                 errstr && errstr[0] ? errstr : "no reply");

    } else if (rc != ET_OK) {
        if (r->type == REDIS_REPLY_ERROR) {
            snprintf(err, size, "CLUSTER SLOTS failed: %.*s",
                     (int) (r->len < 120 ? r->len : 120), r->str);

        } else {
            snprintf(err, size, "invalid slot map: %s", why);
        }

    } else if (map->covered == 0) {
        snprintf(err, size, "no slot is served");
        rc = ET_ERROR;
    }

    if (r != NULL) {
        freeReplyObject(r);
    }

    if (rc != ET_OK) {
        et_cluster_reset(map);
        return ET_ERROR;
    }

    /* a node without an endpoint is reached at the host that was asked */
    for (i = 0; i < map->nnodes; i++) {
        if (map->nodes[i].host[0] == '\0') {
            snprintf(map->nodes[i].host, sizeof(map->nodes[i].host), "%s",
                     host);
        }
    }

    return ET_OK;
}
