/* SPDX-License-Identifier: MIT */
/*
 * example_mem_idle: a complete mem-domain (memory tiering) policy plugin,
 * built on the plugin kit's tiering loop.
 *
 * The agent keeps the state of every chunk (its tier, an access count that
 * cools, when it was last touched) from the host's reports, and calls the
 * policy's ops with views of chunks. This policy only says which chunks are
 * hot and which are cold; <wave/plugin_kit/mem_tiering.h> (installed with
 * libwave's headers, header only: the loop of the built-in mem_hemem,
 * mem_memtis and mem_sdfm) promotes hot chunks into the fast tier (tier 0),
 * demotes cold ones out of it when it needs room, and keeps cold chunks
 * prestaged as victims on the host, which frees them first under pressure.
 *
 * Here a chunk is cold when nothing touched it for idle_ms, and hot when it
 * was touched at least hot_count times (a fault counts as a touch) and not
 * idle. Build this file like example_rr.c (see CMakeLists.txt, or
 * `cc -std=c11 -shared -fPIC -fvisibility=hidden $(pkg-config --cflags
 * wave) -o wave_example_mem_idle.so example_mem_idle.c`), and name it in
 * domains.mem.plugin of the agent's configuration.
 *
 * Parameters: idle_ms (default 100), hot_count (default 2), and the kit's
 * own (mt_params(): max_moves, victims, scan_budget, refault_ms).
 */
#include <errno.h>
#include <stdlib.h>

#include <wave/plugin.h>
#include <wave/plugin_kit/mem_tiering.h>
#include <wave/plugin_mem.h>

#define MS 1000000u

struct idle {
	uint64_t idle_ns, hot_count;
	uint64_t now; /* host time of the latest tick */
	struct mt mt;
};

static bool cold(void *p, const struct wave_mem_chunk_view *c)
{
	const struct idle *s = p;

	return s->now >= c->last_ns + s->idle_ns;
}

static bool hot(void *p, const struct wave_mem_chunk_view *c)
{
	const struct idle *s = p;

	return c->count >= s->hot_count && !cold(p, c);
}

static int idle_init(struct wave_plugin_ctx *ctx)
{
	struct idle *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->idle_ns = wave_plugin_param_uint(ctx, "idle_ms", 100) * MS;
	s->hot_count = wave_plugin_param_uint(ctx, "hot_count", 2);
	if (!s->idle_ns) {
		wave_plugin_log(ctx, WAVE_LOG_ERROR, "idle_ms must be above 0");
		free(s);
		return -EINVAL;
	}
	mt_params(&s->mt, ctx);
	s->mt.policy = s;
	s->mt.hot = hot;
	s->mt.cold = cold;
	wave_plugin_set_priv(ctx, s);
	return 0;
}

static void idle_fini(struct wave_plugin_ctx *ctx)
{
	free(wave_plugin_priv(ctx));
}

static int idle_tick(struct wave_plugin_ctx *ctx, uint64_t now_ns)
{
	struct idle *s = wave_plugin_priv(ctx);

	s->now = now_ns;
	return mt_tick(&s->mt, ctx, s->mt.max_moves);
}

/* Sampled chunks, and chunks back from the far tier by a fault: hot ones
 * become candidates for promotion at the next tick. */
static int idle_samples(struct wave_plugin_ctx *ctx, const struct wave_mem_chunk_view *c,
			unsigned n)
{
	struct idle *s = wave_plugin_priv(ctx);

	for (unsigned i = 0; i < n; i++)
		mt_note(&s->mt, &c[i]);
	return 0;
}

static int idle_fault(struct wave_plugin_ctx *ctx, const struct wave_mem_chunk_view *c)
{
	return idle_samples(ctx, c, 1);
}

/* The kit counts its decisions in flight: tell it how each ended. */
static int idle_committed(struct wave_plugin_ctx *ctx, const struct wave_mem_chunk_view *c,
			  uint16_t decision)
{
	(void)c;
	mt_outcome(&((struct idle *)wave_plugin_priv(ctx))->mt, decision);
	return 0;
}

static int idle_aborted(struct wave_plugin_ctx *ctx, const struct wave_mem_chunk_view *c,
			uint64_t id, uint16_t decision, uint32_t tier, unsigned result)
{
	(void)c, (void)id, (void)tier, (void)result;
	mt_outcome(&((struct idle *)wave_plugin_priv(ctx))->mt, decision);
	return 0;
}

static const struct wave_mem_ops idle_ops = {
	.size = sizeof(struct wave_mem_ops),
	.tick = idle_tick,
	.samples = idle_samples,
	.fault = idle_fault,
	.txn_committed = idle_committed,
	.txn_aborted = idle_aborted,
	.fault_weight = 1, /* a fault is one touch */
};

WAVE_PLUGIN_DEFINE(example_mem_idle, WAVE_DOMAIN_MEM, "1.0.0",
		   "example: chunks idle for idle_ms are cold, touched hot_count times hot",
		   idle_init, idle_fini, &idle_ops)
