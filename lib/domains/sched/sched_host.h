/* SPDX-License-Identifier: MIT */
/*
 * The host side of the sched domain, shared by its two files: the
 * scheduler (sched_host.c: tasks, CPUs, decision slots, the fallback) and
 * the managed threads it may gate (sched_thread.c). Everything here is
 * used with s->lock held, but for the atomics that say so.
 */
#ifndef WAVE_DOMAINS_SCHED_HOST_H
#define WAVE_DOMAINS_SCHED_HOST_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <wave/sched.h>
#include <wave/sched_msg.h>

#include "../../decision/fifo.h"
#include "../../decision/slots.h"
#include "../../decision/u64map.h"
#include "../../session/outbox.h"

#define BATCH_MAX 1024u

/* A task, in the decision layer's map (its id first). */
struct htask {
	uint64_t id;
	uint64_t seq;
	uint64_t hint;
	void *arg;
	uint32_t cpu; /* while RUNNING */
	uint32_t cpu_hint;
	uint8_t state; /* enum wave_sched_task_state */
	uint8_t hint_kind;
	/* Started by the fallback and still running when an agent took
	 * control: that agent does not know it until it stops. */
	uint8_t hidden;
	uint8_t managed; /* @arg is a struct wave_sched_thread */
};

/* A CPU's decision slots (lib/decision/slots.h), taken in this order: a
 * RUN (for a CPU the agent saw free) comes before the PRESTAGE (the CPU's
 * next task, which the agent may fill while a RUN is still in flight). */
enum { SLOT_RUN, SLOT_PRESTAGE, SLOTS_PER_CPU };


struct hcpu {
	/* Set (release) by the thread staging the agent's PREEMPT, read
	 * (acquire) lock-free by wave_sched_should_yield(). */
	_Alignas(64) _Atomic uint32_t yield;
	uint32_t idle_sent; /* CPU_IDLE reported since its last task */
	uint64_t current;   /* task id, or 0 */
	struct dec_slot slot[SLOTS_PER_CPU];
	uint64_t preempt_task, preempt_seq; /* the PREEMPT behind @yield */
	/* When that PREEMPT left the agent (its channel stamp) and was
	 * staged here: wave_sched_thread_preemption() reports them. */
	uint64_t preempt_sent_ns, preempt_staged_ns;
};

struct wave_sched {
	pthread_mutex_t lock;
	struct wave_host *h; /* NULL: no agent ever */
	uint32_t n_cpus;
	uint32_t batch;   /* of the outbox */
	uint64_t tick_ns, next_tick;
	bool agent; /* the agent decides (mirrors the host's state) */
	struct hcpu *cpus;
	struct u64map tasks; /* struct htask */
	uint64_t max_tasks;  /* WAVE_SCHED_MAX_TASKS (a test lowers it) */
	uint64_t gen; /* sequence numbers: one counter, always increasing */
	struct fifo q; /* the fallback's queue of RUNNABLE tasks */
	struct outbox ob; /* events to the agent, in order (made at connect) */
	struct wave_sched_host_stats st;
	/* Threads waiting for work (wave_sched_wait(), wave_sched_poll())
	 * sleep, the lock released, on @kick (a futex word bumped whenever
	 * a CPU may have work: kick()); one of them, @polling, sleeps on the
	 * agent's channel instead, and is kicked through @kick_fd. */
	_Atomic uint32_t kick;
	unsigned sleepers;
	bool polling;
	int kick_fd;
	/* Managed threads: how many are attached (a scheduler that serves
	 * them serves nothing else), counted where tasks enter and leave the
	 * table, so that it always agrees with the table under the lock; and
	 * the core of each CPU. */
	unsigned managed;
	int *cores;
	/* When a running managed thread next looks at the agent from its
	 * check (sched_thread.c): written under the lock, read without it. */
	_Atomic uint64_t next_look;
};

struct wave_sched_thread {
	struct wave_sched *s;
	uint64_t id;
	pthread_t tid;
	int signo;
	/* The futex word: 1 while the thread holds a CPU grant. Set (release)
	 * by the granting thread after @cpu, read (acquire) by this thread. */
	_Atomic uint32_t granted;
	uint32_t cpu;
	bool blocked;
	uint64_t granted_ns; /* when it last got its CPU */
	struct wave_sched_preemption last; /* its last preemption */
};

