/* SPDX-License-Identifier: MIT */
/*
 * What a mem plugin can do through its context: read chunks, tiers and the
 * histogram, cool, scan, and decide. Every decision is checked against the
 * state before it is sent, so a policy bug or a stale view costs a refused
 * call (counted by the reason the host would have given), never a message
 * the host must abort; a sent decision marks its chunk pending, and its
 * tiers' in and out counts, until the outcome arrives.
 */
#include <errno.h>
#include <string.h>

#include "../../plugin/plugin_impl.h"
#include "mem_agent_impl.h"

/* The state behind a mem plugin's context, or NULL. The context stores it
 * const because other domains only read theirs; a mem context drives its
 * state by design (decisions, cooling, the scan hand). */
static struct wave_mem_state *state_of(const struct wave_plugin_ctx *ctx)
{
	struct wave_mem_state *st =
		(struct wave_mem_state *)plugin_domain_state(ctx, WAVE_DOMAIN_MEM);

	return st && st->magic == MEM_STATE_MAGIC ? st : NULL;
}

/* ---- decisions --------------------------------------------------------- */

/* Encodes and emits one decision; 0 when the host's channel took it. */
static int emit_decision(struct wave_plugin_ctx *ctx, struct wave_mem_state *st, uint16_t type,
			 uint64_t chunk, uint64_t seq, uint32_t tier)
{
	struct wave_mem_msg d = { .type = type, .chunk = chunk, .seq = seq, .tier = tier };
	struct wave_msg m;
	int ret;

	/* Cannot fail: the tier was checked against the state. */
	if ((ret = wave_mem_msg_encode(&d, st->n_tiers, &m)) < 0)
		return ret;
	if ((ret = plugin_emit_decision(ctx, &st->refused, &m)) == 0 && type != WAVE_MEM_KEEP)
		st->stats.sent++;
	return ret;
}

/* The checks every decision shares, in txn_check()'s order; the chunk, or
 * NULL with *@err set. */
static struct mem_chunk *decision_chunk(struct wave_mem_state *st, uint64_t chunk, uint64_t seq,
					uint32_t tier, int *err)
{
	struct mem_chunk *c;
	struct mem_tier *t;

	if (tier >= st->n_tiers) {
		*err = dec_refuse(&st->refused, DEC_REFUSED_INVALID, -ERANGE);
		return NULL;
	}
	if (!(c = mem_chunk_find(st, chunk))) {
		*err = dec_refuse(&st->refused, DEC_REFUSED_GONE, -ENOENT);
		return NULL;
	}
	if (seq != c->seq) {
		*err = dec_refuse(&st->refused, DEC_REFUSED_STALE, -ESTALE);
		return NULL;
	}
	if (c->tier == tier || dec_pend_any(&c->pend)) {
		*err = dec_refuse(&st->refused, DEC_REFUSED_NOT_ELIGIBLE, -EPERM);
		return NULL;
	}
	t = &st->tiers[tier];
	if (t->capacity != UINT64_MAX && t->used + t->incoming >= t->capacity) {
		*err = dec_refuse(&st->refused, DEC_REFUSED_BUSY, -EBUSY);
		return NULL;
	}
	return c;
}

/* Sends decision @kind about @c and marks it in flight. */
static int decide(struct wave_plugin_ctx *ctx, struct wave_mem_state *st, struct mem_chunk *c,
		  uint8_t kind, uint64_t chunk, uint32_t tier)
{
	static const uint16_t types[] = { 0, WAVE_MEM_MIGRATE, WAVE_MEM_VICTIM, WAVE_MEM_PREFETCH };
	int err;

	if ((err = emit_decision(ctx, st, types[kind], chunk, c->seq, tier)) < 0)
		return err;
	dec_pend_link(&c->pend, NULL, 0, kind, tier);
	st->tiers[tier].incoming++;
	st->tiers[c->tier].outgoing++;
	if (kind == MEM_PEND_VICTIM)
		st->n_victims++;
	return 0;
}

