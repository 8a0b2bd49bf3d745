/* SPDX-License-Identifier: MIT */
/*
 * The mem domain's wire format: every type round-trips through encode and
 * decode with the bytes at the offsets the header documents, and each
 * check of the decoder refuses what it should (a field of a type that
 * does not carry it, reserved bytes, tiers, counts, sizes, results).
 */
#include <errno.h>
#include <string.h>

#include <check.h>
#include <wave/mem_msg.h>

#include "check_run.h"

#define NT 3u /* tiers of the domain the messages are checked against */

static struct wave_msg enc(const struct wave_mem_msg *d)
{
	struct wave_msg m;

	ck_assert_int_eq(wave_mem_msg_encode(d, NT, &m), 0);
	return m;
}

/* Decodes @m, expecting @want. */
static void dec_expect(const struct wave_msg *m, int want)
{
	struct wave_mem_msg d;

	ck_assert_int_eq(wave_mem_msg_decode(m, NT, &d), want);
}

/* Encoding already decodes and compares field by field (it fails on any
 * difference); decoding and encoding again gives the same bytes. */
static void round_trip(const struct wave_mem_msg *d)
{
	struct wave_msg m = enc(d), again;
	struct wave_mem_msg back;

	ck_assert_int_eq(wave_mem_msg_decode(&m, NT, &back), 0);
	ck_assert_int_eq(back.type, d->type);
	ck_assert_uint_eq(back.chunk, d->chunk);
	ck_assert_uint_eq(back.seq, d->seq);
	again = enc(&back);
	ck_assert_int_eq(memcmp(&again, &m, sizeof(m)), 0);
}

static struct wave_mem_msg setup_msg(void)
{
	struct wave_mem_msg d = { .type = WAVE_MEM_SETUP, .n = 3 };

	d.kind[0] = d.kind[1] = WAVE_MEM_KIND_NUMA;
	d.kind[2] = WAVE_MEM_KIND_FAR;
	d.capacity[0] = 100;
	d.capacity[1] = 1000;
	d.capacity[2] = WAVE_MEM_CAP_NONE;
	return d;
}

START_TEST(every_type_round_trips)
{
	struct wave_mem_msg s = setup_msg();
	struct wave_mem_msg add = { .type = WAVE_MEM_REGION_ADD, .region = 7, .tier = 1,
				    .count = 1u << 20, .chunk_size = 65536, .seq = 3, .now_ns = 9 };
	struct wave_mem_msg del = { .type = WAVE_MEM_REGION_DEL, .region = 7, .now_ns = 10 };
	struct wave_mem_msg ch = { .type = WAVE_MEM_CHUNK_CHANGED, .chunk = (7ull << 32) | 5,
				   .seq = 4, .tier = 2, .now_ns = 11 };
	struct wave_mem_msg fault = ch;
	struct wave_mem_msg smp = { .type = WAVE_MEM_SAMPLES, .region = 7, .n = 8 };
	struct wave_mem_msg pr = { .type = WAVE_MEM_PRESSURE, .tier = 0, .count = 5, .now_ns = 12 };
	struct wave_mem_msg tick = { .type = WAVE_MEM_TICK, .now_ns = 13 };
	struct wave_mem_msg out = { .type = WAVE_MEM_OUTCOME, .chunk = 42, .seq = 4, .new_seq = 5,
				    .now_ns = 14, .tier = 2, .decision = WAVE_MEM_VICTIM };
	static const uint16_t decisions[] = { WAVE_MEM_MIGRATE, WAVE_MEM_VICTIM,
					      WAVE_MEM_PREFETCH };

	fault.type = WAVE_MEM_FAULT;
	for (unsigned i = 0; i < 8; i++) {
		smp.index[i] = 1000 + i;
		smp.accesses[i] = (uint8_t)(i + 1);
	}
	round_trip(&s);
	round_trip(&add);
	round_trip(&del);
	round_trip(&ch);
	round_trip(&fault);
	round_trip(&smp);
	round_trip(&pr);
	round_trip(&tick);
	round_trip(&out);
	out.result = WAVE_ABORT_BUSY;
	out.new_seq = 0;
	round_trip(&out);
	for (unsigned i = 0; i < 3; i++) {
		struct wave_mem_msg d = { .type = decisions[i], .chunk = ~0ull, .tier = 2 };

		round_trip(&d);
		ck_assert_str_eq(wave_mem_msg_type_name(decisions[i]),
				 i == 0 ? "migrate" : i == 1 ? "victim" : "prefetch");
	}
}
END_TEST

