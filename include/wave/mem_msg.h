/* SPDX-License-Identifier: MIT */
/**
 * @file mem_msg.h
 * The messages of the mem domain: what the host tells the agent about its
 * tiers, regions and chunks, what the agent decides, and how each decision
 * ended.
 *
 * STATUS: a design. The host side (mem.h) is built; no code sends, encodes
 * or decodes these messages yet, and the layouts may still change before
 * the domain's agent side is written. Nothing here is part of the ABI.
 *
 * Model. The host owns regions (a non-zero 32-bit id, never reused) cut
 * into chunks of one size; a chunk is named by its 64-bit id
 * (wave_mem_chunk_id(): region << 32 | index) and has a tier and a
 * sequence number that every host-side change bumps (moved by a decision,
 * brought back by a fault, demoted under pressure). A region starts with
 * every chunk in its home tier at sequence 0, so REGION_NEW stands for all
 * of them; only chunks that differ are ever sent one by one. Decisions
 * carry the sequence number they were based on; the host commits them
 * with txn_check() (domain.h) and answers each with an OUTCOME.
 *
 * Events, host to agent:
 *   SETUP       first message of a session: tier count and the largest
 *               chunk count the agent must be ready for
 *   TIER        one per tier after SETUP: kind, node, capacity
 *   REGION_NEW  a region: id, chunk count and size, home tier
 *   REGION_GONE a region left; its chunks with it (pending decisions
 *               about them will abort as gone)
 *   CHUNK       a chunk's tier and seq changed by the host itself (a far
 *               fault, a pressure demotion, the local policy); also the
 *               replay of every chunk that is not in its home tier at
 *               sequence 0
 *   ACCESS      up to 5 chunks seen accessed, and by what (far fault,
 *               sampler, the application's report): batched, never one
 *               message per access
 *   PRESSURE    a NUMA tier went over its capacity (used, capacity)
 *   TICK        periodic: the time and the tiers' usage
 * Decisions, agent to host:
 *   MIGRATE     move @chunk, at @seq, to @tier, now (rate limited)
 *   VICTIMS     up to 2 demotion victims (chunk, seq), appended to the
 *               host's prestaged list (RESET in flags: replace it); the
 *               host consumes them under pressure without asking
 *   PREFETCH    up to 2 chunks (chunk, seq) to bring back to the fast
 *               tier when the rate limit leaves room
 * Outcome, host to agent: one per MIGRATE and per VICTIMS or PREFETCH entry
 * the host acted on: the decision's type, the chunk, the seq it was based
 * on, the result (enum wave_result) and the chunk's seq now.
 *
 * Wire layout. Each message is one struct wave_msg; the payload is one of
 * the structs below, little-endian, every reserved field 0.
 */
#ifndef WAVE_MEM_MSG_H
#define WAVE_MEM_MSG_H

#include <stddef.h>
#include <stdint.h>

#include <wave/msg.h>

#ifdef __cplusplus
#define WAVE_MEM_STATIC_ASSERT static_assert
#else
#define WAVE_MEM_STATIC_ASSERT _Static_assert
#endif

#define WAVE_MEM_SETUP (WAVE_MSG_MEM_FIRST + 0x01)
#define WAVE_MEM_TIER (WAVE_MSG_MEM_FIRST + 0x02)
#define WAVE_MEM_REGION_NEW (WAVE_MSG_MEM_FIRST + 0x03)
#define WAVE_MEM_REGION_GONE (WAVE_MSG_MEM_FIRST + 0x04)
#define WAVE_MEM_CHUNK (WAVE_MSG_MEM_FIRST + 0x05)
#define WAVE_MEM_ACCESS (WAVE_MSG_MEM_FIRST + 0x06)
#define WAVE_MEM_PRESSURE (WAVE_MSG_MEM_FIRST + 0x07)
#define WAVE_MEM_TICK (WAVE_MSG_MEM_FIRST + 0x08)
#define WAVE_MEM_MIGRATE (WAVE_MSG_MEM_FIRST + 0x40)
#define WAVE_MEM_VICTIMS (WAVE_MSG_MEM_FIRST + 0x41)
#define WAVE_MEM_PREFETCH (WAVE_MSG_MEM_FIRST + 0x42)
#define WAVE_MEM_OUTCOME (WAVE_MSG_MEM_FIRST + 0x80)

/** Where an ACCESS came from. */
enum wave_mem_access_source {
	WAVE_MEM_SEEN_FAR_FAULT = 1, /**< a touch of a far chunk (exact) */
	WAVE_MEM_SEEN_SAMPLE = 2,    /**< the sampler's minor fault */
	WAVE_MEM_SEEN_REPORTED = 3,  /**< wave_mem_report_access() */
};

