/* SPDX-License-Identifier: MIT */
/*
 * The mem domain's insides: writes racing a demotion, made to land in the
 * very windows where they could be lost (the demotion's test hook), and an
 * unregistration landing in one; relief passes of the fault thread while
 * faulting threads bring chunks back (fault_signal); the far store with
 * each codec and its backpressure; NUMA moves and their errors on this
 * machine.
 */
#include <check.h>
#include <errno.h>
#include <numa.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "check_run.h"
#include "domains/mem/mem_impl.h"
#include "domains/mem/mem_store.h"
#include "mem_util.h"

/* ---- a write inside the demotion's window ------------------------------- */

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	volatile uint64_t *word; /* what the writer writes, when set */
	bool written;
} win = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, false };

static void *window_writer(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&win.lock);
	while (!win.word)
		pthread_cond_wait(&win.cond, &win.lock);
	pthread_mutex_unlock(&win.lock);
	*win.word = 0xabcdef; /* waits (a fault) until the demotion is over */
	pthread_mutex_lock(&win.lock);
	win.written = true;
	pthread_cond_broadcast(&win.cond);
	pthread_mutex_unlock(&win.lock);
	return NULL;
}

/* The hook. Phase 0, after the demotion's first copy: the chunk is still
 * writable, and a write made now must survive (the second copy sees it).
 * Phase 1, before the frames are released: start a write from another
 * thread and give it 200 ms to land. A correct demotion makes it wait, so
 * it does not land; a broken one lets it land in the frames about to be
 * released, and it is lost. */
static void window(void *addr, size_t len, int phase)
{
	struct timespec ts;

	(void)len;
	if (phase == 0) {
		((volatile uint64_t *)addr)[200] = 0x5eed;
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += 200000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&win.lock);
	win.word = (volatile uint64_t *)addr + 100;
	pthread_cond_broadcast(&win.cond);
	while (!win.written && pthread_cond_timedwait(&win.cond, &win.lock, &ts) == 0)
		;
	pthread_mutex_unlock(&win.lock);
}

static void write_in_window(bool managed)
{
	struct wave_mem *m = mem_far_new(0, 0, 0);
	struct wave_mem_region_opts ro;
	size_t len = 4 * 65536;
	uint64_t *p;
	pthread_t t;
	uint32_t id;

	wave_mem_region_opts_init(&ro);
	if (managed) {
		ck_assert_int_eq(wave_mem_region_alloc(m, len, &ro, (void **)&p, &id), 0);
	} else {
		p = anon_map(len);
		ck_assert_int_eq(wave_mem_region_register(m, p, len, &ro, &id), 0);
	}
	fill_pattern(p, len, 1);
	ck_assert_int_eq(pthread_create(&t, NULL, window_writer, NULL), 0);
	mem_test_demote_window = window;
	ck_assert_int_eq(migrate_now(m, wave_mem_chunk_id(id, 0), 1), WAVE_COMMITTED);
	mem_test_demote_window = NULL;
	pthread_join(t, NULL);
	ck_assert_uint_eq(p[100], 0xabcdef);
	ck_assert_uint_eq(p[200], 0x5eed);
	p[100] = pattern(100 + 1);
	p[200] = pattern(200 + 1);
	ck_assert_int_eq(check_pattern(p, len, 1), -1);
	wave_mem_destroy(m);
	if (!managed)
		munmap(p, len);
}

START_TEST(t_window_anon)
{
	write_in_window(false);
}
END_TEST

START_TEST(t_window_managed)
{
	write_in_window(true);
}
END_TEST

/* ---- unregistering in the middle of a demotion ------------------------------- */

static struct {
	struct wave_mem *m;
	struct mem_region *r;
	uint32_t id;
	pthread_t t;
	int ret;
} gone;

static void *unregister_thread(void *arg)
{
	(void)arg;
	gone.ret = wave_mem_region_unregister(gone.m, gone.id);
	return NULL;
}

/* The hook, at phase 1 (the chunk's bytes in the store, writes stopped,
 * the frames not yet released): the region is unregistered from another
 * thread, which marks it dying and then waits for the demotion. */
static void unregister_in_window(void *addr, size_t len, int phase)
{
	(void)addr, (void)len;
	if (phase != 1)
		return;
	ck_assert_int_eq(pthread_create(&gone.t, NULL, unregister_thread, NULL), 0);
	while (!atomic_load(&gone.r->dying))
		sched_yield();
}

