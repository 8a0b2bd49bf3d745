/* SPDX-License-Identifier: MIT */
/*
 * The domains' replay models (lib/replay/replay.h): the one table a domain
 * adds its model to, as domains.c is for its agent side. Built into
 * wave_replay, not libwave.
 */
#include <wave/domain.h>

#include "../replay/replay.h"
#include "mem/mem_replay.h"
#include "rpc/rpc_replay.h"
#include "sched/sched_replay.h"

const struct replay_model *const replay_models[WAVE_DOMAIN_COUNT] = {
	[WAVE_DOMAIN_SCHED] = &sched_replay_model,
	[WAVE_DOMAIN_MEM] = &mem_replay_model,
	[WAVE_DOMAIN_RPC] = &rpc_replay_model,
};
