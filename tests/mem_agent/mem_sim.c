/* SPDX-License-Identifier: MIT */
/* The simulated mem host (see mem_sim.h). */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <wave/plugin_mem.h>

#include "decision/txn.h"
#include "domains/mem/mem_impl.h"
#include "replay/replay.h"
#include "mem_sim.h"

#define R1 1u
#define R2 2u
#define STEP_NS 10000000u

static int to_agent(struct msim *s, struct wave_mem_msg *d)
{
	struct wave_msg m;
	int ret = wave_mem_msg_encode(d, 2, &m);

	return ret < 0 ? ret : replay_q_push(&s->to_agent, &m);
}

/* ---- chunks ------------------------------------------------------------ */

static uint64_t chunk_id(const struct msim *s, uint64_t g)
{
	return g < s->split ? ((uint64_t)R1 << 32) | g : ((uint64_t)R2 << 32) | (g - s->split);
}

/* The chunk number of @id, or UINT64_MAX for none of the host's. */
static uint64_t chunk_g(const struct msim *s, uint64_t id)
{
	uint64_t i = id & 0xffffffffu;

	if (id >> 32 == R1 && i < s->split)
		return i;
	if (id >> 32 == R2 && i < s->n - s->split)
		return s->split + i;
	return UINT64_MAX;
}

/* As the library's host: a chunk that leaves tier 0 loses what the hand
 * knew of it and notes the departures so far. */
static void move(struct msim *s, uint64_t g, uint32_t tier)
{
	s->used[s->c[g].tier]--;
	s->used[tier]++;
	s->c[g].tier = tier;
	s->c[g].seq++;
	if (tier == 1) {
		s->c[g].cs &= ~(CS_LIVES | CS_SEEN);
		s->c[g].left = ++s->departed;
	}
}

/* KEEP, as mem_keep() of the library: the chunk, where the hint says and
 * within the sweep's bound, gets all its lives. */
static int keep(struct msim *s, uint64_t g, uint64_t seq, uint32_t tier)
{
	struct msim_chunk *c = &s->c[g];
	bool ok = c->seq == seq && c->tier == tier && tier == 0 &&
		  ((c->cs & CS_LIVES) == CS_LIVES || s->kept < s->fast_cap / 4 * 3);

	if (ok && (c->cs & CS_LIVES) != CS_LIVES) {
		c->cs |= CS_LIVES;
		s->kept++;
	}
	ok ? s->keeps++ : s->keeps_refused++;
	return 0;
}

/* ---- decisions from the agent ------------------------------------------ */

static int outcome(struct msim *s, uint16_t decision, uint64_t g, uint64_t seq, uint32_t tier,
		   unsigned result)
{
	struct wave_mem_msg d = { .type = WAVE_MEM_OUTCOME, .decision = decision,
				  .chunk = chunk_id(s, g), .seq = seq, .tier = tier,
				  .result = (uint8_t)result, .now_ns = s->now };

	if (result == WAVE_COMMITTED) {
		d.new_seq = s->c[g].seq;
		s->commits++;
	} else {
		s->aborts[result]++;
	}
	return to_agent(s, &d);
}

/* The transaction, by the library's rule: commit moving @g to @tier if it
 * is still at @seq, not there already, and @tier has room. */
static int commit(struct msim *s, uint16_t decision, uint64_t g, uint64_t seq, uint32_t tier)
{
	bool room = tier != 0 || s->used[0] < s->fast_cap;
	unsigned r = txn_check(true, s->c[g].seq, seq, s->c[g].tier != tier, room);

	if (r == WAVE_COMMITTED)
		move(s, g, tier);
	return outcome(s, decision, g, seq, tier, r);
}

static int do_decision(struct msim *s, const struct wave_msg *m)
{
	struct wave_mem_msg d;
	uint64_t g;
	int ret = wave_mem_msg_decode(m, 2, &d);

	if (ret < 0)
		return ret;
	if ((g = chunk_g(s, d.chunk)) == UINT64_MAX)
		return -EPROTO; /* the state model let no such decision out */
	switch (d.type) {
	case WAVE_MEM_MIGRATE:
	case WAVE_MEM_PREFETCH: /* at the host's own pace: now */
		return commit(s, d.type, g, d.seq, d.tier);
	case WAVE_MEM_KEEP:
		return keep(s, g, d.seq, d.tier);
	case WAVE_MEM_VICTIM:
		if (s->n_victims == sizeof(s->victims) / sizeof(s->victims[0]))
			return outcome(s, d.type, g, d.seq, d.tier, WAVE_ABORT_BUSY);
		s->victims[s->n_victims].g = g;
		s->victims[s->n_victims++].seq = d.seq;
		return 0;
	default:
		return -EPROTO;
	}
}

/* ---- pressure ---------------------------------------------------------- */

/* The library's CLOCK (mem_txn.c's clock_pick()) over tier 0, but for
 * chunk @fresh (just faulted back: anti-thrash): leaves the hand on the
 * victim. False when five sweeps found none. */
