/* SPDX-License-Identifier: MIT */
/*
 * The rpc domain's quality model for replay (rpc_replay.h).
 *
 * The workload of an rpc trace is, per report period, each bucket's
 * arrivals (ARRIVALS) and the service times the workers reported (LOAD:
 * completions and their summed service time), with the workers as they
 * came and went. A request of a bucket costs the mean service time of the
 * worker that served the bucket in the recording that period (the
 * period's mean when that worker reported none, then the trace's so far):
 * what a request costs follows it, whichever worker the policy picks.
 *
 * The model plays the periods, in order, on a server of its own against
 * the policy, in closed loop:
 *  - each bucket's arrivals go to the worker the model's table names
 *    (none live: unrouted); a worker is a FIFO server fed its period's
 *    requests at random times over the period (a seeded generator: the
 *    same trace gives the same times), each at its mean cost, its backlog
 *    carried into the next period; each request's wait (arrival to the
 *    start of its service) is measured;
 *  - at each period's end the agent hears each worker's LOAD (queue depth,
 *    busy time, completions and service time, from the model's queues),
 *    the recorded ARRIVALS and the REPORT;
 *  - workers come and go as recorded; as the library's host does
 *    (rpc_host.c), the first takes the whole table in a new epoch and a
 *    leaving one's buckets go to the others in turn, the agent told with
 *    BUCKETS;
 *  - each MOVE and PRESTAGE is committed or aborted by the host's rule
 *    (rpc_txn.h, on txn_check()) and answered once. Prestaged workers are
 *    counted, not used: the recorded arrivals are per bucket, so no
 *    request is known to have gone through a dispatcher.
 * The trace as recorded gets the same figures from the same queues fed
 * through the recorded table (its BUCKETS and committed MOVEs).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <wave/rpc_state.h>

#include "../../core/core.h"
#include "rpc_replay.h"
#include "rpc_txn.h"

#define WORKER_FIGURES 8      /* the first workers get a busy figure each */
#define SETTLE_MAX (1u << 22) /* messages one event may cause */
#define BACKLOG_MAX (1u << 24) /* unfinished requests a worker may hold */

/* A request the model's worker has not finished. */
struct preq {
	double begin, cost;
};

struct mworker {
	bool live, seen;
	struct preq *q;                 /* not finished, in order: q[qh..qh+qn) */
	size_t qh, qn, qcap;
	uint32_t gen;
	double free_at;                 /* the model's FIFO: when its work is done */
	uint64_t rec_completions, rec_service; /* recorded LOAD, this period */
	uint64_t arrivals;              /* routed to it, this period */
	double work;                    /* their cost, this period */
	double busy;                    /* over the trace */
};

struct rhost {
	struct wave_rpc_dims dims;
	uint32_t n_entries, epoch, spread, n_live;
	uint32_t *table, *seq, *rec; /* played table, its seqs, the recorded one */
	uint32_t *staged;            /* per dispatcher */
	uint64_t *arr;               /* per entry, this period */
	struct mworker *w;
	uint64_t now;
	uint64_t rng;                /* arrival times: seeded, so deterministic */
	double mean_cost;            /* the trace's so far */
	uint64_t cost_n;
	/* playing against a policy */
	bool model;
	struct wave_rpc_state *st;
	struct wave_plugin_ctx *ctx;
	struct replay_q to_agent, to_host;
	/* measured */
	struct replay_hist waits;
	uint64_t requests, unrouted, moves, prestages, aborts, periods, errors;
	double imb_sum, imb_max, span;
	uint32_t queue_max;
};

int rpc_replay_setup(struct trace_reader *r, struct wave_msg *setup, struct wave_rpc_msg *d)
{
	if (replay_find_setup(r, setup) < 0 || wave_rpc_msg_decode(setup, NULL, d) < 0)
		return -EBADMSG;
	return 0;
}

/* ---- the table and the workers, as the host keeps them ------------------ */

static bool live(const struct rhost *h, uint32_t w)
{
	return w < h->dims.max_workers && h->w[w].live;
}

