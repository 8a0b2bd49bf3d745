/* SPDX-License-Identifier: MIT */
/**
 * @file plugin.h
 * The policy plugin ABI: what a plugin exports, what it may call, and how
 * the agent (or a test) loads and drives one.
 *
 * A policy plugin decides for one domain. It is a shared object named
 * wave_<name>.so that defines its descriptor with WAVE_PLUGIN_DEFINE(), and
 * it sees libwave only through this header: it never touches a channel, a
 * transport or jansson. Everything it needs comes through the context
 * (struct wave_plugin_ctx) the agent hands to each callback: its parameters
 * from the configuration, a way to emit decisions, logging, named counters,
 * and a periodic tick.
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
 * Domains. ABI 1.0 defined the ops table of the custom domain; 1.1 adds
 * the sched domain (struct wave_sched_ops, its state accessors and
 * decisions). The mem and rpc domains are reserved here and get their ops
 * tables in later minor versions; until then the loader refuses plugins of
 * those domains.
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
#include <wave/sched_msg.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Plugin ABI version this header describes. A new major breaks plugins;
 *  a new minor only adds (fields at the end, ops at the end of tables). */
#define WAVE_PLUGIN_ABI_MAJOR 1
#define WAVE_PLUGIN_ABI_MINOR 1

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
 *               for WAVE_DOMAIN_CUSTOM, struct wave_sched_ops for
 *               WAVE_DOMAIN_SCHED), which starts with its size.
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
 * struct wave_custom_ops - callbacks of a WAVE_DOMAIN_CUSTOM plugin.
 * @size:     sizeof(struct wave_custom_ops) at compile time.
 * @on_event: required. An event from the host: a message whose type is in
 *            WAVE_MSG_APP_FIRST..WAVE_MSG_APP_LAST, meaning whatever the
 *            application and the plugin agreed. Answer with
 *            wave_plugin_emit() (now, or later). Return 0, or a negative
 *            error code for an event the plugin could not use; the agent
 *            counts it ("event_errors") and carries on.
 * @on_tick:  optional. Called about every tick period of the domain's
 *            configuration (domains.custom.tick_us) with the
 *            CLOCK_MONOTONIC time in nanoseconds; a late tick is not
 *            repeated.
 *
 * Callbacks of one context are never called concurrently.
 */
