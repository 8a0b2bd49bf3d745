/* SPDX-License-Identifier: MIT */
/*
 * The agent's configuration file: JSON parsed by jansson, then validated
 * against the schema of docs/config.md into struct wave_config.
 *
 * Validation walks the parsed tree while keeping the path to the current
 * value (domains.custom.tick_us, cpus[2]); an error formats that path and
 * asks config_pos.c where the value is in the text, since jansson keeps no
 * positions once parsing succeeded.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <wave/plugin.h>

#include "core.h"
#include "config_impl.h"

/* Deepest path the schema has: domains.<domain>.<key> plus an index. */
#define PATH_MAX_DEPTH 8
#define MAX_LISTEN 16
#define MAX_PLUGIN_PATH 64
#define MAX_CPU 1023
#define MAX_TOKEN 256
#define MAX_TICK_US 60000000u


struct parser {
	const char *text;
	size_t len;
	const char *source;
	struct wave_json_seg path[PATH_MAX_DEPTH];
	size_t depth;
	struct wave_error *err;
	struct wave_config *cfg;
};

static void push_key(struct parser *ps, const char *key)
{
	/* The schema is shallower than PATH_MAX_DEPTH; deeper paths are only
	 * ever plugin params, which are not validated here. */
	ps->path[ps->depth++] = (struct wave_json_seg){ .key = key };
}

static void push_index(struct parser *ps, size_t index)
{
	ps->path[ps->depth++] = (struct wave_json_seg){ .key = NULL, .index = index };
}

static void pop(struct parser *ps)
{
	ps->depth--;
}

static void format_path(const struct parser *ps, char *buf, size_t size)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < ps->depth && used < size; i++) {
		const struct wave_json_seg *s = &ps->path[i];
		int n = s->key ? snprintf(buf + used, size - used, "%s%s", i ? "." : "", s->key)
			       : snprintf(buf + used, size - used, "[%zu]", s->index);
		used += n > 0 ? (size_t)n : 0;
	}
}

/* Reports a schema error at the current path: at its key (unknown keys) or
 * at its value (everything else). */
static int fail(struct parser *ps, int at_key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(struct parser *ps, int at_key, const char *fmt, ...)
{
	char path[160], msg[WAVE_ERROR_TEXT_LENGTH];
	int line, column;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	format_path(ps, path, sizeof(path));
	wave_json_locate(ps->text, ps->len, ps->path, ps->depth, at_key, &line, &column);
	return wave_error_set(ps->err, -WAVE_ECONFIG, ps->source, line, column, "%s%s%s",
			      path, path[0] ? ": " : "", msg);
}

static int oom(struct parser *ps)
{
	return wave_error_set(ps->err, -ENOMEM, ps->source, 0, 0, "out of memory");
}

/* Describes a value for "expected X, got Y". */
static const char *describe(const json_t *v, char *buf, size_t size)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		snprintf(buf, size, "\"%.40s%s\"", json_string_value(v),
			 json_string_length(v) > 40 ? "..." : "");
		return buf;
	case JSON_INTEGER:
		snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return buf;
	case JSON_REAL:
		snprintf(buf, size, "%g", json_real_value(v));
		return buf;
	case JSON_TRUE:
		return "true";
	case JSON_FALSE:
		return "false";
	default:
		return "null";
	}
}

static int fail_expected(struct parser *ps, const json_t *v, const char *what)
{
	char buf[64];

	return fail(ps, 0, "expected %s, got %s", what, describe(v, buf, sizeof(buf)));
}

/* Refuses the first member of @obj (in file order) not in @known. */
static int check_keys(struct parser *ps, json_t *obj, const char *const *known, size_t n)
{
	const char *key;
	json_t *v;

	json_object_foreach (obj, key, v) {
		char list[256] = "";
		size_t i, used = 0;

		for (i = 0; i < n && strcmp(key, known[i]) != 0; i++)
			;
		if (i < n)
			continue;
		for (i = 0; i < n; i++)
			used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s",
						 i ? ", " : "", known[i]);
		push_key(ps, key);
		return fail(ps, 1, "unknown key (expected one of: %s)", list);
	}
	return 0;
}

