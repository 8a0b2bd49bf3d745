/* SPDX-License-Identifier: MIT */
/**
 * @file mem_msg.h
 * The messages of the mem domain: what the host tells the agent about its
 * memory (tiers, regions, chunks, accesses, faults, pressure), what the
 * agent decides (migrations, prestaged victims and prefetches), and how
 * each decision ended.
 *
 * Model. The host owns regions of memory cut into chunks. A chunk is named
 * by a 64-bit id, its region's number in the high 32 bits and its index in
 * the region in the low 32 (wave_mem_chunk_id() of <wave/mem.h>); it lives
 * in one tier (tiers are numbered from 0, fastest first) and has a
 * sequence number that every host-side change advances (moved, brought
 * back by a fault). A decision names the sequence number it was based on;
 * the host commits it only if that is still the chunk's (a transaction),
 * and otherwise aborts it and says why (enum wave_result of
 * <wave/domain.h>). Sequence numbers need not be consecutive, only
 * increasing.
 *
 * Events, host to agent:
 *   SETUP        the first mem message of a session: the tiers (count,
 *                kind, capacity in chunks)
 *   REGION_ADD   region @region exists: @count chunks of @chunk_size
 *                bytes, all in @tier at sequence number @seq
 *   REGION_DEL   region @region is gone (its decisions in flight abort)
 *   CHUNK        a host-side change: @chunk is now in @tier at @seq
 *   SAMPLES      accesses seen by the host: up to 8 chunks of @region,
 *                each with how many times it was seen touched since the
 *                last report (batches, never one message per access)
 *   FAULT        @chunk was touched in the far tier and brought back: it
 *                is now in @tier at @seq (an access, exactly seen)
 *   PRESSURE     @tier has only @count free chunks: it needs demotions
 *   TICK         periodic, with the host's time
 * Decisions, agent to host:
 *   MIGRATE      move @chunk to @tier, based on sequence number @seq
 *   VICTIM       prestage @chunk (at @seq) as a demotion victim: under
 *                pressure the host demotes it to @tier (the next slower
 *                one) without a round trip
 *   PREFETCH     prestage @chunk (at @seq) for promotion to @tier: the
 *                host promotes it when its rate limit and @tier's room
 *                allow
 * Hint, agent to host, no outcome (libwave 1.6 and later):
 *   KEEP         @chunk (at @seq, in the NUMA tier @tier) is in use: the
 *                host's CLOCK spares it as it spares an active chunk, for
 *                a few sweeps of its hand. It never holds memory: under
 *                pressure the hand takes a kept chunk's lives too. The
 *                host refuses and counts a keep of a chunk that is not
 *                where the hint says, or one past its bound (a share of
 *                the tier each sweep of the hand)
 * Outcome, host to agent, exactly one per decision, when it is carried
 * out or given up (a prestaged victim or prefetch may be dropped by the
 * host at any time, with an abort reason):
 *   OUTCOME      @decision for @chunk (based on @seq) to @tier ended with
 *                @result; when committed, @new_seq is the chunk's
 *                sequence number after the move (0 otherwise).
 *
 * Ordering the host must keep (the channel is ordered and lossless): an
 * event that changes a chunk is sent before any OUTCOME that depends on
 * that change, and a region's REGION_ADD before any message naming its
 * chunks.
 *
 * Time. Events that carry @now_ns carry the host's CLOCK_MONOTONIC
 * nanoseconds; SAMPLES carry none and are taken to happen at the latest
 * host time the agent has seen (the host sends TICK at least as often as
 * the precision it wants for access times).
 *
 * Wire layout. Each message is one struct wave_msg; the header's flags are
 * 0 (reserved) and the payload is one of the structs below, little-endian,
 * every reserved field and unused entry 0. Use wave_mem_msg_encode() and
 * wave_mem_msg_decode(), which work on the decoded form, struct
 * wave_mem_msg, and check every field.
 */
#ifndef WAVE_MEM_MSG_H
#define WAVE_MEM_MSG_H

