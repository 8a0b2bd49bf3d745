/* SPDX-License-Identifier: MIT */
/*
 * One host as the agent sees it: its handshake, its plugin instances, its
 * events and decisions, its heartbeats. Called by the agent loop
 * (agent.c) with the agent's lock held.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include <wave/host.h>

#include "../core/config_impl.h"
#include "../core/core.h"
#include "agent_impl.h"

#define MS (1000000ull)

int agent_host_add(struct wave_agent *a, struct wave_chan *ch)
{
	struct agent_host *h;
	struct epoll_event ev = { .events = EPOLLIN };

	if (a->n_hosts == a->cap_hosts) {
		size_t cap = a->cap_hosts ? a->cap_hosts * 2 : 8;
		struct agent_host **n = realloc(a->hosts, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		a->hosts = n;
		a->cap_hosts = cap;
	}
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->a = a;
	h->id = ++a->next_id;
	h->ch = ch;
	h->state = AHOST_HELLO;
	h->deadline_ns = wave_now_ns() + a->cfg->heartbeat_timeout_ms * MS;
	kt_init(&h->kt);
	/* As many as the host's ring holds, as a power of two (a parsed
	 * configuration's already is) so that indexes are masked. */
	for (h->ob_cap = 2; h->ob_cap < a->cfg->agent_to_host_slots; h->ob_cap <<= 1)
		;
	h->outbox = calloc(h->ob_cap, sizeof(*h->outbox));
	if (!h->outbox) {
		free(h);
		return -ENOMEM;
	}
	h->fd = wave_chan_fd(ch);
	if (h->fd >= 0 && epoll_ctl(a->epfd, EPOLL_CTL_ADD, h->fd, &ev) < 0)
		h->fd = -1; /* polled instead */
	a->hosts[a->n_hosts++] = h;
	return 0;
}

static void inst_stop(struct wave_agent *a, unsigned d, struct agent_inst *in)
{
	if (!in->ctx)
		return;
	/* The domain's totals keep what this instance did. */
	a->dom[d].events_in += in->events_in;
	a->dom[d].decisions_out += in->decisions_out;
	a->dom[d].errors += in->errors;
	agent_lat_retire(&a->dom[d], in);
	wave_plugin_ctx_destroy(in->ctx);
	memset(in, 0, sizeof(*in));
}

void agent_host_remove(struct wave_agent *a, size_t i, const char *why)
{
	struct agent_host *h = a->hosts[i];

	wave_info("agent: host %llu: %s", (unsigned long long)h->id, why);
	for (unsigned d = 0; d < WAVE_DOMAIN_COUNT; d++)
		inst_stop(a, d, &h->inst[d]);
	agent_sched_free(h);
	if (h->fd >= 0)
		epoll_ctl(a->epfd, EPOLL_CTL_DEL, h->fd, NULL);
	wave_chan_close(h->ch);
	kt_fini(&h->kt);
	free(h->outbox);
	explicit_bzero(h->hello.token, sizeof(h->hello.token));
	free(h);
	a->hosts[i] = a->hosts[--a->n_hosts];
}

void agent_host_bye(struct agent_host *h)
{
	struct wave_msg m;

	if (h->state != AHOST_READY)
		return;
	wave_proto_bye(0, &m);
	(void)wave_chan_send_burst(h->ch, &m, 1);
}

/* ---- decisions ---------------------------------------------------------- */

static void stamp(struct agent_host *h, struct wave_msg *m)
{
	const struct wave_msg *ev = h->cur_ev;

	if (WAVE_CUSTOM_SEQ(m) != 0)
		return; /* the plugin said what it was based on */
	if (ev && (WAVE_CUSTOM_KEY(m) == 0 || WAVE_CUSTOM_KEY(m) == WAVE_CUSTOM_KEY(ev))) {
		WAVE_CUSTOM_KEY(m) = WAVE_CUSTOM_KEY(ev);
		WAVE_CUSTOM_SEQ(m) = WAVE_CUSTOM_SEQ(ev);
	} else {
		WAVE_CUSTOM_SEQ(m) = h->last_seq;
	}
}

static void lat_record(struct agent_inst *in, uint64_t ns)
{
	in->lat[in->n_lat % AGENT_LAT_KEEP] = ns;
	in->n_lat++;
}

static bool is_sched(const struct wave_msg *m)
{
	return m->type >= WAVE_MSG_SCHED_FIRST && m->type <= WAVE_MSG_SCHED_LAST;
}

