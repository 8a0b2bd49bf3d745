/* SPDX-License-Identifier: MIT */
/*
 * wave-bench-mem's output: a table per workload (or one JSON object per
 * row), then the ratios the targets are about and a verdict on
 * each. Every figure is the median over runs; a ratio is the median over
 * rounds of each round's ratio (the two runs of a round were made a few
 * seconds apart, so a change of the machine's load between rounds cancels).
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "bench_mem.h"
#include "bench_stat.h"

/* The targets. */
#define T_VS_LINUX 1.0  /* at least as fast as Linux memcg+zram */
#define T_VS_LINUX_GOAL 1.5
#define T_VS_ORACLE 0.8 /* within 20% of the oracle */
#define T_OFFLOAD 0.95  /* offloaded within 5% of on-host */
#define T_PRESTAGE 0.9  /* at 2 us, prestaged within 10% of on-host */
#define T_VISIBLE 0.95  /* no prestaging "visibly costs": 5% or more */
#define T_REGAIN_MS 2000.0

/* ---- one run's figures ---------------------------------------------------------- */

/* The middle of latency bucket @b (see lat_bucket() in bench_mem_load.c). */
static double bucket_ns(unsigned b)
{
	unsigned e, sub;

	if (b < BMEM_LAT_SUB)
		return b;
	e = b / BMEM_LAT_SUB + 3;
	sub = b % BMEM_LAT_SUB;
	return ((double)(BMEM_LAT_SUB + sub) + 0.5) * (double)(1ull << (e - 4));
}

static double percentile_us(const uint64_t *lat, double q)
{
	uint64_t n = 0, seen = 0;

	for (unsigned b = 0; b < BMEM_LAT_BUCKETS; b++)
		n += lat[b];
	for (unsigned b = 0; b < BMEM_LAT_BUCKETS && n; b++) {
		seen += lat[b];
		if ((double)seen >= q * (double)n)
			return bucket_ns(b) / 1000;
	}
	return 0;
}

/* Ops done in tick @k. */
static double tick_rate(const struct bmem_result *r, unsigned k)
{
	return (double)(r->tick_ops[k] - (k ? r->tick_ops[k - 1] : 0));
}

/* The time from the move until a 100 ms window's throughput is back at
 * 90% of the second before the move: INFINITY when it never was within
 * the run, NAN when nothing moved. */
static double regain_ms(const struct bmem_result *r)
{
	const unsigned win = 10, before = 100;
	unsigned m = r->move_tick, from = m > before ? m - before : 1;
	double steady = 0;

	if (!m || m <= from)
		return NAN;
	for (unsigned k = from; k < m; k++)
		steady += tick_rate(r, k);
	steady /= m - from;
	for (unsigned j = 0; m + j + win <= r->n_ticks; j++) {
		double sum = 0;
		for (unsigned k = m + j; k < m + j + win; k++)
			sum += tick_rate(r, k);
		if (sum / win >= 0.9 * steady)
			return (double)j * BMEM_TICK_NS / 1e6;
	}
	return INFINITY;
}

void bmem_fig_make(const struct bmem_result *r, struct bmem_fig *f)
{
	memset(f, 0, sizeof(*f));
	f->ops_s = r->secs > 0 ? (double)r->ops / r->secs : 0;
	f->cpu_ops_s = r->secs > (double)r->rq_wait_ns / 1e9
			       ? (double)r->ops / (r->secs - (double)r->rq_wait_ns / 1e9)
			       : 0;
	f->p50_us = percentile_us(r->lat, 0.50);
	f->p99_us = percentile_us(r->lat, 0.99);
	f->far_mem = r->far_samples ? r->far_share_sum / r->far_samples : 0;
	f->far_acc = r->ops ? (double)r->far_accesses / (double)r->ops : 0;
	f->moves_s = r->secs > 0 ? (double)r->moves / r->secs : 0;
	f->agent_ms = (double)r->agent_cpu_ns / 1e6;
	f->off_cpu_ms = (double)r->rq_wait_ns / 1e6;
	f->stall_ms = (double)r->stall_ns / 1e6;
	f->fast_peak = r->fast_peak;
	f->offcpu = r->offcpu;
	f->regain_ms = regain_ms(r);
}

/* ---- medians ---------------------------------------------------------------------- */

#define FIELD(f, off) (*(const double *)((const char *)(f) + (off)))

