/* SPDX-License-Identifier: MIT */
/**
 * @file agent.h
 * The agent runtime: serve hosts with policy plugins.
 *
 * An agent listens on every address of its configuration (wave_config's
 * listen), accepts hosts, checks their hello (protocol version, role,
 * token, domains, heartbeat period) and welcomes or refuses them. Each
 * welcomed host gets, for each domain it asked for, its own instance
 * (context) of the domain's plugin: hosts never see each other's state. The
 * agent delivers the host's events to that instance, sends the decisions it
 * emits, drives its ticks, exchanges heartbeats, and declares the host dead
 * after heartbeat_timeout_ms of silence (its plugin instances are then
 * destroyed).
 *
 * A host of the sched domain starts with a SETUP message (its CPU count,
 * sched_msg.h); the agent then makes that host's state model
 * (sched_state.h) and starts its plugin instance on it, applies each of
 * the host's sched messages with wave_sched_state_apply(), and sends the
 * decisions the plugin makes. See docs/sched.md.
 *
 * Decisions of the custom domain are stamped before they leave: a decision
 * whose sequence word (WAVE_CUSTOM_SEQ(), host.h) is 0 gets the key and
 * sequence number of the event being handled when it is emitted from
 * on_event (if its key is 0 or that event's key), else the latest sequence
 * number received from that host, the state the plugin has seen.
 *
 * Threads. wave_agent_run() runs the whole agent on the calling thread
 * until wave_agent_stop(). While hosts send, it polls; after spin_ns
 * (channel.spin_ns) without traffic it sleeps in epoll on the listeners'
 * and channels' file descriptors until a message, a heartbeat or a tick is
 * due. wave_agent_stop(), wave_agent_reload() and wave_agent_stats_json()
 * may be called from any thread; wave_agent_stop() also from a signal
 * handler. libwave installs no signal handler: the daemon (wave-agentd)
 * does.
 */
#ifndef WAVE_AGENT_H
#define WAVE_AGENT_H

#include <wave/config.h>
#include <wave/error.h>
#include <wave/export.h>

#ifdef __cplusplus
extern "C" {
#endif

struct wave_agent;

/**
 * wave_agent_create() - load the plugins of a configuration and listen.
 * @cfg: the configuration; it must stay valid until wave_agent_destroy(),
 *       or until a wave_agent_reload() with another one has returned.
 * @out: receives the agent; untouched on failure.
 * @err: filled on failure (may be NULL): which plugin or address failed.
 *
 * Return: 0, -EINVAL (bad argument, or no listen address), -ENOMEM,
 * -WAVE_EPLUGIN, -WAVE_ECONFIG (a domain this runtime does not serve; this
 * version serves all of enum wave_domain: custom, sched, mem and rpc), or an
 * error of wave_chan_listen() (-EADDRINUSE, ...).
 */
WAVE_API WAVE_NODISCARD int wave_agent_create(const struct wave_config *cfg,
					      struct wave_agent **out, struct wave_error *err);

/**
 * wave_agent_run() - serve hosts until wave_agent_stop(); then say goodbye
 * to every host, close their channels and return. Call it on one thread at
 * a time. Return: 0, or -EINVAL, or a system error of epoll.
 */
WAVE_API int wave_agent_run(struct wave_agent *a);

/**
 * wave_agent_stop() - make wave_agent_run() return (now, or at once if it
 * is called later). Async-signal-safe: one write to an eventfd and one
 * atomic store. Return: 0 or -EINVAL.
 */
WAVE_API int wave_agent_stop(struct wave_agent *a);

/**
 * wave_agent_record() - turn the recording of decision traces on or off
 * while the agent runs (docs/trace.md).
 * @a:  the agent.
 * @on: 1 or 0.
 *
 * On: every welcomed host, and every host welcomed later, gets a trace per
 * domain in the configuration's record.path (a new file: one recorded
 * earlier is rotated, not appended to). Off: the traces are written out and
 * closed. Thread-safe, not async-signal-safe (wave-agentd calls it on
 * SIGUSR2 from its signal-waiting thread).
 *
 * Return: 0, -EINVAL, or -ENOENT when the configuration has no record.path.
 */
WAVE_API int wave_agent_record(struct wave_agent *a, int on);

/**
 * wave_agent_reload() - apply a new configuration without dropping hosts.
 * @a:   the agent.
 * @cfg: the new configuration; replaces the old one, which may be freed
 *       once this returns 0. Must stay valid as wave_agent_create()'s.
 * @err: filled on failure (may be NULL).
 *
 * For every domain whose plugin, tick or parameters changed, the new
 * plugin is loaded and, for each host, a new instance is started and the
 * host's current domain state (the latest event of each key, in sequence
 * order) is replayed into it; decisions it emits for events already
 * answered are dropped, others are sent. Then the old instances are
 * destroyed and the old plugin unloaded. Hosts keep their channels and
 * lose no event. The heartbeat settings of @cfg apply from now on; listen
 * addresses, channel sizes, auth.allow_uids, stats_socket and metrics
 * cannot change (-EINVAL).
 * On failure nothing changes. Waits for a running wave_agent_run() to
 * apply it. Not async-signal-safe.
 *
 * Return: 0, -EINVAL, -ENOMEM, -WAVE_EPLUGIN.
 */
WAVE_API WAVE_NODISCARD int wave_agent_reload(struct wave_agent *a, const struct wave_config *cfg,
					      struct wave_error *err);

/**
 * wave_agent_stats_json() - the agent's statistics as a JSON document.
 * @a:    the agent.
 * @json: receives a NUL-terminated string; free it with free().
 *
 *     {"hosts": [{"id": 1, "state": "ready", "last_seq": 10,
 *                 "replay_dropped": 0,
 *                 "domains": {"custom": {"plugin": "least_loaded",
 *                     "events_in": 10, "decisions_out": 10, "errors": 0,
 *                     "latency_ns": {"p50": 5100, "p99": 9000, "samples": 10},
 *                     "counters": {"events": 10, ...}}}}],
 *      "plugins": {"custom": {"name": "least_loaded", "version": "1.0.0",
 *                  "path": "...", "events_in": 10, "decisions_out": 10,
 *                  "errors": 0,
 *                  "latency_ns": {"p50": 5200, "p99": 9100, "samples": 10}}},
 *      "hosts_accepted": 1, "hosts_refused": 0, "hosts_dead": 0,
 *      "hosts_lost": 0}
 *
 * Latency is from the event's send stamp to its decision's send: a host's
 * over its last 512 decisions, a plugin's over the last 512 of every host
 * it serves and the last 512 of the hosts gone; "samples" counts every
 * decision that answered an event. The events, decisions, errors and
 * latencies of hosts gone (and of instances replaced by a hot swap) are
 * kept in the plugins' totals. An agent with "stats_socket" configured
 * also serves this document there (read it with the wave-stat tool).
 *
 * Return: 0, -EINVAL, -ENOMEM.
 */
WAVE_API int wave_agent_stats_json(struct wave_agent *a, char **json);

/** wave_agent_destroy() - close every channel and listener, stop every
 *  plugin and free @a. Not while wave_agent_run() runs. NULL is ignored. */
WAVE_API void wave_agent_destroy(struct wave_agent *a);

#ifdef __cplusplus
}
#endif

#endif /* WAVE_AGENT_H */
