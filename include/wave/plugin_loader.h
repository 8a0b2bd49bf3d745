/* SPDX-License-Identifier: MIT */
/**
 * @file plugin_loader.h
 * For programs that load and drive policy plugins: the agent runtime, tests
 * and tools that run a plugin with a context of their own. Plugins
 * themselves do not include it (they use <wave/plugin.h> and their
 * domain's plugin header).
 *
 * wave_plugin_load() finds, loads and validates a plugin file;
 * wave_plugin_open_static() does the same for one linked into the program.
 * A context (struct wave_plugin_ctx) is one running instance of a plugin:
 * it holds the plugin's parameters, counters and tick, and hands the
 * decisions the plugin emits to a function of the caller's
 * (wave_plugin_emit_fn). A context knows no channel, so a test drives a
 * real plugin with its own emit function and any clock it likes. Custom
 * events go in through wave_plugin_ctx_event(); sched events through
 * wave_sched_state_apply() (sched_state.h) on the state given as the
 * context's domain_state.
 */
#ifndef WAVE_PLUGIN_LOADER_H
#define WAVE_PLUGIN_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include <wave/error.h>
#include <wave/export.h>
#include <wave/msg.h>
#include <wave/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A loaded, validated plugin; opaque. */
struct wave_plugin;

/** Search only the directories given in struct wave_plugin_load_opts. */
#define WAVE_PLUGIN_F_NO_ENV (1u << 0)     /**< ignore WAVE_PLUGIN_PATH */
#define WAVE_PLUGIN_F_NO_DEFAULT (1u << 1) /**< skip ${libdir}/wave/plugins */

/**
 * struct wave_plugin_load_opts - where to look for a plugin.
 * @size:          sizeof(struct wave_plugin_load_opts); set by
 *                 wave_plugin_load_opts_init().
 * @search_path:   @n_search_path directories, searched first, in order
 *                 (typically the configuration's plugin_path).
 * @n_search_path: number of entries in @search_path.
 * @flags:         WAVE_PLUGIN_F_* bits.
 * @domain:        the domain the caller needs, or -1 for any. A plugin of
 *                 another domain is refused.
 */
struct wave_plugin_load_opts {
	size_t size;
	const char *const *search_path;
	size_t n_search_path;
	uint32_t flags;
	int domain;
};

/** wave_plugin_load_opts_init() - defaults: no extra directories, no flags,
 *  any domain. Return: 0 or -EINVAL. */
WAVE_API int wave_plugin_load_opts_init(struct wave_plugin_load_opts *opts);

/**
 * wave_plugin_load() - find, load and validate a plugin.
 * @name: a plugin name ("least_loaded"), looked up as wave_<name>.so in
 *        @opts->search_path, then in each directory of the colon-separated
 *        environment variable WAVE_PLUGIN_PATH, then in libwave's default
 *        plugin directories: the wave/plugins directory beside the
 *        libwave.so in use (or ../<libdir>/wave/plugins from a program in
 *        a bin directory that linked libwave.a), so that a tree installed
 *        with --prefix or moved finds its own plugins, then
 *        ${libdir}/wave/plugins of the configured prefix (a libwave run
 *        from its build tree searches that tree's plugins instead); the
 *        first file that exists is loaded (a broken one is reported, not
 *        skipped). A name
 *        containing '/' is a path to the file itself, whose name must still
 *        be wave_<name>.so.
 * @opts: where to search, or NULL for the defaults.
 * @out:  receives the plugin; untouched on failure.
 * @err:  filled on failure (may be NULL): @err->source is the file (or
 *        wave_<name>.so when none was found) and @err->text says what is
 *        wrong: not found (with every path tried), not loadable (the
 *        dynamic loader's message), no entry point (or one that is not a
 *        function), an incompatible ABI
 *        version, a truncated descriptor, a missing field, an unknown or
 *        not-yet-supported domain, a missing or too small ops table, a
 *        missing required op.
 *
 * The file is opened with dlopen(RTLD_NOW | RTLD_LOCAL): every symbol is
 * resolved at once and the plugin's symbols stay private. libwave installs
 * no signal handlers. The plugin's init is not called here. A file that
 * was replaced (a new inode: a rebuild installed over it) while a plugin
 * loaded from it is still loaded is loaded anew, beside the old one (a hot
 * swap to the rebuilt plugin); an unchanged file is shared.
 *
 * Return: 0, -EINVAL (bad argument), -ENOMEM, or -WAVE_EPLUGIN.
 */
WAVE_API WAVE_NODISCARD int wave_plugin_load(const char *name,
					     const struct wave_plugin_load_opts *opts,
					     struct wave_plugin **out, struct wave_error *err);

/**
 * wave_plugin_open_static() - validate a plugin linked into the program.
 * @entry: the plugin's wave_plugin_entry_<name> function.
 * @out:   receives the plugin.
 * @err:   as for wave_plugin_load(), with source "static:<name>".
 *
 * Return: 0, -EINVAL, -ENOMEM or -WAVE_EPLUGIN.
 */
WAVE_API WAVE_NODISCARD int wave_plugin_open_static(wave_plugin_entry_fn entry,
						    struct wave_plugin **out,
						    struct wave_error *err);

/** wave_plugin_desc() - the plugin's descriptor, or NULL for NULL. */
WAVE_API const struct wave_plugin_desc *wave_plugin_desc(const struct wave_plugin *p);

/** wave_plugin_path() - the file it was loaded from ("static:<name>" for a
 *  static plugin), or NULL for NULL. Valid until wave_plugin_unload(). */
