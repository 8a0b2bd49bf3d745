/* SPDX-License-Identifier: MIT */
/*
 * wave-bench-agent: (a) a bare shm:// channel round trip, (b) a decision
 * round trip through a host session, the agent runtime and a plugin that
 * answers at once, their difference (what the agent loop and the session
 * layer add), and (c) decisions per second with the agent on one core.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_agent.h"

/* The project's targets (see --help). */
#define TARGET_ADDED_NS 100.0
#define TARGET_EVENTS_B32 10e6

#ifndef BENCH_PLUGIN_DIR
#error "BENCH_PLUGIN_DIR: the directory of wave_bench_echo.so (set by the build)"
#endif

static void usage(FILE *f)
{
	fprintf(f,
		"usage: wave-bench-agent [options]\n"
		"\n"
		"Host process on one CPU, agent process on another, side by side:\n"
		"  (a) bare channel: a 64-byte message over shm:// and back from an echo\n"
		"      process (wave-bench-chan's ping-pong), round trip;\n"
		"  (b) decision: wave_host_event() of a custom-domain event, the agent\n"
		"      runtime (wave_agent_run()) hands it to the bench_echo plugin, which\n"
		"      answers at once; wave_host_poll() applies the decision; round trip;\n"
		"      (b)-(a) is what the agent loop and the session layer add;\n"
		"  (c) decisions per second, the host streaming events in batches of\n"
		"      1, 8, 32 (one wave_host_events() burst of B, then one wave_host_poll());\n"
		"      the agent runs on one core;\n"
		"  (d) the same agent with a host that is a bare channel end (session\n"
		"      messages built by hand, no wave_host_* code): decision round trip;\n"
		"      (d)-(a) is what the agent loop alone adds;\n"
		"  (e) decisions per second with that host, batches of 1, 8, 32: what one\n"
		"      agent core decides when the host costs almost nothing.\n"
		"  with --record, (c) and (e) again in each round with the agent recording\n"
		"      decision traces (docs/trace.md) into /dev/shm, and the ratio: what\n"
		"      recording costs the agent.\n"
		"  with --record-sets N, only (e), in one agent process, in 2N sets with\n"
		"      recording off and on in turn (off on on off off on ...), turned at\n"
		"      run time; the medians of each and of the sets' on/off ratios; and\n"
		"      what a record costs apart from that: (a) the agent thread's put and\n"
		"      (b) the writer thread's CPU, measured alone before the sets, (b) also\n"
		"      in the sets; on two CPUs the writers share the host's busy CPU, and\n"
		"      what a CPU of their own would give is computed (and said to be);\n"
		"      and, measured in the sets, the agent loop thread's own CPU per event\n"
		"      off and on and the writers' per event, against the 5%% budget.\n"
		"Every event must get exactly one decision, in order, from the agent.\n"
		"\n"
		"  --iters N     timed round trips per latency run (default 200000)\n"
		"  --reps N      rounds, each runs (a) and (b)+(c) once in fresh processes\n"
		"                (default 5, max %d); medians over rounds are reported\n"
		"  --tput-ms N   length of one throughput run in ms (default 300)\n"
		"  --clock KIND  tsc (default, when the TSC is invariant) or mono\n"
		"  --plugin-dir DIR  where wave_bench_echo.so is (default: the build's)\n"
		"  --record      also measure (c) and (e) with recording on, same rounds\n"
		"  --record-sets N  (e) with recording off and on in one run, N sets each\n"
		"                (max %d); nothing else\n"
		"  --writer-on-agent  with --record-sets: the trace writers on the agent's\n"
		"                CPU (default: the host's); the host keeps its CPU\n"
		"  --max-offcpu P  leave out every round in which a run lost more than P%%\n"
		"                of its time to other tasks or the hypervisor (default 5;\n"
		"                all are kept, and marked not conclusive, if every one did)\n"
		"  --json        one JSON object per line per measurement\n"
		"  --quick       small counts: a smoke test, not a measurement\n"
		"  --help        this text\n"
		"\n"
		"Targets shown: agent loop adds <= 100 ns, (d)-(a) p50 (and (b)-(a), which\n"
		"adds the host session); >= 10 million events/s per agent core at B=32,\n"
		"(e) (and (c), which the host side may limit).\n"
		"Exit status: 0; 1 when a run failed or a decision was lost, duplicated\n"
		"or wrong; 2 for bad usage. Timing never changes the exit status.\n",
		BENCH_MAX_REPS, BENCH_MAX_REPS);
}

enum { OPT_ITERS = 256, OPT_REPS, OPT_TPUT, OPT_CLOCK, OPT_PLUGIN_DIR, OPT_JSON, OPT_QUICK,
       OPT_RECORD, OPT_RECORD_SETS, OPT_WRITER_ON_AGENT, OPT_MAX_OFFCPU, OPT_HELP };

