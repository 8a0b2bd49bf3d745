/* SPDX-License-Identifier: MIT */
/**
 * @file plugin_rpc.h
 * For authors of rpc-domain policies (plugin ABI 1.2): the ops table, the
 * views of workers and buckets, and the decisions. Include it with
 * <wave/plugin.h>.
 *
 * The agent owns the state: it decodes each host message (rpc_msg.h),
 * applies it to its model of the host's workers, steering table and load
 * (rpc_state.h), refusing impossible ones, and only then calls the op
 * named after it. A plugin keeps only its own plans; it reads the model
 * through the accessors below and decides through wave_plugin_rpc_move()
 * and wave_plugin_rpc_prestage(), which check each decision against the
 * model and stamp it with the bucket's sequence number, the table epoch
 * and the worker's generation before it leaves. A decision in flight
 * blocks another for the same bucket (or dispatcher) until its outcome.
 *
 * Load in the model. Each REPORT from the host closes a period; then every
 * rate below is updated as an exponentially decayed average: new = keep *
 * old + (1 - keep) * this period's value, with keep = 0.5 unless the
 * plugin sets it (wave_plugin_rpc_set_decay()).
 */
#ifndef WAVE_PLUGIN_RPC_H
#define WAVE_PLUGIN_RPC_H

#include <stddef.h>
#include <stdint.h>

#include <wave/export.h>
#include <wave/plugin.h>
#include <wave/rpc_msg.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * struct wave_rpc_worker - a live worker, as the model sees it.
 * @id, @gen:       its number and generation.
 * @queue_depth:    requests waiting, as last reported.
 * @buckets:        table entries steered to it now.
 * @load:           busy time per unit of time (0..1 for one thread),
 *                  decayed.
 * @arrival_rate:   arrivals per second of the entries steered to it now
 *                  (the sum of their @rate).
 * @completion_rate: completions per second, decayed.
 * @service_ns:     mean service time, decayed over the periods that had
 *                  completions.
 * @busy_ns, @completions, @max_service_ns: the last period, as reported.
 * @reserved:       zero.
 */
struct wave_rpc_worker {
	uint32_t id;
	uint32_t gen;
	uint32_t queue_depth;
	uint32_t buckets;
	double load;
	double arrival_rate;
	double completion_rate;
	double service_ns;
	uint64_t busy_ns;
	uint64_t completions;
	uint64_t max_service_ns;
	uint64_t reserved[4];
};

/**
 * struct wave_rpc_bucket - a table entry (a flow bucket, or a class after
 * them), as the model sees it.
 * @id:       its number.
 * @worker:   the worker it is steered to, or WAVE_RPC_NO_WORKER.
 * @seq:      its sequence number (a MOVE is based on it).
 * @pending:  the target of a MOVE awaiting its outcome, or
 *            WAVE_RPC_NO_WORKER.
 * @rate:     arrivals per second, decayed.
 * @arrivals: arrivals in the last period.
 * @service_ns:  a class entry's mean service time, decayed over the
 *               periods that had completions (the host's
 *               wave_rpc_class_load()); 0 for a flow bucket or a class
 *               never reported.
 * @completions: a class entry's completions in the last period.
 * These two took the place of a reserved uint64_t[2] (same size and
 * offsets): a plugin built before them sees reserved bytes, and one that
 * reads them from a libwave that predates them reads 0, "never reported".
 */
struct wave_rpc_bucket {
	uint32_t id;
	uint32_t worker;
	uint32_t seq;
	uint32_t pending;
	double rate;
	uint64_t arrivals;
	double service_ns;
	uint64_t completions;
};

/**
 * struct wave_rpc_info - the host's sizes and where the model is.
 * @dims:      the sizes (n_buckets flow buckets, then n_classes class
 *             entries; max_workers worker numbers; n_dispatchers).
 * @epoch:     the table epoch.
 * @workers:   live workers.
 * @report_ns: the host's report period.
 * @reports:   periods closed so far.
 * @keep:      the decay factor in force.
 * @reserved:  zero.
 */
struct wave_rpc_info {
	struct wave_rpc_dims dims;
	uint32_t epoch;
	uint32_t workers;
	uint64_t report_ns;
	uint64_t reports;
	double keep;
	uint64_t reserved[4];
};

