/* SPDX-License-Identifier: MIT */
/*
 * The far tier: every byte survives demotion and the fault that brings it
 * back, on registered (anonymous) and managed (memfd) regions, with many
 * threads faulting and writing while chunks are demoted and promoted; a
 * full store is backpressure; unregistering aborts migrations in flight;
 * anti-thrash, the rate limit, prestaged victims, the CLOCK, the sampler;
 * a region whose home tier is a node prefers it, so chunks fault back
 * there; and all of it without privilege.
 */
#include <check.h>
#include <errno.h>
#include <numa.h>
#include <numaif.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_run.h"
#include "mem_util.h"

#define CHUNK (16 * KIB)

/* A region of @len bytes, registered anonymous memory or (@managed) one
 * the library makes, filled with pattern(@salt). */
static char *region_new(struct wave_mem *m, size_t len, bool managed, uint32_t *id)
{
	struct wave_mem_region_opts ro;
	void *p;

	wave_mem_region_opts_init(&ro);
	ro.chunk_size = CHUNK;
	if (managed) {
		ck_assert_int_eq(wave_mem_region_alloc(m, len, &ro, &p, id), 0);
	} else {
		p = anon_map(len);
		ck_assert_int_eq(wave_mem_region_register(m, p, len, &ro, id), 0);
	}
	fill_pattern(p, len, 7);
	return p;
}

static void region_gone(struct wave_mem *m, char *p, size_t len, bool managed, uint32_t id)
{
	ck_assert_int_eq(wave_mem_region_unregister(m, id), 0);
	if (!managed)
		munmap(p, len);
}

/* Pages of [@p, @p+@len) in memory (mincore(2): for a memfd, its page
 * cache). */
static size_t resident_pages(void *p, size_t len)
{
	unsigned char v[1024];
	size_t n = 0;

	ck_assert_uint_le(len / 4096, sizeof(v));
	ck_assert_int_eq(mincore(p, len, v), 0);
	for (size_t k = 0; k < len / 4096; k++)
		n += v[k] & 1;
	return n;
}

/* Every chunk out and back by a touch: the bytes, the tiers, the
 * sequence numbers, the counters. */
static void round_trip(bool managed)
{
	struct wave_mem *m = mem_far_new(0, 0, 0);
	size_t len = 64 * CHUNK, n = len / CHUNK;
	uint32_t id;
	char *p = region_new(m, len, managed, &id);
	struct wave_mem_stats st;

	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(migrate_now(m, wave_mem_chunk_id(id, i), 1), WAVE_COMMITTED);
	ck_assert_int_eq(wave_mem_stats(m, &st), 0);
	ck_assert_uint_eq(st.tier_used[0], 0);
	ck_assert_uint_eq(st.tier_used[1], len);
	ck_assert_uint_gt(st.far_stored, 0);
	ck_assert_uint_le(st.far_stored, len);
	ck_assert_uint_eq(chunk_info(m, wave_mem_chunk_id(id, 3)).seq, 1);
	ck_assert_uint_eq(resident_pages(p, len), 0); /* the frames were given back */
	ck_assert_int_eq(check_pattern(p, len, 7), -1); /* every chunk faults back */
	ck_assert_uint_eq(resident_pages(p, len), len / 4096);
	ck_assert_int_eq(wave_mem_stats(m, &st), 0);
	ck_assert_uint_eq(st.far_faults, n);
	ck_assert_uint_eq(st.tier_used[0], len);
	ck_assert_uint_eq(st.far_stored, 0);
	for (size_t i = 0; i < n; i++) {
		struct wave_mem_chunk_info ci = chunk_info(m, wave_mem_chunk_id(id, i));

		ck_assert_uint_eq(ci.tier, 0);
		ck_assert_uint_eq(ci.seq, 2);
		ck_assert(ci.flags & WAVE_MEM_CHUNK_ACCESSED);
	}
	/* And back by a decision (a prefetch), with no fault. */
	ck_assert_int_eq(migrate_now(m, wave_mem_chunk_id(id, 1), 1), WAVE_COMMITTED);
	ck_assert_int_eq(migrate_now(m, wave_mem_chunk_id(id, 1), 0), WAVE_COMMITTED);
	ck_assert_int_eq(check_pattern(p, len, 7), -1);
	ck_assert_int_eq(wave_mem_stats(m, &st), 0);
	ck_assert_uint_eq(st.far_faults, n);
	region_gone(m, p, len, managed, id);
	wave_mem_destroy(m);
}

