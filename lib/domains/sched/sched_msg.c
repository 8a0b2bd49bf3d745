/* SPDX-License-Identifier: MIT */
/*
 * Sched messages: decoding checks every byte a peer wrote; encoding builds
 * the bytes and then decodes them, so the two can never disagree about what
 * is valid.
 */
#include <errno.h>
#include <string.h>

#include <wave/sched_msg.h>

#include "../../core/le.h"
#include "sched.h"
#include "sched_decode.h"
#include "sched_impl.h"

static int decode_payload(const uint8_t *p, uint32_t n_cpus, struct wave_sched_msg *m)
{
	switch (m->type) {
	case WAVE_SCHED_TASK_NEW:
		return decode_task_new(p, n_cpus, m);
	case WAVE_SCHED_TASK_WAKEUP:
	case WAVE_SCHED_TASK_BLOCKED:
	case WAVE_SCHED_TASK_YIELD:
	case WAVE_SCHED_TASK_PREEMPTED:
	case WAVE_SCHED_TASK_DEAD:
		return decode_task(p, n_cpus, m);
	case WAVE_SCHED_CPU_IDLE:
	case WAVE_SCHED_TICK:
		return decode_cpu(p, n_cpus, m);
	case WAVE_SCHED_RUN:
	case WAVE_SCHED_PRESTAGE:
	case WAVE_SCHED_PREEMPT:
		return decode_decision(p, n_cpus, m);
	case WAVE_SCHED_OUTCOME:
		return decode_outcome(p, n_cpus, m);
	default:
		return -ENOMSG;
	}
}

static int sched_msg_decode(const struct wave_msg *in, uint32_t n_cpus,
			    struct wave_sched_msg *out)
{
	int ret;

	memset(out, 0, sizeof(*out));
	/* An unknown type is -ENOMSG whatever its flags (decode_payload()
	 * says so for flags 0). */
	if (in->flags != 0)
		return wave_sched_msg_type_name(in->type) ? -EBADMSG : -ENOMSG;
	out->type = in->type;
	ret = decode_payload(in->payload.u8, n_cpus, out);
	if (ret < 0)
		memset(out, 0, sizeof(*out));
	return ret;
}

WAVE_API int wave_sched_msg_decode(const struct wave_msg *in, uint32_t n_cpus,
				   struct wave_sched_msg *out)
{
	if (!in || !out || n_cpus == 0 || n_cpus > WAVE_SCHED_MAX_CPUS)
		return -EINVAL;
	return sched_msg_decode(in, n_cpus, out);
}

static void encode_payload(const struct wave_sched_msg *m, uint8_t *p)
{
	switch (m->type) {
	case WAVE_SCHED_TASK_NEW:
		PUT(p, wave_sched_wire_task_new, task, m->task);
		PUT(p, wave_sched_wire_task_new, seq, m->seq);
		PUT(p, wave_sched_wire_task_new, now_ns, m->now_ns);
		PUT(p, wave_sched_wire_task_new, hint, m->hint);
		PUT(p, wave_sched_wire_task_new, cpu_hint, m->cpu);
		PUT(p, wave_sched_wire_task_new, state, m->state);
		PUT(p, wave_sched_wire_task_new, hint_kind, m->hint_kind);
		break;
	case WAVE_SCHED_CPU_IDLE:
	case WAVE_SCHED_TICK:
		PUT(p, wave_sched_wire_cpu, cpu, m->cpu);
		PUT(p, wave_sched_wire_cpu, now_ns, m->now_ns);
		break;
	case WAVE_SCHED_RUN:
	case WAVE_SCHED_PRESTAGE:
	case WAVE_SCHED_PREEMPT:
		PUT(p, wave_sched_wire_decision, task, m->task);
		PUT(p, wave_sched_wire_decision, seq, m->seq);
		PUT(p, wave_sched_wire_decision, cpu, m->cpu);
		break;
	case WAVE_SCHED_OUTCOME:
		PUT(p, wave_sched_wire_outcome, task, m->task);
		PUT(p, wave_sched_wire_outcome, seq, m->seq);
		PUT(p, wave_sched_wire_outcome, now_ns, m->now_ns);
		PUT(p, wave_sched_wire_outcome, cpu, m->cpu);
		PUT(p, wave_sched_wire_outcome, decision, m->decision);
		PUT(p, wave_sched_wire_outcome, result, m->result);
		break;
	default: /* the task events */
		PUT(p, wave_sched_wire_task, task, m->task);
		PUT(p, wave_sched_wire_task, seq, m->seq);
		PUT(p, wave_sched_wire_task, now_ns, m->now_ns);
		PUT(p, wave_sched_wire_task, cpu, m->cpu);
		break;
	}
}

