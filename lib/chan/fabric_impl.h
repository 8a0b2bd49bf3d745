/* SPDX-License-Identifier: MIT */
/*
 * What the fabric:// files share (see fabric_chan.c for how the transport
 * works): the address, endpoint and channel structures, and the functions
 * one file offers the others. Nothing here leaves libwave.
 */
#ifndef WAVE_FABRIC_IMPL_H
#define WAVE_FABRIC_IMPL_H

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <rdma/fabric.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_errno.h>

#include "../core/core.h"
#include "chan_impl.h"
#include "fabric_wire.h"

#define FAB_API_VERSION FI_VERSION(1, 9)
/* Extra receive buffers for control frames, beyond the data buffers. */
#define FAB_CTRL_BUFS 32u
#define FAB_TX_BUFS 64u
#define FAB_LISTEN_RX 16u
#define FAB_LISTEN_TX 16u
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

/* The protocol version this process speaks (changed by a test hook). */
extern uint16_t fab_proto_major, fab_proto_minor;

/* A libfabric return code as a libwave one: errno values pass through,
 * libfabric's own codes (FI_ERRNO_OFFSET and up) become -EIO. */
static inline int fab_err(ssize_t r)
{
	if (r >= 0)
		return 0;
	if (-r < FI_ERRNO_OFFSET)
		return (int)r;
	return -EIO;
}

/* ---- addresses (fabric_addr.c) --------------------------------------------- */

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

/* ---- endpoints (fabric_ep.c) ----------------------------------------------- */

struct fab_ctx {
	struct fi_context2 fc; /* first: providers with FI_CONTEXT mode use it */
	uint32_t idx;          /* rx buffers 0..n_rx-1, then tx buffers */
};

/*
 * A fabric and domain, shared by a listener and the channels it accepts (a
 * domain costs the provider's per-domain state once, not per host) and
 * closed with the last of them. Endpoints of one domain may be used from
 * different threads: each is serialized by its channel's lock, which
 * FI_THREAD_COMPLETION allows.
 */
struct fab_dom {
	struct fid_fabric *fabric;
	struct fid_domain *domain;
	size_t rx_max, tx_max; /* the provider's queue sizes */
	_Atomic unsigned refs;
};

