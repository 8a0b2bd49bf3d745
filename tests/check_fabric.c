/* SPDX-License-Identifier: MIT */
/*
 * fabric:// transport tests. Every case runs the agent and the host in two
 * processes (fork), coordinated by pipes, never by sleeping: a timeout in a
 * test only turns a hang into a failure. Listeners use loopback; the one
 * address that cannot be bound (TEST-NET-3) is only ever given to bind().
 */
#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <wave/wave.h>

#include "check_run.h"
#include "chan/fabric.h"
#include "chan_util.h"

#define TCP "tcp;ofi_rxm"
/* Long enough never to fire by accident on a loaded machine; the tests
 * about death set their own. */
#define LONG_TIMEOUT_MS 60000

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void tcp_uri(char *buf, size_t len)
{
	snprintf(buf, len, "fabric://" TCP "/127.0.0.1:%d", test_free_port());
}

static void shm_uri(char *buf, size_t len)
{
	snprintf(buf, len, "fabric://shm/t%d_%d", (int)getpid(), test_free_port());
}

static void opts(struct wave_chan_opts *o)
{
	ck_assert_int_eq(wave_chan_opts_init(o), 0);
	o->disconnect_timeout_ms = LONG_TIMEOUT_MS;
	o->timeout_ms = 30000;
}

/* Is @m not message @n (msg_make(), chan_util.h) with its sequence number? */
static int msg_bad(const struct wave_msg *m, uint64_t n)
{
	struct wave_msg want;

	msg_make(&want, n);
	if (m->type != want.type || m->flags != want.flags ||
	    memcmp(m->payload.u8, want.payload.u8, WAVE_MSG_PAYLOAD) != 0)
		return 1;
	return m->seq != (uint32_t)(n + 1); /* 1-based per direction */
}

/* Pipes between the two processes: a byte means "go on". */
struct sync {
	int to_child[2], to_parent[2];
};

static void sync_make(struct sync *s)
{
	ck_assert_int_eq(pipe(s->to_child), 0);
	ck_assert_int_eq(pipe(s->to_parent), 0);
}

static void sync_post(int fd)
{
	char b = 1;
	ck_assert_int_eq(write(fd, &b, 1), 1);
}

static void sync_wait(int fd)
{
	char b;
	ck_assert_int_eq(read(fd, &b, 1), 1);
}

static void child_exit_ok(pid_t pid)
{
	int st;

	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child failed: status 0x%x", st);
}

/*
 * Sends messages [*next, total) as far as credit allows, in bursts of a
 * varying size, and receives what came meanwhile, checking it. Both ends
 * of the stream test run this loop; it returns when both directions are
 * done.
 */
static void stream(struct wave_chan *ch, uint64_t total)
{
	struct wave_msg out[64], in[64];
	uint64_t sent = 0, got = 0;
	unsigned burst = 1;

	while (sent < total || got < total) {
		bool moved = false;
		if (sent < total) {
			unsigned n = burst;
			if (n > total - sent)
				n = (unsigned)(total - sent);
			for (unsigned i = 0; i < n; i++)
				msg_make(&out[i], sent + i);
			int r = wave_chan_send_burst(ch, out, n);
			ck_assert_msg(r >= 0, "send: %s", wave_strerror(r));
			sent += (unsigned)r;
			moved |= r > 0;
			burst = burst % 64 + 1 + (unsigned)(sent % 7);
			if (burst > 64)
				burst = 64;
		}
		if (got < total) {
			int r = wave_chan_recv_burst(ch, in, 64);
			ck_assert_msg(r >= 0, "recv: %s", wave_strerror(r));
			for (int i = 0; i < r; i++, got++)
				ck_assert_msg(!msg_bad(&in[i], got), "message %llu wrong",
					      (unsigned long long)got);
			moved |= r > 0;
		}
		if (!moved && got < total) {
			int w = wave_chan_wait(ch, 1000000);
			ck_assert_int_ge(w, 0);
		}
	}
}

/* Opens the listener, forks a host that runs @host_fn, accepts it. */
struct duo {
	struct wave_chan_listener *l;
	struct wave_chan *agent;
	pid_t host;
	struct sync s;
	char uri[160];
};

