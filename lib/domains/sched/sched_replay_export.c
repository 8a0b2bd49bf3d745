/* SPDX-License-Identifier: MIT */
/*
 * A sched trace for people and scripts (sched_replay.h): Chrome/Perfetto
 * trace events, one track per CPU, a slice per run of a task (from its
 * committed outcome to the event that ended the run), decisions and
 * aborts as instant events on their CPU's track; and each message's
 * fields as JSON members, for JSON lines. Times are microseconds of the
 * recording machine's CLOCK_MONOTONIC, as Chrome's format wants.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wave/sched_msg.h>

#include "../../core/core.h"
#include "../../decision/u64map.h"
#include "sched.h"
#include "sched_replay.h"

static const char *type_name(uint16_t type)
{
	static const char *const names[] = { "", "task_new", "task_wakeup", "task_blocked",
					     "task_yield", "task_preempted", "task_dead",
					     "cpu_idle", "tick" };

	if (type >= WAVE_SCHED_TASK_NEW && type <= WAVE_SCHED_TICK)
		return names[type - WAVE_MSG_SCHED_FIRST];
	switch (type) {
	case WAVE_SCHED_RUN: return "run";
	case WAVE_SCHED_PRESTAGE: return "prestage";
	case WAVE_SCHED_PREEMPT: return "preempt";
	case WAVE_SCHED_OUTCOME: return "outcome";
	case WAVE_SCHED_SETUP: return "setup";
	default: return "?";
	}
}

/* The trace's CPU count, or the most there can be when it has no SETUP
 * (a message naming a CPU beyond it then fails to decode). */
static uint32_t cpus_of(const struct trace_meta *meta)
{
	uint32_t n;

	for (unsigned i = 0; i < meta->n_setup; i++)
		if (meta->setup[i].type == WAVE_SCHED_SETUP &&
		    sched_setup_decode(&meta->setup[i], &n) == 0)
			return n;
	return WAVE_SCHED_MAX_CPUS;
}

int sched_replay_describe(const struct trace_meta *meta, const struct wave_msg *m, char *buf,
			  size_t size)
{
	struct wave_sched_msg d;
	uint32_t n;
	int len;

	if (m->type == WAVE_SCHED_SETUP && sched_setup_decode(m, &n) == 0) {
		len = snprintf(buf, size, "\"name\":\"setup\",\"n_cpus\":%u", n);
		return len > 0 && (size_t)len < size ? 0 : -1;
	}
	if (wave_sched_msg_decode(m, cpus_of(meta), &d) < 0)
		return -1;
	len = snprintf(buf, size, "\"name\":\"%s\",\"task\":%" PRIu64 ",\"seq\":%" PRIu64
		       ",\"now_ns\":%" PRIu64, type_name(d.type), d.task, d.seq, d.now_ns);
	if (len > 0 && (size_t)len < size && d.cpu != WAVE_SCHED_CPU_NONE)
		len += snprintf(buf + len, size - (size_t)len, ",\"cpu\":%u", d.cpu);
	if (len > 0 && (size_t)len < size && d.type == WAVE_SCHED_OUTCOME)
		len += snprintf(buf + len, size - (size_t)len,
				",\"decision\":\"%s\",\"result\":\"%s\"", type_name(d.decision),
				wave_result_name(d.result));
	if (len > 0 && (size_t)len < size && d.type == WAVE_SCHED_TASK_NEW)
		len += snprintf(buf + len, size - (size_t)len,
				",\"state\":%u,\"hint_kind\":%u,\"hint\":%" PRIu64, d.state,
				d.hint_kind, d.hint);
	return len > 0 && (size_t)len < size ? 0 : -1;
}

/* ---- Chrome / Perfetto ------------------------------------------------- */

struct run {
	uint64_t task; /* the map's key */
	uint64_t start, seq;
	uint32_t cpu;
};

struct chrome {
	struct replay_chrome out;
	struct u64map running; /* task -> struct run */
};

