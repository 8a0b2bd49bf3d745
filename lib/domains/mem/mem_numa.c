/* SPDX-License-Identifier: MIT */
/*
 * NUMA tiers: checking that a tier's node exists, moving a chunk's pages
 * to another node with move_pages(2) (libnuma's numa_move_pages), and the
 * memory policy of a region whose home tier is a node.
 * move_pages, not mbind(MPOL_MF_MOVE): mbind would also set a policy on the
 * chunk's range, splitting the region's mapping into one VMA per chunk
 * (and the kernel allows a process about 65 thousand). A whole region's
 * policy is one mbind (at most two VMA splits, at its ends): it is what
 * places the pages the kernel allocates for the region later, on the
 * allocating thread's behalf - a far chunk fetched back by the fault
 * thread (UFFDIO_COPY; for a memfd, the pwrite() into it, which follows
 * the memfd's shared policy that the mbind of its mapping sets), which
 * would otherwise land on the fault thread's node.
 */
#include <errno.h>
#include <numa.h>
#include <numaif.h>
#include <stdlib.h>

#include "../../core/core.h"
#include "mem_impl.h"

int mem_numa_check(const struct wave_mem *m, struct wave_error *err)
{
	bool numa = numa_available() >= 0;

	for (uint32_t t = 0; t < m->n_tiers; t++) {
		int node = m->tiers[t].node;

		if (m->tiers[t].kind != WAVE_MEM_TIER_NUMA || node == WAVE_MEM_NODE_ANY)
			continue;
		if (node < 0)
			return wave_error_set(err, -EINVAL, "mem", 0, 0,
					      "tier %u: node %d is not a node number", t, node);
		if (!numa)
			return wave_error_set(err, -ENODEV, "mem", 0, 0,
					      "tier %u: node %d, but this kernel has no NUMA "
					      "support (use WAVE_MEM_NODE_ANY)", t, node);
		if (node > numa_max_possible_node() ||
		    !numa_bitmask_isbitset(numa_all_nodes_ptr, (unsigned)node))
			return wave_error_set(err, -ENODEV, "mem", 0, 0,
					      "tier %u: NUMA node %d does not exist or has no "
					      "memory here (nodes with memory: 0..%d at most)",
					      t, node, numa_max_node());
	}
	return 0;
}

int mem_numa_move(void *addr, size_t len, int node)
{
	size_t n = len / WAVE_MEM_CHUNK_MIN;
	void **pages = malloc(n * (sizeof(void *) + 2 * sizeof(int)));
	int *nodes, *status, ret = 0;

	if (n == 0 || !pages) {
		free(pages);
		return n ? -ENOMEM : 0;
	}
	nodes = (int *)(void *)(pages + n);
	status = nodes + n;
	for (size_t k = 0; k < n; k++) {
		pages[k] = (char *)addr + k * WAVE_MEM_CHUNK_MIN;
		nodes[k] = node;
		status[k] = 0;
	}
	if (numa_move_pages(0, (unsigned long)n, pages, nodes, status, MPOL_MF_MOVE) < 0)
		ret = -errno;
	/* A page not present (-ENOENT) has nothing to move; it is placed by
	 * the kernel's policy when first touched. */
	for (size_t k = 0; !ret && k < n; k++)
		if (status[k] < 0 && status[k] != -ENOENT)
			ret = status[k];
	free(pages);
	return ret;
}

int mem_numa_node_of(const void *addr)
{
	void *p = (void *)addr;
	int status = -1;

	if (numa_move_pages(0, 1, &p, NULL, &status, 0) < 0)
		return -errno;
	return status;
}

int mem_numa_prefer(void *addr, size_t len, int node)
{
	struct bitmask *bm;
	int ret = 0;

	if (node == WAVE_MEM_NODE_ANY)
		return mbind(addr, len, MPOL_DEFAULT, NULL, 0, 0) < 0 ? -errno : 0;
	if (!(bm = numa_allocate_nodemask()))
		return -ENOMEM;
	numa_bitmask_setbit(bm, (unsigned)node);
	/* Preferred, not bound: a full node spills over rather than failing
	 * a fault, which is never refused. */
	if (mbind(addr, len, MPOL_PREFERRED, bm->maskp, bm->size + 1, 0) < 0)
		ret = -errno;
	numa_free_nodemask(bm);
	return ret;
}
