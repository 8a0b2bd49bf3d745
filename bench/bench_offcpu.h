/* SPDX-License-Identifier: MIT */
/*
 * What the machine took from a benchmark run.
 *
 * On a shared virtual machine a run can lose its CPUs in two ways the
 * benchmark cannot see in its own figures: another task runs on a CPU the
 * run is pinned to (the kernel counts the time each task spent runnable but
 * waiting, "run_delay" in /proc/PID/task/TID/schedstat, in nanoseconds), or
 * the hypervisor runs another vCPU or guest on the physical core ("steal" in
 * /proc/stat, per CPU, in clock ticks of 10 ms). A run's off-CPU share is
 * the sum of both over the run's tasks and CPUs, divided by the run's wall
 * time: in a two-sided benchmark every round trip needs both sides, so
 * what either side loses, the run loses.
 *
 * A benchmark drops the runs whose share exceeds its threshold from its
 * medians, says how many it dropped, and when it had to keep disturbed runs
 * (every run was disturbed) says the figures are not conclusive.
 */
#ifndef WAVE_BENCH_OFFCPU_H
#define WAVE_BENCH_OFFCPU_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define BENCH_WATCH_MAX 4

/* The default threshold: a run that lost more than this share of its wall
 * time is not used for medians. */
#define BENCH_OFFCPU_MAX_DEFAULT 0.05

struct bench_watch {
	pid_t pids[BENCH_WATCH_MAX]; /* 0: the calling thread */
	unsigned n_pids;
	int cpus[BENCH_WATCH_MAX];
	unsigned n_cpus;
	uint64_t t0_ns, delay0_ns, steal0_ns;
};

/* Starts watching the tasks of @pids (every thread of each; 0 is the
 * calling thread) and the CPUs @cpus. At most BENCH_WATCH_MAX of each.
 * Returns 0 or -errno (-EINVAL for bad arguments). */
int bench_watch_begin(struct bench_watch *w, const pid_t *pids, unsigned n_pids, const int *cpus,
		      unsigned n_cpus);

/* The off-CPU share (0 = undisturbed, 0.1 = a tenth of the wall time lost)
 * since bench_watch_begin(). Call while the watched processes exist (alive,
 * or exited but not yet reaped: see bench_wait_unreaped()). A task that is
 * gone counts for what it had at the start. */
double bench_watch_end(const struct bench_watch *w);

/* Waits up to @timeout_ms for @pid to exit without reaping it, so that its
 * counters can still be read. Returns 0 when it exited, -ETIMEDOUT, or
 * -errno. Reap it afterwards with bench_wait(). */
int bench_wait_unreaped(pid_t pid, int timeout_ms);

/*
 * Which of @n runs to use: keep[i] is true for runs whose share[i] is at
 * most @max. When no run qualifies, every run is kept and false is
 * returned: the figures are then not conclusive. *dropped gets the count
 * of runs left out.
 */
bool bench_offcpu_select(const double *share, unsigned n, double max, bool *keep,
			 unsigned *dropped);

/* Parses a percentage in [0, 100] into a share in [0, 1]; 0 or -EINVAL. */
int bench_offcpu_parse(const char *s, double *max);

#endif /* WAVE_BENCH_OFFCPU_H */