static int listen_or_skip(struct duo *d, bool shm, const struct wave_chan_opts *o)
{
	int r;

	if (shm)
		shm_uri(d->uri, sizeof(d->uri));
	else
		tcp_uri(d->uri, sizeof(d->uri));
	r = wave_chan_listen(d->uri, o, &d->l);
	if (shm && r < 0) {
		fprintf(stderr, "fabric shm provider unavailable here (%s): case not run\n",
			wave_strerror(r));
		return r;
	}
	ck_assert_msg(r == 0, "listen %s: %s", d->uri, wave_strerror(r));
	return 0;
}

/* Ordering, no loss or duplicate over millions of messages, backpressure,
 * batches, close and reopen: the conformance suite (check_chan.c) runs them
 * over fabric-tcp and fabric-shm. What follows is particular to fabric://. */

/* ---- one thread sends while another receives on the same end ------------- */

/* $WAVE_TEST_SCALE (a divisor; the sanitizer builds set 10) shrinks it. */
static uint64_t thread_msgs(void)
{
	const char *e = getenv("WAVE_TEST_SCALE");
	unsigned long d = e ? strtoul(e, NULL, 10) : 1;

	return d > 1 ? 200000ull / d : 200000ull;
}
#define THREAD_MSGS thread_msgs()

static void *send_all(void *arg)
{
	struct wave_chan *ch = arg;
	struct wave_msg m[32];
	uint64_t sent = 0;

	while (sent < THREAD_MSGS) {
		unsigned n = THREAD_MSGS - sent < 32 ? (unsigned)(THREAD_MSGS - sent) : 32;
		for (unsigned i = 0; i < n; i++)
			msg_make(&m[i], sent + i);
		int r = wave_chan_send_burst(ch, m, n);
		if (r < 0)
			return (void *)1;
		sent += (unsigned)r;
	}
	return NULL;
}

START_TEST(sender_and_receiver_threads)
{
	struct wave_chan_opts o;
	struct wave_msg in[64];
	struct duo d;
	pthread_t t;
	void *tr;
	uint64_t got = 0;

	opts(&o);
	listen_or_skip(&d, false, &o);
	d.host = test_fork();
	if (d.host == 0) {
		struct wave_chan *h;
		if (wave_chan_open(d.uri, &o, &h) != 0)
			_exit(1);
		stream(h, THREAD_MSGS);
		wave_chan_close(h);
		_exit(0);
	}
	ck_assert_int_eq(wave_chan_accept(d.l, WAVE_MS(30000), &d.agent), 0);
	ck_assert_int_eq(pthread_create(&t, NULL, send_all, d.agent), 0);
	while (got < THREAD_MSGS) {
		int r = wave_chan_recv_burst(d.agent, in, 64);
		ck_assert_int_ge(r, 0);
		for (int i = 0; i < r; i++, got++)
			ck_assert(!msg_bad(&in[i], got));
		if (r == 0)
			ck_assert_int_ge(wave_chan_wait(d.agent, 1000000), 0);
	}
	ck_assert_int_eq(pthread_join(t, &tr), 0);
	ck_assert_ptr_null(tr);
	struct wave_chan_stats st;
	ck_assert_int_eq(wave_chan_stats(d.agent, &st), 0);
	ck_assert_uint_eq(st.sent, THREAD_MSGS);
	wave_chan_close(d.agent);
	child_exit_ok(d.host);
	wave_chan_listener_close(d.l);
}
END_TEST

/* ---- backpressure --------------------------------------------------------- */

