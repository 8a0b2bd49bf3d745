/* SPDX-License-Identifier: MIT */
/*
 * Traces as tests: small traces recorded by wave-agentd serving the
 * taskpool example (tests/trace/traces, made by record_traces.sh) replayed
 * into every built-in sched policy.
 *  - Into the plugin it was recorded with, a trace gives back exactly the
 *    decisions that were recorded.
 *  - The same trace and plugin give the same decisions, byte for byte.
 *  - The trace's workload on the simulated host gives each policy's
 *    expected quality figures: a change that makes a policy worse (or
 *    better: then update the table) fails here.
 *  - A plugin of another domain is refused, naming both domains.
 *  - Nothing in recording or replay knows the domain: a custom-domain host
 *    served by least_loaded in an agent of this process is recorded, and
 *    its trace replayed into least_loaded gives back its decisions.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <wave/wave.h>

#include "check_run.h"
#include "replay/replay.h"
#include "session/session_util.h"

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const char *const traces[] = { "fifo_2cpu", "shinjuku_2cpu" };
static const char *const policies[] = { "sched_fifo", "sched_shinjuku", "sched_edf" };

static struct trace_reader *open_trace(const char *name)
{
	char path[512];
	struct trace_reader *r;
	struct wave_error err;

	snprintf(path, sizeof(path), "%s/%s.trace", TRACE_DIR, name);
	ck_assert_msg(trace_reader_open(path, &r, &err) == 0, "%s: %s", path, err.text);
	return r;
}

static struct wave_plugin *load(const char *name)
{
	const char *dirs[] = { WAVE_PLUGIN_BUILD_DIR };
	struct wave_plugin_load_opts o;
	struct wave_plugin *p;
	struct wave_error err;

	wave_plugin_load_opts_init(&o);
	o.search_path = dirs;
	o.n_search_path = 1;
	o.flags = WAVE_PLUGIN_F_NO_ENV | WAVE_PLUGIN_F_NO_DEFAULT;
	ck_assert_msg(wave_plugin_load(name, &o, &p, &err) == 0, "%s: %s", name, err.text);
	return p;
}

/* The parameters a trace was recorded with, for its own plugin. */
static struct wave_params *params_of(struct trace_reader *r, const char *plugin)
{
	const struct trace_meta *m = trace_reader_meta(r);
	struct wave_params *params;

	ck_assert_int_eq(wave_params_parse(strcmp(plugin, m->plugin) ? "{}" : m->params, NULL,
					   &params, NULL), 0);
	return params;
}

START_TEST(same_plugin_same_decisions)
{
	struct trace_reader *r = open_trace(traces[_i]);
	const struct trace_meta *m = trace_reader_meta(r);
	struct wave_plugin *p = load(m->plugin);
	struct wave_params *params = params_of(r, m->plugin);
	struct replay_result res;
	struct wave_error err;

	ck_assert_msg(replay_run(r, p, params, NULL, NULL, NULL, &res, &err) == 0, "%s", err.text);
	ck_assert_uint_gt(res.events, 100);
	ck_assert_uint_gt(res.decisions_rec, 10);
	ck_assert_uint_eq(res.decisions_new, res.decisions_rec);
	ck_assert_msg(res.differing_events == 0, "%s: %llu events decided differently",
		      traces[_i], (unsigned long long)res.differing_events);
	wave_params_free(params);
	wave_plugin_unload(p);
	trace_reader_close(r);
}
END_TEST

struct kept {
	uint8_t *bytes;
	size_t len, cap;
};

static void keep(void *user, enum trace_kind k, uint64_t t, const struct wave_msg *m)
{
	struct kept *kp = user;

	if (kp->len + 1 + 8 + sizeof(*m) > kp->cap) {
		kp->cap = kp->cap ? kp->cap * 2 : 1 << 16;
		kp->bytes = realloc(kp->bytes, kp->cap);
		ck_assert_ptr_nonnull(kp->bytes);
	}
	kp->bytes[kp->len++] = (uint8_t)k;
	memcpy(kp->bytes + kp->len, &t, 8);
	kp->len += 8;
	memcpy(kp->bytes + kp->len, m, sizeof(*m));
	kp->len += sizeof(*m);
}

