/* SPDX-License-Identifier: MIT */
/*
 * wave-bench-sched switch: how long a CPU stands idle at a switch. Two
 * always-runnable tasks share the worker CPU; each runs for --run-us, then
 * yields, and the time from the yield (the task stopping) to the next task
 * running on that CPU is one sample. p50 and p99 over many switches, per
 * mode, medians of --runs interleaved runs:
 *
 *   linux     two threads pinned to the worker CPU handing it over with a
 *             futex (wake the other, wait): Linux's own switch, the peer;
 *   local     libwave with no agent: its local FIFO on the worker CPU;
 *   onhost-*  the sched_fifo plugin in an agent thread of this process;
 *   offload-*, off-1us-*, off-2us-*
 *             sched_fifo in wave-agentd over shm://, with 0, 1 or 2 us of
 *             emulated one-way delay;
 *
 * each agent mode with the plugin's prestaging off (-np) or on (-ps), and
 * with RUN and PRESTAGE on the ring (-ring) or in the CPU's mailboxes in
 * the host's memory (-mbox). Without prestaging a switch waits for the
 * yield to reach the agent and its RUN to come back: one round trip. With
 * it, the next task's decision is in the host before the yield, and the
 * switch costs the host's own work: a channel poll (-ring) or loads of
 * its own memory (-mbox).
 *
 * The tasks do not call libwave while they run (a real task runs
 * application code), so a prestaged decision on the ring waits there until
 * the switch polls it.
 */
#include <errno.h>
#include <getopt.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <wave/wave.h>

#include "bench_offcpu.h"
#include "bench_sched.h"
#include "bench_stat.h"

#define MAX_RUNS 9
/* A switch this slow was the machine (the worker off its CPU). */
#define STALL_NS LOAD_OFF_CPU_NS

enum sw_kind { SW_LINUX, SW_LOCAL, SW_AGENT };

struct sw_mode {
	char name[24];
	const char *what;
	enum sw_kind kind;
	enum bsched_kind place; /* SW_AGENT: BSCHED_ONHOST or BSCHED_OFFLOAD */
	unsigned delay_ns;
	bool prestage, mbox;
};

/* One run's figures. */
struct sw_run {
	double p50_ns, p99_ns;
	double prestaged, mailboxed; /* shares of the switches, 0..1 */
	unsigned stalls;
	double offcpu; /* the run's off-CPU share (bench_offcpu.h) */
};

struct sw_args {
	struct bsched_opts o;
	unsigned switches, runs, run_us;
	double max_offcpu; /* runs that lost more are left out */
	bool quick;
	const char *only; /* comma-separated mode names, or NULL */
};

#define MAX_MODES 20
static struct sw_mode modes[MAX_MODES];
static unsigned n_modes;

static void add_mode(const char *place, enum bsched_kind kind, unsigned delay, bool ps, bool mb)
{
	struct sw_mode *m = &modes[n_modes++];

	snprintf(m->name, sizeof(m->name), "%s-%s-%s", place, ps ? "ps" : "np",
		 mb ? "mbox" : "ring");
	m->what = NULL;
	m->kind = SW_AGENT;
	m->place = kind;
	m->delay_ns = delay;
	m->prestage = ps;
	m->mbox = mb;
}

