/* SPDX-License-Identifier: MIT */
/*
 * Metrics an operator's tools read: a real wave-agentd with "metrics" and
 * a stats_socket serves a real host; GET /metrics over TCP and wave-stat
 * --prometheus must both be valid Prometheus text and count the traffic
 * sent. The endpoint refuses other paths and methods; a port in use stops
 * the start with its reason; a reload cannot move the endpoint.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chan_util.h"
#include "check_run.h"
#include "prom_check.h"
#include "session_util.h"

static char dir[64];

static void nap_ms(long ms)
{
	struct timespec ts = { 0, ms * 1000000L };

	nanosleep(&ts, NULL);
}

/* The port the daemon printed ("metrics on http://127.0.0.1:PORT/metrics"),
 * waiting for it; 0 when the daemon @pid exited instead. */
static unsigned wait_port(pid_t pid)
{
	char path[128], buf[4096];
	const char *p;
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/agentd.log", dir);
	for (;;) {
		if ((f = fopen(path, "r"))) {
			n = fread(buf, 1, sizeof(buf) - 1, f);
			fclose(f);
			buf[n] = '\0';
			if ((p = strstr(buf, "metrics on http://127.0.0.1:")) && strchr(p, '\n'))
				return (unsigned)atoi(p + strlen("metrics on http://127.0.0.1:"));
		}
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return 0;
		nap_ms(10); /* the test's timeout catches a daemon that never says */
	}
}

/* Sends @request to 127.0.0.1:@port and returns the whole answer
 * (malloc'd); the server closes the connection after it. */
static char *http(unsigned port, const char *request)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);
	ssize_t r;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_ptr_nonnull(buf);
	ck_assert_int_ge(fd, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(send(fd, request, strlen(request), MSG_NOSIGNAL), (ssize_t)strlen(request));
	while ((r = read(fd, buf + n, cap - 1 - n)) > 0 || (r < 0 && errno == EINTR)) {
		if (r > 0)
			n += (size_t)r;
		ck_assert_uint_lt(n, cap - 1);
	}
	close(fd);
	buf[n] = '\0';
	return buf;
}

/* GET /metrics: status 200, the exposition format's content type; returns
 * the body (malloc'd). */