static int check_object(struct parser *ps, json_t *v)
{
	return json_is_object(v) ? 0 : fail_expected(ps, v, "an object");
}

/* An integer in [min, max] at the current path. */
static int want_uint(struct parser *ps, json_t *v, uint64_t min, uint64_t max, uint64_t *dst)
{
	char what[96];
	json_int_t i;

	snprintf(what, sizeof(what), "an integer between %" PRIu64 " and %" PRIu64, min, max);
	if (!json_is_integer(v))
		return fail_expected(ps, v, what);
	i = json_integer_value(v);
	if (i < 0 || (uint64_t)i < min || (uint64_t)i > max)
		return fail_expected(ps, v, what);
	*dst = (uint64_t)i;
	return 0;
}

/* Optional member @key of @obj, an integer in [min, max]; absent keeps *dst. */
static int get_uint(struct parser *ps, json_t *obj, const char *key, uint64_t min, uint64_t max,
		    uint64_t *dst)
{
	json_t *v = json_object_get(obj, key);
	int ret;

	if (!v)
		return 0;
	push_key(ps, key);
	ret = want_uint(ps, v, min, max, dst);
	pop(ps);
	return ret;
}

static int get_u32(struct parser *ps, json_t *obj, const char *key, uint64_t min, uint64_t max,
		   uint32_t *dst)
{
	uint64_t v = *dst;
	int ret = get_uint(ps, obj, key, min, max, &v);

	*dst = (uint32_t)v;
	return ret;
}

/* The message below spells the limits out. */
_Static_assert(WAVE_CHAN_MIN_SLOTS == 2 && WAVE_CHAN_MAX_SLOTS == 65536, "update the slots message");

static int get_slots(struct parser *ps, json_t *obj, const char *key, uint32_t *dst)
{
	json_t *v = json_object_get(obj, key);
	uint64_t n = 0;
	int ret = 0;

	if (!v)
		return 0;
	push_key(ps, key);
	if (!json_is_integer(v) || json_integer_value(v) < WAVE_CHAN_MIN_SLOTS ||
	    json_integer_value(v) > WAVE_CHAN_MAX_SLOTS ||
	    (json_integer_value(v) & (json_integer_value(v) - 1)) != 0)
		ret = fail_expected(ps, v, "a power of two between 2 and 65536");
	else
		n = (uint64_t)json_integer_value(v);
	pop(ps);
	if (ret == 0)
		*dst = (uint32_t)n;
	return ret;
}

/* Optional member @key of @obj that must be an array of 1..max entries. */
static int get_array(struct parser *ps, json_t *obj, const char *key, size_t max, json_t **out)
{
	json_t *v = json_object_get(obj, key);
	int ret = 0;

	*out = NULL;
	if (!v)
		return 0;
	push_key(ps, key);
	if (!json_is_array(v))
		ret = fail_expected(ps, v, "an array");
	else if (json_array_size(v) == 0)
		ret = fail(ps, 0, "expected at least one entry, got an empty array");
	else if (json_array_size(v) > max)
		ret = fail(ps, 0, "expected at most %zu entries, got %zu", max,
			   json_array_size(v));
	pop(ps);
	*out = ret ? NULL : v;
	return ret;
}

static int want_string(struct parser *ps, json_t *v, const char *what, size_t max)
{
	if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max)
		return fail_expected(ps, v, what);
	return 0;
}

/* A copy of the string @v in *@dst. */
static int dup_string(struct parser *ps, json_t *v, char **dst)
{
	*dst = wave_cfg_strdup(json_string_value(v));
	return *dst ? 0 : oom(ps);
}

/* A Unix socket path fits in sockaddr_un.sun_path with its NUL. */
#define MAX_SOCKET_PATH 107

/* "scheme://rest" with an RFC 3986 scheme and something after it. */
static int uri_ok(const char *s)
{
	const char *sep = strstr(s, "://");

	if (!sep || sep == s || sep[3] == '\0' || !(*s >= 'a' && *s <= 'z'))
		return 0;
	for (const char *p = s; p < sep; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || strchr("+.-", *p)))
			return 0;
	return 1;
}

