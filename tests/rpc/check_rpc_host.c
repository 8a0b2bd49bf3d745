/* SPDX-License-Identifier: MIT */
/*
 * The host side of the rpc domain (include/wave/rpc.h) against a scripted
 * agent: a real channel and session handshake, whose decisions the test
 * writes one by one, so that every transaction outcome and its reason,
 * worker removal, reports, the switch to fallback and the resync are
 * checked message by message. Plus the steering table under concurrent
 * lookups and changes (run it under TSan: the tsan preset does). Nothing
 * here depends on timing: the test waits for messages, and Check's
 * timeout only catches a hang.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include <wave/wave.h>

#include "check_run.h"
#include "script_welcome.h"
#include "session/proto.h"

#define NB 16 /* flow buckets */
#define NC 2  /* classes */
#define NE (NB + NC)
#define NW 4 /* worker numbers */
#define ND 2 /* dispatchers */

static const struct wave_rpc_dims D = { NB, NC, NW, ND };

/* The agent's end: a listener and the one channel of the host. */
struct sagent {
	char dir[64];
	char uri[128];
	struct wave_chan_listener *l;
	struct wave_chan *ch;
	pthread_t thr;
	struct wave_rpc *r; /* polled while the agent waits for messages */
};

/* Accepts the host and welcomes it (on a thread: the host blocks). */
static void *sa_accept(void *arg)
{
	struct sagent *sa = arg;

	ck_assert_int_eq(wave_chan_accept(sa->l, WAVE_MS(30000), &sa->ch), 0);
	/* No second host: a reconnection attempt fails at once. */
	wave_chan_listener_close(sa->l);
	sa->l = NULL;
	script_welcome(sa->ch, WAVE_DOMAIN_RPC, 60000);
	return NULL;
}

/* The next message from the host that is not a heartbeat. */
static void sa_recv(struct sagent *sa, struct wave_rpc_msg *d)
{
	struct wave_msg m;
	int n, ret;

	for (;;) {
		n = wave_chan_recv_burst(sa->ch, &m, 1);
		ck_assert_int_ge(n, 0);
		if (n == 1 && m.type == WAVE_CTL_HEARTBEAT)
			continue;
		if (n == 1)
			break;
		if (sa->r)
			ck_assert_int_ge(wave_rpc_poll(sa->r, 0), 0);
		usleep(100);
	}
	ret = wave_rpc_msg_decode(&m, m.type == WAVE_RPC_SETUP ? NULL : &D, d);
	ck_assert_msg(ret == 0, "type 0x%04x: %s", m.type, wave_strerror(ret));
}

static void sa_expect(struct sagent *sa, uint16_t type, struct wave_rpc_msg *d)
{
	sa_recv(sa, d);
	ck_assert_msg(d->type == type, "got %s, expected %s", wave_rpc_msg_type_name(d->type),
		      wave_rpc_msg_type_name(type));
}

/* The BUCKETS messages of entries [first, first + n): their workers. */
static void sa_expect_buckets(struct sagent *sa, uint32_t first, uint32_t n, uint32_t *workers)
{
	struct wave_rpc_msg d;

	while (n) {
		sa_expect(sa, WAVE_RPC_BUCKETS, &d);
		ck_assert_uint_eq(d.bucket, first);
		for (unsigned i = 0; i < d.n; i++)
			workers[first + i] = d.e[i].a;
		first += d.n;
		n -= d.n;
	}
}

static void sa_send(struct sagent *sa, const struct wave_rpc_msg *d)
{
	struct wave_msg m;

	ck_assert_int_eq(wave_rpc_msg_encode(d, &D, &m), 0);
	ck_assert_int_eq(wave_chan_send_burst(sa->ch, &m, 1), 1);
}

/* Sends a decision and returns its outcome. */
static struct wave_rpc_msg decide(struct sagent *sa, uint16_t type, uint32_t target,
				  uint32_t worker, uint32_t gen, uint32_t seq, uint32_t epoch)
{
	struct wave_rpc_msg d = { .type = type, .bucket = target, .worker = worker, .gen = gen,
				  .seq = seq, .epoch = epoch };
	struct wave_rpc_msg o;

	sa_send(sa, &d);
	sa_expect(sa, WAVE_RPC_OUTCOME, &o);
	ck_assert_uint_eq(o.decision, type);
	ck_assert_uint_eq(o.bucket, target);
	return o;
}

