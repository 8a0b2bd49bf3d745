/* SPDX-License-Identifier: MIT */
/* CRC-32C (Castagnoli), the checksum of trace blocks (lib/trace): the
 * SSE4.2 instruction when the CPU has it, else a table. */
#ifndef WAVE_CORE_CRC32C_H
#define WAVE_CORE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues @crc (0 to start) over @len bytes at @p. */
uint32_t wave_crc32c(uint32_t crc, const void *p, size_t len);

#endif /* WAVE_CORE_CRC32C_H */
