/* SPDX-License-Identifier: MIT */
/*
 * shm:// rendezvous. The agent listens on a Unix SOCK_SEQPACKET socket; the
 * host connects, creates the channel memory as a sealed memfd, and sends it
 * with its doorbell eventfd; the agent checks the peer's uid, the seals, the
 * size and the layout, places its half on its NUMA node, and answers with its
 * own doorbell eventfd or with a refusal that says why. The socket then stays
 * open only as a liveness signal.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "../core/core.h"
#include "../core/unix_bind.h"
#include "shm.h"
#include "shm_wire.h"

#define MAX_FDS 4 /* we expect at most 2; room to see (and close) extras */

/* Hosts connected whose hello has not arrived yet, judged at once when it
 * does; as many more wait in the listen backlog. */
#define MAX_PENDING 64
#define LISTEN_BACKLOG MAX_PENDING

struct shm_pending {
	int sock;
	uint64_t since_ns;    /* accepted then */
	uint64_t deadline_ns; /* refused when no hello came by then */
	struct ucred cred;
};

struct shm_listener {
	struct wave_chan_listener base;
	int fd;
	/* What wave_chan_listener_fd() gives: an epoll set of @fd and the
	 * pending hosts' sockets, readable when any of them has something. */
	int epfd;
	struct shm_pending pend[MAX_PENDING];
	unsigned n_pend;
	/* Whether @fd is in the epoll set (out of descriptors, it is not:
	 * the backlog would keep it readable and its pollers spinning). */
	bool fd_watched;
	/* Out of descriptors, @fd is unwatched until @timer (in the epoll
	 * set) expires too; @spare is held for that moment (out_of_fds()). */
	bool backing_off;
	int timer;
	int spare;
	dev_t dev; /* identity of the socket file we made, to unlink only it */
	ino_t ino;
	struct sockaddr_un addr;
	struct wave_chan_opts o;
	uid_t *allow;
	size_t n_allow;
};

static void close_fds(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

static int sock_addr(const char *path, struct sockaddr_un *a)
{
	if (path[0] != '/')
		return -WAVE_EURI;
	if (strlen(path) >= sizeof(a->sun_path))
		return -ENAMETOOLONG;
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	strcpy(a->sun_path, path);
	return 0;
}

/* Waits for @fd to be readable. 0, -ETIMEDOUT, or -errno. */
static int wait_readable(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int r;

	do
		r = poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	return r == 0 ? -ETIMEDOUT : 0;
}

/* What poll() says of @fd now, for @events: its revents, or 0. */
static short poll_now(int fd, short events)
{
	struct pollfd p = { .fd = fd, .events = events };

	return poll(&p, 1, 0) == 1 ? p.revents : 0;
}

static int send_with_fds(int sock, const void *buf, size_t len, const int *fds, int nfds)
{
	char cbuf[CMSG_SPACE(sizeof(int) * MAX_FDS)] = { 0 };
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (nfds > 0) {
		m.msg_control = cbuf;
		m.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
	}
	if (sendmsg(sock, &m, MSG_NOSIGNAL) != (ssize_t)len)
		return errno ? -errno : -EIO;
	return 0;
}

/*
 * Receives one datagram of exactly @len bytes and the fds that came with it.
 * Every fd received is returned on success and closed on every failure,
 * including a zero-length datagram (read as the end, but it may carry fds).
 */
static int recv_with_fds(int sock, void *buf, size_t len, int *fds, int *nfds)
{
	char cbuf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf) };
	ssize_t r;

	*nfds = 0;
	do
		r = recvmsg(sock, &m, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (*nfds < MAX_FDS)
				fds[(*nfds)++] = fd;
			else
				close(fd);
		}
	}
	if (r == 0 || (size_t)r != len || (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		/* Room left for descriptors, yet truncated: the kernel had no
		 * free slot to install them in, not a peer's fault. */
		bool no_fds = r > 0 && (size_t)r == len && !(m.msg_flags & MSG_TRUNC) &&
			      *nfds < MAX_FDS;

		close_fds(fds, *nfds);
		*nfds = 0;
		return r == 0 ? -WAVE_ECLOSED : no_fds ? -EMFILE : -WAVE_ECORRUPT;
	}
	return 0;
}

