/* SPDX-License-Identifier: MIT */
/*
 * The server's steering: Linux's own reuseport hashing, libwave's table in
 * the kernel with its static hash, or that table driven by an agent
 * (<wave/rpc.h>): a steering handle whose follower is the kernel's table
 * (<wave/rpc_reuseport.h>), the workers' load reported to it, and the
 * agent either in a thread of this process (on-host) or elsewhere. In the
 * dispatch modes the handle's table is read by the dispatcher itself
 * (there is no follower), with or without an agent: without one, the
 * table is the static hash over the workers (WAVE_RPC_FALLBACK_HASH) and
 * wave_rpc_pick() each dispatcher slot's round robin.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "rpcserver.h"

static void *agent_thread(void *arg)
{
	struct steer *s = arg;

	if (wave_agent_run(s->agent) < 0)
		fprintf(stderr, "rpcserver: the on-host agent failed\n");
	return NULL;
}

/* An agent from @path on a thread of ours: the "on-host" agent. */
static int start_agent(struct steer *s, const char *path)
{
	struct wave_error err;
	int ret = wave_config_load(path, &s->agent_cfg, &err);

	if (ret == 0)
		ret = wave_agent_create(s->agent_cfg, &s->agent, &err);
	if (ret < 0) {
		fprintf(stderr, "rpcserver: on-host agent from %s: %s\n", path, err.text);
		return ret;
	}
	ret = -pthread_create(&s->agent_thr, NULL, agent_thread, s);
	if (ret == 0)
		s->agent_running = true;
	return ret;
}

/* A steering handle on the agent at @c->agent (or none: dispatch modes),
 * followed by the kernel's table in mode bpf. */
static int start_handle(struct steer *s, const struct steer_cfg *c, const int *fds)
{
	bool kernel = c->mode == STEER_BPF;
	struct wave_chan_opts chan;
	struct wave_host_opts host;
	struct wave_rpc_opts o;
	struct wave_rpc_follower f;
	struct wave_error err;
	int ret;

	wave_chan_opts_init(&chan);
	chan.delay_ns = c->delay_ns;
	wave_host_opts_init(&host);
	host.chan = &chan;
	/* Measure steering, not failure detection: a loaded machine that
	 * stalls a side for a while must not turn into a fallback run. */
	host.heartbeat_timeout_ms = 10000;
	wave_rpc_opts_init(&o);
	o.n_buckets = c->buckets;
	o.max_workers = c->workers;
	o.report_us = c->report_us;
	o.host = &host;
	if (!kernel) {
		/* Class entries for the dispatcher; one pick slot per class. */
		o.n_classes = c->classes;
		o.n_dispatchers = c->mode == STEER_PICK ? c->classes : 0;
		o.fallback = WAVE_RPC_FALLBACK_HASH;
	}
	ret = wave_rpc_create(c->agent, &o, &s->rpc, &err);
	if (ret < 0) {
		fprintf(stderr, "rpcserver: steering handle on %s: %s\n",
			c->agent ? c->agent : "no agent", err.text);
		return ret;
	}
	ret = kernel ? wave_rpc_reuseport_follower(s->rp, &f) : 0;
	if (ret == 0 && kernel)
		ret = wave_rpc_follow(s->rpc, &f);
	for (unsigned i = 0; ret == 0 && i < c->workers; i++)
		ret = wave_rpc_worker_add(s->rpc, i, kernel ? fds[i] : -1);
	if (ret < 0)
		fprintf(stderr, "rpcserver: steering handle: %s\n", wave_strerror(ret));
	return ret;
}

int steer_start(struct steer *s, const struct steer_cfg *c, const int *fds)
{
	int err;

	memset(s, 0, sizeof(*s));
	s->name = "linux";
	if (mode_dispatches(c->mode)) {
		s->name = c->mode == STEER_PICK ? (c->agent ? "pick+agent" : "pick")
						: (c->agent ? "dispatch+agent" : "dispatch");
		if (c->agent_config && (err = start_agent(s, c->agent_config)) < 0)
			return err;
		return start_handle(s, c, fds);
	}
	if (c->mode != STEER_BPF)
		return 0;
	err = wave_rpc_reuseport_open(fds, c->workers, c->buckets, &s->rp);
	if (err) {
		fprintf(stderr, "rpcserver: kernel steering unavailable (%s)%s; Linux's own "
			"SO_REUSEPORT hashing stays in force\n", wave_strerror(err),
			err == -EPERM ? ": loading eBPF programs needs CAP_BPF and CAP_NET_ADMIN"
				      : "");
		s->name = "linux (bpf refused)";
		return c->agent ? err : 0;
	}
	s->name = "bpf";
	if (!c->agent)
		return 0;
	s->name = "bpf+agent";
	if (c->agent_config && (err = start_agent(s, c->agent_config)) < 0)
		return err;
	return start_handle(s, c, fds);
}

bool steer_due(const struct worker *w, uint64_t now_ns)
{
	return w->rpc && now_ns - w->last_report_ns >= w->report_ns;
}

/* What waits for worker @w now: its dispatch queue, or what the kernel
 * steered to its socket and it has not taken yet, plus @waiting. */
static uint32_t queue_depth(struct worker *w, uint32_t waiting)
{
	uint32_t kernel = 0;

	if (w->q)
		return waiting + wq_depth(w->q);
	if (w->rp && wave_rpc_reuseport_queued(w->rp, w->id, w->st.taken, &kernel) != 0)
		kernel = 0;
	return waiting + kernel;
}

void steer_report(struct worker *w, uint64_t now_ns, uint32_t waiting)
{
	struct wave_rpc_load l = { .size = sizeof(l) };

	l.queue_depth = queue_depth(w, waiting);
	if (l.queue_depth > w->st.max_depth)
		w->st.max_depth = l.queue_depth;
	l.busy_ns = w->load.busy_ns;
	l.completions = w->load.completions;
	l.service_ns = w->load.busy_ns;
	l.max_service_ns = w->load.max_service_ns;
	wave_rpc_worker_load(w->rpc, w->id, &l);
	memset(&w->load, 0, sizeof(w->load));
	w->last_report_ns = now_ns;
}

/* Whether the kernel's table holds what the handle's does, bucket by bucket. */
static bool table_consistent(struct steer *s, unsigned n_buckets)
{
	for (uint32_t b = 0; b < n_buckets; b++) {
		uint32_t want;
		unsigned got;
		if (wave_rpc_table(s->rpc, b, 1, &want, NULL) != 0 ||
		    wave_rpc_reuseport_get(s->rp, b, &got) != 0 || got != want)
			return false;
	}
	return true;
}

void steer_stop(struct steer *s, unsigned n_buckets)
{
	s->consistent = true;
	if (s->rpc) {
		wave_rpc_stats(s->rpc, &s->stats);
		s->have_stats = true;
		s->consistent = !s->rp || table_consistent(s, n_buckets);
		wave_rpc_destroy(s->rpc);
	}
	if (s->agent_running) {
		struct timespec t;
		clockid_t cid;
		if (pthread_getcpuclockid(s->agent_thr, &cid) == 0 && clock_gettime(cid, &t) == 0)
			s->agent_cpu_ns = (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
		wave_agent_stop(s->agent);
		pthread_join(s->agent_thr, NULL);
	}
	wave_agent_destroy(s->agent);
	wave_config_free(s->agent_cfg);
	if (s->rp)
		wave_rpc_reuseport_stats(s->rp, &s->bpf);
	wave_rpc_reuseport_close(s->rp);
}
