/* SPDX-License-Identifier: MIT */
/*
 * The agent runtime's mem domain against a scripted host: a real agent
 * (wave_agent_run() on a thread, mem_hemem) and a host end written by the
 * test, message by message: the SETUP rule, a decision that comes back
 * for a chunk made hot, its outcome counted, and bad mem events counted,
 * not fatal.
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

#define NT 2u /* tiers */

static void send_mem(struct wave_chan *ch, const struct wave_mem_msg *d)
{
	struct wave_msg m;

	ck_assert_int_eq(wave_mem_msg_encode(d, NT, &m), 0);
	ck_assert_int_eq(wave_chan_send_burst(ch, &m, 1), 1);
}

/* SETUP: tier 0 of 4 chunks, tier 1 NUMA without a limit. */
static struct wave_mem_msg setup_msg(void)
{
	struct wave_mem_msg d = { .type = WAVE_MEM_SETUP, .n = NT,
				  .kind = { WAVE_MEM_KIND_NUMA, WAVE_MEM_KIND_NUMA },
				  .capacity = { 4, WAVE_MEM_CAP_NONE } };

	return d;
}

/* The next mem decision, skipping heartbeats. */
static void recv_decision(struct wave_chan *ch, struct wave_mem_msg *d)
{
	struct wave_msg m;

	tagent_recv(ch, &m);
	ck_assert_int_eq(wave_mem_msg_decode(&m, NT, d), 0);
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
	struct wave_mem_msg s = setup_msg(), tick = { .type = WAVE_MEM_TICK, .now_ns = 1 };
	struct wave_chan *ch;
	struct wave_msg m;
	struct tagent t;

	tagent_start(&t, "mem", "mem_hemem", NULL, WAVE_PLUGIN_BUILD_DIR);
	/* A mem event before SETUP. */
	ch = tagent_host_open(&t, WAVE_DOMAIN_MEM);
	send_mem(ch, &tick);
	tagent_expect_dropped(ch);
	/* A second SETUP. */
	ch = tagent_host_open(&t, WAVE_DOMAIN_MEM);
	send_mem(ch, &s);
	send_mem(ch, &s);
	tagent_expect_dropped(ch);
	/* A SETUP with a reserved byte set. */
	ch = tagent_host_open(&t, WAVE_DOMAIN_MEM);
	ck_assert_int_eq(wave_mem_msg_encode(&s, NT, &m), 0);
	m.payload.u8[47] = 1;
	ck_assert_int_eq(wave_chan_send_burst(ch, &m, 1), 1);
	tagent_expect_dropped(ch);
	tagent_stop(&t);
}
END_TEST

/* A served host: a chunk sampled hot is promoted at the next tick; its
 * outcome is counted; bad events are refused and counted, and the host is
 * still served afterwards. */
START_TEST(served)
{
	struct wave_mem_msg s = setup_msg(), d, r;
	struct wave_chan *ch;
	struct tagent t;
	char *json;

	tagent_start(&t, "mem", "mem_hemem", NULL, WAVE_PLUGIN_BUILD_DIR);
	ch = tagent_host_open(&t, WAVE_DOMAIN_MEM);
	send_mem(ch, &s);
	d = (struct wave_mem_msg){ .type = WAVE_MEM_REGION_ADD, .region = 3, .count = 16,
				   .chunk_size = 4096, .tier = 1, .seq = 1 };
	send_mem(ch, &d);
	d = (struct wave_mem_msg){ .type = WAVE_MEM_SAMPLES, .region = 3, .n = 1, .index = { 7 },
				   .accesses = { 9 } };
	send_mem(ch, &d);
	d = (struct wave_mem_msg){ .type = WAVE_MEM_TICK, .now_ns = 1000 };
	send_mem(ch, &d);
	recv_decision(ch, &r);
	ck_assert_uint_eq(r.type, WAVE_MEM_MIGRATE);
	ck_assert_uint_eq(r.chunk, (3ull << 32) | 7);
	ck_assert_uint_eq(r.seq, 1);
	ck_assert_uint_eq(r.tier, 0);
	d = (struct wave_mem_msg){ .type = WAVE_MEM_OUTCOME, .decision = WAVE_MEM_MIGRATE,
				   .chunk = r.chunk, .seq = 1, .new_seq = 2, .tier = 0 };
	send_mem(ch, &d);
	/* Refused: the region again, a chunk it does not have. */
	d = (struct wave_mem_msg){ .type = WAVE_MEM_REGION_ADD, .region = 3, .count = 1,
				   .chunk_size = 4096 };
	send_mem(ch, &d);
	d = (struct wave_mem_msg){ .type = WAVE_MEM_CHUNK_CHANGED, .chunk = (3ull << 32) | 16,
				   .seq = 5 };
	send_mem(ch, &d);
	/* Still served: another hot chunk, another promotion. */
	d = (struct wave_mem_msg){ .type = WAVE_MEM_SAMPLES, .region = 3, .n = 1, .index = { 2 },
				   .accesses = { 12 } };
	send_mem(ch, &d);
	d = (struct wave_mem_msg){ .type = WAVE_MEM_TICK, .now_ns = 2000 };
	send_mem(ch, &d);
	recv_decision(ch, &r);
	ck_assert_uint_eq(r.type, WAVE_MEM_MIGRATE);
	ck_assert_uint_eq(r.chunk, (3ull << 32) | 2);
	ck_assert_int_eq(wave_agent_stats_json(t.a, &json), 0);
	ck_assert_msg(json_num(json, "events_refused") == 2, "%s", json);
	ck_assert_msg(json_num(json, "txn_committed") == 1, "%s", json);
	free(json);
	wave_chan_close(ch);
	tagent_stop(&t);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("mem_agent");
	TCase *tc = tcase_create("runtime");

	tcase_add_test(tc, setup_rules);
	tcase_add_test(tc, served);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return wave_check_run(suite());
}
