/* SPDX-License-Identifier: MIT */
/*
 * The sched state model, driven message by message with a recording plugin
 * linked into the test: impossible events are refused and counted,
 * decisions are checked before they leave, outcomes move the state, and
 * the table holds many tasks at O(1) per event. After each step, every
 * invariant of the state is checked from scratch.
 */
#include <errno.h>
#include <string.h>

#include <check.h>
#include <wave/plugin.h>
#include <wave/plugin_loader.h>
#include <wave/plugin_sched.h>
#include <wave/sched_state.h>

#include "check_run.h"
#include "domains/sched/sched_impl.h"

#define NCPU 4u

/* ---- a plugin that records its calls and decides what the test says ---- */

static struct {
	unsigned calls[16];
	uint64_t last_task;
	unsigned last_result;
	int emit_ret; /* what emit returns: 1 (taken), 0 (full), or an error */
	struct wave_msg sent[64];
	unsigned n_sent;
} rec;

enum { C_NEW, C_WAKE, C_BLOCK, C_YIELD, C_PREEMPT, C_DEAD, C_IDLE, C_TICK, C_COMMIT, C_ABORT };

static int r_new(struct wave_plugin_ctx *c, const struct wave_sched_task *t)
{
	rec.calls[C_NEW]++;
	rec.last_task = t->id;
	return 0;
}
static int r_wake(struct wave_plugin_ctx *c, const struct wave_sched_task *t)
{
	rec.calls[C_WAKE]++;
	return 0;
}
static int r_block(struct wave_plugin_ctx *c, const struct wave_sched_task *t, uint32_t cpu)
{
	rec.calls[C_BLOCK]++;
	return 0;
}
static int r_yield(struct wave_plugin_ctx *c, const struct wave_sched_task *t, uint32_t cpu)
{
	rec.calls[C_YIELD]++;
	return 0;
}
static int r_preempt(struct wave_plugin_ctx *c, const struct wave_sched_task *t, uint32_t cpu)
{
	rec.calls[C_PREEMPT]++;
	return 0;
}
static int r_dead(struct wave_plugin_ctx *c, const struct wave_sched_task *t)
{
	rec.calls[C_DEAD]++;
	return -EIO; /* counted as an event error, not returned */
}
static int r_idle(struct wave_plugin_ctx *c, uint32_t cpu, uint64_t now)
{
	rec.calls[C_IDLE]++;
	return 0;
}
static int r_tick(struct wave_plugin_ctx *c, uint32_t cpu, uint64_t now)
{
	rec.calls[C_TICK]++;
	return 0;
}
static int r_commit(struct wave_plugin_ctx *c, const struct wave_sched_task *t, uint32_t cpu,
		    uint16_t d)
{
	rec.calls[C_COMMIT]++;
	return 0;
}
static int r_abort(struct wave_plugin_ctx *c, const struct wave_sched_task *t, uint32_t cpu,
		   uint16_t d, unsigned result)
{
	rec.calls[C_ABORT]++;
	rec.last_task = t ? t->id : 0;
	rec.last_result = result;
	return 0;
}

static const struct wave_sched_ops rec_ops = {
	.size = sizeof(struct wave_sched_ops), .task_new = r_new, .task_wakeup = r_wake,
	.task_blocked = r_block, .task_yield = r_yield, .task_preempted = r_preempt,
	.task_dead = r_dead, .cpu_idle = r_idle, .tick = r_tick, .txn_committed = r_commit,
	.txn_aborted = r_abort,
};

WAVE_PLUGIN_DEFINE(rec, WAVE_DOMAIN_SCHED, "0.0.1", "records calls", NULL, NULL, &rec_ops)

static int rec_emit(void *user, const struct wave_msg *m, unsigned n)
{
	if (rec.emit_ret == 1 && rec.n_sent < 64)
		rec.sent[rec.n_sent++] = m[0];
	return rec.emit_ret;
}

/* ---- fixture ------------------------------------------------------------ */

static struct wave_plugin *plugin;
static struct wave_sched_state *st;
static struct wave_plugin_ctx *ctx;
/* The full check is linear in the table: off for the scale test. */
static int checking;