static bool clock_pick(struct msim *s, uint64_t fresh)
{
	for (uint64_t step = 0; step < 5 * s->n; step++) {
		struct msim_chunk *c;

		if (++s->hand == s->n) {
			s->hand = 0;
			s->kept = 0; /* a new sweep: the hints' bound starts again */
		}
		c = &s->c[s->hand];
		if (c->tier == 0 && s->hand != fresh && !mem_clock_pass(c->cs, &c->cs))
			return true;
	}
	return false;
}

/* Tier 0 went over its capacity (a fault of @fresh): demote the prestaged
 * victims, in order (those touched since are stale, as in the library:
 * mem_victim_untouched()), then chunks the host's own clock hand finds. */
static int relieve(struct msim *s, uint64_t fresh)
{
	int ret = 0;

	while (s->used[0] > s->fast_cap && !ret) {
		if (s->n_victims) {
			uint64_t g = s->victims[0].g, seq = s->victims[0].seq;

			s->n_victims--;
			memmove(&s->victims[0], &s->victims[1],
				s->n_victims * sizeof(s->victims[0]));
			if (s->c[g].seq == seq && !mem_victim_untouched(s->c[g].cs)) {
				ret = outcome(s, WAVE_MEM_VICTIM, g, seq, 1, WAVE_ABORT_STALE);
				continue;
			}
			s->victims_used++;
			ret = commit(s, WAVE_MEM_VICTIM, g, seq, 1);
			continue;
		}
		if (!clock_pick(s, fresh))
			return -EDEADLK; /* every chunk spared five sweeps: cannot be */
		move(s, s->hand, 1);
		s->local_demotions++;
		struct wave_mem_msg d = { .type = WAVE_MEM_CHUNK_CHANGED,
					  .chunk = chunk_id(s, s->hand),
					  .seq = s->c[s->hand].seq, .tier = 1, .now_ns = s->now };
		ret = to_agent(s, &d);
	}
	return ret;
}

/* A touch of far chunk @g: it comes back into tier 0 (a fault is never
 * refused), the agent is told, and tier 0 is relieved. */
static int fault(struct msim *s, uint64_t g)
{
	int ret;

	/* A fault is an access; a refault makes the chunk active. */
	s->c[g].cs |= CS_ACCESSED;
	if (s->c[g].left && s->departed - s->c[g].left < s->fast_cap / 8)
		s->c[g].cs |= CS_LIVES;
	move(s, g, 0);
	s->faults++;
	struct wave_mem_msg d = { .type = WAVE_MEM_FAULT, .chunk = chunk_id(s, g),
				  .seq = s->c[g].seq, .tier = 0, .now_ns = s->now };
	if ((ret = to_agent(s, &d)) < 0)
		return ret;
	return relieve(s, g);
}

/* ---- running ----------------------------------------------------------- */

static void state_take(void *user, const struct wave_msg *m)
{
	struct msim *s = user;

	if (wave_mem_state_apply(s->st, s->ctx, m) < 0)
		s->agent_errors++;
}

static int host_take(void *user, const struct wave_msg *m)
{
	return do_decision(user, m);
}

/* Delivers messages both ways, in order, until there are none. */
static int run(struct msim *s)
{
	return replay_settle(&s->to_agent, &s->to_host, state_take, host_take, s, UINT_MAX);
}

static uint64_t rnd(struct msim *s)
{
	/* xorshift64*: deterministic, good enough to pick chunks. */
	s->rng ^= s->rng >> 12;
	s->rng ^= s->rng << 25;
	s->rng ^= s->rng >> 27;
	return s->rng * UINT64_C(2685821657736338717);
}

/* The chunk behind hot-set position @x: an odd multiplier scatters the
 * hot set over both regions (n is a power of two). */
static uint64_t scatter(const struct msim *s, uint64_t x)
{
	return (x * UINT64_C(0x9e3779b1)) & (s->n - 1);
}

/* Every chunk touched this step, as SAMPLES of up to 8 chunks of one
 * region: @unit, one access each. */
static int report(struct msim *s, bool unit)
{
	struct wave_mem_msg d = { .type = WAVE_MEM_SAMPLES };
	int ret = 0;

	for (uint64_t g = 0; g < s->n && !ret; g++) {
		uint32_t region = g < s->split ? R1 : R2;

		if ((d.n && d.region != region) || d.n == WAVE_MEM_SAMPLES_MAX) {
			ret = to_agent(s, &d);
			d = (struct wave_mem_msg){ .type = WAVE_MEM_SAMPLES };
		}
		if (!s->c[g].acc || ret)
			continue;
		d.region = region;
		d.index[d.n] = (uint32_t)(chunk_id(s, g) & 0xffffffffu);
		d.accesses[d.n++] = (uint8_t)(unit ? 1 : s->c[g].acc > 255 ? 255 : s->c[g].acc);
		s->c[g].acc = 0;
	}
	return !ret && d.n ? to_agent(s, &d) : ret;
}

/* A rank in 0..@n-1 from the random @r: (n + 1)^u - 1 for u uniform in
 * [0, 1) is rank x with a probability of ln((x + 2) / (x + 1)) / ln(n + 1),
 * about 1 / ((x + 1) ln n): Zipf's law (theta 1). */
