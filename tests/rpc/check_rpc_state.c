/* SPDX-License-Identifier: MIT */
/*
 * The agent's state model of the rpc domain (include/wave/rpc_state.h),
 * driven message by message with a recording plugin: what it applies and
 * refuses (each reason), the decayed rates, the decisions a plugin may
 * make and how they are stamped, outcomes taking the host's truth, and the
 * replay into a new plugin. Every invariant of the model is checked after
 * every message.
 */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <check.h>

#include <wave/wave.h>

#include "check_run.h"
#include "domains/rpc/rpc_impl.h"

static const struct wave_rpc_dims D = { 8, 1, 4, 2 };

/* ---- a recording plugin ------------------------------------------------------ */

static struct rec {
	unsigned added, removed, moved, reports, committed, aborted;
	unsigned last_result, last_why;
	struct wave_msg sent[16];
	unsigned n_sent;
} R;

static int rec_added(struct wave_plugin_ctx *c, const struct wave_rpc_worker *w)
{
	(void)c, (void)w;
	R.added++;
	return 0;
}

static int rec_removed(struct wave_plugin_ctx *c, const struct wave_rpc_worker *w)
{
	(void)c, (void)w;
	R.removed++;
	return 0;
}

static int rec_moved(struct wave_plugin_ctx *c, const struct wave_rpc_bucket *b, uint32_t from)
{
	(void)c, (void)b, (void)from;
	R.moved++;
	return 0;
}

static int rec_report(struct wave_plugin_ctx *c, uint64_t now, uint64_t period)
{
	(void)c, (void)now, (void)period;
	R.reports++;
	return 0;
}

static int rec_committed(struct wave_plugin_ctx *c, uint16_t d, uint32_t t, uint32_t w)
{
	(void)c, (void)d, (void)t, (void)w;
	R.committed++;
	return 0;
}

static int rec_aborted(struct wave_plugin_ctx *c, uint16_t d, uint32_t t, uint32_t w,
		       unsigned result, unsigned why)
{
	(void)c, (void)d, (void)t, (void)w;
	R.aborted++;
	R.last_result = result;
	R.last_why = why;
	return 0;
}

static const struct wave_rpc_ops rec_ops = {
	.size = sizeof(struct wave_rpc_ops),
	.worker_added = rec_added,
	.worker_removed = rec_removed,
	.bucket_moved = rec_moved,
	.load_report = rec_report,
	.txn_committed = rec_committed,
	.txn_aborted = rec_aborted,
};

WAVE_PLUGIN_DEFINE(rec, WAVE_DOMAIN_RPC, "1", NULL, NULL, NULL, &rec_ops)

static int rec_emit(void *user, const struct wave_msg *m, unsigned n)
{
	(void)user;
	for (unsigned i = 0; i < n && R.n_sent < 16; i++)
		R.sent[R.n_sent++] = m[i];
	return (int)n;
}

static struct wave_plugin *plugin;
static struct wave_rpc_state *st;
static struct wave_plugin_ctx *ctx;

static void setup(void)
{
	struct wave_rpc_msg s = { .type = WAVE_RPC_SETUP, .dims = D, .epoch = 5,
				  .period_ns = 1000000 };
	struct wave_plugin_ctx_opts o;
	struct wave_msg m;

	memset(&R, 0, sizeof(R));
	ck_assert_int_eq(wave_rpc_msg_encode(&s, NULL, &m), 0);
	ck_assert_int_eq(wave_plugin_open_static(wave_plugin_entry_rec, &plugin, NULL), 0);
	ck_assert_int_eq(wave_rpc_state_create(&m, &st), 0);
	wave_plugin_ctx_opts_init(&o);
	o.emit = rec_emit;
	o.domain_state = st;
	ck_assert_int_eq(wave_plugin_ctx_create(plugin, &o, &ctx, NULL), 0);
}

static void teardown(void)
{
	wave_plugin_ctx_destroy(ctx);
	wave_rpc_state_destroy(st);
	wave_plugin_unload(plugin);
}

/* Applies @d; expects @ret; the invariants hold either way. */
static void apply(const struct wave_rpc_msg *d, int ret)
{
	struct wave_msg m;

	ck_assert_int_eq(wave_rpc_msg_encode(d, &D, &m), 0);
	ck_assert_int_eq(wave_rpc_state_apply(st, ctx, &m), ret);
	ck_assert_int_eq(wave_rpc_state_check(st), 0);
}

static void worker(uint16_t type, uint32_t w, uint32_t gen, int ret)
{
	struct wave_rpc_msg d = { .type = type, .worker = w, .gen = gen };

	apply(&d, ret);
}

