/* SPDX-License-Identifier: MIT */
/*
 * The mem and rpc replay models on small traces written here, whose
 * figures are known by hand (the stored, recorded traces are
 * replay_models.sh's):
 *  - mem, as recorded: accesses, the fast tier's share, faults, victims,
 *    the host's own demotions and aborts follow the recorded events;
 *  - mem on the model's host: a region larger than the fast tier is
 *    relieved by the CLOCK, a touch of a far chunk faults it back;
 *  - rpc: every request of a bucket goes to its worker's FIFO queue, a
 *    worker given twice a period's work ends it with half its requests
 *    queued, and rpc_rebalance spreads the buckets;
 *  - a trace without its SETUP is refused, naming what is missing;
 *  - the latency histogram's quantiles are within 3 %.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <wave/mem_msg.h>
#include <wave/rpc_msg.h>
#include <wave/wave.h>

#include "check_run.h"
#include "replay/replay.h"

struct tw {
	char path[64];
	struct trace_writer *w;
	uint64_t t;
};

static void tw_open(struct tw *tw, enum wave_domain domain)
{
	struct trace_writer_opts o = { tw->path, 1u << 20, 0 };
	struct trace_meta meta = { .domain = domain, .host_id = 1, .plugin = "none" };
	struct wave_error err;

	snprintf(tw->path, sizeof(tw->path), "/tmp/wave-check-models-%d.trace", (int)getpid());
	tw->t = 1000;
	ck_assert_msg(trace_writer_open(&o, &meta, &tw->w, &err) == 0, "%s", err.text);
}

static void mem_ev(struct tw *tw, struct wave_mem_msg d)
{
	struct wave_msg m;

	if (d.type != WAVE_MEM_SETUP && d.type != WAVE_MEM_SAMPLES && !d.now_ns)
		d.now_ns = tw->t;
	ck_assert_int_eq(wave_mem_msg_encode(&d, 2, &m), 0);
	trace_put(tw->w, TRACE_EVENT, tw->t, &m);
	tw->t += 1000;
}

static struct trace_reader *tw_close(struct tw *tw)
{
	struct trace_reader *r;
	struct wave_error err;

	trace_writer_close(tw->w);
	ck_assert_msg(trace_reader_open(tw->path, &r, &err) == 0, "%s", err.text);
	unlink(tw->path);
	return r;
}

static struct wave_plugin *load(const char *name)
{
	const char *dirs[] = { WAVE_PLUGIN_BUILD_DIR };
	struct wave_plugin_load_opts o;
	struct wave_plugin *p;
	struct wave_error err;

	wave_plugin_load_opts_init(&o);
	o.search_path = dirs;
	o.n_search_path = 1;
	o.flags = WAVE_PLUGIN_F_NO_ENV | WAVE_PLUGIN_F_NO_DEFAULT;
	ck_assert_msg(wave_plugin_load(name, &o, &p, &err) == 0, "%s: %s", name, err.text);
	return p;
}

static double figure(const struct replay_figures *f, const char *name)
{
	for (unsigned i = 0; i < f->n; i++)
		if (strcmp(f->name[i], name) == 0)
			return f->value[i];
	ck_abort_msg("no figure %s", name);
	return 0;
}

#define CHUNK(i) ((UINT64_C(1) << 32) | (i))

/* Two tiers, the fast one of 2 chunks, a far one; a region of 4 chunks
 * in the fast tier, of which the host demoted 2 (chunks 2 and 3). */
static struct trace_reader *mem_trace(void)
{
	struct tw tw;

