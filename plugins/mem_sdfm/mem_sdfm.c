/* SPDX-License-Identifier: MIT */
/*
 * mem_sdfm: age-based cold-memory tiering, after Google's software-defined
 * far memory (Lagar-Cavilla et al., ASPLOS'19).
 *
 * A chunk of tier 0 not touched for the cold age T (host time) is cold and
 * is demoted proactively, room needed or not: what nobody uses does not
 * stay in fast memory. Chunks idle for victim_age_ms (shorter) stay
 * prestaged as victims (plugin_kit/mem_tiering.h): the least recently used
 * memory, which the host gives up first under pressure. Promotions - the far tier's faults, which
 * the host serves by itself, and this policy's own promotions of chunks of
 * a slower NUMA tier touched within T - are kept under a target rate, as
 * SDFM keeps its promotion rate under an objective: the policy promotes
 * only with tokens of a bucket that fills at the target rate and that
 * faults drain too, and every window it doubles T when promotions ran
 * over the target (demoting less) and lowers it by a quarter when they
 * ran under half of it (demoting more).
 *
 * Parameters (domains.mem.params):
 *   cold_age_ms    the first T (default 2000)
 *   min_age_ms, max_age_ms  T's bounds (default 100, 60000)
 *   promote_per_s  the promotion rate target (default 1000)
 *   window_ms      how often T is adapted (default 1000)
 *   victim_age_ms  idle time that makes a chunk a victim to prestage
 *                  (default 50): under pressure the host demotes these
 *                  before anything its own clock hand would pick
 *   max_moves      promotions and demotions per tick (default 64)
 *   victims        prestaged victims kept in flight (default 256)
 *   scan_budget    chunks of tier 0 looked at per tick (default 4096)
 *   refault_ms     chunks back by a fault within this many ms of
 *                  their demotion are in use: demoted or prestaged
 *                  after the others (default 20; 0: off)
 *   keep           hint the hot chunks of tier 0 to the host's clock
 *                  hand (KEEP), which spares them (default 1; 0: off)
 * Counters: cold_age_ms (T now; it only adds, so it shows the largest T).
 */
#include <errno.h>
#include <stdlib.h>

#include <wave/plugin.h>
#include <wave/plugin_kit/mem_tiering.h>
#include <wave/plugin_mem.h>

#define MS 1000000u

struct sdfm {
	uint64_t age_ns, min_age, max_age, rate, window, victim_age;
	uint64_t now;          /* host time of the latest tick */
	uint64_t refill_at;    /* host time the bucket was last filled */
	uint64_t window_at;    /* start of the current window, host time */
	uint64_t promotions;   /* in the current window: faults and our own */
	double tokens;         /* promotions allowed now (negative: owed) */
	int ctr_age;
	uint64_t age_shown;
	struct mt mt;
};

static bool cold(void *p, const struct wave_mem_chunk_view *c)
{
	const struct sdfm *s = p;

	return s->now >= c->last_ns + s->age_ns;
}

/* Under pressure the host takes victims first: chunks idle a while, even
 * not cold yet, rather than whatever its own clock hand finds. */
static bool victim(void *p, const struct wave_mem_chunk_view *c)
{
	const struct sdfm *s = p;

	return s->now >= c->last_ns + s->victim_age;
}

static bool hot(void *p, const struct wave_mem_chunk_view *c)
{
	return c->count > 0 && !cold(p, c);
}

static int sdfm_init(struct wave_plugin_ctx *ctx)
{
	struct sdfm *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->age_ns = wave_plugin_param_uint(ctx, "cold_age_ms", 2000) * MS;
	s->min_age = wave_plugin_param_uint(ctx, "min_age_ms", 100) * MS;
	s->max_age = wave_plugin_param_uint(ctx, "max_age_ms", 60000) * MS;
	s->rate = wave_plugin_param_uint(ctx, "promote_per_s", 1000);
	s->window = wave_plugin_param_uint(ctx, "window_ms", 1000) * MS;
	s->victim_age = wave_plugin_param_uint(ctx, "victim_age_ms", 50) * MS;
	mt_params(&s->mt, ctx);
	if (!s->min_age || s->min_age > s->age_ns || s->age_ns > s->max_age || !s->rate ||
	    !s->window) {
		wave_plugin_log(ctx, WAVE_LOG_ERROR,
				"need 0 < min_age_ms <= cold_age_ms <= max_age_ms, and "
				"promote_per_s, window_ms > 0");
		free(s);
		return -EINVAL;
	}
	s->ctr_age = wave_plugin_counter(ctx, "cold_age_ms");
	s->mt.policy = s;
	s->mt.hot = hot;
	s->mt.cold = cold;
	s->mt.victim = victim;
	s->mt.proactive = true;
	wave_plugin_set_priv(ctx, s);
	return 0;
}

