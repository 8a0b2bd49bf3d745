/* SPDX-License-Identifier: MIT */
/*
 * The host side of the mem domain, inside: regions, the per-chunk state
 * words, and what the files of lib/domains/mem/ call of each other.
 *
 *   mem_host.c    the manager, regions, chunk lookup, the API's checks
 *   mem_txn.c     migrations as transactions, rate limit, anti-thrash,
 *                 pressure: prestaged victims and the local CLOCK
 *   mem_far.c     the far tier: userfaultfd, the fault thread, demotion
 *                 and promotion protocols
 *   mem_sigbus.c  faults served by the faulting thread in a SIGBUS
 *                 handler (wave_mem_opts.fault_signal)
 *   mem_demote.c  the demoter: a thread that keeps a reserve of room free
 *                 under each tier's capacity, off the faults' path
 *   mem_store.c   the far store (compressing, in memory)
 *   mem_numa.c    moving a chunk between NUMA nodes
 *   mem_sample.c  the sampler, reported accesses, the DAMON check
 *   mem_link.c    the conversation with an agent (wave_mem_opts.agent_uri)
 *
 * Locking. m->rlock (a rwlock) guards the region table: every operation
 * on a chunk holds it for reading for its whole length, so a region is
 * neither freed nor unregistered under it; unregistering takes it for
 * writing. A chunk's own changes are serialised by its BUSY bit (a
 * per-chunk lock taken by compare-and-swap and never waited for: whoever
 * finds it set gives up, and the holder wakes any faulting thread when it
 * lets go). m->plock guards the rest: rate limiter, victims, clock hand.
 * The agent link's locks (mem_link.c) come after both: its log lock is a
 * leaf, taken by any thread that records a change.
 */
#ifndef WAVE_MEM_IMPL_H
#define WAVE_MEM_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <wave/mem.h>

struct mem_store;
struct mem_link;

/* A victim the agent prestaged (VICTIM): demoted to @tier under
 * pressure; @gen: the link's generation (agent) it came from. */
struct mem_avictim {
	uint64_t chunk, seq;
	uint32_t tier, gen;
};

/*
 * A chunk's state word: its tier, flags and sequence number, changed only
 * by compare-and-swap (or an atomic OR/AND of a flag), so that threads
 * reading it see a consistent triple.
 */
#define CS_TIER_MASK UINT64_C(0xf)
#define CS_BUSY (UINT64_C(1) << 4)
#define CS_ACCESSED (UINT64_C(1) << 5)
#define CS_SAMPLED (UINT64_C(1) << 6)
#define CS_REPORT (UINT64_C(1) << 7) /* accessed, not yet told to the agent */
/* Sweeps of the CLOCK's hand that an active chunk (it refaulted, or two
 * sweeps in a row found it accessed) may go unaccessed and stay
 * (mem_txn.c, clock_spare()); 0 for any other. */
#define CS_LIVES_SHIFT 8
#define CS_LIVES (UINT64_C(3) << CS_LIVES_SHIFT)
#define CS_SEEN (UINT64_C(1) << 10) /* the clock hand's last sweep found it accessed */
#define CS_SEQ_SHIFT 11
#define CS_SEQ_ONE (UINT64_C(1) << CS_SEQ_SHIFT)

/* The CLOCK's rule for a chunk word @s (not busy) its hand passes, in
 * one place for the host and the models that judge policies against it:
 * spared (true; *@n: an access costs the bit and gives a chunk that has
 * lives, or that the last sweep found accessed too, all its lives back;
 * no access costs a life), or not (false; *@n: the word less CS_SEEN,
 * this sweep found it unaccessed). */
static inline bool mem_clock_pass(uint64_t s, uint64_t *n)
{
	if (!(s & (CS_ACCESSED | CS_LIVES))) {
		*n = s & ~CS_SEEN;
		return false;
	}
	*n = !(s & CS_ACCESSED) ? (s & ~CS_SEEN) - (UINT64_C(1) << CS_LIVES_SHIFT)
	     : (s & (CS_LIVES | CS_SEEN)) ? (s & ~CS_ACCESSED) | CS_LIVES | CS_SEEN
					  : (s & ~CS_ACCESSED) | CS_SEEN;
	return true;
}