struct fab_ep {
	struct fi_info *info;
	struct fab_dom *dom;
	struct fid_fabric *fabric; /* dom's */
	struct fid_domain *domain; /* dom's */
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

static inline uint8_t *rx_buf(const struct fab_ep *e, uint32_t i)
{
	return e->arena + (size_t)i * FAB_BUF_SIZE;
}

static inline uint8_t *tx_buf(const struct fab_ep *e, uint32_t i)
{
	return e->arena + (size_t)(e->n_rx + i) * FAB_BUF_SIZE;
}

/* ---- the channel (fabric_chan.c) ------------------------------------------- */

struct fab_frame {
	uint32_t idx;   /* receive buffer */
	uint32_t count; /* messages in it */
};

/* Mailboxes (fabric_mbox.c); n == 0: none. */
struct fab_mbox {
	uint32_t n;
	bool rma;                    /* the agent writes the host's slots itself */
	struct fab_mbox_slot *slots; /* host: the mailboxes; agent, rma: write sources */
	struct fid_mr *mr;           /* host: slots, remote write; agent: slots, FI_MR_LOCAL */
	void *desc;                  /* agent: the write sources' descriptor */
	uint64_t addr, key;          /* agent, rma: slot 0 in the host's memory */
	uint64_t *count;             /* host: puts taken; agent: puts made */
	uint32_t *peer_taken;        /* agent: puts the host said it took (low bits) */
	struct fab_ctx *wctx;        /* agent, rma: one per mailbox, its write's context */
	uint8_t *writing;            /* agent, rma: that write is not complete yet */
	uint32_t *dirty, n_dirty;    /* host: mailboxes taken from, not told yet */
	uint8_t *is_dirty;
	bool told_sleep;             /* host: our last frame said we sleep */
	bool peer_sleeps;            /* agent: the host's last frame said it sleeps */
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
	bool no_stamp;                   /* WAVE_CHAN_F_NO_STAMP */

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
	struct fab_mbox mb;
};

#define FAB(ch) ((struct fab_chan *)(ch))

/* addresses */
int fab_parse_uri(const char *rest, struct fab_addr *a);
bool fab_addr_is_wildcard(const struct fab_addr *a);
int fab_local_addr_towards(const struct sockaddr *dst, socklen_t dlen, struct fab_addr *out);
int fab_check_local_addr(const struct fab_addr *a);
bool fab_peer_addr_ok(uint32_t format, const uint8_t *addr, uint32_t len);
uint64_t fab_nonce(void);
void fab_shm_src(struct fab_addr *src);

/* endpoints */
void fab_ep_close(struct fab_ep *e);
int fab_post_rx(struct fab_ep *e, uint32_t i);
int fab_repost_pending(struct fab_ep *e);
int fab_open_at(const struct fab_addr *a, const void *src, size_t srclen, uint32_t want_data,
		uint32_t ctrl, uint32_t n_tx, bool rma, struct fab_ep *e);
int fab_ep_open_in(const struct fab_ep *base, const void *src, size_t srclen, uint32_t want_data,
		   uint32_t ctrl, uint32_t n_tx, struct fab_ep *e);
int64_t fab_ep_tx_get(struct fab_ep *e);
void fab_tx_put(struct fab_ep *e, uint32_t i);
int fab_post_send(struct fab_ep *e, uint32_t i, size_t len, fi_addr_t dst, bool completion,
		  bool more);

static inline int64_t tx_get(struct fab_chan *c)
{
	return fab_ep_tx_get(&c->e);
}

/* the channel */
int fab_chan_new(enum wave_role role, const struct wave_chan_opts *o, uint32_t my_slots,
		 struct fab_ep *e, struct fab_chan **out);
void fab_chan_destroy(struct fab_chan *c);
void fab_chan_drain(struct fab_chan *c);
void fab_chan_progress(struct fab_chan *c);
void fab_sleep_on_cq(struct fab_chan *c, uint64_t ns);
int fab_chan_fail(struct fab_chan *c, int err, const char *what);
void fab_peer_lost(struct fab_chan *c, const char *why);
/* Sends a control frame: header (@kind, @count, @flags) and @len bytes of
 * @body. True when it went out. */
bool fab_send_ctrl(struct fab_chan *c, uint8_t kind, uint16_t count, uint32_t flags,
		   const void *body, size_t len);

/* mailboxes (fabric_mbox.c); the channel's lock is held unless said */
int fab_mbox_host_init(struct fab_chan *c, uint32_t n, struct fab_mbox_offer *offer);
/* @a NULL: the agent answered without mailboxes (1.0). */
int fab_mbox_host_accepted(struct fab_chan *c, const struct fab_mbox_accept *a);
int fab_mbox_agent_init(struct fab_chan *c, const struct fab_mbox_offer *o,
			struct fab_mbox_accept *acc);
void fab_mbox_free(struct fab_chan *c);
int fab_mbox_put(struct wave_chan *ch, unsigned i, const struct wave_msg *msg); /* locks */
int fab_mbox_take(struct wave_chan *ch, unsigned i, struct wave_msg *msg);      /* locks */
int fab_mbox_frame(struct fab_chan *c, const struct fab_hdr *h, const uint8_t *body, size_t len);
/* A completion of context @ctx: the mailbox whose write completed, or -1
 * when @ctx is not a mailbox write's. */
int fab_mbox_completion(struct fab_chan *c, const void *ctx);
void fab_mbox_service(struct fab_chan *c);
void fab_mbox_peer_flags(struct fab_chan *c, uint32_t flags);
void fab_mbox_before_sleep(struct fab_chan *c);

/* host side (fabric_connect.c) */
int fab_handle_reply(struct fab_chan *c, const uint8_t *buf, size_t len);
int fab_open(const char *rest, const struct wave_chan_opts *o, struct wave_chan **out);

/* agent side (fabric_listen.c) */
int fab_listen(const char *rest, const struct wave_chan_opts *o,
	       struct wave_chan_listener **out);

/* The send stamp of what goes out now: the last progress's clock reading,
 * or 0 on an end opened with WAVE_CHAN_F_NO_STAMP. */
static inline uint64_t fab_stamp(const struct fab_chan *c)
{
	return c->no_stamp ? 0 : c->now;
}

#endif /* WAVE_FABRIC_IMPL_H */
