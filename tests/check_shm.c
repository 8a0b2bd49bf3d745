/* SPDX-License-Identifier: MIT */
/*
 * Shared-memory transport: the checks that guard the host/agent boundary.
 * Linked with the static library so it can build hostile peers from the
 * internal layout functions.
 */
#include "check_run.h"
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chan/shm.h"
#include "chan/shm_wire.h"
#include "chan_util.h"

/* ---- log capture --------------------------------------------------------- */

static char last_log[512];

static void capture_log(enum wave_log_level level, const char *msg, void *user)
{
	(void)level;
	(void)user;
	snprintf(last_log, sizeof(last_log), "%s", msg);
}

/* ---- a background accept ------------------------------------------------ */

struct acceptor {
	pthread_t t;
	struct wave_chan_listener *l;
	struct wave_chan *ch;
	int ret;
};

static void *accept_main(void *a)
{
	struct acceptor *ac = a;
	ac->ret = wave_chan_accept(ac->l, WAVE_MS(10000), &ac->ch);
	return NULL;
}

static void accept_start(struct acceptor *ac, struct wave_chan_listener *l)
{
	memset(ac, 0, sizeof(*ac));
	ac->l = l;
	ck_assert_int_eq(pthread_create(&ac->t, NULL, accept_main, ac), 0);
}

static int accept_finish(struct acceptor *ac)
{
	pthread_join(ac->t, NULL);
	wave_chan_close(ac->ch);
	return ac->ret;
}

static struct wave_chan_listener *listen_in(const char *dir, const struct wave_chan_opts *o,
					   char *uri, size_t len)
{
	struct wave_chan_listener *l;
	snprintf(uri, len, "shm://%s/agent.sock", dir);
	ck_assert_int_eq(wave_chan_listen(uri, o, &l), 0);
	return l;
}

/* ---- credentials and the socket file ------------------------------------- */

START_TEST(refuses_uid_not_allowed)
{
	char dir[64], uri[128];
	struct wave_chan_opts o;
	struct acceptor ac;
	struct wave_chan *h = NULL;
	uid_t other = geteuid() + 4242;

	tmpdir_make(dir);
	wave_chan_opts_init(&o);
	o.allow_uids = &other;
	o.n_allow_uids = 1;
	struct wave_chan_listener *l = listen_in(dir, &o, uri, sizeof(uri));
	wave_log_set_handler(capture_log, NULL);
	wave_log_set_level(WAVE_LOG_WARN);
	accept_start(&ac, l);
	ck_assert_int_eq(wave_chan_open(uri, NULL, &h), -WAVE_EREFUSED);
	ck_assert_ptr_null(h);
	ck_assert_int_eq(accept_finish(&ac), -WAVE_EREFUSED);
	wave_log_set_handler(NULL, NULL);
	ck_assert_msg(strstr(last_log, "not allowed") != NULL, "log says: %s", last_log);
	wave_chan_listener_close(l);
	tmpdir_rm(dir);
}
END_TEST

START_TEST(socket_is_owner_only_and_removed_on_close)
{
	char dir[64], uri[128], path[128];
	struct stat st;

	tmpdir_make(dir);
	struct wave_chan_listener *l = listen_in(dir, NULL, uri, sizeof(uri));
	snprintf(path, sizeof(path), "%s/agent.sock", dir);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	ck_assert_int_ge(wave_chan_listener_fd(l), 0);
	wave_chan_listener_close(l);
	ck_assert_int_eq(stat(path, &st), -1);
	tmpdir_rm(dir);
}
END_TEST

/* A listener that admits another user opens its socket to everyone and
 * lets the uid check decide; as root, that user really gets in. */
START_TEST(socket_opens_to_allowed_uids)
{
	char dir[64], uri[128], path[128];
	uid_t allow[2] = { geteuid(), 65534 };
	struct wave_chan_opts o;
	struct acceptor ac;
	struct stat st;
	int status;
	pid_t pid;

	tmpdir_make(dir);
	ck_assert_int_eq(chmod(dir, 0711), 0);
	wave_chan_opts_init(&o);
	o.allow_uids = allow;
	o.n_allow_uids = 2;
	struct wave_chan_listener *l = listen_in(dir, &o, uri, sizeof(uri));
	snprintf(path, sizeof(path), "%s/agent.sock", dir);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0666);
	if (geteuid() == 0) {
		accept_start(&ac, l);
		pid = test_fork();
		if (pid == 0) {
			struct wave_chan *h = NULL;
			if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
				_exit(2);
			_exit(wave_chan_open(uri, NULL, &h) == 0 ? 0 : 1);
		}
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			      "uid 65534 could not open: status %d", status);
		ck_assert_int_eq(accept_finish(&ac), 0);
	} else {
		printf("socket_opens_to_allowed_uids: not root, the connection as another user "
		       "is not tried\n");
	}
	wave_chan_listener_close(l);
	tmpdir_rm(dir);
}
END_TEST

/* ---- out of file descriptors --------------------------------------------- */

#define FD_LIMIT 256

/* Lowers the soft descriptor limit to FD_LIMIT and opens /dev/null into
 * every free slot but @keep_free. Return: how many were opened, in @fds. */
