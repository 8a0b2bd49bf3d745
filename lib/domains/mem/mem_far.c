/* SPDX-License-Identifier: MIT */
/*
 * The far tier: a chunk's bytes in the far store instead of frames, and a
 * userfaultfd that catches the next touch.
 *
 * The userfaultfd is opened with UFFD_USER_MODE_ONLY (granted without
 * privilege whatever vm.unprivileged_userfaultfd says). A registered
 * (private anonymous) region is registered for MISSING and WP faults, a
 * managed (memfd) region for MISSING and MINOR faults.
 *
 * One rule makes every protocol below safe: every change to a chunk's
 * pages or state happens under its BUSY bit (mem_chunk_lock()), taken by
 * whoever changes it (a demotion, a promotion, the fault thread serving a
 * fault), and a fault on a BUSY chunk is left waiting: the fault thread
 * does not answer it, and the holder wakes the chunk's range
 * (UFFDIO_WAKE) after letting the bit go. The woken thread retries its
 * access and, if it still cannot proceed, faults again and is served then.
 * The holder's wake comes after its release of the bit and the fault
 * thread reads the bit after reading the fault, which the kernel queued
 * before the thread slept, so no fault is left sleeping (a wake finds
 * every thread queued on the range before it).
 *
 * Demotion of a registered (anonymous) chunk, so that a racing write is
 * never lost, and so that writers do not wait while the codec runs:
 *   1. lock (BUSY);
 *   2. copy the bytes out with process_vm_readv() and put them in the store
 *      (which compresses them), the chunk still writable: this copy may
 *      be torn by a racing write, and is only a candidate. A page never
 *      touched is not faulted in (the kernel answers EFAULT to a
 *      kernel-mode access under UFFD_USER_MODE_ONLY instead of waiting for
 *      us) and reads as the zeros it holds, so no copy ever waits for the
 *      fault thread, which may be the one demoting. Store full: unlock,
 *      nothing changed;
 *   3. UFFDIO_WRITEPROTECT the chunk: from now on a write faults (WP) and
 *      waits, so the bytes cannot change; reads go on;
 *   4. copy the bytes again and compare: the same, the candidate is the
 *      chunk (whatever happened between, these are its bytes now); not the
 *      same, a write raced step 2: replace the candidate with this copy
 *      (the codec runs inside the window only then);
 *   5. the region going away (or a failure): drop the copy, undo the
 *      protection (waking the writers), unlock, nothing changed;
 *   6. mark the chunk FAR (still BUSY), then MADV_DONTNEED its frames:
 *      from here a touch faults MISSING and waits for the unlock;
 *   7. unlock (FAR, sequence number bumped), wake the range: the waiting
 *      threads fault again and the fault thread fetches the bytes back.
 * A managed (memfd) chunk needs no write protection: its copies are
 * pread()s of the memfd, step 3 is MADV_DONTNEED of the mapping (the bytes
 * stay in the memfd, and any touch now faults MINOR and waits), and step 6
 * fallocate(PUNCH_HOLE). From 3 to 6 no thread can write the chunk, since
 * no page of it is mapped.
 *
 * Promotion (by a fault, or a decision) holds BUSY while it fetches the
 * bytes and maps them (UFFDIO_COPY; for a memfd, pwrite() then
 * UFFDIO_CONTINUE) - onto the home tier's node, by the region's memory
 * policy (mem_numa.c), then moved to the target tier's if another -,
 * drops them from the store only once they are mapped, and wakes the
 * range after unlocking. A chunk the store kept raw is mapped from the
 * store's copy, and a chunk of zeros as zero pages: no copy of either.
 *
 * With wave_mem_opts.fault_signal nobody sleeps in the userfaultfd (the
 * kernel sends SIGBUS instead, mem_sigbus.c), so there is nobody to wake.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../../core/core.h"
#include "mem_impl.h"
#include "mem_store.h"

#define PAGE 4096u
/* A refault: back before an eighth of the home tier's capacity left. */
#define REFAULT_SHARE 8u

void (*mem_test_demote_window)(void *addr, size_t len, int phase);

