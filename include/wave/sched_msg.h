/* SPDX-License-Identifier: MIT */
/**
 * @file sched_msg.h
 * The messages of the sched domain: what the host tells the agent about its
 * tasks and CPUs, what the agent decides, and how each decision ended.
 *
 * Model (ghOSt-style). The host owns tasks (threads, or user-level tasks of
 * a runtime) and CPUs; it names each task with a non-zero 64-bit id and
 * gives it a sequence number that every event about the task advances
 * (task_new carries the first one, at least 1). The agent bases each
 * decision on the sequence number it last saw; the host commits a decision
 * only if the task's sequence number is still that one (a transaction), and
 * otherwise aborts it and says why. Sequence numbers need not be
 * consecutive, only increasing: the host may advance them for reasons it
 * does not report.
 *
 * Events, host to agent:
 *   TASK_NEW        a task exists, blocked or runnable, with a hint
 *   TASK_WAKEUP     a blocked task became runnable
 *   TASK_BLOCKED    the task running on @cpu blocked
 *   TASK_YIELD      the task running on @cpu gave the CPU up, still runnable
 *   TASK_PREEMPTED  the task running on @cpu was taken off it, still runnable
 *   TASK_DEAD       the task exited (running or not); its id may be reused
 *   CPU_IDLE        @cpu has nothing to run (carries no task)
 *   TICK            periodic, per CPU, with the time (carries no task)
 * Decisions, agent to host:
 *   RUN             run @task on @cpu, based on its sequence number @seq
 *   PRESTAGE        put @task into @cpu's prestage slot (host-local memory):
 *                   the CPU runs it, without asking, the next time it needs
 *                   work, if @seq is still current then
 *   PREEMPT         take @task (expected to be running, at @seq) off @cpu
 * Outcome, host to agent, one per RUN and PRESTAGE (when the transaction is
 * committed or aborted) and one per PREEMPT that is not carried out (a
 * carried-out preemption is reported as TASK_PREEMPTED):
 *   OUTCOME         @decision (RUN, PRESTAGE, PREEMPT) for @task on @cpu
 *                   ended with @result: committed, or aborted and why.
 *
 * Ordering the host must keep (the channel is ordered and lossless): the
 * event ending a CPU's current task (BLOCKED, YIELD, PREEMPTED, DEAD) is
 * sent before the OUTCOME that starts another task on that CPU.
 *
 * Wire layout. Each message is one struct wave_msg; the header's flags are
 * 0 (reserved) and the payload is one of the structs below, little-endian,
 * every reserved field 0. The structs document the layout; use
 * wave_sched_msg_encode() and wave_sched_msg_decode(), which work on the
 * decoded form, struct wave_sched_msg, and check every field.
 */
#ifndef WAVE_SCHED_MSG_H
#define WAVE_SCHED_MSG_H

#include <stddef.h>
#include <stdint.h>

#include <wave/domain.h>
#include <wave/export.h>
#include <wave/msg.h>

