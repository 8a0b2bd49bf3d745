/* SPDX-License-Identifier: MIT */
/*
 * Host sessions (include/wave/host.h): the handshake, heartbeats, fallback
 * and reconnection, and the custom domain's sequence checks. Everything
 * runs on the application's thread inside wave_host_poll() and
 * wave_host_event(); see docs/sessions.md for the state machine.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <wave/host.h>
#include <wave/plugin.h>

#include "../core/core.h"
#include "host_impl.h"
#include "../decision/keytab.h"
#include "proto.h"

enum conn_state {
	CONN_NONE,  /* no channel; reconnect at next_attempt_ns */
	CONN_HELLO, /* hello sent, waiting for welcome or refuse */
	CONN_READY, /* welcomed */
};

struct wave_host {
	char *uri;
	struct wave_host_opts o;
	struct wave_host_ops ops;
	struct wave_chan_opts copts;
	struct wave_hello hello;
	struct wave_chan *ch;
	enum conn_state conn;
	enum wave_host_state state;
	uint64_t last_seq; /* the last host sequence number given out */
	uint64_t last_rx_ns, next_hb_ns, hb_count, hello_deadline_ns;
	uint64_t next_attempt_ns;
	uint32_t backoff_ms;
	int in_cb, in_replay;
	int applied; /* agent decisions applied in this call */
	struct keytab kt;
	struct wave_host_stats st;
	/* Messages of the sched domain go to its module (host_impl.h). */
	host_domain_msg_fn sched_msg;
	void *sched_user;
};

#define MS (1000000ull)

