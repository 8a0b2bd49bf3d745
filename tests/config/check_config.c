/* SPDX-License-Identifier: MIT */
/* Unit tests of the configuration API beyond the data-driven cases:
 * arguments, files, sources, derived values, parameters, error printing. */
#include "check_run.h"
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <wave/wave.h>

static int parse(const char *text, const char *source, struct wave_config **cfg,
		 struct wave_error *err)
{
	return wave_config_parse(text, strlen(text), source, cfg, err);
}

START_TEST(invalid_arguments)
{
	struct wave_config *cfg = NULL;
	struct wave_chan_opts o;
	struct wave_error err;

	ck_assert_int_eq(wave_config_load(NULL, &cfg, &err), -EINVAL);
	ck_assert_int_eq(err.code, -EINVAL);
	ck_assert_int_eq(wave_config_load("x.json", NULL, NULL), -EINVAL);
	ck_assert_int_eq(wave_config_parse(NULL, 0, NULL, &cfg, NULL), -EINVAL);
	ck_assert_int_eq(wave_config_parse("{}", 2, NULL, NULL, NULL), -EINVAL);
	ck_assert_int_eq(wave_config_chan_opts(NULL, &o), -EINVAL);
	ck_assert_ptr_null(cfg);
	wave_config_free(NULL);
	ck_assert_int_eq(wave_params_parse(NULL, NULL, NULL, NULL), -EINVAL);
	wave_params_free(NULL);
}
END_TEST

START_TEST(missing_file_names_it)
{
	struct wave_config *cfg = NULL;
	struct wave_error err;

	ck_assert_int_eq(wave_config_load("/nonexistent/agent.json", &cfg, &err), -WAVE_ECONFIG);
	ck_assert_str_eq(err.source, "/nonexistent/agent.json");
	ck_assert_str_eq(err.text, "cannot open: No such file or directory");
	ck_assert_int_eq(err.line, 0);
	ck_assert_int_eq(wave_config_load("/", &cfg, &err), -WAVE_ECONFIG);
	ck_assert_str_eq(err.text, "is a directory; a configuration must be a regular file");
	ck_assert_int_eq(wave_config_load("", &cfg, &err), -WAVE_ECONFIG);
	ck_assert_str_eq(err.source, "\"\"");
	ck_assert_str_eq(err.text, "an empty file name names no configuration");
	/* A regular file whose read fails (here at once: offset 0 of this
	 * process's memory is not mapped) is an error, not an empty file. */
	ck_assert_int_eq(wave_config_load("/proc/self/mem", &cfg, &err), -WAVE_ECONFIG);
	ck_assert_str_eq(err.text, "cannot read: Input/output error");
	ck_assert_ptr_null(cfg);
}
END_TEST

START_TEST(success_clears_error)
{
	struct wave_config *cfg = NULL;
	struct wave_error err;

	memset(&err, 0x5a, sizeof(err));
	ck_assert_int_eq(parse("{}", "a.json", &cfg, &err), 0);
	ck_assert_int_eq(err.code, 0);
	ck_assert_str_eq(err.text, "");
	ck_assert_str_eq(cfg->source, "a.json");
	ck_assert_uint_eq(cfg->size, sizeof(*cfg));
	wave_config_free(cfg);
}
END_TEST

START_TEST(string_source_and_unterminated_text)
{
	/* Only the first len bytes count: the rest is not JSON. */
	const char text[] = "{\"cpus\": [1]}GARBAGE";
	struct wave_config *cfg = NULL;
	struct wave_error err;

	ck_assert_int_eq(wave_config_parse(text, 13, NULL, &cfg, &err), 0);
	ck_assert_uint_eq(cfg->n_cpus, 1);
	wave_config_free(cfg);
	ck_assert_int_eq(wave_config_parse(text, 14, NULL, &cfg, &err), -WAVE_ECONFIG);
	ck_assert_str_eq(err.source, "<string>");
	ck_assert_int_eq(err.line, 1);
}
END_TEST

