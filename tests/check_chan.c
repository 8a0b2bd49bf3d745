/* SPDX-License-Identifier: MIT */
/*
 * Channel conformance: the behaviour every transport must show through the
 * generic wave_chan_* API. Run once per transport: `check_chan shm`,
 * `check_chan file`, `check_chan fabric-tcp`, `check_chan fabric-shm`.
 *
 * Two differences between transports are allowed and named where they
 * matter: fabric:// returns credit asynchronously (room a reader made
 * reaches the writer a little later, so a writer retries, progressing,
 * where shared memory sees the room at once), and fabric:// rings no
 * doorbell of its own (a sleeper is woken by the provider's completion
 * queue). The "one process" cases need both ends in this process, which
 * libfabric 1.17's shm provider does not support: fabric-shm runs only the
 * "processes" cases, which hold everything the issue asks of a transport
 * (order, no loss or duplicate over millions of messages, backpressure,
 * batches, close and reopen).
 *
 * $WAVE_TEST_SCALE divides the stress message counts (the sanitizer builds
 * set 10).
 */
#include "check_run.h"
#include <poll.h>
#include <sched.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chan_util.h"

static struct wave_chan_opts small_ring(uint32_t slots)
{
	struct wave_chan_opts o;
	wave_chan_opts_init(&o);
	o.host_to_agent_slots = slots;
	o.agent_to_host_slots = slots;
	return o;
}

/* Bulk-sends all @n, which must fit: at once on shared memory; on fabric://
 * once the credit in flight has arrived. */
static void bulk_all(struct wave_chan *ch, const struct wave_msg *m, unsigned n)
{
	int r;

	while ((r = wave_chan_send_bulk(ch, m, n)) == -EAGAIN && transport_is_fabric())
		wave_chan_wait(ch, 1000000);
	ck_assert_int_eq(r, (int)n);
}

/* Burst-sends from @m (asking for the rest of @ask each time) until exactly
 * @expect are accepted; no call may take more. Shared memory must take them
 * in one call. */
static void burst_expect(struct wave_chan *ch, const struct wave_msg *m, unsigned ask,
			 unsigned expect)
{
	unsigned got = 0;

	for (;;) {
		int k = wave_chan_send_burst(ch, m + got, ask - got);
		ck_assert_msg(k >= 0, "send: %s", wave_strerror(k));
		ck_assert_msg(got + (unsigned)k <= expect, "accepted %u, room for %u only",
			      got + (unsigned)k, expect);
		got += (unsigned)k;
		if (got == expect)
			return;
		ck_assert_msg(transport_is_fabric(), "accepted %u of the %u there is room for",
			      got, expect);
		wave_chan_wait(ch, 1000000); /* progress: the credit is on its way */
	}
}

START_TEST(one_message_both_ways)
{
	struct pair p;
	struct wave_msg m, r;
	uint64_t before;

	pair_open(&p, NULL);
	ck_assert_int_eq(wave_chan_role(p.host), WAVE_ROLE_HOST);
	ck_assert_int_eq(wave_chan_role(p.agent), WAVE_ROLE_AGENT);
	msg_make(&m, 42);
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	before = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	ck_assert_int_eq(wave_chan_send_burst(p.host, &m, 1), 1);
	ck_assert_int_eq(wave_chan_wait(p.agent, -1), 1);
	ck_assert_int_eq(wave_chan_recv_burst(p.agent, &r, 1), 1);
	ck_assert_int_eq(msg_check(&r, 42), 0);
	ck_assert_uint_eq(r.seq, 1);
	ck_assert_uint_ge(r.tstamp, before);
	/* and back */
	msg_make(&m, 43);
	ck_assert_int_eq(wave_chan_send_bulk(p.agent, &m, 1), 1);
	recv_expect(p.host, 43, 1, 1);
	ck_assert_int_eq(wave_chan_recv_burst(p.host, &r, 1), 0);
	pair_close(&p);
}
END_TEST

/* Thousands of laps of a 4-slot ring, in bursts that do not divide it. */
START_TEST(wrap_around)
{
	struct wave_chan_opts o = small_ring(4);
	struct wave_msg m[3];
	struct pair p;
	uint64_t n = 0;

	pair_open(&p, &o);
	for (int lap = 0; lap < 4000; lap++) {
		for (int i = 0; i < 3; i++)
			msg_make(&m[i], n + (uint64_t)i);
		bulk_all(p.host, m, 3);
		recv_expect(p.agent, n, 3, (uint32_t)n + 1);
		n += 3;
	}
	pair_close(&p);
}
END_TEST

