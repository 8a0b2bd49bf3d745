/* SPDX-License-Identifier: MIT */
/*
 * Where access information comes from, besides far faults (mem_far.c):
 * the sampler of managed regions, accesses the application reports, and
 * whether DAMON could watch this process.
 *
 * The sampler needs no signal handler: each period it drops the mapping
 * of a few resident chunks of managed (memfd) regions with MADV_DONTNEED.
 * The bytes stay in the memfd; the next touch is a userfaultfd MINOR fault,
 * which the fault thread answers with UFFDIO_CONTINUE, marking the chunk
 * accessed. Its cost is one madvise per armed chunk and one fault round
 * trip per touched one (BENCHMARKS.md), bounded by sample_chunks per
 * sample_period_ns.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../core/core.h"
#include "mem_impl.h"

static bool armable(const struct wave_mem *m, uint64_t s)
{
	return !(s & (CS_BUSY | CS_SAMPLED)) && (int)cs_tier(s) != m->far_tier;
}

/* Arms chunk @i: resident, not busy, not armed already. The chunk is
 * held busy while its mapping goes and until it is marked, so that a
 * chunk seen SAMPLED has no mapping left: its next touch is a minor fault,
 * which counts it. A fault meanwhile finds it busy and faults again after.
 * (Without the hold, a thread serving its own fault (fault_signal) could
 * map the chunk between the two, leaving it marked but mapped: its next
 * touch went uncounted.) */
static bool arm(struct wave_mem *m, struct mem_region *r, uint64_t i)
{
	uint64_t s = atomic_load(&r->state[i]), n;
	bool armed;

	if (!armable(m, s) || !mem_chunk_lock(r, i, &s))
		return false;
	armed = armable(m, s);
	if (armed && madvise((void *)mem_chunk_addr(r, i), r->chunk_size, MADV_DONTNEED) < 0) {
		wave_warn("mem: sampler cannot drop a mapping: %s", wave_strerror(errno));
		armed = false;
	}
	s = atomic_load(&r->state[i]);
	do /* unlocked as it was, and marked if armed */
		n = (s & ~CS_BUSY) | (armed ? CS_SAMPLED : 0);
	while (!atomic_compare_exchange_weak(&r->state[i], &s, n));
	if (armed)
		atomic_fetch_add(&m->sample_armed, 1);
	return armed;
}

void mem_sample_tick(struct wave_mem *m)
{
	uint32_t armed = 0;
	uint64_t looked = 0, total = 0;

	pthread_rwlock_rdlock(&m->rlock);
	for (size_t k = 0; k < m->n_regions; k++)
		if (m->regions[k]->managed && m->regions[k]->far)
			total += m->regions[k]->n_chunks;
	while (armed < m->sample_chunks && looked < total) {
		struct mem_region *r;

		if (m->sample_region >= m->n_regions)
			m->sample_region = m->sample_next = 0;
		r = m->regions[m->sample_region];
		if (!r->managed || !r->far || m->sample_next >= r->n_chunks) {
			m->sample_region++;
			m->sample_next = 0;
			continue;
		}
		looked++;
		armed += arm(m, r, m->sample_next++);
	}
	pthread_rwlock_unlock(&m->rlock);
}

WAVE_API int wave_mem_report_access(struct wave_mem *m, const void *const *addrs, size_t n)
{
	int in = 0;

	if (!m || (n && !addrs) || n > INT32_MAX)
		return -EINVAL;
	pthread_rwlock_rdlock(&m->rlock);
	for (size_t k = 0; k < n; k++) {
		struct mem_region *r = mem_region_at(m, (uintptr_t)addrs[k]);

		if (!r)
			continue;
		mem_access(m, r, ((uintptr_t)addrs[k] - r->base) >> r->chunk_shift);
		in++;
	}
	pthread_rwlock_unlock(&m->rlock);
	atomic_fetch_add(&m->reported, (uint64_t)in);
	atomic_fetch_add(&m->reported_outside, n - (uint64_t)in);
	return in;
}

/* DAMON's virtual-address operations set (CONFIG_DAMON_VADDR) shows in
 * the kernel's symbols as damon_va_*; its physical one as damon_pa_*. */
WAVE_API int wave_mem_damon_vaddr(struct wave_error *err)
{
	FILE *f;
	char line[256];
	bool va = false, pa = false;

	wave_error_clear(err);
	if (access("/sys/kernel/mm/damon/admin", F_OK) != 0) {
		wave_error_set(err, 0, "damon", 0, 0,
			       "this kernel has no DAMON sysfs interface "
			       "(/sys/kernel/mm/damon/admin)");
		return 0;
	}
	f = fopen("/proc/kallsyms", "re");
	if (!f)
		return wave_error_set(err, -errno, "damon", 0, 0, "cannot read /proc/kallsyms");
	while (!va && fgets(line, sizeof(line), f)) {
		va |= strstr(line, " damon_va_") != NULL;
		pa |= strstr(line, " damon_pa_") != NULL;
	}
	fclose(f);
	if (va)
		return 1;
	wave_error_set(err, 0, "damon", 0, 0,
		       "this kernel's DAMON has no virtual-address monitoring "
		       "(CONFIG_DAMON_VADDR)%s",
		       pa ? "; it has physical-address monitoring (DAMON_PADDR) only" : "");
	return 0;
}
