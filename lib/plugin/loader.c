/* SPDX-License-Identifier: MIT */
/*
 * Finding, loading and validating policy plugins.
 *
 * A plugin is refused for anything that would make calling it unsafe or
 * ambiguous, with an error that names the file and the problem. Nothing
 * here installs signal handlers or touches process-wide state beyond what
 * dlopen() itself does.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <link.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/core.h"
#include "../decision/domain.h"
#include "plugin_impl.h"

#if !defined(WAVE_PLUGIN_DIR) || !defined(WAVE_BUILD_DIR) || !defined(WAVE_PLUGIN_BUILD_DIR) || \
	!defined(WAVE_PLUGIN_DIR_FROM_LIB) || !defined(WAVE_PLUGIN_DIR_FROM_BIN)
#error "WAVE_PLUGIN_DIR(_FROM_LIB, _FROM_BIN), WAVE_BUILD_DIR and WAVE_PLUGIN_BUILD_DIR must be defined by the build"
#endif

#define ENTRY_PREFIX "wave_plugin_entry_"


WAVE_API int wave_plugin_load_opts_init(struct wave_plugin_load_opts *opts)
{
	if (!opts)
		return -EINVAL;
	memset(opts, 0, sizeof(*opts));
	opts->size = sizeof(*opts);
	opts->domain = -1;
	return 0;
}

static int name_ok(const char *s, size_t len)
{
	if (len == 0 || len > WAVE_PLUGIN_NAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return 0;
	return 1;
}

/* The <name> of ".../wave_<name>.so" into @name; 0, or -1 if the file is
 * not named that way. */
static int name_from_file(const char *path, char name[WAVE_PLUGIN_NAME_MAX + 1])
{
	const char *base = strrchr(path, '/');
	size_t len;

	base = base ? base + 1 : path;
	len = strlen(base);
	if (len < 9 || strncmp(base, "wave_", 5) != 0 || strcmp(base + len - 3, ".so") != 0)
		return -1;
	len -= 8;
	if (!name_ok(base + 5, len))
		return -1;
	memcpy(name, base + 5, len);
	name[len] = '\0';
	return 0;
}

static int check_abi(const struct wave_plugin_desc *d, const char *src, struct wave_error *err)
{
	if (d->abi_major != WAVE_PLUGIN_ABI_MAJOR)
		return wave_error_set(err, -WAVE_EPLUGIN, src, 0, 0,
				      "plugin ABI %u.%u found where %u.x is needed", d->abi_major,
				      d->abi_minor, WAVE_PLUGIN_ABI_MAJOR);
	if (d->abi_minor > WAVE_PLUGIN_ABI_MINOR)
		return wave_error_set(err, -WAVE_EPLUGIN, src, 0, 0,
				      "plugin ABI %u.%u is newer than this libwave's %u.%u; "
				      "rebuild the plugin against this libwave, or update libwave",
				      d->abi_major, d->abi_minor, WAVE_PLUGIN_ABI_MAJOR,
				      WAVE_PLUGIN_ABI_MINOR);
	/* Every 1.x descriptor has at least the fields of 1.0; a larger size
	 * with a minor we know would mean a corrupt descriptor. */
	if (d->size != sizeof(*d))
		return wave_error_set(err, -WAVE_EPLUGIN, src, 0, 0,
				      "descriptor is %u bytes, ABI %u.%u descriptors are %zu",
				      d->size, d->abi_major, d->abi_minor, sizeof(*d));
	return 0;
}

static int check_fields(const struct wave_plugin_desc *d, const char *want_name, const char *src,
			struct wave_error *err)
{
	if (!d->name || !name_ok(d->name, strlen(d->name)))
		return wave_error_set(err, -WAVE_EPLUGIN, src, 0, 0,
				      "descriptor has %s name (letters, digits and '_', at most %d)",
				      d->name ? "an invalid" : "no", WAVE_PLUGIN_NAME_MAX);
	if (want_name && strcmp(d->name, want_name) != 0)
		return wave_error_set(err, -WAVE_EPLUGIN, src, 0, 0,
				      "descriptor is named \"%s\" but the file is for \"%s\" "
				      "(plugin <name> must be in wave_<name>.so)",
				      d->name, want_name);
	if (!d->version)
		return wave_error_set(err, -WAVE_EPLUGIN, src, 0, 0, "descriptor has no version");
	if (d->flags != 0)
		return wave_error_set(err, -WAVE_EPLUGIN, src, 0, 0,
				      "descriptor flags 0x%x are reserved and must be 0", d->flags);
	return 0;
}