START_TEST(full_ring_is_backpressure)
{
	struct wave_chan_opts o = small_ring(8);
	struct wave_chan_stats st;
	struct wave_msg m[20];
	struct pair p;

	pair_open(&p, &o);
	for (int i = 0; i < 20; i++)
		msg_make(&m[i], (uint64_t)i);
	burst_expect(p.host, m, 20, 8);
	/* The reader has taken nothing: no credit can be on its way. */
	ck_assert_int_eq(wave_chan_send_burst(p.host, m + 8, 12), 0);
	ck_assert_int_eq(wave_chan_send_bulk(p.host, m + 8, 1), -EAGAIN);
	recv_expect(p.agent, 0, 3, 1);
	/* room for exactly three more; bulk of four must leave the ring alone */
	ck_assert_int_eq(wave_chan_send_bulk(p.host, m + 8, 4), -EAGAIN);
	burst_expect(p.host, m + 8, 12, 3);
	recv_expect(p.agent, 3, 8, 4);
	burst_expect(p.host, m + 11, 9, 8);
	recv_expect(p.agent, 11, 8, 12);
	burst_expect(p.host, m + 19, 1, 1);
	recv_expect(p.agent, 19, 1, 20);
	ck_assert_int_eq(wave_chan_stats(p.host, &st), 0);
	ck_assert_uint_eq(st.sent, 20);
	if (transport_is_fabric())
		ck_assert_uint_ge(st.send_full, 6); /* and one per retry */
	else
		ck_assert_uint_eq(st.send_full, 6);
	ck_assert_int_eq(wave_chan_stats(p.agent, &st), 0);
	ck_assert_uint_eq(st.received, 20);
	pair_close(&p);
}
END_TEST

/* Every batch size from 1 to the ring size, both ways. */
START_TEST(batch_sizes)
{
	struct wave_chan_opts o = small_ring(64);
	struct wave_msg m[64];
	struct pair p;
	uint64_t n = 0;

	pair_open(&p, &o);
	for (unsigned b = 1; b <= 64; b++) {
		for (unsigned i = 0; i < b; i++)
			msg_make(&m[i], n + i);
		bulk_all(p.host, m, b);
		bulk_all(p.agent, m, b);
		recv_expect(p.agent, n, b, (uint32_t)n + 1);
		recv_expect(p.host, n, b, (uint32_t)n + 1);
		n += b;
	}
	pair_close(&p);
}
END_TEST

START_TEST(bad_arguments)
{
	struct wave_msg m[2];
	struct pair p;
	struct wave_chan_stats st;

	pair_open(&p, NULL);
	msg_make(&m[0], 1);
	msg_make(&m[1], 2);
	m[1].type = 0;
	ck_assert_int_eq(wave_chan_send_burst(NULL, m, 1), -EINVAL);
	ck_assert_int_eq(wave_chan_send_burst(p.host, NULL, 1), -EINVAL);
	ck_assert_int_eq(wave_chan_send_burst(p.host, m, 0), -EINVAL);
	ck_assert_int_eq(wave_chan_send_burst(p.host, m, WAVE_CHAN_MAX_SLOTS + 1), -EINVAL);
	ck_assert_int_eq(wave_chan_send_burst(p.host, m, 2), -EINVAL); /* type 0: nothing sent */
	ck_assert_int_eq(wave_chan_recv_burst(p.agent, m, 0), -EINVAL);
	ck_assert_int_eq(wave_chan_recv_burst(p.agent, NULL, 1), -EINVAL);
	ck_assert_int_eq(wave_chan_recv_burst(p.agent, m, 2), 0);
	ck_assert_int_eq(wave_chan_wait(NULL, 0), -EINVAL);
	ck_assert_int_eq(wave_chan_stats(p.host, NULL), -EINVAL);
	ck_assert_int_eq(wave_chan_stats(p.host, &st), 0);
	ck_assert_uint_eq(st.sent, 0);
	ck_assert_int_eq(wave_chan_role(NULL), -EINVAL);
	pair_close(&p);
}
END_TEST

