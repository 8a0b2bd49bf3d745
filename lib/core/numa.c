/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <numa.h>
#include <numaif.h>
#include <sched.h>

#include <wave/channel.h>
#include <wave/error.h>

#include "core.h"

/*
 * Ask the kernel to place [addr, addr+len) on @node when it is first touched.
 * MPOL_PREFERRED, not MPOL_BIND: a full node must slow a channel down, not
 * kill the process. For a shared mapping (memfd, tmpfs) the policy is stored
 * with the object, so it also holds for the peer's faults.
 */
int wave_numa_place(void *addr, size_t len, int node)
{
	unsigned long mask[16] = { 0 };

	if (node == WAVE_NUMA_NONE || numa_available() < 0)
		return 0;
	if (node == WAVE_NUMA_LOCAL) {
		unsigned cpu, here;

		/* getcpu(), not numa_node_of_cpu(): libnuma fills its cpu
		 * tables lazily without a lock, and channels are placed from
		 * any thread (a host reconnects on a thread of its own). */
		if (getcpu(&cpu, &here) != 0)
			return 0; /* no topology to follow: leave it to the kernel */
		node = (int)here;
	}
	if (node < 0 || node > numa_max_node() || (unsigned)node >= sizeof(mask) * 8)
		return -EINVAL;
	mask[node / (8 * sizeof(mask[0]))] |= 1ul << (node % (8 * sizeof(mask[0])));
	if (mbind(addr, len, MPOL_PREFERRED, mask, sizeof(mask) * 8, 0) != 0) {
		int err = errno;
		wave_warn("mbind of %zu bytes to node %d failed: %s", len, node,
			  wave_strerror(err));
		return -err;
	}
	return 0;
}
