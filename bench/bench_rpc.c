/* SPDX-License-Identifier: MIT */
/*
 * wave-bench-rpc: RPC steering under real load, side by side in one run.
 *
 * The server is wave-example-rpcserver (N workers, one SO_REUSEPORT socket
 * each; a light request costs --light-us of CPU, a heavy one --heavy-us).
 * The load is K real `sockperf under-load` clients, open loop at a set rate
 * each, every client one flow (its own socket); the last client sends heavy
 * requests (--heavy-size bytes), the others light ones. Every figure comes
 * from sockperf's own output (its percentiles and message counts) and from
 * the server's and the agent's own counters.
 *
 * Configurations (each in fresh processes, interleaved: at each offered
 * rate every configuration runs once before the next rate):
 *   linux        Linux's own SO_REUSEPORT hashing (what a user gets)
 *   bpf          libwave's table in the kernel, its static hash (b % N)
 *   onhost       the table driven by the rpc_rebalance plugin, the agent on
 *                a thread of the server
 *   shm          the same plugin in wave-agentd, another process, over shm://
 *   shm-1us      as shm with 1 us of emulated one-way delay on both readers
 *
 * Each point is run --reps times; the figures are medians over the runs.
 * For each configuration: at each rate, the median client's p50 and the
 * worst client's p99 and p99.9 (microseconds, round trip as sockperf
 * measures it), replies per second and the share of requests without a
 * reply; then the throughput at the p99 objective: the highest replies per
 * second among the rates whose worst p99 met the objective with less than
 * 1% lost. Plus the agent's moves per second and CPU time.
 *
 * --reaction N: the rebalancer's reaction time instead, N trials per
 * agent configuration (onhost, shm, shm-1us). In each, the light clients
 * run alone for half the run (the rebalancer settles), then the heavy one
 * starts; the server times, on its own clock, its first heavy request and
 * the first decision committed after it (examples/rpcserver: reaction_ns).
 * Reported: the p50 and the worst over the trials, and how many trials
 * saw no move at all.
 */
#include <errno.h>
#include <stddef.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../examples/example_args.h"
#include "bench_stat.h"

#define PROG "wave-bench-rpc"

#define MAX_CLIENTS 8
#define MAX_RATES 8
#define N_CONFIGS 5

struct cfg {
	unsigned workers, clients, buckets;
	unsigned light_us, heavy_us, light_size, heavy_size;
	unsigned rates[MAX_RATES], n_rates; /* per client, messages per second */
	unsigned duration_s, reps;
	int client_nice; /* sockperf busy-waits between sends: on few cores, yield to the server */
	double objective_us;
	unsigned reaction; /* trials of the reaction mode, or 0 */
	bool shared_light; /* the light flows from one sockperf process (see --shared-light) */
	bool tcp, json, run[N_CONFIGS];
};

static const struct config {
	const char *key, *label;
	bool bpf, agent, onhost;
	unsigned delay_ns;
} configs[N_CONFIGS] = {
	{ "linux", "Linux SO_REUSEPORT hash", false, false, false, 0 },
	{ "bpf", "libwave table, static hash", true, false, false, 0 },
	{ "onhost", "rebalancer, on-host agent", true, true, true, 0 },
	{ "shm", "rebalancer, agentd over shm://", true, true, false, 0 },
	{ "shm-1us", "rebalancer, shm:// + 1 us delay", true, true, false, 1000 },
};

/* One run: one configuration at one rate. */
struct run {
	bool ok;
	char note[256];
	double p50, p99, p999;  /* microseconds: median client's p50, worst p99/p99.9 */
	double replies_per_s;   /* over sockperf's valid duration, all clients */
	double lost;            /* requests without a reply, share of those sent */
	double moves_per_s, agent_cpu_s;
};

#define MAX_REPS 9
/* Every run, and per configuration and rate the medians over its runs. */
static struct run runs[N_CONFIGS][MAX_RATES][MAX_REPS];
static struct run results[N_CONFIGS][MAX_RATES];

/* ---- processes ------------------------------------------------------------------ */

static char workdir[64];

/* Runs @argv with its output in @out_path, at nice level @nice. */
static pid_t spawn(char *const argv[], const char *out_path, int nice)
{
	pid_t pid;

	fflush(NULL); /* or the child's freopen() writes our buffered output again */
	pid = fork();

	if (pid == 0) {
		FILE *f = freopen(out_path, "w", stdout);
		if (nice && setpriority(PRIO_PROCESS, 0, nice) != 0)
			_exit(127);
		if (!f || !freopen(out_path, "a", stderr))
			_exit(127);
		execv(argv[0], argv);
		execvp(argv[0], argv);
		_exit(127);
	}
	return pid;
}

