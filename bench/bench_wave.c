/* SPDX-License-Identifier: MIT */
/*
 * libwave over shm://: the agent process listens on a socket in a fresh
 * temporary directory, the host process opens the channel, and both run the
 * shared loops with wave_chan_send_burst() / wave_chan_recv_burst(),
 * busy-polling (no wave_chan_wait(): the latency test must not sleep).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
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
	uint32_t flags; /* WAVE_CHAN_F_* of both ends */
	int ready_fd;   /* agent: written once listening */
};

static struct wave_chan_opts side_opts(const struct wave_side *s)
{
	struct wave_chan_opts o;

	wave_chan_opts_init(&o);
	o.flags = s->flags;
	return o;
}

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

	struct wave_chan_opts o = side_opts(s);

	if ((ret = wave_chan_listen(s->uri, &o, &l)) < 0)
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

	struct wave_chan_opts o = side_opts(s);

	if ((ret = wave_chan_open(s->uri, &o, &ch)) < 0)
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

static int wave_run(const struct bench_cfg *cfg, struct bench_result *res, uint32_t flags)
{
	char dir[] = "/tmp/wave-bench-XXXXXX";
	struct wave_side s = { .cfg = cfg, .res = res, .flags = flags, .ready_fd = -1 };
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
	snprintf(res->note, sizeof(res->note), "wave_chan_send_burst/recv_burst, busy-polling%s",
		 flags & WAVE_CHAN_F_NO_STAMP ? ", WAVE_CHAN_F_NO_STAMP" : "");
	return ret;
}

int bench_wave_run(const struct bench_cfg *cfg, struct bench_result *res)
{
	return wave_run(cfg, res, 0);
}

int bench_wave_unstamped_run(const struct bench_cfg *cfg, struct bench_result *res)
{
	return wave_run(cfg, res, WAVE_CHAN_F_NO_STAMP);
}

/* ---- libwave's own path, one CPU ------------------------------------------ */

struct path_pair {
	struct wave_chan *host, *agent;
	struct wave_msg ping, pong;
	uint64_t id;
};

struct path_accept {
	struct wave_chan_listener *l;
	struct wave_chan *ch;
	int ret;
};

static void *path_accept_main(void *arg)
{
	struct path_accept *a = arg;

	a->ret = wave_chan_accept(a->l, WAVE_MS(SETUP_TIMEOUT_MS), &a->ch);
	return NULL;
}

/* Receives the one message waiting on @ch (it was sent just before). */
static int path_take(struct wave_chan *ch, struct wave_msg *m, uint16_t type, uint64_t id)
{
	int n = wave_chan_recv_burst(ch, m, 1);

	if (n != 1)
		return n < 0 ? n : -EPROTO;
	return m->type == type && m->payload.u64[0] == id ? 0 : -EPROTO;
}

/* A round trip as the two-process runs make it (a ping sent, received and
 * checked, a pong made, sent, received and checked), in one thread: every
 * line it touches stays in this CPU's cache. */
static int path_rtt(void *ctx)
{
	struct path_pair *p = ctx;
	struct wave_msg m;
	int ret;

	p->ping.payload.u64[0] = ++p->id;
	if ((ret = wave_chan_send_burst(p->host, &p->ping, 1)) != 1 ||
	    (ret = path_take(p->agent, &m, p->ping.type, p->id)) < 0)
		return ret < 0 ? ret : -EPROTO;
	p->pong.payload.u64[0] = m.payload.u64[0];
	if ((ret = wave_chan_send_burst(p->agent, &p->pong, 1)) != 1 ||
	    (ret = path_take(p->host, &m, p->pong.type, p->id)) < 0)
		return ret < 0 ? ret : -EPROTO;
	return 0;
}

/* Opens both ends of @uri in this process. */
static int path_open(const char *uri, struct path_pair *p)
{
	struct path_accept a = { NULL, NULL, 0 };
	pthread_t t;
	int ret;

	if ((ret = wave_chan_listen(uri, NULL, &a.l)) < 0)
		return fail("listen", ret);
	if ((ret = -pthread_create(&t, NULL, path_accept_main, &a)) == 0) {
		ret = wave_chan_open(uri, NULL, &p->host);
		pthread_join(t, NULL);
		if (ret == 0 && a.ret < 0) {
			ret = a.ret;
			wave_chan_close(p->host);
		}
	}
	wave_chan_listener_close(a.l);
	if (ret < 0)
		return fail("open (one CPU)", ret);
	p->agent = a.ch;
	return 0;
}

static int path_main(void *arg)
{
	struct wave_side *s = arg;
	struct path_pair p;
	int ret;

	memset(&p, 0, sizeof(p));
	p.ping.type = WAVE_MSG_APP_FIRST + 1;
	p.pong.type = WAVE_MSG_APP_FIRST + 2;
	if ((ret = path_open(s->uri, &p)) < 0)
		return ret;
	ret = bench_measure_latency(path_rtt, &p, s->cfg, &s->res->lat[s->res->n_lat]);
	if (ret == 0)
		s->res->n_lat++;
	wave_chan_close(p.host);
	wave_chan_close(p.agent);
	return ret < 0 ? fail("one-CPU path", ret) : 0;
}

int bench_wave_path_run(const struct bench_cfg *cfg, struct bench_result *res)
{
	char dir[] = "/tmp/wave-bench-XXXXXX";
	struct wave_side s = { .cfg = cfg, .res = res, .ready_fd = -1 };
	pid_t pid;
	int ret, st;

	if (res->n_lat >= BENCH_MAX_REPS)
		return -EINVAL;
	if (!mkdtemp(dir))
		return -errno;
	snprintf(s.uri, sizeof(s.uri), "shm://%s/path.sock", dir);
	ret = bench_spawn(cfg->host_cpu, path_main, &s, &pid);
	if (ret == 0 && (st = bench_wait(pid, bench_run_timeout_ms(cfg))) != 0)
		ret = st < 0 ? st : -EPROTO;
	char sock[sizeof(dir) + 16];
	snprintf(sock, sizeof(sock), "%s/path.sock", dir);
	unlink(sock);
	rmdir(dir);
	res->have_pct = true;
	res->have_tput = false;
	snprintf(res->note, sizeof(res->note),
		 "both ends in one thread: libwave's own instructions");
	return ret;
}
