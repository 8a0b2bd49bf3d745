/* SPDX-License-Identifier: MIT */
/*
 * The sched state model: applies each host message to the tasks and CPUs,
 * refusing (and counting) what cannot be true, then calls the plugin's op
 * named after the message. The host is the authority on what happened; the
 * checks here catch a confused or hostile host before a policy acts on a
 * state that cannot exist.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugin/plugin_impl.h"
#include "sched_decode.h"
#include "sched_impl.h"

/* ---- life cycle -------------------------------------------------------- */

/* The task table: @kept's, emptied, when it has the slots @tasks need
 * (moved out of @kept), else a new one. */
static int tasks_init(struct wave_sched_state *st, size_t tasks, struct u64map *kept)
{
	if (kept && kept->slots && kept->esize == sizeof(struct sched_task) &&
	    u64map_room(kept) >= tasks) {
		st->tasks = *kept;
		memset(kept, 0, sizeof(*kept));
		/* sched_state_take_tasks() emptied it already. */
		if (u64map_count(&st->tasks))
			u64map_clear(&st->tasks);
		return 0;
	}
	return u64map_init_for(&st->tasks, sizeof(struct sched_task), tasks);
}

int sched_state_create(uint32_t n_cpus, size_t tasks, struct u64map *kept,
		       struct wave_sched_state **out)
{
	struct wave_sched_state *st;

	if (!out || n_cpus == 0 || n_cpus > WAVE_SCHED_MAX_CPUS)
		return -EINVAL;
	if (!(st = calloc(1, sizeof(*st))))
		return -ENOMEM;
	st->magic = SCHED_STATE_MAGIC;
	st->n_cpus = n_cpus;
	st->max_tasks = WAVE_SCHED_MAX_TASKS;
	st->n_words = (n_cpus + 63) / 64;
	/* Lemire's multiplier: exact for every 32-bit dividend. */
	st->cpu_mod = UINT64_MAX / n_cpus + 1;
	st->cpus = calloc(n_cpus, sizeof(*st->cpus));
	st->free_map = calloc(st->n_words, sizeof(*st->free_map));
	if (!st->cpus || !st->free_map || tasks_init(st, tasks, kept) < 0) {
		wave_sched_state_destroy(st);
		return -ENOMEM;
	}
	for (uint32_t c = 0; c < n_cpus; c++)
		sched_cpu_update_free(st, c);
	*out = st;
	return 0;
}

WAVE_API int wave_sched_state_create(uint32_t n_cpus, struct wave_sched_state **out)
{
	return sched_state_create(n_cpus, 0, NULL, out);
}

WAVE_API void wave_sched_state_destroy(struct wave_sched_state *st)
{
	if (!st)
		return;
	u64map_fini(&st->tasks);
	free(st->cpus);
	free(st->free_map);
	st->magic = 0;
	free(st);
}

void sched_state_take_tasks(struct wave_sched_state *st, struct u64map *out)
{
	st->hot = NULL;
	u64map_clear(&st->tasks);
	*out = st->tasks;
	memset(&st->tasks, 0, sizeof(st->tasks));
}

WAVE_API int wave_sched_state_stats(const struct wave_sched_state *st,
				    struct wave_sched_stats *out)
{
	if (!st || !out || st->magic != SCHED_STATE_MAGIC)
		return -EINVAL;
	*out = st->stats;
	out->refused_stale = st->refused.n[DEC_REFUSED_STALE];
	out->refused_unknown = st->refused.n[DEC_REFUSED_GONE];
	out->refused_not_runnable = st->refused.n[DEC_REFUSED_NOT_ELIGIBLE];
	out->refused_busy = st->refused.n[DEC_REFUSED_BUSY];
	out->refused_no_cpu = st->refused.n[DEC_REFUSED_INVALID];
	out->refused_full = st->refused.n[DEC_REFUSED_FULL];
	out->tasks = u64map_count(&st->tasks);
	out->cpus = st->n_cpus;
	out->bytes = sizeof(*st) + u64map_bytes(&st->tasks) + st->n_cpus * sizeof(*st->cpus) +
		     st->n_words * sizeof(*st->free_map);
	return 0;
}

