/* SPDX-License-Identifier: MIT */
/*
 * The mem state model's invariants, recomputed from the chunks: every
 * tier's usage, in and out counts and histogram, the victims in flight,
 * and every chunk's decision in flight naming a tier that exists. Linear
 * in the chunks; for tests and the fuzzer, after each message.
 */
#include <errno.h>
#include <string.h>

#include "mem_agent_impl.h"

struct tally {
	uint64_t used, incoming, outgoing;
	uint64_t hist[WAVE_MEM_HIST_BUCKETS];
};

static int chunk_ok(struct wave_mem_state *st, struct mem_chunk *c, struct tally *tl,
		    uint64_t *victims)
{
	if (c->tier >= st->n_tiers || c->pend.kind > MEM_PEND_PREFETCH)
		return 0;
	mem_chunk_cool(st, c);
	tl[c->tier].used++;
	tl[c->tier].hist[mem_bucket(c->count)]++;
	if (!dec_pend_any(&c->pend))
		return c->pend.res == DEC_RES_NONE;
	if (c->pend.res >= st->n_tiers)
		return 0;
	tl[c->pend.res].incoming++;
	tl[c->tier].outgoing++;
	*victims += c->pend.kind == MEM_PEND_VICTIM;
	return 1;
}

int wave_mem_state_check(struct wave_mem_state *st)
{
	struct tally tl[WAVE_MEM_MAX_TIERS];
	uint64_t victims = 0, chunks = 0;

	memset(tl, 0, sizeof(tl));
	for (unsigned i = 0; i < WAVE_MEM_STATE_MAX_REGIONS; i++) {
		struct mem_region *r = &st->regions[i];

		if (!r->live)
			continue;
		chunks += r->n;
		for (uint64_t k = 0; k < r->n; k++)
			if (!chunk_ok(st, &r->c[k], tl, &victims))
				return -EPROTO;
	}
	if (chunks != st->n_chunks || victims != st->n_victims)
		return -EPROTO;
	for (uint32_t t = 0; t < WAVE_MEM_MAX_TIERS; t++) {
		const struct mem_tier *mt = &st->tiers[t];

		if (mt->used != tl[t].used || mt->incoming != tl[t].incoming ||
		    mt->outgoing != tl[t].outgoing ||
		    memcmp(mt->hist, tl[t].hist, sizeof(mt->hist)))
			return -EPROTO;
	}
	return 0;
}
