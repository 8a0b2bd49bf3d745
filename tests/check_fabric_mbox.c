/* SPDX-License-Identifier: MIT */
/*
 * fabric:// mailboxes against hostile peers, and without remote writes.
 * Both ends run in this process over fabric://tcp;ofi_rxm on the loopback;
 * the hostile end is the library's own channel, made to write or send what
 * a correct peer never would, through the transport's internals.
 */
#include <check.h>
#include <errno.h>
#include <sched.h>
#include <stddef.h>
#include <string.h>
#include <time.h>

#include <rdma/fi_rma.h>
#include <wave/wave.h>

#include "chan/fabric.h"
#include "chan/fabric_impl.h"
#include "chan_util.h"
#include "check_run.h"
#include "core/crc32c.h"

#define MBOXES 4u
#define PATIENCE_NS 10000000000ull

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void open_pair(struct pair *p, bool rma)
{
	struct wave_chan_opts o;

	wave_chan_opts_init(&o);
	o.disconnect_timeout_ms = 30000;
	o.mailboxes = MBOXES;
	o.flags = WAVE_CHAN_F_RMA;
	wave_fabric_test_no_rma(!rma);
	pair_open(p, &o);
	wave_fabric_test_no_rma(false);
	ck_assert_int_eq(wave_chan_mailboxes(p->host), MBOXES);
	ck_assert_int_eq(FAB(p->agent)->mb.rma, rma);
}

/* Takes from mailbox @i until something other than "empty" comes. */
static int take_until(struct wave_chan *host, unsigned i, struct wave_msg *m)
{
	uint64_t end = mono_ns() + PATIENCE_NS;
	int ret;

	while ((ret = wave_chan_mbox_take(host, i, m)) == 0 && mono_ns() < end)
		sched_yield();
	return ret;
}

static void slot_make(struct fab_mbox_slot *s, uint64_t put, uint64_t n, bool good_crc)
{
	memset(s, 0, sizeof(*s));
	msg_make(&s->msg, n);
	s->put = put;
	s->crc = wave_crc32c(0, s, offsetof(struct fab_mbox_slot, crc)) ^ (good_crc ? 0 : 1);
}

/* Writes @s into the host's mailbox @i as the agent would, bypassing the
 * agent's checks, and waits for the write to complete. */
static void hostile_write(struct wave_chan *agent, unsigned i, const struct fab_mbox_slot *s)
{
	struct fab_chan *c = FAB(agent);
	struct fab_mbox *m = &c->mb;
	uint64_t end = mono_ns() + PATIENCE_NS;
	ssize_t r;

	pthread_mutex_lock(&c->lock);
	m->slots[i] = *s;
	do {
		r = fi_write(c->e.ep, &m->slots[i], sizeof(*s), m->desc, c->peer,
			     m->addr + i * sizeof(*s), m->key, &m->wctx[i]);
		if (r == -FI_EAGAIN)
			fab_chan_progress(c);
	} while (r == -FI_EAGAIN && mono_ns() < end);
	ck_assert_int_eq(r, 0);
	m->writing[i] = 1;
	pthread_mutex_unlock(&c->lock);
}

/* A correct put first: then the mailboxes are known to work. */
static void one_good_put(struct pair *p, unsigned i)
{
	struct wave_msg m, got;

	msg_make(&m, 7);
	ck_assert_int_eq(wave_chan_mbox_put(p->agent, i, &m), 0);
	ck_assert_int_eq(take_until(p->host, i, &got), 1);
	ck_assert_int_eq(msg_check(&got, 7), 0);
}

/* A slot whose put count jumps ahead of what the host took fails the
 * channel, whatever its checksum says. */
