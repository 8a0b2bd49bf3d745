/* SPDX-License-Identifier: MIT */
/*
 * wave-bench-sched: the scheduling benchmark's shared declarations. Each
 * mode runs one workload (sched_load.h) to completion and fills in every
 * request's completion time; bench_sched.c sweeps loads and prints.
 */
#ifndef WAVE_BENCH_SCHED_H
#define WAVE_BENCH_SCHED_H

#include <stdbool.h>
#include <stdint.h>

#include "sched_load.h"

struct bsched_opts {
	int worker_cpu;    /* where the requests run */
	int agent_cpu;     /* where the decisions are made (or Linux's dispatcher runs) */
	unsigned threads;  /* linux mode: threads in the pool */
	bool json;
};

/* Pins the calling thread to @cpu. Returns 0 or -errno. */
int bsched_pin(int cpu);
/* A generous bound on one run (the work at full speed, ten times over, plus
 * ten seconds): only to catch a hang, never to judge a result. */
uint64_t bsched_run_timeout_ns(const struct bsched_opts *o, const struct load *l);

/* The modes. Each returns 0, or a negative errno when the run could not
 * be made (requests left unfinished are not an error: they show). */
int bsched_run_linux(const struct bsched_opts *o, struct load *l);

#endif /* WAVE_BENCH_SCHED_H */
