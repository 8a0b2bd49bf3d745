/* SPDX-License-Identifier: MIT */
/* fabric:// endpoints: opening an RDM endpoint with its completion queue,
 * address vector and buffer arena, and posting its buffers. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <rdma/fi_cm.h>
#include <rdma/fi_endpoint.h>

#include "fabric_impl.h"

static void dom_put(struct fab_dom *d)
{
	if (!d || atomic_fetch_sub(&d->refs, 1) != 1)
		return;
	if (d->domain)
		fi_close(&d->domain->fid);
	if (d->fabric)
		fi_close(&d->fabric->fid);
	free(d);
}

static int dom_open(const struct fi_info *info, struct fab_dom **out)
{
	struct fab_dom *d = calloc(1, sizeof(*d));
	int ret;

	if (!d)
		return -ENOMEM;
	atomic_init(&d->refs, 1);
	d->rx_max = info->rx_attr->size ? info->rx_attr->size : 256;
	d->tx_max = info->tx_attr->size ? info->tx_attr->size : 64;
	if ((ret = fab_err(fi_fabric(info->fabric_attr, &d->fabric, NULL))) < 0 ||
	    (ret = fab_err(fi_domain(d->fabric, (struct fi_info *)info, &d->domain, NULL))) < 0) {
		dom_put(d);
		return ret;
	}
	*out = d;
	return 0;
}

void fab_ep_close(struct fab_ep *e)
{
	if (e->ep)
		fi_close(&e->ep->fid);
	if (e->av)
		fi_close(&e->av->fid);
	if (e->cq)
		fi_close(&e->cq->fid);
	if (e->mr)
		fi_close(&e->mr->fid);
	dom_put(e->dom);
	if (e->info)
		fi_freeinfo(e->info);
	free(e->arena);
	free(e->ctx);
	free(e->tx_free);
	free(e->repost);
	memset(e, 0, sizeof(*e));
	e->wait_fd = -1;
}

int fab_post_rx(struct fab_ep *e, uint32_t i)
{
	ssize_t r = fi_recv(e->ep, rx_buf(e, i), FAB_BUF_SIZE, e->desc, FI_ADDR_UNSPEC, &e->ctx[i]);

	if (r == -FI_EAGAIN) {
		e->repost[e->n_repost++] = i; /* retried by the next progress */
		return 0;
	}
	return fab_err(r);
}

int fab_repost_pending(struct fab_ep *e)
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
static int fab_ep_open(const struct fi_info *info, struct fab_dom *dom, uint32_t want_data,
		       uint32_t ctrl, uint32_t n_tx, struct fab_ep *e)
{
	struct fi_cq_attr cqa = { .format = FI_CQ_FORMAT_MSG, .wait_obj = FI_WAIT_FD };
	struct fi_av_attr ava = { .type = FI_AV_TABLE, .count = 4 };
	int ret;

	memset(e, 0, sizeof(*e));
	e->wait_fd = -1;
	if (dom) {
		atomic_fetch_add(&dom->refs, 1);
		e->dom = dom;
	} else if ((ret = dom_open(info, &e->dom)) < 0) {
		return ret;
	}
	e->fabric = e->dom->fabric;
	e->domain = e->dom->domain;
	if (e->dom->rx_max < 2) {
		ret = -ENOTSUP;
		goto err;
	}
	if (ctrl >= e->dom->rx_max)
		ctrl = (uint32_t)(e->dom->rx_max / 2);
	e->n_data = want_data;
	if ((size_t)e->n_data + ctrl > e->dom->rx_max)
		e->n_data = (uint32_t)(e->dom->rx_max - ctrl);
	e->n_rx = e->n_data + ctrl;
	e->n_tx = n_tx < e->dom->tx_max ? n_tx : (uint32_t)e->dom->tx_max;
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
	/* A receive queue as deep as what we post, not the provider's default
	 * (2048 for tcp;ofi_rxm). The transmit queue keeps its default: the
	 * provider counts control frames (injected) against it too, and a
	 * queue of exactly n_tx made sends fail with -FI_EAGAIN. */
	e->info->rx_attr->size = e->n_rx;
	memset(e->arena, 0, e->arena_len);
	for (uint32_t i = 0; i < e->n_rx + e->n_tx; i++)
		e->ctx[i].idx = i;
	for (uint32_t i = 0; i < e->n_tx; i++)
		e->tx_free[e->n_tx_free++] = e->n_tx - 1 - i;

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
	if (e->name_len > FAB_ADDR_MAX || !fab_peer_addr_ok(e->info->addr_format, e->name,
							 (uint32_t)e->name_len)) {
		ret = -ENOTSUP; /* an address we cannot put in a handshake */
		goto err;
	}
	for (uint32_t i = 0; i < e->n_rx; i++)
		if ((ret = fab_post_rx(e, i)) < 0)
			goto err;
	return 0;
err:
	fab_ep_close(e);
	return ret;
}

/*
 * tcp;ofi_rxm sizes its bounce-buffer pools from environment variables it
 * reads once, when libfabric first loads it, and nothing in fi_info sets
 * them. Left unset, they cost about 70 MiB per endpoint (16 KiB buffers,
 * and the core provider's deep receive queue per connection) for frames of
 * at most FAB_BUF_SIZE bytes; 4 KiB buffers and rxm's documented queue
 * depth bring that to a few MiB. A value the process set itself is left
 * alone (overwrite 0).
 */
