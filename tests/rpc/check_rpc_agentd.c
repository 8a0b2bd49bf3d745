/* SPDX-License-Identifier: MIT */
/*
 * Integration: a steering table driven by rpc_rebalance in a real
 * wave-agentd over shm://, with lookups running on other threads all the
 * time. The daemon is killed with SIGKILL mid-run: the host must go to
 * fallback with its table whole (every entry on a live worker, every
 * lookup answered), keep working (a worker removed meanwhile has its
 * buckets moved), and resync a restarted daemon, which then decides again.
 * No timing is asserted: the test waits for conditions, and Check's
 * timeout only catches a hang.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>

#include <wave/wave.h>

#include "agentd_util.h"
#include "check_run.h"

#define NB 64
#define NW 4

static void env_init(struct agentd *e)
{
	agentd_init(e, "rpc-agentd", NULL);
	agentd_write_cfg(e, WAVE_PLUGIN_BUILD_DIR,
			 "{\"rpc\": {\"plugin\": \"rpc_rebalance\", \"params\": {\"max_moves\": 4}}}");
}

/* ---- lookups on other threads ----------------------------------------------- */

struct lookups {
	struct wave_rpc *r;
	atomic_bool stop;
	atomic_ulong done, bad;
};

/* Every lookup must name a worker: the table always has one per entry
 * once the first worker is there (before any reader starts). */
static void *reader(void *arg)
{
	struct lookups *x = arg;
	uint64_t h = 0;

	while (!atomic_load(&x->stop)) {
		int w = wave_rpc_arrive(x->r, h++ * 0x9e3779b97f4a7c15ull);

		if (w < 0 || w >= NW)
			atomic_fetch_add(&x->bad, 1);
		atomic_fetch_add(&x->done, 1);
		if ((h & 1023) == 0)
			sched_yield(); /* two cores are shared with the agent */
	}
	return NULL;
}

/* ---- the simulated load ---------------------------------------------------------- */

/* One period: each worker busy for what its buckets brought (bucket 0 and
 * 1 are heavy flows), then wait a little for the agent. */
static void period(struct wave_rpc *r)
{
	uint64_t busy[NW] = { 0 };
	uint32_t t[NB];

	ck_assert_int_eq(wave_rpc_table(r, 0, NB, t, NULL), 0);
	for (uint32_t b = 0; b < NB; b++) {
		ck_assert_uint_lt(t[b], NW);
		busy[t[b]] += b < 2 ? 200000 : 10000;
	}
	for (uint32_t w = 0; w < NW; w++) {
		struct wave_rpc_load l = { .size = sizeof(l), .busy_ns = busy[w],
					   .completions = busy[w] / 1000 + 1,
					   .service_ns = busy[w] };

		ck_assert_int_eq(wave_rpc_worker_load(r, w, &l), 0);
	}
	ck_assert_int_ge(wave_rpc_flush(r), -EAGAIN);
	ck_assert_int_ge(wave_rpc_poll(r, WAVE_MS(2)), 0);
}

/* Every entry on a live worker (@gone is not). */
static void table_whole(struct wave_rpc *r, uint32_t gone)
{
	uint32_t t[NB];

	ck_assert_int_eq(wave_rpc_table(r, 0, NB, t, NULL), 0);
	for (uint32_t b = 0; b < NB; b++) {
		ck_assert_uint_lt(t[b], NW);
		ck_assert_uint_ne(t[b], gone);
	}
}

static uint32_t buckets_of(struct wave_rpc *r, uint32_t w)
{
	uint32_t t[NB], n = 0;

	ck_assert_int_eq(wave_rpc_table(r, 0, NB, t, NULL), 0);
	for (uint32_t b = 0; b < NB; b++)
		n += t[b] == w;
	return n;
}

static void wait_mode(struct wave_rpc *r, int mode)
{
	while (wave_rpc_mode(r) != mode)
		period(r);
}

START_TEST(agent_killed_while_lookups_run)
{
	struct lookups x = { 0 };
	struct wave_host_opts ho;
	struct wave_rpc_opts o;
	struct wave_rpc_stats st;
	struct wave_error err;
	pthread_t thr[2];
	struct agentd e;
	uint64_t committed;
	int ret;

	env_init(&e);
	agentd_start(&e, WAVE_AGENTD);
	agentd_host_opts(&ho, 500, 10000);
	wave_rpc_opts_init(&o);
	o.n_buckets = NB;
	o.max_workers = NW;
	o.report_us = 60000000; /* each period is closed by the test */
	o.host = &ho;
	ret = wave_rpc_create(e.uri, &o, &x.r, &err);
	ck_assert_msg(ret == 0, "%s: %s", wave_strerror(ret), err.text);
	for (uint32_t w = 0; w < NW; w++)
		ck_assert_int_eq(wave_rpc_worker_add(x.r, w, -1), 0);
	for (unsigned i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&thr[i], NULL, reader, &x), 0);

	/* The daemon may still be starting: the host reconnects. */
	wait_mode(x.r, WAVE_HOST_AGENT);
	while (buckets_of(x.r, 3) == 0) /* the rebalancer spreads worker 0's */
		period(x.r);

	agentd_kill(&e, SIGKILL);
	wait_mode(x.r, WAVE_HOST_FALLBACK);
	table_whole(x.r, NW);
	/* On fallback the host still removes workers safely. */
	ck_assert_int_eq(wave_rpc_worker_remove(x.r, 1), 0);
	table_whole(x.r, 1);
	period(x.r);

	agentd_start(&e, WAVE_AGENTD);
	wait_mode(x.r, WAVE_HOST_AGENT);
	ck_assert_int_eq(wave_rpc_stats(x.r, &st), 0);
	ck_assert_uint_ge(st.resyncs, 2);
	committed = st.committed;
	/* The new agent learnt the table from the resync and decides again:
	 * a worker added now, with no bucket, gets some. */
	ck_assert_int_eq(wave_rpc_worker_add(x.r, 1, -1), 0);
	while (buckets_of(x.r, 1) == 0)
		period(x.r);
	ck_assert_int_eq(wave_rpc_stats(x.r, &st), 0);
	ck_assert_uint_gt(st.committed, committed);
	ck_assert_uint_eq(st.bad_decisions, 0);
	table_whole(x.r, NW);

	atomic_store(&x.stop, true);
	for (unsigned i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_join(thr[i], NULL), 0);
	ck_assert_uint_gt(atomic_load(&x.done), 0);
	ck_assert_uint_eq(atomic_load(&x.bad), 0);
	wave_rpc_destroy(x.r);
	agentd_fini(&e);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("rpc_agentd");
	TCase *tc = tcase_create("agentd");

	tcase_add_test(tc, agent_killed_while_lookups_run);
	suite_add_tcase(s, tc);
	return wave_check_run(s);
}
