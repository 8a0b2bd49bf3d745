/* SPDX-License-Identifier: MIT */
/*
 * wave-agentd: the agent daemon. Loads a configuration, pins itself to the
 * configured CPUs, and serves hosts with the configured plugins until
 * SIGTERM or SIGINT (every host is told goodbye). SIGHUP reloads the
 * configuration, hot-swaps the plugins whose configuration changed and
 * moves every thread to the new "cpus"; SIGUSR1 prints the statistics
 * (JSON) on stdout; SIGUSR2 turns the recording of decision traces on or
 * off (docs/trace.md). With "metrics" configured it serves the statistics
 * over HTTP (agentd_metrics.c); under systemd it notifies its state and
 * feeds the watchdog (agentd_systemd.c).
 *
 * Signals are taken synchronously: they are blocked in every thread and the
 * main thread waits for them with sigwait(), while wave_agent_run() serves
 * hosts on a thread of its own.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <wave/wave.h>

#include "agentd_metrics.h"
#include "agentd_systemd.h"

/* Set while wave_agent_run() serves: the watchdog's proof of life. */
static atomic_bool serving;
/* The daemon exits 1: its loop failed, or the metrics endpoint or the
 * watchdog could not start. */
static atomic_bool loop_failed;

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
		"configuration (hot-swaps changed plugins, moves to changed cpus),\n"
		"USR1 prints statistics, USR2 turns recording decision traces on or off\n"
		"(the configuration's \"record\"). Warnings are printed; set WAVE_LOG=info\n"
		"(or debug) for more messages, WAVE_LOG=off for none. Under systemd\n"
		"(Type=notify) it reports READY, RELOADING and STOPPING and feeds the\n"
		"watchdog. See wave-agentd(8) and wave.conf(5).\n");
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

/* What the library warns of while a plugin starts on its parameters (one
 * unknown or of the wrong type, which the agent would replace by the
 * plugin's default): printed, and counted as a fault of the file. */
struct warned {
	const char *source;
	unsigned n;
};

static void check_log(enum wave_log_level level, const char *msg, void *user)
{
	struct warned *w = user;

	fprintf(stderr, "wave-agentd: %s: %s\n", w->source, msg);
	if (level <= WAVE_LOG_WARN)
		w->n++;
}

/* Loads the plugin of domain @d and starts it once in a throw-away context
 * with its configured params, so that a plugin whose init fails is an
 * error of the configuration, not a silent refusal of every host later. */
static int check_plugin(const struct wave_config *cfg, unsigned d)
{
	struct wave_plugin_load_opts o;
	struct wave_plugin_ctx_opts co;
	enum wave_log_level level = wave_log_get_level();
	struct warned w = { cfg->source, 0 };
	struct wave_plugin_ctx *ctx;
	struct wave_plugin *p;
	struct wave_error err;
	char what[300];
	int ret;

	snprintf(what, sizeof(what), "%s: domains.%s", cfg->source, wave_domain_name(d));
	wave_plugin_load_opts_init(&o);
	o.search_path = (const char *const *)cfg->plugin_path;
	o.n_search_path = cfg->n_plugin_path;
	o.domain = (int)d;
	ret = wave_plugin_load(cfg->domains[d].plugin, &o, &p, &err);
	if (ret < 0) {
		report(what, &err, ret);
		return -1;
	}
	wave_plugin_ctx_opts_init(&co);
	co.params = cfg->domains[d].params;
	wave_log_set_handler(check_log, &w);
	if (level < WAVE_LOG_WARN)
		wave_log_set_level(WAVE_LOG_WARN);
	ret = wave_plugin_ctx_create(p, &co, &ctx, &err);
	wave_log_set_handler(NULL, NULL);
	wave_log_set_level(level);
	if (ret < 0)
		report(what, &err, ret);
	else
		wave_plugin_ctx_destroy(ctx);
	wave_plugin_unload(p);
	return ret < 0 || w.n ? -1 : 0;
}

static int check_plugins(const struct wave_config *cfg)
{
	int bad = 0;

	for (unsigned d = 0; d < WAVE_DOMAIN_COUNT; d++) {
		/* A domain the runtime does not serve is refused by the loader,
		 * which names the domains it serves: no list to keep here. */
		if (cfg->domains[d].enabled)
			bad |= check_plugin(cfg, d) < 0;
	}
	return bad;
}