/* Waits until @path holds a line starting with @prefix (10 s at most, or
 * until @pid exits); copies it into @line. */
static bool wait_line(const char *path, const char *prefix, pid_t pid, char *line, size_t n)
{
	for (int i = 0; i < 10000; i++) {
		FILE *f = fopen(path, "r");
		while (f && fgets(line, (int)n, f))
			if (strncmp(line, prefix, strlen(prefix)) == 0) {
				fclose(f);
				return true;
			}
		if (f)
			fclose(f);
		if (pid <= 0 || waitpid(pid, NULL, WNOHANG) == pid)
			return false;
		usleep(1000);
	}
	return false;
}

/* CPU time of process @pid so far (utime + stime), in seconds. */
static double cpu_seconds(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut, st;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f || !fgets(buf, sizeof(buf), f)) {
		if (f)
			fclose(f);
		return 0;
	}
	fclose(f);
	p = strrchr(buf, ')'); /* the command name may hold spaces */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
			 &st) != 2)
		return 0;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static void stop(pid_t pid)
{
	if (pid > 0) {
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
	}
}

/* ---- the agent ------------------------------------------------------------------ */

static int write_agent_config(const char *path, const char *uri, unsigned delay_ns)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	fprintf(f,
		"{\n  \"listen\": [\"%s\"],\n"
		"  \"heartbeat\": { \"period_ms\": 100, \"timeout_ms\": 10000 },\n"
		"  \"plugin_path\": [\"%s\"],\n"
		"  \"channel\": { \"delay_ns\": %u },\n"
		"  \"domains\": { \"rpc\": { \"plugin\": \"rpc_rebalance\",\n"
		"    \"params\": { \"max_moves\": 4, \"margin\": 0.1 } } }\n}\n",
		uri, BENCH_RPC_PLUGIN_DIR, delay_ns);
	return fclose(f) == 0 ? 0 : -EIO;
}

static pid_t start_agentd(const char *conf, const char *sock)
{
	char *argv[] = { BENCH_RPC_AGENTD, "--config", (char *)conf, NULL };
	char log[96];
	struct stat sb;
	pid_t pid;

	snprintf(log, sizeof(log), "%s/agentd.log", workdir);
	unlink(sock);
	pid = spawn(argv, log, 0);
	for (int i = 0; pid > 0 && i < 5000; i++) {
		if (stat(sock, &sb) == 0)
			return pid;
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return -1;
		usleep(1000);
	}
	stop(pid);
	return -1;
}

/* ---- sockperf -------------------------------------------------------------------- */

struct sp_out {
	double p50, p99, p999;
	unsigned long long sent, received;
	double valid_s;
};

/* sockperf's figures. A client with several destinations (-f) prints
 * percentiles and its valid duration for the first one only, and the
 * counts of all in its [Total Run] line: with @total, those (over the run
 * less the warm-up) are taken. */
static bool parse_sockperf(const char *path, bool total, struct sp_out *o)
{
	char line[512];
	unsigned have = 0;
	FILE *f = fopen(path, "r");
	double v, warm;

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		const char *p;
		if (total && (p = strstr(line, "[Total Run]")) &&
		    sscanf(p, "[Total Run] RunTime=%lf sec; Warm up time=%lf msec; SentMessages=%llu; "
			      "ReceivedMessages=%llu", &o->valid_s, &warm, &o->sent, &o->received) == 4) {
			o->valid_s -= warm / 1e3;
			have |= 16;
		} else if ((p = strstr(line, "[Valid Duration]")) &&
		    sscanf(p, "[Valid Duration] RunTime=%lf sec; SentMessages=%llu; "
			      "ReceivedMessages=%llu", &o->valid_s, &o->sent, &o->received) == 3)
			have |= 1;
		else if ((p = strstr(line, "percentile 50.000 =")) && sscanf(p + 19, "%lf", &v) == 1)
			o->p50 = v, have |= 2;
		else if ((p = strstr(line, "percentile 99.000 =")) && sscanf(p + 19, "%lf", &v) == 1)
			o->p99 = v, have |= 4;
		else if ((p = strstr(line, "percentile 99.900 =")) && sscanf(p + 19, "%lf", &v) == 1)
			o->p999 = v, have |= 8;
	}
	fclose(f);
	return (have | 16) == 31 && (!total || (have & 16));
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* With --shared-light, the light flows' sockperf feed file: one
 * destination each, 127.0.0.1, .2, ... (the server listens on 0.0.0.0;
 * sockperf keeps one socket per distinct destination, so each is a flow
 * of its own from one process). */
