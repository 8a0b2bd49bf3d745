/* SPDX-License-Identifier: MIT */
/*
 * The peer baseline of wave-bench-sched: Linux's own scheduler running the
 * workload on plain threads. A pool of threads pinned to the worker CPU
 * waits on a queue; a dispatcher thread, alone on the other CPU, hands each
 * request to the queue at its arrival time and wakes a thread. Several
 * requests can then be runnable at once on the worker CPU, and the kernel's
 * scheduler (CFS on Debian 12's kernel) decides which runs and for how long
 * — a long request does not keep a short one waiting for its whole 10 ms,
 * only for a time slice. This is thread-per-request, the way a runtime
 * without a user-level scheduler serves requests.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "bench_sched.h"

struct linux_pool {
	const struct bsched_opts *o;
	struct load *l;
	pthread_mutex_t lock;
	sem_t ready;           /* one post per request queued, or per thread at stop */
	unsigned *queue;       /* request indices, FIFO */
	unsigned head, tail;   /* under lock */
	atomic_uint done;
	atomic_bool stop;
};

static void *worker(void *arg)
{
	struct linux_pool *p = arg;

	if (bsched_pin(p->o->worker_cpu) < 0)
		return (void *)1;
	for (;;) {
		while (sem_wait(&p->ready) < 0 && errno == EINTR)
			;
		if (atomic_load(&p->stop))
			return NULL;
		pthread_mutex_lock(&p->lock);
		unsigned i = p->queue[p->head++];
		pthread_mutex_unlock(&p->lock);
		struct load_req *r = &p->l->req[i];
		r->work = load_spin(r->work, NULL, NULL);
		r->done_ns = load_now_ns();
		atomic_fetch_add(&p->done, 1);
	}
}

/* The dispatcher: on its own CPU, releases each request at its time. */
static void dispatch(struct linux_pool *p, uint64_t deadline)
{
	struct load *l = p->l;

	l->start_ns = load_now_ns() + 1000000; /* 1 ms for the threads to settle */
	for (unsigned i = 0; i < l->n; i++) {
		uint64_t at = l->start_ns + l->req[i].at_ns;
		while (load_now_ns() < at)
			;
		pthread_mutex_lock(&p->lock);
		p->queue[p->tail++] = i;
		pthread_mutex_unlock(&p->lock);
		sem_post(&p->ready);
	}
	while (atomic_load(&p->done) < l->n && load_now_ns() < deadline)
		sched_yield();
}

int bsched_run_linux(const struct bsched_opts *o, struct load *l)
{
	struct linux_pool p = { .o = o, .l = l };
	pthread_t *th = calloc(o->threads, sizeof(*th));
	unsigned started = 0;
	int ret = 0;

	p.queue = calloc(l->n, sizeof(*p.queue));
	if (!th || !p.queue) {
		free(th);
		free(p.queue);
		return -ENOMEM;
	}
	pthread_mutex_init(&p.lock, NULL);
	sem_init(&p.ready, 0, 0);
	for (; started < o->threads; started++) {
		if ((ret = -pthread_create(&th[started], NULL, worker, &p)) < 0)
			break;
	}
	if (ret == 0 && (ret = bsched_pin(o->agent_cpu)) == 0)
		dispatch(&p, load_now_ns() + bsched_run_timeout_ns(o, l));
	atomic_store(&p.stop, true);
	for (unsigned i = 0; i < started; i++)
		sem_post(&p.ready);
	for (unsigned i = 0; i < started; i++) {
		void *res;
		pthread_join(th[i], &res);
		if (res && ret == 0)
			ret = -EPERM; /* a worker could not pin itself */
	}
	sem_destroy(&p.ready);
	pthread_mutex_destroy(&p.lock);
	free(p.queue);
	free(th);
	return ret;
}
