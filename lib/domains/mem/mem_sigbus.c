/* SPDX-License-Identifier: MIT */
/*
 * Faults served by the faulting thread (wave_mem_opts.fault_signal): the
 * userfaultfd has UFFD_FEATURE_SIGBUS, so the kernel sends SIGBUS to the
 * thread that touched a chunk the library must serve, and this file's
 * handler serves it there (mem_far_self_serve()), sparing the round trip
 * to the fault thread (two context switches a far fault, about half of
 * one: BENCHMARKS.md).
 *
 * One handler serves every manager with the option: they are in owners[],
 * and a handler looking at slot k counts itself in inside[k], so that a
 * manager leaving (its slot emptied first) waits until no handler can
 * still use it.
 *
 * The handler's rules (include/wave/mem.h says them to the host): no
 * allocation, no free, no logging; locks only those that library code
 * holds while it touches no managed memory (the region table's read lock,
 * the store's map lock), since the interrupted thread was touching
 * managed memory and so holds none of them; a busy chunk is not waited
 * for (the access faults again). What it cannot do itself goes to the
 * fault thread: an error to log, pressure to relieve, and the agent's
 * events (mem_link_chunk() and mem_access() may grow the link's log),
 * through a ring whose room a handler reserves before it serves, so that
 * no event is dropped: with the ring full the access faults again.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../../core/core.h"
#include "mem_impl.h"

#define OWNERS 8
#define BUFS 16 /* decoding buffers: threads serving at once */
#define RING 4096u
/* Yields a far fault into a tier over its capacity gives the fault thread
 * at most, for one relief pass, before it serves anyway: a fault is never
 * refused, and never waits on another thread without a bound. */
#define RELIEF_WAITS 64
/* A relief pass of the fault thread makes MEM_SIG_RELIEF_PASS demotions
 * at most. The handlers bring chunks back while it demotes, so a pass
 * that went on until the tiers were within capacity could go on as long
 * as they fault, the fault thread passing no event to the agent meanwhile
 * (a pass of 176 demotions, 5 s under TSan, for 48 chunks over capacity:
 * check_mem_agentd_signal's hang). What is left is the next pass's, once
 * the loop has been round. */

struct sig_cell {
	_Atomic uint64_t seq;
	uint64_t chunk;
	bool fault; /* else a sampled chunk's access */
};

struct mem_sig {
	unsigned slot;
	char *bufs;                /* BUFS x WAVE_MEM_CHUNK_MAX, faulted in when used */
	_Atomic uint32_t buf_free; /* a bit per free buffer */
	_Atomic int error;         /* a handler's last error, for the fault thread */
	_Atomic bool owed;         /* a chunk came back into a tier short of room */
	/* The events' ring: many handlers push, the fault thread pops;
	 * @reserved counts cells taken or promised. */
	_Atomic uint32_t reserved;
	_Atomic uint64_t head;
	uint64_t tail;
	struct sig_cell cell[RING];
};

static struct wave_mem *_Atomic owners[OWNERS];
static _Atomic unsigned inside[OWNERS];
static pthread_mutex_t owners_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned n_owners;     /* owners_lock */
static struct sigaction prev; /* the disposition before ours (owners_lock) */

/* ---- the events' ring ---------------------------------------------------- */

/* A cell promised to this handler's event, or false (the ring is full). */
static bool ring_reserve(struct mem_sig *s)
{
	if (atomic_fetch_add(&s->reserved, 1) < RING)
		return true;
	atomic_fetch_sub(&s->reserved, 1);
	return false;
}

/* Pushes into a promised cell (so there is one: the loop only waits for a
 * popper's store of the cell's sequence number). */
static void ring_push(struct mem_sig *s, uint64_t chunk, bool fault)
{
	uint64_t pos = atomic_fetch_add(&s->head, 1);
	struct sig_cell *c = &s->cell[pos % RING];

	while (atomic_load(&c->seq) != pos)
		sched_yield();
	c->chunk = chunk;
	c->fault = fault;
	atomic_store(&c->seq, pos + 1);
}

static bool ring_pop(struct mem_sig *s, uint64_t *chunk, bool *fault)
{
	struct sig_cell *c = &s->cell[s->tail % RING];

	if (atomic_load(&c->seq) != s->tail + 1)
		return false;
	*chunk = c->chunk;
	*fault = c->fault;
	atomic_store(&c->seq, s->tail + RING);
	s->tail++;
	atomic_fetch_sub(&s->reserved, 1);
	return true;
}

/* ---- the handler --------------------------------------------------------- */

static void kick(struct wave_mem *m)
{
	uint64_t one = 1;

	if (write(m->kick_fd, &one, sizeof(one)) < 0) {
		/* The counter is full (never, at 2^64 - 2): it is kicked already. */
	}
}

static int buf_claim(struct mem_sig *s)
{
	uint32_t f = atomic_load(&s->buf_free);

	while (f && !atomic_compare_exchange_weak(&s->buf_free, &f, f & (f - 1)))
		;
	return f ? __builtin_ctz(f) : -1;
}

