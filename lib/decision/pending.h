/* SPDX-License-Identifier: MIT */
/*
 * The agent's side of a decision in flight, for every domain.
 *
 * Pending links: from the moment a decision leaves until its outcome comes
 * back, the object it is about (a task, a chunk, a bucket) and, where the
 * domain has them, the resource slot it fills (a CPU's RUN or PRESTAGE
 * slot) point at each other, so the state model neither gives the object
 * a second decision nor the slot a second occupant, and an outcome can be
 * matched to the decision it answers. A domain keeps a struct dec_pend in
 * each object and, for slotted resources, an array of object ids per
 * resource (0: free), indexed by decision kind - 1.
 *
 * Refusals: a plugin's decision that the state model can already tell the
 * host would abort is refused at the call, never sent; the reasons are the
 * abort reasons of enum wave_result, plus a full channel. Counted per
 * reason, published to the plugin instance's counters by the agent.
 */
#ifndef WAVE_DECISION_PENDING_H
#define WAVE_DECISION_PENDING_H

#include <stdbool.h>
#include <stdint.h>

#include <wave/domain.h>

#define DEC_RES_NONE UINT32_MAX

/* An object's decision in flight: @kind (the domain's, 1..255) on
 * resource @res, or kind 0 and DEC_RES_NONE for none. Packed to 5 bytes,
 * so objects stay small with their byte-sized fields after it (a sched
 * task 56 bytes, a memory chunk far under its 32). */
struct __attribute__((packed)) dec_pend {
	uint32_t res;
	uint8_t kind;
};

static inline void dec_pend_init(struct dec_pend *p)
{
	p->res = DEC_RES_NONE;
	p->kind = 0;
}

static inline bool dec_pend_any(const struct dec_pend *p)
{
	return p->kind != 0;
}

/* Is @p the decision an outcome for (@kind, @res) answers? */
static inline bool dec_pend_matches(const struct dec_pend *p, uint8_t kind, uint32_t res)
{
	return p->kind == kind && p->res == res;
}

/* Links object @obj (its @p, which has none) to slot @kind - 1 of resource
 * @res's @slots (NULL: the resource has no slots). */
static inline void dec_pend_link(struct dec_pend *p, uint64_t *slots, uint64_t obj, uint8_t kind,
				 uint32_t res)
{
	p->kind = kind;
	p->res = res;
	if (slots)
		slots[kind - 1] = obj;
}

/* Ends object @obj's decision in flight, if any; @slots: those of the
 * resource p->res (NULL: it has none). Return: true when this freed a
 * slot (the slot still held @obj). */
static inline bool dec_pend_unlink(struct dec_pend *p, uint64_t *slots, uint64_t obj)
{
	bool freed = false;

	if (!p->kind)
		return false;
	if (slots && slots[p->kind - 1] == obj) {
		slots[p->kind - 1] = 0;
		freed = true;
	}
	dec_pend_init(p);
	return freed;
}

/* Why a decision was refused before it left. */
enum dec_refusal {
	DEC_REFUSED_STALE,        /* based on an older sequence number (WAVE_ABORT_STALE) */
	DEC_REFUSED_GONE,         /* about an object the host never had or no longer has */
	DEC_REFUSED_NOT_ELIGIBLE, /* the object cannot take it in its state */
	DEC_REFUSED_BUSY,         /* the resource or slot is taken */
	DEC_REFUSED_INVALID,      /* names no resource the host has */
	DEC_REFUSED_FULL,         /* the host's channel is full or gone: backpressure */
	DEC_REFUSED_COUNT
};

struct dec_refusals {
	uint64_t n[DEC_REFUSED_COUNT];
	uint64_t total; /* of n[]: read after every message */
};

/* Counts a refusal for @why and returns @err (a negative errno), so a
 * decision call can end with `return dec_refuse(...)`. */
static inline int dec_refuse(struct dec_refusals *r, enum dec_refusal why, int err)
{
	r->n[why]++;
	r->total++;
	return err;
}

/* Counts an event the state model refused in *@counter and returns @err:
 * the events' counterpart of dec_refuse(). */
static inline int dec_count(uint64_t *counter, int err)
{
	(*counter)++;
	return err;
}

static inline uint64_t dec_refusals_total(const struct dec_refusals *r)
{
	return r->total;
}

#endif /* WAVE_DECISION_PENDING_H */