/* shm:// listens on a Unix socket: a path the agent could not bind would
 * only fail at start. */
static int check_shm_path(struct parser *ps, const char *uri)
{
	const char *path = uri + strlen("shm://");

	if (strncmp(uri, "shm://", strlen("shm://")) != 0)
		return 0;
	if (path[0] != '/')
		return fail(ps, 0, "the socket path must be absolute (shm:///dir/name.sock)");
	if (strlen(path) > MAX_SOCKET_PATH)
		return fail(ps, 0, "the socket path is %zu bytes, a Unix socket address holds at "
			    "most %d", strlen(path), MAX_SOCKET_PATH);
	return 0;
}

static int parse_listen_one(struct parser *ps, json_t *arr, size_t i)
{
	json_t *v = json_array_get(arr, i);
	int ret;

	if (!json_is_string(v) || !uri_ok(json_string_value(v)))
		return fail_expected(ps, v, "a URI such as \"shm:///run/wave/agent.sock\"");
	if ((ret = check_shm_path(ps, json_string_value(v))) < 0)
		return ret;
	for (size_t j = 0; j < i; j++)
		if (strcmp(ps->cfg->listen[j], json_string_value(v)) == 0)
			return fail(ps, 0, "\"%s\" is already listed as listen[%zu]",
				    json_string_value(v), j);
	if (dup_string(ps, v, &ps->cfg->listen[i]) < 0)
		return -ENOMEM;
	ps->cfg->n_listen = i + 1;
	return 0;
}

static int parse_listen(struct parser *ps, json_t *root)
{
	json_t *arr;
	int ret = get_array(ps, root, "listen", MAX_LISTEN, &arr);

	if (ret < 0 || !arr)
		return ret;
	ps->cfg->listen = wave_cfg_calloc(json_array_size(arr), sizeof(char *));
	if (!ps->cfg->listen)
		return oom(ps);
	push_key(ps, "listen");
	for (size_t i = 0; ret == 0 && i < json_array_size(arr); i++) {
		push_index(ps, i);
		ret = parse_listen_one(ps, arr, i);
		pop(ps);
	}
	pop(ps);
	return ret;
}

static int parse_cpus(struct parser *ps, json_t *root)
{
	unsigned char seen[(MAX_CPU + 1) / 8] = { 0 };
	json_t *arr;
	int ret = get_array(ps, root, "cpus", MAX_CPU + 1, &arr);

	if (ret < 0 || !arr)
		return ret;
	ps->cfg->cpus = wave_cfg_calloc(json_array_size(arr), sizeof(int));
	if (!ps->cfg->cpus)
		return oom(ps);
	push_key(ps, "cpus");
	for (size_t i = 0; ret == 0 && i < json_array_size(arr); i++) {
		uint64_t cpu = 0;

		push_index(ps, i);
		ret = want_uint(ps, json_array_get(arr, i), 0, MAX_CPU, &cpu);
		if (ret == 0 && (seen[cpu / 8] & (1u << (cpu % 8))))
			ret = fail(ps, 0, "CPU %" PRIu64 " is listed twice", cpu);
		pop(ps);
		seen[cpu / 8] |= (unsigned char)(1u << (cpu % 8));
		ps->cfg->cpus[i] = (int)cpu;
		ps->cfg->n_cpus = i + 1;
	}
	pop(ps);
	return ret;
}

static int parse_heartbeat(struct parser *ps, json_t *root)
{
	static const char *const keys[] = { "period_ms", "timeout_ms" };
	json_t *hb = json_object_get(root, "heartbeat");
	struct wave_config *cfg = ps->cfg;
	int ret;

	if (!hb)
		return 0;
	push_key(ps, "heartbeat");
	if ((ret = check_object(ps, hb)) == 0 && (ret = check_keys(ps, hb, keys, 2)) == 0 &&
	    (ret = get_u32(ps, hb, "period_ms", 1, 60000, &cfg->heartbeat_period_ms)) == 0 &&
	    (ret = get_u32(ps, hb, "timeout_ms", 1, 600000, &cfg->heartbeat_timeout_ms)) == 0 &&
	    cfg->heartbeat_timeout_ms <= cfg->heartbeat_period_ms) {
		/* Point at whichever of the two the file set (the timeout if
		 * both): that is the value the reader has to change. */
		int has_timeout = json_object_get(hb, "timeout_ms") != NULL;
		push_key(ps, has_timeout ? "timeout_ms" : "period_ms");
		ret = fail(ps, 0, "the timeout (%" PRIu32 " ms) must be longer than the period (%" PRIu32 " ms)",
			   cfg->heartbeat_timeout_ms, cfg->heartbeat_period_ms);
		pop(ps);
	}
	pop(ps);
	return ret;
}

