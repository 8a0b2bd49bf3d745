/* SPDX-License-Identifier: MIT */
/*
 * The agent runtime's loop (include/wave/agent.h): listeners, hosts,
 * sleeping when idle, stop and reload requests from other threads.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../core/config_impl.h"
#include "../core/core.h"
#include "agent_impl.h"

#define MS (1000000ull)

static int agent_listen(struct wave_agent *a, struct wave_error *err)
{
	struct wave_chan_opts o;
	struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT };
	int ret;

	wave_config_chan_opts(a->cfg, &o);
	o.role = WAVE_ROLE_AGENT;
	/* How long a connecting host may take over its side of the channel
	 * rendezvous. No transport's accept waits for it (a stalled newcomer
	 * holds a pending slot, not the loop): this is the slot's deadline. */
	o.timeout_ms = (int)(a->cfg->heartbeat_timeout_ms / 2);
	a->lis = calloc(a->cfg->n_listen, sizeof(*a->lis));
	if (!a->lis)
		return -ENOMEM;
	for (size_t i = 0; i < a->cfg->n_listen; i++) {
		ret = wave_chan_listen(a->cfg->listen[i], &o, &a->lis[i]);
		if (ret < 0) {
			wave_error_set(err, ret, a->cfg->listen[i], 0, 0, "cannot listen: %s",
				       wave_strerror(ret));
			return ret;
		}
		a->n_lis++;
		ev.data.u64 = i + 1;
		if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, wave_chan_listener_fd(a->lis[i]), &ev) < 0)
			return -errno;
	}
	return 0;
}

static int agent_fds(struct wave_agent *a)
{
	struct epoll_event ev = { .events = EPOLLIN };

	a->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (a->epfd < 0)
		return -errno;
	a->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (a->stopfd < 0)
		return -errno;
	return epoll_ctl(a->epfd, EPOLL_CTL_ADD, a->stopfd, &ev) < 0 ? -errno : 0;
}

static int agent_init(struct wave_agent *a, const struct wave_config *cfg,
		      struct wave_error *err)
{
	int ret;

	a->cfg = cfg;
	a->recording = cfg->record.path && cfg->record.enabled;
	a->epfd = a->stopfd = -1;
	a->stats.fd = -1;
	wave_stamp_init(&a->clk, true);
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->reloaded, NULL);
	pthread_cond_init(&a->turn, NULL);
	pthread_mutex_init(&a->reload_mu, NULL);
	if (cfg->n_listen == 0) {
		wave_error_set(err, -EINVAL, cfg->source ? cfg->source : "", 0, 0,
			       "no listen address");
		return -EINVAL;
	}
	for (unsigned d = 0; d < WAVE_DOMAIN_COUNT; d++) {
		if (!cfg->domains[d].enabled)
			continue;
		ret = agent_load_plugin(cfg, d, &a->dom[d].plugin, err);
		if (ret < 0)
			return ret;
		a->dom[d].dcfg = &cfg->domains[d];
	}
	ret = agent_fds(a);
	if (ret < 0) {
		wave_error_set(err, ret, "", 0, 0, "%s", wave_strerror(ret));
		return ret;
	}
	/* A recording that could never write is a configuration error, told
	 * now rather than as a warning per host later. */
	if (cfg->record.path && access(cfg->record.path, W_OK | X_OK) < 0) {
		ret = -errno;
		return wave_error_set(err, ret, cfg->source ? cfg->source : "", 0, 0,
				      "record.path %s: %s", cfg->record.path, wave_strerror(ret));
	}
	ret = agent_listen(a, err);
	return ret < 0 ? ret : agent_statsock_open(a, err);
}

WAVE_API int wave_agent_create(const struct wave_config *cfg, struct wave_agent **out,
			       struct wave_error *err)
{
	struct wave_agent *a;
	int ret;

	wave_error_clear(err);
	if (!cfg || !out || cfg->size != sizeof(*cfg))
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	ret = agent_init(a, cfg, err);
	if (ret < 0) {
		wave_agent_destroy(a);
		return ret;
	}
	*out = a;
	return 0;
}

