/* SPDX-License-Identifier: MIT */
/*
 * Inside the mem domain's agent-side state model: the per-chunk record,
 * regions, tiers and the histogram, shared by mem_state.c (events and
 * outcomes), mem_decide.c (the plugin's reads and decisions) and
 * mem_check.c (invariants, for tests and the fuzzer).
 */
#ifndef WAVE_MEM_AGENT_IMPL_H
#define WAVE_MEM_AGENT_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <wave/mem_msg.h>
#include <wave/mem_state.h>
#include <wave/plugin_mem.h>

#include "../../decision/pending.h"

/* Tells a real state from any other pointer in a context's domain_state. */
#define MEM_STATE_MAGIC UINT64_C(0x776176656d656d73)

/*
 * One chunk. The region's array of them is the agent's memory per chunk,
 * so it stays at 32 bytes: the bound, checked below.
 * @count is as of cooling epoch @epoch: its value now is count >> (the
 * state's epoch - @epoch), computed when the chunk is next looked at.
 */
struct mem_chunk {
	uint64_t seq;
	uint64_t last_ns;
	uint32_t count;
	uint32_t epoch;
	struct dec_pend pend; /* a MEM_PEND_* decision in flight; res: its target tier */
	uint8_t tier;
	uint16_t away; /* far: the host's ms (mod 2^16) when it left; back by a fault:
			* how long it was away (the view's refault_ms); else 0 */
};
_Static_assert(sizeof(struct mem_chunk) == 32, "at most 32 bytes of agent state per chunk");

/* The kinds of a chunk's decision in flight (struct dec_pend). */
enum { MEM_PEND_NONE, MEM_PEND_MIGRATE, MEM_PEND_VICTIM, MEM_PEND_PREFETCH };

struct mem_region {
	uint32_t id;
	bool live;
	uint64_t n;          /* chunks */
	uint64_t chunk_size;
	struct mem_chunk *c;
};

struct mem_tier {
	uint32_t kind;
	uint64_t capacity;   /* chunks, or UINT64_MAX */
	uint64_t used, incoming, outgoing;
	uint64_t hist[WAVE_MEM_HIST_BUCKETS];
	uint32_t hand_slot;  /* the scan hand: region slot and index */
	uint64_t hand_index;
};

struct wave_mem_state {
	uint64_t magic;
	uint32_t n_tiers;
	uint32_t epoch;      /* coolings so far */
	uint32_t last_slot;  /* the region slot found last (events come in runs) */
	uint64_t now;        /* latest host time seen */
	uint64_t max_chunks, n_chunks;
	uint64_t n_victims;  /* VICTIM decisions in flight */
	struct mem_tier tiers[WAVE_MEM_MAX_TIERS];
	struct mem_region regions[WAVE_MEM_STATE_MAX_REGIONS];
	struct wave_mem_state_stats stats; /* its refused_* come from @refused */
	struct dec_refusals refused;
};

/* The region slot of region @id, or NULL. */
struct mem_region *mem_region_find(struct wave_mem_state *st, uint32_t id);
/* The chunk @id, or NULL. */
struct mem_chunk *mem_chunk_find(struct wave_mem_state *st, uint64_t id);

/* log2 bucket of an access count. */
static inline unsigned mem_bucket(uint32_t count)
{
	return count ? 32u - (unsigned)__builtin_clz(count) : 0u;
}

/* Brings @c's count up to the state's epoch. */
static inline void mem_chunk_cool(const struct wave_mem_state *st, struct mem_chunk *c)
{
	uint32_t d = st->epoch - c->epoch;

	if (!d)
		return;
	c->count = d >= 32 ? 0 : c->count >> d;
	c->epoch = st->epoch;
}

/* The view of chunk @c, of id @id (cooled first). */
void mem_chunk_view(struct wave_mem_state *st, struct mem_chunk *c, uint64_t id,
		    struct wave_mem_chunk_view *out);
/* Moves @c (cooled) to @tier: usage and histogram follow. */
void mem_chunk_move(struct wave_mem_state *st, struct mem_chunk *c, uint32_t tier);
/* Ends @c's decision in flight, if any: the tiers' in/out counts follow. */
void mem_chunk_unpend(struct wave_mem_state *st, struct mem_chunk *c);

/* Checks every invariant linking chunks, tiers and the histogram; 0 or
 * -EPROTO. Linear in the chunks; for tests and the fuzzer (not exported
 * from libwave.so). */
int wave_mem_state_check(struct wave_mem_state *st);

#endif /* WAVE_MEM_AGENT_IMPL_H */