/* May the agent's prestaged victim be demoted, its chunk word being @s?
 * Not one the host saw touched (its accessed bit: since the hand last
 * passed) or spares (lives: it refaulted, or was hinted to keep): the
 * agent picked it from a view older than the host's, and the CLOCK would
 * pass it over. Its sequence number is checked apart. */
static inline bool mem_victim_untouched(uint64_t s)
{
	return !(s & (CS_ACCESSED | CS_LIVES));
}

static inline uint32_t cs_tier(uint64_t s)
{
	return (uint32_t)(s & CS_TIER_MASK);
}

static inline uint64_t cs_seq(uint64_t s)
{
	return s >> CS_SEQ_SHIFT;
}

struct mem_region {
	uint32_t id;
	bool managed;    /* made by wave_mem_region_alloc(): @memfd is ours */
	bool far;        /* registered with the userfaultfd */
	int memfd;       /* managed: the memfd behind the mapping; else -1 */
	uintptr_t base;
	size_t len;
	uint64_t chunk_size;
	unsigned chunk_shift;
	uint64_t n_chunks;
	uint32_t home_tier; /* where a far chunk faults back to */
	_Atomic bool dying; /* being unregistered: migrations abort */
	_Atomic uint64_t *state;    /* per chunk, see CS_* */
	/* Per chunk: resident, mem_arrival_stamp() of when it was promoted or
	 * faulted back (anti-thrash; 0: never); far, the far tier's departure
	 * count when it left (refaults: mem_far.c). */
	_Atomic uint32_t *stamp;
	/* Per chunk: accesses seen since the agent was last told of it
	 * (mem_access(); saturating at MEM_HITS_MAX, sent as at most 255). */
	_Atomic uint16_t *hits;
};

/* Where mem_access() stops counting a chunk's accesses: far above the 255
 * a SAMPLES entry carries, so that threads racing past the check cannot
 * wrap the counter. */
#define MEM_HITS_MAX 0xff00u

struct wave_mem {
	uint32_t n_tiers;
	int far_tier; /* its index, or -1 */
	struct wave_mem_tier tiers[WAVE_MEM_MAX_TIERS];
	uint64_t migrate_bps, min_resident_ns, t0;
	uint32_t sample_chunks;
	uint64_t sample_period_ns;

	pthread_rwlock_t rlock;
	struct mem_region **regions; /* sorted by base */
	size_t n_regions, cap_regions;
	uint32_t next_id;

	/* The far tier and the fault thread (mem_far.c). */
	int uffd;       /* -1 without */
	int pidfd;      /* this process, for process_madvise(); -1 without */
	pid_t pid;      /* this process, for process_vm_readv() (getpid() is a system call) */
	int stop_fd;    /* eventfd: the fault thread stops */
	bool thread_on;
	pthread_t thread;
	struct mem_store *store;
	void *fetch_buf; /* the fault thread's, WAVE_MEM_CHUNK_MAX bytes */
	bool fault_signal; /* faults are served by their threads (mem_sigbus.c) */
	struct mem_sig *sig; /* its state, NULL without */
	int kick_fd;         /* eventfd: a handler wants the fault thread; -1 without */
	_Atomic uint64_t relief_passes; /* the fault thread's, for the handlers that
					   wait for one (mem_sigbus.c) */
	bool agent_uri;      /* an agent was asked for: set before the threads start,
				unlike @link */
	_Atomic uint32_t departed; /* 4 KiB pages demoted to the far tier so far (wraps) */
	size_t sample_region, sample_next; /* the sampler's cursor (fault thread) */

