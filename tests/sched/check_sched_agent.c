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

#include "agent_util.h"
#include "check_run.h"

#define NCPU 2

/* The sched SETUP message (sched_msg.h): the CPU count at offset 0. */
static void sched_setup_encode(uint32_t n_cpus, struct wave_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = WAVE_SCHED_SETUP;
	tagent_put32(m->payload.u8, 0, n_cpus);
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

	tagent_recv(ch, &m);
	ck_assert_int_eq(wave_sched_msg_decode(&m, NCPU, d), 0);
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

	tagent_start(&t, "sched", "sched_fifo", NULL, WAVE_PLUGIN_BUILD_DIR);
	/* A sched event before SETUP. */
	ch = tagent_host_open(&t, WAVE_DOMAIN_SCHED);
	send_sched(ch, &d);
	tagent_expect_dropped(ch);
	/* A second SETUP. */
	ch = tagent_host_open(&t, WAVE_DOMAIN_SCHED);
	send_setup(ch, NCPU);
	send_setup(ch, NCPU);
	tagent_expect_dropped(ch);
	/* A SETUP for no CPU, too many, or with a reserved byte set. */
	ch = tagent_host_open(&t, WAVE_DOMAIN_SCHED);
	send_setup(ch, 0);
	tagent_expect_dropped(ch);
	ch = tagent_host_open(&t, WAVE_DOMAIN_SCHED);
	send_setup(ch, WAVE_SCHED_MAX_CPUS + 1);
	tagent_expect_dropped(ch);
	ch = tagent_host_open(&t, WAVE_DOMAIN_SCHED);
	sched_setup_encode(NCPU, &m);
	m.payload.u8[47] = 1;
	send_msg(ch, &m);
	tagent_expect_dropped(ch);
	tagent_stop(&t);
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

	tagent_start(&t, "sched", "sched_fifo", NULL, WAVE_PLUGIN_BUILD_DIR);
	ch = tagent_host_open(&t, WAVE_DOMAIN_SCHED);
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
	tagent_stop(&t);
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
