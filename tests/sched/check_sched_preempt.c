/* SPDX-License-Identifier: MIT */
/*
 * Managed threads preempted by the agent's time slice (include/wave/sched.h):
 *
 *  - a lone CPU-bound managed thread, with nothing else polling the agent,
 *    sends the CPU's ticks and receives the PREEMPT from its own checks (a
 *    scripted agent answers the first TICK), and reports when the PREEMPT
 *    left the agent, was staged and stopped it;
 *  - two CPU-bound managed threads that never yield share one CPU under a
 *    real agent running sched_shinjuku, and both make progress: only the
 *    policy's preemptions can hand the CPU over.
 *
 * Nothing depends on timing: the tests wait for messages or progress, and
 * the deadlines only turn a hang into a clear failure.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include <wave/wave.h>

#include "check_run.h"
#include "script_welcome.h"
#include "core/core.h"
#include "domains/sched/sched.h"
#include "session/proto.h"

/* How long a test waits for what it expects before it fails. */
#define HANG_NS 60000000000ull

static void make_dir(char *dir, size_t dlen, char *uri, size_t ulen)
{
	char tmpl[] = "/tmp/wave-sched-preempt-XXXXXX";

	ck_assert_ptr_nonnull(mkdtemp(tmpl));
	snprintf(dir, dlen, "%s", tmpl);
	snprintf(uri, ulen, "shm://%s/agent.sock", dir);
}

static void remove_dir(const char *dir)
{
	char path[200];

	snprintf(path, sizeof(path), "%s/agent.sock", dir);
	unlink(path);
	rmdir(dir);
}

/* ---- a lone thread keeps the slice's clock itself ------------------------- */

/* The agent's end, scripted: it never polls the host's scheduler, so the
 * host's only progress is what its threads make. */
struct sagent {
	char dir[64], uri[128];
	struct wave_chan_listener *l;
	struct wave_chan *ch;
	pthread_t thr;
};

static void *sa_accept(void *arg)
{
	struct sagent *sa = arg;

	ck_assert_int_eq(wave_chan_accept(sa->l, WAVE_MS(30000), &sa->ch), 0);
	script_welcome(sa->ch, WAVE_DOMAIN_SCHED, 600000);
	return NULL;
}

/* The next sched message from the host, heartbeats skipped; fails after
 * HANG_NS. */
static void sa_recv(struct sagent *sa, struct wave_msg *m)
{
	uint64_t deadline = wave_now_ns() + HANG_NS;
	int n;

	for (;;) {
		n = wave_chan_recv_burst(sa->ch, m, 1);
		ck_assert_int_ge(n, 0);
		if (n == 1 && m->type != WAVE_CTL_HEARTBEAT)
			return;
		ck_assert_msg(wave_now_ns() < deadline, "the host sent nothing more");
		if (n == 0)
			wave_chan_wait(sa->ch, WAVE_MS(1));
	}
}

/* The next event of @type (others skipped, every outcome committed). */
static void sa_expect(struct sagent *sa, uint16_t type, struct wave_sched_msg *d)
{
	struct wave_msg m;

	for (;;) {
		sa_recv(sa, &m);
		ck_assert_int_eq(wave_sched_msg_decode(&m, 1, d), 0);
		if (d->type == WAVE_SCHED_OUTCOME)
			ck_assert_uint_eq(d->result, WAVE_SCHED_COMMITTED);
		if (d->type == type)
			return;
		/* Only the events of this script may come. */
		ck_assert_msg(d->type == WAVE_SCHED_OUTCOME || d->type == WAVE_SCHED_CPU_IDLE ||
				      d->type == WAVE_SCHED_TICK,
			      "unexpected %s", wave_sched_msg_type_name(d->type));
	}
}

static void sa_send(struct sagent *sa, uint16_t type, uint64_t task, uint64_t seq)
{
	struct wave_sched_msg d = { .type = type, .task = task, .seq = seq, .cpu = 0 };
	struct wave_msg m;

	ck_assert_int_eq(wave_sched_msg_encode(&d, 1, &m), 0);
	ck_assert_int_eq(wave_chan_send_burst(sa->ch, &m, 1), 1);
}

struct lone {
	struct wave_sched *s;
	atomic_int preempted;
	struct wave_sched_preemption p;
};

