/* SPDX-License-Identifier: MIT */
/*
 * wave-bench-sched preempt: how fast the agent's time slice stops a managed
 * pthread. Two CPU-bound managed threads (wave_sched_thread_attach()) share
 * one managed CPU, pinned to the worker CPU; each spins in steps of
 * --step-us and calls wave_sched_thread_check() between steps, never
 * yielding: only sched_shinjuku's preemption (--slice-us, the host ticking
 * every --tick-us) lets the other one run. Per preemption
 * (wave_sched_thread_preemption()):
 *
 *   slice     how long the thread held the CPU: decide + delay;
 *   decide    from the thread getting the CPU to the agent's PREEMPT
 *             leaving the agent (the slice, rounded up to the host's next
 *             tick, plus how late the agent handled that tick);
 *   delay     from the PREEMPT leaving the agent to the thread stopped,
 *             split into receive (to the host staging it: the running
 *             thread's look, or a parked thread's poll) and notice (to the
 *             thread's next check seeing the flag).
 *
 * p50 and p99 per run, medians of --runs interleaved runs, for the agent in
 * a thread of this process (onhost) and in wave-agentd over shm://
 * (offload). Waited: how long the threads of this process and of the
 * agent's spent runnable but waiting for a CPU during the run (the
 * kernel's schedstat run_delay: the machine gave the CPU to others); a run
 * whose two busy threads (the one holding the CPU, the agent's) waited
 * more than --max-wait-pct of their time is dropped and counted, and the
 * medians are of the others.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <wave/wave.h>

#include "bench_offcpu.h"
#include "bench_sched.h"
#include "bench_stat.h"

#define MAX_RUNS 9

struct pr_args {
	struct bsched_opts o;
	unsigned preemptions, runs, step_us, max_wait_pct;
	bool quick;
	const char *only; /* comma-separated mode names, or NULL */
};

/* One run's figures, in ns. */
struct pr_run {
	double slice50, slice99, decide50, delay50, delay99, recv50, notice50;
	double waited_ms, wall_ms;
	unsigned per_thread[2]; /* preemptions of each thread */
};

/* The state the two threads share during a run. */
struct pr_shared {
	struct wave_sched *s;
	uint64_t *slice, *decide, *delay, *recv, *notice; /* n samples each */
	unsigned warm, n, step_ns;
	pid_t agent; /* wave-agentd, or -1 */
	_Atomic unsigned count, delays; /* samples taken; of them, with a delay */
	_Atomic unsigned preempted[2];
	atomic_bool stop;
	atomic_int err;
};

struct pr_thread {
	struct pr_shared *sh;
	unsigned i; /* 0 or 1; task id i + 1 */
};

static void spin_step(uint64_t ns)
{
	uint64_t t0 = load_now_ns();

	while (load_now_ns() - t0 < ns)
		;
}

static void record(struct pr_shared *sh, const struct wave_sched_preemption *p)
{
	unsigned k = atomic_fetch_add(&sh->count, 1);

	if (k + 1 >= sh->warm + sh->n)
		atomic_store(&sh->stop, true);
	if (k < sh->warm || k >= sh->warm + sh->n)
		return;
	k -= sh->warm;
	sh->slice[k] = p->ran_ns;
	/* A stamp the channel could not vouch for gives no delay. */
	if (p->sent_ns && p->staged_ns >= p->sent_ns && p->stopped_ns >= p->staged_ns &&
	    p->sent_ns >= p->stopped_ns - p->ran_ns) {
		unsigned d = atomic_fetch_add(&sh->delays, 1);

		sh->decide[d] = p->sent_ns - (p->stopped_ns - p->ran_ns);
		sh->delay[d] = p->stopped_ns - p->sent_ns;
		sh->recv[d] = p->staged_ns - p->sent_ns;
		sh->notice[d] = p->stopped_ns - p->staged_ns;
	}
}

static void *pr_main(void *arg)
{
	struct pr_thread *me = arg;
	struct pr_shared *sh = me->sh;
	struct wave_sched_preemption p;
	struct wave_sched_thread *t;
	int ret;

	if ((ret = wave_sched_thread_attach(sh->s, me->i + 1, 0, &t)) < 0) {
		atomic_store(&sh->err, ret);
		atomic_store(&sh->stop, true);
		return NULL;
	}
	while (!atomic_load(&sh->stop)) {
		spin_step(sh->step_ns);
		ret = wave_sched_thread_check(t);
		if (ret == 1 && (ret = wave_sched_thread_preemption(t, &p)) == 0) {
			atomic_fetch_add(&sh->preempted[me->i], 1);
			record(sh, &p);
		}
		if (ret < 0) {
			atomic_store(&sh->err, ret);
			atomic_store(&sh->stop, true);
		}
	}
	wave_sched_thread_detach(t);
	return NULL;
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

/* The @pct (below 100) percentile of @n samples (sorted in place); 0 for
 * none. */
static double pctl(uint64_t *v, unsigned n, unsigned pct)
{
	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_u64);
	return (double)v[(size_t)n * pct / 100];
}

