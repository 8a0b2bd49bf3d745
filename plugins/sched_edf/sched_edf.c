/* SPDX-License-Identifier: MIT */
/*
 * sched_edf: earliest-deadline-first scheduling, with deadlines given by the
 * application.
 *
 * A task's deadline is its task_new hint of kind WAVE_SCHED_HINT_DEADLINE
 * (absolute, host clock); a task without one sorts after every task with
 * one. Runnable tasks wait in a binary heap ordered by deadline, ties broken
 * by arrival, and the earliest runs on each free CPU. With "preempt" (the
 * default), a CPU's tick preempts its task when a waiting task's deadline is
 * earlier, prestaging that task on the CPU first so the host switches
 * without a round trip.
 *
 * Cost: O(log n) per queued task (the heap), n the number of runnable
 * tasks; stale heap entries (a task that exited while queued) are dropped
 * when they surface, as in sched_queue.h.
 *
 * Parameters (domains.sched.params):
 *   preempt   preempt a later deadline for an earlier one (default true)
 * Counters: "deadline_preemptions".
 */
#include <errno.h>
#include <stdlib.h>

#include <wave/plugin.h>
#include <wave/plugin_sched.h>

struct edf_entry {
	uint64_t deadline;
	uint64_t order; /* arrival number: equal deadlines run in arrival order */
	uint64_t id;
	uint64_t seq;
};

struct edf_state {
	struct edf_entry *heap;
	size_t len, cap;
	uint64_t arrivals;
	bool preempt;
	int ctr_preempt;
};

static uint64_t deadline_of(const struct wave_sched_task *t)
{
	return t->hint_kind == WAVE_SCHED_HINT_DEADLINE ? t->hint : UINT64_MAX;
}

static int before(const struct edf_entry *a, const struct edf_entry *b)
{
	return a->deadline != b->deadline ? a->deadline < b->deadline : a->order < b->order;
}

static void swap(struct edf_entry *a, struct edf_entry *b)
{
	struct edf_entry x = *a;

	*a = *b;
	*b = x;
}

static void sift_up(struct edf_state *s, size_t i)
{
	for (; i > 0 && before(&s->heap[i], &s->heap[(i - 1) / 2]); i = (i - 1) / 2)
		swap(&s->heap[i], &s->heap[(i - 1) / 2]);
}

static void sift_down(struct edf_state *s, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < s->len && before(&s->heap[l], &s->heap[m]))
			m = l;
		if (r < s->len && before(&s->heap[r], &s->heap[m]))
			m = r;
		if (m == i)
			return;
		swap(&s->heap[i], &s->heap[m]);
		i = m;
	}
}

static int heap_push(struct edf_state *s, const struct wave_sched_task *t)
{
	if (s->len == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		struct edf_entry *h = realloc(s->heap, cap * sizeof(*h));

		if (!h)
			return -ENOMEM;
		s->heap = h;
		s->cap = cap;
	}
	s->heap[s->len] = (struct edf_entry){ deadline_of(t), s->arrivals++, t->id, t->seq };
	sift_up(s, s->len++);
	return 0;
}

static void heap_pop(struct edf_state *s)
{
	s->heap[0] = s->heap[--s->len];
	sift_down(s, 0);
}

/* The earliest live task, dropping stale entries on top; 0 when none. */
static int heap_first(struct wave_plugin_ctx *ctx, struct edf_state *s, struct wave_sched_task *t)
{
	while (s->len) {
		const struct edf_entry *e = &s->heap[0];

		if (wave_plugin_sched_task(ctx, e->id, t) == 0 && t->seq == e->seq &&
		    t->state == WAVE_SCHED_RUNNABLE && t->pending == 0)
			return 1;
		heap_pop(s);
	}
	return 0;
}

