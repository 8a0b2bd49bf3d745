/* SPDX-License-Identifier: MIT */
/* CRC-32C (see crc32c.h). The instruction takes eight bytes in three
 * cycles and can start one a cycle: long buffers run three streams at once
 * and join them (a trace block's checksum is on every replay's path). */
#include <pthread.h>
#include <string.h>

#include "crc32c.h"

#define POLY 0x82f63b78u /* Castagnoli, reflected */

/* Bytes of each of the three streams per round. */
#define STREAM 256

static uint32_t table[256];
/* The CRC register after STREAM zero bytes, by the bytes of the register
 * before (the map is linear): how a stream's CRC is moved past the next. */
static uint32_t skip[4][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static uint32_t soft(uint32_t crc, const uint8_t *p, size_t len)
{
	while (len--)
		crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

static void table_init(void)
{
	static const uint8_t zeros[STREAM];

	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
		table[i] = c;
	}
	/* Linear: each byte's entry is the XOR of its bits' (32 runs over
	 * the zeros, not 1,024: the tables are built in every replaying
	 * process, and this was 2 M instructions). */
	for (unsigned k = 0; k < 4; k++) {
		for (unsigned i = 0; i < 8; i++)
			skip[k][1u << i] = soft(1u << (8 * k + i), zeros, STREAM);
		for (uint32_t b = 3; b < 256; b++)
			if (b & (b - 1))
				skip[k][b] = skip[k][b & (b - 1)] ^ skip[k][b & -b];
	}
}

static uint32_t crc_soft(uint32_t crc, const uint8_t *p, size_t len)
{
	pthread_once(&table_once, table_init);
	return soft(crc, p, len);
}

#if defined(__x86_64__)
/* @crc moved past STREAM bytes of zeros. */
static uint32_t skip_stream(uint32_t crc)
{
	return skip[0][crc & 0xff] ^ skip[1][(crc >> 8) & 0xff] ^ skip[2][(crc >> 16) & 0xff] ^
	       skip[3][crc >> 24];
}
#endif

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const uint8_t *p,
							  size_t len)
{
	uint64_t c = crc, v, b, d, w;

	if (len >= 3 * STREAM)
		pthread_once(&table_once, table_init);
	/* Three streams, the second and third from 0: the CRC of A B C is
	 * A's moved past B, with B's, moved past C, with C's. */
	for (; len >= 3 * STREAM; p += 3 * STREAM, len -= 3 * STREAM) {
		b = d = 0;
		for (size_t i = 0; i < STREAM; i += 8) {
			memcpy(&v, p + i, 8);
			memcpy(&w, p + STREAM + i, 8);
			c = __builtin_ia32_crc32di(c, v);
			memcpy(&v, p + 2 * STREAM + i, 8);
			b = __builtin_ia32_crc32di(b, w);
			d = __builtin_ia32_crc32di(d, v);
		}
		c = skip_stream(skip_stream((uint32_t)c) ^ (uint32_t)b) ^ (uint32_t)d;
	}
	for (; len >= 8; p += 8, len -= 8) {
		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
	}
	crc = (uint32_t)c;
	for (; len; len--)
		crc = __builtin_ia32_crc32qi(crc, *p++);
	return crc;
}
#endif

uint32_t wave_crc32c(uint32_t crc, const void *p, size_t len)
{
	crc = ~crc;
#if defined(__x86_64__)
	if (__builtin_cpu_supports("sse4.2"))
		return ~crc_hw(crc, p, len);
#endif
	return ~crc_soft(crc, p, len);
}
