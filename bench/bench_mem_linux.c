/* SPDX-License-Identifier: MIT */
/*
 * wave-bench-mem's peer: Linux itself on the same budget. A child process
 * in a memory cgroup limited to the fast budget runs the very same
 * workload on private anonymous memory; what does not fit is reclaimed by
 * the kernel's LRU to swap on a zram device (compressed in memory, lz4
 * like libwave's far store), and comes back by a major fault.
 *
 * Set up for each run and torn down after it, in reverse order: a zram
 * device of its own (hot_add), a swap header written on it and swapon(2)
 * at a high priority, a cgroup (v2 with memory.max where the memory
 * controller is on the unified hierarchy, else v1's memory.limit_in_bytes,
 * the same reclaim), the child. Every step that fails makes the run a skip
 * with the reason. The teardown is async-signal-safe: SIGINT and SIGTERM
 * run it too, and leave no swap, device or cgroup behind.
 *
 * The parent watches from the agent CPU: the cgroup's swap use (the far
 * tier's share) and its memory use every tick, the child's major faults
 * (the far accesses) and the kernel's swap-ins and swap-outs (the moves)
 * over the timed phase, which the child marks in the shared result.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_mem.h"
#include "bench_offcpu.h"

/* Room over the budget for the child's own page tables and stack, which
 * the libwave runs do not count against the fast tier either. */
#define SLACK_BYTES (1u << 20)
#define SWAP_PRIO 100
#define HOT_ADD "/sys/class/zram-control/hot_add"

/* What is set up now; read by the signal handler. */
static struct {
	int zram;          /* device number, or -1 */
	char dev[32];      /* /dev/zramN */
	char num[16];      /* N, for hot_remove */
	char reset[64];    /* its reset file */
	volatile sig_atomic_t swap_on;
	char cg[256];      /* the cgroup's directory, or "" */
	volatile pid_t child;
} su = { .zram = -1, .child = -1 };

static struct {
	bool v2;
	char limit[32], swap[32], usage[32]; /* file names in the cgroup */
} cgk;

/* ---- small async-signal-safe helpers --------------------------------------- */

static int put(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, s, strlen(s)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

static void utoa(unsigned long v, char *out)
{
	char tmp[24];
	int n = 0;

	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10));
	while (n)
		*out++ = tmp[--n];
	*out = '\0';
}

void bmem_linux_cleanup(void)
{
	if (su.child > 0) {
		kill(su.child, SIGKILL);
		waitpid(su.child, NULL, 0);
		su.child = -1;
	}
	if (su.swap_on) {
		swapoff(su.dev);
		su.swap_on = 0;
	}
	if (su.zram >= 0) {
		put(su.reset, "1");
		put("/sys/class/zram-control/hot_remove", su.num);
		su.zram = -1;
	}
	/* The cgroup empties as its last task is reaped: retry briefly. */
	for (int i = 0; su.cg[0] && i < 100; i++) {
		struct timespec ts = { 0, 10000000 };
		if (rmdir(su.cg) == 0 || errno == ENOENT)
			su.cg[0] = '\0';
		else
			nanosleep(&ts, NULL);
	}
}

/* ---- setting up ---------------------------------------------------------------- */

static int get_str(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	int ret = 0;

	if (!f)
		return -errno;
	if (!fgets(buf, (int)len, f))
		ret = -EIO;
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	return ret;
}

static int fail(struct bmem_result *res, int err, const char *what)
{
	snprintf(res->note, sizeof(res->note), "%s: %s", what, strerror(-err));
	return err;
}

/* A swap area is a page: the version, the last page and the magic. */
static int write_swap_header(const char *dev, uint64_t size)
{
	long pg = sysconf(_SC_PAGESIZE);
	uint32_t head[3] = { 1, (uint32_t)(size / (uint64_t)pg - 1), 0 };
	char *page = calloc(1, (size_t)pg);
	int fd = open(dev, O_WRONLY | O_CLOEXEC), ret = 0;

	if (!page || fd < 0) {
		ret = fd < 0 ? -errno : -ENOMEM;
	} else {
		memcpy(page + 1024, head, sizeof(head));
		memcpy(page + pg - 10, "SWAPSPACE2", 10);
		if (pwrite(fd, page, (size_t)pg, 0) != pg || fsync(fd) < 0)
			ret = -EIO;
	}
	if (fd >= 0)
		close(fd);
	free(page);
	return ret;
}

