/* SPDX-License-Identifier: MIT */
/*
 * The sched policies (wave_sched_fifo.so, wave_sched_shinjuku.so,
 * wave_sched_edf.so), loaded from the build tree and driven by a simulated
 * host (sched_sim.c) through the real state model, with no channel and no
 * threads: each policy's ordering, Shinjuku's time slice, and for every
 * policy a random workload checked after each step (all CPUs busy while
 * tasks wait, the host and the agent agree, no decision aborted, which
 * also means no task was ever run twice at once).
 */
#include <errno.h>
#include <string.h>

#include <check.h>
#include <wave/config.h>
#include <wave/plugin_loader.h>
#include <wave/sched_msg.h>

#include "check_run.h"
#include "domains/sched/sched_sim.h"

static struct wave_plugin *load(const char *name)
{
	const char *dirs[] = { WAVE_PLUGIN_BUILD_DIR };
	struct wave_plugin_load_opts o;
	struct wave_plugin *p = NULL;
	struct wave_error err;

	wave_plugin_load_opts_init(&o);
	o.search_path = dirs;
	o.n_search_path = 1;
	o.flags = WAVE_PLUGIN_F_NO_ENV | WAVE_PLUGIN_F_NO_DEFAULT;
	o.domain = WAVE_DOMAIN_SCHED;
	ck_assert_msg(wave_plugin_load(name, &o, &p, &err) == 0, "%s", err.text);
	return p;
}

/* A simulation of @name with parameters @json (or NULL). */
static struct wave_plugin *start(struct sim *s, const char *name, uint32_t cpus, uint64_t tasks,
				 const char *json)
{
	struct wave_plugin *p = load(name);
	struct wave_params *params = NULL;

	if (json)
		ck_assert_int_eq(wave_params_parse(json, NULL, &params, NULL), 0);
	ck_assert_int_eq(sim_create(s, cpus, tasks, p, params), 0);
	wave_params_free(params);
	ck_assert_int_eq(sim_log(s, 4096), 0);
	return p;
}

static void stop(struct sim *s, struct wave_plugin *p)
{
	ck_assert_int_eq(sim_check(s), 0);
	sim_destroy(s);
	wave_plugin_unload(p);
}

static void expect_log(const struct sim *s, const uint64_t *ids, size_t n)
{
	ck_assert_uint_eq(s->log_len, n);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(s->log_task[i] == ids[i], "run %zu: task %llu, expected %llu", i,
			      (unsigned long long)s->log_task[i], (unsigned long long)ids[i]);
}

/* ---- FIFO --------------------------------------------------------------- */

START_TEST(fifo_order)
{
	static const uint64_t want[] = { 1, 2, 3, 4, 5, 5, 3, 1 };
	struct sim s;
	struct wave_plugin *p = start(&s, "sched_fifo", 1, 8, NULL);

	for (uint64_t id = 1; id <= 5; id++)
		ck_assert_int_eq(sim_new(&s, id, true, 0, 0), 0);
	ck_assert_int_eq(sim_check(&s), 0);
	/* Each blocks in turn: they ran in arrival order. */
	for (uint64_t id = 1; id <= 5; id++)
		ck_assert_int_eq(sim_block(&s, id), 0);
	/* Woken in the order 5, 3, 1 (5 runs at once): that order again. */
	ck_assert_int_eq(sim_wakeup(&s, 5), 0);
	ck_assert_int_eq(sim_wakeup(&s, 3), 0);
	ck_assert_int_eq(sim_wakeup(&s, 1), 0);
	ck_assert_int_eq(sim_block(&s, 5), 0);
	ck_assert_int_eq(sim_block(&s, 3), 0);
	expect_log(&s, want, sizeof(want) / sizeof(want[0]));
	stop(&s, p);
}
END_TEST

