/* SPDX-License-Identifier: MIT */
/*
 * fabric:// mailboxes (protocol 1.1; the wire is described in fabric_wire.h).
 *
 * The host keeps its mailboxes in its own memory, one struct fab_mbox_slot
 * each, and takes a put with loads of that memory. Where the provider can
 * write remote memory (FI_RMA), the host registers the slots for remote
 * writes and the agent puts with one fi_write() of the whole slot: on a
 * NIC that places data by itself (verbs), the host sees it without any call
 * into libfabric. Providers that progress data only inside calls (tcp;ofi_rxm
 * and shm here: FI_PROGRESS_MANUAL) place it when the host next drives the
 * completion queue, which a take of an empty mailbox does. Without RMA the
 * agent sends the slot in an MBOX frame and the host copies it in when the
 * frame arrives.
 *
 * Nothing the agent writes is trusted: a slot counts only when its checksum
 * matches and its put count is exactly one past what the host took (a write
 * still landing reads as empty; a count that jumps fails the channel). The
 * agent puts into a mailbox again only once the host said, in an
 * MBOX_TAKEN frame, that it took the previous put: a mailbox is never
 * overwritten, a full one is backpressure (-EAGAIN).
 *
 * Waking a sleeping host: a remote write completes nothing on the host's
 * side, so a host about to sleep says so (FAB_F_SLEEPING on a heartbeat),
 * and the agent answers its next put, or a put the host has not taken yet,
 * with a BELL frame, whose arrival wakes the host's wait object.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <rdma/fi_domain.h>
#include <rdma/fi_rma.h>

#include "../core/crc32c.h"
#include "fabric.h"
#include "fabric_impl.h"

/* The key the host asks for its slots' region when the provider does not
 * choose keys itself (each host endpoint has a domain of its own). */
#define FAB_MBOX_KEY 0x77617665u

static bool test_no_rma;

void wave_fabric_test_no_rma(bool on)
{
	test_no_rma = on;
}

static uint32_t slot_crc(const struct fab_mbox_slot *s)
{
	return wave_crc32c(0, s, offsetof(struct fab_mbox_slot, crc));
}

static size_t slots_bytes(uint32_t n)
{
	return (size_t)n * sizeof(struct fab_mbox_slot);
}

void fab_mbox_free(struct fab_chan *c)
{
	struct fab_mbox *m = &c->mb;

	if (m->mr)
		fi_close(&m->mr->fid);
	free(m->slots);
	free(m->count);
	free(m->peer_taken);
	free(m->wctx);
	free(m->writing);
	free(m->dirty);
	free(m->is_dirty);
	memset(m, 0, sizeof(*m));
	c->base.n_mbox = 0;
}

/* Memory for @n mailboxes: slots (host, or the agent's write sources) and
 * the counters of the end @c is. */
static int mbox_alloc(struct fab_chan *c, uint32_t n, bool slots)
{
	struct fab_mbox *m = &c->mb;
	bool host = c->base.role == WAVE_ROLE_HOST;

	m->n = n;
	m->count = calloc(n, sizeof(*m->count));
	if (!m->count)
		return -ENOMEM;
	if (slots) {
		if (posix_memalign((void **)&m->slots, 4096, slots_bytes(n)) != 0) {
			m->slots = NULL;
			return -ENOMEM;
		}
		memset(m->slots, 0, slots_bytes(n));
	}
	if (host) {
		m->dirty = calloc(n, sizeof(*m->dirty));
		m->is_dirty = calloc(n, 1);
		return m->dirty && m->is_dirty ? 0 : -ENOMEM;
	}
	m->peer_taken = calloc(n, sizeof(*m->peer_taken));
	return m->peer_taken ? 0 : -ENOMEM;
}

/* Whether the endpoint may take part in RMA writes in @dir (FI_WRITE for
 * the writer, FI_REMOTE_WRITE for the target). */
static bool ep_can(const struct fab_chan *c, uint64_t dir)
{
	return (c->e.info->caps & FI_RMA) && (c->e.info->caps & dir);
}

