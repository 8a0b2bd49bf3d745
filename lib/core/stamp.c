/* SPDX-License-Identifier: MIT */
/* The cheap CLOCK_MONOTONIC of stamp.h: when the TSC may be used, anchoring. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "stamp.h"

/* A rate is measured over at least this long: until then every reading
 * reads CLOCK_MONOTONIC and re-anchors, which costs more than the clock
 * itself, so the first rate comes soon (a process that sends for 100 ms
 * would otherwise never use the TSC)... */
#define STAMP_RATE_MIN_NS 10000000ull
/* ...and over at most about this long, so that it follows NTP's slewing. */
#define STAMP_RATE_WINDOW_NS 1000000000ull
/* How long an anchor serves before the clock is read again: at most a
 * millisecond, and a hundredth of the base its rate was measured over. An
 * anchor is off by less than STAMP_ANCHOR_MAX_NS / 2, so a rate is off by
 * at most STAMP_ANCHOR_MAX_NS / base, and a reading by that times the span:
 * 10 ns at worst whatever the base (tens of ns make typical anchors 100
 * times better). */
#define STAMP_SPAN_NS 1000000ull
#define STAMP_SPAN_PER_BASE 100u
/* An anchor whose two TSC readings are further apart than this was
 * interrupted between them: it is not taken. Without a rate yet, the bound
 * is in ticks of a TSC of at most 10 GHz. */
#define STAMP_ANCHOR_MAX_NS 1000u
#define STAMP_ANCHOR_MAX_TICKS_NO_RATE (STAMP_ANCHOR_MAX_NS * 10u)

static pthread_once_t usable_once = PTHREAD_ONCE_INIT;
static bool usable;
/* The latest rate any clock measured: a new clock starts with it instead
 * of reading CLOCK_MONOTONIC for its first STAMP_RATE_MIN_NS. */
static _Atomic uint64_t shared_mult;

/* Does the "flags" line of /proc/cpuinfo list both flags of an invariant
 * TSC? */
static bool tsc_invariant(void)
{
	FILE *f = fopen("/proc/cpuinfo", "re");
	char line[8192];
	bool found = false;

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "flags", 5) != 0)
			continue;
		found = strstr(line, " constant_tsc") && strstr(line, " nonstop_tsc");
		break;
	}
	fclose(f);
	return found;
}

/* Does the kernel keep CLOCK_MONOTONIC on the TSC? It stops doing so when
 * it finds the CPUs' TSCs out of step. */
static bool kernel_uses_tsc(void)
{
	FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "re");
	char name[32] = "";
	bool tsc;

	if (!f)
		return false;
	tsc = fgets(name, sizeof(name), f) && strcmp(name, "tsc\n") == 0;
	fclose(f);
	return tsc;
}

static void decide_usable(void)
{
#if defined(__x86_64__)
	usable = tsc_invariant() && kernel_uses_tsc();
#endif
	wave_dbg("time stamps: %s",
		 usable ? "TSC, anchored to CLOCK_MONOTONIC" : "CLOCK_MONOTONIC");
}

bool wave_stamp_tsc_usable(void)
{
	pthread_once(&usable_once, decide_usable);
	return usable;
}

/* Ticks in @ns at rate @mult (never 0: a span of 0 means "no TSC"). */
static uint64_t ticks_in(uint64_t mult, uint64_t ns)
{
	double s = (double)ns * 4294967296.0 / (double)mult;

	return s < 1.0 ? 1 : (uint64_t)s;
}

/* The span of an anchor at rate @mult measured over @base_ns. */
static uint64_t span_of(uint64_t mult, uint64_t base_ns)
{
	uint64_t ns = base_ns / STAMP_SPAN_PER_BASE;

	return ticks_in(mult, ns < STAMP_SPAN_NS ? ns : STAMP_SPAN_NS);
}

void wave_stamp_init(struct wave_stamp_clock *c, bool use_tsc)
{
	uint64_t m = atomic_load_explicit(&shared_mult, memory_order_relaxed);

	memset(c, 0, sizeof(*c));
	if (!use_tsc || !wave_stamp_tsc_usable())
		return;
	c->mult = m;
	/* tsc_a = 0: the first reading anchors. Another clock's rate, of a
	 * base not known here: served as if of the shortest. */
	c->span = m ? span_of(m, STAMP_RATE_MIN_NS) : 1;
}

void wave_stamp_anchor_at(struct wave_stamp_clock *c, uint64_t tsc, uint64_t ns)
{
	if (!c->ns_b || tsc <= c->tsc_b || ns <= c->ns_b) {
		/* First anchor, or a TSC or clock that went back: start over. */
		c->tsc_b = tsc;
		c->ns_b = ns;
	} else if (ns - c->ns_b >= STAMP_RATE_MIN_NS) {
		double m = (double)(ns - c->ns_b) * 4294967296.0 / (double)(tsc - c->tsc_b);

		if (m >= 1.0 && m < 1e15) { /* a TSC between 4 kHz and 4e18 Hz */
			c->mult = (uint64_t)m;
			c->span = span_of(c->mult, ns - c->ns_b);
			atomic_store_explicit(&shared_mult, c->mult, memory_order_relaxed);
		}
		if (ns - c->ns_b >= STAMP_RATE_WINDOW_NS) {
			c->tsc_b = tsc;
			c->ns_b = ns;
		}
	}
	c->tsc_a = tsc;
	c->ns_a = ns;
}

uint64_t wave_stamp_anchor(struct wave_stamp_clock *c, uint64_t tsc)
{
	uint64_t ns = wave_now_ns(), t1 = wave_stamp_tsc();
	uint64_t max = c->mult ? ticks_in(c->mult, STAMP_ANCHOR_MAX_NS)
			       : STAMP_ANCHOR_MAX_TICKS_NO_RATE;

	/* The clock was read between the two TSC readings: its anchor is
	 * their middle, unless something interrupted it between them (the
	 * next reading tries again). */
	if (t1 - tsc <= max)
		wave_stamp_anchor_at(c, tsc + (t1 - tsc) / 2, ns);
	return ns;
}
