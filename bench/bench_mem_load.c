/* SPDX-License-Identifier: MIT */
/*
 * wave-bench-mem's workloads, the same code under every configuration:
 *
 *   gups  HeMem's GUPS with a hot set: 8-byte read-modify-writes at random
 *         places of a table as large as the working set, 90% of them in a
 *         hot tenth of it, the rest anywhere; at o->move_ms the hot set
 *         moves to another tenth (the time to regain the throughput after
 *         that is one of the figures);
 *   zipf  a key-value mix: values of o->value bytes, keys drawn from a
 *         Zipf distribution (theta o->theta, YCSB's generator), 95% reads
 *         of a whole value and 5% writes of one; a key's rank is scattered
 *         over the memory (hot keys are not neighbours, as in a real heap).
 *
 * One op in BMEM_SAMPLE_EVERY is timed on its own (two clock reads); the
 * clock reads also drive the timeline, the polls, the move and the end.
 * The address of one op in o->report_every is handed to the configuration
 * in batches (a runtime that reports accesses to the objects it knows; 8,
 * the default, is a sampling PMU's share, 1 every access). After the
 * timed phase every byte is checked (bmem_load_check()): GUPS's table must
 * XOR to what its updates say, every value must hold its key and its
 * latest version. A lost or stale byte fails the run.
 *
 * Everything the workload keeps besides the memory it runs on is made in
 * shared memory by the parent, before any run: a Linux run's child, in a
 * memory cgroup, is charged for the working set alone.
 */
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "bench_mem.h"

/* A multiplier coprime with any key count below it: ranks to slots. */
#define PERM 2654435761ull
#define WRITE_PCT 5u
#define HOT_PCT 90u
#define BATCH 64u

/* What the reads summed to: stored, so that they are not optimised away. */
volatile uint64_t bmem_sink;

struct bmem_load {
	struct bmem_opts o;
	enum bmem_work w;
	uint64_t *t;              /* the memory (GUPS: the table) */
	uint64_t words;           /* GUPS: table entries */
	uint64_t hot[2], hot_len; /* GUPS: the hot set before and after the move, in words */
	uint64_t xor_fill;        /* GUPS: XOR of the table after the fill */
	uint64_t n_keys;          /* zipf */
	double zetan, alpha, eta, half;
	uint32_t *version;        /* zipf: every key's latest version (shared memory) */
	size_t version_len;
	uint64_t xor_ops;         /* GUPS: XOR of every update of the last run */
	uint64_t bad_reads;       /* zipf: reads of the last run that found a wrong value */
};

static void *shared(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	memset(p, 0, len); /* charged now, to the parent */
	return p;
}

const char *bmem_work_name(enum bmem_work w)
{
	return w == BMEM_GUPS ? "gups" : "zipf";
}

uint64_t bmem_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int bmem_pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) < 0 ? -errno : 0;
}

uint64_t bmem_rq_wait_ns(void)
{
	unsigned long long run, wait = 0;
	FILE *f = fopen("/proc/thread-self/schedstat", "r");

	if (!f)
		return 0;
	if (fscanf(f, "%llu %llu", &run, &wait) != 2)
		wait = 0;
	fclose(f);
	return wait;
}

