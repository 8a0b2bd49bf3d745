/* SPDX-License-Identifier: MIT */
/*
 * The scheduling benchmark's workload, shared by every mode that runs it
 * (Linux's own scheduler, and libwave on-host or offloaded):
 *
 *   - service times: bimodal, a Shinjuku-style mix (by default 99.5% of
 *     4 us and 0.5% of 10 ms), each a number of iterations of a spin loop
 *     calibrated once, so a preempted request still owes the same work;
 *   - arrivals: open loop, Poisson (exponential gaps) at an offered rate,
 *     every arrival time computed before the run starts;
 *   - latency: from the scheduled arrival time to completion, so time spent
 *     queued behind a late dispatcher counts against whoever was late.
 *
 * All times are CLOCK_MONOTONIC nanoseconds.
 */
#ifndef WAVE_BENCH_SCHED_LOAD_H
#define WAVE_BENCH_SCHED_LOAD_H

#include <stdbool.h>
#include <stdint.h>

struct load_cfg {
	double rate;       /* offered load, requests per second */
	unsigned n;        /* requests in one run */
	double short_us;   /* service time of a short request */
	double long_us;    /* service time of a long one */
	double long_frac;  /* share of long requests, 0..1 */
	uint64_t seed;
};

struct load_req {
	uint64_t at_ns;   /* scheduled arrival, relative to the run's start */
	uint64_t work;    /* spin iterations still owed */
	uint64_t done_ns; /* completion, absolute; 0 until done */
	bool is_long;
};

struct load {
	struct load_req *req;
	unsigned n;
	uint64_t start_ns; /* absolute time of arrival 0's origin */
	/* Time the worker was off its CPU while it should have been polling
	 * (libwave modes: gaps over LOAD_OFF_CPU_NS between two of its clock
	 * reads; a busy machine or the hypervisor took the CPU away). */
	uint64_t off_cpu_ns;
};

/* A libwave worker reads the clock at least every few microseconds. */
#define LOAD_OFF_CPU_NS 50000u

struct load_stats {
	unsigned done;          /* requests completed */
	double tput;            /* completed per second until the last arrival */
	double p50_us, p99_us, p999_us;
	double short_p99_us;    /* p99 of the short requests alone */
	double off_cpu_ms;      /* l->off_cpu_ns */
};

uint64_t load_now_ns(void);

/* Measures the spin loop's speed on the calling CPU (pinned), which
 * load_make() turns microseconds of work into; stores it in *@per_us
 * (iterations per microsecond) when non-NULL. A shared machine's speed
 * drifts: calibrate before each run. Returns 0 or -EIO. */
int load_calibrate(double *per_us);

/* Fills @l with @cfg's requests (arrival times and work). Returns 0 or
 * -EINVAL / -ENOMEM. Free with load_free(). */
int load_make(const struct load_cfg *cfg, struct load *l);
void load_free(struct load *l);

/* Spins through up to @work iterations, checking @stop (when non-NULL)
 * about every microsecond of work; returns the iterations still owed
 * (0 when done, more when @stop said to stop). */
uint64_t load_spin(uint64_t work, bool (*stop)(void *arg), void *arg);

/* Latency percentiles and throughput of a finished run. Throughput counts
 * the requests completed from l->start_ns to the last arrival, over that
 * time: a stable system's equals the offered load, an overloaded one's its
 * capacity. Returns 0, or -ENOMEM. */
int load_stats(const struct load *l, struct load_stats *st);

#endif /* WAVE_BENCH_SCHED_LOAD_H */
