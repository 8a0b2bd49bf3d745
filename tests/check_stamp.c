/* SPDX-License-Identifier: MIT */
/*
 * The cheap clock of lib/core/stamp.h: its arithmetic on made-up readings
 * (rate, span, conversion, a TSC that goes back), and the real clock
 * bracketed by clock_gettime() readings, on the TSC where this machine
 * allows it and on CLOCK_MONOTONIC.
 */
#include "check_run.h"
#include <string.h>

#include "core/stamp.h"

#define GHZ_2_5_MULT ((uint64_t)(0.4 * 4294967296.0)) /* 0.4 ns per tick */

/* |a - b| <= tol: the fixed-point rate truncates below a nanosecond. */
#define ck_assert_near(a, b, tol)                                              \
	ck_assert_uint_le((a) > (b) ? (a) - (b) : (b) - (a), (tol))

/* Two anchors 100 ms apart at 2.5 GHz. */
static void anchor_2_5ghz(struct wave_stamp_clock *c)
{
	memset(c, 0, sizeof(*c));
	c->span = 1;
	wave_stamp_anchor_at(c, 1000, 5000000000ull);
	ck_assert_uint_eq(c->mult, 0); /* one anchor: no rate */
	wave_stamp_anchor_at(c, 1000 + 250000000ull, 5000000000ull + 100000000ull);
}

START_TEST(rate_span_and_conversion)
{
	struct wave_stamp_clock c;

	anchor_2_5ghz(&c);
	ck_assert_near(c.mult, GHZ_2_5_MULT, 1);
	/* An anchor serves one millisecond: 2.5 million ticks. */
	ck_assert_near(c.span, 2500000, 1);
	ck_assert_uint_eq(wave_stamp_convert(&c, c.tsc_a), c.ns_a);
	ck_assert_near(wave_stamp_convert(&c, c.tsc_a + 2500), c.ns_a + 1000, 1);
	/* The last tick of the span, no overflow. */
	ck_assert_near(wave_stamp_convert(&c, c.tsc_a + 2500000 - 1), c.ns_a + 999999, 1);
}
END_TEST

START_TEST(young_rate_serves_short_spans)
{
	struct wave_stamp_clock c;

	memset(&c, 0, sizeof(c));
	c.span = 1;
	wave_stamp_anchor_at(&c, 1000, 5000000000ull);
	/* 10 ms at 2.5 GHz: a rate, whose anchors serve a hundredth of its
	 * base (100 us: 250,000 ticks), up to a millisecond from a 100 ms
	 * base on. */
	wave_stamp_anchor_at(&c, 1000 + 25000000, 5000000000ull + 10000000);
	ck_assert_near(c.mult, GHZ_2_5_MULT, 1);
	ck_assert_near(c.span, 250000, 1);
	wave_stamp_anchor_at(&c, 1000 + 125000000, 5000000000ull + 50000000);
	ck_assert_near(c.span, 1250000, 1);
	wave_stamp_anchor_at(&c, 1000 + 500000000, 5000000000ull + 200000000);
	ck_assert_near(c.span, 2500000, 1);
}
END_TEST

START_TEST(rate_needs_a_long_enough_base)
{
	struct wave_stamp_clock c;

	memset(&c, 0, sizeof(c));
	c.span = 1;
	wave_stamp_anchor_at(&c, 1000, 5000000000ull);
	/* 1 ms later: too short to measure a rate on (clock readings are off
	 * by tens of ns, and by up to 1 us), so the clock keeps reading
	 * CLOCK_MONOTONIC. */
	wave_stamp_anchor_at(&c, 1000 + 2500000, 5000000000ull + 1000000);
	ck_assert_uint_eq(c.mult, 0);
	ck_assert_uint_eq(c.tsc_a, 1000 + 2500000);
	ck_assert_uint_eq(c.ns_a, 5000000000ull + 1000000);
}
END_TEST

START_TEST(tsc_going_back_starts_over)
{
	struct wave_stamp_clock c;
	uint64_t mult;

	anchor_2_5ghz(&c);
	mult = c.mult;
	/* A TSC behind the rate's base (another CPU's, or a reset): the rate
	 * in force stays, its base moves, the anchor follows the reading. */
	wave_stamp_anchor_at(&c, 500, 6000000000ull);
	ck_assert_uint_eq(c.mult, mult);
	ck_assert_uint_eq(c.tsc_b, 500);
	ck_assert_uint_eq(c.ns_b, 6000000000ull);
	ck_assert_near(wave_stamp_convert(&c, 500 + 2500), 6000000000ull + 1000, 1);
}
END_TEST

START_TEST(rate_follows_a_changed_clock)
{
	struct wave_stamp_clock c;

	anchor_2_5ghz(&c);
	/* A second later at 2.5 GHz, the base moves there; then the clock
	 * runs 1 % faster against the TSC (as NTP slewing would, larger). */
	wave_stamp_anchor_at(&c, 1000 + 2500000000ull, 5000000000ull + 1000000000ull);
	ck_assert_uint_eq(c.tsc_b, 1000 + 2500000000ull);
	wave_stamp_anchor_at(&c, 1000 + 2750000000ull, 5000000000ull + 1101000000ull);
	uint64_t want = (uint64_t)(0.404 * 4294967296.0);
	ck_assert_near(c.mult, want, 2);
}
END_TEST

/* Reads @c for about @ms, each reading bracketed by clock_gettime(): a
 * reading may be off by its conversion error (a few ns; @slack allows far
 * more), never by more. */
static void bracket(struct wave_stamp_clock *c, unsigned ms, uint64_t slack)
{
	uint64_t end = wave_now_ns() + (uint64_t)ms * 1000000u;
	unsigned n = 0;

	for (uint64_t t = 0; t < end; n++) {
		uint64_t before = wave_now_ns();
		uint64_t s = wave_stamp_now(c);
		t = wave_now_ns();
		ck_assert_msg(s + slack >= before && s <= t + slack,
			      "reading %u: %llu outside [%llu, %llu]", n, (unsigned long long)s,
			      (unsigned long long)before, (unsigned long long)t);
	}
}

START_TEST(monotonic_clock_fallback_is_exact)
{
	struct wave_stamp_clock c;

	wave_stamp_init(&c, false);
	ck_assert_uint_eq(c.span, 0);
	bracket(&c, 20, 0);
}
END_TEST

START_TEST(tsc_clock_tracks_the_monotonic_clock)
{
	struct wave_stamp_clock c;

	if (!wave_stamp_tsc_usable()) {
		/* Then wave_stamp_init() gives the fallback, tested above. */
		wave_stamp_init(&c, true);
		ck_assert_uint_eq(c.span, 0);
		return;
	}
	wave_stamp_init(&c, true);
	ck_assert_uint_ne(c.span, 0);
	/* Past STAMP_RATE_MIN_NS, so that the TSC is converted, not only
	 * anchored; 20 us of slack is 2,000 times the expected error. */
	bracket(&c, 250, 20000);
	ck_assert_uint_ne(c.mult, 0);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("stamp");
	TCase *tc = tcase_create("clock");

	tcase_add_test(tc, rate_span_and_conversion);
	tcase_add_test(tc, rate_needs_a_long_enough_base);
	tcase_add_test(tc, young_rate_serves_short_spans);
	tcase_add_test(tc, tsc_going_back_starts_over);
	tcase_add_test(tc, rate_follows_a_changed_clock);
	tcase_add_test(tc, monotonic_clock_fallback_is_exact);
	tcase_add_test(tc, tsc_clock_tracks_the_monotonic_clock);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return wave_check_run(suite());
}
