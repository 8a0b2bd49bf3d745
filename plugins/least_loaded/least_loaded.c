/* SPDX-License-Identifier: MIT */
/* least_loaded: route work to the least-loaded worker (see least_loaded.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <wave/plugin.h>
#include <wave/plugin_custom.h>

#include "least_loaded.h"

struct ll_state {
	uint32_t n_workers;
	uint16_t type_base;
	uint32_t ask_cost;
	int ctr_answers;
	int ctr_hints;
	int ctr_bad;
	/* Reported load plus ask_cost per answer since the last report. */
	uint64_t load[];
};

static uint32_t least_loaded(const struct ll_state *st)
{
	uint32_t best = 0;

	for (uint32_t i = 1; i < st->n_workers; i++)
		if (st->load[i] < st->load[best])
			best = i;
	return best;
}

/* Reads and checks the parameters; fills @st's fixed fields. */
static int ll_params(struct wave_plugin_ctx *ctx, uint32_t *n, uint16_t *base, uint32_t *cost)
{
	uint64_t workers = wave_plugin_param_uint(ctx, "workers", 8);
	uint64_t type_base = wave_plugin_param_uint(ctx, "type_base", WAVE_MSG_APP_FIRST);
	uint64_t ask_cost = wave_plugin_param_uint(ctx, "ask_cost", 1);

	if (workers == 0 || workers > WAVE_LL_MAX_WORKERS) {
		wave_plugin_log(ctx, WAVE_LOG_ERROR, "workers must be 1..%u, not %llu",
				WAVE_LL_MAX_WORKERS, (unsigned long long)workers);
		return -EINVAL;
	}
	if (type_base < WAVE_MSG_APP_FIRST || type_base + WAVE_LL_HINT > WAVE_MSG_APP_LAST) {
		wave_plugin_log(ctx, WAVE_LOG_ERROR, "type_base 0x%llx leaves the application range",
				(unsigned long long)type_base);
		return -EINVAL;
	}
	if (ask_cost > UINT32_MAX) {
		wave_plugin_log(ctx, WAVE_LOG_ERROR, "ask_cost is too large");
		return -EINVAL;
	}
	*n = (uint32_t)workers;
	*base = (uint16_t)type_base;
	*cost = (uint32_t)ask_cost;
	return 0;
}

static int ll_init(struct wave_plugin_ctx *ctx)
{
	struct ll_state *st;
	uint32_t n, cost;
	uint16_t base;
	int ret = ll_params(ctx, &n, &base, &cost);

	if (ret < 0)
		return ret;
	st = calloc(1, sizeof(*st) + n * sizeof(st->load[0]));
	if (!st)
		return -ENOMEM;
	st->n_workers = n;
	st->type_base = base;
	st->ask_cost = cost;
	st->ctr_answers = wave_plugin_counter(ctx, "answers");
	st->ctr_hints = wave_plugin_counter(ctx, "hints");
	st->ctr_bad = wave_plugin_counter(ctx, "bad_events");
	wave_plugin_set_priv(ctx, st);
	wave_plugin_log(ctx, WAVE_LOG_INFO, "%u workers, types 0x%04x..0x%04x", n, base,
			base + WAVE_LL_HINT);
	return 0;
}

static void ll_fini(struct wave_plugin_ctx *ctx)
{
	free(wave_plugin_priv(ctx));
}

static int ll_answer(struct wave_plugin_ctx *ctx, struct ll_state *st, uint64_t cookie)
{
	struct wave_msg m;
	uint32_t w = least_loaded(st);
	int ret;

	memset(&m, 0, sizeof(m));
	m.type = (uint16_t)(st->type_base + WAVE_LL_ANSWER);
	m.payload.u64[0] = cookie;
	m.payload.u32[2] = w;
	ret = wave_plugin_emit(ctx, &m, 1);
	if (ret < 0)
		return ret;
	if (ret == 0)
		return -EAGAIN; /* the host's ring is full: it will ask again */
	st->load[w] += st->ask_cost;
	wave_plugin_counter_add(ctx, st->ctr_answers, 1);
	return 0;
}

static int ll_on_event(struct wave_plugin_ctx *ctx, const struct wave_msg *ev)
{
	struct ll_state *st = wave_plugin_priv(ctx);

	if (ev->type == st->type_base + WAVE_LL_LOAD && ev->payload.u32[0] < st->n_workers) {
		st->load[ev->payload.u32[0]] = ev->payload.u32[1];
		return 0;
	}
	if (ev->type == st->type_base + WAVE_LL_ASK)
		return ll_answer(ctx, st, ev->payload.u64[0]);
	/* Not ours, or a worker out of range: the application is confused. */
	wave_plugin_counter_add(ctx, st->ctr_bad, 1);
	return -EINVAL;
}

static void ll_on_tick(struct wave_plugin_ctx *ctx, uint64_t now_ns)
{
	struct ll_state *st = wave_plugin_priv(ctx);
	struct wave_msg m;
	uint32_t w = least_loaded(st);

	(void)now_ns;
	memset(&m, 0, sizeof(m));
	m.type = (uint16_t)(st->type_base + WAVE_LL_HINT);
	m.payload.u32[0] = w;
	m.payload.u32[1] = st->load[w] > UINT32_MAX ? UINT32_MAX : (uint32_t)st->load[w];
	/* A hint that does not fit is simply skipped: the next tick sends a
	 * fresher one. */
	if (wave_plugin_emit(ctx, &m, 1) == 1)
		wave_plugin_counter_add(ctx, st->ctr_hints, 1);
}

static const struct wave_custom_ops ll_ops = {
	.size = sizeof(struct wave_custom_ops),
	.on_event = ll_on_event,
	.on_tick = ll_on_tick,
};

WAVE_PLUGIN_DEFINE(least_loaded, WAVE_DOMAIN_CUSTOM, "1.0.0",
		   "route work to the least-loaded of N workers", ll_init, ll_fini, &ll_ops)
