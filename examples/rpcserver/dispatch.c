/* SPDX-License-Identifier: MIT */
/*
 * The dispatch modes (see rpcserver.h): one socket receives every request;
 * this thread hands each UDP datagram, or each TCP connection, to a
 * worker's queue. --steer dispatch: the steering table's worker for the
 * flow (wave_rpc_arrive() on a hash of the client's address and port, so
 * the bucket's arrivals are counted for the agent too); --steer pick: the
 * worker the agent prestaged for the request's class (wave_rpc_pick(),
 * one dispatcher slot per class), its class entry's arrivals counted.
 *
 * A queue is bounded. A full one is backpressure the kernel would apply
 * too: the datagram is dropped (as a full socket buffer drops it) or the
 * connection closed (as a full accept queue refuses it), and counted in
 * the queue's @full; never silently.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "rpcserver.h"

#define BATCH 16
#define POLL_MS 100 /* how often the dispatcher looks at the stop flag when idle */

int wq_init(struct wqueue *q, uint32_t cap)
{
	memset(q, 0, sizeof(*q));
	q->slots = calloc(cap, sizeof(*q->slots));
	q->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!q->slots || q->efd < 0 || pthread_mutex_init(&q->lock, NULL) != 0) {
		free(q->slots);
		if (q->efd >= 0)
			close(q->efd);
		return -ENOMEM;
	}
	q->cap = cap;
	return 0;
}

/* Whatever is left (the server is stopping) is freed, not served. */
void wq_fini(struct wqueue *q)
{
	struct req r;

	while (wq_pop(q, &r)) {
		free(r.buf);
		if (!r.buf)
			close(r.fd);
	}
	pthread_mutex_destroy(&q->lock);
	close(q->efd);
	free(q->slots);
}

/* Wakes @q's worker. A write fails only when the counter is near its
 * maximum, which means the worker has not read it: it is awake anyway. */
static void wq_wake(struct wqueue *q)
{
	uint64_t one = 1;
	ssize_t k = write(q->efd, &one, sizeof(one));

	(void)k;
}

void wq_clear(struct wqueue *q)
{
	uint64_t n;
	ssize_t k = read(q->efd, &n, sizeof(n));

	(void)k; /* EAGAIN: no wake-up pending, nothing to clear */
}

/* Appends @r. Return: false when the queue is full (nothing taken). */
static bool wq_push(struct wqueue *q, const struct req *r)
{
	bool was_empty;

	pthread_mutex_lock(&q->lock);
	if (q->count == q->cap) {
		q->full++;
		pthread_mutex_unlock(&q->lock);
		return false;
	}
	q->slots[(q->head + q->count) % q->cap] = *r;
	was_empty = q->count++ == 0;
	pthread_mutex_unlock(&q->lock);
	/* The worker sleeps only after it found the queue empty under the
	 * lock, so waking it on the empty-to-one transition is enough. */
	if (was_empty)
		wq_wake(q);
	return true;
}

bool wq_pop(struct wqueue *q, struct req *out)
{
	bool got;

	pthread_mutex_lock(&q->lock);
	got = q->count > 0;
	if (got) {
		*out = q->slots[q->head];
		q->head = (q->head + 1) % q->cap;
		q->count--;
	}
	pthread_mutex_unlock(&q->lock);
	return got;
}

uint32_t wq_depth(struct wqueue *q)
{
	uint32_t n;

	pthread_mutex_lock(&q->lock);
	n = q->count;
	pthread_mutex_unlock(&q->lock);
	return n;
}

/* A flow's hash: the client's address and port (the server's are the
 * same for every flow), mixed (splitmix64's finaliser). */
static uint64_t flow_hash(const struct sockaddr_storage *a)
{
	uint64_t h = 0;

	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)a;
		h = (uint64_t)in->sin_addr.s_addr << 16 | in->sin_port;
	} else if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)a;
		uint64_t part[2];
		memcpy(part, &in6->sin6_addr, sizeof(part));
		h = part[0] ^ (part[1] * 0x9e3779b97f4a7c15ull) ^ in6->sin6_port;
	}
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebull;
	return h ^ (h >> 31);
}

/* The worker for a request of @len bytes (the first message's length
 * field, 0 if none) from @from; -1 if none. */