/* ---- userfaultfd calls --------------------------------------------------- */

static int uffd_open(void)
{
	return (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
}

void mem_far_wake(struct wave_mem *m, uintptr_t addr, size_t len)
{
	struct uffdio_range rg = { .start = addr, .len = len };

	if (m->fault_signal)
		return;
	if (ioctl(m->uffd, UFFDIO_WAKE, &rg) < 0)
		wave_warn("mem: UFFDIO_WAKE at %#lx failed: %s", (unsigned long)addr,
			  wave_strerror(errno));
}

static int protect(struct wave_mem *m, uintptr_t addr, size_t len, bool on)
{
	struct uffdio_writeprotect wp = {
		.range = { .start = addr, .len = len },
		.mode = on ? UFFDIO_WRITEPROTECT_MODE_WP : 0, /* off: wakes the writers */
	};

	return ioctl(m->uffd, UFFDIO_WRITEPROTECT, &wp) < 0 ? -errno : 0;
}

/* One UFFDIO_COPY, _ZEROPAGE or _CONTINUE over [@dst, @dst+@len) without
 * waking anyone (the caller wakes once, after unlocking). Return: 0 or
 * -errno, with *@done the bytes it mapped. */
static int fill_once(struct wave_mem *m, unsigned long op, uintptr_t dst, const char *src,
		     size_t len, long *done)
{
	int r;

	if (op == UFFDIO_COPY) {
		struct uffdio_copy c = { .dst = dst, .src = (uintptr_t)src, .len = len,
					 .mode = UFFDIO_COPY_MODE_DONTWAKE };
		r = ioctl(m->uffd, op, &c);
		*done = (long)c.copy;
	} else if (op == UFFDIO_ZEROPAGE) {
		struct uffdio_zeropage z = { .range = { dst, len },
					     .mode = UFFDIO_ZEROPAGE_MODE_DONTWAKE };
		r = ioctl(m->uffd, op, &z);
		*done = (long)z.zeropage;
	} else {
		struct uffdio_continue c = { .range = { dst, len },
					     .mode = UFFDIO_CONTINUE_MODE_DONTWAKE };
		r = ioctl(m->uffd, op, &c);
		*done = (long)c.mapped;
	}
	return r < 0 ? -errno : 0;
}

/* Maps [@dst, @dst+@len) with @op, skipping pages mapped already (EEXIST:
 * a page a thread touched first is kept, it is the newer one). */
static int fill(struct wave_mem *m, unsigned long op, uintptr_t dst, const char *src, size_t len)
{
	size_t off = 0;
	unsigned stuck = 0;

	while (off < len) {
		long done = 0;
		int r = fill_once(m, op, dst + off, src ? src + off : NULL, len - off, &done);

		if (!r)
			return 0;
		if (done > 0) /* a partial fill (-EAGAIN): go on from there */
			off += (size_t)done;
		else if (r == -EEXIST || done == -EEXIST)
			off += PAGE;
		else if (r != -EAGAIN || ++stuck > 1000) /* the mm kept changing */
			return r;
	}
	return 0;
}

/* ---- copying a chunk out and in -------------------------------------------- */

/* The chunk's bytes via process_vm_readv(), which never waits for a fault:
 * a page not present (never touched) reads as zeros. */
static int read_anon(pid_t pid, uintptr_t addr, char *buf, size_t len)
{
	size_t off = 0;

	while (off < len) {
		struct iovec lo = { buf + off, len - off };
		struct iovec re = { (void *)(addr + off), len - off };
		ssize_t n = process_vm_readv(pid, &lo, 1, &re, 1, 0);

		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno != EFAULT)
			return -errno;
		memset(buf + off, 0, PAGE);
		off += PAGE;
	}
	return 0;
}

static int pio(bool wr, int fd, char *buf, size_t len, off_t at)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = wr ? pwrite(fd, buf + off, len - off, at + (off_t)off)
			       : pread(fd, buf + off, len - off, at + (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		off += (size_t)n;
	}
	return 0;
}

static off_t chunk_off(const struct mem_region *r, uint64_t i)
{
	return (off_t)(i << r->chunk_shift);
}

