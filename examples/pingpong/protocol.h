/* SPDX-License-Identifier: MIT */
/*
 * The two messages of the ping-pong demo, shared by host.c and agent.c.
 *
 * The host plays a runtime that has a task to place: it sends an EVENT
 * ("task T woke up; it may run on these CPUs; this is how long each CPU's
 * run queue is"). The agent plays the offloaded scheduler: it answers with a
 * DECISION ("run task T on CPU C"). Real libwave domains carry richer
 * messages, but the shape is the same: one 64-byte message each way.
 *
 * Applications own the message types from WAVE_MSG_APP_FIRST up. A payload
 * is 48 bytes; each message below is a plain struct copied in and out of it
 * with memcpy, so neither side depends on the other's alignment.
 */
#ifndef DEMO_PROTOCOL_H
#define DEMO_PROTOCOL_H

#include <stdint.h>
#include <string.h>

#include <wave/wave.h>

#define DEMO_MSG_EVENT (WAVE_MSG_APP_FIRST + 0x10)    /* host -> agent */
#define DEMO_MSG_DECISION (WAVE_MSG_APP_FIRST + 0x11) /* agent -> host */

/* CPUs a demo machine has: one bit each in the allowed mask. */
#define DEMO_CPUS 32
/* The decision when no CPU is allowed at all. */
#define DEMO_NO_CPU 0xffffffffu

/* "Task @task woke up": where it may run, and how busy each CPU is. */
struct demo_event {
	uint32_t task;
	uint32_t allowed;          /* bit c set: the task may run on CPU c */
	uint8_t queue[DEMO_CPUS];  /* tasks waiting in each CPU's run queue */
};

/* "Run task @task on CPU @cpu". */
struct demo_decision {
	uint32_t task;
	uint32_t cpu; /* or DEMO_NO_CPU */
};

_Static_assert(sizeof(struct demo_event) <= WAVE_MSG_PAYLOAD, "an event fits a payload");
_Static_assert(sizeof(struct demo_decision) <= WAVE_MSG_PAYLOAD, "a decision fits a payload");

/*
 * The policy: the allowed CPU with the shortest run queue, the lowest
 * numbered one on a tie. The host computes it too, to check every answer.
 */
static inline uint32_t demo_choose_cpu(const struct demo_event *ev)
{
	uint32_t best = DEMO_NO_CPU;

	for (uint32_t c = 0; c < DEMO_CPUS; c++) {
		if (!(ev->allowed & (1u << c)))
			continue;
		if (best == DEMO_NO_CPU || ev->queue[c] < ev->queue[best])
			best = c;
	}
	return best;
}

static inline void demo_pack_event(struct wave_msg *m, const struct demo_event *ev)
{
	memset(m, 0, sizeof(*m));
	m->type = DEMO_MSG_EVENT;
	memcpy(m->payload.u8, ev, sizeof(*ev));
}

static inline void demo_pack_decision(struct wave_msg *m, const struct demo_decision *d)
{
	memset(m, 0, sizeof(*m));
	m->type = DEMO_MSG_DECISION;
	memcpy(m->payload.u8, d, sizeof(*d));
}

#endif /* DEMO_PROTOCOL_H */
