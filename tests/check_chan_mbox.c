/* SPDX-License-Identifier: MIT */
/*
 * Mailboxes (wave_chan_mbox_put(), wave_chan_mbox_take()) through the
 * public API, once per transport: `check_chan_mbox shm`, `... file`,
 * `... fabric-tcp`, `... fabric-shm`. Over fabric:// a put lands and a take
 * is told to the agent only as the provider progresses, so there the tests
 * repeat a take until the put is there and a put until the take is known;
 * shm:// and file:// must succeed at once. Hostile mailboxes are in
 * check_shm.c and check_fabric_guard.c.
 */
#include "check_run.h"
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <sys/wait.h>
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

/* Over fabric://, how long a put may take to land or a take to be told. */
#define FABRIC_PATIENCE_NS 10000000000ull

/* Takes from mailbox @i: at once, or over fabric:// once the put landed. */
static int take_landed(struct wave_chan *host, unsigned i, struct wave_msg *m)
{
	uint64_t end = mono_ns() + FABRIC_PATIENCE_NS;
	int ret;

	while ((ret = wave_chan_mbox_take(host, i, m)) == 0 && transport_is_fabric() &&
	       mono_ns() < end)
		sched_yield();
	return ret;
}

/* Puts into mailbox @i: at once, or over fabric:// once the host's take of
 * the previous put is known. */
static int put_told(struct wave_chan *agent, unsigned i, const struct wave_msg *m)
{
	uint64_t end = mono_ns() + FABRIC_PATIENCE_NS;
	int ret;

	while ((ret = wave_chan_mbox_put(agent, i, m)) == -EAGAIN && transport_is_fabric() &&
	       mono_ns() < end)
		sched_yield();
	return ret;
}

/* One message per mailbox, never overwritten: a second put waits for the
 * take. */
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
	ck_assert_int_eq(wave_chan_mailboxes(p.host), MBOXES);
	ck_assert_int_eq(wave_chan_mailboxes(p.agent), MBOXES);
	ck_assert_int_eq(wave_chan_mailboxes(NULL), -EINVAL);
	ck_assert_int_eq(wave_chan_mbox_take(p.host, 1, &got), 0);
	ck_assert_int_eq(wave_chan_mbox_put(p.agent, 1, &m[0]), 0);
	ck_assert_int_eq(wave_chan_mbox_put(p.agent, 1, &m[1]), -EAGAIN);
	ck_assert_int_eq(wave_chan_mbox_put(p.agent, 3, &m[2]), 0);
	ck_assert_int_eq(take_landed(p.host, 1, &got), 1);
	ck_assert_int_eq(msg_check(&got, 1), 0);
	ck_assert_uint_eq(got.seq, 1);
	ck_assert_int_eq(wave_chan_mbox_take(p.host, 1, &got), 0);
	ck_assert_int_eq(put_told(p.agent, 1, &m[1]), 0);
	ck_assert_int_eq(take_landed(p.host, 1, &got), 1);
	ck_assert_int_eq(msg_check(&got, 2), 0);
	ck_assert_uint_eq(got.seq, 2);
	ck_assert_int_eq(take_landed(p.host, 3, &got), 1);
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
	if (transport_is_fabric())
		ck_assert_uint_ge(st.send_full, 1); /* and every put_told() retry */
	else
		ck_assert_uint_eq(st.send_full, 1);
	ck_assert_int_eq(wave_chan_stats(p.host, &st), 0);
	ck_assert_uint_eq(st.received, 3);
	wave_chan_close(p.host);
	p.host = NULL;
	/* Over fabric:// the agent learns of the close when its BYE arrives:
	 * until then a put into the empty mailbox 0 may still go out. */
	uint64_t end = mono_ns() + FABRIC_PATIENCE_NS;
	int ret;
	while ((ret = wave_chan_mbox_put(p.agent, 0, &m[1])) != -WAVE_ECLOSED &&
	       transport_is_fabric() && (ret == 0 || ret == -EAGAIN) && mono_ns() < end)
		sched_yield();
	ck_assert_int_eq(ret, -WAVE_ECLOSED);
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
#define MBOX_MSGS ((uint64_t)test_scaled(transport_is_fabric() ? 20000 : 200000))

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

/* Takes every put of mbox_putter() in order; NULL, or what went wrong. */
static const char *take_all(struct wave_chan *host)
{
	static char err[96];
	uint64_t next[MBOXES] = { 0 }, done = 0;

	while (done < MBOX_MSGS * MBOXES) {
		int got_any = 0;

		for (unsigned i = 0; i < MBOXES; i++) {
			struct wave_msg m;
			int ret = wave_chan_mbox_take(host, i, &m);

			if (ret < 0)
				return wave_strerror(ret);
			if (ret == 0)
				continue;
			if (msg_check(&m, next[i]) != 0) {
				snprintf(err, sizeof(err), "mailbox %u: not message %llu", i,
					 (unsigned long long)next[i]);
				return err;
			}
			next[i]++;
			done++;
			got_any = 1;
		}
		if (!got_any)
			sched_yield();
	}
	return NULL;
}

START_TEST(mailboxes_two_threads)
{
	struct wave_chan_opts o = mbox_opts();
	const char *err;
	struct pair p;
	pthread_t t;

	pair_open(&p, &o);
	ck_assert_int_eq(pthread_create(&t, NULL, mbox_putter, p.agent), 0);
	err = take_all(p.host);
	ck_assert_msg(err == NULL, "%s", err);
	pthread_join(t, NULL);
	pair_close(&p);
}
END_TEST

/* The same with the host in a child process (the only way fabric-shm's
 * provider runs two ends). The agent keeps its channel, and so keeps
 * progressing, until the host closed. */
START_TEST(mailboxes_two_processes)
{
	struct wave_chan_opts o = mbox_opts();
	struct wave_msg x;
	int status, r;
	struct pair p;
	pid_t pid;

	pid = pair_fork(&p, &o);
	if (pid == 0) {
		const char *err = take_all(p.host);
		if (err)
			fprintf(stderr, "host side: %s\n", err);
		wave_chan_close(p.host);
		_exit(err ? 1 : 0);
	}
	ck_assert_int_eq(wave_chan_mailboxes(p.agent), MBOXES);
	mbox_putter(p.agent);
	while ((r = wave_chan_recv_burst(p.agent, &x, 1)) == 0)
		wave_chan_wait(p.agent, -1);
	ck_assert_int_eq(r, -WAVE_ECLOSED);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "host side failed: %d",
		      status);
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
	s = suite_create(test_transport);
	tc = tcase_create("mailboxes");
	tcase_set_timeout(tc, 300);
	/* fabric-shm's ends must live in two processes (see chan_util.c). */
	if (!transport_is("fabric-shm")) {
		tcase_add_test(tc, mailboxes_hold_one_message_each);
		tcase_add_test(tc, mailbox_latency_emulation);
		tcase_add_test(tc, mailboxes_two_threads);
	}
	tcase_add_test(tc, mailboxes_two_processes);
	suite_add_tcase(s, tc);
	return wave_check_run(s);
}
