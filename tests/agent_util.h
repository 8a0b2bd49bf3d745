/* SPDX-License-Identifier: MIT */
/*
 * An agent runtime for tests that play the host by hand: wave_agent_run()
 * on a thread of the test, listening on a fresh shm:// socket, and a host
 * end that speaks the session protocol byte by byte as docs/sessions.md
 * gives it (not through libwave's session code, which is what is tested).
 */
#ifndef WAVE_TESTS_AGENT_UTIL_H
#define WAVE_TESTS_AGENT_UTIL_H

#include <pthread.h>
#include <stdint.h>

#include <wave/wave.h>

/* Session control types, as docs/sessions.md gives them: the scripted
 * host writes the bytes itself. */
#define CTL_HELLO 0x0001
#define CTL_WELCOME 0x0003
#define CTL_HEARTBEAT 0x0005

struct tagent {
	char dir[64];
	char uri[128];
	struct wave_config *cfg;
	struct wave_agent *a;
	pthread_t thr;
};

/* The configuration of an agent on @t's socket serving domain @domain
 * ("sched", "mem", ...) with plugin @plugin and its @params (JSON; NULL:
 * none) from @plugin_dir; the heartbeat timeout is long (scripted hosts
 * are slow). */
struct wave_config *tagent_config(const struct tagent *t, const char *domain,
				  const char *plugin, const char *params,
				  const char *plugin_dir);
/* Makes @t's directory and socket name, then runs that agent. */
void tagent_start(struct tagent *t, const char *domain, const char *plugin,
		  const char *params, const char *plugin_dir);
void tagent_stop(struct tagent *t);

/* A host end of @domain (enum wave_domain): channel open, HELLO sent,
 * WELCOME read (heartbeats before it skipped). */
struct wave_chan *tagent_host_open(const struct tagent *t, unsigned domain);

/* The next message that is not a heartbeat, into @m. */
void tagent_recv(struct wave_chan *ch, struct wave_msg *m);
/* The agent drops the host: its end of the channel closes (only
 * heartbeats come before); closes @ch. */
void tagent_expect_dropped(struct wave_chan *ch);

/* Little-endian stores into a payload, as the wire documents them. */
void tagent_put16(uint8_t *p, unsigned off, uint16_t v);
void tagent_put32(uint8_t *p, unsigned off, uint32_t v);

#endif
