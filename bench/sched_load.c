/* SPDX-License-Identifier: MIT */
/* The scheduling benchmark's workload: see sched_load.h. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sched_load.h"

/* Spin iterations per microsecond on this machine (load_calibrate()). */
static uint64_t iters_per_us = 1;

uint64_t load_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* @n iterations of a dependent chain the compiler cannot drop or fold. */
static void spin_iters(uint64_t n)
{
	uint64_t x = n;

	for (uint64_t i = 0; i < n; i++)
		__asm__ volatile("" : "+r"(x)); /* one opaque step per iteration */
}

/* The fastest of five timings of @n iterations (the others were
 * interrupted), in nanoseconds. */
static uint64_t time_iters(uint64_t n)
{
	uint64_t best = UINT64_MAX;

	for (int t = 0; t < 5; t++) {
		uint64_t t0 = load_now_ns();
		spin_iters(n);
		uint64_t dt = load_now_ns() - t0;
		if (dt < best)
			best = dt;
	}
	return best;
}

int load_calibrate(double *per_us)
{
	const uint64_t n = 1u << 20;
	uint64_t prev = 0, best = 0;

	/* A virtual CPU that was idle runs slowly for a while (up to about
	 * a second here) once busy again: time until two timings agree
	 * within 1%, for 2 s at most. */
	for (uint64_t t0 = load_now_ns(); load_now_ns() - t0 < 2000000000u; prev = best) {
		best = time_iters(n);
		if (prev && best * 100 >= prev * 99 && best * 100 <= prev * 101)
			break;
	}
	if (best == 0 || best == UINT64_MAX)
		return -EIO;
	iters_per_us = n * 1000 / best;
	if (iters_per_us == 0)
		iters_per_us = 1;
	if (per_us)
		*per_us = (double)iters_per_us;
	return 0;
}

uint64_t load_spin(uint64_t work, bool (*stop)(void *arg), void *arg)
{
	while (work) {
		uint64_t chunk = work < iters_per_us ? work : iters_per_us;
		spin_iters(chunk);
		work -= chunk;
		if (work && stop && stop(arg))
			break;
	}
	return work;
}

/* splitmix64: small, fast, and the same sequence on every machine. */
static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in (0, 1]. */
static double rng_unit(uint64_t *s)
{
	return ((double)(rng_next(s) >> 11) + 1.0) / 9007199254740992.0;
}

int load_make(const struct load_cfg *cfg, struct load *l)
{
	uint64_t s, t = 0;

	if (!cfg || !l || cfg->n == 0 || !(cfg->rate > 0) || !(cfg->short_us > 0) ||
	    !(cfg->long_us > 0) || cfg->long_frac < 0 || cfg->long_frac > 1)
		return -EINVAL;
	s = cfg->seed;
	memset(l, 0, sizeof(*l));
	l->req = calloc(cfg->n, sizeof(*l->req));
	if (!l->req)
		return -ENOMEM;
	l->n = cfg->n;
	for (unsigned i = 0; i < cfg->n; i++) {
		struct load_req *r = &l->req[i];
		/* Exponential gaps: a Poisson process at cfg->rate. */
		t += (uint64_t)(-log(rng_unit(&s)) / cfg->rate * 1e9);
		r->at_ns = t;
		r->is_long = rng_unit(&s) <= cfg->long_frac;
		r->work = (uint64_t)((r->is_long ? cfg->long_us : cfg->short_us) *
				     (double)iters_per_us);
		if (r->work == 0)
			r->work = 1;
	}
	return 0;
}

void load_free(struct load *l)
{
	free(l->req);
	memset(l, 0, sizeof(*l));
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* The @p quantile of sorted @v, in microseconds (0 when empty). */
static double pct_us(const uint64_t *v, unsigned n, double p)
{
	if (n == 0)
		return 0.0;
	return (double)v[(size_t)(p * (double)(n - 1) + 0.5)] / 1000.0;
}

int load_stats(const struct load *l, struct load_stats *st)
{
	uint64_t *lat = malloc((size_t)l->n * sizeof(*lat));
	uint64_t *short_lat = malloc((size_t)l->n * sizeof(*short_lat));
	/* Open loop: the offered work ends with the last arrival. What was
	 * done by then, per second, is the throughput; the drain after it
	 * (a long request time-sliced with the last arrivals) is not. */
	uint64_t window = l->n ? l->req[l->n - 1].at_ns : 0;
	unsigned n = 0, ns = 0, in_window = 0;

	if (!lat || !short_lat) {
		free(lat);
		free(short_lat);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < l->n; i++) {
		const struct load_req *r = &l->req[i];
		if (!r->done_ns)
			continue;
		uint64_t at = l->start_ns + r->at_ns;
		uint64_t d = r->done_ns > at ? r->done_ns - at : 0;
		lat[n++] = d;
		if (!r->is_long)
			short_lat[ns++] = d;
		if (r->done_ns <= l->start_ns + window)
			in_window++;
	}
	qsort(lat, n, sizeof(*lat), cmp_u64);
	qsort(short_lat, ns, sizeof(*short_lat), cmp_u64);
	memset(st, 0, sizeof(*st));
	st->done = n;
	st->tput = window ? (double)in_window * 1e9 / (double)window : 0;
	st->p50_us = pct_us(lat, n, 0.50);
	st->p99_us = pct_us(lat, n, 0.99);
	st->p999_us = pct_us(lat, n, 0.999);
	st->short_p99_us = pct_us(short_lat, ns, 0.99);
	st->off_cpu_ms = (double)l->off_cpu_ns / 1e6;
	free(lat);
	free(short_lat);
	return 0;
}
