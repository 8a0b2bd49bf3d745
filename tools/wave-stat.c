/* SPDX-License-Identifier: MIT */
/*
 * wave-stat: print a running agent's statistics. It connects to the
 * agent's stats_socket (docs/config.md), reads the JSON document the agent
 * writes there (wave_agent_stats_json(): per host, per domain and per
 * plugin counters and decision latency percentiles), checks that it is one,
 * and prints it on stdout, compact or indented, or as Prometheus metrics.
 *
 * Every failure says what went wrong with which path: no such socket, not
 * a socket, permission denied, nobody listening, no answer in time, or an
 * answer that is not a statistics document. Exit status: 0, 1 on failure,
 * 2 on bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

/* Only the version macro: wave-stat links no libwave (and so none of
 * its transports' libraries), just jansson. */
#include <wave/version.h>

#include "stats_prom.h"

#define DEFAULT_TIMEOUT_MS 5000
#define MAX_TIMEOUT_MS 600000
/* Larger than any agent's document (a host takes under 1 KiB of it); a
 * peer sending more is not an agent. It bounds what parsing costs: jansson
 * takes about 20 bytes of memory a byte of a document of small numbers. */
#define MAX_DOC (16u << 20)

static const char *prog = "wave-stat";

enum format { FMT_LINE, FMT_PRETTY, FMT_PROMETHEUS };