/* A ring larger than max_slots would make the agent refuse every host that
 * asks for it; with the ring left at its default, that is every default
 * host, so the default counts too. Blame the key the file set. */
static int check_slots_limit(struct parser *ps, json_t *ch, const char *key, uint32_t slots)
{
	int ret = 0;

	if (slots <= ps->cfg->max_slots)
		return 0;
	if (json_object_get(ch, key)) {
		push_key(ps, key);
		ret = fail(ps, 0, "%" PRIu32 " slots exceed channel.max_slots (%" PRIu32 ")", slots,
			   ps->cfg->max_slots);
	} else {
		push_key(ps, "max_slots");
		ret = fail(ps, 0, "%" PRIu32 " is below channel.%s (%" PRIu32 " by default): every "
			   "host asking for the default rings would be refused",
			   ps->cfg->max_slots, key, slots);
	}
	pop(ps);
	return ret;
}

static int parse_channel_fields(struct parser *ps, json_t *ch)
{
	static const char *const keys[] = { "host_to_agent_slots", "agent_to_host_slots",
					    "max_slots", "delay_ns", "spin_ns" };
	struct wave_config *cfg = ps->cfg;
	int ret;

	if ((ret = check_object(ps, ch)) < 0 || (ret = check_keys(ps, ch, keys, 5)) < 0 ||
	    (ret = get_slots(ps, ch, "host_to_agent_slots", &cfg->host_to_agent_slots)) < 0 ||
	    (ret = get_slots(ps, ch, "agent_to_host_slots", &cfg->agent_to_host_slots)) < 0 ||
	    (ret = get_slots(ps, ch, "max_slots", &cfg->max_slots)) < 0 ||
	    (ret = get_uint(ps, ch, "delay_ns", 0, 1000000000, &cfg->delay_ns)) < 0 ||
	    (ret = get_uint(ps, ch, "spin_ns", 0, 1000000000, &cfg->spin_ns)) < 0)
		return ret;
	if ((ret = check_slots_limit(ps, ch, "host_to_agent_slots", cfg->host_to_agent_slots)) < 0)
		return ret;
	return check_slots_limit(ps, ch, "agent_to_host_slots", cfg->agent_to_host_slots);
}

static int parse_channel(struct parser *ps, json_t *root)
{
	json_t *ch = json_object_get(root, "channel");
	int ret;

	if (!ch)
		return 0;
	push_key(ps, "channel");
	ret = parse_channel_fields(ps, ch);
	pop(ps);
	return ret;
}

static int parse_uids(struct parser *ps, json_t *auth)
{
	json_t *arr;
	int ret = get_array(ps, auth, "allow_uids", 4096, &arr);

	if (ret < 0 || !arr)
		return ret;
	ps->cfg->allow_uids = wave_cfg_calloc(json_array_size(arr), sizeof(uid_t));
	if (!ps->cfg->allow_uids)
		return oom(ps);
	push_key(ps, "allow_uids");
	for (size_t i = 0; ret == 0 && i < json_array_size(arr); i++) {
		uint64_t uid = 0;

		push_index(ps, i);
		/* (uid_t)-1 means "no uid" to the kernel: never a valid peer. */
		ret = want_uint(ps, json_array_get(arr, i), 0, UINT32_MAX - 1, &uid);
		pop(ps);
		ps->cfg->allow_uids[i] = (uid_t)uid;
		ps->cfg->n_allow_uids = i + 1;
	}
	pop(ps);
	return ret;
}

