/* SPDX-License-Identifier: MIT */
/*
 * The mem state model: applies each host message to the tiers, regions and
 * chunks, refusing (and counting) what cannot be true, then calls the
 * plugin's op named after the message. The host is the authority on what
 * happened; the checks here catch a confused or hostile host before a
 * policy acts on a state that cannot exist.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugin/plugin_impl.h"
#include "mem_agent_impl.h"

/* ---- life cycle -------------------------------------------------------- */

WAVE_API int wave_mem_state_create(const struct wave_msg *setup, uint64_t max_chunks,
				   struct wave_mem_state **out)
{
	struct wave_mem_state *st;
	struct wave_mem_msg d;

	if (!setup || !out)
		return -EINVAL;
	if (setup->type != WAVE_MEM_SETUP || wave_mem_msg_decode(setup, 1, &d) < 0)
		return -EBADMSG;
	if (!(st = calloc(1, sizeof(*st))))
		return -ENOMEM;
	st->magic = MEM_STATE_MAGIC;
	st->n_tiers = d.n;
	st->max_chunks = max_chunks ? max_chunks : WAVE_MEM_STATE_DEFAULT_MAX_CHUNKS;
	for (uint32_t t = 0; t < d.n; t++) {
		st->tiers[t].kind = d.kind[t];
		st->tiers[t].capacity = d.capacity[t] == WAVE_MEM_CAP_NONE ? UINT64_MAX
									  : d.capacity[t];
	}
	*out = st;
	return 0;
}

WAVE_API void wave_mem_state_destroy(struct wave_mem_state *st)
{
	if (!st)
		return;
	for (unsigned i = 0; i < WAVE_MEM_STATE_MAX_REGIONS; i++)
		free(st->regions[i].c);
	st->magic = 0;
	free(st);
}

WAVE_API int wave_mem_state_stats(const struct wave_mem_state *st,
				  struct wave_mem_state_stats *out)
{
	if (!st || !out || st->magic != MEM_STATE_MAGIC)
		return -EINVAL;
	*out = st->stats;
	out->refused_stale = st->refused.n[DEC_REFUSED_STALE];
	out->refused_gone = st->refused.n[DEC_REFUSED_GONE];
	out->refused_not_eligible = st->refused.n[DEC_REFUSED_NOT_ELIGIBLE];
	out->refused_busy = st->refused.n[DEC_REFUSED_BUSY];
	out->refused_invalid = st->refused.n[DEC_REFUSED_INVALID];
	out->refused_full = st->refused.n[DEC_REFUSED_FULL];
	out->tiers = st->n_tiers;
	out->chunks = st->n_chunks;
	out->victims = st->n_victims;
	out->bytes = sizeof(*st) + st->n_chunks * sizeof(struct mem_chunk);
	out->regions = 0;
	for (unsigned i = 0; i < WAVE_MEM_STATE_MAX_REGIONS; i++)
		out->regions += st->regions[i].live;
	return 0;
}

/* ---- helpers shared with the decisions -------------------------------- */

struct mem_region *mem_region_find(struct wave_mem_state *st, uint32_t id)
{
	struct mem_region *r = &st->regions[st->last_slot];

	if (r->live && r->id == id)
		return r;
	for (uint32_t i = 0; i < WAVE_MEM_STATE_MAX_REGIONS; i++) {
		r = &st->regions[i];
		if (r->live && r->id == id) {
			st->last_slot = i;
			return r;
		}
	}
	return NULL;
}

struct mem_chunk *mem_chunk_find(struct wave_mem_state *st, uint64_t id)
{
	struct mem_region *r = mem_region_find(st, (uint32_t)(id >> 32));
	uint64_t i = id & 0xffffffffu;

	return r && i < r->n ? &r->c[i] : NULL;
}

static uint16_t pend_type(uint8_t kind)
{
	static const uint16_t types[] = { 0, WAVE_MEM_MIGRATE, WAVE_MEM_VICTIM, WAVE_MEM_PREFETCH };

	return types[kind];
}

void mem_chunk_view(struct wave_mem_state *st, struct mem_chunk *c, uint64_t id,
		    struct wave_mem_chunk_view *out)
{
	mem_chunk_cool(st, c);
	memset(out, 0, sizeof(*out));
	out->id = id;
	out->seq = c->seq;
	out->last_ns = c->last_ns;
	out->count = c->count;
	out->tier = c->tier;
	out->bucket = (uint16_t)mem_bucket(c->count);
	out->pending = pend_type(c->pend.kind);
	out->pending_tier = dec_pend_any(&c->pend) ? c->pend.res : 0;
	out->refault_ms = st->tiers[c->tier].kind == WAVE_MEM_KIND_FAR ? 0 : c->away;
}

