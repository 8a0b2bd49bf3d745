/* SPDX-License-Identifier: MIT */
/*
 * The host side of the rpc domain, shared by its two files: the handle,
 * its workers and steering table (rpc_host.c) and its conversation with
 * the agent (rpc_host_link.c). Everything here is used with r->lock held,
 * but for the atomics, which say who reads them without it.
 */
#ifndef WAVE_DOMAINS_RPC_HOST_H
#define WAVE_DOMAINS_RPC_HOST_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <wave/rpc.h>
#include <wave/rpc_msg.h>

#include "../../session/outbox.h"

/* Events gathered before they are sent without waiting for a flush. */
#define RPC_BATCH 64u

/* A worker number's slot. Its accumulators are written lock-free by the
 * worker's own thread (wave_rpc_worker_load()) and taken by the report,
 * so each worker has its own cache line. */
struct rworker {
	_Alignas(64) _Atomic uint32_t live; /* stored under the lock, read by anyone */
	_Atomic uint32_t reported;          /* something to report this period */
	_Atomic uint32_t queue_depth;
	_Atomic uint64_t busy_ns, completions, service_ns, max_service_ns;
	uint32_t gen; /* advanced by each addition; 0: never added */
	int fd;
	/* The last period's report, replayed at a resync. */
	struct wave_rpc_msg last;
};

/* A request class's service times, reported lock-free by any worker
 * (wave_rpc_class_load()) and taken by the report, like a worker's. */
struct rclass {
	_Alignas(64) _Atomic uint64_t completions, service_ns, max_service_ns;
	struct wave_rpc_msg last; /* the last period's CLASS_LOAD (type 0: none) */
};

/* A dispatcher: the agent's prestaged worker (read lock-free by
 * wave_rpc_pick()), and its own round robin for when there is none (only
 * the dispatcher's thread touches it). */
struct rdisp {
	_Alignas(64) _Atomic uint32_t staged;
	uint32_t rr;
};

struct wave_rpc {
	pthread_mutex_t lock;
	struct wave_host *h; /* NULL: no agent ever */
	bool agent;          /* the agent decides (mirrors the session's state) */
	struct wave_rpc_dims dims;
	uint32_t mask;      /* n_buckets - 1 */
	uint32_t n_entries; /* n_buckets + n_classes */
	uint32_t fallback;  /* enum wave_rpc_fallback */
	uint32_t epoch;
	uint32_t n_live;
	uint32_t spread; /* where the next spread of moved buckets starts */
	uint64_t report_ns, next_report, last_report;
	uint64_t last_period; /* the last report's measured period (0: none yet) */
	/* The table: stored (release) under the lock, loaded (acquire) by
	 * lookups from any thread. */
	_Atomic uint32_t *table;
	uint32_t *seq; /* each entry's sequence number */
	/* Arrivals per entry, added (relaxed) by any thread, taken by the
	 * report; @last_arrivals holds the last period's, for a resync. */
	_Atomic uint32_t *arrivals;
	uint32_t *last_arrivals;
	struct rworker *workers;
	struct rclass *classes;
	struct rdisp *disp;
	struct wave_rpc_follower f; /* f.size 0: none */
	struct outbox ob; /* events to the agent (made at connect) */
	struct wave_rpc_stats st;
};

static inline bool rpc_live(const struct wave_rpc *r, uint32_t w)
{
	/* Pairs with the release store in wave_rpc_worker_add() and _remove(). */
	return atomic_load_explicit(&r->workers[w].live, memory_order_acquire) != 0;
}

/* ---- rpc_host.c ---- */

/* Points entry @b to @w, the follower first (it may refuse: its error,
 * nothing changed); advances the entry's sequence number. */
int rpc_table_set(struct wave_rpc *r, uint32_t b, uint32_t w);
/* The fallback's static hash over the live workers, as a rewrite of the
 * whole table (a new epoch); nothing without a live worker. */
void rpc_table_hash(struct wave_rpc *r);
/* Takes what was reported since the last period into each worker's and
 * entry's last-period record (the follower collects first). */
void rpc_harvest(struct wave_rpc *r);

/* ---- rpc_host_link.c ---- */

/* Events to the agent (nothing when it is not in control). */
void rpc_emit(struct wave_rpc *r, const struct wave_rpc_msg *m);
void rpc_emit_worker(struct wave_rpc *r, uint16_t type, uint32_t w);
/* BUCKETS for entries @first .. @first + @n - 1 as they are now. */
void rpc_emit_buckets(struct wave_rpc *r, uint32_t first, uint32_t n);
/* Sends what is gathered: 0 or -EAGAIN (the channel is full). */
int rpc_flush(struct wave_rpc *r);
/* The report when its period has passed, the agent's decisions, the
 * session's heartbeats and reconnection. Return: moves and prestages
 * committed. */
int rpc_progress(struct wave_rpc *r, bool force_report);
/* Registers the domain with a new session to @uri and starts it. */
int rpc_connect(struct wave_rpc *r, const char *uri, const struct wave_host_opts *ho,
		struct wave_error *err);

#endif /* WAVE_DOMAINS_RPC_HOST_H */