static int fill_fd_table(int keep_free, int fds[FD_LIMIT])
{
	struct rlimit rl;
	int n = 0, fd;

	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	ck_assert_uint_ge(rl.rlim_max, FD_LIMIT);
	rl.rlim_cur = FD_LIMIT;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	while ((fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
		fds[n++] = fd;
	ck_assert_int_eq(errno, EMFILE);
	ck_assert_int_ge(n, keep_free);
	for (int i = 0; i < keep_free; i++)
		close(fds[--n]);
	return n;
}

/* An agent out of descriptors tells each host so (-EMFILE), whether it
 * had none to take the connection with (the listener's spare one takes
 * it) or none for the descriptors its hello carries; its listener does
 * not stay readable (an agent would spin on it); once descriptors are
 * free again, hosts are served. */
static void out_of_fds(int keep_free)
{
	char dir[64], uri[128];
	struct wave_chan_listener *l;
	struct wave_chan_opts o;
	struct acceptor ac;
	struct pollfd pfd;
	int fds[FD_LIMIT], n, status, left = 3;
	pid_t pid[3];

	tmpdir_make(dir);
	l = listen_in(dir, NULL, uri, sizeof(uri));
	for (int i = 0; i < 3; i++) {
		pid[i] = test_fork();
		if (pid[i] == 0) {
			struct wave_chan *h = NULL;

			wave_chan_opts_init(&o);
			o.timeout_ms = 60000;
			int ret = wave_chan_open(uri, &o, &h);

			if (ret != -EMFILE)
				fprintf(stderr, "host %d: %s\n", i, wave_strerror(ret));
			_exit(ret == -EMFILE ? 0 : 1);
		}
	}
	pfd = (struct pollfd){ .fd = wave_chan_listener_fd(l), .events = POLLIN };
	ck_assert_int_eq(poll(&pfd, 1, -1), 1); /* a host is waiting */
	n = fill_fd_table(keep_free, fds);
	while (left) {
		struct wave_chan *ch = NULL;

		ck_assert_int_lt(wave_chan_accept(l, WAVE_MS(100), &ch), 0);
		for (int i = 0; i < 3; i++)
			if (pid[i] && waitpid(pid[i], &status, WNOHANG) == pid[i]) {
				ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
					      "host %d was not refused with EMFILE: %d", i, status);
				pid[i] = 0;
				left--;
			}
	}
	ck_assert_int_eq(poll(&pfd, 1, 0), 0); /* nothing left to spin on */
	while (n)
		close(fds[--n]);
	accept_start(&ac, l);
	pid[0] = fork();
	if (pid[0] == 0) {
		struct wave_chan *h = NULL;

		_exit(wave_chan_open(uri, NULL, &h) == 0 ? 0 : 1);
	}
	ck_assert_int_eq(waitpid(pid[0], &status, 0), pid[0]);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_int_eq(accept_finish(&ac), 0);
	wave_chan_listener_close(l);
	tmpdir_rm(dir);
}

START_TEST(no_fd_for_the_connection)
{
	out_of_fds(0);
}
END_TEST

START_TEST(no_fd_for_the_hello)
{
	out_of_fds(1);
}
END_TEST

START_TEST(stale_socket_replaced_live_one_kept)
{
	char dir[64], uri[128], path[128];
	struct wave_chan_listener *l, *l2;
	int status, fd;
	pid_t pid;

	tmpdir_make(dir);
	snprintf(uri, sizeof(uri), "shm://%s/agent.sock", dir);
	snprintf(path, sizeof(path), "%s/agent.sock", dir);
	pid = fork();
	if (pid == 0) { /* a listener that dies without cleaning up */
		if (wave_chan_listen(uri, NULL, &l) != 0)
			_exit(1);
		raise(SIGKILL);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFSIGNALED(status));
	ck_assert_int_eq(access(path, F_OK), 0);
	ck_assert_int_eq(wave_chan_listen(uri, NULL, &l), 0);   /* stale: replaced */
	ck_assert_int_eq(wave_chan_listen(uri, NULL, &l2), -EADDRINUSE); /* live: kept */
	/* Its probe came and went without a hello: no host to report. */
	{
		struct wave_chan *ch = NULL;

		ck_assert_int_eq(wave_chan_accept(l, WAVE_MS(50), &ch), -ETIMEDOUT);
	}
	wave_chan_listener_close(l);
	/* a live socket of another type is kept too */
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	ck_assert_uint_lt(strlen(path), sizeof(a.sun_path));
	memcpy(a.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(fd, 1), 0);
	ck_assert_int_eq(wave_chan_listen(uri, NULL, &l2), -EADDRINUSE);
	close(fd);
	unlink(path);
	/* never remove something that is not a socket */
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(wave_chan_listen(uri, NULL, &l2), -EADDRINUSE);
	ck_assert_int_eq(access(path, F_OK), 0);
	tmpdir_rm(dir);
}
END_TEST

/* ---- a hostile host speaking the rendezvous protocol by hand ------------- */

struct raw_host {
	int sock, memfd, efd;
	void *map;
	size_t len;
};

static int raw_connect(const char *uri)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", uri + strlen("shm://"));
	ck_assert_int_eq(connect(s, (struct sockaddr *)&a, sizeof(a)), 0);
	return s;
}

/* Hosts that connect and never send their hello, as many as the listener
 * keeps pending and its backlog holds, do not keep a well-behaved host
 * out: the one that has waited longest without a hello makes room. Their
 * own deadline (a minute) plays no part. */