START_TEST(close_drains_then_reports_closed)
{
	struct wave_msg m[3], r;
	struct pair p;

	pair_open(&p, NULL);
	for (int i = 0; i < 3; i++)
		msg_make(&m[i], (uint64_t)i);
	ck_assert_int_eq(wave_chan_send_bulk(p.host, m, 3), 3);
	wave_chan_close(p.host);
	p.host = NULL;
	ck_assert_int_eq(wave_chan_wait(p.agent, -1), 1);
	recv_expect(p.agent, 0, 3, 1);
	ck_assert_int_eq(wave_chan_wait(p.agent, -1), 1);
	ck_assert_int_eq(wave_chan_recv_burst(p.agent, &r, 1), -WAVE_ECLOSED);
	ck_assert_int_eq(wave_chan_recv_burst(p.agent, &r, 1), -WAVE_ECLOSED);
	ck_assert_int_eq(wave_chan_send_burst(p.agent, m, 1), -WAVE_ECLOSED);
	pair_close(&p);
}
END_TEST

START_TEST(wait_times_out_when_idle)
{
	struct pair p;

	pair_open(&p, NULL);
	ck_assert_int_eq(wave_chan_wait(p.agent, 0), 0);
	ck_assert_int_eq(wave_chan_wait(p.agent, 2000000), 0);
	pair_close(&p);
}
END_TEST

struct sleeper {
	struct wave_chan *ch;
	int ret;
};

static void *sleep_then_recv(void *a)
{
	struct sleeper *s = a;
	s->ret = wave_chan_wait(s->ch, -1);
	if (s->ret == 1)
		recv_expect(s->ch, 7, 1, 1);
	return NULL;
}

/* The reader sleeps on its doorbell; the writer must ring it. */
START_TEST(doorbell_wakes_sleeper)
{
	struct wave_chan_opts o;
	struct wave_chan_stats st;
	struct sleeper s;
	struct wave_msg m;
	struct pair p;
	pthread_t t;

	wave_chan_opts_init(&o);
	o.spin_ns = 0; /* sleep at once */
	pair_open(&p, &o);
	s.ch = p.agent;
	ck_assert_int_eq(pthread_create(&t, NULL, sleep_then_recv, &s), 0);
	/* Not a timing assumption: loop until the reader reports a sleep. */
	do {
		usleep(1000);
		wave_chan_stats(p.agent, &st);
	} while (st.sleeps == 0);
	msg_make(&m, 7);
	ck_assert_int_eq(wave_chan_send_burst(p.host, &m, 1), 1);
	pthread_join(t, NULL);
	ck_assert_int_eq(s.ret, 1);
	/* fabric:// rings no doorbell of its own: the provider's completion
	 * queue wakes the sleeper. */
	wave_chan_stats(p.host, &st);
	if (!transport_is_fabric())
		ck_assert_uint_ge(st.wakeups, 1);
	pair_close(&p);
}
END_TEST

/* A busy reader costs the writer no doorbells. */
START_TEST(no_doorbell_for_a_polling_reader)
{
	struct wave_chan_stats st;
	struct wave_msg m;
	struct pair p;

	pair_open(&p, NULL);
	for (uint64_t i = 0; i < 1000; i++) {
		msg_make(&m, i);
		ck_assert_int_eq(wave_chan_send_burst(p.host, &m, 1), 1);
		recv_expect(p.agent, i, 1, (uint32_t)i + 1);
	}
	wave_chan_stats(p.host, &st);
	ck_assert_uint_eq(st.wakeups, 0);
	pair_close(&p);
}
END_TEST

START_TEST(pollable_fd)
{
	struct wave_msg m;
	struct pair p;
	int fd;

	pair_open(&p, NULL);
	fd = wave_chan_fd(p.agent);
	if (transport_is("file")) {
		ck_assert_int_eq(fd, -ENOTSUP);
		pair_close(&p);
		return;
	}
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(wave_chan_trywait(p.agent), 0);
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	ck_assert_int_eq(poll(&pf, 1, 0), 0);
	msg_make(&m, 9);
	ck_assert_int_eq(wave_chan_send_burst(p.host, &m, 1), 1);
	ck_assert_int_eq(poll(&pf, 1, -1), 1);
	ck_assert_int_eq(wave_chan_trywait(p.agent), -EAGAIN);
	recv_expect(p.agent, 9, 1, 1);
	ck_assert_int_eq(wave_chan_trywait(p.agent), 0);
	ck_assert_int_eq(poll(&pf, 1, 0), 0);
	/* the peer closing wakes the fd too */
	wave_chan_close(p.host);
	p.host = NULL;
	ck_assert_int_eq(poll(&pf, 1, -1), 1);
	ck_assert_int_eq(wave_chan_recv_burst(p.agent, &m, 1), -WAVE_ECLOSED);
	pair_close(&p);
}
END_TEST

