/* SPDX-License-Identifier: MIT */
/*
 * Plugin contexts without an agent: a test context whose emit function
 * records decisions (no channel), driving the real least_loaded plugin and
 * the echo test plugin. Time is whatever the test says it is.
 */
#include "check_run.h"
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wave/config.h>
#include <wave/error.h>
#include <wave/log.h>
#include <wave/msg.h>
#include <wave/plugin.h>
#include <wave/plugin_loader.h>

#include "least_loaded/least_loaded.h"

#define BASE WAVE_MSG_APP_FIRST

/* The fake host: decisions land here. */
struct sink {
	struct wave_msg msgs[64];
	unsigned n;
	int room; /* how many more it accepts; < 0: unlimited */
	int fail; /* when non-zero, every emit returns it */
};

static int sink_emit(void *user, const struct wave_msg *msgs, unsigned n)
{
	struct sink *s = user;

	if (s->fail)
		return s->fail;
	if (s->room >= 0 && n > (unsigned)s->room)
		n = (unsigned)s->room;
	for (unsigned i = 0; i < n && s->n < 64; i++)
		s->msgs[s->n++] = msgs[i];
	if (s->room >= 0)
		s->room -= (int)n;
	return (int)n;
}

static struct sink sink;
static struct wave_plugin *plugin;
static struct wave_plugin_ctx *ctx;

/* Loads @file from the build tree and starts it with @params (JSON). */
static int start(const char *file, const char *params, uint64_t tick_ns, struct wave_error *err)
{
	struct wave_plugin_ctx_opts o;
	struct wave_params *p = NULL;
	int ret;

	memset(&sink, 0, sizeof(sink));
	sink.room = -1;
	ck_assert_int_eq(wave_plugin_load(file, NULL, &plugin, err), 0);
	if (params)
		ck_assert_int_eq(wave_params_parse(params, "domains.custom.params", &p, err), 0);
	wave_plugin_ctx_opts_init(&o);
	o.params = p;
	o.tick_ns = tick_ns;
	o.emit = sink_emit;
	o.emit_user = &sink;
	ret = wave_plugin_ctx_create(plugin, &o, &ctx, err);
	wave_params_free(p); /* the context keeps its own reference */
	return ret;
}

static void start_ll(const char *params, uint64_t tick_ns)
{
	struct wave_error err;

	ck_assert_int_eq(start(WAVE_PLUGIN_BUILD_DIR "/wave_least_loaded.so", params, tick_ns, &err),
			 0);
}

static void stop(void)
{
	wave_plugin_ctx_destroy(ctx);
	wave_plugin_unload(plugin);
	ctx = NULL;
	plugin = NULL;
}

static int load_event(uint32_t worker, uint32_t load)
{
	struct wave_msg m = { .type = BASE + WAVE_LL_LOAD };

	m.payload.u32[0] = worker;
	m.payload.u32[1] = load;
	return wave_plugin_ctx_event(ctx, &m);
}

/* Asks, and returns the worker of the answer (or -1 when none came). */
static int ask(uint64_t cookie)
{
	struct wave_msg m = { .type = BASE + WAVE_LL_ASK };
	unsigned before = sink.n;

	m.payload.u64[0] = cookie;
	if (wave_plugin_ctx_event(ctx, &m) < 0 || sink.n != before + 1)
		return -1;
	ck_assert_uint_eq(sink.msgs[before].type, BASE + WAVE_LL_ANSWER);
	ck_assert_uint_eq(sink.msgs[before].payload.u64[0], cookie);
	return (int)sink.msgs[before].payload.u32[2];
}

static uint64_t counter(const char *name)
{
	const char *n;
	uint64_t v;

	for (unsigned i = 0; wave_plugin_ctx_counter(ctx, i, &n, &v) == 0; i++)
		if (strcmp(n, name) == 0)
			return v;
	ck_abort_msg("no counter %s", name);
	return 0;
}

