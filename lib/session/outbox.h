/* SPDX-License-Identifier: MIT */
/*
 * A domain's outbox on the host: its events wait here and leave in bursts
 * (one host_send() per burst, one ring doorbell), when @batch of them are
 * waiting or when the domain flushes (at every poll). Nothing is ever
 * dropped silently: a full channel keeps them waiting (backpressure), a
 * lost agent empties the outbox because the resync that follows replaces
 * everything the agent knew. Used under the domain's lock; not thread-safe
 * by itself.
 */
#ifndef WAVE_SESSION_OUTBOX_H
#define WAVE_SESSION_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include <wave/msg.h>

struct wave_host;

struct outbox {
	struct wave_host *h;
	struct wave_msg *m;
	size_t n, cap;
	uint32_t batch; /* flush when this many wait */
	uint64_t sent;  /* messages that left, for the domain's statistics */
	uint64_t behind_since; /* when a flush first left some waiting; 0: none */
	/* Flushes do not wake a sleeping agent (host_send_quiet()): for
	 * events no decision waits on; the domain wakes it (host_notify())
	 * at most once a tick. */
	bool quiet;
};

/* An empty outbox for @h flushing every @batch (>= 1) messages.
 * Return: 0 or -ENOMEM. */
int outbox_init(struct outbox *ob, struct wave_host *h, uint32_t batch);

/* Frees the outbox's memory (its messages die). */
void outbox_fini(struct outbox *ob);

/* Appends @m; flushes when @batch are waiting. Return: 0, or -ENOMEM when
 * the outbox cannot grow (@m is not kept: the caller's view of what the
 * agent knows is then wrong, so it loses the agent, which resyncs). */
int outbox_push(struct outbox *ob, const struct wave_msg *m);

/* Sends what waits. Return: 0 (all sent, or the agent was lost and the
 * outbox emptied by outbox_drop() from the session's state callback), or
 * -EAGAIN when the channel is full (the rest keeps waiting). An agent
 * that has not caught up with the outbox for four of the host's heartbeat
 * timeouts is lost (the fallback decides, a resync starts it over): one that never
 * reads, or is slower than the host for good, would make it grow without
 * bound. */
int outbox_flush(struct outbox *ob);

/* The agent is gone: what waits is dropped (a resync will replace it). */
static inline void outbox_drop(struct outbox *ob)
{
	ob->n = 0;
	ob->behind_since = 0;
}

#endif /* WAVE_SESSION_OUTBOX_H */