void bmem_row_make(struct bmem_row *row)
{
	static const size_t fields[] = {
		offsetof(struct bmem_fig, ops_s),     offsetof(struct bmem_fig, cpu_ops_s),
		offsetof(struct bmem_fig, p50_us),
		offsetof(struct bmem_fig, p99_us),    offsetof(struct bmem_fig, far_mem),
		offsetof(struct bmem_fig, far_acc),   offsetof(struct bmem_fig, moves_s),
		offsetof(struct bmem_fig, agent_ms),  offsetof(struct bmem_fig, off_cpu_ms),
		offsetof(struct bmem_fig, stall_ms),  offsetof(struct bmem_fig, fast_peak),
		offsetof(struct bmem_fig, regain_ms), offsetof(struct bmem_fig, offcpu),
	};
	double v[BMEM_MAX_RUNS];

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]) && row->runs; i++) {
		for (unsigned r = 0; r < row->runs; r++)
			v[r] = FIELD(&row->fig[r], fields[i]);
		/* NAN (no move) sorts badly; it is all or nothing per workload. */
		double m = isnan(v[0]) ? NAN : bench_median(v, row->runs);
		*(double *)((char *)&row->med + fields[i]) = m;
	}
}

/* The median over rounds of @a's figure at @off over @b's. */
static bool ratio(const struct bmem_row *a, const struct bmem_row *b, size_t off, double *out)
{
	unsigned n = a && b ? (a->runs < b->runs ? a->runs : b->runs) : 0, k = 0;
	double v[BMEM_MAX_RUNS];

	for (unsigned i = 0; i < n; i++)
		if (FIELD(&b->fig[i], off) > 0)
			v[k++] = FIELD(&a->fig[i], off) / FIELD(&b->fig[i], off);
	if (!k)
		return false;
	*out = bench_median(v, k);
	return true;
}

/* ---- the table and JSON rows --------------------------------------------------------- */

static const char *kind_name(enum bmem_kind k)
{
	static const char *const n[] = { "all-fast", "oracle", "no-policy", "onhost", "offload",
					 "linux" };
	return n[k];
}

/* Whether something besides the worker decides (an agent, the oracle). */
static bool has_agent(enum bmem_kind k)
{
	return k == BMEM_ORACLE || k == BMEM_ONHOST || k == BMEM_OFFLOAD;
}

static void json_num(const char *key, double v)
{
	if (isfinite(v))
		printf(",\"%s\":%.4g", key, v);
	else
		printf(",\"%s\":null", key);
}

static void json_row(const struct bmem_row *r)
{
	const struct bmem_config *c = r->c;
	const struct bmem_fig *f = &r->med;

	printf("{\"workload\":\"%s\",\"config\":\"%s\",\"kind\":\"%s\",\"policy\":",
	       bmem_work_name(r->w), c->name, kind_name(c->kind));
	if (c->policy)
		printf("\"%s\",\"delay_ns\":%u,\"prestage\":%s", c->policy, c->delay_ns,
		       c->prestage ? "true" : "false");
	else
		printf("null,\"delay_ns\":null,\"prestage\":null");
	printf(",\"runs\":%u", r->runs);
	if (r->runs) {
		json_num("ops_per_s", f->ops_s);
		json_num("on_cpu_ops_per_s", f->cpu_ops_s);
		json_num("p50_us", f->p50_us);
		json_num("p99_us", f->p99_us);
		json_num("far_memory_share", f->far_mem);
		json_num("far_access_share", f->far_acc);
		json_num("moves_per_s", f->moves_s);
		json_num("agent_cpu_ms", has_agent(c->kind) ? f->agent_ms : NAN);
		json_num("regain_ms", f->regain_ms);
		printf(",\"regained\":%s", isinf(f->regain_ms)   ? "false"
					    : isnan(f->regain_ms) ? "null"
								  : "true");
		json_num("off_cpu_ms", f->off_cpu_ms);
		json_num("stall_ms", f->stall_ms);
		json_num("fast_peak", f->fast_peak);
		json_num("offcpu_share", f->offcpu);
	}
	printf(",\"note\":\"");
	for (const char *p = r->note; *p; p++)
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if ((unsigned char)*p >= 0x20)
			putchar(*p);
	printf("\"}\n");
}

