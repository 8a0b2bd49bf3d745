/* SPDX-License-Identifier: MIT */
/*
 * wave-bench-mem: memory tiering side by side. Two workloads (GUPS with a
 * moving hot set, a Zipfian key-value mix) on a working set four times the
 * fast budget, under every configuration: all memory fast (the upper
 * bound), an oracle placement (the limit for the budget), no policy, each
 * mem plugin on-host and offloaded (over shm://, and with 1 and 2 us of
 * emulated one-way delay), each with and without prestaged victims, and
 * Linux itself (a memory cgroup at the budget, swap on zram). The runs are
 * interleaved: every configuration once per round, so a noisy moment of
 * the machine hits them alike.
 */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench_mem.h"

#define MAX_CONFIGS 64

static struct bmem_config configs[MAX_CONFIGS];
static size_t n_configs;

static void add(const char *name, enum bmem_kind k, const char *pol, unsigned delay, bool ps)
{
	struct bmem_config *c = &configs[n_configs++];

	snprintf(c->name, sizeof(c->name), "%s", name);
	c->kind = k;
	c->policy = pol;
	c->delay_ns = delay;
	c->prestage = ps;
}

static void make_configs(void)
{
	static const char *const pols[] = { "hemem", "memtis", "sdfm" };
	static const struct {
		const char *name;
		enum bmem_kind kind;
		unsigned delay;
	} places[] = { { "onhost", BMEM_ONHOST, 0 },
		       { "shm", BMEM_OFFLOAD, 0 },
		       { "1us", BMEM_OFFLOAD, 1000 },
		       { "2us", BMEM_OFFLOAD, 2000 } };
	char name[32];

	add("all-fast", BMEM_ALLFAST, NULL, 0, false);
	add("oracle", BMEM_ORACLE, NULL, 0, false);
	add("no-policy", BMEM_NOPOLICY, NULL, 0, false);
	add("linux", BMEM_LINUX, NULL, 0, false);
	for (size_t p = 0; p < 3; p++)
		for (size_t i = 0; i < 4; i++)
			for (int ps = 1; ps >= 0; ps--) {
				snprintf(name, sizeof(name), "%s-%s-%s", pols[p], places[i].name,
					 ps ? "ps" : "np");
				add(name, places[i].kind, pols[p], places[i].delay, ps);
			}
	/* Each libwave configuration again, its faults served by the faulting
	 * thread (wave_mem_opts.fault_signal): "-sig". */
	for (size_t k = 1, n = n_configs; k < n; k++) {
		if (configs[k].kind == BMEM_LINUX)
			continue;
		configs[n_configs] = configs[k];
		snprintf(name, sizeof(name), "%.27s-sig", configs[k].name);
		snprintf(configs[n_configs].name, sizeof(configs[n_configs].name), "%s", name);
		configs[n_configs++].fault_signal = true;
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: wave-bench-mem [options]\n"
		"\n"
		"Runs GUPS (90%% of updates to a hot tenth of the memory, the hot set\n"
		"moving mid-run) and a Zipfian key-value mix on a working set four times\n"
		"the fast budget, under each configuration, and prints throughput, p99\n"
		"latency, the far tier's share of the memory and of the accesses, moves\n"
		"per second, the agent's CPU time and the time to regain 90%% of the\n"
		"throughput after the hot set moves.\n"
		"\n"
		"  --workloads LIST  gups, zipf or both (default both)\n"
		"  --configs LIST    configurations, comma separated: a name below, a\n"
		"                    prefix of names (hemem-2us) or a part of them\n"
		"                    (hemem, onhost, shm, 1us, 2us, ps, np, sig); default\n"
		"                    all. A name ending in -sig serves far faults in the\n"
		"                    faulting thread (wave_mem_opts.fault_signal); a name\n"
		"                    without it also selects its -sig twin\n"
		"  --runs N          rounds, interleaved; medians (default 1, max %d)\n"
		"  --run-ms MS       timed length of each run (default 2000)\n"
		"  --move-ms MS      GUPS: when the hot set moves (default half the run)\n"
		"  --fast-mib MIB    the fast budget (default 16; working set 4x)\n"
		"  --chunk-kib KIB   libwave's chunk size, 4..2048 (default 4)\n"
		"  --value BYTES     zipf: bytes per value, 8..chunk (default 1024)\n"
		"  --theta T         zipf: the exponent, 0 < T < 1 (default 0.99)\n"
		"  --poll-us US      how often the worker calls wave_mem_poll() (default 100)\n"
		"  --reserve-kib KIB libwave's reserve: room its demoter thread (on the agent\n"
		"                    CPU) keeps free under the budget, so that a far fault\n"
		"                    does not wait for a demotion; 0: none, the fault thread\n"
		"                    demotes after each fault (default a 16th of the budget)\n"
		"  --keep 0|1        the plugins' hints of their hot chunks to the host's\n"
		"                    CLOCK (their parameter keep; default 1)\n"
		"  --report-every N  the workload reports the address of one op in N to\n"
		"                    libwave (wave_mem_report_access(), batches of 64):\n"
		"                    1 is a runtime that knows every access to its\n"
		"                    objects, 8 (default) a sampling PMU's share, 0 none\n"
		"  --params JSON     more parameters for every plugin, as JSON members,\n"
		"                    e.g. '\"cool_ticks\": 100' (a plugin ignores the\n"
		"                    ones it does not take)\n"
		"  --json            one JSON object per line\n"
		"  --quick           a smoke test: tiny, every configuration but linux\n"
		"                    (unless --configs names it); checks every byte\n"
		"  --help            this text\n"
		"\n"
		"The linux configuration needs root: it makes a zram device, turns swap on\n"
		"it on, and a memory cgroup; all of it is removed after each run, and on\n"
		"SIGINT or SIGTERM. It is skipped, with the reason, where not allowed.\n"
		"\n"
		"Configurations:",
		BMEM_MAX_RUNS);
	for (size_t i = 0; i < n_configs; i++)
		fprintf(f, "%s%s", i % 6 ? " " : "\n  ", configs[i].name);
	fprintf(f, "\n\nExit status: 0; 1 when a run failed or read a wrong byte; 2 usage.\n");
}

