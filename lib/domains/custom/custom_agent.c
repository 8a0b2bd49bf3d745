/* SPDX-License-Identifier: MIT */
/*
 * The custom domain in the agent: events of the application's own types go
 * to the plugin's on_event; its decisions are stamped with the key and
 * host sequence number of the event they answer. The latest event of
 * every key is kept, to stamp decisions, to drop a hot-swapped plugin's
 * answers to events already answered, and to replay the state into it.
 * Called with the agent's lock held, from the agent loop.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <wave/host.h>
#include <wave/plugin.h>
#include <wave/plugin_custom.h>
#include <wave/plugin_loader.h>

#include "../../core/core.h"
#include "../../decision/domain.h"
#include "../../plugin/plugin_impl.h"
#include "custom_impl.h"

struct custom_agent {
	struct u64map keys;      /* struct custom_key: the latest event per key */
	uint64_t last_seq;       /* latest host sequence number received */
	struct custom_key *cur_e;  /* the entry of the event being handled */
	struct custom_key *answered; /* what the last prepared decision answered */
	bool replaying;          /* decisions for answered events are dropped */
	uint64_t replay_dropped;
};

/* ---- the plugin's side ------------------------------------------------------ */

/* The smallest custom ops table this libwave can call: up to on_event. */
#define CUSTOM_OPS_MIN_SIZE                                                    \
	(offsetof(struct wave_custom_ops, on_event) + sizeof(((struct wave_custom_ops *)0)->on_event))

static int check_ops(const struct wave_plugin_desc *d, const char *src, struct wave_error *err)
{
	const struct wave_custom_ops *ops = d->ops;

	if (ops->size < CUSTOM_OPS_MIN_SIZE)
		return wave_error_set(err, -WAVE_EPLUGIN, src, 0, 0,
				      "custom ops table is %zu bytes, at least %zu are needed",
				      ops->size, (size_t)CUSTOM_OPS_MIN_SIZE);
	if (!WAVE_OPS_HAS(ops, struct wave_custom_ops, on_event))
		return wave_error_set(err, -WAVE_EPLUGIN, src, 0, 0,
				      "missing op on_event (required for custom plugins)");
	return 0;
}

static const struct wave_custom_ops *custom_ops(const struct wave_plugin_ctx *ctx)
{
	return plugin_ops(ctx, WAVE_DOMAIN_CUSTOM);
}

static bool has_tick(const struct wave_plugin_desc *d)
{
	return WAVE_OPS_HAS((const struct wave_custom_ops *)d->ops, struct wave_custom_ops, on_tick);
}

static void tick(struct wave_plugin_ctx *ctx, uint64_t now_ns)
{
	custom_ops(ctx)->on_tick(ctx, now_ns);
}

WAVE_API int wave_plugin_ctx_event(struct wave_plugin_ctx *ctx, const struct wave_msg *ev)
{
	const struct wave_custom_ops *ops;
	int ret;

	if (!ctx || !ev || ev->type < WAVE_MSG_APP_FIRST || !(ops = custom_ops(ctx)))
		return -EINVAL;
	wave_plugin_ctr_add(ctx, CTR_EVENTS, 1);
	/* The loader refused tables without on_event. */
	ret = ops->on_event(ctx, ev);
	if (ret < 0) {
		wave_plugin_ctr_add(ctx, CTR_EVENT_ERRORS, 1);
		wave_dbg("plugin %s: event type 0x%04x failed: %s", ctx->plugin->desc->name,
			 ev->type, wave_strerror(ret));
	}
	return ret;
}

/* ---- a host's events ------------------------------------------------------- */

static int welcome(struct dom_host *dh)
{
	struct custom_agent *c = calloc(1, sizeof(*c));
	struct wave_error err;

	if (!c)
		return -1;
	if (custom_keys_init(&c->keys) < 0) {
		free(c);
		return -1;
	}
	dh->state = c;
	if (dh->start(dh, NULL, &err) < 0) {
		wave_warn("agent: host %llu: cannot start its custom plugin: %s",
			  (unsigned long long)dh->host_id, err.text);
		return -1;
	}
	return 0;
}

static int on_event(struct dom_host *dh, const struct wave_msg *m)
{
	struct custom_agent *c = dh->state;
	uint64_t seq = WAVE_CUSTOM_SEQ(m);
	struct custom_key *e;
	int ret;

	/* The domain was dropped by a reload, or a replayed sequence number. */
	if (!dh->inst.ctx || seq <= c->last_seq) {
		dh->inst.errors++;
		return 0;
	}
	/* A host of this libwave refuses a key past the bound itself: one
	 * that sends it is not one, and would make this table grow without
	 * end. */
	if ((ret = custom_key_get(&c->keys, WAVE_CUSTOM_KEY(m), &e)) < 0) {
		wave_warn("agent: host %llu: custom event for key %llu: %s",
			  (unsigned long long)dh->host_id,
			  (unsigned long long)WAVE_CUSTOM_KEY(m),
			  ret == -ENOSPC ? "more keys than WAVE_HOST_MAX_KEYS" : wave_strerror(ret));
		return -1;
	}
	e->ev = *m;
	e->seq = seq;
	e->pending = true;
	c->last_seq = seq;
	dh->inst.events_in++;
	dh->cur_ev = m;
	c->cur_e = e; /* the plugin cannot add keys: @e stays where it is */
	if (wave_plugin_ctx_event(dh->inst.ctx, m) < 0)
		dh->inst.errors++;
	dh->cur_ev = NULL;
	c->cur_e = NULL;
	return 0;
}

