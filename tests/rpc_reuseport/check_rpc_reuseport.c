/* SPDX-License-Identifier: MIT */
/*
 * RPC steering in the kernel (include/wave/rpc_reuseport.h) against real
 * sockets, in a network namespace of the test's own (unshare, loopback).
 *
 *   check_rpc_reuseport args     argument checks; run anywhere
 *   check_rpc_reuseport kernel   the program on real UDP and TCP groups;
 *                                exit 77 (skipped) with the reason when the
 *                                namespace cannot be made or BPF programs
 *                                cannot be loaded (not root)
 *
 * A flow's bucket cannot be computed here (the kernel hashes with a secret),
 * so each test learns it from the program's own per-bucket arrival counter:
 * one datagram or SYN, one bucket's count goes up. Every wait is a poll()
 * with a long timeout that only catches a hang; nothing depends on timing.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/sock_diag.h>

#include <check.h>
#include <wave/wave.h>
#include <wave/rpc.h>
#include <wave/rpc_reuseport.h>

#include "check_run.h"

#define NW 4 /* workers */
#define WAIT_MS 10000

/* ---- sockets --------------------------------------------------------------- */

/* @a with a port no socket holds. A SO_REUSEPORT socket bound to port 0
 * may be given the port of another process's reuseport group (the same
 * user's: tests and servers running side by side) and join it; a plain
 * socket is given a free one, which the group binds right after. */
static void fresh_port(int type, struct sockaddr *a, socklen_t len)
{
	int fd = socket(a->sa_family, type | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, a, len), 0);
	ck_assert_int_eq(getsockname(fd, a, &len), 0);
	close(fd);
}

/* A reuseport group of @n sockets of @type on 127.0.0.1 (a fresh port). */
static void make_group(int type, int n, int *fds)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int one = 1;

	fresh_port(type, (struct sockaddr *)&a, sizeof(a));
	for (int i = 0; i < n; i++) {
		fds[i] = socket(AF_INET, type | SOCK_CLOEXEC, 0);
		ck_assert_int_ge(fds[i], 0);
		ck_assert_int_eq(setsockopt(fds[i], SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)), 0);
		ck_assert_int_eq(bind(fds[i], (struct sockaddr *)&a, sizeof(a)), 0);
		if (type == SOCK_STREAM)
			ck_assert_int_eq(listen(fds[i], 64), 0);
	}
}

static struct sockaddr_in group_addr(int fd)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);

	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	return a;
}

/* A client socket of @type bound to its own ephemeral port: one flow. */
static int client(int type)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

/* Which of @fds becomes readable first (a datagram, or a connection to
 * accept); fails the test if none does within WAIT_MS. */
