/* SPDX-License-Identifier: MIT */
/*
 * The sched domain in the agent: a host's SETUP makes its state model
 * (sched_state.c) and starts its plugin instance on it; every later sched
 * message goes through sched_state_apply(), which calls the plugin, whose
 * decisions (checked against the state by sched_decide.c) leave
 * through the runtime's emit. A hot swap replays the state into the new
 * instance. Called with the agent's lock held, from the agent loop.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wave/plugin.h>
#include <wave/plugin_sched.h>
#include <wave/sched_state.h>

#include "../../core/core.h"
#include "sched.h"
#include "../../plugin/plugin_impl.h"
#include "sched_impl.h"

/* One host's sched domain. */
struct sched_agent {
	struct wave_sched_state *st;
	struct dom_ctrs ctrs; /* published into the instance's context */
};

/* ---- the plugin's side ------------------------------------------------------ */

/* The smallest sched ops table: the whole 1.1 table, whose last op,
 * txn_aborted, is required (without it an aborted task is lost). */
#define SCHED_OPS_MIN_SIZE                                                     \
	(offsetof(struct wave_sched_ops, txn_aborted) +                        \
	 sizeof(((struct wave_sched_ops *)0)->txn_aborted))

/* The ops every sched plugin must have: one per task event, and
 * txn_aborted; cpu_idle, tick and txn_committed are optional. */
static const char *missing_op(const struct wave_sched_ops *ops)
{
	if (!ops->task_new)
		return "task_new";
	if (!ops->task_wakeup)
		return "task_wakeup";
	if (!ops->task_blocked)
		return "task_blocked";
	if (!ops->task_yield)
		return "task_yield";
	if (!ops->task_preempted)
		return "task_preempted";
	if (!ops->task_dead)
		return "task_dead";
	return ops->txn_aborted ? NULL : "txn_aborted";
}

static int check_ops(const struct wave_plugin_desc *d, const char *src, struct wave_error *err)
{
	const struct wave_sched_ops *ops = d->ops;
	const char *missing;

	if (ops->size < SCHED_OPS_MIN_SIZE)
		return wave_error_set(err, -WAVE_EPLUGIN, src, 0, 0,
				      "sched ops table is %zu bytes, at least %zu are needed",
				      ops->size, (size_t)SCHED_OPS_MIN_SIZE);
	if ((missing = missing_op(ops)))
		return wave_error_set(err, -WAVE_EPLUGIN, src, 0, 0,
				      "missing op %s (required for sched plugins)", missing);
	return 0;
}

/* Publishes the state's statistics into the instance's counters: reads
 * them in place rather than copying them whole (wave_sched_state_stats()). */
static void counters_update(struct sched_agent *s, struct wave_plugin_ctx *ctx)
{
	const struct wave_sched_stats *st = &s->st->stats;

	dom_ctrs_publish(&s->ctrs, ctx, st->committed, st->aborted,
			 st->bad_msgs + st->unknown_task + st->dup_new + st->seq_backwards +
				 st->bad_transition + st->no_memory,
			 &s->st->refused);
}

/* ---- a host's messages ------------------------------------------------------- */

/* The host's SETUP: its CPU count. Return: 0, or -1 to drop the host. */
static int on_setup(struct dom_host *dh, const struct wave_msg *m)
{
	struct sched_agent *s;
	struct wave_error err = { 0 };
	uint32_t n_cpus;
	int ret;

	if (dh->state || sched_setup_decode(m, &n_cpus) < 0) {
		wave_warn("agent: host %llu: %s sched setup", (unsigned long long)dh->host_id,
			  dh->state ? "a second" : "a malformed");
		return -1;
	}
	if (!(s = calloc(1, sizeof(*s))))
		return -1;
	dh->state = s;
	ret = sched_state_create(n_cpus, dh->objects, dh->keep ? &dh->kept : NULL, &s->st);
	if (ret < 0)
		snprintf(err.text, sizeof(err.text), "%s", wave_strerror(ret));
	else
		ret = dh->start(dh, s->st, &err);
	if (ret < 0) {
		wave_warn("agent: host %llu: cannot start its sched plugin: %s",
			  (unsigned long long)dh->host_id, err.text);
		return -1;
	}
	dom_ctrs_register(&s->ctrs, dh->inst.ctx);
	wave_info("agent: host %llu: sched domain with %u CPUs", (unsigned long long)dh->host_id,
		  n_cpus);
	return 0;
}