START_TEST(backpressure)
{
	struct wave_chan_opts o;
	struct wave_msg m[32];
	struct duo d;
	uint64_t sent = 0, extra = 5000;
	int r;

	opts(&o);
	o.host_to_agent_slots = 256;
	listen_or_skip(&d, false, &o);
	sync_make(&d.s);
	d.host = test_fork();
	if (d.host == 0) {
		struct wave_chan *a;
		struct wave_msg in[64];
		uint64_t got = 0, total;
		/* The agent: accept, then stop reading until told. */
		if (wave_chan_accept(d.l, WAVE_MS(30000), &a) != 0)
			_exit(1);
		sync_post(d.s.to_parent[1]);
		sync_wait(d.s.to_child[0]);
		if (read(d.s.to_child[0], &total, sizeof(total)) != sizeof(total))
			_exit(2);
		while (got < total) {
			r = wave_chan_recv_burst(a, in, 64);
			if (r < 0)
				_exit(3);
			for (int i = 0; i < r; i++, got++)
				if (msg_bad(&in[i], got))
					_exit(4);
			if (r == 0 && wave_chan_wait(a, -1) < 0)
				_exit(5);
		}
		wave_chan_close(a);
		_exit(0);
	}
	struct wave_chan *h;
	ck_assert_int_eq(wave_chan_open(d.uri, &o, &h), 0);
	sync_wait(d.s.to_parent[0]);
	/* Fill until the agent's ring is full: the sender sees 0, not an
	 * error, and nothing has been dropped. */
	for (;;) {
		for (unsigned i = 0; i < 32; i++)
			msg_make(&m[i], sent + i);
		r = wave_chan_send_burst(h, m, 32);
		ck_assert_int_ge(r, 0);
		sent += (unsigned)r;
		if (r == 0)
			break;
	}
	ck_assert_uint_eq(sent, 256);
	ck_assert_int_eq(wave_chan_send_burst(h, m, 1), 0);
	ck_assert_int_eq(wave_chan_send_bulk(h, m, 1), -EAGAIN);
	struct wave_chan_stats st;
	ck_assert_int_eq(wave_chan_stats(h, &st), 0);
	ck_assert_uint_ge(st.send_full, 3);
	/* Let the agent read everything, and send more while it does. */
	uint64_t total = sent + extra;
	sync_post(d.s.to_child[1]);
	ck_assert_int_eq(write(d.s.to_child[1], &total, sizeof(total)), (ssize_t)sizeof(total));
	while (sent < total) {
		unsigned n = total - sent < 32 ? (unsigned)(total - sent) : 32;
		for (unsigned i = 0; i < n; i++)
			msg_make(&m[i], sent + i);
		r = wave_chan_send_bulk(h, m, n);
		ck_assert_msg(r == (int)n || r == -EAGAIN, "bulk: %d", r);
		if (r > 0)
			sent += (unsigned)r;
		else
			wave_chan_wait(h, 1000000); /* progress; nothing to receive */
	}
	child_exit_ok(d.host);
	wave_chan_close(h);
	wave_chan_listener_close(d.l);
}
END_TEST

/* ---- refusals --------------------------------------------------------------- */

/* Host child opens with @token; exits with the open's error code (or 0). */
static pid_t host_try(const char *uri, const char *token, bool old_proto)
{
	pid_t pid = test_fork();
	if (pid == 0) {
		struct wave_chan_opts o;
		struct wave_chan *h;
		opts(&o);
		o.token = token;
		if (old_proto)
			wave_fabric_test_set_proto(0, 7);
		int r = wave_chan_open(uri, &o, &h);
		if (r == 0)
			wave_chan_close(h);
		_exit(r == 0 ? 0 : r == -WAVE_EREFUSED ? 10 : r == -WAVE_EVERSION ? 11 : 12);
	}
	return pid;
}

static int host_status(pid_t pid)
{
	int st;

	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st));
	return WEXITSTATUS(st);
}

START_TEST(wrong_token)
{
	struct wave_chan_opts o;
	struct wave_chan *a;
	struct duo d;
	pid_t pid;

	opts(&o);
	o.token = "s3cret-token";
	listen_or_skip(&d, false, &o);

	pid = host_try(d.uri, "s3cret-tokeN", false);
	ck_assert_int_eq(wave_chan_accept(d.l, WAVE_MS(30000), &a), -WAVE_EREFUSED);
	ck_assert_int_eq(host_status(pid), 10);

	pid = host_try(d.uri, NULL, false);
	ck_assert_int_eq(wave_chan_accept(d.l, WAVE_MS(30000), &a), -WAVE_EREFUSED);
	ck_assert_int_eq(host_status(pid), 10);

	/* A prefix of the right token is not the token. */
	pid = host_try(d.uri, "s3cret", false);
	ck_assert_int_eq(wave_chan_accept(d.l, WAVE_MS(30000), &a), -WAVE_EREFUSED);
	ck_assert_int_eq(host_status(pid), 10);

	/* The listener stays usable: the right token gets in. */
	pid = host_try(d.uri, "s3cret-token", false);
	ck_assert_int_eq(wave_chan_accept(d.l, WAVE_MS(30000), &a), 0);
	ck_assert_int_eq(host_status(pid), 0);
	wave_chan_close(a);
	wave_chan_listener_close(d.l);
}
END_TEST

