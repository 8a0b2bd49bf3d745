/* SPDX-License-Identifier: MIT */
/*
 * The measuring loops, written once for every transport that can carry a
 * struct wave_msg (libwave, and a Unix socket carrying the same 64 bytes),
 * so the transports are compared by the very same code.
 *
 * The host drives, the agent answers:
 *   PING(id)            -> PONG(id)            latency: one message in flight
 *   BEGIN(batch)        -> READY               a throughput run starts
 *   DATA(index) ...                            streamed; the agent checks that
 *                                              the indexes are 0, 1, 2, ...
 *   END(count)          -> ACK(count seen, errors)
 *   STOP                                       the agent exits
 * Every reply is checked, so a transport that lost, reordered or corrupted a
 * message fails the run instead of producing a number.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

enum {
	MSG_PING = WAVE_MSG_APP_FIRST + 1,
	MSG_PONG,
	MSG_BEGIN,
	MSG_READY,
	MSG_DATA,
	MSG_END,
	MSG_ACK,
	MSG_STOP,
};

#define MAX_BATCH 32u
/* Look at the clock once per this many batches while streaming: a reading
 * costs about as much as a small message. */
#define CLOCK_EVERY 64u

const unsigned bench_batches[BENCH_N_BATCHES] = { 1, 8, 32 };

/* On one CPU the peer runs only when we give the CPU up. */
static bool yield_when_idle;

static void idle(void)
{
	if (yield_when_idle)
		sched_yield();
}

static int send_all(const struct bench_xport *x, const struct wave_msg *m, unsigned n)
{
	while (n > 0) {
		int k = x->send(x->ctx, m, n);
		if (k < 0)
			return k;
		if (k == 0)
			idle(); /* ring full: backpressure, try again */
		m += k;
		n -= (unsigned)k;
	}
	return 0;
}

/* Busy-polls until one message arrives. */
static int recv_one(const struct bench_xport *x, struct wave_msg *m)
{
	for (;;) {
		int n = x->recv(x->ctx, m, 1);
		if (n != 0)
			return n < 0 ? n : 0;
		idle();
	}
}

static int send_ctl(const struct bench_xport *x, uint16_t type, uint64_t a, uint64_t b)
{
	struct wave_msg m;

	memset(&m, 0, sizeof(m));
	m.type = type;
	m.payload.u64[0] = a;
	m.payload.u64[1] = b;
	return send_all(x, &m, 1);
}

static int expect(const struct bench_xport *x, uint16_t type, struct wave_msg *m)
{
	int ret = recv_one(x, m);

	if (ret < 0)
		return ret;
	if (m->type != type) {
		fprintf(stderr, "wave-bench-chan: %s: expected message type %#x, got %#x\n",
			x->name, type, m->type);
		return -EPROTO;
	}
	return 0;
}

struct pingpong {
	const struct bench_xport *x;
	struct wave_msg ping; /* made once: the loop only numbers it */
	uint64_t id;          /* of the last ping */
};

/* One ping, its pong checked. */
static int pingpong(void *ctx)
{
	struct pingpong *pp = ctx;
	struct wave_msg pong;
	int ret;

	pp->ping.payload.u64[0] = ++pp->id;
	if ((ret = send_all(pp->x, &pp->ping, 1)) < 0 || (ret = recv_one(pp->x, &pong)) < 0)
		return ret;
	if (pong.type != MSG_PONG || pong.payload.u64[0] != pp->id) {
		fprintf(stderr, "wave-bench-chan: %s: bad reply to ping %llu\n", pp->x->name,
			(unsigned long long)pp->id);
		return -EPROTO;
	}
	return 0;
}

/* Streams DATA in batches of @batch for about @ms milliseconds, then
 * checks with the agent that every message arrived, in order. */
static int stream(void *ctx, unsigned batch, unsigned ms, double *rate)
{
	const struct bench_xport *x = ctx;
	struct wave_msg m[MAX_BATCH], ack;
	uint64_t count = 0, t0, t1, limit;
	unsigned round = 0;
	int ret;

	memset(m, 0, sizeof(m));
	for (unsigned i = 0; i < batch; i++)
		m[i].type = MSG_DATA;
	if ((ret = send_ctl(x, MSG_BEGIN, batch, 0)) < 0 || (ret = expect(x, MSG_READY, &ack)) < 0)
		return ret;
	t0 = bench_ticks();
	limit = t0 + bench_ns_to_ticks((uint64_t)ms * 1000000u);
	do {
		for (unsigned i = 0; i < batch; i++)
			m[i].payload.u64[0] = count + i;
		if ((ret = send_all(x, m, batch)) < 0)
			return ret;
		count += batch;
	} while (++round % CLOCK_EVERY != 0 || bench_ticks() < limit);
	if ((ret = send_ctl(x, MSG_END, count, 0)) < 0 || (ret = expect(x, MSG_ACK, &ack)) < 0)
		return ret;
	t1 = bench_ticks();
	if (ack.payload.u64[0] != count || ack.payload.u64[1] != 0) {
		fprintf(stderr, "wave-bench-chan: %s: sent %llu messages, agent saw %llu with %llu "
			"out of order or corrupt\n", x->name, (unsigned long long)count,
			(unsigned long long)ack.payload.u64[0], (unsigned long long)ack.payload.u64[1]);
		return -EPROTO;
	}
	*rate = (double)count * 1e9 / bench_ticks_to_ns(t1 - t0);
	return 0;
}

