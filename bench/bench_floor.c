/* SPDX-License-Identifier: MIT */
/*
 * The floor: a bare cache-line ping-pong between the same two pinned
 * processes. The host stores a number into one line, the agent spins until
 * it sees it and stores it into a second line, the host spins on that. No
 * message, no ring, no check: each one-way figure is one cache line moving
 * between the two CPUs, plus the timer. No channel can be faster, so this
 * row says what the machine allows at the moment of the run (a VM's two
 * vCPUs may share a core complex, or not).
 */
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"

struct floor_lines {
	_Alignas(64) _Atomic uint64_t ping; /* written by the host only */
	_Alignas(64) _Atomic uint64_t pong; /* written by the agent only */
};

struct floor_run {
	const struct bench_cfg *cfg;
	struct bench_result *res;
	struct floor_lines *lines;
	uint64_t rounds; /* all round trips, warm-up included */
};

static void spin_until(_Atomic uint64_t *w, uint64_t v, bool yield)
{
	/* Acquire pairs with the peer's release store of @v. */
	while (atomic_load_explicit(w, memory_order_acquire) != v)
		if (yield)
			sched_yield();
}

static int floor_agent(void *arg)
{
	struct floor_run *f = arg;

	for (uint64_t i = 1; i <= f->rounds; i++) {
		spin_until(&f->lines->ping, i, f->cfg->single_core);
		atomic_store_explicit(&f->lines->pong, i, memory_order_release);
	}
	return 0;
}

/* Round trips @first .. @first + @n - 1; timed one by one into @samples,
 * or, without, not at all (the caller times the whole loop). */
static void bounce(struct floor_run *f, uint64_t first, unsigned n, uint64_t *samples)
{
	uint64_t prev = samples ? bench_ticks() : 0;

	for (unsigned i = 0; i < n; i++) {
		atomic_store_explicit(&f->lines->ping, first + i, memory_order_release);
		spin_until(&f->lines->pong, first + i, f->cfg->single_core);
		if (samples) {
			uint64_t now = bench_ticks();
			samples[i] = now - prev;
			prev = now;
		}
	}
}

/* Warm-up, a loop timed as a whole, a loop timed per round trip: the same
 * three phases as the channels' latency runs. */
static int floor_host(void *arg)
{
	struct floor_run *f = arg;
	const struct bench_cfg *c = f->cfg;
	uint64_t *samples = malloc(sizeof(*samples) * c->iters);
	uint64_t t0, t1;

	if (!samples)
		return -ENOMEM;
	bounce(f, 1, c->warmup, NULL);
	t0 = bench_ticks();
	bounce(f, 1 + (uint64_t)c->warmup, c->iters, NULL);
	t1 = bench_ticks();
	bounce(f, 1 + (uint64_t)c->warmup + c->iters, c->iters, samples);
	struct bench_lat l = bench_lat_from_rtts(samples, c->iters);
	l.loop_mean = bench_ticks_to_ns(t1 - t0) / c->iters / 2;
	f->res->lat[f->res->n_lat++] = l;
	free(samples);
	return 0;
}

int bench_floor_run(const struct bench_cfg *cfg, struct bench_result *res)
{
	struct floor_run f = { cfg, res, NULL, (uint64_t)cfg->warmup + 2 * (uint64_t)cfg->iters };
	pid_t agent, host;
	int ret, st;

	if (res->n_lat >= BENCH_MAX_REPS)
		return -EINVAL;
	f.lines = bench_shared_alloc(sizeof(*f.lines));
	if (!f.lines)
		return -ENOMEM;
	ret = bench_spawn(cfg->agent_cpu, floor_agent, &f, &agent);
	if (ret == 0) {
		ret = bench_spawn(cfg->host_cpu, floor_host, &f, &host);
		struct bench_watch w;
		bench_watch_run(&w, cfg, agent, host);
		if (ret == 0 && (st = bench_wait_run(host, bench_run_timeout_ms(cfg), &w, res->offcpu,
						     &res->n_off)) != 0)
			ret = st < 0 ? st : -EPROTO;
		st = bench_wait(agent, ret == 0 ? 10000 : 1);
		if (st != 0 && ret == 0)
			ret = st < 0 ? st : -EPROTO;
	}
	bench_shared_free(f.lines, sizeof(*f.lines));
	res->have_pct = true;
	res->have_tput = false;
	snprintf(res->note, sizeof(res->note), "two cache lines, one written by each side");
	return ret;
}
