/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: sched message decoding and the state model's application
 * of messages, with a real policy plugin deciding.
 *
 * Input: one byte choosing the CPU count (1..16) and the policy (fifo or
 * shinjuku), then 64-byte records, each taken as a struct wave_msg exactly
 * as a hostile host could write it into shared memory. For each record:
 * the decoder must accept it or refuse it cleanly; what it accepts must
 * re-encode to the same message; the state applies it (or refuses it) and
 * every invariant of the state must still hold. Decisions the policy makes
 * are taken by an emit that accepts them, and are decoded too.
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
#include <wave/sched_state.h>

#include "domains/sched/sched_impl.h"

const struct wave_plugin_desc *wave_plugin_entry_sched_fifo(void);
const struct wave_plugin_desc *wave_plugin_entry_sched_shinjuku(void);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t n_cpus;

/* Decisions must always be valid messages. */
static int fuzz_emit(void *user, const struct wave_msg *m, unsigned n)
{
	struct wave_sched_msg d;

	for (unsigned i = 0; i < n; i++)
		if (wave_sched_msg_decode(&m[i], n_cpus, &d) != 0 || d.type < WAVE_SCHED_RUN ||
		    d.type > WAVE_SCHED_PREEMPT)
			abort();
	return (int)n;
}

/* Whatever decodes re-encodes to the very same bytes. */
static void check_codec(const struct wave_msg *m)
{
	struct wave_sched_msg d, d2;
	struct wave_msg again;

	if (wave_sched_msg_decode(m, n_cpus, &d) != 0)
		return;
	if (wave_sched_msg_encode(&d, n_cpus, &again) != 0 ||
	    memcmp(&again.payload, &m->payload, sizeof(m->payload)) != 0 ||
	    again.type != m->type || wave_sched_msg_decode(&again, n_cpus, &d2) != 0)
		abort();
}

static struct wave_plugin_ctx *start(struct wave_plugin *p, struct wave_sched_state *st)
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
	static struct wave_plugin *plugins[2];
	struct wave_sched_state *st;
	struct wave_plugin_ctx *ctx;
	struct wave_msg m;

	if (size < 1)
		return 0;
	if (!plugins[0] &&
	    (wave_plugin_open_static(wave_plugin_entry_sched_fifo, &plugins[0], NULL) != 0 ||
	     wave_plugin_open_static(wave_plugin_entry_sched_shinjuku, &plugins[1], NULL) != 0))
		abort();
	n_cpus = 1 + (data[0] & 15);
	if (wave_sched_state_create(n_cpus, &st) != 0)
		abort();
	ctx = start(plugins[data[0] >> 7], st);
	for (size_t off = 1; off + sizeof(m) <= size; off += sizeof(m)) {
		memcpy(&m, data + off, sizeof(m));
		check_codec(&m);
		wave_sched_state_apply(st, ctx, &m);
		if (wave_sched_state_check(st) != 0)
			abort();
	}
	wave_plugin_ctx_destroy(ctx);
	wave_sched_state_destroy(st);
	return 0;
}