/* Maps every page of a resident memfd chunk (after a first touch, the
 * sampler or an aborted demotion dropped its mapping): holes get zero
 * pages in the memfd, then every page not mapped yet is. */
static int map_memfd_chunk(struct wave_mem *m, struct mem_region *r, uint64_t i)
{
	if (fallocate(r->memfd, 0, chunk_off(r, i), (off_t)r->chunk_size) < 0)
		return -errno;
	return fill(m, UFFDIO_CONTINUE, mem_chunk_addr(r, i), NULL, r->chunk_size);
}

/* ---- demotion and promotion ------------------------------------------------ */

/* The locked chunk goes to @tier, still locked (a demotion's commit), and
 * loses what the clock hand knew of it (a resident chunk's: its return
 * decides them again). */
static void set_tier_locked(struct mem_region *r, uint64_t i, uint32_t tier)
{
	uint64_t s = atomic_load(&r->state[i]);

	while (!atomic_compare_exchange_weak(&r->state[i], &s,
					     (s & ~(CS_TIER_MASK | CS_LIVES | CS_SEEN)) | tier))
		;
}

static void move_used(struct wave_mem *m, uint32_t from, uint32_t to, uint64_t bytes)
{
	atomic_fetch_sub(&m->tier_used[from], bytes);
	atomic_fetch_add(&m->tier_used[to], bytes);
}

/* Gives up a demotion after step 2: the chunk stays where it was. */
static enum wave_result demote_abort(struct wave_mem *m, struct mem_region *r, uint64_t i,
				     uint32_t tier, enum wave_result why)
{
	uintptr_t a = mem_chunk_addr(r, i);

	if (!r->managed && protect(m, a, r->chunk_size, false) < 0)
		wave_err("mem: cannot unprotect chunk at %#lx: %s", (unsigned long)a,
			 wave_strerror(errno));
	mem_chunk_unlock(r, i, tier, false);
	mem_far_wake(m, a, r->chunk_size);
	return why;
}

/* The chunk's bytes into @buf: a pread() of the memfd, or for anonymous
 * memory process_vm_readv(), neither of which waits for a fault. */
static int chunk_read(struct wave_mem *m, struct mem_region *r, uint64_t i, char *buf)
{
	if (r->managed)
		return pio(false, r->memfd, buf, r->chunk_size, chunk_off(r, i));
	return read_anon(m->pid, mem_chunk_addr(r, i), buf, r->chunk_size);
}

/* Steps 2 to 4 of a demotion: the chunk's bytes in the store, and no
 * thread able to write them. Return: 0, or an error with nothing in the
 * store (but writes maybe stopped: demote_abort() lets them go). */
static int copy_out(struct wave_mem *m, struct mem_region *r, uint64_t i, char *cand,
		    char *now)
{
	struct mem_store *st = m->store;
	uint64_t key = wave_mem_chunk_id(r->id, i);
	uintptr_t a = mem_chunk_addr(r, i);
	size_t cs = r->chunk_size;
	int ret = chunk_read(m, r, i, cand);

	if (!ret)
		ret = st->ops->put(st, key, cand, cs);
	if (ret)
		return ret;
	if (mem_test_demote_window)
		mem_test_demote_window((void *)a, cs, 0);
	if (r->managed)
		ret = madvise((void *)a, cs, MADV_DONTNEED) < 0 ? -errno : 0;
	else
		ret = protect(m, a, cs, true);
	if (!ret)
		ret = chunk_read(m, r, i, now);
	if (!ret && memcmp(cand, now, cs)) {
		st->ops->drop(st, key);
		return st->ops->put(st, key, now, cs);
	}
	if (ret)
		st->ops->drop(st, key);
	return ret;
}

/* Step 6's release of the chunk's frames (a memfd's: its pages). */
static void release(struct mem_region *r, uint64_t i)
{
	int ret;

	if (r->managed)
		ret = fallocate(r->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				chunk_off(r, i), (off_t)r->chunk_size);
	else
		ret = madvise((void *)mem_chunk_addr(r, i), r->chunk_size, MADV_DONTNEED);
	if (ret < 0) /* the frames stay: memory not given back, no byte lost */
		wave_err("mem: cannot release chunk %#llx: %s",
			 (unsigned long long)wave_mem_chunk_id(r->id, i), wave_strerror(errno));
}