/* Spins and checks until preempted, runs again, reports, leaves. */
static void *lone_main(void *arg)
{
	struct lone *l = arg;
	struct wave_sched_thread *t;
	int ret;

	ck_assert_int_eq(wave_sched_thread_attach(l->s, 1, 0, &t), 0);
	ck_assert_int_eq(wave_sched_thread_preemption(t, &l->p), -ENOENT);
	while ((ret = wave_sched_thread_check(t)) == 0)
		for (volatile int k = 0; k < 1000; k++)
			;
	ck_assert_int_eq(ret, 1);
	atomic_store(&l->preempted, 1);
	ck_assert_int_eq(wave_sched_thread_preemption(t, &l->p), 0);
	ck_assert_int_eq(wave_sched_thread_preemption(NULL, &l->p), -EINVAL);
	ck_assert_int_eq(wave_sched_thread_preemption(t, NULL), -EINVAL);
	wave_sched_thread_detach(t);
	return NULL;
}

/* The only thread is running: nobody else sends the tick the slice policy
 * needs or receives its PREEMPT (it once ran on until a parked thread's
 * millisecond poll, and with no parked thread, for ever). */
START_TEST(lone_thread_ticks_and_is_preempted)
{
	struct sagent sa = { 0 };
	struct lone l = { 0 };
	struct wave_host_opts ho;
	struct wave_sched_opts o;
	struct wave_sched_msg d;
	struct wave_msg m;
	uint32_t n_cpus = 0;
	pthread_t thr;
	uint64_t seq;

	make_dir(sa.dir, sizeof(sa.dir), sa.uri, sizeof(sa.uri));
	ck_assert_int_eq(wave_chan_listen(sa.uri, NULL, &sa.l), 0);
	ck_assert_int_eq(pthread_create(&sa.thr, NULL, sa_accept, &sa), 0);
	wave_host_opts_init(&ho);
	ho.heartbeat_timeout_ms = 600000; /* the script sends no heartbeats */
	wave_sched_opts_init(&o);
	o.batch = 1;
	o.tick_us = 100;
	o.host = &ho;
	ck_assert_int_eq(wave_sched_create(sa.uri, &o, &l.s, NULL), 0);
	ck_assert_int_eq(pthread_join(sa.thr, NULL), 0);
	sa_recv(&sa, &m);
	ck_assert_int_eq(sched_setup_decode(&m, &n_cpus), 0);
	ck_assert_uint_eq(n_cpus, 1);

	ck_assert_int_eq(pthread_create(&thr, NULL, lone_main, &l), 0);
	sa_expect(&sa, WAVE_SCHED_TASK_NEW, &d);
	seq = d.seq;
	sa_send(&sa, WAVE_SCHED_RUN, 1, seq); /* the parked thread takes it */
	sa_expect(&sa, WAVE_SCHED_OUTCOME, &d);
	ck_assert_uint_eq(d.decision, WAVE_SCHED_RUN);
	/* Now only the running thread's checks can send this. */
	sa_expect(&sa, WAVE_SCHED_TICK, &d);
	ck_assert_uint_eq(d.cpu, 0);
	ck_assert_int_eq(atomic_load(&l.preempted), 0);
	sa_send(&sa, WAVE_SCHED_PREEMPT, 1, seq);
	sa_expect(&sa, WAVE_SCHED_TASK_PREEMPTED, &d);
	ck_assert_uint_eq(d.task, 1);
	sa_send(&sa, WAVE_SCHED_RUN, 1, d.seq);
	sa_expect(&sa, WAVE_SCHED_TASK_DEAD, &d);
	ck_assert_int_eq(pthread_join(thr, NULL), 0);

	/* Sent, staged, stopped: in that order, the slice until the stop. */
	ck_assert_uint_gt(l.p.sent_ns, 0);
	ck_assert_uint_le(l.p.sent_ns, l.p.staged_ns);
	ck_assert_uint_le(l.p.staged_ns, l.p.stopped_ns);
	ck_assert_uint_gt(l.p.ran_ns, 0);
	wave_sched_destroy(l.s);
	wave_chan_close(sa.ch);
	wave_chan_listener_close(sa.l);
	remove_dir(sa.dir);
}
END_TEST

/* ---- two CPU-bound threads share a CPU by the policy's slices -------------- */

struct pair {
	struct wave_sched *s;
	atomic_ulong steps[2];
	atomic_int preempted[2];
	atomic_bool stop;
};

struct pair_thread {
	struct pair *p;
	unsigned i;
};