START_TEST(old_version)
{
	struct wave_chan_opts o;
	struct wave_chan *a;
	struct duo d;
	pid_t pid;

	opts(&o);
	listen_or_skip(&d, false, &o);
	pid = host_try(d.uri, NULL, true);
	ck_assert_int_eq(wave_chan_accept(d.l, WAVE_MS(30000), &a), -WAVE_EVERSION);
	ck_assert_int_eq(host_status(pid), 11);
	pid = host_try(d.uri, NULL, false);
	ck_assert_int_eq(wave_chan_accept(d.l, WAVE_MS(30000), &a), 0);
	ck_assert_int_eq(host_status(pid), 0);
	wave_chan_close(a);
	wave_chan_listener_close(d.l);
}
END_TEST

/* ---- a peer killed mid-stream -------------------------------------------- */

/* How many shm provider objects in /dev/shm the endpoints of process @pid
 * made ("wave.<pid>.<nonce>:<uid>:<n>", lib/chan/fabric_addr.c). */
static unsigned shm_objects_of(pid_t pid)
{
	char prefix[32];
	DIR *d = opendir("/dev/shm");
	struct dirent *ent;
	unsigned n = 0;

	ck_assert_ptr_nonnull(d);
	snprintf(prefix, sizeof(prefix), "wave.%d.", (int)pid);
	while ((ent = readdir(d)) != NULL)
		n += strncmp(ent->d_name, prefix, strlen(prefix)) == 0;
	closedir(d);
	return n;
}

/* Forks a host that streams messages 0, 1, ... in bursts of 16 until
 * @total went out (0: until it is killed), then closes and exits 0, or,
 * with @parked_w >= 0, writes a byte there and waits to be killed, outside
 * every libwave and libfabric call. It loses its first @drop_credit CREDIT
 * frames (wave_fabric_test_drop_credit). */
static pid_t stream_host(const char *uri, const struct wave_chan_opts *o, uint64_t total,
			 unsigned drop_credit, int parked_w)
{
	struct wave_chan *h;
	struct wave_msg m[16];
	uint64_t sent = 0;
	pid_t pid = fork();
	int r;

	ck_assert_int_ge(pid, 0);
	if (pid)
		return pid;
	wave_fabric_test_drop_credit(drop_credit);
	if (wave_chan_open(uri, o, &h) != 0)
		_exit(1);
	while (!total || sent < total) {
		unsigned n = total && total - sent < 16 ? (unsigned)(total - sent) : 16;
		for (unsigned i = 0; i < n; i++)
			msg_make(&m[i], sent + i);
		if ((r = wave_chan_send_burst(h, m, n)) < 0)
			_exit(2);
		sent += (unsigned)r;
	}
	if (parked_w >= 0 && write(parked_w, "p", 1) == 1)
		for (;;)
			pause();
	wave_chan_close(h);
	_exit(0);
}

/* Receives on @agent, checking each message, until *@got reaches @n. */
static void recv_upto(struct wave_chan *agent, uint64_t *got, uint64_t n)
{
	struct wave_msg in[64];

	while (*got < n) {
		int r = wave_chan_recv_burst(agent, in, 64);
		ck_assert_int_ge(r, 0);
		for (int i = 0; i < r; i++, (*got)++)
			ck_assert(!msg_bad(&in[i], *got));
		if (r == 0)
			ck_assert_int_ge(wave_chan_wait(agent, -1), 0);
	}
}

/* The host streams; the agent reads some, kills it, and must see
 * WAVE_ECLOSED rather than hang. Over tcp the host dies in the middle of
 * its stream. Over libfabric's shm provider it dies parked after its
 * last send: that provider (1.17) keeps spinlocks in the shared memory,
 * and a peer killed inside one leaves the other end spinning in the
 * provider for ever (README, "Agents on another machine"), which no
 * libwave code can end. */