START_TEST(answers_least_loaded)
{
	start_ll("{\"workers\": 4, \"ask_cost\": 0}", 0);
	ck_assert_int_eq(load_event(0, 10), 0);
	ck_assert_int_eq(load_event(1, 3), 0);
	ck_assert_int_eq(load_event(2, 7), 0);
	ck_assert_int_eq(load_event(3, 5), 0);
	ck_assert_int_eq(ask(100), 1);
	ck_assert_int_eq(ask(101), 1); /* no ask cost: same answer */
	ck_assert_int_eq(load_event(1, 9), 0);
	ck_assert_int_eq(ask(102), 3);
	ck_assert_uint_eq(counter("answers"), 3);
	ck_assert_uint_eq(counter("events"), 8);
	ck_assert_uint_eq(counter("emitted"), 3);
	stop();
}
END_TEST

START_TEST(ask_cost_spreads_and_ties_go_low)
{
	start_ll("{\"workers\": 3}", 0); /* ask_cost 1 by default; all loads 0 */
	ck_assert_int_eq(ask(1), 0);
	ck_assert_int_eq(ask(2), 1);
	ck_assert_int_eq(ask(3), 2);
	ck_assert_int_eq(ask(4), 0);
	/* A report replaces the estimate, handed-out work included. */
	ck_assert_int_eq(load_event(2, 0), 0);
	ck_assert_int_eq(ask(5), 2);
	stop();
}
END_TEST

START_TEST(bad_events_are_counted)
{
	struct wave_msg other = { .type = BASE + 9 };

	start_ll("{\"workers\": 2}", 0);
	ck_assert_int_eq(load_event(2, 1), -EINVAL); /* no worker 2 */
	ck_assert_int_eq(wave_plugin_ctx_event(ctx, &other), -EINVAL);
	ck_assert_uint_eq(counter("bad_events"), 2);
	ck_assert_uint_eq(counter("event_errors"), 2);
	ck_assert_uint_eq(sink.n, 0);
	stop();
}
END_TEST

START_TEST(type_base_moves_the_protocol)
{
	struct wave_msg m = { .type = 0x9000 + WAVE_LL_ASK };

	start_ll("{\"workers\": 2, \"type_base\": 36864}", 0);
	ck_assert_int_eq(wave_plugin_ctx_event(ctx, &m), 0);
	ck_assert_uint_eq(sink.n, 1);
	ck_assert_uint_eq(sink.msgs[0].type, 0x9000 + WAVE_LL_ANSWER);
	stop();
}
END_TEST

START_TEST(full_host_ring_is_not_an_answer)
{
	start_ll("{\"workers\": 2}", 0);
	sink.room = 0;
	ck_assert_int_eq(ask(1), -1);
	ck_assert_uint_eq(counter("answers"), 0);
	ck_assert_uint_eq(counter("event_errors"), 1);
	sink.room = -1;
	ck_assert_int_eq(ask(2), 0); /* the failed answer added no load */
	sink.fail = -WAVE_ECLOSED;
	ck_assert_int_eq(ask(3), -1);
	stop();
}
END_TEST

START_TEST(ticks_publish_hints)
{
	const uint64_t ms = 1000000;

	start_ll("{\"workers\": 2}", 10 * ms);
	ck_assert_uint_eq(wave_plugin_tick_ns(ctx), 10 * ms);
	ck_assert_int_eq(load_event(0, 5), 0);
	ck_assert_int_eq(load_event(1, 2), 0);
	ck_assert_uint_eq(wave_plugin_ctx_next_tick(ctx), 0);
	ck_assert_int_eq(wave_plugin_ctx_tick(ctx, 1000 * ms), 0); /* arms */
	ck_assert_uint_eq(wave_plugin_ctx_next_tick(ctx), 1010 * ms);
	ck_assert_int_eq(wave_plugin_ctx_tick(ctx, 1009 * ms), 0);
	ck_assert_int_eq(wave_plugin_ctx_tick(ctx, 1010 * ms), 1);
	ck_assert_uint_eq(sink.n, 1);
	ck_assert_uint_eq(sink.msgs[0].type, BASE + WAVE_LL_HINT);
	ck_assert_uint_eq(sink.msgs[0].payload.u32[0], 1);
	ck_assert_uint_eq(sink.msgs[0].payload.u32[1], 2);
	ck_assert_uint_eq(wave_plugin_ctx_next_tick(ctx), 1020 * ms);
	/* Late by several periods: one tick, then one period from now. */
	ck_assert_int_eq(wave_plugin_ctx_tick(ctx, 1055 * ms), 1);
	ck_assert_uint_eq(wave_plugin_ctx_next_tick(ctx), 1065 * ms);
	ck_assert_int_eq(wave_plugin_ctx_tick(ctx, 1060 * ms), 0);
	ck_assert_uint_eq(counter("ticks"), 2);
	ck_assert_uint_eq(counter("hints"), 2);
	stop();
}
END_TEST

