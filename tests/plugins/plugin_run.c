/* SPDX-License-Identifier: MIT */
/*
 * plugin_run: load one custom plugin file and drive it with a test context,
 * for plugins built outside this tree (the install test).
 *
 *   plugin_run <wave_name.so> [<params JSON>] <type> [<type> ...]
 *
 * Sends one event of each given type (decimal or 0x hex; payload u64[0] =
 * its position), then prints every decision the plugin emitted as
 * "type payload.u64[0] payload.u32[2]", one per line, and the counters.
 * Exit status 0 when the plugin loaded and accepted every event.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wave/wave.h>

static int print_decisions(void *user, const struct wave_msg *msgs, unsigned n)
{
	(void)user;
	for (unsigned i = 0; i < n; i++)
		printf("decision 0x%04x %llu %u\n", msgs[i].type,
		       (unsigned long long)msgs[i].payload.u64[0], msgs[i].payload.u32[2]);
	return (int)n;
}

static int fail(const struct wave_error *err)
{
	char text[1024];

	wave_error_format(err, text, sizeof(text));
	fprintf(stderr, "plugin_run: %s\n", text);
	return 1;
}

static int drive(struct wave_plugin_ctx *ctx, int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		struct wave_msg ev = { .type = (uint16_t)strtoul(argv[i], NULL, 0) };
		int ret;

		ev.payload.u64[0] = (uint64_t)i;
		if ((ret = wave_plugin_ctx_event(ctx, &ev)) < 0) {
			fprintf(stderr, "plugin_run: event %s: %s\n", argv[i], wave_strerror(ret));
			return 1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct wave_plugin_ctx_opts o;
	struct wave_params *params = NULL;
	struct wave_plugin_ctx *ctx;
	struct wave_plugin *p;
	struct wave_error err;
	const char *name;
	uint64_t v;
	int first = 2, ret;

	if (argc < 3) {
		fprintf(stderr, "usage: plugin_run <wave_name.so> [<params JSON>] <type>...\n");
		return 2;
	}
	if (wave_plugin_load(argv[1], NULL, &p, &err) < 0)
		return fail(&err);
	if (argv[2][0] == '{' && wave_params_parse(argv[first++], NULL, &params, &err) < 0)
		return fail(&err);
	wave_plugin_ctx_opts_init(&o);
	o.params = params;
	o.emit = print_decisions;
	if (wave_plugin_ctx_create(p, &o, &ctx, &err) < 0)
		return fail(&err);
	printf("loaded %s %s\n", wave_plugin_desc(p)->name, wave_plugin_desc(p)->version);
	ret = drive(ctx, argc - first, argv + first);
	for (unsigned i = 0; wave_plugin_ctx_counter(ctx, i, &name, &v) == 0; i++)
		printf("counter %s %llu\n", name, (unsigned long long)v);
	wave_plugin_ctx_destroy(ctx);
	wave_params_free(params);
	wave_plugin_unload(p);
	return ret;
}
