/* SPDX-License-Identifier: MIT */
/*
 * wave-bench-mem: memory tiering, side by side. Its parts:
 *
 *   bench_mem.c         options, the configurations, the order of the runs
 *   bench_mem_load.c    the workloads (GUPS with a moving hot set, a
 *                       Zipfian key-value mix) and the worker loop that
 *                       times them, the same code under every configuration
 *   bench_mem_wave.c    the libwave configurations: a manager with a fast
 *                       budget and the far tier, placed by nobody, by an
 *                       oracle, or by a mem plugin on-host or offloaded
 *   bench_mem_linux.c   the peer: Linux itself, a memory cgroup limited to
 *                       the fast budget with swap on a zram device
 *   bench_mem_report.c  the table, --json, the ratios and the targets
 *
 * The worker runs on one CPU; whatever decides (an agent, the oracle, the
 * parent watching Linux's cgroup) on the other.
 */
#ifndef WAVE_BENCH_MEM_H
#define WAVE_BENCH_MEM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BMEM_MAX_RUNS 9
/* The timeline's resolution: ops counted, tiers sampled, every 10 ms. */
#define BMEM_TICK_NS 10000000ull
#define BMEM_MAX_TICKS 4096u
/* Latency histogram: 16 buckets per power of two of nanoseconds. */
#define BMEM_LAT_SUB 16u
#define BMEM_LAT_BUCKETS (40u * BMEM_LAT_SUB)
/* One op in BMEM_SAMPLE_EVERY is timed. */
#define BMEM_SAMPLE_EVERY 8u
/* A gap this long between two of the worker's clock reads is a stall
 * (the sched benchmark's measure of time off the CPU). */
#define BMEM_STALL_NS 50000u

enum bmem_work { BMEM_GUPS, BMEM_ZIPF, BMEM_N_WORK };

enum bmem_kind {
	BMEM_ALLFAST,  /* no budget: the upper bound */
	BMEM_ORACLE,   /* the hottest chunks, known offline, pinned fast */
	BMEM_NOPOLICY, /* no agent, no access information: first touch */
	BMEM_ONHOST,   /* a mem plugin in an agent thread of this process */
	BMEM_OFFLOAD,  /* a mem plugin in wave-agentd over shm:// */
	BMEM_LINUX,    /* a memory cgroup at the budget, swap on zram */
};

/* One configuration (a row of the table). */
struct bmem_config {
	char name[32];
	enum bmem_kind kind;
	const char *policy; /* "hemem", "memtis", "sdfm" (plugin mem_<policy>), or NULL */
	unsigned delay_ns;  /* emulated one-way delay of the channel */
	bool prestage;      /* the plugin keeps victims prestaged on the host */
	bool fault_signal;  /* "-sig": faults served by their threads (wave_mem_opts) */
};

struct bmem_opts {
	uint64_t fast_bytes; /* the fast budget */
	uint64_t ws_bytes;   /* the working set: 4x the budget */
	uint64_t chunk;      /* chunk size of the libwave region */
	unsigned value;      /* bytes per value of the key-value mix */
	double theta;        /* its Zipf exponent */
	unsigned run_ms;     /* timed length of a run */
	unsigned move_ms;    /* GUPS: when the hot set moves */
	unsigned poll_us;    /* the worker calls wave_mem_poll() this often */
	uint64_t reserve_bytes; /* libwave's reserve under the budget (its demoter
				   thread runs on agent_cpu), 0: none */
	int worker_cpu, agent_cpu;
	bool keep;           /* the plugins' KEEP hints (their parameter keep) */
	unsigned report_every; /* one op in this many is reported to libwave (0: none) */
	const char *params;  /* more plugin parameters, JSON members ("" none) */
	bool json, quick;
	uint64_t seed;
};

/* What one run measured. Lives in memory shared with a child process. */
struct bmem_result {
	_Atomic int phase;  /* 0 before the timed phase, 1 in it, 2 after it */
	bool ok;
	char note[200];     /* why a run was skipped or failed */
	uint64_t ops;
	double secs;        /* the timed phase */
	uint64_t lat[BMEM_LAT_BUCKETS]; /* timed ops by latency bucket */
	uint64_t far_accesses;          /* far faults (libwave) or major faults (Linux) */
	uint64_t moves;                 /* chunks or pages moved between tiers */
	double far_share_sum;           /* sum over ticks of the far tier's share of the set */
	unsigned far_samples;
	double fast_peak;               /* the fast tier's largest use / the budget */
	uint64_t agent_cpu_ns;          /* the agent (or the oracle thread) over the run */
	uint64_t stall_ns;              /* gaps over BMEM_STALL_NS between clock reads */
	uint64_t rq_wait_ns;            /* the worker runnable but not running */
	double offcpu;                  /* the run's off-CPU share over the timed phase, as
					   the other benchmarks record it (bench_offcpu.h):
					   its processes' run delay and its CPUs' steal */
	unsigned n_ticks;               /* entries of tick_ops */
	unsigned move_tick;             /* the tick the hot set moved in (GUPS) */
	uint64_t tick_ops[BMEM_MAX_TICKS]; /* ops done by the end of each tick */
	uint64_t bad;                   /* values read back wrong: a lost byte */
};