static int to_agent(struct rhost *h, const struct wave_rpc_msg *d)
{
	struct wave_msg m;
	int ret;

	if (!h->model)
		return 0;
	ret = wave_rpc_msg_encode(d, &h->dims, &m);
	return ret < 0 ? ret : replay_q_push(&h->to_agent, &m);
}

/* The host's own change of entries [@b, @b + @n), told with BUCKETS. */
static int tell_buckets(struct rhost *h, uint32_t b, uint32_t n)
{
	int ret = 0;

	for (uint32_t k = 0; k < n && !ret; k += WAVE_RPC_BUCKETS_PER_MSG) {
		struct wave_rpc_msg d = { .type = WAVE_RPC_BUCKETS, .bucket = b + k,
					  .epoch = h->epoch };

		for (; d.n < WAVE_RPC_BUCKETS_PER_MSG && k + d.n < n; d.n++) {
			d.e[d.n].a = h->table[b + k + d.n];
			d.e[d.n].b = h->seq[b + k + d.n];
		}
		ret = to_agent(h, &d);
	}
	return ret;
}

static int worker_add(struct rhost *h, const struct wave_rpc_msg *d, const struct wave_msg *m)
{
	int ret;

	if (live(h, d->worker))
		return 0;
	h->w[d->worker].live = h->w[d->worker].seen = true;
	h->w[d->worker].gen = d->gen;
	if (h->w[d->worker].free_at < (double)h->now)
		h->w[d->worker].free_at = (double)h->now;
	if (!h->model)
		return 0;
	if ((ret = replay_q_push(&h->to_agent, m)) < 0 || ++h->n_live > 1)
		return ret < 0 ? ret : 0;
	/* The first worker takes the whole table: a new epoch. */
	h->epoch++;
	for (uint32_t b = 0; b < h->n_entries; b++) {
		h->table[b] = d->worker;
		h->seq[b]++;
	}
	return tell_buckets(h, 0, h->n_entries);
}

/* The next live worker other than @not, in turn. */
static uint32_t spread_next(struct rhost *h, uint32_t not)
{
	for (uint32_t i = 0; i < h->dims.max_workers; i++) {
		uint32_t w = (h->spread + i) % h->dims.max_workers;

		if (w != not && live(h, w)) {
			h->spread = w + 1;
			return w;
		}
	}
	return WAVE_RPC_NO_WORKER;
}

static int worker_del(struct rhost *h, const struct wave_rpc_msg *d, const struct wave_msg *m)
{
	int ret = 0;

	if (!live(h, d->worker))
		return 0;
	if (h->model) {
		if (h->n_live == 1)
			return 0; /* the host refuses: its buckets have nowhere to go */
		for (uint32_t b = 0; b < h->n_entries && !ret; b++)
			if (h->table[b] == d->worker) {
				h->table[b] = spread_next(h, d->worker);
				h->seq[b]++;
				ret = tell_buckets(h, b, 1);
			}
		for (uint32_t k = 0; k < h->dims.n_dispatchers; k++)
			if (h->staged[k] == d->worker)
				h->staged[k] = WAVE_RPC_NO_WORKER;
		h->n_live--;
		if (ret == 0)
			ret = replay_q_push(&h->to_agent, m);
	}
	h->w[d->worker].live = false;
	return ret;
}

/* Recorded BUCKETS: the recorded table; the played one takes them only
 * where it has no worker yet (a trace begun with the host's resync). */
static void buckets(struct rhost *h, const struct wave_rpc_msg *d)
{
	for (uint32_t k = 0; k < d->n && d->bucket + k < h->n_entries; k++) {
		uint32_t b = d->bucket + k;

		h->rec[b] = d->e[k].a;
		if (h->model && h->table[b] != WAVE_RPC_NO_WORKER)
			continue;
		h->table[b] = d->e[k].a;
		h->seq[b] = d->e[k].b;
		h->epoch = d->epoch;
	}
}