/* ---- refaults ------------------------------------------------------------ */

/* The far tier's departure count after @bytes more left: a far chunk's
 * stamp (never 0, which is "never"). */
static uint32_t depart(struct wave_mem *m, uint64_t bytes)
{
	uint32_t pages = (uint32_t)(bytes >> 12);
	uint32_t d = atomic_fetch_add(&m->departed, pages) + pages;

	return d ? d : 1;
}

/* Is far chunk @i's return by a fault a refault: did fewer pages leave
 * for the far tier since it did than REFAULT_SHARE of its home tier's
 * capacity? Linux's refault distance (mm/workingset.c), which tells the
 * hot chunks the clock hand demoted for want of seen accesses (the
 * sampler and the application's reports see a few of them) from the cold
 * ones: in GUPS at 16 MiB fast, a hot chunk comes back after 100 to 400
 * departures, a cold one after 15,000 on average (BENCHMARKS.md). */
static bool refaulted(struct wave_mem *m, const struct mem_region *r, uint64_t i)
{
	uint32_t left = atomic_load(&r->stamp[i]);
	uint64_t cap = m->tiers[r->home_tier].capacity >> 12;

	return left && (uint32_t)(atomic_load(&m->departed) - left) < cap / REFAULT_SHARE;
}

/* Step 7. */
static void demote_done(struct wave_mem *m, struct mem_region *r, uint64_t i, uint32_t from)
{
	move_used(m, from, (uint32_t)m->far_tier, r->chunk_size);
	mem_chunk_unlock(r, i, (uint32_t)m->far_tier, true);
	mem_far_wake(m, mem_chunk_addr(r, i), r->chunk_size);
}

enum wave_result mem_far_demote(struct wave_mem *m, struct mem_region *r, uint64_t i,
				struct mem_far_batch *b)
{
	uintptr_t a = mem_chunk_addr(r, i);
	size_t cs = r->chunk_size;
	uint32_t from = cs_tier(atomic_load(&r->state[i]));
	uint64_t key = wave_mem_chunk_id(r->id, i);
	char *buf = malloc(2 * cs);
	int ret = buf ? copy_out(m, r, i, buf, buf + cs) : -ENOMEM;

	free(buf);
	if (ret) {
		if (ret != -ENOSPC)
			wave_warn("mem: demotion of chunk %#llx failed: %s",
				  (unsigned long long)key, wave_strerror(-ret));
		return demote_abort(m, r, i, from, ret == -ENOSPC || ret == -ENOMEM
							   ? WAVE_ABORT_BUSY
							   : WAVE_ABORT_INVALID);
	}
	if (mem_test_demote_window)
		mem_test_demote_window((void *)a, cs, 1);
	if (atomic_load(&r->dying)) {
		m->store->ops->drop(m->store, key);
		return demote_abort(m, r, i, from, WAVE_ABORT_GONE);
	}
	atomic_store(&r->stamp[i], depart(m, cs));
	set_tier_locked(r, i, (uint32_t)m->far_tier);
	if (b && !r->managed && b->n < MEM_FAR_BATCH) {
		b->r[b->n] = r;
		b->i[b->n] = i;
		b->from[b->n++] = from;
		b->bytes += cs;
		return WAVE_COMMITTED;
	}
	release(r, i);
	demote_done(m, r, i, from);
	return WAVE_COMMITTED;
}

/* One process_madvise() for the batch: the kernel releases the ranges
 * under one TLB shootdown, where a madvise() each interrupts every other
 * CPU running this process once per chunk (BENCHMARKS.md: a demoter on
 * one CPU slowed the application on the other). A kernel without it
 * (before 6.13 for MADV_DONTNEED) or that stops part way: one by one. */
