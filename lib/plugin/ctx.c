/* SPDX-License-Identifier: MIT */
/*
 * Plugin contexts: everything a plugin can reach (parameters, decisions,
 * logging, counters, ticks), and the calls the agent runtime uses to drive
 * it. A context knows no channel: decisions leave through the emit function
 * it was given, so a test drives a plugin with a context of its own.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/core.h"
#include "../decision/domain.h"
#include "plugin_impl.h"

static const char *const builtin_counters[CTR_BUILTIN] = {
	[CTR_EVENTS] = "events",
	[CTR_EVENT_ERRORS] = "event_errors",
	[CTR_TICKS] = "ticks",
	[CTR_EMITTED] = "emitted",
};

static const char *plugin_name(const struct wave_plugin_ctx *ctx)
{
	return ctx->plugin->desc->name;
}

/* The application range runs to the largest type, so only its start needs
 * checking (a comparison with the end would always be true). */
_Static_assert(WAVE_MSG_APP_LAST == UINT16_MAX, "application range ends at the last type");
static int app_type(uint16_t type)
{
	return type >= WAVE_MSG_APP_FIRST;
}

/* ---- counters ---------------------------------------------------------- */

static int counter_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > WAVE_PLUGIN_COUNTER_NAME_MAX)
		return 0;
	for (; *name; name++)
		if (!((*name >= 'a' && *name <= 'z') || (*name >= '0' && *name <= '9') ||
		      *name == '_'))
			return 0;
	return 1;
}

WAVE_API int wave_plugin_counter(struct wave_plugin_ctx *ctx, const char *name)
{
	unsigned n;

	if (!ctx || !name || !counter_name_ok(name))
		return -EINVAL;
	n = atomic_load_explicit(&ctx->n_counters, memory_order_relaxed);
	for (unsigned i = 0; i < n; i++)
		if (strcmp(ctx->counters[i].name, name) == 0)
			return (int)i;
	if (n == WAVE_PLUGIN_MAX_COUNTERS)
		return -ENOSPC;
	strcpy(ctx->counters[n].name, name);
	atomic_store_explicit(&ctx->counters[n].value, 0, memory_order_relaxed);
	/* Pairs with the acquire in wave_plugin_ctx_counter(): the name is
	 * written before a reader can see the slot. */
	atomic_store_explicit(&ctx->n_counters, n + 1, memory_order_release);
	return (int)n;
}

WAVE_API void wave_plugin_counter_add(struct wave_plugin_ctx *ctx, int id, uint64_t delta)
{
	if (ctx && id >= 0 &&
	    (unsigned)id < atomic_load_explicit(&ctx->n_counters, memory_order_relaxed))
		wave_plugin_ctr_add(ctx, (unsigned)id, delta);
}

WAVE_API int wave_plugin_ctx_counter(const struct wave_plugin_ctx *ctx, unsigned index,
				     const char **name, uint64_t *value)
{
	if (!ctx)
		return -EINVAL;
	/* Pairs with the release in wave_plugin_counter(). */
	if (index >= atomic_load_explicit(&ctx->n_counters, memory_order_acquire))
		return -ENOENT;
	if (name)
		*name = ctx->counters[index].name;
	if (value)
		*value = atomic_load_explicit(&ctx->counters[index].value, memory_order_relaxed);
	return 0;
}

/* ---- parameters -------------------------------------------------------- */

/* The value of @key (kind PARAM_ABSENT when there is none); notes that it
 * was read. */
static struct param_value param_get(struct wave_plugin_ctx *ctx, const char *key)
{
	struct param_value v = { .kind = PARAM_ABSENT };

	if (!ctx || !key)
		return v;
	v = wave_params_get(ctx->params, key);
	if (v.kind != PARAM_ABSENT && v.index < 64)
		ctx->params_read |= UINT64_C(1) << v.index;
	return v;
}

/* Parameters are read in init; one it never asked for is most likely a
 * misspelt key, which would otherwise be ignored without a word. */
static void warn_unread_params(const struct wave_plugin_ctx *ctx)
{
	size_t n = wave_params_count(ctx->params);

	for (size_t i = 0; i < n && i < 64; i++)
		if (!(ctx->params_read & (UINT64_C(1) << i)))
			wave_warn("plugin %s: %s.%s: unknown parameter, ignored", plugin_name(ctx),
				  wave_params_where(ctx->params), wave_params_key(ctx->params, i));
}

/* Whether @v, present, has the kind asked for; warns when it has not. */
static bool param_ok(struct wave_plugin_ctx *ctx, const char *key, const struct param_value *v,
		     bool ok, const char *what)
{
	if (v->kind == PARAM_ABSENT)
		return false;
	if (!ok)
		wave_warn("plugin %s: %s.%s: expected %s; using the plugin's default",
			  plugin_name(ctx), wave_params_where(ctx->params), key, what);
	return ok;
}