START_TEST(stalled_hosts_do_not_keep_others_out)
{
	char dir[64], uri[128];
	struct wave_chan_listener *l;
	struct wave_chan_opts o;
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct acceptor ac;
	int stalled[256], n = 0, status;
	pid_t pid;

	tmpdir_make(dir);
	wave_chan_opts_init(&o);
	o.timeout_ms = 60000;
	l = listen_in(dir, &o, uri, sizeof(uri));
	snprintf(a.sun_path, sizeof(a.sun_path), "%.*s", (int)sizeof(a.sun_path) - 1,
		 uri + strlen("shm://"));
	for (int tries = 0; n < 256 && tries < 512; tries++) {
		int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		struct wave_chan *ch = NULL;

		ck_assert_int_ge(s, 0);
		if (connect(s, (struct sockaddr *)&a, sizeof(a)) == 0) {
			stalled[n++] = s;
			continue;
		}
		ck_assert_int_eq(errno, EAGAIN); /* the backlog is full */
		close(s);
		/* The listener takes what its pending slots have room for. */
		ck_assert_int_eq(wave_chan_accept(l, 0, &ch), -ETIMEDOUT);
	}
	ck_assert_int_gt(n, 64);
	accept_start(&ac, l);
	pid = test_fork();
	if (pid == 0) {
		struct wave_chan *h = NULL;

		wave_chan_opts_init(&o);
		o.timeout_ms = 5000;
		_exit(wave_chan_open(uri, &o, &h) == 0 ? 0 : 1);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "the host behind %d stalled ones could not open: %d", n, status);
	ck_assert_int_eq(accept_finish(&ac), 0);
	while (n)
		close(stalled[--n]);
	wave_chan_listener_close(l);
	tmpdir_rm(dir);
}
END_TEST

static void raw_send(int sock, const void *buf, size_t len, const int *fds, int nfds)
{
	char cbuf[CMSG_SPACE(sizeof(int) * 4)] = { 0 };
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (nfds) {
		m.msg_control = cbuf;
		m.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
	}
	ck_assert_int_eq(sendmsg(sock, &m, 0), (ssize_t)len);
}

/* Reads the agent's reply status (0 or a positive error code). */
static int raw_reply(int sock)
{
	struct wave_shm_reply r;
	ssize_t n = recv(sock, &r, sizeof(r), 0);

	ck_assert_int_eq(n, (ssize_t)sizeof(r));
	ck_assert_uint_eq(r.magic, WAVE_SHM_REPLY_MAGIC);
	return r.status;
}

/* A memfd with a valid layout, sealed or not. */
static void raw_memory(struct raw_host *h, uint32_t slots, bool seal)
{
	h->len = wave_shm_layout_size(slots, slots, 0);
	h->memfd = memfd_create("hostile", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	ck_assert_int_ge(h->memfd, 0);
	ck_assert_int_eq(ftruncate(h->memfd, (off_t)h->len), 0);
	if (seal)
		ck_assert_int_eq(fcntl(h->memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL), 0);
	h->map = mmap(NULL, h->len, PROT_READ | PROT_WRITE, MAP_SHARED, h->memfd, 0);
	ck_assert_ptr_ne(h->map, MAP_FAILED);
	wave_shm_layout_init(h->map, slots, slots, 0);
	h->efd = eventfd(0, EFD_CLOEXEC);
}

static const struct wave_shm_hello good_hello = {
	.magic = WAVE_SHM_HELLO_MAGIC,
	.proto_major = WAVE_SHM_PROTO_MAJOR,
	.proto_minor = WAVE_SHM_PROTO_MINOR,
};

enum hostile_kind { UNSEALED, NEW_MAJOR, ONE_FD, PIPE_AS_MEMORY, SHORT_HELLO, BAD_LAYOUT, HUGE_RINGS };

static int hostile_hello(const char *uri, enum hostile_kind kind)
{
	struct wave_shm_hello hello = good_hello;
	struct raw_host h;
	int p[2], status;

	raw_memory(&h, 64, kind != UNSEALED);
	h.sock = raw_connect(uri);
	switch (kind) {
	case NEW_MAJOR:
		hello.proto_major = WAVE_SHM_PROTO_MAJOR + 1;
		break;
	case BAD_LAYOUT:
		((struct wave_shm_header *)h.map)->ring[1].slots_off = 4095;
		break;
	case HUGE_RINGS:
		((struct wave_shm_header *)h.map)->ring[0].log2_slots = 30;
		break;
	default:
		break;
	}
	if (kind == ONE_FD) {
		raw_send(h.sock, &hello, sizeof(hello), &h.memfd, 1);
	} else if (kind == PIPE_AS_MEMORY) {
		ck_assert_int_eq(pipe(p), 0);
		raw_send(h.sock, &hello, sizeof(hello), (int[]){ p[0], h.efd }, 2);
		close(p[0]);
		close(p[1]);
	} else if (kind == SHORT_HELLO) {
		raw_send(h.sock, &hello, 8, (int[]){ h.memfd, h.efd }, 2);
	} else {
		raw_send(h.sock, &hello, sizeof(hello), (int[]){ h.memfd, h.efd }, 2);
	}
	status = raw_reply(h.sock);
	close(h.sock);
	close(h.memfd);
	close(h.efd);
	munmap(h.map, h.len);
	return status;
}

START_TEST(refuses_hostile_hellos)
{
	static const struct {
		enum hostile_kind kind;
		int status;
	} cases[] = {
		{ UNSEALED, WAVE_ELAYOUT },	{ NEW_MAJOR, WAVE_EVERSION },
		{ ONE_FD, WAVE_ECORRUPT },	{ PIPE_AS_MEMORY, WAVE_ELAYOUT },
		{ SHORT_HELLO, WAVE_ECORRUPT }, { BAD_LAYOUT, WAVE_ELAYOUT },
		{ HUGE_RINGS, WAVE_ELAYOUT },
	};
	char dir[64], uri[128];
	struct acceptor ac;

	tmpdir_make(dir);
	struct wave_chan_listener *l = listen_in(dir, NULL, uri, sizeof(uri));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		accept_start(&ac, l);
		ck_assert_int_eq(hostile_hello(uri, cases[i].kind), cases[i].status);
		ck_assert_int_eq(accept_finish(&ac), -cases[i].status);
	}
	/* the listener is still good for an honest host */
	struct wave_chan *h;
	accept_start(&ac, l);
	ck_assert_int_eq(wave_chan_open(uri, NULL, &h), 0);
	ck_assert_int_eq(accept_finish(&ac), 0);
	wave_chan_close(h);
	wave_chan_listener_close(l);
	tmpdir_rm(dir);
}
END_TEST

