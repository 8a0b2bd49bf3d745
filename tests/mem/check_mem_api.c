/* SPDX-License-Identifier: MIT */
/*
 * The mem domain's host API: every bad argument refused, overlapping
 * regions refused, chunk ids and info, the transaction results of
 * wave_mem_migrate() between NUMA tiers, and the DAMON check.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <numa.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <wave/mem_msg.h> /* a design: its layouts are checked at compile time */

#include "check_run.h"
#include "mem_util.h"

static struct wave_mem *numa2_new(void)
{
	struct wave_mem_opts o;
	struct wave_mem *m = NULL;

	wave_mem_opts_init(&o);
	o.n_tiers = 2;
	o.tiers[1] = (struct wave_mem_tier){ WAVE_MEM_TIER_NUMA, WAVE_MEM_NODE_ANY, 0 };
	ck_assert_int_eq(wave_mem_create(&o, &m, NULL), 0);
	return m;
}

START_TEST(t_opts_refused)
{
	struct wave_mem_opts o;
	struct wave_error err;
	struct wave_mem *m = NULL;

	ck_assert_int_eq(wave_mem_opts_init(NULL), -EINVAL);
	ck_assert_int_eq(wave_mem_create(NULL, NULL, NULL), -EINVAL);
	wave_mem_opts_init(&o);
	o.n_tiers = 0;
	ck_assert_int_eq(wave_mem_create(&o, &m, &err), -EINVAL);
	o.n_tiers = WAVE_MEM_MAX_TIERS + 1;
	ck_assert_int_eq(wave_mem_create(&o, &m, &err), -EINVAL);
	wave_mem_opts_init(&o);
	o.tiers[0].kind = WAVE_MEM_TIER_FAR; /* tier 0 must be memory */
	ck_assert_int_eq(wave_mem_create(&o, &m, &err), -EINVAL);
	wave_mem_opts_init(&o);
	o.n_tiers = 3; /* the far tier in the middle */
	o.tiers[1] = (struct wave_mem_tier){ WAVE_MEM_TIER_FAR, 0, 0 };
	o.tiers[2] = (struct wave_mem_tier){ WAVE_MEM_TIER_NUMA, WAVE_MEM_NODE_ANY, 0 };
	ck_assert_int_eq(wave_mem_create(&o, &m, &err), -EINVAL);
	ck_assert(strstr(err.text, "far tier must be the last"));
	o.tiers[2].kind = 7;
	ck_assert_int_eq(wave_mem_create(&o, &m, &err), -EINVAL);
	wave_mem_opts_init(&o);
	o.codec = WAVE_MEM_CODEC_COUNT;
	ck_assert_int_eq(wave_mem_create(&o, &m, &err), -EINVAL);
	wave_mem_opts_init(&o);
	o.sample_period_ns = 999999;
	ck_assert_int_eq(wave_mem_create(&o, &m, &err), -EINVAL);
	wave_mem_opts_init(&o);
	o.size = sizeof(o) + 8; /* a newer struct than this library */
	ck_assert_int_eq(wave_mem_create(&o, &m, &err), -EINVAL);
	o.size = 4;
	ck_assert_int_eq(wave_mem_create(&o, &m, &err), -EINVAL);
	wave_mem_opts_init(&o);
	o.tiers[0].node = -7;
	ck_assert_int_eq(wave_mem_create(&o, &m, &err), -EINVAL);
	ck_assert_ptr_null(m);
}
END_TEST

/* A tier on a node this machine does not have: a clear error at once. */
START_TEST(t_numa_node_missing)
{
	struct wave_mem_opts o;
	struct wave_error err;
	struct wave_mem *m = NULL;
	int missing = numa_available() < 0 ? 1 : numa_max_node() + 1;

	wave_mem_opts_init(&o);
	o.n_tiers = 2;
	o.tiers[0].node = 0;
	o.tiers[1] = (struct wave_mem_tier){ WAVE_MEM_TIER_NUMA, missing, 0 };
	ck_assert_int_eq(wave_mem_create(&o, &m, &err), -ENODEV);
	ck_assert_msg(strstr(err.text, "does not exist") || strstr(err.text, "no NUMA"), "%s",
		      err.text);
	printf("tier on node %d: %s\n", missing, err.text);
	ck_assert_ptr_null(m);
}
END_TEST

