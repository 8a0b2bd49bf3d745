/* SPDX-License-Identifier: MIT */
/* The workers' loops: see rpcserver.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "rpcserver.h"

#define UDP_BATCH 16
#define POLL_MS 100 /* how often a worker looks at the stop flag when idle */
/* A TCP connection's buffer: an incomplete message (< SP_MAX_MSG bytes)
 * plus room for at least one more read. */
#define CONN_BUF (SP_MAX_MSG + 16384)

_Atomic uint64_t heavy_first_ns;

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint32_t class_of(const struct srv_cfg *c, uint32_t len)
{
	uint32_t cls = 0, best = 0;

	for (unsigned i = 0; i < c->n_rules; i++)
		if (len >= c->rules[i].min_len && c->rules[i].min_len >= best) {
			best = c->rules[i].min_len;
			cls = i + 1;
		}
	return cls;
}

/* The request's work: the CPU time it costs, spent spinning. Return: ns. */
static uint64_t spin(struct worker *w, uint32_t us)
{
	uint64_t t0 = now_ns(), t;

	if (us == 0)
		return 0;
	do
		t = now_ns();
	while (t - t0 < (uint64_t)us * 1000u);
	w->st.busy_ns += t - t0;
	w->load.busy_ns += t - t0;
	w->load.completions++;
	if (t - t0 > w->load.max_service_ns)
		w->load.max_service_ns = t - t0;
	return t - t0;
}

/* Serves a message of class @cls; in the dispatch modes its service time
 * goes to the class's report too (request-level policies sort classes by
 * it). */
static void work(struct worker *w, uint32_t len)
{
	uint32_t cls = class_of(w->cfg, len);
	uint64_t ns, none = 0;

	if (cls && !atomic_load_explicit(&heavy_first_ns, memory_order_relaxed))
		atomic_compare_exchange_strong(&heavy_first_ns, &none, now_ns());
	ns = spin(w, cls ? w->cfg->rules[cls - 1].us : w->cfg->work_us);

	if (w->rpc && mode_dispatches(w->cfg->mode)) {
		/* A class that costs nothing is known as the shortest: its
		 * time 0 would read as "never reported". */
		struct wave_rpc_load l = { .size = sizeof(l), .completions = 1,
					   .service_ns = ns ? ns : 1, .max_service_ns = ns };
		wave_rpc_class_load(w->rpc, cls, &l);
	}
}

bool serve_msg(struct worker *w, uint8_t *msg, const struct sp_msg *m)
{
	w->st.msg_bytes += m->len;
	switch (sp_action(m)) {
	case SP_IGNORE_WARMUP:
		w->st.warmup++;
		return false;
	case SP_IGNORE_NOT_CLIENT:
		w->st.not_client++;
		return false;
	case SP_SERVE_SILENT:
		w->st.served++;
		work(w, m->len);
		return false;
	case SP_SERVE_REPLY:
		break;
	}
	w->st.served++;
	work(w, m->len);
	sp_make_reply(msg);
	return true;
}

/* ---- UDP ---------------------------------------------------------------------- */

/* Every message of one datagram, in turn; a bad or cut one ends it. */
void udp_datagram(struct worker *w, uint8_t *d, size_t n, const struct sockaddr *from,
		  socklen_t fromlen)
{
	struct sp_msg m;
	size_t off = 0;

	while (off < n) {
		enum sp_parse p = sp_parse(d + off, n - off, &m);
		if (p == SP_BAD) {
			w->st.malformed++;
			return;
		}
		if (p == SP_MORE) {
			w->st.truncated++;
			return;
		}
		if (serve_msg(w, d + off, &m)) {
			if (sendto(w->fd, d + off, m.len, 0, from, fromlen) == (ssize_t)m.len)
				w->st.replies++;
			else
				w->st.send_errors++;
		}
		off += m.len;
	}
}

static void serve_udp(struct worker *w, int ep)
{
	uint8_t (*bufs)[SP_MAX_MSG + 1] = malloc(UDP_BATCH * sizeof(*bufs));
	struct sockaddr_storage from[UDP_BATCH];
	struct mmsghdr mm[UDP_BATCH];
	struct iovec iov[UDP_BATCH];
	struct epoll_event ev;

	if (!bufs) {
		w->failed = true;
		return;
	}
	while (!atomic_load_explicit(w->stop, memory_order_relaxed)) {
		int n;

		for (int i = 0; i < UDP_BATCH; i++) {
			iov[i] = (struct iovec){ bufs[i], sizeof(bufs[i]) };
			mm[i].msg_hdr = (struct msghdr){ .msg_name = &from[i],
							 .msg_namelen = sizeof(from[i]),
							 .msg_iov = &iov[i],
							 .msg_iovlen = 1 };
		}
		n = recvmmsg(w->fd, mm, UDP_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0) {
			epoll_wait(ep, &ev, 1, POLL_MS);
			continue;
		}
		w->st.taken += (uint64_t)n;
		for (int i = 0; i < n; i++) {
			uint64_t now;
			udp_datagram(w, bufs[i], mm[i].msg_len, (struct sockaddr *)&from[i],
				     mm[i].msg_hdr.msg_namelen);
			/* The rest of the batch waits for this worker too. */
			if (steer_due(w, now = now_ns()))
				steer_report(w, now, (uint32_t)(n - i - 1));
		}
	}
	free(bufs);
}

