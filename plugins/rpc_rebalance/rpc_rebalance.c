/* SPDX-License-Identifier: MIT */
/*
 * rpc_rebalance: RSS++-style rebalancing of the steering table (Barbette
 * et al., CoNEXT'19). After each load report, while the most loaded worker
 * carries more than the least loaded one by a margin, move one bucket from
 * the first to the second: the largest bucket that does not overshoot (at
 * most half the gap), so a gap is closed with the fewest moves; at most
 * max_moves per period.
 *
 * A stable load must converge and stay: measured load is noisy (arrivals
 * vary from period to period, and a worker's mean service time mixes
 * the costs of its buckets, so a bucket's share is only an estimate). So:
 *  - a gap is closed only when it is larger than the margin plus `z`
 *    standard deviations of its estimate: a worker's load rests on the
 *    decayed count of its buckets' arrivals, C, worth n = C (1 + keep)
 *    periods' worth of independent arrivals; arrivals are counts, so the
 *    relative error is about 1 / sqrt(n). A few requests per period make
 *    a noisy estimate, and noise is not imbalance;
 *  - a move must be worth it: the bucket's share is at least a quarter of
 *    the margin, so noise-sized gaps are not chased with small buckets;
 *  - a bucket moved stays put for `hold` reports, so no bucket goes back
 *    and forth while the estimates catch up with a move;
 *  - after a period that moved something the policy waits `settle`
 *    reports before it decides again, for the same reason.
 * Each move closes a gap by at least margin/2 of the mean load and the
 * gaps it may close are bounded, so a stable load reaches a table that no
 * rule moves any more (the test rebalance_converges_* counts the moves).
 *
 * A worker's load is projected from what is steered to it now: the
 * arrival rate of its buckets times its mean service time (for a worker
 * that has served nothing yet, the mean of the others'; with no service
 * times reported at all, the arrival rate alone). A bucket's share is its
 * own arrival rate times that service time. The policy keeps its own
 * rates: each bucket's arrivals, decayed per report, over the decayed
 * length of the periods, so that periods of uneven length (a host that
 * polls late) weigh by their length and not by their number. Projecting from the table as
 * it is, rather than from last period's busy time, keeps a move from
 * being made twice while the measured load catches up with it. A worker
 * that has no bucket yet (just added) has no load, and receives first.
 *
 * Parameters (domains.rpc.params):
 *   max_moves   moves per period (default 4)
 *   margin      the gap worth closing, as a fraction of the mean load
 *               (default 0.1)
 *   every       decide every this many reports (default 1)
 *   hold        reports a moved bucket stays put (default 10)
 *   settle      reports to wait after a period that moved (default 3)
 *   z           standard deviations a gap must exceed (default 3)
 * Counters: "rebalances" (periods that moved something).
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include <wave/plugin.h>
#include <wave/plugin_rpc.h>

struct rebal {
	uint32_t max_moves;
	uint32_t every, hold, settle;
	double margin;
	uint64_t reports;
	uint64_t quiet_until; /* no decision before this report */
	uint64_t *moved_at;   /* per entry: the report that last moved it, + 1 */
	uint32_t n_entries;
	int ctr_rebalances;
	double z;
	double *cnt;  /* per entry: arrivals, decayed per report */
	double span;  /* the periods' lengths in ns, decayed alike */
	double *load; /* per worker number, this round's plan */
	double *var;  /* per worker number, the variance of its load's estimate */
	uint32_t n_workers;
	double mean_cost; /* this round's mean service time (1: none known) */
};

static int rebal_init(struct wave_plugin_ctx *ctx)
{
	struct rebal *r = calloc(1, sizeof(*r));
	uint64_t max = wave_plugin_param_uint(ctx, "max_moves", 4);
	uint64_t every = wave_plugin_param_uint(ctx, "every", 1);
	uint64_t hold = wave_plugin_param_uint(ctx, "hold", 10);
	uint64_t settle = wave_plugin_param_uint(ctx, "settle", 3);

	if (!r)
		return -ENOMEM;
	r->margin = wave_plugin_param_double(ctx, "margin", 0.1);
	r->z = wave_plugin_param_double(ctx, "z", 3);
	if (max == 0 || max > 65536 || every == 0 || every > 1000000 || !(r->margin >= 0) ||
	    hold > 1000000 || settle > 1000000 || !(r->z >= 0)) {
		wave_plugin_log(ctx, WAVE_LOG_ERROR,
				"max_moves (1..65536), every (1..1000000), hold and settle "
				"(0..1000000), margin and z (>= 0) are out of range");
		free(r);
		return -EINVAL;
	}
	r->max_moves = (uint32_t)max;
	r->every = (uint32_t)every;
	r->hold = (uint32_t)hold;
	r->settle = (uint32_t)settle;
	r->ctr_rebalances = wave_plugin_counter(ctx, "rebalances");
	wave_plugin_set_priv(ctx, r);
	return 0;
}

static void rebal_fini(struct wave_plugin_ctx *ctx)
{
	struct rebal *r = wave_plugin_priv(ctx);

	free(r->load);
	free(r->var);
	free(r->cnt);
	free(r->moved_at);
	free(r);
}

/* The service time that weighs worker @w's arrivals (see the top). */
static double cost_of(const struct rebal *r, const struct wave_rpc_worker *w)
{
	return w->service_ns > 0 ? w->service_ns : r->mean_cost;
}

/* The plan's load of every live worker (-1 for a number not live), the
 * variance of each estimate (see the top), and their mean.
 * Return: live workers. */
