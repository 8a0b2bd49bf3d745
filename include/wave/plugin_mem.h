/* SPDX-License-Identifier: MIT */
/**
 * @file plugin_mem.h
 * For authors of mem-domain policies (plugin ABI 1.3; the ops table's
 * fault_weight 1.4; the chunk view's refault_ms 1.5; wave_plugin_mem_keep()
 * 1.6): the ops table, the
 * views of chunks and tiers, the hotness histogram, the scan hand, and the
 * decisions. Include it with <wave/plugin.h>, which has the descriptor,
 * parameters, logging and the rest.
 *
 * The agent owns the state: it decodes each host message (<wave/mem_msg.h>),
 * applies it to its model of tiers, regions and chunks (<wave/mem_state.h>),
 * refusing impossible ones, and only then calls the op named after the
 * event. A policy keeps no per-chunk state of its own: it reads chunks,
 * tiers and the histogram through the accessors below (the model holds 32
 * bytes per chunk, whatever the region's size) and decides through
 * wave_plugin_mem_migrate(), _victim() and _prefetch(), which check each
 * decision against the state before anything is sent.
 *
 * Hotness. Every chunk has an access count, raised by SAMPLES (the host's
 * sampler and the accesses the application reports; the library's host
 * says at most one access a chunk a tick) and by FAULT events, as the
 * policy's ops table says (@fault_weight), and cooled by
 * wave_plugin_mem_cool(), which halves every count at once in constant
 * time (the counts are brought up to date lazily, when each chunk is next
 * looked at). Faults are weighed apart from samples because they are not
 * samples: a sample stands for a tick of accesses of a resident chunk, a
 * fault is one exact event of a far one, and a write of a cold far chunk
 * faults. Counted as accesses, steady writes of cold chunks raise every
 * chunk past a low fixed threshold between two coolings, and a threshold
 * policy finds nothing cold to demote. The histogram counts chunks by log2 of
 * their count: bucket 0 holds the chunks never touched since they cooled to
 * 0, bucket b >= 1 those whose count is in [2^(b-1), 2^b). A cooling moves
 * every chunk one bucket down. wave_plugin_mem_fit_bucket() reads off it
 * the hottest buckets that fit a number of chunks: the threshold that
 * fills a fast tier with the hottest chunks (Memtis).
 */
#ifndef WAVE_PLUGIN_MEM_H
#define WAVE_PLUGIN_MEM_H

#include <stddef.h>
#include <stdint.h>

#include <wave/export.h>
#include <wave/mem_msg.h>
#include <wave/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Buckets of the hotness histogram (counts are 32-bit). */
#define WAVE_MEM_HIST_BUCKETS 33u
/** "Every tier", for wave_plugin_mem_hist(). */
#define WAVE_MEM_TIER_ALL UINT32_MAX
/** Most prestaged victims in flight per host (the host keeps as many). */
#define WAVE_MEM_MAX_VICTIMS 4096u

/**
 * struct wave_mem_chunk_view - a chunk, as the agent's state model sees it.
 * @id:           its id (region << 32 | index).
 * @seq:          its sequence number; a decision about it must carry it.
 * @last_ns:      host time of its last seen access, 0 for never.
 * @count:        its access count, cooled to the present.
 * @tier:         the tier it is in.
 * @bucket:       its histogram bucket (0..WAVE_MEM_HIST_BUCKETS - 1).
 * @pending:      the type of its decision in flight (WAVE_MEM_MIGRATE,
 *                _VICTIM or _PREFETCH), or 0. A chunk with a decision in
 *                flight gets no other decision.
 * @pending_tier: that decision's target tier (when @pending).
 * @refault_ms:   ABI 1.5. How long the chunk was in the far tier before
 *                the far fault that brought it back, in host ms (1 to
 *                65535), while it stays where the fault put it: a short
 *                time is a refault, the sign of a chunk in use that was
 *                demoted for want of seen accesses (the host sees a few
 *                of them). 0 when it is far, came back by a decision,
 *                never left, or cannot be told (its last access seen
 *                before it left is 65.5 s old or more); always 0 from a
 *                libwave before 1.5. The agent's state times it from the
 *                events it gets (a move into the far tier, the FAULT).
 * @reserved:     zero.
 */
struct wave_mem_chunk_view {
	uint64_t id;
	uint64_t seq;
	uint64_t last_ns;
	uint32_t count;
	uint32_t tier;
	uint16_t bucket;
	uint16_t pending;
	uint32_t pending_tier;
	uint32_t refault_ms;
	uint32_t reserved[3];
};

/**
 * struct wave_mem_tier_view - a tier.
 * @id:       its number, 0 fastest.
 * @kind:     WAVE_MEM_KIND_NUMA or WAVE_MEM_KIND_FAR.
 * @capacity: chunks it may hold, or WAVE_MEM_CAP_NONE.
 * @used:     chunks in it now.
 * @incoming: chunks with a decision in flight to move into it.
 * @outgoing: chunks in it with a decision in flight to move out.
 * @reserved: zero.
 *
 * A decision into a tier is refused while @used + @incoming would pass
 * @capacity (the host would abort it as busy); a tier may still go over
 * its capacity when chunks fault back into it: that is pressure.
 */