/* The bytes are where the header's structs say, little-endian. */
START_TEST(layout_is_the_documented_one)
{
	struct wave_mem_msg add = { .type = WAVE_MEM_REGION_ADD, .region = 0x01020304, .tier = 2,
				    .count = 0x100, .chunk_size = 4096,
				    .seq = 0x1122334455667788ull };
	struct wave_mem_msg out = { .type = WAVE_MEM_OUTCOME, .chunk = 1, .seq = 2, .new_seq = 3,
				    .tier = 1, .decision = WAVE_MEM_PREFETCH };
	struct wave_mem_msg s = setup_msg();
	struct wave_msg m = enc(&add);
	const uint8_t *p = m.payload.u8;

	ck_assert_uint_eq(m.type, 0x0201);
	ck_assert(p[0] == 0x04 && p[3] == 0x01 && p[4] == 2);
	ck_assert(p[8] == 0x00 && p[9] == 0x01);
	ck_assert(p[24] == 0x88 && p[31] == 0x11);
	m = enc(&out);
	ck_assert_uint_eq(m.type, 0x0280);
	ck_assert(p[16] == 3 && p[32] == 1 && p[36] == 0x42 && p[37] == 0x02 && p[38] == 0);
	m = enc(&s);
	ck_assert_uint_eq(m.type, 0x0220);
	ck_assert(p[0] == 100 && p[4] == 0xe8 && p[5] == 0x03 && p[8] == 0xff && p[11] == 0xff);
	ck_assert(p[32] == 1 && p[33] == 1 && p[34] == 2 && p[35] == 0 && p[40] == 3);
}
END_TEST

START_TEST(refuses_bad_fields)
{
	struct wave_mem_msg add = { .type = WAVE_MEM_REGION_ADD, .region = 1, .count = 8,
				    .chunk_size = 4096 };
	struct wave_mem_msg d;
	struct wave_msg m;

	/* Values the decoder refuses cannot be encoded either. */
	d = add, d.chunk_size = 2048;
	ck_assert_int_eq(wave_mem_msg_encode(&d, NT, &m), -EBADMSG);
	d = add, d.chunk_size = 3u << 12;
	ck_assert_int_eq(wave_mem_msg_encode(&d, NT, &m), -EBADMSG);
	d = add, d.chunk_size = 4u << 20;
	ck_assert_int_eq(wave_mem_msg_encode(&d, NT, &m), -EBADMSG);
	d = add, d.count = 0;
	ck_assert_int_eq(wave_mem_msg_encode(&d, NT, &m), -EBADMSG);
	d = add, d.count = (1ull << 32) + 1;
	ck_assert_int_eq(wave_mem_msg_encode(&d, NT, &m), -EBADMSG);
	d = add, d.tier = NT;
	ck_assert_int_eq(wave_mem_msg_encode(&d, NT, &m), -ERANGE);
	/* A field the type does not carry. */
	d = add, d.chunk = 1;
	ck_assert_int_eq(wave_mem_msg_encode(&d, NT, &m), -EBADMSG);
	d = (struct wave_mem_msg){ .type = WAVE_MEM_REGION_DEL, .region = 1, .seq = 1 };
	ck_assert_int_eq(wave_mem_msg_encode(&d, NT, &m), -EBADMSG);
	d = (struct wave_mem_msg){ .type = WAVE_MEM_TICK, .tier = 1 };
	ck_assert_int_eq(wave_mem_msg_encode(&d, NT, &m), -EBADMSG);
	/* Samples: 1..8 entries, each touched at least once, the rest 0. */
	d = (struct wave_mem_msg){ .type = WAVE_MEM_SAMPLES, .region = 1, .n = 0 };
	ck_assert_int_eq(wave_mem_msg_encode(&d, NT, &m), -EBADMSG);
	d.n = 2, d.accesses[0] = 1;
	ck_assert_int_eq(wave_mem_msg_encode(&d, NT, &m), -EBADMSG);
	d.accesses[1] = 1, d.index[2] = 5;
	ck_assert_int_eq(wave_mem_msg_encode(&d, NT, &m), -EBADMSG);
	/* Outcomes: a known decision and result; new_seq only when committed,
	 * and then past seq. */
	d = (struct wave_mem_msg){ .type = WAVE_MEM_OUTCOME, .chunk = 1, .seq = 5, .new_seq = 5,
				   .decision = WAVE_MEM_MIGRATE };
	ck_assert_int_eq(wave_mem_msg_encode(&d, NT, &m), -EBADMSG);
	d.result = WAVE_ABORT_STALE;
	ck_assert_int_eq(wave_mem_msg_encode(&d, NT, &m), -EBADMSG);
	d.new_seq = 0, d.result = WAVE_RESULT_COUNT;
	ck_assert_int_eq(wave_mem_msg_encode(&d, NT, &m), -EBADMSG);
	d.result = WAVE_ABORT_GONE, d.decision = WAVE_MEM_OUTCOME;
	ck_assert_int_eq(wave_mem_msg_encode(&d, NT, &m), -EBADMSG);
	d.decision = WAVE_MEM_PREFETCH;
	ck_assert_int_eq(wave_mem_msg_encode(&d, NT, &m), 0);
}
END_TEST