/* A recorded OUTCOME: the recorded table follows committed MOVEs. */
static void recorded_outcome(struct rhost *h, const struct wave_rpc_msg *d)
{
	if (d->decision != WAVE_RPC_MOVE) {
		h->prestages += !h->model && d->result == WAVE_COMMITTED;
	} else if (d->bucket < h->n_entries) {
		h->rec[d->bucket] = d->cur_worker;
		if (!h->model) {
			h->table[d->bucket] = d->cur_worker;
			h->seq[d->bucket] = d->seq;
			h->epoch = d->epoch;
			h->moves += d->result == WAVE_COMMITTED;
		}
	}
	h->aborts += !h->model && d->result != WAVE_COMMITTED;
}

/* ---- decisions on the model's host ------------------------------------- */

static int decision(struct rhost *h, const struct wave_msg *m)
{
	struct wave_rpc_msg d, o;
	enum wave_result res;
	bool is;

	if (wave_rpc_msg_decode(m, &h->dims, &d) < 0 ||
	    (d.type != WAVE_RPC_MOVE && d.type != WAVE_RPC_PRESTAGE)) {
		h->errors++; /* the state model let out what the host cannot take */
		return 0;
	}
	is = live(h, d.worker) && h->w[d.worker].gen == d.gen;
	o = (struct wave_rpc_msg){ .type = WAVE_RPC_OUTCOME, .decision = d.type,
				   .bucket = d.bucket, .worker = d.worker, .gen = d.gen,
				   .now_ns = h->now };
	if (d.type == WAVE_RPC_MOVE) {
		res = rpc_move_check(&d, is, h->epoch, h->seq[d.bucket], h->table[d.bucket]);
		if (res == WAVE_COMMITTED) {
			h->table[d.bucket] = d.worker;
			h->seq[d.bucket]++;
			h->moves++;
		}
		o.why = (uint8_t)rpc_why(res, d.epoch != h->epoch);
		o.seq = h->seq[d.bucket];
		o.cur_worker = h->table[d.bucket];
	} else {
		res = rpc_prestage_check(&d, is, h->epoch);
		if (res == WAVE_COMMITTED) {
			h->staged[d.bucket] = d.worker;
			h->prestages++;
		}
		o.why = (uint8_t)rpc_why(res, true);
		o.cur_worker = h->staged[d.bucket];
	}
	h->aborts += res != WAVE_COMMITTED;
	o.result = (uint8_t)res;
	o.epoch = h->epoch;
	return to_agent(h, &o);
}

static void state_take(void *user, const struct wave_msg *m)
{
	struct rhost *h = user;

	if (wave_rpc_state_apply(h->st, h->ctx, m) < 0)
		h->errors++;
}

static int host_take(void *user, const struct wave_msg *m)
{
	return decision(user, m);
}

/* Delivers both ways, in order, until quiet. */
static int run(struct rhost *h)
{
	return replay_settle(&h->to_agent, &h->to_host, state_take, host_take, h, SETTLE_MAX);
}

/* ---- the periods ------------------------------------------------------- */

/* What a request of entry @b costs this period (see the top). */
static double cost(const struct rhost *h, uint32_t b, double period_mean)
{
	const struct mworker *w = h->rec[b] < h->dims.max_workers ? &h->w[h->rec[b]] : NULL;

	if (w && w->rec_completions)
		return (double)w->rec_service / (double)w->rec_completions;
	return period_mean > 0 ? period_mean : h->mean_cost;
}

/* The period's costs: each worker's mean from its recorded LOAD, their
 * mean, and the trace's so far. */
static double period_mean(struct rhost *h)
{
	uint64_t n = 0, sum = 0;

	for (uint32_t w = 0; w < h->dims.max_workers; w++) {
		n += h->w[w].rec_completions;
		sum += h->w[w].rec_service;
	}
	if (!n)
		return 0;
	h->mean_cost = (h->mean_cost * (double)h->cost_n + (double)sum) / (double)(h->cost_n + n);
	h->cost_n += n;
	return (double)sum / (double)n;
}

/* A uniform double in [0, 1): xorshift64*, seeded at the start. */
static double uniform(struct rhost *h)
{
	h->rng ^= h->rng >> 12;
	h->rng ^= h->rng << 25;
	h->rng ^= h->rng >> 27;
	return (double)((h->rng * UINT64_C(2685821657736338717)) >> 11) / 9007199254740992.0;
}

