/* SPDX-License-Identifier: MIT */
/*
 * The host side of the mem domain (include/wave/mem.h): the manager, its
 * regions and their chunks' state words, and the checks of every call.
 * Migrations are in mem_txn.c, the far tier in mem_far.c.
 */
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <wave/mem.h>

#include "../../core/core.h"
#include "mem_impl.h"
#include "mem_store.h"

/* ---- chunks ------------------------------------------------------------------ */

uint32_t mem_now_ms(const struct wave_mem *m)
{
	return (uint32_t)((wave_now_ns() - m->t0) / 1000000u);
}

bool mem_chunk_lock(struct mem_region *r, uint64_t i, uint64_t *old)
{
	uint64_t s = atomic_load(&r->state[i]);

	do {
		if (s & CS_BUSY)
			return false;
	} while (!atomic_compare_exchange_weak(&r->state[i], &s, s | CS_BUSY));
	*old = s;
	return true;
}

void mem_chunk_unlock(struct mem_region *r, uint64_t i, uint32_t tier, bool bump)
{
	uint64_t s = atomic_load(&r->state[i]), n;

	do {
		n = (s & ~(CS_TIER_MASK | CS_BUSY | CS_SAMPLED)) | tier;
		if (bump)
			n += CS_SEQ_ONE;
	} while (!atomic_compare_exchange_weak(&r->state[i], &s, n));
}

/* ---- the region table (rlock held) ------------------------------------------ */

