/* SPDX-License-Identifier: MIT */
/* Names of the domains and of transaction results (include/wave/domain.h). */
#include <stddef.h>

#include <wave/domain.h>

WAVE_API const char *wave_domain_name(unsigned domain)
{
	static const char *const names[WAVE_DOMAIN_COUNT] = {
		[WAVE_DOMAIN_CUSTOM] = "custom",
		[WAVE_DOMAIN_SCHED] = "sched",
		[WAVE_DOMAIN_MEM] = "mem",
		[WAVE_DOMAIN_RPC] = "rpc",
	};

	return domain < WAVE_DOMAIN_COUNT ? names[domain] : "unknown";
}

WAVE_API const char *wave_result_name(unsigned result)
{
	static const char *const names[WAVE_RESULT_COUNT] = {
		[WAVE_COMMITTED] = "committed",
		[WAVE_ABORT_STALE] = "stale",
		[WAVE_ABORT_GONE] = "gone",
		[WAVE_ABORT_NOT_ELIGIBLE] = "not_eligible",
		[WAVE_ABORT_BUSY] = "busy",
		[WAVE_ABORT_INVALID] = "invalid",
	};

	return result < WAVE_RESULT_COUNT ? names[result] : NULL;
}
