/* SPDX-License-Identifier: MIT */
/*
 * wave-example-rpcserver: a UDP or TCP server that speaks sockperf's
 * message format (sockperf_msg.h) with N worker threads, one SO_REUSEPORT
 * socket each, steered by Linux's own hashing or by libwave's steering
 * table in the kernel (<wave/rpc_reuseport.h>). Each request costs a
 * configurable amount of busy CPU time, per request class (its size), so
 * that imbalance between workers is real.
 *
 *   main.c    options, the socket group, steering, threads, statistics
 *   serve.c   the workers' UDP and TCP loops and the per-request work
 */
#ifndef WAVE_EXAMPLE_RPCSERVER_H
#define WAVE_EXAMPLE_RPCSERVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "sockperf_msg.h"

#define RPCSRV_MAX_RULES 8

/* Requests of @min_len bytes or more cost @us microseconds of CPU (the
 * rule with the largest @min_len that applies wins). */
struct work_rule {
	uint32_t min_len;
	uint32_t us;
};

struct srv_cfg {
	bool tcp;
	unsigned workers;
	uint32_t work_us; /* a request no rule covers */
	struct work_rule rules[RPCSRV_MAX_RULES];
	unsigned n_rules;
};

/* One worker's counters; written by the worker alone, read after it ends. */
struct worker_stats {
	uint64_t served;     /* client requests worked on */
	uint64_t replies;    /* answers sent */
	uint64_t warmup;     /* warm-up messages ignored */
	uint64_t not_client; /* messages without CLIENT ignored */
	uint64_t malformed;  /* a length field below 14 or above 65507 */
	uint64_t truncated;  /* a UDP datagram that ended inside a message */
	uint64_t send_errors;
	uint64_t connections; /* TCP connections accepted */
	uint64_t busy_ns;    /* spent on requests' work */
};

struct worker {
	unsigned id;
	int fd; /* its socket: bound UDP, or listening TCP */
	const struct srv_cfg *cfg;
	const atomic_bool *stop;
	struct worker_stats st;
	bool failed; /* could not run (out of memory, epoll): the server fails */
} __attribute__((aligned(64)));

/* The thread body of a worker (serve.c). */
void *worker_main(void *arg);

/* What one message costs and whether it is answered; counts it. Returns
 * true when @msg (in place, @m->len bytes) became a reply to send. */
bool serve_msg(struct worker *w, uint8_t *msg, const struct sp_msg *m);

#endif
