/* SPDX-License-Identifier: MIT */
/* Encoding and strict decoding of the session's control messages. */
#include <errno.h>
#include <string.h>

#include <wave/channel.h>
#include <wave/error.h>

#include "../core/core.h"
#include "../core/le.h"
#include "proto.h"

static bool zero_from(const struct wave_msg *m, size_t from)
{
	for (size_t i = from; i < WAVE_MSG_PAYLOAD; i++)
		if (m->payload.u8[i])
			return false;
	return true;
}

static void msg_init(struct wave_msg *m, uint16_t type)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
}

unsigned wave_proto_auth_count(unsigned token_len)
{
	if (token_len <= WAVE_PROTO_HELLO_TOKEN)
		return 0;
	return (token_len - WAVE_PROTO_HELLO_TOKEN + WAVE_PROTO_AUTH_TOKEN - 1) /
	       WAVE_PROTO_AUTH_TOKEN;
}

unsigned wave_proto_hello(const struct wave_hello *h, struct wave_msg *out)
{
	unsigned len = h->token_len, n = wave_proto_auth_count(len);
	uint8_t *p = out[0].payload.u8;

	msg_init(&out[0], WAVE_CTL_HELLO);
	wave_put_le16(p, h->major);
	wave_put_le16(p + 2, h->minor);
	wave_put_le16(p + 4, h->role);
	wave_put_le16(p + 6, h->token_len);
	wave_put_le32(p + 8, h->domains);
	wave_put_le32(p + 12, h->heartbeat_period_ms);
	memcpy(p + 16, h->token, len < WAVE_PROTO_HELLO_TOKEN ? len : WAVE_PROTO_HELLO_TOKEN);
	for (unsigned i = 0; i < n; i++) {
		unsigned off = WAVE_PROTO_HELLO_TOKEN + i * WAVE_PROTO_AUTH_TOKEN;
		unsigned chunk = len - off < WAVE_PROTO_AUTH_TOKEN ? len - off : WAVE_PROTO_AUTH_TOKEN;

		msg_init(&out[1 + i], WAVE_CTL_AUTH);
		out[1 + i].flags = (uint16_t)i;
		memcpy(out[1 + i].payload.u8, h->token + off, chunk);
	}
	return 1 + n;
}

int wave_proto_hello_decode(const struct wave_msg *m, struct wave_hello *h)
{
	const uint8_t *p = m->payload.u8;
	unsigned in_hello;

	if (m->type != WAVE_CTL_HELLO || m->flags)
		return -WAVE_ECORRUPT;
	memset(h, 0, sizeof(*h));
	h->major = wave_get_le16(p);
	h->minor = wave_get_le16(p + 2);
	h->role = wave_get_le16(p + 4);
	h->token_len = wave_get_le16(p + 6);
	h->domains = wave_get_le32(p + 8);
	h->heartbeat_period_ms = wave_get_le32(p + 12);
	if (h->token_len > WAVE_PROTO_TOKEN_MAX)
		return -WAVE_ECORRUPT;
	in_hello = h->token_len < WAVE_PROTO_HELLO_TOKEN ? h->token_len : WAVE_PROTO_HELLO_TOKEN;
	if (!zero_from(m, 16 + in_hello))
		return -WAVE_ECORRUPT;
	memcpy(h->token, p + 16, in_hello);
	return 0;
}

int wave_proto_auth_decode(const struct wave_msg *m, unsigned index, struct wave_hello *h)
{
	unsigned off = WAVE_PROTO_HELLO_TOKEN + index * WAVE_PROTO_AUTH_TOKEN, chunk;

	if (m->type != WAVE_CTL_AUTH || m->flags != index || off >= h->token_len)
		return -WAVE_ECORRUPT;
	chunk = h->token_len - off < WAVE_PROTO_AUTH_TOKEN ? h->token_len - off
							   : WAVE_PROTO_AUTH_TOKEN;
	if (!zero_from(m, chunk))
		return -WAVE_ECORRUPT;
	memcpy(h->token + off, m->payload.u8, chunk);
	return 0;
}