void mem_chunk_move(struct wave_mem_state *st, struct mem_chunk *c, uint32_t tier)
{
	unsigned b = mem_bucket(c->count);

	st->tiers[c->tier].used--;
	st->tiers[c->tier].hist[b]--;
	st->tiers[tier].used++;
	st->tiers[tier].hist[b]++;
	c->tier = (uint8_t)tier;
}

void mem_chunk_unpend(struct wave_mem_state *st, struct mem_chunk *c)
{
	if (!dec_pend_any(&c->pend))
		return;
	st->tiers[c->pend.res].incoming--;
	st->tiers[c->tier].outgoing--;
	if (c->pend.kind == MEM_PEND_VICTIM)
		st->n_victims--;
	dec_pend_unlink(&c->pend, NULL, 0);
}

/* @c moves to @tier at the state's time: into the far tier, it keeps the
 * time it left (ms, 16 bits); back by a fault, how long it was away (at
 * least 1 ms, at most 65535). Otherwise, or when the 16 bits may have
 * wrapped (its last access seen, before it left, is 65.5 s old or more,
 * or it was never seen touched), 0. */
static void chunk_away(struct wave_mem_state *st, struct mem_chunk *c, uint32_t tier, bool fault)
{
	uint16_t now = (uint16_t)(st->now / 1000000u);
	uint16_t away = (uint16_t)(now - c->away);

	if (st->tiers[tier].kind == WAVE_MEM_KIND_FAR)
		c->away = now;
	else if (!fault || !c->last_ns || st->now - c->last_ns >= UINT64_C(65535) * 1000000u)
		c->away = 0;
	else
		c->away = away ? away : 1;
}

/* Adds @n accesses seen at @now to @c (cooled), moving it in the histogram. */
static void chunk_touch(struct wave_mem_state *st, struct mem_chunk *c, uint32_t n)
{
	uint64_t *hist = st->tiers[c->tier].hist;

	mem_chunk_cool(st, c);
	hist[mem_bucket(c->count)]--;
	c->count = c->count > UINT32_MAX - n ? UINT32_MAX : c->count + n;
	hist[mem_bucket(c->count)]++;
	c->last_ns = st->now;
	st->stats.accesses += n;
}

/* The accesses a fault counts as: the policy's fault_weight; 1 (ABI 1.3's
 * rule) for a table built before it, or with no plugin. */
static uint32_t fault_weight(const struct wave_plugin_ctx *ctx)
{
	const struct wave_mem_ops *ops = ctx ? plugin_ops(ctx, WAVE_DOMAIN_MEM) : NULL;

	if (!ops || ops->size < offsetof(struct wave_mem_ops, fault_weight) +
					sizeof(ops->fault_weight))
		return 1;
	return ops->fault_weight;
}

/* A far fault of @c: it was touched, so its count is at least 1 and its
 * age starts over, and it counts as the policy's weight of accesses. */
static void chunk_fault(struct wave_mem_state *st, const struct wave_plugin_ctx *ctx,
			struct mem_chunk *c)
{
	uint32_t w = fault_weight(ctx);

	mem_chunk_cool(st, c);
	chunk_touch(st, c, w ? w : !c->count);
	st->stats.faults++;
}

/* ---- calling the plugin ------------------------------------------------ */

#define CALL(ctx, op, ...) PLUGIN_CALL(ctx, struct wave_mem_ops, op, __VA_ARGS__)

/* ---- regions ----------------------------------------------------------- */

static int ev_region_add(struct wave_mem_state *st, struct wave_plugin_ctx *ctx,
			 const struct wave_mem_msg *m)
{
	struct mem_region *r = NULL;
	struct mem_tier *t = &st->tiers[m->tier];

	if (mem_region_find(st, m->region))
		return dec_count(&st->stats.dup_region, -EEXIST);
	for (unsigned i = 0; i < WAVE_MEM_STATE_MAX_REGIONS && !r; i++)
		if (!st->regions[i].live)
			r = &st->regions[i];
	if (!r || m->count > st->max_chunks - st->n_chunks ||
	    !(r->c = malloc(m->count * sizeof(*r->c))))
		return dec_count(&st->stats.no_memory, -ENOMEM);
	for (uint64_t i = 0; i < m->count; i++) {
		r->c[i] = (struct mem_chunk){ .seq = m->seq, .epoch = st->epoch,
					      .tier = (uint8_t)m->tier };
		dec_pend_init(&r->c[i].pend);
	}
	r->id = m->region;
	r->n = m->count;
	r->chunk_size = m->chunk_size;
	r->live = true;
	st->n_chunks += m->count;
	t->used += m->count;
	t->hist[0] += m->count;
	CALL(ctx, region_add, m->region, m->count);
	return 0;
}

