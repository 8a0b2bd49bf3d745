/* SPDX-License-Identifier: MIT */
/* The sched domain's registration (lib/domains/domains.c). */
#ifndef WAVE_DOMAINS_SCHED_H
#define WAVE_DOMAINS_SCHED_H

#include "../../decision/domain.h"

extern const struct domain_desc sched_domain;

#endif /* WAVE_DOMAINS_SCHED_H */
