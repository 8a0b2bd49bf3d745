/* SPDX-License-Identifier: MIT */
/*
 * mem_memtis: Memtis-style tiering (Lee et al., SOSP'23) - the hot
 * threshold adapts to the access histogram so that the hot set fills the
 * fast tier.
 *
 * At every tick the threshold is the lowest histogram bucket whose chunks,
 * with every hotter one's, fit into tier 0's capacity
 * (wave_plugin_mem_fit_bucket()): chunks at or above it are hot, the rest
 * cold. A skewed workload gets a high threshold (only the hottest fit), a
 * flat one a low one. The counts are halved once the host has reported
 * cool_reports chunks' accesses (SAMPLES entries) per chunk of tier 0's
 * capacity since the last halving, so the histogram follows the workload
 * as it moves. Measured in reports, as Memtis's cooling period is in
 * samples, not in time: the memory holds as much information whatever the
 * workload's speed. With a fixed 16 ticks (160 ms), a Zipfian workload's
 * chunks at the edge of the hot set (seen once every two seconds) had
 * counts of 0 to 2 and could not be ranked, while GUPS, reported on ten
 * times as many chunks a tick, is cooled as often as before
 * (BENCHMARKS.md). Promotion, demotion for room and prestaged victims as
 * in plugin_kit/mem_tiering.h.
 *
 * Parameters (domains.mem.params):
 *   cool_reports reports between coolings, per chunk of tier 0's capacity
 *                (default 16; 0: by ticks only)
 *   cool_ticks   ticks between coolings, whatever the reports (default
 *                0: never by ticks)
 *   max_moves    promotions and demotions per tick (default 64)
 *   victims      prestaged victims kept in flight (default 256)
 *   scan_budget  chunks of tier 0 looked at per tick (default 4096)
 *   refault_ms   chunks back by a fault within this many ms of
 *                their demotion are in use: demoted or prestaged
 *                after the others (default 20; 0: off)
 *   keep         hint the hot chunks of tier 0 to the host's clock
 *                hand (KEEP), which spares them (default 1; 0: off)
 */
#include <errno.h>
#include <stdlib.h>

#include <wave/plugin.h>
#include <wave/plugin_kit/mem_tiering.h>
#include <wave/plugin_mem.h>

struct memtis {
	unsigned threshold; /* the lowest hot bucket (>= 1) */
	uint64_t cool_ticks, ticks;
	uint64_t cool_reports, reports; /* per chunk of tier 0; since cooling */
	int ctr_threshold;
	struct mt mt;
};

static bool hot(void *p, const struct wave_mem_chunk_view *c)
{
	return c->bucket >= ((struct memtis *)p)->threshold;
}

static bool cold(void *p, const struct wave_mem_chunk_view *c)
{
	return !hot(p, c);
}

static int memtis_init(struct wave_plugin_ctx *ctx)
{
	struct memtis *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->cool_ticks = wave_plugin_param_uint(ctx, "cool_ticks", 0);
	t->cool_reports = wave_plugin_param_uint(ctx, "cool_reports", 16);
	mt_params(&t->mt, ctx);
	if (t->cool_ticks == 0 && t->cool_reports == 0) {
		wave_plugin_log(ctx, WAVE_LOG_ERROR, "cool_ticks or cool_reports must be set");
		free(t);
		return -EINVAL;
	}
	t->threshold = WAVE_MEM_HIST_BUCKETS; /* nothing is hot before a tick */
	t->ctr_threshold = wave_plugin_counter(ctx, "hot_bucket");
	t->mt.policy = t;
	t->mt.hot = hot;
	t->mt.cold = cold;
	wave_plugin_set_priv(ctx, t);
	return 0;
}

static void memtis_fini(struct wave_plugin_ctx *ctx)
{
	free(wave_plugin_priv(ctx));
}

/* The threshold that fills tier 0 with the hottest chunks. */
static void adapt(struct memtis *t, struct wave_plugin_ctx *ctx)
{
	struct wave_mem_tier_view fast;
	int b;

	if (wave_plugin_mem_tier(ctx, 0, &fast) < 0)
		return;
	b = wave_plugin_mem_fit_bucket(ctx, fast.capacity);
	if (b <= 0)
		return;
	/* Published as a counter that only adds: the delta to the new value. */
	if ((unsigned)b > t->threshold)
		wave_plugin_counter_add(ctx, t->ctr_threshold, (unsigned)b - t->threshold);
	t->threshold = (unsigned)b;
}

/* Is a cooling due: cool_ticks ticks, or cool_reports reports per chunk
 * of tier 0's capacity, since the last one? */
static bool cool_due(struct memtis *t, struct wave_plugin_ctx *ctx)
{
	struct wave_mem_tier_view fast;
	uint64_t cap = 1;

	if (t->cool_ticks && ++t->ticks >= t->cool_ticks)
		return true;
	if (!t->cool_reports)
		return false;
	if (wave_plugin_mem_tier(ctx, 0, &fast) == 0 && fast.capacity != WAVE_MEM_CAP_NONE &&
	    fast.capacity)
		cap = fast.capacity;
	return t->reports / cap >= t->cool_reports;
}

static int memtis_tick(struct wave_plugin_ctx *ctx, uint64_t now_ns)
{
	struct memtis *t = wave_plugin_priv(ctx);

	(void)now_ns;
	if (cool_due(t, ctx)) {
		wave_plugin_mem_cool(ctx);
		t->ticks = t->reports = 0;
	}
	adapt(t, ctx);
	return mt_tick(&t->mt, ctx, t->mt.max_moves);
}

static int memtis_samples(struct wave_plugin_ctx *ctx, const struct wave_mem_chunk_view *c,
			  unsigned n)
{
	struct memtis *t = wave_plugin_priv(ctx);

	t->reports += n;
	for (unsigned i = 0; i < n; i++)
		mt_note(&t->mt, &c[i]);
	return 0;
}

static int memtis_committed(struct wave_plugin_ctx *ctx, const struct wave_mem_chunk_view *c,
			    uint16_t decision)
{
	mt_outcome(&((struct memtis *)wave_plugin_priv(ctx))->mt, decision);
	return 0;
}

static int memtis_aborted(struct wave_plugin_ctx *ctx, const struct wave_mem_chunk_view *c,
			  uint64_t id, uint16_t decision, uint32_t tier, unsigned result)
{
	mt_outcome(&((struct memtis *)wave_plugin_priv(ctx))->mt, decision);
	return 0;
}

static const struct wave_mem_ops memtis_ops = {
	.size = sizeof(struct wave_mem_ops),
	.tick = memtis_tick,
	.samples = memtis_samples,
	.txn_committed = memtis_committed,
	.txn_aborted = memtis_aborted,
	/* The threshold is sized from every tier's counts, and a far chunk's
	 * only accesses seen are its faults: one access each. Measured in
	 * check_mem_policies (far host): with 0, tier 0 serves 95.2 % instead
	 * of 95.8 %, and the host's clock hand does most of the relief. */
	.fault_weight = 1,
};

WAVE_PLUGIN_DEFINE(mem_memtis, WAVE_DOMAIN_MEM, "1.0.0",
		   "Memtis-style tiering: a histogram-adapted hot threshold fills the fast tier",
		   memtis_init, memtis_fini, &memtis_ops)