static void killed_peer(bool shm)
{
	struct wave_chan_opts o;
	struct wave_msg in[64];
	struct duo d;
	uint64_t got = 0;
	int parked[2] = { -1, -1 };
	char c;
	int r;

	opts(&o);
	/* Long enough that a host starved on a loaded machine is not taken
	 * for dead before the kill (the shm case waits it out after). */
	o.disconnect_timeout_ms = 10000;
	if (listen_or_skip(&d, shm, &o) < 0)
		return;
	if (shm)
		ck_assert_int_eq(pipe(parked), 0);
	d.host = stream_host(d.uri, &o, shm ? 10000 : 0, 0, parked[1]);
	ck_assert_int_eq(wave_chan_accept(d.l, WAVE_MS(30000), &d.agent), 0);
	recv_upto(d.agent, &got, 10000);
	if (shm) {
		ck_assert_int_eq(read(parked[0], &c, 1), 1);
		close(parked[0]);
		close(parked[1]);
	}
	/* The live host's endpoint has its object (a killed one cannot remove
	 * it; any process's next shm endpoint may, so it is not counted after
	 * the kill: another test running beside this one reaps it too). */
	if (shm)
		ck_assert_uint_eq(shm_objects_of(d.host), 1);
	kill(d.host, SIGKILL);
	waitpid(d.host, NULL, 0);
	/* What was sent before the death may still come; then the end. */
	for (;;) {
		r = wave_chan_recv_burst(d.agent, in, 64);
		if (r < 0)
			break;
		for (int i = 0; i < r; i++, got++)
			ck_assert(!msg_bad(&in[i], got));
		if (r == 0)
			ck_assert_int_ge(wave_chan_wait(d.agent, -1), 0);
	}
	ck_assert_int_eq(r, -WAVE_ECLOSED);
	msg_make(&in[0], 0);
	ck_assert_int_eq(wave_chan_send_burst(d.agent, in, 1), -WAVE_ECLOSED);
	wave_chan_close(d.agent);
	/* The listener takes a new host afterwards, and that host's first
	 * endpoint removes the dead one's object. */
	pid_t pid = host_try(d.uri, NULL, false);
	ck_assert_int_eq(wave_chan_accept(d.l, WAVE_MS(30000), &d.agent), 0);
	ck_assert_int_eq(host_status(pid), 0);
	if (shm)
		ck_assert_uint_eq(shm_objects_of(d.host), 0);
	wave_chan_close(d.agent);
	wave_chan_listener_close(d.l);
}

START_TEST(killed_peer_tcp)
{
	killed_peer(false);
}
END_TEST

START_TEST(killed_peer_shm)
{
	killed_peer(true);
}
END_TEST

/* Credit reports and requests lost on the way (a provider may drop frames
 * under pressure) do not leave the host waiting for credit and the agent
 * for data for good: every frame's header repeats the credit, and the
 * agent's heartbeats keep coming while it waits. Both ends lose their first
 * three CREDIT frames, while the host streams more than a ring. */
static void lost_credit(bool shm)
{
	struct wave_chan_opts o;
	struct duo d;
	uint64_t got = 0;

	opts(&o);
	o.disconnect_timeout_ms = 2000; /* a heartbeat every 500 ms */
	if (listen_or_skip(&d, shm, &o) < 0)
		return;
	d.host = stream_host(d.uri, &o, 20000, 3, -1);
	wave_fabric_test_drop_credit(3);
	ck_assert_int_eq(wave_chan_accept(d.l, WAVE_MS(30000), &d.agent), 0);
	recv_upto(d.agent, &got, 20000);
	child_exit_ok(d.host);
	wave_chan_close(d.agent);
	wave_chan_listener_close(d.l);
	wave_fabric_test_drop_credit(0);
}

START_TEST(lost_credit_tcp)
{
	lost_credit(false);
}
END_TEST

START_TEST(lost_credit_shm)
{
	lost_credit(true);
}
END_TEST

/* The agent dies while the host is blocked on credit: the host's sends
 * return WAVE_ECLOSED within the disconnect timeout instead of 0 for ever. */
