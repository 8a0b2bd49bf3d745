/* SPDX-License-Identifier: MIT */
/*
 * fabric:// channels over libfabric reliable-datagram (FI_EP_RDM) endpoints.
 *
 * Endpoints. The listener owns one endpoint bound at the URI's address; it
 * only ever receives HELLOs and sends refusals. For every host it accepts,
 * the agent opens a new endpoint (its own completion queue, address vector
 * and buffers; an ephemeral port, or an anonymous shm name) and names it in
 * the acceptance, so each channel has private state, a private wait object
 * and no demultiplexing. The host has one endpoint per channel too.
 *
 * Buffers. Each endpoint allocates one arena at open: R + C receive buffers
 * and a few transmit buffers of FAB_BUF_SIZE bytes, registered once when the
 * provider needs local registration. Nothing is allocated or registered per
 * message. Receive buffers are posted once and re-posted when done with; a
 * DATA frame's buffer is re-posted only when the application has taken every
 * message in it, so received messages are copied exactly once, into the
 * caller's array.
 *
 * Flow control. A sender may have at most S messages (the receiver's ring
 * size) and R data frames (the receiver's posted data buffers) that the
 * receiver has not consumed. Every frame header carries the sender's counts of
 * consumed messages and released frames of the other direction (piggy-backed
 * credit); a receiver that consumed a quarter of its ring, or that was told
 * the sender is out of credit, sends a header-only CREDIT frame. Control
 * frames (CREDIT, HEARTBEAT, BYE, BYE_ACK) land in the C extra buffers, which
 * are re-posted as soon as the frame is read. A sender out of credit returns
 * fewer messages (0): backpressure, never loss.
 *
 * Liveness. Each end sends a HEARTBEAT when it has sent nothing for a quarter
 * of disconnect_timeout_ms, and declares the peer gone when it has heard
 * nothing for disconnect_timeout_ms, or at once when the provider reports
 * a failed transfer. Heartbeats are sent and read only while the application
 * calls into the channel (libfabric manual progress): wave_chan_wait() wakes
 * up often enough by itself.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rdma/fabric.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_eq.h>
#include <rdma/fi_errno.h>

#include "../core/atomic.h"
#include "../core/core.h"
#include "chan_impl.h"
#include "fabric.h"
#include "fabric_wire.h"

#define FAB_API_VERSION FI_VERSION(1, 9)
/* Extra receive buffers for control frames, beyond the data buffers. */
#define FAB_CTRL_BUFS 32u
#define FAB_TX_BUFS 64u
#define FAB_LISTEN_RX 16u
#define FAB_LISTEN_TX 4u
#define FAB_PROV_MAX 64u
#define FAB_NAME_MAX 48u
/* How long close waits for its BYE to leave when nothing else is at stake. */
#define FAB_CLOSE_GRACE_NS 20000000u
/* Longest sleep of wave_chan_wait() before it progresses again. */
#define FAB_WAIT_SLICE_NS 2000000u
/* Longest sleep of a listener waiting for a hello. */
#define FAB_ACCEPT_SLICE_NS 5000000u
/* Sleep slice when the provider has no wait object. */
#define FAB_POLL_SLEEP_NS 50000u

static uint16_t proto_major = FAB_PROTO_MAJOR;
static uint16_t proto_minor = FAB_PROTO_MINOR;

void wave_fabric_test_set_proto(uint16_t major, uint16_t minor)
{
	proto_major = major;
	proto_minor = minor;
}

/* A libfabric return code as a libwave one: errno values pass through,
 * libfabric's own codes (FI_ERRNO_OFFSET and up) become -EIO. */
static int fab_err(ssize_t r)
{
	if (r >= 0)
		return 0;
	if (-r < FI_ERRNO_OFFSET)
		return (int)r;
	return -EIO;
}

/* ---- addresses ----------------------------------------------------------- */

union fab_sa {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

struct fab_addr {
	char prov[FAB_PROV_MAX]; /* "" lets fi_getinfo choose */
	bool is_str;             /* shm: a name, FI_ADDR_STR */
	uint32_t format;         /* FI_SOCKADDR_IN, FI_SOCKADDR_IN6 or FI_ADDR_STR */
	union fab_sa sa;
	socklen_t salen;
	char str[FAB_ADDR_MAX]; /* FI_ADDR_STR form of a shm name */
};

static bool prov_char_ok(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '_' || ch == ';' || ch == '-';
}

static bool name_char_ok(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '_' || ch == '.' || ch == '-';
}

/* Parses "<port>" into 1..65535. */
static int parse_port(const char *s, uint16_t *port)
{
	unsigned long v = 0;

	if (!*s)
		return -WAVE_EURI;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -WAVE_EURI;
		v = v * 10 + (unsigned long)(*s - '0');
		if (v > 65535)
			return -WAVE_EURI;
	}
	if (v == 0)
		return -WAVE_EURI;
	*port = (uint16_t)v;
	return 0;
}

/*
 * "<provider>/<host>:<port>" with a numeric IPv4 host or a bracketed IPv6
 * one, or "shm/<name>". Names are never resolved: nothing is looked up on
 * the network.
 */
static int parse_uri(const char *rest, struct fab_addr *a)
{
	const char *slash = strchr(rest, '/');
	char host[INET6_ADDRSTRLEN + 2];
	const char *addr, *colon;
	size_t plen, hlen;
	uint16_t port;

	memset(a, 0, sizeof(*a));
	if (!slash)
		return -WAVE_EURI;
	plen = (size_t)(slash - rest);
	if (plen >= sizeof(a->prov))
		return -WAVE_EURI;
	for (size_t i = 0; i < plen; i++)
		if (!prov_char_ok(rest[i]))
			return -WAVE_EURI;
	memcpy(a->prov, rest, plen);
	a->prov[plen] = '\0';
	addr = slash + 1;

	if (strcmp(a->prov, "shm") == 0) {
		size_t n = strlen(addr);
		if (n == 0 || n > FAB_NAME_MAX)
			return -WAVE_EURI;
		for (size_t i = 0; i < n; i++)
			if (!name_char_ok(addr[i]))
				return -WAVE_EURI;
		a->is_str = true;
		a->format = FI_ADDR_STR;
		snprintf(a->str, sizeof(a->str), "fi_ns://wave_%s", addr);
		return 0;
	}
	if (addr[0] == '[') {
		const char *close = strchr(addr, ']');
		if (!close || close[1] != ':')
			return -WAVE_EURI;
		hlen = (size_t)(close - addr - 1);
		if (hlen == 0 || hlen >= sizeof(host))
			return -WAVE_EURI;
		memcpy(host, addr + 1, hlen);
		host[hlen] = '\0';
		if (parse_port(close + 2, &port) < 0)
			return -WAVE_EURI;
		a->sa.in6.sin6_family = AF_INET6;
		a->sa.in6.sin6_port = htons(port);
		if (inet_pton(AF_INET6, host, &a->sa.in6.sin6_addr) != 1)
			return -WAVE_EURI;
		a->salen = sizeof(a->sa.in6);
		a->format = FI_SOCKADDR_IN6;
		return 0;
	}
	colon = strrchr(addr, ':');
	if (!colon)
		return -WAVE_EURI;
	hlen = (size_t)(colon - addr);
	if (hlen == 0 || hlen >= sizeof(host))
		return -WAVE_EURI;
	memcpy(host, addr, hlen);
	host[hlen] = '\0';
	if (parse_port(colon + 1, &port) < 0)
		return -WAVE_EURI;
	a->sa.in.sin_family = AF_INET;
	a->sa.in.sin_port = htons(port);
	if (inet_pton(AF_INET, host, &a->sa.in.sin_addr) != 1)
		return -WAVE_EURI;
	a->salen = sizeof(a->sa.in);
	a->format = FI_SOCKADDR_IN;
	return 0;
}

static bool addr_is_wildcard(const struct fab_addr *a)
{
	if (a->format == FI_SOCKADDR_IN)
		return a->sa.in.sin_addr.s_addr == htonl(INADDR_ANY);
	if (a->format == FI_SOCKADDR_IN6)
		return IN6_IS_ADDR_UNSPECIFIED(&a->sa.in6.sin6_addr);
	return false;
}

/*
 * The local address the kernel would use to reach @dst, with port 0. A UDP
 * connect() only consults the routing table; it sends nothing.
 */