START_TEST(t_round_trip_anon)
{
	round_trip(false);
}
END_TEST

START_TEST(t_round_trip_managed)
{
	round_trip(true);
}
END_TEST

/* The memory policy of the page at @p: its mode, and its node in *@node
 * (-1: none). */
static int policy_of(void *p, int *node)
{
	struct bitmask *bm = numa_allocate_nodemask();
	int mode = -1;

	ck_assert_int_eq(get_mempolicy(&mode, bm->maskp, bm->size + 1, p, MPOL_F_ADDR), 0);
	*node = -1;
	for (unsigned k = 0; k < bm->size; k++)
		if (numa_bitmask_isbitset(bm, k)) {
			*node = (int)k;
			break;
		}
	numa_free_nodemask(bm);
	return mode;
}

/* The node of the page at @p (move_pages' query mode). */
static int node_of(void *p)
{
	int status = -1;

	ck_assert_int_eq(numa_move_pages(0, 1, &p, NULL, &status, 0), 0);
	return status;
}

/* A chunk faults back onto its home tier's node, not the fault thread's:
 * the region prefers that node (one mbind of the region), which places
 * what the fault thread allocates for it (UFFDIO_COPY, the memfd's
 * pwrite()). With one node the page is on node 0 either way; the policy
 * says it was placed on purpose, and tests/mem/mem_numa2.c shows the
 * difference on two nodes. A tier anywhere (WAVE_MEM_NODE_ANY) leaves
 * the runtime's policy alone; unregistering gives it back. */
static void home_node(bool managed)
{
	struct wave_mem_opts o;
	struct wave_mem *m = NULL;
	size_t len = 8 * CHUNK;
	uint32_t id;
	char *p;
	int node;

	if (numa_available() < 0) {
		printf("check_mem_far: no NUMA in this kernel: the home node's policy is not "
		       "checked\n");
		return;
	}
	mem_opts_init(&o);
	o.n_tiers = 2;
	o.tiers[0].node = 0;
	o.tiers[1] = (struct wave_mem_tier){ WAVE_MEM_TIER_FAR, 0, 0 };
	ck_assert_int_eq(wave_mem_create(&o, &m, NULL), 0);
	p = region_new(m, len, managed, &id);
	ck_assert_int_eq(policy_of(p + 3 * CHUNK, &node), MPOL_PREFERRED);
	ck_assert_int_eq(node, 0);
	ck_assert_int_eq(migrate_now(m, wave_mem_chunk_id(id, 3), 1), WAVE_COMMITTED);
	ck_assert_int_eq(check_pattern(p, len, 7), -1); /* it faults back */
	ck_assert_uint_eq(chunk_info(m, wave_mem_chunk_id(id, 3)).tier, 0);
	for (size_t off = 3 * CHUNK; off < 4 * CHUNK; off += 4096)
		ck_assert_int_eq(node_of(p + off), 0);
	if (!managed) {
		ck_assert_int_eq(wave_mem_region_unregister(m, id), 0);
		ck_assert_int_eq(policy_of(p, &node), MPOL_DEFAULT);
		munmap(p, len);
	}
	wave_mem_destroy(m);
	/* A tier anywhere: the policy is not touched. */
	o.tiers[0].node = WAVE_MEM_NODE_ANY;
	ck_assert_int_eq(wave_mem_create(&o, &m, NULL), 0);
	p = region_new(m, len, managed, &id);
	ck_assert_int_eq(policy_of(p, &node), MPOL_DEFAULT);
	wave_mem_destroy(m);
	if (!managed)
		munmap(p, len);
}

START_TEST(t_home_node_anon)
{
	home_node(false);
}
END_TEST

START_TEST(t_home_node_managed)
{
	home_node(true);
}
END_TEST

/* Memory never touched: first touches are served with zeros, also after a
 * demotion of chunks only partly touched. */
