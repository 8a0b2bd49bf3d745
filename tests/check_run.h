/* SPDX-License-Identifier: MIT */
/* The one place the Check runner boilerplate lives. */
#ifndef WAVE_TEST_CHECK_RUN_H
#define WAVE_TEST_CHECK_RUN_H

#include <check.h>
#include <stdlib.h>

/* Runs every test of @s; returns the process exit status. */
static inline int wave_check_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
