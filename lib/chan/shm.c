/* SPDX-License-Identifier: MIT */
/*
 * The shared-memory channel end: ring operations, waiting on a doorbell,
 * closing. Its memory comes from shm_sock.c (shm://) or file.c (file://).
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../core/atomic.h"
#include "../core/core.h"
#include "../core/futex.h"
#include "shm.h"

struct shm_chan {
	struct wave_chan base;
	struct wave_ring_tx tx;
	struct wave_ring_rx rx;
	/* Hot fields above; the rest is touched on slow paths only. */
	struct wave_shm_ctrl *my_ctrl;   /* local, written by the peer */
	struct wave_shm_ctrl *peer_ctrl; /* remote, written by us */
	void *map;
	size_t map_len;
	struct wave_shm_doorbell db;
	int epfd;           /* made on the first wave_chan_fd() call */
	/* Shared by the sending and the receiving thread (see channel.h). */
	_Atomic int failed;      /* sticky error, 0 while healthy */
	_Atomic bool peer_gone;  /* the peer closed or its process died */
	_Atomic bool no_futex;   /* futex() refused the mapping: sleep in naps */
	/* Owned by one side each. */
	bool armed;              /* receiver: the peer rings us on each send */
	uint32_t rx_idle_polls;  /* receiver: rate limit for liveness checks */
	uint32_t tx_full_polls;  /* sender: the same, while the ring is full */
	uint64_t spin_ns;
	/* Mailboxes (base.n_mbox of them): the host reads @mbox and stores
	 * into @mbox_taken, the agent the other way round. @mbox_count is
	 * private: the host's taken counters, or the agent's put counters. */
	struct wave_shm_slot *mbox;
	_Atomic uint32_t *mbox_taken;
	uint32_t *mbox_count;
};

#define SHM(ch) ((struct shm_chan *)(ch))
/* Idle polls between two looks at the rendezvous socket: a process killed
 * without closing is noticed by a spinning peer within a few thousand polls,
 * at a cost below 1% of a spin loop. */
#define LIVENESS_EVERY 4096u
/* A message held back by latency emulation that is due sooner than this is
 * waited for by polling: a sleep would overshoot it. */
#define DUE_SPIN_NS 20000u
/* Without a futex a sleeper wakes up by itself, after NAP_MIN_NS at first,
 * doubling up to NAP_MAX_NS while nothing comes: an idle waiter costs about
 * a thousand wake-ups a second, and a message waits at most NAP_MAX_NS. */
#define NAP_MIN_NS 50000u
#define NAP_MAX_NS 1000000u

static uint64_t page_round(uint64_t n)
{
	return (n + WAVE_SHM_PAGE - 1) & ~(uint64_t)(WAVE_SHM_PAGE - 1);
}

static unsigned log2u(uint32_t n)
{
	return 31u - (unsigned)__builtin_clz(n);
}

/* The mailboxes' two regions, when there are any. */
static uint64_t mbox_bytes(uint32_t n_mbox)
{
	return n_mbox ? page_round((uint64_t)n_mbox * WAVE_MSG_SIZE) +
				page_round((uint64_t)n_mbox * sizeof(uint32_t))
		      : 0;
}

size_t wave_shm_layout_size(uint32_t h2a_slots, uint32_t a2h_slots, uint32_t n_mbox)
{
	return 3 * WAVE_SHM_PAGE + page_round((uint64_t)h2a_slots * WAVE_MSG_SIZE) +
	       page_round((uint64_t)a2h_slots * WAVE_MSG_SIZE) + mbox_bytes(n_mbox);
}

