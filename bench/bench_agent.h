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

/* What one record costs, measured apart from the sets (bench_agent_trace.c). */
struct bench_trace_cost {
	double put_ns;    /* (a) the producer's time per record */
	double work_ns;   /* its stand-in for the agent's work per event */
	double writer_ns; /* (b) the writer thread's CPU time per record */
	double bytes;     /* trace bytes per record */
	uint64_t puts;    /* records put */
	uint64_t lost;    /* of those, the ones the writer did not keep up with */
	uint64_t sink;    /* the stand-in's result, so that it runs */
};

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
	/* --record-sets: (e) in sets alternating recording off [0] and on [1]
	 * in one agent process, off on on off ..., @n_sets of each. */
	unsigned n_sets;
	double set_tput[2][BENCH_N_BATCHES][BENCH_MAX_REPS];
	double set_offcpu[2][BENCH_MAX_REPS]; /* each set's off-CPU share (bench_offcpu.h) */
	/* The recording sets' trace writer threads: their CPU time, and the
	 * records they were given (an event and its decision each). */
	double writer_ns;
	uint64_t records;
	/* Each set's events, and the agent loop's busy time in it: from each
	 * burst's arrival to its decisions' departure, its polls left out
	 * (agent_busy_count()); and the messages of those bursts. */
	double set_busy_ns[2][BENCH_MAX_REPS];
	uint64_t set_busy_msgs[2][BENCH_MAX_REPS], set_bursts[2][BENCH_MAX_REPS];
	uint64_t set_events[2][BENCH_MAX_REPS];
	uint64_t busy_dropped; /* bursts left out: the loop lost its CPU in them */
	struct bench_trace_cost cal; /* bench_trace_calibrate(), before the sets */
	char note[160];
};

/* What a run records: nothing, everything, or, in sets (--record-sets),
 * off and on in turn, turned at run time (wave_agent_record()), (e) only. */
enum bench_rec { BENCH_REC_OFF, BENCH_REC_ON, BENCH_REC_SETS };

/* One run in fresh processes (agent on cfg->agent_cpu, host on
 * cfg->host_cpu), appended to @res; recording as @rec says, the traces
 * in the run's temporary directory (removed after), their writer threads
 * on the host's CPU. With BENCH_REC_SETS, @sets sets of each. Every event
 * must get exactly one decision, in order, from the agent. Returns 0 or a
 * negative error. */
int bench_agent_run(const struct bench_cfg *cfg, const char *plugin_dir, enum bench_rec rec,
		    unsigned sets, struct bench_agent_result *res);

/* A thread on cfg->agent_cpu puts events and decisions into a trace whose
 * writer runs on cfg->host_cpu, and times the same loop without. 0 or a
 * negative error. */
int bench_trace_calibrate(const struct bench_cfg *cfg, struct bench_trace_cost *out);

#endif /* WAVE_BENCH_AGENT_H */
