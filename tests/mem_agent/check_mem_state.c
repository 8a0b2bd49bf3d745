/* SPDX-License-Identifier: MIT */
/*
 * The mem state model, driven message by message with a recording plugin
 * linked into the test: impossible events are refused and counted (and
 * change nothing), accesses move chunks in the histogram and cooling
 * shifts it, decisions are checked before they leave, outcomes are
 * matched to the decision in flight, the scan hand's work is bounded, a
 * hot swap replays the regions, and a chunk costs 32 bytes at a thousand
 * chunks and at ten million. After each step, every invariant of the state
 * is checked from scratch.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include <check.h>
#include <wave/mem_state.h>
#include <wave/plugin.h>
#include <wave/plugin_loader.h>
#include <wave/plugin_mem.h>

#include "check_run.h"
#include "domains/mem/mem_agent_impl.h"

#define RG 5u                      /* the region the tests use */
#define ID(i) (((uint64_t)RG << 32) | (i))
#define ID2(i) (((uint64_t)(RG + 1) << 32) | (i))

/* ---- a plugin that records its calls ------------------------------------ */

enum { C_TICK, C_ADD, C_DEL, C_SAMPLES, C_FAULT, C_CHANGED, C_PRESSURE, C_COMMIT, C_ABORT, C_N };

static struct {
	unsigned calls[C_N];
	struct wave_mem_chunk_view last;  /* the last chunk view an op got */
	bool last_null;                   /* txn_aborted's view was NULL */
	unsigned last_result, last_n;
	uint64_t last_free, last_now;
	int emit_ret;                     /* 1 taken, 0 full, or an error */
	struct wave_msg sent[64];
	unsigned n_sent;
} rec;

static int r_tick(struct wave_plugin_ctx *c, uint64_t now)
{
	rec.calls[C_TICK]++;
	rec.last_now = now;
	return 0;
}
static int r_add(struct wave_plugin_ctx *c, uint32_t region, uint64_t n)
{
	rec.calls[C_ADD]++;
	rec.last_n = (unsigned)n;
	return 0;
}
static int r_del(struct wave_plugin_ctx *c, uint32_t region)
{
	rec.calls[C_DEL]++;
	return 0;
}
static int r_samples(struct wave_plugin_ctx *c, const struct wave_mem_chunk_view *v, unsigned n)
{
	rec.calls[C_SAMPLES]++;
	rec.last = v[n - 1];
	rec.last_n = n;
	return 0;
}
static int r_fault(struct wave_plugin_ctx *c, const struct wave_mem_chunk_view *v)
{
	rec.calls[C_FAULT]++;
	rec.last = *v;
	return -EIO; /* counted as an event error, not returned */
}
static int r_changed(struct wave_plugin_ctx *c, const struct wave_mem_chunk_view *v)
{
	rec.calls[C_CHANGED]++;
	rec.last = *v;
	return 0;
}
static int r_pressure(struct wave_plugin_ctx *c, uint32_t tier, uint64_t free)
{
	rec.calls[C_PRESSURE]++;
	rec.last_free = free;
	return 0;
}
static int r_commit(struct wave_plugin_ctx *c, const struct wave_mem_chunk_view *v, uint16_t d)
{
	rec.calls[C_COMMIT]++;
	rec.last = *v;
	return 0;
}
static int r_abort(struct wave_plugin_ctx *c, const struct wave_mem_chunk_view *v, uint64_t id,
		   uint16_t d, uint32_t tier, unsigned result)
{
	rec.calls[C_ABORT]++;
	rec.last_null = !v;
	if (v)
		rec.last = *v;
	rec.last_result = result;
	return 0;
}

static const struct wave_mem_ops rec_ops = {
	.size = sizeof(struct wave_mem_ops),
	.tick = r_tick,
	.region_add = r_add,
	.region_del = r_del,
	.samples = r_samples,
	.fault = r_fault,
	.chunk_changed = r_changed,
	.pressure = r_pressure,
	.txn_committed = r_commit,
	.txn_aborted = r_abort,
};

WAVE_PLUGIN_DEFINE(mem_rec, WAVE_DOMAIN_MEM, "1.0.0", "records calls", NULL, NULL, &rec_ops)

/* An ABI 1.3 table (its size ends before fault_weight, which the state
 * must not read: set here to show it is not), and one weighing faults 3. */
static const struct wave_mem_ops rec13_ops = {
	.size = offsetof(struct wave_mem_ops, fault_weight),
	.tick = r_tick,
	.fault = r_fault,
	.fault_weight = 5,
};

WAVE_PLUGIN_DEFINE(mem_rec13, WAVE_DOMAIN_MEM, "1.0.0", "ABI 1.3 table", NULL, NULL, &rec13_ops)

static const struct wave_mem_ops rec3_ops = {
	.size = sizeof(struct wave_mem_ops),
	.tick = r_tick,
	.fault = r_fault,
	.fault_weight = 3,
};

WAVE_PLUGIN_DEFINE(mem_rec3, WAVE_DOMAIN_MEM, "1.0.0", "faults weigh 3", NULL, NULL, &rec3_ops)

static int rec_emit(void *user, const struct wave_msg *m, unsigned n)
{
	(void)user;
	if (rec.emit_ret <= 0)
		return rec.emit_ret;
	ck_assert_uint_lt(rec.n_sent, 64);
	rec.sent[rec.n_sent++] = m[0];
	return 1;
}

