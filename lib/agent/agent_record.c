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
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* One trace file of the directory, for prune(). */
struct trace_file {
	char name[NAME_MAX + 1];
	struct timespec mtime;
};

/* A name this agent gives its traces (wave-*.trace, wave-*.trace.N). */
static bool trace_name(const char *n)
{
	const char *t = strstr(n, ".trace");

	if (strncmp(n, "wave-", 5) != 0 || !t)
		return false;
	if (t[6] == '\0')
		return true;
	if (t[6] != '.' || !t[7])
		return false;
	return strspn(t + 7, "0123456789") == strlen(t + 7);
}

/* A trace a recording of this agent writes: host @id, domain @d. */
static uint64_t live_key(uint64_t id, unsigned d)
{
	return id * WAVE_DOMAIN_COUNT + d;
}

static int by_key(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

/* The keys of the traces @a writes now, sorted, *@n of them; NULL without
 * memory. Made once per prune(), not once per file of the directory. */
static uint64_t *live_keys(const struct wave_agent *a, size_t *n)
{
	uint64_t *k = malloc((a->n_hosts * WAVE_DOMAIN_COUNT + 1) * sizeof(*k));

	*n = 0;
	for (size_t i = 0; k && i < a->n_hosts; i++)
		for (unsigned d = 0; d < WAVE_DOMAIN_COUNT; d++)
			if (a->hosts[i]->rec[d])
				k[(*n)++] = live_key(a->hosts[i]->id, d);
	if (k)
		qsort(k, *n, sizeof(*k), by_key);
	return k;
}

/* Whether @name is a trace that one of @live (of this process) names:
 * wave-<pid>-host<id>-<domain>.trace, not a rotated one. */
static bool being_written(const char *name, const uint64_t *live, size_t n)
{
	unsigned long long id;
	char dom[16];
	long pid;
	int end = 0;
	uint64_t key;

	if (sscanf(name, "wave-%ld-host%llu-%15[a-z].trace%n", &pid, &id, dom, &end) != 3 ||
	    name[end] != '\0' || pid != (long)getpid())
		return false;
	for (unsigned d = 0; d < WAVE_DOMAIN_COUNT; d++) {
		if (strcmp(dom, wave_domain_name(d)) != 0)
			continue;
		key = live_key(id, d);
		return bsearch(&key, live, n, sizeof(key), by_key) != NULL;
	}
	return false;
}

static int older(const void *x, const void *y)
{
	const struct trace_file *a = x, *b = y;

	if (a->mtime.tv_sec != b->mtime.tv_sec)
		return a->mtime.tv_sec < b->mtime.tv_sec ? -1 : 1;
	if (a->mtime.tv_nsec != b->mtime.tv_nsec)
		return a->mtime.tv_nsec < b->mtime.tv_nsec ? -1 : 1;
	return strcmp(a->name, b->name);
}

/* Makes room for one more trace: the directory keeps record.max_files,
 * the oldest going first; the ones this agent writes stay. A host that
 * comes and goes for ever would otherwise fill the disk, a file each. */
static void prune(struct wave_agent *a)
{
	const char *dir = a->cfg->record.path;
	size_t n = 0, cap = 0, n_live, keep = a->cfg->record_max_files - 1;
	struct trace_file *f = NULL;
	uint64_t *live;
	struct dirent *e;
	struct stat st;
	DIR *d = opendir(dir);

	if (!d)
		return; /* the new trace's open says why */
	/* Without the list, a trace being written could go: prune nothing. */
	if (!(live = live_keys(a, &n_live))) {
		closedir(d);
		return;
	}
	while ((e = readdir(d))) {
		if (!trace_name(e->d_name) || being_written(e->d_name, live, n_live) ||
		    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if (n == cap) {
			struct trace_file *g = realloc(f, (cap ? cap * 2 : 64) * sizeof(*f));

			if (!g)
				break;
			f = g;
			cap = cap ? cap * 2 : 64;
		}
		snprintf(f[n].name, sizeof(f[n].name), "%s", e->d_name);
		f[n++].mtime = st.st_mtim;
	}
	if (n > keep) {
		qsort(f, n, sizeof(*f), older);
		for (size_t i = 0; i < n - keep; i++)
			if (unlinkat(dirfd(d), f[i].name, 0) == 0)
				wave_info("agent: record.max_files: removed %s/%s", dir, f[i].name);
	}
	closedir(d);
	free(live);
	free(f);
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
	prune(h->a);
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
