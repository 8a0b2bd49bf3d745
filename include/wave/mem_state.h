/* SPDX-License-Identifier: MIT */
/**
 * @file mem_state.h
 * The agent's state model of the mem domain: the tiers, regions and chunks
 * of one host, kept from the host's messages, and checked against before
 * any decision leaves.
 *
 * The agent runtime makes one state per host session from the host's
 * SETUP, hands it to the mem plugin's context
 * (wave_plugin_ctx_opts.domain_state), and passes every later mem message
 * to wave_mem_state_apply(). That decodes it (wave_mem_msg_decode()),
 * applies it, and calls the plugin's op named after it. Messages that
 * cannot be true are refused, counted and not applied: a region added
 * twice, a chunk or region the state does not have, a sequence number
 * that does not advance, a fault of a chunk that is not in the far tier,
 * an outcome for a decision that is not in flight (or a commit of a chunk
 * that changed since).
 *
 * Cost. Regions sit in a small table (at most WAVE_MEM_STATE_MAX_REGIONS
 * at once), each a flat array of 32 bytes per chunk (sequence number, last
 * access time, access count and its cooling epoch, tier, the decision in
 * flight), so every event costs the same from a thousand chunks to tens of
 * millions, and memory is 32 bytes per chunk (wave_mem_state_stats.bytes
 * says exactly). Cooling is O(1): counts are brought up to date when a
 * chunk is next looked at.
 *
 * A state is not thread-safe: one thread applies messages and runs the
 * plugin's callbacks (which may read and change it through the context).
 */
#ifndef WAVE_MEM_STATE_H
#define WAVE_MEM_STATE_H

#include <stdint.h>

#include <wave/domain.h>
#include <wave/export.h>
#include <wave/mem_msg.h>
#include <wave/msg.h>

#ifdef __cplusplus
extern "C" {
#endif

struct wave_plugin_ctx;

/** The agent's model of one host's memory; opaque. */
struct wave_mem_state;

/** Regions a state holds at once. */
#define WAVE_MEM_STATE_MAX_REGIONS 64u
/** Chunks a state holds at most by default: 2^24, 512 MiB of state (64 GiB
 * of memory in 4 KiB chunks). The agent holds each host to it, so that a
 * host's REGION_ADD cannot make it allocate more. */
#define WAVE_MEM_STATE_DEFAULT_MAX_CHUNKS (UINT64_C(1) << 24)

/**
 * wave_mem_state_create() - make an empty state from a host's SETUP.
 * @setup:      the host's SETUP message, untrusted (decoded and checked).
 * @max_chunks: most chunks over all regions (a REGION_ADD past it is
 *              refused as no_memory), or 0 for
 *              WAVE_MEM_STATE_DEFAULT_MAX_CHUNKS.
 * @out:        receives the state.
 *
 * Return: 0, -EINVAL (a NULL pointer), -EBADMSG (not a valid SETUP) or
 * -ENOMEM.
 */
WAVE_API WAVE_NODISCARD int wave_mem_state_create(const struct wave_msg *setup,
						  uint64_t max_chunks,
						  struct wave_mem_state **out);

/** wave_mem_state_destroy() - free @st; destroy the contexts using it
 *  first. NULL is ignored. */
WAVE_API void wave_mem_state_destroy(struct wave_mem_state *st);

/**
 * wave_mem_state_apply() - apply one message from the host.
 * @st:  the state.
 * @ctx: the mem plugin's context whose domain_state is @st, whose op for
 *       the message is then called; or NULL to apply the message to the
 *       state alone.
 * @m:   an event or an outcome, untrusted.
 *
 * A message that fails a check changes nothing and is counted.
 *
 * Return: 0, or
 *   -EINVAL              a bad argument (nothing counted);
 *   -ENOMSG, -EBADMSG, -ERANGE  from wave_mem_msg_decode() (bad_msgs), or
 *                        a decision or a second SETUP, which a host
 *                        never sends;
 *   -ENOENT              unknown region or chunk (unknown);
 *   -EEXIST              REGION_ADD of a live region (dup_region);
 *   -ESTALE              a sequence number that does not advance
 *                        (seq_backwards);
 *   -EPROTO              a fault of a chunk not in the far tier, an
 *                        outcome of nothing in flight (bad_transition);
 *   -ENOMEM              the region does not fit (no_memory).
 * A plugin op's error is not returned: the context counts it.
 */
WAVE_API int wave_mem_state_apply(struct wave_mem_state *st, struct wave_plugin_ctx *ctx,
				  const struct wave_msg *m);

/**
 * wave_mem_state_replay() - hand the state to a (new) plugin: region_add
 * for every region, then tick at the latest host time. A policy reads
 * chunks from the state, so this is all it needs; decisions the old
 * policy left in flight complete normally (their outcomes reach the new
 * one). Return: 0 or -EINVAL.
 */
WAVE_API int wave_mem_state_replay(struct wave_mem_state *st, struct wave_plugin_ctx *ctx);

/**
 * struct wave_mem_state_stats - what a state has seen and done.
 * @regions, @chunks, @tiers: now.
 * @bytes:           memory the state holds (the state and every region's
 *                   chunks).
 * @events:          events and outcomes applied.
 * @accesses:        accesses counted (samples, and faults by their
 *                   weight: struct wave_mem_ops.fault_weight).
 * @coolings:        times the counts were halved.
 * @bad_msgs, @unknown, @dup_region, @seq_backwards, @bad_transition,
 * @no_memory:       events refused, by reason (wave_mem_state_apply()).
 * @sent:            decisions sent.
 * @refused_stale, @refused_gone, @refused_not_eligible, @refused_busy,
 * @refused_invalid, @refused_full: decisions refused before sending, by
 *                   the reason the host would have given (full: the
 *                   channel, backpressure).
 * @committed:       transactions committed.
 * @aborted:         transactions aborted, by enum wave_result (index 0
 *                   unused).
 * @victims:         prestaged victims in flight now.
 * @faults:          far faults counted (FAULT events applied).
 * @keeps:           KEEP hints sent (wave_plugin_mem_keep(); not in
 *                   @sent: a hint gets no outcome). Libwave 1.6.
 * @reserved:        zero.
 */
struct wave_mem_state_stats {
	uint64_t regions, chunks, tiers;
	uint64_t bytes;
	uint64_t events;
	uint64_t accesses;
	uint64_t coolings;
	uint64_t bad_msgs, unknown, dup_region, seq_backwards, bad_transition, no_memory;
	uint64_t sent;
	uint64_t refused_stale, refused_gone, refused_not_eligible, refused_busy;
	uint64_t refused_invalid, refused_full;
	uint64_t committed;
	uint64_t aborted[WAVE_RESULT_COUNT];
	uint64_t victims;
	uint64_t faults;
	uint64_t keeps;
	uint64_t reserved[6];
};

/** wave_mem_state_stats() - copy @st's statistics into @out.
 *  Return: 0 or -EINVAL. */
WAVE_API int wave_mem_state_stats(const struct wave_mem_state *st,
				  struct wave_mem_state_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* WAVE_MEM_STATE_H */
