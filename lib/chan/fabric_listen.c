/* SPDX-License-Identifier: MIT */
/* fabric:// agent side: the listener, judging hellos, refusing and
 * admitting hosts. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rdma/fi_domain.h>
#include <rdma/fi_eq.h>

#include "fabric_impl.h"

/* ---- agent side: listening and accepting ----------------------------------- */

struct fab_listener {
	struct wave_chan_listener base;
	struct fab_ep e;
	struct fab_addr a;
	struct wave_chan_opts o;
	uint8_t token[FAB_TOKEN_MAX];
	uint32_t token_len;
	bool need_token;
	struct fab_frame *pending; /* hellos read while sending a refusal */
	uint32_t n_pending;
	char uri[FAB_PROV_MAX + FAB_ADDR_MAX];
};

static const struct wave_listener_ops fab_listener_ops;

int fab_listen(const char *rest, const struct wave_chan_opts *o,
		      struct wave_chan_listener **out)
{
	struct fab_listener *l;
	int ret;

	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->base.ops = &fab_listener_ops;
	snprintf(l->uri, sizeof(l->uri), "fabric://%s", rest);
	if ((ret = fab_parse_uri(rest, &l->a)) < 0)
		goto err;
	if ((ret = fab_check_local_addr(&l->a)) < 0)
		goto err; /* e.g. -EADDRNOTAVAIL: not one of this machine's */
	ret = fab_open_at(&l->a, l->a.is_str ? (const void *)l->a.str : (const void *)&l->a.sa,
			  l->a.is_str ? strlen(l->a.str) + 1 : l->a.salen, FAB_LISTEN_RX, 0,
			  FAB_LISTEN_TX, &l->e);
	if (ret < 0)
		goto err;
	l->pending = calloc(l->e.n_rx, sizeof(*l->pending));
	if (!l->pending) {
		fab_ep_close(&l->e);
		ret = -ENOMEM;
		goto err;
	}
	l->o = *o;
	if (o->token) {
		l->need_token = true;
		l->token_len = (uint32_t)strlen(o->token);
		memcpy(l->token, o->token, l->token_len);
	}
	l->o.token = NULL; /* the copy above is the one in force */
	l->o.allow_uids = NULL;
	/* From here on, the provider the listener really uses. */
	snprintf(l->a.prov, sizeof(l->a.prov), "%s", l->e.info->fabric_attr->prov_name);
	wave_info("listening on %s (provider %s)", l->uri, l->a.prov);
	*out = &l->base;
	return 0;
err:
	wave_warn("cannot listen on %s: %s", l->uri, wave_strerror(ret));
	free(l);
	return ret;
}

/* Constant time in the token's contents: every byte is compared. */
static bool token_equal(const uint8_t *a, uint32_t alen, const uint8_t *b, uint32_t blen)
{
	uint8_t diff = (uint8_t)(alen != blen);

	for (unsigned i = 0; i < FAB_TOKEN_MAX; i++)
		diff |= a[i] ^ b[i];
	return diff == 0;
}

/* Reads one listener completion: 1 with a received hello's buffer and
 * length, 0 when there is none, or an error. Transmit completions only
 * free their buffer. */
static int listener_poll(struct fab_listener *l, uint32_t *idx, size_t *len, bool *tx_done)
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
			if (x->idx >= l->e.n_rx) {
				fab_tx_put(&l->e, x->idx - l->e.n_rx);
				*tx_done = true;
			} else if (err.err != FI_ECANCELED) {
				fab_post_rx(&l->e, x->idx);
			}
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
		fab_tx_put(&l->e, x->idx - l->e.n_rx);
		*tx_done = true;
		return 0;
	}
	*idx = x->idx;
	*len = ev.len;
	return 1;
}

static void listener_sleep(struct fab_listener *l, uint64_t ns)
{
	if (l->e.wait_fd >= 0) {
		struct fid *fids[1] = { &l->e.cq->fid };
		if (fi_trywait(l->e.fabric, fids, 1) == 0) {
			struct timespec ts = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };
			struct pollfd p = { .fd = l->e.wait_fd, .events = POLLIN };
			ppoll(&p, 1, &ts, NULL);
		}
		return;
	}
	if (ns > FAB_POLL_SLEEP_NS)
		ns = FAB_POLL_SLEEP_NS;
	nanosleep(&(struct timespec){ 0, (long)ns }, NULL);
}

/*
 * Refuses a host: one REPLY with the reason, to the address its hello gave,
 * and nothing else. Waits (briefly) for the send to complete, then forgets
 * the address. Returns -@code.
 */
static int refuse(struct fab_listener *l, const struct fab_hello *h, int code, const char *fmt,
		  ...) __attribute__((format(printf, 4, 5)));
