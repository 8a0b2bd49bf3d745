/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: rpc message decoding and the state model's application of
 * messages, with a real policy plugin deciding.
 *
 * Input: two bytes choosing the sizes and the policy, then 64-byte
 * records, each taken as a struct wave_msg exactly as a hostile host could
 * write it into shared memory. Byte 0: n_buckets = 1 << (bits 0-2),
 * n_classes = bits 3-4, policy = bits 6-7 (hash, rebalance, jsq, darc).
 * Byte 1: max_workers = 1 + bits 0-2, n_dispatchers = bits 4-5. For each
 * record: the decoder must accept it or refuse it cleanly; what it accepts
 * must re-encode to the same message; the state applies it (or refuses
 * it) and every invariant of the state must still hold. Decisions the
 * policy makes are taken by an emit that accepts them, and are decoded
 * too.
 *
 * Built with -fsanitize=fuzzer by clang (WAVE_FUZZ=ON), and as a plain
 * function that fuzz_replay.c calls on the stored corpus with any
 * compiler.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <wave/plugin.h>
#include <wave/plugin_loader.h>
#include <wave/rpc_state.h>

#include "domains/rpc/rpc_impl.h"

const struct wave_plugin_desc *wave_plugin_entry_rpc_hash(void);
const struct wave_plugin_desc *wave_plugin_entry_rpc_rebalance(void);
const struct wave_plugin_desc *wave_plugin_entry_rpc_jsq(void);
const struct wave_plugin_desc *wave_plugin_entry_rpc_darc(void);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct wave_rpc_dims dims;

/* Decisions must always be valid decision messages. */
static int fuzz_emit(void *user, const struct wave_msg *m, unsigned n)
{
	struct wave_rpc_msg d;

	(void)user;
	for (unsigned i = 0; i < n; i++)
		if (wave_rpc_msg_decode(&m[i], &dims, &d) != 0 ||
		    (d.type != WAVE_RPC_MOVE && d.type != WAVE_RPC_PRESTAGE))
			abort();
	return (int)n;
}

/* Whatever decodes re-encodes to the very same bytes. */
static void check_codec(const struct wave_msg *m)
{
	const struct wave_rpc_dims *dd = m->type == WAVE_RPC_SETUP ? NULL : &dims;
	struct wave_rpc_msg d, d2;
	struct wave_msg again;

	if (wave_rpc_msg_decode(m, dd, &d) != 0)
		return;
	if (wave_rpc_msg_encode(&d, dd, &again) != 0 ||
	    memcmp(&again.payload, &m->payload, sizeof(m->payload)) != 0 ||
	    again.type != m->type || again.flags != m->flags ||
	    wave_rpc_msg_decode(&again, dd, &d2) != 0)
		abort();
}

static struct wave_rpc_state *make_state(void)
{
	struct wave_rpc_msg s = { .type = WAVE_RPC_SETUP, .dims = dims, .period_ns = 1000000 };
	struct wave_rpc_state *st;
	struct wave_msg m;

	if (wave_rpc_msg_encode(&s, NULL, &m) != 0 || wave_rpc_state_create(&m, &st) != 0)
		abort();
	return st;
}

static struct wave_plugin_ctx *start(struct wave_plugin *p, struct wave_rpc_state *st)
{
	struct wave_plugin_ctx_opts o;
	struct wave_plugin_ctx *ctx = NULL;

	wave_plugin_ctx_opts_init(&o);
	o.emit = fuzz_emit;
	o.domain_state = st;
	if (wave_plugin_ctx_create(p, &o, &ctx, NULL) != 0)
		abort();
	return ctx;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const wave_plugin_entry_fn entries[4] = {
		wave_plugin_entry_rpc_hash, wave_plugin_entry_rpc_rebalance,
		wave_plugin_entry_rpc_jsq, wave_plugin_entry_rpc_darc,
	};
	static struct wave_plugin *plugins[4];
	struct wave_rpc_state *st;
	struct wave_plugin_ctx *ctx;
	struct wave_msg m;

	if (size < 2)
		return 0;
	for (unsigned i = 0; i < 4; i++)
		if (!plugins[i] && wave_plugin_open_static(entries[i], &plugins[i], NULL) != 0)
			abort();
	dims = (struct wave_rpc_dims){ 1u << (data[0] & 7), (data[0] >> 3) & 3,
				       1u + (data[1] & 7), (data[1] >> 4) & 3 };
	st = make_state();
	ctx = start(plugins[data[0] >> 6], st);
	for (size_t off = 2; off + sizeof(m) <= size; off += sizeof(m)) {
		memcpy(&m, data + off, sizeof(m));
		check_codec(&m);
		wave_rpc_state_apply(st, ctx, &m);
		if (wave_rpc_state_check(st) != 0)
			abort();
	}
	wave_plugin_ctx_destroy(ctx);
	wave_rpc_state_destroy(st);
	return 0;
}
