/* SPDX-License-Identifier: MIT */
/*
 * Output: a table for people, or one JSON object per line per measurement
 * for scripts. Every figure is the median over the runs; latency figures are
 * one way (round trip / 2) in nanoseconds; ratios are the median over rounds
 * of each round's ratio.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"

/* The project's targets (see the benchmark's --help). */
#define TARGET_P50_NS 150.0
#define TARGET_VS_FABRIC 6.0
#define TARGET_B32_MSGS 30e6
#define TARGET_OVER_FLOOR_NS 25.0

struct row {
	const char *label; /* in the table */
	const char *key;   /* in JSON */
};

static const struct row rows[BENCH_N_TRANSPORTS] = {
	[BENCH_T_WAVE] = { "libwave shm", "libwave_shm" },
	[BENCH_T_WAVE_NS] = { "libwave shm, unstamped", "libwave_shm_unstamped" },
	[BENCH_T_FABRIC] = { "libfabric shm (fi_pingpong)", "libfabric_shm_fi_pingpong" },
	[BENCH_T_UDS] = { "unix socket (seqpacket)", "unix_seqpacket" },
	[BENCH_T_FLOOR] = { "bare cache line (floor)", "cache_line_floor" },
	[BENCH_T_PATH] = { "libwave path, one CPU", "libwave_path_one_cpu" },
};

/* The medians of one transport over its undisturbed runs, or have_* false
 * when it has none. */
struct summary {
	bool have_lat, have_pct, have_tput;
	struct bench_lat lat;
	double tput[BENCH_N_BATCHES];
	unsigned runs, dropped; /* runs measured; left out as disturbed */
	bool conclusive;        /* false: every run was disturbed, all are used */
	double max_offcpu;      /* the largest off-CPU share of a run */
};

/* Which runs of @res count: those that lost at most the threshold. A run
 * without an off-CPU figure (fewer figures than runs) counts. */
static bool runs_kept(const struct bench_report *r, const struct bench_result *res, bool *keep,
		      unsigned *dropped)
{
	unsigned n = res->n_lat > res->n_tput ? res->n_lat : res->n_tput;

	if (res->n_off < n) {
		for (unsigned i = 0; i < n; i++)
			keep[i] = true;
		*dropped = 0;
		return true;
	}
	return bench_offcpu_select(res->offcpu, n, r->cfg->max_offcpu, keep, dropped);
}

static struct summary summarize(const struct bench_report *r, int t)
{
	struct summary s;
	const struct bench_result *res = r->res[t];
	struct bench_lat lat[BENCH_MAX_REPS];
	bool keep[BENCH_MAX_REPS];
	unsigned k = 0;

	memset(&s, 0, sizeof(s));
	if (!r->ran[t] || !res || !res->ok)
		return s;
	s.conclusive = runs_kept(r, res, keep, &s.dropped);
	s.runs = res->n_lat;
	for (unsigned i = 0; i < res->n_off; i++)
		if (res->offcpu[i] > s.max_offcpu)
			s.max_offcpu = res->offcpu[i];
	for (unsigned i = 0; i < res->n_lat; i++)
		if (keep[i])
			lat[k++] = res->lat[i];
	s.have_lat = k > 0;
	s.have_pct = s.have_lat && res->have_pct;
	if (s.have_lat)
		s.lat = bench_lat_median(lat, k);
	s.have_tput = res->have_tput && res->n_tput > 0;
	for (int b = 0; s.have_tput && b < BENCH_N_BATCHES; b++) {
		double v[BENCH_MAX_REPS];
		k = 0;
		for (unsigned i = 0; i < res->n_tput; i++)
			if (keep[i])
				v[k++] = res->tput[b][i];
		s.tput[b] = k ? bench_median(v, k) : 0;
	}
	return s;
}

/* ---- JSON ---------------------------------------------------------------- */

void bench_json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

static void json_transport(const struct bench_report *r, int t, const struct summary *s)
{
	const struct bench_result *res = r->res[t];

	if (!s->have_lat) {
		printf("{\"transport\":\"%s\",\"metric\":\"latency_one_way\",\"available\":false,"
		       "\"note\":", rows[t].key);
		bench_json_string(res ? res->note : "");
		printf("}\n");
		return;
	}
	printf("{\"transport\":\"%s\",\"metric\":\"latency_one_way\",", rows[t].key);
	if (s->have_pct)
		printf("\"p50_ns\":%.1f,\"p99_ns\":%.1f,\"p999_ns\":%.1f,\"mean_ns\":%.1f,",
		       s->lat.p50, s->lat.p99, s->lat.p999, s->lat.mean);
	printf("\"loop_mean_ns\":%.1f,\"runs\":%u,\"runs_disturbed\":%u,\"max_offcpu\":%.3f,"
	       "\"conclusive\":%s,\"round_trips_per_run\":%u,\"note\":",
	       s->lat.loop_mean, s->runs, s->dropped, s->max_offcpu,
	       s->conclusive ? "true" : "false", r->cfg->iters);
	bench_json_string(res->note);
	printf("}\n");
	for (int b = 0; s->have_tput && b < BENCH_N_BATCHES; b++)
		printf("{\"transport\":\"%s\",\"metric\":\"throughput\",\"batch\":%u,"
		       "\"msgs_per_s\":%.0f,\"runs\":%u,\"run_ms\":%u}\n",
		       rows[t].key, bench_batches[b], s->tput[b], res->n_tput, r->cfg->tput_ms);
}

