/* SPDX-License-Identifier: MIT */
/*
 * A simulated host for the sched domain: tasks and CPUs that exist only as
 * numbers, driven by a test or a benchmark, talking to a real state model
 * and a real policy plugin through encoded messages, without threads or a
 * channel. The host side behaves as the protocol says (sched_msg.h): it
 * commits a decision only if the task's sequence number is unchanged,
 * takes a CPU's prestaged task as soon as the CPU has nothing to run, and
 * reports the end of a CPU's task before starting another there. Messages
 * in both directions are queued and delivered in order until the system is
 * quiet, so every decision sees the host state it would see on a real,
 * ordered channel.
 *
 * It lives with the domain, outside libwave (the static library
 * wave_replay), so that the tests, wave-bench-sched-scale and wave-replay's
 * quality model (sched_replay.c) all run this one host.
 */
#ifndef WAVE_DOMAINS_SCHED_SIM_H
#define WAVE_DOMAINS_SCHED_SIM_H

#include <stdbool.h>
#include <stdint.h>

#include <wave/plugin_loader.h>
#include <wave/sched_state.h>

#include "../../replay/replay.h"

struct sim_task {
	uint64_t seq;
	uint64_t run_start_ns;
	uint64_t ran_ns; /* total run time */
	uint64_t ready_ns; /* when it last became runnable */
	uint32_t state;  /* enum wave_sched_task_state */
	uint32_t cpu;
	uint32_t runs;   /* commits */
	bool live;
};

struct sim_cpu {
	uint64_t running; /* task id or 0 */
	uint64_t slot_task, slot_seq;
};

struct sim {
	struct wave_sched_state *st;
	struct wave_plugin_ctx *ctx;
	uint32_t n_cpus;
	uint64_t max_tasks; /* task ids are 1..max_tasks */
	struct sim_cpu *cpus;
	struct sim_task *tasks;
	struct replay_q to_agent, to_host;
	uint64_t now;
	uint32_t n_running;
	uint64_t n_waiting;     /* runnable, not running */
	uint64_t delivered;     /* messages applied by the agent */
	uint64_t apply_errors;  /* ... that the agent refused */
	uint64_t commits;
	uint64_t aborts[WAVE_SCHED_RESULT_COUNT];
	uint64_t preempts_done, preempts_aborted;
	size_t emit_limit;      /* 0: unlimited; else the channel's capacity */
	bool time_agent;        /* sum the time spent in the agent: */
	uint64_t agent_ns;      /* in wave_sched_state_apply(), plugin included */
	/* Optional: told of each commit, after it, with how long the task
	 * waited runnable since it last became so. */
	void (*on_run)(void *user, uint64_t id, uint32_t cpu, uint64_t waited_ns);
	void *user;
	/* Optional record of commits, in order: task ids and their CPUs. */
	uint64_t *log_task;
	uint32_t *log_cpu;
	size_t log_len, log_cap;
};

/* Starts @p with @params (may be NULL) over a fresh state. 0 or -errno. */
int sim_create(struct sim *s, uint32_t n_cpus, uint64_t max_tasks, struct wave_plugin *p,
	       const struct wave_params *params);
void sim_destroy(struct sim *s);
/* Swaps the policy at run time: a new context for @p over the same state,
 * the old one destroyed, the state replayed into the new one. */
int sim_swap(struct sim *s, struct wave_plugin *p, const struct wave_params *params);
/* Record up to @cap commits in log_task/log_cpu. */
int sim_log(struct sim *s, size_t cap);

/* Host actions; each runs the system until it is quiet. Return 0, or
 * -EINVAL when the action is impossible on the host (a test bug). */
int sim_new(struct sim *s, uint64_t id, bool runnable, unsigned hint_kind, uint64_t hint);
int sim_wakeup(struct sim *s, uint64_t id);
int sim_block(struct sim *s, uint64_t id);
int sim_yield(struct sim *s, uint64_t id);
int sim_exit(struct sim *s, uint64_t id);
int sim_tick(struct sim *s, uint32_t cpu);
/* Sends one raw message to the agent and runs until quiet. */
int sim_raw(struct sim *s, const struct wave_sched_msg *m);

/* 0 when the host and the agent agree on every CPU, no task waits while a
 * CPU is free, and no decision was aborted; else a negative number naming
 * the first failed check (-1 .. -4). */
int sim_check(struct sim *s);

#endif