/* ---- fixture: tiers 0 (4 chunks), 1 (NUMA, no limit), 2 (far) ----------- */

static struct wave_plugin *plugin;
static struct wave_mem_state *st;
static struct wave_plugin_ctx *ctx;

static struct wave_msg enc(const struct wave_mem_msg *d)
{
	struct wave_msg m;

	ck_assert_int_eq(wave_mem_msg_encode(d, 3, &m), 0);
	return m;
}

static struct wave_plugin_ctx *new_ctx(void)
{
	struct wave_plugin_ctx_opts o;
	struct wave_plugin_ctx *c = NULL;

	wave_plugin_ctx_opts_init(&o);
	o.emit = rec_emit;
	o.domain_state = st;
	ck_assert_int_eq(wave_plugin_ctx_create(plugin, &o, &c, NULL), 0);
	return c;
}

static struct wave_msg setup3(uint32_t fast_cap)
{
	struct wave_mem_msg s = { .type = WAVE_MEM_SETUP, .n = 3,
				  .kind = { WAVE_MEM_KIND_NUMA, WAVE_MEM_KIND_NUMA,
					    WAVE_MEM_KIND_FAR },
				  .capacity = { fast_cap, WAVE_MEM_CAP_NONE, WAVE_MEM_CAP_NONE } };

	return enc(&s);
}

static void setup(void)
{
	struct wave_msg s = setup3(4);

	memset(&rec, 0, sizeof(rec));
	rec.emit_ret = 1;
	ck_assert_int_eq(wave_plugin_open_static(wave_plugin_entry_mem_rec, &plugin, NULL), 0);
	ck_assert_int_eq(wave_mem_state_create(&s, 0, &st), 0);
	ctx = new_ctx();
}

static void teardown(void)
{
	wave_plugin_ctx_destroy(ctx);
	wave_mem_state_destroy(st);
	wave_plugin_unload(plugin);
}

/* Applies @d, expecting @want, then checks every invariant. */
static void apply(const struct wave_mem_msg *d, int want)
{
	struct wave_msg m = enc(d);

	ck_assert_int_eq(wave_mem_state_apply(st, ctx, &m), want);
	ck_assert_int_eq(wave_mem_state_check(st), 0);
}

static void add_region(uint32_t region, uint64_t n, uint32_t tier)
{
	struct wave_mem_msg d = { .type = WAVE_MEM_REGION_ADD, .region = region, .count = n,
				  .chunk_size = 65536, .tier = tier, .seq = 1, .now_ns = 100 };

	apply(&d, 0);
}

static void sample(uint32_t index, uint8_t n)
{
	struct wave_mem_msg d = { .type = WAVE_MEM_SAMPLES, .region = RG, .n = 1,
				  .index = { index }, .accesses = { n } };

	apply(&d, 0);
}

static void tick(uint64_t now)
{
	struct wave_mem_msg d = { .type = WAVE_MEM_TICK, .now_ns = now };

	apply(&d, 0);
}

static void outcome(uint16_t decision, uint64_t chunk, uint64_t seq, uint64_t new_seq,
		    uint32_t tier, unsigned result, int want)
{
	struct wave_mem_msg d = { .type = WAVE_MEM_OUTCOME, .decision = decision, .chunk = chunk,
				  .seq = seq, .new_seq = new_seq, .tier = tier,
				  .result = (uint8_t)result };

	apply(&d, want);
}

static struct wave_mem_chunk_view chunk(uint64_t id)
{
	struct wave_mem_chunk_view v;

	ck_assert_int_eq(wave_plugin_mem_chunk(ctx, id, &v), 0);
	return v;
}

static struct wave_mem_tier_view tier_view(uint32_t t)
{
	struct wave_mem_tier_view v;

	ck_assert_int_eq(wave_plugin_mem_tier(ctx, t, &v), 0);
	return v;
}

static struct wave_mem_state_stats stats(void)
{
	struct wave_mem_state_stats s;

	ck_assert_int_eq(wave_mem_state_stats(st, &s), 0);
	return s;
}

/* ---- tests ------------------------------------------------------------- */

START_TEST(regions_come_and_go)
{
	struct wave_mem_msg del = { .type = WAVE_MEM_REGION_DEL, .region = RG };

	add_region(RG, 16, 1);
	ck_assert_uint_eq(rec.calls[C_ADD], 1);
	ck_assert_uint_eq(rec.last_n, 16);
	ck_assert_uint_eq(stats().chunks, 16);
	ck_assert_uint_eq(stats().regions, 1);
	ck_assert_uint_eq(tier_view(1).used, 16);
	ck_assert_uint_eq(chunk(ID(15)).seq, 1);
	ck_assert_int_eq(wave_plugin_mem_chunk(ctx, ID(16), &rec.last), -ENOENT);
	/* The same region again is refused; another one fits beside it. */
	{
		struct wave_mem_msg d = { .type = WAVE_MEM_REGION_ADD, .region = RG, .count = 2,
					  .chunk_size = 4096 };

		apply(&d, -EEXIST);
	}
	add_region(RG + 1, 2, 0);
	ck_assert_uint_eq(tier_view(0).used, 2);
	apply(&del, 0);
	ck_assert_uint_eq(rec.calls[C_DEL], 1);
	ck_assert_uint_eq(stats().chunks, 2);
	ck_assert_uint_eq(tier_view(1).used, 0);
	apply(&del, -ENOENT);
	ck_assert_uint_eq(stats().unknown, 1);
	ck_assert_uint_eq(stats().dup_region, 1);
}
END_TEST

