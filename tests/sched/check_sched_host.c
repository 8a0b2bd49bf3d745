/* SPDX-License-Identifier: MIT */
/*
 * The host side of the sched domain (include/wave/sched.h), against a
 * scripted agent (sagent.h): a real channel and session handshake, whose decisions the
 * test writes one by one, so that every transaction outcome, the prestage
 * slot, preemption, the switch to fallback and back, and bad input are
 * checked exactly, message by message. Nothing here depends on timing: the
 * test waits for messages, and Check's timeout only catches a hang.
 *
 * Run twice: `check_sched_host` puts the agent's RUN and PRESTAGE into
 * the CPUs' mailboxes (the default), `check_sched_host ring` makes the
 * scheduler without mailboxes and sends them on the ring; every case
 * expects the same outcomes of both.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>

#include <wave/wave.h>

#include "check_run.h"
#include "chan/shm_layout.h"
#include "domains/sched/sched_host.h"
#include "domains/sched/sched.h"
#include "domains/sched/sched_impl.h"
#include "sagent.h"
#include "session/proto.h"

/* ---- transactions ---------------------------------------------------------- */

START_TEST(commit_and_every_abort)
{
	struct sagent sa = { 0 };
	struct wave_sched *s = connect_sched(&sa);
	struct wave_sched_host_stats st;
	struct wave_sched_grant g;
	uint64_t s1, s2, s2b, s3, s4, s5;

	s1 = new_task(s, &sa, 1, 1);
	run_on(s, &sa, 1, s1, 0);

	/* stale: task 2 yielded after the agent decided on its old seq. */
	s2 = new_task(s, &sa, 2, 1);
	run_on(s, &sa, 2, s2, 1);
	ck_assert_int_eq(wave_sched_task_yield(s, 2), 0);
	s2b = sa_expect(&sa, WAVE_SCHED_TASK_YIELD, 2);
	ck_assert_uint_gt(s2b, s2);
	sa_stage(&sa, WAVE_SCHED_RUN, 2, s2, 1);
	ck_assert_int_eq(wave_sched_next(s, 1, &g), 0);
	sa_expect_outcome(&sa, WAVE_SCHED_RUN, 2, s2, 1, WAVE_SCHED_ABORT_STALE);
	sa_expect_idle(&sa, 1); /* once, the first time it finds nothing */

	/* dead: task 3 exited before its CPU took the decision. */
	s3 = new_task(s, &sa, 3, 1);
	sa_stage(&sa, WAVE_SCHED_PRESTAGE, 3, s3, 1);
	ck_assert_int_eq(wave_sched_task_dead(s, 3), 0);
	sa_expect(&sa, WAVE_SCHED_TASK_DEAD, 3);
	ck_assert_int_eq(wave_sched_next(s, 1, &g), 0);
	sa_expect_outcome(&sa, WAVE_SCHED_PRESTAGE, 3, s3, 1, WAVE_SCHED_ABORT_DEAD);

	/* not runnable: task 4 is blocked. */
	s4 = new_task(s, &sa, 4, 0);
	sa_stage(&sa, WAVE_SCHED_RUN, 4, s4, 1);
	ck_assert_int_eq(wave_sched_next(s, 1, &g), 0);
	sa_expect_outcome(&sa, WAVE_SCHED_RUN, 4, s4, 1, WAVE_SCHED_ABORT_NOT_RUNNABLE);

	/* CPU busy: a RUN for CPU 0, which runs task 1. */
	s5 = new_task(s, &sa, 5, 1);
	sa_send(&sa, WAVE_SCHED_RUN, 5, s5, 0);
	sa_expect_outcome(&sa, WAVE_SCHED_RUN, 5, s5, 0, WAVE_SCHED_ABORT_CPU_BUSY);

	/* invalid: a second decision into a slot that holds one. */
	sa_stage(&sa, WAVE_SCHED_PRESTAGE, 5, s5, 0);
	sa_send(&sa, WAVE_SCHED_PRESTAGE, 2, s2b, 0);
	sa_expect_outcome(&sa, WAVE_SCHED_PRESTAGE, 2, s2b, 0, WAVE_SCHED_ABORT_INVALID);

	/* The prestaged task 5 runs when task 1 blocks, with no round trip:
	 * the block is reported before the commit. */
	ck_assert_int_eq(wave_sched_task_blocked(s, 1), 0);
	ck_assert_int_eq(wave_sched_next(s, 0, &g), 1);
	ck_assert_uint_eq(g.task, 5);
	ck_assert_int_eq(g.prestaged, 1);
	sa_expect(&sa, WAVE_SCHED_TASK_BLOCKED, 1);
	sa_expect_outcome(&sa, WAVE_SCHED_PRESTAGE, 5, s5, 0, WAVE_SCHED_COMMITTED);

	ck_assert_int_eq(wave_sched_host_stats(s, &st), 0);
	ck_assert_uint_eq(st.committed, 3);
	ck_assert_uint_eq(st.prestaged, 1);
	for (unsigned r = WAVE_SCHED_ABORT_STALE; r < WAVE_SCHED_RESULT_COUNT; r++)
		ck_assert_msg(st.aborted[r] == 1, "%s: %llu", wave_sched_result_name(r),
			      (unsigned long long)st.aborted[r]);
	ck_assert_uint_eq(st.tasks, 4);
	ck_assert_uint_eq(st.bad_decisions, 0);
	/* Every RUN and PRESTAGE of the case came through a mailbox. */
	ck_assert_uint_eq(st.mailboxed, sa_mbox_mode ? 8 : 0);
	teardown(&sa, s);
}
END_TEST