static const char *light_feed(const struct cfg *c, unsigned port)
{
	static char path[96];
	FILE *f;

	snprintf(path, sizeof(path), "%s/lights.feed", workdir);
	if (!(f = fopen(path, "w")))
		return NULL;
	for (unsigned k = 0; k + 1 < c->clients; k++)
		fprintf(f, "%c:127.0.0.%u:%u\n", c->tcp ? 'T' : 'U', k + 1, port);
	return fclose(f) == 0 ? path : NULL;
}

/* K clients at @rate each, all at once; their figures folded into @r.
 * Their output is kept under @tag (the configuration's key). With
 * --shared-light the light flows come from one process (at K - 1 times
 * the rate, its percentiles those of its first flow). */
static void run_clients(const struct cfg *c, const char *tag, unsigned port, unsigned rate,
			struct run *r)
{
	char out[MAX_CLIENTS][160], ports[16], rates[2][16], secs[16], size[MAX_CLIENTS][16];
	const char *feed = c->shared_light ? light_feed(c, port) : NULL;
	unsigned procs = c->shared_light ? 2 : c->clients;
	pid_t pid[MAX_CLIENTS];
	double p50[MAX_CLIENTS];
	unsigned long long sent = 0, received = 0;
	double valid = 0;

	if (c->shared_light && !feed) {
		snprintf(r->note, sizeof(r->note), "cannot write the light flows' feed file");
		return;
	}
	snprintf(ports, sizeof(ports), "%u", port);
	snprintf(rates[0], sizeof(rates[0]), "%u", rate);
	snprintf(rates[1], sizeof(rates[1]), "%u", rate * (c->clients - 1));
	snprintf(secs, sizeof(secs), "%u", c->duration_s);
	for (unsigned k = 0; k < procs; k++) {
		bool heavy = k == procs - 1, lights = feed && !heavy;
		char *argv[20];
		int a = 0;

		snprintf(size[k], sizeof(size[k]), "%u", heavy ? c->heavy_size : c->light_size);
		snprintf(out[k], sizeof(out[k]), "%s/%s-client%u.out", workdir, tag, k);
		argv[a++] = "sockperf";
		argv[a++] = "under-load";
		if (lights) {
			argv[a++] = "-f";
			argv[a++] = (char *)feed;
		} else {
			argv[a++] = "-i";
			argv[a++] = "127.0.0.1";
			argv[a++] = "-p";
			argv[a++] = ports;
		}
		argv[a++] = "-t";
		argv[a++] = secs;
		argv[a++] = "-m";
		argv[a++] = size[k];
		argv[a++] = "--mps";
		argv[a++] = rates[lights];
		argv[a++] = "--reply-every";
		argv[a++] = "1";
		if (c->tcp)
			argv[a++] = "--tcp";
		argv[a] = NULL;
		pid[k] = spawn(argv, out[k], c->client_nice);
	}
	r->ok = true;
	for (unsigned k = 0; k < procs; k++) {
		struct sp_out o = { 0 };
		int status;
		waitpid(pid[k], &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
		    !parse_sockperf(out[k], feed && k + 1 < procs, &o)) {
			r->ok = false;
			snprintf(r->note, sizeof(r->note), "sockperf client %u: %s (see %s)", k,
				 !WIFEXITED(status) || WEXITSTATUS(status) ? "failed"
									 : "no percentiles in its output",
				 out[k]);
			while (++k < procs)
				waitpid(pid[k], NULL, 0);
			return;
		}
		p50[k] = o.p50;
		r->p99 = o.p99 > r->p99 ? o.p99 : r->p99;
		r->p999 = o.p999 > r->p999 ? o.p999 : r->p999;
		sent += o.sent;
		received += o.received;
		valid = o.valid_s > valid ? o.valid_s : valid;
	}
	qsort(p50, procs, sizeof(p50[0]), cmp_double);
	r->p50 = p50[procs / 2];
	r->replies_per_s = valid > 0 ? (double)received / valid : 0;
	r->lost = sent ? (double)(sent - received) / (double)sent : 0;
}

/* ---- one run ------------------------------------------------------------------------ */

static double json_num(const char *json, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(json, pat);
	return p ? strtod(p + strlen(pat), NULL) : 0;
}