WAVE_API int wave_plugin_mem_migrate(struct wave_plugin_ctx *ctx, uint64_t chunk, uint64_t seq,
				     uint32_t tier)
{
	struct wave_mem_state *st = state_of(ctx);
	struct mem_chunk *c;
	int err = 0;

	if (!st)
		return -EINVAL;
	if (!(c = decision_chunk(st, chunk, seq, tier, &err)))
		return err;
	return decide(ctx, st, c, MEM_PEND_MIGRATE, chunk, tier);
}

WAVE_API int wave_plugin_mem_victim(struct wave_plugin_ctx *ctx, uint64_t chunk, uint64_t seq)
{
	struct wave_mem_state *st = state_of(ctx);
	struct mem_chunk *c = NULL;
	int err = 0;

	if (!st)
		return -EINVAL;
	/* The next slower tier; the slowest has none (refused as invalid,
	 * the tier the host would be asked for does not exist). */
	c = mem_chunk_find(st, chunk);
	if (c && c->tier + 1u >= st->n_tiers)
		return dec_refuse(&st->refused, DEC_REFUSED_NOT_ELIGIBLE, -EPERM);
	if (!(c = decision_chunk(st, chunk, seq, c ? c->tier + 1u : 0, &err)))
		return err;
	if (st->n_victims >= WAVE_MEM_MAX_VICTIMS)
		return dec_refuse(&st->refused, DEC_REFUSED_BUSY, -EBUSY);
	return decide(ctx, st, c, MEM_PEND_VICTIM, chunk, c->tier + 1u);
}

WAVE_API int wave_plugin_mem_prefetch(struct wave_plugin_ctx *ctx, uint64_t chunk, uint64_t seq,
				      uint32_t tier)
{
	struct wave_mem_state *st = state_of(ctx);
	struct mem_chunk *c;
	int err = 0;

	if (!st)
		return -EINVAL;
	if (!(c = decision_chunk(st, chunk, seq, tier, &err)))
		return err;
	if (tier > c->tier)
		return dec_refuse(&st->refused, DEC_REFUSED_NOT_ELIGIBLE, -EPERM);
	return decide(ctx, st, c, MEM_PEND_PREFETCH, chunk, tier);
}

WAVE_API int wave_plugin_mem_keep(struct wave_plugin_ctx *ctx, uint64_t chunk, uint64_t seq)
{
	struct wave_mem_state *st = state_of(ctx);
	struct mem_chunk *c;
	struct mem_tier *t;
	int err;

	if (!st)
		return -EINVAL;
	if (!(c = mem_chunk_find(st, chunk)))
		return dec_refuse(&st->refused, DEC_REFUSED_GONE, -ENOENT);
	if (seq != c->seq)
		return dec_refuse(&st->refused, DEC_REFUSED_STALE, -ESTALE);
	/* The host's CLOCK works in limited NUMA tiers only; a chunk with a
	 * decision in flight is on its way out (or in). */
	t = &st->tiers[c->tier];
	if (t->kind != WAVE_MEM_KIND_NUMA || t->capacity == UINT64_MAX || dec_pend_any(&c->pend))
		return dec_refuse(&st->refused, DEC_REFUSED_NOT_ELIGIBLE, -EPERM);
	/* A hint, not a decision: no outcome comes, nothing is pending. */
	if ((err = emit_decision(ctx, st, WAVE_MEM_KEEP, chunk, seq, c->tier)) == 0)
		st->stats.keeps++;
	return err;
}

/* ---- reading the state ------------------------------------------------- */

WAVE_API int wave_plugin_mem_chunk(const struct wave_plugin_ctx *ctx, uint64_t id,
				   struct wave_mem_chunk_view *out)
{
	struct wave_mem_state *st = state_of(ctx);
	struct mem_chunk *c;

	if (!st || !out)
		return -EINVAL;
	if (!(c = mem_chunk_find(st, id)))
		return -ENOENT;
	mem_chunk_view(st, c, id, out);
	return 0;
}

WAVE_API int wave_plugin_mem_tier_count(const struct wave_plugin_ctx *ctx)
{
	const struct wave_mem_state *st = state_of(ctx);

	return st ? (int)st->n_tiers : -EINVAL;
}

WAVE_API int wave_plugin_mem_tier(const struct wave_plugin_ctx *ctx, uint32_t tier,
				  struct wave_mem_tier_view *out)
{
	const struct wave_mem_state *st = state_of(ctx);
	const struct mem_tier *t;

