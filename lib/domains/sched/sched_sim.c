/* SPDX-License-Identifier: MIT */
/* The simulated sched host (see sched_sim.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <wave/plugin_sched.h>

#include "../../decision/txn.h"
#include "sched_sim.h"

/* ---- message queues ---------------------------------------------------- */

static int to_agent(struct sim *s, const struct wave_sched_msg *d)
{
	struct wave_msg m;
	int ret = wave_sched_msg_encode(d, s->n_cpus, &m);

	return ret < 0 ? ret : replay_q_push(&s->to_agent, &m);
}

/* The plugin context's emit: the agent-to-host channel. */
static int sim_emit(void *user, const struct wave_msg *msgs, unsigned n)
{
	struct sim *s = user;
	unsigned i;

	for (i = 0; i < n; i++) {
		if (s->emit_limit && s->to_host.len >= s->emit_limit)
			break;
		if (replay_q_push(&s->to_host, &msgs[i]) < 0)
			return i ? (int)i : -ENOMEM;
	}
	return (int)i;
}

/* ---- host-side state changes ------------------------------------------- */

static struct sim_task *task(struct sim *s, uint64_t id)
{
	return id >= 1 && id <= s->max_tasks ? &s->tasks[id - 1] : NULL;
}

static int outcome(struct sim *s, uint16_t decision, uint64_t id, uint64_t seq, uint32_t cpu,
		   unsigned result)
{
	struct wave_sched_msg d = { .type = WAVE_SCHED_OUTCOME, .decision = decision,
				    .result = (uint8_t)result, .cpu = cpu, .task = id,
				    .seq = seq, .now_ns = s->now };

	if (result == WAVE_SCHED_COMMITTED)
		s->commits++;
	else
		s->aborts[result]++;
	return to_agent(s, &d);
}

static void record(struct sim *s, uint64_t id, uint32_t cpu)
{
	if (s->log_len < s->log_cap) {
		s->log_task[s->log_len] = id;
		s->log_cpu[s->log_len++] = cpu;
	}
}

/* The transaction: commit @id on @cpu if it is still at @seq. */
static int commit(struct sim *s, uint16_t decision, uint64_t id, uint64_t seq, uint32_t cpu)
{
	struct sim_task *t = task(s, id);
	bool live = t && t->live;
	/* The library's rule (lib/decision/txn.h): an unknown task is gone. */
	unsigned r = txn_check(live, live ? t->seq : 0, seq, live && t->state == WAVE_SCHED_RUNNABLE,
			       !s->cpus[cpu].running);

	if (r == WAVE_SCHED_COMMITTED) {
		t->state = WAVE_SCHED_RUNNING;
		t->cpu = cpu;
		t->run_start_ns = s->now;
		t->runs++;
		s->cpus[cpu].running = id;
		s->n_running++;
		s->n_waiting--;
		record(s, id, cpu);
		if (s->on_run)
			s->on_run(s->user, id, cpu, s->now - t->ready_ns);
	}
	return outcome(s, decision, id, seq, cpu, r);
}

/* A CPU with nothing to run takes its prestaged task, if any. */
static int take_slot(struct sim *s, uint32_t cpu)
{
	struct sim_cpu *c = &s->cpus[cpu];
	uint64_t id = c->slot_task;

	if (!id || c->running)
		return 0;
	c->slot_task = 0;
	return commit(s, WAVE_SCHED_PRESTAGE, id, c->slot_seq, cpu);
}

/* Ends @t's run: the event of @type goes out, then the CPU's next task. */
static int stop(struct sim *s, uint64_t id, uint16_t type, uint32_t new_state)
{
	struct sim_task *t = task(s, id);
	uint32_t cpu;
	int ret;

	if (!t || !t->live || t->state != WAVE_SCHED_RUNNING)
		return -EINVAL;
	cpu = t->cpu;
	t->ran_ns += s->now - t->run_start_ns;
	t->seq++;
	t->state = new_state;
	t->cpu = WAVE_SCHED_CPU_NONE;
	s->cpus[cpu].running = 0;
	s->n_running--;
	if (new_state == WAVE_SCHED_RUNNABLE)
		s->n_waiting++;
	t->ready_ns = s->now;
	struct wave_sched_msg d = { .type = type, .task = id, .seq = t->seq, .now_ns = s->now,
				    .cpu = cpu };
	if ((ret = to_agent(s, &d)) < 0)
		return ret;
	return take_slot(s, cpu);
}

