/* SPDX-License-Identifier: MIT */
/*
 * rpc messages (include/wave/rpc_msg.h): decoding checks every byte a peer
 * wrote against the sizes of its SETUP; encoding builds the bytes and then
 * decodes them, so the two can never disagree about what is valid.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <wave/rpc_msg.h>

#include "../../core/le.h"

/* Little-endian fields at the offsets of the wire structs (core/le.h). */
#define GET(p, s, f) wave_get_le((p) + offsetof(struct s, f), sizeof(((struct s *)0)->f))
#define PUT(p, s, f, v) wave_put_le((p) + offsetof(struct s, f), sizeof(((struct s *)0)->f), (v))

/* Shortest and longest report period a SETUP may announce. */
#define REPORT_NS_MIN UINT64_C(10000)
#define REPORT_NS_MAX UINT64_C(60000000000)

/* Are bytes [from, to) of the payload all zero? */
static int zero(const uint8_t *p, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		if (p[i])
			return 0;
	return 1;
}

WAVE_API int wave_rpc_dims_check(const struct wave_rpc_dims *d)
{
	if (!d)
		return -EINVAL;
	if (d->n_buckets == 0 || d->n_buckets > WAVE_RPC_MAX_BUCKETS ||
	    (d->n_buckets & (d->n_buckets - 1)) || d->max_workers == 0 ||
	    d->max_workers > WAVE_RPC_MAX_WORKERS || d->n_classes > WAVE_RPC_MAX_CLASSES ||
	    d->n_dispatchers > WAVE_RPC_MAX_DISPATCHERS)
		return -ERANGE;
	return 0;
}

static uint32_t n_entries(const struct wave_rpc_dims *d)
{
	return d->n_buckets + d->n_classes;
}

static int check_worker(uint32_t w, const struct wave_rpc_dims *d, int none_ok)
{
	return w < d->max_workers || (none_ok && w == WAVE_RPC_NO_WORKER) ? 0 : -ERANGE;
}

static int decode_setup(const uint8_t *p, struct wave_rpc_msg *m)
{
	if (!zero(p, offsetof(struct wave_rpc_wire_setup, reserved0),
		  offsetof(struct wave_rpc_wire_setup, report_ns)) ||
	    !zero(p, offsetof(struct wave_rpc_wire_setup, reserved1), WAVE_MSG_PAYLOAD))
		return -EBADMSG;
	m->dims.n_buckets = (uint32_t)GET(p, wave_rpc_wire_setup, n_buckets);
	m->dims.n_classes = (uint32_t)GET(p, wave_rpc_wire_setup, n_classes);
	m->dims.max_workers = (uint32_t)GET(p, wave_rpc_wire_setup, max_workers);
	m->dims.n_dispatchers = (uint32_t)GET(p, wave_rpc_wire_setup, n_dispatchers);
	m->epoch = (uint32_t)GET(p, wave_rpc_wire_setup, epoch);
	m->period_ns = GET(p, wave_rpc_wire_setup, report_ns);
	if (m->period_ns < REPORT_NS_MIN || m->period_ns > REPORT_NS_MAX)
		return -ERANGE;
	return wave_rpc_dims_check(&m->dims);
}

static int decode_worker(const uint8_t *p, const struct wave_rpc_dims *d, struct wave_rpc_msg *m)
{
	if (!zero(p, offsetof(struct wave_rpc_wire_worker, reserved), WAVE_MSG_PAYLOAD))
		return -EBADMSG;
	m->worker = (uint32_t)GET(p, wave_rpc_wire_worker, worker);
	m->gen = (uint32_t)GET(p, wave_rpc_wire_worker, gen);
	m->now_ns = GET(p, wave_rpc_wire_worker, now_ns);
	if (m->gen == 0)
		return -EBADMSG;
	return check_worker(m->worker, d, 0);
}