/* A fabric:// listener checks the token in its channel's hello too
 * (wave_config_chan_opts()), where it may be at most WAVE_CHAN_TOKEN_MAX
 * bytes; the session's AUTH messages carry longer ones. */
static int check_fabric_token(struct parser *ps, size_t len)
{
	_Static_assert(WAVE_CHAN_TOKEN_MAX == 64, "update the token message");
	if (len <= WAVE_CHAN_TOKEN_MAX)
		return 0;
	for (size_t i = 0; i < ps->cfg->n_listen; i++)
		if (strncmp(ps->cfg->listen[i], "fabric://", strlen("fabric://")) == 0)
			return fail(ps, 0, "%zu bytes, but listen[%zu] is fabric://, whose token is "
				    "at most 64 bytes", len, i);
	return 0;
}

static int parse_token(struct parser *ps, json_t *auth)
{
	json_t *v = json_object_get(auth, "token");
	int ret;

	if (!v)
		return 0;
	push_key(ps, "token");
	ret = want_string(ps, v, "a non-empty string of at most 256 bytes", MAX_TOKEN);
	if (ret == 0)
		ret = check_fabric_token(ps, json_string_length(v));
	pop(ps);
	return ret ? ret : dup_string(ps, v, &ps->cfg->token);
}

static int parse_auth(struct parser *ps, json_t *root)
{
	static const char *const keys[] = { "allow_uids", "token" };
	json_t *auth = json_object_get(root, "auth");
	int ret;

	if (!auth)
		return 0;
	push_key(ps, "auth");
	if ((ret = check_object(ps, auth)) == 0 && (ret = check_keys(ps, auth, keys, 2)) == 0 &&
	    (ret = parse_uids(ps, auth)) == 0)
		ret = parse_token(ps, auth);
	pop(ps);
	return ret;
}

/* A relative plugin directory is taken relative to the configuration
 * file's directory, so a configuration and its plugins can move together. */
static char *resolve_dir(const char *source, const char *dir)
{
	const char *slash = source ? strrchr(source, '/') : NULL;
	size_t base, len;
	char *out;

	if (dir[0] == '/' || !slash)
		return wave_cfg_strdup(dir);
	base = (size_t)(slash - source) + 1;
	len = base + strlen(dir) + 1;
	out = wave_cfg_malloc(len);
	if (out) {
		memcpy(out, source, base);
		memcpy(out + base, dir, len - base);
	}
	return out;
}

static int parse_plugin_path(struct parser *ps, json_t *root)
{
	json_t *arr;
	int ret = get_array(ps, root, "plugin_path", MAX_PLUGIN_PATH, &arr);

	if (ret < 0 || !arr)
		return ret;
	ps->cfg->plugin_path = wave_cfg_calloc(json_array_size(arr), sizeof(char *));
	if (!ps->cfg->plugin_path)
		return oom(ps);
	push_key(ps, "plugin_path");
	for (size_t i = 0; ret == 0 && i < json_array_size(arr); i++) {
		json_t *v = json_array_get(arr, i);

		push_index(ps, i);
		ret = want_string(ps, v, "a directory name", PATH_MAX - 1);
		pop(ps);
		if (ret == 0 &&
		    !(ps->cfg->plugin_path[i] = resolve_dir(ps->source, json_string_value(v))))
			ret = oom(ps);
		ps->cfg->n_plugin_path = i + (ret == 0);
	}
	pop(ps);
	return ret;
}

/* A plugin name ([A-Za-z0-9_]{1,63}) or a path with a '/'. */
static int plugin_ref_ok(const char *s)
{
	size_t n = strlen(s);

	if (strchr(s, '/'))
		return n < PATH_MAX;
	if (n == 0 || n > WAVE_PLUGIN_NAME_MAX)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_'))
			return 0;
	return 1;
}