/* Accesses raise counts and move chunks up the histogram; cooling halves
 * every count, which is one bucket down for all, at once. */
START_TEST(histogram_and_cooling)
{
	uint64_t h[WAVE_MEM_HIST_BUCKETS];

	add_region(RG, 8, 1);
	tick(5000);
	sample(0, 1);   /* bucket 1 */
	sample(1, 6);   /* bucket 3 */
	sample(2, 200); /* bucket 8 */
	sample(2, 100); /* 300: bucket 9 */
	ck_assert_uint_eq(rec.last.count, 300);
	ck_assert_uint_eq(rec.last.bucket, 9);
	ck_assert_uint_eq(rec.last.last_ns, 5000);
	ck_assert_int_eq(wave_plugin_mem_hist(ctx, 1, h), 0);
	ck_assert(h[0] == 5 && h[1] == 1 && h[3] == 1 && h[9] == 1);
	/* What fits: the hottest bucket alone is 1 chunk; three reach 1. */
	ck_assert_int_eq(wave_plugin_mem_fit_bucket(ctx, 1), 4);
	ck_assert_int_eq(wave_plugin_mem_fit_bucket(ctx, 3), 1);
	ck_assert_int_eq(wave_plugin_mem_fit_bucket(ctx, 0), 10);
	ck_assert_int_eq(wave_plugin_mem_cool(ctx), 0);
	ck_assert_int_eq(wave_mem_state_check(st), 0);
	ck_assert_int_eq(wave_plugin_mem_hist(ctx, WAVE_MEM_TIER_ALL, h), 0);
	ck_assert(h[0] == 6 && h[1] == 0 && h[2] == 1 && h[8] == 1);
	ck_assert_uint_eq(chunk(ID(2)).count, 150);
	ck_assert_uint_eq(chunk(ID(0)).count, 0);
	/* Forty coolings leave nothing, lazily too. */
	for (int i = 0; i < 40; i++)
		ck_assert_int_eq(wave_plugin_mem_cool(ctx), 0);
	ck_assert_int_eq(wave_mem_state_check(st), 0);
	ck_assert_uint_eq(chunk(ID(2)).count, 0);
	ck_assert_uint_eq(stats().coolings, 41);
	ck_assert_uint_eq(stats().accesses, 307);
}
END_TEST

/* A refused message changes nothing and is counted by its reason. */
START_TEST(refuses_impossible_events)
{
	struct wave_mem_msg d;
	struct wave_msg m;

	add_region(RG, 4, 1);
	d = (struct wave_mem_msg){ .type = WAVE_MEM_CHUNK_CHANGED, .chunk = ID(1), .seq = 1 };
	apply(&d, -ESTALE); /* does not advance */
	d.chunk = ID(4), d.seq = 2;
	apply(&d, -ENOENT);
	d.chunk = ((uint64_t)(RG + 1) << 32) | 1;
	apply(&d, -ENOENT);
	/* A fault of a chunk that is not in the far tier. */
	d = (struct wave_mem_msg){ .type = WAVE_MEM_FAULT, .chunk = ID(1), .seq = 2, .tier = 0,
				   .now_ns = 1u << 30 };
	apply(&d, -EPROTO);
	ck_assert_uint_eq(wave_plugin_mem_now(ctx), 100); /* its time was not taken */
	/* Samples naming one chunk past the region: none counts. */
	d = (struct wave_mem_msg){ .type = WAVE_MEM_SAMPLES, .region = RG, .n = 2,
				   .index = { 0, 4 }, .accesses = { 9, 9 } };
	apply(&d, -ENOENT);
	ck_assert_uint_eq(chunk(ID(0)).count, 0);
	/* An outcome of nothing in flight. */
	outcome(WAVE_MEM_MIGRATE, ID(0), 1, 2, 0, WAVE_COMMITTED, -EPROTO);
	/* What a host never sends. */
	d = (struct wave_mem_msg){ .type = WAVE_MEM_MIGRATE, .chunk = ID(0), .seq = 1, .tier = 0 };
	apply(&d, -ENOMSG);
	m = setup3(4);
	ck_assert_int_eq(wave_mem_state_apply(st, ctx, &m), -ENOMSG);
	m.payload.u8[47] = 1;
	ck_assert_int_eq(wave_mem_state_apply(st, ctx, &m), -EBADMSG);
	ck_assert_uint_eq(stats().seq_backwards, 1);
	ck_assert_uint_eq(stats().unknown, 3);
	ck_assert_uint_eq(stats().bad_transition, 2);
	ck_assert_uint_eq(stats().bad_msgs, 3);
	ck_assert_uint_eq(rec.calls[C_CHANGED] + rec.calls[C_FAULT] + rec.calls[C_SAMPLES], 0);
}
END_TEST