static int readable(const int *fds, int n)
{
	struct pollfd p[NW];

	for (int i = 0; i < n; i++)
		p[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
	ck_assert_int_gt(poll(p, (nfds_t)n, WAIT_MS), 0);
	for (int i = 0; i < n; i++)
		if (p[i].revents & POLLIN)
			return i;
	ck_abort_msg("poll returned with no socket readable");
	return -1;
}

static void send_u32(int fd, const struct sockaddr_in *to, uint32_t v)
{
	ck_assert_int_eq(sendto(fd, &v, sizeof(v), 0, (const struct sockaddr *)to, sizeof(*to)),
			 (int)sizeof(v));
}

static uint32_t recv_u32(int fd)
{
	uint32_t v;

	ck_assert_int_eq(recv(fd, &v, sizeof(v), MSG_DONTWAIT), (int)sizeof(v));
	return v;
}

/* ---- buckets --------------------------------------------------------------- */

#define MAXB 64

struct counts {
	unsigned nb;
	uint64_t before[MAXB];
};

static void counts_mark(struct wave_rpc_reuseport *rp, struct counts *c)
{
	ck_assert_int_eq(wave_rpc_reuseport_arrivals(rp, c->before, c->nb), 0);
}

/* The one bucket whose arrivals grew since counts_mark(). */
static unsigned counts_bucket(struct wave_rpc_reuseport *rp, const struct counts *c)
{
	uint64_t now[MAXB];
	int found = -1;

	ck_assert_int_eq(wave_rpc_reuseport_arrivals(rp, now, c->nb), 0);
	for (unsigned b = 0; b < c->nb; b++) {
		if (now[b] == c->before[b])
			continue;
		ck_assert_msg(found < 0, "two buckets counted one packet (%d and %u)", found, b);
		found = (int)b;
	}
	ck_assert_msg(found >= 0, "no bucket counted the packet");
	return (unsigned)found;
}

static unsigned table_of(struct wave_rpc_reuseport *rp, unsigned b)
{
	unsigned w;

	ck_assert_int_eq(wave_rpc_reuseport_get(rp, b, &w), 0);
	return w;
}

/* One datagram from @cl; returns its bucket and checks that it reached
 * the worker the table names. */
static unsigned udp_send_check(struct wave_rpc_reuseport *rp, struct counts *c, const int *w,
			       int cl, uint32_t tag)
{
	struct sockaddr_in to = group_addr(w[0]);
	unsigned b;
	int got;

	counts_mark(rp, c);
	send_u32(cl, &to, tag);
	got = readable(w, NW);
	ck_assert_uint_eq(recv_u32(w[got]), tag);
	b = counts_bucket(rp, c);
	ck_assert_msg((unsigned)got == table_of(rp, b), "bucket %u: worker %d, table says %u", b,
		      got, table_of(rp, b));
	return b;
}

/* ---- kernel tests ------------------------------------------------------------ */

START_TEST(udp_flows_follow_the_table)
{
	enum { NB = 16, NF = 32 };
	struct counts c = { .nb = NB };
	struct wave_rpc_reuseport *rp;
	struct wave_rpc_reuseport_stats st;
	int w[NW], cl[NF];
	unsigned bucket[NF];

	make_group(SOCK_DGRAM, NW, w);
	ck_assert_int_eq(wave_rpc_reuseport_open(w, NW, NB, &rp), 0);
	for (unsigned b = 0; b < NB; b++)
		ck_assert_uint_eq(table_of(rp, b), b % NW); /* the static hash to start */
	for (int f = 0; f < NF; f++) {
		cl[f] = client(SOCK_DGRAM);
		bucket[f] = udp_send_check(rp, &c, w, cl[f], (uint32_t)f);
	}
	/* Every bucket moves; each flow keeps its bucket and follows it. */
	for (unsigned b = 0; b < NB; b++)
		ck_assert_int_eq(wave_rpc_reuseport_set(rp, b, (b * 3 + 1) % NW), 0);
	for (int f = 0; f < NF; f++)
		ck_assert_uint_eq(udp_send_check(rp, &c, w, cl[f], 100u + (uint32_t)f), bucket[f]);
	ck_assert_int_eq(wave_rpc_reuseport_stats(rp, &st), 0);
	ck_assert_uint_eq(st.steered, 2 * NF);
	ck_assert_uint_eq(st.fallback, 0);
	wave_rpc_reuseport_close(rp);
	for (int i = 0; i < NW; i++)
		close(w[i]);
	for (int f = 0; f < NF; f++)
		close(cl[f]);
}
END_TEST

/* A datagram queued before a move stays with the old worker; the next one
 * of the same flow goes to the new worker. */
START_TEST(udp_move_leaves_queued_datagrams)
{
	struct counts c = { .nb = 8 };
	struct wave_rpc_reuseport *rp;
	int w[NW], cl;
	unsigned b, old, new;
	struct sockaddr_in to;

	make_group(SOCK_DGRAM, NW, w);
	to = group_addr(w[0]);
	ck_assert_int_eq(wave_rpc_reuseport_open(w, NW, 8, &rp), 0);
	cl = client(SOCK_DGRAM);
	counts_mark(rp, &c);
	send_u32(cl, &to, 1); /* left queued */
	old = (unsigned)readable(w, NW);
	b = counts_bucket(rp, &c);
	ck_assert_uint_eq(old, table_of(rp, b));
	new = (old + 1) % NW;
	ck_assert_int_eq(wave_rpc_reuseport_set(rp, b, new), 0);
	send_u32(cl, &to, 2);
	ck_assert_int_eq(readable(&w[new], 1), 0);
	ck_assert_uint_eq(recv_u32(w[new]), 2);
	ck_assert_uint_eq(recv_u32(w[old]), 1);
	wave_rpc_reuseport_close(rp);
	for (int i = 0; i < NW; i++)
		close(w[i]);
	close(cl);
}
END_TEST

/* Worker @w's queue depth once it is @want, having taken @taken; fails if
 * it never gets there (a datagram may still be on its way through the
 * loopback device when sendto() returns). */
static void expect_depth(struct wave_rpc_reuseport *rp, unsigned w, uint64_t taken, uint32_t want)
{
	uint32_t depth = 0;

	for (int i = 0; i < WAIT_MS / 10; i++) {
		ck_assert_int_eq(wave_rpc_reuseport_queued(rp, w, taken, &depth), 0);
		if (depth == want)
			return;
		poll(NULL, 0, 10);
	}
	ck_abort_msg("worker %u: queue depth %u, expected %u", w, depth, want);
}

/* The queue depth of a worker's socket: what the table sent it, less what
 * it took, less what the kernel dropped on a full buffer. */
START_TEST(udp_queue_depth_counts_waiting_datagrams)
{
	enum { N = 5, FLOOD = 2000 };
	struct counts c = { .nb = 8 };
	struct wave_rpc_reuseport *rp;
	int w[NW], cl, small = 1;
	unsigned b, old;
	uint64_t taken = 0;
	uint32_t mem[SK_MEMINFO_VARS], v, depth = 1;
	socklen_t len = sizeof(mem);
	struct sockaddr_in to;

	make_group(SOCK_DGRAM, NW, w);
	to = group_addr(w[0]);
	ck_assert_int_eq(wave_rpc_reuseport_open(w, NW, 8, &rp), 0);
	cl = client(SOCK_DGRAM);
	counts_mark(rp, &c);
	send_u32(cl, &to, 0);
	old = (unsigned)readable(w, NW);
	b = counts_bucket(rp, &c);
	ck_assert_uint_eq(old, table_of(rp, b));
	for (uint32_t i = 1; i < N; i++)
		send_u32(cl, &to, i);
	expect_depth(rp, old, 0, N);
	for (unsigned i = 0; i < NW; i++)
		if (i != old)
			expect_depth(rp, i, 0, 0);
	ck_assert_uint_eq(recv_u32(w[old]), 0);
	ck_assert_uint_eq(recv_u32(w[old]), 1);
	expect_depth(rp, old, 2, N - 2);
	/* Datagrams the kernel drops on a full buffer are not waiting: once
	 * every datagram that got in is read, the depth is 0 again. */
	ck_assert_int_eq(setsockopt(w[old], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
	taken = 2;
	for (uint32_t i = 0; i < FLOOD; i++)
		send_u32(cl, &to, i);
	for (int i = 0; depth && i < WAIT_MS / 10; i++) {
		while (recv(w[old], &v, sizeof(v), MSG_DONTWAIT) == (ssize_t)sizeof(v))
			taken++;
		ck_assert_int_eq(wave_rpc_reuseport_queued(rp, old, taken, &depth), 0);
		if (depth)
			poll(NULL, 0, 10);
	}
	ck_assert_uint_eq(depth, 0);
	ck_assert_int_eq(getsockopt(w[old], SOL_SOCKET, SO_MEMINFO, mem, &len), 0);
	ck_assert_uint_gt(mem[SK_MEMINFO_DROPS], 0);
	ck_assert_uint_lt(taken, FLOOD + 2);
	ck_assert_int_eq(wave_rpc_reuseport_queued(rp, NW, 0, &depth), -EINVAL);
	ck_assert_int_eq(wave_rpc_reuseport_queued(rp, 0, 0, NULL), -EINVAL);
	wave_rpc_reuseport_close(rp);
	for (int i = 0; i < NW; i++)
		close(w[i]);
	close(cl);
}
END_TEST

/* Connects a new flow; returns the worker whose listener got it and its
 * bucket in *@b. With @acc the connection is accepted into *@acc, else it
 * is left in the listener's accept queue. */
static int tcp_connect(struct wave_rpc_reuseport *rp, struct counts *c, const int *w, int *cl,
		       int *acc, unsigned *b)
{
	struct sockaddr_in to = group_addr(w[0]);
	int got;

	*cl = client(SOCK_STREAM);
	counts_mark(rp, c);
	ck_assert_int_eq(connect(*cl, (struct sockaddr *)&to, sizeof(to)), 0);
	got = readable(w, NW);
	*b = counts_bucket(rp, c);
	ck_assert_msg((unsigned)got == table_of(rp, *b), "bucket %u: worker %d, table says %u", *b,
		      got, table_of(rp, *b));
	if (acc) {
		*acc = accept4(w[got], NULL, NULL, SOCK_CLOEXEC);
		ck_assert_int_ge(*acc, 0);
	}
	return got;
}

START_TEST(tcp_new_connections_follow_established_stay)
{
	struct counts c = { .nb = 4 };
	struct wave_rpc_reuseport *rp;
	int w[NW], cl0, cl1, acc0, acc1, cl, acc, tries = 0;
	unsigned b0, b1, b, old = 1, new = 2;
	char ch = 'x';

	make_group(SOCK_STREAM, NW, w);
	ck_assert_int_eq(wave_rpc_reuseport_open(w, NW, 4, &rp), 0);
	for (unsigned i = 0; i < 4; i++)
		ck_assert_int_eq(wave_rpc_reuseport_set(rp, i, old), 0);
	/* One connection established and accepted, one left in the queue. */
	ck_assert_int_eq(tcp_connect(rp, &c, w, &cl0, &acc0, &b0), (int)old);
	ck_assert_int_eq(tcp_connect(rp, &c, w, &cl1, NULL, &b1), (int)old);
	/* Both their buckets move. */
	ck_assert_int_eq(wave_rpc_reuseport_set(rp, b0, new), 0);
	ck_assert_int_eq(wave_rpc_reuseport_set(rp, b1, new), 0);
	/* The established connection still carries data on its socket. */
	ck_assert_int_eq(write(cl0, &ch, 1), 1);
	ck_assert_int_eq(readable(&acc0, 1), 0);
	ck_assert_int_eq(read(acc0, &ch, 1), 1);
	/* The queued one is still on the old listener, none on the new. */
	ck_assert_int_eq(fcntl(w[old], F_SETFL, O_NONBLOCK), 0);
	ck_assert_int_eq(fcntl(w[new], F_SETFL, O_NONBLOCK), 0);
	acc1 = accept4(w[old], NULL, NULL, SOCK_CLOEXEC);
	ck_assert_int_ge(acc1, 0);
	ck_assert_int_eq(accept4(w[new], NULL, NULL, SOCK_CLOEXEC), -1);
	ck_assert_int_eq(errno, EAGAIN);
	/* New connections follow the table: a moved bucket's to the new
	 * worker, the others' still to the old one (tcp_connect checks). */
	do {
		ck_assert_int_lt(tries++, 400);
		tcp_connect(rp, &c, w, &cl, &acc, &b);
		close(acc);
		close(cl);
	} while (b != b0 && b != b1);
	wave_rpc_reuseport_close(rp);
	close(cl0);
	close(cl1);
	close(acc0);
	close(acc1);
	for (int i = 0; i < NW; i++)
		close(w[i]);
}
END_TEST

/* A worker without a socket: its buckets fall back to the kernel's hashing,
 * counted, and nothing is lost; with its socket back, they follow again. */
START_TEST(empty_worker_falls_back)
{
	struct counts c = { .nb = 4 };
	struct wave_rpc_reuseport *rp;
	struct wave_rpc_reuseport_stats st;
	struct sockaddr_in to;
	int w[NW], cl, got;
	unsigned b;

	make_group(SOCK_DGRAM, NW, w);
	to = group_addr(w[0]);
	ck_assert_int_eq(wave_rpc_reuseport_open(w, NW, 4, &rp), 0);
	cl = client(SOCK_DGRAM);
	b = udp_send_check(rp, &c, w, cl, 1);
	ck_assert_int_eq(wave_rpc_reuseport_set_worker(rp, table_of(rp, b), -1), 0);
	send_u32(cl, &to, 2);
	got = readable(w, NW);
	ck_assert_uint_eq(recv_u32(w[got]), 2); /* delivered somewhere */
	ck_assert_int_eq(wave_rpc_reuseport_stats(rp, &st), 0);
	ck_assert_uint_eq(st.fallback, 1);
	ck_assert_uint_eq(st.steered, 1);
	ck_assert_int_eq(wave_rpc_reuseport_set_worker(rp, table_of(rp, b), w[table_of(rp, b)]), 0);
	ck_assert_uint_eq(udp_send_check(rp, &c, w, cl, 3), b);
	/* After close the kernel hashes again: still delivered. */
	wave_rpc_reuseport_close(rp);
	send_u32(cl, &to, 4);
	got = readable(w, NW);
	ck_assert_uint_eq(recv_u32(w[got]), 4);
	for (int i = 0; i < NW; i++)
		close(w[i]);
	close(cl);
}
END_TEST

/* ---- IPv6 -------------------------------------------------------------------- */

static const struct sockaddr_in6 lo6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };

/* A reuseport group of @n sockets of @type on [::1] (a fresh port). */
static void make_group6(int type, int n, int *fds)
{
	struct sockaddr_in6 a = lo6;
	int one = 1;

	fresh_port(type, (struct sockaddr *)&a, sizeof(a));
	for (int i = 0; i < n; i++) {
		fds[i] = socket(AF_INET6, type | SOCK_CLOEXEC, 0);
		ck_assert_int_ge(fds[i], 0);
		ck_assert_int_eq(setsockopt(fds[i], SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)), 0);
		ck_assert_int_eq(bind(fds[i], (struct sockaddr *)&a, sizeof(a)), 0);
		if (type == SOCK_STREAM)
			ck_assert_int_eq(listen(fds[i], 64), 0);
	}
}

/* One flow from [::1] to the group of @w: a datagram, or a connection
 * (left in the accept queue); checks that it reached the worker the table
 * names and returns its bucket. */
static unsigned flow6_check(struct wave_rpc_reuseport *rp, struct counts *c, const int *w,
			    int type, int *cl)
{
	struct sockaddr_in6 to, from = lo6;
	socklen_t len = sizeof(to);
	uint32_t v = 6;
	unsigned b;
	int got;

	ck_assert_int_eq(getsockname(w[0], (struct sockaddr *)&to, &len), 0);
	*cl = socket(AF_INET6, type | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(*cl, 0);
	ck_assert_int_eq(bind(*cl, (struct sockaddr *)&from, sizeof(from)), 0);
	counts_mark(rp, c);
	if (type == SOCK_DGRAM)
		ck_assert_int_eq(sendto(*cl, &v, sizeof(v), 0, (struct sockaddr *)&to, sizeof(to)),
				 (int)sizeof(v));
	else
		ck_assert_int_eq(connect(*cl, (struct sockaddr *)&to, sizeof(to)), 0);
	got = readable(w, NW);
	b = counts_bucket(rp, c);
	ck_assert_msg((unsigned)got == table_of(rp, b), "bucket %u: worker %d, table says %u", b,
		      got, table_of(rp, b));
	if (type == SOCK_DGRAM)
		ck_assert_uint_eq(recv_u32(w[got]), 6);
	else
		close(accept4(w[got], NULL, NULL, SOCK_CLOEXEC));
	return b;
}

/* The program does not look at the address family: IPv6 datagrams and
 * connections follow the table as IPv4 ones do, before and after moves. */
START_TEST(ipv6_flows_follow_the_table)
{
	enum { NB = 8, NF = 8 };
	static const int types[] = { SOCK_DGRAM, SOCK_STREAM };
	struct counts c = { .nb = NB };
	struct wave_rpc_reuseport *rp;
	int w[NW], cl[NF];

	for (int t = 0; t < 2; t++) {
		make_group6(types[t], NW, w);
		ck_assert_int_eq(wave_rpc_reuseport_open(w, NW, NB, &rp), 0);
		for (int f = 0; f < NF; f++) {
			flow6_check(rp, &c, w, types[t], &cl[f]);
			close(cl[f]);
		}
		for (unsigned b = 0; b < NB; b++)
			ck_assert_int_eq(wave_rpc_reuseport_set(rp, b, (b * 3 + 1) % NW), 0);
		for (int f = 0; f < NF; f++) {
			flow6_check(rp, &c, w, types[t], &cl[f]);
			close(cl[f]);
		}
		wave_rpc_reuseport_close(rp);
		for (int i = 0; i < NW; i++)
			close(w[i]);
	}
}
END_TEST

/* The kernel's maps equal the steering handle's table. */
static void same_table(struct wave_rpc *r, struct wave_rpc_reuseport *rp, unsigned nb)
{
	uint32_t t[MAXB];

	ck_assert_int_eq(wave_rpc_table(r, 0, nb, t, NULL), 0);
	for (unsigned b = 0; b < nb; b++)
		ck_assert_uint_eq(table_of(rp, b), t[b]);
}

/* Driven by a steering handle (<wave/rpc.h>) through the follower: workers
 * added and removed, buckets moved, all reach the kernel before lookups. */
START_TEST(follows_a_steering_handle)
{
	struct counts c = { .nb = 8 };
	struct wave_rpc_opts o;
	struct wave_rpc *r;
	struct wave_rpc_follower f;
	struct wave_rpc_reuseport *rp;
	int w[NW], cl[8], extra;

	make_group(SOCK_DGRAM, NW, w);
	ck_assert_int_eq(wave_rpc_opts_init(&o), 0);
	o.n_buckets = 8;
	o.max_workers = NW + 1;
	ck_assert_int_eq(wave_rpc_create(NULL, &o, &r, NULL), 0);
	ck_assert_int_eq(wave_rpc_reuseport_open(w, NW, 8, &rp), 0);
	ck_assert_int_eq(wave_rpc_reuseport_follower(rp, &f), 0);
	ck_assert_int_eq(wave_rpc_follow(r, &f), 0);
	for (int i = 0; i < NW; i++)
		ck_assert_int_eq(wave_rpc_worker_add(r, (uint32_t)i, w[i]), 0);
	/* The first worker took every bucket. */
	same_table(r, rp, 8);
	for (int i = 0; i < 8; i++) {
		cl[i] = client(SOCK_DGRAM);
		udp_send_check(rp, &c, w, cl[i], (uint32_t)i);
		ck_assert_uint_eq(table_of(rp, 0), 0);
	}
	/* Removing worker 0 moves its buckets first, in the kernel too. */
	ck_assert_int_eq(wave_rpc_worker_remove(r, 0), 0);
	same_table(r, rp, 8);
	for (int i = 0; i < 8; i++)
		ck_assert_uint_ne(table_of(rp, udp_send_check(rp, &c, w, cl[i], 10u + (uint32_t)i)), 0);
	/* A worker the group has no slot for is refused, and not added. */
	extra = client(SOCK_DGRAM);
	ck_assert_int_eq(wave_rpc_worker_add(r, NW, extra), -EINVAL);
	wave_rpc_destroy(r);
	wave_rpc_reuseport_close(rp);
	close(extra);
	for (int i = 0; i < 8; i++)
		close(cl[i]);
	for (int i = 0; i < NW; i++)
		close(w[i]);
}
END_TEST

/* Without privilege: -EPERM, nothing attached, the kernel's hashing serves. */
START_TEST(unprivileged_is_refused_and_kernel_hashes)
{
	struct wave_rpc_reuseport *rp = (void *)1;
	struct sockaddr_in to;
	int w[NW], cl, got;

	make_group(SOCK_DGRAM, NW, w);
	to = group_addr(w[0]);
	cl = client(SOCK_DGRAM);
	/* Check forks each test: only this process drops root. */
	ck_assert_int_eq(setresgid(65534, 65534, 65534), 0);
	ck_assert_int_eq(setresuid(65534, 65534, 65534), 0);
	ck_assert_int_eq(wave_rpc_reuseport_open(w, NW, 4, &rp), -EPERM);
	ck_assert_ptr_null(rp);
	send_u32(cl, &to, 7);
	got = readable(w, NW);
	ck_assert_uint_eq(recv_u32(w[got]), 7);
}
END_TEST

/* ---- argument checks (no privilege needed) ------------------------------------ */

START_TEST(bad_arguments_refused)
{
	struct wave_rpc_reuseport *rp = (void *)1;
	int u[2], t[2], plain, one = 1, mixed[2];

	make_group(SOCK_DGRAM, 2, u);
	make_group(SOCK_STREAM, 2, t);
	ck_assert_int_eq(wave_rpc_reuseport_open(u, 2, 4, NULL), -EINVAL);
	ck_assert_int_eq(wave_rpc_reuseport_open(NULL, 2, 4, &rp), -EINVAL);
	ck_assert_ptr_null(rp);
	ck_assert_int_eq(wave_rpc_reuseport_open(u, 0, 4, &rp), -EINVAL);
	ck_assert_int_eq(wave_rpc_reuseport_open(u, 2, 6, &rp), -EINVAL);   /* not a power of 2 */
	ck_assert_int_eq(wave_rpc_reuseport_open(u, 2, 1, &rp), -EINVAL);   /* fewer than workers */
	ck_assert_int_eq(wave_rpc_reuseport_open(u, 2, 1u << 17, &rp), -EINVAL);
	mixed[0] = u[0];
	mixed[1] = t[1];
	ck_assert_int_eq(wave_rpc_reuseport_open(mixed, 2, 4, &rp), -EINVAL);
	mixed[1] = -1;
	ck_assert_int_eq(wave_rpc_reuseport_open(mixed, 2, 4, &rp), -EINVAL);
	mixed[1] = STDIN_FILENO == 0 ? 999 : 0; /* not an open fd */
	ck_assert_int_eq(wave_rpc_reuseport_open(mixed, 2, 4, &rp), -EINVAL);
	/* A socket without SO_REUSEPORT, and a TCP socket that is not listening. */
	plain = socket(AF_INET, SOCK_DGRAM, 0);
	ck_assert_int_eq(wave_rpc_reuseport_open(&plain, 1, 4, &rp), -EINVAL);
	close(plain);
	plain = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_eq(setsockopt(plain, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)), 0);
	ck_assert_int_eq(wave_rpc_reuseport_open(&plain, 1, 4, &rp), -EINVAL);
	close(plain);
	ck_assert_ptr_null(rp);
	ck_assert_int_eq(wave_rpc_reuseport_set(NULL, 0, 0), -EINVAL);
	ck_assert_int_eq(wave_rpc_reuseport_get(NULL, 0, NULL), -EINVAL);
	ck_assert_int_eq(wave_rpc_reuseport_set_worker(NULL, 0, -1), -EINVAL);
	ck_assert_int_eq(wave_rpc_reuseport_arrivals(NULL, NULL, 0), -EINVAL);
	ck_assert_int_eq(wave_rpc_reuseport_stats(NULL, NULL), -EINVAL);
	ck_assert_int_eq(wave_rpc_reuseport_queued(NULL, 0, 0, NULL), -EINVAL);
	wave_rpc_reuseport_close(NULL);
	for (int i = 0; i < 2; i++) {
		close(u[i]);
		close(t[i]);
	}
}
END_TEST

/* With a loaded program: indexes out of range are refused, nothing moves. */
START_TEST(out_of_range_refused)
{
	struct wave_rpc_reuseport *rp;
	uint64_t counts[8];
	int w[NW];

	make_group(SOCK_DGRAM, NW, w);
	ck_assert_int_eq(wave_rpc_reuseport_open(w, NW, 8, &rp), 0);
	ck_assert_int_eq(wave_rpc_reuseport_set(rp, 8, 0), -EINVAL);
	ck_assert_int_eq(wave_rpc_reuseport_set(rp, 0, NW), -EINVAL);
	ck_assert_uint_eq(table_of(rp, 0), 0);
	ck_assert_int_eq(wave_rpc_reuseport_set_worker(rp, NW, w[0]), -EINVAL);
	ck_assert_int_eq(wave_rpc_reuseport_set_worker(rp, 0, -2), -EINVAL);
	ck_assert_int_eq(wave_rpc_reuseport_arrivals(rp, counts, 4), -EINVAL);
	ck_assert_int_eq(wave_rpc_reuseport_arrivals(rp, counts, 8), 0);
	wave_rpc_reuseport_close(rp);
	for (int i = 0; i < NW; i++)
		close(w[i]);
}
END_TEST

/* ---- set-up -------------------------------------------------------------------- */

/* A network namespace of our own with its loopback up; 77 if impossible. */
static void enter_netns(void)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int fd;

	if (unshare(CLONE_NEWNET) != 0) {
		printf("skipped: cannot make a network namespace (%s): needs root\n",
		       strerror(errno));
		exit(77);
	}
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr) != 0)
		exit(1);
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) != 0)
		exit(1);
	close(fd);
}