static void expect_result(const struct wave_rpc_msg *o, unsigned result, unsigned why)
{
	ck_assert_msg(o->result == result && o->why == why, "got %s/%s, expected %s/%s",
		      wave_result_name(o->result), wave_rpc_abort_name(o->why),
		      wave_result_name(result), wave_rpc_abort_name(why));
}

static void rpc_opts(struct wave_host_opts *ho, struct wave_rpc_opts *o)
{
	wave_host_opts_init(ho);
	/* The scripted agent sends no heartbeats: only a closed channel or a
	 * bad message makes the host lose it. */
	ho->heartbeat_timeout_ms = 600000;
	ho->connect_timeout_ms = 30000;
	ho->reconnect_min_ms = 1;
	ho->reconnect_max_ms = 2;
	wave_rpc_opts_init(o);
	o->n_buckets = NB;
	o->n_classes = NC;
	o->max_workers = NW;
	o->n_dispatchers = ND;
	o->report_us = 60000000; /* reports only when flushed */
	o->host = ho;
}

static void sa_listen_accept(struct sagent *sa)
{
	ck_assert_int_eq(wave_chan_listen(sa->uri, NULL, &sa->l), 0);
	ck_assert_int_eq(pthread_create(&sa->thr, NULL, sa_accept, sa), 0);
}

static struct wave_rpc *connect_rpc(struct sagent *sa, uint32_t fallback)
{
	struct wave_host_opts ho;
	struct wave_rpc_opts o;
	struct wave_rpc *r = NULL;
	struct wave_rpc_msg d;
	struct wave_error err;
	uint32_t t[NE];
	char tmpl[] = "/tmp/wave-rpc-host-XXXXXX";

	ck_assert_ptr_nonnull(mkdtemp(tmpl));
	snprintf(sa->dir, sizeof(sa->dir), "%s", tmpl);
	snprintf(sa->uri, sizeof(sa->uri), "shm://%s/agent.sock", sa->dir);
	sa_listen_accept(sa);
	rpc_opts(&ho, &o);
	o.fallback = fallback;
	ck_assert_int_eq(wave_rpc_create(sa->uri, &o, &r, &err), 0);
	ck_assert_int_eq(pthread_join(sa->thr, NULL), 0);
	sa->r = r;
	ck_assert_int_eq(wave_rpc_mode(r), WAVE_HOST_AGENT);
	/* The resync of a host with no worker: its sizes and an empty table. */
	sa_expect(sa, WAVE_RPC_SETUP, &d);
	ck_assert_int_eq(memcmp(&d.dims, &D, sizeof(D)), 0);
	ck_assert_uint_eq(d.period_ns, 60000000000ull);
	sa_expect_buckets(sa, 0, NE, t);
	for (unsigned b = 0; b < NE; b++)
		ck_assert_uint_eq(t[b], WAVE_RPC_NO_WORKER);
	sa_expect(sa, WAVE_RPC_REPORT, &d);
	return r;
}

static void teardown(struct sagent *sa, struct wave_rpc *r)
{
	char path[200];

	wave_rpc_destroy(r);
	if (sa->ch)
		wave_chan_close(sa->ch);
	if (sa->l)
		wave_chan_listener_close(sa->l);
	snprintf(path, sizeof(path), "%s/agent.sock", sa->dir);
	unlink(path);
	rmdir(sa->dir);
}

/* Adds worker @w; expects its WORKER_ADD (and, for the first, the table). */
static uint32_t add_worker(struct sagent *sa, struct wave_rpc *r, uint32_t w, bool first)
{
	struct wave_rpc_msg d;
	uint32_t t[NE];

	ck_assert_int_eq(wave_rpc_worker_add(r, w, -1), 0);
	sa_expect(sa, WAVE_RPC_WORKER_ADD, &d);
	ck_assert_uint_eq(d.worker, w);
	if (first) {
		sa_expect_buckets(sa, 0, NE, t);
		for (unsigned b = 0; b < NE; b++)
			ck_assert_uint_eq(t[b], w);
	}
	return d.gen;
}

/* A follower that refuses to steer bucket @refuse anywhere. */
struct refuser {
	uint32_t refuse;
	unsigned calls;
};

static int refuse_bucket(void *user, uint32_t bucket, uint32_t worker)
{
	struct refuser *f = user;

	(void)worker;
	f->calls++;
	return bucket == f->refuse ? -EIO : 0;
}