void mem_far_batch_end(struct wave_mem *m, struct mem_far_batch *b)
{
	struct iovec iov[MEM_FAR_BATCH];
	ssize_t n = -1;
	size_t done;

	for (unsigned k = 0; k < b->n; k++)
		iov[k] = (struct iovec){ (void *)mem_chunk_addr(b->r[k], b->i[k]),
					 b->r[k]->chunk_size };
	if (b->n > 1 && m->pidfd >= 0)
		n = syscall(SYS_process_madvise, m->pidfd, iov, (size_t)b->n, MADV_DONTNEED, 0);
	done = n > 0 ? (size_t)n : 0;
	for (unsigned k = 0; k < b->n; k++) {
		if (done >= iov[k].iov_len)
			done -= iov[k].iov_len;
		else {
			done = 0;
			release(b->r[k], b->i[k]);
		}
		demote_done(m, b->r[k], b->i[k], b->from[k]);
	}
	b->n = 0;
	b->bytes = 0;
}

/* Maps far chunk @i's bytes from the store (not dropped yet), decoding
 * into @buf if it must. Return: 0 or -errno (nothing mapped for sure). */
static int fetch_in(struct wave_mem *m, struct mem_region *r, uint64_t i, void *buf)
{
	uintptr_t a = mem_chunk_addr(r, i);
	size_t cs = r->chunk_size;
	const void *src;
	int ret = m->store->ops->peek(m->store, wave_mem_chunk_id(r->id, i), buf, cs, &src);

	if (ret)
		return ret;
	if (!r->managed)
		return src ? fill(m, UFFDIO_COPY, a, src, cs)
			   : fill(m, UFFDIO_ZEROPAGE, a, NULL, cs);
	if (!src) /* the demotion punched the hole: zeros already */
		return map_memfd_chunk(m, r, i);
	ret = pio(true, r->memfd, (char *)(uintptr_t)src, cs, chunk_off(r, i));
	return ret ? ret : fill(m, UFFDIO_CONTINUE, a, NULL, cs);
}

/* A promotion's commit, after fetch_in(): the store forgets the chunk, it
 * is counted in @tier, stamped and unlocked there. */
static void promoted(struct wave_mem *m, struct mem_region *r, uint64_t i, uint32_t tier)
{
	m->store->ops->drop(m->store, wave_mem_chunk_id(r->id, i));
	move_used(m, (uint32_t)m->far_tier, tier, r->chunk_size);
	atomic_store(&r->stamp[i], mem_arrival_stamp(m));
	mem_chunk_unlock(r, i, tier, true);
}

enum wave_result mem_far_promote(struct wave_mem *m, struct mem_region *r, uint64_t i,
				 uint32_t tier, void *buf)
{
	uintptr_t a = mem_chunk_addr(r, i);
	size_t cs = r->chunk_size;
	uint64_t key = wave_mem_chunk_id(r->id, i);
	int ret = fetch_in(m, r, i, buf);

	if (ret) {
		/* The bytes are still in the store: the chunk stays far. */
		wave_err("mem: cannot bring chunk %#llx back: %s", (unsigned long long)key,
			 wave_strerror(-ret));
		mem_chunk_unlock(r, i, (uint32_t)m->far_tier, false);
		mem_far_wake(m, a, cs);
		return WAVE_ABORT_INVALID;
	}
	/* Fetched onto the region's home node (its policy, mem_numa.c); a
	 * promotion into another tier moves on to that one's. */
	if (tier != r->home_tier && m->tiers[tier].node != WAVE_MEM_NODE_ANY &&
	    (ret = mem_numa_move((void *)a, cs, m->tiers[tier].node)) < 0)
		wave_warn("mem: chunk %#llx back in tier %u, but not on its node %d: %s",
			  (unsigned long long)key, tier, m->tiers[tier].node, wave_strerror(-ret));
	promoted(m, r, i, tier);
	mem_far_wake(m, a, cs);
	return WAVE_COMMITTED;
}

