/* SPDX-License-Identifier: MIT */
/*
 * A mem trace for people and scripts (mem_replay.h): Chrome/Perfetto
 * trace events, a track per tier, each migration a slice from the
 * decision to its outcome (an async slice named after its target tier,
 * since migrations overlap), decisions, aborts and faults as instant
 * events on their tier's track, and the chunks each tier holds as
 * counters at every tick; and each message's fields as JSON members, for
 * JSON lines. Times are microseconds of the recording machine's
 * CLOCK_MONOTONIC, as Chrome's format wants.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <wave/mem_msg.h>

#include "../../core/core.h"
#include "mem_replay.h"

/* The trace's tier count, or the most there can be when it has none. */
static uint32_t tiers_of(const struct trace_meta *meta)
{
	struct wave_mem_msg d;

	for (unsigned i = 0; i < meta->n_setup; i++)
		if (meta->setup[i].type == WAVE_MEM_SETUP &&
		    wave_mem_msg_decode(&meta->setup[i], 1, &d) == 0)
			return d.n;
	return WAVE_MEM_MAX_TIERS;
}

static int describe_setup(const struct wave_mem_msg *d, char *buf, size_t size)
{
	int len = replay_put(buf, size, 0, "\"name\":\"setup\",\"tiers\":[");

	for (unsigned t = 0; t < d->n; t++)
		len = replay_put(buf, size, len, "%s{\"kind\":\"%s\",\"capacity\":%" PRIu32 "}",
			  t ? "," : "", d->kind[t] == WAVE_MEM_KIND_FAR ? "far" : "numa",
			  d->capacity[t]);
	return replay_put(buf, size, len, "]");
}

int mem_replay_describe(const struct trace_meta *meta, const struct wave_msg *m, char *buf,
			size_t size)
{
	struct wave_mem_msg d;
	int len;

	if (wave_mem_msg_decode(m, tiers_of(meta), &d) < 0)
		return -1;
	if (d.type == WAVE_MEM_SETUP)
		return describe_setup(&d, buf, size) < 0 ? -1 : 0;
	len = replay_put(buf, size, 0, "\"name\":\"%s\"", wave_mem_msg_type_name(d.type));
	switch (d.type) {
	case WAVE_MEM_REGION_ADD:
		len = replay_put(buf, size, len,
			  ",\"region\":%" PRIu32 ",\"tier\":%" PRIu32 ",\"count\":%" PRIu64
			  ",\"chunk_size\":%" PRIu64 ",\"seq\":%" PRIu64,
			  d.region, d.tier, d.count, d.chunk_size, d.seq);
		break;
	case WAVE_MEM_REGION_DEL:
		len = replay_put(buf, size, len, ",\"region\":%" PRIu32, d.region);
		break;
	case WAVE_MEM_SAMPLES:
		len = replay_put(buf, size, len, ",\"region\":%" PRIu32 ",\"chunks\":[", d.region);
		for (unsigned i = 0; i < d.n; i++)
			len = replay_put(buf, size, len, "%s[%" PRIu32 ",%u]", i ? "," : "", d.index[i],
				  d.accesses[i]);
		len = replay_put(buf, size, len, "]");
		break;
	case WAVE_MEM_PRESSURE:
		len = replay_put(buf, size, len, ",\"tier\":%" PRIu32 ",\"free\":%" PRIu64, d.tier,
			  d.count);
		break;
	case WAVE_MEM_TICK:
		break;
	default: /* a chunk's: CHUNK_CHANGED, FAULT, the decisions, OUTCOME */
		len = replay_put(buf, size, len, ",\"chunk\":%" PRIu64 ",\"tier\":%" PRIu32
			  ",\"seq\":%" PRIu64, d.chunk, d.tier, d.seq);
		if (d.type == WAVE_MEM_OUTCOME)
			len = replay_put(buf, size, len, ",\"decision\":\"%s\",\"result\":\"%s\","
				  "\"new_seq\":%" PRIu64, wave_mem_msg_type_name(d.decision),
				  wave_result_name(d.result), d.new_seq);
	}
	if (d.now_ns)
		len = replay_put(buf, size, len, ",\"now_ns\":%" PRIu64, d.now_ns);
	return len < 0 ? -1 : 0;
}

/* ---- Chrome / Perfetto ------------------------------------------------- */

struct chrome {
	struct replay_chrome out;
	uint32_t n_tiers;
};

static void instant(struct chrome *c, uint64_t t, uint32_t tier, const char *what,
		    uint64_t chunk, const char *why)
{
	replay_chrome_next(&c->out);
	fprintf(c->out.f,
		"{\"name\":\"%s %" PRIu32 ":%" PRIu32 "%s%s\",\"ph\":\"i\",\"s\":\"t\","
		"\"ts\":%.3f,\"pid\":%" PRIu64 ",\"tid\":%" PRIu32 "}",
		what, (uint32_t)(chunk >> 32), (uint32_t)chunk, why ? ": " : "", why ? why : "",
		replay_us(t), c->out.pid, tier);
}