START_TEST(t_region_refused)
{
	struct wave_mem *m = numa2_new();
	struct wave_mem_region_opts ro;
	size_t len = 1u << 20;
	char *p = anon_map(2 * len);
	uint32_t id, id2;
	void *a;

	wave_mem_region_opts_init(&ro);
	ck_assert_int_eq(wave_mem_region_register(NULL, p, len, NULL, &id), -EINVAL);
	ck_assert_int_eq(wave_mem_region_register(m, NULL, len, NULL, &id), -EINVAL);
	ck_assert_int_eq(wave_mem_region_register(m, p, len, NULL, NULL), -EINVAL);
	ck_assert_int_eq(wave_mem_region_register(m, p, 0, NULL, &id), -EINVAL);
	ck_assert_int_eq(wave_mem_region_register(m, p + 100, len, NULL, &id), -EINVAL);
	ck_assert_int_eq(wave_mem_region_register(m, p, len - 4096, NULL, &id), -EINVAL);
	ck_assert_int_eq(wave_mem_region_register(m, p, SIZE_MAX & ~(size_t)0xfffff, NULL, &id),
			 -EINVAL);
	for (uint64_t cs = 0; cs <= (8u << 20); cs = cs ? cs * 2 : 1024) {
		ro.chunk_size = cs;
		ck_assert_int_eq(wave_mem_region_register(m, p, 2 * len, &ro, &id),
				 cs >= 4096 && cs <= (2u << 20) ? 0 : -EINVAL);
		if (cs >= 4096 && cs <= (2u << 20))
			ck_assert_int_eq(wave_mem_region_unregister(m, id), 0);
	}
	ro.chunk_size = 3 * 4096;
	ck_assert_int_eq(wave_mem_region_register(m, p, 3 * 4096 * 8, &ro, &id), -EINVAL);
	wave_mem_region_opts_init(&ro);
	ro.tier = 2;
	ck_assert_int_eq(wave_mem_region_register(m, p, len, &ro, &id), -EINVAL);
	ro.tier = 1;
	ck_assert_int_eq(wave_mem_region_register(m, p, len, &ro, &id), 0);
	ck_assert_int_eq(wave_mem_region_unregister(m, id), 0);
	ro.size = sizeof(ro) + 1;
	ck_assert_int_eq(wave_mem_region_register(m, p, len, &ro, &id), -EINVAL);
	ck_assert_int_eq(wave_mem_region_alloc(m, 0, NULL, &a, &id), -EINVAL);
	ck_assert_int_eq(wave_mem_region_alloc(m, 4096 * 3, NULL, &a, &id), -EINVAL);
	ck_assert_int_eq(wave_mem_region_alloc(m, len, NULL, NULL, &id), -EINVAL);

	/* Overlaps, from every side, are refused; neighbours are not. */
	ck_assert_int_eq(wave_mem_region_register(m, p + len / 2, len / 2, NULL, &id), 0);
	ck_assert_int_eq(wave_mem_region_register(m, p + len / 2, len / 2, NULL, &id2), -EEXIST);
	ck_assert_int_eq(wave_mem_region_register(m, p, len, NULL, &id2), -EEXIST);
	ck_assert_int_eq(wave_mem_region_register(m, p + 3 * len / 4, len / 2, NULL, &id2),
			 -EEXIST);
	ck_assert_int_eq(wave_mem_region_register(m, p + len / 2 + 65536, 65536, NULL, &id2),
			 -EEXIST);
	ck_assert_int_eq(wave_mem_region_register(m, p, 2 * len, NULL, &id2), -EEXIST);
	ck_assert_int_eq(wave_mem_region_register(m, p, len / 2, NULL, &id2), 0);
	ck_assert_int_eq(wave_mem_region_register(m, p + len, len, NULL, &id2 /* reused */), 0);
	ck_assert_uint_ne(id, id2);

	ck_assert_int_eq(wave_mem_region_unregister(m, 0), -EINVAL);
	ck_assert_int_eq(wave_mem_region_unregister(m, 999), -ENOENT);
	ck_assert_int_eq(wave_mem_region_unregister(m, id), 0);
	ck_assert_int_eq(wave_mem_region_unregister(m, id), -ENOENT);
	wave_mem_destroy(m); /* unregisters the rest */
	munmap(p, 2 * len);
}
END_TEST