#ifdef __cplusplus
extern "C" {
#define WAVE_SCHED_STATIC_ASSERT static_assert
#else
#define WAVE_SCHED_STATIC_ASSERT _Static_assert
#endif

/* Message types: events 0x0101.., decisions 0x0140.., outcomes 0x0180. */
#define WAVE_SCHED_TASK_NEW (WAVE_MSG_SCHED_FIRST + 0x01)
#define WAVE_SCHED_TASK_WAKEUP (WAVE_MSG_SCHED_FIRST + 0x02)
#define WAVE_SCHED_TASK_BLOCKED (WAVE_MSG_SCHED_FIRST + 0x03)
#define WAVE_SCHED_TASK_YIELD (WAVE_MSG_SCHED_FIRST + 0x04)
#define WAVE_SCHED_TASK_PREEMPTED (WAVE_MSG_SCHED_FIRST + 0x05)
#define WAVE_SCHED_TASK_DEAD (WAVE_MSG_SCHED_FIRST + 0x06)
#define WAVE_SCHED_CPU_IDLE (WAVE_MSG_SCHED_FIRST + 0x07)
#define WAVE_SCHED_TICK (WAVE_MSG_SCHED_FIRST + 0x08)
#define WAVE_SCHED_RUN (WAVE_MSG_SCHED_FIRST + 0x40)
#define WAVE_SCHED_PRESTAGE (WAVE_MSG_SCHED_FIRST + 0x41)
#define WAVE_SCHED_PREEMPT (WAVE_MSG_SCHED_FIRST + 0x42)
#define WAVE_SCHED_OUTCOME (WAVE_MSG_SCHED_FIRST + 0x80)
/* Session message of the sched domain, not part of the state model: the
 * host's first sched message of a session, payload u32 n_cpus at offset 0
 * (1..WAVE_SCHED_MAX_CPUS), every other byte and the flags 0. The agent
 * runtime makes the host's state (wave_sched_state_create(n_cpus)) and
 * starts its plugin instance when it arrives; wave_sched_msg_decode()
 * refuses it (-ENOMSG) like any type it does not handle. */
#define WAVE_SCHED_SETUP (WAVE_MSG_SCHED_FIRST + 0x20)

/** Most CPUs a sched domain can have. */
#define WAVE_SCHED_MAX_CPUS 4096u
/** Most live tasks a sched domain can have (Linux's own limit on
 *  threads, PID_MAX_LIMIT): the host refuses more, and so does the
 *  agent's state model of a host, which no host may grow without end. */
#define WAVE_SCHED_MAX_TASKS (1u << 22)
/** "No CPU", where a message allows it. */
#define WAVE_SCHED_CPU_NONE UINT32_MAX

/** Task states. A new task is BLOCKED or RUNNABLE; only a committed
 *  decision makes it RUNNING. The numbers are part of the wire format. */
enum wave_sched_task_state {
	WAVE_SCHED_BLOCKED = 0,
	WAVE_SCHED_RUNNABLE = 1,
	WAVE_SCHED_RUNNING = 2,
};

/** What task_new's hint means. */
enum wave_sched_hint_kind {
	WAVE_SCHED_HINT_NONE = 0,     /**< no hint; hint is 0 */
	WAVE_SCHED_HINT_WEIGHT = 1,   /**< a relative weight, at least 1 */
	WAVE_SCHED_HINT_DEADLINE = 2, /**< an absolute deadline, host ns */
};

/** How a transaction ended: the shared results (domain.h) in the sched
 *  domain's words. The numbers are part of the wire format. */
enum wave_sched_result {
	WAVE_SCHED_COMMITTED = WAVE_COMMITTED,                   /**< carried out */
	WAVE_SCHED_ABORT_STALE = WAVE_ABORT_STALE,               /**< the task's sequence moved on */
	WAVE_SCHED_ABORT_DEAD = WAVE_ABORT_GONE,                 /**< the task has exited */
	WAVE_SCHED_ABORT_NOT_RUNNABLE = WAVE_ABORT_NOT_ELIGIBLE, /**< blocked or already running */
	WAVE_SCHED_ABORT_CPU_BUSY = WAVE_ABORT_BUSY,             /**< the CPU runs another task */
	WAVE_SCHED_ABORT_INVALID = WAVE_ABORT_INVALID,           /**< the host could not use it */
	WAVE_SCHED_RESULT_COUNT = WAVE_RESULT_COUNT              /**< number of results; not one */
};

/** Payload of TASK_NEW. @cpu_hint: preferred CPU or WAVE_SCHED_CPU_NONE. */
struct wave_sched_wire_task_new {
	uint64_t task;
	uint64_t seq;
	uint64_t now_ns;
	uint64_t hint;
	uint32_t cpu_hint;
	uint8_t state;
	uint8_t hint_kind;
	uint16_t reserved0;
	uint64_t reserved1;
};

/** Payload of TASK_WAKEUP, _BLOCKED, _YIELD, _PREEMPTED and _DEAD.
 *  @cpu: the CPU the task ran on (BLOCKED, YIELD, PREEMPTED: required;
 *  DEAD: or WAVE_SCHED_CPU_NONE if it was not running), or the waker's CPU
 *  or WAVE_SCHED_CPU_NONE (WAKEUP, informational). */
struct wave_sched_wire_task {
	uint64_t task;
	uint64_t seq;
	uint64_t now_ns;
	uint32_t cpu;
	uint32_t reserved0;
	uint64_t reserved1[2];
};

/** Payload of CPU_IDLE and TICK. */
struct wave_sched_wire_cpu {
	uint32_t cpu;
	uint32_t reserved0;
	uint64_t now_ns;
	uint64_t reserved1[4];
};

/** Payload of RUN, PRESTAGE and PREEMPT. */
struct wave_sched_wire_decision {
	uint64_t task;
	uint64_t seq;
	uint32_t cpu;
	uint32_t reserved0;
	uint64_t reserved1[3];
};

/** Payload of OUTCOME. @now_ns: when the host committed (the task's run
 *  started then) or aborted. @decision: the decision's message type. */
struct wave_sched_wire_outcome {
	uint64_t task;
	uint64_t seq;
	uint64_t now_ns;
	uint32_t cpu;
	uint16_t decision;
	uint8_t result;
	uint8_t reserved0;
	uint64_t reserved1[2];
};

#define WAVE_SCHED_WIRE_SIZE_(s) WAVE_SCHED_STATIC_ASSERT(sizeof(struct s) == WAVE_MSG_PAYLOAD, #s " fills the payload")
WAVE_SCHED_WIRE_SIZE_(wave_sched_wire_task_new);
WAVE_SCHED_WIRE_SIZE_(wave_sched_wire_task);
WAVE_SCHED_WIRE_SIZE_(wave_sched_wire_cpu);
WAVE_SCHED_WIRE_SIZE_(wave_sched_wire_decision);
WAVE_SCHED_WIRE_SIZE_(wave_sched_wire_outcome);
#undef WAVE_SCHED_WIRE_SIZE_
WAVE_SCHED_STATIC_ASSERT(offsetof(struct wave_sched_wire_task_new, cpu_hint) == 32, "cpu_hint");
WAVE_SCHED_STATIC_ASSERT(offsetof(struct wave_sched_wire_task_new, state) == 36, "state");
WAVE_SCHED_STATIC_ASSERT(offsetof(struct wave_sched_wire_task_new, hint_kind) == 37, "hint_kind");
WAVE_SCHED_STATIC_ASSERT(offsetof(struct wave_sched_wire_task, cpu) == 24, "task cpu");
WAVE_SCHED_STATIC_ASSERT(offsetof(struct wave_sched_wire_cpu, now_ns) == 8, "cpu now_ns");
WAVE_SCHED_STATIC_ASSERT(offsetof(struct wave_sched_wire_decision, cpu) == 16, "decision cpu");
WAVE_SCHED_STATIC_ASSERT(offsetof(struct wave_sched_wire_outcome, cpu) == 24, "outcome cpu");
WAVE_SCHED_STATIC_ASSERT(offsetof(struct wave_sched_wire_outcome, decision) == 28, "decision");
WAVE_SCHED_STATIC_ASSERT(offsetof(struct wave_sched_wire_outcome, result) == 30, "result");

/**
 * struct wave_sched_msg - any sched message, decoded.
 * @type:      one of the WAVE_SCHED_* message types.
 * @state:     TASK_NEW: enum wave_sched_task_state (BLOCKED or RUNNABLE).
 * @hint_kind: TASK_NEW: enum wave_sched_hint_kind.
 * @result:    OUTCOME: enum wave_sched_result.
 * @decision:  OUTCOME: the type of the decision it ends.
 * @cpu:       the CPU (TASK_NEW: the affinity hint); < the domain's CPU
 *             count, or WAVE_SCHED_CPU_NONE where the type allows it.
 * @task:      the task id; non-zero in every type that has one.
 * @seq:       the task's sequence number (events: after the event;
 *             decisions and outcomes: the one the decision was based on);
 *             non-zero where there is a task.
 * @now_ns:    events and outcomes: host CLOCK_MONOTONIC nanoseconds.
 * @hint:      TASK_NEW: the hint's value.
 *
 * Fields a type does not have are 0 after decoding and must be 0 for
 * encoding.
 */
struct wave_sched_msg {
	uint16_t type;
	uint8_t state;
	uint8_t hint_kind;
	uint8_t result;
	uint16_t decision;
	uint32_t cpu;
	uint64_t task;
	uint64_t seq;
	uint64_t now_ns;
	uint64_t hint;
};

/**
 * wave_sched_msg_decode() - check and decode one sched message.
 * @in:     a message from the peer; untrusted, every byte is checked.
 * @n_cpus: the domain's number of CPUs, 1..WAVE_SCHED_MAX_CPUS.
 * @out:    receives the decoded message; zeroed on failure.
 *
 * Return: 0, or
 *   -EINVAL   a NULL pointer or @n_cpus out of range (nothing was decoded);
 *   -ENOMSG   @in->type is not a sched message type;
 *   -EBADMSG  header flags or a reserved payload field are not 0, a task
 *             id or sequence number that must be non-zero is 0, or a
 *             state, hint kind (or its value), result or decision type is
 *             not one this header defines;
 *   -ERANGE   a CPU number is >= @n_cpus (or is WAVE_SCHED_CPU_NONE where
 *             the type needs a CPU).
 */
WAVE_API int wave_sched_msg_decode(const struct wave_msg *in, uint32_t n_cpus,
				   struct wave_sched_msg *out);

/**
 * wave_sched_msg_encode() - build the wire form of a sched message.
 * @in:     the decoded form; must pass the checks of the decoder.
 * @n_cpus: as for wave_sched_msg_decode().
 * @out:    receives the message: type and payload set, flags, seq and
 *          tstamp 0 (the channel sets seq and tstamp); untouched on
 *          failure.
 *
 * Return: 0, or the error wave_sched_msg_decode() would return for it.
 */
WAVE_API int wave_sched_msg_encode(const struct wave_sched_msg *in, uint32_t n_cpus,
				   struct wave_msg *out);

/** wave_sched_msg_type_name() - "task_new", "run", ... for a sched message
 *  type, or NULL for any other number. */
WAVE_API const char *wave_sched_msg_type_name(uint16_t type);

/** wave_sched_result_name() - "committed", "stale", "dead", "not_runnable",
 *  "cpu_busy", "invalid" for an enum wave_sched_result, or NULL. */
WAVE_API const char *wave_sched_result_name(unsigned result);

#ifdef __cplusplus
}
#endif

#endif /* WAVE_SCHED_MSG_H */
