/* SPDX-License-Identifier: MIT */
/*
 * Mem messages: decoding checks every byte a peer wrote; encoding builds
 * the bytes and then decodes them, so the two can never disagree about what
 * is valid.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <wave/mem_msg.h>

#include "../../core/le.h"

/* Little-endian fields at the offsets of the wire structs (core/le.h). */
#define OFF(s, f) offsetof(struct s, f)
#define GET(p, s, f) wave_get_le((p) + OFF(s, f), sizeof(((struct s *)0)->f))
#define PUT(p, s, f, v) wave_put_le((p) + OFF(s, f), sizeof(((struct s *)0)->f), (v))

/* Are bytes [from, to) of the payload all zero? */
static bool zero(const uint8_t *p, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		if (p[i])
			return false;
	return true;
}

static int check_tier(uint32_t tier, uint32_t n_tiers)
{
	return tier < n_tiers ? 0 : -ERANGE;
}

/* ---- events ------------------------------------------------------------ */

/* Tier 0 is NUMA; a far tier, if any, is the last; unused tiers are 0. */
static int check_tiers(const struct wave_mem_msg *m)
{
	if (m->n == 0 || m->n > WAVE_MEM_MAX_TIERS || m->kind[0] != WAVE_MEM_KIND_NUMA)
		return -EBADMSG;
	for (unsigned t = 0; t < WAVE_MEM_MAX_TIERS; t++) {
		bool used = t < m->n;
		bool numa = m->kind[t] == WAVE_MEM_KIND_NUMA;
		bool far = m->kind[t] == WAVE_MEM_KIND_FAR && t + 1u == m->n;

		if (used ? !(numa || far) || m->capacity[t] == 0 : m->kind[t] || m->capacity[t])
			return -EBADMSG;
	}
	return 0;
}

static int decode_setup(const uint8_t *p, struct wave_mem_msg *m)
{
	if (!zero(p, OFF(wave_mem_wire_setup, reserved), WAVE_MSG_PAYLOAD))
		return -EBADMSG;
	for (unsigned t = 0; t < WAVE_MEM_MAX_TIERS; t++) {
		m->capacity[t] = wave_get_le32(p + OFF(wave_mem_wire_setup, capacity) + 4 * t);
		m->kind[t] = p[OFF(wave_mem_wire_setup, kind) + t];
	}
	m->n = (uint8_t)GET(p, wave_mem_wire_setup, n_tiers);
	return check_tiers(m);
}

static int decode_region(const uint8_t *p, uint32_t n_tiers, struct wave_mem_msg *m)
{
	bool add = m->type == WAVE_MEM_REGION_ADD;

	if (!zero(p, OFF(wave_mem_wire_region, reserved), WAVE_MSG_PAYLOAD))
		return -EBADMSG;
	m->region = (uint32_t)GET(p, wave_mem_wire_region, region);
	m->tier = (uint32_t)GET(p, wave_mem_wire_region, tier);
	m->count = GET(p, wave_mem_wire_region, count);
	m->chunk_size = GET(p, wave_mem_wire_region, chunk_size);
	m->seq = GET(p, wave_mem_wire_region, seq);
	m->now_ns = GET(p, wave_mem_wire_region, now_ns);
	if (!add)
		return m->tier || m->count || m->chunk_size || m->seq ? -EBADMSG : 0;
	if (m->count == 0 || m->count > WAVE_MEM_REGION_MAX_CHUNKS ||
	    m->chunk_size < WAVE_MEM_CHUNK_MIN || m->chunk_size > WAVE_MEM_CHUNK_MAX ||
	    (m->chunk_size & (m->chunk_size - 1)))
		return -EBADMSG;
	return check_tier(m->tier, n_tiers);
}

static int decode_chunk(const uint8_t *p, uint32_t n_tiers, struct wave_mem_msg *m)
{
	if (!zero(p, OFF(wave_mem_wire_chunk, reserved0), WAVE_MSG_PAYLOAD))
		return -EBADMSG;
	m->chunk = GET(p, wave_mem_wire_chunk, chunk);
	m->seq = GET(p, wave_mem_wire_chunk, seq);
	m->now_ns = GET(p, wave_mem_wire_chunk, now_ns);
	m->tier = (uint32_t)GET(p, wave_mem_wire_chunk, tier);
	return check_tier(m->tier, n_tiers);
}

static int decode_samples(const uint8_t *p, struct wave_mem_msg *m)
{
	if (!zero(p, OFF(wave_mem_wire_samples, reserved), OFF(wave_mem_wire_samples, index)))
		return -EBADMSG;
	m->region = (uint32_t)GET(p, wave_mem_wire_samples, region);
	m->n = (uint8_t)GET(p, wave_mem_wire_samples, n);
	if (m->n == 0 || m->n > WAVE_MEM_SAMPLES_MAX)
		return -EBADMSG;
	for (unsigned i = 0; i < WAVE_MEM_SAMPLES_MAX; i++) {
		m->index[i] = wave_get_le32(p + OFF(wave_mem_wire_samples, index) + 4 * i);
		m->accesses[i] = p[OFF(wave_mem_wire_samples, accesses) + i];
		if (i < m->n ? m->accesses[i] == 0 : m->index[i] || m->accesses[i])
			return -EBADMSG;
	}
	return 0;
}

