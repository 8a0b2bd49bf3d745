/* SPDX-License-Identifier: MIT */
/**
 * @file sched.h
 * The host side of the sched domain: a scheduler whose every dispatch is
 * decided by an agent, enforced cheaply on the host, with a local FIFO
 * whenever no agent is in control.
 *
 * Model. A scheduler (struct wave_sched) has N logical CPUs, numbered
 * 0..N-1: the worker threads of a runtime, each usually pinned to a core.
 * Tasks are the runtime's units of work (user-level tasks, threads), each
 * named by a non-zero 64-bit id the application chooses. A task is
 * BLOCKED, RUNNABLE or RUNNING (on one CPU). The application reports what
 * happens to its tasks with wave_sched_task_new(), _wakeup(), _blocked(),
 * _yield(), _preempted() and _dead(); each call advances the task's
 * sequence number and becomes an event to the agent (sched_msg.h), sent in
 * batches. A CPU that needs work calls wave_sched_next(): it never asks
 * the agent and never waits for it. It takes the decision the agent left
 * in that CPU's slot, in host memory (a RUN for an idle CPU, or a PRESTAGE
 * made while the CPU was still busy, so the switch costs no round trip),
 * and commits it as a transaction: only if the task's sequence number is
 * still the one the agent saw, the task is still RUNNABLE and the CPU is
 * free. Otherwise the decision is aborted and the agent is told why
 * (stale, dead, not runnable, CPU busy, invalid); either way the outcome
 * goes back to the agent. A committed task is RUNNING on that CPU until the
 * application reports that it blocked, yielded, was preempted or exited.
 *
 * Preemption. The agent may take a CPU back (a time-slice policy does). It
 * is cooperative: wave_sched_should_yield() is one load of a per-CPU flag
 * in host memory; a runtime checks it at its yield points and, when it is
 * set, stops the task and reports wave_sched_task_preempted(). A task that
 * blocks, yields or exits first simply makes the preemption moot.
 *
 * Fallback. Without an agent in control (none configured, none reachable
 * when the scheduler was created, or one that closed, broke the protocol
 * or stayed silent past the session's heartbeat timeout) a built-in FIFO
 * decides locally: wave_sched_next() takes the oldest runnable task. When
 * an agent welcomes the host again, the scheduler resyncs: it tells the
 * new agent its CPU count and every task that is not running, with its
 * state, and hands control back. Tasks that were started by the fallback
 * and still run are unknown to that agent until they stop (then they are
 * reported as new); a RUN for a CPU such a task still holds waits in the
 * CPU's slot until the task stops. No task is lost and none runs twice
 * across either switch: a task runs only when a transaction commits, and
 * that takes a RUNNABLE task under the scheduler's lock.
 *
 * Progress and threads. Every call may be made from any thread: they are
 * serialised by one lock per scheduler, except wave_sched_should_yield(),
 * which takes none. libwave starts no thread (but a reconnection attempt's,
 * for its open). Decisions are received, the
 * batched events sent, heartbeats exchanged and reconnections attempted
 * inside wave_sched_next() (when a CPU's slot is empty), wave_sched_wait()
 * and wave_sched_poll(); something must call one of them at least every
 * heartbeat period (a runtime with a spare thread runs wave_sched_poll()
 * in a loop; one without lets its idle CPUs call wave_sched_wait()). A
 * reconnection attempt opens its channel on a thread of its own (see
 * <wave/host.h>): no call waits for it, and every call goes on, on
 * fallback, meanwhile.
 *
 * Bad input. A call about an unknown task, a second task_new for a live
 * id, a call about a task after its task_dead, a transition its state does
 * not allow, or a CPU that does not exist returns a negative error code
 * and changes nothing. A malformed or impossible message from the agent is
 * counted (struct wave_sched_host_stats) and the agent is taken for lost:
 * the host goes to fallback and reconnects later with a resync, so a
 * broken agent cannot leave a CPU without work.
 *
 * Return values follow libwave's rule: 0 or a count, or a negative error
 * code (-EINVAL, -ENOENT, ...; see wave_strerror()). No call sets errno.
 */
#ifndef WAVE_SCHED_H
#define WAVE_SCHED_H

#include <stddef.h>
#include <stdint.h>

#include <wave/error.h>
#include <wave/export.h>
#include <wave/host.h>
#include <wave/sched_msg.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A scheduler; opaque. */
struct wave_sched;

