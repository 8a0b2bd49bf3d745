/* SPDX-License-Identifier: MIT */
/* A channel opened on a thread of its own (opener.h). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* Opener threads not yet over. The process's exit waits for them: an
 * abandoned one may still be inside libfabric, whose destructor would
 * free what it reads. Each open is bounded by its timeout. */
static _Atomic unsigned running;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* No thread crosses a fork: the child has none of the parent's openers. */
static void forget_openers(void)
{
	atomic_store_explicit(&running, 0, memory_order_relaxed);
}

static void atfork_register(void)
{
	(void)pthread_atfork(NULL, NULL, forget_openers);
}

/* Run before the destructors of the libraries libwave depends on. */
__attribute__((destructor)) static void wait_for_openers(void)
{
	const struct timespec ms = { 0, 1000000 };

	while (atomic_load_explicit(&running, memory_order_acquire))
		nanosleep(&ms, NULL);
}

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
	/* Release: what it did comes before the exit's teardown. */
	atomic_fetch_sub_explicit(&running, 1, memory_order_release);
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
	(void)pthread_once(&atfork_once, atfork_register);
	atomic_fetch_add_explicit(&running, 1, memory_order_relaxed);
	if ((ret = pthread_attr_init(&attr)) == 0) {
		ret = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (ret == 0)
			ret = pthread_create(&thr, &attr, run, op);
		pthread_attr_destroy(&attr);
	}
	if (ret != 0) {
		atomic_fetch_sub_explicit(&running, 1, memory_order_relaxed);
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
