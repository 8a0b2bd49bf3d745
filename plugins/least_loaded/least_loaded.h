/* SPDX-License-Identifier: MIT */
/**
 * @file least_loaded.h
 * The message protocol of the least_loaded plugin (wave_least_loaded.so), a
 * custom-domain policy that picks the least-loaded of N workers.
 *
 * The application reports each worker's load (any unit: queue length,
 * outstanding bytes) and asks which worker should take the next piece of
 * work; the plugin answers with the worker whose load, counting the work
 * it has already handed out since that worker's last report, is lowest
 * (ties go to the lowest index). With a tick configured, the plugin also
 * publishes the current choice as a hint after every tick, so the
 * application can route without asking and without a round trip (the
 * prestaging idea of the Wave paper).
 *
 * Message types are offsets from the "type_base" parameter (default
 * WAVE_MSG_APP_FIRST), so an application can place the protocol anywhere
 * in its range. Fields are in the message payload:
 *
 *   LL_LOAD   (event)    u32[0] worker, u32[1] load
 *   LL_ASK    (event)    u64[0] cookie, chosen by the application
 *   LL_ANSWER (decision) u64[0] cookie of the ask, u32[2] worker
 *   LL_HINT   (decision) u32[0] worker, u32[1] its estimated load
 *
 * Parameters (domains.custom.params):
 *   workers     number of workers, 1..1024 (default 8)
 *   type_base   first message type (default 0x8000); the four types must
 *               fit in the application range
 *   ask_cost    load added to a worker's estimate for each answer that
 *               names it, until its next report (default 1): consecutive
 *               asks then spread instead of all naming one worker
 *
 * Counters: "answers", "hints", "bad_events".
 */
#ifndef WAVE_PLUGINS_LEAST_LOADED_H
#define WAVE_PLUGINS_LEAST_LOADED_H

#define WAVE_LL_LOAD 0u
#define WAVE_LL_ASK 1u
#define WAVE_LL_ANSWER 2u
#define WAVE_LL_HINT 3u

#define WAVE_LL_MAX_WORKERS 1024u

#endif /* WAVE_PLUGINS_LEAST_LOADED_H */
