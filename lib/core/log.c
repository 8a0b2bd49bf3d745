/* SPDX-License-Identifier: MIT */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core.h"

/*
 * Debian's libfabric loads the PSM provider's libinfinipath, whose
 * constructor (unless IPATH_NO_BACKTRACE is set) puts a handler on SIGINT,
 * SIGILL, SIGABRT, SIGBUS, SIGSEGV and SIGTERM that prints a backtrace and
 * exits with status 1: in every program linked with libwave, a crash would
 * leave no core and a kill would look like an error exit. libwave installs
 * no signal handlers, so as it loads it puts back the default action of
 * each of those it finds on a handler of that library. Only that library's
 * are touched, before main(): the program's own, set later, are not. It
 * lives in this file because every part of libwave logs, so that a program
 * linking libwave.a gets it too.
 */
__attribute__((constructor)) static void undo_psm_handlers(void)
{
	static const int sigs[] = { SIGINT, SIGILL, SIGABRT, SIGBUS, SIGSEGV, SIGTERM };
	struct sigaction dfl = { .sa_handler = SIG_DFL }, cur;

	sigemptyset(&dfl.sa_mask);
	for (unsigned i = 0; i < WAVE_ARRAY_SIZE(sigs); i++) {
		const char *base;
		Dl_info info;

		if (sigaction(sigs[i], NULL, &cur) != 0 || cur.sa_handler == SIG_DFL ||
		    cur.sa_handler == SIG_IGN || !dladdr((void *)cur.sa_handler, &info) ||
		    !info.dli_fname)
			continue;
		base = strrchr(info.dli_fname, '/');
		base = base ? base + 1 : info.dli_fname;
		if (strncmp(base, "libinfinipath.", 14) == 0 || strncmp(base, "libpsm", 6) == 0)
			(void)sigaction(sigs[i], &dfl, NULL);
	}
}

_Atomic int wave_log_level_cur = WAVE_LOG_OFF;
static wave_log_fn log_fn;
static void *log_user;
static pthread_once_t log_once = PTHREAD_ONCE_INIT;
static _Atomic int log_level_set_by_app;

static void log_read_env(void)
{
	static const char *const names[] = { "off", "error", "warn", "info", "debug" };
	const char *v = getenv("WAVE_LOG");

	if (!v || atomic_load(&log_level_set_by_app))
		return;
	for (unsigned i = 0; i < WAVE_ARRAY_SIZE(names); i++)
		if (strcasecmp(v, names[i]) == 0)
			atomic_store(&wave_log_level_cur, (int)i);
}

void wave_log_init_once(void)
{
	pthread_once(&log_once, log_read_env);
}

void wave_log_emit(enum wave_log_level level, const char *fmt, ...)
{
	static const char *const tags[] = { "", "error", "warn", "info", "debug" };
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (log_fn)
		log_fn(level, buf, log_user);
	else
		fprintf(stderr, "libwave %s: %s\n", tags[level], buf);
}

WAVE_API int wave_log_set_level(enum wave_log_level level)
{
	if ((int)level < WAVE_LOG_OFF || level > WAVE_LOG_DEBUG)
		return -EINVAL;
	atomic_store(&log_level_set_by_app, 1);
	wave_log_init_once();
	atomic_store(&wave_log_level_cur, (int)level);
	return 0;
}

WAVE_API enum wave_log_level wave_log_get_level(void)
{
	wave_log_init_once();
	return (enum wave_log_level)atomic_load(&wave_log_level_cur);
}

WAVE_API void wave_log_set_handler(wave_log_fn fn, void *user)
{
	log_fn = fn;
	log_user = user;
}