static int ev_region_del(struct wave_mem_state *st, struct wave_plugin_ctx *ctx,
			 const struct wave_mem_msg *m)
{
	struct mem_region *r = mem_region_find(st, m->region);

	if (!r)
		return dec_count(&st->stats.unknown, -ENOENT);
	/* Its decisions in flight abort (as gone): their outcomes find no
	 * chunk, and the tiers forget them now. */
	for (uint64_t i = 0; i < r->n; i++) {
		struct mem_chunk *c = &r->c[i];

		mem_chunk_unpend(st, c);
		mem_chunk_cool(st, c);
		st->tiers[c->tier].used--;
		st->tiers[c->tier].hist[mem_bucket(c->count)]--;
	}
	st->n_chunks -= r->n;
	free(r->c);
	*r = (struct mem_region){ 0 };
	for (uint32_t t = 0; t < st->n_tiers; t++)
		if (st->tiers[t].hand_slot == (uint32_t)(r - st->regions))
			st->tiers[t].hand_index = 0;
	CALL(ctx, region_del, m->region);
	return 0;
}

/* ---- chunks ------------------------------------------------------------ */

/* The chunk an event is about, if its sequence number advances; NULL with
 * *@err set otherwise. */
static struct mem_chunk *event_chunk(struct wave_mem_state *st, const struct wave_mem_msg *m,
				     int *err)
{
	struct mem_chunk *c = mem_chunk_find(st, m->chunk);

	if (!c)
		*err = dec_count(&st->stats.unknown, -ENOENT);
	else if (m->seq <= c->seq)
		*err = dec_count(&st->stats.seq_backwards, -ESTALE);
	return c && m->seq > c->seq ? c : NULL;
}

/* CHUNK_CHANGED and FAULT. */
static int ev_chunk(struct wave_mem_state *st, struct wave_plugin_ctx *ctx,
		    const struct wave_mem_msg *m)
{
	struct wave_mem_chunk_view view;
	bool fault = m->type == WAVE_MEM_FAULT;
	struct mem_chunk *c;
	int err = 0;

	if (!(c = event_chunk(st, m, &err)))
		return err;
	/* A fault brings a chunk back from the far tier into a faster one. */
	if (fault && (st->tiers[c->tier].kind != WAVE_MEM_KIND_FAR || m->tier == c->tier))
		return dec_count(&st->stats.bad_transition, -EPROTO);
	mem_chunk_cool(st, c);
	/* A decision in flight stays so: the host answers it (as stale). */
	if (dec_pend_any(&c->pend)) {
		st->tiers[c->tier].outgoing--;
		st->tiers[m->tier].outgoing++;
	}
	chunk_away(st, c, m->tier, fault);
	mem_chunk_move(st, c, m->tier);
	c->seq = m->seq;
	if (fault)
		chunk_fault(st, ctx, c);
	mem_chunk_view(st, c, m->chunk, &view);
	if (fault)
		CALL(ctx, fault, &view);
	else
		CALL(ctx, chunk_changed, &view);
	return 0;
}

static int ev_samples(struct wave_mem_state *st, struct wave_plugin_ctx *ctx,
		      const struct wave_mem_msg *m)
{
	struct wave_mem_chunk_view views[WAVE_MEM_SAMPLES_MAX];
	struct mem_region *r = mem_region_find(st, m->region);

	if (!r)
		return dec_count(&st->stats.unknown, -ENOENT);
	for (unsigned i = 0; i < m->n; i++)
		if (m->index[i] >= r->n)
			return dec_count(&st->stats.unknown, -ENOENT);
	for (unsigned i = 0; i < m->n; i++) {
		struct mem_chunk *c = &r->c[m->index[i]];

		chunk_touch(st, c, m->accesses[i]);
		mem_chunk_view(st, c, (uint64_t)r->id << 32 | m->index[i], &views[i]);
	}
	CALL(ctx, samples, views, m->n);
	return 0;
}

/* ---- outcomes ---------------------------------------------------------- */

static uint8_t pend_kind(uint16_t decision)
{
	return decision == WAVE_MEM_MIGRATE  ? MEM_PEND_MIGRATE
	       : decision == WAVE_MEM_VICTIM ? MEM_PEND_VICTIM
					     : MEM_PEND_PREFETCH;
}

