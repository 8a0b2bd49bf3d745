/* SPDX-License-Identifier: MIT */
/* Recording a trace off the recording thread (trace_async.h): the ring's
 * slow paths and the writer thread. */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "../core/core.h"
#include "../core/futex.h"
#include "trace_async.h"

/* The longest an idle writer sleeps: what a record may wait for it when
 * its wake-up is missed (the producer wakes it without a full fence). */
#define IDLE_SLEEP_NS 1000000L
/* Blocks are written at least this often while records come. */
#define CHECKPOINT_NS 1000000000ull
/* The writer lets the producer reuse slots every this many records. */
#define RELEASE_EVERY 64u

static void futex_wait(_Atomic uint32_t *word, uint32_t val, long ns)
{
	struct timespec ts = { 0, ns };

	(void)wave_futex(word, FUTEX_WAIT_PRIVATE, val, &ts);
}

static void futex_wake(_Atomic uint32_t *word)
{
	(void)wave_futex(word, FUTEX_WAKE_PRIVATE, 1, NULL);
}

void trace_async_publish(struct trace_async *a)
{
	if (!a || a->published == a->head)
		return;
	a->published = a->head;
	/* The slots were stored non-temporally: ordered by a store fence. */
	wave_fence_wc();
	/* Pairs with the acquire in the writer: the slots before are written. */
	wave_store_release(&a->head_pub, a->head);
	/* A sleeping writer is woken once a quarter of the ring waits (else
	 * it wakes by itself within IDLE_SLEEP_NS); a wake-up missed for
	 * want of a fence costs only that delay. The writer's tail is read
	 * afresh (it sleeps: its line is still): @tail_seen may be a lap old,
	 * and a wake-up is a system call. */
	if (wave_load_relaxed(&a->sleeping) &&
	    a->head - (a->tail_seen = wave_load_acquire(&a->tail)) > (a->mask + 1) / 4) {
		wave_store_relaxed(&a->sleeping, 0u);
		futex_wake(&a->sleeping);
		a->wakes++;
	}
}

/* One slot of the ring into the trace. */
static void take(struct trace_async *a, const struct wave_msg *s)
{
	if (s->seq == TRACE_ASYNC_LOST) {
		trace_writer_lost(a->w, s->payload.u64[0]);
		return;
	}
	/* The host's latest setup heads the files that follow (rotation). */
	if (s->seq == TRACE_EVENT && a->setup_type && s->type == a->setup_type)
		trace_writer_set_setup(a->w, s, 1);
	trace_put(a->w, (enum trace_kind)s->seq, s->tstamp, s);
}

/* Drains what the producer published. Return: records taken. */
static uint64_t drain(struct trace_async *a, uint64_t *tail)
{
	/* Pairs with the release in trace_async_publish(). */
	uint64_t head = wave_load_acquire(&a->head_pub), n = head - *tail;

	for (; *tail != head; ++*tail) {
		take(a, &a->wslot[*tail & a->wmask]);
		/* Pairs with the acquire in trace_async_put(): read, reusable. */
		if (*tail % RELEASE_EVERY == RELEASE_EVERY - 1)
			wave_store_release(&a->tail, *tail + 1);
	}
	wave_store_release(&a->tail, *tail);
	return n;
}

static void *writer_main(void *arg)
{
	struct trace_async *a = arg;
	uint64_t tail = 0, flushed = wave_now_ns(), now;
	sigset_t all;
	int stop;

	/* Signals are the application's threads' business. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	do {
		/* Pairs with the release in trace_async_close(): the last
		 * records were published before it. */
		stop = wave_load_acquire(&a->stop);
		if (drain(a, &tail) > 0 || stop)
			continue;
		now = wave_now_ns();
		if (now - flushed >= CHECKPOINT_NS) {
			trace_writer_flush(a->w);
			flushed = now;
		}
		/* Nothing came: sleep, unless something came meanwhile. */
		wave_store_release(&a->sleeping, 1u);
		if (wave_load_acquire(&a->head_pub) == tail && !wave_load_acquire(&a->stop))
			futex_wait(&a->sleeping, 1u, IDLE_SLEEP_NS);
		wave_store_relaxed(&a->sleeping, 0u);
	} while (!stop);
	return NULL;
}

