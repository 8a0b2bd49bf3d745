/* SPDX-License-Identifier: MIT */
/*
 * Managed threads (include/wave/sched.h): real pthreads gated by the
 * scheduler. A thread runs only while it holds a CPU grant; otherwise it
 * parks on a futex in its own struct. A CPU that frees up takes its next
 * decision (or queued task) and wakes the thread that decision names.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "../../core/atomic.h"
#include "../../core/core.h"
#include "../../core/futex.h"
#include "sched_host.h"

void sched_dispatch_idle(struct wave_sched *s)
{
	struct wave_sched_grant g;

	if (!s->managed)
		return;
	for (uint32_t cpu = 0; cpu < s->n_cpus; cpu++) {
		const struct htask *t;
		struct wave_sched_thread *th;

		if (s->cpus[cpu].current || sched_host_next(s, cpu, &g, false) != 1)
			continue;
		/* Only a managed task's argument is a thread: a scheduler
		 * serving threads refuses plain tasks, and this checks it. */
		t = task_find(s, g.task);
		if (!t || !t->managed) {
			wave_err("sched: task %llu on CPU %u is not a managed thread",
				 (unsigned long long)g.task, cpu);
			continue;
		}
		th = g.arg;
		th->cpu = cpu;
		/* Pairs with the acquire loads in thread_park(). */
		wave_store_release(&th->granted, 1u);
		wave_futex(&th->granted, FUTEX_WAKE_PRIVATE, 1, NULL);
	}
}

/* ---- managed threads ---------------------------------------------------- */

/* Waits for a CPU grant; parked on the futex, polling the agent (and
 * dispatching idle CPUs) every millisecond meanwhile. */
static void thread_park(struct wave_sched_thread *t)
{
	const struct timespec ms = { 0, 1000000 };
	struct wave_sched *s = t->s;

	/* Pairs with the release store in sched_dispatch_idle(). */
	while (!wave_load_acquire(&t->granted)) {
		wave_futex(&t->granted, FUTEX_WAIT_PRIVATE, 0, &ms);
		if (!wave_load_acquire(&t->granted))
			(void)wave_sched_poll(s, 0);
	}
	/* The thread that granted us the CPU woke us holding the lock, and on
	 * its CPU we may have taken its place at once: until Linux runs it
	 * again (a scheduler tick, milliseconds) every look of ours would
	 * fail its trylock, and no tick or PREEMPT would move. Blocking on the
	 * lock once hands that thread the CPU to finish and release it. */
	pthread_mutex_lock(&s->lock);
	pthread_mutex_unlock(&s->lock);
	if (s->cores) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(s->cores[t->cpu], &set);
		/* Best effort: a core outside the allowed set is ignored. */
		(void)pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	}
	t->granted_ns = wave_now_ns();
}

/* How often a running thread looks at the agent from its checks when the
 * scheduler sends no ticks: as often as a parked thread polls. */
#define LOOK_NO_TICK_NS 1000000u

/* From a running thread's check, when due: the ticks go to the agent and
 * its decisions come in (a PREEMPT sets a CPU's flag). Nothing else sends
 * ticks while every parked thread sleeps its millisecond, so without this
 * a slice lasted about a millisecond whatever the policy's. Twice per tick:
 * one look sends the tick, the next takes the policy's answer. Never waits
 * for the lock: its holder is making that progress. Not on fallback: no
 * tick or PREEMPT then; the parked threads' polls attempt the
 * reconnection. */
static void thread_look(struct wave_sched *s)
{
	uint64_t now = wave_now_ns();

	if (now < wave_load_relaxed(&s->next_look) || pthread_mutex_trylock(&s->lock) != 0)
		return;
	if (s->agent) {
		sched_progress(s);
		sched_dispatch_idle(s);
	}
	wave_store_relaxed(&s->next_look, now + (s->tick_ns ? s->tick_ns / 2 : LOOK_NO_TICK_NS));
	pthread_mutex_unlock(&s->lock);
}

/* The preemption @t noticed now, for wave_sched_thread_preemption(). */
static void thread_note_preemption(struct wave_sched_thread *t)
{
	uint64_t now = wave_now_ns();
	const struct hcpu *c;

	pthread_mutex_lock(&t->s->lock);
	c = &t->s->cpus[t->cpu];
	t->last = (struct wave_sched_preemption){ .sent_ns = c->preempt_sent_ns,
						  .staged_ns = c->preempt_staged_ns,
						  .stopped_ns = now,
						  .ran_ns = now - t->granted_ns };
	pthread_mutex_unlock(&t->s->lock);
}

