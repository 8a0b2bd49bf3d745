/* SPDX-License-Identifier: MIT */
/*
 * fabric:// channels over libfabric reliable-datagram (FI_EP_RDM) endpoints.
 *
 * Endpoints. The listener owns one endpoint bound at the URI's address; it
 * only ever receives HELLOs and sends refusals. For every host it accepts,
 * the agent opens a new endpoint (its own completion queue, address vector
 * and buffers; an ephemeral port, or an anonymous shm name) and names it in
 * the acceptance, so each channel has private state, a private wait object
 * and no demultiplexing. The host has one endpoint per channel too.
 *
 * Buffers. Each endpoint allocates one arena at open: R + C receive buffers
 * and a few transmit buffers of FAB_BUF_SIZE bytes, registered once when the
 * provider needs local registration. Nothing is allocated or registered per
 * message. Receive buffers are posted once and re-posted when done with; a
 * DATA frame's buffer is re-posted only when the application has taken every
 * message in it, so received messages are copied exactly once, into the
 * caller's array.
 *
 * Flow control. A sender may have at most S messages (the receiver's ring
 * size) and R data frames (the receiver's posted data buffers) that the
 * receiver has not consumed. Every frame header carries the sender's counts of
 * consumed messages and released frames of the other direction (piggy-backed
 * credit); a receiver that consumed a quarter of its ring, or that was told
 * the sender is out of credit, sends a header-only CREDIT frame. Control
 * frames (CREDIT, HEARTBEAT, BYE, BYE_ACK) land in the C extra buffers, which
 * are re-posted as soon as the frame is read. A sender out of credit returns
 * fewer messages (0): backpressure, never loss.
 *
 * Liveness. Each end sends a HEARTBEAT when it has sent nothing for a quarter
 * of disconnect_timeout_ms, and declares the peer gone when it has heard
 * nothing for disconnect_timeout_ms, or at once when the provider reports
 * a failed transfer. Heartbeats are sent and read only while the application
 * calls into the channel (libfabric manual progress): wave_chan_wait() wakes
 * up often enough by itself.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rdma/fi_endpoint.h>
#include <rdma/fi_eq.h>

#include "../core/atomic.h"
#include "fabric.h"
#include "fabric_impl.h"

static uint32_t fifo_count(const struct fab_chan *c)
{
	return c->fifo_tail - c->fifo_head;
}

static const struct wave_chan_ops fab_ops;

static unsigned test_drop_credit;

void wave_fabric_test_drop_credit(unsigned n)
{
	test_drop_credit = n;
}

int fab_chan_fail(struct fab_chan *c, int err, const char *what)
{
	if (!c->failed) {
		wave_warn("fabric channel failed: %s: %s", what, wave_strerror(err));
		c->failed = err;
	}
	return c->failed;
}

void fab_peer_lost(struct fab_chan *c, const char *why)
{
	if (!c->peer_gone && !c->peer_closed)
		wave_warn("fabric channel: peer gone: %s", why);
	c->peer_gone = true;
}

static void fill_hdr(struct fab_chan *c, struct fab_hdr *h, uint8_t kind, uint16_t count,
		     uint32_t flags)
{
	h->magic = FAB_MAGIC;
	h->kind = kind;
	h->count = count;
	h->msgs_done = c->msgs_done;
	h->frames_done = c->frames_done;
	h->flags = flags;
}

/* A frame filled by fill_hdr() went out: the credit it carries is told.
 * (Only then: a frame the provider refused with EAGAIN told nothing.) */
static void told_credit(struct fab_chan *c, const struct fab_hdr *h)
{
	c->reported_msgs = h->msgs_done;
	c->reported_frames = h->frames_done;
}

/* A frame went out: its credit and its flags are told. */
static void sent_frame(struct fab_chan *c, const struct fab_hdr *h)
{
	told_credit(c, h);
	c->last_tx_ns = c->now;
	if (!(h->flags & FAB_F_SLEEPING))
		c->mb.told_sleep = false; /* the peer takes us for awake again */
}