/* A region unregistered while a migration of it is in flight: the
 * migration aborts as gone, nothing stays in the store, every byte is
 * where it was, and the unregistration completes. */
START_TEST(t_unregister_mid_demotion)
{
	struct wave_mem *m = mem_far_new(0, 0, 0);
	struct wave_mem_region_opts ro;
	struct wave_mem_stats st;
	size_t len = 4 * 65536;
	char *p = anon_map(len);

	wave_mem_region_opts_init(&ro);
	ck_assert_int_eq(wave_mem_region_register(m, p, len, &ro, &gone.id), 0);
	fill_pattern(p, len, 3);
	gone.m = m;
	pthread_rwlock_rdlock(&m->rlock);
	gone.r = mem_region_id(m, gone.id);
	pthread_rwlock_unlock(&m->rlock);
	mem_test_demote_window = unregister_in_window;
	ck_assert_int_eq(migrate_now(m, wave_mem_chunk_id(gone.id, 1), 1), WAVE_ABORT_GONE);
	mem_test_demote_window = NULL;
	pthread_join(gone.t, NULL);
	ck_assert_int_eq(gone.ret, 0);
	ck_assert_int_eq(wave_mem_stats(m, &st), 0);
	ck_assert_uint_eq(st.aborted[WAVE_ABORT_GONE], 1);
	ck_assert_uint_eq(st.far_stored, 0);
	ck_assert_uint_eq(st.tier_used[0] + st.tier_used[1], 0);
	ck_assert_int_eq(check_pattern(p, len, 3), -1);
	p[65536 + 8] = 1; /* writable, not left protected */
	wave_mem_destroy(m);
	munmap(p, len);
}
END_TEST

/* ---- a relief pass while faulting threads bring chunks back ---------------- */

#define RP_CS (64u * KIB)
#define RP_CHUNKS 64u /* of the region */
#define RP_FAST 8u    /* chunks the fast tier holds */
#define RP_TOUCHES 40u /* chunks brought back from inside relief passes */

/* With fault_signal, a thread faults a far chunk back in its own handler
 * while the fault thread demotes. Here every demotion of a relief pass
 * waits (the demotion's hook, on the fault thread) until a helper thread
 * has faulted one more far chunk back, so the tier never gets within its
 * capacity while the helper has chunks to touch: a pass that ran until it
 * did would demote RP_TOUCHES chunks and more, and the fault thread would
 * do nothing else meanwhile (the agent heard nothing: the hang of
 * check_mem_agentd_signal under TSan). Each pass must stop after
 * MEM_SIG_RELIEF_PASS demotions. Deterministic: the hook and the helper
 * take turns. */
static struct {
	struct wave_mem *m;
	char *p;
	uint32_t far[RP_CHUNKS]; /* the chunks far before the first pass */
	unsigned n_far;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned asked, done; /* touches the hook asked for, the helper made */
	bool stop;
	uint64_t pass;     /* m->relief_passes at the last demotion seen */
	unsigned run, most; /* demotions in this pass, in the longest */
} rp = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static void *relief_toucher(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&rp.lock);
	for (;;) {
		while (!rp.stop && rp.done == rp.asked)
			pthread_cond_wait(&rp.cond, &rp.lock);
		if (rp.stop)
			break;
		pthread_mutex_unlock(&rp.lock);
		/* A far chunk no pass has picked (it was far before): the
		 * handler brings it back, the tier goes over again. */
		(void)*(volatile char *)(rp.p + (size_t)rp.far[rp.done + 1] * RP_CS);
		pthread_mutex_lock(&rp.lock);
		rp.done++;
		pthread_cond_broadcast(&rp.cond);
	}
	pthread_mutex_unlock(&rp.lock);
	return NULL;
}

/* The hook, on the fault thread, once a victim's bytes are in the store:
 * counts the demotion in its pass, then has one more chunk brought back. */