static int parse_plugin_ref(struct parser *ps, json_t *dom, struct wave_config_domain *d)
{
	json_t *v = json_object_get(dom, "plugin");
	int ret = 0;

	if (!v)
		return fail(ps, 0, "missing required key \"plugin\"");
	push_key(ps, "plugin");
	if (!json_is_string(v) || !plugin_ref_ok(json_string_value(v)))
		ret = fail_expected(ps, v, "a plugin name (letters, digits, '_'; at most 63) or a path containing '/'");
	pop(ps);
	return ret ? ret : dup_string(ps, v, &d->plugin);
}

static int parse_params(struct parser *ps, json_t *dom, const char *name,
			struct wave_config_domain *d)
{
	json_t *v = json_object_get(dom, "params");
	char where[64];
	int ret = 0;

	if (v) {
		push_key(ps, "params");
		ret = check_object(ps, v);
		pop(ps);
		json_incref(v);
	} else if (!(v = json_object())) {
		return oom(ps);
	}
	snprintf(where, sizeof(where), "domains.%s.params", name);
	if (ret == 0 && !(d->params = wave_params_new(v, where)))
		ret = oom(ps);
	json_decref(v);
	return ret;
}

static int parse_domain_fields(struct parser *ps, json_t *dom, const char *name,
			       struct wave_config_domain *d)
{
	static const char *const keys[] = { "plugin", "params", "tick_us" };
	int ret;

	if ((ret = check_object(ps, dom)) < 0 || (ret = check_keys(ps, dom, keys, 3)) < 0 ||
	    (ret = parse_plugin_ref(ps, dom, d)) < 0)
		return ret;
	/* A sched plugin is ticked by its hosts (one TICK event per busy CPU,
	 * at the host's wave_sched_opts.tick_us), never by the agent: a
	 * period here would be silently ignored. */
	if (strcmp(name, "sched") == 0 && json_object_get(dom, "tick_us")) {
		push_key(ps, "tick_us");
		ret = fail(ps, 1, "not used by the sched domain: its ticks are the hosts' TICK "
			   "events (wave_sched_opts.tick_us); remove this key");
		pop(ps);
		return ret;
	}
	if ((ret = get_uint(ps, dom, "tick_us", 1, MAX_TICK_US, &d->tick_us)) < 0)
		return ret;
	d->enabled = 1;
	return parse_params(ps, dom, name, d);
}

static int parse_domains(struct parser *ps, json_t *root)
{
	json_t *doms = json_object_get(root, "domains");
	const char *domain_names[WAVE_DOMAIN_COUNT];
	int ret;

	for (unsigned i = 0; i < WAVE_DOMAIN_COUNT; i++)
		domain_names[i] = wave_domain_name(i);
	if (!doms)
		return 0;
	push_key(ps, "domains");
	ret = check_object(ps, doms);
	if (ret == 0)
		ret = check_keys(ps, doms, domain_names, WAVE_DOMAIN_COUNT);
	for (int i = 0; ret == 0 && i < WAVE_DOMAIN_COUNT; i++) {
		json_t *dom = json_object_get(doms, domain_names[i]);

		if (!dom)
			continue;
		push_key(ps, domain_names[i]);
		ret = parse_domain_fields(ps, dom, domain_names[i], &ps->cfg->domains[i]);
		pop(ps);
	}
	pop(ps);
	return ret;
}

static int parse_version(struct parser *ps, json_t *root)
{
	json_t *v = json_object_get(root, "version");
	int ret = 0;

	if (v && !(json_is_integer(v) && json_integer_value(v) == 1)) {
		push_key(ps, "version");
		ret = fail_expected(ps, v, "1 (the only schema version)");
		pop(ps);
	}
	return ret;
}

/* Absolute, because a daemon's working directory is nobody's business. */
static int parse_stats_socket(struct parser *ps, json_t *root)
{
	json_t *v = json_object_get(root, "stats_socket");
	int ret;

	if (!v)
		return 0;
	push_key(ps, "stats_socket");
	ret = want_string(ps, v, "an absolute path of at most 107 bytes", MAX_SOCKET_PATH);
	if (ret == 0 && json_string_value(v)[0] != '/')
		ret = fail_expected(ps, v, "an absolute path of at most 107 bytes");
	pop(ps);
	return ret ? ret : dup_string(ps, v, &ps->cfg->stats_socket);
}