bool fab_send_ctrl(struct fab_chan *c, uint8_t kind, uint16_t count, uint32_t flags,
		   const void *body, size_t len)
{
	int64_t i = tx_get(c);
	int r;

	if (i < 0)
		return false;
	struct fab_hdr *h = (struct fab_hdr *)tx_buf(&c->e, (uint32_t)i);
	fill_hdr(c, h, kind, count, flags);
	if (len)
		memcpy((uint8_t *)h + FAB_HDR_SIZE, body, len);
	struct fab_hdr copy = *h; /* an injected buffer is free again at once */
	if (wave_unlikely(test_drop_credit) && kind == FAB_CREDIT) {
		test_drop_credit--;
		fab_tx_put(&c->e, (uint32_t)i);
		r = 0;
	} else {
		r = fab_post_send(&c->e, (uint32_t)i, FAB_HDR_SIZE + len, c->peer, false, false);
	}
	if (r == 0) {
		sent_frame(c, &copy);
		return true;
	}
	if (r != -EAGAIN)
		fab_peer_lost(c, wave_strerror(r));
	return false;
}

/* Sends a header-only frame. True when it went out. */
static bool send_ctrl(struct fab_chan *c, uint8_t kind, uint32_t flags)
{
	return fab_send_ctrl(c, kind, 0, flags, NULL, 0);
}

/* Validates a credit update from the peer: it may only move forward, and
 * never past what we sent. */
static int take_credit(struct fab_chan *c, const struct fab_hdr *h)
{
	uint32_t dm = h->msgs_done - c->peer_msgs_done, df = h->frames_done - c->peer_frames_done;

	if (dm > c->tx_msgs - c->peer_msgs_done || df > c->tx_frames - c->peer_frames_done)
		return -WAVE_ECORRUPT;
	if (dm || df)
		c->credit_req_sent = false;
	c->peer_msgs_done = h->msgs_done;
	c->peer_frames_done = h->frames_done;
	return 0;
}

/* Judges one received frame in buffer @i. Returns 0 or an error; never
 * sends (sending is left to chan_service()). */
static int handle_frame(struct fab_chan *c, uint32_t i, size_t len)
{
	const uint8_t *buf = rx_buf(&c->e, i);
	struct fab_hdr h;

	if (len < FAB_HDR_SIZE || len > FAB_BUF_SIZE)
		return -WAVE_ECORRUPT;
	memcpy(&h, buf, sizeof(h));
	if (h.magic != FAB_MAGIC)
		return -WAVE_ECORRUPT;
	if (c->handshaking) {
		int r = h.kind == FAB_REPLY ? fab_handle_reply(c, buf, len) : -WAVE_ECORRUPT;
		return r < 0 ? r : fab_post_rx(&c->e, i);
	}
	if (take_credit(c, &h) < 0)
		return -WAVE_ECORRUPT;
	c->last_rx_ns = c->now;
	if (h.flags & ~(FAB_F_CREDIT_REQ | FAB_F_ACK_WANTED | FAB_F_SLEEPING))
		return -WAVE_ECORRUPT;
	if (h.flags & FAB_F_CREDIT_REQ)
		c->credit_wanted = true;
	fab_mbox_peer_flags(c, h.flags);
	if (h.kind >= FAB_MBOX && h.kind <= FAB_BELL) {
		int r = fab_mbox_frame(c, &h, buf + FAB_HDR_SIZE, len - FAB_HDR_SIZE);
		return r < 0 ? r : fab_post_rx(&c->e, i);
	}

	if (h.kind == FAB_DATA) {
		const uint8_t *p = buf + FAB_HDR_SIZE;
		if (c->peer_closed || h.count == 0 || h.count > FAB_FRAME_MSGS ||
		    len != FAB_HDR_SIZE + (size_t)h.count * WAVE_MSG_SIZE)
			return -WAVE_ECORRUPT;
		/* The peer must have respected our credit. */
		if (fifo_count(c) >= c->e.n_data ||
		    (uint32_t)(c->rx_msgs - c->msgs_done) + h.count > c->my_slots)
			return -WAVE_ECORRUPT;
		for (unsigned k = 0; k < h.count; k++, p += WAVE_MSG_SIZE) {
			struct wave_msg m;
			memcpy(&m, p, sizeof(m));
			if (m.type == 0 || m.seq != c->rx_msgs + 1 + k)
				return -WAVE_ECORRUPT; /* a gap, a duplicate, or junk */
		}
		c->rx_msgs += h.count;
		c->fifo[c->fifo_tail++ & c->fifo_mask] = (struct fab_frame){ i, h.count };
		return 0; /* re-posted once the application took every message */
	}
	if (len != FAB_HDR_SIZE || h.count != 0)
		return -WAVE_ECORRUPT;
	switch (h.kind) {
	case FAB_CREDIT:
	case FAB_HEARTBEAT:
		break;
	case FAB_BYE:
		if (!c->peer_closed)
			wave_info("fabric channel: peer closed");
		c->peer_closed = true;
		/* Only a closer with messages still at stake waits for an
		 * ack; otherwise nothing more is sent to a closed peer. */
		c->ack_due = (h.flags & FAB_F_ACK_WANTED) != 0;
		break;
	case FAB_BYE_ACK:
		c->bye_acked = true;
		break;
	default:
		return -WAVE_ECORRUPT;
	}
	return fab_post_rx(&c->e, i);
}

