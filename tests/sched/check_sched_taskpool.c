/* SPDX-License-Identifier: MIT */
/*
 * Integration: examples/taskpool against a real wave-agentd running
 * sched_fifo (and sched_shinjuku) over shm. Every task must finish exactly
 * once and no task may run on two workers at once, also when the daemon is
 * killed mid-run (the host falls back to its local FIFO) and restarted
 * (the host resyncs and hands control back). No timing is asserted: the
 * test waits for conditions, and Check's timeout only catches a hang.
 */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>

#include "chan_util.h"
#include "agentd_util.h"
#include "check_run.h"
#include "taskpool.h"

/* `check_sched_taskpool fabric`: the same over fabric://tcp;ofi_rxm on the
 * loopback, where sched's decisions land in the host's mailboxes as MBOX
 * frames (WAVE_CHAN_F_RMA is not set). */
static bool over_fabric;

#define MAX_TASKS 4096

struct work {
	atomic_int running[MAX_TASKS + 1]; /* on a worker now */
	atomic_int finished[MAX_TASKS + 1];
	atomic_int runs[MAX_TASKS + 1];
	atomic_int overlaps;
	unsigned slices; /* runs each task makes before finishing */
	int spin_until_yield; /* each run but the last spins until preempted */
};

static struct work *W;

struct tjob {
	unsigned id;
};

static int job(struct taskpool_ctx *ctx, void *arg)
{
	struct tjob *j = arg;
	int runs;

	if (atomic_exchange(&W->running[j->id], 1) != 0)
		atomic_fetch_add(&W->overlaps, 1);
	runs = atomic_fetch_add(&W->runs[j->id], 1) + 1;
	for (volatile int k = 0; k < 200; k++)
		;
	if (W->spin_until_yield && (unsigned)runs < W->slices) {
		/* Until the policy takes the CPU back (2 s: a hang guard). */
		for (long k = 0; k < 2000000 && !taskpool_should_yield(ctx); k++)
			usleep(1);
	}
	atomic_store(&W->running[j->id], 0);
	/* Odd tasks block (and are woken by the pool) on their first run. */
	if ((unsigned)runs < W->slices)
		return runs == 1 && (j->id & 1) ? TASKPOOL_BLOCK : TASKPOOL_AGAIN;
	atomic_fetch_add(&W->finished[j->id], 1);
	return TASKPOOL_DONE;
}

static void write_cfg(struct agentd *e, const char *plugin, const char *params)
{
	char domains[512];

	snprintf(domains, sizeof(domains), "{\"sched\": {\"plugin\": \"%s\", \"params\": %s}}",
		 plugin, params);
	agentd_write_cfg(e, WAVE_PLUGIN_BUILD_DIR, domains);
}

static void env_init(struct agentd *e, const char *plugin, const char *params)
{
	char uri[64];

	if (over_fabric)
		snprintf(uri, sizeof(uri), "fabric://tcp;ofi_rxm/127.0.0.1:%d", test_free_port());
	agentd_init(e, "taskpool", over_fabric ? uri : NULL);
	write_cfg(e, plugin, params);
}

/* Polls until the scheduler is in @mode. */
static void wait_mode(struct taskpool *p, int mode)
{
	while (wave_sched_mode(taskpool_sched(p)) != mode)
		ck_assert_int_ge(wave_sched_poll(taskpool_sched(p), WAVE_US(1000)), 0);
}

/* Waits until the host has resynced with an agent @n times in all. */
static void wait_resync(struct taskpool *p, uint64_t n)
{
	struct wave_sched_host_stats st;

	for (;;) {
		ck_assert_int_eq(wave_sched_host_stats(taskpool_sched(p), &st), 0);
		if (st.resyncs >= n && wave_sched_mode(taskpool_sched(p)) == WAVE_HOST_AGENT)
			return;
		ck_assert_int_ge(wave_sched_poll(taskpool_sched(p), WAVE_US(1000)), 0);
	}
}

