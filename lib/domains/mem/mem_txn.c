/* SPDX-License-Identifier: MIT */
/*
 * Migrations as transactions (lib/decision/txn.h), and what the host
 * enforces whatever a policy asks: the migration rate limit, anti-thrash,
 * tier capacities; and pressure relief without a round trip: prestaged
 * victims first, then the local policy (a CLOCK over the accessed bits).
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <wave/mem.h>

#include "../../core/core.h"
#include "../../decision/txn.h"
#include "mem_impl.h"
#include "mem_store.h"

#define VICTIMS_MAX 4096u

/* ---- the rate limit: a token bucket of bytes -------------------------------- */

/* Takes @bytes from the bucket (refilled at migrate_bps, holding at most a
 * tenth of a second's worth or one largest chunk). Return: false when
 * there are not enough. */
static bool rate_take(struct wave_mem *m, uint64_t bytes)
{
	uint64_t now = wave_now_ns();
	double cap = (double)m->migrate_bps / 10.0;
	bool ok;

	if (!m->migrate_bps)
		return true;
	if (cap < WAVE_MEM_CHUNK_MAX)
		cap = WAVE_MEM_CHUNK_MAX;
	pthread_mutex_lock(&m->plock);
	m->tokens += (double)(now - m->tokens_at) * (double)m->migrate_bps / 1e9;
	if (m->tokens > cap)
		m->tokens = cap;
	m->tokens_at = now;
	ok = m->tokens >= (double)bytes;
	if (ok)
		m->tokens -= (double)bytes;
	pthread_mutex_unlock(&m->plock);
	return ok;
}

static void rate_refund(struct wave_mem *m, uint64_t bytes)
{
	if (!m->migrate_bps)
		return;
	pthread_mutex_lock(&m->plock);
	m->tokens += (double)bytes;
	pthread_mutex_unlock(&m->plock);
}

/* ---- one migration ------------------------------------------------------------ */

static bool recently_arrived(const struct wave_mem *m, const struct mem_region *r, uint64_t i)
{
	uint32_t at = atomic_load(&r->stamp[i]);

	return at && m->min_resident_ns &&
	       (uint64_t)(uint32_t)(mem_arrival_stamp(m) - at) * 1000000u < m->min_resident_ns;
}

static bool has_room(struct wave_mem *m, uint32_t tier, uint64_t bytes)
{
	uint64_t cap = m->tiers[tier].capacity;

	/* The far tier's room is the store's to say (-ENOSPC). */
	return (int)tier == m->far_tier || !cap || atomic_load(&m->tier_used[tier]) + bytes <= cap;
}

/* Between two NUMA tiers: the pages move to the target's node. */
static enum wave_result move_numa(struct wave_mem *m, struct mem_region *r, uint64_t i,
				  uint32_t from, uint32_t tier)
{
	int node = m->tiers[tier].node, ret = 0;

	if (node != WAVE_MEM_NODE_ANY)
		ret = mem_numa_move((void *)mem_chunk_addr(r, i), r->chunk_size, node);
	if (ret) {
		mem_chunk_unlock(r, i, from, false);
		return ret == -ENOMEM ? WAVE_ABORT_BUSY : WAVE_ABORT_INVALID;
	}
	atomic_fetch_sub(&m->tier_used[from], r->chunk_size);
	atomic_fetch_add(&m->tier_used[tier], r->chunk_size);
	if (tier < from)
		atomic_store(&r->stamp[i], mem_arrival_stamp(m));
	mem_chunk_unlock(r, i, tier, true);
	return WAVE_COMMITTED;
}

static enum wave_result carry_out(struct wave_mem *m, struct mem_region *r, uint64_t i,
				  uint32_t from, uint32_t tier, struct mem_far_batch *batch)
{
	enum wave_result res;
	void *buf;

	if ((int)tier == m->far_tier)
		return mem_far_demote(m, r, i, batch);
	if ((int)from != m->far_tier)
		return move_numa(m, r, i, from, tier);
	if (posix_memalign(&buf, 4096, r->chunk_size)) {
		mem_chunk_unlock(r, i, from, false);
		return WAVE_ABORT_BUSY;
	}
	res = mem_far_promote(m, r, i, tier, buf);
	free(buf);
	return res;
}