static void setup(void)
{
	struct wave_plugin_ctx_opts o;

	memset(&rec, 0, sizeof(rec));
	rec.emit_ret = 1;
	checking = 1;
	ck_assert_int_eq(wave_plugin_open_static(wave_plugin_entry_rec, &plugin, NULL), 0);
	ck_assert_int_eq(wave_sched_state_create(NCPU, &st), 0);
	wave_plugin_ctx_opts_init(&o);
	o.emit = rec_emit;
	o.domain_state = st;
	ck_assert_int_eq(wave_plugin_ctx_create(plugin, &o, &ctx, NULL), 0);
}

static void teardown(void)
{
	wave_plugin_ctx_destroy(ctx);
	wave_sched_state_destroy(st);
	wave_plugin_unload(plugin);
}

/* Applies one message and checks the invariants afterwards. */
static int send(struct wave_sched_msg d)
{
	struct wave_msg m;
	int ret;

	ck_assert_int_eq(wave_sched_msg_encode(&d, NCPU, &m), 0);
	ret = wave_sched_state_apply(st, ctx, &m);
	if (checking)
		ck_assert_int_eq(wave_sched_state_check(st), 0);
	return ret;
}

static int ev(uint16_t type, uint64_t task, uint64_t seq, uint32_t cpu, uint64_t now)
{
	return send((struct wave_sched_msg){ .type = type, .task = task, .seq = seq, .cpu = cpu,
					     .now_ns = now });
}

static int new_task(uint64_t task, uint64_t seq, uint8_t state)
{
	return send((struct wave_sched_msg){ .type = WAVE_SCHED_TASK_NEW, .task = task, .seq = seq,
					     .state = state, .cpu = WAVE_SCHED_CPU_NONE });
}

static int out(uint16_t decision, uint64_t task, uint64_t seq, uint32_t cpu, unsigned result,
	       uint64_t now)
{
	return send((struct wave_sched_msg){ .type = WAVE_SCHED_OUTCOME, .decision = decision,
					     .result = (uint8_t)result, .task = task, .seq = seq,
					     .cpu = cpu, .now_ns = now });
}

static struct wave_sched_stats stats(void)
{
	struct wave_sched_stats s;

	ck_assert_int_eq(wave_sched_state_stats(st, &s), 0);
	return s;
}

static struct wave_sched_task task(uint64_t id)
{
	struct wave_sched_task t;

	ck_assert_int_eq(wave_plugin_sched_task(ctx, id, &t), 0);
	return t;
}

/* Task @id runnable at seq 1, run and committed on @cpu at time @now. */
static void running(uint64_t id, uint32_t cpu, uint64_t now)
{
	ck_assert_int_eq(new_task(id, 1, WAVE_SCHED_RUNNABLE), 0);
	ck_assert_int_eq(wave_plugin_sched_run(ctx, id, 1, cpu), 0);
	ck_assert_int_eq(out(WAVE_SCHED_RUN, id, 1, cpu, WAVE_SCHED_COMMITTED, now), 0);
}

/* ---- events ------------------------------------------------------------- */