/* ---- agent side ---------------------------------------------------------- */

/* Out of descriptors or memory for them: the agent's state, not the host's fault. */
static bool fd_shortage(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

static const struct wave_listener_ops shm_listener_ops;

static int listener_epoll(struct shm_listener *l)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = l->fd };
	struct epoll_event tev = { .events = EPOLLIN, .data.fd = -1 };

	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0 || epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->fd, &ev) < 0)
		return -errno;
	l->timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (l->timer < 0 || epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->timer, &tev) < 0)
		return -errno;
	l->fd_watched = true;
	l->spare = open("/dev/null", O_RDONLY | O_CLOEXEC); /* none: no refusal then */
	return 0;
}

/* Watches @fd in the epoll set again, or no longer. */
static void watch_listen_fd(struct shm_listener *l, bool on)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = l->fd };

	if (on == l->fd_watched)
		return;
	if (epoll_ctl(l->epfd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, l->fd, &ev) == 0)
		l->fd_watched = on;
}

/* Whether the allow list admits no one but the listener's own user. */
static bool owner_only(const struct shm_listener *l)
{
	for (size_t i = 0; i < l->n_allow; i++)
		if (l->allow[i] != geteuid())
			return false;
	return true;
}

static int shm_listen(const char *path, const struct wave_chan_opts *o,
		      struct wave_chan_listener **out)
{
	struct shm_listener *l;
	struct stat st;
	int ret;

	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->base.ops = &shm_listener_ops;
	l->o = *o;
	l->fd = l->epfd = l->timer = l->spare = -1;
	l->n_allow = o->n_allow_uids ? o->n_allow_uids : 1;
	l->allow = calloc(l->n_allow, sizeof(uid_t));
	if (!l->allow) {
		free(l);
		return -ENOMEM;
	}
	if (o->n_allow_uids)
		memcpy(l->allow, o->allow_uids, l->n_allow * sizeof(uid_t));
	else
		l->allow[0] = geteuid();
	l->o.allow_uids = NULL; /* the copy above is the one in force */
	if ((ret = sock_addr(path, &l->addr)) < 0)
		goto err;

	/* Nonblocking: accept_new() takes what the backlog holds. */
	l->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0) {
		ret = -errno;
		goto err;
	}
	if ((ret = wave_unix_bind(l->fd, &l->addr)) < 0)
		goto err_fd;
	/* Owner only, unless the allow list names other users: then anyone
	 * may connect and the uid check at accept (the kernel's SO_PEERCRED)
	 * decides. A peer that slips in before the chmod faces that check too. */
	if (chmod(path, owner_only(l) ? 0600 : 0666) < 0 || lstat(path, &st) < 0 ||
	    listen(l->fd, LISTEN_BACKLOG) < 0) {
		ret = -errno;
		unlink(path);
		goto err_fd;
	}
	l->dev = st.st_dev;
	l->ino = st.st_ino;
	if ((ret = listener_epoll(l)) < 0) {
		unlink(path);
		goto err_fd;
	}
	wave_info("listening on shm://%s", path);
	*out = &l->base;
	return 0;
err_fd:
	close(l->fd);
	if (l->epfd >= 0)
		close(l->epfd);
	if (l->timer >= 0)
		close(l->timer);
err:
	wave_warn("cannot listen on shm://%s: %s", path, wave_strerror(ret));
	free(l->allow);
	free(l);
	return ret;
}