/* Open descriptors of this process. */
static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* A raw agent that answers a hello with a zero-length datagram carrying an
 * eventfd (what a SEQPACKET receiver cannot tell from end-of-file). */
static void *empty_reply_agent(void *a)
{
	int lfd = *(int *)a, s, efd;
	char buf[256];

	s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (s < 0)
		abort();
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	char cbuf[CMSG_SPACE(sizeof(int) * 4)];
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf) };
	if (recvmsg(s, &m, MSG_CMSG_CLOEXEC) < 0)
		abort();
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm))
		for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(fd));
			close(fd);
		}
	efd = eventfd(0, EFD_CLOEXEC);
	raw_send(s, "", 0, &efd, 1);
	close(efd);
	/* Keep the socket until the host read it: closing first could
	 * discard the datagram. */
	recv(s, buf, sizeof(buf), 0);
	close(s);
	return NULL;
}

/* A zero-length SEQPACKET datagram reads as end-of-file, but may carry
 * descriptors: both ends close every one they receive, whatever the path. */
START_TEST(empty_datagram_fds_are_closed)
{
	char dir[64], uri[128];
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct wave_chan *h = NULL;
	struct acceptor ac;
	pthread_t t;
	int before, lfd;

	tmpdir_make(dir);
	/* The agent end facing a host that sends one. */
	struct wave_chan_listener *l = listen_in(dir, NULL, uri, sizeof(uri));
	before = count_fds();
	for (int i = 0; i < 4; i++) {
		int s = raw_connect(uri), e[2] = { eventfd(0, EFD_CLOEXEC), eventfd(0, EFD_CLOEXEC) };
		accept_start(&ac, l);
		raw_send(s, "", 0, e, 2);
		close(e[0]);
		close(e[1]);
		ck_assert_int_eq(raw_reply(s), WAVE_ECLOSED);
		ck_assert_int_eq(accept_finish(&ac), -WAVE_ECLOSED);
		close(s);
	}
	ck_assert_int_eq(count_fds(), before);
	wave_chan_listener_close(l);

	/* The host end facing an agent that answers with one. */
	snprintf(a.sun_path, sizeof(a.sun_path), "%s/raw.sock", dir);
	snprintf(uri, sizeof(uri), "shm://%s", a.sun_path);
	lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(lfd, 4), 0);
	before = count_fds();
	ck_assert_int_eq(pthread_create(&t, NULL, empty_reply_agent, &lfd), 0);
	ck_assert_int_eq(wave_chan_open(uri, NULL, &h), -WAVE_EREFUSED);
	pthread_join(t, NULL);
	ck_assert_int_eq(count_fds(), before);
	close(lfd);
	tmpdir_rm(dir);
}
END_TEST

START_TEST(refuses_rings_above_listener_limit)
{
	char dir[64], uri[128];
	struct wave_chan_opts lo, ho;
	struct acceptor ac;
	struct wave_chan *h;

	tmpdir_make(dir);
	wave_chan_opts_init(&lo);
	lo.max_slots = 64;
	struct wave_chan_listener *l = listen_in(dir, &lo, uri, sizeof(uri));
	wave_chan_opts_init(&ho);
	ho.host_to_agent_slots = 1024;
	accept_start(&ac, l);
	ck_assert_int_eq(wave_chan_open(uri, &ho, &h), -WAVE_ELAYOUT);
	ck_assert_int_eq(accept_finish(&ac), -WAVE_ELAYOUT);
	wave_chan_listener_close(l);
	tmpdir_rm(dir);
}
END_TEST

/*
 * A host that completes the handshake, sends valid messages, and scribbles
 * random bytes over the whole shared region between them. The agent must
 * only ever return well-formed messages in sequence, or an error; under
 * ASan any stray access fails the test.
 */