START_TEST(events_reach_plugin)
{
	running(1, 2, 100);
	ck_assert_uint_eq(task(1).state, WAVE_SCHED_RUNNING);
	ck_assert_uint_eq(task(1).cpu, 2);
	ck_assert_int_eq(ev(WAVE_SCHED_TICK, 0, 0, 2, 150), 0);
	ck_assert_int_eq(ev(WAVE_SCHED_TASK_BLOCKED, 1, 2, 2, 400), 0);
	ck_assert_uint_eq(task(1).runtime_ns, 300);
	ck_assert_uint_eq(task(1).state, WAVE_SCHED_BLOCKED);
	ck_assert_int_eq(ev(WAVE_SCHED_CPU_IDLE, 0, 0, 2, 450), 0);
	ck_assert_int_eq(ev(WAVE_SCHED_TASK_WAKEUP, 1, 3, WAVE_SCHED_CPU_NONE, 500), 0);
	ck_assert_uint_eq(task(1).state, WAVE_SCHED_RUNNABLE);
	ck_assert_int_eq(ev(WAVE_SCHED_TASK_DEAD, 1, 4, WAVE_SCHED_CPU_NONE, 600), 0);
	ck_assert_int_eq(wave_plugin_sched_task(ctx, 1, &(struct wave_sched_task){ 0 }), -ENOENT);
	ck_assert_uint_eq(rec.calls[C_NEW], 1);
	ck_assert_uint_eq(rec.calls[C_COMMIT], 1);
	ck_assert_uint_eq(rec.calls[C_TICK], 1);
	ck_assert_uint_eq(rec.calls[C_BLOCK], 1);
	ck_assert_uint_eq(rec.calls[C_IDLE], 1);
	ck_assert_uint_eq(rec.calls[C_WAKE], 1);
	ck_assert_uint_eq(rec.calls[C_DEAD], 1);
	ck_assert_uint_eq(stats().events, 7);
	ck_assert_uint_eq(stats().tasks, 0);
}
END_TEST

START_TEST(refuses_impossible_events)
{
	ck_assert_int_eq(ev(WAVE_SCHED_TASK_WAKEUP, 9, 2, WAVE_SCHED_CPU_NONE, 0), -ENOENT);
	ck_assert_int_eq(new_task(1, 5, WAVE_SCHED_BLOCKED), 0);
	ck_assert_int_eq(new_task(1, 6, WAVE_SCHED_BLOCKED), -EEXIST);
	/* Sequence numbers must advance: equal and lower are refused. */
	ck_assert_int_eq(ev(WAVE_SCHED_TASK_WAKEUP, 1, 5, WAVE_SCHED_CPU_NONE, 0), -ESTALE);
	ck_assert_int_eq(ev(WAVE_SCHED_TASK_WAKEUP, 1, 4, WAVE_SCHED_CPU_NONE, 0), -ESTALE);
	/* Not running: cannot block, yield or be preempted. */
	ck_assert_int_eq(ev(WAVE_SCHED_TASK_BLOCKED, 1, 6, 0, 0), -EPROTO);
	ck_assert_int_eq(ev(WAVE_SCHED_TASK_YIELD, 1, 6, 0, 0), -EPROTO);
	ck_assert_int_eq(ev(WAVE_SCHED_TASK_WAKEUP, 1, 6, WAVE_SCHED_CPU_NONE, 0), 0);
	/* Runnable: cannot wake up again. */
	ck_assert_int_eq(ev(WAVE_SCHED_TASK_WAKEUP, 1, 7, WAVE_SCHED_CPU_NONE, 0), -EPROTO);
	/* Not running, so it cannot die on a CPU. */
	ck_assert_int_eq(ev(WAVE_SCHED_TASK_DEAD, 1, 8, 1, 0), -EPROTO);
	ck_assert_int_eq(ev(WAVE_SCHED_TASK_DEAD, 1, 8, WAVE_SCHED_CPU_NONE, 0), 0);
	/* After dead, the id is unknown. */
	ck_assert_int_eq(ev(WAVE_SCHED_TASK_WAKEUP, 1, 9, WAVE_SCHED_CPU_NONE, 0), -ENOENT);
	/* A decision type from the host, and garbage. */
	ck_assert_int_eq(send((struct wave_sched_msg){ .type = WAVE_SCHED_RUN, .task = 1,
						       .seq = 1, .cpu = 0 }), -ENOMSG);
	struct wave_msg junk;
	memset(&junk, 0xff, sizeof(junk));
	ck_assert_int_eq(wave_sched_state_apply(st, ctx, &junk), -ENOMSG);
	struct wave_sched_stats s = stats();
	ck_assert_uint_eq(s.unknown_task, 2);
	ck_assert_uint_eq(s.dup_new, 1);
	ck_assert_uint_eq(s.seq_backwards, 2);
	ck_assert_uint_eq(s.bad_transition, 4);
	ck_assert_uint_eq(s.bad_msgs, 2);
	ck_assert_uint_eq(s.events, 3);
	/* The plugin's error in task_dead was counted by the context. */
	const char *name;
	uint64_t v;
	ck_assert_int_eq(wave_plugin_ctx_counter(ctx, 1, &name, &v), 0);
	ck_assert_str_eq(name, "event_errors");
	ck_assert_uint_eq(v, 1);
}
END_TEST

