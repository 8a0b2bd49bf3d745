/* SPDX-License-Identifier: MIT */
/* The fallback queue (fifo.h): a ring that doubles when full. */
#include <errno.h>
#include <stdlib.h>

#include "fifo.h"

void fifo_fini(struct fifo *f)
{
	free(f->q);
	fifo_init(f);
}

static int grow(struct fifo *f)
{
	size_t cap = f->cap ? f->cap * 2 : 64;
	struct fifo_entry *q;

	if (cap > SIZE_MAX / sizeof(*q) || !(q = malloc(cap * sizeof(*q))))
		return -ENOMEM;
	for (size_t k = 0; k < f->len; k++)
		q[k] = f->q[(f->head + k) & (f->cap - 1)];
	free(f->q);
	f->q = q;
	f->head = 0;
	f->cap = cap;
	return 0;
}

/* Drops the entries @valid rejects, keeping the others' order: each is
 * moved back over the dropped ones, never over one not yet read. */
static void compact(struct fifo *f, fifo_valid_fn valid, void *arg)
{
	size_t kept = 0;

	for (size_t k = 0; k < f->len; k++) {
		struct fifo_entry e = f->q[(f->head + k) & (f->cap - 1)];

		if (valid(arg, &e))
			f->q[(f->head + kept++) & (f->cap - 1)] = e;
	}
	f->len = kept;
}

int fifo_push(struct fifo *f, uint64_t id, uint64_t seq, bool at_head, fifo_valid_fn valid,
	      void *arg)
{
	size_t i;

	if (f->len == f->cap) {
		compact(f, valid, arg);
		/* Half full or more: grow, so that a compaction of the whole
		 * queue comes only after as many pushes as it holds. */
		if ((f->cap == 0 || f->len > f->cap / 2) && grow(f) < 0)
			return -ENOMEM;
	}
	if (at_head) {
		f->head = (f->head - 1) & (f->cap - 1);
		i = f->head;
	} else {
		i = (f->head + f->len) & (f->cap - 1);
	}
	f->q[i].id = id;
	f->q[i].seq = seq;
	f->len++;
	return 0;
}

bool fifo_pop(struct fifo *f, fifo_valid_fn valid, void *arg, struct fifo_entry *out)
{
	while (f->len) {
		struct fifo_entry e = f->q[f->head];

		f->head = (f->head + 1) & (f->cap - 1);
		f->len--;
		if (valid(arg, &e)) {
			*out = e;
			return true;
		}
	}
	return false;
}
