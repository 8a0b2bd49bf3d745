/* SPDX-License-Identifier: MIT */
/*
 * auth.token protects an agent's fabric:// listener: a host that does not
 * present it is refused at the channel's hello, before any session; and a
 * reload cannot change the token the listener holds.
 */
#include "check_run.h"
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <wave/wave.h>

#include "chan_util.h"

static void *serve(void *a)
{
	return (void *)(intptr_t)wave_agent_run(a);
}

/* Opens a host channel presenting @token (NULL: none). */
static int host_open(const char *uri, const char *token)
{
	struct wave_chan_opts o;
	struct wave_chan *ch;
	int ret;

	wave_chan_opts_init(&o);
	o.role = WAVE_ROLE_HOST;
	o.token = token;
	o.timeout_ms = 30000; /* a loaded machine is slow, not wrong */
	ret = wave_chan_open(uri, &o, &ch);
	if (ret == 0)
		wave_chan_close(ch);
	return ret;
}

static struct wave_config *config(const char *uri, const char *token)
{
	char text[512];
	struct wave_config *cfg = NULL;
	struct wave_error err;

	/* The agent waits up to half the heartbeat timeout for a host to take
	 * its channel's reply: long, for a slow (sanitized, loaded) machine. */
	snprintf(text, sizeof(text), "{\"listen\": [\"%s\"], \"auth\": {\"token\": \"%s\"}, "
		 "\"heartbeat\": {\"period_ms\": 1000, \"timeout_ms\": 60000}}", uri, token);
	ck_assert_msg(wave_config_parse(text, strlen(text), "agent.json", &cfg, &err) == 0, "%s",
		      err.text);
	return cfg;
}

START_TEST(fabric_listener_requires_the_token)
{
	struct wave_config *cfg, *next;
	struct wave_agent *a;
	struct wave_error err;
	char uri[256];
	pthread_t thr;
	void *ret;

	test_transport = "fabric-tcp";
	transport_uri(uri, sizeof(uri), NULL);
	cfg = config(uri, "s3cret");
	ck_assert_msg(wave_agent_create(cfg, &a, &err) == 0, "%s", err.text);
	ck_assert_int_eq(pthread_create(&thr, NULL, serve, a), 0);

	ck_assert_int_eq(host_open(uri, NULL), -WAVE_EREFUSED);
	ck_assert_int_eq(host_open(uri, "wrong"), -WAVE_EREFUSED);
	ck_assert_int_eq(host_open(uri, "s3cret"), 0);

	next = config(uri, "other");
	ck_assert_int_eq(wave_agent_reload(a, next, &err), -EINVAL);
	ck_assert_str_eq(err.text, "auth.token cannot change while the agent listens on fabric://; "
				   "restart it");
	wave_config_free(next);
	ck_assert_int_eq(host_open(uri, "s3cret"), 0); /* still in force */

	ck_assert_int_eq(wave_agent_stop(a), 0);
	pthread_join(thr, &ret);
	ck_assert_int_eq((int)(intptr_t)ret, 0);
	wave_agent_destroy(a);
	wave_config_free(cfg);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("agent_token");
	TCase *tc = tcase_create("fabric");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, fabric_listener_requires_the_token);
	suite_add_tcase(s, tc);
	return wave_check_run(s);
}
