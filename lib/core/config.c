/* SPDX-License-Identifier: MIT */
/*
 * The agent's configuration file: JSON parsed by jansson, then validated
 * against the schema of docs/config.md into struct wave_config. Each
 * object's keys, each number's range and default come from the key table
 * (config_keys.c), which wave.conf(5) is generated from; what the table
 * cannot say (URIs, paths, cross-checks between keys) is checked here.
 *
 * Validation walks the parsed tree while keeping the path to the current
 * value (domains.custom.tick_us, cpus[2]); an error formats that path and
 * asks config_pos.c where the value is in the text, since jansson keeps no
 * positions once parsing succeeded.
 */
#include <arpa/inet.h>
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
/* The largest CPU number the table allows, for the bitmap of those seen. */
#define MAX_CPU 1023


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
		/* 1.0 must not read as the integer 1 that was expected. */
		snprintf(buf, size, "%g", json_real_value(v));
		if (!strpbrk(buf, ".eni"))
			snprintf(buf + strlen(buf), size - strlen(buf), ".0");
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
static int check_names(struct parser *ps, json_t *obj, const char *const *known, size_t n)
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

/* Refuses the first member of @obj not in @section of the key table. */
static int check_keys(struct parser *ps, json_t *obj, const char *section)
{
	const char *known[16];
	size_t n = 0, n_keys;
	const struct wave_cfg_key *k = wave_cfg_keys(&n_keys);

	for (size_t i = 0; i < n_keys && n < WAVE_ARRAY_SIZE(known); i++)
		if (strcmp(k[i].section, section) == 0)
			known[n++] = k[i].name;
	return check_names(ps, obj, known, n);
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

static int get_slots(struct parser *ps, json_t *obj, const struct wave_cfg_key *k,
		     uint64_t *dst)
{
	json_t *v = json_object_get(obj, k->name);
	json_int_t i;
	int ret = 0;

	if (!v)
		return 0;
	push_key(ps, k->name);
	i = json_is_integer(v) ? json_integer_value(v) : 0;
	if (!json_is_integer(v) || i < (json_int_t)k->min || i > (json_int_t)k->max ||
	    (i & (i - 1)) != 0) {
		char what[96];

		snprintf(what, sizeof(what), "a power of two between %" PRIu64 " and %" PRIu64,
			 k->min, k->max);
		ret = fail_expected(ps, v, what);
	}
	pop(ps);
	if (ret == 0)
		*dst = (uint64_t)i;
	return ret;
}

/* The number in field @k of @base (a uint32_t or a uint64_t). */
static uint64_t field_get(const void *base, const struct wave_cfg_key *k)
{
	uint32_t v32;
	uint64_t v;

	if (k->size == sizeof(v32)) {
		memcpy(&v32, (const char *)base + k->offset, sizeof(v32));
		return v32;
	}
	memcpy(&v, (const char *)base + k->offset, sizeof(v));
	return v;
}

static void field_set(void *base, const struct wave_cfg_key *k, uint64_t v)
{
	uint32_t v32 = (uint32_t)v;

	if (k->size == sizeof(v32))
		memcpy((char *)base + k->offset, &v32, sizeof(v32));
	else
		memcpy((char *)base + k->offset, &v, sizeof(v));
}

/* Every number of @section the table places in a field of @base: from
 * @obj when it has it (checked against the table's range), else the field
 * keeps its default. */
static int get_numbers(struct parser *ps, json_t *obj, const char *section, void *base)
{
	size_t n;
	const struct wave_cfg_key *k = wave_cfg_keys(&n);
	int ret = 0;

	for (size_t i = 0; ret == 0 && i < n; i++) {
		uint64_t v;

		if (k[i].size == 0 || strcmp(k[i].section, section) != 0)
			continue;
		v = field_get(base, &k[i]);
		ret = k[i].kind == CFG_SLOTS ? get_slots(ps, obj, &k[i], &v)
					     : get_uint(ps, obj, k[i].name, k[i].min, k[i].max, &v);
		field_set(base, &k[i], v);
	}
	return ret;
}

/* Optional member @section.@key of @obj: an array of as many entries as
 * the table allows. */
static int get_array(struct parser *ps, json_t *obj, const char *section, const char *key,
		     json_t **out)
{
	json_t *v = json_object_get(obj, key);
	size_t max = (size_t)wave_cfg_key(section, key)->max;
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

/* @path with "//", "/./" and "dir/.." taken out, into @out (as long as
 * @path at most): one socket, however it is spelled. */
static void path_lexical(const char *path, char *out)
{
	size_t n = 0;

	while (*path) {
		size_t len;

		while (*path == '/')
			path++;
		len = strcspn(path, "/");
		if (len == 1 && path[0] == '.') {
			/* nothing */
		} else if (len == 2 && path[0] == '.' && path[1] == '.') {
			while (n > 0 && out[--n] != '/')
				;
		} else if (len) {
			out[n++] = '/';
			memcpy(out + n, path, len);
			n += len;
		}
		path += len;
	}
	out[n] = '\0';
}

/* Whether two listen URIs name one address (shm://: one socket path). */
static bool same_address(const char *a, const char *b)
{
	char pa[MAX_SOCKET_PATH + 1], pb[MAX_SOCKET_PATH + 1];
	size_t k = strlen("shm://");

	if (strncmp(a, "shm://", k) != 0 || strncmp(b, "shm://", k) != 0)
		return strcmp(a, b) == 0;
	/* Both checked by check_shm_path(): absolute, and short enough. */
	path_lexical(a + k, pa);
	path_lexical(b + k, pb);
	return strcmp(pa, pb) == 0;
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
		if (same_address(ps->cfg->listen[j], json_string_value(v)))
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
	int ret = get_array(ps, root, "", "listen", &arr);

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
	const struct wave_cfg_key *k = wave_cfg_key("", "cpus");
	unsigned char seen[(MAX_CPU + 1) / 8] = { 0 };
	json_t *arr;
	int ret = get_array(ps, root, "", "cpus", &arr);

	if (ret < 0 || !arr)
		return ret;
	ps->cfg->cpus = wave_cfg_calloc(json_array_size(arr), sizeof(int));
	if (!ps->cfg->cpus)
		return oom(ps);
	push_key(ps, "cpus");
	for (size_t i = 0; ret == 0 && i < json_array_size(arr); i++) {
		uint64_t cpu = 0;

		push_index(ps, i);
		ret = want_uint(ps, json_array_get(arr, i), k->item_min, k->item_max, &cpu);
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
	json_t *hb = json_object_get(root, "heartbeat");
	struct wave_config *cfg = ps->cfg;
	int ret;

	if (!hb)
		return 0;
	push_key(ps, "heartbeat");
	if ((ret = check_object(ps, hb)) == 0 && (ret = check_keys(ps, hb, "heartbeat")) == 0 &&
	    (ret = get_numbers(ps, hb, "heartbeat", cfg)) == 0 &&
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
	struct wave_config *cfg = ps->cfg;
	int ret;

	if ((ret = check_object(ps, ch)) < 0 || (ret = check_keys(ps, ch, "channel")) < 0 ||
	    (ret = get_numbers(ps, ch, "channel", cfg)) < 0)
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
	const struct wave_cfg_key *k = wave_cfg_key("auth", "allow_uids");
	json_t *arr;
	int ret = get_array(ps, auth, "auth", "allow_uids", &arr);

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
		_Static_assert(sizeof(uid_t) == sizeof(uint32_t), "uids are 32-bit");
		ret = want_uint(ps, json_array_get(arr, i), k->item_min, k->item_max, &uid);
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
	const struct wave_cfg_key *k = wave_cfg_key("auth", "token");
	json_t *v = json_object_get(auth, "token");
	char what[64];
	int ret;

	if (!v)
		return 0;
	push_key(ps, "token");
	snprintf(what, sizeof(what), "a non-empty string of at most %" PRIu64 " bytes", k->max);
	ret = want_string(ps, v, what, k->max);
	if (ret == 0)
		ret = check_fabric_token(ps, json_string_length(v));
	pop(ps);
	return ret ? ret : dup_string(ps, v, &ps->cfg->token);
}

static int parse_auth(struct parser *ps, json_t *root)
{
	json_t *auth = json_object_get(root, "auth");
	int ret;

	if (!auth)
		return 0;
	push_key(ps, "auth");
	if ((ret = check_object(ps, auth)) == 0 && (ret = check_keys(ps, auth, "auth")) == 0 &&
	    (ret = parse_uids(ps, auth)) == 0)
		ret = parse_token(ps, auth);
	pop(ps);
	return ret;
}

/* A relative plugin directory, or plugin file, is taken relative to the
 * configuration file's directory, so a configuration and its plugins can
 * move together (and mean the same whatever the daemon's working
 * directory). */
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
	const struct wave_cfg_key *k = wave_cfg_key("", "plugin_path");
	json_t *arr;
	int ret = get_array(ps, root, "", "plugin_path", &arr);

	if (ret < 0 || !arr)
		return ret;
	ps->cfg->plugin_path = wave_cfg_calloc(json_array_size(arr), sizeof(char *));
	if (!ps->cfg->plugin_path)
		return oom(ps);
	push_key(ps, "plugin_path");
	for (size_t i = 0; ret == 0 && i < json_array_size(arr); i++) {
		json_t *v = json_array_get(arr, i);

		push_index(ps, i);
		ret = want_string(ps, v, "a directory name", k->item_max);
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
		return n <= wave_cfg_key("domains.<d>", "plugin")->max;
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
	if (ret)
		return ret;
	if (!strchr(json_string_value(v), '/'))
		return dup_string(ps, v, &d->plugin);
	if (!(d->plugin = resolve_dir(ps->source, json_string_value(v))))
		return oom(ps);
	return 0;
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
	int ret;

	if ((ret = check_object(ps, dom)) < 0 || (ret = check_keys(ps, dom, "domains.<d>")) < 0 ||
	    (ret = parse_plugin_ref(ps, dom, d)) < 0)
		return ret;
	/* sched and mem plugins are ticked by their hosts (TICK events: a
	 * sched host's per busy CPU at wave_sched_opts.tick_us, a mem host's
	 * at its own period), never by the agent: a period here would be
	 * silently ignored. */
	if ((strcmp(name, "sched") == 0 || strcmp(name, "mem") == 0) &&
	    json_object_get(dom, "tick_us")) {
		push_key(ps, "tick_us");
		ret = fail(ps, 1, "not used by the %s domain: its ticks are the hosts' TICK "
			   "events; remove this key", name);
		pop(ps);
		return ret;
	}
	if ((ret = get_numbers(ps, dom, "domains.<d>", d)) < 0)
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
		ret = check_names(ps, doms, domain_names, WAVE_DOMAIN_COUNT);
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

	if (v && !(json_is_integer(v) &&
		   json_integer_value(v) == (json_int_t)wave_cfg_key("", "version")->min)) {
		push_key(ps, "version");
		ret = fail_expected(ps, v, "1 (the only schema version)");
		pop(ps);
	}
	return ret;
}

/* Absolute, because a daemon's working directory is nobody's business. */
static int parse_stats_socket(struct parser *ps, json_t *root)
{
	const struct wave_cfg_key *k = wave_cfg_key("", "stats_socket");
	json_t *v = json_object_get(root, "stats_socket");
	char what[64];
	int ret;

	if (!v)
		return 0;
	push_key(ps, "stats_socket");
	snprintf(what, sizeof(what), "an absolute path of at most %" PRIu64 " bytes", k->max);
	ret = want_string(ps, v, what, k->max);
	if (ret == 0 && json_string_value(v)[0] != '/')
		ret = fail_expected(ps, v, what);
	pop(ps);
	return ret ? ret : dup_string(ps, v, &ps->cfg->stats_socket);
}

/* A numeric address: nothing is resolved, and a typo cannot make the
 * endpoint listen somewhere else. */
static int parse_metrics_address(struct parser *ps, json_t *m)
{
	const struct wave_cfg_key *k = wave_cfg_key("metrics", "address");
	json_t *v = json_object_get(m, "address");
	unsigned char addr[sizeof(struct in6_addr)];
	int ret = 0;

	if (!v) /* the table's default */
		return (ps->cfg->metrics_address = wave_cfg_strdup(k->def_text)) ? 0 : oom(ps);
	push_key(ps, "address");
	if (!json_is_string(v) || json_string_length(v) > k->max ||
	    (inet_pton(AF_INET, json_string_value(v), addr) != 1 &&
	     inet_pton(AF_INET6, json_string_value(v), addr) != 1))
		ret = fail_expected(ps, v, "a numeric IPv4 or IPv6 address");
	pop(ps);
	return ret ? ret : dup_string(ps, v, &ps->cfg->metrics_address);
}

static int parse_metrics(struct parser *ps, json_t *root)
{
	json_t *m = json_object_get(root, "metrics");
	int ret;

	if (!m)
		return 0;
	push_key(ps, "metrics");
	if ((ret = check_object(ps, m)) == 0 && (ret = check_keys(ps, m, "metrics")) == 0) {
		if (!json_object_get(m, "port"))
			ret = fail(ps, 0, "missing required key \"port\"");
		else if ((ret = get_numbers(ps, m, "metrics", ps->cfg)) == 0)
			ret = parse_metrics_address(ps, m);
	}
	pop(ps);
	ps->cfg->metrics = ret == 0;
	return ret;
}

/* "record": decision traces (docs/trace.md). The path is a directory, made
 * absolute for the reason above; one file per host and domain goes in it. */
static int parse_record_path(struct parser *ps, json_t *rec)
{
	const struct wave_cfg_key *k = wave_cfg_key("record", "path");
	json_t *v = json_object_get(rec, "path");
	char what[64];
	int ret;

	push_key(ps, "path");
	if (!v)
		return fail(ps, 1, "required: the directory traces are written to");
	snprintf(what, sizeof(what), "an absolute path of at most %" PRIu64 " bytes", k->max);
	if ((ret = want_string(ps, v, what, k->max)) == 0 && json_string_value(v)[0] != '/')
		ret = fail_expected(ps, v, what);
	pop(ps);
	return ret ? ret : dup_string(ps, v, &ps->cfg->record.path);
}

static int parse_record(struct parser *ps, json_t *root)
{
	json_t *rec = json_object_get(root, "record"), *v;
	int ret;

	if (!rec)
		return 0;
	push_key(ps, "record");
	ps->cfg->record.enabled = 1;
	ps->cfg->record.writer_cpu = -1;
	if ((ret = check_object(ps, rec)) < 0 || (ret = check_keys(ps, rec, "record")) < 0 ||
	    (ret = get_numbers(ps, rec, "record", ps->cfg)) < 0)
		return ret;
	if (json_object_get(rec, "writer_cpu")) {
		uint64_t cpu = 0;

		if ((ret = get_uint(ps, rec, "writer_cpu", 0, 1023, &cpu)) < 0)
			return ret;
		ps->cfg->record.writer_cpu = (int)cpu;
	}
	if ((v = json_object_get(rec, "enabled"))) {
		push_key(ps, "enabled");
		if (!json_is_boolean(v))
			return fail_expected(ps, v, "true or false");
		pop(ps);
		ps->cfg->record.enabled = json_is_true(v);
	}
	ret = parse_record_path(ps, rec);
	pop(ps);
	return ret;
}

static int parse_root(struct parser *ps, json_t *root)
{
	int ret;

	if (!json_is_object(root))
		return fail_expected(ps, root, "an object at the top level");
	if ((ret = check_keys(ps, root, "")) < 0 ||
	    (ret = parse_version(ps, root)) < 0 || (ret = get_numbers(ps, root, "", ps->cfg)) < 0 ||
	    (ret = parse_listen(ps, root)) < 0 ||
	    (ret = parse_cpus(ps, root)) < 0 || (ret = parse_heartbeat(ps, root)) < 0 ||
	    (ret = parse_channel(ps, root)) < 0 || (ret = parse_auth(ps, root)) < 0 ||
	    (ret = parse_plugin_path(ps, root)) < 0 || (ret = parse_domains(ps, root)) < 0 ||
	    (ret = parse_stats_socket(ps, root)) < 0 || (ret = parse_metrics(ps, root)) < 0)
		return ret;
	return parse_record(ps, root);
}

static struct wave_config *config_new(const char *source)
{
	struct wave_config *cfg = wave_cfg_calloc(1, sizeof(*cfg));

	if (!cfg)
		return NULL;
	cfg->size = sizeof(*cfg);
	wave_cfg_defaults(cfg);
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
