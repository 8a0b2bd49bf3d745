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
 *                     [--max-offcpu P] [--json]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
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

#include "bench_offcpu.h"
#include "bench_stat.h"

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

/* A peer alive but silent this long (a provider that stopped making
 * progress) fails the run instead of holding it for ever. */
#define STUCK_NS 30000000000ull

/* Called on each empty poll: true once a wait that began at its first
 * call (*@give_up 0) has lasted STUCK_NS. The clock is read once in 4096
 * polls, so that it adds nothing measurable to a short wait. */
static bool stuck(uint64_t *give_up, unsigned *polls)
{
	if ((++*polls & 4095) != 1)
		return false;
	if (!*give_up)
		*give_up = now_ns() + STUCK_NS;
	return now_ns() > *give_up;
}

/* Busy-polls one message. */
static int recv1(struct wave_chan *ch, struct wave_msg *m)
{
	uint64_t give_up = 0;
	unsigned polls = 0;
	int r;

	while ((r = wave_chan_recv_burst(ch, m, 1)) == 0)
		if (stuck(&give_up, &polls))
			return -ETIMEDOUT;
	return r;
}

static int send1(struct wave_chan *ch, const struct wave_msg *m)
{
	uint64_t give_up = 0;
	unsigned polls = 0;
	int r;

	while ((r = wave_chan_send_burst(ch, m, 1)) == 0)
		if (stuck(&give_up, &polls))
			return -ETIMEDOUT;
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
	unsigned polls = 0;

	memset(m, 0, sizeof(m));
	for (unsigned i = 0; i < 32; i++)
		m[i].type = T_DATA;
	t0 = now_ns();
	for (uint64_t give_up = 0; sent < n;) {
		unsigned k = n - sent < batch ? (unsigned)(n - sent) : batch;
		int r = wave_chan_send_burst(ch, m, k);

		if (r < 0 || (r == 0 && stuck(&give_up, &polls)))
			return -1;
		if (r > 0)
			give_up = polls = 0;
		sent += (unsigned)r;
	}
	m[0].type = T_DONE;
	if (send1(ch, m) < 0 || recv1(ch, &in) < 0 || in.type != T_DONE || in.payload.u64[0] != n)
		return -1;
	return n / ((now_ns() - t0) / 1e9);
}

/* fi_pingpong's client output, read from @fd until it closes: the last
 * line of results ("64 ...") into @last. A client that has not finished
 * after @timeout_ms is killed, with nothing read: -ETIMEDOUT. (A run of
 * this benchmark once hung in an ASan build until CI's 300 s; where is
 * not known, so every wait here is bounded.) */
static int client_lines(int fd, pid_t cli, char last[static 256], int timeout_ms)
{
	char buf[4096];
	size_t len = 0;
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000u;

	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		int64_t left = (int64_t)(deadline - now_ns());
		ssize_t n;
		char *nl;

		if (left <= 0 || poll(&p, 1, (int)(left / 1000000) + 1) == 0) {
			kill(cli, SIGKILL);
			last[0] = '\0';
			return -ETIMEDOUT;
		}
		n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		len += (size_t)n;
		buf[len] = '\0';
		while ((nl = strchr(buf, '\n'))) {
			*nl = '\0';
			if (strncmp(buf, "64 ", 3) == 0)
				snprintf(last, 256, "%.255s", buf);
			len -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, len + 1);
		}
		if (len == sizeof(buf) - 1)
			len = 0; /* a line longer than the buffer: not a result */
	}
}

/* Runs fi_pingpong server (CPU 1) and client (CPU 0); parses the client's
 * last line. Returns 0 with one-way usec, Mxfers/sec and the run's off-CPU
 * share (bench_offcpu.h). */
