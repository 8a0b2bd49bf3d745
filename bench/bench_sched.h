/* SPDX-License-Identifier: MIT */
/*
 * wave-bench-sched: the scheduling benchmark's shared declarations. Each
 * mode runs one workload (sched_load.h) to completion and fills in every
 * request's completion time; bench_sched.c sweeps loads and prints.
 */
#ifndef WAVE_BENCH_SCHED_H
#define WAVE_BENCH_SCHED_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "bench_agentd.h"
#include "sched_load.h"

struct bsched_opts {
	int worker_cpu;      /* where the requests run */
	int agent_cpu;       /* where the decisions are made (or Linux's dispatcher runs) */
	unsigned threads;    /* linux mode: threads in the pool */
	const char *policy;  /* libwave modes: "fifo" or "shinjuku" (plugin sched_<policy>) */
	unsigned slice_us;   /* the plugin's time slice (shinjuku) */
	unsigned tick_us;    /* how often the host ticks a running CPU */
	bool json;
};

enum bsched_kind { BSCHED_LINUX, BSCHED_ONHOST, BSCHED_OFFLOAD };

/* One column of the comparison. */
struct bsched_mode {
	const char *name;
	const char *what;
	enum bsched_kind kind;
	unsigned delay_ns; /* emulated one-way delay (offload) */
	bool prestage;     /* the plugin's "prestage" parameter */
};

/* The benchmark measures scheduling, not failure detection: a machine so
 * busy that one side stalls for a second must not turn a run into a
 * fallback run (which is then reported as failed). */
#define HEARTBEAT_TIMEOUT_MS 10000

/* Starts the agent of mode @m (kind BSCHED_ONHOST or BSCHED_OFFLOAD)
 * with plugin sched_<o->policy>, listening at ar->uri; stop it with
 * bench_agentd_stop(), which shows a failed daemon's log. */
int bsched_agent_start(struct bench_agentd *ar, const struct bsched_opts *o,
		       const struct bsched_mode *m);

/* Pins the calling thread to @cpu. Returns 0 or -errno. */
int bsched_pin(int cpu);
/* Whether mode @name is in @only, a comma-separated list (NULL: all are). */
bool bsched_wanted(const char *only, const char *name);
/* Polls @s until its agent is in control (at most a minute): 0 or
 * -ETIMEDOUT. */
struct wave_sched;
int bsched_wait_for_agent(struct wave_sched *s);
/* A generous bound on one run (the work at full speed, ten times over, plus
 * ten seconds): only to catch a hang, never to judge a result. */
uint64_t bsched_run_timeout_ns(const struct bsched_opts *o, const struct load *l);

/* The modes. Each returns 0, or a negative errno when the run could not
 * be made (requests left unfinished are not an error: they show). */
int bsched_run_linux(const struct bsched_opts *o, struct load *l);
int bsched_run_wave(const struct bsched_opts *o, const struct bsched_mode *m, struct load *l);

/* `wave-bench-sched switch ...` (bench_switch.c): @argv[0] is "switch". */
int bswitch_main(int argc, char **argv);
/* `wave-bench-sched preempt ...` (bench_preempt.c): @argv[0] is "preempt". */
int bpreempt_main(int argc, char **argv);

#endif /* WAVE_BENCH_SCHED_H */
