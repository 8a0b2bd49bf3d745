/* SPDX-License-Identifier: MIT */
/*
 * wave-bench-sched-scale: the cost per event of the agent's sched state
 * model and a policy, as CPUs and tasks grow.
 *
 * A simulated host (lib/domains/sched/sched_sim.c) with 8, 64 or 256 CPUs and a
 * thousand, 100 thousand or a million tasks drives the real state model and
 * a real policy plugin (linked in statically) with encoded messages, with no
 * threads and no channel. Twice as many tasks as CPUs are runnable; the rest
 * are blocked. Each step picks a random CPU, and its task either yields, or
 * blocks while a random blocked task wakes up; every 16th step is a tick
 * of that CPU. The policy answers each event, the simulated host commits
 * each decision, and the outcome goes back: every message the agent
 * applies counts as one event. Two times per event, medians of the runs:
 *   agent  time inside wave_sched_state_apply() (decode, state, policy,
 *          its decisions checked and encoded), from a clock read around
 *          each call, whose cost (about 20-40 ns a pair) is included;
 *   total  wall time of the run over its events, which adds the simulated
 *          host and the workload's own bookkeeping.
 * Random wakeups over a million tasks miss the caches on every step, in
 * the host's arrays as in the agent's table; the agent's table is mapped
 * with huge pages when large. Memory per task is the state model's own
 * accounting (wave_sched_stats.bytes) over the tasks. Probes per lookup is
 * the mean number of table slots a lookup of a present task reads, at the
 * end: the data structure's own cost, apart from the caches.
 *
 *   wave-bench-sched-scale [--json] [--quick] [--runs N] [--steps N]
 *                          [--policy fifo|shinjuku]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <wave/wave.h>

#include "../examples/example_args.h"
#include "domains/sched/sched_impl.h"
#include "domains/sched/sched_sim.h"

const struct wave_plugin_desc *wave_plugin_entry_sched_fifo(void);
const struct wave_plugin_desc *wave_plugin_entry_sched_shinjuku(void);

#define MAX_RUNS 15
/* A billion steps take minutes a run: more is a typo, not a measurement. */
#define MAX_STEPS 1000000000u
#define PROG "wave-bench-sched-scale"

struct opts {
	bool json;
	bool quick;
	unsigned runs;
	unsigned steps;
	const char *policy;
};