static void scribbling_host(const char *uri, uint64_t seed)
{
	struct wave_shm_hello hello = good_hello;
	struct raw_host h;
	struct wave_chan *ch = NULL;
	int fds[4], nfds = 0;

	raw_memory(&h, 64, true);
	h.sock = raw_connect(uri);
	raw_send(h.sock, &hello, sizeof(hello), (int[]){ h.memfd, h.efd }, 2);
	/* take the agent's reply and doorbell, then act as a normal host on a
	 * second mapping of the same memory */
	char cbuf[CMSG_SPACE(sizeof(int) * 4)];
	struct wave_shm_reply r;
	struct iovec iov = { &r, sizeof(r) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf) };
	if (recvmsg(h.sock, &m, 0) != sizeof(r) || r.status != 0)
		_exit(2);
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm))
		memcpy(&fds[nfds++], CMSG_DATA(cm), sizeof(int));
	struct wave_shm_header hdr;
	memcpy(&hdr, h.map, sizeof(hdr));
	void *map2 = mmap(NULL, h.len, PROT_READ | PROT_WRITE, MAP_SHARED, h.memfd, 0);
	struct wave_chan_opts o;
	wave_chan_opts_init(&o);
	if (wave_shm_chan_new(map2, h.len, &hdr, &o, WAVE_ROLE_HOST,
			      (struct wave_shm_doorbell){ h.sock, h.efd, fds[0] }, &ch) != 0)
		_exit(3);
	uint64_t x = seed | 1;
	uint8_t *bytes = h.map;
	for (uint64_t i = 0; i < 200000; i++) {
		struct wave_msg msg;
		msg_make(&msg, i);
		if (wave_chan_send_burst(ch, &msg, 1) < 0)
			break; /* our own end saw the damage: fine */
		for (int k = 0; k < 4; k++) { /* xorshift: a few random bytes */
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			bytes[x % h.len] = (uint8_t)(x >> 32);
		}
	}
	_exit(0);
}

START_TEST(survives_scribbling_host)
{
	char dir[64], uri[128];
	struct wave_chan *a;
	struct wave_msg m[16];
	uint32_t expect_seq = 1;
	int status, k;
	pid_t pid;

	tmpdir_make(dir);
	struct wave_chan_listener *l = listen_in(dir, NULL, uri, sizeof(uri));
	pid = fork();
	if (pid == 0)
		scribbling_host(uri, 0x5eed0000u + (uint64_t)_i);
	ck_assert_int_eq(wave_chan_accept(l, WAVE_MS(10000), &a), 0);
	/* Ends with an error: corruption seen, or the host gone (its socket). */
	while ((k = wave_chan_recv_burst(a, m, 16)) >= 0) {
		for (int i = 0; i < k; i++, expect_seq++) {
			if (m[i].seq != expect_seq || m[i].type == 0)
				ck_abort_msg("bad message returned: seq %u type %u", m[i].seq,
					     m[i].type);
		}
		int w;
		if (k == 0 && (w = wave_chan_wait(a, -1)) < 0) {
			k = w;
			break;
		}
	}
	ck_assert_msg(k == -WAVE_ECORRUPT || k == -WAVE_ECLOSED, "ended with %s", wave_strerror(k));
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	wave_chan_close(a);
	wave_chan_listener_close(l);
	tmpdir_rm(dir);
}
END_TEST

/* ---- corrupt counters ----------------------------------------------------- */

/* A file:// pair plus a third mapping to tamper with. */
struct tamper {
	struct pair p;
	uint8_t *map;
	size_t len;
	struct wave_shm_header h;
};

