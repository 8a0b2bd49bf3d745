/* SPDX-License-Identifier: MIT */
/*
 * wave-bench-mem-costs: what each mechanism of the mem domain's host side
 * costs, measured one at a time on this machine.
 *
 *   codecs     the far store's put (compress) and get (decompress) per
 *              chunk and the bytes kept, for no codec, lz4 and zstd, on
 *              pages as a runtime has them: zeros, English text, machine
 *              code (libc), a heap of small structs, random bytes (the
 *              store stops trying its codec within a run of chunks it
 *              cannot shrink, so random bytes time mostly raw puts);
 *   far tier   a demotion, and the fault that brings a chunk back (the
 *              touching thread's wait: fetch, decompress, map, wake), on
 *              anonymous and memfd regions;
 *   pressure   far faults at random over a working set four times a full
 *              fast tier, as wave-bench-mem's GUPS has them: each one also
 *              needs room, made by the fault thread after it (no reserve)
 *              or by the demoter thread on another CPU (a reserve of a
 *              16th of the tier); the touching thread's time per fault,
 *              its p99, and the share of faults the fault thread had to
 *              demote for; then the same with the faults served by the
 *              touching thread itself (fault_signal: "signal-" rows);
 *   sampler    dropping a chunk's mapping (what arming costs) and the minor
 *              fault of the next touch;
 *   reported   wave_mem_report_access() per address, in batches of 64;
 *   txn        wave_mem_migrate() between two tiers of one node (the
 *              transaction with no bytes to move);
 *   floor      what the kernel's own steps cost here, which every far
 *              fault and demotion is made of (and Linux's swap-in too): a
 *              system call, a signal delivered and returned from, the
 *              first touch of an anonymous page (a fault that allocates),
 *              and madvise(MADV_DONTNEED) of one page with this process
 *              alone on its CPU or with a thread of it running on another
 *              one (then every release interrupts that CPU to flush its
 *              TLB); medians, the p99 beside. On a VM each of these traps
 *              to the hypervisor or sends an interrupt between vCPUs, and
 *              costs from several to tens of times what it costs on bare
 *              metal: a far fault can be no cheaper than the steps it
 *              takes (BENCHMARKS.md).
 *
 * Every step checks the bytes it moved; --quick runs tiny sizes as a test
 * (no figure is judged). Figures go to stdout as a table, and with --json
 * as one JSON object per line.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <wave/wave.h>

#include "domains/mem/mem_store.h"

static bool json;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "wave-bench-mem-costs: %s: %s\n", what, wave_strerror(err));
	exit(1);
}

static void report(const char *what, const char *variant, double ns, double extra,
		   const char *extra_name)
{
	if (json)
		printf("{\"bench\":\"mem_costs\",\"what\":\"%s\",\"variant\":\"%s\",\"ns\":%.0f,"
		       "\"%s\":%.3f}\n", what, variant, ns, extra_name, extra);
	else
		printf("%-10s %-22s %12.0f ns   %s %.3f\n", what, variant, ns, extra_name, extra);
}

/* ---- pages ------------------------------------------------------------------- */

enum { P_ZERO, P_TEXT, P_CODE, P_HEAP, P_RANDOM, P_KINDS };
static const char *const kind_names[P_KINDS] = { "zero", "text", "code", "heap", "random" };

/* @len bytes of a file, from offset @at, repeated if it is shorter. */
static void from_file(const char *path, unsigned char *buf, size_t len, off_t at)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t off = 0;

	while (fd >= 0 && off < len) {
		ssize_t n = pread(fd, buf + off, len - off, at);

		if (n <= 0) {
			if (at == 0)
				break;
			at = 0;
			continue;
		}
		off += (size_t)n;
		at += n;
	}
	if (fd >= 0)
		close(fd);
	for (size_t k = off; k < len; k++) /* no file: a repeated sentence */
		buf[k] = (unsigned char)"a page of text stands in for the file. "[k % 39];
}