/* A yielding task goes behind the ones already waiting. */
START_TEST(fifo_yield_goes_last)
{
	static const uint64_t want[] = { 1, 2, 3, 1 };
	struct sim s;
	struct wave_plugin *p = start(&s, "sched_fifo", 1, 8, NULL);

	for (uint64_t id = 1; id <= 3; id++)
		ck_assert_int_eq(sim_new(&s, id, true, 0, 0), 0);
	ck_assert_int_eq(sim_yield(&s, 1), 0);
	ck_assert_int_eq(sim_exit(&s, 2), 0);
	ck_assert_int_eq(sim_block(&s, 3), 0);
	expect_log(&s, want, sizeof(want) / sizeof(want[0]));
	stop(&s, p);
}
END_TEST

/*
 * Prestaging ahead: with "prestage" on, a task arriving while the only CPU
 * is busy goes into that CPU's slot at once, and the host switches to it
 * when the running task stops, with no decision in between; with it off,
 * the slot stays empty and the CPU waits for a RUN.
 */
static void prestage_ahead(const char *name, const char *params, bool want_slot)
{
	static const uint64_t want[] = { 1, 2, 3 };
	struct sim s;
	struct wave_plugin *p = start(&s, name, 1, 8, params);

	ck_assert_int_eq(sim_new(&s, 1, true, 0, 0), 0);
	ck_assert_uint_eq(s.cpus[0].running, 1);
	ck_assert_int_eq(sim_new(&s, 2, true, 0, 0), 0);
	ck_assert_int_eq(sim_new(&s, 3, true, 0, 0), 0);
	ck_assert_uint_eq(s.cpus[0].slot_task, (want_slot ? 2 : 0));
	ck_assert_int_eq(sim_exit(&s, 1), 0);
	ck_assert_uint_eq(s.cpus[0].running, 2);
	/* Task 2 started from the slot; task 3 takes the slot behind it. */
	ck_assert_uint_eq(s.cpus[0].slot_task, (want_slot ? 3 : 0));
	ck_assert_int_eq(sim_exit(&s, 2), 0);
	ck_assert_int_eq(sim_exit(&s, 3), 0);
	expect_log(&s, want, sizeof(want) / sizeof(want[0]));
	stop(&s, p);
}

START_TEST(fifo_prestage_ahead)
{
	prestage_ahead("sched_fifo", "{\"prestage\": true}", true);
	prestage_ahead("sched_fifo", NULL, false); /* off by default */
}
END_TEST

START_TEST(shinjuku_prestage_ahead)
{
	prestage_ahead("sched_shinjuku", NULL, true); /* on by default */
	prestage_ahead("sched_shinjuku", "{\"prestage\": false}", false);
}
END_TEST

/* ---- Shinjuku ----------------------------------------------------------- */

static void shinjuku_slice(const char *params)
{
	static const uint64_t want[] = { 1, 2, 1 };
	struct sim s;
	struct wave_plugin *p = start(&s, "sched_shinjuku", 1, 8, params);

	ck_assert_int_eq(sim_new(&s, 1, true, 0, 0), 0); /* the long task */
	s.now += 10000;
	ck_assert_int_eq(sim_tick(&s, 0), 0);
	ck_assert_uint_eq(s.cpus[0].running, 1);
	/* Past its 50 us slice but nobody waits: it runs on. */
	s.now += 60000;
	ck_assert_int_eq(sim_tick(&s, 0), 0);
	ck_assert_uint_eq(s.cpus[0].running, 1);
	ck_assert_int_eq(sim_new(&s, 2, true, 0, 0), 0);
	ck_assert_uint_eq(s.cpus[0].running, 1); /* FCFS: no preemption on arrival */
	s.now += 1000;
	ck_assert_int_eq(sim_tick(&s, 0), 0);
	ck_assert_uint_eq(s.preempts_done, 1);
	ck_assert_uint_eq(s.cpus[0].running, 2);
	/* The short task finishes; the long one resumes where it was. */
	s.now += 5000;
	ck_assert_int_eq(sim_exit(&s, 2), 0);
	ck_assert_uint_eq(s.cpus[0].running, 1);
	ck_assert_uint_eq(s.tasks[0].ran_ns, 71000);
	ck_assert_uint_eq(s.tasks[0].runs, 2);
	expect_log(&s, want, sizeof(want) / sizeof(want[0]));
	stop(&s, p);
}

START_TEST(shinjuku_preempts_after_slice)
{
	shinjuku_slice("{\"slice_us\": 50}");
}
END_TEST

