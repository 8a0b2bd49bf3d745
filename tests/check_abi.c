/* SPDX-License-Identifier: MIT */
/*
 * The public structures' sizes, as a program built against these headers
 * sees them, checked against the sizes libwave 0.1 shipped with.
 *
 * A structure without a size field is allocated by the caller and filled
 * (or read) whole by the library: stats, views, wire payloads, decoded
 * messages, array elements. It must keep its size, or a program built
 * against an older header gets bytes written past its copy. Such a struct
 * grows into its reserved room, never past it. A size-versioned one (its
 * first field, or the descriptor's third, says its size) may grow at the
 * end: the library reads an older, smaller one up to the size its caller
 * passed (the oldest it takes is frozen with WAVE_SIZE_TO() where it is
 * read). This test fails when a fixed structure's size changes, naming it:
 * move the new field into the reserved room instead.
 *
 * Sizes are those of LP64 (x86-64, aarch64); elsewhere the test is
 * skipped.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <wave/channel.h>
#include <wave/config.h>
#include <wave/error.h>
#include <wave/host.h>
#include <wave/mem.h>
#include <wave/mem_msg.h>
#include <wave/mem_state.h>
#include <wave/msg.h>
#include <wave/plugin.h>
#include <wave/plugin_custom.h>
#include <wave/plugin_loader.h>
#include <wave/plugin_mem.h>
#include <wave/plugin_rpc.h>
#include <wave/plugin_sched.h>
#include <wave/rpc.h>
#include <wave/rpc_msg.h>
#include <wave/rpc_reuseport.h>
#include <wave/rpc_state.h>
#include <wave/sched.h>
#include <wave/sched_msg.h>
#include <wave/sched_state.h>

#include "check_run.h"
#include "core/core.h"

struct fixed {
	const char *name;
	size_t size, shipped;
};

#define FIXED(name, shipped) { #name, sizeof(struct name), shipped }

static const struct fixed fixed[] = {
	FIXED(wave_chan_stats, 64),
	FIXED(wave_config_domain, 32),
	FIXED(wave_config_record, 32),
	FIXED(wave_error, 812),
	FIXED(wave_host_stats, 128),
	FIXED(wave_mem_tier, 16),
	FIXED(wave_mem_victim, 16),
	FIXED(wave_mem_stats, 336),
	FIXED(wave_mem_wire_setup, 48),
	FIXED(wave_mem_wire_region, 48),
	FIXED(wave_mem_wire_chunk, 48),
	FIXED(wave_mem_wire_samples, 48),
	FIXED(wave_mem_wire_pressure, 48),
	FIXED(wave_mem_wire_decision, 48),
	FIXED(wave_mem_wire_outcome, 48),
	FIXED(wave_mem_msg, 144),
	FIXED(wave_mem_state_stats, 288),
	FIXED(wave_msg, 64),
	FIXED(wave_mem_chunk_view, 56),
	FIXED(wave_mem_tier_view, 64),
	FIXED(wave_rpc_worker, 104),
	FIXED(wave_rpc_bucket, 48),
	FIXED(wave_rpc_info, 80),
	FIXED(wave_sched_task, 72),
	FIXED(wave_sched_cpu, 64),
	FIXED(wave_rpc_stats, 232),
	FIXED(wave_rpc_wire_setup, 48),
	FIXED(wave_rpc_wire_worker, 48),
	FIXED(wave_rpc_wire_buckets, 48),
	FIXED(wave_rpc_wire_load, 48),
	FIXED(wave_rpc_wire_class_load, 48),
	FIXED(wave_rpc_wire_arrivals, 48),
	FIXED(wave_rpc_wire_report, 48),
	FIXED(wave_rpc_wire_decision, 48),
	FIXED(wave_rpc_wire_outcome, 48),
	FIXED(wave_rpc_dims, 16),
	FIXED(wave_rpc_msg, 152),
	FIXED(wave_rpc_reuseport_stats, 64),
	FIXED(wave_rpc_stats_agent, 256),
	FIXED(wave_sched_grant, 32),
	FIXED(wave_sched_host_stats, 192),
	FIXED(wave_sched_preemption, 64),
	FIXED(wave_sched_wire_task_new, 48),
	FIXED(wave_sched_wire_task, 48),
	FIXED(wave_sched_wire_cpu, 48),
	FIXED(wave_sched_wire_decision, 48),
	FIXED(wave_sched_wire_outcome, 48),
	FIXED(wave_sched_msg, 48),
	FIXED(wave_sched_stats, 256),
};

START_TEST(fixed_structs_keep_their_size)
{
	unsigned changed = 0;

	for (size_t i = 0; i < WAVE_ARRAY_SIZE(fixed); i++) {
		if (fixed[i].size == fixed[i].shipped)
			continue;
		fprintf(stderr,
			"struct %s is %zu bytes, 0.1 shipped %zu: a program built against the "
			"old header would be written past its end; use the reserved room\n",
			fixed[i].name, fixed[i].size, fixed[i].shipped);
		changed++;
	}
	ck_assert_uint_eq(changed, 0);
}
END_TEST

/* The library reads the size before anything else: it is first. */
START_TEST(size_fields_come_first)
{
	ck_assert_uint_eq(offsetof(struct wave_chan_opts, size), 0);
	ck_assert_uint_eq(offsetof(struct wave_config, size), 0);
	ck_assert_uint_eq(offsetof(struct wave_host_ops, size), 0);
	ck_assert_uint_eq(offsetof(struct wave_host_opts, size), 0);
	ck_assert_uint_eq(offsetof(struct wave_mem_opts, size), 0);
	ck_assert_uint_eq(offsetof(struct wave_mem_region_opts, size), 0);
	ck_assert_uint_eq(offsetof(struct wave_mem_chunk_info, size), 0);
	ck_assert_uint_eq(offsetof(struct wave_custom_ops, size), 0);
	ck_assert_uint_eq(offsetof(struct wave_plugin_load_opts, size), 0);
	ck_assert_uint_eq(offsetof(struct wave_plugin_ctx_opts, size), 0);
	ck_assert_uint_eq(offsetof(struct wave_mem_ops, size), 0);
	ck_assert_uint_eq(offsetof(struct wave_rpc_ops, size), 0);
	ck_assert_uint_eq(offsetof(struct wave_sched_ops, size), 0);
	ck_assert_uint_eq(offsetof(struct wave_rpc_opts, size), 0);
	ck_assert_uint_eq(offsetof(struct wave_rpc_load, size), 0);
	ck_assert_uint_eq(offsetof(struct wave_rpc_follower, size), 0);
	ck_assert_uint_eq(offsetof(struct wave_sched_opts, size), 0);
	ck_assert_uint_eq(offsetof(struct wave_sched_task_opts, size), 0);
	/* The descriptor: its ABI version first, then its size. */
	ck_assert_uint_eq(offsetof(struct wave_plugin_desc, abi_major), 0);
	ck_assert_uint_eq(offsetof(struct wave_plugin_desc, size), 4);
}
END_TEST