/* ---- table ----------------------------------------------------------------- */

static void cell_ns(bool have, double v)
{
	if (have)
		printf(" %9.0f", v);
	else
		printf(" %9s", "-");
}

static void cell_rate(bool have, double v)
{
	if (have)
		printf(" %10.2f M", v / 1e6);
	else
		printf(" %12s", "-");
}

static void table_row(const struct bench_report *r, int t, const struct summary *s)
{
	printf("%-28s", rows[t].label);
	if (!s->have_lat) {
		printf(" %s\n", r->res[t] ? r->res[t]->note : "not run");
		return;
	}
	cell_ns(s->have_pct, s->lat.p50);
	cell_ns(s->have_pct, s->lat.p99);
	cell_ns(s->have_pct, s->lat.p999);
	cell_ns(s->have_pct, s->lat.mean);
	cell_ns(true, s->lat.loop_mean);
	for (int b = 0; b < BENCH_N_BATCHES; b++)
		cell_rate(s->have_tput, s->tput[b]);
	printf("\n");
}

static void table_header(const struct bench_report *r)
{
	const struct bench_cfg *c = r->cfg;

	printf("wave-bench-chan: 64-byte messages; host side on CPU %d, agent side on CPU %d%s\n",
	       c->host_cpu, c->agent_cpu,
	       c->single_core ? " (ONE CPU ONLY: both sides share it and yield when idle; "
				"numbers are not meaningful)" : "");
	if (bench_clock_kind() == BENCH_CLOCK_TSC)
		printf("timer: rdtscp, TSC at %.1f MHz calibrated against CLOCK_MONOTONIC\n",
		       bench_clock_mhz());
	else
		printf("timer: clock_gettime(CLOCK_MONOTONIC)\n");
	printf("latency: one way = round trip / 2; per run %u untimed round trips, then %u timed\n"
	       "  as a whole (\"loop\": mean, no timer inside the loop, fi_pingpong's method), then\n"
	       "  %u timed one by one (p50/p99/p99.9/mean: include one timer reading per round\n"
	       "  trip); median over runs of each run's figure\n",
	       c->warmup, c->iters, c->iters);
	printf("throughput: messages/s streamed host -> agent in batches of B; %u runs of %u ms "
	       "per B; median\n", c->reps, c->tput_ms);
	printf("runs are interleaved: each of the %u rounds runs every transport once, in fresh "
	       "processes\n\n", c->reps);
	printf("%-28s %9s %9s %9s %9s %9s %12s %12s %12s\n", "transport", "p50 ns", "p99 ns",
	       "p99.9 ns", "mean ns", "loop ns", "B=1 msg/s", "B=8 msg/s", "B=32 msg/s");
}

/* How many runs the machine disturbed, and whether what is left means
 * anything. */
static void disturbance(const struct bench_report *r, const struct summary *s)
{
	printf("off-CPU: runs that lost more than %.0f%% of their time to other tasks or the "
	       "hypervisor are left out\n", 100 * r->cfg->max_offcpu);
	for (int t = 0; t < BENCH_N_TRANSPORTS; t++) {
		if (!r->ran[t] || !s[t].runs)
			continue;
		if (s[t].conclusive)
			printf("  %-28s %u of %u runs left out (largest loss %.1f%%)\n", rows[t].label,
			       s[t].dropped, s[t].runs, 100 * s[t].max_offcpu);
		else
			printf("  %-28s all %u runs lost more (largest loss %.1f%%): the machine was "
			       "disturbed, figures NOT CONCLUSIVE\n", rows[t].label, s[t].runs,
			       100 * s[t].max_offcpu);
	}
}

/* ---- ratios and targets ------------------------------------------------------ */

/* One figure of every run of one transport: a latency field or a rate. */
struct fig {
	int t;
	size_t lat_off; /* offset of a double in struct bench_lat */
	int batch;      /* index into bench_batches, or -1 for latency */
};

#define LAT(t, field) ((struct fig){ (t), offsetof(struct bench_lat, field), -1 })
#define RATE(t, b) ((struct fig){ (t), 0, (b) })

