/* SPDX-License-Identifier: MIT */
/* Internal structures of loaded plugins and their contexts. */
#ifndef WAVE_AGENT_PLUGIN_IMPL_H
#define WAVE_AGENT_PLUGIN_IMPL_H

#include <stdatomic.h>
#include <stdint.h>

#include <wave/plugin.h>
#include <wave/plugin_loader.h>

#include "../core/params.h"
#include "../decision/pending.h"

struct wave_plugin {
	void *handle; /* from dlopen; NULL for a static plugin */
	char *path;   /* the file, or "static:<name>" */
	const struct wave_plugin_desc *desc;
};

/* Built-in counters, registered first in every context, in this order. */
enum {
	CTR_EVENTS,
	CTR_EVENT_ERRORS,
	CTR_TICKS,
	CTR_EMITTED,
	CTR_BUILTIN
};

struct plugin_counter {
	char name[WAVE_PLUGIN_COUNTER_NAME_MAX + 1];
	/* Written only by the plugin's thread, read by anyone: relaxed
	 * atomics keep reads whole without a locked add on the fast path. */
	_Atomic uint64_t value;
};

struct wave_plugin_ctx {
	const struct wave_plugin *plugin;
	/* plugin->desc's domain and ops: one load on every plugin call and
	 * every op called instead of three. */
	unsigned domain;
	const void *ops;
	struct wave_params *params; /* never NULL */
	/* Which of the first 64 parameters (in file order) the plugin read,
	 * to name the ones it ignored (likely typos) after init. */
	uint64_t params_read;
	uint64_t tick_ns;
	uint64_t next_tick;
	wave_plugin_emit_fn emit;
	void *emit_user;
	const void *domain_state;
	void *priv;
	/* Published count: a reader on another thread sees only counters
	 * whose name was written before (release/acquire). */
	_Atomic unsigned n_counters;
	struct plugin_counter counters[WAVE_PLUGIN_MAX_COUNTERS];
};

/* Adds @delta to counter @id (single writer). Inline: every event and
 * every decision counts. */
static inline void wave_plugin_ctr_add(struct wave_plugin_ctx *ctx, unsigned id, uint64_t delta)
{
	_Atomic uint64_t *v = &ctx->counters[id].value;

	/* Single writer: a relaxed load and store is enough (no locked add);
	 * readers on other threads see whole values. */
	atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + delta,
			      memory_order_relaxed);
}

/* ---- what every decision domain's state model does with its plugin ---- */

/* The domain state behind @ctx when its plugin is of @domain, else NULL
 * (the domain still checks the state's magic). */
static inline const void *plugin_domain_state(const struct wave_plugin_ctx *ctx, unsigned domain)
{
	return ctx && ctx->domain == domain ? ctx->domain_state : NULL;
}

/* The ops table of @ctx's plugin, if it serves @domain, else NULL. */
static inline const void *plugin_ops(const struct wave_plugin_ctx *ctx, unsigned domain)
{
	return ctx->domain == domain ? ctx->ops : NULL;
}

/* After the plugin's op for one event returned @ret: counted. */
static inline void plugin_op_done(struct wave_plugin_ctx *ctx, int ret)
{
	wave_plugin_ctr_add(ctx, CTR_EVENTS, 1);
	if (ret < 0)
		wave_plugin_ctr_add(ctx, CTR_EVENT_ERRORS, 1);
}

/* Calls @op of the plugin's ops table (of type @ops_type) if the table
 * has it, and counts the event. */
#define PLUGIN_CALL(ctx, ops_type, op, ...)                                            \
	do {                                                                           \
		const ops_type *ops_ = (ctx) ? (const ops_type *)(ctx)->ops : NULL;    \
		if (WAVE_OPS_HAS(ops_, ops_type, op))                                  \
			plugin_op_done((ctx), ops_->op((ctx), __VA_ARGS__));           \
	} while (0)

/* Does @ctx's plugin have a periodic op (its domain's has_tick)? Its
 * domain's tick() may be called only then: the op is optional. */
bool plugin_has_tick(const struct wave_plugin_ctx *ctx);

/* Emits @m, a decision the state model checked, to the host; a channel
 * that is full or gone is backpressure, counted as a refusal in @r.
 * Return: 0 when it left, or the refusal's error. */
int plugin_emit_decision(struct wave_plugin_ctx *ctx, struct dec_refusals *r,
			 const struct wave_msg *m);

/*
 * The counters every decision domain publishes in its plugin instance's
 * context, next to the plugin's own, so wave-stat shows the same four
 * figures for every domain: transactions committed and aborted by the
 * host, events the state model refused, decisions refused before they
 * left. The domain keeps its own totals; dom_ctrs_publish() adds what
 * grew since the last call (counters only add).
 */
enum { DOM_CTR_COMMITTED, DOM_CTR_ABORTED, DOM_CTR_EVENTS_REFUSED, DOM_CTR_DECISIONS_REFUSED,
       DOM_CTR_COUNT };

struct dom_ctrs {
	int id[DOM_CTR_COUNT]; /* < 0: the plugin took every counter */
	uint64_t pub[DOM_CTR_COUNT];
};

/* Registers the four in @ctx (a new instance: after a hot swap too). */
void dom_ctrs_register(struct dom_ctrs *c, struct wave_plugin_ctx *ctx);
/* Publishes the domain's totals, read in place after every message:
 * @committed, @aborted by enum wave_result (index 0, committed, is not
 * read), @events_refused, and the decisions refused in @r. */
void dom_ctrs_publish(struct dom_ctrs *c, struct wave_plugin_ctx *ctx, uint64_t committed,
		      const uint64_t aborted[WAVE_RESULT_COUNT], uint64_t events_refused,
		      const struct dec_refusals *r);

#endif /* WAVE_AGENT_PLUGIN_IMPL_H */
