/* SPDX-License-Identifier: MIT */
/*
 * What the host domain modules (lib/host/) use of a host session beyond
 * host.h: their messages routed to them, sending their events, and a
 * session that may start without an agent. Everything runs under the
 * module's own serialisation: a host handle is used by one thread at a
 * time, and callbacks (on_state, replay, the message handler) run inside
 * these calls and wave_host_poll().
 */
#ifndef WAVE_SESSION_HOST_IMPL_H
#define WAVE_SESSION_HOST_IMPL_H

#include <stdbool.h>

#include <wave/host.h>

/* Called for each message of the domain's range from the agent. */
typedef void (*host_domain_msg_fn)(void *user, const struct wave_msg *m);

void host_set_sched_handler(struct wave_host *h, host_domain_msg_fn fn, void *user);

/* Are events sent to the agent now (under its control, or resyncing)? */
bool host_to_agent(const struct wave_host *h);

/* Sends @n messages to the agent. During replay() waits, bounded by the
 * connect timeout, for room. Return: how many were sent (a short count:
 * the ring is full), -ENOTCONN when events do not go to the agent now, or
 * the channel's error (the agent is then lost: on_state(FALLBACK)). */
int host_send(struct wave_host *h, const struct wave_msg *m, unsigned n);

/* Takes the agent for lost (a protocol violation seen by the module). */
void host_lose_agent(struct wave_host *h, const char *why);

/* Like wave_host_connect(), but an agent that cannot be reached is not an
 * error: the host starts on fallback and keeps trying to reconnect.
 * Return: 0 (under the agent's control), 1 (on fallback), or an error
 * (refused, bad argument, no memory). */
int host_open(const char *uri, const struct wave_host_opts *opts, struct wave_host **out,
	      struct wave_error *err);

#endif /* WAVE_SESSION_HOST_IMPL_H */