/* With a far tier, only private anonymous memory can be registered. */
START_TEST(t_region_far_kind)
{
	struct wave_mem *m = mem_far_new(0, 0, 0);
	size_t len = 1u << 20;
	int fd = memfd_create("t", 0);
	void *sh, *ro;
	uint32_t id;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)len), 0);
	sh = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ck_assert_ptr_ne(sh, MAP_FAILED);
	ck_assert_int_eq(wave_mem_region_register(m, sh, len, NULL, &id), -EINVAL);
	ro = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_int_eq(wave_mem_region_register(m, ro, len, NULL, &id), -EINVAL);
	munmap(ro, len);
	munmap(sh, len);
	close(fd);
	wave_mem_destroy(m);
}
END_TEST

START_TEST(t_chunks)
{
	struct wave_mem *m = numa2_new();
	struct wave_mem_region_opts ro;
	size_t len = 1u << 20;
	char *p = anon_map(len);
	struct wave_mem_chunk_info ci = { .size = sizeof(ci) };
	uint64_t c;
	uint32_t id;

	wave_mem_region_opts_init(&ro);
	ro.chunk_size = 16 * KIB;
	ck_assert_int_eq(wave_mem_region_register(m, p, len, &ro, &id), 0);
	ck_assert_int_eq(wave_mem_chunk_of(m, p + 5 * 16 * KIB + 17, &c), 0);
	ck_assert_uint_eq(c, wave_mem_chunk_id(id, 5));
	ck_assert_int_eq(wave_mem_chunk_of(m, p + len, &c), -ENOENT);
	ck_assert_int_eq(wave_mem_chunk_of(m, p - 1, &c), -ENOENT);
	ck_assert_int_eq(wave_mem_chunk_of(m, p, NULL), -EINVAL);
	ck_assert_int_eq(wave_mem_chunk_info(m, wave_mem_chunk_id(id, 5), &ci), 0);
	ck_assert_ptr_eq(ci.addr, p + 5 * 16 * KIB);
	ck_assert_uint_eq(ci.len, 16 * KIB);
	ck_assert_uint_eq(ci.tier, 0);
	ck_assert_uint_eq(ci.seq, 0);
	ck_assert_uint_eq(ci.flags, 0);
	ck_assert_int_eq(wave_mem_chunk_info(m, wave_mem_chunk_id(id, 64), &ci), -ENOENT);
	ck_assert_int_eq(wave_mem_chunk_info(m, wave_mem_chunk_id(id + 1, 0), &ci), -ENOENT);
	ci.size = 8;
	ck_assert_int_eq(wave_mem_chunk_info(m, wave_mem_chunk_id(id, 0), &ci), -EINVAL);
	wave_mem_destroy(m);
	munmap(p, len);
}
END_TEST

