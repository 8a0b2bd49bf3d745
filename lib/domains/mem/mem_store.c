/* SPDX-License-Identifier: MIT */
/*
 * The in-memory far store: each chunk compressed on its own (so one can be
 * fetched without touching another), kept in a u64map under a mutex. The
 * codec runs outside the lock: only the map is shared.
 *
 * Incompressible chunks come in runs (a table of random words, encrypted
 * or compressed values), and an attempt the codec loses costs about as
 * much as one it wins (lz4 on 4 KiB: 2 to 3 us of a demotion's 10 to 13,
 * BENCHMARKS.md). So after MEM_STORE_RAW_RUN chunks in a row that the
 * codec could not shrink, the store keeps chunks raw without trying,
 * except one in MEM_STORE_RETRY, and the first chunk that shrinks ends the
 * run. All-zero chunks count neither way. A chunk kept raw that would have
 * shrunk costs room in the store, never a byte.
 *
 * A drop frees nothing: it links the entry's data into a list (through the
 * data's first word) that the next put frees, outside the lock. A fault
 * served in a signal handler drops (wave_mem_opts.fault_signal), and
 * free() is not async-signal-safe; every data block is at least a pointer
 * long for this. The lock is held only around map operations on the
 * store's own memory, never while managed memory is touched, so a handler
 * taking it cannot interrupt its holder (mem_sigbus.c).
 */
#include <errno.h>
#include <lz4.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include <wave/mem.h>

#include "../../decision/u64map.h"
#include "mem_store.h"

enum { ENC_ZERO, ENC_RAW, ENC_LZ4, ENC_ZSTD };

struct stored {
	uint64_t key;
	void *data;
	uint32_t clen, len;
	uint32_t enc;
};

struct local_store {
	struct mem_store pub;
	unsigned codec;
	_Atomic uint32_t raw_run; /* chunks in a row kept raw (codec lost or skipped) */
	pthread_mutex_t lock;
	struct u64map map;
	uint64_t used;
	void *dropped; /* data blocks to free, linked through their first word */
};

/* zstd's contexts, one pair per thread and kept: making them costs more
 * than compressing a small chunk. */
struct zctx {
	ZSTD_CCtx *c;
	ZSTD_DCtx *d;
};

static pthread_key_t zkey;
static pthread_once_t zonce = PTHREAD_ONCE_INIT;

static void zctx_free(void *p)
{
	struct zctx *z = p;

	ZSTD_freeCCtx(z->c);
	ZSTD_freeDCtx(z->d);
	free(z);
}

static void zkey_make(void)
{
	if (pthread_key_create(&zkey, zctx_free))
		abort(); /* only when the process has no keys left at all */
}

/* This thread's contexts, or NULL (no memory). */
static struct zctx *zctx(void)
{
	struct zctx *z;

	pthread_once(&zonce, zkey_make);
	z = pthread_getspecific(zkey);
	if (z)
		return z;
	z = calloc(1, sizeof(*z));
	if (z && ((z->c = ZSTD_createCCtx()) == NULL || (z->d = ZSTD_createDCtx()) == NULL ||
		  pthread_setspecific(zkey, z))) {
		zctx_free(z);
		z = NULL;
	}
	return z;
}

static struct local_store *ls_of(struct mem_store *s)
{
	return (struct local_store *)s;
}

static bool all_zero(const void *buf, size_t len)
{
	const uint64_t *w = buf;

	for (size_t i = 0; i < len / sizeof(*w); i++)
		if (w[i])
			return false;
	return true;
}

/* Compresses @buf into a new allocation in *@out. Return: its length, 0
 * when the codec does not make it smaller (keep it raw), or -ENOMEM. */
static long encode(unsigned codec, const void *buf, size_t len, void **out)
{
	char *dst = malloc(len);
	size_t n = 0;

	if (!dst)
		return -ENOMEM;
	if (codec == WAVE_MEM_CODEC_LZ4) {
		int r = LZ4_compress_default(buf, dst, (int)len, (int)len - 1);
		n = r > 0 ? (size_t)r : 0;
	} else {
		struct zctx *z = zctx();
		size_t r = z ? ZSTD_compressCCtx(z->c, dst, len - 1, buf, len, 1) : 0;

		n = !z || ZSTD_isError(r) ? 0 : r;
	}
	if (n == 0) {
		free(dst);
		return 0;
	}
	/* At least a pointer long: a drop links it by its first word. */
	*out = realloc(dst, n < sizeof(void *) ? sizeof(void *) : n) ?: dst;
	return (long)n;
}

/* Is the codec worth a try? Not within a run of MEM_STORE_RAW_RUN chunks
 * it could not shrink, but for one in MEM_STORE_RETRY (skipped chunks
 * count in the run). */
static bool try_codec(struct local_store *ls)
{
	uint32_t run = atomic_load(&ls->raw_run);

	return ls->codec != WAVE_MEM_CODEC_NONE &&
	       (run < MEM_STORE_RAW_RUN || run % MEM_STORE_RETRY == 0);
}

/* Frees the data blocks dropped so far (a list taken under the lock). */
static void free_dropped(void *d)
{
	while (d) {
		void *next = *(void **)d;

		free(d);
		d = next;
	}
}

