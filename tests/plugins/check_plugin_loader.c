/* SPDX-License-Identifier: MIT */
/*
 * The plugin loader: finding plugins, and refusing each kind of broken one
 * with -WAVE_EPLUGIN, the file in wave_error.source and the problem in
 * wave_error.text. Each refusal has its own purpose-built plugin
 * (test_plugin.c with one BAD_* defect).
 */
#include "check_run.h"
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <wave/domain.h>
#include <wave/error.h>
#include <wave/plugin.h>
#include <wave/plugin_custom.h>
#include <wave/plugin_loader.h>
#include <wave/plugin_sched.h>

#define DIR WAVE_TEST_PLUGIN_DIR

/* Loads DIR/wave_<name>.so and expects a refusal with exactly @text. */
static void expect_refusal(const char *name, const char *text)
{
	struct wave_plugin *p = NULL;
	struct wave_error err;
	char path[512];

	snprintf(path, sizeof(path), "%s/wave_%s.so", DIR, name);
	ck_assert_int_eq(wave_plugin_load(path, NULL, &p, &err), -WAVE_EPLUGIN);
	ck_assert_int_eq(err.code, -WAVE_EPLUGIN);
	ck_assert_ptr_null(p);
	ck_assert_str_eq(err.source, path);
	ck_assert_int_eq(err.line, 0);
	ck_assert_str_eq(err.text, text);
}

START_TEST(loads_valid_plugin_by_path)
{
	struct wave_plugin *p = NULL;
	struct wave_error err;
	const struct wave_plugin_desc *d;

	ck_assert_int_eq(wave_plugin_load(DIR "/wave_echo.so", NULL, &p, &err), 0);
	ck_assert_int_eq(err.code, 0);
	d = wave_plugin_desc(p);
	ck_assert_str_eq(d->name, "echo");
	ck_assert_str_eq(d->version, "0.0.1");
	ck_assert_uint_eq(d->domain, WAVE_DOMAIN_CUSTOM);
	ck_assert_str_eq(wave_plugin_path(p), DIR "/wave_echo.so");
	wave_plugin_unload(p);
}
END_TEST

START_TEST(finds_plugin_on_search_path)
{
	const char *dirs[] = { "/nonexistent", WAVE_PLUGIN_BUILD_DIR };
	struct wave_plugin_load_opts o;
	struct wave_plugin *p = NULL;

	wave_plugin_load_opts_init(&o);
	o.search_path = dirs;
	o.n_search_path = 2;
	o.flags = WAVE_PLUGIN_F_NO_ENV | WAVE_PLUGIN_F_NO_DEFAULT;
	o.domain = WAVE_DOMAIN_CUSTOM;
	ck_assert_int_eq(wave_plugin_load("least_loaded", &o, &p, NULL), 0);
	ck_assert_str_eq(wave_plugin_path(p), WAVE_PLUGIN_BUILD_DIR "/wave_least_loaded.so");
	wave_plugin_unload(p);
}
END_TEST

START_TEST(finds_plugin_on_environment_path)
{
	struct wave_plugin_load_opts o;
	struct wave_plugin *p = NULL;

	/* Empty entries are skipped; the first existing file wins. */
	setenv("WAVE_PLUGIN_PATH", "::/nonexistent:" DIR ":" WAVE_PLUGIN_BUILD_DIR, 1);
	wave_plugin_load_opts_init(&o);
	o.flags = WAVE_PLUGIN_F_NO_DEFAULT;
	ck_assert_int_eq(wave_plugin_load("echo", &o, &p, NULL), 0);
	ck_assert_str_eq(wave_plugin_path(p), DIR "/wave_echo.so");
	wave_plugin_unload(p);
	/* ...and F_NO_ENV ignores the variable. */
	o.flags |= WAVE_PLUGIN_F_NO_ENV;
	ck_assert_int_eq(wave_plugin_load("echo", &o, &p, NULL), -WAVE_EPLUGIN);
}
END_TEST

