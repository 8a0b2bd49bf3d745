/* SPDX-License-Identifier: MIT */
/*
 * Integration: a region four times larger than the fast tier, placed by
 * mem_hemem in a real wave-agentd over shm://. The runtime reports a
 * skewed access pattern (a hot set of an eighth of the chunks, read
 * through wave_mem_report_access(), so only the agent's promotions can
 * bring it into tier 0) and writes chunks now and then (faults bring them
 * back, pressure demotes). The hot set must end up in tier 0 by the
 * agent's promotions, with demotions making room; then the hot set moves,
 * the daemon is killed with SIGKILL while it places the new one, the
 * host keeps writing on its fallback, a new daemon is resynced and places
 * the new hot set. Every byte of every chunk is checked at the end. A
 * second test has threads fault and write while the agent migrates, the
 * daemon killed with SIGKILL in the middle. No timing is asserted: the
 * tests wait for conditions, and Check's timeout only catches a hang.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>

#include <wave/wave.h>

#include "agentd_util.h"
#include "check_run.h"
#include "mem_util.h"

#define CS (64u * KIB)
#define NCH 64u  /* chunks of the region */
#define FAST 16u /* chunks tier 0 holds */
#define HOT 8u   /* chunks of the hot set */

static void env_init(struct agentd *e)
{
	agentd_init(e, "mem-agentd", NULL);
	agentd_write_cfg(e, WAVE_PLUGIN_BUILD_DIR,
			 "{\"mem\": {\"plugin\": \"mem_hemem\","
			 " \"params\": {\"hot_threshold\": 4, \"cooling_threshold\": 32}}}");
}

/* ---- the runtime ---------------------------------------------------------------- */

struct rt {
	struct wave_mem *m;
	char *p;
	uint32_t id;
	uint64_t salt[NCH]; /* the pattern each chunk holds */
	uint64_t rounds;
	struct wave_host_opts ho;
};

static struct wave_mem_stats stats(struct wave_mem *m)
{
	struct wave_mem_stats st;

	ck_assert_int_eq(wave_mem_stats(m, &st), 0);
	return st;
}

static uint32_t tier_of(struct rt *x, uint32_t i)
{
	return chunk_info(x->m, wave_mem_chunk_id(x->id, i)).tier;
}

static void write_chunk(struct rt *x, uint32_t i)
{
	x->salt[i] = x->rounds * NCH + i + 1;
	fill_pattern(x->p + (size_t)i * CS, CS, x->salt[i]);
}

/* A manager of a fast tier of FAST chunks and a far tier, served by the
 * daemon of @e, with one region of NCH chunks, every chunk written. */
static void rt_start(struct rt *x, const struct agentd *e)
{
	struct wave_mem_region_opts ro;
	struct wave_mem_opts o;
	struct wave_error err;
	int ret;

	agentd_host_opts(&x->ho, 2000, 5000);
	mem_opts_init(&o);
	o.n_tiers = 2;
	o.tiers[0].capacity = FAST * CS;
	o.tiers[1] = (struct wave_mem_tier){ WAVE_MEM_TIER_FAR, 0, 0 };
	o.min_resident_ns = 0;
	o.agent_uri = e->uri;
	o.host = &x->ho;
	ret = wave_mem_create(&o, &x->m, &err);
	ck_assert_msg(ret == 0, "wave_mem_create: %s", err.text);
	x->p = anon_map(NCH * CS);
	wave_mem_region_opts_init(&ro);
	ro.chunk_size = CS;
	ck_assert_int_eq(wave_mem_region_register(x->m, x->p, NCH * CS, &ro, &x->id), 0);
	for (uint32_t i = 0; i < NCH; i++)
		write_chunk(x, i);
}

static void say(struct rt *x, const char *what)
{
	struct wave_mem_stats st = stats(x->m);

	fprintf(stderr, "mem_agentd: %s after %llu rounds: %llu decisions, %llu committed, "
		"%llu far faults, %llu fallbacks, %llu resyncs\n", what,
		(unsigned long long)x->rounds, (unsigned long long)st.agent_decisions,
		(unsigned long long)st.committed, (unsigned long long)st.far_faults,
		(unsigned long long)st.agent_fallbacks, (unsigned long long)st.agent_resyncs);
}

/* One round: the hot set [@hot, @hot + HOT) reported used (not touched),
 * one chunk written, then the agent's decisions. */
