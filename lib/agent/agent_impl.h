/* SPDX-License-Identifier: MIT */
/* Internal structures of the agent runtime (lib/agent/agent*.c). */
#ifndef WAVE_AGENT_AGENT_IMPL_H
#define WAVE_AGENT_AGENT_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <wave/agent.h>
#include <wave/channel.h>
#include <wave/plugin_loader.h>

#include "../core/stamp.h"
#include "../decision/domain.h"
#include "../session/proto.h"
#include "../trace/trace_async.h"

enum ahost_state {
	AHOST_HELLO, /* waiting for the hello and its AUTH messages */
	AHOST_READY,
};

struct agent_host {
	struct wave_agent *a;
	uint64_t id;
	struct wave_chan *ch;
	int fd; /* the channel's fd, or -1: the agent must poll it */
	unsigned n_mbox; /* the channel's mailboxes */
	enum ahost_state state;
	struct wave_hello hello;
	unsigned auth_got, auth_need;
	uint64_t deadline_ns; /* the hello's */
	uint64_t last_rx_ns, next_hb_ns, hb_count;
	uint64_t timers_due; /* agent_host_timers() has nothing to do before */
	/* The domains it asked for (hello.domains): each one's plugin
	 * instance and state. */
	struct dom_host dom[WAVE_DOMAIN_COUNT];
	bool batching;       /* handling a burst: decisions wait in the outbox */
	/* Decisions the host's full ring did not take yet, sent first. While
	 * any wait, the host's events are not read: backpressure, not loss. */
	struct wave_msg *outbox;
	uint8_t *ob_dom; /* the domain of each, for what follows its sending */
	unsigned ob_head, ob_n, ob_cap;
	/* Recording (agent_record.c): a trace per domain while it is on,
	 * written by a thread of its own, the time its records take (the
	 * loop's clock at the burst being handled: no clock read of their
	 * own), and each domain's latest setup message
	 * (domain_desc.setup_type) for the traces' headers. */
	struct trace_async *rec[WAVE_DOMAIN_COUNT];
	uint64_t rec_now;
	struct wave_msg setup[WAVE_DOMAIN_COUNT];
	uint32_t has_setup; /* bit per domain */
};

/* A stats_socket reader still being written to: the agent never blocks on
 * one, it writes what the socket takes each time round the loop. */
struct agent_stats_reader {
	int fd;
	char *buf;
	size_t len, off;
	uint64_t deadline_ns; /* dropped if not done by then */
};

/* Readers served at once; more wait in the listen backlog. */
#define AGENT_STATS_READERS 8

struct agent_statsock {
	int fd; /* listening, or -1 */
	char *path;
	dev_t dev; /* identity of the socket file made, to unlink only it */
	ino_t ino;
	struct agent_stats_reader r[AGENT_STATS_READERS];
	unsigned n;
};

struct agent_domain {
	struct wave_plugin *plugin; /* NULL: domain not served */
	const struct wave_config_domain *dcfg;
	uint64_t events_in, decisions_out, errors; /* of hosts gone */
	/* Decision latencies of instances gone (hosts gone, plugins swapped
	 * out): the last AGENT_LAT_KEEP kept, @n_lat counted, for the
	 * plugin's percentiles. */
	uint64_t lat[AGENT_LAT_KEEP];
	uint64_t lat_pos, n_lat;
};

struct wave_agent {
	const struct wave_config *cfg;
	struct agent_domain dom[WAVE_DOMAIN_COUNT];
	struct wave_chan_listener **lis;
	size_t n_lis;
	/* A listener's fd woke the loop (it is armed one shot at a time), and
	 * when to arm them again: at once if that found a host, else after
	 * AGENT_LIS_REARM_NS (0: armed). */
	bool lis_woke;
	uint64_t lis_rearm_at;
	struct agent_host **hosts;
	size_t n_hosts, cap_hosts;
	uint64_t next_id;
	uint64_t accepted, refused, dead;
	uint64_t lost; /* welcomed hosts whose channel closed without a goodbye */
	int epfd, stopfd;
	atomic_int stop;
	/* Held by the loop while it works, by stats and reload callers. */
	pthread_mutex_t lock;
	pthread_cond_t reloaded;
	/* Other threads waiting for @lock; the loop lets them in (@turn). */
	atomic_int waiters;
	pthread_cond_t turn;
	pthread_mutex_t reload_mu; /* one wave_agent_reload() at a time */
	bool running;
	const struct wave_config *reload_cfg; /* handed to the loop */
	struct wave_error *reload_err;
	int reload_ret;
	bool reload_done;
	struct agent_statsock stats; /* the stats_socket, if configured */
	bool recording; /* wave_agent_record(); configuration's record.enabled */
	/* The loop's clock (and its callees'), used under @lock only. */
	struct wave_stamp_clock clk;
	/* With @busy_on (agent_busy_count(): for the benchmarks, which must
	 * tell the loop's work from its polling), the loop adds up, for each
	 * burst of messages it receives, the time from their arrival to its
	 * decisions' departure (the loop's clock), the messages and the bursts. Off, a
	 * burst costs one load and one branch. Written by the loop only;
	 * read by any thread (agent_busy_read()). */
	atomic_bool busy_on;
	_Atomic uint64_t busy_ns, busy_msgs, busy_bursts;
	_Atomic uint64_t busy_dropped; /* bursts too long to be the loop's alone */
};

