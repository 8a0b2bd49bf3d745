/* SPDX-License-Identifier: MIT */
/* sockperf's message format: see sockperf_msg.h. */
#include "sockperf_msg.h"

static uint64_t get_be(const uint8_t *p, int bytes)
{
	uint64_t v = 0;

	for (int i = 0; i < bytes; i++)
		v = v << 8 | p[i];
	return v;
}

static void put_be(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = bytes - 1; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

enum sp_parse sp_parse(const uint8_t *buf, size_t n, struct sp_msg *msg)
{
	if (n < SP_HDR)
		return SP_MORE;
	msg->seq = get_be(buf, 8);
	msg->flags = (uint16_t)get_be(buf + 8, 2);
	msg->len = (uint32_t)get_be(buf + 10, 4);
	if (msg->len < SP_HDR || msg->len > SP_MAX_MSG)
		return SP_BAD;
	return n < msg->len ? SP_MORE : SP_OK;
}

enum sp_action sp_action(const struct sp_msg *msg)
{
	if (!(msg->flags & SP_CLIENT))
		return SP_IGNORE_NOT_CLIENT;
	if (msg->flags & SP_WARMUP)
		return SP_IGNORE_WARMUP;
	return msg->flags & SP_PONG ? SP_SERVE_REPLY : SP_SERVE_SILENT;
}

void sp_make_reply(uint8_t *buf)
{
	put_be(buf + 8, get_be(buf + 8, 2) & ~(uint64_t)SP_CLIENT, 2);
}

void sp_put_header(uint8_t *buf, uint64_t seq, uint16_t flags, uint32_t len)
{
	put_be(buf, seq, 8);
	put_be(buf + 8, flags, 2);
	put_be(buf + 10, len, 4);
}