/* After @m was sent: its event (if any) is answered. */
static void sent(struct agent_host *h, const struct wave_msg *m, uint64_t now)
{
	struct agent_inst *in = &h->inst[is_sched(m) ? WAVE_DOMAIN_SCHED : WAVE_DOMAIN_CUSTOM];
	struct kt_entry *e;

	in->decisions_out++;
	if (is_sched(m)) {
		/* Sched decisions are checked by sequence in the state model;
		 * their latency is from the event being handled, if any. */
		if (h->cur_ev && now > h->cur_ev->tstamp)
			lat_record(in, now - h->cur_ev->tstamp);
		return;
	}
	if (m->tstamp) {
		/* Marked by host_emit(): it answers the event whose send
		 * stamp this is, already taken off the pending ones. */
		if (now > m->tstamp)
			lat_record(in, now - m->tstamp);
		return;
	}
	e = kt_find(&h->kt, WAVE_CUSTOM_KEY(m));
	if (e && e->pending && WAVE_CUSTOM_SEQ(m) >= e->seq) {
		e->pending = false;
		if (now > e->ev.tstamp)
			lat_record(in, now - e->ev.tstamp);
	}
}

/* During a replay, a decision for an event the old instance answered would
 * be a duplicate: the host would refuse it. */
static bool replay_drop(struct agent_host *h, const struct wave_msg *m)
{
	struct kt_entry *e;

	if (!h->replaying)
		return false; /* the common case: no lookup */
	e = kt_find(&h->kt, WAVE_CUSTOM_KEY(m));
	return e && !e->pending && WAVE_CUSTOM_SEQ(m) <= e->seq;
}

static int outbox_push(struct agent_host *h, const struct wave_msg *m)
{
	if (h->ob_n == h->ob_cap)
		return 0;
	h->outbox[(h->ob_head + h->ob_n) & (h->ob_cap - 1)] = *m;
	h->ob_n++;
	return 1;
}

/* Sends what waits in the outbox. Return: how many left it. */
static int outbox_flush(struct agent_host *h, uint64_t now)
{
	int done = 0, ret;

	while (h->ob_n) {
		unsigned run = h->ob_cap - h->ob_head < h->ob_n ? h->ob_cap - h->ob_head : h->ob_n;

		ret = wave_chan_send_burst(h->ch, &h->outbox[h->ob_head], run);
		if (ret <= 0)
			return ret < 0 ? ret : done;
		for (int k = 0; k < ret; k++)
			sent(h, &h->outbox[h->ob_head + (unsigned)k], now);
		h->ob_head = (h->ob_head + (unsigned)ret) & (h->ob_cap - 1);
		h->ob_n -= (unsigned)ret;
		done += ret;
	}
	return done;
}

/* wave_plugin_emit_fn of every instance: custom decisions (stamped), and
 * sched decisions (already checked and encoded by the state model).
 * While the host's burst of events is being handled (@h->batching), every
 * custom decision goes to the outbox and agent_host_service() sends them
 * together afterwards; otherwise (ticks, replays, sched decisions, whose
 * latency is taken from the event being handled) each is sent at once. */
static int host_emit(void *user, const struct wave_msg *msgs, unsigned n)
{
	struct agent_host *h = user;
	uint64_t now = 0; /* read when a decision leaves here */
	struct wave_msg m;
	bool later;
	int ret;

	for (unsigned i = 0; i < n; i++) {
		struct kt_entry *answered = NULL;

		m = msgs[i];
		if (!is_sched(&m))
			stamp(h, &m);
		if (!is_sched(&m) && replay_drop(h, &m)) {
			h->replay_dropped++;
			continue;
		}
		if (!is_sched(&m)) {
			/* The channel stamps its own time on sending: until then
			 * tstamp marks a decision that answers the event being
			 * handled (its send stamp), which spares sent() a lookup. */
			m.tstamp = 0;
			if (h->cur_e && h->cur_e->pending && WAVE_CUSTOM_KEY(&m) == h->cur_e->key &&
			    WAVE_CUSTOM_SEQ(&m) >= h->cur_e->seq) {
				answered = h->cur_e;
				answered->pending = false;
				m.tstamp = answered->ev.tstamp ? answered->ev.tstamp : 1;
			}
		}
		/* Behind queued decisions, or into the outbox when the ring is
		 * full; a short count only when the outbox is full too. */
		later = h->batching && !is_sched(&m);
		ret = h->ob_n || later ? 0 : wave_chan_send_burst(h->ch, &m, 1);
		if (ret < 0) {
			if (answered)
				answered->pending = true; /* not sent after all */
			return i ? (int)i : ret;
		}
		if (ret == 0 && later && h->ob_n == h->ob_cap) {
			/* A plugin emitting more than the outbox holds for one
			 * burst: send what the ring takes now. */
			ret = outbox_flush(h, wave_now_ns());
			if (ret < 0) {
				if (answered)
					answered->pending = true;
				return i ? (int)i : ret;
			}
			ret = 0;
		}
		if (ret == 1) {
			if (!now)
				now = wave_now_ns();
			sent(h, &m, now);
		} else if (!outbox_push(h, &m)) {
			if (answered)
				answered->pending = true;
			return (int)i;
		}
	}
	return (int)n;
}