static int check_domain(const struct wave_plugin_desc *d, int want, const char *src,
			struct wave_error *err)
{
	const struct domain_desc *dom;

	/* Every domain of the enum is served: a later one is unknown here. */
	if (d->domain >= WAVE_DOMAIN_COUNT || !(dom = wave_domains[d->domain]))
		return wave_error_set(err, -WAVE_EPLUGIN, src, 0, 0,
				      "unknown domain %u (known: 0 custom, 1 sched, 2 mem, 3 rpc)",
				      d->domain);
	if (want >= 0 && (uint32_t)want != d->domain)
		return wave_error_set(err, -WAVE_EPLUGIN, src, 0, 0,
				      "is a %s plugin where a %s plugin is needed",
				      wave_domain_name(d->domain), wave_domain_name((unsigned)want));
	if (!d->ops)
		return wave_error_set(err, -WAVE_EPLUGIN, src, 0, 0, "no ops table for domain %s",
				      wave_domain_name(d->domain));
	if (d->abi_minor < dom->abi_minor)
		return wave_error_set(err, -WAVE_EPLUGIN, src, 0, 0,
				      "%s plugins need plugin ABI %u.%u or newer, found %u.%u",
				      wave_domain_name(d->domain), WAVE_PLUGIN_ABI_MAJOR,
				      dom->abi_minor, d->abi_major, d->abi_minor);
	return dom->check_ops(d, src, err);
}

/* Validates @d, in the order that keeps later checks safe: nothing past
 * the ABI fields is read before the ABI and size are known to be ours. */
static int validate(const struct wave_plugin_desc *d, const char *want_name, int want_domain,
		    const char *src, struct wave_error *err)
{
	int ret;

	if (!d)
		return wave_error_set(err, -WAVE_EPLUGIN, src, 0, 0,
				      "the entry point returned no descriptor");
	if ((ret = check_abi(d, src, err)) < 0 || (ret = check_fields(d, want_name, src, err)) < 0)
		return ret;
	return check_domain(d, want_domain, src, err);
}

static int plugin_new(void *handle, const char *path, const struct wave_plugin_desc *d,
		      struct wave_plugin **out, struct wave_error *err)
{
	struct wave_plugin *p = calloc(1, sizeof(*p));

	if (!p || !(p->path = strdup(path))) {
		free(p);
		return wave_error_set(err, -ENOMEM, path, 0, 0, "out of memory");
	}
	p->handle = handle;
	p->desc = d;
	*out = p;
	wave_info("plugin %s %s (%s) loaded from %s", d->name, d->version,
		  wave_domain_name(d->domain), path);
	return 0;
}

/* @path under a name that no earlier load of this process gave dlopen(),
 * into @buf: the load's number n in steps "/." (a one bit) and "//." (a
 * zero bit) after the directory; the first load (n = 0) keeps @path. Why:
 * dlopen() returns the object already loaded under the same name even when
 * the file was replaced since, so a plugin rebuilt and installed over the
 * running one (a new inode) would not be loaded by a hot swap, and the old
 * one's descriptor would be checked in its place. glibc compares the names
 * as strings; an unchanged file is still found by its inode, and shared.
 * NULL when the name would be too long. */
static const char *load_name(const char *path, char *buf, size_t size)
{
	static _Atomic uint64_t loads;
	uint64_t n = atomic_fetch_add_explicit(&loads, 1, memory_order_relaxed);
	const char *base = strrchr(path, '/');
	size_t used;

	if (n == 0)
		return path;
	used = (size_t)snprintf(buf, size, "%.*s", (int)(base - path), path);
	for (; n && used < size; n >>= 1)
		used += (size_t)snprintf(buf + used, size - used, "%s", n & 1 ? "/." : "//.");
	if (used < size)
		used += (size_t)snprintf(buf + used, size - used, "%s", base);
	return used < size ? buf : NULL;
}