/* "record": decision traces (docs/trace.md). The path is a directory, made
 * absolute for the reason above; one file per host and domain goes in it. */
static int parse_record_fields(struct parser *ps, json_t *rec)
{
	static const char *const keys[] = { "path", "max_bytes", "rotate", "enabled" };
	struct wave_config_record *r = &ps->cfg->record;
	json_t *v;
	int ret;

	if ((ret = check_object(ps, rec)) < 0 ||
	    (ret = check_keys(ps, rec, keys, WAVE_ARRAY_SIZE(keys))) < 0 ||
	    (ret = get_uint(ps, rec, "max_bytes", 1u << 20, 1ull << 40, &r->max_bytes)) < 0 ||
	    (ret = get_u32(ps, rec, "rotate", 0, 1000, &r->rotate)) < 0)
		return ret;
	if ((v = json_object_get(rec, "enabled"))) {
		push_key(ps, "enabled");
		if (!json_is_boolean(v))
			return fail_expected(ps, v, "true or false");
		pop(ps);
		r->enabled = json_is_true(v);
	}
	push_key(ps, "path");
	if (!(v = json_object_get(rec, "path")))
		return fail(ps, 1, "required: the directory traces are written to");
	if ((ret = want_string(ps, v, "an absolute path of at most 4000 bytes", 4000)) < 0)
		return ret;
	if (json_string_value(v)[0] != '/')
		return fail_expected(ps, v, "an absolute path of at most 4000 bytes");
	pop(ps);
	return dup_string(ps, v, &r->path);
}

static int parse_record(struct parser *ps, json_t *root)
{
	json_t *v = json_object_get(root, "record");
	int ret;

	if (!v)
		return 0;
	push_key(ps, "record");
	ps->cfg->record.max_bytes = 64u << 20;
	ps->cfg->record.rotate = 2;
	ps->cfg->record.enabled = 1;
	ret = parse_record_fields(ps, v);
	pop(ps);
	return ret;
}

static int parse_root(struct parser *ps, json_t *root)
{
	static const char *const keys[] = { "version",	   "listen",  "cpus",	"heartbeat",
					    "channel",	   "auth",    "plugin_path", "domains",
					    "stats_socket", "record" };
	int ret;

	if (!json_is_object(root))
		return fail_expected(ps, root, "an object at the top level");
	if ((ret = check_keys(ps, root, keys, WAVE_ARRAY_SIZE(keys))) < 0 ||
	    (ret = parse_version(ps, root)) < 0 || (ret = parse_listen(ps, root)) < 0 ||
	    (ret = parse_cpus(ps, root)) < 0 || (ret = parse_heartbeat(ps, root)) < 0 ||
	    (ret = parse_channel(ps, root)) < 0 || (ret = parse_auth(ps, root)) < 0 ||
	    (ret = parse_plugin_path(ps, root)) < 0 || (ret = parse_domains(ps, root)) < 0 ||
	    (ret = parse_stats_socket(ps, root)) < 0)
		return ret;
	return parse_record(ps, root);
}

static struct wave_config *config_new(const char *source)
{
	struct wave_config *cfg = wave_cfg_calloc(1, sizeof(*cfg));

	if (!cfg)
		return NULL;
	cfg->size = sizeof(*cfg);
	cfg->heartbeat_period_ms = 100;
	cfg->heartbeat_timeout_ms = 1000;
	cfg->host_to_agent_slots = 1024;
	cfg->agent_to_host_slots = 1024;
	cfg->max_slots = WAVE_CHAN_MAX_SLOTS;
	cfg->spin_ns = 20000;
	if (!(cfg->source = wave_cfg_strdup(source))) {
		wave_cfg_free(cfg);
		return NULL;
	}
	return cfg;
}

/* Parses @text into *@root, mapping jansson's error into @err. */
static int load_json(const char *text, size_t len, const char *source, json_t **root,
		     struct wave_error *err)
{
	json_error_t jerr;

