/* SPDX-License-Identifier: MIT */
/* Helpers of the session tests: agents (in-process or wave-agentd), a
 * recording host application, and waiting on conditions. */
#ifndef WAVE_TEST_SESSION_UTIL_H
#define WAVE_TEST_SESSION_UTIL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <wave/wave.h>

#include "agentd_util.h"
#include "least_loaded/least_loaded.h"

#define LL_TYPE(t) ((uint16_t)(WAVE_MSG_APP_FIRST + (t)))
/* Keys of LOAD reports (state, never answered) start here. */
#define LOAD_KEY_BASE (1ull << 40)
#define MAX_KEYS 8192

/* An agent running wave_agent_run() on a thread of this process. */
struct tagent {
	struct wave_config *cfg;
	struct wave_agent *a;
	pthread_t thr;
};

/* Writes an agent configuration for socket @dir/agent.sock into
 * @dir/agent.json and returns its path (static buffer). @extra is inserted
 * among the top-level keys ("" or "\"auth\": {...},"); @params is the
 * least_loaded params object. */
/* The agent's heartbeat timeout write_config() writes (default 5000). */
extern unsigned cfg_timeout_ms;
const char *write_config(const char *dir, const char *extra, const char *params);
void tagent_start(struct tagent *t, const char *cfg_path);
void tagent_stop(struct tagent *t);

/* A host application: counts decisions per key, decides on fallback with
 * worker 99, records state changes. */
struct app {
	struct wave_host *h;
	unsigned decisions[MAX_KEYS];
	uint32_t worker[MAX_KEYS];
	unsigned agent_decisions, fallback_decisions, answered;
	unsigned to_fallback, to_agent, replays;
	enum wave_host_state state;
	uint64_t replay_load; /* a LOAD report replay() re-sends, if set */
};

void app_opts(struct app *app, struct wave_host_opts *o);
/* Connects, retrying while no agent listens yet (the daemon is starting). */
int app_connect(struct app *app, const char *uri, const struct wave_host_opts *o,
		struct wave_error *err, bool retry);
/* Sends ASK for key @key, polling while the channel is full. */
void app_ask(struct app *app, uint64_t key);
void app_load(struct app *app, uint64_t key, uint32_t worker, uint32_t load);
/* Polls until @cond(app) holds. The test's timeout catches a hang. */
void app_poll_until(struct app *app, bool (*cond)(const struct app *));

/* Starts the real daemon on @cfg_path; returns its pid. */
pid_t daemon_start(const char *cfg_path);
/* SIGKILLs (or, with @sig, signals) @pid and reaps it; returns the status. */
int daemon_kill(pid_t pid, int sig);

#endif
