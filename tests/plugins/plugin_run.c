/* SPDX-License-Identifier: MIT */
/*
 * plugin_run: load one plugin file and drive it with a test context, for
 * plugins built outside this tree (the install test).
 *
 *   plugin_run <wave_name.so> [<params JSON>] <type> [<type> ...]   custom
 *   plugin_run <wave_name.so> [<params JSON>] <cpus> <tasks>         sched
 *
 * A custom plugin gets one event of each given type (decimal or 0x hex;
 * payload u64[0] = its position); every decision it emits is printed as
 * "decision type payload.u64[0] payload.u32[2]".
 *
 * A sched plugin gets a host of @cpus CPUs on which @tasks runnable tasks
 * (ids 1..@tasks) arrive at once. The host commits each RUN the plugin
 * decides (unless the task's sequence number moved on), and the task then
 * runs to its end at once: its CPU is free again. Every decision is printed
 * as "decision run <task> <cpu>" in the order made; other decisions are not
 * driven and fail the run, and so does a task that never runs.
 *
 * Then the counters are printed. Exit status 0 when the plugin loaded and
 * accepted every event (and, for sched, ran every task once).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wave/config.h>
#include <wave/error.h>
#include <wave/plugin.h>
#include <wave/plugin_loader.h>
#include <wave/sched_msg.h>
#include <wave/sched_state.h>

static int print_decisions(void *user, const struct wave_msg *msgs, unsigned n)
{
	(void)user;
	for (unsigned i = 0; i < n; i++)
		printf("decision 0x%04x %llu %u\n", msgs[i].type,
		       (unsigned long long)msgs[i].payload.u64[0], msgs[i].payload.u32[2]);
	return (int)n;
}

static int fail(const struct wave_error *err)
{
	char text[1024];

	wave_error_format(err, text, sizeof(text));
	fprintf(stderr, "plugin_run: %s\n", text);
	return 1;
}

static int custom_events(struct wave_plugin_ctx *ctx, int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		struct wave_msg ev = { .type = (uint16_t)strtoul(argv[i], NULL, 0) };
		int ret;

		ev.payload.u64[0] = (uint64_t)i;
		if ((ret = wave_plugin_ctx_event(ctx, &ev)) < 0) {
			fprintf(stderr, "plugin_run: event %s: %s\n", argv[i], wave_strerror(ret));
			return 1;
		}
	}
	return 0;
}

static void print_counters(const struct wave_plugin_ctx *ctx)
{
	const char *name;
	uint64_t v;

	for (unsigned i = 0; wave_plugin_ctx_counter(ctx, i, &name, &v) == 0; i++)
		printf("counter %s %llu\n", name, (unsigned long long)v);
}

static int drive_custom(struct wave_plugin *p, const struct wave_params *params, int argc,
			char **argv)
{
	struct wave_plugin_ctx_opts o;
	struct wave_plugin_ctx *ctx;
	struct wave_error err;
	int ret;

	wave_plugin_ctx_opts_init(&o);
	o.params = params;
	o.emit = print_decisions;
	if (wave_plugin_ctx_create(p, &o, &ctx, &err) < 0)
		return fail(&err);
	printf("loaded %s %s\n", wave_plugin_desc(p)->name, wave_plugin_desc(p)->version);
	ret = custom_events(ctx, argc, argv);
	print_counters(ctx);
	wave_plugin_ctx_destroy(ctx);
	return ret;
}

/* The simulated sched host: decisions waiting for the host, in order. */
#define SCHED_MAX_TASKS 1024u
#define SCHED_MAX_PENDING SCHED_MAX_TASKS /* one decision in flight per task */

struct sched_host {
	uint32_t n_cpus;
	uint32_t n_tasks;
	uint64_t now_ns;
	uint64_t seq[SCHED_MAX_TASKS + 1]; /* the host's sequence number of each task */
	uint32_t runs[SCHED_MAX_TASKS + 1];
	struct wave_sched_msg pending[SCHED_MAX_PENDING];
	size_t head, len;
	int bad; /* a decision this host does not drive */
};

static int sched_record(void *user, const struct wave_msg *msgs, unsigned n)
{
	struct sched_host *h = user;
	unsigned i;

	for (i = 0; i < n && h->len < SCHED_MAX_PENDING; i++) {
		struct wave_sched_msg *d = &h->pending[(h->head + h->len) % SCHED_MAX_PENDING];

		if (wave_sched_msg_decode(&msgs[i], h->n_cpus, d) < 0 ||
		    d->type != WAVE_SCHED_RUN) {
			fprintf(stderr, "plugin_run: decision 0x%04x is not driven here\n",
				msgs[i].type);
			h->bad = 1;
			return -EINVAL;
		}
		printf("decision run %llu %u\n", (unsigned long long)d->task, d->cpu);
		h->len++;
	}
	return (int)i;
}