/* The agent may prestage a CPU's next task while its RUN is in flight:
 * the RUN's task runs first, the prestaged one when it stops. */
START_TEST(run_then_prestage)
{
	struct sagent sa = { 0 };
	struct wave_sched *s = connect_sched(&sa);
	struct wave_sched_grant g;
	uint64_t s1, s2;

	s1 = new_task(s, &sa, 1, 1);
	s2 = new_task(s, &sa, 2, 1);
	sa_stage(&sa, WAVE_SCHED_RUN, 1, s1, 0);
	sa_stage(&sa, WAVE_SCHED_PRESTAGE, 2, s2, 0);
	ck_assert_int_eq(wave_sched_next(s, 0, &g), 1);
	ck_assert_uint_eq(g.task, 1);
	ck_assert_int_eq(g.prestaged, 0);
	sa_expect_outcome(&sa, WAVE_SCHED_RUN, 1, s1, 0, WAVE_SCHED_COMMITTED);
	ck_assert_int_eq(wave_sched_task_dead(s, 1), 0);
	ck_assert_int_eq(wave_sched_next(s, 0, &g), 1);
	ck_assert_uint_eq(g.task, 2);
	ck_assert_int_eq(g.prestaged, 1);
	sa_expect(&sa, WAVE_SCHED_TASK_DEAD, 1);
	sa_expect_outcome(&sa, WAVE_SCHED_PRESTAGE, 2, s2, 0, WAVE_SCHED_COMMITTED);
	teardown(&sa, s);
}
END_TEST

START_TEST(preemption)
{
	struct sagent sa = { 0 };
	struct wave_sched *s = connect_sched(&sa);
	struct wave_sched_host_stats st;
	uint64_t s1, s1b;

	s1 = new_task(s, &sa, 1, 1);
	run_on(s, &sa, 1, s1, 0);
	ck_assert_int_eq(wave_sched_should_yield(s, 0), 0);
	/* A PREEMPT for an older seq is moot and answered. */
	sa_send(&sa, WAVE_SCHED_PREEMPT, 1, s1 + 100, 0);
	sa_expect_outcome(&sa, WAVE_SCHED_PREEMPT, 1, s1 + 100, 0, WAVE_SCHED_ABORT_STALE);
	ck_assert_int_eq(wave_sched_should_yield(s, 0), 0);
	/* The real one raises the flag; carried out, it is the event. */
	sa_stage(&sa, WAVE_SCHED_PREEMPT, 1, s1, 0);
	ck_assert_int_eq(wave_sched_should_yield(s, 0), 1);
	ck_assert_int_eq(wave_sched_should_yield(s, 1), 0);
	ck_assert_int_eq(wave_sched_task_preempted(s, 1), 0);
	ck_assert_int_eq(wave_sched_should_yield(s, 0), 0);
	s1b = sa_expect(&sa, WAVE_SCHED_TASK_PREEMPTED, 1);
	/* Preempt again, but the task blocks first: an outcome after the block. */
	run_on(s, &sa, 1, s1b, 0);
	sa_stage(&sa, WAVE_SCHED_PREEMPT, 1, s1b, 0);
	ck_assert_int_eq(wave_sched_should_yield(s, 0), 1);
	ck_assert_int_eq(wave_sched_task_blocked(s, 1), 0);
	sa_expect(&sa, WAVE_SCHED_TASK_BLOCKED, 1);
	sa_expect_outcome(&sa, WAVE_SCHED_PREEMPT, 1, s1b, 0, WAVE_SCHED_ABORT_STALE);
	ck_assert_int_eq(wave_sched_host_stats(s, &st), 0);
	ck_assert_uint_eq(st.preempts, 2);
	ck_assert_uint_eq(st.preempts_moot, 2);
	teardown(&sa, s);
}
END_TEST