/* ---- helpers shared with the decisions -------------------------------- */

void sched_cpu_update_free(struct wave_sched_state *st, uint32_t cpu)
{
	const struct sched_cpu *c = &st->cpus[cpu];
	uint64_t *w = &st->free_map[cpu >> 6], bit = UINT64_C(1) << (cpu & 63);
	/* A prestaged task counts: the host starts it as soon as the CPU has
	 * nothing to run, so a RUN sent meanwhile would find the CPU busy. */
	bool free_now = !c->current && !c->slot[0] && !c->slot[1];

	if (free_now == !!(*w & bit))
		return;
	*w ^= bit;
	st->n_free += free_now ? 1u : -1u;
}

int sched_cpu_find_free(const struct wave_sched_state *st, uint32_t from)
{
	uint32_t w;
	uint64_t bits;

	/* A busy host (a queue longer than its CPUs) asks at every event. */
	if (!st->n_free)
		return -EBUSY;
	/* from % n_cpus: a division costs more than the rest of the search
	 * (Lemire, Kaser, Kurz, "Faster remainder by direct computation"). */
	from = (uint32_t)(((unsigned __int128)(st->cpu_mod * from) * st->n_cpus) >> 64);
	w = from >> 6;
	bits = st->free_map[w] & (~UINT64_C(0) << (from & 63));
	/* n_words + 1 steps: the last one sees the start word's low bits. */
	for (uint32_t i = 0; i <= st->n_words; i++) {
		if (bits)
			return (int)((w << 6) + (uint32_t)__builtin_ctzll(bits));
		w = w + 1 == st->n_words ? 0 : w + 1;
		bits = st->free_map[w];
	}
	return -EBUSY;
}

void sched_task_clear_pending(struct wave_sched_state *st, struct sched_task *t)
{
	uint32_t cpu = t->pend.res;

	if (dec_pend_any(&t->pend) && dec_pend_unlink(&t->pend, st->cpus[cpu].slot, t->id))
		sched_cpu_update_free(st, cpu);
}

/* ---- calling the plugin ------------------------------------------------ */

#define CALL(ctx, op, ...) PLUGIN_CALL(ctx, struct wave_sched_ops, op, __VA_ARGS__)

/* ---- events ------------------------------------------------------------ */

static int ev_new(struct wave_sched_state *st, struct wave_plugin_ctx *ctx,
		  const struct wave_sched_msg *m)
{
	struct wave_sched_task view;
	struct sched_task *t;

	if (sched_task_find(st, m->task))
		return dec_count(&st->stats.dup_new, -EEXIST);
	/* The host refuses more itself: a peer that sends them must not
	 * grow this table without end. */
	if (u64map_count(&st->tasks) >= st->max_tasks)
		return dec_count(&st->stats.no_memory, -ENOSPC);
	if (!(t = sched_task_insert(st, m->task)))
		return dec_count(&st->stats.no_memory, -ENOMEM);
	t->seq = m->seq;
	t->state = m->state;
	t->hint = m->hint;
	t->hint_kind = m->hint_kind;
	t->cpu_hint = m->cpu;
	t->cpu = WAVE_SCHED_CPU_NONE;
	dec_pend_init(&t->pend);
	sched_task_view(t, &view);
	CALL(ctx, task_new, &view);
	return 0;
}

/* The live task an event is about, if the event's sequence number
 * advances it; NULL with *@err set otherwise. */
static struct sched_task *event_task(struct wave_sched_state *st, const struct wave_sched_msg *m,
				     int *err)
{
	struct sched_task *t = sched_task_find(st, m->task);

	if (!t)
		*err = dec_count(&st->stats.unknown_task, -ENOENT);
	else if (m->seq <= t->seq)
		*err = dec_count(&st->stats.seq_backwards, -ESTALE);
	return t && m->seq > t->seq ? t : NULL;
}

