/* SPDX-License-Identifier: MIT */
/**
 * @file rpc.h
 * The host side of the rpc domain: a server's inputs (flows, request
 * classes) are steered to its workers by a table that an agent rewrites
 * from load reports, and that the data path reads with one load.
 *
 * Model. A steering handle (struct wave_rpc) has up to @max_workers
 * workers, numbered 0..max_workers-1 by the application (a worker is a
 * thread with its socket or queue; its number is usually the index of its
 * socket in a SO_REUSEPORT group). A worker is added with
 * wave_rpc_worker_add() and removed with wave_rpc_worker_remove(); each
 * addition gives it a new generation number, so a decision made for a
 * worker that has since been removed (and maybe added again) is told apart.
 *
 * The steering table maps each of @n_buckets buckets (a power of two) to a
 * worker. An input is steered by the hash of its flow (the bucket is
 * hash & (n_buckets - 1), as a NIC's RSS indirection table does) with
 * wave_rpc_steer(), or by its request class with wave_rpc_steer_class():
 * each of the @n_classes classes has one more entry of its own, after the
 * flow buckets (bucket number n_buckets + class). A lookup is one atomic
 * load of host memory: it never takes a lock, never waits for the agent and
 * is correct from any number of threads while the table changes. Request
 * level policies (join the shortest queue, power of two choices) use
 * wave_rpc_pick() instead: the agent prestages a next worker for each of
 * the @n_dispatchers dispatchers and refreshes it from the load reports;
 * the dispatcher reads it with one load.
 *
 * Load reports. Workers report what they do with wave_rpc_worker_load()
 * (queue depth, busy time, completions, service times) without a lock;
 * arrivals per bucket are counted by wave_rpc_arrive() (a lookup that also
 * counts) or added by wave_rpc_arrivals() (for a backend that counts them
 * elsewhere, such as the kernel). Every @report_us microseconds,
 * wave_rpc_poll() gathers what was reported into one batch of events to
 * the agent (rpc_msg.h): one LOAD per worker that reported, ARRIVALS for
 * the buckets that had any, and a REPORT that closes the period.
 *
 * Decisions are transactions. The agent moves one bucket at a time: a MOVE
 * names the bucket, the bucket's sequence number and the table epoch it
 * was based on, and the target worker with its generation. The host
 * carries it out only if all still hold, and otherwise aborts it with an
 * enum wave_result and a detail (enum wave_rpc_abort) that the agent and
 * its plugin are told in an OUTCOME:
 *   - the target worker was removed (or re-added since): WAVE_ABORT_GONE,
 *     WAVE_RPC_WHY_WORKER_GONE;
 *   - the bucket was moved since (by another decision or by the host):
 *     WAVE_ABORT_STALE, WAVE_RPC_WHY_BUCKET_MOVED;
 *   - the decision is older than the last rewrite of the whole table (an
 *     epoch that is not the current one): WAVE_ABORT_STALE,
 *     WAVE_RPC_WHY_EPOCH;
 *   - the bucket is already on that worker: WAVE_ABORT_NOT_ELIGIBLE,
 *     WAVE_RPC_WHY_SAME_WORKER;
 *   - the enforcement backend could not follow (see below):
 *     WAVE_ABORT_BUSY, WAVE_RPC_WHY_BACKEND.
 * A decision naming a bucket, worker or dispatcher outside the sizes the
 * host announced is not a transaction but a broken message: refused,
 * counted (wave_rpc_stats.bad_decisions), and the agent is taken for lost.
 * (The agent's side refuses such a decision before it leaves.)
 * A committed move advances the bucket's sequence number. Each bucket's
 * sequence number and the epoch are the agent's to see: every change the
 * host makes on its own is sent to it as an event.
 *
 * What a move does to requests in flight. libwave changes which worker
 * later lookups return, nothing else: it never holds, drops or re-orders a
 * request itself. A request steered before the move stays where it was
 * steered (in the old worker's queue or socket) and is served there, so
 * requests of one flow on both sides of a move may be served concurrently
 * and complete out of order; a server that needs a flow's order kept must
 * drain the old worker's queue for that flow first. With kernel
 * enforcement (a SO_REUSEPORT group whose BPF program reads the table),
 * datagrams already queued on the old worker's socket are read by the old
 * worker, and later ones go to the new socket; for TCP the table chooses
 * the listening socket of new connections only, and an established
 * connection stays with the worker that accepted it. A worker being
 * removed keeps what it has queued: the server drains it after
 * wave_rpc_worker_remove() returns and before closing the worker's socket
 * (closing a listening socket resets the connections in its accept queue:
 * the kernel does that, not libwave).
 *
 * Removing a worker moves its buckets first. wave_rpc_worker_remove()
 * spreads the worker's buckets (and classes) over the remaining workers in
 * turn, tells the backend and the agent, empties the prestaged slots of
 * the dispatchers that named it (they use their round robin until the
 * agent prestages again), and only then forgets the worker: no lookup
 * that starts after it returns finds the removed worker. The last worker
 * cannot be removed (-EBUSY: its buckets would have nowhere to go).
 * Before the first worker is added, lookups return -ENOENT; the first
 * worker added takes every bucket (a rewrite of the whole table: a new
 * epoch).
 *
 * Enforcement backends. The table is the truth, and the server's own
 * dispatch reads it directly. Enforcement elsewhere (a BPF map that a
 * SO_REUSEPORT group's program reads, a NIC's indirection table) follows
 * it through a struct wave_rpc_follower: libwave calls it, under the
 * handle's lock and in the order the table changes, for every worker added
 * or removed (with the worker's fd) and every bucket whose worker changes,
 * before the change is visible to lookups, so that it can refuse. After
 * each call that returned 0, the follower holds what the table holds.
 * Kernel enforcement (a SO_REUSEPORT group and its BPF program, declared
 * in a header of its own) is such a follower; this API knows nothing of
 * BPF.
 *
 * Fallback. With no agent in control, no decision arrives; what the table
 * does depends on @fallback: WAVE_RPC_FALLBACK_KEEP (default) leaves it as
 * the agent left it (a balance found under load is kept), and
 * WAVE_RPC_FALLBACK_HASH rewrites it as a static hash over the live
 * workers (bucket b to the (b mod n)-th of the n live workers in order of
 * number, as RSS spreads an indirection table), and keeps it so as workers
 * come and go. wave_rpc_pick() falls back to each dispatcher's own round
 * robin over the live workers. When an agent takes control again, the host
 * resyncs it: the sizes and the epoch, every live worker, every bucket
 * with its worker and sequence number, and the last period's load (the
 * dispatchers start with nothing prestaged). The table is not touched by
 * the switch; a fallback rewrite advanced the epoch, so moves based on the
 * table before it abort as stale.
 *
 * Threads. wave_rpc_steer(), wave_rpc_steer_class(), wave_rpc_pick(),
 * wave_rpc_arrive(), wave_rpc_arrivals() and wave_rpc_worker_load() take no
 * lock and may be called from any thread at any time between
 * wave_rpc_create() and wave_rpc_destroy(); wave_rpc_pick() for one
 * dispatcher from one thread at a time. Every other call is serialised by
 * one lock per handle. libwave starts no thread (but a reconnection
 * attempt's, for its open): decisions are received,
 * reports sent, heartbeats exchanged and reconnections attempted inside
 * wave_rpc_poll(), which something must call at least every heartbeat
 * period (and every @report_us for timely reports). A reconnection attempt
 * opens its channel on a thread of its own (see <wave/host.h>): no call
 * waits for it, and every call goes on, on fallback, meanwhile.
 *
 * Bad input. A call naming a worker, bucket, class or dispatcher that does
 * not exist returns -EINVAL and changes nothing. A malformed message from
 * the agent (including a decision outside the sizes) is counted and the
 * agent is taken for lost: the host goes to fallback and resyncs later.
 *
 * Return values follow libwave's rule: 0 or a count, or a negative error
 * code (see wave_strerror()). No call sets errno.
 */
