/* SPDX-License-Identifier: MIT */
/*
 * The agent of one benchmark run, wherever it runs: a thread of the
 * benchmark's own process (wave_agent_run(), "on-host"), or a wave-agentd
 * process (offloaded), either one listening on a shm:// socket in a fresh
 * temporary directory. Shared by wave-bench-sched and wave-bench-mem.
 */
#ifndef WAVE_BENCH_AGENTD_H
#define WAVE_BENCH_AGENTD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

struct wave_config;
struct wave_agent;

struct bench_agentd {
	char dir[64];
	char sock[96];
	char conf[96];
	char log[96];
	char uri[128];
	struct wave_config *cfg;
	struct wave_agent *a;
	pthread_t thr;
	int agent_cpu;
	pid_t pid;
};

/* Writes the agent's configuration (JSON) to @f, listening at @uri. */
typedef int (*bench_agentd_conf_fn)(FILE *f, const char *uri, void *arg);

/*
 * Starts an agent whose configuration @conf writes: on a thread of this
 * process pinned to @agent_cpu when @onhost, else the daemon @agentd (its
 * configuration pins it). @tag names the temporary directory. Returns 0 or
 * a negative errno; on failure nothing is left behind.
 */
int bench_agentd_start(struct bench_agentd *ar, const char *tag, int agent_cpu, bool onhost,
		       const char *agentd, bench_agentd_conf_fn conf, void *arg);
/* Stops it and removes its files; shows a failed daemon's log. */
void bench_agentd_stop(struct bench_agentd *ar, bool failed);
/* CPU time the agent has used so far, in ns (its thread, or every thread
 * of the daemon), or 0 when it cannot be read. */
uint64_t bench_agentd_cpu_ns(const struct bench_agentd *ar);

#endif /* WAVE_BENCH_AGENTD_H */