void mem_far_restore(struct wave_mem *m, struct mem_region *r)
{
	void *buf = NULL;

	if (posix_memalign(&buf, PAGE, r->chunk_size)) {
		wave_err("mem: no memory to bring region %u back", r->id);
		return;
	}
	for (uint64_t i = 0; i < r->n_chunks; i++) {
		uint64_t old;

		if (cs_tier(atomic_load(&r->state[i])) != (uint32_t)m->far_tier ||
		    !mem_chunk_lock(r, i, &old))
			continue;
		mem_far_promote(m, r, i, r->home_tier, buf);
	}
	free(buf);
}

/* ---- the fault thread ---------------------------------------------------- */

/* Serves a fault at @addr; rlock held. Return: true when a chunk came back
 * from the far tier (the tier it came into may be over its capacity). */
static bool serve(struct wave_mem *m, uintptr_t addr, uint64_t flags)
{
	struct mem_region *r = mem_region_at(m, addr);
	uint64_t i, old;
	int ret = 0;

	if (!r) { /* unregistered meanwhile: the unregistration woke it */
		mem_far_wake(m, addr & ~(uintptr_t)(PAGE - 1), PAGE);
		return false;
	}
	i = (addr - r->base) >> r->chunk_shift;
	if (!mem_chunk_lock(r, i, &old))
		return false; /* the holder wakes it */
	if (cs_tier(old) == (uint32_t)m->far_tier) {
		bool back;

		/* A fault is an access the agent hears of as FAULT; a refault
		 * gives the chunk its lives against the clock hand. */
		atomic_fetch_or(&r->state[i],
				CS_ACCESSED | (refaulted(m, r, i) ? CS_LIVES : 0));
		atomic_fetch_add(&m->far_faults, 1);
		back = mem_far_promote(m, r, i, r->home_tier, m->fetch_buf) == WAVE_COMMITTED;
		if (back)
			mem_link_chunk(m, r, i, true);
		else
			atomic_fetch_and(&r->state[i], ~CS_LIVES); /* still far */
		return back;
	}
	if (flags & UFFD_PAGEFAULT_FLAG_WP) { /* a protection left over: lift it */
		ret = protect(m, mem_chunk_addr(r, i), r->chunk_size, false);
	} else if (flags & UFFD_PAGEFAULT_FLAG_MINOR) {
		if (old & CS_SAMPLED) {
			mem_access(m, r, i);
			atomic_fetch_add(&m->sample_hits, 1);
		}
		ret = map_memfd_chunk(m, r, i);
	} else {
		atomic_fetch_add(&m->zero_fills, 1);
		ret = r->managed ? map_memfd_chunk(m, r, i)
				 : fill(m, UFFDIO_ZEROPAGE, mem_chunk_addr(r, i), NULL,
					r->chunk_size);
	}
	if (ret)
		wave_err("mem: cannot serve a fault at %#lx: %s", (unsigned long)addr,
			 wave_strerror(-ret));
	mem_chunk_unlock(r, i, cs_tier(old), false);
	mem_far_wake(m, mem_chunk_addr(r, i), r->chunk_size);
	return false;
}

/* A fault of a chunk not far, anonymous: a first touch (the page is
 * missing: zero pages for the chunk, as serve() maps them) or a write
 * protection left over (the page is there: lifted). */
static int self_serve_anon(struct wave_mem *m, struct mem_region *r, uint64_t i, uintptr_t addr)
{
	uintptr_t a = mem_chunk_addr(r, i);
	long done = 0;
	int ret = fill_once(m, UFFDIO_ZEROPAGE, addr & ~(uintptr_t)(PAGE - 1), NULL, PAGE, &done);

	if (ret == -EEXIST || done == -EEXIST)
		return protect(m, a, r->chunk_size, false);
	atomic_fetch_add(&m->zero_fills, 1);
	return fill(m, UFFDIO_ZEROPAGE, a, NULL, r->chunk_size);
}

