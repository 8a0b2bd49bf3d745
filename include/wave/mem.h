/* SPDX-License-Identifier: MIT */
/**
 * @file mem.h
 * The host side of the mem domain: memory a runtime owns, cut into chunks,
 * each living in one tier (a NUMA node, or a far tier the library
 * implements with userfaultfd and a compressing store), moved between tiers
 * only by transactions.
 *
 * Model. A memory manager (struct wave_mem) has up to WAVE_MEM_MAX_TIERS
 * tiers, numbered from 0, fastest first: NUMA tiers (memory on one node,
 * or on whatever node the kernel picks) and at most one far tier, the
 * last. A runtime hands it regions: memory it owns already
 * (wave_mem_region_register(): private anonymous memory, e.g. from mmap)
 * or memory the library makes for it (wave_mem_region_alloc(): a memfd
 * mapped shared, which the sampler needs). A region is cut into chunks of
 * one size, a power of two from 4 KiB to 2 MiB. A chunk is named by a
 * 64-bit id (wave_mem_chunk_id(): the region's number and the chunk's
 * index) and has a tier and a sequence number that every host-side change
 * bumps: moved to another tier, brought back from the far tier by a
 * fault. Decisions name the sequence number they were based on, so a
 * decision made before a change aborts as stale (<wave/domain.h>).
 *
 * The far tier. Demoting a chunk to the far tier copies its bytes into the
 * far store (compressed with the codec of struct wave_mem_opts) and gives
 * its frames back to the kernel. The next touch of any byte of the chunk,
 * by any thread, faults; the library's fault thread fetches the bytes back
 * and wakes the thread, which never sees the difference. A chunk is in
 * exactly one place: its bytes are in the store only while no frame holds
 * them, and a write that races with a demotion is never lost (the chunk is
 * write-protected, or unmapped, while it is copied; see
 * lib/domains/mem/mem_far.c). A full store is backpressure: the demotion
 * aborts as busy and the chunk stays where it was.
 *
 * userfaultfd. The far tier uses a userfaultfd opened with
 * UFFD_USER_MODE_ONLY, which the kernel grants to unprivileged processes
 * even where vm.unprivileged_userfaultfd is 0. Its price: only faults from
 * user space are caught. A system call that reads or writes a chunk that
 * is in the far tier (read(2) into it, write(2) from it, a futex in it)
 * fails with EFAULT instead of waiting; touch such memory from user space
 * first (one load per page, wave_mem_touch()), or keep buffers given to
 * the kernel in a tier that is not far. With a far tier, every first
 * touch of a page of a registered region that was never touched before is
 * also served by the fault thread (with a zero page): a region should be
 * registered before it is filled.
 *
 * Sequence numbers and state. Each chunk's state is one 64-bit word,
 * changed atomically: application threads fault concurrently, and a
 * migration may run on any thread. A chunk in the middle of a migration is
 * busy: another decision about it aborts as not eligible.
 *
 * Threads. wave_mem_create() starts one thread, the fault thread, when the
 * manager has a far tier or samples; it serves faults and sampling. With
 * @reserve_bytes in struct wave_mem_opts it starts a second one, the
 * demoter, which keeps that much room free under each limited tier's
 * capacity (as the kernel's kswapd keeps its watermarks), so that a fault
 * only fetches its chunk back and no demotion runs on its path while the
 * reserve lasts. Every other call may be made from any thread.
 *
 * The agent. With @agent_uri in struct wave_mem_opts the manager opens a
 * session to an agent serving the mem domain (wave-agentd with a mem
 * plugin) and tells it everything of <wave/mem_msg.h>: SETUP (the tiers,
 * capacities in chunks of agent_chunk_size), each region added and
 * removed, every host-side change of a chunk (CHUNK_CHANGED: a
 * wave_mem_migrate() the runtime made, a local demotion; FAULT: a far
 * chunk brought back), the accesses the sampler and
 * wave_mem_report_access() saw (SAMPLES: each chunk at most once per
 * tick, with how many accesses it had since it was last told, up to 255;
 * never a message per access), PRESSURE (a tier with less than an
 * eighth of its room free) and TICK every agent_tick_ns. The agent's
 * MIGRATE is committed with wave_mem_migrate()'s transaction; VICTIM
 * joins the prestaged victims (demoted under pressure, before the
 * application's list, by whichever thread relieves it; aborted as stale
 * if by then the host saw the chunk touched since its clock hand last
 * passed, or spares it as active); PREFETCH is
 * promoted when the rate limit and the tier's room allow, or aborted as
 * busy after 8 agent ticks without them. Each decision
 * gets exactly one OUTCOME. A decision about a chunk the host does not
 * own is aborted (gone or invalid) and counted (agent_refused); a
 * malformed message is counted (agent_bad) and the agent is dropped.
 * When the agent goes, its prestaged decisions are dropped and the local
 * policy places again (the CLOCK under pressure); when one comes back it
 * is resynced: SETUP, every region, every chunk not in its region's tier
 * at sequence number 0.
 *
 * Who runs the agent's decisions: wave_mem_poll(), on the caller's
 * thread. The library starts no thread for the agent: a demotion
 * compresses, which neither the fault thread (whose latency every
 * faulting thread waits for) nor a signal handler should do, and the
 * application chooses the thread (and its priority) that pays for
 * migrations. wave_mem_poll() must be called at least every heartbeat
 * period while there is an agent; nothing else waits for it: faults and
 * pressure relief go on without it.
 *
 * Faults served by the faulting thread (@fault_signal). The userfaultfd
 * is opened with UFFD_FEATURE_SIGBUS: the kernel queues no fault, it
 * sends SIGBUS (BUS_ADRERR) to the thread that touched a chunk the
 * library must serve, and the library's handler serves it there: fetches
 * a far chunk from the store (lz4 decoded into one of 16 buffers the
 * manager keeps, or mapped straight from the store when stored raw),
 * maps it (UFFDIO_COPY; a memfd: pwrite() and UFFDIO_CONTINUE), maps a
 * first touch's zero page, lifts a write protection left over, or maps a
 * page the sampler dropped; then it returns and the access restarts.
 * What it installs: one process-wide SIGBUS handler (sigaction,
 * SA_SIGINFO | SA_RESTART), while at least one manager with this option
 * lives; the previous disposition is saved and put back when the last one
 * is destroyed (unless someone installed another handler meanwhile). A
 * SIGBUS at an address in no region of such a manager goes to the
 * previous disposition: its handler is called, or, for the default (or
 * ignored) disposition, the default is restored and the signal happens
 * again (the process dies as it would have). Only a fault in a region
 * being unregistered at that moment is told apart by a one-byte
 * process_vm_readv() of the address: readable now, the access is retried.
 * What the handler calls is async-signal-safe but for two locks, which
 * cannot deadlock: the region table's read lock and the far store's map
 * lock are held by library code only, which never touches managed memory
 * from user space, so the interrupted thread (which was touching managed
 * memory) holds neither (the table's write lock is taken only to add or
 * remove regions); it allocates and frees nothing, logs nothing (an
 * error is logged by the fault thread), and touches no other thread's
 * state but by atomics. A chunk busy with a demotion or another fault is
 * not waited for: the handler yields its CPU and returns, and the access
 * faults again until the holder is done. The fault thread still runs: it
 * samples, relieves pressure when a handler says a tier went over its
 * capacity (without a reserve a fault no longer demotes on its own path;
 * a far fault into a tier over its capacity first yields the CPU, holding
 * no lock, until the fault thread has made one relief pass, 64 times at
 * most, then is served anyway), in passes of at most 16 demotions with the
 * rest of its work between them, and passes the handlers' FAULT events to
 * the agent link (a ring of 4096; a full ring makes the next fault wait
 * for it, nothing is dropped).
 * Requirements: the codec is LZ4 or NONE (zstd's decoder allocates;
 * ZSTD is refused with -EINVAL); a thread that blocks SIGBUS, or a host
 * that installs its own SIGBUS handler later without chaining to the
 * previous one, must not touch the regions (the kernel kills a process
 * whose thread blocks a SIGBUS it raises); the handler runs on the
 * faulting thread's stack (small frames, no buffer). At most 8 managers with
 * this option at once (-EBUSY).
 * Other SIGBUS handlers: one installed before the manager is chained to,
 * as above. Some libraries install one when they are loaded: on Debian 12
 * (amd64), libfabric, which libwave links, needs libpsm_infinipath, which
 * needs libinfinipath, whose constructor installs a SIGBUS handler; so
 * every process that links libwave starts with that handler in place
 * before main(), and a manager with this option chains to it. A library
 * that installs its own handler after the manager is created (a dlopen()
 * of it, say) replaces libwave's: far faults then reach a handler that
 * cannot serve them. Load such libraries first, or check the disposition
 * (sigaction(SIGBUS, NULL, &old)) after loading them.
 *
 * Bad input. Every address, length, chunk size, tier and chunk id is
 * checked: -EINVAL (or a wave_result of WAVE_ABORT_INVALID for a
 * decision), never a crash. A region that overlaps one registered already
 * is refused with -EEXIST.
 *
 * Return values follow libwave's rule: 0 or a count, or a negative error
 * code (see wave_strerror()). No call sets errno.
 */