/* agent.c: counts the loop's busy time (struct wave_agent.busy_on) or
 * stops counting; reads what it counted so far. Internal: for the
 * benchmarks (wave-bench-agent --record-sets), not exported. */
void agent_busy_count(struct wave_agent *a, bool on);
void agent_busy_read(struct wave_agent *a, uint64_t *ns, uint64_t *msgs, uint64_t *bursts,
		     uint64_t *dropped);

/* agent.c: take and release the lock from outside the loop. */
void agent_lock_ext(struct wave_agent *a);
void agent_unlock_ext(struct wave_agent *a);

/* agent_host.c */
int agent_host_add(struct wave_agent *a, struct wave_chan *ch);
void agent_host_remove(struct wave_agent *a, size_t i, const char *why);
/* Receives and handles what host @i sent, then sends the decisions. @now
 * is the loop's clock; when messages came, it is read again after they
 * were handled and updated. Return: messages received (or sent from the
 * outbox), or -1 when the host was removed. */
int agent_host_service(struct wave_agent *a, size_t i, uint64_t *now);
/* Heartbeats, deadlines and ticks of host @i; -1 when it was removed. */
int agent_host_timers(struct wave_agent *a, size_t i, uint64_t now);
/* When host @i next needs attention (ns), for the sleep timeout. */
uint64_t agent_host_next_due(const struct agent_host *h);
void agent_host_bye(struct agent_host *h);
/* Starts a plugin instance for domain @d of host @h with plugin @p into
 * @out (the host's own, or a fresh one for a hot swap). */
int agent_inst_start(struct agent_host *h, unsigned d, struct wave_plugin *p,
		     const struct wave_config_domain *dcfg, struct agent_inst *out,
		     struct wave_error *err);

/* agent_stats.c: the statistics JSON; the caller holds the lock. */
int agent_stats_dump(const struct wave_agent *a, char **json);
/* Keeps the latencies of instance @in, about to go, in @dom's totals. */
void agent_lat_retire(struct agent_domain *dom, const struct agent_inst *in);

/* agent_statsock.c: the stats_socket. Listen (nothing when not
 * configured), serve readers without blocking (lock held), close. */
int agent_statsock_open(struct wave_agent *a, struct wave_error *err);
void agent_statsock_serve(struct wave_agent *a, uint64_t now);
void agent_statsock_close(struct wave_agent *a);

/* agent_record.c: decision traces (docs/trace.md). */
/* Starts host @h's traces, one per domain it was welcomed with, when the
 * agent records (else nothing). Failures are logged: the host is served
 * all the same. */
void agent_record_host(struct agent_host *h);
/* Ends them (written out and closed). */
void agent_record_host_stop(struct agent_host *h);
/* A message of domain @d came from @h: kept if it is the domain's setup. */
void agent_record_setup(struct agent_host *h, unsigned d, const struct wave_msg *m);
/* After a hot swap of the @domains (bit per domain): each host's trace of
 * them starts again, in a new file whose header names the new plugin. */
void agent_record_restart(struct wave_agent *a, uint32_t domains);
/* Hands what @h's traces hold to their writers (the agent goes idle). */
void agent_record_checkpoint(struct agent_host *h);

/* The hook on every event in and decision out: a load and a branch when
 * not recording; a line copied into the trace's ring when recording. */
static inline void agent_rec(struct agent_host *h, unsigned d, enum trace_kind k,
			     const struct wave_msg *m)
{
	if (h->rec[d])
		trace_async_put(h->rec[d], k, h->rec_now, m);
}

/* agent_reload.c */
int agent_apply_reload(struct wave_agent *a, const struct wave_config *cfg,
		       struct wave_error *err);
int agent_load_plugin(const struct wave_config *cfg, unsigned d, struct wave_plugin **out,
		      struct wave_error *err);

#endif /* WAVE_AGENT_AGENT_IMPL_H */
