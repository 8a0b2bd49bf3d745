/* SPDX-License-Identifier: MIT */
/*
 * example_rr: a complete libwave policy plugin, as small as one can be.
 *
 * It decides for the "custom" domain: the application and the plugin agree
 * on their own message types, inside WAVE_MSG_APP_FIRST..WAVE_MSG_APP_LAST.
 * Here the application asks "which worker should take this request?" and
 * the plugin answers round robin:
 *
 *   event    ASK     type_base + 0   payload.u64[0] = a cookie to echo back
 *   decision ANSWER  type_base + 1   payload.u64[0] = the cookie,
 *                                    payload.u32[2] = the worker
 *
 * Build it against an installed libwave, either with CMake (see
 * CMakeLists.txt next to this file) or in one line with pkg-config:
 *
 *   cc -std=c11 -shared -fPIC -fvisibility=hidden $(pkg-config --cflags wave) \
 *      -o wave_example_rr.so example_rr.c
 *
 * The file name matters: the agent loads plugin "example_rr" from
 * wave_example_rr.so and calls its entry point wave_plugin_entry_example_rr,
 * which WAVE_PLUGIN_DEFINE() below creates. Install it into
 * $(pkg-config --variable=plugindir wave), or list its directory in the
 * agent configuration's "plugin_path" or in WAVE_PLUGIN_PATH; agent.json in
 * this directory is a configuration that uses it.
 *
 * Note what is absent: no channel, no JSON library, no linking with libwave.
 * The agent hands every callback a context; everything goes through it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <wave/plugin.h>
#include <wave/plugin_custom.h>

#define ASK 0
#define ANSWER 1

/* The plugin's own state: one per context, kept with wave_plugin_set_priv(). */
struct rr {
	uint32_t workers;
	uint32_t next;
	uint16_t type_base;
	int answers; /* a counter id */
};

/*
 * init: called once when the agent starts the plugin. Read parameters here
 * (domains.custom.params in the configuration); every accessor takes a
 * default, so a configuration may leave any of them out. Returning a
 * negative error code refuses to start, and the agent reports it.
 */
static int rr_init(struct wave_plugin_ctx *ctx)
{
	uint64_t workers = wave_plugin_param_uint(ctx, "workers", 4);
	uint64_t base = wave_plugin_param_uint(ctx, "type_base", WAVE_MSG_APP_FIRST);
	struct rr *rr;

	if (workers == 0 || workers > 65536 || base < WAVE_MSG_APP_FIRST ||
	    base + ANSWER > WAVE_MSG_APP_LAST) {
		wave_plugin_log(ctx, WAVE_LOG_ERROR, "need 1..65536 workers and an application type_base");
		return -EINVAL;
	}
	rr = calloc(1, sizeof(*rr));
	if (!rr)
		return -ENOMEM;
	rr->workers = (uint32_t)workers;
	rr->type_base = (uint16_t)base;
	/* Counters show up in the agent's statistics. */
	rr->answers = wave_plugin_counter(ctx, "answers");
	wave_plugin_set_priv(ctx, rr);
	return 0;
}

/* fini: called once when the agent stops the plugin (or swaps it out). */
static void rr_fini(struct wave_plugin_ctx *ctx)
{
	free(wave_plugin_priv(ctx));
}

/*
 * on_event: one event from the host. Decide, and emit the decision through
 * the context. The agent counts a negative return as a failed event.
 */
static int rr_on_event(struct wave_plugin_ctx *ctx, const struct wave_msg *ev)
{
	struct rr *rr = wave_plugin_priv(ctx);
	struct wave_msg answer;
	int ret;

	if (ev->type != rr->type_base + ASK)
		return -EINVAL; /* not a message of our protocol */
	memset(&answer, 0, sizeof(answer));
	answer.type = (uint16_t)(rr->type_base + ANSWER);
	answer.payload.u64[0] = ev->payload.u64[0];
	answer.payload.u32[2] = rr->next;
	/* emit returns how many messages the host's channel took: 0 when it
	 * is full. Then this worker stays next in line for the retry. */
	ret = wave_plugin_emit(ctx, &answer, 1);
	if (ret != 1)
		return ret < 0 ? ret : -EAGAIN;
	rr->next = (rr->next + 1) % rr->workers;
	wave_plugin_counter_add(ctx, rr->answers, 1);
	return 0;
}

/* The custom domain's ops table. It starts with its size, so that a newer
 * libwave knows which ops this plugin was built with. on_tick is optional
 * and left out here. */
static const struct wave_custom_ops rr_ops = {
	.size = sizeof(struct wave_custom_ops),
	.on_event = rr_on_event,
};

/* The descriptor and the exported entry point, stamped with the plugin ABI
 * version of the headers this file is compiled with. */
WAVE_PLUGIN_DEFINE(example_rr, WAVE_DOMAIN_CUSTOM, "1.0.0",
		   "example: answer each request with the next worker, round robin",
		   rr_init, rr_fini, &rr_ops)