START_TEST(t_first_touch)
{
	struct wave_mem *m = mem_far_new(0, 0, 0);
	size_t len = 16 * CHUNK;
	uint64_t *p = anon_map(len);
	struct wave_mem_region_opts ro;
	struct wave_mem_stats st;
	uint32_t id;

	wave_mem_region_opts_init(&ro);
	ro.chunk_size = CHUNK;
	ck_assert_int_eq(wave_mem_region_register(m, p, len, &ro, &id), 0);
	p[0] = 42;                    /* chunk 0, page 0 */
	p[CHUNK / 8 + 4096 / 8] = 43; /* chunk 1, page 1 */
	ck_assert_int_eq(wave_mem_stats(m, &st), 0);
	ck_assert_uint_ge(st.zero_fills, 2);
	for (size_t i = 0; i < 3; i++)
		ck_assert_int_eq(migrate_now(m, wave_mem_chunk_id(id, i), 1), WAVE_COMMITTED);
	for (size_t w = 0; w < len / 8; w++)
		ck_assert_uint_eq(p[w], w == 0 ? 42 : w == CHUNK / 8 + 4096 / 8 ? 43 : 0);
	wave_mem_destroy(m); /* unregisters: the memory stays the caller's */
	ck_assert_uint_eq(p[0], 42);
	munmap(p, len);
}
END_TEST

/*
 * Writers and migrators at once. Each writer owns one word of every page;
 * round after round it checks that each of its words still holds what it
 * wrote last and writes the next value, so a write lost by a demotion, a
 * byte misplaced by a fetch or a stale page is seen at once. Migrators
 * move random chunks between the tiers meanwhile; writers keep going
 * until the migrators have committed enough demotions.
 */
#define WRITERS 4
#define ROUNDS 60
#define DEMOTIONS 200

struct race {
	struct wave_mem *m;
	uint64_t *p;
	size_t len;
	uint32_t id;
	_Atomic int writers_left;
	_Atomic uint64_t demoted, promoted;
	_Atomic int bad;
};

struct writer {
	struct race *r;
	unsigned t;
};

#define SKEW 7 /* race_word() */

static void *writer(void *arg)
{
	struct writer *w = arg;
	struct race *r = w->r;
	size_t pages = r->len / 4096;

	for (uint64_t round = 1;
	     round <= ROUNDS || atomic_load(&r->demoted) < DEMOTIONS; round++) {
		for (size_t pg = 0; pg < pages; pg++) {
			size_t k = race_word(pg, w->t, SKEW);
			uint64_t want = round == 1 ? pattern(k + 7) : (round - 1) * 1000 + w->t;

			if (r->p[k] != want && !atomic_exchange(&r->bad, 1))
				fprintf(stderr,
					"writer %u round %llu: word %zu is %llx, not %llx\n",
					w->t, (unsigned long long)round, k,
					(unsigned long long)r->p[k], (unsigned long long)want);
			r->p[k] = round * 1000 + w->t;
		}
		if (atomic_load(&r->bad))
			break;
	}
	atomic_fetch_sub(&r->writers_left, 1);
	return NULL;
}

static void *migrator(void *arg)
{
	struct race *r = arg;
	uint64_t x = (uint64_t)(uintptr_t)&x | 1;
	size_t n = r->len / CHUNK;

	while (atomic_load(&r->writers_left) > 0) {
		uint64_t c;
		struct wave_mem_chunk_info ci = { .size = sizeof(ci) };
		int res;

		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		c = wave_mem_chunk_id(r->id, x % n);
		ck_assert_int_eq(wave_mem_chunk_info(r->m, c, &ci), 0);
		res = wave_mem_migrate(r->m, c, ci.seq, ci.tier ? 0 : 1);
		/* Racing faults and the other migrator: stale or busy, never
		 * invalid. */
		ck_assert_msg(res == WAVE_COMMITTED || res == WAVE_ABORT_STALE ||
			      res == WAVE_ABORT_NOT_ELIGIBLE, "result %d", res);
		if (res == WAVE_COMMITTED)
			atomic_fetch_add(ci.tier ? &r->promoted : &r->demoted, 1);
	}
	return NULL;
}

static void race(bool managed)
{
	struct race r = { .len = 32 * CHUNK, .writers_left = WRITERS };
	pthread_t wt[WRITERS], mt[2];
	struct writer w[WRITERS];
	struct wave_mem_stats st;

	r.m = mem_far_new(0, 0, 0);
	r.p = (uint64_t *)(void *)region_new(r.m, r.len, managed, &r.id);
	for (unsigned t = 0; t < WRITERS; t++) {
		w[t] = (struct writer){ &r, t };
		ck_assert_int_eq(pthread_create(&wt[t], NULL, writer, &w[t]), 0);
	}
	for (unsigned k = 0; k < 2; k++)
		ck_assert_int_eq(pthread_create(&mt[k], NULL, migrator, &r), 0);
	for (unsigned t = 0; t < WRITERS; t++)
		pthread_join(wt[t], NULL);
	for (unsigned k = 0; k < 2; k++)
		pthread_join(mt[k], NULL);
	ck_assert_int_eq(atomic_load(&r.bad), 0);
	race_check_words(r.p, r.len, SKEW, 7, WRITERS);
	ck_assert_int_eq(wave_mem_stats(r.m, &st), 0);
	ck_assert_uint_ge(st.far_faults, 1);
	printf("%s: %llu demotions, %llu promotions, %llu far faults\n",
	       managed ? "managed" : "anon", (unsigned long long)r.demoted,
	       (unsigned long long)r.promoted, (unsigned long long)st.far_faults);
	region_gone(r.m, (char *)r.p, r.len, managed, r.id);
	wave_mem_destroy(r.m);
}

