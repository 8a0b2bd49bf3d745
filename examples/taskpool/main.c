/* SPDX-License-Identifier: MIT */
/*
 * wave-example-taskpool: run tasks on a taskpool whose dispatches are
 * decided by an agent, and print what ran where, in order.
 *
 *   wave-example-taskpool [--agent URI | --embedded PLUGIN] [--workers N]
 *                         [--tasks N] [--slices K] [--spin-us U] [--tick-us T]
 *                         [--delay-ns D] [--prestage 0|1] [--quiet]
 *
 * --agent URI        an agent already running (wave-agentd) at URI;
 * --embedded PLUGIN  the agent runs on a thread of this process (on-host
 *                    mode) with the sched plugin PLUGIN (found on
 *                    WAVE_PLUGIN_PATH or libwave's plugin directory);
 * neither            libwave's local FIFO decides;
 * --delay-ns D       emulate D ns of one-way distance on the host's channel
 *                    end (and, embedded, on the agent's: channel.delay_ns);
 * --prestage 0|1     embedded: the plugin's "prestage" parameter.
 * Each task has K * U µs of spinning to do; it yields after each U µs, or
 * earlier when the policy preempts it (a time-slice policy needs the host
 * to tick: --tick-us). Every run prints "cpu C: task T ran X us, yields |
 * preempted | finished"; the summary shows the transactions.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../example_args.h"
#include "taskpool.h"

#define PROG "wave-example-taskpool"

struct job {
	unsigned id;
	unsigned slices, done; /* slices run (voluntary or preempted) */
	uint64_t left_ns;      /* work left */
	unsigned spin_us;      /* work per voluntary slice */
};

static int quiet;
static pthread_mutex_t print_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One slice: spin up to spin_us of the work left, checking for
 * preemption like a cooperative runtime. */
static int job_run(struct taskpool_ctx *ctx, void *arg)
{
	struct job *j = arg;
	uint64_t start = now_ns(), want = (uint64_t)j->spin_us * 1000u, ran;
	int preempted = 0;

	if (want > j->left_ns)
		want = j->left_ns;
	while ((ran = now_ns() - start) < want && !(preempted = taskpool_should_yield(ctx)))
		;
	if (ran > j->left_ns)
		ran = j->left_ns;
	j->left_ns -= ran;
	j->done++;
	if (!quiet) {
		pthread_mutex_lock(&print_lock);
		printf("cpu %u: task %u ran %4llu us, %s\n", ctx->cpu, j->id,
		       (unsigned long long)(ran / 1000),
		       j->left_ns == 0 ? "finished" : preempted ? "preempted" : "yields");
		pthread_mutex_unlock(&print_lock);
	}
	return j->left_ns ? TASKPOOL_AGAIN : TASKPOOL_DONE;
}

struct embedded {
	struct wave_config *cfg;
	struct wave_agent *a;
	pthread_t thr;
	char sock[128];
	char uri[160];
};

static void *agent_thread(void *arg)
{
	struct embedded *e = arg;

	if (wave_agent_run(e->a) < 0)
		fprintf(stderr, "taskpool: the embedded agent failed\n");
	return NULL;
}

static int embedded_start(struct embedded *e, const char *plugin, uint64_t delay_ns,
			  int prestage)
{
	char text[512], params[64] = "{}";
	struct wave_error err;
	int ret;

	snprintf(e->sock, sizeof(e->sock), "/tmp/wave-taskpool-%d.sock", (int)getpid());
	snprintf(e->uri, sizeof(e->uri), "shm://%s", e->sock);
	if (prestage >= 0)
		snprintf(params, sizeof(params), "{\"prestage\": %s}", prestage ? "true" : "false");
	snprintf(text, sizeof(text),
		 "{\"listen\": [\"%s\"], \"channel\": {\"delay_ns\": %llu},"
		 " \"domains\": {\"sched\": {\"plugin\": \"%s\", \"params\": %s}}}",
		 e->uri, (unsigned long long)delay_ns, plugin, params);
	ret = wave_config_parse(text, strlen(text), NULL, &e->cfg, &err);
	if (ret == 0)
		ret = wave_agent_create(e->cfg, &e->a, &err);
	if (ret < 0) {
		fprintf(stderr, "taskpool: embedded agent: %s\n", err.text);
		wave_config_free(e->cfg);
		return ret;
	}
	return -pthread_create(&e->thr, NULL, agent_thread, e);
}

static void embedded_stop(struct embedded *e)
{
	wave_agent_stop(e->a);
	pthread_join(e->thr, NULL);
	wave_agent_destroy(e->a);
	wave_config_free(e->cfg);
}

