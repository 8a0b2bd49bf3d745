/* SPDX-License-Identifier: MIT */
/*
 * The sched messages' decoders, one per payload layout, for the public
 * decoder (sched_msg.c) and for the state model, which decodes each event
 * in the switch that applies it (sched_state_apply()): one dispatch on
 * the type, not two. Every byte a peer wrote is checked here.
 */
#ifndef WAVE_SCHED_DECODE_H
#define WAVE_SCHED_DECODE_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include <wave/sched_msg.h>

#include "../../core/le.h"

/* Little-endian fields at the offsets of the wire structs (core/le.h). */
#define GET(p, s, f) wave_get_le((p) + offsetof(struct s, f), sizeof(((struct s *)0)->f))
#define PUT(p, s, f, v) wave_put_le((p) + offsetof(struct s, f), sizeof(((struct s *)0)->f), (v))

/* Are bytes [from, to) of the payload all zero? A word at a time, the
 * bytes outside the range masked off: every call has constant bounds, so
 * this inlines to a few loads. */
static inline int zero(const uint8_t *p, size_t from, size_t to)
{
	uint64_t acc = 0;

	for (size_t w = from / 8; w * 8 < to; w++) {
		uint64_t mask = ~UINT64_C(0);

		if (w * 8 < from)
			mask <<= 8 * (from - w * 8);
		if (w * 8 + 8 > to)
			mask &= ~UINT64_C(0) >> 8 * (w * 8 + 8 - to);
		acc |= wave_get_le64(p + w * 8) & mask;
	}
	return acc == 0;
}

/* @cpu is a CPU of the domain, or NONE where @none_ok. */
static inline int check_cpu(uint32_t cpu, uint32_t n_cpus, int none_ok)
{
	if (cpu < n_cpus || (none_ok && cpu == WAVE_SCHED_CPU_NONE))
		return 0;
	return -ERANGE;
}

static inline int check_task(const struct wave_sched_msg *m)
{
	return m->task != 0 && m->seq != 0 ? 0 : -EBADMSG;
}

static inline int check_hint(const struct wave_sched_msg *m)
{
	switch (m->hint_kind) {
	case WAVE_SCHED_HINT_NONE:
		return m->hint == 0 ? 0 : -EBADMSG;
	case WAVE_SCHED_HINT_WEIGHT:
		return m->hint != 0 ? 0 : -EBADMSG;
	case WAVE_SCHED_HINT_DEADLINE:
		return 0;
	default:
		return -EBADMSG;
	}
}

static inline int decode_task_new(const uint8_t *p, uint32_t n_cpus, struct wave_sched_msg *m)
{
	int ret;

	if (!zero(p, offsetof(struct wave_sched_wire_task_new, reserved0), WAVE_MSG_PAYLOAD))
		return -EBADMSG;
	m->task = GET(p, wave_sched_wire_task_new, task);
	m->seq = GET(p, wave_sched_wire_task_new, seq);
	m->now_ns = GET(p, wave_sched_wire_task_new, now_ns);
	m->hint = GET(p, wave_sched_wire_task_new, hint);
	m->cpu = (uint32_t)GET(p, wave_sched_wire_task_new, cpu_hint);
	m->state = (uint8_t)GET(p, wave_sched_wire_task_new, state);
	m->hint_kind = (uint8_t)GET(p, wave_sched_wire_task_new, hint_kind);
	if ((ret = check_task(m)) < 0 || (ret = check_hint(m)) < 0)
		return ret;
	if (m->state != WAVE_SCHED_BLOCKED && m->state != WAVE_SCHED_RUNNABLE)
		return -EBADMSG;
	return check_cpu(m->cpu, n_cpus, 1);
}

static inline int decode_task(const uint8_t *p, uint32_t n_cpus, struct wave_sched_msg *m)
{
	int ret;

	if (!zero(p, offsetof(struct wave_sched_wire_task, reserved0), WAVE_MSG_PAYLOAD))
		return -EBADMSG;
	m->task = GET(p, wave_sched_wire_task, task);
	m->seq = GET(p, wave_sched_wire_task, seq);
	m->now_ns = GET(p, wave_sched_wire_task, now_ns);
	m->cpu = (uint32_t)GET(p, wave_sched_wire_task, cpu);
	if ((ret = check_task(m)) < 0)
		return ret;
	/* Only these may happen to a task that is not on a CPU. */
	return check_cpu(m->cpu, n_cpus,
			 m->type == WAVE_SCHED_TASK_WAKEUP || m->type == WAVE_SCHED_TASK_DEAD);
}

static inline int decode_cpu(const uint8_t *p, uint32_t n_cpus, struct wave_sched_msg *m)
{
	if (!zero(p, offsetof(struct wave_sched_wire_cpu, reserved0),
		  offsetof(struct wave_sched_wire_cpu, now_ns)) ||
	    !zero(p, offsetof(struct wave_sched_wire_cpu, reserved1), WAVE_MSG_PAYLOAD))
		return -EBADMSG;
	m->cpu = (uint32_t)GET(p, wave_sched_wire_cpu, cpu);
	m->now_ns = GET(p, wave_sched_wire_cpu, now_ns);
	return check_cpu(m->cpu, n_cpus, 0);
}

static inline int decode_decision(const uint8_t *p, uint32_t n_cpus, struct wave_sched_msg *m)
{
	int ret;

	if (!zero(p, offsetof(struct wave_sched_wire_decision, reserved0), WAVE_MSG_PAYLOAD))
		return -EBADMSG;
	m->task = GET(p, wave_sched_wire_decision, task);
	m->seq = GET(p, wave_sched_wire_decision, seq);
	m->cpu = (uint32_t)GET(p, wave_sched_wire_decision, cpu);
	if ((ret = check_task(m)) < 0)
		return ret;
	return check_cpu(m->cpu, n_cpus, 0);
}

static inline int decode_outcome(const uint8_t *p, uint32_t n_cpus, struct wave_sched_msg *m)
{
	int ret;

	if (!zero(p, offsetof(struct wave_sched_wire_outcome, reserved0), WAVE_MSG_PAYLOAD))
		return -EBADMSG;
	m->task = GET(p, wave_sched_wire_outcome, task);
	m->seq = GET(p, wave_sched_wire_outcome, seq);
	m->now_ns = GET(p, wave_sched_wire_outcome, now_ns);
	m->cpu = (uint32_t)GET(p, wave_sched_wire_outcome, cpu);
	m->decision = (uint16_t)GET(p, wave_sched_wire_outcome, decision);
	m->result = (uint8_t)GET(p, wave_sched_wire_outcome, result);
	if ((ret = check_task(m)) < 0)
		return ret;
	if (m->decision != WAVE_SCHED_RUN && m->decision != WAVE_SCHED_PRESTAGE &&
	    m->decision != WAVE_SCHED_PREEMPT)
		return -EBADMSG;
	if (m->result >= WAVE_SCHED_RESULT_COUNT)
		return -EBADMSG;
	return check_cpu(m->cpu, n_cpus, 0);
}

#endif /* WAVE_SCHED_DECODE_H */
