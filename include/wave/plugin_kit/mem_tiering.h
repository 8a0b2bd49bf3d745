/* SPDX-License-Identifier: MIT */
/**
 * @file plugin_kit/mem_tiering.h
 * Plugin kit, for authors of mem-domain policies: the loop the built-in
 * tiering policies (mem_hemem, mem_memtis, mem_sdfm) share. A policy says
 * which chunks are hot and which are cold; the kit keeps the fastest tier
 * (tier 0) filled with hot chunks: it promotes hot chunks of slower tiers
 * into it, demotes cold ones out of it to make room (or always, for a
 * proactive policy), keeps a number of cold chunks (or of the chunks the
 * policy's victim test picks; never one it hints to keep) prestaged as
 * victims on the host, so the host can free fast memory under pressure
 * without a round trip, and tells the host which chunks of tier 0 are hot
 * (KEEP hints), so that the host's own CLOCK, which picks most victims,
 * spares them.
 *
 * Header only: every function is static inline and calls libwave only
 * through the plugin functions of <wave/plugin_mem.h>, so it adds nothing
 * to link and nothing to the plugin ABI.
 *
 * Work per call is bounded: promotions and demotions per tick by
 * @max_moves, the chunks the scan hand looks at by @scan_budget, and the
 * candidates remembered between ticks by MT_CANDIDATES (a candidate is a
 * hint: it is checked again against the state before it is promoted, and
 * dropped when the ring is full).
 */
#ifndef WAVE_PLUGIN_KIT_MEM_TIERING_H
#define WAVE_PLUGIN_KIT_MEM_TIERING_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <wave/plugin.h>
#include <wave/plugin_mem.h>

/** Promotion candidates remembered between ticks. */
#define MT_CANDIDATES 4096u
/** Cold chunks one tick's scan collects, at most. */
#define MT_SCAN_MAX 256u
/** Classes of access counts the keep pass tells apart (mt_keep_class()). */
#define MT_KEEP_COUNTS 128u
/** Scans of MT_SCAN_MAX chunks one tick's keep pass makes, at most. */
#define MT_KEEP_ROUNDS 16u

struct mt {
	/* Set by the policy. */
	void *policy;
	bool (*hot)(void *policy, const struct wave_mem_chunk_view *c);
	bool (*cold)(void *policy, const struct wave_mem_chunk_view *c);
	/* Optional: which chunks of tier 0 may be prestaged as victims
	 * (default: the cold ones). */
	bool (*victim)(void *policy, const struct wave_mem_chunk_view *c);
	bool proactive;       /* demote cold chunks even when there is room */
	/* Set by mt_params(), or by the policy. */
	unsigned max_moves;   /* promotions and demotions per tick */
	unsigned max_victims; /* prestaged victims kept in flight */
	uint64_t scan_budget; /* chunks the hand looks at per tick */
	uint32_t refault_ms;  /* a chunk back by a fault this soon after it left
				 (its view's refault_ms) is in use: 0 for none */
	bool keep;            /* hint the most counted chunks of tier 0 (KEEP) */
	/* Kept by the kit. */
	unsigned victims;     /* victims in flight */
	unsigned cand_head, cand_len;
	uint64_t cand[MT_CANDIDATES];
	uint64_t promoted, demoted, staged; /* decisions sent, for counters */
	/* The keep pass (mt_keep()): the classes of count (mt_keep_class())
	 * of the chunks of tier 0 seen in this pass round it, and the class
	 * the last pass found that the chunks to keep reach (0: none yet). */
	uint64_t keep_hist[MT_KEEP_COUNTS], keep_seen;
	uint32_t keep_min;
};

/**
 * mt_params() - the parameters every policy of the kit takes: max_moves
 * (default 64), victims (256), scan_budget (4096), refault_ms (20) and
 * keep (1).
 *
 * A chunk that refaulted, back by a fault within refault_ms of its
 * demotion, was demoted for want of seen accesses, not for being cold
 * (the host sees a few of them): while it stays in tier 0 the kit demotes
 * it, or prestages it as a victim, only after every other candidate of
 * the same kind its scan found (the host's clock hand spares it for a
 * while too). In GUPS at 16 MiB fast, hot chunks came back within 20 ms,
 * cold ones after 200 ms on average (BENCHMARKS.md); 0 turns it off.
 *
 * With keep (the default), the most counted chunks of tier 0, three
 * quarters of its capacity, are hinted to the host each time the kit's
 * keep pass goes round the tier (mt_keep(), every few ticks), so that the
 * host's CLOCK spares them and its hand churns the rest, as the oracle
 * placement does. The CLOCK picks most victims (the prestaged ones are a
 * few hundred against tens of thousands of demotions a second) and sees
 * only the accesses it samples or is told of, which are recent; the
 * counts see a chunk's accesses over many ticks, which a skewed workload
 * (Zipf) rewards. 0 turns it off.
 */