WAVE_API void wave_agent_destroy(struct wave_agent *a)
{
	if (!a)
		return;
	while (a->n_hosts)
		agent_host_remove(a, a->n_hosts - 1, "agent destroyed");
	free(a->hosts);
	for (size_t i = 0; i < a->n_lis; i++)
		wave_chan_listener_close(a->lis[i]);
	free(a->lis);
	agent_statsock_close(a);
	for (unsigned d = 0; d < WAVE_DOMAIN_COUNT; d++)
		wave_plugin_unload(a->dom[d].plugin);
	if (a->epfd >= 0)
		close(a->epfd);
	if (a->stopfd >= 0)
		close(a->stopfd);
	pthread_cond_destroy(&a->reloaded);
	pthread_cond_destroy(&a->turn);
	pthread_mutex_destroy(&a->reload_mu);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

void agent_busy_count(struct wave_agent *a, bool on)
{
	atomic_store_explicit(&a->busy_on, on, memory_order_relaxed);
}

void agent_busy_read(struct wave_agent *a, uint64_t *ns, uint64_t *msgs, uint64_t *bursts,
		     uint64_t *dropped)
{
	*dropped = atomic_load_explicit(&a->busy_dropped, memory_order_relaxed);
	*bursts = atomic_load_explicit(&a->busy_bursts, memory_order_relaxed);
	*ns = atomic_load_explicit(&a->busy_ns, memory_order_relaxed);
	*msgs = atomic_load_explicit(&a->busy_msgs, memory_order_relaxed);
}

void agent_lock_ext(struct wave_agent *a)
{
	atomic_fetch_add(&a->waiters, 1);
	pthread_mutex_lock(&a->lock);
}

void agent_unlock_ext(struct wave_agent *a)
{
	atomic_fetch_sub(&a->waiters, 1);
	pthread_cond_broadcast(&a->turn);
	pthread_mutex_unlock(&a->lock);
}

/* A busy loop would keep the lock for ever: step aside for waiters.
 * Return: whether it did (and time went by). */
static bool let_waiters_in(struct wave_agent *a)
{
	bool waited = false;

	while (atomic_load(&a->waiters) > 0) {
		pthread_cond_wait(&a->turn, &a->lock);
		waited = true;
	}
	return waited;
}

WAVE_API int wave_agent_stop(struct wave_agent *a)
{
	uint64_t one = 1;

	if (!a)
		return -EINVAL;
	atomic_store(&a->stop, 1);
	/* A full eventfd counter is already a pending wake-up. */
	if (write(a->stopfd, &one, sizeof(one)) < 0)
		return 0;
	return 0;
}

static void drain_stopfd(struct wave_agent *a)
{
	uint64_t v;

	if (read(a->stopfd, &v, sizeof(v)) < 0)
		return; /* nothing pending: EAGAIN */
}

/* How long a listener whose fd woke the loop for nothing stays out of the
 * epoll set. A listener's fd can stay readable with nothing to accept:
 * libfabric's tcp;ofi_rxm leaves a socket that a peer closed before its
 * hello readable for good, and a level-triggered fd would keep the idle
 * agent spinning on a whole CPU. The loop still looks for hosts after every
 * sleep, so a host that connects meanwhile waits this long at most. */
#define AGENT_LIS_REARM_NS (10 * MS)

static void arm_listeners(struct wave_agent *a)
{
	for (size_t i = 0; i < a->n_lis; i++) {
		struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.u64 = i + 1 };

		if (epoll_ctl(a->epfd, EPOLL_CTL_MOD, wave_chan_listener_fd(a->lis[i]), &ev) < 0)
			wave_warn("agent: cannot watch %s: %s", a->cfg->listen[i],
				  wave_strerror(-errno));
	}
	a->lis_woke = false;
	a->lis_rearm_at = 0;
}

static void accept_hosts(struct wave_agent *a, uint64_t now)
{
	struct wave_chan *ch;
	unsigned found = 0;
	int ret;

	for (size_t i = 0; i < a->n_lis; i++) {
		for (;;) {
			ret = wave_chan_accept(a->lis[i], 0, &ch);
			if (ret < 0)
				break; /* -ETIMEDOUT: nobody waiting; refusals are logged */
			found++;
			if (agent_host_add(a, ch) < 0) {
				wave_warn("agent: no memory for a new host");
				wave_chan_close(ch);
			}
		}
	}
	if (a->lis_woke && !a->lis_rearm_at)
		a->lis_rearm_at = found ? now : now + AGENT_LIS_REARM_NS;
	if (a->lis_rearm_at && now >= a->lis_rearm_at)
		arm_listeners(a);
}

/* Services every host once; a host that sent something moves @now on
 * (agent_host_service()). Return: messages received. */
static int service(struct wave_agent *a, uint64_t *now)
{
	int total = 0, n;

	for (size_t i = 0; i < a->n_hosts;) {
		n = agent_host_service(a, i, now);
		if (n < 0)
			continue; /* removed: another host took index i */
		total += n;
		if (agent_host_timers(a, i, *now) < 0)
			continue;
		i++;
	}
	return total;
}

/* Return: whether a reload was applied (and time went by). */
static bool take_reload(struct wave_agent *a)
{
	if (!a->reload_cfg)
		return false;
	a->reload_ret = agent_apply_reload(a, a->reload_cfg, a->reload_err);
	a->reload_cfg = NULL;
	a->reload_done = true;
	pthread_cond_broadcast(&a->reloaded);
	return true;
}

/* Arms every channel's doorbell. Return: the epoll timeout in ms, or 0
 * when something is already pending and sleeping would miss it. */
