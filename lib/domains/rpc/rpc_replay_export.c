/* SPDX-License-Identifier: MIT */
/*
 * An rpc trace for people and scripts (rpc_replay.h): Chrome/Perfetto
 * trace events, a track per worker, each worker's requests of a report
 * period a slice (from the period's start, as long as the worker was busy
 * in it, with its completions, mean service time and queue depth), moves,
 * prestages and aborts as instant events on their worker's track, and
 * each worker's queue depth as a counter; and each message's fields as
 * JSON members, for JSON lines. Times are microseconds of the recording
 * machine's CLOCK_MONOTONIC, as Chrome's format wants.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include <wave/rpc_msg.h>

#include "../../core/core.h"
#include "rpc_replay.h"

/* The sizes of the trace's header SETUP, else the largest a host may
 * announce (a message naming more then fails to decode). */
static struct wave_rpc_dims dims_of(const struct trace_meta *meta)
{
	struct wave_rpc_msg s;

	for (unsigned i = 0; i < meta->n_setup; i++)
		if (meta->setup[i].type == WAVE_RPC_SETUP &&
		    wave_rpc_msg_decode(&meta->setup[i], NULL, &s) == 0)
			return s.dims;
	return (struct wave_rpc_dims){ WAVE_RPC_MAX_BUCKETS, WAVE_RPC_MAX_CLASSES,
				       WAVE_RPC_MAX_WORKERS, WAVE_RPC_MAX_DISPATCHERS };
}

static int describe_msg(const struct wave_rpc_msg *d, char *buf, size_t size)
{
	int len = replay_put(buf, size, 0, "\"name\":\"%s\"", wave_rpc_msg_type_name(d->type));

	switch (d->type) {
	case WAVE_RPC_SETUP:
		return replay_put(buf, size, len,
			   ",\"n_buckets\":%u,\"n_classes\":%u,\"max_workers\":%u,"
			   "\"n_dispatchers\":%u,\"epoch\":%u,\"report_ns\":%" PRIu64,
			   d->dims.n_buckets, d->dims.n_classes, d->dims.max_workers,
			   d->dims.n_dispatchers, d->epoch, d->period_ns);
	case WAVE_RPC_WORKER_ADD:
	case WAVE_RPC_WORKER_DEL:
		return replay_put(buf, size, len, ",\"worker\":%u,\"gen\":%u,\"now_ns\":%" PRIu64,
			   d->worker, d->gen, d->now_ns);
	case WAVE_RPC_BUCKETS:
	case WAVE_RPC_ARRIVALS:
		if (d->type == WAVE_RPC_BUCKETS)
			len = replay_put(buf, size, len, ",\"first\":%u,\"epoch\":%u,\"workers_seqs\":[",
				  d->bucket, d->epoch);
		else
			len = replay_put(buf, size, len, ",\"buckets_counts\":[");
		for (unsigned k = 0; k < d->n; k++)
			len = replay_put(buf, size, len, "%s[%u,%u]", k ? "," : "", d->e[k].a, d->e[k].b);
		return replay_put(buf, size, len, "]");
	case WAVE_RPC_LOAD:
		return replay_put(buf, size, len,
			   ",\"worker\":%u,\"queue_depth\":%u,\"busy_ns\":%" PRIu64
			   ",\"completions\":%" PRIu64 ",\"service_ns\":%" PRIu64
			   ",\"max_service_ns\":%" PRIu64,
			   d->worker, d->queue_depth, d->busy_ns, d->completions, d->service_ns,
			   d->max_service_ns);
	case WAVE_RPC_REPORT:
		return replay_put(buf, size, len, ",\"period_ns\":%" PRIu64 ",\"now_ns\":%" PRIu64,
			   d->period_ns, d->now_ns);
	case WAVE_RPC_OUTCOME:
		len = replay_put(buf, size, len, ",\"decision\":\"%s\",\"result\":\"%s\",\"why\":\"%s\","
			  "\"cur_worker\":%u,\"now_ns\":%" PRIu64,
			  wave_rpc_msg_type_name(d->decision), wave_result_name(d->result),
			  wave_rpc_abort_name(d->why), d->cur_worker, d->now_ns);
		__attribute__((fallthrough)); /* and its decision's fields */
	default: /* MOVE, PRESTAGE */
		return replay_put(buf, size, len, ",\"bucket\":%u,\"worker\":%u,\"gen\":%u,\"seq\":%u,"
			   "\"epoch\":%u", d->bucket, d->worker, d->gen, d->seq, d->epoch);
	}
}

int rpc_replay_describe(const struct trace_meta *meta, const struct wave_msg *m, char *buf,
			size_t size)
{
	struct wave_rpc_dims dims = dims_of(meta);
	struct wave_rpc_msg d;

	if (wave_rpc_msg_decode(m, m->type == WAVE_RPC_SETUP ? NULL : &dims, &d) < 0)
		return -1;
	return describe_msg(&d, buf, size) < 0 ? -1 : 0;
}

