/* SPDX-License-Identifier: MIT */
/*
 * sched_shinjuku: preemptive first-come-first-served scheduling with a time
 * slice, after Shinjuku (Kaffes et al., NSDI 2019).
 *
 * One global run queue, served in arrival order on free CPUs. On each tick
 * of a CPU, a task that has run longer than the slice in its current run
 * is preempted if another task is waiting; it rejoins the queue at the
 * tail, so short tasks are not stuck behind long ones. With "prestage"
 * (the default), busy CPUs' prestage slots are kept filled from the queue
 * (sched_queue.h), so a CPU whose task ends or is preempted switches to
 * the next one at once, without waiting for the agent.
 *
 * Parameters (domains.sched.params):
 *   slice_us   time slice in microseconds, 1..10000000 (default 50)
 *   prestage   prestage the next task before preempting (default true)
 * Counters: "slices_expired" (preemptions asked for).
 */
#include <errno.h>
#include <stdlib.h>

#include <wave/plugin.h>
#include <wave/plugin_kit/sched_queue.h>
#include <wave/plugin_sched.h>

struct sj_state {
	struct sq q;
	uint64_t slice_ns;
	int ctr_expired;
};

static int sj_init(struct wave_plugin_ctx *ctx)
{
	uint64_t slice_us = wave_plugin_param_uint(ctx, "slice_us", 50);
	bool prestage = wave_plugin_param_bool(ctx, "prestage", true);
	struct sj_state *st;

	if (slice_us == 0 || slice_us > 10000000) {
		wave_plugin_log(ctx, WAVE_LOG_ERROR, "slice_us must be 1..10000000, not %llu",
				(unsigned long long)slice_us);
		return -EINVAL;
	}
	if (!(st = calloc(1, sizeof(*st))))
		return -ENOMEM;
	st->slice_ns = slice_us * 1000;
	st->q.prestage = prestage;
	st->ctr_expired = wave_plugin_counter(ctx, "slices_expired");
	wave_plugin_set_priv(ctx, st);
	return 0;
}

static void sj_fini(struct wave_plugin_ctx *ctx)
{
	struct sj_state *st = wave_plugin_priv(ctx);

	sq_free(&st->q);
	free(st);
}

static int enqueue(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t, int at_head)
{
	struct sj_state *st = wave_plugin_priv(ctx);
	int ret = sq_push_runnable(&st->q, t, at_head);

	return ret < 0 ? ret : sq_dispatch(ctx, &st->q);
}

static int sj_dispatch(struct wave_plugin_ctx *ctx)
{
	struct sj_state *st = wave_plugin_priv(ctx);

	return sq_dispatch(ctx, &st->q);
}

static int sj_task_new(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t)
{
	return enqueue(ctx, t, 0);
}

static int sj_task_wakeup(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t)
{
	return enqueue(ctx, t, 0);
}

static int sj_task_blocked(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t,
			   uint32_t cpu)
{
	return sj_dispatch(ctx);
}

static int sj_task_yield(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t,
			 uint32_t cpu)
{
	return enqueue(ctx, t, 0);
}

/* Preempted (by us at the end of its slice, or by the host): the tail. */
static int sj_task_preempted(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t,
			     uint32_t cpu)
{
	return enqueue(ctx, t, 0);
}

static int sj_task_dead(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t)
{
	return sj_dispatch(ctx);
}

static int sj_cpu_idle(struct wave_plugin_ctx *ctx, uint32_t cpu, uint64_t now_ns)
{
	return sj_dispatch(ctx);
}

/* An aborted decision keeps the task's place: back to the head. */
static int sj_txn_aborted(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t,
			  uint32_t cpu, uint16_t decision, unsigned result)
{
	return enqueue(ctx, t, 1);
}

/* Is the task on @c past its slice at @now, with nothing asked yet? */
static int slice_expired(struct wave_plugin_ctx *ctx, const struct sj_state *st,
			 const struct wave_sched_cpu *c, uint64_t now)
{
	struct wave_sched_task t;

	if (!c->current || c->preempting || wave_plugin_sched_task(ctx, c->current, &t) < 0)
		return 0;
	return now >= t.run_start_ns && now - t.run_start_ns >= st->slice_ns;
}

/* A task started on @cpu: its successor can be prestaged behind it. */
static int sj_txn_committed(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t,
			    uint32_t cpu, uint16_t decision)
{
	struct sj_state *st = wave_plugin_priv(ctx);

	return sq_prestage_cpu(ctx, &st->q, cpu);
}

static int sj_tick(struct wave_plugin_ctx *ctx, uint32_t cpu, uint64_t now_ns)
{
	struct sj_state *st = wave_plugin_priv(ctx);
	struct wave_sched_task next;
	struct wave_sched_cpu c;
	int ret;

	if (wave_plugin_sched_cpu(ctx, cpu, &c) < 0 || !slice_expired(ctx, st, &c, now_ns))
		return 0;
	/* Work-conserving: with nobody waiting, the long task runs on. */
	if (!c.prestaged && !sq_first(ctx, &st->q, &next))
		return 0;
	/* The successor into the slot first, so the switch needs no trip. */
	if ((ret = sq_prestage_cpu(ctx, &st->q, cpu)) < 0)
		return ret;
	wave_plugin_counter_add(ctx, st->ctr_expired, 1);
	return wave_plugin_sched_preempt(ctx, cpu);
}

static const struct wave_sched_ops sj_ops = {
	.size = sizeof(struct wave_sched_ops),
	.task_new = sj_task_new,
	.task_wakeup = sj_task_wakeup,
	.task_blocked = sj_task_blocked,
	.task_yield = sj_task_yield,
	.task_preempted = sj_task_preempted,
	.task_dead = sj_task_dead,
	.cpu_idle = sj_cpu_idle,
	.tick = sj_tick,
	.txn_committed = sj_txn_committed,
	.txn_aborted = sj_txn_aborted,
};

WAVE_PLUGIN_DEFINE(sched_shinjuku, WAVE_DOMAIN_SCHED, "1.0.0",
		   "preemptive first-come-first-served with a time slice (Shinjuku)", sj_init,
		   sj_fini, &sj_ops)