START_TEST(bad_input)
{
	struct sagent sa = { 0 };
	struct wave_sched *s = connect_sched(&sa);
	struct wave_sched_task_opts t;
	struct wave_sched_host_stats st;
	struct wave_sched_grant g;
	struct wave_msg m;
	uint64_t s1;

	wave_sched_task_opts_init(&t);
	ck_assert_int_eq(wave_sched_task_new(s, 0, NULL), -EINVAL);
	t.cpu_hint = NCPU;
	ck_assert_int_eq(wave_sched_task_new(s, 9, &t), -EINVAL);
	t.cpu_hint = WAVE_SCHED_CPU_NONE;
	t.hint_kind = WAVE_SCHED_HINT_WEIGHT; /* weight 0 */
	ck_assert_int_eq(wave_sched_task_new(s, 9, &t), -EINVAL);
	t.hint_kind = 7;
	t.hint = 1;
	ck_assert_int_eq(wave_sched_task_new(s, 9, &t), -EINVAL);
	t.size = 1;
	ck_assert_int_eq(wave_sched_task_new(s, 9, &t), -EINVAL);

	s1 = new_task(s, &sa, 1, 1);
	ck_assert_int_eq(wave_sched_task_new(s, 1, NULL), -EEXIST);
	ck_assert_int_eq(wave_sched_task_wakeup(s, 1), -EPERM);   /* runnable */
	ck_assert_int_eq(wave_sched_task_blocked(s, 1), -EPERM);  /* not running */
	ck_assert_int_eq(wave_sched_task_yield(s, 1), -EPERM);
	ck_assert_int_eq(wave_sched_task_preempted(s, 1), -EPERM);
	ck_assert_int_eq(wave_sched_task_wakeup(s, 2), -ENOENT);
	ck_assert_int_eq(wave_sched_task_dead(s, 2), -ENOENT);
	ck_assert_int_eq(wave_sched_next(s, NCPU, &g), -EINVAL);
	ck_assert_int_eq(wave_sched_next(s, 0, NULL), -EINVAL);
	ck_assert_int_eq(wave_sched_wait(s, NCPU, 0), -EINVAL);
	ck_assert_int_eq(wave_sched_should_yield(s, NCPU), 0);
	ck_assert_int_eq(wave_sched_should_yield(NULL, 0), 0);
	run_on(s, &sa, 1, s1, 0);
	ck_assert_int_eq(wave_sched_next(s, 0, &g), -EBUSY);
	ck_assert_int_eq(wave_sched_task_dead(s, 1), 0);
	sa_expect(&sa, WAVE_SCHED_TASK_DEAD, 1);
	/* Events after dead: the id is unknown. */
	ck_assert_int_eq(wave_sched_task_wakeup(s, 1), -ENOENT);
	ck_assert_int_eq(wave_sched_task_blocked(s, 1), -ENOENT);
	ck_assert_int_eq(wave_sched_task_dead(s, 1), -ENOENT);
	/* The id may be reused, with a newer sequence number. */
	ck_assert_uint_gt(new_task(s, &sa, 1, 1), s1);

	/* Garbage from the agent: a decision for a CPU that does not exist.
	 * Counted, the agent is dropped, and the CPU is not stuck: the
	 * fallback runs the task. */
	memset(&m, 0, sizeof(m));
	m.type = WAVE_SCHED_RUN;
	m.payload.u64[0] = 1;
	m.payload.u64[1] = 1;
	m.payload.u32[4] = NCPU;
	ck_assert_int_eq(wave_chan_send_burst(sa.ch, &m, 1), 1);
	while (wave_sched_mode(s) != WAVE_HOST_FALLBACK)
		ck_assert_int_ge(wave_sched_poll(s, WAVE_US(1000)), 0);
	ck_assert_int_eq(wave_sched_host_stats(s, &st), 0);
	ck_assert_uint_eq(st.bad_decisions, 1);
	ck_assert_uint_eq(st.fallbacks, 1);
	sa_close(&sa); /* no reconnection */
	ck_assert_int_eq(wave_sched_next(s, 1, &g), 1);
	ck_assert_uint_eq(g.task, 1);
	ck_assert_int_eq(g.source, WAVE_DECISION_FALLBACK);

	ck_assert_int_eq(wave_sched_create(NULL, NULL, NULL, NULL), -EINVAL);
	ck_assert_int_eq(wave_sched_next(NULL, 0, &g), -EINVAL);
	ck_assert_int_eq(wave_sched_task_new(NULL, 1, NULL), -EINVAL);
	ck_assert_int_eq(wave_sched_poll(NULL, 0), -EINVAL);
	ck_assert_int_eq(wave_sched_host_stats(NULL, &st), -EINVAL);
	wave_sched_destroy(NULL);
	teardown(&sa, s);
}
END_TEST