enum wave_result mem_txn(struct wave_mem *m, struct mem_region *r, uint64_t i, uint64_t seq,
			 uint32_t tier, bool rate_limited, struct mem_far_batch *batch)
{
	uint64_t s = atomic_load(&r->state[i]), old;
	uint32_t from = cs_tier(s);
	bool demote = tier > from;
	bool eligible = !(s & CS_BUSY) && from != tier && !atomic_load(&r->dying) &&
			((int)tier != m->far_tier || r->far) &&
			!(demote && recently_arrived(m, r, i));
	enum wave_result res = txn_check(true, cs_seq(s), seq, eligible,
					 has_room(m, tier, r->chunk_size));

	if (res != WAVE_COMMITTED)
		return res;
	if (rate_limited && !rate_take(m, r->chunk_size))
		return WAVE_ABORT_BUSY;
	if (!mem_chunk_lock(r, i, &old)) {
		res = WAVE_ABORT_NOT_ELIGIBLE;
	} else if (cs_seq(old) != seq || cs_tier(old) != from) {
		mem_chunk_unlock(r, i, cs_tier(old), false);
		res = WAVE_ABORT_STALE;
	} else {
		res = carry_out(m, r, i, from, tier, batch);
	}
	if (res != WAVE_COMMITTED && rate_limited)
		rate_refund(m, r->chunk_size);
	if (res == WAVE_COMMITTED && tier < from) /* a promotion took room */
		mem_demoter_kick(m);
	return res;
}

static void count(struct wave_mem *m, enum wave_result res)
{
	if (res == WAVE_COMMITTED)
		atomic_fetch_add(&m->committed, 1);
	else
		atomic_fetch_add(&m->aborted[res], 1);
}

enum wave_result mem_chunk_owned(struct wave_mem *m, uint64_t chunk, uint32_t *tier,
				 uint64_t *seq)
{
	uint32_t id = (uint32_t)(chunk >> 32);
	uint64_t i = chunk & 0xffffffffu, s;
	struct mem_region *r;

	pthread_rwlock_rdlock(&m->rlock);
	r = mem_region_id(m, id);
	if (id == 0 || (r && i >= r->n_chunks) || !r) {
		pthread_rwlock_unlock(&m->rlock);
		return r || id == 0 ? WAVE_ABORT_INVALID : WAVE_ABORT_GONE;
	}
	s = atomic_load(&r->state[i]);
	pthread_rwlock_unlock(&m->rlock);
	*tier = cs_tier(s);
	*seq = cs_seq(s);
	return WAVE_COMMITTED;
}

enum wave_result mem_migrate(struct wave_mem *m, uint64_t chunk, uint64_t seq, uint32_t tier,
			     bool log)
{
	uint32_t id = (uint32_t)(chunk >> 32);
	uint64_t i = chunk & 0xffffffffu;
	struct mem_region *r;
	enum wave_result res;

	pthread_rwlock_rdlock(&m->rlock);
	r = mem_region_id(m, id);
	if (id == 0 || tier >= m->n_tiers || (r && i >= r->n_chunks))
		res = WAVE_ABORT_INVALID;
	else if (!r)
		res = WAVE_ABORT_GONE; /* no such region (any more) */
	else
		res = mem_txn(m, r, i, seq, tier, true, NULL);
	if (res == WAVE_COMMITTED && log)
		mem_link_chunk(m, r, i, false);
	pthread_rwlock_unlock(&m->rlock);
	count(m, res);
	return res;
}

WAVE_API int wave_mem_migrate(struct wave_mem *m, uint64_t chunk, uint64_t seq, uint32_t tier)
{
	if (!m)
		return -EINVAL;
	return (int)mem_migrate(m, chunk, seq, tier, true);
}

/* ---- pressure ---------------------------------------------------------------- */

WAVE_API int wave_mem_prestage_victims(struct wave_mem *m, const struct wave_mem_victim *v,
				       size_t n)
{
	struct wave_mem_victim *copy = NULL;

	if (!m || n > VICTIMS_MAX || (n && !v))
		return -EINVAL;
	if (n && !(copy = malloc(n * sizeof(*copy))))
		return -ENOMEM;
	if (n)
		memcpy(copy, v, n * sizeof(*copy));
	pthread_mutex_lock(&m->plock);
	free(m->victims);
	m->victims = copy;
	m->n_victims = n;
	m->victim_pos = 0;
	pthread_mutex_unlock(&m->plock);
	return 0;
}