void wave_shm_layout_init(void *base, uint32_t h2a_slots, uint32_t a2h_slots, uint32_t n_mbox)
{
	struct wave_shm_header *h = base;
	uint64_t rings_end = wave_shm_layout_size(h2a_slots, a2h_slots, 0);

	h->magic = WAVE_SHM_MAGIC;
	h->layout_major = WAVE_SHM_LAYOUT_MAJOR;
	h->layout_minor = WAVE_SHM_LAYOUT_MINOR;
	h->header_size = sizeof(*h);
	h->flags = 0;
	h->total_size = wave_shm_layout_size(h2a_slots, a2h_slots, n_mbox);
	h->ctrl_off[WAVE_SIDE_HOST] = WAVE_SHM_PAGE;
	h->ctrl_off[WAVE_SIDE_AGENT] = 2 * WAVE_SHM_PAGE;
	h->ring[WAVE_DIR_H2A].slots_off = 3 * WAVE_SHM_PAGE;
	h->ring[WAVE_DIR_H2A].log2_slots = log2u(h2a_slots);
	h->ring[WAVE_DIR_A2H].slots_off =
		3 * WAVE_SHM_PAGE + page_round((uint64_t)h2a_slots * WAVE_MSG_SIZE);
	h->ring[WAVE_DIR_A2H].log2_slots = log2u(a2h_slots);
	h->n_mbox = n_mbox;
	if (n_mbox) {
		h->mbox_off = rings_end;
		h->mbox_taken_off = rings_end + page_round((uint64_t)n_mbox * WAVE_MSG_SIZE);
	}
}

struct region {
	uint64_t off, len;
};

static bool region_ok(struct region r, uint64_t total)
{
	return r.off % WAVE_SHM_PAGE == 0 && r.off >= WAVE_SHM_PAGE && r.off <= total &&
	       r.len <= total - r.off;
}

static bool regions_overlap(struct region a, struct region b)
{
	return a.off < b.off + b.len && b.off < a.off + a.len;
}

int wave_shm_layout_check(const struct wave_shm_header *h, size_t map_len, uint32_t max_slots)
{
	uint32_t n_mbox = wave_shm_n_mbox(h);
	struct region r[6];
	int n = 4;

	if (h->magic != WAVE_SHM_MAGIC)
		return -WAVE_ELAYOUT;
	if (h->layout_major != WAVE_SHM_LAYOUT_MAJOR)
		return -WAVE_EVERSION;
	if (h->header_size < sizeof(*h) || h->header_size > WAVE_SHM_PAGE || h->flags != 0)
		return -WAVE_ELAYOUT;
	if (h->total_size > map_len || n_mbox > WAVE_CHAN_MAX_MAILBOXES)
		return -WAVE_ELAYOUT;
	for (int d = 0; d < 2; d++) {
		uint32_t l = h->ring[d].log2_slots;
		if (l < log2u(WAVE_CHAN_MIN_SLOTS) || l > log2u(max_slots))
			return -WAVE_ELAYOUT;
		r[d] = (struct region){ h->ring[d].slots_off, ((uint64_t)1 << l) * WAVE_MSG_SIZE };
		r[2 + d] = (struct region){ h->ctrl_off[d], sizeof(struct wave_shm_ctrl) };
	}
	if (n_mbox) {
		r[n++] = (struct region){ h->mbox_off, (uint64_t)n_mbox * WAVE_MSG_SIZE };
		r[n++] = (struct region){ h->mbox_taken_off, (uint64_t)n_mbox * sizeof(uint32_t) };
	}
	for (int i = 0; i < n; i++) {
		if (!region_ok(r[i], h->total_size))
			return -WAVE_ELAYOUT;
		for (int j = 0; j < i; j++)
			if (regions_overlap(r[i], r[j]))
				return -WAVE_ELAYOUT;
	}
	return 0;
}

/* The ring a side receives on, and its control page. */
static int rx_dir(enum wave_role role)
{
	return role == WAVE_ROLE_HOST ? WAVE_DIR_A2H : WAVE_DIR_H2A;
}

static int my_side(enum wave_role role)
{
	return role == WAVE_ROLE_HOST ? WAVE_SIDE_HOST : WAVE_SIDE_AGENT;
}

int wave_shm_place(void *base, const struct wave_shm_header *h, enum wave_role role, int node)
{
	const struct wave_shm_ring_desc *rd = &h->ring[rx_dir(role)];
	uint32_t n_mbox = wave_shm_n_mbox(h);
	int ret;

	ret = wave_numa_place((char *)base + h->ctrl_off[my_side(role)], WAVE_SHM_PAGE, node);
	if (ret == 0)
		ret = wave_numa_place((char *)base + rd->slots_off,
				      page_round(((uint64_t)1 << rd->log2_slots) * WAVE_MSG_SIZE),
				      node);
	/* The host reads the mailboxes, the agent their taken counters. */
	if (ret == 0 && n_mbox && role == WAVE_ROLE_HOST)
		ret = wave_numa_place((char *)base + h->mbox_off,
				      page_round((uint64_t)n_mbox * WAVE_MSG_SIZE), node);
	if (ret == 0 && n_mbox && role == WAVE_ROLE_AGENT)
		ret = wave_numa_place((char *)base + h->mbox_taken_off,
				      page_round((uint64_t)n_mbox * sizeof(uint32_t)), node);
	return ret;
}

