/* SPDX-License-Identifier: MIT */
/*
 * Two plugins linked statically into this program (least_loaded and the
 * echo test plugin built as "static_echo"): their name-scoped entry points
 * coexist, and both open and run without dlopen.
 */
#include "check_run.h"
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <wave/error.h>
#include <wave/msg.h>
#include <wave/plugin.h>
#include <wave/plugin_loader.h>

#include "least_loaded/least_loaded.h"

const struct wave_plugin_desc *wave_plugin_entry_least_loaded(void);
const struct wave_plugin_desc *wave_plugin_entry_static_echo(void);

static struct wave_msg got[4];
static unsigned n_got;

static int record(void *user, const struct wave_msg *msgs, unsigned n)
{
	(void)user;
	for (unsigned i = 0; i < n && n_got < 4; i++)
		got[n_got++] = msgs[i];
	return (int)n;
}

static struct wave_plugin_ctx *start(struct wave_plugin *p)
{
	struct wave_plugin_ctx_opts o;
	struct wave_plugin_ctx *ctx = NULL;

	wave_plugin_ctx_opts_init(&o);
	o.emit = record;
	ck_assert_int_eq(wave_plugin_ctx_create(p, &o, &ctx, NULL), 0);
	return ctx;
}

START_TEST(two_static_plugins)
{
	struct wave_plugin *ll = NULL, *echo = NULL;
	struct wave_plugin_ctx *c1, *c2;
	struct wave_msg ask = { .type = WAVE_MSG_APP_FIRST + WAVE_LL_ASK };
	struct wave_error err;

	ck_assert_int_eq(wave_plugin_open_static(wave_plugin_entry_least_loaded, &ll, &err), 0);
	ck_assert_int_eq(wave_plugin_open_static(wave_plugin_entry_static_echo, &echo, &err), 0);
	ck_assert_str_eq(wave_plugin_path(ll), "static:least_loaded");
	ck_assert_str_eq(wave_plugin_desc(echo)->name, "static_echo");
	c1 = start(ll);
	c2 = start(echo);
	ck_assert_int_eq(wave_plugin_ctx_event(c1, &ask), 0);
	ck_assert_int_eq(wave_plugin_ctx_event(c2, &ask), 0);
	ck_assert_uint_eq(n_got, 2);
	ck_assert_uint_eq(got[0].type, WAVE_MSG_APP_FIRST + WAVE_LL_ANSWER);
	ck_assert_uint_eq(got[1].type, WAVE_MSG_APP_FIRST + WAVE_LL_ASK + 1);
	wave_plugin_ctx_destroy(c1);
	wave_plugin_ctx_destroy(c2);
	wave_plugin_unload(ll);
	wave_plugin_unload(echo);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("plugin_static");
	TCase *tc = tcase_create("static");

	tcase_add_test(tc, two_static_plugins);
	suite_add_tcase(s, tc);
	return wave_check_run(s);
}