void sched_decision_encode(const struct wave_sched_msg *in, struct wave_msg *out)
{
	memset(out, 0, sizeof(*out));
	out->type = in->type;
	encode_payload(in, out->payload.u8);
}

/* Field by field: padding bytes of a caller's struct are not fields. */
static int same_fields(const struct wave_sched_msg *a, const struct wave_sched_msg *b)
{
	return a->type == b->type && a->state == b->state && a->hint_kind == b->hint_kind &&
	       a->result == b->result && a->decision == b->decision && a->cpu == b->cpu &&
	       a->task == b->task && a->seq == b->seq && a->now_ns == b->now_ns &&
	       a->hint == b->hint;
}

WAVE_API int wave_sched_msg_encode(const struct wave_sched_msg *in, uint32_t n_cpus,
				   struct wave_msg *out)
{
	struct wave_sched_msg back;
	struct wave_msg m;
	int ret;

	if (!in || !out)
		return -EINVAL;
	memset(&m, 0, sizeof(m));
	m.type = in->type;
	if (wave_sched_msg_type_name(in->type))
		encode_payload(in, m.payload.u8);
	/* Decoding what was built applies every check once, in one place;
	 * comparing catches fields the type does not carry but @in set, and
	 * values too wide for their wire field. */
	if ((ret = wave_sched_msg_decode(&m, n_cpus, &back)) < 0)
		return ret;
	if (!same_fields(&back, in))
		return -EBADMSG;
	*out = m;
	return 0;
}

WAVE_API const char *wave_sched_msg_type_name(uint16_t type)
{
	switch (type) {
	case WAVE_SCHED_TASK_NEW: return "task_new";
	case WAVE_SCHED_TASK_WAKEUP: return "task_wakeup";
	case WAVE_SCHED_TASK_BLOCKED: return "task_blocked";
	case WAVE_SCHED_TASK_YIELD: return "task_yield";
	case WAVE_SCHED_TASK_PREEMPTED: return "task_preempted";
	case WAVE_SCHED_TASK_DEAD: return "task_dead";
	case WAVE_SCHED_CPU_IDLE: return "cpu_idle";
	case WAVE_SCHED_TICK: return "tick";
	case WAVE_SCHED_RUN: return "run";
	case WAVE_SCHED_PRESTAGE: return "prestage";
	case WAVE_SCHED_PREEMPT: return "preempt";
	case WAVE_SCHED_OUTCOME: return "outcome";
	default: return NULL;
	}
}

WAVE_API const char *wave_sched_result_name(unsigned result)
{
	static const char *const names[WAVE_SCHED_RESULT_COUNT] = {
		[WAVE_SCHED_COMMITTED] = "committed",
		[WAVE_SCHED_ABORT_STALE] = "stale",
		[WAVE_SCHED_ABORT_DEAD] = "dead",
		[WAVE_SCHED_ABORT_NOT_RUNNABLE] = "not_runnable",
		[WAVE_SCHED_ABORT_CPU_BUSY] = "cpu_busy",
		[WAVE_SCHED_ABORT_INVALID] = "invalid",
	};

	return result < WAVE_SCHED_RESULT_COUNT ? names[result] : NULL;
}

void sched_setup_encode(uint32_t n_cpus, struct wave_msg *out)
{
	memset(out, 0, sizeof(*out));
	out->type = WAVE_SCHED_SETUP;
	wave_put_le32(out->payload.u8, n_cpus);
}

int sched_setup_decode(const struct wave_msg *in, uint32_t *n_cpus)
{
	uint32_t n = wave_get_le32(in->payload.u8);

	if (in->type != WAVE_SCHED_SETUP || in->flags || !zero(in->payload.u8, 4, WAVE_MSG_PAYLOAD) ||
	    n == 0 || n > WAVE_SCHED_MAX_CPUS)
		return -EBADMSG;
	*n_cpus = n;
	return 0;
}