#ifndef WAVE_MEM_H
#define WAVE_MEM_H

#include <stddef.h>
#include <stdint.h>

#include <wave/domain.h>
#include <wave/error.h>
#include <wave/export.h>
#include <wave/host.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A memory manager; opaque. */
struct wave_mem;

/** Tiers a manager may have. */
#define WAVE_MEM_MAX_TIERS 8u
/** The smallest and the largest chunk size. */
#define WAVE_MEM_CHUNK_MIN 4096u
#define WAVE_MEM_CHUNK_MAX (2u << 20)
/** A NUMA tier whose memory is wherever the kernel puts it (never moved). */
#define WAVE_MEM_NODE_ANY (-1)

/** enum wave_mem_tier_kind - what a tier is. */
enum wave_mem_tier_kind {
	WAVE_MEM_TIER_NUMA = 1, /**< memory of one NUMA node */
	WAVE_MEM_TIER_FAR = 2,  /**< the far store, behind userfaultfd */
};

/** enum wave_mem_codec - how the far store compresses a chunk. */
enum wave_mem_codec {
	WAVE_MEM_CODEC_NONE = 0, /**< copied as it is (zero chunks still cost nothing) */
	WAVE_MEM_CODEC_LZ4 = 1,  /**< liblz4, the default (BENCHMARKS.md says why) */
	WAVE_MEM_CODEC_ZSTD = 2, /**< libzstd level 1: smaller, slower */
	WAVE_MEM_CODEC_COUNT
};

