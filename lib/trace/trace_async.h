/* SPDX-License-Identifier: MIT */
/*
 * Recording a trace off the recording thread (docs/trace.md): the
 * producer (the agent loop) encodes each record itself (trace_enc_put(),
 * some 9 bytes a record) into a block of its own, which stays in its
 * cache; once the block is full (or a checkpoint finds it old) the
 * producer copies it into a ring of blocks with non-temporal stores and
 * hands it on. A writer thread of the trace's own gives each block its
 * header and checksum and writes it, capping and rotating the files
 * (trace_writer_block()). The producer touches a line the writer reads or
 * writes only once a block.
 *
 * A full ring never blocks the producer: a record that finds no block
 * free is lost and counted, and the count goes in the header of the next
 * block, so that the trace says where and how many.
 */
#ifndef WAVE_TRACE_TRACE_ASYNC_H
#define WAVE_TRACE_TRACE_ASYNC_H

#include <pthread.h>
#include <stdatomic.h>

#include "../core/atomic.h"
#include "trace.h"

/* A ring's size bounds, in records of the most bytes (64: a message's
 * line; encoded, most take far fewer), a power of two. */
#define TRACE_ASYNC_RING_MIN 64u
#define TRACE_ASYNC_RING_MAX (1u << 24)
/* A block the producer fills is sealed at a checkpoint this old. */
#define TRACE_ASYNC_CHECKPOINT_NS 1000000000ull

struct trace_async_opts {
	struct trace_writer_opts w;
	unsigned ring;       /* records, a power of two in [RING_MIN, RING_MAX] */
	int cpu;             /* the writer thread's CPU, or -1: its creator's CPUs */
	uint16_t setup_type; /* events of this type become the header's setup (0: none) */
};

/* One block of the ring, its records and what its header says. */
struct trace_async_block {
	struct wave_msg setup; /* the last setup event in it, if @has_setup */
	uint8_t *buf;          /* TRACE_BLK_HDR bytes of room, then the records */
	uint32_t len, n;
	uint64_t base_ns;
	uint64_t lost; /* records lost just before it */
	bool has_setup;
};

struct trace_async {
	/* The producer's. */
	struct trace_enc enc; /* into @scratch (cap 0: no ring block to copy it to) */
	uint8_t *scratch;      /* the block being filled */
	struct trace_async_block *blk;
	uint64_t nblk;
	uint32_t blk_bytes;    /* a block's payload capacity */
	uint16_t setup_type;
	uint64_t head;         /* the block being filled, or the next */
	uint64_t tail_seen;
	uint64_t begun_ns;     /* when the block being filled was begun */
	uint64_t lost_pending; /* lost since the last block began */
	uint64_t lost;         /* in all */
	uint64_t wakes;        /* of a sleeping writer, by a seal */
	/* Shared, each on a line of its own. Released by the producer:
	 * blocks before head_pub are sealed; by the writer: blocks before
	 * tail are written and free again. */
	_Alignas(64) _Atomic uint64_t head_pub;
	_Alignas(64) _Atomic uint64_t tail;
	_Alignas(64) _Atomic uint32_t sleeping; /* the writer waits on it (futex) */
	_Atomic int stop;
	/* The writer thread's. */
	_Alignas(64) struct trace_writer *w;
	pthread_t thr;
};

/* Opens the trace (as trace_writer_open(), on the caller's thread, so
 * that its errors come back here) and starts its writer thread. 0, or
 * -errno with @err filled. */
int trace_async_open(const struct trace_async_opts *o, const struct trace_meta *meta,
		     struct trace_async **out, struct wave_error *err);
/* Everything put is written, then the trace is closed; NULL is ignored. */
void trace_async_close(struct trace_async *a);
/* Hands the block being filled to the writer now, however few records it
 * holds (nothing: nothing happens). */
void trace_async_flush(struct trace_async *a);
/* As trace_async_flush() if the block being filled was begun
 * TRACE_ASYNC_CHECKPOINT_NS before @now or earlier: call it now and then
 * (the agent does on its timers), so that a trace falls at most about
 * that far behind; NULL is ignored. */
void trace_async_checkpoint(struct trace_async *a, uint64_t now);

/* Out of line: seals the block being filled, if any, and begins the next
 * at @now. Return: false if none is free (the writer is behind). */
bool trace_async_next(struct trace_async *a, uint64_t now);
void trace_async_setup(struct trace_async *a, const struct wave_msg *m);

/* Appends a record (as trace_put()); never blocks, never fails: a full
 * ring loses the record and counts it. */
static inline void trace_async_put(struct trace_async *a, enum trace_kind kind, uint64_t now,
				   const struct wave_msg *m)
{
	if (a->enc.len + TRACE_REC_MAX > a->enc.cap && !trace_async_next(a, now)) {
		a->lost_pending++;
		a->lost++;
		return;
	}
	if (m->type == a->setup_type && kind == TRACE_EVENT && a->setup_type)
		trace_async_setup(a, m);
	trace_enc_put(&a->enc, kind, now, m);
}

#endif /* WAVE_TRACE_TRACE_ASYNC_H */
