/* SPDX-License-Identifier: MIT */
/*
 * fabric:// agent side: the listener, judging hellos, refusing and admitting
 * hosts.
 *
 * Nothing here waits for a peer: wave_chan_accept() with timeout 0 must stay
 * short on an agent loop that serves other hosts. A hello is judged as soon
 * as it is read, from the listener's own small buffers: nothing large is
 * allocated for a host before its token and sizes are checked.
 *
 * A refusal is posted and forgotten: its buffer and address are given back
 * when the provider completes the send, whenever that is. One refusal at a
 * time is in flight to an address; while all 16 refusal buffers are in
 * flight (to peers that never take them), further refusals are logged but
 * not sent.
 *
 * An admitted host gets its channel endpoint (in the listener's fabric
 * domain) and the acceptance at once, then holds a pending slot until the
 * provider has handed the acceptance over (the host is reachable: the
 * channel is returned) or until its deadline (timeout_ms, and at least
 * FAB_PENDING_MIN_TURNS turns), whichever comes first. Each call of accept
 * advances every slot without waiting and judges one hello (the others wait
 * in the listener's receive buffers). While every slot is taken, new hosts
 * are refused as busy.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include <rdma/fi_domain.h>
#include <rdma/fi_eq.h>

#include "fabric_impl.h"

/* Hosts admitted whose acceptance is still on its way, at most. */
#define FAB_MAX_PENDING 16u
/* A pending host is dropped only once its deadline has passed and the
 * listener has moved it on this many times since it was admitted: the
 * provider sets up its connection only inside calls (a few round trips),
 * so an agent that calls accept seldom, or whose calls are slow, must not
 * drop a host that got its acceptance but whose completion was not read
 * yet (that host would take the channel for open). */
#define FAB_PENDING_MIN_TURNS 16u
/* Sleep slice of a waiting accept while hosts are pending: their
 * endpoints progress only inside calls. */
#define FAB_PENDING_SLICE_NS 1000000u

/* An admitted host: its channel, and the acceptance until it is posted. */
struct fab_pend {
	struct fab_chan *c; /* NULL: the slot is free */
	uint64_t deadline;
	uint32_t turns;     /* times pend_advance() moved it on */
	bool posted;
	bool with_acc;      /* the hello offered mailboxes: @acc follows @r */
	struct fab_reply r;
	struct fab_mbox_accept acc;
};

/* A refusal in flight, by transmit buffer: to whom. */
struct fab_refusal {
	bool busy;
	fi_addr_t fa;
	uint32_t addr_len;
	uint8_t addr[FAB_ADDR_MAX];
};

struct fab_listener {
	struct wave_chan_listener base;
	struct fab_ep e;
	struct fab_addr a;
	struct wave_chan_opts o;
	uint8_t token[FAB_TOKEN_MAX];
	uint32_t token_len;
	bool need_token;
	uint64_t pend_ns; /* how long an admitted host may take */
	struct fab_pend pend[FAB_MAX_PENDING];
	uint32_t n_pend;
	struct fab_refusal refusals[FAB_LISTEN_TX]; /* per transmit buffer */
	/* The listener's fd: an epoll set of the listener's wait object and
	 * every pending host's, so that a poller wakes up for either. */
	int epfd;
	char uri[FAB_PROV_MAX + FAB_ADDR_MAX];
};

static const struct wave_listener_ops fab_listener_ops;

static void listener_free(struct fab_listener *l)
{
	fab_ep_close(&l->e);
	if (l->epfd >= 0)
		close(l->epfd);
	free(l);
}

