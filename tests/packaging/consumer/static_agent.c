/* SPDX-License-Identifier: MIT */
/*
 * An agent linked with libwave.a (and -Wl,--export-dynamic, as
 * docs/plugins.md says): it loads the configuration named on its command
 * line, creates the agent, which loads every domain's plugin, and exits.
 * A plugin resolves its wave_plugin_*() calls against this program, so a
 * domain whose accessors the static link left out fails here.
 *
 * Output on success (install_consumer.sh compares it):
 *   agent: plugins loaded
 * Exit status 0 on success, 1 with the error on stderr.
 */
#include <stdio.h>

#include <wave/wave.h>

int main(int argc, char **argv)
{
	struct wave_config *cfg = NULL;
	struct wave_agent *a = NULL;
	struct wave_error err;

	if (argc != 2) {
		fprintf(stderr, "usage: static_agent CONFIG\n");
		return 1;
	}
	if (wave_config_load(argv[1], &cfg, &err) < 0 || wave_agent_create(cfg, &a, &err) < 0) {
		fprintf(stderr, "static_agent: %s: %s\n", err.source, err.text);
		wave_config_free(cfg);
		return 1;
	}
	printf("agent: plugins loaded\n");
	wave_agent_destroy(a);
	wave_config_free(cfg);
	return 0;
}