static const struct option long_opts[] = {
	{ "iters", required_argument, NULL, OPT_ITERS },
	{ "reps", required_argument, NULL, OPT_REPS },
	{ "tput-ms", required_argument, NULL, OPT_TPUT },
	{ "clock", required_argument, NULL, OPT_CLOCK },
	{ "plugin-dir", required_argument, NULL, OPT_PLUGIN_DIR },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "quick", no_argument, NULL, OPT_QUICK },
	{ "record", no_argument, NULL, OPT_RECORD },
	{ "record-sets", required_argument, NULL, OPT_RECORD_SETS },
	{ "writer-on-agent", no_argument, NULL, OPT_WRITER_ON_AGENT },
	{ "max-offcpu", required_argument, NULL, OPT_MAX_OFFCPU },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

struct opts {
	struct bench_cfg cfg;
	enum bench_clock_kind clk;
	const char *plugin_dir;
	bool record;
	unsigned record_sets; /* 0: not that mode */
};

static int parse_one(int o, struct opts *p, bool *quick)
{
	switch (o) {
	case OPT_ITERS: return bench_parse_uint(optarg, 1, 100000000, &p->cfg.iters);
	case OPT_REPS: return bench_parse_uint(optarg, 1, BENCH_MAX_REPS, &p->cfg.reps);
	case OPT_TPUT: return bench_parse_uint(optarg, 1, 60000, &p->cfg.tput_ms);
	case OPT_CLOCK:
		if (strcmp(optarg, "tsc") != 0 && strcmp(optarg, "mono") != 0)
			return -EINVAL;
		p->clk = optarg[0] == 't' ? BENCH_CLOCK_TSC : BENCH_CLOCK_MONO;
		return 0;
	case OPT_PLUGIN_DIR: p->plugin_dir = optarg; return 0;
	case OPT_JSON: p->cfg.json = true; return 0;
	case OPT_QUICK: *quick = true; return 0;
	case OPT_RECORD: p->record = true; return 0;
	case OPT_RECORD_SETS: return bench_parse_uint(optarg, 1, BENCH_MAX_REPS, &p->record_sets);
	case OPT_WRITER_ON_AGENT: p->cfg.writer_on_agent = true; return 0;
	case OPT_MAX_OFFCPU: return bench_offcpu_parse(optarg, &p->cfg.max_offcpu);
	case OPT_HELP: return 1;
	default: return -EINVAL;
	}
}

