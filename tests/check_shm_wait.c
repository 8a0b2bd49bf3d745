/* SPDX-License-Identifier: MIT */
/*
 * Waiting on shm:// and file:// channels: latency emulation at close and
 * while checking for readiness, and the sleep that replaces the futex
 * doorbell where the mapping cannot hold one. Linked with the static library
 * for the futex test hook.
 */
#include "check_run.h"
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chan/shm.h"
#include "chan_util.h"
#include "core/core.h"

#define MS 1000000ull

/* The transports of this file, chosen by a loop test's _i. */
static const char *const transports[] = { "shm", "file" };

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * Receives until the channel reports its end and returns how many messages
 * came: each must be msg_make(count so far) and not handed out before its
 * stamp + @delay_ns. Only polls (a wait would sleep past the delay and hide
 * an early end): the end must not come while a message is held back.
 */
static unsigned drain_until_closed(struct wave_chan *ch, uint64_t delay_ns)
{
	struct wave_msg m[8];
	unsigned got = 0;
	int k;

	while ((k = wave_chan_recv_burst(ch, m, 8)) != -WAVE_ECLOSED) {
		ck_assert_msg(k >= 0, "recv: %s", wave_strerror(k));
		uint64_t now = wave_now_ns();
		for (int i = 0; i < k; i++, got++) {
			ck_assert_int_eq(msg_check(&m[i], got), 0);
			ck_assert_uint_ge(now, m[i].tstamp + delay_ns);
		}
	}
	return got;
}

static void send_n(struct wave_chan *ch, unsigned n)
{
	struct wave_msg m;

	for (unsigned i = 0; i < n; i++) {
		msg_make(&m, i);
		ck_assert_int_eq(wave_chan_send_burst(ch, &m, 1), 1);
	}
}

/* Close delivers what was sent first, also while it is held back by the
 * emulated latency: every message, then WAVE_ECLOSED. */
START_TEST(close_delivers_delayed_messages)
{
	struct wave_chan_opts o;
	struct pair p;

	test_transport = transports[_i];
	wave_chan_opts_init(&o);
	o.delay_ns = 300 * MS;
	pair_open(&p, &o);
	send_n(p.host, 5);
	wave_chan_close(p.host);
	p.host = NULL;
	ck_assert_uint_eq(drain_until_closed(p.agent, o.delay_ns), 5);
	pair_close(&p);
}
END_TEST

/* The same when the peer is killed without closing (shm:// sees it on the
 * rendezvous socket). */
START_TEST(killed_peer_delivers_delayed_messages)
{
	struct wave_chan_opts o;
	struct pair p;
	int status;
	pid_t pid;

	test_transport = "shm";
	wave_chan_opts_init(&o);
	o.delay_ns = 300 * MS;
	pid = pair_fork(&p, &o);
	if (pid == 0) {
		send_n(p.host, 5);
		raise(SIGKILL);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFSIGNALED(status));
	ck_assert_uint_eq(drain_until_closed(p.agent, o.delay_ns), 5);
	pair_close(&p);
}
END_TEST

/* Checking for readiness never waits out the emulated latency: with a
 * message held back for a second, trywait and wait(0) return at once, and a
 * blocking wait sleeps until the message is due. The bounds are on blocking
 * (a call that spun through the delay takes a second), not on speed. */
START_TEST(readiness_check_does_not_wait_out_delay)
{
	struct wave_chan_opts o;
	struct pair p;
	uint64_t sent_at, t0, dt, c0, cpu;
	int r;

	test_transport = transports[_i];
	wave_chan_opts_init(&o);
	o.delay_ns = 1000 * MS;
	pair_open(&p, &o);
	sent_at = wave_now_ns();
	send_n(p.host, 1);

	t0 = wave_now_ns();
	r = wave_chan_trywait(p.agent);
	dt = wave_now_ns() - t0;
	/* -EAGAIN: something is on its way (receive, or check again soon). */
	ck_assert_int_eq(r, -EAGAIN);
	ck_assert_msg(dt < 100 * MS, "trywait blocked %llu ms", (unsigned long long)(dt / MS));

	t0 = wave_now_ns();
	r = wave_chan_wait(p.agent, 0);
	dt = wave_now_ns() - t0;
	ck_assert_msg(dt < 100 * MS, "wait(0) blocked %llu ms", (unsigned long long)(dt / MS));
	/* Ready only if a stalled machine let the whole delay pass. */
	ck_assert(r == 0 || (r == 1 && t0 + dt >= sent_at + o.delay_ns));

	t0 = wave_now_ns();
	c0 = thread_cpu_ns();
	r = wave_chan_wait(p.agent, -1);
	dt = wave_now_ns() - t0;
	cpu = thread_cpu_ns() - c0;
	ck_assert_int_eq(r, 1);
	recv_expect(p.agent, 0, 1, 1);
	/* The wait slept rather than spun (checked only when it was long). */
	if (dt > 200 * MS)
		ck_assert_msg(cpu < dt / 4, "wait used %llu ms of CPU in %llu ms",
			      (unsigned long long)(cpu / MS), (unsigned long long)(dt / MS));
	pair_close(&p);
}
END_TEST

/* ---- file:// where the mapping cannot hold a futex ------------------------ */

struct late_sender {
	pthread_t t;
	struct wave_chan *ch;
};

static void *late_send(void *a)
{
	struct late_sender *s = a;
	struct wave_msg m;

	nanosleep(&(struct timespec){ 0, 50 * MS }, NULL);
	msg_make(&m, 0);
	if (wave_chan_send_burst(s->ch, &m, 1) != 1)
		abort();
	return NULL;
}

/*
 * On a PFN-mapped device window futex() fails with EFAULT (forced here by a
 * test hook, as this machine has no such window). A wait with nothing
 * arriving must then sleep, not spin: its CPU time stays far below its wall
 * time. A message that comes meanwhile is still received.
 */
START_TEST(futex_fault_falls_back_to_sleeping)
{
	struct wave_chan_opts o;
	struct late_sender s;
	struct pair p;
	uint64_t t0, dt, c0, cpu;

	test_transport = "file";
	wave_shm_test_futex_fault(true);
	wave_chan_opts_init(&o);
	o.spin_ns = 0;
	pair_open(&p, &o);

	t0 = wave_now_ns();
	c0 = thread_cpu_ns();
	ck_assert_int_eq(wave_chan_wait(p.agent, 300 * MS), 0);
	dt = wave_now_ns() - t0;
	cpu = thread_cpu_ns() - c0;
	ck_assert_uint_ge(dt, 300 * MS);
	ck_assert_msg(cpu < dt / 4, "wait used %llu ms of CPU in %llu ms",
		      (unsigned long long)(cpu / MS), (unsigned long long)(dt / MS));

	s.ch = p.host;
	ck_assert_int_eq(pthread_create(&s.t, NULL, late_send, &s), 0);
	ck_assert_int_eq(wave_chan_wait(p.agent, -1), 1);
	recv_expect(p.agent, 0, 1, 1);
	pthread_join(s.t, NULL);
	pair_close(&p);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("shm_wait");
	TCase *tc = tcase_create("shm_wait");

	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, close_delivers_delayed_messages, 0, 2);
	tcase_add_test(tc, killed_peer_delivers_delayed_messages);
	tcase_add_loop_test(tc, readiness_check_does_not_wait_out_delay, 0, 2);
	tcase_add_test(tc, futex_fault_falls_back_to_sleeping);
	suite_add_tcase(s, tc);
	return wave_check_run(s);
}