/**
 * struct wave_mem_tier - one tier.
 * @kind:     enum wave_mem_tier_kind.
 * @node:     WAVE_MEM_TIER_NUMA: the node (0..numa_max_node(), a node
 *            with memory), or WAVE_MEM_NODE_ANY. Unused for the far tier.
 * @capacity: bytes the tier may hold (for the far tier: compressed bytes
 *            in the store), or 0 for no limit. A NUMA tier may go over
 *            its capacity when far chunks fault back into it (a fault is
 *            never refused); that is pressure, relieved by demotions.
 *            Migrations checked at the same moment on several threads
 *            may each take the last room (overshooting by a chunk each).
 */
struct wave_mem_tier {
	uint32_t kind;
	int32_t node;
	uint64_t capacity;
};

/**
 * struct wave_mem_opts - how to make a manager. Fill with
 * wave_mem_opts_init() first, then change fields.
 * @size:            sizeof(struct wave_mem_opts).
 * @n_tiers:         tiers in @tiers, 1..WAVE_MEM_MAX_TIERS (default 1).
 * @tiers:           the tiers, fastest first; at most one
 *                   WAVE_MEM_TIER_FAR, the last; tier 0 is NUMA (default:
 *                   one NUMA tier, WAVE_MEM_NODE_ANY, no limit).
 * @codec:           enum wave_mem_codec of the far store (default LZ4).
 * @migrate_bps:     migrations may move at most this many bytes per
 *                   second (both directions; faults are not limited); a
 *                   decision over it aborts as busy. 0 (default): no limit.
 * @min_resident_ns: a chunk that arrived in a tier (promoted, or faulted
 *                   back) less than this long ago is not demoted (the
 *                   decision aborts as not eligible): anti-thrash.
 *                   Default 100 ms; 0 turns it off.
 * @sample_chunks:   the sampler (managed regions only): chunks whose
 *                   mapping is dropped per period to see whether they are
 *                   touched (WAVE_MEM_CHUNK_ACCESSED). 0 (default): off.
 * @sample_period_ns: the sampler's period, at least 1 ms (default 10 ms).
 * @agent_uri:       an agent to hand the decisions to (as for
 *                   wave_host_connect(), e.g. "shm:///run/wave/agent"), or
 *                   NULL (default): no agent, the local policy places.
 *                   See "The agent" below. Copied.
 * @host:            the session's options (heartbeats, timeouts, token),
 *                   or NULL for wave_host_opts_init()'s defaults; its
 *                   domains, ops and user are ignored.
 * @agent_tick_ns:   how often SAMPLES and a TICK go to the agent, at
 *                   least 1 ms (default 10 ms).
 * @agent_chunk_size: the chunk size of every region while there is an
 *                   agent (the agent counts tiers in chunks): regions cut
 *                   otherwise are refused with -EINVAL (default 64 KiB).
 * @reserve_bytes:   room the demoter thread keeps free under the capacity
 *                   of every limited tier that has a slower one: it wakes
 *                   when half of it is used and demotes (prestaged victims
 *                   first, then the CLOCK's) until all of it is free
 *                   again. A chunk faulting back takes reserve room and
 *                   nobody demotes on the fault's path unless the reserve
 *                   ran out (then the fault thread demotes to the
 *                   capacity, as without a reserve: fault_demotions). An
 *                   agent is told each such capacity less the reserve.
 *                   Must be below each such capacity. 0 (default): no
 *                   demoter, the fault thread relieves pressure after each
 *                   fault.
 * @demote_cpu:      the CPU the demoter runs on (best on one the
 *                   application's threads do not use: its demotions
 *                   compress), or -1 (default): wherever the thread that
 *                   calls wave_mem_create() may run.
 * @fault_signal:    1: a thread that touches a far chunk fetches it back
 *                   itself, in a SIGBUS handler, instead of sleeping while
 *                   the fault thread does (two context switches less per
 *                   far fault). 0 (default): the fault thread serves every
 *                   fault. An opt-in because a library may not impose a
 *                   signal handler; see "Faults served by the faulting
 *                   thread" below for what it installs and requires.
 */