	tw_open(&tw, WAVE_DOMAIN_MEM);
	mem_ev(&tw, (struct wave_mem_msg){ .type = WAVE_MEM_SETUP, .n = 2,
					   .kind = { WAVE_MEM_KIND_NUMA, WAVE_MEM_KIND_FAR },
					   .capacity = { 2, WAVE_MEM_CAP_NONE } });
	mem_ev(&tw, (struct wave_mem_msg){ .type = WAVE_MEM_REGION_ADD, .region = 1, .tier = 0,
					   .count = 4, .chunk_size = 65536, .seq = 1 });
	for (uint32_t i = 2; i < 4; i++)
		mem_ev(&tw, (struct wave_mem_msg){ .type = WAVE_MEM_CHUNK_CHANGED,
						   .chunk = CHUNK(i), .seq = 2, .tier = 1 });
	/* Chunk 0 touched 3 times (fast), chunk 2 once (far, as recorded). */
	mem_ev(&tw, (struct wave_mem_msg){ .type = WAVE_MEM_SAMPLES, .region = 1, .n = 2,
					   .index = { 0, 2 }, .accesses = { 3, 1 } });
	mem_ev(&tw, (struct wave_mem_msg){ .type = WAVE_MEM_FAULT, .chunk = CHUNK(2), .seq = 3,
					   .tier = 0 });
	mem_ev(&tw, (struct wave_mem_msg){ .type = WAVE_MEM_OUTCOME, .decision = WAVE_MEM_VICTIM,
					   .chunk = CHUNK(1), .seq = 1, .new_seq = 2, .tier = 1,
					   .result = WAVE_COMMITTED });
	mem_ev(&tw, (struct wave_mem_msg){ .type = WAVE_MEM_OUTCOME, .decision = WAVE_MEM_MIGRATE,
					   .chunk = CHUNK(3), .seq = 1, .tier = 0,
					   .result = WAVE_ABORT_STALE });
	mem_ev(&tw, (struct wave_mem_msg){ .type = WAVE_MEM_TICK });
	return tw_close(&tw);
}

START_TEST(mem_recorded)
{
	struct trace_reader *r = mem_trace();
	struct replay_figures f;
	struct wave_error err;

	ck_assert_msg(replay_models[WAVE_DOMAIN_MEM]->quality(r, NULL, NULL, &f, &err) == 0, "%s",
		      err.text);
	ck_assert_double_eq(figure(&f, "accesses"), 5);  /* 3 + 1 sampled, 1 fault */
	ck_assert_double_eq(figure(&f, "fast_share"), 60); /* chunk 0's 3 */
	ck_assert_double_eq(figure(&f, "faults"), 1);
	ck_assert_double_eq(figure(&f, "local_demotions"), 2);
	ck_assert_double_eq(figure(&f, "migrations"), 1);
	ck_assert_double_eq(figure(&f, "victims_used"), 1);
	ck_assert_double_eq(figure(&f, "demotions"), 1);
	ck_assert_double_eq(figure(&f, "abort_stale"), 1);
	ck_assert_double_eq(figure(&f, "aborts"), 1);
	ck_assert_double_eq(figure(&f, "slow_tier_max"), 2);
	ck_assert_double_eq(figure(&f, "model_errors"), 0);
	trace_reader_close(r);
}
END_TEST

/* On the model's host the 4 chunks do not fit: the CLOCK demotes chunks
 * 0 and 1 at once; touching chunk 0 faults it back and demotes chunk 2
 * (the next the hand finds), whose touch faults too and demotes chunk 3;
 * the recorded fault of chunk 2 is then a touch of a fast chunk. */
START_TEST(mem_model)
{
	struct trace_reader *r = mem_trace();
	struct wave_plugin *p = load("mem_hemem");
	struct replay_figures f[2];
	struct wave_error err;

	for (int i = 0; i < 2; i++)
		ck_assert_msg(replay_models[WAVE_DOMAIN_MEM]->quality(r, p, NULL, &f[i], &err) == 0,
			      "%s", err.text);
	ck_assert_double_eq(figure(&f[0], "accesses"), 5);
	ck_assert_double_eq(figure(&f[0], "faults"), 2);
	ck_assert_double_eq(figure(&f[0], "fast_share"), 60); /* chunk 0's last 2, chunk 2's */
	ck_assert_double_eq(figure(&f[0], "local_demotions"), 4);
	ck_assert_double_eq(figure(&f[0], "slow_tier_max"), 2);
	ck_assert_double_eq(figure(&f[0], "model_errors"), 0);
	ck_assert_mem_eq(f[0].value, f[1].value, sizeof(f[0].value)); /* deterministic */
	wave_plugin_unload(p);
	trace_reader_close(r);
}
END_TEST

static void rpc_ev(struct tw *tw, const struct wave_rpc_dims *dims, struct wave_rpc_msg d)
{
	struct wave_msg m;

	ck_assert_int_eq(wave_rpc_msg_encode(&d, d.type == WAVE_RPC_SETUP ? NULL : dims, &m), 0);
	trace_put(tw->w, TRACE_EVENT, tw->t, &m);
}

