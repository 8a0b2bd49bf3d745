/* SPDX-License-Identifier: MIT */
/*
 * libwave over shm://: the agent process listens on a socket in a fresh
 * temporary directory, the host process opens the channel, and both run the
 * shared loops with wave_chan_send_burst() / wave_chan_recv_burst(),
 * busy-polling (no wave_chan_wait(): the latency test must not sleep).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

#define SETUP_TIMEOUT_MS 10000

struct wave_side {
	const struct bench_cfg *cfg;
	struct bench_result *res;
	char uri[128];
	int ready_fd; /* agent: written once listening */
};

static int wave_send(void *ctx, const struct wave_msg *msgs, unsigned n)
{
	return wave_chan_send_burst(ctx, msgs, n);
}

static int wave_recv(void *ctx, struct wave_msg *msgs, unsigned max)
{
	return wave_chan_recv_burst(ctx, msgs, max);
}

static int fail(const char *what, int err)
{
	fprintf(stderr, "wave-bench-chan: libwave: %s: %s\n", what, wave_strerror(err));
	return err;
}

static int agent_main(void *arg)
{
	struct wave_side *s = arg;
	struct wave_chan_listener *l;
	struct wave_chan *ch;
	int ret;

	if ((ret = wave_chan_listen(s->uri, NULL, &l)) < 0)
		return fail("listen", ret);
	if (write(s->ready_fd, "r", 1) != 1)
		ret = -errno;
	close(s->ready_fd);
	if (ret == 0)
		ret = wave_chan_accept(l, WAVE_MS(SETUP_TIMEOUT_MS), &ch);
	wave_chan_listener_close(l);
	if (ret < 0)
		return fail("accept", ret);
	struct bench_xport x = { "libwave shm", wave_send, wave_recv, ch };
	ret = bench_agent_serve(&x, s->cfg->single_core);
	wave_chan_close(ch);
	return ret < 0 ? fail("agent", ret) : 0;
}

static int host_main(void *arg)
{
	struct wave_side *s = arg;
	struct wave_chan *ch;
	int ret;

	if ((ret = wave_chan_open(s->uri, NULL, &ch)) < 0)
		return fail("open", ret);
	struct bench_xport x = { "libwave shm", wave_send, wave_recv, ch };
	ret = bench_host_run(&x, s->cfg, s->res);
	wave_chan_close(ch);
	return ret < 0 ? fail("host", ret) : 0;
}

/* Waits for the agent's "listening" byte. */
static int wait_ready(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char c;

	if (poll(&p, 1, SETUP_TIMEOUT_MS) <= 0)
		return -ETIMEDOUT;
	return read(fd, &c, 1) == 1 ? 0 : -EPIPE;
}

static int run_pair(struct wave_side *s)
{
	int pfd[2];
	pid_t agent, host = -1;
	int ret, st;

	if (pipe(pfd) < 0)
		return -errno;
	s->ready_fd = pfd[1];
	ret = bench_spawn(s->cfg->agent_cpu, agent_main, s, &agent);
	close(pfd[1]);
	if (ret < 0) {
		close(pfd[0]);
		return ret;
	}
	ret = wait_ready(pfd[0]);
	close(pfd[0]);
	if (ret == 0)
		ret = bench_spawn(s->cfg->host_cpu, host_main, s, &host);
	struct bench_watch w;
	bench_watch_run(&w, s->cfg, agent, host);
	if (host > 0 && (st = bench_wait_run(host, bench_run_timeout_ms(s->cfg), &w, s->res->offcpu,
					     &s->res->n_off)) != 0 && ret == 0)
		ret = st < 0 ? st : -EPROTO;
	st = bench_wait(agent, ret == 0 ? SETUP_TIMEOUT_MS : 1);
	if (st != 0 && ret == 0)
		ret = st < 0 ? st : -EPROTO;
	return ret;
}

int bench_wave_run(const struct bench_cfg *cfg, struct bench_result *res)
{
	char dir[] = "/tmp/wave-bench-XXXXXX";
	struct wave_side s = { .cfg = cfg, .res = res, .ready_fd = -1 };
	int ret;

	if (!mkdtemp(dir))
		return -errno;
	snprintf(s.uri, sizeof(s.uri), "shm://%s/agent.sock", dir);
	ret = run_pair(&s);
	/* The listener removed its socket; a killed agent may have left it. */
	char sock[sizeof(dir) + 16];
	snprintf(sock, sizeof(sock), "%s/agent.sock", dir);
	unlink(sock);
	rmdir(dir);
	res->have_pct = res->have_tput = true;
	snprintf(res->note, sizeof(res->note), "wave_chan_send_burst/recv_burst, busy-polling");
	return ret;
}