/* Every trace into every policy, three times: the same bytes, the second
 * and third times with the domain's state starting with the task table
 * the one before left (wave-replay --repeat). */
START_TEST(deterministic)
{
	struct trace_reader *r = open_trace(traces[_i / N_OF(policies)]);
	struct wave_plugin *p = load(policies[_i % N_OF(policies)]);
	struct wave_params *params = params_of(r, policies[_i % N_OF(policies)]);
	struct replay_keep kept = { 0 };
	struct replay_result res[3];
	struct kept k[3] = { { 0 }, { 0 }, { 0 } };
	struct wave_error err;
	size_t mask = 0;

	for (int i = 0; i < 3; i++) {
		ck_assert_msg(replay_run(r, p, params, &kept, keep, &k[i], &res[i], &err) == 0, "%s",
			      err.text);
		/* The task table left for the next replay: empty, sized for
		 * what it held, and as large every time (not grown: the next
		 * replay started with it; a multiplier drawn again may move it
		 * into new slots of the same number). */
		ck_assert_ptr_nonnull(kept.table.slots);
		ck_assert_uint_eq(u64map_count(&kept.table), 0);
		ck_assert_uint_eq(kept.objects, res[i].objects);
		ck_assert_uint_ge(u64map_room(&kept.table), res[0].objects);
		if (i)
			ck_assert_uint_eq(kept.table.mask, mask);
		mask = kept.table.mask;
		for (size_t s = 0; s <= kept.table.mask; s++)
			ck_assert_uint_eq(u64map_key_at(&kept.table, s), 0);
	}
	replay_keep_free(&kept);
	ck_assert_ptr_null(kept.table.slots);
	ck_assert_uint_gt(res[0].objects, 0);
	ck_assert_uint_eq(res[1].objects, res[0].objects);
	ck_assert_uint_eq(res[2].objects, res[0].objects);
	ck_assert_uint_eq(res[0].digest, res[2].digest);
	ck_assert_uint_eq(k[1].len, k[2].len);
	ck_assert_mem_eq(k[1].bytes, k[2].bytes, k[1].len);
	free(k[2].bytes);
	/* Another policy than the recorded one stops early: the recorded
	 * outcomes answer the recorded decisions, not its own. */
	ck_assert_uint_gt(res[0].decisions_new, 0);
	ck_assert_uint_eq(res[0].decisions_new, res[1].decisions_new);
	ck_assert_uint_eq(res[0].digest, res[1].digest);
	ck_assert_uint_eq(k[0].len, k[1].len);
	ck_assert_mem_eq(k[0].bytes, k[1].bytes, k[0].len);
	free(k[0].bytes);
	free(k[1].bytes);
	wave_params_free(params);
	wave_plugin_unload(p);
	trace_reader_close(r);
}
END_TEST

/* Expected quality figures of each trace's workload under each policy on
 * the simulated host (the figures wave-replay prints). */
struct expect {
	const char *trace, *policy;
	double tasks, commits, wait_mean_us, wait_p99_us, turnaround_us, makespan_ms;
};

static const struct expect expected[] = {
#include "traces/expected.inc"
};

static double figure(const struct replay_figures *f, const char *name)
{
	for (unsigned i = 0; i < f->n; i++)
		if (strcmp(f->name[i], name) == 0)
			return f->value[i];
	ck_abort_msg("no figure %s", name);
	return 0;
}

/* Within 2 % (an exact simulation: only a change of behaviour moves it). */
static void near(const struct expect *e, const char *what, double got, double want)
{
	ck_assert_msg(fabs(got - want) <= 0.02 * fabs(want) + 1e-9,
		      "%s on %s: %s %.3f, expected %.3f", e->policy, e->trace, what, got, want);
}

