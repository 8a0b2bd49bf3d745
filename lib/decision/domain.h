/* SPDX-License-Identifier: MIT */
/*
 * What a domain registers with the plugin loader and the agent runtime,
 * and what the agent runtime gives it. Shared code calls a domain only
 * through its struct domain_desc, found in wave_domains[] (defined in
 * lib/domains/domains.c, the one table a new domain adds itself to); it
 * never asks which domain it is serving. See docs/domains.md.
 */
#ifndef WAVE_DECISION_DOMAIN_H
#define WAVE_DECISION_DOMAIN_H

#include <stdbool.h>
#include <stdint.h>

#include <wave/domain.h>
#include <wave/error.h>
#include <wave/msg.h>

#include "u64map.h"

struct wave_plugin_ctx;
struct wave_plugin_desc;

/* Decision latencies kept per plugin instance, for p50/p99. */
#define AGENT_LAT_KEEP 512u

/* One plugin instance serving one host in one domain. A hot swap replaces
 * it whole; the domain's state for the host (struct dom_host.state) stays. */
struct agent_inst {
	struct wave_plugin_ctx *ctx; /* NULL: not started */
	uint64_t events_in, decisions_out, errors;
	uint64_t n_lat; /* all recorded; the last AGENT_LAT_KEEP are kept */
	uint64_t lat[AGENT_LAT_KEEP];
};

/* A decision sent at @now answered an event stamped @stamp: its latency,
 * unless the host does not stamp (0, WAVE_CHAN_F_NO_STAMP) or the stamp is
 * not behind @now. */
static inline void agent_lat_since(struct agent_inst *in, uint64_t now, uint64_t stamp)
{
	if (!stamp || now <= stamp)
		return;
	in->lat[in->n_lat % AGENT_LAT_KEEP] = now - stamp;
	in->n_lat++;
}

/*
 * struct dom_host - one domain of one host, in the agent. The runtime
 * fills everything but @state and @cur_ev; the domain's ops keep their
 * per-host state in @state (made when needed, freed by fini).
 * @host_id: the host's number, for messages.
 * @inst:    the plugin instance; started by the domain with @start.
 * @state:   the domain's own.
 * @cur_ev:  the event being handled, set by the domain around the plugin's
 *           call (decisions made meanwhile answer it: their latency).
 * @start:   the runtime's: starts @inst with the domain's plugin and
 *           configuration, @domain_state behind its accessors (kept in
 *           @domain_state for the instances of later hot swaps). Return: 0
 *           or an error (@err filled).
 * @rt:      the runtime's own.
 * @objects: the runtime's guess of the objects (sched: tasks) the domain's
 *           state will hold, for it to size its tables at its start (0:
 *           none; a replay repeated passes what the last one held); fini
 *           leaves there what its tables had room for.
 * @keep:    the runtime's: fini is to leave the domain's object table
 *           (sched: its tasks), emptied (u64map_clear()), in @kept, and
 *           the next start on this dom_host takes it instead of making
 *           one: the same slots, not freed, allocated and zeroed again (a
 *           replay repeated). The agent does not set it: a host gone
 *           leaves nothing behind.
 * @kept:    with @keep: that table, or none (zero); the runtime frees
 *           what is left in it (u64map_fini()).
 */
struct dom_host {
	/* What every event and decision touches first, on one line; the
	 * instance's latency ring (4 KiB) after it; @objects, read at the
	 * domain's start and written at its end, last. */
	void *state;
	const struct wave_msg *cur_ev;
	void *rt;
	uint64_t host_id;
	const void *domain_state;
	int (*start)(struct dom_host *dh, const void *domain_state, struct wave_error *err);
	struct agent_inst inst;
	size_t objects;
	bool keep;
	struct u64map kept;
};

/* What to do with a decision a plugin emitted (domain_desc.prepare). */
enum dom_emit {
	DOM_EMIT_DROP,  /* nothing: the host would refuse it */
	DOM_EMIT_NOW,   /* send it at once */
	DOM_EMIT_BATCH, /* it may wait for the end of the host's burst of events */
};