static unsigned fig_runs(const struct bench_report *r, struct fig f)
{
	const struct bench_result *res = r->res[f.t];

	return f.batch < 0 ? res->n_lat : res->n_tput;
}

static double fig_value(const struct bench_report *r, struct fig f, unsigned run)
{
	const struct bench_result *res = r->res[f.t];

	if (f.batch >= 0)
		return res->tput[f.batch][run];
	return *(const double *)((const char *)&res->lat[run] + f.lat_off);
}

/*
 * The median over rounds of num/den (or num - den when @diff). Both figures
 * of a round were measured seconds apart, so a change of load, or of where
 * the hypervisor runs the two vCPUs, between rounds cancels out.
 */
static bool per_round(const struct bench_report *r, struct fig num, struct fig den, bool diff,
		      double *out)
{
	unsigned n = fig_runs(r, num) < fig_runs(r, den) ? fig_runs(r, num) : fig_runs(r, den);
	double v[BENCH_MAX_REPS];
	bool keep_num[BENCH_MAX_REPS], keep_den[BENCH_MAX_REPS];
	unsigned k = 0, dropped;

	if (!r->res[num.t]->ok || !r->res[den.t]->ok)
		return false;
	/* A round counts when neither figure of it was disturbed. */
	runs_kept(r, r->res[num.t], keep_num, &dropped);
	runs_kept(r, r->res[den.t], keep_den, &dropped);
	for (unsigned i = 0; i < n; i++) {
		if (!keep_num[i] || !keep_den[i])
			continue;
		double a = fig_value(r, num, i), b = fig_value(r, den, i);
		if (diff)
			v[k++] = a - b;
		else if (b > 0)
			v[k++] = a / b;
	}
	if (k == 0)
		return false;
	*out = bench_median(v, k);
	return true;
}

static void ratio(const struct bench_report *r, const char *key, const char *text, struct fig num,
		  struct fig den)
{
	double v;

	if (!per_round(r, num, den, false, &v))
		return;
	if (r->cfg->json)
		printf("{\"metric\":\"ratio\",\"name\":\"%s\",\"value\":%.2f}\n", key, v);
	else
		printf("  %-58s = %6.1fx\n", text, v);
}

/* A target judged on figures of @s (not judged when they are not
 * conclusive). */
static void target(const struct bench_report *r, const struct summary *s, const char *key,
		   const char *text, double value, const char *unit, bool met)
{
	if (r->cfg->json)
		printf("{\"metric\":\"target\",\"name\":\"%s\",\"value\":%.2f,\"met\":%s,"
		       "\"conclusive\":%s}\n", key, value, met ? "true" : "false",
		       s->conclusive ? "true" : "false");
	else
		printf("  %-50s %8.1f %-3s  %s\n", text, value, unit,
		       !s->conclusive ? "not conclusive" : met ? "met" : "MISSED");
}

static void overhead(const struct bench_report *r, const char *key, const char *text, double ns)
{
	if (r->cfg->json)
		printf("{\"metric\":\"overhead\",\"name\":\"%s\",\"ns\":%.1f}\n", key, ns);
	else
		printf("  %-58s = %6.0f ns\n", text, ns);
}

static void ratios_latency(const struct bench_report *r)
{
	const int W = BENCH_T_WAVE, F = BENCH_T_FABRIC, U = BENCH_T_UDS, FL = BENCH_T_FLOOR;
	double d;

	ratio(r, "fi_pingpong_loop/libwave_loop",
	      "fi_pingpong one-way loop mean / libwave one-way loop mean", LAT(F, loop_mean),
	      LAT(W, loop_mean));
	ratio(r, "fi_pingpong_loop/libwave_p50", "fi_pingpong one-way loop mean / libwave one-way p50",
	      LAT(F, loop_mean), LAT(W, p50));
	ratio(r, "uds_p50/libwave_p50", "unix socket one-way p50 / libwave one-way p50", LAT(U, p50),
	      LAT(W, p50));
	ratio(r, "uds_p99/libwave_p99", "unix socket one-way p99 / libwave one-way p99", LAT(U, p99),
	      LAT(W, p99));
	ratio(r, "uds_loop/libwave_loop", "unix socket one-way loop mean / libwave loop mean",
	      LAT(U, loop_mean), LAT(W, loop_mean));
	ratio(r, "libwave_p50/floor_p50", "libwave one-way p50 / bare cache line p50", LAT(W, p50),
	      LAT(FL, p50));
	if (per_round(r, LAT(W, p50), LAT(FL, p50), true, &d))
		overhead(r, "libwave_p50-floor_p50", "libwave one-way p50 - bare cache line p50", d);
	if (per_round(r, LAT(BENCH_T_WAVE_NS, p50), LAT(FL, p50), true, &d))
		overhead(r, "libwave_unstamped_p50-floor_p50",
			 "libwave unstamped one-way p50 - bare cache line p50", d);
}

