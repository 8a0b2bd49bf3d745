/* SPDX-License-Identifier: MIT */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agentd_util.h"
#include "session_util.h"

unsigned cfg_timeout_ms = 5000;

const char *write_config(const char *dir, const char *extra, const char *params)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/agent.json", dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f,
		"{\n"
		"  \"listen\": [\"shm://%s/agent.sock\"],\n"
		"  \"heartbeat\": { \"period_ms\": 50, \"timeout_ms\": %u },\n"
		"  \"plugin_path\": [\"%s\"],\n"
		"  %s\n"
		"  \"domains\": { \"custom\": { \"plugin\": \"least_loaded\", \"tick_us\": 10000,\n"
		"                 \"params\": %s } }\n"
		"}\n",
		dir, cfg_timeout_ms, WAVE_PLUGIN_BUILD_DIR, extra, params);
	ck_assert_int_eq(fclose(f), 0);
	return path;
}

static void *tagent_run(void *arg)
{
	struct tagent *t = arg;

	ck_assert_int_eq(wave_agent_run(t->a), 0);
	return NULL;
}

void tagent_start(struct tagent *t, const char *cfg_path)
{
	struct wave_error err;
	int ret = wave_config_load(cfg_path, &t->cfg, &err);

	ck_assert_msg(ret == 0, "%s", err.text);
	ret = wave_agent_create(t->cfg, &t->a, &err);
	ck_assert_msg(ret == 0, "%s: %s", wave_strerror(ret), err.text);
	ck_assert_int_eq(pthread_create(&t->thr, NULL, tagent_run, t), 0);
}

void tagent_stop(struct tagent *t)
{
	ck_assert_int_eq(wave_agent_stop(t->a), 0);
	ck_assert_int_eq(pthread_join(t->thr, NULL), 0);
	wave_agent_destroy(t->a);
	wave_config_free(t->cfg);
}

static void on_decision(struct wave_host *h, const struct wave_msg *d,
			enum wave_decision_source src, void *user)
{
	struct app *app = user;
	uint64_t key = WAVE_CUSTOM_KEY(d);

	(void)h;
	if (d->type != LL_TYPE(WAVE_LL_ANSWER))
		return; /* hints */
	ck_assert_uint_lt(key, MAX_KEYS);
	app->decisions[key]++;
	app->worker[key] = d->payload.u32[2];
	app->answered++;
	if (src == WAVE_DECISION_AGENT)
		app->agent_decisions++;
	else
		app->fallback_decisions++;
}

static int decide(struct wave_host *h, const struct wave_msg *ev, struct wave_msg *out,
		  void *user)
{
	(void)h;
	(void)user;
	if (ev->type != LL_TYPE(WAVE_LL_ASK))
		return -ENOENT; /* a load report needs no decision */
	out->type = LL_TYPE(WAVE_LL_ANSWER);
	out->payload.u64[0] = ev->payload.u64[0];
	out->payload.u32[2] = 99;
	return 0;
}

static void on_state(struct wave_host *h, enum wave_host_state s, void *user)
{
	struct app *app = user;

	(void)h;
	app->state = s;
	if (s == WAVE_HOST_FALLBACK)
		app->to_fallback++;
	else
		app->to_agent++;
}

static int replay(struct wave_host *h, void *user)
{
	struct app *app = user;
	struct wave_msg m;

	app->replays++;
	if (!app->replay_load)
		return 0;
	memset(&m, 0, sizeof(m));
	m.type = LL_TYPE(WAVE_LL_LOAD);
	m.payload.u32[0] = 0;
	m.payload.u32[1] = 100;
	return wave_host_event(h, &m, app->replay_load, NULL);
}

static const struct wave_host_ops app_ops = {
	.size = sizeof(struct wave_host_ops),
	.on_decision = on_decision,
	.decide = decide,
	.on_state = on_state,
	.replay = replay,
};

void app_opts(struct app *app, struct wave_host_opts *o)
{
	memset(app, 0, sizeof(*app));
	app->state = WAVE_HOST_AGENT;
	ck_assert_int_eq(wave_host_opts_init(o), 0);
	o->ops = &app_ops;
	o->user = app;
	o->heartbeat_period_ms = 50;
	o->heartbeat_timeout_ms = 5000;
}

static void nap_ms(long ms)
{
	struct timespec ts = { 0, ms * 1000000L };

	nanosleep(&ts, NULL);
}

int app_connect(struct app *app, const char *uri, const struct wave_host_opts *o,
		struct wave_error *err, bool retry)
{
	int ret;

	for (;;) {
		ret = wave_host_connect(uri, o, &app->h, err);
		/* Not listening yet: the daemon is still starting. */
		if (!retry || (ret != -ENOENT && ret != -ECONNREFUSED))
			return ret;
		nap_ms(5);
	}
}

static void send_event(struct app *app, const struct wave_msg *m, uint64_t key)
{
	int ret;

	while ((ret = wave_host_event(app->h, m, key, NULL)) == -EAGAIN)
		ck_assert_int_ge(wave_host_poll(app->h, WAVE_MS(1)), 0);
	ck_assert_int_eq(ret, 0);
}

void app_ask(struct app *app, uint64_t key)
{
	struct wave_msg m;

	memset(&m, 0, sizeof(m));
	m.type = LL_TYPE(WAVE_LL_ASK);
	m.payload.u64[0] = key;
	send_event(app, &m, key);
}

void app_load(struct app *app, uint64_t key, uint32_t worker, uint32_t load)
{
	struct wave_msg m;

	memset(&m, 0, sizeof(m));
	m.type = LL_TYPE(WAVE_LL_LOAD);
	m.payload.u32[0] = worker;
	m.payload.u32[1] = load;
	send_event(app, &m, key);
}

void app_poll_until(struct app *app, bool (*cond)(const struct app *))
{
	while (!cond(app))
		ck_assert_int_ge(wave_host_poll(app->h, WAVE_MS(10)), 0);
}

pid_t daemon_start(const char *cfg_path)
{
	char log[300];

	/* Its messages go to agentd.log next to the configuration. */
	snprintf(log, sizeof(log), "%.*s/agentd.log", (int)(strrchr(cfg_path, '/') - cfg_path),
		 cfg_path);
	return agentd_spawn(WAVE_AGENTD, cfg_path, log, false);
}

int daemon_kill(pid_t pid, int sig)
{
	int status;

	ck_assert_int_eq(kill(pid, sig), 0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return status;
}