#ifndef WAVE_RPC_H
#define WAVE_RPC_H

#include <stddef.h>
#include <stdint.h>

#include <wave/domain.h>
#include <wave/error.h>
#include <wave/export.h>
#include <wave/host.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Limits of a steering handle. */
#define WAVE_RPC_MAX_BUCKETS 65536u /**< flow buckets, a power of two */
#define WAVE_RPC_MAX_WORKERS 1024u
#define WAVE_RPC_MAX_CLASSES 256u
#define WAVE_RPC_MAX_DISPATCHERS 256u

/** The worker of a table entry that has none (before the first worker). */
#define WAVE_RPC_NO_WORKER UINT32_MAX

/** What the table does with no agent in control. */
enum wave_rpc_fallback {
	WAVE_RPC_FALLBACK_KEEP = 0, /**< the table stays as the agent left it */
	WAVE_RPC_FALLBACK_HASH = 1, /**< a static hash over the live workers */
};

/**
 * enum wave_rpc_abort - why a decision aborted, beside its enum
 * wave_result (see the file's comment). 0 for a committed one.
 */
enum wave_rpc_abort {
	WAVE_RPC_WHY_NONE = 0,         /**< committed */
	WAVE_RPC_WHY_WORKER_GONE = 1,  /**< GONE: the worker was removed */
	WAVE_RPC_WHY_BUCKET_MOVED = 2, /**< STALE: the bucket moved since */
	WAVE_RPC_WHY_EPOCH = 3,        /**< STALE: the table was rewritten since */
	WAVE_RPC_WHY_SAME_WORKER = 4,  /**< NOT_ELIGIBLE: already there */
	WAVE_RPC_WHY_BACKEND = 5,      /**< BUSY: the follower refused */
	WAVE_RPC_WHY_COUNT             /**< number of details; not one */
};

