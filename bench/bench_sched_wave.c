/* SPDX-License-Identifier: MIT */
/*
 * wave-bench-sched's libwave modes: the workload's requests are tasks of a
 * one-CPU libwave scheduler (<wave/sched.h>), whose every dispatch a sched
 * plugin decides, in one of two places:
 *
 *   on-host   the agent runs on a thread of this process (wave_agent_run()),
 *             pinned to the agent CPU;
 *   offload   wave-agentd, a separate process pinned to the agent CPU,
 *             over a shm:// channel, optionally with an emulated one-way
 *             delay (channel delay_ns on both readers) and with the
 *             plugin's prestaging on or off.
 *
 * The host runtime is one worker thread on the worker CPU. Like a
 * cooperative user-level runtime it does everything there: it admits the
 * requests whose arrival time has come (task_new), takes its next task from
 * libwave (wave_sched_next()), and runs it in steps of about a microsecond
 * of work; between steps it admits new arrivals, lets libwave receive the
 * agent's decisions (wave_sched_poll()) and checks the preemption flag
 * (wave_sched_should_yield()). A preempted request keeps the work it still
 * owes and is reported preempted; a finished one is reported dead.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wave/wave.h>

#include "bench_sched.h"

struct bsched_cfg_args {
	const struct bsched_opts *o;
	const struct bsched_mode *m;
};

/* The daemon's configuration: plugin sched_<policy>, pinned to the agent CPU. */
static int write_config(FILE *f, const char *uri, void *arg)
{
	const struct bsched_cfg_args *c = arg;
	char slice[40] = "";

	/* sched_fifo has no slice: it would warn about the parameter. */
	if (strcmp(c->o->policy, "fifo") != 0)
		snprintf(slice, sizeof(slice), "\"slice_us\": %u, ", c->o->slice_us);
	return fprintf(f,
		       "{\n"
		       "  \"listen\": [\"%s\"],\n"
		       "  \"cpus\": [%d],\n"
		       "  \"heartbeat\": { \"period_ms\": 100, \"timeout_ms\": %u },\n"
		       "  \"plugin_path\": [\"%s\"],\n"
		       "  \"channel\": { \"delay_ns\": %u, \"spin_ns\": 1000000000 },\n"
		       "  \"domains\": { \"sched\": { \"plugin\": \"sched_%s\",\n"
		       "    \"params\": { %s\"prestage\": %s } } }\n"
		       "}\n",
		       uri, c->o->agent_cpu, HEARTBEAT_TIMEOUT_MS, BENCH_SCHED_PLUGIN_DIR,
		       c->m->delay_ns, c->o->policy, slice, c->m->prestage ? "true" : "false") < 0
		       ? -EIO
		       : 0;
}

int bsched_agent_start(struct bench_agentd *ar, const struct bsched_opts *o,
		       const struct bsched_mode *m)
{
	struct bsched_cfg_args c = { o, m };

	return bench_agentd_start(ar, "wave-bench-sched", o->agent_cpu, m->kind == BSCHED_ONHOST,
				  BENCH_SCHED_AGENTD, write_config, &c);
}

/* ---- the host runtime ---------------------------------------------------- */

struct host_run {
	struct wave_sched *s;
	struct load *l;
	unsigned admitted;
	int err;
	uint64_t last_ns; /* the previous admit()'s clock reading */
};

/* Reports every request whose arrival time has come as a new task. Called
 * at least every few microseconds: a longer gap is time off the CPU. */
static void admit(struct host_run *h)
{
	struct load *l = h->l;
	uint64_t now = load_now_ns();

	if (h->last_ns && now - h->last_ns > LOAD_OFF_CPU_NS && now > l->start_ns)
		l->off_cpu_ns += now - h->last_ns;
	h->last_ns = now;
	while (h->admitted < l->n && l->start_ns + l->req[h->admitted].at_ns <= now) {
		/* Task ids are request index + 1 (0 is not a task id). */
		int ret = wave_sched_task_new(h->s, h->admitted + 1, NULL);
		if (ret < 0 && !h->err)
			h->err = ret;
		h->admitted++;
	}
}

/* Between steps of work: arrivals, decisions, and the preemption flag. */
static bool between_steps(void *arg)
{
	struct host_run *h = arg;

	admit(h);
	(void)wave_sched_poll(h->s, 0);
	return wave_sched_should_yield(h->s, 0);
}