/* 4 buckets on 2 workers, all on worker 0; in each of 2 periods of 1 ms,
 * 10 requests in bucket 0 and 10 in bucket 1, at 100 us each (worker
 * 0's LOAD): twice what one worker serves in a period. */
static struct trace_reader *rpc_trace(void)
{
	static const struct wave_rpc_dims dims = { 4, 0, 2, 0 };
	uint64_t t0 = 1000000;
	struct tw tw;

	tw_open(&tw, WAVE_DOMAIN_RPC);
	rpc_ev(&tw, &dims, (struct wave_rpc_msg){ .type = WAVE_RPC_SETUP, .dims = dims,
						  .period_ns = 1000000 });
	rpc_ev(&tw, &dims, (struct wave_rpc_msg){ .type = WAVE_RPC_WORKER_ADD, .worker = 0,
						  .gen = 1, .now_ns = t0 });
	rpc_ev(&tw, &dims, (struct wave_rpc_msg){ .type = WAVE_RPC_BUCKETS, .n = 4, .epoch = 1,
						  .e = { { 0, 1 }, { 0, 1 }, { 0, 1 },
							 { 0, 1 } } });
	rpc_ev(&tw, &dims, (struct wave_rpc_msg){ .type = WAVE_RPC_WORKER_ADD, .worker = 1,
						  .gen = 1, .now_ns = t0 });
	for (uint64_t k = 1; k <= 2; k++) {
		rpc_ev(&tw, &dims, (struct wave_rpc_msg){ .type = WAVE_RPC_LOAD, .worker = 0,
							  .busy_ns = 1000000, .completions = 10,
							  .service_ns = 1000000,
							  .max_service_ns = 100000 });
		rpc_ev(&tw, &dims, (struct wave_rpc_msg){ .type = WAVE_RPC_ARRIVALS, .n = 2,
							  .e = { { 0, 10 }, { 1, 10 } } });
		rpc_ev(&tw, &dims, (struct wave_rpc_msg){ .type = WAVE_RPC_REPORT,
							  .period_ns = 1000000,
							  .now_ns = t0 + k * 1000000 });
	}
	return tw_close(&tw);
}

START_TEST(rpc_recorded)
{
	struct trace_reader *r = rpc_trace();
	struct replay_figures f;
	struct wave_error err;

	ck_assert_msg(replay_models[WAVE_DOMAIN_RPC]->quality(r, NULL, NULL, &f, &err) == 0, "%s",
		      err.text);
	ck_assert_double_eq(figure(&f, "requests"), 40);
	ck_assert_double_eq(figure(&f, "unrouted"), 0);
	ck_assert_double_eq(figure(&f, "moves"), 0);
	ck_assert_double_eq(figure(&f, "imbalance_mean"), 2); /* all on one of two */
	/* 4 ms of work over 2 ms: worker 0 always busy once started, 20
	 * requests (2 ms) still waiting at the end, worker 1 idle. */
	ck_assert_double_ge(figure(&f, "w0_busy"), 90);
	ck_assert_double_eq(figure(&f, "w1_busy"), 0);
	ck_assert_double_ge(figure(&f, "queue_max"), 19);
	ck_assert_double_le(figure(&f, "queue_max"), 21);
	ck_assert_double_ge(figure(&f, "wait_max"), 1000); /* us: a period's backlog */
	ck_assert_double_eq(figure(&f, "model_errors"), 0);
	trace_reader_close(r);
}
END_TEST

/* rpc_rebalance moves a bucket to the idle worker after the first
 * period: the second period's work is shared and the waits shorter. */
START_TEST(rpc_model)
{
	struct trace_reader *r = rpc_trace();
	struct wave_plugin *p = load("rpc_rebalance");
	struct replay_figures rec, f;
	struct wave_error err;

	ck_assert_int_eq(replay_models[WAVE_DOMAIN_RPC]->quality(r, NULL, NULL, &rec, &err), 0);
	ck_assert_msg(replay_models[WAVE_DOMAIN_RPC]->quality(r, p, NULL, &f, &err) == 0, "%s",
		      err.text);
	ck_assert_double_eq(figure(&f, "requests"), 40);
	ck_assert_double_ge(figure(&f, "moves"), 1);
	ck_assert_double_eq(figure(&f, "aborts"), 0);
	ck_assert_double_gt(figure(&f, "w1_busy"), 0);
	ck_assert_double_lt(figure(&f, "wait_mean"), figure(&rec, "wait_mean"));
	ck_assert_double_eq(figure(&f, "model_errors"), 0);
	wave_plugin_unload(p);
	trace_reader_close(r);
}
END_TEST

