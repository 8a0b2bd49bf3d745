/* SPDX-License-Identifier: MIT */
/* The object map with a random multiplier per map (u64map.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>

#include "u64map.h"

#define MAP_MIN_LOG2 6u
#define MAP_MIN (1u << MAP_MIN_LOG2)
/* Tables this large are mapped on their own, and asked for huge pages: a
 * million tasks take over 100 MB, and with 4 KiB pages nearly every lookup
 * would also miss the TLB. */
#define MAP_MMAP_MIN (2u << 20)

/* A 64-bit finalizer (multiply-xorshift): every input bit affects every
 * output bit, so seeds read from nearby clock values differ. */
static uint64_t u64_mix(uint64_t x)
{
	x ^= x >> 30;
	x *= UINT64_C(0xbf58476d1ce4e5b9);
	x ^= x >> 27;
	x *= UINT64_C(0x94d049bb133111eb);
	x ^= x >> 31;
	return x;
}

uint64_t u64_seed(void)
{
	uint64_t seed;
	struct timespec ts;

	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == (ssize_t)sizeof(seed))
		return seed;
	/* Early boot without entropy: the clock still varies per process. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return u64_mix((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32));
}

/* Zeroed, cache-line aligned memory for @bytes (a multiple of 64, as the
 * size of every table is: at least 64 entries): entries may hold
 * line-aligned messages. */
static void *zalloc(size_t bytes)
{
	void *p = aligned_alloc(64, bytes);

	if (p)
		memset(p, 0, bytes);
	return p;
}

/* Zeroed memory for @n slots of @esize bytes; NULL on failure. */
static unsigned char *slots_alloc(size_t n, size_t esize)
{
	size_t bytes = n * esize;
	void *p;

	if (bytes < MAP_MMAP_MIN)
		return zalloc(bytes);
	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	/* Advice only: without transparent huge pages the table still works. */
	(void)madvise(p, bytes, MADV_HUGEPAGE);
	return p;
}

static void slots_free(unsigned char *slots, size_t n, size_t esize)
{
	size_t bytes = n * esize;

	if (bytes < MAP_MMAP_MIN)
		free(slots);
	else if (slots)
		munmap(slots, bytes);
}

/* Slots a lookup of the entry in slot @i reads: from its home to @i. */
static size_t probes_at(const struct u64map *m, size_t i)
{
	return ((i - u64map_home(m, u64map_key_at(m, i))) & m->mask) + 1;
}

/* The free slot where @key goes, in a table known to have room; counted
 * in m->probes once @key is stored there. */
static void *probe_free(struct u64map *m, uint64_t key)
{
	size_t home = u64map_home(m, key), i = home;

	while (u64map_key_at(m, i))
		i = (i + 1) & m->mask;
	m->probes += ((i - home) & m->mask) + 1;
	return u64map_at(m, i);
}

/* Moves every entry into @n fresh slots (a power of two) homed by @mult. */
static int rebuild(struct u64map *m, size_t n, uint64_t mult)
{
	unsigned char *old = m->slots, *slots = slots_alloc(n, m->esize);
	size_t old_n = m->mask + 1;

	if (!slots)
		return -ENOMEM;
	m->slots = slots;
	m->rebuilds++;
	m->mask = n - 1;
	m->shift = 64 - (unsigned)__builtin_ctzll((unsigned long long)n);
	m->mult = mult;
	m->probes = 0;
	for (size_t i = 0; i < old_n; i++) {
		const unsigned char *e = old + i * m->esize;
		uint64_t key = *(const uint64_t *)(const void *)e;

		if (key)
			memcpy(probe_free(m, key), e, m->esize);
	}
	slots_free(old, old_n, m->esize);
	return 0;
}

/* Clustering is judged every MAP_JUDGE_STEP-th of the slots' inserts:
 * homes count as clustered when their lookups read more slots, on average,
 * than MAP_CLUSTERED times what random homes give at that load (linear
 * probing's (1 + 1 / (1 - a)) / 2 at load a: 1.3 slots at 3/8 full, 2.5 at
 * 3/4), and the map draws another multiplier. Multiply-shift homes of
 * arithmetic progressions (ids, addresses) usually spread better than
 * random ones, but a few multipliers lay them into long runs, and a
 * multiplier that was fine can turn bad within a few hundred inserts. In a
 * simulation of six strides, 1,500 keys in 2,048 slots (73 %): judged only
 * at 9/16 against a flat 2 slots, one map in 30,000 read over 6 slots a
 * lookup (16 at worst); judged as here, none of 300,000 read over 4.3.
 * Random keys, which spread as random homes do, are redrawn for in one map
 * of 12 (a small table's chance). Judging reads no slot (m->probes); a
 * redraw is a rebuild, at most MAP_REDRAWS of them between two growths:
 * amortised over the 3/8 of the slots inserted between. */
#define MAP_JUDGE_STEP 64u
#define MAP_CLUSTERED 1.5
#define MAP_REDRAWS 8u

static bool clustered(const struct u64map *m)
{
	double n = (double)(m->mask + 1), c = (double)m->count;

	return (double)m->probes > MAP_CLUSTERED * c * (2 * n - c) / (2 * (n - c));
}