static void count_result(struct wave_mem_state *st, unsigned result)
{
	if (result == WAVE_COMMITTED)
		st->stats.committed++;
	else
		st->stats.aborted[result]++;
}

static int ev_outcome(struct wave_mem_state *st, struct wave_plugin_ctx *ctx,
		      const struct wave_mem_msg *m)
{
	struct mem_chunk *c = mem_chunk_find(st, m->chunk);
	bool committed = m->result == WAVE_COMMITTED;
	struct wave_mem_chunk_view view;

	if (!c) {
		/* Its region went, and the decision with it (REGION_DEL). */
		if (committed)
			return dec_count(&st->stats.unknown, -ENOENT);
		count_result(st, m->result);
		CALL(ctx, txn_aborted, NULL, m->chunk, m->decision, m->tier, m->result);
		return 0;
	}
	/* The decision in flight, based on a sequence number the chunk had;
	 * a commit needs the chunk unchanged since, and advances it. */
	if (!dec_pend_matches(&c->pend, pend_kind(m->decision), m->tier) || m->seq > c->seq ||
	    (committed && (m->seq != c->seq || m->tier == c->tier)))
		return dec_count(&st->stats.bad_transition, -EPROTO);
	mem_chunk_unpend(st, c);
	count_result(st, m->result);
	if (committed) {
		mem_chunk_cool(st, c);
		chunk_away(st, c, m->tier, false);
		mem_chunk_move(st, c, m->tier);
		c->seq = m->new_seq;
	}
	mem_chunk_view(st, c, m->chunk, &view);
	if (committed)
		CALL(ctx, txn_committed, &view, m->decision);
	else
		CALL(ctx, txn_aborted, &view, m->chunk, m->decision, m->tier, m->result);
	return 0;
}

/* ---- entry ------------------------------------------------------------- */

static int apply(struct wave_mem_state *st, struct wave_plugin_ctx *ctx,
		 const struct wave_mem_msg *m)
{
	if (m->now_ns > st->now)
		st->now = m->now_ns; /* host time never runs backwards here */
	switch (m->type) {
	case WAVE_MEM_REGION_ADD:
		return ev_region_add(st, ctx, m);
	case WAVE_MEM_REGION_DEL:
		return ev_region_del(st, ctx, m);
	case WAVE_MEM_CHUNK_CHANGED:
	case WAVE_MEM_FAULT:
		return ev_chunk(st, ctx, m);
	case WAVE_MEM_SAMPLES:
		return ev_samples(st, ctx, m);
	case WAVE_MEM_PRESSURE:
		CALL(ctx, pressure, m->tier, m->count);
		return 0;
	case WAVE_MEM_TICK:
		CALL(ctx, tick, st->now);
		return 0;
	case WAVE_MEM_OUTCOME:
		return ev_outcome(st, ctx, m);
	default: /* a decision (only the agent sends those), or a second SETUP */
		return dec_count(&st->stats.bad_msgs, -ENOMSG);
	}
}

static bool ctx_ok(const struct wave_mem_state *st, const struct wave_plugin_ctx *ctx)
{
	return !ctx || plugin_domain_state(ctx, WAVE_DOMAIN_MEM) == st;
}

WAVE_API int wave_mem_state_replay(struct wave_mem_state *st, struct wave_plugin_ctx *ctx)
{
	if (!st || !ctx || st->magic != MEM_STATE_MAGIC || !ctx_ok(st, ctx))
		return -EINVAL;
	/* The plugin's decisions change chunks, never the region table (only
	 * events do), so the walk stays valid. */
	for (unsigned i = 0; i < WAVE_MEM_STATE_MAX_REGIONS; i++)
		if (st->regions[i].live)
			CALL(ctx, region_add, st->regions[i].id, st->regions[i].n);
	CALL(ctx, tick, st->now);
	return 0;
}

WAVE_API int wave_mem_state_apply(struct wave_mem_state *st, struct wave_plugin_ctx *ctx,
				  const struct wave_msg *m)
{
	struct wave_mem_msg d;
	uint64_t was;
	int ret;

	if (!st || !m || st->magic != MEM_STATE_MAGIC || !ctx_ok(st, ctx))
		return -EINVAL;
	if ((ret = wave_mem_msg_decode(m, st->n_tiers, &d)) < 0)
		return dec_count(&st->stats.bad_msgs, ret);
	was = st->now;
	ret = apply(st, ctx, &d);
	if (ret == 0)
		st->stats.events++;
	else
		st->now = was; /* a refused message changes nothing */
	return ret;
}
