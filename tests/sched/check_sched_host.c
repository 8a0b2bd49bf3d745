/* SPDX-License-Identifier: MIT */
/*
 * The host side of the sched domain (include/wave/sched.h), against a
 * scripted agent: a real channel and session handshake, whose decisions the
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
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>

#include <wave/wave.h>

#include "check_run.h"
#include "chan/shm_layout.h"
#include "domains/sched/sched.h"
#include "domains/sched/sched_impl.h"
#include "session/proto.h"

#define NCPU 2

/* RUN and PRESTAGE go to the CPUs' mailboxes (else the ring). */
static bool mbox_mode = true;

/* The agent's end: a listener and the one channel of the host. */
struct sagent {
	char dir[64];
	char uri[128];
	struct wave_chan_listener *l;
	struct wave_chan *ch;
	pthread_t thr;
	struct wave_sched *s; /* polled while the agent waits for messages */
};

static void sa_listen(struct sagent *sa)
{
	ck_assert_int_eq(wave_chan_listen(sa->uri, NULL, &sa->l), 0);
}

/* Accepts the host and welcomes it (on a thread: the host blocks meanwhile). */
static void *sa_accept(void *arg)
{
	struct sagent *sa = arg;
	struct wave_welcome w = { WAVE_PROTO_MAJOR, WAVE_PROTO_MINOR,
				  WAVE_HOST_DOMAIN(WAVE_DOMAIN_SCHED), 50, 60000, 7 };
	struct wave_hello he;
	struct wave_msg m;
	int n;

	ck_assert_int_eq(wave_chan_accept(sa->l, WAVE_MS(30000), &sa->ch), 0);
	/* No second host: a reconnection attempt must fail at once, not wait
	 * for an accept that never comes. */
	wave_chan_listener_close(sa->l);
	sa->l = NULL;
	while ((n = wave_chan_recv_burst(sa->ch, &m, 1)) == 0)
		wave_chan_wait(sa->ch, 1000000);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(wave_proto_hello_decode(&m, &he), 0);
	ck_assert_uint_eq(he.domains, WAVE_HOST_DOMAIN(WAVE_DOMAIN_SCHED));
	wave_proto_welcome(&w, &m);
	ck_assert_int_eq(wave_chan_send_burst(sa->ch, &m, 1), 1);
	return NULL;
}

static void sa_accept_start(struct sagent *sa)
{
	ck_assert_int_eq(pthread_create(&sa->thr, NULL, sa_accept, sa), 0);
}

static void sa_accept_join(struct sagent *sa)
{
	ck_assert_int_eq(pthread_join(sa->thr, NULL), 0);
}

/* The next message from the host that is not a heartbeat. */
static void sa_recv_raw(struct sagent *sa, struct wave_msg *m)
{
	int n;

	for (;;) {
		if (sa->s)
			ck_assert_int_ge(wave_sched_flush(sa->s), -EAGAIN);
		n = wave_chan_recv_burst(sa->ch, m, 1);
		ck_assert_int_ge(n, 0);
		if (n == 1 && m->type == WAVE_CTL_HEARTBEAT)
			continue;
		if (n == 1)
			return;
		if (sa->s)
			ck_assert_int_ge(wave_sched_poll(sa->s, 0), 0);
		usleep(100);
	}
}

static void sa_recv(struct sagent *sa, struct wave_sched_msg *d)
{
	struct wave_msg m;
	int ret;

	sa_recv_raw(sa, &m);
	ret = wave_sched_msg_decode(&m, NCPU, d);
	ck_assert_msg(ret == 0, "type 0x%04x: %s", m.type, wave_strerror(ret));
}

/* Expects event @type about @task; returns its sequence number. */
static uint64_t sa_expect(struct sagent *sa, uint16_t type, uint64_t task)
{
	struct wave_sched_msg d;

	sa_recv(sa, &d);
	ck_assert_msg(d.type == type && d.task == task, "got %s task %llu, expected %s task %llu",
		      wave_sched_msg_type_name(d.type), (unsigned long long)d.task,
		      wave_sched_msg_type_name(type), (unsigned long long)task);
	return d.seq;
}