/* One BUCKETS message: @n entries from @first to @w at @seq. */
static void buckets(uint32_t first, uint8_t n, uint32_t w, uint32_t seq, int ret)
{
	struct wave_rpc_msg d = { .type = WAVE_RPC_BUCKETS, .bucket = first, .n = n, .epoch = 6 };

	for (unsigned i = 0; i < n; i++) {
		d.e[i].a = w;
		d.e[i].b = seq;
	}
	apply(&d, ret);
}

static struct wave_rpc_msg last_sent(void)
{
	struct wave_rpc_msg d;

	ck_assert_uint_gt(R.n_sent, 0);
	ck_assert_int_eq(wave_rpc_msg_decode(&R.sent[R.n_sent - 1], &D, &d), 0);
	return d;
}

START_TEST(events_applied_and_refused)
{
	struct wave_rpc_stats_agent s;
	struct wave_rpc_msg bad = { .type = WAVE_RPC_MOVE, .worker = 0, .gen = 1 };

	worker(WAVE_RPC_WORKER_ADD, 0, 1, 0);
	worker(WAVE_RPC_WORKER_ADD, 1, 1, 0);
	worker(WAVE_RPC_WORKER_ADD, 1, 2, -EEXIST);
	buckets(0, 5, 0, 1, 0);
	buckets(5, 4, 1, 1, 0);
	buckets(0, 1, 2, 2, -ENOENT); /* worker 2 is not live: nothing applied */
	ck_assert_uint_eq(R.moved, 9);
	worker(WAVE_RPC_WORKER_DEL, 1, 1, -EPROTO); /* it still has buckets */
	worker(WAVE_RPC_WORKER_DEL, 1, 2, -ENOENT); /* another generation */
	worker(WAVE_RPC_WORKER_DEL, 3, 1, -ENOENT);
	buckets(5, 4, 0, 2, 0);
	worker(WAVE_RPC_WORKER_DEL, 1, 1, 0);
	apply(&(struct wave_rpc_msg){ .type = WAVE_RPC_LOAD, .worker = 1 }, -ENOENT);
	apply(&bad, -EBADMSG); /* a decision from the host */
	apply(&(struct wave_rpc_msg){ .type = WAVE_RPC_OUTCOME, .decision = WAVE_RPC_MOVE,
				      .bucket = 1, .worker = 0, .gen = 1, .cur_worker = 0 },
	      -EPROTO); /* nothing pending */
	ck_assert_uint_eq(R.added, 2);
	ck_assert_uint_eq(R.removed, 1);
	ck_assert_int_eq(wave_rpc_state_stats(st, &s), 0);
	ck_assert_uint_eq(s.dup_worker, 1);
	ck_assert_uint_eq(s.unknown_worker, 4);
	ck_assert_uint_eq(s.bad_transition, 2);
	ck_assert_uint_eq(s.bad_msgs, 1);
	ck_assert_uint_eq(s.events, 6);
}
END_TEST

START_TEST(rates_decay)
{
	struct wave_rpc_msg a = { .type = WAVE_RPC_ARRIVALS, .n = 2,
				  .e = { { 0, 1000 }, { 8, 500 } } };
	struct wave_rpc_msg l = { .type = WAVE_RPC_LOAD, .worker = 0, .queue_depth = 3,
				  .busy_ns = 500000, .completions = 10, .service_ns = 20000 };
	struct wave_rpc_msg rep = { .type = WAVE_RPC_REPORT, .period_ns = 1000000, .now_ns = 1 };
	struct wave_rpc_worker w;
	struct wave_rpc_bucket b;

	worker(WAVE_RPC_WORKER_ADD, 0, 1, 0);
	buckets(0, 5, 0, 1, 0);
	buckets(5, 4, 0, 1, 0);
	apply(&a, 0);
	apply(&l, 0);
	apply(&rep, 0);
	ck_assert_uint_eq(R.reports, 1);
	/* 1000 arrivals in 1 ms: 1e6/s, half of it in after one period. */
	ck_assert_int_eq(wave_plugin_rpc_bucket(ctx, 0, &b), 0);
	ck_assert(fabs(b.rate - 5e5) < 1);
	ck_assert_uint_eq(b.arrivals, 1000);
	ck_assert_int_eq(wave_plugin_rpc_worker(ctx, 0, &w), 0);
	ck_assert(fabs(w.arrival_rate - 7.5e5) < 1); /* bucket 0 and the class */
	ck_assert(fabs(w.load - 0.25) < 1e-9);
	ck_assert(fabs(w.service_ns - 1000) < 1e-9);
	ck_assert_uint_eq(w.queue_depth, 3);
	ck_assert_uint_eq(w.buckets, 9);
	/* A quiet period halves the rates. */
	ck_assert_int_eq(wave_plugin_rpc_set_decay(ctx, 0.5), 0);
	ck_assert_int_eq(wave_plugin_rpc_set_decay(ctx, 1.0), -EINVAL);
	apply(&rep, 0);
	ck_assert_int_eq(wave_plugin_rpc_bucket(ctx, 0, &b), 0);
	ck_assert(fabs(b.rate - 2.5e5) < 1);
	ck_assert_uint_eq(b.arrivals, 0);
}
END_TEST

