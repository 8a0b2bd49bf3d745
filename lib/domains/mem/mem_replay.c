/* SPDX-License-Identifier: MIT */
/*
 * The mem domain's quality model for replay (mem_replay.h).
 *
 * The workload of a mem trace is its accesses: each SAMPLES entry (a
 * chunk touched n times) and each FAULT (one touch of a far chunk), at the
 * host's time, with the regions as they came and went. Which tier served
 * an access is the policy's doing, so the model plays the accesses, in
 * the recorded order, on a host of its own against the policy, in closed
 * loop:
 *  - tiers and capacities from the trace's SETUP, regions from its
 *    REGION_ADD/DEL, every chunk with its tier and sequence number;
 *  - a touch of a chunk in tier 0 is served fast, in a slower NUMA tier
 *    slowly; in the far tier it faults: the chunk comes back to its
 *    region's tier (a fault is never refused; the agent hears FAULT), and
 *    the host relieves each tier over its capacity, as the library's host
 *    does (mem_txn.c): the prestaged victims in order, then a CLOCK over
 *    the accessed bits (the agent hears CHUNK_CHANGED);
 *  - the recorded access reports go to the agent as they were (SAMPLES),
 *    and at each recorded TICK the host's PRESSURE for tiers with less
 *    than an eighth free, then the TICK;
 *  - each decision is committed or aborted by the library's one rule,
 *    txn_check() (lib/decision/txn.h): gone, stale, not eligible (in that
 *    tier already), busy (no room in the target tier), and answered once;
 *    a KEEP hint marks its chunk accessed (the model's CLOCK has one bit).
 * What the model does not know from a trace: the host's migration rate
 * limit and anti-thrash time (not modelled), chunk sizes (capacities count
 * chunks). The trace as recorded gets the same figures, measured on the
 * recorded placement (the recorded FAULTs, CHUNK_CHANGEDs and committed
 * OUTCOMEs move its chunks).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <wave/mem_msg.h>
#include <wave/mem_state.h>

#include "../../core/core.h"
#include "../../decision/txn.h"
#include "mem_replay.h"

#define REGIONS_MAX 1024u
#define CHUNKS_MAX (1u << 24)  /* at once, over all regions: 256 MiB of model */
#define VICTIMS_MAX 4096u      /* as the host's list */
#define MISSES_MAX 64u         /* failed demotions before a tier is left over */
#define SETTLE_MAX (1u << 22)  /* messages one event may cause */

struct mchunk {
	uint64_t seq;
	uint32_t tier;
	uint32_t accessed; /* since the CLOCK hand last passed */
};

struct mregion {
	uint32_t id, home;
	uint64_t count;
	struct mchunk *c;
};

struct mvictim {
	uint64_t chunk, seq;
	uint32_t tier;
};

struct mhost {
	uint32_t n_tiers, slow; /* slow: the far tier, else the last */
	int far;                /* the far tier, or -1 */
	uint64_t cap[WAVE_MEM_MAX_TIERS], used[WAVE_MEM_MAX_TIERS];
	struct mregion reg[REGIONS_MAX];
	size_t n_reg;
	uint64_t n_chunks;
	uint64_t now, t_first;
	/* playing against a policy */
	bool model;
	struct wave_mem_state *st;
	struct wave_plugin_ctx *ctx;
	struct replay_q to_agent, to_host;
	struct mvictim victims[VICTIMS_MAX];
	size_t n_victims;
	size_t hand_reg;
	uint64_t hand_i;
	/* measured */
	uint64_t accesses, fast, faults, commits, promotions, demotions, victims_used, local;
	uint64_t aborts[WAVE_RESULT_COUNT], errors;
	double slow_area; /* chunks x ns in the slow tier */
	uint64_t slow_max;
};

int mem_replay_setup(struct trace_reader *r, struct wave_msg *setup, uint32_t *n_tiers)
{
	struct wave_mem_msg d;

	if (replay_find_setup(r, setup) < 0 || wave_mem_msg_decode(setup, 1, &d) < 0)
		return -EBADMSG;
	*n_tiers = d.n;
	return 0;
}

/* ---- the host's chunks ------------------------------------------------- */

