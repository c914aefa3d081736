/*
 * The Redis Cluster slot map: which master serves each of the 16384 hash
 * slots, learnt from a CLUSTER SLOTS or a CLUSTER SHARDS reply.
 *
 * hiredis 0.14 (Debian 12) has no cluster support, so the map is kept
 * here.  It is compact: a small table of masters (host, port) and, for
 * every slot, one byte, the index of its master in that table.  Replicas
 * are checked for shape but not kept: writes go to masters only, and a
 * failover shows in the next reply as the replica listed as master.
 *
 * Replies come from the network and are not trusted: a wrong type, a slot
 * out of range, overlapping ranges, a node without host or port, a host
 * that does not fit, more masters than the table holds, all reject the
 * whole reply with a reason, and nothing past a reply's own elements is
 * ever read.
 */

#ifndef ET_CLUSTER_H
#define ET_CLUSTER_H


#include "et_core.h"
#include "et_redis_url.h"


#define ET_CLUSTER_SLOTS        16384

/* at most this many masters: a slot's master index fits in a byte */
#define ET_CLUSTER_MASTERS_MAX  255

/* a slot no master serves (never assigned, or its master failed) */
#define ET_CLUSTER_NO_NODE      0xff

/* a host name is at most 253 bytes (RFC 1035), an IPv6 address 45 */
#define ET_CLUSTER_HOST_MAX     255


typedef struct {
    /*
     * NUL-terminated, never containing spaces or control bytes.  Empty when
     * the node gave no endpoint (NULL or ""): the client connects to the
     * host it asked, on this node's port (as CLUSTER SLOTS documents).
     */
    char            host[ET_CLUSTER_HOST_MAX + 1];
    int             port;        /* 1..65535 */
} et_cluster_node_t;


typedef struct {
    unsigned        nnodes;      /* masters in nodes[] */
    unsigned        covered;     /* slots with a master, 0..16384 */
    et_cluster_node_t  nodes[ET_CLUSTER_MASTERS_MAX];
    uint8_t         slots[ET_CLUSTER_SLOTS];  /* index, or NO_NODE */
} et_cluster_map_t;


struct redisReply;


/*
 * Fills "map" (the caller's, about 83 KB: allocate it, do not put it on a
 * small stack) from a CLUSTER SLOTS reply: an array of
 * [start, end, [host, port, id...], replica...] ranges.
 *
 * The reply is only read: the caller keeps and frees it, and nothing in
 * "map" points into it.  Slots missing from the reply have no master
 * (ET_CLUSTER_NO_NODE): a cluster that is not whole still has a map, its
 * "covered" count says how whole.
 *
 * ET_ERROR when the reply is not a valid one, with a constant text in
 * "err" saying why ("overlapping slot ranges"); "map" is then empty (no
 * node, no slot covered), so a caller that parses into a spare map keeps
 * its current one untouched.
 */
int et_cluster_slots_parse(const struct redisReply *reply,
    et_cluster_map_t *map, const char **err);


/*
 * The same from a CLUSTER SHARDS reply (Redis 7): an array of shards, each
 * a map (a flat key/value array in RESP2) with "slots" ([start, end, ...]
 * integers) and "nodes" (maps with "endpoint", "port", "role"...).  The
 * master of a shard that serves slots is the node whose role is "master";
 * shards without slots are skipped, as CLUSTER SLOTS leaves them out.
 * Keys are matched exactly; unknown keys are skipped (Redis may add some).
 * Ownership, the empty map on error and "err" as above.
 */
int et_cluster_shards_parse(const struct redisReply *reply,
    et_cluster_map_t *map, const char **err);


/*
 * The master that serves "slot", or NULL when none does or the slot is out
 * of range.  The pointer lives as long as the map is not parsed into again.
 */
const et_cluster_node_t *et_cluster_node(const et_cluster_map_t *map,
    unsigned slot);


/*
 * Parses a redirection, "MOVED 3999 127.0.0.1:6381" or "ASK ...", from
 * "s" (an error reply's text, "len" bytes): the slot, and the node as a
 * NUL-terminated host (at most "size" bytes with the NUL; empty when the
 * node gave none: the client's own host then) and a port.  ET_ERROR when
 * it is not one.
 */
int et_cluster_redirect(const char *s, size_t len, unsigned *slot,
    char *host, size_t size, int *port);


/* array elements one reply may hold, all its arrays together */
#define ET_CLUSTER_ELEMENTS_MAX  (1024 * 1024)

struct redisReader;

/*
 * hiredis 0.14 allocates an array's elements as soon as it reads the
 * header: a node answering "*2000000000" would make it allocate 16 GB.
 * Sets the reader "r" to refuse (a protocol error) a reply holding more
 * than ET_CLUSTER_ELEMENTS_MAX array elements, all its arrays together.
 * "*left" is the budget, set to the maximum here; the caller sets it again
 * before each reply and keeps it as long as the reader.  A refused reply
 * leaves it at ET_CLUSTER_REFUSED (hiredis itself only says "Out of
 * memory"), and nothing more is accepted until it is set again.  The
 * first call sets up a table shared by every reader: make it before
 * starting threads.
 */
void et_cluster_guard(struct redisReader *r, size_t *left);

#define ET_CLUSTER_REFUSED  ((size_t) -1)


/*
 * Asks a node for the map, into "map": CLUSTER SLOTS, or CLUSTER SHARDS
 * where SLOTS is gone, each a blocking "command" (with "data", as
 * et_redis_open()'s) on a connection whose reader is guarded with "left"
 * (et_cluster_guard): set to the maximum here before each command, it says
 * when a reply was refused.  A master without an endpoint gets "host", the
 * host that was asked.  ET_OK; ET_DECLINED for a Redis without cluster
 * support; ET_ERROR for a lost connection, an error reply, an invalid map
 * or one serving no slot.  Not ET_OK: "map" is empty and "err" says why
 * (without the node's address).
 */
int et_cluster_fetch(et_redis_command_pt command, void *data, size_t *left,
    const char *host, et_cluster_map_t *map, char *err, size_t size);


#endif /* ET_CLUSTER_H */
