/* SPDX-License-Identifier: MIT */
/*
 * The mem host's conversation with its agent (wave_mem_opts.agent_uri):
 * a session of the mem domain, its events, and the agent's decisions
 * carried out as transactions, each answered by one OUTCOME.
 *
 * Two sides. Changes happen on any thread (the fault thread brings chunks
 * back and relieves pressure, the application migrates and reports
 * accesses): each records what the agent must hear in the log (l->loglock,
 * a leaf lock held for an append) and never waits for the channel. The
 * session, the outbox and the agent's prefetches are the poller's
 * (wave_mem_poll(), under l->lock): it turns the log into messages, in the
 * order the changes were recorded, before every OUTCOME it sends (an
 * event that changes a chunk goes before an outcome that depends on it).
 *
 * Accesses. A chunk seen accessed gets CS_REPORT and its id is logged once,
 * whatever the number of accesses, and every access adds one to its hits
 * (a relaxed counter beside the state word); each tick the poller sends
 * the ids as SAMPLES (8 chunks a message), each with the hits it takes
 * (at most 255, what an entry carries), and clears the bits. One entry a
 * chunk a tick, as before, but the agent learns how often, not only
 * whether: with one bit, a chunk touched a hundred times a tick counted as
 * much as one touched once, and the counts could not rank the hot set.
 *
 * Generations. Losing the agent advances l->gen and drops its prestaged
 * decisions; a victim taken by the fault thread before that is answered
 * in the old generation, and its OUTCOME becomes a CHUNK_CHANGED (the
 * change happened, the decision's agent is gone). The resync clears the
 * log and sends every chunk as it is then; a change recorded while the
 * resync reads may reach the new agent twice, the second time with a
 * sequence number it has, which it refuses as not advancing (no harm).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <wave/mem_msg.h>

#include "../../core/core.h"
#include "../../session/host_impl.h"
#include "../../session/outbox.h"
#include "mem_impl.h"

#define LINK_BATCH 64u           /* events gathered before they leave */
#define LOG_MAX (1u << 20)        /* changes waiting; more: resync */
#define PREFETCH_MAX 4096u
/* Ticks a prefetch waits for room and rate before it aborts as busy: the
 * agent hears of it and may decide again, rather than believe it pending
 * while the tier stays full. */
#define PREFETCH_TICKS 8u

/* A recorded change, or a victim's end: a mem message to be. */
struct lent {
	uint16_t type; /* WAVE_MEM_REGION_ADD/DEL, CHUNK_CHANGED, FAULT, OUTCOME */
	uint8_t result;
	uint32_t tier, gen;
	uint64_t id; /* region or chunk */
	uint64_t seq, new_seq, count, chunk_size;
};

struct mem_link {
	pthread_mutex_t lock; /* the session and all below but the log */
	struct wave_host *h;
	struct outbox ob;
	bool agent;
	uint32_t gen;
	uint64_t tick_ns, next_tick, unit;
	struct mem_pf *pf; /* the agent's prefetches, waiting for room */
	size_t n_pf;
	struct lent *spare;
	size_t cap_spare;

	pthread_mutex_t loglock; /* a leaf */
	struct lent *log;
	size_t n_log, cap_log;
	bool overflow;
	uint64_t *acc; /* chunks with CS_REPORT */
	size_t n_acc, cap_acc;

	_Atomic uint64_t decisions, refused, bad, fallbacks, resyncs, replayed;
	_Atomic uint64_t keeps, keeps_refused;
};

/* A prefetch waiting in the poller; @ticks: the ticks it has waited. */
struct mem_pf {
	struct mem_avictim v;
	unsigned ticks;
};

/* ---- recording (any thread) ---------------------------------------------- */

static bool grow(void **v, size_t *cap, size_t n, size_t size)
{
	size_t c = *cap ? 2 * *cap : 256;
	void *p;

	if (n < *cap)
		return true;
	if (!(p = realloc(*v, c * size)))
		return false;
	*v = p;
	*cap = c;
	return true;
}

static void record(struct mem_link *l, const struct lent *e)
{
	pthread_mutex_lock(&l->loglock);
	if (l->n_log < LOG_MAX && grow((void **)&l->log, &l->cap_log, l->n_log, sizeof(*e)))
		l->log[l->n_log++] = *e;
	else
		l->overflow = true; /* the poller resyncs the agent */
	pthread_mutex_unlock(&l->loglock);
}