/** A steering handle; opaque. */
struct wave_rpc;

/**
 * struct wave_rpc_opts - how to make a steering handle. Fill with
 * wave_rpc_opts_init() first, then change fields.
 * @size:          sizeof(struct wave_rpc_opts).
 * @n_buckets:     flow buckets, a power of two, 1..WAVE_RPC_MAX_BUCKETS
 *                 (default 128, as RSS++).
 * @max_workers:   worker numbers 0..max_workers-1, 1..WAVE_RPC_MAX_WORKERS
 *                 (default 64).
 * @n_classes:     request classes, 0..WAVE_RPC_MAX_CLASSES (default 0).
 * @n_dispatchers: dispatchers with a prestaged worker (wave_rpc_pick()),
 *                 0..WAVE_RPC_MAX_DISPATCHERS (default 0).
 * @report_us:     the load report period in microseconds, 10..60000000
 *                 (default 1000).
 * @fallback:      enum wave_rpc_fallback (default KEEP).
 * @host:          the session's options (heartbeats, timeouts, token,
 *                 channel options), or NULL for wave_host_opts_init()'s
 *                 defaults. Its domains, ops and user are ignored.
 */
struct wave_rpc_opts {
	size_t size;
	uint32_t n_buckets;
	uint32_t max_workers;
	uint32_t n_classes;
	uint32_t n_dispatchers;
	uint32_t report_us;
	uint32_t fallback;
	const struct wave_host_opts *host;
};

/** wave_rpc_opts_init() - fill @opts with the defaults.
 *  Return: 0 or -EINVAL. */
WAVE_API int wave_rpc_opts_init(struct wave_rpc_opts *opts);

/**
 * wave_rpc_create() - make a steering handle, bound to an agent.
 * @uri:  the agent's address (as for wave_host_connect()), or NULL for no
 *        agent at all: the table is the application's and the fallback's
 *        for the life of the handle.
 * @opts: options, or NULL for the defaults. Copied.
 * @out:  receives the handle; untouched on failure.
 * @err:  on failure, what went wrong for a human (may be NULL).
 *
 * Connects (blocking up to the session's connect_timeout_ms) and tells the
 * agent the sizes. An agent that cannot be reached is not an error: the
 * handle starts on fallback and keeps trying (wave_rpc_mode()). The table
 * starts with no worker.
 *
 * Return: 0, -EINVAL, -ENOMEM, -WAVE_EURI, -WAVE_EREFUSED, -WAVE_EVERSION.
 */
WAVE_API WAVE_NODISCARD int wave_rpc_create(const char *uri, const struct wave_rpc_opts *opts,
					    struct wave_rpc **out, struct wave_error *err);

/** wave_rpc_destroy() - say goodbye to the agent, detach the follower
 *  (its fini runs) and free @r. No other call may be running or made
 *  later. NULL is ignored. */
WAVE_API void wave_rpc_destroy(struct wave_rpc *r);

/**
 * wave_rpc_worker_add() - worker @worker exists and may be steered to.
 * @r:      the handle.
 * @worker: its number, below max_workers, not live.
 * @fd:     its socket for an enforcement backend (the follower gets it), or
 *          -1. Not closed by libwave.
 *
 * The first worker takes every bucket and class; a later one
 * takes none until the agent moves some to it (or the fallback hash, with
 * WAVE_RPC_FALLBACK_HASH, rewrites the table). Return: 0, -EINVAL, -EEXIST
 * (live already), or the follower's error (the worker is not added).
 */
