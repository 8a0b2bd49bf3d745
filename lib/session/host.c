/* SPDX-License-Identifier: MIT */
/*
 * Host sessions (include/wave/host.h, host_impl.h): the handshake,
 * heartbeats, fallback, reconnection and resync, for whatever domains
 * registered. Messages from the agent go to the domain owning their type;
 * a change of control and a resync go to every domain. Everything runs on
 * the application's thread inside wave_host_poll() and the domains' calls;
 * see docs/sessions.md for the state machine.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <wave/host.h>

#include "../core/core.h"
#include "host_impl.h"
#include "opener.h"
#include "proto.h"

enum conn_state {
	CONN_NONE,  /* no channel; reconnect at next_attempt_ns */
	CONN_OPENING, /* an opener (opener.h) opens a channel: @opener */
	CONN_HELLO, /* hello sent, waiting for welcome or refuse */
	CONN_READY, /* welcomed */
};

struct wave_host {
	char *uri;
	struct wave_host_opts o;
	struct wave_chan_opts copts; /* its token points to @chan_token */
	char chan_token[WAVE_CHAN_TOKEN_MAX + 1];
	struct wave_hello hello;
	struct wave_chan *ch;
	struct opener *opener; /* CONN_OPENING's */
	enum conn_state conn;
	enum wave_host_state state;
	uint64_t last_rx_ns, next_hb_ns, hb_count, hello_deadline_ns;
	/* Heartbeats in a row that found the agent's ring full, with nothing
	 * else taken since the first (heartbeat()). */
	uint32_t hb_unread;
	uint64_t next_attempt_ns, control_since_ns;
	uint32_t backoff_ms;
	int in_cb, in_replay;
	int applied; /* agent decisions applied in this call */
	struct wave_host_stats st; /* the session's own counters */
	struct host_domain dom[WAVE_DOMAIN_COUNT];
	uint32_t registered; /* WAVE_HOST_DOMAIN() bits of @dom */
};

#define MS (1000000ull)

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

int host_opts_copy(struct wave_host_opts *o, const struct wave_host_opts *in)
{
	wave_host_opts_init(o);
	if (in && wave_struct_copy(o, sizeof(*o), in, in->size,
				   WAVE_SIZE_TO(struct wave_host_opts, user), "struct wave_host_opts") < 0)
		return -EINVAL;
	o->size = sizeof(*o);
	return 0;
}

/* The caller's options over the defaults, checked. */
static int opts_copy(struct wave_host_opts *o, const struct wave_host_opts *in)
{
	if (host_opts_copy(o, in) < 0)
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

/* ---- the domains ------------------------------------------------------------ */

#define FOR_EACH_DOMAIN(h, d)                                                  \
	for (__typeof__(&(h)->dom[0]) d = (h)->dom; d < (h)->dom + WAVE_DOMAIN_COUNT; d++) \
		if ((h)->registered & WAVE_HOST_DOMAIN(d->id))

static void host_set_state(struct wave_host *h, enum wave_host_state s)
{
	if (h->state == s)
		return;
	h->state = s;
	FOR_EACH_DOMAIN(h, d)
	{
		if (!d->on_state)
			continue;
		h->in_cb++;
		d->on_state(d->user, s);
		h->in_cb--;
	}
}

/* Resync: every domain re-sends its state. Return: 0 or the first error. */
static int replay_domains(struct wave_host *h)
{
	int ret = 0;

	h->in_replay = 1;
	FOR_EACH_DOMAIN(h, d)
	{
		if (d->replay && (ret = d->replay(d->user)) < 0)
			break;
		if (h->conn != CONN_READY)
			break; /* lost during the replay */
	}
	h->in_replay = 0;
	return ret;
}

/* The domain owning message type @type, or NULL. */
static struct host_domain *domain_of(struct wave_host *h, uint16_t type)
{
	FOR_EACH_DOMAIN(h, d)
		if (type >= d->first && type <= d->last)
			return d;
	return NULL;
}

/* ---- connection ------------------------------------------------------------- */

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

/* The agent is gone (closed, died, silent, or broke the protocol): the
 * domains decide locally from now on. */
static void lose_agent(struct wave_host *h, const char *why)
{
	bool had_control = h->state == WAVE_HOST_AGENT;

	wave_warn("host %s: agent lost (%s); %s", h->uri, why,
		  had_control ? "switching to fallback" : "still on fallback");
	/* An agent that held control for a while starts the backoff over;
	 * one that welcomes the host and then breaks the protocol (or dies)
	 * at once keeps it growing, or the host would resync with it every
	 * reconnect_min_ms for ever. */
	if (had_control &&
	    wave_now_ns() - h->control_since_ns >= (uint64_t)h->o.reconnect_max_ms * MS)
		h->backoff_ms = h->o.reconnect_min_ms;
	drop_channel(h);
	if (!had_control)
		return;
	h->st.fallbacks++;
	host_set_state(h, WAVE_HOST_FALLBACK);
}

static int send_hello(struct wave_host *h)
{
	struct wave_msg m[1 + (WAVE_PROTO_TOKEN_MAX / WAVE_PROTO_AUTH_TOKEN) + 1];
	unsigned n = wave_proto_hello(&h->hello, m);
	int ret = wave_chan_send_bulk(h->ch, m, n);

	return ret < 0 ? ret : 0;
}

/* Sends the hello on the channel just opened. */
static int say_hello(struct wave_host *h)
{
	int ret = send_hello(h);

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
	    w.domains != h->o.domains)
		return wave_error_set(err, -WAVE_ECORRUPT, h->uri, 0, 0,
				      "malformed welcome from the agent");
	wave_info("host %s: welcomed, session %llu, protocol %u.%u", h->uri,
		  (unsigned long long)w.session_id, w.major, w.minor);
	h->conn = CONN_READY;
	h->last_rx_ns = wave_now_ns();
	h->next_hb_ns = h->last_rx_ns;
	h->hb_unread = 0;
	return 1;
}

