/* SPDX-License-Identifier: MIT */
/*
 * The sched domain's quality model for replay (sched_replay.h).
 *
 * From the recorded events a workload is read, per task: when it arrived,
 * then bursts of CPU demand (run time between its commits and the event
 * that ended the burst: blocked, yield or dead; a preemption splits a run
 * but not a burst, since it was the policy's doing) and how long it slept
 * after each block. The simulated host plays that workload in virtual time
 * against a policy: a task that runs consumes its burst, then blocks,
 * yields or exits as it did, and wakes after the recorded sleep; each CPU
 * ticks at the trace's tick period. Every wait (runnable to committed) and
 * every task's run time and turnaround are measured, the same way for the
 * trace as it was recorded.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <wave/sched_msg.h>

#include "../../core/core.h"
#include "../../decision/u64map.h"
#include "sched.h"
#include "sched_replay.h"
#include "sched_sim.h"

#define NONE UINT32_MAX
#define NEVER UINT64_MAX

struct phase {
	uint64_t demand, sleep; /* sleep: after a block, until the wake-up */
	uint16_t end;           /* the event that ended it; 0: the trace did */
	uint32_t next;
};

struct wtask {
	uint64_t arrival, init_sleep, hint;
	uint8_t hint_kind;
	bool runnable, running, blocked, dead;
	uint32_t head, tail, cur;
	/* reading the trace */
	uint64_t run_since, acc, blocked_since, ready_since, finish;
	/* playing it: run time at the start of the current burst */
	uint64_t ran0;
};

/* An entry of the id map: the trace's task id, its index + 1. */
struct idslot {
	uint64_t id, idx;
};

struct samples {
	uint64_t *v;
	size_t n, cap;
};

struct workload {
	uint32_t n_cpus;
	struct u64map ids; /* trace task id -> index + 1 */
	struct wtask *t;
	size_t n, cap;
	struct phase *ph;
	size_t nph, capph;
	uint64_t t0, t_end, tick_ns;
	/* figures of the trace as recorded, or of the last run */
	struct samples waits;
	uint64_t commits, aborts, preempts, finished, ran;
	uint64_t *last_tick;
	struct samples tick_gaps;
};

static int sample(struct samples *s, uint64_t v)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		uint64_t *n = realloc(s->v, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		s->v = n;
		s->cap = cap;
	}
	s->v[s->n++] = v;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The @q quantile (0..1) of @s, sorted in place. */
static uint64_t quantile(struct samples *s, double q)
{
	if (!s->n)
		return 0;
	qsort(s->v, s->n, sizeof(*s->v), cmp_u64);
	return s->v[(size_t)(q * (double)(s->n - 1))];
}

/* ---- reading the workload ---------------------------------------------- */

static struct wtask *task_get(struct workload *w, uint64_t id, bool add)
{
	struct idslot *slot = u64map_find(&w->ids, id);

	if (slot)
		return &w->t[slot->idx - 1];
	if (!add)
		return NULL;
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 256;
		struct wtask *n = realloc(w->t, cap * sizeof(*n));

		if (!n)
			return NULL;
		w->t = n;
		w->cap = cap;
	}
	if (!(slot = u64map_insert(&w->ids, id)))
		return NULL;
	slot->idx = ++w->n;
	memset(&w->t[w->n - 1], 0, sizeof(w->t[0]));
	w->t[w->n - 1].head = w->t[w->n - 1].tail = w->t[w->n - 1].cur = NONE;
	w->t[w->n - 1].init_sleep = NEVER;
	return &w->t[w->n - 1];
}

/* Ends @t's burst with the event @end at @now. */
static int burst_end(struct workload *w, struct wtask *t, uint16_t end, uint64_t now)
{
	struct phase *p;

	if (t->running && now > t->run_since)
		t->acc += now - t->run_since;
	t->running = false;
	if (w->nph == w->capph) {
		size_t cap = w->capph ? w->capph * 2 : 1024;

		if (!(p = realloc(w->ph, cap * sizeof(*p))))
			return -ENOMEM;
		w->ph = p;
		w->capph = cap;
	}
	p = &w->ph[w->nph];
	*p = (struct phase){ .demand = t->acc, .sleep = NEVER, .end = end, .next = NONE };
	if (t->tail != NONE)
		w->ph[t->tail].next = (uint32_t)w->nph;
	else
		t->head = (uint32_t)w->nph;
	t->tail = (uint32_t)w->nph++;
	w->ran += t->acc;
	t->acc = 0;
	return 0;
}

