/* SPDX-License-Identifier: MIT */
/*
 * The statistics document as Prometheus metrics. Names carry their unit
 * (seconds) and counters end in _total; each family's HELP and TYPE come
 * first, then all its samples, as the format requires. A host's series
 * are labelled host, domain and plugin; a plugin's totals (hosts gone
 * included) domain and plugin. Label values come from another process
 * and are escaped.
 */
#include <inttypes.h>
#include <string.h>

#include "stats_prom.h"

/* A counter or gauge of each host's domain instance. @key is a member of
 * the instance's object, or (@from_counters) of its "counters". */
struct inst_family {
	const char *name, *type, *key, *help;
	int from_counters;
};

static const struct inst_family inst_families[] = {
	{ "wave_events_total", "counter", "events_in", "Events received from the host.", 0 },
	{ "wave_decisions_total", "counter", "decisions_out", "Decisions sent to the host.", 0 },
	{ "wave_errors_total", "counter", "errors", "Events the plugin failed to handle.", 0 },
	{ "wave_decisions_refused_total", "counter", "decisions_refused",
	  "Decisions refused by the agent's checks before they were sent.", 1 },
	{ "wave_transactions_aborted_total", "counter", "txn_aborted",
	  "Decisions the host aborted when it committed them.", 1 },
	{ "wave_transactions_committed_total", "counter", "txn_committed",
	  "Decisions the host committed.", 1 },
	{ "wave_events_refused_total", "counter", "events_refused",
	  "Events refused as malformed or out of order.", 1 },
};

