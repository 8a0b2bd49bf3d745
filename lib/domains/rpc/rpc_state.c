/* SPDX-License-Identifier: MIT */
/*
 * The agent's state model of the rpc domain (include/wave/rpc_state.h):
 * every host message is checked against the model before it changes
 * anything, then applied, then handed to the plugin's op.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugin/plugin_impl.h"
#include "rpc_impl.h"

/* The decay factor until the plugin sets one. */
#define KEEP_DEFAULT 0.5

WAVE_API int wave_rpc_state_create(const struct wave_msg *setup, struct wave_rpc_state **out)
{
	struct wave_rpc_state *st;
	struct wave_rpc_msg d;
	int ret;

	if (!setup || !out)
		return -EINVAL;
	if ((ret = wave_rpc_msg_decode(setup, NULL, &d)) < 0)
		return ret;
	if (!(st = calloc(1, sizeof(*st))))
		return -ENOMEM;
	st->magic = RPC_STATE_MAGIC;
	st->dims = d.dims;
	st->n_entries = d.dims.n_buckets + d.dims.n_classes;
	st->epoch = d.epoch;
	st->report_ns = d.period_ns;
	st->keep = KEEP_DEFAULT;
	st->workers = calloc(d.dims.max_workers, sizeof(*st->workers));
	st->entries = calloc(st->n_entries, sizeof(*st->entries));
	st->disp = calloc(d.dims.n_dispatchers + 1u, sizeof(*st->disp));
	if (!st->workers || !st->entries || !st->disp) {
		wave_rpc_state_destroy(st);
		return -ENOMEM;
	}
	for (uint32_t b = 0; b < st->n_entries; b++) {
		st->entries[b].worker = WAVE_RPC_NO_WORKER;
		dec_pend_init(&st->entries[b].pend);
	}
	for (uint32_t i = 0; i < d.dims.n_dispatchers; i++) {
		st->disp[i].staged = WAVE_RPC_NO_WORKER;
		dec_pend_init(&st->disp[i].pend);
	}
	*out = st;
	return 0;
}

WAVE_API void wave_rpc_state_destroy(struct wave_rpc_state *st)
{
	if (!st)
		return;
	free(st->workers);
	free(st->entries);
	free(st->disp);
	free(st);
}

/* ---- views ------------------------------------------------------------------ */

void rpc_worker_view(const struct wave_rpc_state *st, uint32_t w, struct wave_rpc_worker *out)
{
	const struct rpc_worker *k = &st->workers[w];

	memset(out, 0, sizeof(*out));
	out->id = w;
	out->gen = k->gen;
	out->queue_depth = k->queue_depth;
	out->buckets = k->buckets;
	out->load = k->load;
	out->arrival_rate = k->arrival_rate;
	out->completion_rate = k->completion_rate;
	out->service_ns = k->service_ns;
	out->busy_ns = k->last_busy_ns;
	out->completions = k->last_completions;
	out->max_service_ns = k->last_max_service_ns;
}

void rpc_entry_view(const struct wave_rpc_state *st, uint32_t b, struct wave_rpc_bucket *out)
{
	const struct rpc_entry *e = &st->entries[b];

	memset(out, 0, sizeof(*out));
	out->id = b;
	out->worker = e->worker;
	out->seq = e->seq;
	out->pending = dec_pend_any(&e->pend) ? e->pend.res : WAVE_RPC_NO_WORKER;
	out->rate = e->rate;
	out->arrivals = e->last_arrivals;
	out->service_ns = e->service_ns;
	out->completions = e->last_completions;
}

/* ---- applying messages ----------------------------------------------------- */

static bool live(const struct wave_rpc_state *st, uint32_t w)
{
	return w < st->dims.max_workers && st->workers[w].live;
}

/* Entry @b now on worker @w (live, or none), at sequence number @seq. */
static void entry_set(struct wave_rpc_state *st, uint32_t b, uint32_t w, uint32_t seq)
{
	struct rpc_entry *e = &st->entries[b];

	if (e->worker != WAVE_RPC_NO_WORKER)
		st->workers[e->worker].buckets--;
	if (w != WAVE_RPC_NO_WORKER)
		st->workers[w].buckets++;
	e->worker = w;
	e->seq = seq;
}

