/* SPDX-License-Identifier: MIT */
/* wave-agentd under systemd (agentd_systemd.h), through libsystemd. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "agentd_systemd.h"

struct agentd_watchdog {
	struct wave_agent *a;
	const atomic_bool *serving;
	uint64_t period_us;
	pthread_t thr;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* CLOCK_MONOTONIC */
	bool stop;
};

void agentd_notify(const char *state)
{
	/* Nothing to do, or nobody to tell, is not an error of the daemon. */
	(void)sd_notify(0, state);
}

void agentd_notify_reloading(void)
{
	struct timespec ts;
	char msg[64];

	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
		 (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000);
	agentd_notify(msg);
}

/* Whether the agent loop turns: it serves, and lets another thread take
 * its lock (a loop stuck in a plugin holds it). */
static bool loop_alive(struct agentd_watchdog *w)
{
	char *json;

	if (!atomic_load(w->serving) || wave_agent_stats_json(w->a, &json) < 0)
		return false;
	free(json);
	return true;
}

static void *watchdog(void *arg)
{
	struct agentd_watchdog *w = arg;
	struct timespec due;

	clock_gettime(CLOCK_MONOTONIC, &due);
	pthread_mutex_lock(&w->mu);
	while (!w->stop) {
		uint64_t ns = (uint64_t)due.tv_nsec + w->period_us / 2 * 1000;

		due.tv_sec += (time_t)(ns / 1000000000u);
		due.tv_nsec = (long)(ns % 1000000000u);
		while (!w->stop && pthread_cond_timedwait(&w->cv, &w->mu, &due) != ETIMEDOUT)
			;
		if (w->stop)
			break;
		pthread_mutex_unlock(&w->mu);
		if (loop_alive(w))
			agentd_notify("WATCHDOG=1");
		pthread_mutex_lock(&w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

int agentd_watchdog_start(struct wave_agent *a, const atomic_bool *serving,
			  struct agentd_watchdog **out)
{
	struct agentd_watchdog *w;
	pthread_condattr_t ca;
	uint64_t usec;
	int ret;

	*out = NULL;
	/* 0 keeps WATCHDOG_USEC for the plugins' processes we never start. */
	if (sd_watchdog_enabled(0, &usec) <= 0)
		return 0;
	if (!(w = calloc(1, sizeof(*w))))
		return -1;
	w->a = a;
	w->serving = serving;
	w->period_us = usec;
	pthread_mutex_init(&w->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cv, &ca);
	pthread_condattr_destroy(&ca);
	ret = pthread_create(&w->thr, NULL, watchdog, w);
	if (ret != 0) {
		fprintf(stderr, "wave-agentd: watchdog: %s\n", strerror(ret));
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->mu);
		free(w);
		return -1;
	}
	*out = w;
	return 0;
}

void agentd_watchdog_stop(struct agentd_watchdog *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thr, NULL);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

static void journal_line(enum wave_log_level level, const char *msg, void *user)
{
	static const char prio[] = { [WAVE_LOG_ERROR] = '3', [WAVE_LOG_WARN] = '4',
				     [WAVE_LOG_INFO] = '6', [WAVE_LOG_DEBUG] = '7' };

	(void)user;
	if (level >= WAVE_LOG_ERROR && level <= WAVE_LOG_DEBUG)
		fprintf(stderr, "<%c>libwave: %s\n", prio[level], msg);
}

void agentd_journal_log(void)
{
	if (getenv("JOURNAL_STREAM"))
		wave_log_set_handler(journal_line, NULL);
}