/* ---- options -------------------------------------------------------------------- */

struct args {
	struct bmem_opts o;
	bool want[MAX_CONFIGS];
	bool want_work[BMEM_N_WORK];
	bool configs_given, reserve_given;
	unsigned runs;
};

/* @tok names @name: equal, a prefix up to a '-', or one '-'-separated part. */
static bool names(const char *tok, const char *name)
{
	size_t n = strlen(tok);
	const char *p;

	if (strncmp(name, tok, n) == 0 && (name[n] == '\0' || name[n] == '-'))
		return true;
	for (p = name; (p = strstr(p, tok)); p++)
		if ((p == name || p[-1] == '-') && (p[n] == '\0' || p[n] == '-'))
			return true;
	return false;
}

static int parse_configs(struct args *a, const char *s)
{
	char buf[512], *save = NULL;

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	memset(a->want, 0, sizeof(a->want));
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		bool any = false;
		for (size_t i = 0; i < n_configs; i++)
			if (names(t, configs[i].name))
				a->want[i] = any = true;
		if (!any)
			return -1;
	}
	a->configs_given = true;
	return 0;
}

static int parse_works(struct args *a, const char *s)
{
	char buf[64], *save = NULL;

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	memset(a->want_work, 0, sizeof(a->want_work));
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (strcmp(t, "gups") == 0)
			a->want_work[BMEM_GUPS] = true;
		else if (strcmp(t, "zipf") == 0)
			a->want_work[BMEM_ZIPF] = true;
		else
			return -1;
	}
	return 0;
}

static int num(const char *s, double lo, double hi, double *out)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || !(v >= lo && v <= hi))
		return -1;
	*out = v;
	return 0;
}