/* ---- its decisions ----------------------------------------------------------- */

/* Stamps @m with the key and sequence number it was based on. */
static void stamp(const struct dom_host *dh, const struct custom_agent *c, struct wave_msg *m)
{
	const struct wave_msg *ev = dh->cur_ev;

	if (WAVE_CUSTOM_SEQ(m) != 0)
		return; /* the plugin said what it was based on */
	if (ev && (WAVE_CUSTOM_KEY(m) == 0 || WAVE_CUSTOM_KEY(m) == WAVE_CUSTOM_KEY(ev))) {
		WAVE_CUSTOM_KEY(m) = WAVE_CUSTOM_KEY(ev);
		WAVE_CUSTOM_SEQ(m) = WAVE_CUSTOM_SEQ(ev);
	} else {
		WAVE_CUSTOM_SEQ(m) = c->last_seq;
	}
}

/* During a replay, a decision for an event the old instance answered would
 * be a duplicate: the host would refuse it. */
static bool replay_drop(const struct custom_agent *c, const struct wave_msg *m)
{
	struct custom_key *e;

	if (!c->replaying)
		return false; /* the common case: no lookup */
	e = u64map_find(&c->keys, WAVE_CUSTOM_KEY(m));
	return e && !e->pending && WAVE_CUSTOM_SEQ(m) <= e->seq;
}

static enum dom_emit prepare(struct dom_host *dh, struct wave_msg *m)
{
	struct custom_agent *c = dh->state;
	struct custom_key *e = c->cur_e;

	stamp(dh, c, m);
	c->answered = NULL;
	if (replay_drop(c, m)) {
		c->replay_dropped++;
		return DOM_EMIT_DROP;
	}
	/* The runtime marked @m with the send stamp of the event being
	 * handled: it keeps the mark only if it answers that event (which
	 * spares sent() a lookup). */
	if (e && e->pending && WAVE_CUSTOM_KEY(m) == e->key && WAVE_CUSTOM_SEQ(m) >= e->seq) {
		c->answered = e;
		e->pending = false;
	} else {
		m->tstamp = 0;
	}
	return DOM_EMIT_BATCH;
}

static void unprepare(struct dom_host *dh, const struct wave_msg *m)
{
	struct custom_agent *c = dh->state;

	(void)m;
	if (c->answered)
		c->answered->pending = true; /* not sent after all */
	c->answered = NULL;
}

/* After @m, unmarked by prepare(), was sent: its event (if any) is
 * answered. */
static void sent(struct dom_host *dh, const struct wave_msg *m, uint64_t now)
{
	struct custom_agent *c = dh->state;
	struct custom_key *e = u64map_find(&c->keys, WAVE_CUSTOM_KEY(m));

	if (e && e->pending && WAVE_CUSTOM_SEQ(m) >= e->seq) {
		e->pending = false;
		agent_lat_since(&dh->inst, now, e->ev.tstamp);
	}
}

/* ---- hot swap, statistics, end --------------------------------------------- */

static int by_seq(const void *x, const void *y)
{
	const struct custom_key *a = *(const struct custom_key *const *)x;
	const struct custom_key *b = *(const struct custom_key *const *)y;

	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* The latest event of every key, oldest first, into the new instance. */
static void replay(struct dom_host *dh)
{
	struct custom_agent *c = dh->state;
	struct custom_key **order;
	size_t n = 0;

	if (!c || !dh->inst.ctx)
		return;
	order = calloc(u64map_count(&c->keys) + 1, sizeof(*order));
	if (!order) {
		wave_warn("agent: host %llu: no memory to replay its state",
			  (unsigned long long)dh->host_id);
		return;
	}
	if (c->keys.zero)
		order[n++] = (struct custom_key *)c->keys.zero;
	for (size_t i = 0; i <= c->keys.mask; i++)
		if (u64map_key_at(&c->keys, i))
			order[n++] = u64map_at(&c->keys, i);
	qsort(order, n, sizeof(*order), by_seq);
	c->replaying = true;
	for (size_t i = 0; i < n; i++) {
		dh->cur_ev = &order[i]->ev;
		if (wave_plugin_ctx_event(dh->inst.ctx, &order[i]->ev) < 0)
			dh->inst.errors++;
	}
	dh->cur_ev = NULL;
	c->replaying = false;
	free(order);
}

static unsigned counters(const struct dom_host *dh, const char **names, uint64_t *values,
			 unsigned max)
{
	const struct custom_agent *c = dh->state;

	if (!c || max < 2)
		return 0;
	names[0] = "last_seq";
	values[0] = c->last_seq;
	names[1] = "replay_dropped";
	values[1] = c->replay_dropped;
	return 2;
}

static void fini(struct dom_host *dh)
{
	struct custom_agent *c = dh->state;

	if (!c)
		return;
	u64map_fini(&c->keys);
	free(c);
	dh->state = NULL;
}

const struct domain_desc custom_domain = {
	.id = WAVE_DOMAIN_CUSTOM,
	.first = WAVE_MSG_APP_FIRST,
	.last = WAVE_MSG_APP_LAST,
	.abi_minor = 0,
	.check_ops = check_ops,
	.has_tick = has_tick,
	.tick = tick,
	.welcome = welcome,
	.msg = on_event,
	.prepare = prepare,
	.unprepare = unprepare,
	.sent = sent,
	.replay = replay,
	.counters = counters,
	.fini = fini,
};