/* Runs the two threads on scheduler @s until enough preemptions. This
 * thread only waits: it must not poll, or it would receive the PREEMPTs
 * the managed threads are measured receiving themselves. */
static int run_threads(struct pr_shared *sh, struct pr_run *r)
{
	struct pr_thread th[2] = { { sh, 0 }, { sh, 1 } };
	uint64_t t0 = load_now_ns(), deadline = t0 + 10000000000ull +
			(uint64_t)(sh->warm + sh->n) * 100000000u; /* a hang, not a figure */
	const struct timespec nap = { 0, 10000000 };
	const pid_t pids[2] = { getpid(), sh->agent };
	struct bench_watch w;
	pthread_t thr[2];
	unsigned started = 0, nd;

	/* This process's threads and the agent daemon's (bench_offcpu.h). */
	bench_watch_begin(&w, pids, sh->agent > 0 ? 2 : 1, NULL, 0);
	for (; started < 2; started++)
		if (pthread_create(&thr[started], NULL, pr_main, &th[started]) != 0)
			break;
	while (started == 2 && !atomic_load(&sh->stop) && load_now_ns() < deadline)
		nanosleep(&nap, NULL);
	/* Before the threads exit, and their figures with them. */
	r->wall_ms = (double)(load_now_ns() - t0) / 1e6;
	r->waited_ms = bench_watch_end(&w) * r->wall_ms;
	atomic_store(&sh->stop, true);
	for (unsigned i = 0; i < started; i++)
		pthread_join(thr[i], NULL);
	if (started < 2)
		return -EAGAIN;
	if (atomic_load(&sh->err))
		return atomic_load(&sh->err);
	if (atomic_load(&sh->count) < sh->warm + sh->n)
		return -ETIMEDOUT;
	nd = atomic_load(&sh->delays);
	r->slice50 = pctl(sh->slice, sh->n, 50);
	r->slice99 = pctl(sh->slice, sh->n, 99);
	r->decide50 = pctl(sh->decide, nd, 50);
	r->delay50 = pctl(sh->delay, nd, 50);
	r->delay99 = pctl(sh->delay, nd, 99);
	r->recv50 = pctl(sh->recv, nd, 50);
	r->notice50 = pctl(sh->notice, nd, 50);
	for (int i = 0; i < 2; i++)
		r->per_thread[i] = atomic_load(&sh->preempted[i]);
	return 0;
}

static int run_mode(const struct pr_args *a, const struct bsched_mode *m, struct pr_run *r)
{
	unsigned warm = a->preemptions / 10 + 10, n = a->preemptions;
	struct pr_shared sh = { .warm = warm, .n = n, .step_ns = a->step_us * 1000 };
	struct wave_host_opts hopts;
	struct wave_sched_opts so;
	struct bench_agentd ar;
	struct wave_error err;
	int ret, core = a->o.worker_cpu;

	sh.slice = calloc(n, sizeof(uint64_t));
	sh.decide = calloc(n, sizeof(uint64_t));
	sh.delay = calloc(n, sizeof(uint64_t));
	sh.recv = calloc(n, sizeof(uint64_t));
	sh.notice = calloc(n, sizeof(uint64_t));
	if (!sh.slice || !sh.decide || !sh.delay || !sh.recv || !sh.notice) {
		ret = -ENOMEM;
		goto out;
	}
	if ((ret = bsched_agent_start(&ar, &a->o, m)) < 0)
		goto out;
	sh.agent = ar.pid;
	wave_host_opts_init(&hopts);
	hopts.heartbeat_timeout_ms = HEARTBEAT_TIMEOUT_MS;
	wave_sched_opts_init(&so);
	so.tick_us = a->o.tick_us;
	so.cores = &core;
	so.host = &hopts;
	ret = wave_sched_create(ar.uri, &so, &sh.s, &err);
	if (ret < 0) {
		fprintf(stderr, "wave-bench-sched preempt: %s: %s\n", wave_strerror(ret), err.text);
	} else {
		struct wave_sched_host_stats st;

		if ((ret = bsched_wait_for_agent(sh.s)) == 0)
			ret = run_threads(&sh, r);
		/* A run the local FIFO decided any part of is not this mode's. */
		if (ret == 0 && wave_sched_host_stats(sh.s, &st) == 0 &&
		    (st.fallbacks || st.fallback_runs)) {
			fprintf(stderr, "wave-bench-sched preempt: the agent lost control\n");
			ret = -EPROTO;
		}
		wave_sched_destroy(sh.s);
	}
	bench_agentd_stop(&ar, ret < 0);
out:
	free(sh.slice);
	free(sh.decide);
	free(sh.delay);
	free(sh.recv);
	free(sh.notice);
	return ret;
}

