/* SPDX-License-Identifier: MIT */
/*
 * A run queue for sched policies: a growable ring of (task, sequence)
 * entries with O(1) push at either end and pop at the head.
 *
 * Entries are checked lazily: a queued task that exits, or whose sequence
 * number moves on, leaves its entry behind, and the entry is dropped when it
 * reaches the head (sq_first()). That keeps every event O(1) without the
 * policy having to find and unlink entries; the framework's state is the
 * truth about each task.
 */
#ifndef WAVE_PLUGINS_SCHED_QUEUE_H
#define WAVE_PLUGINS_SCHED_QUEUE_H

#include <errno.h>
#include <stdlib.h>

#include <wave/plugin.h>

struct sq_entry {
	uint64_t id;
	uint64_t seq;
};

struct sq {
	struct sq_entry *e;
	size_t head; /* index of the first entry */
	size_t len;
	size_t cap;  /* a power of two, or 0 before the first push */
};

static inline int sq_grow(struct sq *q)
{
	size_t cap = q->cap ? q->cap * 2 : 64;
	struct sq_entry *e;

	if (cap > SIZE_MAX / sizeof(*e) || !(e = malloc(cap * sizeof(*e))))
		return -ENOMEM;
	for (size_t i = 0; i < q->len; i++)
		e[i] = q->e[(q->head + i) & (q->cap - 1)];
	free(q->e);
	q->e = e;
	q->head = 0;
	q->cap = cap;
	return 0;
}

/* Queues @t (at its current sequence number) at the tail, or at the head. */
static inline int sq_push(struct sq *q, const struct wave_sched_task *t, int at_head)
{
	size_t i;

	if (q->len == q->cap && sq_grow(q) < 0)
		return -ENOMEM;
	if (at_head) {
		q->head = (q->head - 1) & (q->cap - 1);
		i = q->head;
	} else {
		i = (q->head + q->len) & (q->cap - 1);
	}
	q->e[i].id = t->id;
	q->e[i].seq = t->seq;
	q->len++;
	return 0;
}

static inline void sq_pop(struct sq *q)
{
	q->head = (q->head + 1) & (q->cap - 1);
	q->len--;
}

/* Can @e still be decided on: the task lives, at that sequence number,
 * runnable, with no decision in flight? Fills @t when it can. */
static inline int sq_entry_live(struct wave_plugin_ctx *ctx, const struct sq_entry *e,
				struct wave_sched_task *t)
{
	return wave_plugin_sched_task(ctx, e->id, t) == 0 && t->seq == e->seq &&
	       t->state == WAVE_SCHED_RUNNABLE && t->pending == 0;
}

/* The first live task, dropping dead entries before it; 0 when empty. */
static inline int sq_first(struct wave_plugin_ctx *ctx, struct sq *q, struct wave_sched_task *t)
{
	while (q->len) {
		if (sq_entry_live(ctx, &q->e[q->head], t))
			return 1;
		sq_pop(q);
	}
	return 0;
}

static inline void sq_free(struct sq *q)
{
	free(q->e);
	q->e = NULL;
	q->len = q->cap = q->head = 0;
}

/* Queue @t unless it cannot be run (it may have a decision in flight). */
static inline int sq_push_runnable(struct sq *q, const struct wave_sched_task *t, int at_head)
{
	if (!t || t->state != WAVE_SCHED_RUNNABLE || t->pending)
		return 0;
	return sq_push(q, t, at_head);
}

/*
 * Runs queued tasks on free CPUs, in queue order, until either runs out:
 * the centralized dispatch loop FIFO-like policies share. A task starts
 * its search for a CPU at its affinity hint. A full channel to the host
 * leaves the task at the head for the next event (every decision sent
 * brings an outcome, so one will come).
 */
static inline int sq_dispatch(struct wave_plugin_ctx *ctx, struct sq *q)
{
	struct wave_sched_task t;
	int cpu, ret;

	while (sq_first(ctx, q, &t)) {
		cpu = wave_plugin_sched_free_cpu(ctx, t.cpu_hint == WAVE_SCHED_CPU_NONE
							     ? (uint32_t)t.id : t.cpu_hint);
		if (cpu < 0)
			return 0; /* every CPU busy: the next free one pulls */
		ret = wave_plugin_sched_run(ctx, t.id, t.seq, (uint32_t)cpu);
		if (ret == -EAGAIN)
			return 0;
		if (ret < 0)
			return ret;
		sq_pop(q);
	}
	return 0;
}

#endif /* WAVE_PLUGINS_SCHED_QUEUE_H */