START_TEST(relative_plugin_path_follows_the_file)
{
	struct wave_config *cfg = NULL;

	ck_assert_int_eq(parse("{\"plugin_path\": [\"lib/p\", \"/abs\"]}", "/etc/wave/agent.json",
			       &cfg, NULL),
			 0);
	ck_assert_uint_eq(cfg->n_plugin_path, 2);
	ck_assert_str_eq(cfg->plugin_path[0], "/etc/wave/lib/p");
	ck_assert_str_eq(cfg->plugin_path[1], "/abs");
	wave_config_free(cfg);
	/* So does a domain's plugin named by a relative file; a name or an
	 * absolute file stays as it is. */
	ck_assert_int_eq(parse("{\"domains\": {\"custom\": {\"plugin\": \"p/wave_x.so\"},"
			       " \"sched\": {\"plugin\": \"/abs/wave_sched_fifo.so\"},"
			       " \"rpc\": {\"plugin\": \"rpc_hash\"}}}",
			       "/etc/wave/agent.json", &cfg, NULL),
			 0);
	ck_assert_str_eq(cfg->domains[WAVE_DOMAIN_CUSTOM].plugin, "/etc/wave/p/wave_x.so");
	ck_assert_str_eq(cfg->domains[WAVE_DOMAIN_SCHED].plugin, "/abs/wave_sched_fifo.so");
	ck_assert_str_eq(cfg->domains[WAVE_DOMAIN_RPC].plugin, "rpc_hash");
	wave_config_free(cfg);
}
END_TEST

START_TEST(channel_options)
{
	const char *text = "{\"channel\": {\"host_to_agent_slots\": 64, \"agent_to_host_slots\": 128,"
			   " \"max_slots\": 4096, \"delay_ns\": 1000, \"spin_ns\": 5},"
			   " \"auth\": {\"allow_uids\": [7, 8]}}";
	struct wave_config *cfg = NULL;
	struct wave_chan_opts o;

	ck_assert_int_eq(parse(text, NULL, &cfg, NULL), 0);
	ck_assert_int_eq(wave_config_chan_opts(cfg, &o), 0);
	ck_assert_uint_eq(o.size, sizeof(o));
	ck_assert_uint_eq(o.host_to_agent_slots, 64);
	ck_assert_uint_eq(o.agent_to_host_slots, 128);
	ck_assert_uint_eq(o.max_slots, 4096);
	ck_assert_uint_eq(o.delay_ns, 1000);
	ck_assert_uint_eq(o.spin_ns, 5);
	ck_assert_uint_eq(o.n_allow_uids, 2);
	ck_assert_uint_eq(o.allow_uids[1], 8);
	ck_assert_int_eq(o.timeout_ms, 5000); /* untouched default */
	wave_config_free(cfg);
}
END_TEST

/* auth.token protects fabric:// listeners too: the channel options carry
 * it (a daemon's listeners are opened with exactly these options). */
START_TEST(token_reaches_channel_options)
{
	struct wave_config *cfg = NULL;
	struct wave_chan_opts o;

	ck_assert_int_eq(parse("{\"auth\": {\"token\": \"s3cret\"}}", NULL, &cfg, NULL), 0);
	ck_assert_int_eq(wave_config_chan_opts(cfg, &o), 0);
	ck_assert_ptr_nonnull(o.token);
	ck_assert_str_eq(o.token, "s3cret");
	wave_config_free(cfg);

	ck_assert_int_eq(parse("{}", NULL, &cfg, NULL), 0);
	ck_assert_int_eq(wave_config_chan_opts(cfg, &o), 0);
	ck_assert_ptr_null(o.token); /* none asked: fabric:// asks for none */
	wave_config_free(cfg);

	/* Longer than a channel token, without a fabric:// listener: the
	 * session checks it (AUTH messages), the channel options stay valid. */
	ck_assert_int_eq(parse("{\"listen\": [\"shm:///tmp/a.sock\"], \"auth\": {\"token\": "
			       "\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdefX\"}}",
			       NULL, &cfg, NULL), 0);
	ck_assert_int_eq(wave_config_chan_opts(cfg, &o), 0);
	ck_assert_ptr_null(o.token);
	wave_config_free(cfg);
}
END_TEST