static void round_once(struct rt *x, uint32_t hot)
{
	const void *a[HOT * 4];
	uint32_t w;

	for (uint32_t k = 0; k < HOT * 4; k++)
		a[k] = x->p + (size_t)(hot + k % HOT) * CS + (k / HOT) * 64;
	ck_assert_int_eq(wave_mem_report_access(x->m, a, HOT * 4), HOT * 4);
	/* Now and then a cold chunk is written (a fault when it is far): few
	 * enough that the sampled hot set stays the hottest. */
	w = (uint32_t)(x->rounds / 16 * 7 % NCH);
	if (x->rounds % 16 == 0 && (w < hot || w >= hot + HOT))
		write_chunk(x, w);
	x->rounds++;
	ck_assert_int_ge(wave_mem_poll(x->m, 2000000), 0);
}

static bool hot_in_fast(struct rt *x, uint32_t hot)
{
	for (uint32_t i = hot; i < hot + HOT; i++)
		if (tier_of(x, i) != 0)
			return false;
	return true;
}

static void wait_agent(struct rt *x, uint64_t agent, uint32_t hot)
{
	while (stats(x->m).agent != agent)
		round_once(x, hot);
	say(x, agent ? "agent in control" : "agent lost");
}

START_TEST(hemem_kill9)
{
	struct agentd e;
	struct rt x = { 0 };
	struct wave_mem_stats st;
	uint64_t committed, decisions;

	env_init(&e);
	agentd_start(&e, WAVE_AGENTD);
	rt_start(&x, &e);
	/* Four times the fast tier: the local policy demotes the rest. */
	ck_assert_int_eq(wave_mem_relieve(x.m), NCH - FAST);
	/* The daemon may still be starting: the host reconnects. */
	wait_agent(&x, 1, 0);
	committed = stats(x.m).committed;

	/* The hot set comes into tier 0 by the agent's promotions only (it
	 * is never touched), and demotions make room for it. */
	while (!hot_in_fast(&x, 0))
		round_once(&x, 0);
	say(&x, "hot set in tier 0");
	st = stats(x.m);
	ck_assert_uint_ge(st.committed - committed, 2 * HOT); /* as many out as in, at least */
	ck_assert_uint_ge(st.agent_decisions, 2 * HOT);
	ck_assert_uint_eq(st.agent_bad, 0);

	/* The hot set moves; once the agent acts on it, it is killed. */
	committed = stats(x.m).committed;
	decisions = stats(x.m).agent_decisions;
	while (stats(x.m).agent_decisions == decisions || stats(x.m).committed == committed)
		round_once(&x, NCH / 2);
	agentd_kill(&e, SIGKILL);
	wait_agent(&x, 0, NCH / 2);
	/* On fallback: every chunk written (faults, the CLOCK under pressure). */
	for (uint32_t i = 0; i < NCH; i++)
		write_chunk(&x, i);
	/* A new daemon is resynced and places the new hot set. */
	agentd_start(&e, WAVE_AGENTD);
	wait_agent(&x, 1, NCH / 2);
	while (!hot_in_fast(&x, NCH / 2))
		round_once(&x, NCH / 2);
	say(&x, "new hot set in tier 0");
	st = stats(x.m);
	/* A loaded machine may lose a live agent too: at least the kill. */
	ck_assert_uint_ge(st.agent_resyncs, 2);
	ck_assert_uint_ge(st.agent_fallbacks, 1);
	ck_assert_uint_eq(st.agent_bad, 0);
	ck_assert_uint_eq(st.tier_used[0] + st.tier_used[1], (uint64_t)NCH * CS);

	/* Every byte of every chunk. */
	for (uint32_t i = 0; i < NCH; i++)
		ck_assert_msg(check_pattern(x.p + (size_t)i * CS, CS, x.salt[i]) == -1,
			      "chunk %u lost a byte", i);
	wave_mem_destroy(x.m);
	munmap(x.p, NCH * CS);
	agentd_fini(&e);
}
END_TEST

/* ---- many threads faulting while the agent migrates ---------------------------- */

#define THREADS 4u

struct worker {
	struct rt *x;
	unsigned k;            /* owns the chunks i with i % THREADS == k */
	_Atomic bool *stop;
	_Atomic uint64_t bad;  /* chunks found holding the wrong bytes */
	uint64_t writes, reads;
	pthread_t t;
};

/* Writes and checks its own chunks at random (each chunk's pattern is
 * written by its owner only, so the owner knows what it must hold), and
 * reports a few of them as used, which changes over time: faults, and
 * the agent's promotions and demotions, all the time. */
