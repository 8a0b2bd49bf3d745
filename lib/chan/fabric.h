/* SPDX-License-Identifier: MIT */
/* fabric:// transport internals shared with the tests. Nothing here is
 * exported from libwave.so; tests that use it link the static library. */
#ifndef WAVE_FABRIC_H
#define WAVE_FABRIC_H

#include <stdbool.h>
#include <stdint.h>

/*
 * Test hook: make this process speak protocol @major.@minor in the fabric
 * handshake (hello and reply) instead of the real version, to check how a
 * peer of another version is refused. Not thread-safe; call before opening.
 */
void wave_fabric_test_set_proto(uint16_t major, uint16_t minor);

/*
 * Test hook: with @on, hosts opened from now on offer their mailboxes
 * without remote writes, as over a provider without FI_RMA: the agent sends
 * each put in an MBOX frame. Not thread-safe; call before opening.
 */
void wave_fabric_test_no_rma(bool on);

/*
 * Test hook: the next @n CREDIT frames (reports and requests) this process
 * sends are dropped as if lost on the way, though reported as sent. Not
 * thread-safe; call before opening.
 */
void wave_fabric_test_drop_credit(unsigned n);

#endif /* WAVE_FABRIC_H */