/* A FIFO as the configuration would block open() until a writer comes (a
 * daemon's reload with it); it must be refused at once, by name. Without
 * the fix this test hangs until Check's timeout fails it. */
START_TEST(fifo_refused)
{
	char dir[] = "/tmp/wave-config-XXXXXX", path[64];
	struct wave_config *cfg = NULL;
	struct wave_error err;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/agent.json", dir);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	ck_assert_int_eq(wave_config_load(path, &cfg, &err), -WAVE_ECONFIG);
	ck_assert_ptr_null(cfg);
	ck_assert_str_eq(err.source, path);
	ck_assert_str_eq(err.text, "is a FIFO; a configuration must be a regular file");
	unlink(path);
	rmdir(dir);
}
END_TEST

START_TEST(domain_params_kept)
{
	const char *text = "{\"domains\": {\"custom\": {\"plugin\": \"p\", \"tick_us\": 7}}}";
	struct wave_config *cfg = NULL;

	ck_assert_int_eq(parse(text, NULL, &cfg, NULL), 0);
	ck_assert_int_eq(cfg->domains[WAVE_DOMAIN_CUSTOM].enabled, 1);
	ck_assert_ptr_nonnull(cfg->domains[WAVE_DOMAIN_CUSTOM].params); /* empty, not NULL */
	ck_assert_uint_eq(cfg->domains[WAVE_DOMAIN_CUSTOM].tick_us, 7);
	ck_assert_int_eq(cfg->domains[WAVE_DOMAIN_SCHED].enabled, 0);
	ck_assert_ptr_null(cfg->domains[WAVE_DOMAIN_SCHED].params);
	wave_config_free(cfg);
}
END_TEST

START_TEST(params_parse)
{
	struct wave_params *p = NULL;
	struct wave_error err;

	ck_assert_int_eq(wave_params_parse("{\"a\": 1}", NULL, &p, &err), 0);
	ck_assert_ptr_nonnull(p);
	wave_params_free(p);
	ck_assert_int_eq(wave_params_parse("[1]", "my.params", &p, &err), -WAVE_ECONFIG);
	ck_assert_str_eq(err.source, "my.params");
	ck_assert_str_eq(err.text, "expected an object");
	ck_assert_int_eq(wave_params_parse("{\"a\": }", NULL, &p, &err), -WAVE_ECONFIG);
	ck_assert_str_eq(err.source, "<params>");
	ck_assert_int_eq(err.line, 1);
	ck_assert_int_gt(err.column, 0);
}
END_TEST

START_TEST(error_format)
{
	struct wave_error err;
	char buf[64];

	memset(&err, 0, sizeof(err));
	strcpy(err.text, "boom");
	ck_assert_int_eq(wave_error_format(&err, buf, sizeof(buf)), 4);
	ck_assert_str_eq(buf, "boom");
	strcpy(err.source, "f.so");
	wave_error_format(&err, buf, sizeof(buf));
	ck_assert_str_eq(buf, "f.so: boom");
	err.line = 3;
	err.column = 14;
	wave_error_format(&err, buf, sizeof(buf));
	ck_assert_str_eq(buf, "f.so:3:14: boom");
	/* Truncation reports the full length, like snprintf. */
	ck_assert_int_eq(wave_error_format(&err, buf, 4), 15);
	ck_assert_str_eq(buf, "f.s");
	ck_assert_int_eq(wave_error_format(&err, buf, 0), -EINVAL);
	ck_assert_int_eq(wave_error_format(NULL, buf, 4), -EINVAL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("api");

	tcase_add_test(tc, invalid_arguments);
	tcase_add_test(tc, missing_file_names_it);
	tcase_add_test(tc, success_clears_error);
	tcase_add_test(tc, string_source_and_unterminated_text);
	tcase_add_test(tc, relative_plugin_path_follows_the_file);
	tcase_add_test(tc, channel_options);
	tcase_add_test(tc, token_reaches_channel_options);
	tcase_add_test(tc, fifo_refused);
	tcase_add_test(tc, domain_params_kept);
	tcase_add_test(tc, params_parse);
	tcase_add_test(tc, error_format);
	suite_add_tcase(s, tc);
	return wave_check_run(s);
}