/* BUCKETS: @m->n entries from @m->bucket, each a worker or none. */
static int decode_buckets(const uint8_t *p, const struct wave_rpc_dims *d, struct wave_rpc_msg *m)
{
	const size_t ent = offsetof(struct wave_rpc_wire_buckets, e);
	int ret;

	if (m->n == 0 || m->n > WAVE_RPC_BUCKETS_PER_MSG ||
	    !zero(p, ent + 8u * m->n, WAVE_MSG_PAYLOAD))
		return -EBADMSG;
	m->bucket = wave_get_le32(p);
	m->epoch = wave_get_le32(p + 4);
	for (unsigned i = 0; i < m->n; i++) {
		m->e[i].a = wave_get_le32(p + ent + 8u * i);
		m->e[i].b = wave_get_le32(p + ent + 8u * i + 4);
		if ((ret = check_worker(m->e[i].a, d, 1)) < 0)
			return ret;
	}
	return m->bucket < n_entries(d) && m->n <= n_entries(d) - m->bucket ? 0 : -ERANGE;
}

static int decode_load(const uint8_t *p, const struct wave_rpc_dims *d, struct wave_rpc_msg *m)
{
	if (!zero(p, offsetof(struct wave_rpc_wire_load, reserved), WAVE_MSG_PAYLOAD))
		return -EBADMSG;
	m->worker = (uint32_t)GET(p, wave_rpc_wire_load, worker);
	m->queue_depth = (uint32_t)GET(p, wave_rpc_wire_load, queue_depth);
	m->busy_ns = GET(p, wave_rpc_wire_load, busy_ns);
	m->completions = GET(p, wave_rpc_wire_load, completions);
	m->service_ns = GET(p, wave_rpc_wire_load, service_ns);
	m->max_service_ns = GET(p, wave_rpc_wire_load, max_service_ns);
	return check_worker(m->worker, d, 0);
}

static int decode_class_load(const uint8_t *p, const struct wave_rpc_dims *d,
			     struct wave_rpc_msg *m)
{
	if (!zero(p, offsetof(struct wave_rpc_wire_class_load, reserved0),
		  offsetof(struct wave_rpc_wire_class_load, completions)) ||
	    !zero(p, offsetof(struct wave_rpc_wire_class_load, reserved), WAVE_MSG_PAYLOAD))
		return -EBADMSG;
	m->bucket = (uint32_t)GET(p, wave_rpc_wire_class_load, bucket);
	m->completions = GET(p, wave_rpc_wire_class_load, completions);
	m->service_ns = GET(p, wave_rpc_wire_class_load, service_ns);
	m->max_service_ns = GET(p, wave_rpc_wire_class_load, max_service_ns);
	return m->bucket >= d->n_buckets && m->bucket < n_entries(d) ? 0 : -ERANGE;
}

static int decode_arrivals(const uint8_t *p, const struct wave_rpc_dims *d, struct wave_rpc_msg *m)
{
	if (m->n == 0 || m->n > WAVE_RPC_ARRIVALS_PER_MSG || !zero(p, 8u * m->n, WAVE_MSG_PAYLOAD))
		return -EBADMSG;
	for (unsigned i = 0; i < m->n; i++) {
		m->e[i].a = wave_get_le32(p + 8u * i);
		m->e[i].b = wave_get_le32(p + 8u * i + 4);
		if (m->e[i].a >= n_entries(d))
			return -ERANGE;
	}
	return 0;
}

static int decode_report(const uint8_t *p, struct wave_rpc_msg *m)
{
	if (!zero(p, offsetof(struct wave_rpc_wire_report, reserved), WAVE_MSG_PAYLOAD))
		return -EBADMSG;
	m->period_ns = GET(p, wave_rpc_wire_report, period_ns);
	m->now_ns = GET(p, wave_rpc_wire_report, now_ns);
	return m->period_ns ? 0 : -EBADMSG;
}

/* MOVE names a table entry, PRESTAGE a dispatcher (and no sequence). */
static int check_target(uint16_t decision, uint32_t bucket, uint32_t seq,
			const struct wave_rpc_dims *d)
{
	if (decision == WAVE_RPC_PRESTAGE)
		return seq != 0 ? -EBADMSG : bucket < d->n_dispatchers ? 0 : -ERANGE;
	return bucket < n_entries(d) ? 0 : -ERANGE;
}

static int decode_decision(const uint8_t *p, const struct wave_rpc_dims *d, struct wave_rpc_msg *m)
{
	int ret;

	if (!zero(p, offsetof(struct wave_rpc_wire_decision, reserved0), WAVE_MSG_PAYLOAD))
		return -EBADMSG;
	m->bucket = (uint32_t)GET(p, wave_rpc_wire_decision, bucket);
	m->worker = (uint32_t)GET(p, wave_rpc_wire_decision, worker);
	m->gen = (uint32_t)GET(p, wave_rpc_wire_decision, gen);
	m->seq = (uint32_t)GET(p, wave_rpc_wire_decision, seq);
	m->epoch = (uint32_t)GET(p, wave_rpc_wire_decision, epoch);
	if (m->gen == 0)
		return -EBADMSG;
	if ((ret = check_target(m->type, m->bucket, m->seq, d)) < 0)
		return ret;
	return check_worker(m->worker, d, 0);
}