/* Applies @m (filled in with the clock) to the state; 0 or 1 (failed). */
static int sched_send(struct sched_host *h, struct wave_sched_state *st,
		      struct wave_plugin_ctx *ctx, struct wave_sched_msg *m)
{
	struct wave_msg wire;
	int ret;

	m->now_ns = ++h->now_ns;
	ret = wave_sched_msg_encode(m, h->n_cpus, &wire);
	if (ret == 0)
		ret = wave_sched_state_apply(st, ctx, &wire);
	if (ret < 0) {
		fprintf(stderr, "plugin_run: %s of task %llu: %s\n",
			wave_sched_msg_type_name(m->type), (unsigned long long)m->task,
			wave_strerror(ret));
		return 1;
	}
	return h->bad;
}

/*
 * Commits the oldest pending RUN and runs its task to its end. A task's
 * sequence number moves only when it ends, after its commit, and the state
 * sends no decision on an old one, so every RUN commits.
 */
static int sched_step(struct sched_host *h, struct wave_sched_state *st,
		      struct wave_plugin_ctx *ctx)
{
	struct wave_sched_msg d = h->pending[h->head];
	struct wave_sched_msg m = { .type = WAVE_SCHED_OUTCOME, .decision = d.type,
				    .result = WAVE_SCHED_COMMITTED, .task = d.task,
				    .seq = d.seq, .cpu = d.cpu };

	h->head = (h->head + 1) % SCHED_MAX_PENDING;
	h->len--;
	if (sched_send(h, st, ctx, &m))
		return 1;
	h->runs[d.task]++;
	m = (struct wave_sched_msg){ .type = WAVE_SCHED_TASK_DEAD, .task = d.task,
				     .seq = ++h->seq[d.task], .cpu = d.cpu };
	return sched_send(h, st, ctx, &m);
}

static int drive_sched(struct wave_plugin *p, const struct wave_params *params, int argc,
		       char **argv)
{
	static struct sched_host h;
	struct wave_sched_state *st = NULL;
	struct wave_plugin_ctx_opts o;
	struct wave_plugin_ctx *ctx;
	struct wave_error err;
	int ret = 1;

	if (argc != 2) {
		fprintf(stderr, "plugin_run: a sched plugin takes <cpus> <tasks>\n");
		return 2;
	}
	h.n_cpus = (uint32_t)strtoul(argv[0], NULL, 0);
	h.n_tasks = (uint32_t)strtoul(argv[1], NULL, 0);
	if (h.n_tasks > SCHED_MAX_TASKS || wave_sched_state_create(h.n_cpus, &st) < 0) {
		fprintf(stderr, "plugin_run: bad <cpus> %s or <tasks> %s\n", argv[0], argv[1]);
		return 2;
	}
	wave_plugin_ctx_opts_init(&o);
	o.params = params;
	o.emit = sched_record;
	o.emit_user = &h;
	o.domain_state = st;
	if (wave_plugin_ctx_create(p, &o, &ctx, &err) < 0) {
		wave_sched_state_destroy(st);
		return fail(&err);
	}
	printf("loaded %s %s\n", wave_plugin_desc(p)->name, wave_plugin_desc(p)->version);
	for (uint32_t id = 1; id <= h.n_tasks; id++) {
		struct wave_sched_msg m = { .type = WAVE_SCHED_TASK_NEW, .task = id,
					    .seq = h.seq[id] = 1, .cpu = WAVE_SCHED_CPU_NONE,
					    .state = WAVE_SCHED_RUNNABLE };

		if (sched_send(&h, st, ctx, &m))
			goto out;
	}
	while (h.len)
		if (sched_step(&h, st, ctx))
			goto out;
	ret = 0;
	for (uint32_t id = 1; id <= h.n_tasks; id++) {
		if (h.runs[id] != 1) {
			fprintf(stderr, "plugin_run: task %u ran %u times, not once\n", id,
				h.runs[id]);
			ret = 1;
		}
	}
out:
	print_counters(ctx);
	wave_plugin_ctx_destroy(ctx);
	wave_sched_state_destroy(st);
	return ret;
}

int main(int argc, char **argv)
{
	struct wave_params *params = NULL;
	struct wave_plugin *p;
	struct wave_error err;
	int first = 2, ret;

	if (argc < 3) {
		fprintf(stderr,
			"usage: plugin_run <wave_name.so> [<params JSON>] <type>...\n"
			"       plugin_run <wave_name.so> [<params JSON>] <cpus> <tasks>\n");
		return 2;
	}
	if (wave_plugin_load(argv[1], NULL, &p, &err) < 0)
		return fail(&err);
	if (argv[2][0] == '{' && wave_params_parse(argv[first++], NULL, &params, &err) < 0) {
		wave_plugin_unload(p);
		return fail(&err);
	}
	if (wave_plugin_desc(p)->domain == WAVE_DOMAIN_SCHED)
		ret = drive_sched(p, params, argc - first, argv + first);
	else
		ret = drive_custom(p, params, argc - first, argv + first);
	wave_params_free(params);
	wave_plugin_unload(p);
	return ret;
}
