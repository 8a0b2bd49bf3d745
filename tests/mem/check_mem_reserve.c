/* SPDX-License-Identifier: MIT */
/*
 * The reserve (wave_mem_opts.reserve_bytes) and its demoter thread: the
 * reserve is refilled after a registration and after faults use it; a
 * fault that finds reserve room never demotes on its path; a full store
 * stops the demoter without losing a byte; threads fault and write while
 * the demoter demotes, every word checked; the options are checked.
 * Nothing here depends on timing: waits are for a state the demoter must
 * reach, with a deadline only so that a broken demoter fails instead of
 * hanging.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "check_run.h"
#include "mem_util.h"

#define CHUNK (4 * KIB)
#define CAP (16 * CHUNK)
#define RESERVE (4 * CHUNK)
#define DEADLINE_S 120

static struct wave_mem *reserve_new(uint64_t far_cap, uint64_t min_resident_ns)
{
	return mem_reserve_new(CAP, far_cap, min_resident_ns, RESERVE);
}

/* Words no codec shrinks (xorshift64). */
static void fill_random(uint64_t *p, size_t len)
{
	uint64_t x = 88172645463325252ull;

	for (size_t k = 0; k < len / 8; k++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		p[k] = x;
	}
}

static bool random_intact(const uint64_t *p, size_t len)
{
	uint64_t x = 88172645463325252ull;

	for (size_t k = 0; k < len / 8; k++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		if (p[k] != x)
			return false;
	}
	return true;
}

/* A region of @len bytes filled with pattern(@salt), or random words when
 * @salt is 0, before it is registered (so that the demoter, woken by the
 * registration, demotes these bytes and not zeros a fill would race with). */
static uint64_t *region_filled(struct wave_mem *m, size_t len, uint64_t salt, uint32_t *id)
{
	struct wave_mem_region_opts ro;
	uint64_t *p = anon_map(len);

	if (salt)
		fill_pattern(p, len, salt);
	else
		fill_random(p, len);
	wave_mem_region_opts_init(&ro);
	ro.chunk_size = CHUNK;
	ck_assert_int_eq(wave_mem_region_register(m, p, len, &ro, id), 0);
	return p;
}

static struct wave_mem_stats stats(struct wave_mem *m)
{
	struct wave_mem_stats st;

	ck_assert_int_eq(wave_mem_stats(m, &st), 0);
	return st;
}

/* Waits until @done(stats) holds (a state the demoter must reach; its
 * counters are bumped just after the tiers' use changes, so a test waits
 * for both). */
static struct wave_mem_stats wait_for(struct wave_mem *m,
				      bool (*done)(const struct wave_mem_stats *), const char *what)
{
	struct wave_mem_stats st = stats(m);

	for (unsigned ms = 0; !done(&st); ms++) {
		ck_assert_msg(ms < DEADLINE_S * 1000, "%s: not after %u s (%llu bytes in tier 0)",
			      what, DEADLINE_S, (unsigned long long)st.tier_used[0]);
		usleep(1000);
		st = stats(m);
	}
	return st;
}

static uint64_t expect_demotions;

/* The whole reserve free, and at least expect_demotions counted. */
static bool refilled(const struct wave_mem_stats *st)
{
	return st->tier_used[0] <= CAP - RESERVE && st->local_demotions >= expect_demotions;
}

static void wait_refilled(struct wave_mem *m)
{
	wait_for(m, refilled, "the reserve refilled");
}

/* The first chunk of @p (of @n) in the far tier, or -1. */
static long far_chunk(struct wave_mem *m, uint32_t id, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (chunk_info(m, wave_mem_chunk_id(id, i)).tier == 1)
			return (long)i;
	return -1;
}

/* Registration puts a region four times the capacity in the fast tier:
 * the demoter, with no call from anyone, brings it down to the capacity
 * less the reserve. Then, five times: faults take reserve room (never
 * more than it holds), none of them demotes on its path, and the demoter
 * refills the reserve. Every byte checked at the end. */