START_TEST(t_race_anon)
{
	race(false);
}
END_TEST

START_TEST(t_race_managed)
{
	race(true);
}
END_TEST

/* Random bytes do not compress: a store of 4 chunks takes 4, and the
 * fifth demotion is refused as busy, its chunk intact where it was. */
START_TEST(t_store_full)
{
	struct wave_mem *m = mem_far_new(0, 4 * CHUNK, 0);
	size_t len = 8 * CHUNK;
	uint32_t id;
	char *p = region_new(m, len, false, &id);
	struct wave_mem_stats st;
	uint64_t x = 88172645463325252ull;

	for (size_t k = 0; k < len / 8; k++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		((uint64_t *)(void *)p)[k] = x;
	}
	for (size_t i = 0; i < 4; i++)
		ck_assert_int_eq(migrate_now(m, wave_mem_chunk_id(id, i), 1), WAVE_COMMITTED);
	ck_assert_int_eq(migrate_now(m, wave_mem_chunk_id(id, 4), 1), WAVE_ABORT_BUSY);
	ck_assert_uint_eq(chunk_info(m, wave_mem_chunk_id(id, 4)).tier, 0);
	ck_assert_uint_eq(chunk_info(m, wave_mem_chunk_id(id, 4)).seq, 0);
	p[4 * CHUNK + 5] ^= 1; /* writable at once: the protection was lifted */
	p[4 * CHUNK + 5] ^= 1;
	ck_assert_int_eq(wave_mem_stats(m, &st), 0);
	ck_assert_uint_eq(st.far_stored, 4 * CHUNK);
	ck_assert_uint_eq(st.aborted[WAVE_ABORT_BUSY], 1);
	x = 88172645463325252ull;
	for (size_t k = 0; k < len / 8; k++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		ck_assert_uint_eq(((uint64_t *)(void *)p)[k], x);
	}
	/* Back from the store, the room is there again. */
	ck_assert_int_eq(migrate_now(m, wave_mem_chunk_id(id, 4), 1), WAVE_COMMITTED);
	region_gone(m, p, len, false, id);
	wave_mem_destroy(m);
}
END_TEST

/* Unregistering while demotions run: each ends committed or aborted, and
 * the region the caller owns holds every byte afterwards. */
struct demoter {
	struct wave_mem *m;
	uint32_t id;
	size_t n;
	_Atomic int started;
};

static void *demote_all(void *arg)
{
	struct demoter *d = arg;

	atomic_fetch_add(&d->started, 1);
	for (int pass = 0; pass < 50; pass++)
		for (size_t i = 0; i < d->n; i++) {
			uint64_t c = wave_mem_chunk_id(d->id, i);
			struct wave_mem_chunk_info ci = { .size = sizeof(ci) };
			int res;

			if (wave_mem_chunk_info(d->m, c, &ci) < 0)
				return NULL; /* unregistered */
			res = wave_mem_migrate(d->m, c, ci.seq, ci.tier ? 0 : 1);
			ck_assert_msg(res == WAVE_COMMITTED || res == WAVE_ABORT_GONE ||
				      res == WAVE_ABORT_STALE || res == WAVE_ABORT_NOT_ELIGIBLE,
				      "result %d", res);
		}
	return NULL;
}

START_TEST(t_unregister_in_flight)
{
	struct wave_mem *m = mem_far_new(0, 0, 0);
	size_t len = 64 * CHUNK;
	uint32_t id;
	char *p = region_new(m, len, false, &id);
	struct demoter d = { m, id, len / CHUNK, 0 };
	pthread_t t[2];

	for (int k = 0; k < 2; k++)
		ck_assert_int_eq(pthread_create(&t[k], NULL, demote_all, &d), 0);
	while (atomic_load(&d.started) < 2)
		sched_yield();
	ck_assert_int_eq(wave_mem_region_unregister(m, id), 0);
	for (int k = 0; k < 2; k++)
		pthread_join(t[k], NULL);
	ck_assert_int_eq(check_pattern(p, len, 7), -1);
	munmap(p, len);
	wave_mem_destroy(m);
}
END_TEST

