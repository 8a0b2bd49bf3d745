/* SPDX-License-Identifier: MIT */
#include <check.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prom_check.h"

#define MAX_FAMILIES 64
#define MAX_SERIES 1024

struct reader {
	char families[MAX_FAMILIES][128]; /* TYPE given, in order */
	char types[MAX_FAMILIES][16];
	size_t n_families;
	char *series[MAX_SERIES];
	size_t n_series;
};

/* Length of the name at @s ([a-zA-Z_:][a-zA-Z0-9_:]*, no ':' for labels). */
static size_t name_len(const char *s, int colon)
{
	size_t n = 0;

	if (!(isalpha((unsigned char)s[0]) || s[0] == '_' || (colon && s[0] == ':')))
		return 0;
	while (isalnum((unsigned char)s[n]) || s[n] == '_' || (colon && s[n] == ':'))
		n++;
	return n;
}

static void comment(struct reader *r, const char *line)
{
	size_t n;

	if (strncmp(line, "# HELP ", 7) == 0) {
		n = name_len(line + 7, 1);
		ck_assert_msg(n && line[7 + n] == ' ', "bad HELP line: %s", line);
	} else if (strncmp(line, "# TYPE ", 7) == 0) {
		const char *type;

		n = name_len(line + 7, 1);
		ck_assert_msg(n && line[7 + n] == ' ', "bad TYPE line: %s", line);
		type = line + 7 + n + 1;
		ck_assert_msg(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0 ||
				      strcmp(type, "summary") == 0 ||
				      strcmp(type, "histogram") == 0 ||
				      strcmp(type, "untyped") == 0,
			      "unknown type: %s", line);
		ck_assert_uint_lt(n, sizeof(r->families[0]));
		for (size_t i = 0; i < r->n_families; i++)
			ck_assert_msg(strncmp(r->families[i], line + 7, n) != 0 ||
					      r->families[i][n] != '\0',
				      "TYPE given twice: %s", line);
		ck_assert_uint_lt(r->n_families, MAX_FAMILIES);
		memcpy(r->families[r->n_families], line + 7, n);
		r->families[r->n_families][n] = '\0';
		snprintf(r->types[r->n_families], sizeof(r->types[0]), "%s", type);
		if (strcmp(type, "counter") == 0)
			ck_assert_msg(n > 6 && strncmp(line + 7 + n - 6, "_total", 6) == 0,
				      "a counter not named *_total: %s", line);
		r->n_families++;
	}
}

/* The labels at @p ("{a=\"x\",b=\"y\"}"); returns what follows them. */
static const char *labels(const char *p, const char *line)
{
	char names[16][64];
	size_t n_names = 0;

	if (*p != '{')
		return p;
	p++;
	while (*p != '}') {
		size_t n = name_len(p, 0);

		ck_assert_msg(n && n < 64 && p[n] == '=' && p[n + 1] == '"', "bad label: %s", line);
		ck_assert_msg(strncmp(p, "__", 2) != 0, "reserved label name: %s", line);
		for (size_t i = 0; i < n_names; i++)
			ck_assert_msg(strncmp(names[i], p, n) != 0 || names[i][n] != '\0',
				      "label twice: %s", line);
		ck_assert_uint_lt(n_names, 16);
		memcpy(names[n_names], p, n);
		names[n_names++][n] = '\0';
		for (p += n + 2; *p != '"'; p++) {
			ck_assert_msg(*p != '\0' && *p != '\n', "unterminated label value: %s", line);
			if (*p == '\\') {
				p++;
				ck_assert_msg(*p == '\\' || *p == '"' || *p == 'n',
					      "bad escape in a label value: %s", line);
			}
		}
		p++;
		if (*p == ',')
			p++;
		else
			ck_assert_msg(*p == '}', "bad label list: %s", line);
	}
	return p + 1;
}

static void sample(struct reader *r, const char *line)
{
	size_t n = name_len(line, 1);
	const char *after, *fam;
	char *end;
	double v;

	ck_assert_msg(n > 0, "bad metric name: %s", line);
	ck_assert_msg(r->n_families > 0, "a sample before any TYPE: %s", line);
	fam = r->families[r->n_families - 1];
	/* Samples follow their own family's TYPE, all together. */
	ck_assert_msg(strlen(fam) == n && strncmp(fam, line, n) == 0,
		      "sample outside its family (current: %s): %s", fam, line);
	after = labels(line + n, line);
	ck_assert_msg(*after == ' ', "no value: %s", line);
	after++;
	if (strcmp(after, "NaN") == 0 || strcmp(after, "+Inf") == 0 || strcmp(after, "-Inf") == 0) {
		v = NAN;
	} else {
		v = strtod(after, &end);
		ck_assert_msg(end != after && *end == '\0', "bad value: %s", line);
	}
	if (strcmp(r->types[r->n_families - 1], "counter") == 0)
		ck_assert_msg(!(v < 0), "negative counter: %s", line);
	for (size_t i = 0; i < r->n_series; i++)
		ck_assert_msg(strncmp(r->series[i], line, (size_t)(after - 1 - line)) != 0 ||
				      r->series[i][after - 1 - line] != '\0',
			      "series twice: %s", line);
	ck_assert_uint_lt(r->n_series, MAX_SERIES);
	r->series[r->n_series] = strndup(line, (size_t)(after - 1 - line));
	ck_assert_ptr_nonnull(r->series[r->n_series]);
	r->n_series++;
}

size_t prom_check(const char *text)
{
	struct reader *r = calloc(1, sizeof(*r));
	size_t count;

	ck_assert_ptr_nonnull(r);
	ck_assert_msg(text[0] && text[strlen(text) - 1] == '\n', "not newline-terminated");
	for (const char *p = text; *p;) {
		const char *nl = strchr(p, '\n');
		char *line = strndup(p, (size_t)(nl - p));

		ck_assert_ptr_nonnull(line);
		ck_assert_msg(line[0] != '\0', "empty line");
		if (line[0] == '#')
			comment(r, line);
		else
			sample(r, line);
		free(line);
		p = nl + 1;
	}
	count = r->n_series;
	for (size_t i = 0; i < r->n_series; i++)
		free(r->series[i]);
	free(r);
	return count;
}

double prom_value(const char *text, const char *prefix)
{
	const char *found = NULL;
	size_t len = strlen(prefix);

	for (const char *p = text; *p; p = strchr(p, '\n') + 1) {
		if (strncmp(p, prefix, len) == 0) {
			ck_assert_msg(!found, "more than one sample starts with %s", prefix);
			found = p;
		}
	}
	ck_assert_msg(found != NULL, "no sample starts with %s", prefix);
	found = strchr(found, ' ');
	/* Label values hold no space in these tests. */
	return strtod(found + 1, NULL);
}