static int refuse(struct fab_listener *l, const struct fab_hello *h, int code, const char *fmt,
		  ...)
{
	uint64_t deadline = wave_now_ns() + 2000000000u;
	struct fab_reply *r;
	fi_addr_t fa;
	va_list ap;
	int64_t i;
	int ret;
	bool tx_done = false;

	i = fab_ep_tx_get(&l->e);
	if (i < 0) {
		wave_warn("refused a host (no buffer to tell it why)");
		return -code;
	}
	r = (struct fab_reply *)tx_buf(&l->e, (uint32_t)i);
	memset(r, 0, sizeof(*r));
	r->h.magic = FAB_MAGIC;
	r->h.kind = FAB_REPLY;
	r->proto_major = fab_proto_major;
	r->proto_minor = fab_proto_minor;
	r->status = code;
	r->nonce = h->nonce;
	va_start(ap, fmt);
	vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
	va_end(ap);
	wave_warn("refused a host: %s", r->reason);
	if (fi_av_insert(l->e.av, h->addr, 1, &fa, 0, NULL) != 1) {
		fab_tx_put(&l->e, (uint32_t)i);
		return -code;
	}
	while ((ret = fab_post_send(&l->e, (uint32_t)i, sizeof(*r), fa, true, false)) == -EAGAIN) {
		uint32_t idx;
		size_t len;
		bool dummy = false;
		if (wave_now_ns() >= deadline || (i = fab_ep_tx_get(&l->e)) < 0)
			break;
		if (listener_poll(l, &idx, &len, &dummy) == 1)
			l->pending[l->n_pending++] = (struct fab_frame){ idx, (uint32_t)len };
	}
	/* Wait for the completion; keep hellos that come meanwhile. */
	while (ret == 0 && !tx_done && wave_now_ns() < deadline) {
		uint32_t idx;
		size_t len;
		int p = listener_poll(l, &idx, &len, &tx_done);
		if (p == 1 && l->n_pending < l->e.n_rx)
			l->pending[l->n_pending++] = (struct fab_frame){ idx, (uint32_t)len };
		else if (p == 0 && !tx_done)
			listener_sleep(l, 1000000);
		else if (p < 0)
			break;
	}
	fi_av_remove(l->e.av, &fa, 1, 0);
	return -code;
}

static bool slots_ok(uint32_t n, uint32_t max)
{
	return n >= WAVE_CHAN_MIN_SLOTS && n <= max && (n & (n - 1)) == 0;
}

/* Opens this host's channel endpoint and sends the acceptance. */
static int admit(struct fab_listener *l, const struct fab_hello *h, uint64_t deadline,
		 struct wave_chan **out)
{
	struct fab_addr src;
	struct fab_chan *c;
	struct fab_reply *r;
	struct fab_ep e;
	const void *srcp = NULL;
	int64_t i;
	int ret;

	memset(&src, 0, sizeof(src));
	if (!l->a.is_str) {
		if (fab_addr_is_wildcard(&l->a)) {
			/* Bind where the route back to this host starts. */
			union fab_sa dst;
			memset(&dst, 0, sizeof(dst));
			memcpy(&dst, h->addr, h->addr_len); /* checked: a sockaddr_in(6) */
			if ((ret = fab_local_addr_towards(&dst.sa, h->addr_len, &src)) < 0)
				return ret;
		} else {
			src = l->a;
			if (src.format == FI_SOCKADDR_IN)
				src.sa.in.sin_port = 0;
			else
				src.sa.in6.sin6_port = 0;
		}
		srcp = &src.sa;
	}
	ret = fab_open_at(&l->a, srcp, src.salen, h->h2a_slots, FAB_CTRL_BUFS, FAB_TX_BUFS, &e);
	if (ret < 0 || (ret = fab_chan_new(WAVE_ROLE_AGENT, &l->o, h->h2a_slots, &e, &c)) < 0)
		return ret;
	c->peer_slots = h->a2h_slots;
	c->peer_frames = h->rx_frames;
	c->peer_frame_msgs = h->frame_msgs < FAB_FRAME_MSGS ? h->frame_msgs : FAB_FRAME_MSGS;
	if (fi_av_insert(c->e.av, h->addr, 1, &c->peer, 0, NULL) != 1) {
		fab_chan_destroy(c);
		return -EHOSTUNREACH;
	}
	i = tx_get(c);
	r = (struct fab_reply *)tx_buf(&c->e, (uint32_t)i);
	memset(r, 0, sizeof(*r));
	r->h.magic = FAB_MAGIC;
	r->h.kind = FAB_REPLY;
	r->proto_major = fab_proto_major;
	r->proto_minor = fab_proto_minor;
	r->nonce = h->nonce;
	r->rx_frames = c->e.n_data;
	r->frame_msgs = FAB_FRAME_MSGS;
	r->addr_len = (uint32_t)c->e.name_len;
	memcpy(r->addr, c->e.name, c->e.name_len);
	/* With a completion: once it comes, the provider has connected to
	 * the host and handed the reply over, even if our caller does not
	 * touch the channel for a while. */
	while ((ret = fab_post_send(&c->e, (uint32_t)i, sizeof(*r), c->peer, true, false)) == -EAGAIN) {
		fab_chan_drain(c);
		if (wave_now_ns() >= deadline || (i = tx_get(c)) < 0) {
			ret = -ETIMEDOUT;
			break;
		}
	}
	while (ret == 0 && c->e.n_tx_free < c->e.n_tx) {
		c->now = wave_now_ns();
		fab_chan_drain(c);
		if (c->peer_gone || c->failed)
			ret = c->failed ? c->failed : -ECONNREFUSED;
		else if (c->now >= deadline)
			ret = -ETIMEDOUT;
		else if (c->e.n_tx_free < c->e.n_tx)
			fab_sleep_on_cq(c, 1000000);
	}
	if (ret < 0) {
		wave_warn("fabric: accepted host did not take the reply: %s", wave_strerror(ret));
		fab_chan_destroy(c);
		return ret;
	}
	c->now = wave_now_ns();
	c->last_rx_ns = c->last_tx_ns = c->now;
	*out = &c->base;
	return 0;
}

