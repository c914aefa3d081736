/*
 * et_cluster: slot maps from CLUSTER SLOTS and CLUSTER SHARDS replies,
 * written as RESP text and read with hiredis's own reader, well-formed and
 * hostile.
 *
 * "test_cluster --print slots|shards" reads one reply from stdin instead
 * and prints its map, one line a run of slots with the same master
 * ("0-5460 127.0.0.1:30001"), then "covered N"; or "error: why" and exit
 * code 1.  t/cluster/002-slot-map.t feeds it a live cluster's replies.
 */

#include <stdlib.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "tap.h"
#include "et_cluster.h"


#define SLOTS   0
#define SHARDS  1


/* CLUSTER SLOTS, as Redis 7 writes it: [host, port, id, metadata] */
#define ID      "$40\r\n07c37dfeb235213a872192d90877d0cd55635b91\r\n"
#define NODE(port)                                                            \
    "*4\r\n$9\r\n127.0.0.1\r\n:" port "\r\n" ID "*0\r\n"
#define RANGE(a, b, m, r)                                                     \
    "*4\r\n:" a "\r\n:" b "\r\n" NODE(m) NODE(r)
#define THREE                                                                 \
    RANGE("0", "5460", "30001", "30004")                                      \
    RANGE("5461", "10922", "30002", "30005")                                  \
    RANGE("10923", "16383", "30003", "30006")

/* CLUSTER SHARDS, a flat key/value array for each map (RESP2) */
#define MASTER   "$6\r\nmaster\r\n"
#define REPLICA  "$7\r\nreplica\r\n"
#define ONLINE   "$6\r\nonline\r\n"
#define SNODE(port, role)  HNODE(port, role, ONLINE)
#define HNODE(port, role, health)                                             \
    "*14\r\n$2\r\nid\r\n" ID "$4\r\nport\r\n:" port "\r\n"                    \
    "$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n"    \
    "$4\r\nrole\r\n" role "$18\r\nreplication-offset\r\n:42\r\n"              \
    "$6\r\nhealth\r\n" health
#define SHARD(slots, nodes)                                                   \
    "*4\r\n$5\r\nslots\r\n" slots "$5\r\nnodes\r\n" nodes
#define PAIR(a, b)  "*2\r\n:" a "\r\n:" b "\r\n"

#define SHARD3                                                                \
    SHARD(PAIR("0", "5460"),                                                  \
          "*2\r\n" SNODE("30001", MASTER) SNODE("30004", REPLICA))            \
    SHARD(PAIR("5461", "10922"),                                              \
          "*2\r\n" SNODE("30005", REPLICA) SNODE("30002", MASTER))            \
    SHARD(PAIR("10923", "16383"),                                             \
          "*2\r\n" SNODE("30003", MASTER) SNODE("30006", REPLICA))

/* one range, slots 0 and 1, whose master is the node that follows */
#define ONE     "*1\r\n*3\r\n:0\r\n:1\r\n"

#define A16   "aaaaaaaaaaaaaaaa"
#define A64   A16 A16 A16 A16
#define A255  A64 A64 A64 A16 A16 A16 "aaaaaaaaaaaaaaa"


typedef struct {
    const char  *name;
    int          kind;         /* SLOTS or SHARDS */
    const char  *in;
    size_t       len;          /* 0: strlen(in) */
    const char  *err;          /* NULL: ET_OK */
    unsigned     nnodes;
    unsigned     covered;
    const char  *probes;       /* "slot=host:port slot=- ..." */
} cluster_case_t;


