/* SPDX-License-Identifier: MIT */
/*
 * The sched host's conversation with the agent: its events leave in
 * batches, its decisions land in the CPUs' RUN and PRESTAGE slots (or set
 * a CPU's preemption flag), each outcome goes back, and a change of
 * control or a resync is handled here. Everything runs under s->lock,
 * including the session's callbacks, which run inside the
 * wave_host_poll() and host_send() calls made with the lock held.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/atomic.h"
#include "../../core/core.h"
#include "../../session/host_impl.h"
#include "sched.h"
#include "sched_host.h"

/* ---- messages to the agent ------------------------------------------------- */

/* Sends what is batched: 0, or -EAGAIN (the channel is full: it stays
 * batched). */
int sched_flush(struct wave_sched *s)
{
	return s->agent ? outbox_flush(&s->ob) : 0;
}

/* Batches @d for the agent; nothing when the agent is not in control. */
void sched_emit(struct wave_sched *s, const struct wave_sched_msg *d)
{
	struct wave_msg m;

	if (!s->agent)
		return;
	if (wave_sched_msg_encode(d, s->n_cpus, &m) < 0) {
		wave_warn("sched: cannot encode a %s", wave_sched_msg_type_name(d->type));
		return;
	}
	if (outbox_push(&s->ob, &m) < 0)
		host_lose_agent(s->h, "no memory for events"); /* the agent's view would be wrong */
}

void sched_emit_task(struct wave_sched *s, uint16_t type, const struct htask *t, uint32_t cpu)
{
	struct wave_sched_msg d = { .type = type, .task = t->id, .seq = t->seq,
				    .now_ns = wave_now_ns(), .cpu = cpu };

	if (type == WAVE_SCHED_TASK_NEW) {
		d.state = t->state;
		d.hint_kind = t->hint_kind;
		d.hint = t->hint;
		d.cpu = t->cpu_hint;
	}
	sched_emit(s, &d);
}

void sched_outcome(struct wave_sched *s, uint16_t decision, uint64_t task, uint64_t seq,
		   uint32_t cpu, unsigned result)
{
	struct wave_sched_msg d = { .type = WAVE_SCHED_OUTCOME, .task = task, .seq = seq,
				    .now_ns = wave_now_ns(), .cpu = cpu, .decision = decision,
				    .result = (uint8_t)result };

	if (decision != WAVE_SCHED_PREEMPT) {
		if (result == WAVE_SCHED_COMMITTED)
			s->st.committed++;
		else
			s->st.aborted[result]++;
	}
	sched_emit(s, &d);
}

/* ---- the session's callbacks ------------------------------------------------ */

/* A message from the agent that cannot be right: count it and drop the
 * agent (the fallback runs, a reconnection resyncs a fresh agent). */
static void bad_decision(struct wave_sched *s, const char *why)
{
	s->st.bad_decisions++;
	host_lose_agent(s->h, why);
}

static void stage(struct wave_sched *s, const struct wave_sched_msg *d)
{
	struct hcpu *c = &s->cpus[d->cpu];
	const struct htask *cur = c->current ? task_find(s, c->current) : NULL;
	struct dec_slot *sl = &c->slot[d->type == WAVE_SCHED_RUN ? SLOT_RUN : SLOT_PRESTAGE];

	/* The agent fills a slot only once its previous decision there has
	 * an outcome, and runs only on CPUs it knows are free. */
	if (sl->kind) { /* it contradicts itself: the host cannot use it */
		sched_outcome(s, d->type, d->task, d->seq, d->cpu, WAVE_SCHED_ABORT_INVALID);
		return;
	}
	if (d->type == WAVE_SCHED_RUN && cur && !cur->hidden) {
		sched_outcome(s, d->type, d->task, d->seq, d->cpu, WAVE_SCHED_ABORT_CPU_BUSY);
		return;
	}
	/* A RUN for a CPU a fallback task still holds waits for it to stop. */
	dec_slot_fill(sl, d->type, d->task, d->seq);
	sched_kick(s);
}

