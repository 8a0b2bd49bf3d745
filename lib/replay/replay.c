/* SPDX-License-Identifier: MIT */
/*
 * replay_run() (replay.h): a trace's events through the domain's agent
 * side, as the agent runtime drives it (lib/agent/agent_host.c), into a
 * plugin instance whose decisions go to a list instead of a channel; each
 * event's list is compared with the decisions recorded after it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/core.h"
#include "../core/le.h"
#include "../decision/domain.h"
#include "../plugin/plugin_impl.h"
#include "replay.h"

/* Decisions compared per event; more are counted and digested only. */
#define PER_EVENT 64
/* Records read at once (trace_reader_read()): 4 KiB of them. */
#define BATCH 32

struct dlist {
	unsigned n;
	enum trace_kind kind[PER_EVENT];
	struct wave_msg m[PER_EVENT];
};

struct engine {
	const struct domain_desc *dom;
	struct dom_host dh;
	struct wave_plugin *p;
	const struct wave_params *params;
	const struct trace_meta *meta;
	bool fed; /* an event was fed: the host's setup went first */
	uint64_t now; /* virtual: the time of the record being replayed */
	struct dlist rec, new_;
	/* Records are read a batch at a time; @ev points at the event (or
	 * tick) whose decisions are gathered, or is NULL: in the batch, or
	 * in @ev_kept when its decisions may come in the next batch. */
	struct trace_rec batch[BATCH];
	struct trace_rec ev_kept;
	const struct trace_rec *ev;
	replay_decision_fn fn;
	void *user;
	struct replay_result *res;
};

/* FNV-1a over 64-bit words: the digest of the replayed decisions. */
static uint64_t fnv(uint64_t h, uint64_t w)
{
	return (h ^ w) * 0x100000001b3ull;
}

static void push(struct dlist *l, enum trace_kind k, const struct wave_msg *m)
{
	if (l->n < PER_EVENT) {
		l->kind[l->n] = k;
		l->m[l->n] = *m;
	}
	l->n++;
}

static bool same(const struct dlist *a, const struct dlist *b, unsigned i)
{
	return a->kind[i] == b->kind[i] && a->m[i].type == b->m[i].type &&
	       a->m[i].flags == b->m[i].flags &&
	       memcmp(a->m[i].payload.u8, b->m[i].payload.u8, WAVE_MSG_PAYLOAD) == 0;
}

/* The event's decisions are all in: compare, keep the first differences. */
static void event_compare(struct engine *e)
{
	struct replay_diff *d;
	unsigned i, n = e->rec.n < e->new_.n ? e->rec.n : e->new_.n;

	if (n > PER_EVENT)
		n = PER_EVENT;
	for (i = 0; i < n && same(&e->rec, &e->new_, i); i++)
		;
	if (e->ev && (i < n || e->rec.n != e->new_.n)) {
		e->res->differing_events++;
		if (e->res->n_diffs < REPLAY_DIFFS_KEPT) {
			d = &e->res->diffs[e->res->n_diffs++];
			memset(d, 0, sizeof(*d));
			d->offset = e->ev->offset;
			d->t_ns = e->ev->t_ns;
			d->event = e->ev->msg;
			d->n_rec = e->rec.n;
			d->n_new = e->new_.n;
			if (i < e->rec.n && i < PER_EVENT) {
				d->rec = e->rec.m[i];
				d->rec_kind = e->rec.kind[i];
			}
			if (i < e->new_.n && i < PER_EVENT) {
				d->new_ = e->new_.m[i];
				d->new_kind = e->new_.kind[i];
			}
		}
	}
	e->rec.n = e->new_.n = 0;
}

/* Most events have no decision, recorded or replayed: nothing to compare. */
static inline void event_done(struct engine *e)
{
	if (e->rec.n | e->new_.n)
		event_compare(e);
}

/* The instance's emit: as the agent's host_emit, the domain prepares each
 * decision; then it is kept instead of sent. */
static int emit(void *user, const struct wave_msg *msgs, unsigned n)
{
	struct engine *e = user;

	for (unsigned i = 0; i < n; i++) {
		struct wave_msg m = msgs[i];
		enum trace_kind k = dom_prepare(e->dom, &e->dh, &m) == DOM_EMIT_DROP ? TRACE_DROPPED
										   : TRACE_DECISION;

		if (k == TRACE_DECISION)
			dom_sent(e->dom, &e->dh, &m, e->now);
		push(&e->new_, k, &m);
		e->res->decisions_new++;
		uint64_t head = (uint64_t)k << 32 | (uint64_t)m.flags << 16 | m.type;

		e->res->digest = fnv(e->res->digest, head);
		for (unsigned w = 0; w < WAVE_MSG_PAYLOAD / 8; w++)
			e->res->digest = fnv(e->res->digest, le64toh(m.payload.u64[w]));
		if (e->fn)
			e->fn(e->user, k, e->now, &m);
	}
	return (int)n;
}