	pthread_mutex_t plock;
	double tokens;   /* rate limiter: bytes that may move now */
	uint64_t tokens_at;
	struct wave_mem_victim *victims;
	size_t n_victims, victim_pos;
	size_t hand_region, hand_next; /* the CLOCK's hand */
	/* Bytes of each tier the agent's KEEP hints made active since the
	 * hand last went round (mem_keep()'s bound). */
	_Atomic uint64_t kept_bytes[WAVE_MEM_MAX_TIERS];
	struct mem_avictim *avictims;  /* the agent's, tried before @victims */
	size_t n_avictims;

	/* The demoter (mem_demote.c): keeps @reserve bytes free under each
	 * limited tier's capacity. */
	uint64_t reserve; /* 0: no demoter */
	int demote_cpu;
	bool demoter_on; /* read by the thread that makes and destroys @m only */
	pthread_t demoter;
	pthread_mutex_t dlock;
	pthread_cond_t dcond;
	_Atomic bool demoter_asleep, demoter_stop;

	struct mem_link *link; /* NULL: no agent */
	uint64_t agent_chunk;  /* every region's chunk size under an agent, or 0 */

	_Atomic uint64_t tier_used[WAVE_MEM_MAX_TIERS];
	_Atomic uint64_t far_faults, zero_fills, sample_armed, sample_hits;
	_Atomic uint64_t reported, reported_outside, committed, victims_used, local_demotions;
	_Atomic uint64_t fault_demotions;
	_Atomic uint64_t aborted[WAVE_RESULT_COUNT];
};

/* ---- mem_host.c ---- */
/* Milliseconds since the manager was made, and that plus one: a chunk's
 * arrival stamp (0 stays "never"; it wraps after 49 days, which at worst
 * spares one chunk from one demotion). */
uint32_t mem_now_ms(const struct wave_mem *m);
static inline uint32_t mem_arrival_stamp(const struct wave_mem *m)
{
	return mem_now_ms(m) + 1;
}
/* The region holding @addr / numbered @id, or NULL; rlock held. */
struct mem_region *mem_region_at(struct wave_mem *m, uintptr_t addr);
struct mem_region *mem_region_id(struct wave_mem *m, uint32_t id);
/* Takes chunk @i's BUSY bit: true and its state before in *@old, or false
 * when it is busy already. */
bool mem_chunk_lock(struct mem_region *r, uint64_t i, uint64_t *old);
/* Lets it go in @tier, its sequence number bumped when @bump (a change),
 * its SAMPLED flag cleared; ACCESSED is kept. */
void mem_chunk_unlock(struct mem_region *r, uint64_t i, uint32_t tier, bool bump);
static inline uintptr_t mem_chunk_addr(const struct mem_region *r, uint64_t i)
{
	return r->base + (i << r->chunk_shift);
}

/* Demotions to the far tier committed but whose frames are not released
 * yet (still BUSY, marked FAR, write-protected): released together by
 * mem_far_batch_end(), one TLB shootdown for all instead of one each. */
#define MEM_FAR_BATCH 16
struct mem_far_batch {
	unsigned n;
	uint64_t bytes; /* their chunks' bytes, still counted in their tiers */
	struct mem_region *r[MEM_FAR_BATCH];
	uint64_t i[MEM_FAR_BATCH];
	uint32_t from[MEM_FAR_BATCH];
};

/* ---- mem_txn.c ---- */
/* Migration of chunk @i of @r to @tier from state @seq: rlock held. A
 * demotion to the far tier of a registered region may be left in @batch
 * (not NULL, not full): committed, finished by mem_far_batch_end(). */
enum wave_result mem_txn(struct wave_mem *m, struct mem_region *r, uint64_t i, uint64_t seq,
			 uint32_t tier, bool rate_limited, struct mem_far_batch *batch);
/* Is tier @t limited, and less than @headroom bytes under its capacity? */
bool mem_tier_over(struct wave_mem *m, uint32_t t, uint64_t headroom);
/* Pressure relief: demotes from every NUMA tier until @headroom bytes are
 * free under its capacity, at most @max chunks; rlock held. Return: the
 * chunks demoted. */