static const cluster_case_t  cases[] = {

    /* CLUSTER SLOTS */

    { "three masters", SLOTS, "*3\r\n" THREE, 0, NULL, 3, 16384,
      "0=127.0.0.1:30001 5460=127.0.0.1:30001 5461=127.0.0.1:30002 "
      "10922=127.0.0.1:30002 10923=127.0.0.1:30003 16383=127.0.0.1:30003 "
      "16384=-" },
    { "no slot assigned", SLOTS, "*0\r\n", 0, NULL, 0, 0, "0=- 16383=-" },
    { "one master, two ranges, a hole", SLOTS,
      "*2\r\n" RANGE("0", "99", "7000", "7001")
      RANGE("200", "299", "7000", "7001"), 0, NULL, 1, 200,
      "99=127.0.0.1:7000 100=- 199=- 200=127.0.0.1:7000 300=-" },
    { "a master without replica, one slot", SLOTS,
      "*1\r\n*3\r\n:7\r\n:7\r\n" NODE("7000"), 0, NULL, 1, 1,
      "6=- 7=127.0.0.1:7000 8=-" },
    { "a node of Redis 3: [host, port]", SLOTS,
      "*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$9\r\n127.0.0.1\r\n:7000\r\n", 0,
      NULL, 1, 16384, "100=127.0.0.1:7000" },
    { "metadata of Redis 7 is skipped", SLOTS,
      "*1\r\n*3\r\n:0\r\n:16383\r\n*4\r\n$9\r\n127.0.0.1\r\n:7000\r\n" ID
      "*2\r\n$8\r\nhostname\r\n$5\r\nredis\r\n", 0, NULL, 1, 16384,
      "0=127.0.0.1:7000" },
    { "a NULL endpoint: the host asked", SLOTS,
      "*1\r\n*3\r\n:0\r\n:16383\r\n*3\r\n$-1\r\n:7000\r\n" ID, 0, NULL, 1,
      16384, "0=:7000" },
    { "an empty endpoint: the host asked", SLOTS,
      "*1\r\n*3\r\n:0\r\n:16383\r\n*3\r\n$0\r\n\r\n:7000\r\n" ID, 0, NULL,
      1, 16384, "0=:7000" },
    { "a host name", SLOTS,
      "*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$17\r\nredis-1.example.n\r\n"
      ":6379\r\n", 0, NULL, 1, 16384, "0=redis-1.example.n:6379" },
    { "a host of 255 bytes", SLOTS,
      "*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$255\r\n" A255 "\r\n:1\r\n", 0,
      NULL, 1, 16384, "0=" A255 ":1" },
    { "ports 1 and 65535", SLOTS,
      "*2\r\n*3\r\n:0\r\n:0\r\n*2\r\n$1\r\nh\r\n:1\r\n"
      "*3\r\n:1\r\n:16383\r\n*2\r\n$1\r\nh\r\n:65535\r\n", 0, NULL, 2, 16384,
      "0=h:1 1=h:65535" },
    { "ranges in any order", SLOTS,
      "*3\r\n" RANGE("10923", "16383", "30003", "30006")
      RANGE("0", "5460", "30001", "30004")
      RANGE("5461", "10922", "30002", "30005"), 0, NULL, 3, 16384,
      "0=127.0.0.1:30001 16383=127.0.0.1:30003" },

    { "an error reply", SLOTS,
      "-ERR This instance has cluster support disabled\r\n", 0,
      "an error reply", 0, 0, NULL },
    { "a status", SLOTS, "+OK\r\n", 0, "the reply is not an array", 0, 0,
      NULL },
    { "nil", SLOTS, "*-1\r\n", 0, "the reply is not an array", 0, 0, NULL },
    { "a range that is an integer", SLOTS, "*1\r\n:1\r\n", 0,
      "a slot range is not [start, end, master, ...]", 0, 0, NULL },
    { "a range without master", SLOTS, "*1\r\n*2\r\n:0\r\n:1\r\n", 0,
      "a slot range is not [start, end, master, ...]", 0, 0, NULL },
    { "a slot as a string", SLOTS,
      "*1\r\n*3\r\n$1\r\n0\r\n:1\r\n" NODE("7000"), 0,
      "a slot is not an integer", 0, 0, NULL },
    { "an end as nil", SLOTS, "*1\r\n*3\r\n:0\r\n$-1\r\n" NODE("7000"), 0,
      "a slot is not an integer", 0, 0, NULL },
    { "a negative slot", SLOTS, "*1\r\n*3\r\n:-1\r\n:1\r\n" NODE("7000"), 0,
      "a slot is out of range", 0, 0, NULL },
    { "slot 16384", SLOTS, "*1\r\n*3\r\n:0\r\n:16384\r\n" NODE("7000"), 0,
      "a slot is out of range", 0, 0, NULL },
    { "a huge slot", SLOTS,
      "*1\r\n*3\r\n:0\r\n:9223372036854775807\r\n" NODE("7000"), 0,
      "a slot is out of range", 0, 0, NULL },
    { "a range backwards", SLOTS, "*1\r\n*3\r\n:10\r\n:9\r\n" NODE("7000"),
      0, "a slot range ends before it starts", 0, 0, NULL },
    { "overlapping ranges", SLOTS,
      "*2\r\n" RANGE("0", "100", "7000", "7001")
      RANGE("100", "200", "7002", "7003"), 0, "overlapping slot ranges", 0,
      0, NULL },
    { "one range twice", SLOTS,
      "*2\r\n" RANGE("5", "6", "7000", "7001") RANGE("5", "6", "7000", "7001"),
      0, "overlapping slot ranges", 0, 0, NULL },
    { "a bad range after good ones", SLOTS,
      "*4\r\n" THREE "*1\r\n:0\r\n", 0,
      "a slot range is not [start, end, master, ...]", 0, 0, NULL },
    { "a node that is a string", SLOTS, ONE "$3\r\nabc\r\n",
      0, "a node is not [host, port, ...]", 0, 0, NULL },
    { "a node without port", SLOTS,
      ONE "*1\r\n$9\r\n127.0.0.1\r\n", 0,
      "a node is not [host, port, ...]", 0, 0, NULL },
    { "a host that is an integer", SLOTS,
      ONE "*2\r\n:1\r\n:7000\r\n", 0,
      "a node's host is not a string", 0, 0, NULL },
    { "a host that is an array", SLOTS,
      ONE "*2\r\n*0\r\n:7000\r\n", 0,
      "a node's host is not a string", 0, 0, NULL },
    { "a host of 256 bytes", SLOTS,
      ONE "*2\r\n$256\r\n" A255 "a\r\n:1\r\n", 0,
      "a node's host is too long", 0, 0, NULL },
    { "an unknown endpoint", SLOTS,
      ONE "*2\r\n$1\r\n?\r\n:7000\r\n", 0,
      "a node's endpoint is unknown (\"?\")", 0, 0, NULL },
    { "a host with a space", SLOTS,
      ONE "*2\r\n$3\r\na b\r\n:7000\r\n", 0,
      "a node's host has a space or a control byte", 0, 0, NULL },
    { "a host with a NUL byte", SLOTS,
      ONE "*2\r\n$3\r\na\0b\r\n:7000\r\n", 36,
      "a node's host has a space or a control byte", 0, 0, NULL },
    { "a host with a byte above ASCII", SLOTS,
      ONE "*2\r\n$3\r\na\xc3\xa9\r\n:7000\r\n", 0,
      "a node's host has a space or a control byte", 0, 0, NULL },
    { "port 0", SLOTS, ONE "*2\r\n$1\r\nh\r\n:0\r\n", 0,
      "a node's port is out of range", 0, 0, NULL },
    { "port 65536", SLOTS,
      ONE "*2\r\n$1\r\nh\r\n:65536\r\n", 0,
      "a node's port is out of range", 0, 0, NULL },
    { "a port as a string", SLOTS,
      ONE "*2\r\n$1\r\nh\r\n$4\r\n7000\r\n", 0,
      "a node's port is not an integer", 0, 0, NULL },
    { "an id that is an integer", SLOTS,
      ONE "*3\r\n$1\r\nh\r\n:7000\r\n:1\r\n", 0,
      "a node's id is not a string", 0, 0, NULL },
    { "a bad replica", SLOTS,
      "*1\r\n*4\r\n:0\r\n:1\r\n" NODE("7000")
      "*2\r\n$1\r\nh\r\n$4\r\n7001\r\n", 0,
      "a node's port is not an integer", 0, 0, NULL },

    /* CLUSTER SHARDS */

    { "three shards", SHARDS, "*3\r\n" SHARD3, 0, NULL, 3, 16384,
      "0=127.0.0.1:30001 5460=127.0.0.1:30001 5461=127.0.0.1:30002 "
      "10922=127.0.0.1:30002 10923=127.0.0.1:30003 16383=127.0.0.1:30003" },
    { "no shard", SHARDS, "*0\r\n", 0, NULL, 0, 0, "0=-" },
    { "a shard without slots is left out", SHARDS,
      "*2\r\n" SHARD("*0\r\n", "*1\r\n" SNODE("7000", MASTER))
      SHARD(PAIR("0", "9"), "*1\r\n" SNODE("7001", MASTER)), 0, NULL, 1, 10,
      "0=127.0.0.1:7001 10=-" },
    { "several ranges in a shard", SHARDS,
      "*1\r\n" SHARD("*4\r\n:0\r\n:10\r\n:20\r\n:30\r\n",
                     "*1\r\n" SNODE("7000", MASTER)), 0, NULL, 1, 22,
      "10=127.0.0.1:7000 11=- 20=127.0.0.1:7000" },
    { "keys in another order, unknown keys", SHARDS,
      "*1\r\n*6\r\n$5\r\nnodes\r\n*1\r\n"
      "*8\r\n$4\r\nrole\r\n" MASTER "$4\r\nport\r\n:7000\r\n"
      "$3\r\nnew\r\n*1\r\n:1\r\n$8\r\nendpoint\r\n$1\r\nh\r\n"
      "$5\r\nslots\r\n" PAIR("0", "16383") "$4\r\nmore\r\n$-1\r\n", 0, NULL,
      1, 16384, "0=h:7000" },
    { "a NULL endpoint", SHARDS,
      "*1\r\n" SHARD(PAIR("0", "0"), "*1\r\n*6\r\n$8\r\nendpoint\r\n$-1\r\n"
                     "$4\r\nport\r\n:7000\r\n$4\r\nrole\r\n" MASTER), 0, NULL,
      1, 1, "0=:7000" },

    { "an error reply", SHARDS, "-ERR unknown subcommand 'SHARDS'\r\n", 0,
      "an error reply", 0, 0, NULL },
    { "an integer", SHARDS, ":1\r\n", 0, "the reply is not an array", 0, 0,
      NULL },
    { "a shard of odd length", SHARDS, "*1\r\n*1\r\n$5\r\nslots\r\n", 0,
      "a shard or a node is not a map", 0, 0, NULL },
    { "a shard that is a string", SHARDS, "*1\r\n$5\r\nslots\r\n", 0,
      "a shard or a node is not a map", 0, 0, NULL },
    { "a key that is an integer", SHARDS, "*1\r\n*2\r\n:1\r\n:2\r\n", 0,
      "a map key is not a string", 0, 0, NULL },
    { "slots twice", SHARDS,
      "*1\r\n*6\r\n$5\r\nslots\r\n*0\r\n$5\r\nslots\r\n*0\r\n"
      "$5\r\nnodes\r\n*0\r\n", 0, "a map key given twice", 0, 0, NULL },
    { "a shard without nodes", SHARDS,
      "*1\r\n*2\r\n$5\r\nslots\r\n" PAIR("0", "1"), 0,
      "a shard without slots or nodes", 0, 0, NULL },
    { "a shard without slots", SHARDS,
      "*1\r\n*2\r\n$5\r\nnodes\r\n*0\r\n", 0,
      "a shard without slots or nodes", 0, 0, NULL },
    { "an odd number of slots", SHARDS,
      "*1\r\n" SHARD("*1\r\n:0\r\n", "*1\r\n" SNODE("7000", MASTER)), 0,
      "a shard's slots are not start, end pairs", 0, 0, NULL },
    { "slots as a string", SHARDS,
      "*1\r\n" SHARD("$3\r\n0-1\r\n", "*1\r\n" SNODE("7000", MASTER)), 0,
      "a shard's slots are not start, end pairs", 0, 0, NULL },
    { "a slot as a string", SHARDS,
      "*1\r\n" SHARD("*2\r\n$1\r\n0\r\n:1\r\n", "*1\r\n" SNODE("7000", MASTER)),
      0, "a slot is not an integer", 0, 0, NULL },
    { "slot 16384", SHARDS,
      "*1\r\n" SHARD(PAIR("0", "16384"), "*1\r\n" SNODE("7000", MASTER)), 0,
      "a slot is out of range", 0, 0, NULL },
    { "nodes as an integer", SHARDS, "*1\r\n" SHARD(PAIR("0", "1"), ":3\r\n"),
      0, "a shard's nodes are not an array", 0, 0, NULL },
    { "a node that is an integer", SHARDS,
      "*1\r\n" SHARD(PAIR("0", "1"), "*1\r\n:3\r\n"), 0,
      "a shard or a node is not a map", 0, 0, NULL },
    { "a node without role", SHARDS,
      "*1\r\n" SHARD(PAIR("0", "1"), "*1\r\n*4\r\n$8\r\nendpoint\r\n$1\r\nh\r\n"
                     "$4\r\nport\r\n:7000\r\n"), 0,
      "a node without endpoint, port or role", 0, 0, NULL },
    { "a replica without port", SHARDS,
      "*1\r\n" SHARD(PAIR("0", "1"), "*2\r\n" SNODE("7000", MASTER)
                     "*4\r\n$8\r\nendpoint\r\n$1\r\nh\r\n$4\r\nrole\r\n"
                     REPLICA), 0,
      "a node without endpoint, port or role", 0, 0, NULL },
    { "a role as an integer", SHARDS,
      "*1\r\n" SHARD(PAIR("0", "1"), "*1\r\n" SNODE("7000", ":1\r\n")), 0,
      "a node's role is not a string", 0, 0, NULL },
    { "two masters", SHARDS,
      "*1\r\n" SHARD(PAIR("0", "1"), "*2\r\n" SNODE("7000", MASTER)
                     SNODE("7001", MASTER)), 0, "a shard with two masters", 0,
      0, NULL },
    /* Redis 8 after a failover: the old master, down, stays in the shard */
    { "a failed master beside the new one", SHARDS,
      "*1\r\n" SHARD(PAIR("0", "9"), "*2\r\n"
                     HNODE("7000", MASTER, "$4\r\nfail\r\n")
                     SNODE("7001", MASTER)), 0, NULL, 1, 10,
      "0=127.0.0.1:7001 9=127.0.0.1:7001 10=-" },
    { "a failed master after the new one", SHARDS,
      "*1\r\n" SHARD(PAIR("0", "9"), "*2\r\n" SNODE("7001", MASTER)
                     HNODE("7000", MASTER, "$6\r\nfailed\r\n")), 0, NULL, 1,
      10, "0=127.0.0.1:7001 9=127.0.0.1:7001" },
    { "a loading master is one", SHARDS,
      "*1\r\n" SHARD(PAIR("0", "1"), "*2\r\n" SNODE("7000", MASTER)
                     HNODE("7001", MASTER, "$7\r\nloading\r\n")), 0,
      "a shard with two masters", 0, 0, NULL },
    { "only a failed master", SHARDS,
      "*1\r\n" SHARD(PAIR("0", "1"), "*1\r\n"
                     HNODE("7000", MASTER, "$4\r\nfail\r\n")), 0,
      "a shard with slots and no master", 0, 0, NULL },
    { "slots and no master", SHARDS,
      "*1\r\n" SHARD(PAIR("0", "1"), "*1\r\n" SNODE("7000", REPLICA)), 0,
      "a shard with slots and no master", 0, 0, NULL },
    { "a master's port out of range", SHARDS,
      "*1\r\n" SHARD(PAIR("0", "1"), "*1\r\n" SNODE("70000", MASTER)), 0,
      "a node's port is out of range", 0, 0, NULL },
    { "a master's endpoint too long", SHARDS,
      "*1\r\n" SHARD(PAIR("0", "1"), "*1\r\n*6\r\n$8\r\nendpoint\r\n"
                     "$256\r\n" A255 "a\r\n$4\r\nport\r\n:7000\r\n"
                     "$4\r\nrole\r\n" MASTER), 0,
      "a node's host is too long", 0, 0, NULL },
    { "shards overlapping", SHARDS,
      "*2\r\n" SHARD(PAIR("0", "10"), "*1\r\n" SNODE("7000", MASTER))
      SHARD(PAIR("10", "20"), "*1\r\n" SNODE("7001", MASTER)), 0,
      "overlapping slot ranges", 0, 0, NULL },
};