START_TEST(t_refilled)
{
	struct wave_mem *m = reserve_new(0, 0);
	size_t len = 4 * CAP, n = len / CHUNK;
	uint32_t id;
	uint64_t *p = region_filled(m, len, 3, &id);
	struct wave_mem_stats st;

	expect_demotions = (len - (CAP - RESERVE)) / CHUNK;
	wait_refilled(m);
	ck_assert_uint_eq(stats(m).fault_demotions, 0);
	for (int round = 0; round < 5; round++) {
		/* As many faults as the reserve has chunks, less one: the tier
		 * stays within its capacity whatever the demoter does. */
		for (unsigned k = 0; k + 1 < RESERVE / CHUNK; k++) {
			long c = far_chunk(m, id, n);

			ck_assert_int_ge(c, 0);
			ck_assert_int_eq(check_pattern((char *)p + (size_t)c * CHUNK, CHUNK,
						       3 + (uint64_t)c * CHUNK / 8), -1);
			ck_assert_uint_eq(chunk_info(m, wave_mem_chunk_id(id, (uint64_t)c)).tier,
					  0);
		}
		wait_refilled(m);
		st = stats(m);
		ck_assert_uint_eq(st.fault_demotions, 0);
		ck_assert_uint_ge(st.far_faults, (round + 1) * (RESERVE / CHUNK - 1));
	}
	ck_assert_int_eq(check_pattern(p, len, 3), -1);
	ck_assert_int_eq(wave_mem_region_unregister(m, id), 0);
	ck_assert_int_eq(check_pattern(p, len, 3), -1);
	wave_mem_destroy(m);
	munmap(p, len);
}
END_TEST

/* Two demotions counted and their bytes gone from tier 0, and a third
 * refused as busy. */
static bool met_full_store(const struct wave_mem_stats *st)
{
	return st->aborted[WAVE_ABORT_BUSY] > 0 && st->local_demotions == 2 &&
	       st->tier_used[1] == 2 * CHUNK;
}

/* A store that holds two chunks of random bytes (they do not compress):
 * the demoter demotes two, is refused (busy, backpressure) and retries
 * only now and then; the tier stays over its capacity, no byte is lost,
 * and destroying the manager stops the demoter while it waits. */
START_TEST(t_store_full)
{
	struct wave_mem *m = reserve_new(2 * CHUNK, 0);
	size_t len = CAP + 4 * CHUNK;
	uint32_t id;
	uint64_t *p = region_filled(m, len, 0, &id);
	struct wave_mem_stats st;

	st = wait_for(m, met_full_store, "the demoter meeting the full store");
	ck_assert_uint_eq(st.local_demotions, 2);
	ck_assert_uint_eq(st.tier_used[0], len - 2 * CHUNK);
	ck_assert_uint_eq(st.tier_used[1], 2 * CHUNK);
	ck_assert_uint_eq(st.far_stored, 2 * CHUNK);
	ck_assert(random_intact(p, len));
	wave_mem_destroy(m);
	ck_assert(random_intact(p, len));
	munmap(p, len);
}
END_TEST

/*
 * Writers fault on a region four times the capacity while the demoter
 * demotes (the fault thread only when the reserve ran out). Each writer
 * owns one word of every page; round after round it checks that each of
 * its words holds what it wrote last and writes the next value, so a
 * write lost by a demotion or a stale page is seen at once. The writers
 * go on until the demoter has made DEMOTER_MIN demotions.
 */
#define WRITERS 3
#define ROUNDS 20
#define DEMOTER_MIN 300

struct race {
	struct wave_mem *m;
	uint64_t *p;
	size_t len;
	_Atomic int bad;
};

struct writer {
	struct race *r;
	unsigned t;
};

#define SKEW 5 /* race_word() */

/* Demotions the demoter made: every pressure demotion but the fault
 * thread's (no agent, no prestaged victims: all are the CLOCK's). */
static uint64_t demoter_made(struct wave_mem *m)
{
	struct wave_mem_stats st = stats(m);

	return st.local_demotions - st.fault_demotions;
}

static void *writer(void *arg)
{
	struct writer *w = arg;
	struct race *r = w->r;
	size_t pages = r->len / 4096;
	uint64_t *last = calloc(pages, sizeof(*last)); /* round written last, 0: none */
	uint64_t x = 0x9e3779b97f4a7c15ull * (w->t + 1);

	ck_assert_ptr_nonnull(last);
	for (uint64_t round = 1; round <= ROUNDS || demoter_made(r->m) < DEMOTER_MIN; round++) {
		/* Pages in a random order, so that the CLOCK finds cold ones. */
		for (size_t k = 0; k < pages && !atomic_load(&r->bad); k++) {
			size_t pg, i;
			uint64_t want;

			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			pg = x % pages;
			i = race_word(pg, w->t, SKEW);
			want = last[pg] ? last[pg] * 1000 + w->t : pattern(i + 9);
			if (r->p[i] != want && !atomic_exchange(&r->bad, 1))
				fprintf(stderr,
					"writer %u round %llu: word %zu is %llx, not %llx\n",
					w->t, (unsigned long long)round, i,
					(unsigned long long)r->p[i], (unsigned long long)want);
			r->p[i] = round * 1000 + w->t;
			last[pg] = round;
		}
		if (atomic_load(&r->bad))
			break;
	}
	free(last);
	return NULL;
}