START_TEST(killed_agent_sender_sees_closed)
{
	struct wave_chan_opts o;
	struct wave_msg m[32];
	struct duo d;
	int r;

	opts(&o);
	o.disconnect_timeout_ms = 2000;
	listen_or_skip(&d, false, &o);
	sync_make(&d.s);
	d.host = test_fork(); /* here the child is the agent */
	if (d.host == 0) {
		struct wave_chan *a;
		if (wave_chan_accept(d.l, WAVE_MS(30000), &a) != 0)
			_exit(1);
		sync_post(d.s.to_parent[1]);
		for (;;)
			wave_chan_wait(a, -1); /* alive, heartbeating, never reading */
	}
	struct wave_chan *h;
	ck_assert_int_eq(wave_chan_open(d.uri, &o, &h), 0);
	sync_wait(d.s.to_parent[0]);
	for (unsigned i = 0; i < 32; i++)
		msg_make(&m[i], i);
	while ((r = wave_chan_send_burst(h, m, 32)) > 0)
		;
	ck_assert_int_eq(r, 0); /* full, peer alive */
	kill(d.host, SIGKILL);
	waitpid(d.host, NULL, 0);
	uint64_t t0 = now_ns();
	while ((r = wave_chan_send_burst(h, m, 32)) == 0)
		wave_chan_wait(h, 1000000);
	ck_assert_int_eq(r, -WAVE_ECLOSED);
	/* Bounded: the disconnect timeout (2 s) at most, plus a wide margin
	 * for a loaded machine; only a hang fails this. */
	ck_assert_uint_lt(now_ns() - t0, 30000000000ull);
	wave_chan_close(h);
	wave_chan_listener_close(d.l);
}
END_TEST

/* ---- clean close, waiting, latency emulation ------------------------------ */

START_TEST(close_drains_then_closed)
{
	struct wave_chan_opts o;
	struct wave_msg m[8];
	struct duo d;
	int r;

	opts(&o);
	listen_or_skip(&d, false, &o);
	d.host = test_fork();
	if (d.host == 0) {
		struct wave_chan *h;
		if (wave_chan_open(d.uri, &o, &h) != 0)
			_exit(1);
		for (uint64_t i = 0; i < 100; i++) {
			msg_make(&m[0], i);
			while ((r = wave_chan_send_bulk(h, m, 1)) == -EAGAIN)
				wave_chan_wait(h, 1000000);
			if (r != 1)
				_exit(2);
		}
		wave_chan_close(h); /* returns once the agent has it all */
		_exit(0);
	}
	ck_assert_int_eq(wave_chan_accept(d.l, WAVE_MS(30000), &d.agent), 0);
	uint64_t got = 0;
	while ((r = wave_chan_recv_burst(d.agent, m, 8)) >= 0) {
		for (int i = 0; i < r; i++, got++)
			ck_assert(!msg_bad(&m[i], got));
		if (r == 0)
			ck_assert_int_eq(wave_chan_wait(d.agent, -1), 1);
	}
	ck_assert_int_eq(r, -WAVE_ECLOSED);
	ck_assert_uint_eq(got, 100);
	child_exit_ok(d.host);
	ck_assert_int_eq(wave_chan_recv_burst(d.agent, m, 8), -WAVE_ECLOSED);
	wave_chan_close(d.agent);
	wave_chan_listener_close(d.l);
}
END_TEST

/* Latency emulation at the receiver: the host sends and closes while every
 * message is still inside its delay window; the agent gets them all, each
 * no earlier than due, and only then WAVE_ECLOSED. */
START_TEST(close_delivers_delayed_messages)
{
	struct wave_chan_opts o;
	struct wave_msg m[8];
	struct duo d;
	uint64_t got = 0;
	int r;

	opts(&o);
	o.delay_ns = 300000000; /* 300 ms: far longer than sending and closing */
	listen_or_skip(&d, false, &o);
	d.host = test_fork();
	if (d.host == 0) {
		struct wave_chan *h;
		o.delay_ns = 0;
		if (wave_chan_open(d.uri, &o, &h) != 0)
			_exit(1);
		for (uint64_t i = 0; i < 20; i++) {
			msg_make(&m[0], i);
			if (wave_chan_send_bulk(h, m, 1) != 1)
				_exit(2);
		}
		wave_chan_close(h); /* waits for the agent's ack of it all */
		_exit(0);
	}
	ck_assert_int_eq(wave_chan_accept(d.l, WAVE_MS(30000), &d.agent), 0);
	while ((r = wave_chan_recv_burst(d.agent, m, 8)) >= 0) {
		for (int i = 0; i < r; i++, got++) {
			ck_assert(!msg_bad(&m[i], got));
			ck_assert_uint_ge(now_ns(), m[i].tstamp + o.delay_ns);
		}
		if (r == 0)
			ck_assert_int_eq(wave_chan_wait(d.agent, -1), 1);
	}
	ck_assert_int_eq(r, -WAVE_ECLOSED);
	ck_assert_uint_eq(got, 20);
	child_exit_ok(d.host);
	wave_chan_close(d.agent);
	wave_chan_listener_close(d.l);
}
END_TEST