struct wave_mem_opts {
	size_t size;
	uint32_t n_tiers;
	uint32_t codec;
	struct wave_mem_tier tiers[WAVE_MEM_MAX_TIERS];
	uint64_t migrate_bps;
	uint64_t min_resident_ns;
	uint32_t sample_chunks;
	uint64_t sample_period_ns;
	const char *agent_uri;
	const struct wave_host_opts *host;
	uint64_t agent_tick_ns;
	uint64_t agent_chunk_size;
	uint64_t reserve_bytes;
	int32_t demote_cpu;
	uint32_t fault_signal;
};

/** wave_mem_opts_init() - fill @opts with the defaults. Return: 0 or -EINVAL. */
WAVE_API int wave_mem_opts_init(struct wave_mem_opts *opts);

/**
 * wave_mem_create() - make a manager.
 * @opts: options, or NULL for the defaults.
 * @out:  receives the manager; untouched on failure.
 * @err:  on failure, what went wrong for a human (may be NULL).
 *
 * With a far tier, opens the userfaultfd (UFFD_USER_MODE_ONLY) and starts
 * the fault thread.
 *
 * Return: 0; -EINVAL (bad options: tiers out of order, two far tiers, a
 * negative node number); -ENODEV (a tier's NUMA node does not exist or
 * has no memory on this machine: @err names it); -ENOSYS or -EPERM
 * (userfaultfd unavailable: @err says what the kernel answered); -ENOMEM.
 */
WAVE_API WAVE_NODISCARD int wave_mem_create(const struct wave_mem_opts *opts,
					    struct wave_mem **out, struct wave_error *err);

