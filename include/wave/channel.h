/* SPDX-License-Identifier: MIT */
/**
 * @file channel.h
 * Channels: ordered, lossless, bidirectional message pipes between one host
 * and one agent.
 *
 * A channel has two ends. The **agent** end listens (wave_chan_listen()) and
 * accepts (wave_chan_accept()); the **host** end opens (wave_chan_open()).
 * Each end sends with wave_chan_send_burst() / wave_chan_send_bulk() and
 * receives with wave_chan_recv_burst(); messages arrive in the order they
 * were sent, each exactly once.
 *
 * Transports, chosen by the URI's scheme:
 *
 *   shm:///path/to/agent.sock
 *       Shared memory on one machine. The agent listens on a Unix socket
 *       (the peer's uid is checked against an allow list, by default the
 *       agent's own uid; the socket is created mode 0600, or 0666 when the
 *       list names another user, who must also be able to reach the
 *       socket's directory). The host creates the channel memory
 *       (a sealed memfd) and passes it over the socket with two eventfd
 *       doorbells. The socket stays open: when either process dies, the other
 *       sees WAVE_ECLOSED.
 *
 *   file:///dev/shm/name   file:///sys/bus/pci/devices/.../resource2_wc
 *       Shared memory over an existing file or device mapping, e.g. a
 *       SmartNIC's PCIe BAR. Both ends call wave_chan_open() with the role in
 *       the options; the end with WAVE_CHAN_F_CREATE lays the file out, the
 *       other validates the layout header (magic, version, sizes, offsets)
 *       before use, waiting up to timeout_ms for it to appear. Waiting uses a
 *       futex word in the mapping, so wave_chan_fd() is not available. The
 *       file must not shrink while mapped (a memfd-backed shm:// channel is
 *       sealed against that; a plain file is not).
 *
 *   fabric://<provider>/<host>:<port>    fabric://shm/<name>
 *       libfabric reliable-datagram endpoints, for an agent on another
 *       machine. <provider> is a libfabric provider name as fi_info -l
 *       lists it, layered ones with ';' ("tcp;ofi_rxm", "udp;ofi_rxd",
 *       "verbs;ofi_rxm"), or empty ("fabric:///10.0.0.2:7447") to take the
 *       first provider fi_getinfo offers for the address. <host> is a
 *       numeric IPv4 address or a bracketed IPv6 one ("[fd00::2]:7447");
 *       names are never resolved. The listener binds that address (0.0.0.0
 *       for every local one; an address not of this machine fails with
 *       -EADDRNOTAVAIL); the host connects to it. The shm provider is
 *       addressed by a name instead ([A-Za-z0-9._-], 1 to 48 characters),
 *       for separate processes on one machine (libfabric 1.17's shm
 *       provider can crash when both ends live in one process and one is
 *       closed while the other still sends: use shm:// there). Examples:
 *           fabric://tcp;ofi_rxm/10.0.0.2:7447
 *           fabric://tcp;ofi_rxm/127.0.0.1:7447
 *           fabric://shm/agent0
 *       With no agent listening, wave_chan_open() returns -ETIMEDOUT after
 *       timeout_ms (tcp;ofi_rxm and shm report no refused connection).
 *       Every accepted host gets an endpoint of its own, at an address the
 *       agent names in the handshake. The handshake carries a protocol
 *       version (a different major is refused with WAVE_EVERSION) and the
 *       access token of wave_chan_opts.token (WAVE_EREFUSED). The fabric has
 *       no peer credentials: the token is the only check, see there what it
 *       protects. A refusal is sent to the address the host's hello names.
 *       Flow control is by credit: the receiver posts its buffers once and
 *       returns credit, so a slow reader makes sends accept fewer messages,
 *       never lose any. Up to the receiving ring's size in messages may be
 *       outstanding, and at most as many sends (transfers) as the receiver
 *       posted buffers (the ring size, capped by the provider's receive
 *       queue: 2048 for tcp;ofi_rxm, 1024 for shm, less 32 kept for control).
 *       A peer that dies, or a network that fails, is detected by error
 *       completions or by heartbeats within disconnect_timeout_ms; then
 *       calls return WAVE_ECLOSED. libfabric progresses only inside calls:
 *       an end that makes no call on a channel for longer than
 *       disconnect_timeout_ms (wave_chan_wait() counts: it wakes up by
 *       itself) is taken for dead by its peer. wave_chan_fd() is the
 *       completion queue's wait object where the provider has one
 *       (tcp;ofi_rxm); with none (shm, udp;ofi_rxd) it returns -ENOTSUP and
 *       wave_chan_wait() polls with short sleeps. wave_chan_listener_fd()
 *       is the listener's completion queue wait object in the same way; a
 *       hello is noticed by wave_chan_accept(), which is cheap to call with
 *       timeout 0. Latency emulation compares
 *       the sender's CLOCK_MONOTONIC stamp with the receiver's clock, so it
 *       is meaningful only between processes on one machine; a stamp from
 *       the future is delivered at once.
 *
 * Choosing: shm:// (or file:// for a device window) whenever both ends
 * share a machine's memory: a message costs a cache line and no system call.
 * fabric:// when they do not (an agent on another machine, or a NIC reached
 * over the network); it costs what the provider costs, and it needs both
 * ends to keep making calls (see above). fabric://shm/ exists to measure and
 * test the fabric path on one machine, not to replace shm://.
 *
 * Memory placement ("write remote, read local"): every ring lives in memory
 * local to its reader; the writer only stores into it and the reader only
 * polls its own memory; the reader returns credit by a store into memory local
 * to the writer. On a NUMA machine "local" is the NUMA node given by
 * wave_chan_opts.numa_node (by default the node of the CPU that opens or
 * accepts the channel), applied with mbind() before first touch.
 *
 * Thread safety: the send side and the receive side of one channel end are
 * independent; one thread may send while another receives. Two threads must
 * not send (or receive, or wait) on the same end at once. wave_chan_stats()
 * may be called from any thread; the counters it reads are approximate while
 * traffic flows. wave_chan_close() must not race with any other call.
 *
 * Backpressure: a full ring makes a send accept fewer messages (burst) or
 * none (bulk). Nothing is ever dropped.
 *
 * The peer is not trusted: every value read from shared memory is checked. A
 * corrupt or hostile peer can make a channel fail with WAVE_ECORRUPT; it can
 * never make libwave read or write outside the channel's memory.
 */
