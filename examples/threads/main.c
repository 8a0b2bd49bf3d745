/* SPDX-License-Identifier: MIT */
/*
 * wave-example-threads: real pthreads scheduled by an agent. N threads
 * share M managed CPUs (default 8 over 1): each thread attaches itself
 * (wave_sched_thread_attach()), then works in steps, checking at each step
 * whether the policy wants its CPU back (wave_sched_thread_check()), and
 * yielding after each unit of work. Only the threads holding a CPU run;
 * the others are parked on a futex. Every unit of work prints a line, so
 * the policy shows: FIFO order with sched_fifo, time slices with
 * sched_shinjuku (--slice-us, --tick-us). A preemption's line shows the
 * slice the thread got and how long the agent's PREEMPT took to stop it
 * (wave_sched_thread_preemption()); the medians of both close the run.
 *
 *   wave-example-threads [--agent URI | --embedded PLUGIN] [--threads N]
 *                        [--cpus M] [--units K] [--unit-us U] [--tick-us T]
 *                        [--slice-us S] [--step-us C]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <wave/wave.h>

#include "../example_args.h"

#define PROG "wave-example-threads"

static struct wave_sched *S;
static unsigned units = 3, unit_us = 300, step_us = 20;
static pthread_mutex_t print_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned finished; /* threads that did all their units; under print_lock */
/* Every preemption's slice and delay, in us, for the medians; under print_lock. */
#define MAX_SAMPLES 4096
static uint64_t slices[MAX_SAMPLES], delays[MAX_SAMPLES];
static unsigned n_slices, n_delays;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void say(struct wave_sched_thread *t, unsigned id, const char *what, unsigned k,
		uint64_t ran_ns)
{
	pthread_mutex_lock(&print_lock);
	printf("cpu %d: thread %u %s unit %u/%u (ran %llu us)\n", wave_sched_thread_cpu(t), id,
	       what, k, units, (unsigned long long)(ran_ns / 1000));
	pthread_mutex_unlock(&print_lock);
}

/* A preemption: the slice the thread had, and the agent's PREEMPT to its
 * stop (unknown when the channel's stamp was not believable). */