struct wave_custom_ops {
	size_t size;
	int (*on_event)(struct wave_plugin_ctx *ctx, const struct wave_msg *ev);
	void (*on_tick)(struct wave_plugin_ctx *ctx, uint64_t now_ns);
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
 * even when the plugin is compiled with -fvisibility=hidden.
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
	WAVE_PLUGIN_EXPORT const struct wave_plugin_desc *wave_plugin_entry_##name(void); \
	WAVE_PLUGIN_EXPORT const struct wave_plugin_desc *wave_plugin_entry_##name(void) \
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

/* ------------------------------------------------------------------------
 * The sched domain (plugin ABI 1.1): ops table, state views, decisions.
 *
 * The agent owns the state: it decodes each host message
 * (include/wave/sched_msg.h), applies it to its model of tasks and CPUs
 * (include/wave/sched_state.h), refusing impossible ones, and only then
 * calls the op named after the event, with a view of the task as it is
 * after the event. A plugin keeps only its own queues; it reads tasks and
 * CPUs through the accessors below and decides through
 * wave_plugin_sched_run(), _prestage() and _preempt(), which check each
 * decision against the state before anything is sent.
 * ------------------------------------------------------------------------ */

/**
 * struct wave_sched_task - a task, as the agent's state model sees it.
 * @id:           the host's non-zero task id.
 * @seq:          its sequence number after the last event; a decision
 *                about the task must carry it.
 * @runtime_ns:   host time spent running, summed over finished runs.
 * @run_start_ns: when the current run started (host clock), if RUNNING.
 * @hint:         task_new's hint (see @hint_kind).
 * @state:        enum wave_sched_task_state.
 * @cpu:          the CPU it runs on, or WAVE_SCHED_CPU_NONE.
 * @pending_cpu:  the CPU of a RUN or PRESTAGE decision awaiting its
 *                outcome, or WAVE_SCHED_CPU_NONE. A task with a decision
 *                in flight gets no other decision.
 * @cpu_hint:     task_new's affinity hint, or WAVE_SCHED_CPU_NONE.
 * @hint_kind:    enum wave_sched_hint_kind.
 * @pending:      the type of the decision in flight (WAVE_SCHED_RUN or
 *                WAVE_SCHED_PRESTAGE), or 0.
 * @reserved:     zero.
 */
struct wave_sched_task {
	uint64_t id;
	uint64_t seq;
	uint64_t runtime_ns;
	uint64_t run_start_ns;
	uint64_t hint;
	uint32_t state;
	uint32_t cpu;
	uint32_t pending_cpu;
	uint32_t cpu_hint;
	uint16_t hint_kind;
	uint16_t pending;
	uint32_t reserved[3];
};

/**
 * struct wave_sched_cpu - a CPU, as the agent's state model sees it.
 * @id:            its number, 0 .. wave_plugin_sched_cpu_count() - 1.
 * @preempting:    1 while a PREEMPT for it awaits the host, else 0.
 * @current:       the task running on it, or 0.
 * @pending:       the task of a RUN for it awaiting its outcome, or 0.
 * @prestaged:     the task in its prestage slot awaiting its outcome, or 0.
 * @idle_since_ns: host time its last task stopped running.
 * @reserved:      zero.
 *
 * A CPU is free when @current, @pending and @prestaged are all 0: only
 * then does it accept a RUN (a prestaged task starts as soon as the CPU has
 * nothing to run, so a RUN would find it busy). Its prestage slot holds at
 * most one task.
 */
struct wave_sched_cpu {
	uint32_t id;
	uint32_t preempting;
	uint64_t current;
	uint64_t pending;
	uint64_t prestaged;
	uint64_t idle_since_ns;
	uint64_t reserved[3];
};

/**
 * struct wave_sched_ops - callbacks of a WAVE_DOMAIN_SCHED plugin.
 * @size:           sizeof(struct wave_sched_ops) at compile time.
 * @task_new:       required. @t is new, BLOCKED or RUNNABLE.
 * @task_wakeup:    required. @t was BLOCKED and is RUNNABLE.
 * @task_blocked:   required. @t stopped running on @cpu and is BLOCKED;
 *                  @cpu is free.
 * @task_yield:     required. @t gave up @cpu and is RUNNABLE; @cpu is free.
 * @task_preempted: required. @t was taken off @cpu and is RUNNABLE; @cpu
 *                  is free (or already runs its prestaged task, whose
 *                  outcome follows).
 * @task_dead:      required. @t exited; it is gone from the state (the
 *                  view shows it as it last was) and its CPU, if any, is
 *                  free.
 * @cpu_idle:       optional. The host reports @cpu has nothing to run.
 * @tick:           optional. Periodic, per CPU, with the host's time.
 * @txn_committed:  optional. A RUN or PRESTAGE of @t committed: @t runs on
 *                  @cpu (@decision is the decision's type).
 * @txn_aborted:    required. A RUN or PRESTAGE of @t on @cpu aborted with
 *                  @result (enum wave_sched_result). The task's latest
 *                  state is in force: when @t->state is RUNNABLE the
 *                  plugin must queue it again (with @t->seq) or it will
 *                  never run. @t is NULL when the task has exited since.
 *
 * Callbacks return 0, or a negative error code that the agent counts
 * ("event_errors") before carrying on. @t points to a copy valid during
 * the call. Callbacks of one context are never called concurrently, and
 * may make decisions and read the state.
 */
struct wave_sched_ops {
	size_t size;
	int (*task_new)(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t);
	int (*task_wakeup)(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t);
	int (*task_blocked)(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t,
			    uint32_t cpu);
	int (*task_yield)(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t,
			  uint32_t cpu);
	int (*task_preempted)(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t,
			      uint32_t cpu);
	int (*task_dead)(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t);
	int (*cpu_idle)(struct wave_plugin_ctx *ctx, uint32_t cpu, uint64_t now_ns);
	int (*tick)(struct wave_plugin_ctx *ctx, uint32_t cpu, uint64_t now_ns);
	int (*txn_committed)(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t,
			     uint32_t cpu, uint16_t decision);
	int (*txn_aborted)(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t,
			   uint32_t cpu, uint16_t decision, unsigned result);
};

/**
 * wave_plugin_sched_run() - decide: run @task on @cpu.
 * @ctx:  a sched plugin's context.
 * @task: a task id.
 * @seq:  the task's sequence number the decision is based on (its @seq in
 *        the latest view).
 * @cpu:  a CPU number.
 *
 * The decision is checked against the state first and sent only if it is
 * possible now; a refusal is counted in the state's statistics. Once sent,
 * the task and the CPU are pending until the host's outcome arrives
 * (txn_committed or txn_aborted).
 *
 * Return: 0 (sent), or
 *   -EINVAL   a NULL or non-sched @ctx, or a context without a state;
 *   -ERANGE   no such CPU;
 *   -ENOENT   no such task;
 *   -ESTALE   @seq is not the task's current sequence number;
 *   -EPERM    the task is not RUNNABLE, or already has a decision pending;
 *   -EBUSY    @cpu is not free: it runs a task, or has a RUN pending or a
 *             task prestaged;
 *   -EAGAIN   the channel to the host is full (try again later);
 *   -ENOTCONN the context has no emit function; or the emit's error.
 */
WAVE_API int wave_plugin_sched_run(struct wave_plugin_ctx *ctx, uint64_t task, uint64_t seq,
				   uint32_t cpu);

/**
 * wave_plugin_sched_prestage() - decide: @task is @cpu's next task.
 *
 * Like wave_plugin_sched_run(), but the host puts the task into @cpu's
 * prestage slot and runs it, without a round trip, the next time @cpu
 * needs work (its task blocks, yields or is preempted). @cpu may be busy;
 * -EBUSY means its slot is already taken.
 */
WAVE_API int wave_plugin_sched_prestage(struct wave_plugin_ctx *ctx, uint64_t task,
					uint64_t seq, uint32_t cpu);

/**
 * wave_plugin_sched_preempt() - decide: take the running task off @cpu.
 *
 * The PREEMPT names the task the state says runs there, at its current
 * sequence number, so the host ignores it (aborts, stale) if that task
 * has stopped meanwhile. A carried-out preemption comes back as
 * task_preempted; @cpu then runs its prestaged task, if any.
 *
 * Return: 0 (sent), -EINVAL, -ERANGE (no such CPU), -EPERM (nothing runs
 * on @cpu), -EBUSY (a PREEMPT for @cpu is already pending), -EAGAIN,
 * -ENOTCONN or the emit's error.
 */
WAVE_API int wave_plugin_sched_preempt(struct wave_plugin_ctx *ctx, uint32_t cpu);

/**
 * wave_plugin_sched_task() - look a task up (expected O(1)).
 * @ctx: a sched plugin's context.
 * @id:  a task id.
 * @out: receives a copy of the task's state.
 *
 * Return: 0, -ENOENT (no such task, or it exited) or -EINVAL.
 */
WAVE_API int wave_plugin_sched_task(const struct wave_plugin_ctx *ctx, uint64_t id,
				    struct wave_sched_task *out);

/** wave_plugin_sched_cpu_count() - the number of CPUs of the domain (CPUs
 *  are numbered from 0), or -EINVAL. */
WAVE_API int wave_plugin_sched_cpu_count(const struct wave_plugin_ctx *ctx);

/**
 * wave_plugin_sched_cpu() - a CPU's state.
 * @ctx: a sched plugin's context.
 * @cpu: 0 .. wave_plugin_sched_cpu_count() - 1; iterate over them to see
 *       every CPU.
 * @out: receives a copy.
 *
 * Return: 0, -ERANGE (no such CPU) or -EINVAL.
 */
WAVE_API int wave_plugin_sched_cpu(const struct wave_plugin_ctx *ctx, uint32_t cpu,
				   struct wave_sched_cpu *out);

/**
 * wave_plugin_sched_free_cpu() - find a free CPU (see struct
 * wave_sched_cpu), cheaply: the state keeps a bitmap of free CPUs.
 * @ctx:  a sched plugin's context.
 * @from: where to start looking (a task's cpu_hint, say); the search
 *        wraps around. Any value is accepted (taken modulo the count).
 *
 * Return: the free CPU found first at or after @from, -EBUSY when every
 * CPU is busy, or -EINVAL.
 */
WAVE_API int wave_plugin_sched_free_cpu(const struct wave_plugin_ctx *ctx, uint32_t from);

/* ------------------------------------------------------------------------
 * Called by the agent runtime (and by tests, which drive a plugin through a
 * context of their own with no channel behind it).
 * ------------------------------------------------------------------------ */

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
 *        plugin directory (${libdir}/wave/plugins); the first file that
 *        exists is loaded (a broken one is reported, not skipped). A name
 *        containing '/' is a path to the file itself, whose name must still
 *        be wave_<name>.so.
 * @opts: where to search, or NULL for the defaults.
 * @out:  receives the plugin; untouched on failure.
 * @err:  filled on failure (may be NULL): @err->source is the file (or
 *        wave_<name>.so when none was found) and @err->text says what is
 *        wrong: not found (with every path tried), not loadable (the
 *        dynamic loader's message), no entry point, an incompatible ABI
 *        version, a truncated descriptor, a missing field, an unknown or
 *        not-yet-supported domain, a missing or too small ops table, a
 *        missing required op.
 *
 * The file is opened with dlopen(RTLD_NOW | RTLD_LOCAL): every symbol is
 * resolved at once and the plugin's symbols stay private. libwave installs
 * no signal handlers. The plugin's init is not called here.
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
 *                domain: a struct wave_sched_state (sched_state.h) for a
 *                sched plugin, which the context then drives (its
 *                decisions change it); NULL for custom.
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

#endif /* WAVE_PLUGIN_H */