int fab_mbox_host_init(struct fab_chan *c, uint32_t n, struct fab_mbox_offer *offer)
{
	struct fab_mbox *m = &c->mb;
	uint64_t mode = c->e.info->domain_attr->mr_mode;
	int ret;

	memset(offer, 0, sizeof(*offer));
	if ((ret = mbox_alloc(c, n, true)) < 0)
		return ret;
	offer->n_mbox = n;
	if (!ep_can(c, FI_REMOTE_WRITE) || test_no_rma)
		return 0;
	ret = fab_err(fi_mr_reg(c->e.domain, m->slots, slots_bytes(n), FI_REMOTE_WRITE, 0,
				FAB_MBOX_KEY, 0, &m->mr, NULL));
	if (ret < 0) {
		wave_info("fabric: mailboxes without remote writes: registering them failed: %s",
			  wave_strerror(ret));
		m->mr = NULL;
		return 0;
	}
	offer->flags = FAB_MBOX_RMA;
	offer->key = (mode & FI_MR_PROV_KEY) ? fi_mr_key(m->mr) : FAB_MBOX_KEY;
	offer->addr = (mode & FI_MR_VIRT_ADDR) ? (uint64_t)(uintptr_t)m->slots : 0;
	return 0;
}

int fab_mbox_host_accepted(struct fab_chan *c, const struct fab_mbox_accept *a)
{
	struct fab_mbox *m = &c->mb;

	if (!a || a->n_mbox == 0) {
		if (m->n)
			wave_info("fabric: the agent has no mailboxes (protocol 1.0, or declined)");
		fab_mbox_free(c);
		return 0;
	}
	if (a->n_mbox != m->n || (a->flags & ~FAB_MBOX_RMA) ||
	    ((a->flags & FAB_MBOX_RMA) && !m->mr))
		return -WAVE_ECORRUPT;
	m->rma = (a->flags & FAB_MBOX_RMA) != 0;
	c->base.n_mbox = m->n;
	wave_info("fabric: %u mailboxes, written by the agent %s", m->n,
		  m->rma ? "into our memory (RMA)" : "in messages");
	return 0;
}

int fab_mbox_agent_init(struct fab_chan *c, const struct fab_mbox_offer *o,
			struct fab_mbox_accept *acc)
{
	struct fab_mbox *m = &c->mb;
	int ret;

	memset(acc, 0, sizeof(*acc));
	if (o->n_mbox == 0 || o->n_mbox > WAVE_CHAN_MAX_MAILBOXES || (o->flags & ~FAB_MBOX_RMA))
		return -WAVE_ECORRUPT;
	bool rma = (o->flags & FAB_MBOX_RMA) && ep_can(c, FI_WRITE);
	if ((ret = mbox_alloc(c, o->n_mbox, rma)) < 0)
		return ret;
	if (rma) {
		m->wctx = calloc(o->n_mbox, sizeof(*m->wctx));
		m->writing = calloc(o->n_mbox, 1);
		if (!m->wctx || !m->writing)
			return -ENOMEM;
		if (c->e.info->domain_attr->mr_mode & FI_MR_LOCAL) {
			ret = fab_err(fi_mr_reg(c->e.domain, m->slots, slots_bytes(o->n_mbox),
						FI_WRITE, 0, 0, 0, &m->mr, NULL));
			if (ret < 0)
				return ret;
			m->desc = fi_mr_desc(m->mr);
		}
		m->addr = o->addr;
		m->key = o->key;
		m->rma = true;
		acc->flags = FAB_MBOX_RMA;
	}
	acc->n_mbox = o->n_mbox;
	c->base.n_mbox = o->n_mbox;
	return 0;
}

/* ---- host: taking ----------------------------------------------------------- */

/* Judges a copy of slot @i: 1 (a put to take), 0 (nothing new, or a write
 * still landing), or -WAVE_ECORRUPT. */
static int slot_judge(const struct fab_chan *c, unsigned i, const struct fab_mbox_slot *s)
{
	uint64_t taken = c->mb.count[i];

	if (s->put == taken || s->crc != slot_crc(s))
		return 0;
	if (s->put != taken + 1 || s->msg.type == 0)
		return -WAVE_ECORRUPT;
	return 1;
}

static void mark_taken(struct fab_mbox *m, unsigned i)
{
	m->count[i]++;
	if (!m->is_dirty[i]) {
		m->is_dirty[i] = 1;
		m->dirty[m->n_dirty++] = i;
	}
}

/* Tells the agent what was taken since the last time, as far as transmit
 * buffers allow (the rest at the next progress). */