static int ev_wakeup(struct wave_sched_state *st, struct wave_plugin_ctx *ctx,
		     const struct wave_sched_msg *m)
{
	struct wave_sched_task view;
	struct sched_task *t;
	int err = 0;

	if (!(t = event_task(st, m, &err)))
		return err;
	if (t->state != WAVE_SCHED_BLOCKED)
		return dec_count(&st->stats.bad_transition, -EPROTO);
	t->seq = m->seq;
	t->state = WAVE_SCHED_RUNNABLE;
	sched_task_view(t, &view);
	CALL(ctx, task_wakeup, &view);
	return 0;
}

/* @t's run on its CPU ended at @now: account it and free the CPU. */
static void stop_running(struct wave_sched_state *st, struct sched_task *t, uint64_t now)
{
	struct sched_cpu *c = &st->cpus[t->cpu];

	if (now > t->run_start_ns)
		t->runtime_ns += now - t->run_start_ns;
	c->current = 0;
	c->preempting = 0;
	c->idle_since_ns = now;
	sched_cpu_update_free(st, t->cpu);
	t->cpu = WAVE_SCHED_CPU_NONE;
}

/* task_blocked, task_yield, task_preempted. */
static int ev_stop(struct wave_sched_state *st, struct wave_plugin_ctx *ctx,
		   const struct wave_sched_msg *m)
{
	struct wave_sched_task view;
	struct sched_task *t;
	int err = 0;

	if (!(t = event_task(st, m, &err)))
		return err;
	if (t->state != WAVE_SCHED_RUNNING || t->cpu != m->cpu)
		return dec_count(&st->stats.bad_transition, -EPROTO);
	stop_running(st, t, m->now_ns);
	t->seq = m->seq;
	t->state = m->type == WAVE_SCHED_TASK_BLOCKED ? WAVE_SCHED_BLOCKED : WAVE_SCHED_RUNNABLE;
	sched_task_view(t, &view);
	if (m->type == WAVE_SCHED_TASK_BLOCKED)
		CALL(ctx, task_blocked, &view, m->cpu);
	else if (m->type == WAVE_SCHED_TASK_YIELD)
		CALL(ctx, task_yield, &view, m->cpu);
	else
		CALL(ctx, task_preempted, &view, m->cpu);
	return 0;
}

static int ev_dead(struct wave_sched_state *st, struct wave_plugin_ctx *ctx,
		   const struct wave_sched_msg *m)
{
	struct wave_sched_task view;
	struct sched_task *t;
	int err = 0;

	if (!(t = event_task(st, m, &err)))
		return err;
	/* It died on the CPU the state has it on, or off any CPU. */
	if ((t->state == WAVE_SCHED_RUNNING) != (m->cpu != WAVE_SCHED_CPU_NONE) ||
	    (m->cpu != WAVE_SCHED_CPU_NONE && t->cpu != m->cpu))
		return dec_count(&st->stats.bad_transition, -EPROTO);
	if (t->state == WAVE_SCHED_RUNNING)
		stop_running(st, t, m->now_ns);
	sched_task_clear_pending(st, t);
	t->seq = m->seq;
	sched_task_view(t, &view);
	sched_task_remove(st, t);
	CALL(ctx, task_dead, &view);
	return 0;
}

static int ev_cpu(struct wave_sched_state *st, struct wave_plugin_ctx *ctx,
		  const struct wave_sched_msg *m)
{
	if (m->type == WAVE_SCHED_TICK) {
		CALL(ctx, tick, m->cpu, m->now_ns);
		return 0;
	}
	if (st->cpus[m->cpu].current)
		return dec_count(&st->stats.bad_transition, -EPROTO);
	CALL(ctx, cpu_idle, m->cpu, m->now_ns);
	return 0;
}