START_TEST(event_on_wrong_cpu)
{
	running(1, 0, 0);
	ck_assert_int_eq(ev(WAVE_SCHED_TASK_YIELD, 1, 2, 1, 10), -EPROTO);
	ck_assert_int_eq(ev(WAVE_SCHED_CPU_IDLE, 0, 0, 0, 10), -EPROTO);
	ck_assert_int_eq(ev(WAVE_SCHED_TASK_DEAD, 1, 2, 3, 10), -EPROTO);
	ck_assert_int_eq(ev(WAVE_SCHED_TASK_DEAD, 1, 2, WAVE_SCHED_CPU_NONE, 10), -EPROTO);
	ck_assert_int_eq(ev(WAVE_SCHED_TASK_YIELD, 1, 2, 0, 10), 0);
	ck_assert_uint_eq(stats().bad_transition, 4);
}
END_TEST

/* ---- decisions ---------------------------------------------------------- */

START_TEST(decisions_checked_before_sending)
{
	ck_assert_int_eq(new_task(1, 1, WAVE_SCHED_RUNNABLE), 0);
	ck_assert_int_eq(new_task(2, 1, WAVE_SCHED_BLOCKED), 0);
	ck_assert_int_eq(wave_plugin_sched_run(ctx, 1, 1, NCPU), -ERANGE);
	ck_assert_int_eq(wave_plugin_sched_run(ctx, 3, 1, 0), -ENOENT);
	ck_assert_int_eq(wave_plugin_sched_run(ctx, 1, 2, 0), -ESTALE);
	ck_assert_int_eq(wave_plugin_sched_run(ctx, 2, 1, 0), -EPERM);
	ck_assert_int_eq(wave_plugin_sched_preempt(ctx, 0), -EPERM);
	ck_assert_uint_eq(rec.n_sent, 0);
	ck_assert_int_eq(wave_plugin_sched_run(ctx, 1, 1, 0), 0);
	ck_assert_uint_eq(rec.n_sent, 1);
	ck_assert_uint_eq(rec.sent[0].type, WAVE_SCHED_RUN);
	/* Pending: neither the task nor the CPU takes another decision. */
	ck_assert_int_eq(wave_plugin_sched_run(ctx, 1, 1, 1), -EPERM);
	ck_assert_int_eq(wave_plugin_sched_prestage(ctx, 1, 1, 1), -EPERM);
	ck_assert_int_eq(ev(WAVE_SCHED_TASK_WAKEUP, 2, 2, WAVE_SCHED_CPU_NONE, 0), 0);
	ck_assert_int_eq(wave_plugin_sched_run(ctx, 2, 2, 0), -EBUSY);
	ck_assert_int_eq(wave_plugin_sched_free_cpu(ctx, 0), 1);
	ck_assert_int_eq(wave_plugin_sched_free_cpu(ctx, 7), 3);
	struct wave_sched_stats s = stats();
	ck_assert_uint_eq(s.refused_no_cpu, 1);
	ck_assert_uint_eq(s.refused_unknown, 1);
	ck_assert_uint_eq(s.refused_stale, 1);
	ck_assert_uint_eq(s.refused_not_runnable, 4);
	ck_assert_uint_eq(s.refused_busy, 1);
	ck_assert_uint_eq(s.sent, 1);
}
END_TEST

START_TEST(full_channel_changes_nothing)
{
	ck_assert_int_eq(new_task(1, 1, WAVE_SCHED_RUNNABLE), 0);
	rec.emit_ret = 0;
	ck_assert_int_eq(wave_plugin_sched_run(ctx, 1, 1, 0), -EAGAIN);
	rec.emit_ret = -WAVE_ECLOSED;
	ck_assert_int_eq(wave_plugin_sched_run(ctx, 1, 1, 0), -WAVE_ECLOSED);
	ck_assert_uint_eq(task(1).pending, 0);
	ck_assert_int_eq(wave_plugin_sched_free_cpu(ctx, 0), 0);
	ck_assert_uint_eq(stats().refused_full, 2);
	rec.emit_ret = 1;
	ck_assert_int_eq(wave_plugin_sched_run(ctx, 1, 1, 0), 0);
}
END_TEST