START_TEST(slot_count_jump_fails_host)
{
	struct fab_mbox_slot s;
	struct wave_msg got;
	struct pair p;

	open_pair(&p, true);
	one_good_put(&p, 0);
	slot_make(&s, 3, 1, true); /* the host took 1: 2 is the only next */
	hostile_write(p.agent, 0, &s);
	ck_assert_int_eq(take_until(p.host, 0, &got), -WAVE_ECORRUPT);
	ck_assert_int_eq(wave_chan_mbox_take(p.host, 1, &got), -WAVE_ECORRUPT);
	ck_assert_int_eq(wave_chan_recv_burst(p.host, &got, 1), -WAVE_ECORRUPT);
	pair_close(&p);
}
END_TEST

/* A slot with type 0 and a good checksum is impossible: it fails too. */
START_TEST(slot_type_zero_fails_host)
{
	struct fab_mbox_slot s;
	struct wave_msg got;
	struct pair p;

	open_pair(&p, true);
	slot_make(&s, 1, 1, false);
	s.msg.type = 0;
	s.crc = wave_crc32c(0, &s, offsetof(struct fab_mbox_slot, crc));
	hostile_write(p.agent, 2, &s);
	ck_assert_int_eq(take_until(p.host, 2, &got), -WAVE_ECORRUPT);
	pair_close(&p);
}
END_TEST

/* A slot whose checksum fails (a write still landing, or junk) reads as
 * empty and hurts nothing: the next correct put is taken. */
START_TEST(bad_checksum_reads_empty)
{
	struct fab_mbox_slot s;
	struct wave_msg m, got;
	struct pair p;
	uint64_t end;

	open_pair(&p, true);
	slot_make(&s, 1, 5, false);
	hostile_write(p.agent, 1, &s);
	/* Until the write completed at the agent it may not have landed:
	 * look while the agent's completion comes in, and a while after. */
	end = mono_ns() + 200000000ull;
	while (FAB(p.agent)->mb.writing[1] || mono_ns() < end) {
		ck_assert_int_eq(wave_chan_mbox_take(p.host, 1, &got), 0);
		ck_assert_int_ge(wave_chan_recv_burst(p.agent, &got, 1), 0); /* progress */
	}
	msg_make(&m, 6);
	ck_assert_int_eq(wave_chan_mbox_put(p.agent, 1, &m), 0);
	ck_assert_int_eq(take_until(p.host, 1, &got), 1);
	ck_assert_int_eq(msg_check(&got, 6), 0);
	pair_close(&p);
}
END_TEST

/* An MBOX frame (a put sent as a message) where remote writes were agreed
 * breaks the protocol: the host fails the channel. */
START_TEST(frame_put_where_rma_agreed_fails_host)
{
	struct fab_mbox_slot s;
	struct wave_msg got;
	struct pair p;
	struct fab_mbox_body body = { .idx = 0 };

	open_pair(&p, true);
	slot_make(&s, 1, 1, true);
	memcpy(body.slot, &s, sizeof(s));
	pthread_mutex_lock(&FAB(p.agent)->lock);
	ck_assert(fab_send_ctrl(FAB(p.agent), FAB_MBOX, 0, 0, &body, sizeof(body)));
	pthread_mutex_unlock(&FAB(p.agent)->lock);
	ck_assert_int_eq(take_until(p.host, 0, &got), -WAVE_ECORRUPT);
	pair_close(&p);
}
END_TEST

/* Without remote writes, puts travel as MBOX frames and behave the same. */
START_TEST(frames_without_rma)
{
	struct wave_msg m, got;
	struct pair p;

	open_pair(&p, false);
	for (uint64_t n = 0; n < 200; n++) {
		unsigned i = (unsigned)(n % MBOXES);
		uint64_t end = mono_ns() + PATIENCE_NS;
		int ret;
		msg_make(&m, n);
		while ((ret = wave_chan_mbox_put(p.agent, i, &m)) == -EAGAIN && mono_ns() < end)
			sched_yield();
		ck_assert_int_eq(ret, 0);
		ck_assert_int_eq(take_until(p.host, i, &got), 1);
		ck_assert_int_eq(msg_check(&got, n), 0);
	}
	pair_close(&p);
}
END_TEST