static int worker_add(struct wave_rpc_state *st, struct wave_plugin_ctx *ctx,
		      const struct wave_rpc_msg *d)
{
	const struct wave_rpc_ops *ops = ctx ? rpc_ops(ctx) : NULL;
	struct rpc_worker *k = &st->workers[d->worker];
	struct wave_rpc_worker v;

	if (k->live)
		return dec_count(&st->stats.dup_worker, -EEXIST);
	memset(k, 0, sizeof(*k));
	k->live = 1;
	k->gen = d->gen;
	st->n_live++;
	if (ops && ops->worker_added) {
		rpc_worker_view(st, d->worker, &v);
		(void)ops->worker_added(ctx, &v);
	}
	return 0;
}

static int worker_del(struct wave_rpc_state *st, struct wave_plugin_ctx *ctx,
		      const struct wave_rpc_msg *d)
{
	const struct wave_rpc_ops *ops = ctx ? rpc_ops(ctx) : NULL;
	struct rpc_worker *k = &st->workers[d->worker];
	struct wave_rpc_worker v;

	if (!k->live || k->gen != d->gen)
		return dec_count(&st->stats.unknown_worker, -ENOENT);
	if (k->buckets)
		return dec_count(&st->stats.bad_transition, -EPROTO);
	k->live = 0;
	st->n_live--;
	for (uint32_t i = 0; i < st->dims.n_dispatchers; i++)
		if (st->disp[i].staged == d->worker)
			st->disp[i].staged = WAVE_RPC_NO_WORKER;
	if (ops && ops->worker_removed) {
		rpc_worker_view(st, d->worker, &v);
		(void)ops->worker_removed(ctx, &v);
	}
	return 0;
}

static int buckets(struct wave_rpc_state *st, struct wave_plugin_ctx *ctx,
		   const struct wave_rpc_msg *d)
{
	const struct wave_rpc_ops *ops = ctx ? rpc_ops(ctx) : NULL;
	struct wave_rpc_bucket v;

	/* All or nothing: every entry's worker must be live (or none). */
	for (unsigned i = 0; i < d->n; i++)
		if (d->e[i].a != WAVE_RPC_NO_WORKER && !live(st, d->e[i].a))
			return dec_count(&st->stats.unknown_worker, -ENOENT);
	st->epoch = d->epoch;
	for (unsigned i = 0; i < d->n; i++) {
		uint32_t b = d->bucket + i, from = st->entries[b].worker;

		entry_set(st, b, d->e[i].a, d->e[i].b);
		if (from != d->e[i].a && ops && ops->bucket_moved) {
			rpc_entry_view(st, b, &v);
			(void)ops->bucket_moved(ctx, &v, from);
		}
	}
	return 0;
}

static int load(struct wave_rpc_state *st, const struct wave_rpc_msg *d)
{
	struct rpc_worker *k = &st->workers[d->worker];

	if (!k->live)
		return dec_count(&st->stats.unknown_worker, -ENOENT);
	k->queue_depth = d->queue_depth;
	k->busy_ns += d->busy_ns;
	k->completions += d->completions;
	k->service_sum_ns += d->service_ns;
	if (d->max_service_ns > k->max_service_ns)
		k->max_service_ns = d->max_service_ns;
	return 0;
}

/* Saturating: a peer's counts are not trusted to stay in range. */
static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return b > UINT64_MAX - a ? UINT64_MAX : a + b;
}

static void class_load(struct wave_rpc_state *st, const struct wave_rpc_msg *d)
{
	struct rpc_entry *e = &st->entries[d->bucket];

	e->completions = add_sat(e->completions, d->completions);
	e->service_sum_ns = add_sat(e->service_sum_ns, d->service_ns);
}

static void arrivals(struct wave_rpc_state *st, const struct wave_rpc_msg *d)
{
	for (unsigned i = 0; i < d->n; i++) {
		struct rpc_entry *e = &st->entries[d->e[i].a];

		e->arrivals = d->e[i].b > UINT32_MAX - e->arrivals ? UINT32_MAX
								    : e->arrivals + d->e[i].b;
	}
}

static double decayed(double keep, double old, double now)
{
	return keep * old + (1.0 - keep) * now;
}