START_TEST(quality)
{
	const struct expect *e = &expected[_i];
	struct trace_reader *r = open_trace(e->trace);
	struct wave_plugin *p = load(e->policy);
	struct wave_params *params = params_of(r, e->policy);
	struct replay_figures f;
	struct wave_error err;

	ck_assert_msg(replay_models[WAVE_DOMAIN_SCHED]->quality(r, p, params, &f, &err) == 0, "%s",
		      err.text);
	near(e, "tasks", figure(&f, "tasks"), e->tasks);
	ck_assert_msg(figure(&f, "finished") == e->tasks, "%s on %s: not every task finished",
		      e->policy, e->trace);
	ck_assert_msg(figure(&f, "model_errors") == 0, "%s on %s: the model refused messages",
		      e->policy, e->trace);
	near(e, "commits", figure(&f, "commits"), e->commits);
	near(e, "wait_mean", figure(&f, "wait_mean"), e->wait_mean_us);
	near(e, "wait_p99", figure(&f, "wait_p99"), e->wait_p99_us);
	near(e, "turnaround_mean", figure(&f, "turnaround_mean"), e->turnaround_us);
	near(e, "makespan", figure(&f, "makespan"), e->makespan_ms);
	wave_params_free(params);
	wave_plugin_unload(p);
	trace_reader_close(r);
}
END_TEST

/* The host's time in a task's sched event, decoded into @d; NULL for
 * another message. */
static uint64_t *task_time(struct wave_msg *m, struct wave_sched_msg *d)
{
	return wave_sched_msg_decode(m, WAVE_SCHED_MAX_CPUS, d) == 0 && d->task && d->now_ns
		       ? &d->now_ns
		       : NULL;
}

/* A trace whose times claim far more than its records hold (its last
 * task event, and what follows it, moved 10^15 ns later: a hostile or
 * broken file) stops the simulated host after a bounded number of steps,
 * with an error that says why, instead of ticking through the span. */
START_TEST(stretched_trace_bounded)
{
	struct trace_reader *r = open_trace(traces[1]), *s;
	struct trace_writer_opts o = { NULL, 1u << 24, 0 };
	struct wave_plugin *p = load("sched_fifo");
	struct trace_meta meta = *trace_reader_meta(r);
	struct replay_figures f;
	struct trace_writer *w;
	struct wave_error err;
	struct trace_rec rec;
	char path[64];
	struct wave_sched_msg d;
	size_t n = 0, last = 0, k = 0;
	uint64_t *t;
	int ret;

	while ((ret = trace_reader_next(r, &rec, &err)) == 1)
		if (rec.kind == TRACE_EVENT && task_time(&rec.msg, &d))
			last = n++;
		else
			n++;
	ck_assert_int_eq(ret, 0);
	trace_reader_rewind(r);
	snprintf(path, sizeof(path), "/tmp/wave-check-stretched-%d.trace", (int)getpid());
	o.path = path;
	ck_assert_msg(trace_writer_open(&o, &meta, &w, &err) == 0, "%s", err.text);
	while (trace_reader_next(r, &rec, &err) == 1) {
		uint64_t later = k++ >= last ? 1000000000000000ull : 0;

		if (later && rec.kind == TRACE_EVENT && (t = task_time(&rec.msg, &d))) {
			*t += later;
			ck_assert_int_eq(wave_sched_msg_encode(&d, WAVE_SCHED_MAX_CPUS, &rec.msg), 0);
		}
		trace_put(w, rec.kind, rec.t_ns + later, &rec.msg);
	}
	trace_writer_close(w);
	ck_assert_int_eq(trace_reader_open(path, &s, &err), 0);
	unlink(path);
	ret = replay_models[WAVE_DOMAIN_SCHED]->quality(s, p, NULL, &f, &err);
	ck_assert_int_eq(ret, -E2BIG);
	ck_assert_msg(strstr(err.text, "the simulated host stopped after"), "%s", err.text);
	trace_reader_close(s);
	wave_plugin_unload(p);
	trace_reader_close(r);
}
END_TEST

