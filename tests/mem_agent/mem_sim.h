/* SPDX-License-Identifier: MIT */
/*
 * A simulated host for the mem domain: chunks that exist only as numbers,
 * in two regions and two tiers (tier 0 fast with a capacity, tier 1
 * slower: a NUMA tier, or a far tier whose touches fault), driven by a
 * deterministic access stream and talking to a real state model and a
 * real policy plugin through encoded messages, without threads or a
 * channel. The host side behaves as the protocol says (mem_msg.h): it
 * commits each decision by the library's one rule (txn_check() of
 * lib/decision/txn.h), answers every decision exactly once, brings a far
 * chunk back into tier 0 on a touch, and then relieves tier 0 with the
 * prestaged victims, in order, or with its own clock hand when there are
 * none. The hand keeps the library's rules (mem_clock_pass() of
 * lib/domains/mem/mem_impl.h): a touched chunk of tier 0 is accessed (the
 * host sees it, as SAMPLES say), a chunk two sweeps found accessed or one
 * that refaulted (back within an eighth of tier 0's capacity of
 * departures, as mem_far.c's refaulted()) is active and spared until
 * three sweeps in a row find it unaccessed, and the agent's KEEP hints
 * make a chunk active, within the host's bound (three quarters of tier 0
 * a sweep). Messages in both directions are delivered in order until the
 * system is quiet.
 */
#ifndef WAVE_TEST_MEM_SIM_H
#define WAVE_TEST_MEM_SIM_H

#include <stdbool.h>
#include <stdint.h>

#include <wave/mem_state.h>
#include <wave/plugin_loader.h>

#include "replay/replay.h"

struct msim_chunk {
	uint64_t seq;
	uint32_t tier;
	uint32_t acc;  /* accesses this step, for SAMPLES */
	uint64_t cs;   /* the clock hand's bits: CS_ACCESSED, CS_LIVES, CS_SEEN */
	uint64_t left; /* @departed when it last went to tier 1, 0: never */
};

struct msim {
	struct wave_mem_state *st;
	struct wave_plugin_ctx *ctx;
	bool far;          /* tier 1 is far: touching it faults */
	uint64_t n, fast_cap, split; /* chunks; tier 0's capacity; region 1 = [0, split) */
	uint64_t used[2];
	struct msim_chunk *c;
	struct replay_q to_agent, to_host; /* the channel, both ways */
	struct { uint64_t g, seq; } victims[4096];
	size_t n_victims;
	uint64_t hand;     /* the host's own clock hand over tier 0 */
	uint64_t departed; /* demotions to tier 1 so far (refaults) */
	uint64_t kept;     /* chunks the KEEP hints made active this sweep */
	uint64_t now;
	uint64_t rng;
	/* What happened. */
	uint64_t fast, slow;          /* accesses served by tier 0 / by tier 1 */
	uint64_t faults, victims_used, local_demotions;
	uint64_t keeps, keeps_refused; /* KEEP hints carried out, refused */
	uint64_t commits, aborts[WAVE_RESULT_COUNT];
	uint64_t agent_errors;        /* messages the agent refused: none expected */
};

/* A host of @n chunks, the first @fast_cap of them in tier 0 (region 1),
 * the rest in tier 1 (region 2), with policy @p (parameters @params, may
 * be NULL) over a fresh state. 0 or -errno. */
int msim_create(struct msim *s, uint64_t n, uint64_t fast_cap, bool far, struct wave_plugin *p,
		const struct wave_params *params);
void msim_destroy(struct msim *s);
/* Swaps the policy at run time (a new context, the state replayed). */
int msim_swap(struct msim *s, struct wave_plugin *p, const struct wave_params *params);

/*
 * struct msim_load - a step's touches: @hot_pct of @touches go to the hot
 * set, the @hot chunks at positions @hot_first.. of a fixed scatter of the
 * chunk numbers; the rest go uniformly to the warm set, the @warm chunks
 * at positions @warm_first.. (= @hot_first + @hot); the other chunks are
 * cold (not touched), but for @cold_writes writes a step to cold chunks
 * picked uniformly, which no sample sees: only a write to a far chunk is
 * seen, as its FAULT. With @unit_samples, SAMPLES say one access per chunk
 * touched in the step, however many there were, as the library's host
 * did before it counted them; else the number of touches (up to 255), as
 * it does now (mem_link.c).
 */
struct msim_load {
	unsigned touches, hot_pct, cold_writes;
	/* Every touch goes to the chunk of rank x (from 0) counted from
	 * @hot_first (all the chunks ranked), with a probability about
	 * 1 / ((x + 1) ln n) (Zipf, theta 1); the sets are unused. */
	bool zipf;
	uint64_t hot_first, hot, warm_first, warm;
	bool unit_samples;
};

/* One step of 10 ms of host time: the touches of @l, then SAMPLES of them
 * to the agent, a TICK, and the system runs until quiet. 0 or -errno. */
int msim_step(struct msim *s, const struct msim_load *l);

/* 0 when the host and the agent agree on every chunk's tier and sequence
 * number and on each tier's usage, and the agent refused nothing; else
 * a negative number naming the failed check. */
int msim_check(struct msim *s);

#endif