static uint64_t rng_next(uint64_t *s)
{
	/* xorshift64*: cheap, and good enough to scatter accesses. */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

/* ---- zipf (YCSB's generator, Gray et al.) ---------------------------------------- */

static void zipf_init(struct bmem_load *l)
{
	double th = l->o.theta, zeta2 = 1 + pow(0.5, th);

	l->zetan = 0;
	for (uint64_t i = 1; i <= l->n_keys; i++)
		l->zetan += pow((double)i, -th);
	l->alpha = 1 / (1 - th);
	l->eta = (1 - pow(2.0 / (double)l->n_keys, 1 - th)) / (1 - zeta2 / l->zetan);
	l->half = zeta2;
}

static uint64_t zipf_rank(const struct bmem_load *l, uint64_t r)
{
	double u = (double)(r >> 11) * 0x1.0p-53, uz = u * l->zetan;
	uint64_t k;

	if (uz < 1)
		return 0;
	if (uz < l->half)
		return 1;
	k = (uint64_t)((double)l->n_keys * pow(l->eta * u - l->eta + 1, l->alpha));
	return k < l->n_keys ? k : l->n_keys - 1;
}

static uint64_t slot_of(const struct bmem_load *l, uint64_t rank)
{
	return rank * PERM % l->n_keys;
}

static uint64_t value_word(uint64_t slot, uint32_t version, size_t i)
{
	return (slot << 32 | version) + i;
}

/* ---- making, filling ---------------------------------------------------------------- */

int bmem_load_new(const struct bmem_opts *o, enum bmem_work w, struct bmem_load **out)
{
	struct bmem_load *l = shared(sizeof(*l));

	if (!l)
		return -ENOMEM;
	l->o = *o;
	l->w = w;
	l->words = o->ws_bytes / 8;
	if (w == BMEM_GUPS) {
		/* Chunk aligned tenths, well apart: the third and the seventh. */
		uint64_t tenth = o->ws_bytes / 10 / o->chunk * o->chunk;
		l->hot_len = tenth / 8;
		l->hot[0] = 3 * tenth / 8;
		l->hot[1] = 7 * tenth / 8;
	} else {
		l->n_keys = o->ws_bytes / o->value;
		l->version_len = l->n_keys * sizeof(*l->version);
		if (!(l->version = shared(l->version_len))) {
			munmap(l, sizeof(*l));
			return -ENOMEM;
		}
		zipf_init(l);
	}
	*out = l;
	return 0;
}

void bmem_load_free(struct bmem_load *l)
{
	if (!l)
		return;
	if (l->version)
		munmap(l->version, l->version_len);
	munmap(l, sizeof(*l));
}

void bmem_load_fill(struct bmem_load *l, char *base)
{
	l->t = (uint64_t *)base;
	if (l->w == BMEM_GUPS) {
		l->xor_fill = 0;
		for (uint64_t i = 0; i < l->words; i++) {
			l->t[i] = i * 0x9e3779b97f4a7c15ull;
			l->xor_fill ^= l->t[i];
		}
		return;
	}
	memset(l->version, 0, l->version_len);
	for (uint64_t s = 0; s < l->n_keys; s++)
		for (size_t i = 0; i < l->o.value / 8; i++)
			l->t[s * (l->o.value / 8) + i] = value_word(s, 0, i);
}

void bmem_load_weights(const struct bmem_load *l, bool after, double *w, size_t n_chunks)
{
	uint64_t per = l->o.chunk / 8; /* words per chunk */

	memset(w, 0, n_chunks * sizeof(*w));
	if (l->w == BMEM_GUPS) {
		uint64_t h0 = l->hot[after] / per, hn = l->hot_len / per;
		for (size_t c = 0; c < n_chunks; c++)
			w[c] = (1 - HOT_PCT / 100.0) / (double)n_chunks;
		for (uint64_t c = h0; c < h0 + hn && c < n_chunks; c++)
			w[c] += HOT_PCT / 100.0 / (double)hn;
		return;
	}
	for (uint64_t r = 0; r < l->n_keys; r++) {
		uint64_t c = slot_of(l, r) * l->o.value / l->o.chunk;
		if (c < n_chunks)
			w[c] += pow((double)(r + 1), -l->o.theta) / l->zetan;
	}
}

/* ---- the ops ------------------------------------------------------------------------ */

struct worker {
	struct bmem_load *l;
	uint64_t rng, xor_ops, hot; /* GUPS: XOR of every update; the hot set now */
	uint64_t bad;
	uint64_t sink;              /* what the reads sum to (bmem_sink) */
};

static const void *op_gups(struct worker *k, uint64_t r)
{
	struct bmem_load *l = k->l;
	uint64_t idx = r % 100 < HOT_PCT ? k->hot + (r >> 8) % l->hot_len : (r >> 8) % l->words;

	l->t[idx] ^= r;
	k->xor_ops ^= r;
	return &l->t[idx];
}

static const void *op_zipf(struct worker *k, uint64_t r)
{
	struct bmem_load *l = k->l;
	size_t nw = l->o.value / 8;
	uint64_t slot = slot_of(l, zipf_rank(l, r));
	uint64_t *v = l->t + slot * nw, sum = 0;

	if ((r >> 4) % 100 < WRITE_PCT) {
		uint32_t ver = ++l->version[slot];
		for (size_t i = 0; i < nw; i++)
			v[i] = value_word(slot, ver, i);
		return v;
	}
	k->bad += v[0] != value_word(slot, l->version[slot], 0);
	for (size_t i = 0; i < nw; i++)
		sum += v[i];
	k->sink += sum;
	return v;
}

static const void *op(struct worker *k)
{
	uint64_t r = rng_next(&k->rng);

	return k->l->w == BMEM_GUPS ? op_gups(k, r) : op_zipf(k, r);
}

/* ---- the worker loop ------------------------------------------------------------------ */

static unsigned lat_bucket(uint64_t ns)
{
	unsigned e, b;

	if (ns < BMEM_LAT_SUB)
		return (unsigned)ns;
	e = 63u - (unsigned)__builtin_clzll(ns); /* >= 4 */
	b = (e - 3) * BMEM_LAT_SUB + (unsigned)((ns >> (e - 4)) & (BMEM_LAT_SUB - 1));
	return b < BMEM_LAT_BUCKETS ? b : BMEM_LAT_BUCKETS - 1;
}

struct loop {
	struct worker k;
	const struct bmem_hooks *h;
	struct bmem_result *res;
	const void *batch[BATCH];
	unsigned n_batch, to_report; /* ops until the next reported one */
	uint64_t next_tick, next_poll, move_at, last;
};

/* Hands the address of one op in report_every to the configuration. */
static void reported(struct loop *p, const void *a)
{
	if (!p->h->report || !p->k.l->o.report_every || --p->to_report)
		return;
	p->to_report = p->k.l->o.report_every;
	p->batch[p->n_batch++] = a;
	if (p->n_batch == BATCH) {
		p->h->report(p->h->ctx, p->batch, p->n_batch);
		p->n_batch = 0;
	}
}

/* One timed op; returns the clock after it. */
static uint64_t timed_op(struct loop *p)
{
	uint64_t t0 = bmem_now_ns(), t1;
	const void *a;

	if (t0 - p->last > BMEM_STALL_NS)
		p->res->stall_ns += t0 - p->last;
	a = op(&p->k);
	t1 = bmem_now_ns();
	p->res->lat[lat_bucket(t1 - t0)]++;
	reported(p, a);
	return t1;
}

/* Ticks, polls and the move, at a timed op's clock reading @now. */
static void between(struct loop *p, uint64_t now, uint64_t ops)
{
	const struct bmem_hooks *h = p->h;
	struct bmem_result *res = p->res;

	while (now >= p->next_tick && res->n_ticks < BMEM_MAX_TICKS) {
		res->tick_ops[res->n_ticks++] = ops;
		if (h->tick)
			h->tick(h->ctx, res);
		p->next_tick += BMEM_TICK_NS;
	}
	if (now >= p->move_at) {
		p->k.hot = p->k.l->hot[1];
		res->move_tick = res->n_ticks;
		p->move_at = UINT64_MAX;
		if (h->moved)
			h->moved(h->ctx);
	}
	if (h->poll && now >= p->next_poll) {
		h->poll(h->ctx);
		p->next_poll = now + (uint64_t)p->k.l->o.poll_us * 1000;
		now = bmem_now_ns(); /* the poll's own time is not a stall */
	}
	p->last = now;
}

void bmem_load_check(const struct bmem_load *l, struct bmem_result *res)
{
	uint64_t x = 0;

	if (l->w == BMEM_GUPS) {
		for (uint64_t i = 0; i < l->words; i++)
			x ^= l->t[i];
		res->bad += x != (l->xor_fill ^ l->xor_ops);
		return;
	}
	for (uint64_t s = 0; s < l->n_keys; s++) {
		const uint64_t *v = l->t + s * (l->o.value / 8);
		for (size_t i = 0; i < l->o.value / 8; i++)
			res->bad += v[i] != value_word(s, l->version[s], i);
	}
	res->bad += l->bad_reads;
}

int bmem_load_run(struct bmem_load *l, const struct bmem_hooks *h, struct bmem_result *res)
{
	const struct bmem_opts *o = &l->o;
	struct loop p = { .k = { .l = l, .rng = o->seed | 1, .hot = l->hot[0] },
			  .h = h,
			  .res = res,
			  .to_report = o->report_every };
	uint64_t start = bmem_now_ns(), end = start + (uint64_t)o->run_ms * 1000000, ops = 0;
	uint64_t rq0 = bmem_rq_wait_ns(), now = start;

	p.next_tick = start + BMEM_TICK_NS;
	p.next_poll = start;
	p.move_at = l->w == BMEM_GUPS ? start + (uint64_t)o->move_ms * 1000000 : UINT64_MAX;
	p.last = start;
	res->move_tick = 0;
	atomic_store(&res->phase, 1);
	while (now < end) {
		for (unsigned i = 1; i < BMEM_SAMPLE_EVERY; i++)
			reported(&p, op(&p.k));
		now = timed_op(&p);
		ops += BMEM_SAMPLE_EVERY;
		between(&p, now, ops);
	}
	if (p.n_batch && h->report)
		h->report(h->ctx, p.batch, p.n_batch);
	atomic_store(&res->phase, 2);
	res->secs = (double)(now - start) / 1e9;
	res->ops = ops;
	res->rq_wait_ns = bmem_rq_wait_ns() - rq0;
	l->xor_ops = p.k.xor_ops;
	l->bad_reads = p.k.bad;
	bmem_sink = p.k.sink;
	return 0;
}