START_TEST(commit_and_every_abort)
{
	struct sagent sa = { 0 };
	struct wave_rpc *r = connect_rpc(&sa, WAVE_RPC_FALLBACK_KEEP);
	struct refuser ref = { .refuse = UINT32_MAX };
	struct wave_rpc_follower f = { .size = sizeof(f), .bucket = refuse_bucket, .user = &ref };
	struct wave_rpc_stats st;
	struct wave_rpc_msg o, d;
	uint32_t g0, g1, g2, epoch;

	g0 = add_worker(&sa, r, 0, true);
	g1 = add_worker(&sa, r, 1, false);
	ck_assert_int_eq(wave_rpc_table(r, 0, 0, NULL, &epoch), 0);
	ck_assert_uint_eq(epoch, 1); /* the first worker rewrote the table */
	ck_assert_int_eq(wave_rpc_steer(r, 3), 0);
	ck_assert_int_eq(wave_rpc_steer(r, 3 + NB), 0); /* the hash is masked */
	ck_assert_int_eq(wave_rpc_steer_class(r, 1), 0);

	/* committed: bucket 3 (sequence 1 since the first worker) to 1. */
	o = decide(&sa, WAVE_RPC_MOVE, 3, 1, g1, 1, epoch);
	expect_result(&o, WAVE_COMMITTED, WAVE_RPC_WHY_NONE);
	ck_assert_uint_eq(o.cur_worker, 1);
	ck_assert_uint_eq(o.seq, 2);
	ck_assert_int_eq(wave_rpc_steer(r, 3), 1);

	/* stale, bucket moved: a second move based on sequence 1. */
	o = decide(&sa, WAVE_RPC_MOVE, 3, 0, g0, 1, epoch);
	expect_result(&o, WAVE_ABORT_STALE, WAVE_RPC_WHY_BUCKET_MOVED);
	ck_assert_uint_eq(o.cur_worker, 1);
	ck_assert_int_eq(wave_rpc_steer(r, 3), 1);

	/* stale, epoch: based on the table before the first worker. */
	o = decide(&sa, WAVE_RPC_MOVE, 4, 1, g1, 1, epoch - 1);
	expect_result(&o, WAVE_ABORT_STALE, WAVE_RPC_WHY_EPOCH);

	/* not eligible: bucket 3 is on worker 1 already. */
	o = decide(&sa, WAVE_RPC_MOVE, 3, 1, g1, 2, epoch);
	expect_result(&o, WAVE_ABORT_NOT_ELIGIBLE, WAVE_RPC_WHY_SAME_WORKER);

	/* gone: worker 2 was removed; then re-added under a new generation. */
	g2 = add_worker(&sa, r, 2, false);
	ck_assert_int_eq(wave_rpc_worker_remove(r, 2), 0);
	sa_expect(&sa, WAVE_RPC_WORKER_DEL, &d);
	o = decide(&sa, WAVE_RPC_MOVE, 4, 2, g2, 1, epoch);
	expect_result(&o, WAVE_ABORT_GONE, WAVE_RPC_WHY_WORKER_GONE);
	ck_assert_uint_ne(add_worker(&sa, r, 2, false), g2);
	o = decide(&sa, WAVE_RPC_MOVE, 4, 2, g2, 1, epoch);
	expect_result(&o, WAVE_ABORT_GONE, WAVE_RPC_WHY_WORKER_GONE);
	ck_assert_int_eq(wave_rpc_steer(r, 4), 0);

	/* busy: the enforcement backend refuses bucket 5; it stays. */
	ck_assert_int_eq(wave_rpc_follow(r, &f), 0);
	ck_assert_uint_eq(ref.calls, NE); /* caught up with every entry */
	ref.refuse = 5;
	o = decide(&sa, WAVE_RPC_MOVE, 5, 1, g1, 1, epoch);
	expect_result(&o, WAVE_ABORT_BUSY, WAVE_RPC_WHY_BACKEND);
	ck_assert_int_eq(wave_rpc_steer(r, 5), 0);
	ck_assert_uint_eq(o.seq, 1);

	/* A prestage: the dispatcher's next worker, read with one load. */
	ck_assert_int_eq(wave_rpc_pick(r, 1), 0); /* round robin until then */
	o = decide(&sa, WAVE_RPC_PRESTAGE, 1, 1, g1, 0, epoch);
	expect_result(&o, WAVE_COMMITTED, WAVE_RPC_WHY_NONE);
	ck_assert_int_eq(wave_rpc_pick(r, 1), 1);
	ck_assert_int_eq(wave_rpc_pick(r, 1), 1);
	o = decide(&sa, WAVE_RPC_PRESTAGE, 0, 2, g2, 0, epoch);
	expect_result(&o, WAVE_ABORT_GONE, WAVE_RPC_WHY_WORKER_GONE);

	ck_assert_int_eq(wave_rpc_stats(r, &st), 0);
	ck_assert_uint_eq(st.committed, 2);
	ck_assert_uint_eq(st.aborted[WAVE_ABORT_STALE], 2);
	ck_assert_uint_eq(st.aborted[WAVE_ABORT_GONE], 3);
	ck_assert_uint_eq(st.aborted[WAVE_ABORT_NOT_ELIGIBLE], 1);
	ck_assert_uint_eq(st.aborted[WAVE_ABORT_BUSY], 1);
	for (unsigned w = WAVE_RPC_WHY_WORKER_GONE; w < WAVE_RPC_WHY_COUNT; w++)
		ck_assert_msg(st.aborted_why[w] >= 1, "%s never seen", wave_rpc_abort_name(w));
	ck_assert_uint_eq(st.aborted_why[WAVE_RPC_WHY_NONE], 0); /* commits are not aborts */
	ck_assert_uint_eq(st.bad_decisions, 0);
	ck_assert_uint_eq(st.workers, 3);
	teardown(&sa, r);
}
END_TEST

