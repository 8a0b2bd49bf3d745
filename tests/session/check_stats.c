/* SPDX-License-Identifier: MIT */
/*
 * The agent's statistics while it runs: a real wave-agentd with a
 * stats_socket serves real host sessions, and the wave-stat tool reads
 * what it counted. The counters must match the traffic sent, per host, per
 * domain and per plugin; readers that never read must not hold up the
 * hosts; wave-stat's errors say what is wrong.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "chan_util.h"
#include "check_run.h"
#include "session_util.h"

/* ---- running wave-stat ---------------------------------------------------- */

struct stat_run {
	int status; /* exit status, or -1 when it did not exit */
	char out[1 << 16];
	char err[4096];
};

static void slurp(int fd, char *buf, size_t cap)
{
	size_t n = 0;
	ssize_t r;

	while (n + 1 < cap && ((r = read(fd, buf + n, cap - 1 - n)) > 0 || (r < 0 && errno == EINTR)))
		if (r > 0)
			n += (size_t)r;
	buf[n] = '\0';
}

/* Starts wave-stat with @argv (NULL-terminated, without the program);
 * its stdout and stderr go to pipes (*out_fd, *err_fd). */
static pid_t stat_spawn(const char *const *argv, int *out_fd, int *err_fd)
{
	const char *args[8] = { WAVE_STAT };
	int po[2], pe[2];
	pid_t pid;
	size_t n = 1;

	while (*argv && n < 7)
		args[n++] = *argv++;
	args[n] = NULL;
	ck_assert_int_eq(pipe(po), 0);
	ck_assert_int_eq(pipe(pe), 0);
	pid = test_fork();
	if (pid == 0) {
		dup2(po[1], STDOUT_FILENO);
		dup2(pe[1], STDERR_FILENO);
		close(po[0]);
		close(pe[0]);
		execv(WAVE_STAT, (char *const *)args);
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	*out_fd = po[0];
	*err_fd = pe[0];
	return pid;
}

/* Waits for a wave-stat started by stat_spawn() and collects its output
 * (small: the pipes cannot fill up before it is read). */
static void stat_finish(pid_t pid, int out_fd, int err_fd, struct stat_run *r)
{
	int status;

	slurp(out_fd, r->out, sizeof(r->out));
	slurp(err_fd, r->err, sizeof(r->err));
	close(out_fd);
	close(err_fd);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	r->status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void stat_run(struct stat_run *r, const char *const *argv)
{
	int o, e;
	pid_t pid = stat_spawn(argv, &o, &e);

	stat_finish(pid, o, e, r);
}

/* wave-stat SOCKET, which must succeed; returns the document. */
static json_t *read_stats(const char *sock)
{
	static struct stat_run r;
	const char *argv[] = { sock, NULL };
	json_error_t jerr;
	json_t *doc;

	stat_run(&r, argv);
	ck_assert_msg(r.status == 0, "wave-stat exit %d: %s", r.status, r.err);
	ck_assert_str_eq(r.err, "");
	/* One line: the document and a newline. */
	ck_assert_ptr_eq(strchr(r.out, '\n'), r.out + strlen(r.out) - 1);
	doc = json_loads(r.out, 0, &jerr);
	ck_assert_msg(doc != NULL, "%s: %s", jerr.text, r.out);
	return doc;
}

/* ---- reading the document -------------------------------------------------- */

static uint64_t num(const json_t *o, const char *path)
{
	char buf[128], *key, *save = NULL;
	const json_t *v = o;

	snprintf(buf, sizeof(buf), "%s", path);
	for (key = strtok_r(buf, ".", &save); key; key = strtok_r(NULL, ".", &save))
		v = json_object_get(v, key);
	ck_assert_msg(json_is_integer(v), "%s: not an integer", path);
	ck_assert_int_ge(json_integer_value(v), 0);
	return (uint64_t)json_integer_value(v);
}

/* The host whose last sequence number is @last_seq. */
static const json_t *host_by_seq(const json_t *doc, uint64_t last_seq)
{
	const json_t *hosts = json_object_get(doc, "hosts"), *h, *found = NULL;
	size_t i;

	json_array_foreach(hosts, i, h)
		if (num(h, "last_seq") == last_seq) {
			ck_assert_ptr_null(found);
			found = h;
		}
	ck_assert_msg(found != NULL, "no host with last_seq %llu", (unsigned long long)last_seq);
	return found;
}

/* Counters of one host in the custom domain, or of the plugin. */
static void check_counts(const json_t *o, uint64_t events, uint64_t decisions, uint64_t errors)
{
	uint64_t p50 = num(o, "latency_ns.p50"), p99 = num(o, "latency_ns.p99");

	ck_assert_uint_eq(num(o, "events_in"), events);
	ck_assert_uint_eq(num(o, "decisions_out"), decisions);
	ck_assert_uint_eq(num(o, "errors"), errors);
	/* Every decision answered an event: one latency sample each. */
	ck_assert_uint_eq(num(o, "latency_ns.samples"), decisions);
	ck_assert_uint_gt(p50, 0);
	ck_assert_uint_le(p50, p99);
}

/* ---- the daemon ------------------------------------------------------------ */

static char dir[64], sock[128], uri[256];

/* A configuration without a plugin tick (no hints: every decision answers
 * an event) and with a heartbeat timeout no slow machine reaches. */
static pid_t start_agent(void)
{
	char path[128];
	FILE *f;

	tmpdir_make(dir);
	snprintf(sock, sizeof(sock), "%s/stats.sock", dir);
	snprintf(uri, sizeof(uri), "shm://%s/agent.sock", dir);
	snprintf(path, sizeof(path), "%s/agent.json", dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f,
		"{\n"
		"  \"listen\": [\"%s\"],\n"
		"  \"stats_socket\": \"%s\",\n"
		"  \"heartbeat\": { \"period_ms\": 50, \"timeout_ms\": 60000 },\n"
		"  \"plugin_path\": [\"%s\"],\n"
		"  \"domains\": { \"custom\": { \"plugin\": \"least_loaded\",\n"
		"                             \"params\": { \"workers\": 4 } } }\n"
		"}\n",
		uri, sock, WAVE_PLUGIN_BUILD_DIR);
	ck_assert_int_eq(fclose(f), 0);
	return daemon_start(path);
}

static void connect_host(struct app *app, struct wave_host_opts *o)
{
	struct wave_error err;
	int ret;

	app_opts(app, o);
	o->heartbeat_timeout_ms = 60000;
	ret = app_connect(app, uri, o, &err, true);
	ck_assert_msg(ret == 0, "%s: %s", wave_strerror(ret), err.text);
}

static unsigned want;

static bool answered_want(const struct app *a)
{
	return a->answered >= want;
}

/* @asks ASK events (keys 1..@asks), then @loads load reports and @bad
 * reports for a worker that does not exist (the plugin refuses them: an
 * error each); waits for every answer. Returns the events sent. */
static uint64_t traffic(struct app *app, unsigned asks, unsigned loads, unsigned bad)
{
	for (unsigned k = 1; k <= asks; k++)
		app_ask(app, k);
	for (unsigned i = 0; i < loads; i++)
		app_load(app, LOAD_KEY_BASE + i, i % 4, 10 + i);
	for (unsigned i = 0; i < bad; i++)
		app_load(app, LOAD_KEY_BASE + 1000 + i, 1000, 1);
	want = asks;
	app_poll_until(app, answered_want);
	return (uint64_t)asks + loads + bad;
}

static json_t *stats_until_hosts(size_t n)
{
	json_t *doc;

	/* The agent notices a closed host on its next turn; the test's
	 * timeout catches one that never does. */
	for (;;) {
		doc = read_stats(sock);
		if (json_array_size(json_object_get(doc, "hosts")) == n)
			return doc;
		json_decref(doc);
		usleep(10000);
	}
}

/* Two hosts with different traffic: each host's counters are its own,
 * the plugin's are their sums, and they outlive a host that leaves. */
START_TEST(stats_match_traffic)
{
	struct app a, b;
	struct wave_host_opts oa, ob;
	struct wave_host_stats st;
	const json_t *ha, *hb, *pl;
	json_t *doc, *doc2;
	pid_t pid = start_agent();
	uint64_t ev_a, ev_b;

	connect_host(&a, &oa);
	connect_host(&b, &ob);
	ev_a = traffic(&a, 300, 5, 3);
	ev_b = traffic(&b, 100, 0, 0);
	/* The host saw every answer come from the agent. */
	ck_assert_int_eq(wave_host_stats(a.h, &st), 0);
	ck_assert_uint_eq(st.events, ev_a);
	ck_assert_uint_eq(st.decisions_agent, 300);
	ck_assert_uint_eq(st.decisions_fallback + st.stale + st.duplicates + st.bad, 0);

	doc = read_stats(sock);
	ck_assert_uint_eq(json_array_size(json_object_get(doc, "hosts")), 2);
	ck_assert_uint_eq(num(doc, "hosts_accepted"), 2);
	ck_assert_uint_eq(num(doc, "hosts_refused"), 0);
	ck_assert_uint_eq(num(doc, "hosts_dead"), 0);
	ha = host_by_seq(doc, ev_a);
	hb = host_by_seq(doc, ev_b);
	ck_assert_str_eq(json_string_value(json_object_get(ha, "state")), "ready");
	check_counts(json_object_get(json_object_get(ha, "domains"), "custom"), ev_a, 300, 3);
	check_counts(json_object_get(json_object_get(hb, "domains"), "custom"), ev_b, 100, 0);
	/* The plugin's own counters, per host. */
	ck_assert_uint_eq(num(ha, "domains.custom.counters.answers"), 300);
	ck_assert_uint_eq(num(ha, "domains.custom.counters.bad_events"), 3);
	ck_assert_uint_eq(num(hb, "domains.custom.counters.bad_events"), 0);
	pl = json_object_get(json_object_get(doc, "plugins"), "custom");
	ck_assert_str_eq(json_string_value(json_object_get(pl, "name")), "least_loaded");
	check_counts(pl, ev_a + ev_b, 400, 3);

	/* --pretty prints the same document, indented. */
	{
		static struct stat_run r;
		const char *argv[] = { "--pretty", sock, NULL };

		stat_run(&r, argv);
		ck_assert_int_eq(r.status, 0);
		ck_assert_ptr_nonnull(strstr(r.out, "{\n  \"hosts\": ["));
		doc2 = json_loads(r.out, 0, NULL);
		ck_assert_ptr_nonnull(doc2);
		ck_assert(json_equal(doc, doc2));
		json_decref(doc2);
	}
	json_decref(doc);

	/* Host b leaves: the plugin keeps what it did, latencies included. */
	wave_host_close(b.h);
	doc = stats_until_hosts(1);
	check_counts(json_object_get(json_object_get(host_by_seq(doc, ev_a), "domains"), "custom"),
		     ev_a, 300, 3);
	check_counts(json_object_get(json_object_get(doc, "plugins"), "custom"), ev_a + ev_b, 400, 3);
	ck_assert_uint_eq(num(doc, "hosts_lost"), 0); /* it said goodbye */
	json_decref(doc);

	/* A host process that exits without closing its host is lost, not
	 * dead (it did not fall silent: its channel closed). */
	{
		struct app c;
		struct wave_host_opts oc;
		int status;
		pid_t child = test_fork();
		if (child == 0) {
			connect_host(&c, &oc);
			traffic(&c, 10, 0, 0);
			_exit(0);
		}
		ck_assert_int_eq(waitpid(child, &status, 0), child);
		ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		doc = stats_until_hosts(1);
		ck_assert_uint_eq(num(doc, "hosts_accepted"), 3);
		ck_assert_uint_eq(num(doc, "hosts_lost"), 1);
		ck_assert_uint_eq(num(doc, "hosts_dead"), 0);
		json_decref(doc);
	}

	wave_host_close(a.h);
	ck_assert_int_eq(WEXITSTATUS(daemon_kill(pid, SIGTERM)), 0);
	/* The agent removed its socket on the way out. */
	ck_assert_int_eq(access(sock, F_OK), -1);
	tmpdir_rm(dir);
}
END_TEST

/* A host whose channel does not stamp (WAVE_CHAN_F_NO_STAMP) is served as
 * any other, and the agent keeps no latency for its decisions: a stamp of
 * 0 would read as a latency of the machine's uptime. */
START_TEST(unstamped_host_has_no_latencies)
{
	struct app a;
	struct wave_host_opts o;
	struct wave_chan_opts co;
	struct wave_error err;
	const json_t *c;
	json_t *doc;
	pid_t pid = start_agent();
	uint64_t ev;

	app_opts(&a, &o);
	o.heartbeat_timeout_ms = 60000;
	ck_assert_int_eq(wave_chan_opts_init(&co), 0);
	co.flags = WAVE_CHAN_F_NO_STAMP;
	o.chan = &co;
	ck_assert_int_eq(app_connect(&a, uri, &o, &err, true), 0);
	ev = traffic(&a, 50, 0, 0);
	doc = read_stats(sock);
	c = json_object_get(json_object_get(host_by_seq(doc, ev), "domains"), "custom");
	ck_assert_uint_eq(num(c, "decisions_out"), 50);
	ck_assert_uint_eq(num(c, "latency_ns.samples"), 0);
	json_decref(doc);
	wave_host_close(a.h);
	ck_assert_int_eq(WEXITSTATUS(daemon_kill(pid, SIGTERM)), 0);
	tmpdir_rm(dir);
}
END_TEST

/* Readers that connect and never read, more than the agent serves at once
 * and than its backlog holds, and one that reads a byte at a time: hosts
 * keep being served (no fallback, every answer from the agent), and
 * wave-stat still gets the statistics. */
#define IDLE_READERS 64

START_TEST(stats_idle_readers_do_not_block)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int idle[IDLE_READERS], slow, n_idle = 0;
	struct app app;
	struct wave_host_opts o;
	pid_t pid = start_agent();
	json_t *doc;
	char c;

	connect_host(&app, &o);
	memcpy(sa.sun_path, sock, strlen(sock) + 1);
	for (int i = 0; i < IDLE_READERS; i++) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);

		ck_assert_int_ge(fd, 0);
		if (connect(fd, (const struct sockaddr *)&sa, sizeof(sa)) == 0) {
			idle[n_idle++] = fd;
			continue;
		}
		ck_assert_int_eq(errno, EAGAIN); /* the backlog is full: fine */
		close(fd);
	}
	ck_assert_int_gt(n_idle, 0);
	slow = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_ge(slow, 0);
	while (connect(slow, (const struct sockaddr *)&sa, sizeof(sa)) < 0) {
		ck_assert_int_eq(errno, EAGAIN);
		usleep(1000);
	}
	ck_assert_int_eq(read(slow, &c, 1), 1);
	ck_assert_int_eq(c, '{');

	/* Hosts are served meanwhile. */
	traffic(&app, 2000, 0, 0);
	ck_assert_uint_eq(app.agent_decisions, 2000);
	ck_assert_uint_eq(app.fallback_decisions, 0);
	ck_assert_uint_eq(app.to_fallback, 0);
	doc = read_stats(sock);
	ck_assert_uint_eq(num(json_object_get(json_object_get(doc, "plugins"), "custom"),
			      "decisions_out"), 2000);
	json_decref(doc);

	/* The slow reader still gets a whole document, then end of file. */
	{
		char buf[1 << 16];
		size_t n = 1;
		ssize_t r;

		buf[0] = c;
		while ((r = read(slow, buf + n, 1)) == 1 && n + 1 < sizeof(buf))
			n++;
		ck_assert_int_eq(r, 0);
		buf[n] = '\0';
		ck_assert_int_eq(buf[n - 1], '\n');
		doc = json_loads(buf, 0, NULL);
		ck_assert_ptr_nonnull(doc);
		json_decref(doc);
	}
	close(slow);
	for (int i = 0; i < n_idle; i++)
		close(idle[i]);
	wave_host_close(app.h);
	ck_assert_int_eq(WEXITSTATUS(daemon_kill(pid, SIGTERM)), 0);
	tmpdir_rm(dir);
}
END_TEST

