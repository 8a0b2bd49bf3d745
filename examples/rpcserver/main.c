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

#include "../example_args.h"
#include "rpcserver.h"

#define MAX_WORKERS 64
/* A year: the deadline, duration_s * 1e9 ns from now, must fit a uint64_t. */
#define MAX_DURATION_S 31536000.0

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
		"  --ip ADDR              address to bind, IPv4 or IPv6 (default 127.0.0.1)\n"
		"  --port N               port (default 11111, sockperf's; 0: any free one)\n"
		"  --workers N            worker threads (default 2)\n"
		"  --steer MODE           who picks a request's worker (default linux):\n"
		"                         linux     a SO_REUSEPORT socket per worker, Linux's hashing\n"
		"                         bpf       the same, libwave's steering table in an eBPF program\n"
		"                         dispatch  one socket; a dispatcher thread hands each request\n"
		"                                   (UDP) or connection (TCP) to a worker's queue by\n"
		"                                   the table's worker for its flow (wave_rpc_steer)\n"
		"                         pick      as dispatch, by the worker the agent prestaged for\n"
		"                                   the request's class (wave_rpc_pick)\n"
		"  --queue N              dispatch, pick: a worker's queue, in requests (default 256);\n"
		"                         a full queue drops the datagram or closes the connection,\n"
		"                         counted as queue_full\n"
		"  --buckets N            steering table size, a power of two (default 64)\n"
		"  --agent URI            with bpf, dispatch or pick: an agent (its rpc plugin) moves\n"
		"                         the table's buckets or prestages workers, from the workers'\n"
		"                         load and the per-bucket arrivals\n"
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

static bool parse_mode(const char *s, enum steer_mode *m)
{
	static const char *const names[] = { "linux", "bpf", "dispatch", "pick" };

	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(s, names[i])) {
			*m = (enum steer_mode)i;
			return true;
		}
	return false;
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
		{ "queue", required_argument, NULL, 'Q' },
		{ "json", no_argument, NULL, 'j' },	  { "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	unsigned v;
	int c;
	bool ok = true;

	*o = (struct opts){ .cfg = { .workers = 2, .queue = 256 }, .ip = "127.0.0.1",
			    .port = 11111, .steer = { .buckets = 64, .report_us = 1000 } };
	while (ok && (c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'u': o->cfg.tcp = false; break;
		case 't': o->cfg.tcp = true; break;
		case 'i': o->ip = optarg; break;
		case 'p': ok = parse_uint(optarg, 65535, &o->port); break;
		case 'w': ok = parse_uint(optarg, MAX_WORKERS, &o->cfg.workers) && o->cfg.workers; break;
		case 's': ok = parse_mode(optarg, &o->cfg.mode); break;
		case 'Q': ok = parse_uint(optarg, 1u << 20, &o->cfg.queue) && o->cfg.queue; break;
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
		case 'd':
			o->duration_s = example_double("rpcserver", "--duration", optarg, 0.001,
						       MAX_DURATION_S);
			break;
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
	o->steer.mode = o->cfg.mode;
	o->steer.classes = o->cfg.n_rules + 1;
	if (o->cfg.mode != STEER_LINUX && (o->steer.buckets < o->cfg.workers ||
					   (o->steer.buckets & (o->steer.buckets - 1)))) {
		fprintf(stderr, "rpcserver: --buckets must be a power of two, at least --workers\n");
		return -1;
	}
	if ((o->steer.agent || o->steer.agent_config) &&
	    (o->cfg.mode == STEER_LINUX || !o->steer.agent)) {
		fprintf(stderr, "rpcserver: --agent needs --steer bpf, dispatch or pick; "
			"--agent-config needs --agent\n");
		return -1;
	}
	return 0;
}

/* @ip and @port as a socket address, IPv4 or IPv6. Return: its length,
 * or 0 if @ip is neither. */
static socklen_t make_addr(const char *ip, unsigned port, struct sockaddr_storage *ss)
{
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		return sizeof(*a4);
	}
	if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		return sizeof(*a6);
	}
	return 0;
}