enum wave_result mem_avictim_add(struct wave_mem *m, const struct mem_avictim *v)
{
	enum wave_result res = WAVE_ABORT_BUSY;

	pthread_mutex_lock(&m->plock);
	if (!m->avictims)
		m->avictims = malloc(VICTIMS_MAX * sizeof(*m->avictims));
	if (m->avictims && m->n_avictims < VICTIMS_MAX) {
		m->avictims[m->n_avictims++] = *v;
		res = WAVE_COMMITTED;
	}
	pthread_mutex_unlock(&m->plock);
	return res;
}

void mem_avictims_drop(struct wave_mem *m)
{
	pthread_mutex_lock(&m->plock);
	m->n_avictims = 0;
	pthread_mutex_unlock(&m->plock);
}

void mem_avictims_gone(struct wave_mem *m, uint32_t region)
{
	size_t k = 0;

	pthread_mutex_lock(&m->plock);
	for (size_t j = 0; j < m->n_avictims; j++) {
		struct mem_avictim v = m->avictims[j];

		if (v.chunk >> 32 == region)
			mem_link_victim_done(m, &v, WAVE_ABORT_GONE);
		else
			m->avictims[k++] = v;
	}
	m->n_avictims = k;
	pthread_mutex_unlock(&m->plock);
}

/* The agent's first victim in @tier (plock held), taken off its list.
 * Victims whose chunk went or changed since, or was touched
 * (mem_victim_untouched()), are answered and dropped; those in another
 * tier wait for pressure there. */
static bool next_avictim(struct wave_mem *m, uint32_t tier, struct mem_avictim *out)
{
	size_t k = 0;

	while (k < m->n_avictims) {
		struct mem_avictim v = m->avictims[k];
		struct mem_region *r = mem_region_id(m, (uint32_t)(v.chunk >> 32));
		uint64_t i = v.chunk & 0xffffffffu, s = r ? atomic_load(&r->state[i]) : 0;
		enum wave_result res = !r ? WAVE_ABORT_GONE
				       : cs_seq(s) == v.seq && mem_victim_untouched(s) ? WAVE_COMMITTED
										       : WAVE_ABORT_STALE;

		if (res == WAVE_COMMITTED && (cs_tier(s) != tier || v.tier != tier + 1)) {
			k++;
			continue;
		}
		memmove(&m->avictims[k], &m->avictims[k + 1],
			(--m->n_avictims - k) * sizeof(v));
		if (res == WAVE_COMMITTED) {
			*out = v;
			return true;
		}
		mem_link_victim_done(m, &v, res);
	}
	return false;
}

/* The next prestaged victim in @tier: its region, index and seq; the
 * agent's first (*@av filled), then the application's. */
static bool next_victim(struct wave_mem *m, uint32_t tier, struct mem_region **r, uint64_t *i,
			uint64_t *seq, struct mem_avictim *av, bool *agents)
{
	bool found = false;

	pthread_mutex_lock(&m->plock);
	*agents = next_avictim(m, tier, av);
	if (*agents) {
		*r = mem_region_id(m, (uint32_t)(av->chunk >> 32));
		*i = av->chunk & 0xffffffffu;
		*seq = av->seq;
		found = true;
	}
	while (!found && m->victim_pos < m->n_victims) {
		struct wave_mem_victim v = m->victims[m->victim_pos++];

		*r = mem_region_id(m, (uint32_t)(v.chunk >> 32));
		*i = v.chunk & 0xffffffffu;
		*seq = v.seq;
		found = *r && *i < (*r)->n_chunks &&
			cs_tier(atomic_load(&(*r)->state[*i])) == tier;
	}
	pthread_mutex_unlock(&m->plock);
	return found;
}

/* The hand passes chunk word @w, seen as @s: mem_clock_pass()'s rule,
 * applied unless the chunk went busy meanwhile. True when it is spared;
 * false when it may be the victim, or is busy (the hand goes on). */