static void relief_in_window(void *addr, size_t len, int phase)
{
	uint64_t pass = atomic_load(&rp.m->relief_passes);

	(void)addr, (void)len;
	if (phase != 1)
		return;
	pthread_mutex_lock(&rp.lock);
	rp.run = pass == rp.pass ? rp.run + 1 : 1;
	rp.pass = pass;
	if (rp.run > rp.most)
		rp.most = rp.run;
	if (rp.asked < RP_TOUCHES) {
		rp.asked++;
		pthread_cond_broadcast(&rp.cond);
		while (rp.done != rp.asked)
			pthread_cond_wait(&rp.cond, &rp.lock);
	}
	pthread_mutex_unlock(&rp.lock);
}

START_TEST(t_relief_pass_bounded)
{
	struct wave_mem_region_opts ro;
	struct wave_mem_opts o;
	struct wave_mem_stats st;
	struct wave_error err;
	size_t len = (size_t)RP_CHUNKS * RP_CS;
	uint64_t passes;
	pthread_t t;
	uint32_t id;

	mem_far_opts(&o, RP_FAST * RP_CS, 0);
	o.fault_signal = 1;
	o.min_resident_ns = 0;
	ck_assert_msg(wave_mem_create(&o, &rp.m, &err) == 0, "wave_mem_create: %s", err.text);
	rp.p = anon_map(len);
	wave_mem_region_opts_init(&ro);
	ro.chunk_size = RP_CS;
	ck_assert_int_eq(wave_mem_region_register(rp.m, rp.p, len, &ro, &id), 0);
	fill_pattern(rp.p, len, 7);
	/* On this thread, before any handler runs: the tier within capacity. */
	ck_assert_int_eq(wave_mem_relieve(rp.m), RP_CHUNKS - RP_FAST);
	for (uint32_t i = 0; i < RP_CHUNKS; i++)
		if (chunk_info(rp.m, wave_mem_chunk_id(id, i)).tier == 1)
			rp.far[rp.n_far++] = i;
	ck_assert_uint_eq(rp.n_far, RP_CHUNKS - RP_FAST);
	ck_assert_uint_gt(rp.n_far, RP_TOUCHES);
	ck_assert_int_eq(pthread_create(&t, NULL, relief_toucher, NULL), 0);
	mem_test_demote_window = relief_in_window;
	/* One far chunk back from here: the tier goes over, the fault
	 * thread relieves it, the hook turns each demotion into a fault. */
	(void)*(volatile char *)(rp.p + (size_t)rp.far[0] * RP_CS);
	pthread_mutex_lock(&rp.lock);
	while (rp.done < RP_TOUCHES)
		pthread_cond_wait(&rp.cond, &rp.lock);
	pthread_mutex_unlock(&rp.lock);
	/* Then the passes catch up, and the tier is within capacity again. */
	do {
		sched_yield();
		ck_assert_int_eq(wave_mem_stats(rp.m, &st), 0);
	} while (st.tier_used[0] > (uint64_t)RP_FAST * RP_CS);
	pthread_mutex_lock(&rp.lock);
	rp.stop = true;
	pthread_cond_broadcast(&rp.cond);
	pthread_mutex_unlock(&rp.lock);
	pthread_join(t, NULL);
	passes = atomic_load(&rp.m->relief_passes);
	ck_assert_uint_eq(st.tier_used[0] + st.tier_used[1], (uint64_t)len);
	ck_assert_int_eq(check_pattern(rp.p, len, 7), -1);
	wave_mem_destroy(rp.m); /* joins the fault thread, the hook's caller */
	mem_test_demote_window = NULL;
	printf("relief passes: %llu, the longest %u demotions (at most %u)\n",
	       (unsigned long long)passes, rp.most, MEM_SIG_RELIEF_PASS);
	/* No pass ran for as long as chunks came back, and none past its bound. */
	ck_assert_uint_ge(rp.most, 1);
	ck_assert_uint_lt(rp.most, RP_TOUCHES);
	ck_assert_uint_le(rp.most, MEM_SIG_RELIEF_PASS);
	munmap(rp.p, len);
}
END_TEST

/* ---- the store ------------------------------------------------------------- */

/* Pages as a runtime has them: zeros, text, random bytes. */
static void page_of(unsigned kind, unsigned char *buf, size_t len)
{
	static const char words[] = "the quick brown fox jumps over a lazy dog; key=value, ";
	uint64_t x = 0x9e3779b97f4a7c15ull;

	for (size_t k = 0; k < len; k++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		buf[k] = kind == 0 ? 0 : kind == 1 ? (unsigned char)words[(k * 7 + k / 61) % 54]
						   : (unsigned char)x;
	}
}