/* The online CPUs, from the kernel's list ("0-3,6"); -1 if unknown. */
static int online_cpus(cpu_set_t *set, char *text, size_t size)
{
	FILE *f = fopen("/sys/devices/system/cpu/online", "r");
	char *p;

	CPU_ZERO(set);
	if (!f)
		return -1;
	p = fgets(text, (int)size, f);
	fclose(f);
	if (!p)
		return -1;
	text[strcspn(text, "\n")] = '\0';
	while (*p) {
		char *end;
		long lo = strtol(p, &end, 10), hi = lo;

		if (end == p)
			return -1;
		if (*end == '-')
			hi = strtol(end + 1, &end, 10);
		for (long c = lo; c <= hi && c < CPU_SETSIZE; c++)
			CPU_SET((int)c, set);
		p = *end == ',' ? end + 1 : end;
	}
	return 0;
}

/* Every shm:// host holds four descriptors of the agent: the soft limit
 * (1024 on most systems) would stop it near 250 hosts, far below
 * max_hosts, where the hard limit (systemd's LimitNOFILE) allows more. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			fprintf(stderr, "wave-agentd: cannot raise the descriptor limit: %s\n",
				strerror(errno));
	}
}

/* The kernel ignores a CPU that is not online as long as another one in
 * the set is: the agent would run elsewhere than configured, silently. */
static int check_cpu(const struct wave_config *cfg, const char *key, int cpu)
{
	static char text[256];
	static cpu_set_t online;
	static int known; /* 0: not read yet, 1: read, -1: unknown */

	if (!known)
		known = online_cpus(&online, text, sizeof(text)) == 0 ? 1 : -1;
	if (known < 0 || CPU_ISSET(cpu, &online))
		return 0;
	fprintf(stderr, "wave-agentd: %s: %s: CPU %d is not online on this machine (online: %s)\n",
		cfg->source, key, cpu, text);
	return 1;
}

static int check_cpus(const struct wave_config *cfg)
{
	char key[32];
	int bad = 0;

	for (size_t i = 0; i < cfg->n_cpus; i++) {
		snprintf(key, sizeof(key), "cpus[%zu]", i);
		bad |= check_cpu(cfg, key, cfg->cpus[i]);
	}
	if (cfg->record.writer_cpu >= 0)
		bad |= check_cpu(cfg, "record.writer_cpu", cfg->record.writer_cpu);
	return bad;
}

/* @path (for @key) is an existing directory, writable when @write. */
static int check_dir(const struct wave_config *cfg, const char *key, const char *path, bool write)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		fprintf(stderr, "wave-agentd: %s: %s: directory %s: %s\n", cfg->source, key, path,
			strerror(errno));
		return 1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "wave-agentd: %s: %s: %s is not a directory\n", cfg->source, key,
			path);
		return 1;
	}
	if (write && access(path, W_OK | X_OK) < 0) {
		fprintf(stderr, "wave-agentd: %s: %s: directory %s: %s\n", cfg->source, key, path,
			strerror(errno));
		return 1;
	}
	return 0;
}

/* A Unix socket the agent binds at start: its directory must be there,
 * and a file in its place must be a socket (a stale one is replaced). */
static int check_socket_path(const struct wave_config *cfg, const char *key, const char *path)
{
	const char *slash = strrchr(path, '/');
	char dir[256];
	struct stat st;

	if (!slash) /* the parser wants it absolute */
		return 0;
	snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
	if (check_dir(cfg, key, dir, true))
		return 1;
	if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
		fprintf(stderr, "wave-agentd: %s: %s: %s exists and is not a socket\n", cfg->source,
			key, path);
		return 1;
	}
	return 0;
}

/* The agent's addresses: at least one, of a transport it has, a shm://
 * socket where one can be made. Nothing is bound here: the daemon being
 * checked may be running. */