/* A completion with an error: a transfer failed or was cancelled. */
static void handle_cq_error(struct fab_chan *c)
{
	struct fi_cq_err_entry err = { 0 };
	const struct fab_ctx *x;

	if (fi_cq_readerr(c->e.cq, &err, 0) < 0)
		return;
	x = err.op_context;
	if (fab_mbox_completion(c, x) >= 0) {
		/* a failed write into the host's mailbox: the peer is lost below */
	} else if (x >= c->e.ctx && x < c->e.ctx + c->e.n_rx + c->e.n_tx) {
		if (x->idx >= c->e.n_rx)
			fab_tx_put(&c->e, x->idx - c->e.n_rx);
		else if (err.err == FI_ETRUNC)
			fab_chan_fail(c, -WAVE_ECORRUPT, "peer sent a frame larger than a buffer");
		else if (err.err != FI_ECANCELED)
			c->e.repost[c->e.n_repost++] = x->idx;
	}
	if (err.err == FI_ECANCELED || err.err == FI_ETRUNC)
		return;
	if (c->handshaking && !c->hs_result) {
		c->hs_result = err.err > 0 && err.err < FI_ERRNO_OFFSET ? -err.err : -EIO;
		return;
	}
	fab_peer_lost(c, fi_strerror(err.err));
}

/* Reads every completion and judges it. Sends nothing. */
void fab_chan_drain(struct fab_chan *c)
{
	struct fi_cq_msg_entry ev[16];

	for (int round = 0; round < 64 && !c->failed; round++) {
		ssize_t n = fi_cq_read(c->e.cq, ev, WAVE_ARRAY_SIZE(ev));
		if (n == -FI_EAGAIN)
			break;
		if (n == -FI_EAVAIL) {
			handle_cq_error(c);
			continue;
		}
		if (n < 0) {
			fab_chan_fail(c, fab_err(n), "reading the completion queue");
			break;
		}
		for (ssize_t k = 0; k < n && !c->failed; k++) {
			const struct fab_ctx *x = ev[k].op_context;
			int r;
			if (x < c->e.ctx || x >= c->e.ctx + c->e.n_rx + c->e.n_tx) {
				(void)fab_mbox_completion(c, x); /* a mailbox write, or not ours */
				continue;
			}
			if (x->idx >= c->e.n_rx) {
				fab_tx_put(&c->e, x->idx - c->e.n_rx);
				continue;
			}
			if ((r = handle_frame(c, x->idx, ev[k].len)) < 0)
				fab_chan_fail(c, r, "received frame");
		}
		if ((size_t)n < WAVE_ARRAY_SIZE(ev))
			break;
	}
}