/* Garbage of another kind: a message only a host sends. */
START_TEST(agent_sends_host_message)
{
	struct sagent sa = { 0 };
	struct wave_sched *s = connect_sched(&sa);
	struct wave_sched_msg d = { .type = WAVE_SCHED_CPU_IDLE, .cpu = 0 };
	struct wave_sched_host_stats st;
	struct wave_msg m;

	ck_assert_int_eq(wave_sched_msg_encode(&d, NCPU, &m), 0);
	ck_assert_int_eq(wave_chan_send_burst(sa.ch, &m, 1), 1);
	while (wave_sched_mode(s) != WAVE_HOST_FALLBACK)
		ck_assert_int_ge(wave_sched_poll(s, WAVE_US(1000)), 0);
	ck_assert_int_eq(wave_sched_host_stats(s, &st), 0);
	ck_assert_uint_eq(st.bad_decisions, 1);
	teardown(&sa, s);
}
END_TEST

/* No agent at all: the local FIFO, in order. */
START_TEST(local_fifo)
{
	struct wave_sched_opts o;
	struct wave_sched *s;
	struct wave_sched_grant g;

	wave_sched_opts_init(&o);
	o.n_cpus = 1;
	ck_assert_int_eq(wave_sched_create(NULL, &o, &s, NULL), 0);
	ck_assert_int_eq(wave_sched_mode(s), WAVE_HOST_FALLBACK);
	for (uint64_t id = 1; id <= 5; id++)
		ck_assert_int_eq(wave_sched_task_new(s, id, NULL), 0);
	ck_assert_int_eq(wave_sched_wait(s, 0, 0), 1);
	for (uint64_t id = 1; id <= 5; id++) {
		ck_assert_int_eq(wave_sched_next(s, 0, &g), 1);
		ck_assert_uint_eq(g.task, id);
		ck_assert_int_eq(g.source, WAVE_DECISION_FALLBACK);
		/* Yield twice, then done: the yielded task goes to the tail. */
		if (id <= 2)
			ck_assert_int_eq(wave_sched_task_yield(s, id), 0);
		else
			ck_assert_int_eq(wave_sched_task_dead(s, id), 0);
	}
	for (uint64_t id = 1; id <= 2; id++) {
		ck_assert_int_eq(wave_sched_next(s, 0, &g), 1);
		ck_assert_uint_eq(g.task, id);
		ck_assert_int_eq(wave_sched_task_dead(s, id), 0);
	}
	ck_assert_int_eq(wave_sched_next(s, 0, &g), 0);
	ck_assert_int_eq(wave_sched_wait(s, 0, WAVE_US(100)), 0);
	wave_sched_destroy(s);
}
END_TEST

/*
 * Agent lost and back: decisions in flight die with it, every runnable
 * task is run once by the fallback; the resync reports every task not
 * running; a task the fallback started stays unknown until it stops, and a
 * RUN for its CPU waits for that.
 */
