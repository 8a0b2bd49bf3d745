/* SPDX-License-Identifier: MIT */
/* fabric:// host side: opening a channel, the hello and the agent's reply. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rdma/fi_domain.h>

#include "fabric.h"
#include "fabric_impl.h"

uint16_t fab_proto_major = FAB_PROTO_MAJOR;
uint16_t fab_proto_minor = FAB_PROTO_MINOR;

void wave_fabric_test_set_proto(uint16_t major, uint16_t minor)
{
	fab_proto_major = major;
	fab_proto_minor = minor;
}

/* ---- host side: the handshake ---------------------------------------------- */

/* The agent's answer to our hello. Sets hs_result; returns an error only
 * for a frame that cannot be a reply at all. */
int fab_handle_reply(struct fab_chan *c, const uint8_t *buf, size_t len)
{
	uint32_t fmt = c->e.info->addr_format;
	struct fab_mbox_accept acc;
	struct fab_reply r;
	bool with_acc = len == sizeof(r) + sizeof(acc);

	if (len != sizeof(r) && !with_acc)
		return -WAVE_ECORRUPT;
	memcpy(&r, buf, sizeof(r));
	if (with_acc)
		memcpy(&acc, buf + sizeof(r), sizeof(acc));
	if (r.nonce != c->nonce) {
		wave_dbg("fabric: ignored a reply to another hello");
		return 0;
	}
	r.reason[sizeof(r.reason) - 1] = '\0';
	for (char *p = r.reason; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			*p = '?'; /* the peer's text goes to our log: printable only */
	if (r.status != 0) {
		wave_warn("agent refused the channel: %s", r.reason);
		/* Only codes we know; anything else is just a refusal. */
		c->hs_result = (r.status > 0 && r.status < WAVE_ERRNO_MAX) ? -r.status
									    : -WAVE_EREFUSED;
		return 0;
	}
	if (r.proto_major != fab_proto_major) {
		wave_warn("agent speaks fabric protocol %u.%u, this host %u.%u", r.proto_major,
			  r.proto_minor, fab_proto_major, fab_proto_minor);
		c->hs_result = -WAVE_EVERSION;
		return 0;
	}
	if (r.rx_frames == 0 || r.rx_frames > WAVE_CHAN_MAX_SLOTS + FAB_CTRL_BUFS ||
	    r.frame_msgs == 0 || !fab_peer_addr_ok(fmt, r.addr, r.addr_len))
		return -WAVE_ECORRUPT;
	if ((with_acc && !c->mb.n) || fab_mbox_host_accepted(c, with_acc ? &acc : NULL) < 0)
		return -WAVE_ECORRUPT; /* an answer to mailboxes we did not offer */
	if (fi_av_insert(c->e.av, r.addr, 1, &c->peer, 0, NULL) != 1) {
		c->hs_result = -EHOSTUNREACH;
		return 0;
	}
	c->peer_frames = r.rx_frames;
	c->peer_frame_msgs = r.frame_msgs < FAB_FRAME_MSGS ? r.frame_msgs : FAB_FRAME_MSGS;
	c->handshaking = false;
	c->last_rx_ns = c->last_tx_ns = c->now;
	c->hs_result = 1;
	return 0;
}

/* Waits until @done(c) or the deadline, draining the CQ. */
static int hs_wait(struct fab_chan *c, uint64_t deadline)
{
	for (;;) {
		pthread_mutex_lock(&c->lock);
		c->now = wave_now_ns();
		fab_chan_drain(c);
		if (!c->failed && c->e.n_repost)
			fab_repost_pending(&c->e);
		pthread_mutex_unlock(&c->lock);
		if (c->failed)
			return c->failed;
		if (c->hs_result)
			return c->hs_result < 0 ? c->hs_result : 0;
		if (c->now >= deadline)
			return -ETIMEDOUT;
		fab_sleep_on_cq(c, deadline - c->now < 10000000u ? deadline - c->now : 10000000u);
	}
}

static void hello_init(const struct fab_chan *c, const struct wave_chan_opts *o,
		       struct fab_hello *h)
{
	memset(h, 0, sizeof(*h));
	h->h.magic = FAB_MAGIC;
	h->h.kind = FAB_HELLO;
	h->proto_major = fab_proto_major;
	h->proto_minor = fab_proto_minor;
	h->h2a_slots = o->host_to_agent_slots;
	h->a2h_slots = o->agent_to_host_slots;
	h->rx_frames = c->e.n_data;
	h->frame_msgs = FAB_FRAME_MSGS;
	h->nonce = c->nonce;
	if (o->token) {
		h->token_len = (uint32_t)strlen(o->token);
		memcpy(h->token, o->token, h->token_len);
	}
	h->addr_len = (uint32_t)c->e.name_len;
	memcpy(h->addr, c->e.name, c->e.name_len);
}

/*
 * Sends @h to the listener, retrying while the provider is busy (rxm sets up
 * the connection first) until @deadline. Each try fills a buffer afresh: a
 * buffer the provider refused went back to the pool and may come out again
 * as another. A connection is set up within tens of microseconds; one that
 * takes longer than HELLO_SPIN_NS (over tcp;ofi_rxm a refused one, which
 * the provider retries in silence until our deadline: a dead agent) is
 * tried again after naps of HELLO_NAP_NS, not spun on, so that a host
 * reconnecting to a dead agent does not burn its CPU.
 */
#define HELLO_SPIN_NS 1000000u
#define HELLO_NAP_NS 500000u

static int send_hello(struct fab_chan *c, const struct fab_hello *h,
		      const struct fab_mbox_offer *offer, uint64_t deadline)
{
	size_t len = sizeof(*h) + (offer ? sizeof(*offer) : 0);
	uint64_t spin_until = wave_now_ns() + HELLO_SPIN_NS, now;
	int ret = -EAGAIN;

	for (;;) {
		int64_t i = tx_get(c);
		if (i >= 0) {
			memcpy(tx_buf(&c->e, (uint32_t)i), h, sizeof(*h));
			if (offer)
				memcpy(tx_buf(&c->e, (uint32_t)i) + sizeof(*h), offer,
				       sizeof(*offer));
			/* With a completion, so that a refused connection
			 * shows up as an error completion, not as silence. */
			ret = fab_post_send(&c->e, (uint32_t)i, len, c->listener, true, false);
			if (ret != -EAGAIN)
				return ret;
		}
		pthread_mutex_lock(&c->lock);
		fab_chan_drain(c);
		pthread_mutex_unlock(&c->lock);
		if (c->failed)
			return c->failed;
		now = wave_now_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		if (now >= spin_until) {
			struct timespec nap = wave_timespec(
				deadline - now < HELLO_NAP_NS ? deadline - now : HELLO_NAP_NS);

			nanosleep(&nap, NULL);
		}
	}
}

int fab_open(const char *rest, const struct wave_chan_opts *o, struct wave_chan **out)
{
	uint64_t deadline = wave_deadline(o->timeout_ms < 0 ? -1 : (int64_t)o->timeout_ms * 1000000);
	struct fab_addr a, src;
	struct fab_mbox_offer offer;
	struct fab_hello h;
	struct fab_chan *c;
	struct fab_ep e;
	int ret;

	if ((ret = fab_parse_uri(rest, &a)) < 0) {
		wave_warn("fabric: bad URI 'fabric://%s'", rest);
		return ret;
	}
	memset(&src, 0, sizeof(src));
	if (a.is_str) {
		fab_shm_src(&src);
	} else {
		if (fab_addr_is_wildcard(&a))
			return -WAVE_EURI;
		if ((ret = fab_local_addr_towards(&a.sa.sa, a.salen, &src)) < 0) {
			wave_warn("fabric: no route to fabric://%s: %s", rest, wave_strerror(ret));
			return ret;
		}
	}
	ret = fab_open_at(&a, a.is_str ? (const void *)src.str : (const void *)&src.sa, src.salen,
			  o->agent_to_host_slots, FAB_CTRL_BUFS, FAB_TX_BUFS,
			  (o->flags & WAVE_CHAN_F_RMA) != 0, &e);
	if (ret < 0 || (ret = fab_chan_new(WAVE_ROLE_HOST, o, o->agent_to_host_slots, &e, &c)) < 0) {
		wave_warn("fabric: cannot open an endpoint for fabric://%s: %s", rest,
			  wave_strerror(ret));
		return ret;
	}
	c->handshaking = true;
	c->peer_slots = o->host_to_agent_slots;
	c->nonce = fab_nonce();
	if (fi_av_insert(c->e.av, a.is_str ? (const void *)a.str : (const void *)&a.sa, 1,
			 &c->listener, 0, NULL) != 1) {
		ret = -EHOSTUNREACH;
		goto err;
	}
	c->have_listener = true;

	hello_init(c, o, &h);
	if (o->mailboxes && (ret = fab_mbox_host_init(c, o->mailboxes, &offer)) < 0)
		goto err;
	if ((ret = send_hello(c, &h, o->mailboxes ? &offer : NULL, deadline)) < 0)
		goto err;
	if ((ret = hs_wait(c, deadline)) < 0)
		goto err;
	/* The listener's endpoint is needed no more; dropping it from our
	 * AV lets the provider close that connection. */
	fi_av_remove(c->e.av, &c->listener, 1, 0);
	c->have_listener = false;
	wave_info("fabric: connected to fabric://%s (provider %s)", rest,
		  c->e.info->fabric_attr->prov_name);
	*out = &c->base;
	return 0;
err:
	wave_warn("fabric: cannot open fabric://%s: %s", rest, wave_strerror(ret));
	fab_chan_destroy(c);
	return ret;
}
