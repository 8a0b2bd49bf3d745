/* SPDX-License-Identifier: MIT */
/**
 * @file plugin_sched.h
 * For authors of sched-domain policies (plugin ABI 1.1): the ops table, the
 * views of tasks and CPUs, and the decisions. Include it with
 * <wave/plugin.h>, which has the descriptor, parameters, logging and the
 * rest; the queue helpers the built-in policies share are in
 * <wave/plugin_kit/sched_queue.h>.
 *
 * The agent owns the state: it decodes each host message
 * (include/wave/sched_msg.h), applies it to its model of tasks and CPUs
 * (include/wave/sched_state.h), refusing impossible ones, and only then
 * calls the op named after the event, with a view of the task as it is
 * after the event. A plugin keeps only its own queues; it reads tasks and
 * CPUs through the accessors below and decides through
 * wave_plugin_sched_run(), _prestage() and _preempt(), which check each
 * decision against the state before anything is sent. The protocol, the
 * state model and the policies are described in docs/sched.md.
 */
#ifndef WAVE_PLUGIN_SCHED_H
#define WAVE_PLUGIN_SCHED_H

#include <stddef.h>
#include <stdint.h>

#include <wave/export.h>
#include <wave/plugin.h>
#include <wave/sched_msg.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * struct wave_sched_task - a task, as the agent's state model sees it.
 * @id:           the host's non-zero task id.
 * @seq:          its sequence number after the last event; a decision
 *                about the task must carry it.
 * @runtime_ns:   host time spent running, summed over finished runs.
 * @run_start_ns: when the current run started (host clock), if RUNNING.
 * @hint:         task_new's hint (see @hint_kind).
 * @state:        enum wave_sched_task_state.
 * @cpu:          the CPU it runs on, or WAVE_SCHED_CPU_NONE.
 * @pending_cpu:  the CPU of a RUN or PRESTAGE decision awaiting its
 *                outcome, or WAVE_SCHED_CPU_NONE. A task with a decision
 *                in flight gets no other decision.
 * @cpu_hint:     task_new's affinity hint, or WAVE_SCHED_CPU_NONE.
 * @hint_kind:    enum wave_sched_hint_kind.
 * @pending:      the type of the decision in flight (WAVE_SCHED_RUN or
 *                WAVE_SCHED_PRESTAGE), or 0.
 * @reserved:     zero.
 */
struct wave_sched_task {
	uint64_t id;
	uint64_t seq;
	uint64_t runtime_ns;
	uint64_t run_start_ns;
	uint64_t hint;
	uint32_t state;
	uint32_t cpu;
	uint32_t pending_cpu;
	uint32_t cpu_hint;
	uint16_t hint_kind;
	uint16_t pending;
	uint32_t reserved[3];
};

/**
 * struct wave_sched_cpu - a CPU, as the agent's state model sees it.
 * @id:            its number, 0 .. wave_plugin_sched_cpu_count() - 1.
 * @preempting:    1 while a PREEMPT for it awaits the host, else 0.
 * @current:       the task running on it, or 0.
 * @pending:       the task of a RUN for it awaiting its outcome, or 0.
 * @prestaged:     the task in its prestage slot awaiting its outcome, or 0.
 * @idle_since_ns: host time its last task stopped running.
 * @reserved:      zero.
 *
 * A CPU is free when @current, @pending and @prestaged are all 0: only
 * then does it accept a RUN (a prestaged task starts as soon as the CPU has
 * nothing to run, so a RUN would find it busy). Its prestage slot holds at
 * most one task.
 */
struct wave_sched_cpu {
	uint32_t id;
	uint32_t preempting;
	uint64_t current;
	uint64_t pending;
	uint64_t prestaged;
	uint64_t idle_since_ns;
	uint64_t reserved[3];
};

/**
 * struct wave_sched_ops - callbacks of a WAVE_DOMAIN_SCHED plugin.
 * @size:           sizeof(struct wave_sched_ops) at compile time.
 * @task_new:       required. @t is new, BLOCKED or RUNNABLE.
 * @task_wakeup:    required. @t was BLOCKED and is RUNNABLE.
 * @task_blocked:   required. @t stopped running on @cpu and is BLOCKED;
 *                  @cpu is free.
 * @task_yield:     required. @t gave up @cpu and is RUNNABLE; @cpu is free.
 * @task_preempted: required. @t was taken off @cpu and is RUNNABLE; @cpu
 *                  is free (or already runs its prestaged task, whose
 *                  outcome follows).
 * @task_dead:      required. @t exited; it is gone from the state (the
 *                  view shows it as it last was) and its CPU, if any, is
 *                  free.
 * @cpu_idle:       optional. The host reports @cpu has nothing to run.
 * @tick:           optional. Periodic, per CPU, with the host's time.
 * @txn_committed:  optional. A RUN or PRESTAGE of @t committed: @t runs on
 *                  @cpu (@decision is the decision's type).
 * @txn_aborted:    required. A RUN or PRESTAGE of @t on @cpu aborted with
 *                  @result (enum wave_sched_result). The task's latest
 *                  state is in force: when @t->state is RUNNABLE the
 *                  plugin must queue it again (with @t->seq) or it will
 *                  never run. @t is NULL when the task has exited since.
 *
 * Callbacks return 0, or a negative error code that the agent counts
 * ("event_errors") before carrying on. @t points to a copy valid during
 * the call. Callbacks of one context are never called concurrently, and
 * may make decisions and read the state.
 */