/* The agent's PREEMPT @d, stamped @sent_ns by its channel. */
static void preempt(struct wave_sched *s, const struct wave_sched_msg *d, uint64_t sent_ns)
{
	struct hcpu *c = &s->cpus[d->cpu];
	const struct htask *t = c->current == d->task ? task_find(s, d->task) : NULL;

	if (!t || t->hidden || t->seq != d->seq || c->preempt_task) {
		s->st.preempts_moot++;
		sched_outcome(s, WAVE_SCHED_PREEMPT, d->task, d->seq, d->cpu, WAVE_SCHED_ABORT_STALE);
		return;
	}
	c->preempt_task = d->task;
	c->preempt_seq = d->seq;
	c->preempt_staged_ns = wave_now_ns();
	c->preempt_sent_ns = sent_ns <= c->preempt_staged_ns ? sent_ns : 0;
	s->st.preempts++;
	/* Pairs with the acquire load in wave_sched_should_yield(). */
	wave_store_release(&c->yield, 1u);
	/* Only the application's signal, only if it gave one: it interrupts
	 * a blocking call; the thread then sees the flag. Not to a thread
	 * receiving its own PREEMPT in its check: it is not blocked. */
	if (t->managed && ((const struct wave_sched_thread *)t->arg)->signo > 0) {
		const struct wave_sched_thread *th = t->arg;

		if (!pthread_equal(th->tid, pthread_self()))
			(void)pthread_kill(th->tid, th->signo);
	}
}

static int on_sched_msg(void *user, const struct wave_msg *m)
{
	struct wave_sched *s = user;
	struct wave_sched_msg d;

	if (!s->agent)
		return 0; /* cannot happen: messages are read only under control */
	if (wave_sched_msg_decode(m, s->n_cpus, &d) < 0) {
		bad_decision(s, "malformed sched decision");
		return 0;
	}
	switch (d.type) {
	case WAVE_SCHED_RUN:
	case WAVE_SCHED_PRESTAGE:
		stage(s, &d);
		break;
	case WAVE_SCHED_PREEMPT:
		preempt(s, &d, m->tstamp);
		break;
	default:
		bad_decision(s, "agent sent a host's sched message");
		break;
	}
	/* Staged, not applied: the CPUs take their slots when they need work. */
	return 0;
}

static void clear_cpu_decisions(struct hcpu *c)
{
	dec_slots_clear(c->slot, SLOTS_PER_CPU);
	c->preempt_task = c->preempt_seq = 0;
	c->idle_sent = 0;
	/* Pairs with the acquire load in wave_sched_should_yield(). */
	wave_store_release(&c->yield, 0u);
}

static void on_state(void *user, enum wave_host_state state)
{
	struct wave_sched *s = user;

	if (state == WAVE_HOST_AGENT) {
		s->agent = true;
		fifo_clear(&s->q); /* the agent has every runnable task */
		return;
	}
	/* Decisions in flight die with the agent; the host's truth stands. */
	s->agent = false;
	outbox_drop(&s->ob);
	s->st.fallbacks++;
	for (uint32_t i = 0; i < s->n_cpus; i++)
		clear_cpu_decisions(&s->cpus[i]);
	sched_fifo_rebuild(s);
	sched_kick(s);
}

/* Resync: the CPU count, then every task not running. Tasks running now
 * stay unknown to this agent until they stop. */
/* Sends the @n messages of a resync batch. */
static int replay_send(struct wave_sched *s, const struct wave_msg *m, unsigned n)
{
	int ret = n ? host_send(s->h, m, n) : 0;

	if (ret < 0)
		return ret;
	if ((unsigned)ret != n)
		return -EAGAIN;
	s->st.events += n;
	return 0;
}

static int replay(void *user)
{
	struct wave_sched *s = user;
	uint64_t now = wave_now_ns();
	struct wave_msg m[32];
	unsigned n = 0;
	int ret;

	sched_setup_encode(s->n_cpus, &m[0]);
	if ((ret = host_send(s->h, m, 1)) != 1)
		return ret < 0 ? ret : -EAGAIN;
	for (uint32_t i = 0; i < s->n_cpus; i++)
		clear_cpu_decisions(&s->cpus[i]);
	for (size_t i = 0; i <= s->tasks.mask; i++) {
		struct htask *t = task_at(s, i);
		struct wave_sched_msg d;

		if (!t)
			continue;
		t->hidden = t->state == WAVE_SCHED_RUNNING;
		if (t->hidden)
			continue;
		d = (struct wave_sched_msg){ .type = WAVE_SCHED_TASK_NEW, .task = t->id,
					     .seq = t->seq, .now_ns = now, .state = t->state,
					     .hint_kind = t->hint_kind, .hint = t->hint,
					     .cpu = t->cpu_hint };
		if ((ret = wave_sched_msg_encode(&d, s->n_cpus, &m[n++])) < 0)
			return ret;
		if (n == WAVE_ARRAY_SIZE(m) && (ret = replay_send(s, m, n)) < 0)
			return ret;
		n %= WAVE_ARRAY_SIZE(m);
	}
	if ((ret = replay_send(s, m, n)) < 0)
		return ret;
	s->st.resyncs++;
	return 0;
}

