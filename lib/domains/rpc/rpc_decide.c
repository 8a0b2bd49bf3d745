/* SPDX-License-Identifier: MIT */
/*
 * What an rpc plugin can do through its context (include/wave/plugin_rpc.h):
 * read the model, and decide. Every decision is checked against the model
 * and stamped from it (the entry's sequence number, the epoch, the
 * worker's generation) before it is sent, so a policy bug costs a refused
 * call, never a message the host must abort; a sent decision marks its
 * entry or dispatcher pending until the outcome arrives.
 */
#include <errno.h>
#include <string.h>

#include "../../plugin/plugin_impl.h"
#include "rpc_impl.h"

struct wave_rpc_state *rpc_state_of(const struct wave_plugin_ctx *ctx)
{
	/* Stored const because other domains only read theirs; an rpc
	 * context drives its state by design, as a sched one does. */
	struct wave_rpc_state *st =
		(struct wave_rpc_state *)plugin_domain_state(ctx, WAVE_DOMAIN_RPC);

	return st && st->magic == RPC_STATE_MAGIC ? st : NULL;
}

const struct wave_rpc_ops *rpc_ops(const struct wave_plugin_ctx *ctx)
{
	return plugin_ops(ctx, WAVE_DOMAIN_RPC);
}

/* Encodes and emits one decision; 0 when the host's channel took it. */
static int emit(struct wave_plugin_ctx *ctx, struct wave_rpc_state *st,
		const struct wave_rpc_msg *d)
{
	struct wave_msg m;
	int ret;

	/* Cannot fail: every field was checked against the model. */
	if ((ret = wave_rpc_msg_encode(d, &st->dims, &m)) < 0)
		return ret;
	if ((ret = plugin_emit_decision(ctx, &st->refused, &m)) == 0)
		st->stats.sent++;
	return ret;
}

/* The checks of a decision's worker. */
static int check_worker(struct wave_rpc_state *st, uint32_t worker)
{
	if (worker >= st->dims.max_workers)
		return dec_refuse(&st->refused, DEC_REFUSED_INVALID, -ERANGE);
	if (!st->workers[worker].live)
		return dec_refuse(&st->refused, DEC_REFUSED_GONE, -ENOENT);
	return 0;
}

WAVE_API int wave_plugin_rpc_move(struct wave_plugin_ctx *ctx, uint32_t bucket, uint32_t worker)
{
	struct wave_rpc_state *st = rpc_state_of(ctx);
	struct wave_rpc_msg d = { .type = WAVE_RPC_MOVE, .bucket = bucket, .worker = worker };
	struct rpc_entry *e;
	int ret;

	if (!st)
		return -EINVAL;
	if (bucket >= st->n_entries)
		return dec_refuse(&st->refused, DEC_REFUSED_INVALID, -ERANGE);
	if ((ret = check_worker(st, worker)) < 0)
		return ret;
	e = &st->entries[bucket];
	if (dec_pend_any(&e->pend))
		return dec_refuse(&st->refused, DEC_REFUSED_BUSY, -EBUSY);
	if (e->worker == worker)
		return dec_refuse(&st->refused, DEC_REFUSED_NOT_ELIGIBLE, -EALREADY);
	d.gen = st->workers[worker].gen;
	d.seq = e->seq;
	d.epoch = st->epoch;
	if ((ret = emit(ctx, st, &d)) < 0)
		return ret;
	dec_pend_link(&e->pend, NULL, 0, RPC_PEND_MOVE, worker);
	return 0;
}

WAVE_API int wave_plugin_rpc_prestage(struct wave_plugin_ctx *ctx, uint32_t dispatcher,
				      uint32_t worker)
{
	struct wave_rpc_state *st = rpc_state_of(ctx);
	struct wave_rpc_msg d = { .type = WAVE_RPC_PRESTAGE, .bucket = dispatcher,
				  .worker = worker };
	int ret;

	if (!st)
		return -EINVAL;
	if (dispatcher >= st->dims.n_dispatchers)
		return dec_refuse(&st->refused, DEC_REFUSED_INVALID, -ERANGE);
	if ((ret = check_worker(st, worker)) < 0)
		return ret;
	if (dec_pend_any(&st->disp[dispatcher].pend))
		return dec_refuse(&st->refused, DEC_REFUSED_BUSY, -EBUSY);
	d.gen = st->workers[worker].gen;
	d.epoch = st->epoch;
	if ((ret = emit(ctx, st, &d)) < 0)
		return ret;
	dec_pend_link(&st->disp[dispatcher].pend, NULL, 0, RPC_PEND_PRESTAGE, worker);
	return 0;
}

WAVE_API int wave_plugin_rpc_info(const struct wave_plugin_ctx *ctx, struct wave_rpc_info *out)
{
	const struct wave_rpc_state *st = rpc_state_of(ctx);

	if (!st || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->dims = st->dims;
	out->epoch = st->epoch;
	out->workers = st->n_live;
	out->report_ns = st->report_ns;
	out->reports = st->reports;
	out->keep = st->keep;
	return 0;
}

WAVE_API int wave_plugin_rpc_worker(const struct wave_plugin_ctx *ctx, uint32_t worker,
				    struct wave_rpc_worker *out)
{
	const struct wave_rpc_state *st = rpc_state_of(ctx);

	if (!st || !out)
		return -EINVAL;
	if (worker >= st->dims.max_workers)
		return -ERANGE;
	if (!st->workers[worker].live)
		return -ENOENT;
	rpc_worker_view(st, worker, out);
	return 0;
}

WAVE_API int wave_plugin_rpc_bucket(const struct wave_plugin_ctx *ctx, uint32_t bucket,
				    struct wave_rpc_bucket *out)
{
	const struct wave_rpc_state *st = rpc_state_of(ctx);

	if (!st || !out)
		return -EINVAL;
	if (bucket >= st->n_entries)
		return -ERANGE;
	rpc_entry_view(st, bucket, out);
	return 0;
}

WAVE_API int wave_plugin_rpc_prestaged(const struct wave_plugin_ctx *ctx, uint32_t dispatcher)
{
	const struct wave_rpc_state *st = rpc_state_of(ctx);

	if (!st)
		return -EINVAL;
	if (dispatcher >= st->dims.n_dispatchers)
		return -ERANGE;
	if (st->disp[dispatcher].staged == WAVE_RPC_NO_WORKER)
		return -ENOENT;
	return (int)st->disp[dispatcher].staged;
}

WAVE_API int wave_plugin_rpc_set_decay(struct wave_plugin_ctx *ctx, double keep)
{
	struct wave_rpc_state *st = rpc_state_of(ctx);

	if (!st || !(keep >= 0.0 && keep < 1.0))
		return -EINVAL;
	st->keep = keep;
	return 0;
}
