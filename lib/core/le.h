/* SPDX-License-Identifier: MIT */
/*
 * Little-endian fields at any offset of a wire payload, whatever the
 * machine's byte order (every libwave wire format is little-endian).
 * memcpy keeps unaligned offsets defined; <endian.h> does the order.
 */
#ifndef WAVE_CORE_LE_H
#define WAVE_CORE_LE_H

#include <endian.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline void wave_put_le16(uint8_t *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, sizeof(v));
}

static inline void wave_put_le32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, sizeof(v));
}

static inline void wave_put_le64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, sizeof(v));
}

static inline uint16_t wave_get_le16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return le16toh(v);
}

static inline uint32_t wave_get_le32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}

static inline uint64_t wave_get_le64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

/* A field of @bytes (1, 2, 4 or 8) bytes, for codecs driven by a struct's
 * layout (offsetof and sizeof of the wire struct's member). */
static inline uint64_t wave_get_le(const uint8_t *p, unsigned bytes)
{
	switch (bytes) {
	case 1:
		return p[0];
	case 2:
		return wave_get_le16(p);
	case 4:
		return wave_get_le32(p);
	default:
		return wave_get_le64(p);
	}
}

static inline void wave_put_le(uint8_t *p, unsigned bytes, uint64_t v)
{
	switch (bytes) {
	case 1:
		p[0] = (uint8_t)v;
		break;
	case 2:
		wave_put_le16(p, (uint16_t)v);
		break;
	case 4:
		wave_put_le32(p, (uint32_t)v);
		break;
	default:
		wave_put_le64(p, v);
		break;
	}
}

#endif /* WAVE_CORE_LE_H */