/* ---- mailboxes -------------------------------------------------------------- */

/* @m, from @cpu's mailbox for @type: checked as a message from the ring,
 * and it must be that mailbox's. */
static void mbox_decision(struct wave_sched *s, uint32_t cpu, uint16_t type,
			  const struct wave_msg *m)
{
	struct wave_sched_msg d;

	if (wave_sched_msg_decode(m, s->n_cpus, &d) < 0)
		bad_decision(s, "malformed sched decision in a mailbox");
	else if (d.type != type || d.cpu != cpu)
		bad_decision(s, "sched decision in the wrong mailbox");
	else
		stage(s, &d);
}

unsigned sched_mbox_pull(struct wave_sched *s, uint32_t cpu)
{
	static const uint16_t types[SCHED_MBOX_PER_CPU] = { WAVE_SCHED_RUN, WAVE_SCHED_PRESTAGE };
	struct wave_msg m;
	unsigned n = 0;

	if (!s->agent || host_mailboxes(s->h) < SCHED_MBOX_PER_CPU * s->n_cpus)
		return 0;
	/* A bad mailbox loses the agent (on_state()): then stop. */
	for (unsigned k = 0; k < SCHED_MBOX_PER_CPU && s->agent; k++) {
		if (host_mbox_take(s->h, sched_mbox(cpu, types[k]), &m) != 1)
			continue;
		s->st.mailboxed++;
		mbox_decision(s, cpu, types[k], &m);
		n++;
	}
	return n;
}

unsigned sched_mbox_pull_all(struct wave_sched *s)
{
	unsigned n = 0;

	for (uint32_t cpu = 0; cpu < s->n_cpus && s->agent; cpu++)
		n += sched_mbox_pull(s, cpu);
	return n;
}

/* ---- progress --------------------------------------------------------------- */

static void ticks(struct wave_sched *s, uint64_t now)
{
	if (!s->tick_ns || !s->agent || now < s->next_tick)
		return;
	s->next_tick = now + s->tick_ns;
	for (uint32_t i = 0; i < s->n_cpus; i++) {
		const struct htask *t = s->cpus[i].current ? task_find(s, s->cpus[i].current) : NULL;
		struct wave_sched_msg d = { .type = WAVE_SCHED_TICK, .cpu = i, .now_ns = now };

		if (t && !t->hidden)
			sched_emit(s, &d);
	}
}

/* Receives, sends, ticks; lock held. */
void sched_progress(struct wave_sched *s)
{
	if (!s->h)
		return;
	(void)sched_flush(s);
	(void)wave_host_poll(s->h, 0); /* stages decisions through on_sched_msg() */
	(void)sched_mbox_pull_all(s);
	ticks(s, wave_now_ns());
	(void)sched_flush(s);
}

int sched_connect(struct wave_sched *s, const char *uri, const struct wave_sched_opts *o,
			 struct wave_error *err)
{
	struct host_domain d = { .id = WAVE_DOMAIN_SCHED, .first = WAVE_MSG_SCHED_FIRST,
				 .last = WAVE_MSG_SCHED_LAST, .on_msg = on_sched_msg,
				 .on_state = on_state, .replay = replay, .user = s };
	struct wave_host_opts ho;
	int ret;

	if (host_opts_copy(&ho, o->host) < 0)
		return -EINVAL;
	ho.domains = WAVE_HOST_DOMAIN(WAVE_DOMAIN_SCHED);
	if ((ret = host_new(uri, &ho, &s->h)) < 0 || (ret = host_add_domain(s->h, &d)) < 0 ||
	    (ret = outbox_init(&s->ob, s->h, s->batch)) < 0)
		return ret;
	if (!o->no_mailboxes)
		host_set_mailboxes(s->h, SCHED_MBOX_PER_CPU * s->n_cpus);
	/* 1: no agent yet, fallback until one welcomes us. 0: welcomed and
	 * resynced (the CPU count alone): the agent decides from now on. */
	ret = host_start(s->h, true, err);
	if (ret == 0)
		s->agent = true;
	return ret < 0 ? ret : 0;
}
