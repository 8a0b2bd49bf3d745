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

	/* An empty datagram is shorter than a header too; the loop would not
	 * see it. */
	if (n == 0)
		w->st.truncated++;
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

/* A peer that takes no byte of a pending reply for this long is not
 * reading: its connection is closed (and counted as stalled). */
#define STALL_NS 2000000000ull
/* How often connections waiting for their peer are checked for that. */
#define STALL_CHECK_NS 100000000ull

struct conn {
	int fd;
	size_t have;
	size_t scan;       /* the whole messages before it are counted */
	uint32_t ready;    /* whole messages in @buf not handled yet */
	bool replying;     /* @buf begins with a reply the peer has not taken in full */
	size_t sent;       /* of the reply being sent */
	uint64_t stall_ns; /* replying: when the peer last took a byte */
	int outq;          /* replying: the kernel's send queue then, or -1 */
	struct conn *next;
	uint8_t buf[CONN_BUF];
};

/* A worker's connections. */
struct tcp {
	int ep;
	struct conn *list;
	uint32_t ready;     /* whole messages read, not handled: connections not replying */
	unsigned replying;  /* connections waiting for their peer to take a reply */
	uint64_t check_ns;  /* when to look for stalled peers next */
	uint64_t resume_ns; /* the listener is not watched until then, or 0 */
};

enum conn_st { CONN_OK, CONN_BLOCKED, CONN_CLOSE };

/* Reads what @c has and counts the whole messages it completes: a load
 * report names them, and never a partial message, as waiting. Returns
 * false when the connection is to be closed: the peer closed it, or an
 * error. */
static bool conn_fill(struct tcp *t, struct conn *c)
{
	ssize_t k = recv(c->fd, c->buf + c->have, CONN_BUF - c->have, 0);
	struct sp_msg m;

	if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR))
		return false;
	if (k < 0)
		return true;
	c->have += (size_t)k;
	while (sp_parse(c->buf + c->scan, c->have - c->scan, &m) == SP_OK) {
		c->scan += m.len;
		c->ready++;
		t->ready++;
	}
	return true;
}

/* Sends reply @p (@n bytes, @c->sent of them gone already) as far as the
 * peer takes it: the socket never blocks, so a peer that does not read
 * holds up its own connection only. */
static enum conn_st reply_send(struct worker *w, struct conn *c, const uint8_t *p, size_t n)
{
	bool moved = false;

	while (c->sent < n) {
		ssize_t k = send(c->fd, p + c->sent, n - c->sent, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EAGAIN) {
			if (moved || !c->replying) {
				c->stall_ns = now_ns();
				c->outq = -1;
			}
			c->replying = true;
			return CONN_BLOCKED;
		}
		if (k <= 0) {
			/* A reply already waited on is counted when it closes. */
			if (!c->replying)
				w->st.send_errors++;
			return CONN_CLOSE;
		}
		c->sent += (size_t)k;
		moved = true;
	}
	c->sent = 0;
	c->replying = false;
	w->st.replies++;
	return CONN_OK;
}

static void tcp_report(struct worker *w, const struct tcp *t, uint32_t more)
{
	uint64_t now;

	if (w->rpc && steer_due(w, now = now_ns()))
		steer_report(w, now, t->ready + more);
}

/* Handles @c's whole messages, in order, from the reply it was sending if
 * any; stops at a reply the peer does not take (the rest waits in @buf,
 * and the peer's further requests in the kernel: nothing is read while a
 * reply waits, so the buffer is bounded). Returns CONN_CLOSE for an
 * error or a bad length field (sockperf's server closes it too). */
static enum conn_st conn_handle(struct worker *w, struct tcp *t, struct conn *c)
{
	enum conn_st s = CONN_OK;
	enum sp_parse p = SP_MORE;
	struct sp_msg m;
	size_t off = 0;

	if (c->replying) {
		sp_parse(c->buf, c->have, &m); /* a reply: whole */
		s = reply_send(w, c, c->buf, m.len);
		off = s == CONN_OK ? m.len : 0;
	}
	while (s == CONN_OK && (p = sp_parse(c->buf + off, c->have - off, &m)) == SP_OK) {
		c->ready--;
		if (serve_msg(w, c->buf + off, &m))
			s = reply_send(w, c, c->buf + off, m.len);
		if (s != CONN_BLOCKED)
			off += m.len;
		tcp_report(w, t, c->ready);
	}
	if (s == CONN_OK && p == SP_BAD) {
		w->st.malformed++;
		s = CONN_CLOSE;
	}
	memmove(c->buf, c->buf + off, c->have - off);
	c->have -= off;
	c->scan -= off;
	return s;
}

/* Handles @c and watches it for what it waits for next: room for its
 * reply, or requests. */
static enum conn_st conn_serve(struct worker *w, struct tcp *t, struct conn *c)
{
	bool was = c->replying;
	struct epoll_event ev = { .data.ptr = c };
	enum conn_st s;