void mem_link_region(struct wave_mem *m, const struct mem_region *r, bool add)
{
	struct lent e = { .type = add ? WAVE_MEM_REGION_ADD : WAVE_MEM_REGION_DEL, .id = r->id,
			  .tier = add ? r->home_tier : 0, .count = add ? r->n_chunks : 0,
			  .chunk_size = add ? r->chunk_size : 0 };

	if (m->link)
		record(m->link, &e);
}

void mem_link_chunk(struct wave_mem *m, const struct mem_region *r, uint64_t i, bool fault)
{
	uint64_t s;

	if (!m->link)
		return;
	s = atomic_load(&r->state[i]);
	record(m->link, &(struct lent){ .type = fault ? WAVE_MEM_FAULT : WAVE_MEM_CHUNK_CHANGED,
					.id = wave_mem_chunk_id(r->id, i), .tier = cs_tier(s),
					.seq = cs_seq(s) });
}

/* A committed migration bumps the sequence number once (mem_chunk_unlock()). */
void mem_link_victim_done(struct wave_mem *m, const struct mem_avictim *v,
			  enum wave_result res)
{
	if (m->link)
		record(m->link, &(struct lent){ .type = WAVE_MEM_OUTCOME, .result = (uint8_t)res,
						.id = v->chunk, .seq = v->seq, .tier = v->tier,
						.gen = v->gen,
						.new_seq = res == WAVE_COMMITTED ? v->seq + 1 : 0 });
}

void mem_access(struct wave_mem *m, struct mem_region *r, uint64_t i)
{
	struct mem_link *l = m->link;
	bool ok;

	if (!l) {
		atomic_fetch_or(&r->state[i], CS_ACCESSED);
		return;
	}
	/* Counted before CS_REPORT is set, so that the poller, which clears
	 * the bit and then takes the hits, takes this one now or finds it
	 * with the bit set again at the next tick: never lost. */
	if (atomic_load_explicit(&r->hits[i], memory_order_relaxed) < MEM_HITS_MAX)
		atomic_fetch_add_explicit(&r->hits[i], 1, memory_order_relaxed);
	if (atomic_fetch_or(&r->state[i], CS_ACCESSED | CS_REPORT) & CS_REPORT)
		return; /* logged already this tick */
	pthread_mutex_lock(&l->loglock);
	ok = grow((void **)&l->acc, &l->cap_acc, l->n_acc, sizeof(*l->acc));
	if (ok)
		l->acc[l->n_acc++] = wave_mem_chunk_id(r->id, i);
	pthread_mutex_unlock(&l->loglock);
	if (!ok) /* the access is not told, but the chunk may be logged next time */
		atomic_fetch_and(&r->state[i], ~CS_REPORT);
}

/* ---- sending (the poller, l->lock held) ------------------------------------ */

static void emit(struct wave_mem *m, const struct wave_mem_msg *d)
{
	struct mem_link *l = m->link;
	struct wave_msg w;

	if (!l->agent)
		return;
	if (wave_mem_msg_encode(d, m->n_tiers, &w) < 0) {
		wave_warn("mem: cannot encode a %s", wave_mem_msg_type_name(d->type));
		return;
	}
	/* Lost, the agent's view can no longer be kept right: start over. */
	if (outbox_push(&l->ob, &w) < 0)
		host_lose_agent(l->h, "no memory for events");
}

static void emit_lent(struct wave_mem *m, const struct lent *e, uint64_t now)
{
	struct wave_mem_msg d = { .type = e->type, .now_ns = now };

	switch (e->type) {
	case WAVE_MEM_REGION_ADD:
		d.tier = e->tier;
		d.count = e->count;
		d.chunk_size = e->chunk_size;
		/* fall through */
	case WAVE_MEM_REGION_DEL:
		d.region = (uint32_t)e->id;
		break;
	case WAVE_MEM_OUTCOME:
		if (e->gen != m->link->gen) { /* its agent is gone: only the change is news */
			if (e->result != WAVE_COMMITTED)
				return;
			d.type = WAVE_MEM_CHUNK_CHANGED;
			d.seq = e->new_seq;
		} else {
			d.decision = WAVE_MEM_VICTIM;
			d.result = e->result;
			d.seq = e->seq;
			d.new_seq = e->new_seq;
		}
		d.chunk = e->id;
		d.tier = e->tier;
		break;
	default: /* CHUNK_CHANGED, FAULT */
		d.chunk = e->id;
		d.tier = e->tier;
		d.seq = e->seq;
	}
	emit(m, &d);
}