struct wave_mem_tier_view {
	uint32_t id;
	uint32_t kind;
	uint64_t capacity;
	uint64_t used;
	uint64_t incoming;
	uint64_t outgoing;
	uint64_t reserved[3];
};

/**
 * struct wave_mem_ops - callbacks of a WAVE_DOMAIN_MEM plugin.
 * @size:          sizeof(struct wave_mem_ops) at compile time.
 * @tick:          required. Periodic, with the host's time: where most
 *                 policies decide (cool, scan, migrate, prestage).
 * @region_add:    optional. Region @region of @count chunks exists (all in
 *                 one tier, untouched).
 * @region_del:    optional. Region @region is gone from the state.
 * @samples:       optional. Accesses were counted: @n (1..8) chunks of one
 *                 region, as they are after the update.
 * @fault:         optional. @c was touched in the far tier and is back in
 *                 a faster one (its count already raised by
 *                 @fault_weight).
 * @chunk_changed: optional. The host moved @c by itself.
 * @pressure:      optional. @tier has only @free chunks free.
 * @txn_committed: optional. A decision of type @decision about @c was
 *                 carried out: @c is in its new tier at its new seq.
 * @txn_aborted:   optional. A decision of type @decision about chunk @id
 *                 to @tier aborted with @result (enum wave_result); @c is
 *                 the chunk as it is now, or NULL when its region is gone.
 * @fault_weight:  ABI 1.4; not an op. The accesses a far fault adds to the
 *                 chunk's count, which a fault also brings to at least 1
 *                 (it was touched): 0 (the default of a 1.4 table) counts
 *                 a fault as a touch only, for policies with fixed count
 *                 thresholds; 1 as one access, the only behaviour of ABI
 *                 1.3 (and of tables built against it), for policies that
 *                 size the hot set from the counts of every tier, far
 *                 chunks' being their faults.
 *
 * Callbacks return 0, or a negative error code that the agent counts
 * ("event_errors") before carrying on. Views are copies valid during the
 * call. Callbacks of one context are never called concurrently, and may
 * make decisions and read the state.
 */
struct wave_mem_ops {
	size_t size;
	int (*tick)(struct wave_plugin_ctx *ctx, uint64_t now_ns);
	int (*region_add)(struct wave_plugin_ctx *ctx, uint32_t region, uint64_t count);
	int (*region_del)(struct wave_plugin_ctx *ctx, uint32_t region);
	int (*samples)(struct wave_plugin_ctx *ctx, const struct wave_mem_chunk_view *c,
		       unsigned n);
	int (*fault)(struct wave_plugin_ctx *ctx, const struct wave_mem_chunk_view *c);
	int (*chunk_changed)(struct wave_plugin_ctx *ctx, const struct wave_mem_chunk_view *c);
	int (*pressure)(struct wave_plugin_ctx *ctx, uint32_t tier, uint64_t free);
	int (*txn_committed)(struct wave_plugin_ctx *ctx, const struct wave_mem_chunk_view *c,
			     uint16_t decision);
	int (*txn_aborted)(struct wave_plugin_ctx *ctx, const struct wave_mem_chunk_view *c,
			   uint64_t id, uint16_t decision, uint32_t tier, unsigned result);
	uint32_t fault_weight;
};

/**
 * wave_plugin_mem_migrate() - decide: move @chunk to @tier now.
 * @ctx:   a mem plugin's context.
 * @chunk: a chunk id.
 * @seq:   its sequence number the decision is based on.
 * @tier:  the target tier.
 *
 * Checked against the state first and sent only if the host could commit
 * it now; a refusal is counted by reason. Once sent, the chunk is pending
 * until the host's outcome arrives.
 *
 * Return: 0 (sent), or
 *   -EINVAL   a NULL or non-mem @ctx, or a context without a state;
 *   -ERANGE   no such tier;
 *   -ENOENT   no such chunk;
 *   -ESTALE   @seq is not the chunk's;
 *   -EPERM    the chunk is in @tier already, or has a decision in flight;
 *   -EBUSY    @tier is full (used + incoming at its capacity), or (a
 *             victim) WAVE_MEM_MAX_VICTIMS are in flight;
 *   -EAGAIN   the channel to the host is full (backpressure: try later);
 *   -ENOTCONN the context has no emit function; or the emit's error.
 */
WAVE_API int wave_plugin_mem_migrate(struct wave_plugin_ctx *ctx, uint64_t chunk, uint64_t seq,
				     uint32_t tier);