/* Without remote writes, a frame into a mailbox that still holds a put, or
 * with a bad checksum, fails the host's channel. */
static void hostile_frame(bool full)
{
	struct fab_mbox_slot s;
	struct wave_msg m, got;
	struct pair p;
	struct fab_mbox_body body = { .idx = 3 };

	open_pair(&p, false);
	if (full) {
		msg_make(&m, 1);
		ck_assert_int_eq(wave_chan_mbox_put(p.agent, 3, &m), 0);
		slot_make(&s, 2, 2, true); /* "the next put", before the take */
	} else {
		slot_make(&s, 1, 1, false);
	}
	memcpy(body.slot, &s, sizeof(s));
	pthread_mutex_lock(&FAB(p.agent)->lock);
	ck_assert(fab_send_ctrl(FAB(p.agent), FAB_MBOX, 0, 0, &body, sizeof(body)));
	pthread_mutex_unlock(&FAB(p.agent)->lock);
	uint64_t end = mono_ns() + PATIENCE_NS;
	int ret;
	/* Receiving drives the host without taking from the mailbox. */
	while ((ret = wave_chan_recv_burst(p.host, &got, 1)) == 0 && mono_ns() < end)
		sched_yield();
	ck_assert_int_eq(ret, -WAVE_ECORRUPT);
	ck_assert_int_eq(wave_chan_mbox_take(p.host, 3, &got), -WAVE_ECORRUPT);
	pair_close(&p);
}

START_TEST(frame_into_full_mailbox_fails_host)
{
	hostile_frame(true);
}
END_TEST

START_TEST(frame_with_bad_checksum_fails_host)
{
	hostile_frame(false);
}
END_TEST

/* A host that claims to have taken a put the agent never made fails the
 * agent's channel; so does a mailbox that does not exist. */
static void hostile_taken(uint32_t idx, uint32_t taken)
{
	struct fab_mbox_taken t = { idx, taken };
	struct wave_msg m;
	struct pair p;
	uint64_t end;
	int ret;

	open_pair(&p, true);
	pthread_mutex_lock(&FAB(p.host)->lock);
	ck_assert(fab_send_ctrl(FAB(p.host), FAB_MBOX_TAKEN, 1, 0, &t, sizeof(t)));
	pthread_mutex_unlock(&FAB(p.host)->lock);
	end = mono_ns() + PATIENCE_NS;
	while ((ret = wave_chan_recv_burst(p.agent, &m, 1)) == 0 && mono_ns() < end)
		sched_yield();
	ck_assert_int_eq(ret, -WAVE_ECORRUPT);
	msg_make(&m, 1);
	ck_assert_int_eq(wave_chan_mbox_put(p.agent, 0, &m), -WAVE_ECORRUPT);
	pair_close(&p);
}

START_TEST(taken_beyond_puts_fails_agent)
{
	hostile_taken(0, 1);
}
END_TEST

START_TEST(taken_of_no_mailbox_fails_agent)
{
	hostile_taken(MBOXES, 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fabric_mbox");
	TCase *tc = tcase_create("hostile");

	test_transport = "fabric-tcp";
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, slot_count_jump_fails_host);
	tcase_add_test(tc, slot_type_zero_fails_host);
	tcase_add_test(tc, bad_checksum_reads_empty);
	tcase_add_test(tc, frame_put_where_rma_agreed_fails_host);
	tcase_add_test(tc, frames_without_rma);
	tcase_add_test(tc, frame_into_full_mailbox_fails_host);
	tcase_add_test(tc, frame_with_bad_checksum_fails_host);
	tcase_add_test(tc, taken_beyond_puts_fails_agent);
	tcase_add_test(tc, taken_of_no_mailbox_fails_agent);
	suite_add_tcase(s, tc);
	return wave_check_run(s);
}
