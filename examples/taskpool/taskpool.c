/* SPDX-License-Identifier: MIT */
/* taskpool: see taskpool.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "taskpool.h"

struct tp_task {
	taskpool_fn fn;
	void *arg;
};

struct tp_worker {
	struct taskpool *pool;
	pthread_t thr;
	uint32_t cpu;
	int core; /* -1: not pinned */
};

struct taskpool {
	struct wave_sched *s;
	unsigned n;
	struct tp_worker *w;
	atomic_uint_fast64_t next_id;
	atomic_uint_fast64_t submitted, done;
	atomic_int stop;
	/* Blocked tasks to wake up, woken by whoever polls next. */
	pthread_mutex_t wake_mu;
	uint64_t *wake;
	size_t n_wake, cap_wake;
};

static void wake_push(struct taskpool *p, uint64_t id)
{
	pthread_mutex_lock(&p->wake_mu);
	if (p->n_wake == p->cap_wake) {
		size_t cap = p->cap_wake ? p->cap_wake * 2 : 64;
		uint64_t *w = realloc(p->wake, cap * sizeof(*w));

		if (!w)
			abort(); /* an example: a lost wakeup would hang */
		p->wake = w;
		p->cap_wake = cap;
	}
	p->wake[p->n_wake++] = id;
	pthread_mutex_unlock(&p->wake_mu);
}

/* The "I/O completions": every blocked task becomes runnable again. */
static void wake_all(struct taskpool *p)
{
	pthread_mutex_lock(&p->wake_mu);
	for (size_t i = 0; i < p->n_wake; i++)
		(void)wave_sched_task_wakeup(p->s, p->wake[i]);
	p->n_wake = 0;
	pthread_mutex_unlock(&p->wake_mu);
}

/* The longest an idle worker sleeps before it looks at its CPU again (it
 * is woken at once when work comes). */
#define IDLE_WAIT_NS WAVE_MS(1)

static void run_one(struct tp_worker *w, const struct wave_sched_grant *g)
{
	struct taskpool *p = w->pool;
	struct tp_task *t = g->arg;
	struct taskpool_ctx ctx = { p, w->cpu, g->task };
	int ret = t->fn(&ctx, t->arg);

	if (ret == TASKPOOL_DONE) {
		/* The task's memory goes before it is counted done. */
		(void)wave_sched_task_dead(p->s, g->task);
		free(t);
		atomic_fetch_add(&p->done, 1);
	} else if (ret == TASKPOOL_BLOCK) {
		/* Reported before the wake-up is possible. */
		(void)wave_sched_task_blocked(p->s, g->task);
		wake_push(p, g->task);
	} else if (wave_sched_should_yield(p->s, w->cpu)) {
		(void)wave_sched_task_preempted(p->s, g->task);
	} else {
		(void)wave_sched_task_yield(p->s, g->task);
	}
}

static void *worker(void *arg)
{
	struct tp_worker *w = arg;
	struct taskpool *p = w->pool;
	struct wave_sched_grant g;

	if (w->core >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(w->core, &set);
		/* Best effort: a core outside the allowed set is ignored. */
		(void)pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	}
	while (!atomic_load(&p->stop)) {
		if (wave_sched_next(p->s, w->cpu, &g) == 1) {
			run_one(w, &g);
		} else {
			wake_all(p);
			(void)wave_sched_wait(p->s, w->cpu, IDLE_WAIT_NS);
		}
	}
	return NULL;
}

int taskpool_create(const struct taskpool_opts *o, struct taskpool **out,
		    struct wave_error *err)
{
	struct wave_sched_opts so;
	struct taskpool *p;
	int ret;

	if (!o || !out || o->workers == 0)
		return -EINVAL;
	if (o->sched)
		so = *o->sched;
	else
		wave_sched_opts_init(&so);
	so.n_cpus = o->workers;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->n = o->workers;
	pthread_mutex_init(&p->wake_mu, NULL);
	p->w = calloc(p->n, sizeof(*p->w));
	if (!p->w) {
		free(p);
		return -ENOMEM;
	}
	ret = wave_sched_create(o->uri, &so, &p->s, err);
	if (ret < 0) {
		free(p->w);
		free(p);
		return ret;
	}
	for (unsigned i = 0; i < p->n; i++) {
		p->w[i].pool = p;
		p->w[i].cpu = i;
		p->w[i].core = o->cores ? o->cores[i] : -1;
		ret = -pthread_create(&p->w[i].thr, NULL, worker, &p->w[i]);
		if (ret < 0) {
			p->n = i;
			taskpool_destroy(p);
			return ret;
		}
	}
	*out = p;
	return 0;
}

int taskpool_submit(struct taskpool *p, taskpool_fn fn, void *arg, uint64_t *id)
{
	struct wave_sched_task_opts o;
	struct tp_task *t = malloc(sizeof(*t));
	uint64_t tid = atomic_fetch_add(&p->next_id, 1) + 1;
	int ret;

	if (!t)
		return -ENOMEM;
	t->fn = fn;
	t->arg = arg;
	wave_sched_task_opts_init(&o);
	o.arg = t;
	atomic_fetch_add(&p->submitted, 1);
	ret = wave_sched_task_new(p->s, tid, &o);
	if (ret < 0) {
		atomic_fetch_sub(&p->submitted, 1);
		free(t);
		return ret;
	}
	if (id)
		*id = tid;
	return 0;
}

int taskpool_should_yield(const struct taskpool_ctx *ctx)
{
	return wave_sched_should_yield(ctx->pool->s, ctx->cpu);
}

void taskpool_wait(struct taskpool *p)
{
	(void)wave_sched_flush(p->s);
	while (atomic_load(&p->done) < atomic_load(&p->submitted)) {
		wake_all(p);
		(void)wave_sched_poll(p->s, IDLE_WAIT_NS);
	}
}

struct wave_sched *taskpool_sched(struct taskpool *p)
{
	return p->s;
}

void taskpool_destroy(struct taskpool *p)
{
	if (!p)
		return;
	atomic_store(&p->stop, 1);
	for (unsigned i = 0; i < p->n; i++)
		pthread_join(p->w[i].thr, NULL);
	/* Tasks not done are abandoned with the scheduler. */
	wave_sched_destroy(p->s);
	pthread_mutex_destroy(&p->wake_mu);
	free(p->wake);
	free(p->w);
	free(p);
}
