/* SPDX-License-Identifier: MIT */
/*
 * The host session as the domains see it. The session (host.c) knows no
 * domain: it carries the handshake, heartbeats, fallback, reconnection and
 * resync, and routes each message from the agent to the domain that
 * registered its type range. A domain's host side (lib/domains/<d>/) makes
 * a session with host_new(), registers itself with host_add_domain(), and
 * starts it with host_start().
 *
 * Everything runs under the caller's serialisation: a session is used by
 * one thread at a time, and the domains' callbacks run inside
 * wave_host_poll(), host_start() and host_send().
 */
#ifndef WAVE_SESSION_HOST_IMPL_H
#define WAVE_SESSION_HOST_IMPL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <wave/domain.h>
#include <wave/host.h>

/*
 * struct host_domain - one domain served by a session.
 * @id:       enum wave_domain; one registration per domain.
 * @first, @last: the message types from the agent that are the domain's.
 * @on_msg:   a message of the range, from the agent in control. Return:
 *            how many decisions it applied (wave_host_poll() returns the
 *            sum and stops waiting once there are some).
 * @on_state: optional; control changed hands (after a replay when the
 *            agent takes control, before anything else when it is lost).
 * @replay:   optional; resync: send the domain's current state with
 *            host_send(). Return 0, or an error (the host then stays on
 *            fallback and tries again later).
 * @stats:    optional; adds the domain's counters to @st
 *            (wave_host_stats()).
 * @fini:     optional; called by wave_host_close() for a domain the
 *            session owns (the custom domain of wave_host_connect()).
 * @user:     passed to every callback.
 */
struct host_domain {
	unsigned id;
	uint16_t first, last;
	int (*on_msg)(void *user, const struct wave_msg *m);
	void (*on_state)(void *user, enum wave_host_state state);
	int (*replay)(void *user);
	void (*stats)(const void *user, struct wave_host_stats *st);
	void (*fini)(void *user);
	void *user;
};

/* Copies a caller's @in (NULL: none) over the defaults into @o: a
 * smaller, older struct leaves the fields it lacks at their defaults.
 * Return: 0, or -EINVAL for a size this libwave does not take. */
int host_opts_copy(struct wave_host_opts *o, const struct wave_host_opts *in);

/* A session to @uri that has not connected yet (@opts->ops is ignored).
 * Return: 0, -EINVAL or -ENOMEM. */
int host_new(const char *uri, const struct wave_host_opts *opts, struct wave_host **out);

/* Registers @d (copied) before host_start(). Return: 0, or -EINVAL for a
 * domain the session's options do not ask for, one already registered, or
 * a type range that overlaps another. */
int host_add_domain(struct wave_host *h, const struct host_domain *d);

/* The first handshake, blocking up to the connect timeout; on a welcome
 * the domains replay and the agent takes control. With @fallback_ok an
 * agent that cannot be reached is not an error: the host starts on
 * fallback and keeps trying to reconnect.
 * Return: 0 (under the agent's control), 1 (on fallback, @fallback_ok
 * only), or an error (refused, timed out, bad argument, no memory), with
 * @err filled. */
int host_start(struct wave_host *h, bool fallback_ok, struct wave_error *err);

/* The user pointer of domain @id, or NULL when it is not registered. */
void *host_domain_user(const struct wave_host *h, unsigned id);

/* Are events sent to the agent now (under its control, or resyncing)? */
bool host_to_agent(const struct wave_host *h);

/* Inside a domain callback (calls that would re-enter are refused). A
 * domain that calls the application from its own code (a local decision)
 * marks it with host_cb_enter() and host_cb_leave(). */
bool host_in_callback(const struct wave_host *h);
void host_cb_enter(struct wave_host *h);
void host_cb_leave(struct wave_host *h);

/* Sends @n messages to the agent. During replay() waits, bounded by the
 * connect timeout, for room. Return: how many were sent (a short count:
 * the ring is full), -ENOTCONN when events do not go to the agent now, or
 * the channel's error (the agent is then lost: on_state(FALLBACK)). */
int host_send(struct wave_host *h, const struct wave_msg *m, unsigned n);
/* host_send() that does not wake a sleeping agent (wave_chan_send_quiet()),
 * and the wake-up for what it sent. */
int host_send_quiet(struct wave_host *h, const struct wave_msg *m, unsigned n);
void host_notify(struct wave_host *h);

/* Before a thread sleeps until the agent sends something: arms the
 * channel's doorbell and says what to sleep on. *@due: when the session
 * next needs wave_host_poll() (a heartbeat, a timeout, a reconnection).
 * Return: 1 when a message is ready already (do not sleep); 0 with *@fd a
 * duplicate of the channel's pollable fd, which the caller closes; 0 with
 * *@fd -1 when there is no channel to sleep on (sleep until *@due); or
 * -ENOTSUP when the channel cannot wake a sleeper (poll it now and then). */
int host_wait_prepare(struct wave_host *h, int *fd, uint64_t *due);

/* The longest host_sleep() sleeps when nothing could wake it. */
#define HOST_SLEEP_STEP_NS UINT64_C(1000000)

/* For a domain's poll call: sleeps, @lock released, until the agent sends
 * something, the session needs wave_host_poll(), or @due (absolute
 * CLOCK_MONOTONIC ns), whichever comes first; at most HOST_SLEEP_STEP_NS
 * when the channel cannot wake a sleeper or @short_step (the caller has
 * work to retry). @h may be NULL: then it sleeps until @due. */
void host_sleep(struct wave_host *h, pthread_mutex_t *lock, uint64_t due, bool short_step);

/* Before host_start(): the channels the session opens hold @n mailboxes
 * (wave_chan_opts.mailboxes), for the one domain that asks. */
void host_set_mailboxes(struct wave_host *h, uint32_t n);

/* The mailboxes of the channel to the agent: their count, 0 when there is
 * no channel now (or it has none). */
unsigned host_mailboxes(const struct wave_host *h);

/* Takes mailbox @i (below host_mailboxes()): 1 with *@m (the agent's bytes,
 * unchecked), 0 when empty, or the channel's error (the agent is then
 * lost: on_state(FALLBACK)). */
int host_mbox_take(struct wave_host *h, unsigned i, struct wave_msg *m);

/* Takes the agent for lost (a protocol violation seen by a domain). */
void host_lose_agent(struct wave_host *h, const char *why);
/* The silence after which this host takes its agent for dead. */
uint64_t host_timeout_ns(const struct wave_host *h);


#endif /* WAVE_SESSION_HOST_IMPL_H */
