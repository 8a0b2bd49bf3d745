/* SPDX-License-Identifier: MIT */
/*
 * sockperf's message format, as its client (sockperf 3.7, Debian 12) sends
 * it and its server answers it; checked byte for byte against both.
 *
 * A message is a 14-byte header, in network byte order, then payload:
 *
 *   offset 0   u64  sequence number
 *   offset 8   u16  flags: CLIENT (1) from a client, PONG (2) a reply is
 *                   wanted, WARMUP (4) a warm-up message; other bits are
 *                   carried through untouched
 *   offset 10  u32  length of the whole message, header included
 *
 * sockperf's server answers a message that has CLIENT and PONG (and not
 * WARMUP) with the same @length bytes, CLIENT cleared and every other bit
 * kept; it answers nothing else. ping-pong sets PONG on every message;
 * under-load and throughput on one in --reply-every.
 *
 * Malformed input (what sockperf's server does, and what this one does):
 *  - a length field below 14 or above SP_MAX_MSG: sockperf reports
 *    "Message received was larger than expected, message ignored" (and, on
 *    TCP, closes the connection); here the datagram's rest is dropped, or
 *    the TCP connection closed, and it is counted;
 *  - a UDP datagram shorter than its header or than its length field:
 *    sockperf keeps the bytes and reads the next datagram as their
 *    continuation (UDP treated as a stream, which garbles the next,
 *    well-formed request too); here the datagram's rest is dropped and
 *    counted, and the next datagram is parsed on its own;
 *  - several messages in one datagram or one TCP read: each is handled in
 *    turn, as sockperf does.
 * Nothing in a message is trusted: the parser reads only the bytes it is
 * given.
 */
#ifndef WAVE_EXAMPLE_SOCKPERF_MSG_H
#define WAVE_EXAMPLE_SOCKPERF_MSG_H

#include <stddef.h>
#include <stdint.h>

#define SP_HDR 14
#define SP_CLIENT 0x1u
#define SP_PONG 0x2u
#define SP_WARMUP 0x4u
/* sockperf's MAX_PAYLOAD_SIZE: the largest UDP payload over IPv4. */
#define SP_MAX_MSG 65507u

struct sp_msg {
	uint64_t seq;
	uint16_t flags;
	uint32_t len; /* whole message, >= SP_HDR */
};

/* What the server does with a well-formed message. */
enum sp_action {
	SP_SERVE_REPLY,  /* a client's request that wants a reply: work, then answer */
	SP_SERVE_SILENT, /* a client's request without PONG: work, no answer */
	SP_IGNORE_WARMUP,
	SP_IGNORE_NOT_CLIENT,
};

/* Outcome of parsing the bytes at the start of a buffer. */
enum sp_parse {
	SP_OK = 0,     /* a whole message: *msg filled */
	SP_MORE = 1,   /* a prefix of a message: more bytes needed */
	SP_BAD = -1,   /* a length field below SP_HDR or above SP_MAX_MSG */
};

/* Parses the message at the start of @buf[0..@n). */
enum sp_parse sp_parse(const uint8_t *buf, size_t n, struct sp_msg *msg);

enum sp_action sp_action(const struct sp_msg *msg);

/* Turns the request at @buf (a whole message) into its reply, in place:
 * CLIENT cleared, everything else as it came. */
void sp_make_reply(uint8_t *buf);

/* Writes a message header (for tests and the fuzzer's checks). */
void sp_put_header(uint8_t *buf, uint64_t seq, uint16_t flags, uint32_t len);

#endif