/* Time only moves forward; the slow tier's occupancy is integrated over it. */
static void advance(struct mhost *h, uint64_t now)
{
	if (!now || now <= h->now)
		return;
	if (h->now)
		h->slow_area += (double)h->used[h->slow] * (double)(now - h->now);
	else
		h->t_first = now;
	h->now = now;
}

static struct mregion *region(struct mhost *h, uint32_t id)
{
	for (size_t i = 0; i < h->n_reg; i++)
		if (h->reg[i].id == id)
			return &h->reg[i];
	return NULL;
}

/* The chunk @id, and its region in *@rp; NULL with *@res why not. */
static struct mchunk *chunk(struct mhost *h, uint64_t id, struct mregion **rp,
			    enum wave_result *res)
{
	struct mregion *r = region(h, (uint32_t)(id >> 32));
	uint64_t i = id & 0xffffffffu;

	*rp = r;
	if (id >> 32 == 0 || (r && i >= r->count)) {
		*res = WAVE_ABORT_INVALID;
		return NULL;
	}
	*res = WAVE_ABORT_GONE;
	return r ? &r->c[i] : NULL;
}

static void move(struct mhost *h, struct mchunk *c, uint32_t tier, uint64_t seq)
{
	h->used[c->tier]--;
	h->used[tier]++;
	c->tier = tier;
	c->seq = seq;
	if (h->used[h->slow] > h->slow_max)
		h->slow_max = h->used[h->slow];
}

/* 0, or -1 when the model cannot hold the region (counted). */
static int region_add(struct mhost *h, const struct wave_mem_msg *d)
{
	struct mregion *r;

	if (region(h, d->region) || h->n_reg == REGIONS_MAX ||
	    d->count > CHUNKS_MAX - h->n_chunks) {
		h->errors++;
		return -1;
	}
	r = &h->reg[h->n_reg];
	if (!(r->c = malloc(d->count * sizeof(*r->c)))) {
		h->errors++;
		return -1;
	}
	h->n_reg++;
	r->id = d->region;
	r->home = d->tier;
	r->count = d->count;
	for (uint64_t i = 0; i < d->count; i++)
		r->c[i] = (struct mchunk){ .seq = d->seq, .tier = d->tier };
	h->n_chunks += d->count;
	h->used[d->tier] += d->count;
	if (h->used[h->slow] > h->slow_max)
		h->slow_max = h->used[h->slow];
	return 0;
}

static void region_del(struct mhost *h, struct mregion *r)
{
	for (uint64_t i = 0; i < r->count; i++)
		h->used[r->c[i].tier]--;
	h->n_chunks -= r->count;
	free(r->c);
	*r = h->reg[--h->n_reg];
	h->hand_reg = h->hand_i = 0;
}

/* ---- the model's host: decisions and pressure -------------------------- */

static int to_agent(struct mhost *h, const struct wave_mem_msg *d)
{
	struct wave_msg m;
	int ret = wave_mem_msg_encode(d, h->n_tiers, &m);

	return ret < 0 ? ret : replay_q_push(&h->to_agent, &m);
}

/* The transaction, by the library's rule: @c moves to @tier if it is
 * still at @seq, not in @tier already, and @tier has room (the far
 * store's is not counted). */
static enum wave_result commit(struct mhost *h, struct mchunk *c, uint64_t seq, uint32_t tier)
{
	bool room = (int)tier == h->far || h->cap[tier] == WAVE_MEM_CAP_NONE ||
		    h->used[tier] < h->cap[tier];
	enum wave_result res = txn_check(true, c->seq, seq, c->tier != tier, room);

	if (res == WAVE_COMMITTED)
		move(h, c, tier, c->seq + 1);
	return res;
}

/* Counts and answers a decision; @c is its chunk after it (or NULL). */
static int outcome(struct mhost *h, const struct wave_mem_msg *d, const struct mchunk *c,
		   uint32_t from, enum wave_result res)
{
	struct wave_mem_msg o = { .type = WAVE_MEM_OUTCOME, .decision = d->type,
				  .chunk = d->chunk, .seq = d->seq, .tier = d->tier,
				  .result = (uint8_t)res, .now_ns = h->now };

	if (res == WAVE_COMMITTED) {
		o.new_seq = c->seq;
		h->commits++;
		if (d->tier < from)
			h->promotions++;
		else
			h->demotions++;
		h->victims_used += d->type == WAVE_MEM_VICTIM;
	} else {
		h->aborts[res]++;
	}
	return to_agent(h, &o);
}