/* The index of the first region ending after @addr. */
static size_t region_pos(const struct wave_mem *m, uintptr_t addr)
{
	size_t lo = 0, hi = m->n_regions;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (m->regions[mid]->base + m->regions[mid]->len <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct mem_region *mem_region_at(struct wave_mem *m, uintptr_t addr)
{
	size_t k = region_pos(m, addr);

	return k < m->n_regions && m->regions[k]->base <= addr ? m->regions[k] : NULL;
}

/* Few regions: a linear walk. */
struct mem_region *mem_region_id(struct wave_mem *m, uint32_t id)
{
	for (size_t k = 0; k < m->n_regions; k++)
		if (m->regions[k]->id == id)
			return m->regions[k];
	return NULL;
}

/* ---- making and unmaking --------------------------------------------------- */

WAVE_API int wave_mem_opts_init(struct wave_mem_opts *o)
{
	if (!o)
		return -EINVAL;
	memset(o, 0, sizeof(*o));
	o->size = sizeof(*o);
	o->n_tiers = 1;
	o->codec = WAVE_MEM_CODEC_LZ4;
	o->tiers[0] = (struct wave_mem_tier){ WAVE_MEM_TIER_NUMA, WAVE_MEM_NODE_ANY, 0 };
	o->min_resident_ns = 100000000u;
	o->sample_period_ns = 10000000u;
	o->agent_tick_ns = 10000000u;
	o->agent_chunk_size = 64u << 10;
	o->demote_cpu = -1;
	return 0;
}

static int check_opts(const struct wave_mem_opts *o, struct wave_error *err)
{
	if (o->n_tiers == 0 || o->n_tiers > WAVE_MEM_MAX_TIERS)
		return wave_error_set(err, -EINVAL, "mem", 0, 0, "n_tiers %u is not 1..%u",
				      o->n_tiers, WAVE_MEM_MAX_TIERS);
	if (o->tiers[0].kind != WAVE_MEM_TIER_NUMA)
		return wave_error_set(err, -EINVAL, "mem", 0, 0, "tier 0 must be a NUMA tier");
	for (uint32_t t = 1; t < o->n_tiers; t++) {
		uint32_t k = o->tiers[t].kind;

		if (k != WAVE_MEM_TIER_NUMA && k != WAVE_MEM_TIER_FAR)
			return wave_error_set(err, -EINVAL, "mem", 0, 0,
					      "tier %u: unknown kind %u", t, k);
		if (k == WAVE_MEM_TIER_FAR && t != o->n_tiers - 1)
			return wave_error_set(err, -EINVAL, "mem", 0, 0,
					      "tier %u: the far tier must be the last", t);
	}
	if (o->demote_cpu < -1 || o->demote_cpu >= CPU_SETSIZE)
		return wave_error_set(err, -EINVAL, "mem", 0, 0, "demote_cpu %d is not -1..%d",
				      o->demote_cpu, CPU_SETSIZE - 1);
	for (uint32_t t = 0; o->reserve_bytes && t + 1 < o->n_tiers; t++)
		if (o->tiers[t].capacity && o->reserve_bytes >= o->tiers[t].capacity)
			return wave_error_set(err, -EINVAL, "mem", 0, 0,
					      "reserve_bytes %llu is not below tier %u's capacity "
					      "%llu", (unsigned long long)o->reserve_bytes, t,
					      (unsigned long long)o->tiers[t].capacity);
	if (o->codec >= WAVE_MEM_CODEC_COUNT)
		return wave_error_set(err, -EINVAL, "mem", 0, 0, "unknown codec %u", o->codec);
	if (o->fault_signal > 1)
		return wave_error_set(err, -EINVAL, "mem", 0, 0, "fault_signal is 0 or 1, not %u",
				      o->fault_signal);
	if (o->fault_signal && o->codec == WAVE_MEM_CODEC_ZSTD)
		return wave_error_set(err, -EINVAL, "mem", 0, 0,
				      "fault_signal needs the LZ4 codec or none: zstd's decoder "
				      "allocates, which a signal handler may not");
	if (o->sample_period_ns < 1000000u)
		return wave_error_set(err, -EINVAL, "mem", 0, 0,
				      "sample_period_ns must be at least 1 ms");
	if (o->agent_tick_ns < 1000000u)
		return wave_error_set(err, -EINVAL, "mem", 0, 0,
				      "agent_tick_ns must be at least 1 ms");
	if (o->agent_chunk_size < WAVE_MEM_CHUNK_MIN || o->agent_chunk_size > WAVE_MEM_CHUNK_MAX ||
	    (o->agent_chunk_size & (o->agent_chunk_size - 1)))
		return wave_error_set(err, -EINVAL, "mem", 0, 0,
				      "agent_chunk_size %llu is not a power of two from 4 KiB "
				      "to 2 MiB", (unsigned long long)o->agent_chunk_size);
	return 0;
}

static void regions_free_all(struct wave_mem *m);

WAVE_API void wave_mem_destroy(struct wave_mem *m)
{
	if (!m)
		return;
	mem_demoter_stop(m);
	regions_free_all(m);
	mem_far_close(m);
	/* Last: the fault thread, stopped now, recorded changes through it;
	 * the agent hears the regions go, then a goodbye. */
	mem_link_close(m);
	if (m->store)
		m->store->ops->destroy(m->store);
	free(m->regions);
	free(m->victims);
	free(m->avictims);
	pthread_rwlock_destroy(&m->rlock);
	pthread_mutex_destroy(&m->plock);
	mem_demoter_fini(m);
	free(m);
}

WAVE_API int wave_mem_create(const struct wave_mem_opts *opts, struct wave_mem **out,
			     struct wave_error *err)
{
	struct wave_mem_opts o;
	struct wave_mem *m;
	int ret;

	wave_error_clear(err);
	wave_mem_opts_init(&o);
	/* The first version ended before reserve_bytes. */
	if (!out || (opts && wave_struct_copy(&o, sizeof(o), opts, opts->size,
					      offsetof(struct wave_mem_opts, reserve_bytes),
					      "struct wave_mem_opts") < 0))
		return -EINVAL;
	ret = check_opts(&o, err);
	if (ret)
		return ret;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	pthread_rwlock_init(&m->rlock, NULL);
	pthread_mutex_init(&m->plock, NULL);
	mem_demoter_init(m);
	m->uffd = m->stop_fd = m->pidfd = m->kick_fd = -1;
	m->fault_signal = o.fault_signal;
	m->agent_uri = o.agent_uri != NULL;
	m->n_tiers = o.n_tiers;
	memcpy(m->tiers, o.tiers, sizeof(m->tiers));
	m->far_tier = o.tiers[o.n_tiers - 1].kind == WAVE_MEM_TIER_FAR ? (int)o.n_tiers - 1 : -1;
	m->migrate_bps = o.migrate_bps;
	m->min_resident_ns = o.min_resident_ns;
	m->sample_chunks = o.sample_chunks;
	m->sample_period_ns = o.sample_period_ns;
	m->reserve = o.n_tiers > 1 ? o.reserve_bytes : 0;
	m->demote_cpu = o.demote_cpu;
	m->next_id = 1;
	m->t0 = wave_now_ns();
	m->tokens_at = m->t0;
	m->tokens = (double)WAVE_MEM_CHUNK_MAX; /* a full bucket (mem_txn.c) */
	if (m->tokens < (double)m->migrate_bps / 10.0)
		m->tokens = (double)m->migrate_bps / 10.0;
	ret = mem_numa_check(m, err);
	if (!ret && m->far_tier >= 0) {
		m->store = mem_store_local(o.tiers[m->far_tier].capacity, o.codec);
		ret = m->store ? 0 : -ENOMEM;
	}
	if (!ret && (m->far_tier >= 0 || m->sample_chunks))
		ret = mem_far_open(m, err);
	if (!ret && m->reserve)
		ret = mem_demoter_start(m, err);
	if (!ret && o.agent_uri)
		ret = mem_link_open(m, &o, err);
	if (ret) {
		wave_mem_destroy(m);
		return ret;
	}
	*out = m;
	return 0;
}

/* ---- regions ------------------------------------------------------------- */

WAVE_API int wave_mem_region_opts_init(struct wave_mem_region_opts *o)
{
	if (!o)
		return -EINVAL;
	memset(o, 0, sizeof(*o));
	o->size = sizeof(*o);
	o->chunk_size = 64u << 10;
	return 0;
}

/* Is [@a, @a+@len) private anonymous read-write memory, all of it? */
static bool private_anon(uintptr_t a, size_t len)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];
	uintptr_t at = a;

	if (!f)
		return false;
	while (at < a + len && fgets(line, sizeof(line), f)) {
		unsigned long lo, hi, ino;
		char perm[5], path[256] = "";

		if (sscanf(line, "%lx-%lx %4s %*s %*s %lu %255s", &lo, &hi, perm, &ino, path) < 4)
			continue;
		if (hi <= at || lo > at)
			continue;
		if (strcmp(perm, "rw-p") || ino ||
		    (path[0] && strcmp(path, "[heap]") && strncmp(path, "[anon:", 6)))
			break;
		at = hi;
	}
	fclose(f);
	return at >= a + len;
}