/* Sends a refusal that says why, logs it, and returns -code. */
static int refuse(int sock, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int refuse(int sock, int code, const char *fmt, ...)
{
	struct wave_shm_reply r = { .magic = WAVE_SHM_REPLY_MAGIC, .proto_major = WAVE_SHM_PROTO_MAJOR,
			   .proto_minor = WAVE_SHM_PROTO_MINOR, .status = code };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r.reason, sizeof(r.reason), fmt, ap);
	va_end(ap);
	wave_warn("refused a host: %s", r.reason);
	send_with_fds(sock, &r, sizeof(r), NULL, 0);
	close(sock);
	return -code;
}

static bool uid_allowed(const struct shm_listener *l, uid_t uid)
{
	for (size_t i = 0; i < l->n_allow; i++)
		if (l->allow[i] == uid)
			return true;
	return false;
}

/* Checks the memfd the host sent and maps it. */
static int map_host_memory(const struct shm_listener *l, int memfd, void **map, size_t *len,
			   struct wave_shm_header *h, const char **why)
{
	size_t max = wave_shm_layout_size(l->o.max_slots, l->o.max_slots, WAVE_CHAN_MAX_MAILBOXES);
	struct stat st;
	int seals, ret;

	/* Without these seals the host could shrink the file under us and
	 * turn our next access into SIGBUS. */
	seals = fcntl(memfd, F_GET_SEALS);
	if (seals < 0 || (seals & (F_SEAL_SHRINK | F_SEAL_SEAL)) != (F_SEAL_SHRINK | F_SEAL_SEAL)) {
		*why = "channel memory is not a memfd sealed against shrinking";
		return -WAVE_ELAYOUT;
	}
	if (fstat(memfd, &st) < 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size < WAVE_SHM_PAGE ||
	    (size_t)st.st_size > max) {
		*why = "channel memory has an impossible size";
		return -WAVE_ELAYOUT;
	}
	*len = (size_t)st.st_size;
	*map = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (*map == MAP_FAILED) {
		*why = "cannot map channel memory";
		return -errno;
	}
	memcpy(h, *map, sizeof(*h)); /* judge a private copy only */
	if ((ret = wave_shm_layout_check(h, *len, l->o.max_slots)) < 0) {
		*why = ret == -WAVE_EVERSION ? "layout version not supported"
					     : "layout header invalid or rings too large";
		munmap(*map, *len);
	}
	return ret;
}

/* Judges the hello that arrived on @sock from @cred and answers it. Return:
 * 0 with the channel, or the refusal's error (the socket is closed). */
static int judge_hello(struct shm_listener *l, int sock, const struct ucred *cred,
		       struct wave_chan **out)
{
	struct wave_shm_header h;
	struct wave_shm_hello hello;
	const char *why = NULL;
	int fds[MAX_FDS], nfds = 0, my_efd, ret;
	size_t len;
	void *map;