static inline void mt_params(struct mt *m, struct wave_plugin_ctx *ctx)
{
	m->max_moves = (unsigned)wave_plugin_param_uint(ctx, "max_moves", 64);
	m->max_victims = (unsigned)wave_plugin_param_uint(ctx, "victims", 256);
	m->scan_budget = wave_plugin_param_uint(ctx, "scan_budget", 4096);
	m->refault_ms = (uint32_t)wave_plugin_param_uint(ctx, "refault_ms", 20);
	m->keep = wave_plugin_param_uint(ctx, "keep", 1) != 0;
}

/* Did @c come back by a refault (see mt_params())? */
static inline bool mt_refaulted(const struct mt *m, const struct wave_mem_chunk_view *c)
{
	return c->refault_ms && c->refault_ms <= m->refault_ms;
}

static inline void mt_push(struct mt *m, uint64_t id, bool front)
{
	if (m->cand_len == MT_CANDIDATES)
		return; /* a hint: the chunk is seen again when next touched */
	if (front) {
		m->cand_head = (m->cand_head + MT_CANDIDATES - 1) % MT_CANDIDATES;
		m->cand[m->cand_head] = id;
	} else {
		m->cand[(m->cand_head + m->cand_len) % MT_CANDIDATES] = id;
	}
	m->cand_len++;
}

static inline uint64_t mt_pop(struct mt *m)
{
	uint64_t id = m->cand[m->cand_head];

	m->cand_head = (m->cand_head + 1) % MT_CANDIDATES;
	m->cand_len--;
	return id;
}

/** mt_note() - @c was touched: remember it if it is a hot chunk of a slow
 *  tier with nothing in flight. */
static inline void mt_note(struct mt *m, const struct wave_mem_chunk_view *c)
{
	if (c->tier > 0 && !c->pending && m->hot(m->policy, c))
		mt_push(m, c->id, false);
}

/** mt_outcome() - a decision of type @decision ended (call it from
 *  txn_committed and txn_aborted). */
static inline void mt_outcome(struct mt *m, uint16_t decision)
{
	if (decision == WAVE_MEM_VICTIM && m->victims)
		m->victims--;
}

/* Promotes up to @max candidates into tier 0. *@full: tier 0 had no room
 * for the next one (it stays first in line). Return: promotions sent, or
 * -EAGAIN (the channel is full: stop for this tick). */
static inline int mt_promote(struct mt *m, struct wave_plugin_ctx *ctx, unsigned max, bool *full)
{
	struct wave_mem_chunk_view c;
	unsigned n = 0;

	*full = false;
	while (n < max && m->cand_len) {
		uint64_t id = mt_pop(m);
		int ret;

		if (wave_plugin_mem_chunk(ctx, id, &c) < 0 || c.tier == 0 || c.pending ||
		    !m->hot(m->policy, &c))
			continue;
		ret = wave_plugin_mem_migrate(ctx, id, c.seq, 0);
		if (ret == -EBUSY || ret == -EAGAIN) {
			mt_push(m, id, true);
			*full = ret == -EBUSY;
			return ret == -EAGAIN ? -EAGAIN : (int)n;
		}
		n += ret == 0;
	}
	m->promoted += n;
	return (int)n;
}

/* The keep pass's class of access count @count: the count itself below
 * 32, then four classes per power of two, so that the counts of a chunk
 * touched hundreds of times a tick (the host sends up to 255 accesses a
 * chunk a tick) are still told apart, up to 2^28 (higher ones count as
 * the last class). With one class per count up to 63, every chunk of a
 * skewed workload's kept set could share the last class, and then none
 * fit the quota and nothing was kept. */
static inline uint32_t mt_keep_class(uint32_t count)
{
	unsigned e;
	uint32_t k;

	if (count < 32)
		return count;
	e = 31u - (unsigned)__builtin_clz(count); /* >= 5 */
	k = 32u + 4u * (e - 5u) + ((count >> (e - 2u)) & 3u);
	return k < MT_KEEP_COUNTS ? k : MT_KEEP_COUNTS - 1;
}

/* Is @c among the chunks the keep pass hints to the host (mt_keep())? */
static inline bool mt_kept(const struct mt *m, const struct wave_mem_chunk_view *c)
{
	return m->keep && m->keep_min && mt_keep_class(c->count) >= m->keep_min;
}

/* May @c be prestaged as a victim? Not a chunk the kit hints to keep: the
 * host takes its victims first, and would throw out what the hints spare. */
static inline bool mt_victim(struct mt *m, const struct wave_mem_chunk_view *c)
{
	return (m->victim ? m->victim(m->policy, c) : m->cold(m->policy, c)) && !mt_kept(m, c);
}

/* Sorts the chunks of tier 0 the scan hand finds: the cold ones into
 * @cold (*@n_cold of them), then the other possible victims after them
 * (the total is returned), at most MT_SCAN_MAX in all; in each group
 * those that refaulted come last, to be demoted only when the others do
 * not make the room. */
