/* SPDX-License-Identifier: MIT */
/*
 * The host side of the rpc domain (include/wave/rpc.h): workers, the
 * steering table read lock-free by lookups, lock-free load accounting,
 * the fallback's static hash and the enforcement backend that follows the
 * table. What goes to and comes from the agent is in rpc_host_link.c.
 *
 * Lookups (steer, pick, arrive) and load accounting take no lock; every
 * other call runs under r->lock.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <wave/rpc.h>

#include "../../core/atomic.h"
#include "../../core/core.h"
#include "../../session/host_impl.h"
#include "rpc_host.h"

/* ---- the table ---------------------------------------------------------- */

int rpc_table_set(struct wave_rpc *r, uint32_t b, uint32_t w)
{
	int ret;

	if (r->f.size && (ret = r->f.bucket(r->f.user, b, w)) < 0)
		return ret;
	/* Pairs with the acquire loads of the lookups. */
	wave_store_release(&r->table[b], w);
	r->seq[b]++;
	return 0;
}

static uint32_t entry(const struct wave_rpc *r, uint32_t b)
{
	return wave_load_relaxed(&r->table[b]); /* under the lock: the last store is ours */
}

/* The live workers in order of number, into @out; how many. */
static uint32_t live_list(const struct wave_rpc *r, uint32_t *out)
{
	uint32_t n = 0;

	for (uint32_t w = 0; w < r->dims.max_workers; w++)
		if (rpc_live(r, w))
			out[n++] = w;
	return n;
}

/* A change the host makes on its own: one the backend refuses is not
 * made, and the entry keeps its worker. */
static void host_move(struct wave_rpc *r, uint32_t b, uint32_t w)
{
	if (rpc_table_set(r, b, w) < 0)
		wave_warn("rpc: the backend refused to steer bucket %u to worker %u: it stays",
			  b, w);
	else
		r->st.host_moves++;
}

void rpc_table_hash(struct wave_rpc *r)
{
	uint32_t *live = malloc(r->dims.max_workers * sizeof(*live));
	uint32_t n;

	if (!live) {
		wave_warn("rpc: no memory for the fallback hash: the table stays");
		return;
	}
	if ((n = live_list(r, live)) > 0) {
		r->epoch++;
		for (uint32_t b = 0; b < r->n_entries; b++)
			if (entry(r, b) != live[b % n])
				host_move(r, b, live[b % n]);
	}
	free(live);
}

/* The next live worker other than @not, in turn from r->spread. */
static uint32_t spread_next(struct wave_rpc *r, uint32_t not)
{
	for (uint32_t i = 0; i < r->dims.max_workers; i++) {
		uint32_t w = (r->spread + i) % r->dims.max_workers;

		if (w != not && rpc_live(r, w)) {
			r->spread = w + 1;
			return w;
		}
	}
	return WAVE_RPC_NO_WORKER; /* cannot happen: the caller checked */
}

/* Moves every entry of @w to the other live workers in turn, telling the
 * agent. Return: 0, or the follower's error (moved ones stay moved). */
static int move_away(struct wave_rpc *r, uint32_t w)
{
	int ret;

	for (uint32_t b = 0; b < r->n_entries; b++) {
		if (entry(r, b) != w)
			continue;
		if ((ret = rpc_table_set(r, b, spread_next(r, w))) < 0)
			return ret;
		r->st.host_moves++;
		rpc_emit_buckets(r, b, 1);
	}
	return 0;
}

/* The first worker takes the whole table: a new epoch. */
static void take_all(struct wave_rpc *r, uint32_t w)
{
	r->epoch++;
	for (uint32_t b = 0; b < r->n_entries; b++)
		host_move(r, b, w);
	rpc_emit_buckets(r, 0, r->n_entries);
}

/* ---- load accounting ------------------------------------------------------ */

static void take_worker(struct rworker *wk, uint32_t w, struct wave_rpc_msg *out)
{
	memset(out, 0, sizeof(*out));
	out->type = WAVE_RPC_LOAD;
	out->worker = w;
	/* Relaxed: each counter is whole on its own; a report racing the
	 * worker's update lands in this period or the next. */
	out->queue_depth = atomic_load_explicit(&wk->queue_depth, memory_order_relaxed);
	out->busy_ns = atomic_exchange_explicit(&wk->busy_ns, 0, memory_order_relaxed);
	out->completions = atomic_exchange_explicit(&wk->completions, 0, memory_order_relaxed);
	out->service_ns = atomic_exchange_explicit(&wk->service_ns, 0, memory_order_relaxed);
	out->max_service_ns = atomic_exchange_explicit(&wk->max_service_ns, 0,
						       memory_order_relaxed);
}