static const struct wave_chan_ops shm_ops;

/* Fails the channel with @err unless it failed already; returns the error
 * in force. Either side may call it. */
static int fail(struct shm_chan *c, int err)
{
	int none = 0;

	if (atomic_compare_exchange_strong(&c->failed, &none, err))
		wave_warn("shm channel failed: %s", wave_strerror(err));
	return wave_load_relaxed(&c->failed);
}

static int failed(struct shm_chan *c)
{
	return wave_load_relaxed(&c->failed);
}

int wave_shm_chan_new(void *map, size_t map_len, const struct wave_shm_header *h,
		      const struct wave_chan_opts *o, enum wave_role role,
		      struct wave_shm_doorbell db, struct wave_chan **out)
{
	uint32_t n_mbox = wave_shm_n_mbox(h);
	uint32_t *mbox_count = calloc(n_mbox ? n_mbox : 1, sizeof(*mbox_count));
	struct shm_chan *c = NULL;
	int rx = rx_dir(role), tx = 1 - rx;
	int me = my_side(role), peer = 1 - me;

	if (!mbox_count || posix_memalign((void **)&c, 64, sizeof(*c)) != 0) {
		free(mbox_count);
		munmap(map, map_len);
		if (db.sock >= 0)
			close(db.sock);
		if (db.my_efd >= 0)
			close(db.my_efd);
		if (db.peer_efd >= 0)
			close(db.peer_efd);
		return -ENOMEM;
	}
	memset(c, 0, sizeof(*c));
	c->base.ops = &shm_ops;
	c->base.role = role;
	c->map = map;
	c->map_len = map_len;
	c->db = db;
	c->epfd = -1;
	c->spin_ns = o->spin_ns;
	c->my_ctrl = (struct wave_shm_ctrl *)((char *)map + h->ctrl_off[me]);
	c->peer_ctrl = (struct wave_shm_ctrl *)((char *)map + h->ctrl_off[peer]);

	c->tx.slots = (struct wave_shm_slot *)((char *)map + h->ring[tx].slots_off);
	c->tx.mask = (1u << h->ring[tx].log2_slots) - 1;
	c->tx.credit = &c->my_ctrl->credit;
	c->tx.peer_waiting = &c->my_ctrl->peer_waiting;
	c->tx.wc = (o->flags & WAVE_CHAN_F_WC) != 0;
	c->tx.no_stamp = (o->flags & WAVE_CHAN_F_NO_STAMP) != 0;
	wave_stamp_init(&c->tx.clk, true);

	c->rx.slots = (struct wave_shm_slot *)((char *)map + h->ring[rx].slots_off);
	c->rx.mask = (1u << h->ring[rx].log2_slots) - 1;
	c->rx.credit = &c->peer_ctrl->credit;
	c->rx.delay_ns = o->delay_ns;

	c->base.n_mbox = n_mbox;
	c->mbox_count = mbox_count;
	if (n_mbox) { /* else the offsets mean nothing (reserved in minor 0) */
		c->mbox = (struct wave_shm_slot *)((char *)map + h->mbox_off);
		c->mbox_taken = (_Atomic uint32_t *)((char *)map + h->mbox_taken_off);
	}
	*out = &c->base;
	return 0;
}

/* Test hook: futex() fails as it does on a PFN-mapped device window. */
static _Atomic bool futex_fault;

void wave_shm_test_futex_fault(bool on)
{
	wave_store_relaxed(&futex_fault, on);
}

static int futex(_Atomic uint32_t *word, int op, uint32_t val, const struct timespec *ts)
{
	if (wave_unlikely(wave_load_relaxed(&futex_fault))) {
		errno = EFAULT;
		return -1;
	}
	/* Not FUTEX_PRIVATE: the word is shared with another process. */
	return (int)wave_futex(word, op, val, ts);
}

/* futex() refused the doorbell word with @err: on a PFN-mapped device
 * window (a PCIe BAR) it fails with EFAULT, as the kernel cannot pin the
 * page. From then on this end sleeps in naps and rings no futex. */
