/* SPDX-License-Identifier: MIT */
/*
 * rpc_hash: the static hash, the baseline every other rpc policy is
 * measured against (what a NIC's RSS does): table entry b goes to the
 * (b mod n)-th of the n live workers, in order of number, whatever the
 * load. The table is moved to that layout when a worker comes or goes,
 * and any entry the host left elsewhere (an aborted move, a worker's
 * removal) is put back at the next load report.
 *
 * Parameters (domains.rpc.params):
 *   max_moves   moves per round, 0 for no bound (default 0)
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include <wave/plugin.h>
#include <wave/plugin_kit/rpc_hash.h>
#include <wave/plugin_rpc.h>

struct hash_conf {
	uint32_t max_moves;
};

static int hash_init(struct wave_plugin_ctx *ctx)
{
	struct hash_conf *c = calloc(1, sizeof(*c));
	uint64_t max = wave_plugin_param_uint(ctx, "max_moves", 0);

	if (!c)
		return -ENOMEM;
	if (max > UINT32_MAX) {
		free(c);
		wave_plugin_log(ctx, WAVE_LOG_ERROR, "max_moves %llu is too large",
				(unsigned long long)max);
		return -EINVAL;
	}
	c->max_moves = (uint32_t)max;
	wave_plugin_set_priv(ctx, c);
	return 0;
}

static void hash_fini(struct wave_plugin_ctx *ctx)
{
	free(wave_plugin_priv(ctx));
}

static int reconcile(struct wave_plugin_ctx *ctx)
{
	const struct hash_conf *c = wave_plugin_priv(ctx);
	int ret = rpc_hash_reconcile(ctx, c->max_moves);

	return ret < 0 ? ret : 0;
}

static int hash_worker(struct wave_plugin_ctx *ctx, const struct wave_rpc_worker *w)
{
	(void)w;
	return reconcile(ctx);
}

static int hash_load_report(struct wave_plugin_ctx *ctx, uint64_t now_ns, uint64_t period_ns)
{
	(void)now_ns, (void)period_ns;
	return reconcile(ctx);
}

/* Put back at the next report: deciding again at once could loop on a
 * backend that keeps refusing. */
static int hash_txn_aborted(struct wave_plugin_ctx *ctx, uint16_t decision, uint32_t target,
			    uint32_t worker, unsigned result, unsigned why)
{
	(void)ctx, (void)decision, (void)target, (void)worker, (void)result, (void)why;
	return 0;
}

static const struct wave_rpc_ops hash_ops = {
	.size = sizeof(struct wave_rpc_ops),
	.worker_added = hash_worker,
	.worker_removed = hash_worker,
	.load_report = hash_load_report,
	.txn_aborted = hash_txn_aborted,
};

WAVE_PLUGIN_DEFINE(rpc_hash, WAVE_DOMAIN_RPC, "1.0.0",
		   "static hash of the steering table over the live workers (RSS)", hash_init,
		   hash_fini, &hash_ops)