	if (!st || !out)
		return -EINVAL;
	if (tier >= st->n_tiers)
		return -ERANGE;
	t = &st->tiers[tier];
	memset(out, 0, sizeof(*out));
	out->id = tier;
	out->kind = t->kind;
	out->capacity = t->capacity == UINT64_MAX ? WAVE_MEM_CAP_NONE : t->capacity;
	out->used = t->used;
	out->incoming = t->incoming;
	out->outgoing = t->outgoing;
	return 0;
}

WAVE_API int wave_plugin_mem_hist(const struct wave_plugin_ctx *ctx, uint32_t tier,
				  uint64_t out[WAVE_MEM_HIST_BUCKETS])
{
	const struct wave_mem_state *st = state_of(ctx);

	if (!st || !out)
		return -EINVAL;
	if (tier != WAVE_MEM_TIER_ALL && tier >= st->n_tiers)
		return -ERANGE;
	memset(out, 0, WAVE_MEM_HIST_BUCKETS * sizeof(*out));
	for (uint32_t t = 0; t < st->n_tiers; t++)
		if (tier == WAVE_MEM_TIER_ALL || tier == t)
			for (unsigned b = 0; b < WAVE_MEM_HIST_BUCKETS; b++)
				out[b] += st->tiers[t].hist[b];
	return 0;
}

WAVE_API int wave_plugin_mem_fit_bucket(const struct wave_plugin_ctx *ctx, uint64_t n)
{
	uint64_t hist[WAVE_MEM_HIST_BUCKETS], sum = 0;

	if (wave_plugin_mem_hist(ctx, WAVE_MEM_TIER_ALL, hist) < 0)
		return -EINVAL;
	for (unsigned b = WAVE_MEM_HIST_BUCKETS - 1; b >= 1; b--) {
		sum += hist[b];
		if (sum > n)
			return (int)b + 1;
	}
	return 1;
}

WAVE_API int wave_plugin_mem_cool(struct wave_plugin_ctx *ctx)
{
	struct wave_mem_state *st = state_of(ctx);

	if (!st)
		return -EINVAL;
	/* Halving a count moves it exactly one bucket down (bucket 1, a
	 * count of 1, to 0): the histogram shifts; the counts follow lazily. */
	for (uint32_t t = 0; t < st->n_tiers; t++) {
		uint64_t *h = st->tiers[t].hist;

		h[0] += h[1];
		memmove(&h[1], &h[2], (WAVE_MEM_HIST_BUCKETS - 2) * sizeof(*h));
		h[WAVE_MEM_HIST_BUCKETS - 1] = 0;
	}
	st->epoch++;
	st->stats.coolings++;
	return 0;
}

WAVE_API int wave_plugin_mem_scan(struct wave_plugin_ctx *ctx, uint32_t tier, uint64_t budget,
				  struct wave_mem_chunk_view *out, unsigned max)
{
	struct wave_mem_state *st = state_of(ctx);
	struct mem_tier *t;
	unsigned found = 0;

	if (!st || (!out && max))
		return -EINVAL;
	if (tier >= st->n_tiers)
		return -ERANGE;
	t = &st->tiers[tier];
	/* Each step visits one chunk, or passes one region slot: the work is
	 * bounded by @budget whatever the regions. */
	for (uint64_t step = 0; step < budget && found < max; step++) {
		struct mem_region *r = &st->regions[t->hand_slot];
		struct mem_chunk *c;

		if (!r->live || t->hand_index >= r->n) {
			t->hand_slot = (t->hand_slot + 1) % WAVE_MEM_STATE_MAX_REGIONS;
			t->hand_index = 0;
			continue;
		}
		c = &r->c[t->hand_index];
		if (c->tier == tier && !dec_pend_any(&c->pend))
			mem_chunk_view(st, c, (uint64_t)r->id << 32 | t->hand_index, &out[found++]);
		t->hand_index++;
	}
	return (int)found;
}

WAVE_API uint64_t wave_plugin_mem_now(const struct wave_plugin_ctx *ctx)
{
	const struct wave_mem_state *st = state_of(ctx);

	return st ? st->now : 0;
}