#include <stddef.h>
#include <stdint.h>

#include <wave/domain.h>
#include <wave/export.h>
#include <wave/msg.h>

#ifdef __cplusplus
extern "C" {
#define WAVE_MEM_STATIC_ASSERT static_assert
#else
#define WAVE_MEM_STATIC_ASSERT _Static_assert
#endif

/* Message types: events 0x0201.., SETUP 0x0220, decisions 0x0240..,
 * hints 0x0260.., outcome 0x0280. */
#define WAVE_MEM_REGION_ADD (WAVE_MSG_MEM_FIRST + 0x01)
#define WAVE_MEM_REGION_DEL (WAVE_MSG_MEM_FIRST + 0x02)
#define WAVE_MEM_CHUNK_CHANGED (WAVE_MSG_MEM_FIRST + 0x03)
#define WAVE_MEM_SAMPLES (WAVE_MSG_MEM_FIRST + 0x04)
#define WAVE_MEM_FAULT (WAVE_MSG_MEM_FIRST + 0x05)
#define WAVE_MEM_PRESSURE (WAVE_MSG_MEM_FIRST + 0x06)
#define WAVE_MEM_TICK (WAVE_MSG_MEM_FIRST + 0x07)
#define WAVE_MEM_SETUP (WAVE_MSG_MEM_FIRST + 0x20)
#define WAVE_MEM_MIGRATE (WAVE_MSG_MEM_FIRST + 0x40)
#define WAVE_MEM_VICTIM (WAVE_MSG_MEM_FIRST + 0x41)
#define WAVE_MEM_PREFETCH (WAVE_MSG_MEM_FIRST + 0x42)
#define WAVE_MEM_KEEP (WAVE_MSG_MEM_FIRST + 0x60)
#define WAVE_MEM_OUTCOME (WAVE_MSG_MEM_FIRST + 0x80)

/* The same values as in <wave/mem.h> (identical definitions may be
 * repeated in C), so that the wire needs only this header. */
#ifndef WAVE_MEM_MAX_TIERS
#define WAVE_MEM_MAX_TIERS 8u
#endif
#ifndef WAVE_MEM_CHUNK_MIN
#define WAVE_MEM_CHUNK_MIN 4096u
#endif
#ifndef WAVE_MEM_CHUNK_MAX
#define WAVE_MEM_CHUNK_MAX (2u << 20)
#endif

/** Tier kinds on the wire: the numbers of enum wave_mem_tier_kind
 *  (<wave/mem.h>). At most one far tier, the last; tier 0 is NUMA. */
#define WAVE_MEM_KIND_NUMA 1u
#define WAVE_MEM_KIND_FAR 2u
/** A tier capacity that means "no limit". */
#define WAVE_MEM_CAP_NONE UINT32_MAX
/** Chunks one SAMPLES message reports. */
#define WAVE_MEM_SAMPLES_MAX 8u
/** Most chunks a region has (the index is 32 bits). */
#define WAVE_MEM_REGION_MAX_CHUNKS (UINT64_C(1) << 32)

/** Payload of SETUP. Tiers @n_tiers.. have capacity and kind 0. */
struct wave_mem_wire_setup {
	uint32_t capacity[WAVE_MEM_MAX_TIERS]; /* chunks, or WAVE_MEM_CAP_NONE */
	uint8_t kind[WAVE_MEM_MAX_TIERS];
	uint8_t n_tiers;
	uint8_t reserved[7];
};

/** Payload of REGION_ADD and REGION_DEL (which has only @region, @now_ns). */
struct wave_mem_wire_region {
	uint32_t region;
	uint32_t tier;
	uint64_t count;
	uint64_t chunk_size;
	uint64_t seq;
	uint64_t now_ns;
	uint64_t reserved;
};

/** Payload of CHUNK_CHANGED and FAULT. */
struct wave_mem_wire_chunk {
	uint64_t chunk;
	uint64_t seq;
	uint64_t now_ns;
	uint32_t tier;
	uint32_t reserved0;
	uint64_t reserved1[2];
};

/** Payload of SAMPLES: entries 0..@n-1 used, the rest 0. */
struct wave_mem_wire_samples {
	uint32_t region;
	uint8_t n;
	uint8_t reserved[3];
	uint32_t index[WAVE_MEM_SAMPLES_MAX];
	uint8_t accesses[WAVE_MEM_SAMPLES_MAX];
};

/** Payload of PRESSURE (@count: free chunks) and TICK (only @now_ns). */
struct wave_mem_wire_pressure {
	uint32_t tier;
	uint32_t reserved0;
	uint64_t count;
	uint64_t now_ns;
	uint64_t reserved1[3];
};

/** Payload of MIGRATE, VICTIM, PREFETCH and KEEP. */
struct wave_mem_wire_decision {
	uint64_t chunk;
	uint64_t seq;
	uint32_t tier;
	uint32_t reserved0;
	uint64_t reserved1[3];
};

/** Payload of OUTCOME. @decision: the decision's message type. */
struct wave_mem_wire_outcome {
	uint64_t chunk;
	uint64_t seq;
	uint64_t new_seq;
	uint64_t now_ns;
	uint32_t tier;
	uint16_t decision;
	uint8_t result;
	uint8_t reserved0;
	uint64_t reserved1;
};

#define WAVE_MEM_WIRE_SIZE_(s)                                                 \
	WAVE_MEM_STATIC_ASSERT(sizeof(struct s) == WAVE_MSG_PAYLOAD, #s " fills the payload")
WAVE_MEM_WIRE_SIZE_(wave_mem_wire_setup);
WAVE_MEM_WIRE_SIZE_(wave_mem_wire_region);
WAVE_MEM_WIRE_SIZE_(wave_mem_wire_chunk);
WAVE_MEM_WIRE_SIZE_(wave_mem_wire_samples);
WAVE_MEM_WIRE_SIZE_(wave_mem_wire_pressure);
WAVE_MEM_WIRE_SIZE_(wave_mem_wire_decision);
WAVE_MEM_WIRE_SIZE_(wave_mem_wire_outcome);
#undef WAVE_MEM_WIRE_SIZE_
WAVE_MEM_STATIC_ASSERT(offsetof(struct wave_mem_wire_setup, kind) == 32, "setup kind");
WAVE_MEM_STATIC_ASSERT(offsetof(struct wave_mem_wire_setup, n_tiers) == 40, "setup n_tiers");
WAVE_MEM_STATIC_ASSERT(offsetof(struct wave_mem_wire_region, count) == 8, "region count");
WAVE_MEM_STATIC_ASSERT(offsetof(struct wave_mem_wire_chunk, tier) == 24, "chunk tier");
WAVE_MEM_STATIC_ASSERT(offsetof(struct wave_mem_wire_samples, index) == 8, "samples index");
WAVE_MEM_STATIC_ASSERT(offsetof(struct wave_mem_wire_samples, accesses) == 40, "samples count");
WAVE_MEM_STATIC_ASSERT(offsetof(struct wave_mem_wire_decision, tier) == 16, "decision tier");
WAVE_MEM_STATIC_ASSERT(offsetof(struct wave_mem_wire_outcome, tier) == 32, "outcome tier");
WAVE_MEM_STATIC_ASSERT(offsetof(struct wave_mem_wire_outcome, decision) == 36, "decision");
WAVE_MEM_STATIC_ASSERT(offsetof(struct wave_mem_wire_outcome, result) == 38, "result");

/**
 * struct wave_mem_msg - any mem message, decoded.
 * @type:       one of the WAVE_MEM_* message types.
 * @decision:   OUTCOME: the type of the decision it ends.
 * @result:     OUTCOME: enum wave_result.
 * @n:          SETUP: tiers (1..WAVE_MEM_MAX_TIERS); SAMPLES: entries
 *              (1..WAVE_MEM_SAMPLES_MAX).
 * @tier:       REGION_ADD, CHUNK_CHANGED, FAULT, PRESSURE, decisions,
 *              KEEP, OUTCOME: a tier < the domain's tier count.
 * @region:     REGION_ADD, REGION_DEL, SAMPLES.
 * @chunk:      CHUNK_CHANGED, FAULT, decisions, KEEP, OUTCOME.
 * @seq:        REGION_ADD (every chunk's), CHUNK_CHANGED, FAULT (after
 *              the change), decisions, KEEP and OUTCOME (the one the
 *              decision was based on).
 * @new_seq:    OUTCOME: committed: the chunk's sequence number after the
 *              move, greater than @seq; aborted: 0.
 * @now_ns:     every event but SETUP and SAMPLES, and OUTCOME.
 * @count:      REGION_ADD: chunks, 1..WAVE_MEM_REGION_MAX_CHUNKS;
 *              PRESSURE: free chunks of @tier.
 * @chunk_size: REGION_ADD: a power of two, WAVE_MEM_CHUNK_MIN..MAX.
 * @index, @accesses: SAMPLES: chunk indexes in @region, and how many
 *              times each was seen touched (1..255); entries past @n 0.
 * @capacity, @kind: SETUP: per tier (see struct wave_mem_wire_setup);
 *              entries past @n 0.
 *
 * Fields a type does not have are 0 after decoding and must be 0 for
 * encoding.
 */
struct wave_mem_msg {
	uint16_t type;
	uint16_t decision;
	uint8_t result;
	uint8_t n;
	uint32_t tier;
	uint32_t region;
	uint64_t chunk;
	uint64_t seq;
	uint64_t new_seq;
	uint64_t now_ns;
	uint64_t count;
	uint64_t chunk_size;
	uint32_t index[WAVE_MEM_SAMPLES_MAX];
	uint8_t accesses[WAVE_MEM_SAMPLES_MAX];
	uint32_t capacity[WAVE_MEM_MAX_TIERS];
	uint8_t kind[WAVE_MEM_MAX_TIERS];
};

/**
 * wave_mem_msg_decode() - check and decode one mem message.
 * @in:      a message from the peer; untrusted, every byte is checked.
 * @n_tiers: the domain's tier count (its SETUP's), 1..WAVE_MEM_MAX_TIERS;
 *           a SETUP itself is checked on its own terms.
 * @out:     receives the decoded message; zeroed on failure.
 *
 * Return: 0, or
 *   -EINVAL   a NULL pointer or @n_tiers out of range (nothing decoded);
 *   -ENOMSG   @in->type is not a mem message type;
 *   -EBADMSG  header flags, a reserved field or an unused entry are not
 *             0; a SETUP's tiers are not 1..8, NUMA first and at most one
 *             far tier, the last; a chunk count, chunk size, sample count,
 *             result, decision type or new sequence number is not one
 *             this header allows;
 *   -ERANGE   a tier is >= @n_tiers.
 */
WAVE_API int wave_mem_msg_decode(const struct wave_msg *in, uint32_t n_tiers,
				 struct wave_mem_msg *out);

/**
 * wave_mem_msg_encode() - build the wire form of a mem message.
 * @in:      the decoded form; must pass the checks of the decoder.
 * @n_tiers: as for wave_mem_msg_decode().
 * @out:     receives the message: type and payload set, flags, seq and
 *           tstamp 0; untouched on failure.
 *
 * Return: 0, or the error wave_mem_msg_decode() would return for it.
 */
WAVE_API int wave_mem_msg_encode(const struct wave_mem_msg *in, uint32_t n_tiers,
				 struct wave_msg *out);

/** wave_mem_msg_type_name() - "setup", "region_add", "migrate", ... for a
 *  mem message type, or NULL for any other number. */
WAVE_API const char *wave_mem_msg_type_name(uint16_t type);

#ifdef __cplusplus
}
#endif

#endif /* WAVE_MEM_MSG_H */
