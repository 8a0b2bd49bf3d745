/* SPDX-License-Identifier: MIT */
/* wave_agent_stats_json(): the agent's counters as JSON (jansson). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../core/config_impl.h"
#include "../core/core.h"
#include "agent_impl.h"

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

/* Appends the latencies kept of a ring of AGENT_LAT_KEEP written @pos
 * times to @v (room for AGENT_LAT_KEEP more). Return: how many. */
static size_t lat_kept(const uint64_t *ring, uint64_t pos, uint64_t *v)
{
	size_t n = pos < AGENT_LAT_KEEP ? (size_t)pos : AGENT_LAT_KEEP;

	memcpy(v, ring, n * sizeof(v[0]));
	return n;
}

/* {"p50", "p99", "samples"} of the @n latencies in @v (sorted here); the
 * percentiles are 0 when there are none. @samples counts every latency
 * ever recorded, not only those kept. */
static json_t *lat_json(uint64_t *v, size_t n, uint64_t samples)
{
	uint64_t p50 = 0, p99 = 0;

	qsort(v, n, sizeof(v[0]), cmp_u64);
	if (n) {
		p50 = v[(n - 1) * 50 / 100];
		p99 = v[(n - 1) * 99 / 100];
	}
	return json_pack("{s:I,s:I,s:I}", "p50", (json_int_t)p50, "p99", (json_int_t)p99,
			 "samples", (json_int_t)samples);
}

/* One instance's: its last AGENT_LAT_KEEP decisions. */
static json_t *latency(const struct agent_inst *in)
{
	uint64_t v[AGENT_LAT_KEEP];

	return lat_json(v, lat_kept(in->lat, in->n_lat, v), in->n_lat);
}

void agent_lat_retire(struct agent_domain *dom, const struct agent_inst *in)
{
	size_t n = in->n_lat < AGENT_LAT_KEEP ? (size_t)in->n_lat : AGENT_LAT_KEEP;

	/* Oldest first, so the newest stay when the ring wraps. */
	for (uint64_t k = in->n_lat - n; k < in->n_lat; k++)
		dom->lat[dom->lat_pos++ % AGENT_LAT_KEEP] = in->lat[k % AGENT_LAT_KEEP];
	dom->n_lat += in->n_lat;
}

/* A plugin's: the last AGENT_LAT_KEEP decisions of each host it serves,
 * and of the instances gone. NULL when out of memory. */
static json_t *plugin_latency(const struct wave_agent *a, unsigned d)
{
	const struct agent_domain *dom = &a->dom[d];
	uint64_t *v = malloc((a->n_hosts + 1) * AGENT_LAT_KEEP * sizeof(*v));
	uint64_t samples = dom->n_lat;
	size_t n;
	json_t *j;

	if (!v)
		return NULL;
	n = lat_kept(dom->lat, dom->lat_pos, v);
	for (size_t i = 0; i < a->n_hosts; i++) {
		const struct agent_inst *in = &a->hosts[i]->dom[d].inst;

		n += lat_kept(in->lat, in->n_lat, v + n);
		samples += in->n_lat;
	}
	j = lat_json(v, n, samples);
	free(v);
	return j;
}

static json_t *counters(const struct wave_plugin_ctx *ctx)
{
	json_t *o = json_object();
	const char *name;
	uint64_t value;

	for (unsigned i = 0; o && wave_plugin_ctx_counter(ctx, i, &name, &value) == 0; i++)
		json_object_set_new(o, name, json_integer((json_int_t)value));
	return o;
}

static json_t *inst_json(const struct wave_agent *a, unsigned d, const struct agent_inst *in)
{
	const struct wave_plugin_desc *desc = wave_plugin_desc(a->dom[d].plugin);

	return json_pack("{s:s,s:I,s:I,s:I,s:o,s:o}", "plugin", desc ? desc->name : "",
			 "events_in", (json_int_t)in->events_in, "decisions_out",
			 (json_int_t)in->decisions_out, "errors", (json_int_t)in->errors,
			 "latency_ns", latency(in), "counters", counters(in->ctx));
}

