/* SPDX-License-Identifier: MIT */
/*
 * wave-bench-sched: a Shinjuku/Wave-style scheduling workload (bimodal
 * service times, open-loop Poisson arrivals computed up front, latency from
 * the scheduled arrival to completion) run under each scheduling mode at a
 * sweep of offered loads, printed side by side.
 *
 * CPUs: the requests always run on one worker CPU; the other CPU holds
 * whatever makes the decisions (Linux's dispatcher thread, or the agent).
 * Every mode gets the same two CPUs and the very same requests.
 */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_offcpu.h"
#include "bench_sched.h"
#include "bench_stat.h"

#define MAX_RATES 16
#define MAX_REPS 9

static const struct bsched_mode modes[] = {
	{ "linux", "Linux's scheduler, a thread per request", BSCHED_LINUX, 0, false },
	{ "onhost", "the plugin in an agent thread of the host process", BSCHED_ONHOST, 0, true },
	{ "offload", "the plugin in wave-agentd, over shm", BSCHED_OFFLOAD, 0, true },
	{ "off-1us", "offload, 1 us emulated one-way delay", BSCHED_OFFLOAD, 1000, true },
	{ "off-1us-np", "offload, 1 us delay, no prestaging", BSCHED_OFFLOAD, 1000, false },
	{ "off-2us", "offload, 2 us emulated one-way delay", BSCHED_OFFLOAD, 2000, true },
	{ "off-2us-np", "offload, 2 us delay, no prestaging", BSCHED_OFFLOAD, 2000, false },
};
#define N_MODES (sizeof(modes) / sizeof(modes[0]))

/* The plugins the libwave modes can run (plugin sched_<name>). */
static const char *const policies[] = { "fifo", "shinjuku" };
#define N_POLICIES (sizeof(policies) / sizeof(policies[0]))

static int run_mode(const struct bsched_opts *o, const struct bsched_mode *m, struct load *l)
{
	return m->kind == BSCHED_LINUX ? bsched_run_linux(o, l) : bsched_run_wave(o, m, l);
}

int bsched_pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) < 0 ? -errno : 0;
}

uint64_t bsched_run_timeout_ns(const struct bsched_opts *o, const struct load *l)
{
	(void)o;
	uint64_t span = l->n ? l->req[l->n - 1].at_ns : 0;
	return 10 * span + 10000000000ull;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: wave-bench-sched [options]\n"
		"       wave-bench-sched switch [options]   (switch latency: switch --help)\n"
		"       wave-bench-sched preempt [options]  (managed threads' slices: preempt --help)\n"
		"\n"
		"Runs a bimodal, open-loop Poisson request workload on one worker CPU\n"
		"under each scheduling mode, at each offered load, and prints\n"
		"throughput and latency percentiles (scheduled arrival to completion).\n"
		"\n"
		"  --rates LIST     offered loads, requests/s, ascending, comma separated\n"
		"                   (default 4000,8000,12000,16000)\n"
		"  --requests N     requests per run (default 20000)\n"
		"  --reps N         runs of each configuration, interleaved; medians\n"
		"                   are reported (default 3, max %d)\n"
		"  --short-us US    short service time (default 4)\n"
		"  --long-us US     long service time (default 10000)\n"
		"  --long-frac F    share of long requests (default 0.005)\n"
		"  --modes LIST     modes to run, comma separated (default all, below)\n"
		"  --policies LIST  libwave modes: fifo, shinjuku or both (default shinjuku)\n"
		"  --slice-us US    shinjuku's time slice (default 20)\n"
		"  --tick-us US     how often the host ticks a busy CPU (default 5)\n"
		"  --threads N      linux mode: threads in the pool (default 64)\n"
		"  --slo-us US      p99 objective of the summary (default 500)\n"
		"  --max-offcpu P   leave out of the medians every run that lost more than\n"
		"                   P%% of its time to the hypervisor or, in libwave modes,\n"
		"                   to other tasks (default 5; when every run of a row\n"
		"                   lost more, all are used and the row is marked)\n"
		"  --json           one JSON object per configuration\n"
		"  --quick          a smoke test: small, checks completion only\n"
		"  --help           this text\n"
		"\n"
		"Modes:\n",
		MAX_REPS);
	for (size_t m = 0; m < N_MODES; m++)
		fprintf(f, "  %-12s %s\n", modes[m].name, modes[m].what);
	fprintf(f, "\nExit status: 0; 1 when a run failed or left requests undone; 2 usage.\n");
}