/* Removing a worker moves its buckets to the others first (each move told
 * to the agent before the removal), and empties the dispatchers that had
 * it prestaged; the last worker cannot be removed. */
START_TEST(remove_moves_buckets_first)
{
	struct sagent sa = { 0 };
	struct wave_rpc *r = connect_rpc(&sa, WAVE_RPC_FALLBACK_KEEP);
	struct wave_rpc_msg o, d;
	uint32_t t[NE], g1, moved = 0;

	add_worker(&sa, r, 0, true);
	g1 = add_worker(&sa, r, 1, false);
	add_worker(&sa, r, 3, false);
	for (uint32_t b = 0; b < 6; b++) {
		o = decide(&sa, WAVE_RPC_MOVE, b, 1, g1, 1, 1);
		expect_result(&o, WAVE_COMMITTED, WAVE_RPC_WHY_NONE);
	}
	o = decide(&sa, WAVE_RPC_PRESTAGE, 0, 1, g1, 0, 1);
	expect_result(&o, WAVE_COMMITTED, WAVE_RPC_WHY_NONE);
	ck_assert_int_eq(wave_rpc_worker_remove(r, 1), 0);
	for (;;) {
		sa_recv(&sa, &d);
		if (d.type == WAVE_RPC_WORKER_DEL)
			break;
		ck_assert_uint_eq(d.type, WAVE_RPC_BUCKETS);
		ck_assert_uint_eq(d.n, 1);
		ck_assert_uint_lt(d.bucket, 6);
		ck_assert(d.e[0].a == 0 || d.e[0].a == 3);
		ck_assert_uint_eq(d.e[0].b, 3); /* first worker, the move, this one */
		moved++;
	}
	ck_assert_uint_eq(moved, 6);
	ck_assert_uint_eq(d.worker, 1);
	ck_assert_int_eq(wave_rpc_table(r, 0, NE, t, NULL), 0);
	for (unsigned b = 0; b < NE; b++)
		ck_assert_uint_ne(t[b], 1);
	ck_assert_uint_eq(t[0] != t[1], 1); /* spread in turn, not piled on one */
	ck_assert_int_ne(wave_rpc_pick(r, 0), 1);
	ck_assert_int_eq(wave_rpc_worker_remove(r, 1), -ENOENT);
	ck_assert_int_eq(wave_rpc_worker_remove(r, 0), 0);
	sa_expect(&sa, WAVE_RPC_BUCKETS, &d);
	ck_assert_int_eq(wave_rpc_worker_remove(r, 3), -EBUSY);
	ck_assert_int_eq(wave_rpc_worker_remove(r, NW), -EINVAL);
	ck_assert_int_eq(wave_rpc_worker_add(r, 3, -1), -EEXIST);
	teardown(&sa, r);
}
END_TEST

/* A batch of load: one LOAD per worker that reported, ARRIVALS for the
 * buckets that had any, and the REPORT closing the period. */