START_TEST(fallback_and_resync)
{
	struct sagent sa = { 0 };
	struct wave_sched *s = connect_sched(&sa);
	struct wave_sched_host_stats st;
	struct wave_sched_grant g;
	struct wave_sched_msg d;
	uint64_t s1, s2, s4;
	int seen[5] = { 0 };

	s1 = new_task(s, &sa, 1, 1);
	s2 = new_task(s, &sa, 2, 1);
	new_task(s, &sa, 3, 1);
	run_on(s, &sa, 1, s1, 0);
	/* In flight when the agent goes: a prestage of task 2 on CPU 1. */
	sa_stage(&sa, WAVE_SCHED_PRESTAGE, 2, s2, 1);
	sa_close(&sa);
	while (wave_sched_mode(s) != WAVE_HOST_FALLBACK)
		ck_assert_int_ge(wave_sched_poll(s, WAVE_US(1000)), 0);

	/* Fallback: task 2, then 3, each once; task 1 still runs on CPU 0. */
	ck_assert_int_eq(wave_sched_next(s, 1, &g), 1);
	ck_assert_int_eq(g.source, WAVE_DECISION_FALLBACK);
	seen[g.task]++;
	ck_assert_int_eq(wave_sched_task_dead(s, g.task), 0);
	ck_assert_int_eq(wave_sched_next(s, 1, &g), 1);
	seen[g.task]++;
	ck_assert_int_eq(wave_sched_next(s, 1, &g), -EBUSY);
	ck_assert_int_eq(seen[2] + seen[3], 2);
	ck_assert_int_eq(seen[2], 1);
	/* Task 3 runs on CPU 1 (started by the fallback); 4 waits. */
	ck_assert_int_eq(wave_sched_task_new(s, 4, NULL), 0);

	/* The agent comes back: SETUP, then task 4 alone (1 and 3 run). */
	sa_listen(&sa);
	sa_accept_start(&sa);
	while (wave_sched_mode(s) != WAVE_HOST_AGENT)
		ck_assert_int_ge(wave_sched_poll(s, WAVE_US(1000)), 0);
	sa_accept_join(&sa);
	sa_expect_setup(&sa);
	s4 = sa_expect(&sa, WAVE_SCHED_TASK_NEW, 4);
	ck_assert_int_eq(wave_sched_host_stats(s, &st), 0);
	ck_assert_uint_eq(st.resyncs, 2);
	ck_assert_uint_eq(st.fallbacks, 1);
	/* A RUN for CPU 1 waits until the fallback's task 3 stops; task 3 is
	 * then new to the agent, before the RUN's outcome. */
	sa_stage(&sa, WAVE_SCHED_RUN, 4, s4, 1);
	ck_assert_int_eq(wave_sched_next(s, 1, &g), -EBUSY);
	ck_assert_int_eq(wave_sched_task_yield(s, 3), 0);
	ck_assert_int_eq(wave_sched_next(s, 1, &g), 1);
	ck_assert_uint_eq(g.task, 4);
	sa_recv(&sa, &d);
	ck_assert_str_eq(wave_sched_msg_type_name(d.type), "task_new");
	ck_assert_uint_eq(d.task, 3);
	ck_assert_uint_eq(d.state, WAVE_SCHED_RUNNABLE);
	sa_expect_outcome(&sa, WAVE_SCHED_RUN, 4, s4, 1, WAVE_SCHED_COMMITTED);
	/* Task 1, started by the old agent, dies unknown to the new one: no
	 * event; CPU 0 then reports itself idle. */
	ck_assert_int_eq(wave_sched_task_dead(s, 1), 0);
	ck_assert_int_eq(wave_sched_next(s, 0, &g), 0);
	sa_expect_idle(&sa, 0);
	teardown(&sa, s);
}
END_TEST

/* Cannot reach an agent at start: fallback at once, reconnect later. */
START_TEST(start_without_agent)
{
	struct sagent sa = { 0 };
	struct wave_host_opts ho;
	struct wave_sched_opts o;
	struct wave_sched *s;
	struct wave_sched_grant g;
	char tmpl[] = "/tmp/wave-sched-host-XXXXXX";

	ck_assert_ptr_nonnull(mkdtemp(tmpl));
	snprintf(sa.dir, sizeof(sa.dir), "%s", tmpl);
	snprintf(sa.uri, sizeof(sa.uri), "shm://%s/agent.sock", sa.dir);
	host_opts(&ho, &o);
	ck_assert_int_eq(wave_sched_create(sa.uri, &o, &s, NULL), 0);
	ck_assert_int_eq(wave_sched_mode(s), WAVE_HOST_FALLBACK);
	ck_assert_int_eq(wave_sched_task_new(s, 1, NULL), 0);
	ck_assert_int_eq(wave_sched_task_new(s, 2, NULL), 0);
	ck_assert_int_eq(wave_sched_next(s, 0, &g), 1);
	ck_assert_uint_eq(g.task, 1);
	sa.s = s;
	sa_listen(&sa);
	sa_accept_start(&sa);
	while (wave_sched_mode(s) != WAVE_HOST_AGENT)
		ck_assert_int_ge(wave_sched_poll(s, WAVE_US(1000)), 0);
	sa_accept_join(&sa);
	sa_expect_setup(&sa);
	sa_expect(&sa, WAVE_SCHED_TASK_NEW, 2);
	teardown(&sa, s);
}
END_TEST

/* A scheduler takes its bound of live tasks (WAVE_SCHED_MAX_TASKS); the
 * next is refused until one dies. */
START_TEST(tasks_bounded)
{
	struct wave_host_opts ho;
	struct wave_sched_opts o;
	struct wave_sched *s;
	char tmpl[] = "/tmp/wave-sched-host-XXXXXX", uri[64];
	const uint64_t max = 1000;

	ck_assert_ptr_nonnull(mkdtemp(tmpl));
	snprintf(uri, sizeof(uri), "shm://%s/agent.sock", tmpl);
	host_opts(&ho, &o);
	ck_assert_int_eq(wave_sched_create(uri, &o, &s, NULL), 0);
	ck_assert_uint_eq(s->max_tasks, WAVE_SCHED_MAX_TASKS);
	s->max_tasks = max; /* the bound's own 2^22 take seconds */
	for (uint64_t id = 1; id <= max; id++)
		ck_assert_int_eq(wave_sched_task_new(s, id, NULL), 0);
	ck_assert_int_eq(wave_sched_task_new(s, max + 1, NULL), -ENOSPC);
	ck_assert_int_eq(wave_sched_task_dead(s, 3), 0);
	ck_assert_int_eq(wave_sched_task_new(s, max + 1, NULL), 0);
	wave_sched_destroy(s);
	ck_assert_int_eq(rmdir(tmpl), 0);
}
END_TEST