/* one reply read from "len" bytes by hiredis's reader, or NULL */
static redisReply *
read_reply(const char *in, size_t len)
{
    void         *reply;
    redisReader  *rd;

    reply = NULL;
    rd = redisReaderCreate();

    if (rd == NULL) {
        return NULL;
    }

    if (redisReaderFeed(rd, in, len) != REDIS_OK
        || redisReaderGetReply(rd, &reply) != REDIS_OK)
    {
        reply = NULL;
    }

    redisReaderFree(rd);

    return reply;
}


static int
parse(int kind, const redisReply *reply, et_cluster_map_t *map,
    const char **err)
{
    return kind == SHARDS ? et_cluster_shards_parse(reply, map, err)
                          : et_cluster_slots_parse(reply, map, err);
}


/* "slot=host:port" or "slot=-" (no master), separated by spaces */
static int
probes_hold(const et_cluster_map_t *map, const char *probes, const char *name)
{
    int                       good, n;
    char                      want[300], got[300];
    unsigned                  slot;
    const char               *p;
    const et_cluster_node_t  *node;

    good = 1;

    for (p = probes; *p; p += n) {
        if (sscanf(p, " %u=%299s%n", &slot, want, &n) != 2) {
            break;
        }

        node = et_cluster_node(map, slot);

        if (node == NULL) {
            strcpy(got, "-");

        } else {
            snprintf(got, sizeof(got), "%s:%d", node->host, node->port);
        }

        if (strcmp(got, want) != 0) {
            printf("# %s: slot %u is on %s, not %s\n", name, slot, got, want);
            good = 0;
        }
    }

    return good;
}