static void take_class(struct rclass *k, uint32_t entry, struct wave_rpc_msg *out)
{
	memset(out, 0, sizeof(*out));
	if (!wave_load_relaxed(&k->completions))
		return; /* type 0: nothing this period */
	out->type = WAVE_RPC_CLASS_LOAD;
	out->bucket = entry;
	out->completions = atomic_exchange_explicit(&k->completions, 0, memory_order_relaxed);
	out->service_ns = atomic_exchange_explicit(&k->service_ns, 0, memory_order_relaxed);
	out->max_service_ns = atomic_exchange_explicit(&k->max_service_ns, 0,
						       memory_order_relaxed);
}

/* Raises *@max to @v. */
static void atomic_max(_Atomic uint64_t *max, uint64_t v)
{
	uint64_t cur = atomic_load_explicit(max, memory_order_relaxed);

	while (v > cur && !atomic_compare_exchange_weak_explicit(max, &cur, v, memory_order_relaxed,
								 memory_order_relaxed))
		;
}

void rpc_harvest(struct wave_rpc *r)
{
	if (r->f.size && r->f.collect)
		r->f.collect(r->f.user, r);
	for (uint32_t w = 0; w < r->dims.max_workers; w++) {
		struct rworker *wk = &r->workers[w];

		if (!rpc_live(r, w))
			continue;
		if (atomic_exchange_explicit(&wk->reported, 0, memory_order_relaxed))
			take_worker(wk, w, &wk->last);
		else
			wk->last.type = 0; /* nothing this period */
	}
	for (uint32_t c = 0; c < r->dims.n_classes; c++)
		take_class(&r->classes[c], r->dims.n_buckets + c, &r->classes[c].last);
	for (uint32_t b = 0; b < r->n_entries; b++)
		r->last_arrivals[b] = wave_load_relaxed(&r->arrivals[b]) ?
			atomic_exchange_explicit(&r->arrivals[b], 0, memory_order_relaxed) : 0;
}

/* ---- the API: making and freeing -------------------------------------------- */

WAVE_API int wave_rpc_opts_init(struct wave_rpc_opts *o)
{
	if (!o)
		return -EINVAL;
	memset(o, 0, sizeof(*o));
	o->size = sizeof(*o);
	o->n_buckets = 128;
	o->max_workers = 64;
	o->report_us = 1000;
	o->fallback = WAVE_RPC_FALLBACK_KEEP;
	return 0;
}

