/* SPDX-License-Identifier: MIT */
/* The scripted sched agent of the host-side tests (sagent.h). */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <wave/wave.h>

#include "domains/sched/sched.h"
#include "domains/sched/sched_impl.h"
#include "sagent.h"
#include "script_welcome.h"
#include "session/proto.h"

bool sa_mbox_mode = true;

void sa_listen(struct sagent *sa)
{
	ck_assert_int_eq(wave_chan_listen(sa->uri, NULL, &sa->l), 0);
}

/* Accepts the host and welcomes it (on a thread: the host blocks meanwhile). */
void *sa_accept(void *arg)
{
	struct sagent *sa = arg;

	ck_assert_int_eq(wave_chan_accept(sa->l, WAVE_MS(30000), &sa->ch), 0);
	/* No second host: a reconnection attempt must fail at once, not wait
	 * for an accept that never comes. */
	wave_chan_listener_close(sa->l);
	sa->l = NULL;
	script_welcome(sa->ch, WAVE_DOMAIN_SCHED, 60000);
	return NULL;
}

void sa_accept_start(struct sagent *sa)
{
	ck_assert_int_eq(pthread_create(&sa->thr, NULL, sa_accept, sa), 0);
}

void sa_accept_join(struct sagent *sa)
{
	ck_assert_int_eq(pthread_join(sa->thr, NULL), 0);
}

/* The next message from the host that is not a heartbeat. */
void sa_recv_raw(struct sagent *sa, struct wave_msg *m)
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

void sa_recv(struct sagent *sa, struct wave_sched_msg *d)
{
	struct wave_msg m;
	int ret;

	sa_recv_raw(sa, &m);
	ret = wave_sched_msg_decode(&m, NCPU, d);
	ck_assert_msg(ret == 0, "type 0x%04x: %s", m.type, wave_strerror(ret));
}

/* Expects event @type about @task; returns its sequence number. */
uint64_t sa_expect(struct sagent *sa, uint16_t type, uint64_t task)
{
	struct wave_sched_msg d;

	sa_recv(sa, &d);
	ck_assert_msg(d.type == type && d.task == task, "got %s task %llu, expected %s task %llu",
		      wave_sched_msg_type_name(d.type), (unsigned long long)d.task,
		      wave_sched_msg_type_name(type), (unsigned long long)task);
	return d.seq;
}

void sa_expect_outcome(struct sagent *sa, uint16_t decision, uint64_t task, uint64_t seq,
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

void sa_expect_setup(struct sagent *sa)
{
	struct wave_msg m;
	uint32_t n = 0;

	sa_recv_raw(sa, &m);
	ck_assert_int_eq(sched_setup_decode(&m, &n), 0);
	ck_assert_uint_eq(n, NCPU);
}

void sa_send(struct sagent *sa, uint16_t type, uint64_t task, uint64_t seq, uint32_t cpu)
{
	struct wave_sched_msg d = { .type = type, .task = task, .seq = seq, .cpu = cpu };
	struct wave_msg m;

	ck_assert_int_eq(wave_sched_msg_encode(&d, NCPU, &m), 0);
	if (sa_mbox_mode && (type == WAVE_SCHED_RUN || type == WAVE_SCHED_PRESTAGE))
		ck_assert_int_eq(wave_chan_mbox_put(sa->ch, sched_mbox(cpu, type), &m), 0);
	else
		ck_assert_int_eq(wave_chan_send_burst(sa->ch, &m, 1), 1);
}

void sa_close(struct sagent *sa)
{
	if (sa->ch)
		wave_chan_close(sa->ch);
	sa->ch = NULL;
	if (sa->l)
		wave_chan_listener_close(sa->l);
	sa->l = NULL;
}

/* Sends a decision and lets the host stage it. */
void sa_stage(struct sagent *sa, uint16_t type, uint64_t task, uint64_t seq, uint32_t cpu)
{
	sa_send(sa, type, task, seq, cpu);
	while (wave_sched_poll(sa->s, WAVE_US(1000)) == 0)
		;
}

void host_opts(struct wave_host_opts *ho, struct wave_sched_opts *o)
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
	o->no_mailboxes = !sa_mbox_mode;
}

struct wave_sched *connect_sched(struct sagent *sa)
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
	ck_assert_int_eq(wave_chan_mailboxes(sa->ch), sa_mbox_mode ? 2 * NCPU : 0);
	sa_expect_setup(sa);
	return s;
}

void teardown(struct sagent *sa, struct wave_sched *s)
{
	char path[200];

	wave_sched_destroy(s);
	if (sa->ch || sa->l)
		sa_close(sa);
	snprintf(path, sizeof(path), "%s/agent.sock", sa->dir);
	unlink(path);
	rmdir(sa->dir);
}

uint64_t new_task(struct wave_sched *s, struct sagent *sa, uint64_t id, int runnable)
{
	struct wave_sched_task_opts t;

	wave_sched_task_opts_init(&t);
	t.runnable = runnable;
	t.arg = (void *)(uintptr_t)(id * 10);
	ck_assert_int_eq(wave_sched_task_new(s, id, &t), 0);
	return sa_expect(sa, WAVE_SCHED_TASK_NEW, id);
}

/* Runs @id on @cpu through a committed RUN; returns its sequence number. */
uint64_t run_on(struct wave_sched *s, struct sagent *sa, uint64_t id, uint64_t seq, uint32_t cpu)
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

void sa_expect_idle(struct sagent *sa, uint32_t cpu)
{
	struct wave_sched_msg d;

	sa_recv(sa, &d);
	ck_assert_str_eq(wave_sched_msg_type_name(d.type), "cpu_idle");
	ck_assert_uint_eq(d.cpu, cpu);
}
