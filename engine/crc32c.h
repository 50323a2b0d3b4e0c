/* engine/crc32c.h — CRC-32C (Castagnoli), the record checksum.
 *
 * Uses the SSE4.2 crc32 instruction when the CPU has it (about 10x the
 * table version; recovery verifies every byte of database.bin) and a
 * table otherwise.
 */
#ifndef CASKD_ENGINE_CRC32C_H
#define CASKD_ENGINE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues crc over buf; start with crc = 0. */
uint32_t eng_crc32c(uint32_t crc, const void *buf, size_t len);

#endif