START_TEST(every_cpu_busy)
{
	for (uint32_t c = 0; c < NCPU; c++)
		running(c + 1, c, 0);
	ck_assert_int_eq(wave_plugin_sched_free_cpu(ctx, 0), -EBUSY);
	ck_assert_int_eq(wave_plugin_sched_cpu_count(ctx), (int)NCPU);
	struct wave_sched_cpu cpu;
	ck_assert_int_eq(wave_plugin_sched_cpu(ctx, 3, &cpu), 0);
	ck_assert_uint_eq(cpu.current, 4);
	ck_assert_int_eq(wave_plugin_sched_cpu(ctx, NCPU, &cpu), -ERANGE);
}
END_TEST

/* ---- transactions ------------------------------------------------------- */

START_TEST(stale_abort_restores_latest_state)
{
	ck_assert_int_eq(new_task(1, 1, WAVE_SCHED_RUNNABLE), 0);
	ck_assert_int_eq(wave_plugin_sched_run(ctx, 1, 1, 2), 0);
	ck_assert_int_eq(out(WAVE_SCHED_RUN, 1, 1, 2, WAVE_SCHED_ABORT_STALE, 5), 0);
	ck_assert_uint_eq(rec.calls[C_ABORT], 1);
	ck_assert_uint_eq(rec.last_result, WAVE_SCHED_ABORT_STALE);
	struct wave_sched_task t = task(1);
	ck_assert_uint_eq(t.state, WAVE_SCHED_RUNNABLE);
	ck_assert_uint_eq(t.pending, 0);
	ck_assert_uint_eq(t.pending_cpu, WAVE_SCHED_CPU_NONE);
	ck_assert_int_eq(wave_plugin_sched_free_cpu(ctx, 2), 2);
	/* The same outcome again is not pending any more. */
	ck_assert_int_eq(out(WAVE_SCHED_RUN, 1, 1, 2, WAVE_SCHED_ABORT_STALE, 5), -EPROTO);
	ck_assert_uint_eq(stats().aborted[WAVE_SCHED_ABORT_STALE], 1);
}
END_TEST

START_TEST(dead_while_pending)
{
	ck_assert_int_eq(new_task(1, 1, WAVE_SCHED_RUNNABLE), 0);
	ck_assert_int_eq(wave_plugin_sched_run(ctx, 1, 1, 0), 0);
	ck_assert_int_eq(ev(WAVE_SCHED_TASK_DEAD, 1, 2, WAVE_SCHED_CPU_NONE, 5), 0);
	ck_assert_int_eq(wave_plugin_sched_free_cpu(ctx, 0), 0);
	ck_assert_int_eq(out(WAVE_SCHED_RUN, 1, 1, 0, WAVE_SCHED_ABORT_DEAD, 6), 0);
	ck_assert_uint_eq(rec.last_task, 0); /* aborted with no task view */
	/* A commit of a task that is gone cannot be. */
	ck_assert_int_eq(out(WAVE_SCHED_RUN, 1, 1, 0, WAVE_SCHED_COMMITTED, 6), -ENOENT);
}
END_TEST

/* A task id reused after its task died: the old incarnation's outcome
 * is an abort like any for a task that is gone, not an impossible event,
 * and the new incarnation's own decision is untouched. */
