/* SPDX-License-Identifier: MIT */
/*
 * The rpc domain's part of replay (lib/replay/replay.h): the arrivals and
 * service times a trace shows, played by a model of the server's workers
 * against a policy, with per-worker load, queueing delay, moves and
 * imbalance as the quality figures (rpc_replay.c); the trace as
 * Chrome/Perfetto trace events and its messages as JSON fields
 * (rpc_replay_export.c).
 */
#ifndef WAVE_DOMAINS_RPC_REPLAY_H
#define WAVE_DOMAINS_RPC_REPLAY_H

#include <wave/rpc_msg.h>

#include "../../replay/replay.h"

extern const struct replay_model rpc_replay_model;

/* The host's SETUP (its sizes): from the trace's header, else its first
 * SETUP event. 0 or -EBADMSG. */
int rpc_replay_setup(struct trace_reader *r, struct wave_msg *setup, struct wave_rpc_msg *d);

int rpc_replay_chrome(struct trace_reader *r, FILE *f, struct wave_error *err);
int rpc_replay_describe(const struct trace_meta *meta, const struct wave_msg *m, char *buf,
			size_t size);

#endif /* WAVE_DOMAINS_RPC_REPLAY_H */
