/* SPDX-License-Identifier: MIT */
/**
 * @file plugin_kit/rpc_hash.h
 * Plugin kit, for authors of rpc-domain policies: the static hash layout of
 * a steering table (entry b on the (b mod n)-th of the n live workers, in
 * order of number: what RSS does with its indirection table, and what the
 * host's WAVE_RPC_FALLBACK_HASH does), and moving the table towards it.
 * The built-in policies (rpc_hash, rpc_jsq) use it exactly as an
 * out-of-tree policy does, from the installed headers.
 *
 * Header only: every function is static inline and calls libwave only
 * through the plugin functions of <wave/plugin_rpc.h>.
 */
#ifndef WAVE_PLUGIN_KIT_RPC_HASH_H
#define WAVE_PLUGIN_KIT_RPC_HASH_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include <wave/plugin.h>
#include <wave/plugin_rpc.h>

/**
 * rpc_hash_reconcile() - move every table entry that is not where the
 * static hash puts it (and has no move pending), at most @max_moves of
 * them (0: no bound).
 * Return: moves sent, -ENOMEM, or a decision's error other than a full
 * channel (which ends the round: the rest waits for the next call).
 */
static inline int rpc_hash_reconcile(struct wave_plugin_ctx *ctx, uint32_t max_moves)
{
	struct wave_rpc_info info;
	struct wave_rpc_worker w;
	struct wave_rpc_bucket b;
	uint32_t *live, n = 0, entries;
	int ret, moved = 0;

	if ((ret = wave_plugin_rpc_info(ctx, &info)) < 0)
		return ret;
	if (!(live = (uint32_t *)malloc(info.dims.max_workers * sizeof(*live))))
		return -ENOMEM;
	for (uint32_t i = 0; i < info.dims.max_workers; i++)
		if (wave_plugin_rpc_worker(ctx, i, &w) == 0)
			live[n++] = i;
	entries = info.dims.n_buckets + info.dims.n_classes;
	for (uint32_t i = 0; n && i < entries && (!max_moves || (uint32_t)moved < max_moves); i++) {
		if (wave_plugin_rpc_bucket(ctx, i, &b) < 0 || b.worker == live[i % n] ||
		    b.pending != WAVE_RPC_NO_WORKER)
			continue;
		ret = wave_plugin_rpc_move(ctx, i, live[i % n]);
		if (ret == -EAGAIN)
			break;
		if (ret < 0) {
			moved = ret;
			break;
		}
		moved++;
	}
	free(live);
	return moved;
}

#endif /* WAVE_PLUGIN_KIT_RPC_HASH_H */