/* Sends what the log holds, in its order. */
static void drain(struct wave_mem *m)
{
	struct mem_link *l = m->link;
	uint64_t now = wave_now_ns();
	struct lent *v;
	size_t n, cap;
	bool overflow;

	pthread_mutex_lock(&l->loglock);
	v = l->log, n = l->n_log, cap = l->cap_log, overflow = l->overflow;
	l->log = l->spare, l->cap_log = l->cap_spare, l->n_log = 0, l->overflow = false;
	pthread_mutex_unlock(&l->loglock);
	l->spare = v, l->cap_spare = cap;
	if (overflow && l->agent) {
		host_lose_agent(l->h, "too many changes waiting for the agent");
		return;
	}
	for (size_t k = 0; k < n; k++)
		emit_lent(m, &v[k], now);
}

/* The accesses seen since the last tick, as SAMPLES; rlock held. */
static void samples(struct wave_mem *m)
{
	struct mem_link *l = m->link;
	struct wave_mem_msg d = { .type = WAVE_MEM_SAMPLES };
	uint64_t *ids;
	uint16_t hits;
	size_t n;

	pthread_mutex_lock(&l->loglock);
	ids = l->acc, n = l->n_acc;
	l->acc = NULL, l->n_acc = l->cap_acc = 0;
	pthread_mutex_unlock(&l->loglock);
	for (size_t k = 0; k < n; k++) {
		uint32_t id = (uint32_t)(ids[k] >> 32);
		uint64_t i = ids[k] & 0xffffffffu;
		struct mem_region *r = mem_region_id(m, id);

		if (!r)
			continue; /* unregistered since */
		/* Pairs with mem_access()'s fetch_or: a hit counted after this
		 * exchange comes with the bit set again, and is sent next tick. */
		atomic_fetch_and(&r->state[i], ~CS_REPORT);
		hits = atomic_exchange_explicit(&r->hits[i], 0, memory_order_relaxed);
		if (!hits)
			continue; /* taken with the previous tick's entry */
		if (d.n && (d.region != id || d.n == WAVE_MEM_SAMPLES_MAX)) {
			emit(m, &d);
			d = (struct wave_mem_msg){ .type = WAVE_MEM_SAMPLES };
		}
		d.region = id;
		d.index[d.n] = (uint32_t)i;
		d.accesses[d.n++] = (uint8_t)(hits < UINT8_MAX ? hits : UINT8_MAX);
	}
	if (d.n)
		emit(m, &d);
	free(ids);
}

/* Tier @t's room for the agent to plan with, in chunks: its capacity less
 * the reserve the demoter keeps free in it (mem_demote.c), which is the
 * faults' room, not the policy's: a plan that filled it would have the
 * demoter demote what the agent just promoted. */
static uint64_t cap_chunks(const struct wave_mem *m, uint32_t t)
{
	uint64_t room = m->tiers[t].capacity;
	uint64_t c;

	if (room && t + 1 < m->n_tiers)
		room -= m->reserve; /* below every limited tier's capacity (checked) */
	c = room / m->link->unit;

	return !m->tiers[t].capacity ? WAVE_MEM_CAP_NONE : c < WAVE_MEM_CAP_NONE ? c
										  : WAVE_MEM_CAP_NONE - 1;
}

/* PRESSURE for each NUMA tier with less than an eighth of its room (as
 * SETUP told it: the reserve left out) free. */
static void pressure(struct wave_mem *m, uint64_t now)
{
	for (uint32_t t = 0; t < m->n_tiers; t++) {
		uint64_t room = cap_chunks(m, t);
		uint64_t used = atomic_load(&m->tier_used[t]) / m->link->unit;
		uint64_t free_chunks = used < room ? room - used : 0;

		if (!m->tiers[t].capacity || (int)t == m->far_tier || free_chunks * 8 >= room)
			continue;
		emit(m, &(struct wave_mem_msg){ .type = WAVE_MEM_PRESSURE, .tier = t,
						.count = free_chunks, .now_ns = now });
	}
}

/* ---- decisions ------------------------------------------------------------- */