static uint32_t plan_loads(struct wave_plugin_ctx *ctx, struct rebal *r, double keep,
			   double *mean)
{
	struct wave_rpc_worker w;
	struct wave_rpc_bucket b;
	uint32_t live = 0, timed = 0;
	double sum = 0;

	r->mean_cost = 0;
	for (uint32_t i = 0; i < r->n_workers; i++) {
		r->var[i] = 0; /* the count behind it, first */
		if (wave_plugin_rpc_worker(ctx, i, &w) == 0 && w.service_ns > 0) {
			r->mean_cost += w.service_ns;
			timed++;
		}
	}
	r->mean_cost = timed ? r->mean_cost / timed : 1.0;
	for (uint32_t i = 0; i < r->n_entries; i++)
		if (wave_plugin_rpc_bucket(ctx, i, &b) == 0 && b.worker < r->n_workers)
			r->var[b.worker] += r->cnt[i];
	for (uint32_t i = 0; i < r->n_workers; i++) {
		double c = r->var[i];

		r->load[i] = -1;
		if (wave_plugin_rpc_worker(ctx, i, &w) < 0)
			continue;
		r->load[i] = c / r->span * cost_of(r, &w);
		r->var[i] = r->load[i] * r->load[i] / fmax(1, c * (1 + keep));
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

/* Was entry @b moved by this policy within the last `hold` reports? */
static bool held(const struct rebal *r, uint32_t b)
{
	return b < r->n_entries && r->moved_at[b] && r->reports < r->moved_at[b] - 1 + r->hold;
}

/* The bucket of @hi whose share of its load is the largest within
 * [@floor, @limit] and not held, or UINT32_MAX; its share into *@share. */
static uint32_t pick_bucket(struct wave_plugin_ctx *ctx, const struct rebal *r, uint32_t hi,
			    double floor, double limit, double *share)
{
	struct wave_rpc_worker w;
	struct wave_rpc_bucket b;
	uint32_t best = UINT32_MAX;

	if (wave_plugin_rpc_worker(ctx, hi, &w) < 0)
		return UINT32_MAX;
	*share = 0;
	for (uint32_t i = 0; i < r->n_entries; i++) {
		double s;

		if (wave_plugin_rpc_bucket(ctx, i, &b) < 0 || b.worker != hi ||
		    b.pending != WAVE_RPC_NO_WORKER || r->cnt[i] <= 0 || held(r, i))
			continue;
		s = r->cnt[i] / r->span * cost_of(r, &w);
		if (s >= floor && s <= limit && s > *share) {
			best = i;
			*share = s;
		}
	}
	return best;
}

static int rebalance(struct wave_plugin_ctx *ctx, struct rebal *r, double keep)
{
	uint32_t moved = 0, hi, lo;
	double mean, share;

	if (r->reports < r->quiet_until || plan_loads(ctx, r, keep, &mean) < 2)
		return 0;
	while (moved < r->max_moves) {
		uint32_t b;

		extremes(r, &hi, &lo);
		if (r->load[hi] - r->load[lo] <=
		    r->margin * mean + r->z * sqrt(r->var[hi] + r->var[lo]))
			break;
		b = pick_bucket(ctx, r, hi, r->margin * mean / 4, (r->load[hi] - r->load[lo]) / 2,
				&share);
		if (b == UINT32_MAX || wave_plugin_rpc_move(ctx, b, lo) < 0)
			break;
		if (b < r->n_entries)
			r->moved_at[b] = r->reports + 1;
		r->load[hi] -= share;
		r->load[lo] += share;
		moved++;
	}
	if (moved) {
		r->quiet_until = r->reports + 1 + r->settle;
		wave_plugin_counter_add(ctx, r->ctr_rebalances, 1);
	}
	return 0;
}

/* This period's arrivals and length into the policy's decayed counts. */
static void count_arrivals(struct wave_plugin_ctx *ctx, struct rebal *r, double keep,
			   uint64_t period_ns)
{
	struct wave_rpc_bucket b;

	for (uint32_t i = 0; i < r->n_entries; i++)
		r->cnt[i] = keep * r->cnt[i] +
			    (wave_plugin_rpc_bucket(ctx, i, &b) == 0 ? (double)b.arrivals : 0);
	r->span = keep * r->span + (double)period_ns;
}

/* The plan's arrays, sized for the host's workers and entries. */
static int ensure_sizes(struct rebal *r, const struct wave_rpc_info *info)
{
	uint32_t n = info->dims.n_buckets + info->dims.n_classes;

	if (r->n_workers != info->dims.max_workers) {
		double *load = calloc(info->dims.max_workers, sizeof(*load));
		double *var = calloc(info->dims.max_workers, sizeof(*var));

		if (!load || !var) {
			free(load);
			free(var);
			return -ENOMEM;
		}
		free(r->load);
		free(r->var);
		r->load = load;
		r->var = var;
		r->n_workers = info->dims.max_workers;
	}
	if (r->n_entries != n) {
		uint64_t *at = calloc(n, sizeof(*at));
		double *cnt = calloc(n, sizeof(*cnt));

		if (!at || !cnt) {
			free(at);
			free(cnt);
			return -ENOMEM;
		}
		free(r->moved_at);
		free(r->cnt);
		r->moved_at = at;
		r->cnt = cnt;
		r->n_entries = n;
	}
	return 0;
}

static int rebal_load_report(struct wave_plugin_ctx *ctx, uint64_t now_ns, uint64_t period_ns)
{
	struct rebal *r = wave_plugin_priv(ctx);
	struct wave_rpc_info info;
	int ret;

	(void)now_ns;
	if (wave_plugin_rpc_info(ctx, &info) < 0)
		return -EINVAL;
	if ((ret = ensure_sizes(r, &info)) < 0)
		return ret;
	count_arrivals(ctx, r, info.keep, period_ns);
	if (++r->reports % r->every)
		return 0;
	return rebalance(ctx, r, info.keep);
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