/* Unreported credit worth a CREDIT frame now? (A report that was lost is
 * repeated by every later frame's header, heartbeats included.) */
static void maybe_credit(struct fab_chan *c)
{
	uint32_t um = c->msgs_done - c->reported_msgs, uf = c->frames_done - c->reported_frames;

	/* A peer that said BYE sends nothing more: it needs no credit. */
	if ((!um && !uf) || c->peer_closed || c->peer_gone)
		return;
	if (c->credit_wanted || um >= c->credit_every_msgs || uf >= c->credit_every_frames) {
		if (send_ctrl(c, FAB_CREDIT, 0))
			c->credit_wanted = false;
	}
}

/* The sending half of progress: re-posts, acks, credit, heartbeats, and
 * the liveness verdict. */
static void chan_service(struct fab_chan *c)
{
	int r;

	if (c->failed)
		return;
	if (c->e.n_repost && (r = fab_repost_pending(&c->e)) < 0) {
		fab_chan_fail(c, r, "re-posting a receive buffer");
		return;
	}
	if (c->peer_gone)
		return;
	if (c->ack_due && send_ctrl(c, FAB_BYE_ACK, 0))
		c->ack_due = false;
	if (c->peer_closed)
		return;
	maybe_credit(c);
	fab_mbox_service(c);
	if (c->now - c->last_tx_ns >= c->hb_ns)
		send_ctrl(c, FAB_HEARTBEAT, 0);
	if (c->now - c->last_rx_ns > c->timeout_ns) {
		wave_dbg("fabric channel: silent peer; sent %u msgs/%u frames, credited %u/%u; "
			  "received %u, consumed %u/%u frames, held %u, tx free %u, reposts %u, "
			  "req %d wanted %d",
			  c->tx_msgs, c->tx_frames, c->peer_msgs_done, c->peer_frames_done,
			  c->rx_msgs, c->msgs_done, c->frames_done, fifo_count(c), c->e.n_tx_free,
			  c->e.n_repost, c->credit_req_sent, c->credit_wanted);
		fab_peer_lost(c, "silent for longer than disconnect_timeout_ms");
	}
}

void fab_chan_progress(struct fab_chan *c)
{
	c->now = c->last_progress_ns = wave_now_ns();
	fab_chan_drain(c);
	chan_service(c);
}

/* Room for data: messages the peer's ring and posted buffers can take. */
static unsigned tx_room(const struct fab_chan *c, unsigned want)
{
	uint32_t msgs = c->peer_slots - (c->tx_msgs - c->peer_msgs_done);
	uint32_t frames = c->peer_frames - (c->tx_frames - c->peer_frames_done);
	uint64_t by_frames;

	if (frames > c->e.n_tx_free)
		frames = c->e.n_tx_free;
	by_frames = (uint64_t)frames * c->peer_frame_msgs;
	if (msgs > by_frames)
		msgs = (uint32_t)by_frames;
	return msgs < want ? msgs : want;
}

