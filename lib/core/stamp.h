/* SPDX-License-Identifier: MIT */
/*
 * A cheap CLOCK_MONOTONIC for time stamps on hot paths (the channel's send
 * stamp, the agent loop's clock).
 *
 * clock_gettime() costs 20-30 ns on the virtual machines libwave is measured
 * on; the TSC, where the CPU says it is invariant (constant_tsc and
 * nonstop_tsc) and the kernel itself keeps CLOCK_MONOTONIC on it (clocksource
 * tsc, which it keeps only while the TSCs of all CPUs agree), is read in a few
 * nanoseconds and converted with a multiply. Each clock is anchored to
 * CLOCK_MONOTONIC: it reads that clock again once a millisecond of TSC (less
 * while its rate is young) has passed since its anchor (or when the TSC
 * looks out of range), and takes its rate from two anchors at least
 * STAMP_RATE_MIN_NS apart, so that NTP's slewing of CLOCK_MONOTONIC is
 * followed and a reading is within a few nanoseconds of clock_gettime(). Until it has a rate, and wherever the TSC
 * is not usable, a clock reads CLOCK_MONOTONIC itself.
 *
 * A clock belongs to one thread (a channel end's sending side, the agent
 * loop): it has no lock. Readings of one clock may step back by a few
 * nanoseconds when it re-anchors; users already treat a stamp from the
 * future as "now".
 */
#ifndef WAVE_CORE_STAMP_H
#define WAVE_CORE_STAMP_H

#include <stdbool.h>
#include <stdint.h>

#include "core.h"

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

struct wave_stamp_clock {
	uint64_t tsc_a, ns_a; /* the latest anchor */
	uint64_t tsc_b, ns_b; /* the anchor the rate is measured from */
	uint64_t mult;        /* ns per tick, 32.32 fixed point; 0: no rate yet */
	uint64_t span;        /* ticks an anchor is used for; 0: TSC not used */
};

/* Whether this machine's TSC can stand in for CLOCK_MONOTONIC (decided
 * once per process; thread-safe). */
bool wave_stamp_tsc_usable(void);

/* Sets @c up: on the TSC when usable (and @use_tsc), else CLOCK_MONOTONIC. */
void wave_stamp_init(struct wave_stamp_clock *c, bool use_tsc);

/* Re-anchors @c at TSC reading @tsc; returns the CLOCK_MONOTONIC reading
 * it took (the slow path of wave_stamp_now()). */
uint64_t wave_stamp_anchor(struct wave_stamp_clock *c, uint64_t tsc);

/* Anchor @c at (@tsc, @ns) as wave_stamp_anchor() does, with the clock's
 * reading given: the arithmetic alone, for tests. */
void wave_stamp_anchor_at(struct wave_stamp_clock *c, uint64_t tsc, uint64_t ns);

/* What @c reads at TSC reading @tsc, the anchor being recent (@tsc - tsc_a
 * below span). */
static inline uint64_t wave_stamp_convert(const struct wave_stamp_clock *c, uint64_t tsc)
{
	return c->ns_a + (((tsc - c->tsc_a) * c->mult) >> 32);
}

static inline uint64_t wave_stamp_tsc(void)
{
#if defined(__x86_64__)
	return __rdtsc();
#else
	return 0;
#endif
}

/* CLOCK_MONOTONIC nanoseconds, cheaply (see above). */
static inline uint64_t wave_stamp_now(struct wave_stamp_clock *c)
{
	uint64_t tsc;

	if (wave_unlikely(!c->span))
		return wave_now_ns();
	tsc = wave_stamp_tsc();
	/* Unsigned: a TSC behind the anchor is out of range too. */
	if (wave_unlikely(tsc - c->tsc_a >= c->span || !c->mult))
		return wave_stamp_anchor(c, tsc);
	return wave_stamp_convert(c, tsc);
}

#endif /* WAVE_CORE_STAMP_H */
