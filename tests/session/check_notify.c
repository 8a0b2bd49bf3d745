/* SPDX-License-Identifier: MIT */
/*
 * wave-agentd under a service manager, without one: the test owns the
 * NOTIFY_SOCKET (a datagram socket, as systemd's) and reads what the
 * daemon tells it. READY=1 comes once hosts can connect; SIGHUP brings
 * RELOADING=1 (with MONOTONIC_USEC) then READY=1; SIGTERM STOPPING=1;
 * WATCHDOG=1 comes while the agent loop turns, and stops when a plugin
 * holds the loop, so that the manager would restart the daemon.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chan_util.h"
#include "check_run.h"
#include "session_util.h"

/* The watchdog period the test asks for: WATCHDOG=1 every 25 ms. */
#define WATCHDOG_USEC "50000"

static char dir[64];

/* The socket the daemon notifies, made before it starts. */
static int notify_socket(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/notify.sock", dir);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(setenv("NOTIFY_SOCKET", sa.sun_path, 1), 0);
	ck_assert_int_eq(setenv("WATCHDOG_USEC", WATCHDOG_USEC, 1), 0);
	return fd;
}

static pid_t start(const char *cfg)
{
	pid_t pid = daemon_start(cfg);

	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	return pid;
}

/* The next message, waiting up to @ms (-1: for ever; the test's timeout
 * catches a daemon that never says it). Return: false on timeout. */
static bool next_msg(int fd, char *buf, size_t size, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t n;

	if (poll(&p, 1, ms) == 0)
		return false;
	n = recv(fd, buf, size - 1, 0);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	return true;
}

/* The next message that is not a watchdog heartbeat; counts those. */
static void next_state(int fd, char *buf, size_t size, unsigned *watchdogs)
{
	do
		next_msg(fd, buf, size, -1);
	while (strcmp(buf, "WATCHDOG=1") == 0 && ++*watchdogs);
}

START_TEST(notify_states_and_watchdog)
{
	struct wave_host_opts o;
	struct wave_error err;
	struct app app;
	unsigned watchdogs = 0;
	char msg[256], uri[128];
	int fd, status;
	pid_t pid;

	tmpdir_make(dir);
	fd = notify_socket();
	pid = start(write_config(dir, "", "{}"));
	next_state(fd, msg, sizeof(msg), &watchdogs);
	ck_assert_str_eq(msg, "READY=1\nSTATUS=serving");
	/* Ready means listening: a host connects at the first try. */
	snprintf(uri, sizeof(uri), "shm://%s/agent.sock", dir);
	app_opts(&app, &o);
	ck_assert_int_eq(app_connect(&app, uri, &o, &err, false), 0);
	/* Heartbeats while the loop turns. */
	while (watchdogs < 3) {
		ck_assert(next_msg(fd, msg, sizeof(msg), -1));
		ck_assert_str_eq(msg, "WATCHDOG=1");
		watchdogs++;
	}
	ck_assert_int_eq(kill(pid, SIGHUP), 0);
	next_state(fd, msg, sizeof(msg), &watchdogs);
	ck_assert_msg(strncmp(msg, "RELOADING=1\nMONOTONIC_USEC=", 27) == 0, "%s", msg);
	next_state(fd, msg, sizeof(msg), &watchdogs);
	ck_assert_str_eq(msg, "READY=1");
	ck_assert(agentd_dir_log_has(dir, "configuration reloaded"));
	/* A refused reload is still answered with READY=1. */
	{
		FILE *f = fopen(write_config(dir, "", "{}"), "w");

		ck_assert_ptr_nonnull(f);
		fputs("{ not json", f);
		fclose(f);
	}
	ck_assert_int_eq(kill(pid, SIGHUP), 0);
	next_state(fd, msg, sizeof(msg), &watchdogs);
	ck_assert_msg(strncmp(msg, "RELOADING=1\n", 12) == 0, "%s", msg);
	next_state(fd, msg, sizeof(msg), &watchdogs);
	ck_assert_str_eq(msg, "READY=1");
	wave_host_close(app.h);
	ck_assert_int_eq(kill(pid, SIGTERM), 0);
	next_state(fd, msg, sizeof(msg), &watchdogs);
	ck_assert_str_eq(msg, "STOPPING=1");
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	close(fd);
	tmpdir_rm(dir);
}
END_TEST

/* A plugin that never returns holds the agent loop: the heartbeats stop
 * (one already on its way may still come), the daemon is left to the
 * manager's watchdog. A heartbeat after that would be a lie, so the test
 * cannot pass by chance; a slow machine only makes the silence longer. */
START_TEST(watchdog_stops_when_loop_is_stuck)
{
	struct wave_host_opts o;
	struct wave_error err;
	struct app app;
	char msg[256], uri[128], cfg[128], marker[128];
	unsigned watchdogs = 0, late = 0;
	int fd;
	FILE *f;
	pid_t pid;

	tmpdir_make(dir);
	fd = notify_socket();
	snprintf(cfg, sizeof(cfg), "%s/agent.json", dir);
	snprintf(marker, sizeof(marker), "%s/stuck", dir);
	snprintf(uri, sizeof(uri), "shm://%s/agent.sock", dir);
	f = fopen(cfg, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "{ \"listen\": [\"%s\"], \"plugin_path\": [\"%s\"],\n"
		   "  \"heartbeat\": { \"period_ms\": 50, \"timeout_ms\": 60000 },\n"
		   "  \"domains\": { \"custom\": { \"plugin\": \"hangs\",\n"
		   "                 \"params\": { \"marker\": \"%s\" } } } }\n",
		uri, WAVE_TEST_PLUGIN_DIR, marker);
	ck_assert_int_eq(fclose(f), 0);
	pid = start(cfg);
	next_state(fd, msg, sizeof(msg), &watchdogs);
	ck_assert_str_eq(msg, "READY=1\nSTATUS=serving");
	while (watchdogs < 2) {
		ck_assert(next_msg(fd, msg, sizeof(msg), -1));
		watchdogs++;
	}
	app_opts(&app, &o);
	o.heartbeat_timeout_ms = 60000;
	ck_assert_int_eq(app_connect(&app, uri, &o, &err, false), 0);
	app_ask(&app, 1);
	while (access(marker, F_OK) != 0)
		ck_assert_int_ge(wave_host_poll(app.h, WAVE_MS(10)), 0);
	/* What was sent before the plugin got stuck. */
	while (next_msg(fd, msg, sizeof(msg), 0))
		;
	/* 40 periods of silence, but for one heartbeat already on its way. */
	while (next_msg(fd, msg, sizeof(msg), 1000)) {
		ck_assert_str_eq(msg, "WATCHDOG=1");
		ck_assert_uint_le(++late, 1);
	}
	wave_host_close(app.h);
	/* Stuck for good: only SIGKILL (the manager's too) ends it. */
	daemon_kill(pid, SIGKILL);
	close(fd);
	tmpdir_rm(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("notify");
	TCase *tc = tcase_create("notify");

	tcase_add_test(tc, notify_states_and_watchdog);
	tcase_add_test(tc, watchdog_stops_when_loop_is_stuck);
	suite_add_tcase(s, tc);
	return wave_check_run(s);
}