static int fi_pingpong(const char *prov, unsigned iters, double *usec, double *mxfers,
		       double *offcpu)
{
	char port[16], it[16], last[256] = "";
	const int cpus[] = { HOST_CPU, AGENT_CPU };
	struct bench_watch w;
	int pfd[2], st, ret;
	pid_t srv, cli;

	snprintf(port, sizeof(port), "%d", free_port());
	snprintf(it, sizeof(it), "%u", iters);
	srv = fork();
	if (srv < 0)
		return -1;
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
			break;
		cli = fork();
		if (cli < 0) {
			close(pfd[0]);
			close(pfd[1]);
			break;
		}
		if (cli == 0) {
			pin(HOST_CPU);
			dup2(pfd[1], 1);
			close(pfd[0]);
			execlp("fi_pingpong", "fi_pingpong", "-p", prov, "-e", "rdm", "-S", "64",
			       "-I", it, "-P", port, "127.0.0.1", (char *)NULL);
			_exit(127);
		}
		bench_watch_begin(&w, (const pid_t[]){ srv, cli }, 2, cpus, 2);
		close(pfd[1]);
		ret = client_lines(pfd[0], cli, last, 60000);
		close(pfd[0]);
		if (ret == 0 && bench_wait_unreaped(cli, 60000) == 0)
			*offcpu = bench_watch_end(&w);
		else
			kill(cli, SIGKILL);
		waitpid(cli, &st, 0);
		if (ret < 0) {
			fprintf(stderr, "fi_pingpong -p %s: no progress in 60 s: killed, no figure\n",
				prov);
			break; /* its server is likely stuck too */
		}
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && last[0])
			break;
		last[0] = '\0';
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
	double offcpu;   /* the larger off-CPU share of the libwave and fi_pingpong runs */
};

static const unsigned batches[] = { 1, 8, 32 };

static void stop_agent(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* One run: libwave's channel, then fi_pingpong on the same provider, CPUs
 * and message size. */
static int measure(const char *name, const char *prov, const char *uri, unsigned iters,
		   uint64_t msgs, struct result *res)
{
	const int cpus[] = { HOST_CPU, AGENT_CPU };
	struct wave_chan_opts o;
	struct bench_watch w;
	struct wave_chan *ch;
	struct wave_msg q;
	char ready[16];
	double pp_off = 0;
	int pfd[2], r, st;
	pid_t pid;

	memset(res, 0, sizeof(*res));
	wave_chan_opts_init(&o);
	o.disconnect_timeout_ms = 10000;
	if (pipe(pfd) != 0)
		return 1;
	pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		dup2(pfd[1], 1);
		close(pfd[0]);
		_exit(agent(uri, &o));
	}
	close(pfd[1]);
	/* Every wait on the agent is bounded: a run that hangs fails, it does
	 * not hold the benchmark (or CI) for ever. */
	if (poll(&(struct pollfd){ pfd[0], POLLIN, 0 }, 1, 60000) != 1 ||
	    read(pfd[0], ready, 6) != 6) {
		fprintf(stderr, "%s: agent did not start\n", name);
		close(pfd[0]);
		stop_agent(pid);
		return 1;
	}
	close(pfd[0]);
	pin(HOST_CPU);
	if ((r = wave_chan_open(uri, &o, &ch)) < 0) {
		fprintf(stderr, "%s: open: %s\n", name, wave_strerror(r));
		stop_agent(pid);
		return 1;
	}
	bench_watch_begin(&w, (const pid_t[]){ pid, 0 }, 2, cpus, 2);
	if (pingpong(ch, iters / 10 + 100, iters, &res->lat) < 0) {
		fprintf(stderr, "%s: ping-pong failed\n", name);
		stop_agent(pid);
		return 1;
	}
	for (int i = 0; i < 3; i++)
		if ((res->rate[i] = stream(ch, batches[i], msgs)) < 0) {
			fprintf(stderr, "%s: stream failed\n", name);
			stop_agent(pid);
			return 1;
		}
	res->offcpu = bench_watch_end(&w);
	memset(&q, 0, sizeof(q));
	q.type = T_QUIT;
	send1(ch, &q);
	wave_chan_close(ch);
	if (bench_wait_unreaped(pid, 30000) != 0) {
		fprintf(stderr, "%s: the agent did not quit in 30 s: killed\n", name);
		kill(pid, SIGKILL);
	}
	waitpid(pid, &st, 0);
	res->have_pp = fi_pingpong(prov, iters, &res->pp_us, &res->pp_mx, &pp_off) == 0;
	if (pp_off > res->offcpu)
		res->offcpu = pp_off;
	return 0;
}

#define MAX_RUNS 32

struct opts {
	unsigned iters;
	uint64_t msgs;
	int runs;
	double max_offcpu;
	bool json;
};

/* The medians over the runs @keep keeps. */
struct medians {
	double p50, p99, mean, rate[3], pp_us, pp_mx;
	int n, npp;
};

