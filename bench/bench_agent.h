/* SPDX-License-Identifier: MIT */
/*
 * wave-bench-agent: what a decision costs when it goes through the agent
 * runtime and the session layer, next to a bare channel round trip.
 *
 *   bench_agent.c       options, rounds, the table and the JSON lines
 *   bench_agent_run.c   one run: an agent process (wave_agent_run() with the
 *                       bench_echo plugin) and a host process (a
 *                       wave_host session) pinned to two CPUs
 *   bench_echo.c        the plugin (a MODULE, wave_bench_echo.so)
 * The bare channel is measured by bench_wave_run() (bench_wave.c), the very
 * code of wave-bench-chan; timer, pinning and statistics are bench.h's.
 */
#ifndef WAVE_BENCH_AGENT_H
#define WAVE_BENCH_AGENT_H

#include "bench.h"

/* One side-by-side measurement of the agent path, over all runs; lives in
 * shared memory, where each run's host process appends to it. Latencies
 * are ONE WAY, like struct bench_result's (round trip / 2): the report
 * doubles them back into round trips. */
struct bench_agent_result {
	unsigned n_lat;
	struct bench_lat lat[BENCH_MAX_REPS];
	unsigned n_tput;
	double tput[BENCH_N_BATCHES][BENCH_MAX_REPS]; /* decided events per second */
	uint64_t events;    /* sent by the host, every run and phase */
	uint64_t decisions; /* from the agent, each checked against its event */
	/* The same agent driven by a host that is a bare channel end (the
	 * session's messages built by hand): what the agent loop alone adds,
	 * and what one agent core decides when the host costs nearly nothing. */
	unsigned n_raw_lat;
	struct bench_lat raw_lat[BENCH_MAX_REPS];
	unsigned n_raw_tput;
	double raw_tput[BENCH_N_BATCHES][BENCH_MAX_REPS];
	/* Each run's off-CPU share (bench_offcpu.h), the larger of its two
	 * hosts' phases. */
	unsigned n_off;
	double offcpu[BENCH_MAX_REPS];
	char note[160];
};

/* One run in fresh processes (agent on cfg->agent_cpu, host on
 * cfg->host_cpu), appended to @res; with @record, the agent records
 * decision traces (into the run's temporary directory, removed after).
 * Every event must get exactly one decision, in order, from the agent.
 * Returns 0 or a negative error. */
int bench_agent_run(const struct bench_cfg *cfg, const char *plugin_dir, bool record,
		    struct bench_agent_result *res);

#endif /* WAVE_BENCH_AGENT_H */