START_TEST(load_report_batch)
{
	struct sagent sa = { 0 };
	struct wave_rpc *r = connect_rpc(&sa, WAVE_RPC_FALLBACK_KEEP);
	struct wave_rpc_load l = { .size = sizeof(l), .queue_depth = 7, .busy_ns = 100,
				   .completions = 2, .service_ns = 90, .max_service_ns = 60 };
	struct wave_rpc_msg d;
	uint32_t seen[NE] = { 0 };

	add_worker(&sa, r, 0, true);
	add_worker(&sa, r, 2, false);
	ck_assert_int_eq(wave_rpc_worker_load(r, 2, &l), 0);
	l.max_service_ns = 30;
	ck_assert_int_eq(wave_rpc_worker_load(r, 2, &l), 0);
	ck_assert_int_eq(wave_rpc_worker_load(r, 3, &l), 0); /* not live: ignored */
	for (uint64_t h = 0; h < 8 * NB; h++)
		ck_assert_int_eq(wave_rpc_arrive(r, h), 0);
	ck_assert_int_eq(wave_rpc_arrivals(r, NB + 1, 5), 0);
	ck_assert_int_eq(wave_rpc_arrivals(r, NE, 5), -EINVAL);
	ck_assert_int_eq(wave_rpc_flush(r), 0);
	sa_expect(&sa, WAVE_RPC_LOAD, &d);
	ck_assert_uint_eq(d.worker, 2);
	ck_assert_uint_eq(d.queue_depth, 7);
	ck_assert_uint_eq(d.busy_ns, 200);
	ck_assert_uint_eq(d.completions, 4);
	ck_assert_uint_eq(d.service_ns, 180);
	ck_assert_uint_eq(d.max_service_ns, 60);
	for (;;) {
		sa_recv(&sa, &d);
		if (d.type == WAVE_RPC_REPORT)
			break;
		ck_assert_uint_eq(d.type, WAVE_RPC_ARRIVALS);
		for (unsigned i = 0; i < d.n; i++)
			seen[d.e[i].a] += d.e[i].b;
	}
	for (unsigned b = 0; b < NB; b++)
		ck_assert_uint_eq(seen[b], 8);
	ck_assert_uint_eq(seen[NB], 0);
	ck_assert_uint_eq(seen[NB + 1], 5);
	ck_assert_uint_gt(d.period_ns, 0);
	/* The next period starts from nothing. */
	ck_assert_int_eq(wave_rpc_flush(r), 0);
	sa_expect(&sa, WAVE_RPC_REPORT, &d);
	teardown(&sa, r);
}
END_TEST

/* A decision outside the sizes is a broken message: counted, the agent
 * dropped, the table untouched. */
START_TEST(bad_decision_drops_agent)
{
	struct sagent sa = { 0 };
	struct wave_rpc *r = connect_rpc(&sa, WAVE_RPC_FALLBACK_KEEP);
	struct wave_rpc_stats st;
	struct wave_msg m = { .type = WAVE_RPC_MOVE };

	add_worker(&sa, r, 0, true);
	m.payload.u32[0] = NE; /* bucket */
	m.payload.u32[2] = 1;  /* generation */
	ck_assert_int_eq(wave_chan_send_burst(sa.ch, &m, 1), 1);
	while (wave_rpc_mode(r) != WAVE_HOST_FALLBACK)
		ck_assert_int_ge(wave_rpc_poll(r, WAVE_US(1000)), 0);
	ck_assert_int_eq(wave_rpc_stats(r, &st), 0);
	ck_assert_uint_eq(st.bad_decisions, 1);
	ck_assert_uint_eq(st.fallbacks, 1);
	for (uint64_t h = 0; h < NB; h++)
		ck_assert_int_eq(wave_rpc_steer(r, h), 0);
	teardown(&sa, r);
}
END_TEST

/* The agent goes: the table stays (KEEP); removal still moves buckets, on
 * the host alone; a new agent gets everything replayed: the sizes, the
 * live workers, the table as it is, the last period's load. */