struct args {
	struct bsched_opts o;
	struct load_cfg w;
	double rates[MAX_RATES];
	unsigned n_rates, reps;
	double slo_us;
	double max_offcpu; /* share of a run's time; see bench_offcpu.h */
	double speed_min, speed_max; /* spin loop calibrations, over all runs */
	bool want[N_MODES];
	bool want_policy[N_POLICIES];
	bool quick;
};

/* Sets the flags of @want (@n names in @names) from the list @s. */
static int parse_list(const char *s, const char *const *names, size_t n, bool *want)
{
	char buf[256], *save = NULL;

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	memset(want, 0, n * sizeof(*want));
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		size_t i = 0;
		while (i < n && strcmp(t, names[i]) != 0)
			i++;
		if (i == n)
			return -1;
		want[i] = true;
	}
	return 0;
}


static int parse_rates(struct args *a, const char *s)
{
	char *end;

	a->n_rates = 0;
	for (;;) {
		if (a->n_rates == MAX_RATES)
			return -1;
		double r = strtod(s, &end);
		/* Ascending: the summary walks up the load to the SLO. */
		if (end == s || !(r > 0) || (a->n_rates && r <= a->rates[a->n_rates - 1]))
			return -1;
		a->rates[a->n_rates++] = r;
		if (*end == '\0')
			return 0;
		if (*end != ',')
			return -1;
		s = end + 1;
	}
}

static int num(const char *s, double lo, double hi, double *out)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || !(v >= lo && v <= hi))
		return -1;
	*out = v;
	return 0;
}