static void
run_case(const cluster_case_t *c, et_cluster_map_t *map)
{
    int          rc;
    size_t       len;
    const char  *err, *kind;
    redisReply  *reply, *full;

    kind = c->kind == SHARDS ? "shards" : "slots";
    len = c->len ? c->len : strlen(c->in);

    reply = read_reply(c->in, len);
    tap_ok(reply != NULL, "%s %s: hiredis reads the reply", kind, c->name);

    if (reply == NULL) {
        return;
    }

    /* a map from an earlier parse: an error must leave none of it */
    full = read_reply("*3\r\n" THREE, strlen("*3\r\n" THREE));
    (void) et_cluster_slots_parse(full, map, &err);
    freeReplyObject(full);

    err = NULL;
    rc = parse(c->kind, reply, map, &err);

    if (c->err == NULL) {
        tap_is_int(rc, ET_OK, "%s %s: parsed", kind, c->name);

        if (rc != ET_OK) {
            printf("#   why: %s\n", err);
        }

    } else {
        tap_is_int(rc, ET_ERROR, "%s %s: rejected", kind, c->name);
        tap_ok(err != NULL && strcmp(err, c->err) == 0,
               "%s %s: because %s", kind, c->name, c->err);

        if (err == NULL || strcmp(err, c->err) != 0) {
            printf("#   got: %s\n", err ? err : "(null)");
        }
    }

    tap_is_int(map->nnodes, c->nnodes, "%s %s: masters", kind, c->name);
    tap_is_int(map->covered, c->covered, "%s %s: slots covered", kind,
               c->name);

    if (c->probes) {
        tap_ok(probes_hold(map, c->probes, c->name), "%s %s: slots' masters",
               kind, c->name);

    } else {
        tap_ok(et_cluster_node(map, 0) == NULL
               && et_cluster_node(map, ET_CLUSTER_SLOTS - 1) == NULL,
               "%s %s: no slot has a master", kind, c->name);
    }

    freeReplyObject(reply);
}