static int check_listen(const struct wave_config *cfg)
{
	static const char *const schemes[] = { "shm://", "file://", "fabric://" };
	char key[32];
	int bad = 0;

	if (cfg->n_listen == 0) {
		fprintf(stderr, "wave-agentd: %s: listen: the agent needs an address to listen on\n",
			cfg->source);
		return 1;
	}
	for (size_t i = 0; i < cfg->n_listen; i++) {
		const char *uri = cfg->listen[i];
		size_t k = 0;

		snprintf(key, sizeof(key), "listen[%zu]", i);
		while (k < sizeof(schemes) / sizeof(schemes[0]) && strncmp(uri, schemes[k], strlen(schemes[k])))
			k++;
		if (k == sizeof(schemes) / sizeof(schemes[0])) {
			fprintf(stderr, "wave-agentd: %s: %s: %s: no such transport (shm://, "
				"file://, fabric://)\n", cfg->source, key, uri);
			bad = 1;
		} else if (k == 0) {
			bad |= check_socket_path(cfg, key, uri + strlen(schemes[0]));
		}
	}
	return bad;
}

/* --check-config: what the agent would fail on at start, found now. */
static int check_config(const struct wave_config *cfg)
{
	int bad = check_listen(cfg);

	bad |= check_cpus(cfg);
	if (cfg->stats_socket)
		bad |= check_socket_path(cfg, "stats_socket", cfg->stats_socket);
	if (cfg->record.path)
		bad |= check_dir(cfg, "record.path", cfg->record.path, true);
	return bad | check_plugins(cfg);
}

/* Moves every thread of the process (the agent's, and any a transport
 * started) to @cfg's CPUs, or back to @all when it lists none. */
static int pin(const struct wave_config *cfg, const cpu_set_t *all)
{
	cpu_set_t set = *all;
	struct dirent *e;
	DIR *d;
	int ret = 0;

	if (cfg->n_cpus) {
		CPU_ZERO(&set);
		for (size_t i = 0; i < cfg->n_cpus; i++)
			CPU_SET(cfg->cpus[i], &set);
	}
	if (!(d = opendir("/proc/self/task")))
		ret = sched_setaffinity(0, sizeof(set), &set);
	while (d && ret == 0 && (e = readdir(d)))
		if (e->d_name[0] != '.')
			ret = sched_setaffinity((pid_t)atol(e->d_name), sizeof(set), &set);
	if (d)
		closedir(d);
	if (ret < 0)
		fprintf(stderr, "wave-agentd: cannot run on the configured cpus: %s\n",
			strerror(errno));
	return ret;
}

static bool same_cpus(const struct wave_config *a, const struct wave_config *b)
{
	return a->n_cpus == b->n_cpus &&
	       (a->n_cpus == 0 || memcmp(a->cpus, b->cpus, a->n_cpus * sizeof(*a->cpus)) == 0);
}

