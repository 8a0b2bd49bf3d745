/* SPDX-License-Identifier: MIT */
/*
 * The transport-independent half of wave_chan_*: argument checks, URI
 * dispatch, statistics. Transports see only valid arguments.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../core/core.h"
#include "chan_impl.h"

static const struct wave_transport *const transports[] = {
	&wave_transport_shm,
	&wave_transport_file,
	&wave_transport_fabric,
};

WAVE_API int wave_chan_opts_init(struct wave_chan_opts *o)
{
	if (!o)
		return -EINVAL;
	memset(o, 0, sizeof(*o));
	o->size = sizeof(*o);
	o->role = WAVE_ROLE_HOST;
	o->host_to_agent_slots = 1024;
	o->agent_to_host_slots = 1024;
	o->numa_node = WAVE_NUMA_LOCAL;
	o->spin_ns = 20000;
	o->timeout_ms = 5000;
	o->max_slots = WAVE_CHAN_MAX_SLOTS;
	o->disconnect_timeout_ms = 500;
	return 0;
}

static bool slots_ok(uint32_t n)
{
	return n >= WAVE_CHAN_MIN_SLOTS && n <= WAVE_CHAN_MAX_SLOTS && (n & (n - 1)) == 0;
}

int wave_chan_opts_resolve(const struct wave_chan_opts *in, struct wave_chan_opts *out)
{
	wave_chan_opts_init(out);
	if (!in)
		return 0;
	/* A caller built against an older, smaller struct gets defaults for
	 * the fields it does not know; a larger one than ours is refused. */
	if (in->size < offsetof(struct wave_chan_opts, max_slots) || in->size > sizeof(*out))
		return -EINVAL;
	memcpy(out, in, in->size);
	out->size = sizeof(*out);
	if (out->role != WAVE_ROLE_HOST && out->role != WAVE_ROLE_AGENT)
		return -EINVAL;
	if (out->flags &
	    ~(WAVE_CHAN_F_CREATE | WAVE_CHAN_F_WC | WAVE_CHAN_F_RMA | WAVE_CHAN_F_NO_STAMP))
		return -EINVAL;
	if (!slots_ok(out->host_to_agent_slots) || !slots_ok(out->agent_to_host_slots))
		return -EINVAL;
	if (out->numa_node < WAVE_NUMA_NONE || out->timeout_ms < -1)
		return -EINVAL;
	if (out->n_allow_uids && !out->allow_uids)
		return -EINVAL;
	if (!slots_ok(out->max_slots))
		return -EINVAL;
	if (out->token && strnlen(out->token, WAVE_CHAN_TOKEN_MAX + 1) > WAVE_CHAN_TOKEN_MAX)
		return -EINVAL;
	if (out->disconnect_timeout_ms <= 0 || out->mailboxes > WAVE_CHAN_MAX_MAILBOXES)
		return -EINVAL;
	return 0;
}

/* Finds the transport for @uri and the text after "scheme://". */
static int lookup(const char *uri, const struct wave_transport **t, const char **rest)
{
	const char *sep;

	if (!uri)
		return -EINVAL;
	sep = strstr(uri, "://");
	if (!sep)
		return -WAVE_EURI;
	for (size_t i = 0; i < WAVE_ARRAY_SIZE(transports); i++) {
		size_t len = strlen(transports[i]->scheme);
		if ((size_t)(sep - uri) == len && strncmp(uri, transports[i]->scheme, len) == 0) {
			*t = transports[i];
			*rest = sep + 3;
			return 0;
		}
	}
	wave_warn("unknown transport in URI '%s'", uri);
	return -WAVE_EURI;
}

/* The transport and complete options for @uri and @opts. */
static int resolve(const char *uri, const struct wave_chan_opts *opts,
		   const struct wave_transport **t, const char **rest, struct wave_chan_opts *o)
{
	int ret = lookup(uri, t, rest);

	return ret < 0 ? ret : wave_chan_opts_resolve(opts, o);
}

WAVE_API int wave_chan_open(const char *uri, const struct wave_chan_opts *opts,
			    struct wave_chan **out)
{
	const struct wave_transport *t;
	struct wave_chan_opts o;
	const char *rest;
	int ret;

	if (!out)
		return -EINVAL;
	if ((ret = resolve(uri, opts, &t, &rest, &o)) < 0)
		return ret;
	return t->open ? t->open(rest, &o, out) : -ENOTSUP;
}

WAVE_API int wave_chan_listen(const char *uri, const struct wave_chan_opts *opts,
			      struct wave_chan_listener **out)
{
	const struct wave_transport *t;
	struct wave_chan_opts o;
	const char *rest;
	int ret;

	if (!out)
		return -EINVAL;
	if ((ret = resolve(uri, opts, &t, &rest, &o)) < 0)
		return ret;
	o.role = WAVE_ROLE_AGENT;
	return t->listen ? t->listen(rest, &o, out) : -ENOTSUP;
}

WAVE_API int wave_chan_accept(struct wave_chan_listener *l, int64_t timeout_ns,
			      struct wave_chan **out)
{
	if (!l || !out)
		return -EINVAL;
	return l->ops->accept(l, timeout_ns, out);
}

