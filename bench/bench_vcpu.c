/* SPDX-License-Identifier: MIT */
/*
 * wave-bench-vcpu: do the two CPUs the benchmarks use really run at once?
 *
 * Every libwave benchmark busy-polls on two CPUs (host and agent). On a
 * virtual machine the hypervisor may give two busy vCPUs less than two
 * physical cores: then each is taken off its core for milliseconds at a
 * time, and every figure of a two-sided benchmark (tails above all) says
 * more about the hypervisor than about the code. This probe tells.
 *
 * A thread pinned to each CPU reads CLOCK_MONOTONIC in a tight loop for
 * the given time and adds up the gaps between two reads longer than
 * 10 us: time the thread was not running (two vCPUs time-sliced on one
 * hardware thread). Between reads it runs a chain of dependent steps; the
 * steps per microsecond of time on the CPU fall by about half when the
 * two vCPUs are hyperthreads of one core. First one CPU alone (the other
 * idle), then both at once. On a machine whose CPUs run in parallel both
 * runs lose well under 1% and run at the same speed.
 *
 *   wave-bench-vcpu [--ms N] [--cpus A,B] [--json]
 *
 * Exit status: 0 (the figures are the result, whatever they are), 1 when
 * a thread cannot be pinned or started, 2 for bad usage, 77 when the
 * process may run on fewer than two CPUs (nothing to probe).
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A gap longer than this between two clock reads is time off the CPU. */
#define GAP_NS 10000u
/* Dependent steps between two clock reads (about a microsecond). */
#define STEPS 2000u

struct probe {
	int cpu;
	uint64_t run_ns;
	/* results */
	int err;
	uint64_t lost_ns, max_gap_ns, steps;
	unsigned gaps, gaps_1ms;
	double steps_per_us; /* dependent steps per microsecond on the CPU */
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *spin(void *arg)
{
	struct probe *p = arg;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(p->cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) < 0) {
		p->err = errno;
		return NULL;
	}
	uint64_t start = now_ns(), prev = start, end = start + p->run_ns, x = 0;
	while (prev < end) {
		for (unsigned i = 0; i < STEPS; i++)
			__asm__ volatile("" : "+r"(x)); /* one dependent step */
		uint64_t t = now_ns(), gap = t - prev;
		prev = t;
		p->steps += STEPS;
		if (gap <= GAP_NS)
			continue;
		p->gaps++;
		p->gaps_1ms += gap > 1000000u;
		p->lost_ns += gap;
		if (gap > p->max_gap_ns)
			p->max_gap_ns = gap;
	}
	if (prev - start > p->lost_ns)
		p->steps_per_us = (double)p->steps * 1e3 / (double)(prev - start - p->lost_ns);
	return NULL;
}

/* Runs a probe on each of @n CPUs at once. Returns 0 or an errno. */
static int run(struct probe *p, int n)
{
	pthread_t thr[2];
	int ret = 0, started = 0;

	for (; started < n; started++)
		if ((ret = pthread_create(&thr[started], NULL, spin, &p[started])) != 0)
			break;
	for (int i = 0; i < started; i++)
		pthread_join(thr[i], NULL);
	for (int i = 0; !ret && i < n; i++)
		ret = p[i].err;
	return ret;
}

static void report(const char *what, const struct probe *p, bool json)
{
	double lost = 100.0 * (double)p->lost_ns / (double)p->run_ns;

	if (json)
		printf("{\"run\":\"%s\",\"cpu\":%d,\"ms\":%llu,\"lost_pct\":%.2f,\"gaps\":%u,"
		       "\"gaps_over_1ms\":%u,\"max_gap_us\":%.1f,\"steps_per_us\":%.0f}\n",
		       what, p->cpu, (unsigned long long)(p->run_ns / 1000000), lost, p->gaps,
		       p->gaps_1ms, (double)p->max_gap_ns / 1e3, p->steps_per_us);
	else
		printf("%-10s %4d %10.2f %10u %12u %12.1f %12.0f\n", what, p->cpu, lost, p->gaps,
		       p->gaps_1ms, (double)p->max_gap_ns / 1e3, p->steps_per_us);
}

static void usage(FILE *f)
{
	fputs("usage: wave-bench-vcpu [--ms N] [--cpus A,B] [--json]\n"
	      "\n"
	      "Spins on CPU A alone, then on A and B at once, and reports the time\n"
	      "each spinning thread lost off its CPU (clock gaps over 10 us) and its\n"
	      "speed on the CPU (dependent steps per us). On a virtual machine whose\n"
	      "two vCPUs share one physical core, both-at-once loses about half its\n"
	      "time (one hardware thread) or half its speed (hyperthreads of one\n"
	      "core); then two-sided benchmarks measure the hypervisor.\n"
	      "\n"
	      "  --ms N      length of each run in ms (default 3000)\n"
	      "  --cpus A,B  the two CPUs (default 0,1, the benchmarks' pair)\n"
	      "  --json      one JSON object per CPU per run\n",
	      f);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ms", required_argument, NULL, 'm' }, { "cpus", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },     { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long ms = 3000;
	int a = 0, b = 1, c, ret;
	bool json = false;
	char *end;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			ms = strtoul(optarg, &end, 10);
			if (*end || ms == 0 || ms > 600000) {
				fprintf(stderr, "wave-bench-vcpu: --ms takes 1..600000\n");
				return 2;
			}
			break;
		case 'c':
			if (sscanf(optarg, "%d,%d%c", &a, &b, &(char){ 0 }) != 2 || a < 0 || b < 0 ||
			    a == b || a >= CPU_SETSIZE || b >= CPU_SETSIZE) {
				fprintf(stderr, "wave-bench-vcpu: --cpus takes two different CPUs, A,B\n");
				return 2;
			}
			break;
		case 'j': json = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	cpu_set_t allowed;
	if (sched_getaffinity(0, sizeof(allowed), &allowed) == 0 && CPU_COUNT(&allowed) < 2) {
		fprintf(stderr, "wave-bench-vcpu: this process may run on one CPU only: nothing to probe\n");
		return 77;
	}
	struct probe alone = { .cpu = a, .run_ns = ms * 1000000u };
	struct probe both[2] = { { .cpu = a, .run_ns = ms * 1000000u },
				 { .cpu = b, .run_ns = ms * 1000000u } };
	if ((ret = run(&alone, 1)) != 0 || (ret = run(both, 2)) != 0) {
		fprintf(stderr, "wave-bench-vcpu: cannot spin on CPUs %d and %d: %s\n", a, b,
			strerror(ret));
		return 1;
	}
	if (!json)
		printf("%-10s %4s %10s %10s %12s %12s %12s\n", "run", "cpu", "lost %", "gaps",
		       "gaps > 1ms", "max gap us", "steps/us");
	report("alone", &alone, json);
	report("both", &both[0], json);
	report("both", &both[1], json);
	return 0;
}
