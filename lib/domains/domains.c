/* SPDX-License-Identifier: MIT */
/*
 * The domains libwave serves: the one table a new domain adds itself to
 * (docs/domains.md). Everything shared (the plugin loader, the agent
 * runtime) finds a domain here and calls it through its descriptor.
 */
#include "../decision/domain.h"
#include "custom/custom.h"
#include "mem/mem_domain.h"
#include "rpc/rpc_impl.h"
#include "sched/sched.h"

const struct domain_desc *const wave_domains[WAVE_DOMAIN_COUNT] = {
	[WAVE_DOMAIN_CUSTOM] = &custom_domain,
	[WAVE_DOMAIN_SCHED] = &sched_domain,
	[WAVE_DOMAIN_MEM] = &mem_domain,
	[WAVE_DOMAIN_RPC] = &rpc_domain,
};

const struct domain_desc *domain_of_type(uint16_t type)
{
	for (unsigned d = 0; d < WAVE_DOMAIN_COUNT; d++)
		if (wave_domains[d] && type >= wave_domains[d]->first &&
		    type <= wave_domains[d]->last)
			return wave_domains[d];
	return NULL;
}
