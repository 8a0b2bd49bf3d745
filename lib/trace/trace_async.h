/* SPDX-License-Identifier: MIT */
/*
 * Recording a trace off the recording thread (docs/trace.md): the
 * producer (the agent loop) copies each record raw, the message as it is
 * with its kind and time in the line's seq and tstamp, into a
 * single-producer single-consumer ring; a writer thread of the trace's own
 * drains the ring into a trace_writer (trace.h), which encodes, checksums,
 * writes, caps and rotates. A record costs the producer one cache line
 * stored without reading it (wave_store_line_nt()) and, every @pub_every
 * records, a store fence and one release store.
 *
 * A full ring never blocks the producer: a record that does not fit is
 * lost and counted, and the count goes into the ring ahead of the next
 * record that fits, so that the trace says where and how many
 * (trace_writer_lost(): the header of the block after the gap).
 */
#ifndef WAVE_TRACE_TRACE_ASYNC_H
#define WAVE_TRACE_TRACE_ASYNC_H

#include <pthread.h>
#include <stdatomic.h>

#include "../core/atomic.h"
#include "trace.h"

/* Records between two publications of the producer's position, at most
 * (a sixteenth of a smaller ring). A publication is a store into a line the
 * writer polls: taking that line back costs the producer about as much as
 * a hundred records (BENCHMARKS.md), hence so many records to a store. */
#define TRACE_ASYNC_PUBLISH 256u
/* A ring's size bounds, in records (a power of two). */
#define TRACE_ASYNC_RING_MIN 64u
#define TRACE_ASYNC_RING_MAX (1u << 24)
/* The kind of the ring's own record: records lost before the next one. */
#define TRACE_ASYNC_LOST TRACE_KIND_COUNT

struct trace_async_opts {
	struct trace_writer_opts w;
	unsigned ring;       /* records, a power of two in [RING_MIN, RING_MAX] */
	int cpu;             /* the writer thread's CPU, or -1: its creator's CPUs */
	uint16_t setup_type; /* events of this type become the header's setup (0: none) */
};

struct trace_async {
	/* The producer's. */
	struct wave_msg *slot;
	uint64_t mask;
	uint64_t head, published, tail_seen;
	uint64_t pub_every; /* records between publications (TRACE_ASYNC_PUBLISH) */
	uint64_t lost_pending; /* lost since the last record that fit */
	uint64_t lost;         /* in all */
	uint64_t wakes;        /* of a sleeping writer, by trace_async_publish() */
	/* Shared, each on a line of its own. Released by the producer:
	 * slots before head_pub are written; by the writer: slots before
	 * tail are free again. */
	_Alignas(64) _Atomic uint64_t head_pub;
	_Alignas(64) _Atomic uint64_t tail;
	_Alignas(64) _Atomic uint32_t sleeping; /* the writer waits on it (futex) */
	_Atomic int stop;
	/* The writer thread's, copies of the ring's included: reading the
	 * producer's line, which it writes at every record, would move that
	 * line between the two CPUs at every record. */
	_Alignas(64) struct trace_writer *w;
	const struct wave_msg *wslot;
	uint64_t wmask;
	uint16_t setup_type;
	pthread_t thr;
};

/* Opens the trace (as trace_writer_open(), on the caller's thread, so
 * that its errors come back here) and starts its writer thread. 0, or
 * -errno with @err filled. */
int trace_async_open(const struct trace_async_opts *o, const struct trace_meta *meta,
		     struct trace_async **out, struct wave_error *err);
/* Everything put is written, then the trace is closed; NULL is ignored. */
void trace_async_close(struct trace_async *a);
/* Makes the records put so far visible to the writer (done every
 * @pub_every records; call it when the producer goes idle). */
void trace_async_publish(struct trace_async *a);

/* Appends a record (as trace_put()); never blocks, never fails: a full
 * ring loses the record and counts it. */
static inline void trace_async_put(struct trace_async *a, enum trace_kind kind, uint64_t now,
				   const struct wave_msg *m)
{
	struct wave_msg r;

	/* Room for two: the record, and before it the count of any lost. */
	if (a->head - a->tail_seen >= a->mask) {
		/* Pairs with the release in the writer after it read them. */
		a->tail_seen = wave_load_acquire(&a->tail);
		if (a->head - a->tail_seen >= a->mask) {
			a->lost_pending++;
			a->lost++;
			return;
		}
	}
	if (a->lost_pending) {
		memset(&r, 0, sizeof(r));
		r.seq = TRACE_ASYNC_LOST;
		r.tstamp = now;
		r.payload.u64[0] = a->lost_pending;
		wave_store_line_nt(&a->slot[a->head++ & a->mask], &r);
		a->lost_pending = 0;
	}
	r = *m;
	r.seq = kind;
	r.tstamp = now;
	/* The writer read this slot a lap ago: not taking its line back
	 * cut what recording adds to this thread from about 65 to 22 ns an
	 * event (BENCHMARKS.md, record and replay, eighth pass). */
	wave_store_line_nt(&a->slot[a->head++ & a->mask], &r);
	if (a->head - a->published >= a->pub_every)
		trace_async_publish(a);
}

#endif /* WAVE_TRACE_TRACE_ASYNC_H */
