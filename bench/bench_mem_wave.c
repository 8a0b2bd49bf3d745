/* SPDX-License-Identifier: MIT */
/*
 * wave-bench-mem's libwave configurations. The working set is private
 * anonymous memory registered with a manager of two tiers: tier 0, all
 * the memory the kernel gives (NODE_ANY) limited to the fast budget, and
 * the far tier (userfaultfd, lz4 store). The fill is the first touch; the
 * manager's relief then demotes what is over the budget. Then:
 *
 *   all-fast   no budget: nothing is ever far (the upper bound);
 *   no-policy  no agent and no access information: faults bring chunks
 *              back and the host's CLOCK, seeing only those faults,
 *              demotes under pressure; nobody promotes or plans;
 *   oracle     a thread on the agent CPU that knows the workload's chunk
 *              weights offline (and when the hot set moves) keeps the
 *              hottest chunks, 3/4 of the budget, in tier 0: every 10 ms
 *              it promotes those that are far (demoting the coldest others
 *              to make room), keeps the coldest resident chunks prestaged
 *              as victims and marks the pinned ones accessed (so that the
 *              host's CLOCK spares them when the victims run out), so the
 *              rest of the budget churns with the cold accesses' faults
 *              (a quarter: room for the faults of one round, which stay
 *              at least MIN_RESIDENT_NS);
 *   <policy>   a mem plugin (mem_hemem, mem_memtis, mem_sdfm) in an agent
 *              thread of this process (on-host) or in wave-agentd
 *              (offloaded), over shm://, with an emulated one-way delay,
 *              and with the plugin's prestaged victims or without them
 *              (then the host's CLOCK picks what to demote under
 *              pressure). The worker reports the addresses of its timed
 *              ops (one in BMEM_SAMPLE_EVERY) and calls wave_mem_poll()
 *              every o->poll_us, which carries out the agent's decisions
 *              on the worker's own thread: migrations cost the worker.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <wave/wave.h>

#include "bench_agentd.h"
#include "bench_mem.h"
#include "bench_offcpu.h"

/* Anti-thrash: a chunk that just arrived in tier 0 stays 10 ms (the
 * library's default of 100 ms would let the faults of the cold accesses
 * hold far more than the budget). */
#define MIN_RESIDENT_NS 10000000ull
/* The benchmark measures placement, not failure detection. */
#define HEARTBEAT_TIMEOUT_MS 10000
#define ORACLE_PERIOD_NS 10000000ull
#define MAX_VICTIMS 4096u

volatile int bmem_agentd_pid = -1;

struct oracle {
	pthread_t thr;
	atomic_bool stop, moved;
	size_t n;            /* chunks */
	size_t keep;         /* chunks kept in tier 0 */
	uint32_t *order[2];  /* chunk indexes, hottest first, before and after the move */
	bool *pinned[2];
	uint64_t cpu_ns;
};

struct wrun {
	const struct bmem_opts *o;
	const struct bmem_config *c;
	struct wave_mem *m;
	char *base;
	uint32_t region;
	bool agent, report;
	struct oracle *orc;
	struct bmem_result *res;
};

/* ---- the agent ------------------------------------------------------------------ */

static int write_conf(FILE *f, const char *uri, void *arg)
{
	const struct wrun *w = arg;

	return fprintf(f,
		       "{\n"
		       "  \"listen\": [\"%s\"],\n"
		       "  \"cpus\": [%d],\n"
		       "  \"heartbeat\": { \"period_ms\": 100, \"timeout_ms\": %u },\n"
		       "  \"plugin_path\": [\"%s\"],\n"
		       "  \"channel\": { \"delay_ns\": %u },\n"
		       "  \"domains\": { \"mem\": { \"plugin\": \"mem_%s\",\n"
		       "    \"params\": { \"victims\": %u, \"keep\": %d%s%s } } }\n"
		       "}\n",
		       uri, w->o->agent_cpu, HEARTBEAT_TIMEOUT_MS, BENCH_MEM_PLUGIN_DIR,
		       w->c->delay_ns, w->c->policy, w->c->prestage ? 256u : 0u, w->o->keep,
		       *w->o->params ? ", " : "", w->o->params) < 0
		       ? -EIO
		       : 0;
}

/* Generous, as wave-bench-sched's: a loaded machine (or a sanitizer build)
 * may take seconds to start the daemon and load its plugin. */
static int wait_for_agent(struct wave_mem *m)
{
	uint64_t deadline = bmem_now_ns() + 60000000000ull;
	struct wave_mem_stats st;

	for (;;) {
		if (wave_mem_stats(m, &st) == 0 && st.agent)
			return 0;
		if (bmem_now_ns() > deadline)
			return -ETIMEDOUT;
		(void)wave_mem_poll(m, 1000000);
	}
}

