/* SPDX-License-Identifier: MIT */
/*
 * wave-bench-mem-state: the cost per event of the agent's mem state model
 * and a policy, at a thousand and at ten million chunks.
 *
 * One region of N chunks (1e3, 1e6, 1e7) in tier 1 of a two-tier SETUP
 * (tier 0 holds N/4). Pre-encoded messages, applied one after the other
 * with wave_mem_state_apply() (decode, state, policy):
 *   samples/rand  SAMPLES of 8 chunks picked at random over the region:
 *                 every chunk a cache miss when N is large;
 *   samples/seq   SAMPLES of 8 consecutive chunks, in order: the same work
 *                 without the misses (the model's own cost);
 *   chunk/rand    CHUNK_CHANGED of a random chunk to the other tier.
 * Each with the state alone and with mem_hemem deciding (linked in; its
 * samples op remembers promotion candidates, no ticks are sent, so it
 * makes no decisions: the figure is the event path). Median of the runs,
 * in ns per message and messages per second; bytes per chunk from the
 * state's own accounting (wave_mem_state_stats.bytes) over the chunks.
 *
 *   wave-bench-mem-state [--quick] [--runs N] [--msgs N]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <wave/wave.h>

#include "../examples/example_args.h"

#define PROG "wave-bench-mem-state"
/* Bounds that keep a typo from allocating what the machine has not: the
 * messages take 64 bytes each, and a run walks all of them. */
#define MAX_RUNS 1000
#define MAX_MSGS 10000000u

const struct wave_plugin_desc *wave_plugin_entry_mem_hemem(void);

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * UINT64_C(2685821657736338717);
}

static int encode(const struct wave_mem_msg *d, struct wave_msg *m)
{
	int ret = wave_mem_msg_encode(d, 2, m);

	if (ret < 0)
		fprintf(stderr, "wave-bench-mem-state: encode: %s\n", wave_strerror(ret));
	return ret;
}

enum kind { SAMPLES_RAND, SAMPLES_SEQ, CHUNK_RAND, KINDS };
static const char *const kind_name[KINDS] = { "samples/rand", "samples/seq", "chunk/rand" };