int fab_listen(const char *rest, const struct wave_chan_opts *o, struct wave_chan_listener **out)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct fab_listener *l;
	int ret;

	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->base.ops = &fab_listener_ops;
	l->e.wait_fd = -1;
	l->epfd = -1;
	snprintf(l->uri, sizeof(l->uri), "fabric://%s", rest);
	if ((ret = fab_parse_uri(rest, &l->a)) < 0)
		goto err;
	if ((ret = fab_check_local_addr(&l->a)) < 0)
		goto err; /* e.g. -EADDRNOTAVAIL: not one of this machine's */
	ret = fab_open_at(&l->a, l->a.is_str ? (const void *)l->a.str : (const void *)&l->a.sa,
			  l->a.is_str ? strlen(l->a.str) + 1 : l->a.salen, FAB_LISTEN_RX, 0,
			  FAB_LISTEN_TX, (o->flags & WAVE_CHAN_F_RMA) != 0, &l->e);
	if (ret < 0)
		goto err;
	if (l->e.wait_fd >= 0) {
		l->epfd = epoll_create1(EPOLL_CLOEXEC);
		ev.data.fd = l->e.wait_fd;
		if (l->epfd < 0 || epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->e.wait_fd, &ev) < 0) {
			ret = -errno;
			goto err;
		}
	}
	l->o = *o;
	if (o->token) {
		l->need_token = true;
		l->token_len = (uint32_t)strlen(o->token);
		memcpy(l->token, o->token, l->token_len);
	}
	l->o.token = NULL; /* the copy above is the one in force */
	l->o.allow_uids = NULL;
	/* A host that never takes its acceptance holds a slot this long; with
	 * no open timeout, its channel's disconnect timeout bounds it. */
	l->pend_ns = (uint64_t)(o->timeout_ms >= 0 ? o->timeout_ms : o->disconnect_timeout_ms) *
		     1000000u;
	/* From here on, the provider the listener really uses. */
	snprintf(l->a.prov, sizeof(l->a.prov), "%s", l->e.info->fabric_attr->prov_name);
	wave_info("listening on %s (provider %s)", l->uri, l->a.prov);
	*out = &l->base;
	return 0;
err:
	wave_warn("cannot listen on %s: %s", l->uri, wave_strerror(ret));
	listener_free(l);
	return ret;
}

/* A refusal's send completed (or failed): its buffer and address are free. */
static void refusal_done(struct fab_listener *l, uint32_t tx)
{
	fab_tx_put(&l->e, tx);
	if (tx < FAB_LISTEN_TX && l->refusals[tx].busy) {
		fi_av_remove(l->e.av, &l->refusals[tx].fa, 1, 0);
		l->refusals[tx].busy = false;
	}
}

/* Reads one listener completion: 1 with a received hello's buffer and
 * length, 0 when there is none (or it was a send's), or an error. */
static int listener_poll(struct fab_listener *l, uint32_t *idx, size_t *len)
{
	struct fi_cq_msg_entry ev;
	const struct fab_ctx *x;
	ssize_t n = fi_cq_read(l->e.cq, &ev, 1);

	if (n == -FI_EAGAIN)
		return 0;
	if (n == -FI_EAVAIL) {
		struct fi_cq_err_entry err = { 0 };
		if (fi_cq_readerr(l->e.cq, &err, 0) < 0)
			return 0;
		x = err.op_context;
		if (x >= l->e.ctx && x < l->e.ctx + l->e.n_rx + l->e.n_tx) {
			if (x->idx >= l->e.n_rx)
				refusal_done(l, x->idx - l->e.n_rx);
			else if (err.err != FI_ECANCELED)
				fab_post_rx(&l->e, x->idx);
		}
		wave_info("fabric listener: a transfer failed: %s", fi_strerror(err.err));
		return 0;
	}
	if (n < 0)
		return fab_err(n);
	x = ev.op_context;
	if (x < l->e.ctx || x >= l->e.ctx + l->e.n_rx + l->e.n_tx)
		return 0;
	if (x->idx >= l->e.n_rx) {
		refusal_done(l, x->idx - l->e.n_rx);
		return 0;
	}
	*idx = x->idx;
	*len = ev.len;
	return 1;
}

/* Sleeps up to @ns for a hello (or a pending host's progress). */
static void listener_sleep(struct fab_listener *l, uint64_t ns)
{
	if (l->n_pend && ns > FAB_PENDING_SLICE_NS)
		ns = FAB_PENDING_SLICE_NS;
	if (l->e.wait_fd >= 0) {
		struct fid *fids[1] = { &l->e.cq->fid };
		if (fi_trywait(l->e.fabric, fids, 1) == 0) {
			struct timespec ts = wave_timespec(ns);
			struct pollfd p = { .fd = l->epfd, .events = POLLIN };
			ppoll(&p, 1, &ts, NULL);
		}
		return;
	}
	if (ns > FAB_POLL_SLEEP_NS)
		ns = FAB_POLL_SLEEP_NS;
	nanosleep(&(struct timespec){ 0, (long)ns }, NULL);
}

static void reply_init(struct fab_reply *r, const struct fab_hello *h, int status)
{
	memset(r, 0, sizeof(*r));
	r->h.magic = FAB_MAGIC;
	r->h.kind = FAB_REPLY;
	r->proto_major = fab_proto_major;
	r->proto_minor = fab_proto_minor;
	r->status = status;
	r->nonce = h->nonce;
}

/*
 * Refuses a host: one REPLY with the reason, to the address its hello gave,
 * and nothing else. Posted, not waited for (see the top of this file).
 * Returns -@code.
 */