static void host_err(struct wave_error *err, const char *uri, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void host_err(struct wave_error *err, const char *uri, int code, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return;
	memset(err, 0, sizeof(*err));
	err->code = code;
	snprintf(err->source, sizeof(err->source), "%s", uri);
	va_start(ap, fmt);
	vsnprintf(err->text, sizeof(err->text), fmt, ap);
	va_end(ap);
}

WAVE_API int wave_host_opts_init(struct wave_host_opts *o)
{
	if (!o)
		return -EINVAL;
	memset(o, 0, sizeof(*o));
	o->size = sizeof(*o);
	o->domains = WAVE_HOST_DOMAIN(WAVE_DOMAIN_CUSTOM);
	o->heartbeat_period_ms = 100;
	o->heartbeat_timeout_ms = 1000;
	o->reconnect_min_ms = 10;
	o->reconnect_max_ms = 1000;
	o->connect_timeout_ms = 1000;
	return 0;
}

static int opts_check(const struct wave_host_opts *o)
{
	const struct wave_host_ops *ops = o->ops;

	if (o->size != sizeof(*o) || !ops || ops->size < offsetof(struct wave_host_ops, on_state) ||
	    ops->size > sizeof(*ops) || !ops->on_decision || !ops->decide)
		return -EINVAL;
	if (o->domains == 0 || o->domains & ~WAVE_PROTO_DOMAINS_ALL)
		return -EINVAL;
	if (o->token && (o->token[0] == '\0' || strlen(o->token) > WAVE_PROTO_TOKEN_MAX))
		return -EINVAL;
	if (o->heartbeat_period_ms == 0 || o->heartbeat_timeout_ms <= o->heartbeat_period_ms)
		return -EINVAL;
	if (o->reconnect_min_ms == 0 || o->reconnect_max_ms < o->reconnect_min_ms ||
	    o->connect_timeout_ms <= 0)
		return -EINVAL;
	return 0;
}

static void host_set_state(struct wave_host *h, enum wave_host_state s)
{
	if (h->state == s)
		return;
	h->state = s;
	if (!WAVE_OPS_HAS(&h->ops, struct wave_host_ops, on_state))
		return;
	h->in_cb++;
	h->ops.on_state(h, s, h->o.user);
	h->in_cb--;
}

static void deliver(struct wave_host *h, const struct wave_msg *d, enum wave_decision_source src)
{
	h->in_cb++;
	h->ops.on_decision(h, d, src, h->o.user);
	h->in_cb--;
}

/* Runs decide() for the pending event of @e. */
static void decide_locally(struct wave_host *h, struct kt_entry *e)
{
	struct wave_msg out;
	int ret;

	memset(&out, 0, sizeof(out));
	h->in_cb++;
	ret = h->ops.decide(h, &e->ev, &out, h->o.user);
	h->in_cb--;
	if (ret < 0 || out.type < WAVE_MSG_APP_FIRST) {
		h->st.fallback_errors++;
		return;
	}
	WAVE_CUSTOM_KEY(&out) = e->key;
	WAVE_CUSTOM_SEQ(&out) = e->seq;
	e->pending = false;
	h->st.decisions_fallback++;
	deliver(h, &out, WAVE_DECISION_FALLBACK);
}

static void schedule_attempt(struct wave_host *h, uint64_t now)
{
	h->next_attempt_ns = now + h->backoff_ms * MS;
	h->backoff_ms = h->backoff_ms * 2 > h->o.reconnect_max_ms ? h->o.reconnect_max_ms
								  : h->backoff_ms * 2;
}

static void drop_channel(struct wave_host *h)
{
	wave_chan_close(h->ch);
	h->ch = NULL;
	h->conn = CONN_NONE;
	schedule_attempt(h, wave_now_ns());
}

/* The agent is gone (closed, died, silent, or broke the protocol): decide
 * locally from now on, starting with every event it left undecided. */
static void lose_agent(struct wave_host *h, const char *why)
{
	bool had_control = h->state == WAVE_HOST_AGENT;

	wave_warn("host %s: agent lost (%s); %s", h->uri, why,
		  had_control ? "switching to fallback" : "still on fallback");
	drop_channel(h);
	if (!had_control)
		return;
	h->st.fallbacks++;
	host_set_state(h, WAVE_HOST_FALLBACK);
	/* Index-wise: decide() cannot add keys (wave_host_event() is refused
	 * inside callbacks), so the table does not move under us. */
	for (size_t i = 0; i < h->kt.cap; i++)
		if (h->kt.e[i].seq && h->kt.e[i].pending)
			decide_locally(h, &h->kt.e[i]);
}

static int send_hello(struct wave_host *h)
{
	struct wave_msg m[1 + (WAVE_PROTO_TOKEN_MAX / WAVE_PROTO_AUTH_TOKEN) + 1];
	unsigned n = wave_proto_hello(&h->hello, m);
	int ret = wave_chan_send_bulk(h->ch, m, n);

	return ret < 0 ? ret : 0;
}

/* Opens the channel and sends the hello. */
static int start_connect(struct wave_host *h)
{
	int ret = wave_chan_open(h->uri, &h->copts, &h->ch);

	if (ret < 0)
		return ret;
	ret = send_hello(h);
	if (ret < 0) {
		wave_chan_close(h->ch);
		h->ch = NULL;
		return ret;
	}
	h->conn = CONN_HELLO;
	h->hello_deadline_ns = wave_now_ns() + (uint64_t)h->o.connect_timeout_ms * MS;
	return 0;
}

static int on_welcome(struct wave_host *h, const struct wave_msg *m, struct wave_error *err)
{
	struct wave_welcome w;

	if (wave_proto_welcome_decode(m, &w) < 0 || w.major != WAVE_PROTO_MAJOR ||
	    w.domains != h->o.domains) {
		host_err(err, h->uri, -WAVE_ECORRUPT, "malformed welcome from the agent");
		return -WAVE_ECORRUPT;
	}
	wave_info("host %s: welcomed, session %llu, protocol %u.%u", h->uri,
		  (unsigned long long)w.session_id, w.major, w.minor);
	h->conn = CONN_READY;
	h->last_rx_ns = wave_now_ns();
	h->next_hb_ns = h->last_rx_ns;
	return 1;
}

static int on_refuse(struct wave_host *h, const struct wave_msg *m, struct wave_error *err)
{
	struct wave_refuse r;

	if (wave_proto_refuse_decode(m, &r) < 0) {
		host_err(err, h->uri, -WAVE_ECORRUPT, "malformed refusal from the agent");
		return -WAVE_ECORRUPT;
	}
	host_err(err, h->uri, r.code, "agent refused the host: %s", r.text);
	wave_warn("host %s: agent refused the host: %s", h->uri, r.text);
	return r.code;
}

/* One step of the handshake. Return: 1 welcomed, 0 not yet, or an error. */
static int handshake_step(struct wave_host *h, struct wave_error *err)
{
	struct wave_msg m;
	int ret;

	/* One at a time: what follows the welcome is the session's. */
	while ((ret = wave_chan_recv_burst(h->ch, &m, 1)) == 1) {
		if (m.type == WAVE_CTL_WELCOME)
			return on_welcome(h, &m, err);
		if (m.type == WAVE_CTL_REFUSE)
			return on_refuse(h, &m, err);
		if (m.type != WAVE_CTL_HEARTBEAT) {
			host_err(err, h->uri, -WAVE_ECORRUPT,
				 "agent sent type 0x%04x before its welcome", m.type);
			return -WAVE_ECORRUPT;
		}
	}
	if (ret < 0)
		host_err(err, h->uri, ret, "agent closed the channel during the handshake: %s",
			 wave_strerror(ret));
	else if (wave_now_ns() >= h->hello_deadline_ns) {
		host_err(err, h->uri, -ETIMEDOUT, "agent did not answer the hello in %d ms",
			 h->o.connect_timeout_ms);
		ret = -ETIMEDOUT;
	}
	return ret;
}

/* The agent welcomed us: resync, then hand it control. */
static void take_control(struct wave_host *h)
{
	int ret = 0;

	h->backoff_ms = h->o.reconnect_min_ms;
	if (WAVE_OPS_HAS(&h->ops, struct wave_host_ops, replay)) {
		h->in_replay = 1;
		ret = h->ops.replay(h, h->o.user);
		h->in_replay = 0;
	}
	if (ret < 0 || h->conn != CONN_READY) {
		wave_warn("host %s: resync failed (%s); staying on fallback", h->uri,
			  wave_strerror(ret));
		if (h->conn != CONN_NONE)
			drop_channel(h);
		return;
	}
	if (h->state != WAVE_HOST_AGENT)
		h->st.reconnects++;
	host_set_state(h, WAVE_HOST_AGENT);
}

static void try_reconnect(struct wave_host *h, uint64_t now)
{
	int ret;

	if (h->conn == CONN_NONE) {
		if (now < h->next_attempt_ns)
			return;
		ret = start_connect(h);
		if (ret < 0) {
			wave_dbg("host %s: reconnect: %s", h->uri, wave_strerror(ret));
			schedule_attempt(h, now);
			return;
		}
	}
	ret = handshake_step(h, NULL);
	if (ret == 1)
		take_control(h);
	else if (ret < 0)
		drop_channel(h);
}

static void apply_decision(struct wave_host *h, const struct wave_msg *m)
{
	uint64_t key = WAVE_CUSTOM_KEY(m), seq = WAVE_CUSTOM_SEQ(m);
	struct kt_entry *e;

	if (seq > h->last_seq) { /* based on an event never sent */
		h->st.bad++;
		return;
	}
	e = kt_find(&h->kt, key);
	if (e && seq < e->seq) {
		h->st.stale++;
		return;
	}
	if (e && !e->pending) {
		h->st.duplicates++;
		return;
	}
	if (e)
		e->pending = false;
	h->st.decisions_agent++;
	h->applied++;
	deliver(h, m, WAVE_DECISION_AGENT);
}

/* A control message after the welcome. Return: 0, or -1 if the agent is
 * leaving or broke the protocol. */
static int on_control(struct wave_host *h, const struct wave_msg *m)
{
	uint64_t count;
	uint32_t reason;

	if (m->type == WAVE_CTL_HEARTBEAT && wave_proto_heartbeat_decode(m, &count) == 0)
		return 0;
	if (m->type == WAVE_CTL_BYE && wave_proto_bye_decode(m, &reason) == 0) {
		lose_agent(h, "agent said goodbye");
		return -1;
	}
	h->st.bad++;
	lose_agent(h, "malformed control message");
	return -1;
}

static void handle(struct wave_host *h, const struct wave_msg *m)
{
	if (wave_msg_is_control(m->type)) {
		on_control(h, m);
		return;
	}
	if (m->type >= WAVE_MSG_APP_FIRST && (h->o.domains & WAVE_HOST_DOMAIN(WAVE_DOMAIN_CUSTOM)))
		apply_decision(h, m);
	else if (m->type >= WAVE_MSG_SCHED_FIRST && m->type <= WAVE_MSG_SCHED_LAST &&
		 h->sched_msg)
		h->sched_msg(h->sched_user, m); /* counts its own refusals */
	else
		h->st.bad++;
}

/* @now: the poll's clock, taken just before (one reading per poll). */
static void receive(struct wave_host *h, uint64_t now)
{
	struct wave_msg m[32];
	int n;

	while (h->conn == CONN_READY) {
		n = wave_chan_recv_burst(h->ch, m, WAVE_ARRAY_SIZE(m));
		if (n < 0) {
			lose_agent(h, wave_strerror(n));
			return;
		}
		if (n == 0)
			return;
		h->last_rx_ns = now;
		for (int i = 0; i < n && h->conn == CONN_READY; i++)
			handle(h, &m[i]);
	}
}

static void heartbeat(struct wave_host *h, uint64_t now)
{
	struct wave_msg m;

	/* last_rx_ns may be later than @now after a reconnection. */
	if (now > h->last_rx_ns && now - h->last_rx_ns > h->o.heartbeat_timeout_ms * MS) {
		lose_agent(h, "heartbeat timeout");
		return;
	}
	if (now < h->next_hb_ns)
		return;
	wave_proto_heartbeat(++h->hb_count, &m);
	/* A full ring means the agent is not reading: its silence, not
	 * ours, is what the timeout catches. */
	if (wave_chan_send_burst(h->ch, &m, 1) < 0) {
		lose_agent(h, "channel failed");
		return;
	}
	/* Sent or skipped, the next one is due a period later. */
	h->next_hb_ns = now + h->o.heartbeat_period_ms * MS;
}

static void progress(struct wave_host *h, uint64_t now)
{
	if (h->conn != CONN_READY) {
		try_reconnect(h, now);
		return;
	}
	receive(h, now);
	if (h->conn == CONN_READY)
		heartbeat(h, now);
}

static uint64_t min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* Sleeps until @deadline or something to do, whichever comes first. */
static void host_wait(struct wave_host *h, uint64_t deadline)
{
	uint64_t now = wave_now_ns(), until = deadline;
	struct timespec ts;

	if (h->conn == CONN_READY) {
		until = min64(until, h->next_hb_ns);
		until = min64(until, h->last_rx_ns + h->o.heartbeat_timeout_ms * MS + 1);
	} else if (h->conn == CONN_HELLO) {
		until = min64(until, h->hello_deadline_ns);
	} else {
		until = min64(until, h->next_attempt_ns);
	}
	if (until <= now)
		return;
	if (h->ch) {
		if (wave_chan_wait(h->ch, (int64_t)(until - now)) < 0)
			return; /* the next receive reports it */
		return;
	}
	ts.tv_sec = (time_t)((until - now) / 1000000000u);
	ts.tv_nsec = (long)((until - now) % 1000000000u);
	nanosleep(&ts, NULL);
}

WAVE_API int wave_host_poll(struct wave_host *h, int timeout_ms)
{
	uint64_t now, deadline;

	if (!h || timeout_ms < 0 || h->in_cb || h->in_replay)
		return -EINVAL;
	/* One reading of the clock for a poll that finds work or may not
	 * wait: this is the host's hot path. */
	now = wave_now_ns();
	deadline = now + (uint64_t)timeout_ms * MS;
	h->applied = 0;
	for (;;) {
		progress(h, now);
		if (h->applied || timeout_ms == 0 || (now = wave_now_ns()) >= deadline)
			break;
		host_wait(h, deadline);
		now = wave_now_ns();
	}
	return h->applied;
}

/* Sends @m to the agent. During a replay, waits (bounded by the connect
 * timeout) for room instead of failing: the agent is reading. */
static int send_event(struct wave_host *h, const struct wave_msg *m)
{
	uint64_t deadline = 0;
	struct timespec ts = { 0, 50000 };
	int ret;

	for (;;) {
		ret = wave_chan_send_burst(h->ch, m, 1);
		if (ret != 0 || !h->in_replay)
			return ret;
		/* A full ring during a replay: only then is the clock read. */
		if (!deadline)
			deadline = wave_now_ns() + (uint64_t)h->o.connect_timeout_ms * MS;
		else if (wave_now_ns() >= deadline)
			return ret;
		nanosleep(&ts, NULL);
	}
}

/* Records event @m, just sent or about to be decided, in entry @e. */
static void record(struct wave_host *h, struct kt_entry *e, const struct wave_msg *m)
{
	e->ev = *m;
	e->seq = WAVE_CUSTOM_SEQ(m);
	e->pending = true;
	h->last_seq = e->seq;
	h->st.events++;
}

static bool to_agent(const struct wave_host *h)
{
	return h->conn == CONN_READY && (h->state == WAVE_HOST_AGENT || h->in_replay);
}

WAVE_API int wave_host_event(struct wave_host *h, const struct wave_msg *ev, uint64_t key,
			     uint64_t *seq)
{
	struct wave_msg m;
	struct kt_entry *e;
	int ret;

	if (!h || !ev || ev->type < WAVE_MSG_APP_FIRST ||
	    !(h->o.domains & WAVE_HOST_DOMAIN(WAVE_DOMAIN_CUSTOM)))
		return -EINVAL;
	if (h->in_cb)
		return -EBUSY;
	/* The entry first: once the event is sent it must be recorded. */
	e = kt_get(&h->kt, key);
	if (!e)
		return -ENOMEM;
	m = *ev;
	WAVE_CUSTOM_KEY(&m) = key;
	WAVE_CUSTOM_SEQ(&m) = h->last_seq + 1;
	if (to_agent(h)) {
		ret = send_event(h, &m);
		if (ret == 0) {
			if (e->seq == 0)
				h->kt.n--; /* the fresh slot stays free */
			return -EAGAIN;
		}
		if (ret < 0)
			lose_agent(h, wave_strerror(ret));
	}
	record(h, e, &m);
	if (seq)
		*seq = e->seq;
	if (!to_agent(h))
		decide_locally(h, e);
	return 0;
}

static int host_make(const char *uri, const struct wave_host_opts *o, struct wave_host **out)
{
	struct wave_host *h = calloc(1, sizeof(*h));
	int ret;

	if (!h)
		return -ENOMEM;
	h->uri = strdup(uri);
	if (!h->uri) {
		free(h);
		return -ENOMEM;
	}
	h->o = *o;
	memcpy(&h->ops, o->ops, o->ops->size);
	h->ops.size = sizeof(h->ops);
	ret = o->chan ? (o->chan->size == sizeof(h->copts) ? 0 : -EINVAL) : 0;
	if (o->chan && ret == 0)
		h->copts = *o->chan;
	else
		wave_chan_opts_init(&h->copts);
	h->copts.role = WAVE_ROLE_HOST;
	h->copts.timeout_ms = o->connect_timeout_ms;
	h->o.chan = NULL;
	h->o.token = NULL;
	h->hello.major = WAVE_PROTO_MAJOR;
	h->hello.minor = WAVE_PROTO_MINOR;
	h->hello.role = WAVE_ROLE_HOST;
	h->hello.domains = o->domains;
	h->hello.heartbeat_period_ms = o->heartbeat_period_ms;
	if (o->token) {
		h->hello.token_len = (uint16_t)strlen(o->token);
		memcpy(h->hello.token, o->token, h->hello.token_len);
	}
	h->state = WAVE_HOST_AGENT;
	h->backoff_ms = o->reconnect_min_ms;
	kt_init(&h->kt);
	*out = h;
	return ret;
}

static void host_free(struct wave_host *h)
{
	wave_chan_close(h->ch);
	kt_fini(&h->kt);
	/* The token copy is a secret: do not leave it in freed memory. */
	explicit_bzero(h->hello.token, sizeof(h->hello.token));
	free(h->uri);
	free(h);
}

/* The first handshake, blocking up to the connect timeout. */
static int first_handshake(struct wave_host *h, struct wave_error *err)
{
	int ret = start_connect(h);
	uint64_t now;

	if (ret < 0) {
		host_err(err, h->uri, ret, "cannot open a channel to the agent: %s",
			 wave_strerror(ret));
		return ret;
	}
	for (;;) {
		ret = handshake_step(h, err);
		if (ret != 0)
			return ret < 0 ? ret : 0;
		now = wave_now_ns();
		wave_chan_wait(h->ch, (int64_t)(h->hello_deadline_ns - now));
	}
}

WAVE_API int wave_host_connect(const char *uri, const struct wave_host_opts *opts,
			       struct wave_host **out, struct wave_error *err)
{
	struct wave_host *h = NULL;
	int ret;

	if (err)
		memset(err, 0, sizeof(*err));
	if (!uri || !opts || !out || opts_check(opts) < 0) {
		host_err(err, uri ? uri : "", -EINVAL, "invalid argument");
		return -EINVAL;
	}
	ret = host_make(uri, opts, &h);
	if (ret == 0)
		ret = first_handshake(h, err);
	else if (err && !err->code)
		host_err(err, uri, ret, "%s", wave_strerror(ret));
	if (ret < 0) {
		if (h)
			host_free(h);
		return ret;
	}
	if (err)
		memset(err, 0, sizeof(*err));
	*out = h;
	return 0;
}

WAVE_API int wave_host_state(const struct wave_host *h)
{
	return h ? (int)h->state : -EINVAL;
}

WAVE_API int wave_host_stats(const struct wave_host *h, struct wave_host_stats *st)
{
	if (!h || !st)
		return -EINVAL;
	*st = h->st;
	return 0;
}

WAVE_API void wave_host_close(struct wave_host *h)
{
	struct wave_msg m;

	if (!h)
		return;
	if (h->conn != CONN_NONE) {
		wave_proto_bye(0, &m);
		/* Best effort: an agent that cannot take it sees the close. */
		(void)wave_chan_send_burst(h->ch, &m, 1);
	}
	host_free(h);
}

/* ---- for the host domain modules (host_impl.h) ------------------------ */

void host_set_sched_handler(struct wave_host *h, host_domain_msg_fn fn, void *user)
{
	h->sched_msg = fn;
	h->sched_user = user;
}

bool host_to_agent(const struct wave_host *h)
{
	return to_agent(h);
}

int host_send(struct wave_host *h, const struct wave_msg *m, unsigned n)
{
	uint64_t deadline = wave_now_ns() + (uint64_t)h->o.connect_timeout_ms * MS;
	struct timespec ts = { 0, 50000 };
	unsigned done = 0;
	int ret;

	if (!to_agent(h))
		return -ENOTCONN;
	while (done < n) {
		ret = wave_chan_send_burst(h->ch, m + done, n - done);
		if (ret < 0) {
			lose_agent(h, wave_strerror(ret));
			return done ? (int)done : ret;
		}
		done += (unsigned)ret;
		/* During a replay, wait (bounded) for room: the agent reads. */
		if (done == n || !h->in_replay)
			break;
		if (wave_now_ns() >= deadline) {
			lose_agent(h, "resync timed out");
			return -ETIMEDOUT;
		}
		if (ret == 0)
			nanosleep(&ts, NULL);
	}
	return (int)done;
}

void host_lose_agent(struct wave_host *h, const char *why)
{
	if (h->conn != CONN_NONE)
		lose_agent(h, why);
}

int host_open(const char *uri, const struct wave_host_opts *opts, struct wave_host **out,
	      struct wave_error *err)
{
	struct wave_host *h = NULL;
	int ret;

	if (!uri || !opts || !out || opts_check(opts) < 0)
		return -EINVAL;
	ret = host_make(uri, opts, &h);
	if (ret < 0) {
		if (h)
			host_free(h);
		return ret;
	}
	ret = first_handshake(h, err);
	/* A refusal is a configuration error; no agent (yet) is not. */
	if (ret == -WAVE_EREFUSED || ret == -WAVE_EVERSION || ret == -WAVE_EURI ||
	    ret == -ENOMEM || ret == -EINVAL) {
		host_free(h);
		return ret;
	}
	if (ret < 0) {
		wave_info("host %s: no agent (%s); starting on fallback", uri, wave_strerror(ret));
		if (h->ch) {
			wave_chan_close(h->ch);
			h->ch = NULL;
		}
		h->conn = CONN_NONE;
		h->state = WAVE_HOST_FALLBACK;
		schedule_attempt(h, wave_now_ns());
	}
	*out = h;
	return ret < 0 ? 1 : 0;
}
