/* SPDX-License-Identifier: MIT */
/**
 * @file plugin.h
 * For policy authors, of every domain: what a plugin exports (its
 * descriptor and entry point) and what it may call from its callbacks
 * (parameters, emit, logging, counters, its private pointer, the tick
 * period).
 *
 * A policy plugin decides for one domain. It is a shared object named
 * wave_<name>.so that defines its descriptor with WAVE_PLUGIN_DEFINE(), and
 * it sees libwave only through this header and its domain's plugin header:
 * <wave/plugin_custom.h> (struct wave_custom_ops) or <wave/plugin_sched.h>
 * (struct wave_sched_ops, the task and CPU views, the decisions). It never
 * touches a channel, a transport or jansson. Everything it needs comes
 * through the context (struct wave_plugin_ctx) the agent hands to each
 * callback: its parameters from the configuration, a way to emit
 * decisions, logging, named counters, and a periodic tick. Programs that
 * load and drive plugins (the agent runtime, tests) use
 * <wave/plugin_loader.h>.
 *
 * Entry point. WAVE_PLUGIN_DEFINE(name, ...) defines one exported function,
 * wave_plugin_entry_<name>(), returning the plugin's constant descriptor.
 * The symbol is scoped by the plugin's name, so any number of plugins can be
 * linked statically into one program (open them with
 * wave_plugin_open_static()). For dlopen, the loader derives the symbol from
 * the file name: wave_least_loaded.so must export
 * wave_plugin_entry_least_loaded, and its descriptor must be named
 * "least_loaded". There is deliberately no fixed-name symbol, which would
 * collide when two plugins are linked into one program; the price is that a
 * plugin file cannot be renamed, and the loader says so when one was.
 *
 * Versioning. The descriptor records the plugin ABI it was compiled against
 * (WAVE_PLUGIN_ABI_MAJOR, WAVE_PLUGIN_ABI_MINOR, stamped by the macro). The
 * loader accepts the same major and a minor not newer than its own. Within a
 * major version, structures only grow at their end: the descriptor carries
 * its size, and every ops table starts with its own size, so libwave can
 * tell whether an older plugin's table holds a given op (WAVE_OPS_HAS()).
 *
 * Linking. A plugin does not link libwave: the wave_plugin_*() functions it
 * calls are resolved from the process that loads it (a program linked with
 * libwave.so, or with libwave.a and --export-dynamic).
 *
 * Domains. ABI 1.0 defined the ops table of the custom domain
 * (plugin_custom.h); 1.1 adds the sched domain (plugin_sched.h: struct
 * wave_sched_ops, its state accessors and decisions); 1.2 the rpc domain
 * (plugin_rpc.h: struct wave_rpc_ops, the worker and bucket views, moves
 * and prestages); 1.3 the mem domain (plugin_mem.h: struct wave_mem_ops,
 * chunks, tiers, the hotness histogram, migrations and prestaged victims
 * and prefetches); 1.4 the weight of a far fault in a mem chunk's access
 * count (struct wave_mem_ops.fault_weight); 1.5 how long a refaulted mem
 * chunk was far (struct wave_mem_chunk_view.refault_ms); 1.6 KEEP hints
 * (wave_plugin_mem_keep()).
 */
#ifndef WAVE_PLUGIN_H
#define WAVE_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <wave/domain.h>
#include <wave/error.h>
#include <wave/export.h>
#include <wave/log.h>
#include <wave/msg.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Plugin ABI version this header describes. A new major breaks plugins;
 *  a new minor only adds (fields at the end, ops at the end of tables). */
#define WAVE_PLUGIN_ABI_MAJOR 1
#define WAVE_PLUGIN_ABI_MINOR 6

/** Longest plugin name, without the NUL. Names use [A-Za-z0-9_] only. */
#define WAVE_PLUGIN_NAME_MAX 63

struct wave_plugin_ctx;

/**
 * struct wave_plugin_desc - a plugin's constant self-description.
 * @abi_major, @abi_minor: WAVE_PLUGIN_ABI_* the plugin was compiled against.
 *               Always the first two fields, in every ABI version.
 * @size:        sizeof(struct wave_plugin_desc) at compile time.
 * @name:        required; equals the <name> of wave_<name>.so.
 * @version:     required; the plugin's own version, free-form ("1.2.0").
 * @description: optional one-line summary.
 * @domain:      an enum wave_domain value.
 * @flags:       zero; reserved.
 * @init:        optional; called once per context before any other
 *               callback. Return 0, or a negative error code to refuse to
 *               start (the context is then not created).
 * @fini:        optional; called once when the context is destroyed.
 * @ops:         required; the domain's ops table (struct wave_custom_ops
 *               of plugin_custom.h for WAVE_DOMAIN_CUSTOM, struct
 *               wave_sched_ops of plugin_sched.h for WAVE_DOMAIN_SCHED,
 *               struct wave_rpc_ops of plugin_rpc.h for WAVE_DOMAIN_RPC,
 *               struct wave_mem_ops of plugin_mem.h for WAVE_DOMAIN_MEM),
 *               which starts with its size.
 * @reserved:    zero; room for later minor versions.
 */