static int start(struct dom_host *dh, const void *domain_state, struct wave_error *err)
{
	struct engine *e = dh->rt;
	struct wave_plugin_ctx_opts o;

	dh->domain_state = domain_state;
	wave_plugin_ctx_opts_init(&o);
	o.params = e->params;
	o.emit = emit;
	o.emit_user = e;
	o.domain_state = domain_state;
	return wave_plugin_ctx_create(e->p, &o, &dh->inst.ctx, err);
}

static int feed(struct engine *e, const struct wave_msg *m, uint64_t offset,
		struct wave_error *err)
{
	e->res->events++;
	if (e->dom->msg(&e->dh, m) == 0)
		return 0;
	e->res->refused++;
	return wave_error_set(err, -EPROTO, "replay", 0, 0,
			      "offset %llu: the %s domain refused message 0x%04x (the agent would "
			      "have dropped the host)",
			      (unsigned long long)offset, wave_domain_name(e->dom->id), m->type);
}

/* A trace that does not begin with the host's setup message (begun late,
 * or rotated) gets it from its header first. */
static int setup_first(struct engine *e, const struct trace_meta *meta,
		       const struct trace_rec *first, struct wave_error *err)
{
	int ret;

	for (unsigned i = 0; i < meta->n_setup; i++) {
		if (first && first->msg.type == meta->setup[i].type)
			continue;
		if ((ret = feed(e, &meta->setup[i], 0, err)) < 0)
			return ret;
	}
	return 0;
}

/* The plugin's tick ran here in the agent: it runs here again, and the
 * decisions it makes are compared with those recorded after it. */
static void tick(struct engine *e, const struct trace_rec *rec)
{
	event_done(e);
	e->ev = rec;
	e->res->ticks++;
	/* The recorded plugin had a tick; the one replayed may not (and a
	 * hostile trace may hold ticks of a domain that has none). */
	if (e->dom->tick && e->dh.inst.ctx && plugin_has_tick(e->dh.inst.ctx))
		e->dom->tick(e->dh.inst.ctx, rec->t_ns);
}

/* One record of the trace. */
static int step(struct engine *e, const struct trace_rec *rec, struct wave_error *err)
{
	int ret;

	e->now = rec->t_ns;
	if (rec->kind == TRACE_TICK) {
		tick(e, rec);
		return 0;
	}
	if (rec->kind != TRACE_EVENT) {
		push(&e->rec, rec->kind, &rec->msg);
		e->res->decisions_rec++;
		return 0;
	}
	event_done(e);
	if (!e->fed && (ret = setup_first(e, e->meta, rec, err)) < 0)
		return ret;
	e->fed = true;
	e->ev = rec;
	return feed(e, &rec->msg, rec->offset, err);
}

static int run(struct engine *e, struct trace_reader *r, struct wave_error *err)
{
	int n, ret;

	e->meta = trace_reader_meta(r);
	for (n = trace_reader_read(r, e->batch, BATCH, err); n > 0;
	     n = trace_reader_read(r, e->batch, BATCH, err)) {
		for (int i = 0; i < n; i++)
			if ((ret = step(e, &e->batch[i], err)) < 0)
				return ret;
		/* The next batch takes the place of this one's last event. */
		if (e->ev && e->ev != &e->ev_kept) {
			e->ev_kept = *e->ev;
			e->ev = &e->ev_kept;
		}
	}
	event_done(e);
	return n;
}

/* The replaying thread's CPU time: what one core spends on it, whatever
 * else shares the machine. */
static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void replay_keep_free(struct replay_keep *k)
{
	if (!k)
		return;
	u64map_fini(&k->table);
	k->objects = 0;
}

/* The domain's state starts with what @k holds (NULL: fresh). */
static void keep_take(struct dom_host *dh, struct replay_keep *k)
{
	if (!k)
		return;
	dh->objects = k->objects;
	dh->keep = true;
	dh->kept = k->table;
	memset(&k->table, 0, sizeof(k->table));
}

/* What the domain's fini left, for the next replay (or freed). */
static void keep_give(struct dom_host *dh, struct replay_keep *k)
{
	if (!k) {
		u64map_fini(&dh->kept);
		return;
	}
	k->objects = dh->objects;
	k->table = dh->kept;
}