static void judge(struct u64map *m)
{
	while (m->redraws_left && clustered(m)) {
		m->redraws_left--;
		if (rebuild(m, m->mask + 1, u64_seed() | 1) < 0)
			break;
	}
	m->judge_at = m->count + (m->mask + 1) / MAP_JUDGE_STEP;
}

/* A new table (or a grown one): judged anew, with a fresh redraw budget. */
static void judge_from(struct u64map *m)
{
	m->redraws_left = MAP_REDRAWS;
	judge(m);
}

static int grow(struct u64map *m)
{
	size_t n = m->mask + 1;

	if (n > SIZE_MAX / 2 / m->esize || rebuild(m, n * 2, m->mult) < 0)
		return -ENOMEM;
	judge_from(m);
	return 0;
}

int u64map_init_for(struct u64map *m, size_t esize, size_t n)
{
	unsigned log2 = MAP_MIN_LOG2;

	memset(m, 0, sizeof(*m));
	if (esize < sizeof(uint64_t) || esize % sizeof(uint64_t))
		return -EINVAL;
	if (n > SIZE_MAX / 4)
		return -ENOMEM;
	/* The table u64map_insert() would have grown to for @n entries. */
	while (log2 < 8 * sizeof(size_t) - 2 && n * 4 > ((size_t)3 << log2))
		log2++;
	if (((size_t)1 << log2) > SIZE_MAX / esize)
		return -ENOMEM;
	m->esize = esize;
	if (!(m->slots = slots_alloc((size_t)1 << log2, esize)))
		return -ENOMEM;
	m->mask = ((size_t)1 << log2) - 1;
	m->shift = 64 - log2;
	m->mult = u64_seed() | 1;
	judge_from(m);
	return 0;
}

int u64map_init(struct u64map *m, size_t esize)
{
	return u64map_init_for(m, esize, 0);
}

void u64map_fini(struct u64map *m)
{
	if (m->slots)
		slots_free(m->slots, m->mask + 1, m->esize);
	free(m->zero);
	memset(m, 0, sizeof(*m));
}

void u64map_clear(struct u64map *m)
{
	if (!m->slots)
		return;
	if (m->count)
		memset(m->slots, 0, (m->mask + 1) * m->esize);
	free(m->zero);
	m->zero = NULL;
	m->count = 0;
	m->probes = 0;
	m->rebuilds++; /* every entry "moved": pointers into it are stale */
	m->mult = u64_seed() | 1;
	judge_from(m);
}

void *u64map_insert(struct u64map *m, uint64_t key)
{
	void *e;

	if (key == 0) {
		if (!m->zero)
			m->zero = zalloc((m->esize + 63) & ~(size_t)63);
		return m->zero; /* its key is 0 already */
	}
	/* Grow before passing 3/4: linear probing degrades fast beyond. */
	if ((m->count + 1) * 4 > (m->mask + 1) * 3 && grow(m) < 0)
		return NULL;
	if (m->count >= m->judge_at)
		judge(m);
	e = probe_free(m, key);
	memset(e, 0, m->esize);
	*(uint64_t *)e = key;
	m->count++;
	return e;
}

/* Is slot @j's entry allowed to move back to @hole? Only if its home does
 * not lie cyclically in (hole, j]. */
static bool may_move(const struct u64map *m, size_t hole, size_t j)
{
	size_t h = u64map_home(m, u64map_key_at(m, j));

	return ((j - h) & m->mask) >= ((j - hole) & m->mask);
}

void u64map_remove(struct u64map *m, void *e)
{
	size_t hole;

	if (e == m->zero) {
		free(m->zero);
		m->zero = NULL;
		return;
	}
	hole = (size_t)((unsigned char *)e - m->slots) / m->esize;
	m->probes -= probes_at(m, hole);
	for (size_t j = (hole + 1) & m->mask; u64map_key_at(m, j); j = (j + 1) & m->mask) {
		if (may_move(m, hole, j)) {
			/* Moved back by j - hole slots: read that many fewer. */
			m->probes -= (j - hole) & m->mask;
			memcpy(u64map_at(m, hole), u64map_at(m, j), m->esize);
			hole = j;
		}
	}
	memset(u64map_at(m, hole), 0, m->esize);
	m->count--;
}

size_t u64map_count(const struct u64map *m)
{
	return m->count + (m->zero != NULL);
}

size_t u64map_room(const struct u64map *m)
{
	return (m->mask + 1) / 4 * 3;
}

size_t u64map_bytes(const struct u64map *m)
{
	return (m->mask + 1) * m->esize + (m->zero ? m->esize : 0);
}

double u64map_mean_probes(const struct u64map *m)
{
	return m->count ? (double)m->probes / (double)m->count : 0.0;
}

void u64map_each(struct u64map *m, void (*fn)(void *e, void *arg), void *arg)
{
	if (m->zero)
		fn(m->zero, arg);
	for (size_t i = 0; i <= m->mask; i++)
		if (u64map_key_at(m, i))
			fn(u64map_at(m, i), arg);
}
