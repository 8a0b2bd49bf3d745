/* SPDX-License-Identifier: MIT */
/*
 * wave-example-rpcserver: a UDP or TCP server that speaks sockperf's
 * message format (sockperf_msg.h) with N worker threads. Either each
 * worker has its own SO_REUSEPORT socket, steered by Linux's own hashing
 * or by libwave's steering table in the kernel (<wave/rpc_reuseport.h>);
 * or one socket receives everything and a dispatcher thread hands each
 * request (UDP) or connection (TCP) to a worker's bounded queue, by the
 * steering table (wave_rpc_steer() on the flow) or by the agent's
 * prestaged worker for the request's class (wave_rpc_pick()). Each request
 * costs a configurable amount of busy CPU time, per request class (its
 * size), so that imbalance between workers is real.
 *
 *   main.c      options, the sockets, threads, statistics
 *   serve.c     the workers' UDP and TCP loops and the per-request work
 *   dispatch.c  the dispatcher and the workers' queues
 *   steer.c     Linux's hashing, the kernel table, the in-process
 *               table, or an agent driving either
 */
#ifndef WAVE_EXAMPLE_RPCSERVER_H
#define WAVE_EXAMPLE_RPCSERVER_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <pthread.h>
#include <sys/socket.h>

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

/* Who picks a request's worker. */
enum steer_mode {
	STEER_LINUX,    /* a socket per worker, Linux's reuseport hashing */
	STEER_BPF,      /* a socket per worker, libwave's table in the kernel */
	STEER_DISPATCH, /* one socket, a dispatcher: the table, by flow */
	STEER_PICK,     /* one socket, a dispatcher: the prestaged worker, by class */
};

static inline bool mode_dispatches(enum steer_mode m)
{
	return m == STEER_DISPATCH || m == STEER_PICK;
}

struct srv_cfg {
	bool tcp;
	enum steer_mode mode;
	unsigned workers;
	unsigned queue; /* a worker's queue, in requests (dispatch modes) */
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
	uint64_t stalled;    /* TCP connections closed: the peer took no byte of a reply for 2 s */
	uint64_t accept_backoff; /* accept found no fd or memory: the listener left alone */
	uint64_t busy_ns;    /* spent on requests' work */
	uint64_t taken;      /* datagrams received, or connections accepted, on its socket */
	uint32_t max_depth;  /* the deepest queue it reported */
};

/* A worker's queue, filled by the dispatcher (dispatch.c): datagrams
 * (UDP) or connections (TCP). Bounded: when full, the dispatcher drops the
 * datagram or closes the connection, and counts it. */
struct req {
	uint8_t *buf; /* a datagram (malloc'd; the worker frees it), or NULL */
	uint32_t len;
	int fd;       /* TCP: the connection */
	socklen_t fromlen;
	struct sockaddr_storage from;
};

struct wqueue {
	pthread_mutex_t lock;
	struct req *slots;
	uint32_t cap, head, count;
	int efd;      /* an eventfd the dispatcher signals when it fills an empty queue */
	uint64_t full; /* requests refused: the queue was full (dispatcher's) */
};

/* What a worker did since it last reported to the steering handle. */
struct worker_load {
	uint64_t busy_ns, completions, max_service_ns;
};

struct worker {
	unsigned id;
	int fd; /* its socket: bound UDP, or listening TCP; in the dispatch
		 * modes the one receiving socket (UDP replies leave by it) */
	struct wqueue *q; /* dispatch modes: its queue */
	const struct srv_cfg *cfg;
	const atomic_bool *stop;
	struct worker_stats st;
	bool failed; /* could not run (out of memory, epoll): the server fails */
	struct wave_rpc *rpc; /* the steering handle it reports to, or NULL */
	struct wave_rpc_reuseport *rp; /* kernel steering: its socket's queue */
	uint64_t report_ns, last_report_ns;
	struct worker_load load;
} __attribute__((aligned(64)));

/* How flows are steered (steer.c). */
struct steer_cfg {
	enum steer_mode mode;
	unsigned workers, buckets;
	unsigned classes;         /* request classes: the work rules, and the rest */
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
	uint64_t reacted_ns; /* the first decision committed after the first heavy request */
	uint64_t agent_cpu_ns;
	struct wave_rpc_stats stats;
	struct wave_rpc_reuseport_stats bpf;
};

/* Sets steering up for the group @fds (one socket per worker), or for
 * the dispatcher. Without privilege for the kernel table it says so and
 * leaves Linux's hashing (an error only if an agent was asked for).
 * Return: 0 or a negative error. */
int steer_start(struct steer *s, const struct steer_cfg *c, const int *fds);
/* Whether a worker's load report is due. */
bool steer_due(const struct worker *w, uint64_t now_ns);
/* A worker's load report, with @waiting requests it holds beyond its
 * socket's queue or its dispatch queue (a datagram batch in hand, whole
 * TCP requests read and not yet served). */
void steer_report(struct worker *w, uint64_t now_ns, uint32_t waiting);
/* Tears everything down, keeping the final counters in @s. */
void steer_stop(struct steer *s, unsigned n_buckets);

/* When the server first began a request of a rule's class (a heavy one:
 * the reaction time to a new heavy flow starts there), CLOCK_MONOTONIC
 * ns; 0 before (serve.c). */
extern _Atomic uint64_t heavy_first_ns;
uint64_t now_ns(void);

/* The thread body of a worker (serve.c). */
void *worker_main(void *arg);
/* Every message of one datagram, in turn, replies sent on w->fd. */
void udp_datagram(struct worker *w, uint8_t *d, size_t n, const struct sockaddr *from,
		  socklen_t fromlen);
/* The request class of a message of @len bytes: 0 for one no rule covers,
 * else 1 + the index of the rule that applies. */
uint32_t class_of(const struct srv_cfg *c, uint32_t len);

/* The dispatcher (dispatch.c): one receiving socket @fd, @n workers. */
struct dispatcher {
	const struct srv_cfg *cfg;
	int fd;
	struct wave_rpc *rpc;
	unsigned buckets; /* the table's flow buckets: class entries follow */
	struct worker *w;
	unsigned n;
	const atomic_bool *stop;
	uint64_t dispatched; /* requests (UDP) or connections (TCP) handed on */
	uint64_t no_worker;  /* the table had no worker (none live yet) */
	uint64_t accept_backoff; /* as a worker's */
	bool failed;
};
/* How long an acceptor leaves its listener alone when accept_starved(). */
#define ACCEPT_BACKOFF_MS 50

/* Whether accept failed for want of fds or memory: the connection stays
 * queued and the listener readable, so retrying at once would spin. */
static inline bool accept_starved(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

int wq_init(struct wqueue *q, uint32_t cap);
void wq_fini(struct wqueue *q);
/* Takes the oldest request of @q into @out. Return: false when empty. */
bool wq_pop(struct wqueue *q, struct req *out);
/* Resets @q's wake-up, before the worker empties the queue. */
void wq_clear(struct wqueue *q);
/* Requests waiting in @q. */
uint32_t wq_depth(struct wqueue *q);
void *dispatcher_main(void *arg);

/* What one message costs and whether it is answered; counts it. Returns
 * true when @msg (in place, @m->len bytes) became a reply to send. */
bool serve_msg(struct worker *w, uint8_t *msg, const struct sp_msg *m);

#endif
