/* SPDX-License-Identifier: MIT */
/*
 * The agent runtime's sched domain against a scripted host: a real agent
 * (wave_agent_run() on a thread, sched_fifo) and a host end written by the
 * test, message by message, to check the SETUP rule and that bad sched
 * messages are counted, not fatal, while protocol violations drop the host.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include <wave/wave.h>

#include "check_run.h"

#define NCPU 2

/* Session control types and the hello's layout, as docs/sessions.md
 * gives them: the scripted host writes the bytes itself. */
#define CTL_HELLO 0x0001
#define CTL_WELCOME 0x0003
#define CTL_HEARTBEAT 0x0005

static void put16(uint8_t *p, unsigned off, uint16_t v)
{
	p[off] = (uint8_t)v;
	p[off + 1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, unsigned off, uint32_t v)
{
	for (unsigned i = 0; i < 4; i++)
		p[off + i] = (uint8_t)(v >> (8 * i));
}

/* The sched SETUP message (sched_msg.h): the CPU count at offset 0. */
static void sched_setup_encode(uint32_t n_cpus, struct wave_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = WAVE_SCHED_SETUP;
	put32(m->payload.u8, 0, n_cpus);
}

struct tagent {
	char dir[64];
	char uri[128];
	struct wave_config *cfg;
	struct wave_agent *a;
	pthread_t thr;
};

static void *agent_main(void *arg)
{
	ck_assert_int_eq(wave_agent_run(arg), 0);
	return NULL;
}

static void agent_start(struct tagent *t)
{
	char tmpl[] = "/tmp/wave-sched-agent-XXXXXX", text[512];
	struct wave_error err;
	int ret;

	ck_assert_ptr_nonnull(mkdtemp(tmpl));
	snprintf(t->dir, sizeof(t->dir), "%s", tmpl);
	snprintf(t->uri, sizeof(t->uri), "shm://%s/agent.sock", t->dir);
	snprintf(text, sizeof(text),
		 "{\"listen\": [\"%s\"], \"plugin_path\": [\"%s\"],"
		 " \"heartbeat\": {\"period_ms\": 1000, \"timeout_ms\": 600000},"
		 " \"domains\": {\"sched\": {\"plugin\": \"sched_fifo\"}}}",
		 t->uri, WAVE_PLUGIN_BUILD_DIR);
	ret = wave_config_parse(text, strlen(text), NULL, &t->cfg, &err);
	ck_assert_msg(ret == 0, "%s", err.text);
	ret = wave_agent_create(t->cfg, &t->a, &err);
	ck_assert_msg(ret == 0, "%s", err.text);
	ck_assert_int_eq(pthread_create(&t->thr, NULL, agent_main, t->a), 0);
}

static void agent_stop(struct tagent *t)
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

/* A host end: channel open, hello sent, welcome read. */
static struct wave_chan *host_open(const struct tagent *t)
{
	struct wave_msg m[1];
	struct wave_chan *ch;
	int got;

	ck_assert_int_eq(wave_chan_open(t->uri, NULL, &ch), 0);
	memset(m, 0, sizeof(m));
	m[0].type = CTL_HELLO;
	put16(m[0].payload.u8, 0, WAVE_SESSION_PROTO_MAJOR);
	put16(m[0].payload.u8, 2, WAVE_SESSION_PROTO_MINOR);
	put16(m[0].payload.u8, 4, 1); /* role: host */
	put32(m[0].payload.u8, 8, WAVE_HOST_DOMAIN(WAVE_DOMAIN_SCHED));
	put32(m[0].payload.u8, 12, 100); /* heartbeat period, ms */
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

static void send_msg(struct wave_chan *ch, const struct wave_msg *m)
{
	ck_assert_int_eq(wave_chan_send_burst(ch, m, 1), 1);
}

static void send_sched(struct wave_chan *ch, const struct wave_sched_msg *d)
{
	struct wave_msg m;

	ck_assert_int_eq(wave_sched_msg_encode(d, NCPU, &m), 0);
	send_msg(ch, &m);
}

static void send_setup(struct wave_chan *ch, uint32_t n)
{
	struct wave_msg m;

	sched_setup_encode(n, &m);
	send_msg(ch, &m);
}

/* The next sched decision, skipping heartbeats. */
static void recv_decision(struct wave_chan *ch, struct wave_sched_msg *d)
{
	struct wave_msg m;
	int got;

	for (;;) {
		got = wave_chan_recv_burst(ch, &m, 1);
		ck_assert_int_ge(got, 0);
		if (got == 1 && m.type != CTL_HEARTBEAT) {
			ck_assert_int_eq(wave_sched_msg_decode(&m, NCPU, d), 0);
			return;
		}
		wave_chan_wait(ch, 1000000);
	}
}

/* The agent drops the host: its end of the channel closes. */
static void expect_dropped(struct wave_chan *ch)
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

static struct wave_sched_msg task_new(uint64_t id, uint64_t seq)
{
	struct wave_sched_msg d = { .type = WAVE_SCHED_TASK_NEW, .task = id, .seq = seq,
				    .state = WAVE_SCHED_RUNNABLE, .cpu = WAVE_SCHED_CPU_NONE };

	return d;
}

/* The number after "@key": in @json, or -1. */
static long long json_num(const char *json, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(json, pat);
	return p ? strtoll(p + strlen(pat), NULL, 10) : -1;
}

START_TEST(setup_rules)
{
	struct tagent t;
	struct wave_sched_msg d = task_new(1, 1);
	struct wave_chan *ch;
	struct wave_msg m;

	agent_start(&t);
	/* A sched event before SETUP. */
	ch = host_open(&t);
	send_sched(ch, &d);
	expect_dropped(ch);
	/* A second SETUP. */
	ch = host_open(&t);
	send_setup(ch, NCPU);
	send_setup(ch, NCPU);
	expect_dropped(ch);
	/* A SETUP for no CPU, too many, or with a reserved byte set. */
	ch = host_open(&t);
	send_setup(ch, 0);
	expect_dropped(ch);
	ch = host_open(&t);
	send_setup(ch, WAVE_SCHED_MAX_CPUS + 1);
	expect_dropped(ch);
	ch = host_open(&t);
	sched_setup_encode(NCPU, &m);
	m.payload.u8[47] = 1;
	send_msg(ch, &m);
	expect_dropped(ch);
	agent_stop(&t);
}
END_TEST

/* A served host: decisions come back; bad events are refused and counted,
 * and the host is still served afterwards. */
START_TEST(bad_events_counted)
{
	struct tagent t;
	struct wave_sched_msg d = task_new(1, 1), r;
	struct wave_chan *ch;
	struct wave_msg m;
	char *json;

	agent_start(&t);
	ch = host_open(&t);
	send_setup(ch, NCPU);
	send_sched(ch, &d);
	recv_decision(ch, &r);
	ck_assert_uint_eq(r.type, WAVE_SCHED_RUN);
	ck_assert_uint_eq(r.task, 1);
	ck_assert_uint_eq(r.seq, 1);
	ck_assert_uint_lt(r.cpu, NCPU);
	/* Refused: a second new for task 1, a wakeup of an unknown task, a
	 * reserved byte set, a decision type (only agents send those). */
	send_sched(ch, &d);
	d.type = WAVE_SCHED_TASK_WAKEUP;
	d.task = 77;
	d.seq = 2;
	d.state = 0;
	send_sched(ch, &d);
	sched_setup_encode(NCPU, &m);
	m.type = WAVE_SCHED_TASK_WAKEUP;
	m.payload.u8[47] = 1;
	send_msg(ch, &m);
	memset(&m, 0, sizeof(m));
	m.type = WAVE_SCHED_RUN;
	send_msg(ch, &m);
	/* Still served: task 2 runs on the other CPU. */
	d = task_new(2, 3);
	send_sched(ch, &d);
	recv_decision(ch, &r);
	ck_assert_uint_eq(r.type, WAVE_SCHED_RUN);
	ck_assert_uint_eq(r.task, 2);
	ck_assert_int_eq(wave_agent_stats_json(t.a, &json), 0);
	ck_assert_msg(json_num(json, "events_refused") == 4, "%s", json);
	ck_assert_msg(json_num(json, "errors") == 4, "%s", json);
	free(json);
	wave_chan_close(ch);
	agent_stop(&t);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("sched_agent");
	TCase *tc = tcase_create("runtime");

	tcase_add_test(tc, setup_rules);
	tcase_add_test(tc, bad_events_counted);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return wave_check_run(suite());
}
