/* SPDX-License-Identifier: MIT */
/**
 * @file plugin_custom.h
 * For authors of custom-domain policies: the ops table of a
 * WAVE_DOMAIN_CUSTOM plugin. Include it with <wave/plugin.h>, which has the
 * descriptor, parameters, wave_plugin_emit() and the rest.
 *
 * The custom domain carries the application's own events and decisions:
 * message types in WAVE_MSG_APP_FIRST..WAVE_MSG_APP_LAST (msg.h), meaning
 * whatever the application and the plugin agreed. It has no state model in
 * libwave, so this header has only the callbacks; the plugin answers with
 * wave_plugin_emit(). Plugin ABI 1.0.
 */
#ifndef WAVE_PLUGIN_CUSTOM_H
#define WAVE_PLUGIN_CUSTOM_H

#include <stddef.h>
#include <stdint.h>

#include <wave/msg.h>
#include <wave/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * struct wave_custom_ops - callbacks of a WAVE_DOMAIN_CUSTOM plugin.
 * @size:     sizeof(struct wave_custom_ops) at compile time.
 * @on_event: required. An event from the host: a message whose type is in
 *            WAVE_MSG_APP_FIRST..WAVE_MSG_APP_LAST, meaning whatever the
 *            application and the plugin agreed. Answer with
 *            wave_plugin_emit() (now, or later). Return 0, or a negative
 *            error code for an event the plugin could not use; the agent
 *            counts it ("event_errors") and carries on.
 * @on_tick:  optional. Called about every tick period of the domain's
 *            configuration (domains.custom.tick_us) with the
 *            CLOCK_MONOTONIC time in nanoseconds; a late tick is not
 *            repeated.
 *
 * Callbacks of one context are never called concurrently.
 */
struct wave_custom_ops {
	size_t size;
	int (*on_event)(struct wave_plugin_ctx *ctx, const struct wave_msg *ev);
	void (*on_tick)(struct wave_plugin_ctx *ctx, uint64_t now_ns);
};

#ifdef __cplusplus
}
#endif

#endif /* WAVE_PLUGIN_CUSTOM_H */