START_TEST(host_changes_and_faults)
{
	struct wave_mem_msg d = { .type = WAVE_MEM_CHUNK_CHANGED, .chunk = ID(2), .seq = 5,
				  .tier = 2, .now_ns = 300 };
	struct wave_mem_msg p = { .type = WAVE_MEM_PRESSURE, .tier = 0, .count = 0 };
	struct wave_msg m;

	add_region(RG, 4, 1);
	apply(&d, 0);
	ck_assert_uint_eq(rec.last.tier, 2);
	ck_assert_uint_eq(tier_view(2).used, 1);
	d.type = WAVE_MEM_FAULT, d.seq = 6, d.tier = 0, d.now_ns = 400;
	apply(&d, 0);
	ck_assert_uint_eq(rec.calls[C_FAULT], 1);
	ck_assert_uint_eq(rec.last.tier, 0);
	/* This plugin's fault_weight is 0: a fault is a touch (count at least
	 * 1, its time), never more. */
	ck_assert_uint_eq(rec.last.count, 1);
	ck_assert_uint_eq(rec.last.last_ns, 400);
	ck_assert_uint_eq(tier_view(0).used, 1);
	d.type = WAVE_MEM_CHUNK_CHANGED, d.seq = 7, d.tier = 2;
	apply(&d, 0);
	d.type = WAVE_MEM_FAULT, d.seq = 8, d.tier = 0, d.now_ns = 500;
	apply(&d, 0);
	ck_assert_uint_eq(rec.last.count, 1);
	ck_assert_uint_eq(rec.last.last_ns, 500);
	/* Without a plugin (and for an ABI 1.3 table) a fault is one access. */
	d.type = WAVE_MEM_CHUNK_CHANGED, d.seq = 9, d.tier = 2;
	apply(&d, 0);
	d.type = WAVE_MEM_FAULT, d.seq = 10, d.tier = 0;
	m = enc(&d);
	ck_assert_int_eq(wave_mem_state_apply(st, NULL, &m), 0);
	ck_assert_uint_eq(chunk(ID(2)).count, 2);
	ck_assert_uint_eq(stats().faults, 3);
	ck_assert_uint_eq(stats().accesses, 2);
	apply(&p, 0);
	ck_assert_uint_eq(rec.calls[C_PRESSURE], 1);
	/* The plugin's error is the context's to count, not the event's. */
	ck_assert_uint_eq(stats().events, 8);
}
END_TEST

/* What a fault adds to a chunk's count is the table's fault_weight: 0
 * (this file's recording plugin) a touch, 3 three accesses, and a table
 * built before the field one access (ABI 1.3's rule). */
START_TEST(fault_weight_by_table)
{
	struct wave_plugin *p[2], *orig = plugin;
	const struct wave_plugin_desc *(*entry[2])(void) = { wave_plugin_entry_mem_rec13,
							       wave_plugin_entry_mem_rec3 };
	const uint32_t want[2] = { 1 + 1, 1 + 1 + 3 };
	struct wave_mem_msg d = { .type = WAVE_MEM_CHUNK_CHANGED, .chunk = ID(1), .tier = 2 };
	uint64_t seq = 1;

	add_region(RG, 4, 1);
	d.seq = ++seq;
	apply(&d, 0);
	d.type = WAVE_MEM_FAULT, d.seq = ++seq, d.tier = 0;
	apply(&d, 0);
	ck_assert_uint_eq(chunk(ID(1)).count, 1); /* weight 0: touched */
	for (unsigned k = 0; k < 2; k++) {
		ck_assert_int_eq(wave_plugin_open_static(entry[k], &p[k], NULL), 0);
		wave_plugin_ctx_destroy(ctx);
		plugin = p[k];
		ctx = new_ctx();
		d = (struct wave_mem_msg){ .type = WAVE_MEM_CHUNK_CHANGED, .chunk = ID(1),
					   .seq = ++seq, .tier = 2 };
		apply(&d, 0);
		d.type = WAVE_MEM_FAULT, d.seq = ++seq, d.tier = 0;
		apply(&d, 0);
		ck_assert_uint_eq(chunk(ID(1)).count, want[k]);
		ck_assert_uint_eq(rec.calls[C_FAULT], k + 2);
	}
	ck_assert_uint_eq(stats().faults, 3);
	wave_plugin_ctx_destroy(ctx);
	wave_plugin_unload(p[0]);
	wave_plugin_unload(p[1]);
	plugin = orig;
	ctx = new_ctx();
}
END_TEST

/* Chunk @id leaves for the far tier (the host's move, sequence number
 * @seq) at @out_ns and a fault brings it back at @back_ns. */
static void out_and_back(uint64_t id, uint64_t seq, uint64_t out_ns, uint64_t back_ns)
{
	struct wave_mem_msg d = { .type = WAVE_MEM_CHUNK_CHANGED, .chunk = id, .seq = seq,
				  .tier = 2, .now_ns = out_ns };

	apply(&d, 0);
	d.type = WAVE_MEM_FAULT, d.seq = seq + 1, d.tier = 0, d.now_ns = back_ns;
	apply(&d, 0);
}

/* How long a chunk was far before a fault brought it back (the view's
 * refault_ms, ABI 1.5), timed from the events: a move into the far tier
 * (the host's, or a committed decision), then the FAULT. 0 while far,
 * after a return by a decision, for a chunk never seen touched, and when
 * its 16 bits of ms could have wrapped (last seen 65.5 s before). */