START_TEST(shinjuku_preempts_without_prestage)
{
	shinjuku_slice("{\"slice_us\": 50, \"prestage\": false}");
}
END_TEST

/* The preempted task goes to the tail, behind every waiting task. */
START_TEST(shinjuku_preempted_to_tail)
{
	static const uint64_t want[] = { 1, 2, 3, 1 };
	struct sim s;
	struct wave_plugin *p = start(&s, "sched_shinjuku", 1, 8, "{\"slice_us\": 10}");

	for (uint64_t id = 1; id <= 3; id++)
		ck_assert_int_eq(sim_new(&s, id, true, 0, 0), 0);
	s.now += 20000;
	ck_assert_int_eq(sim_tick(&s, 0), 0);
	ck_assert_int_eq(sim_block(&s, 2), 0);
	ck_assert_int_eq(sim_block(&s, 3), 0);
	expect_log(&s, want, sizeof(want) / sizeof(want[0]));
	stop(&s, p);
}
END_TEST

START_TEST(shinjuku_bad_slice)
{
	struct wave_plugin *p = load("sched_shinjuku");
	struct wave_params *params;
	struct sim s;

	ck_assert_int_eq(wave_params_parse("{\"slice_us\": 0}", NULL, &params, NULL), 0);
	ck_assert_int_eq(sim_create(&s, 1, 1, p, params), -WAVE_EPLUGIN);
	wave_params_free(params);
	sim_destroy(&s);
	wave_plugin_unload(p);
}
END_TEST

/* ---- EDF ---------------------------------------------------------------- */

START_TEST(edf_order)
{
	/* 9 occupies the CPU while the others arrive; no deadline goes last. */
	static const uint64_t want[] = { 9, 2, 3, 1, 4 };
	struct sim s;
	struct wave_plugin *p = start(&s, "sched_edf", 1, 16, "{\"preempt\": false}");

	ck_assert_int_eq(sim_new(&s, 9, true, WAVE_SCHED_HINT_DEADLINE, 1), 0);
	ck_assert_int_eq(sim_new(&s, 1, true, WAVE_SCHED_HINT_DEADLINE, 300000), 0);
	ck_assert_int_eq(sim_new(&s, 4, true, WAVE_SCHED_HINT_NONE, 0), 0);
	ck_assert_int_eq(sim_new(&s, 2, true, WAVE_SCHED_HINT_DEADLINE, 100000), 0);
	ck_assert_int_eq(sim_new(&s, 3, true, WAVE_SCHED_HINT_DEADLINE, 200000), 0);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(sim_block(&s, s.cpus[0].running), 0);
	expect_log(&s, want, sizeof(want) / sizeof(want[0]));
	stop(&s, p);
}
END_TEST

START_TEST(edf_tick_preempts_later_deadline)
{
	static const uint64_t want[] = { 1, 2, 1 };
	struct sim s;
	struct wave_plugin *p = start(&s, "sched_edf", 1, 8, NULL);

	ck_assert_int_eq(sim_new(&s, 1, true, WAVE_SCHED_HINT_DEADLINE, 900000), 0);
	ck_assert_int_eq(sim_new(&s, 2, true, WAVE_SCHED_HINT_DEADLINE, 100000), 0);
	ck_assert_int_eq(sim_tick(&s, 0), 0);
	ck_assert_uint_eq(s.cpus[0].running, 2);
	ck_assert_int_eq(sim_tick(&s, 0), 0); /* 2 is earliest: stays */
	ck_assert_uint_eq(s.cpus[0].running, 2);
	ck_assert_int_eq(sim_exit(&s, 2), 0);
	expect_log(&s, want, sizeof(want) / sizeof(want[0]));
	stop(&s, p);
}
END_TEST

/* ---- every policy ------------------------------------------------------- */

static const char *const policies[] = { "sched_fifo", "sched_shinjuku", "sched_edf" };