/* A period closed: every rate takes this period's value in. */
static void report(struct wave_rpc_state *st, struct wave_plugin_ctx *ctx,
		   const struct wave_rpc_msg *d)
{
	const struct wave_rpc_ops *ops = ctx ? rpc_ops(ctx) : NULL;
	double per_s = 1e9 / (double)d->period_ns;

	for (uint32_t w = 0; w < st->dims.max_workers; w++) {
		struct rpc_worker *k = &st->workers[w];

		if (!k->live)
			continue;
		k->load = decayed(st->keep, k->load, (double)k->busy_ns / (double)d->period_ns);
		k->completion_rate = decayed(st->keep, k->completion_rate,
					     (double)k->completions * per_s);
		if (k->completions)
			k->service_ns = decayed(st->keep, k->service_ns,
						(double)k->service_sum_ns / (double)k->completions);
		k->last_busy_ns = k->busy_ns;
		k->last_completions = k->completions;
		k->last_max_service_ns = k->max_service_ns;
		k->busy_ns = k->completions = k->service_sum_ns = k->max_service_ns = 0;
		k->arrival_rate = 0;
	}
	for (uint32_t b = 0; b < st->n_entries; b++) {
		struct rpc_entry *e = &st->entries[b];

		e->rate = decayed(st->keep, e->rate, (double)e->arrivals * per_s);
		e->last_arrivals = e->arrivals;
		e->arrivals = 0;
		if (e->completions)
			e->service_ns = decayed(st->keep, e->service_ns,
						(double)e->service_sum_ns / (double)e->completions);
		e->last_completions = e->completions;
		e->completions = e->service_sum_ns = 0;
		if (e->worker != WAVE_RPC_NO_WORKER)
			st->workers[e->worker].arrival_rate += e->rate;
	}
	st->reports++;
	st->last_now_ns = d->now_ns;
	st->last_period_ns = d->period_ns;
	if (ops)
		(void)ops->load_report(ctx, d->now_ns, d->period_ns);
}

static int outcome(struct wave_rpc_state *st, struct wave_plugin_ctx *ctx,
		   const struct wave_rpc_msg *d)
{
	const struct wave_rpc_ops *ops = ctx ? rpc_ops(ctx) : NULL;
	bool move = d->decision == WAVE_RPC_MOVE;
	struct dec_pend *p = move ? &st->entries[d->bucket].pend : &st->disp[d->bucket].pend;

	if (!dec_pend_matches(p, move ? RPC_PEND_MOVE : RPC_PEND_PRESTAGE, d->worker))
		return dec_count(&st->stats.bad_transition, -EPROTO);
	if (d->cur_worker != WAVE_RPC_NO_WORKER && !live(st, d->cur_worker))
		return dec_count(&st->stats.unknown_worker, -ENOENT);
	/* The host's truth, whatever the result. */
	(void)dec_pend_unlink(p, NULL, 0);
	st->epoch = d->epoch;
	if (move)
		entry_set(st, d->bucket, d->cur_worker, d->seq);
	else
		st->disp[d->bucket].staged = d->cur_worker;
	if (d->result == WAVE_COMMITTED) {
		st->stats.committed++;
	} else {
		st->stats.aborted[d->result]++;
		st->stats.aborted_why[d->why]++;
	}
	if (!ops)
		return 0;
	if (d->result == WAVE_COMMITTED && ops->txn_committed)
		(void)ops->txn_committed(ctx, d->decision, d->bucket, d->worker);
	else if (d->result != WAVE_COMMITTED)
		(void)ops->txn_aborted(ctx, d->decision, d->bucket, d->worker, d->result, d->why);
	return 0;
}

static int apply(struct wave_rpc_state *st, struct wave_plugin_ctx *ctx,
		 const struct wave_rpc_msg *d)
{
	switch (d->type) {
	case WAVE_RPC_WORKER_ADD:
		return worker_add(st, ctx, d);
	case WAVE_RPC_WORKER_DEL:
		return worker_del(st, ctx, d);
	case WAVE_RPC_BUCKETS:
		return buckets(st, ctx, d);
	case WAVE_RPC_LOAD:
		return load(st, d);
	case WAVE_RPC_ARRIVALS:
		arrivals(st, d);
		return 0;
	case WAVE_RPC_CLASS_LOAD:
		class_load(st, d);
		return 0;
	case WAVE_RPC_REPORT:
		report(st, ctx, d);
		return 0;
	case WAVE_RPC_OUTCOME:
		return outcome(st, ctx, d);
	default: /* a decision: a host never sends one */
		return dec_count(&st->stats.bad_msgs, -EBADMSG);
	}
}

