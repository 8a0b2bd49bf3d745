/* SPDX-License-Identifier: MIT */
/*
 * Sessions end to end: handshake refusals, isolation between hosts, stale
 * decisions, plugin hot-swap with replay, and the real daemon killed and
 * restarted under a streaming host.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chan_util.h"
#include "check_run.h"
#include "session_util.h"

static char uri[256];

static const char *setup_agent(struct tagent *t, char dir[64], const char *extra,
			       const char *params)
{
	tmpdir_make(dir);
	snprintf(uri, sizeof(uri), "shm://%s/agent.sock", dir);
	tagent_start(t, write_config(dir, extra, params));
	return uri;
}

/* A wave-agentd serving the test plugin with four workers from a config in
 * a fresh @dir; `uri` reaches it, *@path is its config. */
static pid_t setup_daemon(char dir[64], const char **path)
{
	tmpdir_make(dir);
	snprintf(uri, sizeof(uri), "shm://%s/agent.sock", dir);
	*path = write_config(dir, "", "{\"workers\": 4}");
	return daemon_start(*path);
}

/* A hello as the wire format of docs/sessions.md describes it. */
static void raw_hello(struct wave_msg *m, uint16_t major, uint16_t role, uint32_t domains)
{
	memset(m, 0, sizeof(*m));
	m->type = 0x0001;
	m->payload.u8[0] = (uint8_t)major;
	m->payload.u8[4] = (uint8_t)role;
	m->payload.u32[2] = domains;
	m->payload.u32[3] = 50; /* heartbeat period, ms */
}

/* Sends @hello on a raw channel; returns the agent's answer. */
static struct wave_msg raw_exchange(const struct wave_msg *hello)
{
	struct wave_chan *ch;
	struct wave_msg m;

	ck_assert_int_eq(wave_chan_open(uri, NULL, &ch), 0);
	ck_assert_int_eq(wave_chan_send_burst(ch, hello, 1), 1);
	while (wave_chan_recv_burst(ch, &m, 1) == 0)
		ck_assert_int_ge(wave_chan_wait(ch, -1), 0);
	wave_chan_close(ch);
	return m;
}

START_TEST(refuse_bad_version)
{
	struct tagent t;
	char dir[64];
	struct wave_msg hello, m;

	setup_agent(&t, dir, "", "{\"workers\": 2}");
	raw_hello(&hello, 2, WAVE_ROLE_HOST, 1);
	m = raw_exchange(&hello);
	ck_assert_uint_eq(m.type, 0x0004); /* REFUSE */
	ck_assert_int_eq((int32_t)m.payload.u32[0], -WAVE_EVERSION);
	ck_assert_str_eq((const char *)&m.payload.u8[8], "protocol 2.0, agent speaks 1.0");
	/* Role and domain mismatches say what differs too. */
	raw_hello(&hello, 1, WAVE_ROLE_AGENT, 1);
	m = raw_exchange(&hello);
	ck_assert_str_eq((const char *)&m.payload.u8[8], "role 2 is not host");
	raw_hello(&hello, 1, WAVE_ROLE_HOST, 1u << WAVE_DOMAIN_MEM);
	m = raw_exchange(&hello);
	ck_assert_str_eq((const char *)&m.payload.u8[8], "domain mem: agent has no plugin");
	/* Garbage in the reserved bytes is a malformed hello. */
	raw_hello(&hello, 1, WAVE_ROLE_HOST, 1);
	hello.payload.u8[47] = 1;
	m = raw_exchange(&hello);
	ck_assert_str_eq((const char *)&m.payload.u8[8], "malformed hello");
	tagent_stop(&t);
	tmpdir_rm(dir);
}
END_TEST

START_TEST(refuse_bad_token)
{
	static const char long_token[] =
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
		"0123456789abcdef0123456789abcdef";
	struct tagent t;
	struct app app;
	struct wave_host_opts o;
	struct wave_error err;
	char dir[64], extra[256];

	snprintf(extra, sizeof(extra), "\"auth\": { \"token\": \"%s\" },", long_token);
	setup_agent(&t, dir, extra, "{\"workers\": 2}");
	app_opts(&app, &o);
	o.token = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeX";
	ck_assert_int_eq(app_connect(&app, uri, &o, &err, false), -WAVE_EREFUSED);
	ck_assert_int_eq(err.code, -WAVE_EREFUSED);
	ck_assert_str_eq(err.text, "agent refused the host: token does not match");
	ck_assert_str_eq(err.source, uri);
	o.token = NULL;
	ck_assert_int_eq(app_connect(&app, uri, &o, &err, false), -WAVE_EREFUSED);
	ck_assert_str_eq(err.text, "agent refused the host: token required");
	/* The right token (longer than the hello holds: AUTH messages). */
	o.token = long_token;
	ck_assert_int_eq(app_connect(&app, uri, &o, &err, false), 0);
	wave_host_close(app.h);
	tagent_stop(&t);
	tmpdir_rm(dir);
}
END_TEST

static bool answered_1(const struct app *a)
{
	return a->answered >= 1;
}

/* An agent serving max_hosts hosts refuses one more (-EAGAIN, saying
 * why), and serves it once another has gone. */
START_TEST(max_hosts_refuses_one_more)
{
	struct tagent t;
	struct app app[3];
	struct wave_host_opts o[3];
	struct wave_error err;
	char dir[64];
	int ret;

	setup_agent(&t, dir, "\"max_hosts\": 2,", "{\"workers\": 2}");
	for (int i = 0; i < 3; i++)
		app_opts(&app[i], &o[i]);
	ck_assert_int_eq(app_connect(&app[0], uri, &o[0], NULL, false), 0);
	ck_assert_int_eq(app_connect(&app[1], uri, &o[1], NULL, false), 0);
	ck_assert_int_eq(app_connect(&app[2], uri, &o[2], &err, false), -EAGAIN);
	ck_assert_str_eq(err.text, "agent refused the host: agent full: 2 hosts (max_hosts)");
	wave_host_close(app[0].h);
	/* The agent sees the goodbye on its next turn. */
	while ((ret = app_connect(&app[2], uri, &o[2], NULL, false)) == -EAGAIN)
		ck_assert_int_ge(wave_host_poll(app[1].h, WAVE_MS(1)), 0);
	ck_assert_int_eq(ret, 0);
	app_ask(&app[2], 1);
	app_poll_until(&app[2], answered_1);
	wave_host_close(app[1].h);
	wave_host_close(app[2].h);
	tagent_stop(&t);
	tmpdir_rm(dir);
}
END_TEST