/* Every result of the transaction, between two NUMA tiers. */
START_TEST(t_migrate_results)
{
	struct wave_mem *m = numa2_new();
	size_t len = 1u << 20;
	char *p = anon_map(len);
	struct wave_mem_stats st;
	uint64_t c;
	uint32_t id;

	fill_pattern(p, len, 1);
	ck_assert_int_eq(wave_mem_region_register(m, p, len, NULL, &id), 0);
	c = wave_mem_chunk_id(id, 3);
	ck_assert_int_eq(wave_mem_migrate(NULL, c, 0, 1), -EINVAL);
	ck_assert_int_eq(wave_mem_migrate(m, c, 0, 2), WAVE_ABORT_INVALID);
	ck_assert_int_eq(wave_mem_migrate(m, wave_mem_chunk_id(id, 16), 0, 1), WAVE_ABORT_INVALID);
	ck_assert_int_eq(wave_mem_migrate(m, wave_mem_chunk_id(0, 0), 0, 1), WAVE_ABORT_INVALID);
	ck_assert_int_eq(wave_mem_migrate(m, wave_mem_chunk_id(id + 9, 0), 0, 1), WAVE_ABORT_GONE);
	ck_assert_int_eq(wave_mem_migrate(m, c, 1, 1), WAVE_ABORT_STALE);
	ck_assert_int_eq(wave_mem_migrate(m, c, 0, 0), WAVE_ABORT_NOT_ELIGIBLE);
	ck_assert_int_eq(wave_mem_migrate(m, c, 0, 1), WAVE_COMMITTED);
	ck_assert_uint_eq(chunk_info(m, c).tier, 1);
	ck_assert_uint_eq(chunk_info(m, c).seq, 1);
	ck_assert_int_eq(wave_mem_migrate(m, c, 0, 0), WAVE_ABORT_STALE); /* based on the old seq */
	ck_assert_int_eq(wave_mem_migrate(m, c, 1, 0), WAVE_COMMITTED);
	ck_assert_uint_eq(chunk_info(m, c).seq, 2);
	ck_assert_int_eq(wave_mem_stats(m, &st), 0);
	ck_assert_uint_eq(st.committed, 2);
	ck_assert_uint_eq(st.aborted[WAVE_ABORT_INVALID], 3);
	ck_assert_uint_eq(st.aborted[WAVE_ABORT_GONE], 1);
	ck_assert_uint_eq(st.aborted[WAVE_ABORT_STALE], 2);
	ck_assert_uint_eq(st.aborted[WAVE_ABORT_NOT_ELIGIBLE], 1);
	ck_assert_uint_eq(st.tier_used[0], len);
	ck_assert_uint_eq(st.tier_used[1], 0);
	ck_assert_int_eq(wave_mem_region_unregister(m, id), 0);
	ck_assert_int_eq(wave_mem_migrate(m, c, 2, 1), WAVE_ABORT_GONE);
	ck_assert_int_eq(check_pattern(p, len, 1), -1);
	wave_mem_destroy(m);
	munmap(p, len);
}
END_TEST

/* A tier with a capacity refuses a promotion that would overfill it. */
START_TEST(t_migrate_tier_full)
{
	struct wave_mem_opts o;
	struct wave_mem *m = NULL;
	struct wave_mem_region_opts ro;
	size_t len = 1u << 20;
	char *p = anon_map(len);
	void *a;
	uint32_t id;

	wave_mem_opts_init(&o);
	o.n_tiers = 2;
	o.tiers[0].capacity = len;
	o.tiers[1] = (struct wave_mem_tier){ WAVE_MEM_TIER_NUMA, WAVE_MEM_NODE_ANY, 0 };
	o.min_resident_ns = 0;
	ck_assert_int_eq(wave_mem_create(&o, &m, NULL), 0);
	wave_mem_region_opts_init(&ro);
	ro.tier = 1;
	ck_assert_int_eq(wave_mem_region_register(m, p, len, &ro, &id), 0);
	ro.tier = 0; /* leaves tier 0 room for two chunks of 64 KiB */
	ck_assert_int_eq(wave_mem_region_alloc(m, len - 2 * 65536, &ro, &a, &id), 0);
	ck_assert_int_eq(migrate_now(m, wave_mem_chunk_id(1, 0), 0), WAVE_COMMITTED);
	ck_assert_int_eq(migrate_now(m, wave_mem_chunk_id(1, 1), 0), WAVE_COMMITTED);
	ck_assert_int_eq(migrate_now(m, wave_mem_chunk_id(1, 2), 0), WAVE_ABORT_BUSY);
	ck_assert_uint_eq(chunk_info(m, wave_mem_chunk_id(1, 2)).tier, 1);
	wave_mem_destroy(m);
	munmap(p, len);
}
END_TEST

