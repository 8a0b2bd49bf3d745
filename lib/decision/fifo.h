/* SPDX-License-Identifier: MIT */
/*
 * The fallback queue: what a host decides locally while no agent is in
 * control is served first come, first served. Entries are (object,
 * sequence number) pairs checked lazily when they come out: an object
 * that changed since it was queued (its sequence moved on, it went away)
 * is skipped, so a queue never needs searching when an object changes.
 */
#ifndef WAVE_DECISION_FIFO_H
#define WAVE_DECISION_FIFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fifo_entry {
	uint64_t id, seq;
};

struct fifo {
	struct fifo_entry *q;
	size_t head, len, cap; /* cap: a power of two, or 0 */
};

static inline void fifo_init(struct fifo *f)
{
	f->q = NULL;
	f->head = f->len = f->cap = 0;
}

void fifo_fini(struct fifo *f);

/* Whether an entry still stands (its object did not change since). */
typedef bool (*fifo_valid_fn)(void *arg, const struct fifo_entry *e);

/* Queues (@id, @seq) at the tail, or at the head (a preempted task goes
 * first again). A full queue first drops the entries @valid (called with
 * @arg) rejects, and grows only if more than half of it stands: entries
 * of objects that changed are never left to pile up, however long
 * nothing pops (a host that only creates and kills tasks on fallback).
 * Return: 0 or -ENOMEM. */
int fifo_push(struct fifo *f, uint64_t id, uint64_t seq, bool at_head, fifo_valid_fn valid,
	      void *arg);

/* The oldest entry that @valid (called with @arg) accepts, removed along
 * with the rejected ones before it. Return: true and *@out, or false when
 * the queue ran out. */
bool fifo_pop(struct fifo *f, fifo_valid_fn valid, void *arg, struct fifo_entry *out);

static inline void fifo_clear(struct fifo *f)
{
	f->head = f->len = 0;
}

static inline size_t fifo_len(const struct fifo *f)
{
	return f->len;
}

#endif /* WAVE_DECISION_FIFO_H */
