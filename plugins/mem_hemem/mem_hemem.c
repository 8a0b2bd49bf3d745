/* SPDX-License-Identifier: MIT */
/*
 * mem_hemem: HeMem-style tiering (Raybuck et al., SOSP'21) - fixed hot and
 * cold thresholds on sampled access counts, with cooling.
 *
 * A chunk is hot when its access count reaches hot_threshold, cold below
 * it. When a sampled chunk's count has reached cooling_threshold, every
 * count is halved at the next tick (in O(1) by the state; once per tick
 * however many chunks reached it, or a burst of samples would halve the
 * counts several times over), so the counts measure recent accesses. Hot
 * chunks of slower tiers are promoted into tier 0; when tier 0 is full,
 * cold chunks of tier 0 are demoted to make room; cold chunks stay
 * prestaged as victims (plugin_kit/mem_tiering.h).
 *
 * Parameters (domains.mem.params):
 *   hot_threshold      accesses that make a chunk hot (default 8)
 *   cooling_threshold  a count that triggers cooling (default 18; more
 *                      than hot_threshold)
 *   max_moves          promotions and demotions per tick (default 64)
 *   victims            prestaged victims kept in flight (default 256)
 *   scan_budget        chunks of tier 0 looked at per tick (default 4096)
 *   refault_ms         chunks back by a fault within this many ms of
 *                      their demotion are in use: demoted or prestaged
 *                      after the others (default 20; 0: off)
 *   keep               hint the hot chunks of tier 0 to the host's clock
 *                      hand (KEEP), which spares them (default 1; 0: off)
 */
#include <errno.h>
#include <stdlib.h>

#include <wave/plugin.h>
#include <wave/plugin_kit/mem_tiering.h>
#include <wave/plugin_mem.h>

struct hemem {
	uint32_t hot, cooling;
	bool cool_due; /* a count reached the cooling threshold */
	struct mt mt;
};

static bool hot(void *p, const struct wave_mem_chunk_view *c)
{
	return c->count >= ((struct hemem *)p)->hot;
}

static bool cold(void *p, const struct wave_mem_chunk_view *c)
{
	return c->count < ((struct hemem *)p)->hot;
}

static int hemem_init(struct wave_plugin_ctx *ctx)
{
	struct hemem *h = calloc(1, sizeof(*h));

	if (!h)
		return -ENOMEM;
	h->hot = (uint32_t)wave_plugin_param_uint(ctx, "hot_threshold", 8);
	h->cooling = (uint32_t)wave_plugin_param_uint(ctx, "cooling_threshold", 18);
	mt_params(&h->mt, ctx);
	if (h->hot == 0 || h->cooling <= h->hot) {
		wave_plugin_log(ctx, WAVE_LOG_ERROR, "need 0 < hot_threshold < cooling_threshold");
		free(h);
		return -EINVAL;
	}
	h->mt.policy = h;
	h->mt.hot = hot;
	h->mt.cold = cold;
	wave_plugin_set_priv(ctx, h);
	return 0;
}

static void hemem_fini(struct wave_plugin_ctx *ctx)
{
	free(wave_plugin_priv(ctx));
}

static int hemem_tick(struct wave_plugin_ctx *ctx, uint64_t now_ns)
{
	struct hemem *h = wave_plugin_priv(ctx);

	(void)now_ns;
	if (h->cool_due)
		wave_plugin_mem_cool(ctx);
	h->cool_due = false;
	return mt_tick(&h->mt, ctx, h->mt.max_moves);
}

static int hemem_samples(struct wave_plugin_ctx *ctx, const struct wave_mem_chunk_view *c,
			 unsigned n)
{
	struct hemem *h = wave_plugin_priv(ctx);

	for (unsigned i = 0; i < n; i++) {
		mt_note(&h->mt, &c[i]);
		h->cool_due |= c[i].count >= h->cooling;
	}
	return 0;
}

static int hemem_committed(struct wave_plugin_ctx *ctx, const struct wave_mem_chunk_view *c,
			   uint16_t decision)
{
	mt_outcome(&((struct hemem *)wave_plugin_priv(ctx))->mt, decision);
	return 0;
}

static int hemem_aborted(struct wave_plugin_ctx *ctx, const struct wave_mem_chunk_view *c,
			 uint64_t id, uint16_t decision, uint32_t tier, unsigned result)
{
	mt_outcome(&((struct hemem *)wave_plugin_priv(ctx))->mt, decision);
	return 0;
}

static const struct wave_mem_ops hemem_ops = {
	.size = sizeof(struct wave_mem_ops),
	.tick = hemem_tick,
	.samples = hemem_samples,
	.txn_committed = hemem_committed,
	.txn_aborted = hemem_aborted,
	/* A fixed threshold: a fault is a touch, not an access, or steady
	 * writes of cold chunks make every chunk hot (plugin_mem.h). */
	.fault_weight = 0,
};

WAVE_PLUGIN_DEFINE(mem_hemem, WAVE_DOMAIN_MEM, "1.0.0",
		   "HeMem-style tiering: hot and cold thresholds with cooling", hemem_init,
		   hemem_fini, &hemem_ops)
