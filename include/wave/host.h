/* SPDX-License-Identifier: MIT */
/**
 * @file host.h
 * The host side of a session: connect to an agent, send it events, apply
 * its decisions, and keep deciding locally (fallback) whenever no agent is
 * in control.
 *
 * Progress model. Everything a host session does, receiving decisions,
 * sending and checking heartbeats, noticing that the agent is gone,
 * reconnecting, happens inside wave_host_poll() and wave_host_event(), on
 * the application's thread. The one thread libwave starts is a
 * reconnection attempt's, for its channel's open only (below). Call wave_host_poll()
 * regularly: at least once per heartbeat period, or the agent takes this
 * host for dead. Callbacks run inside those calls, on that thread. One host
 * handle must not be used by two threads at once.
 *
 * States. A host is either under the agent's control (WAVE_HOST_AGENT) or
 * on its fallback policy (WAVE_HOST_FALLBACK). wave_host_connect() returns
 * under the agent's control. When the agent closes the channel, dies, is
 * silent for longer than heartbeat_timeout_ms, or takes none of a
 * timeout's worth of heartbeats in a row (timeout / period of them: it
 * heartbeats but does not read), the host switches to
 * fallback: every event still waiting for the agent's decision is decided
 * by the application's decide() callback, on_state() is told, and every
 * later event is decided locally at once. Meanwhile wave_host_poll()
 * tries to reconnect to the same URI, with a backoff doubling from
 * reconnect_min_ms to reconnect_max_ms; each attempt opens its channel on
 * a short-lived thread of its own, so that no call waits for an agent that
 * accepts connections but does not answer (wave_host_close() leaves an
 * attempt in flight to finish there; the process's exit waits for it, at
 * most connect_timeout_ms). Once an agent (the same one restarted, or another
 * one) welcomes the host, the replay() callback re-sends the application's
 * current state as events (resync), and control goes back to the agent
 * (on_state() again). An agent gone for good leaves the host on fallback,
 * working.
 *
 * The custom domain. An event is a message of a type in
 * WAVE_MSG_APP_FIRST..WAVE_MSG_APP_LAST whose first WAVE_HOST_EVENT_DATA
 * payload bytes are the application's; libwave owns the last 16 bytes
 * (payload.u64[4] is the event's key, payload.u64[5] its host sequence
 * number; read them with WAVE_CUSTOM_KEY() and WAVE_CUSTOM_SEQ()). A key
 * names one piece of the application's state (a task, a queue, a flow);
 * each event gets the next host sequence number, starting at 1, never
 * reused for the life of the handle. A decision carries the key and
 * sequence number of the state it was based on (the agent stamps them, see
 * docs/sessions.md). The host applies at most one decision per event: a
 * decision for a key whose latest event is newer is refused as stale, a
 * second decision for the same event as a duplicate; both are counted
 * (struct wave_host_stats), never applied. A decision for a key the host
 * never sent an event for is applied as it is (a hint).
 *
 * Both the host and the agent keep each key's latest event for the life
 * of the handle (to refuse stale decisions, to decide what is pending on
 * fallback, to replay the state into a hot-swapped plugin), so keys should
 * name lasting state, not single requests: a handle takes at most
 * WAVE_HOST_MAX_KEYS distinct keys, and an event with a new key past that
 * is refused with -ENOSPC. The agent drops a host whose events name more
 * (only a peer that is not this library does), so that no host can make
 * the agent's memory grow without end.
 */
#ifndef WAVE_HOST_H
#define WAVE_HOST_H

#include <stddef.h>
#include <stdint.h>

#include <wave/channel.h>
#include <wave/error.h>
#include <wave/export.h>
#include <wave/msg.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Payload bytes of a custom-domain event or decision that belong to the
 *  application; the rest carries the key and the host sequence number. */
#define WAVE_HOST_EVENT_DATA 32
/** Distinct keys a host handle takes for the custom domain (about 100
 *  bytes each, on the host and again in the agent). */
#define WAVE_HOST_MAX_KEYS (1u << 20)
/** The key of a custom-domain event or decision. */
#define WAVE_CUSTOM_KEY(m) ((m)->payload.u64[4])
/** The host sequence number of a custom-domain event, or the one a
 *  decision was based on. */
#define WAVE_CUSTOM_SEQ(m) ((m)->payload.u64[5])

/** Session protocol version this library speaks. */
#define WAVE_SESSION_PROTO_MAJOR 1
#define WAVE_SESSION_PROTO_MINOR 0

struct wave_host;

/** Who is in control of a host. */
enum wave_host_state {
	WAVE_HOST_AGENT = 1,    /**< an agent decides */
	WAVE_HOST_FALLBACK = 2, /**< the application's decide() does */
};