/* ---- Chrome / Perfetto ------------------------------------------------- */

struct chrome {
	struct replay_chrome out;
	struct wave_rpc_dims dims;
	struct wave_rpc_msg *load; /* per worker, this period's LOAD (type 0: none) */
};

static void instant(struct chrome *c, uint64_t t, uint32_t worker, const char *what,
		    uint32_t bucket, const char *why)
{
	replay_chrome_next(&c->out);
	fprintf(c->out.f,
		"{\"name\":\"%s bucket %u%s%s\",\"ph\":\"i\",\"s\":\"t\",\"ts\":%.3f,"
		"\"pid\":%" PRIu64 ",\"tid\":%u}",
		what, bucket, why ? ": " : "", why ? why : "", replay_us(t), c->out.pid, worker);
}

/* The period [@end - @period, @end): each worker's slice and queue. */
static void period(struct chrome *c, uint64_t end, uint64_t length)
{
	uint64_t start = end > length ? end - length : 0;

	for (uint32_t w = 0; w < c->dims.max_workers; w++) {
		const struct wave_rpc_msg *l = &c->load[w];

		if (!l->type)
			continue;
		if (l->completions) {
			replay_chrome_next(&c->out);
			fprintf(c->out.f,
				"{\"name\":\"%" PRIu64 " requests\",\"ph\":\"X\",\"ts\":%.3f,"
				"\"dur\":%.3f,\"pid\":%" PRIu64 ",\"tid\":%u,\"args\":{"
				"\"completions\":%" PRIu64 ",\"service_mean_ns\":%" PRIu64
				",\"queue_depth\":%u}}",
				l->completions, replay_us(start),
				replay_us(l->busy_ns < length ? l->busy_ns : length),
				c->out.pid, w, l->completions, l->service_ns / l->completions,
				l->queue_depth);
		}
		replay_chrome_next(&c->out);
		fprintf(c->out.f,
			"{\"name\":\"queue w%u\",\"ph\":\"C\",\"ts\":%.3f,\"pid\":%" PRIu64
			",\"args\":{\"requests\":%u}}",
			w, replay_us(end), c->out.pid, l->queue_depth);
		c->load[w].type = 0;
	}
}

static void on_record(struct chrome *c, const struct trace_rec *rec, const struct wave_rpc_msg *d)
{
	uint64_t t = d->now_ns ? d->now_ns : rec->t_ns;

	if (rec->kind != TRACE_EVENT) {
		instant(c, rec->t_ns, d->worker,
			rec->kind == TRACE_DROPPED ? "dropped" : wave_rpc_msg_type_name(d->type),
			d->bucket, NULL);
		return;
	}
	switch (d->type) {
	case WAVE_RPC_LOAD:
		c->load[d->worker] = *d;
		break;
	case WAVE_RPC_REPORT:
		period(c, d->now_ns, d->period_ns);
		break;
	case WAVE_RPC_OUTCOME:
		if (d->result != WAVE_COMMITTED)
			instant(c, t, d->worker, "abort", d->bucket, wave_rpc_abort_name(d->why));
		break;
	default:
		break;
	}
}

static void tracks(struct chrome *c, const struct trace_meta *meta)
{
	char name[32];

	replay_chrome_process(&c->out, meta, "rpc");
	for (uint32_t i = 0; i < c->dims.max_workers; i++) {
		snprintf(name, sizeof(name), "worker %u", i);
		replay_chrome_track(&c->out, i, name);
	}
}

int rpc_replay_chrome(struct trace_reader *r, FILE *f, struct wave_error *err)
{
	const struct trace_meta *meta = trace_reader_meta(r);
	struct chrome c = { .out = { .f = f, .first = true, .pid = meta->host_id } };
	struct wave_rpc_msg s, d;
	struct wave_msg setup;
	struct trace_rec rec;
	int ret;

	if (rpc_replay_setup(r, &setup, &s) < 0)
		return wave_error_set(err, -EBADMSG, "replay", 0, 0,
				      "the trace has no rpc SETUP (the host's sizes)");
	c.dims = s.dims;
	if (!(c.load = calloc(s.dims.max_workers, sizeof(*c.load))))
		return wave_error_set(err, -ENOMEM, "replay", 0, 0, "out of memory");
	tracks(&c, meta);
	trace_reader_rewind(r);
	while ((ret = trace_reader_next(r, &rec, err)) == 1)
		if (rec.msg.type != WAVE_RPC_SETUP &&
		    wave_rpc_msg_decode(&rec.msg, &c.dims, &d) == 0)
			on_record(&c, &rec, &d);
	free(c.load);
	return ret < 0 ? ret : 0;
}