/* UDP, dispatch modes: the datagrams of the worker's queue, in order. */
static void serve_udp_queue(struct worker *w, int ep)
{
	struct epoll_event ev;
	struct req r;
	uint64_t n;

	while (!atomic_load_explicit(w->stop, memory_order_relaxed)) {
		if (!wq_pop(w->q, &r)) {
			if (epoll_wait(ep, &ev, 1, POLL_MS) > 0)
				wq_clear(w->q);
			continue;
		}
		udp_datagram(w, r.buf, r.len, (struct sockaddr *)&r.from, r.fromlen);
		free(r.buf);
		if (steer_due(w, n = now_ns()))
			steer_report(w, n, 0);
	}
}

/* ---- TCP ---------------------------------------------------------------------- */

struct conn {
	int fd;
	size_t have;
	struct conn *next;
	uint8_t buf[CONN_BUF];
};

static bool send_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return false;
		p += k;
		n -= (size_t)k;
	}
	return true;
}

/* Reads what @c has and serves every whole message. Returns false when the
 * connection is to be closed: the peer closed it, an error, or a bad length
 * field (sockperf's server closes it too). */
static bool conn_readable(struct worker *w, struct conn *c)
{
	ssize_t k = recv(c->fd, c->buf + c->have, CONN_BUF - c->have, MSG_DONTWAIT);
	struct sp_msg m;
	size_t off = 0;
	enum sp_parse p;

	if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR))
		return false;
	if (k < 0)
		return true;
	c->have += (size_t)k;
	while ((p = sp_parse(c->buf + off, c->have - off, &m)) == SP_OK) {
		if (serve_msg(w, c->buf + off, &m)) {
			if (!send_all(c->fd, c->buf + off, m.len)) {
				w->st.send_errors++;
				return false;
			}
			w->st.replies++;
		}
		off += m.len;
	}
	if (p == SP_BAD) {
		w->st.malformed++;
		return false;
	}
	memmove(c->buf, c->buf + off, c->have - off);
	c->have -= off;
	return true;
}

/* Serves connection @fd from now on (closes it if it cannot). */
static void conn_add(struct worker *w, int ep, struct conn **list, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct conn *c = malloc(sizeof(*c));

	ev.data.ptr = c;
	if (!c || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
		free(c);
		close(fd);
		return;
	}
	c->fd = fd;
	c->have = 0;
	c->next = *list;
	*list = c;
	w->st.connections++;
}

static void conn_accept(struct worker *w, int ep, struct conn **list)
{
	int fd = accept4(w->fd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	w->st.taken++;
	conn_add(w, ep, list, fd);
}

/* Dispatch modes: the connections the dispatcher queued for the worker. */
static void conn_take(struct worker *w, int ep, struct conn **list)
{
	struct req r;

	wq_clear(w->q);
	while (wq_pop(w->q, &r))
		conn_add(w, ep, list, r.fd);
}

/* Requests waiting on the worker's connections: the bytes there (the
 * kernel's and a partial message of ours), in requests of the mean size
 * seen so far (rounded up: any byte is a request begun). */
static uint32_t tcp_waiting(const struct worker *w, const struct conn *list)
{
	uint64_t bytes = 0, mean;

	for (const struct conn *c = list; c; c = c->next) {
		int k;
		if (ioctl(c->fd, SIOCINQ, &k) == 0 && k > 0)
			bytes += (uint64_t)k;
		bytes += c->have;
	}
	mean = w->st.served ? w->st.msg_bytes / w->st.served : SP_HDR;
	mean = mean ? mean : SP_HDR;
	return (uint32_t)((bytes + mean - 1) / mean);
}

static void conn_close(int ep, struct conn **list, struct conn *c)
{
	struct conn **pp = list;

	while (*pp != c)
		pp = &(*pp)->next;
	*pp = c->next;
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c);
}

static void serve_tcp(struct worker *w, int ep)
{
	struct conn *list = NULL;
	struct epoll_event ev[32];

	while (!atomic_load_explicit(w->stop, memory_order_relaxed)) {
		int n = epoll_wait(ep, ev, 32, POLL_MS);
		uint64_t now;

		for (int i = 0; i < n; i++) {
			struct conn *c = ev[i].data.ptr;
			if (!c && w->q)
				conn_take(w, ep, &list);
			else if (!c)
				conn_accept(w, ep, &list);
			else if (!conn_readable(w, c))
				conn_close(ep, &list, c);
		}
		if (steer_due(w, now = now_ns()))
			steer_report(w, now, tcp_waiting(w, list));
	}
	while (list)
		conn_close(ep, &list, list);
}

void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	int ep = epoll_create1(EPOLL_CLOEXEC);

	/* Data NULL: the worker's own socket, or in the dispatch modes its
	 * queue's eventfd. */
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, w->q ? w->q->efd : w->fd, &ev) != 0) {
		w->failed = true;
		if (ep >= 0)
			close(ep);
		return NULL;
	}
	if (w->cfg->tcp)
		serve_tcp(w, ep);
	else if (w->q)
		serve_udp_queue(w, ep);
	else
		serve_udp(w, ep);
	close(ep);
	return NULL;
}
