/* SPDX-License-Identifier: MIT */
/*
 * The rpc host's commit rule for the agent's decisions, on the shared
 * transaction rule (lib/decision/txn.h): one definition for the host
 * (rpc_host_link.c) and the replay model of the host (rpc_replay.c), so
 * that the two cannot disagree.
 */
#ifndef WAVE_DOMAINS_RPC_TXN_H
#define WAVE_DOMAINS_RPC_TXN_H

#include <stdbool.h>
#include <stdint.h>

#include <wave/rpc_msg.h>

#include "../../decision/txn.h"

/* A MOVE of @d commits only if its worker is the live one it names
 * (@worker_is), the bucket's sequence number @seq and the epoch @epoch
 * are the ones it was based on (one 64-bit version: epoch, then
 * sequence), and the bucket is not on that worker already (@cur). */
static inline enum wave_result rpc_move_check(const struct wave_rpc_msg *d, bool worker_is,
					      uint32_t epoch, uint32_t seq, uint32_t cur)
{
	return txn_check(worker_is, (uint64_t)epoch << 32 | seq,
			 (uint64_t)d->epoch << 32 | d->seq, cur != d->worker, true);
}

/* A PRESTAGE commits if its worker is the live one it names, in the
 * current epoch. */
static inline enum wave_result rpc_prestage_check(const struct wave_rpc_msg *d, bool worker_is,
						  uint32_t epoch)
{
	return txn_check(worker_is, epoch, d->epoch, true, true);
}

/* The reason beside a result (rpc.h lists the pairs). */
static inline unsigned rpc_why(enum wave_result res, bool epoch_moved)
{
	switch (res) {
	case WAVE_COMMITTED: return WAVE_RPC_WHY_NONE;
	case WAVE_ABORT_GONE: return WAVE_RPC_WHY_WORKER_GONE;
	case WAVE_ABORT_STALE: return epoch_moved ? WAVE_RPC_WHY_EPOCH : WAVE_RPC_WHY_BUCKET_MOVED;
	case WAVE_ABORT_NOT_ELIGIBLE: return WAVE_RPC_WHY_SAME_WORKER;
	default: return WAVE_RPC_WHY_BACKEND;
	}
}

#endif /* WAVE_DOMAINS_RPC_TXN_H */