static bool answered_2(const struct app *a)
{
	return a->answered >= 2;
}

START_TEST(two_hosts_isolated)
{
	struct tagent t;
	struct app a, b;
	struct wave_host_opts oa, ob;
	char dir[64], *json;

	setup_agent(&t, dir, "", "{\"workers\": 2}");
	app_opts(&a, &oa);
	app_opts(&b, &ob);
	ck_assert_int_eq(app_connect(&a, uri, &oa, NULL, false), 0);
	ck_assert_int_eq(app_connect(&b, uri, &ob, NULL, false), 0);
	/* Host a's worker 0 is busy; host b knows nothing of it. */
	app_load(&a, LOAD_KEY_BASE, 0, 100);
	app_ask(&a, 1);
	app_poll_until(&a, answered_1);
	app_ask(&b, 1);
	app_poll_until(&b, answered_1);
	ck_assert_uint_eq(a.worker[1], 1);
	ck_assert_uint_eq(b.worker[1], 0);
	ck_assert_uint_eq(a.agent_decisions, 1);
	ck_assert_uint_eq(b.agent_decisions, 1);
	ck_assert_int_eq(wave_agent_stats_json(t.a, &json), 0);
	ck_assert_ptr_nonnull(strstr(json, "\"hosts_accepted\":2"));
	ck_assert_ptr_nonnull(strstr(json, "\"plugin\":\"least_loaded\""));
	free(json);
	wave_host_close(a.h);
	wave_host_close(b.h);
	tagent_stop(&t);
	tmpdir_rm(dir);
}
END_TEST

/* Opens a raw channel and completes a valid handshake by hand. */
static struct wave_chan *raw_session(void)
{
	struct wave_chan *ch;
	struct wave_msg m;

	raw_hello(&m, 1, WAVE_ROLE_HOST, 1);
	ck_assert_int_eq(wave_chan_open(uri, NULL, &ch), 0);
	ck_assert_int_eq(wave_chan_send_burst(ch, &m, 1), 1);
	while (wave_chan_recv_burst(ch, &m, 1) == 0)
		ck_assert_int_ge(wave_chan_wait(ch, -1), 0);
	ck_assert_uint_eq(m.type, 0x0003); /* WELCOME */
	return ch;
}

/* Receives until the agent closes the channel. */
static void raw_until_closed(struct wave_chan *ch)
{
	struct wave_msg m[16];
	int n;

	while ((n = wave_chan_recv_burst(ch, m, 16)) >= 0)
		if (n == 0)
			ck_assert_int_ge(wave_chan_wait(ch, -1), 0);
	ck_assert_int_eq(n, -WAVE_ECLOSED);
	wave_chan_close(ch);
}

/* A host that replays a sequence number has its event counted as an
 * error; one that sends a control message the protocol does not allow
 * after its welcome is dropped. Other hosts carry on. */
START_TEST(hostile_host_dropped)
{
	struct tagent t;
	struct app app;
	struct wave_host_opts o;
	struct wave_chan *ch;
	struct wave_msg m;
	char dir[64], *json;

	setup_agent(&t, dir, "", "{\"workers\": 2}");
	app_opts(&app, &o);
	ck_assert_int_eq(app_connect(&app, uri, &o, NULL, false), 0);
	ch = raw_session();
	memset(&m, 0, sizeof(m));
	m.type = LL_TYPE(WAVE_LL_LOAD); /* sequence number 0: never valid */
	ck_assert_int_eq(wave_chan_send_burst(ch, &m, 1), 1);
	m.type = 0x0001; /* a second hello */
	ck_assert_int_eq(wave_chan_send_burst(ch, &m, 1), 1);
	raw_until_closed(ch);
	app_ask(&app, 1);
	app_poll_until(&app, answered_1);
	ck_assert_uint_eq(app.agent_decisions, 1);
	ck_assert_int_eq(wave_agent_stats_json(t.a, &json), 0);
	ck_assert_ptr_nonnull(strstr(json, "\"errors\":1"));
	ck_assert_ptr_nonnull(strstr(json, "\"latency_ns\":{\"p50\":"));
	free(json);
	wave_host_close(app.h);
	tagent_stop(&t);
	tmpdir_rm(dir);
}
END_TEST

/* Sends @n LOAD reports (state, never answered) for the keys @first..
 * on a raw channel, sequence numbers from @seq, waiting while it is full
 * and keeping @app's session alive meanwhile. Return: the next sequence
 * number. */
static uint64_t raw_loads(struct app *app, struct wave_chan *ch, uint64_t first, uint64_t n,
			  uint64_t seq)
{
	struct wave_msg m[64], in[16];
	uint64_t done = 0;
	int ret;

	memset(m, 0, sizeof(m));
	while (done < n) {
		unsigned k = n - done < 64 ? (unsigned)(n - done) : 64;

		for (unsigned i = 0; i < k; i++) {
			m[i].type = LL_TYPE(WAVE_LL_LOAD);
			m[i].payload.u32[1] = 1;
			WAVE_CUSTOM_KEY(&m[i]) = first + done + i;
			WAVE_CUSTOM_SEQ(&m[i]) = seq + done + i;
		}
		ret = wave_chan_send_burst(ch, m, k);
		ck_assert_int_ge(ret, 0);
		done += (unsigned)ret;
		/* The agent's heartbeats, read so that its ring never fills. */
		while (wave_chan_recv_burst(ch, in, 16) > 0)
			;
		ck_assert_int_ge(wave_host_poll(app->h, ret == 0 ? WAVE_US(100) : 0), 0);
	}
	return seq + n;
}