START_TEST(other_domain_refused)
{
	struct trace_reader *r = open_trace(traces[0]);
	struct wave_plugin *p = load("least_loaded");
	struct replay_result res;
	struct wave_error err;

	ck_assert_int_eq(replay_run(r, p, NULL, NULL, NULL, NULL, &res, &err), -EINVAL);
	ck_assert_msg(strstr(err.text, "plugin least_loaded is of domain custom, the trace of "
				       "domain sched"), "%s", err.text);
	wave_plugin_unload(p);
	trace_reader_close(r);
}
END_TEST

static bool all_answered(const struct app *app)
{
	return app->answered >= 300;
}

/* The hints least_loaded's tick (every 10 ms) sent, from the agent's
 * statistics of its host ("counters": {..., "hints": N, ...}). */
static unsigned long hints_sent(struct wave_agent *a)
{
	unsigned long n = 0;
	char *json, *at;

	ck_assert_int_eq(wave_agent_stats_json(a, &json), 0);
	if ((at = strstr(json, "\"hints\":")))
		n = strtoul(at + 8, NULL, 10);
	free(json);
	return n;
}

static void rm_dir(const char *dir)
{
	struct dirent *e;
	DIR *d = opendir(dir);

	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.')
			unlinkat(dirfd(d), e->d_name, 0);
	if (d)
		closedir(d);
	rmdir(dir);
}

START_TEST(custom_domain)
{
	char dir[] = "/tmp/wave-check-replay-XXXXXX", extra[160], uri[96], pat[96];
	struct wave_host_opts o;
	struct replay_result res;
	struct wave_error err;
	struct wave_params *params;
	struct trace_reader *r;
	struct wave_plugin *p;
	struct tagent t;
	struct app app;
	glob_t g;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(extra, sizeof(extra), "\"record\": { \"path\": \"%s\" },", dir);
	tagent_start(&t, write_config(dir, extra, "{ \"workers\": 4 }"));
	app_opts(&app, &o);
	snprintf(uri, sizeof(uri), "shm://%s/agent.sock", dir);
	ck_assert_int_eq(app_connect(&app, uri, &o, &err, true), 0);
	for (unsigned k = 0; k < 300; k++) {
		if (k % 16 == 0)
			app_load(&app, LOAD_KEY_BASE + k % 4, k % 4, k * 7 % 50);
		app_ask(&app, k);
	}
	app_poll_until(&app, all_answered);
	/* Ticks too are recorded, and replayed where they ran. */
	while (hints_sent(t.a) < 2)
		ck_assert_int_ge(wave_host_poll(app.h, WAVE_MS(1)), 0);
	ck_assert_uint_eq(app.agent_decisions, 300);
	wave_host_close(app.h);
	tagent_stop(&t); /* the trace is written out as the host goes */

	snprintf(pat, sizeof(pat), "%s/*-host1-custom.trace", dir);
	ck_assert_int_eq(glob(pat, 0, NULL, &g), 0);
	ck_assert_int_eq(trace_reader_open(g.gl_pathv[0], &r, &err), 0);
	globfree(&g);
	ck_assert_str_eq(trace_reader_meta(r)->plugin, "least_loaded");
	ck_assert_str_eq(trace_reader_meta(r)->params, "{\"workers\":4}");
	p = load("least_loaded");
	ck_assert_int_eq(wave_params_parse(trace_reader_meta(r)->params, NULL, &params, NULL), 0);
	ck_assert_msg(replay_run(r, p, params, NULL, NULL, NULL, &res, &err) == 0, "%s", err.text);
	ck_assert_uint_eq(res.events, 300 + 300 / 16 + 1);
	ck_assert_uint_ge(res.ticks, 2);
	ck_assert_uint_ge(res.decisions_rec, 300);
	ck_assert_uint_eq(res.decisions_new, res.decisions_rec);
	ck_assert_uint_eq(res.differing_events, 0);
	wave_params_free(params);
	wave_plugin_unload(p);
	trace_reader_close(r);
	rm_dir(dir);
}
END_TEST