static void make_modes(void)
{
	static const struct {
		const char *name;
		enum bsched_kind kind;
		unsigned delay;
	} places[] = { { "onhost", BSCHED_ONHOST, 0 },
		       { "offload", BSCHED_OFFLOAD, 0 },
		       { "off-1us", BSCHED_OFFLOAD, 1000 },
		       { "off-2us", BSCHED_OFFLOAD, 2000 } };

	modes[0] = (struct sw_mode){ .name = "linux", .kind = SW_LINUX,
				     .what = "two threads on one CPU, futex hand-off" };
	modes[1] = (struct sw_mode){ .name = "local", .kind = SW_LOCAL,
				     .what = "libwave's local FIFO, no agent" };
	n_modes = 2;
	for (size_t p = 0; p < sizeof(places) / sizeof(places[0]); p++)
		for (int ps = 0; ps < 2; ps++)
			for (int mb = 0; mb < 2; mb++)
				add_mode(places[p].name, places[p].kind, places[p].delay, ps, mb);
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

/* p50, p99 and stalls of @n samples (sorted in place). */
static void summarize(uint64_t *lat, unsigned n, struct sw_run *r)
{
	qsort(lat, n, sizeof(*lat), cmp_u64);
	r->p50_ns = (double)lat[n / 2];
	r->p99_ns = (double)lat[(size_t)n * 99 / 100];
	r->stalls = 0;
	for (unsigned i = 0; i < n; i++)
		r->stalls += lat[i] > STALL_NS;
}

static void spin_ns(uint64_t ns)
{
	uint64_t end = load_now_ns() + ns;

	while (load_now_ns() < end)
		;
}

/* ---- the peer: Linux's futex hand-off -------------------------------------- */

struct fpair {
	_Atomic uint32_t word[2]; /* 1: this thread may run */
	_Atomic uint64_t t0;      /* when the running thread handed over */
	_Atomic unsigned count;
	atomic_bool stop;
	uint64_t *lat;
	unsigned warm, n;
	uint64_t run_ns;
	int cpu;
};

struct fside {
	struct fpair *p;
	int i;
};

static void futex_call(_Atomic uint32_t *w, int op, uint32_t val)
{
	(void)syscall(SYS_futex, w, op, val, NULL, NULL, 0);
}

static void hand_over(struct fpair *p, int to)
{
	atomic_store(&p->word[to], 1);
	futex_call(&p->word[to], FUTEX_WAKE_PRIVATE, 1);
}

static void *futex_side(void *arg)
{
	struct fside *me = arg;
	struct fpair *p = me->p;

	if (bsched_pin(p->cpu) < 0)
		atomic_store(&p->stop, true);
	for (;;) {
		while (atomic_load(&p->word[me->i]) == 0)
			futex_call(&p->word[me->i], FUTEX_WAIT_PRIVATE, 0);
		uint64_t t1 = load_now_ns();
		atomic_store(&p->word[me->i], 0);
		if (atomic_load(&p->stop)) {
			hand_over(p, 1 - me->i);
			return NULL;
		}
		unsigned k = atomic_fetch_add(&p->count, 1);
		if (k >= p->warm)
			p->lat[k - p->warm] = t1 - atomic_load(&p->t0);
		if (k + 1 >= p->warm + p->n)
			atomic_store(&p->stop, true);
		spin_ns(p->run_ns);
		atomic_store(&p->t0, load_now_ns());
		hand_over(p, 1 - me->i);
	}
}

static int run_linux(const struct sw_args *a, uint64_t *lat, unsigned warm, struct sw_run *r)
{
	struct fpair p = { .lat = lat, .warm = warm, .n = a->switches,
			   .run_ns = (uint64_t)a->run_us * 1000, .cpu = a->o.worker_cpu };
	struct fside side[2] = { { &p, 0 }, { &p, 1 } };
	pthread_t t[2];

	for (int i = 0; i < 2; i++)
		if (pthread_create(&t[i], NULL, futex_side, &side[i]) != 0)
			return -EAGAIN; /* the first one waits for ever: cannot happen */
	atomic_store(&p.t0, load_now_ns());
	hand_over(&p, 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	if (atomic_load(&p.count) < warm + a->switches)
		return -EIO;
	summarize(lat, a->switches, r);
	r->prestaged = r->mailboxed = 0;
	return 0;
}

/* ---- libwave ----------------------------------------------------------------- */

/* The next task on CPU 0, waiting (polling) for it. */
static int next_task(struct wave_sched *s, uint64_t deadline, struct wave_sched_grant *g)
{
	int ret;

	while ((ret = wave_sched_next(s, 0, g)) == 0)
		if (load_now_ns() > deadline)
			return -ETIMEDOUT;
	return ret < 0 ? ret : 0;
}

/* Two tasks take turns on CPU 0, @warm + a->switches times. */
static int switch_loop(struct wave_sched *s, const struct sw_args *a, uint64_t *lat,
		       unsigned warm, unsigned *prestaged)
{
	uint64_t deadline = load_now_ns() + 10000000000ull +
			    (uint64_t)(warm + a->switches) * (a->run_us + 1000) * 1000;
	struct wave_sched_grant g;
	int ret;

	for (uint64_t id = 1; id <= 2; id++)
		if ((ret = wave_sched_task_new(s, id, NULL)) < 0)
			return ret;
	if ((ret = next_task(s, deadline, &g)) < 0)
		return ret;
	*prestaged = 0;
	for (unsigned k = 0; k < warm + a->switches; k++) {
		spin_ns((uint64_t)a->run_us * 1000);
		uint64_t t0 = load_now_ns();
		if ((ret = wave_sched_task_yield(s, g.task)) < 0 ||
		    (ret = next_task(s, deadline, &g)) < 0)
			return ret;
		uint64_t t1 = load_now_ns();
		if (k >= warm) {
			lat[k - warm] = t1 - t0;
			*prestaged += g.prestaged;
		}
	}
	return 0;
}

static int run_wave(const struct sw_args *a, const struct sw_mode *m, const char *uri,
		    uint64_t *lat, unsigned warm, struct sw_run *r)
{
	struct wave_sched_host_stats st;
	struct wave_chan_opts copts;
	struct wave_host_opts hopts;
	struct wave_sched_opts so;
	struct wave_sched *s;
	struct wave_error err;
	unsigned prestaged = 0;
	int ret;

	wave_chan_opts_init(&copts);
	copts.delay_ns = m->delay_ns;
	wave_host_opts_init(&hopts);
	hopts.heartbeat_timeout_ms = HEARTBEAT_TIMEOUT_MS;
	hopts.chan = &copts;
	wave_sched_opts_init(&so);
	so.host = &hopts;
	so.no_mailboxes = !m->mbox;
	if ((ret = bsched_pin(a->o.worker_cpu)) < 0)
		return ret;
	ret = wave_sched_create(uri, &so, &s, &err);
	if (ret < 0) {
		fprintf(stderr, "wave-bench-sched switch: %s: %s\n", wave_strerror(ret), err.text);
		return ret;
	}
	if (uri)
		ret = bsched_wait_for_agent(s);
	if (ret == 0)
		ret = switch_loop(s, a, lat, warm, &prestaged);
	if (ret == 0 && wave_sched_host_stats(s, &st) == 0) {
		/* A run the local FIFO decided any part of is not this mode's. */
		if (uri && (st.fallbacks || st.fallback_runs)) {
			fprintf(stderr, "wave-bench-sched switch: the agent lost control\n");
			ret = -EPROTO;
		}
		r->mailboxed = st.committed ? (double)st.mailboxed / (double)st.committed : 0;
	}
	wave_sched_destroy(s);
	if (ret == 0) {
		summarize(lat, a->switches, r);
		r->prestaged = (double)prestaged / a->switches;
	}
	return ret;
}

static int run_mode(const struct sw_args *a, const struct sw_mode *m, struct sw_run *r)
{
	unsigned warm = a->switches / 10 + 100;
	uint64_t *lat = calloc(warm + a->switches, sizeof(*lat));
	struct bsched_mode bm = { m->name, m->what, m->place, m->delay_ns, m->prestage };
	const int cpus[] = { a->o.worker_cpu, a->o.agent_cpu };
	const pid_t self = getpid();
	struct bench_watch w;
	struct bench_agentd ar;
	int ret;

	if (!lat)
		return -ENOMEM;
	/* This process's threads (the tasks, the host, an on-host agent) and
	 * the hypervisor's steal on both CPUs: an offloaded agent's own
	 * losses show as stalls. */
	bench_watch_begin(&w, &self, 1, cpus, a->o.agent_cpu == a->o.worker_cpu ? 1 : 2);
	if (m->kind == SW_LINUX) {
		ret = run_linux(a, lat, warm, r);
	} else if (m->kind == SW_LOCAL) {
		ret = run_wave(a, m, NULL, lat, warm, r);
	} else if ((ret = bsched_agent_start(&ar, &a->o, &bm)) == 0) {
		ret = run_wave(a, m, ar.uri, lat, warm, r);
		bench_agentd_stop(&ar, ret < 0);
	}
	r->offcpu = bench_watch_end(&w);
	free(lat);
	return ret;
}

/* ---- the command ------------------------------------------------------------- */

#define MED(runs, n, field) \
	bench_median_field(runs, sizeof(struct sw_run), n, offsetof(struct sw_run, field))

static void print_mode(const struct sw_args *a, const struct sw_mode *m, const struct sw_run *all,
		       unsigned n_all)
{
	unsigned stalls = 0, n = 0, dropped;
	const char *ps = m->kind != SW_AGENT ? "-" : m->prestage ? "on" : "off";
	const char *mb = m->kind != SW_AGENT ? "-" : m->mbox ? "on" : "off";
	double share[MAX_RUNS];
	struct sw_run runs[MAX_RUNS];
	bool keep[MAX_RUNS];

	for (unsigned i = 0; i < n_all; i++) {
		stalls += all[i].stalls;
		share[i] = all[i].offcpu;
	}
	bool conclusive = bench_offcpu_select(share, n_all, a->max_offcpu, keep, &dropped);
	for (unsigned i = 0; i < n_all; i++)
		if (keep[i])
			runs[n++] = all[i];
	if (a->o.json) {
		printf("{\"mode\":\"%s\",\"delay_ns\":%u,\"prestage\":%s,\"mailboxes\":%s,"
		       "\"p50_ns\":%.0f,\"p99_ns\":%.0f,\"prestaged\":%.3f,\"mailboxed\":%.3f,"
		       "\"stalls\":%u,\"switches\":%u,\"runs\":%u,\"runs_kept\":%u,"
		       "\"conclusive\":%s}\n",
		       m->name, m->delay_ns, m->kind != SW_AGENT ? "null" : m->prestage ? "true" : "false",
		       m->kind != SW_AGENT ? "null" : m->mbox ? "true" : "false",
		       MED(runs, n, p50_ns), MED(runs, n, p99_ns), MED(runs, n, prestaged),
		       MED(runs, n, mailboxed), stalls, a->switches, n_all, n,
		       conclusive ? "true" : "false");
		return;
	}
	printf("%-18s %6u %8s %9s %9.0f %9.0f %10.0f%% %10.0f%% %7u %3u/%-3u%s\n", m->name,
	       m->delay_ns, ps, mb, MED(runs, n, p50_ns), MED(runs, n, p99_ns),
	       100 * MED(runs, n, prestaged), 100 * MED(runs, n, mailboxed), stalls, n, n_all,
	       conclusive ? "" : "  (all runs disturbed: NOT CONCLUSIVE)");
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: wave-bench-sched switch [options]\n"
		"\n"
		"Two always-runnable tasks take turns on one worker CPU; each runs, then\n"
		"yields. Prints the time from a task stopping to the next one running on\n"
		"that CPU (p50, p99), per scheduling mode.\n"
		"\n"
		"  --switches N   measured switches per run (default 20000; a tenth more\n"
		"                 warm up first)\n"
		"  --runs N       runs of each mode, interleaved; medians (default 3, max %d)\n"
		"  --run-us US    how long each task runs before it yields (default 20)\n"
		"  --modes LIST   modes to run, comma separated (default all)\n"
		"  --max-offcpu P leave out of the medians every run that lost more than P%%\n"
		"                 of its time to other tasks or the hypervisor (default 5)\n"
		"  --json         one JSON object per mode\n"
		"  --quick        a smoke test: small, checks that every switch happens\n"
		"\n"
		"Modes: linux, local, and <place>-<np|ps>-<ring|mbox> for the places\n"
		"onhost, offload, off-1us, off-2us (see bench_switch.c).\n",
		MAX_RUNS);
}

static int parse(int argc, char **argv, struct sw_args *a)
{
	static const struct option opts[] = {
		{ "switches", required_argument, NULL, 's' }, { "runs", required_argument, NULL, 'r' },
		{ "run-us", required_argument, NULL, 'u' },   { "modes", required_argument, NULL, 'm' },
		{ "json", no_argument, NULL, 'j' },	      { "quick", no_argument, NULL, 'q' },
		{ "max-offcpu", required_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },	      { NULL, 0, NULL, 0 },
	};
	char *end;
	long v;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
		case 'r':
		case 'u':
			v = strtol(optarg, &end, 10);
			if (*end || v < 1 || v > 10000000 || (c == 'r' && v > MAX_RUNS))
				return -1;
			*(c == 's' ? &a->switches : c == 'r' ? &a->runs : &a->run_us) = (unsigned)v;
			break;
		case 'm':
			a->only = optarg;
			break;
		case 'D':
			if (bench_offcpu_parse(optarg, &a->max_offcpu) < 0)
				return -1;
			break;
		case 'j':
			a->o.json = true;
			break;
		case 'q':
			a->quick = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			return -1;
		}
	}
	return optind == argc ? 0 : -1;
}