	/* Its messages are counted apart while it is handled. */
	if (!was)
		t->ready -= c->ready;
	s = conn_handle(w, t, c);
	if (!c->replying)
		t->ready += c->ready;
	if (was != c->replying && c->replying)
		t->replying++;
	else if (was != c->replying)
		t->replying--;
	if (s == CONN_CLOSE || was == c->replying)
		return s;
	ev.events = c->replying ? EPOLLOUT : EPOLLIN;
	return epoll_ctl(t->ep, EPOLL_CTL_MOD, c->fd, &ev) == 0 ? s : CONN_CLOSE;
}

/* Serves connection @fd from now on (closes it if it cannot). */
static void conn_add(struct worker *w, struct tcp *t, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct conn *c = malloc(sizeof(*c));

	ev.data.ptr = c;
	if (!c || epoll_ctl(t->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
		free(c);
		close(fd);
		return;
	}
	*c = (struct conn){ .fd = fd, .next = t->list };
	t->list = c;
	w->st.connections++;
}

/* A reply not taken in full is lost: counted as a send error. */
static void conn_close(struct worker *w, struct tcp *t, struct conn *c)
{
	struct conn **pp = &t->list;

	while (*pp != c)
		pp = &(*pp)->next;
	*pp = c->next;
	if (c->replying) {
		t->replying--;
		w->st.send_errors++;
	} else {
		t->ready -= c->ready;
	}
	epoll_ctl(t->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c);
}

/* At the fd limit (or out of memory) accept fails while the listener
 * stays readable: epoll would return at once, for ever. The listener is
 * left alone for a while instead; the connections wait in its queue. */
static void conn_accept(struct worker *w, struct tcp *t)
{
	int fd = accept4(w->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	struct epoll_event ev = { .events = 0 };

	if (fd >= 0) {
		w->st.taken++;
		conn_add(w, t, fd);
	} else if (accept_starved(errno) && epoll_ctl(t->ep, EPOLL_CTL_MOD, w->fd, &ev) == 0) {
		w->st.accept_backoff++;
		t->resume_ns = now_ns() + ACCEPT_BACKOFF_MS * 1000000ull;
	}
}

/* Dispatch modes: the connections the dispatcher queued for the worker. */
static void conn_take(struct worker *w, struct tcp *t)
{
	struct req r;

	wq_clear(w->q);
	while (wq_pop(w->q, &r))
		conn_add(w, t, r.fd);
}

/* Whether @c's peer has taken no byte for STALL_NS. Our sends are no
 * measure: the kernel's send queue is large, and room in it (EPOLLOUT)
 * can take long behind a peer that reads, slowly; the queue shrinking
 * is. */
static bool conn_stalled(struct conn *c, uint64_t now)
{
	int q;

	if (ioctl(c->fd, SIOCOUTQ, &q) == 0 && q != c->outq) {
		c->outq = q;
		c->stall_ns = now;
	}
	return now - c->stall_ns >= STALL_NS;
}

/* Closes the connections whose peer has taken nothing of a reply for
 * STALL_NS (looked at only while some wait, every STALL_CHECK_NS), and
 * watches the listener again after a backoff. */
static void tcp_tidy(struct worker *w, struct tcp *t, uint64_t now)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };

	if (t->resume_ns && now >= t->resume_ns &&
	    epoll_ctl(t->ep, EPOLL_CTL_MOD, w->fd, &ev) == 0)
		t->resume_ns = 0;
	if (!t->replying || now < t->check_ns)
		return;
	t->check_ns = now + STALL_CHECK_NS;
	for (struct conn *c = t->list, *next; c; c = next) {
		next = c->next;
		if (c->replying && conn_stalled(c, now)) {
			w->st.stalled++;
			conn_close(w, t, c);
		}
	}
}

/* epoll's timeout: the stop flag's period, or sooner the backoff's end. */
static int tcp_timeout(const struct tcp *t)
{
	uint64_t now = now_ns();

	if (!t->resume_ns)
		return POLL_MS;
	if (now >= t->resume_ns)
		return 0;
	return (int)((t->resume_ns - now) / 1000000u) + 1;
}

/* An event's first part: connections come in, requests are read. A
 * connection closed here is marked so the second part skips it. */
static void tcp_take(struct worker *w, struct tcp *t, struct epoll_event *ev)
{
	struct conn *c = ev->data.ptr;

	if (!c && w->q)
		conn_take(w, t);
	else if (!c)
		conn_accept(w, t);
	else if (!c->replying && !conn_fill(t, c)) {
		conn_close(w, t, c);
		ev->events = 0;
	}
}

static void serve_tcp(struct worker *w, int ep)
{
	struct tcp t = { .ep = ep };
	struct epoll_event ev[32];

	while (!atomic_load_explicit(w->stop, memory_order_relaxed)) {
		int n = epoll_wait(ep, ev, 32, tcp_timeout(&t));
		uint64_t now;

		/* Everything ready is read before anything is served, so
		 * that a report meanwhile counts what waits behind. */
		for (int i = 0; i < n; i++)
			tcp_take(w, &t, &ev[i]);
		for (int i = 0; i < n; i++) {
			struct conn *c = ev[i].data.ptr;
			if (c && ev[i].events && conn_serve(w, &t, c) == CONN_CLOSE)
				conn_close(w, &t, c);
		}
		tcp_tidy(w, &t, now = now_ns());
		if (steer_due(w, now))
			steer_report(w, now, t.ready);
	}
	while (t.list)
		conn_close(w, &t, t.list);
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
