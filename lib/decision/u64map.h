/* SPDX-License-Identifier: MIT */
/*
 * A map from 64-bit keys to fixed-size entries, for every table of objects
 * whose keys a peer chooses (tasks, custom keys, chunks, flows): open
 * addressing with linear probing, at most 3/4 full, deletion by shifting
 * later entries back (no tombstones, so lookups stay short however many
 * objects come and go). A key's home slot is multiply-shift hashing, the
 * top bits of key * mult, with a random odd multiplier per map: any two
 * keys a peer picks share a home with probability at most 2 / slots over
 * the choice of multiplier (Dietzfelbinger et al., 1997), so a peer cannot
 * choose keys that collide; and it is one multiplication on the hot path.
 * Dense or strided keys (object numbers, addresses) can fall on a lattice
 * that one multiplier maps onto few homes: the map judges its clustering
 * after it grows and again half way to the next growth, and draws another
 * multiplier when lookups read too many slots. It knows that figure at
 * all times (insertions and removals keep the sum of the slots each
 * lookup reads), so judging reads no slot.
 *
 * An entry is @esize bytes whose first 8 are its key (uint64_t); the rest
 * is the caller's, zeroed on insertion. Key 0 is allowed: it is kept apart
 * from the slots, where 0 marks a free slot. Inserting and removing move
 * entries: pointers from find and insert are valid until the next insert
 * or remove.
 */
#ifndef WAVE_DECISION_U64MAP_H
#define WAVE_DECISION_U64MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct u64map {
	unsigned char *slots;
	size_t esize;
	size_t mask; /* slots - 1; a power of two */
	size_t count; /* entries in the slots (key 0 not counted) */
	size_t probes; /* slots the lookups of all those entries read, summed */
	size_t judge_at; /* count at which clustering is judged next */
	unsigned redraws_left; /* multipliers it may still draw before growing */
	uint64_t rebuilds; /* bumped whenever every entry moved (growth, redraw) */
	uint64_t mult;   /* the hash's random odd multiplier */
	unsigned shift;  /* 64 - log2(slots) */
	unsigned char *zero; /* the entry of key 0, or NULL */
};

/* A random seed for a table whose keys come from outside. */
uint64_t u64_seed(void);

static inline size_t u64map_home(const struct u64map *m, uint64_t key)
{
	return (size_t)((key * m->mult) >> m->shift);
}

static inline uint64_t u64map_key_at(const struct u64map *m, size_t i)
{
	return *(const uint64_t *)(const void *)(m->slots + i * m->esize);
}

static inline void *u64map_at(const struct u64map *m, size_t i)
{
	return m->slots + i * m->esize;
}

/* The entry of @key, or NULL. Inline: the hot path of every agent. */
static inline void *u64map_find(const struct u64map *m, uint64_t key)
{
	if (key == 0)
		return m->zero;
	for (size_t i = u64map_home(m, key); u64map_key_at(m, i); i = (i + 1) & m->mask)
		if (u64map_key_at(m, i) == key)
			return u64map_at(m, i);
	return NULL;
}

/* An empty map of @esize-byte entries (esize >= 8, a multiple of 8).
 * Return: 0 or -ENOMEM. */
int u64map_init(struct u64map *m, size_t esize);
/* The same, with room for @n entries before it first grows (a caller
 * that knows how many it will hold saves the growths' copies). */
int u64map_init_for(struct u64map *m, size_t esize, size_t n);
void u64map_fini(struct u64map *m);
/* Removes every entry and keeps the slots, as an empty map of their
 * number (a fresh multiplier, judged anew): a caller that empties a map
 * and fills it again (a replay repeated) need not free, allocate and
 * zero the slots each time. Free slots are zero already (a removal zeroes
 * the slot it frees), so only a map still holding entries is zeroed. */
void u64map_clear(struct u64map *m);
/* A new entry for @key, which must not be present; NULL when the map
 * cannot grow. */
void *u64map_insert(struct u64map *m, uint64_t key);
/* Removes @e, a pointer from find or insert. */
void u64map_remove(struct u64map *m, void *e);
/* Entries, key 0 included. */
size_t u64map_count(const struct u64map *m);
/* Entries it holds before it grows again (key 0 aside). */
size_t u64map_room(const struct u64map *m);
/* Memory held. */
size_t u64map_bytes(const struct u64map *m);
/* Slots a lookup of a present key reads, on average. */
double u64map_mean_probes(const struct u64map *m);
/* Calls @fn on every entry, in no order; @fn must not insert or remove. */
void u64map_each(struct u64map *m, void (*fn)(void *e, void *arg), void *arg);

#endif /* WAVE_DECISION_U64MAP_H */