static int on_refuse(struct wave_host *h, const struct wave_msg *m, struct wave_error *err)
{
	struct wave_refuse r;

	if (wave_proto_refuse_decode(m, &r) < 0)
		return wave_error_set(err, -WAVE_ECORRUPT, h->uri, 0, 0,
				      "malformed refusal from the agent");
	wave_warn("host %s: agent refused the host: %s", h->uri, r.text);
	return wave_error_set(err, r.code, h->uri, 0, 0, "agent refused the host: %s", r.text);
}

/* Messages one handshake step reads at most. */
#define HANDSHAKE_STEP_MSGS 64u

/* One step of the handshake. Return: 1 welcomed, 0 not yet, or an error. */
static int handshake_step(struct wave_host *h, struct wave_error *err)
{
	struct wave_msg m;
	int ret;

	/* One at a time: what follows the welcome is the session's. A
	 * bounded number per step, so that the deadline below is checked
	 * against an agent that heartbeats and never welcomes. */
	for (unsigned k = 0; k < HANDSHAKE_STEP_MSGS; k++) {
		if ((ret = wave_chan_recv_burst(h->ch, &m, 1)) != 1)
			break;
		if (m.type == WAVE_CTL_WELCOME)
			return on_welcome(h, &m, err);
		if (m.type == WAVE_CTL_REFUSE)
			return on_refuse(h, &m, err);
		if (m.type != WAVE_CTL_HEARTBEAT)
			return wave_error_set(err, -WAVE_ECORRUPT, h->uri, 0, 0,
					      "agent sent type 0x%04x before its welcome", m.type);
	}
	if (ret > 0)
		ret = 0; /* only heartbeats, so far */
	if (ret < 0)
		wave_error_set(err, ret, h->uri, 0, 0,
			       "agent closed the channel during the handshake: %s",
			       wave_strerror(ret));
	else if (wave_now_ns() >= h->hello_deadline_ns)
		ret = wave_error_set(err, -ETIMEDOUT, h->uri, 0, 0,
				     "agent did not answer the hello in %d ms",
				     h->o.connect_timeout_ms);
	return ret;
}

/* The agent welcomed us: resync, then hand it control. */
static void take_control(struct wave_host *h)
{
	int ret;

	ret = replay_domains(h);
	if (ret < 0 || h->conn != CONN_READY) {
		wave_warn("host %s: resync failed (%s); staying on fallback", h->uri,
			  wave_strerror(ret));
		if (h->conn != CONN_NONE)
			drop_channel(h);
		return;
	}
	if (h->state != WAVE_HOST_AGENT)
		h->st.reconnects++;
	h->control_since_ns = wave_now_ns();
	host_set_state(h, WAVE_HOST_AGENT);
}

/* A reconnection's open runs on a thread of its own (opener.h): it may
 * wait up to connect_timeout_ms (an agent that is stopped, or a dead one
 * over fabric://tcp;ofi_rxm), and no poll of the application's waits
 * with it. Its next calls look whether it is over. */