/* The agent's first victim in @tier, off its list; those whose chunk went
 * or changed since are answered and dropped, those elsewhere wait. */
static int next_victim(struct mhost *h, uint32_t tier, struct mvictim *out, bool *found)
{
	size_t k = 0;
	int ret = 0;

	*found = false;
	while (k < h->n_victims && !*found && !ret) {
		struct mvictim v = h->victims[k];
		struct mregion *r;
		enum wave_result res;
		struct mchunk *c = chunk(h, v.chunk, &r, &res);

		if (c && c->seq == v.seq && (c->tier != tier || v.tier != tier + 1)) {
			k++;
			continue;
		}
		memmove(&h->victims[k], &h->victims[k + 1], (--h->n_victims - k) * sizeof(v));
		if (c && c->seq == v.seq) {
			*out = v;
			*found = true;
		} else {
			struct wave_mem_msg d = { .type = WAVE_MEM_VICTIM, .chunk = v.chunk,
						  .seq = v.seq, .tier = v.tier };

			ret = outcome(h, &d, NULL, 0, c ? WAVE_ABORT_STALE : res);
		}
	}
	return ret;
}

/* The CLOCK over @tier: an accessed chunk loses its bit and is spared,
 * the first one not accessed is the victim. */
static struct mchunk *clock_pick(struct mhost *h, uint32_t tier, struct mregion **rp)
{
	for (uint64_t steps = 0; h->n_reg && steps < 2 * h->n_chunks + h->n_reg; steps++) {
		struct mregion *r;
		struct mchunk *c;

		if (h->hand_reg >= h->n_reg)
			h->hand_reg = h->hand_i = 0;
		r = &h->reg[h->hand_reg];
		if (h->hand_i >= r->count) {
			h->hand_reg++;
			h->hand_i = 0;
			continue;
		}
		c = &r->c[h->hand_i++];
		if (c->tier != tier)
			continue;
		if (c->accessed) {
			c->accessed = 0;
			continue;
		}
		*rp = r;
		return c;
	}
	return NULL;
}

/* One demotion out of @tier: a victim's, else the CLOCK's. */
static int demote_one(struct mhost *h, uint32_t tier, bool *done)
{
	struct mvictim v = { 0, 0, 0 };
	struct mregion *r;
	struct mchunk *c;
	enum wave_result res;
	bool found;
	int ret;

	*done = false;
	if ((ret = next_victim(h, tier, &v, &found)) < 0)
		return ret;
	if (found) {
		struct wave_mem_msg d = { .type = WAVE_MEM_VICTIM, .chunk = v.chunk,
					  .seq = v.seq, .tier = v.tier };

		c = chunk(h, v.chunk, &r, &res);
		res = commit(h, c, v.seq, tier + 1);
		*done = res == WAVE_COMMITTED;
		return outcome(h, &d, c, tier, res);
	}
	if (!(c = clock_pick(h, tier, &r)))
		return 1; /* nothing left to demote */
	if (commit(h, c, c->seq, tier + 1) != WAVE_COMMITTED)
		return 0;
	*done = true;
	h->local++;
	return to_agent(h, &(struct wave_mem_msg){ .type = WAVE_MEM_CHUNK_CHANGED,
						    .chunk = (uint64_t)r->id << 32 |
							     (uint64_t)(c - r->c),
						    .seq = c->seq, .tier = tier + 1,
						    .now_ns = h->now });
}

/* Each tier over its capacity (a fault or a region filled it) demotes to
 * the next, a bounded number of failures each. */
static int relieve(struct mhost *h)
{
	int ret = 0;

	for (uint32_t t = 0; t + 1 < h->n_tiers && !ret; t++) {
		unsigned misses = 0;

		while (!ret && h->cap[t] != WAVE_MEM_CAP_NONE && h->used[t] > h->cap[t] &&
		       misses < MISSES_MAX) {
			bool done;

			if ((ret = demote_one(h, t, &done)) == 1)
				return 0;
			misses += !done;
		}
	}
	return ret;
}

