/* SPDX-License-Identifier: MIT */
/*
 * The agent's statistics document (wave_agent_stats_json()) in the
 * Prometheus text exposition format (version 0.0.4), for wave-stat
 * --prometheus and wave-agentd's /metrics: one writer for both.
 */
#ifndef WAVE_TOOLS_STATS_PROM_H
#define WAVE_TOOLS_STATS_PROM_H

#include <stdio.h>

#include <jansson.h>

/* The Content-Type of what stats_prom_write() writes. */
#define STATS_PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/*
 * Writes @doc, a statistics document (an object with "hosts" and
 * "plugins"), to @f. Members that are missing or of the wrong type are
 * left out: the document comes from another process. Return: 0, or -1
 * when @doc is not a statistics document.
 */
int stats_prom_write(FILE *f, const json_t *doc);

/*
 * Checks that @doc is a statistics document: every member the agent
 * writes present and of its type (objects, strings for names,
 * non-negative integers for counters and latencies); members it does not
 * know are let through. Return: 0, or -1 with the member at fault and what
 * it should be in @why (@len bytes, one line), e.g. "hosts[1]: expected an
 * object".
 */
int stats_prom_check(const json_t *doc, char *why, size_t len);

#endif /* WAVE_TOOLS_STATS_PROM_H */
