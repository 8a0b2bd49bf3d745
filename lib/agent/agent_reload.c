/* SPDX-License-Identifier: MIT */
/*
 * Loading the configured plugins, and hot-swapping those whose
 * configuration changed (wave_agent_reload()): load the new plugin, start
 * an instance per host and replay the host's state into it, then stop the
 * old instances and unload the old plugin.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../core/config_impl.h"
#include "../core/core.h"
#include "agent_impl.h"

/* Starts @p once in a throw-away context with the domain's params: a
 * plugin whose init fails is refused now, by name and with its error,
 * rather than every host being refused later with nothing printed. */
static int probe_init(struct wave_plugin *p, const struct wave_config_domain *dcfg,
		      struct wave_error *err)
{
	struct wave_plugin_ctx_opts o;
	struct wave_plugin_ctx *ctx;
	int ret;

	wave_plugin_ctx_opts_init(&o);
	o.params = dcfg->params;
	ret = wave_plugin_ctx_create(p, &o, &ctx, err);
	if (ret == 0)
		wave_plugin_ctx_destroy(ctx);
	return ret;
}

int agent_load_plugin(const struct wave_config *cfg, unsigned d, struct wave_plugin **out,
		      struct wave_error *err)
{
	struct wave_plugin_load_opts o;
	int ret;

	wave_plugin_load_opts_init(&o);
	o.search_path = (const char *const *)cfg->plugin_path;
	o.n_search_path = cfg->n_plugin_path;
	o.domain = (int)d;
	ret = wave_plugin_load(cfg->domains[d].plugin, &o, out, err);
	if (ret == 0 && (ret = probe_init(*out, &cfg->domains[d], err)) < 0) {
		wave_plugin_unload(*out);
		*out = NULL;
	}
	return ret;
}

static bool str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool domain_changed(const struct wave_config_domain *x, const struct wave_config_domain *y)
{
	if (x->enabled != y->enabled)
		return true;
	if (!x->enabled)
		return false;
	return !str_eq(x->plugin, y->plugin) || x->tick_us != y->tick_us ||
	       !json_equal(x->params->obj, y->params->obj);
}

static bool list_eq(char **a, size_t na, char **b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (strcmp(a[i], b[i]) != 0)
			return false;
	return true;
}

/* A fabric:// listener holds the token it was opened with (its channel
 * hellos are checked against it), so with one the token is fixed too. */
static bool token_fixed(const struct wave_config *o, const struct wave_config *n)
{
	for (size_t i = 0; i < o->n_listen; i++)
		if (strncmp(o->listen[i], "fabric://", strlen("fabric://")) == 0)
			return !str_eq(o->token, n->token);
	return false;
}

/* What a running agent cannot change: its addresses and its channels. */
static int fixed_check(const struct wave_config *o, const struct wave_config *n,
		       struct wave_error *err)
{
	if (token_fixed(o, n))
		return wave_error_set(err, -EINVAL, n->source ? n->source : "", 0, 0,
				      "auth.token cannot change while the agent listens on "
				      "fabric://; restart it");
	if (!list_eq(o->listen, o->n_listen, n->listen, n->n_listen) ||
	    o->host_to_agent_slots != n->host_to_agent_slots ||
	    o->agent_to_host_slots != n->agent_to_host_slots || o->max_slots != n->max_slots ||
	    o->delay_ns != n->delay_ns || o->n_allow_uids != n->n_allow_uids ||
	    (n->n_allow_uids &&
	     memcmp(o->allow_uids, n->allow_uids, n->n_allow_uids * sizeof(uid_t)) != 0) ||
	    !str_eq(o->stats_socket, n->stats_socket) || o->metrics != n->metrics ||
	    o->metrics_port != n->metrics_port || !str_eq(o->metrics_address, n->metrics_address)) {
		return wave_error_set(err, -EINVAL, n->source ? n->source : "", 0, 0,
				      "listen, channel, auth.allow_uids, stats_socket and metrics "
				      "cannot change while the agent runs; restart it");
	}
	return 0;
}

/* New instances of domain @d for every host, replayed. On failure, those
 * already made are stopped and nothing else changes. */
static int start_all(struct wave_agent *a, unsigned d, struct wave_plugin *p,
		     const struct wave_config_domain *dcfg, struct agent_inst *fresh,
		     struct wave_error *err)
{
	int ret;

