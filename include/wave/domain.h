/* SPDX-License-Identifier: MIT */
/**
 * @file domain.h
 * What every resource domain shares: the domain numbers and names, and the
 * result of a transaction.
 *
 * A domain is one kind of resource whose decisions an agent makes: the
 * custom domain (the application's own events and decisions), sched
 * (tasks on CPUs), mem (pages in tiers), rpc (requests to workers). Each
 * owns a range of message types (msg.h) and, in the plugin ABI, an ops
 * table.
 *
 * Transactions. A decision names the object it is about (a task, a chunk,
 * a flow) and the object's sequence number it was based on. The host
 * commits it only if that is still the object's current sequence number
 * and the object can take it now; otherwise it aborts, and the agent is
 * told why. Every domain reports the same results, with the same numbers
 * on the wire.
 */
#ifndef WAVE_DOMAIN_H
#define WAVE_DOMAIN_H

#include <wave/export.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The resource domains. The number is part of the ABI and of the wire. */
enum wave_domain {
	WAVE_DOMAIN_CUSTOM = 0, /**< application-defined events and decisions */
	WAVE_DOMAIN_SCHED = 1,  /**< threads and tasks on CPUs (ops: ABI 1.1) */
	WAVE_DOMAIN_MEM = 2,    /**< pages in memory tiers (ops: ABI 1.3) */
	WAVE_DOMAIN_RPC = 3,    /**< requests to workers (ops: ABI 1.2) */
	WAVE_DOMAIN_COUNT       /**< number of domains; not a domain */
};

/**
 * wave_domain_name() - the domain's name as the configuration, the
 * statistics and the messages spell it ("custom", "sched", "mem", "rpc").
 * Return: the name, or "unknown" for a number that is not a domain.
 */
WAVE_API const char *wave_domain_name(unsigned domain);

/**
 * enum wave_result - how a transaction ended. The numbers are part of the
 * wire format of every domain.
 */
enum wave_result {
	WAVE_COMMITTED = 0,          /**< carried out */
	WAVE_ABORT_STALE = 1,        /**< the object's sequence number moved on */
	WAVE_ABORT_GONE = 2,         /**< the object no longer exists */
	WAVE_ABORT_NOT_ELIGIBLE = 3, /**< the object cannot take it in its state */
	WAVE_ABORT_BUSY = 4,         /**< the resource is taken */
	WAVE_ABORT_INVALID = 5,      /**< the host could not use the decision */
	WAVE_RESULT_COUNT            /**< number of results; not one */
};

/**
 * wave_result_name() - "committed", "stale", "gone", "not_eligible",
 * "busy" or "invalid"; NULL for a number that is not a result.
 */
WAVE_API const char *wave_result_name(unsigned result);

#ifdef __cplusplus
}
#endif

#endif /* WAVE_DOMAIN_H */