START_TEST(fallback_keep_then_resync)
{
	struct sagent sa = { 0 };
	struct wave_rpc *r = connect_rpc(&sa, WAVE_RPC_FALLBACK_KEEP);
	struct wave_rpc_load l = { .size = sizeof(l), .queue_depth = 3, .busy_ns = 10,
				   .completions = 1, .service_ns = 10, .max_service_ns = 10 };
	struct wave_rpc_stats st;
	struct wave_rpc_msg o, d;
	uint32_t before[NE], after[NE], replayed[NE], g1, g2;

	add_worker(&sa, r, 0, true);
	g1 = add_worker(&sa, r, 1, false);
	g2 = add_worker(&sa, r, 2, false);
	o = decide(&sa, WAVE_RPC_MOVE, 7, 1, g1, 1, 1);
	expect_result(&o, WAVE_COMMITTED, WAVE_RPC_WHY_NONE);
	o = decide(&sa, WAVE_RPC_MOVE, 8, 2, g2, 1, 1);
	expect_result(&o, WAVE_COMMITTED, WAVE_RPC_WHY_NONE);
	o = decide(&sa, WAVE_RPC_PRESTAGE, 0, 1, g1, 0, 1);
	expect_result(&o, WAVE_COMMITTED, WAVE_RPC_WHY_NONE);
	ck_assert_int_eq(wave_rpc_table(r, 0, NE, before, NULL), 0);

	wave_chan_close(sa.ch); /* the agent dies */
	sa.ch = NULL;
	sa.r = NULL;
	while (wave_rpc_mode(r) != WAVE_HOST_FALLBACK)
		ck_assert_int_ge(wave_rpc_poll(r, WAVE_US(1000)), 0);
	ck_assert_int_eq(wave_rpc_table(r, 0, NE, after, NULL), 0);
	ck_assert_int_eq(memcmp(before, after, sizeof(before)), 0);
	ck_assert_int_eq(wave_rpc_pick(r, 0), 0); /* nobody refreshes it: round robin */
	ck_assert_int_eq(wave_rpc_worker_remove(r, 2), 0);
	ck_assert_int_eq(wave_rpc_steer(r, 8), 0);
	ck_assert_int_eq(wave_rpc_worker_load(r, 1, &l), 0);
	ck_assert_int_eq(wave_rpc_flush(r), 0); /* taken into the last period */
	ck_assert_int_eq(wave_rpc_table(r, 0, NE, after, NULL), 0);

	/* A new agent: the resync. */
	sa_listen_accept(&sa);
	while (wave_rpc_mode(r) != WAVE_HOST_AGENT)
		ck_assert_int_ge(wave_rpc_poll(r, WAVE_US(1000)), 0);
	ck_assert_int_eq(pthread_join(sa.thr, NULL), 0);
	sa.r = r;
	sa_expect(&sa, WAVE_RPC_SETUP, &d);
	ck_assert_uint_eq(d.epoch, 1);
	sa_expect(&sa, WAVE_RPC_WORKER_ADD, &d);
	ck_assert_uint_eq(d.worker, 0);
	sa_expect(&sa, WAVE_RPC_WORKER_ADD, &d);
	ck_assert_uint_eq(d.worker, 1);
	sa_expect_buckets(&sa, 0, NE, replayed);
	ck_assert_int_eq(memcmp(replayed, after, sizeof(after)), 0);
	sa_expect(&sa, WAVE_RPC_LOAD, &d);
	ck_assert_uint_eq(d.worker, 1);
	ck_assert_uint_eq(d.queue_depth, 3);
	sa_expect(&sa, WAVE_RPC_REPORT, &d);
	/* The new agent's decisions commit against the replayed table
	 * (bucket 8: the first worker, the move to 2, 2's removal). */
	o = decide(&sa, WAVE_RPC_MOVE, 8, 1, g1, 3, 1);
	expect_result(&o, WAVE_COMMITTED, WAVE_RPC_WHY_NONE);
	ck_assert_int_eq(wave_rpc_stats(r, &st), 0);
	ck_assert_uint_eq(st.fallbacks, 1);
	ck_assert_uint_eq(st.resyncs, 2);
	teardown(&sa, r);
}
END_TEST

/* The agent goes with WAVE_RPC_FALLBACK_HASH: the table becomes the
 * static hash in a new epoch, which the next agent is told; a decision
 * based on the old epoch aborts as such. */
