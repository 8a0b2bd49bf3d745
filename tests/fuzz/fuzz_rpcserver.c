/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the example RPC server's request parser (sockperf's message
 * format, examples/rpcserver/sockperf_msg.h) on hostile bytes.
 *
 * Input: one byte giving a chunk size (1..256) for the TCP walk, then the
 * bytes a peer sends. They are walked twice:
 *  - as one UDP datagram: message after message until a bad or cut one,
 *    as the server does;
 *  - as a TCP stream delivered in chunks of that size into a buffer of the
 *    server's size, parsed as each chunk arrives.
 * Every message found must lie inside the bytes given, with a length field
 * from 14 to 65507, and its reply must differ from it only in the CLIENT
 * bit; both walks must find the very same messages, and stop for the same
 * reason (a bad length field, or the end). ASan catches any read outside.
 *
 * Built with -fsanitize=fuzzer by clang (WAVE_FUZZ=ON), and as a plain
 * function that fuzz_replay.c calls on the stored corpus with any compiler.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sockperf_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_MSGS 4096
#define STREAM_BUF (SP_MAX_MSG + 16384) /* the server's per-connection buffer */

struct walk {
	size_t n;
	struct sp_msg m[MAX_MSGS];
	enum sp_parse end; /* SP_MORE: ran out of bytes; SP_BAD: a bad length field */
};

/* One message: inside the buffer, a sane length, and a reply that differs
 * only in the CLIENT bit. */
static void check_msg(const uint8_t *p, size_t left, const struct sp_msg *m, struct walk *w)
{
	uint8_t hdr[SP_HDR];
	struct sp_msg r;

	if (m->len < SP_HDR || m->len > SP_MAX_MSG || m->len > left)
		abort();
	memcpy(hdr, p, SP_HDR);
	sp_make_reply(hdr);
	if (sp_parse(hdr, SP_HDR, &r) == SP_BAD || r.seq != m->seq || r.len != m->len ||
	    r.flags != (m->flags & ~SP_CLIENT) || memcmp(hdr, p, 8) != 0)
		abort();
	if (w->n < MAX_MSGS)
		w->m[w->n++] = *m;
}

static void walk_datagram(const uint8_t *d, size_t n, struct walk *w)
{
	size_t off = 0;
	struct sp_msg m;

	w->end = SP_MORE;
	while (off < n) {
		enum sp_parse p = sp_parse(d + off, n - off, &m);
		if (p != SP_OK) {
			w->end = p;
			return;
		}
		check_msg(d + off, n - off, &m, w);
		sp_action(&m);
		off += m.len;
	}
}

static void walk_stream(const uint8_t *d, size_t n, size_t chunk, struct walk *w)
{
	static uint8_t buf[STREAM_BUF];
	size_t have = 0, fed = 0;
	struct sp_msg m;

	w->end = SP_MORE;
	while (fed < n) {
		size_t k = n - fed < chunk ? n - fed : chunk, off = 0;
		enum sp_parse p;

		if (k > STREAM_BUF - have)
			abort(); /* the server's buffer must always have room */
		memcpy(buf + have, d + fed, k);
		fed += k;
		have += k;
		while ((p = sp_parse(buf + off, have - off, &m)) == SP_OK) {
			check_msg(buf + off, have - off, &m, w);
			off += m.len;
		}
		if (p == SP_BAD) {
			w->end = SP_BAD;
			return;
		}
		memmove(buf, buf + off, have - off);
		have -= off;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct walk a, b;
	size_t chunk;

	if (size < 1)
		return 0;
	chunk = (size_t)data[0] + 1;
	data++;
	size--;
	a.n = b.n = 0;
	walk_datagram(data, size, &a);
	walk_stream(data, size, chunk, &b);
	if (a.n != b.n || a.end != b.end)
		abort();
	for (size_t i = 0; i < a.n; i++)
		if (a.m[i].seq != b.m[i].seq || a.m[i].flags != b.m[i].flags ||
		    a.m[i].len != b.m[i].len)
			abort();
	return 0;
}
