/* SPDX-License-Identifier: MIT */
/**
 * @file rpc_state.h
 * The agent's state model of the rpc domain: one host's workers, steering
 * table, dispatchers and load, kept from the host's messages, and checked
 * against before any decision leaves.
 *
 * The agent runtime makes one state per host session from the host's
 * SETUP, hands it to the rpc plugin's context
 * (wave_plugin_ctx_opts.domain_state), and passes every later rpc message
 * to wave_rpc_state_apply(). That decodes it (wave_rpc_msg_decode()),
 * applies it, and calls the plugin's op named after it. Messages that
 * cannot be true are refused, counted and not applied: a worker added
 * twice, a removal of a worker that is not live, is another generation or
 * still has entries; a table entry steered to a worker that is not live;
 * load of a worker that is not live; an outcome of nothing pending.
 *
 * Cost. Workers, entries and dispatchers are arrays sized by the SETUP
 * (at most 1024 workers of 96 bytes, 65792 entries of 32 bytes); each event
 * costs O(1) but a REPORT, which costs O(entries + workers).
 *
 * A state is not thread-safe: one thread applies messages and runs the
 * plugin's callbacks (which may read and change it through the context).
 */
#ifndef WAVE_RPC_STATE_H
#define WAVE_RPC_STATE_H

#include <stdint.h>

#include <wave/export.h>
#include <wave/msg.h>
#include <wave/rpc_msg.h>

#ifdef __cplusplus
extern "C" {
#endif

struct wave_plugin_ctx;

/** The agent's model of one host's rpc domain; opaque. */
struct wave_rpc_state;

/**
 * wave_rpc_state_create() - make the state a host's SETUP describes.
 * @setup: the SETUP message, untrusted (wave_rpc_msg_decode() with no
 *         sizes).
 * @out:   receives the state: no worker live, every entry without one.
 * Return: 0, -EINVAL, -ENOMEM, or the decoder's error.
 */
WAVE_API WAVE_NODISCARD int wave_rpc_state_create(const struct wave_msg *setup,
						  struct wave_rpc_state **out);

/** wave_rpc_state_destroy() - free @st; destroy the contexts using it
 *  first. NULL is ignored. */
WAVE_API void wave_rpc_state_destroy(struct wave_rpc_state *st);

/**
 * wave_rpc_state_apply() - apply one message from the host.
 * @st:  the state.
 * @ctx: the rpc plugin's context whose domain_state is @st, whose op is
 *       then called; or NULL to apply the message to the state alone.
 * @m:   an event or an outcome, untrusted.
 *
 * Return: 0, or -EINVAL (a bad argument: nothing counted); -ENOMSG,
 * -EBADMSG, -ERANGE (the decoder's, or a decision type, which a host never
 * sends: bad_msgs); -EEXIST (a worker added twice: dup_worker); -ENOENT
 * (a worker that is not live, or another generation: unknown_worker);
 * -EPROTO (a removal of a worker with entries, an outcome of nothing
 * pending: bad_transition). A plugin op's error is not returned.
 */
WAVE_API int wave_rpc_state_apply(struct wave_rpc_state *st, struct wave_plugin_ctx *ctx,
				  const struct wave_msg *m);

/**
 * wave_rpc_state_replay() - hand the whole state to a (new) plugin: its
 * worker_added for every live worker, then load_report with the last
 * period. Decisions the old plugin left in flight complete normally.
 * Return: 0 or -EINVAL.
 */
WAVE_API int wave_rpc_state_replay(struct wave_rpc_state *st, struct wave_plugin_ctx *ctx);

/**
 * struct wave_rpc_stats_agent - what a state has seen and done.
 * @events:          messages applied.
 * @bad_msgs, @dup_worker, @unknown_worker, @bad_transition:
 *                   messages refused, by reason (wave_rpc_state_apply()).
 * @sent:            decisions sent.
 * @refused_range, @refused_worker, @refused_same, @refused_pending,
 * @refused_full:    decisions refused before sending: -ERANGE, -ENOENT,
 *                   -EALREADY, -EBUSY, -EAGAIN (and emit errors).
 * @committed:       decisions committed.
 * @aborted:         decisions aborted, by enum wave_result.
 * @aborted_why:     by enum wave_rpc_abort.
 * @reserved:        zero.
 */
struct wave_rpc_stats_agent {
	uint64_t events;
	uint64_t bad_msgs;
	uint64_t dup_worker;
	uint64_t unknown_worker;
	uint64_t bad_transition;
	uint64_t sent;
	uint64_t refused_range;
	uint64_t refused_worker;
	uint64_t refused_same;
	uint64_t refused_pending;
	uint64_t refused_full;
	uint64_t committed;
	uint64_t aborted[WAVE_RESULT_COUNT];
	uint64_t aborted_why[WAVE_RPC_WHY_COUNT];
	uint64_t reserved[8];
};

/** wave_rpc_state_stats() - copy @st's statistics. Return: 0 or -EINVAL. */
WAVE_API int wave_rpc_state_stats(const struct wave_rpc_state *st,
				  struct wave_rpc_stats_agent *out);

#ifdef __cplusplus
}
#endif

#endif /* WAVE_RPC_STATE_H */