/* modprobe zram, where the module is not loaded yet and modprobe exists. */
static void load_zram(void)
{
	char *const argv[] = { "modprobe", "zram", "num_devices=0", NULL };
	pid_t pid;

	if (posix_spawnp(&pid, "modprobe", NULL, NULL, argv, environ) == 0)
		waitpid(pid, NULL, 0);
}

static int zram_up(uint64_t size, struct bmem_result *res)
{
	char buf[64], p[96];
	int ret;

	if (access(HOT_ADD, F_OK) < 0)
		load_zram();
	if ((ret = get_str(HOT_ADD, buf, sizeof(buf))) < 0)
		return fail(res, ret, "no zram device can be made (" HOT_ADD ")");
	su.zram = atoi(buf);
	snprintf(su.num, sizeof(su.num), "%d", su.zram);
	snprintf(su.dev, sizeof(su.dev), "/dev/zram%d", su.zram);
	snprintf(su.reset, sizeof(su.reset), "/sys/block/zram%d/reset", su.zram);
	snprintf(p, sizeof(p), "/sys/block/zram%d/comp_algorithm", su.zram);
	if ((ret = put(p, "lz4")) < 0)
		return fail(res, ret, "zram: lz4");
	snprintf(p, sizeof(p), "/sys/block/zram%d/disksize", su.zram);
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)size);
	if ((ret = put(p, buf)) < 0)
		return fail(res, ret, "zram: disksize");
	if ((ret = write_swap_header(su.dev, size)) < 0)
		return fail(res, ret, "zram: writing the swap header");
	if (swapon(su.dev, SWAP_FLAG_PREFER | (SWAP_PRIO << SWAP_FLAG_PRIO_SHIFT)) < 0)
		return fail(res, -errno, "swapon");
	su.swap_on = 1;
	return 0;
}

/* The mount point of the hierarchy with the memory controller: v2 when it
 * is there, else v1's. @v1_path: our cgroup in the v1 hierarchy. */
static int find_memcg(char *mnt, size_t len, char *v1_path, size_t plen)
{
	char line[512], dev[64], dir[256], type[32], opts[256], ctl[256] = "";
	FILE *f = fopen("/proc/self/mounts", "r");
	bool v1 = false;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%63s %255s %31s %255s", dev, dir, type, opts) != 4)
			continue;
		if (strcmp(type, "cgroup2") == 0) {
			char p[300];
			snprintf(p, sizeof(p), "%s/cgroup.controllers", dir);
			if (get_str(p, ctl, sizeof(ctl)) == 0 && strstr(ctl, "memory")) {
				snprintf(mnt, len, "%s", dir);
				fclose(f);
				cgk.v2 = true;
				return 0;
			}
		} else if (strcmp(type, "cgroup") == 0 && strstr(opts, "memory") && !v1) {
			snprintf(mnt, len, "%s", dir);
			v1 = true;
		}
	}
	fclose(f);
	if (!v1)
		return -ENOENT;
	/* Under our own v1 memory cgroup: the hierarchy we are allowed in. */
	v1_path[0] = '\0';
	if ((f = fopen("/proc/self/cgroup", "r"))) {
		while (fgets(line, sizeof(line), f)) {
			char *c = strstr(line, ":memory:");
			if (c) {
				snprintf(v1_path, plen, "%s", c + 8);
				v1_path[strcspn(v1_path, "\n")] = '\0';
			}
		}
		fclose(f);
	}
	return 0;
}

