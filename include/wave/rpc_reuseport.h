/* SPDX-License-Identifier: MIT */
/**
 * @file rpc_reuseport.h
 * RPC steering enforced in the kernel: a SO_REUSEPORT group of one socket
 * per worker, steered by an eBPF program that reads a steering table.
 *
 * Model. A server has N workers, each with its own socket, all bound to
 * the same address and port with SO_REUSEPORT (UDP sockets bound, TCP
 * sockets listening). Without help Linux picks a socket for each datagram
 * or connection by hashing its 4-tuple. wave_rpc_reuseport_open() attaches
 * a BPF_PROG_TYPE_SK_REUSEPORT program to the group that instead takes
 *
 *   bucket = (the kernel's own 4-tuple hash) & (n_buckets - 1)
 *
 * and sends the packet to the socket of worker table[bucket]. The table is
 * a BPF array map; wave_rpc_reuseport_set() moves one bucket with one map
 * update, which the next packet sees. The kernel never waits for anyone:
 * the table is the prestaged form of an agent's decisions.
 *
 * What a move does to requests in flight (the kernel runs the program at
 * socket lookup, and only there):
 *  - UDP: each datagram is steered when it arrives. After a move the
 *    bucket's next datagram goes to the new worker; datagrams already
 *    queued on the old worker's socket stay there and are served by the old
 *    worker. Nothing is dropped or duplicated, and each socket keeps its
 *    own order, but a flow's requests on both sides of the move may be
 *    served concurrently, so their replies may leave out of order. A policy
 *    that must keep a flow's order waits until the old worker's queue is
 *    empty before it moves the bucket.
 *  - TCP: the program runs only for a SYN that finds the listeners. An
 *    established connection, one waiting in a listener's accept queue, and
 *    one whose handshake is under way all stay with the socket chosen at
 *    their SYN; only connections whose SYN arrives after the move follow
 *    the table. A bucket move never breaks a connection.
 *  - The same holds when the group itself changes (a socket added or
 *    closed): that is the kernel's behaviour for any reuseport group.
 *
 * Fallback. A bucket whose worker has no socket (see
 * wave_rpc_reuseport_set_worker()) falls back to the kernel's own hashing
 * over the group; so does every packet when the program is not attached.
 * Loading needs CAP_BPF and CAP_NET_ADMIN (root in practice); without them
 * wave_rpc_reuseport_open() returns -EPERM, logs why, attaches nothing,
 * and the kernel's hashing stays in force: the server keeps working.
 *
 * Threads. wave_rpc_reuseport_set(), _get(), _arrivals() and _stats() may
 * be called from any thread at any time: each is one map operation of the
 * kernel's (a move is one atomic update of a 32-bit map value).
 * wave_rpc_reuseport_set_worker() and the follower's operations are made
 * from one thread at a time (a steering handle calls its follower under
 * its lock); wave_rpc_reuseport_close() must not race with any other call.
 */
#ifndef WAVE_RPC_REUSEPORT_H
#define WAVE_RPC_REUSEPORT_H

#include <stdint.h>

#include <wave/export.h>
#include <wave/rpc.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Most workers (sockets) and buckets a group may have. */
#define WAVE_RPC_REUSEPORT_MAX_WORKERS 1024u
#define WAVE_RPC_REUSEPORT_MAX_BUCKETS 65536u

/** An attached steering program with its maps. */
struct wave_rpc_reuseport;

/** What the program did since open, summed over CPUs. */
struct wave_rpc_reuseport_stats {
	uint64_t steered;  /**< packets (UDP) or SYNs (TCP) sent where the table says */
	uint64_t fallback; /**< left to the kernel's hashing: the bucket's worker had no socket */
	uint64_t reserved[6]; /**< zero; room for later counters at the same size */
};

/**
 * Loads the steering program and attaches it to the reuseport group of
 * @fds. @fds[w] is worker w's socket; all @n_workers sockets must be of one
 * type (UDP, or TCP listening), have SO_REUSEPORT set and be bound to the
 * same address (so that they form one group). The table starts as the
 * static hash bucket b -> worker b % n_workers. @n_buckets is a power of
 * two, at least @n_workers. The sockets stay the caller's: close them after
 * wave_rpc_reuseport_close().
 *
 * Return: 0 and *@out, or -EINVAL (bad arguments, a socket that is not a
 * bound reuseport UDP or listening TCP socket, mixed types), -EPERM (no
 * privilege to load BPF programs: the kernel's hashing stays), -ENOMEM, or
 * another -errno from the kernel. Each failure is logged with its reason.
 */