static void tick_seen(struct workload *w, uint32_t cpu, uint64_t now)
{
	if (w->last_tick[cpu] && now > w->last_tick[cpu] && w->tick_gaps.n < 65536)
		(void)sample(&w->tick_gaps, now - w->last_tick[cpu]);
	w->last_tick[cpu] = now;
}

static int on_outcome(struct workload *w, const struct wave_sched_msg *d, uint64_t now)
{
	struct wtask *t = task_get(w, d->task, false);

	if (d->result != WAVE_SCHED_COMMITTED) {
		w->aborts++;
		return 0;
	}
	if (!t || (d->decision != WAVE_SCHED_RUN && d->decision != WAVE_SCHED_PRESTAGE))
		return 0;
	w->commits++;
	t->running = true;
	t->run_since = now;
	return sample(&w->waits, now - t->ready_since);
}

/* One recorded host message. Messages the state model would refuse are
 * taken as they come: the workload is what the host reported. */
static int on_event(struct workload *w, const struct wave_sched_msg *d, uint64_t now)
{
	struct wtask *t = d->type == WAVE_SCHED_TASK_NEW ? task_get(w, d->task, true)
							 : task_get(w, d->task, false);

	if (d->type == WAVE_SCHED_TICK) {
		tick_seen(w, d->cpu, now);
		return 0;
	}
	if (d->type == WAVE_SCHED_OUTCOME)
		return on_outcome(w, d, now);
	if (!t)
		return d->type == WAVE_SCHED_TASK_NEW ? -ENOMEM : 0;
	switch (d->type) {
	case WAVE_SCHED_TASK_NEW:
		t->arrival = t->ready_since = t->blocked_since = now;
		t->runnable = d->state == WAVE_SCHED_RUNNABLE;
		t->blocked = !t->runnable;
		t->hint_kind = d->hint_kind;
		t->hint = d->hint;
		return 0;
	case WAVE_SCHED_TASK_WAKEUP:
		if (t->blocked) {
			if (t->tail != NONE)
				w->ph[t->tail].sleep = now - t->blocked_since;
			else
				t->init_sleep = now - t->blocked_since;
		}
		t->blocked = false;
		t->ready_since = now;
		return 0;
	case WAVE_SCHED_TASK_PREEMPTED:
		w->preempts++;
		if (t->running)
			t->acc += now - t->run_since;
		t->running = false;
		t->ready_since = now;
		return 0;
	case WAVE_SCHED_TASK_YIELD:
		t->ready_since = now;
		return burst_end(w, t, d->type, now);
	case WAVE_SCHED_TASK_BLOCKED:
		t->blocked = true;
		t->blocked_since = now;
		return burst_end(w, t, d->type, now);
	case WAVE_SCHED_TASK_DEAD:
		t->dead = true;
		t->finish = now;
		w->finished++;
		return burst_end(w, t, d->type, now);
	default:
		return 0;
	}
}

int sched_replay_cpus(struct trace_reader *r, uint32_t *n_cpus)
{
	struct wave_msg setup;

	if (replay_find_setup(r, &setup) < 0)
		return -EBADMSG;
	return sched_setup_decode(&setup, n_cpus);
}

