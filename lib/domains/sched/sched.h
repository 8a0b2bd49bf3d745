/* SPDX-License-Identifier: MIT */
/* What both sides of the sched domain share: its registration
 * (lib/domains/domains.c) and its SETUP message. */
#ifndef WAVE_DOMAINS_SCHED_H
#define WAVE_DOMAINS_SCHED_H

#include <stdint.h>

#include <wave/msg.h>
#include <wave/sched_msg.h>

#include "../../decision/domain.h"

extern const struct domain_desc sched_domain;

/* The SETUP message (sched_msg.h), the first a host sends: its CPU
 * count (sched_msg.c). Decode: 0 or -EBADMSG. */
void sched_setup_encode(uint32_t n_cpus, struct wave_msg *out);
int sched_setup_decode(const struct wave_msg *in, uint32_t *n_cpus);

/* A decision of the agent (RUN, PRESTAGE, PREEMPT) built from fields
 * the state model checked, encoded without checking them again
 * (wave_sched_msg_encode() does, for any other caller). */
void sched_decision_encode(const struct wave_sched_msg *in, struct wave_msg *out);

/* Mailboxes (wave_chan_mbox_put()): a host whose channel has
 * SCHED_MBOX_PER_CPU per CPU gets each CPU's RUN and PRESTAGE decisions in
 * mailbox sched_mbox(cpu, type), in its own memory, instead of the ring. */
#define SCHED_MBOX_PER_CPU 2u

static inline unsigned sched_mbox(uint32_t cpu, uint16_t type)
{
	return cpu * SCHED_MBOX_PER_CPU + (type == WAVE_SCHED_PRESTAGE);
}

#endif /* WAVE_DOMAINS_SCHED_H */
