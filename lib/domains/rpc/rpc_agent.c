/* SPDX-License-Identifier: MIT */
/*
 * The rpc domain in the agent: a host's SETUP makes its state model
 * (rpc_state.c) and starts its plugin instance on it; every later rpc
 * message goes through wave_rpc_state_apply(), which calls the plugin,
 * whose decisions (checked against the model by rpc_decide.c) leave
 * through the runtime's emit. A hot swap replays the model into the new
 * instance. Called with the agent's lock held, from the agent loop.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <wave/plugin.h>
#include <wave/plugin_rpc.h>

#include "../../core/core.h"
#include "../../plugin/plugin_impl.h"
#include "rpc_impl.h"

/* One host's rpc domain. */
struct rpc_agent {
	struct wave_rpc_state *st;
	struct dom_ctrs ctrs; /* published into the instance's context */
};

/* The smallest rpc ops table: the whole 1.2 table, whose last op,
 * txn_aborted, is required. */
#define RPC_OPS_MIN_SIZE                                                       \
	(offsetof(struct wave_rpc_ops, txn_aborted) +                          \
	 sizeof(((struct wave_rpc_ops *)0)->txn_aborted))

static int check_ops(const struct wave_plugin_desc *d, const char *src, struct wave_error *err)
{
	const struct wave_rpc_ops *ops = d->ops;

	if (ops->size < RPC_OPS_MIN_SIZE)
		return wave_error_set(err, -WAVE_EPLUGIN, src, 0, 0,
				      "rpc ops table is %zu bytes, at least %zu are needed",
				      ops->size, (size_t)RPC_OPS_MIN_SIZE);
	/* Without load_report nothing would ever be decided; without
	 * txn_aborted a plan the host refused would be silently lost. */
	if (!ops->load_report || !ops->txn_aborted)
		return wave_error_set(err, -WAVE_EPLUGIN, src, 0, 0,
				      "missing op %s (required for rpc plugins)",
				      ops->load_report ? "txn_aborted" : "load_report");
	return 0;
}

static bool has_tick(const struct wave_plugin_desc *d)
{
	return WAVE_OPS_HAS((const struct wave_rpc_ops *)d->ops, struct wave_rpc_ops, tick);
}

static void tick(struct wave_plugin_ctx *ctx, uint64_t now_ns)
{
	(void)rpc_ops(ctx)->tick(ctx, now_ns);
}

/* Publishes the model's statistics into the instance's counters; runs
 * after every message, so it reads them in place. */
static void counters_update(struct rpc_agent *a, struct wave_plugin_ctx *ctx)
{
	const struct wave_rpc_stats_agent *s = &a->st->stats;

	dom_ctrs_publish(&a->ctrs, ctx, s->committed, s->aborted,
			 s->bad_msgs + s->dup_worker + s->unknown_worker + s->bad_transition,
			 &a->st->refused);
}

/* The host's SETUP: its sizes. Return: 0, or -1 to drop the host. */
static int on_setup(struct dom_host *dh, const struct wave_msg *m)
{
	struct wave_error err = { 0 };
	struct rpc_agent *a;
	int ret;

	if (dh->state) {
		wave_warn("agent: host %llu: a second rpc setup", (unsigned long long)dh->host_id);
		return -1;
	}
	if (!(a = calloc(1, sizeof(*a))))
		return -1;
	dh->state = a;
	if ((ret = wave_rpc_state_create(m, &a->st)) < 0) {
		wave_warn("agent: host %llu: a malformed rpc setup (%s)",
			  (unsigned long long)dh->host_id, wave_strerror(ret));
		return -1;
	}
	if ((ret = dh->start(dh, a->st, &err)) < 0) {
		wave_warn("agent: host %llu: cannot start its rpc plugin: %s",
			  (unsigned long long)dh->host_id, err.text);
		return -1;
	}
	dom_ctrs_register(&a->ctrs, dh->inst.ctx);
	wave_info("agent: host %llu: rpc domain with %u buckets, %u classes, %u worker numbers",
		  (unsigned long long)dh->host_id, a->st->dims.n_buckets, a->st->dims.n_classes,
		  a->st->dims.max_workers);
	return 0;
}

static int on_msg(struct dom_host *dh, const struct wave_msg *m)
{
	struct rpc_agent *a = dh->state;

	if (m->type == WAVE_RPC_SETUP)
		return on_setup(dh, m);
	if (!dh->inst.ctx) {
		/* Before SETUP, or the domain was dropped by a reload: nobody
		 * would decide for this host; dropping it sends it to its
		 * fallback. */
		wave_warn("agent: host %llu: %s", (unsigned long long)dh->host_id,
			  a ? "rpc domain no longer served" : "rpc message before setup");
		return -1;
	}
	dh->inst.events_in++;
	dh->cur_ev = m;
	/* A refused message changes nothing; the model counts it by reason. */
	if (wave_rpc_state_apply(a->st, dh->inst.ctx, m) < 0)
		dh->inst.errors++;
	dh->cur_ev = NULL;
	counters_update(a, dh->inst.ctx);
	return 0;
}

static void replay(struct dom_host *dh)
{
	struct rpc_agent *a = dh->state;

	if (!a || !a->st || !dh->inst.ctx)
		return;
	dom_ctrs_register(&a->ctrs, dh->inst.ctx);
	/* Decisions of the old instance still in flight complete normally:
	 * their outcomes reach the new one. */
	if (wave_rpc_state_replay(a->st, dh->inst.ctx) < 0)
		dh->inst.errors++;
	counters_update(a, dh->inst.ctx);
}

static void fini(struct dom_host *dh)
{
	struct rpc_agent *a = dh->state;

	/* The instance using the state is stopped first by the runtime. */
	if (!a)
		return;
	wave_rpc_state_destroy(a->st);
	free(a);
	dh->state = NULL;
}

const struct domain_desc rpc_domain = {
	.id = WAVE_DOMAIN_RPC,
	.first = WAVE_MSG_RPC_FIRST,
	.last = WAVE_MSG_RPC_LAST,
	.setup_type = WAVE_RPC_SETUP,
	.abi_minor = 2,
	.check_ops = check_ops,
	.has_tick = has_tick,
	.tick = tick,
	.msg = on_msg,
	/* Decisions were checked against the model when the plugin made
	 * them; a burst of reports may decide many moves: they leave
	 * together. Their latency runs from the event being handled. */
	.emit = DOM_EMIT_BATCH,
	.replay = replay,
	.fini = fini,
	.accessor = (void (*)(void))wave_plugin_rpc_info,
};