/* "n" ranges of one slot each, every one on its own master */
static void
many_masters(et_cluster_map_t *map, unsigned n, int shards)
{
    int          rc;
    char        *in, *p;
    unsigned     i;
    const char  *err;
    redisReply  *reply;

    in = malloc(n * 200 + 32);

    if (in == NULL) {
        tap_ok(0, "memory for %u masters", n);
        return;
    }

    p = in + sprintf(in, "*%u\r\n", n);

    for (i = 0; i < n; i++) {
        if (shards) {
            p += sprintf(p, SHARD(PAIR("%u", "%u"),
                                  "*1\r\n*6\r\n$8\r\nendpoint\r\n$1\r\nh\r\n"
                                  "$4\r\nport\r\n:%u\r\n$4\r\nrole\r\n"
                                  MASTER), i, i, 1000 + i);

        } else {
            p += sprintf(p, "*3\r\n:%u\r\n:%u\r\n*2\r\n$1\r\nh\r\n:%u\r\n",
                         i, i, 1000 + i);
        }
    }

    reply = read_reply(in, (size_t) (p - in));
    free(in);

    err = NULL;
    rc = parse(shards ? SHARDS : SLOTS, reply, map, &err);

    if (n <= ET_CLUSTER_MASTERS_MAX) {
        tap_ok(rc == ET_OK && map->nnodes == n && map->covered == n
               && et_cluster_node(map, n - 1) != NULL
               && et_cluster_node(map, n - 1)->port == (int) (1000 + n - 1),
               "%s: %u masters fit", shards ? "shards" : "slots", n);

    } else {
        tap_ok(rc == ET_ERROR && err != NULL
               && strcmp(err, "too many masters") == 0 && map->nnodes == 0,
               "%s: %u masters are too many", shards ? "shards" : "slots", n);
    }

    freeReplyObject(reply);
}