struct workload {
	struct sim sim;
	uint64_t *blocked; /* ids of blocked tasks, in any order */
	uint64_t n_blocked;
	uint64_t rng;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static int die(const char *what, int err)
{
	fprintf(stderr, "wave-bench-sched-scale: %s: %s\n", what, wave_strerror(err));
	exit(1);
}

/* Every task exists; 2 per CPU (at most all) runnable, the rest blocked. */
static void populate(struct workload *w, uint32_t cpus, uint64_t tasks)
{
	uint64_t runnable = 2ull * cpus < tasks ? 2ull * cpus : tasks;
	int ret;

	if (!(w->blocked = malloc(tasks * sizeof(*w->blocked))))
		die("malloc", -ENOMEM);
	for (uint64_t id = 1; id <= tasks; id++) {
		if ((ret = sim_new(&w->sim, id, id <= runnable, 0, 0)) < 0)
			die("task_new", ret);
		if (id > runnable)
			w->blocked[w->n_blocked++] = id;
	}
}

/* One step on a random CPU; see the file comment. */
static void step(struct workload *w, uint64_t i)
{
	struct sim *s = &w->sim;
	uint64_t r = rnd(&w->rng);
	uint32_t cpu = (uint32_t)(r % s->n_cpus);
	uint64_t id = s->cpus[cpu].running, k;
	int ret = 0;

	s->now += 1000;
	if (!id)
		return;
	if (i % 16 == 0) {
		ret = sim_tick(s, cpu);
	} else if ((r >> 32) & 1 || !w->n_blocked) {
		ret = sim_yield(s, id);
	} else {
		k = (r >> 33) % w->n_blocked;
		uint64_t wake = w->blocked[k];
		w->blocked[k] = id; /* the blocking task takes the woken one's place */
		if ((ret = sim_block(s, id)) == 0)
			ret = sim_wakeup(s, wake);
	}
	if (ret < 0)
		die("step", ret);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct result {
	double ns_per_event[MAX_RUNS];
	double agent_ns[MAX_RUNS];
	double median, agent_median;
	double bytes_per_task;
	double probes;
	uint64_t events;
};

static void measure(const struct opts *o, struct wave_plugin *p, uint32_t cpus, uint64_t tasks,
		    struct result *res)
{
	struct workload w = { .rng = 0x9e3779b97f4a7c15u };
	struct wave_sched_stats st;
	int ret;

	if ((ret = sim_create(&w.sim, cpus, tasks, p, NULL)) < 0)
		die("sim_create", ret);
	populate(&w, cpus, tasks);
	for (uint64_t i = 0; i < o->steps / 4; i++) /* warm up: reach steady state */
		step(&w, i);
	for (unsigned run = 0; run < o->runs; run++) {
		uint64_t ev0 = w.sim.delivered, t0;

		/* Agent-only time first, then the same steps untimed for the total
		 * (the clock reads would otherwise count in it). */
		w.sim.time_agent = true;
		w.sim.agent_ns = 0;
		for (uint64_t i = 0; i < o->steps; i++)
			step(&w, i);
		w.sim.time_agent = false;
		res->agent_ns[run] = (double)w.sim.agent_ns / (double)(w.sim.delivered - ev0);
		ev0 = w.sim.delivered;
		t0 = now_ns();
		for (uint64_t i = 0; i < o->steps; i++)
			step(&w, i);
		res->events = w.sim.delivered - ev0;
		res->ns_per_event[run] = (double)(now_ns() - t0) / (double)res->events;
	}
	if (sim_check(&w.sim) != 0 || w.sim.apply_errors)
		die("consistency check", -EPROTO);
	wave_sched_state_stats(w.sim.st, &st);
	res->bytes_per_task = (double)st.bytes / (double)st.tasks;
	res->probes = u64map_mean_probes(&w.sim.st->tasks);
	qsort(res->ns_per_event, o->runs, sizeof(double), cmp_double);
	qsort(res->agent_ns, o->runs, sizeof(double), cmp_double);
	res->median = res->ns_per_event[o->runs / 2];
	res->agent_median = res->agent_ns[o->runs / 2];
	sim_destroy(&w.sim);
	free(w.blocked);
}

static void report(const struct opts *o, uint32_t cpus, uint64_t tasks, const struct result *r)
{
	if (o->json) {
		printf("{\"bench\":\"sched_scale\",\"policy\":\"%s\",\"cpus\":%u,\"tasks\":%llu,"
		       "\"runs\":%u,\"events_per_run\":%llu,\"agent_ns_per_event_median\":%.1f,"
		       "\"agent_ns_per_event_min\":%.1f,\"ns_per_event_median\":%.1f,"
		       "\"ns_per_event_min\":%.1f,\"ns_per_event_max\":%.1f,"
		       "\"bytes_per_task\":%.1f,\"probes_per_lookup\":%.2f}\n",
		       o->policy, cpus, (unsigned long long)tasks, o->runs,
		       (unsigned long long)r->events, r->agent_median, r->agent_ns[0], r->median,
		       r->ns_per_event[0], r->ns_per_event[o->runs - 1], r->bytes_per_task,
		       r->probes);
	} else {
		printf("%-9s %5u %9llu %10.1f %10.1f %10.1f %10.1f %11.1f %7.2f\n", o->policy,
		       cpus, (unsigned long long)tasks, r->agent_median, r->agent_ns[0], r->median,
		       r->ns_per_event[0], r->bytes_per_task, r->probes);
	}
	fflush(stdout);
}

static void usage(bool help)
{
	fprintf(help ? stdout : stderr,
		"usage: wave-bench-sched-scale [--json] [--quick] [--runs N (1..%d)] "
		"[--steps N (1..%u)] [--policy fifo|shinjuku]\n",
		MAX_RUNS, MAX_STEPS);
	exit(help ? 0 : 2);
}

static struct opts parse(int argc, char **argv)
{
	struct opts o = { .runs = 5, .steps = 200000, .policy = "fifo" };

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			o.json = true;
		else if (!strcmp(argv[i], "--quick"))
			o.quick = true;
		else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
			o.runs = example_uint(PROG, "--runs", argv[++i], 1, MAX_RUNS);
		else if (!strcmp(argv[i], "--steps") && i + 1 < argc)
			o.steps = example_uint(PROG, "--steps", argv[++i], 1, MAX_STEPS);
		else if (!strcmp(argv[i], "--policy") && i + 1 < argc)
			o.policy = argv[++i];
		else
			usage(!strcmp(argv[i], "--help"));
	}
	if (strcmp(o.policy, "fifo") && strcmp(o.policy, "shinjuku"))
		usage(false);
	if (o.quick) {
		o.runs = 3;
		o.steps = 2000;
	}
	return o;
}

int main(int argc, char **argv)
{
	static const uint32_t cpus[] = { 8, 64, 256 };
	static const uint64_t full[] = { 1000, 100000, 1000000 }, quick[] = { 1000, 10000 };
	struct opts o = parse(argc, argv);
	const uint64_t *tasks = o.quick ? quick : full;
	size_t n_tasks = o.quick ? 2 : 3;
	struct wave_plugin *p;
	struct result r;
	int ret;

	ret = wave_plugin_open_static(strcmp(o.policy, "fifo") ? wave_plugin_entry_sched_shinjuku
							       : wave_plugin_entry_sched_fifo,
				      &p, NULL);
	if (ret < 0)
		die("plugin", ret);
	if (!o.json)
		printf("%-9s %5s %9s %10s %10s %10s %10s %11s %7s\n", "policy", "cpus", "tasks",
		       "agent ns", "agent min", "total ns", "total min", "bytes/task", "probes");
	for (size_t c = 0; c < sizeof(cpus) / sizeof(cpus[0]); c++) {
		for (size_t t = 0; t < n_tasks; t++) {
			memset(&r, 0, sizeof(r));
			measure(&o, p, cpus[c], tasks[t], &r);
			report(&o, cpus[c], tasks[t], &r);
		}
	}
	wave_plugin_unload(p);
	return 0;
}
