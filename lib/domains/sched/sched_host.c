/* SPDX-License-Identifier: MIT */
/*
 * The host side of the sched domain (include/wave/sched.h): the truth about
 * the host's tasks and CPUs, per-CPU decision slots committed as
 * transactions, the cooperative preemption flag, the local FIFO used
 * whenever no agent is in control, and waiting for work. What goes to and
 * comes from the agent is in sched_agent_link.c; managed threads in
 * sched_thread.c.
 *
 * Everything but wave_sched_should_yield() runs under s->lock.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <wave/sched.h>

#include "../../core/atomic.h"
#include "../../core/core.h"
#include "../../core/futex.h"
#include "../../decision/txn.h"
#include "../../session/host_impl.h"
#include "sched.h"
#include "sched_host.h"

/* ---- tasks --------------------------------------------------------------- */

/* ---- waking waiters --------------------------------------------------------- */

/* A CPU may have work now (a decision staged, a task queued, a CPU
 * freed, control changed hands): wakes every waiting thread to look.
 * Costs nothing when none sleeps. */
void sched_kick(struct wave_sched *s)
{
	uint64_t one = 1;

	if (!s->sleepers)
		return;
	/* Pairs with the acquire load in sleep_until(). */
	atomic_fetch_add_explicit(&s->kick, 1, memory_order_release);
	wave_futex(&s->kick, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL);
	if (s->polling && write(s->kick_fd, &one, sizeof(one)) < 0)
		wave_dbg("sched: cannot kick the polling waiter");
}

/* ---- the local FIFO -------------------------------------------------------- */

/* The fallback queue's look at an entry: its task, if it is still
 * RUNNABLE at the sequence number it was queued with (entries of tasks
 * that changed since are dropped). */
struct queue_look {
	struct wave_sched *s;
	struct htask *t;
};

static bool still_queued(void *arg, const struct fifo_entry *e)
{
	struct queue_look *q = arg;

	q->t = task_find(q->s, e->id);
	return q->t && q->t->seq == e->seq && q->t->state == WAVE_SCHED_RUNNABLE;
}

static void queue_task(struct wave_sched *s, const struct htask *t, bool at_head)
{
	struct queue_look q = { s, NULL };

	if (fifo_push(&s->q, t->id, t->seq, at_head, still_queued, &q) < 0)
		wave_warn("sched: no memory to queue task %llu", (unsigned long long)t->id);
	sched_kick(s);
}

/* The oldest task still waiting in the fallback's queue, or NULL. */
static struct htask *queue_pop(struct wave_sched *s)
{
	struct queue_look q = { s, NULL };
	struct fifo_entry e;

	return fifo_pop(&s->q, still_queued, &q, &e) ? q.t : NULL;
}