static void page_of(unsigned kind, unsigned char *buf, size_t len, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull | 1;

	switch (kind) {
	case P_ZERO:
		memset(buf, 0, len);
		break;
	case P_TEXT:
		from_file("/usr/share/common-licenses/GPL-3", buf, len,
			  (off_t)(seed * 4096 % 30000));
		break;
	case P_CODE:
		from_file("/usr/lib/x86_64-linux-gnu/libc.so.6", buf, len,
			  (off_t)(0x28000 + seed * len % 0x100000));
		break;
	case P_HEAP: /* 32-byte objects: a pointer, a length, a counter, flags */
		for (size_t k = 0; k + 32 <= len; k += 32) {
			uint64_t o[4];

			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			o[0] = 0x000055d4c0000000ull + (x & 0xffff0);
			o[1] = x % 200;
			o[2] = k / 32;
			o[3] = (x >> 40) & 3;
			memcpy(buf + k, o, sizeof(o));
		}
		break;
	default:
		for (size_t k = 0; k < len; k++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			buf[k] = (unsigned char)(x >> 24);
		}
	}
}

/* ---- the store's codecs ------------------------------------------------------ */

static void codecs(size_t chunk, unsigned n)
{
	static const char *const names[] = { "none", "lz4", "zstd-1" };
	unsigned char *pages = malloc((size_t)n * chunk), *out = malloc(chunk);

	if (!pages || !out)
		die("malloc", ENOMEM);
	for (unsigned kind = 0; kind < P_KINDS; kind++) {
		for (unsigned i = 0; i < n; i++)
			page_of(kind, pages + (size_t)i * chunk, chunk, i + 1);
		for (unsigned codec = 0; codec < WAVE_MEM_CODEC_COUNT; codec++) {
			struct mem_store *s = mem_store_local(0, codec);
			uint64_t t0, t1, t2;
			char variant[48];

			t0 = now_ns();
			for (unsigned i = 0; i < n; i++)
				if (s->ops->put(s, i, pages + (size_t)i * chunk, chunk))
					die("put", EIO);
			t1 = now_ns();
			for (unsigned i = 0; i < n; i++) {
				if (s->ops->get(s, i, out, chunk) ||
				    memcmp(out, pages + (size_t)i * chunk, chunk))
					die("get returned other bytes", EIO);
			}
			t2 = now_ns();
			snprintf(variant, sizeof(variant), "%s/%s/%zuK", names[codec],
				 kind_names[kind], chunk / 1024);
			report("put", variant, (double)(t1 - t0) / n,
			       (double)s->ops->used(s) / ((double)n * (double)chunk),
			       "stored_ratio");
			report("get", variant, (double)(t2 - t1) / n,
			       (double)chunk * n / ((double)(t2 - t1) / 1e9) / 1e6, "MBps");
			s->ops->destroy(s);
		}
	}
	free(pages);
	free(out);
}

/* ---- the far tier --------------------------------------------------------- */

static struct wave_mem *far_mem(uint32_t sample_chunks)
{
	struct wave_mem_opts o;
	struct wave_error err;
	struct wave_mem *m;
	int ret;

	wave_mem_opts_init(&o);
	o.n_tiers = 2;
	o.tiers[1] = (struct wave_mem_tier){ WAVE_MEM_TIER_FAR, 0, 0 };
	o.min_resident_ns = 0;
	o.sample_chunks = sample_chunks;
	o.sample_period_ns = 1000000;
	ret = wave_mem_create(&o, &m, &err);
	if (ret)
		die(err.text, ret);
	return m;
}

static char *region(struct wave_mem *m, size_t len, size_t chunk, bool managed, uint32_t *id)
{
	struct wave_mem_region_opts ro;
	void *p;
	int ret;

	wave_mem_region_opts_init(&ro);
	ro.chunk_size = chunk;
	if (managed) {
		ret = wave_mem_region_alloc(m, len, &ro, &p, id);
	} else {
		p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		ret = p == MAP_FAILED ? -errno : wave_mem_region_register(m, p, len, &ro, id);
	}
	if (ret)
		die("region", ret);
	for (size_t k = 0; k < len; k += chunk)
		page_of(P_HEAP, (unsigned char *)p + k, chunk, k / chunk + 1);
	return p;
}

static int migrate(struct wave_mem *m, uint64_t c, uint32_t tier)
{
	struct wave_mem_chunk_info ci = { .size = sizeof(ci) };

	if (wave_mem_chunk_info(m, c, &ci))
		die("chunk_info", EINVAL);
	return wave_mem_migrate(m, c, ci.seq, tier);
}