/* ---- decisions from the agent ------------------------------------------ */

static int do_preempt(struct sim *s, const struct wave_sched_msg *d)
{
	struct sim_task *t = task(s, d->task);

	if (s->cpus[d->cpu].running != d->task || !t || t->seq != d->seq) {
		s->preempts_aborted++;
		return outcome(s, WAVE_SCHED_PREEMPT, d->task, d->seq, d->cpu,
			       WAVE_SCHED_ABORT_STALE);
	}
	s->preempts_done++;
	return stop(s, d->task, WAVE_SCHED_TASK_PREEMPTED, WAVE_SCHED_RUNNABLE);
}

static int do_decision(struct sim *s, const struct wave_msg *m)
{
	struct wave_sched_msg d;
	int ret = wave_sched_msg_decode(m, s->n_cpus, &d);

	if (ret < 0)
		return ret;
	switch (d.type) {
	case WAVE_SCHED_RUN:
		return commit(s, WAVE_SCHED_RUN, d.task, d.seq, d.cpu);
	case WAVE_SCHED_PRESTAGE:
		s->cpus[d.cpu].slot_task = d.task;
		s->cpus[d.cpu].slot_seq = d.seq;
		return take_slot(s, d.cpu);
	case WAVE_SCHED_PREEMPT:
		return do_preempt(s, &d);
	default:
		return -EPROTO;
	}
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The agent takes one message (timed when asked). */
static void deliver(struct sim *s, const struct wave_msg *m)
{
	uint64_t t0 = s->time_agent ? mono_ns() : 0;

	s->delivered++;
	if (wave_sched_state_apply(s->st, s->ctx, m) < 0)
		s->apply_errors++;
	if (s->time_agent)
		s->agent_ns += mono_ns() - t0;
}

/* Delivers everything in flight, both ways, until nothing is. */
static int quiet(struct sim *s)
{
	struct wave_msg m;
	int ret;

	while (s->to_agent.len || s->to_host.len) {
		while (replay_q_pop(&s->to_agent, &m))
			deliver(s, &m);
		while (replay_q_pop(&s->to_host, &m))
			if ((ret = do_decision(s, &m)) < 0)
				return ret;
	}
	return 0;
}

/* ---- the driver's actions ---------------------------------------------- */

int sim_new(struct sim *s, uint64_t id, bool runnable, unsigned hint_kind, uint64_t hint)
{
	struct sim_task *t = task(s, id);
	int ret;

	if (!t || t->live)
		return -EINVAL;
	t->seq++;
	t->live = true;
	t->state = runnable ? WAVE_SCHED_RUNNABLE : WAVE_SCHED_BLOCKED;
	t->cpu = WAVE_SCHED_CPU_NONE;
	t->ready_ns = s->now;
	s->n_waiting += runnable;
	struct wave_sched_msg d = { .type = WAVE_SCHED_TASK_NEW, .task = id, .seq = t->seq,
				    .now_ns = s->now, .state = (uint8_t)t->state,
				    .hint_kind = (uint8_t)hint_kind, .hint = hint,
				    .cpu = WAVE_SCHED_CPU_NONE };
	if ((ret = to_agent(s, &d)) < 0)
		return ret;
	return quiet(s);
}

int sim_wakeup(struct sim *s, uint64_t id)
{
	struct sim_task *t = task(s, id);
	int ret;

	if (!t || !t->live || t->state != WAVE_SCHED_BLOCKED)
		return -EINVAL;
	t->seq++;
	t->state = WAVE_SCHED_RUNNABLE;
	t->ready_ns = s->now;
	s->n_waiting++;
	struct wave_sched_msg d = { .type = WAVE_SCHED_TASK_WAKEUP, .task = id, .seq = t->seq,
				    .now_ns = s->now, .cpu = WAVE_SCHED_CPU_NONE };
	if ((ret = to_agent(s, &d)) < 0)
		return ret;
	return quiet(s);
}

int sim_block(struct sim *s, uint64_t id)
{
	int ret = stop(s, id, WAVE_SCHED_TASK_BLOCKED, WAVE_SCHED_BLOCKED);

	return ret < 0 ? ret : quiet(s);
}

int sim_yield(struct sim *s, uint64_t id)
{
	int ret = stop(s, id, WAVE_SCHED_TASK_YIELD, WAVE_SCHED_RUNNABLE);

	return ret < 0 ? ret : quiet(s);
}

int sim_exit(struct sim *s, uint64_t id)
{
	struct sim_task *t = task(s, id);
	uint32_t cpu;
	int ret;

	if (!t || !t->live)
		return -EINVAL;
	cpu = t->cpu;
	if (t->state == WAVE_SCHED_RUNNING) {
		s->cpus[cpu].running = 0;
		s->n_running--;
	} else if (t->state == WAVE_SCHED_RUNNABLE) {
		s->n_waiting--;
	}
	t->seq++;
	t->live = false;
	struct wave_sched_msg d = { .type = WAVE_SCHED_TASK_DEAD, .task = id, .seq = t->seq,
				    .now_ns = s->now, .cpu = cpu };
	if ((ret = to_agent(s, &d)) < 0)
		return ret;
	if (cpu != WAVE_SCHED_CPU_NONE && (ret = take_slot(s, cpu)) < 0)
		return ret;
	return quiet(s);
}

int sim_tick(struct sim *s, uint32_t cpu)
{
	struct wave_sched_msg d = { .type = WAVE_SCHED_TICK, .cpu = cpu, .now_ns = s->now };
	int ret = to_agent(s, &d);

	return ret < 0 ? ret : quiet(s);
}

int sim_raw(struct sim *s, const struct wave_sched_msg *d)
{
	int ret = to_agent(s, d);

	return ret < 0 ? ret : quiet(s);
}

int sim_check(struct sim *s)
{
	struct wave_sched_cpu c;

	for (uint32_t i = 0; i < s->n_cpus; i++)
		if (wave_plugin_sched_cpu(s->ctx, i, &c) < 0 || c.current != s->cpus[i].running)
			return -1;
	/* Tasks waiting in a prestage slot of a busy CPU are served too. */
	if (s->n_waiting > 0 && s->n_running < s->n_cpus)
		return -2;
	for (unsigned r = 1; r < WAVE_SCHED_RESULT_COUNT; r++)
		if (s->aborts[r])
			return -3;
	return s->apply_errors ? -4 : 0;
}

/* ---- life cycle -------------------------------------------------------- */

int sim_create(struct sim *s, uint32_t n_cpus, uint64_t max_tasks, struct wave_plugin *p,
	       const struct wave_params *params)
{
	struct wave_plugin_ctx_opts o;
	int ret;

	memset(s, 0, sizeof(*s));
	s->n_cpus = n_cpus;
	s->max_tasks = max_tasks;
	s->now = 1000;
	s->cpus = calloc(n_cpus, sizeof(*s->cpus));
	s->tasks = calloc(max_tasks, sizeof(*s->tasks));
	if (!s->cpus || !s->tasks)
		return -ENOMEM;
	if ((ret = wave_sched_state_create(n_cpus, &s->st)) < 0)
		return ret;
	wave_plugin_ctx_opts_init(&o);
	o.params = params;
	o.emit = sim_emit;
	o.emit_user = s;
	o.domain_state = s->st;
	return wave_plugin_ctx_create(p, &o, &s->ctx, NULL);
}

int sim_swap(struct sim *s, struct wave_plugin *p, const struct wave_params *params)
{
	struct wave_plugin_ctx_opts o;
	struct wave_plugin_ctx *ctx;
	int ret;

	wave_plugin_ctx_opts_init(&o);
	o.params = params;
	o.emit = sim_emit;
	o.emit_user = s;
	o.domain_state = s->st;
	if ((ret = wave_plugin_ctx_create(p, &o, &ctx, NULL)) < 0)
		return ret;
	wave_plugin_ctx_destroy(s->ctx);
	s->ctx = ctx;
	if ((ret = wave_sched_state_replay(s->st, ctx, s->now)) < 0)
		return ret;
	return quiet(s);
}

int sim_log(struct sim *s, size_t cap)
{
	s->log_task = calloc(cap, sizeof(*s->log_task));
	s->log_cpu = calloc(cap, sizeof(*s->log_cpu));
	s->log_cap = cap;
	return s->log_task && s->log_cpu ? 0 : -ENOMEM;
}

void sim_destroy(struct sim *s)
{
	wave_plugin_ctx_destroy(s->ctx);
	wave_sched_state_destroy(s->st);
	free(s->cpus);
	free(s->tasks);
	replay_q_free(&s->to_agent);
	replay_q_free(&s->to_host);
	free(s->log_task);
	free(s->log_cpu);
	memset(s, 0, sizeof(*s));
}