WAVE_API int64_t wave_plugin_param_int(struct wave_plugin_ctx *ctx, const char *key, int64_t def)
{
	struct param_value v = param_get(ctx, key);

	return param_ok(ctx, key, &v, v.kind == PARAM_INT, "an integer") ? v.i : def;
}

WAVE_API uint64_t wave_plugin_param_uint(struct wave_plugin_ctx *ctx, const char *key,
					 uint64_t def)
{
	struct param_value v = param_get(ctx, key);

	return param_ok(ctx, key, &v, v.kind == PARAM_INT && v.i >= 0, "a non-negative integer")
		       ? (uint64_t)v.i
		       : def;
}

WAVE_API double wave_plugin_param_double(struct wave_plugin_ctx *ctx, const char *key, double def)
{
	struct param_value v = param_get(ctx, key);

	if (!param_ok(ctx, key, &v, v.kind == PARAM_INT || v.kind == PARAM_REAL, "a number"))
		return def;
	return v.kind == PARAM_INT ? (double)v.i : v.d;
}

WAVE_API bool wave_plugin_param_bool(struct wave_plugin_ctx *ctx, const char *key, bool def)
{
	struct param_value v = param_get(ctx, key);

	return param_ok(ctx, key, &v, v.kind == PARAM_BOOL, "true or false") ? v.b : def;
}

WAVE_API const char *wave_plugin_param_string(struct wave_plugin_ctx *ctx, const char *key,
					      const char *def)
{
	struct param_value v = param_get(ctx, key);

	return param_ok(ctx, key, &v, v.kind == PARAM_STRING, "a string") ? v.s : def;
}

/* ---- decisions, logging, private state -------------------------------- */

WAVE_API int wave_plugin_emit(struct wave_plugin_ctx *ctx, const struct wave_msg *msgs, unsigned n)
{
	int ret;

	if (!ctx || !msgs || n == 0)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++)
		if (!app_type(msgs[i].type))
			return -EINVAL;
	if (!ctx->emit)
		return -ENOTCONN;
	ret = ctx->emit(ctx->emit_user, msgs, n);
	if (ret > 0)
		wave_plugin_ctr_add(ctx, CTR_EMITTED, (uint64_t)ret);
	return ret > (int)n ? (int)n : ret; /* a confused emit cannot overstate */
}

WAVE_API void wave_plugin_log(struct wave_plugin_ctx *ctx, enum wave_log_level level,
			      const char *fmt, ...)
{
	char buf[400];
	va_list ap;

	if (!ctx || !fmt || level <= WAVE_LOG_OFF || level > WAVE_LOG_DEBUG)
		return;
	wave_log_init_once();
	if ((int)level > wave_log_level_cur)
		return; /* do not format what nobody will read */
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	wave_log_emit(level, "plugin %s: %s", plugin_name(ctx), buf);
}

WAVE_API void wave_plugin_set_priv(struct wave_plugin_ctx *ctx, void *priv)
{
	if (ctx)
		ctx->priv = priv;
}

WAVE_API void *wave_plugin_priv(const struct wave_plugin_ctx *ctx)
{
	return ctx ? ctx->priv : NULL;
}

WAVE_API uint64_t wave_plugin_tick_ns(const struct wave_plugin_ctx *ctx)
{
	return ctx ? ctx->tick_ns : 0;
}

/* ---- the agent's side -------------------------------------------------- */

WAVE_API int wave_plugin_ctx_opts_init(struct wave_plugin_ctx_opts *opts)
{
	if (!opts)
		return -EINVAL;
	memset(opts, 0, sizeof(*opts));
	opts->size = sizeof(*opts);
	return 0;
}

static void ctx_free(struct wave_plugin_ctx *ctx)
{
	wave_params_free(ctx->params);
	free(ctx);
}

int plugin_emit_decision(struct wave_plugin_ctx *ctx, struct dec_refusals *r,
			 const struct wave_msg *m)
{
	int ret;

	if (!ctx->emit)
		return dec_refuse(r, DEC_REFUSED_FULL, -ENOTCONN);
	ret = ctx->emit(ctx->emit_user, m, 1);
	if (ret <= 0)
		return dec_refuse(r, DEC_REFUSED_FULL, ret < 0 ? ret : -EAGAIN);
	wave_plugin_ctr_add(ctx, CTR_EMITTED, 1);
	return 0;
}

void dom_ctrs_register(struct dom_ctrs *c, struct wave_plugin_ctx *ctx)
{
	static const char *const names[DOM_CTR_COUNT] = {
		[DOM_CTR_COMMITTED] = "txn_committed",
		[DOM_CTR_ABORTED] = "txn_aborted",
		[DOM_CTR_EVENTS_REFUSED] = "events_refused",
		[DOM_CTR_DECISIONS_REFUSED] = "decisions_refused",
	};

	for (unsigned i = 0; i < DOM_CTR_COUNT; i++) {
		c->id[i] = wave_plugin_counter(ctx, names[i]);
		c->pub[i] = 0;
	}
}