/**
 * struct wave_sched_opts - how to make a scheduler. Fill with
 * wave_sched_opts_init() first, then change fields.
 * @size:     sizeof(struct wave_sched_opts).
 * @n_cpus:   logical CPUs, 1..WAVE_SCHED_MAX_CPUS (default 1).
 * @batch:    events and outcomes gathered before they are sent, 1..1024
 *            (default 32); whatever is gathered is also sent by every
 *            wave_sched_next(), wave_sched_wait(), wave_sched_poll() and
 *            wave_sched_flush().
 * @tick_us:  every this many microseconds, a TICK per CPU that runs a task
 *            the agent knows (for time-slice policies); 0 (default) sends
 *            none. Sent from wave_sched_next() and wave_sched_poll().
 * @host:     the session's options (heartbeats, timeouts, token, channel
 *            options such as delay_ns for latency emulation), or NULL for
 *            wave_host_opts_init()'s defaults. Its domains, ops and user
 *            are ignored: the scheduler asks for the sched domain and uses
 *            its own callbacks.
 * @cores:    managed threads only: @n_cpus core numbers; a thread granted
 *            CPU i pins itself to @cores[i]. NULL (default): no pinning.
 *            Copied.
 * @no_mailboxes: 0 (default): the channel holds two mailboxes per CPU
 *            (wave_chan_mbox_put(); over fabric:// with an agent of fabric
 *            protocol 1.1, written by RMA where the provider can), and the
 *            agent's RUN and PRESTAGE decisions land there, in the host's memory:
 *            wave_sched_next() takes them with loads of its own memory,
 *            without polling the channel. 1: they travel on the ring like
 *            every other message (to compare the two).
 */
struct wave_sched_opts {
	size_t size;
	uint32_t n_cpus;
	uint32_t batch;
	uint32_t tick_us;
	const struct wave_host_opts *host;
	const int *cores;
	uint32_t no_mailboxes;
};

/** wave_sched_opts_init() - fill @opts with the defaults.
 *  Return: 0 or -EINVAL. */
WAVE_API int wave_sched_opts_init(struct wave_sched_opts *opts);

/**
 * wave_sched_create() - make a scheduler, bound to an agent.
 * @uri:  the agent's address (as for wave_host_connect(): "shm://...",
 *        "fabric://..."), or NULL for no agent at all: the local FIFO
 *        decides for the life of the scheduler.
 * @opts: options, or NULL for the defaults.
 * @out:  receives the scheduler; untouched on failure.
 * @err:  on failure, what went wrong for a human (may be NULL).
 *
 * Connects (blocking up to the session's connect_timeout_ms) and sends the
 * agent the CPU count. An agent that cannot be reached is not an error:
 * the scheduler starts on fallback and keeps trying (wave_sched_mode()).
 *
 * Return: 0, -EINVAL, -ENOMEM, -WAVE_EURI (@uri is not an address),
 * -WAVE_EREFUSED or -WAVE_EVERSION (the agent refused the host: token,
 * domain, heartbeat settings, version).
 */
WAVE_API WAVE_NODISCARD int wave_sched_create(const char *uri, const struct wave_sched_opts *opts,
					      struct wave_sched **out, struct wave_error *err);

/** wave_sched_destroy() - say goodbye to the agent and free @s. No other
 *  call may be running or made later. NULL is ignored. */
WAVE_API void wave_sched_destroy(struct wave_sched *s);

/**
 * struct wave_sched_task_opts - how a new task starts.
 * @size:      sizeof(struct wave_sched_task_opts).
 * @runnable:  1: RUNNABLE at once; 0: BLOCKED until wave_sched_task_wakeup().
 * @cpu_hint:  preferred CPU, or WAVE_SCHED_CPU_NONE (default).
 * @hint_kind: enum wave_sched_hint_kind (default none).
 * @hint:      the hint: a weight (at least 1) or an absolute deadline in
 *             CLOCK_MONOTONIC ns; 0 with no hint.
 * @arg:       the application's pointer, handed back by wave_sched_next().
 */
struct wave_sched_task_opts {
	size_t size;
	int runnable;
	uint32_t cpu_hint;
	uint32_t hint_kind;
	uint64_t hint;
	void *arg;
};

/** wave_sched_task_opts_init() - defaults: runnable, no hints, no arg.
 *  Return: 0 or -EINVAL. */