static void sa_expect_outcome(struct sagent *sa, uint16_t decision, uint64_t task, uint64_t seq,
			      uint32_t cpu, unsigned result)
{
	struct wave_sched_msg d;

	sa_recv(sa, &d);
	ck_assert_str_eq(wave_sched_msg_type_name(d.type), "outcome");
	ck_assert_uint_eq(d.decision, decision);
	ck_assert_uint_eq(d.task, task);
	ck_assert_uint_eq(d.seq, seq);
	ck_assert_uint_eq(d.cpu, cpu);
	ck_assert_str_eq(wave_sched_result_name(d.result), wave_sched_result_name(result));
}

static void sa_expect_setup(struct sagent *sa)
{
	struct wave_msg m;
	uint32_t n = 0;

	sa_recv_raw(sa, &m);
	ck_assert_int_eq(sched_setup_decode(&m, &n), 0);
	ck_assert_uint_eq(n, NCPU);
}

static void sa_send(struct sagent *sa, uint16_t type, uint64_t task, uint64_t seq, uint32_t cpu)
{
	struct wave_sched_msg d = { .type = type, .task = task, .seq = seq, .cpu = cpu };
	struct wave_msg m;

	ck_assert_int_eq(wave_sched_msg_encode(&d, NCPU, &m), 0);
	if (mbox_mode && (type == WAVE_SCHED_RUN || type == WAVE_SCHED_PRESTAGE))
		ck_assert_int_eq(wave_chan_mbox_put(sa->ch, sched_mbox(cpu, type), &m), 0);
	else
		ck_assert_int_eq(wave_chan_send_burst(sa->ch, &m, 1), 1);
}

static void sa_close(struct sagent *sa)
{
	if (sa->ch)
		wave_chan_close(sa->ch);
	sa->ch = NULL;
	if (sa->l)
		wave_chan_listener_close(sa->l);
	sa->l = NULL;
}

/* Sends a decision and lets the host stage it. */
static void sa_stage(struct sagent *sa, uint16_t type, uint64_t task, uint64_t seq, uint32_t cpu)
{
	sa_send(sa, type, task, seq, cpu);
	while (wave_sched_poll(sa->s, WAVE_US(1000)) == 0)
		;
}

static void host_opts(struct wave_host_opts *ho, struct wave_sched_opts *o)
{
	wave_host_opts_init(ho);
	/* The scripted agent sends no heartbeats: only a closed channel or a
	 * bad message makes the host lose it. */
	ho->heartbeat_timeout_ms = 600000;
	ho->connect_timeout_ms = 30000;
	ho->reconnect_min_ms = 1;
	ho->reconnect_max_ms = 2;
	wave_sched_opts_init(o);
	o->n_cpus = NCPU;
	o->batch = 1;
	o->host = ho;
	o->no_mailboxes = !mbox_mode;
}

static struct wave_sched *connect_sched(struct sagent *sa)
{
	struct wave_host_opts ho;
	struct wave_sched_opts o;
	struct wave_sched *s = NULL;
	struct wave_error err;
	char tmpl[] = "/tmp/wave-sched-host-XXXXXX";

	ck_assert_ptr_nonnull(mkdtemp(tmpl));
	snprintf(sa->dir, sizeof(sa->dir), "%s", tmpl);
	snprintf(sa->uri, sizeof(sa->uri), "shm://%s/agent.sock", sa->dir);
	sa_listen(sa);
	sa_accept_start(sa);
	host_opts(&ho, &o);
	ck_assert_int_eq(wave_sched_create(sa->uri, &o, &s, &err), 0);
	sa_accept_join(sa);
	sa->s = s;
	ck_assert_int_eq(wave_sched_mode(s), WAVE_HOST_AGENT);
	ck_assert_int_eq(wave_chan_mailboxes(sa->ch), mbox_mode ? 2 * NCPU : 0);
	sa_expect_setup(sa);
	return s;
}

static void teardown(struct sagent *sa, struct wave_sched *s)
{
	char path[200];

	wave_sched_destroy(s);
	if (sa->ch || sa->l)
		sa_close(sa);
	snprintf(path, sizeof(path), "%s/agent.sock", sa->dir);
	unlink(path);
	rmdir(sa->dir);
}

