/* SPDX-License-Identifier: MIT */
/*
 * One data-driven configuration case.
 *
 *   config_case <case-dir>    parse <case-dir>/config.json from inside
 *                             <case-dir> (so errors name "config.json").
 *                             With an expected_error file, parsing must fail
 *                             with exactly that text (one line); otherwise it
 *                             must succeed, and with an expected_dump file
 *                             the parsed structure must print as that text.
 *   config_case --file <path> the file must be a valid configuration (used
 *                             for every configuration shipped in the tree).
 *
 * Exit status 0 when the case passes; on failure, says what differed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <wave/wave.h>

/* Reads a whole small text file, without its trailing newlines. */
static char *slurp(const char *path)
{
	static char buf[65536];
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	while (n > 0 && buf[n - 1] == '\n')
		n--;
	buf[n] = '\0';
	return buf;
}

static void dump_strings(FILE *f, const char *key, char *const *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s[%zu]=%s\n", key, i, v[i]);
}

/* A stable text rendering of every field, for expected_dump. */
static void dump(FILE *f, const struct wave_config *c)
{
	static const char *const names[] = { "custom", "sched", "mem", "rpc" };

	dump_strings(f, "listen", c->listen, c->n_listen);
	for (size_t i = 0; i < c->n_cpus; i++)
		fprintf(f, "cpus[%zu]=%d\n", i, c->cpus[i]);
	fprintf(f, "heartbeat=%u/%u\n", c->heartbeat_period_ms, c->heartbeat_timeout_ms);
	fprintf(f, "slots=%u/%u max=%u\n", c->host_to_agent_slots, c->agent_to_host_slots,
		c->max_slots);
	fprintf(f, "delay_ns=%llu spin_ns=%llu\n", (unsigned long long)c->delay_ns,
		(unsigned long long)c->spin_ns);
	for (size_t i = 0; i < c->n_allow_uids; i++)
		fprintf(f, "allow_uids[%zu]=%u\n", i, (unsigned)c->allow_uids[i]);
	fprintf(f, "token=%s\n", c->token ? c->token : "(none)");
	dump_strings(f, "plugin_path", c->plugin_path, c->n_plugin_path);
	for (int d = 0; d < WAVE_DOMAIN_COUNT; d++)
		if (c->domains[d].enabled)
			fprintf(f, "domains.%s=%s tick_us=%llu\n", names[d], c->domains[d].plugin,
				(unsigned long long)c->domains[d].tick_us);
	/* Only when set: older expected dumps stay valid. */
	if (c->stats_socket)
		fprintf(f, "stats_socket=%s\n", c->stats_socket);
	if (c->metrics)
		fprintf(f, "metrics=%s port %u\n", c->metrics_address, (unsigned)c->metrics_port);
	if (c->record.path)
		fprintf(f, "record=%s max_bytes=%llu rotate=%u enabled=%d\n", c->record.path,
			(unsigned long long)c->record.max_bytes, c->record.rotate, c->record.enabled);
}

static int check_dump(const struct wave_config *cfg, const char *want)
{
	char *got = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&got, &len);
	int ok;

	if (!f)
		return 1;
	dump(f, cfg);
	fclose(f);
	while (len > 0 && got[len - 1] == '\n')
		got[--len] = '\0';
	ok = strcmp(got, want) == 0;
	if (!ok)
		fprintf(stderr, "dump differs.\n--- expected\n%s\n--- got\n%s\n", want, got);
	free(got);
	return !ok;
}

static int run_case(const char *dir)
{
	struct wave_config *cfg = NULL;
	struct wave_error err;
	char text[1024];
	char *want;
	int ret;

	if (chdir(dir) != 0) {
		fprintf(stderr, "%s: %s\n", dir, strerror(errno));
		return 1;
	}
	ret = wave_config_load("config.json", &cfg, &err);
	want = slurp("expected_error");
	if (want) {
		if (ret == 0) {
			fprintf(stderr, "expected the error\n  %s\nbut the file parsed\n", want);
			wave_config_free(cfg);
			return 1;
		}
		wave_error_format(&err, text, sizeof(text));
		if (ret != err.code || strcmp(text, want) != 0) {
			fprintf(stderr, "expected\n  %s\ngot (%d)\n  %s\n", want, ret, text);
			return 1;
		}
		return 0;
	}
	if (ret < 0) {
		wave_error_format(&err, text, sizeof(text));
		fprintf(stderr, "expected success, got: %s\n", text);
		return 1;
	}
	want = slurp("expected_dump");
	ret = want ? check_dump(cfg, want) : 0;
	wave_config_free(cfg);
	return ret;
}

static int run_file(const char *path)
{
	struct wave_config *cfg;
	struct wave_error err;
	char text[1024];

	if (wave_config_load(path, &cfg, &err) < 0) {
		wave_error_format(&err, text, sizeof(text));
		fprintf(stderr, "%s\n", text);
		return 1;
	}
	wave_config_free(cfg);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--file") == 0)
		return run_file(argv[2]);
	if (argc == 2)
		return run_case(argv[1]);
	fprintf(stderr, "usage: config_case <case-dir> | --file <config.json>\n");
	return 2;
}