static void usage(void)
{
	fprintf(stderr, "usage: wave-example-taskpool [--agent URI | --embedded PLUGIN] "
			"[--workers N] [--tasks N] [--slices K] [--spin-us U] [--tick-us T] "
			"[--delay-ns D] [--prestage 0|1] [--quiet]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *uri = NULL, *plugin = NULL;
	unsigned workers = 1, tasks = 8, slices = 3, spin_us = 200;
	struct wave_sched_host_stats st;
	struct taskpool_opts o = { 0 };
	struct wave_sched_opts so;
	struct wave_host_opts ho;
	struct wave_chan_opts co;
	uint64_t delay_ns = 0, t0;
	int prestage = -1;
	struct embedded e = { 0 };
	struct wave_error err;
	struct taskpool *p;
	struct job *jobs;
	int ret;

	wave_sched_opts_init(&so);
	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(argv[i], "--quiet")) {
			quiet = 1;
			continue;
		}
		if (!v)
			usage();
		if (!strcmp(argv[i], "--agent"))
			uri = v;
		else if (!strcmp(argv[i], "--embedded"))
			plugin = v;
		else if (!strcmp(argv[i], "--workers"))
			workers = (unsigned)example_uint(PROG, argv[i], v, 1, 1024);
		else if (!strcmp(argv[i], "--tasks"))
			tasks = (unsigned)example_uint(PROG, argv[i], v, 1, 10000000);
		else if (!strcmp(argv[i], "--slices"))
			slices = (unsigned)example_uint(PROG, argv[i], v, 1, 1000000);
		else if (!strcmp(argv[i], "--spin-us"))
			spin_us = (unsigned)example_uint(PROG, argv[i], v, 0, 1000000);
		else if (!strcmp(argv[i], "--tick-us"))
			so.tick_us = (uint32_t)example_uint(PROG, argv[i], v, 0, 10000000);
		else if (!strcmp(argv[i], "--delay-ns"))
			delay_ns = example_uint(PROG, argv[i], v, 0, 1000000000);
		else if (!strcmp(argv[i], "--prestage"))
			prestage = example_uint(PROG, argv[i], v, 0, 1) != 0;
		else
			usage();
		i++;
	}
	if (workers == 0 || tasks == 0 || slices == 0 || (uri && plugin))
		usage();
	if (plugin) {
		if (embedded_start(&e, plugin, delay_ns, prestage) < 0)
			return 1;
		uri = e.uri;
	}
	wave_host_opts_init(&ho);
	wave_chan_opts_init(&co);
	co.delay_ns = delay_ns; /* decisions reach the host that much later */
	ho.chan = &co;
	so.host = &ho;
	o.uri = uri;
	o.workers = workers;
	o.sched = &so;
	ret = taskpool_create(&o, &p, &err);
	if (ret < 0) {
		fprintf(stderr, "taskpool: %s: %s\n", wave_strerror(ret), err.text);
		return 1;
	}
	printf("taskpool: %u workers, %u tasks of %u slices, decided by %s\n", workers, tasks,
	       slices,
	       wave_sched_mode(taskpool_sched(p)) == WAVE_HOST_AGENT ? "the agent"
								   : "the local FIFO");
	t0 = now_ns();
	jobs = calloc(tasks, sizeof(*jobs));
	if (!jobs)
		return 1;
	for (unsigned i = 0; i < tasks; i++) {
		jobs[i] = (struct job){ i + 1, slices, 0, (uint64_t)slices * spin_us * 1000u,
					spin_us };
		if (taskpool_submit(p, job_run, &jobs[i], NULL) < 0) {
			fprintf(stderr, "taskpool: submit failed\n");
			return 1;
		}
	}
	taskpool_wait(p);
	wave_sched_host_stats(taskpool_sched(p), &st);
	taskpool_destroy(p);
	if (plugin)
		embedded_stop(&e);
	for (unsigned i = 0; i < tasks; i++)
		if (jobs[i].left_ns != 0) {
			fprintf(stderr, "taskpool: task %u did not finish\n", i + 1);
			return 1;
		}
	printf("done: %u tasks in %.1f ms; agent: %llu committed (%llu prestaged), %llu aborted, "
	       "%llu preempted; fallback ran %llu\n",
	       tasks, (double)(now_ns() - t0) / 1e6, (unsigned long long)st.committed, (unsigned long long)st.prestaged,
	       (unsigned long long)(st.aborted[1] + st.aborted[2] + st.aborted[3] +
				    st.aborted[4] + st.aborted[5]),
	       (unsigned long long)st.preempts, (unsigned long long)st.fallback_runs);
	for (unsigned r = 1; r < WAVE_SCHED_RESULT_COUNT; r++)
		if (st.aborted[r])
			printf("  aborted %s: %llu\n", wave_sched_result_name(r),
			       (unsigned long long)st.aborted[r]);
	free(jobs);
	return 0;
}