static int parse_args(int argc, char **argv, struct args *a)
{
	const char *mode_names[N_MODES];
	static const struct option opts[] = {
		{ "rates", required_argument, NULL, 'r' },  { "requests", required_argument, NULL, 'n' },
		{ "reps", required_argument, NULL, 'R' },   { "short-us", required_argument, NULL, 's' },
		{ "long-us", required_argument, NULL, 'l' }, { "long-frac", required_argument, NULL, 'f' },
		{ "threads", required_argument, NULL, 't' }, { "json", no_argument, NULL, 'j' },
		{ "modes", required_argument, NULL, 'm' },  { "policies", required_argument, NULL, 'p' },
		{ "slice-us", required_argument, NULL, 'S' }, { "tick-us", required_argument, NULL, 'T' },
		{ "slo-us", required_argument, NULL, 'O' },
		{ "max-offcpu", required_argument, NULL, 'D' },
		{ "quick", no_argument, NULL, 'q' },        { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	double v;
	int c, li = 0;

	for (size_t m = 0; m < N_MODES; m++)
		mode_names[m] = modes[m].name;
	while ((c = getopt_long(argc, argv, "", opts, &li)) != -1) {
		int bad = 0;
		switch (c) {
		case 'r': bad = parse_rates(a, optarg); break;
		case 'n': bad = num(optarg, 1, 1e8, &v); a->w.n = (unsigned)v; break;
		case 'R': bad = num(optarg, 1, MAX_REPS, &v); a->reps = (unsigned)v; break;
		case 's': bad = num(optarg, 0.01, 1e7, &a->w.short_us); break;
		case 'l': bad = num(optarg, 0.01, 1e7, &a->w.long_us); break;
		case 'f': bad = num(optarg, 0, 1, &a->w.long_frac); break;
		case 't': bad = num(optarg, 1, 4096, &v); a->o.threads = (unsigned)v; break;
		case 'm': bad = parse_list(optarg, mode_names, N_MODES, a->want); break;
		case 'p': bad = parse_list(optarg, policies, N_POLICIES, a->want_policy); break;
		case 'S': bad = num(optarg, 1, 1e7, &v); a->o.slice_us = (unsigned)v; break;
		case 'T': bad = num(optarg, 1, 1e6, &v); a->o.tick_us = (unsigned)v; break;
		case 'O': bad = num(optarg, 1, 1e9, &a->slo_us); break;
		case 'D': bad = bench_offcpu_parse(optarg, &a->max_offcpu); break;
		case 'j': a->o.json = true; break;
		case 'q': a->quick = true; break;
		case 'h': usage(stdout); exit(0);
		default: return -1;
		}
		if (bad) {
			fprintf(stderr, "wave-bench-sched: bad value for --%s: %s\n",
				opts[li].name, optarg);
			return -1;
		}
	}
	return optind == argc ? 0 : -1;
}

struct row {
	double tput[MAX_REPS], p50[MAX_REPS], p99[MAX_REPS], p999[MAX_REPS], sp99[MAX_REPS];
	double off[MAX_REPS];   /* worker off its CPU, ms */
	double share[MAX_REPS]; /* the run's off-CPU share (bench_offcpu.h) */
	unsigned runs, undone;
	/* Once printed: the medians of the runs kept, how many were left out
	 * as disturbed, and whether any run was undisturbed. */
	double med_tput, med_p99;
	unsigned dropped;
	bool conclusive;
};

/* The median of the values of @v (one per run) that @keep keeps. */
static double kept_median(const double *v, const bool *keep, unsigned n)
{
	double k[MAX_REPS];
	unsigned m = 0;

	for (unsigned i = 0; i < n; i++)
		if (keep[i])
			k[m++] = v[i];
	return m ? bench_median(k, m) : 0;
}

static void print_row(const struct args *a, const struct bsched_mode *m, const char *policy,
		      double rate, struct row *r)
{
	bool keep[MAX_REPS];

	r->conclusive = bench_offcpu_select(r->share, r->runs, a->max_offcpu, keep, &r->dropped);
	double tput = kept_median(r->tput, keep, r->runs), p50 = kept_median(r->p50, keep, r->runs);
	double p99 = kept_median(r->p99, keep, r->runs), p999 = kept_median(r->p999, keep, r->runs);
	double sp99 = kept_median(r->sp99, keep, r->runs), off = kept_median(r->off, keep, r->runs);
	unsigned kept = r->conclusive ? r->runs - r->dropped : r->runs;

	r->med_tput = tput;
	r->med_p99 = p99;
	if (a->o.json) {
		printf("{\"mode\":\"%s\",\"policy\":\"%s\",\"delay_ns\":%u,\"prestage\":%s,"
		       "\"offered_rps\":%.0f,\"tput_rps\":%.0f,\"p50_us\":%.1f,\"p99_us\":%.1f,"
		       "\"p999_us\":%.1f,\"short_p99_us\":%.1f,\"worker_off_cpu_ms\":%.1f,"
		       "\"runs\":%u,\"runs_kept\":%u,\"conclusive\":%s,\"undone\":%u}\n",
		       m->name, policy, m->delay_ns,
		       m->kind == BSCHED_LINUX ? "null" : m->prestage ? "true" : "false", rate, tput,
		       p50, p99, p999, sp99, off, r->runs, kept, r->conclusive ? "true" : "false",
		       r->undone);
		return;
	}
	printf("%-10s %-8s %6u %8s %10.0f %10.0f %10.1f %10.1f %10.1f %12.1f", m->name, policy,
	       m->delay_ns, m->kind == BSCHED_LINUX ? "-" : m->prestage ? "on" : "off", rate, tput,
	       p50, p99, p999, sp99);
	if (m->kind == BSCHED_LINUX)
		printf(" %10s", "-");
	else
		printf(" %10.1f", off);
	printf(" %3u/%-3u%s%s\n", kept, r->runs, r->conclusive ? "" : "  (all runs disturbed)",
	       r->undone ? "  (requests left undone)" : "");
}

/* One run. Every mode of a round gets the same requests (seed + round);
 * the spin loop is calibrated anew, so a request's work is its nominal
 * time at the CPU's speed of the moment. */
static int run_config(struct args *a, const struct bsched_mode *m, unsigned rep, double rate,
		      struct row *r)
{
	struct load_cfg w = a->w;
	struct load l;
	struct load_stats st;
	struct bench_watch watch;
	const int cpus[] = { a->o.worker_cpu, a->o.agent_cpu };
	double speed;
	int ret;

	w.rate = rate;
	w.seed += rep;
	if ((ret = load_calibrate(&speed)) < 0 || (ret = load_make(&w, &l)) < 0)
		return ret;
	if (speed < a->speed_min || a->speed_min == 0)
		a->speed_min = speed;
	if (speed > a->speed_max)
		a->speed_max = speed;
	/* Steal is what the hypervisor took in every mode; the worker's own
	 * gaps (libwave modes) also show what other tasks took. Linux's
	 * threads wait for each other by design, so their run delay is the
	 * workload's queueing, not a disturbance. */
	bench_watch_begin(&watch, NULL, 0, cpus, 2);
	uint64_t t0 = load_now_ns();
	ret = run_mode(&a->o, m, &l);
	double wall_ns = (double)(load_now_ns() - t0), steal = bench_watch_end(&watch);
	if (ret == 0)
		ret = load_stats(&l, &st);
	if (ret == 0) {
		double gaps = wall_ns > 0 ? (double)l.off_cpu_ns / wall_ns : 0;
		r->share[r->runs] = gaps > steal ? gaps : steal;
		r->tput[r->runs] = st.tput;
		r->p50[r->runs] = st.p50_us;
		r->p99[r->runs] = st.p99_us;
		r->p999[r->runs] = st.p999_us;
		r->sp99[r->runs] = st.short_p99_us;
		r->off[r->runs] = st.off_cpu_ms;
		r->runs++;
		r->undone += l.n - st.done;
	}
	load_free(&l);
	return ret;
}

static size_t mode_index(const char *name)
{
	size_t m = 0;

	while (m < N_MODES && strcmp(modes[m].name, name) != 0)
		m++;
	return m;
}

/* How far the CPU's speed moved between runs: on a shared virtual machine
 * a neighbour can slow the spin loop, and with it raise every run's load. */
static void print_speed(const struct args *a)
{
	double spread = a->speed_max > 0 ? 100 * (a->speed_max - a->speed_min) / a->speed_max : 0;

	if (a->o.json)
		printf("{\"summary\":\"cpu_speed\",\"iters_per_us_min\":%.0f,"
		       "\"iters_per_us_max\":%.0f,\"spread_pct\":%.1f}\n",
		       a->speed_min, a->speed_max, spread);
	else
		printf("\nspin loop calibrated before each run: %.0f to %.0f iterations/us"
		       " (%.1f%% apart)\n", a->speed_min, a->speed_max, spread);
}

/* What a mode sustains at the p99 objective: walking up the offered loads,
 * the throughput where the median p99 first crosses the objective,
 * interpolated linearly between the last load that met it and the first
 * that did not (the offered loads are a coarse grid; noise above the
 * crossing is not credited). The highest load's throughput when none
 * crossed; 0 when the lowest already missed. */
static double tput_at_slo(const struct args *a, const struct row *r)
{
	double slo = a->slo_us;

	for (unsigned i = 0; i < a->n_rates; i++) {
		if (!r[i].runs)
			return 0;
		bool met = !r[i].undone && r[i].med_p99 <= slo;
		if (met)
			continue;
		if (i == 0)
			return 0;
		const struct row *lo = &r[i - 1], *hi = &r[i];
		if (hi->undone || hi->med_p99 <= lo->med_p99)
			return lo->med_tput;
		double f = (slo - lo->med_p99) / (hi->med_p99 - lo->med_p99);
		return lo->med_tput + f * (hi->med_tput - lo->med_tput);
	}
	return a->n_rates ? r[a->n_rates - 1].med_tput : 0;
}

/* Whether every load of a mode had undisturbed runs to take medians of. */
static bool conclusive(const struct args *a, const struct row *r)
{
	for (unsigned i = 0; i < a->n_rates; i++)
		if (r[i].runs && !r[i].conclusive)
			return false;
	return true;
}

/* Each mode's throughput at the p99 objective, against on-host's (the
 * same plugin, no distance), and the targets judged on it. */
static void print_summary(const struct args *a, struct row (*rows)[N_MODES][MAX_RATES])
{
	size_t onhost = mode_index("onhost");

	if (!a->o.json)
		printf("\nthroughput at p99 <= %.0f us (interpolated where p99 crosses it), against on-host:\n",
		       a->slo_us);
	for (size_t p = 0; p < N_POLICIES; p++) {
		if (!a->want_policy[p])
			continue;
		double base = tput_at_slo(a, rows[p][onhost]);
		for (size_t m = 0; m < N_MODES; m++) {
			size_t pi = modes[m].kind == BSCHED_LINUX ? 0 : p;
			const char *pol = modes[m].kind == BSCHED_LINUX ? "linux" : policies[p];
			if (!a->want[m] || !rows[pi][m][0].runs)
				continue;
			double t = tput_at_slo(a, rows[pi][m]);
			if (a->o.json)
				printf("{\"summary\":\"tput_at_slo\",\"slo_us\":%.0f,\"mode\":\"%s\","
				       "\"policy\":\"%s\",\"tput_rps\":%.0f,\"vs_onhost_%s\":%.3f}\n",
				       a->slo_us, modes[m].name, pol, t, policies[p],
				       base > 0 ? t / base : 0);
			else if (base > 0)
				printf("  %-10s %-8s %10.0f/s   %6.1f%% of on-host %s\n", modes[m].name, pol,
				       t, 100 * t / base, policies[p]);
			else
				printf("  %-10s %-8s %10.0f/s   (no ratio: on-host %s met no load)\n",
				       modes[m].name, pol, t, policies[p]);
		}
		bool calm = conclusive(a, rows[p][onhost]);
		if (!a->o.json && base <= 0 && !calm)
			printf("  on-host %s missed p99 <= %.0f us even at %.0f/s, and every run of a "
			       "load lost more than %.0f%% of its time: the machine was disturbed, "
			       "figures NOT CONCLUSIVE (see wave-bench-vcpu)\n",
			       policies[p], a->slo_us, a->rates[0], 100 * a->max_offcpu);
		else if (!a->o.json && base <= 0)
			printf("  on-host %s missed p99 <= %.0f us even at %.0f/s in undisturbed runs: "
			       "offer lower --rates\n", policies[p], a->slo_us, a->rates[0]);
		if (a->o.json || base <= 0)
			continue;
		static const struct { const char *mode; double min; } targets[] = {
			{ "offload", 0.97 }, { "off-1us", 0.90 },
		};
		for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
			size_t m = mode_index(targets[i].mode);
			if (!a->want[m] || !rows[p][m][0].runs)
				continue;
			double r = tput_at_slo(a, rows[p][m]) / base;
			printf("  target: %s %s >= %.0f%% of on-host: %.1f%%  %s\n", targets[i].mode,
			       policies[p], 100 * targets[i].min, 100 * r,
			       !calm || !conclusive(a, rows[p][m])
				       ? "not conclusive: the machine was disturbed"
			       : r >= targets[i].min ? "met"
						     : "MISSED");
		}
	}
}

int main(int argc, char **argv)
{
	struct args a = {
		.o = { .worker_cpu = 0, .agent_cpu = 1, .threads = 64, .policy = "shinjuku",
		       .slice_us = 20, .tick_us = 5 },
		.w = { .n = 20000, .short_us = 4, .long_us = 10000, .long_frac = 0.005, .seed = 42 },
		.rates = { 4000, 8000, 12000, 16000 },
		.n_rates = 4,
		.reps = 3,
		.slo_us = 500,
		.max_offcpu = BENCH_OFFCPU_MAX_DEFAULT,
	};
	static struct row rows[N_POLICIES][N_MODES][MAX_RATES];
	cpu_set_t set;
	int status = 0, ret;

	if (argc > 1 && strcmp(argv[1], "switch") == 0)
		return bswitch_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "preempt") == 0)
		return bpreempt_main(argc - 1, argv + 1);
	for (size_t m = 0; m < N_MODES; m++)
		a.want[m] = true;
	a.want_policy[1] = true; /* shinjuku */
	if (parse_args(argc, argv, &a) < 0) {
		usage(stderr);
		return 2;
	}
	if (a.quick) {
		a.w.n = 2000;
		a.rates[0] = 2000;
		a.n_rates = 1;
		a.reps = 1;
	}
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) < 2)
		a.o.agent_cpu = a.o.worker_cpu; /* one CPU: everything shares it */
	if ((ret = bsched_pin(a.o.worker_cpu)) < 0) {
		fprintf(stderr, "wave-bench-sched: cannot pin to CPU %d: %s\n", a.o.worker_cpu,
			strerror(-ret));
		return 1;
	}
	if (!a.o.json) {
		printf("wave-bench-sched: %u requests per run, %.1f%% of %.0f us and %.1f%% of %.0f us,"
		       " Poisson arrivals\n",
		       a.w.n, 100 * (1 - a.w.long_frac), a.w.short_us, 100 * a.w.long_frac,
		       a.w.long_us);
		printf("requests run on CPU %d; decisions (or Linux's dispatcher) on CPU %d;"
		       " median of %u runs\n",
		       a.o.worker_cpu, a.o.agent_cpu, a.reps);
		printf("libwave modes: shinjuku's slice %u us, host tick %u us; off-CPU ms: time the\n"
		       "worker was taken off its CPU during the run (gaps over %u us between its\n"
		       "clock reads: the machine, not the scheduler); kept: runs used for the\n"
		       "medians, those that lost at most %.0f%% of their time to the hypervisor\n"
		       "(steal) or, in libwave modes, off the CPU\n\n",
		       a.o.slice_us, a.o.tick_us, LOAD_OFF_CPU_NS / 1000, 100 * a.max_offcpu);
	}
	/* Interleaved: every configuration once per round, so a noisy moment
	 * of the machine hits all of them alike. */
	for (unsigned rep = 0; rep < a.reps; rep++)
		for (unsigned i = 0; i < a.n_rates; i++)
			for (size_t m = 0; m < N_MODES; m++)
				for (size_t p = 0; p < N_POLICIES && a.want[m]; p++) {
					if (!a.want_policy[p])
						continue;
					a.o.policy = policies[p];
					ret = run_config(&a, &modes[m], rep, a.rates[i], &rows[p][m][i]);
					if (ret < 0) {
						fprintf(stderr, "wave-bench-sched: %s %s at %.0f/s: %s\n",
							modes[m].name, policies[p], a.rates[i],
							strerror(-ret));
						status = 1;
					}
					if (modes[m].kind == BSCHED_LINUX)
						break; /* no plugin: once is enough */
				}
	if (!a.o.json)
		printf("%-10s %-8s %6s %8s %10s %10s %10s %10s %10s %12s %10s %7s\n", "mode",
		       "policy", "delay", "prestage", "offered/s", "done/s", "p50 us", "p99 us",
		       "p99.9 us", "short p99 us", "off-CPU ms", "kept");
	for (size_t m = 0; m < N_MODES; m++)
		for (size_t p = 0; p < N_POLICIES; p++)
			for (unsigned i = 0; i < a.n_rates; i++) {
				struct row *r = &rows[p][m][i];
				if (!r->runs)
					continue;
				print_row(&a, &modes[m],
					  modes[m].kind == BSCHED_LINUX ? "linux" : policies[p],
					  a.rates[i], r);
				if (r->undone)
					status = 1;
			}
	print_speed(&a);
	print_summary(&a, rows);
	return status;
}
