/* SPDX-License-Identifier: MIT */
/*
 * rpc messages (include/wave/rpc_msg.h): every type round-trips through
 * the codec, and the decoder refuses each kind of bad field with its
 * documented error.
 */
#include <errno.h>
#include <string.h>

#include <check.h>

#include <wave/rpc_msg.h>

#include "check_run.h"

static const struct wave_rpc_dims D = { 16, 2, 8, 3 };

static void roundtrip(const struct wave_rpc_msg *in, const struct wave_rpc_dims *dims)
{
	struct wave_rpc_msg out;
	struct wave_msg m;

	ck_assert_int_eq(wave_rpc_msg_encode(in, dims, &m), 0);
	ck_assert_int_eq(wave_rpc_msg_decode(&m, dims, &out), 0);
	ck_assert_int_eq(memcmp(&out, in, sizeof(out)), 0);
}

/* Encodes @in, then lets @poke break the wire form: the decoder must say
 * @err. */
static void refused(const struct wave_rpc_msg *in, void (*poke)(struct wave_msg *), int err)
{
	struct wave_rpc_msg out;
	struct wave_msg m;

	ck_assert_int_eq(wave_rpc_msg_encode(in, &D, &m), 0);
	poke(&m);
	ck_assert_int_eq(wave_rpc_msg_decode(&m, &D, &out), err);
	ck_assert_uint_eq(out.type, 0); /* zeroed */
}

START_TEST(every_type_roundtrips)
{
	struct wave_rpc_msg m;

	memset(&m, 0, sizeof(m));
	m.type = WAVE_RPC_SETUP;
	m.dims = D;
	m.epoch = 3;
	m.period_ns = 1000000;
	roundtrip(&m, NULL);

	memset(&m, 0, sizeof(m));
	m.type = WAVE_RPC_WORKER_ADD;
	m.worker = 7;
	m.gen = 2;
	m.now_ns = 99;
	roundtrip(&m, &D);
	m.type = WAVE_RPC_WORKER_DEL;
	roundtrip(&m, &D);

	memset(&m, 0, sizeof(m));
	m.type = WAVE_RPC_BUCKETS;
	m.bucket = 13; /* 13..17: the last three are the class entries' */
	m.epoch = 4;
	m.n = 5;
	for (unsigned i = 0; i < 5; i++) {
		m.e[i].a = i == 2 ? WAVE_RPC_NO_WORKER : i;
		m.e[i].b = 100 + i;
	}
	roundtrip(&m, &D);

	memset(&m, 0, sizeof(m));
	m.type = WAVE_RPC_LOAD;
	m.worker = 1;
	m.queue_depth = 12;
	m.busy_ns = 1;
	m.completions = 2;
	m.service_ns = 3;
	m.max_service_ns = 4;
	roundtrip(&m, &D);

	memset(&m, 0, sizeof(m));
	m.type = WAVE_RPC_CLASS_LOAD;
	m.bucket = 17; /* the second class */
	m.completions = 5;
	m.service_ns = 6;
	m.max_service_ns = 7;
	roundtrip(&m, &D);

	memset(&m, 0, sizeof(m));
	m.type = WAVE_RPC_ARRIVALS;
	m.n = 6;
	for (unsigned i = 0; i < 6; i++) {
		m.e[i].a = 17 - i;
		m.e[i].b = 1000 * i;
	}
	roundtrip(&m, &D);

	memset(&m, 0, sizeof(m));
	m.type = WAVE_RPC_REPORT;
	m.period_ns = 5;
	m.now_ns = 6;
	roundtrip(&m, &D);

	memset(&m, 0, sizeof(m));
	m.type = WAVE_RPC_MOVE;
	m.bucket = 17;
	m.worker = 7;
	m.gen = 1;
	m.seq = 0;
	m.epoch = 9;
	roundtrip(&m, &D);
	m.type = WAVE_RPC_PRESTAGE;
	m.bucket = 2;
	roundtrip(&m, &D);

	memset(&m, 0, sizeof(m));
	m.type = WAVE_RPC_OUTCOME;
	m.decision = WAVE_RPC_MOVE;
	m.result = WAVE_ABORT_STALE;
	m.why = WAVE_RPC_WHY_BUCKET_MOVED;
	m.bucket = 3;
	m.worker = 4;
	m.gen = 5;
	m.seq = 6;
	m.epoch = 7;
	m.cur_worker = WAVE_RPC_NO_WORKER;
	m.now_ns = 8;
	roundtrip(&m, &D);
}
END_TEST

static void set_flags(struct wave_msg *m) { m->flags = 1; }
static void set_count_7(struct wave_msg *m) { m->flags = 7; }
static void set_reserved(struct wave_msg *m) { m->payload.u8[WAVE_MSG_PAYLOAD - 1] = 1; }
static void set_u32_0(struct wave_msg *m) { m->payload.u32[0] = 1000; }
static void set_u32_1(struct wave_msg *m) { m->payload.u32[1] = 1000; }
static void set_u32_2(struct wave_msg *m) { m->payload.u32[2] = 0; }
static void set_type(struct wave_msg *m) { m->type = WAVE_MSG_RPC_FIRST + 0x7f; }
static void set_why(struct wave_msg *m) { m->payload.u8[35] = WAVE_RPC_WHY_EPOCH; }
static void set_result(struct wave_msg *m) { m->payload.u8[34] = WAVE_ABORT_INVALID; }

