/* SPDX-License-Identifier: MIT */
/*
 * wave-bench-chan: how fast a libwave shm:// channel moves 64-byte messages
 * between two processes on two CPUs, side by side with libfabric's shm
 * provider (its own fi_pingpong tool) and a Unix-domain socket.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "../examples/example_args.h"

#define PROG "wave-bench-chan"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: wave-bench-chan [options]\n"
		"\n"
		"One-way latency (ping-pong round trip / 2) and streaming throughput of\n"
		"64-byte messages between a host process and an agent process pinned to\n"
		"two CPUs, over: a libwave shm:// channel; libfabric's shm provider, via\n"
		"its fi_pingpong tool (package libfabric-bin; skipped when missing); a Unix\n"
		"SOCK_SEQPACKET socket pair; and, as the floor, a bare cache-line\n"
		"ping-pong. Every message is checked on arrival.\n"
		"\n"
		"  --iters N       timed round trips per latency run (default 200000)\n"
		"  --reps N        rounds; each runs every transport once (default 5,\n"
		"                  max %d); the median over rounds is reported\n"
		"  --tput-ms N     length of one throughput run in ms (default 300)\n"
		"  --only LIST     comma-separated subset of: wave,unstamped,fabric,uds,\n"
		"                  floor,path (default all; unstamped is wave with both\n"
		"                  ends opened WAVE_CHAN_F_NO_STAMP, floor a bare\n"
		"                  cache-line ping-pong, path both ends of a libwave\n"
		"                  channel in one thread: its own instructions per\n"
		"                  message, no transfer between CPUs)\n"
		"  --clock KIND    tsc (default, when the TSC is invariant) or mono\n"
		"  --max-offcpu P  leave out of the medians every run that lost more than\n"
		"                  P%% of its time to other tasks or the hypervisor\n"
		"                  (default 5; all runs are kept, and the figures marked\n"
		"                  not conclusive, when every run lost more)\n"
		"  --json          one JSON object per line per measurement\n"
		"  --quick         small counts: a smoke test, not a measurement\n"
		"  --help          this text\n"
		"\n"
		"Targets checked: libwave one-way p50 <= 150 ns and within 25 ns of the\n"
		"floor's (stamped and unstamped, median of the rounds' differences), at\n"
		"least 6x lower than fi_pingpong, and >= 30 million messages/s at batch 32.\n"
		"Exit status: 0, or 1 when a libwave or socket measurement failed (a\n"
		"missing fi_pingpong is reported, not an error), 2 for bad usage.\n",
		BENCH_MAX_REPS);
}

/* --only LIST: names of transports, at least one; a list that selects
 * nothing (",") would run nothing and report an empty table. */
static void parse_only(const char *list, struct bench_cfg *c)
{
	static const char what[] = "one or more of wave,unstamped,fabric,uds,floor,path, "
				   "comma-separated";
	char buf[64], *save = NULL;
	bool any = false;

	if (strlen(list) >= sizeof(buf))
		example_fail(PROG, "--only", what, list);
	strcpy(buf, list);
	c->run_wave = c->run_unstamped = c->run_fabric = c->run_uds = c->run_floor = c->run_path =
		false;
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		any = true;
		if (strcmp(t, "wave") == 0)
			c->run_wave = true;
		else if (strcmp(t, "fabric") == 0)
			c->run_fabric = true;
		else if (strcmp(t, "uds") == 0)
			c->run_uds = true;
		else if (strcmp(t, "unstamped") == 0)
			c->run_unstamped = true;
		else if (strcmp(t, "floor") == 0)
			c->run_floor = true;
		else if (strcmp(t, "path") == 0)
			c->run_path = true;
		else
			example_fail(PROG, "--only", what, list);
	}
	if (!any)
		example_fail(PROG, "--only", what, list);
}

enum {
	OPT_ITERS = 256,
	OPT_REPS,
	OPT_TPUT,
	OPT_ONLY,
	OPT_CLOCK,
	OPT_MAX_OFFCPU,
	OPT_JSON,
	OPT_QUICK,
	OPT_HELP
};

static const struct option long_opts[] = {
	{ "iters", required_argument, NULL, OPT_ITERS },
	{ "reps", required_argument, NULL, OPT_REPS },
	{ "tput-ms", required_argument, NULL, OPT_TPUT },
	{ "only", required_argument, NULL, OPT_ONLY },
	{ "clock", required_argument, NULL, OPT_CLOCK },
	{ "max-offcpu", required_argument, NULL, OPT_MAX_OFFCPU },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "quick", no_argument, NULL, OPT_QUICK },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

