/* SPDX-License-Identifier: MIT */
/*
 * Two NUMA tiers on two nodes: a chunk moved to the slower tier is on its
 * node afterwards, every byte intact, and back. With a far tier too, a
 * region whose home tier is the slower node: a far chunk faults back onto
 * that node, though the fault thread (like the whole process) is bound to
 * node 0, and one promoted by a decision into tier 0 is on node 0. Needs a
 * machine with two nodes with memory; elsewhere it says so and exits 77
 * (skipped).
 */
#include <numa.h>
#include <numaif.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <wave/wave.h>

#define LEN (1u << 20)
#define CHUNK (64u * 1024)

static int fail(const char *what, long got)
{
	fprintf(stderr, "mem_numa2: %s (%ld)\n", what, got);
	return 1;
}

/* The node of every page of chunk @c of @p: the one node, or -1 if they differ. */
static int node_of(char *p, unsigned c)
{
	int first = -2;

	for (unsigned k = 0; k < CHUNK / 4096; k++) {
		void *pg = p + (size_t)c * CHUNK + k * 4096;
		int st = -1;

		if (numa_move_pages(0, 1, &pg, NULL, &st, 0) < 0 || (first != -2 && st != first))
			return -1;
		first = st;
	}
	return first;
}

/* The far tier's fetches land on the home tier's node. */
static int far_home(int hi)
{
	struct wave_mem_region_opts ro;
	struct wave_mem_opts o;
	struct wave_mem *m;
	struct wave_error err;
	struct bitmask *bm;
	uint32_t id;
	char *p;
	int ret;

	/* The process (and the fault thread, which inherits it) allocates on
	 * node 0 unless a region's policy says otherwise. */
	bm = numa_allocate_nodemask();
	numa_bitmask_setbit(bm, 0);
	if (set_mempolicy(MPOL_BIND, bm->maskp, bm->size + 1) < 0)
		return fail("set_mempolicy", -1);
	numa_free_nodemask(bm);
	wave_mem_opts_init(&o);
	o.n_tiers = 3;
	o.tiers[0].node = 0;
	o.tiers[1] = (struct wave_mem_tier){ WAVE_MEM_TIER_NUMA, hi, 0 };
	o.tiers[2] = (struct wave_mem_tier){ WAVE_MEM_TIER_FAR, 0, 0 };
	o.min_resident_ns = 0;
	if ((ret = wave_mem_create(&o, &m, &err)))
		return fail(err.text, ret);
	p = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	wave_mem_region_opts_init(&ro);
	ro.chunk_size = CHUNK;
	ro.tier = 1;
	if (p == MAP_FAILED || wave_mem_region_register(m, p, LEN, &ro, &id))
		return fail("register in tier 1", 0);
	for (size_t k = 0; k < LEN; k++)
		p[k] = (char)(k * 13 + 5);
	for (unsigned c = 2; c <= 4; c += 2) {
		struct wave_mem_chunk_info ci = { .size = sizeof(ci) };

		if (wave_mem_chunk_info(m, wave_mem_chunk_id(id, c), &ci) ||
		    (ret = wave_mem_migrate(m, wave_mem_chunk_id(id, c), ci.seq, 2)) !=
			    WAVE_COMMITTED)
			return fail("demote to the far tier", ret);
	}
	if ((ret = wave_mem_touch(p + 2 * CHUNK, CHUNK)) || (ret = node_of(p, 2)) != hi)
		return fail("a far chunk did not fault back onto its home tier's node", ret);
	if ((ret = wave_mem_migrate(m, wave_mem_chunk_id(id, 4), 1, 0)) != WAVE_COMMITTED ||
	    (ret = node_of(p, 4)) != 0)
		return fail("a far chunk promoted into tier 0 is not on node 0", ret);
	for (size_t k = 0; k < LEN; k++)
		if (p[k] != (char)(k * 13 + 5))
			return fail("a byte changed", (long)k);
	wave_mem_destroy(m);
	munmap(p, LEN);
	return 0;
}

int main(void)
{
	struct wave_mem_opts o;
	struct wave_mem_chunk_info ci = { .size = sizeof(ci) };
	struct wave_mem *m;
	struct wave_error err;
	int hi, ret;
	uint32_t id;
	char *p;

	if (numa_available() < 0 || numa_max_node() < 1) {
		printf("mem_numa2: skipped: this machine has %d NUMA node(s) with memory; moving a "
		       "chunk between tiers on two nodes needs two\n",
		       numa_available() < 0 ? 0 : numa_max_node() + 1);
		return 77;
	}
	hi = numa_max_node();
	wave_mem_opts_init(&o);
	o.n_tiers = 2;
	o.tiers[0].node = 0;
	o.tiers[1] = (struct wave_mem_tier){ WAVE_MEM_TIER_NUMA, hi, 0 };
	ret = wave_mem_create(&o, &m, &err);
	if (ret)
		return fail(err.text, ret);
	p = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	for (size_t k = 0; k < LEN; k++)
		p[k] = (char)(k * 31 + 7);
	if (wave_mem_region_register(m, p, LEN, NULL, &id))
		return fail("register", 0);
	if (wave_mem_chunk_info(m, wave_mem_chunk_id(id, 3), &ci) ||
	    (ret = wave_mem_migrate(m, wave_mem_chunk_id(id, 3), ci.seq, 1)) != WAVE_COMMITTED)
		return fail("migrate to the slower node", ret);
	if ((ret = node_of(p, 3)) != hi)
		return fail("the chunk is not on the slower node", ret);
	if ((ret = wave_mem_migrate(m, wave_mem_chunk_id(id, 3), ci.seq + 1, 0)) != WAVE_COMMITTED)
		return fail("migrate back", ret);
	if ((ret = node_of(p, 3)) != 0)
		return fail("the chunk is not back on node 0", ret);
	for (size_t k = 0; k < LEN; k++)
		if (p[k] != (char)(k * 31 + 7))
			return fail("a byte changed", (long)k);
	wave_mem_destroy(m);
	munmap(p, LEN);
	if ((ret = far_home(hi)))
		return ret;
	printf("mem_numa2: chunk moved to node %d and back, bytes intact; a far chunk faults "
	       "back onto its home tier's node\n", hi);
	return 0;
}
