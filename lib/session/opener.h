/* SPDX-License-Identifier: MIT */
/*
 * A channel opened on a thread of its own, for a session's reconnection:
 * an open may wait up to its timeout (an agent that is stopped, or over
 * fabric://tcp;ofi_rxm a dead one, whose refusal libfabric retries in
 * silence), and no application thread calling wave_host_poll() or a
 * domain's poll must wait with it. The session starts an opener and looks
 * at it on its next calls; one it no longer wants (the session closes)
 * is abandoned, and its thread closes what it opened and frees itself.
 */
#ifndef WAVE_SESSION_OPENER_H
#define WAVE_SESSION_OPENER_H

#include <wave/channel.h>

struct opener;

/* Starts opening @uri with @o (copied, its token included: nothing the
 * caller holds need outlive the call) on a new thread with every signal
 * blocked. Return: 0, -EINVAL (a token too long), -ENOMEM or -EAGAIN (no
 * thread). */
int opener_start(const char *uri, const struct wave_chan_opts *o, struct opener **out);

/* Without waiting: 0 while the open runs; 1 when it is over, with *@ch
 * the channel (or NULL) and *@ret what wave_chan_open() returned, and
 * @op freed. */
int opener_take(struct opener *op, struct wave_chan **ch, int *ret);

/* Not wanted any more: frees @op now if its open is over, else lets its
 * thread close the channel it gets and free @op. */
void opener_abandon(struct opener *op);

#endif /* WAVE_SESSION_OPENER_H */