START_TEST(outcome_for_reused_task_id)
{
	struct wave_sched_stats before;

	ck_assert_int_eq(new_task(1, 1, WAVE_SCHED_RUNNABLE), 0);
	ck_assert_int_eq(wave_plugin_sched_run(ctx, 1, 1, 0), 0);
	ck_assert_int_eq(ev(WAVE_SCHED_TASK_DEAD, 1, 2, WAVE_SCHED_CPU_NONE, 5), 0);
	ck_assert_int_eq(new_task(1, 3, WAVE_SCHED_RUNNABLE), 0);
	ck_assert_int_eq(wave_plugin_sched_prestage(ctx, 1, 3, 2), 0);
	before = stats();
	ck_assert_int_eq(out(WAVE_SCHED_RUN, 1, 1, 0, WAVE_SCHED_ABORT_STALE, 6), 0);
	ck_assert_uint_eq(stats().bad_transition, before.bad_transition);
	ck_assert_uint_eq(stats().aborted[WAVE_SCHED_ABORT_STALE],
			  before.aborted[WAVE_SCHED_ABORT_STALE] + 1);
	ck_assert_uint_eq(rec.last_task, 0); /* the old task: no view */
	ck_assert_int_eq(task(1).pending, WAVE_SCHED_PRESTAGE);
	ck_assert_int_eq(out(WAVE_SCHED_PRESTAGE, 1, 3, 2, WAVE_SCHED_COMMITTED, 7), 0);
	ck_assert_int_eq(task(1).state, WAVE_SCHED_RUNNING);
}
END_TEST

START_TEST(prestage_and_preempt)
{
	running(1, 0, 0);
	ck_assert_int_eq(new_task(2, 1, WAVE_SCHED_RUNNABLE), 0);
	ck_assert_int_eq(new_task(3, 1, WAVE_SCHED_RUNNABLE), 0);
	ck_assert_int_eq(wave_plugin_sched_prestage(ctx, 2, 1, 0), 0);
	ck_assert_int_eq(wave_plugin_sched_prestage(ctx, 3, 1, 0), -EBUSY);
	ck_assert_int_eq(wave_plugin_sched_preempt(ctx, 0), 0);
	ck_assert_int_eq(wave_plugin_sched_preempt(ctx, 0), -EBUSY);
	/* The host preempts 1 and starts the prestaged 2 at once. */
	ck_assert_int_eq(ev(WAVE_SCHED_TASK_PREEMPTED, 1, 2, 0, 50), 0);
	/* 0 is not free: its prestaged task is about to start. */
	ck_assert_int_eq(wave_plugin_sched_run(ctx, 3, 1, 0), -EBUSY);
	ck_assert_int_eq(out(WAVE_SCHED_PRESTAGE, 2, 1, 0, WAVE_SCHED_COMMITTED, 50), 0);
	ck_assert_uint_eq(task(2).state, WAVE_SCHED_RUNNING);
	ck_assert_uint_eq(task(1).state, WAVE_SCHED_RUNNABLE);
	ck_assert_uint_eq(task(1).runtime_ns, 50);
	/* A late preempt abort for a task that stopped is harmless. */
	ck_assert_int_eq(out(WAVE_SCHED_PREEMPT, 1, 1, 0, WAVE_SCHED_ABORT_STALE, 51), 0);
	ck_assert_uint_eq(stats().committed, 2);
}
END_TEST

START_TEST(commit_on_busy_cpu_refused)
{
	running(1, 0, 0);
	ck_assert_int_eq(new_task(2, 1, WAVE_SCHED_RUNNABLE), 0);
	ck_assert_int_eq(wave_plugin_sched_prestage(ctx, 2, 1, 0), 0);
	/* The host must report the end of task 1 before starting 2 there. */
	ck_assert_int_eq(out(WAVE_SCHED_PRESTAGE, 2, 1, 0, WAVE_SCHED_COMMITTED, 5), -EPROTO);
	ck_assert_int_eq(out(WAVE_SCHED_RUN, 2, 1, 0, WAVE_SCHED_ABORT_STALE, 5), -EPROTO);
}
END_TEST

/* ---- scale -------------------------------------------------------------- */

/* Many tasks in, half of them out, in an order that exercises the table's
 * back-shifting deletion; every survivor still found. */
