/* SPDX-License-Identifier: MIT */
/*
 * wave-bench-chan: shared declarations of the benchmark's parts.
 *
 *   bench_clock.c   the timer (TSC calibrated against CLOCK_MONOTONIC, or
 *                   CLOCK_MONOTONIC itself) and statistics over samples
 *   bench_proc.c    pinned child processes, shared result memory, waiting
 *   bench_loops.c   the measuring loops, written once over a tiny transport
 *                   interface so libwave and the Unix socket run the very
 *                   same ping-pong and streaming code
 *   bench_wave.c    the libwave shm:// transport
 *   bench_uds.c     the Unix-domain socket transport
 *   bench_fabric.c  libfabric's fi_pingpong, run as two child processes
 *   bench_floor.c   a bare cache-line ping-pong: the floor no channel beats
 *   bench_report.c  the table, the ratios and the JSON lines
 *   bench_chan.c    options and the order of the measurements
 */
#ifndef WAVE_BENCH_H
#define WAVE_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <wave/wave.h>

#include "bench_offcpu.h"
#include "bench_stat.h"

/* ---- configuration ------------------------------------------------------ */

#define BENCH_MAX_REPS 16
#define BENCH_N_BATCHES 3
extern const unsigned bench_batches[BENCH_N_BATCHES]; /* 1, 8, 32 */

struct bench_cfg {
	unsigned iters;       /* timed round trips per latency run */
	unsigned warmup;      /* untimed round trips before them */
	unsigned reps;        /* runs of every transport, interleaved; medians reported */
	unsigned tput_ms;     /* length of one throughput run */
	int host_cpu;         /* where the host side (and fi_pingpong client) runs */
	int agent_cpu;        /* where the agent side (and fi_pingpong server) runs */
	bool single_core;     /* both on one CPU: spin loops yield */
	double max_offcpu;    /* runs that lost more (bench_offcpu.h) are left out */
	bool writer_on_agent; /* wave-bench-agent: trace writers on agent_cpu, not host_cpu */
	bool json;
	bool run_wave, run_unstamped, run_fabric, run_uds, run_floor, run_path;
};

/* ---- results ------------------------------------------------------------ */

/*
 * One-way latency of one run, in nanoseconds (round trip / 2).
 * @p50 .. @mean come from timing every round trip on its own, so each
 * includes one timer reading per round trip. @loop_mean times a whole loop
 * of round trips with one reading at each end, the way fi_pingpong does;
 * it is the figure to compare with fi_pingpong's.
 */
struct bench_lat {
	double p50, p99, p999, mean;
	double loop_mean;
};

/* What one transport measured over all runs; lives in shared memory, where
 * each run's child process appends to it. */
struct bench_result {
	bool ok;               /* every run ran and verified */
	bool have_pct;         /* per-round-trip figures (fi_pingpong has only loop_mean) */
	bool have_tput;        /* throughput measured */
	unsigned n_lat;        /* runs in lat[] */
	struct bench_lat lat[BENCH_MAX_REPS];
	unsigned n_tput;       /* runs per batch size in tput[][] */
	double tput[BENCH_N_BATCHES][BENCH_MAX_REPS]; /* messages per second */
	unsigned n_off;        /* runs in offcpu[] */
	double offcpu[BENCH_MAX_REPS]; /* each run's off-CPU share (bench_offcpu.h) */
	char note[160];        /* why a peer is missing, or how it was measured */
};

/* ---- timer and statistics (bench_clock.c) ------------------------------- */

enum bench_clock_kind { BENCH_CLOCK_TSC, BENCH_CLOCK_MONO };

/* Chooses the timer: the TSC when @want is TSC and the CPU's TSC is
 * invariant, else CLOCK_MONOTONIC. Calibrates over @calib_ms. Call once,
 * before forking: children inherit the calibration. Returns 0 or -errno. */
int bench_clock_init(enum bench_clock_kind want, unsigned calib_ms);
enum bench_clock_kind bench_clock_kind(void);
double bench_clock_mhz(void); /* TSC rate, 0 for CLOCK_MONOTONIC */
double bench_ticks_to_ns(uint64_t ticks);
uint64_t bench_ns_to_ticks(uint64_t ns);

extern bool bench_clock_use_tsc;
/* CLOCK_MONOTONIC in nanoseconds: the ticks when the TSC is not used. */
uint64_t bench_mono_ns(void);

/* A timestamp in ticks. rdtscp waits until earlier instructions are done,
 * so the reading comes after the receive that ends a round trip. */
static inline uint64_t bench_ticks(void)
{
#if defined(__x86_64__)
	if (bench_clock_use_tsc) {
		uint32_t lo, hi, aux;
		/* The memory clobber keeps the compiler from moving loads and
		 * stores of the measured work across the reading. */
		__asm__ volatile("rdtscp" : "=a"(lo), "=d"(hi), "=c"(aux) : : "memory");
		(void)aux;
		return ((uint64_t)hi << 32) | lo;
	}
#endif
	return bench_mono_ns();
}

/* Sorts @ticks (round trips) in place and returns one-way percentiles in ns. */
struct bench_lat bench_lat_from_rtts(uint64_t *ticks, size_t n);
/* The per-field median over runs. */
struct bench_lat bench_lat_median(const struct bench_lat *runs, unsigned n);

/* ---- processes (bench_proc.c) ------------------------------------------- */

/* The body of a child process: return 0 on success. */
typedef int (*bench_child_fn)(void *arg);

