/* SPDX-License-Identifier: MIT */
/*
 * libfabric's shared-memory provider, measured by the real tool:
 *
 *   server (agent CPU):  fi_pingpong -p shm -e rdm -S 64 -I N -B PORT
 *   client (host CPU):   fi_pingpong -p shm -e rdm -S 64 -I N -P PORT 127.0.0.1
 *
 * (-B/-P choose the TCP port of the tool's out-of-band control connection;
 * a free one is picked so that two benchmarks can run at once.)
 *
 * What the numbers mean, from the tool's source (util/pingpong.c) and its
 * man page: the client times N iterations of "send one message, receive
 * one", and prints usec/xfer = elapsed / (N * 2), "the average time for
 * transferring a message outbound (ping or pong)". So usec/xfer is already
 * one way (round trip / 2), and it is an average: the tool reports no
 * percentiles. Its MB/sec column is bytes / elapsed microseconds with
 * bytes = N * 2 * 64, so 64 / MB/sec is the same one-way time in
 * microseconds, with more significant digits whenever a transfer takes less
 * than 8 us; parse_output() uses it then, and checks it against usec/xfer.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define TOOL "fi_pingpong"
#define MSG_BYTES 64
#define START_TIMEOUT_MS 5000

/* Is the tool on $PATH? */
static bool tool_found(void)
{
	const char *path = getenv("PATH");
	char buf[4096];

	if (!path)
		return false;
	while (*path) {
		size_t len = strcspn(path, ":");
		if (len > 0 && len + sizeof(TOOL) + 1 < sizeof(buf)) {
			snprintf(buf, sizeof(buf), "%.*s/%s", (int)len, path, TOOL);
			if (access(buf, X_OK) == 0)
				return true;
		}
		path += len + (path[len] == ':');
	}
	return false;
}

/* A TCP port nobody listens on right now (the kernel picks it). */
static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	else
		port = -errno;
	close(fd);
	return port;
}

/* True once something listens on TCP @port: /proc/net/tcp lists it with
 * state 0A. (Connecting to check would use up the server's one accept.) */
static bool port_listening(int port)
{
	FILE *f = fopen("/proc/net/tcp", "r");
	char line[512];
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned p, state;
		if (sscanf(line, " %*d: %*x:%x %*x:%*x %x", &p, &state) == 2)
			found = (int)p == port && state == 0x0A;
	}
	fclose(f);
	return found;
}

/* Forks @argv pinned to @cpu, its stdout and stderr going to @out_fd. */
static int spawn_tool(int cpu, char *const argv[], int out_fd, pid_t *pid)
{
	pid_t p;

	fflush(stdout);
	fflush(stderr);
	p = fork();
	if (p < 0)
		return -errno;
	if (p > 0) {
		*pid = p;
		return 0;
	}
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (bench_pin(cpu) < 0 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0)
		_exit(126);
	execvp(argv[0], argv);
	_exit(127);
}

/* Reads everything from @fd into @buf until EOF or @timeout_ms. */
static int read_all(int fd, char *buf, size_t cap, int timeout_ms)
{
	uint64_t deadline = bench_mono_ns() + (uint64_t)timeout_ms * 1000000u;
	size_t len = 0;
	int ret = 0;

	while (len < cap - 1) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		uint64_t now = bench_mono_ns();
		if (now >= deadline) {
			ret = -ETIMEDOUT;
			break;
		}
		if (poll(&p, 1, (int)((deadline - now) / 1000000u) + 1) <= 0)
			continue; /* timed out (checked above) or interrupted */
		ssize_t r = read(fd, buf + len, cap - 1 - len);
		if (r == 0)
			break;
		if (r < 0 && errno != EINTR && errno != EAGAIN) {
			ret = -errno;
			break;
		}
		len += r > 0 ? (size_t)r : 0;
	}
	buf[len] = '\0';
	return ret;
}

/* Finds the result line under the header; returns the one-way mean in ns.
 * Both columns are printed with two decimals: take the one with more
 * significant digits (MB/sec when transfers are fast, usec/xfer when slow),
 * and check that the two agree. */
static int parse_output(const char *out, double *one_way_ns)
{
	const char *h = strstr(out, "usec/xfer");
	const char *line = h ? strchr(h, '\n') : NULL;
	double mbps, usec, from_mbps;
	unsigned bytes;

	if (!line || sscanf(line + 1, "%u %*s %*s %*s %*s %lf %lf", &bytes, &mbps, &usec) != 3)
		return -EBADMSG;
	if (bytes != MSG_BYTES || (mbps <= 0 && usec <= 0))
		return -EBADMSG;
	from_mbps = mbps > 0 ? MSG_BYTES / mbps : 0;
	*one_way_ns = (mbps >= usec ? from_mbps : usec) * 1000.0;
	/* Each column is off by up to 0.005 from rounding; MB/sec's share of
	 * that grows as 64/MB/sec grows. Allow both, and 2% besides. */
	if (mbps > 0 && usec > 0 &&
	    fabs(from_mbps - usec) > from_mbps * 0.005 / mbps + 0.005 + 0.02 * usec)
		return -EBADMSG;
	return 0;
}