START_TEST(table_many_tasks)
{
	const uint64_t n = 100000;

	checking = 0;
	for (uint64_t i = 1; i <= n; i++)
		ck_assert_int_eq(new_task(i * 7919, 1, WAVE_SCHED_BLOCKED), 0);
	for (uint64_t i = 1; i <= n; i += 2)
		ck_assert_int_eq(ev(WAVE_SCHED_TASK_DEAD, i * 7919, 2, WAVE_SCHED_CPU_NONE, 0), 0);
	for (uint64_t i = 2; i <= n; i += 2)
		ck_assert_uint_eq(task(i * 7919).seq, 1);
	ck_assert_int_eq(wave_sched_state_check(st), 0);
	/* O(1): a lookup of a present task probes few slots, whatever n. */
	ck_assert_double_lt(u64map_mean_probes(&st->tasks), 3.0);
	struct wave_sched_stats s = stats();
	ck_assert_uint_eq(s.tasks, n / 2);
	/* 56 bytes a task, a table between 3/16 and 3/4 full here. */
	ck_assert_uint_le(s.bytes, n / 2 * 56 * 16 / 3 + 4096);
}
END_TEST

/* No host can grow the table past its bound (WAVE_SCHED_MAX_TASKS live
 * tasks): the next is refused and counted, and a task that dies makes
 * room again. */
START_TEST(table_bounded)
{
	const uint64_t max = 1000; /* the bound's own 2^22 take 15 s here */

	ck_assert_uint_eq(st->max_tasks, WAVE_SCHED_MAX_TASKS);
	st->max_tasks = max;
	for (uint64_t i = 1; i <= max; i++)
		ck_assert_int_eq(new_task(i, 1, WAVE_SCHED_BLOCKED), 0);
	ck_assert_int_eq(new_task(max + 1, 1, WAVE_SCHED_BLOCKED), -ENOSPC);
	ck_assert_uint_eq(stats().no_memory, 1);
	ck_assert_uint_eq(stats().tasks, max);
	ck_assert_int_eq(ev(WAVE_SCHED_TASK_DEAD, 7, 2, WAVE_SCHED_CPU_NONE, 0), 0);
	ck_assert_int_eq(new_task(max + 1, 1, WAVE_SCHED_BLOCKED), 0);
	ck_assert_uint_eq(rec.calls[C_NEW], max + 1);
}
END_TEST

/* The last task found is kept in front of the table: it must follow the
 * table as insertions grow it and removals shift its entries, and never
 * answer for a task that is gone. */
START_TEST(task_cache_follows_table)
{
	const uint64_t n = 300; /* the table grows several times */
	struct wave_sched_task t;

	ck_assert_int_eq(new_task(1, 1, WAVE_SCHED_BLOCKED), 0);
	ck_assert_uint_eq(task(1).id, 1);
	for (uint64_t i = 2; i <= n; i++) {
		ck_assert_int_eq(new_task(i, i, WAVE_SCHED_BLOCKED), 0);
		ck_assert_uint_eq(task(1).seq, 1); /* found again after each insertion */
	}
	/* Each removal may shift the entry last found: find one, remove
	 * another, then find every task left. */
	for (uint64_t i = 2; i <= n; i += 3) {
		ck_assert_uint_eq(task(i + 1).id, i + 1);
		ck_assert_int_eq(ev(WAVE_SCHED_TASK_DEAD, i, i + 1, WAVE_SCHED_CPU_NONE, 0), 0);
		ck_assert_int_eq(wave_plugin_sched_task(ctx, i, &t), -ENOENT);
		for (uint64_t k = 1; k <= n; k++)
			if (k < 2 || (k - 2) % 3 || k > i)
				ck_assert_uint_eq(task(k).seq, k);
	}
	/* The task last found dies: its id is unknown until it comes back. */
	ck_assert_uint_eq(task(1).id, 1);
	ck_assert_int_eq(ev(WAVE_SCHED_TASK_DEAD, 1, 2, WAVE_SCHED_CPU_NONE, 0), 0);
	ck_assert_int_eq(wave_plugin_sched_task(ctx, 1, &t), -ENOENT);
	ck_assert_int_eq(new_task(1, 5, WAVE_SCHED_RUNNABLE), 0);
	ck_assert_uint_eq(task(1).seq, 5);
}
END_TEST