/* A chunk that just came back is not demoted again (anti-thrash). */
START_TEST(t_anti_thrash)
{
	struct wave_mem *m = mem_far_new(0, 0, 3600ull * 1000000000u);
	size_t len = 4 * CHUNK;
	uint32_t id;
	char *p = region_new(m, len, false, &id);
	uint64_t c = wave_mem_chunk_id(id, 1);

	ck_assert_int_eq(migrate_now(m, c, 1), WAVE_COMMITTED); /* never promoted: may go */
	ck_assert_int_eq(check_pattern(p, len, 7), -1);         /* faults back */
	ck_assert_int_eq(migrate_now(m, c, 1), WAVE_ABORT_NOT_ELIGIBLE);
	ck_assert_int_eq(migrate_now(m, wave_mem_chunk_id(id, 2), 1), WAVE_COMMITTED);
	region_gone(m, p, len, false, id);
	wave_mem_destroy(m);
}
END_TEST

/* The rate limit: a full bucket (2 MiB at this rate), then nothing until
 * it refills at 4 KiB/s (16 s per chunk: far longer than this test). */
START_TEST(t_rate_limit)
{
	struct wave_mem_opts o;
	struct wave_mem *m = NULL;
	struct wave_mem_region_opts ro;
	size_t len = 40 * 65536;
	char *p = anon_map(len);
	unsigned committed = 0, busy = 0;
	uint32_t id;

	mem_opts_init(&o);
	o.n_tiers = 2;
	o.tiers[1] = (struct wave_mem_tier){ WAVE_MEM_TIER_NUMA, WAVE_MEM_NODE_ANY, 0 };
	o.migrate_bps = 4096;
	ck_assert_int_eq(wave_mem_create(&o, &m, NULL), 0);
	wave_mem_region_opts_init(&ro);
	ck_assert_int_eq(wave_mem_region_register(m, p, len, &ro, &id), 0);
	for (size_t i = 0; i < 40; i++) {
		int res = migrate_now(m, wave_mem_chunk_id(id, i), 1);

		committed += res == WAVE_COMMITTED;
		busy += res == WAVE_ABORT_BUSY;
	}
	ck_assert_uint_ge(committed, 32);
	ck_assert_uint_le(committed, 34); /* a loaded machine may take 32 s */
	ck_assert_uint_eq(committed + busy, 40);
	wave_mem_destroy(m);
	munmap(p, len);
}
END_TEST

static uint64_t used0(struct wave_mem *m)
{
	struct wave_mem_stats st;

	ck_assert_int_eq(wave_mem_stats(m, &st), 0);
	return st.tier_used[0];
}

/* Pressure: prestaged victims go first, in order; then the CLOCK spares
 * what was accessed. A fault that overfills the fast tier is relieved by
 * the fault thread with no call from anyone. */
