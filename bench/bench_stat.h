/* SPDX-License-Identifier: MIT */
/* Medians: every benchmark's figure is the median over its runs. */
#ifndef WAVE_BENCH_STAT_H
#define WAVE_BENCH_STAT_H

#include <stddef.h>

/* The most runs of one configuration bench_median_field() takes. */
#define BENCH_STAT_MAX_RUNS 64

/* The median of @n (at least 1) values; sorts them (a few runs: an
 * insertion sort). */
static inline double bench_median(double *v, unsigned n)
{
	for (unsigned i = 1; i < n; i++)
		for (unsigned j = i; j > 0 && v[j - 1] > v[j]; j--) {
			double t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The median of the double at byte @off of each of the @n (1 to
 * BENCH_STAT_MAX_RUNS) structs of @size bytes at @runs. */
static inline double bench_median_field(const void *runs, size_t size, unsigned n, size_t off)
{
	double v[BENCH_STAT_MAX_RUNS];

	if (n > BENCH_STAT_MAX_RUNS)
		n = BENCH_STAT_MAX_RUNS;
	for (unsigned i = 0; i < n; i++)
		v[i] = *(const double *)((const char *)runs + i * size + off);
	return bench_median(v, n);
}

#endif