static int ls_put(struct mem_store *s, uint64_t key, const void *buf, size_t len)
{
	struct local_store *ls = ls_of(s);
	struct stored v = { .key = key, .len = (uint32_t)len, .enc = ENC_ZERO };
	struct stored *e;
	void *dropped;
	long n = 0;
	int ret = 0;

	if (!all_zero(buf, len)) {
		n = try_codec(ls) ? encode(ls->codec, buf, len, &v.data) : 0;
		if (n < 0)
			return (int)n;
		if (n)
			atomic_store(&ls->raw_run, 0);
		else
			atomic_fetch_add(&ls->raw_run, 1);
		v.enc = n ? (ls->codec == WAVE_MEM_CODEC_LZ4 ? ENC_LZ4 : ENC_ZSTD) : ENC_RAW;
		v.clen = n ? (uint32_t)n : (uint32_t)len;
		if (!n) {
			v.data = malloc(len);
			if (!v.data)
				return -ENOMEM;
			memcpy(v.data, buf, len);
		}
	}
	pthread_mutex_lock(&ls->lock);
	if (u64map_find(&ls->map, key))
		ret = -EEXIST;
	else if (s->capacity && ls->used + v.clen > s->capacity)
		ret = -ENOSPC;
	else if (!(e = u64map_insert(&ls->map, key)))
		ret = -ENOMEM;
	else {
		*e = v;
		ls->used += v.clen;
	}
	dropped = ls->dropped;
	ls->dropped = NULL;
	pthread_mutex_unlock(&ls->lock);
	if (ret)
		free(v.data);
	free_dropped(dropped);
	return ret;
}

static int decode(const struct stored *v, void *buf, size_t len)
{
	switch (v->enc) {
	case ENC_ZERO:
		memset(buf, 0, len);
		return 0;
	case ENC_RAW:
		memcpy(buf, v->data, len);
		return 0;
	case ENC_LZ4:
		return LZ4_decompress_safe(v->data, buf, (int)v->clen, (int)len) == (int)len ? 0
											: -EIO;
	default: {
		struct zctx *z = zctx();
		size_t r;

		if (!z)
			return -ENOMEM;
		r = ZSTD_decompressDCtx(z->d, buf, len, v->data, v->clen);
		return !ZSTD_isError(r) && r == len ? 0 : -EIO;
	}
	}
}

/* The entry is copied out under the lock and decoded outside it: its data
 * cannot go meanwhile, since only the chunk's owner (holding the chunk's
 * BUSY bit) gets or drops it. A raw chunk is not copied: *@out is its
 * data; a zero chunk's is NULL. */
static int ls_peek(struct mem_store *s, uint64_t key, void *buf, size_t len, const void **out)
{
	struct local_store *ls = ls_of(s);
	struct stored *e, v;

	pthread_mutex_lock(&ls->lock);
	e = u64map_find(&ls->map, key);
	if (e)
		v = *e;
	pthread_mutex_unlock(&ls->lock);
	if (!e)
		return -ENOENT;
	if (v.len != len)
		return -EIO;
	*out = v.enc == ENC_ZERO ? NULL : v.enc == ENC_RAW ? v.data : buf;
	return *out == buf ? decode(&v, buf, len) : 0;
}

static int ls_get(struct mem_store *s, uint64_t key, void *buf, size_t len)
{
	const void *src;
	int ret = ls_peek(s, key, buf, len, &src);

	if (!ret && src != buf) {
		if (src)
			memcpy(buf, src, len);
		else
			memset(buf, 0, len);
	}
	return ret;
}

static int ls_drop(struct mem_store *s, uint64_t key)
{
	struct local_store *ls = ls_of(s);
	struct stored *e;

	pthread_mutex_lock(&ls->lock);
	e = u64map_find(&ls->map, key);
	if (e) {
		if (e->data) {
			*(void **)e->data = ls->dropped;
			ls->dropped = e->data;
		}
		ls->used -= e->clen;
		u64map_remove(&ls->map, e);
	}
	pthread_mutex_unlock(&ls->lock);
	return e ? 0 : -ENOENT;
}

static uint64_t ls_used(struct mem_store *s)
{
	struct local_store *ls = ls_of(s);
	uint64_t used;

	pthread_mutex_lock(&ls->lock);
	used = ls->used;
	pthread_mutex_unlock(&ls->lock);
	return used;
}

static void free_entry(void *e, void *arg)
{
	(void)arg;
	free(((struct stored *)e)->data);
}

static void ls_destroy(struct mem_store *s)
{
	struct local_store *ls = ls_of(s);

	u64map_each(&ls->map, free_entry, NULL);
	u64map_fini(&ls->map);
	free_dropped(ls->dropped);
	pthread_mutex_destroy(&ls->lock);
	free(ls);
}

static const struct mem_store_ops local_ops = {
	.put = ls_put,
	.get = ls_get,
	.peek = ls_peek,
	.drop = ls_drop,
	.used = ls_used,
	.destroy = ls_destroy,
};

struct mem_store *mem_store_local(uint64_t capacity, unsigned codec)
{
	struct local_store *ls = calloc(1, sizeof(*ls));

	if (!ls)
		return NULL;
	if (u64map_init(&ls->map, sizeof(struct stored)) < 0) {
		free(ls);
		return NULL;
	}
	pthread_mutex_init(&ls->lock, NULL);
	ls->pub.ops = &local_ops;
	ls->pub.capacity = capacity;
	ls->codec = codec;
	return &ls->pub;
}