/* The details each result may carry (rpc.h); only a MOVE can find its
 * bucket moved, its worker already there, or the backend refusing. */
static int check_result(uint16_t decision, unsigned result, unsigned why)
{
	bool move = decision == WAVE_RPC_MOVE;

	switch (result) {
	case WAVE_COMMITTED:
		return why == WAVE_RPC_WHY_NONE;
	case WAVE_ABORT_GONE:
		return why == WAVE_RPC_WHY_WORKER_GONE;
	case WAVE_ABORT_STALE:
		return why == WAVE_RPC_WHY_EPOCH || (move && why == WAVE_RPC_WHY_BUCKET_MOVED);
	case WAVE_ABORT_NOT_ELIGIBLE:
		return move && why == WAVE_RPC_WHY_SAME_WORKER;
	case WAVE_ABORT_BUSY:
		return move && why == WAVE_RPC_WHY_BACKEND;
	default:
		return 0;
	}
}

static int decode_outcome(const uint8_t *p, const struct wave_rpc_dims *d, struct wave_rpc_msg *m)
{
	int ret;

	if (!zero(p, offsetof(struct wave_rpc_wire_outcome, reserved0), WAVE_MSG_PAYLOAD))
		return -EBADMSG;
	m->bucket = (uint32_t)GET(p, wave_rpc_wire_outcome, bucket);
	m->worker = (uint32_t)GET(p, wave_rpc_wire_outcome, worker);
	m->gen = (uint32_t)GET(p, wave_rpc_wire_outcome, gen);
	m->seq = (uint32_t)GET(p, wave_rpc_wire_outcome, seq);
	m->epoch = (uint32_t)GET(p, wave_rpc_wire_outcome, epoch);
	m->cur_worker = (uint32_t)GET(p, wave_rpc_wire_outcome, cur_worker);
	m->now_ns = GET(p, wave_rpc_wire_outcome, now_ns);
	m->decision = (uint16_t)GET(p, wave_rpc_wire_outcome, decision);
	m->result = (uint8_t)GET(p, wave_rpc_wire_outcome, result);
	m->why = (uint8_t)GET(p, wave_rpc_wire_outcome, why);
	if (m->decision != WAVE_RPC_MOVE && m->decision != WAVE_RPC_PRESTAGE)
		return -EBADMSG;
	if (m->gen == 0 || !check_result(m->decision, m->result, m->why))
		return -EBADMSG;
	if ((ret = check_target(m->decision, m->bucket, m->seq, d)) < 0 ||
	    (ret = check_worker(m->worker, d, 0)) < 0)
		return ret;
	return check_worker(m->cur_worker, d, 1);
}

static int decode_payload(const uint8_t *p, const struct wave_rpc_dims *d, struct wave_rpc_msg *m)
{
	switch (m->type) {
	case WAVE_RPC_WORKER_ADD:
	case WAVE_RPC_WORKER_DEL:
		return decode_worker(p, d, m);
	case WAVE_RPC_BUCKETS:
		return decode_buckets(p, d, m);
	case WAVE_RPC_LOAD:
		return decode_load(p, d, m);
	case WAVE_RPC_ARRIVALS:
		return decode_arrivals(p, d, m);
	case WAVE_RPC_CLASS_LOAD:
		return decode_class_load(p, d, m);
	case WAVE_RPC_REPORT:
		return decode_report(p, m);
	case WAVE_RPC_MOVE:
	case WAVE_RPC_PRESTAGE:
		return decode_decision(p, d, m);
	case WAVE_RPC_OUTCOME:
		return decode_outcome(p, d, m);
	default:
		return -ENOMSG;
	}
}

/* Types whose header flags carry an entry count. */
static bool counted(uint16_t type)
{
	return type == WAVE_RPC_BUCKETS || type == WAVE_RPC_ARRIVALS;
}