WAVE_API const char *wave_plugin_path(const struct wave_plugin *p);

/** wave_plugin_unload() - unload the plugin. Destroy its contexts first.
 *  NULL is ignored. */
WAVE_API void wave_plugin_unload(struct wave_plugin *p);

/**
 * wave_plugin_emit_fn - how a context hands decisions to its host.
 * @user: wave_plugin_ctx_opts.emit_user.
 * @msgs, @n: as given to wave_plugin_emit(), already checked.
 *
 * The agent runtime sends them on the host's channel; a test records them.
 * Return: how many were taken (0..@n) or a negative error code.
 */
typedef int (*wave_plugin_emit_fn)(void *user, const struct wave_msg *msgs, unsigned n);

/** Parameters for a context; see wave_params_parse() (config.h). */
struct wave_params;

/**
 * struct wave_plugin_ctx_opts - what a context gives its plugin.
 * @size:         sizeof(struct wave_plugin_ctx_opts); set by
 *                wave_plugin_ctx_opts_init().
 * @params:       the plugin's parameters (wave_config's
 *                domains[d].params, or wave_params_parse()), or NULL for
 *                none. The context keeps its own reference: @params may be
 *                freed after wave_plugin_ctx_create().
 * @tick_ns:      tick period in nanoseconds; 0 (default) never ticks.
 * @emit:         where decisions go, or NULL (wave_plugin_emit() then
 *                fails with -ENOTCONN).
 * @emit_user:    passed to @emit.
 * @domain_state: the agent's domain state model, for the accessors of the
 *                domain: a struct wave_sched_state (sched_state.h), struct
 *                wave_rpc_state (rpc_state.h) or struct wave_mem_state
 *                (mem_state.h) for a plugin of that domain, which the
 *                context then drives (its decisions change it); NULL for
 *                custom.
 */
struct wave_plugin_ctx_opts {
	size_t size;
	const struct wave_params *params;
	uint64_t tick_ns;
	wave_plugin_emit_fn emit;
	void *emit_user;
	const void *domain_state;
};

/** wave_plugin_ctx_opts_init() - fill @opts with the defaults.
 *  Return: 0 or -EINVAL. */
WAVE_API int wave_plugin_ctx_opts_init(struct wave_plugin_ctx_opts *opts);

/**
 * wave_plugin_ctx_create() - start a plugin: make a context and call init.
 * @p:    a loaded plugin; must outlive the context.
 * @opts: options, or NULL for the defaults.
 * @out:  receives the context.
 * @err:  filled on failure (may be NULL).
 *
 * Return: 0, -EINVAL, -ENOMEM, or -WAVE_EPLUGIN when the plugin's init
 * failed (@err->text has its error code).
 */
WAVE_API WAVE_NODISCARD int wave_plugin_ctx_create(struct wave_plugin *p,
						   const struct wave_plugin_ctx_opts *opts,
						   struct wave_plugin_ctx **out,
						   struct wave_error *err);

/** wave_plugin_ctx_destroy() - call the plugin's fini and free @ctx.
 *  NULL is ignored. */
WAVE_API void wave_plugin_ctx_destroy(struct wave_plugin_ctx *ctx);

/**
 * wave_plugin_ctx_event() - deliver one event from the host.
 * @ctx: a context of a WAVE_DOMAIN_CUSTOM plugin.
 * @ev:  a message of type WAVE_MSG_APP_FIRST..WAVE_MSG_APP_LAST.
 *
 * Counts "events", and "event_errors" when the plugin fails.
 * Return: what on_event returned, or -EINVAL (bad argument, a message
 * outside the application range, or a plugin of another domain).
 */
WAVE_API int wave_plugin_ctx_event(struct wave_plugin_ctx *ctx, const struct wave_msg *ev);

/**
 * wave_plugin_ctx_tick() - run the plugin's tick if one is due.
 * @ctx:    the context.
 * @now_ns: the current CLOCK_MONOTONIC time (tests pass any increasing
 *          values they like).
 *
 * The first call only arms the tick, due @now_ns + tick period. When a
 * tick is due, on_tick runs once and the next one is due one period later
 * (or one period after @now_ns, if the agent fell behind: missed ticks are
 * dropped, not bunched).
 *
 * Return: 1 if on_tick ran, 0 if not (not due, no tick period or no
 * on_tick), -EINVAL.
 */
WAVE_API int wave_plugin_ctx_tick(struct wave_plugin_ctx *ctx, uint64_t now_ns);

/** wave_plugin_ctx_next_tick() - when the next tick is due (ns,
 *  CLOCK_MONOTONIC), for the agent's wait timeout; 0 when not armed or not
 *  ticking. */
WAVE_API uint64_t wave_plugin_ctx_next_tick(const struct wave_plugin_ctx *ctx);

/**
 * wave_plugin_ctx_counter() - read counter number @index.
 * @ctx:   the context.
 * @index: 0 .. (number of counters - 1); built-in counters come first.
 * @name:  receives the counter's name (valid for the life of @ctx); may be
 *         NULL.
 * @value: receives its value; may be NULL.
 *
 * May be called from another thread than the plugin's; the value is then
 * approximate (each counter is read atomically).
 * Return: 0, -ENOENT when @index is past the last counter, -EINVAL.
 */
WAVE_API int wave_plugin_ctx_counter(const struct wave_plugin_ctx *ctx, unsigned index,
				     const char **name, uint64_t *value);

#ifdef __cplusplus
}
#endif

#endif /* WAVE_PLUGIN_LOADER_H */