/* Runs the granted request for its work or until preempted. */
static int run_task(struct host_run *h, const struct wave_sched_grant *g)
{
	struct load_req *r;

	if (g->task == 0 || g->task > h->l->n)
		return -EPROTO; /* not one of ours: libwave broke its promise */
	r = &h->l->req[g->task - 1];
	r->work = load_spin(r->work, between_steps, h);
	if (r->work)
		return wave_sched_task_preempted(h->s, g->task);
	r->done_ns = load_now_ns();
	return wave_sched_task_dead(h->s, g->task) < 0 ? -EPROTO : 1;
}

static int host_loop(struct host_run *h, uint64_t deadline)
{
	struct wave_sched_grant g;
	unsigned done = 0;
	int ret;

	while (done < h->l->n && !h->err) {
		admit(h);
		ret = wave_sched_next(h->s, 0, &g);
		if (ret == 1) {
			ret = run_task(h, &g);
			if (ret < 0)
				return ret;
			done += (unsigned)ret;
		} else if (ret == 0) {
			(void)wave_sched_poll(h->s, 0);
			if (load_now_ns() > deadline)
				return -ETIMEDOUT;
		} else {
			return ret;
		}
	}
	return h->err;
}

bool bsched_wanted(const char *only, const char *name)
{
	size_t len = strlen(name);

	if (!only)
		return true;
	for (const char *p = only; (p = strstr(p, name)); p += len)
		if ((p == only || p[-1] == ',') && (p[len] == ',' || p[len] == '\0'))
			return true;
	return false;
}

int bsched_wait_for_agent(struct wave_sched *s)
{
	/* Generous: a loaded machine (or a sanitizer build) may take seconds
	 * to start the daemon and load its plugin. */
	uint64_t deadline = load_now_ns() + 60000000000ull;

	while (wave_sched_mode(s) != WAVE_HOST_AGENT) {
		if (load_now_ns() > deadline)
			return -ETIMEDOUT;
		(void)wave_sched_poll(s, WAVE_US(1000));
	}
	return 0;
}

static int host_run(const struct bsched_opts *o, const struct bsched_mode *m, const char *uri,
		    struct load *l)
{
	struct wave_sched_host_stats st;
	struct wave_chan_opts copts;
	struct wave_host_opts hopts;
	struct wave_sched_opts so;
	struct host_run h = { .l = l };
	struct wave_error err;
	int ret;

	wave_chan_opts_init(&copts);
	copts.delay_ns = m->delay_ns;
	wave_host_opts_init(&hopts);
	hopts.heartbeat_timeout_ms = HEARTBEAT_TIMEOUT_MS;
	hopts.chan = &copts;
	wave_sched_opts_init(&so);
	so.n_cpus = 1;
	so.tick_us = o->tick_us;
	so.host = &hopts;
	if ((ret = bsched_pin(o->worker_cpu)) < 0)
		return ret;
	ret = wave_sched_create(uri, &so, &h.s, &err);
	if (ret < 0) {
		fprintf(stderr, "wave-bench-sched: %s: %s\n", wave_strerror(ret), err.text);
		return ret;
	}
	if ((ret = bsched_wait_for_agent(h.s)) == 0) {
		l->start_ns = load_now_ns() + 1000000; /* 1 ms to settle */
		ret = host_loop(&h, load_now_ns() + bsched_run_timeout_ns(o, l));
	}
	/* A run the local FIFO decided any part of is not this mode's. */
	if (ret == 0 && wave_sched_host_stats(h.s, &st) == 0 && (st.fallbacks || st.fallback_runs)) {
		fprintf(stderr, "wave-bench-sched: the agent lost control during the run\n");
		ret = -EPROTO;
	}
	wave_sched_destroy(h.s);
	return ret;
}

int bsched_run_wave(const struct bsched_opts *o, const struct bsched_mode *m, struct load *l)
{
	struct bench_agentd ar;
	int ret = bsched_agent_start(&ar, o, m);

	if (ret < 0)
		return ret;
	ret = host_run(o, m, ar.uri, l);
	bench_agentd_stop(&ar, ret < 0);
	return ret;
}