#ifndef WAVE_CHANNEL_H
#define WAVE_CHANNEL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <wave/export.h>
#include <wave/msg.h>
#include <wave/timeout.h>

#ifdef __cplusplus
extern "C" {
#endif

struct wave_chan;
struct wave_chan_listener;

/** Which end of a channel. */
enum wave_role {
	WAVE_ROLE_HOST = 1,  /**< the managed machine; opens the channel */
	WAVE_ROLE_AGENT = 2, /**< the decision maker; listens and accepts */
};

/** NUMA node value: the node of the CPU running the open/accept call. */
#define WAVE_NUMA_LOCAL (-1)
/** NUMA node value: do not bind the channel memory at all. */
#define WAVE_NUMA_NONE (-2)

/** file:// only: lay the file out instead of attaching to its layout. */
#define WAVE_CHAN_F_CREATE (1u << 0)
/** The mapping is write-combining (a PCIe BAR's resourceN_wc): order each
 *  slot's payload before its stamp with a store fence. */
#define WAVE_CHAN_F_WC (1u << 1)
/** fabric:// only: ask the provider for one-sided RMA, so that mailboxes
 *  are written into the host's memory by fi_write() (both ends must set it;
 *  without it, puts travel in messages). Off by default: with tcp;ofi_rxm
 *  it was seen to slow connection set-up on loaded machines. */
#define WAVE_CHAN_F_RMA (1u << 2)
/** Messages and mailbox puts this end sends carry tstamp 0 instead of their
 *  send time: one clock reading less per send, which over shm:// and
 *  file:// lies on the path from a send to the peer seeing the message
 *  (BENCHMARKS.md: about 20-40 ns of a 40-55 ns overhead over a bare cache
 *  line). The peer's latency emulation (@delay_ns) then delivers them at
 *  once, and an agent keeps no decision latencies for such a host. */
#define WAVE_CHAN_F_NO_STAMP (1u << 3)

/** Longest wave_chan_opts.token, in bytes, without the final NUL. */
#define WAVE_CHAN_TOKEN_MAX 64u

/** Smallest and largest ring, in slots (each slot holds one message). */
#define WAVE_CHAN_MIN_SLOTS 2u
#define WAVE_CHAN_MAX_SLOTS 65536u

/** Most mailboxes a channel can have (wave_chan_opts.mailboxes). */
#define WAVE_CHAN_MAX_MAILBOXES 8192u

/**
 * struct wave_chan_opts - how to open, listen or accept.
 *
 * Always fill it with wave_chan_opts_init() first, then change fields; the
 * @size field lets later versions add fields without breaking callers.
 *
 * @size:        sizeof(struct wave_chan_opts); set by wave_chan_opts_init().
 * @role:        file:// only: which end this is (shm:// derives it).
 * @flags:       WAVE_CHAN_F_* bits.
 * @host_to_agent_slots, @agent_to_host_slots:
 *               ring sizes in messages, powers of two within
 *               [WAVE_CHAN_MIN_SLOTS, WAVE_CHAN_MAX_SLOTS]; chosen by the end
 *               that creates the memory (the host for shm://, the
 *               WAVE_CHAN_F_CREATE end for file://). Default 1024 each.
 * @numa_node:   node for the memory this end reads, WAVE_NUMA_LOCAL (default)
 *               or WAVE_NUMA_NONE.
 * @spin_ns:     wave_chan_wait() polls this long before sleeping
 *               (default 20000 ns; 0 sleeps at once).
 * @delay_ns:    latency emulation: a received message is held back until its
 *               tstamp + @delay_ns (CLOCK_MONOTONIC), e.g. 1000 for a
 *               PCIe-like hop. 0 (default) is off.
 * @timeout_ms:  how long open/accept wait for the peer's handshake
 *               (default 5000; -1 waits for ever).
 * @allow_uids, @n_allow_uids:
 *               listener only: the uids that may connect. NULL/0 (default)
 *               allows only the listener's own effective uid. An shm://
 *               socket is mode 0600 when only that uid is allowed, else
 *               0666: the uid check at accept, on the kernel's credentials
 *               of the peer, is what admits or refuses.
 * @max_slots:   listener only: the largest ring a host may ask for
 *               (default WAVE_CHAN_MAX_SLOTS).
 * @token:       fabric:// only: an access token, a NUL-terminated string of
 *               at most WAVE_CHAN_TOKEN_MAX bytes (longer is -EINVAL). A host
 *               sends it in its hello; a listener given one refuses every
 *               host that does not present exactly the same bytes (compared
 *               in constant time) with WAVE_EREFUSED on both ends. NULL
 *               (default): the host sends none, the listener asks for none.
 *               The token decides only who may open a channel. It travels in
 *               clear unless the provider encrypts, so anyone who can read
 *               the network can learn it; and it says nothing about the
 *               integrity or origin of the messages that follow.
 * @disconnect_timeout_ms:
 *               fabric:// only: a peer from which nothing (not even a
 *               heartbeat) has arrived for this long is taken for dead, and
 *               calls return WAVE_ECLOSED; also the longest wave_chan_close()
 *               waits for the peer to acknowledge the close. Must be > 0;
 *               default 500.
 * @mailboxes:   how many single-message mailboxes the host end has (see
 *               wave_chan_mbox_put()), at most WAVE_CHAN_MAX_MAILBOXES;
 *               chosen by the end that creates the memory (the host for
 *               shm:// and fabric://), like the ring sizes. 0 (default):
 *               none. Over fabric:// the agent writes them into the host's
 *               memory with RMA where the provider can, else sends them;
 *               an agent of fabric protocol 1.0 has none (count 0).
 */
struct wave_chan_opts {
	size_t size;
	enum wave_role role;
	uint32_t flags;
	uint32_t host_to_agent_slots;
	uint32_t agent_to_host_slots;
	int numa_node;
	uint64_t spin_ns;
	uint64_t delay_ns;
	int timeout_ms;
	const uid_t *allow_uids;
	size_t n_allow_uids;
	uint32_t max_slots;
	const char *token;
	int disconnect_timeout_ms;
	uint32_t mailboxes;
};

/**
 * struct wave_chan_stats - counters of one channel end.
 * @sent:      messages accepted by send calls and mailbox puts.
 * @received:  messages returned by receive calls and mailbox takes.
 * @send_full: send calls that accepted fewer messages than asked because the
 *             ring was full, and puts into a full mailbox (backpressure
 *             events).
 * @wakeups:   doorbells rung for a sleeping peer.
 * @sleeps:    times wave_chan_wait() went to sleep.
 */
struct wave_chan_stats {
	uint64_t sent;
	uint64_t received;
	uint64_t send_full;
	uint64_t wakeups;
	uint64_t sleeps;
	uint64_t reserved[3];
};

/** wave_chan_opts_init() - fill @opts with the defaults. Return: 0 or -EINVAL. */
WAVE_API int wave_chan_opts_init(struct wave_chan_opts *opts);

/**
 * wave_chan_open() - open the host end of a channel (or either end of file://).
 * @uri:  "shm:///path/of/agent.sock", "file:///path/to/map" or
 *        "fabric://tcp;ofi_rxm/10.0.0.2:7447" (see the top of this file).
 * @opts: options, or NULL for the defaults.
 * @out:  receives the channel on success; untouched on failure.
 *
 * Blocks until the handshake completes or @opts->timeout_ms passes.
 *
 * Return: 0, or -EINVAL, -WAVE_EURI (bad URI or scheme), -ENOENT or
 * -ECONNREFUSED (no agent listening), -WAVE_EREFUSED (the agent refused our
 * credentials or ring sizes), -WAVE_EVERSION, -WAVE_ELAYOUT (file:// layout
 * invalid), -ETIMEDOUT, -ENOMEM, or another -errno from the system.
 */
WAVE_API WAVE_NODISCARD int wave_chan_open(const char *uri, const struct wave_chan_opts *opts,
					   struct wave_chan **out);

/**
 * wave_chan_listen() - listen for hosts (agent end).
 * @uri:  "shm:///path/of/agent.sock". A stale socket file left by a dead
 *        listener is replaced; a live one gives -EADDRINUSE. Or
 *        "fabric://tcp;ofi_rxm/0.0.0.0:7447": an address that is not one of
 *        this machine's gives -EADDRNOTAVAIL, a port in use -EADDRINUSE,
 *        an unknown provider -ENOTSUP; each is also logged at
 *        WAVE_LOG_WARN with the URI.
 * @opts: options applied to every accepted channel, or NULL.
 * @out:  receives the listener.
 *
 * Return: 0 or a negative error code.
 */
WAVE_API WAVE_NODISCARD int wave_chan_listen(const char *uri, const struct wave_chan_opts *opts,
					     struct wave_chan_listener **out);

/**
 * wave_chan_accept() - accept one host.
 * @l:          the listener.
 * @timeout_ns: how long to wait for a host to connect (timeout.h): 0 polls,
 *              WAVE_WAIT_FOREVER waits for ever.
 * @out:        receives the channel.
 *
 * A host that fails the checks (uid not allowed, bad memory, bad version) is
 * refused with a reason sent back to it and logged at WAVE_LOG_WARN, and this
 * call returns that error (-WAVE_EREFUSED, -WAVE_ELAYOUT, -WAVE_EVERSION...);
 * the listener stays usable.
 *
 * shm://: a host that connects but stalls its side of the rendezvous never
 * holds this call up. It is kept pending (64 at most; more wait in the
 * listen backlog) and judged as soon as its hello arrives, or refused with
 * -ETIMEDOUT once the listener's timeout_ms has passed since it connected,
 * or sooner, when every pending slot is taken and others wait: then the
 * one that has waited longest without a hello makes room. Meanwhile other
 * hosts are accepted. A peer that hangs up without a hello is dropped
 * without a word (no host failed). So @timeout_ns 0 never waits for
 * anyone, and an agent loop may call it on every turn.
 *
 * fabric:// likewise: a refusal is sent without waiting for it to arrive,
 * and an admitted host is kept pending (16 at most; more are refused as
 * busy) until its acceptance has been handed over, or dropped once the
 * listener's timeout_ms has passed and calls of this function have moved
 * it on 16 times (each call does at least once; the provider progresses
 * the connection only inside calls, so an agent that calls seldom does
 * not drop a host for its own slowness), while other hosts are accepted.
 *
 * Return: 0, -ETIMEDOUT if no host came in time, or a negative error code.
 */
WAVE_API WAVE_NODISCARD int wave_chan_accept(struct wave_chan_listener *l, int64_t timeout_ns,
					     struct wave_chan **out);

/**
 * wave_chan_listener_fd() - a file descriptor that polls readable when a
 * host may be waiting to be accepted.
 *
 * Readable is a hint, not a promise: over fabric:// (tcp;ofi_rxm) the fd
 * stays readable for good once a peer closed its connection before its
 * hello, with nobody to accept. A loop that polls it should, after an
 * accept that found nobody, leave it out of its poll set for a while
 * (wave_agent_run() arms it one shot and again 10 ms later), or it spins.
 *
 * Return: the fd, or -EINVAL.
 */
WAVE_API int wave_chan_listener_fd(const struct wave_chan_listener *l);

/** wave_chan_listener_close() - stop listening and remove the socket file.
 *  Channels already accepted stay open. NULL is ignored. */
WAVE_API void wave_chan_listener_close(struct wave_chan_listener *l);

/**
 * wave_chan_send_burst() - send as many of @msgs as fit.
 * @ch:   the channel.
 * @msgs: @n messages; each type must be non-zero. The channel sets seq and
 *        tstamp in its copies; @msgs is not modified.
 * @n:    how many to send; at most WAVE_CHAN_MAX_SLOTS.
 *
 * The messages accepted are published to the peer together, once.
 *
 * Return: how many were accepted, from 0 (ring full) to @n, in order; or
 * -EINVAL (bad argument or a message of type 0; nothing sent),
 * -WAVE_ECLOSED (the peer closed), -WAVE_ECORRUPT.
 */
WAVE_API int wave_chan_send_burst(struct wave_chan *ch, const struct wave_msg *msgs, unsigned n);

/**
 * wave_chan_send_bulk() - send all of @msgs, or none.
 * Return: @n, or -EAGAIN when the ring has not room for all of them, or the
 * errors of wave_chan_send_burst(). @n larger than the ring this end sends
 * on (the slots it asked for, wave_chan_opts) never fits: that -EAGAIN is
 * for good, so send such a batch with wave_chan_send_burst() in parts.
 */
WAVE_API int wave_chan_send_bulk(struct wave_chan *ch, const struct wave_msg *msgs, unsigned n);

/**
 * wave_chan_send_quiet() - wave_chan_send_burst() that does not wake a
 * sleeping peer, for messages nothing waits on (reports, samples).
 *
 * A peer asleep on its doorbell takes them when it wakes for another
 * reason: a message sent with wave_chan_send_burst(), wave_chan_notify(),
 * or the end of its own timeout. Once the ring is half full the doorbell
 * rings anyway: a sleeping peer is never left to let it fill. A wake-up
 * is a system call on both sides (an eventfd write and the sleeper's
 * return), which a sender of frequent reports saves this way. Over
 * fabric:// a frame wakes its receiver by itself: the same as
 * wave_chan_send_burst().
 *
 * Return: as for wave_chan_send_burst().
 */
WAVE_API int wave_chan_send_quiet(struct wave_chan *ch, const struct wave_msg *msgs, unsigned n);

/**
 * wave_chan_notify() - wake the peer if it sleeps on its doorbell: for
 * what wave_chan_send_quiet() sent. Cheap when it does not sleep (a load).
 *
 * Return: 0, -EINVAL, or the channel's error (-WAVE_ECORRUPT).
 */
WAVE_API int wave_chan_notify(struct wave_chan *ch);

/**
 * wave_chan_recv_burst() - receive up to @max messages without blocking.
 * @ch:   the channel.
 * @msgs: room for @max messages.
 * @max:  at least 1.
 *
 * With latency emulation on, a message is returned only once its delay has
 * passed.
 *
 * Return: how many were received (0 if none is ready); -WAVE_ECLOSED once the
 * peer has closed and every message it sent has been received;
 * -WAVE_ECORRUPT if the peer corrupted the channel (the channel is failed
 * from then on); -EINVAL.
 */
WAVE_API int wave_chan_recv_burst(struct wave_chan *ch, struct wave_msg *msgs, unsigned max);

/**
 * wave_chan_wait() - wait until a message can be received.
 * @ch:         the channel.
 * @timeout_ns: how long to wait; 0 only checks; negative waits for ever.
 *
 * Polls for opts.spin_ns, then sleeps on the channel's doorbell; the peer
 * pays for a wake-up only while this end is asleep. A message held back by
 * latency emulation (opts.delay_ns) is slept for until it is due; with
 * @timeout_ns 0 it is "not ready" and the call returns at once.
 *
 * Return: 1 when a message is ready (or the peer closed: the next receive
 * returns -WAVE_ECLOSED), 0 on timeout, or a negative error code.
 */
WAVE_API int wave_chan_wait(struct wave_chan *ch, int64_t timeout_ns);

/**
 * wave_chan_fd() - a file descriptor for an application's poll/epoll loop.
 *
 * The fd polls readable when the peer rang this end's doorbell or closed.
 * The peer rings only when told this end is going to sleep: call
 * wave_chan_trywait() before each poll, and poll only if it returns 0.
 *
 * Return: the fd (owned by the channel), -ENOTSUP for a transport that has
 * none (file://), or -EINVAL.
 */
WAVE_API int wave_chan_fd(struct wave_chan *ch);

/**
 * wave_chan_trywait() - arm the doorbell before sleeping on wave_chan_fd().
 *
 * Return: 0 when armed and nothing is pending (safe to sleep), -EAGAIN when a
 * message is already ready (receive instead) or is held back by latency
 * emulation for a while (no doorbell rings when it becomes due: look again
 * soon), or a negative error code. Never waits.
 */
WAVE_API int wave_chan_trywait(struct wave_chan *ch);

/**
 * Mailboxes: decisions that land in the host's memory.
 *
 * A mailbox holds one message from the agent to the host, outside the
 * ring's order. It lives in memory local to the host and is written by the
 * agent ("write remote, read local", as the rings): the host takes it with
 * loads of its own memory and no call on the channel, which is what a
 * prestaged decision needs (the host reads it when it needs work, not when
 * it polls). Each mailbox's "taken" counter lives in memory local to the
 * agent and is written by the host. A full mailbox is backpressure: a put
 * never overwrites a message the host has not taken.
 *
 * A put belongs to the agent's sending side and a take to the host's
 * receiving side (the thread rules at the top of this file). A put rings
 * the host's doorbell when the host is armed to sleep (wave_chan_trywait()
 * returned 0, or inside wave_chan_wait()), but mailboxes never make the
 * channel "ready": a host that sleeps on wave_chan_fd() takes the
 * mailboxes it cares about after wave_chan_trywait() and before sleeping,
 * and again when woken; wave_chan_wait() returns only for ring messages.
 * With latency emulation a put is held back like a message; its doorbell
 * rings when it is put, not when it becomes due, so a host that sleeps
 * meanwhile sees it when it next wakes up by itself.
 */

/**
 * wave_chan_mailboxes() - how many mailboxes @ch has.
 * Return: the count (0: none, or a transport without them), or -EINVAL.
 */
WAVE_API int wave_chan_mailboxes(const struct wave_chan *ch);

/**
 * wave_chan_mbox_put() - agent: put @msg into mailbox @i.
 * @msg: its type must be non-zero; the channel sets seq and tstamp in the
 *       mailbox's copy.
 *
 * Return: 0; -EAGAIN while the host has not taken the previous message of
 * mailbox @i (nothing written); -EINVAL (bad argument, type 0, a host end,
 * @i not below wave_chan_mailboxes()); -ENOTSUP (a transport without
 * mailboxes); -WAVE_ECLOSED; -WAVE_ECORRUPT (the host's taken counter is
 * impossible: the channel is failed).
 */
WAVE_API int wave_chan_mbox_put(struct wave_chan *ch, unsigned i, const struct wave_msg *msg);

/**
 * wave_chan_mbox_take() - host: take the message in mailbox @i, if any.
 * @msg: receives it. Its bytes are the peer's: check them as any message.
 *
 * Return: 1 (taken: the agent may put the next one), 0 (empty, or held
 * back by latency emulation); -EINVAL (bad argument, an agent end, @i out
 * of range); -ENOTSUP; -WAVE_ECORRUPT (the agent wrote an impossible stamp
 * or type 0: the channel is failed from then on, as for a bad ring slot).
 */
WAVE_API int wave_chan_mbox_take(struct wave_chan *ch, unsigned i, struct wave_msg *msg);

/** wave_chan_stats() - copy the counters of @ch into @st. Return: 0 or -EINVAL. */
WAVE_API int wave_chan_stats(const struct wave_chan *ch, struct wave_chan_stats *st);

/** wave_chan_role() - which end @ch is. Return: a wave_role, or -EINVAL. */
WAVE_API int wave_chan_role(const struct wave_chan *ch);

/**
 * wave_chan_close() - close this end and free it. The peer's receives return
 * the messages already sent, then -WAVE_ECLOSED. NULL is ignored.
 */
WAVE_API void wave_chan_close(struct wave_chan *ch);

#ifdef __cplusplus
}
#endif

#endif /* WAVE_CHANNEL_H */