/* Whether @addr, which dlsym() found, is a function (an entry point that
 * is data would be called, and crash the agent). */
static bool is_function(const void *addr)
{
	const ElfW(Sym) *sym = NULL;
	Dl_info info;
	unsigned type;

	if (!dladdr1(addr, &info, (void **)&sym, RTLD_DL_SYMENT) || !sym)
		return false;
	type = ELF64_ST_TYPE(sym->st_info); /* the same bits in ELF32 */
	return type == STT_FUNC || type == STT_GNU_IFUNC;
}

/* Loads the file @path, whose entry point is derived from @name. */
static int open_file(const char *path, const char *name, int want_domain,
		     struct wave_plugin **out, struct wave_error *err)
{
	char sym[sizeof(ENTRY_PREFIX) + WAVE_PLUGIN_NAME_MAX], fresh[PATH_MAX];
	const char *as = load_name(path, fresh, sizeof(fresh));
	wave_plugin_entry_fn entry;
	void *handle, *addr;
	int ret;

	if (!as)
		return wave_error_set(err, -WAVE_EPLUGIN, path, 0, 0, "cannot load: path too long");
	handle = dlopen(as, RTLD_NOW | RTLD_LOCAL);
	if (!handle)
		return wave_error_set(err, -WAVE_EPLUGIN, path, 0, 0, "cannot load: %s", dlerror());
	snprintf(sym, sizeof(sym), ENTRY_PREFIX "%s", name);
	dlerror();
	addr = dlsym(handle, sym);
	if (!addr || !is_function(addr)) {
		wave_error_set(err, -WAVE_EPLUGIN, path, 0, 0,
			       addr ? "%s is not a function (define it with WAVE_PLUGIN_DEFINE)"
				    : "no entry point %s (is the file renamed? plugin <name> must "
				      "be in wave_<name>.so and defined with WAVE_PLUGIN_DEFINE)",
			       sym);
		dlclose(handle);
		return -WAVE_EPLUGIN;
	}
	/* POSIX guarantees a data pointer from dlsym converts to a function
	 * pointer; memcpy says so without a pedantic cast warning. */
	memcpy(&entry, &addr, sizeof(entry));
	ret = validate(entry(), name, want_domain, path, err);
	if (ret == 0)
		ret = plugin_new(handle, path, entry(), out, err);
	if (ret < 0)
		dlclose(handle);
	return ret;
}

/* Appends @s to the list of paths tried; once full, ends it with "...". */
static void tried_add(char *list, size_t size, const char *s)
{
	size_t used = strlen(list), len = strlen(s);

	if (used >= 3 && strcmp(list + used - 3, "...") == 0)
		return;
	/* Once is enough (WAVE_PLUGIN_PATH may name the default directory). */
	for (const char *p = list; (p = strstr(p, s)) != NULL; p += len)
		if ((p == list || p[-1] == ' ') && (p[len] == ',' || p[len] == '\0'))
			return;
	/* Keep room for a final ", ..." after whatever is added. */
	if (used + strlen(s) + 2 + 6 < size) {
		if (used)
			strcat(list, ", ");
		strcat(list, s);
	} else {
		strcat(list, used ? ", ..." : "...");
	}
}

/* Tries @dir/wave_<name>.so; 1 with *@found set when the file exists. */
static int try_dir(const char *dir, size_t dirlen, const char *name, char *tried, size_t tsize,
		   char **found)
{
	char path[4096];
	int n;

	if (dirlen == 0)
		return 0;
	n = snprintf(path, sizeof(path), "%.*s/wave_%s.so", (int)dirlen, dir, name);
	if (n < 0 || (size_t)n >= sizeof(path))
		return 0;
	if (access(path, F_OK) != 0) {
		tried_add(tried, tsize, path);
		return 0;
	}
	*found = strdup(path);
	return *found ? 1 : -ENOMEM;
}

