/* SPDX-License-Identifier: MIT */
/*
 * The mem domain's part of replay (lib/replay/replay.h): the accesses a
 * trace shows, played by a model of the host's tiers against a policy,
 * with the share of accesses served by the fast tier, the migrations and
 * their aborts and the slow tier's occupancy as the quality figures
 * (mem_replay.c); the trace as Chrome/Perfetto trace events and its
 * messages as JSON fields (mem_replay_export.c).
 */
#ifndef WAVE_DOMAINS_MEM_REPLAY_H
#define WAVE_DOMAINS_MEM_REPLAY_H

#include "../../replay/replay.h"

extern const struct replay_model mem_replay_model;

/* The host's SETUP (its tiers): from the trace's header, else its first
 * SETUP event. 0 or -EBADMSG. */
int mem_replay_setup(struct trace_reader *r, struct wave_msg *setup, uint32_t *n_tiers);

/* The recorded placement of a trace's chunks (for the export): a host
 * made from @setup (a checked SETUP), each decoded event applied in
 * order, how many chunks each tier holds. */
struct mhost;
struct wave_mem_msg;
struct mhost *mem_replay_host_new(const struct wave_msg *setup);
void mem_replay_host_event(struct mhost *h, const struct wave_mem_msg *d);
uint64_t mem_replay_host_used(const struct mhost *h, uint32_t tier);
void mem_replay_host_free(struct mhost *h);

int mem_replay_chrome(struct trace_reader *r, FILE *f, struct wave_error *err);
int mem_replay_describe(const struct trace_meta *meta, const struct wave_msg *m, char *buf,
			size_t size);

#endif /* WAVE_DOMAINS_MEM_REPLAY_H */