/* --print: the map of the reply on stdin, as t/cluster reads it */
static int
print_map(const char *kind, et_cluster_map_t *map)
{
    int                       rc;
    char                     *buf;
    size_t                    len, size;
    ssize_t                   n;
    unsigned                  s, start;
    const char               *err;
    redisReply               *reply;
    const et_cluster_node_t  *node, *run;

    size = 1 << 16;
    len = 0;
    buf = malloc(size);

    while (buf != NULL && (n = read(0, buf + len, size - len)) > 0) {
        len += (size_t) n;

        if (len == size) {
            size *= 2;
            buf = realloc(buf, size);
        }
    }

    if (buf == NULL) {
        printf("error: out of memory\n");
        return 1;
    }

    reply = read_reply(buf, len);
    free(buf);

    if (reply == NULL) {
        printf("error: not one whole reply\n");
        return 1;
    }

    err = NULL;
    rc = parse(strcmp(kind, "shards") == 0 ? SHARDS : SLOTS, reply, map,
               &err);
    freeReplyObject(reply);

    if (rc != ET_OK) {
        printf("error: %s\n", err);
        return 1;
    }

    start = 0;
    run = et_cluster_node(map, 0);

    for (s = 1; s <= ET_CLUSTER_SLOTS; s++) {
        node = et_cluster_node(map, s);

        if (node == run && s < ET_CLUSTER_SLOTS) {
            continue;
        }

        if (run != NULL) {
            printf("%u-%u %s:%d\n", start, s - 1, run->host, run->port);
        }

        start = s;
        run = node;
    }

    printf("covered %u\n", map->covered);

    return 0;
}