int agent_inst_start(struct agent_host *h, unsigned d, struct wave_plugin *p,
		     const struct wave_config_domain *dcfg, struct agent_inst *out,
		     struct wave_error *err)
{
	struct wave_plugin_ctx_opts o;

	memset(out, 0, sizeof(*out));
	h->timers_due = 0; /* the new instance's first tick is armed next turn */
	wave_plugin_ctx_opts_init(&o);
	o.params = dcfg->params;
	o.tick_ns = dcfg->tick_us * 1000u;
	o.emit = host_emit;
	o.emit_user = h;
	/* A sched instance drives the host's state model (made at SETUP). */
	o.domain_state = d == WAVE_DOMAIN_SCHED ? h->sched : NULL;
	return wave_plugin_ctx_create(p, &o, &out->ctx, err);
}

static int by_seq(const void *x, const void *y)
{
	const struct kt_entry *a = *(const struct kt_entry *const *)x;
	const struct kt_entry *b = *(const struct kt_entry *const *)y;

	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

void agent_inst_replay(struct agent_host *h, struct agent_inst *in)
{
	struct kt_entry **order;
	size_t n = 0;

	if (in == &h->inst[WAVE_DOMAIN_SCHED]) {
		agent_sched_replay(h, in);
		return;
	}
	order = calloc(h->kt.n ? h->kt.n : 1, sizeof(*order));
	if (!order) {
		wave_warn("agent: host %llu: no memory to replay its state",
			  (unsigned long long)h->id);
		return;
	}
	for (size_t i = 0; i < h->kt.cap; i++)
		if (h->kt.e[i].seq)
			order[n++] = &h->kt.e[i];
	qsort(order, n, sizeof(*order), by_seq);
	h->replaying = true;
	for (size_t i = 0; i < n; i++) {
		h->cur_ev = &order[i]->ev;
		if (wave_plugin_ctx_event(in->ctx, &order[i]->ev) < 0)
			in->errors++;
	}
	h->cur_ev = NULL;
	h->replaying = false;
	free(order);
}

/* ---- the handshake ------------------------------------------------------- */

static void refuse(struct agent_host *h, int code, uint32_t what, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void refuse(struct agent_host *h, int code, uint32_t what, const char *fmt, ...)
{
	char text[128];
	struct wave_msg m;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	wave_warn("agent: host %llu refused: %s", (unsigned long long)h->id, text);
	wave_proto_refuse(code, what, text, &m);
	(void)wave_chan_send_burst(h->ch, &m, 1);
	h->a->refused++;
}

/* Checks a complete hello. Return: 0, or -1 after refusing the host. */
static int hello_check(struct agent_host *h)
{
	const struct wave_config *cfg = h->a->cfg;
	const struct wave_hello *he = &h->hello;

	if (he->major != WAVE_PROTO_MAJOR) {
		refuse(h, -WAVE_EVERSION, WAVE_REFUSE_VERSION, "protocol %u.%u, agent speaks %u.%u",
		       he->major, he->minor, WAVE_PROTO_MAJOR, WAVE_PROTO_MINOR);
		return -1;
	}
	if (he->role != WAVE_ROLE_HOST) {
		refuse(h, -WAVE_EREFUSED, WAVE_REFUSE_ROLE, "role %u is not host", he->role);
		return -1;
	}
	if (cfg->token && !wave_proto_token_equal(he->token, he->token_len,
						  (const uint8_t *)cfg->token,
						  strlen(cfg->token))) {
		refuse(h, -WAVE_EREFUSED, WAVE_REFUSE_TOKEN,
		       he->token_len ? "token does not match" : "token required");
		return -1;
	}
	if (he->domains == 0 || he->domains & ~WAVE_PROTO_DOMAINS_ALL) {
		refuse(h, -WAVE_EREFUSED, WAVE_REFUSE_DOMAIN, "domain bits 0x%x invalid",
		       he->domains);
		return -1;
	}
	for (unsigned d = 0; d < WAVE_DOMAIN_COUNT; d++)
		if (he->domains & (1u << d) && !h->a->dom[d].plugin) {
			refuse(h, -WAVE_EREFUSED, WAVE_REFUSE_DOMAIN, "domain %s: agent has no plugin",
			       wave_domain_name(d));
			return -1;
		}
	if (he->heartbeat_period_ms == 0 || he->heartbeat_period_ms >= cfg->heartbeat_timeout_ms) {
		refuse(h, -WAVE_EREFUSED, WAVE_REFUSE_HEARTBEAT,
		       "heartbeat %u ms, agent timeout %u ms", he->heartbeat_period_ms,
		       cfg->heartbeat_timeout_ms);
		return -1;
	}
	return 0;
}

static int welcome(struct agent_host *h, uint64_t now)
{
	struct wave_agent *a = h->a;
	struct wave_welcome w = { WAVE_PROTO_MAJOR, WAVE_PROTO_MINOR, h->hello.domains,
				  a->cfg->heartbeat_period_ms, a->cfg->heartbeat_timeout_ms,
				  h->id };
	struct wave_error err;
	struct wave_msg m;

	for (unsigned d = 0; d < WAVE_DOMAIN_COUNT; d++) {
		/* The sched instance starts at the host's SETUP (its CPU count). */
		if (!(h->hello.domains & (1u << d)) || d == WAVE_DOMAIN_SCHED)
			continue;
		if (agent_inst_start(h, d, a->dom[d].plugin, a->dom[d].dcfg, &h->inst[d], &err) < 0) {
			refuse(h, -WAVE_EPLUGIN, WAVE_REFUSE_DOMAIN, "domain %s: plugin failed",
			       wave_domain_name(d));
			return -1;
		}
	}
	wave_proto_welcome(&w, &m);
	if (wave_chan_send_burst(h->ch, &m, 1) != 1)
		return -1;
	h->state = AHOST_READY;
	h->timers_due = 0; /* heartbeats from now on, not the hello's deadline */
	h->last_rx_ns = now;
	h->next_hb_ns = now;
	a->accepted++;
	wave_info("agent: host %llu welcomed", (unsigned long long)h->id);
	return 0;
}

/* One handshake message. Return: 0 to go on, -1 to drop the host. */
static int on_hello_msg(struct agent_host *h, const struct wave_msg *m, uint64_t now)
{
	if (h->auth_got == 0 && h->auth_need == 0 && m->type == WAVE_CTL_HELLO) {
		if (wave_proto_hello_decode(m, &h->hello) < 0) {
			refuse(h, -WAVE_EREFUSED, WAVE_REFUSE_PROTOCOL, "malformed hello");
			return -1;
		}
		h->auth_need = wave_proto_auth_count(h->hello.token_len);
	} else if (h->auth_got < h->auth_need && m->type == WAVE_CTL_AUTH) {
		if (wave_proto_auth_decode(m, h->auth_got, &h->hello) < 0) {
			refuse(h, -WAVE_EREFUSED, WAVE_REFUSE_PROTOCOL, "malformed token");
			return -1;
		}
		h->auth_got++;
	} else {
		refuse(h, -WAVE_EREFUSED, WAVE_REFUSE_PROTOCOL, "type 0x%04x before hello",
		       m->type);
		return -1;
	}
	if (h->auth_got < h->auth_need)
		return 0;
	if (hello_check(h) < 0)
		return -1;
	return welcome(h, now);
}

/* ---- a welcomed host's messages ------------------------------------------ */

static int on_event(struct agent_host *h, const struct wave_msg *m)
{
	struct agent_inst *in = &h->inst[WAVE_DOMAIN_CUSTOM];
	uint64_t seq = WAVE_CUSTOM_SEQ(m);
	struct kt_entry *e;

	if (!in->ctx || seq <= h->last_seq) { /* not asked for, or replayed seq */
		in->errors++;
		return 0;
	}
	e = kt_get(&h->kt, WAVE_CUSTOM_KEY(m));
	if (!e)
		return -1;
	e->ev = *m;
	e->seq = seq;
	e->pending = true;
	h->last_seq = seq;
	in->events_in++;
	h->cur_ev = m;
	h->cur_e = e; /* the plugin cannot add keys: @e stays where it is */
	if (wave_plugin_ctx_event(in->ctx, m) < 0)
		in->errors++;
	h->cur_ev = NULL;
	h->cur_e = NULL;
	return 0;
}

/* Return: 0, or -1 to drop the host. */
static int on_ready_msg(struct agent_host *h, const struct wave_msg *m)
{
	uint64_t count;
	uint32_t reason;

	if (m->type >= WAVE_MSG_APP_FIRST)
		return on_event(h, m);
	if (is_sched(m))
		return agent_sched_msg(h, m);
	if (m->type == WAVE_CTL_HEARTBEAT && wave_proto_heartbeat_decode(m, &count) == 0)
		return 0;
	if (m->type == WAVE_CTL_BYE && wave_proto_bye_decode(m, &reason) == 0)
		return -1;
	wave_warn("agent: host %llu sent a bad message (type 0x%04x)",
		  (unsigned long long)h->id, m->type);
	return -1;
}

int agent_host_service(struct wave_agent *a, size_t i, uint64_t *now_io)
{
	struct agent_host *h = a->hosts[i];
	struct wave_msg m[32];
	/* Before the welcome, one at a time: the hello decides what follows. */
	unsigned max = h->state == AHOST_READY ? WAVE_ARRAY_SIZE(m) : 1;
	uint64_t now = *now_io;
	int n = outbox_flush(h, now), ret;

	if (n > 0)
		h->last_rx_ns = now; /* the host reads: it is alive */
	if (n >= 0 && h->ob_n)
		return n; /* its ring is still full: leave its events unread */
	if (n >= 0)
		n = wave_chan_recv_burst(h->ch, m, max);
	if (n < 0) {
		agent_host_remove(a, i, n == -WAVE_ECLOSED ? "closed" : wave_strerror(n));
		return -1;
	}
	if (n > 0)
		h->last_rx_ns = now;
	/* The decisions of the whole burst leave together, after it: one
	 * publish to the host and one clock reading, not one per decision. */
	h->batching = true;
	for (int k = 0; k < n; k++) {
		ret = h->state == AHOST_READY ? on_ready_msg(h, &m[k]) : on_hello_msg(h, &m[k], now);
		if (ret < 0) {
			h->batching = false;
			agent_host_remove(a, i, "said goodbye, was refused or broke the protocol");
			return -1;
		}
	}
	h->batching = false;
	if (n > 0) {
		/* Read after the plugin ran: the decisions' send time, for
		 * their latency, and the loop's clock from now on. */
		*now_io = wave_now_ns();
		if (h->ob_n && (ret = outbox_flush(h, *now_io)) < 0) {
			agent_host_remove(a, i, ret == -WAVE_ECLOSED ? "closed" : wave_strerror(ret));
			return -1;
		}
	}
	return n;
}

static void heartbeat(struct agent_host *h, uint64_t now)
{
	struct wave_msg m;

	if (now < h->next_hb_ns)
		return;
	wave_proto_heartbeat(++h->hb_count, &m);
	/* Full ring: the host is not reading; its timeout is its problem. */
	(void)wave_chan_send_burst(h->ch, &m, 1);
	h->next_hb_ns = now + h->a->cfg->heartbeat_period_ms * MS;
}

int agent_host_timers(struct wave_agent *a, size_t i, uint64_t now)
{
	struct agent_host *h = a->hosts[i];

	/* Called on every turn of the loop: most turns have nothing due. */
	if (now < h->timers_due)
		return 0;
	if (h->state == AHOST_HELLO) {
		if (now < h->deadline_ns)
			return 0;
		agent_host_remove(a, i, "no hello in time");
		return -1;
	}
	if (now - h->last_rx_ns > a->cfg->heartbeat_timeout_ms * MS) {
		a->dead++;
		agent_host_remove(a, i, "silent past the heartbeat timeout: dead");
		return -1;
	}
	heartbeat(h, now);
	for (unsigned d = 0; d < WAVE_DOMAIN_COUNT; d++)
		if (h->inst[d].ctx)
			wave_plugin_ctx_tick(h->inst[d].ctx, now);
	/* Early rather than late: the host's silence deadline only moves
	 * later as messages come. */
	h->timers_due = agent_host_next_due(h);
	return 0;
}

uint64_t agent_host_next_due(const struct agent_host *h)
{
	uint64_t due;

	if (h->state == AHOST_HELLO)
		return h->deadline_ns;
	due = h->next_hb_ns;
	if (h->last_rx_ns + h->a->cfg->heartbeat_timeout_ms * MS + 1 < due)
		due = h->last_rx_ns + h->a->cfg->heartbeat_timeout_ms * MS + 1;
	for (unsigned d = 0; d < WAVE_DOMAIN_COUNT; d++) {
		uint64_t t = h->inst[d].ctx ? wave_plugin_ctx_next_tick(h->inst[d].ctx) : 0;

		if (t && t < due)
			due = t;
	}
	return due;
}