/* ---- the command ------------------------------------------------------------- */

static const struct bsched_mode pr_modes[] = {
	{ "onhost", "sched_shinjuku in an agent thread of this process", BSCHED_ONHOST, 0, true },
	{ "offload", "sched_shinjuku in wave-agentd, over shm://", BSCHED_OFFLOAD, 0, true },
};
#define N_PR_MODES (sizeof(pr_modes) / sizeof(pr_modes[0]))

#define MED(runs, n, field) \
	bench_median_field(runs, sizeof(struct pr_run), n, offsetof(struct pr_run, field))

static void print_mode(const struct pr_args *a, const struct bsched_mode *m,
		       const struct pr_run *runs, unsigned n, unsigned dropped)
{
	if (a->o.json) {
		printf("{\"mode\":\"%s\",\"slice_us\":%u,\"tick_us\":%u,\"step_us\":%u,"
		       "\"slice_p50_ns\":%.0f,\"slice_p99_ns\":%.0f,\"decide_p50_ns\":%.0f,"
		       "\"delay_p50_ns\":%.0f,"
		       "\"delay_p99_ns\":%.0f,\"receive_p50_ns\":%.0f,\"notice_p50_ns\":%.0f,"
		       "\"waited_ms\":%.1f,\"wall_ms\":%.1f,\"preemptions\":%u,\"runs\":%u,"
		       "\"dropped\":%u}\n",
		       m->name, a->o.slice_us, a->o.tick_us, a->step_us, MED(runs, n, slice50),
		       MED(runs, n, slice99), MED(runs, n, decide50), MED(runs, n, delay50),
		       MED(runs, n, delay99),
		       MED(runs, n, recv50), MED(runs, n, notice50), MED(runs, n, waited_ms),
		       MED(runs, n, wall_ms), a->preemptions, n, dropped);
		return;
	}
	printf("%-8s %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f %4u/%u\n", m->name,
	       MED(runs, n, slice50) / 1e3, MED(runs, n, slice99) / 1e3,
	       MED(runs, n, decide50) / 1e3,
	       MED(runs, n, delay50) / 1e3, MED(runs, n, delay99) / 1e3,
	       MED(runs, n, recv50) / 1e3, MED(runs, n, notice50) / 1e3, MED(runs, n, waited_ms),
	       n, n + dropped);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: wave-bench-sched preempt [options]\n"
		"\n"
		"Two CPU-bound managed threads share one managed CPU; sched_shinjuku's\n"
		"time slice preempts them. Prints the slice each got and the delay from\n"
		"the agent's PREEMPT to the thread stopped (p50, p99), per mode.\n"
		"\n"
		"  --preemptions N  measured preemptions per run (default 5000; a tenth\n"
		"                   more warm up first)\n"
		"  --runs N         runs of each mode, interleaved; medians (default 3, max %d)\n"
		"  --slice-us US    sched_shinjuku's slice (default 20)\n"
		"  --tick-us US     how often the host ticks the busy CPU (default 10)\n"
		"  --step-us US     how often a thread checks (default 1)\n"
		"  --max-wait-pct P drop a run whose two busy threads (the one holding the\n"
		"                   CPU, the agent's) waited for a CPU more than P%% of\n"
		"                   their time (default 5; 100 keeps every run)\n"
		"  --modes LIST     onhost, offload (default both)\n"
		"  --json           one JSON object per mode\n"
		"  --quick          a smoke test: small, checks both threads were preempted\n",
		MAX_RUNS);
}