static struct medians medians(const struct result *res, int n, const bool *keep)
{
	struct medians m = { 0 };
	double col[MAX_RUNS];

#define MED(expr, cond, out, count)                          \
	do {                                                 \
		int k_ = 0;                                  \
		for (int k = 0; k < n; k++)                  \
			if (keep[k] && (cond))               \
				col[k_++] = res[k].expr;     \
		out = k_ ? bench_median(col, (unsigned)k_) : 0; \
		count = k_;                                  \
	} while (0)
	MED(lat.p50, true, m.p50, m.n);
	MED(lat.p99, true, m.p99, m.n);
	MED(lat.mean, true, m.mean, m.n);
	for (int b = 0; b < 3; b++)
		MED(rate[b], true, m.rate[b], m.n);
	MED(pp_us, res[k].have_pp, m.pp_us, m.npp);
	MED(pp_mx, res[k].have_pp, m.pp_mx, m.npp);
#undef MED
	return m;
}

static void print_run(const struct opts *o, const char *prov, int k, const struct result *r)
{
	if (o->json) {
		printf("{\"provider\":\"%s\",\"run\":%d,\"p50_us\":%.3f,\"p99_us\":%.3f,"
		       "\"mean_us\":%.3f,\"b1_msgs_per_s\":%.0f,\"b8_msgs_per_s\":%.0f,"
		       "\"b32_msgs_per_s\":%.0f,\"fi_pingpong_us\":%.3f,\"fi_pingpong_mxfers\":%.3f,"
		       "\"fi_pingpong\":%s,\"offcpu\":%.3f}\n",
		       prov, k + 1, r->lat.p50, r->lat.p99, r->lat.mean, r->rate[0], r->rate[1],
		       r->rate[2], r->pp_us, r->pp_mx, r->have_pp ? "true" : "false", r->offcpu);
		return;
	}
	printf("  %-4d %8.2f %8.2f %8.2f %10.2f | %9.3f %9.3f %9.3f %11.3f %6.1f\n", k + 1,
	       r->lat.p50, r->lat.p99, r->lat.mean, r->have_pp ? r->pp_us : 0.0, r->rate[0] / 1e6,
	       r->rate[1] / 1e6, r->rate[2] / 1e6, r->have_pp ? r->pp_mx : 0.0, 100 * r->offcpu);
}

static void print_summary(const struct opts *o, const char *prov, const struct medians *m,
			  int runs, unsigned dropped, bool conclusive)
{
	double lat_ratio = m->npp ? m->mean / m->pp_us : 0;
	double rate_ratio = m->npp && m->pp_mx > 0 ? m->rate[2] / 1e6 / m->pp_mx : 0;
	const char *lat_v = !conclusive ? "not conclusive" : lat_ratio <= 1.15 ? "met" : "MISSED";
	const char *rate_v = !conclusive ? "not conclusive" : rate_ratio >= 1 ? "met" : "MISSED";

	if (o->json) {
		printf("{\"provider\":\"%s\",\"summary\":\"median\",\"runs\":%d,\"runs_kept\":%d,"
		       "\"conclusive\":%s,\"p50_us\":%.3f,\"p99_us\":%.3f,\"mean_us\":%.3f,"
		       "\"b1_msgs_per_s\":%.0f,\"b8_msgs_per_s\":%.0f,\"b32_msgs_per_s\":%.0f,"
		       "\"fi_pingpong_us\":%.3f,\"fi_pingpong_mxfers\":%.3f",
		       prov, runs, m->n, conclusive ? "true" : "false", m->p50, m->p99, m->mean,
		       m->rate[0], m->rate[1], m->rate[2], m->pp_us, m->pp_mx);
		if (m->npp)
			printf(",\"mean_over_fi_pingpong\":%.3f,\"b32_over_fi_pingpong\":%.3f",
			       lat_ratio, rate_ratio);
		printf("}\n");
		return;
	}
	printf("  %-4s %8.2f %8.2f %8.2f %10.2f | %9.3f %9.3f %9.3f %11.3f\n", "med", m->p50, m->p99,
	       m->mean, m->pp_us, m->rate[0] / 1e6, m->rate[1] / 1e6, m->rate[2] / 1e6, m->pp_mx);
	if (conclusive)
		printf("  medians of %d of %d runs: %u lost more than %.0f%% of their time off the CPU\n",
		       m->n, runs, dropped, 100 * o->max_offcpu);
	else
		printf("  every run lost more than %.0f%% of its time off the CPU: the machine was "
		       "disturbed, figures NOT CONCLUSIVE\n", 100 * o->max_offcpu);
	if (!m->npp) {
		printf("  fi_pingpong: could not run; no ratios\n");
		return;
	}
	/* fi_pingpong reports an average only: the like-for-like latency
	 * ratio is mean / mean; p50 / mean is shown too. */
	printf("  ratios (medians): latency mean/fi_pingpong %.2f (p50/fi_pingpong %.2f); "
	       "batch-32 rate/fi_pingpong rate %.1f\n",
	       lat_ratio, m->p50 / m->pp_us, rate_ratio);
	printf("  targets: latency <= 1.15x fi_pingpong: %s; batch-32 >= fi_pingpong rate: %s\n",
	       lat_v, rate_v);
}