struct tool_run {
	const struct bench_cfg *cfg;
	char iters[16], port[16];
	char out[8192];
};

/* Starts the server and waits until its control port listens. */
static int start_server(struct tool_run *t, pid_t *server)
{
	char *argv[] = { TOOL, "-p", "shm", "-e", "rdm", "-S", "64", "-I", t->iters,
			 "-B", t->port, NULL };
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC), ret, st;
	uint64_t deadline = bench_mono_ns() + START_TIMEOUT_MS * 1000000ull;

	if (null < 0)
		return -errno;
	ret = spawn_tool(t->cfg->agent_cpu, argv, null, server);
	close(null);
	while (ret == 0 && !port_listening(atoi(t->port))) {
		if (waitpid(*server, &st, WNOHANG) == *server) {
			*server = -1;
			return -ECHILD; /* it died before listening */
		}
		if (bench_mono_ns() > deadline)
			ret = -ETIMEDOUT;
		usleep(1000);
	}
	return ret;
}

/* One run of the pair. Returns 0, the one-way mean and the run's off-CPU
 * share, or an error. */
static int tool_once(struct tool_run *t, double *one_way_ns, double *offcpu)
{
	char *argv[] = { TOOL, "-p", "shm", "-e", "rdm", "-S", "64", "-I", t->iters,
			 "-P", t->port, "127.0.0.1", NULL };
	int timeout = bench_run_timeout_ms(t->cfg);
	pid_t server = -1, client = -1;
	int pfd[2], port, ret, st;

	if ((port = free_port()) < 0)
		return port;
	snprintf(t->port, sizeof(t->port), "%d", port);
	t->out[0] = '\0';
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	ret = start_server(t, &server);
	if (ret == 0)
		ret = spawn_tool(t->cfg->host_cpu, argv, pfd[1], &client);
	close(pfd[1]);
	struct bench_watch w;
	bench_watch_run(&w, t->cfg, server, client);
	if (ret == 0)
		ret = read_all(pfd[0], t->out, sizeof(t->out), timeout);
	close(pfd[0]);
	unsigned n_off = 0;
	if (client > 0 && (st = bench_wait_run(client, ret == 0 ? timeout : 1, &w, offcpu,
						&n_off)) != 0 && ret == 0)
		ret = st < 0 ? st : -(1000 + st);
	if (server > 0 && (st = bench_wait(server, ret == 0 ? START_TIMEOUT_MS : 1)) != 0 && ret == 0)
		ret = st < 0 ? st : -(1000 + st);
	if (ret == 0)
		ret = parse_output(t->out, one_way_ns);
	return ret;
}

static void describe_failure(struct bench_result *res, int err, const char *out)
{
	const char *nl = strchr(out, '\n');
	int len = nl ? (int)(nl - out) : (int)strlen(out);

	if (err <= -1000)
		snprintf(res->note, sizeof(res->note), "not available: " TOOL " exited with %d: %.*s",
			 -err - 1000, len > 80 ? 80 : len, out);
	else
		snprintf(res->note, sizeof(res->note), "not available: " TOOL " failed: %s",
			 err == -EBADMSG ? "unexpected output" : strerror(-err));
}

int bench_fabric_run(const struct bench_cfg *cfg, struct bench_result *res)
{
	struct tool_run *t;
	double ns = 0, off = 0;
	int ret;

	res->have_pct = res->have_tput = false;
	if (!tool_found()) {
		snprintf(res->note, sizeof(res->note),
			 "not available: " TOOL " is not installed (Debian package libfabric-bin)");
		return -ENOENT;
	}
	if (res->n_lat >= BENCH_MAX_REPS || !(t = calloc(1, sizeof(*t))))
		return -ENOMEM;
	t->cfg = cfg;
	snprintf(t->iters, sizeof(t->iters), "%u", cfg->iters);
	ret = tool_once(t, &ns, &off);
	if (ret == 0) {
		res->lat[res->n_lat++] = (struct bench_lat){ 0, 0, 0, 0, ns };
		res->offcpu[res->n_off++] = off;
		snprintf(res->note, sizeof(res->note),
			 "mean only: usec/xfer = elapsed/(2 x iters), i.e. round trip / 2");
	} else {
		describe_failure(res, ret, t->out);
	}
	free(t);
	return ret;
}
