/* SPDX-License-Identifier: MIT */
/*
 * The custom domain, host side (include/wave/host.h): the application's
 * own events and decisions over a host session. The latest event of each
 * key and its host sequence number are kept, so that a stale or duplicate
 * decision is refused and, when the agent goes, every event it left
 * undecided is decided by the application's decide() callback.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <wave/host.h>

#include "../../core/core.h"
#include "../../session/host_impl.h"
#include "custom_impl.h"

struct custom_host {
	struct wave_host *h;
	struct wave_host_ops ops;
	void *user;
	uint64_t last_seq; /* the last host sequence number given out */
	struct u64map keys; /* struct custom_key */
	struct wave_host_stats st; /* the domain's counters */
};

static void deliver(struct custom_host *c, const struct wave_msg *d,
		    enum wave_decision_source src)
{
	host_cb_enter(c->h);
	c->ops.on_decision(c->h, d, src, c->user);
	host_cb_leave(c->h);
}

/* Runs decide() for the pending event of @e. */
static void decide_locally(struct custom_host *c, struct custom_key *e)
{
	struct wave_msg out;
	int ret;

	memset(&out, 0, sizeof(out));
	host_cb_enter(c->h);
	ret = c->ops.decide(c->h, &e->ev, &out, c->user);
	host_cb_leave(c->h);
	if (ret < 0 || out.type < WAVE_MSG_APP_FIRST) {
		c->st.fallback_errors++;
		return;
	}
	WAVE_CUSTOM_KEY(&out) = e->key;
	WAVE_CUSTOM_SEQ(&out) = e->seq;
	e->pending = false;
	c->st.decisions_fallback++;
	deliver(c, &out, WAVE_DECISION_FALLBACK);
}

/* ---- the session's callbacks ---------------------------------------------- */

/* A decision from the agent: applied once per event, never when stale. */
static int on_msg(void *user, const struct wave_msg *m)
{
	struct custom_host *c = user;
	uint64_t key = WAVE_CUSTOM_KEY(m), seq = WAVE_CUSTOM_SEQ(m);
	struct custom_key *e;

	if (seq > c->last_seq) { /* based on an event never sent */
		c->st.bad++;
		return 0;
	}
	e = u64map_find(&c->keys, key);
	if (e && seq < e->seq) {
		c->st.stale++;
		return 0;
	}
	if (e && !e->pending) {
		c->st.duplicates++;
		return 0;
	}
	if (e)
		e->pending = false;
	c->st.decisions_agent++;
	deliver(c, m, WAVE_DECISION_AGENT);
	return 1;
}

static void decide_pending(void *entry, void *arg)
{
	struct custom_key *e = entry;

	if (e->seq && e->pending)
		decide_locally(arg, e);
}

static void on_state(void *user, enum wave_host_state state)
{
	struct custom_host *c = user;

	if (c->ops.on_state) /* ops_copy() zeroed what an older table lacks */
		c->ops.on_state(c->h, state, c->user);
	if (state != WAVE_HOST_FALLBACK)
		return;
	/* Every event the agent left undecided is decided here. decide()
	 * cannot add keys (wave_host_event() is refused inside callbacks), so
	 * the table does not move under the walk. */
	u64map_each(&c->keys, decide_pending, c);
}

static int replay(void *user)
{
	struct custom_host *c = user;

	if (!c->ops.replay)
		return 0;
	return c->ops.replay(c->h, c->user);
}

static void stats(const void *user, struct wave_host_stats *st)
{
	const struct custom_host *c = user;

	st->events += c->st.events;
	st->decisions_agent += c->st.decisions_agent;
	st->decisions_fallback += c->st.decisions_fallback;
	st->stale += c->st.stale;
	st->duplicates += c->st.duplicates;
	st->bad += c->st.bad;
	st->fallback_errors += c->st.fallback_errors;
}

static void fini(void *user)
{
	struct custom_host *c = user;

	u64map_fini(&c->keys);
	free(c);
}

/* ---- the API ---------------------------------------------------------------- */

/* The application's callbacks: a table as old as the first release, or
 * newer, with the required ones. */
static int ops_copy(struct wave_host_ops *ops, const struct wave_host_ops *in)
{
	memset(ops, 0, sizeof(*ops));
	if (!in || wave_struct_copy(ops, sizeof(*ops), in, in->size,
				    offsetof(struct wave_host_ops, on_state),
				    "struct wave_host_ops") < 0)
		return -EINVAL;
	ops->size = sizeof(*ops);
	return ops->on_decision && ops->decide ? 0 : -EINVAL;
}

static int custom_new(const struct wave_host_opts *opts, struct custom_host **out)
{
	struct custom_host *c;

	if (!(c = calloc(1, sizeof(*c))))
		return -ENOMEM;
	if (ops_copy(&c->ops, opts->ops) < 0) {
		free(c);
		return -EINVAL;
	}
	c->user = opts->user;
	if (custom_keys_init(&c->keys) < 0) {
		free(c);
		return -ENOMEM;
	}
	*out = c;
	return 0;
}