static void try_reconnect(struct wave_host *h, uint64_t now)
{
	struct wave_chan *ch;
	int ret;

	if (h->conn == CONN_NONE) {
		if (now < h->next_attempt_ns)
			return;
		if ((ret = opener_start(h->uri, &h->copts, &h->opener)) < 0) {
			wave_dbg("host %s: reconnect: %s", h->uri, wave_strerror(ret));
			schedule_attempt(h, now);
			return;
		}
		h->conn = CONN_OPENING;
	}
	if (h->conn == CONN_OPENING) {
		if (!opener_take(h->opener, &ch, &ret))
			return;
		h->opener = NULL;
		h->conn = CONN_NONE;
		h->ch = ch;
		if (ret < 0 || (ret = say_hello(h)) < 0) {
			wave_dbg("host %s: reconnect: %s", h->uri, wave_strerror(ret));
			/* From the attempt's end: an open that waited its
			 * timeout is not due again at once. */
			schedule_attempt(h, wave_now_ns());
			return;
		}
	}
	ret = handshake_step(h, NULL);
	if (ret == 1)
		take_control(h);
	else if (ret < 0)
		drop_channel(h);
}

/* ---- under the agent's control ---------------------------------------------- */

/* A control message after the welcome. */
static void on_control(struct wave_host *h, const struct wave_msg *m)
{
	uint64_t count;
	uint32_t reason;

	if (m->type == WAVE_CTL_HEARTBEAT && wave_proto_heartbeat_decode(m, &count) == 0)
		return;
	if (m->type == WAVE_CTL_BYE && wave_proto_bye_decode(m, &reason) == 0) {
		lose_agent(h, "agent said goodbye");
		return;
	}
	h->st.bad++;
	lose_agent(h, "malformed control message");
}

static void handle(struct wave_host *h, const struct wave_msg *m)
{
	struct host_domain *d;
	int applied;

	if (wave_msg_is_control(m->type)) {
		on_control(h, m);
		return;
	}
	if (!(d = domain_of(h, m->type))) {
		h->st.bad++; /* a type outside the domains asked for */
		return;
	}
	h->in_cb++;
	applied = d->on_msg(d->user, m); /* counts its own refusals */
	h->in_cb--;
	if (applied > 0)
		h->applied += applied;
}

/* Messages one poll takes at most: an agent that sends as fast as the
 * domains' callbacks take must not keep the application's poll (and the
 * heartbeats after it) from returning; the rest waits for the next. */
#define RECEIVE_MAX 1024u

/* @now: the poll's clock, taken just before (one reading per poll). */
static void receive(struct wave_host *h, uint64_t now)
{
	struct wave_msg m[32];
	unsigned taken = 0;
	int n;

	while (h->conn == CONN_READY && taken < RECEIVE_MAX) {
		n = wave_chan_recv_burst(h->ch, m, WAVE_ARRAY_SIZE(m));
		if (n < 0) {
			lose_agent(h, wave_strerror(n));
			return;
		}
		if (n == 0)
			return;
		h->last_rx_ns = now;
		taken += (unsigned)n;
		for (int i = 0; i < n && h->conn == CONN_READY; i++)
			handle(h, &m[i]);
	}
}

