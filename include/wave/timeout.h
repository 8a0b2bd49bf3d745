/* SPDX-License-Identifier: MIT */
/**
 * @file timeout.h
 * One convention for every libwave call that waits: its timeout is an
 * int64_t count of nanoseconds; 0 does not wait, and a negative value
 * (WAVE_WAIT_FOREVER) waits for ever. Durations in options and in the
 * configuration say their unit in their name (heartbeat_period_ms,
 * delay_ns, tick_us).
 */
#ifndef WAVE_TIMEOUT_H
#define WAVE_TIMEOUT_H

#include <stdint.h>

/** Wait for as long as it takes. */
#define WAVE_WAIT_FOREVER ((int64_t)-1)
/** @ms milliseconds, @us microseconds, as a timeout in nanoseconds. */
#define WAVE_MS(ms) ((int64_t)(ms) * 1000000)
#define WAVE_US(us) ((int64_t)(us) * 1000)

#endif /* WAVE_TIMEOUT_H */
