/* SPDX-License-Identifier: MIT */
/* The one place the Check runner boilerplate lives. */
#ifndef WAVE_TEST_CHECK_RUN_H
#define WAVE_TEST_CHECK_RUN_H

#include <check.h>
#include <stdlib.h>
#include <unistd.h>

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

/* fork(), its failure asserted in the parent only: a child must not call
 * Check before it has its own footing (an assertion takes a lock of
 * Check's, and one another thread held at the fork stays held in the
 * child for ever). */
static inline pid_t test_fork(void)
{
	pid_t pid = fork();

	if (pid != 0)
		ck_assert_int_ge(pid, 0);
	return pid;
}

#endif