static int decision(struct mhost *h, const struct wave_msg *m)
{
	struct wave_mem_msg d;
	struct mregion *r;
	struct mchunk *c;
	enum wave_result res;
	uint32_t from;

	if (wave_mem_msg_decode(m, h->n_tiers, &d) < 0 ||
	    (d.type != WAVE_MEM_MIGRATE && d.type != WAVE_MEM_VICTIM &&
	     d.type != WAVE_MEM_PREFETCH && d.type != WAVE_MEM_KEEP)) {
		h->errors++; /* the state model let out what the host cannot take */
		return 0;
	}
	c = chunk(h, d.chunk, &r, &res);
	if (d.type == WAVE_MEM_KEEP) {
		/* A hint, unanswered: the model's CLOCK has one bit, so a kept
		 * chunk is spared as an accessed one, once a sweep. */
		if (c && c->tier == d.tier && c->seq == d.seq)
			c->accessed = 1;
		return 0;
	}
	if (!c)
		return outcome(h, &d, NULL, 0, res);
	if (d.type == WAVE_MEM_VICTIM) {
		if (h->n_victims == VICTIMS_MAX)
			return outcome(h, &d, NULL, 0, WAVE_ABORT_BUSY);
		h->victims[h->n_victims++] = (struct mvictim){ d.chunk, d.seq, d.tier };
		return 0;
	}
	/* A prefetch is carried out at once: the host's pace is not known. */
	from = c->tier;
	res = commit(h, c, d.seq, d.tier);
	return outcome(h, &d, c, from, res);
}

static void state_take(void *user, const struct wave_msg *m)
{
	struct mhost *h = user;

	if (wave_mem_state_apply(h->st, h->ctx, m) < 0)
		h->errors++;
}

static int host_take(void *user, const struct wave_msg *m)
{
	return decision(user, m);
}

/* Delivers both ways, in order, until quiet. */
static int run(struct mhost *h)
{
	return replay_settle(&h->to_agent, &h->to_host, state_take, host_take, h, SETTLE_MAX);
}

/* ---- the accesses ------------------------------------------------------ */

/* @n touches of chunk @c: on the model's host a far chunk faults back to
 * its region's tier first. */
static int touch(struct mhost *h, struct mregion *r, struct mchunk *c, uint64_t n)
{
	int ret;

	h->accesses += n;
	c->accessed = 1;
	if (h->model && (int)c->tier == h->far && r->home != c->tier) {
		move(h, c, r->home, c->seq + 1);
		h->faults++;
		n--;
		ret = to_agent(h, &(struct wave_mem_msg){ .type = WAVE_MEM_FAULT,
							   .chunk = (uint64_t)r->id << 32 |
								    (uint64_t)(c - r->c),
							   .seq = c->seq, .tier = c->tier,
							   .now_ns = h->now });
		if (ret < 0 || (ret = relieve(h)) < 0)
			return ret;
	}
	if (c->tier == 0)
		h->fast += n;
	return 0;
}

static int samples(struct mhost *h, const struct wave_mem_msg *d)
{
	struct mregion *r = region(h, d->region);
	int ret = 0;

	for (unsigned i = 0; r && i < d->n && !ret; i++)
		if (d->index[i] < r->count)
			ret = touch(h, r, &r->c[d->index[i]], d->accesses[i]);
	return ret;
}

/* PRESSURE for each NUMA tier with less than an eighth of its room free,
 * as the host says it at each tick. */
static int pressure(struct mhost *h)
{
	int ret = 0;

	for (uint32_t t = 0; t < h->n_tiers && !ret; t++) {
		uint64_t free_n = h->used[t] < h->cap[t] ? h->cap[t] - h->used[t] : 0;

		if (h->cap[t] == WAVE_MEM_CAP_NONE || (int)t == h->far || free_n * 8 >= h->cap[t])
			continue;
		ret = to_agent(h, &(struct wave_mem_msg){ .type = WAVE_MEM_PRESSURE, .tier = t,
							   .count = free_n, .now_ns = h->now });
	}
	return ret;
}