static char *get_metrics(unsigned port)
{
	char *ans = http(port, "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
	char *body = strstr(ans, "\r\n\r\n"), *out;

	ck_assert_msg(strncmp(ans, "HTTP/1.1 200 ", 13) == 0, "%s", ans);
	ck_assert_msg(strstr(ans, "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
		      "%s", ans);
	ck_assert_ptr_nonnull(body);
	out = strdup(body + 4);
	free(ans);
	return out;
}

/* wave-stat --prometheus SOCKET; returns its output (malloc'd). */
static char *stat_prometheus(const char *sock)
{
	char cmd[300], *out = malloc(1 << 16);
	size_t n;
	FILE *p;

	ck_assert_ptr_nonnull(out);
	snprintf(cmd, sizeof(cmd), "%s --prometheus %s", WAVE_STAT, sock);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	n = fread(out, 1, (1 << 16) - 1, p);
	out[n] = '\0';
	ck_assert_int_eq(pclose(p), 0);
	return out;
}

static unsigned want;

static bool answered_want(const struct app *a)
{
	return a->answered >= want;
}

static const char *config(unsigned port)
{
	char extra[300];

	snprintf(extra, sizeof(extra),
		 "\"stats_socket\": \"%s/stats.sock\", \"metrics\": { \"port\": %u },", dir, port);
	return write_config(dir, extra, "{ \"workers\": 4 }");
}

START_TEST(metrics_count_real_traffic)
{
	struct wave_host_opts o;
	struct wave_error err;
	struct app app;
	char uri[128], sock[128], *body, *text, *ans;
	unsigned port;
	pid_t pid;

	tmpdir_make(dir);
	pid = daemon_start(config(0));
	port = wait_port(pid);
	ck_assert_uint_gt(port, 0);

	snprintf(uri, sizeof(uri), "shm://%s/agent.sock", dir);
	app_opts(&app, &o);
	ck_assert_int_eq(app_connect(&app, uri, &o, &err, true), 0);
	/* 40 asks answered, 2 reports for a worker that does not exist
	 * (an error each). */
	for (unsigned k = 1; k <= 40; k++)
		app_ask(&app, k);
	app_load(&app, LOAD_KEY_BASE, 1000, 1);
	app_load(&app, LOAD_KEY_BASE + 1, 1000, 1);
	want = 40;
	app_poll_until(&app, answered_want);

	body = get_metrics(port);
	ck_assert_uint_gt(prom_check(body), 10);
	ck_assert_double_eq(prom_value(body, "wave_agent_hosts "), 1);
	ck_assert_double_eq(prom_value(body, "wave_agent_hosts_accepted_total "), 1);
	ck_assert_double_eq(prom_value(body, "wave_agent_hosts_dead_total "), 0);
	/* The host's series carry host, domain and plugin. */
	ck_assert_ptr_nonnull(strstr(body, "wave_events_total{host=\""));
	ck_assert_ptr_nonnull(strstr(body, "\",domain=\"custom\",plugin=\"least_loaded\"} 42\n"));
	ck_assert_double_eq(prom_value(body, "wave_events_total{"), 42);
	ck_assert_double_eq(prom_value(body, "wave_errors_total{"), 2);
	ck_assert_double_ge(prom_value(body, "wave_decisions_total{"), 40);
	ck_assert_double_eq(prom_value(body, "wave_decision_latency_samples_total{"), 40);
	{
		/* The host's p50 and p99: numbers of seconds, in order. */
		const char *p50 = strstr(body, "wave_decision_latency_seconds{host=");
		const char *p99 = p50 ? strstr(p50, ",quantile=\"0.99\"} ") : NULL;

		ck_assert_ptr_nonnull(p99);
		p50 = strstr(p50, ",quantile=\"0.5\"} ");
		ck_assert_ptr_nonnull(p50);
		ck_assert_double_gt(strtod(strchr(p50, ' ') + 1, NULL), 0);
		ck_assert_double_le(strtod(strchr(p50, ' ') + 1, NULL),
				    strtod(strchr(p99, ' ') + 1, NULL));
		ck_assert_double_lt(strtod(strchr(p99, ' ') + 1, NULL), 60); /* seconds, not ns */
	}
	ck_assert_double_eq(prom_value(body, "wave_plugin_events_total{domain=\"custom\","
					     "plugin=\"least_loaded\"}"), 42);
	ck_assert_ptr_nonnull(strstr(body, ",counter=\"bad_events\"} 2\n"));

	/* wave-stat --prometheus reads the same counts from the socket. */
	snprintf(sock, sizeof(sock), "%s/stats.sock", dir);
	text = stat_prometheus(sock);
	prom_check(text);
	ck_assert_double_eq(prom_value(text, "wave_events_total{"), 42);
	ck_assert_double_eq(prom_value(text, "wave_errors_total{"), 2);
	ck_assert_double_eq(prom_value(text, "wave_plugin_events_total{"), 42);
	free(text);
	free(body);

	/* Only GET (and HEAD) of /metrics. */
	ans = http(port, "GET /other HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	ck_assert_msg(strncmp(ans, "HTTP/1.1 404 ", 13) == 0, "%s", ans);
	free(ans);
	ans = http(port, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
			 "Connection: close\r\n\r\n");
	ck_assert_msg(strncmp(ans, "HTTP/1.1 405 ", 13) == 0, "%s", ans);
	ck_assert_ptr_nonnull(strstr(ans, "\r\nAllow: GET, HEAD\r\n"));
	free(ans);

	wave_host_close(app.h);
	ck_assert_int_eq(WEXITSTATUS(daemon_kill(pid, SIGTERM)), 0);
	tmpdir_rm(dir);
}
END_TEST

/* A port someone else holds: the daemon does not start, and says why. */
START_TEST(metrics_port_in_use_stops_the_start)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), status;
	char expect[128];
	pid_t pid;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(fd, 1), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	tmpdir_make(dir);
	pid = daemon_start(config(ntohs(sa.sin_port)));
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 1);
	snprintf(expect, sizeof(expect), "wave-agentd: metrics: cannot listen on 127.0.0.1 port %u: "
		 "Address already in use", (unsigned)ntohs(sa.sin_port));
	ck_assert_msg(agentd_dir_log_has(dir, expect), "no '%s' in the log", expect);
	close(fd);
	tmpdir_rm(dir);
}
END_TEST

/* The endpoint cannot move while the daemon runs: a reload that changes
 * it is refused, and it keeps serving where it was. */
START_TEST(metrics_fixed_across_reload)
{
	unsigned port;
	pid_t pid;
	char *body;

	tmpdir_make(dir);
	pid = daemon_start(config(0));
	port = wait_port(pid);
	ck_assert_uint_gt(port, 0);
	config(port == 65535 ? 1 : port + 1);
	ck_assert_int_eq(kill(pid, SIGHUP), 0);
	while (!agentd_dir_log_has(dir, "reload refused"))
		nap_ms(10);
	ck_assert(agentd_dir_log_has(dir, "stats_socket and metrics cannot change while the agent runs"));
	body = get_metrics(port);
	prom_check(body);
	free(body);
	ck_assert_int_eq(WEXITSTATUS(daemon_kill(pid, SIGTERM)), 0);
	tmpdir_rm(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("metrics");

	tcase_add_test(tc, metrics_count_real_traffic);
	tcase_add_test(tc, metrics_port_in_use_stops_the_start);
	tcase_add_test(tc, metrics_fixed_across_reload);
	suite_add_tcase(s, tc);
	return wave_check_run(s);
}