static struct taskpool *pool_start(struct agentd *e, unsigned workers, uint32_t tick_us)
{
	struct wave_host_opts ho;
	struct wave_sched_opts so;
	struct taskpool_opts o = { 0 };
	struct taskpool *p = NULL;
	struct wave_error err;
	int ret;

	agentd_host_opts(&ho, 5000, 10000);
	wave_sched_opts_init(&so);
	so.host = &ho;
	so.tick_us = tick_us;
	o.uri = e->uri;
	o.workers = workers;
	o.sched = &so;
	ret = taskpool_create(&o, &p, &err);
	ck_assert_msg(ret == 0, "%s: %s", wave_strerror(ret), err.text);
	/* The daemon may still be starting: the scheduler reconnects. */
	wait_mode(p, WAVE_HOST_AGENT);
	return p;
}

static struct tjob *jobs;

static void submit(struct taskpool *p, unsigned from, unsigned to)
{
	for (unsigned i = from; i <= to; i++) {
		jobs[i].id = i;
		ck_assert_int_eq(taskpool_submit(p, job, &jobs[i], NULL), 0);
	}
}

static void check_all(unsigned n)
{
	ck_assert_int_eq(atomic_load(&W->overlaps), 0);
	for (unsigned i = 1; i <= n; i++) {
		ck_assert_msg(atomic_load(&W->finished[i]) == 1, "task %u finished %d times", i,
			      atomic_load(&W->finished[i]));
		ck_assert_msg((unsigned)atomic_load(&W->runs[i]) == W->slices,
			      "task %u ran %d times", i, atomic_load(&W->runs[i]));
	}
}

static void setup(unsigned slices)
{
	W = calloc(1, sizeof(*W));
	jobs = calloc(MAX_TASKS + 1, sizeof(*jobs));
	ck_assert_ptr_nonnull(W);
	ck_assert_ptr_nonnull(jobs);
	W->slices = slices;
}

static void cleanup(void)
{
	free(W);
	free(jobs);
}

/* @n jobs of @slices slices each through 2 workers, every dispatch decided
 * by @plugin (with @params) in a wave-agentd; each job checked done once.
 * The host's stats at the end go to @st. */
static void run_jobs(const char *plugin, const char *params, unsigned slices, unsigned n,
		     struct wave_sched_host_stats *st)
{
	struct taskpool *p;
	struct agentd e;

	setup(slices);
	env_init(&e, plugin, params);
	agentd_start(&e, WAVE_AGENTD);
	p = pool_start(&e, 2, 0);
	submit(p, 1, n);
	taskpool_wait(p);
	ck_assert_int_eq(wave_sched_host_stats(taskpool_sched(p), st), 0);
	taskpool_destroy(p);
	check_all(n);
	agentd_fini(&e);
	cleanup();
}

START_TEST(fifo_every_task_once)
{
	struct wave_sched_host_stats st;
	unsigned n = 3000;

	run_jobs("sched_fifo", "{}", 3, n, &st);
	/* Every run was the agent's (a loaded machine may lose the agent for
	 * a while: then the fallback ran some, which is also correct). */
	ck_assert_uint_eq(st.committed + st.fallback_runs, (uint64_t)n * 3);
	ck_assert_uint_gt(st.committed, 0);
	ck_assert_uint_eq(st.bad_decisions, 0);
	ck_assert_uint_eq(st.tasks, 0);
}
END_TEST

/* FIFO with prestaging: busy CPUs get their next task staged ahead. */
START_TEST(fifo_prestaged)
{
	struct wave_sched_host_stats st;
	unsigned n = 2000;

	run_jobs("sched_fifo", "{\"prestage\": true}", 2, n, &st);
	ck_assert_uint_eq(st.committed + st.fallback_runs, (uint64_t)n * 2);
	ck_assert_uint_ge(st.prestaged, 1);
	ck_assert_uint_eq(st.bad_decisions, 0);
}
END_TEST