struct wave_sched_ops {
	size_t size;
	int (*task_new)(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t);
	int (*task_wakeup)(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t);
	int (*task_blocked)(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t,
			    uint32_t cpu);
	int (*task_yield)(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t,
			  uint32_t cpu);
	int (*task_preempted)(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t,
			      uint32_t cpu);
	int (*task_dead)(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t);
	int (*cpu_idle)(struct wave_plugin_ctx *ctx, uint32_t cpu, uint64_t now_ns);
	int (*tick)(struct wave_plugin_ctx *ctx, uint32_t cpu, uint64_t now_ns);
	int (*txn_committed)(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t,
			     uint32_t cpu, uint16_t decision);
	int (*txn_aborted)(struct wave_plugin_ctx *ctx, const struct wave_sched_task *t,
			   uint32_t cpu, uint16_t decision, unsigned result);
};

/**
 * wave_plugin_sched_run() - decide: run @task on @cpu.
 * @ctx:  a sched plugin's context.
 * @task: a task id.
 * @seq:  the task's sequence number the decision is based on (its @seq in
 *        the latest view).
 * @cpu:  a CPU number.
 *
 * The decision is checked against the state first and sent only if it is
 * possible now; a refusal is counted in the state's statistics. Once sent,
 * the task and the CPU are pending until the host's outcome arrives
 * (txn_committed or txn_aborted).
 *
 * Return: 0 (sent), or
 *   -EINVAL   a NULL or non-sched @ctx, or a context without a state;
 *   -ERANGE   no such CPU;
 *   -ENOENT   no such task;
 *   -ESTALE   @seq is not the task's current sequence number;
 *   -EPERM    the task is not RUNNABLE, or already has a decision pending;
 *   -EBUSY    @cpu is not free: it runs a task, or has a RUN pending or a
 *             task prestaged;
 *   -EAGAIN   the channel to the host is full (try again later);
 *   -ENOTCONN the context has no emit function; or the emit's error.
 */
WAVE_API int wave_plugin_sched_run(struct wave_plugin_ctx *ctx, uint64_t task, uint64_t seq,
				   uint32_t cpu);

/**
 * wave_plugin_sched_prestage() - decide: @task is @cpu's next task.
 *
 * Like wave_plugin_sched_run(), but the host puts the task into @cpu's
 * prestage slot and runs it, without a round trip, the next time @cpu
 * needs work (its task blocks, yields or is preempted). @cpu may be busy;
 * -EBUSY means its slot is already taken.
 */
WAVE_API int wave_plugin_sched_prestage(struct wave_plugin_ctx *ctx, uint64_t task,
					uint64_t seq, uint32_t cpu);

/**
 * wave_plugin_sched_preempt() - decide: take the running task off @cpu.
 *
 * The PREEMPT names the task the state says runs there, at its current
 * sequence number, so the host ignores it (aborts, stale) if that task
 * has stopped meanwhile. A carried-out preemption comes back as
 * task_preempted; @cpu then runs its prestaged task, if any.
 *
 * Return: 0 (sent), -EINVAL, -ERANGE (no such CPU), -EPERM (nothing runs
 * on @cpu), -EBUSY (a PREEMPT for @cpu is already pending), -EAGAIN,
 * -ENOTCONN or the emit's error.
 */
WAVE_API int wave_plugin_sched_preempt(struct wave_plugin_ctx *ctx, uint32_t cpu);

/**
 * wave_plugin_sched_task() - look a task up (expected O(1)).
 * @ctx: a sched plugin's context.
 * @id:  a task id.
 * @out: receives a copy of the task's state.
 *
 * Return: 0, -ENOENT (no such task, or it exited) or -EINVAL.
 */
WAVE_API int wave_plugin_sched_task(const struct wave_plugin_ctx *ctx, uint64_t id,
				    struct wave_sched_task *out);

/** wave_plugin_sched_cpu_count() - the number of CPUs of the domain (CPUs
 *  are numbered from 0), or -EINVAL. */
WAVE_API int wave_plugin_sched_cpu_count(const struct wave_plugin_ctx *ctx);

/**
 * wave_plugin_sched_cpu() - a CPU's state.
 * @ctx: a sched plugin's context.
 * @cpu: 0 .. wave_plugin_sched_cpu_count() - 1; iterate over them to see
 *       every CPU.
 * @out: receives a copy.
 *
 * Return: 0, -ERANGE (no such CPU) or -EINVAL.
 */
WAVE_API int wave_plugin_sched_cpu(const struct wave_plugin_ctx *ctx, uint32_t cpu,
				   struct wave_sched_cpu *out);

/**
 * wave_plugin_sched_free_cpu() - find a free CPU (see struct
 * wave_sched_cpu), cheaply: the state keeps a bitmap of free CPUs.
 * @ctx:  a sched plugin's context.
 * @from: where to start looking (a task's cpu_hint, say); the search
 *        wraps around. Any value is accepted (taken modulo the count).
 *
 * Return: the free CPU found first at or after @from, -EBUSY when every
 * CPU is busy, or -EINVAL.
 */
WAVE_API int wave_plugin_sched_free_cpu(const struct wave_plugin_ctx *ctx, uint32_t from);

#ifdef __cplusplus
}
#endif

#endif /* WAVE_PLUGIN_SCHED_H */