static void outcome(struct wave_mem *m, const struct wave_mem_msg *d, enum wave_result res)
{
	struct wave_mem_msg o = { .type = WAVE_MEM_OUTCOME, .decision = d->type,
				  .result = (uint8_t)res, .chunk = d->chunk, .seq = d->seq,
				  .tier = d->tier, .now_ns = wave_now_ns(),
				  .new_seq = res == WAVE_COMMITTED ? d->seq + 1 : 0 };

	drain(m); /* the changes it may depend on go first */
	emit(m, &o);
}

/* A prestaged decision: checked now, carried out later (or answered now
 * when it cannot be). */
static enum wave_result prestage(struct wave_mem *m, const struct wave_mem_msg *d, uint32_t cur,
				 uint64_t seq)
{
	struct mem_link *l = m->link;
	struct mem_avictim v = { d->chunk, d->seq, d->tier, l->gen };

	if (seq != d->seq)
		return WAVE_ABORT_STALE;
	if (d->type == WAVE_MEM_VICTIM) {
		if (d->tier != cur + 1 || (int)cur == m->far_tier)
			return WAVE_ABORT_NOT_ELIGIBLE;
		return mem_avictim_add(m, &v);
	}
	if (d->tier >= cur)
		return WAVE_ABORT_NOT_ELIGIBLE;
	if (l->n_pf == PREFETCH_MAX ||
	    (!l->pf && !(l->pf = malloc(PREFETCH_MAX * sizeof(*l->pf)))))
		return WAVE_ABORT_BUSY;
	l->pf[l->n_pf++] = (struct mem_pf){ v, 0 };
	return WAVE_COMMITTED;
}

static int decide(struct wave_mem *m, const struct wave_mem_msg *d)
{
	struct mem_link *l = m->link;
	uint32_t cur = 0;
	uint64_t seq = 0;
	enum wave_result res = mem_chunk_owned(m, d->chunk, &cur, &seq);

	atomic_fetch_add(&l->decisions, 1);
	if (res != WAVE_COMMITTED) { /* not a chunk of ours */
		atomic_fetch_add(&l->refused, 1);
		outcome(m, d, res);
		return 1;
	}
	if (d->type == WAVE_MEM_MIGRATE) {
		outcome(m, d, mem_migrate(m, d->chunk, d->seq, d->tier, false));
		return 1;
	}
	res = prestage(m, d, cur, seq);
	if (res != WAVE_COMMITTED)
		outcome(m, d, res);
	return 1;
}

/* The prefetches whose time came: promoted, or answered as they cannot
 * be. Those refused for room or rate (busy) wait, each at most
 * PREFETCH_TICKS ticks (@tick: this call is a tick's), then abort as
 * busy. */
static int prefetch(struct wave_mem *m, bool tick)
{
	struct mem_link *l = m->link;
	size_t k = 0;
	int done = 0;

	while (k < l->n_pf) {
		struct mem_pf *p = &l->pf[k];
		struct mem_avictim v = p->v;
		enum wave_result res = mem_migrate(m, v.chunk, v.seq, v.tier, false);

		if (res == WAVE_ABORT_BUSY && (!tick || ++p->ticks < PREFETCH_TICKS)) {
			k++;
			continue;
		}
		if (res == WAVE_ABORT_BUSY)
			wave_dbg("mem: prefetch of chunk %#llx to tier %u aborted as busy after "
				   "%u ticks without room or rate", (unsigned long long)v.chunk,
				   v.tier, PREFETCH_TICKS);
		memmove(&l->pf[k], &l->pf[k + 1], (--l->n_pf - k) * sizeof(*p));
		outcome(m, &(struct wave_mem_msg){ .type = WAVE_MEM_PREFETCH, .chunk = v.chunk,
						   .seq = v.seq, .tier = v.tier }, res);
		done++;
	}
	return done;
}

static void bad(struct wave_mem *m, const char *why)
{
	atomic_fetch_add(&m->link->bad, 1);
	host_lose_agent(m->link->h, why);
}

static int on_mem_msg(void *user, const struct wave_msg *w)
{
	struct wave_mem *m = user;
	struct wave_mem_msg d;

	if (!m->link->agent)
		return 0; /* cannot happen: messages are read only under control */
	if (wave_mem_msg_decode(w, m->n_tiers, &d) < 0) {
		bad(m, "malformed mem decision");
		return 0;
	}
	if (d.type == WAVE_MEM_KEEP) { /* a hint: counted, never answered */
		bool kept = mem_keep(m, d.chunk, d.seq, d.tier) == WAVE_COMMITTED;

		atomic_fetch_add(kept ? &m->link->keeps : &m->link->keeps_refused, 1);
		return 0;
	}
	if (d.type != WAVE_MEM_MIGRATE && d.type != WAVE_MEM_VICTIM &&
	    d.type != WAVE_MEM_PREFETCH) {
		bad(m, "agent sent a host's mem message");
		return 0;
	}
	return decide(m, &d);
}

