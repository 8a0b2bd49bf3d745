/* SPDX-License-Identifier: MIT */
/*
 * The session protocol: control messages (WAVE_MSG_CONTROL range) that both
 * ends exchange over any channel. The wire format is documented in
 * docs/sessions.md; this header is its one definition. Every decoder checks
 * the type, the flags, every field's range and that unused bytes are zero:
 * the bytes come from the peer and are not trusted.
 */
#ifndef WAVE_SESSION_PROTO_H
#define WAVE_SESSION_PROTO_H

#include <stdbool.h>
#include <stdint.h>

#include <wave/domain.h>
#include <wave/host.h>
#include <wave/msg.h>

/* One definition of the version: the public one (host.h). */
#define WAVE_PROTO_MAJOR WAVE_SESSION_PROTO_MAJOR
#define WAVE_PROTO_MINOR WAVE_SESSION_PROTO_MINOR

enum wave_ctl_type {
	WAVE_CTL_HELLO = 0x0001,     /* host -> agent: who I am, what I want */
	WAVE_CTL_AUTH = 0x0002,      /* host -> agent: token bytes past the hello's */
	WAVE_CTL_WELCOME = 0x0003,   /* agent -> host: accepted */
	WAVE_CTL_REFUSE = 0x0004,    /* agent -> host: refused, and why */
	WAVE_CTL_HEARTBEAT = 0x0005, /* both ways, every period */
	WAVE_CTL_BYE = 0x0006,       /* both ways: closing on purpose */
};

/* Longest token; matches the configuration's auth.token. */
#define WAVE_PROTO_TOKEN_MAX 256u
/* Token bytes carried by the hello itself, and by each AUTH message. */
#define WAVE_PROTO_HELLO_TOKEN 32u
#define WAVE_PROTO_AUTH_TOKEN 48u
/* Bytes of human-readable reason in a REFUSE. */
#define WAVE_PROTO_REFUSE_TEXT 40u

/* Every domain bit a hello may carry. */
#define WAVE_PROTO_DOMAINS_ALL ((1u << WAVE_DOMAIN_COUNT) - 1u)

/* What a refusal is about. */
enum wave_refuse_what {
	WAVE_REFUSE_VERSION = 1,
	WAVE_REFUSE_ROLE = 2,
	WAVE_REFUSE_TOKEN = 3,
	WAVE_REFUSE_DOMAIN = 4,
	WAVE_REFUSE_HEARTBEAT = 5,
	WAVE_REFUSE_PROTOCOL = 6,
	WAVE_REFUSE_FULL = 7, /* the agent serves max_hosts hosts */
	WAVE_REFUSE_MAX = 7,
};

struct wave_hello {
	uint16_t major, minor;
	uint16_t role; /* enum wave_role */
	uint16_t token_len;
	uint32_t domains;
	uint32_t heartbeat_period_ms;
	uint8_t token[WAVE_PROTO_TOKEN_MAX];
};

struct wave_welcome {
	uint16_t major, minor;
	uint32_t domains;
	uint32_t heartbeat_period_ms;
	uint32_t heartbeat_timeout_ms;
	uint64_t session_id;
};

struct wave_refuse {
	int32_t code; /* a negative libwave error code */
	uint32_t what; /* enum wave_refuse_what */
	char text[WAVE_PROTO_REFUSE_TEXT + 1];
};

static inline bool wave_msg_is_control(uint16_t type)
{
	return type >= WAVE_MSG_CONTROL_FIRST && type <= WAVE_MSG_CONTROL_LAST;
}

/* How many AUTH messages follow a hello with @token_len bytes of token. */
unsigned wave_proto_auth_count(unsigned token_len);

/* Encoders fill whole messages (zeroed first). The hello and its AUTH
 * messages: @out must hold 1 + wave_proto_auth_count() messages; returns
 * how many were filled. */
unsigned wave_proto_hello(const struct wave_hello *h, struct wave_msg *out);
void wave_proto_welcome(const struct wave_welcome *w, struct wave_msg *out);
void wave_proto_refuse(int32_t code, uint32_t what, const char *text, struct wave_msg *out);
void wave_proto_heartbeat(uint64_t count, struct wave_msg *out);
void wave_proto_bye(uint32_t reason, struct wave_msg *out);

/* Decoders return 0 or -WAVE_ECORRUPT for a malformed message. The hello
 * decoder leaves the token to wave_proto_auth_decode(). */
int wave_proto_hello_decode(const struct wave_msg *m, struct wave_hello *h);
/* AUTH number @index (0-based) of a hello: copies its bytes into h->token. */
int wave_proto_auth_decode(const struct wave_msg *m, unsigned index, struct wave_hello *h);
int wave_proto_welcome_decode(const struct wave_msg *m, struct wave_welcome *w);
int wave_proto_refuse_decode(const struct wave_msg *m, struct wave_refuse *r);
int wave_proto_heartbeat_decode(const struct wave_msg *m, uint64_t *count);
int wave_proto_bye_decode(const struct wave_msg *m, uint32_t *reason);

/* Constant-time comparison of two tokens (their lengths are not secret). */
bool wave_proto_token_equal(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

#endif /* WAVE_SESSION_PROTO_H */