static int check_region(const struct wave_mem *m, uintptr_t a, size_t len,
			const struct wave_mem_region_opts *o)
{
	uint64_t cs = o->chunk_size;

	if (cs < WAVE_MEM_CHUNK_MIN || cs > WAVE_MEM_CHUNK_MAX || (cs & (cs - 1)))
		return -EINVAL;
	if (o->tier >= m->n_tiers || m->tiers[o->tier].kind != WAVE_MEM_TIER_NUMA)
		return -EINVAL;
	if (a % WAVE_MEM_CHUNK_MIN || len == 0 || len % cs || a + len < a)
		return -EINVAL;
	if ((len / cs) >> 32)
		return -EINVAL; /* more chunks than an id can name */
	if (m->agent_chunk && cs != m->agent_chunk)
		return -EINVAL; /* the agent counts tiers in chunks of one size */
	return 0;
}

static void region_free(struct mem_region *r)
{
	if (r->managed) {
		munmap((void *)r->base, r->len);
		close(r->memfd);
	}
	free(r->state);
	free(r->stamp);
	free(r->hits);
	free(r);
}

static struct mem_region *region_new(uintptr_t a, size_t len, const struct wave_mem_region_opts *o)
{
	struct mem_region *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->base = a;
	r->len = len;
	r->memfd = -1;
	r->chunk_size = o->chunk_size;
	r->chunk_shift = (unsigned)__builtin_ctzll(o->chunk_size);
	r->n_chunks = len / o->chunk_size;
	r->home_tier = o->tier;
	r->state = malloc(r->n_chunks * sizeof(*r->state));
	r->stamp = calloc(r->n_chunks, sizeof(*r->stamp));
	r->hits = calloc(r->n_chunks, sizeof(*r->hits));
	if (!r->state || !r->stamp || !r->hits) {
		region_free(r);
		return NULL;
	}
	for (uint64_t i = 0; i < r->n_chunks; i++)
		atomic_init(&r->state[i], (uint64_t)o->tier);
	return r;
}

/* A region whose home tier is a node prefers that node (@on), so that
 * pages the kernel allocates for it later land there whoever allocates
 * them (mem_numa.c); else its policy is left alone. Off: the default
 * again. Return: 0 or -errno. */
static int region_policy(const struct wave_mem *m, const struct mem_region *r, bool on)
{
	int node = m->tiers[r->home_tier].node, ret;

	if (node == WAVE_MEM_NODE_ANY)
		return 0;
	ret = mem_numa_prefer((void *)r->base, r->len, on ? node : WAVE_MEM_NODE_ANY);
	if (ret)
		wave_warn("mem: cannot set the memory policy of the region at %#lx to %s %d: %s",
			  (unsigned long)r->base, on ? "prefer node" : "the default, not node",
			  node, wave_strerror(-ret));
	return ret;
}

/* Enters @r in the table (and the userfaultfd). Return: 0 or an error,
 * @r untouched by the table then. */