START_TEST(t_report_access)
{
	struct wave_mem *m = numa2_new();
	size_t len = 1u << 20;
	char *p = anon_map(len);
	const void *addrs[4];
	struct wave_mem_stats st;
	uint32_t id;

	ck_assert_int_eq(wave_mem_region_register(m, p, len, NULL, &id), 0);
	addrs[0] = p + 65536 * 2 + 5;
	addrs[1] = p + len; /* outside */
	addrs[2] = p;
	addrs[3] = NULL;
	ck_assert_int_eq(wave_mem_report_access(m, addrs, 4), 2);
	ck_assert_int_eq(wave_mem_report_access(m, NULL, 1), -EINVAL);
	ck_assert_int_eq(wave_mem_report_access(m, NULL, 0), 0);
	ck_assert(chunk_info(m, wave_mem_chunk_id(id, 2)).flags & WAVE_MEM_CHUNK_ACCESSED);
	ck_assert(chunk_info(m, wave_mem_chunk_id(id, 0)).flags & WAVE_MEM_CHUNK_ACCESSED);
	ck_assert(!(chunk_info(m, wave_mem_chunk_id(id, 1)).flags & WAVE_MEM_CHUNK_ACCESSED));
	ck_assert_uint_eq(chunk_info(m, wave_mem_chunk_id(id, 2)).seq, 0); /* not a change */
	ck_assert_int_eq(wave_mem_stats(m, &st), 0);
	ck_assert_uint_eq(st.reported, 2);
	ck_assert_uint_eq(st.reported_outside, 2);
	wave_mem_destroy(m);
	munmap(p, len);
}
END_TEST

START_TEST(t_victims_refused)
{
	struct wave_mem *m = numa2_new();
	struct wave_mem_victim v = { 1, 0 };

	ck_assert_int_eq(wave_mem_prestage_victims(NULL, &v, 1), -EINVAL);
	ck_assert_int_eq(wave_mem_prestage_victims(m, NULL, 1), -EINVAL);
	ck_assert_int_eq(wave_mem_prestage_victims(m, &v, 4097), -EINVAL);
	ck_assert_int_eq(wave_mem_prestage_victims(m, &v, 1), 0);
	ck_assert_int_eq(wave_mem_prestage_victims(m, NULL, 0), 0);
	ck_assert_int_eq(wave_mem_relieve(NULL), -EINVAL);
	ck_assert_int_eq(wave_mem_relieve(m), 0); /* no capacity: never over */
	ck_assert_int_eq(wave_mem_touch(NULL, 1), -EINVAL);
	wave_mem_destroy(m);
}
END_TEST

/* DAMON: either it can watch this process, or the reason it cannot. */
START_TEST(t_damon)
{
	struct wave_error err;
	int r = wave_mem_damon_vaddr(&err);

	ck_assert_int_ge(r, 0);
	if (r == 0) {
		ck_assert_int_gt((int)strlen(err.text), 10);
		printf("DAMON vaddr: not available: %s\n", err.text);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("mem_api");
	TCase *tc = tcase_create("api");

	tcase_add_test(tc, t_opts_refused);
	tcase_add_test(tc, t_numa_node_missing);
	tcase_add_test(tc, t_region_refused);
	tcase_add_test(tc, t_region_far_kind);
	tcase_add_test(tc, t_chunks);
	tcase_add_test(tc, t_migrate_results);
	tcase_add_test(tc, t_migrate_tier_full);
	tcase_add_test(tc, t_report_access);
	tcase_add_test(tc, t_victims_refused);
	tcase_add_test(tc, t_damon);
	suite_add_tcase(s, tc);
	return wave_check_run(s);
}