static int by_seq(const void *x, const void *y)
{
	const struct htask *a = *(const struct htask *const *)x;
	const struct htask *b = *(const struct htask *const *)y;

	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Queues every RUNNABLE task, oldest event first: the order the agent
 * would have seen them become runnable. */
void sched_fifo_rebuild(struct wave_sched *s)
{
	struct htask **v = malloc((task_count(s) + 1) * sizeof(*v));
	size_t n = 0;

	fifo_clear(&s->q);
	for (size_t i = 0; i <= s->tasks.mask; i++) {
		struct htask *t = task_at(s, i);

		if (!t || t->state != WAVE_SCHED_RUNNABLE)
			continue;
		if (v)
			v[n++] = t;
		else
			queue_task(s, t, false);
	}
	if (!v)
		return;
	qsort(v, n, sizeof(*v), by_seq);
	for (size_t i = 0; i < n; i++)
		queue_task(s, v[i], false);
	free(v);
}

static bool has_work(const struct wave_sched *s, const struct hcpu *c)
{
	return !c->current &&
	       (s->agent ? dec_slots_used(c->slot, SLOTS_PER_CPU) != 0 : fifo_len(&s->q) != 0);
}

/* ---- the API ---------------------------------------------------------------- */

WAVE_API int wave_sched_opts_init(struct wave_sched_opts *o)
{
	if (!o)
		return -EINVAL;
	memset(o, 0, sizeof(*o));
	o->size = sizeof(*o);
	o->n_cpus = 1;
	o->batch = 32;
	return 0;
}

WAVE_API int wave_sched_task_opts_init(struct wave_sched_task_opts *o)
{
	if (!o)
		return -EINVAL;
	memset(o, 0, sizeof(*o));
	o->size = sizeof(*o);
	o->runnable = 1;
	o->cpu_hint = WAVE_SCHED_CPU_NONE;
	return 0;
}

static void sched_free(struct wave_sched *s)
{
	wave_host_close(s->h);
	u64map_fini(&s->tasks);
	free(s->cpus);
	fifo_fini(&s->q);
	outbox_fini(&s->ob);
	free(s->cores);
	close(s->kick_fd);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

WAVE_API int wave_sched_create(const char *uri, const struct wave_sched_opts *opts,
			       struct wave_sched **out, struct wave_error *err)
{
	struct wave_sched_opts o;
	struct wave_sched *s;
	int ret;

	wave_error_clear(err);
	wave_sched_opts_init(&o);
	/* The size first: nothing past it is read from an older struct. */
	if (!out || (opts && wave_struct_copy(&o, sizeof(o), opts, opts->size,
					      WAVE_SIZE_TO(struct wave_sched_opts, no_mailboxes),
					      "struct wave_sched_opts") < 0))
		return -EINVAL;
	if (o.n_cpus == 0 || o.n_cpus > WAVE_SCHED_MAX_CPUS || o.batch == 0 || o.batch > BATCH_MAX)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	s->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (s->kick_fd < 0) {
		ret = -errno;
		pthread_mutex_destroy(&s->lock);
		free(s);
		return ret;
	}
	s->n_cpus = o.n_cpus;
	s->batch = o.batch;
	s->tick_ns = (uint64_t)o.tick_us * 1000u;
	s->max_tasks = WAVE_SCHED_MAX_TASKS;
	ret = u64map_init(&s->tasks, sizeof(struct htask));
	s->cpus = aligned_alloc(64, s->n_cpus * sizeof(*s->cpus));
	if (ret < 0 || !s->cpus) {
		sched_free(s);
		return -ENOMEM;
	}
	memset(s->cpus, 0, s->n_cpus * sizeof(*s->cpus));
	if (o.cores) {
		s->cores = malloc(s->n_cpus * sizeof(*s->cores));
		if (!s->cores) {
			sched_free(s);
			return -ENOMEM;
		}
		memcpy(s->cores, o.cores, s->n_cpus * sizeof(*s->cores));
	}
	ret = uri ? sched_connect(s, uri, &o, err) : 0;
	if (ret < 0) {
		sched_free(s);
		return ret;
	}
	*out = s;
	return 0;
}

WAVE_API void wave_sched_destroy(struct wave_sched *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	(void)sched_flush(s);
	pthread_mutex_unlock(&s->lock);
	sched_free(s);
}

static int hint_ok(const struct wave_sched_task_opts *o)
{
	switch (o->hint_kind) {
	case WAVE_SCHED_HINT_NONE:
		return o->hint == 0;
	case WAVE_SCHED_HINT_WEIGHT:
		return o->hint != 0;
	case WAVE_SCHED_HINT_DEADLINE:
		return 1;
	default:
		return 0;
	}
}

int sched_host_task_new(struct wave_sched *s, uint64_t id, const struct wave_sched_task_opts *o,
			bool managed)
{
	struct htask *t;

	if (task_find(s, id))
		return -EEXIST;
	if (u64map_count(&s->tasks) >= s->max_tasks)
		return -ENOSPC;
	if (!(t = task_insert(s, id)))
		return -ENOMEM;
	t->seq = ++s->gen;
	t->state = o->runnable ? WAVE_SCHED_RUNNABLE : WAVE_SCHED_BLOCKED;
	t->cpu_hint = o->cpu_hint;
	t->hint_kind = (uint8_t)o->hint_kind;
	t->hint = o->hint;
	t->arg = o->arg;
	t->managed = managed;
	s->managed += managed;
	if (s->agent)
		sched_emit_task(s, WAVE_SCHED_TASK_NEW, t, 0);
	else if (o->runnable)
		queue_task(s, t, false);
	return 0;
}

WAVE_API int wave_sched_task_new(struct wave_sched *s, uint64_t id,
				 const struct wave_sched_task_opts *opts)
{
	struct wave_sched_task_opts o;
	int ret;

	wave_sched_task_opts_init(&o);
	if (!s || id == 0 ||
	    (opts && wave_struct_copy(&o, sizeof(o), opts, opts->size,
				      WAVE_SIZE_TO(struct wave_sched_task_opts, arg),
				      "struct wave_sched_task_opts") < 0) ||
	    !hint_ok(&o) || (o.cpu_hint != WAVE_SCHED_CPU_NONE && o.cpu_hint >= s->n_cpus))
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	/* A scheduler gating managed threads wakes the thread named by each
	 * grant: a plain task there would be run through its argument. */
	ret = s->managed ? -EINVAL : sched_host_task_new(s, id, &o, false);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* The task @id, for a call of the application (@thread false) or of its
 * managed thread (sched_thread.c): a managed thread's task changes only
 * by that thread's own calls, or its thread would be parked for ever, or
 * run beside another on one CPU. Return: 0, -ENOENT or -EINVAL. */
static int task_for(struct wave_sched *s, uint64_t id, bool thread, struct htask **t)
{
	*t = task_find(s, id);
	if (!*t)
		return -ENOENT;
	return (*t)->managed && !thread ? -EINVAL : 0;
}

int sched_host_task_wakeup(struct wave_sched *s, uint64_t id, bool thread)
{
	struct htask *t;
	int ret;

	if (!s || id == 0)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	ret = task_for(s, id, thread, &t);
	if (ret == 0 && t->state != WAVE_SCHED_BLOCKED)
		ret = -EPERM;
	if (ret == 0) {
		t->seq = ++s->gen;
		t->state = WAVE_SCHED_RUNNABLE;
		if (s->agent)
			sched_emit_task(s, WAVE_SCHED_TASK_WAKEUP, t, WAVE_SCHED_CPU_NONE);
		else
			queue_task(s, t, false);
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

WAVE_API int wave_sched_task_wakeup(struct wave_sched *s, uint64_t id)
{
	return sched_host_task_wakeup(s, id, false);
}

/* @t stops running on its CPU; the caller sets its new state and seq. */
static void stop_running(struct wave_sched *s, struct htask *t)
{
	struct hcpu *c = &s->cpus[t->cpu];

	c->current = 0;
	c->idle_sent = 0;
	/* Pairs with the acquire load in wave_sched_should_yield(). */
	wave_store_release(&c->yield, 0u);
	sched_kick(s); /* a RUN staged for this CPU may wait for it */
}

/* After the event that stopped @cpu's task: a PREEMPT aimed at it is
 * answered, by that event when it was the preemption, else by an outcome
 * (the task stopped on its own first). */
static void settle_preempt(struct wave_sched *s, uint32_t cpu, bool carried_out)
{
	struct hcpu *c = &s->cpus[cpu];

	if (c->preempt_task && !carried_out) {
		s->st.preempts_moot++;
		sched_outcome(s, WAVE_SCHED_PREEMPT, c->preempt_task, c->preempt_seq, cpu,
			WAVE_SCHED_ABORT_STALE);
	}
	c->preempt_task = c->preempt_seq = 0;
}

int sched_host_task_stop(struct wave_sched *s, uint64_t id, uint16_t type, bool thread)
{
	bool preempted = type == WAVE_SCHED_TASK_PREEMPTED;
	struct htask *t;
	uint32_t cpu;
	bool hidden;
	int ret;

	if (!s || id == 0)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	ret = task_for(s, id, thread, &t);
	if (ret < 0 || t->state != WAVE_SCHED_RUNNING) {
		pthread_mutex_unlock(&s->lock);
		return ret < 0 ? ret : -EPERM;
	}
	cpu = t->cpu;
	hidden = t->hidden;
	stop_running(s, t);
	t->seq = ++s->gen;
	t->state = type == WAVE_SCHED_TASK_BLOCKED ? WAVE_SCHED_BLOCKED : WAVE_SCHED_RUNNABLE;
	t->cpu = WAVE_SCHED_CPU_NONE;
	t->hidden = 0;
	if (s->agent) {
		/* A task the agent never saw running is new to it. */
		sched_emit_task(s, hidden ? WAVE_SCHED_TASK_NEW : type, t, cpu);
	} else if (t->state == WAVE_SCHED_RUNNABLE) {
		queue_task(s, t, preempted);
	}
	settle_preempt(s, cpu, preempted);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

WAVE_API int wave_sched_task_blocked(struct wave_sched *s, uint64_t id)
{
	return sched_host_task_stop(s, id, WAVE_SCHED_TASK_BLOCKED, false);
}

WAVE_API int wave_sched_task_yield(struct wave_sched *s, uint64_t id)
{
	return sched_host_task_stop(s, id, WAVE_SCHED_TASK_YIELD, false);
}

WAVE_API int wave_sched_task_preempted(struct wave_sched *s, uint64_t id)
{
	return sched_host_task_stop(s, id, WAVE_SCHED_TASK_PREEMPTED, false);
}

int sched_host_task_dead(struct wave_sched *s, uint64_t id, bool thread)
{
	uint32_t cpu = WAVE_SCHED_CPU_NONE;
	struct htask *t;
	int ret;

	if (!s || id == 0)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	if ((ret = task_for(s, id, thread, &t)) < 0) {
		pthread_mutex_unlock(&s->lock);
		return ret;
	}
	if (t->state == WAVE_SCHED_RUNNING) {
		cpu = t->cpu;
		stop_running(s, t);
	}
	t->seq = ++s->gen;
	/* A hidden task was never known to this agent: nothing to tell. */
	if (!t->hidden)
		sched_emit_task(s, WAVE_SCHED_TASK_DEAD, t, cpu);
	if (cpu != WAVE_SCHED_CPU_NONE)
		settle_preempt(s, cpu, false);
	task_remove(s, t);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

WAVE_API int wave_sched_task_dead(struct wave_sched *s, uint64_t id)
{
	return sched_host_task_dead(s, id, false);
}

/* Commits or aborts the first decision in @cpu's slots (a RUN in flight
 * comes before the prestaged task). Return: the task, now RUNNING there,
 * or NULL (none staged, or aborted with its outcome reported). */
static struct htask *take_slot(struct wave_sched *s, uint32_t cpu, int *prestaged)
{
	struct hcpu *c = &s->cpus[cpu];
	struct dec_slot sl;
	struct htask *t;
	unsigned result;

	if (!dec_slots_take(c->slot, SLOTS_PER_CPU, &sl))
		return NULL;
	t = task_find(s, sl.obj);
	result = txn_check(t != NULL, t ? t->seq : 0, sl.seq,
			   t && t->state == WAVE_SCHED_RUNNABLE, !c->current);
	if (result == WAVE_SCHED_COMMITTED) {
		t->state = WAVE_SCHED_RUNNING;
		t->cpu = cpu;
		c->current = t->id;
		*prestaged = sl.kind == WAVE_SCHED_PRESTAGE;
		if (*prestaged)
			s->st.prestaged++;
	}
	sched_outcome(s, sl.kind, sl.obj, sl.seq, cpu, result);
	return result == WAVE_SCHED_COMMITTED ? t : NULL;
}

int sched_host_next(struct wave_sched *s, uint32_t cpu, struct wave_sched_grant *out, bool poll)
{
	struct hcpu *c = &s->cpus[cpu];
	struct htask *t = NULL;
	int prestaged = 0, source = WAVE_DECISION_AGENT;

	if (c->current)
		return -EBUSY;
	(void)sched_mbox_pull(s, cpu); /* our own memory: no channel poll */
	if (!dec_slots_used(c->slot, SLOTS_PER_CPU) && poll)
		sched_progress(s); /* decisions, or a reconnection on fallback */
	while (!t && s->agent && dec_slots_used(c->slot, SLOTS_PER_CPU))
		t = take_slot(s, cpu, &prestaged);
	if (!t && s->agent && !c->idle_sent) {
		struct wave_sched_msg d = { .type = WAVE_SCHED_CPU_IDLE, .cpu = cpu,
					    .now_ns = wave_now_ns() };

		c->idle_sent = 1;
		sched_emit(s, &d);
	}
	if (!t && !s->agent) {
		t = queue_pop(s);
		if (t) {
			t->state = WAVE_SCHED_RUNNING;
			t->cpu = cpu;
			c->current = t->id;
			s->st.fallback_runs++;
			source = WAVE_DECISION_FALLBACK;
		}
	}
	(void)sched_flush(s);
	if (!t)
		return 0;
	c->idle_sent = 0;
	out->task = t->id;
	out->seq = t->seq;
	out->arg = t->arg;
	out->source = source;
	out->prestaged = prestaged;
	return 1;
}

WAVE_API int wave_sched_next(struct wave_sched *s, uint32_t cpu, struct wave_sched_grant *out)
{
	int ret;

	if (!s || !out || cpu >= s->n_cpus)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	ret = sched_host_next(s, cpu, out, true);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* How long a waiter sleeps between two looks when the channel to the
 * agent cannot wake it (file://, fabric:// without a wait object). */
#define WAIT_STEP_NS 20000u

/* Sleeps until @deadline, a kick, or (one waiter at a time) a message from
 * the agent, with the lock released meanwhile; lock held on entry and on
 * return. An idle waiter costs no CPU: the old 20 us naps woke ~9,000
 * times a second per waiting CPU. */
static void sleep_until(struct wave_sched *s, uint64_t deadline)
{
	/* Pairs with the release in kick(): a kick after this load ends the
	 * futex wait at once (its value no longer matches). */
	uint32_t seen = atomic_load_explicit(&s->kick, memory_order_acquire);
	uint64_t due = deadline, now;
	bool looker = !s->polling; /* no other waiter looks at the agent */
	int fd = -1, ret = 0;
	struct timespec ts;
	uint64_t drain;

	if (s->h && !s->polling) {
		ret = host_wait_prepare(s->h, &fd, &due);
		/* Armed: a mailbox put from now on rings; one before is here. */
		if (ret == 1 || (ret == 0 && sched_mbox_pull_all(s))) {
			if (fd >= 0)
				close(fd);
			return; /* a message is there: look at once */
		}
		due = wave_min_u64(deadline, due);
	}
	/* The agent's next TICK leaves from a look (sched_progress()): a
	 * waiter that slept past it would stretch the policy's time slices
	 * to its own timeout. One waiter sees to it, not all of them. */
	if (looker && s->tick_ns && s->agent)
		due = wave_min_u64(due, s->next_tick);
	now = wave_now_ns();
	if (ret == -ENOTSUP)
		due = wave_min_u64(due, now + WAIT_STEP_NS); /* someone must look */
	if (due <= now) {
		if (fd >= 0)
			close(fd);
		return;
	}
	ts = wave_timespec(due - now);
	s->sleepers++;
	s->polling |= fd >= 0;
	pthread_mutex_unlock(&s->lock);
	if (fd >= 0) {
		struct pollfd p[2] = { { fd, POLLIN, 0 }, { s->kick_fd, POLLIN, 0 } };

		(void)ppoll(p, 2, &ts, NULL);
	} else {
		(void)wave_futex(&s->kick, FUTEX_WAIT_PRIVATE, seen, &ts);
	}
	pthread_mutex_lock(&s->lock);
	s->sleepers--;
	if (fd >= 0) {
		s->polling = false;
		while (read(s->kick_fd, &drain, sizeof(drain)) > 0)
			;
		close(fd);
	}
}

WAVE_API int wave_sched_wait(struct wave_sched *s, uint32_t cpu, int64_t timeout_ns)
{
	uint64_t deadline;
	bool ready;

	if (!s || cpu >= s->n_cpus)
		return -EINVAL;
	deadline = wave_deadline(timeout_ns);
	pthread_mutex_lock(&s->lock);
	for (;;) {
		sched_progress(s);
		sched_dispatch_idle(s);
		ready = has_work(s, &s->cpus[cpu]);
		if (ready || wave_now_ns() >= deadline)
			break;
		sleep_until(s, deadline);
	}
	pthread_mutex_unlock(&s->lock);
	return ready;
}

WAVE_API int wave_sched_should_yield(const struct wave_sched *s, uint32_t cpu)
{
	if (!s || cpu >= s->n_cpus)
		return 0;
	/* Pairs with the release stores in preempt() and stop_running(). */
	return (int)wave_load_acquire(&s->cpus[cpu].yield);
}

static unsigned staged(const struct wave_sched *s)
{
	unsigned n = 0;

	for (uint32_t i = 0; i < s->n_cpus; i++)
		n += dec_slots_used(s->cpus[i].slot, SLOTS_PER_CPU) +
		     (s->cpus[i].preempt_task != 0);
	return n;
}

WAVE_API int wave_sched_poll(struct wave_sched *s, int64_t timeout_ns)
{
	uint64_t deadline;
	unsigned before, after;

	if (!s)
		return -EINVAL;
	deadline = wave_deadline(timeout_ns);
	pthread_mutex_lock(&s->lock);
	for (;;) {
		before = staged(s);
		sched_progress(s);
		after = staged(s);
		sched_dispatch_idle(s);
		if (after > before || wave_now_ns() >= deadline)
			break;
		sleep_until(s, deadline);
	}
	pthread_mutex_unlock(&s->lock);
	return after > before ? (int)(after - before) : 0;
}

WAVE_API int wave_sched_flush(struct wave_sched *s)
{
	int ret;

	if (!s)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	ret = sched_flush(s);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

WAVE_API int wave_sched_mode(struct wave_sched *s)
{
	int ret;

	if (!s)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	ret = s->agent ? WAVE_HOST_AGENT : WAVE_HOST_FALLBACK;
	pthread_mutex_unlock(&s->lock);
	return ret;
}

WAVE_API int wave_sched_host_stats(struct wave_sched *s, struct wave_sched_host_stats *out)
{
	if (!s || !out)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	*out = s->st;
	out->events += s->ob.sent;
	out->tasks = task_count(s);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