/* What every "not found" ends with: where to point the loader instead. */
#define NOT_FOUND_HINT                                                               \
	"; add its directory to WAVE_PLUGIN_PATH or the search path (plugin_path, "  \
	"--plugin-dir), or name the file (a path with a '/')"

START_TEST(not_found_lists_paths_searched)
{
	const char *dirs[] = { "/nonexistent/a", "/nonexistent/b" };
	struct wave_plugin_load_opts o;
	struct wave_plugin *p = NULL;
	struct wave_error err;

	setenv("WAVE_PLUGIN_PATH", "/nonexistent/env", 1);
	wave_plugin_load_opts_init(&o);
	o.search_path = dirs;
	o.n_search_path = 2;
	o.flags = WAVE_PLUGIN_F_NO_DEFAULT;
	ck_assert_int_eq(wave_plugin_load("nothere", &o, &p, &err), -WAVE_EPLUGIN);
	ck_assert_str_eq(err.source, "wave_nothere.so");
	ck_assert_str_eq(err.text, "not found (searched: /nonexistent/a/wave_nothere.so, "
				   "/nonexistent/b/wave_nothere.so, "
				   "/nonexistent/env/wave_nothere.so)" NOT_FOUND_HINT);
	o.n_search_path = 0;
	o.flags = WAVE_PLUGIN_F_NO_DEFAULT | WAVE_PLUGIN_F_NO_ENV;
	ck_assert_int_eq(wave_plugin_load("nothere", &o, &p, &err), -WAVE_EPLUGIN);
	ck_assert_str_eq(err.text, "not found (searched: no directories)" NOT_FOUND_HINT);
}
END_TEST

/* This test runs from the build tree, as an example does before anyone
 * installs it: with nothing else to go on, the plugins built beside its
 * libwave are found, not those of an installed copy (installed libwave
 * never looks in a build tree: tests/packaging/install_consumer.sh). */
START_TEST(build_tree_finds_its_plugins)
{
	struct wave_plugin *p = NULL;
	struct wave_error err;

	unsetenv("WAVE_PLUGIN_PATH");
	ck_assert_int_eq(wave_plugin_load("sched_fifo", NULL, &p, &err), 0);
	ck_assert_str_eq(wave_plugin_path(p), WAVE_PLUGIN_BUILD_DIR "/wave_sched_fifo.so");
	wave_plugin_unload(p);
	ck_assert_int_eq(wave_plugin_load("nothere", NULL, &p, &err), -WAVE_EPLUGIN);
	ck_assert_str_eq(err.text, "not found (searched: " WAVE_PLUGIN_BUILD_DIR
				   "/wave_nothere.so)" NOT_FOUND_HINT);
	/* The same directory again (in WAVE_PLUGIN_PATH) is listed once. */
	setenv("WAVE_PLUGIN_PATH", "/nonexistent:" WAVE_PLUGIN_BUILD_DIR, 1);
	ck_assert_int_eq(wave_plugin_load("nothere", NULL, &p, &err), -WAVE_EPLUGIN);
	ck_assert_str_eq(err.text, "not found (searched: /nonexistent/wave_nothere.so, "
				   WAVE_PLUGIN_BUILD_DIR "/wave_nothere.so)" NOT_FOUND_HINT);
	unsetenv("WAVE_PLUGIN_PATH");
}
END_TEST

START_TEST(long_search_list_is_truncated)
{
	static char names[64][80];
	const char *dirs[64];
	struct wave_plugin_load_opts o;
	struct wave_plugin *p = NULL;
	struct wave_error err;

	/* Distinct: a directory named twice is listed once. */
	for (size_t i = 0; i < 64; i++) {
		snprintf(names[i], sizeof(names[i]),
			 "/nonexistent/a/rather/long/directory/name/to/fill/the/error/text%zu", i);
		dirs[i] = names[i];
	}
	wave_plugin_load_opts_init(&o);
	o.search_path = dirs;
	o.n_search_path = 64;
	o.flags = WAVE_PLUGIN_F_NO_DEFAULT | WAVE_PLUGIN_F_NO_ENV;
	ck_assert_int_eq(wave_plugin_load("nothere", &o, &p, &err), -WAVE_EPLUGIN);
	ck_assert_ptr_nonnull(strstr(err.text, ", ...)"));
	ck_assert_uint_lt(strlen(err.text), sizeof(err.text) - 1);
}
END_TEST