static bool loads_taken(struct app *app, uint64_t first, uint64_t n)
{
	struct wave_msg m[64];
	uint64_t keys[64], done = 0;
	int ret;

	memset(m, 0, sizeof(m));
	while (done < n) {
		unsigned k = n - done < 64 ? (unsigned)(n - done) : 64;

		for (unsigned i = 0; i < k; i++) {
			m[i].type = LL_TYPE(WAVE_LL_LOAD);
			m[i].payload.u32[1] = 1;
			keys[i] = first + done + i;
		}
		ret = wave_host_events(app->h, m, keys, k, NULL);
		if (ret < 0)
			return false;
		done += (unsigned)ret;
		if (ret == 0)
			ck_assert_int_ge(wave_host_poll(app->h, WAVE_MS(1)), 0);
	}
	return true;
}

/* A host handle takes WAVE_HOST_MAX_KEYS keys and refuses a new one
 * past them (events for known keys go on); the agent drops a raw host
 * whose events name more, and serves the others. */
START_TEST(custom_key_bound)
{
	struct tagent t;
	struct app app;
	struct wave_host_opts o;
	struct wave_chan *ch;
	struct wave_msg m;
	uint64_t key = LOAD_KEY_BASE + WAVE_HOST_MAX_KEYS, seq;
	char dir[64], *json;
	int n;

	setup_agent(&t, dir, "", "{\"workers\": 2}");
	app_opts(&app, &o);
	ck_assert_int_eq(app_connect(&app, uri, &o, NULL, false), 0);
	app_ask(&app, 1);
	app_poll_until(&app, answered_1);
	ck_assert(loads_taken(&app, LOAD_KEY_BASE, WAVE_HOST_MAX_KEYS - 1));
	memset(&m, 0, sizeof(m));
	m.type = LL_TYPE(WAVE_LL_LOAD);
	ck_assert_int_eq(wave_host_event(app.h, &m, key, NULL), -ENOSPC);
	ck_assert_int_eq(wave_host_events(app.h, &m, &key, 1, NULL), -ENOSPC);
	ck_assert(loads_taken(&app, LOAD_KEY_BASE + 7, 1));
	ck_assert(!loads_taken(&app, key, 1));
	/* A peer that is not this library: served up to the bound (its ASK
	 * after them is answered), dropped at one key more. */
	ch = raw_session();
	seq = raw_loads(&app, ch, 1, WAVE_HOST_MAX_KEYS, 1);
	m.type = LL_TYPE(WAVE_LL_ASK);
	WAVE_CUSTOM_KEY(&m) = 1;
	WAVE_CUSTOM_SEQ(&m) = seq++;
	while ((n = wave_chan_send_burst(ch, &m, 1)) == 0) /* the agent reads */
		ck_assert_int_ge(wave_host_poll(app.h, WAVE_US(100)), 0);
	ck_assert_int_eq(n, 1);
	do { /* @app heartbeats meanwhile: the agent may take long to come to the ASK */
		while ((n = wave_chan_recv_burst(ch, &m, 1)) == 0)
			ck_assert_int_ge(wave_host_poll(app.h, WAVE_US(100)), 0);
		ck_assert_int_eq(n, 1);
	} while (m.type != LL_TYPE(WAVE_LL_ANSWER));
	raw_loads(&app, ch, WAVE_HOST_MAX_KEYS + 1, 1, seq);
	raw_until_closed(ch);
	/* Dropped for the keys, not timed out as silent. */
	ck_assert_int_eq(wave_agent_stats_json(t.a, &json), 0);
	ck_assert_ptr_nonnull(strstr(json, "\"hosts_dead\":0"));
	free(json);
	app_ask(&app, 1);
	app_poll_until(&app, answered_2);
	ck_assert_uint_eq(app.agent_decisions, 2);
	wave_host_close(app.h);
	tagent_stop(&t);
	tmpdir_rm(dir);
}
END_TEST

static bool answered_200(const struct app *a)
{
	return a->answered >= 200;
}

/* ASKs for keys @first.. in bursts of wave_host_events(), polling while
 * the channel is full; returns how many were taken in all. */
static unsigned ask_burst(struct app *app, uint64_t first, unsigned n)
{
	struct wave_msg ev[200];
	uint64_t keys[200], seqs[200];
	unsigned done = 0;
	int ret;

	ck_assert_uint_le(n, 200);
	memset(ev, 0, sizeof(ev));
	for (unsigned i = 0; i < n; i++) {
		ev[i].type = LL_TYPE(WAVE_LL_ASK);
		ev[i].payload.u64[0] = keys[i] = first + i;
	}
	while (done < n) {
		ret = wave_host_events(app->h, ev + done, keys + done, n - done, seqs + done);
		ck_assert_int_ge(ret, 0);
		ck_assert_int_le(ret, 64); /* one burst at the most per call */
		for (int i = 1; i < ret; i++) /* consecutive sequence numbers */
			ck_assert_uint_eq(seqs[done + (unsigned)i], seqs[done] + (unsigned)i);
		done += (unsigned)ret;
		if (ret == 0)
			ck_assert_int_ge(wave_host_poll(app->h, WAVE_MS(1)), 0);
	}
	return done;
}

/* Events reported in bursts reach the agent and are each answered once,
 * under the agent and on fallback alike; bad bursts take nothing. */