static inline unsigned mt_scan(struct mt *m, struct wave_plugin_ctx *ctx,
			       struct wave_mem_chunk_view *cold, unsigned *n_cold)
{
	struct wave_mem_chunk_view seen[MT_SCAN_MAX];
	unsigned k = 0;
	int n = wave_plugin_mem_scan(ctx, 0, m->scan_budget, seen, MT_SCAN_MAX);

	*n_cold = 0;
	for (int pass = 0; pass < 4; pass++) {
		for (int i = 0; i < n; i++)
			if (mt_refaulted(m, &seen[i]) == (pass & 1) &&
			    (pass < 2 ? m->cold(m->policy, &seen[i])
				      : !m->cold(m->policy, &seen[i]) && mt_victim(m, &seen[i])))
				cold[k++] = seen[i];
		if (pass == 1)
			*n_cold = k;
	}
	return k;
}

/* The class of count that the most counted chunks of tier 0 reach, as many as fit
 * in @quota, from the pass's counts (MT_KEEP_COUNTS: not even the most
 * counted fit). */
static inline uint32_t mt_keep_min(const struct mt *m, uint64_t quota)
{
	uint64_t sum = 0;
	uint32_t c = MT_KEEP_COUNTS;

	while (c > 1 && sum + m->keep_hist[c - 1] <= quota)
		sum += m->keep_hist[--c];
	return c;
}

/* Hints tier 0's chunks of at least the last pass's count to the host,
 * and counts them for the next pass; enough scans that a pass goes round
 * the tier in about four ticks (the host spares a kept chunk for three
 * sweeps of its hand). Chunks that refaulted the host spares by itself. */
static inline void mt_keep(struct mt *m, struct wave_plugin_ctx *ctx)
{
	struct wave_mem_chunk_view seen[MT_SCAN_MAX];
	struct wave_mem_tier_view t;
	uint64_t rounds;

	if (!m->keep || wave_plugin_mem_tier(ctx, 0, &t) < 0 || t.capacity == WAVE_MEM_CAP_NONE)
		return;
	rounds = t.used / (4 * MT_SCAN_MAX) + 1;
	for (uint64_t r = 0; r < rounds && r < MT_KEEP_ROUNDS; r++) {
		int n = wave_plugin_mem_scan(ctx, 0, m->scan_budget, seen, MT_SCAN_MAX);

		for (int i = 0; i < n; i++) {
			uint32_t c = mt_keep_class(seen[i].count);

			m->keep_hist[c]++;
			if (m->keep_min && c >= m->keep_min &&
			    wave_plugin_mem_keep(ctx, seen[i].id, seen[i].seq) == -EAGAIN)
				return; /* backpressure: the next tick goes on */
		}
		if ((m->keep_seen += (unsigned)n) >= t.used) {
			uint32_t k = mt_keep_min(m, t.capacity / 4 * 3);

			m->keep_min = k < MT_KEEP_COUNTS ? k : 0;
			memset(m->keep_hist, 0, sizeof(m->keep_hist));
			m->keep_seen = 0;
		}
	}
}

/**
 * mt_tick() - one round: up to @max_promote promotions (a policy's rate
 * limit; at most @max_moves), then demotions of cold chunks of tier 0
 * (as many as the promotions waiting for room, or every cold one found
 * when @proactive), then victims up to @max_victims in flight, then a
 * step of the keep pass (mt_keep()).
 * Return: 0, or a negative error code of a decision.
 */
static inline int mt_tick(struct mt *m, struct wave_plugin_ctx *ctx, unsigned max_promote)
{
	struct wave_mem_chunk_view cold[MT_SCAN_MAX];
	unsigned moves = max_promote < m->max_moves ? max_promote : m->max_moves;
	unsigned k, n_cold, i = 0, demote;
	bool full;
	int n = mt_promote(m, ctx, moves, &full);

	if (n < 0)
		return 0; /* backpressure: the next tick goes on */
	moves = m->max_moves - (unsigned)n;
	k = mt_scan(m, ctx, cold, &n_cold);
	demote = m->proactive ? n_cold : full ? m->cand_len : 0;
	for (; i < n_cold && demote && moves; i++, demote--, moves--) {
		int ret = wave_plugin_mem_migrate(ctx, cold[i].id, cold[i].seq, 1);

		if (ret == -EAGAIN)
			return 0;
		m->demoted += ret == 0;
	}
	for (; i < k && m->victims < m->max_victims; i++) {
		int ret;

		if (!mt_victim(m, &cold[i]))
			continue;
		ret = wave_plugin_mem_victim(ctx, cold[i].id, cold[i].seq);

		if (ret == -EAGAIN || ret == -EBUSY)
			return 0;
		if (ret == 0) {
			m->victims++;
			m->staged++;
		}
	}
	mt_keep(m, ctx);
	return 0;
}

#endif /* WAVE_PLUGIN_KIT_MEM_TIERING_H */
