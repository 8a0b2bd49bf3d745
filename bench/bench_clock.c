/* SPDX-License-Identifier: MIT */
/*
 * The benchmark's timer and its statistics.
 *
 * Why the TSC: one round trip is a few hundred nanoseconds, and every round
 * trip is timed on its own, so the timer's own cost lands in every sample.
 * On this kind of VM a vDSO clock_gettime(CLOCK_MONOTONIC) costs about 30 ns,
 * rdtscp about 20 ns. The loops take one reading per round trip (the end of
 * one is the start of the next), so the timer adds its cost once per round
 * trip, half of it per one-way figure. The TSC is used only when the CPU
 * says it is invariant (constant_tsc and nonstop_tsc): then its rate is
 * fixed and is measured here against CLOCK_MONOTONIC. Readings are only ever
 * subtracted on the CPU they were taken on, so TSC skew between CPUs does
 * not matter.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

bool bench_clock_use_tsc;
static double ns_per_tick = 1.0;

uint64_t bench_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* True when /proc/cpuinfo lists both flags of an invariant TSC. */
static bool tsc_invariant(void)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[4096];
	bool found = false;

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "flags", 5) != 0)
			continue;
		found = strstr(line, " constant_tsc") && strstr(line, " nonstop_tsc");
		break;
	}
	fclose(f);
	return found;
}

int bench_clock_init(enum bench_clock_kind want, unsigned calib_ms)
{
	struct timespec nap = { (time_t)(calib_ms / 1000), (long)(calib_ms % 1000) * 1000000L };

	bench_clock_use_tsc = false;
	ns_per_tick = 1.0;
#if defined(__x86_64__)
	if (want == BENCH_CLOCK_TSC && tsc_invariant()) {
		uint64_t n0 = bench_mono_ns();
		bench_clock_use_tsc = true;
		uint64_t t0 = bench_ticks();
		if (nanosleep(&nap, NULL) < 0) {
			bench_clock_use_tsc = false;
			return -errno;
		}
		uint64_t t1 = bench_ticks();
		uint64_t n1 = bench_mono_ns();
		if (t1 <= t0 || n1 <= n0) {
			bench_clock_use_tsc = false;
			return -EIO;
		}
		ns_per_tick = (double)(n1 - n0) / (double)(t1 - t0);
	}
#else
	(void)want;
	(void)nap;
#endif
	return 0;
}

enum bench_clock_kind bench_clock_kind(void)
{
	return bench_clock_use_tsc ? BENCH_CLOCK_TSC : BENCH_CLOCK_MONO;
}

double bench_clock_mhz(void)
{
	return bench_clock_use_tsc ? 1000.0 / ns_per_tick : 0.0;
}

double bench_ticks_to_ns(uint64_t ticks)
{
	return (double)ticks * ns_per_tick;
}

uint64_t bench_ns_to_ticks(uint64_t ns)
{
	return (uint64_t)((double)ns / ns_per_tick);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted @v: the smallest sample that at least
 * @per_mille thousandths of all samples do not exceed. Integer arithmetic,
 * so p99.9 of 200000 samples is exactly rank 199800. */
static uint64_t rank(const uint64_t *v, size_t n, unsigned per_mille)
{
	size_t k = (n * per_mille + 999) / 1000;

	return v[k == 0 ? 0 : k - 1];
}

struct bench_lat bench_lat_from_rtts(uint64_t *ticks, size_t n)
{
	struct bench_lat l = { 0, 0, 0, 0, 0 };
	double sum = 0;

	if (n == 0)
		return l;
	qsort(ticks, n, sizeof(*ticks), cmp_u64);
	for (size_t i = 0; i < n; i++)
		sum += (double)ticks[i];
	/* One way = round trip / 2. */
	l.p50 = bench_ticks_to_ns(rank(ticks, n, 500)) / 2;
	l.p99 = bench_ticks_to_ns(rank(ticks, n, 990)) / 2;
	l.p999 = bench_ticks_to_ns(rank(ticks, n, 999)) / 2;
	l.mean = sum / (double)n * ns_per_tick / 2;
	return l;
}

struct bench_lat bench_lat_median(const struct bench_lat *runs, unsigned n)
{
	double p50[BENCH_MAX_REPS], p99[BENCH_MAX_REPS], p999[BENCH_MAX_REPS];
	double mean[BENCH_MAX_REPS], loop[BENCH_MAX_REPS];
	struct bench_lat m = { 0, 0, 0, 0, 0 };

	if (n == 0 || n > BENCH_MAX_REPS)
		return m;
	for (unsigned i = 0; i < n; i++) {
		p50[i] = runs[i].p50;
		p99[i] = runs[i].p99;
		p999[i] = runs[i].p999;
		mean[i] = runs[i].mean;
		loop[i] = runs[i].loop_mean;
	}
	m.p50 = bench_median(p50, n);
	m.p99 = bench_median(p99, n);
	m.p999 = bench_median(p999, n);
	m.mean = bench_median(mean, n);
	m.loop_mean = bench_median(loop, n);
	return m;
}
