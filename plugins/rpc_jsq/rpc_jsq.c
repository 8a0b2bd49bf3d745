/* SPDX-License-Identifier: MIT */
/*
 * rpc_jsq: request-level steering, join the shortest queue by the power of
 * two choices (Mitzenmacher). The host's dispatchers hand each request to
 * the worker the agent prestaged for them (wave_rpc_pick()); after every
 * load report this policy refreshes each dispatcher's worker: it samples
 * `choices` live workers at random and takes the one with the shortest
 * reported queue (then the least busy). Choices already given to other
 * dispatchers in the same round count as queued requests, so that the
 * dispatchers do not all herd onto one short queue between reports.
 * choices 0 scans every worker (full JSQ).
 *
 * The flow table is kept at the static hash (plugin_kit/rpc_hash.h), so
 * inputs steered by flow (wave_rpc_steer()) are spread too.
 *
 * Parameters (domains.rpc.params):
 *   choices    workers sampled per dispatcher, 0 for all (default 2)
 *   seed       of the sampling (default 1: runs are reproducible)
 * Counters: "refreshes" (prestages that changed a dispatcher's worker).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include <wave/plugin.h>
#include <wave/plugin_kit/rpc_hash.h>
#include <wave/plugin_rpc.h>

struct jsq {
	uint32_t choices;
	uint64_t rng;
	int ctr_refreshes;
	uint32_t *live, *given; /* per worker number: this round's plan */
	uint32_t n_workers;
};

static int jsq_init(struct wave_plugin_ctx *ctx)
{
	struct jsq *j = calloc(1, sizeof(*j));
	uint64_t choices = wave_plugin_param_uint(ctx, "choices", 2);

	if (!j)
		return -ENOMEM;
	if (choices > 64) {
		wave_plugin_log(ctx, WAVE_LOG_ERROR, "choices %llu: at most 64 (0 for all)",
				(unsigned long long)choices);
		free(j);
		return -EINVAL;
	}
	j->choices = (uint32_t)choices;
	j->rng = wave_plugin_param_uint(ctx, "seed", 1) | 1;
	j->ctr_refreshes = wave_plugin_counter(ctx, "refreshes");
	wave_plugin_set_priv(ctx, j);
	return 0;
}

static void jsq_fini(struct wave_plugin_ctx *ctx)
{
	struct jsq *j = wave_plugin_priv(ctx);

	free(j->live);
	free(j->given);
	free(j);
}

/* xorshift64*: cheap, and reproducible from the seed. */
static uint64_t next_rand(struct jsq *j)
{
	j->rng ^= j->rng >> 12;
	j->rng ^= j->rng << 25;
	j->rng ^= j->rng >> 27;
	return j->rng * UINT64_C(2685821657736338717);
}

/* Is worker @a a better choice than @b (shorter queue with this round's
 * choices counted, then less busy)? */
static int better(struct wave_plugin_ctx *ctx, const struct jsq *j, uint32_t a, uint32_t b)
{
	struct wave_rpc_worker wa, wb;
	uint64_t qa, qb;

	if (wave_plugin_rpc_worker(ctx, a, &wa) < 0 || wave_plugin_rpc_worker(ctx, b, &wb) < 0)
		return 0;
	qa = (uint64_t)wa.queue_depth + j->given[a];
	qb = (uint64_t)wb.queue_depth + j->given[b];
	return qa != qb ? qa < qb : wa.load < wb.load;
}

static uint32_t choose(struct wave_plugin_ctx *ctx, struct jsq *j, uint32_t n_live)
{
	uint32_t best = j->choices ? j->live[next_rand(j) % n_live] : j->live[0];
	uint32_t tries = j->choices ? j->choices : n_live;

	for (uint32_t i = 1; i < tries; i++) {
		uint32_t c = j->choices ? j->live[next_rand(j) % n_live] : j->live[i];

		if (better(ctx, j, c, best))
			best = c;
	}
	return best;
}

/* The round's view: live workers, none given yet. Return: how many live. */
static int round_start(struct wave_plugin_ctx *ctx, struct jsq *j,
		       const struct wave_rpc_info *info)
{
	struct wave_rpc_worker w;
	uint32_t n = 0;

	if (j->n_workers != info->dims.max_workers) {
		free(j->live);
		free(j->given);
		j->live = calloc(info->dims.max_workers, sizeof(*j->live));
		j->given = calloc(info->dims.max_workers, sizeof(*j->given));
		j->n_workers = j->live && j->given ? info->dims.max_workers : 0;
		if (!j->n_workers)
			return -ENOMEM;
	}
	for (uint32_t i = 0; i < j->n_workers; i++) {
		j->given[i] = 0;
		if (wave_plugin_rpc_worker(ctx, i, &w) == 0)
			j->live[n++] = i;
	}
	return (int)n;
}

static int jsq_load_report(struct wave_plugin_ctx *ctx, uint64_t now_ns, uint64_t period_ns)
{
	struct jsq *j = wave_plugin_priv(ctx);
	struct wave_rpc_info info;
	int n, ret;

	(void)now_ns, (void)period_ns;
	if ((ret = wave_plugin_rpc_info(ctx, &info)) < 0 ||
	    (ret = rpc_hash_reconcile(ctx, 0)) < 0 || (n = round_start(ctx, j, &info)) < 0)
		return ret < 0 ? ret : n;
	for (uint32_t d = 0; n > 0 && d < info.dims.n_dispatchers; d++) {
		uint32_t w = choose(ctx, j, (uint32_t)n);

		j->given[w]++;
		if (wave_plugin_rpc_prestaged(ctx, d) == (int)w)
			continue; /* already there: no message */
		ret = wave_plugin_rpc_prestage(ctx, d, w);
		if (ret == 0)
			wave_plugin_counter_add(ctx, j->ctr_refreshes, 1);
		else if (ret == -EAGAIN)
			break; /* the channel is full: the next report refreshes */
	}
	return 0;
}

/* The next report chooses again. */
static int jsq_txn_aborted(struct wave_plugin_ctx *ctx, uint16_t decision, uint32_t target,
			   uint32_t worker, unsigned result, unsigned why)
{
	(void)ctx, (void)decision, (void)target, (void)worker, (void)result, (void)why;
	return 0;
}

static const struct wave_rpc_ops jsq_ops = {
	.size = sizeof(struct wave_rpc_ops),
	.load_report = jsq_load_report,
	.txn_aborted = jsq_txn_aborted,
};

WAVE_PLUGIN_DEFINE(rpc_jsq, WAVE_DOMAIN_RPC, "1.0.0",
		   "request-level join-the-shortest-queue by power of two choices, through "
		   "each dispatcher's prestaged worker",
		   jsq_init, jsq_fini, &jsq_ops)