/* A migration's async slice: begins at its decision, ends at its outcome
 * (the host answers each decision once; a chunk has one in flight). */
static void migration(struct chrome *c, char ph, uint64_t t, const struct wave_mem_msg *d,
		      uint16_t kind)
{
	replay_chrome_next(&c->out);
	fprintf(c->out.f,
		"{\"name\":\"to tier %" PRIu32 "\",\"cat\":\"%s\",\"ph\":\"%c\","
		"\"id\":\"0x%" PRIx64 "\",\"ts\":%.3f,\"pid\":%" PRIu64 ",\"tid\":%" PRIu32,
		d->tier, wave_mem_msg_type_name(kind), ph, d->chunk, replay_us(t), c->out.pid, d->tier);
	if (ph == 'e')
		fprintf(c->out.f, ",\"args\":{\"result\":\"%s\"}", wave_result_name(d->result));
	fputs("}", c->out.f);
}

static void counters(struct chrome *c, const struct mhost *h, uint64_t t)
{
	replay_chrome_next(&c->out);
	fprintf(c->out.f,
		"{\"name\":\"chunks\",\"ph\":\"C\",\"ts\":%.3f,\"pid\":%" PRIu64 ",\"args\":{",
		replay_us(t), c->out.pid);
	for (uint32_t i = 0; i < c->n_tiers; i++)
		fprintf(c->out.f, "%s\"tier %" PRIu32 "\":%" PRIu64, i ? "," : "", i,
			mem_replay_host_used(h, i));
	fputs("}}", c->out.f);
}

static void tracks(struct chrome *c, const struct trace_meta *meta, const struct wave_msg *setup)
{
	struct wave_mem_msg d;

	char name[32];

	(void)wave_mem_msg_decode(setup, 1, &d);
	replay_chrome_process(&c->out, meta, "mem");
	for (uint32_t i = 0; i < c->n_tiers; i++) {
		snprintf(name, sizeof(name), "tier %u (%s)", i,
			 d.kind[i] == WAVE_MEM_KIND_FAR ? "far" : "numa");
		replay_chrome_track(&c->out, i, name);
	}
}

static void on_record(struct chrome *c, struct mhost *h, const struct trace_rec *rec,
		      const struct wave_mem_msg *d)
{
	uint64_t t = d->now_ns ? d->now_ns : rec->t_ns;

	if (rec->kind != TRACE_EVENT) {
		if (rec->kind == TRACE_DECISION)
			migration(c, 'b', rec->t_ns, d, d->type);
		instant(c, rec->t_ns, d->tier,
			rec->kind == TRACE_DROPPED ? "dropped" : wave_mem_msg_type_name(d->type),
			d->chunk, NULL);
		return;
	}
	mem_replay_host_event(h, d);
	switch (d->type) {
	case WAVE_MEM_OUTCOME:
		migration(c, 'e', t, d, d->decision);
		if (d->result != WAVE_COMMITTED)
			instant(c, t, d->tier, "abort", d->chunk, wave_result_name(d->result));
		break;
	case WAVE_MEM_FAULT:
		instant(c, t, d->tier, "fault", d->chunk, NULL);
		break;
	case WAVE_MEM_TICK:
		counters(c, h, t);
		break;
	default:
		break;
	}
}

int mem_replay_chrome(struct trace_reader *r, FILE *f, struct wave_error *err)
{
	const struct trace_meta *meta = trace_reader_meta(r);
	struct chrome c = { .out = { .f = f, .first = true, .pid = meta->host_id } };
	struct wave_mem_msg d;
	struct wave_msg setup;
	struct trace_rec rec;
	struct mhost *h;
	int ret;

	if (mem_replay_setup(r, &setup, &c.n_tiers) < 0)
		return wave_error_set(err, -EBADMSG, "replay", 0, 0,
				      "the trace has no mem SETUP (the host's tiers)");
	if (!(h = mem_replay_host_new(&setup)))
		return wave_error_set(err, -ENOMEM, "replay", 0, 0, "out of memory");
	tracks(&c, meta, &setup);
	trace_reader_rewind(r);
	while ((ret = trace_reader_next(r, &rec, err)) == 1)
		if (rec.msg.type != WAVE_MEM_SETUP &&
		    wave_mem_msg_decode(&rec.msg, c.n_tiers, &d) == 0)
			on_record(&c, h, &rec, &d);
	mem_replay_host_free(h);
	return ret < 0 ? ret : 0;
}