static void far_tier(size_t chunk, unsigned n, bool managed)
{
	struct wave_mem *m = far_mem(0);
	unsigned char *want = malloc(chunk);
	uint32_t id;
	char *p = region(m, (size_t)n * chunk, chunk, managed, &id);
	uint64_t t0, t1, t2;
	char variant[48];
	volatile char sink = 0;

	t0 = now_ns();
	for (unsigned i = 0; i < n; i++)
		if (migrate(m, wave_mem_chunk_id(id, i), 1) != WAVE_COMMITTED)
			die("demotion refused", EIO);
	t1 = now_ns();
	for (unsigned i = 0; i < n; i++)
		sink ^= p[(size_t)i * chunk + 8]; /* one fault per chunk */
	t2 = now_ns();
	(void)sink;
	for (unsigned i = 0; i < n; i++) {
		page_of(P_HEAP, want, chunk, i + 1);
		if (memcmp(p + (size_t)i * chunk, want, chunk))
			die("a chunk came back different", EIO);
	}
	snprintf(variant, sizeof(variant), "%s/heap/%zuK", managed ? "memfd" : "anon",
		 chunk / 1024);
	report("demote", variant, (double)(t1 - t0) / n, 0, "-");
	report("far_fault", variant, (double)(t2 - t1) / n,
	       (double)chunk * n / ((double)(t2 - t1) / 1e9) / 1e6, "MBps");
	wave_mem_destroy(m);
	if (!managed)
		munmap(p, (size_t)n * chunk);
	free(want);
}

/* ---- the sampler ------------------------------------------------------------- */

static void sampler(size_t chunk, unsigned n)
{
	struct wave_mem *m = far_mem(n);
	struct wave_mem_stats st;
	uint32_t id;
	char *p = region(m, (size_t)n * chunk, chunk, true, &id);
	int fd = memfd_create("bench", MFD_CLOEXEC);
	char *q;
	uint64_t t0, t1, armed;
	volatile char sink = 0;

	/* Arming is one MADV_DONTNEED of a chunk's mapping: timed on a memfd
	 * mapping of our own, so that the sampler's thread does not race it. */
	if (fd < 0 || ftruncate(fd, (off_t)((size_t)n * chunk)) < 0)
		die("memfd", errno);
	q = mmap(NULL, (size_t)n * chunk, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	memset(q, 1, (size_t)n * chunk);
	t0 = now_ns();
	for (unsigned i = 0; i < n; i++)
		madvise(q + (size_t)i * chunk, chunk, MADV_DONTNEED);
	t1 = now_ns();
	report("sample_arm", "madvise/memfd", (double)(t1 - t0) / n, (double)chunk / 1024, "KiB");
	munmap(q, (size_t)n * chunk);
	close(fd);
	for (unsigned i = 0; i < n; i++) { /* every chunk armed, none touched since */
		struct wave_mem_chunk_info ci = { .size = sizeof(ci) };

		while (!wave_mem_chunk_info(m, wave_mem_chunk_id(id, i), &ci) &&
		       !(ci.flags & WAVE_MEM_CHUNK_SAMPLED))
			usleep(1000);
	}
	wave_mem_stats(m, &st);
	armed = st.sample_hits;
	t0 = now_ns();
	for (unsigned i = 0; i < n; i++)
		sink ^= p[(size_t)i * chunk];
	t1 = now_ns();
	(void)sink;
	wave_mem_stats(m, &st);
	/* Each touch of an armed chunk is a hit; a chunk re-armed between
	 * its fault and the touching thread's retry is hit twice. */
	if (st.sample_hits - armed < n)
		die("the sampler missed touches", EIO);
	report("sample_hit", "minor-fault/memfd", (double)(t1 - t0) / n, (double)chunk / 1024,
	       "KiB");
	wave_mem_destroy(m);
}

/* ---- reported accesses and the bare transaction ------------------------------ */

static void reported_and_txn(unsigned n)
{
	struct wave_mem_opts o;
	struct wave_mem *m;
	size_t len = 64u << 20;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	const void *addrs[64];
	uint64_t t0, t1, x = 1;
	uint32_t id;

	wave_mem_opts_init(&o);
	o.n_tiers = 2;
	o.tiers[1] = (struct wave_mem_tier){ WAVE_MEM_TIER_NUMA, WAVE_MEM_NODE_ANY, 0 };
	o.min_resident_ns = 0;
	if (wave_mem_create(&o, &m, NULL) || wave_mem_region_register(m, p, len, NULL, &id))
		die("setup", EINVAL);
	t0 = now_ns();
	for (unsigned b = 0; b < n; b++) {
		for (unsigned k = 0; k < 64; k++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			addrs[k] = p + x % len;
		}
		if (wave_mem_report_access(m, addrs, 64) != 64)
			die("report_access", EIO);
	}
	t1 = now_ns();
	report("reported", "batch64/64MiB", (double)(t1 - t0) / (64.0 * n), 0, "-");
	t0 = now_ns();
	for (unsigned i = 0; i < n; i++)
		if (migrate(m, wave_mem_chunk_id(id, i % (len / 65536)),
			    (i / (len / 65536)) % 2 ? 0 : 1) != WAVE_COMMITTED)
			die("migrate", EIO);
	t1 = now_ns();
	report("txn", "numa-any/64K", (double)(t1 - t0) / n, 0, "-");
	wave_mem_destroy(m);
	munmap(p, len);
}

/* ---- far faults under pressure --------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Another CPU this process may use than @cpu, or -1. */
static int other_cpu(int cpu)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set))
		return -1;
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (c != cpu && CPU_ISSET(c, &set))
			return c;
	return -1;
}