/* Never yields: works and checks until told to stop. */
static void *pair_main(void *arg)
{
	struct pair_thread *me = arg;
	struct pair *p = me->p;
	struct wave_sched_preemption info;
	struct wave_sched_thread *t;
	int ret;

	ck_assert_int_eq(wave_sched_thread_attach(p->s, me->i + 1, 0, &t), 0);
	while (!atomic_load(&p->stop)) {
		for (volatile int k = 0; k < 1000; k++)
			;
		atomic_fetch_add(&p->steps[me->i], 1);
		ret = wave_sched_thread_check(t);
		ck_assert_int_ge(ret, 0);
		if (ret == 1) {
			ck_assert_int_eq(wave_sched_thread_preemption(t, &info), 0);
			ck_assert_uint_le(info.staged_ns, info.stopped_ns);
			atomic_fetch_add(&p->preempted[me->i], 1);
		}
	}
	wave_sched_thread_detach(t);
	return NULL;
}

static void *agent_main(void *arg)
{
	ck_assert_int_eq(wave_agent_run(arg), 0);
	return NULL;
}

START_TEST(two_cpu_bound_threads_share_by_slices)
{
	char dir[64], uri[128], text[512];
	struct pair p = { 0 };
	struct pair_thread pt[2] = { { &p, 0 }, { &p, 1 } };
	struct wave_config *cfg;
	struct wave_agent *a;
	struct wave_sched_opts o;
	struct wave_sched_host_stats st;
	struct wave_error err;
	pthread_t agent, thr[2];
	uint64_t deadline = wave_now_ns() + HANG_NS;
	const struct timespec nap = { 0, 1000000 };

	make_dir(dir, sizeof(dir), uri, sizeof(uri));
	snprintf(text, sizeof(text),
		 "{\"listen\": [\"%s\"], \"plugin_path\": [\"%s\"],"
		 " \"heartbeat\": {\"period_ms\": 1000, \"timeout_ms\": 600000},"
		 " \"domains\": {\"sched\": {\"plugin\": \"sched_shinjuku\","
		 " \"params\": {\"slice_us\": 100}}}}",
		 uri, WAVE_PLUGIN_BUILD_DIR);
	ck_assert_msg(wave_config_parse(text, strlen(text), NULL, &cfg, &err) == 0, "%s",
		      err.text);
	ck_assert_msg(wave_agent_create(cfg, &a, &err) == 0, "%s", err.text);
	ck_assert_int_eq(pthread_create(&agent, NULL, agent_main, a), 0);
	wave_sched_opts_init(&o);
	o.tick_us = 50;
	ck_assert_int_eq(wave_sched_create(uri, &o, &p.s, &err), 0);
	ck_assert_int_eq(wave_sched_mode(p.s), WAVE_HOST_AGENT);
	for (unsigned i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&thr[i], NULL, pair_main, &pt[i]), 0);
	/* Each thread preempted a few times: each let the other run. */
	while (atomic_load(&p.preempted[0]) < 3 || atomic_load(&p.preempted[1]) < 3) {
		ck_assert_msg(wave_now_ns() < deadline, "preempted %d and %d times, %lu and %lu steps",
			      atomic_load(&p.preempted[0]), atomic_load(&p.preempted[1]),
			      atomic_load(&p.steps[0]), atomic_load(&p.steps[1]));
		nanosleep(&nap, NULL);
	}
	atomic_store(&p.stop, true);
	for (unsigned i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_join(thr[i], NULL), 0);
	ck_assert_uint_gt(atomic_load(&p.steps[0]), 0);
	ck_assert_uint_gt(atomic_load(&p.steps[1]), 0);
	ck_assert_int_eq(wave_sched_host_stats(p.s, &st), 0);
	ck_assert_uint_ge(st.preempts, 6);
	ck_assert_uint_eq(st.fallback_runs, 0);
	wave_sched_destroy(p.s);
	ck_assert_int_eq(wave_agent_stop(a), 0);
	ck_assert_int_eq(pthread_join(agent, NULL), 0);
	wave_agent_destroy(a);
	wave_config_free(cfg);
	remove_dir(dir);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("sched_preempt");
	TCase *tc = tcase_create("preempt");

	tcase_add_test(tc, lone_thread_ticks_and_is_preempted);
	tcase_add_test(tc, two_cpu_bound_threads_share_by_slices);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return wave_check_run(suite());
}
