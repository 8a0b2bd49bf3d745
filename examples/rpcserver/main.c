/* SPDX-License-Identifier: MIT */
/*
 * wave-example-rpcserver: see rpcserver.h and --help.
 *
 *   wave-example-rpcserver --udp --workers 2 --steer bpf --work-us 5 --class 1000:50
 *   sockperf under-load -i 127.0.0.1 -p 11111 --mps 10000 -m 64 -t 10
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "rpcserver.h"

#define MAX_WORKERS 64

struct opts {
	struct srv_cfg cfg;
	struct steer_cfg steer;
	const char *ip;
	unsigned port;
	bool json;
	double duration_s; /* 0: until SIGINT or SIGTERM */
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: wave-example-rpcserver [options]\n"
		"  --udp | --tcp          protocol (default udp)\n"
		"  --ip ADDR              address to bind (default 127.0.0.1)\n"
		"  --port N               port (default 11111, sockperf's; 0: any free one)\n"
		"  --workers N            worker threads, one SO_REUSEPORT socket each (default 2)\n"
		"  --steer linux|bpf      who picks a flow's worker: Linux's own reuseport hashing,\n"
		"                         or libwave's steering table in an eBPF program (default linux)\n"
		"  --buckets N            steering table size, a power of two (default 64)\n"
		"  --agent URI            with --steer bpf: an agent (its rpc plugin) moves the\n"
		"                         table's buckets, from the workers' load and the kernel's\n"
		"                         per-bucket arrivals; the table starts on worker 0\n"
		"  --agent-config FILE    run that agent from FILE on a thread of this process\n"
		"                         (on-host); --agent is then one of the addresses it listens on\n"
		"  --delay-ns N           emulated one-way delay on the host's channel (default 0)\n"
		"  --report-us N          load report period (default 1000)\n"
		"  --work-us US           CPU time each request costs (default 0)\n"
		"  --class MINLEN:US      requests of MINLEN bytes or more cost US instead (up to %d;\n"
		"                         the largest MINLEN that applies wins)\n"
		"  --duration S           stop after S seconds (default: at SIGINT or SIGTERM)\n"
		"  --json                 statistics at exit as one JSON line\n"
		"Prints 'ready PROTO ADDR:PORT' on stdout once it serves.\n",
		RPCSRV_MAX_RULES);
}

static bool parse_uint(const char *s, unsigned long max, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > max || s[0] == '-')
		return false;
	*out = (unsigned)v;
	return true;
}

static bool parse_rule(const char *s, struct srv_cfg *c)
{
	char buf[64], *colon;
	unsigned len, us;

	if (c->n_rules == RPCSRV_MAX_RULES || strlen(s) >= sizeof(buf))
		return false;
	strcpy(buf, s);
	colon = strchr(buf, ':');
	if (!colon)
		return false;
	*colon = '\0';
	if (!parse_uint(buf, SP_MAX_MSG, &len) || !parse_uint(colon + 1, 10000000, &us))
		return false;
	c->rules[c->n_rules++] = (struct work_rule){ len, us };
	return true;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "udp", no_argument, NULL, 'u' },	  { "tcp", no_argument, NULL, 't' },
		{ "ip", required_argument, NULL, 'i' },	  { "port", required_argument, NULL, 'p' },
		{ "workers", required_argument, NULL, 'w' },
		{ "steer", required_argument, NULL, 's' },
		{ "buckets", required_argument, NULL, 'b' },
		{ "work-us", required_argument, NULL, 'W' },
		{ "class", required_argument, NULL, 'c' },
		{ "duration", required_argument, NULL, 'd' },
		{ "agent", required_argument, NULL, 'a' },
		{ "agent-config", required_argument, NULL, 'A' },
		{ "delay-ns", required_argument, NULL, 'D' },
		{ "report-us", required_argument, NULL, 'R' },
		{ "json", no_argument, NULL, 'j' },	  { "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	unsigned v;
	int c;
	bool ok = true;

	*o = (struct opts){ .cfg.workers = 2, .ip = "127.0.0.1", .port = 11111,
			    .steer = { .buckets = 64, .report_us = 1000 } };
	while (ok && (c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'u': o->cfg.tcp = false; break;
		case 't': o->cfg.tcp = true; break;
		case 'i': o->ip = optarg; break;
		case 'p': ok = parse_uint(optarg, 65535, &o->port); break;
		case 'w': ok = parse_uint(optarg, MAX_WORKERS, &o->cfg.workers) && o->cfg.workers; break;
		case 's':
			ok = !strcmp(optarg, "linux") || !strcmp(optarg, "bpf");
			o->steer.bpf = !strcmp(optarg, "bpf");
			break;
		case 'b': ok = parse_uint(optarg, WAVE_RPC_REUSEPORT_MAX_BUCKETS, &o->steer.buckets); break;
		case 'a': o->steer.agent = optarg; break;
		case 'A': o->steer.agent_config = optarg; break;
		case 'D': ok = parse_uint(optarg, 1000000000, &v); o->steer.delay_ns = v; break;
		case 'R':
			ok = parse_uint(optarg, 10000000, &o->steer.report_us) &&
			     o->steer.report_us >= 10;
			break;
		case 'W': ok = parse_uint(optarg, 10000000, &o->cfg.work_us); break;
		case 'c': ok = parse_rule(optarg, &o->cfg); break;
		case 'd': o->duration_s = strtod(optarg, NULL); ok = o->duration_s > 0; break;
		case 'j': o->json = true; break;
		case 'h': usage(stdout); exit(0);
		default: ok = false;
		}
	}
	if (!ok || optind != argc) {
		usage(stderr);
		return -1;
	}
	o->steer.workers = o->cfg.workers;
	if (o->steer.bpf && (o->steer.buckets < o->cfg.workers ||
			     (o->steer.buckets & (o->steer.buckets - 1)))) {
		fprintf(stderr, "rpcserver: --buckets must be a power of two, at least --workers\n");
		return -1;
	}
	if ((o->steer.agent || o->steer.agent_config) && (!o->steer.bpf || !o->steer.agent)) {
		fprintf(stderr, "rpcserver: --agent needs --steer bpf; --agent-config needs --agent\n");
		return -1;
	}
	return 0;
}