static int workload_read(struct workload *w, struct trace_reader *r, struct wave_error *err)
{
	struct wave_sched_msg d;
	struct trace_rec rec;
	bool first = true;
	int ret;

	if (sched_replay_cpus(r, &w->n_cpus) < 0)
		return wave_error_set(err, -EBADMSG, "replay", 0, 0,
				      "the trace has no sched SETUP (the host's CPU count)");
	if (u64map_init(&w->ids, sizeof(struct idslot)) < 0 ||
	    !(w->last_tick = calloc(w->n_cpus, sizeof(*w->last_tick))))
		return wave_error_set(err, -ENOMEM, "replay", 0, 0, "out of memory");
	while ((ret = trace_reader_next(r, &rec, err)) == 1) {
		uint64_t now;

		if (rec.kind != TRACE_EVENT || wave_sched_msg_decode(&rec.msg, w->n_cpus, &d) < 0)
			continue;
		/* The host's clock, which the policy saw; the agent's when absent. */
		now = d.now_ns ? d.now_ns : rec.t_ns;
		if (first)
			w->t0 = now;
		first = false;
		if (now > w->t_end)
			w->t_end = now;
		if ((ret = on_event(w, &d, now)) < 0)
			return wave_error_set(err, ret, "replay", 0, 0, "out of memory");
	}
	if (ret < 0)
		return ret;
	/* What was still going on when the trace ended is a last burst. */
	for (size_t i = 0; i < w->n; i++)
		if (!w->t[i].dead && (w->t[i].running || w->t[i].acc) &&
		    burst_end(w, &w->t[i], 0, w->t_end) < 0)
			return wave_error_set(err, -ENOMEM, "replay", 0, 0, "out of memory");
	w->tick_ns = quantile(&w->tick_gaps, 0.5);
	return 0;
}

static void workload_free(struct workload *w)
{
	u64map_fini(&w->ids);
	free(w->t);
	free(w->ph);
	free(w->waits.v);
	free(w->last_tick);
	free(w->tick_gaps.v);
}

/* The figures, of the trace or of a run: the same names either way. */
static void figures(struct workload *w, uint64_t end, struct replay_figures *f)
{
	uint64_t span = end > w->t0 ? end - w->t0 : 0, turn = 0, sum = 0;
	double mean;

	for (size_t i = 0; i < w->waits.n; i++)
		sum += w->waits.v[i];
	for (size_t i = 0; i < w->n; i++)
		if (w->t[i].dead)
			turn += w->t[i].finish - w->t[i].arrival;
	replay_figure(f, "tasks", "", (double)w->n);
	replay_figure(f, "finished", "", (double)w->finished);
	replay_figure(f, "commits", "", (double)w->commits);
	replay_figure(f, "preemptions", "", (double)w->preempts);
	replay_figure(f, "aborts", "", (double)w->aborts);
	mean = w->waits.n ? (double)sum / (double)w->waits.n : 0;
	replay_figure(f, "wait_mean", "us", mean / 1e3);
	replay_figure(f, "wait_p50", "us", (double)quantile(&w->waits, 0.5) / 1e3);
	replay_figure(f, "wait_p99", "us", (double)quantile(&w->waits, 0.99) / 1e3);
	replay_figure(f, "wait_max", "us", (double)quantile(&w->waits, 1.0) / 1e3);
	replay_figure(f, "run_per_task", "us", w->n ? (double)w->ran / (double)w->n / 1e3 : 0);
	replay_figure(f, "turnaround_mean", "us",
		      w->finished ? (double)turn / (double)w->finished / 1e3 : 0);
	replay_figure(f, "makespan", "ms", (double)span / 1e6);
	replay_figure(f, "cpu_busy", "%",
		      span ? 100.0 * (double)w->ran / ((double)span * w->n_cpus) : 0);
}

/* ---- playing it -------------------------------------------------------- */

enum { EV_ARRIVE, EV_WAKE, EV_DONE, EV_TICK };

struct ev {
	uint64_t t, order; /* order: ties in the order pushed, for determinism */
	uint32_t kind, id;
	uint64_t token;
};

struct player {
	struct workload *w;
	struct sim s;
	struct ev *heap;
	size_t n, cap;
	uint64_t order, pending; /* pending: events other than ticks */
	uint64_t last_end;
	uint64_t impossible; /* host actions the trace implied but the model refused */
	int error;
};

static void heap_push(struct player *pl, uint64_t t, uint32_t kind, uint32_t id, uint64_t token)
{
	struct ev e = { t, pl->order++, kind, id, token };
	size_t i;

	if (pl->n == pl->cap) {
		size_t cap = pl->cap ? pl->cap * 2 : 1024;
		struct ev *h = realloc(pl->heap, cap * sizeof(*h));

		if (!h) {
			pl->error = -ENOMEM;
			return;
		}
		pl->heap = h;
		pl->cap = cap;
	}
	pl->pending += kind != EV_TICK;
	for (i = pl->n++; i > 0; i = (i - 1) / 2) {
		struct ev *up = &pl->heap[(i - 1) / 2];

		if (up->t < e.t || (up->t == e.t && up->order < e.order))
			break;
		pl->heap[i] = *up;
	}
	pl->heap[i] = e;
}