START_TEST(no_tick_period_never_ticks)
{
	start_ll(NULL, 0);
	ck_assert_int_eq(wave_plugin_ctx_tick(ctx, 1), 0);
	ck_assert_int_eq(wave_plugin_ctx_tick(ctx, UINT64_MAX / 2), 0);
	ck_assert_uint_eq(sink.n, 0);
	stop();
}
END_TEST

START_TEST(bad_params_fail_init)
{
	struct wave_error err;

	ck_assert_int_eq(start(WAVE_PLUGIN_BUILD_DIR "/wave_least_loaded.so", "{\"workers\": 0}", 0,
			       &err),
			 -WAVE_EPLUGIN);
	ck_assert_str_eq(err.text, "init failed: Invalid argument (-22)");
	wave_plugin_unload(plugin);
	ck_assert_int_eq(start(WAVE_PLUGIN_BUILD_DIR "/wave_least_loaded.so",
			       "{\"type_base\": 65534}", 0, &err),
			 -WAVE_EPLUGIN);
	wave_plugin_unload(plugin);
}
END_TEST

START_TEST(echo_through_emit)
{
	struct wave_msg m = { .type = BASE + 4 };
	struct wave_error err;

	ck_assert_int_eq(start(WAVE_TEST_PLUGIN_DIR "/wave_echo.so", NULL, 0, &err), 0);
	m.payload.u64[5] = 42;
	ck_assert_int_eq(wave_plugin_ctx_event(ctx, &m), 0);
	ck_assert_uint_eq(sink.n, 1);
	ck_assert_uint_eq(sink.msgs[0].type, BASE + 5);
	ck_assert_uint_eq(sink.msgs[0].payload.u64[5], 42);
	ck_assert_uint_eq(counter("echoed"), 1);
	stop();
}
END_TEST

START_TEST(events_outside_app_range_refused)
{
	struct wave_msg m = { .type = WAVE_MSG_SCHED_FIRST };

	start_ll(NULL, 0);
	ck_assert_int_eq(wave_plugin_ctx_event(ctx, &m), -EINVAL);
	ck_assert_int_eq(wave_plugin_ctx_event(ctx, NULL), -EINVAL);
	ck_assert_int_eq(wave_plugin_ctx_event(NULL, &m), -EINVAL);
	ck_assert_uint_eq(counter("events"), 0);
	/* A plugin may not emit outside the range either. */
	ck_assert_int_eq(wave_plugin_emit(ctx, &m, 1), -EINVAL);
	m.type = BASE;
	ck_assert_int_eq(wave_plugin_emit(ctx, &m, 0), -EINVAL);
	ck_assert_int_eq(wave_plugin_emit(ctx, NULL, 1), -EINVAL);
	ck_assert_int_eq(wave_plugin_emit(ctx, &m, 1), 1);
	stop();
}
END_TEST

START_TEST(no_emit_function)
{
	struct wave_plugin_ctx_opts o;
	struct wave_msg m = { .type = BASE };

	ck_assert_int_eq(wave_plugin_load(WAVE_TEST_PLUGIN_DIR "/wave_echo.so", NULL, &plugin, NULL),
			 0);
	wave_plugin_ctx_opts_init(&o);
	ck_assert_int_eq(wave_plugin_ctx_create(plugin, &o, &ctx, NULL), 0);
	ck_assert_int_eq(wave_plugin_emit(ctx, &m, 1), -ENOTCONN);
	ck_assert_int_eq(wave_plugin_ctx_event(ctx, &m), -ENOTCONN);
	stop();
}
END_TEST

