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
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <wave/wave.h>

#include "bench_sched.h"


static int write_config(struct agent_run *ar, const struct bsched_opts *o,
			const struct bsched_mode *m)
{
	char text[1024], slice[40] = "";
	int n;

	/* sched_fifo has no slice: it would warn about the parameter. */
	if (strcmp(o->policy, "fifo") != 0)
		snprintf(slice, sizeof(slice), "\"slice_us\": %u, ", o->slice_us);
	n = snprintf(text, sizeof(text),
			 "{\n"
			 "  \"listen\": [\"%s\"],\n"
			 "  \"cpus\": [%d],\n"
			 "  \"heartbeat\": { \"period_ms\": 100, \"timeout_ms\": %u },\n"
			 "  \"plugin_path\": [\"%s\"],\n"
			 "  \"channel\": { \"delay_ns\": %u, \"spin_ns\": 1000000000 },\n"
			 "  \"domains\": { \"sched\": { \"plugin\": \"sched_%s\",\n"
			 "    \"params\": { %s\"prestage\": %s } } }\n"
			 "}\n",
			 ar->uri, o->agent_cpu, HEARTBEAT_TIMEOUT_MS, BENCH_SCHED_PLUGIN_DIR, m->delay_ns, o->policy,
			 slice, m->prestage ? "true" : "false");
	FILE *f;

	if (n < 0 || (size_t)n >= sizeof(text))
		return -ENAMETOOLONG;
	if (!(f = fopen(ar->conf, "w")))
		return -errno;
	fputs(text, f);
	return fclose(f) == 0 ? 0 : -EIO;
}

static void *agent_thread(void *arg)
{
	struct agent_run *ar = arg;

	if (bsched_pin(ar->agent_cpu) < 0 || wave_agent_run(ar->a) < 0)
		fprintf(stderr, "wave-bench-sched: the on-host agent failed\n");
	return NULL;
}

static int start_onhost(struct agent_run *ar)
{
	struct wave_error err;
	int ret = wave_config_load(ar->conf, &ar->cfg, &err);

	if (ret == 0)
		ret = wave_agent_create(ar->cfg, &ar->a, &err);
	if (ret < 0) {
		fprintf(stderr, "wave-bench-sched: on-host agent: %s\n", err.text);
		return ret;
	}
	return -pthread_create(&ar->thr, NULL, agent_thread, ar);
}

static int start_agentd(struct agent_run *ar)
{
	struct stat st;

	ar->pid = fork();
	if (ar->pid < 0)
		return -errno;
	if (ar->pid == 0) {
		/* Its output goes to a log, shown only when it fails. */
		int log = open(ar->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (log >= 0) {
			dup2(log, STDOUT_FILENO);
			dup2(log, STDERR_FILENO);
		}
		execl(BENCH_SCHED_AGENTD, "wave-agentd", "--config", ar->conf, (char *)NULL);
		_exit(127);
	}
	/* Its socket appears once it listens (five seconds at most). */
	for (int i = 0; i < 5000; i++) {
		if (stat(ar->sock, &st) == 0)
			return 0;
		if (waitpid(ar->pid, NULL, WNOHANG) == ar->pid) {
			ar->pid = -1;
			return -ECHILD;
		}
		usleep(1000);
	}
	return -ETIMEDOUT;
}

/* Copies the daemon's log to our stderr. */
static void show_log(const struct agent_run *ar)
{
	char buf[4096];
	FILE *f = fopen(ar->log, "r");
	size_t n;

	if (!f)
		return;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, n, stderr);
	fclose(f);
}

void bsched_agent_stop(struct agent_run *ar, bool failed)
{
	if (ar->a) {
		wave_agent_stop(ar->a);
		pthread_join(ar->thr, NULL);
		wave_agent_destroy(ar->a);
		ar->a = NULL;
	}
	wave_config_free(ar->cfg);
	ar->cfg = NULL;
	if (ar->pid > 0) {
		kill(ar->pid, SIGTERM);
		waitpid(ar->pid, NULL, 0);
		ar->pid = -1;
	}
	if (failed)
		show_log(ar);
	unlink(ar->log);
	unlink(ar->conf);
	unlink(ar->sock);
	rmdir(ar->dir);
}

int bsched_agent_start(struct agent_run *ar, const struct bsched_opts *o,
		       const struct bsched_mode *m)
{
	int ret;

	memset(ar, 0, sizeof(*ar));
	ar->pid = -1;
	ar->agent_cpu = o->agent_cpu;
	snprintf(ar->dir, sizeof(ar->dir), "/tmp/wave-bench-sched.XXXXXX");
	if (!mkdtemp(ar->dir))
		return -errno;
	snprintf(ar->sock, sizeof(ar->sock), "%s/agent.sock", ar->dir);
	snprintf(ar->conf, sizeof(ar->conf), "%s/agent.json", ar->dir);
	snprintf(ar->log, sizeof(ar->log), "%s/agentd.log", ar->dir);
	snprintf(ar->uri, sizeof(ar->uri), "shm://%s", ar->sock);
	ret = write_config(ar, o, m);
	if (ret == 0)
		ret = m->kind == BSCHED_ONHOST ? start_onhost(ar) : start_agentd(ar);
	if (ret < 0)
		bsched_agent_stop(ar, true);
	return ret;
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
	struct agent_run ar;
	int ret = bsched_agent_start(&ar, o, m);

	if (ret < 0)
		return ret;
	ret = host_run(o, m, ar.uri, l);
	bsched_agent_stop(&ar, ret < 0);
	return ret;
}