/* The daemon killed with tasks in flight, then restarted. */
START_TEST(fifo_agent_killed_and_restarted)
{
	struct wave_sched_host_stats st;
	struct taskpool *p;
	struct agentd e;

	setup(2);
	env_init(&e, "sched_fifo", "{}");
	agentd_start(&e, WAVE_AGENTD);
	p = pool_start(&e, 2, 0);
	submit(p, 1, 1500);
	while (atomic_load(&W->finished[300]) == 0 && atomic_load(&W->finished[1500]) == 0)
		ck_assert_int_ge(wave_sched_poll(taskpool_sched(p), WAVE_US(1000)), 0);
	agentd_kill(&e, SIGKILL);
	wait_mode(p, WAVE_HOST_FALLBACK);
	submit(p, 1501, 2000);
	agentd_start(&e, WAVE_AGENTD);
	wait_mode(p, WAVE_HOST_AGENT);
	submit(p, 2001, 2500);
	taskpool_wait(p);
	ck_assert_int_eq(wave_sched_host_stats(taskpool_sched(p), &st), 0);
	taskpool_destroy(p);
	check_all(2500);
	ck_assert_uint_ge(st.fallbacks, 1);
	ck_assert_uint_ge(st.resyncs, 2);
	ck_assert_uint_eq(st.committed + st.fallback_runs, 2500u * 2);
	ck_assert_uint_eq(st.tasks, 0);
	agentd_fini(&e);
	cleanup();
}
END_TEST

/*
 * The daemon killed again and again with tasks in flight: on odd rounds as
 * soon as it is started (it may die before, during or after the host's
 * handshake and resync), on even rounds once it decides. Every task still
 * runs to its end exactly once, and the host ends with none left over.
 */
START_TEST(agent_kill_loop)
{
	enum { ROUNDS = 12, PER_ROUND = 150 };
	struct wave_sched_host_stats st;
	struct taskpool *p;
	struct agentd e;
	unsigned next = 1;

	setup(2);
	env_init(&e, "sched_fifo", "{\"prestage\": true}");
	agentd_start(&e, WAVE_AGENTD);
	p = pool_start(&e, 2, 0);
	for (unsigned r = 0; r < ROUNDS; r++) {
		if (r % 2 == 0)
			wait_resync(p, r / 2 + 1); /* connected to this round's daemon */
		submit(p, next, next + PER_ROUND - 1);
		next += PER_ROUND;
		agentd_kill(&e, SIGKILL);
		agentd_start(&e, WAVE_AGENTD);
	}
	wait_mode(p, WAVE_HOST_AGENT);
	submit(p, next, next + PER_ROUND - 1);
	next += PER_ROUND;
	taskpool_wait(p);
	ck_assert_int_eq(wave_sched_host_stats(taskpool_sched(p), &st), 0);
	taskpool_destroy(p);
	check_all(next - 1);
	/* Connected to every even round's daemon, and lost each but maybe
	 * the last before the end (over fabric:// a death is noticed when a
	 * call finds the connection gone or the peer silent too long). */
	ck_assert_uint_ge(st.resyncs, ROUNDS / 2);
	ck_assert_uint_ge(st.fallbacks, ROUNDS / 2 - 1);
	ck_assert_uint_eq(st.committed + st.fallback_runs, (uint64_t)(next - 1) * 2);
	ck_assert_uint_eq(st.bad_decisions, 0);
	ck_assert_uint_eq(st.tasks, 0);
	agentd_fini(&e);
	cleanup();
}
END_TEST

/* A time-slice policy with prestaging: preemptions happen (tasks spin
 * until told to yield), and still every task runs to the end once. */
START_TEST(shinjuku_preempts)
{
	struct wave_sched_host_stats st;
	struct taskpool *p;
	struct agentd e;

	setup(2);
	W->spin_until_yield = 1;
	env_init(&e, "sched_shinjuku", "{\"slice_us\": 20}");
	agentd_start(&e, WAVE_AGENTD);
	p = pool_start(&e, 1, 50);
	submit(p, 1, 20);
	taskpool_wait(p);
	ck_assert_int_eq(wave_sched_host_stats(taskpool_sched(p), &st), 0);
	taskpool_destroy(p);
	check_all(20);
	ck_assert_uint_ge(st.preempts, 1);
	ck_assert_uint_eq(st.bad_decisions, 0);
	agentd_fini(&e);
	cleanup();
}
END_TEST

