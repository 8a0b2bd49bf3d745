/* SPDX-License-Identifier: MIT */
/*
 * What a sched plugin can do through its context: read tasks and CPUs, and
 * decide. Every decision is checked against the state before it is sent,
 * so a policy bug or a stale view costs a refused call, never a message the
 * host must abort; a sent decision marks its task and CPU pending until the
 * outcome arrives.
 */
#include <errno.h>
#include <string.h>

#include "../../plugin/plugin_impl.h"
#include "sched.h"
#include "sched_impl.h"

/* The state behind a sched plugin's context, or NULL. The context stores
 * it const because other domains only read theirs; a sched context drives
 * its state by design (see wave_plugin_ctx_opts.domain_state). */
static struct wave_sched_state *state_of(const struct wave_plugin_ctx *ctx)
{
	struct wave_sched_state *st =
		(struct wave_sched_state *)plugin_domain_state(ctx, WAVE_DOMAIN_SCHED);

	return st && st->magic == SCHED_STATE_MAGIC ? st : NULL;
}

/* Encodes and emits one decision; 0 when the host's channel took it. */
static int emit_decision(struct wave_plugin_ctx *ctx, struct wave_sched_state *st, uint16_t type,
		uint64_t task, uint64_t seq, uint32_t cpu)
{
	struct wave_sched_msg d = { .type = type, .cpu = cpu, .task = task, .seq = seq };
	struct wave_msg m;
	int ret;

	/* Every field was checked against the state: a live task (so its id
	 * and sequence number are not 0), a CPU of the host. */
	sched_decision_encode(&d, &m);
	if ((ret = plugin_emit_decision(ctx, &st->refused, &m)) == 0)
		st->stats.sent++;
	return ret;
}

/* The checks RUN and PRESTAGE share; the task, or NULL with *@err set. */
static struct sched_task *decision_task(struct wave_sched_state *st, uint64_t task, uint64_t seq,
					uint32_t cpu, int *err)
{
	struct sched_task *t;

	if (cpu >= st->n_cpus) {
		*err = dec_refuse(&st->refused, DEC_REFUSED_INVALID, -ERANGE);
		return NULL;
	}
	if (!(t = sched_task_find(st, task))) {
		*err = dec_refuse(&st->refused, DEC_REFUSED_GONE, -ENOENT);
		return NULL;
	}
	if (seq != t->seq) {
		*err = dec_refuse(&st->refused, DEC_REFUSED_STALE, -ESTALE);
		return NULL;
	}
	if (t->state != WAVE_SCHED_RUNNABLE || dec_pend_any(&t->pend)) {
		*err = dec_refuse(&st->refused, DEC_REFUSED_NOT_ELIGIBLE, -EPERM);
		return NULL;
	}
	return t;
}

WAVE_API int wave_plugin_sched_run(struct wave_plugin_ctx *ctx, uint64_t task, uint64_t seq,
				   uint32_t cpu)
{
	struct wave_sched_state *st = state_of(ctx);
	struct sched_task *t;
	int err = 0;

	if (!st)
		return -EINVAL;
	if (!(t = decision_task(st, task, seq, cpu, &err)))
		return err;
	if (st->cpus[cpu].current || st->cpus[cpu].slot[0] || st->cpus[cpu].slot[1])
		return dec_refuse(&st->refused, DEC_REFUSED_BUSY, -EBUSY);
	if ((err = emit_decision(ctx, st, WAVE_SCHED_RUN, task, seq, cpu)) < 0)
		return err;
	dec_pend_link(&t->pend, st->cpus[cpu].slot, task, PENDING_RUN, cpu);
	sched_cpu_update_free(st, cpu);
	return 0;
}

WAVE_API int wave_plugin_sched_prestage(struct wave_plugin_ctx *ctx, uint64_t task,
					uint64_t seq, uint32_t cpu)
{
	struct wave_sched_state *st = state_of(ctx);
	struct sched_task *t;
	int err = 0;

	if (!st)
		return -EINVAL;
	if (!(t = decision_task(st, task, seq, cpu, &err)))
		return err;
	if (st->cpus[cpu].slot[PENDING_PRESTAGE - 1])
		return dec_refuse(&st->refused, DEC_REFUSED_BUSY, -EBUSY);
	if ((err = emit_decision(ctx, st, WAVE_SCHED_PRESTAGE, task, seq, cpu)) < 0)
		return err;
	dec_pend_link(&t->pend, st->cpus[cpu].slot, task, PENDING_PRESTAGE, cpu);
	sched_cpu_update_free(st, cpu);
	return 0;
}

WAVE_API int wave_plugin_sched_preempt(struct wave_plugin_ctx *ctx, uint32_t cpu)
{
	struct wave_sched_state *st = state_of(ctx);
	const struct sched_task *t;
	struct sched_cpu *c;
	int err;

	if (!st)
		return -EINVAL;
	if (cpu >= st->n_cpus)
		return dec_refuse(&st->refused, DEC_REFUSED_INVALID, -ERANGE);
	c = &st->cpus[cpu];
	if (!c->current || !(t = sched_task_find(st, c->current)))
		return dec_refuse(&st->refused, DEC_REFUSED_NOT_ELIGIBLE, -EPERM);
	if (c->preempting)
		return dec_refuse(&st->refused, DEC_REFUSED_BUSY, -EBUSY);
	if ((err = emit_decision(ctx, st, WAVE_SCHED_PREEMPT, t->id, t->seq, cpu)) < 0)
		return err;
	c->preempting = 1;
	return 0;
}

WAVE_API int wave_plugin_sched_task(const struct wave_plugin_ctx *ctx, uint64_t id,
				    struct wave_sched_task *out)
{
	struct wave_sched_state *st = state_of(ctx);
	const struct sched_task *t;

	if (!st || !out)
		return -EINVAL;
	if (!(t = sched_task_find(st, id)))
		return -ENOENT;
	sched_task_view(t, out);
	return 0;
}

WAVE_API int wave_plugin_sched_cpu_count(const struct wave_plugin_ctx *ctx)
{
	const struct wave_sched_state *st = state_of(ctx);

	return st ? (int)st->n_cpus : -EINVAL;
}

WAVE_API int wave_plugin_sched_cpu(const struct wave_plugin_ctx *ctx, uint32_t cpu,
				   struct wave_sched_cpu *out)
{
	const struct wave_sched_state *st = state_of(ctx);
	const struct sched_cpu *c;

	if (!st || !out)
		return -EINVAL;
	if (cpu >= st->n_cpus)
		return -ERANGE;
	c = &st->cpus[cpu];
	memset(out, 0, sizeof(*out));
	out->id = cpu;
	out->preempting = c->preempting;
	out->current = c->current;
	out->pending = c->slot[PENDING_RUN - 1];
	out->prestaged = c->slot[PENDING_PRESTAGE - 1];
	out->idle_since_ns = c->idle_since_ns;
	return 0;
}

WAVE_API int wave_plugin_sched_free_cpu(const struct wave_plugin_ctx *ctx, uint32_t from)
{
	const struct wave_sched_state *st = state_of(ctx);

	return st ? sched_cpu_find_free(st, from) : -EINVAL;
}