static void heartbeat(struct wave_host *h, uint64_t now)
{
	uint32_t period = h->o.heartbeat_period_ms, timeout = h->o.heartbeat_timeout_ms;
	struct wave_msg m;
	int ret;

	/* last_rx_ns may be later than @now after a reconnection. */
	if (now > h->last_rx_ns && now - h->last_rx_ns > timeout * MS) {
		lose_agent(h, "heartbeat timeout");
		return;
	}
	if (now < h->next_hb_ns)
		return;
	wave_proto_heartbeat(++h->hb_count, &m);
	if ((ret = wave_chan_send_burst(h->ch, &m, 1)) < 0) {
		lose_agent(h, "channel failed");
		return;
	}
	/* Heartbeats alone do not prove an agent alive: one that stopped
	 * reading would have the domains' events pile up for ever. It is
	 * lost when a timeout's worth of heartbeats in a row find its ring
	 * full. They are counted, not timed: between two, this host polled
	 * and so emptied the agent's ring, which is what lets a live agent
	 * read again (it leaves events unread while its own sends wait). */
	if (ret == 0 && ++h->hb_unread >= (timeout + period - 1) / period) {
		lose_agent(h, "it has read nothing for a timeout's worth of heartbeats");
		return;
	}
	if (ret > 0)
		h->hb_unread = 0;
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

/* When the session next needs a call, whatever arrives meanwhile. */
static uint64_t next_due(const struct wave_host *h)
{
	if (h->conn == CONN_READY)
		return wave_min_u64(h->next_hb_ns, h->last_rx_ns + h->o.heartbeat_timeout_ms * MS + 1);
	if (h->conn == CONN_OPENING) /* the opener tells no one: look now and then */
		return wave_now_ns() + HOST_SLEEP_STEP_NS;
	return h->conn == CONN_HELLO ? h->hello_deadline_ns : h->next_attempt_ns;
}

/* Sleeps until @deadline or something to do, whichever comes first. */
static void host_wait(struct wave_host *h, uint64_t deadline)
{
	uint64_t now = wave_now_ns(), until = wave_min_u64(deadline, next_due(h));
	struct timespec ts;

	if (until <= now)
		return;
	if (h->ch) {
		/* An error is reported by the next receive. */
		(void)wave_chan_wait(h->ch, (int64_t)(until - now));
		return;
	}
	ts = wave_timespec(until - now);
	nanosleep(&ts, NULL);
}

WAVE_API int wave_host_poll(struct wave_host *h, int64_t timeout_ns)
{
	uint64_t now, deadline;

	if (!h || h->in_cb || h->in_replay)
		return -EINVAL;
	/* One reading of the clock for a poll that finds work or may not
	 * wait: this is the host's hot path. */
	now = wave_now_ns();
	deadline = timeout_ns < 0 ? UINT64_MAX : now + (uint64_t)timeout_ns;
	h->applied = 0;
	for (;;) {
		progress(h, now);
		if (h->applied || timeout_ns == 0 || (now = wave_now_ns()) >= deadline)
			break;
		host_wait(h, deadline);
		now = wave_now_ns();
	}
	return h->applied;
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
	FOR_EACH_DOMAIN(h, d)
		if (d->stats)
			d->stats(d->user, st);
	return 0;
}

/* ---- life cycle ------------------------------------------------------------- */

static void host_free(struct wave_host *h)
{
	FOR_EACH_DOMAIN(h, d)
		if (d->fini)
			d->fini(d->user);
	opener_abandon(h->opener);
	wave_chan_close(h->ch);
	/* The token copies are secrets: do not leave them in freed memory. */
	explicit_bzero(h->hello.token, sizeof(h->hello.token));
	explicit_bzero(h->chan_token, sizeof(h->chan_token));
	free(h->uri);
	free(h);
}

int host_new(const char *uri, const struct wave_host_opts *opts, struct wave_host **out)
{
	struct wave_host *h;

	if (!uri || !opts || !out)
		return -EINVAL;
	if (!(h = calloc(1, sizeof(*h))))
		return -ENOMEM;
	wave_chan_opts_init(&h->copts);
	/* The channel's options by size too: from the oldest wave_chan_open()
	 * takes (up to max_slots) to ours. */
	if (opts_copy(&h->o, opts) < 0 ||
	    (h->o.chan &&
	     wave_struct_copy(&h->copts, sizeof(h->copts), h->o.chan, h->o.chan->size,
			      offsetof(struct wave_chan_opts, max_slots), "struct wave_chan_opts") < 0)) {
		free(h);
		return -EINVAL;
	}
	if (!(h->uri = strdup(uri))) {
		free(h);
		return -ENOMEM;
	}
	h->copts.size = sizeof(h->copts);
	h->copts.role = WAVE_ROLE_HOST;
	h->copts.timeout_ms = h->o.connect_timeout_ms;
	/* Copied, so that nothing of the caller's need outlive the call: the
	 * token (an over-long one is the open's -EINVAL, as it would be on
	 * a first connection), and no listener's uid list, which a host
	 * never uses. */
	if (h->copts.token) {
		size_t len = strnlen(h->copts.token, sizeof(h->chan_token));

		if (len == sizeof(h->chan_token)) {
			free(h->uri);
			free(h);
			return -EINVAL;
		}
		memcpy(h->chan_token, h->copts.token, len);
		h->copts.token = h->chan_token;
	}
	h->copts.allow_uids = NULL;
	h->copts.n_allow_uids = 0;
	h->hello.major = WAVE_PROTO_MAJOR;
	h->hello.minor = WAVE_PROTO_MINOR;
	h->hello.role = WAVE_ROLE_HOST;
	h->hello.domains = h->o.domains;
	h->hello.heartbeat_period_ms = h->o.heartbeat_period_ms;
	if (h->o.token) {
		h->hello.token_len = (uint16_t)strlen(h->o.token);
		memcpy(h->hello.token, h->o.token, h->hello.token_len);
	}
	/* Kept by value: the caller's pointers need not outlive the call. */
	h->o.chan = NULL;
	h->o.token = NULL;
	h->o.ops = NULL;
	h->state = WAVE_HOST_AGENT;
	h->backoff_ms = h->o.reconnect_min_ms;
	*out = h;
	return 0;
}

int host_add_domain(struct wave_host *h, const struct host_domain *d)
{
	if (!d || d->id >= WAVE_DOMAIN_COUNT || !d->on_msg || d->first > d->last ||
	    wave_msg_is_control(d->first) || !(h->o.domains & WAVE_HOST_DOMAIN(d->id)) ||
	    h->registered & WAVE_HOST_DOMAIN(d->id))
		return -EINVAL;
	FOR_EACH_DOMAIN(h, o)
		if (d->first <= o->last && o->first <= d->last)
			return -EINVAL;
	h->dom[d->id] = *d;
	h->registered |= WAVE_HOST_DOMAIN(d->id);
	return 0;
}

/* The first handshake, blocking up to the connect timeout. */
static int first_handshake(struct wave_host *h, struct wave_error *err)
{
	int ret = wave_chan_open(h->uri, &h->copts, &h->ch);
	uint64_t now;

	if (ret == 0)
		ret = say_hello(h);
	if (ret < 0)
		return wave_error_set(err, ret, h->uri, 0, 0, "cannot open a channel to the agent: %s",
				      wave_strerror(ret));
	for (;;) {
		ret = handshake_step(h, err);
		if (ret != 0)
			return ret < 0 ? ret : 0;
		now = wave_now_ns();
		/* Never negative: that would be WAVE_WAIT_FOREVER. */
		(void)wave_chan_wait(h->ch, now < h->hello_deadline_ns
						    ? (int64_t)(h->hello_deadline_ns - now)
						    : 0);
	}
}

/* Errors that say the agent will never take this host as it is. */
static bool final_error(int ret)
{
	return ret == -WAVE_EREFUSED || ret == -WAVE_EVERSION || ret == -WAVE_EURI ||
	       ret == -ENOMEM || ret == -EINVAL;
}

/* Starts on fallback: no domain has handed anything to an agent yet, so
 * none is told. */
static int start_on_fallback(struct wave_host *h, int why, struct wave_error *err)
{
	wave_info("host %s: no agent (%s); starting on fallback", h->uri, wave_strerror(why));
	if (h->ch) {
		wave_chan_close(h->ch);
		h->ch = NULL;
	}
	h->conn = CONN_NONE;
	h->state = WAVE_HOST_FALLBACK;
	schedule_attempt(h, wave_now_ns());
	wave_error_clear(err);
	return 1;
}

int host_start(struct wave_host *h, bool fallback_ok, struct wave_error *err)
{
	int ret;

	wave_error_clear(err);
	ret = first_handshake(h, err);
	if (ret == 0) {
		take_control(h);
		if (h->conn != CONN_READY)
			ret = wave_error_set(err, -WAVE_ECLOSED, h->uri, 0, 0,
					     "the agent went away during the resync");
	}
	if (ret == 0 || !fallback_ok || final_error(ret))
		return ret;
	return start_on_fallback(h, ret, err);
}

WAVE_API void wave_host_close(struct wave_host *h)
{
	struct wave_msg m;

	if (!h)
		return;
	if (h->conn == CONN_HELLO || h->conn == CONN_READY) {
		wave_proto_bye(0, &m);
		/* Best effort: an agent that cannot take it sees the close. */
		(void)wave_chan_send_burst(h->ch, &m, 1);
	}
	host_free(h);
}

/* ---- for the domains (host_impl.h) ------------------------------------------ */

void *host_domain_user(const struct wave_host *h, unsigned id)
{
	return id < WAVE_DOMAIN_COUNT && h->registered & WAVE_HOST_DOMAIN(id) ? h->dom[id].user
									     : NULL;
}

bool host_to_agent(const struct wave_host *h)
{
	return h->conn == CONN_READY && (h->state == WAVE_HOST_AGENT || h->in_replay);
}

bool host_in_callback(const struct wave_host *h)
{
	return h->in_cb != 0;
}

void host_cb_enter(struct wave_host *h)
{
	h->in_cb++;
}

void host_cb_leave(struct wave_host *h)
{
	h->in_cb--;
}

static int send_as(struct wave_host *h, const struct wave_msg *m, unsigned n, bool quiet)
{
	uint64_t deadline = 0;
	struct timespec ts = { 0, 50000 };
	unsigned done = 0;
	int ret;

	if (!host_to_agent(h))
		return -ENOTCONN;
	while (done < n) {
		ret = quiet ? wave_chan_send_quiet(h->ch, m + done, n - done)
			    : wave_chan_send_burst(h->ch, m + done, n - done);
		if (ret < 0) {
			lose_agent(h, wave_strerror(ret));
			return done ? (int)done : ret;
		}
		if (ret > 0)
			h->hb_unread = 0;
		done += (unsigned)ret;
		/* During a replay, wait (bounded) for room: the agent reads.
		 * Only then is the clock read. */
		if (done == n || !h->in_replay)
			break;
		if (!deadline) {
			deadline = wave_now_ns() + (uint64_t)h->o.connect_timeout_ms * MS;
		} else if (wave_now_ns() >= deadline) {
			lose_agent(h, "resync timed out");
			return -ETIMEDOUT;
		}
		if (ret == 0)
			nanosleep(&ts, NULL);
	}
	return (int)done;
}

int host_send(struct wave_host *h, const struct wave_msg *m, unsigned n)
{
	return send_as(h, m, n, false);
}

int host_send_quiet(struct wave_host *h, const struct wave_msg *m, unsigned n)
{
	return send_as(h, m, n, true);
}

void host_notify(struct wave_host *h)
{
	int ret;

	if (host_to_agent(h) && (ret = wave_chan_notify(h->ch)) < 0)
		lose_agent(h, wave_strerror(ret));
}

int host_wait_prepare(struct wave_host *h, int *fd, uint64_t *due)
{
	int ret;

	*fd = -1;
	*due = next_due(h);
	if (h->conn != CONN_READY)
		return 0; /* nothing to hear until the next attempt */
	ret = wave_chan_trywait(h->ch);
	if (ret == -EAGAIN || ret == -WAVE_ECLOSED)
		return 1; /* receive (or notice the close) now */
	if (ret < 0 || (ret = wave_chan_fd(h->ch)) < 0)
		return -ENOTSUP;
	/* A duplicate: the channel may be closed (and its fd number reused)
	 * by another thread while the caller sleeps on it. */
	*fd = fcntl(ret, F_DUPFD_CLOEXEC, 0);
	return *fd < 0 ? -ENOTSUP : 0;
}

void host_sleep(struct wave_host *h, pthread_mutex_t *lock, uint64_t due, bool short_step)
{
	uint64_t session_due = due, now;
	int fd = -1, ret = h ? host_wait_prepare(h, &fd, &session_due) : 0;
	struct timespec ts;

	if (ret == 1)
		return; /* a message is there: look at once */
	now = wave_now_ns();
	due = wave_min_u64(due, session_due);
	if (ret == -ENOTSUP || short_step)
		due = wave_min_u64(due, now + HOST_SLEEP_STEP_NS); /* someone must look */
	if (due > now) {
		ts = wave_timespec(due - now);
		pthread_mutex_unlock(lock);
		if (fd >= 0)
			(void)ppoll(&(struct pollfd){ fd, POLLIN, 0 }, 1, &ts, NULL);
		else
			(void)nanosleep(&ts, NULL);
		pthread_mutex_lock(lock);
	}
	if (fd >= 0)
		close(fd);
}

void host_set_mailboxes(struct wave_host *h, uint32_t n)
{
	h->copts.mailboxes = n;
}

unsigned host_mailboxes(const struct wave_host *h)
{
	return h->conn == CONN_READY ? (unsigned)wave_chan_mailboxes(h->ch) : 0;
}

int host_mbox_take(struct wave_host *h, unsigned i, struct wave_msg *m)
{
	int ret = h->conn == CONN_READY ? wave_chan_mbox_take(h->ch, i, m) : 0;

	if (ret < 0)
		lose_agent(h, wave_strerror(ret));
	return ret;
}

uint64_t host_timeout_ns(const struct wave_host *h)
{
	return (uint64_t)h->o.heartbeat_timeout_ms * MS;
}

void host_lose_agent(struct wave_host *h, const char *why)
{
	if (h->conn == CONN_HELLO || h->conn == CONN_READY)
		lose_agent(h, why);
}
