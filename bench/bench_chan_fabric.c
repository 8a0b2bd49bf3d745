/* SPDX-License-Identifier: MIT */
/*
 * wave-bench-fabric: libwave fabric:// channels against the raw provider.
 *
 * For each provider (tcp;ofi_rxm over 127.0.0.1, shm), the agent runs on
 * CPU 1 and the host on CPU 0, both busy-polling:
 *   - one-way latency: ping-pong of one 64-byte message, round trip / 2,
 *     p50, p99 and mean over the timed iterations;
 *   - streaming throughput: the host sends N messages with send_burst() of
 *     1, 8 or 32; the agent takes them with recv_burst() and answers once at
 *     the end; rate = N / (time from first send to that answer);
 *   - fi_pingpong -p PROV -e rdm -S 64 on the same CPUs, for reference:
 *     its usec/xfer is one-way (round trip / 2) and an average; its
 *     Mxfers/sec is the ping-pong message rate.
 *
 * Each run measures both, one after the other; with --runs N the table
 * shows every run and the medians, and the ratios and targets are judged
 * on the medians. fi_pingpong prints an average only, so the like-for-like
 * latency ratio is libwave's mean over fi_pingpong's.
 *
 *   wave-bench-fabric [--quick] [--iters N] [--msgs N] [--runs N] [--prov tcp|shm]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <wave/wave.h>

#define HOST_CPU 0
#define AGENT_CPU 1
#define T_PING 0x8001
#define T_DATA 0x8002
#define T_DONE 0x8003
#define T_QUIT 0x8004

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void pin(int cpu)
{
	cpu_set_t s;

	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	if (sched_setaffinity(0, sizeof(s), &s) != 0)
		fprintf(stderr, "warning: cannot pin to CPU %d: %s\n", cpu, strerror(errno));
}

static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM, 0), port = 0;

	if (s >= 0 && bind(s, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(s, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (s >= 0)
		close(s);
	return port;
}

/* Busy-polls one message. */
static int recv1(struct wave_chan *ch, struct wave_msg *m)
{
	int r;

	while ((r = wave_chan_recv_burst(ch, m, 1)) == 0)
		;
	return r;
}

static int send1(struct wave_chan *ch, const struct wave_msg *m)
{
	int r;

	while ((r = wave_chan_send_burst(ch, m, 1)) == 0)
		;
	return r;
}