/* ---- the oracle ------------------------------------------------------------------- */

static const double *sort_w;

static int hotter(const void *a, const void *b)
{
	double x = sort_w[*(const uint32_t *)a], y = sort_w[*(const uint32_t *)b];

	return x > y ? -1 : x < y;
}

static void oracle_free(struct oracle *q)
{
	if (!q)
		return;
	for (int i = 0; i < 2; i++) {
		free(q->order[i]);
		free(q->pinned[i]);
	}
	free(q);
}

static struct oracle *oracle_new(const struct bmem_opts *o, const struct bmem_load *l)
{
	struct oracle *q = calloc(1, sizeof(*q));
	double *w;

	if (!q)
		return NULL;
	q->n = o->ws_bytes / o->chunk;
	q->keep = o->fast_bytes / o->chunk * 3 / 4;
	w = calloc(q->n, sizeof(*w));
	for (int i = 0; w && i < 2; i++) {
		q->order[i] = calloc(q->n, sizeof(*q->order[i]));
		q->pinned[i] = calloc(q->n, sizeof(*q->pinned[i]));
		if (!q->order[i] || !q->pinned[i])
			break;
		bmem_load_weights(l, i == 1, w, q->n);
		for (size_t c = 0; c < q->n; c++)
			q->order[i][c] = (uint32_t)c;
		sort_w = w;
		qsort(q->order[i], q->n, sizeof(*q->order[i]), hotter);
		for (size_t k = 0; k < q->keep; k++)
			q->pinned[i][q->order[i][k]] = true;
	}
	if (!w || !q->order[1] || !q->pinned[1]) {
		free(w);
		oracle_free(q);
		return NULL;
	}
	free(w);
	return q;
}

/* Marks the pinned chunks of tier 0 accessed: the host's CLOCK, which
 * relieves pressure when the prestaged victims run out between two rounds,
 * then passes them over. */
static void oracle_mark(struct wrun *w, struct oracle *q, int s)
{
	const void *a[64];
	unsigned n = 0;

	for (size_t k = 0; k < q->keep; k++) {
		a[n++] = w->base + (size_t)q->order[s][k] * w->o->chunk;
		if (n == 64 || k + 1 == q->keep) {
			(void)wave_mem_report_access(w->m, a, n);
			n = 0;
		}
	}
}

/* One round: the coldest resident chunks prestaged as victims, every
 * pinned chunk that is far promoted (a victim demoted first for room). */
static void oracle_round(struct wrun *w, struct oracle *q)
{
	static struct wave_mem_victim v[MAX_VICTIMS]; /* one oracle runs at a time */
	int s = atomic_load(&q->moved);
	struct wave_mem_chunk_info ci = { .size = sizeof(ci) };
	size_t nv = 0, used = 0;

	oracle_mark(w, q, s);
	for (size_t k = q->n; k-- > 0 && nv < MAX_VICTIMS;) {
		uint64_t id = wave_mem_chunk_id(w->region, q->order[s][k]);
		if (!q->pinned[s][q->order[s][k]] && wave_mem_chunk_info(w->m, id, &ci) == 0 &&
		    ci.tier == 0)
			v[nv++] = (struct wave_mem_victim){ id, ci.seq };
	}
	for (size_t k = 0; k < q->keep && !atomic_load(&q->stop); k++) {
		uint64_t id = wave_mem_chunk_id(w->region, q->order[s][k]);
		if (wave_mem_chunk_info(w->m, id, &ci) < 0 || ci.tier == 0)
			continue;
		if (wave_mem_migrate(w->m, id, ci.seq, 0) == WAVE_COMMITTED)
			continue;
		/* No room: demote the coldest victim, then try again. */
		while (used < nv && wave_mem_migrate(w->m, v[used].chunk, v[used].seq, 1) !=
					    WAVE_COMMITTED)
			used++;
		if (used++ < nv && wave_mem_chunk_info(w->m, id, &ci) == 0)
			(void)wave_mem_migrate(w->m, id, ci.seq, 0);
	}
	if (used < nv)
		(void)wave_mem_prestage_victims(w->m, v + used, nv - used);
}

static void *oracle_thread(void *arg)
{
	struct wrun *w = arg;
	struct oracle *q = w->orc;
	struct timespec ts;

	(void)bmem_pin(w->o->agent_cpu);
	while (!atomic_load(&q->stop)) {
		uint64_t next = bmem_now_ns() + ORACLE_PERIOD_NS;
		oracle_round(w, q);
		while (bmem_now_ns() < next && !atomic_load(&q->stop)) {
			ts = (struct timespec){ 0, 1000000 };
			nanosleep(&ts, NULL);
		}
	}
	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0)
		q->cpu_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	return NULL;
}