START_TEST(invalid_arguments)
{
	struct wave_plugin_load_opts o;
	struct wave_plugin *p = NULL;
	struct wave_error err;

	ck_assert_int_eq(wave_plugin_load(NULL, NULL, &p, &err), -EINVAL);
	ck_assert_int_eq(err.code, -EINVAL);
	ck_assert_int_eq(wave_plugin_load("echo", NULL, NULL, NULL), -EINVAL);
	ck_assert_int_eq(wave_plugin_load_opts_init(NULL), -EINVAL);
	wave_plugin_load_opts_init(&o);
	o.size = 8;
	ck_assert_int_eq(wave_plugin_load("echo", &o, &p, NULL), -EINVAL);
	wave_plugin_load_opts_init(&o);
	o.n_search_path = 1;
	ck_assert_int_eq(wave_plugin_load("echo", &o, &p, NULL), -EINVAL);
	wave_plugin_load_opts_init(&o);
	o.flags = 1u << 7;
	ck_assert_int_eq(wave_plugin_load("echo", &o, &p, NULL), -EINVAL);
	wave_plugin_load_opts_init(&o);
	o.domain = WAVE_DOMAIN_COUNT;
	ck_assert_int_eq(wave_plugin_load("echo", &o, &p, NULL), -EINVAL);
	ck_assert_int_eq(wave_plugin_open_static(NULL, &p, NULL), -EINVAL);
	ck_assert_ptr_null(p);
	ck_assert_ptr_null(wave_plugin_desc(NULL));
	ck_assert_ptr_null(wave_plugin_path(NULL));
	wave_plugin_unload(NULL);
}
END_TEST

START_TEST(bad_names)
{
	struct wave_plugin *p = NULL;
	struct wave_error err;

	ck_assert_int_eq(wave_plugin_load("least-loaded", NULL, &p, &err), -WAVE_EPLUGIN);
	ck_assert_str_eq(err.source, "least-loaded");
	ck_assert_str_eq(err.text, "invalid plugin name (letters, digits and '_', at most 63)");
	ck_assert_int_eq(wave_plugin_load("/usr/lib/libfoo.so", NULL, &p, &err), -WAVE_EPLUGIN);
	ck_assert_str_eq(err.source, "/usr/lib/libfoo.so");
	ck_assert_str_eq(err.text, "a plugin file must be named wave_<name>.so, "
				   "<name> made of letters, digits and '_'");
}
END_TEST

START_TEST(refuses_not_a_shared_object)
{
	struct wave_plugin *p = NULL;
	struct wave_error err;

	ck_assert_int_eq(wave_plugin_load(DIR "/wave_not_elf.so", NULL, &p, &err), -WAVE_EPLUGIN);
	ck_assert_str_eq(err.source, DIR "/wave_not_elf.so");
	/* The rest is the dynamic loader's own words. */
	ck_assert_msg(strncmp(err.text, "cannot load: ", 13) == 0 && strlen(err.text) > 13,
		      "%s", err.text);
}
END_TEST

START_TEST(refuses_missing_file)
{
	struct wave_plugin *p = NULL;
	struct wave_error err;

	ck_assert_int_eq(wave_plugin_load(DIR "/wave_gone.so", NULL, &p, &err), -WAVE_EPLUGIN);
	ck_assert_str_eq(err.source, DIR "/wave_gone.so");
	ck_assert_ptr_nonnull(strstr(err.text, "No such file or directory"));
}
END_TEST