/* The search for a free CPU starts at @from modulo the CPU count, which
 * it computes without dividing: every CPU count, dividends to 2^32 - 1. */
START_TEST(free_cpu_start_modulo)
{
	static const uint32_t counts[] = { 1, 2, 3, 7, 63, 64, 65, 100, 1000, WAVE_SCHED_MAX_CPUS };
	static const uint32_t from[] = { 0, 1, 2, 63, 64, 65, 999, 4095, 4096, 65537, 1u << 31,
					 UINT32_MAX - 1, UINT32_MAX };

	for (unsigned i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		struct wave_plugin_ctx_opts o;
		struct wave_sched_state *s;
		struct wave_plugin_ctx *c;

		ck_assert_int_eq(wave_sched_state_create(counts[i], &s), 0);
		wave_plugin_ctx_opts_init(&o);
		o.domain_state = s;
		ck_assert_int_eq(wave_plugin_ctx_create(plugin, &o, &c, NULL), 0);
		for (unsigned k = 0; k < sizeof(from) / sizeof(from[0]); k++) /* all free */
			ck_assert_int_eq(wave_plugin_sched_free_cpu(c, from[k]),
					 (int)(from[k] % counts[i]));
		for (uint32_t x = UINT32_MAX - 5000; x != 0; x++)
			ck_assert_int_eq(wave_plugin_sched_free_cpu(c, x), (int)(x % counts[i]));
		wave_plugin_ctx_destroy(c);
		wave_sched_state_destroy(s);
	}
}
END_TEST

START_TEST(bad_arguments)
{
	struct wave_sched_state *x;
	struct wave_msg m;

	ck_assert_int_eq(wave_sched_state_create(0, &x), -EINVAL);
	ck_assert_int_eq(wave_sched_state_create(WAVE_SCHED_MAX_CPUS + 1, &x), -EINVAL);
	ck_assert_int_eq(wave_sched_state_create(1, NULL), -EINVAL);
	memset(&m, 0, sizeof(m));
	ck_assert_int_eq(wave_sched_state_apply(NULL, ctx, &m), -EINVAL);
	ck_assert_int_eq(wave_sched_state_apply(st, ctx, NULL), -EINVAL);
	ck_assert_int_eq(wave_sched_state_stats(st, NULL), -EINVAL);
	ck_assert_int_eq(wave_plugin_sched_run(NULL, 1, 1, 0), -EINVAL);
	ck_assert_int_eq(wave_plugin_sched_task(ctx, 1, NULL), -EINVAL);
	ck_assert_int_eq(wave_plugin_sched_cpu_count(NULL), -EINVAL);
	wave_sched_state_destroy(NULL);
	/* A context over another state is refused. */
	ck_assert_int_eq(wave_sched_state_create(2, &x), 0);
	ck_assert_int_eq(wave_sched_state_apply(x, ctx, &m), -EINVAL);
	ck_assert_int_eq(wave_sched_state_apply(x, NULL, &m), -ENOMSG);
	wave_sched_state_destroy(x);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sched_state");
	TCase *tc = tcase_create("state");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, events_reach_plugin);
	tcase_add_test(tc, refuses_impossible_events);
	tcase_add_test(tc, event_on_wrong_cpu);
	tcase_add_test(tc, decisions_checked_before_sending);
	tcase_add_test(tc, full_channel_changes_nothing);
	tcase_add_test(tc, every_cpu_busy);
	tcase_add_test(tc, stale_abort_restores_latest_state);
	tcase_add_test(tc, dead_while_pending);
	tcase_add_test(tc, outcome_for_reused_task_id);
	tcase_add_test(tc, prestage_and_preempt);
	tcase_add_test(tc, commit_on_busy_cpu_refused);
	tcase_add_test(tc, table_many_tasks);
	tcase_add_test(tc, table_bounded);
	tcase_add_test(tc, task_cache_follows_table);
	tcase_add_test(tc, free_cpu_start_modulo);
	tcase_add_test(tc, bad_arguments);
	suite_add_tcase(s, tc);
	return wave_check_run(s);
}