static void ratios(const struct bench_report *r, const struct summary *s)
{
	if (!s[BENCH_T_WAVE].have_lat || (!s[BENCH_T_FABRIC].have_lat && !s[BENCH_T_UDS].have_lat &&
					    !s[BENCH_T_FLOOR].have_lat))
		return;
	if (!r->cfg->json)
		printf("\nlibwave against its peers and the floor (median over rounds of each "
		       "round's ratio):\n");
	ratios_latency(r);
	for (int b = 0; b < BENCH_N_BATCHES; b++) {
		char key[64], text[96];
		snprintf(key, sizeof(key), "libwave_msgs/uds_msgs_b%u", bench_batches[b]);
		snprintf(text, sizeof(text), "libwave msgs/s / unix socket msgs/s at B=%u",
			 bench_batches[b]);
		ratio(r, key, text, RATE(BENCH_T_WAVE, b), RATE(BENCH_T_UDS, b));
	}
}

/* Transport @t's p50 within TARGET_OVER_FLOOR_NS of the floor's: the median
 * of the rounds' differences, judged conclusive only if both rows are. */
static void floor_target(const struct bench_report *r, const struct summary *s, int t,
			 const char *key, const char *text)
{
	struct summary both = s[t];
	double d;

	if (!s[t].have_lat || !s[BENCH_T_FLOOR].have_lat ||
	    !per_round(r, LAT(t, p50), LAT(BENCH_T_FLOOR, p50), true, &d))
		return;
	both.conclusive = s[t].conclusive && s[BENCH_T_FLOOR].conclusive;
	target(r, &both, key, text, d, "ns", d <= TARGET_OVER_FLOOR_NS);
}

static void targets(const struct bench_report *r, const struct summary *s)
{
	const struct summary *w = &s[BENCH_T_WAVE];
	double x;

	if (!w->have_lat)
		return;
	if (!r->cfg->json)
		printf("\ntargets:\n");
	target(r, w, "libwave_p50_ns_le_150", "libwave one-way p50 <= 150 ns", w->lat.p50, "ns",
	       w->lat.p50 <= TARGET_P50_NS);
	/* fi_pingpong has only a whole-loop mean: compare like with like. */
	if (per_round(r, LAT(BENCH_T_FABRIC, loop_mean), LAT(BENCH_T_WAVE, loop_mean), false, &x))
		target(r, w, "fi_pingpong_loop/libwave_loop_ge_6",
		       "libwave >= 6x lower than fi_pingpong (loop means)", x, "x",
		       x >= TARGET_VS_FABRIC);
	else if (!r->cfg->json)
		printf("  %-50s %s\n", "libwave >= 6x lower than fi_pingpong",
		       "not measured (fi_pingpong not available)");
	if (w->have_tput)
		target(r, w, "libwave_b32_msgs_per_s_ge_30M", "libwave >= 30 M msgs/s at B=32",
		       w->tput[2] / 1e6, "M/s", w->tput[2] >= TARGET_B32_MSGS);
	floor_target(r, s, BENCH_T_WAVE, "libwave_p50-floor_p50_le_25",
		     "libwave p50 - floor p50 <= 25 ns");
	floor_target(r, s, BENCH_T_WAVE_NS, "libwave_unstamped_p50-floor_p50_le_25",
		     "libwave unstamped p50 - floor p50 <= 25 ns");
}

void bench_report_print(const struct bench_report *r)
{
	struct summary s[BENCH_N_TRANSPORTS];

	for (int t = 0; t < BENCH_N_TRANSPORTS; t++)
		s[t] = summarize(r, t);
	if (r->cfg->json) {
		printf("{\"metric\":\"setup\",\"msg_bytes\":64,\"host_cpu\":%d,\"agent_cpu\":%d,"
		       "\"single_core\":%s,\"timer\":\"%s\",\"tsc_mhz\":%.1f}\n",
		       r->cfg->host_cpu, r->cfg->agent_cpu, r->cfg->single_core ? "true" : "false",
		       bench_clock_kind() == BENCH_CLOCK_TSC ? "tsc" : "clock_monotonic",
		       bench_clock_mhz());
		for (int t = 0; t < BENCH_N_TRANSPORTS; t++)
			if (r->ran[t])
				json_transport(r, t, &s[t]);
	} else {
		table_header(r);
		for (int t = 0; t < BENCH_N_TRANSPORTS; t++)
			if (r->ran[t])
				table_row(r, t, &s[t]);
		disturbance(r, s);
		if (r->ran[BENCH_T_FABRIC] && s[BENCH_T_FABRIC].have_lat)
			printf("fi_pingpong prints only an average, usec/xfer = elapsed / (2 x "
			       "iterations):\n  already one way (round trip / 2), and a loop mean\n");
	}
	ratios(r, s);
	targets(r, s);
	fflush(stdout);
}
