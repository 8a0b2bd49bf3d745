/* SPDX-License-Identifier: MIT */
/**
 * @file config.h
 * The agent's configuration: one JSON file, parsed and strictly validated
 * into a plain C structure.
 *
 * The schema is documented in docs/config.md. Validation is strict: an
 * unknown key, a value of the wrong type and a value out of range are all
 * errors, reported with the file, the line and column of the offending key
 * or value, and the key's path:
 *
 *     agent.json:12:17: domains.custom.tick_us: expected an integer between 1 and 60000000, got -5
 *
 * Plugin parameters (domains.<domain>.params) are the exception: their
 * meaning belongs to the plugin, so they are kept as they are and read by
 * the plugin through wave_plugin_param_*() (plugin.h).
 */
#ifndef WAVE_CONFIG_H
#define WAVE_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <wave/channel.h>
#include <wave/domain.h>
#include <wave/error.h>
#include <wave/export.h>
/* Programs written before the plugin headers were split got the plugin
 * API through this header: it stays. */
#include <wave/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Largest configuration file accepted, in bytes. */
#define WAVE_CONFIG_MAX_BYTES (1u << 20)

/** A plugin's parameters (a JSON object); opaque. */
struct wave_params;

/**
 * struct wave_config_domain - one entry of "domains".
 * @enabled: 1 when the domain appears in the file; every other field is
 *           zero/NULL when it does not.
 * @plugin:  the plugin to load: a name (wave_<name>.so on the search path)
 *           or a path containing '/' (a relative one made relative to the
 *           configuration file's directory), given to wave_plugin_load().
 * @tick_us: the plugin's tick period in microseconds; 0 for no tick.
 *           Always 0 for the sched and mem domains, whose plugins are
 *           ticked by their hosts (the key is refused there).
 * @params:  the plugin's parameters (an empty set when the file has none);
 *           give it to wave_plugin_ctx_opts.params.
 */
struct wave_config_domain {
	int enabled;
	char *plugin;
	uint64_t tick_us;
	struct wave_params *params;
};

/**
 * struct wave_config_record - "record": decision traces (docs/trace.md).
 * @path:      the directory they are written to (absolute), or NULL when
 *             the configuration has no "record": the agent records nothing.
 * @max_bytes: one file's cap ("max_bytes", default 64 MiB).
 * @rotate:    older files kept per host and domain ("rotate", default 2);
 *             0: a file that reaches the cap stops growing.
 * @enabled:   record from the start ("enabled", default true); else only
 *             once wave_agent_record() turns it on.
 * @ring:      records the agent hands each trace's writer thread without
 *             waiting for it ("ring", a power of two, default 16384).
 * @writer_cpu: the CPU of the writer threads ("writer_cpu"), or -1
 *             (default): wherever the agent's threads may run.
 */
struct wave_config_record {
	char *path;
	uint64_t max_bytes;
	uint32_t rotate;
	int enabled;
	uint32_t ring;
	int writer_cpu;
};

/**
 * struct wave_config - a parsed configuration. Read-only for the caller;
 * free it with wave_config_free(). Later versions only append fields.
 *
 * @size:                 sizeof(struct wave_config) of the library.
 * @source:               the file name it was parsed from.
 * @listen, @n_listen:    URIs the agent listens on ("listen").
 * @cpus, @n_cpus:        CPUs the agent runs on ("cpus"); none means any.
 * @heartbeat_period_ms, @heartbeat_timeout_ms: "heartbeat" (default 100
 *                        and 1000).
 * @host_to_agent_slots, @agent_to_host_slots: "channel" ring sizes
 *                        (default 1024 each).
 * @max_slots:            the largest ring a host may ask for (default
 *                        WAVE_CHAN_MAX_SLOTS).
 * @delay_ns:             latency emulation, "channel.delay_ns" (default 0).
 * @spin_ns:              "channel.spin_ns" (default 20000).
 * @allow_uids, @n_allow_uids: "auth.allow_uids"; none means the agent's
 *                        own uid only.
 * @token:                "auth.token", or NULL. At most
 *                        WAVE_CHAN_TOKEN_MAX bytes when a listen URI is
 *                        fabric://, else at most 256.
 * @plugin_path, @n_plugin_path: "plugin_path", each entry made absolute
 *                        relative to the directory of the configuration
 *                        file when it was relative.
 * @domains:              indexed by enum wave_domain.
 * @stats_socket:         "stats_socket": an absolute path where the agent
 *                        serves its statistics on a Unix socket (mode
 *                        0600), or NULL for none. See wave_agent_create().
 * @metrics:              1 when "metrics" is present: wave-agentd then
 *                        serves the statistics over HTTP (Prometheus text
 *                        format); libwave itself serves nothing there.
 * @metrics_port:         "metrics.port" (0: any free port).
 * @metrics_address:      "metrics.address", a numeric IPv4 or IPv6
 *                        address ("127.0.0.1" when the file has none), or
 *                        NULL without "metrics".
 * @record:               "record": decision traces.
 * @max_hosts:            "max_hosts": hosts served at once (default
 *                        1024); a host past them is refused.
 * @record_max_files:     "record.max_files": trace files the record
 *                        directory keeps (default 1000); the oldest go.
 *
 * Every key, with its unit, range and default, is listed in wave.conf(5).
 */