START_TEST(t_store_codecs)
{
	size_t len = 65536;
	unsigned char *in = malloc(len), *out = malloc(len);

	for (unsigned codec = 0; codec < WAVE_MEM_CODEC_COUNT; codec++) {
		struct mem_store *s = mem_store_local(0, codec);

		ck_assert_ptr_nonnull(s);
		for (unsigned kind = 0; kind < 3; kind++) {
			uint64_t before = s->ops->used(s);

			page_of(kind, in, len);
			ck_assert_int_eq(s->ops->put(s, kind, in, len), 0);
			ck_assert_int_eq(s->ops->put(s, kind, in, len), -EEXIST);
			memset(out, 0x55, len);
			ck_assert_int_eq(s->ops->get(s, kind, out, len), 0);
			ck_assert_int_eq(memcmp(in, out, len), 0);
			ck_assert_int_eq(s->ops->get(s, kind, out, len / 2), -EIO);
			if (kind == 0) /* zeros cost nothing */
				ck_assert_uint_eq(s->ops->used(s), before);
			else if (kind == 1 && codec) /* text compresses */
				ck_assert_uint_lt(s->ops->used(s) - before, len / 2);
			else if (kind == 2) /* random bytes are kept as they are */
				ck_assert_uint_eq(s->ops->used(s) - before, len);
		}
		ck_assert_int_eq(s->ops->get(s, 9, out, len), -ENOENT);
		ck_assert_int_eq(s->ops->drop(s, 2), 0);
		ck_assert_int_eq(s->ops->drop(s, 2), -ENOENT);
		s->ops->destroy(s);
	}
	free(in);
	free(out);
}
END_TEST

START_TEST(t_store_full)
{
	size_t len = 4096;
	unsigned char buf[4096];
	struct mem_store *s = mem_store_local(3 * len, WAVE_MEM_CODEC_LZ4);

	page_of(2, buf, len);
	for (uint64_t k = 1; k <= 3; k++)
		ck_assert_int_eq(s->ops->put(s, k, buf, len), 0);
	ck_assert_int_eq(s->ops->put(s, 4, buf, len), -ENOSPC);
	page_of(0, buf, len);
	ck_assert_int_eq(s->ops->put(s, 4, buf, len), 0); /* zeros fit anywhere */
	page_of(2, buf, len);
	ck_assert_int_eq(s->ops->drop(s, 1), 0);
	ck_assert_int_eq(s->ops->put(s, 5, buf, len), 0);
	ck_assert_uint_eq(s->ops->used(s), 3 * len);
	s->ops->destroy(s);
}
END_TEST

/* A run of chunks the codec cannot shrink stops its attempts (a 4 KiB
 * text chunk put then is kept raw) except one in MEM_STORE_RETRY, which
 * ends the run as soon as a chunk shrinks; every byte comes back. */
START_TEST(t_store_raw_run)
{
	size_t len = 4096;
	unsigned char rnd[4096], text[4096], out[4096];
	struct mem_store *s = mem_store_local(0, WAVE_MEM_CODEC_LZ4);
	uint64_t key = 0, before;
	unsigned raw = 0;

	page_of(2, rnd, len);
	page_of(1, text, len);
	for (unsigned k = 0; k <= MEM_STORE_RAW_RUN; k++)
		ck_assert_int_eq(s->ops->put(s, key++, rnd, len), 0);
	ck_assert_uint_eq(s->ops->used(s), key * len);
	/* Within the run: text too is kept raw, until the retry finds it
	 * shrinks (at most MEM_STORE_RETRY chunks later). */
	do {
		before = s->ops->used(s);
		ck_assert_int_eq(s->ops->put(s, key++, text, len), 0);
	} while (s->ops->used(s) - before == len && ++raw <= MEM_STORE_RETRY);
	ck_assert_uint_ge(raw, 1);
	ck_assert_uint_lt(raw, MEM_STORE_RETRY);
	/* The run is over: the next text chunk is compressed at once. */
	before = s->ops->used(s);
	ck_assert_int_eq(s->ops->put(s, key++, text, len), 0);
	ck_assert_uint_lt(s->ops->used(s) - before, len / 2);
	for (uint64_t k = 0; k < key; k++) {
		ck_assert_int_eq(s->ops->get(s, k, out, len), 0);
		ck_assert_int_eq(memcmp(out, k <= MEM_STORE_RAW_RUN ? rnd : text, len), 0);
	}
	s->ops->destroy(s);
}
END_TEST