static void tamper_open(struct tamper *t, uint32_t slots, uint32_t n_mbox)
{
	struct wave_chan_opts o;
	char path[128];
	int fd;

	test_transport = "file";
	wave_chan_opts_init(&o);
	o.host_to_agent_slots = slots;
	o.agent_to_host_slots = slots;
	o.mailboxes = n_mbox;
	pair_open(&t->p, &o);
	snprintf(path, sizeof(path), "%s/chan", t->p.dir);
	fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	t->len = wave_shm_layout_size(slots, slots, n_mbox);
	t->map = mmap(NULL, t->len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	ck_assert_ptr_ne(t->map, MAP_FAILED);
	memcpy(&t->h, t->map, sizeof(t->h));
}

START_TEST(impossible_stamp_fails_the_channel)
{
	struct tamper t;
	struct wave_msg m;

	tamper_open(&t, 8, 0);
	msg_make(&m, 1);
	ck_assert_int_eq(wave_chan_send_burst(t.p.host, &m, 1), 1);
	struct wave_shm_slot *s = (void *)(t.map + t.h.ring[WAVE_DIR_H2A].slots_off);
	atomic_store(&s[0].stamp, 77); /* neither "not yet" nor "new" */
	ck_assert_int_eq(wave_chan_recv_burst(t.p.agent, &m, 1), -WAVE_ECORRUPT);
	ck_assert_int_eq(wave_chan_recv_burst(t.p.agent, &m, 1), -WAVE_ECORRUPT);
	ck_assert_int_eq(wave_chan_wait(t.p.agent, 0), -WAVE_ECORRUPT);
	munmap(t.map, t.len);
	pair_close(&t.p);
}
END_TEST

START_TEST(impossible_credit_fails_the_channel)
{
	struct tamper t;
	struct wave_msg m[8];

	tamper_open(&t, 8, 0);
	for (int i = 0; i < 8; i++)
		msg_make(&m[i], (uint64_t)i);
	ck_assert_int_eq(wave_chan_send_burst(t.p.host, m, 8), 8);
	struct wave_shm_ctrl *c = (void *)(t.map + t.h.ctrl_off[WAVE_SIDE_HOST]);
	atomic_store(&c->credit, 1000); /* more consumed than was ever sent */
	ck_assert_int_eq(wave_chan_send_burst(t.p.host, m, 1), -WAVE_ECORRUPT);
	ck_assert_int_eq(wave_chan_send_burst(t.p.host, m, 1), -WAVE_ECORRUPT);
	munmap(t.map, t.len);
	pair_close(&t.p);
}
END_TEST

/* ---- mailboxes -------------------------------------------------------------- */

/* A hostile agent: a stamp that jumps past "one more than taken", or a
 * message of type 0, fails the host's channel; a hostile host's taken
 * counter ahead of the puts fails the agent's. Nothing is returned. */
START_TEST(hostile_mailbox_fails_the_channel)
{
	struct tamper t;
	struct wave_msg m, got;
	struct wave_shm_slot *mb;
	_Atomic uint32_t *taken;

	tamper_open(&t, 8, 4);
	mb = (void *)(t.map + t.h.mbox_off);
	taken = (void *)(t.map + t.h.mbox_taken_off);
	msg_make(&m, 1);
	ck_assert_int_eq(wave_chan_mbox_put(t.p.agent, 2, &m), 0);
	ck_assert_int_eq(wave_chan_mbox_take(t.p.host, 2, &got), 1);
	ck_assert_int_eq(msg_check(&got, 1), 0);
	atomic_store(&mb[1].stamp, 2); /* put jumps: taken is 0 */
	memset(&got, 0, sizeof(got));
	ck_assert_int_eq(wave_chan_mbox_take(t.p.host, 1, &got), -WAVE_ECORRUPT);
	ck_assert_uint_eq(got.type, 0); /* nothing copied out */
	ck_assert_int_eq(wave_chan_mbox_take(t.p.host, 2, &got), -WAVE_ECORRUPT);
	ck_assert_int_eq(wave_chan_recv_burst(t.p.host, &got, 1), -WAVE_ECORRUPT);
	munmap(t.map, t.len);
	pair_close(&t.p);

	tamper_open(&t, 8, 4);
	mb = (void *)(t.map + t.h.mbox_off);
	mb[0].type = 0;
	atomic_store(&mb[0].stamp, 1); /* "full", but of no message */
	ck_assert_int_eq(wave_chan_mbox_take(t.p.host, 0, &got), -WAVE_ECORRUPT);
	munmap(t.map, t.len);
	pair_close(&t.p);

	tamper_open(&t, 8, 4);
	taken = (void *)(t.map + t.h.mbox_taken_off);
	atomic_store(&taken[3], 5); /* taken ahead of anything put */
	ck_assert_int_eq(wave_chan_mbox_put(t.p.agent, 3, &m), -WAVE_ECORRUPT);
	ck_assert_int_eq(wave_chan_send_burst(t.p.agent, &m, 1), -WAVE_ECORRUPT);
	munmap(t.map, t.len);
	pair_close(&t.p);
}
END_TEST

/* A minor-0 layout knew no mailboxes: whatever its reserved words hold,
 * the channel has none. */
START_TEST(minor_zero_layout_has_no_mailboxes)
{
	struct wave_chan_opts o;
	struct tamper t;
	struct wave_chan *h = NULL;
	struct wave_msg m;

	tamper_open(&t, 16, 4);
	((struct wave_shm_header *)t.map)->layout_minor = 0;
	wave_chan_opts_init(&o);
	o.timeout_ms = 1000;
	ck_assert_int_eq(wave_chan_open(t.p.uri, &o, &h), 0);
	ck_assert_int_eq(wave_chan_mailboxes(h), 0);
	msg_make(&m, 1);
	ck_assert_int_eq(wave_chan_mbox_take(h, 0, &m), -EINVAL);
	wave_chan_close(h);
	munmap(t.map, t.len);
	pair_close(&t.p);
}
END_TEST

/* ---- file:// layout header ------------------------------------------------ */

static int attach_after(void (*spoil)(struct wave_shm_header *))
{
	struct wave_chan_opts o;
	struct tamper t;
	struct wave_chan *h = NULL;
	int ret;

	tamper_open(&t, 16, 4);
	spoil((struct wave_shm_header *)t.map);
	wave_chan_opts_init(&o);
	o.timeout_ms = 50;
	ret = wave_chan_open(t.p.uri, &o, &h);
	ck_assert_ptr_null(h);
	munmap(t.map, t.len);
	pair_close(&t.p);
	return ret;
}

static void bad_magic(struct wave_shm_header *h) { h->magic ^= 1; }
static void new_major(struct wave_shm_header *h) { h->layout_major++; }
static void tiny_header(struct wave_shm_header *h) { h->header_size = 8; }
static void unknown_flag(struct wave_shm_header *h) { h->flags = 1; }
static void beyond_file(struct wave_shm_header *h) { h->total_size = 1ull << 40; }
static void zero_ring(struct wave_shm_header *h) { h->ring[0].log2_slots = 0; }
static void giant_ring(struct wave_shm_header *h) { h->ring[1].log2_slots = 17; }
static void misaligned(struct wave_shm_header *h) { h->ring[0].slots_off += 64; }
static void overlapping(struct wave_shm_header *h) { h->ring[1].slots_off = h->ring[0].slots_off; }
static void ctrl_in_header(struct wave_shm_header *h) { h->ctrl_off[1] = 0; }
static void ring_past_end(struct wave_shm_header *h) { h->ring[1].slots_off = h->total_size; }
static void never_ready(struct wave_shm_header *h) { atomic_store(&h->ready, 0); }
static void mbox_too_many(struct wave_shm_header *h) { h->n_mbox = WAVE_CHAN_MAX_MAILBOXES + 1; }
static void mbox_misaligned(struct wave_shm_header *h) { h->mbox_off += 64; }
static void mbox_on_ring(struct wave_shm_header *h) { h->mbox_off = h->ring[1].slots_off; }
static void taken_on_mbox(struct wave_shm_header *h) { h->mbox_taken_off = h->mbox_off; }
static void taken_past_end(struct wave_shm_header *h) { h->mbox_taken_off = h->total_size; }
static void mbox_beyond(struct wave_shm_header *h) { h->n_mbox = 4096; }

START_TEST(bad_layout_headers_refused)
{
	static const struct {
		void (*spoil)(struct wave_shm_header *);
		int err;
	} cases[] = {
		{ bad_magic, -WAVE_ELAYOUT },	  { new_major, -WAVE_EVERSION },
		{ tiny_header, -WAVE_ELAYOUT },	  { unknown_flag, -WAVE_ELAYOUT },
		{ beyond_file, -WAVE_ELAYOUT },	  { zero_ring, -WAVE_ELAYOUT },
		{ giant_ring, -WAVE_ELAYOUT },	  { misaligned, -WAVE_ELAYOUT },
		{ overlapping, -WAVE_ELAYOUT },	  { ctrl_in_header, -WAVE_ELAYOUT },
		{ ring_past_end, -WAVE_ELAYOUT }, { never_ready, -ETIMEDOUT },
		{ mbox_too_many, -WAVE_ELAYOUT }, { mbox_misaligned, -WAVE_ELAYOUT },
		{ mbox_on_ring, -WAVE_ELAYOUT },  { taken_on_mbox, -WAVE_ELAYOUT },
		{ taken_past_end, -WAVE_ELAYOUT }, { mbox_beyond, -WAVE_ELAYOUT },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ck_assert_msg(attach_after(cases[i].spoil) == cases[i].err, "case %zu", i);
}
END_TEST

/* ---- a peer that dies ------------------------------------------------------ */

START_TEST(killed_host_is_noticed)
{
	struct wave_chan_opts o;
	struct pair p;
	struct wave_msg m;
	int status, k;
	pid_t pid;

	test_transport = "shm";
	wave_chan_opts_init(&o);
	pid = pair_fork(&p, &o);
	if (pid == 0) {
		for (uint64_t i = 0; i < 5; i++) {
			msg_make(&m, i);
			if (wave_chan_send_burst(p.host, &m, 1) != 1)
				_exit(1);
		}
		raise(SIGKILL); /* no close: only the socket tells */
	}
	recv_expect(p.agent, 0, 5, 1);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	/* _i == 0: a sleeping reader; _i == 1: a reader that only polls */
	if (_i == 0)
		ck_assert_int_eq(wave_chan_wait(p.agent, -1), 1);
	if (_i == 2) {
		/* An event loop's reader (the agent's): trywait, then sleep on
		 * the fd. Woken by the death, it must see it in a few turns,
		 * not after thousands of polls with the fd still readable. */
		struct pollfd pf = { .fd = wave_chan_fd(p.agent), .events = POLLIN };
		unsigned turns = 0;
		while ((k = wave_chan_recv_burst(p.agent, &m, 1)) == 0) {
			ck_assert_uint_lt(++turns, 10);
			if (wave_chan_trywait(p.agent) == 0)
				ck_assert_int_eq(poll(&pf, 1, -1), 1);
		}
	}
	while ((k = wave_chan_recv_burst(p.agent, &m, 1)) == 0)
		;
	ck_assert_int_eq(k, -WAVE_ECLOSED);
	pair_close(&p);
}
END_TEST

/* ---- URIs and options ----------------------------------------------------- */

START_TEST(uri_and_option_errors)
{
	struct wave_chan_opts o;
	struct wave_chan *ch = NULL;
	struct wave_chan_listener *l = NULL;
	char longpath[200];

	ck_assert_int_eq(wave_chan_open("nonsense", NULL, &ch), -WAVE_EURI);
	ck_assert_int_eq(wave_chan_open("tcp://1.2.3.4", NULL, &ch), -WAVE_EURI);
	ck_assert_int_eq(wave_chan_open("shm://relative/path", NULL, &ch), -WAVE_EURI);
	ck_assert_int_eq(wave_chan_open("shm:///nonexistent/dir/agent.sock", NULL, &ch), -ENOENT);
	ck_assert_int_eq(wave_chan_open(NULL, NULL, &ch), -EINVAL);
	ck_assert_int_eq(wave_chan_open("shm:///x", NULL, NULL), -EINVAL);
	ck_assert_int_eq(wave_chan_listen("file:///tmp/x", NULL, &l), -ENOTSUP);
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	char uri[256];
	snprintf(uri, sizeof(uri), "shm://%s", longpath);
	ck_assert_int_eq(wave_chan_listen(uri, NULL, &l), -ENAMETOOLONG);
	ck_assert_ptr_null(ch);
	ck_assert_ptr_null(l);

	wave_chan_opts_init(&o);
	o.host_to_agent_slots = 3;
	ck_assert_int_eq(wave_chan_open("shm:///x", &o, &ch), -EINVAL);
	wave_chan_opts_init(&o);
	o.agent_to_host_slots = WAVE_CHAN_MAX_SLOTS * 2;
	ck_assert_int_eq(wave_chan_open("shm:///x", &o, &ch), -EINVAL);
	wave_chan_opts_init(&o);
	o.flags = 1u << 30;
	ck_assert_int_eq(wave_chan_open("shm:///x", &o, &ch), -EINVAL);
	wave_chan_opts_init(&o);
	o.size = 3;
	ck_assert_int_eq(wave_chan_open("shm:///x", &o, &ch), -EINVAL);
	wave_chan_opts_init(&o);
	o.n_allow_uids = 2; /* with no array */
	ck_assert_int_eq(wave_chan_listen("shm:///tmp/y.sock", &o, &l), -EINVAL);
	ck_assert_int_eq(wave_chan_opts_init(NULL), -EINVAL);
	ck_assert_int_eq(wave_chan_accept(NULL, 0, &ch), -EINVAL);
	ck_assert_int_eq(wave_chan_listener_fd(NULL), -EINVAL);
	wave_chan_close(NULL);
	wave_chan_listener_close(NULL);
}
END_TEST

START_TEST(accept_times_out_without_host)
{
	char dir[64], uri[128];
	struct wave_chan *ch = NULL;

	tmpdir_make(dir);
	struct wave_chan_listener *l = listen_in(dir, NULL, uri, sizeof(uri));
	ck_assert_int_eq(wave_chan_accept(l, 0, &ch), -ETIMEDOUT);
	ck_assert_int_eq(wave_chan_accept(l, WAVE_MS(20), &ch), -ETIMEDOUT);
	ck_assert_ptr_null(ch);
	wave_chan_listener_close(l);
	tmpdir_rm(dir);
}
END_TEST

START_TEST(errors_and_version)
{
	ck_assert_str_eq(wave_strerror(-WAVE_ECORRUPT), wave_strerror(WAVE_ECORRUPT));
	ck_assert_str_eq(wave_strerror(-WAVE_ECLOSED), "channel closed by peer");
	ck_assert_str_eq(wave_strerror(-EINVAL), "Invalid argument");
	ck_assert_str_eq(wave_strerror(0), "success");
	ck_assert_str_eq(wave_strerror(WAVE_ERRNO_MAX), "unknown error");
	ck_assert_str_eq(wave_strerror(-999), "unknown error");
	for (int e = WAVE_ERRNO_BASE; e < WAVE_ERRNO_MAX; e++)
		ck_assert_str_ne(wave_strerror(e), "unknown error");
	ck_assert_uint_eq(wave_version(), WAVE_VERSION_NUMBER);
	ck_assert_str_eq(wave_version_string(), WAVE_VERSION_STRING);
	ck_assert_int_eq(wave_log_set_level(WAVE_LOG_DEBUG + 1), -EINVAL);
	ck_assert_int_eq(wave_log_set_level(WAVE_LOG_INFO), 0);
	ck_assert_int_eq(wave_log_get_level(), WAVE_LOG_INFO);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("shm");
	TCase *tc = tcase_create("shm");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, refuses_uid_not_allowed);
	tcase_add_test(tc, socket_is_owner_only_and_removed_on_close);
	tcase_add_test(tc, socket_opens_to_allowed_uids);
	tcase_add_test(tc, stale_socket_replaced_live_one_kept);
	tcase_add_test(tc, no_fd_for_the_connection);
	tcase_add_test(tc, no_fd_for_the_hello);
	tcase_add_test(tc, refuses_hostile_hellos);
	tcase_add_test(tc, stalled_hosts_do_not_keep_others_out);
	tcase_add_test(tc, empty_datagram_fds_are_closed);
	tcase_add_test(tc, refuses_rings_above_listener_limit);
	tcase_add_loop_test(tc, survives_scribbling_host, 0, 8);
	tcase_add_test(tc, impossible_stamp_fails_the_channel);
	tcase_add_test(tc, impossible_credit_fails_the_channel);
	tcase_add_test(tc, bad_layout_headers_refused);
	tcase_add_test(tc, hostile_mailbox_fails_the_channel);
	tcase_add_test(tc, minor_zero_layout_has_no_mailboxes);
	tcase_add_loop_test(tc, killed_host_is_noticed, 0, 3);
	tcase_add_test(tc, uri_and_option_errors);
	tcase_add_test(tc, accept_times_out_without_host);
	tcase_add_test(tc, errors_and_version);
	suite_add_tcase(s, tc);
	return wave_check_run(s);
}