static bool before(const struct ev *a, const struct ev *b)
{
	return a->t < b->t || (a->t == b->t && a->order < b->order);
}

static struct ev heap_pop(struct player *pl)
{
	struct ev top = pl->heap[0], last = pl->heap[--pl->n];
	size_t i = 0, c;

	while ((c = 2 * i + 1) < pl->n) {
		if (c + 1 < pl->n && before(&pl->heap[c + 1], &pl->heap[c]))
			c++;
		if (!before(&pl->heap[c], &last))
			break;
		pl->heap[i] = pl->heap[c];
		i = c;
	}
	pl->heap[i] = last;
	pl->pending -= top.kind != EV_TICK;
	return top;
}

/* sim.on_run: the task's burst goes on; it ends after what is left of it. */
static void on_run(void *user, uint64_t id, uint32_t cpu, uint64_t waited)
{
	struct player *pl = user;
	struct wtask *t = &pl->w->t[id - 1];
	const struct sim_task *st = &pl->s.tasks[id - 1];
	uint64_t done = t->cur == NONE ? 0 : pl->w->ph[t->cur].demand, left;

	(void)cpu;
	left = st->ran_ns - t->ran0 < done ? done - (st->ran_ns - t->ran0) : 0;
	if (sample(&pl->w->waits, waited) < 0)
		pl->error = -ENOMEM;
	heap_push(pl, pl->s.now + left, EV_DONE, (uint32_t)id, st->runs);
}

/* The end of a task's burst, as it ended in the trace. */
static int burst_done(struct player *pl, uint32_t id, uint64_t token)
{
	struct wtask *t = &pl->w->t[id - 1];
	const struct sim_task *st = &pl->s.tasks[id - 1];
	const struct phase *p = t->cur == NONE ? NULL : &pl->w->ph[t->cur];
	uint16_t end = p ? p->end : WAVE_SCHED_TASK_DEAD;
	int ret;

	if (!st->live || st->state != WAVE_SCHED_RUNNING || st->runs != token)
		return 0; /* preempted meanwhile: its next run ends it */
	t->cur = p ? p->next : NONE;
	if (end == WAVE_SCHED_TASK_BLOCKED) {
		ret = sim_block(&pl->s, id);
		if (p->sleep != NEVER)
			heap_push(pl, pl->s.now + p->sleep, EV_WAKE, id, 0);
	} else if (end == WAVE_SCHED_TASK_YIELD) {
		ret = sim_yield(&pl->s, id);
	} else {
		ret = sim_exit(&pl->s, id);
		t->dead = true;
		t->finish = pl->s.now;
		pl->w->finished++;
		pl->last_end = pl->s.now;
	}
	t->ran0 = st->ran_ns;
	return ret;
}

static int step(struct player *pl, const struct ev *e)
{
	struct wtask *t;

	pl->s.now = e->t;
	switch (e->kind) {
	case EV_ARRIVE:
		t = &pl->w->t[e->id - 1];
		if (!t->runnable && t->init_sleep != NEVER)
			heap_push(pl, e->t + t->init_sleep, EV_WAKE, e->id, 0);
		return sim_new(&pl->s, e->id, t->runnable, t->hint_kind, t->hint);
	case EV_WAKE:
		return sim_wakeup(&pl->s, e->id);
	case EV_DONE:
		return burst_done(pl, e->id, e->token);
	default:
		if (pl->pending || pl->s.n_running)
			heap_push(pl, e->t + pl->w->tick_ns, EV_TICK, e->id, 0);
		return sim_tick(&pl->s, e->id);
	}
}

/* Resets what a run measures and each task's progress. */
static void play_reset(struct workload *w)
{
	w->waits.n = 0;
	w->finished = 0;
	for (size_t i = 0; i < w->n; i++) {
		w->t[i].cur = w->t[i].head;
		w->t[i].dead = false;
		w->t[i].ran0 = 0;
	}
}

