/* SPDX-License-Identifier: MIT */
/*
 * bench_echo: the trivial custom-domain plugin of wave-bench-agent. Every
 * event is answered at once with one decision that carries the event's
 * first payload word (the benchmark's event number), so what the benchmark
 * measures is the agent runtime and the session layer, not a policy.
 * Built as wave_bench_echo.so next to the benchmark; never installed.
 */
#include <errno.h>
#include <string.h>

#include <wave/plugin.h>
#include <wave/plugin_custom.h>

/* The decision's type: the event's type + 1, still in the application range. */
static int echo_on_event(struct wave_plugin_ctx *ctx, const struct wave_msg *ev)
{
	struct wave_msg d;
	int ret;

	if (ev->type == WAVE_MSG_APP_LAST)
		return -EINVAL; /* no type left to answer with */
	memset(&d, 0, sizeof(d));
	d.type = (uint16_t)(ev->type + 1);
	d.payload.u64[0] = ev->payload.u64[0];
	/* Key and sequence stay 0: the agent stamps the event's own. */
	ret = wave_plugin_emit(ctx, &d, 1);
	if (ret < 0)
		return ret;
	return ret == 1 ? 0 : -EAGAIN; /* the outbox is full too */
}

static const struct wave_custom_ops echo_ops = {
	.size = sizeof(struct wave_custom_ops),
	.on_event = echo_on_event,
	.on_tick = NULL,
};

WAVE_PLUGIN_DEFINE(bench_echo, WAVE_DOMAIN_CUSTOM, "1.0.0",
		   "answers every event at once (wave-bench-agent)", NULL, NULL, &echo_ops)