START_TEST(refuses_bad_setup)
{
	struct wave_mem_msg d;
	struct wave_msg m;

	d = setup_msg(), d.n = 0;
	ck_assert_int_eq(wave_mem_msg_encode(&d, NT, &m), -EBADMSG);
	d = setup_msg(), d.n = 9;
	ck_assert_int_eq(wave_mem_msg_encode(&d, NT, &m), -EBADMSG);
	d = setup_msg(), d.kind[0] = WAVE_MEM_KIND_FAR; /* tier 0 is NUMA */
	ck_assert_int_eq(wave_mem_msg_encode(&d, NT, &m), -EBADMSG);
	d = setup_msg(), d.kind[1] = WAVE_MEM_KIND_FAR; /* far only last */
	ck_assert_int_eq(wave_mem_msg_encode(&d, NT, &m), -EBADMSG);
	d = setup_msg(), d.kind[2] = 3;
	ck_assert_int_eq(wave_mem_msg_encode(&d, NT, &m), -EBADMSG);
	d = setup_msg(), d.capacity[1] = 0;
	ck_assert_int_eq(wave_mem_msg_encode(&d, NT, &m), -EBADMSG);
	d = setup_msg(), d.capacity[3] = 1; /* past n_tiers */
	ck_assert_int_eq(wave_mem_msg_encode(&d, NT, &m), -EBADMSG);
	/* A SETUP does not depend on the tier count it is decoded with. */
	d = setup_msg(), d.n = 8;
	for (unsigned t = 3; t < 8; t++)
		d.kind[t] = WAVE_MEM_KIND_NUMA, d.capacity[t] = 1;
	d.kind[2] = WAVE_MEM_KIND_NUMA, d.kind[7] = WAVE_MEM_KIND_FAR;
	ck_assert_int_eq(wave_mem_msg_encode(&d, 1, &m), 0);
}
END_TEST

/* Any non-zero byte where the layout has reserved room, and header flags,
 * are refused; a type outside the domain is not a mem message. */
