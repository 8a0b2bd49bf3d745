/* SPDX-License-Identifier: MIT */
/* The mem domain's registration (lib/domains/domains.c). */
#ifndef WAVE_DOMAINS_MEM_DOMAIN_H
#define WAVE_DOMAINS_MEM_DOMAIN_H

#include "../../decision/domain.h"

extern const struct domain_desc mem_domain;

#endif /* WAVE_DOMAINS_MEM_DOMAIN_H */