START_TEST(refault_times)
{
	const uint64_t ms = 1000000;
	struct wave_mem_msg d = { .type = WAVE_MEM_CHUNK_CHANGED, .chunk = ID(2), .seq = 2,
				  .tier = 2, .now_ns = 1000 * ms };

	add_region(RG, 4, 1);
	tick(900 * ms);
	sample(2, 1);
	apply(&d, 0);
	ck_assert_uint_eq(chunk(ID(2)).refault_ms, 0);
	d.type = WAVE_MEM_FAULT, d.seq = 3, d.tier = 0, d.now_ns = 1003 * ms + ms / 2;
	apply(&d, 0);
	ck_assert_uint_eq(rec.last.refault_ms, 3);
	ck_assert_uint_eq(chunk(ID(2)).refault_ms, 3);
	/* Out by the agent's decision, back by a fault in under 1 ms: 1. */
	tick(66000 * ms);
	ck_assert_int_eq(wave_plugin_mem_migrate(ctx, ID(2), 3, 2), 0);
	outcome(WAVE_MEM_MIGRATE, ID(2), 3, 4, 2, WAVE_COMMITTED, 0);
	d.seq = 5, d.now_ns = 66000 * ms + ms / 2;
	apply(&d, 0);
	ck_assert_uint_eq(chunk(ID(2)).refault_ms, 1);
	/* Out again, back 65 ms later, then out and back by decisions. */
	out_and_back(ID(2), 6, 67000 * ms, 67065 * ms);
	ck_assert_uint_eq(chunk(ID(2)).refault_ms, 65);
	ck_assert_int_eq(wave_plugin_mem_migrate(ctx, ID(2), 7, 2), 0);
	outcome(WAVE_MEM_MIGRATE, ID(2), 7, 8, 2, WAVE_COMMITTED, 0);
	ck_assert_int_eq(wave_plugin_mem_migrate(ctx, ID(2), 8, 0), 0);
	outcome(WAVE_MEM_MIGRATE, ID(2), 8, 9, 0, WAVE_COMMITTED, 0);
	ck_assert_uint_eq(chunk(ID(2)).refault_ms, 0);
	/* Last seen at 67065 ms, out at 200 s and back 2 ms later: the 16
	 * bits could have wrapped, so it cannot be told. */
	out_and_back(ID(2), 10, 200000 * ms, 200002 * ms);
	ck_assert_uint_eq(chunk(ID(2)).refault_ms, 0);
	/* Never seen touched: nor can this. */
	out_and_back(ID(3), 2, 200002 * ms, 200003 * ms);
	ck_assert_uint_eq(chunk(ID(3)).refault_ms, 0);
}
END_TEST

START_TEST(decisions_checked_before_sending)
{
	struct wave_mem_msg d;

	add_region(RG, 8, 1);
	ck_assert_int_eq(wave_plugin_mem_migrate(ctx, ID(0), 1, 3), -ERANGE);
	ck_assert_int_eq(wave_plugin_mem_migrate(ctx, ID(8), 1, 0), -ENOENT);
	ck_assert_int_eq(wave_plugin_mem_migrate(ctx, ID(0), 2, 0), -ESTALE);
	ck_assert_int_eq(wave_plugin_mem_migrate(ctx, ID(0), 1, 1), -EPERM); /* there already */
	ck_assert_int_eq(wave_plugin_mem_prefetch(ctx, ID(0), 1, 2), -EPERM); /* not faster */
	ck_assert_uint_eq(rec.n_sent, 0);
	/* Tier 0 holds 4 chunks: four go, the fifth would not fit. */
	for (unsigned i = 0; i < 4; i++)
		ck_assert_int_eq(wave_plugin_mem_migrate(ctx, ID(i), 1, 0), 0);
	ck_assert_int_eq(wave_plugin_mem_prefetch(ctx, ID(4), 1, 0), -EBUSY);
	ck_assert_int_eq(wave_plugin_mem_migrate(ctx, ID(0), 1, 2), -EPERM); /* in flight */
	ck_assert_uint_eq(tier_view(0).incoming, 4);
	ck_assert_uint_eq(tier_view(1).outgoing, 4);
	ck_assert_int_eq(wave_mem_state_check(st), 0);
	ck_assert_uint_eq(rec.n_sent, 4);
	ck_assert_int_eq(wave_mem_msg_decode(&rec.sent[3], 3, &d), 0);
	ck_assert(d.type == WAVE_MEM_MIGRATE && d.chunk == ID(3) && d.seq == 1 && d.tier == 0);
	ck_assert_uint_eq(chunk(ID(3)).pending, WAVE_MEM_MIGRATE);
	/* A victim goes one tier down; the slowest tier has no victims. */
	ck_assert_int_eq(wave_plugin_mem_victim(ctx, ID(5), 1), 0);
	ck_assert_int_eq(wave_mem_msg_decode(&rec.sent[4], 3, &d), 0);
	ck_assert(d.type == WAVE_MEM_VICTIM && d.tier == 2);
	ck_assert_uint_eq(stats().victims, 1);
	{
		struct wave_mem_msg c = { .type = WAVE_MEM_CHUNK_CHANGED, .chunk = ID(6), .seq = 2,
					  .tier = 2 };

		apply(&c, 0);
	}
	ck_assert_int_eq(wave_plugin_mem_victim(ctx, ID(6), 2), -EPERM);
	ck_assert_uint_eq(stats().sent, 5);
	ck_assert_uint_eq(stats().refused_invalid, 1);
	ck_assert_uint_eq(stats().refused_gone, 1);
	ck_assert_uint_eq(stats().refused_stale, 1);
	ck_assert_uint_eq(stats().refused_not_eligible, 4);
	ck_assert_uint_eq(stats().refused_busy, 1);
}
END_TEST