START_TEST(refuses_unresolved_symbol)
{
	struct wave_plugin *p = NULL;
	struct wave_error err;

	/* RTLD_NOW: a missing symbol fails the load, not a later call. */
	ck_assert_int_eq(wave_plugin_load(DIR "/wave_unresolved.so", NULL, &p, &err),
			 -WAVE_EPLUGIN);
	ck_assert_ptr_nonnull(strstr(err.text, "cannot load: "));
	ck_assert_ptr_nonnull(strstr(err.text, "wave_test_no_such_function"));
}
END_TEST

START_TEST(refuses_no_entry)
{
	expect_refusal("no_entry",
		       "no entry point wave_plugin_entry_no_entry (is the file renamed? plugin "
		       "<name> must be in wave_<name>.so and defined with WAVE_PLUGIN_DEFINE)");
}
END_TEST

START_TEST(refuses_data_entry)
{
	expect_refusal("data_entry", "wave_plugin_entry_data_entry is not a function (define it "
				     "with WAVE_PLUGIN_DEFINE)");
}
END_TEST

/* Copies @from to @to through a new file renamed over it: a new inode,
 * as `install` or a build's output moved in place gives. */
static void install_file(const char *from, const char *to)
{
	char tmp[512], buf[65536];
	FILE *in = fopen(from, "rb"), *out;
	size_t n;

	snprintf(tmp, sizeof(tmp), "%s.new", to);
	ck_assert_ptr_nonnull(in);
	ck_assert_ptr_nonnull(out = fopen(tmp, "wb"));
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		ck_assert_uint_eq(fwrite(buf, 1, n, out), n);
	ck_assert_int_eq(fclose(out), 0);
	fclose(in);
	ck_assert_int_eq(rename(tmp, to), 0);
}

/* A hot swap after the plugin was rebuilt and installed over the running
 * one: the second load is the new build, not the object already loaded
 * under that path, and both stay usable; loading an unchanged file again
 * shares what is loaded. */
