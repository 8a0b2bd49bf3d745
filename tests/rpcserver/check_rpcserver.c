/* SPDX-License-Identifier: MIT */
/*
 * wave-example-rpcserver against hand-made sockperf messages, good and bad,
 * over UDP and TCP: replies byte for byte, what is ignored, what is
 * counted. The server runs as a child process with one worker, so that one
 * client's messages are served in order: an ignored message is shown to be
 * ignored by the next good message's reply coming first. Every receive has
 * a long timeout that only catches a hang.
 *
 *   check_rpcserver PATH/TO/wave-example-rpcserver
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sys/ioctl.h>
#include <net/if.h>
#include <sched.h>
#include <unistd.h>

#include <check.h>

#include "check_run.h"
#include "sockperf_msg.h"

static const char *server_path;

struct server {
	pid_t pid;
	FILE *out;
	unsigned port;
};

/* The server with one worker, and @extra options (NULL-terminated, or
 * NULL). */
static void server_start_with(struct server *s, bool tcp, const char *const *extra)
{
	const char *argv[24] = { server_path, tcp ? "--tcp" : "--udp", "--port", "0", "--workers",
				 "1", "--json" };
	int p[2], a = 7;
	char line[256], proto[8], addr[80], *colon;

	while (extra && *extra && a < 23)
		argv[a++] = *extra++;

	ck_assert_int_eq(pipe(p), 0);
	s->pid = test_fork();
	if (s->pid == 0) {
		dup2(p[1], STDOUT_FILENO);
		close(p[0]);
		close(p[1]);
		execv(server_path, (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	s->out = fdopen(p[0], "r");
	ck_assert_ptr_nonnull(fgets(line, sizeof(line), s->out));
	/* "ready PROTO 127.0.0.1:PORT ..." or "ready PROTO [::1]:PORT ..." */
	ck_assert_int_eq(sscanf(line, "ready %7s %79s", proto, addr), 2);
	colon = strrchr(addr, ':');
	ck_assert_ptr_nonnull(colon);
	ck_assert_int_eq(sscanf(colon + 1, "%u", &s->port), 1);
}

static void server_start(struct server *s, bool tcp)
{
	server_start_with(s, tcp, NULL);
}

/* Stops the server; its statistics line, in @json. */
static void server_stop(struct server *s, char *json, size_t n)
{
	int status;

	ck_assert_int_eq(kill(s->pid, SIGTERM), 0);
	ck_assert_ptr_nonnull(fgets(json, (int)n, s->out));
	ck_assert_int_eq(waitpid(s->pid, &status, 0), s->pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	fclose(s->out);
}

/* The value of counter "@key" in the statistics line. */
static unsigned long long stat_of(const char *json, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(json, pat);
	ck_assert_msg(p != NULL, "no %s in %s", key, json);
	return strtoull(p + strlen(pat), NULL, 10);
}

static bool v6; /* the "ipv6" run: clients and servers on [::1] */

static int client(bool tcp, unsigned port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port),
				   .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	struct timeval tv = { .tv_sec = 10 };
	int fd = socket(v6 ? AF_INET6 : AF_INET, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	if (v6)
		ck_assert_int_eq(connect(fd, (struct sockaddr *)&a6, sizeof(a6)), 0);
	else
		ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

/* A message of @len bytes (payload a pattern of @seq), header as given. */
static size_t make(uint8_t *buf, uint64_t seq, uint16_t flags, uint32_t hdr_len, size_t len)
{
	for (size_t i = SP_HDR; i < len; i++)
		buf[i] = (uint8_t)(seq + i);
	sp_put_header(buf, seq, flags, hdr_len);
	return len;
}

static void send_all(int fd, const uint8_t *b, size_t n)
{
	ck_assert_int_eq(send(fd, b, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* The next reply must be exactly @req with CLIENT cleared. */
static void expect_reply(int fd, bool tcp, const uint8_t *req, size_t n)
{
	uint8_t want[2048], got[2048];
	size_t have = 0;

	memcpy(want, req, n);
	sp_make_reply(want);
	do {
		ssize_t k = recv(fd, got + have, tcp ? n - have : sizeof(got), 0);
		ck_assert_msg(k > 0, "no reply (%s)", k < 0 ? strerror(errno) : "closed");
		have += (size_t)k;
	} while (tcp && have < n);
	ck_assert_uint_eq(have, n);
	ck_assert(memcmp(got, want, n) == 0);
}

START_TEST(udp_replies_and_ignores_like_sockperf)
{
	struct server s;
	uint8_t a[256], b[256], two[256];
	char json[1024];
	int fd;

	server_start(&s, false);
	fd = client(false, s.port);
	/* A ping: the same bytes back, CLIENT cleared (flags 3 -> 2). */
	send_all(fd, a, make(a, 1, SP_CLIENT | SP_PONG, 64, 64));
	expect_reply(fd, false, a, 64);
	/* Ignored: warm-up, not from a client, no PONG wanted; shown by the
	 * next ping's reply coming first. */
	send_all(fd, b, make(b, 2, SP_CLIENT | SP_PONG | SP_WARMUP, 64, 64));
	send_all(fd, b, make(b, 3, SP_PONG, 64, 64));
	send_all(fd, b, make(b, 4, SP_CLIENT, 64, 64));
	send_all(fd, a, make(a, 5, SP_CLIENT | SP_PONG, 100, 100));
	expect_reply(fd, false, a, 100);
	/* Unknown flag bits are carried through, as sockperf does. */
	send_all(fd, a, make(a, 6, SP_CLIENT | SP_PONG | 0x108, 64, 64));
	expect_reply(fd, false, a, 64);
	/* Two messages in one datagram: two replies. */
	make(two, 7, SP_CLIENT | SP_PONG, 30, 30);
	make(two + 30, 8, SP_CLIENT | SP_PONG, 40, 40);
	send_all(fd, two, 70);
	expect_reply(fd, false, two, 30);
	expect_reply(fd, false, two + 30, 40);
	/* Bad: cut short, a header cut short, a length field of 0 and of
	 * 65508; each dropped and counted, and the next ping is answered. */
	send_all(fd, b, make(b, 9, SP_CLIENT | SP_PONG, 64, 40));
	send_all(fd, b, 3);
	send_all(fd, b, make(b, 10, SP_CLIENT | SP_PONG, 0, 64));
	send_all(fd, b, make(b, 11, SP_CLIENT | SP_PONG, SP_MAX_MSG + 1, 64));
	/* A good message then a cut one in one datagram: the good one served. */
	make(two, 12, SP_CLIENT | SP_PONG, 20, 20);
	make(two + 20, 13, SP_CLIENT | SP_PONG, 64, 30);
	send_all(fd, two, 50);
	expect_reply(fd, false, two, 20);
	send_all(fd, a, make(a, 14, SP_CLIENT | SP_PONG, 64, 64));
	expect_reply(fd, false, a, 64);
	server_stop(&s, json, sizeof(json));
	ck_assert_uint_eq(stat_of(json, "served"), 8); /* 1, 4, 5, 6, 7, 8, 12, 14 */
	ck_assert_uint_eq(stat_of(json, "replies"), 7);
	ck_assert_uint_eq(stat_of(json, "warmup"), 1);
	ck_assert_uint_eq(stat_of(json, "not_client"), 1);
	ck_assert_uint_eq(stat_of(json, "truncated"), 3); /* 9, the 3 bytes, 13 */
	ck_assert_uint_eq(stat_of(json, "malformed"), 2); /* 10, 11 */
	close(fd);
}
END_TEST

START_TEST(tcp_stream_split_joined_and_bad)
{
	struct server s;
	uint8_t a[256], two[256];
	char json[1024];
	int fd;

	server_start(&s, true);
	fd = client(true, s.port);
	/* One message written byte by byte. */
	make(a, 1, SP_CLIENT | SP_PONG, 64, 64);
	for (int i = 0; i < 64; i++)
		send_all(fd, a + i, 1);
	expect_reply(fd, true, a, 64);
	/* Two messages in one write, the first a warm-up. */
	make(two, 2, SP_CLIENT | SP_PONG | SP_WARMUP, 30, 30);
	make(two + 30, 3, SP_CLIENT | SP_PONG, 40, 40);
	send_all(fd, two, 70);
	expect_reply(fd, true, two + 30, 40);
	/* A bad length field: the server closes the connection (as sockperf's). */
	send_all(fd, a, make(a, 4, SP_CLIENT | SP_PONG, 5, 64));
	ck_assert_int_eq(recv(fd, a, sizeof(a), 0), 0);
	close(fd);
	/* The server still serves new connections. */
	fd = client(true, s.port);
	send_all(fd, a, make(a, 5, SP_CLIENT | SP_PONG, 64, 64));
	expect_reply(fd, true, a, 64);
	close(fd);
	server_stop(&s, json, sizeof(json));
	ck_assert_uint_eq(stat_of(json, "served"), 3);
	ck_assert_uint_eq(stat_of(json, "warmup"), 1);
	ck_assert_uint_eq(stat_of(json, "malformed"), 1);
	ck_assert_uint_eq(stat_of(json, "connections"), 2);
}
END_TEST

/* The dispatcher's queue is bounded: while the one worker spends 3 s on a
 * heavy request, the queue (2 requests) fills and what does not fit is
 * dropped and counted, never lost silently; the queue depth the worker
 * reports is the queue's. The one assumption about time: the dispatcher
 * reads 7 datagrams within those 3 s. */
START_TEST(udp_dispatch_queue_bounded_and_counted)
{
	static const char *const extra[] = { "--steer", "dispatch", "--queue", "2", "--class",
					     "200:3000000", NULL };
	struct server s;
	uint8_t heavy[256], a[64];
	char json[2048];
	unsigned long long served, full, left;
	int fd;

	server_start_with(&s, false, extra);
	fd = client(false, s.port);
	send_all(fd, heavy, make(heavy, 1, SP_CLIENT | SP_PONG, 256, 256));
	for (uint64_t i = 2; i <= 7; i++)
		send_all(fd, a, make(a, i, SP_CLIENT | SP_PONG, 64, 64));
	expect_reply(fd, false, heavy, 256);
	server_stop(&s, json, sizeof(json));
	served = stat_of(json, "served");
	full = stat_of(json, "queue_full");
	left = stat_of(json, "left_at_stop");
	ck_assert_uint_eq(stat_of(json, "dispatched"), 7 - full);
	ck_assert_uint_eq(served + left + full, 7);
	ck_assert_uint_eq(stat_of(json, "no_worker"), 0);
	/* The worker took the heavy request before the next arrived (queue 2,
	 * 4 refused), or after (it was queued with one light: 5 refused, one
	 * left queued); either way its report after it names what waited. */
	ck_assert(full == 4 || full == 5);
	ck_assert_uint_eq(stat_of(json, "max_queue_depth"), 6 - full);
	close(fd);
}
END_TEST

/* ---- IPv6 ---------------------------------------------------------------- */

static bool root;

/* Pings served over [::1] by the server in @mode; as root, the kernel's
 * table (bpf) too, where every request must have been steered by it. */
static void ipv6_mode(bool tcp, const char *mode)
{
	const char *const extra[] = { "--ip", "::1", "--steer", mode, NULL };
	struct server s;
	uint8_t a[64];
	char json[2048];
	int fd;

	server_start_with(&s, tcp, extra);
	for (uint64_t i = 1; i <= 4; i++) {
		fd = client(tcp, s.port); /* a new flow each */
		send_all(fd, a, make(a, i, SP_CLIENT | SP_PONG, 64, 64));
		expect_reply(fd, tcp, a, 64);
		close(fd);
	}
	server_stop(&s, json, sizeof(json));
	ck_assert_uint_eq(stat_of(json, "served"), 4);
	ck_assert_uint_eq(stat_of(json, "replies"), 4);
	if (!strcmp(mode, "bpf") && tcp)
		ck_assert_uint_eq(stat_of(json, "bpf_steered"), 4); /* one SYN a flow */
	else if (!strcmp(mode, "bpf"))
		ck_assert_uint_ge(stat_of(json, "bpf_steered"), 4);
}

START_TEST(ipv6_served_in_every_mode)
{
	static const char *const modes[] = { "linux", "dispatch", "pick", "bpf" };

	for (unsigned m = 0; m < (root ? 4u : 3u); m++) {
		ipv6_mode(false, modes[m]);
		ipv6_mode(true, modes[m]);
	}
}
END_TEST

/* As root, a network namespace of our own with its loopback up (the
 * server, a child, inherits it); otherwise the machine's [::1]. Exits 77
 * when [::1] cannot be bound (IPv6 disabled). */
static void ipv6_setup(void)
{
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	struct ifreq ifr = { .ifr_name = "lo" };
	int fd;

	root = geteuid() == 0;
	if (root && unshare(CLONE_NEWNET) == 0) {
		fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr) != 0)
			exit(1);
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(fd, SIOCSIFFLAGS, &ifr) != 0)
			exit(1);
		close(fd);
	}
	fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		printf("skipped: cannot bind [::1] (%s): IPv6 is off here\n", strerror(errno));
		exit(77);
	}
	close(fd);
	v6 = true;
}

int main(int argc, char **argv)
{
	Suite *s = suite_create("rpcserver");
	TCase *tc = tcase_create("main");

	if (argc < 2 || argc > 3 || (argc == 3 && strcmp(argv[2], "ipv6"))) {
		fprintf(stderr, "usage: check_rpcserver PATH/TO/wave-example-rpcserver [ipv6]\n");
		return 2;
	}
	server_path = argv[1];
	signal(SIGPIPE, SIG_IGN);
	if (argc == 3) {
		ipv6_setup();
		tcase_add_test(tc, ipv6_served_in_every_mode);
	} else {
		tcase_add_test(tc, udp_replies_and_ignores_like_sockperf);
		tcase_add_test(tc, tcp_stream_split_joined_and_bad);
		tcase_add_test(tc, udp_dispatch_queue_bounded_and_counted);
	}
	suite_add_tcase(s, tc);
	return wave_check_run(s);
}
