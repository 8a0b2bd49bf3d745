/* SPDX-License-Identifier: MIT */
/*
 * The sched domain's part of replay (lib/replay/replay.h): the workload a
 * trace shows, played by the simulated host (sched_sim.c) against a
 * policy, with queueing delay and run time per task as the quality
 * figures (sched_replay.c); the trace as Chrome/Perfetto trace events and
 * its messages as JSON fields (sched_replay_export.c).
 */
#ifndef WAVE_DOMAINS_SCHED_REPLAY_H
#define WAVE_DOMAINS_SCHED_REPLAY_H

#include "../../replay/replay.h"

extern const struct replay_model sched_replay_model;

/* The CPU count of a trace's setup messages (SETUP): 0 or -EBADMSG. */
int sched_replay_cpus(struct trace_reader *r, uint32_t *n_cpus);

int sched_replay_chrome(struct trace_reader *r, FILE *f, struct wave_error *err);
int sched_replay_describe(const struct trace_meta *meta, const struct wave_msg *m, char *buf,
			  size_t size);

#endif /* WAVE_DOMAINS_SCHED_REPLAY_H */