	for (size_t i = 0; i < a->n_hosts; i++) {
		struct agent_host *h = a->hosts[i];

		if (!h->dom[d].inst.ctx)
			continue;
		ret = agent_inst_start(h, d, p, dcfg, &fresh[i], err);
		if (ret < 0) {
			while (i--)
				wave_plugin_ctx_destroy(fresh[i].ctx);
			return ret;
		}
	}
	return 0;
}

/* Swaps in the fresh instances, replaying each host's state into its new
 * instance while the old one is still there to compare answers with. */
static void swap_all(struct wave_agent *a, unsigned d, struct agent_inst *fresh)
{
	for (size_t i = 0; i < a->n_hosts; i++) {
		struct agent_host *h = a->hosts[i];
		struct agent_inst old;

		if (!fresh[i].ctx)
			continue;
		old = h->dom[d].inst;
		h->dom[d].inst = fresh[i];
		wave_domains[d]->replay(&h->dom[d]);
		a->dom[d].events_in += old.events_in;
		a->dom[d].decisions_out += old.decisions_out;
		a->dom[d].errors += old.errors;
		agent_lat_retire(&a->dom[d], &old);
		wave_plugin_ctx_destroy(old.ctx);
	}
}

static int swap_domain(struct wave_agent *a, unsigned d, const struct wave_config *cfg,
		       struct wave_error *err)
{
	const struct wave_config_domain *dcfg = &cfg->domains[d];
	struct wave_plugin *p = NULL, *old = a->dom[d].plugin;
	struct agent_inst *fresh;
	int ret;

	if (dcfg->enabled) {
		ret = agent_load_plugin(cfg, d, &p, err);
		if (ret < 0)
			return ret;
	}
	fresh = calloc(a->n_hosts ? a->n_hosts : 1, sizeof(*fresh));
	if (!fresh) {
		wave_plugin_unload(p);
		return -ENOMEM;
	}
	ret = p ? start_all(a, d, p, dcfg, fresh, err) : 0;
	if (ret < 0) {
		free(fresh);
		wave_plugin_unload(p);
		return ret;
	}
	if (p) {
		swap_all(a, d, fresh);
	} else {
		/* Domain dropped: its hosts lose it (they fall back for it). */
		for (size_t i = 0; i < a->n_hosts; i++) {
			wave_plugin_ctx_destroy(a->hosts[i]->dom[d].inst.ctx);
			memset(&a->hosts[i]->dom[d].inst, 0, sizeof(a->hosts[i]->dom[d].inst));
		}
	}
	free(fresh);
	a->dom[d].plugin = p;
	a->dom[d].dcfg = p ? dcfg : NULL;
	wave_plugin_unload(old);
	wave_info("agent: domain %s: plugin %s", wave_domain_name(d),
		  p ? dcfg->plugin : "(none)");
	return 0;
}

/* Every plugin the new configuration changes must load before anything
 * is swapped, so that a bad one changes nothing. */
static int precheck(struct wave_agent *a, const struct wave_config *cfg, struct wave_error *err)
{
	struct wave_plugin *p;
	int ret;

	for (unsigned d = 0; d < WAVE_DOMAIN_COUNT; d++) {
		if (!cfg->domains[d].enabled || !domain_changed(&a->cfg->domains[d], &cfg->domains[d]))
			continue;
		ret = agent_load_plugin(cfg, d, &p, err);
		if (ret < 0)
			return ret;
		wave_plugin_unload(p);
	}
	return 0;
}

int agent_apply_reload(struct wave_agent *a, const struct wave_config *cfg,
		       struct wave_error *err)
{
	int ret = fixed_check(a->cfg, cfg, err);
	uint32_t swapped = 0;

	if (ret == 0)
		ret = precheck(a, cfg, err);
	for (unsigned d = 0; ret == 0 && d < WAVE_DOMAIN_COUNT; d++)
		if (domain_changed(&a->cfg->domains[d], &cfg->domains[d])) {
			ret = swap_domain(a, d, cfg, err);
			swapped |= 1u << d;
		}
	if (ret < 0)
		return ret;
	for (unsigned d = 0; d < WAVE_DOMAIN_COUNT; d++)
		if (a->dom[d].plugin)
			a->dom[d].dcfg = &cfg->domains[d];
	a->cfg = cfg;
	agent_record_restart(a, swapped);
	return 0;
}