/* A quiet send does not wake a sleeping peer until the ring is half full
 * or wave_chan_notify() says so; the messages are there all along.
 * Counted by the sender's wake-ups: no timing. */
START_TEST(quiet_send_defers_the_doorbell)
{
	struct wave_chan_opts o = small_ring(64);
	struct wave_chan_stats st;
	struct wave_msg m[32];
	struct pair p;

	pair_open(&p, &o);
	for (unsigned i = 0; i < 32; i++)
		msg_make(&m[i], i + 1);
	ck_assert_int_eq(wave_chan_send_quiet(NULL, m, 1), -EINVAL);
	ck_assert_int_eq(wave_chan_notify(NULL), -EINVAL);
	if (transport_is_fabric()) { /* a frame wakes its receiver: a send */
		ck_assert_int_eq(wave_chan_send_quiet(p.host, m, 1), 1);
		ck_assert_int_eq(wave_chan_notify(p.host), 0);
		recv_expect(p.agent, 1, 1, 1);
		pair_close(&p);
		return;
	}
	ck_assert_int_eq(wave_chan_trywait(p.agent), 0); /* the agent goes to sleep */
	ck_assert_int_eq(wave_chan_send_quiet(p.host, m, 31), 31); /* 33 of 64 slots left */
	wave_chan_stats(p.host, &st);
	ck_assert_uint_eq(st.wakeups, 0);
	ck_assert_int_eq(wave_chan_notify(p.host), 0);
	wave_chan_stats(p.host, &st);
	ck_assert_uint_eq(st.wakeups, 1);
	recv_expect(p.agent, 1, 31, 1);
	/* Asleep again: the message that leaves half the ring or less rings. */
	ck_assert_int_eq(wave_chan_trywait(p.agent), 0);
	ck_assert_int_eq(wave_chan_send_quiet(p.host, m, 31), 31);
	wave_chan_stats(p.host, &st);
	ck_assert_uint_eq(st.wakeups, 1);
	ck_assert_int_eq(wave_chan_send_quiet(p.host, &m[31], 1), 1);
	wave_chan_stats(p.host, &st);
	ck_assert_uint_eq(st.wakeups, 2);
	recv_expect(p.agent, 1, 32, 32);
	/* Awake (not armed), notify rings nothing. */
	ck_assert_int_eq(wave_chan_notify(p.host), 0);
	wave_chan_stats(p.host, &st);
	ck_assert_uint_eq(st.wakeups, 2);
	pair_close(&p);
}
END_TEST

/* Latency emulation never hands out a message before tstamp + delay. */
START_TEST(latency_emulation_holds_messages)
{
	struct wave_chan_opts o;
	struct wave_msg m, r;
	struct timespec ts;
	struct pair p;

	wave_chan_opts_init(&o);
	o.delay_ns = 300000;
	pair_open(&p, &o);
	for (uint64_t i = 0; i < 20; i++) {
		msg_make(&m, i);
		ck_assert_int_eq(wave_chan_send_burst(p.host, &m, 1), 1);
		int k;
		while ((k = wave_chan_recv_burst(p.agent, &r, 1)) == 0)
			ck_assert_int_eq(wave_chan_wait(p.agent, -1), 1);
		ck_assert_int_eq(k, 1);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
		ck_assert_uint_ge(now, r.tstamp + o.delay_ns);
		ck_assert_int_eq(msg_check(&r, i), 0);
	}
	pair_close(&p);
}
END_TEST

/* Ends opened with WAVE_CHAN_F_NO_STAMP send tstamp 0 and the rest intact,
 * both ways; a receiver emulating latency delivers such messages at once
 * (a minute's delay would hold a stamped one for a minute). */