void dom_ctrs_publish(struct dom_ctrs *c, struct wave_plugin_ctx *ctx, uint64_t committed,
		      const uint64_t aborted[WAVE_RESULT_COUNT], uint64_t events_refused,
		      const struct dec_refusals *r)
{
	uint64_t v[DOM_CTR_COUNT] = { [DOM_CTR_COMMITTED] = committed,
				      [DOM_CTR_EVENTS_REFUSED] = events_refused,
				      [DOM_CTR_DECISIONS_REFUSED] = dec_refusals_total(r) };

	for (unsigned res = 1; res < WAVE_RESULT_COUNT; res++)
		v[DOM_CTR_ABORTED] += aborted[res];
	for (unsigned i = 0; i < DOM_CTR_COUNT; i++) {
		if (v[i] > c->pub[i])
			wave_plugin_counter_add(ctx, c->id[i], v[i] - c->pub[i]);
		c->pub[i] = v[i];
	}
}

static struct wave_plugin_ctx *ctx_new(const struct wave_plugin *p,
				       const struct wave_plugin_ctx_opts *o)
{
	struct wave_plugin_ctx *ctx = calloc(1, sizeof(*ctx));

	if (!ctx)
		return NULL;
	ctx->plugin = p;
	ctx->domain = p->desc->domain;
	ctx->ops = p->desc->ops;
	ctx->tick_ns = o->tick_ns;
	ctx->emit = o->emit;
	ctx->emit_user = o->emit_user;
	ctx->domain_state = o->domain_state;
	if (!(ctx->params = wave_params_dup(o->params))) {
		ctx_free(ctx);
		return NULL;
	}
	for (unsigned i = 0; i < CTR_BUILTIN; i++)
		wave_plugin_counter(ctx, builtin_counters[i]);
	return ctx;
}

WAVE_API int wave_plugin_ctx_create(struct wave_plugin *p, const struct wave_plugin_ctx_opts *opts,
				    struct wave_plugin_ctx **out, struct wave_error *err)
{
	struct wave_plugin_ctx_opts o;
	struct wave_plugin_ctx *ctx;
	int ret;

	wave_error_clear(err);
	wave_plugin_ctx_opts_init(&o);
	if (!p || !out || (opts && wave_struct_copy(&o, sizeof(o), opts, opts->size,
					WAVE_SIZE_TO(struct wave_plugin_ctx_opts, domain_state),
					"struct wave_plugin_ctx_opts") < 0))
		return wave_error_set(err, -EINVAL, p ? p->path : "", 0, 0, "invalid argument");
	if (!(ctx = ctx_new(p, &o)))
		return wave_error_set(err, -ENOMEM, p->path, 0, 0, "out of memory");
	ret = p->desc->init ? p->desc->init(ctx) : 0;
	if (ret < 0) {
		ctx_free(ctx);
		return wave_error_set(err, -WAVE_EPLUGIN, p->path, 0, 0, "init failed: %s (%d)",
				      wave_strerror(ret), ret);
	}
	warn_unread_params(ctx);
	*out = ctx;
	return 0;
}

WAVE_API void wave_plugin_ctx_destroy(struct wave_plugin_ctx *ctx)
{
	if (!ctx)
		return;
	if (ctx->plugin->desc->fini)
		ctx->plugin->desc->fini(ctx);
	ctx_free(ctx);
}

bool plugin_has_tick(const struct wave_plugin_ctx *ctx)
{
	const struct domain_desc *dom = wave_domains[ctx->plugin->desc->domain];

	return dom->has_tick && dom->has_tick(ctx->plugin->desc);
}

WAVE_API int wave_plugin_ctx_tick(struct wave_plugin_ctx *ctx, uint64_t now_ns)
{
	const struct domain_desc *dom;

	if (!ctx)
		return -EINVAL;
	if (ctx->tick_ns == 0 || !plugin_has_tick(ctx))
		return 0;
	dom = wave_domains[ctx->plugin->desc->domain];
	if (ctx->next_tick == 0) {
		ctx->next_tick = now_ns + ctx->tick_ns;
		return 0;
	}
	if (now_ns < ctx->next_tick)
		return 0;
	ctx->next_tick += ctx->tick_ns;
	if (ctx->next_tick <= now_ns)
		ctx->next_tick = now_ns + ctx->tick_ns; /* fell behind: drop missed ticks */
	wave_plugin_ctr_add(ctx, CTR_TICKS, 1);
	dom->tick(ctx, now_ns);
	return 1;
}

WAVE_API uint64_t wave_plugin_ctx_next_tick(const struct wave_plugin_ctx *ctx)
{
	return ctx ? ctx->next_tick : 0;
}
