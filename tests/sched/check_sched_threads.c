/* SPDX-License-Identifier: MIT */
/*
 * The sched host's threads (include/wave/sched.h): idle CPUs that wait for
 * work asleep, and managed threads (wave_sched_thread_attach()) run one at
 * a time per CPU, on the local FIFO and under a scripted agent (sagent.h)
 * that preempts them with the application's signal. Run twice, like
 * check_sched_host: decisions in the CPUs' mailboxes, and (`ring`) on the
 * ring.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include <wave/wave.h>

#include "check_run.h"
#include "sagent.h"

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

/* A managed thread that holds its CPU until told to go. */
struct holder {
	struct wave_sched *s;
	struct wave_sched_thread *t;
	atomic_int state; /* 1: attached; 2: may detach */
};

static void *hold_main(void *arg)
{
	struct holder *h = arg;

	if (wave_sched_thread_attach(h->s, 7, 0, &h->t) != 0)
		return NULL;
	atomic_store(&h->state, 1);
	while (atomic_load(&h->state) != 2)
		sched_yield();
	wave_sched_thread_detach(h->t);
	return NULL;
}

/* Only a managed thread changes its own task: the application's calls on
 * it, or on its handle from another thread, are refused and change
 * nothing (they used to park a thread for ever, or run two on one CPU). */
START_TEST(managed_task_is_its_threads_own)
{
	struct holder h = { .state = 0 };
	struct wave_sched_opts o;
	pthread_t thr;

	wave_sched_opts_init(&o);
	o.n_cpus = 1;
	ck_assert_int_eq(wave_sched_create(NULL, &o, &h.s, NULL), 0);
	ck_assert_int_eq(pthread_create(&thr, NULL, hold_main, &h), 0);
	while (atomic_load(&h.state) != 1)
		sched_yield();
	ck_assert_int_eq(wave_sched_task_blocked(h.s, 7), -EINVAL);
	ck_assert_int_eq(wave_sched_task_yield(h.s, 7), -EINVAL);
	ck_assert_int_eq(wave_sched_task_preempted(h.s, 7), -EINVAL);
	ck_assert_int_eq(wave_sched_task_wakeup(h.s, 7), -EINVAL);
	ck_assert_int_eq(wave_sched_task_dead(h.s, 7), -EINVAL);
	ck_assert_int_eq(wave_sched_thread_yield(h.t), -EPERM);
	ck_assert_int_eq(wave_sched_thread_check(h.t), -EPERM);
	ck_assert_int_eq(wave_sched_thread_block(h.t), -EPERM);
	ck_assert_int_eq(wave_sched_thread_cpu(h.t), 0);
	atomic_store(&h.state, 2);
	ck_assert_int_eq(pthread_join(thr, NULL), 0);
	ck_assert_int_eq(wave_sched_task_dead(h.s, 7), -ENOENT); /* detached: gone */
	wave_sched_destroy(h.s);
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

/*
 * Sleeps until preempted: the signal cuts the sleep short. It looks at the
 * scheduler only after its handler ran, so the PREEMPT is read by the
 * test's thread, which signals this one, and the thread's TASK_PREEMPTED
 * follows the signal. (It used to check between naps: it could see the
 * yield flag before the signal was sent, or read its own PREEMPT and get
 * none, as a thread that is not blocked should; either way the test saw
 * no signal, 1 run in the dev build of a loaded CI.)
 */
static void *sig_main(void *arg)
{
	struct sigthread *st = arg;
	struct wave_sched_thread *t;
	const struct timespec nap = { 10, 0 };

	ck_assert_int_eq(wave_sched_thread_attach(st->s, 1, SIGUSR1, &t), 0);
	atomic_store(&st->attached, 1);
	while (atomic_load(&signals) == 0) /* a signal just before: one nap */
		nanosleep(&nap, NULL);
	ck_assert_int_eq(wave_sched_thread_check(t), 1);
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

static Suite *suite(void)
{
	Suite *s = suite_create("sched_threads");
	TCase *tc = tcase_create("threads");

	tcase_add_test(tc, idle_wait_sleeps);
	tcase_add_test(tc, idle_wait_woken_by_work);
	tcase_add_test(tc, managed_threads_local);
	tcase_add_test(tc, managed_threads_come_and_go);
	tcase_add_test(tc, managed_and_plain_tasks_exclusive);
	tcase_add_test(tc, managed_task_is_its_threads_own);
	tcase_add_test(tc, managed_thread_signal);
	suite_add_tcase(s, tc);
	return s;
}

int main(int argc, char **argv)
{
	sa_mbox_mode = !(argc > 1 && strcmp(argv[1], "ring") == 0);
	return wave_check_run(suite());
}