/* Fills @p from the command line. Returns 0, 1 for --help, or -EINVAL. */
static int parse_args(int argc, char **argv, struct opts *p)
{
	bool quick = false, set[3] = { false, false, false };
	int o, ret = 0;

	memset(p, 0, sizeof(*p));
	p->cfg = (struct bench_cfg){ .iters = 200000, .reps = 5, .tput_ms = 300, .run_wave = true,
				     .max_offcpu = BENCH_OFFCPU_MAX_DEFAULT };
	p->clk = BENCH_CLOCK_TSC;
	p->plugin_dir = BENCH_PLUGIN_DIR;
	while (ret == 0 && (o = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
		if (o >= OPT_ITERS && o <= OPT_TPUT)
			set[o - OPT_ITERS] = true;
		ret = parse_one(o, p, &quick);
	}
	if (ret == 0 && optind < argc)
		ret = -EINVAL;
	if (quick) {
		p->cfg.iters = set[0] ? p->cfg.iters : 2000;
		p->cfg.reps = set[1] ? p->cfg.reps : 2;
		p->cfg.tput_ms = set[2] ? p->cfg.tput_ms : 20;
	}
	p->cfg.warmup = p->cfg.iters / 10 > 100 ? p->cfg.iters / 10 : 100;
	return ret;
}

/* ---- the report --------------------------------------------------------------- */

struct results {
	const struct bench_cfg *cfg;
	struct bench_result *chan;       /* (a), one way */
	struct bench_agent_result *agent; /* (b) and (c), one way */
	struct bench_agent_result *rec;   /* the same, recording; NULL without --record */
	bool conclusive; /* some round was not disturbed (drop_disturbed()) */
};

/* A target's verdict: not judged on a disturbed machine's figures. */
static const char *verdict(const struct results *r, bool met)
{
	return !r->conclusive ? "not conclusive" : met ? "met" : "MISSED";
}

/* Round trip of one run's latency figures: twice the one-way ones. */
static struct bench_lat rtt(struct bench_lat l)
{
	return (struct bench_lat){ 2 * l.p50, 2 * l.p99, 2 * l.p999, 2 * l.mean,
				   2 * l.loop_mean };
}

/* Median over rounds of each round's (b)-(a) (or (d)-(a) with @raw),
 * round trip. */
static struct bench_lat added(const struct results *r, bool raw)
{
	struct bench_lat d[BENCH_MAX_REPS];
	const struct bench_lat *lat = raw ? r->agent->raw_lat : r->agent->lat;
	unsigned nb = raw ? r->agent->n_raw_lat : r->agent->n_lat;
	unsigned n = r->chan->n_lat < nb ? r->chan->n_lat : nb;

	for (unsigned i = 0; i < n; i++) {
		struct bench_lat a = rtt(r->chan->lat[i]), b = rtt(lat[i]);
		d[i] = (struct bench_lat){ b.p50 - a.p50, b.p99 - a.p99, b.p999 - a.p999,
					   b.mean - a.mean, b.loop_mean - a.loop_mean };
	}
	return bench_lat_median(d, n);
}

static double rate_median(const double *runs, unsigned n)
{
	double v[BENCH_MAX_REPS];

	if (n == 0)
		return 0;
	memcpy(v, runs, n * sizeof(v[0]));
	return bench_median(v, n);
}

static void json_lat(const char *key, const struct bench_lat *l, unsigned runs, unsigned iters)
{
	printf("{\"measurement\":\"%s\",\"metric\":\"round_trip\",\"p50_ns\":%.1f,"
	       "\"p99_ns\":%.1f,\"p999_ns\":%.1f,\"mean_ns\":%.1f,\"loop_mean_ns\":%.1f,"
	       "\"runs\":%u,\"round_trips_per_run\":%u}\n",
	       key, l->p50, l->p99, l->p999, l->mean, l->loop_mean, runs, iters);
}

static void json_rates(const char *key, const char *unit, const double (*tput)[BENCH_MAX_REPS],
		       unsigned runs, unsigned ms)
{
	for (int b = 0; b < BENCH_N_BATCHES; b++)
		printf("{\"measurement\":\"%s\",\"metric\":\"throughput\",\"batch\":%u,"
		       "\"%s\":%.0f,\"runs\":%u,\"run_ms\":%u}\n",
		       key, bench_batches[b], unit, rate_median(tput[b], runs), runs, ms);
}

/* The figures of one report. */
struct figures {
	struct bench_lat a, b, d, raw, raw_d;
	double b32, raw_b32;
};

static void print_json(const struct results *r, const struct figures *f)
{
	const struct bench_cfg *c = r->cfg;
	const struct bench_lat *a = &f->a, *b = &f->b, *d = &f->d;
	double b32 = f->b32;

	printf("{\"metric\":\"setup\",\"msg_bytes\":64,\"host_cpu\":%d,\"agent_cpu\":%d,"
	       "\"single_core\":%s,\"timer\":\"%s\",\"tsc_mhz\":%.1f,\"note\":",
	       c->host_cpu, c->agent_cpu, c->single_core ? "true" : "false",
	       bench_clock_kind() == BENCH_CLOCK_TSC ? "tsc" : "clock_monotonic", bench_clock_mhz());
	bench_json_string(r->agent->note);
	printf("}\n");
	json_lat("channel_shm", a, r->chan->n_lat, c->iters);
	json_lat("agent_decision", b, r->agent->n_lat, c->iters);
	json_lat("agent_added", d, r->agent->n_lat, c->iters);
	json_lat("agent_decision_raw_host", &f->raw, r->agent->n_raw_lat, c->iters);
	json_lat("agent_loop_added", &f->raw_d, r->agent->n_raw_lat, c->iters);
	json_rates("channel_shm_stream", "msgs_per_s", r->chan->tput, r->chan->n_tput, c->tput_ms);
	json_rates("agent_decisions", "events_per_s", r->agent->tput, r->agent->n_tput, c->tput_ms);
	json_rates("agent_decisions_raw_host", "events_per_s", r->agent->raw_tput,
		   r->agent->n_raw_tput, c->tput_ms);
	if (r->rec) {
		json_rates("agent_decisions_recording", "events_per_s", r->rec->tput,
			   r->rec->n_tput, c->tput_ms);
		json_rates("agent_decisions_raw_host_recording", "events_per_s", r->rec->raw_tput,
			   r->rec->n_raw_tput, c->tput_ms);
	}
	printf("{\"metric\":\"check\",\"events\":%llu,\"decisions\":%llu,\"exactly_one\":%s}\n",
	       (unsigned long long)r->agent->events, (unsigned long long)r->agent->decisions,
	       r->agent->events == r->agent->decisions ? "true" : "false");
	printf("{\"metric\":\"target\",\"name\":\"agent_loop_added_p50_le_100ns\",\"value\":%.1f,"
	       "\"met\":%s}\n", f->raw_d.p50, f->raw_d.p50 <= TARGET_ADDED_NS ? "true" : "false");
	printf("{\"metric\":\"target\",\"name\":\"agent_b32_raw_host_events_per_s_ge_10M\","
	       "\"value\":%.0f,\"met\":%s}\n", f->raw_b32,
	       f->raw_b32 >= TARGET_EVENTS_B32 ? "true" : "false");
	printf("{\"metric\":\"target\",\"name\":\"agent_added_p50_le_100ns\",\"value\":%.1f,"
	       "\"met\":%s}\n", d->p50, d->p50 <= TARGET_ADDED_NS ? "true" : "false");
	printf("{\"metric\":\"target\",\"name\":\"agent_b32_events_per_s_ge_10M\",\"value\":%.0f,"
	       "\"met\":%s}\n", b32, b32 >= TARGET_EVENTS_B32 ? "true" : "false");
}

static void row_lat(const char *label, const struct bench_lat *l)
{
	printf("%-40s %9.0f %9.0f %9.0f %9.0f %9.0f\n", label, l->p50, l->p99, l->p999, l->mean,
	       l->loop_mean);
}

static void row_rates(const char *label, const double (*tput)[BENCH_MAX_REPS], unsigned runs)
{
	printf("%-40s", label);
	for (int b = 0; b < BENCH_N_BATCHES; b++)
		printf(" %10.2f M", rate_median(tput[b], runs) / 1e6);
	printf("\n");
}

/* Recording on against off, the medians of each round's ratio. */
static double rec_ratio(const double *on, const double *off, unsigned n)
{
	double v[BENCH_MAX_REPS];

	for (unsigned i = 0; i < n; i++)
		v[i] = off[i] > 0 ? on[i] / off[i] : 0;
	return n ? bench_median(v, n) : 0;
}

static void print_recording(const struct results *r)
{
	unsigned n = r->rec->n_tput < r->agent->n_tput ? r->rec->n_tput : r->agent->n_tput;
	unsigned nr = r->rec->n_raw_tput < r->agent->n_raw_tput ? r->rec->n_raw_tput
								  : r->agent->n_raw_tput;

	row_rates("(c) with recording on (events)", r->rec->tput, r->rec->n_tput);
	row_rates("(e) with recording on (events)", r->rec->raw_tput, r->rec->n_raw_tput);
	printf("%-40s", "(c) on/off, median of rounds' ratios");
	for (int b = 0; b < BENCH_N_BATCHES; b++)
		printf(" %11.1f%%", 100 * rec_ratio(r->rec->tput[b], r->agent->tput[b], n));
	printf("\n%-40s", "(e) on/off, median of rounds' ratios");
	for (int b = 0; b < BENCH_N_BATCHES; b++)
		printf(" %11.1f%%",
		       100 * rec_ratio(r->rec->raw_tput[b], r->agent->raw_tput[b], nr));
	printf("\n");
}

static void print_table(const struct results *r, const struct figures *f)
{
	const struct bench_cfg *c = r->cfg;
	const struct bench_lat *a = &f->a, *b = &f->b, *d = &f->d;
	double b32 = f->b32;

	printf("wave-bench-agent: host on CPU %d, agent on CPU %d%s; timer %s\n", c->host_cpu,
	       c->agent_cpu, c->single_core ? " (ONE CPU: numbers not meaningful)" : "",
	       bench_clock_kind() == BENCH_CLOCK_TSC ? "rdtscp" : "CLOCK_MONOTONIC");
	printf("%u rounds, each (a) then (b)+(c), (d)+(e) in fresh processes; %u timed round "
	       "trips per run;\nmedians over rounds; (b)-(a) and (d)-(a) are medians of each "
	       "round's difference\n\n", c->reps, c->iters);
	printf("%-40s %9s %9s %9s %9s %9s\n", "round trip, ns", "p50", "p99", "p99.9", "mean",
	       "loop");
	row_lat("(a) channel shm:// ping-pong", a);
	row_lat("(b) decision via agent + session", b);
	row_lat("(b)-(a) added by agent loop + session", d);
	row_lat("(d) decision via agent, bare host", &f->raw);
	row_lat("(d)-(a) added by the agent loop", &f->raw_d);
	printf("\n%-40s %12s %12s %12s\n", "per second", "B=1", "B=8", "B=32");
	row_rates("(a) channel stream, no answer (msgs)", r->chan->tput, r->chan->n_tput);
	row_rates("(c) decisions, agent on 1 core (events)", r->agent->tput, r->agent->n_tput);
	row_rates("(e) decisions, bare host (events)", r->agent->raw_tput, r->agent->n_raw_tput);
	if (r->rec)
		print_recording(r);
	printf("\nevents %llu, decisions %llu: %s\n", (unsigned long long)r->agent->events,
	       (unsigned long long)r->agent->decisions,
	       r->agent->events == r->agent->decisions ? "exactly one each" : "MISMATCH");
	printf("targets:\n  %-44s %8.1f ns   %s\n", "agent loop: (d)-(a) p50 <= 100 ns",
	       f->raw_d.p50, verdict(r, f->raw_d.p50 <= TARGET_ADDED_NS));
	printf("  %-44s %8.1f ns   %s\n", "with the session: (b)-(a) p50 <= 100 ns", d->p50,
	       verdict(r, d->p50 <= TARGET_ADDED_NS));
	printf("  %-44s %8.2f M/s  %s\n", "agent core: (e) >= 10 M events/s at B=32",
	       f->raw_b32 / 1e6, verdict(r, f->raw_b32 >= TARGET_EVENTS_B32));
	printf("  %-44s %8.2f M/s  %s\n", "with the session: (c) >= 10 M/s at B=32", b32 / 1e6,
	       verdict(r, b32 >= TARGET_EVENTS_B32));
}

static void report(const struct results *r)
{
	struct figures f = {
		.a = rtt(bench_lat_median(r->chan->lat, r->chan->n_lat)),
		.b = rtt(bench_lat_median(r->agent->lat, r->agent->n_lat)),
		.d = added(r, false),
		.raw = rtt(bench_lat_median(r->agent->raw_lat, r->agent->n_raw_lat)),
		.raw_d = added(r, true),
		.b32 = rate_median(r->agent->tput[2], r->agent->n_tput),
		.raw_b32 = rate_median(r->agent->raw_tput[2], r->agent->n_raw_tput),
	};

	if (r->cfg->json)
		print_json(r, &f);
	else
		print_table(r, &f);
	fflush(stdout);
}

/* --record-sets: (e) with recording off and on, the medians of each and
 * of the on/off ratios of the sets taken in pairs (off on, on off, ...). */
/* The pairs of sets (off, on) whose two sets each lost at most the
 * threshold off their CPUs, into @out; false when none did (all kept). */
static bool sets_kept(const struct bench_cfg *c, const struct bench_agent_result *s,
		      double out[2][BENCH_N_BATCHES][BENCH_MAX_REPS],
		      double loop_ns[2][BENCH_MAX_REPS], double burst[2][BENCH_MAX_REPS], unsigned *n,
		      unsigned *dropped)
{
	double share[BENCH_MAX_REPS];
	bool keep[BENCH_MAX_REPS], ok;

	for (unsigned k = 0; k < s->n_sets; k++)
		share[k] = s->set_offcpu[0][k] > s->set_offcpu[1][k] ? s->set_offcpu[0][k]
								      : s->set_offcpu[1][k];
	ok = bench_offcpu_select(share, s->n_sets, c->max_offcpu, keep, dropped);
	*n = 0;
	for (unsigned k = 0; k < s->n_sets; k++) {
		if (!keep[k])
			continue;
		for (int on = 0; on < 2; on++) {
			for (int b = 0; b < BENCH_N_BATCHES; b++)
				out[on][b][*n] = s->set_tput[on][b][k];
			loop_ns[on][*n] = s->set_busy_msgs[on][k]
						  ? s->set_busy_ns[on][k] / (double)s->set_busy_msgs[on][k]
						  : 0;
			burst[on][*n] = s->set_bursts[on][k] ? (double)s->set_busy_msgs[on][k] /
								       (double)s->set_bursts[on][k]
							     : 0;
		}
		(*n)++;
	}
	return ok;
}

/* What recording costs each thread, apart from the CPU they share: the
 * calibration's figures, the sets' writer time, and what the agent would
 * decide with a CPU of the writers' own (computed, and said to be). */
static void report_costs(const struct bench_cfg *c, const struct bench_agent_result *s,
			 double off_rate)
{
	const struct bench_trace_cost *k = &s->cal;
	double on_ms = (double)s->n_sets * BENCH_N_BATCHES * c->tput_ms;
	double wrec = s->records ? s->writer_ns / (double)s->records : 0;
	double ev_ns = off_rate > 0 ? 1e9 / off_rate : 0;

	printf("\nwhat a record costs (calibration: %.0f ns of work per event on CPU %d, an event "
	       "and its decision put, writer on CPU %d, idle):\n", k->work_ns, c->agent_cpu,
	       c->host_cpu);
	printf("  (a) the agent's thread, per record (the put into the ring): %6.1f ns\n",
	       k->put_ns);
	printf("  (b) the writer thread, CPU per record:                      %6.1f ns "
	       "(%.1f bytes of trace a record, %llu lost)\n", k->writer_ns, k->bytes,
	       (unsigned long long)k->lost);
	/* A put that finds the ring full only counts the loss: cheaper. */
	if (k->lost)
		printf("  the writer fell behind (its CPU was busy?): (a) is low by up to the "
		       "lost share, %.0f%%\n", 100.0 * (double)k->lost / (double)k->puts);
	if (s->records && on_ms > 0)
		printf("  (b) in the recording sets above:                            %6.1f ns "
		       "(%llu records)\n", wrec, (unsigned long long)s->records);
	if (c->single_core || c->host_cpu == c->agent_cpu)
		printf("the writer shared the one CPU with the agent and the host\n");
	else if (s->records && on_ms > 0)
		printf("the writer threads SHARED CPU %d with the host, which busy-polls it: they "
		       "took %.1f%% of its time in the recording sets,\nso on/off above is CPU "
		       "contention as much as recording's cost\n", c->host_cpu,
		       100 * s->writer_ns / (on_ms * 1e6));
	if (ev_ns > 0 && k->put_ns > 0)
		printf("COMPUTED, not measured: with a CPU of the writer's own, an event pays 2 x (a) "
		       "= %.1f ns more:\n  (e) at B=32 as off here (%.1f ns an event): on/off = "
		       "%.1f%%; 5%% holds while the agent decides at most %.2f M events/s\n",
		       2 * k->put_ns, ev_ns, 100 * ev_ns / (ev_ns + 2 * k->put_ns),
		       1e3 / (0.95 / 0.05 * 2 * k->put_ns));
}

/*
 * What recording costs per event, measured in the sets themselves: the
 * agent loop's busy time per message (each burst's arrival to its
 * decisions' departure, on the loop's clock: its work, its polls left
 * out), off and on (the median of the pairs' on/off), and the writers'
 * CPU time per event recorded. On two CPUs the rate cannot show it (the
 * writers have no CPU of their own and take the host's, or the agent's);
 * this can. What it cannot remove: time the loop lost to other tasks in
 * the middle of a burst (the off-CPU watch marks such sets), and, with
 * the writers on the agent's CPU, what they do to its caches.
 */
struct cpu_cost {
	double off_ns, on_ns; /* the agent's thread, medians of the kept sets */
	double ratio;         /* median of the pairs' on/off */
	double writer_ns;     /* the writers, per event recorded */
	double total;         /* (on - off + writer) / off, from the medians */
	double burst_off, burst_on; /* messages a burst the loop received, medians */
	uint64_t dropped;           /* bursts left out (the loop lost its CPU in them) */
};

static struct cpu_cost cpu_cost(const struct bench_agent_result *s,
				double loop_ns[2][BENCH_MAX_REPS], double burst[2][BENCH_MAX_REPS],
				unsigned n)
{
	struct cpu_cost k = { 0 };

	k.dropped = s->busy_dropped;
	k.burst_off = rate_median(burst[0], n);
	k.burst_on = rate_median(burst[1], n);
	k.off_ns = rate_median(loop_ns[0], n);
	k.on_ns = rate_median(loop_ns[1], n);
	k.ratio = rec_ratio(loop_ns[1], loop_ns[0], n);
	k.writer_ns = s->records ? 2 * s->writer_ns / (double)s->records : 0;
	if (k.off_ns > 0)
		k.total = (k.on_ns - k.off_ns + k.writer_ns) / k.off_ns;
	return k;
}

static void print_cpu_cost(const struct bench_cfg *c, const struct cpu_cost *k, bool conclusive)
{
	if (c->json) {
		printf("{\"measurement\":\"trace_record_cost_per_event\",\"agent_busy_off_ns\":%.2f,"
		       "\"agent_busy_on_ns\":%.2f,\"agent_on_off_ratio\":%.4f,\"writer_ns\":%.2f,"
		       "\"agent_plus_writer_share\":%.4f,\"burst_off\":%.2f,\"burst_on\":%.2f,"
		       "\"bursts_left_out\":%llu,\"writer_cpu\":%d,\"conclusive\":%s}\n",
		       k->off_ns, k->on_ns, k->ratio, k->writer_ns, k->total, k->burst_off, k->burst_on,
		       (unsigned long long)k->dropped,
		       c->writer_on_agent ? c->agent_cpu : c->host_cpu, conclusive ? "true" : "false");
		return;
	}
	printf("\nper event, MEASURED in the sets above (the agent loop's busy time, its polls "
	       "left out; the writers' CPU clock):\n");
	printf("  the agent loop, recording off:          %7.1f ns (%.1f events a burst)\n",
	       k->off_ns, k->burst_off);
	printf("  the agent loop, recording on:           %7.1f ns (%.1f events a burst; on/off "
	       "%.1f%%, the median of the pairs')\n", k->on_ns, k->burst_on, 100 * k->ratio);
	printf("  the writer threads (CPU %d), on:         %7.1f ns an event (%.1f%% of the agent's "
	       "off)\n", c->writer_on_agent ? c->agent_cpu : c->host_cpu, k->writer_ns,
	       k->off_ns > 0 ? 100 * k->writer_ns / k->off_ns : 0);
	printf("  recording, agent + writers:             %+7.1f%% of the agent's off\n",
	       100 * k->total);
	printf("target 5%%, on the agent's thread (the writers on a CPU of their own): %s; "
	       "with the writers' CPU counted too: %s\n",
	       !conclusive ? "not conclusive" : k->ratio <= 1.05 ? "met" : "MISSED",
	       !conclusive ? "not conclusive" : k->total <= 0.05 ? "met" : "MISSED");
	printf("(%llu bursts over 50 us left out: the loop lost its CPU in them; shorter losses "
	       "stay in,\n and with the writers on the agent's CPU what they do to its caches; "
	       "smaller bursts cost more an event)\n", (unsigned long long)k->dropped);
}

static void report_sets(const struct bench_cfg *c, const struct bench_agent_result *s)
{
	double med[2][BENCH_N_BATCHES], ratio[BENCH_N_BATCHES], t[2][BENCH_N_BATCHES][BENCH_MAX_REPS];
	double loop_ns[2][BENCH_MAX_REPS], burst[2][BENCH_MAX_REPS];
	unsigned n, dropped;
	bool conclusive = sets_kept(c, s, t, loop_ns, burst, &n, &dropped);
	struct cpu_cost cost = cpu_cost(s, loop_ns, burst, n);

	for (int b = 0; b < BENCH_N_BATCHES; b++) {
		for (int on = 0; on < 2; on++)
			med[on][b] = rate_median(t[on][b], n);
		ratio[b] = rec_ratio(t[1][b], t[0][b], n);
	}
	if (c->json) {
		for (int b = 0; b < BENCH_N_BATCHES; b++)
			printf("{\"measurement\":\"agent_decisions_raw_host_recording_sets\","
			       "\"batch\":%u,\"off_events_per_s\":%.0f,\"on_events_per_s\":%.0f,"
			       "\"on_off_ratio\":%.4f,\"sets_each\":%u,\"pairs_used\":%u,"
			       "\"conclusive\":%s,\"run_ms\":%u}\n",
			       bench_batches[b], med[0][b], med[1][b], ratio[b], s->n_sets, n,
			       conclusive ? "true" : "false", c->tput_ms);
		printf("{\"measurement\":\"trace_record_cost\",\"put_ns\":%.2f,"
		       "\"writer_cpu_ns\":%.2f,\"bytes_per_record\":%.2f,\"calibration_lost\":%llu,"
		       "\"sets_writer_cpu_ns\":%.2f}\n", s->cal.put_ns, s->cal.writer_ns,
		       s->cal.bytes, (unsigned long long)s->cal.lost,
		       s->records ? s->writer_ns / (double)s->records : 0.0);
		print_cpu_cost(c, &cost, conclusive);
		return;
	}
	printf("wave-bench-agent --record-sets: (e) bare host on CPU %d, agent on CPU %d, trace "
	       "writers on CPU %d;\n%u sets each of recording off and on, in one agent process, "
	       "%u ms per batch size;\nmedians; the ratio is the median of the sets' on/off "
	       "ratios, taken in pairs\n\n", c->host_cpu, c->agent_cpu, c->host_cpu, s->n_sets,
	       c->tput_ms);
	if (conclusive)
		printf("%u of %u pairs used: %u had a set that lost more than %.0f%% of its time "
		       "off its CPUs\n\n", n, s->n_sets, dropped, 100 * c->max_offcpu);
	else
		printf("every pair had a set that lost more than %.0f%% of its time off its CPUs: "
		       "figures NOT CONCLUSIVE\n\n", 100 * c->max_offcpu);
	printf("%-40s %12s %12s %12s\n", "events per second", "B=1", "B=8", "B=32");
	for (int on = 0; on < 2; on++) {
		printf("%-40s", on ? "(e) recording on" : "(e) recording off");
		for (int b = 0; b < BENCH_N_BATCHES; b++)
			printf(" %10.2f M", med[on][b] / 1e6);
		printf("\n");
	}
	printf("%-40s", "on/off");
	for (int b = 0; b < BENCH_N_BATCHES; b++)
		printf(" %11.1f%%", 100 * ratio[b]);
	printf("\n\nevents %llu, decisions %llu: %s\ntarget: recording costs at most 5%% "
	       "(on/off >= 95%%) at B=32, same run: %s\n",
	       (unsigned long long)s->events, (unsigned long long)s->decisions,
	       s->events == s->decisions ? "exactly one each" : "MISMATCH",
	       !conclusive ? "not conclusive" : ratio[2] >= 0.95 ? "met" : "MISSED");
	print_cpu_cost(c, &cost, conclusive);
	report_costs(c, s, med[0][2]);
}

/* ---- main ---------------------------------------------------------------------- */

static int setup_cpus(struct bench_cfg *c)
{
	int n = 0, ret = bench_pick_cpus(&c->host_cpu, &c->agent_cpu, &n);

	if (ret < 0)
		return ret;
	c->single_core = n < 2;
	if (c->single_core)
		fprintf(stderr, "wave-bench-agent: only one CPU (%d): both sides share it; "
			"numbers are not meaningful\n", c->host_cpu);
	return 0;
}

static int fail_round(const char *what, unsigned round, int err)
{
	fprintf(stderr, "wave-bench-agent: %s, round %u: %s\n", what, round + 1,
		wave_strerror(err));
	return err;
}

/* The off-CPU share of round @i: the most any of its runs lost. */
static double round_share(const struct results *r, unsigned i)
{
	double s = i < r->chan->n_off ? r->chan->offcpu[i] : 0;

	if (i < r->agent->n_off && r->agent->offcpu[i] > s)
		s = r->agent->offcpu[i];
	if (r->rec && i < r->rec->n_off && r->rec->offcpu[i] > s)
		s = r->rec->offcpu[i];
	return s;
}

static void keep_chan_round(struct bench_result *c, unsigned from, unsigned to)
{
	c->lat[to] = c->lat[from];
	for (int b = 0; b < BENCH_N_BATCHES; b++)
		c->tput[b][to] = c->tput[b][from];
}

static void keep_agent_round(struct bench_agent_result *a, unsigned from, unsigned to)
{
	a->lat[to] = a->lat[from];
	a->raw_lat[to] = a->raw_lat[from];
	for (int b = 0; b < BENCH_N_BATCHES; b++) {
		a->tput[b][to] = a->tput[b][from];
		a->raw_tput[b][to] = a->raw_tput[b][from];
	}
}

/* Leaves out every round that lost more than the threshold (when at least
 * one did not), so that the medians and each round's differences come
 * from the undisturbed ones; says how many, or that none was. */
static void drop_disturbed(const struct opts *p, struct results *r)
{
	double share[BENCH_MAX_REPS], worst = 0;
	bool keep[BENCH_MAX_REPS];
	unsigned n = p->cfg.reps, k = 0, dropped;

	for (unsigned i = 0; i < n; i++) {
		share[i] = round_share(r, i);
		worst = share[i] > worst ? share[i] : worst;
	}
	bool conclusive = bench_offcpu_select(share, n, p->cfg.max_offcpu, keep, &dropped);

	r->conclusive = conclusive;
	for (unsigned i = 0; i < n; i++) {
		if (!keep[i])
			continue;
		keep_chan_round(r->chan, i, k);
		keep_agent_round(r->agent, i, k);
		if (r->rec)
			keep_agent_round(r->rec, i, k);
		k++;
	}
	r->chan->n_lat = r->chan->n_tput = k;
	r->agent->n_lat = r->agent->n_tput = r->agent->n_raw_lat = r->agent->n_raw_tput = k;
	if (r->rec)
		r->rec->n_lat = r->rec->n_tput = r->rec->n_raw_lat = r->rec->n_raw_tput = k;
	if (p->cfg.json)
		printf("{\"metric\":\"disturbance\",\"rounds\":%u,\"rounds_kept\":%u,"
		       "\"max_offcpu\":%.3f,\"threshold\":%.3f,\"conclusive\":%s}\n",
		       n, k, worst, p->cfg.max_offcpu, conclusive ? "true" : "false");
	else if (conclusive)
		printf("off-CPU: %u of %u rounds lost more than %.0f%% of their time to other tasks "
		       "or the hypervisor and are left out (largest loss %.1f%%)\n\n", dropped, n,
		       100 * p->cfg.max_offcpu, 100 * worst);
	else
		printf("off-CPU: every round lost more than %.0f%% of its time (largest loss %.1f%%): "
		       "the machine was disturbed, figures NOT CONCLUSIVE\n\n",
		       100 * p->cfg.max_offcpu, 100 * worst);
}

/* Interleaved rounds, as wave-bench-chan does: a busy spell of the shared
 * machine hits both measurements, not whichever ran during it. */
static int run_rounds(const struct opts *p, struct results *r)
{
	int ret;

	for (unsigned i = 0; i < p->cfg.reps; i++) {
		ret = bench_wave_run(&p->cfg, r->chan);
		if (ret < 0)
			return fail_round("(a) channel", i, ret);
		ret = bench_agent_run(&p->cfg, p->plugin_dir, BENCH_REC_OFF, 0, r->agent);
		if (ret < 0)
			return fail_round("(b)/(c) agent", i, ret);
		ret = r->rec ? bench_agent_run(&p->cfg, p->plugin_dir, BENCH_REC_ON, 0, r->rec) : 0;
		if (ret < 0)
			return fail_round("(b)/(c) agent recording", i, ret);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct opts p;
	struct results r;
	size_t len = sizeof(*r.chan) + 2 * sizeof(*r.agent);
	void *mem;
	int ret = parse_args(argc, argv, &p);

	if (ret > 0) {
		usage(stdout);
		return 0;
	}
	if (ret < 0) {
		fprintf(stderr, "wave-bench-agent: bad arguments; see wave-bench-agent --help\n");
		return 2;
	}
	if ((ret = setup_cpus(&p.cfg)) < 0 ||
	    (ret = bench_clock_init(p.clk, p.cfg.iters > 10000 ? 200 : 20)) < 0) {
		fprintf(stderr, "wave-bench-agent: setup failed: %s\n", strerror(-ret));
		return 1;
	}
	/* Filled by the child processes. */
	mem = bench_shared_alloc(len);
	if (!mem) {
		fprintf(stderr, "wave-bench-agent: out of memory\n");
		return 1;
	}
	r = (struct results){ .cfg = &p.cfg, .chan = mem,
			      .agent = (struct bench_agent_result *)((char *)mem + sizeof(*r.chan)) };
	if (p.record)
		r.rec = r.agent + 1;
	if (p.record_sets) {
		ret = bench_trace_calibrate(&p.cfg, &r.agent->cal);
		if (ret < 0)
			fprintf(stderr, "wave-bench-agent: calibration: %s\n", strerror(-ret));
		else
			ret = bench_agent_run(&p.cfg, p.plugin_dir, BENCH_REC_SETS, p.record_sets,
					      r.agent);
		if (ret < 0)
			fail_round("(e) recording in sets", 0, ret);
		else
			report_sets(&p.cfg, r.agent);
	} else if ((ret = run_rounds(&p, &r)) == 0) {
		drop_disturbed(&p, &r);
		report(&r);
	}
	bench_shared_free(mem, len);
	return ret == 0 ? 0 : 1;
}