/* One recorded event on the model's host, in closed loop. */
static int play(struct mhost *h, const struct wave_mem_msg *d, const struct wave_msg *m)
{
	struct mregion *r;
	enum wave_result res;
	struct mchunk *c;
	int ret = 0;

	switch (d->type) {
	case WAVE_MEM_REGION_ADD:
		if (region_add(h, d) == 0 && (ret = replay_q_push(&h->to_agent, m)) == 0)
			ret = relieve(h);
		break;
	case WAVE_MEM_REGION_DEL:
		if ((r = region(h, d->region))) {
			region_del(h, r);
			ret = replay_q_push(&h->to_agent, m);
		}
		break;
	case WAVE_MEM_SAMPLES:
		if ((ret = samples(h, d)) == 0)
			ret = replay_q_push(&h->to_agent, m);
		break;
	case WAVE_MEM_FAULT:
		if ((c = chunk(h, d->chunk, &r, &res)))
			ret = touch(h, r, c, 1);
		break;
	case WAVE_MEM_TICK:
		if ((ret = pressure(h)) == 0)
			ret = replay_q_push(&h->to_agent, m);
		break;
	default: /* the recorded host's own doing, and the recorded outcomes */
		return 0;
	}
	return ret < 0 ? ret : run(h);
}

/* One recorded event on the recorded placement. */
static void recorded(struct mhost *h, const struct wave_mem_msg *d)
{
	struct mregion *r;
	enum wave_result res;
	struct mchunk *c = NULL;

	if (d->type == WAVE_MEM_FAULT || d->type == WAVE_MEM_CHUNK_CHANGED ||
	    d->type == WAVE_MEM_OUTCOME)
		c = chunk(h, d->chunk, &r, &res);
	switch (d->type) {
	case WAVE_MEM_REGION_ADD:
		region_add(h, d);
		return;
	case WAVE_MEM_REGION_DEL:
		if ((r = region(h, d->region)))
			region_del(h, r);
		return;
	case WAVE_MEM_SAMPLES:
		(void)samples(h, d);
		return;
	case WAVE_MEM_FAULT:
		if (c) {
			h->accesses++;
			h->faults++;
			c->accessed = 1;
			move(h, c, d->tier, d->seq);
		}
		return;
	case WAVE_MEM_CHUNK_CHANGED:
		if (c) {
			h->local += d->tier > c->tier;
			move(h, c, d->tier, d->seq);
		}
		return;
	case WAVE_MEM_OUTCOME:
		if (d->result != WAVE_COMMITTED) {
			h->aborts[d->result]++;
		} else if (c) {
			h->commits++;
			h->promotions += d->tier < c->tier;
			h->demotions += d->tier > c->tier;
			h->victims_used += d->decision == WAVE_MEM_VICTIM;
			move(h, c, d->tier, d->new_seq);
		}
		return;
	default:
		return;
	}
}

/* ---- the figures ------------------------------------------------------- */

static void figures(const struct mhost *h, struct replay_figures *f)
{
	uint64_t span = h->now > h->t_first ? h->now - h->t_first : 0, other = 0;

	for (unsigned r = 0; r < WAVE_RESULT_COUNT; r++)
		if (r != WAVE_ABORT_STALE && r != WAVE_ABORT_BUSY)
			other += h->aborts[r];
	replay_figure(f, "accesses", "", (double)h->accesses);
	replay_figure(f, "fast_share", "%",
		      h->accesses ? 100.0 * (double)h->fast / (double)h->accesses : 0);
	replay_figure(f, "faults", "", (double)h->faults);
	replay_figure(f, "migrations", "", (double)h->commits);
	replay_figure(f, "promotions", "", (double)h->promotions);
	replay_figure(f, "demotions", "", (double)h->demotions);
	replay_figure(f, "victims_used", "", (double)h->victims_used);
	replay_figure(f, "local_demotions", "", (double)h->local);
	replay_figure(f, "aborts", "", (double)(h->aborts[WAVE_ABORT_STALE] +
						h->aborts[WAVE_ABORT_BUSY] + other));
	replay_figure(f, "abort_stale", "", (double)h->aborts[WAVE_ABORT_STALE]);
	replay_figure(f, "abort_busy", "", (double)h->aborts[WAVE_ABORT_BUSY]);
	replay_figure(f, "abort_other", "", (double)other);
	replay_figure(f, "slow_tier_mean", "chk", span ? h->slow_area / (double)span : 0);
	replay_figure(f, "slow_tier_max", "chk", (double)h->slow_max);
	replay_figure(f, "model_errors", "", (double)h->errors);
}

