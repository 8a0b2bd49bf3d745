/* SPDX-License-Identifier: MIT */
/*
 * example_rpc_rr: a complete rpc-domain (request steering) policy plugin.
 *
 * The host's dispatchers hand each request to the worker the agent
 * prestaged for them (wave_rpc_pick()), and flows to the worker of their
 * steering table entry (wave_rpc_steer()). The agent keeps the model of
 * the workers, the table and their load from the host's reports, and
 * calls load_report after each one. This policy spreads the dispatchers
 * over the live workers in turn, one step further at every report, and
 * keeps the steering table where the static hash puts each entry
 * (<wave/plugin_kit/rpc_hash.h>, installed with libwave's headers, header
 * only). Every decision is checked by the agent against its model; one
 * refused for a full channel (-EAGAIN) waits for the next report.
 *
 * Build this file like example_rr.c (see CMakeLists.txt, or `cc -std=c11
 * -shared -fPIC -fvisibility=hidden $(pkg-config --cflags wave) -o
 * wave_example_rpc_rr.so example_rpc_rr.c`), and name it in
 * domains.rpc.plugin of the agent's configuration. No parameters.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include <wave/plugin.h>
#include <wave/plugin_kit/rpc_hash.h>
#include <wave/plugin_rpc.h>

struct rr {
	uint32_t next; /* the live worker the first dispatcher gets next */
};

static int rr_init(struct wave_plugin_ctx *ctx)
{
	struct rr *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	wave_plugin_set_priv(ctx, r);
	return 0;
}

static void rr_fini(struct wave_plugin_ctx *ctx)
{
	free(wave_plugin_priv(ctx));
}

/* The @k-th live worker (counting from 0, wrapping), or -1 when none is. */
static int64_t live_worker(struct wave_plugin_ctx *ctx, const struct wave_rpc_info *info,
			   uint32_t k)
{
	struct wave_rpc_worker w;

	if (!info->workers)
		return -1;
	k %= info->workers;
	for (uint32_t i = 0; i < info->dims.max_workers; i++)
		if (wave_plugin_rpc_worker(ctx, i, &w) == 0 && k-- == 0)
			return i;
	return -1;
}

static int rr_load_report(struct wave_plugin_ctx *ctx, uint64_t now_ns, uint64_t period_ns)
{
	struct rr *r = wave_plugin_priv(ctx);
	struct wave_rpc_info info;
	int ret;

	(void)now_ns, (void)period_ns;
	if ((ret = wave_plugin_rpc_info(ctx, &info)) < 0 || (ret = rpc_hash_reconcile(ctx, 0)) < 0)
		return ret;
	for (uint32_t d = 0; d < info.dims.n_dispatchers; d++) {
		int64_t w = live_worker(ctx, &info, r->next + d);

		if (w < 0 || wave_plugin_rpc_prestaged(ctx, d) == w)
			continue; /* no worker, or already there: no message */
		if (wave_plugin_rpc_prestage(ctx, d, (uint32_t)w) == -EAGAIN)
			break; /* the channel is full: the next report goes on */
	}
	r->next++;
	return 0;
}

/* Required: how a decision ended. Nothing to undo here: the next report
 * decides again from the model, where an aborted decision left nothing. */
static int rr_txn_aborted(struct wave_plugin_ctx *ctx, uint16_t decision, uint32_t target,
			  uint32_t worker, unsigned result, unsigned why)
{
	(void)ctx, (void)decision, (void)target, (void)worker, (void)result, (void)why;
	return 0;
}

static const struct wave_rpc_ops rr_ops = {
	.size = sizeof(struct wave_rpc_ops),
	.load_report = rr_load_report,
	.txn_aborted = rr_txn_aborted,
};

WAVE_PLUGIN_DEFINE(example_rpc_rr, WAVE_DOMAIN_RPC, "1.0.0",
		   "example: the dispatchers take the live workers in turn, one step on per report",
		   rr_init, rr_fini, &rr_ops)