WAVE_API int wave_sched_task_opts_init(struct wave_sched_task_opts *opts);

/**
 * wave_sched_task_new() - a task exists.
 * @s:    the scheduler.
 * @id:   its non-zero id; may be reused once the previous task with that id
 *        is dead.
 * @opts: how it starts, or NULL for wave_sched_task_opts_init()'s.
 *
 * Return: 0, -EINVAL (id 0, bad options, a cpu_hint that is not a CPU),
 * -EEXIST (a live task has this id), -ENOSPC (WAVE_SCHED_MAX_TASKS tasks
 * live already), -ENOMEM.
 */
WAVE_API int wave_sched_task_new(struct wave_sched *s, uint64_t id,
				 const struct wave_sched_task_opts *opts);

/** wave_sched_task_wakeup() - BLOCKED task @id became RUNNABLE.
 *  Return: 0, -EINVAL, -ENOENT (no such live task), -EPERM (not BLOCKED). */
WAVE_API int wave_sched_task_wakeup(struct wave_sched *s, uint64_t id);

/**
 * wave_sched_task_blocked() - RUNNING task @id stopped on its CPU and is
 * BLOCKED; the CPU is free (its next wave_sched_next() finds work).
 * wave_sched_task_yield() and wave_sched_task_preempted() are the same
 * for a task that stays RUNNABLE: it gave the CPU up, or was taken off it
 * (normally after wave_sched_should_yield() said so).
 *
 * Return: 0, -EINVAL, -ENOENT (no such live task), -EPERM (not RUNNING).
 */
WAVE_API int wave_sched_task_blocked(struct wave_sched *s, uint64_t id);
WAVE_API int wave_sched_task_yield(struct wave_sched *s, uint64_t id);
WAVE_API int wave_sched_task_preempted(struct wave_sched *s, uint64_t id);

/** wave_sched_task_dead() - task @id exited (running or not); its id is
 *  forgotten. Return: 0, -EINVAL, -ENOENT (no such live task). */
WAVE_API int wave_sched_task_dead(struct wave_sched *s, uint64_t id);

/**
 * struct wave_sched_grant - what wave_sched_next() hands a CPU.
 * @task:   the task id, now RUNNING on the CPU.
 * @seq:    its sequence number when the transaction committed.
 * @arg:    the task's wave_sched_task_opts.arg.
 * @source: WAVE_DECISION_AGENT (the agent's RUN or PRESTAGE) or
 *          WAVE_DECISION_FALLBACK (the local FIFO).
 * @prestaged: 1 when it came from a PRESTAGE (no round trip), else 0.
 */
struct wave_sched_grant {
	uint64_t task;
	uint64_t seq;
	void *arg;
	int source;
	int prestaged;
};

/**
 * wave_sched_next() - give CPU @cpu its next task, if one is decided.
 * @s:   the scheduler.
 * @cpu: a CPU with no task RUNNING on it.
 * @out: receives the task on success.
 *
 * Under the agent's control: takes the decision in @cpu's slot (receiving
 * what the agent sent first when the slot is empty) and commits it, or
 * aborts it and tries the next one; every outcome is reported. The first
 * time a free CPU finds nothing, the agent is told it is idle. On
 * fallback: the oldest RUNNABLE task.
 *
 * Return: 1 (a task now RUNS on @cpu: @out is filled), 0 (nothing yet:
 * call again, or wave_sched_wait()), -EINVAL (no such CPU, NULL
 * argument), -EBUSY (a task still runs on @cpu: report how it stopped
 * first).
 */
WAVE_API int wave_sched_next(struct wave_sched *s, uint32_t cpu, struct wave_sched_grant *out);

/**
 * wave_sched_wait() - wait until @cpu may have work.
 * @timeout_ns: how long (timeout.h): 0 only looks, WAVE_WAIT_FOREVER waits
 *              until there is work.
 *
 * Makes progress with the agent and the local queue, then sleeps without
 * holding the scheduler's lock until a decision for a CPU is staged, a
 * task is queued or a CPU freed (by any thread), or the agent sends
 * something: an idle waiter costs no CPU. Return: 1 (call
 * wave_sched_next()), 0 (timed out), -EINVAL.
 */
WAVE_API int wave_sched_wait(struct wave_sched *s, uint32_t cpu, int64_t timeout_ns);