/* ---- the worker's hooks ---------------------------------------------------------- */

static void hook_poll(void *ctx)
{
	(void)wave_mem_poll(((struct wrun *)ctx)->m, 0);
}

static void hook_report(void *ctx, const void *const *addrs, unsigned n)
{
	(void)wave_mem_report_access(((struct wrun *)ctx)->m, addrs, n);
}

static void hook_tick(void *ctx, struct bmem_result *res)
{
	struct wrun *w = ctx;
	struct wave_mem_stats st;
	double fast, far;

	if (wave_mem_stats(w->m, &st) < 0)
		return;
	fast = (double)st.tier_used[0];
	far = (double)st.tier_used[1];
	if (fast + far > 0) {
		res->far_share_sum += far / (fast + far);
		res->far_samples++;
	}
	if (fast / (double)w->o->fast_bytes > res->fast_peak)
		res->fast_peak = fast / (double)w->o->fast_bytes;
}

static void hook_moved(void *ctx)
{
	struct wrun *w = ctx;

	if (w->orc)
		atomic_store(&w->orc->moved, true);
}

/* ---- one run ------------------------------------------------------------------------ */

static int make_manager(struct wrun *w, const char *uri, struct wave_error *err)
{
	const struct bmem_opts *o = w->o;
	struct wave_chan_opts copts;
	struct wave_host_opts hopts;
	struct wave_mem_opts mo;

	wave_chan_opts_init(&copts);
	copts.delay_ns = w->c->delay_ns;
	wave_host_opts_init(&hopts);
	hopts.heartbeat_timeout_ms = HEARTBEAT_TIMEOUT_MS;
	hopts.chan = &copts;
	wave_mem_opts_init(&mo);
	mo.n_tiers = 2;
	mo.tiers[0] = (struct wave_mem_tier){ WAVE_MEM_TIER_NUMA, WAVE_MEM_NODE_ANY,
					      w->c->kind == BMEM_ALLFAST ? 0 : o->fast_bytes };
	mo.tiers[1] = (struct wave_mem_tier){ WAVE_MEM_TIER_FAR, 0, 0 };
	mo.min_resident_ns = MIN_RESIDENT_NS;
	mo.fault_signal = w->c->fault_signal;
	if (w->c->kind != BMEM_ALLFAST) {
		mo.reserve_bytes = o->reserve_bytes;
		mo.demote_cpu = o->agent_cpu;
	}
	mo.agent_uri = uri;
	mo.host = &hopts;
	mo.agent_chunk_size = o->chunk;
	return wave_mem_create(&mo, &w->m, err);
}

/* Fills the region (its first touch) and demotes what is over the budget;
 * the agent hears of it before the timed phase. */
static int prepare(struct wrun *w, struct bmem_load *l, char *base)
{
	struct wave_mem_region_opts ro;
	int ret;

	wave_mem_region_opts_init(&ro);
	ro.chunk_size = w->o->chunk;
	if ((ret = wave_mem_region_register(w->m, base, w->o->ws_bytes, &ro, &w->region)) < 0)
		return ret;
	bmem_load_fill(l, base);
	while ((ret = wave_mem_relieve(w->m)) > 0)
		;
	if (ret < 0)
		return ret;
	for (uint64_t end = bmem_now_ns() + 100000000; w->agent && bmem_now_ns() < end;)
		(void)wave_mem_poll(w->m, 1000000);
	return 0;
}