static int decode_pressure(const uint8_t *p, uint32_t n_tiers, struct wave_mem_msg *m)
{
	if (!zero(p, OFF(wave_mem_wire_pressure, reserved0), OFF(wave_mem_wire_pressure, count)) ||
	    !zero(p, OFF(wave_mem_wire_pressure, reserved1), WAVE_MSG_PAYLOAD))
		return -EBADMSG;
	m->tier = (uint32_t)GET(p, wave_mem_wire_pressure, tier);
	m->count = GET(p, wave_mem_wire_pressure, count);
	m->now_ns = GET(p, wave_mem_wire_pressure, now_ns);
	if (m->type == WAVE_MEM_TICK)
		return m->tier || m->count ? -EBADMSG : 0;
	return check_tier(m->tier, n_tiers);
}

/* ---- decisions and outcomes ------------------------------------------- */

static bool is_decision(uint16_t type)
{
	return type == WAVE_MEM_MIGRATE || type == WAVE_MEM_VICTIM || type == WAVE_MEM_PREFETCH;
}

static int decode_decision(const uint8_t *p, uint32_t n_tiers, struct wave_mem_msg *m)
{
	if (!zero(p, OFF(wave_mem_wire_decision, reserved0), WAVE_MSG_PAYLOAD))
		return -EBADMSG;
	m->chunk = GET(p, wave_mem_wire_decision, chunk);
	m->seq = GET(p, wave_mem_wire_decision, seq);
	m->tier = (uint32_t)GET(p, wave_mem_wire_decision, tier);
	return check_tier(m->tier, n_tiers);
}

static int decode_outcome(const uint8_t *p, uint32_t n_tiers, struct wave_mem_msg *m)
{
	bool committed;

	if (!zero(p, OFF(wave_mem_wire_outcome, reserved0), WAVE_MSG_PAYLOAD))
		return -EBADMSG;
	m->chunk = GET(p, wave_mem_wire_outcome, chunk);
	m->seq = GET(p, wave_mem_wire_outcome, seq);
	m->new_seq = GET(p, wave_mem_wire_outcome, new_seq);
	m->now_ns = GET(p, wave_mem_wire_outcome, now_ns);
	m->tier = (uint32_t)GET(p, wave_mem_wire_outcome, tier);
	m->decision = (uint16_t)GET(p, wave_mem_wire_outcome, decision);
	m->result = (uint8_t)GET(p, wave_mem_wire_outcome, result);
	committed = m->result == WAVE_COMMITTED;
	if (!is_decision(m->decision) || m->result >= WAVE_RESULT_COUNT ||
	    (committed ? m->new_seq <= m->seq : m->new_seq != 0))
		return -EBADMSG;
	return check_tier(m->tier, n_tiers);
}

static int decode_payload(const uint8_t *p, uint32_t n_tiers, struct wave_mem_msg *m)
{
	switch (m->type) {
	case WAVE_MEM_SETUP:
		return decode_setup(p, m);
	case WAVE_MEM_REGION_ADD:
	case WAVE_MEM_REGION_DEL:
		return decode_region(p, n_tiers, m);
	case WAVE_MEM_CHUNK_CHANGED:
	case WAVE_MEM_FAULT:
		return decode_chunk(p, n_tiers, m);
	case WAVE_MEM_SAMPLES:
		return decode_samples(p, m);
	case WAVE_MEM_PRESSURE:
	case WAVE_MEM_TICK:
		return decode_pressure(p, n_tiers, m);
	case WAVE_MEM_OUTCOME:
		return decode_outcome(p, n_tiers, m);
	default: /* wave_mem_msg_type_name() let only decisions and KEEP through */
		return decode_decision(p, n_tiers, m);
	}
}

WAVE_API int wave_mem_msg_decode(const struct wave_msg *in, uint32_t n_tiers,
				 struct wave_mem_msg *out)
{
	int ret;

	if (!in || !out || n_tiers == 0 || n_tiers > WAVE_MEM_MAX_TIERS)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (!wave_mem_msg_type_name(in->type))
		return -ENOMSG;
	if (in->flags != 0)
		return -EBADMSG;
	out->type = in->type;
	ret = decode_payload(in->payload.u8, n_tiers, out);
	if (ret < 0)
		memset(out, 0, sizeof(*out));
	return ret;
}

/* ---- encoding ----------------------------------------------------------- */