/* redirections, as error replies carry them */
static const struct {
    const char  *text;
    int          rc;
    unsigned     slot;
    const char  *host;
    int          port;
} redirects[] = {
    { "MOVED 3999 127.0.0.1:6381", ET_OK, 3999, "127.0.0.1", 6381 },
    { "ASK 0 h:1", ET_OK, 0, "h", 1 },
    { "MOVED 16383 ::1:7000", ET_OK, 16383, "::1", 7000 },
    { "MOVED 12 :7001", ET_OK, 12, "", 7001 },
    { "MOVED 16384 h:1", ET_ERROR, 0, NULL, 0 },
    { "MOVED 1 h:0", ET_ERROR, 0, NULL, 0 },
    { "MOVED 1 h:65536", ET_ERROR, 0, NULL, 0 },
    { "MOVED 1 h", ET_ERROR, 0, NULL, 0 },
    { "MOVED 1 h\x01:1", ET_ERROR, 0, NULL, 0 },
    { "MOVED x h:1", ET_ERROR, 0, NULL, 0 },
    { "MOVED", ET_ERROR, 0, NULL, 0 },
    { "MOVED 1", ET_ERROR, 0, NULL, 0 },
};


static void
run_redirects(void)
{
    int       rc, port;
    char      host[16];
    size_t    i;
    unsigned  slot;

    for (i = 0; i < sizeof(redirects) / sizeof(redirects[0]); i++) {
        rc = et_cluster_redirect(redirects[i].text,
                                 strlen(redirects[i].text), &slot, host,
                                 sizeof(host), &port);

        tap_ok(rc == redirects[i].rc
               && (rc != ET_OK
                   || (slot == redirects[i].slot && port == redirects[i].port
                       && strcmp(host, redirects[i].host) == 0)),
               "redirect \"%s\"", redirects[i].text);
    }

    /* a host longer than the buffer */
    tap_ok(et_cluster_redirect("MOVED 1 0123456789abcdef:1", 26, &slot, host,
                               sizeof(host), &port) == ET_ERROR,
           "redirect: a host too long for the buffer");
}


int
main(int argc, char **argv)
{
    int                rc;
    size_t             i;
    const char        *err;
    et_cluster_map_t  *map;

    map = malloc(sizeof(et_cluster_map_t));

    if (map == NULL) {
        return 1;
    }

    if (argc == 3 && strcmp(argv[1], "--print") == 0) {
        rc = print_map(argv[2], map);
        free(map);
        return rc;
    }

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        run_case(&cases[i], map);
    }

    many_masters(map, ET_CLUSTER_MASTERS_MAX, 0);
    many_masters(map, ET_CLUSTER_MASTERS_MAX + 1, 0);
    many_masters(map, ET_CLUSTER_MASTERS_MAX, 1);
    many_masters(map, ET_CLUSTER_MASTERS_MAX + 1, 1);

    tap_ok(et_cluster_node(map, ET_CLUSTER_SLOTS) == NULL
           && et_cluster_node(map, (unsigned) -1) == NULL,
           "a slot out of range has no master");

    err = NULL;
    tap_ok(et_cluster_slots_parse(NULL, map, &err) == ET_ERROR
           && err != NULL, "no reply is refused");

    run_redirects();

    free(map);

    return tap_done();
}
