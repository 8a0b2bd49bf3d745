/* SPDX-License-Identifier: MIT */
/*
 * What every transport implements behind the wave_chan_* API. A transport
 * embeds struct wave_chan at the start of its own channel struct and fills
 * in an ops table; chan.c validates arguments and keeps the statistics, so a
 * transport's ops only ever see valid arguments.
 */
#ifndef WAVE_CHAN_IMPL_H
#define WAVE_CHAN_IMPL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <wave/channel.h>
#include <wave/error.h>

struct wave_chan;
struct wave_chan_listener;

/* How a send goes (wave_chan_ops.send's @flags). */
enum {
	CHAN_SEND_ALL = 1,   /* all or nothing (bulk), else as many as fit */
	CHAN_SEND_QUIET = 2, /* a sleeping peer is not woken (wave_chan_send_quiet()) */
};

struct wave_chan_ops {
	/* msgs/n valid, n >= 1, types non-zero; @flags: CHAN_SEND_*. Returns
	 * the accepted count, -EAGAIN (CHAN_SEND_ALL only) or an error. */
	int (*send)(struct wave_chan *ch, const struct wave_msg *msgs, unsigned n, unsigned flags);
	/* Optional (NULL: every send wakes the peer): wakes a sleeping peer. */
	int (*notify)(struct wave_chan *ch);
	int (*recv)(struct wave_chan *ch, struct wave_msg *msgs, unsigned max);
	int (*wait)(struct wave_chan *ch, int64_t timeout_ns);
	int (*fd)(struct wave_chan *ch);
	int (*trywait)(struct wave_chan *ch);
	void (*close)(struct wave_chan *ch);
	/* Optional (NULL: no mailboxes). @i < n_mbox, @msg valid, the right
	 * role, a non-zero type for put. */
	int (*mbox_put)(struct wave_chan *ch, unsigned i, const struct wave_msg *msg);
	int (*mbox_take)(struct wave_chan *ch, unsigned i, struct wave_msg *msg);
};

struct wave_listener_ops {
	int (*accept)(struct wave_chan_listener *l, int64_t timeout_ns, struct wave_chan **out);
	int (*fd)(const struct wave_chan_listener *l);
	void (*close)(struct wave_chan_listener *l);
};

/*
 * Counters are split by the thread that writes them (see channel.h); each has
 * a single writer, so wave_stat_add() is a plain load and store, not a locked
 * read-modify-write, and wave_chan_stats() may read them from any thread.
 */
struct wave_chan {
	const struct wave_chan_ops *ops;
	enum wave_role role;
	uint32_t n_mbox; /* mailboxes, set by the transport */
	/* Written by the sending thread only. */
	_Alignas(64) _Atomic uint64_t sent, send_full, wakeups;
	/* Written by the receiving thread only. */
	_Alignas(64) _Atomic uint64_t received, sleeps;
};

static inline void wave_stat_add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

struct wave_chan_listener {
	const struct wave_listener_ops *ops;
};

/* One entry per URI scheme. open/listen get the text after "scheme://". */
struct wave_transport {
	const char *scheme;
	int (*open)(const char *rest, const struct wave_chan_opts *o, struct wave_chan **out);
	int (*listen)(const char *rest, const struct wave_chan_opts *o,
		      struct wave_chan_listener **out);
};

extern const struct wave_transport wave_transport_shm;
extern const struct wave_transport wave_transport_file;
extern const struct wave_transport wave_transport_fabric;

/* Validates @in (may be NULL) and returns a complete copy in @out. */
int wave_chan_opts_resolve(const struct wave_chan_opts *in, struct wave_chan_opts *out);

#endif /* WAVE_CHAN_IMPL_H */
