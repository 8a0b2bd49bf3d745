/* SPDX-License-Identifier: MIT */
/* The agent side of the rpc domain: its state model's structures, shared
 * by the model (rpc_state.c), the plugin's decisions and accessors
 * (rpc_decide.c) and the domain's registration (rpc_agent.c). */
#ifndef WAVE_DOMAINS_RPC_IMPL_H
#define WAVE_DOMAINS_RPC_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include <wave/plugin_rpc.h>
#include <wave/rpc_msg.h>
#include <wave/rpc_state.h>

#include "../../decision/domain.h"
#include "../../decision/pending.h"

/* Tells a real state from any other pointer in a context's domain_state. */
#define RPC_STATE_MAGIC UINT64_C(0x7761766572706373)

/* A worker number. The period's figures are summed from its LOADs until
 * the REPORT that closes the period. */
struct rpc_worker {
	uint32_t live, gen, queue_depth, buckets;
	double load, arrival_rate, completion_rate, service_ns;
	uint64_t busy_ns, completions, service_sum_ns, max_service_ns; /* this period */
	uint64_t last_busy_ns, last_completions, last_max_service_ns;  /* the last one */
};

/* Decision kinds of a pending link (dec_pend.kind). */
enum { RPC_PEND_MOVE = 1, RPC_PEND_PRESTAGE = 2 };

/* A table entry; its MOVE in flight links it to the target worker. */
struct rpc_entry {
	uint32_t worker, seq;
	uint32_t arrivals; /* this period, saturating */
	struct dec_pend pend;
	double rate;
	uint64_t last_arrivals;
	/* A class entry's CLASS_LOADs: this period's, the last period's
	 * completions, and the decayed mean service time. */
	uint64_t completions, service_sum_ns, last_completions;
	double service_ns;
};

/* A dispatcher; its PRESTAGE in flight links it to the worker. */
struct rpc_disp {
	uint32_t staged;
	struct dec_pend pend;
};

struct wave_rpc_state {
	uint64_t magic;
	struct wave_rpc_dims dims;
	uint32_t n_entries;
	uint32_t epoch;
	uint32_t n_live;
	uint64_t report_ns;
	uint64_t reports;
	uint64_t last_now_ns, last_period_ns;
	double keep;
	struct rpc_worker *workers;
	struct rpc_entry *entries;
	struct rpc_disp *disp;
	struct wave_rpc_stats_agent stats; /* but the refusals: */
	struct dec_refusals refused;
};

/* The state behind an rpc plugin's context, or NULL (rpc_decide.c). */
struct wave_rpc_state *rpc_state_of(const struct wave_plugin_ctx *ctx);
/* The plugin's ops, for the model's calls (rpc_decide.c). */
const struct wave_rpc_ops *rpc_ops(const struct wave_plugin_ctx *ctx);
/* Views handed to the plugin. */
void rpc_worker_view(const struct wave_rpc_state *st, uint32_t w, struct wave_rpc_worker *out);
void rpc_entry_view(const struct wave_rpc_state *st, uint32_t b, struct wave_rpc_bucket *out);

/* Checks every invariant linking workers, entries and dispatchers: 0 or
 * -EPROTO. For tests and the fuzzer (not exported from libwave.so). */
int wave_rpc_state_check(const struct wave_rpc_state *st);

/* The domain's registration (rpc_agent.c). */
extern const struct domain_desc rpc_domain;

#endif /* WAVE_DOMAINS_RPC_IMPL_H */
