/* SPDX-License-Identifier: MIT */
/*
 * The rpc host's conversation with the agent: its events (worker and
 * table changes, batched load reports) leave through a small outbox, its
 * decisions are committed or aborted as transactions (txn_check()) and
 * each outcome goes back; a change of control and a resync are handled
 * here. Everything runs under r->lock, including the session's callbacks,
 * which run inside the wave_host_poll() and host_start() calls made with
 * the lock held.
 */
#include <errno.h>
#include <string.h>

#include "../../core/atomic.h"
#include "../../core/core.h"
#include "../../session/host_impl.h"
#include "rpc_host.h"
#include "rpc_txn.h"

/* ---- events ---------------------------------------------------------------- */

/* Sends what is gathered: 0, or -EAGAIN (the channel is full: it stays
 * gathered). */
int rpc_flush(struct wave_rpc *r)
{
	return r->agent ? outbox_flush(&r->ob) : 0;
}

void rpc_emit(struct wave_rpc *r, const struct wave_rpc_msg *d)
{
	struct wave_msg m;

	if (!r->agent)
		return;
	if (wave_rpc_msg_encode(d, &r->dims, &m) < 0) {
		wave_warn("rpc: cannot encode a %s", wave_rpc_msg_type_name(d->type));
		return;
	}
	/* Lost, the agent's view can no longer be kept right: start over. */
	if (outbox_push(&r->ob, &m) < 0)
		host_lose_agent(r->h, "no memory for events");
}

void rpc_emit_worker(struct wave_rpc *r, uint16_t type, uint32_t w)
{
	struct wave_rpc_msg d = { .type = type, .worker = w, .gen = r->workers[w].gen,
				  .now_ns = wave_now_ns() };

	rpc_emit(r, &d);
}

/* The BUCKETS messages describing entries [@first, @first + @n) now, in
 * order, each handed to @put (which emits it, or sends it at once). */
static int buckets_msgs(struct wave_rpc *r, uint32_t first, uint32_t n,
			int (*put)(struct wave_rpc *r, const struct wave_rpc_msg *d))
{
	int ret;

	while (n) {
		struct wave_rpc_msg d = { .type = WAVE_RPC_BUCKETS, .bucket = first,
					  .epoch = r->epoch };

		d.n = (uint8_t)(n < WAVE_RPC_BUCKETS_PER_MSG ? n : WAVE_RPC_BUCKETS_PER_MSG);
		for (unsigned i = 0; i < d.n; i++) {
			d.e[i].a = wave_load_relaxed(&r->table[first + i]);
			d.e[i].b = r->seq[first + i];
		}
		if ((ret = put(r, &d)) < 0)
			return ret;
		first += d.n;
		n -= d.n;
	}
	return 0;
}

static int put_emit(struct wave_rpc *r, const struct wave_rpc_msg *d)
{
	rpc_emit(r, d);
	return 0;
}

void rpc_emit_buckets(struct wave_rpc *r, uint32_t first, uint32_t n)
{
	if (r->agent)
		(void)buckets_msgs(r, first, n, put_emit);
}

/* ---- load reports ------------------------------------------------------------ */

/* The last period's LOADs, CLASS_LOADs, ARRIVALS and REPORT, through @put. */
static int report_msgs(struct wave_rpc *r, int (*put)(struct wave_rpc *r,
						       const struct wave_rpc_msg *d))
{
	struct wave_rpc_msg a = { .type = WAVE_RPC_ARRIVALS };
	struct wave_rpc_msg rep = { .type = WAVE_RPC_REPORT, .now_ns = r->last_report,
				    .period_ns = r->last_period ? r->last_period : r->report_ns };
	int ret;

	for (uint32_t w = 0; w < r->dims.max_workers; w++) {
		const struct wave_rpc_msg *last = &r->workers[w].last;

		if (rpc_live(r, w) && last->type && (ret = put(r, last)) < 0)
			return ret;
	}
	for (uint32_t c = 0; c < r->dims.n_classes; c++)
		if (r->classes[c].last.type && (ret = put(r, &r->classes[c].last)) < 0)
			return ret;
	for (uint32_t b = 0; b < r->n_entries; b++) {
		if (!r->last_arrivals[b])
			continue;
		a.e[a.n].a = b;
		a.e[a.n].b = r->last_arrivals[b];
		if (++a.n == WAVE_RPC_ARRIVALS_PER_MSG) {
			if ((ret = put(r, &a)) < 0)
				return ret;
			memset(&a.e, 0, sizeof(a.e));
			a.n = 0;
		}
	}
	if (a.n && (ret = put(r, &a)) < 0)
		return ret;
	return put(r, &rep);
}