/* ---- control and resync ------------------------------------------------------ */

static void on_state(void *user, enum wave_host_state state)
{
	struct wave_mem *m = user;
	struct mem_link *l = m->link;

	if (state == WAVE_HOST_AGENT) {
		l->agent = true;
		return;
	}
	/* Its decisions die with it; the local policy (the CLOCK) relieves
	 * pressure from now on. */
	l->agent = false;
	l->gen++;
	outbox_drop(&l->ob);
	mem_avictims_drop(m);
	l->n_pf = 0;
	atomic_fetch_add(&l->fallbacks, 1);
}

static int send_now(struct wave_mem *m, const struct wave_mem_msg *d, uint32_t n_tiers)
{
	struct wave_msg w;
	int ret;

	if ((ret = wave_mem_msg_encode(d, n_tiers, &w)) < 0)
		return ret;
	if ((ret = host_send(m->link->h, &w, 1)) != 1)
		return ret < 0 ? ret : -EAGAIN;
	atomic_fetch_add(&m->link->replayed, 1);
	return 0;
}

/* A region and its chunks that are not where REGION_ADD puts them. */
static int replay_region(struct wave_mem *m, const struct mem_region *r, uint64_t now)
{
	struct wave_mem_msg d = { .type = WAVE_MEM_REGION_ADD, .region = r->id,
				  .tier = r->home_tier, .count = r->n_chunks,
				  .chunk_size = r->chunk_size, .now_ns = now };
	int ret = send_now(m, &d, m->n_tiers);

	for (uint64_t i = 0; !ret && i < r->n_chunks; i++) {
		uint64_t s = atomic_load(&r->state[i]);

		if (cs_seq(s) == 0 && cs_tier(s) == r->home_tier)
			continue;
		d = (struct wave_mem_msg){ .type = WAVE_MEM_CHUNK_CHANGED, .now_ns = now,
					   .chunk = wave_mem_chunk_id(r->id, i),
					   .tier = cs_tier(s), .seq = cs_seq(s) };
		ret = send_now(m, &d, m->n_tiers);
	}
	return ret;
}

/* Resync: the tiers, every region, every chunk as it is now. */
static int replay(void *user)
{
	struct wave_mem *m = user;
	struct mem_link *l = m->link;
	struct wave_mem_msg setup = { .type = WAVE_MEM_SETUP, .n = (uint8_t)m->n_tiers };
	uint64_t now = wave_now_ns();
	int ret;

	for (uint32_t t = 0; t < m->n_tiers; t++) {
		setup.kind[t] = (uint8_t)m->tiers[t].kind;
		setup.capacity[t] = (uint32_t)cap_chunks(m, t);
	}
	outbox_drop(&l->ob); /* what was gathered for the lost agent is in the replay */
	pthread_rwlock_rdlock(&m->rlock);
	pthread_mutex_lock(&l->loglock);
	l->n_log = 0; /* the state read below replaces it */
	l->overflow = false;
	pthread_mutex_unlock(&l->loglock);
	ret = send_now(m, &setup, 1);
	for (size_t k = 0; !ret && k < m->n_regions; k++)
		ret = replay_region(m, m->regions[k], now);
	pthread_rwlock_unlock(&m->rlock);
	if (!ret)
		atomic_fetch_add(&l->resyncs, 1);
	return ret;
}

/* ---- progress ------------------------------------------------------------------ */

static int progress(struct wave_mem *m)
{
	struct mem_link *l = m->link;
	uint64_t now = wave_now_ns();
	bool tick = now >= l->next_tick;
	int done;

	pthread_rwlock_rdlock(&m->rlock); /* no region comes or goes between the two */
	drain(m);
	if (tick) {
		samples(m);
		pressure(m, now);
		emit(m, &(struct wave_mem_msg){ .type = WAVE_MEM_TICK, .now_ns = now });
		l->next_tick = now + l->tick_ns;
	}
	pthread_rwlock_unlock(&m->rlock);
	(void)outbox_flush(&l->ob);
	if (tick)
		host_notify(l->h); /* what was sent quietly since the last tick */
	done = wave_host_poll(l->h, 0); /* carries decisions out through on_mem_msg() */
	if (done < 0)
		done = 0;
	if (l->agent)
		done += prefetch(m, tick);
	drain(m);
	if (l->agent)
		(void)outbox_flush(&l->ob);
	return done;
}