static void futex_lost(struct shm_chan *c, int err)
{
	if (!atomic_exchange(&c->no_futex, true))
		wave_warn("file channel: futex doorbell unavailable on this mapping (%s): "
			  "waits sleep in naps of up to %u us",
			  wave_strerror(-err), NAP_MAX_NS / 1000u);
}

/* A futex error that says the word cannot be used, not just "woken". */
static bool futex_unusable(int err)
{
	return err != EAGAIN && err != ETIMEDOUT && err != EINTR;
}

static void ring_peer(struct shm_chan *c)
{
	if (c->db.peer_efd >= 0) {
		uint64_t one = 1;
		/* Non-blocking: a full eventfd already means "wake up". */
		ssize_t r = write(c->db.peer_efd, &one, sizeof(one));
		(void)r;
	} else {
		atomic_fetch_add_explicit(&c->peer_ctrl->doorbell, 1, memory_order_release);
		if (!wave_load_relaxed(&c->no_futex) &&
		    futex(&c->peer_ctrl->doorbell, FUTEX_WAKE, 1, NULL) < 0 && futex_unusable(errno))
			futex_lost(c, errno);
	}
	wave_stat_add(&c->base.wakeups, 1);
}

/* Looks at the rendezvous socket without blocking. The peer sends nothing
 * after the handshake: end-of-file means it is gone, data is a protocol
 * violation. */
static void check_socket(struct shm_chan *c)
{
	struct pollfd p = { .fd = c->db.sock, .events = POLLIN };
	char b;

	if (c->db.sock < 0 || poll(&p, 1, 0) <= 0)
		return;
	ssize_t r = recv(c->db.sock, &b, 1, MSG_DONTWAIT);
	if (r > 0) {
		wave_warn("shm channel: peer wrote to the rendezvous socket after the handshake");
		fail(c, -WAVE_ECORRUPT);
	} else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
		wave_store_relaxed(&c->peer_gone, true);
	}
}

/* True once no more messages can come: the peer closed or died. @polls is
 * the calling side's own counter of fruitless polls. */
static bool peer_finished(struct shm_chan *c, uint32_t *polls)
{
	/* Pairs with the store_release of peer_closed in shm_close(): the
	 * peer's last messages are visible once we see the flag. */
	if (wave_load_relaxed(&c->peer_gone) || wave_load_acquire(&c->my_ctrl->peer_closed)) {
		wave_store_relaxed(&c->peer_gone, true);
		return true;
	}
	if (++*polls % LIVENESS_EVERY == 0)
		check_socket(c);
	return wave_load_relaxed(&c->peer_gone);
}

static void disarm(struct shm_chan *c)
{
	if (c->armed) {
		wave_store_relaxed(&c->peer_ctrl->peer_waiting, 0);
		c->armed = false;
	}
}

/* Whether half the ring or more waits for the peer, by its credit now
 * (the cached one may be old: the peer reads while we do not look). */
static bool half_full(struct wave_ring_tx *t)
{
	int64_t room = wave_ring_room(t, t->mask + 1); /* refreshes the credit */

	return room < 0 || (uint64_t)room <= (t->mask + 1u) / 2;
}

static int shm_send(struct wave_chan *ch, const struct wave_msg *msgs, unsigned n, unsigned flags)
{
	struct shm_chan *c = SHM(ch);
	bool all = flags & CHAN_SEND_ALL;
	int64_t room;
	uint64_t now;
	unsigned k;

	if (wave_unlikely(failed(c)))
		return failed(c);
	if (wave_unlikely(wave_load_relaxed(&c->peer_gone) ||
			  wave_load_relaxed(&c->my_ctrl->peer_closed)))
		return -WAVE_ECLOSED;
	/* Read first: the TSC's latency overlaps the checks below. */
	now = wave_ring_stamp(&c->tx);
	room = wave_ring_room(&c->tx, n);
	if (wave_unlikely(room < 0))
		return fail(c, (int)room);
	if ((uint64_t)room < n) {
		if (peer_finished(c, &c->tx_full_polls))
			return -WAVE_ECLOSED;
		if (all || room == 0)
			return all ? -EAGAIN : 0;
	}
	k = (uint64_t)room < n ? (unsigned)room : n;
	wave_ring_write(&c->tx, msgs, k, now);
	/* Quiet: a sleeping peer is woken only once the ring is half full,
	 * never left to fill for want of a wake-up. */
	if (wave_ring_peer_waiting(&c->tx) && (!(flags & CHAN_SEND_QUIET) || half_full(&c->tx)))
		ring_peer(c);
	return (int)k;
}

