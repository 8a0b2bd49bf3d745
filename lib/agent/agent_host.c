/* SPDX-License-Identifier: MIT */
/*
 * One host as the agent sees it: its handshake, its heartbeats, and the
 * domains it asked for, each served through its struct domain_desc: the
 * host's messages go to the domain owning their type, the plugins'
 * decisions leave through one outbox. Called by the agent loop (agent.c)
 * with the agent's lock held.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>


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
	h->n_mbox = wave_chan_mailboxes(ch) > 0 ? (unsigned)wave_chan_mailboxes(ch) : 0;
	h->state = AHOST_HELLO;
	h->deadline_ns = wave_now_ns() + a->cfg->heartbeat_timeout_ms * MS;
	/* As many as the host's ring holds, as a power of two (a parsed
	 * configuration's already is) so that indexes are masked. */
	for (h->ob_cap = 2; h->ob_cap < a->cfg->agent_to_host_slots; h->ob_cap <<= 1)
		;
	h->outbox = calloc(h->ob_cap, sizeof(*h->outbox));
	h->ob_dom = calloc(h->ob_cap, sizeof(*h->ob_dom));
	if (!h->outbox || !h->ob_dom) {
		free(h->outbox);
		free(h->ob_dom);
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
	agent_record_host_stop(h);
	for (unsigned d = 0; d < WAVE_DOMAIN_COUNT; d++) {
		/* The instance first: it may use the domain's state. */
		inst_stop(a, d, &h->dom[d].inst);
		if (wave_domains[d] && wave_domains[d]->fini)
			wave_domains[d]->fini(&h->dom[d]);
	}
	if (h->fd >= 0)
		epoll_ctl(a->epfd, EPOLL_CTL_DEL, h->fd, NULL);
	wave_chan_close(h->ch);
	free(h->outbox);
	free(h->ob_dom);
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

/* The domain of @dh, one of @h's. */
static unsigned dom_id(const struct agent_host *h, const struct dom_host *dh)
{
	return (unsigned)(dh - h->dom);
}

/* After @m, a decision of domain @d, was sent. */
static void sent(struct agent_host *h, unsigned d, const struct wave_msg *m, uint64_t now)
{
	h->dom[d].inst.decisions_out++;
	dom_sent(wave_domains[d], &h->dom[d], m, now);
}

static int outbox_push(struct agent_host *h, unsigned d, const struct wave_msg *m)
{
	unsigned i = (h->ob_head + h->ob_n) & (h->ob_cap - 1);

	if (h->ob_n == h->ob_cap)
		return 0;
	h->outbox[i] = *m;
	h->ob_dom[i] = (uint8_t)d;
	h->ob_n++;
	return 1;
}

/* Sends what waits in the outbox. The decisions' send time is *@now, or,
 * when that is 0, the clock read just after the first send (not before:
 * the reading would delay the decisions). Return: how many left it. */
static int outbox_flush(struct agent_host *h, uint64_t *now)
{
	int done = 0, ret;

	while (h->ob_n) {
		unsigned run = h->ob_cap - h->ob_head < h->ob_n ? h->ob_cap - h->ob_head : h->ob_n;

		ret = wave_chan_send_burst(h->ch, &h->outbox[h->ob_head], run);
		if (ret <= 0)
			return ret < 0 ? ret : done;
		if (!*now)
			*now = wave_stamp_now(&h->a->clk);
		for (unsigned k = h->ob_head; k < h->ob_head + (unsigned)ret; k++)
			sent(h, h->ob_dom[k], &h->outbox[k], *now);
		h->ob_head = (h->ob_head + (unsigned)ret) & (h->ob_cap - 1);
		h->ob_n -= (unsigned)ret;
		done += ret;
	}
	return done;
}

/* Sends @m, a decision of domain @d, now, or queues it. Return: 1 sent,
 * 0 queued, -1 neither (the outbox is full), or the channel's error. */
static int send_or_queue(struct agent_host *h, unsigned d, const struct wave_msg *m, bool later)
{
	int ret = h->ob_n || later ? 0 : wave_chan_send_burst(h->ch, m, 1);

	if (ret < 0)
		return ret;
	if (ret == 0 && later && h->ob_n == h->ob_cap) {
		/* A plugin emitting more than the outbox holds for one burst:
		 * send what the ring takes now. */
		uint64_t now = 0;

		if ((ret = outbox_flush(h, &now)) < 0)
			return ret;
		ret = 0;
	}
	if (ret == 1)
		return 1;
	return outbox_push(h, d, m) ? 0 : -1;
}

/* Sends @m, a decision of @dom, into the mailbox it names, or else as a
 * message (send_or_queue()). Return: as send_or_queue(); -1 when its
 * mailbox still holds the previous one (the host has not taken it). */
static int send_or_put(struct agent_host *h, const struct domain_desc *dom, struct dom_host *dh,
		       const struct wave_msg *m, enum dom_emit how)
{
	int k = dom->mailbox && h->n_mbox ? dom->mailbox(dh, m, h->n_mbox) : -1;
	int ret;

	if (k < 0 || (unsigned)k >= h->n_mbox)
		return send_or_queue(h, dom->id, m, h->batching && how == DOM_EMIT_BATCH);
	ret = wave_chan_mbox_put(h->ch, (unsigned)k, m);
	return ret == 0 ? 1 : ret == -EAGAIN ? -1 : ret;
}

/* wave_plugin_emit_fn of every instance: each decision is prepared by its
 * domain (stamped, or dropped), then sent. While the host's burst of
 * events is being handled (@h->batching), decisions that may wait go to
 * the outbox and agent_host_service() sends them together afterwards;
 * the others are sent at once. Behind queued decisions, or into the
 * outbox when the ring is full; a short count only when the outbox is
 * full too. A decision the domain puts in a mailbox is put at once. */
static int host_emit(void *user, const struct wave_msg *msgs, unsigned n)
{
	struct dom_host *dh = user;
	struct agent_host *h = dh->rt;
	const struct domain_desc *dom = wave_domains[dom_id(h, dh)];
	uint64_t now = 0; /* read when a decision leaves here */
	struct wave_msg m;
	int ret;

	for (unsigned i = 0; i < n; i++) {
		enum dom_emit how;

		m = msgs[i];
		if ((how = dom_prepare(dom, dh, &m)) == DOM_EMIT_DROP) {
			agent_rec(h, dom->id, TRACE_DROPPED, &m);
			continue;
		}
		ret = send_or_put(h, dom, dh, &m, how);
		if (ret >= 0)
			agent_rec(h, dom->id, TRACE_DECISION, &m);
		if (ret == 1) {
			if (!now)
				now = wave_stamp_now(&h->a->clk);
			sent(h, dom->id, &m, now);
		} else if (ret < 0) {
			if (dom->unprepare)
				dom->unprepare(dh, &m);
			return i ? (int)i : ret == -1 ? 0 : ret;
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
	o.emit_user = &h->dom[d];
	o.domain_state = h->dom[d].domain_state;
	return wave_plugin_ctx_create(p, &o, &out->ctx, err);
}

/* struct dom_host.start: the host's own instance of the domain. */
static int dom_start(struct dom_host *dh, const void *domain_state, struct wave_error *err)
{
	struct agent_host *h = dh->rt;
	unsigned d = dom_id(h, dh);

	dh->domain_state = domain_state;
	return agent_inst_start(h, d, h->a->dom[d].plugin, h->a->dom[d].dcfg, &dh->inst, err);
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

/* Hosts welcomed and not gone. */
static size_t served(const struct wave_agent *a)
{
	size_t n = 0;

	for (size_t i = 0; i < a->n_hosts; i++)
		n += a->hosts[i]->state == AHOST_READY;
	return n;
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
		if (he->domains & (1u << d) && (!wave_domains[d] || !h->a->dom[d].plugin)) {
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
	if (served(h->a) >= cfg->max_hosts) {
		refuse(h, -EAGAIN, WAVE_REFUSE_FULL, "agent full: %u hosts (max_hosts)",
		       cfg->max_hosts);
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
	struct wave_msg m;

	for (unsigned d = 0; d < WAVE_DOMAIN_COUNT; d++) {
		const struct domain_desc *dom = wave_domains[d];

		if (!(h->hello.domains & (1u << d)))
			continue;
		h->dom[d].host_id = h->id;
		h->dom[d].start = dom_start;
		h->dom[d].rt = h;
		/* A domain may start its instance later (sched: at SETUP). */
		if (dom->welcome && dom->welcome(&h->dom[d]) < 0) {
			refuse(h, -WAVE_EPLUGIN, WAVE_REFUSE_DOMAIN, "domain %s: plugin failed",
			       wave_domain_name(d));
			return -1;
		}
	}
	wave_proto_welcome(&w, &m);
	if (wave_chan_send_burst(h->ch, &m, 1) != 1)
		return -1;
	h->state = AHOST_READY;
	agent_record_host(h);
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

/* Return: 0, or -1 to drop the host. */
static int on_ready_msg(struct agent_host *h, const struct wave_msg *m)
{
	const struct domain_desc *dom;
	uint64_t count;
	uint32_t reason;

	if (m->type == WAVE_CTL_HEARTBEAT && wave_proto_heartbeat_decode(m, &count) == 0)
		return 0;
	if (m->type == WAVE_CTL_BYE && wave_proto_bye_decode(m, &reason) == 0)
		return -1;
	dom = domain_of_type(m->type);
	if (dom && h->hello.domains & (1u << dom->id)) {
		if (m->type == dom->setup_type)
			agent_record_setup(h, dom->id, m);
		agent_rec(h, dom->id, TRACE_EVENT, m);
		return dom->msg(&h->dom[dom->id], m);
	}
	wave_warn("agent: host %llu sent a bad message (type 0x%04x%s)",
		  (unsigned long long)h->id, m->type,
		  dom ? ", of a domain it did not ask for" : "");
	return -1;
}

/* The loop's busy time (struct wave_agent.busy_on): a burst's start, or
 * 0 when not counted. */
static inline uint64_t busy_start(struct wave_agent *a)
{
	if (wave_likely(!atomic_load_explicit(&a->busy_on, memory_order_relaxed)))
		return 0;
	return wave_stamp_now(&a->clk);
}

/* A burst that took longer lost its CPU (or its vCPU) on the way: at
 * most 64 messages take a few microseconds; the scheduler's and the
 * hypervisor's turns are tens of microseconds and more. Such a burst
 * measures the machine, not the loop: counted apart, not added. */
#define BUSY_PREEMPTED_NS 50000u

/* The loop is the only writer: a load and a store, no locked add. */
static void busy_add(struct wave_agent *a, uint64_t ns, unsigned msgs)
{
	if (ns > BUSY_PREEMPTED_NS) {
		atomic_store_explicit(&a->busy_dropped,
				      atomic_load_explicit(&a->busy_dropped, memory_order_relaxed) + 1,
				      memory_order_relaxed);
		return;
	}
	atomic_store_explicit(&a->busy_ns,
			      atomic_load_explicit(&a->busy_ns, memory_order_relaxed) + ns,
			      memory_order_relaxed);
	atomic_store_explicit(&a->busy_msgs,
			      atomic_load_explicit(&a->busy_msgs, memory_order_relaxed) + msgs,
			      memory_order_relaxed);
	atomic_store_explicit(&a->busy_bursts,
			      atomic_load_explicit(&a->busy_bursts, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

int agent_host_service(struct wave_agent *a, size_t i, uint64_t *now_io)
{
	struct agent_host *h = a->hosts[i];
	struct wave_msg m[32];
	/* Before the welcome, one at a time: the hello decides what follows. */
	unsigned max = h->state == AHOST_READY ? WAVE_ARRAY_SIZE(m) : 1;
	uint64_t now = *now_io, busy0;
	int n = outbox_flush(h, &now), ret;

	if (n > 0)
		h->last_rx_ns = now; /* the host reads: it is alive */
	if (n >= 0 && h->ob_n)
		return n; /* its ring is still full: leave its events unread */
	if (n >= 0)
		n = wave_chan_recv_burst(h->ch, m, max);
	if (n < 0) {
		/* A goodbye would have been read before the close: this host
		 * exited without one, or was killed. */
		if (h->state == AHOST_READY)
			a->lost++;
		agent_host_remove(a, i, n == -WAVE_ECLOSED ? "closed" : wave_strerror(n));
		return -1;
	}
	busy0 = n > 0 ? busy_start(a) : 0;
	/* The decisions of the whole burst leave together, after it: one
	 * publish to the host and one clock reading, not one per decision.
	 * A lone event's leave at once: through the outbox they would only
	 * take a copy and a pass more on their way to the host. */
	h->batching = n > 1;
	h->rec_now = now;
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
		/* Read after the plugin ran and its decisions left: their send
		 * time, for their latency, and the loop's clock from now on. */
		now = 0;
		if (h->ob_n && (ret = outbox_flush(h, &now)) < 0) {
			agent_host_remove(a, i, ret == -WAVE_ECLOSED ? "closed" : wave_strerror(ret));
			return -1;
		}
		*now_io = now ? now : wave_stamp_now(&a->clk);
		/* Heard from now, not from before the burst: the time the
		 * agent spent on it (a plugin, a table growing) is not the
		 * host's silence. */
		h->last_rx_ns = *now_io;
		if (busy0)
			busy_add(a, *now_io - busy0, (unsigned)n);
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

/* A tick about to run is recorded before it: the decisions it makes
 * follow it in the trace, as an event's follow the event. */
static void record_tick(struct agent_host *h, unsigned d, uint64_t now)
{
	static const struct wave_msg none;
	uint64_t due = wave_plugin_ctx_next_tick(h->dom[d].inst.ctx);

	if (h->rec[d] && due && now >= due)
		trace_async_put(h->rec[d], TRACE_TICK, now, &none);
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
	h->rec_now = now;
	agent_record_checkpoint(h);
	for (unsigned d = 0; d < WAVE_DOMAIN_COUNT; d++)
		if (h->dom[d].inst.ctx) {
			record_tick(h, d, now);
			wave_plugin_ctx_tick(h->dom[d].inst.ctx, now);
		}
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
		uint64_t t = h->dom[d].inst.ctx ? wave_plugin_ctx_next_tick(h->dom[d].inst.ctx) : 0;

		if (t && t < due)
			due = t;
	}
	return due;
}