START_TEST(unstamped_messages)
{
	struct wave_chan_opts o;
	struct wave_msg m[3], r[3];
	struct pair p;

	wave_chan_opts_init(&o);
	o.flags |= WAVE_CHAN_F_NO_STAMP;
	o.delay_ns = 60000000000ull;
	pair_open(&p, &o);
	for (uint64_t i = 0; i < 3; i++)
		msg_make(&m[i], i);
	bulk_all(p.host, m, 3);
	ck_assert_int_eq(wave_chan_wait(p.agent, WAVE_MS(10000)), 1);
	ck_assert_int_eq(wave_chan_recv_burst(p.agent, r, 3), 3);
	for (uint64_t i = 0; i < 3; i++) {
		ck_assert_int_eq(msg_check(&r[i], i), 0);
		ck_assert_uint_eq(r[i].seq, i + 1);
		ck_assert_uint_eq(r[i].tstamp, 0);
	}
	bulk_all(p.agent, m, 1);
	ck_assert_int_eq(wave_chan_wait(p.host, WAVE_MS(10000)), 1);
	ck_assert_int_eq(wave_chan_recv_burst(p.host, r, 1), 1);
	ck_assert_int_eq(msg_check(&r[0], 0), 0);
	ck_assert_uint_eq(r[0].tstamp, 0);
	pair_close(&p);
}
END_TEST

/*
 * Two processes, both directions at once, millions of messages each way
 * (10 million over shared memory, 2 million over fabric://, a tenth of that
 * in the sanitizer builds), every one verified: nothing lost, duplicated,
 * reordered or corrupted.
 */
static uint64_t stress_msgs(void)
{
	return test_scaled(transport_is_fabric() ? 2000000ull : 10000000ull);
}

/*
 * Hot loop: returns NULL when all went well, or what went wrong. Check is not
 * called here because every passing ck_assert reports progress through a
 * pipe (a system call), and because a failing side in a child process must
 * be reported by the parent, with the child's exit status.
 *
 * Sends use bursts of 1..32 messages, or with @bulk all-or-nothing sends of
 * 1..64 (which must return all or -EAGAIN, never a part).
 */
static const char *stress_side_mode(struct wave_chan *ch, uint64_t total, bool bulk)
{
	static __thread char why[160];
	struct wave_msg out[64], in[32];
	uint64_t sent = 0, got = 0;

	while (sent < total || got < total) {
		int just_sent = 0;
		if (sent < total) {
			unsigned b = bulk ? (unsigned)(1 + sent % 64) : (unsigned)(1 + sent % 32);
			if (b > total - sent)
				b = (unsigned)(total - sent);
			for (unsigned i = 0; i < b; i++)
				msg_make(&out[i], sent + i);
			int k = bulk ? wave_chan_send_bulk(ch, out, b) : wave_chan_send_burst(ch, out, b);
			if (bulk && k == -EAGAIN)
				k = 0;
			if (k < 0 || (bulk && k != 0 && k != (int)b)) {
				snprintf(why, sizeof(why), "send of %u after %llu: %s", b,
					 (unsigned long long)sent,
					 k < 0 ? wave_strerror(k) : "bulk sent a part");
				return why;
			}
			sent += (unsigned)k;
			just_sent = k;
		}
		if (got == total) {
			/* The peer may have closed already: do not receive. A
			 * full ring: let the reader run (on a loaded machine it
			 * may share our core; a fabric:// wait also progresses);
			 * a failure shows at the next send. */
			if (just_sent == 0)
				(void)wave_chan_wait(ch, 100000);
			continue;
		}
		int k = wave_chan_recv_burst(ch, in, 32);
		if (k < 0) {
			snprintf(why, sizeof(why), "recv after %llu of %llu (sent %llu): %s",
				 (unsigned long long)got, (unsigned long long)total,
				 (unsigned long long)sent, wave_strerror(k));
			return why;
		}
		for (int i = 0; i < k; i++, got++)
			if (msg_check(&in[i], got) != 0 || in[i].seq != (uint32_t)(got + 1)) {
				snprintf(why, sizeof(why), "message %llu corrupt or out of order",
					 (unsigned long long)got);
				return why;
			}
		/* Nothing arrived: wait for the peer (woken by its next
		 * message) rather than spin against it; for good once all is
		 * sent, else briefly, and only when our send did not move. */
		if (k == 0 && (sent == total || just_sent == 0) &&
		    wave_chan_wait(ch, sent == total ? -1 : 100000) < 0)
			return "wait failed";
	}
	return NULL;
}

static const char *stress_side(struct wave_chan *ch, uint64_t total)
{
	return stress_side_mode(ch, total, false);
}

/* fabric:// tells a peer that is silent for disconnect_timeout_ms dead; the
 * cases across processes block on pipes, so they use a long one (it only
 * bounds how long a close waits for a peer that makes no calls). */