/*
 * struct domain_desc - a domain, as the shared code sees it.
 * @id:          enum wave_domain.
 * @first, @last: the message types of the domain (both directions).
 * @setup_type:  optional (0: none); the message type by which a host
 *               describes itself to the domain (sched: SETUP). The agent
 *               keeps the latest such message of each host and puts it in
 *               the header of the host's decision traces, so that a trace
 *               begun later, or rotated, can be replayed alone.
 *
 * For the plugin runtime (lib/plugin):
 * @abi_minor:   the plugin ABI minor version that introduced the domain.
 * @check_ops:   is the descriptor's ops table usable (size, required
 *               ops)? 0, or -WAVE_EPLUGIN with @err naming what is wrong.
 * @has_tick:    optional; does plugin @d have a periodic op?
 * @tick:        with @has_tick: run it (wave_plugin_ctx_tick()).
 *
 * For the agent runtime (lib/agent); all run with the agent's lock held:
 * @welcome:     optional; the host was welcomed with this domain. Return
 *               0, or -1 to refuse the host.
 * @msg:         a message of the range from a welcomed host. Return 0, or
 *               -1 to drop the host (it broke the protocol).
 * @emit:        how its decisions leave when it has no @prepare.
 * @prepare:     optional; a decision the plugin emitted, about to leave
 *               (stamp it, mark what it answers): an enum dom_emit. The
 *               runtime has marked its tstamp with the send stamp of the
 *               event being handled (UINT64_MAX for an unstamped event, 0
 *               outside an event); prepare may clear the mark (0: it
 *               answers no event known here). Once sent, a marked
 *               decision's latency runs from its mark; an unmarked one
 *               goes to @sent. The channel replaces the mark with its own
 *               send stamp: the host never sees it.
 * @mailbox:     optional; after prepare: the mailbox of the host's channel
 *               (wave_chan_mbox_put()) the decision goes to, below
 *               @n_mbox (the channel's count, > 0), or -1 for the ring. A
 *               channel's mailboxes belong to the domain whose host side
 *               asked for them; a full mailbox is backpressure (unprepare).
 * @unprepare:   optional; it did not leave after all (the ring and the
 *               outbox, or its mailbox, were full): undo what prepare marked.
 * @sent:        optional; an unmarked decision left at @now.
 * @replay:      a new plugin instance (hot swap): walk the state into it.
 * @counters:    optional; the host's domain-level counters for the
 *               statistics: up to @max names and values. Return: how many.
 * @fini:        optional; frees @state (the instance is stopped first).
 */
struct domain_desc {
	unsigned id;
	uint16_t first, last;
	uint16_t setup_type;
	uint32_t abi_minor;
	int (*check_ops)(const struct wave_plugin_desc *d, const char *src,
			 struct wave_error *err);
	bool (*has_tick)(const struct wave_plugin_desc *d);
	void (*tick)(struct wave_plugin_ctx *ctx, uint64_t now_ns);
	int (*welcome)(struct dom_host *dh);
	int (*msg)(struct dom_host *dh, const struct wave_msg *m);
	enum dom_emit emit;
	enum dom_emit (*prepare)(struct dom_host *dh, struct wave_msg *m);
	int (*mailbox)(const struct dom_host *dh, const struct wave_msg *m, unsigned n_mbox);
	void (*unprepare)(struct dom_host *dh, const struct wave_msg *m);
	void (*sent)(struct dom_host *dh, const struct wave_msg *m, uint64_t now);
	void (*replay)(struct dom_host *dh);
	unsigned (*counters)(const struct dom_host *dh, const char **names, uint64_t *values,
			     unsigned max);
	void (*fini)(struct dom_host *dh);
	/* One of the domain's plugin accessors (wave_plugin_<domain>_*()),
	 * or NULL when they live in this descriptor's own file. Plugins call
	 * them and libwave does not, so a program linked with libwave.a and
	 * -Wl,--export-dynamic would leave their object file out and none of
	 * the domain's plugins would load: naming one here keeps them in
	 * every program that serves the domain. */
	void (*accessor)(void);
};

/* The domains libwave serves, by enum wave_domain; NULL for one reserved
 * but not served yet (lib/domains/domains.c). */
extern const struct domain_desc *const wave_domains[WAVE_DOMAIN_COUNT];

/* The domain owning message type @type, or NULL. */
const struct domain_desc *domain_of_type(uint16_t type);

/* @m, a decision @dh's plugin emitted, about to leave: marked with the
 * event being handled, then stamped or dropped by its domain
 * (domain_desc.prepare). */
static inline enum dom_emit dom_prepare(const struct domain_desc *dom, struct dom_host *dh,
					struct wave_msg *m)
{
	const struct wave_msg *ev = dh->cur_ev;

	m->tstamp = ev ? (ev->tstamp ? ev->tstamp : UINT64_MAX) : 0;
	return dom->prepare ? dom->prepare(dh, m) : dom->emit;
}

/* @m, prepared, left at @now: its latency, from its mark or by its domain. */
static inline void dom_sent(const struct domain_desc *dom, struct dom_host *dh,
			    const struct wave_msg *m, uint64_t now)
{
	if (m->tstamp)
		agent_lat_since(&dh->inst, now, m->tstamp);
	else if (dom->sent)
		dom->sent(dh, m, now);
}

#endif /* WAVE_DECISION_DOMAIN_H */