static void table_row(const struct bmem_row *r)
{
	const struct bmem_fig *f = &r->med;
	char regain[16] = "-", agent[16] = "-";

	if (!r->runs) {
		printf("%-20s %s\n", r->c->name, r->note[0] ? r->note : "no run succeeded");
		return;
	}
	if (isinf(f->regain_ms))
		snprintf(regain, sizeof(regain), "never");
	else if (!isnan(f->regain_ms))
		snprintf(regain, sizeof(regain), "%.0f", f->regain_ms);
	if (has_agent(r->c->kind))
		snprintf(agent, sizeof(agent), "%.0f", f->agent_ms);
	printf("%-20s %9.0f %9.0f %7.2f %8.1f %6.1f%% %7.2f%% %9.0f %8s %9s %8.0f %8.0f %6.0f%%"
	       " %5.0f%%\n",
	       r->c->name, f->ops_s, f->cpu_ops_s, f->p50_us, f->p99_us, 100 * f->far_mem,
	       100 * f->far_acc, f->moves_s, agent, regain, f->off_cpu_ms, f->stall_ms,
	       100 * f->fast_peak, 100 * f->offcpu);
}

static void header(const struct bmem_opts *o, enum bmem_work w)
{
	printf("\n%s: %llu MiB working set, %llu MiB fast budget, %llu KiB chunks",
	       bmem_work_name(w), (unsigned long long)(o->ws_bytes >> 20),
	       (unsigned long long)(o->fast_bytes >> 20), (unsigned long long)(o->chunk >> 10));
	if (w == BMEM_GUPS)
		printf(", hot set moves at %u of %u ms\n", o->move_ms, o->run_ms);
	else
		printf(", %u-byte values, theta %.2f, %u ms\n", o->value, o->theta, o->run_ms);
	printf("%-20s %9s %9s %7s %8s %7s %8s %9s %8s %9s %8s %8s %7s %6s\n", "config", "ops/s",
	       "on-CPU/s", "p50 us", "p99 us", "far mem", "far acc", "moves/s", "agent ms",
	       "regain ms", "off-CPU", "stall ms", "fast pk", "off %");
}

/* ---- ratios and targets --------------------------------------------------------------- */

static const struct bmem_row *find(const struct bmem_row *rows, size_t n, enum bmem_work w,
				   const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (rows[i].w == w && rows[i].runs && strcmp(rows[i].c->name, name) == 0)
			return &rows[i];
	return NULL;
}

/* The policy row with the highest median on-CPU throughput. */
static const struct bmem_row *best(const struct bmem_row *rows, size_t n, enum bmem_work w)
{
	const struct bmem_row *b = NULL;

	for (size_t i = 0; i < n; i++)
		if (rows[i].w == w && rows[i].runs && rows[i].c->policy &&
		    (!b || rows[i].med.cpu_ops_s > b->med.cpu_ops_s))
			b = &rows[i];
	return b;
}

/* @pol: the policy a per-policy target is about, or NULL. */
static void verdict(const struct bmem_opts *o, enum bmem_work w, const char *pol,
		    const char *name, const char *text, double v, double goal, bool met)
{
	if (o->json)
		printf("{\"metric\":\"target\",\"workload\":\"%s\",\"policy\":%s%s%s,"
		       "\"name\":\"%s\",\"value\":%.4g,\"goal\":%.4g,\"met\":%s}\n",
		       bmem_work_name(w), pol ? "\"" : "", pol ? pol : "null", pol ? "\"" : "",
		       name, v, goal, met ? "true" : "false");
	else
		printf("  %-58s %7.3f (goal %.2f)  %s\n", text, v, goal, met ? "met" : "MISSED");
}

/* Prints the ratio of @a's throughput to @b's, wall and on-CPU, and
 * stores the on-CPU one (which the targets are judged on) in *@out. */
static void show_ratio(const struct bmem_opts *o, enum bmem_work w, const struct bmem_row *a,
		       const struct bmem_row *b, double *out)
{
	double wall, cpu;

	if (!ratio(a, b, offsetof(struct bmem_fig, ops_s), &wall) ||
	    !ratio(a, b, offsetof(struct bmem_fig, cpu_ops_s), &cpu))
		return;
	if (o->json)
		printf("{\"metric\":\"ratio\",\"workload\":\"%s\",\"num\":\"%s\",\"den\":\"%s\","
		       "\"wall\":%.4g,\"on_cpu\":%.4g}\n",
		       bmem_work_name(w), a->c->name, b->c->name, wall, cpu);
	else
		printf("  %-22s / %-22s = %6.3f wall, %6.3f on-CPU\n", a->c->name, b->c->name, wall,
		       cpu);
	if (out)
		*out = cpu;
}

