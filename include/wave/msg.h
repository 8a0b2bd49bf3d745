/* SPDX-License-Identifier: MIT */
/**
 * @file msg.h
 * The message: the unit every libwave channel carries.
 *
 * A message is one 64-byte, cache-line aligned record: a 16-byte header and a
 * 48-byte payload whose meaning depends on the type. One cache line is the
 * least a message can cost to move between two cores or across PCIe, so the
 * layout never grows; bigger things travel as several messages or by
 * reference. The layout is part of the wire and shared-memory ABI: it is the
 * same on every machine (little-endian, fixed-width fields).
 *
 * Type numbers are reserved in ranges, one per domain, and one range
 * (WAVE_MSG_APP_FIRST .. WAVE_MSG_APP_LAST) for applications.
 * Type 0 is never valid: sending it fails with -EINVAL.
 */
#ifndef WAVE_MSG_H
#define WAVE_MSG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#define WAVE_ALIGNAS(n) alignas(n)
#else
#define WAVE_ALIGNAS(n) _Alignas(n)
#endif

/** Bytes in one message. */
#define WAVE_MSG_SIZE 64
/** Bytes of payload in one message. */
#define WAVE_MSG_PAYLOAD 48

/* Type ranges (inclusive). */
#define WAVE_MSG_CONTROL_FIRST 0x0001 /**< sessions: hello, heartbeat, bye */
#define WAVE_MSG_CONTROL_LAST 0x00ff
#define WAVE_MSG_SCHED_FIRST 0x0100 /**< thread and task scheduling */
#define WAVE_MSG_SCHED_LAST 0x01ff
#define WAVE_MSG_MEM_FIRST 0x0200 /**< memory tiering */
#define WAVE_MSG_MEM_LAST 0x02ff
#define WAVE_MSG_RPC_FIRST 0x0300 /**< RPC steering */
#define WAVE_MSG_RPC_LAST 0x03ff
/* 0x0400 .. 0x7fff are reserved for future libwave domains. */
#define WAVE_MSG_APP_FIRST 0x8000 /**< free for applications */
#define WAVE_MSG_APP_LAST 0xffff

/**
 * struct wave_msg - one message.
 * @type:    what the payload means; never 0; see the ranges above.
 * @flags:   type-specific flags; the channel carries them untouched.
 * @seq:     set by the channel on send: the message's number in its
 *           direction of the channel, 1 for the first, wrapping modulo 2^32.
 *           The receiver sees consecutive numbers; a gap cannot happen.
 * @tstamp:  set by the channel on send: CLOCK_MONOTONIC nanoseconds at the
 *           sender (one reading per send call; shm:// and file:// take it
 *           from the invariant TSC where the kernel's own clock runs on it,
 *           within a few ns of clock_gettime()). Used by latency emulation
 *           and for measuring; compare only between processes on one machine.
 * @payload: 48 bytes, interpreted according to @type.
 */
struct wave_msg {
	WAVE_ALIGNAS(64) uint16_t type; /* aligns the whole record to a line */
	uint16_t flags;
	uint32_t seq;
	uint64_t tstamp;
	union {
		uint8_t u8[WAVE_MSG_PAYLOAD];
		uint32_t u32[WAVE_MSG_PAYLOAD / 4];
		uint64_t u64[WAVE_MSG_PAYLOAD / 8];
	} payload;
};

#ifdef __cplusplus
static_assert(sizeof(struct wave_msg) == WAVE_MSG_SIZE, "wave_msg is one cache line");
#else
_Static_assert(sizeof(struct wave_msg) == WAVE_MSG_SIZE, "wave_msg is one cache line");
_Static_assert(_Alignof(struct wave_msg) == WAVE_MSG_SIZE, "wave_msg is line aligned");
_Static_assert(offsetof(struct wave_msg, type) == 0, "wave_msg.type offset");
_Static_assert(offsetof(struct wave_msg, flags) == 2, "wave_msg.flags offset");
_Static_assert(offsetof(struct wave_msg, seq) == 4, "wave_msg.seq offset");
_Static_assert(offsetof(struct wave_msg, tstamp) == 8, "wave_msg.tstamp offset");
_Static_assert(offsetof(struct wave_msg, payload) == 16, "wave_msg.payload offset");
#endif

#ifdef __cplusplus
}
#endif

#endif /* WAVE_MSG_H */