static int region_add(struct wave_mem *m, struct mem_region *r)
{
	size_t k;
	int ret = 0;

	pthread_rwlock_wrlock(&m->rlock);
	k = region_pos(m, r->base);
	if (k < m->n_regions && m->regions[k]->base < r->base + r->len)
		ret = -EEXIST;
	else if (m->n_regions == m->cap_regions) {
		size_t cap = m->cap_regions ? 2 * m->cap_regions : 8;
		struct mem_region **v = realloc(m->regions, cap * sizeof(*v));

		if (v) {
			m->regions = v;
			m->cap_regions = cap;
		} else {
			ret = -ENOMEM;
		}
	}
	if (!ret)
		ret = region_policy(m, r, true);
	if (!ret && m->uffd >= 0 && (m->far_tier >= 0 || r->managed) &&
	    (ret = mem_far_register(m, r)) < 0)
		(void)region_policy(m, r, false);
	if (!ret) {
		memmove(&m->regions[k + 1], &m->regions[k],
			(m->n_regions - k) * sizeof(m->regions[0]));
		m->regions[k] = r;
		m->n_regions++;
		r->id = m->next_id++;
		atomic_fetch_add(&m->tier_used[r->home_tier], r->len);
		mem_link_region(m, r, true);
	}
	pthread_rwlock_unlock(&m->rlock);
	if (!ret)
		mem_demoter_kick(m);
	return ret;
}

static int region_make(struct wave_mem *m, void *addr, size_t len,
		       const struct wave_mem_region_opts *opts, struct mem_region **out)
{
	struct wave_mem_region_opts o;
	int ret;

	wave_mem_region_opts_init(&o);
	if (!m || (opts && wave_struct_copy(&o, sizeof(o), opts, opts->size,
					    WAVE_SIZE_TO(struct wave_mem_region_opts, tier),
					    "struct wave_mem_region_opts") < 0))
		return -EINVAL;
	ret = check_region(m, (uintptr_t)addr, len, &o);
	if (ret)
		return ret;
	*out = region_new((uintptr_t)addr, len, &o);
	return *out ? 0 : -ENOMEM;
}

WAVE_API int wave_mem_region_register(struct wave_mem *m, void *addr, size_t len,
				      const struct wave_mem_region_opts *opts, uint32_t *id)
{
	struct mem_region *r;
	int ret;

	if (!addr || !id)
		return -EINVAL;
	ret = region_make(m, addr, len, opts, &r);
	if (ret)
		return ret;
	if (m->far_tier >= 0 && !private_anon((uintptr_t)addr, len)) {
		wave_warn("mem: region at %p is not private anonymous read-write memory", addr);
		region_free(r);
		return -EINVAL;
	}
	ret = region_add(m, r);
	if (ret) {
		region_free(r);
		return ret;
	}
	*id = r->id;
	return 0;
}

WAVE_API int wave_mem_region_alloc(struct wave_mem *m, size_t len,
				   const struct wave_mem_region_opts *opts, void **addr,
				   uint32_t *id)
{
	struct mem_region *r;
	void *p;
	int fd, ret;

	if (!addr || !id || len == 0)
		return -EINVAL;
	fd = memfd_create("wave-mem", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)len) < 0 ||
	    (p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED) {
		ret = -errno;
		close(fd);
		return ret;
	}
	ret = region_make(m, p, len, opts, &r);
	if (ret) {
		munmap(p, len);
		close(fd);
		return ret;
	}
	r->managed = true;
	r->memfd = fd;
	ret = region_add(m, r);
	if (ret) {
		region_free(r);
		return ret;
	}
	*addr = p;
	*id = r->id;
	return 0;
}

/* Takes @r out of the table; wrlock held, so no migration of it runs. */
static void region_remove(struct wave_mem *m, struct mem_region *r)
{
	size_t k = region_pos(m, r->base);

	if (r->far && !r->managed)
		mem_far_restore(m, r);
	for (uint64_t i = 0; i < r->n_chunks; i++) {
		uint32_t t = cs_tier(atomic_load(&r->state[i]));

		if (r->far && t == (uint32_t)m->far_tier)
			m->store->ops->drop(m->store, wave_mem_chunk_id(r->id, i));
		atomic_fetch_sub(&m->tier_used[t], r->chunk_size);
	}
	mem_far_unregister(m, r);
	if (!r->managed) /* the runtime's memory again; a memfd's goes */
		(void)region_policy(m, r, false);
	/* The agent's victims in it are answered now, not at the next
	 * pressure, which may never come: the agent counts them in flight. */
	mem_avictims_gone(m, r->id);
	mem_link_region(m, r, false);
	memmove(&m->regions[k], &m->regions[k + 1], (m->n_regions - k - 1) * sizeof(m->regions[0]));
	m->n_regions--;
}