/* A trace may hold ticks where the replayed plugin has no tick op (none
 * of the rpc plugins has one; a hostile trace may hold them anywhere):
 * the tick is counted and nothing is called. It used to call a NULL op. */
START_TEST(tick_without_op)
{
	static const struct wave_msg none;
	static const struct wave_rpc_dims dims = { 4, 0, 2, 0 };
	struct wave_plugin *p = load("rpc_hash");
	struct replay_result res;
	struct trace_reader *r;
	struct wave_error err;
	struct tw tw;

	tw_open(&tw, WAVE_DOMAIN_RPC);
	rpc_ev(&tw, &dims, (struct wave_rpc_msg){ .type = WAVE_RPC_SETUP, .dims = dims,
						  .period_ns = 1000000 });
	rpc_ev(&tw, &dims, (struct wave_rpc_msg){ .type = WAVE_RPC_WORKER_ADD, .worker = 0,
						  .gen = 1, .now_ns = 1000000 });
	trace_put(tw.w, TRACE_TICK, 2000000, &none);
	rpc_ev(&tw, &dims, (struct wave_rpc_msg){ .type = WAVE_RPC_REPORT, .period_ns = 1000000,
						  .now_ns = 3000000 });
	r = tw_close(&tw);
	ck_assert_msg(replay_run(r, p, NULL, NULL, NULL, NULL, &res, &err) == 0, "%s", err.text);
	ck_assert_uint_eq(res.ticks, 1);
	ck_assert_uint_eq(res.events, 3);
	wave_plugin_unload(p);
	trace_reader_close(r);
}
END_TEST

START_TEST(no_setup_refused)
{
	static const char *const what[] = { "no mem SETUP", "no rpc SETUP" };
	enum wave_domain dom = _i ? WAVE_DOMAIN_RPC : WAVE_DOMAIN_MEM;
	struct replay_figures f;
	struct wave_error err;
	struct wave_msg tick = { .type = _i ? WAVE_RPC_REPORT : WAVE_MEM_TICK };
	struct trace_reader *r;
	struct tw tw;
	FILE *out = tmpfile();

	tw_open(&tw, dom);
	trace_put(tw.w, TRACE_EVENT, tw.t, &tick);
	r = tw_close(&tw);
	ck_assert_int_eq(replay_models[dom]->quality(r, NULL, NULL, &f, &err), -EBADMSG);
	ck_assert_msg(strstr(err.text, what[_i]), "%s", err.text);
	ck_assert_int_eq(replay_models[dom]->chrome(r, out, &err), -EBADMSG);
	ck_assert_msg(strstr(err.text, what[_i]), "%s", err.text);
	fclose(out);
	trace_reader_close(r);
}
END_TEST

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

START_TEST(hist_quantiles)
{
	static struct replay_hist h;
	static uint64_t v[10000];
	static const double qs[] = { 0.01, 0.5, 0.9, 0.99, 0.999 };
	uint64_t x = 88172645463325252ull;

	memset(&h, 0, sizeof(h));
	for (size_t i = 0; i < 10000; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		v[i] = x % 5000000 + (i % 7 == 0 ? 40000000 : 0); /* two modes */
		replay_hist_add(&h, v[i], 1);
	}
	qsort(v, 10000, sizeof(v[0]), cmp_u64);
	for (size_t k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
		double want = (double)v[(size_t)(qs[k] * 9999)];
		double got = (double)replay_hist_quantile(&h, qs[k]);

		ck_assert_msg(fabs(got - want) <= 0.032 * want + 1, "q%.3f: %.0f, exact %.0f",
			      qs[k], got, want);
	}
	ck_assert_uint_eq(replay_hist_quantile(&h, 1.0), v[9999]);
	ck_assert_uint_eq(h.count, 10000);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("replay_models");
	TCase *tc = tcase_create("models");

	tcase_add_test(tc, mem_recorded);
	tcase_add_test(tc, mem_model);
	tcase_add_test(tc, rpc_recorded);
	tcase_add_test(tc, rpc_model);
	tcase_add_test(tc, tick_without_op);
	tcase_add_loop_test(tc, no_setup_refused, 0, 2);
	tcase_add_test(tc, hist_quantiles);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return wave_check_run(suite());
}