/* ---- the model's life -------------------------------------------------- */

static int host_init(struct mhost *h, const struct wave_msg *setup, struct wave_plugin *p,
		     const struct wave_params *params, struct wave_error *err)
{
	struct wave_mem_msg d;
	int ret;

	(void)wave_mem_msg_decode(setup, 1, &d); /* checked by mem_replay_setup() */
	h->n_tiers = d.n;
	h->far = -1;
	for (uint32_t t = 0; t < d.n; t++) {
		h->cap[t] = d.capacity[t];
		if (d.kind[t] == WAVE_MEM_KIND_FAR)
			h->far = (int)t;
	}
	h->slow = h->far >= 0 ? (uint32_t)h->far : (uint32_t)d.n - 1;
	if (!p)
		return 0;
	h->model = true;
	if ((ret = wave_mem_state_create(setup, 0, &h->st)) < 0)
		return wave_error_set(err, ret, "replay", 0, 0, "the mem state model: %s",
				      wave_strerror(ret));
	return replay_plugin_start(p, params, h->st, &h->to_host, &h->ctx, err);
}

static void host_fini(struct mhost *h)
{
	wave_plugin_ctx_destroy(h->ctx);
	wave_mem_state_destroy(h->st);
	while (h->n_reg)
		region_del(h, &h->reg[h->n_reg - 1]);
	replay_q_free(&h->to_agent);
	replay_q_free(&h->to_host);
}

static int quality(struct trace_reader *r, struct wave_plugin *p,
		   const struct wave_params *params, struct replay_figures *f,
		   struct wave_error *err)
{
	struct mhost *h = calloc(1, sizeof(*h));
	struct wave_mem_msg d;
	struct wave_msg setup;
	struct trace_rec rec;
	int ret;

	memset(f, 0, sizeof(*f));
	if (!h)
		return wave_error_set(err, -ENOMEM, "replay", 0, 0, "out of memory");
	if (mem_replay_setup(r, &setup, &h->n_tiers) < 0) {
		free(h);
		return wave_error_set(err, -EBADMSG, "replay", 0, 0,
				      "the trace has no mem SETUP (the host's tiers)");
	}
	if ((ret = host_init(h, &setup, p, params, err)) < 0)
		goto out;
	trace_reader_rewind(r);
	while ((ret = trace_reader_next(r, &rec, err)) == 1) {
		if (rec.kind != TRACE_EVENT || rec.msg.type == WAVE_MEM_SETUP ||
		    wave_mem_msg_decode(&rec.msg, h->n_tiers, &d) < 0)
			continue;
		advance(h, d.now_ns); /* SAMPLES: at the latest host time seen */
		if (!h->model) {
			recorded(h, &d);
		} else if ((ret = play(h, &d, &rec.msg)) < 0) {
			wave_error_set(err, ret, "replay", 0, 0, "offset %llu: the model host: %s",
				       (unsigned long long)rec.offset, wave_strerror(ret));
			break;
		}
	}
	if (ret == 0)
		figures(h, f);
out:
	host_fini(h);
	free(h);
	return ret;
}

struct mhost *mem_replay_host_new(const struct wave_msg *setup)
{
	struct mhost *h = calloc(1, sizeof(*h));

	if (h)
		(void)host_init(h, setup, NULL, NULL, NULL);
	return h;
}

void mem_replay_host_event(struct mhost *h, const struct wave_mem_msg *d)
{
	advance(h, d->now_ns);
	recorded(h, d);
}

uint64_t mem_replay_host_used(const struct mhost *h, uint32_t tier)
{
	return tier < h->n_tiers ? h->used[tier] : 0;
}

void mem_replay_host_free(struct mhost *h)
{
	if (h)
		host_fini(h);
	free(h);
}

const struct replay_model mem_replay_model = {
	.quality = quality,
	.chrome = mem_replay_chrome,
	.describe = mem_replay_describe,
};