/* A period ended (or @force): take what was reported and, under the
 * agent, send it. */
static void report(struct wave_rpc *r, uint64_t now, bool force)
{
	if (now < r->next_report && !force)
		return;
	rpc_harvest(r);
	r->last_period = now > r->last_report ? now - r->last_report : 1;
	r->last_report = now;
	r->next_report = now + r->report_ns;
	if (!r->agent)
		return;
	(void)report_msgs(r, put_emit);
	r->st.reports++;
}

/* ---- decisions --------------------------------------------------------------- */

static void bad_decision(struct wave_rpc *r, const char *why)
{
	r->st.bad_decisions++;
	host_lose_agent(r->h, why);
}

/* Tells the agent how decision @d ended; counts it. */
static void outcome(struct wave_rpc *r, const struct wave_rpc_msg *d, unsigned result,
		    unsigned why)
{
	struct wave_rpc_msg o = { .type = WAVE_RPC_OUTCOME, .decision = d->type,
				  .result = (uint8_t)result, .why = (uint8_t)why,
				  .bucket = d->bucket, .worker = d->worker, .gen = d->gen,
				  .epoch = r->epoch, .now_ns = wave_now_ns() };

	if (d->type == WAVE_RPC_MOVE) {
		o.seq = r->seq[d->bucket];
		o.cur_worker = wave_load_relaxed(&r->table[d->bucket]);
	} else {
		o.cur_worker = wave_load_relaxed(&r->disp[d->bucket].staged);
	}
	if (result == WAVE_COMMITTED) {
		r->st.committed++;
	} else {
		r->st.aborted[result]++;
		r->st.aborted_why[why]++;
	}
	rpc_emit(r, &o);
}

/* Is the worker the decision names the one that is live now? */
static bool worker_is(const struct wave_rpc *r, uint32_t w, uint32_t gen)
{
	return rpc_live(r, w) && r->workers[w].gen == gen;
}

/* A MOVE, by rpc_move_check(); the backend must then follow. */
static int move(struct wave_rpc *r, const struct wave_rpc_msg *d)
{
	uint32_t cur = wave_load_relaxed(&r->table[d->bucket]);
	enum wave_result res = rpc_move_check(d, worker_is(r, d->worker, d->gen), r->epoch,
					      r->seq[d->bucket], cur);

	if (res == WAVE_COMMITTED && rpc_table_set(r, d->bucket, d->worker) < 0)
		res = WAVE_ABORT_BUSY;
	outcome(r, d, res, rpc_why(res, d->epoch != r->epoch));
	return res == WAVE_COMMITTED;
}

/* A PRESTAGE, by rpc_prestage_check(). */
static int prestage(struct wave_rpc *r, const struct wave_rpc_msg *d)
{
	enum wave_result res = rpc_prestage_check(d, worker_is(r, d->worker, d->gen), r->epoch);

	/* Pairs with the acquire load in wave_rpc_pick(). */
	if (res == WAVE_COMMITTED)
		wave_store_release(&r->disp[d->bucket].staged, d->worker);
	outcome(r, d, res, rpc_why(res, true));
	return res == WAVE_COMMITTED;
}

static int on_rpc_msg(void *user, const struct wave_msg *m)
{
	struct wave_rpc *r = user;
	struct wave_rpc_msg d;

	if (!r->agent)
		return 0; /* cannot happen: messages are read only under control */
	if (wave_rpc_msg_decode(m, &r->dims, &d) < 0) {
		bad_decision(r, "malformed rpc decision");
		return 0;
	}
	switch (d.type) {
	case WAVE_RPC_MOVE:
		return move(r, &d);
	case WAVE_RPC_PRESTAGE:
		return prestage(r, &d);
	default:
		bad_decision(r, "agent sent a host's rpc message");
		return 0;
	}
}