/* ---- wave-stat's errors ------------------------------------------------------ */

static void expect_failure(const char *const *argv, int status, const char *text)
{
	static struct stat_run r;

	stat_run(&r, argv);
	ck_assert_msg(r.status == status, "exit %d, expected %d: %s", r.status, status, r.err);
	ck_assert_msg(strstr(r.err, text) != NULL, "'%s' not in: %s", text, r.err);
	ck_assert_str_eq(r.out, "");
}

/* A listening socket at @path; nobody accepts unless the caller does. */
static int listen_at(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	ck_assert_int_eq(bind(fd, (const struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(fd, 4), 0);
	return fd;
}

/* Answers of a server, to its one reader @fd. */
static void answer_text(int fd, const void *text)
{
	size_t n = strlen(text);

	ck_assert_int_eq(write(fd, text, n), (ssize_t)n);
}

/* Spaces until the reader goes, 1 KiB a millisecond (@trickle) or at once. */
static void answer_flood(int fd, const void *trickle)
{
	static char spaces[64 << 10];
	size_t chunk = *(const int *)trickle ? 1024 : sizeof(spaces);

	memset(spaces, ' ', sizeof(spaces));
	while (send(fd, spaces, chunk, MSG_NOSIGNAL) > 0)
		if (*(const int *)trickle)
			usleep(1000);
}

/* Runs wave-stat --timeout @timeout against a server at @path that gives
 * its one reader @answer(fd, @arg); wave-stat must fail saying @text. */
static void expect_refused(const char *path, const char *timeout,
			   void (*answer)(int fd, const void *arg), const void *arg, const char *text)
{
	static struct stat_run r;
	const char *argv[] = { "--timeout", timeout, path, NULL };
	int l = listen_at(path), fd, o, e;
	pid_t pid = stat_spawn(argv, &o, &e);

	fd = accept(l, NULL, NULL);
	ck_assert_int_ge(fd, 0);
	answer(fd, arg);
	close(fd);
	stat_finish(pid, o, e, &r);
	ck_assert_int_eq(r.status, 1);
	ck_assert_msg(strstr(r.err, text) != NULL, "'%s' not in: %s", text, r.err);
	close(l);
	unlink(path);
}

START_TEST(stat_tool_errors)
{
	char path[128], quiet[128], stale[128], file[128];
	const char *help[] = { "--help", NULL }, *version[] = { "--version", NULL };
	static struct stat_run r;
	int l, fd;

	tmpdir_make(dir);
	snprintf(path, sizeof(path), "%s/none.sock", dir);
	{
		const char *argv[] = { path, NULL };
		expect_failure(argv, 1, "none.sock: no such socket");
	}
	snprintf(file, sizeof(file), "%s/file", dir);
	fd = open(file, O_WRONLY | O_CREAT, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	{
		const char *argv[] = { file, NULL };
		expect_failure(argv, 1, "file: not a socket");
	}
	/* A socket file nobody listens on any more. */
	snprintf(stale, sizeof(stale), "%s/stale.sock", dir);
	close(listen_at(stale));
	{
		const char *argv[] = { stale, NULL };
		expect_failure(argv, 1, "stale.sock: nobody is listening");
	}
	/* Connected, but nothing ever comes: given up after the timeout. */
	snprintf(quiet, sizeof(quiet), "%s/quiet.sock", dir);
	l = listen_at(quiet);
	{
		const char *argv[] = { "--timeout", "100", quiet, NULL };
		expect_failure(argv, 1, "quiet.sock: the agent did not answer within 100 ms");
	}
	close(l);
	/* Permission bits are not checked for root. */
	if (geteuid() != 0) {
		l = listen_at(path);
		ck_assert_int_eq(chmod(path, 0), 0);
		{
			const char *argv[] = { path, NULL };
			expect_failure(argv, 1, "none.sock: permission denied");
		}
		close(l);
		unlink(path);
	}
	/* Answers that are not an agent's statistics. */
	/* A flood is refused at the cap, before the timeout (10 minutes, so
	 * that the cap comes first on any machine); a trickle that never ends
	 * at the timeout (without a deadline on reads that succeed, it was
	 * read on until the cap, at 16 s). */
	expect_refused(path, "600000", answer_flood, &(int){ 0 },
		       "larger than 16777216 bytes: not an agent");
	expect_refused(path, "200", answer_flood, &(int){ 1 }, "did not answer within 200 ms");
	expect_refused(path, "5000", answer_text, "",
		       "closed the connection without sending statistics");
	expect_refused(path, "5000", answer_text, "{\"hosts\": [", "the answer is not JSON (line 1");
	expect_refused(path, "5000", answer_text, "[1, 2]\n", "not an agent's statistics document");
	/* The right shape, not the right members: each is checked, and named. */
	expect_refused(path, "5000", answer_text,
		       "{\"hosts\": [1], \"plugins\": {}, \"hosts_accepted\": 0, "
		       "\"hosts_refused\": 0, \"hosts_dead\": 0, \"hosts_lost\": 0}\n",
		       "statistics document: hosts[0]: expected an object");
	/* Usage. */
	{
		const char *none[] = { NULL };
		const char *two[] = { path, path, NULL };
		const char *bad_timeout[] = { "--timeout", "0", path, NULL };
		const char *bad_opt[] = { "--bogus", path, NULL };
		const char *empty[] = { "", NULL };

		expect_failure(none, 2, "which SOCKET?");
		expect_failure(two, 2, "one SOCKET only");
		expect_failure(bad_timeout, 2, "--timeout: expected milliseconds between 1 and");
		expect_failure(bad_opt, 2, "usage: wave-stat");
		expect_failure(empty, 2, "a socket path is 1 to");
	}
	stat_run(&r, help);
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "usage: wave-stat"));
	stat_run(&r, version);
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "wave-stat "));
	ck_assert_ptr_nonnull(strstr(r.out, wave_version_string()));
	tmpdir_rm(dir);
}
END_TEST

static Suite *stats_suite(void)
{
	Suite *s = suite_create("stats");
	TCase *tc = tcase_create("stats");

	tcase_add_test(tc, stat_tool_errors);
	tcase_add_test(tc, stats_match_traffic);
	tcase_add_test(tc, unstamped_host_has_no_latencies);
	tcase_add_test(tc, stats_idle_readers_do_not_block);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	return wave_check_run(stats_suite());
}