START_TEST(fallback_hash_then_resync)
{
	struct sagent sa = { 0 };
	struct wave_rpc *r = connect_rpc(&sa, WAVE_RPC_FALLBACK_HASH);
	struct wave_rpc_msg o, d;
	uint32_t t[NE], g0;

	g0 = add_worker(&sa, r, 0, true);
	add_worker(&sa, r, 1, false);
	ck_assert_int_eq(wave_rpc_steer(r, 1), 0); /* under the agent: as it left it */
	wave_chan_close(sa.ch);
	sa.ch = NULL;
	sa.r = NULL;
	while (wave_rpc_mode(r) != WAVE_HOST_FALLBACK)
		ck_assert_int_ge(wave_rpc_poll(r, WAVE_US(1000)), 0);
	ck_assert_int_eq(wave_rpc_table(r, 0, NE, t, NULL), 0);
	for (unsigned b = 0; b < NE; b++)
		ck_assert_uint_eq(t[b], b % 2);

	sa_listen_accept(&sa);
	while (wave_rpc_mode(r) != WAVE_HOST_AGENT)
		ck_assert_int_ge(wave_rpc_poll(r, WAVE_US(1000)), 0);
	ck_assert_int_eq(pthread_join(sa.thr, NULL), 0);
	sa.r = r;
	sa_expect(&sa, WAVE_RPC_SETUP, &d);
	ck_assert_uint_eq(d.epoch, 2);
	sa_expect(&sa, WAVE_RPC_WORKER_ADD, &d);
	sa_expect(&sa, WAVE_RPC_WORKER_ADD, &d);
	sa_expect_buckets(&sa, 0, NE, t);
	for (unsigned b = 0; b < NE; b++)
		ck_assert_uint_eq(t[b], b % 2);
	sa_expect(&sa, WAVE_RPC_REPORT, &d);
	/* Bucket 3: the first worker took it (sequence 1), the hash moved it
	 * to worker 1 (2). */
	o = decide(&sa, WAVE_RPC_MOVE, 3, 0, g0, 2, 1);
	expect_result(&o, WAVE_ABORT_STALE, WAVE_RPC_WHY_EPOCH);
	o = decide(&sa, WAVE_RPC_MOVE, 3, 0, g0, 2, 2);
	expect_result(&o, WAVE_COMMITTED, WAVE_RPC_WHY_NONE);
	teardown(&sa, r);
}
END_TEST

/* No agent, WAVE_RPC_FALLBACK_HASH: the table is the static hash over the
 * live workers, rewritten (a new epoch) as they come and go. */
START_TEST(fallback_hash_layout)
{
	struct wave_rpc_opts o;
	struct wave_rpc *r = NULL;
	uint32_t t[NE], epoch, e2;

	wave_rpc_opts_init(&o);
	o.n_buckets = NB;
	o.n_classes = NC;
	o.max_workers = NW;
	o.fallback = WAVE_RPC_FALLBACK_HASH;
	ck_assert_int_eq(wave_rpc_create(NULL, &o, &r, NULL), 0);
	ck_assert_int_eq(wave_rpc_steer(r, 1), -ENOENT);
	ck_assert_int_eq(wave_rpc_mode(r), WAVE_HOST_FALLBACK);
	for (uint32_t w = 0; w < NW; w++)
		ck_assert_int_eq(wave_rpc_worker_add(r, w, -1), 0);
	ck_assert_int_eq(wave_rpc_table(r, 0, NE, t, &epoch), 0);
	for (unsigned b = 0; b < NE; b++)
		ck_assert_uint_eq(t[b], b % NW);
	ck_assert_int_eq(wave_rpc_worker_remove(r, 1), 0);
	ck_assert_int_eq(wave_rpc_table(r, 0, NE, t, &e2), 0);
	ck_assert_uint_gt(e2, epoch);
	for (unsigned b = 0; b < NE; b++) {
		static const uint32_t live[] = { 0, 2, 3 };

		ck_assert_uint_eq(t[b], live[b % 3]);
	}
	wave_rpc_destroy(r);
}
END_TEST

/* ---- the table under concurrent lookups and changes ---------------------- */

struct race {
	struct wave_rpc *r;
	atomic_bool stop;
	atomic_ulong lookups, bad;
};

struct reader_arg {
	struct race *x;
	uint32_t dispatcher; /* each reader is one dispatcher */
};

/* Every lookup must name a worker number (or none yet), never garbage. */
static void *reader(void *arg)
{
	const struct reader_arg *a = arg;
	struct race *x = a->x;
	struct wave_rpc_load l = { .size = sizeof(l), .busy_ns = 1, .completions = 1 };
	uint64_t h = 0;

	while (!atomic_load(&x->stop)) {
		int w = wave_rpc_arrive(x->r, h++);
		int c = wave_rpc_steer_class(x->r, (uint32_t)h % NC);
		int p = wave_rpc_pick(x->r, a->dispatcher);

		if ((w < 0 && w != -ENOENT) || w >= NW || (c < 0 && c != -ENOENT) || c >= NW ||
		    (p < 0 && p != -ENOENT) || p >= NW)
			atomic_fetch_add(&x->bad, 1);
		if (w >= 0)
			(void)wave_rpc_worker_load(x->r, (uint32_t)w, &l);
		atomic_fetch_add(&x->lookups, 1);
	}
	return NULL;
}