START_TEST(loads_plugin_replaced_while_loaded)
{
	struct wave_plugin *p1 = NULL, *p2 = NULL, *p3 = NULL;
	char dir[] = "/tmp/wave-plugin-swap-XXXXXX", path[512];
	struct wave_error err;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/wave_swap.so", dir);
	install_file(DIR "/v1/wave_swap.so", path);
	ck_assert_int_eq(wave_plugin_load(path, NULL, &p1, &err), 0);
	ck_assert_str_eq(wave_plugin_desc(p1)->version, "0.0.1");
	install_file(DIR "/v2/wave_swap.so", path);
	ck_assert_int_eq(wave_plugin_load(path, NULL, &p2, &err), 0);
	ck_assert_str_eq(wave_plugin_desc(p2)->version, "0.0.2");
	ck_assert_str_eq(wave_plugin_path(p2), path);
	ck_assert_int_eq(wave_plugin_load(path, NULL, &p3, &err), 0);
	ck_assert_ptr_eq(wave_plugin_desc(p3), wave_plugin_desc(p2));
	ck_assert_str_eq(wave_plugin_desc(p1)->version, "0.0.1");
	wave_plugin_unload(p1);
	wave_plugin_unload(p2);
	ck_assert_str_eq(wave_plugin_desc(p3)->version, "0.0.2");
	wave_plugin_unload(p3);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

/* The texts name the current ABI version, so they follow its bumps. */
START_TEST(refuses_abi_major)
{
	char want[128];

	snprintf(want, sizeof(want), "plugin ABI %d.%d found where %d.x is needed",
		 WAVE_PLUGIN_ABI_MAJOR + 1, WAVE_PLUGIN_ABI_MINOR, WAVE_PLUGIN_ABI_MAJOR);
	expect_refusal("abi_major", want);
}
END_TEST

START_TEST(refuses_newer_minor)
{
	char want[256];

	snprintf(want, sizeof(want),
		 "plugin ABI %d.%d is newer than this libwave's %d.%d; rebuild the "
		 "plugin against this libwave, or update libwave",
		 WAVE_PLUGIN_ABI_MAJOR, WAVE_PLUGIN_ABI_MINOR + 1, WAVE_PLUGIN_ABI_MAJOR,
		 WAVE_PLUGIN_ABI_MINOR);
	expect_refusal("abi_minor", want);
}
END_TEST

START_TEST(refuses_truncated_descriptor)
{
	char want[128];

	snprintf(want, sizeof(want), "descriptor is 16 bytes, ABI %d.%d descriptors are %zu",
		 WAVE_PLUGIN_ABI_MAJOR, WAVE_PLUGIN_ABI_MINOR, sizeof(struct wave_plugin_desc));
	expect_refusal("truncated", want);
}
END_TEST

START_TEST(refuses_null_descriptor)
{
	expect_refusal("null_desc", "the entry point returned no descriptor");
}
END_TEST

START_TEST(refuses_no_name)
{
	expect_refusal("no_name", "descriptor has no name (letters, digits and '_', at most 63)");
}
END_TEST

START_TEST(refuses_wrong_name)
{
	expect_refusal("wrong_name", "descriptor is named \"someone_else\" but the file is for "
				     "\"wrong_name\" (plugin <name> must be in wave_<name>.so)");
}
END_TEST

START_TEST(refuses_no_version)
{
	expect_refusal("no_version", "descriptor has no version");
}
END_TEST

START_TEST(refuses_reserved_flags)
{
	expect_refusal("flags", "descriptor flags 0x1 are reserved and must be 0");
}
END_TEST

START_TEST(refuses_unknown_domain)
{
	expect_refusal("bad_domain", "unknown domain 7 (known: 0 custom, 1 sched, 2 mem, 3 rpc)");
}
END_TEST

/* A sched plugin whose table is a custom one: too small to hold the
 * required sched ops. */
START_TEST(refuses_sched_with_custom_ops)
{
	char want[128];

	snprintf(want, sizeof(want), "sched ops table is %zu bytes, at least %zu are needed",
		 sizeof(struct wave_custom_ops), sizeof(struct wave_sched_ops));
	expect_refusal("sched_domain", want);
}
END_TEST

START_TEST(loads_sched_plugins)
{
	static const char *const names[] = { "sched_fifo", "sched_shinjuku", "sched_edf" };
	const char *dirs[] = { WAVE_PLUGIN_BUILD_DIR };
	struct wave_plugin_load_opts o;
	struct wave_plugin *p = NULL;
	struct wave_error err;

	wave_plugin_load_opts_init(&o);
	o.search_path = dirs;
	o.n_search_path = 1;
	o.flags = WAVE_PLUGIN_F_NO_ENV | WAVE_PLUGIN_F_NO_DEFAULT;
	o.domain = WAVE_DOMAIN_SCHED;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		ck_assert_msg(wave_plugin_load(names[i], &o, &p, &err) == 0, "%s", err.text);
		ck_assert_uint_eq(wave_plugin_desc(p)->domain, WAVE_DOMAIN_SCHED);
		ck_assert_uint_ge(wave_plugin_desc(p)->abi_minor, 1);
		wave_plugin_unload(p);
	}
	o.domain = WAVE_DOMAIN_CUSTOM;
	ck_assert_int_eq(wave_plugin_load("sched_fifo", &o, &p, &err), -WAVE_EPLUGIN);
	ck_assert_str_eq(err.text, "is a sched plugin where a custom plugin is needed");
}
END_TEST

START_TEST(refuses_wrong_domain)
{
	struct wave_plugin_load_opts o;
	struct wave_plugin *p = NULL;
	struct wave_error err;

	wave_plugin_load_opts_init(&o);
	o.domain = WAVE_DOMAIN_RPC;
	ck_assert_int_eq(wave_plugin_load(DIR "/wave_echo.so", &o, &p, &err), -WAVE_EPLUGIN);
	ck_assert_str_eq(err.text, "is a custom plugin where a rpc plugin is needed");
}
END_TEST

START_TEST(refuses_no_ops)
{
	expect_refusal("no_ops", "no ops table for domain custom");
}
END_TEST