WAVE_API int wave_rpc_msg_decode(const struct wave_msg *in, const struct wave_rpc_dims *dims,
				 struct wave_rpc_msg *out)
{
	int ret;

	if (!in || !out || (dims && wave_rpc_dims_check(dims) < 0))
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (!wave_rpc_msg_type_name(in->type) || (in->type == WAVE_RPC_SETUP) != !dims)
		return -ENOMSG;
	if (in->flags > UINT8_MAX || (in->flags && !counted(in->type)))
		return -EBADMSG;
	out->type = in->type;
	out->n = (uint8_t)in->flags;
	ret = dims ? decode_payload(in->payload.u8, dims, out) : decode_setup(in->payload.u8, out);
	if (ret < 0)
		memset(out, 0, sizeof(*out));
	return ret;
}

/* The @m->n entries (at most @max) at payload offset @at. */
static void encode_entries(const struct wave_rpc_msg *m, uint8_t *p, size_t at, unsigned max)
{
	for (unsigned i = 0; i < m->n && i < max; i++) {
		wave_put_le32(p + at + 8u * i, m->e[i].a);
		wave_put_le32(p + at + 8u * i + 4, m->e[i].b);
	}
}

static void encode_payload(const struct wave_rpc_msg *m, uint8_t *p)
{
	switch (m->type) {
	case WAVE_RPC_SETUP:
		PUT(p, wave_rpc_wire_setup, n_buckets, m->dims.n_buckets);
		PUT(p, wave_rpc_wire_setup, n_classes, m->dims.n_classes);
		PUT(p, wave_rpc_wire_setup, max_workers, m->dims.max_workers);
		PUT(p, wave_rpc_wire_setup, n_dispatchers, m->dims.n_dispatchers);
		PUT(p, wave_rpc_wire_setup, epoch, m->epoch);
		PUT(p, wave_rpc_wire_setup, report_ns, m->period_ns);
		break;
	case WAVE_RPC_WORKER_ADD:
	case WAVE_RPC_WORKER_DEL:
		PUT(p, wave_rpc_wire_worker, worker, m->worker);
		PUT(p, wave_rpc_wire_worker, gen, m->gen);
		PUT(p, wave_rpc_wire_worker, now_ns, m->now_ns);
		break;
	case WAVE_RPC_BUCKETS:
		PUT(p, wave_rpc_wire_buckets, first, m->bucket);
		PUT(p, wave_rpc_wire_buckets, epoch, m->epoch);
		encode_entries(m, p, offsetof(struct wave_rpc_wire_buckets, e),
			       WAVE_RPC_BUCKETS_PER_MSG);
		break;
	case WAVE_RPC_LOAD:
		PUT(p, wave_rpc_wire_load, worker, m->worker);
		PUT(p, wave_rpc_wire_load, queue_depth, m->queue_depth);
		PUT(p, wave_rpc_wire_load, busy_ns, m->busy_ns);
		PUT(p, wave_rpc_wire_load, completions, m->completions);
		PUT(p, wave_rpc_wire_load, service_ns, m->service_ns);
		PUT(p, wave_rpc_wire_load, max_service_ns, m->max_service_ns);
		break;
	case WAVE_RPC_ARRIVALS:
		encode_entries(m, p, 0, WAVE_RPC_ARRIVALS_PER_MSG);
		break;
	case WAVE_RPC_CLASS_LOAD:
		PUT(p, wave_rpc_wire_class_load, bucket, m->bucket);
		PUT(p, wave_rpc_wire_class_load, completions, m->completions);
		PUT(p, wave_rpc_wire_class_load, service_ns, m->service_ns);
		PUT(p, wave_rpc_wire_class_load, max_service_ns, m->max_service_ns);
		break;
	case WAVE_RPC_REPORT:
		PUT(p, wave_rpc_wire_report, period_ns, m->period_ns);
		PUT(p, wave_rpc_wire_report, now_ns, m->now_ns);
		break;
	case WAVE_RPC_MOVE:
	case WAVE_RPC_PRESTAGE:
		PUT(p, wave_rpc_wire_decision, bucket, m->bucket);
		PUT(p, wave_rpc_wire_decision, worker, m->worker);
		PUT(p, wave_rpc_wire_decision, gen, m->gen);
		PUT(p, wave_rpc_wire_decision, seq, m->seq);
		PUT(p, wave_rpc_wire_decision, epoch, m->epoch);
		break;
	default: /* OUTCOME */
		PUT(p, wave_rpc_wire_outcome, bucket, m->bucket);
		PUT(p, wave_rpc_wire_outcome, worker, m->worker);
		PUT(p, wave_rpc_wire_outcome, gen, m->gen);
		PUT(p, wave_rpc_wire_outcome, seq, m->seq);
		PUT(p, wave_rpc_wire_outcome, epoch, m->epoch);
		PUT(p, wave_rpc_wire_outcome, cur_worker, m->cur_worker);
		PUT(p, wave_rpc_wire_outcome, now_ns, m->now_ns);
		PUT(p, wave_rpc_wire_outcome, decision, m->decision);
		PUT(p, wave_rpc_wire_outcome, result, m->result);
		PUT(p, wave_rpc_wire_outcome, why, m->why);
		break;
	}
}