	/* Read the hello before judging the peer: closing a Unix socket with
	 * unread data resets the peer, which would lose our refusal's reason. */
	ret = recv_with_fds(sock, &hello, sizeof(hello), fds, &nfds);
	if (ret == -WAVE_ECLOSED && (poll_now(sock, POLLRDHUP) & (POLLHUP | POLLRDHUP))) {
		/* Gone without a word (not an empty message: the peer hung
		 * up): nobody to refuse. Such is the probe of a second
		 * listener on this path, which finds this one alive
		 * (wave_unix_bind()), and no host failed. */
		wave_dbg("shm: pid %d closed its connection without a hello", (int)cred->pid);
		close(sock);
		return -EAGAIN;
	}
	if (ret < 0 && fd_shortage(-ret))
		return refuse(sock, -ret, "the agent has no file descriptor left for pid %d",
			      (int)cred->pid);
	if (ret < 0)
		return refuse(sock, -ret, "no valid hello from pid %d: %s", (int)cred->pid,
			      wave_strerror(ret));
	if (!uid_allowed(l, cred->uid)) {
		close_fds(fds, nfds);
		return refuse(sock, WAVE_EREFUSED, "uid %u (pid %d) is not allowed",
			      (unsigned)cred->uid, (int)cred->pid);
	}
	if (hello.magic != WAVE_SHM_HELLO_MAGIC || nfds != 2) {
		close_fds(fds, nfds);
		return refuse(sock, WAVE_ECORRUPT, "malformed hello from pid %d", (int)cred->pid);
	}
	if (hello.proto_major != WAVE_SHM_PROTO_MAJOR) {
		close_fds(fds, nfds);
		return refuse(sock, WAVE_EVERSION, "protocol %u.%u, this agent speaks %u.x",
			      hello.proto_major, hello.proto_minor, WAVE_SHM_PROTO_MAJOR);
	}
	ret = map_host_memory(l, fds[0], &map, &len, &h, &why);
	close(fds[0]);
	if (ret < 0) {
		close(fds[1]);
		return refuse(sock, -ret, "pid %d: %s", (int)cred->pid, why);
	}
	/* The host's doorbell: never let a bad fd block us. */
	fcntl(fds[1], F_SETFL, O_NONBLOCK);
	my_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (my_efd < 0 || (ret = wave_shm_place(map, &h, WAVE_ROLE_AGENT, l->o.numa_node)) < 0) {
		ret = my_efd < 0 ? -errno : ret;
		if (my_efd >= 0)
			close(my_efd);
		close(fds[1]);
		munmap(map, len);
		return refuse(sock, -ret, "agent cannot set up: %s", wave_strerror(ret));
	}
	struct wave_shm_reply ok = { .magic = WAVE_SHM_REPLY_MAGIC, .proto_major = WAVE_SHM_PROTO_MAJOR,
			    .proto_minor = WAVE_SHM_PROTO_MINOR, .status = 0 };
	if ((ret = send_with_fds(sock, &ok, sizeof(ok), &my_efd, 1)) < 0) {
		close(my_efd);
		close(fds[1]);
		munmap(map, len);
		close(sock);
		return ret;
	}
	wave_info("accepted host pid %d uid %u", (int)cred->pid, (unsigned)cred->uid);
	return wave_shm_chan_new(map, len, &h, &l->o, WAVE_ROLE_AGENT,
				 (struct wave_shm_doorbell){ sock, my_efd, fds[1] }, out);
}

/* Takes pending host @i off the list (its socket stays open). */
static int pending_take(struct shm_listener *l, unsigned i, struct ucred *cred)
{
	int sock = l->pend[i].sock;

	*cred = l->pend[i].cred;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, sock, NULL);
	l->pend[i] = l->pend[--l->n_pend];
	if (!l->backing_off)
		watch_listen_fd(l, true); /* a slot is free */
	return sock;
}

/* Out of file descriptors, back to the backlog this long after. */
#define FD_RETRY_NS (100 * 1000000l)

/*
 * No descriptor for a new host: its connection would stay in the
 * backlog, keep @fd readable and the agent's loop spinning, and the host
 * waiting out its timeout for nothing. The spare descriptor kept for this
 * moment makes room to take one host, which then is judged as any other
 * (its hello's descriptors find no room either: it learns why it is
 * refused, judge_hello()); the others wait with @fd unwatched until
 * @timer wakes the listener's pollers FD_RETRY_NS later.
 * Return: the connection taken, or -1.
 */
static int out_of_fds(struct shm_listener *l)
{
	struct itimerspec t = { .it_value = { 0, FD_RETRY_NS } };
	int sock = -1;

	watch_listen_fd(l, false);
	l->backing_off = timerfd_settime(l->timer, 0, &t, NULL) == 0;
	if (l->spare >= 0) {
		close(l->spare);
		l->spare = -1;
		sock = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
	}
	return sock;
}

/* Whether out_of_fds()'s pause is over; its timer is read if so. */
static bool backoff_over(struct shm_listener *l)
{
	uint64_t expired;

	if (l->backing_off && read(l->timer, &expired, sizeof(expired)) == sizeof(expired))
		l->backing_off = false;
	return !l->backing_off;
}