/* On fallback, a host that only creates and kills tasks (nothing calls
 * wave_sched_next()) does not pile their queue entries up: a full queue
 * drops the dead ones before it grows, and keeps the others' order. */
START_TEST(fallback_queue_bounded)
{
	struct wave_host_opts ho;
	struct wave_sched_opts o;
	struct wave_sched_grant g;
	struct wave_sched *s;
	char tmpl[] = "/tmp/wave-sched-host-XXXXXX", uri[64];

	ck_assert_ptr_nonnull(mkdtemp(tmpl));
	snprintf(uri, sizeof(uri), "shm://%s/agent.sock", tmpl); /* no agent: fallback */
	host_opts(&ho, &o);
	ck_assert_int_eq(wave_sched_create(uri, &o, &s, NULL), 0);
	ck_assert_int_eq(wave_sched_task_new(s, 1, NULL), 0); /* waits all along */
	for (uint64_t id = 2; id < 100000; id++) {
		ck_assert_int_eq(wave_sched_task_new(s, id, NULL), 0);
		ck_assert_int_eq(wave_sched_task_dead(s, id), 0);
	}
	ck_assert_int_eq(wave_sched_task_new(s, 100000, NULL), 0);
	ck_assert_uint_le(s->q.cap, 128);
	ck_assert_int_eq(wave_sched_next(s, 0, &g), 1);
	ck_assert_uint_eq(g.task, 1);
	ck_assert_int_eq(wave_sched_next(s, 1, &g), 1);
	ck_assert_uint_eq(g.task, 100000);
	wave_sched_destroy(s);
	ck_assert_int_eq(rmdir(tmpl), 0);
}
END_TEST

/*
 * A full channel is backpressure: events the ring cannot take wait in the
 * host's outbox and reach the agent later, every one, in order.
 */
START_TEST(full_channel_loses_nothing)
{
	struct sagent sa = { 0 };
	struct wave_sched *s = connect_sched(&sa);
	/* Four times the default ring (1024 messages), none read meanwhile. */
	const uint64_t n = 4096;

	for (uint64_t id = 1; id <= n; id++)
		ck_assert_int_eq(wave_sched_task_new(s, id, NULL), 0);
	for (uint64_t id = 1; id <= n; id++)
		(void)sa_expect(&sa, WAVE_SCHED_TASK_NEW, id);
	teardown(&sa, s);
}
END_TEST

/* ---- mailboxes ---------------------------------------------------------- */

/* A hostile agent's mailbox: a decision in another CPU's mailbox, or
 * garbage, is treated as a bad message on the ring: counted, the agent
 * dropped, the fallback runs the task. */
START_TEST(bad_mailbox_decision)
{
	static const char *const why[] = { "wrong cpu", "wrong kind", "garbage" };

	for (unsigned k = 0; k < 3 && sa_mbox_mode; k++) {
		struct sagent sa = { 0 };
		struct wave_sched *s = connect_sched(&sa);
		struct wave_sched_host_stats st;
		struct wave_sched_grant g;
		struct wave_sched_msg d = { .type = WAVE_SCHED_RUN, .task = 1, .cpu = 1 };
		struct wave_msg m;

		d.seq = new_task(s, &sa, 1, 1);
		ck_assert_int_eq(wave_sched_msg_encode(&d, NCPU, &m), 0);
		if (k == 2)
			memset(m.payload.u8, 0xa5, sizeof(m.payload.u8));
		/* CPU 0's RUN mailbox, or CPU 1's PRESTAGE one. */
		ck_assert_int_eq(wave_chan_mbox_put(sa.ch, sched_mbox(k == 1, k == 1 ?
					WAVE_SCHED_PRESTAGE : WAVE_SCHED_RUN), &m), 0);
		while (wave_sched_mode(s) != WAVE_HOST_FALLBACK)
			ck_assert_int_ge(wave_sched_poll(s, WAVE_US(1000)), 0);
		ck_assert_int_eq(wave_sched_host_stats(s, &st), 0);
		ck_assert_msg(st.bad_decisions == 1, "%s", why[k]);
		ck_assert_uint_eq(st.committed, 0);
		sa_close(&sa);
		ck_assert_int_eq(wave_sched_next(s, 1, &g), 1);
		ck_assert_uint_eq(g.task, 1);
		ck_assert_int_eq(g.source, WAVE_DECISION_FALLBACK);
		teardown(&sa, s);
	}
}
END_TEST

