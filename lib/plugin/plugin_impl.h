/* SPDX-License-Identifier: MIT */
/* Internal structures of loaded plugins and their contexts. */
#ifndef WAVE_AGENT_PLUGIN_IMPL_H
#define WAVE_AGENT_PLUGIN_IMPL_H

#include <stdatomic.h>
#include <stdint.h>

#include <wave/plugin.h>
#include <wave/plugin_loader.h>

#include "../core/params.h"

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

/* Adds @delta to counter @id (single writer). */
void wave_plugin_ctr_add(struct wave_plugin_ctx *ctx, unsigned id, uint64_t delta);

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
/* Publishes the domain's totals @v, indexed by DOM_CTR_*. */
void dom_ctrs_publish(struct dom_ctrs *c, struct wave_plugin_ctx *ctx,
		      const uint64_t v[DOM_CTR_COUNT]);

#endif /* WAVE_AGENT_PLUGIN_IMPL_H */
