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

/* The longest an idle writer sleeps: a safety net only (the producer's
 * wake-up after a seal is never missed). */
#define IDLE_SLEEP_NS 1000000000L
/* The ring holds ring x this many bytes, in at least MIN_BLOCKS blocks. */
#define RECORD_BYTES 64u
#define MIN_BLOCKS 4u

static void futex_wait(_Atomic uint32_t *word, uint32_t val, long ns)
{
	struct timespec ts = { ns / 1000000000L, ns % 1000000000L };

	(void)wave_futex(word, FUTEX_WAIT_PRIVATE, val, &ts);
}

static void futex_wake(_Atomic uint32_t *word)
{
	(void)wave_futex(word, FUTEX_WAKE_PRIVATE, 1, NULL);
}

static struct trace_async_block *filling(struct trace_async *a)
{
	return &a->blk[a->head % a->nblk];
}

/* Hands the block being filled to the writer; none is being filled after. */
static void seal(struct trace_async *a)
{
	struct trace_async_block *b = filling(a);

	/* Rounded up to 16 bytes: the copy's unit; the ring block and
	 * @scratch have room for it. */
	wave_copy_nt(b->buf + TRACE_BLK_HDR, a->scratch, (a->enc.len + 15u) & ~15u);
	wave_fence_wc();
	b->len = a->enc.len;
	b->n = a->enc.n;
	b->base_ns = a->enc.n ? a->enc.base_ns : a->enc.last_ns;
	a->enc.cap = a->enc.len = a->enc.n = 0;
	a->head++;
	/* Sequentially consistent, both this store and the load after it, as
	 * the writer's of @sleeping and @head_pub: one of the two threads sees
	 * the other's store, so a writer going to sleep is never missed. One
	 * full fence a block. */
	atomic_store(&a->head_pub, a->head);
	if (atomic_load(&a->sleeping)) {
		wave_store_relaxed(&a->sleeping, 0u);
		futex_wake(&a->sleeping);
		a->wakes++;
	}
}

static bool has_records(const struct trace_async *a)
{
	return a->enc.cap && (a->enc.n || a->blk[a->head % a->nblk].lost);
}

bool trace_async_next(struct trace_async *a, uint64_t now)
{
	struct trace_async_block *b;

	if (a->enc.cap)
		seal(a);
	if (a->head - a->tail_seen >= a->nblk) {
		/* Pairs with the release in the writer after it wrote them. */
		a->tail_seen = wave_load_acquire(&a->tail);
		if (a->head - a->tail_seen >= a->nblk)
			return false;
	}
	b = filling(a);
	b->lost = a->lost_pending;
	b->has_setup = false;
	a->lost_pending = 0;
	a->enc.cap = a->blk_bytes;
	a->begun_ns = now;
	return true;
}

void trace_async_setup(struct trace_async *a, const struct wave_msg *m)
{
	struct trace_async_block *b = filling(a);

	b->setup = *m;
	b->has_setup = true;
}

void trace_async_flush(struct trace_async *a)
{
	if (a && has_records(a))
		seal(a);
}

void trace_async_checkpoint(struct trace_async *a, uint64_t now)
{
	if (a && has_records(a) && now - a->begun_ns >= TRACE_ASYNC_CHECKPOINT_NS)
		seal(a);
}

/* One sealed block into the trace. */
static void write_block(struct trace_writer *w, struct trace_async_block *b)
{
	(void)trace_writer_block(w, b->buf, b->len, b->n, b->base_ns, b->lost);
	/* The host's latest setup heads the files that follow (rotation). */
	if (b->has_setup)
		trace_writer_set_setup(w, &b->setup, 1);
}