static void flush_taken(struct fab_chan *c)
{
	struct fab_mbox *m = &c->mb;

	while (m->n_dirty && !c->failed && !c->peer_gone && !c->peer_closed) {
		struct fab_mbox_taken t[FAB_TAKEN_MAX];
		uint32_t k = m->n_dirty < FAB_TAKEN_MAX ? m->n_dirty : (uint32_t)FAB_TAKEN_MAX;

		for (uint32_t j = 0; j < k; j++) {
			uint32_t i = m->dirty[m->n_dirty - 1 - j];
			t[j] = (struct fab_mbox_taken){ i, (uint32_t)m->count[i] };
		}
		if (!fab_send_ctrl(c, FAB_MBOX_TAKEN, (uint16_t)k, 0, t, k * sizeof(t[0])))
			return;
		for (uint32_t j = 0; j < k; j++)
			m->is_dirty[m->dirty[--m->n_dirty]] = 0;
	}
}

/* One look at slot @i: copy, judge the copy, take. */
static int take_once(struct fab_chan *c, unsigned i, struct wave_msg *msg)
{
	struct fab_mbox_slot s;
	int r;

	memcpy(&s, &c->mb.slots[i], sizeof(s));
	r = slot_judge(c, i, &s);
	if (r <= 0)
		return r;
	if (c->delay_ns && s.msg.tstamp <= c->now && c->now - s.msg.tstamp < c->delay_ns)
		return 0; /* held back like a message; a stamp from the future: at once */
	*msg = s.msg;
	msg->seq = (uint32_t)s.put;
	mark_taken(&c->mb, i);
	return 1;
}

int fab_mbox_take(struct wave_chan *ch, unsigned i, struct wave_msg *msg)
{
	struct fab_chan *c = FAB(ch);
	int r;

	pthread_mutex_lock(&c->lock);
	c->now = wave_now_ns();
	r = c->failed ? c->failed : take_once(c, i, msg);
	if (r == 0) {
		/* Drive the provider: a write may be waiting to be placed,
		 * or an MBOX frame to be read. */
		fab_chan_progress(c);
		r = c->failed ? c->failed : take_once(c, i, msg);
	}
	if (r < 0)
		r = fab_chan_fail(c, r, "impossible mailbox slot");
	else if (r == 1)
		flush_taken(c);
	pthread_mutex_unlock(&c->lock);
	return r;
}

/* ---- agent: putting ------------------------------------------------------------ */

static void slot_fill(struct fab_mbox_slot *s, const struct wave_msg *msg, uint64_t put,
		      uint64_t now)
{
	memset(s, 0, sizeof(*s));
	s->msg = *msg;
	s->msg.seq = (uint32_t)put;
	s->msg.tstamp = now;
	s->put = put;
	s->crc = slot_crc(s);
}

/* Whether mailbox @i can take a put: the host took the last one, and its
 * write (if any) is complete. */
static bool put_room(const struct fab_mbox *m, unsigned i)
{
	return (uint32_t)m->count[i] == m->peer_taken[i] && !(m->writing && m->writing[i]);
}

static int post_put(struct fab_chan *c, unsigned i, const struct wave_msg *msg)
{
	struct fab_mbox *m = &c->mb;
	uint64_t put = m->count[i] + 1;

	if (m->rma) {
		struct fab_mbox_slot *s = &m->slots[i];
		slot_fill(s, msg, put, fab_stamp(c));
		ssize_t r = fi_write(c->e.ep, s, sizeof(*s), m->desc, c->peer,
				     m->addr + (uint64_t)i * sizeof(*s), m->key, &m->wctx[i]);
		if (r == -FI_EAGAIN)
			return -EAGAIN;
		if (r < 0)
			return fab_err(r);
		m->writing[i] = 1;
	} else {
		struct fab_mbox_slot s;
		struct fab_mbox_body body = { .idx = i };
		slot_fill(&s, msg, put, fab_stamp(c));
		memcpy(body.slot, &s, sizeof(s));
		if (!fab_send_ctrl(c, FAB_MBOX, 0, 0, &body, sizeof(body)))
			return c->peer_gone ? -WAVE_ECLOSED : -EAGAIN;
	}
	m->count[i] = put;
	return 0;
}

/* Rings the host when it said it sleeps and a put of ours waits for it. */
static void maybe_bell(struct fab_chan *c)
{
	struct fab_mbox *m = &c->mb;

	if (!m->peer_sleeps)
		return;
	for (uint32_t i = 0; i < m->n; i++)
		if ((uint32_t)m->count[i] != m->peer_taken[i]) {
			if (fab_send_ctrl(c, FAB_BELL, 0, 0, NULL, 0))
				m->peer_sleeps = false;
			return;
		}
}