START_TEST(fd_trywait_and_delay)
{
	struct wave_chan_opts o;
	struct wave_msg m;
	struct duo d;
	int r;

	opts(&o);
	o.delay_ns = 2000000; /* 2 ms */
	listen_or_skip(&d, false, &o);
	sync_make(&d.s);
	d.host = test_fork(); /* the child is the agent: it sends when told */
	if (d.host == 0) {
		struct wave_chan *a;
		if (wave_chan_accept(d.l, WAVE_MS(30000), &a) != 0)
			_exit(1);
		for (uint64_t i = 0; i < 3; i++) {
			sync_wait(d.s.to_child[0]);
			msg_make(&m, i);
			if (wave_chan_send_bulk(a, &m, 1) != 1)
				_exit(2);
		}
		/* Stay alive (and answer heartbeats) until the host is done. */
		while (wave_chan_recv_burst(a, &m, 1) >= 0)
			wave_chan_wait(a, -1);
		wave_chan_close(a);
		_exit(0);
	}
	struct wave_chan *h;
	ck_assert_int_eq(wave_chan_open(d.uri, &o, &h), 0);
	int fd = wave_chan_fd(h);
	ck_assert_int_ge(fd, 0);
	for (uint64_t i = 0; i < 3; i++) {
		/* Nothing is pending: trywait arms, and we may sleep on fd. */
		r = wave_chan_trywait(h);
		ck_assert(r == 0 || r == -EAGAIN);
		sync_post(d.s.to_child[1]);
		for (;;) {
			r = wave_chan_recv_burst(h, &m, 1);
			ck_assert_int_ge(r, 0);
			if (r == 1)
				break;
			if (wave_chan_trywait(h) == 0) {
				struct pollfd p = { .fd = fd, .events = POLLIN };
				ck_assert_int_ge(poll(&p, 1, 100), 0);
			}
		}
		ck_assert(!msg_bad(&m, i));
		/* Latency emulation: never handed out before tstamp + delay. */
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
		ck_assert_uint_ge(now, m.tstamp + o.delay_ns);
	}
	wave_chan_close(h);
	child_exit_ok(d.host);
	wave_chan_listener_close(d.l);
}
END_TEST

/* ---- addresses and arguments ----------------------------------------------- */

START_TEST(bad_listen_address)
{
	struct wave_chan_listener *l;
	struct wave_chan_opts o;

	opts(&o);
	/* TEST-NET-3 (RFC 5737): not on this machine, so bind() fails
	 * locally; nothing is ever sent to it. */
	ck_assert_int_eq(wave_chan_listen("fabric://" TCP "/203.0.113.1:7447", &o, &l),
			 -EADDRNOTAVAIL);
	ck_assert_int_eq(wave_chan_listen("fabric:///203.0.113.1:7447", &o, &l), -EADDRNOTAVAIL);
}
END_TEST

START_TEST(port_in_use)
{
	struct wave_chan_listener *l1, *l2;
	struct wave_chan_opts o;
	char uri[128];

	opts(&o);
	tcp_uri(uri, sizeof(uri));
	ck_assert_int_eq(wave_chan_listen(uri, &o, &l1), 0);
	ck_assert_int_eq(wave_chan_listen(uri, &o, &l2), -EADDRINUSE);
	wave_chan_listener_close(l1);
}
END_TEST

