/* SPDX-License-Identifier: MIT */
/*
 * The host side of the sched domain (include/wave/sched.h): the truth about
 * the host's tasks and CPUs, events to the agent, per-CPU decision slots
 * committed as transactions, the cooperative preemption flag, and the local
 * FIFO used whenever no agent is in control.
 *
 * Everything but wave_sched_should_yield() runs under s->lock, including
 * the host session's callbacks (on_state, replay, the sched message
 * handler), which run inside the wave_host_poll() and host_send() calls
 * made with the lock held.
 */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <wave/sched.h>

#include "../../core/atomic.h"
#include "../../core/core.h"
#include "sched_impl.h"
#include "../../session/host_impl.h"

#define BATCH_MAX 1024u

struct htask {
	struct htask *next; /* hash chain */
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

/* A decision waiting in a CPU's slot: the RUN one (for a CPU the agent
 * saw free), or the PRESTAGE one (the CPU's next task, which the agent may
 * fill while a RUN for the CPU is still in flight). */
struct slot {
	uint64_t task, seq;
	uint16_t type; /* WAVE_SCHED_RUN or _PRESTAGE; 0 when empty */
};

struct hcpu {
	/* Set (release) by the thread staging the agent's PREEMPT, read
	 * (acquire) lock-free by wave_sched_should_yield(). */
	_Alignas(64) _Atomic uint32_t yield;
	uint32_t idle_sent; /* CPU_IDLE reported since its last task */
	uint64_t current;   /* task id, or 0 */
	struct slot run, pre;
	uint64_t preempt_task, preempt_seq; /* the PREEMPT behind @yield */
};

struct fifo_entry {
	uint64_t id, seq;
};

struct wave_sched {
	pthread_mutex_t lock;
	struct wave_host *h; /* NULL: no agent ever */
	uint32_t n_cpus;
	uint32_t batch;
	uint64_t tick_ns, next_tick;
	bool agent; /* the agent decides (mirrors the host's state) */
	struct hcpu *cpus;
	/* Tasks: chained hash, power-of-two buckets. */
	struct htask **buckets;
	size_t nb, n_tasks;
	uint64_t gen; /* sequence numbers: one counter, always increasing */
	/* Local FIFO (fallback): ring of (id, seq), checked lazily. */
	struct fifo_entry *q;
	size_t q_head, q_len, q_cap;
	/* Batched messages to the agent, in order. */
	struct wave_msg *ob;
	size_t ob_n, ob_cap;
	struct wave_sched_host_stats st;
	/* Managed threads: how many are attached, and the core of each CPU. */
	unsigned managed;
	int *cores;
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
};

/* ---- tasks --------------------------------------------------------------- */

static size_t bucket(const struct wave_sched *s, uint64_t id)
{
	id ^= id >> 33;
	id *= UINT64_C(0xff51afd7ed558ccd);
	id ^= id >> 33;
	return (size_t)id & (s->nb - 1);
}

static struct htask *task_find(const struct wave_sched *s, uint64_t id)
{
	for (struct htask *t = s->buckets[bucket(s, id)]; t; t = t->next)
		if (t->id == id)
			return t;
	return NULL;
}

static int task_grow(struct wave_sched *s)
{
	size_t nb = s->nb * 2, old = s->nb;
	struct htask **b = calloc(nb, sizeof(*b)), **ob = s->buckets;

	if (!b)
		return -ENOMEM;
	s->buckets = b;
	s->nb = nb;
	for (size_t i = 0; i < old; i++) {
		for (struct htask *t = ob[i], *n; t; t = n) {
			size_t k = bucket(s, t->id);

			n = t->next;
			t->next = b[k];
			b[k] = t;
		}
	}
	free(ob);
	return 0;
}

static struct htask *task_insert(struct wave_sched *s, uint64_t id)
{
	struct htask *t;
	size_t k;