static struct wave_chan_opts proc_opts(uint32_t slots)
{
	struct wave_chan_opts o = small_ring(slots);
	o.disconnect_timeout_ms = 60000;
	return o; /* pair_fork() waits long enough to open */
}

static void child_ok(pid_t pid, const char *agent_err)
{
	int status;

	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(!agent_err && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "agent side: %s; host side: %s %d", agent_err ? agent_err : "ok",
		      WIFEXITED(status) ? "exit" : "signal",
		      WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

static void stress_processes(bool bulk, uint64_t total)
{
	struct wave_chan_opts o = proc_opts(256);
	const char *err;
	struct pair p;
	pid_t pid;

	pid = pair_fork(&p, &o);
	if (pid == 0) {
		err = stress_side_mode(p.host, total, bulk);
		if (err)
			fprintf(stderr, "host side: %s\n", err);
		wave_chan_close(p.host);
		_exit(err ? 1 : 0);
	}
	err = stress_side_mode(p.agent, total, bulk);
	/* Read on to the end: a fabric:// close waits for this end to take
	 * its BYE (see wave_chan_close()). */
	if (!err) {
		struct wave_msg x;
		int r;
		while ((r = wave_chan_recv_burst(p.agent, &x, 1)) == 0)
			wave_chan_wait(p.agent, -1);
		if (r != -WAVE_ECLOSED)
			err = "no end of stream after the host closed";
	}
	child_ok(pid, err);
	pair_close(&p);
}

START_TEST(two_processes_millions)
{
	stress_processes(false, stress_msgs());
}
END_TEST

/* Batching: all-or-nothing sends of every size from 1 to 64, both ways. */
START_TEST(two_processes_bulk_batches)
{
	stress_processes(true, test_scaled(500000));
}
END_TEST

/* Pipes between the two processes of a case: a byte means "go on". */
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

/*
 * A reader that stops reading makes its writer see backpressure (0 accepted
 * by a burst, -EAGAIN from a bulk), never a loss or an error; once it reads
 * again, everything arrives in order.
 */
START_TEST(backpressure_across_processes)
{
	struct wave_chan_opts o = proc_opts(256);
	int full[2];
	const uint64_t total = 256 + 5000;
	struct pair p;
	pid_t pid;

	ck_assert_int_eq(pipe(full), 0);
	pid = pair_fork(&p, &o);
	if (pid == 0) {
		struct wave_chan_stats st;
		struct wave_msg m[32];
		uint64_t sent = 0;
		int r;
		/* Fill the agent's ring; it reads nothing until told. */
		while (sent < 256) {
			for (unsigned i = 0; i < 32; i++)
				msg_make(&m[i], sent + i);
			r = wave_chan_send_burst(p.host, m, 32);
			if (r < 0 || sent + (unsigned)r > 256)
				_exit(2);
			if (r == 0 && !transport_is_fabric())
				_exit(3); /* shared memory: room is seen at once */
			if (r == 0)
				wave_chan_wait(p.host, 1000000);
			sent += (unsigned)r;
		}
		if (wave_chan_send_burst(p.host, m, 32) != 0 ||
		    wave_chan_send_bulk(p.host, m, 1) != -EAGAIN)
			_exit(4);
		if (wave_chan_stats(p.host, &st) != 0 || st.send_full < 2 || st.sent != 256)
			_exit(5);
		sync_post(full[1]);
		/* The agent reads now: the rest goes through as it does. */
		while (sent < total) {
			unsigned n = total - sent < 32 ? (unsigned)(total - sent) : 32;
			for (unsigned i = 0; i < n; i++)
				msg_make(&m[i], sent + i);
			r = wave_chan_send_bulk(p.host, m, n);
			if (r != (int)n && r != -EAGAIN)
				_exit(6);
			if (r > 0)
				sent += (unsigned)r;
			else
				wave_chan_wait(p.host, 1000000); /* progress; nothing to receive */
		}
		/* Stay until the agent has everything (its close ends ours). */
		struct wave_msg x;
		while ((r = wave_chan_recv_burst(p.host, &x, 1)) == 0)
			wave_chan_wait(p.host, -1);
		wave_chan_close(p.host);
		_exit(r == -WAVE_ECLOSED ? 0 : 7);
	}
	sync_wait(full[0]);
	recv_expect(p.agent, 0, (unsigned)total, 1);
	wave_chan_close(p.agent);
	p.agent = NULL;
	child_ok(pid, NULL);
	close(full[0]);
	close(full[1]);
	pair_close(&p);
}
END_TEST

/*
 * Close and reopen: three channels in a row on the same URI (the same
 * listener, or the same file laid out again), each a fresh sequence from 1
 * with its messages intact; each close is seen by the other end as the end
 * of the stream, after every message sent before it.
 */
#define REOPEN_ROUNDS 3
#define REOPEN_MSGS 3000u

START_TEST(close_and_reopen)
{
	struct wave_chan_opts o = proc_opts(64);
	int ready[2];
	struct pair p;
	pid_t pid;

	ck_assert_int_eq(pipe(ready), 0);
	pid = pair_fork(&p, &o);
	if (pid == 0) {
		for (int round = 0; round < REOPEN_ROUNDS; round++) {
			if (round > 0) {
				sync_wait(ready[0]);
				if (pair_reopen(&p, WAVE_ROLE_HOST, &o) != 0)
					_exit(10 + round);
			}
			const char *err = stress_side(p.host, REOPEN_MSGS);
			if (err) {
				fprintf(stderr, "host, round %d: %s\n", round, err);
				_exit(1);
			}
			wave_chan_close(p.host);
			p.host = NULL;
		}
		_exit(0);
	}
	for (int round = 0; round < REOPEN_ROUNDS; round++) {
		struct wave_msg x;
		int r;
		if (round > 0) {
			if (transport_is("file"))
				ck_assert_int_eq(pair_reopen(&p, WAVE_ROLE_AGENT, &o), 0);
			sync_post(ready[1]);
			if (!transport_is("file"))
				ck_assert_int_eq(pair_reopen(&p, WAVE_ROLE_AGENT, &o), 0);
		}
		const char *err = stress_side(p.agent, REOPEN_MSGS);
		ck_assert_msg(!err, "agent, round %d: %s", round, err);
		while ((r = wave_chan_recv_burst(p.agent, &x, 1)) == 0)
			ck_assert_int_ge(wave_chan_wait(p.agent, -1), 0);
		ck_assert_int_eq(r, -WAVE_ECLOSED);
		wave_chan_close(p.agent);
		p.agent = NULL;
	}
	child_ok(pid, NULL);
	close(ready[0]);
	close(ready[1]);
	pair_close(&p);
}
END_TEST

/* The same exchange between two threads, so TSan sees both sides. */
struct thread_side {
	struct wave_chan *ch;
};

/* Each side closes its end when done, while the other may still be
 * reading: a fabric:// close waits for a peer that still has messages of
 * ours to take, and only a peer that makes calls can answer. */
static void *thread_stress(void *a)
{
	struct thread_side *t = a;
	const char *err = stress_side(t->ch, test_scaled(500000));

	if (err)
		ck_abort_msg("%s", err);
	wave_chan_close(t->ch);
	return NULL;
}

/* Threads of one process, both ends busy: on a loaded machine (or under
 * TSan) a thread may not run for longer than fabric's default 500 ms, which
 * would be taken for a dead peer. */
static struct wave_chan_opts thread_opts(void)
{
	struct wave_chan_opts o = small_ring(16);
	o.disconnect_timeout_ms = 30000;
	return o;
}

START_TEST(two_threads_both_ways)
{
	struct wave_chan_opts o = thread_opts();
	struct thread_side a, b;
	struct pair p;
	pthread_t t;

	pair_open(&p, &o);
	a.ch = p.host;
	b.ch = p.agent;
	p.host = p.agent = NULL; /* each thread closes its own */
	ck_assert_int_eq(pthread_create(&t, NULL, thread_stress, &a), 0);
	thread_stress(&b);
	pthread_join(t, NULL);
	pair_close(&p);
}
END_TEST

/* One thread sends and another receives on the same end, as channel.h
 * allows; the agent echoes. TSan checks the split. */
#define SPLIT_MSGS ((unsigned)test_scaled(transport_is_fabric() ? 100000 : 300000))

static void *split_sender(void *a)
{
	struct wave_chan *ch = a;
	struct wave_msg m[8];

	for (uint64_t n = 0; n < SPLIT_MSGS;) {
		unsigned b = SPLIT_MSGS - n < 8 ? (unsigned)(SPLIT_MSGS - n) : 8;
		for (unsigned i = 0; i < b; i++)
			msg_make(&m[i], n + i);
		int k = wave_chan_send_burst(ch, m, b);
		if (k < 0)
			ck_abort_msg("send: %s", wave_strerror(k));
		if (k == 0)
			sched_yield(); /* full: the receiving thread may need our core */
		n += (unsigned)k;
	}
	return NULL;
}

static void *echo(void *a)
{
	struct wave_chan *ch = a;
	struct wave_msg m[8];
	uint64_t n = 0;

	while (n < SPLIT_MSGS) {
		int k = wave_chan_recv_burst(ch, m, 8);
		if (k < 0)
			ck_abort_msg("echo recv: %s", wave_strerror(k));
		if (k == 0 && wave_chan_wait(ch, 100000) < 0)
			ck_abort_msg("echo wait failed");
		for (int done = 0; done < k;) {
			int s = wave_chan_send_burst(ch, m + done, (unsigned)(k - done));
			if (s < 0)
				ck_abort_msg("echo send: %s", wave_strerror(s));
			done += s;
		}
		n += (unsigned)k;
	}
	wave_chan_close(ch); /* while the host still takes the last echoes */
	return NULL;
}

START_TEST(send_and_receive_on_separate_threads)
{
	struct wave_chan_opts o = thread_opts();
	pthread_t tx, agent;
	struct pair p;

	pair_open(&p, &o);
	ck_assert_int_eq(pthread_create(&agent, NULL, echo, p.agent), 0);
	ck_assert_int_eq(pthread_create(&tx, NULL, split_sender, p.host), 0);
	recv_expect(p.host, 0, SPLIT_MSGS, 1);
	pthread_join(tx, NULL);
	pthread_join(agent, NULL);
	p.agent = NULL; /* closed by the echo thread */
	pair_close(&p);
}
END_TEST

int main(int argc, char **argv)
{
	Suite *s;
	TCase *tc;

	if (argc > 1)
		test_transport = argv[1];
	if (!transport_is("shm") && !transport_is("file") && !transport_is("fabric-tcp") &&
	    !transport_is("fabric-shm")) {
		fprintf(stderr, "usage: %s shm|file|fabric-tcp|fabric-shm\n", argv[0]);
		return 2;
	}
	/* libfabric initialises once per process (about 0.3 s here, most of
	 * it reading /proc/kallsyms, far more under TSan). Do it here, once:
	 * every case runs in a fork() of this process and inherits it. */
	if (transport_is_fabric()) {
		struct wave_chan_listener *l;
		char uri[160];
		/* Any listener will do (a shm name takes no port another test
		 * might want); if it fails, the cases pay instead. */
		snprintf(uri, sizeof(uri), "fabric://shm/warm%d", (int)getpid());
		if (wave_chan_listen(uri, NULL, &l) == 0)
			wave_chan_listener_close(l);
	}
	s = suite_create(test_transport);
	/* Both ends in this process (see the top of the file for fabric-shm). */
	if (!transport_is("fabric-shm")) {
		tc = tcase_create("conformance");
		tcase_set_timeout(tc, 300);
		tcase_add_test(tc, one_message_both_ways);
		tcase_add_test(tc, wrap_around);
		tcase_add_test(tc, full_ring_is_backpressure);
		tcase_add_test(tc, batch_sizes);
		tcase_add_test(tc, bad_arguments);
		tcase_add_test(tc, close_drains_then_reports_closed);
		tcase_add_test(tc, wait_times_out_when_idle);
		tcase_add_test(tc, doorbell_wakes_sleeper);
		tcase_add_test(tc, no_doorbell_for_a_polling_reader);
		tcase_add_test(tc, pollable_fd);
		tcase_add_test(tc, quiet_send_defers_the_doorbell);
		tcase_add_test(tc, latency_emulation_holds_messages);
		tcase_add_test(tc, unstamped_messages);
		suite_add_tcase(s, tc);
		tc = tcase_create("threads");
		tcase_set_timeout(tc, 600);
		tcase_add_test(tc, two_threads_both_ways);
		tcase_add_test(tc, send_and_receive_on_separate_threads);
		suite_add_tcase(s, tc);
	}
	tc = tcase_create("processes");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, two_processes_millions);
	tcase_add_test(tc, two_processes_bulk_batches);
	tcase_add_test(tc, backpressure_across_processes);
	tcase_add_test(tc, close_and_reopen);
	suite_add_tcase(s, tc);
	return wave_check_run(s);
}