int bswitch_main(int argc, char **argv)
{
	struct sw_args a = { .o = { .worker_cpu = 0, .agent_cpu = 1, .policy = "fifo" },
			     .switches = 20000, .runs = 3, .run_us = 20,
			     .max_offcpu = BENCH_OFFCPU_MAX_DEFAULT };
	static struct sw_run runs[MAX_MODES][MAX_RUNS];
	unsigned done[MAX_MODES] = { 0 };
	cpu_set_t set;
	int status = 0, ret;

	make_modes();
	if (parse(argc, argv, &a) < 0) {
		usage(stderr);
		return 2;
	}
	if (a.quick) {
		a.switches = 500;
		a.runs = 1;
	}
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) < 2)
		a.o.agent_cpu = a.o.worker_cpu; /* one CPU: everything shares it */
	if (!a.o.json)
		printf("wave-bench-sched switch: %u switches per run, tasks run %u us each;"
		       " tasks on CPU %d, agent on CPU %d;\nmedians of %u runs; stalls: switches"
		       " over %u us (the machine took the CPU away), all runs;\nkept: runs that"
		       " lost at most %.0f%% of their time to other tasks or the hypervisor\n\n",
		       a.switches, a.run_us, a.o.worker_cpu, a.o.agent_cpu, a.runs,
		       STALL_NS / 1000, 100 * a.max_offcpu);
	/* Interleaved: a noisy moment of the machine hits every mode alike. */
	for (unsigned r = 0; r < a.runs; r++)
		for (unsigned m = 0; m < n_modes; m++) {
			if (!bsched_wanted(a.only, modes[m].name))
				continue;
			ret = run_mode(&a, &modes[m], &runs[m][done[m]]);
			if (ret < 0) {
				fprintf(stderr, "wave-bench-sched switch: %s: %s\n", modes[m].name,
					strerror(-ret));
				status = 1;
				continue;
			}
			done[m]++;
		}
	if (!a.o.json)
		printf("%-18s %6s %8s %9s %9s %9s %11s %11s %7s %7s\n", "mode", "delay", "prestage",
		       "mailboxes", "p50 ns", "p99 ns", "prestaged", "mailboxed", "stalls", "kept");
	for (unsigned m = 0; m < n_modes; m++)
		if (done[m])
			print_mode(&a, &modes[m], runs[m], done[m]);
	return status;
}