/* The agent: echo pings, count data, answer DONE; until QUIT. */
static int agent(const char *uri, const struct wave_chan_opts *o)
{
	struct wave_chan_listener *l;
	struct wave_msg in[64], out;
	struct wave_chan *ch;
	uint64_t data = 0;
	int r;

	pin(AGENT_CPU);
	if ((r = wave_chan_listen(uri, o, &l)) < 0) {
		fprintf(stderr, "agent: listen %s: %s\n", uri, wave_strerror(r));
		return 1;
	}
	printf("READY\n");
	fflush(stdout);
	if ((r = wave_chan_accept(l, WAVE_MS(30000), &ch)) < 0) {
		fprintf(stderr, "agent: accept: %s\n", wave_strerror(r));
		return 1;
	}
	memset(&out, 0, sizeof(out));
	for (;;) {
		r = wave_chan_recv_burst(ch, in, 64);
		if (r < 0)
			break;
		for (int i = 0; i < r; i++) {
			switch (in[i].type) {
			case T_PING:
				out.type = T_PING;
				send1(ch, &out);
				break;
			case T_DATA:
				data++;
				break;
			case T_DONE:
				out.type = T_DONE;
				out.payload.u64[0] = data;
				data = 0;
				send1(ch, &out);
				break;
			case T_QUIT:
				wave_chan_close(ch);
				wave_chan_listener_close(l);
				return 0;
			}
		}
	}
	fprintf(stderr, "agent: %s\n", wave_strerror(r));
	return 1;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

struct lat {
	double p50, p99, mean; /* one way, microseconds */
};

static int pingpong(struct wave_chan *ch, unsigned warm, unsigned iters, struct lat *out)
{
	uint64_t *rtt = calloc(iters, sizeof(*rtt)), sum = 0;
	struct wave_msg m, in;

	if (!rtt)
		return -ENOMEM;
	memset(&m, 0, sizeof(m));
	m.type = T_PING;
	for (unsigned i = 0; i < warm + iters; i++) {
		uint64_t t0 = now_ns();
		if (send1(ch, &m) < 0 || recv1(ch, &in) < 0 || in.type != T_PING) {
			free(rtt);
			return -EIO;
		}
		if (i >= warm)
			rtt[i - warm] = now_ns() - t0;
	}
	qsort(rtt, iters, sizeof(*rtt), cmp_u64);
	for (unsigned i = 0; i < iters; i++)
		sum += rtt[i];
	out->p50 = rtt[iters / 2] / 2000.0;
	out->p99 = rtt[(size_t)iters * 99 / 100] / 2000.0;
	out->mean = (double)sum / iters / 2000.0;
	free(rtt);
	return 0;
}

/* Messages per second, streaming @n messages in bursts of @batch. */
static double stream(struct wave_chan *ch, unsigned batch, uint64_t n)
{
	struct wave_msg m[32], in;
	uint64_t sent = 0, t0;

	memset(m, 0, sizeof(m));
	for (unsigned i = 0; i < 32; i++)
		m[i].type = T_DATA;
	t0 = now_ns();
	while (sent < n) {
		unsigned k = n - sent < batch ? (unsigned)(n - sent) : batch;
		int r = wave_chan_send_burst(ch, m, k);
		if (r < 0)
			return -1;
		sent += (unsigned)r;
	}
	m[0].type = T_DONE;
	if (send1(ch, m) < 0 || recv1(ch, &in) < 0 || in.type != T_DONE || in.payload.u64[0] != n)
		return -1;
	return n / ((now_ns() - t0) / 1e9);
}

/* Runs fi_pingpong server (CPU 1) and client (CPU 0); parses the client's
 * last line. Returns 0 with one-way usec and Mxfers/sec. */
static int fi_pingpong(const char *prov, unsigned iters, double *usec, double *mxfers)
{
	char port[16], it[16], line[256], last[256] = "";
	int pfd[2], st;
	pid_t srv, cli;
	FILE *f;

	snprintf(port, sizeof(port), "%d", free_port());
	snprintf(it, sizeof(it), "%u", iters);
	srv = fork();
	if (srv == 0) {
		pin(AGENT_CPU);
		int dn = open("/dev/null", O_WRONLY);
		dup2(dn, 1);
		dup2(dn, 2);
		execlp("fi_pingpong", "fi_pingpong", "-p", prov, "-e", "rdm", "-S", "64", "-I", it,
		       "-B", port, (char *)NULL);
		_exit(127);
	}
	/* Give the server its control socket; the client retries below. */
	for (int attempt = 0; attempt < 20; attempt++) {
		usleep(200000);
		if (pipe(pfd) != 0)
			return -1;
		cli = fork();
		if (cli == 0) {
			pin(HOST_CPU);
			dup2(pfd[1], 1);
			close(pfd[0]);
			execlp("fi_pingpong", "fi_pingpong", "-p", prov, "-e", "rdm", "-S", "64",
			       "-I", it, "-P", port, "127.0.0.1", (char *)NULL);
			_exit(127);
		}
		close(pfd[1]);
		f = fdopen(pfd[0], "r");
		while (f && fgets(line, sizeof(line), f))
			if (strncmp(line, "64 ", 3) == 0)
				snprintf(last, sizeof(last), "%s", line);
		if (f)
			fclose(f);
		waitpid(cli, &st, 0);
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && last[0])
			break;
		if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
			break;
	}
	kill(srv, SIGTERM);
	waitpid(srv, NULL, 0);
	if (!last[0])
		return -1;
	/* bytes #sent #ack total time MB/sec usec/xfer Mxfers/sec */
	char b[8][32];
	if (sscanf(last, "%31s %31s %31s %31s %31s %31s %31s %31s", b[0], b[1], b[2], b[3], b[4],
		   b[5], b[6], b[7]) != 8)
		return -1;
	*usec = atof(b[6]);
	*mxfers = atof(b[7]);
	/* MB/sec has more digits for the one-way time: 64 bytes / MB/s. */
	if (atof(b[5]) > 0)
		*usec = 64.0 / atof(b[5]);
	return 0;
}