START_TEST(event_bursts)
{
	struct tagent t;
	struct app app;
	struct wave_host_opts o;
	struct wave_host_stats st;
	struct wave_msg bad[2];
	uint64_t keys[2] = { 1, 2 };
	char dir[64];

	setup_agent(&t, dir, "", "{\"workers\": 4}");
	app_opts(&app, &o);
	ck_assert_int_eq(app_connect(&app, uri, &o, NULL, false), 0);
	ck_assert_uint_eq(ask_burst(&app, 1, 200), 200);
	app_poll_until(&app, answered_200);
	for (unsigned k = 1; k <= 200; k++)
		ck_assert_uint_eq(app.decisions[k], 1);
	ck_assert_uint_eq(app.agent_decisions, 200);
	/* A type outside the application range: nothing taken. */
	memset(bad, 0, sizeof(bad));
	bad[0].type = LL_TYPE(WAVE_LL_ASK);
	bad[1].type = WAVE_MSG_SCHED_FIRST;
	ck_assert_int_eq(wave_host_events(app.h, bad, keys, 2, NULL), -EINVAL);
	ck_assert_int_eq(wave_host_events(app.h, bad, keys, 0, NULL), -EINVAL);
	ck_assert_int_eq(wave_host_events(NULL, bad, keys, 1, NULL), -EINVAL);
	ck_assert_int_eq(wave_host_stats(app.h, &st), 0);
	ck_assert_uint_eq(st.events, 200);
	/* On fallback a burst is decided before the call returns, in order,
	 * the same key twice included. */
	tagent_stop(&t);
	while (wave_host_state(app.h) != WAVE_HOST_FALLBACK)
		ck_assert_int_ge(wave_host_poll(app.h, WAVE_MS(10)), 0);
	bad[1].type = LL_TYPE(WAVE_LL_ASK);
	keys[1] = 1;
	ck_assert_int_eq(wave_host_events(app.h, bad, keys, 2, NULL), 2);
	ck_assert_uint_eq(app.decisions[1], 3);
	ck_assert_uint_eq(app.fallback_decisions, 2);
	wave_host_close(app.h);
	tmpdir_rm(dir);
}
END_TEST

/* A host that does not read while the agent answers: the agent's answers
 * wait for room and its events wait in their ring; nothing is lost. */
START_TEST(slow_host_backpressure)
{
	struct tagent t;
	struct app app;
	struct wave_host_opts o;
	struct wave_chan_opts co;
	char dir[64];

	setup_agent(&t, dir, "", "{\"workers\": 2}");
	app_opts(&app, &o);
	ck_assert_int_eq(wave_chan_opts_init(&co), 0);
	co.agent_to_host_slots = 16;
	o.chan = &co;
	ck_assert_int_eq(app_connect(&app, uri, &o, NULL, false), 0);
	for (uint64_t k = 1; k <= 200; k++)
		app_ask(&app, k);
	app_poll_until(&app, answered_200);
	for (unsigned k = 1; k <= 200; k++)
		ck_assert_uint_eq(app.decisions[k], 1);
	ck_assert_uint_eq(app.agent_decisions, 200);
	wave_host_close(app.h);
	tagent_stop(&t);
	tmpdir_rm(dir);
}
END_TEST

/* A host that goes silent is declared dead after the agent's timeout. */
START_TEST(silent_host_declared_dead)
{
	struct tagent t;
	char dir[64], *json;

	cfg_timeout_ms = 200;
	setup_agent(&t, dir, "", "{\"workers\": 2}");
	cfg_timeout_ms = 5000;
	raw_until_closed(raw_session());
	ck_assert_int_eq(wave_agent_stats_json(t.a, &json), 0);
	ck_assert_ptr_nonnull(strstr(json, "\"hosts_dead\":1"));
	free(json);
	tagent_stop(&t);
	tmpdir_rm(dir);
}
END_TEST

/* A fake agent that welcomes the host, waits for its two events, then
 * answers with a stale, a good, a duplicate and an impossible decision. */
struct fake {
	char uri[256];
	struct wave_chan_listener *l;
};

static struct wave_msg fake_next(struct wave_chan *ch)
{
	struct wave_msg m;

	do {
		while (wave_chan_recv_burst(ch, &m, 1) == 0)
			ck_assert_int_ge(wave_chan_wait(ch, -1), 0);
	} while (m.type == 0x0005); /* heartbeats */
	return m;
}

static void fake_decide(struct wave_chan *ch, uint64_t key, uint64_t seq)
{
	struct wave_msg d;

	memset(&d, 0, sizeof(d));
	d.type = LL_TYPE(WAVE_LL_ANSWER);
	WAVE_CUSTOM_KEY(&d) = key;
	WAVE_CUSTOM_SEQ(&d) = seq;
	ck_assert_int_eq(wave_chan_send_burst(ch, &d, 1), 1);
}

static void *fake_agent(void *arg)
{
	struct fake *f = arg;
	struct wave_chan *ch;
	struct wave_msg m;

	ck_assert_int_eq(wave_chan_accept(f->l, WAVE_WAIT_FOREVER, &ch), 0);
	m = fake_next(ch);
	ck_assert_uint_eq(m.type, 0x0001);
	memset(&m, 0, sizeof(m));
	m.type = 0x0003; /* WELCOME 1.0, custom, 50 ms, 5000 ms, session 7 */
	m.payload.u8[0] = 1;
	m.payload.u32[1] = 1;
	m.payload.u32[2] = 50;
	m.payload.u32[3] = 5000;
	m.payload.u64[2] = 7;
	ck_assert_int_eq(wave_chan_send_burst(ch, &m, 1), 1);
	m = fake_next(ch);
	ck_assert_uint_eq(WAVE_CUSTOM_SEQ(&m), 1);
	m = fake_next(ch);
	ck_assert_uint_eq(WAVE_CUSTOM_SEQ(&m), 2);
	fake_decide(ch, 5, 1);  /* stale: key 5 moved on to seq 2 */
	fake_decide(ch, 5, 2);  /* applied */
	fake_decide(ch, 5, 2);  /* duplicate */
	fake_decide(ch, 5, 99); /* based on an event never sent */
	fake_decide(ch, 6, 2);  /* a key never reported: a hint, applied */
	m = fake_next(ch);
	ck_assert_uint_eq(m.type, 0x0006); /* BYE */
	wave_chan_close(ch);
	return NULL;
}