/**
 * wave_mem_destroy() - stop the fault thread and free @m. Registered
 * regions are unregistered first (their far chunks come back: the memory
 * holds every byte again); managed regions are unmapped. No other call may
 * be running or made later, and no thread may touch a managed region. NULL
 * is ignored.
 */
WAVE_API void wave_mem_destroy(struct wave_mem *m);

/**
 * struct wave_mem_region_opts - how a region's chunks are cut.
 * @size:       sizeof(struct wave_mem_region_opts).
 * @chunk_size: a power of two, WAVE_MEM_CHUNK_MIN..WAVE_MEM_CHUNK_MAX
 *              (default 64 KiB).
 * @tier:       the NUMA tier its chunks are in now (default 0). Chunks
 *              brought back from the far tier by a fault land here too.
 */
struct wave_mem_region_opts {
	size_t size;
	uint64_t chunk_size;
	uint32_t tier;
};

/** wave_mem_region_opts_init() - the defaults. Return: 0 or -EINVAL. */
WAVE_API int wave_mem_region_opts_init(struct wave_mem_region_opts *opts);

/**
 * wave_mem_region_register() - hand @m memory the caller owns.
 * @m:    the manager.
 * @addr: its start, page aligned.
 * @len:  its length, a non-zero multiple of the chunk size.
 * @opts: how it is cut, or NULL for the defaults.
 * @id:   receives the region's number (never reused by @m).
 *
 * With a far tier, the range must be private anonymous memory (mmap
 * MAP_PRIVATE|MAP_ANONYMOUS), mapped read-write, and is registered with
 * the userfaultfd. The caller keeps owning it, and keeps it mapped
 * read-write (not mprotect'ed, remapped or unmapped) until
 * wave_mem_region_unregister() returns: a page it made unreadable would
 * read as zeros to a demotion. When @opts' tier names a node, the range's
 * memory policy is set to prefer that node (mbind(MPOL_PREFERRED), replacing
 * the caller's, and the default again at unregistration), so that pages
 * the kernel allocates for it later (a far chunk fetched back by the
 * fault thread, a first touch) land there; a tier on WAVE_MEM_NODE_ANY
 * leaves the policy alone.
 *
 * Return: 0; -EINVAL (@addr not aligned, @len zero or not a multiple of
 * the chunk size, a bad chunk size or tier, memory that is not private
 * anonymous read-write while there is a far tier); -EEXIST (it overlaps a
 * registered region); -ENOMEM; or the kernel's error registering it.
 */
WAVE_API int wave_mem_region_register(struct wave_mem *m, void *addr, size_t len,
				      const struct wave_mem_region_opts *opts, uint32_t *id);

/**
 * wave_mem_region_alloc() - a region of @len bytes the library makes and
 * owns: a memfd mapped shared and read-write, zero filled, registered for
 * the far tier and the sampler. @addr receives its start; otherwise as
 * wave_mem_region_register(). It is unmapped by
 * wave_mem_region_unregister() (or wave_mem_destroy()).
 */
WAVE_API int wave_mem_region_alloc(struct wave_mem *m, size_t len,
				   const struct wave_mem_region_opts *opts, void **addr,
				   uint32_t *id);

/**
 * wave_mem_region_unregister() - region @id leaves @m. Migrations of its
 * chunks in flight abort (as gone); chunks in the far tier come back (a
 * registered region holds every byte again when this returns); the
 * userfaultfd lets go of it. A managed region is unmapped: no thread may
 * touch it any more. Return: 0, -EINVAL, -ENOENT (no such region).
 */
WAVE_API int wave_mem_region_unregister(struct wave_mem *m, uint32_t id);

/** wave_mem_chunk_id() - the id of chunk @index of region @region. */
static inline uint64_t wave_mem_chunk_id(uint32_t region, uint64_t index)
{
	return ((uint64_t)region << 32) | (index & 0xffffffffu);
}

/** wave_mem_chunk_of() - the id of the chunk holding @addr in *@chunk.
 *  Return: 0, -EINVAL, -ENOENT (@addr is in no region). */
WAVE_API int wave_mem_chunk_of(struct wave_mem *m, const void *addr, uint64_t *chunk);

