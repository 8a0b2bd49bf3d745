/* SPDX-License-Identifier: MIT */
/*
 * wave-example-threads: real pthreads scheduled by an agent. N threads
 * share M managed CPUs (default 8 over 1): each thread attaches itself
 * (wave_sched_thread_attach()), then works in steps, checking at each step
 * whether the policy wants its CPU back (wave_sched_thread_check()), and
 * yielding after each unit of work. Only the threads holding a CPU run;
 * the others are parked on a futex. Every unit of work prints a line, so
 * the policy shows: FIFO order with sched_fifo, time slices with
 * sched_shinjuku (--tick-us).
 *
 *   wave-example-threads [--agent URI | --embedded PLUGIN] [--threads N]
 *                        [--cpus M] [--units K] [--unit-us U] [--tick-us T]
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

static struct wave_sched *S;
static unsigned units = 3, unit_us = 300;
static pthread_mutex_t print_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned finished; /* threads that did all their units; under print_lock */

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

static void *thread_main(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	struct wave_sched_thread *t;

	if (wave_sched_thread_attach(S, id, 0, &t) < 0)
		return NULL; /* not counted as finished: main() fails */
	for (unsigned k = 1; k <= units; k++) {
		uint64_t left = (uint64_t)unit_us * 1000u, ran = 0;

		while (left) {
			uint64_t t0 = now_ns(), step;

			/* Only the threads holding a CPU get here. */
			while (now_ns() - t0 < 20000)
				;
			step = now_ns() - t0;
			ran += step;
			left = step >= left ? 0 : left - step;
			if (left && wave_sched_thread_check(t) == 1) {
				say(t, id, "preempted in", k, ran);
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

static int embedded_start(struct embedded *e, const char *plugin)
{
	char text[512];
	struct wave_error err;
	int ret;

	snprintf(e->uri, sizeof(e->uri), "shm:///tmp/wave-threads-%d.sock", (int)getpid());
	snprintf(text, sizeof(text),
		 "{\"listen\": [\"%s\"], \"domains\": {\"sched\": {\"plugin\": \"%s\", "
		 "\"params\": {\"slice_us\": 200}}}}",
		 e->uri, plugin);
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
	unsigned n = 8, cpus = 1;
	struct wave_sched_opts o;
	struct wave_sched_host_stats st;
	struct embedded e = { 0 };
	struct wave_error err;
	pthread_t *thr;

	wave_sched_opts_init(&o);
	for (int i = 1; i + 1 < argc; i += 2) {
		const char *v = argv[i + 1];

		if (!strcmp(argv[i], "--agent"))
			uri = v;
		else if (!strcmp(argv[i], "--embedded"))
			plugin = v;
		else if (!strcmp(argv[i], "--threads"))
			n = (unsigned)atoi(v);
		else if (!strcmp(argv[i], "--cpus"))
			cpus = (unsigned)atoi(v);
		else if (!strcmp(argv[i], "--units"))
			units = (unsigned)atoi(v);
		else if (!strcmp(argv[i], "--unit-us"))
			unit_us = (unsigned)atoi(v);
		else if (!strcmp(argv[i], "--tick-us"))
			o.tick_us = (uint32_t)atoi(v);
		else
			argc = 0;
	}
	if (argc == 0 || n == 0 || cpus == 0 || units == 0) {
		fprintf(stderr, "usage: wave-example-threads [--agent URI | --embedded PLUGIN] "
				"[--threads N] [--cpus M] [--units K] [--unit-us U] [--tick-us T]\n");
		return 2;
	}
	if (plugin) {
		if (embedded_start(&e, plugin) < 0)
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
	free(thr);
	if (finished != n) {
		fprintf(stderr, "threads: only %u of %u threads finished\n", finished, n);
		return 1;
	}
	return 0;
}