static bool clock_spare(_Atomic uint64_t *w, uint64_t s)
{
	uint64_t n;
	bool spared;

	do {
		if (s & CS_BUSY)
			return false;
		spared = mem_clock_pass(s, &n);
	} while (n != s && !atomic_compare_exchange_weak(w, &s, n));
	return spared;
}

/* A new sweep of the hand: the KEEP hints' bound starts again. */
static void keep_bound_reset(struct wave_mem *m)
{
	for (uint32_t t = 0; t < m->n_tiers; t++)
		atomic_store(&m->kept_bytes[t], 0);
}

/* Takes @bytes of tier @t's keep bound: the hints may make at most three
 * quarters of its capacity active each sweep of the hand, so that the
 * hand, which spends a life of every unaccessed chunk it passes, still
 * finds victims among the rest within a sweep or two, and an agent that
 * keeps everything (or a stale view of what it keeps) costs the sweeps
 * little. */
static bool keep_bound_take(struct wave_mem *m, uint32_t t, uint64_t bytes)
{
	uint64_t bound = m->tiers[t].capacity / 4 * 3;
	uint64_t k = atomic_load(&m->kept_bytes[t]);

	do {
		if (k + bytes > bound)
			return false;
	} while (!atomic_compare_exchange_weak(&m->kept_bytes[t], &k, k + bytes));
	return true;
}

/* Why chunk word @s cannot be kept at @seq in @tier, or WAVE_COMMITTED. */
static enum wave_result keep_check(uint64_t s, uint64_t seq, uint32_t tier)
{
	if (cs_seq(s) != seq || cs_tier(s) != tier)
		return WAVE_ABORT_STALE;
	return s & CS_BUSY ? WAVE_ABORT_NOT_ELIGIBLE : WAVE_COMMITTED;
}

/* Gives the chunk word @w full lives, as a refault does, if it is still
 * resident in @tier at @seq and not busy. The bound is taken once, before
 * the word changes; a chunk that changes under it (it left) wastes its
 * part of the bound until the sweep ends, nothing more. */
static enum wave_result keep_word(struct wave_mem *m, _Atomic uint64_t *w, uint64_t seq,
				  uint32_t tier, uint64_t bytes)
{
	uint64_t s = atomic_load(w);
	enum wave_result res = keep_check(s, seq, tier);

	if (res != WAVE_COMMITTED || (s & CS_LIVES) == CS_LIVES)
		return res; /* refused, or kept already: nothing to take */
	if (!keep_bound_take(m, tier, bytes))
		return WAVE_ABORT_BUSY;
	do {
		if ((res = keep_check(s, seq, tier)) != WAVE_COMMITTED)
			return res;
	} while (!atomic_compare_exchange_weak(w, &s, s | CS_LIVES));
	return WAVE_COMMITTED;
}

enum wave_result mem_keep(struct wave_mem *m, uint64_t chunk, uint64_t seq, uint32_t tier)
{
	uint32_t id = (uint32_t)(chunk >> 32);
	uint64_t i = chunk & 0xffffffffu;
	struct mem_region *r;
	enum wave_result res;

	if (tier >= m->n_tiers || (int)tier == m->far_tier || !m->tiers[tier].capacity)
		return WAVE_ABORT_NOT_ELIGIBLE; /* no CLOCK there to spare it */
	pthread_rwlock_rdlock(&m->rlock);
	r = mem_region_id(m, id);
	if (id == 0 || !r || i >= r->n_chunks)
		res = r || id == 0 ? WAVE_ABORT_INVALID : WAVE_ABORT_GONE;
	else
		res = keep_word(m, &r->state[i], seq, tier, r->chunk_size);
	pthread_rwlock_unlock(&m->rlock);
	return res;
}

/* The CLOCK: the hand sweeps every chunk; one in @tier that was accessed
 * since the last sweep loses its bit and is spared, and so is one that
 * refaulted while it has lives (CS_LIVES: it stays until that many
 * sweeps in a row find it unaccessed); the first with neither (and not
 * busy, nor freshly arrived) is the victim. */