/**
 * wave_sched_should_yield() - has the agent asked @cpu to give up its
 * task? One load of a per-CPU flag in host memory; no lock, no system
 * call. The flag is cleared when the task stops.
 * Return: 1 or 0 (also for an invalid argument).
 */
WAVE_API int wave_sched_should_yield(const struct wave_sched *s, uint32_t cpu);

/**
 * wave_sched_poll() - make progress: send batched events and ticks,
 * receive and stage decisions, heartbeats, fallback and reconnection.
 * @timeout_ns: how long to wait for a decision (timeout.h), sleeping as
 *              wave_sched_wait() does; returns as soon as one was staged;
 *              0 polls once, WAVE_WAIT_FOREVER waits until one is.
 * Return: decisions staged during the call, or -EINVAL.
 */
WAVE_API int wave_sched_poll(struct wave_sched *s, int64_t timeout_ns);

/** wave_sched_flush() - send the batched events now. Return: 0, or -EAGAIN
 *  when the channel is full (they stay batched), or -EINVAL. */
WAVE_API int wave_sched_flush(struct wave_sched *s);

/** wave_sched_mode() - who decides now: WAVE_HOST_AGENT or
 *  WAVE_HOST_FALLBACK, or -EINVAL. */
WAVE_API int wave_sched_mode(struct wave_sched *s);

/**
 * struct wave_sched_host_stats - counters of a scheduler.
 * @events:           events sent to the agent (outcomes included).
 * @committed:        transactions committed, from the agent's decisions.
 * @aborted:          transactions aborted, by enum wave_sched_result
 *                    (index 0 unused).
 * @prestaged:        committed ones that came from a PRESTAGE.
 * @fallback_runs:    tasks the local FIFO started.
 * @preempts:         PREEMPTs that set a CPU's yield flag.
 * @preempts_moot:    PREEMPTs for a task no longer running (reported).
 * @bad_decisions:    messages from the agent refused as malformed or
 *                    impossible (each also drops the agent).
 * @fallbacks:        switches to the local FIFO.
 * @resyncs:          times the state was replayed to an agent.
 * @tasks:            live tasks now.
 * @mailboxed:        RUN and PRESTAGE decisions taken from the CPUs'
 *                    mailboxes (the others came on the ring).
 */
struct wave_sched_host_stats {
	uint64_t events;
	uint64_t committed;
	uint64_t aborted[WAVE_SCHED_RESULT_COUNT];
	uint64_t prestaged;
	uint64_t fallback_runs;
	uint64_t preempts;
	uint64_t preempts_moot;
	uint64_t bad_decisions;
	uint64_t fallbacks;
	uint64_t resyncs;
	uint64_t tasks;
	uint64_t mailboxed;
	uint64_t reserved[7];
};

/** wave_sched_host_stats() - copy @s's counters. Return: 0 or -EINVAL. */
WAVE_API int wave_sched_host_stats(struct wave_sched *s, struct wave_sched_host_stats *out);

/* ------------------------------------------------------------------------
 * Managed threads: real pthreads that run only while they hold one of the
 * scheduler's CPUs.
 *
 * A thread calls wave_sched_thread_attach() to become task @id; from then
 * on it runs only while it holds a CPU grant, and parks on a futex
 * otherwise. When a thread gives its CPU up (yield, block, detach, or a
 * preemption it notices), libwave takes that CPU's next decision at once
 * and hands the CPU to the thread it names, waking it; a parked thread
 * also polls the agent every millisecond, so decisions for idle CPUs are
 * carried out without a dedicated thread. Preemption is cooperative:
 * wave_sched_thread_check() at the thread's safe points. A running thread
 * is also what keeps a time-slice policy's clock: its checks look at the
 * agent twice per wave_sched_opts.tick_us (every millisecond without
 * ticks), sending the CPUs' ticks and receiving the decisions that came,
 * so a PREEMPT answering a tick is seen about half a tick after it left
 * the agent, without a timer or a thread of libwave's. If the
 * application hands libwave a signal number (@signo), the thread is also
 * sent that signal when another thread receives the agent's PREEMPT for
 * it, to interrupt a blocking call; libwave installs no handler: the
 * application does (one that only returns is enough; it must not call
 * libwave), before attaching. A scheduler serves either managed threads
 * or threads calling wave_sched_next() for its CPUs, not both.
 * ------------------------------------------------------------------------ */

/** A managed thread; opaque. */
struct wave_sched_thread;

