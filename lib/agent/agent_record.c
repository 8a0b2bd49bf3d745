/* SPDX-License-Identifier: MIT */
/*
 * Recording decision traces (docs/trace.md): per host and domain, every
 * event the host sent (outcomes of decisions included) and every decision
 * the plugin made, into <record.path>/wave-<pid>-host<id>-<domain>.trace
 * with the configured size cap and rotation. The hooks sit where every
 * host message enters and every decision leaves (agent_host.c), which know
 * no domain; a domain only names its setup message (domain_desc). Each
 * trace has a writer thread (lib/trace/trace_async.h): the agent loop
 * only copies records into its ring.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/config_impl.h"
#include "../core/core.h"
#include "agent_impl.h"

/* The plugin's parameters as compact JSON with sorted keys (or NULL);
 * jansson's memory: free it with wave_cfg_free(). */
static char *params_json(const struct wave_config_domain *dcfg)
{
	return dcfg->params ? json_dumps(dcfg->params->obj, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
}

static void record_start(struct agent_host *h, unsigned d)
{
	const struct wave_config *cfg = h->a->cfg;
	const struct wave_config_domain *dcfg = h->a->dom[d].dcfg;
	struct trace_async_opts o = { { NULL, cfg->record.max_bytes, cfg->record.rotate },
				      cfg->record.ring, cfg->record.writer_cpu,
				      wave_domains[d] ? wave_domains[d]->setup_type : 0 };
	struct trace_meta meta = { .domain = d, .host_id = h->id, .start_ns = wave_now_ns() };
	struct wave_error err;
	char *path;
	int ret;

	if (h->rec[d] || !dcfg || !cfg->record.path)
		return;
	snprintf(meta.plugin, sizeof(meta.plugin), "%s", dcfg->plugin);
	meta.params = params_json(dcfg);
	if (h->has_setup & (1u << d)) {
		meta.setup[0] = h->setup[d];
		meta.n_setup = 1;
	}
	if (asprintf(&path, "%s/wave-%ld-host%llu-%s.trace", cfg->record.path, (long)getpid(),
		     (unsigned long long)h->id, wave_domain_name(d)) < 0) {
		wave_cfg_free(meta.params);
		wave_warn("agent: host %llu: not recorded: out of memory",
			  (unsigned long long)h->id);
		return;
	}
	o.w.path = path;
	ret = trace_async_open(&o, &meta, &h->rec[d], &err);
	if (ret < 0)
		wave_warn("agent: host %llu: not recorded: %s: %s", (unsigned long long)h->id,
			  err.source, err.text);
	free(path);
	wave_cfg_free(meta.params);
}

void agent_record_host(struct agent_host *h)
{
	if (!h->a->recording || h->state != AHOST_READY)
		return;
	for (unsigned d = 0; d < WAVE_DOMAIN_COUNT; d++)
		if (h->hello.domains & (1u << d))
			record_start(h, d);
}

void agent_record_host_stop(struct agent_host *h)
{
	for (unsigned d = 0; d < WAVE_DOMAIN_COUNT; d++) {
		trace_async_close(h->rec[d]);
		h->rec[d] = NULL;
	}
}

/* For the header of a trace begun later; a running trace's writer takes
 * it from the record itself (trace_async_opts.setup_type). */
void agent_record_setup(struct agent_host *h, unsigned d, const struct wave_msg *m)
{
	h->setup[d] = *m;
	h->has_setup |= 1u << d;
}

void agent_record_restart(struct wave_agent *a, uint32_t domains)
{
	for (size_t i = 0; i < a->n_hosts; i++) {
		struct agent_host *h = a->hosts[i];

		for (unsigned d = 0; d < WAVE_DOMAIN_COUNT; d++) {
			if (!(domains & (1u << d)) || !h->rec[d])
				continue;
			trace_async_close(h->rec[d]);
			h->rec[d] = NULL;
			record_start(h, d);
		}
	}
}

void agent_record_checkpoint(struct agent_host *h)
{
	for (unsigned d = 0; d < WAVE_DOMAIN_COUNT; d++)
		trace_async_publish(h->rec[d]);
}

WAVE_API int wave_agent_record(struct wave_agent *a, int on)
{
	if (!a || (on != 0 && on != 1))
		return -EINVAL;
	if (on && !a->cfg->record.path) {
		wave_warn("agent: cannot record: the configuration has no record.path");
		return -ENOENT;
	}
	agent_lock_ext(a);
	a->recording = on;
	for (size_t i = 0; i < a->n_hosts; i++) {
		if (on)
			agent_record_host(a->hosts[i]);
		else
			agent_record_host_stop(a->hosts[i]);
	}
	agent_unlock_ext(a);
	wave_info("agent: recording %s", on ? "on" : "off");
	return 0;
}
