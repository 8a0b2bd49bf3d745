/* SPDX-License-Identifier: MIT */
/**
 * @file sched_state.h
 * The agent's state model of the sched domain: the tasks and CPUs of one
 * host, kept from the host's messages, and checked against before any
 * decision leaves.
 *
 * The agent runtime makes one state per host session, hands it to the sched
 * plugin's context (wave_plugin_ctx_opts.domain_state), and passes every
 * sched message from the host to wave_sched_state_apply(). That decodes the
 * message (wave_sched_msg_decode()), applies it, and calls the plugin's op
 * named after it. Messages that cannot be true are refused, counted and not
 * applied: an unknown task (including one that has exited: its id is
 * forgotten and may be reused by a later task_new), a second task_new for a
 * live id, a sequence number that does not advance, a transition the task's
 * state does not allow (a wakeup of a task that is not blocked; a block,
 * yield or preemption of a task not running on that CPU), an outcome for a
 * decision that is not pending.
 *
 * Cost. Tasks live in an open-addressing hash table (linear probing, keys
 * mixed with a per-state random seed, at most 3/4 full, deletion without
 * tombstones): each event costs O(1) expected time. A task takes 56 bytes
 * in the table, so between 75 and 150 bytes of memory with the table's
 * spare room (wave_sched_stats.bytes says exactly). CPUs take 40 bytes
 * each plus a bit in the free-CPU bitmap.
 *
 * A state is not thread-safe: one thread applies messages and runs the
 * plugin's callbacks (which may read and change it through the context).
 */
#ifndef WAVE_SCHED_STATE_H
#define WAVE_SCHED_STATE_H

#include <stdint.h>

#include <wave/export.h>
#include <wave/msg.h>
#include <wave/sched_msg.h>

#ifdef __cplusplus
extern "C" {
#endif

struct wave_plugin_ctx;

/** The agent's model of one host's tasks and CPUs; opaque. */
struct wave_sched_state;

/**
 * wave_sched_state_create() - make an empty state.
 * @n_cpus: the host's CPUs in this domain, 1..WAVE_SCHED_MAX_CPUS; all
 *          start free.
 * @out:    receives the state.
 *
 * Return: 0, -EINVAL or -ENOMEM.
 */
WAVE_API WAVE_NODISCARD int wave_sched_state_create(uint32_t n_cpus,
						    struct wave_sched_state **out);

/** wave_sched_state_destroy() - free @st; destroy the contexts using it
 *  first. NULL is ignored. */
WAVE_API void wave_sched_state_destroy(struct wave_sched_state *st);

/**
 * wave_sched_state_apply() - apply one message from the host.
 * @st:  the state.
 * @ctx: the sched plugin's context whose domain_state is @st, whose op for
 *       the message is then called; or NULL to apply the message to the
 *       state alone (replaying state into a plugin that is not there yet,
 *       fuzzing).
 * @m:   an event or an outcome, untrusted.
 *
 * A message that fails a check changes nothing and is counted in the
 * statistics. The plugin's decisions during its op are applied to the
 * state as they are made.
 *
 * Return: 0, or
 *   -EINVAL                  a bad argument (nothing counted);
 *   -ENOMSG, -EBADMSG, -ERANGE  from wave_sched_msg_decode() (bad_msgs),
 *                            or a decision type, which a host never sends;
 *   -ENOENT                  unknown task (unknown_task);
 *   -EEXIST                  task_new for a live id (dup_new);
 *   -ESTALE                  a sequence number that does not advance
 *                            (seq_backwards);
 *   -EPROTO                  a transition the state does not allow, or an
 *                            outcome of nothing pending (bad_transition);
 *   -ENOSPC                  task_new with WAVE_SCHED_MAX_TASKS tasks live
 *                            (no_memory);
 *   -ENOMEM                  the table could not grow (no_memory).
 * A plugin op's error is not returned: the context counts it.
 */
WAVE_API int wave_sched_state_apply(struct wave_sched_state *st, struct wave_plugin_ctx *ctx,
				    const struct wave_msg *m);

/**
 * wave_sched_state_replay() - hand the whole state to a (new) plugin.
 * @st:     the state.
 * @ctx:    a sched plugin's context whose domain_state is @st, typically
 *          one just created to swap the policy at run time (destroy the
 *          old policy's context first).
 * @now_ns: the host time to report to cpu_idle.
 *
 * Calls task_new for every live task, in no particular order, with its
 * current view (a RUNNING task, or one with a decision in flight, is shown
 * as such: the plugin should not queue it), then cpu_idle for every free
 * CPU. Decisions the old policy left in flight complete normally: their
 * outcomes reach the new plugin (txn_committed, txn_aborted). The host
 * notices nothing.
 *
 * Return: 0 or -EINVAL.
 */
WAVE_API int wave_sched_state_replay(struct wave_sched_state *st, struct wave_plugin_ctx *ctx,
				     uint64_t now_ns);

/**
 * struct wave_sched_stats - what a state has seen and done.
 * @tasks, @cpus:   live tasks; CPUs.
 * @bytes:          memory the state holds (table, CPUs, bitmap).
 * @events:         events and outcomes applied.
 * @bad_msgs:       messages the decoder refused.
 * @unknown_task, @dup_new, @seq_backwards, @bad_transition, @no_memory:
 *                  events refused, by reason (see wave_sched_state_apply()).
 * @sent:           decisions sent, of any type.
 * @refused_stale, @refused_not_runnable, @refused_no_cpu, @refused_busy,
 * @refused_unknown, @refused_full:
 *                  decisions refused before sending: -ESTALE, -EPERM,
 *                  -ERANGE, -EBUSY, -ENOENT, -EAGAIN (and emit errors).
 * @committed:      transactions committed.
 * @aborted:        transactions aborted, by enum wave_sched_result (index
 *                  0 unused).
 * @reserved:       zero.
 */
struct wave_sched_stats {
	uint64_t tasks;
	uint64_t cpus;
	uint64_t bytes;
	uint64_t events;
	uint64_t bad_msgs;
	uint64_t unknown_task;
	uint64_t dup_new;
	uint64_t seq_backwards;
	uint64_t bad_transition;
	uint64_t no_memory;
	uint64_t sent;
	uint64_t refused_stale;
	uint64_t refused_not_runnable;
	uint64_t refused_no_cpu;
	uint64_t refused_busy;
	uint64_t refused_unknown;
	uint64_t refused_full;
	uint64_t committed;
	uint64_t aborted[WAVE_SCHED_RESULT_COUNT];
	uint64_t reserved[8];
};

/** wave_sched_state_stats() - copy @st's statistics into @out.
 *  Return: 0 or -EINVAL. */
WAVE_API int wave_sched_state_stats(const struct wave_sched_state *st,
				    struct wave_sched_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* WAVE_SCHED_STATE_H */
