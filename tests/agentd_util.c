/* SPDX-License-Identifier: MIT */
/* wave-agentd for integration tests (agentd_util.h). */
#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_run.h"
#include "agentd_util.h"

void agentd_init(struct agentd *e, const char *name, const char *uri)
{
	char tmpl[sizeof(e->dir)];

	memset(e, 0, sizeof(*e));
	ck_assert_int_lt(snprintf(tmpl, sizeof(tmpl), "/tmp/wave-%s-XXXXXX", name),
			 (int)sizeof(tmpl));
	ck_assert_ptr_nonnull(mkdtemp(tmpl));
	snprintf(e->dir, sizeof(e->dir), "%s", tmpl);
	snprintf(e->cfg, sizeof(e->cfg), "%s/agent.json", e->dir);
	if (uri)
		snprintf(e->uri, sizeof(e->uri), "%s", uri);
	else
		snprintf(e->uri, sizeof(e->uri), "shm://%s/agent.sock", e->dir);
}

void agentd_write_cfg(struct agentd *e, const char *plugin_dir, const char *domains)
{
	char tmp[160];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", e->cfg);
	f = fopen(tmp, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f,
		"{\"listen\": [\"%s\"], \"heartbeat\": {\"period_ms\": 50, \"timeout_ms\": 5000},\n"
		" \"plugin_path\": [\"%s\"],\n"
		" \"domains\": %s}\n",
		e->uri, plugin_dir, domains);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(rename(tmp, e->cfg), 0);
}

pid_t agentd_spawn(const char *agentd, const char *cfg, const char *log, bool log_info)
{
	extern char **environ;
	static char info[] = "WAVE_LOG=info";
	char *argv[] = { (char *)agentd, "--config", (char *)cfg, NULL }, **envp;
	size_t n = 0, k = 0;
	pid_t pid;
	int fd;

	/* Everything is made before the fork: until its exec, the child of
	 * a threaded process may only make async-signal-safe calls (a lock
	 * another thread held at the fork stays held in the child). */
	while (environ[n])
		n++;
	envp = calloc(n + 2, sizeof(*envp));
	ck_assert_ptr_nonnull(envp);
	for (size_t i = 0; i < n; i++)
		if (!log_info || strncmp(environ[i], "WAVE_LOG=", 9) != 0)
			envp[k++] = environ[i];
	if (log_info)
		envp[k++] = info; /* reloads are logged at info */
	pid = test_fork();
	if (pid == 0) {
		fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (fd >= 0)
			dup2(fd, STDERR_FILENO);
		execve(agentd, argv, envp);
		_exit(127);
	}
	free(envp);
	return pid;
}

void agentd_start(struct agentd *e, const char *agentd)
{
	char log[160];

	snprintf(log, sizeof(log), "%s/agentd.log", e->dir);
	e->pid = agentd_spawn(agentd, e->cfg, log, true);
}

void agentd_kill(struct agentd *e, int sig)
{
	int status;

	ck_assert_int_eq(kill(e->pid, sig), 0);
	ck_assert_int_eq(waitpid(e->pid, &status, 0), e->pid);
	e->pid = 0;
}

bool agentd_dir_log_has(const char *dir, const char *text)
{
	char path[300], buf[1 << 16];
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/agentd.log", dir);
	f = fopen(path, "r");
	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, text) != NULL;
}

bool agentd_log_has(const struct agentd *e, const char *text)
{
	return agentd_dir_log_has(e->dir, text);
}

void agentd_host_opts(struct wave_host_opts *ho, uint32_t heartbeat_timeout_ms,
		      uint32_t connect_timeout_ms)
{
	ck_assert_int_eq(wave_host_opts_init(ho), 0);
	ho->heartbeat_period_ms = 50;
	ho->heartbeat_timeout_ms = heartbeat_timeout_ms;
	ho->reconnect_min_ms = 1;
	ho->reconnect_max_ms = 20;
	ho->connect_timeout_ms = connect_timeout_ms;
}

void agentd_fini(struct agentd *e)
{
	char path[200];

	if (e->pid)
		agentd_kill(e, SIGTERM);
	snprintf(path, sizeof(path), "%s/agentd.log", e->dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/agent.sock", e->dir);
	unlink(path);
	unlink(e->cfg);
	rmdir(e->dir);
}