/** Where a decision came from. */
enum wave_decision_source {
	WAVE_DECISION_AGENT = 1,
	WAVE_DECISION_FALLBACK = 2,
};

/**
 * struct wave_host_ops - the application's callbacks. All run on the
 * thread calling wave_host_poll() or wave_host_event().
 * @size:        sizeof(struct wave_host_ops).
 * @on_decision: required. A decision to apply: from the agent, or made by
 *               @decide. Must not call wave_host_event() (it returns
 *               -EBUSY); note what to do and act after the call returns.
 * @decide:      required. The fallback policy: fill @out (its type must be
 *               in the application range; key and sequence are set by
 *               libwave) for event @ev. Return 0, or a negative error code
 *               (the event is then left without a decision and counted in
 *               fallback_errors). Must not call wave_host_event().
 * @on_state:    optional. Control changed hands; @state is the new state.
 *               Must not call wave_host_event() or wave_host_poll().
 * @replay:      optional. Resync: called when an agent takes (back)
 *               control, before on_state(); re-send every piece of current
 *               state with wave_host_event(). Return 0 or a negative error
 *               code (the host then stays on fallback and tries later).
 */
struct wave_host_ops {
	size_t size;
	void (*on_decision)(struct wave_host *h, const struct wave_msg *d,
			    enum wave_decision_source src, void *user);
	int (*decide)(struct wave_host *h, const struct wave_msg *ev, struct wave_msg *out,
		      void *user);
	void (*on_state)(struct wave_host *h, enum wave_host_state state, void *user);
	int (*replay)(struct wave_host *h, void *user);
};

/** Bit of wave_host_opts.domains for domain @d (an enum wave_domain). */
#define WAVE_HOST_DOMAIN(d) (1u << (d))

/**
 * struct wave_host_opts - how to connect. Fill with wave_host_opts_init()
 * first, then change fields.
 * @size:                 sizeof(struct wave_host_opts).
 * @domains:              WAVE_HOST_DOMAIN() bits the host asks the agent to
 *                        serve; default the custom domain only. The agent
 *                        refuses a host asking for a domain it has no
 *                        plugin for.
 * @token:                the agent's auth.token, NUL-terminated, at most 256
 *                        bytes; NULL (default) for none.
 * @heartbeat_period_ms:  how often the host sends a heartbeat (default 100).
 * @heartbeat_timeout_ms: silence after which the agent is taken for gone
 *                        (default 1000); larger than the period.
 * @reconnect_min_ms, @reconnect_max_ms: backoff between reconnection
 *                        attempts (default 10 and 1000), doubling from min
 *                        to max; it starts over at min only after an agent
 *                        that held control for @reconnect_max_ms is lost.
 * @connect_timeout_ms:   longest a connection attempt (channel open and
 *                        handshake) waits (default 1000).
 * @chan:                 channel options, or NULL for the defaults; its
 *                        timeout_ms is replaced by @connect_timeout_ms. Its
 *                        token is the transport's (fabric://), not the
 *                        session's (@token). Kept by pointer fields
 *                        (allow_uids) must outlive the host.
 * @ops:                  callbacks; required.
 * @user:                 passed to every callback.
 */
struct wave_host_opts {
	size_t size;
	uint32_t domains;
	const char *token;
	uint32_t heartbeat_period_ms;
	uint32_t heartbeat_timeout_ms;
	uint32_t reconnect_min_ms;
	uint32_t reconnect_max_ms;
	int connect_timeout_ms;
	const struct wave_chan_opts *chan;
	const struct wave_host_ops *ops;
	void *user;
};

/**
 * struct wave_host_stats - counters of a host session.
 * @events:             events accepted by wave_host_event().
 * @decisions_agent:    decisions from the agent applied.
 * @decisions_fallback: decisions made by decide() and applied.
 * @stale:              agent decisions refused: their key had a newer event.
 * @duplicates:         agent decisions refused: their event was decided.
 * @bad:                agent messages refused as malformed (a sequence
 *                      number from the future, a type outside the domains
 *                      asked for, a broken control message).
 * @fallback_errors:    events decide() could not decide.
 * @fallbacks:          times control went to the fallback policy.
 * @reconnects:         times an agent took control back.
 */
struct wave_host_stats {
	uint64_t events;
	uint64_t decisions_agent;
	uint64_t decisions_fallback;
	uint64_t stale;
	uint64_t duplicates;
	uint64_t bad;
	uint64_t fallback_errors;
	uint64_t fallbacks;
	uint64_t reconnects;
	uint64_t reserved[7];
};

/** wave_host_opts_init() - fill @opts with the defaults. Return: 0 or -EINVAL. */
WAVE_API int wave_host_opts_init(struct wave_host_opts *opts);