static bool far_chunk(struct wave_mem *m, struct mem_region *r, uintptr_t addr)
{
	uint64_t s = atomic_load(&r->state[(addr - r->base) >> r->chunk_shift]);

	return cs_tier(s) == (uint32_t)m->far_tier;
}

static bool tiers_over(struct wave_mem *m)
{
	for (uint32_t t = 0; t + 1 < m->n_tiers; t++)
		if (mem_tier_over(m, t, 0))
			return true;
	return false;
}

/* Does a fault at @addr bring a far chunk back while a tier is over its
 * capacity? Takes rlock for the lookup only. */
static bool needs_relief(struct wave_mem *m, uintptr_t addr)
{
	struct mem_region *r;
	bool far;

	pthread_rwlock_rdlock(&m->rlock);
	r = mem_region_at(m, addr);
	far = r && r->far && far_chunk(m, r, addr);
	pthread_rwlock_unlock(&m->rlock);
	return far && tiers_over(m);
}

/* Before a far chunk comes back into a tier over its capacity, the fault
 * thread relieves it (as the fault thread itself does, without the option,
 * before it serves the next fault): the faulting thread asks for a pass
 * and yields it the CPU until one ends, RELIEF_WAITS times at most. It
 * holds no lock meanwhile, so that a writer of the region table (a region
 * added or removed) is not kept waiting by faulting threads. A pass is
 * bounded (MEM_SIG_RELIEF_PASS), so the wait cannot be drawn out by other
 * threads' faults. */
static void wait_relief(struct wave_mem *m, uintptr_t addr)
{
	struct mem_sig *s = m->sig;
	uint64_t pass = atomic_load(&m->relief_passes);

	if (!needs_relief(m, addr))
		return;
	atomic_store(&s->owed, true);
	kick(m);
	for (int k = 0; k < RELIEF_WAITS && atomic_load(&m->relief_passes) == pass; k++) {
		if (!tiers_over(m))
			break;
		sched_yield();
	}
}

/* Serves the fault at @addr if it is in a region of @m: true if it is. */
static bool serve_in(struct wave_mem *m, uintptr_t addr)
{
	struct mem_sig *s = m->sig;
	struct mem_region *r;
	bool ours, retry = false, promised = false;
	int ret = 0, b = -1;

	wait_relief(m, addr);
	pthread_rwlock_rdlock(&m->rlock);
	r = mem_region_at(m, addr);
	ours = r && r->far;
	if (ours && m->link && !(promised = ring_reserve(s))) {
		kick(m);
		retry = true;
	} else if (ours && (b = buf_claim(s)) < 0) {
		retry = true;
	} else if (ours) {
		ret = mem_far_self_serve(m, r, addr, s->bufs + (size_t)b * WAVE_MEM_CHUNK_MAX);
		atomic_fetch_or(&s->buf_free, UINT32_C(1) << b);
		retry = ret == -EBUSY;
		if (ret < 0 && !retry) {
			atomic_store(&s->error, -ret);
			kick(m);
		}
		if (m->link && ret > 0)
			ring_push(s, wave_mem_chunk_id(r->id, (addr - r->base) >> r->chunk_shift),
				  ret & MEM_SELF_BACK);
		if ((ret & MEM_SELF_BACK) && (mem_tier_over(m, r->home_tier, 0) ||
					      (m->reserve && atomic_load(&m->demoter_asleep) &&
					       mem_reserve_low(m)))) {
			atomic_store(&s->owed, true);
			kick(m); /* the fault thread relieves, or wakes the demoter */
		}
	}
	if (promised && (ret <= 0 || b < 0))
		atomic_fetch_sub(&s->reserved, 1); /* no event: the promise goes */
	if (m->link && atomic_load(&s->reserved) >= RING / 2)
		kick(m);
	pthread_rwlock_unlock(&m->rlock);
	if (retry) /* let the holder (or the fault thread) on: the access faults again */
		sched_yield();
	return ours;
}

/* Is @addr readable now? A fault of a region that was being unregistered
 * is: the access is retried. */
static bool readable(uintptr_t addr)
{
	char c;
	struct iovec lo = { &c, 1 }, re = { (void *)addr, 1 };

	return process_vm_readv(getpid(), &lo, 1, &re, 1, 0) == 1;
}