START_TEST(t_pressure)
{
	struct wave_mem *m = mem_far_new(12 * CHUNK, 0, 0);
	size_t len = 16 * CHUNK;
	uint32_t id;
	char *p = region_new(m, len, false, &id);
	struct wave_mem_victim v[2] = { { wave_mem_chunk_id(id, 9), 0 },
					{ wave_mem_chunk_id(id, 5), 0 } };
	const void *hot[2] = { p, p + CHUNK };
	struct wave_mem_stats st;

	ck_assert_int_eq(wave_mem_prestage_victims(m, v, 2), 0);
	ck_assert_int_eq(wave_mem_report_access(m, hot, 2), 2); /* chunks 0, 1 are hot */
	ck_assert_int_eq(wave_mem_relieve(m), 4);
	ck_assert_uint_eq(used0(m), 12 * CHUNK);
	ck_assert_uint_eq(chunk_info(m, v[0].chunk).tier, 1);
	ck_assert_uint_eq(chunk_info(m, v[1].chunk).tier, 1);
	ck_assert_uint_eq(chunk_info(m, wave_mem_chunk_id(id, 0)).tier, 0);
	ck_assert_uint_eq(chunk_info(m, wave_mem_chunk_id(id, 1)).tier, 0);
	ck_assert_uint_eq(chunk_info(m, wave_mem_chunk_id(id, 2)).tier, 1);
	ck_assert_uint_eq(chunk_info(m, wave_mem_chunk_id(id, 3)).tier, 1);
	ck_assert_int_eq(wave_mem_stats(m, &st), 0);
	ck_assert_uint_eq(st.victims_used, 2);
	ck_assert_uint_eq(st.local_demotions, 2);
	/* A victim whose seq moved on is refused, and the next one taken. */
	v[0] = (struct wave_mem_victim){ wave_mem_chunk_id(id, 10), 5 };
	v[1] = (struct wave_mem_victim){ wave_mem_chunk_id(id, 11), 0 };
	ck_assert_int_eq(wave_mem_prestage_victims(m, v, 2), 0);
	ck_assert_int_eq(check_pattern(p + 9 * CHUNK, CHUNK, 7 + 9 * CHUNK / 8), -1);
	while (used0(m) > 12 * CHUNK) /* the fault thread relieves after the fault */
		usleep(1000);
	ck_assert_uint_eq(chunk_info(m, wave_mem_chunk_id(id, 11)).tier, 1);
	ck_assert_uint_eq(chunk_info(m, wave_mem_chunk_id(id, 10)).tier, 0);
	ck_assert_int_eq(check_pattern(p, len, 7), -1);
	region_gone(m, p, len, false, id);
	wave_mem_destroy(m);
}
END_TEST

/* A far fault soon after the demotion (fewer pages demoted since than an
 * eighth of the home tier's capacity: 32 here) is a refault; one after
 * more departures, or a return by a decision, is not. */
START_TEST(t_refault_flag)
{
	struct wave_mem *m = mem_far_new(64 * CHUNK, 0, 0);
	size_t len = 32 * CHUNK;
	uint32_t id;
	char *p = region_new(m, len, false, &id);
	uint64_t a = wave_mem_chunk_id(id, 0), b = wave_mem_chunk_id(id, 1);
	uint64_t c = wave_mem_chunk_id(id, 10);

	ck_assert_int_eq(migrate_now(m, a, 1), WAVE_COMMITTED);
	ck_assert_int_eq(check_pattern(p, CHUNK, 7), -1); /* back at once */
	ck_assert(chunk_info(m, a).flags & WAVE_MEM_CHUNK_ACTIVE);
	ck_assert_int_eq(migrate_now(m, a, 1), WAVE_COMMITTED);
	ck_assert(!(chunk_info(m, a).flags & WAVE_MEM_CHUNK_ACTIVE)); /* far */
	/* b back after 8 chunks (32 pages) left: too late; c after 7: soon. */
	ck_assert_int_eq(migrate_now(m, b, 1), WAVE_COMMITTED);
	for (uint32_t i = 2; i < 10; i++)
		ck_assert_int_eq(migrate_now(m, wave_mem_chunk_id(id, i), 1), WAVE_COMMITTED);
	ck_assert_int_eq(check_pattern(p + CHUNK, CHUNK, 7 + CHUNK / 8), -1);
	ck_assert(!(chunk_info(m, b).flags & WAVE_MEM_CHUNK_ACTIVE));
	ck_assert_int_eq(migrate_now(m, c, 1), WAVE_COMMITTED);
	for (uint32_t i = 11; i < 18; i++)
		ck_assert_int_eq(migrate_now(m, wave_mem_chunk_id(id, i), 1), WAVE_COMMITTED);
	ck_assert_int_eq(check_pattern(p + 10 * CHUNK, CHUNK, 7 + 10 * CHUNK / 8), -1);
	ck_assert(chunk_info(m, c).flags & WAVE_MEM_CHUNK_ACTIVE);
	/* Back by a decision, untouched: no refault. */
	ck_assert_int_eq(migrate_now(m, a, 0), WAVE_COMMITTED);
	ck_assert(!(chunk_info(m, a).flags & WAVE_MEM_CHUNK_ACTIVE));
	ck_assert_int_eq(check_pattern(p, len, 7), -1);
	region_gone(m, p, len, false, id);
	wave_mem_destroy(m);
}
END_TEST

/* The far chunk of @n, and a resident one other than chunk 0 and @far. */
static void far_and_other(struct wave_mem *m, uint32_t id, uint32_t n, uint32_t *far,
			  uint32_t *other)
{
	*far = *other = n;
	for (uint32_t i = 0; i < n; i++) {
		struct wave_mem_chunk_info ci = chunk_info(m, wave_mem_chunk_id(id, i));

		if (ci.tier == 1)
			*far = i;
		else if (i && !(ci.flags & WAVE_MEM_CHUNK_BUSY))
			*other = i;
	}
	ck_assert_uint_lt(*far, n);
	ck_assert_uint_lt(*other, n);
}