int mem_far_self_serve(struct wave_mem *m, struct mem_region *r, uintptr_t addr, void *buf)
{
	uint64_t i = (addr - r->base) >> r->chunk_shift, old;
	int ret, flags = 0;

	if (!mem_chunk_lock(r, i, &old))
		return -EBUSY;
	if (cs_tier(old) == (uint32_t)m->far_tier) {
		atomic_fetch_or(&r->state[i],
				CS_ACCESSED | (refaulted(m, r, i) ? CS_LIVES : 0));
		atomic_fetch_add(&m->far_faults, 1);
		ret = fetch_in(m, r, i, buf);
		if (!ret) {
			promoted(m, r, i, r->home_tier);
			return MEM_SELF_BACK;
		}
		atomic_fetch_and(&r->state[i], ~CS_LIVES); /* still far */
	} else if (r->managed) {
		/* An armed chunk's touch, or else a first one (or, rarely, a
		 * touch after an aborted demotion dropped the mapping: counted
		 * as a first touch, the signal cannot tell). */
		if (old & CS_SAMPLED) {
			atomic_fetch_or(&r->state[i], CS_ACCESSED);
			atomic_fetch_add(&m->sample_hits, 1);
			flags = MEM_SELF_SAMPLED;
		} else {
			atomic_fetch_add(&m->zero_fills, 1);
		}
		ret = map_memfd_chunk(m, r, i);
	} else {
		ret = self_serve_anon(m, r, i, addr);
	}
	mem_chunk_unlock(r, i, cs_tier(old), false);
	return ret ? ret : flags;
}

/* Serves what one read() gives, and reads again only when that filled the
 * buffer: otherwise poll() (level-triggered) says whether more came, and
 * a fault served alone costs no read() that finds nothing. */
static void serve_all(struct wave_mem *m)
{
	struct uffd_msg msg[16];
	ssize_t n;

	do {
		bool back = false;

		n = read(m->uffd, msg, sizeof(msg));
		if (n <= 0)
			return;

		pthread_rwlock_rdlock(&m->rlock);
		for (size_t k = 0; k < (size_t)n / sizeof(msg[0]); k++)
			if (msg[k].event == UFFD_EVENT_PAGEFAULT)
				back |= serve(m, (uintptr_t)msg[k].arg.pagefault.address,
					      msg[k].arg.pagefault.flags);
		/* Room for the chunks that came back: the demoter's reserve
		 * (kicked once half of it is gone); the fault thread demotes
		 * itself only for a tier over its capacity, before the next
		 * fault (every time without a reserve). */
		if (back) {
			atomic_fetch_add(&m->fault_demotions,
					 (uint64_t)mem_relieve_locked(m, 0, INT_MAX));
			mem_demoter_kick(m);
		}
		pthread_rwlock_unlock(&m->rlock);
	} while (n == (ssize_t)sizeof(msg));
}