static int choose(struct dispatcher *d, const struct sockaddr_storage *from, uint32_t len)
{
	uint32_t cls;
	int w;

	if (d->cfg->mode == STEER_DISPATCH)
		return wave_rpc_arrive(d->rpc, flow_hash(from));
	cls = class_of(d->cfg, len);
	w = wave_rpc_pick(d->rpc, cls);
	if (w >= 0)
		wave_rpc_arrivals(d->rpc, d->buckets + cls, 1);
	return w;
}

/* Hands @r to the worker chosen for it; a refused one is freed or closed
 * (and was counted by the queue, or in no_worker). */
static void hand_on(struct dispatcher *d, struct req *r, uint32_t len)
{
	int w = choose(d, &r->from, len);

	if (w >= 0 && (unsigned)w < d->n && wq_push(d->w[w].q, r)) {
		d->dispatched++;
		return;
	}
	if (w < 0 || (unsigned)w >= d->n)
		d->no_worker++;
	free(r->buf);
	if (!r->buf)
		close(r->fd);
}

/* The length field of the message at the start of @p[0..@n), or 0. */
static uint32_t first_len(const uint8_t *p, size_t n)
{
	struct sp_msg m;

	return sp_parse(p, n, &m) == SP_OK ? m.len : 0;
}

static void dispatch_udp(struct dispatcher *d)
{
	uint8_t (*bufs)[SP_MAX_MSG + 1] = malloc(BATCH * sizeof(*bufs));
	struct sockaddr_storage from[BATCH];
	struct mmsghdr mm[BATCH];
	struct iovec iov[BATCH];

	if (!bufs) {
		d->failed = true;
		return;
	}
	while (!atomic_load_explicit(d->stop, memory_order_relaxed)) {
		struct pollfd p = { .fd = d->fd, .events = POLLIN };
		int n;

		for (int i = 0; i < BATCH; i++) {
			iov[i] = (struct iovec){ bufs[i], sizeof(bufs[i]) };
			mm[i].msg_hdr = (struct msghdr){ .msg_name = &from[i],
							 .msg_namelen = sizeof(from[i]),
							 .msg_iov = &iov[i],
							 .msg_iovlen = 1 };
		}
		n = recvmmsg(d->fd, mm, BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0) {
			poll(&p, 1, POLL_MS);
			continue;
		}
		for (int i = 0; i < n; i++) {
			struct req r = { .len = mm[i].msg_len, .fd = -1,
					 .fromlen = mm[i].msg_hdr.msg_namelen, .from = from[i] };
			r.buf = malloc(r.len ? r.len : 1);
			if (!r.buf) {
				d->failed = true;
				break;
			}
			memcpy(r.buf, bufs[i], r.len);
			hand_on(d, &r, first_len(r.buf, r.len));
		}
	}
	free(bufs);
}

/* TCP: each connection goes to one worker, chosen when it is accepted
 * (its class, for --steer pick, is the default one: nothing of it has
 * been read yet). */
static void dispatch_tcp(struct dispatcher *d)
{
	/* Non-blocking, so that the loop sees the stop flag. */
	if (fcntl(d->fd, F_SETFL, fcntl(d->fd, F_GETFL) | O_NONBLOCK) != 0) {
		d->failed = true;
		return;
	}
	while (!atomic_load_explicit(d->stop, memory_order_relaxed)) {
		struct pollfd p = { .fd = d->fd, .events = POLLIN };
		struct req r = { .buf = NULL };
		socklen_t len = sizeof(r.from);

		/* Non-blocking too: a peer that does not read must not stall
		 * its worker. */
		r.fd = accept4(d->fd, (struct sockaddr *)&r.from, &len,
			       SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (r.fd < 0 && accept_starved(errno)) {
			/* The listener stays readable: polling it would spin. */
			d->accept_backoff++;
			poll(NULL, 0, ACCEPT_BACKOFF_MS);
			continue;
		}
		if (r.fd < 0) {
			poll(&p, 1, POLL_MS);
			continue;
		}
		r.fromlen = len;
		hand_on(d, &r, 0);
	}
}

void *dispatcher_main(void *arg)
{
	struct dispatcher *d = arg;

	if (d->cfg->tcp)
		dispatch_tcp(d);
	else
		dispatch_udp(d);
	return NULL;
}