/* Rounds of the clock hand over @n chunks (room for @n - 1) until chunk
 * 0 is far; how often it picked each in @picks. Each round brings the far
 * chunk back by a touch, after another went out and back by decisions
 * (so that the touch is no refault); the relief after the fault demotes
 * the hand's pick. Every chunk but 0 goes at its first sweep without an
 * access (each came back by a fault, an access: its next sweep spares it). */
static uint32_t sweep_until_far(struct wave_mem *m, uint32_t id, char *p, uint32_t n,
				uint32_t *picks)
{
	uint32_t far, other, rounds = 0;

	while (chunk_info(m, wave_mem_chunk_id(id, 0)).tier == 0 && rounds++ < 100) {
		far_and_other(m, id, n, &far, &other);
		ck_assert_int_eq(migrate_now(m, wave_mem_chunk_id(id, other), 1), WAVE_COMMITTED);
		ck_assert_int_eq(migrate_now(m, wave_mem_chunk_id(id, other), 0), WAVE_COMMITTED);
		ck_assert_int_eq(check_pattern(p + far * CHUNK, CHUNK, 7 + far * CHUNK / 8), -1);
		while (used0(m) > (n - 1) * CHUNK)
			usleep(1000);
		ck_assert(!(chunk_info(m, wave_mem_chunk_id(id, far)).flags &
			    WAVE_MEM_CHUNK_ACTIVE));
		far_and_other(m, id, n, &far, &other);
		picks[far]++;
	}
	return rounds;
}

/* Sweeps @m's region @id (@n chunks at @p) until chunk 0 went far, then
 * checks that it was picked once, at last, after every other chunk twice
 * or more: it was spared until three sweeps in a row found it
 * unaccessed, and demoted at the fourth (the others go at their first).
 * Every byte is checked; the region and @m go. */
static void check_spared(struct wave_mem *m, uint32_t id, char *p, uint32_t n)
{
	uint32_t picks[9] = { 0 };

	ck_assert_uint_le(n, 9);
	sweep_until_far(m, id, p, n, picks);
	ck_assert_uint_eq(picks[0], 1);
	for (uint32_t i = 1; i < n; i++)
		ck_assert_uint_ge(picks[i], 2);
	ck_assert_int_eq(check_pattern(p, n * CHUNK, 7), -1);
	region_gone(m, p, n * CHUNK, false, id);
	wave_mem_destroy(m);
}

/* The clock hand spares a chunk that refaulted for a while, not for ever
 * (nine chunks, room for eight). */
START_TEST(t_refault_clock)
{
	const uint32_t n = 9;
	struct wave_mem *m = mem_far_new(8 * CHUNK, 0, 0);
	uint32_t id;
	char *p = region_new(m, n * CHUNK, false, &id);
	uint64_t c0 = wave_mem_chunk_id(id, 0);

	ck_assert_int_eq(wave_mem_relieve(m), 1); /* the hand starts at chunk 0 */
	ck_assert_uint_eq(chunk_info(m, c0).tier, 1);
	ck_assert_int_eq(check_pattern(p, CHUNK, 7), -1); /* back at once: a refault */
	while (used0(m) > 8 * CHUNK)
		usleep(1000);
	ck_assert(chunk_info(m, c0).flags & WAVE_MEM_CHUNK_ACTIVE);
	check_spared(m, id, p, n);
}
END_TEST

/* So does it a chunk found accessed in two sweeps in a row. */
START_TEST(t_active_clock)
{
	const uint32_t n = 9;
	struct wave_mem *m = mem_far_new(8 * CHUNK, 0, 0);
	uint32_t id;
	char *p = region_new(m, n * CHUNK, false, &id);
	const void *a[1] = { p };

	ck_assert_int_eq(wave_mem_report_access(m, a, 1), 1);
	ck_assert_int_eq(wave_mem_relieve(m), 1); /* spares chunk 0, takes 1 */
	ck_assert_uint_eq(chunk_info(m, wave_mem_chunk_id(id, 1)).tier, 1);
	ck_assert(!(chunk_info(m, wave_mem_chunk_id(id, 0)).flags & WAVE_MEM_CHUNK_ACTIVE));
	ck_assert_int_eq(wave_mem_report_access(m, a, 1), 1); /* accessed again */
	check_spared(m, id, p, n);
}
END_TEST

