/* SPDX-License-Identifier: MIT */
/*
 * rpc_rebalance: RSS++-style rebalancing of the steering table (Barbette
 * et al., CoNEXT'19). After each load report, while the most loaded worker
 * carries more than the least loaded one by a margin, move one bucket from
 * the first to the second: the largest bucket that does not overshoot (at
 * most half the gap), so a gap is closed with the fewest moves; at most
 * max_moves per period, so the table never churns.
 *
 * A worker's load is projected from what is steered to it now: the
 * arrival rate of its buckets times its mean service time (for a worker
 * that has served nothing yet, the mean of the others'; with no service
 * times reported at all, the arrival rate alone). A bucket's share is its
 * own arrival rate times that service time. Projecting from the table as
 * it is, rather than from last period's busy time, keeps a move from
 * being made twice while the measured load catches up with it. A worker
 * that has no bucket yet (just added) has no load, and receives first.
 *
 * Parameters (domains.rpc.params):
 *   max_moves   moves per period (default 4)
 *   margin      the gap worth closing, as a fraction of the mean load
 *               (default 0.1)
 *   every       decide every this many reports (default 1)
 * Counters: "rebalances" (periods that moved something).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include <wave/plugin.h>
#include <wave/plugin_rpc.h>

struct rebal {
	uint32_t max_moves;
	uint32_t every;
	double margin;
	uint64_t reports;
	int ctr_rebalances;
	double *load; /* per worker number, this round's plan */
	uint32_t n_workers;
	double mean_cost; /* this round's mean service time (1: none known) */
};

static int rebal_init(struct wave_plugin_ctx *ctx)
{
	struct rebal *r = calloc(1, sizeof(*r));
	uint64_t max = wave_plugin_param_uint(ctx, "max_moves", 4);
	uint64_t every = wave_plugin_param_uint(ctx, "every", 1);

	if (!r)
		return -ENOMEM;
	r->margin = wave_plugin_param_double(ctx, "margin", 0.1);
	if (max == 0 || max > 65536 || every == 0 || every > 1000000 || !(r->margin >= 0)) {
		wave_plugin_log(ctx, WAVE_LOG_ERROR,
				"max_moves (1..65536), every (1..1000000) and margin (>= 0) "
				"are out of range");
		free(r);
		return -EINVAL;
	}
	r->max_moves = (uint32_t)max;
	r->every = (uint32_t)every;
	r->ctr_rebalances = wave_plugin_counter(ctx, "rebalances");
	wave_plugin_set_priv(ctx, r);
	return 0;
}

static void rebal_fini(struct wave_plugin_ctx *ctx)
{
	struct rebal *r = wave_plugin_priv(ctx);

	free(r->load);
	free(r);
}

/* The service time that weighs worker @w's arrivals (see the top). */
static double cost_of(const struct rebal *r, const struct wave_rpc_worker *w)
{
	return w->service_ns > 0 ? w->service_ns : r->mean_cost;
}

/* The plan's load of every live worker (-1 for a number not live), and
 * their mean. Return: live workers. */
static uint32_t plan_loads(struct wave_plugin_ctx *ctx, struct rebal *r, double *mean)
{
	struct wave_rpc_worker w;
	uint32_t live = 0, timed = 0;
	double sum = 0;

	r->mean_cost = 0;
	for (uint32_t i = 0; i < r->n_workers; i++)
		if (wave_plugin_rpc_worker(ctx, i, &w) == 0 && w.service_ns > 0) {
			r->mean_cost += w.service_ns;
			timed++;
		}
	r->mean_cost = timed ? r->mean_cost / timed : 1.0;
	for (uint32_t i = 0; i < r->n_workers; i++) {
		r->load[i] = -1;
		if (wave_plugin_rpc_worker(ctx, i, &w) < 0)
			continue;
		r->load[i] = w.arrival_rate * cost_of(r, &w);
		sum += r->load[i];
		live++;
	}
	*mean = live ? sum / live : 0;
	return live;
}

