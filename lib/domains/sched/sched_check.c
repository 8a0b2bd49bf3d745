/* SPDX-License-Identifier: MIT */
/*
 * The state model's invariants, checked from scratch: every link between a
 * task and a CPU holds both ways, the free-CPU bitmap and its count agree
 * with the CPUs, every task is reachable by lookup, and the last task found
 * is in the table. Linear in the state's size; for tests and the fuzzer,
 * after each message.
 */
#include <errno.h>

#include "sched_impl.h"

static int task_ok(const struct wave_sched_state *st, const struct sched_task *t)
{
	const struct sched_cpu *c;

	if (u64map_find(&st->tasks, t->id) != t || t->state > WAVE_SCHED_RUNNING)
		return 0;
	if ((t->state == WAVE_SCHED_RUNNING) != (t->cpu != WAVE_SCHED_CPU_NONE))
		return 0;
	if (t->cpu != WAVE_SCHED_CPU_NONE && (t->cpu >= st->n_cpus || st->cpus[t->cpu].current != t->id))
		return 0;
	if (!dec_pend_any(&t->pend))
		return t->pend.res == DEC_RES_NONE;
	if (t->pend.res >= st->n_cpus || t->state != WAVE_SCHED_RUNNABLE ||
	    t->pend.kind > PENDING_KINDS)
		return 0;
	c = &st->cpus[t->pend.res];
	return c->slot[t->pend.kind - 1] == t->id;
}

static int cpu_ok(const struct wave_sched_state *st, uint32_t i)
{
	const struct sched_cpu *c = &st->cpus[i];
	const struct sched_task *t;
	int free_bit = (int)((st->free_map[i >> 6] >> (i & 63)) & 1);

	if (free_bit != (!c->current && !c->slot[0] && !c->slot[1]) || (c->preempting && !c->current))
		return 0;
	if (c->current && (!(t = u64map_find(&st->tasks, c->current)) || t->cpu != i))
		return 0;
	for (uint8_t kind = 1; kind <= PENDING_KINDS; kind++) {
		uint64_t id = c->slot[kind - 1];

		if (id && (!(t = u64map_find(&st->tasks, id)) || !dec_pend_matches(&t->pend, kind, i)))
			return 0;
	}
	return 1;
}

int wave_sched_state_check(const struct wave_sched_state *st)
{
	size_t n = 0;

	for (size_t i = 0; i <= st->tasks.mask; i++) {
		const struct sched_task *t = sched_task_at(st, i);

		if (!t)
			continue;
		n++;
		if (!task_ok(st, t))
			return -EPROTO;
	}
	if (n != u64map_count(&st->tasks))
		return -EPROTO;
	/* The task found last points at a slot of the table (its id may
	 * have moved on: sched_task_find() checks). */
	if (st->hot && ((size_t)((const unsigned char *)st->hot - st->tasks.slots) >=
				(st->tasks.mask + 1) * st->tasks.esize ||
			(size_t)((const unsigned char *)st->hot - st->tasks.slots) %
				st->tasks.esize))
		return -EPROTO;
	n = 0;
	for (uint32_t i = 0; i < st->n_cpus; i++) {
		if (!cpu_ok(st, i))
			return -EPROTO;
		n += (st->free_map[i >> 6] >> (i & 63)) & 1;
	}
	return n == st->n_free ? 0 : -EPROTO;
}