static void *serve(void *agent)
{
	int ret = wave_agent_run(agent);

	atomic_store(&serving, false);
	if (ret < 0) {
		fprintf(stderr, "wave-agentd: %s\n", wave_strerror(ret));
		atomic_store(&loop_failed, true);
		/* The daemon must not outlive its loop. */
		kill(getpid(), SIGTERM);
	}
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

/* SIGHUP: a new configuration replaces the current one only if it loads,
 * its cpus can be taken and the agent accepts it; otherwise the old one
 * stays in force, cpus included. */
static void reload_apply(struct wave_agent *a, struct wave_config **cfg,
			 struct wave_config *next, const cpu_set_t *all)
{
	static const char refused[] = "reload refused, keeping the running configuration";
	struct wave_error err;
	bool moved = !same_cpus(*cfg, next);
	int ret;

	if (moved && (check_cpus(next) || pin(next, all) < 0)) {
		fprintf(stderr, "wave-agentd: %s\n", refused);
		wave_config_free(next);
		return;
	}
	ret = wave_agent_reload(a, next, &err);
	if (ret < 0) {
		if (moved)
			pin(*cfg, all);
		report(refused, &err, ret);
		wave_config_free(next);
		return;
	}
	wave_config_free(*cfg);
	*cfg = next;
	fprintf(stderr, "wave-agentd: configuration reloaded%s\n",
		moved ? " (threads moved to the new cpus)" : "");
}

/* SIGUSR2: recording on if it was off, else off. */
static void toggle_record(struct wave_agent *a, bool *on)
{
	int ret = wave_agent_record(a, !*on);

	if (ret < 0) {
		fprintf(stderr, "wave-agentd: cannot record: %s\n",
			ret == -ENOENT ? "the configuration has no \"record\""
				       : wave_strerror(ret));
		return;
	}
	*on = !*on;
	fprintf(stderr, "wave-agentd: recording %s\n", *on ? "on" : "off");
}

static void reload(struct wave_agent *a, const char *path, struct wave_config **cfg,
		   const cpu_set_t *all)
{
	struct wave_config *next;

	/* The service manager holds other jobs back until READY=1 again,
	 * whether the new configuration was taken or refused. */
	agentd_notify_reloading();
	if (load(path, &next) == 0)
		reload_apply(a, cfg, next, all);
	agentd_notify("READY=1");
}

static int wait_signals(struct wave_agent *a, const sigset_t *set, const char *path,
			struct wave_config **cfg, const cpu_set_t *all)
{
	bool recording = (*cfg)->record.path && (*cfg)->record.enabled;
	int sig;

	for (;;) {
		if (sigwait(set, &sig) != 0)
			continue;
		if (sig == SIGHUP)
			reload(a, path, cfg, all);
		else if (sig == SIGUSR1)
			print_stats(a);
		else if (sig == SIGUSR2)
			toggle_record(a, &recording);
		else
			return wave_agent_stop(a);
	}
}

/* The metrics endpoint and the watchdog, once the agent serves. */
static int start_extras(const struct wave_config *cfg, struct wave_agent *a,
			struct agentd_metrics **metrics, struct agentd_watchdog **wd)
{
	if (agentd_metrics_start(cfg, a, metrics) < 0)
		return -1;
	if (agentd_watchdog_start(a, &serving, wd) < 0) {
		agentd_metrics_stop(*metrics);
		*metrics = NULL;
		return -1;
	}
	return 0;
}

static int run(const char *path, struct wave_config *cfg)
{
	struct agentd_metrics *metrics = NULL;
	struct agentd_watchdog *wd = NULL;
	struct wave_agent *a;
	struct wave_error err;
	cpu_set_t all;
	pthread_t thr;
	sigset_t set;
	int ret;

	/* A daemon's warnings (a host refused, a plugin failing for a host)
	 * are for its operator: shown unless WAVE_LOG says otherwise. */
	if (!getenv("WAVE_LOG"))
		wave_log_set_level(WAVE_LOG_WARN);
	agentd_journal_log();
	/* Where "cpus": none sends the agent back to. */
	if (sched_getaffinity(0, sizeof(all), &all) < 0 || check_cpus(cfg) || pin(cfg, &all) < 0)
		return 1;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	/* Before any thread exists, so that every thread inherits the mask. */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	/* A write to an output whose reader is gone (SIGUSR1's statistics on a
	 * closed pipe) fails with EPIPE; it must not kill every host's agent. */
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();
	ret = wave_agent_create(cfg, &a, &err);
	if (ret < 0) {
		report("cannot start", &err, ret);
		return 1;
	}
	atomic_store(&serving, true);
	ret = pthread_create(&thr, NULL, serve, a);
	if (ret != 0) {
		fprintf(stderr, "wave-agentd: %s\n", strerror(ret));
		wave_agent_destroy(a);
		return 1;
	}
	if (start_extras(cfg, a, &metrics, &wd) == 0) {
		fprintf(stderr, "wave-agentd: serving (pid %ld)\n", (long)getpid());
		/* Every address listens: hosts can connect from now on. */
		agentd_notify("READY=1\nSTATUS=serving");
		wait_signals(a, &set, path, &cfg, &all);
	} else {
		atomic_store(&loop_failed, true);
		wave_agent_stop(a);
	}
	agentd_notify("STOPPING=1");
	agentd_watchdog_stop(wd);
	agentd_metrics_stop(metrics);
	pthread_join(thr, NULL);
	wave_agent_destroy(a);
	wave_config_free(cfg);
	return atomic_load(&loop_failed) ? 1 : 0;
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
		c = check_config(cfg);
		if (c == 0)
			printf("%s: ok\n", path);
		wave_config_free(cfg);
		return c;
	}
	return run(path, cfg);
}