static int start(struct trace_async *a, int cpu)
{
	pthread_attr_t attr;
	cpu_set_t set;
	int ret;

	if ((ret = pthread_attr_init(&attr)) != 0)
		return -ret;
	if (cpu >= 0) {
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		ret = pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
	}
	if (ret == 0)
		ret = pthread_create(&a->thr, &attr, writer_main, a);
	pthread_attr_destroy(&attr);
	if (ret == 0)
		(void)pthread_setname_np(a->thr, "wave-trace");
	return -ret;
}

int trace_async_open(const struct trace_async_opts *o, const struct trace_meta *meta,
		     struct trace_async **out, struct wave_error *err)
{
	struct trace_async *a;
	int ret;

	wave_error_clear(err);
	if (!o || !meta || !out || o->ring < TRACE_ASYNC_RING_MIN ||
	    o->ring > TRACE_ASYNC_RING_MAX || (o->ring & (o->ring - 1)) || o->cpu < -1 ||
	    o->cpu >= CPU_SETSIZE)
		return wave_error_set(err, -EINVAL, "trace", 0, 0, "invalid argument");
	if (!(a = aligned_alloc(_Alignof(struct trace_async), sizeof(*a))))
		return wave_error_set(err, -ENOMEM, "trace", 0, 0, "out of memory");
	memset(a, 0, sizeof(*a));
	a->mask = a->wmask = o->ring - 1;
	a->pub_every = o->ring / 16 < TRACE_ASYNC_PUBLISH ? o->ring / 16 : TRACE_ASYNC_PUBLISH;
	a->setup_type = o->setup_type;
	if (!(a->slot = aligned_alloc(sizeof(struct wave_msg), o->ring * sizeof(struct wave_msg)))) {
		free(a);
		return wave_error_set(err, -ENOMEM, "trace", 0, 0, "out of memory");
	}
	a->wslot = a->slot;
	if ((ret = trace_writer_open(&o->w, meta, &a->w, err)) < 0) {
		free(a->slot);
		free(a);
		return ret;
	}
	if ((ret = start(a, o->cpu)) < 0) {
		wave_error_set(err, ret, o->w.path, 0, 0, "cannot start its writer thread%s: %s",
			       o->cpu >= 0 ? " on that CPU" : "", wave_strerror(ret));
		trace_writer_close(a->w);
		free(a->slot);
		free(a);
		return ret;
	}
	*out = a;
	return 0;
}

void trace_async_close(struct trace_async *a)
{
	if (!a)
		return;
	trace_async_publish(a);
	/* Records lost at the very end: the trace says so too. */
	if (a->lost_pending) {
		struct wave_msg gap = { .seq = TRACE_ASYNC_LOST };

		gap.payload.u64[0] = a->lost_pending;
		/* Wait for room: the writer is draining and nothing else comes. */
		while (a->head - wave_load_acquire(&a->tail) > a->mask)
			sched_yield();
		a->slot[a->head++ & a->mask] = gap;
		a->published = a->head - 1; /* forces the publication */
		trace_async_publish(a);
	}
	/* Pairs with the acquire in writer_main(). */
	wave_store_release(&a->stop, 1);
	wave_store_relaxed(&a->sleeping, 0u);
	futex_wake(&a->sleeping);
	pthread_join(a->thr, NULL);
	if (a->lost)
		wave_warn("trace %s: %llu records lost: the writer thread fell behind",
			  a->w->o.path, (unsigned long long)a->lost);
	trace_writer_close(a->w);
	free(a->slot);
	free(a);
}
