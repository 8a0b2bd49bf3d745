/* SPDX-License-Identifier: MIT */
/*
 * The off-CPU share of a benchmark run: see bench_offcpu.h.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_offcpu.h"

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The second field of a schedstat file: nanoseconds runnable but waiting. */
static uint64_t read_delay(const char *path)
{
	unsigned long long run, wait;
	FILE *f = fopen(path, "re");
	uint64_t ns = 0;

	if (!f)
		return 0;
	if (fscanf(f, "%llu %llu", &run, &wait) == 2)
		ns = wait;
	fclose(f);
	return ns;
}

/* The run_delay of every thread of @pid (0: the calling thread). */
static uint64_t task_delay(pid_t pid)
{
	char path[64];
	uint64_t sum = 0;
	struct dirent *e;
	DIR *d;

	if (pid == 0)
		return read_delay("/proc/thread-self/schedstat");
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	if (!(d = opendir(path)))
		return 0;
	while ((e = readdir(d))) {
		char file[320];
		if (e->d_name[0] == '.')
			continue;
		snprintf(file, sizeof(file), "/proc/%d/task/%s/schedstat", (int)pid, e->d_name);
		sum += read_delay(file);
	}
	closedir(d);
	return sum;
}

/* Steal time of CPU @cpu from /proc/stat, in nanoseconds (10 ms steps). */
static uint64_t cpu_steal(int cpu)
{
	unsigned long long v[8];
	char line[512], want[16];
	FILE *f = fopen("/proc/stat", "re");
	uint64_t ns = 0;
	long hz = sysconf(_SC_CLK_TCK);

	if (!f)
		return 0;
	snprintf(want, sizeof(want), "cpu%d ", cpu);
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, want, strlen(want)) != 0)
			continue;
		if (sscanf(line + strlen(want), "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
			   &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) == 8 && hz > 0)
			ns = (uint64_t)v[7] * (1000000000u / (uint64_t)hz);
		break;
	}
	fclose(f);
	return ns;
}

static uint64_t sum_steal(const struct bench_watch *w)
{
	uint64_t s = 0;

	for (unsigned i = 0; i < w->n_cpus; i++)
		s += cpu_steal(w->cpus[i]);
	return s;
}

int bench_watch_begin(struct bench_watch *w, const pid_t *pids, unsigned n_pids, const int *cpus,
		      unsigned n_cpus)
{
	if (!w || (n_pids && !pids) || (n_cpus && !cpus) || n_pids > BENCH_WATCH_MAX ||
	    n_cpus > BENCH_WATCH_MAX)
		return -EINVAL;
	memset(w, 0, sizeof(*w));
	w->n_pids = n_pids;
	w->n_cpus = n_cpus;
	for (unsigned i = 0; i < n_pids; i++)
		w->pids[i] = pids[i];
	for (unsigned i = 0; i < n_cpus; i++)
		w->cpus[i] = cpus[i];
	w->t0_ns = mono_ns();
	w->steal0_ns = sum_steal(w);
	for (unsigned i = 0; i < n_pids; i++)
		w->delay0_ns += task_delay(w->pids[i]);
	return 0;
}

double bench_watch_end(const struct bench_watch *w)
{
	uint64_t wall, delay = 0, steal;

	if (!w)
		return 0;
	wall = mono_ns() - w->t0_ns;
	steal = sum_steal(w);
	for (unsigned i = 0; i < w->n_pids; i++)
		delay += task_delay(w->pids[i]);
	/* Threads that ended took their counts with them: never below zero. */
	delay = delay > w->delay0_ns ? delay - w->delay0_ns : 0;
	steal = steal > w->steal0_ns ? steal - w->steal0_ns : 0;
	return wall ? (double)(delay + steal) / (double)wall : 0;
}

int bench_wait_unreaped(pid_t pid, int timeout_ms)
{
	struct timespec nap = { 0, 2 * 1000 * 1000 };
	uint64_t deadline = mono_ns() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000u;

	for (;;) {
		siginfo_t si = { 0 };
		if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0) {
			if (errno != EINTR)
				return -errno;
		} else if (si.si_pid == pid) {
			return 0;
		}
		if (mono_ns() >= deadline)
			return -ETIMEDOUT;
		nanosleep(&nap, NULL);
	}
}

bool bench_offcpu_select(const double *share, unsigned n, double max, bool *keep,
			 unsigned *dropped)
{
	unsigned kept = 0;

	for (unsigned i = 0; i < n; i++) {
		keep[i] = share[i] <= max;
		kept += keep[i];
	}
	*dropped = n - kept;
	if (kept > 0 || n == 0)
		return true;
	for (unsigned i = 0; i < n; i++)
		keep[i] = true;
	return false;
}

int bench_offcpu_parse(const char *s, double *max)
{
	char *end;
	double v;

	if (!s || !max)
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= 0 && v <= 100))
		return -EINVAL;
	*max = v / 100;
	return 0;
}
