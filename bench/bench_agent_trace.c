/* SPDX-License-Identifier: MIT */
/*
 * wave-bench-agent --record-sets, its calibration: what recording costs,
 * taken apart from the (e) sets, where on two CPUs the trace's writer
 * thread has no CPU of its own (docs/trace.md). A thread on the agent's
 * CPU does the agent's per-event work stand-in (a fixed chain of
 * multiplications) and puts each event and its decision (the (e) shape:
 * the records bench_echo's events and decisions make) into a trace whose
 * writer runs on the host's CPU, idle meanwhile; the same loop without
 * the puts, in alternation. Gives (a) the producer's nanoseconds per
 * record (on minus off, on the thread's CPU time) and (b) the writer
 * thread's CPU nanoseconds per record and the trace's bytes per record.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <wave/host.h>

#include "bench_agent.h"
#include "trace/trace_async.h"

/* Pairs (event and decision) per burst, bursts per timed loop, loops of
 * each kind. A burst fills half the ring (the agent's default size), and
 * the writer takes it all before the next one (untimed): no put finds the
 * ring full however late the writer, whose CPU others may share, drains
 * it (a lost record would cost the producer less than a kept one). */
#define RING 16384u
#define PAIRS (RING / 4)
#define BURSTS 16
#define LOOPS 15
/* Multiplications per event: about 200 ns, so that the writer keeps up. */
#define WORK 120u

static uint64_t thread_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The agent's own work for one event: a dependent chain, not optimized out. */
static uint64_t work(uint64_t x)
{
	for (unsigned i = 0; i < WORK; i++)
		x = x * 0x9e3779b97f4a7c15ull + i;
	return x;
}

static void pair_msgs(struct wave_msg *ev, struct wave_msg *dec, uint64_t n)
{
	ev->payload.u64[0] = dec->payload.u64[0] = n;
	WAVE_CUSTOM_KEY(ev) = WAVE_CUSTOM_KEY(dec) = n % 4096;
	WAVE_CUSTOM_SEQ(ev) = WAVE_CUSTOM_SEQ(dec) = n + 1;
}

/* One loop of BURSTS x PAIRS events, recording into @a or not (NULL):
 * the thread's CPU ns, without the waits for the writer. */
static uint64_t loop(struct trace_async *a, uint64_t *n, uint64_t *sink)
{
	struct wave_msg ev = { .type = WAVE_MSG_APP_FIRST + 0x10 },
			dec = { .type = WAVE_MSG_APP_FIRST + 0x11 };
	uint64_t x = *sink, now = 1000, ns = 0, t0;

	for (unsigned b = 0; b < BURSTS; b++) {
		t0 = thread_ns(CLOCK_THREAD_CPUTIME_ID);
		for (unsigned i = 0; i < PAIRS; i++, ++*n) {
			pair_msgs(&ev, &dec, *n);
			x = work(x ^ *n);
			now += 60;
			if (a) {
				trace_async_put(a, TRACE_EVENT, now, &ev);
				trace_async_put(a, TRACE_DECISION, now, &dec);
			}
		}
		if (a)
			trace_async_publish(a);
		ns += thread_ns(CLOCK_THREAD_CPUTIME_ID) - t0;
		while (a && wave_load_acquire(&a->tail) < a->head)
			usleep(200);
	}
	*sink = x;
	return ns;
}

static int calibrate(const struct bench_cfg *c, const char *path, struct bench_trace_cost *out)
{
	struct trace_async_opts o = { { path, 1ull << 30, 0 }, RING, c->host_cpu, 0 };
	struct trace_meta meta = { .domain = WAVE_DOMAIN_CUSTOM, .host_id = 1 };
	double off[LOOPS], on[LOOPS];
	uint64_t n = 0, sink = 1, w0, w1, puts;
	struct trace_async *a;
	struct wave_error err;
	clockid_t wclk;
	struct stat st;
	int ret;

	snprintf(meta.plugin, sizeof(meta.plugin), "bench_echo");
	if ((ret = trace_async_open(&o, &meta, &a, &err)) < 0) {
		fprintf(stderr, "wave-bench-agent: calibration: %s\n", err.text);
		return ret;
	}
	if ((ret = -pthread_getcpuclockid(a->thr, &wclk)) < 0) {
		trace_async_close(a);
		return ret;
	}
	w0 = thread_ns(wclk);
	for (unsigned k = 0; k < LOOPS; k++) {
		off[k] = (double)loop(NULL, &n, &sink);
		on[k] = (double)loop(a, &n, &sink);
	}
	puts = 2ull * PAIRS * BURSTS * LOOPS;
	w1 = thread_ns(wclk);
	out->lost = a->lost;
	out->puts = puts;
	trace_async_close(a);
	out->put_ns = (bench_median(on, LOOPS) - bench_median(off, LOOPS)) / (2.0 * PAIRS * BURSTS);
	out->work_ns = bench_median(off, LOOPS) / (PAIRS * BURSTS);
	out->writer_ns = (double)(w1 - w0) / (double)(puts - out->lost);
	out->bytes = stat(path, &st) == 0 ? (double)st.st_size / (double)(puts - out->lost) : 0;
	out->sink = sink;
	return 0;
}

int bench_trace_calibrate(const struct bench_cfg *c, struct bench_trace_cost *out)
{
	char dir[64], path[96];
	cpu_set_t old;
	int ret;

	memset(out, 0, sizeof(*out));
	/* In memory, as the (e) sets' traces: the cost of recording, not of a disk. */
	snprintf(dir, sizeof(dir), "%s/wave-bench-cal-XXXXXX",
		 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	if (!mkdtemp(dir))
		return -errno;
	snprintf(path, sizeof(path), "%s/calibration.trace", dir);
	if (sched_getaffinity(0, sizeof(old), &old) < 0 || bench_pin(c->agent_cpu) < 0) {
		rmdir(dir);
		return -errno;
	}
	ret = calibrate(c, path, out);
	unlink(path);
	rmdir(dir);
	sched_setaffinity(0, sizeof(old), &old);
	return ret;
}
