/* SPDX-License-Identifier: MIT */
/*
 * The task table: open addressing with linear probing, at most 3/4 full,
 * deletion by shifting later entries back (no tombstones, so lookups stay
 * short however many tasks come and go). Keys are mixed with a random
 * per-state seed: task ids come from the peer, which must not be able to
 * choose ids that collide.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>

#include "sched_impl.h"

#define TABLE_MIN 64u
/* Tables this large are mapped on their own, and asked for huge pages: a
 * million tasks take over 100 MB, and with 4 KiB pages nearly every lookup
 * would also miss the TLB. */
#define TABLE_MAP_MIN (2u << 20)

/* Zeroed memory for @n slots; NULL on failure. */
static struct sched_task *slots_alloc(size_t n)
{
	size_t bytes = n * sizeof(struct sched_task);
	void *p;

	if (bytes < TABLE_MAP_MIN)
		return calloc(n, sizeof(struct sched_task));
	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	/* Advice only: without transparent huge pages the table still works. */
	(void)madvise(p, bytes, MADV_HUGEPAGE);
	return p;
}

static void slots_free(struct sched_task *slots, size_t n)
{
	size_t bytes = n * sizeof(struct sched_task);

	if (bytes < TABLE_MAP_MIN)
		free(slots);
	else if (slots)
		munmap(slots, bytes);
}

static uint64_t mix(uint64_t x)
{
	/* A 64-bit finalizer (multiply-xorshift): every input bit affects
	 * every output bit, so nearby ids spread over the table. */
	x ^= x >> 30;
	x *= UINT64_C(0xbf58476d1ce4e5b9);
	x ^= x >> 27;
	x *= UINT64_C(0x94d049bb133111eb);
	x ^= x >> 31;
	return x;
}

static size_t home(const struct wave_sched_state *st, uint64_t id)
{
	return (size_t)mix(id ^ st->seed) & st->mask;
}

static uint64_t new_seed(void)
{
	uint64_t seed;
	struct timespec ts;

	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == (ssize_t)sizeof(seed))
		return seed;
	/* Early boot without entropy: the clock still varies per process. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return mix((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32));
}

int sched_table_init(struct wave_sched_state *st)
{
	st->slots = slots_alloc(TABLE_MIN);
	if (!st->slots)
		return -ENOMEM;
	st->mask = TABLE_MIN - 1;
	st->count = 0;
	st->seed = new_seed();
	return 0;
}

void sched_table_free(struct wave_sched_state *st)
{
	slots_free(st->slots, st->mask + 1);
	st->slots = NULL;
}

size_t sched_table_bytes(const struct wave_sched_state *st)
{
	return (st->mask + 1) * sizeof(*st->slots);
}

struct sched_task *sched_task_find(const struct wave_sched_state *st, uint64_t id)
{
	size_t i;

	if (id == 0)
		return NULL;
	for (i = home(st, id); st->slots[i].id; i = (i + 1) & st->mask)
		if (st->slots[i].id == id)
			return &st->slots[i];
	return NULL;
}

/* The free slot where @id goes, in a table known to have room. */
static struct sched_task *probe_free(const struct wave_sched_state *st, uint64_t id)
{
	size_t i = home(st, id);

	while (st->slots[i].id)
		i = (i + 1) & st->mask;
	return &st->slots[i];
}

static int grow(struct wave_sched_state *st)
{
	struct sched_task *old = st->slots;
	size_t old_n = st->mask + 1;

	if (old_n > SIZE_MAX / 2 / sizeof(*old))
		return -ENOMEM;
	st->slots = slots_alloc(old_n * 2);
	if (!st->slots) {
		st->slots = old;
		return -ENOMEM;
	}
	st->mask = old_n * 2 - 1;
	for (size_t i = 0; i < old_n; i++)
		if (old[i].id)
			*probe_free(st, old[i].id) = old[i];
	slots_free(old, old_n);
	return 0;
}

struct sched_task *sched_task_insert(struct wave_sched_state *st, uint64_t id)
{
	struct sched_task *t;

	/* Grow before passing 3/4: linear probing degrades fast beyond. */
	if ((st->count + 1) * 4 > (st->mask + 1) * 3 && grow(st) < 0)
		return NULL;
	t = probe_free(st, id);
	memset(t, 0, sizeof(*t));
	t->id = id;
	st->count++;
	return t;
}

/* Is slot @j's entry allowed to move back to @hole? Only if its home does
 * not lie cyclically in (hole, j]. */
static int may_move(const struct wave_sched_state *st, size_t hole, size_t j)
{
	size_t h = home(st, st->slots[j].id);

	return ((j - h) & st->mask) >= ((j - hole) & st->mask);
}

void sched_task_remove(struct wave_sched_state *st, struct sched_task *t)
{
	size_t hole = (size_t)(t - st->slots);

	for (size_t j = (hole + 1) & st->mask; st->slots[j].id; j = (j + 1) & st->mask) {
		if (may_move(st, hole, j)) {
			st->slots[hole] = st->slots[j];
			hole = j;
		}
	}
	memset(&st->slots[hole], 0, sizeof(st->slots[hole]));
	st->count--;
}

double sched_table_mean_probes(const struct wave_sched_state *st)
{
	uint64_t sum = 0;

	if (!st->count)
		return 0.0;
	for (size_t i = 0; i <= st->mask; i++)
		if (st->slots[i].id)
			sum += ((i - home(st, st->slots[i].id)) & st->mask) + 1;
	return (double)sum / (double)st->count;
}
