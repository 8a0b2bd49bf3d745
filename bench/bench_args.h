/* SPDX-License-Identifier: MIT */
/*
 * A value on a benchmark's command line: one out of range, not a number or
 * with anything after the number is named with its option and the range
 * accepted, and refused (exit status 2, the benchmarks' bad usage), never
 * wrapped around, cut short or read as 0. Header only: the benchmarks that
 * need it link none of bench_loops.c.
 */
#ifndef WAVE_BENCH_ARGS_H
#define WAVE_BENCH_ARGS_H

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Refuses @v of option @opt of @prog, which should have been @what. */
static inline _Noreturn void bench_arg_fail(const char *prog, const char *opt, const char *what,
					    const char *v)
{
	fprintf(stderr, "%s: %s: expected %s, got '%s'\n", prog, opt, what, v);
	exit(2);
}

/* A decimal integer in [@min, @max]; a sign is refused unless @min < 0
 * (strtoll() would read "-1" as a huge unsigned). */
static inline long long bench_arg_int(const char *prog, const char *opt, const char *v,
				      long long min, long long max)
{
	char *end = NULL, what[80];
	long long n = 0;

	errno = 0;
	if (isdigit((unsigned char)v[0]) || (min < 0 && v[0] == '-'))
		n = strtoll(v, &end, 10);
	if (!end || end == v || *end || errno || n < min || n > max) {
		snprintf(what, sizeof(what), "an integer from %lld to %lld", min, max);
		bench_arg_fail(prog, opt, what, v);
	}
	return n;
}

static inline unsigned bench_arg_uint(const char *prog, const char *opt, const char *v,
				      unsigned min, unsigned max)
{
	return (unsigned)bench_arg_int(prog, opt, v, min, max);
}

/* A finite decimal number in [@min, @max] (not nan, inf or hex). */
static inline double bench_arg_double(const char *prog, const char *opt, const char *v,
				      double min, double max)
{
	char *end = NULL, what[80];
	double d = 0;

	errno = 0;
	if ((isdigit((unsigned char)v[0]) || v[0] == '.' || (min < 0 && v[0] == '-')) &&
	    !strpbrk(v, "xX"))
		d = strtod(v, &end);
	if (!end || end == v || *end || errno || !isfinite(d) || d < min || d > max) {
		snprintf(what, sizeof(what), "a number from %.15g to %.15g", min, max);
		bench_arg_fail(prog, opt, what, v);
	}
	return d;
}

#endif /* WAVE_BENCH_ARGS_H */