/* A class's service times: decayed over the periods with completions. */
START_TEST(class_service_times)
{
	struct wave_rpc_msg cl = { .type = WAVE_RPC_CLASS_LOAD, .bucket = 8, .completions = 4,
				   .service_ns = 40000 };
	struct wave_rpc_msg rep = { .type = WAVE_RPC_REPORT, .period_ns = 1000000, .now_ns = 1 };
	struct wave_rpc_bucket b;

	worker(WAVE_RPC_WORKER_ADD, 0, 1, 0);
	buckets(0, 5, 0, 1, 0);
	buckets(5, 4, 0, 1, 0);
	apply(&cl, 0);
	apply(&cl, 0); /* two in one period: 8 requests, 80 us */
	apply(&rep, 0);
	ck_assert_int_eq(wave_plugin_rpc_bucket(ctx, 8, &b), 0);
	ck_assert(fabs(b.service_ns - 5000) < 1e-9); /* half of 10 us, after one period */
	ck_assert_uint_eq(b.completions, 8);
	apply(&rep, 0); /* no completions: the mean stays */
	ck_assert_int_eq(wave_plugin_rpc_bucket(ctx, 8, &b), 0);
	ck_assert(fabs(b.service_ns - 5000) < 1e-9);
	ck_assert_uint_eq(b.completions, 0);
	ck_assert_int_eq(wave_plugin_rpc_bucket(ctx, 0, &b), 0);
	ck_assert(b.service_ns == 0); /* a flow bucket has none */
}
END_TEST

START_TEST(decisions_checked_and_stamped)
{
	struct wave_rpc_stats_agent s;
	struct wave_rpc_bucket b;
	struct wave_rpc_msg d, o;

	worker(WAVE_RPC_WORKER_ADD, 0, 1, 0);
	worker(WAVE_RPC_WORKER_ADD, 2, 7, 0);
	buckets(0, 5, 0, 3, 0);
	ck_assert_int_eq(wave_plugin_rpc_move(ctx, 9, 2), -ERANGE);
	ck_assert_int_eq(wave_plugin_rpc_move(ctx, 1, 4), -ERANGE);
	ck_assert_int_eq(wave_plugin_rpc_move(ctx, 1, 1), -ENOENT);
	ck_assert_int_eq(wave_plugin_rpc_move(ctx, 1, 0), -EALREADY);
	ck_assert_int_eq(wave_plugin_rpc_move(ctx, 1, 2), 0);
	d = last_sent();
	ck_assert_uint_eq(d.type, WAVE_RPC_MOVE);
	ck_assert_uint_eq(d.seq, 3);
	ck_assert_uint_eq(d.epoch, 6);
	ck_assert_uint_eq(d.gen, 7);
	ck_assert_int_eq(wave_plugin_rpc_move(ctx, 1, 0), -EBUSY); /* pending */
	ck_assert_int_eq(wave_plugin_rpc_bucket(ctx, 1, &b), 0);
	ck_assert_uint_eq(b.pending, 2);

	/* Aborted as stale: the model takes the host's truth (another worker,
	 * a newer sequence number) and the plugin is told why. */
	o = (struct wave_rpc_msg){ .type = WAVE_RPC_OUTCOME, .decision = WAVE_RPC_MOVE,
				   .bucket = 1, .worker = 2, .gen = 7, .seq = 5, .epoch = 6,
				   .cur_worker = 0, .result = WAVE_ABORT_STALE,
				   .why = WAVE_RPC_WHY_BUCKET_MOVED };
	apply(&o, 0);
	ck_assert_uint_eq(R.aborted, 1);
	ck_assert_uint_eq(R.last_result, WAVE_ABORT_STALE);
	ck_assert_uint_eq(R.last_why, WAVE_RPC_WHY_BUCKET_MOVED);
	ck_assert_int_eq(wave_plugin_rpc_bucket(ctx, 1, &b), 0);
	ck_assert_uint_eq(b.seq, 5);
	ck_assert_uint_eq(b.pending, WAVE_RPC_NO_WORKER);

	/* Again, committed. */
	ck_assert_int_eq(wave_plugin_rpc_move(ctx, 1, 2), 0);
	ck_assert_uint_eq(last_sent().seq, 5);
	o.seq = 6;
	o.cur_worker = 2;
	o.result = WAVE_COMMITTED;
	o.why = WAVE_RPC_WHY_NONE;
	apply(&o, 0);
	ck_assert_uint_eq(R.committed, 1);
	ck_assert_int_eq(wave_plugin_rpc_bucket(ctx, 1, &b), 0);
	ck_assert_uint_eq(b.worker, 2);

	/* A prestage, then its worker removed (its buckets moved first). */
	ck_assert_int_eq(wave_plugin_rpc_prestage(ctx, 2, 2), -ERANGE);
	ck_assert_int_eq(wave_plugin_rpc_prestage(ctx, 1, 2), 0);
	ck_assert_int_eq(wave_plugin_rpc_prestage(ctx, 1, 0), -EBUSY);
	apply(&(struct wave_rpc_msg){ .type = WAVE_RPC_OUTCOME, .decision = WAVE_RPC_PRESTAGE,
				      .bucket = 1, .worker = 2, .gen = 7, .epoch = 6,
				      .cur_worker = 2 },
	      0);
	ck_assert_int_eq(wave_plugin_rpc_prestaged(ctx, 1), 2);
	buckets(1, 1, 0, 7, 0);
	worker(WAVE_RPC_WORKER_DEL, 2, 7, 0);
	ck_assert_int_eq(wave_plugin_rpc_prestaged(ctx, 1), -ENOENT);
	ck_assert_int_eq(wave_rpc_state_stats(st, &s), 0);
	ck_assert_uint_eq(s.refused_range, 3);
	ck_assert_uint_eq(s.refused_worker, 1);
	ck_assert_uint_eq(s.refused_same, 1);
	ck_assert_uint_eq(s.refused_pending, 2);
	ck_assert_uint_eq(s.committed, 2);
	ck_assert_uint_eq(s.aborted[WAVE_ABORT_STALE], 1);
	ck_assert_uint_eq(s.aborted_why[WAVE_RPC_WHY_BUCKET_MOVED], 1);
	ck_assert_uint_eq(s.aborted_why[WAVE_RPC_WHY_NONE], 0);
	ck_assert_uint_eq(s.sent, 3);
}
END_TEST