	*root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (*root)
		return 0;
	/* jansson fails without any text when it cannot allocate its lexer. */
	if (json_error_code(&jerr) == json_error_out_of_memory || jerr.text[0] == '\0')
		return wave_error_set(err, -ENOMEM, source, 0, 0, "out of memory");
	/* jansson's column is the last character read: 0 when the line (or
	 * file) is empty; diagnostics count from 1. */
	if (jerr.line > 0 && jerr.column < 1)
		jerr.column = 1;
	/* jansson names its own flag here, which means nothing to a reader. */
	if (json_error_code(&jerr) == json_error_null_character)
		snprintf(jerr.text, sizeof(jerr.text) - 1, "strings must not contain \\u0000");
	return wave_error_set(err, -WAVE_ECONFIG, source, jerr.line > 0 ? jerr.line : 0,
			      jerr.line > 0 ? jerr.column : 0, "%s", jerr.text);
}

/* JSON text has no raw NUL byte, but jansson 2.14 takes one right after a
 * number for the end of the number and ignores the rest of the file. */
static int refuse_nul(const char *text, size_t len, const char *source, struct wave_error *err)
{
	const char *nul = memchr(text, '\0', len);
	int line, column;

	if (!nul)
		return 0;
	wave_text_locate(text, (size_t)(nul - text), &line, &column);
	return wave_error_set(err, -WAVE_ECONFIG, source, line, column,
			      "a NUL byte is not allowed in a configuration");
}

WAVE_API int wave_config_parse(const char *text, size_t len, const char *source,
			       struct wave_config **out, struct wave_error *err)
{
	struct parser ps = { .text = text, .len = len, .err = err };
	json_t *root;
	int ret;

	wave_error_clear(err);
	ps.source = source ? source : "<string>";
	if (!text || !out)
		return wave_error_set(err, -EINVAL, ps.source, 0, 0, "invalid argument");
	if ((ret = refuse_nul(text, len, ps.source, err)) < 0 ||
	    (ret = load_json(text, len, ps.source, &root, err)) < 0)
		return ret;
	ps.cfg = config_new(ps.source);
	ret = ps.cfg ? parse_root(&ps, root) : oom(&ps);
	json_decref(root);
	if (ret < 0) {
		wave_config_free(ps.cfg);
		return ret;
	}
	wave_info("configuration %s loaded", ps.source);
	*out = ps.cfg;
	return 0;
}

static void free_strings(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		wave_cfg_free(v[i]);
	wave_cfg_free(v);
}

WAVE_API void wave_config_free(struct wave_config *cfg)
{
	if (!cfg)
		return;
	wave_cfg_free(cfg->source);
	free_strings(cfg->listen, cfg->n_listen);
	wave_cfg_free(cfg->cpus);
	wave_cfg_free(cfg->allow_uids);
	wave_cfg_free(cfg->token);
	free_strings(cfg->plugin_path, cfg->n_plugin_path);
	wave_cfg_free(cfg->stats_socket);
	wave_cfg_free(cfg->record.path);
	for (int i = 0; i < WAVE_DOMAIN_COUNT; i++) {
		wave_cfg_free(cfg->domains[i].plugin);
		wave_params_free(cfg->domains[i].params);
	}
	wave_cfg_free(cfg);
}

WAVE_API int wave_config_chan_opts(const struct wave_config *cfg, struct wave_chan_opts *opts)
{
	if (!cfg || !opts)
		return -EINVAL;
	wave_chan_opts_init(opts);
	opts->host_to_agent_slots = cfg->host_to_agent_slots;
	opts->agent_to_host_slots = cfg->agent_to_host_slots;
	opts->max_slots = cfg->max_slots;
	opts->delay_ns = cfg->delay_ns;
	opts->spin_ns = cfg->spin_ns;
	opts->allow_uids = cfg->allow_uids;
	opts->n_allow_uids = cfg->n_allow_uids;
	/* fabric:// checks it in its hello (the only check it has); the
	 * parser kept it within WAVE_CHAN_TOKEN_MAX whenever a fabric://
	 * listener is configured. A longer one is for the session only. */
	if (cfg->token && strlen(cfg->token) <= WAVE_CHAN_TOKEN_MAX)
		opts->token = cfg->token;
	return 0;
}