START_TEST(param_accessors)
{
	start_ll("{\"i\": -3, \"u\": 7, \"d\": 2.5, \"b\": true, \"s\": \"hi\", \"neg\": -1}", 0);
	ck_assert_int_eq(wave_plugin_param_int(ctx, "i", 0), -3);
	ck_assert_int_eq(wave_plugin_param_int(ctx, "missing", 9), 9);
	ck_assert_int_eq(wave_plugin_param_int(ctx, "d", 9), 9); /* wrong type */
	ck_assert_uint_eq(wave_plugin_param_uint(ctx, "u", 0), 7);
	ck_assert_uint_eq(wave_plugin_param_uint(ctx, "neg", 5), 5);
	ck_assert_double_eq(wave_plugin_param_double(ctx, "d", 0), 2.5);
	ck_assert_double_eq(wave_plugin_param_double(ctx, "u", 0), 7.0);
	ck_assert_double_eq(wave_plugin_param_double(ctx, "s", 1.5), 1.5);
	ck_assert(wave_plugin_param_bool(ctx, "b", false));
	ck_assert(!wave_plugin_param_bool(ctx, "i", false));
	ck_assert_str_eq(wave_plugin_param_string(ctx, "s", "x"), "hi");
	ck_assert_str_eq(wave_plugin_param_string(ctx, "b", "x"), "x");
	ck_assert_int_eq(wave_plugin_param_int(NULL, "i", 4), 4);
	ck_assert_int_eq(wave_plugin_param_int(ctx, NULL, 4), 4);
	stop();
}
END_TEST

START_TEST(config_params_reach_the_plugin)
{
	const char *text = "{\"domains\": {\"custom\": {\"plugin\": \"least_loaded\", "
			   "\"tick_us\": 250, \"params\": {\"workers\": 2, \"ask_cost\": 0}}}}";
	struct wave_plugin_ctx_opts o;
	struct wave_config *cfg;

	memset(&sink, 0, sizeof(sink));
	sink.room = -1;
	ck_assert_int_eq(wave_config_parse(text, strlen(text), NULL, &cfg, NULL), 0);
	ck_assert_int_eq(wave_plugin_load(WAVE_PLUGIN_BUILD_DIR "/wave_least_loaded.so", NULL,
					  &plugin, NULL),
			 0);
	wave_plugin_ctx_opts_init(&o);
	o.params = cfg->domains[WAVE_DOMAIN_CUSTOM].params;
	o.tick_ns = cfg->domains[WAVE_DOMAIN_CUSTOM].tick_us * 1000;
	o.emit = sink_emit;
	o.emit_user = &sink;
	ck_assert_int_eq(wave_plugin_ctx_create(plugin, &o, &ctx, NULL), 0);
	wave_config_free(cfg); /* the context holds its own reference */
	ck_assert_int_eq(wave_plugin_param_uint(ctx, "workers", 0), 2);
	ck_assert_uint_eq(wave_plugin_tick_ns(ctx), 250000);
	ck_assert_int_eq(load_event(0, 4), 0);
	ck_assert_int_eq(ask(1), 1);
	ck_assert_int_eq(ask(2), 1); /* ask_cost 0 came through */
	stop();
}
END_TEST

START_TEST(counters)
{
	const char *name;
	uint64_t v;
	int id, first;

	start_ll(NULL, 0);
	ck_assert_int_eq(wave_plugin_ctx_counter(ctx, 0, &name, &v), 0);
	ck_assert_str_eq(name, "events");
	id = wave_plugin_counter(ctx, "mine");
	ck_assert_int_ge(id, 0);
	ck_assert_int_eq(wave_plugin_counter(ctx, "mine"), id);
	wave_plugin_counter_add(ctx, id, 5);
	wave_plugin_counter_add(ctx, id, 2);
	wave_plugin_counter_add(ctx, 999, 1); /* ignored */
	wave_plugin_counter_add(ctx, -1, 1);
	ck_assert_uint_eq(counter("mine"), 7);
	ck_assert_int_eq(wave_plugin_counter(ctx, ""), -EINVAL);
	ck_assert_int_eq(wave_plugin_counter(ctx, "Upper"), -EINVAL);
	ck_assert_int_eq(wave_plugin_counter(ctx, "a_name_that_is_far_too_long_for_it"), -EINVAL);
	ck_assert_int_eq(wave_plugin_counter(NULL, "x"), -EINVAL);
	first = id + 1;
	for (int i = first; i < WAVE_PLUGIN_MAX_COUNTERS; i++) {
		char n[16];
		snprintf(n, sizeof(n), "c%d", i);
		ck_assert_int_eq(wave_plugin_counter(ctx, n), i);
	}
	ck_assert_int_eq(wave_plugin_counter(ctx, "one_more"), -ENOSPC);
	ck_assert_int_eq(wave_plugin_ctx_counter(ctx, WAVE_PLUGIN_MAX_COUNTERS, NULL, NULL),
			 -ENOENT);
	ck_assert_int_eq(wave_plugin_ctx_counter(NULL, 0, NULL, NULL), -EINVAL);
	stop();
}
END_TEST

