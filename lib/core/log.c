/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core.h"

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