/* Fills @c from the command line. Returns 0, 1 for --help, or -EINVAL. */
static int parse_args(int argc, char **argv, struct bench_cfg *c, enum bench_clock_kind *clk)
{
	bool quick = false, iters_set = false, reps_set = false, tput_set = false;
	int o, ret = 0;

	*c = (struct bench_cfg){ .iters = 200000, .reps = 5, .tput_ms = 300, .run_wave = true,
				 .run_unstamped = true,
				 .run_fabric = true, .run_uds = true, .run_floor = true,
				 .run_path = true, .max_offcpu = BENCH_OFFCPU_MAX_DEFAULT };
	*clk = BENCH_CLOCK_TSC;
	while (ret == 0 && (o = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
		switch (o) {
		case OPT_ITERS:
			ret = bench_parse_uint(optarg, 1, 100000000, &c->iters);
			iters_set = true;
			break;
		case OPT_REPS:
			ret = bench_parse_uint(optarg, 1, BENCH_MAX_REPS, &c->reps);
			reps_set = true;
			break;
		case OPT_TPUT:
			ret = bench_parse_uint(optarg, 1, 60000, &c->tput_ms);
			tput_set = true;
			break;
		case OPT_ONLY:
			parse_only(optarg, c);
			break;
		case OPT_CLOCK:
			if (strcmp(optarg, "tsc") == 0 || strcmp(optarg, "mono") == 0)
				*clk = optarg[0] == 't' ? BENCH_CLOCK_TSC : BENCH_CLOCK_MONO;
			else
				ret = -EINVAL;
			break;
		case OPT_MAX_OFFCPU:
			ret = bench_offcpu_parse(optarg, &c->max_offcpu);
			break;
		case OPT_JSON:
			c->json = true;
			break;
		case OPT_QUICK:
			quick = true;
			break;
		case OPT_HELP:
			return 1;
		default:
			return -EINVAL;
		}
	}
	if (ret == 0 && optind < argc)
		ret = -EINVAL;
	if (quick) {
		c->iters = iters_set ? c->iters : 2000;
		c->reps = reps_set ? c->reps : 2;
		c->tput_ms = tput_set ? c->tput_ms : 20;
	}
	c->warmup = c->iters / 10 > 100 ? c->iters / 10 : 100;
	return ret;
}

static int setup_cpus(struct bench_cfg *c)
{
	int n = 0, ret = bench_pick_cpus(&c->host_cpu, &c->agent_cpu, &n);

	if (ret < 0)
		return ret;
	c->single_core = n < 2;
	if (c->single_core)
		fprintf(stderr, "wave-bench-chan: only one CPU (%d) available: both sides are pinned "
			"to it and yield when idle; latency and throughput are not meaningful\n",
			c->host_cpu);
	return 0;
}

typedef int (*run_fn)(const struct bench_cfg *cfg, struct bench_result *res);

/* In the order they run within one round. */
static const struct {
	int t;
	run_fn run;
	bool must_work; /* a failure fails the benchmark */
	const char *name;
} order[] = {
	{ BENCH_T_FLOOR, bench_floor_run, true, "cache-line floor" },
	{ BENCH_T_WAVE, bench_wave_run, true, "libwave" },
	{ BENCH_T_WAVE_NS, bench_wave_unstamped_run, true, "libwave unstamped" },
	{ BENCH_T_FABRIC, bench_fabric_run, false, "fi_pingpong" },
	{ BENCH_T_UDS, bench_uds_run, true, "unix socket" },
	{ BENCH_T_PATH, bench_wave_path_run, true, "libwave path" },
};

static bool selected(const struct bench_cfg *c, int t)
{
	return (t == BENCH_T_WAVE && c->run_wave) || (t == BENCH_T_WAVE_NS && c->run_unstamped) ||
	       (t == BENCH_T_FABRIC && c->run_fabric) ||
	       (t == BENCH_T_UDS && c->run_uds) || (t == BENCH_T_FLOOR && c->run_floor) ||
	       (t == BENCH_T_PATH && c->run_path);
}

/*
 * Runs every selected transport once per round, for cfg->reps rounds: the
 * machine is shared and its load changes, and interleaving spreads a busy
 * spell over all transports instead of penalising whichever ran during it.
 * Returns 0 when every transport that must work did.
 */
static int run_all(const struct bench_cfg *c, struct bench_report *rep, struct bench_result *res)
{
	bool failed[BENCH_N_TRANSPORTS] = { false };
	int status = 0;

	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		rep->ran[order[i].t] = selected(c, order[i].t);
	for (unsigned r = 0; r < c->reps && status == 0; r++) {
		for (size_t i = 0; i < sizeof(order) / sizeof(order[0]) && status == 0; i++) {
			int t = order[i].t, ret;
			if (!rep->ran[t] || failed[t])
				continue;
			ret = order[i].run(c, &res[t]);
			if (ret == 0)
				continue;
			failed[t] = true;
			if (order[i].must_work) {
				snprintf(res[t].note, sizeof(res[t].note), "FAILED in run %u: %s", r + 1,
					 wave_strerror(ret));
				fprintf(stderr, "wave-bench-chan: %s run %u failed: %s\n", order[i].name,
					r + 1, wave_strerror(ret));
				status = -1;
			}
		}
	}
	for (int t = 0; t < BENCH_N_TRANSPORTS; t++)
		res[t].ok = rep->ran[t] && !failed[t] && res[t].n_lat > 0;
	return status;
}

int main(int argc, char **argv)
{
	struct bench_cfg cfg;
	struct bench_report rep;
	struct bench_result *res;
	size_t res_len = sizeof(*res) * BENCH_N_TRANSPORTS;
	enum bench_clock_kind clk;
	int ret;

	ret = parse_args(argc, argv, &cfg, &clk);
	if (ret > 0) {
		usage(stdout);
		return 0;
	}
	if (ret < 0) {
		fprintf(stderr, "wave-bench-chan: bad arguments; see wave-bench-chan --help\n");
		return 2;
	}
	if ((ret = setup_cpus(&cfg)) < 0 || (ret = bench_clock_init(clk, cfg.iters > 10000 ? 200 : 20)) < 0) {
		fprintf(stderr, "wave-bench-chan: setup failed: %s\n", strerror(-ret));
		return 1;
	}
	/* Filled by the child processes. */
	res = bench_shared_alloc(res_len);
	if (!res) {
		fprintf(stderr, "wave-bench-chan: out of memory\n");
		return 1;
	}
	memset(&rep, 0, sizeof(rep));
	rep.cfg = &cfg;
	for (int t = 0; t < BENCH_N_TRANSPORTS; t++)
		rep.res[t] = &res[t];
	ret = run_all(&cfg, &rep, res);
	bench_report_print(&rep);
	bench_shared_free(res, res_len);
	return ret == 0 ? 0 : 1;
}