/* The server's command line for configuration @k; its numbers in @num. */
static void server_args(const struct cfg *c, const struct config *k, char **argv,
			char num[5][24], const char *uri, const char *conf)
{
	int a = 0;

	snprintf(num[0], 24, "%u", c->workers);
	snprintf(num[1], 24, "%u", c->buckets);
	snprintf(num[2], 24, "%u", c->light_us);
	snprintf(num[3], 24, "%u:%u", c->heavy_size, c->heavy_us);
	snprintf(num[4], 24, "%u", k->delay_ns);
	argv[a++] = BENCH_RPC_SERVER;
	argv[a++] = c->tcp ? "--tcp" : "--udp";
	if (c->shared_light) { /* the light flows' destinations: 127.0.0.1, .2, ... */
		argv[a++] = "--ip";
		argv[a++] = "0.0.0.0";
	}
	argv[a++] = "--port";
	argv[a++] = "0";
	argv[a++] = "--json";
	argv[a++] = "--workers";
	argv[a++] = num[0];
	argv[a++] = "--buckets";
	argv[a++] = num[1];
	argv[a++] = "--work-us";
	argv[a++] = num[2];
	argv[a++] = "--class";
	argv[a++] = num[3];
	argv[a++] = "--steer";
	argv[a++] = k->bpf ? "bpf" : "linux";
	if (k->agent) {
		argv[a++] = "--agent";
		argv[a++] = (char *)uri;
		argv[a++] = "--delay-ns";
		argv[a++] = num[4];
		if (k->onhost) {
			argv[a++] = "--agent-config";
			argv[a++] = (char *)conf;
		}
	}
	argv[a] = NULL;
}

/* Configuration @ki at @rate, round @rep (which names its logs). */
static void run_one(const struct cfg *c, int ki, unsigned rate, unsigned rep, struct run *r)
{
	const struct config *k = &configs[ki];
	char sock[96], uri[128], conf[96], srv_out[160], line[1024], num[5][24], *argv[32];
	char tag[48];
	pid_t agentd = -1, srv;
	unsigned port;
	double agent_cpu0 = 0;

	memset(r, 0, sizeof(*r));
	snprintf(sock, sizeof(sock), "%s/agent.sock", workdir);
	snprintf(uri, sizeof(uri), "shm://%s", sock);
	snprintf(conf, sizeof(conf), "%s/agent.json", workdir);
	snprintf(tag, sizeof(tag), "%s-%u-r%u", k->key, rate, rep);
	snprintf(srv_out, sizeof(srv_out), "%s/%s-server.out", workdir, tag);
	if (k->agent && write_agent_config(conf, uri, k->delay_ns) != 0) {
		snprintf(r->note, sizeof(r->note), "cannot write %s", conf);
		return;
	}
	if (k->agent && !k->onhost && (agentd = start_agentd(conf, sock)) < 0) {
		snprintf(r->note, sizeof(r->note), "wave-agentd did not start (%s/agentd.log)",
			 workdir);
		return;
	}
	server_args(c, k, argv, num, uri, conf);
	unlink(srv_out); /* wait_line() must read this server's, never an older one */
	srv = spawn(argv, srv_out, 0);
	if (!wait_line(srv_out, "ready", srv, line, sizeof(line)) ||
	    sscanf(line, "ready %*s %*[^:]:%u", &port) != 1) {
		snprintf(r->note, sizeof(r->note), "the server did not start (%s)", srv_out);
		stop(srv);
		stop(agentd);
		return;
	}
	if (k->bpf && !strstr(line, "steer bpf")) {
		snprintf(r->note, sizeof(r->note), "no kernel steering here (needs root)");
		stop(srv);
		stop(agentd);
		return;
	}
	if (agentd > 0)
		agent_cpu0 = cpu_seconds(agentd);
	run_clients(c, tag, port, rate, r);
	if (agentd > 0)
		r->agent_cpu_s = cpu_seconds(agentd) - agent_cpu0;
	stop(srv);
	stop(agentd);
	if (wait_line(srv_out, "{", -1, line, sizeof(line))) {
		double moves = json_num(line, "moves");
		r->moves_per_s = moves / (c->duration_s + 0.0);
		if (k->onhost)
			r->agent_cpu_s = json_num(line, "agent_cpu_ns") / 1e9;
		if (json_num(line, "malformed") + json_num(line, "truncated") > 0) {
			r->ok = false;
			snprintf(r->note, sizeof(r->note), "the server counted bad messages");
		}
	} else if (r->ok) {
		r->ok = false;
		snprintf(r->note, sizeof(r->note), "no statistics from the server (%s)", srv_out);
	}
}

/* ---- reaction time ------------------------------------------------------------------ */

/* One trial of configuration @ki: light clients for the whole run, the
 * heavy one from its middle. Return: the server's reaction_ns (-1: no
 * move after the heavy flow began), or -2 when the trial failed. */