static int run(const struct opts *o, const char *name, const char *prov)
{
	struct result res[MAX_RUNS];
	double share[MAX_RUNS];
	bool keep[MAX_RUNS];
	unsigned dropped;
	char uri[128];

	if (!o->json) {
		printf("\n%s  (host CPU %d, agent CPU %d, 64-byte messages, %u ping-pongs and %llu "
		       "streamed messages per batch size per run)\n",
		       name, HOST_CPU, AGENT_CPU, o->iters, (unsigned long long)o->msgs);
		printf("  %-4s %8s %8s %8s %10s | %9s %9s %9s %11s %6s\n", "run", "p50 us", "p99 us",
		       "mean us", "fi_pp us", "b1 Mmsg/s", "b8", "b32", "fi_pp Mx/s", "off %");
	}
	for (int k = 0; k < o->runs; k++) {
		if (strcmp(prov, "shm") == 0)
			snprintf(uri, sizeof(uri), "fabric://shm/bench%d_%d", (int)getpid(), k);
		else
			snprintf(uri, sizeof(uri), "fabric://tcp;ofi_rxm/127.0.0.1:%d", free_port());
		if (measure(name, prov, uri, o->iters, o->msgs, &res[k]) != 0)
			return 1;
		share[k] = res[k].offcpu;
		print_run(o, prov, k, &res[k]);
		fflush(stdout);
	}
	bool conclusive = bench_offcpu_select(share, (unsigned)o->runs, o->max_offcpu, keep,
					      &dropped);
	struct medians m = medians(res, o->runs, keep);
	print_summary(o, prov, &m, o->runs, dropped, conclusive);
	return 0;
}

static void usage(FILE *f, const char *argv0)
{
	fprintf(f,
		"usage: %s [--quick] [--iters N] [--msgs N] [--runs N] [--prov tcp|shm]\n"
		"          [--max-offcpu P] [--json]\n"
		"  --max-offcpu P  leave out of the medians every run that lost more than P%%\n"
		"                  of its time to other tasks or the hypervisor (default 5)\n"
		"  --json          one JSON object per run and per provider's medians\n",
		argv0);
}

static bool parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

int main(int argc, char **argv)
{
	struct opts o = { .iters = 20000, .msgs = 1000000, .runs = 1,
			  .max_offcpu = BENCH_OFFCPU_MAX_DEFAULT };
	const char *only = NULL;
	uint64_t v;
	int ret = 0;

	for (int i = 1; i < argc; i++) {
		bool ok = true, has = i + 1 < argc;
		if (strcmp(argv[i], "--quick") == 0) {
			o.iters = 2000;
			o.msgs = 50000;
		} else if (strcmp(argv[i], "--json") == 0) {
			o.json = true;
		} else if (strcmp(argv[i], "--iters") == 0 && has) {
			ok = parse_u64(argv[++i], 100, 100000000, &v);
			o.iters = (unsigned)v;
		} else if (strcmp(argv[i], "--msgs") == 0 && has) {
			ok = parse_u64(argv[++i], 1, UINT64_MAX / 2, &o.msgs);
		} else if (strcmp(argv[i], "--runs") == 0 && has) {
			ok = parse_u64(argv[++i], 1, MAX_RUNS, &v);
			o.runs = (int)v;
		} else if (strcmp(argv[i], "--max-offcpu") == 0 && has) {
			ok = bench_offcpu_parse(argv[++i], &o.max_offcpu) == 0;
		} else if (strcmp(argv[i], "--prov") == 0 && has &&
			   (strcmp(argv[i + 1], "tcp") == 0 || strcmp(argv[i + 1], "shm") == 0)) {
			only = argv[++i];
		} else if (strcmp(argv[i], "--help") == 0) {
			usage(stdout, argv[0]);
			return 0;
		} else {
			ok = false;
		}
		if (!ok) {
			fprintf(stderr, "%s: bad argument: %s\n", argv[0], argv[i]);
			usage(stderr, argv[0]);
			return 2;
		}
	}
	if (!only || strcmp(only, "tcp") == 0)
		ret |= run(&o, "tcp;ofi_rxm over 127.0.0.1", "tcp;ofi_rxm");
	if (!only || strcmp(only, "shm") == 0)
		ret |= run(&o, "shm provider", "shm");
	return ret;
}
