/* SPDX-License-Identifier: MIT */
/*
 * kvcache: a key-value cache whose values live in a region four times
 * larger than its fast-memory budget; the rest is in the far tier. The
 * cache reports the values it reads (wave_mem_report_access(), batched)
 * and, with an agent address, lets the agent place the chunks
 * (wave_mem_poll() between batches); without one the local CLOCK does.
 * Every value read is checked, so a lost byte fails the run.
 *
 *   wave-example-kvcache [OPS] [AGENT_URI]
 *
 * With an agent it starts once the agent is in control, and runs past OPS
 * until the agent has made a decision, so that even a short run on a busy
 * machine shows the agent at work (a condition, not a time).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wave/wave.h>

#include "../example_args.h"

#define VALUE 4096u              /* bytes per value */
#define KEYS 4096u               /* 16 MiB of values */
#define CHUNK (64u << 10)
#define FAST (KEYS * VALUE / 4)  /* the fast budget: a quarter */
#define BATCH 64u

static uint64_t value_word(uint32_t key, uint32_t version)
{
	return (uint64_t)key << 32 | version;
}

static void put(char *base, uint32_t key, uint32_t version)
{
	uint64_t *v = (uint64_t *)(base + (size_t)key * VALUE);

	for (size_t i = 0; i < VALUE / 8; i++)
		v[i] = value_word(key, version) + i;
}

static int get_ok(const char *base, uint32_t key, uint32_t version)
{
	const uint64_t *v = (const uint64_t *)(base + (size_t)key * VALUE);

	for (size_t i = 0; i < VALUE / 8; i++)
		if (v[i] != value_word(key, version) + i)
			return 0;
	return 1;
}

/* A skewed key: 90% of reads go to the first tenth of the keys. */
static uint32_t skewed_key(uint64_t *rng)
{
	*rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
	uint32_t r = (uint32_t)(*rng >> 33);

	return r % 10 ? r / 10 % (KEYS / 10) : r / 10 % KEYS;
}

static struct wave_mem_stats stats(struct wave_mem *m)
{
	struct wave_mem_stats st;

	wave_mem_stats(m, &st);
	return st;
}

/* The agent's link is polled until the agent is in control. */
static void wait_agent(struct wave_mem *m, const char *uri)
{
	fprintf(stderr, "kvcache: waiting for the agent at %s\n", uri);
	while (!stats(m).agent)
		wave_mem_poll(m, 10000000);
}

/* Op @i is to be run: OPS of them, then, with an agent, until it decided. */
static bool more(struct wave_mem *m, uint64_t i, uint64_t ops, bool agent)
{
	return i < ops || (agent && stats(m).agent_decisions == 0);
}

int main(int argc, char **argv)
{
	uint64_t ops = 200000, rng = 1, bad = 0, i;
	const char *uri = argc > 2 ? argv[2] : NULL;
	static uint32_t version[KEYS];
	struct wave_mem_region_opts ro;
	struct wave_mem_stats st;
	struct wave_mem_opts o;
	struct wave_error err;
	struct wave_mem *m;
	const void *seen[BATCH];
	unsigned n = 0;
	uint32_t id;
	void *base;
	int ret;

	if (argc > 3 || (argc > 1 && argv[1][0] == '-')) {
		fprintf(stderr, "usage: wave-example-kvcache [OPS] [AGENT_URI]\n");
		return 2;
	}
	if (argc > 1)
		ops = example_uint("wave-example-kvcache", "OPS", argv[1], 1, 1ull << 40);
	wave_mem_opts_init(&o);
	o.n_tiers = 2;
	o.tiers[0].capacity = FAST;
	o.tiers[1] = (struct wave_mem_tier){ WAVE_MEM_TIER_FAR, 0, 0 };
	o.min_resident_ns = 1000000; /* a short run: anti-thrash of 1 ms, not 100 */
	o.agent_uri = uri;
	if ((ret = wave_mem_create(&o, &m, &err)) < 0) {
		fprintf(stderr, "kvcache: %s (%s)\n", wave_strerror(ret), err.text);
		return ret == -ENOSYS || ret == -EPERM ? 77 : 1;
	}
	wave_mem_region_opts_init(&ro);
	ro.chunk_size = CHUNK;
	if ((ret = wave_mem_region_alloc(m, (size_t)KEYS * VALUE, &ro, &base, &id)) < 0) {
		fprintf(stderr, "kvcache: region: %s\n", wave_strerror(ret));
		wave_mem_destroy(m);
		return 1;
	}
	for (uint32_t k = 0; k < KEYS; k++)
		put(base, k, version[k]);
	wave_mem_relieve(m); /* into the budget */
	if (uri)
		wait_agent(m, uri);
	for (i = 0; more(m, i, ops, uri != NULL); i++) {
		uint32_t k = skewed_key(&rng);

		if (i % 16 == 0) {
			put(base, k, ++version[k]);
		} else {
			bad += !get_ok(base, k, version[k]);
			seen[n++] = (const char *)base + (size_t)k * VALUE;
		}
		if (n == BATCH) {
			wave_mem_report_access(m, seen, n);
			n = 0;
			wave_mem_poll(m, 0);
		}
	}
	wave_mem_stats(m, &st); /* before the check below brings every value back */
	for (uint32_t k = 0; k < KEYS; k++)
		bad += !get_ok(base, k, version[k]);
	printf("kvcache: %" PRIu64 " ops, %" PRIu64 " far faults, %" PRIu64
	       " migrations, agent decisions %" PRIu64 ", fast %" PRIu64 " of %" PRIu64
	       " bytes, %" PRIu64 " bad values\n",
	       i, st.far_faults, st.committed, st.agent_decisions, st.tier_used[0],
	       st.tier_used[0] + st.tier_used[1], bad);
	wave_mem_destroy(m);
	return bad ? 1 : 0;
}