/* Managed pthreads: 8 threads over 2 CPUs, every grant from the agent. */
struct mthread {
	struct wave_sched *s;
	uint64_t id;
	atomic_int *on_cpu, *max_on_cpu, *done;
};

static void *mthread_main(void *arg)
{
	struct mthread *m = arg;
	struct wave_sched_thread *t;

	ck_assert_int_eq(wave_sched_thread_attach(m->s, m->id, 0, &t), 0);
	for (unsigned r = 0; r < 100; r++) {
		int now = atomic_fetch_add(m->on_cpu, 1) + 1, max = atomic_load(m->max_on_cpu);

		while (now > max && !atomic_compare_exchange_weak(m->max_on_cpu, &max, now))
			;
		for (volatile int k = 0; k < 1000; k++)
			;
		atomic_fetch_sub(m->on_cpu, 1);
		ck_assert_int_eq(wave_sched_thread_yield(t), 0);
	}
	wave_sched_thread_detach(t);
	atomic_fetch_add(m->done, 1);
	return NULL;
}

START_TEST(managed_threads_fifo)
{
	enum { N = 8, CPUS = 2 };
	struct wave_host_opts ho;
	struct wave_sched_opts so;
	struct wave_sched_host_stats st;
	struct wave_sched *s;
	struct wave_error err;
	struct mthread m[N];
	pthread_t thr[N];
	atomic_int on_cpu = 0, max_on_cpu = 0, done = 0;
	struct agentd e;
	int ret;

	env_init(&e, "sched_fifo", "{}");
	agentd_start(&e, WAVE_AGENTD);
	agentd_host_opts(&ho, 5000, 1000);
	wave_sched_opts_init(&so);
	so.n_cpus = CPUS;
	so.host = &ho;
	ret = wave_sched_create(e.uri, &so, &s, &err);
	ck_assert_msg(ret == 0, "%s", err.text);
	while (wave_sched_mode(s) != WAVE_HOST_AGENT)
		ck_assert_int_ge(wave_sched_poll(s, WAVE_US(1000)), 0);
	for (unsigned i = 0; i < N; i++) {
		m[i] = (struct mthread){ s, i + 1, &on_cpu, &max_on_cpu, &done };
		ck_assert_int_eq(pthread_create(&thr[i], NULL, mthread_main, &m[i]), 0);
	}
	for (unsigned i = 0; i < N; i++)
		ck_assert_int_eq(pthread_join(thr[i], NULL), 0);
	ck_assert_int_eq(atomic_load(&done), N);
	ck_assert_int_le(atomic_load(&max_on_cpu), CPUS);
	ck_assert_int_eq(wave_sched_host_stats(s, &st), 0);
	ck_assert_uint_eq(st.committed + st.fallback_runs, N * 101);
	ck_assert_uint_gt(st.committed, 0);
	ck_assert_uint_eq(st.tasks, 0);
	wave_sched_destroy(s);
	agentd_fini(&e);
}
END_TEST

/* SIGHUP with new parameters: the state is replayed into a new instance
 * (prestaging on) while tasks run; none is lost or run twice, and the new
 * policy is in force. */
START_TEST(hot_swap_under_load)
{
	struct wave_sched_host_stats st;
	struct taskpool *p;
	struct agentd e;

	setup(2);
	env_init(&e, "sched_fifo", "{}");
	agentd_start(&e, WAVE_AGENTD);
	p = pool_start(&e, 2, 0);
	submit(p, 1, 1500);
	while (atomic_load(&W->finished[300]) == 0 && atomic_load(&W->finished[1500]) == 0)
		ck_assert_int_ge(wave_sched_poll(taskpool_sched(p), WAVE_US(1000)), 0);
	write_cfg(&e, "sched_fifo", "{\"prestage\": true}");
	ck_assert_int_eq(kill(e.pid, SIGHUP), 0);
	while (!agentd_log_has(&e, "agent: domain sched: plugin sched_fifo"))
		ck_assert_int_ge(wave_sched_poll(taskpool_sched(p), WAVE_US(1000)), 0);
	submit(p, 1501, 2500);
	taskpool_wait(p);
	ck_assert_int_eq(wave_sched_host_stats(taskpool_sched(p), &st), 0);
	taskpool_destroy(p);
	check_all(2500);
	ck_assert_uint_eq(st.committed + st.fallback_runs, 2500u * 2);
	ck_assert_uint_ge(st.prestaged, 1);
	ck_assert_uint_eq(st.bad_decisions, 0);
	agentd_fini(&e);
	cleanup();
}
END_TEST