static bool one_answered(const struct app *app)
{
	return app->answered >= 1;
}

/* Whether @dir holds @name. */
static bool has_file(const char *dir, const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return access(path, F_OK) == 0;
}

/* The record directory keeps record.max_files traces: before a new one
 * starts, the oldest go (rotated ones too); other files stay. */
START_TEST(record_max_files)
{
	static const char *const old[] = { "wave-1-host9-custom.trace.2", "wave-1-host9-custom.trace.1",
					   "wave-1-host9-custom.trace", "wave-2-host1-sched.trace",
					   "wave-2-host2-sched.trace" };
	char dir[] = "/tmp/wave-check-replay-XXXXXX", extra[200], uri[96], path[160];
	struct wave_host_opts o;
	struct tagent t;
	struct app app;
	glob_t g;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	/* Five traces of earlier agents, oldest first, and a file of the user's. */
	for (unsigned i = 0; i < N_OF(old); i++) {
		struct timespec ts[2] = { { 1000000000 + i, 0 }, { 1000000000 + i, 0 } };
		int fd;

		snprintf(path, sizeof(path), "%s/%s", dir, old[i]);
		ck_assert_int_ge(fd = open(path, O_CREAT | O_WRONLY, 0600), 0);
		ck_assert_int_eq(futimens(fd, ts), 0);
		close(fd);
	}
	snprintf(path, sizeof(path), "%s/notes.txt", dir);
	close(open(path, O_CREAT | O_WRONLY, 0600));
	snprintf(extra, sizeof(extra), "\"record\": { \"path\": \"%s\", \"max_files\": 3 },", dir);
	tagent_start(&t, write_config(dir, extra, "{ \"workers\": 4 }"));
	app_opts(&app, &o);
	snprintf(uri, sizeof(uri), "shm://%s/agent.sock", dir);
	ck_assert_int_eq(app_connect(&app, uri, &o, NULL, true), 0);
	app_ask(&app, 1);
	app_poll_until(&app, one_answered);
	wave_host_close(app.h);
	tagent_stop(&t);
	snprintf(path, sizeof(path), "%s/wave-*.trace*", dir);
	ck_assert_int_eq(glob(path, 0, NULL, &g), 0);
	ck_assert_uint_eq(g.gl_pathc, 3);
	globfree(&g);
	ck_assert(has_file(dir, "wave-2-host1-sched.trace"));
	ck_assert(has_file(dir, "wave-2-host2-sched.trace"));
	ck_assert(!has_file(dir, "wave-1-host9-custom.trace"));
	ck_assert(has_file(dir, "notes.txt"));
	rm_dir(dir);
}
END_TEST

/* A recording that could never write fails the agent's start, naming the
 * key. */
START_TEST(record_path_checked)
{
	static const char text[] = "{\"listen\": [\"shm:///tmp/wave-check-replay-none.sock\"],"
				   " \"record\": {\"path\": \"/nonexistent/wave-traces\"}}";
	struct wave_config *cfg;
	struct wave_agent *a;
	struct wave_error err;

	ck_assert_int_eq(wave_config_parse(text, sizeof(text) - 1, NULL, &cfg, &err), 0);
	ck_assert_int_eq(wave_agent_create(cfg, &a, &err), -ENOENT);
	ck_assert_msg(strstr(err.text, "record.path /nonexistent/wave-traces"), "%s", err.text);
	wave_config_free(cfg);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("replay");
	TCase *tc = tcase_create("traces");

	tcase_add_loop_test(tc, same_plugin_same_decisions, 0, N_OF(traces));
	tcase_add_loop_test(tc, deterministic, 0, N_OF(traces) * N_OF(policies));
	tcase_add_loop_test(tc, quality, 0, N_OF(expected));
	tcase_add_test(tc, other_domain_refused);
	tcase_add_test(tc, stretched_trace_bounded);
	tcase_add_test(tc, custom_domain);
	tcase_add_test(tc, record_path_checked);
	tcase_add_test(tc, record_max_files);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return wave_check_run(suite());
}