/* An older, smaller options struct is taken (the fields it lacks keep
 * their defaults); one below the first version, or larger than this
 * library knows, is refused. wave_mem_opts grew after its first version
 * (reserve_bytes, demote_cpu): 0.1's ended before reserve_bytes. */
START_TEST(older_options_taken)
{
	size_t first = offsetof(struct wave_mem_opts, reserve_bytes);
	struct wave_mem_opts o;
	struct wave_mem *m = NULL;

	wave_mem_opts_init(&o);
	ck_assert_uint_lt(first, sizeof(o));
	o.n_tiers = 2;
	o.tiers[0].capacity = 1 << 20;
	o.tiers[1] = (struct wave_mem_tier){ WAVE_MEM_TIER_NUMA, WAVE_MEM_NODE_ANY, 0 };
	o.reserve_bytes = 2 << 20; /* refused if read: not below tier 0's capacity */
	ck_assert_int_eq(wave_mem_create(&o, &m, NULL), -EINVAL);
	o.size = first; /* a 0.1 program's struct ends before reserve_bytes */
	ck_assert_int_eq(wave_mem_create(&o, &m, NULL), 0);
	wave_mem_destroy(m);
	m = NULL;
	o.size = first - 1;
	ck_assert_int_eq(wave_mem_create(&o, &m, NULL), -EINVAL);
	o.size = sizeof(o) + 8;
	ck_assert_int_eq(wave_mem_create(&o, &m, NULL), -EINVAL);
	ck_assert_ptr_null(m);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("abi");
	TCase *tc = tcase_create("sizes");

	if (sizeof(void *) != 8 || sizeof(long) != 8) {
		printf("SKIP: the shipped sizes are LP64's\n");
		return 77;
	}
	tcase_add_test(tc, fixed_structs_keep_their_size);
	tcase_add_test(tc, size_fields_come_first);
	tcase_add_test(tc, older_options_taken);
	suite_add_tcase(s, tc);
	return wave_check_run(s);
}