static int refuse(struct fab_listener *l, const struct fab_hello *h, int code, const char *fmt,
		  ...) __attribute__((format(printf, 4, 5)));
static int refuse(struct fab_listener *l, const struct fab_hello *h, int code, const char *fmt,
		  ...)
{
	struct fab_reply *r;
	fi_addr_t fa;
	va_list ap;
	int64_t i;
	int ret;

	i = fab_ep_tx_get(&l->e);
	if (i < 0) {
		wave_warn("refused a host (every refusal buffer is in flight: not told why)");
		return -code;
	}
	r = (struct fab_reply *)tx_buf(&l->e, (uint32_t)i);
	reply_init(r, h, code);
	va_start(ap, fmt);
	vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
	va_end(ap);
	wave_warn("refused a host: %s", r->reason);
	/* One refusal in flight per address: a peer that sends hellos but
	 * never takes an answer holds one buffer, not all of them. */
	for (uint32_t k = 0; k < FAB_LISTEN_TX; k++) {
		const struct fab_refusal *f = &l->refusals[k];
		if (f->busy && f->addr_len == h->addr_len && !memcmp(f->addr, h->addr, h->addr_len)) {
			fab_tx_put(&l->e, (uint32_t)i);
			return -code;
		}
	}
	if (fi_av_insert(l->e.av, h->addr, 1, &fa, 0, NULL) != 1) {
		fab_tx_put(&l->e, (uint32_t)i);
		return -code;
	}
	/* With a completion: the address may be forgotten only after it. */
	ret = fab_post_send(&l->e, (uint32_t)i, sizeof(*r), fa, true, false);
	if (ret < 0) {
		wave_info("fabric listener: refusal not sent: %s", wave_strerror(ret));
		fi_av_remove(l->e.av, &fa, 1, 0);
		return -code;
	}
	l->refusals[i] = (struct fab_refusal){ .busy = true, .fa = fa, .addr_len = h->addr_len };
	memcpy(l->refusals[i].addr, h->addr, h->addr_len);
	return -code;
}

static bool slots_ok(uint32_t n, uint32_t max)
{
	return n >= WAVE_CHAN_MIN_SLOTS && n <= max && (n & (n - 1)) == 0;
}

/* The address this host's channel endpoint binds: where the route back to
 * the host starts (wildcard listener), or the listener's address, port 0;
 * for shm, a name of this endpoint's own (fab_shm_src()). */
static int chan_src(const struct fab_listener *l, const struct fab_hello *h, struct fab_addr *src,
		    const void **srcp)
{
	int ret;

	memset(src, 0, sizeof(*src));
	if (l->a.is_str) {
		fab_shm_src(src);
		*srcp = src->str;
		return 0;
	}
	if (fab_addr_is_wildcard(&l->a)) {
		union fab_sa dst;
		memset(&dst, 0, sizeof(dst));
		memcpy(&dst, h->addr, h->addr_len); /* checked: a sockaddr_in(6) */
		if ((ret = fab_local_addr_towards(&dst.sa, h->addr_len, src)) < 0)
			return ret;
	} else {
		*src = l->a;
		if (src->format == FI_SOCKADDR_IN)
			src->sa.in.sin_port = 0;
		else
			src->sa.in6.sin6_port = 0;
	}
	*srcp = &src->sa;
	return 0;
}

static void pend_watch(struct fab_listener *l, const struct fab_chan *c, bool on)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = c->e.wait_fd };

	if (l->epfd >= 0 && c->e.wait_fd >= 0)
		epoll_ctl(l->epfd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, c->e.wait_fd, &ev);
}

/* Opens this host's channel endpoint and queues its acceptance in a
 * pending slot (one is free). @offer: the host's mailboxes, or NULL. */
