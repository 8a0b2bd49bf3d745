/* SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "keytab.h"

/* Slots in use are those whose seq is non-zero: host sequence numbers
 * start at 1, and a kt_get() caller sets seq before any other call. */
#define KT_MIN_CAP 64u

void kt_init(struct keytab *t)
{
	memset(t, 0, sizeof(*t));
}

void kt_fini(struct keytab *t)
{
	free(t->e);
	memset(t, 0, sizeof(*t));
}

static size_t kt_hash(uint64_t key, size_t cap)
{
	/* Fibonacci hashing spreads sequential keys over the table. */
	return (size_t)((key * 0x9e3779b97f4a7c15ull) >> 32) & (cap - 1);
}

static struct kt_entry *kt_slot(struct kt_entry *e, size_t cap, uint64_t key, bool *found)
{
	size_t i = kt_hash(key, cap);

	for (;; i = (i + 1) & (cap - 1)) {
		if (e[i].seq == 0) {
			*found = false;
			return &e[i];
		}
		if (e[i].key == key) {
			*found = true;
			return &e[i];
		}
	}
}

struct kt_entry *kt_find(const struct keytab *t, uint64_t key)
{
	bool found;
	struct kt_entry *s;

	if (!t->cap)
		return NULL;
	s = kt_slot(t->e, t->cap, key, &found);
	return found ? s : NULL;
}

static int kt_grow(struct keytab *t)
{
	size_t cap = t->cap ? t->cap * 2 : KT_MIN_CAP;
	struct kt_entry *e = calloc(cap, sizeof(*e));
	bool found;

	if (!e)
		return -1;
	for (size_t i = 0; i < t->cap; i++)
		if (t->e[i].seq)
			*kt_slot(e, cap, t->e[i].key, &found) = t->e[i];
	free(t->e);
	t->e = e;
	t->cap = cap;
	return 0;
}

struct kt_entry *kt_get(struct keytab *t, uint64_t key)
{
	struct kt_entry *s = kt_find(t, key);
	bool found;

	if (s)
		return s;
	/* At most half full keeps probe sequences short. */
	if ((t->n + 1) * 2 > t->cap && kt_grow(t) < 0)
		return NULL;
	s = kt_slot(t->e, t->cap, key, &found);
	memset(s, 0, sizeof(*s));
	s->key = key;
	t->n++;
	return s;
}