/* ---- the task table ---- */

static inline struct htask *task_find(const struct wave_sched *s, uint64_t id)
{
	return u64map_find(&s->tasks, id);
}

/* A new task @id (not present); NULL when out of memory. Pointers to
 * other tasks are invalid afterwards, as after task_remove(). */
static inline struct htask *task_insert(struct wave_sched *s, uint64_t id)
{
	struct htask *t = u64map_insert(&s->tasks, id);

	if (t)
		t->cpu = WAVE_SCHED_CPU_NONE;
	return t;
}

static inline void task_remove(struct wave_sched *s, struct htask *t)
{
	s->managed -= t->managed;
	u64map_remove(&s->tasks, t);
}

static inline size_t task_count(const struct wave_sched *s)
{
	return u64map_count(&s->tasks);
}

/* The task in slot @i of the table, or NULL: walks from 0 to
 * s->tasks.mask see every task (ids are never 0). */
static inline struct htask *task_at(const struct wave_sched *s, size_t i)
{
	struct htask *t = u64map_at(&s->tasks, i);

	return t->id ? t : NULL;
}

/* ---- sched_host.c: the scheduler ---- */

/* A CPU may have work now: wakes every waiting thread to look. */
void sched_kick(struct wave_sched *s);
/* Queues every RUNNABLE task for the fallback, oldest event first. */
void sched_fifo_rebuild(struct wave_sched *s);
/* wave_sched_task_new() with the lock held, for a plain task or a
 * managed thread's (@managed: @opts->arg is its struct wave_sched_thread). */
int sched_host_task_new(struct wave_sched *s, uint64_t id, const struct wave_sched_task_opts *opts,
			bool managed);
/* The running task @id stops as @type (a TASK_BLOCKED, _YIELD or
 * _PREEMPTED), dies, or wakes up; each takes the lock. @thread: the call
 * is its managed thread's own (sched_thread.c); the application's calls
 * (false) are refused with -EINVAL on a managed thread's task. */
int sched_host_task_stop(struct wave_sched *s, uint64_t id, uint16_t type, bool thread);
int sched_host_task_dead(struct wave_sched *s, uint64_t id, bool thread);
int sched_host_task_wakeup(struct wave_sched *s, uint64_t id, bool thread);
/* wave_sched_next() with the lock held; @poll: may talk to the agent. */
int sched_host_next(struct wave_sched *s, uint32_t cpu, struct wave_sched_grant *out, bool poll);

/* futex(2), for the words above and the managed threads' grants. */

/* ---- sched_agent_link.c: the conversation with the agent ---- */

/* Events to the agent, batched: a task's event, a CPU's (CPU_IDLE, TICK),
 * a decision's outcome; nothing when the agent is not in control. */
void sched_emit(struct wave_sched *s, const struct wave_sched_msg *d);
void sched_emit_task(struct wave_sched *s, uint16_t type, const struct htask *t, uint32_t cpu);
void sched_outcome(struct wave_sched *s, uint16_t decision, uint64_t task, uint64_t seq,
		   uint32_t cpu, unsigned result);
/* Sends what is batched: 0, or -EAGAIN (the channel is full). */
int sched_flush(struct wave_sched *s);
/* Receives and stages decisions (the ring's and every mailbox's), sends
 * events and ticks. */
void sched_progress(struct wave_sched *s);
/* Stages the decisions waiting in @cpu's mailboxes, with loads of the
 * host's own memory (no channel poll). Return: how many. */
unsigned sched_mbox_pull(struct wave_sched *s, uint32_t cpu);
/* The same for every CPU. */
unsigned sched_mbox_pull_all(struct wave_sched *s);
/* Registers the domain with a new host session to @uri and starts it:
 * under the agent, or on fallback until one welcomes us. */
int sched_connect(struct wave_sched *s, const char *uri, const struct wave_sched_opts *o,
		  struct wave_error *err);

/* ---- sched_thread.c: managed threads ---- */

/* Every free CPU takes its next decision (or queued
 * task) and the managed thread it names is woken with the grant. */
void sched_dispatch_idle(struct wave_sched *s);

#endif /* WAVE_DOMAINS_SCHED_HOST_H */