/*
 * Every slot is taken and more hosts wait in the backlog: the pending host
 * that has waited longest without a hello is refused, to make room. A
 * host sends its hello as soon as it has connected, so a slot held without
 * one is most likely a stalled or hostile peer's; without this, a few
 * dozen connections that never speak (reconnected as they time out) kept
 * every well-behaved host out. Return: whether a slot was freed.
 */
static bool evict_stalled(struct shm_listener *l)
{
	unsigned oldest = MAX_PENDING;
	struct ucred cred;
	int sock;

	if (!poll_now(l->fd, POLLIN))
		return false; /* nobody waits */
	for (unsigned i = 0; i < l->n_pend; i++)
		if ((oldest == MAX_PENDING || l->pend[i].since_ns < l->pend[oldest].since_ns) &&
		    !poll_now(l->pend[i].sock, POLLIN))
			oldest = i;
	if (oldest == MAX_PENDING)
		return false; /* every hello is there: judged before long */
	sock = pending_take(l, oldest, &cred);
	refuse(sock, ETIMEDOUT, "no hello from pid %d while other hosts waited", (int)cred.pid);
	return true;
}

/* Accepts the connections waiting in the backlog, as pending hosts. */
static int accept_new(struct shm_listener *l, uint64_t now)
{
	struct epoll_event ev = { .events = EPOLLIN };
	socklen_t clen;
	int sock;

	if (!backoff_over(l))
		return 0;
	if (l->spare < 0) /* given to a host: back once a slot is free */
		l->spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (l->n_pend < MAX_PENDING)
		watch_listen_fd(l, true);
	while (l->n_pend < MAX_PENDING || evict_stalled(l)) {
		struct shm_pending *p = &l->pend[l->n_pend];

		/* Blocking: after the rendezvous the socket only signals
		 * liveness, and every read of the hello is MSG_DONTWAIT. */
		sock = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
		if (sock < 0 && fd_shortage(errno) && (sock = out_of_fds(l)) < 0)
			return 0;
		if (sock < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
		clen = sizeof(p->cred);
		if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &p->cred, &clen) < 0)
			return refuse(sock, WAVE_EREFUSED, "cannot read peer credentials");
		ev.data.fd = sock;
		if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, sock, &ev) < 0)
			return refuse(sock, errno, "agent cannot watch the host: %s", strerror(errno));
		p->sock = sock;
		p->since_ns = now;
		p->deadline_ns = l->o.timeout_ms < 0 ? UINT64_MAX
						     : now + (uint64_t)l->o.timeout_ms * 1000000u;
		l->n_pend++;
	}
	/* Every slot is taken by a host whose hello is there (each is judged
	 * by the next steps), or nobody waits: @fd stays watched, so that a
	 * host connecting later wakes the pollers, and evicts a stalled one. */
	return 0;
}

/*
 * One step, never blocking: take new connections, then judge the first
 * pending host whose hello (or hangup) arrived, or refuse one that ran out
 * of time. Return: 0 with a channel, a refusal's error, or -EAGAIN when no
 * host is ready.
 */
static int accept_step(struct shm_listener *l, struct wave_chan **out)
{
	struct pollfd pfd[MAX_PENDING];
	uint64_t now = wave_now_ns();
	struct ucred cred;
	int ret, sock;

	if ((ret = accept_new(l, now)) < 0)
		return ret;
	for (unsigned i = 0; i < l->n_pend; i++)
		pfd[i] = (struct pollfd){ .fd = l->pend[i].sock, .events = POLLIN };
	if (l->n_pend && poll(pfd, l->n_pend, 0) < 0 && errno != EINTR)
		return -errno;
	for (unsigned i = 0; i < l->n_pend; i++) {
		if (pfd[i].revents) {
			sock = pending_take(l, i, &cred);
			return judge_hello(l, sock, &cred, out);
		}
	}
	for (unsigned i = 0; i < l->n_pend; i++) {
		if (now >= l->pend[i].deadline_ns) {
			sock = pending_take(l, i, &cred);
			return refuse(sock, ETIMEDOUT, "no valid hello from pid %d: %s",
				      (int)cred.pid, wave_strerror(-ETIMEDOUT));
		}
	}
	return -EAGAIN;
}