/* Worker @wi's requests of the period from @start to @end, at random
 * gaps (uniform, their mean the period over the requests: a few may fall
 * past the end), each at its mean cost, through its FIFO. Then its LOAD
 * for the agent. */
static int backlog_push(struct mworker *w, double begin, double cost)
{
	if (w->qh + w->qn == w->qcap && w->qh) {
		memmove(w->q, w->q + w->qh, w->qn * sizeof(*w->q));
		w->qh = 0;
	} else if (w->qn == w->qcap) {
		size_t cap = w->qcap ? w->qcap * 2 : 256;
		struct preq *q = cap <= BACKLOG_MAX ? realloc(w->q, cap * sizeof(*q)) : NULL;

		if (!q)
			return -ENOBUFS;
		w->q = q;
		w->qcap = cap;
	}
	w->q[w->qh + w->qn++] = (struct preq){ begin, cost };
	return 0;
}

static int serve(struct rhost *h, uint32_t wi, double start, double end)
{
	struct mworker *w = &h->w[wi];
	double s = w->arrivals ? w->work / (double)w->arrivals : 0;
	double gap = w->arrivals ? (end - start) / (double)w->arrivals : 0;
	double before = w->free_at > start ? w->free_at - start : 0, left, busy, at = start;
	struct wave_rpc_msg d = { .type = WAVE_RPC_LOAD, .worker = wi };
	int ret;

	for (uint64_t k = 0; k < w->arrivals; k++) {
		double begin;

		at += 2 * gap * uniform(h);
		begin = w->free_at > at ? w->free_at : at;
		replay_hist_add(&h->waits, (uint64_t)(begin - at), 1);
		w->free_at = begin + s;
		if ((ret = backlog_push(w, begin, s)) < 0)
			return ret;
	}
	left = w->free_at > end ? w->free_at - end : 0;
	busy = before + w->work - left;
	if (busy < 0)
		busy = 0; /* rounding */
	w->busy += busy;
	d.busy_ns = (uint64_t)busy;
	/* What finished in the period, and what waits at its end. */
	while (w->qn && w->q[w->qh].begin + w->q[w->qh].cost <= end) {
		d.completions++;
		d.service_ns += (uint64_t)w->q[w->qh].cost;
		if ((uint64_t)w->q[w->qh].cost > d.max_service_ns)
			d.max_service_ns = (uint64_t)w->q[w->qh].cost;
		w->qh++;
		w->qn--;
	}
	d.queue_depth = (uint32_t)(w->qn - (w->qn && w->q[w->qh].begin <= end));
	if (d.queue_depth > h->queue_max)
		h->queue_max = d.queue_depth;
	w->arrivals = 0;
	w->work = 0;
	return w->live && (d.busy_ns || d.queue_depth) ? to_agent(h, &d) : 0;
}

/* The period closed by REPORT @d: its requests through the played table. */
static int report(struct rhost *h, const struct wave_rpc_msg *d, const struct wave_msg *m)
{
	double mean = period_mean(h), max = 0, sum = 0;
	double end = (double)d->now_ns, start = end - (double)d->period_ns;
	uint32_t n = 0;
	int ret = 0;

	for (uint32_t b = 0; b < h->n_entries; b++) {
		uint32_t wi = h->table[b];

		if (!h->arr[b])
			continue;
		h->requests += h->arr[b];
		if (!live(h, wi)) {
			h->unrouted += h->arr[b];
		} else {
			h->w[wi].arrivals += h->arr[b];
			h->w[wi].work += (double)h->arr[b] * cost(h, b, mean);
		}
		h->arr[b] = 0;
	}
	for (uint32_t wi = 0; wi < h->dims.max_workers; wi++)
		if (live(h, wi)) {
			max = h->w[wi].work > max ? h->w[wi].work : max;
			sum += h->w[wi].work;
			n++;
		}
	if (sum > 0) { /* imbalance: the busiest worker's offered work over the mean */
		h->imb_sum += max * n / sum;
		h->imb_max = max * n / sum > h->imb_max ? max * n / sum : h->imb_max;
		h->periods++;
	}
	h->span += (double)d->period_ns;
	for (uint32_t wi = 0; wi < h->dims.max_workers && !ret; wi++) {
		ret = serve(h, wi, start, end);
		h->w[wi].rec_completions = h->w[wi].rec_service = 0;
	}
	if (ret == 0 && h->model && (ret = replay_q_push(&h->to_agent, m)) == 0)
		ret = run(h);
	return ret;
}