START_TEST(t_race)
{
	struct race r = { .len = 4 * CAP };
	pthread_t t[WRITERS];
	struct writer w[WRITERS];
	struct wave_mem_stats st;
	uint32_t id;

	r.m = reserve_new(0, 0);
	r.p = region_filled(r.m, r.len, 9, &id);
	for (unsigned k = 0; k < WRITERS; k++) {
		w[k] = (struct writer){ &r, k };
		ck_assert_int_eq(pthread_create(&t[k], NULL, writer, &w[k]), 0);
	}
	for (unsigned k = 0; k < WRITERS; k++)
		pthread_join(t[k], NULL);
	ck_assert_int_eq(atomic_load(&r.bad), 0);
	race_check_words(r.p, r.len, SKEW, 9, WRITERS);
	st = stats(r.m);
	ck_assert_uint_ge(st.far_faults, 1);
	ck_assert_uint_ge(demoter_made(r.m), DEMOTER_MIN);
	printf("race: %llu far faults, %llu demotions by the demoter, %llu by the fault thread\n",
	       (unsigned long long)st.far_faults, (unsigned long long)demoter_made(r.m),
	       (unsigned long long)st.fault_demotions);
	ck_assert_int_eq(wave_mem_region_unregister(r.m, id), 0);
	wave_mem_destroy(r.m);
	munmap(r.p, r.len);
}
END_TEST

static int create_with(uint64_t reserve, int cpu, struct wave_error *err)
{
	struct wave_mem_opts o;
	struct wave_mem *m = NULL;
	int ret;

	mem_far_opts(&o, CAP, 0);
	o.reserve_bytes = reserve;
	o.demote_cpu = cpu;
	ret = wave_mem_create(&o, &m, err);
	wave_mem_destroy(m);
	return ret;
}

/* A reserve must be below the capacity; the CPU -1 or one that exists
 * and this process may use (the demoter fails to start otherwise, said). */
START_TEST(t_opts)
{
	struct wave_mem_opts o;
	struct wave_error err;
	cpu_set_t set;
	int cpu = -1;

	ck_assert_int_eq(wave_mem_opts_init(&o), 0);
	ck_assert_uint_eq(o.reserve_bytes, 0);
	ck_assert_int_eq(o.demote_cpu, -1);
	ck_assert_int_eq(create_with(CAP, -1, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.text, "reserve_bytes"));
	ck_assert_int_eq(create_with(RESERVE, -2, &err), -EINVAL);
	ck_assert_int_eq(create_with(RESERVE, CPU_SETSIZE, &err), -EINVAL);
	ck_assert_int_eq(create_with(RESERVE, -1, &err), 0);
	ck_assert_int_eq(sched_getaffinity(0, sizeof(set), &set), 0);
	for (int c = 0; c < CPU_SETSIZE && cpu < 0; c++)
		if (CPU_ISSET(c, &set))
			cpu = c;
	ck_assert_int_eq(create_with(RESERVE, cpu, &err), 0);
	ck_assert_int_eq(create_with(RESERVE, CPU_SETSIZE - 1, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.text, "demoter"));
	/* No slower tier: nothing to demote to, no demoter, no error. */
	o.tiers[0].capacity = CAP;
	o.reserve_bytes = RESERVE;
	{
		struct wave_mem *m = NULL;

		ck_assert_int_eq(wave_mem_create(&o, &m, &err), 0);
		wave_mem_destroy(m);
	}
}
END_TEST

/* A caller built before the reserve existed passes the struct's first
 * version (it ends at reserve_bytes): accepted, no reserve, no demoter;
 * one byte short of it, or larger than this library knows, refused. */
START_TEST(t_opts_first_version)
{
	struct wave_mem_opts o;
	struct wave_mem *m = NULL;
	struct wave_error err;

	ck_assert_int_eq(wave_mem_opts_init(&o), 0);
	o.tiers[0].capacity = CAP;
	o.reserve_bytes = CAP * 2; /* beyond the old size: never read */
	o.size = offsetof(struct wave_mem_opts, reserve_bytes);
	ck_assert_int_eq(wave_mem_create(&o, &m, &err), 0);
	wave_mem_destroy(m);
	o.size--;
	ck_assert_int_eq(wave_mem_create(&o, &m, &err), -EINVAL);
	o.size = sizeof(o) + 8;
	ck_assert_int_eq(wave_mem_create(&o, &m, &err), -EINVAL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("mem_reserve");
	TCase *tc = tcase_create("reserve");

	tcase_add_test(tc, t_opts);
	tcase_add_test(tc, t_opts_first_version);
	tcase_add_test(tc, t_refilled);
	tcase_add_test(tc, t_store_full);
	tcase_add_test(tc, t_race);
	suite_add_tcase(s, tc);
	return wave_check_run(s);
}