static int shm_notify(struct wave_chan *ch)
{
	struct shm_chan *c = SHM(ch);

	if (wave_unlikely(failed(c)))
		return failed(c);
	if (wave_ring_peer_waiting(&c->tx))
		ring_peer(c);
	return 0;
}

static int shm_recv(struct wave_chan *ch, struct wave_msg *msgs, unsigned max)
{
	struct shm_chan *c = SHM(ch);
	int n;

	if (wave_unlikely(failed(c)))
		return failed(c);
	if (wave_unlikely(c->armed))
		disarm(c);
	n = wave_ring_recv(&c->rx, msgs, max);
	if (wave_unlikely(n < 0))
		return fail(c, n);
	if (n == 0 && peer_finished(c, &c->rx_idle_polls)) {
		/* Messages sent before the close are still ours to take; the
		 * end comes only once the ring is empty, not while latency
		 * emulation holds its head back. */
		const struct wave_shm_slot *s;
		n = wave_ring_recv(&c->rx, msgs, max);
		if (n == 0 && wave_ring_peek(&c->rx, &s) == WAVE_SLOT_EMPTY)
			return failed(c) ? failed(c) : -WAVE_ECLOSED;
		if (n < 0)
			return fail(c, n);
	}
	return n;
}

/* Latency emulation: whether the ready slot @s is still held back, and if
 * so until when (*@due). The test matches wave_ring_recv()'s. */
static bool held_back(const struct shm_chan *c, const struct wave_shm_slot *s, uint64_t *due)
{
	uint64_t ts = s->tstamp, now;

	if (!c->rx.delay_ns)
		return false;
	now = wave_now_ns();
	if (ts > now || now - ts >= c->rx.delay_ns)
		return false;
	*due = ts + c->rx.delay_ns;
	return true;
}

/* 1 when a receive would return something (a message, or the end), 0 when
 * not, or an error. With latency emulation, *@due is when the head message
 * becomes ready (0 if none is held back): checking never waits for it. */
static int rx_ready(struct shm_chan *c, uint64_t *due)
{
	const struct wave_shm_slot *s;

	*due = 0;
	if (failed(c))
		return failed(c);
	switch (wave_ring_peek(&c->rx, &s)) {
	case WAVE_SLOT_CORRUPT:
		return fail(c, -WAVE_ECORRUPT);
	case WAVE_SLOT_READY:
		return held_back(c, s, due) ? 0 : 1;
	case WAVE_SLOT_EMPTY:
		break;
	}
	return peer_finished(c, &c->rx_idle_polls) ? 1 : failed(c);
}

/* Tell the peer we are about to sleep; then the caller must re-check. */
static uint32_t arm(struct shm_chan *c)
{
	uint32_t token = wave_load_relaxed(&c->my_ctrl->doorbell);

	wave_store_relaxed(&c->peer_ctrl->peer_waiting, 1);
	c->armed = true;
	/* Pairs with the fence in wave_ring_peer_waiting(): either the writer
	 * sees peer_waiting, or our re-check sees its stamps. */
	wave_fence_seq_cst();
	return token;
}

static void drain_efd(struct shm_chan *c)
{
	uint64_t v;
	ssize_t r = read(c->db.my_efd, &v, sizeof(v));
	(void)r;
}

/* Waits up to @tp (NULL: no limit) for the eventfd doorbell or the
 * rendezvous socket, then empties the doorbell and reads the socket's news
 * (the peer's death is seen here at once, not after LIVENESS_EVERY polls). */
static void poll_doorbell(struct shm_chan *c, const struct timespec *tp)
{
	struct pollfd p[2] = { { .fd = c->db.my_efd, .events = POLLIN },
			       { .fd = c->db.sock, .events = POLLIN } };

	if (ppoll(p, c->db.sock >= 0 ? 2 : 1, tp, NULL) > 0) {
		if (p[0].revents)
			drain_efd(c);
		if (p[1].revents)
			check_socket(c);
	}
}

