/* SPDX-License-Identifier: MIT */
/*
 * The agent of one benchmark run: an agent thread of this process or a
 * wave-agentd process (see bench_agentd.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <wave/wave.h>

#include "bench_agentd.h"

static void *agent_thread(void *arg)
{
	struct bench_agentd *ar = arg;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(ar->agent_cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) < 0 || wave_agent_run(ar->a) < 0)
		fprintf(stderr, "bench: the on-host agent failed\n");
	return NULL;
}

static int start_onhost(struct bench_agentd *ar)
{
	struct wave_error err;
	int ret = wave_config_load(ar->conf, &ar->cfg, &err);

	if (ret == 0)
		ret = wave_agent_create(ar->cfg, &ar->a, &err);
	if (ret < 0) {
		fprintf(stderr, "bench: on-host agent: %s\n", err.text);
		return ret;
	}
	ret = -pthread_create(&ar->thr, NULL, agent_thread, ar);
	if (ret < 0) {
		wave_agent_destroy(ar->a);
		ar->a = NULL;
	}
	return ret;
}

static int start_daemon(struct bench_agentd *ar, const char *agentd)
{
	struct stat st;

	ar->pid = fork();
	if (ar->pid < 0)
		return -errno;
	if (ar->pid == 0) {
		/* Its output goes to a log, shown only when it fails. */
		int log = open(ar->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (log >= 0) {
			dup2(log, STDOUT_FILENO);
			dup2(log, STDERR_FILENO);
		}
		execl(agentd, "wave-agentd", "--config", ar->conf, (char *)NULL);
		_exit(127);
	}
	/* Its socket appears once it listens. The bound only catches a hang: a
	 * loaded machine was seen to need more than five seconds. */
	for (int i = 0; i < 30000; i++) {
		if (stat(ar->sock, &st) == 0)
			return 0;
		if (waitpid(ar->pid, NULL, WNOHANG) == ar->pid) {
			ar->pid = -1;
			return -ECHILD;
		}
		usleep(1000);
	}
	return -ETIMEDOUT;
}

/* Copies the daemon's log to our stderr. */
static void show_log(const struct bench_agentd *ar)
{
	char buf[4096];
	FILE *f = fopen(ar->log, "r");
	size_t n;

	if (!f)
		return;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, n, stderr);
	fclose(f);
}

void bench_agentd_stop(struct bench_agentd *ar, bool failed)
{
	if (ar->a) {
		wave_agent_stop(ar->a);
		pthread_join(ar->thr, NULL);
		wave_agent_destroy(ar->a);
		ar->a = NULL;
	}
	wave_config_free(ar->cfg);
	ar->cfg = NULL;
	if (ar->pid > 0) {
		kill(ar->pid, SIGTERM);
		waitpid(ar->pid, NULL, 0);
		ar->pid = -1;
	}
	if (failed)
		show_log(ar);
	unlink(ar->log);
	unlink(ar->conf);
	unlink(ar->sock);
	rmdir(ar->dir);
}

static int write_conf(struct bench_agentd *ar, bench_agentd_conf_fn conf, void *arg)
{
	FILE *f = fopen(ar->conf, "w");
	int ret;

	if (!f)
		return -errno;
	ret = conf(f, ar->uri, arg);
	if (fclose(f) != 0 && ret == 0)
		ret = -EIO;
	return ret;
}

int bench_agentd_start(struct bench_agentd *ar, const char *tag, int agent_cpu, bool onhost,
		       const char *agentd, bench_agentd_conf_fn conf, void *arg)
{
	int ret;

	memset(ar, 0, sizeof(*ar));
	ar->pid = -1;
	ar->agent_cpu = agent_cpu;
	snprintf(ar->dir, sizeof(ar->dir), "/tmp/%.24s.XXXXXX", tag);
	if (!mkdtemp(ar->dir))
		return -errno;
	snprintf(ar->sock, sizeof(ar->sock), "%s/agent.sock", ar->dir);
	snprintf(ar->conf, sizeof(ar->conf), "%s/agent.json", ar->dir);
	snprintf(ar->log, sizeof(ar->log), "%s/agentd.log", ar->dir);
	snprintf(ar->uri, sizeof(ar->uri), "shm://%s", ar->sock);
	ret = write_conf(ar, conf, arg);
	if (ret == 0)
		ret = onhost ? start_onhost(ar) : start_daemon(ar, agentd);
	if (ret < 0)
		bench_agentd_stop(ar, true);
	return ret;
}

/* The run time of one thread, from /proc/PID/task/TID/schedstat (ns). */
static uint64_t task_ns(pid_t pid, const char *tid)
{
	char path[96];
	unsigned long long ns = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%.20s/schedstat", (int)pid, tid);
	if (!(f = fopen(path, "r")))
		return 0;
	if (fscanf(f, "%llu", &ns) != 1)
		ns = 0;
	fclose(f);
	return ns;
}

uint64_t bench_agentd_cpu_ns(const struct bench_agentd *ar)
{
	char path[64];
	struct dirent *e;
	uint64_t ns = 0;
	DIR *d;

	if (ar->a) {
		clockid_t c;
		struct timespec ts;
		if (pthread_getcpuclockid(ar->thr, &c) != 0 || clock_gettime(c, &ts) != 0)
			return 0;
		return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	}
	if (ar->pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)ar->pid);
	if (!(d = opendir(path)))
		return 0;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			ns += task_ns(ar->pid, e->d_name);
	closedir(d);
	return ns;
}