	if (s->n_tasks >= s->nb && task_grow(s) < 0)
		return NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	k = bucket(s, id);
	t->id = id;
	t->cpu = WAVE_SCHED_CPU_NONE;
	t->next = s->buckets[k];
	s->buckets[k] = t;
	s->n_tasks++;
	return t;
}

static void task_remove(struct wave_sched *s, struct htask *t)
{
	struct htask **p = &s->buckets[bucket(s, t->id)];

	while (*p != t)
		p = &(*p)->next;
	*p = t->next;
	s->n_tasks--;
	free(t);
}

/* ---- the local FIFO -------------------------------------------------------- */

static int fifo_push(struct wave_sched *s, const struct htask *t, bool at_head)
{
	size_t i;

	if (s->q_len == s->q_cap) {
		size_t cap = s->q_cap ? s->q_cap * 2 : 64;
		struct fifo_entry *q = malloc(cap * sizeof(*q));

		if (!q)
			return -ENOMEM;
		for (size_t k = 0; k < s->q_len; k++)
			q[k] = s->q[(s->q_head + k) & (s->q_cap - 1)];
		free(s->q);
		s->q = q;
		s->q_head = 0;
		s->q_cap = cap;
	}
	if (at_head) {
		s->q_head = (s->q_head - 1) & (s->q_cap - 1);
		i = s->q_head;
	} else {
		i = (s->q_head + s->q_len) & (s->q_cap - 1);
	}
	s->q[i].id = t->id;
	s->q[i].seq = t->seq;
	s->q_len++;
	return 0;
}

/* The oldest task still RUNNABLE at the sequence number it was queued
 * with; entries of tasks that changed since are dropped. */
static struct htask *fifo_pop(struct wave_sched *s)
{
	while (s->q_len) {
		struct fifo_entry e = s->q[s->q_head];
		struct htask *t = task_find(s, e.id);

		s->q_head = (s->q_head + 1) & (s->q_cap - 1);
		s->q_len--;
		if (t && t->seq == e.seq && t->state == WAVE_SCHED_RUNNABLE)
			return t;
	}
	return NULL;
}

static int by_seq(const void *x, const void *y)
{
	const struct htask *a = *(const struct htask *const *)x;
	const struct htask *b = *(const struct htask *const *)y;

	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Queues every RUNNABLE task, oldest event first: the order the agent
 * would have seen them become runnable. */
static void fifo_rebuild(struct wave_sched *s)
{
	struct htask **v = malloc((s->n_tasks ? s->n_tasks : 1) * sizeof(*v));
	size_t n = 0;

	s->q_len = 0;
	s->q_head = 0;
	for (size_t i = 0; i < s->nb; i++)
		for (struct htask *t = s->buckets[i]; t; t = t->next)
			if (t->state == WAVE_SCHED_RUNNABLE) {
				if (v)
					v[n++] = t;
				else if (fifo_push(s, t, false) < 0)
					wave_warn("sched: no memory to queue task %llu",
						  (unsigned long long)t->id);
			}
	if (!v)
		return;
	qsort(v, n, sizeof(*v), by_seq);
	for (size_t i = 0; i < n; i++)
		if (fifo_push(s, v[i], false) < 0)
			wave_warn("sched: no memory to queue task %llu", (unsigned long long)v[i]->id);
	free(v);
}

/* ---- messages to the agent ------------------------------------------------- */

/* Sends what is batched. Return: 0, -EAGAIN (the channel is full: it
 * stays batched), or 0 after the agent was lost (the batch is dropped:
 * a resync replaces it). */
static int flush(struct wave_sched *s)
{
	while (s->agent && s->ob_n) {
		int ret = host_send(s->h, s->ob, (unsigned)s->ob_n);

		if (ret < 0)
			return 0; /* lost: on_state() emptied the batch */
		if (ret == 0)
			return -EAGAIN;
		memmove(s->ob, s->ob + ret, (s->ob_n - (size_t)ret) * sizeof(*s->ob));
		s->ob_n -= (size_t)ret;
		s->st.events += (uint64_t)ret;
	}
	return 0;
}

/* Batches @d for the agent; nothing when the agent is not in control. */
static void emit(struct wave_sched *s, const struct wave_sched_msg *d)
{
	struct wave_msg m;

	if (!s->agent)
		return;
	if (wave_sched_msg_encode(d, s->n_cpus, &m) < 0) {
		wave_warn("sched: cannot encode a %s", wave_sched_msg_type_name(d->type));
		return;
	}
	if (s->ob_n == s->ob_cap) {
		size_t cap = s->ob_cap * 2;
		struct wave_msg *ob = realloc(s->ob, cap * sizeof(*ob));

		if (!ob) {
			/* Cannot keep the agent's view right: start over. */
			host_lose_agent(s->h, "no memory for events");
			return;
		}
		s->ob = ob;
		s->ob_cap = cap;
	}
	s->ob[s->ob_n++] = m;
	if (s->ob_n >= s->batch)
		(void)flush(s);
}

static void emit_task(struct wave_sched *s, uint16_t type, const struct htask *t, uint32_t cpu)
{
	struct wave_sched_msg d = { .type = type, .task = t->id, .seq = t->seq,
				    .now_ns = wave_now_ns(), .cpu = cpu };

	if (type == WAVE_SCHED_TASK_NEW) {
		d.state = t->state;
		d.hint_kind = t->hint_kind;
		d.hint = t->hint;
		d.cpu = t->cpu_hint;
	}
	emit(s, &d);
}

static void outcome(struct wave_sched *s, uint16_t decision, uint64_t task, uint64_t seq,
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
	emit(s, &d);
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
	struct slot *sl = d->type == WAVE_SCHED_RUN ? &c->run : &c->pre;

	/* The agent fills a slot only once its previous decision there has
	 * an outcome, and runs only on CPUs it knows are free. */
	if (sl->type) { /* it contradicts itself: the host cannot use it */
		outcome(s, d->type, d->task, d->seq, d->cpu, WAVE_SCHED_ABORT_INVALID);
		return;
	}
	if (d->type == WAVE_SCHED_RUN && cur && !cur->hidden) {
		outcome(s, d->type, d->task, d->seq, d->cpu, WAVE_SCHED_ABORT_CPU_BUSY);
		return;
	}
	/* A RUN for a CPU a fallback task still holds waits for it to stop. */
	sl->task = d->task;
	sl->seq = d->seq;
	sl->type = d->type;
}

static void preempt(struct wave_sched *s, const struct wave_sched_msg *d)
{
	struct hcpu *c = &s->cpus[d->cpu];
	const struct htask *t = c->current == d->task ? task_find(s, d->task) : NULL;

	if (!t || t->hidden || t->seq != d->seq || c->preempt_task) {
		s->st.preempts_moot++;
		outcome(s, WAVE_SCHED_PREEMPT, d->task, d->seq, d->cpu, WAVE_SCHED_ABORT_STALE);
		return;
	}
	c->preempt_task = d->task;
	c->preempt_seq = d->seq;
	s->st.preempts++;
	/* Pairs with the acquire load in wave_sched_should_yield(). */
	wave_store_release(&c->yield, 1u);
	/* Only the application's signal, only if it gave one: it interrupts
	 * a blocking call; the thread then sees the flag. */
	if (t->managed && ((const struct wave_sched_thread *)t->arg)->signo > 0) {
		const struct wave_sched_thread *th = t->arg;

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
		preempt(s, &d);
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
	memset(&c->run, 0, sizeof(c->run));
	memset(&c->pre, 0, sizeof(c->pre));
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
		s->q_len = s->q_head = 0; /* the agent has every runnable task */
		return;
	}
	/* Decisions in flight die with the agent; the host's truth stands. */
	s->agent = false;
	s->ob_n = 0;
	s->st.fallbacks++;
	for (uint32_t i = 0; i < s->n_cpus; i++)
		clear_cpu_decisions(&s->cpus[i]);
	fifo_rebuild(s);
}

/* Resync: the CPU count, then every task not running. Tasks running now
 * stay unknown to this agent until they stop. */
static int replay(void *user)
{
	struct wave_sched *s = user;
	struct wave_host *h = s->h;
	struct wave_msg m;
	int ret;

	sched_setup_encode(s->n_cpus, &m);
	if ((ret = host_send(h, &m, 1)) != 1)
		return ret < 0 ? ret : -EAGAIN;
	for (uint32_t i = 0; i < s->n_cpus; i++)
		clear_cpu_decisions(&s->cpus[i]);
	for (size_t i = 0; i < s->nb; i++) {
		for (struct htask *t = s->buckets[i]; t; t = t->next) {
			struct wave_sched_msg d = { .type = WAVE_SCHED_TASK_NEW, .task = t->id,
						    .seq = t->seq, .now_ns = wave_now_ns(),
						    .state = t->state, .hint_kind = t->hint_kind,
						    .hint = t->hint, .cpu = t->cpu_hint };

			t->hidden = t->state == WAVE_SCHED_RUNNING;
			if (t->hidden)
				continue;
			if ((ret = wave_sched_msg_encode(&d, s->n_cpus, &m)) < 0)
				return ret;
			if ((ret = host_send(h, &m, 1)) != 1)
				return ret < 0 ? ret : -EAGAIN;
			s->st.events++;
		}
	}
	s->st.resyncs++;
	return 0;
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
			emit(s, &d);
	}
}

/* Receives, sends, ticks; lock held. */
static void progress(struct wave_sched *s)
{
	if (!s->h)
		return;
	(void)flush(s);
	(void)wave_host_poll(s->h, 0); /* stages decisions through on_sched_msg() */
	ticks(s, wave_now_ns());
	(void)flush(s);
}

static bool has_work(const struct wave_sched *s, const struct hcpu *c)
{
	return !c->current && (s->agent ? c->run.type || c->pre.type : s->q_len != 0);
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
	for (size_t i = 0; s->buckets && i < s->nb; i++)
		for (struct htask *t = s->buckets[i], *n; t; t = n) {
			n = t->next;
			free(t);
		}
	free(s->buckets);
	free(s->cpus);
	free(s->q);
	free(s->ob);
	free(s->cores);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static int sched_connect(struct wave_sched *s, const char *uri, const struct wave_sched_opts *o,
			 struct wave_error *err)
{
	struct host_domain d = { .id = WAVE_DOMAIN_SCHED, .first = WAVE_MSG_SCHED_FIRST,
				 .last = WAVE_MSG_SCHED_LAST, .on_msg = on_sched_msg,
				 .on_state = on_state, .replay = replay, .user = s };
	struct wave_host_opts ho;
	int ret;

	if (o->host)
		ho = *o->host;
	else
		wave_host_opts_init(&ho);
	ho.domains = WAVE_HOST_DOMAIN(WAVE_DOMAIN_SCHED);
	if ((ret = host_new(uri, &ho, &s->h)) < 0 || (ret = host_add_domain(s->h, &d)) < 0)
		return ret;
	/* 1: no agent yet, fallback until one welcomes us. 0: welcomed and
	 * resynced (the CPU count alone): the agent decides from now on. */
	ret = host_start(s->h, true, err);
	if (ret == 0)
		s->agent = true;
	return ret < 0 ? ret : 0;
}

WAVE_API int wave_sched_create(const char *uri, const struct wave_sched_opts *opts,
			       struct wave_sched **out, struct wave_error *err)
{
	struct wave_sched_opts o;
	struct wave_sched *s;
	int ret;

	if (err)
		memset(err, 0, sizeof(*err));
	if (opts)
		o = *opts;
	else
		wave_sched_opts_init(&o);
	if (!out || o.size != sizeof(o) || o.n_cpus == 0 || o.n_cpus > WAVE_SCHED_MAX_CPUS ||
	    o.batch == 0 || o.batch > BATCH_MAX || (o.host && o.host->size != sizeof(*o.host)))
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	s->n_cpus = o.n_cpus;
	s->batch = o.batch;
	s->tick_ns = (uint64_t)o.tick_us * 1000u;
	s->nb = 64;
	s->ob_cap = 64;
	s->buckets = calloc(s->nb, sizeof(*s->buckets));
	s->cpus = aligned_alloc(64, s->n_cpus * sizeof(*s->cpus));
	s->ob = malloc(s->ob_cap * sizeof(*s->ob));
	if (!s->buckets || !s->cpus || !s->ob) {
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
	(void)flush(s);
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

WAVE_API int wave_sched_task_new(struct wave_sched *s, uint64_t id,
				 const struct wave_sched_task_opts *opts)
{
	struct wave_sched_task_opts o;
	struct htask *t;

	if (opts)
		o = *opts;
	else
		wave_sched_task_opts_init(&o);
	if (!s || id == 0 || o.size != sizeof(o) || !hint_ok(&o) ||
	    (o.cpu_hint != WAVE_SCHED_CPU_NONE && o.cpu_hint >= s->n_cpus))
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	if (task_find(s, id)) {
		pthread_mutex_unlock(&s->lock);
		return -EEXIST;
	}
	t = task_insert(s, id);
	if (!t) {
		pthread_mutex_unlock(&s->lock);
		return -ENOMEM;
	}
	t->seq = ++s->gen;
	t->state = o.runnable ? WAVE_SCHED_RUNNABLE : WAVE_SCHED_BLOCKED;
	t->cpu_hint = o.cpu_hint;
	t->hint_kind = (uint8_t)o.hint_kind;
	t->hint = o.hint;
	t->arg = o.arg;
	if (s->agent)
		emit_task(s, WAVE_SCHED_TASK_NEW, t, 0);
	else if (o.runnable && fifo_push(s, t, false) < 0)
		wave_warn("sched: no memory to queue task %llu", (unsigned long long)id);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

WAVE_API int wave_sched_task_wakeup(struct wave_sched *s, uint64_t id)
{
	struct htask *t;
	int ret = 0;

	if (!s || id == 0)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	t = task_find(s, id);
	if (!t)
		ret = -ENOENT;
	else if (t->state != WAVE_SCHED_BLOCKED)
		ret = -EPERM;
	if (ret == 0) {
		t->seq = ++s->gen;
		t->state = WAVE_SCHED_RUNNABLE;
		if (s->agent)
			emit_task(s, WAVE_SCHED_TASK_WAKEUP, t, WAVE_SCHED_CPU_NONE);
		else if (fifo_push(s, t, false) < 0)
			wave_warn("sched: no memory to queue task %llu", (unsigned long long)id);
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* @t stops running on its CPU; the caller sets its new state and seq. */
static void stop_running(struct wave_sched *s, struct htask *t)
{
	struct hcpu *c = &s->cpus[t->cpu];

	c->current = 0;
	c->idle_sent = 0;
	/* Pairs with the acquire load in wave_sched_should_yield(). */
	wave_store_release(&c->yield, 0u);
}

/* After the event that stopped @cpu's task: a PREEMPT aimed at it is
 * answered, by that event when it was the preemption, else by an outcome
 * (the task stopped on its own first). */
static void settle_preempt(struct wave_sched *s, uint32_t cpu, bool carried_out)
{
	struct hcpu *c = &s->cpus[cpu];

	if (c->preempt_task && !carried_out) {
		s->st.preempts_moot++;
		outcome(s, WAVE_SCHED_PREEMPT, c->preempt_task, c->preempt_seq, cpu,
			WAVE_SCHED_ABORT_STALE);
	}
	c->preempt_task = c->preempt_seq = 0;
}

static int task_stop(struct wave_sched *s, uint64_t id, uint16_t type)
{
	bool preempted = type == WAVE_SCHED_TASK_PREEMPTED;
	struct htask *t;
	uint32_t cpu;
	bool hidden;

	if (!s || id == 0)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	t = task_find(s, id);
	if (!t || t->state != WAVE_SCHED_RUNNING) {
		pthread_mutex_unlock(&s->lock);
		return t ? -EPERM : -ENOENT;
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
		emit_task(s, hidden ? WAVE_SCHED_TASK_NEW : type, t, cpu);
	} else if (t->state == WAVE_SCHED_RUNNABLE && fifo_push(s, t, preempted) < 0) {
		wave_warn("sched: no memory to queue task %llu", (unsigned long long)id);
	}
	settle_preempt(s, cpu, preempted);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

WAVE_API int wave_sched_task_blocked(struct wave_sched *s, uint64_t id)
{
	return task_stop(s, id, WAVE_SCHED_TASK_BLOCKED);
}

WAVE_API int wave_sched_task_yield(struct wave_sched *s, uint64_t id)
{
	return task_stop(s, id, WAVE_SCHED_TASK_YIELD);
}

WAVE_API int wave_sched_task_preempted(struct wave_sched *s, uint64_t id)
{
	return task_stop(s, id, WAVE_SCHED_TASK_PREEMPTED);
}

WAVE_API int wave_sched_task_dead(struct wave_sched *s, uint64_t id)
{
	uint32_t cpu = WAVE_SCHED_CPU_NONE;
	struct htask *t;

	if (!s || id == 0)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	t = task_find(s, id);
	if (!t) {
		pthread_mutex_unlock(&s->lock);
		return -ENOENT;
	}
	if (t->state == WAVE_SCHED_RUNNING) {
		cpu = t->cpu;
		stop_running(s, t);
	}
	t->seq = ++s->gen;
	/* A hidden task was never known to this agent: nothing to tell. */
	if (!t->hidden)
		emit_task(s, WAVE_SCHED_TASK_DEAD, t, cpu);
	if (cpu != WAVE_SCHED_CPU_NONE)
		settle_preempt(s, cpu, false);
	task_remove(s, t);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* Commits or aborts the decision in @cpu's RUN slot, or else its
 * PRESTAGE slot (a RUN in flight comes before the prestaged task). Return:
 * the task, now RUNNING there, or NULL (aborted, outcome reported). */
static struct htask *take_slot(struct wave_sched *s, uint32_t cpu, int *prestaged)
{
	struct hcpu *c = &s->cpus[cpu];
	struct slot *from = c->run.type ? &c->run : &c->pre;
	struct slot sl = *from;
	struct htask *t = task_find(s, sl.task);
	unsigned result = WAVE_SCHED_COMMITTED;

	memset(from, 0, sizeof(*from));
	if (!t)
		result = WAVE_SCHED_ABORT_DEAD;
	else if (t->seq != sl.seq)
		result = WAVE_SCHED_ABORT_STALE;
	else if (t->state != WAVE_SCHED_RUNNABLE)
		result = WAVE_SCHED_ABORT_NOT_RUNNABLE;
	else if (c->current)
		result = WAVE_SCHED_ABORT_CPU_BUSY;
	if (result == WAVE_SCHED_COMMITTED) {
		t->state = WAVE_SCHED_RUNNING;
		t->cpu = cpu;
		c->current = t->id;
		*prestaged = sl.type == WAVE_SCHED_PRESTAGE;
		if (*prestaged)
			s->st.prestaged++;
	}
	outcome(s, sl.type, sl.task, sl.seq, cpu, result);
	return result == WAVE_SCHED_COMMITTED ? t : NULL;
}

static int next_locked(struct wave_sched *s, uint32_t cpu, struct wave_sched_grant *out,
		       bool poll)
{
	struct hcpu *c = &s->cpus[cpu];
	struct htask *t = NULL;
	int prestaged = 0, source = WAVE_DECISION_AGENT;

	if (c->current)
		return -EBUSY;
	if (!c->run.type && !c->pre.type && poll)
		progress(s); /* decisions, or a reconnection on fallback */
	while (!t && s->agent && (c->run.type || c->pre.type))
		t = take_slot(s, cpu, &prestaged);
	if (!t && s->agent && !c->idle_sent) {
		struct wave_sched_msg d = { .type = WAVE_SCHED_CPU_IDLE, .cpu = cpu,
					    .now_ns = wave_now_ns() };

		c->idle_sent = 1;
		emit(s, &d);
	}
	if (!t && !s->agent) {
		t = fifo_pop(s);
		if (t) {
			t->state = WAVE_SCHED_RUNNING;
			t->cpu = cpu;
			c->current = t->id;
			s->st.fallback_runs++;
			source = WAVE_DECISION_FALLBACK;
		}
	}
	(void)flush(s);
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
	ret = next_locked(s, cpu, out, true);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

static long futex(_Atomic uint32_t *word, int op, uint32_t val, const struct timespec *ts)
{
	return syscall(SYS_futex, word, op, val, ts, NULL, 0);
}

/* Managed threads: every free CPU takes its next decision (or FIFO task)
 * and the thread it names is woken with the grant. Lock held. */
static void dispatch_idle(struct wave_sched *s)
{
	struct wave_sched_grant g;

	if (!s->managed)
		return;
	for (uint32_t cpu = 0; cpu < s->n_cpus; cpu++) {
		struct wave_sched_thread *th;

		if (s->cpus[cpu].current || next_locked(s, cpu, &g, false) != 1)
			continue;
		th = g.arg;
		th->cpu = cpu;
		/* Pairs with the acquire loads in thread_park(). */
		wave_store_release(&th->granted, 1u);
		futex(&th->granted, FUTEX_WAKE_PRIVATE, 1, NULL);
	}
}

static void nap(uint64_t ns)
{
	struct timespec ts = { 0, (long)ns };

	nanosleep(&ts, NULL);
}

/* How long a waiting thread sleeps between two looks, without the lock. */
#define WAIT_STEP_NS 20000u

WAVE_API int wave_sched_wait(struct wave_sched *s, uint32_t cpu, uint32_t timeout_us)
{
	uint64_t deadline, now;
	bool ready;

	if (!s || cpu >= s->n_cpus)
		return -EINVAL;
	deadline = wave_now_ns() + (uint64_t)timeout_us * 1000u;
	for (;;) {
		pthread_mutex_lock(&s->lock);
		progress(s);
		dispatch_idle(s);
		ready = has_work(s, &s->cpus[cpu]);
		pthread_mutex_unlock(&s->lock);
		if (ready)
			return 1;
		now = wave_now_ns();
		if (now >= deadline)
			return 0;
		nap(deadline - now < WAIT_STEP_NS ? deadline - now : WAIT_STEP_NS);
	}
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
		n += (s->cpus[i].run.type != 0) + (s->cpus[i].pre.type != 0) +
		     (s->cpus[i].preempt_task != 0);
	return n;
}

WAVE_API int wave_sched_poll(struct wave_sched *s, uint32_t timeout_us)
{
	uint64_t deadline, now;
	unsigned before, after;

	if (!s)
		return -EINVAL;
	deadline = wave_now_ns() + (uint64_t)timeout_us * 1000u;
	for (;;) {
		pthread_mutex_lock(&s->lock);
		before = staged(s);
		progress(s);
		after = staged(s);
		dispatch_idle(s);
		pthread_mutex_unlock(&s->lock);
		if (after > before)
			return (int)(after - before);
		now = wave_now_ns();
		if (now >= deadline)
			return 0;
		nap(deadline - now < WAIT_STEP_NS ? deadline - now : WAIT_STEP_NS);
	}
}

WAVE_API int wave_sched_flush(struct wave_sched *s)
{
	int ret;

	if (!s)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	ret = flush(s);
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
	out->tasks = s->n_tasks;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* ---- managed threads ---------------------------------------------------- */

/* Waits for a CPU grant; parked on the futex, polling the agent (and
 * dispatching idle CPUs) every millisecond meanwhile. */
static void thread_park(struct wave_sched_thread *t)
{
	const struct timespec ms = { 0, 1000000 };
	struct wave_sched *s = t->s;

	/* Pairs with the release store in dispatch_idle(). */
	while (!wave_load_acquire(&t->granted)) {
		futex(&t->granted, FUTEX_WAIT_PRIVATE, 0, &ms);
		if (!wave_load_acquire(&t->granted))
			(void)wave_sched_poll(s, 0);
	}
	if (s->cores) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(s->cores[t->cpu], &set);
		/* Best effort: a core outside the allowed set is ignored. */
		(void)pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	}
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
	ret = type ? task_stop(s, t->id, type) : wave_sched_task_dead(s, t->id);
	if (ret < 0) {
		wave_store_relaxed(&t->granted, 1u);
		return ret;
	}
	pthread_mutex_lock(&s->lock);
	dispatch_idle(s);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

WAVE_API int wave_sched_thread_attach(struct wave_sched *s, uint64_t id, int signo,
				      struct wave_sched_thread **out)
{
	struct wave_sched_task_opts o;
	struct wave_sched_thread *t;
	int ret;

	if (!s || !out || signo < 0 || signo >= NSIG)
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
	s->managed++;
	pthread_mutex_unlock(&s->lock);
	ret = wave_sched_task_new(s, id, &o);
	pthread_mutex_lock(&s->lock);
	if (ret == 0)
		task_find(s, id)->managed = 1;
	else
		s->managed--;
	dispatch_idle(s);
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

WAVE_API int wave_sched_thread_yield(struct wave_sched_thread *t)
{
	int ret;

	if (!t || t->blocked)
		return -EINVAL;
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
	if (!wave_sched_should_yield(t->s, t->cpu))
		return 0;
	ret = thread_release(t, WAVE_SCHED_TASK_PREEMPTED);
	if (ret < 0)
		return ret;
	thread_park(t);
	return 1;
}

WAVE_API int wave_sched_thread_block(struct wave_sched_thread *t)
{
	int ret;

	if (!t)
		return -EINVAL;
	if (t->blocked)
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
	if (!t->blocked)
		return -EPERM;
	ret = wave_sched_task_wakeup(t->s, t->id);
	if (ret < 0)
		return ret;
	t->blocked = false;
	pthread_mutex_lock(&t->s->lock);
	dispatch_idle(t->s);
	pthread_mutex_unlock(&t->s->lock);
	thread_park(t);
	return 0;
}

WAVE_API void wave_sched_thread_detach(struct wave_sched_thread *t)
{
	struct wave_sched *s;

	if (!t)
		return;
	s = t->s;
	if (thread_release(t, 0) < 0)
		wave_warn("sched: thread %llu was not attached", (unsigned long long)t->id);
	pthread_mutex_lock(&s->lock);
	s->managed--;
	pthread_mutex_unlock(&s->lock);
	free(t);
}