static void per_policy(const struct bmem_opts *o, const struct bmem_row *rows, size_t n,
		       enum bmem_work w, const char *pol)
{
	static const char *const places[] = { "shm", "1us", "2us" };
	char a[32], b[32], t[80];
	const struct bmem_row *on;
	double v;

	snprintf(a, sizeof(a), "%s-onhost-ps", pol);
	if (!(on = find(rows, n, w, a)))
		return;
	for (size_t p = 0; p < 3; p++) {
		snprintf(b, sizeof(b), "%s-%s-ps", pol, places[p]);
		v = NAN;
		show_ratio(o, w, find(rows, n, w, b), on, &v);
		if (p == 0 && !isnan(v)) {
			snprintf(t, sizeof(t), "%s offloaded (shm) / on-host", pol);
			verdict(o, w, pol, "offload_vs_onhost", t, v, T_OFFLOAD, v >= T_OFFLOAD);
		}
		if (p == 2 && !isnan(v)) {
			snprintf(t, sizeof(t), "%s at 2 us, prestaged / on-host", pol);
			verdict(o, w, pol, "prestaged_2us_vs_onhost", t, v, T_PRESTAGE,
				v >= T_PRESTAGE);
		}
	}
	snprintf(a, sizeof(a), "%s-2us-np", pol);
	snprintf(b, sizeof(b), "%s-2us-ps", pol);
	v = NAN;
	show_ratio(o, w, find(rows, n, w, a), find(rows, n, w, b), &v);
	if (!isnan(v)) {
		snprintf(t, sizeof(t), "%s at 2 us, no prestaging / prestaged", pol);
		verdict(o, w, pol, "no_prestage_costs_2us", t, v, T_VISIBLE, v <= T_VISIBLE);
	}
}

static void targets(const struct bmem_opts *o, const struct bmem_row *rows, size_t n,
		    enum bmem_work w)
{
	static const char *const pols[] = { "hemem", "memtis", "sdfm" };
	const struct bmem_row *b = best(rows, n, w), *lx = find(rows, n, w, "linux");
	const struct bmem_row *orc;
	double v;

	if (!b)
		return;
	/* The oracle that serves its faults the same way: the limit of the
	 * placement, not of the fault path. */
	orc = find(rows, n, w, b->c->fault_signal ? "oracle-sig" : "oracle");
	if (!o->json)
		printf("\n%s: ratios of throughput (median over rounds; wall, and on-CPU: the\n"
		       "worker's run-queue wait taken out), best policy %s; targets judged "
		       "on-CPU:\n",
		       bmem_work_name(w), b->c->name);
	v = NAN;
	show_ratio(o, w, b, lx, &v);
	if (!isnan(v)) {
		verdict(o, w, NULL, "best_vs_linux", "best policy / Linux memcg+zram", v,
			T_VS_LINUX, v >= T_VS_LINUX);
		verdict(o, w, NULL, "best_vs_linux_goal", "best policy / Linux memcg+zram (goal)",
			v, T_VS_LINUX_GOAL, v >= T_VS_LINUX_GOAL);
	} else if (!o->json) {
		printf("  best policy / Linux memcg+zram: not measured (see the linux row)\n");
	}
	v = NAN;
	show_ratio(o, w, b, orc, &v);
	if (!isnan(v))
		verdict(o, w, NULL, "best_vs_oracle", "best policy / oracle", v, T_VS_ORACLE,
			v >= T_VS_ORACLE);
	for (size_t p = 0; p < sizeof(pols) / sizeof(pols[0]); p++)
		per_policy(o, rows, n, w, pols[p]);
	if (w == BMEM_GUPS && !isnan(b->med.regain_ms))
		verdict(o, w, NULL, "regain_ms", "best policy: regain 90% after the move, ms",
			isinf(b->med.regain_ms) ? -1 : b->med.regain_ms, T_REGAIN_MS,
			b->med.regain_ms <= T_REGAIN_MS);
}

void bmem_report(const struct bmem_opts *o, const struct bmem_row *rows, size_t n)
{
	for (int w = 0; w < BMEM_N_WORK; w++) {
		bool any = false;

		for (size_t i = 0; i < n; i++) {
			if (rows[i].w != (enum bmem_work)w)
				continue;
			if (!any && !o->json)
				header(o, (enum bmem_work)w);
			any = true;
			if (o->json)
				json_row(&rows[i]);
			else
				table_row(&rows[i]);
		}
		if (any)
			targets(o, rows, n, (enum bmem_work)w);
	}
	fflush(stdout);
}