static uint64_t new_task(struct wave_sched *s, struct sagent *sa, uint64_t id, int runnable)
{
	struct wave_sched_task_opts t;

	wave_sched_task_opts_init(&t);
	t.runnable = runnable;
	t.arg = (void *)(uintptr_t)(id * 10);
	ck_assert_int_eq(wave_sched_task_new(s, id, &t), 0);
	return sa_expect(sa, WAVE_SCHED_TASK_NEW, id);
}

/* Runs @id on @cpu through a committed RUN; returns its sequence number. */
static uint64_t run_on(struct wave_sched *s, struct sagent *sa, uint64_t id, uint64_t seq,
		       uint32_t cpu)
{
	struct wave_sched_grant g;

	sa_stage(sa, WAVE_SCHED_RUN, id, seq, cpu);
	ck_assert_int_eq(wave_sched_next(s, cpu, &g), 1);
	ck_assert_uint_eq(g.task, id);
	ck_assert_uint_eq(g.seq, seq);
	ck_assert_ptr_eq(g.arg, (void *)(uintptr_t)(id * 10));
	ck_assert_int_eq(g.source, WAVE_DECISION_AGENT);
	sa_expect_outcome(sa, WAVE_SCHED_RUN, id, seq, cpu, WAVE_SCHED_COMMITTED);
	return seq;
}

static void sa_expect_idle(struct sagent *sa, uint32_t cpu)
{
	struct wave_sched_msg d;

	sa_recv(sa, &d);
	ck_assert_str_eq(wave_sched_msg_type_name(d.type), "cpu_idle");
	ck_assert_uint_eq(d.cpu, cpu);
}

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
	ck_assert_uint_eq(st.mailboxed, mbox_mode ? 8 : 0);
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

/* ---- idle waiting --------------------------------------------------------- */

/* Voluntary context switches of the calling thread: each sleep that ends
 * is one. A waiter that naps in short slices makes thousands a second. */
static long thread_switches(void)
{
	struct rusage ru;

	ck_assert_int_eq(getrusage(RUSAGE_THREAD, &ru), 0);
	return ru.ru_nvcsw;
}

/* Waits 300 ms with nothing to do and returns how often the thread woke. */
static long idle_wakeups(struct wave_sched *s)
{
	long before = thread_switches();

	ck_assert_int_eq(wave_sched_wait(s, 0, WAVE_MS(300)), 0);
	return thread_switches() - before;
}

/* An idle CPU waiting for work sleeps until there is some: on the local
 * FIFO (no agent) and under an agent (asleep on the channel), it wakes a
 * handful of times in 300 ms (the session's heartbeats), not thousands. */
START_TEST(idle_wait_sleeps)
{
	struct sagent sa = { 0 };
	struct wave_sched *s;
	long n;

	ck_assert_int_eq(wave_sched_create(NULL, NULL, &s, NULL), 0);
	n = idle_wakeups(s);
	ck_assert_msg(n < 30, "an idle wait without an agent woke %ld times", n);
	wave_sched_destroy(s);

	s = connect_sched(&sa);
	n = idle_wakeups(s);
	ck_assert_msg(n < 30, "an idle wait under an agent woke %ld times", n);
	teardown(&sa, s);
}
END_TEST

struct waiter {
	struct wave_sched *s;
	atomic_int started;
	int ret;
};

static void *wait_main(void *arg)
{
	struct waiter *w = arg;

	atomic_store(&w->started, 1);
	w->ret = wave_sched_wait(w->s, 0, WAVE_MS(60000));
	return NULL;
}

/* A sleeping waiter is woken by the work it waits for: a task queued by
 * another thread (local FIFO), a decision staged from the agent. */