static int local_addr_towards(const struct sockaddr *dst, socklen_t dlen, struct fab_addr *out)
{
	int s = socket(dst->sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	socklen_t len = sizeof(out->sa);
	int ret = 0;

	if (s < 0)
		return -errno;
	if (connect(s, dst, dlen) < 0 || getsockname(s, &out->sa.sa, &len) < 0)
		ret = -errno;
	close(s);
	if (ret < 0)
		return ret;
	if (out->sa.sa.sa_family == AF_INET)
		out->sa.in.sin_port = 0;
	else
		out->sa.in6.sin6_port = 0;
	out->salen = len;
	return 0;
}

/* Checks that the listen address is one of this machine's: bind() to it with
 * port 0 on a throw-away socket. Never sends anything anywhere. */
static int check_local_addr(const struct fab_addr *a)
{
	union fab_sa tmp = a->sa;
	int s, ret = 0;

	if (a->is_str)
		return 0;
	if (a->format == FI_SOCKADDR_IN)
		tmp.in.sin_port = 0;
	else
		tmp.in6.sin6_port = 0;
	s = socket(tmp.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	if (bind(s, &tmp.sa, a->salen) < 0)
		ret = -errno;
	close(s);
	return ret;
}

/* Validates an address blob from the peer for @format. */
static bool peer_addr_ok(uint32_t format, const uint8_t *addr, uint32_t len)
{
	if (len == 0 || len > FAB_ADDR_MAX)
		return false;
	if (format == FI_SOCKADDR_IN) {
		struct sockaddr_in in;
		if (len != sizeof(in))
			return false;
		memcpy(&in, addr, sizeof(in));
		return in.sin_family == AF_INET && in.sin_port != 0;
	}
	if (format == FI_SOCKADDR_IN6) {
		struct sockaddr_in6 in6;
		if (len != sizeof(in6))
			return false;
		memcpy(&in6, addr, sizeof(in6));
		return in6.sin6_family == AF_INET6 && in6.sin6_port != 0;
	}
	if (format == FI_ADDR_STR)
		return memchr(addr, '\0', len) == addr + len - 1 && strstr((const char *)addr, "://");
	return false;
}

/* ---- endpoints ----------------------------------------------------------- */

struct fab_ctx {
	struct fi_context2 fc; /* first: providers with FI_CONTEXT mode use it */
	uint32_t idx;          /* rx buffers 0..n_rx-1, then tx buffers */
};

struct fab_ep {
	struct fi_info *info;
	struct fid_fabric *fabric;
	struct fid_domain *domain;
	struct fid_cq *cq;
	struct fid_av *av;
	struct fid_ep *ep;
	struct fid_mr *mr;
	void *desc;
	int wait_fd;          /* -1: the provider has no wait object */
	uint8_t *arena;       /* n_rx receive, then n_tx transmit buffers */
	size_t arena_len;
	struct fab_ctx *ctx;  /* n_rx + n_tx */
	uint32_t n_rx, n_tx;
	uint32_t n_data;      /* receive buffers that may hold DATA frames */
	uint32_t *tx_free;    /* stack of free transmit buffer indexes */
	uint32_t n_tx_free;
	uint32_t *repost;     /* receive buffers waiting to be re-posted */
	uint32_t n_repost;
	size_t inject;
	uint8_t name[FAB_ADDR_MAX];
	size_t name_len;
};

static uint8_t *rx_buf(const struct fab_ep *e, uint32_t i)
{
	return e->arena + (size_t)i * FAB_BUF_SIZE;
}

static uint8_t *tx_buf(const struct fab_ep *e, uint32_t i)
{
	return e->arena + (size_t)(e->n_rx + i) * FAB_BUF_SIZE;
}

static void fab_ep_close(struct fab_ep *e)
{
	if (e->ep)
		fi_close(&e->ep->fid);
	if (e->av)
		fi_close(&e->av->fid);
	if (e->cq)
		fi_close(&e->cq->fid);
	if (e->mr)
		fi_close(&e->mr->fid);
	if (e->domain)
		fi_close(&e->domain->fid);
	if (e->fabric)
		fi_close(&e->fabric->fid);
	if (e->info)
		fi_freeinfo(e->info);
	free(e->arena);
	free(e->ctx);
	free(e->tx_free);
	free(e->repost);
	memset(e, 0, sizeof(*e));
	e->wait_fd = -1;
}

static int post_rx(struct fab_ep *e, uint32_t i)
{
	ssize_t r = fi_recv(e->ep, rx_buf(e, i), FAB_BUF_SIZE, e->desc, FI_ADDR_UNSPEC, &e->ctx[i]);

	if (r == -FI_EAGAIN) {
		e->repost[e->n_repost++] = i; /* retried by the next progress */
		return 0;
	}
	return fab_err(r);
}

static int repost_pending(struct fab_ep *e)
{
	while (e->n_repost) {
		uint32_t i = e->repost[e->n_repost - 1];
		ssize_t r = fi_recv(e->ep, rx_buf(e, i), FAB_BUF_SIZE, e->desc, FI_ADDR_UNSPEC,
				    &e->ctx[i]);
		if (r == -FI_EAGAIN)
			return 0;
		if (r < 0)
			return fab_err(r);
		e->n_repost--;
	}
	return 0;
}

/*
 * Opens an endpoint from @info (copied) with up to @want_data data receive
 * buffers plus @ctrl control buffers, and @n_tx transmit buffers; posts
 * every receive buffer.
 */
static int fab_ep_open(const struct fi_info *info, uint32_t want_data, uint32_t ctrl,
		       uint32_t n_tx, struct fab_ep *e)
{
	struct fi_cq_attr cqa = { .format = FI_CQ_FORMAT_MSG, .wait_obj = FI_WAIT_FD };
	struct fi_av_attr ava = { .type = FI_AV_TABLE, .count = 4 };
	size_t rx_max = info->rx_attr->size ? info->rx_attr->size : 256;
	size_t tx_max = info->tx_attr->size ? info->tx_attr->size : 64;
	int ret;

	memset(e, 0, sizeof(*e));
	e->wait_fd = -1;
	if (rx_max < 2)
		return -ENOTSUP;
	if (ctrl >= rx_max)
		ctrl = (uint32_t)(rx_max / 2);
	e->n_data = want_data;
	if ((size_t)e->n_data + ctrl > rx_max)
		e->n_data = (uint32_t)(rx_max - ctrl);
	e->n_rx = e->n_data + ctrl;
	e->n_tx = n_tx < tx_max ? n_tx : (uint32_t)tx_max;
	e->inject = info->tx_attr->inject_size;

	e->info = fi_dupinfo(info);
	e->arena_len = (size_t)(e->n_rx + e->n_tx) * FAB_BUF_SIZE;
	e->ctx = calloc(e->n_rx + e->n_tx, sizeof(*e->ctx));
	e->tx_free = calloc(e->n_tx, sizeof(uint32_t));
	e->repost = calloc(e->n_rx, sizeof(uint32_t));
	if (!e->info || !e->ctx || !e->tx_free || !e->repost ||
	    posix_memalign((void **)&e->arena, 4096, e->arena_len) != 0) {
		e->arena = NULL;
		ret = -ENOMEM;
		goto err;
	}
	memset(e->arena, 0, e->arena_len);
	for (uint32_t i = 0; i < e->n_rx + e->n_tx; i++)
		e->ctx[i].idx = i;
	for (uint32_t i = 0; i < e->n_tx; i++)
		e->tx_free[e->n_tx_free++] = e->n_tx - 1 - i;

	if ((ret = fab_err(fi_fabric(e->info->fabric_attr, &e->fabric, NULL))) < 0 ||
	    (ret = fab_err(fi_domain(e->fabric, e->info, &e->domain, NULL))) < 0)
		goto err;
	if (e->info->domain_attr->mr_mode & FI_MR_LOCAL) {
		if ((ret = fab_err(fi_mr_reg(e->domain, e->arena, e->arena_len, FI_SEND | FI_RECV,
					     0, 0, 0, &e->mr, NULL))) < 0)
			goto err;
		e->desc = fi_mr_desc(e->mr);
	}
	cqa.size = (size_t)(e->n_rx + e->n_tx) * 2;
	if (fi_cq_open(e->domain, &cqa, &e->cq, NULL) == 0) {
		if (fi_control(&e->cq->fid, FI_GETWAIT, &e->wait_fd) != 0)
			e->wait_fd = -1;
	} else {
		/* shm, for one, has no wait object: poll the queue instead. */
		cqa.wait_obj = FI_WAIT_NONE;
		if ((ret = fab_err(fi_cq_open(e->domain, &cqa, &e->cq, NULL))) < 0)
			goto err;
	}
	if ((ret = fab_err(fi_av_open(e->domain, &ava, &e->av, NULL))) < 0 ||
	    (ret = fab_err(fi_endpoint(e->domain, e->info, &e->ep, NULL))) < 0 ||
	    (ret = fab_err(fi_ep_bind(e->ep, &e->cq->fid, FI_TRANSMIT | FI_RECV))) < 0 ||
	    (ret = fab_err(fi_ep_bind(e->ep, &e->av->fid, 0))) < 0 ||
	    (ret = fab_err(fi_enable(e->ep))) < 0)
		goto err;
	e->name_len = sizeof(e->name);
	if ((ret = fab_err(fi_getname(&e->ep->fid, e->name, &e->name_len))) < 0)
		goto err;
	if (e->name_len > FAB_ADDR_MAX || !peer_addr_ok(e->info->addr_format, e->name,
							 (uint32_t)e->name_len)) {
		ret = -ENOTSUP; /* an address we cannot put in a handshake */
		goto err;
	}
	for (uint32_t i = 0; i < e->n_rx; i++)
		if ((ret = post_rx(e, i)) < 0)
			goto err;
	return 0;
err:
	fab_ep_close(e);
	return ret;
}

/*
 * Asks fi_getinfo for RDM endpoints of @a's provider and address format,
 * bound at @src (NULL: anywhere), and opens the first that works.
 */
static int fab_open_at(const struct fab_addr *a, const void *src, size_t srclen,
		       uint32_t want_data, uint32_t ctrl, uint32_t n_tx, struct fab_ep *e)
{
	struct fi_info *hints = fi_allocinfo(), *list = NULL;
	int ret;

	if (!hints)
		return -ENOMEM;
	hints->ep_attr->type = FI_EP_RDM;
	hints->caps = FI_MSG;
	hints->mode = FI_CONTEXT | FI_CONTEXT2;
	hints->addr_format = a->format;
	hints->domain_attr->mr_mode = FI_MR_LOCAL | FI_MR_VIRT_ADDR | FI_MR_ALLOCATED |
				      FI_MR_PROV_KEY;
	hints->domain_attr->threading = FI_THREAD_DOMAIN; /* we lock per channel */
	hints->tx_attr->msg_order = FI_ORDER_SAS;
	hints->rx_attr->msg_order = FI_ORDER_SAS;
	hints->tx_attr->inject_size = FAB_BUF_SIZE;
	if (a->prov[0] && !(hints->fabric_attr->prov_name = strdup(a->prov))) {
		fi_freeinfo(hints);
		return -ENOMEM;
	}
	if (src) {
		hints->src_addr = malloc(srclen);
		if (!hints->src_addr) {
			fi_freeinfo(hints);
			return -ENOMEM;
		}
		memcpy(hints->src_addr, src, srclen);
		hints->src_addrlen = srclen;
	}
	ret = fi_getinfo(FAB_API_VERSION, NULL, NULL, 0, hints, &list);
	fi_freeinfo(hints);
	if (ret != 0) {
		wave_info("fabric: no provider '%s' for this address: %s",
			  a->prov[0] ? a->prov : "(any)", fi_strerror(-ret));
		return ret == -FI_ENODATA ? -ENOTSUP : fab_err(ret);
	}
	ret = -ENOTSUP;
	for (struct fi_info *i = list; i; i = i->next) {
		if (!(i->tx_attr->msg_order & FI_ORDER_SAS))
			continue;
		ret = fab_ep_open(i, want_data, ctrl, n_tx, e);
		if (ret == 0)
			break;
		wave_dbg("fabric: provider %s domain %s: %s", i->fabric_attr->prov_name,
			 i->domain_attr->name, wave_strerror(ret));
		if (ret == -EADDRINUSE || ret == -EADDRNOTAVAIL)
			break; /* the address is the problem, not the provider */
	}
	fi_freeinfo(list);
	return ret;
}

/* ---- the channel ----------------------------------------------------------- */

struct fab_frame {
	uint32_t idx;   /* receive buffer */
	uint32_t count; /* messages in it */
};

struct fab_chan {
	struct wave_chan base;
	pthread_mutex_t lock; /* one sender and one receiver thread may share the CQ */
	struct fab_ep e;
	fi_addr_t peer;
	fi_addr_t listener;   /* host, during the handshake */
	bool have_listener;
	bool handshaking;     /* host: waiting for the reply */
	int hs_result;        /* host: 1 accepted, negative refused/failed, 0 pending */
	uint64_t nonce;

	/* Sending. Counters are free-running, modulo 2^32. */
	uint32_t tx_msgs, tx_frames;     /* data sent */
	uint32_t peer_msgs_done, peer_frames_done; /* credit the peer returned */
	uint32_t peer_slots, peer_frames, peer_frame_msgs;
	bool credit_req_sent;

	/* Receiving. */
	uint32_t rx_msgs;                /* data messages arrived (= last seq) */
	uint32_t msgs_done, frames_done; /* consumed by the application */
	uint32_t reported_msgs, reported_frames;
	uint32_t my_slots;
	uint32_t credit_every_msgs, credit_every_frames;
	bool credit_wanted;              /* the peer asked: report any progress */
	struct fab_frame *fifo;          /* arrived DATA frames, in order */
	uint32_t fifo_mask, fifo_head, fifo_tail;
	uint32_t head_pos;               /* messages taken from the head frame */

	/* Liveness and closing. */
	uint64_t now;                    /* clock read by the last progress */
	uint64_t last_rx_ns, last_tx_ns;
	uint64_t last_progress_ns;       /* when chan_progress() last ran */
	uint64_t timeout_ns, hb_ns;
	bool peer_closed;                /* got BYE */
	bool peer_gone;                  /* silent too long, or a transfer failed */
	bool ack_due, bye_acked;
	int failed;                      /* sticky error, 0 while healthy */

	uint64_t delay_ns, spin_ns;
};

#define FAB(ch) ((struct fab_chan *)(ch))

static const struct wave_chan_ops fab_ops;

static int chan_fail(struct fab_chan *c, int err, const char *what)
{
	if (!c->failed) {
		wave_warn("fabric channel failed: %s: %s", what, wave_strerror(err));
		c->failed = err;
	}
	return c->failed;
}

static void peer_lost(struct fab_chan *c, const char *why)
{
	if (!c->peer_gone && !c->peer_closed)
		wave_warn("fabric channel: peer gone: %s", why);
	c->peer_gone = true;
}

static uint32_t fifo_count(const struct fab_chan *c)
{
	return c->fifo_tail - c->fifo_head;
}

/* Takes a free transmit buffer: its index, or -1 when all are in flight. */
static int64_t ep_tx_get(struct fab_ep *e)
{
	if (!e->n_tx_free)
		return -1;
	return e->tx_free[--e->n_tx_free];
}

static int64_t tx_get(struct fab_chan *c)
{
	return ep_tx_get(&c->e);
}

static void tx_put(struct fab_ep *e, uint32_t i)
{
	if (e->n_tx_free < e->n_tx)
		e->tx_free[e->n_tx_free++] = i;
}

/* Sends transmit buffer @i (@len bytes) to @dst. Injected (buffer free at
 * once) when it fits and @completion is not asked for. 0, -EAGAIN or an
 * error; the buffer is returned to the pool on every outcome but success
 * with a completion pending. */
static int post_send(struct fab_ep *e, uint32_t i, size_t len, fi_addr_t dst, bool completion,
		     bool more)
{
	ssize_t r;

	if (!completion && len <= e->inject) {
		r = fi_inject(e->ep, tx_buf(e, i), len, dst);
		tx_put(e, i);
	} else if (more) {
		struct iovec iov = { .iov_base = tx_buf(e, i), .iov_len = len };
		void *desc = e->desc;
		struct fi_msg m = { .msg_iov = &iov, .desc = &desc, .iov_count = 1,
				    .addr = dst, .context = &e->ctx[e->n_rx + i] };
		r = fi_sendmsg(e->ep, &m, FI_MORE);
		if (r < 0)
			tx_put(e, i);
	} else {
		r = fi_send(e->ep, tx_buf(e, i), len, e->desc, dst, &e->ctx[e->n_rx + i]);
		if (r < 0)
			tx_put(e, i);
	}
	return r == -FI_EAGAIN ? -EAGAIN : fab_err(r);
}

static void fill_hdr(struct fab_chan *c, struct fab_hdr *h, uint8_t kind, uint16_t count,
		     uint32_t flags)
{
	h->magic = FAB_MAGIC;
	h->kind = kind;
	h->count = count;
	h->msgs_done = c->msgs_done;
	h->frames_done = c->frames_done;
	h->flags = flags;
}

/* A frame filled by fill_hdr() went out: the credit it carries is told.
 * (Only then: a frame the provider refused with EAGAIN told nothing.) */
static void told_credit(struct fab_chan *c, const struct fab_hdr *h)
{
	c->reported_msgs = h->msgs_done;
	c->reported_frames = h->frames_done;
}

static void chan_drain(struct fab_chan *c);

/* Sends a header-only frame. True when it went out. */
static bool send_ctrl(struct fab_chan *c, uint8_t kind, uint32_t flags)
{
	int64_t i = tx_get(c);
	int r;

	if (i < 0)
		return false;
	struct fab_hdr *h = (struct fab_hdr *)tx_buf(&c->e, (uint32_t)i);
	fill_hdr(c, h, kind, 0, flags);
	struct fab_hdr copy = *h; /* an injected buffer is free again at once */
	r = post_send(&c->e, (uint32_t)i, FAB_HDR_SIZE, c->peer, false, false);
	if (r == 0) {
		told_credit(c, &copy);
		c->last_tx_ns = c->now;
		return true;
	}
	if (r != -EAGAIN)
		peer_lost(c, wave_strerror(r));
	return false;
}

/* Validates a credit update from the peer: it may only move forward, and
 * never past what we sent. */
static int take_credit(struct fab_chan *c, const struct fab_hdr *h)
{
	uint32_t dm = h->msgs_done - c->peer_msgs_done, df = h->frames_done - c->peer_frames_done;

	if (dm > c->tx_msgs - c->peer_msgs_done || df > c->tx_frames - c->peer_frames_done)
		return -WAVE_ECORRUPT;
	if (dm || df)
		c->credit_req_sent = false;
	c->peer_msgs_done = h->msgs_done;
	c->peer_frames_done = h->frames_done;
	return 0;
}

static int handle_reply(struct fab_chan *c, const uint8_t *buf, size_t len);

/* Judges one received frame in buffer @i. Returns 0 or an error; never
 * sends (sending is left to chan_service()). */
static int handle_frame(struct fab_chan *c, uint32_t i, size_t len)
{
	const uint8_t *buf = rx_buf(&c->e, i);
	struct fab_hdr h;

	if (len < FAB_HDR_SIZE || len > FAB_BUF_SIZE)
		return -WAVE_ECORRUPT;
	memcpy(&h, buf, sizeof(h));
	if (h.magic != FAB_MAGIC)
		return -WAVE_ECORRUPT;
	if (c->handshaking) {
		int r = h.kind == FAB_REPLY ? handle_reply(c, buf, len) : -WAVE_ECORRUPT;
		return r < 0 ? r : post_rx(&c->e, i);
	}
	if (take_credit(c, &h) < 0)
		return -WAVE_ECORRUPT;
	c->last_rx_ns = c->now;
	if (h.flags & ~(FAB_F_CREDIT_REQ | FAB_F_ACK_WANTED))
		return -WAVE_ECORRUPT;
	if (h.flags & FAB_F_CREDIT_REQ)
		c->credit_wanted = true;

	if (h.kind == FAB_DATA) {
		const uint8_t *p = buf + FAB_HDR_SIZE;
		if (c->peer_closed || h.count == 0 || h.count > FAB_FRAME_MSGS ||
		    len != FAB_HDR_SIZE + (size_t)h.count * WAVE_MSG_SIZE)
			return -WAVE_ECORRUPT;
		/* The peer must have respected our credit. */
		if (fifo_count(c) >= c->e.n_data ||
		    (uint32_t)(c->rx_msgs - c->msgs_done) + h.count > c->my_slots)
			return -WAVE_ECORRUPT;
		for (unsigned k = 0; k < h.count; k++, p += WAVE_MSG_SIZE) {
			struct wave_msg m;
			memcpy(&m, p, sizeof(m));
			if (m.type == 0 || m.seq != c->rx_msgs + 1 + k)
				return -WAVE_ECORRUPT; /* a gap, a duplicate, or junk */
		}
		c->rx_msgs += h.count;
		c->fifo[c->fifo_tail++ & c->fifo_mask] = (struct fab_frame){ i, h.count };
		return 0; /* re-posted once the application took every message */
	}
	if (len != FAB_HDR_SIZE || h.count != 0)
		return -WAVE_ECORRUPT;
	switch (h.kind) {
	case FAB_CREDIT:
	case FAB_HEARTBEAT:
		break;
	case FAB_BYE:
		if (!c->peer_closed)
			wave_info("fabric channel: peer closed");
		c->peer_closed = true;
		/* Only a closer with messages still at stake waits for an
		 * ack; otherwise nothing more is sent to a closed peer. */
		c->ack_due = (h.flags & FAB_F_ACK_WANTED) != 0;
		break;
	case FAB_BYE_ACK:
		c->bye_acked = true;
		break;
	default:
		return -WAVE_ECORRUPT;
	}
	return post_rx(&c->e, i);
}

/* A completion with an error: a transfer failed or was cancelled. */
static void handle_cq_error(struct fab_chan *c)
{
	struct fi_cq_err_entry err = { 0 };
	const struct fab_ctx *x;

	if (fi_cq_readerr(c->e.cq, &err, 0) < 0)
		return;
	x = err.op_context;
	if (x >= c->e.ctx && x < c->e.ctx + c->e.n_rx + c->e.n_tx) {
		if (x->idx >= c->e.n_rx)
			tx_put(&c->e, x->idx - c->e.n_rx);
		else if (err.err == FI_ETRUNC)
			chan_fail(c, -WAVE_ECORRUPT, "peer sent a frame larger than a buffer");
		else if (err.err != FI_ECANCELED)
			c->e.repost[c->e.n_repost++] = x->idx;
	}
	if (err.err == FI_ECANCELED || err.err == FI_ETRUNC)
		return;
	if (c->handshaking && !c->hs_result) {
		c->hs_result = err.err > 0 && err.err < FI_ERRNO_OFFSET ? -err.err : -EIO;
		return;
	}
	peer_lost(c, fi_strerror(err.err));
}

/* Reads every completion and judges it. Sends nothing. */
static void chan_drain(struct fab_chan *c)
{
	struct fi_cq_msg_entry ev[16];

	for (int round = 0; round < 64 && !c->failed; round++) {
		ssize_t n = fi_cq_read(c->e.cq, ev, WAVE_ARRAY_SIZE(ev));
		if (n == -FI_EAGAIN)
			break;
		if (n == -FI_EAVAIL) {
			handle_cq_error(c);
			continue;
		}
		if (n < 0) {
			chan_fail(c, fab_err(n), "reading the completion queue");
			break;
		}
		for (ssize_t k = 0; k < n && !c->failed; k++) {
			const struct fab_ctx *x = ev[k].op_context;
			int r;
			if (x < c->e.ctx || x >= c->e.ctx + c->e.n_rx + c->e.n_tx)
				continue; /* not ours: nothing to release */
			if (x->idx >= c->e.n_rx) {
				tx_put(&c->e, x->idx - c->e.n_rx);
				continue;
			}
			if ((r = handle_frame(c, x->idx, ev[k].len)) < 0)
				chan_fail(c, r, "received frame");
		}
		if ((size_t)n < WAVE_ARRAY_SIZE(ev))
			break;
	}
}

/* Unreported credit worth a CREDIT frame now? */
static void maybe_credit(struct fab_chan *c)
{
	uint32_t um = c->msgs_done - c->reported_msgs, uf = c->frames_done - c->reported_frames;

	/* A peer that said BYE sends nothing more: it needs no credit. */
	if ((!um && !uf) || c->peer_closed || c->peer_gone)
		return;
	if (c->credit_wanted || um >= c->credit_every_msgs || uf >= c->credit_every_frames) {
		if (send_ctrl(c, FAB_CREDIT, 0))
			c->credit_wanted = false;
	}
}

/* The sending half of progress: re-posts, acks, credit, heartbeats, and
 * the liveness verdict. */
static void chan_service(struct fab_chan *c)
{
	int r;

	if (c->failed)
		return;
	if (c->e.n_repost && (r = repost_pending(&c->e)) < 0) {
		chan_fail(c, r, "re-posting a receive buffer");
		return;
	}
	if (c->peer_gone)
		return;
	if (c->ack_due && send_ctrl(c, FAB_BYE_ACK, 0))
		c->ack_due = false;
	if (c->peer_closed)
		return;
	maybe_credit(c);
	if (c->now - c->last_tx_ns >= c->hb_ns)
		send_ctrl(c, FAB_HEARTBEAT, 0);
	if (c->now - c->last_rx_ns > c->timeout_ns) {
		wave_dbg("fabric channel: silent peer; sent %u msgs/%u frames, credited %u/%u; "
			  "received %u, consumed %u/%u frames, held %u, tx free %u, reposts %u, "
			  "req %d wanted %d",
			  c->tx_msgs, c->tx_frames, c->peer_msgs_done, c->peer_frames_done,
			  c->rx_msgs, c->msgs_done, c->frames_done, fifo_count(c), c->e.n_tx_free,
			  c->e.n_repost, c->credit_req_sent, c->credit_wanted);
		peer_lost(c, "silent for longer than disconnect_timeout_ms");
	}
}

static void chan_progress(struct fab_chan *c)
{
	c->now = c->last_progress_ns = wave_now_ns();
	chan_drain(c);
	chan_service(c);
}

/* Room for data: messages the peer's ring and posted buffers can take. */
static unsigned tx_room(const struct fab_chan *c, unsigned want)
{
	uint32_t msgs = c->peer_slots - (c->tx_msgs - c->peer_msgs_done);
	uint32_t frames = c->peer_frames - (c->tx_frames - c->peer_frames_done);
	uint64_t by_frames;

	if (frames > c->e.n_tx_free)
		frames = c->e.n_tx_free;
	by_frames = (uint64_t)frames * c->peer_frame_msgs;
	if (msgs > by_frames)
		msgs = (uint32_t)by_frames;
	return msgs < want ? msgs : want;
}

/* Fills transmit buffer @i with a DATA frame of @cnt messages. */
static size_t fill_data(struct fab_chan *c, uint32_t i, const struct wave_msg *msgs,
			unsigned cnt, uint64_t now)
{
	uint8_t *buf = tx_buf(&c->e, i);

	fill_hdr(c, (struct fab_hdr *)buf, FAB_DATA, (uint16_t)cnt, 0);
	for (unsigned m = 0; m < cnt; m++) {
		/* Messages sit 16 bytes into the frame, off their natural
		 * 64-byte alignment: copy bytes, never dereference. */
		uint8_t *w = buf + FAB_HDR_SIZE + (size_t)m * WAVE_MSG_SIZE;
		uint32_t seq = c->tx_msgs + 1 + m;
		memcpy(w, &msgs[m], WAVE_MSG_SIZE);
		memcpy(w + offsetof(struct wave_msg, seq), &seq, sizeof(seq));
		memcpy(w + offsetof(struct wave_msg, tstamp), &now, sizeof(now));
	}
	return FAB_HDR_SIZE + (size_t)cnt * WAVE_MSG_SIZE;
}

/*
 * Sends messages [0, k) of @msgs, one frame per peer_frame_msgs. Returns how
 * many went out. When the provider is busy (rxm sets up its connection on the
 * first sends), nothing or a burst's first frames are sent; a bulk call that
 * sent its first frame finishes, progressing until the provider takes the
 * rest or the peer is declared gone.
 */
static int send_frames(struct fab_chan *c, const struct wave_msg *msgs, unsigned k, bool all)
{
	uint64_t now = c->now;
	unsigned done = 0;

	while (done < k) {
		unsigned cnt = k - done < c->peer_frame_msgs ? k - done : c->peer_frame_msgs;
		int64_t i = tx_get(c);
		struct fab_hdr sent_hdr;
		size_t len;
		int r;

		if (i < 0)
			return (int)done; /* tx_room() counted free buffers */
		len = fill_data(c, (uint32_t)i, msgs + done, cnt, now);
		memcpy(&sent_hdr, tx_buf(&c->e, (uint32_t)i), sizeof(sent_hdr));
		for (;;) {
			r = post_send(&c->e, (uint32_t)i, len, c->peer, false, done + cnt < k);
			if (r != -EAGAIN)
				break;
			if (done == 0 || !all)
				return (int)done;
			do {
				chan_progress(c);
				if (c->failed)
					return c->failed;
				if (c->peer_gone || c->peer_closed)
					return -WAVE_ECLOSED;
			} while ((i = tx_get(c)) < 0);
			len = fill_data(c, (uint32_t)i, msgs + done, cnt, now);
			memcpy(&sent_hdr, tx_buf(&c->e, (uint32_t)i), sizeof(sent_hdr));
		}
		if (r < 0) {
			peer_lost(c, wave_strerror(r));
			return done ? (int)done : -WAVE_ECLOSED;
		}
		told_credit(c, &sent_hdr);
		c->tx_msgs += cnt;
		c->tx_frames++;
		c->last_tx_ns = c->now;
		done += cnt;
	}
	return (int)done;
}

/* ---- channel operations -------------------------------------------------- */

static int fab_send(struct wave_chan *ch, const struct wave_msg *msgs, unsigned n, bool all)
{
	struct fab_chan *c = FAB(ch);
	unsigned k;
	int r;

	pthread_mutex_lock(&c->lock);
	/* A send that has credit enough skips reading the completion queue
	 * (a system call with some providers), unless it has not been read
	 * for a while: receives and waits read it anyway, and so does a send
	 * that finds too little room. */
	c->now = wave_now_ns();
	if (tx_room(c, n) < n || c->now - c->last_progress_ns >= c->hb_ns / 4)
		chan_progress(c);
	if (c->failed) {
		r = c->failed;
	} else if (c->peer_closed || c->peer_gone) {
		r = -WAVE_ECLOSED;
	} else {
		k = tx_room(c, n);
		/* Out of credit: ask the receiver to report any progress at
		 * once instead of waiting for a quarter ring. Once per credit
		 * update, so a stalled reader costs one frame, not a storm. */
		if (k < n && !c->credit_req_sent && send_ctrl(c, FAB_CREDIT, FAB_F_CREDIT_REQ))
			c->credit_req_sent = true;
		if (k < n && all)
			r = -EAGAIN;
		else if (k == 0)
			r = 0;
		else if ((r = send_frames(c, msgs, k, all)) == 0 && all)
			r = -EAGAIN;
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

/* Hands out up to @max messages, re-posting each buffer once emptied. */
static unsigned take(struct fab_chan *c, struct wave_msg *msgs, unsigned max)
{
	unsigned n = 0;

	while (n < max && fifo_count(c)) {
		struct fab_frame *f = &c->fifo[c->fifo_head & c->fifo_mask];
		const uint8_t *p = rx_buf(&c->e, f->idx) + FAB_HDR_SIZE +
				   (size_t)c->head_pos * WAVE_MSG_SIZE;
		if (c->delay_ns) {
			uint64_t ts;
			memcpy(&ts, p + offsetof(struct wave_msg, tstamp), sizeof(ts));
			/* A stamp from the future (another machine's clock, or
			 * a bad peer) is delivered at once, as with shm. */
			if (ts <= c->now && c->now - ts < c->delay_ns)
				break;
		}
		memcpy(&msgs[n++], p, WAVE_MSG_SIZE);
		if (++c->head_pos == f->count) {
			int r;
			c->head_pos = 0;
			c->fifo_head++;
			c->frames_done++;
			if ((r = post_rx(&c->e, f->idx)) < 0) {
				chan_fail(c, r, "re-posting a receive buffer");
				break;
			}
		}
	}
	c->msgs_done += n;
	if (n)
		maybe_credit(c);
	return n;
}

static int fab_recv(struct wave_chan *ch, struct wave_msg *msgs, unsigned max)
{
	struct fab_chan *c = FAB(ch);
	int r;

	pthread_mutex_lock(&c->lock);
	chan_progress(c);
	if (c->failed)
		r = c->failed;
	else if ((r = (int)take(c, msgs, max)) == 0 && (c->peer_closed || c->peer_gone))
		r = c->failed ? c->failed : -WAVE_ECLOSED;
	pthread_mutex_unlock(&c->lock);
	return r;
}

/* 1 when a receive would return something (a message, or the end), 0 when
 * not, or an error. With latency emulation, *@due is when the head message
 * becomes ready (0 if none is waiting). */
static int rx_ready(struct fab_chan *c, uint64_t *due)
{
	*due = 0;
	if (c->failed)
		return c->failed;
	if (fifo_count(c)) {
		const struct fab_frame *f = &c->fifo[c->fifo_head & c->fifo_mask];
		uint64_t ts;
		if (!c->delay_ns)
			return 1;
		memcpy(&ts, rx_buf(&c->e, f->idx) + FAB_HDR_SIZE +
				    (size_t)c->head_pos * WAVE_MSG_SIZE +
				    offsetof(struct wave_msg, tstamp),
		       sizeof(ts));
		if (ts > c->now || c->now - ts >= c->delay_ns)
			return 1;
		*due = ts + c->delay_ns;
		return 0;
	}
	return c->peer_closed || c->peer_gone;
}

/* Sleeps up to @ns on the completion queue's wait object (or a short
 * sleep without one). */
static void sleep_on_cq(struct fab_chan *c, uint64_t ns)
{
	if (c->e.wait_fd >= 0) {
		struct fid *fids[1] = { &c->e.cq->fid };
		int t;
		pthread_mutex_lock(&c->lock);
		t = fi_trywait(c->e.fabric, fids, 1);
		pthread_mutex_unlock(&c->lock);
		if (t == 0) {
			struct timespec ts = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };
			struct pollfd p = { .fd = c->e.wait_fd, .events = POLLIN };
			wave_stat_add(&c->base.sleeps, 1);
			ppoll(&p, 1, &ts, NULL);
		}
		return;
	}
	if (ns > FAB_POLL_SLEEP_NS)
		ns = FAB_POLL_SLEEP_NS;
	wave_stat_add(&c->base.sleeps, 1);
	nanosleep(&(struct timespec){ 0, (long)ns }, NULL);
}

static int fab_wait(struct wave_chan *ch, int64_t timeout_ns)
{
	struct fab_chan *c = FAB(ch);
	uint64_t start = wave_now_ns();
	uint64_t deadline = timeout_ns < 0 ? UINT64_MAX : start + (uint64_t)timeout_ns;
	uint64_t spin_end = c->spin_ns < deadline - start ? start + c->spin_ns : deadline;
	uint64_t now, due;
	int r;

	for (;;) {
		pthread_mutex_lock(&c->lock);
		chan_progress(c);
		r = rx_ready(c, &due);
		now = c->now;
		pthread_mutex_unlock(&c->lock);
		if (r != 0 || now >= deadline)
			return r;
		if (now < spin_end || (due && due - now < 20000)) {
			for (int i = 0; i < 32; i++)
				wave_cpu_relax();
			continue;
		}
		/* Wake up in time to send our heartbeat and judge the peer's,
		 * and at least every FAB_WAIT_SLICE_NS: with tcp;ofi_rxm the
		 * wait object does not fire for every arrival that needs
		 * progress to complete (a sleeper would wait for its slice). */
		uint64_t slice = deadline - now;
		if (slice > c->hb_ns / 2)
			slice = c->hb_ns / 2;
		if (slice > FAB_WAIT_SLICE_NS)
			slice = FAB_WAIT_SLICE_NS;
		if (due && due - now < slice)
			slice = due - now;
		sleep_on_cq(c, slice);
	}
}

static int fab_fd(struct wave_chan *ch)
{
	struct fab_chan *c = FAB(ch);

	return c->e.wait_fd >= 0 ? c->e.wait_fd : -ENOTSUP;
}

static int fab_trywait(struct wave_chan *ch)
{
	struct fab_chan *c = FAB(ch);
	struct fid *fids[1] = { &c->e.cq->fid };
	uint64_t due;
	int r;

	if (c->e.wait_fd < 0)
		return -ENOTSUP;
	pthread_mutex_lock(&c->lock);
	chan_progress(c);
	r = rx_ready(c, &due);
	if (r != 0)
		r = r < 0 ? r : -EAGAIN;
	else if (due)
		r = -EAGAIN; /* a message is held back for a little while only */
	else if ((r = fi_trywait(c->e.fabric, fids, 1)) != 0)
		r = r == -FI_EAGAIN ? -EAGAIN : fab_err(r);
	pthread_mutex_unlock(&c->lock);
	return r;
}

static void chan_destroy(struct fab_chan *c)
{
	fab_ep_close(&c->e);
	pthread_mutex_destroy(&c->lock);
	free(c->fifo);
	free(c);
}

/*
 * Tells the peer we are done. The BYE travels behind every DATA frame we
 * sent, so the peer's acknowledgement means they all arrived and tearing
 * the endpoint down loses nothing. When the peer has already consumed (and
 * credited) every message we sent, nothing can be lost, and we wait only
 * for the provider to hand our BYE over. Either wait lasts at most
 * disconnect_timeout_ms: a peer that makes no call meanwhile cannot answer.
 */
static void fab_close(struct wave_chan *ch)
{
	struct fab_chan *c = FAB(ch);
	bool sent = false;
	uint64_t deadline, start;

	pthread_mutex_lock(&c->lock);
	c->now = start = wave_now_ns();
	deadline = c->now + c->timeout_ns;
	while (!c->failed && !c->peer_gone && !c->bye_acked && c->now < deadline) {
		chan_drain(c);
		chan_service(c);
		bool all_taken = c->peer_msgs_done == c->tx_msgs;
		if (c->peer_closed && !c->ack_due)
			break; /* the peer closed first (and got its ack): we are done */
		if (!sent && !c->failed && !c->peer_gone) {
			int64_t i = tx_get(c);
			if (i >= 0) {
				fill_hdr(c, (struct fab_hdr *)tx_buf(&c->e, (uint32_t)i), FAB_BYE, 0,
					 all_taken ? 0 : FAB_F_ACK_WANTED);
				int r = post_send(&c->e, (uint32_t)i, FAB_HDR_SIZE, c->peer, true,
						  false);
				sent = r == 0;
				if (r < 0 && r != -EAGAIN)
					break;
			}
		}
		bool flushed = sent && !c->ack_due && c->e.n_tx_free == c->e.n_tx;
		/* A peer that closed too needs our ack (sent above), not the
		 * other way round. */
		if (flushed && (all_taken || c->peer_closed))
			break;
		/* With nothing of ours at stake, do not wait long for a peer
		 * that makes no calls (the provider may need it to progress
		 * to take the BYE); it learns of the close by the lost
		 * connection or by its disconnect timeout instead. */
		if (all_taken && c->now - start >= FAB_CLOSE_GRACE_NS)
			break;
		pthread_mutex_unlock(&c->lock);
		sleep_on_cq(c, 1000000);
		pthread_mutex_lock(&c->lock);
		c->now = wave_now_ns();
	}
	pthread_mutex_unlock(&c->lock);
	chan_destroy(c);
}

static const struct wave_chan_ops fab_ops = {
	.send = fab_send,
	.recv = fab_recv,
	.wait = fab_wait,
	.fd = fab_fd,
	.trywait = fab_trywait,
	.close = fab_close,
};

static uint32_t pow2_at_least(uint32_t n)
{
	uint32_t p = 1;
	while (p < n)
		p <<= 1;
	return p;
}

/* Makes a channel around endpoint @e (taken over, also on failure). */
static int chan_new(enum wave_role role, const struct wave_chan_opts *o, uint32_t my_slots,
		    struct fab_ep *e, struct fab_chan **out)
{
	struct fab_chan *c;
	uint32_t cap = pow2_at_least(e->n_data ? e->n_data : 1);

	if (posix_memalign((void **)&c, 64, sizeof(*c)) != 0) {
		fab_ep_close(e);
		return -ENOMEM;
	}
	memset(c, 0, sizeof(*c));
	c->fifo = calloc(cap, sizeof(*c->fifo));
	if (!c->fifo || pthread_mutex_init(&c->lock, NULL) != 0) {
		free(c->fifo);
		free(c);
		fab_ep_close(e);
		return -ENOMEM;
	}
	c->base.ops = &fab_ops;
	c->base.role = role;
	c->e = *e;
	memset(e, 0, sizeof(*e));
	c->fifo_mask = cap - 1;
	c->my_slots = my_slots;
	c->credit_every_msgs = my_slots / 4 ? my_slots / 4 : 1;
	c->credit_every_frames = c->e.n_data / 4 ? c->e.n_data / 4 : 1;
	c->timeout_ns = (uint64_t)o->disconnect_timeout_ms * 1000000u;
	c->hb_ns = c->timeout_ns / 4 ? c->timeout_ns / 4 : 1;
	c->delay_ns = o->delay_ns;
	c->spin_ns = o->spin_ns;
	c->now = wave_now_ns();
	c->last_rx_ns = c->last_tx_ns = c->now;
	*out = c;
	return 0;
}

/* ---- host side: the handshake ---------------------------------------------- */

/* The agent's answer to our hello. Sets hs_result; returns an error only
 * for a frame that cannot be a reply at all. */
static int handle_reply(struct fab_chan *c, const uint8_t *buf, size_t len)
{
	uint32_t fmt = c->e.info->addr_format;
	struct fab_reply r;

	if (len != sizeof(r))
		return -WAVE_ECORRUPT;
	memcpy(&r, buf, sizeof(r));
	if (r.nonce != c->nonce) {
		wave_dbg("fabric: ignored a reply to another hello");
		return 0;
	}
	r.reason[sizeof(r.reason) - 1] = '\0';
	for (char *p = r.reason; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			*p = '?'; /* the peer's text goes to our log: printable only */
	if (r.status != 0) {
		wave_warn("agent refused the channel: %s", r.reason);
		/* Only codes we know; anything else is just a refusal. */
		c->hs_result = (r.status > 0 && r.status < WAVE_ERRNO_MAX) ? -r.status
									    : -WAVE_EREFUSED;
		return 0;
	}
	if (r.proto_major != proto_major) {
		wave_warn("agent speaks fabric protocol %u.%u, this host %u.%u", r.proto_major,
			  r.proto_minor, proto_major, proto_minor);
		c->hs_result = -WAVE_EVERSION;
		return 0;
	}
	if (r.rx_frames == 0 || r.rx_frames > WAVE_CHAN_MAX_SLOTS + FAB_CTRL_BUFS ||
	    r.frame_msgs == 0 || !peer_addr_ok(fmt, r.addr, r.addr_len))
		return -WAVE_ECORRUPT;
	if (fi_av_insert(c->e.av, r.addr, 1, &c->peer, 0, NULL) != 1) {
		c->hs_result = -EHOSTUNREACH;
		return 0;
	}
	c->peer_frames = r.rx_frames;
	c->peer_frame_msgs = r.frame_msgs < FAB_FRAME_MSGS ? r.frame_msgs : FAB_FRAME_MSGS;
	c->handshaking = false;
	c->last_rx_ns = c->last_tx_ns = c->now;
	c->hs_result = 1;
	return 0;
}

static uint64_t make_nonce(void)
{
	uint64_t n = 0;

	if (getrandom(&n, sizeof(n), GRND_NONBLOCK) != (ssize_t)sizeof(n))
		n = wave_now_ns() ^ ((uint64_t)getpid() << 32);
	return n;
}

/* Waits until @done(c) or the deadline, draining the CQ. */
static int hs_wait(struct fab_chan *c, uint64_t deadline)
{
	for (;;) {
		pthread_mutex_lock(&c->lock);
		c->now = wave_now_ns();
		chan_drain(c);
		if (!c->failed && c->e.n_repost)
			repost_pending(&c->e);
		pthread_mutex_unlock(&c->lock);
		if (c->failed)
			return c->failed;
		if (c->hs_result)
			return c->hs_result < 0 ? c->hs_result : 0;
		if (c->now >= deadline)
			return -ETIMEDOUT;
		sleep_on_cq(c, deadline - c->now < 10000000u ? deadline - c->now : 10000000u);
	}
}

static uint64_t deadline_of(int timeout_ms)
{
	return timeout_ms < 0 ? UINT64_MAX : wave_now_ns() + (uint64_t)timeout_ms * 1000000u;
}

static int fab_open(const char *rest, const struct wave_chan_opts *o, struct wave_chan **out)
{
	uint64_t deadline = deadline_of(o->timeout_ms);
	struct fab_addr a, src;
	struct fab_hello *h;
	struct fab_chan *c;
	struct fab_ep e;
	int64_t i;
	int ret;

	if ((ret = parse_uri(rest, &a)) < 0) {
		wave_warn("fabric: bad URI 'fabric://%s'", rest);
		return ret;
	}
	memset(&src, 0, sizeof(src));
	if (!a.is_str) {
		if (addr_is_wildcard(&a))
			return -WAVE_EURI;
		if ((ret = local_addr_towards(&a.sa.sa, a.salen, &src)) < 0) {
			wave_warn("fabric: no route to fabric://%s: %s", rest, wave_strerror(ret));
			return ret;
		}
	}
	ret = fab_open_at(&a, a.is_str ? NULL : (const void *)&src.sa, src.salen,
			  o->agent_to_host_slots, FAB_CTRL_BUFS, FAB_TX_BUFS, &e);
	if (ret < 0 || (ret = chan_new(WAVE_ROLE_HOST, o, o->agent_to_host_slots, &e, &c)) < 0) {
		wave_warn("fabric: cannot open an endpoint for fabric://%s: %s", rest,
			  wave_strerror(ret));
		return ret;
	}
	c->handshaking = true;
	c->peer_slots = o->host_to_agent_slots;
	c->nonce = make_nonce();
	if (fi_av_insert(c->e.av, a.is_str ? (const void *)a.str : (const void *)&a.sa, 1,
			 &c->listener, 0, NULL) != 1) {
		ret = -EHOSTUNREACH;
		goto err;
	}
	c->have_listener = true;

	i = tx_get(c);
	h = (struct fab_hello *)tx_buf(&c->e, (uint32_t)i);
	memset(h, 0, sizeof(*h));
	h->h.magic = FAB_MAGIC;
	h->h.kind = FAB_HELLO;
	h->proto_major = proto_major;
	h->proto_minor = proto_minor;
	h->h2a_slots = o->host_to_agent_slots;
	h->a2h_slots = o->agent_to_host_slots;
	h->rx_frames = c->e.n_data;
	h->frame_msgs = FAB_FRAME_MSGS;
	h->nonce = c->nonce;
	if (o->token) {
		h->token_len = (uint32_t)strlen(o->token);
		memcpy(h->token, o->token, h->token_len);
	}
	h->addr_len = (uint32_t)c->e.name_len;
	memcpy(h->addr, c->e.name, c->e.name_len);
	/* With a completion, so that a refused connection shows up as an
	 * error completion rather than as silence. */
	while ((ret = post_send(&c->e, (uint32_t)i, sizeof(*h), c->listener, true, false)) ==
	       -EAGAIN) {
		pthread_mutex_lock(&c->lock);
		chan_drain(c);
		pthread_mutex_unlock(&c->lock);
		if (wave_now_ns() >= deadline) {
			ret = -ETIMEDOUT;
			goto err;
		}
		i = tx_get(c);
	}
	if (ret < 0)
		goto err;
	if ((ret = hs_wait(c, deadline)) < 0)
		goto err;
	/* The listener's endpoint is needed no more; dropping it from our
	 * AV lets the provider close that connection. */
	fi_av_remove(c->e.av, &c->listener, 1, 0);
	c->have_listener = false;
	wave_info("fabric: connected to fabric://%s (provider %s)", rest,
		  c->e.info->fabric_attr->prov_name);
	*out = &c->base;
	return 0;
err:
	wave_warn("fabric: cannot open fabric://%s: %s", rest, wave_strerror(ret));
	chan_destroy(c);
	return ret;
}

/* ---- agent side: listening and accepting ----------------------------------- */

struct fab_listener {
	struct wave_chan_listener base;
	struct fab_ep e;
	struct fab_addr a;
	struct wave_chan_opts o;
	uint8_t token[FAB_TOKEN_MAX];
	uint32_t token_len;
	bool need_token;
	struct fab_frame *pending; /* hellos read while sending a refusal */
	uint32_t n_pending;
	char uri[FAB_PROV_MAX + FAB_ADDR_MAX];
};

static const struct wave_listener_ops fab_listener_ops;

static int fab_listen(const char *rest, const struct wave_chan_opts *o,
		      struct wave_chan_listener **out)
{
	struct fab_listener *l;
	int ret;

	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->base.ops = &fab_listener_ops;
	snprintf(l->uri, sizeof(l->uri), "fabric://%s", rest);
	if ((ret = parse_uri(rest, &l->a)) < 0)
		goto err;
	if ((ret = check_local_addr(&l->a)) < 0)
		goto err; /* e.g. -EADDRNOTAVAIL: not one of this machine's */
	ret = fab_open_at(&l->a, l->a.is_str ? (const void *)l->a.str : (const void *)&l->a.sa,
			  l->a.is_str ? strlen(l->a.str) + 1 : l->a.salen, FAB_LISTEN_RX, 0,
			  FAB_LISTEN_TX, &l->e);
	if (ret < 0)
		goto err;
	l->pending = calloc(l->e.n_rx, sizeof(*l->pending));
	if (!l->pending) {
		fab_ep_close(&l->e);
		ret = -ENOMEM;
		goto err;
	}
	l->o = *o;
	if (o->token) {
		l->need_token = true;
		l->token_len = (uint32_t)strlen(o->token);
		memcpy(l->token, o->token, l->token_len);
	}
	l->o.token = NULL; /* the copy above is the one in force */
	l->o.allow_uids = NULL;
	/* From here on, the provider the listener really uses. */
	snprintf(l->a.prov, sizeof(l->a.prov), "%s", l->e.info->fabric_attr->prov_name);
	wave_info("listening on %s (provider %s)", l->uri, l->a.prov);
	*out = &l->base;
	return 0;
err:
	wave_warn("cannot listen on %s: %s", l->uri, wave_strerror(ret));
	free(l);
	return ret;
}

/* Constant time in the token's contents: every byte is compared. */
static bool token_equal(const uint8_t *a, uint32_t alen, const uint8_t *b, uint32_t blen)
{
	uint8_t diff = (uint8_t)(alen != blen);

	for (unsigned i = 0; i < FAB_TOKEN_MAX; i++)
		diff |= a[i] ^ b[i];
	return diff == 0;
}

/* Reads one listener completion: 1 with a received hello's buffer and
 * length, 0 when there is none, or an error. Transmit completions only
 * free their buffer. */
static int listener_poll(struct fab_listener *l, uint32_t *idx, size_t *len, bool *tx_done)
{
	struct fi_cq_msg_entry ev;
	const struct fab_ctx *x;
	ssize_t n = fi_cq_read(l->e.cq, &ev, 1);

	if (n == -FI_EAGAIN)
		return 0;
	if (n == -FI_EAVAIL) {
		struct fi_cq_err_entry err = { 0 };
		if (fi_cq_readerr(l->e.cq, &err, 0) < 0)
			return 0;
		x = err.op_context;
		if (x >= l->e.ctx && x < l->e.ctx + l->e.n_rx + l->e.n_tx) {
			if (x->idx >= l->e.n_rx) {
				tx_put(&l->e, x->idx - l->e.n_rx);
				*tx_done = true;
			} else if (err.err != FI_ECANCELED) {
				post_rx(&l->e, x->idx);
			}
		}
		wave_info("fabric listener: a transfer failed: %s", fi_strerror(err.err));
		return 0;
	}
	if (n < 0)
		return fab_err(n);
	x = ev.op_context;
	if (x < l->e.ctx || x >= l->e.ctx + l->e.n_rx + l->e.n_tx)
		return 0;
	if (x->idx >= l->e.n_rx) {
		tx_put(&l->e, x->idx - l->e.n_rx);
		*tx_done = true;
		return 0;
	}
	*idx = x->idx;
	*len = ev.len;
	return 1;
}

static void listener_sleep(struct fab_listener *l, uint64_t ns)
{
	if (l->e.wait_fd >= 0) {
		struct fid *fids[1] = { &l->e.cq->fid };
		if (fi_trywait(l->e.fabric, fids, 1) == 0) {
			struct timespec ts = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };
			struct pollfd p = { .fd = l->e.wait_fd, .events = POLLIN };
			ppoll(&p, 1, &ts, NULL);
		}
		return;
	}
	if (ns > FAB_POLL_SLEEP_NS)
		ns = FAB_POLL_SLEEP_NS;
	nanosleep(&(struct timespec){ 0, (long)ns }, NULL);
}

/*
 * Refuses a host: one REPLY with the reason, to the address its hello gave,
 * and nothing else. Waits (briefly) for the send to complete, then forgets
 * the address. Returns -@code.
 */
static int refuse(struct fab_listener *l, const struct fab_hello *h, int code, const char *fmt,
		  ...) __attribute__((format(printf, 4, 5)));
static int refuse(struct fab_listener *l, const struct fab_hello *h, int code, const char *fmt,
		  ...)
{
	uint64_t deadline = wave_now_ns() + 2000000000u;
	struct fab_reply *r;
	fi_addr_t fa;
	va_list ap;
	int64_t i;
	int ret;
	bool tx_done = false;

	i = ep_tx_get(&l->e);
	if (i < 0) {
		wave_warn("refused a host (no buffer to tell it why)");
		return -code;
	}
	r = (struct fab_reply *)tx_buf(&l->e, (uint32_t)i);
	memset(r, 0, sizeof(*r));
	r->h.magic = FAB_MAGIC;
	r->h.kind = FAB_REPLY;
	r->proto_major = proto_major;
	r->proto_minor = proto_minor;
	r->status = code;
	r->nonce = h->nonce;
	va_start(ap, fmt);
	vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
	va_end(ap);
	wave_warn("refused a host: %s", r->reason);
	if (fi_av_insert(l->e.av, h->addr, 1, &fa, 0, NULL) != 1) {
		tx_put(&l->e, (uint32_t)i);
		return -code;
	}
	while ((ret = post_send(&l->e, (uint32_t)i, sizeof(*r), fa, true, false)) == -EAGAIN) {
		uint32_t idx;
		size_t len;
		bool dummy = false;
		if (wave_now_ns() >= deadline || (i = ep_tx_get(&l->e)) < 0)
			break;
		if (listener_poll(l, &idx, &len, &dummy) == 1)
			l->pending[l->n_pending++] = (struct fab_frame){ idx, (uint32_t)len };
	}
	/* Wait for the completion; keep hellos that come meanwhile. */
	while (ret == 0 && !tx_done && wave_now_ns() < deadline) {
		uint32_t idx;
		size_t len;
		int p = listener_poll(l, &idx, &len, &tx_done);
		if (p == 1 && l->n_pending < l->e.n_rx)
			l->pending[l->n_pending++] = (struct fab_frame){ idx, (uint32_t)len };
		else if (p == 0 && !tx_done)
			listener_sleep(l, 1000000);
		else if (p < 0)
			break;
	}
	fi_av_remove(l->e.av, &fa, 1, 0);
	return -code;
}

static bool slots_ok(uint32_t n, uint32_t max)
{
	return n >= WAVE_CHAN_MIN_SLOTS && n <= max && (n & (n - 1)) == 0;
}

/* Opens this host's channel endpoint and sends the acceptance. */
static int admit(struct fab_listener *l, const struct fab_hello *h, uint64_t deadline,
		 struct wave_chan **out)
{
	struct fab_addr src;
	struct fab_chan *c;
	struct fab_reply *r;
	struct fab_ep e;
	const void *srcp = NULL;
	int64_t i;
	int ret;

	memset(&src, 0, sizeof(src));
	if (!l->a.is_str) {
		if (addr_is_wildcard(&l->a)) {
			/* Bind where the route back to this host starts. */
			union fab_sa dst;
			memset(&dst, 0, sizeof(dst));
			memcpy(&dst, h->addr, h->addr_len); /* checked: a sockaddr_in(6) */
			if ((ret = local_addr_towards(&dst.sa, h->addr_len, &src)) < 0)
				return ret;
		} else {
			src = l->a;
			if (src.format == FI_SOCKADDR_IN)
				src.sa.in.sin_port = 0;
			else
				src.sa.in6.sin6_port = 0;
		}
		srcp = &src.sa;
	}
	ret = fab_open_at(&l->a, srcp, src.salen, h->h2a_slots, FAB_CTRL_BUFS, FAB_TX_BUFS, &e);
	if (ret < 0 || (ret = chan_new(WAVE_ROLE_AGENT, &l->o, h->h2a_slots, &e, &c)) < 0)
		return ret;
	c->peer_slots = h->a2h_slots;
	c->peer_frames = h->rx_frames;
	c->peer_frame_msgs = h->frame_msgs < FAB_FRAME_MSGS ? h->frame_msgs : FAB_FRAME_MSGS;
	if (fi_av_insert(c->e.av, h->addr, 1, &c->peer, 0, NULL) != 1) {
		chan_destroy(c);
		return -EHOSTUNREACH;
	}
	i = tx_get(c);
	r = (struct fab_reply *)tx_buf(&c->e, (uint32_t)i);
	memset(r, 0, sizeof(*r));
	r->h.magic = FAB_MAGIC;
	r->h.kind = FAB_REPLY;
	r->proto_major = proto_major;
	r->proto_minor = proto_minor;
	r->nonce = h->nonce;
	r->rx_frames = c->e.n_data;
	r->frame_msgs = FAB_FRAME_MSGS;
	r->addr_len = (uint32_t)c->e.name_len;
	memcpy(r->addr, c->e.name, c->e.name_len);
	/* With a completion: once it comes, the provider has connected to
	 * the host and handed the reply over, even if our caller does not
	 * touch the channel for a while. */
	while ((ret = post_send(&c->e, (uint32_t)i, sizeof(*r), c->peer, true, false)) == -EAGAIN) {
		chan_drain(c);
		if (wave_now_ns() >= deadline || (i = tx_get(c)) < 0) {
			ret = -ETIMEDOUT;
			break;
		}
	}
	while (ret == 0 && c->e.n_tx_free < c->e.n_tx) {
		c->now = wave_now_ns();
		chan_drain(c);
		if (c->peer_gone || c->failed)
			ret = c->failed ? c->failed : -ECONNREFUSED;
		else if (c->now >= deadline)
			ret = -ETIMEDOUT;
		else if (c->e.n_tx_free < c->e.n_tx)
			sleep_on_cq(c, 1000000);
	}
	if (ret < 0) {
		wave_warn("fabric: accepted host did not take the reply: %s", wave_strerror(ret));
		chan_destroy(c);
		return ret;
	}
	c->now = wave_now_ns();
	c->last_rx_ns = c->last_tx_ns = c->now;
	*out = &c->base;
	return 0;
}

/* Judges the hello in listener buffer @idx (re-posted here). */
static int handle_hello(struct fab_listener *l, uint32_t idx, size_t len, uint64_t deadline,
			struct wave_chan **out)
{
	struct fab_hello h;
	bool ok = len == sizeof(h);
	int ret;

	if (ok)
		memcpy(&h, rx_buf(&l->e, idx), sizeof(h));
	if ((ret = post_rx(&l->e, idx)) < 0)
		return ret;
	/* Nothing is sent in answer to junk: its address cannot be trusted
	 * to be a libwave host's. */
	if (!ok || h.h.magic != FAB_MAGIC || h.h.kind != FAB_HELLO || h.token_len > FAB_TOKEN_MAX ||
	    !peer_addr_ok(l->e.info->addr_format, h.addr, h.addr_len)) {
		wave_warn("fabric listener: ignored a malformed hello");
		return -WAVE_ECORRUPT;
	}
	if (h.proto_major != proto_major)
		return refuse(l, &h, WAVE_EVERSION, "protocol %u.%u, this agent speaks %u.x",
			      h.proto_major, h.proto_minor, proto_major);
	if (l->need_token && !token_equal(h.token, h.token_len, l->token, l->token_len))
		return refuse(l, &h, WAVE_EREFUSED, "wrong or missing access token");
	if (!slots_ok(h.h2a_slots, l->o.max_slots) || !slots_ok(h.a2h_slots, l->o.max_slots) ||
	    h.rx_frames == 0 || h.rx_frames > WAVE_CHAN_MAX_SLOTS + FAB_CTRL_BUFS ||
	    h.frame_msgs == 0)
		return refuse(l, &h, WAVE_EREFUSED, "ring sizes %u/%u not allowed (max %u)",
			      h.h2a_slots, h.a2h_slots, l->o.max_slots);
	if ((ret = admit(l, &h, deadline, out)) < 0) {
		if (ret == -ETIMEDOUT || ret == -ECONNREFUSED || ret == -EHOSTUNREACH)
			return ret; /* the host is unreachable: nothing to tell it */
		return refuse(l, &h, -ret < WAVE_ERRNO_MAX ? -ret : WAVE_EREFUSED,
			      "agent cannot set up the channel: %s", wave_strerror(ret));
	}
	wave_info("accepted a host on %s", l->uri);
	return 0;
}

static int fab_accept(struct wave_chan_listener *base, int timeout_ms, struct wave_chan **out)
{
	struct fab_listener *l = (struct fab_listener *)base;
	uint64_t deadline = deadline_of(timeout_ms);
	uint64_t hs_deadline;
	uint32_t idx;
	size_t len;

	for (;;) {
		bool tx_done = false;
		int p;
		if (l->e.n_repost && (p = repost_pending(&l->e)) < 0)
			return p;
		if (l->n_pending) {
			struct fab_frame f = l->pending[0];
			memmove(l->pending, l->pending + 1, --l->n_pending * sizeof(*l->pending));
			idx = f.idx;
			len = f.count;
			p = 1;
		} else {
			p = listener_poll(l, &idx, &len, &tx_done);
		}
		if (p < 0)
			return p;
		if (p == 1) {
			hs_deadline = deadline_of(l->o.timeout_ms);
			return handle_hello(l, idx, len, hs_deadline, out);
		}
		if (tx_done)
			continue;
		uint64_t now = wave_now_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		/* Short slices: with tcp;ofi_rxm a hello arrives over a new
		 * connection that only progress sets up, and the wait object
		 * does not always fire for it. */
		listener_sleep(l, deadline - now < FAB_ACCEPT_SLICE_NS ? deadline - now
								  : FAB_ACCEPT_SLICE_NS);
	}
}

static int fab_listener_fd(const struct wave_chan_listener *base)
{
	const struct fab_listener *l = (const struct fab_listener *)base;

	return l->e.wait_fd >= 0 ? l->e.wait_fd : -ENOTSUP;
}

static void fab_listener_close(struct wave_chan_listener *base)
{
	struct fab_listener *l = (struct fab_listener *)base;

	fab_ep_close(&l->e);
	free(l->pending);
	free(l);
}

static const struct wave_listener_ops fab_listener_ops = {
	.accept = fab_accept,
	.fd = fab_listener_fd,
	.close = fab_listener_close,
};

const struct wave_transport wave_transport_fabric = {
	.scheme = "fabric",
	.open = fab_open,
	.listen = fab_listen,
};
