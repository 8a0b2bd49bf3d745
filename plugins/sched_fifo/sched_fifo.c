/* SPDX-License-Identifier: MIT */
/*
 * sched_fifo: centralized first-come-first-served scheduling.
 *
 * One global run queue. A task joins its tail when it becomes runnable
 * (new, woken, yielding); a task the host preempted rejoins at the head, so
 * a preemption by the host does not cost it its turn; a task whose decision
 * aborted also goes back to the head. Whenever a CPU is free and the queue
 * holds a task, the head runs there. Tasks run until they block, yield or
 * exit: there is no time slice (see sched_shinjuku for one).
 *
 * Parameters (domains.sched.params):
 *   prestage   keep busy CPUs' prestage slots filled from the queue
 *              (sched_queue.h), so a CPU switches to its next task without
 *              a round trip when its task stops (default false: a
 *              prestaged task is bound to its CPU, so with several CPUs
 *              another one that frees up first cannot take it)
 * Counters: none beyond the built-in ones (prestage decisions are among
 * the agent's decision counters).
 */
#include <errno.h>
#include <stdlib.h>

#include <wave/plugin.h>
#include <wave/plugin_kit/sched_queue.h>
#include <wave/plugin_sched.h>

static int fifo_init(struct wave_plugin_ctx *ctx)
{
	struct sq *q = calloc(1, sizeof(*q));

	if (!q)
		return -ENOMEM;
	q->prestage = wave_plugin_param_bool(ctx, "prestage", false);
	wave_plugin_set_priv(ctx, q);
	return 0;
}

static void fifo_fini(struct wave_plugin_ctx *ctx)
{
	struct sq *q = wave_plugin_priv(ctx);

	sq_free(q);
	free(q);
}

/* Queues @t (if it can run), fills free CPUs, then prestage slots. */
static int enqueue(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t, int at_head)
{
	struct sq *q = wave_plugin_priv(ctx);
	int ret = sq_push_runnable(q, t, at_head);

	return ret < 0 ? ret : sq_dispatch(ctx, q);
}

static int fifo_dispatch(struct wave_plugin_ctx *ctx)
{
	return sq_dispatch(ctx, wave_plugin_priv(ctx));
}

static int fifo_task_new(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t)
{
	return enqueue(ctx, t, 0);
}

static int fifo_task_wakeup(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t)
{
	return enqueue(ctx, t, 0);
}

static int fifo_task_blocked(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t,
			     uint32_t cpu)
{
	return fifo_dispatch(ctx);
}

static int fifo_task_yield(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t,
			   uint32_t cpu)
{
	return enqueue(ctx, t, 0);
}

static int fifo_task_preempted(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t,
			       uint32_t cpu)
{
	return enqueue(ctx, t, 1);
}

static int fifo_task_dead(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t)
{
	return fifo_dispatch(ctx);
}

static int fifo_cpu_idle(struct wave_plugin_ctx *ctx, uint32_t cpu, uint64_t now_ns)
{
	return fifo_dispatch(ctx);
}

/* A task started on @cpu: its successor can be prestaged behind it. */
static int fifo_txn_committed(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t,
			      uint32_t cpu, uint16_t decision)
{
	return sq_prestage_cpu(ctx, wave_plugin_priv(ctx), cpu);
}

static int fifo_txn_aborted(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t,
			    uint32_t cpu, uint16_t decision, unsigned result)
{
	return enqueue(ctx, t, 1);
}

static const struct wave_sched_ops fifo_ops = {
	.size = sizeof(struct wave_sched_ops),
	.task_new = fifo_task_new,
	.task_wakeup = fifo_task_wakeup,
	.task_blocked = fifo_task_blocked,
	.task_yield = fifo_task_yield,
	.task_preempted = fifo_task_preempted,
	.task_dead = fifo_task_dead,
	.cpu_idle = fifo_cpu_idle,
	.txn_committed = fifo_txn_committed,
	.txn_aborted = fifo_txn_aborted,
};

WAVE_PLUGIN_DEFINE(sched_fifo, WAVE_DOMAIN_SCHED, "1.0.0",
		   "centralized first-come-first-served scheduling", fifo_init, fifo_fini,
		   &fifo_ops)