/* On-host mode: the same plugin in an agent on a thread of this process;
 * its statistics count the host's transactions. */
static void *agent_main(void *arg)
{
	ck_assert_int_eq(wave_agent_run(arg), 0);
	return NULL;
}

/* The number after "@key": in @json, or -1. */
static long long json_num(const char *json, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(json, pat);
	return p ? strtoll(p + strlen(pat), NULL, 10) : -1; /* skips a space */
}

START_TEST(on_host_agent_stats)
{
	struct wave_sched_host_stats st;
	struct wave_config *cfg;
	struct wave_agent *a;
	struct wave_error err;
	struct taskpool *p;
	pthread_t thr;
	char text[512], *json;
	struct agentd e;
	int ret;

	setup(1);
	env_init(&e, "sched_fifo", "{}");
	snprintf(text, sizeof(text),
		 "{\"listen\": [\"%s\"], \"plugin_path\": [\"%s\"],"
		 " \"heartbeat\": {\"period_ms\": 50, \"timeout_ms\": 5000},"
		 " \"domains\": {\"sched\": {\"plugin\": \"sched_fifo\"}}}",
		 e.uri, WAVE_PLUGIN_BUILD_DIR);
	ret = wave_config_parse(text, strlen(text), NULL, &cfg, &err);
	ck_assert_msg(ret == 0, "%s", err.text);
	ret = wave_agent_create(cfg, &a, &err);
	ck_assert_msg(ret == 0, "%s", err.text);
	ck_assert_int_eq(pthread_create(&thr, NULL, agent_main, a), 0);
	p = pool_start(&e, 2, 0);
	submit(p, 1, 500);
	taskpool_wait(p);
	ck_assert_int_eq(wave_sched_host_stats(taskpool_sched(p), &st), 0);
	ck_assert_int_eq(wave_agent_stats_json(a, &json), 0);
	taskpool_destroy(p);
	check_all(500);
	/* The agent counts the commits it has read: the last ones may still
	 * be in the ring, but a RUN for a CPU needs the outcome of the one
	 * before it there, so beyond one per CPU some were read. */
	ck_assert_msg(json_num(json, "txn_committed") >= 0, "%s", json);
	if (st.committed > 2)
		ck_assert_msg(json_num(json, "txn_committed") > 0, "%s", json);
	ck_assert_int_eq(json_num(json, "events_refused"), 0);
	ck_assert_int_eq(json_num(json, "decisions_refused"), 0);
	free(json);
	ck_assert_int_eq(wave_agent_stop(a), 0);
	ck_assert_int_eq(pthread_join(thr, NULL), 0);
	wave_agent_destroy(a);
	wave_config_free(cfg);
	agentd_fini(&e);
	cleanup();
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("sched_taskpool");
	TCase *tc = tcase_create("agentd");

	tcase_add_test(tc, fifo_every_task_once);
	tcase_add_test(tc, fifo_prestaged);
	tcase_add_test(tc, fifo_agent_killed_and_restarted);
	tcase_add_test(tc, agent_kill_loop);
	tcase_add_test(tc, hot_swap_under_load);
	tcase_add_test(tc, on_host_agent_stats);
	tcase_add_test(tc, shinjuku_preempts);
	tcase_add_test(tc, managed_threads_fifo);
	suite_add_tcase(s, tc);
	return s;
}

int main(int argc, char **argv)
{
	over_fabric = argc > 1 && strcmp(argv[1], "fabric") == 0;
	return wave_check_run(suite());
}