static double reaction_trial(const struct cfg *c, int ki, unsigned trial)
{
	const struct config *k = &configs[ki];
	char sock[96], uri[128], conf[96], srv_out[160], line[1024], num[5][24], *argv[32];
	char out[MAX_CLIENTS][160], ports[16], rates[16], secs[2][16], size[2][16];
	pid_t agentd = -1, srv, pid[MAX_CLIENTS];
	unsigned port;
	double r = -2;

	snprintf(sock, sizeof(sock), "%s/agent.sock", workdir);
	snprintf(uri, sizeof(uri), "shm://%s", sock);
	snprintf(conf, sizeof(conf), "%s/agent.json", workdir);
	snprintf(srv_out, sizeof(srv_out), "%s/react-%s-%u-server.out", workdir, k->key, trial);
	if (write_agent_config(conf, uri, k->delay_ns) != 0 ||
	    (!k->onhost && (agentd = start_agentd(conf, sock)) < 0))
		return -2;
	server_args(c, k, argv, num, uri, conf);
	unlink(srv_out);
	srv = spawn(argv, srv_out, 0);
	if (!wait_line(srv_out, "ready", srv, line, sizeof(line)) ||
	    sscanf(line, "ready %*s %*[^:]:%u", &port) != 1 || !strstr(line, "steer bpf")) {
		stop(srv);
		stop(agentd);
		return -2;
	}
	snprintf(ports, sizeof(ports), "%u", port);
	snprintf(rates, sizeof(rates), "%u", c->rates[0]);
	snprintf(secs[0], sizeof(secs[0]), "%u", c->duration_s);
	snprintf(secs[1], sizeof(secs[1]), "%u", (c->duration_s + 1) / 2);
	snprintf(size[0], sizeof(size[0]), "%u", c->light_size);
	snprintf(size[1], sizeof(size[1]), "%u", c->heavy_size);
	for (unsigned n = 0; n < c->clients; n++) {
		bool heavy = n == c->clients - 1;
		char *cargv[] = { "sockperf", "under-load", "-i", "127.0.0.1", "-p", ports, "-t",
				  secs[heavy], "-m", size[heavy], "--mps", rates, "--reply-every",
				  "1", NULL };
		if (heavy) /* the lights run alone for the first half */
			usleep(c->duration_s * 500000u);
		snprintf(out[n], sizeof(out[n]), "%s/react-%s-%u-client%u.out", workdir, k->key,
			 trial, n);
		pid[n] = spawn(cargv, out[n], c->client_nice);
	}
	for (unsigned n = 0; n < c->clients; n++)
		waitpid(pid[n], NULL, 0);
	stop(srv);
	stop(agentd);
	if (wait_line(srv_out, "{", -1, line, sizeof(line)) && strstr(line, "\"reaction_ns\":"))
		r = json_num(line, "reaction_ns");
	return r < 0 && r != -1 ? -2 : r;
}

static void report_reaction(const struct cfg *c)
{
	static const int agents[] = { 2, 3, 4 }; /* onhost, shm, shm-1us */
	bool failed = false;

	if (!c->json)
		printf("wave-bench-rpc --reaction: %u workers, %u light clients at %u msg/s (%u-byte, "
		       "%u us), a heavy one (%u-byte, %u us) from the middle of each %u s run;\n"
		       "  reaction = the server's first heavy request to the first decision "
		       "committed after it, host clock\n\n%-32s %9s %9s %9s %s\n", c->workers,
		       c->clients - 1, c->rates[0], c->light_size, c->light_us, c->heavy_size,
		       c->heavy_us, c->duration_s, "configuration", "p50 ms", "max ms", "no move",
		       "trials (ms)");
	for (unsigned a = 0; a < sizeof(agents) / sizeof(agents[0]); a++) {
		int ki = agents[a];
		double v[MAX_REPS * 4];
		unsigned n = 0, none = 0;
		if (!c->run[ki])
			continue;
		for (unsigned t = 0; t < c->reaction; t++) {
			double r = reaction_trial(c, ki, t);
			failed |= r == -2;
			none += r == -1;
			if (r >= 0)
				v[n++] = r / 1e6;
		}
		qsort(v, n, sizeof(v[0]), cmp_double);
		if (c->json) {
			printf("{\"config\":\"%s\",\"metric\":\"reaction\",\"trials\":%u,"
			       "\"no_move\":%u,\"p50_ms\":", configs[ki].key, c->reaction, none);
			if (n)
				printf("%.3f,\"max_ms\":%.3f}\n", v[n / 2], v[n - 1]);
			else
				printf("null,\"max_ms\":null}\n");
			continue;
		}
		printf("%-32s", configs[ki].label);
		if (n)
			printf(" %9.2f %9.2f", v[n / 2], v[n - 1]);
		else
			printf(" %9s %9s", "-", "-");
		printf(" %9u  ", none);
		for (unsigned i = 0; i < n; i++)
			printf("%s%.2f", i ? " " : "", v[i]);
		printf("\n");
	}
	if (failed)
		fprintf(stderr, "wave-bench-rpc: some trials failed (root needed for kernel steering; "
			"logs in %s)\n", workdir);
}