START_TEST(ctx_invalid_arguments)
{
	struct wave_plugin_ctx_opts o;
	struct wave_error err;

	ck_assert_int_eq(wave_plugin_ctx_opts_init(NULL), -EINVAL);
	ck_assert_int_eq(wave_plugin_ctx_create(NULL, NULL, &ctx, &err), -EINVAL);
	ck_assert_int_eq(err.code, -EINVAL);
	ck_assert_int_eq(wave_plugin_load(WAVE_TEST_PLUGIN_DIR "/wave_echo.so", NULL, &plugin, NULL),
			 0);
	ck_assert_int_eq(wave_plugin_ctx_create(plugin, NULL, NULL, NULL), -EINVAL);
	wave_plugin_ctx_opts_init(&o);
	o.size = 4;
	ck_assert_int_eq(wave_plugin_ctx_create(plugin, &o, &ctx, NULL), -EINVAL);
	ck_assert_int_eq(wave_plugin_ctx_tick(NULL, 1), -EINVAL);
	ck_assert_uint_eq(wave_plugin_ctx_next_tick(NULL), 0);
	ck_assert_uint_eq(wave_plugin_tick_ns(NULL), 0);
	ck_assert_ptr_null(wave_plugin_priv(NULL));
	wave_plugin_set_priv(NULL, NULL);
	wave_plugin_log(NULL, WAVE_LOG_ERROR, "ignored");
	wave_plugin_ctx_destroy(NULL);
	wave_plugin_unload(plugin);
}
END_TEST

/* Plugin log lines go through libwave's handler, prefixed with the name. */
static char last_log[512];
static void capture(enum wave_log_level level, const char *msg, void *user)
{
	(void)level;
	(void)user;
	snprintf(last_log, sizeof(last_log), "%s", msg);
}

START_TEST(logging_goes_through_libwave)
{
	wave_log_set_handler(capture, NULL);
	wave_log_set_level(WAVE_LOG_DEBUG);
	start_ll("{\"workers\": 3}", 0);
	ck_assert_str_eq(last_log, "plugin least_loaded: 3 workers, types 0x8000..0x8003");
	wave_plugin_log(ctx, WAVE_LOG_DEBUG, "x=%d", 5);
	ck_assert_str_eq(last_log, "plugin least_loaded: x=5");
	wave_log_set_level(WAVE_LOG_ERROR);
	wave_plugin_log(ctx, WAVE_LOG_DEBUG, "quiet");
	ck_assert_str_eq(last_log, "plugin least_loaded: x=5");
	wave_log_set_level(WAVE_LOG_WARN);
	ck_assert_int_eq(wave_plugin_param_int(ctx, "workers_typo", 1), 1); /* absent: silent */
	stop();
	start_ll("{\"workers\": \"three\"}", 0);
	ck_assert_str_eq(last_log, "plugin least_loaded: domains.custom.params.workers: expected a "
				   "non-negative integer; using the plugin's default");
	stop();
	/* A parameter init never read is named: most likely a typo. */
	last_log[0] = '\0';
	start_ll("{\"workers\": 2, \"ask_cots\": 3}", 0);
	ck_assert_str_eq(last_log, "plugin least_loaded: domains.custom.params.ask_cots: unknown "
				   "parameter, ignored");
	stop();
	last_log[0] = '\0';
	start_ll("{\"workers\": 2, \"ask_cost\": 3, \"type_base\": 32768}", 0);
	ck_assert_str_eq(last_log, "");
	stop();
	wave_log_set_handler(NULL, NULL);
}
END_TEST