START_TEST(refuses_reserved_bytes)
{
	struct wave_mem_msg dec = { .type = WAVE_MEM_MIGRATE, .chunk = 1, .seq = 1, .tier = 1 };
	struct wave_mem_msg out = { .type = WAVE_MEM_OUTCOME, .chunk = 1, .seq = 1,
				    .decision = WAVE_MEM_MIGRATE, .result = WAVE_ABORT_BUSY };
	struct wave_mem_msg smp = { .type = WAVE_MEM_SAMPLES, .region = 1, .n = 1,
				    .accesses = { 1 } };
	struct wave_msg m = enc(&dec), bad;
	struct wave_mem_msg d;

	for (size_t i = 20; i < WAVE_MSG_PAYLOAD; i++) {
		bad = m;
		bad.payload.u8[i] = 1;
		dec_expect(&bad, -EBADMSG);
	}
	m = enc(&out);
	for (size_t i = 39; i < WAVE_MSG_PAYLOAD; i++) {
		bad = m;
		bad.payload.u8[i] = 0x80;
		dec_expect(&bad, -EBADMSG);
	}
	m = enc(&smp);
	for (size_t i = 5; i < 8; i++) {
		bad = m;
		bad.payload.u8[i] = 1;
		dec_expect(&bad, -EBADMSG);
	}
	bad = m;
	bad.flags = 1;
	dec_expect(&bad, -EBADMSG);
	bad = m;
	bad.type = WAVE_MSG_MEM_FIRST + 0x10;
	dec_expect(&bad, -ENOMSG);
	bad.type = WAVE_MSG_SCHED_FIRST + 1;
	dec_expect(&bad, -ENOMSG);
	ck_assert_ptr_null(wave_mem_msg_type_name(0x0210));
	/* Bad arguments decode nothing. */
	ck_assert_int_eq(wave_mem_msg_decode(&m, 0, &d), -EINVAL);
	ck_assert_int_eq(wave_mem_msg_decode(&m, 9, &d), -EINVAL);
	ck_assert_int_eq(wave_mem_msg_decode(NULL, 1, &d), -EINVAL);
	ck_assert_int_eq(wave_mem_msg_decode(&m, 1, NULL), -EINVAL);
	ck_assert_int_eq(wave_mem_msg_encode(NULL, 1, &m), -EINVAL);
	/* A tier past the domain's. */
	m = enc(&dec);
	ck_assert_int_eq(wave_mem_msg_decode(&m, 1, &d), -ERANGE);
}
END_TEST

/* KEEP, the agent's hint: a decision's payload (chunk, seq, the tier the
 * chunk is in), type 0x0260, every reserved byte checked. */
START_TEST(keep_is_checked)
{
	struct wave_mem_msg k = { .type = WAVE_MEM_KEEP, .chunk = (7ull << 32) | 5, .seq = 9,
				  .tier = 0 };
	struct wave_msg m, bad;
	struct wave_mem_msg d;

	round_trip(&k);
	ck_assert_str_eq(wave_mem_msg_type_name(WAVE_MEM_KEEP), "keep");
	m = enc(&k);
	ck_assert_uint_eq(m.type, 0x0260);
	ck_assert(m.payload.u8[0] == 5 && m.payload.u8[4] == 7 && m.payload.u8[8] == 9);
	for (size_t i = 20; i < WAVE_MSG_PAYLOAD; i++) {
		bad = m;
		bad.payload.u8[i] = 1;
		dec_expect(&bad, -EBADMSG);
	}
	ck_assert_int_eq(wave_mem_msg_decode(&m, 1, &d), 0);
	k.tier = NT;
	ck_assert_int_eq(wave_mem_msg_encode(&k, NT, &m), -ERANGE);
	k.tier = 0, k.region = 7; /* a field KEEP does not carry */
	ck_assert_int_eq(wave_mem_msg_encode(&k, NT, &m), -EBADMSG);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("mem_msg");
	TCase *tc = tcase_create("codec");

	tcase_add_test(tc, every_type_round_trips);
	tcase_add_test(tc, layout_is_the_documented_one);
	tcase_add_test(tc, refuses_bad_fields);
	tcase_add_test(tc, refuses_bad_setup);
	tcase_add_test(tc, refuses_reserved_bytes);
	tcase_add_test(tc, keep_is_checked);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return wave_check_run(suite());
}
