/* SPDX-License-Identifier: MIT */
/**
 * @file plugin_kit/sched_queue.h
 * Plugin kit, for authors of sched-domain policies: a run queue, and the
 * dispatch loop that FIFO-like policies share. The built-in policies
 * (sched_fifo, sched_shinjuku) use it exactly as an out-of-tree policy
 * does, from the installed headers.
 *
 * Header only: every function is static inline and calls libwave only
 * through the plugin functions of <wave/plugin_sched.h>. It is compiled
 * into the plugin, so it adds nothing to link and nothing to the plugin
 * ABI: a built plugin keeps the copy it was compiled with.
 *
 * The queue is a growable ring of (task, sequence) entries with O(1) push
 * at either end and pop at the head. Entries are checked lazily: a queued
 * task that exits, or whose sequence number moves on, leaves its entry
 * behind, and the entry is dropped when it reaches the head (sq_first()).
 * That keeps every event O(1) without the policy having to find and unlink
 * entries; the framework's state is the truth about each task.
 */
#ifndef WAVE_PLUGIN_KIT_SCHED_QUEUE_H
#define WAVE_PLUGIN_KIT_SCHED_QUEUE_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <wave/plugin.h>
#include <wave/plugin_sched.h>

struct sq_entry {
	uint64_t id;
	uint64_t seq;
};

struct sq {
	struct sq_entry *e;
	size_t head; /* index of the first entry */
	size_t len;
	size_t cap;  /* a power of two, or 0 before the first push */
	int prestage;    /* fill busy CPUs' prestage slots from the queue */
	uint32_t cursor; /* the CPU sq_dispatch() tries to prestage next */
};

static inline int sq_grow(struct sq *q)
{
	size_t cap = q->cap ? q->cap * 2 : 64;
	struct sq_entry *e;

	if (cap > SIZE_MAX / sizeof(*e) || !(e = (struct sq_entry *)malloc(cap * sizeof(*e))))
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
 * Prestaging ahead (q->prestage): the head of the queue goes into the
 * prestage slot of busy CPU @cpu, if that slot is empty, so the host starts
 * it the moment the current task stops, without waiting for a decision:
 * the round trip to the agent is hidden behind the current task's run. A
 * prestaged task is committed to its CPU (the host cannot be asked to give
 * it back), which is the price: another CPU that frees up first does not
 * get it. Return: 0, or a negative error code.
 */
static inline int sq_prestage_cpu(struct wave_plugin_ctx *ctx, struct sq *q, uint32_t cpu)
{
	struct wave_sched_task t;
	struct wave_sched_cpu c;
	int ret;

	if (!q->prestage || !sq_first(ctx, q, &t) || wave_plugin_sched_cpu(ctx, cpu, &c) < 0 ||
	    c.prestaged || (!c.current && !c.pending))
		return 0; /* off, nothing queued, slot taken, or free (a RUN's job) */
	ret = wave_plugin_sched_prestage(ctx, t.id, t.seq, cpu);
	if (ret == 0)
		sq_pop(q);
	/* Refused (the CPU changed meanwhile) or the channel is full: the
	 * task keeps its place, and the next event tries again. */
	return ret == -ENOMEM ? ret : 0;
}

/* One CPU per call, round robin, so every event stays O(1). */
static inline int sq_prestage_any(struct wave_plugin_ctx *ctx, struct sq *q)
{
	int n;

	if (!q->prestage || (n = wave_plugin_sched_cpu_count(ctx)) <= 0)
		return 0;
	q->cursor = (q->cursor + 1) % (uint32_t)n;
	return sq_prestage_cpu(ctx, q, q->cursor);
}

/*
 * Runs queued tasks on free CPUs, in queue order, until either runs out:
 * the centralized dispatch loop FIFO-like policies share. A task starts
 * its search for a CPU at its affinity hint. A full channel to the host
 * leaves the task at the head for the next event (every decision sent
 * brings an outcome, so one will come). With every CPU busy, prestages
 * ahead (see above) when q->prestage is set; without prestaging it does
 * nothing then, not even look at the head (a busy host's every event, and
 * every RUN that took the last free CPU, would pay for it; dead entries
 * wait there for the next free CPU).
 */
static inline int sq_dispatch(struct wave_plugin_ctx *ctx, struct sq *q)
{
	struct wave_sched_task t;
	int cpu, ret;

	/* Without prestaging, no CPU free ends the loop before the head is
	 * looked up, after a RUN as before the first. */
	while ((q->prestage || wave_plugin_sched_free_cpu(ctx, 0) != -EBUSY) &&
	       sq_first(ctx, q, &t)) {
		cpu = wave_plugin_sched_free_cpu(ctx, t.cpu_hint == WAVE_SCHED_CPU_NONE
							     ? (uint32_t)t.id : t.cpu_hint);
		if (cpu < 0)
			return sq_prestage_any(ctx, q); /* every CPU busy */
		ret = wave_plugin_sched_run(ctx, t.id, t.seq, (uint32_t)cpu);
		if (ret == -EAGAIN)
			return 0;
		if (ret < 0)
			return ret;
		sq_pop(q);
	}
	return 0;
}

#endif /* WAVE_PLUGIN_KIT_SCHED_QUEUE_H */