START_TEST(bad_uris_and_options)
{
	static const char *const bad[] = {
		"fabric://" TCP "/127.0.0.1",       "fabric://" TCP "/127.0.0.1:0",
		"fabric://" TCP "/127.0.0.1:70000", "fabric://" TCP "/localhost:7447",
		"fabric://" TCP "/[::1:7447",       "fabric://tcp;ofi_rxm",
		"fabric://shm/",                    "fabric://shm/bad name",
		"fabric://shm/a/b",                 "fabric://t cp/127.0.0.1:7447",
	};
	struct wave_chan_listener *l;
	struct wave_chan_opts o;
	struct wave_chan *c;
	char longtok[80];

	opts(&o);
	o.timeout_ms = 2000;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(wave_chan_listen(bad[i], &o, &l) == -WAVE_EURI, "%s", bad[i]);
		ck_assert_msg(wave_chan_open(bad[i], &o, &c) == -WAVE_EURI, "%s", bad[i]);
	}
	/* No wildcard as a destination. */
	ck_assert_int_eq(wave_chan_open("fabric://" TCP "/0.0.0.0:7447", &o, &c), -WAVE_EURI);
	memset(longtok, 'x', sizeof(longtok) - 1);
	longtok[sizeof(longtok) - 1] = '\0';
	o.token = longtok;
	ck_assert_int_eq(wave_chan_open("fabric://" TCP "/127.0.0.1:7447", &o, &c), -EINVAL);
	longtok[WAVE_CHAN_TOKEN_MAX] = '\0'; /* exactly the maximum: fine */
	o.disconnect_timeout_ms = 0;
	ck_assert_int_eq(wave_chan_open("fabric://" TCP "/127.0.0.1:7447", &o, &c), -EINVAL);
	/* An unknown provider. */
	opts(&o);
	ck_assert_int_lt(wave_chan_listen("fabric://nosuchprov/127.0.0.1:7447", &o, &l), 0);
}
END_TEST

START_TEST(nobody_listening)
{
	struct wave_chan_opts o;
	struct wave_chan *c;
	char uri[128];
	int r;

	opts(&o);
	o.timeout_ms = 1000;
	tcp_uri(uri, sizeof(uri));
	r = wave_chan_open(uri, &o, &c);
	ck_assert_msg(r == -ECONNREFUSED || r == -ETIMEDOUT, "open: %s", wave_strerror(r));
}
END_TEST

START_TEST(accept_times_out)
{
	struct wave_chan_opts o;
	struct wave_chan *c;
	struct duo d;

	opts(&o);
	listen_or_skip(&d, false, &o);
	ck_assert_int_eq(wave_chan_accept(d.l, 0, &c), -ETIMEDOUT);
	ck_assert_int_eq(wave_chan_accept(d.l, WAVE_MS(20), &c), -ETIMEDOUT);
	ck_assert_int_ge(wave_chan_listener_fd(d.l), 0);
	wave_chan_listener_close(d.l);
}
END_TEST

/* An old caller's smaller struct (without token and disconnect timeout)
 * still works: it gets the defaults. */
START_TEST(old_opts_struct)
{
	struct wave_chan_listener *l;
	struct wave_chan_opts o;
	char uri[128];

	opts(&o);
	o.size = offsetof(struct wave_chan_opts, token);
	o.token = "ignored";                /* beyond size: never read */
	o.disconnect_timeout_ms = -5;       /* beyond size: never read */
	tcp_uri(uri, sizeof(uri));
	ck_assert_int_eq(wave_chan_listen(uri, &o, &l), 0);
	wave_chan_listener_close(l);
}
END_TEST

static Suite *fabric_suite(void)
{
	Suite *s = suite_create("fabric");
	TCase *t = tcase_create("fabric");

	tcase_set_timeout(t, 300);
	tcase_add_test(t, bad_uris_and_options);
	tcase_add_test(t, bad_listen_address);
	tcase_add_test(t, port_in_use);
	tcase_add_test(t, old_opts_struct);
	tcase_add_test(t, nobody_listening);
	tcase_add_test(t, accept_times_out);
	tcase_add_test(t, wrong_token);
	tcase_add_test(t, old_version);
	tcase_add_test(t, close_drains_then_closed);
	tcase_add_test(t, fd_trywait_and_delay);
	tcase_add_test(t, close_delivers_delayed_messages);
	tcase_add_test(t, backpressure);
	tcase_add_test(t, killed_peer_tcp);
	tcase_add_test(t, killed_peer_shm);
	tcase_add_test(t, killed_agent_sender_sees_closed);
	tcase_add_test(t, lost_credit_tcp);
	tcase_add_test(t, lost_credit_shm);
	tcase_add_test(t, sender_and_receiver_threads);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return wave_check_run(fabric_suite());
}
