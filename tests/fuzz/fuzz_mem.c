/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: mem message decoding and the state model's application of
 * messages, with a real policy plugin deciding.
 *
 * Input: one byte choosing the policy (hemem, memtis, sdfm: low two bits,
 * modulo 3), whether the slowest tier is far (bit 2), the tier count (2
 * or 3: bit 3) and tier 0's capacity (1..16: the top four bits); then
 * 64-byte records, each taken as a struct wave_msg exactly as a hostile
 * host could write it into shared memory. For each record: the decoder
 * must accept it or refuse it cleanly; what it accepts must re-encode to
 * the same bytes; the state applies it (or refuses it) and every
 * invariant of the state must still hold. The state holds at most 4096
 * chunks, so a region of any size costs the fuzzer little. Decisions the
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

#include <wave/mem_msg.h>
#include <wave/mem_state.h>
#include <wave/plugin.h>
#include <wave/plugin_loader.h>

#include "domains/mem/mem_agent_impl.h"

const struct wave_plugin_desc *wave_plugin_entry_mem_hemem(void);
const struct wave_plugin_desc *wave_plugin_entry_mem_memtis(void);
const struct wave_plugin_desc *wave_plugin_entry_mem_sdfm(void);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t n_tiers;

/* Decisions and hints must always be valid messages. */
static int fuzz_emit(void *user, const struct wave_msg *m, unsigned n)
{
	struct wave_mem_msg d;

	for (unsigned i = 0; i < n; i++)
		if (wave_mem_msg_decode(&m[i], n_tiers, &d) != 0 ||
		    ((d.type < WAVE_MEM_MIGRATE || d.type > WAVE_MEM_PREFETCH) &&
		     d.type != WAVE_MEM_KEEP))
			abort();
	return (int)n;
}

/* Whatever decodes re-encodes to the very same bytes. */
static void check_codec(const struct wave_msg *m)
{
	struct wave_mem_msg d, d2;
	struct wave_msg again;

	if (wave_mem_msg_decode(m, n_tiers, &d) != 0)
		return;
	if (wave_mem_msg_encode(&d, n_tiers, &again) != 0 ||
	    memcmp(&again.payload, &m->payload, sizeof(m->payload)) != 0 ||
	    again.type != m->type || wave_mem_msg_decode(&again, n_tiers, &d2) != 0)
		abort();
}

static struct wave_mem_state *make_state(uint8_t sel)
{
	struct wave_mem_msg s = { .type = WAVE_MEM_SETUP };
	struct wave_mem_state *st;
	struct wave_msg m;

	n_tiers = sel & 8 ? 3 : 2;
	s.n = (uint8_t)n_tiers;
	for (uint32_t t = 0; t < n_tiers; t++) {
		s.kind[t] = WAVE_MEM_KIND_NUMA;
		s.capacity[t] = WAVE_MEM_CAP_NONE;
	}
	s.capacity[0] = 1u + (sel >> 4);
	if (sel & 4)
		s.kind[n_tiers - 1] = WAVE_MEM_KIND_FAR;
	if (wave_mem_msg_encode(&s, n_tiers, &m) != 0 || wave_mem_state_create(&m, 4096, &st) != 0)
		abort();
	return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct wave_plugin *plugins[3];
	struct wave_plugin_ctx_opts o;
	struct wave_plugin_ctx *ctx = NULL;
	struct wave_mem_state *st;
	struct wave_msg m;

	if (size < 1)
		return 0;
	if (!plugins[0] &&
	    (wave_plugin_open_static(wave_plugin_entry_mem_hemem, &plugins[0], NULL) != 0 ||
	     wave_plugin_open_static(wave_plugin_entry_mem_memtis, &plugins[1], NULL) != 0 ||
	     wave_plugin_open_static(wave_plugin_entry_mem_sdfm, &plugins[2], NULL) != 0))
		abort();
	st = make_state(data[0]);
	wave_plugin_ctx_opts_init(&o);
	o.emit = fuzz_emit;
	o.domain_state = st;
	if (wave_plugin_ctx_create(plugins[(data[0] & 3) % 3], &o, &ctx, NULL) != 0)
		abort();
	for (size_t off = 1; off + sizeof(m) <= size; off += sizeof(m)) {
		memcpy(&m, data + off, sizeof(m));
		check_codec(&m);
		wave_mem_state_apply(st, ctx, &m);
		if (wave_mem_state_check(st) != 0)
			abort();
	}
	wave_plugin_ctx_destroy(ctx);
	wave_mem_state_destroy(st);
	return 0;
}