int mem_relieve_locked(struct wave_mem *m, uint64_t headroom, int max);

/* ---- mem_far.c ---- */
int mem_far_open(struct wave_mem *m, struct wave_error *err);
void mem_far_close(struct wave_mem *m);
int mem_far_register(struct wave_mem *m, struct mem_region *r);
void mem_far_unregister(struct wave_mem *m, struct mem_region *r);
/* Chunk @i, locked (BUSY) by the caller in a NUMA tier: into the far
 * store. Return: WAVE_COMMITTED (it is FAR and unlocked, seq bumped; or,
 * with room in @batch, left there to be released and unlocked by
 * mem_far_batch_end()) or an abort (it is unlocked where it was). */
enum wave_result mem_far_demote(struct wave_mem *m, struct mem_region *r, uint64_t i,
				struct mem_far_batch *batch);
/* Releases the frames of every demotion in @b at once, then unlocks each
 * (FAR, seq bumped) and wakes its range; @b is empty after. */
void mem_far_batch_end(struct wave_mem *m, struct mem_far_batch *b);
/* Chunk @i, locked by the caller in the far tier: back into @tier. */
enum wave_result mem_far_promote(struct wave_mem *m, struct mem_region *r, uint64_t i,
				 uint32_t tier, void *buf);
/* Every far chunk of @r back (unregistering a region the caller owns). */
void mem_far_restore(struct wave_mem *m, struct mem_region *r);
/* For tests only (not exported; NULL in use): called by a demotion at
 * @phase 0 after its first copy, while writes may still change the chunk
 * (one must not be lost: the second copy sees it), and at @phase 1 after
 * its checked copy, before the frames are released (a write must wait). */
extern void (*mem_test_demote_window)(void *addr, size_t len, int phase);
/* Wakes the threads faulting in [@addr, @addr+@len). */
void mem_far_wake(struct wave_mem *m, uintptr_t addr, size_t len);

/* In a SIGBUS handler on the faulting thread (mem_sigbus.c), rlock held:
 * serves a fault at @addr of @r as the fault thread would, telling what it
 * needs from the chunk's state (the signal has no flags), without
 * logging, allocating or waking anyone; @buf: WAVE_MEM_CHUNK_MAX bytes to
 * decode into. Return: MEM_SELF_* flags, -EBUSY (the chunk is busy: the
 * access must fault again) or another error (nothing changed). */
#define MEM_SELF_BACK 1    /* a far chunk came back */
#define MEM_SELF_SAMPLED 2 /* a chunk the sampler armed was touched */
int mem_far_self_serve(struct wave_mem *m, struct mem_region *r, uintptr_t addr, void *buf);

/* ---- mem_sigbus.c ---- */
/* The handler's state for @m (m->fault_signal), and @m's place among the
 * managers it serves (the first one installs the handler). Return: 0,
 * -EBUSY (too many such managers), -ENOMEM or -errno. */
int mem_sig_open(struct wave_mem *m, struct wave_error *err);
/* @m leaves (no region of it may remain); the last one puts the previous
 * SIGBUS disposition back. Safe when mem_sig_open() failed or was not
 * called. */
void mem_sig_close(struct wave_mem *m);
/* The fault thread's share (kicked through m->kick_fd, and every
 * millisecond under an agent): the handlers' events to the link, their
 * errors to the log, pressure relieved by one pass of at most
 * MEM_SIG_RELIEF_PASS demotions (a tier still over gets the next pass,
 * after the loop's other work). */
#define MEM_SIG_RELIEF_PASS MEM_FAR_BATCH
void mem_sig_drain(struct wave_mem *m);

/* ---- mem_numa.c ---- */
/* Checks the NUMA tiers of @m against the machine: 0, -EINVAL or -ENODEV. */
int mem_numa_check(const struct wave_mem *m, struct wave_error *err);
/* Moves the pages of [@addr, @addr+@len) that are present to @node.
 * Return: 0, or the kernel's error (-ENODEV for a node without memory). */