WAVE_API int wave_mem_poll(struct wave_mem *m, int64_t timeout_ns)
{
	uint64_t deadline = wave_deadline(timeout_ns);
	struct mem_link *l;
	int done = 0;

	if (!m)
		return -EINVAL;
	if (!(l = m->link))
		return 0;
	pthread_mutex_lock(&l->lock);
	for (;;) {
		done += progress(m);
		if (done || wave_now_ns() >= deadline)
			break;
		/* Prefetches waiting for room are retried now and then. */
		host_sleep(l->h, &l->lock, wave_min_u64(deadline, l->next_tick), l->n_pf != 0);
	}
	pthread_mutex_unlock(&l->lock);
	return done;
}

/* ---- making and unmaking --------------------------------------------------------- */

void mem_link_stats(struct wave_mem *m, struct wave_mem_stats *o)
{
	struct mem_link *l = m->link;

	if (!l)
		return;
	pthread_mutex_lock(&l->lock);
	o->agent = l->agent;
	o->agent_events = l->ob.sent + atomic_load(&l->replayed);
	pthread_mutex_unlock(&l->lock);
	o->agent_decisions = atomic_load(&l->decisions);
	o->agent_refused = atomic_load(&l->refused);
	o->agent_bad = atomic_load(&l->bad);
	o->agent_fallbacks = atomic_load(&l->fallbacks);
	o->agent_resyncs = atomic_load(&l->resyncs);
	o->agent_keeps = atomic_load(&l->keeps);
	o->agent_keeps_refused = atomic_load(&l->keeps_refused);
}

void mem_link_close(struct wave_mem *m)
{
	struct mem_link *l = m->link;

	if (!l)
		return;
	pthread_mutex_lock(&l->lock);
	if (l->agent) {
		drain(m);
		(void)outbox_flush(&l->ob); /* the last outcomes, if the ring takes them */
	}
	pthread_mutex_unlock(&l->lock);
	wave_host_close(l->h);
	m->link = NULL;
	outbox_fini(&l->ob);
	free(l->pf);
	free(l->spare);
	free(l->log);
	free(l->acc);
	pthread_mutex_destroy(&l->lock);
	pthread_mutex_destroy(&l->loglock);
	free(l);
}

int mem_link_open(struct wave_mem *m, const struct wave_mem_opts *o, struct wave_error *err)
{
	struct host_domain d = { .id = WAVE_DOMAIN_MEM, .first = WAVE_MSG_MEM_FIRST,
				 .last = WAVE_MSG_MEM_LAST, .on_msg = on_mem_msg,
				 .on_state = on_state, .replay = replay, .user = m };
	struct wave_host_opts ho;
	struct mem_link *l;
	int ret;

	if (host_opts_copy(&ho, o->host) < 0)
		return -EINVAL;
	ho.domains = WAVE_HOST_DOMAIN(WAVE_DOMAIN_MEM);
	if (!(l = calloc(1, sizeof(*l))))
		return -ENOMEM;
	pthread_mutex_init(&l->lock, NULL);
	pthread_mutex_init(&l->loglock, NULL);
	l->tick_ns = o->agent_tick_ns;
	l->unit = o->agent_chunk_size;
	l->next_tick = wave_now_ns() + l->tick_ns;
	m->link = l;
	m->agent_chunk = o->agent_chunk_size;
	if ((ret = host_new(o->agent_uri, &ho, &l->h)) < 0 ||
	    (ret = host_add_domain(l->h, &d)) < 0 || (ret = outbox_init(&l->ob, l->h, LINK_BATCH)) < 0)
		return ret; /* wave_mem_destroy() frees what was made */
	/* No decision waits on the domain's events: the agent is woken for
	 * them once a tick (progress()), not by each flush (a system call on
	 * the application's thread, and one more in the agent's). */
	l->ob.quiet = true;
	/* 1: no agent yet, fallback until one welcomes us; 0: resynced. */
	pthread_mutex_lock(&l->lock);
	ret = host_start(l->h, true, err);
	if (ret == 0)
		l->agent = true;
	pthread_mutex_unlock(&l->lock);
	return ret < 0 ? ret : 0;
}