static void say_preempted(struct wave_sched_thread *t, unsigned id, unsigned k)
{
	struct wave_sched_preemption p;

	if (wave_sched_thread_preemption(t, &p) < 0)
		return;
	pthread_mutex_lock(&print_lock);
	printf("cpu %d: thread %u preempted in unit %u/%u (slice %llu us", wave_sched_thread_cpu(t),
	       id, k, units, (unsigned long long)(p.ran_ns / 1000));
	if (n_slices < MAX_SAMPLES)
		slices[n_slices++] = p.ran_ns / 1000;
	if (p.sent_ns) {
		printf("; PREEMPT to stop %llu us", (unsigned long long)(p.stopped_ns - p.sent_ns) / 1000);
		if (n_delays < MAX_SAMPLES)
			delays[n_delays++] = (p.stopped_ns - p.sent_ns) / 1000;
	}
	printf(")\n");
	pthread_mutex_unlock(&print_lock);
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

static uint64_t median(uint64_t *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return v[n / 2];
}

static void *thread_main(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	struct wave_sched_thread *t;
	int ret = wave_sched_thread_attach(S, id, 0, &t);

	if (ret < 0) {
		/* Not counted as finished: main() fails. */
		fprintf(stderr, "threads: thread %u cannot attach: %s\n", id, strerror(-ret));
		return NULL;
	}
	for (unsigned k = 1; k <= units; k++) {
		uint64_t left = (uint64_t)unit_us * 1000u, ran = 0;

		while (left) {
			uint64_t t0 = now_ns(), step;

			/* Only the threads holding a CPU get here. */
			while (now_ns() - t0 < step_us * 1000ull)
				;
			step = now_ns() - t0;
			ran += step;
			left = step >= left ? 0 : left - step;
			if (left && wave_sched_thread_check(t) == 1) {
				say_preempted(t, id, k);
				ran = 0;
			}
		}
		say(t, id, "finished", k, ran);
		if (k < units)
			wave_sched_thread_yield(t);
	}
	wave_sched_thread_detach(t);
	pthread_mutex_lock(&print_lock);
	finished++;
	pthread_mutex_unlock(&print_lock);
	return NULL;
}

struct embedded {
	struct wave_config *cfg;
	struct wave_agent *a;
	pthread_t thr;
	char uri[160];
};

static void *agent_thread(void *arg)
{
	struct embedded *e = arg;

	wave_agent_run(e->a);
	return NULL;
}

static int embedded_start(struct embedded *e, const char *plugin, unsigned slice_us)
{
	char text[512];
	struct wave_error err;
	int ret;

	snprintf(e->uri, sizeof(e->uri), "shm:///tmp/wave-threads-%d.sock", (int)getpid());
	snprintf(text, sizeof(text),
		 "{\"listen\": [\"%s\"], \"domains\": {\"sched\": {\"plugin\": \"%s\", "
		 "\"params\": {\"slice_us\": %u}}}}",
		 e->uri, plugin, slice_us);
	if (strcmp(plugin, "sched_shinjuku") != 0)
		snprintf(text, sizeof(text),
			 "{\"listen\": [\"%s\"], \"domains\": {\"sched\": {\"plugin\": \"%s\"}}}",
			 e->uri, plugin);
	ret = wave_config_parse(text, strlen(text), NULL, &e->cfg, &err);
	if (ret == 0)
		ret = wave_agent_create(e->cfg, &e->a, &err);
	if (ret < 0) {
		fprintf(stderr, "threads: embedded agent: %s\n", err.text);
		return ret;
	}
	return -pthread_create(&e->thr, NULL, agent_thread, e);
}

int main(int argc, char **argv)
{
	const char *uri = NULL, *plugin = NULL;
	unsigned n = 8, cpus = 1, slice_us = 200;
	struct wave_sched_opts o;
	struct wave_sched_host_stats st;
	struct embedded e = { 0 };
	struct wave_error err;
	pthread_t *thr;

	wave_sched_opts_init(&o);
	for (int i = 1; i < argc; i += 2) {
		const char *v = argv[i + 1];

		if (!v) {
			argc = 0; /* an option without its value */
			break;
		}
		if (!strcmp(argv[i], "--agent"))
			uri = v;
		else if (!strcmp(argv[i], "--embedded"))
			plugin = v;
		else if (!strcmp(argv[i], "--threads"))
			n = (unsigned)example_uint(PROG, argv[i], v, 1, 4096);
		else if (!strcmp(argv[i], "--cpus"))
			cpus = (unsigned)example_uint(PROG, argv[i], v, 1, WAVE_SCHED_MAX_CPUS);
		else if (!strcmp(argv[i], "--units"))
			units = (unsigned)example_uint(PROG, argv[i], v, 1, 1000000);
		else if (!strcmp(argv[i], "--unit-us"))
			unit_us = (unsigned)example_uint(PROG, argv[i], v, 0, 10000000);
		else if (!strcmp(argv[i], "--tick-us"))
			o.tick_us = (uint32_t)example_uint(PROG, argv[i], v, 0, 10000000);
		else if (!strcmp(argv[i], "--slice-us"))
			slice_us = (unsigned)example_uint(PROG, argv[i], v, 1, 10000000);
		else if (!strcmp(argv[i], "--step-us"))
			step_us = (unsigned)example_uint(PROG, argv[i], v, 1, 1000000);
		else
			argc = 0;
	}
	if (argc == 0 || n == 0 || cpus == 0 || units == 0 || slice_us == 0 || step_us == 0) {
		fprintf(stderr, "usage: wave-example-threads [--agent URI | --embedded PLUGIN] "
				"[--threads N] [--cpus M] [--units K] [--unit-us U] [--tick-us T] "
				"[--slice-us S (sched_shinjuku)] [--step-us C (work between checks)]\n");
		return 2;
	}
	if (plugin) {
		if (embedded_start(&e, plugin, slice_us) < 0)
			return 1;
		uri = e.uri;
	}
	o.n_cpus = cpus;
	if (wave_sched_create(uri, &o, &S, &err) < 0) {
		fprintf(stderr, "threads: %s\n", err.text);
		return 1;
	}
	printf("threads: %u threads over %u managed CPUs, decided by %s\n", n, cpus,
	       wave_sched_mode(S) == WAVE_HOST_AGENT ? "the agent" : "the local FIFO");
	thr = calloc(n, sizeof(*thr));
	for (unsigned i = 0; thr && i < n; i++)
		pthread_create(&thr[i], NULL, thread_main, (void *)(uintptr_t)(i + 1));
	for (unsigned i = 0; thr && i < n; i++)
		pthread_join(thr[i], NULL);
	wave_sched_host_stats(S, &st);
	wave_sched_destroy(S);
	if (plugin) {
		wave_agent_stop(e.a);
		pthread_join(e.thr, NULL);
		wave_agent_destroy(e.a);
		wave_config_free(e.cfg);
	}
	printf("done: agent committed %llu (%llu prestaged), preempted %llu; fallback ran %llu\n",
	       (unsigned long long)st.committed, (unsigned long long)st.prestaged,
	       (unsigned long long)st.preempts, (unsigned long long)st.fallback_runs);
	if (n_slices)
		printf("slices: %u preemptions, median %llu us; PREEMPT to stop: median %llu us\n",
		       n_slices, (unsigned long long)median(slices, n_slices),
		       (unsigned long long)(n_delays ? median(delays, n_delays) : 0));
	free(thr);
	if (finished != n) {
		fprintf(stderr, "threads: only %u of %u threads finished\n", finished, n);
		return 1;
	}
	return 0;
}
