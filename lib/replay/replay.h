/* SPDX-License-Identifier: MIT */
/*
 * Replaying decision traces (lib/trace) into a plugin, offline and in
 * virtual time, for wave-replay and the tests; not part of libwave itself
 * (the static library wave_replay). A layer above lib/decision and below
 * the domains: it calls a domain's agent side through wave_domains[] and
 * its model through replay_models[], as the agent runtime does.
 *
 * Two ways, both domain-neutral here, the domain's part behind its ops:
 *
 * - replay_run(): the recorded events, outcomes included, go in their
 *   order through the domain's agent side (struct domain_desc: msg,
 *   prepare, sent, tick: the very code the agent runs) into a fresh
 *   instance of any plugin of the domain, its ticks where the agent ran
 *   them; its decisions are compared, event by event,
 *   with the recorded ones. The host is as recorded: this asks "what
 *   would plugin B have decided here", not what would have followed.
 * - a domain's quality model (struct replay_model): the workload the
 *   trace shows, played by a model of the host against the plugin, in
 *   closed loop (sched: the simulated host of the tests), measured.
 */
#ifndef WAVE_REPLAY_REPLAY_H
#define WAVE_REPLAY_REPLAY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <wave/domain.h>
#include <wave/plugin_loader.h>

#include "../decision/u64map.h"
#include "../trace/trace.h"

/* Differences kept in detail; the rest are counted. */
#define REPLAY_DIFFS_KEPT 16

struct replay_diff {
	uint64_t offset; /* of the event in the trace */
	uint64_t t_ns;
	struct wave_msg event;
	unsigned n_rec, n_new; /* decisions recorded and replayed */
	struct wave_msg rec, new_; /* the first that differ (or are missing) */
	enum trace_kind rec_kind, new_kind;
};

struct replay_result {
	uint64_t events, refused; /* refused: the domain returned -1 (host dropped) */
	uint64_t ticks;           /* of the plugin, run where the agent ran them */
	uint64_t decisions_rec, decisions_new;
	uint64_t differing_events;
	uint64_t digest; /* of every replayed decision, in order */
	unsigned n_diffs;
	struct replay_diff diffs[REPLAY_DIFFS_KEPT];
	double seconds; /* CPU time of the replay (the thread's) */
	size_t objects; /* the domain's state had room for as many at the end */
};

/* Each replayed decision, for a caller that keeps them (may be NULL). */
typedef void (*replay_decision_fn)(void *user, enum trace_kind kind, uint64_t t_ns,
				   const struct wave_msg *m);

/*
 * struct replay_keep - what a replay leaves the next one of the same
 * trace (wave-replay --repeat): the objects the domain's tables had room
 * for, and its object table itself, emptied, so that the next replay's
 * state starts with it rather than growing a new one from 64 slots, or
 * allocating and zeroing one as large. Zeroed before the first replay;
 * freed with replay_keep_free(). Decisions depend on neither.
 */
struct replay_keep {
	size_t objects;
	struct u64map table;
};

void replay_keep_free(struct replay_keep *k);

/* Replays @r (from its start) into a new instance of @p with @params,
 * the domain's state starting with what @keep holds and leaving there
 * what the next replay may start with (NULL: a fresh state, nothing
 * kept). 0, or an error with @err filled (trace unreadable, plugin of
 * another domain, plugin failing to start). */
int replay_run(struct trace_reader *r, struct wave_plugin *p, const struct wave_params *params,
	       struct replay_keep *keep, replay_decision_fn fn, void *user,
	       struct replay_result *res, struct wave_error *err);

/* ---- per-domain models ------------------------------------------------- */

#define REPLAY_FIGURES_MAX 24

/* Quality figures: names, units and values, in the order to print. */
struct replay_figures {
	unsigned n;
	const char *name[REPLAY_FIGURES_MAX];
	const char *unit[REPLAY_FIGURES_MAX];
	double value[REPLAY_FIGURES_MAX];
};

/*
 * struct replay_model - what a domain adds for replay.
 * @quality: figures of the trace's workload run by the domain's model of
 *           the host against @p (or, @p NULL, of the trace as recorded).
 * @chrome:  writes the trace as Chrome/Perfetto JSON trace events (the
 *           "traceEvents" array's members, each preceded by ",\n" but the
 *           first) to @f.
 * @describe: optional; the message's fields as JSON members
 *           ("\"task\":5,\"cpu\":1"), for JSON lines; 0 or -1 when it
 *           does not decode.
 */