int fab_mbox_put(struct wave_chan *ch, unsigned i, const struct wave_msg *msg)
{
	struct fab_chan *c = FAB(ch);
	int r = 0;

	pthread_mutex_lock(&c->lock);
	c->now = wave_now_ns();
	if (!put_room(&c->mb, i))
		fab_chan_progress(c); /* the host's MBOX_TAKEN, our write's completion */
	if (c->failed)
		r = c->failed;
	else if (c->peer_closed || c->peer_gone)
		r = -WAVE_ECLOSED;
	else if (!put_room(&c->mb, i))
		r = -EAGAIN;
	else if ((r = post_put(c, i, msg)) == 0)
		maybe_bell(c);
	else if (r != -EAGAIN && r != -WAVE_ECLOSED)
		fab_peer_lost(c, wave_strerror(r)), r = -WAVE_ECLOSED;
	pthread_mutex_unlock(&c->lock);
	return r;
}

/* ---- frames and completions ----------------------------------------------------- */

/* Host: a put sent as a frame goes into its slot, which must be empty. */
static int frame_put(struct fab_chan *c, const uint8_t *body, size_t len)
{
	struct fab_mbox *m = &c->mb;
	struct fab_mbox_body b;
	struct fab_mbox_slot s;
	uint32_t idx;

	if (c->base.role != WAVE_ROLE_HOST || !m->slots || m->rma || len != sizeof(b))
		return -WAVE_ECORRUPT;
	memcpy(&b, body, sizeof(b));
	memcpy(&s, b.slot, sizeof(s));
	idx = b.idx;
	if (idx >= m->n || m->slots[idx].put != m->count[idx] || s.crc != slot_crc(&s) ||
	    s.put != m->count[idx] + 1 || s.msg.type == 0)
		return -WAVE_ECORRUPT;
	m->slots[idx] = s;
	return 0;
}

/* Agent: what the host took. It may only have taken our one put. */
static int frame_taken(struct fab_chan *c, uint16_t count, const uint8_t *body, size_t len)
{
	struct fab_mbox *m = &c->mb;

	if (c->base.role != WAVE_ROLE_AGENT || !m->n || count == 0 || count > FAB_TAKEN_MAX ||
	    len != count * sizeof(struct fab_mbox_taken))
		return -WAVE_ECORRUPT;
	for (uint16_t k = 0; k < count; k++) {
		struct fab_mbox_taken t;
		memcpy(&t, body + k * sizeof(t), sizeof(t));
		if (t.idx >= m->n || t.taken - m->peer_taken[t.idx] >
					     (uint32_t)m->count[t.idx] - m->peer_taken[t.idx])
			return -WAVE_ECORRUPT;
		m->peer_taken[t.idx] = t.taken;
	}
	return 0;
}

int fab_mbox_frame(struct fab_chan *c, const struct fab_hdr *h, const uint8_t *body, size_t len)
{
	switch (h->kind) {
	case FAB_MBOX:
		return h->count == 0 ? frame_put(c, body, len) : -WAVE_ECORRUPT;
	case FAB_MBOX_TAKEN:
		return frame_taken(c, h->count, body, len);
	case FAB_BELL:
		/* Its arrival woke the host; the slots say the rest. */
		return c->base.role == WAVE_ROLE_HOST && c->mb.n && len == 0 && h->count == 0
			       ? 0
			       : -WAVE_ECORRUPT;
	default:
		return -WAVE_ECORRUPT;
	}
}

int fab_mbox_completion(struct fab_chan *c, const void *ctx)
{
	struct fab_mbox *m = &c->mb;
	const struct fab_ctx *x = ctx;

	if (!m->wctx || x < m->wctx || x >= m->wctx + m->n)
		return -1;
	m->writing[x - m->wctx] = 0;
	return (int)(x - m->wctx);
}

void fab_mbox_service(struct fab_chan *c)
{
	if (!c->mb.n)
		return;
	if (c->base.role == WAVE_ROLE_HOST)
		flush_taken(c);
	else
		maybe_bell(c);
}

void fab_mbox_peer_flags(struct fab_chan *c, uint32_t flags)
{
	if (c->base.role == WAVE_ROLE_AGENT)
		c->mb.peer_sleeps = (flags & FAB_F_SLEEPING) != 0;
}

void fab_mbox_before_sleep(struct fab_chan *c)
{
	if (c->base.role == WAVE_ROLE_HOST && c->mb.n && !c->mb.told_sleep &&
	    fab_send_ctrl(c, FAB_HEARTBEAT, 0, FAB_F_SLEEPING, NULL, 0))
		c->mb.told_sleep = true;
}