static bool decided_two(const struct app *a)
{
	struct wave_host_stats st;

	wave_host_stats(a->h, &st);
	return st.decisions_agent + st.stale + st.duplicates + st.bad >= 5;
}

START_TEST(stale_decision_refused)
{
	struct fake f;
	struct app app;
	struct wave_host_opts o;
	struct wave_host_stats st;
	pthread_t thr;
	char dir[64];

	tmpdir_make(dir);
	snprintf(f.uri, sizeof(f.uri), "shm://%s/agent.sock", dir);
	ck_assert_int_eq(wave_chan_listen(f.uri, NULL, &f.l), 0);
	ck_assert_int_eq(pthread_create(&thr, NULL, fake_agent, &f), 0);
	app_opts(&app, &o);
	ck_assert_int_eq(app_connect(&app, f.uri, &o, NULL, false), 0);
	app_ask(&app, 5);
	app_ask(&app, 5);
	app_poll_until(&app, decided_two);
	ck_assert_int_eq(wave_host_stats(app.h, &st), 0);
	ck_assert_uint_eq(st.stale, 1);
	ck_assert_uint_eq(st.duplicates, 1);
	ck_assert_uint_eq(st.bad, 1);
	ck_assert_uint_eq(st.decisions_agent, 2);
	ck_assert_uint_eq(app.decisions[5], 1);
	ck_assert_uint_eq(app.decisions[6], 1);
	wave_host_close(app.h);
	ck_assert_int_eq(pthread_join(thr, NULL), 0);
	wave_chan_listener_close(f.l);
	tmpdir_rm(dir);
}
END_TEST

START_TEST(hot_swap_replays_state)
{
	struct tagent t;
	struct app app;
	struct wave_host_opts o;
	struct wave_config *next;
	struct wave_error err;
	char dir[64];
	const char *path;

	setup_agent(&t, dir, "", "{\"workers\": 2}");
	app_opts(&app, &o);
	ck_assert_int_eq(app_connect(&app, uri, &o, NULL, false), 0);
	app_load(&app, LOAD_KEY_BASE, 0, 100);
	app_ask(&app, 1);
	app_poll_until(&app, answered_1);
	ck_assert_uint_eq(app.worker[1], 1);
	/* New parameters: a new instance of three workers. Only if the
	 * replay taught it worker 0's load and the answer for key 1 (worker 1)
	 * does it choose worker 2; a fresh one would choose worker 0. */
	path = write_config(dir, "", "{\"workers\": 3}");
	ck_assert_int_eq(wave_config_load(path, &next, &err), 0);
	ck_assert_int_eq(wave_agent_reload(t.a, next, &err), 0);
	wave_config_free(t.cfg);
	t.cfg = next;
	app_ask(&app, 2);
	app_poll_until(&app, answered_2);
	ck_assert_uint_eq(app.worker[2], 2);
	ck_assert_uint_eq(app.decisions[1], 1);
	ck_assert_uint_eq(app.to_fallback, 0);
	wave_host_close(app.h);
	tagent_stop(&t);
	tmpdir_rm(dir);
}
END_TEST

/* ---- the daemon killed and restarted under a streaming host ------------- */

#define STREAM 3000u
#define WINDOW 64u

static unsigned sent_asks;

static bool all_answered(const struct app *a)
{
	return a->answered == sent_asks;
}

static bool on_fallback(const struct app *a)
{
	return a->state == WAVE_HOST_FALLBACK;
}

static bool on_agent(const struct app *a)
{
	return a->state == WAVE_HOST_AGENT;
}

/* Asks for keys up to @last, at most WINDOW unanswered at a time. */
static void stream(struct app *app, unsigned last)
{
	while (sent_asks < last) {
		while (sent_asks - app->answered >= WINDOW)
			ck_assert_int_ge(wave_host_poll(app->h, WAVE_MS(10)), 0);
		app_ask(app, ++sent_asks);
		ck_assert_int_ge(wave_host_poll(app->h, 0), 0);
	}
}

START_TEST(daemon_killed_and_restarted)
{
	struct app app;
	struct wave_host_opts o;
	struct wave_host_stats st;
	char dir[64];
	const char *path;
	pid_t pid;

	pid = setup_daemon(dir, &path);
	app_opts(&app, &o);
	o.reconnect_min_ms = 5;
	o.reconnect_max_ms = 50;
	app.replay_load = LOAD_KEY_BASE;
	ck_assert_int_eq(app_connect(&app, uri, &o, NULL, true), 0);
	sent_asks = 0;
	stream(&app, 1000);
	ck_assert_int_eq(WTERMSIG(daemon_kill(pid, SIGKILL)), SIGKILL);
	/* Keep streaming: the host notices, goes to fallback, decides. */
	stream(&app, 2000);
	app_poll_until(&app, on_fallback);
	ck_assert_uint_eq(app.to_fallback, 1);
	app_poll_until(&app, all_answered);
	pid = daemon_start(path);
	app_poll_until(&app, on_agent);
	ck_assert_uint_eq(app.to_agent, 1);
	ck_assert_uint_ge(app.replays, 1);
	stream(&app, STREAM);
	app_poll_until(&app, all_answered);
	for (unsigned k = 1; k <= STREAM; k++)
		ck_assert_msg(app.decisions[k] == 1, "key %u decided %u times", k,
			      app.decisions[k]);
	ck_assert_uint_gt(app.fallback_decisions, 0);
	ck_assert_uint_gt(app.agent_decisions, 1000);
	ck_assert_int_eq(wave_host_stats(app.h, &st), 0);
	ck_assert_uint_eq(st.fallbacks, 1);
	ck_assert_uint_eq(st.reconnects, 1);
	ck_assert_uint_eq(st.duplicates + st.bad, 0);
	wave_host_close(app.h);
	/* SIGTERM: a clean exit. */
	ck_assert_int_eq(WEXITSTATUS(daemon_kill(pid, SIGTERM)), 0);
	tmpdir_rm(dir);
}
END_TEST