static void *work(void *arg)
{
	struct worker *w = arg;
	uint64_t rng = 0x9e3779b97f4a7c15ull * (w->k + 1);

	while (!atomic_load(w->stop)) {
		uint32_t i, hot;
		const void *a[4];

		rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
		i = (uint32_t)(rng % (NCH / THREADS)) * THREADS + w->k;
		if (rng >> 60 < 4) {
			w->x->salt[i] += NCH;
			fill_pattern(w->x->p + (size_t)i * CS, CS, w->x->salt[i]);
			w->writes++;
		} else {
			if (check_pattern(w->x->p + (size_t)i * CS, CS, w->x->salt[i]) != -1)
				atomic_fetch_add(&w->bad, 1);
			w->reads++;
		}
		hot = (uint32_t)((w->writes + w->reads) / 4096);
		for (unsigned k = 0; k < 4; k++) {
			uint32_t c = (hot + k) % (NCH / THREADS) * THREADS + w->k;

			a[k] = w->x->p + (size_t)c * CS;
		}
		ck_assert_int_eq(wave_mem_report_access(w->x->m, a, 4), 4);
	}
	return NULL;
}

/* The main thread polls (carrying the agent's decisions out) until @done. */
static void poll_until(struct rt *x, bool (*done)(struct wave_mem_stats *, uint64_t),
		       uint64_t arg)
{
	struct wave_mem_stats st;

	do
		ck_assert_int_ge(wave_mem_poll(x->m, 1000000), 0);
	while (!done((st = stats(x->m), &st), arg));
}

static bool agent_is(struct wave_mem_stats *st, uint64_t agent)
{
	return st->agent == agent;
}

static bool decisions_past(struct wave_mem_stats *st, uint64_t n)
{
	return st->agent && st->agent_decisions >= n;
}

static bool faults_past(struct wave_mem_stats *st, uint64_t n)
{
	return st->far_faults >= n;
}

/* Threads write and read their chunks, faulting them back, while the
 * agent's decisions migrate chunks under them (on the polling thread)
 * and the fault thread relieves pressure with the agent's victims; the
 * daemon is killed with SIGKILL in the middle of it, the threads go on
 * on the fallback, a new daemon takes over. Every byte of every chunk is
 * checked by its thread all along, and at the end. For ASan and TSan. */
START_TEST(threads_fault_while_agent_migrates)
{
	struct agentd e;
	struct rt x = { 0 };
	struct worker w[THREADS];
	_Atomic bool stop = false;
	struct wave_mem_stats st;
	uint64_t bad = 0;

	env_init(&e);
	agentd_start(&e, WAVE_AGENTD);
	rt_start(&x, &e);
	ck_assert_int_eq(wave_mem_relieve(x.m), NCH - FAST);
	poll_until(&x, agent_is, 1);
	for (unsigned k = 0; k < THREADS; k++) {
		w[k] = (struct worker){ .x = &x, .k = k, .stop = &stop };
		ck_assert_int_eq(pthread_create(&w[k].t, NULL, work, &w[k]), 0);
	}
	/* The agent at work; then killed while it decides. */
	poll_until(&x, decisions_past, stats(x.m).agent_decisions + 200);
	say(&x, "threads: agent deciding");
	agentd_kill(&e, SIGKILL);
	poll_until(&x, agent_is, 0);
	poll_until(&x, faults_past, stats(x.m).far_faults + 100);
	say(&x, "threads: on the fallback");
	agentd_start(&e, WAVE_AGENTD);
	poll_until(&x, decisions_past, stats(x.m).agent_decisions + 200);
	say(&x, "threads: new agent deciding");
	atomic_store(&stop, true);
	for (unsigned k = 0; k < THREADS; k++) {
		pthread_join(w[k].t, NULL);
		bad += atomic_load(&w[k].bad);
		ck_assert_uint_gt(w[k].writes, 0);
	}
	ck_assert_uint_eq(bad, 0);
	st = stats(x.m);
	ck_assert_uint_ge(st.agent_fallbacks, 1);
	ck_assert_uint_eq(st.agent_bad, 0);
	ck_assert_uint_eq(st.tier_used[0] + st.tier_used[1], (uint64_t)NCH * CS);
	for (uint32_t i = 0; i < NCH; i++)
		ck_assert_msg(check_pattern(x.p + (size_t)i * CS, CS, x.salt[i]) == -1,
			      "chunk %u lost a byte", i);
	wave_mem_destroy(x.m);
	munmap(x.p, NCH * CS);
	agentd_fini(&e);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("mem_agentd");
	TCase *tc = tcase_create("agentd");

	tcase_add_test(tc, hemem_kill9);
	tcase_add_test(tc, threads_fault_while_agent_migrates);
	tcase_set_timeout(tc, 300);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return wave_check_run(suite());
}
