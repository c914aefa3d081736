/*
 * Redis Cluster's key slot (docs/stream.md, "Sharded streams"): CRC16 of
 * the key, or of its hash tag, modulo 16384, exactly as Redis computes it,
 * so that the core can name keys that land on chosen slots.
 */

#ifndef ET_SLOT_H
#define ET_SLOT_H


#include "et_core.h"


#define ET_SLOTS  16384


/*
 * CRC16/XMODEM (polynomial 0x1021, initial value 0, no reflection), the
 * checksum Redis Cluster hashes keys with: "123456789" gives 0x31C3.
 */
uint16_t et_crc16(const uint8_t *p, size_t len);

/*
 * The slot of a key, 0 to ET_SLOTS - 1.  When the key holds a hash tag,
 * the bytes between its first "{" and the first "}" after it, with at
 * least one byte between them, only those are hashed; otherwise the whole
 * key is.
 */
unsigned et_slot(const uint8_t *key, size_t len);


#endif /* ET_SLOT_H */