/* Sleeps @ns at most, one nap of a growing series (see NAP_MIN_NS). */
static void nap(uint64_t ns, uint64_t *nap_ns)
{
	struct timespec ts = wave_timespec(ns < *nap_ns ? ns : *nap_ns);

	nanosleep(&ts, NULL);
	*nap_ns = *nap_ns * 2 < NAP_MAX_NS ? *nap_ns * 2 : NAP_MAX_NS;
}

/* Sleeps until the doorbell rings or @ns passed (UINT64_MAX: no limit);
 * without a usable futex, for one nap (*@nap_ns). */
static void sleep_on_doorbell(struct shm_chan *c, uint32_t token, uint64_t ns, uint64_t *nap_ns)
{
	struct timespec ts = wave_timespec(ns);
	const struct timespec *tp = ns == UINT64_MAX ? NULL : &ts;

	wave_stat_add(&c->base.sleeps, 1);
	if (c->db.my_efd < 0) {
		if (!wave_load_relaxed(&c->no_futex)) {
			if (futex(&c->my_ctrl->doorbell, FUTEX_WAIT, token, tp) == 0 ||
			    !futex_unusable(errno))
				return;
			futex_lost(c, errno);
		}
		nap(ns, nap_ns);
		return;
	}
	poll_doorbell(c, tp);
}

/* Arms, re-checks and sleeps on the doorbell for @ns at most. */
static void sleep_armed(struct shm_chan *c, uint64_t ns, uint64_t *nap_ns)
{
	uint32_t token = arm(c);
	uint64_t due;

	if (rx_ready(c, &due) == 0 && !due)
		sleep_on_doorbell(c, token, ns, nap_ns);
	disarm(c);
}

/* Sleeps until @t (CLOCK_MONOTONIC): a held-back message is due then, and
 * nothing the peer does can make one ready sooner. */
static void sleep_until(struct shm_chan *c, uint64_t t)
{
	struct timespec ts = wave_timespec(t);

	wave_stat_add(&c->base.sleeps, 1);
	clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

static int shm_wait(struct wave_chan *ch, int64_t timeout_ns)
{
	struct shm_chan *c = SHM(ch);
	uint64_t now = wave_now_ns();
	uint64_t deadline = timeout_ns < 0 ? UINT64_MAX : now + (uint64_t)timeout_ns;
	uint64_t spin_end = now + c->spin_ns < deadline ? now + c->spin_ns : deadline;
	uint64_t due, nap_ns = NAP_MIN_NS;
	int r;

	while ((r = rx_ready(c, &due)) == 0 && now < deadline) {
		if (now < spin_end || (due && due - now < DUE_SPIN_NS)) {
			for (int i = 0; i < 32; i++)
				wave_cpu_relax();
		} else if (due) {
			sleep_until(c, due < deadline ? due : deadline);
		} else {
			sleep_armed(c, deadline == UINT64_MAX ? UINT64_MAX : deadline - now, &nap_ns);
		}
		now = wave_now_ns();
	}
	return r;
}

static int shm_fd(struct wave_chan *ch)
{
	struct shm_chan *c = SHM(ch);

	if (c->db.my_efd < 0)
		return -ENOTSUP;
	if (c->epfd < 0) {
		/* One fd for both the doorbell and the peer's death. */
		int ep = epoll_create1(EPOLL_CLOEXEC);
		struct epoll_event e = { .events = EPOLLIN };
		if (ep < 0)
			return -errno;
		e.data.fd = c->db.my_efd;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, c->db.my_efd, &e) < 0 ||
		    (e.data.fd = c->db.sock,
		     c->db.sock >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, c->db.sock, &e) < 0)) {
			int err = errno;
			close(ep);
			return -err;
		}
		c->epfd = ep;
	}
	return c->epfd;
}

/* -EAGAIN also while latency emulation holds a message back: no doorbell
 * rings when it becomes due, so the caller must look again (as fabric's). */
static int shm_trywait(struct wave_chan *ch)
{
	struct shm_chan *c = SHM(ch);
	uint64_t due;
	int r;

	/* One system call, as the read that emptied the doorbell cost: a
	 * caller woken on wave_chan_fd() by the peer's death learns it here. */
	if (c->db.my_efd >= 0)
		poll_doorbell(c, &(struct timespec){ 0, 0 });
	if ((r = rx_ready(c, &due)) != 0 || due)
		return r < 0 ? r : -EAGAIN;
	arm(c);
	if ((r = rx_ready(c, &due)) != 0 || due) {
		disarm(c);
		return r < 0 ? r : -EAGAIN;
	}
	return 0; /* stays armed until the next receive */
}