static int edf_dispatch(struct wave_plugin_ctx *ctx)
{
	struct edf_state *s = wave_plugin_priv(ctx);
	struct wave_sched_task t;
	int cpu, ret;

	while (heap_first(ctx, s, &t)) {
		cpu = wave_plugin_sched_free_cpu(ctx, t.cpu_hint == WAVE_SCHED_CPU_NONE
							     ? (uint32_t)t.id : t.cpu_hint);
		if (cpu < 0)
			return 0;
		ret = wave_plugin_sched_run(ctx, t.id, t.seq, (uint32_t)cpu);
		if (ret == -EAGAIN)
			return 0;
		if (ret < 0)
			return ret;
		heap_pop(s);
	}
	return 0;
}

static int enqueue(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t)
{
	int ret = 0;

	if (t && t->state == WAVE_SCHED_RUNNABLE && !t->pending)
		ret = heap_push(wave_plugin_priv(ctx), t);
	return ret < 0 ? ret : edf_dispatch(ctx);
}

static int edf_init(struct wave_plugin_ctx *ctx)
{
	struct edf_state *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->preempt = wave_plugin_param_bool(ctx, "preempt", true);
	s->ctr_preempt = wave_plugin_counter(ctx, "deadline_preemptions");
	wave_plugin_set_priv(ctx, s);
	return 0;
}

static void edf_fini(struct wave_plugin_ctx *ctx)
{
	struct edf_state *s = wave_plugin_priv(ctx);

	free(s->heap);
	free(s);
}

static int edf_task_new(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t)
{
	return enqueue(ctx, t);
}

static int edf_task_wakeup(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t)
{
	return enqueue(ctx, t);
}

static int edf_task_blocked(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t,
			    uint32_t cpu)
{
	return edf_dispatch(ctx);
}

static int edf_task_requeue(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t,
			    uint32_t cpu)
{
	return enqueue(ctx, t);
}

static int edf_task_dead(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t)
{
	return edf_dispatch(ctx);
}

static int edf_cpu_idle(struct wave_plugin_ctx *ctx, uint32_t cpu, uint64_t now_ns)
{
	return edf_dispatch(ctx);
}

static int edf_txn_aborted(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t,
			   uint32_t cpu, uint16_t decision, unsigned result)
{
	return enqueue(ctx, t);
}

/* On @cpu's tick: make way for an earlier deadline than the running one. */
static int edf_tick(struct wave_plugin_ctx *ctx, uint32_t cpu, uint64_t now_ns)
{
	struct edf_state *s = wave_plugin_priv(ctx);
	struct wave_sched_task cur, next;
	struct wave_sched_cpu c;

	if (!s->preempt || wave_plugin_sched_cpu(ctx, cpu, &c) < 0 || !c.current ||
	    c.preempting || wave_plugin_sched_task(ctx, c.current, &cur) < 0)
		return 0;
	if (!heap_first(ctx, s, &next) || deadline_of(&next) >= deadline_of(&cur))
		return 0;
	if (!c.prestaged && wave_plugin_sched_prestage(ctx, next.id, next.seq, cpu) == 0)
		heap_pop(s);
	wave_plugin_counter_add(ctx, s->ctr_preempt, 1);
	return wave_plugin_sched_preempt(ctx, cpu);
}

static const struct wave_sched_ops edf_ops = {
	.size = sizeof(struct wave_sched_ops),
	.task_new = edf_task_new,
	.task_wakeup = edf_task_wakeup,
	.task_blocked = edf_task_blocked,
	.task_yield = edf_task_requeue,
	.task_preempted = edf_task_requeue,
	.task_dead = edf_task_dead,
	.cpu_idle = edf_cpu_idle,
	.tick = edf_tick,
	.txn_aborted = edf_txn_aborted,
};

WAVE_PLUGIN_DEFINE(sched_edf, WAVE_DOMAIN_SCHED, "1.0.0",
		   "earliest deadline first, deadlines hinted by the application", edf_init,
		   edf_fini, &edf_ops)