START_TEST(table_concurrent)
{
	struct race x = { 0 };
	struct reader_arg ra[2] = { { &x, 0 }, { &x, 1 } };
	struct wave_rpc_opts o;
	pthread_t thr[2];
	uint32_t t[NE];

	wave_rpc_opts_init(&o);
	o.n_buckets = NB;
	o.n_classes = NC;
	o.max_workers = NW;
	o.n_dispatchers = 2;
	ck_assert_int_eq(wave_rpc_create(NULL, &o, &x.r, NULL), 0);
	for (unsigned i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&thr[i], NULL, reader, &ra[i]), 0);
	ck_assert_int_eq(wave_rpc_worker_add(x.r, 0, -1), 0);
	for (unsigned round = 0; round < 400; round++) {
		uint32_t w = 1 + round % (NW - 1);

		ck_assert_int_eq(wave_rpc_worker_add(x.r, w, -1), 0);
		/* Move everything to @w, then take @w away: each removal must
		 * leave no entry on it, whatever the readers do meanwhile. */
		ck_assert_int_eq(wave_rpc_worker_remove(x.r, 0), 0);
		ck_assert_int_eq(wave_rpc_worker_add(x.r, 0, -1), 0);
		ck_assert_int_eq(wave_rpc_worker_remove(x.r, w), 0);
		ck_assert_int_eq(wave_rpc_table(x.r, 0, NE, t, NULL), 0);
		for (unsigned b = 0; b < NE; b++)
			ck_assert_uint_eq(t[b], 0);
		for (uint64_t h = 0; h < NB; h++)
			ck_assert_int_eq(wave_rpc_steer(x.r, h), 0);
		ck_assert_int_eq(wave_rpc_flush(x.r), 0);
	}
	/* Let the readers run at least once against the changes. */
	while (atomic_load(&x.lookups) < 1000)
		usleep(100);
	atomic_store(&x.stop, true);
	for (unsigned i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_join(thr[i], NULL), 0);
	ck_assert_uint_eq(atomic_load(&x.bad), 0);
	wave_rpc_destroy(x.r);
}
END_TEST

START_TEST(bad_arguments)
{
	struct wave_rpc_opts o;
	struct wave_rpc *r = NULL;

	wave_rpc_opts_init(&o);
	o.n_buckets = 100; /* not a power of two */
	ck_assert_int_eq(wave_rpc_create(NULL, &o, &r, NULL), -EINVAL);
	wave_rpc_opts_init(&o);
	o.size = sizeof(o) + 8; /* newer than this library */
	ck_assert_int_eq(wave_rpc_create(NULL, &o, &r, NULL), -EINVAL);
	wave_rpc_opts_init(&o);
	o.fallback = 7;
	ck_assert_int_eq(wave_rpc_create(NULL, &o, &r, NULL), -EINVAL);
	ck_assert_ptr_null(r);
	ck_assert_int_eq(wave_rpc_create(NULL, NULL, &r, NULL), 0);
	ck_assert_int_eq(wave_rpc_steer(NULL, 1), -EINVAL);
	ck_assert_int_eq(wave_rpc_steer_class(r, 0), -EINVAL); /* no classes */
	ck_assert_int_eq(wave_rpc_pick(r, 0), -EINVAL);        /* no dispatchers */
	ck_assert_int_eq(wave_rpc_worker_add(r, 64, -1), -EINVAL);
	ck_assert_int_eq(wave_rpc_worker_add(r, 0, -2), -EINVAL);
	ck_assert_int_eq(wave_rpc_worker_load(r, 0, NULL), -EINVAL);
	ck_assert_int_eq(wave_rpc_table(r, 100, 29, (uint32_t[29]){ 0 }, NULL), -EINVAL);
	ck_assert_int_eq(wave_rpc_follow(r, &(struct wave_rpc_follower){ .size = 8 }), -EINVAL);
	wave_rpc_destroy(r);
	wave_rpc_destroy(NULL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("rpc_host");
	TCase *tc = tcase_create("scripted_agent");
	TCase *tt = tcase_create("table");

	tcase_add_test(tc, commit_and_every_abort);
	tcase_add_test(tc, remove_moves_buckets_first);
	tcase_add_test(tc, load_report_batch);
	tcase_add_test(tc, bad_decision_drops_agent);
	tcase_add_test(tc, fallback_keep_then_resync);
	tcase_add_test(tc, fallback_hash_then_resync);
	tcase_add_test(tt, fallback_hash_layout);
	tcase_add_test(tt, table_concurrent);
	tcase_add_test(tt, bad_arguments);
	suite_add_tcase(s, tc);
	suite_add_tcase(s, tt);
	return wave_check_run(s);
}