static int timed(struct wrun *w, struct bmem_load *l, struct bench_agentd *ar)
{
	struct bmem_hooks h = { .ctx = w, .tick = hook_tick, .moved = hook_moved };
	struct wave_mem_stats s0, s1;
	uint64_t cpu0 = w->agent ? bench_agentd_cpu_ns(ar) : 0;
	int ret;

	if (w->agent) {
		h.poll = hook_poll;
		h.report = hook_report;
	}
	if (w->orc && (ret = -pthread_create(&w->orc->thr, NULL, oracle_thread, w)) < 0)
		return ret;
	/* This process (worker, fault thread, an on-host agent) and a daemon. */
	pid_t pids[2] = { getpid(), w->agent ? ar->pid : 0 };
	int cpus[2] = { w->o->worker_cpu, w->o->agent_cpu };
	struct bench_watch wt;
	bool watched;

	watched = bench_watch_begin(&wt, pids, w->agent && ar->pid > 0 ? 2 : 1, cpus,
				    cpus[0] == cpus[1] ? 1 : 2) == 0;
	wave_mem_stats(w->m, &s0);
	ret = bmem_load_run(l, &h, w->res);
	wave_mem_stats(w->m, &s1);
	w->res->offcpu = watched ? bench_watch_end(&wt) : 0;
	if (w->orc) {
		atomic_store(&w->orc->stop, true);
		pthread_join(w->orc->thr, NULL);
		w->res->agent_cpu_ns = w->orc->cpu_ns;
	} else if (w->agent) {
		w->res->agent_cpu_ns = bench_agentd_cpu_ns(ar) - cpu0;
	}
	bmem_load_check(l, w->res);
	w->res->far_accesses = s1.far_faults - s0.far_faults;
	w->res->moves = s1.committed - s0.committed + w->res->far_accesses;
	/* A run whose placement the host's fallback made any part of is not
	 * this configuration's. */
	if (ret == 0 && w->agent && (s1.agent_fallbacks != s0.agent_fallbacks || !s1.agent)) {
		snprintf(w->res->note, sizeof(w->res->note),
			 "the agent lost control during the run (fallbacks %llu, malformed %llu, "
			 "resyncs %llu, in control at the end: %s)",
			 (unsigned long long)(s1.agent_fallbacks - s0.agent_fallbacks),
			 (unsigned long long)s1.agent_bad, (unsigned long long)s1.agent_resyncs,
			 s1.agent ? "yes" : "no");
		ret = -EPROTO;
	}
	return ret;
}

static int run_manager(struct wrun *w, struct bmem_load *l, struct bench_agentd *ar)
{
	struct wave_error err = { 0 };
	char *base;
	int ret = make_manager(w, w->agent ? ar->uri : NULL, &err);

	if (ret == -ENOSYS || ret == -EPERM) { /* no userfaultfd here: nothing to measure */
		snprintf(w->res->note, sizeof(w->res->note), "skipped: no far tier here (%.150s)",
			 err.text);
		return 1;
	}
	if (ret < 0) {
		snprintf(w->res->note, sizeof(w->res->note), "libwave: %s (%.150s)",
			 wave_strerror(ret), err.text);
		return ret;
	}
	base = mmap(NULL, w->o->ws_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		    0);
	if (base == MAP_FAILED) {
		wave_mem_destroy(w->m);
		return -ENOMEM;
	}
	w->base = base;
	if (w->agent && (ret = wait_for_agent(w->m)) < 0)
		snprintf(w->res->note, sizeof(w->res->note), "the agent did not take control");
	if (ret == 0 && (ret = prepare(w, l, base)) < 0)
		snprintf(w->res->note, sizeof(w->res->note), "preparing the region: %s",
			 wave_strerror(ret));
	/* The fill polls nobody: on a loaded machine it can outlast the
	 * agent's heartbeat timeout, and the agent is then resynced. The timed
	 * phase starts with the agent in control. */
	if (ret == 0 && w->agent && (ret = wait_for_agent(w->m)) < 0)
		snprintf(w->res->note, sizeof(w->res->note), "the agent did not take control back");
	if (ret == 0)
		ret = timed(w, l, ar);
	wave_mem_destroy(w->m); /* unregisters: the far chunks come back first */
	munmap(base, w->o->ws_bytes);
	return ret;
}

int bmem_run_wave(const struct bmem_opts *o, const struct bmem_config *c, struct bmem_load *l,
		  struct bmem_result *res)
{
	struct wrun w = { .o = o, .c = c, .res = res };
	struct bench_agentd ar = { .pid = -1 };
	int ret;

	w.agent = c->kind == BMEM_ONHOST || c->kind == BMEM_OFFLOAD;
	if ((ret = bmem_pin(o->worker_cpu)) < 0)
		return ret;
	if (c->kind == BMEM_ORACLE && !(w.orc = oracle_new(o, l)))
		return -ENOMEM;
	if (w.agent) {
		ret = bench_agentd_start(&ar, "wave-bench-mem", o->agent_cpu,
					 c->kind == BMEM_ONHOST, BENCH_MEM_AGENTD, write_conf, &w);
		if (ret < 0) {
			snprintf(res->note, sizeof(res->note), "cannot start the agent: %s",
				 strerror(-ret));
			return ret;
		}
		bmem_agentd_pid = ar.pid;
	}
	ret = run_manager(&w, l, &ar);
	if (w.agent) {
		bmem_agentd_pid = -1;
		bench_agentd_stop(&ar, ret < 0);
	}
	oracle_free(w.orc);
	res->ok = ret == 0 && res->bad == 0;
	return ret;
}