static void encode_payload(const struct wave_mem_msg *m, uint8_t *p)
{
	switch (m->type) {
	case WAVE_MEM_SETUP:
		for (unsigned t = 0; t < WAVE_MEM_MAX_TIERS; t++) {
			wave_put_le32(p + OFF(wave_mem_wire_setup, capacity) + 4 * t,
				      m->capacity[t]);
			p[OFF(wave_mem_wire_setup, kind) + t] = m->kind[t];
		}
		PUT(p, wave_mem_wire_setup, n_tiers, m->n);
		break;
	case WAVE_MEM_REGION_ADD:
	case WAVE_MEM_REGION_DEL:
		PUT(p, wave_mem_wire_region, region, m->region);
		PUT(p, wave_mem_wire_region, tier, m->tier);
		PUT(p, wave_mem_wire_region, count, m->count);
		PUT(p, wave_mem_wire_region, chunk_size, m->chunk_size);
		PUT(p, wave_mem_wire_region, seq, m->seq);
		PUT(p, wave_mem_wire_region, now_ns, m->now_ns);
		break;
	case WAVE_MEM_CHUNK_CHANGED:
	case WAVE_MEM_FAULT:
		PUT(p, wave_mem_wire_chunk, chunk, m->chunk);
		PUT(p, wave_mem_wire_chunk, seq, m->seq);
		PUT(p, wave_mem_wire_chunk, now_ns, m->now_ns);
		PUT(p, wave_mem_wire_chunk, tier, m->tier);
		break;
	case WAVE_MEM_SAMPLES:
		PUT(p, wave_mem_wire_samples, region, m->region);
		PUT(p, wave_mem_wire_samples, n, m->n);
		for (unsigned i = 0; i < WAVE_MEM_SAMPLES_MAX; i++) {
			wave_put_le32(p + OFF(wave_mem_wire_samples, index) + 4 * i, m->index[i]);
			p[OFF(wave_mem_wire_samples, accesses) + i] = m->accesses[i];
		}
		break;
	case WAVE_MEM_PRESSURE:
	case WAVE_MEM_TICK:
		PUT(p, wave_mem_wire_pressure, tier, m->tier);
		PUT(p, wave_mem_wire_pressure, count, m->count);
		PUT(p, wave_mem_wire_pressure, now_ns, m->now_ns);
		break;
	case WAVE_MEM_OUTCOME:
		PUT(p, wave_mem_wire_outcome, chunk, m->chunk);
		PUT(p, wave_mem_wire_outcome, seq, m->seq);
		PUT(p, wave_mem_wire_outcome, new_seq, m->new_seq);
		PUT(p, wave_mem_wire_outcome, now_ns, m->now_ns);
		PUT(p, wave_mem_wire_outcome, tier, m->tier);
		PUT(p, wave_mem_wire_outcome, decision, m->decision);
		PUT(p, wave_mem_wire_outcome, result, m->result);
		break;
	default: /* decisions and KEEP */
		PUT(p, wave_mem_wire_decision, chunk, m->chunk);
		PUT(p, wave_mem_wire_decision, seq, m->seq);
		PUT(p, wave_mem_wire_decision, tier, m->tier);
		break;
	}
}

/* Field by field: padding bytes of a caller's struct are not fields. */
static bool same_fields(const struct wave_mem_msg *a, const struct wave_mem_msg *b)
{
	return a->type == b->type && a->decision == b->decision && a->result == b->result &&
	       a->n == b->n && a->tier == b->tier && a->region == b->region &&
	       a->chunk == b->chunk && a->seq == b->seq && a->new_seq == b->new_seq &&
	       a->now_ns == b->now_ns && a->count == b->count && a->chunk_size == b->chunk_size &&
	       !memcmp(a->index, b->index, sizeof(a->index)) &&
	       !memcmp(a->accesses, b->accesses, sizeof(a->accesses)) &&
	       !memcmp(a->capacity, b->capacity, sizeof(a->capacity)) &&
	       !memcmp(a->kind, b->kind, sizeof(a->kind));
}

WAVE_API int wave_mem_msg_encode(const struct wave_mem_msg *in, uint32_t n_tiers,
				 struct wave_msg *out)
{
	struct wave_mem_msg back;
	struct wave_msg m;
	int ret;

	if (!in || !out)
		return -EINVAL;
	memset(&m, 0, sizeof(m));
	m.type = in->type;
	if (wave_mem_msg_type_name(in->type))
		encode_payload(in, m.payload.u8);
	/* Decoding what was built applies every check once, in one place;
	 * comparing catches fields the type does not carry but @in set, and
	 * values too wide for their wire field. */
	if ((ret = wave_mem_msg_decode(&m, n_tiers, &back)) < 0)
		return ret;
	if (!same_fields(&back, in))
		return -EBADMSG;
	*out = m;
	return 0;
}

WAVE_API const char *wave_mem_msg_type_name(uint16_t type)
{
	switch (type) {
	case WAVE_MEM_SETUP: return "setup";
	case WAVE_MEM_REGION_ADD: return "region_add";
	case WAVE_MEM_REGION_DEL: return "region_del";
	case WAVE_MEM_CHUNK_CHANGED: return "chunk";
	case WAVE_MEM_SAMPLES: return "samples";
	case WAVE_MEM_FAULT: return "fault";
	case WAVE_MEM_PRESSURE: return "pressure";
	case WAVE_MEM_TICK: return "tick";
	case WAVE_MEM_MIGRATE: return "migrate";
	case WAVE_MEM_VICTIM: return "victim";
	case WAVE_MEM_PREFETCH: return "prefetch";
	case WAVE_MEM_KEEP: return "keep";
	case WAVE_MEM_OUTCOME: return "outcome";
	default: return NULL;
	}
}
