/* SPDX-License-Identifier: MIT */
/*
 * Mailboxes (wave_chan_mbox_put(), wave_chan_mbox_take()) through the
 * public API, once per transport: `check_chan_mbox shm`, `... file`,
 * `... fabric-tcp` (which has none: -ENOTSUP, a count of 0). Hostile
 * mailboxes are in check_shm.c.
 */
#include "check_run.h"
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "chan_util.h"

#define MBOXES 4u

/* Small rings, MBOXES mailboxes, a patient fabric peer. */
static struct wave_chan_opts mbox_opts(void)
{
	struct wave_chan_opts o;

	wave_chan_opts_init(&o);
	o.host_to_agent_slots = 16;
	o.agent_to_host_slots = 16;
	o.disconnect_timeout_ms = 30000;
	o.mailboxes = MBOXES;
	return o;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One message per mailbox, never overwritten: a second put waits for the
 * take. fabric:// has none: the caller falls back to messages. */
START_TEST(mailboxes_hold_one_message_each)
{
	struct wave_chan_opts o = mbox_opts();
	struct wave_chan_stats st;
	struct wave_msg m[3], got;
	struct wave_chan *bad = NULL;
	struct pair p;

	o.mailboxes = WAVE_CHAN_MAX_MAILBOXES + 1;
	ck_assert_int_eq(wave_chan_open("shm:///nonexistent/x", &o, &bad), -EINVAL);
	o.mailboxes = MBOXES;
	pair_open(&p, &o);
	for (int i = 0; i < 3; i++)
		msg_make(&m[i], (uint64_t)i + 1);
	if (transport_is_fabric()) {
		ck_assert_int_eq(wave_chan_mailboxes(p.host), 0);
		ck_assert_int_eq(wave_chan_mailboxes(p.agent), 0);
		ck_assert_int_eq(wave_chan_mbox_put(p.agent, 0, &m[0]), -ENOTSUP);
		ck_assert_int_eq(wave_chan_mbox_take(p.host, 0, &got), -ENOTSUP);
		pair_close(&p);
		return;
	}
	ck_assert_int_eq(wave_chan_mailboxes(p.host), MBOXES);
	ck_assert_int_eq(wave_chan_mailboxes(p.agent), MBOXES);
	ck_assert_int_eq(wave_chan_mailboxes(NULL), -EINVAL);
	ck_assert_int_eq(wave_chan_mbox_take(p.host, 1, &got), 0);
	ck_assert_int_eq(wave_chan_mbox_put(p.agent, 1, &m[0]), 0);
	ck_assert_int_eq(wave_chan_mbox_put(p.agent, 1, &m[1]), -EAGAIN);
	ck_assert_int_eq(wave_chan_mbox_put(p.agent, 3, &m[2]), 0);
	ck_assert_int_eq(wave_chan_mbox_take(p.host, 1, &got), 1);
	ck_assert_int_eq(msg_check(&got, 1), 0);
	ck_assert_uint_eq(got.seq, 1);
	ck_assert_int_eq(wave_chan_mbox_take(p.host, 1, &got), 0);
	ck_assert_int_eq(wave_chan_mbox_put(p.agent, 1, &m[1]), 0);
	ck_assert_int_eq(wave_chan_mbox_take(p.host, 1, &got), 1);
	ck_assert_int_eq(msg_check(&got, 2), 0);
	ck_assert_uint_eq(got.seq, 2);
	ck_assert_int_eq(wave_chan_mbox_take(p.host, 3, &got), 1);
	ck_assert_int_eq(msg_check(&got, 3), 0);
	/* Mailboxes are not the ring: nothing arrived there. */
	ck_assert_int_eq(wave_chan_recv_burst(p.host, &got, 1), 0);

	ck_assert_int_eq(wave_chan_mbox_put(NULL, 0, &m[0]), -EINVAL);
	ck_assert_int_eq(wave_chan_mbox_put(p.agent, 0, NULL), -EINVAL);
	ck_assert_int_eq(wave_chan_mbox_put(p.agent, MBOXES, &m[0]), -EINVAL);
	ck_assert_int_eq(wave_chan_mbox_put(p.host, 0, &m[0]), -EINVAL);
	ck_assert_int_eq(wave_chan_mbox_take(p.agent, 0, &got), -EINVAL);
	ck_assert_int_eq(wave_chan_mbox_take(p.host, MBOXES, &got), -EINVAL);
	ck_assert_int_eq(wave_chan_mbox_take(p.host, 0, NULL), -EINVAL);
	m[0].type = 0;
	ck_assert_int_eq(wave_chan_mbox_put(p.agent, 0, &m[0]), -EINVAL);
	ck_assert_int_eq(wave_chan_mbox_take(p.host, 0, &got), 0);

	ck_assert_int_eq(wave_chan_stats(p.agent, &st), 0);
	ck_assert_uint_eq(st.sent, 3);
	ck_assert_uint_eq(st.send_full, 1);
	ck_assert_int_eq(wave_chan_stats(p.host, &st), 0);
	ck_assert_uint_eq(st.received, 3);
	wave_chan_close(p.host);
	p.host = NULL;
	ck_assert_int_eq(wave_chan_mbox_put(p.agent, 0, &m[1]), -WAVE_ECLOSED);
	pair_close(&p);
}
END_TEST

/* Latency emulation holds a put back like a message. */
START_TEST(mailbox_latency_emulation)
{
	struct wave_chan_opts o = mbox_opts();
	const uint64_t delay = 2000000000u; /* far longer than a stall here */
	struct wave_msg m, got;
	struct pair p;
	uint64_t t0;

	if (transport_is_fabric())
		return; /* no mailboxes: see mailboxes_hold_one_message_each */
	o.delay_ns = delay;
	pair_open(&p, &o);
	msg_make(&m, 9);
	t0 = mono_ns();
	ck_assert_int_eq(wave_chan_mbox_put(p.agent, 0, &m), 0);
	ck_assert_int_eq(wave_chan_mbox_take(p.host, 0, &got), 0);
	ck_assert_int_eq(wave_chan_mbox_put(p.agent, 0, &m), -EAGAIN); /* not taken yet */
	while (wave_chan_mbox_take(p.host, 0, &got) == 0)
		usleep(10000);
	ck_assert_uint_ge(mono_ns() - t0, delay);
	ck_assert_int_eq(msg_check(&got, 9), 0);
	pair_close(&p);
}
END_TEST

/* Concurrent puts and takes over every mailbox: each receives its own
 * messages in order, none lost or seen twice (and TSan checks the
 * ordering of the slot's bytes against its stamp). */
#define MBOX_MSGS ((uint64_t)test_scaled(200000))

static void *mbox_putter(void *a)
{
	struct wave_chan *ch = a;
	uint64_t next[MBOXES] = { 0 };

	for (uint64_t n = 0; n < MBOX_MSGS * MBOXES;) {
		unsigned i = (unsigned)(n % MBOXES);
		struct wave_msg m;
		int ret;

		msg_make(&m, next[i]);
		ret = wave_chan_mbox_put(ch, i, &m);
		if (ret == -EAGAIN) {
			sched_yield(); /* the host may need our core */
			continue;
		}
		ck_assert_int_eq(ret, 0);
		next[i]++;
		n++;
	}
	return NULL;
}

START_TEST(mailboxes_two_threads)
{
	struct wave_chan_opts o = mbox_opts();
	uint64_t next[MBOXES] = { 0 }, done = 0;
	struct pair p;
	pthread_t t;

	if (transport_is_fabric())
		return; /* no mailboxes: see mailboxes_hold_one_message_each */
	pair_open(&p, &o);
	ck_assert_int_eq(pthread_create(&t, NULL, mbox_putter, p.agent), 0);
	while (done < MBOX_MSGS * MBOXES) {
		int got_any = 0;

		for (unsigned i = 0; i < MBOXES; i++) {
			struct wave_msg m;
			int ret = wave_chan_mbox_take(p.host, i, &m);

			ck_assert_int_ge(ret, 0);
			if (ret == 0)
				continue;
			ck_assert_msg(msg_check(&m, next[i]) == 0, "mailbox %u: not message %llu", i,
				      (unsigned long long)next[i]);
			next[i]++;
			done++;
			got_any = 1;
		}
		if (!got_any)
			sched_yield();
	}
	pthread_join(t, NULL);
	pair_close(&p);
}
END_TEST

int main(int argc, char **argv)
{
	Suite *s;
	TCase *tc;

	if (argc > 1)
		test_transport = argv[1];
	if (!transport_is("shm") && !transport_is("file") && !transport_is("fabric-tcp")) {
		fprintf(stderr, "usage: %s shm|file|fabric-tcp\n", argv[0]);
		return 2;
	}
	s = suite_create(test_transport);
	tc = tcase_create("mailboxes");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, mailboxes_hold_one_message_each);
	tcase_add_test(tc, mailbox_latency_emulation);
	tcase_add_test(tc, mailboxes_two_threads);
	suite_add_tcase(s, tc);
	return wave_check_run(s);
}