/* One recorded event. */
static int event(struct rhost *h, const struct wave_rpc_msg *d, const struct wave_msg *m)
{
	int ret = 0;

	switch (d->type) {
	case WAVE_RPC_WORKER_ADD:
		ret = worker_add(h, d, m);
		break;
	case WAVE_RPC_WORKER_DEL:
		ret = worker_del(h, d, m);
		break;
	case WAVE_RPC_BUCKETS:
		buckets(h, d);
		return 0;
	case WAVE_RPC_LOAD:
		h->w[d->worker].rec_completions += d->completions;
		h->w[d->worker].rec_service += d->service_ns;
		return 0;
	case WAVE_RPC_ARRIVALS:
		for (unsigned k = 0; k < d->n; k++)
			if (d->e[k].a < h->n_entries)
				h->arr[d->e[k].a] += d->e[k].b;
		ret = h->model ? replay_q_push(&h->to_agent, m) : 0;
		break;
	case WAVE_RPC_REPORT:
		return report(h, d, m);
	case WAVE_RPC_OUTCOME:
		recorded_outcome(h, d);
		return 0;
	default:
		return 0;
	}
	return ret < 0 || !h->model ? ret : run(h);
}

/* ---- the figures ------------------------------------------------------- */

static const char *const busy_names[WORKER_FIGURES] = { "w0_busy", "w1_busy", "w2_busy",
							"w3_busy", "w4_busy", "w5_busy",
							"w6_busy", "w7_busy" };

static void figures(const struct rhost *h, struct replay_figures *f)
{
	double hi = 0, lo = -1;

	for (uint32_t w = 0; w < h->dims.max_workers; w++)
		if (h->w[w].seen) {
			hi = h->w[w].busy > hi ? h->w[w].busy : hi;
			lo = lo < 0 || h->w[w].busy < lo ? h->w[w].busy : lo;
		}
	replay_figure(f, "requests", "", (double)h->requests);
	replay_figure(f, "unrouted", "", (double)h->unrouted);
	replay_figure(f, "moves", "", (double)h->moves);
	replay_figure(f, "prestages", "", (double)h->prestages);
	replay_figure(f, "aborts", "", (double)h->aborts);
	replay_figure(f, "wait_mean", "us",
		      h->waits.count ? h->waits.sum / (double)h->waits.count / 1e3 : 0);
	replay_figure(f, "wait_p50", "us", (double)replay_hist_quantile(&h->waits, 0.5) / 1e3);
	replay_figure(f, "wait_p99", "us", (double)replay_hist_quantile(&h->waits, 0.99) / 1e3);
	replay_figure(f, "wait_max", "us", (double)replay_hist_quantile(&h->waits, 1.0) / 1e3);
	replay_figure(f, "imbalance_mean", "x", h->periods ? h->imb_sum / (double)h->periods : 0);
	replay_figure(f, "imbalance_max", "x", h->imb_max);
	replay_figure(f, "queue_max", "req", (double)h->queue_max);
	replay_figure(f, "busy_max", "%", h->span > 0 ? 100.0 * hi / h->span : 0);
	replay_figure(f, "busy_min", "%", h->span > 0 && lo > 0 ? 100.0 * lo / h->span : 0);
	for (uint32_t w = 0; w < WORKER_FIGURES && w < h->dims.max_workers; w++)
		replay_figure(f, busy_names[w], "%",
			      h->span > 0 ? 100.0 * h->w[w].busy / h->span : 0);
	replay_figure(f, "model_errors", "", (double)h->errors);
}