WAVE_API int wave_chan_listener_fd(const struct wave_chan_listener *l)
{
	return l ? l->ops->fd(l) : -EINVAL;
}

WAVE_API void wave_chan_listener_close(struct wave_chan_listener *l)
{
	if (l)
		l->ops->close(l);
}

static int check_types(const struct wave_msg *msgs, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (msgs[i].type == 0)
			return -EINVAL;
	return 0;
}

static int send_common(struct wave_chan *ch, const struct wave_msg *msgs, unsigned n,
		       unsigned flags)
{
	int ret;

	if (!ch || !msgs || n == 0 || n > WAVE_CHAN_MAX_SLOTS)
		return -EINVAL;
	if ((ret = check_types(msgs, n)) < 0)
		return ret;
	ret = ch->ops->send(ch, msgs, n, flags);
	if (ret > 0)
		wave_stat_add(&ch->sent, (unsigned)ret);
	if ((ret >= 0 && (unsigned)ret < n) || ret == -EAGAIN)
		wave_stat_add(&ch->send_full, 1);
	return ret;
}

WAVE_API int wave_chan_send_burst(struct wave_chan *ch, const struct wave_msg *msgs, unsigned n)
{
	return send_common(ch, msgs, n, 0);
}

WAVE_API int wave_chan_send_bulk(struct wave_chan *ch, const struct wave_msg *msgs, unsigned n)
{
	return send_common(ch, msgs, n, CHAN_SEND_ALL);
}

WAVE_API int wave_chan_send_quiet(struct wave_chan *ch, const struct wave_msg *msgs, unsigned n)
{
	return send_common(ch, msgs, n, CHAN_SEND_QUIET);
}

WAVE_API int wave_chan_notify(struct wave_chan *ch)
{
	if (!ch)
		return -EINVAL;
	return ch->ops->notify ? ch->ops->notify(ch) : 0;
}

WAVE_API int wave_chan_recv_burst(struct wave_chan *ch, struct wave_msg *msgs, unsigned max)
{
	int ret;

	if (!ch || !msgs || max == 0)
		return -EINVAL;
	ret = ch->ops->recv(ch, msgs, max);
	if (ret > 0)
		wave_stat_add(&ch->received, (unsigned)ret);
	return ret;
}

WAVE_API int wave_chan_wait(struct wave_chan *ch, int64_t timeout_ns)
{
	return ch ? ch->ops->wait(ch, timeout_ns) : -EINVAL;
}

WAVE_API int wave_chan_fd(struct wave_chan *ch)
{
	return ch ? ch->ops->fd(ch) : -EINVAL;
}

WAVE_API int wave_chan_trywait(struct wave_chan *ch)
{
	return ch ? ch->ops->trywait(ch) : -EINVAL;
}

WAVE_API int wave_chan_mailboxes(const struct wave_chan *ch)
{
	return ch ? (int)ch->n_mbox : -EINVAL;
}

WAVE_API int wave_chan_mbox_put(struct wave_chan *ch, unsigned i, const struct wave_msg *msg)
{
	int ret;

	if (!ch || !msg || msg->type == 0 || ch->role != WAVE_ROLE_AGENT)
		return -EINVAL;
	if (!ch->ops->mbox_put)
		return -ENOTSUP;
	if (i >= ch->n_mbox)
		return -EINVAL;
	ret = ch->ops->mbox_put(ch, i, msg);
	if (ret == 0)
		wave_stat_add(&ch->sent, 1);
	else if (ret == -EAGAIN)
		wave_stat_add(&ch->send_full, 1);
	return ret;
}

WAVE_API int wave_chan_mbox_take(struct wave_chan *ch, unsigned i, struct wave_msg *msg)
{
	int ret;

	if (!ch || !msg || ch->role != WAVE_ROLE_HOST)
		return -EINVAL;
	if (!ch->ops->mbox_take)
		return -ENOTSUP;
	if (i >= ch->n_mbox)
		return -EINVAL;
	ret = ch->ops->mbox_take(ch, i, msg);
	if (ret > 0)
		wave_stat_add(&ch->received, 1);
	return ret;
}

WAVE_API int wave_chan_stats(const struct wave_chan *ch, struct wave_chan_stats *st)
{
	if (!ch || !st)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	st->sent = atomic_load_explicit(&ch->sent, memory_order_relaxed);
	st->received = atomic_load_explicit(&ch->received, memory_order_relaxed);
	st->send_full = atomic_load_explicit(&ch->send_full, memory_order_relaxed);
	st->wakeups = atomic_load_explicit(&ch->wakeups, memory_order_relaxed);
	st->sleeps = atomic_load_explicit(&ch->sleeps, memory_order_relaxed);
	return 0;
}

WAVE_API int wave_chan_role(const struct wave_chan *ch)
{
	return ch ? (int)ch->role : -EINVAL;
}

WAVE_API void wave_chan_close(struct wave_chan *ch)
{
	if (ch)
		ch->ops->close(ch);
}
