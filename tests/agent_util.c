/* SPDX-License-Identifier: MIT */
/* The agent runtime for tests that play the host by hand (agent_util.h). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_util.h"

void tagent_put16(uint8_t *p, unsigned off, uint16_t v)
{
	p[off] = (uint8_t)v;
	p[off + 1] = (uint8_t)(v >> 8);
}

void tagent_put32(uint8_t *p, unsigned off, uint32_t v)
{
	for (unsigned i = 0; i < 4; i++)
		p[off + i] = (uint8_t)(v >> (8 * i));
}

static void *agent_main(void *arg)
{
	ck_assert_int_eq(wave_agent_run(arg), 0);
	return NULL;
}

struct wave_config *tagent_config(const struct tagent *t, const char *domain,
				  const char *plugin, const char *params,
				  const char *plugin_dir)
{
	struct wave_config *cfg = NULL;
	struct wave_error err;
	char text[1024];
	int ret;

	ret = snprintf(text, sizeof(text),
		       "{\"listen\": [\"%s\"], \"plugin_path\": [\"%s\"],"
		       " \"heartbeat\": {\"period_ms\": 1000, \"timeout_ms\": 600000},"
		       " \"domains\": {\"%s\": {\"plugin\": \"%s\", \"params\": %s}}}",
		       t->uri, plugin_dir, domain, plugin, params ? params : "{}");
	ck_assert_int_lt(ret, (int)sizeof(text));
	ret = wave_config_parse(text, strlen(text), NULL, &cfg, &err);
	ck_assert_msg(ret == 0, "%s", err.text);
	return cfg;
}

void tagent_start(struct tagent *t, const char *domain, const char *plugin,
		  const char *params, const char *plugin_dir)
{
	char tmpl[] = "/tmp/wave-agent-XXXXXX";
	struct wave_error err;
	int ret;

	ck_assert_ptr_nonnull(mkdtemp(tmpl));
	snprintf(t->dir, sizeof(t->dir), "%s", tmpl);
	snprintf(t->uri, sizeof(t->uri), "shm://%s/agent.sock", t->dir);
	t->cfg = tagent_config(t, domain, plugin, params, plugin_dir);
	ret = wave_agent_create(t->cfg, &t->a, &err);
	ck_assert_msg(ret == 0, "%s", err.text);
	ck_assert_int_eq(pthread_create(&t->thr, NULL, agent_main, t->a), 0);
}

void tagent_stop(struct tagent *t)
{
	char path[200];

	ck_assert_int_eq(wave_agent_stop(t->a), 0);
	ck_assert_int_eq(pthread_join(t->thr, NULL), 0);
	wave_agent_destroy(t->a);
	wave_config_free(t->cfg);
	snprintf(path, sizeof(path), "%s/agent.sock", t->dir);
	unlink(path);
	rmdir(t->dir);
}

struct wave_chan *tagent_host_open(const struct tagent *t, unsigned domain)
{
	struct wave_msg m[1];
	struct wave_chan *ch;
	int got;

	ck_assert_int_eq(wave_chan_open(t->uri, NULL, &ch), 0);
	memset(m, 0, sizeof(m));
	m[0].type = CTL_HELLO;
	tagent_put16(m[0].payload.u8, 0, WAVE_SESSION_PROTO_MAJOR);
	tagent_put16(m[0].payload.u8, 2, WAVE_SESSION_PROTO_MINOR);
	tagent_put16(m[0].payload.u8, 4, 1); /* role: host */
	tagent_put32(m[0].payload.u8, 8, WAVE_HOST_DOMAIN(domain));
	tagent_put32(m[0].payload.u8, 12, 100); /* heartbeat period, ms */
	ck_assert_int_eq(wave_chan_send_burst(ch, m, 1), 1);
	for (;;) {
		got = wave_chan_recv_burst(ch, m, 1);
		ck_assert_int_ge(got, 0);
		if (got == 1 && m[0].type == CTL_WELCOME)
			return ch;
		ck_assert(got == 0 || m[0].type == CTL_HEARTBEAT);
		wave_chan_wait(ch, 1000000);
	}
}

void tagent_recv(struct wave_chan *ch, struct wave_msg *m)
{
	int got;

	for (;;) {
		got = wave_chan_recv_burst(ch, m, 1);
		ck_assert_int_ge(got, 0);
		if (got == 1 && m->type != CTL_HEARTBEAT)
			return;
		wave_chan_wait(ch, 1000000);
	}
}

void tagent_expect_dropped(struct wave_chan *ch)
{
	struct wave_msg m;
	int got;

	while ((got = wave_chan_recv_burst(ch, &m, 1)) >= 0) {
		ck_assert(got == 0 || m.type == CTL_HEARTBEAT);
		wave_chan_wait(ch, 1000000);
	}
	ck_assert_int_eq(got, -WAVE_ECLOSED);
	wave_chan_close(ch);
}