/* ---- the model's life -------------------------------------------------- */

static int host_init(struct rhost *h, const struct wave_msg *setup, const struct wave_rpc_msg *s,
		     struct wave_plugin *p, const struct wave_params *params,
		     struct wave_error *err)
{
	int ret;

	h->dims = s->dims;
	h->n_entries = s->dims.n_buckets + s->dims.n_classes;
	h->epoch = s->epoch;
	h->rng = UINT64_C(0x2545f4914f6cdd1d);
	h->table = malloc(h->n_entries * sizeof(*h->table));
	h->rec = malloc(h->n_entries * sizeof(*h->rec));
	h->seq = calloc(h->n_entries, sizeof(*h->seq));
	h->arr = calloc(h->n_entries, sizeof(*h->arr));
	h->staged = malloc((s->dims.n_dispatchers + 1) * sizeof(*h->staged));
	h->w = calloc(s->dims.max_workers, sizeof(*h->w));
	if (!h->table || !h->rec || !h->seq || !h->arr || !h->staged || !h->w)
		return wave_error_set(err, -ENOMEM, "replay", 0, 0, "out of memory");
	for (uint32_t b = 0; b < h->n_entries; b++)
		h->table[b] = h->rec[b] = WAVE_RPC_NO_WORKER;
	for (uint32_t k = 0; k < s->dims.n_dispatchers; k++)
		h->staged[k] = WAVE_RPC_NO_WORKER;
	if (!p)
		return 0;
	h->model = true;
	if ((ret = wave_rpc_state_create(setup, &h->st)) < 0)
		return wave_error_set(err, ret, "replay", 0, 0, "the rpc state model: %s",
				      wave_strerror(ret));
	return replay_plugin_start(p, params, h->st, &h->to_host, &h->ctx, err);
}

static void host_fini(struct rhost *h)
{
	wave_plugin_ctx_destroy(h->ctx);
	wave_rpc_state_destroy(h->st);
	free(h->table);
	free(h->rec);
	free(h->seq);
	free(h->arr);
	free(h->staged);
	for (uint32_t w = 0; h->w && w < h->dims.max_workers; w++)
		free(h->w[w].q);
	free(h->w);
	replay_q_free(&h->to_agent);
	replay_q_free(&h->to_host);
}

static int quality(struct trace_reader *r, struct wave_plugin *p,
		   const struct wave_params *params, struct replay_figures *f,
		   struct wave_error *err)
{
	struct rhost *h = calloc(1, sizeof(*h));
	struct wave_rpc_msg s, d;
	struct wave_msg setup;
	struct trace_rec rec;
	int ret;

	memset(f, 0, sizeof(*f));
	if (!h)
		return wave_error_set(err, -ENOMEM, "replay", 0, 0, "out of memory");
	if (rpc_replay_setup(r, &setup, &s) < 0) {
		free(h);
		return wave_error_set(err, -EBADMSG, "replay", 0, 0,
				      "the trace has no rpc SETUP (the host's sizes)");
	}
	if ((ret = host_init(h, &setup, &s, p, params, err)) < 0)
		goto out;
	trace_reader_rewind(r);
	while ((ret = trace_reader_next(r, &rec, err)) == 1) {
		if (rec.kind != TRACE_EVENT || rec.msg.type == WAVE_RPC_SETUP ||
		    wave_rpc_msg_decode(&rec.msg, &h->dims, &d) < 0)
			continue;
		if (d.now_ns > h->now)
			h->now = d.now_ns;
		if ((ret = event(h, &d, &rec.msg)) < 0) {
			wave_error_set(err, ret, "replay", 0, 0, "offset %llu: the model host: %s",
				       (unsigned long long)rec.offset, wave_strerror(ret));
			break;
		}
	}
	if (ret == 0)
		figures(h, f);
out:
	host_fini(h);
	free(h);
	return ret;
}

const struct replay_model rpc_replay_model = {
	.quality = quality,
	.chrome = rpc_replay_chrome,
	.describe = rpc_replay_describe,
};