WAVE_API int wave_mem_region_unregister(struct wave_mem *m, uint32_t id)
{
	struct mem_region *r;

	if (!m || id == 0)
		return -EINVAL;
	/* Mark it first, so that migrations in flight abort instead of
	 * finishing, then wait for them with the write lock. */
	pthread_rwlock_rdlock(&m->rlock);
	r = mem_region_id(m, id);
	if (r)
		atomic_store(&r->dying, true);
	pthread_rwlock_unlock(&m->rlock);
	if (!r)
		return -ENOENT;
	pthread_rwlock_wrlock(&m->rlock);
	r = mem_region_id(m, id);
	if (r)
		region_remove(m, r);
	pthread_rwlock_unlock(&m->rlock);
	if (!r)
		return -ENOENT; /* another thread unregistered it meanwhile */
	region_free(r);
	return 0;
}

static void regions_free_all(struct wave_mem *m)
{
	while (m->n_regions)
		wave_mem_region_unregister(m, m->regions[m->n_regions - 1]->id);
}

/* ---- chunks, for the application ----------------------------------------- */

WAVE_API int wave_mem_chunk_of(struct wave_mem *m, const void *addr, uint64_t *chunk)
{
	struct mem_region *r;

	if (!m || !chunk)
		return -EINVAL;
	pthread_rwlock_rdlock(&m->rlock);
	r = mem_region_at(m, (uintptr_t)addr);
	if (r)
		*chunk = wave_mem_chunk_id(r->id, ((uintptr_t)addr - r->base) >> r->chunk_shift);
	pthread_rwlock_unlock(&m->rlock);
	return r ? 0 : -ENOENT;
}

WAVE_API int wave_mem_chunk_info(struct wave_mem *m, uint64_t chunk,
				 struct wave_mem_chunk_info *out)
{
	struct mem_region *r;
	uint64_t i = chunk & 0xffffffffu;
	int ret = -ENOENT;

	if (!m || !out || out->size < sizeof(*out))
		return -EINVAL;
	pthread_rwlock_rdlock(&m->rlock);
	r = mem_region_id(m, (uint32_t)(chunk >> 32));
	if (r && i < r->n_chunks) {
		uint64_t s = atomic_load(&r->state[i]);

		out->addr = (void *)mem_chunk_addr(r, i);
		out->len = r->chunk_size;
		out->tier = cs_tier(s);
		out->flags = (uint32_t)(((s & CS_BUSY) ? WAVE_MEM_CHUNK_BUSY : 0) |
					((s & CS_ACCESSED) ? WAVE_MEM_CHUNK_ACCESSED : 0) |
					((s & CS_SAMPLED) ? WAVE_MEM_CHUNK_SAMPLED : 0) |
					((s & CS_LIVES) ? WAVE_MEM_CHUNK_ACTIVE : 0));
		out->seq = cs_seq(s);
		ret = 0;
	}
	pthread_rwlock_unlock(&m->rlock);
	return ret;
}

WAVE_API int wave_mem_touch(const void *addr, size_t len)
{
	const volatile char *p = addr;

	if (!addr || (uintptr_t)addr + len < (uintptr_t)addr)
		return -EINVAL;
	for (size_t off = 0; off < len; off += WAVE_MEM_CHUNK_MIN)
		(void)p[off];
	if (len)
		(void)p[len - 1];
	return 0;
}

WAVE_API int wave_mem_stats(struct wave_mem *m, struct wave_mem_stats *o)
{
	if (!m || !o)
		return -EINVAL;
	memset(o, 0, sizeof(*o));
	for (uint32_t t = 0; t < m->n_tiers; t++)
		o->tier_used[t] = atomic_load(&m->tier_used[t]);
	o->far_stored = m->store ? m->store->ops->used(m->store) : 0;
	o->far_faults = atomic_load(&m->far_faults);
	o->zero_fills = atomic_load(&m->zero_fills);
	o->sample_armed = atomic_load(&m->sample_armed);
	o->sample_hits = atomic_load(&m->sample_hits);
	o->reported = atomic_load(&m->reported);
	o->reported_outside = atomic_load(&m->reported_outside);
	o->committed = atomic_load(&m->committed);
	for (unsigned k = 0; k < WAVE_RESULT_COUNT; k++)
		o->aborted[k] = atomic_load(&m->aborted[k]);
	o->victims_used = atomic_load(&m->victims_used);
	o->local_demotions = atomic_load(&m->local_demotions);
	o->fault_demotions = atomic_load(&m->fault_demotions);
	mem_link_stats(m, o);
	return 0;
}