static void provider_defaults(void)
{
	_Static_assert(FAB_BUF_SIZE + 256 <= 4096, "a frame fits an rxm buffer");
	setenv("FI_OFI_RXM_BUFFER_SIZE", "4096", 0);
	setenv("FI_OFI_RXM_MSG_RX_SIZE", "128", 0);
}

/* fi_getinfo for RDM endpoints of @a's provider and address format with
 * @caps, bound at @src (NULL: anywhere), into *@list. */
static int get_info(const struct fab_addr *a, const void *src, size_t srclen, uint64_t caps,
		    struct fi_info **list)
{
	struct fi_info *hints = fi_allocinfo();
	int ret;

	if (!hints)
		return -ENOMEM;
	hints->ep_attr->type = FI_EP_RDM;
	hints->caps = caps;
	hints->mode = FI_CONTEXT | FI_CONTEXT2;
	hints->addr_format = a->format;
	hints->domain_attr->mr_mode = FI_MR_LOCAL | FI_MR_VIRT_ADDR | FI_MR_ALLOCATED |
				      FI_MR_PROV_KEY;
	hints->domain_attr->threading = FI_THREAD_COMPLETION; /* see struct fab_dom */
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
	ret = fi_getinfo(FAB_API_VERSION, NULL, NULL, 0, hints, list);
	fi_freeinfo(hints);
	return ret;
}

/*
 * Asks fi_getinfo for RDM endpoints of @a's provider and address format,
 * bound at @src (NULL: anywhere), and opens the first that works: one that
 * can also write remote memory (for mailboxes) when the provider has such.
 */
int fab_open_at(const struct fab_addr *a, const void *src, size_t srclen, uint32_t want_data,
		uint32_t ctrl, uint32_t n_tx, bool rma, struct fab_ep *e)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct fi_info *list = NULL;
	int ret;

	pthread_once(&once, provider_defaults);
	ret = -FI_ENODATA;
	if (rma)
		ret = get_info(a, src, srclen, FI_MSG | FI_RMA | FI_WRITE | FI_REMOTE_WRITE, &list);
	if (ret == -FI_ENODATA)
		ret = get_info(a, src, srclen, FI_MSG, &list);
	if (ret != 0) {
		wave_info("fabric: no provider '%s' for this address: %s",
			  a->prov[0] ? a->prov : "(any)", fi_strerror(-ret));
		return ret == -FI_ENODATA ? -ENOTSUP : fab_err(ret);
	}
	ret = -ENOTSUP;
	for (struct fi_info *i = list; i; i = i->next) {
		if (!(i->tx_attr->msg_order & FI_ORDER_SAS))
			continue;
		ret = fab_ep_open(i, NULL, want_data, ctrl, n_tx, e);
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

/* Takes a free transmit buffer: its index, or -1 when all are in flight. */
int64_t fab_ep_tx_get(struct fab_ep *e)
{
	if (!e->n_tx_free)
		return -1;
	return e->tx_free[--e->n_tx_free];
}

void fab_tx_put(struct fab_ep *e, uint32_t i)
{
	if (e->n_tx_free < e->n_tx)
		e->tx_free[e->n_tx_free++] = i;
}

/* Sends transmit buffer @i (@len bytes) to @dst. Injected (buffer free at
 * once) when it fits and @completion is not asked for. 0, -EAGAIN or an
 * error; the buffer is returned to the pool on every outcome but success
 * with a completion pending. */
int fab_post_send(struct fab_ep *e, uint32_t i, size_t len, fi_addr_t dst, bool completion,
		  bool more)
{
	ssize_t r;

	if (!completion && len <= e->inject) {
		r = fi_inject(e->ep, tx_buf(e, i), len, dst);
		fab_tx_put(e, i);
	} else if (more) {
		struct iovec iov = { .iov_base = tx_buf(e, i), .iov_len = len };
		void *desc = e->desc;
		struct fi_msg m = { .msg_iov = &iov, .desc = &desc, .iov_count = 1,
				    .addr = dst, .context = &e->ctx[e->n_rx + i] };
		r = fi_sendmsg(e->ep, &m, FI_MORE);
		if (r < 0)
			fab_tx_put(e, i);
	} else {
		r = fi_send(e->ep, tx_buf(e, i), len, e->desc, dst, &e->ctx[e->n_rx + i]);
		if (r < 0)
			fab_tx_put(e, i);
	}
	return r == -FI_EAGAIN ? -EAGAIN : fab_err(r);
}

/*
 * Opens an endpoint like @base's (same provider, fabric and domain) bound at
 * @src (NULL: wherever the provider chooses), with buffers as fab_ep_open().
 */
int fab_ep_open_in(const struct fab_ep *base, const void *src, size_t srclen, uint32_t want_data,
		   uint32_t ctrl, uint32_t n_tx, struct fab_ep *e)
{
	struct fi_info *info = fi_dupinfo(base->info);
	int ret;

	if (!info)
		return -ENOMEM;
	free(info->src_addr);
	info->src_addr = NULL;
	info->src_addrlen = 0;
	if (src) {
		if (!(info->src_addr = malloc(srclen))) {
			fi_freeinfo(info);
			return -ENOMEM;
		}
		memcpy(info->src_addr, src, srclen);
		info->src_addrlen = srclen;
	}
	ret = fab_ep_open(info, base->dom, want_data, ctrl, n_tx, e);
	fi_freeinfo(info);
	return ret;
}