/* ---- outcomes ---------------------------------------------------------- */

static void count_result(struct wave_sched_state *st, unsigned result)
{
	if (result == WAVE_SCHED_COMMITTED)
		st->stats.committed++;
	else
		st->stats.aborted[result]++;
}

/* A PREEMPT's outcome: the task may have stopped since (then its event
 * already cleared the flag), so nothing about it is impossible. */
static int out_preempt(struct wave_sched_state *st, const struct wave_sched_msg *m)
{
	struct sched_cpu *c = &st->cpus[m->cpu];

	if (c->current == m->task)
		c->preempting = 0;
	count_result(st, m->result);
	return 0;
}

static int out_commit(struct wave_sched_state *st, struct wave_plugin_ctx *ctx,
		      struct sched_task *t, const struct wave_sched_msg *m)
{
	struct sched_cpu *c = &st->cpus[m->cpu];
	struct wave_sched_task view;

	/* The host reports the end of a CPU's task before it starts another. */
	if (c->current || t->state != WAVE_SCHED_RUNNABLE)
		return dec_count(&st->stats.bad_transition, -EPROTO);
	sched_task_clear_pending(st, t);
	t->state = WAVE_SCHED_RUNNING;
	t->cpu = m->cpu;
	t->run_start_ns = m->now_ns;
	c->current = t->id;
	sched_cpu_update_free(st, m->cpu);
	count_result(st, m->result);
	sched_task_view(t, &view);
	CALL(ctx, txn_committed, &view, m->cpu, m->decision);
	return 0;
}

static int ev_outcome(struct wave_sched_state *st, struct wave_plugin_ctx *ctx,
		      const struct wave_sched_msg *m)
{
	uint8_t kind = m->decision == WAVE_SCHED_RUN ? PENDING_RUN : PENDING_PRESTAGE;
	struct wave_sched_task view;
	struct sched_task *t;

	if (m->decision == WAVE_SCHED_PREEMPT)
		return out_preempt(st, m);
	t = sched_task_find(st, m->task);
	if (!t && m->result == WAVE_SCHED_COMMITTED)
		return dec_count(&st->stats.unknown_task, -ENOENT);
	/* An abort for a task that exited meanwhile (its death freed the
	 * CPU), or for an earlier task of the same id: that one's decision
	 * was based on a sequence number older than the new task's. */
	if (!t || (m->result != WAVE_SCHED_COMMITTED && m->seq < t->seq &&
		   !dec_pend_matches(&t->pend, kind, m->cpu))) {
		count_result(st, m->result);
		CALL(ctx, txn_aborted, NULL, m->cpu, m->decision, m->result);
		return 0;
	}
	if (!dec_pend_matches(&t->pend, kind, m->cpu))
		return dec_count(&st->stats.bad_transition, -EPROTO);
	if (m->result == WAVE_SCHED_COMMITTED)
		return out_commit(st, ctx, t, m);
	/* Events were applied as they came, so clearing the pending decision
	 * leaves the task's latest state in force. */
	sched_task_clear_pending(st, t);
	count_result(st, m->result);
	sched_task_view(t, &view);
	CALL(ctx, txn_aborted, &view, m->cpu, m->decision, m->result);
	return 0;
}

/* ---- entry ------------------------------------------------------------- */

/* A message that does not decode, or a decision (only the agent sends
 * those), is refused and counted. */
static int bad_msg(struct wave_sched_state *st, int err)
{
	return dec_count(&st->stats.bad_msgs, err);
}

/* Each type is decoded (sched_decode.h, every byte checked) in the case
 * that applies it: one dispatch on the type, where decoding the whole
 * message first (sched_msg_decode()) and switching again to apply it made
 * two, and zeroed and copied the decoded form between them. The same
 * checks in the same order: the same errors and counts. */