static int admit(struct fab_listener *l, const struct fab_hello *h,
		 const struct fab_mbox_offer *offer)
{
	struct fab_pend *p = &l->pend[l->n_pend];
	const void *srcp;
	struct fab_addr src;
	struct fab_chan *c;
	struct fab_ep e;
	int ret;

	if ((ret = chan_src(l, h, &src, &srcp)) < 0)
		return ret;
	ret = fab_ep_open_in(&l->e, srcp, src.salen, h->h2a_slots, FAB_CTRL_BUFS, FAB_TX_BUFS, &e);
	if (ret < 0 || (ret = fab_chan_new(WAVE_ROLE_AGENT, &l->o, h->h2a_slots, &e, &c)) < 0)
		return ret;
	c->peer_slots = h->a2h_slots;
	c->peer_frames = h->rx_frames;
	c->peer_frame_msgs = h->frame_msgs < FAB_FRAME_MSGS ? h->frame_msgs : FAB_FRAME_MSGS;
	if (fi_av_insert(c->e.av, h->addr, 1, &c->peer, 0, NULL) != 1) {
		fab_chan_destroy(c);
		return -EHOSTUNREACH;
	}
	p->with_acc = offer != NULL;
	if (offer && (ret = fab_mbox_agent_init(c, offer, &p->acc)) < 0) {
		fab_chan_destroy(c);
		return ret;
	}
	reply_init(&p->r, h, 0);
	p->r.rx_frames = c->e.n_data;
	p->r.frame_msgs = FAB_FRAME_MSGS;
	p->r.addr_len = (uint32_t)c->e.name_len;
	memcpy(p->r.addr, c->e.name, c->e.name_len);
	p->c = c;
	p->posted = false;
	p->turns = 0;
	p->deadline = wave_now_ns() + l->pend_ns;
	l->n_pend++;
	pend_watch(l, c, true);
	return 0;
}

/* Judges the hello in listener buffer @idx (re-posted here): 0 when the
 * host was admitted (pending), or the refusal's error. */
static int handle_hello(struct fab_listener *l, uint32_t idx, size_t len)
{
	struct fab_mbox_offer offer;
	struct fab_hello h;
	bool with_offer = len == sizeof(h) + sizeof(offer);
	bool ok = len == sizeof(h) || with_offer;
	int ret;

	if (ok)
		memcpy(&h, rx_buf(&l->e, idx), sizeof(h));
	if (with_offer)
		memcpy(&offer, rx_buf(&l->e, idx) + sizeof(h), sizeof(offer));
	if ((ret = fab_post_rx(&l->e, idx)) < 0)
		return ret;
	/* Nothing is sent in answer to junk: its address cannot be trusted
	 * to be a libwave host's. */
	if (!ok || h.h.magic != FAB_MAGIC || h.h.kind != FAB_HELLO || h.token_len > FAB_TOKEN_MAX ||
	    !fab_peer_addr_ok(l->e.info->addr_format, h.addr, h.addr_len)) {
		wave_warn("fabric listener: ignored a malformed hello");
		return -WAVE_ECORRUPT;
	}
	if (h.proto_major != fab_proto_major)
		return refuse(l, &h, WAVE_EVERSION, "protocol %u.%u, this agent speaks %u.x",
			      h.proto_major, h.proto_minor, fab_proto_major);
	if (l->need_token && !wave_secret_equal(h.token, h.token_len, l->token, l->token_len,
							   FAB_TOKEN_MAX))
		return refuse(l, &h, WAVE_EREFUSED, "wrong or missing access token");
	if (!slots_ok(h.h2a_slots, l->o.max_slots) || !slots_ok(h.a2h_slots, l->o.max_slots))
		return refuse(l, &h, WAVE_EREFUSED, "ring sizes %u/%u not allowed (max %u)",
			      h.h2a_slots, h.a2h_slots, l->o.max_slots);
	if (h.rx_frames == 0 || h.rx_frames > WAVE_CHAN_MAX_SLOTS + FAB_CTRL_BUFS)
		return refuse(l, &h, WAVE_EREFUSED, "receive buffers %u not allowed (1 to %u)",
			      h.rx_frames, WAVE_CHAN_MAX_SLOTS + FAB_CTRL_BUFS);
	if (h.frame_msgs == 0)
		return refuse(l, &h, WAVE_EREFUSED, "frames of 0 messages not allowed");
	if (with_offer && (offer.n_mbox == 0 || offer.n_mbox > WAVE_CHAN_MAX_MAILBOXES ||
			   (offer.flags & ~FAB_MBOX_RMA)))
		return refuse(l, &h, WAVE_EREFUSED, "mailboxes %u (flags %#x) not allowed (1 to %u)",
			      offer.n_mbox, offer.flags, WAVE_CHAN_MAX_MAILBOXES);
	if (l->n_pend == FAB_MAX_PENDING)
		return refuse(l, &h, WAVE_EREFUSED, "too many hosts connecting at once (%u)",
			      FAB_MAX_PENDING);
	if ((ret = admit(l, &h, with_offer ? &offer : NULL)) < 0) {
		if (ret == -EHOSTUNREACH)
			return ret; /* the host is unreachable: nothing to tell it */
		return refuse(l, &h, -ret < WAVE_ERRNO_MAX ? -ret : WAVE_EREFUSED,
			      "agent cannot set up the channel: %s", wave_strerror(ret));
	}
	return 0;
}

