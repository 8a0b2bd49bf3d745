/* SPDX-License-Identifier: MIT */
/* A strict reader of the Prometheus text exposition format (0.0.4), for
 * the metrics tests: what wave-stat --prometheus prints and what
 * wave-agentd serves at /metrics. */
#ifndef WAVE_TEST_PROM_CHECK_H
#define WAVE_TEST_PROM_CHECK_H

#include <stddef.h>

/*
 * Checks every line of @text: HELP and TYPE lines before their family's
 * samples, each family's samples together and its TYPE given once, valid
 * metric and label names, label values correctly quoted and escaped, no
 * label twice in a sample, no series twice, a number (or NaN, +Inf, -Inf)
 * as value, counters named *_total and never negative. Fails the test
 * (Check) with the offending line. Return: the number of samples.
 */
size_t prom_check(const char *text);

/* The value of the one sample whose name and labels start with @prefix
 * ("wave_events_total{" or "wave_agent_hosts "); the test fails when
 * there is none or more than one. */
double prom_value(const char *text, const char *prefix);

#endif