static void header(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value: backslash, double quote and newline escaped. */
static void label_value(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fprintf(f, "\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static const char *str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

/* {host="1",domain="custom",plugin="x"} plus one more label if @extra. */
static void inst_labels(FILE *f, json_int_t host, const char *domain, const json_t *inst,
			const char *extra, const char *extra_value)
{
	fprintf(f, "{host=\"%" JSON_INTEGER_FORMAT "\",domain=", host);
	label_value(f, domain);
	fputs(",plugin=", f);
	label_value(f, str(inst, "plugin"));
	if (extra) {
		fprintf(f, ",%s=", extra);
		label_value(f, extra_value);
	}
	fputc('}', f);
}

/* Calls @fn for each domain instance of each host of @doc. */
typedef void (*inst_fn)(FILE *f, json_int_t host, const char *domain, const json_t *inst,
			const void *arg);

static void each_inst(FILE *f, const json_t *doc, inst_fn fn, const void *arg)
{
	const json_t *hosts = json_object_get(doc, "hosts"), *h;
	size_t i;

	json_array_foreach (hosts, i, h) {
		const json_t *id = json_object_get(h, "id"), *inst;
		const char *domain;

		if (!json_is_integer(id))
			continue;
		json_object_foreach ((json_t *)json_object_get(h, "domains"), domain, inst)
			fn(f, json_integer_value(id), domain, inst, arg);
	}
}

static void inst_sample(FILE *f, json_int_t host, const char *domain, const json_t *inst,
			const void *arg)
{
	const struct inst_family *fam = arg;
	const json_t *o = fam->from_counters ? json_object_get(inst, "counters") : inst;
	const json_t *v = json_object_get(o, fam->key);

	if (!json_is_integer(v))
		return;
	fputs(fam->name, f);
	inst_labels(f, host, domain, inst, NULL, NULL);
	fprintf(f, " %" JSON_INTEGER_FORMAT "\n", json_integer_value(v));
}

/* Whether counter @name has a family of its own. */
static int named_counter(const char *name)
{
	for (size_t i = 0; i < sizeof(inst_families) / sizeof(inst_families[0]); i++)
		if (inst_families[i].from_counters && strcmp(inst_families[i].key, name) == 0)
			return 1;
	return 0;
}

static void plugin_counters(FILE *f, json_int_t host, const char *domain, const json_t *inst,
			    const void *arg)
{
	const char *name;
	json_t *v;

	json_object_foreach ((json_t *)json_object_get(inst, "counters"), name, v) {
		if (!json_is_integer(v) || named_counter(name))
			continue;
		fputs("wave_plugin_counter_total", f);
		inst_labels(f, host, domain, inst, "counter", name);
		fprintf(f, " %" JSON_INTEGER_FORMAT "\n", json_integer_value(v));
	}
}

/* p50 and p99 of a "latency_ns" object, in seconds, after @labels. */
static void quantiles(FILE *f, const char *name, const json_t *lat, void (*labels)(FILE *f,
		      const char *quantile, const void *ctx), const void *ctx)
{
	static const char *const q[][2] = { { "p50", "0.5" }, { "p99", "0.99" } };
	const json_t *samples = json_object_get(lat, "samples");

	for (size_t i = 0; i < 2; i++) {
		const json_t *v = json_object_get(lat, q[i][0]);

		if (!json_is_integer(v) || !json_is_integer(samples))
			continue;
		fputs(name, f);
		labels(f, q[i][1], ctx);
		/* No decision yet: no quantile (Prometheus's NaN), not 0 s. */
		if (json_integer_value(samples) == 0)
			fputs(" NaN\n", f);
		else
			fprintf(f, " %.9g\n", (double)json_integer_value(v) / 1e9);
	}
}

struct inst_ref {
	json_int_t host;
	const char *domain;
	const json_t *inst;
};

static void inst_quantile_labels(FILE *f, const char *quantile, const void *ctx)
{
	const struct inst_ref *r = ctx;

	inst_labels(f, r->host, r->domain, r->inst, "quantile", quantile);
}

static void inst_latency(FILE *f, json_int_t host, const char *domain, const json_t *inst,
			 const void *arg)
{
	struct inst_ref r = { host, domain, inst };
	const json_t *lat = json_object_get(inst, "latency_ns");

	if (strcmp(arg, "quantiles") == 0) {
		quantiles(f, "wave_decision_latency_seconds", lat, inst_quantile_labels, &r);
	} else if (json_is_integer(json_object_get(lat, "samples"))) {
		fputs("wave_decision_latency_samples_total", f);
		inst_labels(f, host, domain, inst, NULL, NULL);
		fprintf(f, " %" JSON_INTEGER_FORMAT "\n",
			json_integer_value(json_object_get(lat, "samples")));
	}
}

static void hosts_metrics(FILE *f, const json_t *doc)
{
	for (size_t i = 0; i < sizeof(inst_families) / sizeof(inst_families[0]); i++) {
		header(f, inst_families[i].name, inst_families[i].type, inst_families[i].help);
		each_inst(f, doc, inst_sample, &inst_families[i]);
	}
	header(f, "wave_decision_latency_seconds", "gauge",
	       "Decision latency quantiles over the host's last 512 decisions, from the "
	       "event's send to the decision's send.");
	each_inst(f, doc, inst_latency, "quantiles");
	header(f, "wave_decision_latency_samples_total", "counter",
	       "Decisions that answered an event.");
	each_inst(f, doc, inst_latency, "samples");
	header(f, "wave_plugin_counter_total", "counter", "A plugin's own counters.");
	each_inst(f, doc, plugin_counters, NULL);
}

/* ---- plugins: totals of every host served, those gone included ---- */

static void plugin_labels(FILE *f, const char *domain, const json_t *p)
{
	fputs("{domain=", f);
	label_value(f, domain);
	fputs(",plugin=", f);
	label_value(f, str(p, "name"));
}

struct plugin_ref {
	const char *domain;
	const json_t *p;
};

static void plugin_quantile_labels(FILE *f, const char *quantile, const void *ctx)
{
	const struct plugin_ref *r = ctx;

	plugin_labels(f, r->domain, r->p);
	fputs(",quantile=", f);
	label_value(f, quantile);
	fputc('}', f);
}

static void plugins_metrics(FILE *f, const json_t *doc)
{
	static const char *const totals[][3] = {
		{ "wave_plugin_events_total", "events_in", "Events received by the plugin." },
		{ "wave_plugin_decisions_total", "decisions_out", "Decisions the plugin sent." },
		{ "wave_plugin_errors_total", "errors", "Events the plugin failed to handle." },
	};
	const json_t *plugins = json_object_get(doc, "plugins");
	const char *domain;
	json_t *p;

	header(f, "wave_plugin_info", "gauge", "The plugin loaded for a domain (always 1).");
	json_object_foreach ((json_t *)plugins, domain, p) {
		fputs("wave_plugin_info", f);
		plugin_labels(f, domain, p);
		fputs(",version=", f);
		label_value(f, str(p, "version"));
		fputs(",path=", f);
		label_value(f, str(p, "path"));
		fputs("} 1\n", f);
	}
	for (size_t i = 0; i < sizeof(totals) / sizeof(totals[0]); i++) {
		header(f, totals[i][0], "counter", totals[i][2]);
		json_object_foreach ((json_t *)plugins, domain, p) {
			const json_t *v = json_object_get(p, totals[i][1]);

			if (!json_is_integer(v))
				continue;
			fputs(totals[i][0], f);
			plugin_labels(f, domain, p);
			fprintf(f, "} %" JSON_INTEGER_FORMAT "\n", json_integer_value(v));
		}
	}
	header(f, "wave_plugin_decision_latency_seconds", "gauge",
	       "Decision latency quantiles over the last 512 decisions of each host served.");
	json_object_foreach ((json_t *)plugins, domain, p) {
		struct plugin_ref r = { domain, p };

		quantiles(f, "wave_plugin_decision_latency_seconds",
			  json_object_get(p, "latency_ns"), plugin_quantile_labels, &r);
	}
}

static void agent_metrics(FILE *f, const json_t *doc)
{
	static const char *const counters[][3] = {
		{ "wave_agent_hosts_accepted_total", "hosts_accepted", "Hosts welcomed." },
		{ "wave_agent_hosts_refused_total", "hosts_refused",
		  "Hosts refused at their hello (version, token, domains, heartbeat)." },
		{ "wave_agent_hosts_dead_total", "hosts_dead",
		  "Hosts declared dead after heartbeat.timeout_ms of silence: each went to its "
		  "local fallback policy." },
		{ "wave_agent_hosts_lost_total", "hosts_lost",
		  "Hosts whose channel closed without a goodbye: the process exited without "
		  "closing its host, or was killed." },
	};

	header(f, "wave_agent_hosts", "gauge", "Hosts connected now.");
	fprintf(f, "wave_agent_hosts %zu\n", json_array_size(json_object_get(doc, "hosts")));
	for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
		const json_t *v = json_object_get(doc, counters[i][1]);

		header(f, counters[i][0], "counter", counters[i][2]);
		if (json_is_integer(v))
			fprintf(f, "%s %" JSON_INTEGER_FORMAT "\n", counters[i][0],
				json_integer_value(v));
	}
}

/* ---- checking a document from another process ---- */

/* The kinds of value the agent writes (lib/agent/agent_stats.c). */
enum kind { K_COUNT, K_STRING, K_OBJECT, K_ARRAY };

static const char *const kind_names[] = { "a non-negative integer", "a string", "an object",
					  "an array" };

/* A member the agent always writes, and its kind. */
struct field {
	const char *key;
	enum kind kind;
};

static const struct field agent_fields[] = {
	{ "hosts", K_ARRAY }, { "plugins", K_OBJECT }, { "hosts_accepted", K_COUNT },
	{ "hosts_refused", K_COUNT }, { "hosts_dead", K_COUNT }, { "hosts_lost", K_COUNT },
	{ NULL, 0 },
};
static const struct field host_fields[] = {
	{ "id", K_COUNT }, { "state", K_STRING }, { "domains", K_OBJECT }, { NULL, 0 },
};
static const struct field inst_fields[] = {
	{ "plugin", K_STRING }, { "events_in", K_COUNT }, { "decisions_out", K_COUNT },
	{ "errors", K_COUNT }, { "latency_ns", K_OBJECT }, { "counters", K_OBJECT },
	{ NULL, 0 },
};
static const struct field plugin_fields[] = {
	{ "name", K_STRING }, { "version", K_STRING }, { "path", K_STRING },
	{ "events_in", K_COUNT }, { "decisions_out", K_COUNT }, { "errors", K_COUNT },
	{ "latency_ns", K_OBJECT }, { NULL, 0 },
};
static const struct field latency_fields[] = {
	{ "p50", K_COUNT }, { "p99", K_COUNT }, { "samples", K_COUNT }, { NULL, 0 },
};

/* Where a failed check writes its message, one line. */
struct check {
	char *why;
	size_t len;
};

#define PATH_LEN 160

static int is_kind(const json_t *v, enum kind k)
{
	switch (k) {
	case K_COUNT:
		return json_is_integer(v) && json_integer_value(v) >= 0;
	case K_STRING:
		return json_is_string(v);
	case K_OBJECT:
		return json_is_object(v);
	default:
		return json_is_array(v);
	}
}

/* @path.@key into @out (PATH_LEN bytes). The names come from another
 * process: cut short (marked "..."), and control characters replaced, as
 * they go into a one-line message. */
static const char *join(char *out, const char *path, const char *key)
{
	int n = snprintf(out, PATH_LEN, "%s%s%.64s", path, *path ? "." : "", key);

	if (n >= PATH_LEN)
		memcpy(out + PATH_LEN - 4, "...", 4);
	for (char *s = out; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
	return out;
}

/* @v, at @path, of kind @k; or -1 and the message. */
static int want(struct check *c, const json_t *v, const char *path, enum kind k)
{
	if (is_kind(v, k))
		return 0;
	snprintf(c->why, c->len, "%s: %sexpected %s", path, v ? "" : "missing, ", kind_names[k]);
	return -1;
}

/* Each member of @f in object @o at @path. */
static int want_fields(struct check *c, const json_t *o, const char *path, const struct field *f)
{
	char p[PATH_LEN];

	for (; f->key; f++)
		if (want(c, json_object_get(o, f->key), join(p, path, f->key), f->kind) < 0)
			return -1;
	return 0;
}

/* The "latency_ns" of @o, which has been checked to be an object. */
static int want_latency(struct check *c, const json_t *o, const char *path)
{
	char p[PATH_LEN];

	return want_fields(c, json_object_get(o, "latency_ns"), join(p, path, "latency_ns"),
			   latency_fields);
}

/* A host's domain instance: its plugin's own counters are counters too. */
static int check_inst(struct check *c, const json_t *inst, const char *path)
{
	const json_t *trace_lost = json_object_get(inst, "trace_lost"), *v;
	char p[PATH_LEN], q[PATH_LEN];
	const char *name;

	if (want(c, inst, path, K_OBJECT) < 0 || want_fields(c, inst, path, inst_fields) < 0 ||
	    want_latency(c, inst, path) < 0)
		return -1;
	/* Only while the host is recorded. */
	if (trace_lost && want(c, trace_lost, join(p, path, "trace_lost"), K_COUNT) < 0)
		return -1;
	join(p, path, "counters");
	json_object_foreach ((json_t *)json_object_get(inst, "counters"), name, v)
		if (want(c, v, join(q, p, name), K_COUNT) < 0)
			return -1;
	return 0;
}

static int check_host(struct check *c, const json_t *h, const char *path)
{
	char p[PATH_LEN], q[PATH_LEN];
	const char *domain;
	json_t *inst;

	if (want(c, h, path, K_OBJECT) < 0 || want_fields(c, h, path, host_fields) < 0)
		return -1;
	join(p, path, "domains");
	json_object_foreach ((json_t *)json_object_get(h, "domains"), domain, inst)
		if (check_inst(c, inst, join(q, p, domain)) < 0)
			return -1;
	return 0;
}

static int check_plugin(struct check *c, const json_t *pl, const char *path)
{
	if (want(c, pl, path, K_OBJECT) < 0 || want_fields(c, pl, path, plugin_fields) < 0)
		return -1;
	return want_latency(c, pl, path);
}

int stats_prom_check(const json_t *doc, char *why, size_t len)
{
	struct check c = { why, len };
	char p[PATH_LEN];
	const char *domain;
	json_t *v;
	size_t i;

	if (!json_is_object(doc)) {
		snprintf(why, len, "not an object");
		return -1;
	}
	if (want_fields(&c, doc, "", agent_fields) < 0)
		return -1;
	json_array_foreach (json_object_get(doc, "hosts"), i, v) {
		snprintf(p, sizeof(p), "hosts[%zu]", i);
		if (check_host(&c, v, p) < 0)
			return -1;
	}
	json_object_foreach ((json_t *)json_object_get(doc, "plugins"), domain, v)
		if (check_plugin(&c, v, join(p, "plugins", domain)) < 0)
			return -1;
	return 0;
}

int stats_prom_write(FILE *f, const json_t *doc)
{
	if (!json_is_object(doc) || !json_is_array(json_object_get(doc, "hosts")) ||
	    !json_is_object(json_object_get(doc, "plugins")))
		return -1;
	agent_metrics(f, doc);
	hosts_metrics(f, doc);
	plugins_metrics(f, doc);
	return 0;
}
