/* SPDX-License-Identifier: MIT */
/*
 * rpc_darc: request-level steering that protects short requests from long
 * ones, after DARC (Demikernel's Perséphone, Demoulin et al., SOSP'21):
 * workers are reserved for the short request classes, so that a short
 * request never waits behind a long one on its own workers.
 *
 * The host's dispatcher hands each request of class c to the worker
 * prestaged for dispatcher slot c (wave_rpc_pick(r, c): one slot per
 * class, n_dispatchers >= n_classes). After every load report this policy
 * refreshes each class's worker:
 *  - classes are ordered by their mean service time, from the host's
 *    per-class reports (wave_rpc_class_load(); the model's
 *    wave_rpc_bucket.service_ns of the class entry). A class with none
 *    reported yet counts as the longest;
 *  - each class but the longest reserves ceil(demand x (1 + headroom))
 *    live workers, at least one, in that order, where its demand is its
 *    arrival rate times its service time (in workers); the longest class
 *    gets the workers left, at least one (so the last reservation may be
 *    cut short);
 *  - a class's next worker is the one with the shortest reported queue
 *    (this round's choices counted) among its own; a shorter class may
 *    also take an idle worker (queue 0) of a longer class, never the
 *    other way round: long requests never reach a short class's workers.
 * With no service time known for any class, every class may use every
 * worker (join the shortest queue), until reports come in.
 *
 * Parameters (domains.rpc.params):
 *   headroom   spare capacity reserved above a class's demand (default 0.2)
 * Counters: "refreshes" (prestages that changed a class's worker).
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include <wave/plugin.h>
#include <wave/plugin_rpc.h>

struct cls {
	uint32_t id;
	double service_ns; /* 0: unknown */
	double demand;     /* workers' worth of work */
	uint32_t first, n; /* its workers: live[first .. first + n) */
};

struct darc {
	double headroom;
	int ctr_refreshes;
	uint32_t *live, *given; /* live worker numbers; choices per worker number */
	uint32_t *depth;        /* reported queue depth per worker number */
	struct cls *cls;
	uint32_t n_workers, n_classes;
};

static int darc_init(struct wave_plugin_ctx *ctx)
{
	struct darc *d = calloc(1, sizeof(*d));

	if (!d)
		return -ENOMEM;
	d->headroom = wave_plugin_param_double(ctx, "headroom", 0.2);
	if (!(d->headroom >= 0 && d->headroom <= 100)) {
		wave_plugin_log(ctx, WAVE_LOG_ERROR, "headroom: 0..100");
		free(d);
		return -EINVAL;
	}
	d->ctr_refreshes = wave_plugin_counter(ctx, "refreshes");
	wave_plugin_set_priv(ctx, d);
	return 0;
}

static void darc_fini(struct wave_plugin_ctx *ctx)
{
	struct darc *d = wave_plugin_priv(ctx);

	free(d->live);
	free(d->given);
	free(d->depth);
	free(d->cls);
	free(d);
}

static int ensure_sizes(struct darc *d, const struct wave_rpc_info *info)
{
	uint32_t nw = info->dims.max_workers, nc = info->dims.n_classes;

	if (d->n_workers == nw && d->n_classes == nc)
		return 0;
	free(d->live);
	free(d->given);
	free(d->depth);
	free(d->cls);
	d->live = calloc(nw, sizeof(*d->live));
	d->given = calloc(nw, sizeof(*d->given));
	d->depth = calloc(nw, sizeof(*d->depth));
	d->cls = calloc(nc + 1u, sizeof(*d->cls));
	if (!d->live || !d->given || !d->depth || !d->cls) {
		d->n_workers = d->n_classes = 0;
		return -ENOMEM;
	}
	d->n_workers = nw;
	d->n_classes = nc;
	return 0;
}

/* Shorter service first; unknown (0) last; then by class number. */
static int by_service(const void *a, const void *b)
{
	const struct cls *x = a, *y = b;
	double sx = x->service_ns > 0 ? x->service_ns : INFINITY;
	double sy = y->service_ns > 0 ? y->service_ns : INFINITY;

	if (sx != sy)
		return sx < sy ? -1 : 1;
	return (x->id > y->id) - (x->id < y->id);
}

/* The live workers and their queues. Return: how many live. */
static uint32_t gather_workers(struct wave_plugin_ctx *ctx, struct darc *d)
{
	struct wave_rpc_worker w;
	uint32_t n = 0;

	for (uint32_t i = 0; i < d->n_workers; i++) {
		d->given[i] = 0;
		if (wave_plugin_rpc_worker(ctx, i, &w) == 0) {
			d->depth[i] = w.queue_depth;
			d->live[n++] = i;
		}
	}
	return n;
}

/* Each class's service time and demand, in order (see the top). Return:
 * whether any class's service time is known. */
