/* SPDX-License-Identifier: MIT */
/*
 * wave-agentd's metrics endpoint: with "metrics" in the configuration, the
 * agent's statistics in the Prometheus text format at GET /metrics, served
 * by libmicrohttpd on a thread of its own.
 */
#ifndef WAVE_TOOLS_AGENTD_METRICS_H
#define WAVE_TOOLS_AGENTD_METRICS_H

#include <wave/wave.h>

struct agentd_metrics;

/* Listens on cfg->metrics_address:cfg->metrics_port and serves @a's
 * statistics; *@out is NULL when @cfg has no "metrics". Prints what went
 * wrong. Return: 0 or -1. */
int agentd_metrics_start(const struct wave_config *cfg, struct wave_agent *a,
			 struct agentd_metrics **out);
/* Stops serving (waits for requests in flight) and frees @m; NULL is ignored. */
void agentd_metrics_stop(struct agentd_metrics *m);

#endif /* WAVE_TOOLS_AGENTD_METRICS_H */
