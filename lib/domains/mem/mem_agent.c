/* SPDX-License-Identifier: MIT */
/*
 * The mem domain in the agent: a host's SETUP makes its state model
 * (mem_state.c) and starts its plugin instance on it; every later mem
 * message goes through wave_mem_state_apply(), which calls the plugin,
 * whose decisions (checked against the state by mem_decide.c) leave
 * through the runtime's emit. A hot swap replays the state into the new
 * instance. Called with the agent's lock held, from the agent loop.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <wave/mem_state.h>
#include <wave/plugin.h>
#include <wave/plugin_mem.h>

#include "../../core/core.h"
#include "../../plugin/plugin_impl.h"
#include "mem_agent_impl.h"
#include "mem_domain.h"

/* One host's mem domain. */
struct mem_agent {
	struct wave_mem_state *st;
	struct dom_ctrs ctrs; /* published into the instance's context */
	bool told_full;       /* a refused region was logged (once a host) */
};

/* ---- the plugin's side ------------------------------------------------------ */

/* The smallest mem ops table: up to tick, the one required op. */
#define MEM_OPS_MIN_SIZE                                                       \
	(offsetof(struct wave_mem_ops, tick) + sizeof(((struct wave_mem_ops *)0)->tick))

static int check_ops(const struct wave_plugin_desc *d, const char *src, struct wave_error *err)
{
	const struct wave_mem_ops *ops = d->ops;

	if (ops->size < MEM_OPS_MIN_SIZE)
		return wave_error_set(err, -WAVE_EPLUGIN, src, 0, 0,
				      "mem ops table is %zu bytes, at least %zu are needed",
				      ops->size, (size_t)MEM_OPS_MIN_SIZE);
	if (!ops->tick)
		return wave_error_set(err, -WAVE_EPLUGIN, src, 0, 0,
				      "missing op tick (required for mem plugins)");
	return 0;
}

/* Publishes the state's statistics into the instance's counters; runs
 * after every message, so it reads them in place. */
static void counters_update(struct mem_agent *s, struct wave_plugin_ctx *ctx)
{
	const struct wave_mem_state_stats *st = &s->st->stats;

	dom_ctrs_publish(&s->ctrs, ctx, st->committed, st->aborted,
			 st->bad_msgs + st->unknown + st->dup_region + st->seq_backwards +
				 st->bad_transition + st->no_memory,
			 &s->st->refused);
}

/* ---- a host's messages ------------------------------------------------------- */

/* The host's SETUP: its tiers. Return: 0, or -1 to drop the host. */
static int on_setup(struct dom_host *dh, const struct wave_msg *m)
{
	struct wave_error err = { 0 };
	struct mem_agent *s;
	int ret;

	if (dh->state) {
		wave_warn("agent: host %llu: a second mem setup", (unsigned long long)dh->host_id);
		return -1;
	}
	if (!(s = calloc(1, sizeof(*s))))
		return -1;
	dh->state = s;
	ret = wave_mem_state_create(m, 0, &s->st);
	if (ret < 0)
		snprintf(err.text, sizeof(err.text), "%s", ret == -EBADMSG ? "a malformed setup"
									 : wave_strerror(ret));
	else
		ret = dh->start(dh, s->st, &err);
	if (ret < 0) {
		wave_warn("agent: host %llu: cannot start its mem plugin: %s",
			  (unsigned long long)dh->host_id, err.text);
		return -1;
	}
	dom_ctrs_register(&s->ctrs, dh->inst.ctx);
	wave_info("agent: host %llu: mem domain with %u tiers", (unsigned long long)dh->host_id,
		  s->st->n_tiers);
	return 0;
}

static int on_msg(struct dom_host *dh, const struct wave_msg *m)
{
	struct mem_agent *s = dh->state;
	int ret;

	if (m->type == WAVE_MEM_SETUP)
		return on_setup(dh, m);
	if (!dh->inst.ctx) {
		/* Before SETUP, or the domain was dropped by a reload: nobody
		 * would decide for this host's memory; dropping the host sends
		 * it to its fallback. */
		wave_warn("agent: host %llu: %s", (unsigned long long)dh->host_id,
			  s ? "mem domain no longer served" : "mem message before setup");
		return -1;
	}
	dh->inst.events_in++;
	dh->cur_ev = m;
	/* A refused message changes nothing; the state counts it by reason. */
	if ((ret = wave_mem_state_apply(s->st, dh->inst.ctx, m)) < 0) {
		dh->inst.errors++;
		if (ret == -ENOMEM && m->type == WAVE_MEM_REGION_ADD && !s->told_full) {
			s->told_full = true;
			wave_warn("agent: host %llu: a region refused (later ones are not logged): "
				  "with it the host would have more than %llu chunks (or "
				  "memory ran out); the host's own policy places its chunks",
				  (unsigned long long)dh->host_id,
				  (unsigned long long)WAVE_MEM_STATE_DEFAULT_MAX_CHUNKS);
		}
	}
	dh->cur_ev = NULL;
	counters_update(s, dh->inst.ctx);
	return 0;
}

static void replay(struct dom_host *dh)
{
	struct mem_agent *s = dh->state;

	if (!s || !dh->inst.ctx)
		return;
	dom_ctrs_register(&s->ctrs, dh->inst.ctx);
	if (wave_mem_state_replay(s->st, dh->inst.ctx) < 0)
		dh->inst.errors++;
	counters_update(s, dh->inst.ctx);
}

static void fini(struct dom_host *dh)
{
	struct mem_agent *s = dh->state;

	/* The instance using the state is stopped first by the runtime. */
	if (!s)
		return;
	wave_mem_state_destroy(s->st);
	free(s);
	dh->state = NULL;
}

const struct domain_desc mem_domain = {
	.id = WAVE_DOMAIN_MEM,
	.first = WAVE_MSG_MEM_FIRST,
	.last = WAVE_MSG_MEM_LAST,
	.setup_type = WAVE_MEM_SETUP,
	.abi_minor = 3,
	.check_ops = check_ops,
	.msg = on_msg,
	/* Decisions were checked against the state when the plugin made
	 * them; their latency runs from the event being handled, if any. */
	.emit = DOM_EMIT_NOW,
	.replay = replay,
	.fini = fini,
	.accessor = (void (*)(void))wave_plugin_mem_tier_count,
};