static void instant(struct chrome *c, uint64_t t, uint32_t cpu, const char *what, uint64_t task,
		    const char *why)
{
	replay_chrome_next(&c->out);
	fprintf(c->out.f,
		"{\"name\":\"%s task %" PRIu64 "%s%s\",\"ph\":\"i\",\"s\":\"t\",\"ts\":%.3f,"
		"\"pid\":%" PRIu64 ",\"tid\":%u}",
		what, task, why ? ": " : "", why ? why : "", replay_us(t), c->out.pid, cpu);
}

/* The run of @task, if one is open, ends at @t. */
static void run_end(struct chrome *c, uint64_t task, uint64_t t, const char *how)
{
	struct run *r = u64map_find(&c->running, task);

	if (!r)
		return;
	replay_chrome_next(&c->out);
	fprintf(c->out.f,
		"{\"name\":\"task %" PRIu64 "\",\"ph\":\"X\",\"ts\":%.3f,\"dur\":%.3f,"
		"\"pid\":%" PRIu64 ",\"tid\":%u,\"args\":{\"seq\":%" PRIu64 ",\"ended\":\"%s\"}}",
		task, replay_us(r->start), replay_us(t > r->start ? t - r->start : 0), c->out.pid, r->cpu, r->seq,
		how);
	u64map_remove(&c->running, r);
}

static int on_event(struct chrome *c, const struct wave_sched_msg *d, uint64_t t)
{
	struct run *r;

	switch (d->type) {
	case WAVE_SCHED_OUTCOME:
		if (d->result != WAVE_SCHED_COMMITTED) {
			instant(c, t, d->cpu, "abort", d->task, wave_result_name(d->result));
			return 0;
		}
		if (d->decision != WAVE_SCHED_RUN && d->decision != WAVE_SCHED_PRESTAGE)
			return 0;
		run_end(c, d->task, t, "?");
		if (!(r = u64map_insert(&c->running, d->task)))
			return -ENOMEM;
		r->start = t;
		r->seq = d->seq;
		r->cpu = d->cpu;
		return 0;
	case WAVE_SCHED_TASK_BLOCKED:
	case WAVE_SCHED_TASK_YIELD:
	case WAVE_SCHED_TASK_PREEMPTED:
	case WAVE_SCHED_TASK_DEAD:
		run_end(c, d->task, t, type_name(d->type) + 5);
		return 0;
	default:
		return 0;
	}
}

static void tracks(struct chrome *c, const struct trace_meta *meta, uint32_t n_cpus)
{
	char name[32];

	replay_chrome_process(&c->out, meta, "sched");
	for (uint32_t i = 0; i < n_cpus; i++) {
		snprintf(name, sizeof(name), "cpu %u", i);
		replay_chrome_track(&c->out, i, name);
	}
}

int sched_replay_chrome(struct trace_reader *r, FILE *f, struct wave_error *err)
{
	const struct trace_meta *meta = trace_reader_meta(r);
	struct chrome c = { .out = { .f = f, .first = true, .pid = meta->host_id } };
	struct wave_sched_msg d;
	struct trace_rec rec;
	uint32_t n_cpus;
	int ret;

	if (sched_replay_cpus(r, &n_cpus) < 0)
		return wave_error_set(err, -EBADMSG, "replay", 0, 0,
				      "the trace has no sched SETUP (the host's CPU count)");
	if (u64map_init(&c.running, sizeof(struct run)) < 0)
		return wave_error_set(err, -ENOMEM, "replay", 0, 0, "out of memory");
	tracks(&c, meta, n_cpus);
	trace_reader_rewind(r);
	while ((ret = trace_reader_next(r, &rec, err)) == 1) {
		if (wave_sched_msg_decode(&rec.msg, n_cpus, &d) < 0)
			continue;
		if (rec.kind == TRACE_EVENT)
			ret = on_event(&c, &d, d.now_ns ? d.now_ns : rec.t_ns);
		else
			instant(&c, rec.t_ns, d.cpu == WAVE_SCHED_CPU_NONE ? 0 : d.cpu,
				rec.kind == TRACE_DROPPED ? "dropped" : type_name(d.type), d.task,
				NULL);
		if (ret < 0) {
			wave_error_set(err, ret, "replay", 0, 0, "out of memory");
			break;
		}
	}
	u64map_fini(&c.running);
	return ret < 0 ? ret : 0;
}