/* The sampler drops the mapping of managed chunks; a touch is a minor
 * fault that marks the chunk accessed; an untouched one stays armed. */
START_TEST(t_sampler)
{
	struct wave_mem_opts o;
	struct wave_mem *m = NULL;
	struct wave_mem_region_opts ro;
	struct wave_mem_stats st, hits0;
	size_t len = 8 * CHUNK;
	uint32_t id;
	char *p;

	mem_opts_init(&o);
	o.sample_chunks = 8;
	o.sample_period_ns = 1000000;
	ck_assert_int_eq(wave_mem_create(&o, &m, NULL), 0);
	wave_mem_region_opts_init(&ro);
	ro.chunk_size = CHUNK;
	ck_assert_int_eq(wave_mem_region_alloc(m, len, &ro, (void **)&p, &id), 0);
	fill_pattern(p, len, 3);
	/* Chunks 2 and 5 armed, and not touched since (nothing touches them). */
	while (!(chunk_info(m, wave_mem_chunk_id(id, 2)).flags & WAVE_MEM_CHUNK_SAMPLED) ||
	       !(chunk_info(m, wave_mem_chunk_id(id, 5)).flags & WAVE_MEM_CHUNK_SAMPLED))
		usleep(1000);
	ck_assert_int_eq(wave_mem_stats(m, &hits0), 0);
	ck_assert_int_eq(check_pattern(p + 2 * CHUNK, CHUNK, 3 + 2 * CHUNK / 8), -1);
	ck_assert(chunk_info(m, wave_mem_chunk_id(id, 2)).flags & WAVE_MEM_CHUNK_ACCESSED);
	ck_assert(chunk_info(m, wave_mem_chunk_id(id, 5)).flags & WAVE_MEM_CHUNK_SAMPLED);
	ck_assert_int_eq(wave_mem_stats(m, &st), 0);
	ck_assert_uint_ge(st.sample_hits, hits0.sample_hits + 1);
	ck_assert_uint_ge(st.sample_armed, 2);
	ck_assert_uint_eq(chunk_info(m, wave_mem_chunk_id(id, 2)).seq, 0);
	ck_assert_int_eq(check_pattern(p, len, 3), -1);
	wave_mem_destroy(m);
}
END_TEST

static bool sysctl_zero(const char *path)
{
	FILE *f = fopen(path, "re");
	int v = -1;

	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v == 0;
}

/* As a user with no capability at all, where vm.unprivileged_userfaultfd
 * may be 0: UFFD_USER_MODE_ONLY is granted, and the far tier works. */
START_TEST(t_unprivileged)
{
	pid_t pid;
	int status;

	if (geteuid() != 0) {
		round_trip(false); /* unprivileged already */
		return;
	}
	pid = test_fork();
	if (pid == 0) {
		if (setgid(65534) || setuid(65534))
			_exit(3);
		prctl(PR_SET_DUMPABLE, 1); /* /proc/self is ours again */
		if (sysctl_zero("/proc/sys/vm/unprivileged_userfaultfd")) {
			/* The control: without UFFD_USER_MODE_ONLY, refused. */
			errno = 0;
			if (syscall(SYS_userfaultfd, O_CLOEXEC) >= 0 || errno != EPERM)
				_exit(4);
		}
		round_trip(false);
		round_trip(true);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("mem_far");
	TCase *tc = tcase_create("far");

	tcase_add_test(tc, t_round_trip_anon);
	tcase_add_test(tc, t_round_trip_managed);
	tcase_add_test(tc, t_first_touch);
	tcase_add_test(tc, t_home_node_anon);
	tcase_add_test(tc, t_home_node_managed);
	tcase_add_test(tc, t_race_anon);
	tcase_add_test(tc, t_race_managed);
	tcase_add_test(tc, t_store_full);
	tcase_add_test(tc, t_unregister_in_flight);
	tcase_add_test(tc, t_anti_thrash);
	tcase_add_test(tc, t_rate_limit);
	tcase_add_test(tc, t_pressure);
	tcase_add_test(tc, t_refault_flag);
	tcase_add_test(tc, t_refault_clock);
	tcase_add_test(tc, t_active_clock);
	tcase_add_test(tc, t_sampler);
	tcase_add_test(tc, t_unprivileged);
	suite_add_tcase(s, tc);
	return wave_check_run(s);
}