/* Times @n calls of @rtt; with @samples, the i-th one's duration in ticks
 * goes to samples[i], at one timer reading per round trip (the end of one
 * is the start of the next); without, the loop reads no timer at all. */
static int rtts(bench_rtt_fn rtt, void *ctx, unsigned n, uint64_t *samples)
{
	uint64_t prev = samples ? bench_ticks() : 0;
	int ret;

	for (unsigned i = 0; i < n; i++) {
		if ((ret = rtt(ctx)) < 0)
			return ret;
		if (samples) {
			uint64_t now = bench_ticks();
			samples[i] = now - prev;
			prev = now;
		}
	}
	return 0;
}

int bench_measure_latency(bench_rtt_fn rtt, void *ctx, const struct bench_cfg *cfg,
			  struct bench_lat *out)
{
	uint64_t *samples = malloc(sizeof(*samples) * cfg->iters);
	uint64_t t0 = 0, t1 = 0;
	int ret;

	if (!samples)
		return -ENOMEM;
	ret = rtts(rtt, ctx, cfg->warmup, NULL);
	if (ret == 0) {
		t0 = bench_ticks();
		ret = rtts(rtt, ctx, cfg->iters, NULL);
		t1 = bench_ticks();
	}
	if (ret == 0)
		ret = rtts(rtt, ctx, cfg->iters, samples);
	if (ret == 0) {
		*out = bench_lat_from_rtts(samples, cfg->iters);
		out->loop_mean = bench_ticks_to_ns(t1 - t0) / cfg->iters / 2;
	}
	free(samples);
	return ret;
}

int bench_measure_rates(bench_stream_fn run_stream, void *ctx, const struct bench_cfg *cfg,
			double rate[BENCH_N_BATCHES])
{
	double warm;
	int ret = 0;

	for (unsigned b = 0; ret == 0 && b < BENCH_N_BATCHES; b++) {
		/* Unreported: page faults, caches, branch predictors and the
		 * CPU's frequency settle. */
		ret = run_stream(ctx, bench_batches[b], cfg->tput_ms / 4 + 1, &warm);
		if (ret == 0)
			ret = run_stream(ctx, bench_batches[b], cfg->tput_ms, &rate[b]);
	}
	return ret;
}

int bench_parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

int bench_host_run(const struct bench_xport *x, const struct bench_cfg *cfg,
		   struct bench_result *res)
{
	struct pingpong pp = { .x = x, .ping.type = MSG_PING };
	double rate[BENCH_N_BATCHES];
	int ret;

	if (!x || !cfg || !res || cfg->iters == 0 || res->n_lat >= BENCH_MAX_REPS ||
	    res->n_tput >= BENCH_MAX_REPS)
		return -EINVAL;
	yield_when_idle = cfg->single_core;
	ret = bench_measure_latency(pingpong, &pp, cfg, &res->lat[res->n_lat]);
	if (ret == 0) {
		res->n_lat++;
		ret = bench_measure_rates(stream, (void *)x, cfg, rate);
	}
	if (ret == 0) {
		for (unsigned b = 0; b < BENCH_N_BATCHES; b++)
			res->tput[b][res->n_tput] = rate[b];
		res->n_tput++;
		ret = send_ctl(x, MSG_STOP, 0, 0);
	}
	return ret;
}

/* The agent's state between messages of a throughput run. */
struct agent {
	const struct bench_xport *x;
	unsigned batch;     /* receive up to this many at once */
	uint64_t expected;  /* next DATA index */
	uint64_t errors;    /* DATA messages out of order */
};

/* Handles one message. Returns 0, 1 on STOP, or a negative error. */
static int agent_handle(struct agent *a, const struct wave_msg *m)
{
	struct wave_msg pong;

	switch (m->type) {
	case MSG_DATA:
		a->errors += m->payload.u64[0] != a->expected;
		a->expected++;
		return 0;
	case MSG_PING:
		pong = *m;
		pong.type = MSG_PONG;
		return send_all(a->x, &pong, 1);
	case MSG_BEGIN:
		if (m->payload.u64[0] < 1 || m->payload.u64[0] > MAX_BATCH)
			return -EPROTO;
		a->batch = (unsigned)m->payload.u64[0];
		a->expected = a->errors = 0;
		return send_ctl(a->x, MSG_READY, 0, 0);
	case MSG_END:
		a->batch = 1;
		return send_ctl(a->x, MSG_ACK, a->expected, a->errors);
	case MSG_STOP:
		return 1;
	default:
		fprintf(stderr, "wave-bench-chan: %s agent: unknown message type %#x\n", a->x->name,
			m->type);
		return -EPROTO;
	}
}

int bench_agent_serve(const struct bench_xport *x, bool single_core)
{
	struct agent a = { .x = x, .batch = 1 };
	struct wave_msg in[MAX_BATCH];

	yield_when_idle = single_core;
	for (;;) {
		int n = x->recv(x->ctx, in, a.batch);
		if (n < 0)
			return n;
		if (n == 0)
			idle();
		for (int i = 0; i < n; i++) {
			int ret = agent_handle(&a, &in[i]);
			if (ret != 0)
				return ret > 0 ? 0 : ret;
		}
	}
}