/* KEEP, a hint: checked against the state like a decision (a chunk of a
 * limited NUMA tier, at its seq, nothing in flight), sent with the tier it
 * is in, counted apart from decisions, and nothing waits for an outcome. */
START_TEST(keep_hints_checked)
{
	struct wave_mem_msg d;

	add_region(RG, 4, 0);
	add_region(RG + 1, 2, 1);
	ck_assert_int_eq(wave_plugin_mem_keep(ctx, ID(4), 1), -ENOENT);
	ck_assert_int_eq(wave_plugin_mem_keep(ctx, ID(0), 2), -ESTALE);
	ck_assert_int_eq(wave_plugin_mem_keep(ctx, ID2(0), 1), -EPERM); /* no limit there */
	ck_assert_int_eq(wave_plugin_mem_migrate(ctx, ID(1), 1, 1), 0);
	ck_assert_int_eq(wave_plugin_mem_keep(ctx, ID(1), 1), -EPERM);   /* in flight */
	ck_assert_int_eq(wave_plugin_mem_keep(ctx, ID(0), 1), 0);
	ck_assert_int_eq(wave_plugin_mem_keep(NULL, ID(0), 1), -EINVAL);
	ck_assert_uint_eq(rec.n_sent, 2);
	ck_assert_int_eq(wave_mem_msg_decode(&rec.sent[1], 3, &d), 0);
	ck_assert(d.type == WAVE_MEM_KEEP && d.chunk == ID(0) && d.seq == 1 && d.tier == 0);
	ck_assert_uint_eq(chunk(ID(0)).pending, 0);
	ck_assert_uint_eq(stats().keeps, 1);
	ck_assert_uint_eq(stats().sent, 1);
	ck_assert_uint_eq(stats().refused_gone, 1);
	ck_assert_uint_eq(stats().refused_stale, 1);
	ck_assert_uint_eq(stats().refused_not_eligible, 2);
	rec.emit_ret = 0; /* backpressure */
	ck_assert_int_eq(wave_plugin_mem_keep(ctx, ID(0), 1), -EAGAIN);
	ck_assert_uint_eq(stats().keeps, 1);
	ck_assert_uint_eq(stats().refused_full, 1);
	ck_assert_int_eq(wave_mem_state_check(st), 0);
}
END_TEST

/* A full channel is backpressure: the decision is refused, counted, and
 * nothing is marked in flight. */
START_TEST(full_channel_changes_nothing)
{
	add_region(RG, 2, 1);
	rec.emit_ret = 0;
	ck_assert_int_eq(wave_plugin_mem_migrate(ctx, ID(0), 1, 0), -EAGAIN);
	rec.emit_ret = -WAVE_ECLOSED;
	ck_assert_int_eq(wave_plugin_mem_victim(ctx, ID(0), 1), -WAVE_ECLOSED);
	ck_assert_uint_eq(stats().refused_full, 2);
	ck_assert_uint_eq(chunk(ID(0)).pending, 0);
	ck_assert_uint_eq(tier_view(0).incoming, 0);
	ck_assert_uint_eq(stats().victims, 0);
	ck_assert_int_eq(wave_mem_state_check(st), 0);
	rec.emit_ret = 1;
	ck_assert_int_eq(wave_plugin_mem_migrate(ctx, ID(0), 1, 0), 0);
}
END_TEST

