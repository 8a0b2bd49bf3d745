/* SPDX-License-Identifier: MIT */
/*
 * A program linked with libwave keeps the signal dispositions it would
 * have without it: no handler of a library libwave pulls in (Debian's
 * libfabric loads libinfinipath, which puts a backtrace-and-exit(1) handler
 * on six signals as it loads: lib/core/log.c) is left in place, and a
 * crash still ends the process by its signal.
 */
#include "check_run.h"
#include <check.h>
#include <dlfcn.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <wave/wave.h>

/* The file that holds @sig's handler, or NULL for a default or ignored
 * signal. */
static const char *handler_file(int sig)
{
	struct sigaction cur;
	Dl_info info;

	ck_assert_int_eq(sigaction(sig, NULL, &cur), 0);
	if (cur.sa_handler == SIG_DFL || cur.sa_handler == SIG_IGN)
		return NULL;
	ck_assert_int_ne(dladdr((void *)cur.sa_handler, &info), 0);
	return info.dli_fname;
}

START_TEST(no_dependency_handlers)
{
	static const int sigs[] = { SIGINT, SIGILL, SIGABRT, SIGBUS, SIGSEGV, SIGTERM };

	/* Referenced, so that libwave is loaded whatever the linker's
	 * --as-needed does. */
	ck_assert_ptr_nonnull(wave_version_string());
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		const char *f = handler_file(sigs[i]);

		/* Check's own handlers (SIGINT, SIGTERM) may be there. */
		if (f)
			ck_assert_msg(!strstr(f, "libinfinipath") && !strstr(f, "libpsm"),
				      "signal %d is handled by %s", sigs[i], f);
	}
}
END_TEST

START_TEST(crash_ends_by_its_signal)
{
	struct rlimit no_core = { 0, 0 };
	int status;
	pid_t pid = test_fork();

	if (pid == 0) {
		(void)setrlimit(RLIMIT_CORE, &no_core);
		abort();
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
		      "abort() ended the process with status 0x%x, not by SIGABRT", status);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("signals");
	TCase *tc = tcase_create("signals");

	tcase_add_test(tc, no_dependency_handlers);
	tcase_add_test(tc, crash_ends_by_its_signal);
	suite_add_tcase(s, tc);
	return wave_check_run(s);
}