START_TEST(idle_wait_woken_by_work)
{
	struct sagent sa = { 0 };
	struct waiter w = { 0 };
	pthread_t thr;
	struct timespec t0, t1;
	uint64_t seq;

	ck_assert_int_eq(wave_sched_create(NULL, NULL, &w.s, NULL), 0);
	ck_assert_int_eq(pthread_create(&thr, NULL, wait_main, &w), 0);
	while (!atomic_load(&w.started))
		sched_yield();
	usleep(20000); /* most likely asleep by now; correct either way */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(wave_sched_task_new(w.s, 1, NULL), 0);
	ck_assert_int_eq(pthread_join(thr, NULL), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert_int_eq(w.ret, 1);
	/* Far below the 60 s timeout: it was woken, not timed out. */
	ck_assert_int_lt(t1.tv_sec - t0.tv_sec, 30);
	wave_sched_destroy(w.s);

	w.s = connect_sched(&sa);
	seq = new_task(w.s, &sa, 1, 1);
	atomic_store(&w.started, 0);
	ck_assert_int_eq(pthread_create(&thr, NULL, wait_main, &w), 0);
	while (!atomic_load(&w.started))
		sched_yield();
	usleep(20000);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	sa_send(&sa, WAVE_SCHED_RUN, 1, seq, 0);
	ck_assert_int_eq(pthread_join(thr, NULL), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert_int_eq(w.ret, 1);
	ck_assert_int_lt(t1.tv_sec - t0.tv_sec, 30);
	teardown(&sa, w.s);
}
END_TEST

/* ---- managed threads ---------------------------------------------------- */

struct mt {
	struct wave_sched *s;
	uint64_t id;
	unsigned rounds;
	atomic_int *on_cpu, *max_on_cpu, *done;
	unsigned n_cpus;
};

static void mt_enter(struct mt *m)
{
	int now = atomic_fetch_add(m->on_cpu, 1) + 1, max = atomic_load(m->max_on_cpu);

	while (now > max && !atomic_compare_exchange_weak(m->max_on_cpu, &max, now))
		;
	for (volatile int k = 0; k < 1000; k++)
		;
	atomic_fetch_sub(m->on_cpu, 1);
}

static void *mt_main(void *arg)
{
	struct mt *m = arg;
	struct wave_sched_thread *t;

	ck_assert_int_eq(wave_sched_thread_attach(m->s, m->id, 0, &t), 0);
	ck_assert_int_lt(wave_sched_thread_cpu(t), (int)m->n_cpus);
	for (unsigned r = 0; r < m->rounds; r++) {
		mt_enter(m);
		ck_assert_int_ge(wave_sched_thread_check(t), 0);
		ck_assert_int_eq(wave_sched_thread_yield(t), 0);
	}
	/* Off the scheduler while blocked, back after. */
	ck_assert_int_eq(wave_sched_thread_block(t), 0);
	ck_assert_int_eq(wave_sched_thread_block(t), -EPERM);
	ck_assert_int_eq(wave_sched_thread_unblock(t), 0);
	ck_assert_int_eq(wave_sched_thread_unblock(t), -EPERM);
	mt_enter(m);
	wave_sched_thread_detach(t);
	atomic_fetch_add(m->done, 1);
	return NULL;
}

/* Runs @n threads (at most 8) of @fn over @s's one CPU, @rounds each, and
 * checks that all finished, never two on the CPU at once. */
static void run_one_at_a_time(struct wave_sched *s, unsigned n, unsigned rounds,
			      void *(*fn)(void *))
{
	pthread_t thr[8];
	struct mt m[8];
	atomic_int on_cpu = 0, max_on_cpu = 0, done = 0;

	ck_assert_uint_le(n, 8);
	for (unsigned i = 0; i < n; i++) {
		m[i] = (struct mt){ s, i + 1, rounds, &on_cpu, &max_on_cpu, &done, 1 };
		ck_assert_int_eq(pthread_create(&thr[i], NULL, fn, &m[i]), 0);
	}
	for (unsigned i = 0; i < n; i++)
		ck_assert_int_eq(pthread_join(thr[i], NULL), 0);
	ck_assert_int_eq(atomic_load(&done), (int)n);
	ck_assert_int_eq(atomic_load(&max_on_cpu), 1);
}

/* 8 threads over 1 CPU on the local FIFO: one at a time, all finish. */
START_TEST(managed_threads_local)
{
	enum { N = 8 };
	struct wave_sched_opts o;
	struct wave_sched_host_stats st;
	struct wave_sched *s;
	struct wave_sched_thread *t;

	wave_sched_opts_init(&o);
	o.n_cpus = 1;
	ck_assert_int_eq(wave_sched_create(NULL, &o, &s, NULL), 0);
	ck_assert_int_eq(wave_sched_thread_attach(NULL, 1, 0, &t), -EINVAL);
	ck_assert_int_eq(wave_sched_thread_attach(s, 1, -1, &t), -EINVAL);
	ck_assert_int_eq(wave_sched_thread_attach(s, 0, 0, &t), -EINVAL);
	run_one_at_a_time(s, N, 50, mt_main);
	ck_assert_int_eq(wave_sched_host_stats(s, &st), 0);
	ck_assert_uint_eq(st.fallback_runs, N * 52);
	ck_assert_uint_eq(st.tasks, 0);
	wave_sched_destroy(s);
}
END_TEST

/* One thread's life after another's, each a new task: attaches while
 * others detach. */
static void *come_and_go_main(void *arg)
{
	struct mt *m = arg;
	struct wave_sched_thread *t;

	for (unsigned r = 0; r < m->rounds; r++) {
		ck_assert_int_eq(wave_sched_thread_attach(m->s, m->id * 1000 + r, 0, &t), 0);
		mt_enter(m);
		wave_sched_thread_detach(t);
	}
	atomic_fetch_add(m->done, 1);
	return NULL;
}

/* A thread attaching while another detaches is let in: the count of
 * attached threads (which keeps plain tasks out) once lagged the task
 * table between a detach's two steps, and the attach was refused. */
START_TEST(managed_threads_come_and_go)
{
	struct wave_sched_opts o;
	struct wave_sched_host_stats st;
	struct wave_sched *s;

	wave_sched_opts_init(&o);
	o.n_cpus = 1;
	ck_assert_int_eq(wave_sched_create(NULL, &o, &s, NULL), 0);
	run_one_at_a_time(s, 4, 300, come_and_go_main);
	ck_assert_int_eq(wave_sched_host_stats(s, &st), 0);
	ck_assert_uint_eq(st.tasks, 0);
	/* No thread left: a plain task may come. */
	ck_assert_int_eq(wave_sched_task_new(s, 1, NULL), 0);
	wave_sched_destroy(s);
}
END_TEST

/* A scheduler gates managed threads or serves plain tasks, never both: a
 * grant's argument is taken for a thread only where it is one (a plain
 * task's argument was once written through as a thread). */
static void *attach_main(void *arg)
{
	struct wave_sched_thread *t;

	ck_assert_int_eq(wave_sched_thread_attach(arg, 7, 0, &t), 0);
	/* The one CPU is this thread's: a plain task cannot join now. */
	ck_assert_int_eq(wave_sched_task_new(arg, 8, NULL), -EINVAL);
	wave_sched_thread_detach(t);
	return NULL;
}

START_TEST(managed_and_plain_tasks_exclusive)
{
	struct wave_sched_task_opts to;
	struct wave_sched *s;
	struct wave_sched_thread *t;
	struct wave_sched_grant g;
	pthread_t thr;
	int x = 0;

	ck_assert_int_eq(wave_sched_create(NULL, NULL, &s, NULL), 0);
	wave_sched_task_opts_init(&to);
	to.arg = &x;
	ck_assert_int_eq(wave_sched_task_new(s, 1, &to), 0);
	ck_assert_int_eq(wave_sched_thread_attach(s, 2, 0, &t), -EINVAL);
	/* The plain task runs as a plain task; its argument is untouched. */
	ck_assert_int_eq(wave_sched_next(s, 0, &g), 1);
	ck_assert_ptr_eq(g.arg, &x);
	ck_assert_int_eq(wave_sched_task_dead(s, 1), 0);
	ck_assert_int_eq(x, 0);
	/* With no plain task left, threads may attach. */
	ck_assert_int_eq(pthread_create(&thr, NULL, attach_main, s), 0);
	ck_assert_int_eq(pthread_join(thr, NULL), 0);
	ck_assert_int_eq(wave_sched_task_new(s, 9, NULL), 0);
	wave_sched_destroy(s);
}
END_TEST

static atomic_int signals;

static void on_signal(int sig)
{
	(void)sig;
	atomic_fetch_add(&signals, 1);
}

struct sigthread {
	struct wave_sched *s;
	atomic_int attached;
};

/* Sleeps until preempted: the signal cuts the sleep short. */
static void *sig_main(void *arg)
{
	struct sigthread *st = arg;
	struct wave_sched_thread *t;
	const struct timespec nap = { 0, 100000000 };

	ck_assert_int_eq(wave_sched_thread_attach(st->s, 1, SIGUSR1, &t), 0);
	atomic_store(&st->attached, 1);
	while (wave_sched_thread_check(t) == 0)
		nanosleep(&nap, NULL);
	wave_sched_thread_detach(t);
	return NULL;
}

/* The next message that is not a CPU_IDLE. */
static void sa_recv_busy(struct sagent *sa, struct wave_sched_msg *d)
{
	do
		sa_recv(sa, d);
	while (d->type == WAVE_SCHED_CPU_IDLE);
}

/* A managed thread granted by the agent's RUN, preempted by its PREEMPT
 * with the application's signal, run again, detached. */
START_TEST(managed_thread_signal)
{
	struct sagent sa = { 0 };
	struct wave_sched *s = connect_sched(&sa);
	struct sigthread st = { s, 0 };
	struct sigaction act;
	struct wave_sched_msg d;
	pthread_t thr;
	uint64_t seq;

	memset(&act, 0, sizeof(act));
	act.sa_handler = on_signal;
	ck_assert_int_eq(sigaction(SIGUSR1, &act, NULL), 0);
	ck_assert_int_eq(pthread_create(&thr, NULL, sig_main, &st), 0);
	sa_recv_busy(&sa, &d);
	ck_assert_uint_eq(d.type, WAVE_SCHED_TASK_NEW);
	seq = d.seq;
	sa_send(&sa, WAVE_SCHED_RUN, 1, seq, 0);
	sa_recv_busy(&sa, &d);
	ck_assert_uint_eq(d.type, WAVE_SCHED_OUTCOME);
	ck_assert_uint_eq(d.result, WAVE_SCHED_COMMITTED);
	while (!atomic_load(&st.attached))
		usleep(100);
	sa_send(&sa, WAVE_SCHED_PREEMPT, 1, seq, 0);
	sa_recv_busy(&sa, &d);
	ck_assert_uint_eq(d.type, WAVE_SCHED_TASK_PREEMPTED);
	ck_assert_int_eq(atomic_load(&signals), 1);
	sa_send(&sa, WAVE_SCHED_RUN, 1, d.seq, 0);
	sa_recv_busy(&sa, &d);
	ck_assert_uint_eq(d.type, WAVE_SCHED_OUTCOME);
	ck_assert_uint_eq(d.result, WAVE_SCHED_COMMITTED);
	sa_recv_busy(&sa, &d);
	ck_assert_uint_eq(d.type, WAVE_SCHED_TASK_DEAD);
	ck_assert_int_eq(pthread_join(thr, NULL), 0);
	teardown(&sa, s);
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

	for (unsigned k = 0; k < 3 && mbox_mode; k++) {
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

	if (!mbox_mode)
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
	pid = fork();
	ck_assert_int_ge(pid, 0);
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
	tcase_add_test(tc, idle_wait_sleeps);
	tcase_add_test(tc, idle_wait_woken_by_work);
	tcase_add_test(tc, managed_threads_local);
	tcase_add_test(tc, managed_threads_come_and_go);
	tcase_add_test(tc, managed_and_plain_tasks_exclusive);
	tcase_add_test(tc, managed_thread_signal);
	tcase_add_test(tc, bad_mailbox_decision);
	tcase_add_test(tc, mailbox_stamp_jump);
	tcase_add_test(tc, agent_gone_with_decisions_in_mailboxes);
	tcase_add_test(tc, agent_killed_with_decisions_in_mailboxes);
	suite_add_tcase(s, tc);
	return s;
}

int main(int argc, char **argv)
{
	mbox_mode = !(argc > 1 && strcmp(argv[1], "ring") == 0);
	return wave_check_run(suite());
}
