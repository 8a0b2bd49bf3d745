/* SPDX-License-Identifier: MIT */
/* What both sides of the sched domain share: its registration
 * (lib/domains/domains.c) and its SETUP message. */
#ifndef WAVE_DOMAINS_SCHED_H
#define WAVE_DOMAINS_SCHED_H

#include <stdint.h>

#include <wave/msg.h>

#include "../../decision/domain.h"

extern const struct domain_desc sched_domain;

/* The SETUP message (sched_msg.h), the first a host sends: its CPU
 * count (sched_msg.c). Decode: 0 or -EBADMSG. */
void sched_setup_encode(uint32_t n_cpus, struct wave_msg *out);
int sched_setup_decode(const struct wave_msg *in, uint32_t *n_cpus);

#endif /* WAVE_DOMAINS_SCHED_H */