/* Fills transmit buffer @i with a DATA frame of @cnt messages. */
static size_t fill_data(struct fab_chan *c, uint32_t i, const struct wave_msg *msgs,
			unsigned cnt, uint64_t now)
{
	uint8_t *buf = tx_buf(&c->e, i);

	fill_hdr(c, (struct fab_hdr *)buf, FAB_DATA, (uint16_t)cnt, 0);
	for (unsigned m = 0; m < cnt; m++) {
		/* Messages sit 16 bytes into the frame, off their natural
		 * 64-byte alignment: copy bytes, never dereference. */
		uint8_t *w = buf + FAB_HDR_SIZE + (size_t)m * WAVE_MSG_SIZE;
		uint32_t seq = c->tx_msgs + 1 + m;
		memcpy(w, &msgs[m], WAVE_MSG_SIZE);
		memcpy(w + offsetof(struct wave_msg, seq), &seq, sizeof(seq));
		memcpy(w + offsetof(struct wave_msg, tstamp), &now, sizeof(now));
	}
	return FAB_HDR_SIZE + (size_t)cnt * WAVE_MSG_SIZE;
}

/*
 * Sends messages [0, k) of @msgs, one frame per peer_frame_msgs. Returns how
 * many went out. When the provider is busy (rxm sets up its connection on the
 * first sends), nothing or a burst's first frames are sent; a bulk call that
 * sent its first frame finishes, progressing until the provider takes the
 * rest or the peer is declared gone.
 */
static int send_frames(struct fab_chan *c, const struct wave_msg *msgs, unsigned k, bool all)
{
	uint64_t now = fab_stamp(c);
	unsigned done = 0;

	while (done < k) {
		unsigned cnt = k - done < c->peer_frame_msgs ? k - done : c->peer_frame_msgs;
		int64_t i = tx_get(c);
		struct fab_hdr sent_hdr;
		size_t len;
		int r;

		if (i < 0)
			return (int)done; /* tx_room() counted free buffers */
		len = fill_data(c, (uint32_t)i, msgs + done, cnt, now);
		memcpy(&sent_hdr, tx_buf(&c->e, (uint32_t)i), sizeof(sent_hdr));
		for (;;) {
			r = fab_post_send(&c->e, (uint32_t)i, len, c->peer, false, done + cnt < k);
			if (r != -EAGAIN)
				break;
			if (done == 0 || !all)
				return (int)done;
			do {
				fab_chan_progress(c);
				if (c->failed)
					return c->failed;
				if (c->peer_gone || c->peer_closed)
					return -WAVE_ECLOSED;
			} while ((i = tx_get(c)) < 0);
			len = fill_data(c, (uint32_t)i, msgs + done, cnt, now);
			memcpy(&sent_hdr, tx_buf(&c->e, (uint32_t)i), sizeof(sent_hdr));
		}
		if (r < 0) {
			fab_peer_lost(c, wave_strerror(r));
			return done ? (int)done : -WAVE_ECLOSED;
		}
		sent_frame(c, &sent_hdr);
		c->tx_msgs += cnt;
		c->tx_frames++;
		done += cnt;
	}
	return (int)done;
}

/* ---- channel operations -------------------------------------------------- */