/* ---- medians -------------------------------------------------------------------------- */

static double median_of(const struct run *rs, unsigned n, size_t off)
{
	double v[MAX_REPS];
	unsigned k = 0;

	for (unsigned i = 0; i < n; i++)
		if (rs[i].ok)
			v[k++] = *(const double *)((const char *)&rs[i] + off);
	return k ? bench_median(v, k) : 0;
}

/* The medians of a point's runs; not ok unless every run was. */
static void summarize(const struct run *rs, unsigned n, struct run *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; i < n; i++)
		if (!rs[i].ok) {
			*out = rs[i];
			return;
		}
	out->ok = true;
	out->p50 = median_of(rs, n, offsetof(struct run, p50));
	out->p99 = median_of(rs, n, offsetof(struct run, p99));
	out->p999 = median_of(rs, n, offsetof(struct run, p999));
	out->replies_per_s = median_of(rs, n, offsetof(struct run, replies_per_s));
	out->lost = median_of(rs, n, offsetof(struct run, lost));
	out->moves_per_s = median_of(rs, n, offsetof(struct run, moves_per_s));
	out->agent_cpu_s = median_of(rs, n, offsetof(struct run, agent_cpu_s));
}

/* ---- report ------------------------------------------------------------------------ */

/* A note as a JSON string. Notes are this program's own text (and its
 * /tmp paths): nothing to escape beyond quotes and backslashes. */
static void json_note(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			putchar('\\');
		putchar(*s);
	}
	putchar('"');
}

/* The highest replies/s among the rates that met the p99 objective with
 * under 1% lost; false if none did. */
static bool at_objective(const struct cfg *c, int k, double *rate)
{
	bool any = false;

	*rate = 0;
	for (unsigned i = 0; i < c->n_rates; i++) {
		const struct run *r = &results[k][i];
		if (r->ok && r->p99 <= c->objective_us && r->lost < 0.01 &&
		    r->replies_per_s > *rate) {
			*rate = r->replies_per_s;
			any = true;
		}
	}
	return any;
}

static void report_json(const struct cfg *c)
{
	printf("{\"metric\":\"setup\",\"workers\":%u,\"clients\":%u,\"heavy_clients\":1,"
	       "\"light_us\":%u,\"heavy_us\":%u,\"light_size\":%u,\"heavy_size\":%u,"
	       "\"buckets\":%u,\"duration_s\":%u,\"reps\":%u,\"p99_objective_us\":%.0f,"
	       "\"proto\":\"%s\"}\n", c->workers, c->clients, c->light_us, c->heavy_us,
	       c->light_size, c->heavy_size, c->buckets, c->duration_s, c->reps, c->objective_us,
	       c->tcp ? "tcp" : "udp");
	for (int k = 0; k < N_CONFIGS; k++) {
		double best;
		if (!c->run[k])
			continue;
		for (unsigned i = 0; i < c->n_rates; i++) {
			const struct run *r = &results[k][i];
			printf("{\"config\":\"%s\",\"metric\":\"run\",\"rate_per_client\":%u,", configs[k].key,
			       c->rates[i]);
			if (!r->ok) {
				printf("\"available\":false,\"note\":");
				json_note(r->note);
				printf("}\n");
				continue;
			}
			printf("\"p50_us\":%.3f,\"p99_us\":%.3f,\"p999_us\":%.3f,\"replies_per_s\":%.0f,"
			       "\"lost\":%.4f,\"moves_per_s\":%.1f,\"agent_cpu_s\":%.3f}\n", r->p50,
			       r->p99, r->p999, r->replies_per_s, r->lost, r->moves_per_s,
			       r->agent_cpu_s);
		}
		if (at_objective(c, k, &best))
			printf("{\"config\":\"%s\",\"metric\":\"throughput_at_p99_objective\","
			       "\"replies_per_s\":%.0f}\n", configs[k].key, best);
		else
			printf("{\"config\":\"%s\",\"metric\":\"throughput_at_p99_objective\","
			       "\"replies_per_s\":null}\n", configs[k].key);
	}
}