static int cgroup_up(const struct bmem_opts *o, struct bmem_result *res)
{
	char mnt[256], own[256] = "", p[300], v[32];
	int ret;

	if ((ret = find_memcg(mnt, sizeof(mnt), own, sizeof(own))) < 0)
		return fail(res, ret, "no memory cgroup hierarchy is mounted");
	if (cgk.v2) {
		snprintf(cgk.limit, sizeof(cgk.limit), "memory.max");
		snprintf(cgk.swap, sizeof(cgk.swap), "memory.swap.current");
		snprintf(cgk.usage, sizeof(cgk.usage), "memory.current");
		snprintf(p, sizeof(p), "%s/cgroup.subtree_control", mnt);
		(void)put(p, "+memory"); /* already on, or refused: mkdir tells */
		snprintf(su.cg, sizeof(su.cg), "%.200s/wave-bench-mem.%d", mnt, (int)getpid());
	} else {
		snprintf(cgk.limit, sizeof(cgk.limit), "memory.limit_in_bytes");
		snprintf(cgk.swap, sizeof(cgk.swap), "memory.stat");
		snprintf(cgk.usage, sizeof(cgk.usage), "memory.usage_in_bytes");
		snprintf(su.cg, sizeof(su.cg), "%.100s%.100s/wave-bench-mem.%d",
			 mnt, strcmp(own, "/") ? own : "", (int)getpid());
	}
	if (mkdir(su.cg, 0755) < 0) {
		ret = -errno;
		su.cg[0] = '\0';
		return fail(res, ret, "cannot make a memory cgroup");
	}
	snprintf(p, sizeof(p), "%s/%s", su.cg, cgk.limit);
	snprintf(v, sizeof(v), "%llu", (unsigned long long)(o->fast_bytes + SLACK_BYTES));
	if ((ret = put(p, v)) < 0)
		return fail(res, ret, "cannot limit the cgroup's memory");
	return 0;
}

/* ---- watching ------------------------------------------------------------------- */

static uint64_t cg_value(const char *file, const char *key)
{
	char p[300], line[128];
	unsigned long long v = 0;
	size_t kl = key ? strlen(key) : 0;
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", su.cg, file);
	if (!(f = fopen(p, "r")))
		return 0;
	while (fgets(line, sizeof(line), f))
		if (!key ? sscanf(line, "%llu", &v) == 1
			 : strncmp(line, key, kl) == 0 && line[kl] == ' ' &&
				   sscanf(line + kl, "%llu", &v) == 1)
			break;
	fclose(f);
	return v;
}