int replay_run(struct trace_reader *r, struct wave_plugin *p, const struct wave_params *params,
	       struct replay_keep *keep, replay_decision_fn fn, void *user,
	       struct replay_result *res, struct wave_error *err)
{
	const struct trace_meta *meta = trace_reader_meta(r);
	struct engine *e;
	double t0 = cpu_s();
	int ret;

	wave_error_clear(err);
	if (!r || !p || !res)
		return wave_error_set(err, -EINVAL, "replay", 0, 0, "invalid argument");
	memset(res, 0, sizeof(*res));
	res->digest = 0xcbf29ce484222325ull;
	if (meta->domain >= WAVE_DOMAIN_COUNT || !wave_domains[meta->domain])
		return wave_error_set(err, -EINVAL, "replay", 0, 0,
				      "the trace is of domain %u, which this build does not serve",
				      meta->domain);
	if (wave_plugin_desc(p)->domain != meta->domain)
		return wave_error_set(err, -EINVAL, "replay", 0, 0,
				      "plugin %s is of domain %s, the trace of domain %s",
				      wave_plugin_desc(p)->name,
				      wave_domain_name(wave_plugin_desc(p)->domain),
				      wave_domain_name(meta->domain));
	/* Aligned as its messages are (a line each). */
	if (!(e = aligned_alloc(_Alignof(struct engine), sizeof(*e))))
		return wave_error_set(err, -ENOMEM, "replay", 0, 0, "out of memory");
	memset(e, 0, sizeof(*e));
	e->dom = wave_domains[meta->domain];
	e->p = p;
	e->params = params;
	e->fn = fn;
	e->user = user;
	e->res = res;
	e->dh.host_id = meta->host_id;
	keep_take(&e->dh, keep);
	e->dh.start = start;
	e->dh.rt = e;
	trace_reader_rewind(r);
	ret = e->dom->welcome ? e->dom->welcome(&e->dh) : 0;
	if (ret < 0)
		wave_error_set(err, -WAVE_EPLUGIN, "replay", 0, 0, "the plugin failed to start");
	else
		ret = run(e, r, err);
	/* As the agent stops a host: the instance first, then the domain. */
	wave_plugin_ctx_destroy(e->dh.inst.ctx);
	if (e->dom->fini)
		e->dom->fini(&e->dh);
	res->objects = e->dh.objects;
	keep_give(&e->dh, keep);
	free(e);
	res->seconds = cpu_s() - t0;
	return ret < 0 ? ret : 0;
}

void replay_figure(struct replay_figures *f, const char *name, const char *unit, double v)
{
	if (f->n >= REPLAY_FIGURES_MAX)
		return;
	f->name[f->n] = name;
	f->unit[f->n] = unit;
	f->value[f->n++] = v;
}

