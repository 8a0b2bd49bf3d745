/* SPDX-License-Identifier: MIT */
/* A channel opened on a thread of its own (opener.h). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "../core/core.h"
#include "opener.h"

/* Who frees the opener is decided by one exchange of @state: the thread
 * when the session abandoned it first, else the session. Neither touches
 * it after its exchange unless it is the one to free it (a mutex would be
 * unlocked by the thread after the session may have freed it). */
enum { OPENING, OVER, ABANDONED };

struct opener {
	_Atomic int state;
	int ret;               /* written before OVER */
	struct wave_chan *ch;  /* written before OVER */
	struct wave_chan_opts o;
	char token[WAVE_CHAN_TOKEN_MAX + 1];
	char uri[];
};

static void opener_free(struct opener *op)
{
	explicit_bzero(op->token, sizeof(op->token)); /* a secret */
	free(op);
}

static void *run(void *arg)
{
	struct opener *op = arg;
	sigset_t all;

	/* Signals are the application's threads' business. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	(void)pthread_setname_np(pthread_self(), "wave-connect");
	op->ret = wave_chan_open(op->uri, &op->o, &op->ch);
	/* Release: the session's acquire in opener_take() sees ret and ch. */
	if (atomic_exchange_explicit(&op->state, OVER, memory_order_acq_rel) == ABANDONED) {
		wave_chan_close(op->ch);
		opener_free(op);
	}
	return NULL;
}

int opener_start(const char *uri, const struct wave_chan_opts *o, struct opener **out)
{
	size_t len = strlen(uri) + 1;
	struct opener *op = calloc(1, sizeof(*op) + len);
	pthread_attr_t attr;
	pthread_t thr;
	int ret;

	if (!op)
		return -ENOMEM;
	memcpy(op->uri, uri, len);
	op->o = *o;
	if (o->token) {
		len = strnlen(o->token, sizeof(op->token));
		if (len == sizeof(op->token)) { /* wave_chan_open() would refuse it */
			free(op);
			return -EINVAL;
		}
		memcpy(op->token, o->token, len);
		op->o.token = op->token;
	}
	/* A listener's list, never used to open. */
	op->o.allow_uids = NULL;
	op->o.n_allow_uids = 0;
	atomic_init(&op->state, OPENING);
	if ((ret = pthread_attr_init(&attr)) == 0) {
		ret = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (ret == 0)
			ret = pthread_create(&thr, &attr, run, op);
		pthread_attr_destroy(&attr);
	}
	if (ret != 0) {
		opener_free(op);
		return -ret;
	}
	*out = op;
	return 0;
}

int opener_take(struct opener *op, struct wave_chan **ch, int *ret)
{
	if (atomic_load_explicit(&op->state, memory_order_acquire) != OVER)
		return 0;
	*ch = op->ch;
	*ret = op->ret;
	opener_free(op);
	return 1;
}

void opener_abandon(struct opener *op)
{
	if (op && atomic_exchange_explicit(&op->state, ABANDONED, memory_order_acq_rel) == OVER) {
		wave_chan_close(op->ch);
		opener_free(op);
	}
}