struct wave_config {
	size_t size;
	char *source;
	char **listen;
	size_t n_listen;
	int *cpus;
	size_t n_cpus;
	uint32_t heartbeat_period_ms;
	uint32_t heartbeat_timeout_ms;
	uint32_t host_to_agent_slots;
	uint32_t agent_to_host_slots;
	uint32_t max_slots;
	uint64_t delay_ns;
	uint64_t spin_ns;
	uid_t *allow_uids;
	size_t n_allow_uids;
	char *token;
	char **plugin_path;
	size_t n_plugin_path;
	struct wave_config_domain domains[WAVE_DOMAIN_COUNT];
	char *stats_socket;
	int metrics;
	uint32_t metrics_port;
	char *metrics_address;
	struct wave_config_record record;
	uint32_t max_hosts;
	uint32_t record_max_files;
};

/**
 * wave_config_load() - read and validate a configuration file.
 * @path: the file; also used as wave_error.source and wave_config.source.
 * @out:  receives the configuration; untouched on failure.
 * @err:  filled on failure (may be NULL).
 *
 * Return: 0, -EINVAL (bad argument), -ENOMEM, -WAVE_ECONFIG (the file
 * cannot be read, is not JSON, or breaks the schema; @err says where and
 * why).
 */
WAVE_API WAVE_NODISCARD int wave_config_load(const char *path, struct wave_config **out,
					     struct wave_error *err);

/**
 * wave_config_parse() - validate a configuration held in memory.
 * @text:   the JSON text; need not be NUL-terminated.
 * @len:    its length in bytes.
 * @source: the name used in errors and as the base of relative plugin
 *          paths (a file name), or NULL for "<string>".
 * @out, @err: as for wave_config_load().
 *
 * Return: as for wave_config_load().
 */
WAVE_API WAVE_NODISCARD int wave_config_parse(const char *text, size_t len, const char *source,
					      struct wave_config **out, struct wave_error *err);

/** wave_config_free() - free @cfg and everything in it. NULL is ignored. */
WAVE_API void wave_config_free(struct wave_config *cfg);

/**
 * wave_config_chan_opts() - channel options from a configuration.
 * @cfg:  a configuration.
 * @opts: filled with wave_chan_opts_init() defaults, then the ring sizes,
 *        max_slots, delay_ns, spin_ns, allowed uids and token of @cfg
 *        (the token when it fits WAVE_CHAN_TOKEN_MAX, which the parser
 *        ensures whenever a fabric:// listener is configured; a longer one
 *        is the session's only). The uid array and the token are @cfg's:
 *        keep @cfg alive while @opts is used.
 *
 * Return: 0 or -EINVAL.
 */
WAVE_API int wave_config_chan_opts(const struct wave_config *cfg, struct wave_chan_opts *opts);

/**
 * wave_params_parse() - make plugin parameters from JSON text, without a
 * configuration file (for tests, and programs that configure plugins
 * themselves).
 * @json:  a JSON object, NUL-terminated: "{\"workers\": 4}".
 * @where: the label used in warnings about these parameters
 *         ("domains.custom.params"), or NULL for "params"; also the
 *         error's source (NULL: "<params>").
 * @out:   receives the parameters; free with wave_params_free().
 * @err:   filled on failure (may be NULL), with the line and column in
 *         @json of a syntax error.
 *
 * Return: 0, -EINVAL, -ENOMEM, or -WAVE_ECONFIG (not a JSON object).
 */
WAVE_API WAVE_NODISCARD int wave_params_parse(const char *json, const char *where,
					      struct wave_params **out, struct wave_error *err);

/** wave_params_free() - free parameters made by wave_params_parse(). NULL
 *  is ignored. Do not free a configuration's own parameters. */
WAVE_API void wave_params_free(struct wave_params *params);

#ifdef __cplusplus
}
#endif

#endif /* WAVE_CONFIG_H */
