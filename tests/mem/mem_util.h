/* SPDX-License-Identifier: MIT */
/* Helpers of the mem domain's tests: managers, regions, patterns. */
#ifndef WAVE_TEST_MEM_UTIL_H
#define WAVE_TEST_MEM_UTIL_H

#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <wave/wave.h>

#define KIB 1024u

/* The defaults, with faults served by their threads (fault_signal) when
 * the environment says WAVE_TEST_FAULT_SIGNAL=1: CTest runs the far
 * tier's suites once each way. */
static inline void mem_opts_init(struct wave_mem_opts *o)
{
	const char *sig = getenv("WAVE_TEST_FAULT_SIGNAL");

	wave_mem_opts_init(o);
	o->fault_signal = sig && !strcmp(sig, "1");
}

/* Options of a manager with a fast tier (capacity @fast_cap, 0: none) and
 * a far tier (capacity @far_cap compressed bytes, 0: none). */
static inline void mem_far_opts(struct wave_mem_opts *o, uint64_t fast_cap, uint64_t far_cap)
{
	mem_opts_init(o);
	o->n_tiers = 2;
	o->tiers[0].capacity = fast_cap;
	o->tiers[1] = (struct wave_mem_tier){ WAVE_MEM_TIER_FAR, 0, far_cap };
}

/* Such a manager, the demoter keeping @reserve bytes free under the fast
 * tier's capacity (0: no demoter). */
static inline struct wave_mem *mem_reserve_new(uint64_t fast_cap, uint64_t far_cap,
					       uint64_t min_resident_ns, uint64_t reserve)
{
	struct wave_mem_opts o;
	struct wave_error err;
	struct wave_mem *m = NULL;
	int ret;

	mem_far_opts(&o, fast_cap, far_cap);
	o.min_resident_ns = min_resident_ns;
	o.reserve_bytes = reserve;
	ret = wave_mem_create(&o, &m, &err);
	ck_assert_msg(ret == 0, "wave_mem_create: %d %s", ret, err.text);
	return m;
}

static inline struct wave_mem *mem_far_new(uint64_t fast_cap, uint64_t far_cap,
					   uint64_t min_resident_ns)
{
	return mem_reserve_new(fast_cap, far_cap, min_resident_ns, 0);
}

static inline void *anon_map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	ck_assert_ptr_ne(p, MAP_FAILED);
	return p;
}

/* A word no two positions share, so a byte put in the wrong place shows. */
static inline uint64_t pattern(uint64_t i)
{
	uint64_t x = i * UINT64_C(0x9e3779b97f4a7c15) + 1;

	return x ^ (x >> 29);
}

/* Races of writers against the library's moves: writer @t owns one word
 * of each 4 KiB page, 8 words from the next writer's, from an offset that
 * moves with the page by up to @skew - 1 (so the words fall on different
 * bytes of each page's lines). */
static inline size_t race_word(size_t page, unsigned t, unsigned skew)
{
	return page * (4096 / 8) + 8 * t + page % skew;
}

/* Every word of a race region after its @writers: a writer's last value
 * (its number in the last three digits) where one owns the word,
 * pattern(i + @salt) everywhere else. */
static inline void race_check_words(const uint64_t *p, size_t len, unsigned skew, uint64_t salt,
				    unsigned writers)
{
	for (size_t i = 0; i < len / 8; i++) {
		size_t pg = i / 512, off = i % 512;
		size_t rel = off - pg % skew; /* wraps when off < pg % skew: not owned */
		bool owned = off >= pg % skew && rel % 8 == 0 && rel / 8 < writers;

		if (!owned)
			ck_assert_uint_eq(p[i], pattern(i + salt));
		else
			ck_assert_uint_eq(p[i] % 1000, rel / 8);
	}
}

static inline void fill_pattern(void *p, size_t len, uint64_t salt)
{
	uint64_t *w = p;

	for (size_t i = 0; i < len / 8; i++)
		w[i] = pattern(i + salt);
}

/* The index of the first word that differs from the pattern, or -1. */
static inline long check_pattern(const void *p, size_t len, uint64_t salt)
{
	const uint64_t *w = p;

	for (size_t i = 0; i < len / 8; i++)
		if (w[i] != pattern(i + salt))
			return (long)i;
	return -1;
}

/* Chunk @c's sequence number and tier. */
static inline struct wave_mem_chunk_info chunk_info(struct wave_mem *m, uint64_t c)
{
	struct wave_mem_chunk_info ci = { .size = sizeof(ci) };

	ck_assert_int_eq(wave_mem_chunk_info(m, c, &ci), 0);
	return ci;
}

/* Moves chunk @c to @tier from wherever it is now. */
static inline int migrate_now(struct wave_mem *m, uint64_t c, uint32_t tier)
{
	return wave_mem_migrate(m, c, chunk_info(m, c).seq, tier);
}

#endif /* WAVE_TEST_MEM_UTIL_H */