/* Pins the calling process to @cpu. Returns 0 or -errno. */
int bench_pin(int cpu);
/* Forks a child that dies with its parent, pins it to @cpu and runs @fn;
 * the child exits 0 when @fn returns 0, else 1. Returns 0 or -errno. */
int bench_spawn(int cpu, bench_child_fn fn, void *arg, pid_t *pid);
/* Waits for @pid up to @timeout_ms (killing it then). Returns its exit
 * status (0 = success), or a negative errno (-ETIMEDOUT). */
int bench_wait(pid_t pid, int timeout_ms);
/* Starts watching one run's two processes and its CPUs (bench_offcpu.h). */
void bench_watch_run(struct bench_watch *w, const struct bench_cfg *cfg, pid_t agent, pid_t host);
/* Waits for a run's host process as bench_wait() does; when it exited
 * cleanly, appends the run's off-CPU share to @offcpu[*n] (at most
 * BENCH_MAX_REPS) before reaping it. */
int bench_wait_run(pid_t host, int timeout_ms, const struct bench_watch *w, double *offcpu,
		   unsigned *n);
/* How long one run may take before its processes are taken for hung: a
 * generous bound (half a millisecond per round trip, as on a machine so
 * overloaded that both sides rarely run at once), to catch a dead peer
 * without failing a merely slow run. */
int bench_run_timeout_ms(const struct bench_cfg *cfg);
/* Memory shared with the children forked after this call; zeroed. */
void *bench_shared_alloc(size_t len);
void bench_shared_free(void *p, size_t len);
/* The CPUs this process may run on: the first two, or one (*n = 1). */
int bench_pick_cpus(int *first, int *second, int *n);

/* ---- the measuring loops (bench_loops.c) -------------------------------- */

/* The little a transport must do for the loops: send all of @n or some of
 * them (return how many, or a negative error), and receive without blocking
 * (return how many, 0 for none yet, or a negative error). */
struct bench_xport {
	const char *name;
	int (*send)(void *ctx, const struct wave_msg *msgs, unsigned n);
	int (*recv)(void *ctx, struct wave_msg *msgs, unsigned max);
	void *ctx;
};

/* ---- measuring, shared by the programs (bench_loops.c) ------------------ */

/* One round trip of the thing measured, checked; 0 or a negative error. */
typedef int (*bench_rtt_fn)(void *ctx);
/* Streams batches of @batch for about @ms ms, checked; the rate in
 * messages (or events) per second to *@rate; 0 or a negative error. */
typedef int (*bench_stream_fn)(void *ctx, unsigned batch, unsigned ms, double *rate);

/* A latency run: cfg->warmup untimed round trips, cfg->iters timed as a
 * whole (out->loop_mean), cfg->iters timed one by one with one timer
 * reading each (the percentiles). One way = round trip / 2. */
int bench_measure_latency(bench_rtt_fn rtt, void *ctx, const struct bench_cfg *cfg,
			  struct bench_lat *out);
/* A throughput run of @run_stream per batch size of bench_batches[], each
 * after an unreported warm-up of a quarter of its length. */
int bench_measure_rates(bench_stream_fn run_stream, void *ctx, const struct bench_cfg *cfg,
			double rate[BENCH_N_BATCHES]);
/* Parses a decimal unsigned in [@lo, @hi]; 0 or -EINVAL. */
int bench_parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out);

/* Host side of one run: a latency run (after a warm-up), a throughput run
 * per batch size (each after a warm-up), then STOP. Appends to @res (in
 * shared memory). Returns 0 or a negative error. */
int bench_host_run(const struct bench_xport *x, const struct bench_cfg *cfg,
		   struct bench_result *res);
/* Agent side: answers pings, verifies streams, until STOP. */
int bench_agent_serve(const struct bench_xport *x, bool single_core);

/* ---- transports ---------------------------------------------------------- */

/* Each call is one run in fresh processes, appended to @res; 0 or -errno. */
int bench_wave_run(const struct bench_cfg *cfg, struct bench_result *res);
int bench_uds_run(const struct bench_cfg *cfg, struct bench_result *res);
int bench_floor_run(const struct bench_cfg *cfg, struct bench_result *res);
/* libwave's own instructions per message: both ends of one shm:// channel
 * in one thread on one CPU, so no cache line moves between CPUs. */
int bench_wave_path_run(const struct bench_cfg *cfg, struct bench_result *res);
/* The same as bench_wave_run() with both ends opened WAVE_CHAN_F_NO_STAMP:
 * what the send stamp's clock reading costs. */
int bench_wave_unstamped_run(const struct bench_cfg *cfg, struct bench_result *res);
/* Returns -ENOENT when the tool is not installed. A failure of this peer
 * is reported, never fatal: it says why in res->note. */
int bench_fabric_run(const struct bench_cfg *cfg, struct bench_result *res);

/* ---- output (bench_report.c) --------------------------------------------- */

enum {
	BENCH_T_WAVE,
	BENCH_T_WAVE_NS,
	BENCH_T_FABRIC,
	BENCH_T_UDS,
	BENCH_T_FLOOR,
	BENCH_T_PATH,
	BENCH_N_TRANSPORTS
};

struct bench_report {
	const struct bench_cfg *cfg;
	bool ran[BENCH_N_TRANSPORTS];
	struct bench_result *res[BENCH_N_TRANSPORTS];
};

void bench_report_print(const struct bench_report *r);
/* Prints @s as a JSON string, quotes and escapes included. */
void bench_json_string(const char *s);

#endif /* WAVE_BENCH_H */
