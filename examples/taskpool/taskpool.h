/* SPDX-License-Identifier: MIT */
/*
 * taskpool: a user-level task runtime whose every dispatch is decided by a
 * libwave agent (or, without one, by libwave's local FIFO).
 *
 * Worker pthreads, optionally pinned to cores, are the scheduler's logical
 * CPUs. A task is a function and an argument. The function runs one slice
 * of the task and returns TASKPOOL_DONE when the task has finished,
 * TASKPOOL_AGAIN to be run again later: it gave the CPU up (reported as a
 * yield) or, when taskpool_should_yield() said so, was preempted by the
 * policy (reported as a preemption); or TASKPOOL_BLOCK: it waits for
 * something (reported as blocked) and the pool wakes it up soon after, as
 * an I/O completion would. Long tasks call taskpool_should_yield()
 * in their loops: one load of host memory.
 *
 * Uses only the public API (<wave/wave.h>).
 */
#ifndef WAVE_EXAMPLE_TASKPOOL_H
#define WAVE_EXAMPLE_TASKPOOL_H

#include <stdint.h>

#include <wave/wave.h>

enum { TASKPOOL_DONE = 0, TASKPOOL_AGAIN = 1, TASKPOOL_BLOCK = 2 };

struct taskpool;

/* What a running task sees. */
struct taskpool_ctx {
	struct taskpool *pool;
	uint32_t cpu;  /* the worker (logical CPU) running it */
	uint64_t task; /* its id */
};

typedef int (*taskpool_fn)(struct taskpool_ctx *ctx, void *arg);

/*
 * struct taskpool_opts - how to start a pool.
 * @uri:     the agent's address, or NULL for libwave's local FIFO only.
 * @workers: worker threads (logical CPUs), at least 1.
 * @cores:   @workers core numbers to pin the workers to, or NULL (no
 *           pinning).
 * @sched:   scheduler options (batching, ticks, session options), or NULL;
 *           its n_cpus is replaced by @workers.
 */
struct taskpool_opts {
	const char *uri;
	unsigned workers;
	const int *cores;
	const struct wave_sched_opts *sched;
};

/* Starts the pool. Return: 0 or a negative error code. */
int taskpool_create(const struct taskpool_opts *o, struct taskpool **out,
		    struct wave_error *err);

/* Submits a task; @id (may be NULL) receives its id. Return: 0 or a
 * negative error code. */
int taskpool_submit(struct taskpool *p, taskpool_fn fn, void *arg, uint64_t *id);

/* Should the task running on @ctx's CPU give it up now? */
int taskpool_should_yield(const struct taskpool_ctx *ctx);

/* Waits until every submitted task is done, making progress for the
 * scheduler (heartbeats, decisions) meanwhile. */
void taskpool_wait(struct taskpool *p);

/* The scheduler, for its mode and statistics. */
struct wave_sched *taskpool_sched(struct taskpool *p);

/* Stops the workers (after taskpool_wait(), or abandoning what is left)
 * and frees the pool. */
void taskpool_destroy(struct taskpool *p);

#endif