static bool gather_classes(struct wave_plugin_ctx *ctx, struct darc *d,
			   const struct wave_rpc_info *info)
{
	struct wave_rpc_bucket b;
	bool known = false;

	for (uint32_t c = 0; c < d->n_classes; c++) {
		struct cls *k = &d->cls[c];

		*k = (struct cls){ .id = c };
		if (wave_plugin_rpc_bucket(ctx, info->dims.n_buckets + c, &b) == 0) {
			k->service_ns = b.service_ns;
			k->demand = b.rate * b.service_ns / 1e9;
		}
		known |= k->service_ns > 0;
	}
	qsort(d->cls, d->n_classes, sizeof(*d->cls), by_service);
	return known;
}

/* Splits the @n live workers among the classes, in order (see the top).
 * With more classes than workers, the longest ones share the last. */
static void reserve(struct darc *d, uint32_t n)
{
	uint32_t next = 0;

	for (uint32_t i = 0; i < d->n_classes; i++) {
		struct cls *k = &d->cls[i];
		uint32_t longer = d->n_classes - i - 1, left = n - next;
		double want = longer ? ceil(k->demand * (1 + d->headroom)) : left;

		if (left == 0) {
			k->first = n - 1;
			k->n = 1;
			continue;
		}
		/* One worker at least, and one left for each longer class. */
		want = fmin(fmax(want, 1), left > longer ? left - longer : 1);
		k->first = next;
		k->n = (uint32_t)want;
		next += k->n;
	}
}

/* Is worker @a a better choice than @b: a shorter queue, this round's
 * choices counted? */
static bool better(const struct darc *d, uint32_t a, uint32_t b)
{
	return (uint64_t)d->depth[a] + d->given[a] < (uint64_t)d->depth[b] + d->given[b];
}

static bool idle(const struct darc *d, uint32_t w)
{
	return d->depth[w] == 0 && d->given[w] == 0;
}

/* The next worker of the class at position @i of the order: its own with
 * the shortest queue, or else (@steal) an idle one of a longer class. */
static uint32_t choose(const struct darc *d, uint32_t i, bool steal)
{
	const struct cls *k = &d->cls[i];
	uint32_t best = d->live[k->first];

	for (uint32_t j = k->first; j < k->first + k->n; j++)
		if (better(d, d->live[j], best))
			best = d->live[j];
	for (uint32_t m = i + 1; steal && !idle(d, best) && m < d->n_classes; m++) {
		const struct cls *l = &d->cls[m];
		for (uint32_t j = l->first; j < l->first + l->n; j++)
			if (idle(d, d->live[j]))
				return d->live[j];
	}
	return best;
}

static int darc_load_report(struct wave_plugin_ctx *ctx, uint64_t now_ns, uint64_t period_ns)
{
	struct darc *d = wave_plugin_priv(ctx);
	struct wave_rpc_info info;
	uint32_t n;
	bool known;
	int ret;

	(void)now_ns, (void)period_ns;
	if ((ret = wave_plugin_rpc_info(ctx, &info)) < 0 || (ret = ensure_sizes(d, &info)) < 0)
		return ret;
	if (d->n_classes == 0 || (n = gather_workers(ctx, d)) == 0)
		return 0;
	known = gather_classes(ctx, d, &info);
	if (known) {
		reserve(d, n);
	} else {
		for (uint32_t i = 0; i < d->n_classes; i++)
			d->cls[i].first = 0, d->cls[i].n = n; /* everyone everywhere */
	}
	for (uint32_t i = 0; i < d->n_classes; i++) {
		uint32_t c = d->cls[i].id, w;

		if (c >= info.dims.n_dispatchers)
			continue; /* no pick slot for this class */
		w = choose(d, i, known);
		d->given[w]++;
		if (wave_plugin_rpc_prestaged(ctx, c) == (int)w)
			continue;
		ret = wave_plugin_rpc_prestage(ctx, c, w);
		if (ret == 0)
			wave_plugin_counter_add(ctx, d->ctr_refreshes, 1);
		else if (ret == -EAGAIN)
			break; /* the channel is full: the next report refreshes */
	}
	return 0;
}

/* The next report chooses again. */
static int darc_txn_aborted(struct wave_plugin_ctx *ctx, uint16_t decision, uint32_t target,
			    uint32_t worker, unsigned result, unsigned why)
{
	(void)ctx, (void)decision, (void)target, (void)worker, (void)result, (void)why;
	return 0;
}

static const struct wave_rpc_ops darc_ops = {
	.size = sizeof(struct wave_rpc_ops),
	.load_report = darc_load_report,
	.txn_aborted = darc_txn_aborted,
};

WAVE_PLUGIN_DEFINE(rpc_darc, WAVE_DOMAIN_RPC, "1.0.0",
		   "request-level DARC: workers reserved for short request classes by their "
		   "service times, long requests kept off them",
		   darc_init, darc_fini, &darc_ops)