/* ---- the workloads (bench_mem_load.c) ------------------------------------- */

struct bmem_load;

/* What a configuration does around the worker's ops; each may be NULL. */
struct bmem_hooks {
	void *ctx;
	/* every o->poll_us of the worker's time */
	void (*poll)(void *ctx);
	/* the addresses of timed ops, in batches */
	void (*report)(void *ctx, const void *const *addrs, unsigned n);
	/* at each tick: add the far tier's share to @res */
	void (*tick)(void *ctx, struct bmem_result *res);
	/* the hot set has just moved */
	void (*moved)(void *ctx);
};

/* Makes workload @w's state for memory of o->ws_bytes: its tables live in
 * memory shared with children, made before any cgroup is joined. */
int bmem_load_new(const struct bmem_opts *o, enum bmem_work w, struct bmem_load **out);
void bmem_load_free(struct bmem_load *l);
/* The memory the workload runs on, not touched yet: fills it (its first
 * touch), which every configuration does before its timed phase. */
void bmem_load_fill(struct bmem_load *l, char *base);
/* The timed phase: ops until o->run_ms, the hot set moving at o->move_ms
 * (GUPS). Returns 0 or -errno. */
int bmem_load_run(struct bmem_load *l, const struct bmem_hooks *h, struct bmem_result *res);
/* After it: counts in res->bad the bytes that are not what the run wrote
 * (which brings every far chunk back: not part of the timed phase). */
void bmem_load_check(const struct bmem_load *l, struct bmem_result *res);
/* The chunk weights the oracle knows offline: @w[c] is chunk c's share of
 * the accesses (c of o->chunk bytes), before the move (@after false) or
 * after it. */
void bmem_load_weights(const struct bmem_load *l, bool after, double *w, size_t n_chunks);
/* The worker's time waiting on a run queue so far (ns), or 0. */
uint64_t bmem_rq_wait_ns(void);
uint64_t bmem_now_ns(void);
int bmem_pin(int cpu);
const char *bmem_work_name(enum bmem_work w);

/* ---- the configurations --------------------------------------------------- */

/* Each runs one configuration on @l and fills @res; 0, or a negative errno
 * when the run could not be made (res->note says why). */
int bmem_run_wave(const struct bmem_opts *o, const struct bmem_config *c, struct bmem_load *l,
		  struct bmem_result *res);
/* 1 when the peer is not available here (res->note says why): a skip. */
int bmem_run_linux(const struct bmem_opts *o, struct bmem_load *l, struct bmem_result *res);
/* Undoes whatever the Linux peer set up (swap, zram, cgroup, its child);
 * async-signal-safe, for SIGINT and SIGTERM. */
void bmem_linux_cleanup(void);
/* The agent daemon of the current run, for the signal handler. */
extern volatile int bmem_agentd_pid;

/* ---- output (bench_mem_report.c) ------------------------------------------ */

/* The figures of one run. */
struct bmem_fig {
	double ops_s;             /* ops over the timed phase's wall time */
	double cpu_ops_s;         /* ops over the time the worker was not kept
				     waiting for its CPU by other tasks (the run
				     queue wait subtracted): the machine's load out */
	double p50_us, p99_us;
	double far_mem, far_acc;  /* shares, 0..1 */
	double moves_s, agent_ms, off_cpu_ms, stall_ms, fast_peak;
	double offcpu;            /* the run's off-CPU share, 0..1 and more */
	double regain_ms;         /* INFINITY: not regained within the run; NAN: no move */
};

/* The medians of a configuration's runs of one workload. */
struct bmem_row {
	const struct bmem_config *c;
	enum bmem_work w;
	unsigned runs;        /* runs that succeeded */
	char note[200];       /* a skip or failure's reason when runs == 0 */
	struct bmem_fig med;  /* the medians (regain: INFINITY when most runs did not) */
	struct bmem_fig fig[BMEM_MAX_RUNS];
};

/* A run's figures from what it measured. */
void bmem_fig_make(const struct bmem_result *res, struct bmem_fig *f);
/* Fills row->med with the medians of row->fig[0 .. row->runs). */
void bmem_row_make(struct bmem_row *row);

/* Prints the table (or JSON lines), then the ratios and the targets. */
void bmem_report(const struct bmem_opts *o, const struct bmem_row *rows, size_t n);

#endif /* WAVE_BENCH_MEM_H */