/* @n far faults at random over 4 x @fast bytes, this thread on CPU 0 (and
 * the fault thread with it), the demoter (@reserve) on another CPU. */
static void pressure(uint64_t fast, unsigned n, bool reserve, bool sig)
{
	size_t ws = 4 * fast, words = ws / 8;
	uint64_t *lat = malloc(n * sizeof(*lat)), x = 88172645463325252ull;
	struct wave_mem_stats s0, s1;
	struct wave_mem_region_opts ro;
	struct wave_mem_opts o;
	struct wave_error err;
	struct wave_mem *m;
	cpu_set_t one;
	uint64_t *p, t0, t1;
	unsigned k = 0;
	uint32_t id;
	char variant[48];
	int ret;

	CPU_ZERO(&one);
	CPU_SET(0, &one);
	if (!lat || sched_setaffinity(0, sizeof(one), &one))
		die("pinning to CPU 0", errno);
	wave_mem_opts_init(&o);
	o.n_tiers = 2;
	o.tiers[0].capacity = fast;
	o.tiers[1] = (struct wave_mem_tier){ WAVE_MEM_TIER_FAR, 0, 0 };
	o.min_resident_ns = 0;
	o.reserve_bytes = reserve ? fast / 16 : 0;
	o.demote_cpu = other_cpu(0);
	o.fault_signal = sig;
	if ((ret = wave_mem_create(&o, &m, &err)))
		die(err.text, ret);
	p = mmap(NULL, ws, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		die("mmap", errno);
	for (size_t i = 0; i < words; i++) /* GUPS's table: lz4 keeps it whole */
		p[i] = i * 0x9e3779b97f4a7c15ull;
	wave_mem_region_opts_init(&ro);
	ro.chunk_size = 4096;
	if ((ret = wave_mem_region_register(m, p, ws, &ro, &id)))
		die("region", ret);
	while ((ret = wave_mem_relieve(m)) > 0)
		;
	wave_mem_stats(m, &s0);
	t0 = now_ns();
	while (k < n) {
		uint64_t a, b, v;
		size_t w;

		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		w = x % words;
		a = now_ns();
		v = ((volatile uint64_t *)p)[w];
		b = now_ns();
		if (v != w * 0x9e3779b97f4a7c15ull)
			die("a word came back different", EIO);
		if (b - a > 1000) /* a fault: a hit takes tens of ns */
			lat[k++] = b - a;
	}
	t1 = now_ns();
	wave_mem_stats(m, &s1);
	qsort(lat, n, sizeof(*lat), cmp_u64);
	snprintf(variant, sizeof(variant), "%s%s/4K", sig ? "signal-" : "",
		 reserve ? "reserve" : "no-reserve");
	report("pressure", variant, (double)(t1 - t0) / (double)(s1.far_faults - s0.far_faults),
	       (double)(s1.fault_demotions - s0.fault_demotions) /
		       (double)(s1.far_faults - s0.far_faults),
	       "fault_demotions/fault");
	report("pressure_p99", variant, (double)lat[n * 99 / 100], (double)lat[n / 2] / 1e3,
	       "p50_us");
	wave_mem_destroy(m);
	munmap(p, ws);
	free(lat);
}

/* ---- the kernel's floor --------------------------------------------------------- */

static _Atomic bool spinning;

static void on_usr1(int sig)
{
	(void)sig;
}

static void *spin(void *arg)
{
	(void)arg;
	while (atomic_load(&spinning))
		;
	return NULL;
}

static void step_syscall(char *page)
{
	(void)page;
	(void)syscall(SYS_getppid);
}

static void step_signal(char *page)
{
	(void)page;
	raise(SIGUSR1);
}

static void step_touch(char *page)
{
	*(volatile char *)page = 1;
}

static void step_dontneed(char *page)
{
	(void)madvise(page, 4096, MADV_DONTNEED);
}

/* @step on each of the @n pages at @p, each timed on its own, reported
 * as floor/@variant: the median, and the p99 beside. */
static void floor_row(const char *variant, void (*step)(char *page), char *p, uint64_t *lat,
		      size_t n)
{
	for (size_t k = 0; k < n; k++) {
		uint64_t t0 = now_ns();

		step(p + k * 4096);
		lat[k] = now_ns() - t0;
	}
	qsort(lat, n, sizeof(*lat), cmp_u64);
	report("floor", variant, (double)lat[n / 2], (double)lat[n * 99 / 100] / 1e3, "p99_us");
}

static void kernel_floor(size_t n)
{
	uint64_t *lat = calloc(n, sizeof(*lat));
	char *p = mmap(NULL, n * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	pthread_t thr;

	if (!lat || p == MAP_FAILED)
		die("kernel floor", -ENOMEM);
	(void)madvise(p, n * 4096, MADV_NOHUGEPAGE);
	if (signal(SIGUSR1, on_usr1) == SIG_ERR)
		die("signal", -errno);
	floor_row("syscall", step_syscall, p, lat, n);
	floor_row("signal", step_signal, p, lat, n);
	floor_row("page_fault/anon/4K", step_touch, p, lat, n);
	floor_row("dontneed/alone/4K", step_dontneed, p, lat, n);
	for (size_t k = 0; k < n; k++)
		p[k * 4096] = 1;
	atomic_store(&spinning, true);
	if (pthread_create(&thr, NULL, spin, NULL))
		die("pthread_create", -EAGAIN);
	floor_row("dontneed/thread/4K", step_dontneed, p, lat, n);
	atomic_store(&spinning, false);
	pthread_join(thr, NULL);
	munmap(p, n * 4096);
	free(lat);
}

int main(int argc, char **argv)
{
	bool quick = false;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick"))
			quick = true;
		else if (!strcmp(argv[i], "--json"))
			json = true;
		else {
			bool help = !strcmp(argv[i], "--help");

			fprintf(help ? stdout : stderr, "usage: wave-bench-mem-costs [--quick] [--json]\n");
			return help ? 0 : 2;
		}
	}
	codecs(4096, quick ? 16 : 4000);
	codecs(65536, quick ? 4 : 500);
	for (int managed = 0; managed < 2; managed++) {
		far_tier(4096, quick ? 16 : 4000, managed);
		far_tier(65536, quick ? 4 : 1000, managed);
	}
	sampler(65536, quick ? 8 : 512);
	reported_and_txn(quick ? 16 : 20000);
	kernel_floor(quick ? 64 : 20000);
	/* Last: it pins this thread to CPU 0. */
	for (int sig = 0; sig < 2; sig++)
		for (int reserve = 0; reserve < 2; reserve++)
			pressure(quick ? 1u << 20 : 16u << 20, quick ? 100 : 20000, reserve, sig);
	return 0;
}