/* Moves pending host @p forward without waiting: 1 when its acceptance has
 * been handed over, 0 while it is on its way, or why the host is lost. */
static int pend_advance(struct fab_pend *p, uint64_t now)
{
	struct fab_chan *c = p->c;
	int ret;

	c->now = now;
	p->turns++;
	fab_chan_drain(c);
	if (c->failed)
		return c->failed;
	if (c->peer_gone)
		return -ECONNREFUSED;
	if (!p->posted) {
		int64_t i = tx_get(c);
		if (i >= 0) {
			size_t len = sizeof(p->r) + (p->with_acc ? sizeof(p->acc) : 0);
			memcpy(tx_buf(&c->e, (uint32_t)i), &p->r, sizeof(p->r));
			memcpy(tx_buf(&c->e, (uint32_t)i) + sizeof(p->r), &p->acc, sizeof(p->acc));
			/* With a completion: once it comes, the provider has
			 * connected to the host and handed the reply over,
			 * even if our caller does not touch the channel for a
			 * while. */
			ret = fab_post_send(&c->e, (uint32_t)i, len, c->peer, true, false);
			if (ret < 0 && ret != -EAGAIN)
				return ret;
			p->posted = ret == 0;
		}
	}
	if (p->posted && c->e.n_tx_free == c->e.n_tx)
		return 1;
	return now >= p->deadline && p->turns >= FAB_PENDING_MIN_TURNS ? -ETIMEDOUT : 0;
}

/* Takes pending slot @k off the list; returns its channel. */
static struct fab_chan *pend_take(struct fab_listener *l, uint32_t k)
{
	struct fab_chan *c = l->pend[k].c;

	pend_watch(l, c, false);
	l->pend[k] = l->pend[--l->n_pend];
	l->pend[l->n_pend].c = NULL;
	return c;
}

/* Advances every pending host; hands out the first that is through. */
static bool pend_service(struct fab_listener *l, struct wave_chan **out)
{
	uint64_t now = wave_now_ns();

	for (uint32_t k = 0; k < l->n_pend;) {
		int r = pend_advance(&l->pend[k], now);
		if (r == 0) {
			k++;
			continue;
		}
		struct fab_chan *c = pend_take(l, k);
		if (r < 0) {
			wave_warn("fabric: accepted host did not take the reply: %s",
				  wave_strerror(r));
			fab_chan_destroy(c);
			continue;
		}
		c->now = wave_now_ns();
		c->last_rx_ns = c->last_tx_ns = c->now;
		wave_info("accepted a host on %s", l->uri);
		*out = &c->base;
		return true;
	}
	return false;
}

static int fab_accept(struct wave_chan_listener *base, int64_t timeout_ns, struct wave_chan **out)
{
	struct fab_listener *l = (struct fab_listener *)base;
	uint64_t deadline = wave_deadline(timeout_ns);
	bool admitted = false;
	uint32_t idx;
	size_t len;
	int p;

	for (;;) {
		if (l->e.n_repost && (p = fab_repost_pending(&l->e)) < 0)
			return p;
		if (pend_service(l, out))
			return 0;
		/* One hello per turn: a refusal or junk ends the call, and
		 * opening an endpoint (admitting) is the costly part. */
		p = admitted ? 0 : listener_poll(l, &idx, &len);
		if (p < 0)
			return p;
		if (p == 1) {
			if ((p = handle_hello(l, idx, len)) < 0)
				return p;
			admitted = true;
			continue; /* see whether it is through already */
		}
		uint64_t now = wave_now_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		/* Short slices: with tcp;ofi_rxm a hello arrives over a new
		 * connection that only progress sets up, and the wait object
		 * does not always fire for it. */
		admitted = false;
		listener_sleep(l, deadline - now < FAB_ACCEPT_SLICE_NS ? deadline - now
								  : FAB_ACCEPT_SLICE_NS);
	}
}

static int fab_listener_fd(const struct wave_chan_listener *base)
{
	const struct fab_listener *l = (const struct fab_listener *)base;

	return l->epfd >= 0 ? l->epfd : -ENOTSUP;
}

static void fab_listener_close(struct wave_chan_listener *base)
{
	struct fab_listener *l = (struct fab_listener *)base;

	while (l->n_pend)
		fab_chan_destroy(pend_take(l, l->n_pend - 1));
	listener_free(l);
}

static const struct wave_listener_ops fab_listener_ops = {
	.accept = fab_accept,
	.fd = fab_listener_fd,
	.close = fab_listener_close,
};

const struct wave_transport wave_transport_fabric = {
	.scheme = "fabric",
	.open = fab_open,
	.listen = fab_listen,
};