/* Tries each directory of the colon-separated list @list. */
static int try_list(const char *list, const char *name, char *tried, size_t tsize, char **found)
{
	int ret = 0;

	while (list && ret == 0) {
		const char *colon = strchr(list, ':');
		size_t len = colon ? (size_t)(colon - list) : strlen(list);

		ret = try_dir(list, len, name, tried, tsize, found);
		list = colon ? colon + 1 : NULL;
	}
	return ret;
}

/* The file this libwave's code was loaded from, resolved, into @self:
 * libwave.so, or the program that linked libwave.a (*@in_program). */
static bool code_file(char self[PATH_MAX], bool *in_program)
{
	char exe[PATH_MAX];
	bool (*fn)(char *, bool *) = code_file;
	ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	void *addr;
	Dl_info info;

	if (len <= 0)
		return false;
	exe[len] = '\0';
	/* As in open_file(): a function pointer to dladdr's data pointer. */
	memcpy(&addr, &fn, sizeof(addr));
	/* The main program, named by a relative argv[0], fails realpath(). */
	if (!dladdr(addr, &info) || !info.dli_fname || !realpath(info.dli_fname, self))
		snprintf(self, PATH_MAX, "%s", exe);
	*in_program = strcmp(self, exe) == 0;
	return true;
}

/* Whether @file lies under this libwave's build directory: a program run
 * from the build tree, not installed. */
static bool in_build_tree(const char *file)
{
	char build[PATH_MAX];
	size_t n;

	if (!realpath(WAVE_BUILD_DIR, build))
		return false;
	n = strlen(build);
	return strncmp(file, build, n) == 0 && file[n] == '/';
}

/* The directories searched last, into @dir (two of PATH_MAX), one per entry,
 * an empty one for none:
 * - for a libwave run from its build tree, the plugins built with it only
 *   (an uninstalled libwave never takes an installed plugin, maybe of
 *   another version, for its own; an installed one never looks there);
 * - else the plugin directory of the tree this libwave is installed in,
 *   found from where its code is (so that a tree installed with --prefix,
 *   or moved, finds its own plugins, as `pkg-config --variable=plugindir
 *   wave` does), then the one configured at build time. */
static void default_dirs(char dir[2][PATH_MAX])
{
	char self[PATH_MAX];
	bool in_program;
	char *slash;

	dir[0][0] = dir[1][0] = '\0';
	if (!code_file(self, &in_program)) {
		snprintf(dir[1], PATH_MAX, "%s", WAVE_PLUGIN_DIR);
		return;
	}
	if (in_build_tree(self)) {
		snprintf(dir[0], PATH_MAX, "%s", WAVE_PLUGIN_BUILD_DIR);
		return;
	}
	if ((slash = strrchr(self, '/')))
		snprintf(dir[0], PATH_MAX, "%.*s/%s", (int)(slash - self), self,
			 in_program ? WAVE_PLUGIN_DIR_FROM_BIN : WAVE_PLUGIN_DIR_FROM_LIB);
	/* A program that linked libwave.a and lives outside a bin directory
	 * names no plugin directory: leave it out of the error's list. */
	if (access(dir[0], F_OK) != 0)
		dir[0][0] = '\0';
	snprintf(dir[1], PATH_MAX, "%s", WAVE_PLUGIN_DIR);
}

static int search(const char *name, const struct wave_plugin_load_opts *o, char **found,
		  struct wave_error *err)
{
	char tried[WAVE_ERROR_TEXT_LENGTH - 150] = "";
	char file[WAVE_PLUGIN_NAME_MAX + 10];
	int ret = 0;

	for (size_t i = 0; ret == 0 && i < o->n_search_path; i++)
		if (o->search_path[i])
			ret = try_dir(o->search_path[i], strlen(o->search_path[i]), name, tried,
				      sizeof(tried), found);
	if (ret == 0 && !(o->flags & WAVE_PLUGIN_F_NO_ENV))
		ret = try_list(getenv("WAVE_PLUGIN_PATH"), name, tried, sizeof(tried), found);
	if (ret == 0 && !(o->flags & WAVE_PLUGIN_F_NO_DEFAULT)) {
		char dir[2][PATH_MAX];

		default_dirs(dir);
		for (size_t i = 0; ret == 0 && i < 2; i++)
			ret = try_dir(dir[i], strlen(dir[i]), name, tried, sizeof(tried), found);
	}
	snprintf(file, sizeof(file), "wave_%s.so", name);
	if (ret < 0)
		return wave_error_set(err, ret, file, 0, 0, "out of memory");
	if (ret == 0)
		return wave_error_set(err, -WAVE_EPLUGIN, file, 0, 0,
				      "not found (searched: %s); add its directory to "
				      "WAVE_PLUGIN_PATH or the search path (plugin_path, "
				      "--plugin-dir), or name the file (a path with a '/')",
				      tried[0] ? tried : "no directories");
	return 0;
}