/**
 * wave_sched_thread_attach() - make the calling thread task @id and wait
 * for a CPU.
 * @s:     the scheduler.
 * @id:    the task id, as for wave_sched_task_new().
 * @signo: a signal number the library may send the thread on preemption,
 *         or 0 for none.
 * @out:   receives the handle, used by this thread only: from another
 *         thread, the calls below that take it return -EPERM and change
 *         nothing (wave_sched_thread_detach() logs a warning and ignores
 *         the call); and the application's wave_sched_task_*() calls on
 *         a managed thread's task return -EINVAL, since only the thread
 *         itself may change its task.
 *
 * Returns once the thread holds a CPU (pinned to that CPU's core when
 * wave_sched_opts.cores was given). Return: 0, -EINVAL, -EEXIST, -ENOSPC,
 * -ENOMEM (as wave_sched_task_new()).
 */
WAVE_API WAVE_NODISCARD int wave_sched_thread_attach(struct wave_sched *s, uint64_t id,
						     int signo,
						     struct wave_sched_thread **out);

/** wave_sched_thread_cpu() - the CPU the thread holds, or -EINVAL. */
WAVE_API int wave_sched_thread_cpu(const struct wave_sched_thread *t);

/** wave_sched_thread_yield() - give the CPU up, stay runnable, and wait
 *  for a CPU again (maybe at once). Return: 0, -EINVAL, -EPERM (another
 *  thread's handle). */
WAVE_API int wave_sched_thread_yield(struct wave_sched_thread *t);

/**
 * wave_sched_thread_check() - at a safe point: when the agent asked for
 * the CPU back, give it up (reported as a preemption) and wait for a CPU
 * again.
 *
 * Cost: a load of the CPU's flag and a read of CLOCK_MONOTONIC; when a
 * look at the agent is due (twice per tick, see above) it also takes the
 * scheduler's lock, if free, to send the ticks and receive decisions. A
 * thread that checks every few microseconds is preempted within a few
 * microseconds of the look that receives the PREEMPT.
 *
 * Return: 1 if the thread was preempted, 0 if not, -EINVAL, -EPERM
 * (another thread's handle).
 */
WAVE_API int wave_sched_thread_check(struct wave_sched_thread *t);

/**
 * struct wave_sched_preemption - a managed thread's last preemption, to
 * measure how long the agent's decision took to stop it. Times are
 * CLOCK_MONOTONIC nanoseconds.
 * @sent_ns:    when the agent's PREEMPT left it (the channel's stamp on
 *              the message: the peer's word, reported as it came; 0 for
 *              a stamp later than @staged_ns, which cannot be true).
 * @staged_ns:  when the host received it and set the CPU's flag.
 * @stopped_ns: when the thread noticed it and gave its CPU up.
 * @ran_ns:     how long the thread had held the CPU then: its slice.
 */
struct wave_sched_preemption {
	uint64_t sent_ns;
	uint64_t staged_ns;
	uint64_t stopped_ns;
	uint64_t ran_ns;
	uint64_t reserved[4];
};

/**
 * wave_sched_thread_preemption() - copy the thread's last preemption (the
 * last time wave_sched_thread_check() returned 1) into @out. Only the
 * thread itself may call it.
 * Return: 0, -EINVAL, -ENOENT (not preempted yet).
 */
WAVE_API int wave_sched_thread_preemption(const struct wave_sched_thread *t,
					  struct wave_sched_preemption *out);

/**
 * wave_sched_thread_block() - the thread is about to block (on I/O, a
 * lock): give the CPU up as BLOCKED. Call wave_sched_thread_unblock() when
 * it can run again; meanwhile it runs outside the scheduler's control.
 * wave_sched_thread_unblock() makes it RUNNABLE and waits for a CPU.
 * Return: 0, -EINVAL, -EPERM (not holding a CPU / not blocked / another
 * thread's handle).
 */
WAVE_API int wave_sched_thread_block(struct wave_sched_thread *t);
WAVE_API int wave_sched_thread_unblock(struct wave_sched_thread *t);

/** wave_sched_thread_detach() - the thread leaves the scheduler (its task
 *  is dead) and gives its CPU to the next one; @t is freed. NULL is
 *  ignored. */
WAVE_API void wave_sched_thread_detach(struct wave_sched_thread *t);

#ifdef __cplusplus
}
#endif

#endif /* WAVE_SCHED_H */