/* The channel's memory in this process (host and scripted agent map the
 * same memfd here; each case runs in a process of its own), by its name
 * in /proc/self/maps. */
static uint8_t *chan_memory(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	unsigned long lo = 0;
	char line[512];

	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "memfd:wave-chan") && sscanf(line, "%lx-", &lo) == 1)
			break;
	fclose(f);
	ck_assert_uint_ne(lo, 0);
	return (uint8_t *)lo;
}

/* A mailbox whose stamp jumps (two puts the host never saw): the channel
 * fails, as for an impossible ring stamp; the agent is lost and the
 * fallback runs the task. */
START_TEST(mailbox_stamp_jump)
{
	struct sagent sa = { 0 };
	struct wave_sched *s;
	struct wave_sched_host_stats st;
	struct wave_sched_grant g;
	const struct wave_shm_header *h;
	struct wave_shm_slot *mb;
	uint8_t *mem;

	if (!sa_mbox_mode)
		return; /* no mailboxes to spoil */
	s = connect_sched(&sa);
	new_task(s, &sa, 1, 1);
	mem = chan_memory();
	h = (const struct wave_shm_header *)mem;
	ck_assert_uint_eq(h->n_mbox, 2 * NCPU);
	mb = (struct wave_shm_slot *)(mem + h->mbox_off);
	mb[sched_mbox(1, WAVE_SCHED_RUN)].type = WAVE_SCHED_RUN;
	atomic_store(&mb[sched_mbox(1, WAVE_SCHED_RUN)].stamp, 2); /* taken is 0 */
	while (wave_sched_mode(s) != WAVE_HOST_FALLBACK)
		ck_assert_int_ge(wave_sched_poll(s, WAVE_US(1000)), 0);
	ck_assert_int_eq(wave_sched_host_stats(s, &st), 0);
	ck_assert_uint_eq(st.fallbacks, 1);
	ck_assert_uint_eq(st.committed, 0);
	ck_assert_uint_eq(st.mailboxed, 0);
	sa_close(&sa);
	ck_assert_int_eq(wave_sched_next(s, 1, &g), 1);
	ck_assert_uint_eq(g.task, 1);
	ck_assert_int_eq(g.source, WAVE_DECISION_FALLBACK);
	teardown(&sa, s);
}
END_TEST

/*
 * The agent goes with decisions in the mailboxes, none taken yet: each
 * task runs exactly once, whether the host takes a decision before it
 * notices (committed, the outcome undeliverable) or after (the fallback
 * runs it).
 */
START_TEST(agent_gone_with_decisions_in_mailboxes)
{
	struct sagent sa = { 0 };
	struct wave_sched *s = connect_sched(&sa);
	struct wave_sched_grant g;
	uint64_t s1, s2, s3;
	int seen[4] = { 0 }, ran = 0;

	s1 = new_task(s, &sa, 1, 1);
	s2 = new_task(s, &sa, 2, 1);
	s3 = new_task(s, &sa, 3, 1);
	sa_send(&sa, WAVE_SCHED_RUN, 1, s1, 0);
	sa_send(&sa, WAVE_SCHED_PRESTAGE, 2, s2, 0);
	sa_send(&sa, WAVE_SCHED_RUN, 3, s3, 1);
	sa_close(&sa);
	sa.s = NULL;
	while (ran < 3) {
		for (uint32_t cpu = 0; cpu < NCPU; cpu++) {
			int ret = wave_sched_next(s, cpu, &g);

			ck_assert_int_ge(ret, 0);
			if (ret == 0)
				continue;
			ck_assert_uint_ge(g.task, 1);
			ck_assert_uint_le(g.task, 3);
			seen[g.task]++;
			ran++;
			ck_assert_int_eq(wave_sched_task_dead(s, g.task), 0);
		}
		if (ran < 3)
			ck_assert_int_ge(wave_sched_poll(s, WAVE_US(1000)), 0);
	}
	for (int i = 1; i <= 3; i++)
		ck_assert_msg(seen[i] == 1, "task %d ran %d times", i, seen[i]);
	while (wave_sched_mode(s) != WAVE_HOST_FALLBACK)
		ck_assert_int_ge(wave_sched_poll(s, WAVE_US(1000)), 0);
	for (uint32_t cpu = 0; cpu < NCPU; cpu++)
		ck_assert_int_eq(wave_sched_next(s, cpu, &g), 0);
	teardown(&sa, s);
}
END_TEST

/* The agent process of agent_killed_with_decisions_in_mailboxes: it
 * listens (and says so on @ready), welcomes the host, reads its three
 * tasks, decides for all three (RUN 1 and PRESTAGE 2 on CPU 0, RUN 3 on
 * CPU 1), and is killed before the host takes any. */