struct replay_model {
	int (*quality)(struct trace_reader *r, struct wave_plugin *p,
		       const struct wave_params *params, struct replay_figures *out,
		       struct wave_error *err);
	int (*chrome)(struct trace_reader *r, FILE *f, struct wave_error *err);
	int (*describe)(const struct trace_meta *meta, const struct wave_msg *m, char *buf,
			size_t size);
};

/* By enum wave_domain; NULL where a domain has no model yet (defined in
 * lib/domains/replay_models.c). */
extern const struct replay_model *const replay_models[WAVE_DOMAIN_COUNT];

/* The host's setup message of @r's domain into @out: the header's, else
 * the first recorded as an event (the reader is rewound after). 0, or
 * -EBADMSG when the trace has none. */
int replay_find_setup(struct trace_reader *r, struct wave_msg *out);

/* Adds a figure to @f (ignored past REPLAY_FIGURES_MAX). */
void replay_figure(struct replay_figures *f, const char *name, const char *unit, double v);

/* ---- for the models ---------------------------------------------------- */

/* One direction of a model's channel between its host and the agent's
 * state model: messages delivered in the order sent, none lost. */
struct replay_q {
	struct wave_msg *m;
	size_t head, len, cap;
};

/* 0 or -ENOMEM. */
int replay_q_push(struct replay_q *q, const struct wave_msg *m);
/* The oldest message into @m: true, or false when empty. */
bool replay_q_pop(struct replay_q *q, struct wave_msg *m);
void replay_q_free(struct replay_q *q);
/* Starts plugin @p of a model's agent on the domain's state model
 * @state, with @params; its decisions go into @to_host. 0, or -errno with
 * @err saying why. */
int replay_plugin_start(struct wave_plugin *p, const struct wave_params *params,
			const void *state, struct replay_q *to_host, struct wave_plugin_ctx **ctx,
			struct wave_error *err);

/* A model's host and agent exchanging what they queued until both are
 * quiet: @to_agent's messages go to @agent (the state model; its refusals
 * it counts itself) before @to_host's to @host, one at a time, each
 * possibly queueing more. 0 once both queues are empty; what @host
 * returned below 0; -ELOOP after @max messages (the policy and the host
 * never settle). */
int replay_settle(struct replay_q *to_agent, struct replay_q *to_host,
		  void (*agent)(void *user, const struct wave_msg *m),
		  int (*host)(void *user, const struct wave_msg *m), void *user, unsigned max);

/* ---- for the exports ---------------------------------------------------- */

/* Chrome/Perfetto trace events being written to @f: the host is process
 * @pid, each of its resources (CPUs, tiers, workers) a track. */
struct replay_chrome {
	FILE *f;
	bool first;
	uint64_t pid;
};

/* Before each event: the separator from the one before. */
void replay_chrome_next(struct replay_chrome *c);
/* Names the host's process ("host ID (DOMAIN, PLUGIN)"), then track @tid. */
void replay_chrome_process(struct replay_chrome *c, const struct trace_meta *meta,
			   const char *domain);
void replay_chrome_track(struct replay_chrome *c, uint32_t tid, const char *name);

/* Chrome's time unit. */
static inline double replay_us(uint64_t ns)
{
	return (double)ns / 1e3;
}

/* Appends to @buf at @len; the new length, or -1 once it does not fit. */
int replay_put(char *buf, size_t size, int len, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* A histogram of latencies in ns for quantiles without keeping samples:
 * 1/32 of a power of two per bucket (3 % at most off). */
#define REPLAY_HIST_SUB 32
struct replay_hist {
	uint64_t n[64 * REPLAY_HIST_SUB];
	uint64_t count, max;
	double sum;
};

void replay_hist_add(struct replay_hist *h, uint64_t ns, uint64_t weight);
/* The @q quantile (0..1), the upper edge of its bucket (max for 1.0). */
uint64_t replay_hist_quantile(const struct replay_hist *h, double q);

#endif /* WAVE_REPLAY_REPLAY_H */