void wave_proto_welcome(const struct wave_welcome *w, struct wave_msg *out)
{
	uint8_t *p = out->payload.u8;

	msg_init(out, WAVE_CTL_WELCOME);
	wave_put_le16(p, w->major);
	wave_put_le16(p + 2, w->minor);
	wave_put_le32(p + 4, w->domains);
	wave_put_le32(p + 8, w->heartbeat_period_ms);
	wave_put_le32(p + 12, w->heartbeat_timeout_ms);
	wave_put_le64(p + 16, w->session_id);
}

int wave_proto_welcome_decode(const struct wave_msg *m, struct wave_welcome *w)
{
	const uint8_t *p = m->payload.u8;

	if (m->type != WAVE_CTL_WELCOME || m->flags || !zero_from(m, 24))
		return -WAVE_ECORRUPT;
	w->major = wave_get_le16(p);
	w->minor = wave_get_le16(p + 2);
	w->domains = wave_get_le32(p + 4);
	w->heartbeat_period_ms = wave_get_le32(p + 8);
	w->heartbeat_timeout_ms = wave_get_le32(p + 12);
	w->session_id = wave_get_le64(p + 16);
	if (w->domains & ~WAVE_PROTO_DOMAINS_ALL || w->heartbeat_period_ms == 0 ||
	    w->heartbeat_timeout_ms <= w->heartbeat_period_ms)
		return -WAVE_ECORRUPT;
	return 0;
}

void wave_proto_refuse(int32_t code, uint32_t what, const char *text, struct wave_msg *out)
{
	uint8_t *p = out->payload.u8;
	size_t len = strlen(text);

	msg_init(out, WAVE_CTL_REFUSE);
	wave_put_le32(p, (uint32_t)code);
	wave_put_le32(p + 4, what);
	memcpy(p + 8, text, len < WAVE_PROTO_REFUSE_TEXT ? len : WAVE_PROTO_REFUSE_TEXT);
}

int wave_proto_refuse_decode(const struct wave_msg *m, struct wave_refuse *r)
{
	const uint8_t *p = m->payload.u8;
	size_t len;

	if (m->type != WAVE_CTL_REFUSE || m->flags)
		return -WAVE_ECORRUPT;
	r->code = (int32_t)wave_get_le32(p);
	r->what = wave_get_le32(p + 4);
	if (r->code >= 0 || -(int64_t)r->code >= WAVE_ERRNO_MAX || r->what == 0 ||
	    r->what > WAVE_REFUSE_MAX)
		return -WAVE_ECORRUPT;
	memcpy(r->text, p + 8, WAVE_PROTO_REFUSE_TEXT);
	r->text[WAVE_PROTO_REFUSE_TEXT] = '\0';
	len = strlen(r->text);
	/* Printable ASCII only, NUL padding after: it ends up in logs. */
	for (size_t i = 0; i < len; i++)
		if (r->text[i] < 0x20 || r->text[i] > 0x7e)
			return -WAVE_ECORRUPT;
	return zero_from(m, 8 + len) ? 0 : -WAVE_ECORRUPT;
}

void wave_proto_heartbeat(uint64_t count, struct wave_msg *out)
{
	msg_init(out, WAVE_CTL_HEARTBEAT);
	wave_put_le64(out->payload.u8, count);
}

int wave_proto_heartbeat_decode(const struct wave_msg *m, uint64_t *count)
{
	if (m->type != WAVE_CTL_HEARTBEAT || m->flags || !zero_from(m, 8))
		return -WAVE_ECORRUPT;
	*count = wave_get_le64(m->payload.u8);
	return 0;
}

void wave_proto_bye(uint32_t reason, struct wave_msg *out)
{
	msg_init(out, WAVE_CTL_BYE);
	wave_put_le32(out->payload.u8, reason);
}

int wave_proto_bye_decode(const struct wave_msg *m, uint32_t *reason)
{
	if (m->type != WAVE_CTL_BYE || m->flags || !zero_from(m, 4))
		return -WAVE_ECORRUPT;
	*reason = wave_get_le32(m->payload.u8);
	return 0;
}

bool wave_proto_token_equal(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	/* The lengths are not secret: only a common length is compared. */
	return wave_secret_equal(a, alen, b, blen, alen == blen ? alen : 0);
}
