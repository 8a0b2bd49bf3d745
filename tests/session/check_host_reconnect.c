/* SPDX-License-Identifier: MIT */
/*
 * The session against agents that do not do their part: one that takes
 * connections but never answers (a bare Unix socket listening at the URI,
 * as a stopped agent's does; over fabric://tcp;ofi_rxm a dead agent
 * behaves so too: libfabric retries a refused connection silently), where
 * each attempt waits connect_timeout_ms, on a thread of its own; and one
 * that sends heartbeats but never reads. Internal API (host_new(),
 * host_start()): the static library. Nothing here depends on timing: each
 * assertion follows from what the agent did or did not do.
 */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <wave/wave.h>

#include "check_run.h"
#include "core/core.h"
#include "script_welcome.h"
#include "session/host_impl.h"

struct mute {
	char dir[64];
	char uri[128];
	int fd;
};

/* A URI in a fresh folder, where nothing listens yet. */
static void mute_uri(struct mute *m)
{
	snprintf(m->dir, sizeof(m->dir), "/tmp/wave-reconnect-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(m->dir));
	snprintf(m->uri, sizeof(m->uri), "shm://%s/agent.sock", m->dir);
}

/* A listening socket at the URI's path that never accepts by itself. */
static void mute_bind(struct mute *m)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/agent.sock", m->dir);
	m->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0);
	ck_assert_int_ge(m->fd, 0);
	ck_assert_int_eq(bind(m->fd, (const struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(m->fd, 64), 0);
}

/* The next connection, waited for (and kept open). */
static int mute_next(struct mute *m)
{
	struct pollfd p = { m->fd, POLLIN, 0 };
	int c;

	while ((c = accept(m->fd, NULL, NULL)) < 0)
		ck_assert_int_ge(poll(&p, 1, -1), 0);
	return c;
}

static void mute_close(struct mute *m)
{
	char path[128];

	close(m->fd);
	snprintf(path, sizeof(path), "%s/agent.sock", m->dir);
	unlink(path);
	rmdir(m->dir);
}

/* A connection a reconnection attempt made, waited for while polling
 * @h (and kept open: the attempt waits for our answer). */
static int mute_attempt(struct mute *m, struct wave_host *h)
{
	int c;

	while ((c = accept(m->fd, NULL, NULL)) < 0)
		ck_assert_int_ge(wave_host_poll(h, WAVE_MS(1)), 0);
	return c;
}

/*
 * No poll waits for a reconnection attempt, which opens its channel on a
 * thread of its own: here an attempt waits up to a minute for an agent
 * that took the connection but does not answer (as a stopped agent's
 * socket does), and the polls made meanwhile return; had one waited, the
 * test would time out. Before, the poll that made the attempt waited its
 * whole connect timeout, and with it the application thread calling it.
 * Closing the host abandons an attempt in flight without waiting either.
 */
START_TEST(stopped_agent_never_blocks_poll)
{
	struct wave_host_opts o;
	struct wave_chan_opts co;
	struct wave_error err;
	struct wave_host *h;
	struct mute m;
	char token[WAVE_CHAN_TOKEN_MAX + 2];
	int held;

	mute_uri(&m); /* nothing listens: the first open fails at once */
	ck_assert_int_eq(wave_host_opts_init(&o), 0);
	/* The session keeps its own copy of the channel's token, for every
	 * attempt: one too long for that is refused at once. */
	ck_assert_int_eq(wave_chan_opts_init(&co), 0);
	memset(token, 'x', sizeof(token) - 1);
	token[sizeof(token) - 1] = '\0';
	co.token = token;
	o.chan = &co;
	ck_assert_int_eq(host_new(m.uri, &o, &h), -EINVAL);
	token[WAVE_CHAN_TOKEN_MAX] = '\0';
	o.connect_timeout_ms = 60000;
	o.reconnect_min_ms = o.reconnect_max_ms = 1;
	ck_assert_int_eq(host_new(m.uri, &o, &h), 0);
	ck_assert_int_eq(host_start(h, true, &err), 1); /* on fallback */
	mute_bind(&m);
	held = mute_attempt(&m, h);
	for (int i = 0; i < 20; i++)
		ck_assert_int_eq(wave_host_poll(h, WAVE_MS(1)), 0);
	ck_assert_int_eq(wave_host_state(h), WAVE_HOST_FALLBACK);
	/* That attempt fails now; the polls see it and make the next. */
	close(held);
	held = mute_attempt(&m, h);
	wave_host_close(h);
	close(held); /* the abandoned attempt's thread fails, and frees itself */
	mute_close(&m);
}
END_TEST

struct poller {
	struct wave_sched *s;
	atomic_bool stop;
};

static void *poll_until_stopped(void *arg)
{
	struct poller *p = arg;

	while (!atomic_load(&p->stop))
		(void)wave_sched_poll(p->s, WAVE_MS(2));
	return NULL;
}

/*
 * On fallback, a reconnection attempt that waits for an agent which does
 * not answer (here up to a 30 s connect timeout) does not stop the
 * scheduler's other calls: the session opens its channel on a thread of
 * its own. Long ago, the poll that made the attempt held the lock
 * throughout, and every wave_sched_next() of every CPU waited for it.
 * Nothing here depends on timing: the attempt lasts until the test closes
 * the agent's end of its connection, and the test's own calls come first;
 * had they waited for the lock, the attempt would have ended (its timeout)
 * and closed the host's end before they returned.
 */
START_TEST(fallback_goes_on_while_reconnecting)
{
	struct wave_host_opts ho;
	struct wave_sched_opts o;
	struct wave_sched_task_opts t;
	struct wave_sched_grant g;
	struct wave_error err;
	struct poller p = { 0 };
	struct mute m;
	struct pollfd held;
	pthread_t th;

	mute_uri(&m); /* nothing listens: the first open fails at once */
	ck_assert_int_eq(wave_host_opts_init(&ho), 0);
	ho.connect_timeout_ms = 30000;
	ho.reconnect_min_ms = ho.reconnect_max_ms = 1;
	wave_sched_opts_init(&o);
	o.n_cpus = 2;
	o.host = &ho;
	ck_assert_int_eq(wave_sched_create(m.uri, &o, &p.s, &err), 0);
	ck_assert_int_eq(wave_sched_mode(p.s), WAVE_HOST_FALLBACK);
	mute_bind(&m);
	ck_assert_int_eq(pthread_create(&th, NULL, poll_until_stopped, &p), 0);
	/* An attempt waits for our answer; its request may come, unread. */
	held = (struct pollfd){ mute_next(&m), POLLRDHUP, 0 };

	wave_sched_task_opts_init(&t);
	t.runnable = 1;
	ck_assert_int_eq(wave_sched_task_new(p.s, 7, &t), 0);
	ck_assert_int_eq(wave_sched_next(p.s, 1, &g), 1);
	ck_assert_uint_eq(g.task, 7);
	ck_assert_int_eq(g.source, WAVE_DECISION_FALLBACK);
	ck_assert_int_eq(wave_sched_task_dead(p.s, 7), 0);
	/* The host has not closed its end: the attempt still waits. */
	ck_assert_int_eq(poll(&held, 1, 0), 0);

	atomic_store(&p.stop, true);
	mute_close(&m); /* no further attempt can wait */
	close(held.fd); /* this one fails now */
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_int_eq(wave_sched_mode(p.s), WAVE_HOST_FALLBACK);
	wave_sched_destroy(p.s);
}
END_TEST

/* An agent that welcomes its host (of @domain) and then heartbeats every
 * 2 ms; it never reads, or with @reads, reads one message each time:
 * slower than any host. */
struct deaf {
	struct wave_chan_listener *l;
	char dir[64], uri[128];
	pthread_t thr;
	atomic_bool stop;
	unsigned domain;
	bool reads;
};

static void *deaf_agent(void *arg)
{
	struct timespec nap = { 0, 2000000 };
	struct deaf *d = arg;
	struct wave_chan *ch;
	struct wave_msg m;
	uint64_t n = 0;

	ck_assert_int_eq(wave_chan_accept(d->l, WAVE_MS(30000), &ch), 0);
	script_welcome(ch, d->domain, 600000);
	while (!atomic_load(&d->stop)) {
		wave_proto_heartbeat(++n, &m);
		(void)wave_chan_send_burst(ch, &m, 1); /* the host reads */
		if (d->reads && wave_chan_recv_burst(ch, &m, 1) < 0)
			break; /* the host gave up and closed */
		nanosleep(&nap, NULL);
	}
	wave_chan_close(ch);
	return NULL;
}

/* @d listening in a fresh directory, @agent started on a thread. */
static void deaf_start(struct deaf *d, void *(*agent)(void *), unsigned domain, bool reads)
{
	d->domain = domain;
	d->reads = reads;
	snprintf(d->dir, sizeof(d->dir), "/tmp/wave-deaf-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(d->dir));
	snprintf(d->uri, sizeof(d->uri), "shm://%s/agent.sock", d->dir);
	ck_assert_int_eq(wave_chan_listen(d->uri, NULL, &d->l), 0);
	ck_assert_int_eq(pthread_create(&d->thr, NULL, agent, d), 0);
}

static void deaf_stop(struct deaf *d)
{
	atomic_store(&d->stop, true);
	ck_assert_int_eq(pthread_join(d->thr, NULL), 0);
	wave_chan_listener_close(d->l);
	rmdir(d->dir);
}

static unsigned fallback_decisions;

static void count_decision(struct wave_host *h, const struct wave_msg *d,
			   enum wave_decision_source src, void *user)
{
	(void)h;
	(void)d;
	(void)user;
	if (src == WAVE_DECISION_FALLBACK)
		fallback_decisions++;
}

static int decide_locally(struct wave_host *h, const struct wave_msg *ev, struct wave_msg *out,
			  void *user)
{
	(void)h;
	(void)user;
	*out = *ev;
	return 0;
}

/*
 * An agent that heartbeats but has stopped reading is lost once a
 * timeout's worth of the host's heartbeats in a row (here 200 / 20) found
 * its ring full, like a silent one. Before,
 * its heartbeats kept it "alive" for ever: the custom domain's events got
 * -EAGAIN for ever, and sched's, rpc's and mem's piled up in their
 * outboxes without bound. Nothing here depends on timing: the agent never
 * reads, so its ring fills and stays full; only its heartbeats could keep
 * the host from falling back, and it sends them throughout.
 */
START_TEST(agent_that_stops_reading_is_lost)
{
	static const struct wave_host_ops ops = { sizeof(ops), count_decision, decide_locally,
						  NULL, NULL };
	struct wave_host_opts o;
	struct wave_host_stats st;
	struct wave_host *h;
	struct deaf d = { 0 };
	struct wave_msg ev = { .type = WAVE_MSG_APP_FIRST };
	uint64_t key = 0;
	int ret;

	deaf_start(&d, deaf_agent, WAVE_DOMAIN_CUSTOM, false);
	ck_assert_int_eq(wave_host_opts_init(&o), 0);
	o.ops = &ops;
	o.heartbeat_period_ms = 20;
	o.heartbeat_timeout_ms = 200;
	ck_assert_int_eq(wave_host_connect(d.uri, &o, &h, NULL), 0);
	ck_assert_int_eq(wave_host_state(h), WAVE_HOST_AGENT);
	/* Events until the ring is full, then until the host gives up. */
	while (wave_host_state(h) == WAVE_HOST_AGENT) {
		ret = wave_host_event(h, &ev, ++key, NULL);
		ck_assert(ret == 0 || ret == -EAGAIN);
		if (ret == -EAGAIN)
			ck_assert_int_ge(wave_host_poll(h, WAVE_MS(5)), 0);
	}
	ck_assert_int_eq(wave_host_stats(h, &st), 0);
	ck_assert_uint_eq(st.fallbacks, 1);
	/* On fallback the events are decided here. */
	ck_assert_int_eq(wave_host_event(h, &ev, ++key, NULL), 0);
	ck_assert_uint_ge(fallback_decisions, 1);
	wave_host_close(h);
	deaf_stop(&d);
}
END_TEST

/*
 * An agent that reads, but slower than the host sends, is lost once it
 * has been behind for four heartbeat timeouts: the host falls back, and
 * its outbox is dropped (a resync would start the agent over). Before,
 * the outbox grew for as long as the agent lived (294 MB in a probe).
 * Nothing here depends on timing: the agent can never catch up, so the
 * loop ends only by the fallback.
 */
START_TEST(agent_too_far_behind_is_lost)
{
	struct wave_host_opts ho;
	struct wave_sched_opts o;
	struct wave_sched_host_stats st;
	struct wave_sched *s;
	struct wave_error err;
	struct deaf d = { 0 };
	uint64_t id = 0;

	deaf_start(&d, deaf_agent, WAVE_DOMAIN_SCHED, true);
	ck_assert_int_eq(wave_host_opts_init(&ho), 0);
	ho.heartbeat_period_ms = 20;
	ho.heartbeat_timeout_ms = 100;
	ho.reconnect_min_ms = ho.reconnect_max_ms = 60000; /* no second attempt here */
	wave_sched_opts_init(&o);
	o.n_cpus = 2;
	o.host = &ho;
	ck_assert_int_eq(wave_sched_create(d.uri, &o, &s, &err), 0);
	ck_assert_int_eq(wave_sched_mode(s), WAVE_HOST_AGENT);
	while (wave_sched_mode(s) == WAVE_HOST_AGENT) {
		ck_assert_int_eq(wave_sched_task_new(s, ++id, NULL), 0);
		ck_assert_int_eq(wave_sched_task_dead(s, id), 0);
		ck_assert_int_ge(wave_sched_poll(s, 0), 0);
	}
	ck_assert_int_eq(wave_sched_host_stats(s, &st), 0);
	ck_assert_uint_eq(st.fallbacks, 1);
	wave_sched_destroy(s);
	deaf_stop(&d);
}
END_TEST

/* An agent that heartbeats as fast as the host reads and never answers
 * the hello. */
static void *chatty_agent(void *arg)
{
	struct deaf *d = arg;
	struct wave_chan *ch;
	struct wave_msg m[32];
	uint64_t n = 0;

	ck_assert_int_eq(wave_chan_accept(d->l, WAVE_MS(30000), &ch), 0);
	while (!atomic_load(&d->stop)) {
		for (unsigned i = 0; i < 32; i++)
			wave_proto_heartbeat(++n, &m[i]);
		if (wave_chan_send_burst(ch, m, 32) < 0)
			break; /* the host gave up and closed */
	}
	wave_chan_close(ch);
	return NULL;
}

/* The first handshake ends at the connect timeout even while heartbeats
 * keep coming before any welcome. Before, it read them for ever: it
 * looked at its deadline only once the ring was empty. */
START_TEST(heartbeats_before_welcome_time_out)
{
	struct wave_host_opts o;
	struct wave_error err;
	struct wave_host *h;
	struct deaf d = { 0 };

	deaf_start(&d, chatty_agent, WAVE_DOMAIN_CUSTOM, false);
	ck_assert_int_eq(wave_host_opts_init(&o), 0);
	o.connect_timeout_ms = 200;
	ck_assert_int_eq(host_new(d.uri, &o, &h), 0);
	ck_assert_int_eq(host_start(h, false, &err), -ETIMEDOUT);
	wave_host_close(h);
	deaf_stop(&d);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("host_reconnect");
	TCase *tc = tcase_create("reconnect");

	tcase_add_test(tc, stopped_agent_never_blocks_poll);
	tcase_add_test(tc, heartbeats_before_welcome_time_out);
	tcase_add_test(tc, fallback_goes_on_while_reconnecting);
	tcase_add_test(tc, agent_that_stops_reading_is_lost);
	tcase_add_test(tc, agent_too_far_behind_is_lost);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return wave_check_run(suite());
}