/* @flags: CHAN_SEND_QUIET means nothing here: a frame is its own wake-up. */
static int fab_send(struct wave_chan *ch, const struct wave_msg *msgs, unsigned n, unsigned flags)
{
	struct fab_chan *c = FAB(ch);
	bool all = flags & CHAN_SEND_ALL;
	unsigned k;
	int r;

	pthread_mutex_lock(&c->lock);
	/* A send that has credit enough skips reading the completion queue
	 * (a system call with some providers), unless it has not been read
	 * for a while: receives and waits read it anyway, and so does a send
	 * that finds too little room. */
	c->now = wave_now_ns();
	if (tx_room(c, n) < n || c->now - c->last_progress_ns >= c->hb_ns / 4)
		fab_chan_progress(c);
	if (c->failed) {
		r = c->failed;
	} else if (c->peer_closed || c->peer_gone) {
		r = -WAVE_ECLOSED;
	} else {
		k = tx_room(c, n);
		/* Out of credit: ask the receiver to report any progress at
		 * once instead of waiting for a quarter ring. Once per credit
		 * update, so a stalled reader costs one frame, not a storm. */
		if (k < n && !c->credit_req_sent && send_ctrl(c, FAB_CREDIT, FAB_F_CREDIT_REQ))
			c->credit_req_sent = true;
		if (k < n && all)
			r = -EAGAIN;
		else if (k == 0)
			r = 0;
		else if ((r = send_frames(c, msgs, k, all)) == 0 && all)
			r = -EAGAIN;
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

/* Hands out up to @max messages, re-posting each buffer once emptied. */
static unsigned take(struct fab_chan *c, struct wave_msg *msgs, unsigned max)
{
	unsigned n = 0;

	while (n < max && fifo_count(c)) {
		struct fab_frame *f = &c->fifo[c->fifo_head & c->fifo_mask];
		const uint8_t *p = rx_buf(&c->e, f->idx) + FAB_HDR_SIZE +
				   (size_t)c->head_pos * WAVE_MSG_SIZE;
		if (c->delay_ns) {
			uint64_t ts;
			memcpy(&ts, p + offsetof(struct wave_msg, tstamp), sizeof(ts));
			/* A stamp from the future (another machine's clock, or
			 * a bad peer) is delivered at once, as with shm. */
			if (ts <= c->now && c->now - ts < c->delay_ns)
				break;
		}
		memcpy(&msgs[n++], p, WAVE_MSG_SIZE);
		if (++c->head_pos == f->count) {
			int r;
			c->head_pos = 0;
			c->fifo_head++;
			c->frames_done++;
			if ((r = fab_post_rx(&c->e, f->idx)) < 0) {
				fab_chan_fail(c, r, "re-posting a receive buffer");
				break;
			}
		}
	}
	c->msgs_done += n;
	if (n)
		maybe_credit(c);
	return n;
}

static int fab_recv(struct wave_chan *ch, struct wave_msg *msgs, unsigned max)
{
	struct fab_chan *c = FAB(ch);
	int r;

	pthread_mutex_lock(&c->lock);
	fab_chan_progress(c);
	/* Messages still held back by latency emulation are delivered when
	 * due, closed peer or not: the end is reported only after them. */
	if (c->failed)
		r = c->failed;
	else if ((r = (int)take(c, msgs, max)) == 0 && !fifo_count(c) &&
		 (c->peer_closed || c->peer_gone))
		r = c->failed ? c->failed : -WAVE_ECLOSED;
	pthread_mutex_unlock(&c->lock);
	return r;
}

/* 1 when a receive would return something (a message, or the end), 0 when
 * not, or an error. With latency emulation, *@due is when the head message
 * becomes ready (0 if none is waiting). */
static int rx_ready(struct fab_chan *c, uint64_t *due)
{
	*due = 0;
	if (c->failed)
		return c->failed;
	if (fifo_count(c)) {
		const struct fab_frame *f = &c->fifo[c->fifo_head & c->fifo_mask];
		uint64_t ts;
		if (!c->delay_ns)
			return 1;
		memcpy(&ts, rx_buf(&c->e, f->idx) + FAB_HDR_SIZE +
				    (size_t)c->head_pos * WAVE_MSG_SIZE +
				    offsetof(struct wave_msg, tstamp),
		       sizeof(ts));
		if (ts > c->now || c->now - ts >= c->delay_ns)
			return 1;
		*due = ts + c->delay_ns;
		return 0;
	}
	return c->peer_closed || c->peer_gone;
}

/* Sleeps up to @ns on the completion queue's wait object (or a short
 * sleep without one). */
void fab_sleep_on_cq(struct fab_chan *c, uint64_t ns)
{
	if (c->e.wait_fd >= 0) {
		struct fid *fids[1] = { &c->e.cq->fid };
		int t;
		pthread_mutex_lock(&c->lock);
		t = fi_trywait(c->e.fabric, fids, 1);
		pthread_mutex_unlock(&c->lock);
		if (t == 0) {
			struct timespec ts = wave_timespec(ns);
			struct pollfd p = { .fd = c->e.wait_fd, .events = POLLIN };
			wave_stat_add(&c->base.sleeps, 1);
			ppoll(&p, 1, &ts, NULL);
		}
		return;
	}
	if (ns > FAB_POLL_SLEEP_NS)
		ns = FAB_POLL_SLEEP_NS;
	wave_stat_add(&c->base.sleeps, 1);
	nanosleep(&(struct timespec){ 0, (long)ns }, NULL);
}

static int fab_wait(struct wave_chan *ch, int64_t timeout_ns)
{
	struct fab_chan *c = FAB(ch);
	uint64_t start = wave_now_ns();
	uint64_t deadline = timeout_ns < 0 ? UINT64_MAX : start + (uint64_t)timeout_ns;
	uint64_t spin_end = c->spin_ns < deadline - start ? start + c->spin_ns : deadline;
	uint64_t now, due;
	int r;

	for (;;) {
		pthread_mutex_lock(&c->lock);
		fab_chan_progress(c);
		r = rx_ready(c, &due);
		now = c->now;
		pthread_mutex_unlock(&c->lock);
		if (r != 0 || now >= deadline)
			return r;
		if (now < spin_end || (due && due - now < 20000)) {
			for (int i = 0; i < 32; i++)
				wave_cpu_relax();
			continue;
		}
		/* Wake up in time to send our heartbeat and judge the peer's,
		 * and at least every FAB_WAIT_SLICE_NS: with tcp;ofi_rxm the
		 * wait object does not fire for every arrival that needs
		 * progress to complete (a sleeper would wait for its slice). */
		uint64_t slice = deadline - now;
		if (slice > c->hb_ns / 2)
			slice = c->hb_ns / 2;
		if (slice > FAB_WAIT_SLICE_NS)
			slice = FAB_WAIT_SLICE_NS;
		if (due && due - now < slice)
			slice = due - now;
		fab_sleep_on_cq(c, slice);
	}
}

static int fab_fd(struct wave_chan *ch)
{
	struct fab_chan *c = FAB(ch);

	return c->e.wait_fd >= 0 ? c->e.wait_fd : -ENOTSUP;
}

static int fab_trywait(struct wave_chan *ch)
{
	struct fab_chan *c = FAB(ch);
	struct fid *fids[1] = { &c->e.cq->fid };
	uint64_t due;
	int r;

	if (c->e.wait_fd < 0)
		return -ENOTSUP;
	pthread_mutex_lock(&c->lock);
	fab_chan_progress(c);
	r = rx_ready(c, &due);
	if (r != 0)
		r = r < 0 ? r : -EAGAIN;
	else if (due)
		r = -EAGAIN; /* a message is held back for a little while only */
	else if (fab_mbox_before_sleep(c), (r = fi_trywait(c->e.fabric, fids, 1)) != 0)
		r = r == -FI_EAGAIN ? -EAGAIN : fab_err(r);
	pthread_mutex_unlock(&c->lock);
	return r;
}

void fab_chan_destroy(struct fab_chan *c)
{
	fab_mbox_free(c); /* its memory region before the domain */
	fab_ep_close(&c->e);
	pthread_mutex_destroy(&c->lock);
	free(c->fifo);
	free(c);
}

/*
 * Tells the peer we are done. The BYE travels behind every DATA frame we
 * sent, so the peer's acknowledgement means they all arrived and tearing
 * the endpoint down loses nothing. When the peer has already consumed (and
 * credited) every message we sent, nothing can be lost, and we wait only
 * for the provider to hand our BYE over. Either wait lasts at most
 * disconnect_timeout_ms: a peer that makes no call meanwhile cannot answer.
 */
static void fab_close(struct wave_chan *ch)
{
	struct fab_chan *c = FAB(ch);
	bool sent = false;
	uint64_t deadline, start;

	pthread_mutex_lock(&c->lock);
	c->now = start = wave_now_ns();
	deadline = c->now + c->timeout_ns;
	while (!c->failed && !c->peer_gone && !c->bye_acked && c->now < deadline) {
		fab_chan_drain(c);
		chan_service(c);
		bool all_taken = c->peer_msgs_done == c->tx_msgs;
		if (c->peer_closed && !c->ack_due)
			break; /* the peer closed first (and got its ack): we are done */
		if (!sent && !c->failed && !c->peer_gone) {
			int64_t i = tx_get(c);
			if (i >= 0) {
				fill_hdr(c, (struct fab_hdr *)tx_buf(&c->e, (uint32_t)i), FAB_BYE, 0,
					 all_taken ? 0 : FAB_F_ACK_WANTED);
				int r = fab_post_send(&c->e, (uint32_t)i, FAB_HDR_SIZE, c->peer, true,
						  false);
				sent = r == 0;
				if (r < 0 && r != -EAGAIN)
					break;
			}
		}
		bool flushed = sent && !c->ack_due && c->e.n_tx_free == c->e.n_tx;
		/* A peer that closed too needs our ack (sent above), not the
		 * other way round. */
		if (flushed && (all_taken || c->peer_closed))
			break;
		/* With nothing of ours at stake, do not wait long for a peer
		 * that makes no calls (the provider may need it to progress
		 * to take the BYE); it learns of the close by the lost
		 * connection or by its disconnect timeout instead. */
		if (all_taken && c->now - start >= FAB_CLOSE_GRACE_NS)
			break;
		pthread_mutex_unlock(&c->lock);
		fab_sleep_on_cq(c, 1000000);
		pthread_mutex_lock(&c->lock);
		c->now = wave_now_ns();
	}
	pthread_mutex_unlock(&c->lock);
	fab_chan_destroy(c);
}

static const struct wave_chan_ops fab_ops = {
	.send = fab_send,
	.recv = fab_recv,
	.wait = fab_wait,
	.fd = fab_fd,
	.trywait = fab_trywait,
	.close = fab_close,
	.mbox_put = fab_mbox_put,
	.mbox_take = fab_mbox_take,
};

static uint32_t pow2_at_least(uint32_t n)
{
	uint32_t p = 1;
	while (p < n)
		p <<= 1;
	return p;
}

/* Makes a channel around endpoint @e (taken over, also on failure). */
int fab_chan_new(enum wave_role role, const struct wave_chan_opts *o, uint32_t my_slots,
		 struct fab_ep *e, struct fab_chan **out)
{
	struct fab_chan *c;
	uint32_t cap = pow2_at_least(e->n_data ? e->n_data : 1);

	if (posix_memalign((void **)&c, 64, sizeof(*c)) != 0) {
		fab_ep_close(e);
		return -ENOMEM;
	}
	memset(c, 0, sizeof(*c));
	c->fifo = calloc(cap, sizeof(*c->fifo));
	if (!c->fifo || pthread_mutex_init(&c->lock, NULL) != 0) {
		free(c->fifo);
		free(c);
		fab_ep_close(e);
		return -ENOMEM;
	}
	c->base.ops = &fab_ops;
	c->base.role = role;
	c->e = *e;
	memset(e, 0, sizeof(*e));
	c->fifo_mask = cap - 1;
	c->my_slots = my_slots;
	c->credit_every_msgs = my_slots / 4 ? my_slots / 4 : 1;
	c->credit_every_frames = c->e.n_data / 4 ? c->e.n_data / 4 : 1;
	c->timeout_ns = (uint64_t)o->disconnect_timeout_ms * 1000000u;
	c->hb_ns = c->timeout_ns / 4 ? c->timeout_ns / 4 : 1;
	c->delay_ns = o->delay_ns;
	c->no_stamp = (o->flags & WAVE_CHAN_F_NO_STAMP) != 0;
	c->spin_ns = o->spin_ns;
	c->now = wave_now_ns();
	c->last_rx_ns = c->last_tx_ns = c->now;
	*out = c;
	return 0;
}