WAVE_API int wave_rpc_worker_add(struct wave_rpc *r, uint32_t worker, int fd);

/**
 * wave_rpc_worker_remove() - worker @worker leaves. Its buckets, classes
 * and dispatchers are first moved, in turn, to the remaining live workers
 * (each move told to the follower and the agent); then the worker is
 * forgotten. Return: 0, -EINVAL, -ENOENT (not live), -EBUSY (the last
 * worker), or the follower's error (the worker stays live; the buckets
 * already moved stay moved).
 */
WAVE_API int wave_rpc_worker_remove(struct wave_rpc *r, uint32_t worker);

/**
 * wave_rpc_steer() - the worker that serves flow hash @hash: the table's
 * entry for bucket hash & (n_buckets - 1). One atomic load, no lock.
 * Return: the worker number, -ENOENT (no worker yet) or -EINVAL.
 */
WAVE_API int wave_rpc_steer(const struct wave_rpc *r, uint64_t hash);

/** wave_rpc_steer_class() - the worker that serves request class @cls.
 *  Return: the worker number, -ENOENT (no worker yet) or -EINVAL. */
WAVE_API int wave_rpc_steer_class(const struct wave_rpc *r, uint32_t cls);

/** wave_rpc_arrive() - wave_rpc_steer() that also counts one arrival in
 *  the bucket (one relaxed atomic add) for the next load report. */
WAVE_API int wave_rpc_arrive(struct wave_rpc *r, uint64_t hash);

/** wave_rpc_arrivals() - add @n arrivals to bucket @bucket (flow buckets
 *  0..n_buckets-1, then classes) for the next load report. Return: 0 or
 *  -EINVAL. */
WAVE_API int wave_rpc_arrivals(struct wave_rpc *r, uint32_t bucket, uint32_t n);

/**
 * wave_rpc_pick() - the worker dispatcher @dispatcher should hand its next
 * request to: the one the agent prestaged for it (one load), or, with none
 * prestaged (no agent, or not yet), the dispatcher's round robin over the
 * live workers. The prestaged worker stays until the agent replaces it.
 * Return: the worker number, -ENOENT (no worker yet) or -EINVAL.
 */
WAVE_API int wave_rpc_pick(struct wave_rpc *r, uint32_t dispatcher);

/**
 * struct wave_rpc_load - what a worker reports, for the next load report.
 * @size:        sizeof(struct wave_rpc_load).
 * @queue_depth: requests waiting for the worker now (a gauge: the last
 *               value reported in a period is sent).
 * @busy_ns:     time spent serving since the worker's last report.
 * @completions: requests completed since its last report.
 * @service_ns:  their service times, summed.
 * @max_service_ns: the longest of them.
 */
struct wave_rpc_load {
	size_t size;
	uint32_t queue_depth;
	uint64_t busy_ns;
	uint64_t completions;
	uint64_t service_ns;
	uint64_t max_service_ns;
};

/**
 * wave_rpc_worker_load() - worker @worker reports its load (@l is added
 * to what it reported since the last load report; no lock). A worker that
 * is not live is ignored. Return: 0, -EINVAL.
 */
WAVE_API int wave_rpc_worker_load(struct wave_rpc *r, uint32_t worker,
				  const struct wave_rpc_load *l);

/**
 * wave_rpc_class_load() - requests of class @cls completed: @l's
 * completions, service_ns (their service times, summed) and
 * max_service_ns are added to what the class's entry reports in the next
 * load report (a CLASS_LOAD), from which the agent keeps per-class
 * service times (request-level policies that protect short classes need
 * them). Any thread, no lock; @l's other fields are ignored. Return: 0 or
 * -EINVAL.
 */
WAVE_API int wave_rpc_class_load(struct wave_rpc *r, uint32_t cls, const struct wave_rpc_load *l);

/**
 * wave_rpc_poll() - make progress: send the load report when its period
 * has passed, receive and carry out decisions, heartbeats, fallback and
 * reconnection.
 * @timeout_ns: how long to wait for a decision (timeout.h); returns as
 *              soon as one was carried out; 0 polls once.
 * Return: decisions committed during the call, or -EINVAL.
 */