static int parse_args(int argc, char **argv, struct args *a, bool *quick)
{
	static const struct option opts[] = {
		{ "workloads", required_argument, NULL, 'w' },
		{ "configs", required_argument, NULL, 'c' },
		{ "runs", required_argument, NULL, 'r' },
		{ "run-ms", required_argument, NULL, 'T' },
		{ "move-ms", required_argument, NULL, 'M' },
		{ "fast-mib", required_argument, NULL, 'f' },
		{ "chunk-kib", required_argument, NULL, 'k' },
		{ "value", required_argument, NULL, 'v' },
		{ "theta", required_argument, NULL, 't' },
		{ "poll-us", required_argument, NULL, 'p' },
		{ "reserve-kib", required_argument, NULL, 'R' },
		{ "keep", required_argument, NULL, 'K' },
		{ "report-every", required_argument, NULL, 'E' },
		{ "params", required_argument, NULL, 'P' },
		{ "json", no_argument, NULL, 'j' },
		{ "quick", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	double v = 0;
	int c, li = 0;

	while ((c = getopt_long(argc, argv, "", opts, &li)) != -1) {
		int bad = 0;
		switch (c) {
		case 'w': bad = parse_works(a, optarg); break;
		case 'c': bad = parse_configs(a, optarg); break;
		case 'r': bad = num(optarg, 1, BMEM_MAX_RUNS, &v); a->runs = (unsigned)v; break;
		case 'T': bad = num(optarg, 100, 40000, &v); a->o.run_ms = (unsigned)v; break;
		case 'M': bad = num(optarg, 10, 40000, &v); a->o.move_ms = (unsigned)v; break;
		case 'f':
			bad = num(optarg, 1, 4096, &v);
			a->o.fast_bytes = (uint64_t)v << 20;
			break;
		case 'k': bad = num(optarg, 4, 2048, &v); a->o.chunk = (uint64_t)v << 10; break;
		case 'v': bad = num(optarg, 8, 2u << 20, &v); a->o.value = (unsigned)v; break;
		case 't': bad = num(optarg, 0.01, 0.999, &a->o.theta); break;
		case 'p': bad = num(optarg, 1, 1000000, &v); a->o.poll_us = (unsigned)v; break;
		case 'R':
			bad = num(optarg, 0, 4096.0 * 1024, &v);
			a->o.reserve_bytes = (uint64_t)v << 10;
			a->reserve_given = true;
			break;
		case 'K': bad = num(optarg, 0, 1, &v); a->o.keep = v != 0; break;
		case 'E': bad = num(optarg, 0, 1u << 20, &v); a->o.report_every = (unsigned)v; break;
		case 'P': a->o.params = optarg; break;
		case 'j': a->o.json = true; break;
		case 'q': *quick = true; break;
		case 'h': usage(stdout); exit(0);
		default: return -1;
		}
		if (bad) {
			fprintf(stderr, "wave-bench-mem: bad value for --%s: %s\n", opts[li].name,
				optarg);
			return -1;
		}
	}
	return optind == argc ? 0 : -1;
}

/* Sizes that the workloads and the manager accept. */
static int check_sizes(struct bmem_opts *o, bool reserve_given)
{
	uint64_t ch = o->chunk;

	o->ws_bytes = 4 * o->fast_bytes;
	if (!reserve_given)
		o->reserve_bytes = o->fast_bytes / 16;
	if (o->reserve_bytes >= o->fast_bytes) {
		fprintf(stderr, "wave-bench-mem: the reserve must be below the fast budget\n");
		return -1;
	}
	if (o->move_ms == 0)
		o->move_ms = o->run_ms / 2;
	if ((ch & (ch - 1)) || o->value % 8 || o->value > ch || ch % o->value ||
	    o->move_ms >= o->run_ms ||
	    (uint64_t)o->run_ms * 1000000 / BMEM_TICK_NS >= BMEM_MAX_TICKS) {
		fprintf(stderr, "wave-bench-mem: need a power-of-two chunk, a value that is a "
				"multiple of 8 dividing it, and the move within the run\n");
		return -1;
	}
	return 0;
}

/* ---- running ------------------------------------------------------------------------ */

static void on_signal(int sig)
{
	(void)sig;
	bmem_linux_cleanup();
	if (bmem_agentd_pid > 0)
		kill(bmem_agentd_pid, SIGTERM);
	_exit(130);
}

static void catch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

/* One run of @c on @l into @row; returns 1 when it failed. */
static int run_one(const struct bmem_opts *o, const struct bmem_config *c, struct bmem_load *l,
		   struct bmem_result *res, struct bmem_row *row)
{
	int ret;

	memset(res, 0, sizeof(*res));
	ret = c->kind == BMEM_LINUX ? bmem_run_linux(o, l, res) : bmem_run_wave(o, c, l, res);
	if (ret == 1) { /* a skip */
		snprintf(row->note, sizeof(row->note), "%s", res->note);
		return 0;
	}
	if (ret < 0 || !res->ok) {
		if (res->bad)
			snprintf(res->note, sizeof(res->note), "%llu values read back wrong",
				 (unsigned long long)res->bad);
		fprintf(stderr, "wave-bench-mem: %s %s: %s%s%s\n", bmem_work_name(row->w), c->name,
			ret < 0 ? strerror(-ret) : "failed", res->note[0] ? ": " : "", res->note);
		snprintf(row->note, sizeof(row->note), "failed: %.180s",
			 res->note[0] ? res->note : strerror(ret < 0 ? -ret : EIO));
		return 1;
	}
	bmem_fig_make(res, &row->fig[row->runs++]);
	return 0;
}

static void print_setup(const struct args *a)
{
	const struct bmem_opts *o = &a->o;

	if (o->json) {
		printf("{\"metric\":\"setup\",\"worker_cpu\":%d,\"agent_cpu\":%d,\"runs\":%u,"
		       "\"fast_bytes\":%llu,\"ws_bytes\":%llu,\"chunk\":%llu,\"run_ms\":%u,"
		       "\"move_ms\":%u,\"value\":%u,\"theta\":%.3f,\"poll_us\":%u,"
		       "\"reserve_bytes\":%llu,\"keep\":%d,\"report_every\":%u}\n",
		       o->worker_cpu, o->agent_cpu, a->runs, (unsigned long long)o->fast_bytes,
		       (unsigned long long)o->ws_bytes, (unsigned long long)o->chunk, o->run_ms,
		       o->move_ms, o->value, o->theta, o->poll_us,
		       (unsigned long long)o->reserve_bytes, o->keep, o->report_every);
		return;
	}
	printf("wave-bench-mem: worker on CPU %d; agent, oracle or Linux's watcher on CPU %d;\n"
	       "medians of %u interleaved runs. far mem: the far tier's (swap's) mean share of\n"
	       "the working set; far acc: ops that faulted on it; moves: chunks (pages) moved\n"
	       "between tiers per second; agent ms: its CPU time over the run; regain: ms from\n"
	       "the move to a 100 ms window at 90%% of the second before; off-CPU: ms the worker\n"
	       "waited runnable (schedstat); stall ms: gaps over %u us between its clock reads\n"
	       "(the sched benchmark's first measure; here it also holds far faults); fast pk:\n"
	       "the fast tier's (the cgroup's) largest use over the budget; off %%: the run's\n"
	       "off-CPU share as the other benchmarks record it (run delay of its processes,\n"
	       "steal of its CPUs, over the wall time; bench_offcpu.h).\n",
	       o->worker_cpu, o->agent_cpu, a->runs, BMEM_STALL_NS / 1000);
	printf("libwave's reserve: %llu KiB under the budget, refilled by its demoter thread\n"
	       "on CPU %d (0: none; the fault thread demotes after each fault).\n",
	       (unsigned long long)(o->reserve_bytes >> 10), o->agent_cpu);
	printf("The plugins' KEEP hints to the host's CLOCK: %s.\n", o->keep ? "on" : "off");
	if (o->report_every)
		printf("The workload reports one op in %u to libwave (wave_mem_report_access()).\n",
		       o->report_every);
	else
		printf("The workload reports no access to libwave.\n");
	if (*o->params)
		printf("More plugin parameters: %s.\n", o->params);
	printf("This machine has one NUMA node: the slower tier below is the far store\n"
	       "(userfaultfd + lz4); a NUMA tier of slower memory cannot be shown here.\n");
}

int main(int argc, char **argv)
{
	struct args a = {
		.o = { .fast_bytes = 16ull << 20, .chunk = 4096, .value = 1024, .theta = 0.99,
		       .run_ms = 2000, .poll_us = 100, .worker_cpu = 0, .agent_cpu = 1,
		       .keep = true, .report_every = BMEM_SAMPLE_EVERY, .params = "",
		       .seed = 0x5eed },
		.runs = 1,
	};
	static struct bmem_row rows[BMEM_N_WORK * MAX_CONFIGS];
	struct bmem_load *loads[BMEM_N_WORK] = { 0 };
	struct bmem_result *res;
	bool quick = false;
	size_t n_rows = 0;
	cpu_set_t set;
	int status = 0;

	make_configs();
	for (size_t i = 0; i < n_configs; i++)
		a.want[i] = true;
	a.want_work[BMEM_GUPS] = a.want_work[BMEM_ZIPF] = true;
	if (parse_args(argc, argv, &a, &quick) < 0) {
		usage(stderr);
		return 2;
	}
	if (quick) {
		a.o.fast_bytes = 4ull << 20;
		a.o.run_ms = 400;
		a.o.move_ms = 0;
		a.runs = 1;
		/* Swap on for a smoke test would touch the whole machine. */
		for (size_t i = 0; i < n_configs && !a.configs_given; i++)
			a.want[i] = configs[i].kind != BMEM_LINUX;
	}
	a.o.quick = quick;
	if (check_sizes(&a.o, a.reserve_given) < 0)
		return 2;
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) < 2)
		a.o.agent_cpu = a.o.worker_cpu; /* one CPU: everything shares it */
	res = mmap(NULL, sizeof(*res), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (res == MAP_FAILED)
		return 1;
	for (int w = 0; w < BMEM_N_WORK; w++)
		if (a.want_work[w] && bmem_load_new(&a.o, (enum bmem_work)w, &loads[w]) < 0)
			return 1;
	for (int w = 0; w < BMEM_N_WORK; w++)
		for (size_t i = 0; i < n_configs && a.want_work[w]; i++)
			if (a.want[i])
				rows[n_rows++] = (struct bmem_row){ .c = &configs[i],
								    .w = (enum bmem_work)w };
	catch_signals();
	print_setup(&a);
	for (unsigned r = 0; r < a.runs; r++)
		for (size_t i = 0; i < n_rows; i++)
			status |= run_one(&a.o, rows[i].c, loads[rows[i].w], res, &rows[i]);
	for (size_t i = 0; i < n_rows; i++)
		bmem_row_make(&rows[i]);
	bmem_report(&a.o, rows, n_rows);
	for (int w = 0; w < BMEM_N_WORK; w++)
		bmem_load_free(loads[w]);
	munmap(res, sizeof(*res));
	return status;
}
