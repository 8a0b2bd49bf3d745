/* SPDX-License-Identifier: MIT */
/*
 * example_fifo: a complete sched-domain policy plugin, first come first
 * served, built on the plugin kit's run queue.
 *
 * The agent owns the tasks and CPUs: it applies each event from the host
 * and then calls the op named after it, with a view of the task. The
 * policy keeps only its queue and decides through its context. Here every
 * task that becomes runnable joins the tail of one queue (a preempted task,
 * or one whose decision aborted, rejoins at the head), and whenever a CPU
 * is free the head of the queue runs there.
 *
 * <wave/plugin_kit/sched_queue.h> is installed with libwave's headers: it
 * is the queue and dispatch loop of the built-in sched_fifo and
 * sched_shinjuku policies, header only, so an outside policy gets the same
 * code. Build this file like example_rr.c (see CMakeLists.txt, or
 * `cc -std=c11 -shared -fPIC -fvisibility=hidden $(pkg-config --cflags
 * wave) -o wave_example_fifo.so example_fifo.c`), and name it in
 * domains.sched.plugin of the agent's configuration.
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
	wave_plugin_set_priv(ctx, q);
	return 0;
}

static void fifo_fini(struct wave_plugin_ctx *ctx)
{
	struct sq *q = wave_plugin_priv(ctx);

	sq_free(q);
	free(q);
}

/* Queues @t if it can run (sq_push_runnable() skips a blocked or dead
 * task), then runs queued tasks on free CPUs. */
static int queue(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t, int at_head)
{
	struct sq *q = wave_plugin_priv(ctx);
	int ret = sq_push_runnable(q, t, at_head);

	return ret < 0 ? ret : sq_dispatch(ctx, q);
}

/* task_new, task_wakeup: the task may run. */
static int fifo_runnable(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t)
{
	return queue(ctx, t, 0);
}

/* task_blocked, task_yield: @cpu is free; a yielding task queues again. */
static int fifo_stopped(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t,
			uint32_t cpu)
{
	(void)cpu;
	return queue(ctx, t, 0);
}

static int fifo_preempted(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t,
			  uint32_t cpu)
{
	(void)cpu;
	return queue(ctx, t, 1);
}

static int fifo_dead(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t)
{
	(void)t;
	return sq_dispatch(ctx, wave_plugin_priv(ctx));
}

static int fifo_cpu_idle(struct wave_plugin_ctx *ctx, uint32_t cpu, uint64_t now_ns)
{
	(void)cpu;
	(void)now_ns;
	return sq_dispatch(ctx, wave_plugin_priv(ctx));
}

/* The task did not start: if it can still run (@t is NULL once it has
 * exited), it keeps its turn at the head of the queue. */
static int fifo_aborted(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t,
			uint32_t cpu, uint16_t decision, unsigned result)
{
	(void)cpu;
	(void)decision;
	(void)result;
	return queue(ctx, t, 1);
}

static const struct wave_sched_ops fifo_ops = {
	.size = sizeof(struct wave_sched_ops),
	.task_new = fifo_runnable,
	.task_wakeup = fifo_runnable,
	.task_blocked = fifo_stopped,
	.task_yield = fifo_stopped,
	.task_preempted = fifo_preempted,
	.task_dead = fifo_dead,
	.cpu_idle = fifo_cpu_idle,
	.txn_aborted = fifo_aborted,
};

WAVE_PLUGIN_DEFINE(example_fifo, WAVE_DOMAIN_SCHED, "1.0.0",
		   "example: first come first served, with the plugin kit's run queue", fifo_init,
		   fifo_fini, &fifo_ops)