/*
 * Hosts are accepted without ever waiting for one of them: a host that
 * connects and then stalls its side of the rendezvous only holds a pending
 * slot until its deadline (timeout_ms), while the others are judged as
 * soon as their hello arrives. @timeout_ns bounds how long this call waits
 * for some host to be ready.
 */
static int shm_accept(struct wave_chan_listener *base, int64_t timeout_ns, struct wave_chan **out)
{
	struct shm_listener *l = (struct shm_listener *)base;
	uint64_t end = wave_deadline(timeout_ns);
	struct epoll_event ev;
	uint64_t now, until, wait_ms;
	int ret, ms;

	for (;;) {
		ret = accept_step(l, out);
		if (ret != -EAGAIN)
			return ret;
		now = wave_now_ns();
		if (now >= end)
			return -ETIMEDOUT;
		until = end;
		for (unsigned i = 0; i < l->n_pend; i++)
			if (l->pend[i].deadline_ns < until)
				until = l->pend[i].deadline_ns;
		wait_ms = (until - now + 999999u) / 1000000u;
		ms = until == UINT64_MAX ? -1 : wait_ms > INT32_MAX ? INT32_MAX : (int)wait_ms;
		if (epoll_wait(l->epfd, &ev, 1, ms) < 0 && errno != EINTR)
			return -errno;
	}
}

static int shm_listener_fd(const struct wave_chan_listener *base)
{
	return ((const struct shm_listener *)base)->epfd;
}

static void shm_listener_close(struct wave_chan_listener *base)
{
	struct shm_listener *l = (struct shm_listener *)base;
	struct stat st;

	if (lstat(l->addr.sun_path, &st) == 0 && st.st_dev == l->dev && st.st_ino == l->ino)
		unlink(l->addr.sun_path);
	for (unsigned i = 0; i < l->n_pend; i++)
		close(l->pend[i].sock);
	close(l->epfd);
	close(l->fd);
	close(l->timer);
	if (l->spare >= 0)
		close(l->spare);
	free(l->allow);
	free(l);
}

static const struct wave_listener_ops shm_listener_ops = {
	.accept = shm_accept,
	.fd = shm_listener_fd,
	.close = shm_listener_close,
};

/* ---- host side ----------------------------------------------------------- */

/* Creates the sealed memfd holding the layout, mapped. */
static int make_memory(const struct wave_chan_opts *o, int *memfd, void **map, size_t *len)
{
	int fd, ret;

	*len = wave_shm_layout_size(o->host_to_agent_slots, o->agent_to_host_slots, o->mailboxes);
	fd = memfd_create("wave-chan", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)*len) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	*map = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (*map == MAP_FAILED) {
		ret = -errno;
		close(fd);
		return ret;
	}
	*memfd = fd;
	return 0;
}

/* Reads the agent's answer: 0 with its doorbell fd, or its refusal. */
static int read_reply(int sock, int timeout_ms, int *agent_efd)
{
	struct wave_shm_reply r;
	int fds[MAX_FDS], nfds = 0, ret;

	if ((ret = wait_readable(sock, timeout_ms)) < 0 ||
	    (ret = recv_with_fds(sock, &r, sizeof(r), fds, &nfds)) < 0)
		return ret == -WAVE_ECLOSED ? -WAVE_EREFUSED : ret;
	r.reason[sizeof(r.reason) - 1] = '\0';
	if (r.magic != WAVE_SHM_REPLY_MAGIC || (r.status == 0 && nfds != 1)) {
		close_fds(fds, nfds);
		return -WAVE_ECORRUPT;
	}
	if (r.status != 0) {
		close_fds(fds, nfds);
		wave_warn("agent refused the channel: %s", r.reason);
		/* Only codes we know; anything else is just a refusal. */
		return (r.status > 0 && r.status < WAVE_ERRNO_MAX) ? -r.status : -WAVE_EREFUSED;
	}
	*agent_efd = fds[0];
	fcntl(*agent_efd, F_SETFL, O_NONBLOCK);
	return 0;
}

