/* SPDX-License-Identifier: MIT */
/*
 * The sched domain in the agent runtime: a host's SETUP makes its state
 * model (lib/sched) and starts its plugin instance on it; every later sched
 * message goes through wave_sched_state_apply(), which calls the plugin,
 * whose decisions leave through the host's emit (agent_host.c). A hot swap
 * replays the state into the new instance. Called with the agent's lock
 * held, from the agent loop.
 */
#include <errno.h>
#include <string.h>

#include <wave/sched_state.h>

#include "../core/core.h"
#include "../sched/sched_impl.h"
#include "agent_impl.h"

/* Counters the runtime keeps in a sched instance's context, next to the
 * plugin's own, from the state's statistics. */
enum { SC_COMMITTED, SC_ABORTED, SC_EVENTS_REFUSED, SC_DECISIONS_REFUSED, SC_COUNT };

static const char *const sc_names[SC_COUNT] = {
	[SC_COMMITTED] = "txn_committed",
	[SC_ABORTED] = "txn_aborted",
	[SC_EVENTS_REFUSED] = "events_refused",
	[SC_DECISIONS_REFUSED] = "decisions_refused",
};

static void counters_register(struct agent_host *h, struct wave_plugin_ctx *ctx)
{
	_Static_assert(SC_COUNT <= WAVE_ARRAY_SIZE(h->sched_ctr), "room for the counters");
	for (unsigned i = 0; i < SC_COUNT; i++) {
		/* -ENOSPC when the plugin took every counter: not published. */
		h->sched_ctr[i] = wave_plugin_counter(ctx, sc_names[i]);
		h->sched_pub[i] = 0;
	}
}

/* Publishes the state's statistics into the context's counters, as the
 * deltas since the last call (counters only add). */
static void counters_update(struct agent_host *h, struct wave_plugin_ctx *ctx)
{
	struct wave_sched_stats st;
	uint64_t v[SC_COUNT] = { 0 };

	if (wave_sched_state_stats(h->sched, &st) < 0)
		return;
	v[SC_COMMITTED] = st.committed;
	for (unsigned r = 1; r < WAVE_SCHED_RESULT_COUNT; r++)
		v[SC_ABORTED] += st.aborted[r];
	v[SC_EVENTS_REFUSED] = st.bad_msgs + st.unknown_task + st.dup_new + st.seq_backwards +
			       st.bad_transition + st.no_memory;
	v[SC_DECISIONS_REFUSED] = st.refused_stale + st.refused_not_runnable + st.refused_no_cpu +
				  st.refused_busy + st.refused_unknown + st.refused_full;
	for (unsigned i = 0; i < SC_COUNT; i++) {
		if (v[i] > h->sched_pub[i])
			wave_plugin_counter_add(ctx, h->sched_ctr[i], v[i] - h->sched_pub[i]);
		h->sched_pub[i] = v[i];
	}
}

/* The host's SETUP: its CPU count. Return: 0, or -1 to drop the host. */
static int on_setup(struct agent_host *h, const struct wave_msg *m)
{
	struct wave_agent *a = h->a;
	struct agent_inst *in = &h->inst[WAVE_DOMAIN_SCHED];
	struct wave_error err = { 0 };
	uint32_t n_cpus;
	int ret;

	if (h->sched || sched_setup_decode(m, &n_cpus) < 0) {
		wave_warn("agent: host %llu: %s sched setup", (unsigned long long)h->id,
			  h->sched ? "a second" : "a malformed");
		return -1;
	}
	ret = wave_sched_state_create(n_cpus, &h->sched);
	if (ret == 0)
		ret = agent_inst_start(h, WAVE_DOMAIN_SCHED, a->dom[WAVE_DOMAIN_SCHED].plugin,
				       a->dom[WAVE_DOMAIN_SCHED].dcfg, in, &err);
	if (ret < 0) {
		wave_warn("agent: host %llu: cannot start its sched plugin: %s%s%s",
			  (unsigned long long)h->id, err.code ? err.source : "",
			  err.code ? ": " : "", err.code ? err.text : wave_strerror(ret));
		return -1;
	}
	counters_register(h, in->ctx);
	wave_info("agent: host %llu: sched domain with %u CPUs", (unsigned long long)h->id,
		  n_cpus);
	return 0;
}

int agent_sched_msg(struct agent_host *h, const struct wave_msg *m)
{
	struct agent_inst *in = &h->inst[WAVE_DOMAIN_SCHED];
	int ret;

	if (!(h->hello.domains & (1u << WAVE_DOMAIN_SCHED))) {
		wave_warn("agent: host %llu sent a sched message without asking for the domain",
			  (unsigned long long)h->id);
		return -1;
	}
	if (m->type == WAVE_SCHED_SETUP)
		return on_setup(h, m);
	if (!in->ctx) {
		/* A sched message before SETUP, or the domain was dropped by a
		 * reload: nobody would decide for this host's CPUs. Dropping it
		 * sends it to its fallback (and a reconnection is refused
		 * while the domain has no plugin). */
		wave_warn("agent: host %llu: %s", (unsigned long long)h->id,
			  h->sched ? "sched domain no longer served" : "sched message before setup");
		return -1;
	}
	in->events_in++;
	h->cur_ev = m;
	/* A refused message changes nothing; the state counts it by reason. */
	ret = wave_sched_state_apply(h->sched, in->ctx, m);
	h->cur_ev = NULL;
	if (ret < 0)
		in->errors++;
	counters_update(h, in->ctx);
	return 0;
}

void agent_sched_replay(struct agent_host *h, struct agent_inst *in)
{
	if (!h->sched || !in->ctx)
		return;
	counters_register(h, in->ctx);
	/* Decisions of the old instance still in flight complete normally:
	 * their outcomes reach the new one. */
	if (wave_sched_state_replay(h->sched, in->ctx, wave_now_ns()) < 0)
		in->errors++;
	counters_update(h, in->ctx);
}

void agent_sched_free(struct agent_host *h)
{
	/* The instance using it is destroyed first (agent_host_remove()). */
	wave_sched_state_destroy(h->sched);
	h->sched = NULL;
}