static void sdfm_fini(struct wave_plugin_ctx *ctx)
{
	free(wave_plugin_priv(ctx));
}

/* Each window: T up when promotions ran over the target, down when they
 * ran well under it. */
static void adapt(struct sdfm *s, struct wave_plugin_ctx *ctx, uint64_t now)
{
	double rate;

	if (!s->window_at || now < s->window_at + s->window) {
		s->window_at = s->window_at ? s->window_at : now;
		return;
	}
	rate = (double)s->promotions * 1e9 / (double)(now - s->window_at);
	if (rate > (double)s->rate)
		s->age_ns = s->age_ns * 2 < s->max_age ? s->age_ns * 2 : s->max_age;
	else if (rate < (double)s->rate / 2)
		s->age_ns = s->age_ns - s->age_ns / 4 > s->min_age ? s->age_ns - s->age_ns / 4
								    : s->min_age;
	s->promotions = 0;
	s->window_at = now;
	if (s->age_ns / MS > s->age_shown) {
		wave_plugin_counter_add(ctx, s->ctr_age, s->age_ns / MS - s->age_shown);
		s->age_shown = s->age_ns / MS;
	}
}

static int sdfm_tick(struct wave_plugin_ctx *ctx, uint64_t now_ns)
{
	struct sdfm *s = wave_plugin_priv(ctx);
	uint64_t before = s->mt.promoted;
	double cap = (double)s->mt.max_moves;

	/* Tokens accrue with host time, up to one tick's worth of moves. */
	if (s->refill_at && now_ns > s->refill_at)
		s->tokens += (double)(now_ns - s->refill_at) * (double)s->rate / 1e9;
	s->tokens = s->tokens > cap ? cap : s->tokens;
	s->refill_at = now_ns;
	s->now = now_ns;
	adapt(s, ctx, now_ns);
	mt_tick(&s->mt, ctx, s->tokens > 0 ? (unsigned)s->tokens : 0);
	s->tokens -= (double)(s->mt.promoted - before);
	s->tokens = s->tokens < -cap ? -cap : s->tokens; /* a bounded debt */
	s->promotions += s->mt.promoted - before;
	return 0;
}

/* A fault is a promotion the host made: it counts against the target. */
static int sdfm_fault(struct wave_plugin_ctx *ctx, const struct wave_mem_chunk_view *c)
{
	struct sdfm *s = wave_plugin_priv(ctx);

	s->tokens -= 1;
	s->promotions++;
	return 0;
}

static int sdfm_samples(struct wave_plugin_ctx *ctx, const struct wave_mem_chunk_view *c,
			unsigned n)
{
	struct sdfm *s = wave_plugin_priv(ctx);

	for (unsigned i = 0; i < n; i++)
		mt_note(&s->mt, &c[i]);
	return 0;
}

static int sdfm_committed(struct wave_plugin_ctx *ctx, const struct wave_mem_chunk_view *c,
			  uint16_t decision)
{
	mt_outcome(&((struct sdfm *)wave_plugin_priv(ctx))->mt, decision);
	return 0;
}

static int sdfm_aborted(struct wave_plugin_ctx *ctx, const struct wave_mem_chunk_view *c,
			uint64_t id, uint16_t decision, uint32_t tier, unsigned result)
{
	mt_outcome(&((struct sdfm *)wave_plugin_priv(ctx))->mt, decision);
	return 0;
}

static const struct wave_mem_ops sdfm_ops = {
	.size = sizeof(struct wave_mem_ops),
	.tick = sdfm_tick,
	.samples = sdfm_samples,
	.fault = sdfm_fault,
	.txn_committed = sdfm_committed,
	.txn_aborted = sdfm_aborted,
	.fault_weight = 0, /* ages, not counts: a fault is a touch */
};

WAVE_PLUGIN_DEFINE(mem_sdfm, WAVE_DOMAIN_MEM, "1.0.0",
		   "age-based cold-memory tiering (SDFM): demote what was not touched for T, "
		   "promotions under a rate target",
		   sdfm_init, sdfm_fini, &sdfm_ops)