/* peek spares the copy: a raw chunk is the store's own bytes, a zero
 * chunk NULL, a compressed one decoded into the buffer. A drop frees
 * nothing (a fault served in a signal handler drops): the dropped bytes
 * stay readable until the next put (under ASan, a read of them after a
 * drop that freed would fail). */
START_TEST(t_store_peek)
{
	size_t len = 4096;
	unsigned char rnd[4096], text[4096], zero[4096] = { 0 }, buf[4096];
	struct mem_store *s = mem_store_local(0, WAVE_MEM_CODEC_LZ4);
	const void *src = buf;

	page_of(2, rnd, len);
	page_of(1, text, len);
	ck_assert_int_eq(s->ops->put(s, 1, rnd, len), 0);
	ck_assert_int_eq(s->ops->put(s, 2, text, len), 0);
	ck_assert_int_eq(s->ops->put(s, 3, zero, len), 0);
	ck_assert_int_eq(s->ops->peek(s, 1, buf, len, &src), 0);
	ck_assert(src != buf);
	ck_assert_int_eq(memcmp(src, rnd, len), 0);
	ck_assert_int_eq(s->ops->peek(s, 2, buf, len, &src), 0);
	ck_assert(src == buf);
	ck_assert_int_eq(memcmp(buf, text, len), 0);
	ck_assert_int_eq(s->ops->peek(s, 3, buf, len, &src), 0);
	ck_assert_ptr_null(src);
	ck_assert_int_eq(s->ops->peek(s, 4, buf, len, &src), -ENOENT);
	ck_assert_int_eq(s->ops->peek(s, 1, buf, len / 2, &src), -EIO);
	ck_assert_int_eq(s->ops->peek(s, 1, buf, len, &src), 0);
	ck_assert_int_eq(s->ops->drop(s, 1), 0);
	/* Its first word now links it to the next block dropped. */
	ck_assert_int_eq(memcmp((const unsigned char *)src + 8, rnd + 8, len - 8), 0);
	ck_assert_int_eq(s->ops->put(s, 1, text, len), 0); /* frees it */
	s->ops->destroy(s);
}
END_TEST

/* ---- NUMA ------------------------------------------------------------------- */

/* On this machine's node, a move is carried out (and a move to where a
 * page is already is no error); to a node that does not exist, the
 * kernel's error comes back. */
START_TEST(t_numa_moves)
{
	size_t len = 16 * 4096;
	char *p;
	int ret;

	if (numa_available() < 0) {
		printf("NUMA moves: this kernel has no NUMA support; skipped\n");
		return;
	}
	p = anon_map(len);
	memset(p, 1, len);
	ck_assert_int_eq(mem_numa_move(p, len, 0), 0);
	ck_assert_int_eq(mem_numa_node_of(p), 0);
	ck_assert_int_eq(mem_numa_node_of(p + len - 1), 0);
	ret = mem_numa_move(p, len, numa_max_node() + 1);
	printf("move to node %d: %d (%s)\n", numa_max_node() + 1, ret, wave_strerror(ret));
	ck_assert_int_lt(ret, 0);
	ck_assert_int_eq(mem_numa_node_of(p), 0);
	munmap(p, len);
	/* A page not present has nothing to move. */
	p = anon_map(len);
	ck_assert_int_eq(mem_numa_node_of(p), -ENOENT);
	ck_assert_int_eq(mem_numa_move(p, len, 0), 0);
	munmap(p, len);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("mem_internal");
	TCase *tc = tcase_create("internal");

	tcase_add_test(tc, t_window_anon);
	tcase_add_test(tc, t_window_managed);
	tcase_add_test(tc, t_unregister_mid_demotion);
	tcase_add_test(tc, t_relief_pass_bounded);
	tcase_add_test(tc, t_store_codecs);
	tcase_add_test(tc, t_store_full);
	tcase_add_test(tc, t_store_raw_run);
	tcase_add_test(tc, t_store_peek);
	tcase_add_test(tc, t_numa_moves);
	suite_add_tcase(s, tc);
	return wave_check_run(s);
}
