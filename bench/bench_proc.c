/* SPDX-License-Identifier: MIT */
/*
 * Child processes for the benchmark: each side of a measurement runs in its
 * own process pinned to its own CPU, as a host and an agent would. The
 * parent only forks, waits and reads the results from shared memory.
 */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

int bench_pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) < 0 ? -errno : 0;
}

int bench_pick_cpus(int *first, int *second, int *n)
{
	cpu_set_t set;
	int found = 0;

	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return -errno;
	for (int c = 0; c < CPU_SETSIZE && found < 2; c++) {
		if (!CPU_ISSET(c, &set))
			continue;
		if (found++ == 0)
			*first = c;
		else
			*second = c;
	}
	if (found == 0)
		return -ENODEV;
	if (found == 1)
		*second = *first;
	*n = found;
	return 0;
}

int bench_spawn(int cpu, bench_child_fn fn, void *arg, pid_t *pid)
{
	pid_t p;

	fflush(stdout);
	fflush(stderr);
	p = fork();
	if (p < 0)
		return -errno;
	if (p > 0) {
		*pid = p;
		return 0;
	}
	/* A child busy-polls; it must never outlive an interrupted parent. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		_exit(1);
	int ret = bench_pin(cpu);
	if (ret < 0) {
		fprintf(stderr, "wave-bench-chan: cannot pin to CPU %d: errno %d\n", cpu, -ret);
		_exit(1);
	}
	_exit(fn(arg) == 0 ? 0 : 1);
}

int bench_wait(pid_t pid, int timeout_ms)
{
	struct timespec nap = { 0, 2 * 1000 * 1000 };
	uint64_t deadline = bench_mono_ns() + (uint64_t)timeout_ms * 1000000u;
	int status;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR)
			return -errno;
		if (bench_mono_ns() >= deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -ETIMEDOUT;
		}
		nanosleep(&nap, NULL);
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

void bench_watch_run(struct bench_watch *w, const struct bench_cfg *cfg, pid_t agent, pid_t host)
{
	const pid_t pids[] = { agent, host };
	const int cpus[] = { cfg->host_cpu, cfg->agent_cpu };

	bench_watch_begin(w, pids, 2, cpus, cfg->single_core ? 1 : 2);
}

int bench_wait_run(pid_t host, int timeout_ms, const struct bench_watch *w, double *offcpu,
		   unsigned *n)
{
	int ret = bench_wait_unreaped(host, timeout_ms);

	if (ret == 0) {
		double share = bench_watch_end(w);
		ret = bench_wait(host, 0);
		if (ret == 0 && *n < BENCH_MAX_REPS)
			offcpu[(*n)++] = share;
		return ret;
	}
	return ret == -ETIMEDOUT ? bench_wait(host, 0) : ret;
}

int bench_run_timeout_ms(const struct bench_cfg *cfg)
{
	uint64_t rtts = (uint64_t)cfg->warmup + 2 * (uint64_t)cfg->iters;
	uint64_t ms = 30000 + rtts / 2 + 20 * (uint64_t)cfg->tput_ms;

	return ms > INT_MAX ? INT_MAX : (int)ms;
}

void *bench_shared_alloc(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

void bench_shared_free(void *p, size_t len)
{
	if (p)
		munmap(p, len);
}