static void usage(FILE *f)
{
	fprintf(f,
		"usage: wave-stat [--pretty | --prometheus] [--timeout MS] SOCKET\n"
		"       wave-stat --version | --help\n"
		"\n"
		"Prints the statistics of a running agent as JSON: per host, per domain\n"
		"and per plugin, events in, decisions out, errors and decision latency\n"
		"percentiles. SOCKET is the agent's \"stats_socket\" (see docs/config.md).\n"
		"\n"
		"  -p, --pretty       indent the document (default: one line, as sent)\n"
		"  -P, --prometheus   print Prometheus metrics (text exposition format)\n"
		"  -t, --timeout MS   give up when the agent has not answered within MS\n"
		"                     milliseconds (1-%d, default %d)\n"
		"  -V, --version      print the version and exit\n"
		"  -h, --help         print this help and exit\n"
		"\n"
		"Exit status: 0; 1 when the statistics could not be read; 2 for bad usage.\n",
		MAX_TIMEOUT_MS, DEFAULT_TIMEOUT_MS);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int left_ms(uint64_t deadline)
{
	uint64_t now = now_ms();

	return now >= deadline ? 0 : (int)(deadline - now);
}

/* Why connect() failed, for a human. */
static void connect_error(const char *path, int err, int timeout_ms)
{
	switch (err) {
	case ENOENT:
		fprintf(stderr, "%s: %s: no such socket (is the agent running, with "
			"\"stats_socket\" set to this path?)\n", prog, path);
		break;
	case EACCES:
	case EPERM:
		fprintf(stderr, "%s: %s: permission denied (only the agent's user and root "
			"may read its statistics)\n", prog, path);
		break;
	case ECONNREFUSED:
		fprintf(stderr, "%s: %s: nobody is listening (left by an agent that "
			"exited?)\n", prog, path);
		break;
	case ETIMEDOUT:
		fprintf(stderr, "%s: %s: the agent did not answer within %d ms\n", prog, path,
			timeout_ms);
		break;
	default:
		fprintf(stderr, "%s: %s: cannot connect: %s\n", prog, path, strerror(err));
	}
}

/* Connects to @path before @deadline. Return: the socket, or -errno. */
static int stat_connect(const char *path, uint64_t deadline)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, err;

	if (stat(path, &st) < 0)
		return -errno;
	if (!S_ISSOCK(st.st_mode))
		return -ENOTSOCK;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A Unix socket connects at once or not at all; EAGAIN means the
	 * agent's backlog is full (it serves a few readers at a time). */
	while (connect(fd, (const struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = errno;
		if (err == EINTR)
			continue;
		if (err != EAGAIN || left_ms(deadline) == 0) {
			close(fd);
			return -(err == EAGAIN ? ETIMEDOUT : err);
		}
		poll(NULL, 0, 5);
	}
	return fd;
}

/* Reads until end of file or @deadline. Return: 0 or -errno (-ETIMEDOUT,
 * -EFBIG). @buf is NUL-terminated, its length in @len. */
static int read_all(int fd, uint64_t deadline, char **buf, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *b = malloc(cap), *nb;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t r;
	int ret = 0;

	if (!b)
		return -ENOMEM;
	for (;;) {
		if (n + 1 == cap) {
			if (cap >= MAX_DOC) {
				ret = -EFBIG;
				break;
			}
			nb = realloc(b, cap * 2);
			if (!nb) {
				ret = -ENOMEM;
				break;
			}
			b = nb;
			cap *= 2;
		}
		r = read(fd, b + n, cap - 1 - n);
		if (r > 0 && left_ms(deadline) == 0) { /* a peer that never stops */
			ret = -ETIMEDOUT;
			break;
		}
		if (r > 0) {
			n += (size_t)r;
			continue;
		}
		if (r == 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN) {
			ret = -errno;
			break;
		}
		r = poll(&p, 1, left_ms(deadline));
		if (r == 0) {
			ret = -ETIMEDOUT;
			break;
		}
		if (r < 0 && errno != EINTR) {
			ret = -errno;
			break;
		}
	}
	if (ret < 0) {
		free(b);
		return ret;
	}
	b[n] = '\0';
	*buf = b;
	*len = n;
	return 0;
}

/* Checks that @buf is one statistics document and prints it. Return: 0 or 1. */
static int print_doc(const char *path, const char *buf, size_t len, enum format fmt)
{
	json_error_t jerr;
	json_t *doc;
	char *out = NULL, why[256];
	int ret = 1;

	if (len == 0) {
		fprintf(stderr, "%s: %s: the agent closed the connection without sending "
			"statistics (not the agent's user, or not a stats socket?)\n", prog, path);
		return 1;
	}
	doc = json_loadb(buf, len, 0, &jerr);
	if (!doc) {
		fprintf(stderr, "%s: %s: the answer is not JSON (line %d, column %d: %s)\n", prog,
			path, jerr.line, jerr.column, jerr.text);
		return 1;
	}
	/* Whatever the format: a peer that is not the agent must not pass for
	 * it, and the metrics would leave out, or print as "", what is wrong. */
	if (stats_prom_check(doc, why, sizeof(why)) < 0) {
		fprintf(stderr, "%s: %s: the answer is not an agent's statistics document: %s\n",
			prog, path, why);
		json_decref(doc);
		return 1;
	}
	if (fmt == FMT_PRETTY)
		out = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (fmt == FMT_PRETTY && !out)
		fprintf(stderr, "%s: out of memory\n", prog);
	else if (fmt == FMT_PRETTY)
		ret = printf("%s\n", out) < 0;
	else if (fmt == FMT_PROMETHEUS)
		ret = stats_prom_write(stdout, doc) < 0 || ferror(stdout);
	else /* as sent: one line, the agent's newline included */
		ret = printf("%.*s%s", (int)len, buf, buf[len - 1] == '\n' ? "" : "\n") < 0;
	free(out);
	json_decref(doc);
	if (ret == 0 && fflush(stdout) != 0)
		ret = 1;
	if (ret)
		fprintf(stderr, "%s: cannot write the statistics: %s\n", prog, strerror(errno));
	return ret;
}

static int run(const char *path, int timeout_ms, enum format fmt)
{
	uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
	char *buf;
	size_t len;
	int fd, ret;

	fd = stat_connect(path, deadline);
	if (fd == -ENOTSOCK) {
		fprintf(stderr, "%s: %s: not a socket\n", prog, path);
		return 1;
	}
	if (fd < 0) {
		connect_error(path, -fd, timeout_ms);
		return 1;
	}
	ret = read_all(fd, deadline, &buf, &len);
	close(fd);
	if (ret == -ETIMEDOUT) {
		fprintf(stderr, "%s: %s: the agent did not answer within %d ms\n", prog, path,
			timeout_ms);
		return 1;
	}
	if (ret == -EFBIG) {
		fprintf(stderr, "%s: %s: the answer is larger than %u bytes: not an agent\n",
			prog, path, MAX_DOC);
		return 1;
	}
	if (ret < 0) {
		fprintf(stderr, "%s: %s: cannot read: %s\n", prog, path, strerror(-ret));
		return 1;
	}
	ret = print_doc(path, buf, len, fmt);
	free(buf);
	return ret;
}

static int parse_timeout(const char *s, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > MAX_TIMEOUT_MS)
		return -1;
	*out = (int)v;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pretty", no_argument, NULL, 'p' },
		{ "prometheus", no_argument, NULL, 'P' },
		{ "timeout", required_argument, NULL, 't' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sockaddr_un sa;
	int timeout_ms = DEFAULT_TIMEOUT_MS, c;
	enum format fmt = FMT_LINE;

	while ((c = getopt_long(argc, argv, "pPt:Vh", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
		case 'P':
			if (fmt != FMT_LINE) {
				fprintf(stderr, "%s: --pretty and --prometheus exclude each other\n",
					prog);
				return 2;
			}
			fmt = c == 'p' ? FMT_PRETTY : FMT_PROMETHEUS;
			break;
		case 't':
			if (parse_timeout(optarg, &timeout_ms) < 0) {
				fprintf(stderr, "%s: --timeout: expected milliseconds between 1 and "
					"%d, got '%s'\n", prog, MAX_TIMEOUT_MS, optarg);
				return 2;
			}
			break;
		case 'V':
			printf("wave-stat %s\n", WAVE_VERSION_STRING);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 1) {
		fprintf(stderr, "%s: %s\n", prog, argc - optind ? "one SOCKET only" :
			"which SOCKET? (the agent's \"stats_socket\")");
		usage(stderr);
		return 2;
	}
	if (argv[optind][0] == '\0' || strlen(argv[optind]) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "%s: '%s': a socket path is 1 to %zu bytes\n", prog, argv[optind],
			sizeof(sa.sun_path) - 1);
		return 2;
	}
	return run(argv[optind], timeout_ms, fmt);
}
