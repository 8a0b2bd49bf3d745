/* SPDX-License-Identifier: MIT */
/*
 * The transaction rule every domain's host side applies to a decision
 * (include/wave/domain.h): a decision names an object and the object's
 * sequence number it was based on; it is carried out only if the object
 * still exists at that sequence number, can take it in its state, and the
 * resource it needs is free. One definition, used by the library and by
 * the tests' simulated hosts, so the two cannot disagree.
 */
#ifndef WAVE_DECISION_TXN_H
#define WAVE_DECISION_TXN_H

#include <stdbool.h>
#include <stdint.h>

#include <wave/domain.h>

/*
 * txn_check() - the outcome of a decision based on sequence @based_on.
 * @exists:   the object is there (not gone, not unknown);
 * @seq:      its current sequence number (read only when it exists);
 * @eligible: its state lets it take the decision (a task RUNNABLE, a
 *            chunk resident...);
 * @free:     the resource the decision needs is not taken.
 * The checks run in this order, so a stale decision is reported as stale
 * even when the resource is also busy.
 */
static inline enum wave_result txn_check(bool exists, uint64_t seq, uint64_t based_on,
					 bool eligible, bool free)
{
	if (!exists)
		return WAVE_ABORT_GONE;
	if (seq != based_on)
		return WAVE_ABORT_STALE;
	if (!eligible)
		return WAVE_ABORT_NOT_ELIGIBLE;
	return free ? WAVE_COMMITTED : WAVE_ABORT_BUSY;
}

#endif /* WAVE_DECISION_TXN_H */
