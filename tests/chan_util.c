/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check_run.h"
#include "chan_util.h"

const char *test_transport = "shm";

void tmpdir_make(char dir[64])
{
	snprintf(dir, 64, "/tmp/wave-test-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void tmpdir_rm(const char *dir)
{
	nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

bool transport_is(const char *name)
{
	return strcmp(test_transport, name) == 0;
}

bool transport_is_fabric(void)
{
	return strncmp(test_transport, "fabric-", 7) == 0;
}

uint64_t test_scaled(uint64_t n)
{
	const char *s = getenv("WAVE_TEST_SCALE");
	unsigned long d = s ? strtoul(s, NULL, 10) : 1;

	if (d > 1)
		n /= d;
	return n ? n : 1;
}

/* A TCP port on 127.0.0.1 that was free a moment ago. */
int test_free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port;

	ck_assert_int_ge(s, 0);
	ck_assert_int_eq(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(getsockname(s, (struct sockaddr *)&a, &len), 0);
	port = ntohs(a.sin_port);
	close(s);
	return port;
}

void transport_uri(char *buf, size_t len, const char *dir)
{
	static unsigned n;

	if (transport_is("file"))
		snprintf(buf, len, "file://%s/chan", dir);
	else if (transport_is("fabric-tcp"))
		snprintf(buf, len, "fabric://tcp;ofi_rxm/127.0.0.1:%d", test_free_port());
	else if (transport_is("fabric-shm"))
		snprintf(buf, len, "fabric://shm/chk%d_%u", (int)getpid(), n++);
	else
		snprintf(buf, len, "shm://%s/agent.sock", dir);
}

/* Tests do not time opening: a loaded machine (TSan, -j2, other jobs) may
 * take seconds to finish a handshake, so every pair waits up to 30 s. */
#define PAIR_OPEN_TIMEOUT_MS 30000

static void open_timeout_floor(struct wave_chan_opts *o)
{
	if (o->timeout_ms >= 0 && o->timeout_ms < PAIR_OPEN_TIMEOUT_MS)
		o->timeout_ms = PAIR_OPEN_TIMEOUT_MS;
}

struct accept_arg {
	struct pair *p;
	int ret;
};

static void *accept_thread(void *a)
{
	struct accept_arg *aa = a;
	aa->ret = wave_chan_accept(aa->p->listener, WAVE_MS(PAIR_OPEN_TIMEOUT_MS), &aa->p->agent);
	return NULL;
}

void pair_open(struct pair *p, const struct wave_chan_opts *o)
{
	struct wave_chan_opts opts;
	int ret;

	memset(p, 0, sizeof(*p));
	tmpdir_make(p->dir);
	transport_uri(p->uri, sizeof(p->uri), p->dir);
	if (o)
		opts = *o;
	else
		wave_chan_opts_init(&opts);
	open_timeout_floor(&opts);

	if (strcmp(test_transport, "file") == 0) {
		/* The agent lays the file out (as a NIC owns its BAR). */
		opts.role = WAVE_ROLE_AGENT;
		opts.flags |= WAVE_CHAN_F_CREATE;
		ck_assert_int_eq(wave_chan_open(p->uri, &opts, &p->agent), 0);
		opts.role = WAVE_ROLE_HOST;
		opts.flags &= ~WAVE_CHAN_F_CREATE;
		ck_assert_int_eq(wave_chan_open(p->uri, &opts, &p->host), 0);
		return;
	}
	/* libfabric 1.17's shm provider maps a peer endpoint of the same
	 * process through that endpoint's own mapping, which its close
	 * unmaps: its ends must live in two processes (pair_fork()). */
	ck_assert_msg(!transport_is("fabric-shm"), "fabric-shm needs two processes");
	pthread_t t;
	struct accept_arg aa = { .p = p };
	ck_assert_int_eq(wave_chan_listen(p->uri, &opts, &p->listener), 0);
	ck_assert_int_eq(pthread_create(&t, NULL, accept_thread, &aa), 0);
	ret = wave_chan_open(p->uri, &opts, &p->host);
	pthread_join(t, NULL);
	ck_assert_msg(ret == 0, "open: %s", wave_strerror(ret));
	ck_assert_msg(aa.ret == 0, "accept: %s", wave_strerror(aa.ret));
}

static void opts_for(struct wave_chan_opts *opts, const struct wave_chan_opts *o,
		     enum wave_role role)
{
	if (o)
		*opts = *o;
	else
		wave_chan_opts_init(opts);
	open_timeout_floor(opts);
	opts->role = role;
	if (role == WAVE_ROLE_AGENT && strcmp(test_transport, "file") == 0)
		opts->flags |= WAVE_CHAN_F_CREATE;
}

pid_t pair_fork(struct pair *p, const struct wave_chan_opts *o)
{
	struct wave_chan_opts ao, ho;
	bool file = strcmp(test_transport, "file") == 0;
	pid_t pid;
	int ret;

	memset(p, 0, sizeof(*p));
	tmpdir_make(p->dir);
	transport_uri(p->uri, sizeof(p->uri), p->dir);
	opts_for(&ao, o, WAVE_ROLE_AGENT);
	opts_for(&ho, o, WAVE_ROLE_HOST);
	if (!file)
		ck_assert_int_eq(wave_chan_listen(p->uri, &ao, &p->listener), 0);
	pid = test_fork();
	if (pid == 0) {
		/* The host attaches; for file:// it waits for the layout. */
		ret = wave_chan_open(p->uri, &ho, &p->host);
		if (ret != 0)
			_exit(100);
		return 0;
	}
	if (file)
		ret = wave_chan_open(p->uri, &ao, &p->agent);
	else
		ret = wave_chan_accept(p->listener, WAVE_MS(PAIR_OPEN_TIMEOUT_MS), &p->agent);
	ck_assert_msg(ret == 0, "agent end: %s", wave_strerror(ret));
	return pid;
}

int pair_reopen(struct pair *p, enum wave_role role, const struct wave_chan_opts *o)
{
	struct wave_chan_opts opts;

	opts_for(&opts, o, role);
	if (role == WAVE_ROLE_HOST)
		return wave_chan_open(p->uri, &opts, &p->host);
	if (transport_is("file"))
		return wave_chan_open(p->uri, &opts, &p->agent);
	return wave_chan_accept(p->listener, WAVE_MS(PAIR_OPEN_TIMEOUT_MS), &p->agent);
}

void pair_close(struct pair *p)
{
	wave_chan_close(p->host);
	wave_chan_close(p->agent);
	wave_chan_listener_close(p->listener);
	tmpdir_rm(p->dir);
}

void msg_make(struct wave_msg *m, uint64_t n)
{
	memset(m, 0, sizeof(*m));
	m->type = (uint16_t)(WAVE_MSG_APP_FIRST + (n % 4096));
	m->flags = (uint16_t)(n * 7);
	for (unsigned i = 0; i < WAVE_MSG_PAYLOAD / 8; i++)
		m->payload.u64[i] = n * 0x9e3779b97f4a7c15ull + i;
}

int msg_check(const struct wave_msg *m, uint64_t n)
{
	struct wave_msg want;

	msg_make(&want, n);
	return m->type != want.type || m->flags != want.flags ||
	       memcmp(&m->payload, &want.payload, sizeof(want.payload)) != 0;
}

void recv_expect(struct wave_chan *ch, uint64_t first, unsigned n, uint32_t seq)
{
	struct wave_msg m[64];
	unsigned got = 0;

	/* Check is called only on failure: a passing ck_assert costs a
	 * system call, too much for loops over millions of messages. */
	while (got < n) {
		unsigned want = n - got < 64 ? n - got : 64;
		int k = wave_chan_recv_burst(ch, m, want);
		if (k < 0)
			ck_abort_msg("recv: %s", wave_strerror(k));
		if (k == 0) {
			if (wave_chan_wait(ch, -1) < 0)
				ck_abort_msg("wait failed");
			continue;
		}
		for (int i = 0; i < k; i++, got++) {
			if (msg_check(&m[i], first + got) != 0)
				ck_abort_msg("message %llu corrupt", (unsigned long long)(first + got));
			if (m[i].seq != (uint32_t)(seq + got))
				ck_abort_msg("message %llu has seq %u, want %u",
					     (unsigned long long)(first + got), m[i].seq,
					     (unsigned)(seq + got));
		}
	}
}
