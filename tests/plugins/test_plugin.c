/* SPDX-License-Identifier: MIT */
/*
 * One source for every test plugin. Built as is, it is a valid custom
 * plugin ("echo": answers each event with the same payload, type + 1).
 * Built with one BAD_* definition, its descriptor or ops have exactly that
 * defect, for the loader's refusal tests (TEST_VERSION, a string, sets its
 * version); with HANGS, its first event
 * never returns (after it creates the file named by its "marker"
 * parameter), for the daemon's watchdog test. ENTRY_NAME is the plugin's name,
 * which names the entry point (and the file, wave_<ENTRY_NAME>.so).
 */
#ifdef HANGS
#define _POSIX_C_SOURCE 200809L /* O_CLOEXEC, pause() in strict C11 */
#endif
#include <errno.h>
#include <string.h>
#ifdef HANGS
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#endif

#include <wave/plugin.h>
#include <wave/plugin_custom.h>

#define CAT(a, b) a##b
#define XCAT(a, b) CAT(a, b)
#define STR(a) #a
#define XSTR(a) STR(a)
/* Some defects leave a definition unreferenced; that is the point. */
#define DEFECT_MAY_UNUSE __attribute__((unused))

static int echo_ctr = -1;

#ifdef HANGS
static char marker[256];

/* Says it is stuck (the marker file), then stays stuck: a plugin caught
 * in a loop, holding the agent's loop with it. */
static void hang(void)
{
	int fd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

	if (fd >= 0)
		close(fd);
	for (;;)
		pause();
}
#endif

static int echo_init(struct wave_plugin_ctx *ctx)
{
#ifdef BAD_INIT_FAILS
	(void)ctx;
	return -EIO;
#else
#ifdef HANGS
	snprintf(marker, sizeof(marker), "%s", wave_plugin_param_string(ctx, "marker", ""));
#endif
	echo_ctr = wave_plugin_counter(ctx, "echoed");
	return echo_ctr < 0 ? echo_ctr : 0;
#endif
}

DEFECT_MAY_UNUSE static int echo_on_event(struct wave_plugin_ctx *ctx, const struct wave_msg *ev)
{
	struct wave_msg m = *ev;
	int ret;

#ifdef HANGS
	hang();
#endif
	m.type = (uint16_t)(ev->type + 1);
	ret = wave_plugin_emit(ctx, &m, 1);
	if (ret == 1)
		wave_plugin_counter_add(ctx, echo_ctr, 1);
	return ret < 0 ? ret : 0;
}

DEFECT_MAY_UNUSE static const struct wave_custom_ops echo_ops = {
#ifdef BAD_SMALL_OPS
	.size = sizeof(size_t),
#else
	.size = sizeof(struct wave_custom_ops),
#endif
#ifndef BAD_MISSING_ON_EVENT
	.on_event = echo_on_event,
#endif
};

DEFECT_MAY_UNUSE static const struct wave_plugin_desc echo_desc = {
#ifdef BAD_ABI_MAJOR
	.abi_major = WAVE_PLUGIN_ABI_MAJOR + 1,
#else
	.abi_major = WAVE_PLUGIN_ABI_MAJOR,
#endif
#ifdef BAD_ABI_MINOR
	.abi_minor = WAVE_PLUGIN_ABI_MINOR + 1,
#else
	.abi_minor = WAVE_PLUGIN_ABI_MINOR,
#endif
#ifdef BAD_TRUNCATED
	.size = 16,
#else
	.size = sizeof(struct wave_plugin_desc),
#endif
#if defined(BAD_NO_NAME)
	.name = NULL,
#elif defined(BAD_WRONG_NAME)
	.name = "someone_else",
#else
	.name = XSTR(ENTRY_NAME),
#endif
#ifndef BAD_NO_VERSION
#ifdef TEST_VERSION
	.version = TEST_VERSION,
#else
	.version = "0.0.1",
#endif
#endif
	.description = "echoes every event back, type + 1",
#if defined(BAD_DOMAIN)
	.domain = 7,
#elif defined(BAD_SCHED_DOMAIN)
	.domain = WAVE_DOMAIN_SCHED,
#else
	.domain = WAVE_DOMAIN_CUSTOM,
#endif
#ifdef BAD_FLAGS
	.flags = 1,
#endif
	.init = echo_init,
#ifndef BAD_NO_OPS
	.ops = &echo_ops,
#endif
};

#ifdef BAD_UNRESOLVED
/* Defined nowhere: dlopen(RTLD_NOW) must fail on it. */
extern int wave_test_no_such_function(void);
WAVE_PLUGIN_EXPORT int wave_test_use_it(void);
WAVE_PLUGIN_EXPORT int wave_test_use_it(void)
{
	return wave_test_no_such_function();
}
#endif

#ifdef BAD_NO_ENTRY
/* The entry point of some other plugin: not the one the file name asks for. */
#define ENTRY_FN wave_plugin_entry_not_this_one
#else
#define ENTRY_FN XCAT(wave_plugin_entry_, ENTRY_NAME)
#endif

#ifdef BAD_DATA_ENTRY
/* The entry point's name on data: calling it would crash the loader. */
WAVE_PLUGIN_EXPORT const struct wave_plugin_desc *const ENTRY_FN = &echo_desc;
#else
WAVE_PLUGIN_EXPORT const struct wave_plugin_desc *ENTRY_FN(void);
WAVE_PLUGIN_EXPORT const struct wave_plugin_desc *ENTRY_FN(void)
{
#ifdef BAD_NULL_DESC
	return NULL;
#else
	return &echo_desc;
#endif
}
#endif