static int play(struct workload *w, struct wave_plugin *p, const struct wave_params *params,
		struct replay_figures *f, struct wave_error *err)
{
	struct player pl = { .w = w };
	/* A policy that starves tasks is stopped, not waited for. */
	uint64_t limit = w->t_end + 10 * (w->t_end - w->t0) + 1000000000ull;
	/* Ticks follow the span of time the trace claims, not its size: a
	 * trace of a few records stretched over days would tick for hours.
	 * 2^24 steps (half a second; four and a half hours of one busy CPU
	 * at a 1 ms tick) and a thousand for each task and burst bound the
	 * work. */
	uint64_t budget = (1ull << 24) + 1000 * (uint64_t)(w->n + w->nph), steps = 0;
	int ret;

	play_reset(w);
	if ((ret = sim_create(&pl.s, w->n_cpus, w->n ? w->n : 1, p, params)) < 0) {
		sim_destroy(&pl.s);
		return wave_error_set(err, ret, "replay", 0, 0, "the plugin failed to start: %s",
				      wave_strerror(ret));
	}
	pl.s.on_run = on_run;
	pl.s.user = &pl;
	pl.s.now = w->t0;
	for (size_t i = 0; i < w->n; i++)
		heap_push(&pl, w->t[i].arrival, EV_ARRIVE, (uint32_t)(i + 1), 0);
	for (uint32_t c = 0; w->tick_ns && c < w->n_cpus; c++)
		heap_push(&pl, w->t0 + w->tick_ns, EV_TICK, c, 0);
	ret = 0;
	while (pl.n && !pl.error && ret == 0) {
		struct ev e = heap_pop(&pl);

		if (e.t > limit)
			break;
		if (++steps > budget) {
			sim_destroy(&pl.s);
			free(pl.heap);
			return wave_error_set(err, -E2BIG, "replay", 0, 0,
					      "the simulated host stopped after %llu steps: the "
					      "trace's times span %.3f s (tick %llu us), more "
					      "than its %zu tasks and %zu bursts can fill",
					      (unsigned long long)budget,
					      (double)(w->t_end - w->t0) / 1e9,
					      (unsigned long long)(w->tick_ns / 1000), w->n, w->nph);
		}
		/* A trace may imply what the model cannot do (a wake-up of a
		 * task it never blocked): counted, not fatal. */
		if ((ret = step(&pl, &e)) == -EINVAL) {
			pl.impossible++;
			ret = 0;
		}
	}
	if (ret == 0 && pl.error)
		ret = pl.error;
	if (ret == 0) {
		w->commits = pl.s.commits;
		w->preempts = pl.s.preempts_done;
		w->aborts = 0;
		for (unsigned r = 1; r < WAVE_SCHED_RESULT_COUNT; r++)
			w->aborts += pl.s.aborts[r];
		w->ran = 0;
		for (size_t i = 0; i < w->n; i++)
			w->ran += pl.s.tasks[i].ran_ns;
		figures(w, pl.last_end ? pl.last_end : pl.s.now, f);
		replay_figure(f, "model_errors", "", (double)(pl.s.apply_errors + pl.impossible));
	} else {
		wave_error_set(err, ret, "replay", 0, 0, "the simulated host failed: %s",
			       wave_strerror(ret));
	}
	sim_destroy(&pl.s);
	free(pl.heap);
	return ret;
}

static int quality(struct trace_reader *r, struct wave_plugin *p,
		   const struct wave_params *params, struct replay_figures *f,
		   struct wave_error *err)
{
	struct workload w;
	int ret;

	memset(&w, 0, sizeof(w));
	memset(f, 0, sizeof(*f));
	trace_reader_rewind(r);
	ret = workload_read(&w, r, err);
	if (ret == 0 && !p) {
		figures(&w, w.t_end, f);
		replay_figure(f, "model_errors", "", 0);
	} else if (ret == 0) {
		ret = play(&w, p, params, f, err);
	}
	workload_free(&w);
	return ret;
}

const struct replay_model sched_replay_model = {
	.quality = quality,
	.chrome = sched_replay_chrome,
	.describe = sched_replay_describe,
};