static int decode_apply(struct wave_sched_state *st, struct wave_plugin_ctx *ctx,
			const struct wave_msg *m)
{
	struct wave_sched_msg d = { .type = m->type };
	const uint8_t *p = m->payload.u8;
	uint32_t n = st->n_cpus;
	int ret;

	/* An unknown type is -ENOMSG whatever its flags. */
	if (m->flags != 0)
		return bad_msg(st, wave_sched_msg_type_name(m->type) ? -EBADMSG : -ENOMSG);
	switch (m->type) {
	case WAVE_SCHED_TASK_NEW:
		ret = decode_task_new(p, n, &d);
		return ret < 0 ? bad_msg(st, ret) : ev_new(st, ctx, &d);
	case WAVE_SCHED_TASK_WAKEUP:
		ret = decode_task(p, n, &d);
		return ret < 0 ? bad_msg(st, ret) : ev_wakeup(st, ctx, &d);
	case WAVE_SCHED_TASK_BLOCKED:
	case WAVE_SCHED_TASK_YIELD:
	case WAVE_SCHED_TASK_PREEMPTED:
		ret = decode_task(p, n, &d);
		return ret < 0 ? bad_msg(st, ret) : ev_stop(st, ctx, &d);
	case WAVE_SCHED_TASK_DEAD:
		ret = decode_task(p, n, &d);
		return ret < 0 ? bad_msg(st, ret) : ev_dead(st, ctx, &d);
	case WAVE_SCHED_CPU_IDLE:
	case WAVE_SCHED_TICK:
		ret = decode_cpu(p, n, &d);
		return ret < 0 ? bad_msg(st, ret) : ev_cpu(st, ctx, &d);
	case WAVE_SCHED_OUTCOME:
		ret = decode_outcome(p, n, &d);
		return ret < 0 ? bad_msg(st, ret) : ev_outcome(st, ctx, &d);
	case WAVE_SCHED_RUN:
	case WAVE_SCHED_PRESTAGE:
	case WAVE_SCHED_PREEMPT:
		ret = decode_decision(p, n, &d);
		return bad_msg(st, ret < 0 ? ret : -ENOMSG);
	default:
		return bad_msg(st, -ENOMSG);
	}
}

static int ctx_ok(const struct wave_sched_state *st, const struct wave_plugin_ctx *ctx)
{
	return !ctx || plugin_domain_state(ctx, WAVE_DOMAIN_SCHED) == st;
}

WAVE_API int wave_sched_state_replay(struct wave_sched_state *st, struct wave_plugin_ctx *ctx,
				     uint64_t now_ns)
{
	struct wave_sched_task view;

	if (!st || !ctx || st->magic != SCHED_STATE_MAGIC || !ctx_ok(st, ctx))
		return -EINVAL;
	/* The plugin's decisions change fields of tasks, never the table's
	 * layout (only events insert and remove), so the walk stays valid. */
	for (size_t i = 0; i <= st->tasks.mask; i++) {
		const struct sched_task *t = sched_task_at(st, i);

		if (!t)
			continue;
		sched_task_view(t, &view);
		CALL(ctx, task_new, &view);
	}
	for (uint32_t c = 0; c < st->n_cpus; c++)
		if ((st->free_map[c >> 6] >> (c & 63)) & 1)
			CALL(ctx, cpu_idle, c, now_ns);
	return 0;
}

int sched_state_apply(struct wave_sched_state *st, struct wave_plugin_ctx *ctx,
		      const struct wave_msg *m)
{
	int ret = decode_apply(st, ctx, m);

	if (ret == 0)
		st->stats.events++;
	return ret;
}

WAVE_API int wave_sched_state_apply(struct wave_sched_state *st, struct wave_plugin_ctx *ctx,
				    const struct wave_msg *m)
{
	if (!st || !m || st->magic != SCHED_STATE_MAGIC || !ctx_ok(st, ctx))
		return -EINVAL;
	return sched_state_apply(st, ctx, m);
}