static int on_msg(struct dom_host *dh, const struct wave_msg *m)
{
	struct sched_agent *s = dh->state;
	int ret;

	if (m->type == WAVE_SCHED_SETUP)
		return on_setup(dh, m);
	if (!dh->inst.ctx) {
		/* A sched message before SETUP, or the domain was dropped by a
		 * reload: nobody would decide for this host's CPUs. Dropping it
		 * sends it to its fallback (and a reconnection is refused
		 * while the domain has no plugin). */
		wave_warn("agent: host %llu: %s", (unsigned long long)dh->host_id,
			  s ? "sched domain no longer served" : "sched message before setup");
		return -1;
	}
	dh->inst.events_in++;
	dh->cur_ev = m;
	/* A refused message changes nothing; the state counts it by reason. */
	ret = sched_state_apply(s->st, dh->inst.ctx, m);
	dh->cur_ev = NULL;
	if (ret < 0)
		dh->inst.errors++;
	/* After every message, but only what can have moved: transactions
	 * end only with an outcome, events are refused with an error, and
	 * decisions refused are counted in one total. */
	if (m->type == WAVE_SCHED_OUTCOME || ret < 0 ||
	    s->st->refused.total != s->ctrs.pub[DOM_CTR_DECISIONS_REFUSED])
		counters_update(s, dh->inst.ctx);
	return 0;
}

/* RUN and PRESTAGE go to their CPU's mailbox when the host made them. */
static int mailbox(const struct dom_host *dh, const struct wave_msg *m, unsigned n_mbox)
{
	const struct sched_agent *s = dh->state;
	struct wave_sched_msg d;

	if (!s || (m->type != WAVE_SCHED_RUN && m->type != WAVE_SCHED_PRESTAGE) ||
	    n_mbox < SCHED_MBOX_PER_CPU * s->st->n_cpus ||
	    wave_sched_msg_decode(m, s->st->n_cpus, &d) < 0)
		return -1;
	return (int)sched_mbox(d.cpu, d.type);
}

static void replay(struct dom_host *dh)
{
	struct sched_agent *s = dh->state;

	if (!s || !dh->inst.ctx)
		return;
	dom_ctrs_register(&s->ctrs, dh->inst.ctx);
	/* Decisions of the old instance still in flight complete normally:
	 * their outcomes reach the new one. */
	if (wave_sched_state_replay(s->st, dh->inst.ctx, wave_now_ns()) < 0)
		dh->inst.errors++;
	counters_update(s, dh->inst.ctx);
}

static void fini(struct dom_host *dh)
{
	struct sched_agent *s = dh->state;

	/* The instance using the state is stopped first by the runtime. */
	if (!s)
		return;
	dh->objects = u64map_room(&s->st->tasks);
	/* A replay repeated starts its next state with this table (emptied). */
	if (dh->keep) {
		u64map_fini(&dh->kept);
		sched_state_take_tasks(s->st, &dh->kept);
	}
	wave_sched_state_destroy(s->st);
	free(s);
	dh->state = NULL;
}

const struct domain_desc sched_domain = {
	.id = WAVE_DOMAIN_SCHED,
	.first = WAVE_MSG_SCHED_FIRST,
	.last = WAVE_MSG_SCHED_LAST,
	.setup_type = WAVE_SCHED_SETUP,
	.abi_minor = 1,
	.check_ops = check_ops,
	.msg = on_msg,
	/* Decisions were checked against the state when the plugin made
	 * them; their latency runs from the event being handled, if any. */
	.emit = DOM_EMIT_NOW,
	.mailbox = mailbox,
	.replay = replay,
	.fini = fini,
	.accessor = (void (*)(void))wave_plugin_sched_cpu_count,
};