/* The workers' sockets: one reuseport group on ip:port. */
static int make_group(const struct opts *o, int *fds, unsigned *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)o->port) };
	socklen_t len = sizeof(a);
	int one = 1;

	if (inet_pton(AF_INET, o->ip, &a.sin_addr) != 1) {
		fprintf(stderr, "rpcserver: --ip %s: not an IPv4 address\n", o->ip);
		return -1;
	}
	for (unsigned i = 0; i < o->cfg.workers; i++) {
		fds[i] = socket(AF_INET, (o->cfg.tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
		if (fds[i] < 0 || setsockopt(fds[i], SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
		    bind(fds[i], (struct sockaddr *)&a, sizeof(a)) ||
		    (o->cfg.tcp && listen(fds[i], 1024))) {
			fprintf(stderr, "rpcserver: socket %u on %s:%u: %s\n", i, o->ip,
				ntohs(a.sin_port), strerror(errno));
			return -1;
		}
		/* With --port 0 the first socket picks the port; the rest join it. */
		if (i == 0 && getsockname(fds[0], (struct sockaddr *)&a, &len) != 0)
			return -1;
	}
	*port = ntohs(a.sin_port);
	return 0;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Until the duration has passed or SIGINT or SIGTERM (blocked in every
 * thread) comes; with an agent, the handle makes progress meanwhile. */
static void serve_until_stop(const struct opts *o, struct steer *s, const sigset_t *sigs)
{
	uint64_t end = o->duration_s > 0 ? mono_ns() + (uint64_t)(o->duration_s * 1e9) : UINT64_MAX;
	struct timespec zero = { 0, 0 }, tick = { 0, 50000000 };

	for (;;) {
		if (s->rpc)
			wave_rpc_poll(s->rpc, 1000000);
		if (sigtimedwait(sigs, NULL, s->rpc ? &zero : &tick) >= 0 || mono_ns() >= end)
			return;
	}
}

static void sum_stats(const struct worker *w, unsigned n, struct worker_stats *t)
{
	memset(t, 0, sizeof(*t));
	for (unsigned i = 0; i < n; i++) {
		t->served += w[i].st.served;
		t->replies += w[i].st.replies;
		t->warmup += w[i].st.warmup;
		t->not_client += w[i].st.not_client;
		t->malformed += w[i].st.malformed;
		t->truncated += w[i].st.truncated;
		t->send_errors += w[i].st.send_errors;
		t->connections += w[i].st.connections;
		t->busy_ns += w[i].st.busy_ns;
	}
}

static void print_stats(const struct opts *o, const struct steer *s, const struct worker *w)
{
	const struct wave_rpc_reuseport_stats *bs = s->rp ? &s->bpf : NULL;
	const char *steer = s->name;
	struct worker_stats t;
	unsigned n = o->cfg.workers;

	sum_stats(w, n, &t);
	if (!o->json) {
		printf("steering: %s\n", steer);
		for (unsigned i = 0; i < n; i++)
			printf("worker %u: served %llu replies %llu busy %.3f s\n", i,
			       (unsigned long long)w[i].st.served,
			       (unsigned long long)w[i].st.replies, (double)w[i].st.busy_ns / 1e9);
		printf("total: served %llu replies %llu warmup %llu not_client %llu malformed %llu "
		       "truncated %llu send_errors %llu connections %llu\n",
		       (unsigned long long)t.served, (unsigned long long)t.replies,
		       (unsigned long long)t.warmup, (unsigned long long)t.not_client,
		       (unsigned long long)t.malformed, (unsigned long long)t.truncated,
		       (unsigned long long)t.send_errors, (unsigned long long)t.connections);
		if (bs)
			printf("bpf: steered %llu fallback %llu\n", (unsigned long long)bs->steered,
			       (unsigned long long)bs->fallback);
		if (s->have_stats)
			printf("agent: moves %llu host_moves %llu fallbacks %llu agent_cpu %.3f s "
			       "kernel table %s\n", (unsigned long long)s->stats.committed,
			       (unsigned long long)s->stats.host_moves,
			       (unsigned long long)s->stats.fallbacks, (double)s->agent_cpu_ns / 1e9,
			       s->consistent ? "consistent" : "INCONSISTENT");
		return;
	}
	printf("{\"steer\":\"%s\",\"served\":%llu,\"replies\":%llu,\"warmup\":%llu,"
	       "\"not_client\":%llu,\"malformed\":%llu,\"truncated\":%llu,\"send_errors\":%llu,"
	       "\"connections\":%llu,\"bpf_steered\":%llu,\"bpf_fallback\":%llu,",
	       steer, (unsigned long long)t.served, (unsigned long long)t.replies,
	       (unsigned long long)t.warmup, (unsigned long long)t.not_client,
	       (unsigned long long)t.malformed, (unsigned long long)t.truncated,
	       (unsigned long long)t.send_errors, (unsigned long long)t.connections,
	       (unsigned long long)(bs ? bs->steered : 0), (unsigned long long)(bs ? bs->fallback : 0));
	printf("\"moves\":%llu,\"host_moves\":%llu,\"agent_fallbacks\":%llu,\"agent_cpu_ns\":%llu,"
	       "\"table_consistent\":%s,\"workers\":[", (unsigned long long)s->stats.committed,
	       (unsigned long long)s->stats.host_moves, (unsigned long long)s->stats.fallbacks,
	       (unsigned long long)s->agent_cpu_ns, s->consistent ? "true" : "false");
	for (unsigned i = 0; i < n; i++)
		printf("%s{\"served\":%llu,\"busy_ns\":%llu}", i ? "," : "",
		       (unsigned long long)w[i].st.served, (unsigned long long)w[i].st.busy_ns);
	printf("]}\n");
}

int main(int argc, char **argv)
{
	static struct worker w[MAX_WORKERS];
	pthread_t th[MAX_WORKERS];
	struct steer st;
	atomic_bool stop = false;
	int fds[MAX_WORKERS], rc = 0;
	unsigned port, started = 0;
	struct opts o;
	sigset_t sigs;

	if (parse_args(argc, argv, &o) != 0)
		return 2;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	if (make_group(&o, fds, &port) != 0)
		return 1;
	if (steer_start(&st, &o.steer, fds) != 0) {
		steer_stop(&st, o.steer.buckets);
		return 1;
	}
	for (; started < o.cfg.workers; started++) {
		w[started] = (struct worker){ .id = started, .fd = fds[started], .cfg = &o.cfg,
					      .stop = &stop, .rpc = st.rpc,
					      .report_ns = o.steer.report_us * 500ull };
		if (pthread_create(&th[started], NULL, worker_main, &w[started]) != 0)
			break;
	}
	if (started == o.cfg.workers) {
		printf("ready %s %s:%u workers %u steer %s\n", o.cfg.tcp ? "tcp" : "udp", o.ip, port,
		       o.cfg.workers, st.name);
		fflush(stdout);
		serve_until_stop(&o, &st, &sigs);
	} else {
		fprintf(stderr, "rpcserver: cannot start worker %u\n", started);
		rc = 1;
	}
	atomic_store(&stop, true);
	for (unsigned i = 0; i < started; i++) {
		pthread_join(th[i], NULL);
		if (w[i].failed) {
			fprintf(stderr, "rpcserver: worker %u could not run\n", i);
			rc = 1;
		}
	}
	steer_stop(&st, o.steer.buckets);
	print_stats(&o, &st, w);
	for (unsigned i = 0; i < o.cfg.workers; i++)
		close(fds[i]);
	return rc;
}