/* Not ours: the previous disposition's. */
static void chain(int sig, siginfo_t *si, void *uc)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL };

	if (prev.sa_flags & SA_SIGINFO) {
		prev.sa_sigaction(sig, si, uc);
		return;
	}
	if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN) {
		prev.sa_handler(sig);
		return;
	}
	if (si->si_code <= 0 && prev.sa_handler == SIG_IGN)
		return; /* sent by someone, and ignored before us */
	/* The default: the access faults again and the process dies of it,
	 * as it would have; a SIGBUS that was sent is sent again. */
	sigaction(SIGBUS, &dfl, NULL);
	if (si->si_code <= 0)
		raise(SIGBUS);
}

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	int saved = errno;
	uintptr_t addr = (uintptr_t)si->si_addr;
	bool ours = false;

	for (unsigned k = 0; si->si_code == BUS_ADRERR && k < OWNERS && !ours; k++) {
		struct wave_mem *m;

		atomic_fetch_add(&inside[k], 1);
		m = atomic_load(&owners[k]);
		if (m)
			ours = serve_in(m, addr);
		atomic_fetch_sub(&inside[k], 1);
	}
	if (!ours && !(si->si_code == BUS_ADRERR && readable(addr)))
		chain(sig, si, uc);
	errno = saved;
}

/* ---- opening, closing, the fault thread's share ----------------------------- */

int mem_sig_open(struct wave_mem *m, struct wave_error *err)
{
	struct sigaction sa = { .sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO | SA_RESTART };
	struct mem_sig *s = calloc(1, sizeof(*s));
	unsigned k;
	int ret = 0;

	if (!s)
		return -ENOMEM;
	s->bufs = mmap(NULL, (size_t)BUFS * WAVE_MEM_CHUNK_MAX, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (s->bufs == MAP_FAILED) {
		free(s);
		return -ENOMEM;
	}
	s->buf_free = (uint32_t)((UINT64_C(1) << BUFS) - 1);
	for (uint32_t c = 0; c < RING; c++)
		atomic_init(&s->cell[c].seq, c);
	sigemptyset(&sa.sa_mask);
	pthread_mutex_lock(&owners_lock);
	for (k = 0; k < OWNERS && atomic_load(&owners[k]); k++)
		;
	if (k == OWNERS)
		ret = wave_error_set(err, -EBUSY, "mem", 0, 0,
				     "%d managers serve faults in their threads already "
				     "(fault_signal): no more", OWNERS);
	else if (n_owners == 0 && sigaction(SIGBUS, &sa, &prev) < 0)
		ret = wave_error_set(err, -errno, "mem", 0, 0,
				     "cannot install the SIGBUS handler: %s", wave_strerror(errno));
	if (!ret) {
		n_owners++;
		s->slot = k;
		m->sig = s;
		atomic_store(&owners[k], m);
	}
	pthread_mutex_unlock(&owners_lock);
	if (ret) {
		munmap(s->bufs, (size_t)BUFS * WAVE_MEM_CHUNK_MAX);
		free(s);
	}
	return ret;
}

void mem_sig_close(struct wave_mem *m)
{
	struct mem_sig *s = m->sig;
	struct sigaction cur;

	if (!s)
		return;
	pthread_mutex_lock(&owners_lock);
	atomic_store(&owners[s->slot], NULL);
	while (atomic_load(&inside[s->slot]))
		sched_yield();
	/* Put the previous disposition back, unless someone replaced ours. */
	if (--n_owners == 0 && sigaction(SIGBUS, NULL, &cur) == 0 &&
	    (cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_sigbus)
		sigaction(SIGBUS, &prev, NULL);
	pthread_mutex_unlock(&owners_lock);
	munmap(s->bufs, (size_t)BUFS * WAVE_MEM_CHUNK_MAX);
	free(s);
	m->sig = NULL;
}

/* One bounded relief pass (rlock held). A tier still over after it is
 * owed another, once the loop has been round (the link, the ring); a pass
 * that demoted nothing (every candidate busy, fresh or refused) is not
 * repeated until a handler asks again. */
static void relieve_pass(struct wave_mem *m)
{
	struct mem_sig *s = m->sig;
	int n = mem_relieve_locked(m, 0, MEM_SIG_RELIEF_PASS);

	atomic_fetch_add(&m->fault_demotions, (uint64_t)n);
	atomic_fetch_add(&m->relief_passes, 1); /* pairs with wait_relief()'s load */
	if (n > 0 && tiers_over(m)) {
		atomic_store(&s->owed, true);
		kick(m);
	}
	mem_demoter_kick(m);
}

void mem_sig_drain(struct wave_mem *m)
{
	struct mem_sig *s = m->sig;
	uint64_t v, chunk;
	bool fault;
	int e;

	if (read(m->kick_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		wave_warn("mem: cannot read the fault thread's eventfd: %s", wave_strerror(errno));
	if ((e = atomic_exchange(&s->error, 0)))
		wave_err("mem: a fault served by its thread failed (it faults again): %s",
			 wave_strerror(e));
	pthread_rwlock_rdlock(&m->rlock);
	while (ring_pop(s, &chunk, &fault)) {
		struct mem_region *r = mem_region_id(m, (uint32_t)(chunk >> 32));
		uint64_t i = chunk & 0xffffffffu;

		if (!r) /* gone meanwhile: its removal was told */
			continue;
		if (fault)
			mem_link_chunk(m, r, i, true);
		else
			mem_access(m, r, i);
	}
	if (atomic_exchange(&s->owed, false))
		relieve_pass(m);
	pthread_rwlock_unlock(&m->rlock);
}