/**
 * wave_host_connect() - connect to an agent and hand it control.
 * @uri:  the agent's address, as for wave_chan_open().
 * @opts: options; @opts->ops is required.
 * @out:  receives the host handle; untouched on failure.
 * @err:  on failure, what went wrong for a human (may be NULL); a refusal
 *        carries the agent's reason ("token does not match", "protocol
 *        2.0, agent speaks 1.0", "domain mem: agent has no plugin").
 *
 * Blocks until the agent welcomes the host or refuses it, or
 * @opts->connect_timeout_ms passes.
 *
 * Return: 0, -EINVAL, -ENOMEM, -WAVE_EREFUSED (token, role, domains or
 * heartbeat settings refused), -WAVE_EVERSION (protocol version refused),
 * -ETIMEDOUT, -WAVE_ECORRUPT (the agent answered nonsense), or an error of
 * wave_chan_open().
 */
WAVE_API WAVE_NODISCARD int wave_host_connect(const char *uri, const struct wave_host_opts *opts,
					      struct wave_host **out, struct wave_error *err);

/**
 * wave_host_event() - report an event of the custom domain.
 * @h:   the host.
 * @ev:  the event: a type in the application range; payload bytes
 *       0..WAVE_HOST_EVENT_DATA-1 as the application likes (the rest is
 *       overwritten with @key and the sequence number). Not modified.
 * @key: which piece of state the event is about.
 * @seq: receives the event's host sequence number; may be NULL.
 *
 * Under the agent's control the event is sent to the agent and its
 * decision arrives later through on_decision(). On fallback, decide() runs
 * and on_decision() is called before this returns.
 *
 * Return: 0; -EAGAIN when the channel to the agent is full (nothing was
 * sent, no sequence number used: call wave_host_poll() and try again);
 * -ENOSPC when @key is new and the handle holds WAVE_HOST_MAX_KEYS keys
 * already; -EBUSY when called from on_decision() or decide(); -ENOMEM;
 * -EINVAL.
 */
WAVE_API int wave_host_event(struct wave_host *h, const struct wave_msg *ev, uint64_t key,
			     uint64_t *seq);

/**
 * wave_host_events() - report a burst of custom-domain events at once.
 * @h:    the host.
 * @evs:  @n events, as for wave_host_event(). Not modified.
 * @keys: the key of each.
 * @n:    how many; at least 1. At most 64 are taken per call.
 * @seqs: receives the sequence number of each event taken; may be NULL.
 *
 * Under the agent's control the events taken leave in one send: one
 * publish to the agent and one clock reading for the whole burst, where
 * wave_host_event() pays both per event. What the channel does not take
 * now is not sent and gets no sequence number: call wave_host_poll() and
 * report the rest again. On fallback every event is taken and decided in
 * turn before this returns. Events with the same key are applied in
 * order: the later one is the key's latest.
 *
 * Return: how many events were taken, from the first (0 when the channel
 * to the agent is full); -EBUSY when called from on_decision() or
 * decide(); -ENOSPC (a key is new and the handle holds WAVE_HOST_MAX_KEYS
 * keys already), -ENOMEM or -EINVAL (also when an event's type is outside
 * the application range), and then nothing was taken.
 */
WAVE_API int wave_host_events(struct wave_host *h, const struct wave_msg *evs,
			      const uint64_t *keys, unsigned n, uint64_t *seqs);

/**
 * wave_host_poll() - make progress: receive and apply decisions, send and
 * check heartbeats, switch to fallback or reconnect as needed.
 * @h:          the host.
 * @timeout_ns: when nothing is ready, wait up to this long (timeout.h) for
 *              a decision: 0 only checks; WAVE_WAIT_FOREVER waits until a
 *              decision from the agent is applied (heartbeats, fallback
 *              and reconnection go on meanwhile).
 *
 * Return: the number of decisions applied (from the agent) during the
 * call, or -EINVAL (also when called from a callback). Losing the agent is
 * not an error: see on_state().
 */
WAVE_API int wave_host_poll(struct wave_host *h, int64_t timeout_ns);

/** wave_host_state() - who is in control. Return: an enum wave_host_state,
 *  or -EINVAL. */
WAVE_API int wave_host_state(const struct wave_host *h);

/** wave_host_stats() - copy the counters of @h. Return: 0 or -EINVAL. */
WAVE_API int wave_host_stats(const struct wave_host *h, struct wave_host_stats *st);

/**
 * wave_host_close() - say goodbye to the agent (if any), close the channel
 * and free @h. Events without a decision get none. NULL is ignored.
 */
WAVE_API void wave_host_close(struct wave_host *h);

#ifdef __cplusplus
}
#endif

#endif /* WAVE_HOST_H */