/* The kernel's swap-ins plus swap-outs so far, in pages. */
static uint64_t swap_moves(void)
{
	char line[128];
	unsigned long long v, sum = 0;
	FILE *f = fopen("/proc/vmstat", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if ((sscanf(line, "pswpin %llu", &v) == 1) || sscanf(line, "pswpout %llu", &v) == 1)
			sum += v;
	fclose(f);
	return sum;
}

/* The child's major faults so far (/proc/PID/stat, field 12). */
static uint64_t majflt(pid_t pid)
{
	char p[64], buf[1024], *s;
	unsigned long long v = 0;
	FILE *f;

	snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
	if (!(f = fopen(p, "r")))
		return 0;
	if (fgets(buf, sizeof(buf), f) && (s = strrchr(buf, ')')))
		if (sscanf(s + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %llu", &v) != 1)
			v = 0;
	fclose(f);
	return v;
}

/* Samples the cgroup every tick of the child's timed phase. */
static int watch(const struct bmem_opts *o, struct bmem_result *res, pid_t pid)
{
	uint64_t mv0 = 0, mf0 = 0, next = 0;
	int seen = 0, status = 0, cpus[2] = { o->worker_cpu, o->agent_cpu };
	struct bench_watch wt;
	bool watched = false;
	pid_t r;

	while ((r = waitpid(pid, &status, WNOHANG)) == 0) {
		int ph = atomic_load(&res->phase);
		struct timespec ts = { 0, 1000000 };

		if (ph == 1 && seen == 0) {
			mv0 = swap_moves();
			mf0 = majflt(pid);
			next = bmem_now_ns();
			watched = bench_watch_begin(&wt, &pid, 1, cpus,
						    cpus[0] == cpus[1] ? 1 : 2) == 0;
		} else if (ph == 2 && seen == 1) {
			res->moves = swap_moves() - mv0;
			res->far_accesses = majflt(pid) - mf0;
			res->offcpu = watched ? bench_watch_end(&wt) : 0;
		}
		seen = ph;
		if (ph == 1 && bmem_now_ns() >= next) {
			uint64_t swap = cg_value(cgk.swap, cgk.v2 ? NULL : "swap");
			double use = (double)cg_value(cgk.usage, NULL) / (double)o->fast_bytes;
			res->far_share_sum += (double)swap / (double)o->ws_bytes;
			res->far_samples++;
			res->fast_peak = use > res->fast_peak ? use : res->fast_peak;
			next += BMEM_TICK_NS;
		}
		nanosleep(&ts, NULL);
	}
	su.child = -1; /* reaped */
	return r < 0 ? -errno : status;
}

/* ---- the child ---------------------------------------------------------------------- */

static void child(const struct bmem_opts *o, struct bmem_load *l, struct bmem_result *res,
		  int go)
{
	struct bmem_hooks h = { 0 };
	char c;
	char *base;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (read(go, &c, 1) != 1 || bmem_pin(o->worker_cpu) < 0)
		_exit(2);
	base = mmap(NULL, o->ws_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED)
		_exit(3);
	bmem_load_fill(l, base);
	if (bmem_load_run(l, &h, res) < 0)
		_exit(4);
	bmem_load_check(l, res);
	_exit(0);
}

static int run_child(const struct bmem_opts *o, struct bmem_load *l, struct bmem_result *res)
{
	char p[300], pid_s[24];
	int go[2], status, ret;
	pid_t pid;

	if (pipe(go) < 0)
		return fail(res, -errno, "pipe");
	if ((pid = fork()) < 0) {
		close(go[0]);
		close(go[1]);
		return fail(res, -errno, "fork");
	}
	if (pid == 0) {
		close(go[1]);
		child(o, l, res, go[0]);
	}
	su.child = pid;
	close(go[0]);
	utoa((unsigned long)pid, pid_s);
	snprintf(p, sizeof(p), "%s/cgroup.procs", su.cg);
	ret = put(p, pid_s);
	if (ret == 0 && write(go[1], "g", 1) != 1)
		ret = -EIO;
	close(go[1]);
	if (ret < 0)
		return fail(res, ret, "cannot move the child into the cgroup");
	(void)bmem_pin(o->agent_cpu);
	status = watch(o, res, pid);
	(void)bmem_pin(o->worker_cpu);
	if (status < 0)
		return fail(res, status, "waitpid");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		snprintf(res->note, sizeof(res->note), "the child failed (%s %d%s)",
			 WIFEXITED(status) ? "exit" : "signal",
			 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
			 WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL
				 ? ": the cgroup's OOM killer?" : "");
		return -EIO;
	}
	return 0;
}

int bmem_run_linux(const struct bmem_opts *o, struct bmem_load *l, struct bmem_result *res)
{
	int ret;

	if (geteuid() != 0) {
		snprintf(res->note, sizeof(res->note),
			 "skipped: not root (the peer needs a memory cgroup, a zram device "
			 "and swapon)");
		return 1;
	}
	ret = cgroup_up(o, res);
	if (ret == 0)
		ret = zram_up(2 * o->ws_bytes, res);
	if (ret < 0) {
		bmem_linux_cleanup();
		char why[sizeof(res->note)];
		snprintf(why, sizeof(why), "%s", res->note);
		snprintf(res->note, sizeof(res->note), "skipped: %.180s", why);
		return 1;
	}
	ret = run_child(o, l, res);
	bmem_linux_cleanup();
	res->ok = ret == 0 && res->bad == 0;
	return ret;
}