struct wave_plugin_desc {
	uint16_t abi_major;
	uint16_t abi_minor;
	uint32_t size;
	const char *name;
	const char *version;
	const char *description;
	uint32_t domain;
	uint32_t flags;
	int (*init)(struct wave_plugin_ctx *ctx);
	void (*fini)(struct wave_plugin_ctx *ctx);
	const void *ops;
	void *reserved[8];
};

/**
 * WAVE_OPS_HAS() - does the ops table @ops of type @type hold op @op?
 *
 * True when the table is large enough to contain the member (it may come
 * from a plugin built against an older minor version) and the member is set.
 */
#define WAVE_OPS_HAS(ops, type, op)                                            \
	((ops) != NULL && (ops)->size >= offsetof(type, op) + sizeof((ops)->op) && \
	 (ops)->op != NULL)

#if defined(__GNUC__)
#define WAVE_PLUGIN_EXPORT __attribute__((visibility("default")))
#define WAVE_PLUGIN_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define WAVE_PLUGIN_EXPORT
#define WAVE_PLUGIN_PRINTF(fmt, args)
#endif
/* The entry point keeps its C name in a plugin written in C++ (the loader
 * looks it up by that name). */
#ifdef __cplusplus
#define WAVE_PLUGIN_LINKAGE extern "C"
#else
#define WAVE_PLUGIN_LINKAGE
#endif

/**
 * WAVE_PLUGIN_DEFINE() - define a plugin's descriptor and entry point.
 * @name:        the plugin's name as a bare identifier (least_loaded); the
 *               file must be wave_<name>.so.
 * @domain:      an enum wave_domain value.
 * @version:     a string, the plugin's version.
 * @description: a string, or NULL.
 * @init, @fini: functions, or NULL.
 * @ops:         a pointer to the domain's ops table.
 *
 * Use it once per plugin, at file scope. It defines the exported function
 * `const struct wave_plugin_desc *wave_plugin_entry_<name>(void)` and stamps
 * the descriptor with the ABI version of this header. The entry is exported
 * even when the plugin is compiled with -fvisibility=hidden, and has C
 * linkage in a plugin compiled as C++.
 */
#define WAVE_PLUGIN_DEFINE(name, domain, version, description, init, fini, ops)   \
	static const struct wave_plugin_desc wave_plugin_desc_##name = {           \
		WAVE_PLUGIN_ABI_MAJOR,                                              \
		WAVE_PLUGIN_ABI_MINOR,                                              \
		sizeof(struct wave_plugin_desc),                                    \
		#name,                                                              \
		(version),                                                          \
		(description),                                                      \
		(uint32_t)(domain),                                                 \
		0,                                                                  \
		(init),                                                             \
		(fini),                                                             \
		(ops),                                                              \
		{ 0 },                                                              \
	};                                                                          \
	WAVE_PLUGIN_LINKAGE WAVE_PLUGIN_EXPORT const struct wave_plugin_desc *      \
	wave_plugin_entry_##name(void);                                             \
	WAVE_PLUGIN_LINKAGE WAVE_PLUGIN_EXPORT const struct wave_plugin_desc *      \
	wave_plugin_entry_##name(void)                                              \
	{                                                                           \
		return &wave_plugin_desc_##name;                                    \
	}

/** The type of a plugin's entry point. */
typedef const struct wave_plugin_desc *(*wave_plugin_entry_fn)(void);

/* ------------------------------------------------------------------------
 * Called by plugins, from their callbacks.
 * Every function accepts any pointer the agent passed to the callback; a
 * NULL @ctx or key is refused (-EINVAL, or the default value).
 * ------------------------------------------------------------------------ */

/**
 * wave_plugin_param_int() - an integer parameter of the plugin.
 * @ctx: the context.
 * @key: a key of the domain's "params" object in the configuration.
 * @def: returned when the key is absent or has the wrong type.
 *
 * The value must be a JSON integer that fits int64_t. A wrong type is
 * logged (WAVE_LOG_WARN, naming the key) and gives @def, so a plugin can
 * always start; a plugin that needs stricter checking validates the value
 * it gets and fails its init. Read every parameter in init: once init
 * returns, the agent warns about each parameter the plugin has not read
 * (most likely a misspelt key).
 *
 * Return: the value or @def.
 */
