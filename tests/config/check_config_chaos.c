/* SPDX-License-Identifier: MIT */
/*
 * Allocation-failure injection for the configuration parser: make the 1st,
 * then the 2nd, ... allocation fail, up to the number a clean parse makes.
 * Every such parse must fail with -ENOMEM (or, inside jansson's parser,
 * whatever jansson makes of it), fill the error struct, and leave no
 * allocation behind. Memory is counted through
 * jansson's allocator hooks, which the parser also uses for its own
 * allocations, so a leak shows up without a sanitizer (and ASan builds
 * check the rest).
 */
#include "check_run.h"
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <wave/wave.h>

static size_t n_allocs;
static size_t fail_at; /* 0: never fail */
static long outstanding;

static void *chaos_malloc(size_t size)
{
	void *p;

	if (++n_allocs == fail_at)
		return NULL;
	p = malloc(size);
	if (p)
		outstanding++;
	return p;
}

static void chaos_free(void *p)
{
	if (p)
		outstanding--;
	free(p);
}

/* Parses the test configuration with allocation number @n failing;
 * returns the parse result. */
static int parse_failing(size_t n, struct wave_error *err)
{
	struct wave_config *cfg = NULL;
	int ret;

	n_allocs = 0;
	fail_at = n;
	ret = wave_config_load(WAVE_CHAOS_CONFIG, &cfg, err);
	fail_at = 0;
	if (ret == 0)
		wave_config_free(cfg);
	return ret;
}

START_TEST(every_allocation_fails_once)
{
	struct wave_error err;
	size_t needed, n, n_enomem = 0;

	json_set_alloc_funcs(chaos_malloc, chaos_free);
	/* A clean run first: how many allocations a parse makes. */
	ck_assert_int_eq(parse_failing(0, &err), 0);
	needed = n_allocs;
	ck_assert_uint_gt(needed, 10);
	ck_assert_int_eq(outstanding, 0);
	for (n = 1; n <= needed; n++) {
		int ret = parse_failing(n, &err);

		/* jansson absorbs a few failed allocations (the parse then
		 * succeeds) and reports some in its lexer as a syntax error at
		 * the token it was reading; everything else must say -ENOMEM.
		 * Never a crash, never a leak. */
		ck_assert_msg(ret == 0 || ret == -ENOMEM || (ret == -WAVE_ECONFIG && err.line > 0),
			      "allocation %zu of %zu failing gave %d (%s)", n, needed, ret,
			      err.text);
		ck_assert_int_eq(err.code, ret);
		n_enomem += ret == -ENOMEM;
		ck_assert_msg(outstanding == 0, "allocation %zu failing leaked %ld blocks", n,
			      outstanding);
	}
	/* The parser's own allocations (most of them) always say -ENOMEM. */
	ck_assert_uint_gt(n_enomem, needed / 2);
	json_set_alloc_funcs(malloc, free);
}
END_TEST

/* Schema errors must not leak either, whichever section fails. */
START_TEST(errors_free_partial_results)
{
	static const char *const bad[] = {
		"{\"listen\": [\"shm:///a\", \"nope\"]}",
		"{\"cpus\": [1, 2, 2]}",
		"{\"plugin_path\": [\"a\", 3]}",
		"{\"auth\": {\"allow_uids\": [1], \"token\": 5}}",
		"{\"domains\": {\"custom\": {\"plugin\": \"x\"}, \"sched\": {\"plugin\": 1}}}",
	};
	struct wave_config *cfg;
	struct wave_error err;

	json_set_alloc_funcs(chaos_malloc, chaos_free);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(wave_config_parse(bad[i], strlen(bad[i]), NULL, &cfg, &err),
				 -WAVE_ECONFIG);
		ck_assert_msg(outstanding == 0, "case %zu leaked %ld blocks", i, outstanding);
	}
	json_set_alloc_funcs(malloc, free);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("config_chaos");
	TCase *tc = tcase_create("chaos");

	tcase_add_test(tc, every_allocation_fails_once);
	tcase_add_test(tc, errors_free_partial_results);
	suite_add_tcase(s, tc);
	return wave_check_run(s);
}
