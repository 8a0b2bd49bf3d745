/* SPDX-License-Identifier: MIT */
/* A number on an example's (or a benchmark's) command line: one out of
 * range, not a number or with anything after the number is named with its
 * option and the range accepted, and refused (exit status 2), never
 * wrapped around, cut short or read as 0. */
#ifndef WAVE_EXAMPLE_ARGS_H
#define WAVE_EXAMPLE_ARGS_H

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Refuses @v, the value of option @opt of @prog, which should have been
 * @what (exit status 2: bad usage). */
static inline _Noreturn void example_fail(const char *prog, const char *opt, const char *what,
					  const char *v)
{
	fprintf(stderr, "%s: %s: expected %s, got '%s'\n", prog, opt, what, v);
	exit(2);
}

/* A decimal integer in [@min, @max]; a sign is taken only when @min < 0
 * (strtoll() would read "-1" as a number, strtoull() as a huge one). */
static inline long long example_int(const char *prog, const char *opt, const char *v,
				    long long min, long long max)
{
	char *end = NULL, what[80];
	long long n = 0;

	errno = 0;
	if (isdigit((unsigned char)v[0]) || (min < 0 && v[0] == '-'))
		n = strtoll(v, &end, 10);
	if (!end || *end || errno || n < min || n > max) {
		snprintf(what, sizeof(what), "an integer from %lld to %lld", min, max);
		example_fail(prog, opt, what, v);
	}
	return n;
}

static inline unsigned long long example_uint(const char *prog, const char *opt, const char *v,
					      unsigned long long min, unsigned long long max)
{
	unsigned long long n = 0;
	char *end = NULL, what[80];

	errno = 0;
	if (isdigit((unsigned char)v[0]))
		n = strtoull(v, &end, 10);
	if (!end || *end || errno || n < min || n > max) {
		snprintf(what, sizeof(what), "an integer from %llu to %llu", min, max);
		example_fail(prog, opt, what, v);
	}
	return n;
}

/* A decimal number in [@min, @max], @min >= 0. Not "inf" or "nan", which
 * strtod() takes and no deadline computed from them survives, nor hex. */
static inline double example_double(const char *prog, const char *opt, const char *v, double min,
				    double max)
{
	char *end = NULL, what[80];
	double d = 0;

	errno = 0;
	if ((isdigit((unsigned char)v[0]) || v[0] == '.') && !strpbrk(v, "xX"))
		d = strtod(v, &end);
	if (!end || *end || errno || !(d >= min && d <= max)) {
		snprintf(what, sizeof(what), "a number from %.15g to %.15g", min, max);
		example_fail(prog, opt, what, v);
	}
	return d;
}

#endif /* WAVE_EXAMPLE_ARGS_H */