static void report_table(const struct cfg *c)
{
	double base = 0, best;

	printf("wave-bench-rpc: %s, %u workers, %u sockperf under-load %s (one flow each; the "
	       "last sends %u-byte requests costing %u us, the others %u-byte costing %u us),\n"
	       "  %u s per run, every request answered (--reply-every 1); latency = sockperf's "
	       "round trip in us;\n  medians over %u interleaved runs per point\n\n",
	       c->tcp ? "TCP" : "UDP", c->workers, c->clients,
	       c->shared_light ? "flows (the light ones from one sockperf process)" : "clients",
	       c->heavy_size, c->heavy_us,
	       c->light_size, c->light_us, c->duration_s, c->reps);
	printf("%-32s %9s %9s %9s %9s %11s %7s %8s %8s\n", "configuration", "rate/cl", "p50 us",
	       "p99 us", "p99.9 us", "replies/s", "lost", "moves/s", "agent s");
	for (int k = 0; k < N_CONFIGS; k++) {
		if (!c->run[k])
			continue;
		for (unsigned i = 0; i < c->n_rates; i++) {
			const struct run *r = &results[k][i];
			printf("%-32s %9u", i ? "" : configs[k].label, c->rates[i]);
			if (!r->ok) {
				printf("  %s\n", r->note);
				continue;
			}
			printf(" %9.1f %9.1f %9.1f %11.0f %6.2f%% %8.1f %8.3f\n", r->p50, r->p99,
			       r->p999, r->replies_per_s, 100 * r->lost, r->moves_per_s,
			       r->agent_cpu_s);
		}
	}
	printf("\nthroughput at p99 <= %.0f us (worst client) with < 1%% lost:\n", c->objective_us);
	for (int k = 0; k < N_CONFIGS; k++) {
		if (!c->run[k])
			continue;
		if (!at_objective(c, k, &best)) {
			printf("  %-32s none of the rates met it\n", configs[k].label);
			continue;
		}
		if (k == 0)
			base = best;
		printf("  %-32s %11.0f replies/s", configs[k].label, best);
		if (k > 0 && base > 0)
			printf("  (%.2fx Linux's hashing)", best / base);
		printf("\n");
	}
}

/* ---- options --------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: wave-bench-rpc [options]\n"
		"  --workers N         server workers (default 2)\n"
		"  --clients K         sockperf clients, the last one heavy (default 3, max %d)\n"
		"  --light-us US       CPU time of a light request (default 10)\n"
		"  --heavy-us US       CPU time of a heavy request (default 100)\n"
		"  --rates R1,R2,...   per-client rates to sweep, messages/s (default 500,1000,2000)\n"
		"  --duration S        seconds per run (default 3)\n"
		"  --reps N            runs per point, interleaved; medians reported (default 1, max %d)\n"
		"  --objective-us US   the p99 objective (default 2000)\n"
		"  --configs LIST      of linux,bpf,onhost,shm,shm-1us (default all)\n"
		"  --client-nice N     run the sockperf clients at nice N (default 0; sockperf\n"
		"                      busy-waits between sends, a CPU per client)\n"
		"  --reaction N        the rebalancer's reaction time to a new heavy flow, N\n"
		"                      trials per agent configuration, at the first --rates rate\n"
		"  --shared-light      the light flows from one sockperf process (distinct\n"
		"                      destinations 127.0.0.1, .2, ...; the server on 0.0.0.0):\n"
		"                      two busy-waiting clients instead of K\n"
		"  --tcp               TCP instead of UDP\n"
		"  --quick             a smoke test: linux and bpf, one short run each\n"
		"  --json              one JSON object per line\n", MAX_CLIENTS, MAX_REPS);
}

static bool parse_configs(char *s, struct cfg *c)
{
	char *save, *t;

	memset(c->run, 0, sizeof(c->run));
	for (t = strtok_r(s, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		int k;
		for (k = 0; k < N_CONFIGS && strcmp(t, configs[k].key) != 0; k++)
			;
		if (k == N_CONFIGS)
			return false;
		c->run[k] = true;
	}
	return true;
}

/* Each rate whole and in range: "100abc" is not 100 messages per second. */
static void parse_rates(const char *opt, const char *list, struct cfg *c)
{
	char buf[256], what[64], *save, *t;

	snprintf(what, sizeof(what), "1 to %d comma-separated rates from 1 to 1000000", MAX_RATES);
	if (strlen(list) >= sizeof(buf))
		example_fail(PROG, opt, what, list);
	strcpy(buf, list);
	c->n_rates = 0;
	for (t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (c->n_rates == MAX_RATES)
			example_fail(PROG, opt, what, list);
		c->rates[c->n_rates++] = example_uint(PROG, opt, t, 1, 1000000);
	}
	if (c->n_rates == 0)
		example_fail(PROG, opt, what, list);
}