/** Why a CHUNK changed. */
enum wave_mem_chunk_cause {
	WAVE_MEM_CAUSE_FAULT = 1,    /**< a far chunk faulted back */
	WAVE_MEM_CAUSE_VICTIM = 2,   /**< a prestaged victim demoted under pressure */
	WAVE_MEM_CAUSE_LOCAL = 3,    /**< the host's local policy */
	WAVE_MEM_CAUSE_REPLAY = 4,   /**< resync: the chunk's state, not a change */
};

/** VICTIMS flags: the entries replace the prestaged list. */
#define WAVE_MEM_VICTIMS_RESET 1u

/** Payload of SETUP. */
struct wave_mem_wire_setup {
	uint32_t n_tiers;
	uint32_t reserved0;
	uint64_t max_chunks; /* chunks over all regions the host may have */
	uint64_t reserved1[4];
};

/** Payload of TIER. */
struct wave_mem_wire_tier {
	uint32_t tier;
	uint32_t kind; /* enum wave_mem_tier_kind */
	int32_t node;
	uint32_t reserved0;
	uint64_t capacity;
	uint64_t reserved1[3];
};

/** Payload of REGION_NEW and REGION_GONE (only @region). */
struct wave_mem_wire_region {
	uint32_t region;
	uint32_t home_tier;
	uint64_t n_chunks;
	uint64_t chunk_size;
	uint64_t now_ns;
	uint64_t reserved1[2];
};

/** Payload of CHUNK. */
struct wave_mem_wire_chunk {
	uint64_t chunk;
	uint64_t seq;
	uint64_t now_ns;
	uint32_t tier;
	uint8_t cause; /* enum wave_mem_chunk_cause */
	uint8_t reserved0[3];
	uint64_t reserved1[2];
};

/** Payload of ACCESS: @n (1..5) chunks of @chunks. */
struct wave_mem_wire_access {
	uint8_t n;
	uint8_t source; /* enum wave_mem_access_source */
	uint16_t reserved0;
	uint32_t reserved1;
	uint64_t chunks[5];
};

/** Payload of PRESSURE and TICK (@tier unused in TICK: the used bytes of
 *  tiers 0..3 are in @used). */
struct wave_mem_wire_usage {
	uint32_t tier;
	uint32_t reserved0;
	uint64_t now_ns;
	uint64_t used[4];
};

/** Payload of MIGRATE. */
struct wave_mem_wire_migrate {
	uint64_t chunk;
	uint64_t seq;
	uint32_t tier;
	uint32_t reserved0;
	uint64_t reserved1[3];
};

/** Payload of VICTIMS and PREFETCH: @n (1..2) entries. */
struct wave_mem_wire_list {
	struct {
		uint64_t chunk;
		uint64_t seq;
	} e[2];
	uint8_t n;
	uint8_t reserved0[3];
	uint32_t flags; /* VICTIMS: WAVE_MEM_VICTIMS_RESET */
	uint64_t reserved1;
};

/** Payload of OUTCOME. */
struct wave_mem_wire_outcome {
	uint64_t chunk;
	uint64_t seq;     /* the decision was based on */
	uint64_t seq_now; /* the chunk's now (committed: the new one) */
	uint64_t now_ns;
	uint32_t tier;    /* the target */
	uint16_t decision;
	uint8_t result;   /* enum wave_result */
	uint8_t reserved0;
	uint64_t reserved1;
};

#define WAVE_MEM_WIRE_SIZE_(s) \
	WAVE_MEM_STATIC_ASSERT(sizeof(struct s) == WAVE_MSG_PAYLOAD, #s " fills the payload")
WAVE_MEM_WIRE_SIZE_(wave_mem_wire_setup);
WAVE_MEM_WIRE_SIZE_(wave_mem_wire_tier);
WAVE_MEM_WIRE_SIZE_(wave_mem_wire_region);
WAVE_MEM_WIRE_SIZE_(wave_mem_wire_chunk);
WAVE_MEM_WIRE_SIZE_(wave_mem_wire_access);
WAVE_MEM_WIRE_SIZE_(wave_mem_wire_usage);
WAVE_MEM_WIRE_SIZE_(wave_mem_wire_migrate);
WAVE_MEM_WIRE_SIZE_(wave_mem_wire_list);
WAVE_MEM_WIRE_SIZE_(wave_mem_wire_outcome);
#undef WAVE_MEM_WIRE_SIZE_
WAVE_MEM_STATIC_ASSERT(offsetof(struct wave_mem_wire_access, chunks) == 8, "access chunks");
WAVE_MEM_STATIC_ASSERT(offsetof(struct wave_mem_wire_list, n) == 32, "list n");
WAVE_MEM_STATIC_ASSERT(offsetof(struct wave_mem_wire_outcome, decision) == 36, "decision");
WAVE_MEM_STATIC_ASSERT(offsetof(struct wave_mem_wire_outcome, result) == 38, "result");

#endif /* WAVE_MEM_MSG_H */