static void *fault_thread(void *arg)
{
	struct wave_mem *m = arg;
	uint64_t next = wave_now_ns() + m->sample_period_ns;

	for (;;) {
		struct pollfd p[3] = { { m->uffd, POLLIN, 0 }, { m->stop_fd, POLLIN, 0 },
				       { m->kick_fd, POLLIN, 0 } };
		int timeout = -1;

		if (m->sample_chunks) {
			uint64_t now = wave_now_ns();
			timeout = now >= next ? 0 : (int)((next - now + 999999) / 1000000);
		}
		/* The handlers' events reach the agent within a millisecond. */
		if (m->fault_signal && m->agent_uri && (timeout < 0 || timeout > 1))
			timeout = 1;
		if (poll(p, 3, timeout) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (p[0].revents)
			serve_all(m);
		if (p[2].revents || (m->fault_signal && m->agent_uri))
			mem_sig_drain(m);
		if (m->sample_chunks && wave_now_ns() >= next) {
			mem_sample_tick(m);
			next += m->sample_period_ns;
		}
	}
	return NULL;
}

/* ---- opening, registering -------------------------------------------------- */

/* The features the kernel has (asked on a throwaway userfaultfd: the API
 * handshake may be made once per descriptor). */
static int uffd_features(uint64_t *features, struct wave_error *err)
{
	struct uffdio_api api = { .api = UFFD_API };
	int fd = uffd_open();

	if (fd < 0) {
		int e = errno;
		return wave_error_set(err, -e, "userfaultfd", 0, 0,
				      "userfaultfd(UFFD_USER_MODE_ONLY) failed: %s (the far tier "
				      "and the sampler need it)", wave_strerror(e));
	}
	if (ioctl(fd, UFFDIO_API, &api) < 0) {
		int e = errno;
		close(fd);
		return wave_error_set(err, -e, "userfaultfd", 0, 0, "UFFDIO_API failed: %s",
				      wave_strerror(e));
	}
	close(fd);
	*features = api.features;
	return 0;
}

int mem_far_open(struct wave_mem *m, struct wave_error *err)
{
	const uint64_t want = UFFD_FEATURE_MINOR_SHMEM |
			      (m->fault_signal ? UFFD_FEATURE_SIGBUS : 0);
	struct uffdio_api api = { .api = UFFD_API, .features = want };
	uint64_t have = 0;
	int ret = uffd_features(&have, err);

	if (ret)
		return ret;
	if ((have & want) != want)
		return wave_error_set(err, -ENOSYS, "userfaultfd", 0, 0,
				      "the kernel's userfaultfd lacks minor faults on shared "
				      "memory (UFFD_FEATURE_MINOR_SHMEM, Linux 5.14) or, for "
				      "fault_signal, UFFD_FEATURE_SIGBUS (Linux 4.14)");
	if (posix_memalign(&m->fetch_buf, PAGE, WAVE_MEM_CHUNK_MAX))
		return -ENOMEM;
	m->uffd = uffd_open();
	if (m->uffd < 0 || ioctl(m->uffd, UFFDIO_API, &api) < 0) {
		int e = errno;
		return wave_error_set(err, -e, "userfaultfd", 0, 0, "userfaultfd: %s",
				      wave_strerror(e));
	}
	m->pid = getpid();
	m->pidfd = (int)syscall(SYS_pidfd_open, m->pid, 0); /* -1: no batched release */
	m->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (m->stop_fd < 0)
		return -errno;
	if (m->fault_signal) {
		m->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (m->kick_fd < 0)
			return -errno;
		if ((ret = mem_sig_open(m, err)) < 0)
			return ret;
	}
	ret = pthread_create(&m->thread, NULL, fault_thread, m);
	if (ret)
		return -ret;
	m->thread_on = true;
	return 0;
}

void mem_far_close(struct wave_mem *m)
{
	uint64_t one = 1;

	if (m->thread_on) {
		if (write(m->stop_fd, &one, sizeof(one)) < 0)
			wave_err("mem: cannot stop the fault thread");
		pthread_join(m->thread, NULL);
		m->thread_on = false;
	}
	mem_sig_close(m); /* after the fault thread, which drains its ring */
	if (m->stop_fd >= 0)
		close(m->stop_fd);
	if (m->uffd >= 0)
		close(m->uffd);
	if (m->pidfd >= 0)
		close(m->pidfd);
	if (m->kick_fd >= 0)
		close(m->kick_fd);
	m->stop_fd = m->uffd = m->pidfd = m->kick_fd = -1;
	free(m->fetch_buf);
	m->fetch_buf = NULL;
}

int mem_far_register(struct wave_mem *m, struct mem_region *r)
{
	struct uffdio_register reg = {
		.range = { .start = r->base, .len = r->len },
		.mode = UFFDIO_REGISTER_MODE_MISSING |
			(r->managed ? UFFDIO_REGISTER_MODE_MINOR : UFFDIO_REGISTER_MODE_WP),
	};

	if (ioctl(m->uffd, UFFDIO_REGISTER, &reg) < 0) {
		int e = errno;
		wave_warn("mem: UFFDIO_REGISTER of %zu bytes at %#lx failed: %s", r->len,
			  (unsigned long)r->base, wave_strerror(e));
		return -e;
	}
	r->far = true;
	return 0;
}

void mem_far_unregister(struct wave_mem *m, struct mem_region *r)
{
	struct uffdio_range rg = { .start = r->base, .len = r->len };

	if (r->far && ioctl(m->uffd, UFFDIO_UNREGISTER, &rg) < 0)
		wave_err("mem: UFFDIO_UNREGISTER of region %u failed: %s", r->id,
			 wave_strerror(errno));
	r->far = false;
}