/**
 * wave_plugin_mem_victim() - decide: prestage @chunk as a demotion victim
 * (to the next slower tier), for the host to demote under pressure
 * without a round trip. As wave_plugin_mem_migrate(); -EPERM also for a
 * chunk in the slowest tier. The outcome comes when the host demotes it,
 * or aborts it: stale also when, by then, the host saw the chunk touched
 * or spares it as active (a refault, a KEEP hint).
 */
WAVE_API int wave_plugin_mem_victim(struct wave_plugin_ctx *ctx, uint64_t chunk, uint64_t seq);

/**
 * wave_plugin_mem_prefetch() - decide: prestage @chunk for promotion to
 * the faster @tier, for the host to carry out at its own pace. As
 * wave_plugin_mem_migrate(); -EPERM also when @tier is not faster.
 */
WAVE_API int wave_plugin_mem_prefetch(struct wave_plugin_ctx *ctx, uint64_t chunk, uint64_t seq,
				      uint32_t tier);

/**
 * wave_plugin_mem_keep() - hint (plugin ABI 1.6): @chunk, at @seq in a
 * limited NUMA tier, is in use; the host's CLOCK spares it as an active
 * chunk (one that refaulted) for a few sweeps of its hand. The host sees
 * only some of a chunk's accesses; the agent's counts see more, over
 * longer. A hint holds no memory: under pressure the hand still takes a
 * kept chunk once its lives are spent, and the host bounds what the
 * hints of one sweep may keep (three quarters of the tier) and refuses
 * and counts hints about chunks not where they say. No outcome comes;
 * the chunk is not pending. Send it again for a chunk that stays hot.
 *
 * Return: 0 (sent), or
 *   -EINVAL   a NULL or non-mem @ctx, or a context without a state;
 *   -ENOENT   no such chunk;
 *   -ESTALE   @seq is not the chunk's;
 *   -EPERM    the chunk is not in a limited NUMA tier, or has a decision
 *             in flight;
 *   -EAGAIN   the channel to the host is full (backpressure: try later);
 *   -ENOTCONN the context has no emit function; or the emit's error.
 */
WAVE_API int wave_plugin_mem_keep(struct wave_plugin_ctx *ctx, uint64_t chunk, uint64_t seq);

/** wave_plugin_mem_chunk() - a chunk's state (O(1)). Return: 0, -ENOENT,
 *  -EINVAL. */
WAVE_API int wave_plugin_mem_chunk(const struct wave_plugin_ctx *ctx, uint64_t id,
				   struct wave_mem_chunk_view *out);

/** wave_plugin_mem_tier_count() - the domain's tiers, or -EINVAL. */
WAVE_API int wave_plugin_mem_tier_count(const struct wave_plugin_ctx *ctx);

/** wave_plugin_mem_tier() - tier @tier's state. Return: 0, -ERANGE,
 *  -EINVAL. */
WAVE_API int wave_plugin_mem_tier(const struct wave_plugin_ctx *ctx, uint32_t tier,
				  struct wave_mem_tier_view *out);

/**
 * wave_plugin_mem_hist() - the hotness histogram of @tier's chunks (or of
 * every chunk, WAVE_MEM_TIER_ALL) into @out[WAVE_MEM_HIST_BUCKETS].
 * Return: 0, -ERANGE, -EINVAL.
 */
WAVE_API int wave_plugin_mem_hist(const struct wave_plugin_ctx *ctx, uint32_t tier,
				  uint64_t out[WAVE_MEM_HIST_BUCKETS]);

/**
 * wave_plugin_mem_fit_bucket() - the lowest bucket b >= 1 such that the
 * chunks (of every tier) in buckets b and above number at most @n: the
 * chunks at least that hot fit into @n chunks of memory.
 * Return: b (WAVE_MEM_HIST_BUCKETS when even the hottest bucket has more
 * than @n chunks), or -EINVAL.
 */
WAVE_API int wave_plugin_mem_fit_bucket(const struct wave_plugin_ctx *ctx, uint64_t n);

/** wave_plugin_mem_cool() - halve every access count (O(1)). Return: 0 or
 *  -EINVAL. */
WAVE_API int wave_plugin_mem_cool(struct wave_plugin_ctx *ctx);

/**
 * wave_plugin_mem_scan() - a bounded step of @tier's scan hand: looks at
 * up to @budget chunks from where the hand stopped last time (around every
 * region, then again), and copies those in @tier with no decision in
 * flight into @out, up to @max. The hand of each tier is kept in the
 * state (across hot swaps).
 * Return: how many were copied, -ERANGE (no such tier) or -EINVAL.
 */
WAVE_API int wave_plugin_mem_scan(struct wave_plugin_ctx *ctx, uint32_t tier, uint64_t budget,
				  struct wave_mem_chunk_view *out, unsigned max);

/** wave_plugin_mem_now() - the latest host time the state has seen, or 0. */
WAVE_API uint64_t wave_plugin_mem_now(const struct wave_plugin_ctx *ctx);

#ifdef __cplusplus
}
#endif

#endif /* WAVE_PLUGIN_MEM_H */