WAVE_API int wave_rpc_poll(struct wave_rpc *r, int64_t timeout_ns);

/** wave_rpc_flush() - send the load report now, whatever the period.
 *  Return: 0, -EAGAIN (the channel is full: it stays gathered), -EINVAL. */
WAVE_API int wave_rpc_flush(struct wave_rpc *r);

/** wave_rpc_mode() - who decides now: WAVE_HOST_AGENT or
 *  WAVE_HOST_FALLBACK, or -EINVAL. */
WAVE_API int wave_rpc_mode(struct wave_rpc *r);

/**
 * wave_rpc_table() - copy the table: @n entries from bucket @first (flow
 * buckets, then classes) into @workers (WAVE_RPC_NO_WORKER where none),
 * and the epoch into *@epoch (may be NULL). A consistent copy: taken under
 * the lock. Return: 0 or -EINVAL.
 */
WAVE_API int wave_rpc_table(struct wave_rpc *r, uint32_t first, uint32_t n, uint32_t *workers,
			    uint32_t *epoch);

/**
 * struct wave_rpc_follower - an enforcement backend following the table.
 * All run under the handle's lock, from the call that changes the table
 * (wave_rpc_worker_add(), wave_rpc_worker_remove(), wave_rpc_poll()...),
 * and must not call back into the handle except wave_rpc_arrivals().
 * @size:   sizeof(struct wave_rpc_follower).
 * @worker: optional. Worker @worker with socket @fd (-1 if none) was
 *          added (@live 1: before any bucket is steered to it) or removed
 *          (@live 0: after its buckets moved away). Return 0, or an error
 *          that refuses an addition (ignored for a removal).
 * @bucket: required. Bucket @bucket (flow buckets, then classes) is to be
 *          steered to @worker. Return 0, or an error: the change does not
 *          happen (an agent's move aborts as WAVE_RPC_WHY_BACKEND).
 * @collect: optional. Called before each load report: add the arrivals
 *          the backend counted with wave_rpc_arrivals().
 * @fini:   optional. The follower is detached (wave_rpc_follow() with
 *          another, or NULL, or wave_rpc_destroy()).
 * @user:   passed to every op.
 */
struct wave_rpc_follower {
	size_t size;
	int (*worker)(void *user, uint32_t worker, int fd, int live);
	int (*bucket)(void *user, uint32_t bucket, uint32_t worker);
	void (*collect)(void *user, struct wave_rpc *r);
	void (*fini)(void *user);
	void *user;
};

/**
 * wave_rpc_follow() - attach follower @f (copied), replacing the one
 * attached before (whose fini runs), or detach it with @f NULL. The new
 * follower is brought up to date at once: @worker for every live worker,
 * then @bucket for every entry that has a worker. Return: 0, -EINVAL, or
 * the follower's error while catching up (it is then not attached, and its
 * fini runs: the handle has no follower).
 */
WAVE_API int wave_rpc_follow(struct wave_rpc *r, const struct wave_rpc_follower *f);

/**
 * struct wave_rpc_stats - counters of a steering handle.
 * @reports:        load reports sent (each a batch of events).
 * @events:         events sent to the agent.
 * @committed:      moves and prestages committed.
 * @aborted:        decisions aborted, by enum wave_result.
 * @aborted_why:    decisions aborted, by enum wave_rpc_abort.
 * @host_moves:     buckets the host moved itself (worker removal, first
 *                  worker, fallback hash).
 * @bad_decisions:  malformed messages from the agent, decisions outside
 *                  the sizes included (each also drops the agent).
 * @fallbacks:      switches to fallback.
 * @resyncs:        times the state was replayed to an agent.
 * @workers:        live workers now.
 * @epoch:          the table epoch now.
 */
struct wave_rpc_stats {
	uint64_t reports;
	uint64_t events;
	uint64_t committed;
	uint64_t aborted[WAVE_RESULT_COUNT];
	uint64_t aborted_why[WAVE_RPC_WHY_COUNT];
	uint64_t host_moves;
	uint64_t bad_decisions;
	uint64_t fallbacks;
	uint64_t resyncs;
	uint64_t workers;
	uint64_t epoch;
	uint64_t reserved[8];
};

/** wave_rpc_stats() - copy @r's counters. Return: 0 or -EINVAL. */
WAVE_API int wave_rpc_stats(struct wave_rpc *r, struct wave_rpc_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* WAVE_RPC_H */