/* Judges the hello in listener buffer @idx (re-posted here). */
static int handle_hello(struct fab_listener *l, uint32_t idx, size_t len, uint64_t deadline,
			struct wave_chan **out)
{
	struct fab_hello h;
	bool ok = len == sizeof(h);
	int ret;

	if (ok)
		memcpy(&h, rx_buf(&l->e, idx), sizeof(h));
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
	if (l->need_token && !token_equal(h.token, h.token_len, l->token, l->token_len))
		return refuse(l, &h, WAVE_EREFUSED, "wrong or missing access token");
	if (!slots_ok(h.h2a_slots, l->o.max_slots) || !slots_ok(h.a2h_slots, l->o.max_slots) ||
	    h.rx_frames == 0 || h.rx_frames > WAVE_CHAN_MAX_SLOTS + FAB_CTRL_BUFS ||
	    h.frame_msgs == 0)
		return refuse(l, &h, WAVE_EREFUSED, "ring sizes %u/%u not allowed (max %u)",
			      h.h2a_slots, h.a2h_slots, l->o.max_slots);
	if ((ret = admit(l, &h, deadline, out)) < 0) {
		if (ret == -ETIMEDOUT || ret == -ECONNREFUSED || ret == -EHOSTUNREACH)
			return ret; /* the host is unreachable: nothing to tell it */
		return refuse(l, &h, -ret < WAVE_ERRNO_MAX ? -ret : WAVE_EREFUSED,
			      "agent cannot set up the channel: %s", wave_strerror(ret));
	}
	wave_info("accepted a host on %s", l->uri);
	return 0;
}

static int fab_accept(struct wave_chan_listener *base, int timeout_ms, struct wave_chan **out)
{
	struct fab_listener *l = (struct fab_listener *)base;
	uint64_t deadline = deadline_of(timeout_ms);
	uint64_t hs_deadline;
	uint32_t idx;
	size_t len;

	for (;;) {
		bool tx_done = false;
		int p;
		if (l->e.n_repost && (p = fab_repost_pending(&l->e)) < 0)
			return p;
		if (l->n_pending) {
			struct fab_frame f = l->pending[0];
			memmove(l->pending, l->pending + 1, --l->n_pending * sizeof(*l->pending));
			idx = f.idx;
			len = f.count;
			p = 1;
		} else {
			p = listener_poll(l, &idx, &len, &tx_done);
		}
		if (p < 0)
			return p;
		if (p == 1) {
			hs_deadline = deadline_of(l->o.timeout_ms);
			return handle_hello(l, idx, len, hs_deadline, out);
		}
		if (tx_done)
			continue;
		uint64_t now = wave_now_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		/* Short slices: with tcp;ofi_rxm a hello arrives over a new
		 * connection that only progress sets up, and the wait object
		 * does not always fire for it. */
		listener_sleep(l, deadline - now < FAB_ACCEPT_SLICE_NS ? deadline - now
								  : FAB_ACCEPT_SLICE_NS);
	}
}

static int fab_listener_fd(const struct wave_chan_listener *base)
{
	const struct fab_listener *l = (const struct fab_listener *)base;

	return l->e.wait_fd >= 0 ? l->e.wait_fd : -ENOTSUP;
}

static void fab_listener_close(struct wave_chan_listener *base)
{
	struct fab_listener *l = (struct fab_listener *)base;

	fab_ep_close(&l->e);
	free(l->pending);
	free(l);
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