struct result {
	struct lat lat;  /* libwave one-way latency */
	double rate[3];  /* libwave messages/s at batch 1, 8, 32 */
	double pp_us;    /* fi_pingpong one-way average, us */
	double pp_mx;    /* fi_pingpong Mxfers/sec */
	bool have_pp;
};

static const unsigned batches[] = { 1, 8, 32 };

/* One run: libwave's channel, then fi_pingpong on the same provider, CPUs
 * and message size. */
static int measure(const char *name, const char *prov, const char *uri, unsigned iters,
		   uint64_t msgs, struct result *res)
{
	struct wave_chan_opts o;
	struct wave_chan *ch;
	struct wave_msg q;
	char ready[16];
	int pfd[2], r, st;
	pid_t pid;

	memset(res, 0, sizeof(*res));
	wave_chan_opts_init(&o);
	o.disconnect_timeout_ms = 10000;
	if (pipe(pfd) != 0)
		return 1;
	pid = fork();
	if (pid == 0) {
		dup2(pfd[1], 1);
		close(pfd[0]);
		_exit(agent(uri, &o));
	}
	close(pfd[1]);
	if (read(pfd[0], ready, 6) != 6) {
		fprintf(stderr, "%s: agent did not start\n", name);
		waitpid(pid, NULL, 0);
		return 1;
	}
	pin(HOST_CPU);
	if ((r = wave_chan_open(uri, &o, &ch)) < 0) {
		fprintf(stderr, "%s: open: %s\n", name, wave_strerror(r));
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return 1;
	}
	if (pingpong(ch, iters / 10 + 100, iters, &res->lat) < 0) {
		fprintf(stderr, "%s: ping-pong failed\n", name);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return 1;
	}
	for (int i = 0; i < 3; i++)
		if ((res->rate[i] = stream(ch, batches[i], msgs)) < 0) {
			fprintf(stderr, "%s: stream failed\n", name);
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			return 1;
		}
	memset(&q, 0, sizeof(q));
	q.type = T_QUIT;
	send1(ch, &q);
	wave_chan_close(ch);
	waitpid(pid, &st, 0);
	close(pfd[0]);
	res->have_pp = fi_pingpong(prov, iters, &res->pp_us, &res->pp_mx) == 0;
	return 0;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_dbl);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#define MAX_RUNS 32

