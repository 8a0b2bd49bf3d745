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
 * Parameters:
 *   prestage   when no CPU is free, hand the head of the queue to a busy
 *              CPU's prestage slot, so that CPU switches to it without a
 *              round trip when its task stops (default false)
 * Counters: "prestaged" (prestage decisions sent).
 */
#include <errno.h>
#include <stdlib.h>

#include <wave/plugin.h>

#include "../sched_common/sched_queue.h"

struct fifo {
	struct sq q; /* first member: the queue is the state */
	int prestage;
	int ctr_prestaged;
	uint32_t cursor; /* where the next prestage slot search starts */
};

static int fifo_init(struct wave_plugin_ctx *ctx)
{
	struct fifo *f = calloc(1, sizeof(*f));

	if (!f)
		return -ENOMEM;
	f->prestage = wave_plugin_param_bool(ctx, "prestage", false);
	f->ctr_prestaged = wave_plugin_counter(ctx, "prestaged");
	wave_plugin_set_priv(ctx, f);
	return 0;
}

static void fifo_fini(struct wave_plugin_ctx *ctx)
{
	struct fifo *f = wave_plugin_priv(ctx);

	sq_free(&f->q);
	free(f);
}

/* Every CPU busy: the queue's head goes into the slot of a CPU that runs a
 * task and has nothing staged, searching round-robin. */
static int fifo_prestage(struct wave_plugin_ctx *ctx, struct fifo *f)
{
	uint32_t n = (uint32_t)wave_plugin_sched_cpu_count(ctx);
	struct wave_sched_task t;
	struct wave_sched_cpu c;

	while (sq_first(ctx, &f->q, &t)) {
		uint32_t i;

		for (i = 0; i < n; i++) {
			uint32_t cpu = (f->cursor + i) % n;

			if (wave_plugin_sched_cpu(ctx, cpu, &c) < 0 || !c.current || c.prestaged ||
			    c.pending)
				continue;
			if (wave_plugin_sched_prestage(ctx, t.id, t.seq, cpu) < 0)
				return 0; /* the channel is full: the next event retries */
			wave_plugin_counter_add(ctx, f->ctr_prestaged, 1);
			sq_pop(&f->q);
			f->cursor = cpu + 1;
			break;
		}
		if (i == n)
			return 0; /* every slot taken */
	}
	return 0;
}

static int fifo_dispatch(struct wave_plugin_ctx *ctx)
{
	struct fifo *f = wave_plugin_priv(ctx);
	int ret = sq_dispatch(ctx, &f->q);

	if (ret < 0 || !f->prestage)
		return ret;
	return fifo_prestage(ctx, f);
}

/* Queues @t (if it can run) and fills free CPUs. */
static int enqueue(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t, int at_head)
{
	struct fifo *f = wave_plugin_priv(ctx);
	int ret = sq_push_runnable(&f->q, t, at_head);

	return ret < 0 ? ret : fifo_dispatch(ctx);
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
