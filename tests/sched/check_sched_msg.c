/* SPDX-License-Identifier: MIT */
/* Sched messages: every type round-trips, and the decoder refuses every
 * kind of bad field with its documented code. */
#include <errno.h>
#include <string.h>

#include <check.h>
#include <wave/sched_msg.h>

#include "check_run.h"

#define NCPU 8u

/* A valid example of each type. */
static struct wave_sched_msg example(uint16_t type)
{
	struct wave_sched_msg m;

	/* Zero padding too: the round trip compares whole structs. */
	memset(&m, 0, sizeof(m));
	m.type = type;
	m.task = 42;
	m.seq = 7;
	m.now_ns = 123456789;
	switch (type) {
	case WAVE_SCHED_TASK_NEW:
		m.state = WAVE_SCHED_RUNNABLE;
		m.hint_kind = WAVE_SCHED_HINT_DEADLINE;
		m.hint = 999;
		m.cpu = 3;
		break;
	case WAVE_SCHED_CPU_IDLE:
	case WAVE_SCHED_TICK:
		m.task = m.seq = 0;
		m.cpu = 5;
		break;
	case WAVE_SCHED_RUN:
	case WAVE_SCHED_PRESTAGE:
	case WAVE_SCHED_PREEMPT:
		m.now_ns = 0;
		m.cpu = 1;
		break;
	case WAVE_SCHED_OUTCOME:
		m.decision = WAVE_SCHED_PRESTAGE;
		m.result = WAVE_SCHED_ABORT_STALE;
		m.cpu = 7;
		break;
	default:
		m.cpu = 2;
		break;
	}
	return m;
}

static const uint16_t all_types[] = {
	WAVE_SCHED_TASK_NEW,	   WAVE_SCHED_TASK_WAKEUP, WAVE_SCHED_TASK_BLOCKED,
	WAVE_SCHED_TASK_YIELD,	   WAVE_SCHED_TASK_PREEMPTED, WAVE_SCHED_TASK_DEAD,
	WAVE_SCHED_CPU_IDLE,	   WAVE_SCHED_TICK,	   WAVE_SCHED_RUN,
	WAVE_SCHED_PRESTAGE,	   WAVE_SCHED_PREEMPT,	   WAVE_SCHED_OUTCOME,
};

START_TEST(round_trip)
{
	struct wave_sched_msg in = example(all_types[_i]), out;
	struct wave_msg m;

	ck_assert_int_eq(wave_sched_msg_encode(&in, NCPU, &m), 0);
	ck_assert_uint_eq(m.type, in.type);
	ck_assert_uint_eq(m.flags, 0);
	ck_assert_int_eq(wave_sched_msg_decode(&m, NCPU, &out), 0);
	ck_assert_mem_eq(&in, &out, sizeof(in));
	ck_assert_ptr_nonnull(wave_sched_msg_type_name(in.type));
}
END_TEST

/* The payload is little-endian at the documented offsets. */
START_TEST(wire_layout)
{
	struct wave_sched_msg in = example(WAVE_SCHED_OUTCOME);
	struct wave_msg m;

	ck_assert_int_eq(wave_sched_msg_encode(&in, NCPU, &m), 0);
	ck_assert_uint_eq(m.payload.u8[0], 42);
	ck_assert_uint_eq(m.payload.u8[8], 7);
	ck_assert_uint_eq(m.payload.u8[24], 7);
	ck_assert_uint_eq(m.payload.u8[28], WAVE_SCHED_PRESTAGE & 0xff);
	ck_assert_uint_eq(m.payload.u8[29], WAVE_SCHED_PRESTAGE >> 8);
	ck_assert_uint_eq(m.payload.u8[30], WAVE_SCHED_ABORT_STALE);
}
END_TEST

static int decode_with(uint16_t type, size_t byte, uint8_t value)
{
	struct wave_sched_msg in = example(type), out;
	struct wave_msg m;

	ck_assert_int_eq(wave_sched_msg_encode(&in, NCPU, &m), 0);
	m.payload.u8[byte] = value;
	return wave_sched_msg_decode(&m, NCPU, &out);
}

/* Every reserved byte of every type, set to 1, is refused. */
START_TEST(reserved_bytes)
{
	static const struct { uint16_t type; size_t from, to; } r[] = {
		{ WAVE_SCHED_TASK_NEW, 38, 48 },      { WAVE_SCHED_TASK_BLOCKED, 28, 48 },
		{ WAVE_SCHED_CPU_IDLE, 4, 8 },	      { WAVE_SCHED_TICK, 16, 48 },
		{ WAVE_SCHED_RUN, 20, 48 },	      { WAVE_SCHED_PREEMPT, 20, 48 },
		{ WAVE_SCHED_OUTCOME, 31, 48 },
	};

	for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++)
		for (size_t b = r[i].from; b < r[i].to; b++)
			ck_assert_int_eq(decode_with(r[i].type, b, 1), -EBADMSG);
}
END_TEST

START_TEST(header_flags)
{
	struct wave_sched_msg in = example(WAVE_SCHED_RUN), out;
	struct wave_msg m;

	ck_assert_int_eq(wave_sched_msg_encode(&in, NCPU, &m), 0);
	m.flags = 1;
	ck_assert_int_eq(wave_sched_msg_decode(&m, NCPU, &out), -EBADMSG);
	ck_assert_uint_eq(out.type, 0); /* zeroed on failure */
}
END_TEST