/**
 * struct wave_rpc_ops - callbacks of a WAVE_DOMAIN_RPC plugin.
 * @size:           sizeof(struct wave_rpc_ops) at compile time.
 * @worker_added:   optional. @w is live (it has no bucket yet, unless it
 *                  is the first: then it has them all).
 * @worker_removed: optional. @w is gone (the view shows it as it last
 *                  was); its buckets were moved away by the host first.
 * @bucket_moved:   optional. The host moved @b itself (from @from): a
 *                  worker was removed, or the first one added.
 * @load_report:    required. A period of @period_ns ended at @now_ns (host
 *                  clock) and the model's load and rates are updated: the
 *                  usual place to rebalance.
 * @tick:           optional. Periodic, on the agent's clock, at the
 *                  configuration's domains.rpc.tick_us.
 * @txn_committed:  optional. @decision (WAVE_RPC_MOVE or
 *                  WAVE_RPC_PRESTAGE) of @target (a bucket or a
 *                  dispatcher) to @worker committed.
 * @txn_aborted:    required. It aborted with @result (enum wave_result)
 *                  and @why (enum wave_rpc_abort); the model already holds
 *                  the host's truth (the bucket's worker, sequence number
 *                  and epoch), so the plugin may decide again at once.
 *
 * Callbacks return 0, or a negative error code that the agent counts
 * ("event_errors") before carrying on. Views point to copies valid during
 * the call. Callbacks of one context are never called concurrently, and
 * may decide and read the model.
 */
struct wave_rpc_ops {
	size_t size;
	int (*worker_added)(struct wave_plugin_ctx *ctx, const struct wave_rpc_worker *w);
	int (*worker_removed)(struct wave_plugin_ctx *ctx, const struct wave_rpc_worker *w);
	int (*bucket_moved)(struct wave_plugin_ctx *ctx, const struct wave_rpc_bucket *b,
			    uint32_t from);
	int (*load_report)(struct wave_plugin_ctx *ctx, uint64_t now_ns, uint64_t period_ns);
	int (*tick)(struct wave_plugin_ctx *ctx, uint64_t now_ns);
	int (*txn_committed)(struct wave_plugin_ctx *ctx, uint16_t decision, uint32_t target,
			     uint32_t worker);
	int (*txn_aborted)(struct wave_plugin_ctx *ctx, uint16_t decision, uint32_t target,
			   uint32_t worker, unsigned result, unsigned why);
};

/**
 * wave_plugin_rpc_move() - decide: steer table entry @bucket to @worker.
 *
 * Checked against the model first and sent only if it can commit now (a
 * refusal is counted in the model's statistics); once sent, the entry is
 * pending until the outcome (txn_committed or txn_aborted).
 *
 * Return: 0 (sent), or -EINVAL (not an rpc context with a model), -ERANGE
 * (no such entry or worker number), -ENOENT (the worker is not live),
 * -EALREADY (the entry is on that worker), -EBUSY (a MOVE of the entry is
 * pending), -EAGAIN (the channel to the host is full), -ENOTCONN (no
 * emit), or the emit's error.
 */
WAVE_API int wave_plugin_rpc_move(struct wave_plugin_ctx *ctx, uint32_t bucket, uint32_t worker);

/**
 * wave_plugin_rpc_prestage() - decide: dispatcher @dispatcher's next
 * requests go to @worker (wave_rpc_pick() on the host), until replaced.
 * Return: as wave_plugin_rpc_move(), -ERANGE also for a dispatcher that
 * does not exist, -EBUSY for a PRESTAGE of it pending; prestaging the
 * worker already there is allowed (a refresh).
 */
WAVE_API int wave_plugin_rpc_prestage(struct wave_plugin_ctx *ctx, uint32_t dispatcher,
				      uint32_t worker);

/** wave_plugin_rpc_info() - the sizes and state of the model.
 *  Return: 0 or -EINVAL. */
WAVE_API int wave_plugin_rpc_info(const struct wave_plugin_ctx *ctx, struct wave_rpc_info *out);

/** wave_plugin_rpc_worker() - worker @worker (iterate 0..max_workers-1).
 *  Return: 0, -ENOENT (not live), -ERANGE, -EINVAL. */
WAVE_API int wave_plugin_rpc_worker(const struct wave_plugin_ctx *ctx, uint32_t worker,
				    struct wave_rpc_worker *out);

/** wave_plugin_rpc_bucket() - table entry @bucket (0..n_buckets+n_classes-1).
 *  Return: 0, -ERANGE, -EINVAL. */
WAVE_API int wave_plugin_rpc_bucket(const struct wave_plugin_ctx *ctx, uint32_t bucket,
				    struct wave_rpc_bucket *out);

/** wave_plugin_rpc_prestaged() - dispatcher @dispatcher's prestaged
 *  worker. Return: the worker, -ENOENT (none), -ERANGE, -EINVAL. */
WAVE_API int wave_plugin_rpc_prestaged(const struct wave_plugin_ctx *ctx, uint32_t dispatcher);

/** wave_plugin_rpc_set_decay() - the decay factor @keep (0 <= keep < 1)
 *  of the model's rates from the next period on. Return: 0 or -EINVAL. */
WAVE_API int wave_plugin_rpc_set_decay(struct wave_plugin_ctx *ctx, double keep);

#ifdef __cplusplus
}
#endif

#endif /* WAVE_PLUGIN_RPC_H */