static int parse_args(int argc, char **argv, struct cfg *c)
{
	*c = (struct cfg){ .workers = 2, .clients = 3, .buckets = 64, .light_us = 10,
			   .heavy_us = 100, .light_size = 64, .heavy_size = 1000,
			   .rates = { 500, 1000, 2000 }, .n_rates = 3, .duration_s = 3, .reps = 1,
			   .objective_us = 2000 };
	for (int k = 0; k < N_CONFIGS; k++)
		c->run[k] = true;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool more = i + 1 < argc;
		if (!strcmp(a, "--json"))
			c->json = true;
		else if (!strcmp(a, "--tcp"))
			c->tcp = true;
		else if (!strcmp(a, "--quick")) {
			c->n_rates = 1;
			c->rates[0] = 200;
			c->duration_s = 2;
			c->client_nice = 19; /* the server must get the CPU on a busy machine */
			memset(c->run, 0, sizeof(c->run));
			c->run[0] = c->run[1] = true;
		} else if (!strcmp(a, "--workers") && more)
			c->workers = example_uint(PROG, a, argv[++i], 1, 64);
		else if (!strcmp(a, "--clients") && more)
			c->clients = example_uint(PROG, a, argv[++i], 1, MAX_CLIENTS);
		else if (!strcmp(a, "--light-us") && more) /* the server's --work-us range */
			c->light_us = example_uint(PROG, a, argv[++i], 0, 10000000);
		else if (!strcmp(a, "--heavy-us") && more)
			c->heavy_us = example_uint(PROG, a, argv[++i], 0, 10000000);
		else if (!strcmp(a, "--reps") && more)
			c->reps = example_uint(PROG, a, argv[++i], 1, MAX_REPS);
		else if (!strcmp(a, "--shared-light"))
			c->shared_light = true;
		else if (!strcmp(a, "--reaction") && more)
			c->reaction = example_uint(PROG, a, argv[++i], 0, 4 * MAX_REPS);
		else if (!strcmp(a, "--client-nice") && more) /* setpriority()'s range */
			c->client_nice = (int)example_int(PROG, a, argv[++i], -20, 19);
		else if (!strcmp(a, "--duration") && more) /* usleep(duration_s * 500000) */
			c->duration_s = example_uint(PROG, a, argv[++i], 1, 3600);
		else if (!strcmp(a, "--objective-us") && more)
			c->objective_us = example_double(PROG, a, argv[++i], 1, 1e9);
		else if (!strcmp(a, "--rates") && more)
			parse_rates(a, argv[++i], c);
		else if (!strcmp(a, "--configs") && more) {
			if (!parse_configs(argv[++i], c))
				return -1;
		} else if (!strcmp(a, "--help")) {
			usage(stdout);
			exit(0);
		} else
			return -1;
	}
	if (c->reaction && c->clients < 2) { /* the last client is the heavy flow */
		fprintf(stderr, PROG ": --reaction: needs --clients from 2 to %d\n", MAX_CLIENTS);
		exit(2);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct cfg c;
	bool all_ok = true;

	if (parse_args(argc, argv, &c) != 0) {
		usage(stderr);
		return 2;
	}
	if (system("command -v sockperf >/dev/null 2>&1") != 0) {
		printf("wave-bench-rpc: skipped: sockperf is not installed (Debian package sockperf)\n");
		return 77;
	}
	snprintf(workdir, sizeof(workdir), "/tmp/wave-bench-rpc.XXXXXX");
	if (!mkdtemp(workdir)) {
		perror("wave-bench-rpc: mkdtemp");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	if (c.reaction) {
		report_reaction(&c);
		return 0;
	}
	/* Interleaved: in each round, at each rate, every configuration once. */
	for (unsigned rep = 0; rep < c.reps; rep++)
		for (unsigned i = 0; i < c.n_rates; i++)
			for (int k = 0; k < N_CONFIGS; k++) {
				struct run *r = &runs[k][i][rep];
				if (!c.run[k])
					continue;
				run_one(&c, k, c.rates[i], rep, r);
				all_ok &= r->ok || strstr(r->note, "needs root") != NULL;
			}
	for (int k = 0; k < N_CONFIGS; k++)
		for (unsigned i = 0; i < c.n_rates; i++)
			summarize(runs[k][i], c.reps, &results[k][i]);
	if (c.json)
		report_json(&c);
	else
		report_table(&c);
	if (all_ok) { /* keep the logs of a failed run */
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", workdir);
		if (system(cmd) != 0)
			fprintf(stderr, "wave-bench-rpc: could not remove %s\n", workdir);
	} else {
		fprintf(stderr, "wave-bench-rpc: logs kept in %s\n", workdir);
	}
	return all_ok ? 0 : 1;
}