static json_t *host_json(const struct wave_agent *a, const struct agent_host *h)
{
	json_t *doms = json_object();

	for (unsigned d = 0; doms && d < WAVE_DOMAIN_COUNT; d++) {
		json_t *in = h->dom[d].inst.ctx ? inst_json(a, d, &h->dom[d].inst) : NULL;

		/* While recording: the records its trace's writer lost. */
		if (in && h->rec[d])
			json_object_set_new(in, "trace_lost", json_integer((json_int_t)h->rec[d]->lost));
		if (in)
			json_object_set_new(doms, wave_domain_name(d), in);
	}
	json_t *o = json_pack("{s:I,s:s}", "id", (json_int_t)h->id, "state",
			      h->state == AHOST_READY ? "ready" : "hello");
	const char *names[8];
	uint64_t values[8];

	/* The domains' own counters of this host, next to its identity. */
	for (unsigned d = 0; o && d < WAVE_DOMAIN_COUNT; d++) {
		unsigned n = wave_domains[d] && wave_domains[d]->counters && h->dom[d].state
				     ? wave_domains[d]->counters(&h->dom[d], names, values, 8)
				     : 0;

		for (unsigned k = 0; k < n; k++)
			json_object_set_new(o, names[k], json_integer((json_int_t)values[k]));
	}
	if (o)
		json_object_set_new(o, "domains", doms);
	else
		json_decref(doms);
	return o;
}

/* Per plugin: its description and the totals of every host it served. */
static json_t *plugin_json(const struct wave_agent *a, unsigned d)
{
	const struct agent_domain *dom = &a->dom[d];
	const struct wave_plugin_desc *desc = wave_plugin_desc(dom->plugin);
	uint64_t ev = dom->events_in, out = dom->decisions_out, errs = dom->errors;

	for (size_t i = 0; i < a->n_hosts; i++) {
		ev += a->hosts[i]->dom[d].inst.events_in;
		out += a->hosts[i]->dom[d].inst.decisions_out;
		errs += a->hosts[i]->dom[d].inst.errors;
	}
	return json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:o}", "name", desc->name, "version",
			 desc->version, "path", wave_plugin_path(dom->plugin), "events_in",
			 (json_int_t)ev, "decisions_out", (json_int_t)out, "errors",
			 (json_int_t)errs, "latency_ns", plugin_latency(a, d));
}

static json_t *agent_json(const struct wave_agent *a)
{
	json_t *hosts = json_array(), *plugins = json_object();

	for (size_t i = 0; hosts && i < a->n_hosts; i++)
		json_array_append_new(hosts, host_json(a, a->hosts[i]));
	for (unsigned d = 0; plugins && d < WAVE_DOMAIN_COUNT; d++)
		if (a->dom[d].plugin)
			json_object_set_new(plugins, wave_domain_name(d), plugin_json(a, d));
	return json_pack("{s:o,s:o,s:I,s:I,s:I,s:I}", "hosts", hosts, "plugins", plugins,
			 "hosts_accepted", (json_int_t)a->accepted, "hosts_refused",
			 (json_int_t)a->refused, "hosts_dead", (json_int_t)a->dead, "hosts_lost",
			 (json_int_t)a->lost);
}

int agent_stats_dump(const struct wave_agent *a, char **json)
{
	json_t *doc = agent_json(a);
	char *s;

	if (!doc)
		return -ENOMEM;
	s = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	if (!s)
		return -ENOMEM;
	/* json_dumps() allocates with jansson's allocator: hand the caller
	 * memory that free() takes, whatever that allocator is. */
	*json = strdup(s);
	wave_cfg_free(s);
	return *json ? 0 : -ENOMEM;
}

WAVE_API int wave_agent_stats_json(struct wave_agent *a, char **json)
{
	int ret;

	if (!a || !json)
		return -EINVAL;
	agent_lock_ext(a);
	ret = agent_stats_dump(a, json);
	agent_unlock_ext(a);
	return ret;
}