WAVE_API int64_t wave_plugin_param_int(struct wave_plugin_ctx *ctx, const char *key, int64_t def);

/** wave_plugin_param_uint() - like wave_plugin_param_int(), for a
 *  non-negative JSON integer; a negative one is a wrong type. */
WAVE_API uint64_t wave_plugin_param_uint(struct wave_plugin_ctx *ctx, const char *key,
					 uint64_t def);

/** wave_plugin_param_double() - a JSON number (integer or real). */
WAVE_API double wave_plugin_param_double(struct wave_plugin_ctx *ctx, const char *key, double def);

/** wave_plugin_param_bool() - a JSON true or false. */
WAVE_API bool wave_plugin_param_bool(struct wave_plugin_ctx *ctx, const char *key, bool def);

/**
 * wave_plugin_param_string() - a JSON string parameter.
 * Return: the string (valid, unchanged, for the life of @ctx) or @def.
 * A string containing a NUL character is a wrong type.
 */
WAVE_API const char *wave_plugin_param_string(struct wave_plugin_ctx *ctx, const char *key,
					      const char *def);

/**
 * wave_plugin_emit() - send decisions to the host.
 * @ctx:  the context.
 * @msgs: @n decisions. Every type must be within
 *        WAVE_MSG_APP_FIRST..WAVE_MSG_APP_LAST, for plugins of every
 *        domain: a sched plugin decides through wave_plugin_sched_run()
 *        and its siblings, which check each decision against the state.
 *        The agent sets seq and tstamp; @msgs is not modified and may be
 *        reused after the call.
 * @n:    how many; at least 1.
 *
 * Return: how many the agent accepted (fewer than @n when the channel to
 * the host is full; the plugin decides whether to retry on its next tick),
 * -EINVAL (bad argument or type; nothing sent), -ENOTCONN (the context has
 * no host, e.g. a test context without an emit function), or the agent's
 * error (e.g. -WAVE_ECLOSED).
 */
WAVE_API int wave_plugin_emit(struct wave_plugin_ctx *ctx, const struct wave_msg *msgs, unsigned n);

/**
 * wave_plugin_log() - log through libwave, prefixed with the plugin's name.
 * Goes wherever wave_log_set_handler() / WAVE_LOG send libwave's messages.
 */
WAVE_API void wave_plugin_log(struct wave_plugin_ctx *ctx, enum wave_log_level level,
			      const char *fmt, ...) WAVE_PLUGIN_PRINTF(3, 4);

/** Most counters a context holds, built-in ones included. */
#define WAVE_PLUGIN_MAX_COUNTERS 32
/** Longest counter name, without the NUL. */
#define WAVE_PLUGIN_COUNTER_NAME_MAX 31

/**
 * wave_plugin_counter() - register a named counter.
 * @ctx:  the context.
 * @name: 1 to WAVE_PLUGIN_COUNTER_NAME_MAX characters of [a-z0-9_].
 *
 * Counters start at 0; the agent reports them with its statistics. The
 * built-in counters ("events", "event_errors", "ticks", "emitted") exist in
 * every context. Registering a name twice gives the same counter. Usually
 * called from init.
 *
 * Return: the counter's id (>= 0) for wave_plugin_counter_add(), -EINVAL
 * (bad name) or -ENOSPC (WAVE_PLUGIN_MAX_COUNTERS reached).
 */
WAVE_API int wave_plugin_counter(struct wave_plugin_ctx *ctx, const char *name);

/** wave_plugin_counter_add() - add @delta to counter @id. An unknown @id is
 *  ignored. Cheap: no lock, no allocation. */
WAVE_API void wave_plugin_counter_add(struct wave_plugin_ctx *ctx, int id, uint64_t delta);

/** wave_plugin_set_priv() - keep the plugin's own state in @ctx. */
WAVE_API void wave_plugin_set_priv(struct wave_plugin_ctx *ctx, void *priv);

/** wave_plugin_priv() - the pointer given to wave_plugin_set_priv(), or NULL. */
WAVE_API void *wave_plugin_priv(const struct wave_plugin_ctx *ctx);

/** wave_plugin_tick_ns() - the tick period in force, 0 when not ticking. */
WAVE_API uint64_t wave_plugin_tick_ns(const struct wave_plugin_ctx *ctx);

#ifdef __cplusplus
}
#endif

/* Source compatibility: before the domain headers were split off, this
 * header declared all of them, and plugins written then include only it.
 * New code includes the header of its domain (and plugin_loader.h to load
 * and drive plugins); these stay so that no existing plugin breaks. */
#include <wave/plugin_custom.h>
#include <wave/plugin_loader.h>
#include <wave/plugin_sched.h>

#endif /* WAVE_PLUGIN_H */