int mem_numa_move(void *addr, size_t len, int node);
/* The node of the page at @addr, or a negative error (-ENOENT: not present). */
int mem_numa_node_of(const void *addr);
/* Sets the memory policy of [@addr, @addr+@len) to prefer @node, or to
 * the default for WAVE_MEM_NODE_ANY. Return: 0 or -errno. */
int mem_numa_prefer(void *addr, size_t len, int node);

/* ---- mem_txn.c, for the link ---- */
/* Is @chunk one of @m's? WAVE_COMMITTED, or INVALID (a malformed id) or
 * GONE (no such region); with the chunk's tier and seq when it is. */
enum wave_result mem_chunk_owned(struct wave_mem *m, uint64_t chunk, uint32_t *tier,
				 uint64_t *seq);
/* wave_mem_migrate() without telling the agent of the change (@log false:
 * the agent's own decision, answered by an OUTCOME). */
enum wave_result mem_migrate(struct wave_mem *m, uint64_t chunk, uint64_t seq, uint32_t tier,
			     bool log);
/* The agent's victims: add one (BUSY when the list is full), drop all,
 * answer (gone) and drop those of a region going away. */
enum wave_result mem_avictim_add(struct wave_mem *m, const struct mem_avictim *v);
void mem_avictims_drop(struct wave_mem *m);
void mem_avictims_gone(struct wave_mem *m, uint32_t region);
/* The agent's KEEP hint: make @chunk, at @seq in NUMA tier @tier, active
 * for the CLOCK. WAVE_COMMITTED (kept), or why it was refused: INVALID,
 * GONE (as mem_chunk_owned()), STALE (@seq or @tier are not the chunk's),
 * NOT_ELIGIBLE (busy, or @tier is not a limited NUMA tier), BUSY (the
 * tier's bound for this sweep of the hand is spent). */
enum wave_result mem_keep(struct wave_mem *m, uint64_t chunk, uint64_t seq, uint32_t tier);

/* ---- mem_link.c ---- */
int mem_link_open(struct wave_mem *m, const struct wave_mem_opts *o, struct wave_error *err);
void mem_link_close(struct wave_mem *m);
/* Adds the link's counters to @o. */
void mem_link_stats(struct wave_mem *m, struct wave_mem_stats *o);
/* What the agent must hear of, recorded by the thread that made it (any
 * thread; cheap, no waiting for the channel). Nothing without a link. */
void mem_link_region(struct wave_mem *m, const struct mem_region *r, bool add);
void mem_link_chunk(struct wave_mem *m, const struct mem_region *r, uint64_t i, bool fault);
void mem_link_victim_done(struct wave_mem *m, const struct mem_avictim *v,
			  enum wave_result res);
/* Chunk @i was accessed: marks it ACCESSED (and, under a link, to be
 * sampled to the agent once). */
void mem_access(struct wave_mem *m, struct mem_region *r, uint64_t i);

/* ---- mem_demote.c ---- */
/* Its lock and condition (every manager has them), and their end. */
void mem_demoter_init(struct wave_mem *m);
void mem_demoter_fini(struct wave_mem *m);
/* Starts the demoter (m->reserve set; on m->demote_cpu unless -1).
 * Return: 0 or -errno. Stopping it is safe whether it started or not. */
int mem_demoter_start(struct wave_mem *m, struct wave_error *err);
void mem_demoter_stop(struct wave_mem *m);
/* A tier took room (a chunk came back, a region came): wakes the demoter
 * if half the reserve is gone. Any thread; cheap when there is nothing to
 * do. */
void mem_demoter_kick(struct wave_mem *m);
/* Has any tier less than half the reserve free (the demoter is owed)? */
bool mem_reserve_low(struct wave_mem *m);

/* ---- mem_sample.c ---- */
/* One sampling period's arming (fault thread). */
void mem_sample_tick(struct wave_mem *m);

#endif /* WAVE_MEM_IMPL_H */