/* Field by field: padding bytes of a caller's struct are not fields. */
static int same_fields(const struct wave_rpc_msg *a, const struct wave_rpc_msg *b)
{
	if (a->type != b->type || a->decision != b->decision || a->n != b->n ||
	    a->result != b->result || a->why != b->why || a->bucket != b->bucket ||
	    a->worker != b->worker || a->gen != b->gen || a->seq != b->seq ||
	    a->epoch != b->epoch || a->cur_worker != b->cur_worker ||
	    a->queue_depth != b->queue_depth || a->now_ns != b->now_ns ||
	    a->busy_ns != b->busy_ns || a->completions != b->completions ||
	    a->service_ns != b->service_ns || a->max_service_ns != b->max_service_ns ||
	    a->period_ns != b->period_ns)
		return 0;
	if (memcmp(&a->dims, &b->dims, sizeof(a->dims)) != 0)
		return 0;
	for (unsigned i = 0; i < WAVE_RPC_ARRIVALS_PER_MSG; i++)
		if (a->e[i].a != b->e[i].a || a->e[i].b != b->e[i].b)
			return 0;
	return 1;
}

WAVE_API int wave_rpc_msg_encode(const struct wave_rpc_msg *in, const struct wave_rpc_dims *dims,
				 struct wave_msg *out)
{
	struct wave_rpc_msg back;
	struct wave_msg m;
	int ret;

	if (!in || !out)
		return -EINVAL;
	memset(&m, 0, sizeof(m));
	m.type = in->type;
	m.flags = counted(in->type) ? in->n : 0;
	if (wave_rpc_msg_type_name(in->type))
		encode_payload(in, m.payload.u8);
	/* Decoding what was built applies every check once, in one place;
	 * comparing catches fields the type does not carry but @in set, and
	 * values too wide for their wire field. */
	if ((ret = wave_rpc_msg_decode(&m, dims, &back)) < 0)
		return ret;
	if (!same_fields(&back, in))
		return -EBADMSG;
	*out = m;
	return 0;
}

WAVE_API const char *wave_rpc_msg_type_name(uint16_t type)
{
	switch (type) {
	case WAVE_RPC_WORKER_ADD: return "worker_add";
	case WAVE_RPC_WORKER_DEL: return "worker_del";
	case WAVE_RPC_BUCKETS: return "buckets";
	case WAVE_RPC_LOAD: return "load";
	case WAVE_RPC_ARRIVALS: return "arrivals";
	case WAVE_RPC_REPORT: return "report";
	case WAVE_RPC_CLASS_LOAD: return "class_load";
	case WAVE_RPC_SETUP: return "setup";
	case WAVE_RPC_MOVE: return "move";
	case WAVE_RPC_PRESTAGE: return "prestage";
	case WAVE_RPC_OUTCOME: return "outcome";
	default: return NULL;
	}
}

WAVE_API const char *wave_rpc_abort_name(unsigned why)
{
	static const char *const names[WAVE_RPC_WHY_COUNT] = {
		[WAVE_RPC_WHY_NONE] = "none",
		[WAVE_RPC_WHY_WORKER_GONE] = "worker_gone",
		[WAVE_RPC_WHY_BUCKET_MOVED] = "bucket_moved",
		[WAVE_RPC_WHY_EPOCH] = "epoch",
		[WAVE_RPC_WHY_SAME_WORKER] = "same_worker",
		[WAVE_RPC_WHY_BACKEND] = "backend",
	};

	return why < WAVE_RPC_WHY_COUNT ? names[why] : NULL;
}
