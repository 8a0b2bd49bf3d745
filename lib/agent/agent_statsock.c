/* SPDX-License-Identifier: MIT */
/*
 * The stats_socket (docs/config.md): a Unix stream socket on which every
 * connection gets the agent's statistics JSON (wave_agent_stats_json()),
 * then end of file. It is served by the agent's own loop, with the lock
 * held, and never blocks it: the socket and every reader are nonblocking,
 * a reader gets what its socket takes each time round the loop (its fd
 * wakes the loop's epoll when it can take more), and one that does not
 * read its document within STATS_READER_NS is dropped.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../core/config_impl.h"
#include "../core/core.h"
#include "../core/unix_bind.h"
#include "agent_impl.h"

#define STATS_READER_NS (2000000000ull)

/* Binds and listens on @path, owner only. Return: 0 or -errno. */
static int statsock_listen(struct agent_statsock *s, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int ret;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0)
		return -errno;
	if ((ret = wave_unix_bind(s->fd, &sa)) < 0)
		return ret;
	/* Until listen() nobody can connect: the mode is in force first. */
	if (chmod(path, 0600) < 0 || lstat(path, &st) < 0 || listen(s->fd, 16) < 0) {
		ret = -errno;
		unlink(path);
		return ret;
	}
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	return 0;
}

int agent_statsock_open(struct wave_agent *a, struct wave_error *err)
{
	struct agent_statsock *s = &a->stats;
	struct epoll_event ev = { .events = EPOLLIN };
	const char *path = a->cfg->stats_socket;
	int ret;

	if (!path)
		return 0;
	s->path = strdup(path);
	if (!s->path)
		return -ENOMEM;
	ret = statsock_listen(s, path);
	if (ret == 0 && epoll_ctl(a->epfd, EPOLL_CTL_ADD, s->fd, &ev) < 0)
		ret = -errno;
	if (ret < 0) {
		wave_error_set(err, ret, path, 0, 0, "stats_socket: cannot listen: %s",
			       wave_strerror(ret));
		return ret;
	}
	wave_info("agent: statistics on %s", path);
	return 0;
}

static void reader_drop(struct wave_agent *a, unsigned i)
{
	struct agent_statsock *s = &a->stats;

	epoll_ctl(a->epfd, EPOLL_CTL_DEL, s->r[i].fd, NULL);
	close(s->r[i].fd);
	free(s->r[i].buf);
	s->r[i] = s->r[--s->n];
}

/* Writes what reader @i's socket takes. Return: true when it is finished
 * (all written, gone, or out of time) and must be dropped. */
static bool reader_write(struct agent_statsock *s, unsigned i, uint64_t now)
{
	struct agent_stats_reader *r = &s->r[i];

	while (r->off < r->len) {
		/* MSG_NOSIGNAL: a reader that left must not kill the daemon. */
		ssize_t n = send(r->fd, r->buf + r->off, r->len - r->off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno != EAGAIN || now >= r->deadline_ns;
		r->off += (size_t)n;
	}
	return true;
}

/* Only our own uid or root may read the statistics (the mode says so too). */
static bool peer_allowed(int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
		return false;
	return cr.uid == geteuid() || cr.uid == 0;
}

/* A reader for @fd with the current statistics, or -errno. */
static int reader_add(struct wave_agent *a, int fd, uint64_t now)
{
	struct agent_statsock *s = &a->stats;
	struct agent_stats_reader *r = &s->r[s->n];
	struct epoll_event ev = { .events = EPOLLOUT };
	char *json;
	int ret;

	if (!peer_allowed(fd))
		return -EPERM;
	ret = agent_stats_dump(a, &json);
	if (ret < 0)
		return ret;
	/* One line: the document and a newline. */
	r->len = strlen(json) + 1;
	json[r->len - 1] = '\n';
	r->buf = json;
	r->fd = fd;
	r->off = 0;
	r->deadline_ns = now + STATS_READER_NS;
	s->n++;
	/* Wake the loop when a slow reader can take more. */
	if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		wave_dbg("agent: stats reader not in epoll: %s", wave_strerror(-errno));
	return 0;
}

static void accept_readers(struct wave_agent *a, uint64_t now)
{
	struct agent_statsock *s = &a->stats;
	int fd, ret;

	while (s->n < AGENT_STATS_READERS) {
		fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return; /* EAGAIN: nobody waiting */
		ret = reader_add(a, fd, now);
		if (ret < 0) {
			wave_warn("agent: stats reader refused: %s", wave_strerror(ret));
			close(fd);
		}
	}
}

void agent_statsock_serve(struct wave_agent *a, uint64_t now)
{
	struct agent_statsock *s = &a->stats;

	if (s->fd < 0)
		return;
	accept_readers(a, now);
	for (unsigned i = 0; i < s->n;) {
		if (reader_write(s, i, now))
			reader_drop(a, i); /* the last one moved to @i */
		else
			i++;
	}
}

void agent_statsock_close(struct wave_agent *a)
{
	struct agent_statsock *s = &a->stats;
	struct stat st;

	while (s->n)
		reader_drop(a, s->n - 1);
	if (s->fd >= 0) {
		/* Only the file we made: another agent may own the path now. */
		if (s->path && lstat(s->path, &st) == 0 && st.st_dev == s->dev &&
		    st.st_ino == s->ino)
			unlink(s->path);
		close(s->fd);
		s->fd = -1;
	}
	free(s->path);
	s->path = NULL;
}
