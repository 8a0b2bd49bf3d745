/* SPDX-License-Identifier: MIT */
/**
 * @file wave.h
 * libwave: offload resource-management decisions from a host runtime to an
 * agent. Include this one header to get the whole public API.
 */
#ifndef WAVE_WAVE_H
#define WAVE_WAVE_H

#include <wave/export.h>
#include <wave/version.h>
#include <wave/error.h>
#include <wave/log.h>
#include <wave/msg.h>
#include <wave/timeout.h>
#include <wave/domain.h>
#include <wave/channel.h>
#include <wave/plugin.h>
#include <wave/plugin_custom.h>
#include <wave/plugin_loader.h>
#include <wave/config.h>
#include <wave/host.h>
#include <wave/agent.h>
#include <wave/mem_msg.h>
#include <wave/mem_state.h>
#include <wave/plugin_mem.h>
#include <wave/sched_msg.h>
#include <wave/sched_state.h>
#include <wave/plugin_sched.h>
#include <wave/sched.h>
#include <wave/rpc.h>
#include <wave/rpc_msg.h>
#include <wave/rpc_state.h>
#include <wave/plugin_rpc.h>
#include <wave/rpc_reuseport.h>
#include <wave/mem.h>

#endif /* WAVE_WAVE_H */