START_TEST(replay_into_new_plugin)
{
	struct wave_rpc_msg rep = { .type = WAVE_RPC_REPORT, .period_ns = 1000, .now_ns = 1 };

	worker(WAVE_RPC_WORKER_ADD, 0, 1, 0);
	worker(WAVE_RPC_WORKER_ADD, 3, 1, 0);
	ck_assert_int_eq(wave_rpc_state_replay(st, ctx), 0);
	ck_assert_uint_eq(R.added, 4);
	ck_assert_uint_eq(R.reports, 0); /* no period closed yet */
	apply(&rep, 0);
	ck_assert_int_eq(wave_rpc_state_replay(st, ctx), 0);
	ck_assert_uint_eq(R.added, 6);
	ck_assert_uint_eq(R.reports, 2);
	ck_assert_int_eq(wave_rpc_state_replay(st, NULL), -EINVAL);
}
END_TEST

/* ---- the loader asks the domain whether a plugin's table will do ---------------- */

static const struct wave_rpc_ops no_abort_ops = {
	.size = sizeof(struct wave_rpc_ops),
	.load_report = rec_report,
};
WAVE_PLUGIN_DEFINE(no_abort, WAVE_DOMAIN_RPC, "1", NULL, NULL, NULL, &no_abort_ops)

static const struct wave_rpc_ops small_ops = {
	.size = offsetof(struct wave_rpc_ops, txn_committed),
	.load_report = rec_report,
};
WAVE_PLUGIN_DEFINE(small, WAVE_DOMAIN_RPC, "1", NULL, NULL, NULL, &small_ops)

START_TEST(loader_checks_ops)
{
	struct wave_plugin *p = NULL;
	struct wave_error err;
	char want[128];

	ck_assert_int_eq(wave_plugin_open_static(wave_plugin_entry_no_abort, &p, &err),
			 -WAVE_EPLUGIN);
	ck_assert_str_eq(err.text, "missing op txn_aborted (required for rpc plugins)");
	ck_assert_int_eq(wave_plugin_open_static(wave_plugin_entry_small, &p, &err),
			 -WAVE_EPLUGIN);
	snprintf(want, sizeof(want), "rpc ops table is %zu bytes, at least %zu are needed",
		 offsetof(struct wave_rpc_ops, txn_committed), sizeof(struct wave_rpc_ops));
	ck_assert_str_eq(err.text, want);
	ck_assert_ptr_null(p);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("rpc_state");
	TCase *tc = tcase_create("model");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, events_applied_and_refused);
	tcase_add_test(tc, rates_decay);
	tcase_add_test(tc, class_service_times);
	tcase_add_test(tc, decisions_checked_and_stamped);
	tcase_add_test(tc, replay_into_new_plugin);
	tcase_add_test(tc, loader_checks_ops);
	suite_add_tcase(s, tc);
	return wave_check_run(s);
}
