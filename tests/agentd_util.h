/* SPDX-License-Identifier: MIT */
/*
 * wave-agentd for integration tests: a real daemon process on a
 * configuration the test writes, its log kept for the test to read.
 */
#ifndef WAVE_TESTS_AGENTD_UTIL_H
#define WAVE_TESTS_AGENTD_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <wave/wave.h>

struct agentd {
	char dir[64];  /* a fresh directory, removed by agentd_fini() */
	char cfg[128]; /* DIR/agent.json */
	char uri[128]; /* where the daemon listens */
	pid_t pid;     /* 0: not running */
};

/* Makes /tmp/wave-@name-XXXXXX; the daemon will listen on @uri (NULL:
 * shm://DIR/agent.sock). */
void agentd_init(struct agentd *e, const char *name, const char *uri);
/* Writes the configuration: listen on the URI, heartbeats every 50 ms
 * (timeout 5 s), plugins from @plugin_dir, "domains": @domains (JSON).
 * Written aside and renamed: a reload never reads half a file. */
void agentd_write_cfg(struct agentd *e, const char *plugin_dir, const char *domains);
/* Runs the daemon @agentd (a path) on the configuration, logging at level
 * info into DIR/agentd.log. */
void agentd_start(struct agentd *e, const char *agentd);
/* Starts the daemon @agentd on the configuration @cfg, its stderr
 * appended to @log; with @log_info, at WAVE_LOG=info. Return: its pid. */
pid_t agentd_spawn(const char *agentd, const char *cfg, const char *log, bool log_info);
/* Sends @sig and reaps the daemon. */
void agentd_kill(struct agentd *e, int sig);
/* Whether the daemon's log holds @text. */
bool agentd_log_has(const struct agentd *e, const char *text);
/* Whether the log of a daemon started in @dir (@dir/agentd.log) holds
 * @text. */
bool agentd_dir_log_has(const char *dir, const char *text);
/* Host options for the daemon of agentd_write_cfg(): heartbeats every
 * 50 ms as its own, the agent judged dead after @heartbeat_timeout_ms,
 * reconnection retried every 1 to 20 ms, each attempt @connect_timeout_ms
 * at most. */
void agentd_host_opts(struct wave_host_opts *ho, uint32_t heartbeat_timeout_ms,
		      uint32_t connect_timeout_ms);
/* Stops a running daemon (SIGTERM) and removes the directory. */
void agentd_fini(struct agentd *e);

#endif