START_TEST(unknown_types)
{
	static const uint16_t bad[] = { 0, 0x0100, 0x0109, 0x013f, 0x0143, 0x017f, 0x0181,
					0x01ff, 0x0200, 0x8000, 0xffff };
	struct wave_sched_msg out;
	struct wave_msg m;

	memset(&m, 0, sizeof(m));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		m.type = bad[i];
		ck_assert_int_eq(wave_sched_msg_decode(&m, NCPU, &out), -ENOMSG);
		ck_assert_ptr_null(wave_sched_msg_type_name(bad[i]));
	}
}
END_TEST

START_TEST(cpu_range)
{
	struct wave_sched_msg in;
	struct wave_msg m;

	for (size_t i = 0; i < sizeof(all_types) / sizeof(all_types[0]); i++) {
		in = example(all_types[i]);
		in.cpu = NCPU;
		ck_assert_int_eq(wave_sched_msg_encode(&in, NCPU, &m), -ERANGE);
		in.cpu = WAVE_SCHED_CPU_NONE;
		/* Only a new task's hint, a wakeup and a death may have no CPU. */
		int none_ok = all_types[i] == WAVE_SCHED_TASK_NEW ||
			      all_types[i] == WAVE_SCHED_TASK_WAKEUP ||
			      all_types[i] == WAVE_SCHED_TASK_DEAD;
		ck_assert_int_eq(wave_sched_msg_encode(&in, NCPU, &m), none_ok ? 0 : -ERANGE);
	}
	/* The same bytes are valid with more CPUs. */
	in = example(WAVE_SCHED_TICK);
	in.cpu = NCPU;
	ck_assert_int_eq(wave_sched_msg_encode(&in, NCPU + 1, &m), 0);
	ck_assert_int_eq(wave_sched_msg_decode(&m, NCPU, &in), -ERANGE);
}
END_TEST

START_TEST(bad_values)
{
	struct wave_sched_msg in;
	struct wave_msg m;

	in = example(WAVE_SCHED_TASK_NEW);
	in.state = WAVE_SCHED_RUNNING; /* a new task cannot be running */
	ck_assert_int_eq(wave_sched_msg_encode(&in, NCPU, &m), -EBADMSG);
	in = example(WAVE_SCHED_TASK_NEW);
	in.hint_kind = 3;
	ck_assert_int_eq(wave_sched_msg_encode(&in, NCPU, &m), -EBADMSG);
	in.hint_kind = WAVE_SCHED_HINT_WEIGHT;
	in.hint = 0;
	ck_assert_int_eq(wave_sched_msg_encode(&in, NCPU, &m), -EBADMSG);
	in.hint_kind = WAVE_SCHED_HINT_NONE;
	in.hint = 5;
	ck_assert_int_eq(wave_sched_msg_encode(&in, NCPU, &m), -EBADMSG);
	in = example(WAVE_SCHED_OUTCOME);
	in.result = WAVE_SCHED_RESULT_COUNT;
	ck_assert_int_eq(wave_sched_msg_encode(&in, NCPU, &m), -EBADMSG);
	in = example(WAVE_SCHED_OUTCOME);
	in.decision = WAVE_SCHED_TICK;
	ck_assert_int_eq(wave_sched_msg_encode(&in, NCPU, &m), -EBADMSG);
	in = example(WAVE_SCHED_RUN);
	in.task = 0;
	ck_assert_int_eq(wave_sched_msg_encode(&in, NCPU, &m), -EBADMSG);
	in = example(WAVE_SCHED_TASK_WAKEUP);
	in.seq = 0;
	ck_assert_int_eq(wave_sched_msg_encode(&in, NCPU, &m), -EBADMSG);
	/* A field the type does not carry must be 0 for encoding. */
	in = example(WAVE_SCHED_TICK);
	in.task = 9;
	ck_assert_int_eq(wave_sched_msg_encode(&in, NCPU, &m), -EBADMSG);
	in = example(WAVE_SCHED_RUN);
	in.now_ns = 9;
	ck_assert_int_eq(wave_sched_msg_encode(&in, NCPU, &m), -EBADMSG);
}
END_TEST

START_TEST(bad_arguments)
{
	struct wave_sched_msg in = example(WAVE_SCHED_RUN), out;
	struct wave_msg m;

	ck_assert_int_eq(wave_sched_msg_encode(NULL, NCPU, &m), -EINVAL);
	ck_assert_int_eq(wave_sched_msg_encode(&in, NCPU, NULL), -EINVAL);
	ck_assert_int_eq(wave_sched_msg_encode(&in, 0, &m), -EINVAL);
	ck_assert_int_eq(wave_sched_msg_encode(&in, WAVE_SCHED_MAX_CPUS + 1, &m), -EINVAL);
	ck_assert_int_eq(wave_sched_msg_encode(&in, NCPU, &m), 0);
	ck_assert_int_eq(wave_sched_msg_decode(NULL, NCPU, &out), -EINVAL);
	ck_assert_int_eq(wave_sched_msg_decode(&m, NCPU, NULL), -EINVAL);
	ck_assert_int_eq(wave_sched_msg_decode(&m, 0, &out), -EINVAL);
	ck_assert_str_eq(wave_sched_result_name(WAVE_SCHED_ABORT_CPU_BUSY), "cpu_busy");
	ck_assert_ptr_null(wave_sched_result_name(WAVE_SCHED_RESULT_COUNT));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sched_msg");
	TCase *tc = tcase_create("msg");

	tcase_add_loop_test(tc, round_trip, 0, (int)(sizeof(all_types) / sizeof(all_types[0])));
	tcase_add_test(tc, wire_layout);
	tcase_add_test(tc, reserved_bytes);
	tcase_add_test(tc, header_flags);
	tcase_add_test(tc, unknown_types);
	tcase_add_test(tc, cpu_range);
	tcase_add_test(tc, bad_values);
	tcase_add_test(tc, bad_arguments);
	suite_add_tcase(s, tc);
	return wave_check_run(s);
}