/* @n messages of @kind over @chunks chunks of region 1. */
static int make_msgs(enum kind kind, uint64_t chunks, struct wave_msg *out, size_t n)
{
	static uint64_t seq = 2;
	uint64_t next = 0;

	for (size_t i = 0; i < n; i++) {
		struct wave_mem_msg d = { .type = WAVE_MEM_SAMPLES, .region = 1, .n = 8 };

		if (kind == CHUNK_RAND) {
			d = (struct wave_mem_msg){ .type = WAVE_MEM_CHUNK_CHANGED,
						   .chunk = (1ull << 32) | (rnd() % chunks),
						   .seq = seq++, .tier = (uint32_t)(i & 1) };
		} else {
			for (unsigned k = 0; k < 8; k++) {
				d.index[k] = (uint32_t)(kind == SAMPLES_RAND ? rnd() % chunks
									     : next++ % chunks);
				d.accesses[k] = 1;
			}
		}
		if (encode(&d, &out[i]) < 0)
			return -1;
	}
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

struct run_cfg {
	uint64_t chunks;
	bool policy;
	unsigned runs;
	size_t msgs;
};

/* Median ns per message of @kind; bytes per chunk into *@bpc. */
static int measure(const struct run_cfg *c, enum kind kind, struct wave_plugin *p, double *ns,
		   double *bpc)
{
	struct wave_mem_msg setup = { .type = WAVE_MEM_SETUP, .n = 2,
				      .kind = { WAVE_MEM_KIND_NUMA, WAVE_MEM_KIND_NUMA },
				      .capacity = { (uint32_t)(c->chunks / 4 + 1),
						    WAVE_MEM_CAP_NONE } };
	struct wave_mem_msg add = { .type = WAVE_MEM_REGION_ADD, .region = 1, .tier = 1,
				    .count = c->chunks, .chunk_size = 65536, .seq = 1 };
	struct wave_msg *msgs = aligned_alloc(64, c->msgs * sizeof(*msgs)), m;
	uint64_t *t = calloc(c->runs, sizeof(*t));
	int ret = -1;

	if (!msgs || !t) {
		fprintf(stderr, PROG ": out of memory for %zu messages\n", c->msgs);
		goto out;
	}
	if (make_msgs(kind, c->chunks, msgs, c->msgs) < 0)
		goto out;
	for (unsigned r = 0; r < c->runs; r++) {
		struct wave_plugin_ctx_opts o;
		struct wave_plugin_ctx *ctx = NULL;
		struct wave_mem_state_stats s;
		struct wave_mem_state *st;
		uint64_t t0;

		if (encode(&setup, &m) < 0 || wave_mem_state_create(&m, 0, &st) < 0)
			goto out;
		wave_plugin_ctx_opts_init(&o);
		o.domain_state = st;
		if (c->policy && wave_plugin_ctx_create(p, &o, &ctx, NULL) < 0) {
			wave_mem_state_destroy(st);
			goto out;
		}
		if (encode(&add, &m) < 0 || wave_mem_state_apply(st, ctx, &m) < 0) {
			fprintf(stderr, "wave-bench-mem-state: %llu chunks did not fit\n",
				(unsigned long long)c->chunks);
			wave_plugin_ctx_destroy(ctx);
			wave_mem_state_destroy(st);
			goto out;
		}
		t0 = now_ns();
		for (size_t i = 0; i < c->msgs; i++)
			if (wave_mem_state_apply(st, ctx, &msgs[i]) < 0 && kind != CHUNK_RAND) {
				fprintf(stderr, "wave-bench-mem-state: a message was refused\n");
				wave_plugin_ctx_destroy(ctx);
				wave_mem_state_destroy(st);
				goto out;
			}
		t[r] = now_ns() - t0;
		if (wave_mem_state_stats(st, &s) == 0)
			*bpc = (double)(s.bytes) / (double)s.chunks;
		wave_plugin_ctx_destroy(ctx);
		wave_mem_state_destroy(st);
	}
	qsort(t, c->runs, sizeof(*t), cmp_u64);
	*ns = (double)t[c->runs / 2] / (double)c->msgs;
	ret = 0;
out:
	free(msgs);
	free(t);
	return ret;
}

int main(int argc, char **argv)
{
	static const uint64_t sizes[] = { 1000, 1000000, 10000000 };
	struct run_cfg c = { .runs = 5, .msgs = 1000000 };
	struct wave_plugin *p;
	unsigned n_sizes = 3;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick")) {
			c.runs = 1, c.msgs = 10000, n_sizes = 2;
		} else if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
			c.runs = example_uint(PROG, "--runs", argv[++i], 1, MAX_RUNS);
		} else if (!strcmp(argv[i], "--msgs") && i + 1 < argc) {
			c.msgs = example_uint(PROG, "--msgs", argv[++i], 1, MAX_MSGS);
		} else {
			bool help = !strcmp(argv[i], "--help");

			fprintf(help ? stdout : stderr,
				"usage: " PROG " [--quick] [--runs N (1..%d)] [--msgs N (1..%u)]\n",
				MAX_RUNS, MAX_MSGS);
			return help ? 0 : 2;
		}
	}
	if (wave_plugin_open_static(wave_plugin_entry_mem_hemem, &p, NULL)) {
		fprintf(stderr, PROG ": no plugin\n");
		return 1;
	}
	printf("%-10s %-13s %-7s %10s %12s %10s\n", "chunks", "messages", "policy", "ns/msg",
	       "msgs/s", "bytes/chunk");
	for (unsigned s = 0; s < n_sizes; s++)
		for (int k = 0; k < KINDS; k++)
			for (int pol = 0; pol < 2; pol++) {
				double ns = 0, bpc = 0;

				c.chunks = sizes[s];
				c.policy = pol;
				if (measure(&c, (enum kind)k, p, &ns, &bpc) < 0)
					return 1;
				printf("%-10llu %-13s %-7s %10.1f %12.0f %10.2f\n",
				       (unsigned long long)c.chunks, kind_name[k],
				       pol ? "hemem" : "none", ns, 1e9 / ns, bpc);
			}
	wave_plugin_unload(p);
	return 0;
}