START_TEST(outcomes_match_decisions)
{
	add_region(RG, 4, 1);
	ck_assert_int_eq(wave_plugin_mem_migrate(ctx, ID(0), 1, 0), 0);
	ck_assert_int_eq(wave_plugin_mem_victim(ctx, ID(1), 1), 0);
	ck_assert_int_eq(wave_plugin_mem_migrate(ctx, ID(2), 1, 0), 0);
	/* Wrong kind, wrong tier, a seq the chunk never had: not this one. */
	outcome(WAVE_MEM_VICTIM, ID(0), 1, 2, 0, WAVE_COMMITTED, -EPROTO);
	outcome(WAVE_MEM_MIGRATE, ID(0), 1, 2, 2, WAVE_COMMITTED, -EPROTO);
	outcome(WAVE_MEM_MIGRATE, ID(0), 7, 8, 0, WAVE_COMMITTED, -EPROTO);
	/* Committed: the chunk is in its new tier at its new seq. */
	outcome(WAVE_MEM_MIGRATE, ID(0), 1, 9, 0, WAVE_COMMITTED, 0);
	ck_assert_uint_eq(rec.calls[C_COMMIT], 1);
	ck_assert(rec.last.tier == 0 && rec.last.seq == 9 && rec.last.pending == 0);
	ck_assert_uint_eq(tier_view(0).used, 1);
	/* Aborted: the chunk stays, free for another decision. */
	outcome(WAVE_MEM_VICTIM, ID(1), 1, 0, 2, WAVE_ABORT_NOT_ELIGIBLE, 0);
	ck_assert(rec.calls[C_ABORT] == 1 && !rec.last_null && rec.last.tier == 1);
	ck_assert_uint_eq(rec.last_result, WAVE_ABORT_NOT_ELIGIBLE);
	ck_assert_uint_eq(stats().victims, 0);
	ck_assert_int_eq(wave_plugin_mem_victim(ctx, ID(1), 1), 0);
	/* A chunk the host changed meanwhile cannot have been committed. */
	{
		struct wave_mem_msg c = { .type = WAVE_MEM_CHUNK_CHANGED, .chunk = ID(2), .seq = 3,
					  .tier = 2 };

		apply(&c, 0);
	}
	outcome(WAVE_MEM_MIGRATE, ID(2), 1, 4, 0, WAVE_COMMITTED, -EPROTO);
	outcome(WAVE_MEM_MIGRATE, ID(2), 1, 0, 0, WAVE_ABORT_STALE, 0);
	ck_assert_uint_eq(tier_view(2).outgoing, 0);
	/* The region goes with a victim in flight: its abort finds no chunk. */
	{
		struct wave_mem_msg del = { .type = WAVE_MEM_REGION_DEL, .region = RG };

		apply(&del, 0);
	}
	ck_assert_uint_eq(stats().victims, 0);
	outcome(WAVE_MEM_VICTIM, ID(1), 1, 0, 2, WAVE_ABORT_GONE, 0);
	ck_assert(rec.calls[C_ABORT] == 3 && rec.last_null);
	outcome(WAVE_MEM_VICTIM, ID(1), 1, 2, 2, WAVE_COMMITTED, -ENOENT);
	/* A prefetch: prestaged, committed when the host gets to it. */
	add_region(RG + 1, 2, 1);
	ck_assert_int_eq(wave_plugin_mem_prefetch(ctx, ID2(1), 1, 0), 0);
	ck_assert_uint_eq(chunk(ID2(1)).pending, WAVE_MEM_PREFETCH);
	outcome(WAVE_MEM_PREFETCH, ID2(1), 1, 3, 0, WAVE_COMMITTED, 0);
	ck_assert(rec.last.tier == 0 && rec.last.seq == 3);
	ck_assert_uint_eq(stats().committed, 2);
	ck_assert_uint_eq(stats().aborted[WAVE_ABORT_NOT_ELIGIBLE], 1);
	ck_assert_uint_eq(stats().aborted[WAVE_ABORT_STALE], 1);
	ck_assert_uint_eq(stats().aborted[WAVE_ABORT_GONE], 1);
}
END_TEST

START_TEST(victims_are_bounded)
{
	add_region(RG, WAVE_MEM_MAX_VICTIMS + 1, 1);
	rec.emit_ret = 1;
	for (uint64_t i = 0; i < WAVE_MEM_MAX_VICTIMS; i++) {
		rec.n_sent = 0; /* the recorder keeps 64 */
		ck_assert_int_eq(wave_plugin_mem_victim(ctx, ID(i), 1), 0);
	}
	ck_assert_int_eq(wave_plugin_mem_victim(ctx, ID(WAVE_MEM_MAX_VICTIMS), 1), -EBUSY);
	ck_assert_int_eq(wave_mem_state_check(st), 0);
}
END_TEST

/* The hand looks at most @budget chunks per call, resumes where it
 * stopped, and offers only chunks of its tier with nothing in flight. */
START_TEST(scan_is_bounded)
{
	struct wave_mem_chunk_view v[16];

	add_region(RG, 10, 1);
	add_region(RG + 1, 3, 0);
	ck_assert_int_eq(wave_plugin_mem_migrate(ctx, ID(1), 1, 2), 0);
	/* Tier 1: the hand starts on the first slot (region RG). */
	ck_assert_int_eq(wave_plugin_mem_scan(ctx, 1, 4, v, 16), 3);
	ck_assert(v[0].id == ID(0) && v[1].id == ID(2) && v[2].id == ID(3));
	ck_assert_int_eq(wave_plugin_mem_scan(ctx, 1, 2, v, 1), 1);
	ck_assert_uint_eq(v[0].id, ID(4));
	ck_assert_int_eq(wave_plugin_mem_scan(ctx, 1, 100, v, 16), 14);
	/* Around the table and back to the start (slots of RG+1 hold tier 0). */
	ck_assert_uint_eq(v[0].id, ID(5));
	ck_assert_int_eq(wave_plugin_mem_scan(ctx, 0, 3, v, 16), 0); /* hand on RG first */
	ck_assert_int_eq(wave_plugin_mem_scan(ctx, 0, 200, v, 3), 3);
	ck_assert_uint_eq(v[0].id, ((uint64_t)(RG + 1) << 32));
	ck_assert_int_eq(wave_plugin_mem_scan(ctx, 3, 1, v, 1), -ERANGE);
	ck_assert_int_eq(wave_plugin_mem_scan(ctx, 0, 1, NULL, 1), -EINVAL);
}
END_TEST

/* A new instance gets every region and a tick; the old one's decisions
 * complete into it. */
START_TEST(hot_swap_replays)
{
	add_region(RG, 4, 1);
	add_region(RG + 1, 2, 1);
	tick(777);
	ck_assert_int_eq(wave_plugin_mem_migrate(ctx, ID(0), 1, 0), 0);
	wave_plugin_ctx_destroy(ctx);
	memset(rec.calls, 0, sizeof(rec.calls));
	ctx = new_ctx();
	ck_assert_int_eq(wave_mem_state_replay(st, ctx), 0);
	ck_assert_uint_eq(rec.calls[C_ADD], 2);
	ck_assert_uint_eq(rec.calls[C_TICK], 1);
	ck_assert_uint_eq(rec.last_now, 777);
	outcome(WAVE_MEM_MIGRATE, ID(0), 1, 2, 0, WAVE_COMMITTED, 0);
	ck_assert_uint_eq(rec.calls[C_COMMIT], 1);
}
END_TEST