/** Flags of struct wave_mem_chunk_info. */
#define WAVE_MEM_CHUNK_BUSY 1u     /**< a migration or a fault is changing it */
#define WAVE_MEM_CHUNK_ACCESSED 2u /**< touched since it was last sampled (cleared
				        by the local policy's clock hand) */
#define WAVE_MEM_CHUNK_SAMPLED 4u  /**< its mapping is dropped by the sampler */
#define WAVE_MEM_CHUNK_ACTIVE 8u   /**< in use, as the local policy's clock hand
					 judges: it refaulted (a far fault brought
					 it back soon after its demotion) or two
					 sweeps in a row found it accessed; the hand
					 spares it until three sweeps in a row find
					 it unaccessed */

/**
 * struct wave_mem_chunk_info - what the host knows about a chunk.
 * @size:  sizeof(struct wave_mem_chunk_info), set by the caller.
 * @addr:  its first byte; @len: its size.
 * @tier:  the tier it is in.
 * @flags: WAVE_MEM_CHUNK_*.
 * @seq:   its sequence number.
 */
struct wave_mem_chunk_info {
	size_t size;
	void *addr;
	uint64_t len;
	uint32_t tier;
	uint32_t flags;
	uint64_t seq;
};

/** wave_mem_chunk_info() - fill @out about @chunk. Return: 0, -EINVAL,
 *  -ENOENT (no such chunk). */
WAVE_API int wave_mem_chunk_info(struct wave_mem *m, uint64_t chunk,
				 struct wave_mem_chunk_info *out);

/**
 * wave_mem_migrate() - commit a migration decision: move @chunk to @tier
 * if its sequence number is still @seq. This is the transaction the
 * agent's decisions go through; a runtime may also call it itself.
 *
 * The checks, in order (lib/decision/txn.h): the tier exists and the id
 * is well formed (else invalid); the chunk exists (else gone); its
 * sequence number is @seq (else stale); it is not busy, not in @tier
 * already, and not a demotion of a chunk that arrived less than
 * min_resident_ns ago (else not eligible); the rate limit allows it and
 * @tier has room (else busy; a full far store is busy too). A committed
 * migration has moved the bytes when the call returns and bumped the
 * sequence number. It runs on the calling thread (a demotion compresses).
 *
 * Return: an enum wave_result (>= 0), or -EINVAL when @m is NULL.
 */
WAVE_API int wave_mem_migrate(struct wave_mem *m, uint64_t chunk, uint64_t seq, uint32_t tier);

/** struct wave_mem_victim - a chunk the host may demote under pressure,
 *  at the sequence number the decision was based on. */
struct wave_mem_victim {
	uint64_t chunk;
	uint64_t seq;
};

/**
 * wave_mem_prestage_victims() - replace the list of demotion victims. When
 * a NUMA tier goes over its capacity (a far chunk faulted back), the host
 * demotes victims from this list, in order, each one to the next slower
 * tier as a wave_mem_migrate() whose seq is the victim's, until the tier
 * is within its capacity again: no round trip to whoever decided. A victim
 * that fails its transaction is dropped. Without a list (or when it runs
 * out) the local policy chooses (a CLOCK over the accessed bits).
 * @n: 0..4096 victims (copied). Return: 0, -EINVAL.
 */
WAVE_API int wave_mem_prestage_victims(struct wave_mem *m, const struct wave_mem_victim *v,
				       size_t n);

/**
 * wave_mem_report_access() - the application saw @n addresses used (a
 * runtime that knows its objects): the chunks holding them are marked
 * accessed. Costs one atomic OR per address that is in a region (with an
 * agent, also a relaxed increment of the chunk's count of accesses for
 * the next SAMPLES); addresses in no region are counted (stats) and
 * skipped. Return: how many were in a region, or -EINVAL.
 */
WAVE_API int wave_mem_report_access(struct wave_mem *m, const void *const *addrs, size_t n);

/** wave_mem_touch() - load one byte of every page of [@addr, @addr+@len),
 *  so that chunks of the far tier are brought back before the range is
 *  given to a system call (see "userfaultfd" above). Return: 0 or -EINVAL. */
WAVE_API int wave_mem_touch(const void *addr, size_t len);