/* ---- control and resync ------------------------------------------------------ */

static void on_state(void *user, enum wave_host_state state)
{
	struct wave_rpc *r = user;

	if (state == WAVE_HOST_AGENT) {
		r->agent = true;
		return;
	}
	/* Decisions in flight die with the agent; the table stands (or the
	 * static hash replaces it). Dispatchers go back to their round robin:
	 * nobody refreshes a prestaged worker any more. */
	r->agent = false;
	outbox_drop(&r->ob);
	r->st.fallbacks++;
	for (uint32_t d = 0; d < r->dims.n_dispatchers; d++)
		wave_store_release(&r->disp[d].staged, WAVE_RPC_NO_WORKER);
	if (r->fallback == WAVE_RPC_FALLBACK_HASH)
		rpc_table_hash(r);
}

/* Resync messages go out at once (host_send() waits for room then). */
static int put_send(struct wave_rpc *r, const struct wave_rpc_msg *d)
{
	struct wave_msg m;
	int ret;

	/* SETUP is encoded against no sizes: it announces them. */
	if ((ret = wave_rpc_msg_encode(d, d->type == WAVE_RPC_SETUP ? NULL : &r->dims, &m)) < 0)
		return ret;
	if ((ret = host_send(r->h, &m, 1)) != 1)
		return ret < 0 ? ret : -EAGAIN;
	r->st.events++;
	return 0;
}

/* Resync: the sizes, every live worker, the whole table, the last
 * period's load. */
static int replay(void *user)
{
	struct wave_rpc *r = user;
	struct wave_rpc_msg setup = { .type = WAVE_RPC_SETUP, .dims = r->dims, .epoch = r->epoch,
				      .period_ns = r->report_ns };
	uint64_t now = wave_now_ns();
	int ret;

	outbox_drop(&r->ob); /* what was gathered for the lost agent is in the replay */
	if ((ret = put_send(r, &setup)) < 0)
		return ret;
	for (uint32_t w = 0; w < r->dims.max_workers; w++) {
		struct wave_rpc_msg d = { .type = WAVE_RPC_WORKER_ADD, .worker = w,
					  .gen = r->workers[w].gen, .now_ns = now };

		if (rpc_live(r, w) && (ret = put_send(r, &d)) < 0)
			return ret;
	}
	if ((ret = buckets_msgs(r, 0, r->n_entries, put_send)) < 0 ||
	    (ret = report_msgs(r, put_send)) < 0)
		return ret;
	r->st.resyncs++;
	return 0;
}

/* ---- progress ------------------------------------------------------------------ */

int rpc_progress(struct wave_rpc *r, bool force_report)
{
	int done = 0;

	report(r, wave_now_ns(), force_report);
	if (!r->h)
		return 0;
	(void)rpc_flush(r);
	done = wave_host_poll(r->h, 0); /* carries decisions out through on_rpc_msg() */
	(void)rpc_flush(r);
	return done > 0 ? done : 0;
}

int rpc_connect(struct wave_rpc *r, const char *uri, const struct wave_host_opts *ho,
		struct wave_error *err)
{
	struct host_domain d = { .id = WAVE_DOMAIN_RPC, .first = WAVE_MSG_RPC_FIRST,
				 .last = WAVE_MSG_RPC_LAST, .on_msg = on_rpc_msg,
				 .on_state = on_state, .replay = replay, .user = r };
	struct wave_host_opts o = *ho;
	int ret;

	o.domains = WAVE_HOST_DOMAIN(WAVE_DOMAIN_RPC);
	if ((ret = host_new(uri, &o, &r->h)) < 0 || (ret = host_add_domain(r->h, &d)) < 0 ||
	    (ret = outbox_init(&r->ob, r->h, RPC_BATCH)) < 0)
		return ret;
	/* 1: no agent yet, fallback until one welcomes us. 0: welcomed and
	 * resynced: the agent decides from now on. */
	ret = host_start(r->h, true, err);
	if (ret == 0)
		r->agent = true;
	return ret < 0 ? ret : 0;
}
