/* SPDX-License-Identifier: MIT */
/*
 * Every key of the configuration file, with its type, unit, range and
 * default: the one table the strict parser (config.c) walks for the keys
 * each object may hold, their ranges and their defaults, and the one the
 * wave.conf(5) manual page is generated from, so that neither can drift
 * from the other.
 */
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core.h"
#include "config_impl.h"

#define F(field) offsetof(struct wave_config, field), sizeof(((struct wave_config *)0)->field)
#define FD(field)                                                              \
	offsetof(struct wave_config_domain, field),                            \
		sizeof(((struct wave_config_domain *)0)->field)
#define NOFIELD 0, 0

/* The order within a section is the order of its keys in error messages
 * and in the manual. */
static const struct wave_cfg_key keys[] = {
	{ "", "version", CFG_UINT, "integer", NULL, 1, 1, 0, 0, 1, NOFIELD, "1",
	  "The schema version; 1 is the only one." },
	{ "", "listen", CFG_ARRAY, "array of strings", NULL, 1, 16, 0, 0, 0, NOFIELD, "none",
	  "Distinct URIs the agent listens on, scheme://rest (shm://, file://, fabric://). "
	  "A shm:// socket path is absolute and at most 107 bytes, what a Unix socket "
	  "address holds. The daemon needs at least one." },
	{ "", "cpus", CFG_ARRAY, "array of integers", "CPU numbers", 1, 1024, 0, 1023, 0, NOFIELD,
	  "any CPU",
	  "Distinct CPUs every thread of the agent runs on; wave-agentd also checks that "
	  "they are online." },
	{ "", "heartbeat", CFG_OBJECT, "object", NULL, 0, 0, 0, 0, 0, NOFIELD, "",
	  "How often the agent and its hosts prove they are alive." },
	{ "", "channel", CFG_OBJECT, "object", NULL, 0, 0, 0, 0, 0, NOFIELD, "",
	  "The rings of each host's channel." },
	{ "", "auth", CFG_OBJECT, "object", NULL, 0, 0, 0, 0, 0, NOFIELD, "",
	  "Who may connect." },
	{ "", "plugin_path", CFG_ARRAY, "array of strings", NULL, 1, 64, 1, PATH_MAX - 1, 0, NOFIELD,
	  "none",
	  "Directories searched for plugins first; a relative one is relative to the "
	  "directory of the configuration file." },
	{ "", "domains", CFG_OBJECT, "object", NULL, 0, 0, 0, 0, 0, NOFIELD, "none",
	  "One entry per domain the agent serves, named after it." },
	{ "", "stats_socket", CFG_STRING, "string", "bytes", 1, 107, 0, 0, 0, NOFIELD,
	  "no socket",
	  "An absolute path where the agent serves its statistics on a Unix socket of mode "
	  "0600, read by wave-stat(1). It cannot change on a reload." },
	{ "", "metrics", CFG_OBJECT, "object", NULL, 0, 0, 0, 0, 0, NOFIELD, "no endpoint",
	  "wave-agentd serves its statistics over HTTP in the Prometheus text format at "
	  "/metrics when this object is present. It cannot change on a reload." },
	{ "", "max_hosts", CFG_UINT, "integer", "hosts", 1, 1000000, 0, 0, 1024, F(max_hosts),
	  "1024",
	  "Hosts the agent serves at once; one more is refused (\"agent full\") and retries "
	  "with its backoff. Each shm:// host holds 4 file descriptors of the agent: "
	  "wave-agentd raises its soft RLIMIT_NOFILE to the hard limit." },
	{ "", "record", CFG_OBJECT, "object", NULL, 0, 0, 0, 0, 0, NOFIELD, "no recording",
	  "The agent records, per host and domain, every event, outcome and decision into "
	  "decision traces (wave-replay(1)) when this object is present; SIGUSR2 turns it "
	  "on and off." },

	{ "heartbeat", "period_ms", CFG_UINT, "integer", "ms", 1, 60000, 0, 0, 100,
	  F(heartbeat_period_ms), "100", "How often each end sends a heartbeat." },
	{ "heartbeat", "timeout_ms", CFG_UINT, "integer", "ms", 2, 600000, 0, 0, 1000,
	  F(heartbeat_timeout_ms), "1000",
	  "Silence after which a peer is dead; longer than the period." },

	{ "channel", "host_to_agent_slots", CFG_SLOTS, "integer", "slots", WAVE_CHAN_MIN_SLOTS, WAVE_CHAN_MAX_SLOTS, 0, 0, 1024,
	  F(host_to_agent_slots), "1024",
	  "Ring size from host to agent: a power of two, at most max_slots." },
	{ "channel", "agent_to_host_slots", CFG_SLOTS, "integer", "slots", WAVE_CHAN_MIN_SLOTS, WAVE_CHAN_MAX_SLOTS, 0, 0, 1024,
	  F(agent_to_host_slots), "1024",
	  "Ring size from agent to host: a power of two, at most max_slots." },
	{ "channel", "max_slots", CFG_SLOTS, "integer", "slots", WAVE_CHAN_MIN_SLOTS, WAVE_CHAN_MAX_SLOTS, 0, 0,
	  WAVE_CHAN_MAX_SLOTS,
	  F(max_slots), "65536",
	  "The largest ring a host may ask for: a power of two, at least both ring sizes "
	  "(their defaults too)." },
	{ "channel", "delay_ns", CFG_UINT, "integer", "ns", 0, 1000000000, 0, 0, 0, F(delay_ns),
	  "0", "Latency emulation, added at the reader." },
	{ "channel", "spin_ns", CFG_UINT, "integer", "ns", 0, 1000000000, 0, 0, 20000, F(spin_ns),
	  "20000", "How long a wait polls before it sleeps." },

	{ "auth", "allow_uids", CFG_ARRAY, "array of integers", "uids", 1, 4096, 0, 4294967294u,
	  0, NOFIELD, "the agent's own uid",
	  "The uids whose hosts a shm:// or file:// listener accepts." },
	{ "auth", "token", CFG_STRING, "string", "bytes", 1, 256, 0, 0, 0, NOFIELD, "none",
	  "The secret every host presents; at most 64 bytes when a listen URI is fabric://, "
	  "whose channels check it too." },

	{ "metrics", "port", CFG_UINT, "integer", NULL, 0, 65535, 0, 0, 0, F(metrics_port),
	  "required", "The TCP port of the endpoint; 0 takes any free port, which the "
	  "daemon prints when it starts." },
	{ "metrics", "address", CFG_STRING, "string", NULL, 1, 45, 0, 0, 0, NOFIELD, "127.0.0.1",
	  "A numeric IPv4 or IPv6 address to listen on. The statistics are not secret but "
	  "tell how busy the machine is: keep the loopback default unless a firewall "
	  "guards the port." },

	{ "record", "path", CFG_STRING, "string", "bytes", 1, 4000, 0, 0, 0, NOFIELD, "required",
	  "An absolute directory the agent can write to; one file per host and domain, "
	  "wave-<pid>-host<id>-<domain>.trace, mode 0600." },
	{ "record", "max_bytes", CFG_UINT, "integer", "bytes", 1u << 20, 1ull << 40, 0, 0,
	  64u << 20, F(record.max_bytes), "67108864", "One trace file's cap." },
	{ "record", "max_files", CFG_UINT, "integer", "files", 1, 1000000, 0, 0, 1000,
	  F(record_max_files), "1000",
	  "Trace files the directory keeps, rotated ones included: before a trace starts, "
	  "the oldest that no recording of this agent is writing are deleted. Give each "
	  "agent a directory of its own." },
	{ "record", "rotate", CFG_UINT, "integer", "files", 0, 1000, 0, 0, 2, F(record.rotate),
	  "2", "Older files kept per host and domain (.1 the newest); 0: a file stops growing "
	  "at the cap." },
	{ "record", "enabled", CFG_ANY, "boolean", NULL, 0, 0, 0, 0, 0, NOFIELD, "true",
	  "Record from the start; false: only once SIGUSR2 turns recording on." },
	{ "record", "ring", CFG_SLOTS, "integer", "records", 64, 1u << 24, 0, 0, 16384,
	  F(record.ring), "16384",
	  "Records the agent hands each trace's writer thread without waiting (a power of "
	  "two, 64 bytes each); a record that finds it full is lost, counted, and the trace "
	  "says where." },
	{ "record", "writer_cpu", CFG_UINT, "integer", "CPU number", 0, 1023, 0, 0, 0, NOFIELD,
	  "any of the agent's",
	  "The CPU the trace writer threads run on; give them one other than the agent "
	  "loop's, or they take its time." },

	{ "domains.<d>", "plugin", CFG_STRING, "string", NULL, 1, PATH_MAX - 1, 0, 0, 0, NOFIELD,
	  "required",
	  "The plugin: a name (letters, digits and _, at most 63), found as wave_<name>.so "
	  "on the search path, or a path containing a /." },
	{ "domains.<d>", "params", CFG_ANY, "object", NULL, 0, 0, 0, 0, 0, NOFIELD, "{}",
	  "The plugin's parameters: any object, read by the plugin." },
	{ "domains.<d>", "tick_us", CFG_UINT, "integer", "us", 1, 60000000, 0, 0, 0, FD(tick_us),
	  "no tick",
	  "The period of the plugin's on_tick. Refused for sched and mem, whose plugins are "
	  "ticked by their hosts (mem: the hosts' TICK events)." },
};

const struct wave_cfg_key *wave_cfg_keys(size_t *n)
{
	*n = WAVE_ARRAY_SIZE(keys);
	return keys;
}

const struct wave_cfg_key *wave_cfg_key(const char *section, const char *name)
{
	for (size_t i = 0; i < WAVE_ARRAY_SIZE(keys); i++)
		if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

void wave_cfg_defaults(struct wave_config *cfg)
{
	for (size_t i = 0; i < WAVE_ARRAY_SIZE(keys); i++) {
		const struct wave_cfg_key *k = &keys[i];

		/* A domain's fields are zero until the file names the domain. */
		if (k->size == 0 || strncmp(k->section, "domains", 7) == 0)
			continue;
		if (k->size == sizeof(uint32_t)) {
			uint32_t v = (uint32_t)k->def;
			memcpy((char *)cfg + k->offset, &v, sizeof(v));
		} else {
			memcpy((char *)cfg + k->offset, &k->def, sizeof(k->def));
		}
	}
}
