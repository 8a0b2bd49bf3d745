/* SPDX-License-Identifier: MIT */
/*
 * The Unix-domain socket peer: a SOCK_SEQPACKET socket pair carrying the
 * same 64-byte records, one record per message, run by the same loops as
 * libwave. Receiving busy-polls with MSG_DONTWAIT, which is the fastest a
 * socket can be used (no sleep and wake-up per message); a batch of B is one
 * sendmmsg() of B records, and the receiver takes up to B with recvmmsg().
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"

#define MAX_VEC 32

struct uds_side {
	const struct bench_cfg *cfg;
	struct bench_result *res;
	int fd;    /* this side's end */
	int other; /* the peer's end, inherited through fork: closed at once */
};

static int uds_send(void *ctx, const struct wave_msg *msgs, unsigned n)
{
	int fd = *(int *)ctx;

	if (n == 1) {
		ssize_t r = send(fd, msgs, sizeof(*msgs), MSG_NOSIGNAL);
		if (r < 0)
			return errno == EINTR ? 0 : -errno;
		return r == sizeof(*msgs) ? 1 : -EMSGSIZE;
	}
	struct mmsghdr v[MAX_VEC];
	struct iovec io[MAX_VEC];
	n = n > MAX_VEC ? MAX_VEC : n;
	memset(v, 0, sizeof(v[0]) * n);
	for (unsigned i = 0; i < n; i++) {
		io[i].iov_base = (void *)&msgs[i];
		io[i].iov_len = sizeof(msgs[i]);
		v[i].msg_hdr.msg_iov = &io[i];
		v[i].msg_hdr.msg_iovlen = 1;
	}
	int r = sendmmsg(fd, v, n, MSG_NOSIGNAL);
	if (r < 0)
		return errno == EINTR ? 0 : -errno;
	return r;
}

/* 0 bytes from a SOCK_SEQPACKET socket means the peer closed. */
static int uds_recv(void *ctx, struct wave_msg *msgs, unsigned max)
{
	int fd = *(int *)ctx;

	if (max == 1) {
		ssize_t r = recv(fd, msgs, sizeof(*msgs), MSG_DONTWAIT);
		if (r < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		return r == sizeof(*msgs) ? 1 : (r == 0 ? -ECONNRESET : -EMSGSIZE);
	}
	struct mmsghdr v[MAX_VEC];
	struct iovec io[MAX_VEC];
	max = max > MAX_VEC ? MAX_VEC : max;
	memset(v, 0, sizeof(v[0]) * max);
	for (unsigned i = 0; i < max; i++) {
		io[i].iov_base = &msgs[i];
		io[i].iov_len = sizeof(msgs[i]);
		v[i].msg_hdr.msg_iov = &io[i];
		v[i].msg_hdr.msg_iovlen = 1;
	}
	int r = recvmmsg(fd, v, max, MSG_DONTWAIT, NULL);
	if (r < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	for (int i = 0; i < r; i++)
		if (v[i].msg_len != sizeof(msgs[i]))
			return v[i].msg_len == 0 ? -ECONNRESET : -EMSGSIZE;
	return r;
}

static int uds_agent(void *arg)
{
	struct uds_side *s = arg;
	struct bench_xport x = { "unix socket", uds_send, uds_recv, &s->fd };
	int ret;

	close(s->other);
	ret = bench_agent_serve(&x, s->cfg->single_core);

	if (ret < 0)
		fprintf(stderr, "wave-bench-chan: unix socket agent: %s\n", strerror(-ret));
	return ret;
}

static int uds_host(void *arg)
{
	struct uds_side *s = arg;
	struct bench_xport x = { "unix socket", uds_send, uds_recv, &s->fd };
	int ret;

	close(s->other);
	ret = bench_host_run(&x, s->cfg, s->res);

	if (ret < 0)
		fprintf(stderr, "wave-bench-chan: unix socket host: %s\n", strerror(-ret));
	return ret;
}

int bench_uds_run(const struct bench_cfg *cfg, struct bench_result *res)
{
	struct uds_side agent_side = { cfg, res, -1, -1 }, host_side = { cfg, res, -1, -1 };
	pid_t agent = -1, host = -1;
	int sv[2], ret, st;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	agent_side.fd = host_side.other = sv[1];
	host_side.fd = agent_side.other = sv[0];
	ret = bench_spawn(cfg->agent_cpu, uds_agent, &agent_side, &agent);
	if (ret == 0)
		ret = bench_spawn(cfg->host_cpu, uds_host, &host_side, &host);
	/* Only the children hold the ends now: a dead one gives its peer EOF. */
	close(sv[0]);
	close(sv[1]);
	struct bench_watch w;
	bench_watch_run(&w, cfg, agent, host);
	if (host > 0 &&
	    (st = bench_wait_run(host, bench_run_timeout_ms(cfg), &w, res->offcpu, &res->n_off)) != 0)
		ret = st < 0 ? st : -EPROTO;
	if (agent > 0) {
		st = bench_wait(agent, ret == 0 ? 10000 : 1);
		if (st != 0 && ret == 0)
			ret = st < 0 ? st : -EPROTO;
	}
	res->have_pct = res->have_tput = true;
	snprintf(res->note, sizeof(res->note),
		 "SOCK_SEQPACKET, recv/recvmmsg(MSG_DONTWAIT) busy-polling");
	return ret;
}