static void extremes(const struct rebal *r, uint32_t *hi, uint32_t *lo)
{
	*hi = *lo = UINT32_MAX;
	for (uint32_t i = 0; i < r->n_workers; i++) {
		if (r->load[i] < 0)
			continue;
		if (*hi == UINT32_MAX || r->load[i] > r->load[*hi])
			*hi = i;
		if (*lo == UINT32_MAX || r->load[i] < r->load[*lo])
			*lo = i;
	}
}

/* The bucket of @hi whose share of its load is the largest not above
 * @limit (and above 0), or UINT32_MAX; its share into *@share. */
static uint32_t pick_bucket(struct wave_plugin_ctx *ctx, const struct rebal *r, uint32_t hi,
			    double limit, double *share)
{
	struct wave_rpc_info info;
	struct wave_rpc_worker w;
	struct wave_rpc_bucket b;
	uint32_t best = UINT32_MAX, n;

	if (wave_plugin_rpc_info(ctx, &info) < 0 || wave_plugin_rpc_worker(ctx, hi, &w) < 0)
		return UINT32_MAX;
	n = info.dims.n_buckets + info.dims.n_classes;
	*share = 0;
	for (uint32_t i = 0; i < n; i++) {
		double s;

		if (wave_plugin_rpc_bucket(ctx, i, &b) < 0 || b.worker != hi ||
		    b.pending != WAVE_RPC_NO_WORKER || b.rate <= 0)
			continue;
		s = b.rate * cost_of(r, &w);
		if (s <= limit && s > *share) {
			best = i;
			*share = s;
		}
	}
	return best;
}

static int rebalance(struct wave_plugin_ctx *ctx, struct rebal *r)
{
	uint32_t moved = 0, hi, lo;
	double mean, share;

	if (plan_loads(ctx, r, &mean) < 2)
		return 0;
	while (moved < r->max_moves) {
		uint32_t b;

		extremes(r, &hi, &lo);
		if (r->load[hi] - r->load[lo] <= r->margin * mean)
			break;
		b = pick_bucket(ctx, r, hi, (r->load[hi] - r->load[lo]) / 2, &share);
		if (b == UINT32_MAX || wave_plugin_rpc_move(ctx, b, lo) < 0)
			break;
		r->load[hi] -= share;
		r->load[lo] += share;
		moved++;
	}
	if (moved)
		wave_plugin_counter_add(ctx, r->ctr_rebalances, 1);
	return 0;
}

static int rebal_load_report(struct wave_plugin_ctx *ctx, uint64_t now_ns, uint64_t period_ns)
{
	struct rebal *r = wave_plugin_priv(ctx);
	struct wave_rpc_info info;

	(void)now_ns, (void)period_ns;
	if (++r->reports % r->every)
		return 0;
	if (wave_plugin_rpc_info(ctx, &info) < 0)
		return -EINVAL;
	if (r->n_workers != info.dims.max_workers) {
		double *load = realloc(r->load, info.dims.max_workers * sizeof(*load));

		if (!load)
			return -ENOMEM;
		r->load = load;
		r->n_workers = info.dims.max_workers;
	}
	return rebalance(ctx, r);
}

/* The model holds the host's truth already; the next report decides
 * again from it. */
static int rebal_txn_aborted(struct wave_plugin_ctx *ctx, uint16_t decision, uint32_t target,
			     uint32_t worker, unsigned result, unsigned why)
{
	(void)ctx, (void)decision, (void)target, (void)worker, (void)result, (void)why;
	return 0;
}

static const struct wave_rpc_ops rebal_ops = {
	.size = sizeof(struct wave_rpc_ops),
	.load_report = rebal_load_report,
	.txn_aborted = rebal_txn_aborted,
};

WAVE_PLUGIN_DEFINE(rpc_rebalance, WAVE_DOMAIN_RPC, "1.0.0",
		   "RSS++-style rebalancing: fewest buckets from the most to the least loaded "
		   "worker, bounded moves per period",
		   rebal_init, rebal_fini, &rebal_ops)