static bool clock_pick(struct wave_mem *m, uint32_t tier, struct mem_region **out, uint64_t *i,
		       uint64_t *seq)
{
	uint64_t total = 0, steps;
	bool found = false;

	pthread_mutex_lock(&m->plock);
	for (size_t k = 0; k < m->n_regions; k++)
		total += m->regions[k]->n_chunks;
	/* Five sweeps at most: when every chunk is active, their lives go
	 * first. */
	for (steps = 0; !found && total && steps < 5 * total; steps++) {
		struct mem_region *r;
		uint64_t s;

		if (m->hand_region >= m->n_regions) {
			m->hand_region = m->hand_next = 0;
			keep_bound_reset(m);
		}
		r = m->regions[m->hand_region];
		if (m->hand_next >= r->n_chunks) {
			m->hand_region++;
			m->hand_next = 0;
			continue;
		}
		*i = m->hand_next++;
		s = atomic_load(&r->state[*i]);
		if (cs_tier(s) != tier || (s & CS_BUSY))
			continue;
		if (clock_spare(&r->state[*i], s))
			continue;
		if (!(s & (CS_ACCESSED | CS_LIVES)) && !recently_arrived(m, r, *i)) {
			*out = r;
			*seq = cs_seq(s);
			found = true;
		}
	}
	pthread_mutex_unlock(&m->plock);
	return found;
}

/* Is tier @t over its capacity less @headroom once @leaving bytes (a
 * batch's, still counted) are gone? */
static bool over_after(struct wave_mem *m, uint32_t t, uint64_t headroom, uint64_t leaving)
{
	uint64_t cap = m->tiers[t].capacity;

	return cap && atomic_load(&m->tier_used[t]) + headroom > cap + leaving;
}

bool mem_tier_over(struct wave_mem *m, uint32_t t, uint64_t headroom)
{
	return over_after(m, t, headroom, 0);
}

/* A pressure demotion committed, told and counted once its batch is
 * released (the agent must hear the chunk's new sequence number). */
struct relieved {
	struct mem_region *r;
	uint64_t i;
	bool agents, victim;
	struct mem_avictim av;
};

static void relieved_tell(struct wave_mem *m, struct mem_far_batch *b, struct relieved *d,
			  unsigned *n)
{
	mem_far_batch_end(m, b);
	for (unsigned k = 0; k < *n; k++) {
		count(m, WAVE_COMMITTED);
		if (d[k].agents)
			mem_link_victim_done(m, &d[k].av, WAVE_COMMITTED);
		else
			mem_link_chunk(m, d[k].r, d[k].i, false);
		atomic_fetch_add(d[k].victim ? &m->victims_used : &m->local_demotions, 1);
	}
	*n = 0;
}

int mem_relieve_locked(struct wave_mem *m, uint64_t headroom, int max)
{
	struct mem_far_batch b = { 0 };
	struct relieved d[MEM_FAR_BATCH];
	unsigned nd = 0;
	int done = 0;

	for (uint32_t t = 0; t + 1 < m->n_tiers; t++) {
		unsigned misses = 0;

		/* A bounded number of failed attempts: a tier whose chunks all
		 * refuse (busy, fresh, store full) stays over. The batch's
		 * chunks are gone from the tier already, though still counted. */
		while (over_after(m, t, headroom, b.bytes) && misses < 64 && done < max) {
			struct mem_region *r;
			struct mem_avictim av = { 0 };
			uint64_t i, seq;
			bool agents, victim = next_victim(m, t, &r, &i, &seq, &av, &agents);
			enum wave_result res;

			if (!victim && !clock_pick(m, t, &r, &i, &seq))
				break;
			res = mem_txn(m, r, i, seq, t + 1, false, &b);
			if (res != WAVE_COMMITTED) {
				count(m, res);
				if (agents) /* the agent's victim is answered */
					mem_link_victim_done(m, &av, res);
				misses++;
				continue;
			}
			d[nd++] = (struct relieved){ r, i, agents, victim, av };
			done++;
			if (nd == MEM_FAR_BATCH)
				relieved_tell(m, &b, d, &nd);
		}
		relieved_tell(m, &b, d, &nd); /* the next tier counts what came */
	}
	return done;
}

WAVE_API int wave_mem_relieve(struct wave_mem *m)
{
	int n;

	if (!m)
		return -EINVAL;
	pthread_rwlock_rdlock(&m->rlock);
	n = mem_relieve_locked(m, 0, INT_MAX);
	pthread_rwlock_unlock(&m->rlock);
	return n;
}