/* The port of @ss, IPv4 or IPv6 (make_addr() made it). */
static unsigned addr_port(const struct sockaddr_storage *ss)
{
	return ntohs(ss->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)ss)->sin6_port
					       : ((const struct sockaddr_in *)ss)->sin_port);
}

/* --port 0: a port no socket uses, into @a. A SO_REUSEPORT socket bound
 * to port 0 may be given a port where another process of the same user
 * already has a reuseport group, and join it: the two servers then share
 * each other's traffic (seen with tests running side by side). A socket
 * without SO_REUSEPORT is given a port nobody holds; the group binds it
 * right after. */
static int free_port(const struct opts *o, struct sockaddr_storage *a, socklen_t len)
{
	int fd = socket(a->ss_family, (o->cfg.tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
	socklen_t got = sizeof(*a);
	int ret = -1;

	if (fd >= 0 && bind(fd, (struct sockaddr *)a, len) == 0 &&
	    getsockname(fd, (struct sockaddr *)a, &got) == 0)
		ret = 0;
	else
		fprintf(stderr, "rpcserver: no free port on %s: %s\n", o->ip, strerror(errno));
	if (fd >= 0)
		close(fd);
	return ret;
}

/* The sockets: one reuseport group on ip:port, a socket per worker; or,
 * in the dispatch modes, the dispatcher's one socket in fds[0]. Return:
 * how many, or -1. */
static int make_sockets(const struct opts *o, int *fds, unsigned *port)
{
	unsigned n = mode_dispatches(o->cfg.mode) ? 1 : o->cfg.workers;
	struct sockaddr_storage a;
	socklen_t len = make_addr(o->ip, o->port, &a);
	int one = 1;

	if (!len) {
		fprintf(stderr, "rpcserver: --ip %s: not an IPv4 or IPv6 address\n", o->ip);
		return -1;
	}
	if (o->port == 0 && free_port(o, &a, len) < 0)
		return -1;
	for (unsigned i = 0; i < n; i++) {
		fds[i] = socket(a.ss_family, (o->cfg.tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC,
				0);
		if (fds[i] < 0 || setsockopt(fds[i], SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
		    bind(fds[i], (struct sockaddr *)&a, len) || (o->cfg.tcp && listen(fds[i], 1024))) {
			fprintf(stderr, "rpcserver: socket %u on %s port %u: %s\n", i, o->ip,
				addr_port(&a), strerror(errno));
			return -1;
		}
	}
	*port = addr_port(&a);
	return (int)n;
}

/* Until the duration has passed or SIGINT or SIGTERM (blocked in every
 * thread) comes; with an agent, the handle makes progress meanwhile, and
 * the first decision committed after the first heavy request is the
 * reaction (its time on this host's clock, in s->reacted_ns). */
static void serve_until_stop(const struct opts *o, struct steer *s, const sigset_t *sigs)
{
	uint64_t end = o->duration_s > 0 ? now_ns() + (uint64_t)(o->duration_s * 1e9) : UINT64_MAX;
	struct timespec zero = { 0, 0 }, tick = { 0, 50000000 };

	for (;;) {
		if (s->rpc && wave_rpc_poll(s->rpc, 1000000) > 0 && !s->reacted_ns &&
		    atomic_load(&heavy_first_ns))
			s->reacted_ns = now_ns();
		if (sigtimedwait(sigs, NULL, s->rpc ? &zero : &tick) >= 0 || now_ns() >= end)
			return;
	}
}

/* The dispatch modes' queues and thread. */
struct dispatch {
	struct dispatcher d;
	struct wqueue q[MAX_WORKERS];
	unsigned n_queues;
	pthread_t thr;
	bool running;
	uint64_t left; /* requests still queued when the server stopped */
};

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
		t->stalled += w[i].st.stalled;
		t->accept_backoff += w[i].st.accept_backoff;
		t->busy_ns += w[i].st.busy_ns;
	}
}

static void print_stats(const struct opts *o, const struct steer *s, const struct worker *w,
			const struct dispatch *x)
{
	uint64_t full = 0;
	const struct wave_rpc_reuseport_stats *bs = s->rp ? &s->bpf : NULL;
	const char *steer = s->name;
	struct worker_stats t;
	unsigned n = o->cfg.workers;

	sum_stats(w, n, &t);
	t.accept_backoff += x->d.accept_backoff;
	for (unsigned i = 0; i < x->n_queues; i++)
		full += x->q[i].full;
	if (!o->json) {
		printf("steering: %s\n", steer);
		for (unsigned i = 0; i < n; i++)
			printf("worker %u: served %llu replies %llu busy %.3f s\n", i,
			       (unsigned long long)w[i].st.served,
			       (unsigned long long)w[i].st.replies, (double)w[i].st.busy_ns / 1e9);
		printf("total: served %llu replies %llu warmup %llu not_client %llu malformed %llu "
		       "truncated %llu send_errors %llu connections %llu stalled %llu "
		       "accept_backoff %llu\n",
		       (unsigned long long)t.served, (unsigned long long)t.replies,
		       (unsigned long long)t.warmup, (unsigned long long)t.not_client,
		       (unsigned long long)t.malformed, (unsigned long long)t.truncated,
		       (unsigned long long)t.send_errors, (unsigned long long)t.connections,
		       (unsigned long long)t.stalled, (unsigned long long)t.accept_backoff);
		if (bs)
			printf("bpf: steered %llu fallback %llu\n", (unsigned long long)bs->steered,
			       (unsigned long long)bs->fallback);
		if (mode_dispatches(o->cfg.mode))
			printf("dispatcher: dispatched %llu queue_full %llu no_worker %llu "
			       "left_at_stop %llu\n", (unsigned long long)x->d.dispatched,
			       (unsigned long long)full, (unsigned long long)x->d.no_worker,
			       (unsigned long long)x->left);
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
	       "\"connections\":%llu,\"stalled\":%llu,\"accept_backoff\":%llu,"
	       "\"bpf_steered\":%llu,\"bpf_fallback\":%llu,",
	       steer, (unsigned long long)t.served, (unsigned long long)t.replies,
	       (unsigned long long)t.warmup, (unsigned long long)t.not_client,
	       (unsigned long long)t.malformed, (unsigned long long)t.truncated,
	       (unsigned long long)t.send_errors, (unsigned long long)t.connections,
	       (unsigned long long)t.stalled, (unsigned long long)t.accept_backoff,
	       (unsigned long long)(bs ? bs->steered : 0), (unsigned long long)(bs ? bs->fallback : 0));
	printf("\"moves\":%llu,\"host_moves\":%llu,\"agent_fallbacks\":%llu,\"agent_cpu_ns\":%llu,"
	       "\"table_consistent\":%s,", (unsigned long long)s->stats.committed,
	       (unsigned long long)s->stats.host_moves, (unsigned long long)s->stats.fallbacks,
	       (unsigned long long)s->agent_cpu_ns, s->consistent ? "true" : "false");
	printf("\"reaction_ns\":%lld,", s->reacted_ns ? (long long)(s->reacted_ns -
						atomic_load(&heavy_first_ns)) : -1LL);
	printf("\"dispatched\":%llu,\"queue_full\":%llu,\"no_worker\":%llu,\"left_at_stop\":%llu,"
	       "\"workers\":[", (unsigned long long)x->d.dispatched, (unsigned long long)full,
	       (unsigned long long)x->d.no_worker, (unsigned long long)x->left);
	for (unsigned i = 0; i < n; i++)
		printf("%s{\"served\":%llu,\"busy_ns\":%llu,\"max_queue_depth\":%u}", i ? "," : "",
		       (unsigned long long)w[i].st.served, (unsigned long long)w[i].st.busy_ns,
		       w[i].st.max_depth);
	printf("]}\n");
}

static int dispatch_start(struct dispatch *x, const struct opts *o, struct steer *st, int fd,
			  struct worker *w, const atomic_bool *stop)
{
	for (; x->n_queues < o->cfg.workers; x->n_queues++)
		if (wq_init(&x->q[x->n_queues], o->cfg.queue) != 0)
			return -1;
	x->d = (struct dispatcher){ .cfg = &o->cfg, .fd = fd, .rpc = st->rpc,
				    .buckets = o->steer.buckets, .w = w, .n = o->cfg.workers,
				    .stop = stop };
	return 0;
}

/* Frees the workers' queues, counting what is left in them: only once the
 * workers are gone (each reads its queue's depth until it ends). */
static void dispatch_free(struct dispatch *x)
{
	for (unsigned i = 0; i < x->n_queues; i++) {
		x->left += wq_depth(&x->q[i]);
		wq_fini(&x->q[i]);
	}
}

/* Starts the workers (and the dispatcher); then serves until told to
 * stop. Return: 0, or 1 if a thread could not start or run. */
static int run(const struct opts *o, struct steer *st, const int *fds, unsigned port,
	       const sigset_t *sigs, struct worker *w, struct dispatch *x)
{
	static atomic_bool stop;
	pthread_t th[MAX_WORKERS];
	bool dispatching = mode_dispatches(o->cfg.mode);
	unsigned started = 0;
	int rc = 0;

	if (dispatching && dispatch_start(x, o, st, fds[0], w, &stop) != 0) {
		fprintf(stderr, "rpcserver: out of memory for the workers' queues\n");
		return 1;
	}
	for (; started < o->cfg.workers; started++) {
		w[started] = (struct worker){ .id = started, .fd = fds[dispatching ? 0 : started],
					      .q = dispatching ? &x->q[started] : NULL,
					      .cfg = &o->cfg, .stop = &stop, .rpc = st->rpc,
					      .rp = st->rp, .report_ns = o->steer.report_us * 500ull };
		if (pthread_create(&th[started], NULL, worker_main, &w[started]) != 0)
			break;
	}
	if (started == o->cfg.workers && dispatching)
		x->running = pthread_create(&x->thr, NULL, dispatcher_main, &x->d) == 0;
	if (started == o->cfg.workers && (!dispatching || x->running)) {
		bool v6 = strchr(o->ip, ':') != NULL;
		printf("ready %s %s%s%s:%u workers %u steer %s\n", o->cfg.tcp ? "tcp" : "udp",
		       v6 ? "[" : "", o->ip, v6 ? "]" : "", port, o->cfg.workers, st->name);
		fflush(stdout);
		serve_until_stop(o, st, sigs);
	} else {
		fprintf(stderr, "rpcserver: cannot start worker %u or the dispatcher\n", started);
		rc = 1;
	}
	atomic_store(&stop, true);
	/* The dispatcher first: no request is queued after the workers end. */
	if (dispatching && x->running)
		pthread_join(x->thr, NULL);
	if (x->d.failed) {
		fprintf(stderr, "rpcserver: the dispatcher could not run\n");
		rc = 1;
	}
	for (unsigned i = 0; i < started; i++) {
		pthread_join(th[i], NULL);
		if (w[i].failed) {
			fprintf(stderr, "rpcserver: worker %u could not run\n", i);
			rc = 1;
		}
	}
	if (dispatching)
		dispatch_free(x);
	return rc;
}

int main(int argc, char **argv)
{
	static struct worker w[MAX_WORKERS];
	static struct dispatch x;
	struct steer st;
	int fds[MAX_WORKERS], n, rc;
	unsigned port;
	struct opts o;
	sigset_t sigs;

	if (parse_args(argc, argv, &o) != 0)
		return 2;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	if ((n = make_sockets(&o, fds, &port)) < 0)
		return 1;
	if (steer_start(&st, &o.steer, fds) != 0) {
		steer_stop(&st, o.steer.buckets);
		return 1;
	}
	rc = run(&o, &st, fds, port, &sigs, w, &x);
	steer_stop(&st, o.steer.buckets);
	print_stats(&o, &st, w, &x);
	for (int i = 0; i < n; i++)
		close(fds[i]);
	return rc;
}
