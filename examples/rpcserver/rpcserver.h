/* SPDX-License-Identifier: MIT */
/*
 * wave-example-rpcserver: a UDP or TCP server that speaks sockperf's
 * message format (sockperf_msg.h) with N worker threads, one SO_REUSEPORT
 * socket each, steered by Linux's own hashing or by libwave's steering
 * table in the kernel (<wave/rpc_reuseport.h>). Each request costs a
 * configurable amount of busy CPU time, per request class (its size), so
 * that imbalance between workers is real.
 *
 *   main.c    options, the socket group, threads, statistics
 *   serve.c   the workers' UDP and TCP loops and the per-request work
 *   steer.c   Linux's hashing, the kernel table, or an agent driving it
 */
#ifndef WAVE_EXAMPLE_RPCSERVER_H
#define WAVE_EXAMPLE_RPCSERVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <pthread.h>

#include <wave/wave.h>
#include <wave/rpc.h>
#include <wave/rpc_reuseport.h>

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

/* What a worker did since it last reported to the steering handle. */
struct worker_load {
	uint64_t busy_ns, completions, max_service_ns;
};

struct worker {
	unsigned id;
	int fd; /* its socket: bound UDP, or listening TCP */
	const struct srv_cfg *cfg;
	const atomic_bool *stop;
	struct worker_stats st;
	bool failed; /* could not run (out of memory, epoll): the server fails */
	struct wave_rpc *rpc; /* the steering handle it reports to, or NULL */
	uint64_t report_ns, last_report_ns;
	struct worker_load load;
} __attribute__((aligned(64)));

/* How flows are steered (steer.c). */
struct steer_cfg {
	bool bpf;                 /* libwave's table in the kernel, else Linux's hashing */
	unsigned workers, buckets;
	const char *agent;        /* an agent drives the table (bpf only), or NULL */
	const char *agent_config; /* run that agent on a thread of ours, or NULL */
	uint64_t delay_ns;        /* emulated one-way delay on the host's channel */
	uint32_t report_us;       /* load report period */
};

struct steer {
	const char *name; /* the steering in force */
	struct wave_rpc_reuseport *rp;
	struct wave_rpc *rpc;
	struct wave_config *agent_cfg;
	struct wave_agent *agent;
	pthread_t agent_thr;
	bool agent_running, have_stats;
	bool consistent; /* at stop: the kernel's table was the handle's */
	uint64_t agent_cpu_ns;
	struct wave_rpc_stats stats;
	struct wave_rpc_reuseport_stats bpf;
};

/* Sets steering up for the group @fds. Without privilege for the kernel
 * table it says so and leaves Linux's hashing (an error only if an agent
 * was asked for). Return: 0 or a negative error. */
int steer_start(struct steer *s, const struct steer_cfg *c, const int *fds);
/* A worker's load report, when its period has passed. */
void steer_report(struct worker *w, uint64_t now_ns);
/* Tears everything down, keeping the final counters in @s. */
void steer_stop(struct steer *s, unsigned n_buckets);

/* The thread body of a worker (serve.c). */
void *worker_main(void *arg);

/* What one message costs and whether it is answered; counts it. Returns
 * true when @msg (in place, @m->len bytes) became a reply to send. */
bool serve_msg(struct worker *w, uint8_t *msg, const struct sp_msg *m);

#endif