static int sleep_timeout(struct wave_agent *a, uint64_t now)
{
	uint64_t due = now + 1000 * MS; /* wake at least once a second */
	bool unpollable = false;

	for (size_t i = 0; i < a->n_hosts; i++) {
		struct agent_host *h = a->hosts[i];
		uint64_t t = agent_host_next_due(h);

		if (t < due)
			due = t;
		/* No doorbell says the host made room: retry every ms. */
		if (h->fd < 0 || h->ob_n)
			unpollable = true;
		else if (wave_chan_trywait(h->ch) != 0)
			return 0;
	}
	if (a->lis_rearm_at && a->lis_rearm_at < due)
		due = a->lis_rearm_at;
	if (due <= now)
		return 0;
	if (unpollable)
		return 1; /* a channel without an fd is polled every ms */
	return (int)((due - now + MS - 1) / MS);
}

static void idle_sleep(struct wave_agent *a, uint64_t now)
{
	struct epoll_event evs[16];
	int timeout = sleep_timeout(a, now), n;

	if (timeout == 0)
		return;
	pthread_mutex_unlock(&a->lock);
	n = epoll_wait(a->epfd, evs, WAVE_ARRAY_SIZE(evs), timeout);
	if (n < 0 && errno != EINTR)
		wave_warn("agent: epoll_wait: %s", wave_strerror(-errno));
	pthread_mutex_lock(&a->lock);
	for (int i = 0; i < n; i++)
		if (evs[i].data.u64 >= 1 && evs[i].data.u64 <= a->n_lis)
			a->lis_woke = true;
}

static void say_goodbye(struct wave_agent *a)
{
	for (size_t i = 0; i < a->n_hosts; i++)
		agent_host_bye(a->hosts[i]);
	while (a->n_hosts)
		agent_host_remove(a, a->n_hosts - 1, "agent stopping");
}

/* Turns without traffic between two readings of the clock: a reading
 * costs more than a turn that finds nothing, and timers are milliseconds. */
#define IDLE_TURNS_PER_CLOCK 8u

WAVE_API int wave_agent_run(struct wave_agent *a)
{
	uint64_t now, active_ns, next_accept = 0;
	unsigned idle_turns = 0;
	bool waited;

	if (!a)
		return -EINVAL;
	pthread_mutex_lock(&a->lock);
	a->running = true;
	now = active_ns = wave_stamp_now(&a->clk);
	while (!atomic_load(&a->stop)) {
		/* The clock is read once per turn at most: by a host whose
		 * messages were handled (after its plugin ran), else every
		 * few idle turns, and after anything that may have taken time. */
		waited = let_waiters_in(a);
		if (take_reload(a) || waited)
			now = wave_stamp_now(&a->clk);
		/* Looking for new hosts (and stats readers) costs a system
		 * call: not on every turn of a busy loop, only every
		 * millisecond or after a sleep. */
		if (now >= next_accept || (a->lis_rearm_at && now >= a->lis_rearm_at)) {
			accept_hosts(a, now);
			agent_statsock_serve(a, now);
			now = wave_stamp_now(&a->clk);
			next_accept = now + MS;
		}
		if (service(a, &now) > 0) {
			active_ns = now;
			idle_turns = 0;
		} else if (++idle_turns % IDLE_TURNS_PER_CLOCK == 0) {
			now = wave_stamp_now(&a->clk);
		}
		/* Poll while traffic flows; sleep once it has stopped for spin_ns. */
		if (now - active_ns >= a->cfg->spin_ns) {
			idle_sleep(a, now);
			drain_stopfd(a);
			now = wave_stamp_now(&a->clk);
			next_accept = 0;
		}
	}
	say_goodbye(a);
	take_reload(a);
	a->running = false;
	pthread_cond_broadcast(&a->reloaded);
	pthread_mutex_unlock(&a->lock);
	return 0;
}

static int reload_locked(struct wave_agent *a, const struct wave_config *cfg,
			 struct wave_error *err);

WAVE_API int wave_agent_reload(struct wave_agent *a, const struct wave_config *cfg,
			       struct wave_error *err)
{
	int ret;

	wave_error_clear(err);
	if (!a || !cfg || cfg->size != sizeof(*cfg))
		return -EINVAL;
	pthread_mutex_lock(&a->reload_mu);
	ret = reload_locked(a, cfg, err);
	pthread_mutex_unlock(&a->reload_mu);
	return ret;
}

static int reload_locked(struct wave_agent *a, const struct wave_config *cfg,
			 struct wave_error *err)
{
	uint64_t one = 1;
	int ret;

	agent_lock_ext(a);
	if (!a->running) {
		ret = agent_apply_reload(a, cfg, err);
		agent_unlock_ext(a);
		return ret;
	}
	a->reload_cfg = cfg;
	a->reload_err = err;
	a->reload_done = false;
	if (write(a->stopfd, &one, sizeof(one)) < 0)
		wave_dbg("agent: wake-up already pending");
	/* No longer waiting for the lock but for the loop to apply it. */
	atomic_fetch_sub(&a->waiters, 1);
	pthread_cond_broadcast(&a->turn);
	while (!a->reload_done && a->running)
		pthread_cond_wait(&a->reloaded, &a->lock);
	ret = a->reload_done ? a->reload_ret : agent_apply_reload(a, cfg, err);
	a->reload_cfg = NULL;
	pthread_mutex_unlock(&a->lock);
	return ret;
}
