/* SPDX-License-Identifier: MIT */
/* The custom domain's registration (lib/domains/domains.c). */
#ifndef WAVE_DOMAINS_CUSTOM_H
#define WAVE_DOMAINS_CUSTOM_H

#include "../../decision/domain.h"

extern const struct domain_desc custom_domain;

#endif /* WAVE_DOMAINS_CUSTOM_H */