START_TEST(bad_arguments)
{
	struct wave_mem_state *other;
	struct wave_msg m = setup3(4);
	struct wave_mem_chunk_view v;
	struct wave_mem_tier_view tv;
	uint64_t h[WAVE_MEM_HIST_BUCKETS];

	ck_assert_int_eq(wave_mem_state_create(NULL, 0, &other), -EINVAL);
	ck_assert_int_eq(wave_mem_state_create(&m, 0, NULL), -EINVAL);
	m.type = WAVE_MEM_TICK;
	ck_assert_int_eq(wave_mem_state_create(&m, 0, &other), -EBADMSG);
	ck_assert_int_eq(wave_mem_state_apply(NULL, ctx, &m), -EINVAL);
	ck_assert_int_eq(wave_mem_state_apply(st, ctx, NULL), -EINVAL);
	ck_assert_int_eq(wave_mem_state_replay(st, NULL), -EINVAL);
	ck_assert_int_eq(wave_mem_state_stats(st, NULL), -EINVAL);
	/* A context over another state. */
	m = setup3(1);
	ck_assert_int_eq(wave_mem_state_create(&m, 0, &other), 0);
	ck_assert_int_eq(wave_mem_state_apply(other, ctx, &m), -EINVAL);
	wave_mem_state_destroy(other);
	ck_assert_int_eq(wave_plugin_mem_migrate(NULL, 1, 1, 0), -EINVAL);
	ck_assert_int_eq(wave_plugin_mem_chunk(ctx, 1, NULL), -EINVAL);
	ck_assert_int_eq(wave_plugin_mem_chunk(NULL, 1, &v), -EINVAL);
	ck_assert_int_eq(wave_plugin_mem_tier(ctx, 3, &tv), -ERANGE);
	ck_assert_int_eq(wave_plugin_mem_hist(ctx, 3, h), -ERANGE);
	ck_assert_int_eq(wave_plugin_mem_tier_count(ctx), 3);
	ck_assert_int_eq(wave_plugin_mem_tier_count(NULL), -EINVAL);
	ck_assert_int_eq(wave_plugin_mem_cool(NULL), -EINVAL);
	ck_assert_uint_eq(wave_plugin_mem_now(NULL), 0);
	ck_assert_uint_eq(tier_view(0).capacity, 4);
	ck_assert_uint_eq(tier_view(2).capacity, WAVE_MEM_CAP_NONE);
	ck_assert_uint_eq(tier_view(2).kind, WAVE_MEM_KIND_FAR);
}
END_TEST

/* The state's memory is 32 bytes per chunk, at a thousand chunks and at
 * ten million (one region each), plus a fixed few kilobytes; a region
 * past the state's chunk budget is refused. */
static void bytes_per_chunk(uint64_t n)
{
	struct wave_mem_state_stats s0 = stats(), s;

	add_region(RG, n, 1);
	s = stats();
	ck_assert_uint_eq(s.bytes - s0.bytes, n * 32);
	ck_assert_uint_lt(s0.bytes, 16384);
	sample((uint32_t)(n - 1), 3);
	ck_assert_uint_eq(chunk(ID(n - 1)).count, 3);
}

START_TEST(bytes_per_chunk_1k)
{
	bytes_per_chunk(1000);
}
END_TEST

START_TEST(bytes_per_chunk_10m)
{
	bytes_per_chunk(10000000);
}
END_TEST

START_TEST(chunk_budget)
{
	struct wave_msg m = setup3(4);
	struct wave_mem_state *small;
	struct wave_mem_msg d = { .type = WAVE_MEM_REGION_ADD, .region = 1, .count = 65,
				  .chunk_size = 4096 };
	struct wave_msg a = enc(&d);

	ck_assert_int_eq(wave_mem_state_create(&m, 64, &small), 0);
	ck_assert_int_eq(wave_mem_state_apply(small, NULL, &a), -ENOMEM);
	d.count = 64;
	a = enc(&d);
	ck_assert_int_eq(wave_mem_state_apply(small, NULL, &a), 0);
	wave_mem_state_destroy(small);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("mem_state");
	TCase *tc = tcase_create("state");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, regions_come_and_go);
	tcase_add_test(tc, histogram_and_cooling);
	tcase_add_test(tc, refuses_impossible_events);
	tcase_add_test(tc, keep_hints_checked);
	tcase_add_test(tc, host_changes_and_faults);
	tcase_add_test(tc, fault_weight_by_table);
	tcase_add_test(tc, refault_times);
	tcase_add_test(tc, decisions_checked_before_sending);
	tcase_add_test(tc, full_channel_changes_nothing);
	tcase_add_test(tc, outcomes_match_decisions);
	tcase_add_test(tc, victims_are_bounded);
	tcase_add_test(tc, scan_is_bounded);
	tcase_add_test(tc, hot_swap_replays);
	tcase_add_test(tc, bad_arguments);
	tcase_add_test(tc, bytes_per_chunk_1k);
	tcase_add_test(tc, bytes_per_chunk_10m);
	tcase_add_test(tc, chunk_budget);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return wave_check_run(suite());
}