/* SIGHUP with changed plugin parameters: the plugin is hot-swapped under
 * a streaming host, which neither notices nor loses anything. */
static const char *hup_dir;

static bool reloaded(const struct app *a)
{
	(void)a;
	return agentd_dir_log_has(hup_dir, "configuration reloaded");
}

START_TEST(daemon_sighup_hot_swap)
{
	struct app app;
	struct wave_host_opts o;
	char dir[64];
	const char *path;
	pid_t pid;

	pid = setup_daemon(dir, &path);
	hup_dir = dir;
	app_opts(&app, &o);
	ck_assert_int_eq(app_connect(&app, uri, &o, NULL, true), 0);
	sent_asks = 0;
	stream(&app, 500);
	write_config(dir, "", "{\"workers\": 3}");
	ck_assert_int_eq(kill(pid, SIGHUP), 0);
	app_poll_until(&app, reloaded);
	stream(&app, 1000);
	app_poll_until(&app, all_answered);
	for (unsigned k = 1; k <= 1000; k++)
		ck_assert_uint_eq(app.decisions[k], 1);
	ck_assert_uint_eq(app.fallback_decisions, 0);
	ck_assert_uint_eq(app.to_fallback, 0);
	/* Answers after the swap come from three workers only. */
	ck_assert_uint_lt(app.worker[1000], 3);
	ck_assert_int_eq(WEXITSTATUS(daemon_kill(pid, SIGTERM)), 0);
	wave_host_close(app.h);
	tmpdir_rm(dir);
}
END_TEST

/* The agent says goodbye on SIGTERM: the host goes to fallback at once. */
START_TEST(daemon_goodbye_on_sigterm)
{
	struct app app;
	struct wave_host_opts o;
	char dir[64];
	const char *path;
	pid_t pid;
	int status;

	pid = setup_daemon(dir, &path);
	app_opts(&app, &o);
	ck_assert_int_eq(app_connect(&app, uri, &o, NULL, true), 0);
	sent_asks = 0;
	stream(&app, 10);
	app_poll_until(&app, all_answered);
	status = daemon_kill(pid, SIGTERM);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	app_poll_until(&app, on_fallback);
	stream(&app, 20);
	ck_assert_uint_eq(app.answered, 20);
	wave_host_close(app.h);
	tmpdir_rm(dir);
}
END_TEST

/* An agent that stops answering (SIGSTOP) is taken for gone after the
 * heartbeat timeout; the state change is the assertion, not the time. */
START_TEST(silent_agent_times_out)
{
	struct app app;
	struct wave_host_opts o;
	char dir[64];
	const char *path;
	pid_t pid;
	int status;

	pid = setup_daemon(dir, &path);
	app_opts(&app, &o);
	o.heartbeat_timeout_ms = 300;
	ck_assert_int_eq(app_connect(&app, uri, &o, NULL, true), 0);
	sent_asks = 0;
	ck_assert_int_eq(kill(pid, SIGSTOP), 0);
	/* Stopped for sure before the first event leaves. */
	ck_assert_int_eq(waitpid(pid, &status, WUNTRACED), pid);
	ck_assert(WIFSTOPPED(status));
	stream(&app, 5);
	app_poll_until(&app, on_fallback);
	app_poll_until(&app, all_answered);
	ck_assert_uint_eq(app.fallback_decisions, 5);
	wave_host_close(app.h);
	ck_assert_int_eq(kill(pid, SIGCONT), 0);
	daemon_kill(pid, SIGKILL);
	tmpdir_rm(dir);
}
END_TEST

/* Every argument of every public function is checked. */
/* The host's callbacks as the first release had them: no on_state, no
 * replay. A caller built then passes this size. */
struct host_ops_0_1 {
	size_t size;
	void (*on_decision)(struct wave_host *h, const struct wave_msg *d,
			    enum wave_decision_source src, void *user);
	int (*decide)(struct wave_host *h, const struct wave_msg *ev, struct wave_msg *out,
		      void *user);
};

static unsigned old_decisions;

static void old_on_decision(struct wave_host *h, const struct wave_msg *d,
			    enum wave_decision_source src, void *user)
{
	(void)h, (void)d, (void)src, (void)user;
	old_decisions++;
}

static int old_decide(struct wave_host *h, const struct wave_msg *ev, struct wave_msg *out,
		      void *user)
{
	(void)h, (void)user;
	*out = *ev;
	return 0;
}

/* Callers built against older, smaller structures work, the fields they
 * lack taking their defaults; structures larger than this libwave knows
 * are refused with -EINVAL before anything past their size is read. */
