/* SPDX-License-Identifier: MIT */
/*
 * Single-producer single-consumer ring over the shared layout of
 * shm_layout.h. The local handles below hold everything that is private to
 * one side (pointers, mask, free-running counters, the cached credit); the
 * shared memory holds only slots and control words.
 *
 * Counters are free-running uint32_t; the slot for counter c is c & mask and
 * its stamp is c + 1 (so an all-zero ring is empty). "Full" is
 * tail - credit == size.
 */
#ifndef WAVE_RING_H
#define WAVE_RING_H

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "../core/atomic.h"
#include "../core/core.h"
#include "../core/stamp.h"
#include "shm_layout.h"

struct wave_ring_tx {
	struct wave_shm_slot *slots;   /* peer-local: we only store into it */
	_Atomic uint32_t *credit;      /* our local control page */
	_Atomic uint32_t *peer_waiting;/* our local control page */
	uint32_t mask;
	uint32_t tail;                 /* next counter we write */
	uint32_t credit_cache;         /* last credit read */
	bool wc;                       /* write-combining mapping */
	bool no_stamp;                 /* WAVE_CHAN_F_NO_STAMP */
	struct wave_stamp_clock clk;   /* the messages' send stamps */
};

/* The send stamp of what is written now (0: this end does not stamp). */
static inline uint64_t wave_ring_stamp(struct wave_ring_tx *t)
{
	return wave_unlikely(t->no_stamp) ? 0 : wave_stamp_now(&t->clk);
}

struct wave_ring_rx {
	struct wave_shm_slot *slots;   /* our local memory: we only read it */
	_Atomic uint32_t *credit;      /* peer-local: we only store into it */
	uint32_t mask;
	uint32_t head;                 /* next counter we read */
	uint64_t delay_ns;             /* latency emulation, 0 = off */
};

/* Room for new messages, refreshing the cached credit only when needed.
 * Returns the room, or -WAVE_ECORRUPT when the peer's credit is impossible. */
static inline int64_t wave_ring_room(struct wave_ring_tx *t, unsigned want)
{
	uint32_t size = t->mask + 1;
	uint32_t room = size - (t->tail - t->credit_cache);

	if (room >= want)
		return room;
	/* Pairs with the store_release of credit in wave_ring_recv(): once we
	 * see the credit, the reader is done with those slots. */
	uint32_t c = wave_load_acquire(t->credit);
	if ((uint32_t)(t->tail - c) > size)
		return -WAVE_ECORRUPT; /* credit ahead of what we wrote, or too old */
	t->credit_cache = c;
	return size - (t->tail - c);
}

/* Write @n messages (room already checked) and publish them at once. */
static inline void wave_ring_write(struct wave_ring_tx *t, const struct wave_msg *msgs,
				   unsigned n, uint64_t now)
{
	for (unsigned i = 0; i < n; i++) {
		struct wave_shm_slot *s = &t->slots[(t->tail + i) & t->mask];
		s->type = msgs[i].type;
		s->flags = msgs[i].flags;
		s->tstamp = now;
		memcpy(s->payload, msgs[i].payload.u8, WAVE_MSG_PAYLOAD);
	}
	/* Pairs with the load_acquire of the stamp in wave_ring_recv(): the
	 * slot contents are visible before any stamp of this batch. */
	if (wave_unlikely(t->wc))
		wave_fence_wc();
	wave_fence_release();
	for (unsigned i = 0; i < n; i++) {
		uint32_t c = t->tail + i;
		wave_store_relaxed(&t->slots[c & t->mask].stamp, c + 1);
	}
	if (wave_unlikely(t->wc))
		wave_fence_wc(); /* push the stamps out of the WC buffers now */
	t->tail += n;
}

/* After publishing: does the peer sleep and need its doorbell rung? */
static inline bool wave_ring_peer_waiting(struct wave_ring_tx *t)
{
	/* Pairs with the fence in the reader's arm step (shm.c): either we see
	 * peer_waiting set, or the reader sees our stamps before sleeping. */
	wave_fence_seq_cst();
	return wave_load_relaxed(t->peer_waiting) != 0;
}

enum wave_slot_state { WAVE_SLOT_EMPTY, WAVE_SLOT_READY, WAVE_SLOT_CORRUPT };

/* What the slot at the head holds. Only two stamps are legal there: the
 * previous lap's (or 0, never written) and the expected one. */
static inline enum wave_slot_state wave_ring_peek(const struct wave_ring_rx *r,
						  const struct wave_shm_slot **slot)
{
	const struct wave_shm_slot *s = &r->slots[r->head & r->mask];
	/* Pairs with the release fence in wave_ring_write(). */
	uint32_t stamp = wave_load_acquire(&s->stamp);

	*slot = s;
	if (stamp == r->head + 1)
		return WAVE_SLOT_READY;
	if (stamp == r->head + 1 - (r->mask + 1) || stamp == 0)
		return WAVE_SLOT_EMPTY;
	return WAVE_SLOT_CORRUPT;
}

/* Receive up to @max ready messages. Returns the count or -WAVE_ECORRUPT. */
static inline int wave_ring_recv(struct wave_ring_rx *r, struct wave_msg *msgs, unsigned max)
{
	uint64_t now = 0;
	unsigned n = 0;

	while (n < max) {
		const struct wave_shm_slot *s;
		enum wave_slot_state st = wave_ring_peek(r, &s);

		if (st == WAVE_SLOT_EMPTY)
			break;
		if (st == WAVE_SLOT_CORRUPT)
			return -WAVE_ECORRUPT;
		/* Copy first, then judge only the copy: the peer may rewrite the
		 * slot under us, but cannot change what we return. */
		memcpy(&msgs[n], s, sizeof(msgs[n]));
		msgs[n].seq = r->head + 1;
		if (wave_unlikely(msgs[n].type == 0))
			return -WAVE_ECORRUPT;
		if (r->delay_ns) {
			if (!now)
				now = wave_now_ns();
			/* Both ends read one system-wide clock, so a stamp from
			 * the future comes only from a bad peer: deliver it at
			 * once rather than let it hold the ring back. */
			uint64_t ts = msgs[n].tstamp;
			if (ts <= now && now - ts < r->delay_ns)
				break;
		}
		r->head++;
		n++;
	}
	if (n)
		/* Pairs with the load_acquire of credit in wave_ring_room(). */
		wave_store_release(r->credit, r->head);
	return (int)n;
}

#endif /* WAVE_RING_H */