START_TEST(bad_fields_refused)
{
	struct wave_rpc_msg mv = { .type = WAVE_RPC_MOVE, .bucket = 1, .worker = 1, .gen = 1 };
	struct wave_rpc_msg ps = { .type = WAVE_RPC_PRESTAGE, .bucket = 1, .worker = 1, .gen = 1 };
	struct wave_rpc_msg bk = { .type = WAVE_RPC_BUCKETS, .bucket = 17, .n = 1 };
	struct wave_rpc_msg oc = { .type = WAVE_RPC_OUTCOME, .decision = WAVE_RPC_MOVE,
				   .bucket = 1, .worker = 1, .gen = 1, .cur_worker = 1 };
	struct wave_rpc_msg cl = { .type = WAVE_RPC_CLASS_LOAD, .bucket = 16, .completions = 1 };
	struct wave_msg m;

	refused(&mv, set_flags, -EBADMSG);
	refused(&mv, set_reserved, -EBADMSG);
	refused(&mv, set_u32_0, -ERANGE);   /* bucket 1000 */
	refused(&mv, set_u32_1, -ERANGE);   /* worker 1000 */
	refused(&mv, set_u32_2, -EBADMSG);  /* generation 0 */
	refused(&ps, set_u32_0, -ERANGE);   /* dispatcher 1000 */
	refused(&mv, set_type, -ENOMSG);
	refused(&bk, set_count_7, -EBADMSG); /* more entries than fit */
	refused(&oc, set_why, -EBADMSG);     /* committed with a detail */
	refused(&oc, set_result, -EBADMSG);  /* INVALID has no rpc detail */
	refused(&cl, set_u32_0, -ERANGE);    /* entry 1000 */
	refused(&cl, set_u32_1, -EBADMSG);   /* reserved */
	refused(&cl, set_reserved, -EBADMSG);
	/* A flow bucket is not a class. */
	cl.bucket = 15;
	ck_assert_int_eq(wave_rpc_msg_encode(&cl, &D, &m), -ERANGE);

	/* Two entries from the last one run past the table. */
	bk.n = 2;
	ck_assert_int_eq(wave_rpc_msg_encode(&bk, &D, &m), -ERANGE);
	/* A PRESTAGE carries no sequence number. */
	ps.seq = 1;
	ck_assert_int_eq(wave_rpc_msg_encode(&ps, &D, &m), -EBADMSG);
	/* A field the type does not carry. */
	mv.queue_depth = 1;
	ck_assert_int_eq(wave_rpc_msg_encode(&mv, &D, &m), -EBADMSG);
	/* SETUP only without sizes, everything else only with them. */
	memset(&m, 0, sizeof(m));
	m.type = WAVE_RPC_MOVE;
	ck_assert_int_eq(wave_rpc_msg_decode(&m, NULL, &mv), -ENOMSG);
	m.type = WAVE_RPC_SETUP;
	ck_assert_int_eq(wave_rpc_msg_decode(&m, &D, &mv), -ENOMSG);
	ck_assert_int_eq(wave_rpc_msg_decode(&m, NULL, &mv), -ERANGE); /* all zero */
}
END_TEST

START_TEST(sizes_checked)
{
	struct wave_rpc_dims d = D;
	struct wave_rpc_msg out;
	struct wave_msg m = { .type = WAVE_RPC_REPORT };

	ck_assert_int_eq(wave_rpc_dims_check(&d), 0);
	d.n_buckets = 12; /* not a power of two */
	ck_assert_int_eq(wave_rpc_dims_check(&d), -ERANGE);
	ck_assert_int_eq(wave_rpc_msg_decode(&m, &d, &out), -EINVAL);
	d = D;
	d.max_workers = WAVE_RPC_MAX_WORKERS + 1;
	ck_assert_int_eq(wave_rpc_dims_check(&d), -ERANGE);
	d = D;
	d.n_buckets = WAVE_RPC_MAX_BUCKETS * 2;
	ck_assert_int_eq(wave_rpc_dims_check(&d), -ERANGE);
	ck_assert_int_eq(wave_rpc_dims_check(NULL), -EINVAL);
	ck_assert_str_eq(wave_rpc_abort_name(WAVE_RPC_WHY_BACKEND), "backend");
	ck_assert_ptr_null(wave_rpc_abort_name(WAVE_RPC_WHY_COUNT));
	ck_assert_str_eq(wave_rpc_msg_type_name(WAVE_RPC_MOVE), "move");
	ck_assert_ptr_null(wave_rpc_msg_type_name(WAVE_MSG_RPC_LAST));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("rpc_msg");
	TCase *tc = tcase_create("codec");

	tcase_add_test(tc, every_type_roundtrips);
	tcase_add_test(tc, bad_fields_refused);
	tcase_add_test(tc, sizes_checked);
	suite_add_tcase(s, tc);
	return wave_check_run(s);
}