START_TEST(older_structs_accepted)
{
	static const struct host_ops_0_1 old_ops = { sizeof(old_ops), old_on_decision,
						     old_decide };
	struct wave_host_opts o, big;
	struct wave_chan_opts co;
	struct wave_sched_opts so;
	struct wave_sched_task_opts to;
	struct wave_plugin_load_opts lo;
	struct wave_sched *s;
	struct wave_plugin *p;
	struct wave_host *h;
	struct tagent t;
	struct wave_msg m;
	char dir[64];
	int ret;

	setup_agent(&t, dir, "", "{\"workers\": 2}");
	wave_host_opts_init(&o);
	o.ops = (const struct wave_host_ops *)&old_ops;
	o.heartbeat_period_ms = 50;
	o.heartbeat_timeout_ms = 5000;
	/* The channel options of the first release: up to allow_uids. */
	wave_chan_opts_init(&co);
	co.size = offsetof(struct wave_chan_opts, max_slots);
	o.chan = &co;
	big = o;
	big.size = sizeof(big) + 8;
	ck_assert_int_eq(wave_host_connect(uri, &big, &h, NULL), -EINVAL);
	ck_assert_int_eq(wave_host_connect(uri, &o, &h, NULL), 0);
	memset(&m, 0, sizeof(m));
	m.type = LL_TYPE(WAVE_LL_ASK);
	ck_assert_int_eq(wave_host_event(h, &m, 1, NULL), 0);
	while (old_decisions == 0)
		ck_assert_int_ge(wave_host_poll(h, WAVE_MS(10)), 0);
	ck_assert_uint_eq(old_decisions, 1);
	/* On fallback, decide() alone serves, with no on_state to call. */
	tagent_stop(&t);
	while (wave_host_state(h) != WAVE_HOST_FALLBACK)
		ck_assert_int_ge(wave_host_poll(h, WAVE_MS(10)), 0);
	ck_assert_int_eq(wave_host_event(h, &m, 2, NULL), 0);
	ck_assert_uint_eq(old_decisions, 2);
	wave_host_close(h);
	tmpdir_rm(dir);

	/* Larger than known: refused, whatever the struct. */
	wave_sched_opts_init(&so);
	so.size = sizeof(so) + 8;
	ck_assert_int_eq(wave_sched_create(NULL, &so, &s, NULL), -EINVAL);
	so.size = 8;
	ck_assert_int_eq(wave_sched_create(NULL, &so, &s, NULL), -EINVAL);
	wave_sched_opts_init(&so);
	ck_assert_int_eq(wave_sched_create(NULL, &so, &s, NULL), 0);
	wave_sched_task_opts_init(&to);
	to.size = sizeof(to) + 8;
	ck_assert_int_eq(wave_sched_task_new(s, 1, &to), -EINVAL);
	wave_sched_destroy(s);
	wave_plugin_load_opts_init(&lo);
	lo.size = sizeof(lo) + 8;
	ret = wave_plugin_load("least_loaded", &lo, &p, NULL);
	ck_assert_int_eq(ret, -EINVAL);
}
END_TEST

START_TEST(api_arguments)
{
	static const char rpc_cfg[] =
		"{\"listen\": [\"shm:///tmp/x.sock\"], \"domains\": {\"rpc\": {\"plugin\": \"steering\"}}}";
	struct wave_host_opts o, bad;
	struct wave_host_stats st;
	struct wave_host *h = NULL;
	struct wave_agent *a = NULL;
	struct wave_config *cfg;
	struct wave_error err;
	struct wave_msg m;
	struct app app;
	char *json;
	char long_token[300];

	app_opts(&app, &o);
	ck_assert_int_eq(wave_host_opts_init(NULL), -EINVAL);
	ck_assert_int_eq(wave_host_connect(NULL, &o, &h, &err), -EINVAL);
	ck_assert_int_eq(wave_host_connect("shm:///nonexistent", NULL, &h, &err), -EINVAL);
	ck_assert_int_eq(wave_host_connect("shm:///nonexistent", &o, NULL, &err), -EINVAL);
	bad = o;
	bad.ops = NULL;
	ck_assert_int_eq(wave_host_connect("shm:///nonexistent", &bad, &h, &err), -EINVAL);
	bad = o;
	bad.heartbeat_timeout_ms = bad.heartbeat_period_ms;
	ck_assert_int_eq(wave_host_connect("shm:///nonexistent", &bad, &h, &err), -EINVAL);
	bad = o;
	bad.domains = 1u << 9;
	ck_assert_int_eq(wave_host_connect("shm:///nonexistent", &bad, &h, &err), -EINVAL);
	memset(long_token, 'x', sizeof(long_token) - 1);
	long_token[sizeof(long_token) - 1] = '\0';
	bad = o;
	bad.token = long_token;
	ck_assert_int_eq(wave_host_connect("shm:///nonexistent", &bad, &h, &err), -EINVAL);
	bad = o;
	bad.size = 8;
	ck_assert_int_eq(wave_host_connect("shm:///nonexistent", &bad, &h, &err), -EINVAL);
	/* No agent there: the channel's error, explained. */
	ck_assert_int_eq(wave_host_connect("shm:///nonexistent/agent.sock", &o, &h, &err), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err.text, "cannot open a channel to the agent"));
	ck_assert_ptr_null(h);
	memset(&m, 0, sizeof(m));
	m.type = LL_TYPE(WAVE_LL_ASK);
	ck_assert_int_eq(wave_host_event(NULL, &m, 1, NULL), -EINVAL);
	ck_assert_int_eq(wave_host_poll(NULL, 0), -EINVAL);
	ck_assert_int_eq(wave_host_state(NULL), -EINVAL);
	ck_assert_int_eq(wave_host_stats(NULL, &st), -EINVAL);
	wave_host_close(NULL);

	ck_assert_int_eq(wave_agent_create(NULL, &a, &err), -EINVAL);
	ck_assert_int_eq(wave_config_parse("{}", 2, NULL, &cfg, &err), 0);
	ck_assert_int_eq(wave_agent_create(cfg, NULL, &err), -EINVAL);
	ck_assert_int_eq(wave_agent_create(cfg, &a, &err), -EINVAL);
	ck_assert_str_eq(err.text, "no listen address");
	ck_assert_ptr_null(a);
	wave_config_free(cfg);
	/* A plugin that cannot be found is refused by name. */
	ck_assert_int_eq(wave_config_parse(rpc_cfg, strlen(rpc_cfg), "agent.json", &cfg, &err), 0);
	ck_assert_int_eq(wave_agent_create(cfg, &a, &err), -WAVE_EPLUGIN);
	ck_assert_msg(strstr(err.text, "steering"), "%s", err.text);
	wave_config_free(cfg);
	ck_assert_int_eq(wave_agent_run(NULL), -EINVAL);
	ck_assert_int_eq(wave_agent_stop(NULL), -EINVAL);
	ck_assert_int_eq(wave_agent_reload(NULL, NULL, &err), -EINVAL);
	ck_assert_int_eq(wave_agent_stats_json(NULL, &json), -EINVAL);
	wave_agent_destroy(NULL);
}
END_TEST