static int resolve_opts(const struct wave_plugin_load_opts *in, struct wave_plugin_load_opts *o)
{
	wave_plugin_load_opts_init(o);
	if (!in)
		return 0;
	if (wave_struct_copy(o, sizeof(*o), in, in->size,
			     WAVE_SIZE_TO(struct wave_plugin_load_opts, domain),
			     "struct wave_plugin_load_opts") < 0)
		return -EINVAL;
	o->size = sizeof(*o);
	if ((o->n_search_path && !o->search_path) ||
	    (o->flags & ~(WAVE_PLUGIN_F_NO_ENV | WAVE_PLUGIN_F_NO_DEFAULT)) ||
	    o->domain < -1 || o->domain >= WAVE_DOMAIN_COUNT)
		return -EINVAL;
	return 0;
}

WAVE_API int wave_plugin_load(const char *name, const struct wave_plugin_load_opts *opts,
			      struct wave_plugin **out, struct wave_error *err)
{
	char fname[WAVE_PLUGIN_NAME_MAX + 1];
	struct wave_plugin_load_opts o;
	struct wave_error local;
	char *path = NULL;
	int ret;

	if (!err)
		err = &local; /* the warning below wants the detail anyway */
	wave_error_clear(err);
	if (!name || !out || resolve_opts(opts, &o) < 0)
		return wave_error_set(err, -EINVAL, name ? name : "", 0, 0, "invalid argument");
	if (strchr(name, '/')) {
		if (name_from_file(name, fname) < 0)
			return wave_error_set(err, -WAVE_EPLUGIN, name, 0, 0,
					      "a plugin file must be named wave_<name>.so, "
					      "<name> made of letters, digits and '_'");
		ret = open_file(name, fname, o.domain, out, err);
	} else if (!name_ok(name, strlen(name))) {
		return wave_error_set(err, -WAVE_EPLUGIN, name, 0, 0,
				      "invalid plugin name (letters, digits and '_', at most %d)",
				      WAVE_PLUGIN_NAME_MAX);
	} else if ((ret = search(name, &o, &path, err)) == 0) {
		ret = open_file(path, name, o.domain, out, err);
		free(path);
	}
	if (ret < 0)
		wave_warn("plugin %s: %s", err->source, err->text);
	return ret;
}

WAVE_API int wave_plugin_open_static(wave_plugin_entry_fn entry, struct wave_plugin **out,
				     struct wave_error *err)
{
	const struct wave_plugin_desc *d;
	char src[WAVE_PLUGIN_NAME_MAX + 8] = "static";
	int ret;

	wave_error_clear(err);
	if (!entry || !out)
		return wave_error_set(err, -EINVAL, src, 0, 0, "invalid argument");
	d = entry();
	/* The name is only trusted once the ABI is known to match. */
	if (d && d->abi_major == WAVE_PLUGIN_ABI_MAJOR && d->size == sizeof(*d) && d->name &&
	    name_ok(d->name, strlen(d->name)))
		snprintf(src, sizeof(src), "static:%s", d->name);
	ret = validate(d, NULL, -1, src, err);
	return ret < 0 ? ret : plugin_new(NULL, src, d, out, err);
}

WAVE_API const struct wave_plugin_desc *wave_plugin_desc(const struct wave_plugin *p)
{
	return p ? p->desc : NULL;
}

WAVE_API const char *wave_plugin_path(const struct wave_plugin *p)
{
	return p ? p->path : NULL;
}

WAVE_API void wave_plugin_unload(struct wave_plugin *p)
{
	if (!p)
		return;
	if (p->handle)
		dlclose(p->handle);
	free(p->path);
	free(p);
}