WAVE_API WAVE_NODISCARD int wave_rpc_reuseport_open(const int *fds, unsigned n_workers,
						     unsigned n_buckets,
						     struct wave_rpc_reuseport **out);

/**
 * Moves @bucket to @worker with one map update: new flows of the bucket
 * (and, for UDP, its next datagrams) go to @worker's socket.
 * Return: 0, or -EINVAL (bucket or worker out of range), or -errno.
 */
WAVE_API int wave_rpc_reuseport_set(struct wave_rpc_reuseport *rp, unsigned bucket,
				    unsigned worker);

/** The worker @bucket is steered to, in *@worker. Return: 0, -EINVAL or -errno. */
WAVE_API int wave_rpc_reuseport_get(struct wave_rpc_reuseport *rp, unsigned bucket,
				    unsigned *worker);

/**
 * Gives worker @worker the socket @fd (a member of the same group), or
 * with @fd = -1 takes its socket out of the program's reach: its buckets
 * then fall back to the kernel's hashing (counted) until they are moved or
 * the worker gets a socket again. A policy removing a worker moves its
 * buckets first.
 * Return: 0, -EINVAL or -errno.
 */
WAVE_API int wave_rpc_reuseport_set_worker(struct wave_rpc_reuseport *rp, unsigned worker,
					   int fd);

/**
 * Arrivals per bucket since open (datagrams for UDP, SYNs for TCP), summed
 * over CPUs, into @counts[0..@n_buckets-1]: the per-bucket rates a
 * rebalancer needs. @n_buckets must be the group's bucket count.
 * Return: 0, -EINVAL or -errno.
 */
WAVE_API int wave_rpc_reuseport_arrivals(struct wave_rpc_reuseport *rp, uint64_t *counts,
					 unsigned n_buckets);

/**
 * The requests waiting on worker @worker's socket now, in *@depth: the
 * datagrams (UDP) or connections (TCP) the program sent to that socket
 * since open, less @taken (those the worker has read: datagrams received,
 * or connections accepted, from that socket since open) and less those the
 * kernel dropped on it (a full receive buffer or accept queue: the
 * socket's SO_MEMINFO drop count). A load report's queue depth for kernel
 * steering; exact but for what arrives concurrently. Packets the kernel's
 * own hashing delivered (a bucket with no socket, see
 * wave_rpc_reuseport_set_worker()) are not counted, so the result is
 * clamped at 0. For TCP it is the accept queue only (a SYN the client
 * resent counts again): requests on established connections are the
 * server's to count.
 * Return: 0, -EINVAL (no such worker, or it has no socket), or -errno.
 */
WAVE_API int wave_rpc_reuseport_queued(struct wave_rpc_reuseport *rp, unsigned worker,
				       uint64_t taken, uint32_t *depth);

/** The program's outcome counters. Return: 0, -EINVAL or -errno. */
WAVE_API int wave_rpc_reuseport_stats(struct wave_rpc_reuseport *rp,
				      struct wave_rpc_reuseport_stats *st);

/**
 * Fills @f with a follower (struct wave_rpc_follower, <wave/rpc.h>) through
 * which a steering handle drives @rp: pass it to wave_rpc_follow(). From
 * then on every worker the handle adds (with its socket) or removes, and
 * every bucket it moves, reaches the kernel's maps before lookups see it;
 * before each load report the arrivals the program counted are added to
 * the handle's (wave_rpc_arrivals()). The handle's n_buckets must be
 * @rp's, and its worker numbers below @rp's worker count (others are
 * refused). Class entries (after the flow buckets) are the server's own
 * dispatch and are not the kernel's business: the follower accepts them
 * and leaves the maps alone. @rp must outlive the handle, or be replaced
 * by wave_rpc_follow(handle, NULL) before it is closed.
 * Return: 0 or -EINVAL.
 */
WAVE_API int wave_rpc_reuseport_follower(struct wave_rpc_reuseport *rp,
					 struct wave_rpc_follower *f);

/**
 * Detaches the program from the group (the kernel's hashing takes over at
 * once) and frees it. A NULL @rp is ignored.
 */
WAVE_API void wave_rpc_reuseport_close(struct wave_rpc_reuseport *rp);

#ifdef __cplusplus
}
#endif

#endif /* WAVE_RPC_REUSEPORT_H */
