/* SPDX-License-Identifier: MIT */
/*
 * A resource's decision slots: where the host keeps the agent's decisions
 * for one resource (a CPU, a memory tier, a worker) until the resource can
 * take them. A domain declares how many slots a resource has and what each
 * is for, in the order they are taken: sched gives each CPU a RUN slot (a
 * decision for a CPU the agent saw free) and a PRESTAGE slot (the CPU's
 * next task, filled while a RUN may still be in flight). Each slot holds
 * one decision: the object it is about and the object's sequence number it
 * was based on, committed or aborted by txn_check() when taken.
 */
#ifndef WAVE_DECISION_SLOTS_H
#define WAVE_DECISION_SLOTS_H

#include <stdbool.h>
#include <stdint.h>

struct dec_slot {
	uint64_t obj, seq;
	uint16_t kind; /* the domain's decision type; 0 when empty */
};

/* Fills @s, which must be empty. */
static inline void dec_slot_fill(struct dec_slot *s, uint16_t kind, uint64_t obj, uint64_t seq)
{
	s->obj = obj;
	s->seq = seq;
	s->kind = kind;
}

/* How many of the @n slots @s hold a decision. */
static inline unsigned dec_slots_used(const struct dec_slot *s, unsigned n)
{
	unsigned used = 0;

	for (unsigned i = 0; i < n; i++)
		used += s[i].kind != 0;
	return used;
}

/* Takes the first decision of the @n slots @s, in their order, into
 * *@out and empties its slot. Return: false when all are empty. */
static inline bool dec_slots_take(struct dec_slot *s, unsigned n, struct dec_slot *out)
{
	for (unsigned i = 0; i < n; i++) {
		if (!s[i].kind)
			continue;
		*out = s[i];
		s[i].kind = 0;
		return true;
	}
	return false;
}

/* Empties the @n slots @s: their decisions die (the agent that made them
 * is gone). */
static inline void dec_slots_clear(struct dec_slot *s, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		s[i].kind = 0;
}

#endif /* WAVE_DECISION_SLOTS_H */