static uint64_t rnd(uint64_t *x)
{
	/* xorshift64: a fixed seed makes the workload the same on every run. */
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* One random host action on task @id, fitting its state. */
static void random_action(struct sim *s, uint64_t id, uint64_t r)
{
	const struct sim_task *t = &s->tasks[id - 1];

	if (!t->live) {
		ck_assert_int_eq(sim_new(s, id, r & 1, r & 2 ? WAVE_SCHED_HINT_DEADLINE : 0,
					 r & 2 ? s->now + (r >> 8) % 1000000 : 0),
				 0);
	} else if (t->state == WAVE_SCHED_BLOCKED) {
		ck_assert_int_eq(r % 16 ? sim_wakeup(s, id) : sim_exit(s, id), 0);
	} else if (t->state == WAVE_SCHED_RUNNING) {
		int ret = r % 3 == 0 ? sim_block(s, id) : r % 3 == 1 ? sim_yield(s, id)
			  : r % 8 == 2 ? sim_exit(s, id) : sim_tick(s, t->cpu);
		ck_assert_int_eq(ret, 0);
	}
}

START_TEST(busy_cpus_and_no_double_runs)
{
	const uint32_t cpus = 4;
	const uint64_t tasks = 64;
	uint64_t x = 0x9e3779b97f4a7c15u;
	struct sim s;
	struct wave_plugin *p = start(&s, policies[_i], cpus, tasks, "{}");

	for (int step = 0; step < 20000; step++) {
		uint64_t r = rnd(&x);

		s.now += r % 20000;
		random_action(&s, 1 + r % tasks, r >> 16);
		ck_assert_msg(sim_check(&s) == 0, "%s step %d: check %d", policies[_i], step,
			      sim_check(&s));
	}
	ck_assert_uint_gt(s.commits, 500);
	stop(&s, p);
}
END_TEST

/* The policy swapped at run time, mid-workload: the new one gets the
 * state replayed (running, waiting and blocked tasks) and carries on. */
START_TEST(swap_policy_at_run_time)
{
	uint64_t x = 12345;
	struct sim s;
	struct wave_plugin *p = start(&s, "sched_fifo", 4, 32, "{}");
	struct wave_plugin *q = load(policies[_i]);

	for (int step = 0; step < 2000; step++) {
		uint64_t r = rnd(&x);

		s.now += r % 20000;
		random_action(&s, 1 + r % 32, r >> 16);
		if (step == 1000) {
			/* Some tasks run, some wait in the old policy's queue. */
			ck_assert_int_eq(sim_swap(&s, q, NULL), 0);
		}
		ck_assert_int_eq(sim_check(&s), 0);
	}
	stop(&s, q);
	wave_plugin_unload(p);
}
END_TEST

/* A full channel leaves tasks queued; the next outcome drains them. */
START_TEST(full_channel_retried)
{
	struct sim s;
	struct wave_plugin *p = start(&s, policies[_i], 4, 8, "{}");

	s.emit_limit = 1;
	for (uint64_t id = 1; id <= 6; id++)
		ck_assert_int_eq(sim_new(&s, id, true, 0, 0), 0);
	ck_assert_uint_eq(s.n_running, 4);
	ck_assert_int_eq(sim_check(&s), 0);
	stop(&s, p);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sched_policies");
	TCase *tc = tcase_create("policies");
	int n = (int)(sizeof(policies) / sizeof(policies[0]));

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, fifo_order);
	tcase_add_test(tc, fifo_yield_goes_last);
	tcase_add_test(tc, fifo_prestage_ahead);
	tcase_add_test(tc, shinjuku_preempts_after_slice);
	tcase_add_test(tc, shinjuku_preempts_without_prestage);
	tcase_add_test(tc, shinjuku_prestage_ahead);
	tcase_add_test(tc, shinjuku_preempted_to_tail);
	tcase_add_test(tc, shinjuku_bad_slice);
	tcase_add_test(tc, edf_order);
	tcase_add_test(tc, edf_tick_preempts_later_deadline);
	tcase_add_loop_test(tc, busy_cpus_and_no_double_runs, 0, n);
	tcase_add_loop_test(tc, full_channel_retried, 0, n);
	tcase_add_loop_test(tc, swap_policy_at_run_time, 0, n);
	suite_add_tcase(s, tc);
	return wave_check_run(s);
}