static int parse(int argc, char **argv, struct pr_args *a)
{
	static const struct option opts[] = {
		{ "preemptions", required_argument, NULL, 'p' },
		{ "runs", required_argument, NULL, 'r' },
		{ "slice-us", required_argument, NULL, 's' },
		{ "tick-us", required_argument, NULL, 't' },
		{ "step-us", required_argument, NULL, 'u' },
		{ "max-wait-pct", required_argument, NULL, 'o' },
		{ "modes", required_argument, NULL, 'm' },
		{ "json", no_argument, NULL, 'j' },
		{ "quick", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned *dst;
	char *end;
	long v;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'm') {
			a->only = optarg;
		} else if (c == 'j') {
			a->o.json = true;
		} else if (c == 'q') {
			a->quick = true;
		} else if (c == 'h') {
			usage(stdout);
			exit(0);
		} else if (!(dst = c == 'p'   ? &a->preemptions
				   : c == 'r' ? &a->runs
				   : c == 's' ? &a->o.slice_us
				   : c == 't' ? &a->o.tick_us
				   : c == 'u' ? &a->step_us
				   : c == 'o' ? &a->max_wait_pct
					      : NULL)) {
			return -1;
		} else {
			v = strtol(optarg, &end, 10);
			if (*end || v < (c == 'o' ? 0 : 1) || v > 1000000 ||
			    (c == 'r' && v > MAX_RUNS) || (c == 'o' && v > 100))
				return -1;
			*dst = (unsigned)v;
		}
	}
	return optind == argc ? 0 : -1;
}

/* Was the run's machine quiet enough: did the two threads that are busy
 * all along (the one holding the CPU, the agent's) wait for a CPU at most
 * max_wait_pct of their time (100: keep every run)? */
static bool quiet(const struct pr_args *a, const struct pr_run *r)
{
	return a->max_wait_pct >= 100 || r->waited_ms <= 2 * r->wall_ms * a->max_wait_pct / 100;
}

int bpreempt_main(int argc, char **argv)
{
	struct pr_args a = { .o = { .worker_cpu = 0, .agent_cpu = 1, .policy = "shinjuku",
				    .slice_us = 20, .tick_us = 10 },
			     .preemptions = 5000, .runs = 3, .step_us = 1, .max_wait_pct = 5 };
	static struct pr_run runs[N_PR_MODES][MAX_RUNS];
	unsigned done[N_PR_MODES] = { 0 }, dropped[N_PR_MODES] = { 0 };
	cpu_set_t set;
	int status = 0, ret;

	if (parse(argc, argv, &a) < 0) {
		usage(stderr);
		return 2;
	}
	if (a.quick) {
		a.preemptions = 50;
		a.runs = 1;
		a.max_wait_pct = 100;
	}
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) < 2)
		a.o.agent_cpu = a.o.worker_cpu; /* one CPU: everything shares it */
	if (!a.o.json)
		printf("wave-bench-sched preempt: %u preemptions per run; sched_shinjuku slice %u us,"
		       " tick %u us, threads check every %u us;\nthreads on CPU %d, agent on CPU"
		       " %d; medians of the runs kept (waited for a CPU at most %u%% of a run)\n\n",
		       a.preemptions, a.o.slice_us, a.o.tick_us, a.step_us, a.o.worker_cpu,
		       a.o.agent_cpu, a.max_wait_pct);
	/* Interleaved: a noisy moment of the machine hits every mode alike. */
	for (unsigned r = 0; r < a.runs; r++)
		for (unsigned m = 0; m < N_PR_MODES; m++) {
			struct pr_run *run = &runs[m][done[m]];

			if (!bsched_wanted(a.only, pr_modes[m].name))
				continue;
			ret = run_mode(&a, &pr_modes[m], run);
			/* Both threads must have been preempted: each let the other run. */
			if (ret == 0 && (!run->per_thread[0] || !run->per_thread[1]))
				ret = -EPROTO;
			if (ret < 0) {
				fprintf(stderr, "wave-bench-sched preempt: %s: %s\n", pr_modes[m].name,
					strerror(-ret));
				status = 1;
				continue;
			}
			if (quiet(&a, run))
				done[m]++;
			else
				dropped[m]++;
		}
	if (!a.o.json)
		printf("%-8s %9s %9s %9s %9s %9s %9s %9s %9s %6s\n", "mode", "slice50", "slice99",
		       "decide50", "delay50", "delay99", "recv50", "notice50", "waited", "runs");
	for (unsigned m = 0; m < N_PR_MODES; m++) {
		if (done[m])
			print_mode(&a, &pr_modes[m], runs[m], done[m], dropped[m]);
		else if (dropped[m])
			printf(a.o.json ? "{\"mode\":\"%s\",\"runs\":0,\"dropped\":%u}\n"
					: "%-8s every run dropped (%u): the machine was disturbed,"
					  " figures not conclusive\n",
			       pr_modes[m].name, dropped[m]);
	}
	if (!a.o.json)
		printf("\n(us; slice: CPU held per preemption = decide (CPU granted to PREEMPT"
		       " sent) + delay (PREEMPT sent to\nthread stopped) = recv (to staged on the"
		       " host) + notice (to the thread's check); waited: ms\nthe host's and the"
		       " agent's threads waited for a CPU; runs: kept/made)\n");
	return status;
}