/* What is left of @deadline in ms for poll() (-1: none). */
static int ms_left(uint64_t deadline)
{
	uint64_t now = wave_now_ns();

	if (deadline == UINT64_MAX)
		return -1;
	return now >= deadline ? 0 : (int)((deadline - now + 999999) / 1000000);
}

/* connect() by @deadline. A Unix socket's connect does not go on in the
 * background: while the agent's backlog is full (hosts that stall its
 * accept, maybe on purpose) a blocking one waits for as long as that
 * lasts, and a non-blocking one fails with EAGAIN; so it is retried every
 * millisecond until the deadline. */
static int connect_by(int sock, const struct sockaddr_un *a, uint64_t deadline)
{
	int flags = fcntl(sock, F_GETFL), ret = 0;

	if (flags < 0 || fcntl(sock, F_SETFL, flags | O_NONBLOCK) < 0)
		return -errno;
	while (connect(sock, (const struct sockaddr *)a, sizeof(*a)) < 0) {
		ret = -errno;
		if (ret != -EAGAIN && ret != -EINTR)
			break;
		if (wave_now_ns() >= deadline) {
			ret = -ETIMEDOUT;
			break;
		}
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
		ret = 0;
	}
	if (fcntl(sock, F_SETFL, flags) < 0 && ret == 0)
		ret = -errno;
	return ret;
}

static int shm_connect(const char *path, const struct wave_chan_opts *o, struct wave_chan **out)
{
	uint64_t deadline = wave_deadline(o->timeout_ms < 0 ? -1 : (int64_t)o->timeout_ms * 1000000);
	struct wave_shm_hello hello = { .magic = WAVE_SHM_HELLO_MAGIC, .proto_major = WAVE_SHM_PROTO_MAJOR,
			       .proto_minor = WAVE_SHM_PROTO_MINOR };
	struct sockaddr_un a;
	struct wave_shm_header h;
	int sock = -1, memfd = -1, my_efd = -1, agent_efd = -1, ret;
	void *map = NULL;
	size_t len = 0;

	if ((ret = sock_addr(path, &a)) < 0)
		return ret;
	sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (sock < 0)
		return -errno;
	if ((ret = connect_by(sock, &a, deadline)) < 0) {
		wave_info("cannot connect to shm://%s: %s", path, wave_strerror(ret));
		goto err;
	}
	if ((ret = make_memory(o, &memfd, &map, &len)) < 0)
		goto err;
	wave_shm_layout_init(map, o->host_to_agent_slots, o->agent_to_host_slots, o->mailboxes);
	memcpy(&h, map, sizeof(h));
	if ((ret = wave_shm_place(map, &h, WAVE_ROLE_HOST, o->numa_node)) < 0)
		goto err;
	my_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (my_efd < 0) {
		ret = -errno;
		goto err;
	}
	if ((ret = send_with_fds(sock, &hello, sizeof(hello), (int[]){ memfd, my_efd }, 2)) < 0 ||
	    (ret = read_reply(sock, ms_left(deadline), &agent_efd)) < 0)
		goto err;
	close(memfd);
	return wave_shm_chan_new(map, len, &h, o, WAVE_ROLE_HOST,
				 (struct wave_shm_doorbell){ sock, my_efd, agent_efd }, out);
err:
	if (map)
		munmap(map, len);
	close_fds((int[]){ sock, memfd, my_efd }, 3);
	return ret;
}

const struct wave_transport wave_transport_shm = {
	.scheme = "shm",
	.open = shm_connect,
	.listen = shm_listen,
};
