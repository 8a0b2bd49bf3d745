/* SPDX-License-Identifier: MIT */
/*
 * The far store: where a chunk's bytes live while it is in the far tier.
 * An interface (put, get, drop, used, capacity) so that another store (a
 * memory server over a libwave channel) can stand in for the in-memory
 * one: keys are chunk ids, values whole chunks, and a full store answers
 * -ENOSPC (backpressure: the demotion aborts, nothing is lost). Every op
 * may be called from any thread.
 */
#ifndef WAVE_MEM_STORE_H
#define WAVE_MEM_STORE_H

#include <stddef.h>
#include <stdint.h>

struct mem_store;

struct mem_store_ops {
	/* Keeps a copy of @len bytes under @key (absent). Return: 0,
	 * -ENOSPC (full), -EEXIST, -ENOMEM. */
	int (*put)(struct mem_store *s, uint64_t key, const void *buf, size_t len);
	/* Copies @key's @len bytes into @buf; the entry stays. Return: 0,
	 * -ENOENT, -EIO (the stored bytes do not decode to @len). */
	int (*get)(struct mem_store *s, uint64_t key, void *buf, size_t len);
	/* As get, sparing the copy where it can: *@out is @buf (decoded
	 * there), the store's own bytes (valid until @key is dropped), or NULL
	 * for a chunk of zeros. Async-signal-safe for the in-memory store
	 * with the lz4 codec or none (no allocation). */
	int (*peek)(struct mem_store *s, uint64_t key, void *buf, size_t len, const void **out);
	/* Forgets @key (async-signal-safe: nothing is freed here). Return: 0
	 * or -ENOENT. */
	int (*drop)(struct mem_store *s, uint64_t key);
	/* Bytes held now (what counts against the capacity). */
	uint64_t (*used)(struct mem_store *s);
	void (*destroy)(struct mem_store *s);
};

struct mem_store {
	const struct mem_store_ops *ops;
	uint64_t capacity; /* 0: no limit */
};

/* The in-memory store, compressing with @codec (enum wave_mem_codec):
 * NULL on -ENOMEM. An all-zero chunk costs no bytes whatever the codec;
 * one the codec cannot shrink is kept as it is, and after
 * MEM_STORE_RAW_RUN of those in a row the codec tries only one chunk in
 * MEM_STORE_RETRY until one shrinks (mem_store.c says why). */
#define MEM_STORE_RAW_RUN 16u
#define MEM_STORE_RETRY 16u

struct mem_store *mem_store_local(uint64_t capacity, unsigned codec);

#endif /* WAVE_MEM_STORE_H */