/* Gives the CPU up as @type (a task_stop() event, or task_dead when 0) and
 * hands it to the next thread. */
static int thread_release(struct wave_sched_thread *t, uint16_t type)
{
	struct wave_sched *s = t->s;
	int ret;

	/* Before the stop: a grant made right after it must not be lost.
	 * Nothing else writes it while this thread holds the CPU. */
	wave_store_relaxed(&t->granted, 0u);
	ret = type ? sched_host_task_stop(s, t->id, type, true) : sched_host_task_dead(s, t->id, true);
	if (ret < 0) {
		wave_store_relaxed(&t->granted, 1u);
		return ret;
	}
	pthread_mutex_lock(&s->lock);
	sched_dispatch_idle(s);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

WAVE_API int wave_sched_thread_attach(struct wave_sched *s, uint64_t id, int signo,
				      struct wave_sched_thread **out)
{
	struct wave_sched_task_opts o;
	struct wave_sched_thread *t;
	int ret;

	if (!s || id == 0 || !out || signo < 0 || signo >= NSIG)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->s = s;
	t->id = id;
	t->tid = pthread_self();
	t->signo = signo;
	wave_sched_task_opts_init(&o);
	o.arg = t;
	pthread_mutex_lock(&s->lock);
	/* Threads or plain tasks, not both: a grant's argument must be
	 * known to be a thread before the thread is woken through it. */
	ret = u64map_count(&s->tasks) != s->managed ? -EINVAL : sched_host_task_new(s, id, &o, true);
	sched_dispatch_idle(s);
	pthread_mutex_unlock(&s->lock);
	if (ret < 0) {
		free(t);
		return ret;
	}
	thread_park(t);
	*out = t;
	return 0;
}

WAVE_API int wave_sched_thread_cpu(const struct wave_sched_thread *t)
{
	return t ? (int)t->cpu : -EINVAL;
}

/* Whether the caller is the thread that attached @t: a handle used from
 * another thread would release the CPU of a thread that still runs, and
 * park the caller in its place. */
static bool own(const struct wave_sched_thread *t)
{
	return pthread_equal(t->tid, pthread_self());
}

WAVE_API int wave_sched_thread_yield(struct wave_sched_thread *t)
{
	int ret;

	if (!t || t->blocked)
		return -EINVAL;
	if (!own(t))
		return -EPERM;
	ret = thread_release(t, WAVE_SCHED_TASK_YIELD);
	if (ret == 0)
		thread_park(t);
	return ret;
}

WAVE_API int wave_sched_thread_check(struct wave_sched_thread *t)
{
	int ret;

	if (!t || t->blocked)
		return -EINVAL;
	if (!own(t))
		return -EPERM;
	if (!wave_sched_should_yield(t->s, t->cpu)) {
		thread_look(t->s);
		if (!wave_sched_should_yield(t->s, t->cpu))
			return 0;
	}
	thread_note_preemption(t);
	ret = thread_release(t, WAVE_SCHED_TASK_PREEMPTED);
	if (ret < 0)
		return ret;
	thread_park(t);
	return 1;
}

WAVE_API int wave_sched_thread_preemption(const struct wave_sched_thread *t,
					  struct wave_sched_preemption *out)
{
	if (!t || !out)
		return -EINVAL;
	if (!t->last.stopped_ns)
		return -ENOENT;
	*out = t->last;
	return 0;
}

WAVE_API int wave_sched_thread_block(struct wave_sched_thread *t)
{
	int ret;

	if (!t)
		return -EINVAL;
	if (t->blocked || !own(t))
		return -EPERM;
	ret = thread_release(t, WAVE_SCHED_TASK_BLOCKED);
	if (ret == 0)
		t->blocked = true;
	return ret;
}

WAVE_API int wave_sched_thread_unblock(struct wave_sched_thread *t)
{
	int ret;

	if (!t)
		return -EINVAL;
	if (!t->blocked || !own(t))
		return -EPERM;
	ret = sched_host_task_wakeup(t->s, t->id, true);
	if (ret < 0)
		return ret;
	t->blocked = false;
	pthread_mutex_lock(&t->s->lock);
	sched_dispatch_idle(t->s);
	pthread_mutex_unlock(&t->s->lock);
	thread_park(t);
	return 0;
}

WAVE_API void wave_sched_thread_detach(struct wave_sched_thread *t)
{
	if (!t)
		return;
	if (!own(t)) {
		wave_warn("sched: thread %llu: detach from another thread ignored",
			  (unsigned long long)t->id);
		return;
	}
	if (thread_release(t, 0) < 0)
		wave_warn("sched: thread %llu was not attached", (unsigned long long)t->id);
	free(t);
}