static void *writer_main(void *arg)
{
	struct trace_async *a = arg;
	uint64_t tail = 0, head;
	sigset_t all;
	int stop;

	/* Signals are the application's threads' business. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	for (;;) {
		/* Pairs with the release in trace_async_close(): the last
		 * blocks were sealed before it. */
		stop = wave_load_acquire(&a->stop);
		/* Pairs with the store in seal(): the blocks before are sealed. */
		head = atomic_load(&a->head_pub);
		if (head != tail) {
			for (; tail != head; tail++) {
				write_block(a->w, &a->blk[tail % a->nblk]);
				/* Pairs with the acquire in trace_async_next(). */
				wave_store_release(&a->tail, tail + 1);
			}
			continue;
		}
		if (stop)
			return NULL;
		/* Nothing came: sleep, unless something came meanwhile (see
		 * seal() for why both are sequentially consistent). */
		atomic_store(&a->sleeping, 1u);
		if (atomic_load(&a->head_pub) == tail && !wave_load_acquire(&a->stop))
			futex_wait(&a->sleeping, 1u, IDLE_SLEEP_NS);
		wave_store_relaxed(&a->sleeping, 0u);
	}
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

/* The ring: @ring x RECORD_BYTES bytes, in blocks of at most
 * TRACE_BLOCK_BYTES, at least MIN_BLOCKS of them. */
static int ring_alloc(struct trace_async *a, unsigned ring)
{
	size_t bytes = (size_t)ring * RECORD_BYTES, each;
	uint8_t *mem;

	a->blk_bytes = bytes / MIN_BLOCKS < TRACE_BLOCK_BYTES ? (uint32_t)(bytes / MIN_BLOCKS)
							      : TRACE_BLOCK_BYTES;
	a->nblk = bytes / a->blk_bytes;
	each = TRACE_BLK_HDR + a->blk_bytes; /* a multiple of 64: every payload 16-aligned */
	if (!(a->blk = aligned_alloc(_Alignof(struct trace_async_block),
				     a->nblk * sizeof(*a->blk))))
		return -ENOMEM;
	if (!(mem = aligned_alloc(64, a->nblk * each))) {
		free(a->blk);
		return -ENOMEM;
	}
	if (!(a->scratch = aligned_alloc(64, a->blk_bytes))) {
		free(mem);
		free(a->blk);
		return -ENOMEM;
	}
	memset(a->scratch, 0, a->blk_bytes);
	a->enc.buf = a->scratch;
	memset(a->blk, 0, a->nblk * sizeof(*a->blk));
	for (uint64_t i = 0; i < a->nblk; i++)
		a->blk[i].buf = mem + i * each;
	return 0;
}

static void ring_free(struct trace_async *a)
{
	free(a->blk[0].buf);
	free(a->blk);
	free(a->scratch);
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
	a->setup_type = o->setup_type;
	if (ring_alloc(a, o->ring) < 0) {
		free(a);
		return wave_error_set(err, -ENOMEM, "trace", 0, 0, "out of memory");
	}
	if ((ret = trace_writer_open(&o->w, meta, &a->w, err)) < 0) {
		ring_free(a);
		free(a);
		return ret;
	}
	if ((ret = start(a, o->cpu)) < 0) {
		wave_error_set(err, ret, o->w.path, 0, 0, "cannot start its writer thread%s: %s",
			       o->cpu >= 0 ? " on that CPU" : "", wave_strerror(ret));
		trace_writer_close(a->w);
		ring_free(a);
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
	trace_async_flush(a);
	/* Records lost at the very end: a block (empty) says so. The writer
	 * is draining and nothing else comes: wait for room. */
	while (a->lost_pending && !trace_async_next(a, a->enc.last_ns))
		sched_yield();
	trace_async_flush(a);
	/* Pairs with the acquire in writer_main(). */
	wave_store_release(&a->stop, 1);
	atomic_store(&a->sleeping, 0u);
	futex_wake(&a->sleeping);
	pthread_join(a->thr, NULL);
	if (a->lost)
		wave_warn("trace %s: %llu records lost: the writer thread fell behind",
			  a->w->o.path, (unsigned long long)a->lost);
	trace_writer_close(a->w);
	ring_free(a);
	free(a);
}