static void rpc_free(struct wave_rpc *r)
{
	wave_host_close(r->h);
	if (r->f.size && r->f.fini)
		r->f.fini(r->f.user);
	free(r->table);
	free(r->seq);
	free(r->arrivals);
	free(r->last_arrivals);
	free(r->workers);
	free(r->classes);
	free(r->disp);
	outbox_fini(&r->ob);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

static int check_opts(const struct wave_rpc_opts *o, struct wave_rpc_dims *d)
{
	*d = (struct wave_rpc_dims){ o->n_buckets, o->n_classes, o->max_workers,
				     o->n_dispatchers };
	if (wave_rpc_dims_check(d) < 0 || o->report_us < 10 || o->report_us > 60000000u ||
	    o->fallback > WAVE_RPC_FALLBACK_HASH)
		return -EINVAL;
	return 0;
}

static int rpc_alloc(struct wave_rpc *r)
{
	r->table = malloc(r->n_entries * sizeof(*r->table));
	r->seq = calloc(r->n_entries, sizeof(*r->seq));
	r->arrivals = calloc(r->n_entries, sizeof(*r->arrivals));
	r->last_arrivals = calloc(r->n_entries, sizeof(*r->last_arrivals));
	r->workers = aligned_alloc(64, r->dims.max_workers * sizeof(*r->workers));
	r->disp = aligned_alloc(64, (r->dims.n_dispatchers + 1u) * sizeof(*r->disp));
	r->classes = aligned_alloc(64, (r->dims.n_classes + 1u) * sizeof(*r->classes));
	if (!r->table || !r->seq || !r->arrivals || !r->last_arrivals || !r->workers ||
	    !r->disp || !r->classes)
		return -ENOMEM;
	memset(r->workers, 0, r->dims.max_workers * sizeof(*r->workers));
	memset(r->classes, 0, (r->dims.n_classes + 1u) * sizeof(*r->classes));
	memset(r->disp, 0, (r->dims.n_dispatchers + 1u) * sizeof(*r->disp));
	for (uint32_t b = 0; b < r->n_entries; b++)
		atomic_init(&r->table[b], WAVE_RPC_NO_WORKER);
	for (uint32_t d = 0; d < r->dims.n_dispatchers; d++)
		atomic_init(&r->disp[d].staged, WAVE_RPC_NO_WORKER);
	for (uint32_t w = 0; w < r->dims.max_workers; w++)
		r->workers[w].fd = -1;
	return 0;
}

WAVE_API int wave_rpc_create(const char *uri, const struct wave_rpc_opts *opts,
			     struct wave_rpc **out, struct wave_error *err)
{
	struct wave_rpc_opts o;
	struct wave_host_opts ho;
	struct wave_rpc *r;
	int ret;

	wave_error_clear(err);
	wave_rpc_opts_init(&o);
	/* The size first: nothing past it is read from an older struct. */
	if (!out || (opts && wave_struct_copy(&o, sizeof(o), opts, opts->size,
					      WAVE_SIZE_TO(struct wave_rpc_opts, host),
					      "struct wave_rpc_opts") < 0))
		return -EINVAL;
	if (host_opts_copy(&ho, o.host) < 0)
		return -EINVAL;
	if (!(r = calloc(1, sizeof(*r))))
		return -ENOMEM;
	pthread_mutex_init(&r->lock, NULL);
	if ((ret = check_opts(&o, &r->dims)) < 0) {
		rpc_free(r);
		return ret;
	}
	r->mask = r->dims.n_buckets - 1;
	r->n_entries = r->dims.n_buckets + r->dims.n_classes;
	r->fallback = o.fallback;
	r->report_ns = (uint64_t)o.report_us * 1000u;
	r->last_report = wave_now_ns();
	r->next_report = r->last_report + r->report_ns;
	if ((ret = rpc_alloc(r)) < 0 || (uri && (ret = rpc_connect(r, uri, &ho, err)) < 0)) {
		rpc_free(r);
		return ret;
	}
	*out = r;
	return 0;
}

WAVE_API void wave_rpc_destroy(struct wave_rpc *r)
{
	if (r) {
		pthread_mutex_lock(&r->lock);
		(void)rpc_flush(r); /* the last outcomes, if the ring takes them */
		pthread_mutex_unlock(&r->lock);
		rpc_free(r);
	}
}

/* ---- workers --------------------------------------------------------------- */

static void reset_load(struct rworker *wk)
{
	atomic_store_explicit(&wk->reported, 0, memory_order_relaxed);
	atomic_store_explicit(&wk->queue_depth, 0, memory_order_relaxed);
	atomic_store_explicit(&wk->busy_ns, 0, memory_order_relaxed);
	atomic_store_explicit(&wk->completions, 0, memory_order_relaxed);
	atomic_store_explicit(&wk->service_ns, 0, memory_order_relaxed);
	atomic_store_explicit(&wk->max_service_ns, 0, memory_order_relaxed);
	wk->last.type = 0;
}

static int worker_add(struct wave_rpc *r, uint32_t w, int fd)
{
	struct rworker *wk = &r->workers[w];
	int ret;

	if (rpc_live(r, w))
		return -EEXIST;
	if (r->f.size && r->f.worker && (ret = r->f.worker(r->f.user, w, fd, 1)) < 0)
		return ret;
	wk->gen = wk->gen + 1 ? wk->gen + 1 : 1; /* 0 means never added */
	wk->fd = fd;
	reset_load(wk);
	/* Pairs with the acquire load in rpc_live(). */
	wave_store_release(&wk->live, 1u);
	r->n_live++;
	r->st.workers = r->n_live;
	rpc_emit_worker(r, WAVE_RPC_WORKER_ADD, w);
	if (r->n_live == 1)
		take_all(r, w);
	else if (!r->agent && r->fallback == WAVE_RPC_FALLBACK_HASH)
		rpc_table_hash(r);
	return 0;
}

WAVE_API int wave_rpc_worker_add(struct wave_rpc *r, uint32_t worker, int fd)
{
	int ret;

	if (!r || worker >= r->dims.max_workers || fd < -1)
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	ret = worker_add(r, worker, fd);
	pthread_mutex_unlock(&r->lock);
	return ret;
}

static int worker_remove(struct wave_rpc *r, uint32_t w)
{
	struct rworker *wk = &r->workers[w];
	int ret;

	if (!rpc_live(r, w))
		return -ENOENT;
	if (r->n_live == 1)
		return -EBUSY; /* its buckets have nowhere to go */
	if ((ret = move_away(r, w)) < 0)
		return ret;
	for (uint32_t d = 0; d < r->dims.n_dispatchers; d++)
		if (wave_load_relaxed(&r->disp[d].staged) == w)
			wave_store_release(&r->disp[d].staged, WAVE_RPC_NO_WORKER);
	/* Pairs with the acquire load in rpc_live(). */
	wave_store_release(&wk->live, 0u);
	r->n_live--;
	r->st.workers = r->n_live;
	if (r->f.size && r->f.worker)
		(void)r->f.worker(r->f.user, w, wk->fd, 0);
	rpc_emit_worker(r, WAVE_RPC_WORKER_DEL, w);
	if (!r->agent && r->fallback == WAVE_RPC_FALLBACK_HASH)
		rpc_table_hash(r);
	return 0;
}

WAVE_API int wave_rpc_worker_remove(struct wave_rpc *r, uint32_t worker)
{
	int ret;

	if (!r || worker >= r->dims.max_workers)
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	ret = worker_remove(r, worker);
	pthread_mutex_unlock(&r->lock);
	return ret;
}

/* A caller's load report over zeros; an older, smaller struct leaves the
 * fields it lacks at zero. */
static int rpc_load_copy(struct wave_rpc_load *v, const struct wave_rpc_load *l)
{
	return wave_struct_copy(v, sizeof(*v), l, l->size,
				WAVE_SIZE_TO(struct wave_rpc_load, max_service_ns),
				"struct wave_rpc_load");
}

WAVE_API int wave_rpc_worker_load(struct wave_rpc *r, uint32_t worker,
				  const struct wave_rpc_load *l)
{
	struct wave_rpc_load v = { .size = sizeof(v) };
	struct rworker *wk;

	if (!r || !l || worker >= r->dims.max_workers ||
	    rpc_load_copy(&v, l) < 0)
		return -EINVAL;
	if (!rpc_live(r, worker))
		return 0;
	wk = &r->workers[worker];
	/* Relaxed: counters only; the report takes them with exchanges. */
	atomic_store_explicit(&wk->queue_depth, v.queue_depth, memory_order_relaxed);
	atomic_fetch_add_explicit(&wk->busy_ns, v.busy_ns, memory_order_relaxed);
	atomic_fetch_add_explicit(&wk->completions, v.completions, memory_order_relaxed);
	atomic_fetch_add_explicit(&wk->service_ns, v.service_ns, memory_order_relaxed);
	atomic_max(&wk->max_service_ns, v.max_service_ns);
	atomic_store_explicit(&wk->reported, 1u, memory_order_relaxed);
	return 0;
}

WAVE_API int wave_rpc_class_load(struct wave_rpc *r, uint32_t cls, const struct wave_rpc_load *l)
{
	struct wave_rpc_load v = { .size = sizeof(v) };
	struct rclass *k;

	if (!r || !l || cls >= r->dims.n_classes ||
	    rpc_load_copy(&v, l) < 0)
		return -EINVAL;
	k = &r->classes[cls];
	/* Relaxed, as a worker's: a report racing this call may count its
	 * completions in one period and their times in the next. */
	atomic_fetch_add_explicit(&k->service_ns, v.service_ns, memory_order_relaxed);
	atomic_max(&k->max_service_ns, v.max_service_ns);
	atomic_fetch_add_explicit(&k->completions, v.completions, memory_order_relaxed);
	return 0;
}

/* ---- lookups: no lock ------------------------------------------------------- */

static int steer_entry(const struct wave_rpc *r, uint32_t b)
{
	/* Pairs with the release store in rpc_table_set(). */
	uint32_t w = wave_load_acquire(&r->table[b]);

	return w == WAVE_RPC_NO_WORKER ? -ENOENT : (int)w;
}

WAVE_API int wave_rpc_steer(const struct wave_rpc *r, uint64_t hash)
{
	return r ? steer_entry(r, (uint32_t)hash & r->mask) : -EINVAL;
}

WAVE_API int wave_rpc_steer_class(const struct wave_rpc *r, uint32_t cls)
{
	if (!r || cls >= r->dims.n_classes)
		return -EINVAL;
	return steer_entry(r, r->dims.n_buckets + cls);
}

WAVE_API int wave_rpc_arrivals(struct wave_rpc *r, uint32_t bucket, uint32_t n)
{
	if (!r || bucket >= r->n_entries)
		return -EINVAL;
	atomic_fetch_add_explicit(&r->arrivals[bucket], n, memory_order_relaxed);
	return 0;
}

WAVE_API int wave_rpc_arrive(struct wave_rpc *r, uint64_t hash)
{
	uint32_t b;

	if (!r)
		return -EINVAL;
	b = (uint32_t)hash & r->mask;
	atomic_fetch_add_explicit(&r->arrivals[b], 1u, memory_order_relaxed);
	return steer_entry(r, b);
}

WAVE_API int wave_rpc_pick(struct wave_rpc *r, uint32_t dispatcher)
{
	struct rdisp *d;
	uint32_t w;

	if (!r || dispatcher >= r->dims.n_dispatchers)
		return -EINVAL;
	d = &r->disp[dispatcher];
	/* Pairs with the release stores of the prestage and the removal. */
	w = wave_load_acquire(&d->staged);
	if (w != WAVE_RPC_NO_WORKER)
		return (int)w;
	for (uint32_t i = 0; i < r->dims.max_workers; i++) {
		w = (d->rr + i) % r->dims.max_workers;
		if (rpc_live(r, w)) {
			d->rr = w + 1;
			return (int)w;
		}
	}
	return -ENOENT;
}

/* ---- progress ---------------------------------------------------------------- */


WAVE_API int wave_rpc_poll(struct wave_rpc *r, int64_t timeout_ns)
{
	uint64_t deadline = wave_deadline(timeout_ns);
	int done = 0;

	if (!r)
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	for (;;) {
		done += rpc_progress(r, false);
		if (done || wave_now_ns() >= deadline)
			break;
		host_sleep(r->h, &r->lock, wave_min_u64(deadline, r->next_report), false);
	}
	pthread_mutex_unlock(&r->lock);
	return done;
}

WAVE_API int wave_rpc_flush(struct wave_rpc *r)
{
	int ret;

	if (!r)
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	(void)rpc_progress(r, true);
	ret = rpc_flush(r);
	pthread_mutex_unlock(&r->lock);
	return ret;
}

WAVE_API int wave_rpc_mode(struct wave_rpc *r)
{
	int mode;

	if (!r)
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	mode = r->agent ? WAVE_HOST_AGENT : WAVE_HOST_FALLBACK;
	pthread_mutex_unlock(&r->lock);
	return mode;
}

/* ---- the table, the follower, the counters ------------------------------------ */

WAVE_API int wave_rpc_table(struct wave_rpc *r, uint32_t first, uint32_t n, uint32_t *workers,
			    uint32_t *epoch)
{
	if (!r || (n && !workers) || first > r->n_entries || n > r->n_entries - first)
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	for (uint32_t i = 0; i < n; i++)
		workers[i] = entry(r, first + i);
	if (epoch)
		*epoch = r->epoch;
	pthread_mutex_unlock(&r->lock);
	return 0;
}

/* Brings a new follower up to date: every live worker, then every entry
 * that has a worker. */
static int catch_up(const struct wave_rpc_follower *f, struct wave_rpc *r)
{
	int ret;

	for (uint32_t w = 0; f->worker && w < r->dims.max_workers; w++)
		if (rpc_live(r, w) && (ret = f->worker(f->user, w, r->workers[w].fd, 1)) < 0)
			return ret;
	for (uint32_t b = 0; b < r->n_entries; b++) {
		uint32_t w = entry(r, b);

		if (w != WAVE_RPC_NO_WORKER && (ret = f->bucket(f->user, b, w)) < 0)
			return ret;
	}
	return 0;
}

WAVE_API int wave_rpc_follow(struct wave_rpc *r, const struct wave_rpc_follower *f)
{
	struct wave_rpc_follower nf = { 0 };
	int ret = 0;

	if (!r || (f && wave_struct_copy(&nf, sizeof(nf), f, f->size,
					 WAVE_SIZE_TO(struct wave_rpc_follower, user),
					 "struct wave_rpc_follower") < 0) ||
	    (f && !nf.bucket))
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	if (r->f.size && r->f.fini)
		r->f.fini(r->f.user);
	r->f = (struct wave_rpc_follower){ 0 };
	if (f && (ret = catch_up(&nf, r)) < 0) {
		if (nf.fini)
			nf.fini(nf.user);
	} else {
		r->f = nf;
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

WAVE_API int wave_rpc_stats(struct wave_rpc *r, struct wave_rpc_stats *out)
{
	if (!r || !out)
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	*out = r->st;
	out->events += r->ob.sent;
	out->epoch = r->epoch;
	pthread_mutex_unlock(&r->lock);
	return 0;
}
