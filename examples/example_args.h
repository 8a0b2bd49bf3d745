/* SPDX-License-Identifier: MIT */
/* A number on an example's command line: one out of range or not a number
 * is named and refused (exit status 2), never wrapped or read as 0. */
#ifndef WAVE_EXAMPLE_ARGS_H
#define WAVE_EXAMPLE_ARGS_H

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline unsigned long long example_uint(const char *prog, const char *opt, const char *v,
					      unsigned long long min, unsigned long long max)
{
	unsigned long long n = 0;
	char *end = NULL;

	errno = 0;
	if (isdigit((unsigned char)v[0]))
		n = strtoull(v, &end, 10);
	if (!end || *end || errno || n < min || n > max) {
		fprintf(stderr, "%s: %s: expected an integer from %llu to %llu, got '%s'\n", prog,
			opt, min, max, v);
		exit(2);
	}
	return n;
}

/* A decimal number in [@min, @max], @min >= 0. Not "inf" or "nan", which
 * strtod() takes and no deadline computed from them survives, nor hex. */
static inline double example_double(const char *prog, const char *opt, const char *v, double min,
				    double max)
{
	double d = 0;
	char *end = NULL;

	errno = 0;
	if ((isdigit((unsigned char)v[0]) || v[0] == '.') && !strpbrk(v, "xX"))
		d = strtod(v, &end);
	if (!end || *end || errno || !(d >= min && d <= max)) {
		fprintf(stderr, "%s: %s: expected a number from %.15g to %.15g, got '%s'\n", prog,
			opt, min, max, v);
		exit(2);
	}
	return d;
}

#endif /* WAVE_EXAMPLE_ARGS_H */