/**
 * wave_mem_relieve() - relieve pressure now: demote (victims first, then
 * the local policy's choice) until every NUMA tier is within its
 * capacity, or nothing more can be demoted. The fault thread also does
 * this after each fault that brought a chunk back (with a reserve, only
 * when the reserve ran out: the demoter keeps the room otherwise).
 * Return: chunks demoted, or -EINVAL.
 */
WAVE_API int wave_mem_relieve(struct wave_mem *m);

/**
 * wave_mem_damon_vaddr() - can DAMON monitor this process's virtual
 * addresses here? Return: 1 (the kernel has DAMON's vaddr operations), 0
 * (it does not: @err says what it has instead), or a negative error.
 */
WAVE_API int wave_mem_damon_vaddr(struct wave_error *err);

/**
 * struct wave_mem_stats - counters of a manager.
 * @tier_used:       bytes in each tier now (far: chunk bytes stored).
 * @far_stored:      bytes the far store holds (compressed).
 * @far_faults:      faults that brought a chunk back from the far tier.
 * @zero_fills:      first touches served with zeros.
 * @sample_armed:    chunks whose mapping the sampler dropped.
 * @sample_hits:     of those, chunks touched again (a minor fault).
 * @reported:        addresses reported by wave_mem_report_access() in a
 *                   region; @reported_outside: not in any.
 * @committed:       migrations committed; @aborted: by enum wave_result.
 * @victims_used:    prestaged victims demoted under pressure.
 * @local_demotions: chunks the local policy demoted under pressure.
 * @agent:           1 while an agent is in control, else 0.
 * @agent_events:    messages sent to the agent (resyncs included).
 * @agent_decisions: decisions received from the agent (each answered).
 * @agent_refused:   of those, about a chunk the host does not own.
 * @agent_bad:       malformed messages from the agent (each dropped it).
 * @agent_fallbacks: times the agent was lost; @agent_resyncs: replays.
 * @fault_demotions: demotions the fault thread made after a fault to
 *                   bring a tier back within its capacity (every one when
 *                   there is no reserve; with one, only when the reserve
 *                   ran out before the demoter refilled it).
 * @agent_keeps:     KEEP hints of the agent carried out (the chunk made
 *                   active for the CLOCK, or active already);
 *                   @agent_keeps_refused: refused (a chunk not where the
 *                   hint said, busy, not in a limited NUMA tier, or past
 *                   the tier's bound for the hand's sweep).
 * @reserved:        zero; room for later counters, so that the struct keeps
 *                   its size and a program built against this header
 *                   works with a later libwave.
 */
struct wave_mem_stats {
	uint64_t tier_used[WAVE_MEM_MAX_TIERS];
	uint64_t far_stored;
	uint64_t far_faults;
	uint64_t zero_fills;
	uint64_t sample_armed;
	uint64_t sample_hits;
	uint64_t reported;
	uint64_t reported_outside;
	uint64_t committed;
	uint64_t aborted[WAVE_RESULT_COUNT];
	uint64_t victims_used;
	uint64_t local_demotions;
	uint64_t agent;
	uint64_t agent_events;
	uint64_t agent_decisions;
	uint64_t agent_refused;
	uint64_t agent_bad;
	uint64_t agent_fallbacks;
	uint64_t agent_resyncs;
	uint64_t fault_demotions;
	uint64_t agent_keeps;
	uint64_t agent_keeps_refused;
	uint64_t reserved[8];
};

/**
 * wave_mem_poll() - talk to the agent: send what was gathered (changes,
 * samples, a TICK when its period came), carry out the agent's decisions
 * and answer each, keep the session alive (heartbeats, reconnection and
 * resync). @timeout_ns: how long to wait for a decision (< 0: until one
 * comes); returns as soon as one was carried out; 0 polls once. Calls are
 * serialised (one lock). Without an agent URI it returns 0 at once.
 * Return: decisions carried out, or -EINVAL.
 */
WAVE_API int wave_mem_poll(struct wave_mem *m, int64_t timeout_ns);

/** wave_mem_stats() - copy @m's counters. Return: 0 or -EINVAL. */
WAVE_API int wave_mem_stats(struct wave_mem *m, struct wave_mem_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* WAVE_MEM_H */