/* A host whose agent refuses its domain: the reason names the domain. */
START_TEST(refuse_unserved_domain)
{
	struct tagent t;
	struct app app;
	struct wave_host_opts o;
	struct wave_error err;
	char dir[64];

	setup_agent(&t, dir, "", "{\"workers\": 2}");
	app_opts(&app, &o);
	o.domains = WAVE_HOST_DOMAIN(WAVE_DOMAIN_CUSTOM) | WAVE_HOST_DOMAIN(WAVE_DOMAIN_RPC);
	ck_assert_int_eq(app_connect(&app, uri, &o, &err, false), -WAVE_EREFUSED);
	ck_assert_str_eq(err.text, "agent refused the host: domain rpc: agent has no plugin");
	/* A heartbeat the agent's timeout cannot follow. */
	app_opts(&app, &o);
	o.heartbeat_period_ms = 6000;
	o.heartbeat_timeout_ms = 12000;
	ck_assert_int_eq(app_connect(&app, uri, &o, &err, false), -WAVE_EREFUSED);
	ck_assert_str_eq(err.text, "agent refused the host: heartbeat 6000 ms, agent timeout 5000 ms");
	tagent_stop(&t);
	tmpdir_rm(dir);
}
END_TEST

/* Connects to the agent's shm:// socket and never says hello. */
static int stalled_connect(const char *dir)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);

	ck_assert_int_ge(fd, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/agent.sock", dir);
	ck_assert_int_eq(connect(fd, (const struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static unsigned want_answers;

static bool answered_want(const struct app *a)
{
	return a->answered >= want_answers;
}

/* Hosts that connect and then stall their side of the channel rendezvous
 * do not hold up the agent: the hosts it serves keep getting answers from
 * it, and a new host is welcomed while they stall. The agent gives a
 * stalled rendezvous half its heartbeat timeout (30 s here); an agent that
 * waited for them would leave the new host's connect (5 s) to time out
 * and the served host without answers. */
START_TEST(stalled_connects_do_not_block)
{
	struct tagent t;
	struct app a, b;
	struct wave_host_opts oa, ob;
	int stalled[4];
	char dir[64];

	cfg_timeout_ms = 60000;
	setup_agent(&t, dir, "", "{\"workers\": 2}");
	cfg_timeout_ms = 5000;
	app_opts(&a, &oa);
	ck_assert_int_eq(app_connect(&a, uri, &oa, NULL, false), 0);
	for (unsigned i = 0; i < 4; i++)
		stalled[i] = stalled_connect(dir);
	for (uint64_t k = 1; k <= 200; k++)
		app_ask(&a, k);
	want_answers = 200;
	app_poll_until(&a, answered_want);
	ck_assert_uint_eq(a.agent_decisions, 200);
	ck_assert_uint_eq(a.to_fallback, 0);
	app_opts(&b, &ob);
	ob.connect_timeout_ms = 5000;
	ck_assert_int_eq(app_connect(&b, uri, &ob, NULL, false), 0);
	app_ask(&b, 1);
	app_poll_until(&b, answered_1);
	ck_assert_uint_eq(b.agent_decisions, 1);
	for (unsigned i = 0; i < 4; i++)
		close(stalled[i]);
	wave_host_close(a.h);
	wave_host_close(b.h);
	tagent_stop(&t);
	tmpdir_rm(dir);
}
END_TEST

/* More stalled hosts than the listener keeps pending (16): the rest wait
 * in the socket's backlog, and a real host behind them gets in once the
 * stalled ones are refused at their deadline (half the agent's heartbeat
 * timeout: 1 s here). */
START_TEST(stalled_connects_fill_pending)
{
	struct tagent t;
	struct app b;
	struct wave_host_opts ob;
	int stalled[20];
	char dir[64];

	cfg_timeout_ms = 2000;
	setup_agent(&t, dir, "", "{\"workers\": 2}");
	cfg_timeout_ms = 5000;
	for (unsigned i = 0; i < 20; i++)
		stalled[i] = stalled_connect(dir);
	app_opts(&b, &ob);
	ob.connect_timeout_ms = 30000;
	ck_assert_int_eq(app_connect(&b, uri, &ob, NULL, false), 0);
	app_ask(&b, 1);
	app_poll_until(&b, answered_1);
	ck_assert_uint_eq(b.agent_decisions, 1);
	for (unsigned i = 0; i < 20; i++)
		close(stalled[i]);
	wave_host_close(b.h);
	tagent_stop(&t);
	tmpdir_rm(dir);
}
END_TEST

static Suite *session_suite(void)
{
	Suite *s = suite_create("session");
	TCase *tc = tcase_create("session");

	tcase_add_test(tc, api_arguments);
	tcase_add_test(tc, older_structs_accepted);
	tcase_add_test(tc, refuse_bad_version);
	tcase_add_test(tc, refuse_unserved_domain);
	tcase_add_test(tc, refuse_bad_token);
	tcase_add_test(tc, two_hosts_isolated);
	tcase_add_test(tc, event_bursts);
	tcase_add_test(tc, stale_decision_refused);
	tcase_add_test(tc, hostile_host_dropped);
	tcase_add_test(tc, custom_key_bound);
	tcase_add_test(tc, max_hosts_refuses_one_more);
	tcase_add_test(tc, silent_host_declared_dead);
	tcase_add_test(tc, slow_host_backpressure);
	tcase_add_test(tc, hot_swap_replays_state);
	tcase_add_test(tc, daemon_killed_and_restarted);
	tcase_add_test(tc, daemon_sighup_hot_swap);
	tcase_add_test(tc, daemon_goodbye_on_sigterm);
	tcase_add_test(tc, silent_agent_times_out);
	tcase_add_test(tc, stalled_connects_do_not_block);
	tcase_add_test(tc, stalled_connects_fill_pending);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	return wave_check_run(session_suite());
}