START_TEST(refuses_small_ops)
{
	char want[128];

	snprintf(want, sizeof(want), "custom ops table is %zu bytes, at least %zu are needed",
		 sizeof(size_t), sizeof(size_t) + sizeof(void *));
	expect_refusal("small_ops", want);
}
END_TEST

START_TEST(refuses_missing_op)
{
	expect_refusal("missing_on_event", "missing op on_event (required for custom plugins)");
}
END_TEST

START_TEST(init_failure_is_reported)
{
	struct wave_plugin_ctx *ctx = NULL;
	struct wave_plugin *p = NULL;
	struct wave_error err;

	ck_assert_int_eq(wave_plugin_load(DIR "/wave_init_fails.so", NULL, &p, &err), 0);
	ck_assert_int_eq(wave_plugin_ctx_create(p, NULL, &ctx, &err), -WAVE_EPLUGIN);
	ck_assert_ptr_null(ctx);
	ck_assert_str_eq(err.source, DIR "/wave_init_fails.so");
	ck_assert_str_eq(err.text, "init failed: Input/output error (-5)");
	wave_plugin_unload(p);
}
END_TEST

START_TEST(ops_check_macro)
{
	/* An ops table from an "older" plugin that ends before on_tick. */
	struct wave_custom_ops old = { .size = offsetof(struct wave_custom_ops, on_tick) };
	struct wave_custom_ops cur = { .size = sizeof(cur) };
	const struct wave_custom_ops *none = NULL;

	old.on_tick = (void (*)(struct wave_plugin_ctx *, uint64_t))1; /* beyond its size */
	ck_assert(!WAVE_OPS_HAS(&old, struct wave_custom_ops, on_tick));
	ck_assert(!WAVE_OPS_HAS(&cur, struct wave_custom_ops, on_tick));
	cur.on_tick = old.on_tick;
	ck_assert(WAVE_OPS_HAS(&cur, struct wave_custom_ops, on_tick));
	ck_assert(!WAVE_OPS_HAS(none, struct wave_custom_ops, on_event));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("plugin_loader");
	TCase *find = tcase_create("find");
	TCase *refuse = tcase_create("refuse");

	tcase_add_test(find, loads_valid_plugin_by_path);
	tcase_add_test(find, finds_plugin_on_search_path);
	tcase_add_test(find, finds_plugin_on_environment_path);
	tcase_add_test(find, not_found_lists_paths_searched);
	tcase_add_test(find, build_tree_finds_its_plugins);
	tcase_add_test(find, long_search_list_is_truncated);
	tcase_add_test(find, invalid_arguments);
	tcase_add_test(find, bad_names);
	tcase_add_test(find, ops_check_macro);
	tcase_add_test(refuse, refuses_not_a_shared_object);
	tcase_add_test(refuse, refuses_missing_file);
	tcase_add_test(refuse, refuses_unresolved_symbol);
	tcase_add_test(refuse, refuses_no_entry);
	tcase_add_test(refuse, refuses_data_entry);
	tcase_add_test(find, loads_plugin_replaced_while_loaded);
	tcase_add_test(refuse, refuses_abi_major);
	tcase_add_test(refuse, refuses_newer_minor);
	tcase_add_test(refuse, refuses_truncated_descriptor);
	tcase_add_test(refuse, refuses_null_descriptor);
	tcase_add_test(refuse, refuses_no_name);
	tcase_add_test(refuse, refuses_wrong_name);
	tcase_add_test(refuse, refuses_no_version);
	tcase_add_test(refuse, refuses_reserved_flags);
	tcase_add_test(refuse, refuses_unknown_domain);
	tcase_add_test(refuse, refuses_sched_with_custom_ops);
	tcase_add_test(refuse, loads_sched_plugins);
	tcase_add_test(refuse, refuses_wrong_domain);
	tcase_add_test(refuse, refuses_no_ops);
	tcase_add_test(refuse, refuses_small_ops);
	tcase_add_test(refuse, refuses_missing_op);
	tcase_add_test(refuse, init_failure_is_reported);
	suite_add_tcase(s, find);
	suite_add_tcase(s, refuse);
	return wave_check_run(s);
}