int replay_q_push(struct replay_q *q, const struct wave_msg *m)
{
	if (q->len == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 256;
		struct wave_msg *n = aligned_alloc(64, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		for (size_t i = 0; i < q->len; i++)
			n[i] = q->m[(q->head + i) % q->cap];
		free(q->m);
		q->m = n;
		q->head = 0;
		q->cap = cap;
	}
	q->m[(q->head + q->len++) % q->cap] = *m;
	return 0;
}

bool replay_q_pop(struct replay_q *q, struct wave_msg *m)
{
	if (!q->len)
		return false;
	*m = q->m[q->head];
	q->head = (q->head + 1) % q->cap;
	q->len--;
	return true;
}

int replay_settle(struct replay_q *to_agent, struct replay_q *to_host,
		  void (*agent)(void *user, const struct wave_msg *m),
		  int (*host)(void *user, const struct wave_msg *m), void *user, unsigned max)
{
	struct wave_msg m;
	int ret;

	for (unsigned n = 0; n < max; n++) {
		if (replay_q_pop(to_agent, &m)) {
			agent(user, &m);
		} else if (replay_q_pop(to_host, &m)) {
			if ((ret = host(user, &m)) < 0)
				return ret;
		} else {
			return 0;
		}
	}
	return -ELOOP;
}

void replay_q_free(struct replay_q *q)
{
	free(q->m);
	memset(q, 0, sizeof(*q));
}

/* A plugin context's emit into the replay_q @user. */
static int replay_q_emit(void *user, const struct wave_msg *msgs, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (replay_q_push(user, &msgs[i]) < 0)
			return i ? (int)i : -ENOMEM;
	return (int)n;
}

int replay_plugin_start(struct wave_plugin *p, const struct wave_params *params,
			const void *state, struct replay_q *to_host, struct wave_plugin_ctx **ctx,
			struct wave_error *err)
{
	struct wave_plugin_ctx_opts o;
	int ret;

	wave_plugin_ctx_opts_init(&o);
	o.params = params;
	o.emit = replay_q_emit;
	o.emit_user = to_host;
	o.domain_state = state;
	if ((ret = wave_plugin_ctx_create(p, &o, ctx, NULL)) < 0)
		return wave_error_set(err, ret, "replay", 0, 0, "the plugin failed to start: %s",
				      wave_strerror(ret));
	return 0;
}

/* Bucket of @ns: its power of two, then 1/REPLAY_HIST_SUB of it. */
static unsigned hist_bucket(uint64_t ns)
{
	unsigned e;

	if (ns < REPLAY_HIST_SUB)
		return (unsigned)ns;
	e = 63u - (unsigned)__builtin_clzll(ns); /* >= 5 */
	return (e - 4) * REPLAY_HIST_SUB +
	       (unsigned)((ns >> (e - 5)) - REPLAY_HIST_SUB);
}

/* The largest value of bucket @b. */
static uint64_t hist_top(unsigned b)
{
	unsigned e = b / REPLAY_HIST_SUB, k = b % REPLAY_HIST_SUB;

	if (e == 0)
		return k;
	return (((uint64_t)REPLAY_HIST_SUB + k + 1) << (e - 1)) - 1;
}

void replay_hist_add(struct replay_hist *h, uint64_t ns, uint64_t weight)
{
	if (!weight)
		return;
	h->n[hist_bucket(ns)] += weight;
	h->count += weight;
	h->sum += (double)ns * (double)weight;
	if (ns > h->max)
		h->max = ns;
}

uint64_t replay_hist_quantile(const struct replay_hist *h, double q)
{
	uint64_t want, seen = 0;

	if (!h->count)
		return 0;
	if (q >= 1.0)
		return h->max;
	want = (uint64_t)(q * (double)(h->count - 1)) + 1;
	for (unsigned b = 0; b < 64 * REPLAY_HIST_SUB; b++)
		if ((seen += h->n[b]) >= want)
			return hist_top(b) < h->max ? hist_top(b) : h->max;
	return h->max;
}

int replay_find_setup(struct trace_reader *r, struct wave_msg *out)
{
	const struct trace_meta *meta = trace_reader_meta(r);
	const struct domain_desc *dom =
		meta->domain < WAVE_DOMAIN_COUNT ? wave_domains[meta->domain] : NULL;
	struct trace_rec rec;
	int ret = -EBADMSG;

	if (!dom || !dom->setup_type)
		return -EBADMSG;
	for (unsigned i = 0; i < meta->n_setup; i++)
		if (meta->setup[i].type == dom->setup_type) {
			*out = meta->setup[i];
			return 0;
		}
	trace_reader_rewind(r);
	while (trace_reader_next(r, &rec, NULL) == 1)
		if (rec.kind == TRACE_EVENT && rec.msg.type == dom->setup_type) {
			*out = rec.msg;
			ret = 0;
			break;
		}
	trace_reader_rewind(r);
	return ret;
}

/* ---- for the exports ---------------------------------------------------- */

void replay_chrome_next(struct replay_chrome *c)
{
	fputs(c->first ? "" : ",\n", c->f);
	c->first = false;
}

/* @s inside a JSON string: a trace's plugin name is whatever the agent's
 * configuration named, a path maybe, or a hostile file's bytes. Bytes
 * outside printable ASCII become '?', so that the output is valid UTF-8. */
static void put_json_chars(FILE *f, const char *s)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch < 0x7f ? ch : '?', f);
	}
}

void replay_chrome_process(struct replay_chrome *c, const struct trace_meta *meta,
			   const char *domain)
{
	replay_chrome_next(c);
	fprintf(c->f,
		"{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%" PRIu64 ",\"tid\":0,"
		"\"args\":{\"name\":\"host %" PRIu64 " (%s, ",
		c->pid, meta->host_id, domain);
	put_json_chars(c->f, meta->plugin);
	fputs(")\"}}", c->f);
}

void replay_chrome_track(struct replay_chrome *c, uint32_t tid, const char *name)
{
	replay_chrome_next(c);
	fprintf(c->f,
		"{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%" PRIu64 ",\"tid\":%" PRIu32 ","
		"\"args\":{\"name\":\"",
		c->pid, tid);
	put_json_chars(c->f, name);
	fputs("\"}}", c->f);
}

int replay_put(char *buf, size_t size, int len, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (len < 0 || (size_t)len >= size)
		return -1;
	va_start(ap, fmt);
	n = vsnprintf(buf + len, size - (size_t)len, fmt, ap);
	va_end(ap);
	return n < 0 || (size_t)(len + n) >= size ? -1 : len + n;
}