static int run(const char *name, const char *prov, unsigned iters, uint64_t msgs, int runs)
{
	struct result res[MAX_RUNS];
	double col[MAX_RUNS], p50, p99, mean, rate[3], pp_us = 0, pp_mx = 0;
	int n = 0, npp = 0;
	char uri[128];

	printf("\n%s  (host CPU %d, agent CPU %d, 64-byte messages, %u ping-pongs and %llu "
	       "streamed messages per batch size per run)\n",
	       name, HOST_CPU, AGENT_CPU, iters, (unsigned long long)msgs);
	printf("  %-4s %8s %8s %8s %10s | %9s %9s %9s %11s\n", "run", "p50 us", "p99 us",
	       "mean us", "fi_pp us", "b1 Mmsg/s", "b8", "b32", "fi_pp Mx/s");
	for (int k = 0; k < runs; k++) {
		if (strcmp(prov, "shm") == 0)
			snprintf(uri, sizeof(uri), "fabric://shm/bench%d_%d", (int)getpid(), k);
		else
			snprintf(uri, sizeof(uri), "fabric://tcp;ofi_rxm/127.0.0.1:%d", free_port());
		if (measure(name, prov, uri, iters, msgs, &res[n]) != 0)
			return 1;
		struct result *r = &res[n++];
		printf("  %-4d %8.2f %8.2f %8.2f %10.2f | %9.3f %9.3f %9.3f %11.3f\n", k + 1,
		       r->lat.p50, r->lat.p99, r->lat.mean, r->have_pp ? r->pp_us : 0.0,
		       r->rate[0] / 1e6, r->rate[1] / 1e6, r->rate[2] / 1e6,
		       r->have_pp ? r->pp_mx : 0.0);
		fflush(stdout);
	}
#define MED(expr, out)                          \
	do {                                    \
		for (int k = 0; k < n; k++)     \
			col[k] = res[k].expr;   \
		out = median(col, n);           \
	} while (0)
	MED(lat.p50, p50);
	MED(lat.p99, p99);
	MED(lat.mean, mean);
	for (int b = 0; b < 3; b++)
		MED(rate[b], rate[b]);
	for (int k = 0; k < n; k++)
		if (res[k].have_pp)
			col[npp++] = res[k].pp_us;
	if (npp) {
		pp_us = median(col, npp);
		npp = 0;
		for (int k = 0; k < n; k++)
			if (res[k].have_pp)
				col[npp++] = res[k].pp_mx;
		pp_mx = median(col, npp);
	}
	printf("  %-4s %8.2f %8.2f %8.2f %10.2f | %9.3f %9.3f %9.3f %11.3f\n", "med", p50, p99,
	       mean, pp_us, rate[0] / 1e6, rate[1] / 1e6, rate[2] / 1e6, pp_mx);
	if (!npp) {
		printf("  fi_pingpong: could not run; no ratios\n");
		return 0;
	}
	/* fi_pingpong reports an average only: the like-for-like latency
	 * ratio is mean / mean; p50 / mean is shown too. */
	printf("  ratios (medians): latency mean/fi_pingpong %.2f (p50/fi_pingpong %.2f); "
	       "batch-32 rate/fi_pingpong rate %.1f\n",
	       mean / pp_us, p50 / pp_us, rate[2] / 1e6 / pp_mx);
	printf("  targets: latency <= 1.15x fi_pingpong: %s; batch-32 >= fi_pingpong rate: %s\n",
	       mean / pp_us <= 1.15 ? "met" : "MISSED", rate[2] / 1e6 >= pp_mx ? "met" : "MISSED");
	return 0;
}

int main(int argc, char **argv)
{
	unsigned iters = 20000;
	uint64_t msgs = 1000000;
	const char *only = NULL;
	int ret = 0, runs = 1;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0) {
			iters = 2000;
			msgs = 50000;
		} else if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc) {
			iters = (unsigned)atoi(argv[++i]);
		} else if (strcmp(argv[i], "--msgs") == 0 && i + 1 < argc) {
			msgs = strtoull(argv[++i], NULL, 10);
		} else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
			runs = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--prov") == 0 && i + 1 < argc) {
			only = argv[++i];
		} else {
			fprintf(stderr,
				"usage: %s [--quick] [--iters N] [--msgs N] [--runs N] [--prov tcp|shm]\n",
				argv[0]);
			return 2;
		}
	}
	if (iters < 100)
		iters = 100;
	if (runs < 1 || runs > MAX_RUNS) {
		fprintf(stderr, "--runs: 1 to %d\n", MAX_RUNS);
		return 2;
	}
	if (!only || strcmp(only, "tcp") == 0)
		ret |= run("tcp;ofi_rxm over 127.0.0.1", "tcp;ofi_rxm", iters, msgs, runs);
	if (!only || strcmp(only, "shm") == 0)
		ret |= run("shm provider", "shm", iters, msgs, runs);
	return ret;
}