static void shm_close(struct wave_chan *ch)
{
	struct shm_chan *c = SHM(ch);

	/* Pairs with the load_acquire in peer_finished(). */
	wave_store_release(&c->peer_ctrl->peer_closed, 1);
	ring_peer(c);
	munmap(c->map, c->map_len);
	if (c->epfd >= 0)
		close(c->epfd);
	if (c->db.sock >= 0)
		close(c->db.sock);
	if (c->db.my_efd >= 0)
		close(c->db.my_efd);
	if (c->db.peer_efd >= 0)
		close(c->db.peer_efd);
	free(c->mbox_count);
	free(c);
}

/* ---- mailboxes (shm_layout.h) --------------------------------------------- */

static int shm_mbox_put(struct wave_chan *ch, unsigned i, const struct wave_msg *msg)
{
	struct shm_chan *c = SHM(ch);
	struct wave_shm_slot *s = &c->mbox[i];
	uint32_t put = c->mbox_count[i], taken;

	if (wave_unlikely(failed(c)))
		return failed(c);
	if (wave_unlikely(wave_load_relaxed(&c->peer_gone) ||
			  wave_load_relaxed(&c->my_ctrl->peer_closed)))
		return -WAVE_ECLOSED;
	/* Pairs with the store_release in shm_mbox_take(): once we see the
	 * message taken, the host is done reading the slot. */
	taken = wave_load_acquire(&c->mbox_taken[i]);
	if (taken == put - 1)
		return -EAGAIN;
	if (taken != put)
		return fail(c, -WAVE_ECORRUPT); /* ahead of our puts, or far behind */
	s->type = msg->type;
	s->flags = msg->flags;
	s->tstamp = wave_ring_stamp(&c->tx);
	memcpy(s->payload, msg->payload.u8, WAVE_MSG_PAYLOAD);
	/* Pairs with the load_acquire of the stamp in shm_mbox_take(). */
	if (wave_unlikely(c->tx.wc))
		wave_fence_wc();
	wave_fence_release();
	wave_store_relaxed(&s->stamp, put + 1);
	if (wave_unlikely(c->tx.wc))
		wave_fence_wc();
	c->mbox_count[i] = put + 1;
	if (wave_ring_peer_waiting(&c->tx))
		ring_peer(c);
	return 0;
}

static int shm_mbox_take(struct wave_chan *ch, unsigned i, struct wave_msg *msg)
{
	struct shm_chan *c = SHM(ch);
	const struct wave_shm_slot *s = &c->mbox[i];
	uint32_t taken = c->mbox_count[i], stamp;

	if (wave_unlikely(failed(c)))
		return failed(c);
	/* Pairs with the release fence in shm_mbox_put(). */
	stamp = wave_load_acquire(&s->stamp);
	if (stamp == taken)
		return 0;
	if (wave_unlikely(stamp != taken + 1))
		return fail(c, -WAVE_ECORRUPT);
	/* Copy first, then judge only the copy (as wave_ring_recv()). */
	memcpy(msg, s, sizeof(*msg));
	msg->seq = stamp;
	if (wave_unlikely(msg->type == 0))
		return fail(c, -WAVE_ECORRUPT);
	if (c->rx.delay_ns) {
		uint64_t now = wave_now_ns();
		/* A stamp from the future comes only from a bad peer: at once. */
		if (msg->tstamp <= now && now - msg->tstamp < c->rx.delay_ns)
			return 0;
	}
	c->mbox_count[i] = stamp;
	/* Pairs with the load_acquire in shm_mbox_put(). */
	wave_store_release(&c->mbox_taken[i], stamp);
	return 1;
}

static const struct wave_chan_ops shm_ops = {
	.send = shm_send,
	.notify = shm_notify,
	.recv = shm_recv,
	.wait = shm_wait,
	.fd = shm_fd,
	.trywait = shm_trywait,
	.close = shm_close,
	.mbox_put = shm_mbox_put,
	.mbox_take = shm_mbox_take,
};