static uint64_t zipf_rank(uint64_t n, uint64_t r)
{
	double u = (double)(r >> 11) * 0x1.0p-53;

	return (uint64_t)(exp(u * log((double)n + 1)) - 1) % n;
}

int msim_step(struct msim *s, const struct msim_load *l)
{
	struct wave_mem_msg tick = { .type = WAVE_MEM_TICK };
	int ret;

	for (unsigned w = 0; w < l->cold_writes; w++) {
		uint64_t cold = s->n - l->hot - l->warm;
		uint64_t g = scatter(s, l->warm_first + l->warm + rnd(s) % cold);

		if (s->far && s->c[g].tier != 0 && (ret = fault(s, g)) < 0)
			return ret;
	}
	for (unsigned a = 0; a < l->touches; a++) {
		uint64_t r = rnd(s), g;

		if (l->zipf)
			g = scatter(s, l->hot_first + zipf_rank(s->n, r));
		else
			g = r % 100 < l->hot_pct ? scatter(s, l->hot_first + (r >> 8) % l->hot)
						 : scatter(s, l->warm_first + (r >> 8) % l->warm);
		if (s->c[g].tier == 0) {
			s->fast++;
			s->c[g].acc++;
			s->c[g].cs |= CS_ACCESSED;
		} else if (!s->far) {
			s->slow++;
			s->c[g].acc++;
		} else {
			s->slow++; /* served by the fault; seen by the agent as one */
			if ((ret = fault(s, g)) < 0)
				return ret;
		}
	}
	if ((ret = report(s, l->unit_samples)) < 0)
		return ret;
	tick.now_ns = s->now;
	if ((ret = to_agent(s, &tick)) < 0 || (ret = run(s)) < 0)
		return ret;
	s->now += STEP_NS;
	return 0;
}

/* ---- life cycle -------------------------------------------------------- */

int msim_create(struct msim *s, uint64_t n, uint64_t fast_cap, bool far, struct wave_plugin *p,
		const struct wave_params *params)
{
	struct wave_mem_msg setup = { .type = WAVE_MEM_SETUP, .n = 2,
				      .kind = { WAVE_MEM_KIND_NUMA,
						far ? WAVE_MEM_KIND_FAR : WAVE_MEM_KIND_NUMA },
				      .capacity = { (uint32_t)fast_cap, WAVE_MEM_CAP_NONE } };
	struct wave_mem_msg add = { .type = WAVE_MEM_REGION_ADD, .chunk_size = 65536, .seq = 1 };
	struct wave_msg m;
	int ret;

	memset(s, 0, sizeof(*s));
	if (n & (n - 1) || fast_cap == 0 || fast_cap >= n)
		return -EINVAL;
	s->n = n;
	s->fast_cap = s->split = fast_cap;
	s->far = far;
	s->rng = 0x2545f4914f6cdd1dull;
	s->now = STEP_NS;
	s->used[0] = fast_cap;
	s->used[1] = n - fast_cap;
	if (!(s->c = calloc(n, sizeof(*s->c))))
		return -ENOMEM;
	for (uint64_t g = 0; g < n; g++) {
		s->c[g].seq = 1;
		s->c[g].tier = g < fast_cap ? 0 : 1;
	}
	if ((ret = wave_mem_msg_encode(&setup, 2, &m)) < 0 ||
	    (ret = wave_mem_state_create(&m, 0, &s->st)) < 0 ||
	    (ret = replay_plugin_start(p, params, s->st, &s->to_host, &s->ctx, NULL)) < 0)
		return ret;
	add.region = R1, add.count = fast_cap, add.tier = 0;
	if ((ret = to_agent(s, &add)) < 0)
		return ret;
	add.region = R2, add.count = n - fast_cap, add.tier = 1;
	if ((ret = to_agent(s, &add)) < 0)
		return ret;
	return run(s);
}

void msim_destroy(struct msim *s)
{
	wave_plugin_ctx_destroy(s->ctx);
	wave_mem_state_destroy(s->st);
	free(s->c);
	replay_q_free(&s->to_agent);
	replay_q_free(&s->to_host);
}

int msim_swap(struct msim *s, struct wave_plugin *p, const struct wave_params *params)
{
	int ret;

	wave_plugin_ctx_destroy(s->ctx);
	s->ctx = NULL;
	if ((ret = replay_plugin_start(p, params, s->st, &s->to_host, &s->ctx, NULL)) < 0 ||
	    (ret = wave_mem_state_replay(s->st, s->ctx)) < 0)
		return ret;
	return run(s);
}

int msim_check(struct msim *s)
{
	struct wave_mem_tier_view t;

	if (s->agent_errors)
		return -1;
	for (uint64_t g = 0; g < s->n; g++) {
		struct wave_mem_chunk_view v;

		if (wave_plugin_mem_chunk(s->ctx, chunk_id(s, g), &v) < 0 ||
		    v.tier != s->c[g].tier || v.seq != s->c[g].seq)
			return -2;
	}
	for (uint32_t i = 0; i < 2; i++)
		if (wave_plugin_mem_tier(s->ctx, i, &t) < 0 || t.used != s->used[i])
			return -3;
	return 0;
}