/* ---- a plugin built against an older prefix of the ABI's tables ------- */

/* The custom ops table as plugin ABI 1.0 first had it: no on_tick. A
 * plugin compiled then carries this size; libwave must call what it has
 * and nothing past its end. */
struct custom_ops_1_0 {
	size_t size;
	int (*on_event)(struct wave_plugin_ctx *ctx, const struct wave_msg *ev);
};

static unsigned old_events;

static int old_on_event(struct wave_plugin_ctx *c, const struct wave_msg *ev)
{
	struct wave_msg d = *ev;

	old_events++;
	d.type = (uint16_t)(ev->type + 1);
	return wave_plugin_emit(c, &d, 1) == 1 ? 0 : -EAGAIN;
}

static const struct custom_ops_1_0 old_ops = { sizeof(old_ops), old_on_event };

WAVE_PLUGIN_DEFINE(old_prefix, WAVE_DOMAIN_CUSTOM, "1.0.0", "ABI 1.0 ops table", NULL, NULL,
		   (const struct wave_custom_ops *)&old_ops)

START_TEST(older_ops_prefix_runs)
{
	struct wave_plugin_ctx_opts o, big;
	struct wave_msg ev;
	struct wave_error err;

	ck_assert_int_eq(wave_plugin_open_static(wave_plugin_entry_old_prefix, &plugin, &err), 0);
	memset(&sink, 0, sizeof(sink));
	sink.room = -1;
	wave_plugin_ctx_opts_init(&o);
	o.tick_ns = 1000;
	o.emit = sink_emit;
	o.emit_user = &sink;
	/* A context options struct larger than this libwave knows: refused. */
	big = o;
	big.size = sizeof(big) + 8;
	ck_assert_int_eq(wave_plugin_ctx_create(plugin, &big, &ctx, &err), -EINVAL);
	ck_assert_int_eq(wave_plugin_ctx_create(plugin, &o, &ctx, &err), 0);
	/* Ticks: the old table has no on_tick, so nothing is armed or run. */
	ck_assert_int_eq(wave_plugin_ctx_tick(ctx, 1000), 0);
	ck_assert_int_eq(wave_plugin_ctx_tick(ctx, 1000000), 0);
	ck_assert_uint_eq(wave_plugin_ctx_next_tick(ctx), 0);
	memset(&ev, 0, sizeof(ev));
	ev.type = BASE + 1;
	ck_assert_int_eq(wave_plugin_ctx_event(ctx, &ev), 0);
	ck_assert_uint_eq(old_events, 1);
	ck_assert_uint_eq(sink.n, 1);
	ck_assert_uint_eq(sink.msgs[0].type, BASE + 2);
	stop();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("plugin_ctx");
	TCase *ll = tcase_create("least_loaded");
	TCase *api = tcase_create("api");

	tcase_add_test(ll, answers_least_loaded);
	tcase_add_test(ll, older_ops_prefix_runs);
	tcase_add_test(ll, ask_cost_spreads_and_ties_go_low);
	tcase_add_test(ll, bad_events_are_counted);
	tcase_add_test(ll, type_base_moves_the_protocol);
	tcase_add_test(ll, full_host_ring_is_not_an_answer);
	tcase_add_test(ll, ticks_publish_hints);
	tcase_add_test(ll, no_tick_period_never_ticks);
	tcase_add_test(ll, bad_params_fail_init);
	tcase_add_test(ll, config_params_reach_the_plugin);
	tcase_add_test(api, echo_through_emit);
	tcase_add_test(api, events_outside_app_range_refused);
	tcase_add_test(api, no_emit_function);
	tcase_add_test(api, param_accessors);
	tcase_add_test(api, counters);
	tcase_add_test(api, ctx_invalid_arguments);
	tcase_add_test(api, logging_goes_through_libwave);
	suite_add_tcase(s, ll);
	suite_add_tcase(s, api);
	return wave_check_run(s);
}