/* Whether this process may load the program at all; 77 if not. */
static void probe_bpf(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct wave_rpc_reuseport *rp;
	int w, err, one = 1;

	w = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (w < 0 || setsockopt(w, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
	    bind(w, (struct sockaddr *)&a, sizeof(a)) != 0)
		exit(1);
	err = wave_rpc_reuseport_open(&w, 1, 1, &rp);
	if (err == -EPERM) {
		printf("skipped: loading BPF programs needs CAP_BPF and CAP_NET_ADMIN\n");
		exit(77);
	}
	if (err) {
		printf("cannot load the steering program: %s\n", wave_strerror(err));
		exit(1);
	}
	wave_rpc_reuseport_close(rp);
	close(w);
}

int main(int argc, char **argv)
{
	Suite *s = suite_create("rpc_reuseport");
	TCase *tc = tcase_create("main");
	bool kernel = argc > 1 && strcmp(argv[1], "kernel") == 0;

	if (argc != 2 || (!kernel && strcmp(argv[1], "args") != 0)) {
		fprintf(stderr, "usage: check_rpc_reuseport args|kernel\n");
		return 2;
	}
	if (kernel) {
		enter_netns();
		probe_bpf();
		tcase_add_test(tc, udp_flows_follow_the_table);
		tcase_add_test(tc, udp_move_leaves_queued_datagrams);
		tcase_add_test(tc, udp_queue_depth_counts_waiting_datagrams);
		tcase_add_test(tc, tcp_new_connections_follow_established_stay);
		tcase_add_test(tc, empty_worker_falls_back);
		tcase_add_test(tc, follows_a_steering_handle);
		tcase_add_test(tc, ipv6_flows_follow_the_table);
		tcase_add_test(tc, unprivileged_is_refused_and_kernel_hashes);
		tcase_add_test(tc, out_of_range_refused);
	} else {
		tcase_add_test(tc, bad_arguments_refused);
	}
	suite_add_tcase(s, tc);
	return wave_check_run(s);
}
