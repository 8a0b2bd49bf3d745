/* SPDX-License-Identifier: MIT */
/*
 * The host half of the ping-pong demo: a runtime that offloads its
 * scheduling decisions to an agent.
 *
 *   wave-example-host shm:///tmp/demo/agent.sock [ROUNDS]
 *
 * It connects to a running wave-example-agent and measures two things:
 *
 *   1. decision latency: send one event, wait for its decision, ROUNDS
 *      times (default 100000); prints percentiles of the round trip;
 *   2. event throughput: stream 10 x ROUNDS events, sent in bursts of 1, 8
 *      and 32, while reading the decisions as they come back; prints events
 *      decided per second.
 *
 * Every decision is checked against the same policy computed locally (see
 * protocol.h), so the numbers are only printed for answers that were right.
 * For steadier numbers pin the two processes to two CPUs, e.g. with
 * `taskset -c 1 wave-example-agent ...` and `taskset -c 0 wave-example-host ...`.
 *
 * Exit status: 0 when every decision arrived and was right, 1 otherwise.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <wave/wave.h>

#include "protocol.h"

/* Longest wait for a decision before the agent is declared unresponsive. */
#define TIMEOUT_NS (5 * 1000 * 1000 * 1000LL)
/* Distinct events cycled through while streaming, made before timing. */
#define POOL 1024

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A small, fixed pseudo-random sequence (xorshift64), so runs repeat. */
static uint64_t next_random(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* A task waking up with random run-queue lengths; now and then it may run
 * nowhere, to exercise the DEMO_NO_CPU answer too. */
static void make_event(uint64_t *rng, uint32_t task, struct demo_event *ev)
{
	uint64_t r = next_random(rng);

	ev->task = task;
	ev->allowed = (r & 0x3f) == 0 ? 0 : (uint32_t)(r >> 32);
	for (int c = 0; c < DEMO_CPUS; c++)
		ev->queue[c] = (uint8_t)(next_random(rng) & 15);
}

/* Is @m the right decision for @ev? */
static int check(const struct wave_msg *m, const struct demo_event *ev)
{
	struct demo_decision d;

	memcpy(&d, m->payload.u8, sizeof(d));
	if (m->type != DEMO_MSG_DECISION || d.task != ev->task || d.cpu != demo_choose_cpu(ev)) {
		fprintf(stderr, "host: wrong decision for task %" PRIu32 ": cpu %" PRIu32
			", expected %" PRIu32 "\n", ev->task, d.cpu, demo_choose_cpu(ev));
		return -EPROTO;
	}
	return 0;
}

/* Receives exactly one message. wave_chan_wait() polls for a while before
 * it sleeps, so a quick answer is caught without a system call. */
static int recv_one(struct wave_chan *ch, struct wave_msg *m)
{
	for (;;) {
		int n = wave_chan_recv_burst(ch, m, 1);
		if (n != 0)
			return n < 0 ? n : 0;
		n = wave_chan_wait(ch, TIMEOUT_NS);
		if (n < 0)
			return n;
		if (n == 0)
			return -ETIMEDOUT;
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Part 1: @rounds events, one at a time; prints round-trip percentiles. */
static int measure_latency(struct wave_chan *ch, unsigned rounds, uint64_t *rng)
{
	uint64_t *rtt = malloc(sizeof(*rtt) * rounds), sum = 0;
	struct demo_event ev;
	struct wave_msg out, in;
	int ret = 0;

	if (!rtt)
		return -ENOMEM;
	for (unsigned i = 0; i < rounds && ret == 0; i++) {
		make_event(rng, i, &ev);
		demo_pack_event(&out, &ev);
		uint64_t t0 = now_ns();
		ret = wave_chan_send_burst(ch, &out, 1);
		if (ret == 1)
			ret = recv_one(ch, &in);
		else if (ret == 0)
			ret = -EAGAIN; /* cannot happen: nothing else is in flight */
		rtt[i] = now_ns() - t0;
		if (ret == 0)
			ret = check(&in, &ev);
	}
	if (ret == 0) {
		qsort(rtt, rounds, sizeof(*rtt), cmp_u64);
		for (unsigned i = 0; i < rounds; i++)
			sum += rtt[i];
		printf("decision round trip (event -> agent -> decision), %u events:\n", rounds);
		printf("  %10s %10s %10s %10s\n", "p50", "p99", "p99.9", "mean");
		printf("  %7" PRIu64 " ns %7" PRIu64 " ns %7" PRIu64 " ns %7" PRIu64 " ns\n",
		       rtt[rounds / 2], rtt[(size_t)rounds * 99 / 100],
		       rtt[(size_t)rounds * 999 / 1000], sum / rounds);
	}
	free(rtt);
	return ret;
}

/* Part 2 state: a pool of events and how far the stream has got. */
struct stream {
	struct wave_chan *ch;
	struct demo_event ev[POOL];
	struct wave_msg msg[POOL];
	unsigned long total;    /* events to send */
	unsigned long sent;     /* accepted by the channel */
	unsigned long decided;  /* decisions received and checked */
};

/* Sends up to @batch more events. Returns how many went, or an error. */
static int send_some(struct stream *s, unsigned batch)
{
	unsigned i = s->sent % POOL;
	unsigned n = batch;

	if (n > s->total - s->sent)
		n = (unsigned)(s->total - s->sent);
	if (n > POOL - i)
		n = POOL - i; /* do not run off the end of the pool */
	if (n == 0)
		return 0;
	int k = wave_chan_send_burst(s->ch, &s->msg[i], n);
	if (k > 0)
		s->sent += (unsigned)k;
	return k;
}

/* Takes the decisions that have arrived, checking each. */
static int take_decisions(struct stream *s)
{
	struct wave_msg in[32];
	int n = wave_chan_recv_burst(s->ch, in, 32);

	for (int i = 0; i < n; i++) {
		if (check(&in[i], &s->ev[s->decided % POOL]) < 0)
			return -EPROTO;
		s->decided++;
	}
	return n;
}

/* Streams all events in bursts of @batch; returns events decided per second. */
static int run_stream(struct stream *s, unsigned batch, double *rate)
{
	uint64_t t0 = now_ns();

	s->sent = s->decided = 0;
	while (s->decided < s->total) {
		int sent = send_some(s, batch);
		int got = take_decisions(s);
		if (sent < 0 || got < 0)
			return sent < 0 ? sent : got;
		/* Nothing moved: both rings are busy; wait for the agent. */
		if (sent == 0 && got == 0 && wave_chan_wait(s->ch, TIMEOUT_NS) <= 0)
			return -ETIMEDOUT;
	}
	*rate = (double)s->total * 1e9 / (double)(now_ns() - t0);
	return 0;
}

static int measure_throughput(struct wave_chan *ch, unsigned long total, uint64_t *rng)
{
	static const unsigned batches[] = { 1, 8, 32 };
	struct stream *s = calloc(1, sizeof(*s));
	int ret = 0;

	if (!s)
		return -ENOMEM;
	s->ch = ch;
	s->total = total;
	for (unsigned i = 0; i < POOL; i++) {
		make_event(rng, 1000000u + i, &s->ev[i]);
		demo_pack_event(&s->msg[i], &s->ev[i]);
	}
	printf("event throughput (each event answered by a decision), %lu events per batch size:\n",
	       total);
	for (unsigned b = 0; b < sizeof(batches) / sizeof(batches[0]) && ret == 0; b++) {
		double rate = 0;
		ret = run_stream(s, batches[b], &rate);
		if (ret == 0)
			printf("  batch %2u: %8.2f M events/s\n", batches[b], rate / 1e6);
	}
	free(s);
	return ret;
}

int main(int argc, char **argv)
{
	struct wave_chan *ch;
	uint64_t rng = 0x2545f4914f6cdd1dull;
	unsigned long rounds = 100000;
	char *end = NULL;
	int ret;

	if (argc == 3)
		rounds = strtoul(argv[2], &end, 10);
	if (argc < 2 || argc > 3 || (end && (*end || rounds == 0 || rounds > 100000000ul))) {
		fprintf(stderr, "usage: %s shm:///path/to/agent.sock [ROUNDS]\n", argv[0]);
		return 2;
	}
	if ((ret = wave_chan_open(argv[1], NULL, &ch)) < 0) {
		fprintf(stderr, "host: cannot connect to %s: %s\n", argv[1], wave_strerror(ret));
		return 1;
	}
	printf("host: connected to the agent at %s\n", argv[1]);
	ret = measure_latency(ch, (unsigned)rounds, &rng);
	if (ret == 0)
		ret = measure_throughput(ch, rounds * 10, &rng);
	/* Closing tells the agent we are done: its receive returns WAVE_ECLOSED. */
	wave_chan_close(ch);
	if (ret < 0) {
		fprintf(stderr, "host: %s\n", wave_strerror(ret));
		return 1;
	}
	printf("host: every decision checked and right\n");
	return 0;
}
