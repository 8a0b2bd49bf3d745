/* SPDX-License-Identifier: MIT */
/*
 * The shared-memory layout of a channel: an ABI between two processes, and
 * across PCIe between two machines. Fixed-width little-endian fields, every
 * offset asserted, a magic and a version checked before use.
 *
 *   page 0            struct wave_shm_header
 *   ctrl_off[HOST]    struct wave_shm_ctrl, in memory local to the host
 *   ctrl_off[AGENT]   struct wave_shm_ctrl, in memory local to the agent
 *   ring[H2A]         host -> agent slots, local to the agent (their reader)
 *   ring[A2H]         agent -> host slots, local to the host (their reader)
 *   mbox_off          mailboxes (layout minor >= 1, if any): one slot each,
 *                     written by the agent, local to the host (their reader)
 *   mbox_taken_off    each mailbox's taken counter, written by the host,
 *                     local to the agent (its reader)
 *
 * Each part starts on a page boundary so that it can be placed on its own
 * NUMA node. "Write remote, read local": a side reads only its own control
 * page and the slots of the ring it receives on; everything it writes goes
 * into memory local to the peer.
 */
#ifndef WAVE_SHM_LAYOUT_H
#define WAVE_SHM_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include <wave/msg.h>

#define WAVE_SHM_MAGIC 0x45564157u /* "WAVE" in memory order on little-endian */
#define WAVE_SHM_LAYOUT_MAJOR 1u
#define WAVE_SHM_LAYOUT_MINOR 1u /* 1: mailboxes */
#define WAVE_SHM_READY 0x59444552u /* "REDY" */
#define WAVE_SHM_PAGE 4096u

enum { WAVE_SIDE_HOST = 0, WAVE_SIDE_AGENT = 1 };
enum { WAVE_DIR_H2A = 0, WAVE_DIR_A2H = 1 };

struct wave_shm_ring_desc {
	uint64_t slots_off;  /* byte offset of slot 0; page aligned */
	uint32_t log2_slots; /* ring size is 1 << log2_slots */
	uint32_t reserved;
};

struct wave_shm_header {
	uint32_t magic;
	uint16_t layout_major;
	uint16_t layout_minor;
	uint32_t header_size; /* sizeof(struct wave_shm_header) */
	uint32_t flags;       /* none defined yet; must be 0 */
	uint64_t total_size;  /* bytes the layout spans */
	struct wave_shm_ring_desc ring[2]; /* by WAVE_DIR_* */
	uint64_t ctrl_off[2];              /* by WAVE_SIDE_* */
	/* file:// only: the creator stores WAVE_SHM_READY last, with release. */
	_Atomic uint32_t ready;
	/* Minor >= 1 (reserved, and ignored, in minor 0): the mailboxes. */
	uint32_t n_mbox;         /* how many; 0: none */
	uint64_t mbox_off;       /* n_mbox slots; page aligned */
	uint64_t mbox_taken_off; /* n_mbox uint32_t taken counters; page aligned */
	uint32_t reserved[2];
};

_Static_assert(offsetof(struct wave_shm_header, magic) == 0, "layout");
_Static_assert(offsetof(struct wave_shm_header, layout_major) == 4, "layout");
_Static_assert(offsetof(struct wave_shm_header, header_size) == 8, "layout");
_Static_assert(offsetof(struct wave_shm_header, total_size) == 16, "layout");
_Static_assert(offsetof(struct wave_shm_header, ring) == 24, "layout");
_Static_assert(offsetof(struct wave_shm_header, ctrl_off) == 56, "layout");
_Static_assert(offsetof(struct wave_shm_header, ready) == 72, "layout");
_Static_assert(offsetof(struct wave_shm_header, n_mbox) == 76, "layout");
_Static_assert(offsetof(struct wave_shm_header, mbox_off) == 80, "layout");
_Static_assert(offsetof(struct wave_shm_header, mbox_taken_off) == 88, "layout");
_Static_assert(sizeof(struct wave_shm_header) == 104, "layout");

/* The mailboxes of a header (none before minor 1, whatever its reserved
 * words hold). */
static inline uint32_t wave_shm_n_mbox(const struct wave_shm_header *h)
{
	return h->layout_minor >= 1 ? h->n_mbox : 0;
}

/*
 * A side's control page. It lives in memory local to its owner and is written
 * only by the peer; the owner only reads it. Each field the peer writes at a
 * different rate has its own cache line, so the frequent credit stores do not
 * evict the flags the owner checks on every send.
 */
struct wave_shm_ctrl {
	/* Messages the peer has consumed from the ring the owner writes. */
	_Alignas(64) _Atomic uint32_t credit;
	/* Non-zero while the peer sleeps (or is about to) waiting for the owner's
	 * messages: the owner must ring the peer's doorbell after publishing. */
	_Alignas(64) _Atomic uint32_t peer_waiting;
	/* Non-zero once the peer has closed its end. */
	_Atomic uint32_t peer_closed;
	/* Futex word the peer bumps to wake the owner (futex doorbells only). */
	_Alignas(64) _Atomic uint32_t doorbell;
	/* A spare line keeps the next structure's data off our last line. */
	_Alignas(64) uint8_t guard[64];
};

_Static_assert(offsetof(struct wave_shm_ctrl, credit) == 0, "layout");
_Static_assert(offsetof(struct wave_shm_ctrl, peer_waiting) == 64, "layout");
_Static_assert(offsetof(struct wave_shm_ctrl, peer_closed) == 68, "layout");
_Static_assert(offsetof(struct wave_shm_ctrl, doorbell) == 128, "layout");
_Static_assert(sizeof(struct wave_shm_ctrl) == 256, "layout");

/*
 * A ring slot: a wave_msg whose seq field is the slot's stamp. The writer
 * stores the stamp (the message's 1-based counter) after the rest of the slot;
 * the reader detects a new message from the stamp alone, so an idle reader
 * polls one line of its own memory and a ring needs no shared tail index.
 */
struct wave_shm_slot {
	uint16_t type;
	uint16_t flags;
	_Atomic uint32_t stamp;
	uint64_t tstamp;
	uint8_t payload[WAVE_MSG_PAYLOAD];
};

_Static_assert(sizeof(struct wave_shm_slot) == sizeof(struct wave_msg), "slot is a message");
_Static_assert(offsetof(struct wave_shm_slot, stamp) == offsetof(struct wave_msg, seq), "stamp");
_Static_assert(offsetof(struct wave_shm_slot, tstamp) == offsetof(struct wave_msg, tstamp), "ts");
_Static_assert(offsetof(struct wave_shm_slot, payload) == offsetof(struct wave_msg, payload), "pl");

/*
 * A mailbox is one slot: the agent stores the message, then the stamp (its
 * 1-based put counter, release); the host reads the stamp (acquire), copies
 * the message, then stores the stamp into the mailbox's taken counter
 * (release), in the agent's memory. Only two stamps are legal in a mailbox:
 * the taken counter (empty) and one more (full). The agent puts again only
 * once it sees the previous message taken: a mailbox is never overwritten.
 */

#endif /* WAVE_SHM_LAYOUT_H */