static void killed_agent(struct sagent *sa, int ready)
{
	uint64_t seq[4];

	sa_listen(sa);
	if (write(ready, "l", 1) != 1)
		_exit(1);
	sa_accept(sa);
	sa_expect_setup(sa);
	for (uint64_t id = 1; id <= 3; id++)
		seq[id] = sa_expect(sa, WAVE_SCHED_TASK_NEW, id);
	sa_send(sa, WAVE_SCHED_RUN, 1, seq[1], 0);
	sa_send(sa, WAVE_SCHED_PRESTAGE, 2, seq[2], 0);
	sa_send(sa, WAVE_SCHED_RUN, 3, seq[3], 1);
	raise(SIGKILL);
}

/* A killed agent's decisions still in the mailboxes (or on the ring)
 * lose nothing: every task runs exactly once, by the fallback or by a
 * decision the host took before it noticed. */
START_TEST(agent_killed_with_decisions_in_mailboxes)
{
	struct sagent sa = { 0 };
	char tmpl[] = "/tmp/wave-sched-host-XXXXXX";
	struct wave_host_opts ho;
	struct wave_sched_opts o;
	struct wave_sched *s = NULL;
	struct wave_sched_grant g;
	int seen[4] = { 0 }, ran = 0, p[2], status;
	pid_t pid;
	char c;

	ck_assert_ptr_nonnull(mkdtemp(tmpl));
	snprintf(sa.dir, sizeof(sa.dir), "%s", tmpl);
	snprintf(sa.uri, sizeof(sa.uri), "shm://%s/agent.sock", sa.dir);
	ck_assert_int_eq(pipe(p), 0);
	pid = test_fork();
	if (pid == 0) {
		close(p[0]);
		killed_agent(&sa, p[1]);
		_exit(1);
	}
	close(p[1]);
	ck_assert_int_eq(read(p[0], &c, 1), 1);
	close(p[0]);
	host_opts(&ho, &o);
	ck_assert_int_eq(wave_sched_create(sa.uri, &o, &s, NULL), 0);
	ck_assert_int_eq(wave_sched_mode(s), WAVE_HOST_AGENT);
	for (uint64_t id = 1; id <= 3; id++)
		ck_assert_int_eq(wave_sched_task_new(s, id, NULL), 0);
	ck_assert_int_eq(wave_sched_flush(s), 0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	while (ran < 3) {
		for (uint32_t cpu = 0; cpu < NCPU; cpu++) {
			int ret = wave_sched_next(s, cpu, &g);

			ck_assert_int_ge(ret, 0);
			if (ret == 0)
				continue;
			ck_assert(g.task >= 1 && g.task <= 3);
			seen[g.task]++;
			ran++;
			ck_assert_int_eq(wave_sched_task_dead(s, g.task), 0);
		}
		if (ran < 3)
			ck_assert_int_ge(wave_sched_poll(s, WAVE_US(1000)), 0);
	}
	for (int i = 1; i <= 3; i++)
		ck_assert_msg(seen[i] == 1, "task %d ran %d times", i, seen[i]);
	while (wave_sched_mode(s) != WAVE_HOST_FALLBACK)
		ck_assert_int_ge(wave_sched_poll(s, WAVE_US(1000)), 0);
	for (uint32_t cpu = 0; cpu < NCPU; cpu++)
		ck_assert_int_eq(wave_sched_next(s, cpu, &g), 0);
	teardown(&sa, s);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("sched_host");
	TCase *tc = tcase_create("host");

	tcase_add_test(tc, commit_and_every_abort);
	tcase_add_test(tc, run_then_prestage);
	tcase_add_test(tc, preemption);
	tcase_add_test(tc, bad_input);
	tcase_add_test(tc, agent_sends_host_message);
	tcase_add_test(tc, local_fifo);
	tcase_add_test(tc, full_channel_loses_nothing);
	tcase_add_test(tc, fallback_and_resync);
	tcase_add_test(tc, start_without_agent);
	tcase_add_test(tc, tasks_bounded);
	tcase_add_test(tc, fallback_queue_bounded);
	tcase_add_test(tc, bad_mailbox_decision);
	tcase_add_test(tc, mailbox_stamp_jump);
	tcase_add_test(tc, agent_gone_with_decisions_in_mailboxes);
	tcase_add_test(tc, agent_killed_with_decisions_in_mailboxes);
	suite_add_tcase(s, tc);
	return s;
}

int main(int argc, char **argv)
{
	sa_mbox_mode = !(argc > 1 && strcmp(argv[1], "ring") == 0);
	return wave_check_run(suite());
}