WAVE_API int wave_rpc_state_apply(struct wave_rpc_state *st, struct wave_plugin_ctx *ctx,
				  const struct wave_msg *m)
{
	struct wave_rpc_msg d;
	int ret;

	if (!st || st->magic != RPC_STATE_MAGIC || !m || (ctx && rpc_state_of(ctx) != st))
		return -EINVAL;
	if ((ret = wave_rpc_msg_decode(m, &st->dims, &d)) < 0)
		return dec_count(&st->stats.bad_msgs, ret);
	if ((ret = apply(st, ctx, &d)) == 0)
		st->stats.events++;
	return ret;
}

WAVE_API int wave_rpc_state_replay(struct wave_rpc_state *st, struct wave_plugin_ctx *ctx)
{
	const struct wave_rpc_ops *ops;
	struct wave_rpc_worker v;

	if (!st || !ctx || rpc_state_of(ctx) != st || !(ops = rpc_ops(ctx)))
		return -EINVAL;
	for (uint32_t w = 0; w < st->dims.max_workers && ops->worker_added; w++) {
		if (!st->workers[w].live)
			continue;
		rpc_worker_view(st, w, &v);
		(void)ops->worker_added(ctx, &v);
	}
	if (st->reports)
		(void)ops->load_report(ctx, st->last_now_ns, st->last_period_ns);
	return 0;
}

WAVE_API int wave_rpc_state_stats(const struct wave_rpc_state *st,
				  struct wave_rpc_stats_agent *out)
{
	if (!st || st->magic != RPC_STATE_MAGIC || !out)
		return -EINVAL;
	*out = st->stats;
	out->refused_range = st->refused.n[DEC_REFUSED_INVALID];
	out->refused_worker = st->refused.n[DEC_REFUSED_GONE];
	out->refused_same = st->refused.n[DEC_REFUSED_NOT_ELIGIBLE];
	out->refused_pending = st->refused.n[DEC_REFUSED_BUSY];
	out->refused_full = st->refused.n[DEC_REFUSED_FULL];
	return 0;
}

/* ---- invariants, for tests and the fuzzer ------------------------------------ */

int wave_rpc_state_check(const struct wave_rpc_state *st)
{
	uint32_t n_live = 0, *owned = calloc(st->dims.max_workers, sizeof(*owned));
	int ret = 0;

	if (!owned)
		return -ENOMEM;
	for (uint32_t b = 0; b < st->n_entries; b++) {
		const struct rpc_entry *e = &st->entries[b];

		if (e->worker != WAVE_RPC_NO_WORKER && !live(st, e->worker))
			ret = -EPROTO; /* steered to a worker that is not live */
		else if (e->worker != WAVE_RPC_NO_WORKER)
			owned[e->worker]++;
		if (dec_pend_any(&e->pend) &&
		    (e->pend.kind != RPC_PEND_MOVE || e->pend.res >= st->dims.max_workers))
			ret = -EPROTO;
	}
	for (uint32_t w = 0; w < st->dims.max_workers; w++) {
		n_live += st->workers[w].live != 0;
		if (owned[w] != st->workers[w].buckets)
			ret = -EPROTO; /* the per-worker count disagrees with the table */
	}
	for (uint32_t i = 0; i < st->dims.n_dispatchers; i++) {
		const struct rpc_disp *d = &st->disp[i];

		if (d->staged != WAVE_RPC_NO_WORKER && !live(st, d->staged))
			ret = -EPROTO;
		if (dec_pend_any(&d->pend) &&
		    (d->pend.kind != RPC_PEND_PRESTAGE || d->pend.res >= st->dims.max_workers))
			ret = -EPROTO;
	}
	free(owned);
	return n_live == st->n_live ? ret : -EPROTO;
}
