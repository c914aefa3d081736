/*
 * Unit tests: et_slot.c (Redis Cluster's CRC16 and key slot), against
 * the values Redis publishes and, for generated keys, against a real
 * redis-server's CLUSTER KEYSLOT: its port is in ET_REDIS_PORT
 * (t/unit/slot.t starts one with cluster support); and the names of
 * stream shards (et_stream_shard_key()), each on a slot of its range.
 */

#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "et_core.h"
#include "et_slot.h"
#include "et_stream.h"
#include "tap.h"
#include "tap_redis.h"


#define nelts(a)  (sizeof(a) / sizeof((a)[0]))

#define GENERATED  2000


typedef struct {
    const char  *key;
    size_t       len;
    unsigned     want;
    const char  *why;
} slot_case_t;


#define K(s)  (s), sizeof(s) - 1


/* from the Redis Cluster specification and the CLUSTER KEYSLOT page */
static const slot_case_t  slot_cases[] = {
    { K("123456789"), 0x31c3, "the CRC16 check value, below 16384" },
    { K("somekey"), 11058, "CLUSTER KEYSLOT somekey" },
    { K("foo{hash_tag}"), 2515, "a tag at the end" },
    { K("bar{hash_tag}"), 2515, "the same tag, the same slot" },
    { K("foo"), 12182, "no tag" },
    { K("bar"), 5061, "no tag" },
    { K("hello"), 866, "no tag" },
    { K("user1000"), 3443, "the tag alone" },
    { K("{user1000}.following"), 3443, "a tag at the start" },
    { K("{user1000}.followers"), 3443, "the same tag" },
    { K("foo{}{bar}"), 8363, "\"{}\" is no tag: the whole key" },
    { K("foo{{bar}}zap"), 4015, "the tag is \"{bar\"" },
    { K("{bar"), 4015, "no \"}\": the whole key" },
    { K("foo{bar}{zap}"), 5061, "the first tag only: \"bar\"" },
    { K("{}"), 15257, "an empty tag: the whole key" },
    { K("{"), 4092, "a lone \"{\"" },
    { K("}"), 12090, "a lone \"}\"" },
    { K("}{a}"), 15495, "a \"}\" before the \"{\" does not count" },
    { K("a{b"), 13340, "an open tag: the whole key" },
    { K("edgetrace:spans"), 11514, "the default stream key" },
    { K(""), 0, "the empty key" },
};


static void
test_crc16(void)
{
    size_t  i;

    static const struct {
        const char  *in;
        size_t       len;
        uint16_t     want;
    } cases[] = {
        { K(""), 0x0000 },
        { K("a"), 0x7c87 },
        { K("123456789"), 0x31c3 },
        { "\0", 1, 0x0000 },
        { K("\xff\xff"), 0x1d0f },
        { K("edgetrace:spans"), 0x6cfa },
    };

    for (i = 0; i < nelts(cases); i++) {
        tap_is_int(et_crc16((const uint8_t *) cases[i].in, cases[i].len),
                   cases[i].want, "crc16 of case %zu", i);
    }
}


static void
test_slot(void)
{
    size_t  i;

    for (i = 0; i < nelts(slot_cases); i++) {
        tap_is_int(et_slot((const uint8_t *) slot_cases[i].key,
                           slot_cases[i].len),
                   slot_cases[i].want, "slot of \"%s\": %s",
                   slot_cases[i].key, slot_cases[i].why);
    }
}


/* --- against a real Redis --- */


/*
 * Asks CLUSTER KEYSLOT for "n" keys, pipelined; returns how many slots
 * differ from et_slot()'s, and prints the first.
 */
static size_t
redis_compare(redisContext *c, uint8_t **keys, size_t *lens, size_t n)
{
    size_t       i, bad;
    unsigned     want;
    redisReply  *r;

    for (i = 0; i < n; i++) {
        redisAppendCommand(c, "CLUSTER KEYSLOT %b", keys[i], lens[i]);
    }

    bad = 0;

    for (i = 0; i < n; i++) {
        if (redisGetReply(c, (void **) &r) != REDIS_OK) {
            printf("#   no reply: %s\n", c->errstr);
            return n - i + bad;
        }

        want = et_slot(keys[i], lens[i]);

        if (r->type != REDIS_REPLY_INTEGER || r->integer != (long long) want)
        {
            if (bad++ == 0) {
                printf("#   key %zu (%zu bytes): Redis says %lld (type %d), "
                       "et_slot %u\n", i, lens[i],
                       r->type == REDIS_REPLY_INTEGER ? r->integer : -1,
                       r->type, want);
            }
        }

        freeReplyObject(r);
    }

    return bad;
}


/* every shard of 2 to 256 shards of "edgetrace:spans", asked of Redis */
static void
test_redis_shards(redisContext *c)
{
    size_t       len;
    unsigned     i, n, bad, total;
    uint8_t      buf[64];
    redisReply  *r;

    total = 0;

    for (n = 2; n <= ET_STREAM_SHARDS_MAX; n++) {
        for (i = 0; i < n; i++) {
            len = et_stream_shard_key(buf, sizeof(buf),
                                      (const uint8_t *) "edgetrace:spans",
                                      15, i, n);
            redisAppendCommand(c, "CLUSTER KEYSLOT %b", buf, len);
            total++;
        }
    }

    bad = 0;

    for (n = 2; n <= ET_STREAM_SHARDS_MAX; n++) {
        for (i = 0; i < n; i++) {
            if (redisGetReply(c, (void **) &r) != REDIS_OK) {
                tap_ok(0, "CLUSTER KEYSLOT of the shards: %s", c->errstr);
                return;
            }

            if (r->type != REDIS_REPLY_INTEGER
                || r->integer * n / ET_SLOTS != i)
            {
                if (bad++ == 0) {
                    printf("#   shard %u of %u: slot %lld\n", i, n,
                           r->type == REDIS_REPLY_INTEGER ? r->integer : -1);
                }
            }

            freeReplyObject(r);
        }
    }

    tap_is_int(bad, 0, "CLUSTER KEYSLOT puts each of the %u shard names of 2 "
               "to %d shards in its shard's range of slots", total,
               ET_STREAM_SHARDS_MAX);
}


static void
test_redis(void)
{
    size_t         i, j, n, lens[GENERATED];
    uint8_t       *keys[GENERATED];
    redisContext  *c;

    static const uint8_t  alphabet[] = "{}{}ab0\0\xff";

    c = tap_redis_connect("t/unit/slot.t");
    if (c == NULL) {
        return;
    }

    for (i = 0; i < nelts(slot_cases); i++) {
        keys[i] = (uint8_t *) slot_cases[i].key;
        lens[i] = slot_cases[i].len;
    }

    tap_is_int(redis_compare(c, keys, lens, nelts(slot_cases)), 0,
               "CLUSTER KEYSLOT agrees on the published cases");

    /* short keys, rich in braces: every position of a tag */
    srand(14);

    for (i = 0; i < GENERATED; i++) {
        n = (size_t) rand() % 12;
        keys[i] = malloc(n ? n : 1);

        for (j = 0; j < n; j++) {
            keys[i][j] = alphabet[rand() % (sizeof(alphabet) - 1)];
        }

        lens[i] = n;
    }

    tap_is_int(redis_compare(c, keys, lens, GENERATED), 0,
               "CLUSTER KEYSLOT agrees on %d generated keys", GENERATED);

    for (i = 0; i < GENERATED; i++) {
        free(keys[i]);
    }

    test_redis_shards(c);

    redisFree(c);
}


int
main(void)
{
    test_crc16();
    test_slot();
    test_redis();

    return tap_done();
}
