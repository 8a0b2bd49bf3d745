/* SPDX-License-Identifier: MIT */
/*
 * wave-agentd under systemd (Type=notify): state notifications, the
 * watchdog, and log priorities the journal understands. Without a service
 * manager (no NOTIFY_SOCKET, no WATCHDOG_USEC, no JOURNAL_STREAM) every
 * call here does nothing.
 */
#ifndef WAVE_TOOLS_AGENTD_SYSTEMD_H
#define WAVE_TOOLS_AGENTD_SYSTEMD_H

#include <stdatomic.h>

#include <wave/wave.h>

struct agentd_watchdog;

/* Tells the service manager @state ("READY=1", "STOPPING=1", ...). */
void agentd_notify(const char *state);
/* RELOADING=1, with the MONOTONIC_USEC that newer managers ask for. */
void agentd_notify_reloading(void);

/* When WATCHDOG_USEC asks for it, a thread that sends WATCHDOG=1 every
 * half period while @serving is set and @a's loop lets another thread
 * take its lock (wave_agent_stats_json() returns): a loop stuck in a
 * plugin stops the heartbeat, and the manager restarts the daemon. *@out
 * is NULL when no watchdog is asked for. Return: 0 or -1 (printed). */
int agentd_watchdog_start(struct wave_agent *a, const atomic_bool *serving,
			  struct agentd_watchdog **out);
/* Stops the thread and frees @w; NULL is ignored. */
void agentd_watchdog_stop(struct agentd_watchdog *w);

/* With stderr connected to the journal, libwave's messages carry their
 * priority (<3> error, <4> warning, ...). */
void agentd_journal_log(void);

#endif /* WAVE_TOOLS_AGENTD_SYSTEMD_H */
