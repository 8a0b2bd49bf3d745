/* SPDX-License-Identifier: MIT */
/*
 * wave-agentd: the agent daemon. Loads a configuration, pins itself to the
 * configured CPUs, and serves hosts with the configured plugins until
 * SIGTERM or SIGINT (every host is told goodbye). SIGHUP reloads the
 * configuration and hot-swaps the plugins whose configuration changed;
 * SIGUSR1 prints the statistics (JSON) on stdout.
 *
 * Signals are taken synchronously: they are blocked in every thread and the
 * main thread waits for them with sigwait(), while wave_agent_run() serves
 * hosts on a thread of its own.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <wave/wave.h>

static void usage(FILE *f)
{
	fprintf(f,
		"usage: wave-agentd --config FILE [--check-config]\n"
		"       wave-agentd --version | --help\n"
		"\n"
		"  -c, --config FILE   the agent configuration (JSON, see docs/config.md)\n"
		"  -n, --check-config  validate FILE, print errors as file:line:col, exit\n"
		"  -V, --version       print the version and exit\n"
		"  -h, --help          print this help and exit\n"
		"\n"
		"Signals: TERM/INT stop (hosts are told goodbye), HUP reloads the\n"
		"configuration and hot-swaps changed plugins, USR1 prints statistics.\n"
		"Set WAVE_LOG=info (or debug) for more messages.\n");
}

static int load(const char *path, struct wave_config **cfg)
{
	struct wave_error err;
	char buf[WAVE_ERROR_SOURCE_LENGTH + WAVE_ERROR_TEXT_LENGTH + 32];
	int ret = wave_config_load(path, cfg, &err);

	if (ret < 0) {
		wave_error_format(&err, buf, sizeof(buf));
		fprintf(stderr, "%s\n", buf);
	}
	return ret;
}

static void report(const char *what, const struct wave_error *err, int ret)
{
	char buf[WAVE_ERROR_SOURCE_LENGTH + WAVE_ERROR_TEXT_LENGTH + 32];

	if (err->code) {
		wave_error_format(err, buf, sizeof(buf));
		fprintf(stderr, "wave-agentd: %s: %s\n", what, buf);
	} else {
		fprintf(stderr, "wave-agentd: %s: %s\n", what, wave_strerror(ret));
	}
}

/* --check-config also loads each configured plugin (without starting
 * it): a missing or incompatible plugin is a configuration error too. */
static int check_plugins(const struct wave_config *cfg)
{
	struct wave_plugin_load_opts o;
	struct wave_plugin *p;
	struct wave_error err;
	int ret, bad = 0;

	wave_plugin_load_opts_init(&o);
	o.search_path = (const char *const *)cfg->plugin_path;
	o.n_search_path = cfg->n_plugin_path;
	for (unsigned d = 0; d < WAVE_DOMAIN_COUNT; d++) {
		if (!cfg->domains[d].enabled)
			continue;
		if (d != WAVE_DOMAIN_CUSTOM && d != WAVE_DOMAIN_SCHED) {
			/* As wave_agent_create() would refuse it. */
			fprintf(stderr, "wave-agentd: %s: domains.%s: the agent runtime does not "
				"serve this domain yet\n", cfg->source, d == WAVE_DOMAIN_MEM ? "mem" : "rpc");
			bad = 1;
			continue;
		}
		o.domain = (int)d;
		ret = wave_plugin_load(cfg->domains[d].plugin, &o, &p, &err);
		if (ret < 0) {
			report(cfg->source, &err, ret);
			bad = 1;
			continue;
		}
		wave_plugin_unload(p);
	}
	return bad;
}

static int pin(const struct wave_config *cfg)
{
	cpu_set_t set;

	if (cfg->n_cpus == 0)
		return 0;
	CPU_ZERO(&set);
	for (size_t i = 0; i < cfg->n_cpus; i++)
		CPU_SET(cfg->cpus[i], &set);
	if (sched_setaffinity(0, sizeof(set), &set) < 0) {
		fprintf(stderr, "wave-agentd: cannot run on the configured cpus: %s\n",
			strerror(errno));
		return -1;
	}
	return 0;
}

static void *serve(void *agent)
{
	int ret = wave_agent_run(agent);

	if (ret < 0)
		fprintf(stderr, "wave-agentd: %s\n", wave_strerror(ret));
	return NULL;
}

static void print_stats(struct wave_agent *a)
{
	char *json;

	if (wave_agent_stats_json(a, &json) == 0) {
		printf("%s\n", json);
		fflush(stdout);
		free(json);
	}
}

/* SIGHUP: a new configuration replaces the current one only if it loads
 * and the agent accepts it; otherwise the old one stays in force. */
static void reload(struct wave_agent *a, const char *path, struct wave_config **cfg)
{
	struct wave_config *next;
	struct wave_error err;
	int ret;

	if (load(path, &next) < 0)
		return;
	ret = wave_agent_reload(a, next, &err);
	if (ret < 0) {
		report("reload refused, keeping the running configuration", &err, ret);
		wave_config_free(next);
		return;
	}
	wave_config_free(*cfg);
	*cfg = next;
	fprintf(stderr, "wave-agentd: configuration reloaded\n");
}

static int wait_signals(struct wave_agent *a, const sigset_t *set, const char *path,
			struct wave_config **cfg)
{
	int sig;

	for (;;) {
		if (sigwait(set, &sig) != 0)
			continue;
		if (sig == SIGHUP)
			reload(a, path, cfg);
		else if (sig == SIGUSR1)
			print_stats(a);
		else
			return wave_agent_stop(a);
	}
}

static int run(const char *path, struct wave_config *cfg)
{
	struct wave_agent *a;
	struct wave_error err;
	pthread_t thr;
	sigset_t set;
	int ret;

	if (pin(cfg) < 0)
		return 1;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	/* Before any thread exists, so that every thread inherits the mask. */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	ret = wave_agent_create(cfg, &a, &err);
	if (ret < 0) {
		report("cannot start", &err, ret);
		return 1;
	}
	ret = pthread_create(&thr, NULL, serve, a);
	if (ret != 0) {
		fprintf(stderr, "wave-agentd: %s\n", strerror(ret));
		wave_agent_destroy(a);
		return 1;
	}
	fprintf(stderr, "wave-agentd: serving (pid %ld)\n", (long)getpid());
	wait_signals(a, &set, path, &cfg);
	pthread_join(thr, NULL);
	wave_agent_destroy(a);
	wave_config_free(cfg);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'n' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL;
	struct wave_config *cfg;
	int c, check = 0;

	while ((c = getopt_long(argc, argv, "c:nVh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 'n': check = 1; break;
		case 'V': printf("wave-agentd %s\n", wave_version_string()); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!path || optind != argc) {
		usage(stderr);
		return 2;
	}
	if (load(path, &cfg) < 0)
		return 1;
	if (check) {
		c = check_plugins(cfg);
		if (c == 0)
			printf("%s: ok\n", path);
		wave_config_free(cfg);
		return c;
	}
	return run(path, cfg);
}