WAVE_API int wave_host_connect(const char *uri, const struct wave_host_opts *opts,
			       struct wave_host **out, struct wave_error *err)
{
	struct custom_host *c = NULL;
	struct wave_host *h = NULL;
	struct host_domain d = { .id = WAVE_DOMAIN_CUSTOM, .first = WAVE_MSG_APP_FIRST,
				 .last = WAVE_MSG_APP_LAST, .on_msg = on_msg, .on_state = on_state,
				 .replay = replay, .stats = stats };
	int ret;

	wave_error_clear(err);
	ret = uri && opts && out ? host_new(uri, opts, &h) : -EINVAL;
	if (ret == 0 && (ret = custom_new(opts, &c)) < 0)
		wave_host_close(h);
	if (ret < 0)
		return wave_error_set(err, ret, uri ? uri : "", 0, 0, "%s",
				      ret == -ENOMEM ? wave_strerror(ret) : "invalid argument");
	c->h = h;
	d.user = c;
	/* The custom domain only if asked for; fini frees it with @h. */
	if (opts->domains & WAVE_HOST_DOMAIN(WAVE_DOMAIN_CUSTOM)) {
		d.fini = fini;
		(void)host_add_domain(h, &d);
	} else {
		fini(c);
	}
	ret = host_start(h, false, err);
	if (ret < 0) {
		wave_host_close(h);
		return ret;
	}
	*out = h;
	return 0;
}

/* Records event @m, just sent or about to be decided, in its key's @e. */
static void record(struct custom_host *c, struct custom_key *e, const struct wave_msg *m)
{
	e->ev = *m;
	e->seq = WAVE_CUSTOM_SEQ(m);
	e->pending = true;
	c->last_seq = e->seq;
	c->st.events++;
}

/* Removes the entries made for events that were not taken after all. */
static void forget_fresh(struct custom_host *c, const uint64_t *keys, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		struct custom_key *e = u64map_find(&c->keys, keys[i]);

		if (e && e->seq == 0)
			u64map_remove(&c->keys, e);
	}
}

/* The batch, stamped with keys and the next sequence numbers, into @m,
 * and the entry of each key into @e (made where missing: once an event is
 * sent it must be recorded). */
static int stamp_batch(struct custom_host *c, const struct wave_msg *evs, const uint64_t *keys,
		       unsigned n, struct wave_msg *m, struct custom_key **e)
{
	uint64_t rebuilds = c->keys.rebuilds;
	int ret;

	for (unsigned i = 0; i < n; i++) {
		ret = evs[i].type < WAVE_MSG_APP_FIRST ? -EINVAL
						       : custom_key_get(&c->keys, keys[i], &e[i]);
		if (ret < 0) {
			forget_fresh(c, keys, i);
			return ret;
		}
		m[i] = evs[i];
		WAVE_CUSTOM_KEY(&m[i]) = keys[i];
		WAVE_CUSTOM_SEQ(&m[i]) = c->last_seq + 1 + i;
	}
	/* Entries move when the table is rebuilt (it grew, or drew another
	 * multiplier): then look them up again. Not by address: a rebuilt
	 * table may land where an earlier one was. */
	if (c->keys.rebuilds != rebuilds)
		for (unsigned i = 0; i < n; i++)
			e[i] = u64map_find(&c->keys, keys[i]);
	return 0;
}

/* Events of one burst: at most this many go out in one send. */
#define EVENTS_BURST 64u

WAVE_API int wave_host_events(struct wave_host *h, const struct wave_msg *evs,
			      const uint64_t *keys, unsigned n, uint64_t *seqs)
{
	struct custom_host *c = h ? host_domain_user(h, WAVE_DOMAIN_CUSTOM) : NULL;
	struct wave_msg m[EVENTS_BURST];
	struct custom_key *e[EVENTS_BURST];
	int ret, taken;
	bool local;

	if (!c || !evs || !keys || n == 0)
		return -EINVAL;
	if (host_in_callback(h))
		return -EBUSY;
	if (n > EVENTS_BURST)
		n = EVENTS_BURST; /* a short count: the caller goes on from there */
	if ((ret = stamp_batch(c, evs, keys, n, m, e)) < 0)
		return ret;
	/* One send, one clock reading, one publish for the whole burst;
	 * what the ring does not take is not sent (backpressure). */
	taken = host_to_agent(h) ? host_send(h, m, n) : (int)n;
	if (taken < 0)
		taken = (int)n; /* the agent was lost: decided here */
	/* Control cannot change below: decide() may not call back in. */
	local = !host_to_agent(h);
	for (int i = 0; i < taken; i++) {
		record(c, e[i], &m[i]);
		if (seqs)
			seqs[i] = e[i]->seq;
		/* On fallback each event is decided in turn, as it comes. */
		if (local)
			decide_locally(c, e[i]);
	}
	/* After: a key may stand in both parts of the batch. */
	forget_fresh(c, keys + taken, n - (unsigned)taken);
	return taken;
}

WAVE_API int wave_host_event(struct wave_host *h, const struct wave_msg *ev, uint64_t key,
			     uint64_t *seq)
{
	int ret = wave_host_events(h, ev, &key, 1, seq);

	return ret == 0 ? -EAGAIN : ret < 0 ? ret : 0;
}
