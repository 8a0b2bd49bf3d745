/* SPDX-License-Identifier: MIT */
/*
 * The key table (lib/core/config_keys.c) is what the parser enforces, so
 * that wave.conf(5), generated from it, says what the parser does: every
 * number's range (its limits accepted and stored in the table's field, one
 * past them refused naming the key) and every default.
 */
#include "check_run.h"
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <wave/wave.h>

#include "core/config_impl.h"

/* A configuration setting number @k to @v, with what the other keys of
 * its object must be for @v alone to decide (a heartbeat timeout longer
 * than its period, rings no larger than max_slots). */
static void doc(char *buf, size_t size, const struct wave_cfg_key *k, uint64_t v)
{
	const char *sec = k->section;

	if (sec[0] == '\0')
		snprintf(buf, size, "{\"%s\": %" PRIu64 "}", k->name, v);
	else if (strcmp(sec, "domains.<d>") == 0)
		snprintf(buf, size, "{\"domains\": {\"custom\": {\"plugin\": \"x\", \"%s\": %" PRIu64
			 "}}}", k->name, v);
	else if (strcmp(k->name, "period_ms") == 0)
		snprintf(buf, size, "{\"heartbeat\": {\"period_ms\": %" PRIu64
			 ", \"timeout_ms\": 600000}}", v);
	else if (strcmp(k->name, "timeout_ms") == 0)
		snprintf(buf, size, "{\"heartbeat\": {\"period_ms\": 1, \"timeout_ms\": %" PRIu64
			 "}}", v);
	else if (strcmp(sec, "record") == 0) /* its path is required */
		snprintf(buf, size, "{\"record\": {\"path\": \"/tmp\", \"%s\": %" PRIu64 "}}",
			 k->name, v);
	else if (strcmp(k->name, "max_slots") == 0)
		snprintf(buf, size, "{\"channel\": {\"max_slots\": %" PRIu64 ", \"host_to_agent_slots\""
			 ": 2, \"agent_to_host_slots\": 2}}", v);
	else
		snprintf(buf, size, "{\"%s\": {\"%s\": %" PRIu64 "}}", sec, k->name, v);
}

static uint64_t field(const struct wave_config *cfg, const struct wave_cfg_key *k)
{
	const void *base = strcmp(k->section, "domains.<d>") == 0
				   ? (const void *)&cfg->domains[WAVE_DOMAIN_CUSTOM]
				   : (const void *)cfg;
	uint32_t v32;
	uint64_t v;

	if (k->size == sizeof(v32)) {
		memcpy(&v32, (const char *)base + k->offset, sizeof(v32));
		return v32;
	}
	ck_assert_uint_eq(k->size, sizeof(v));
	memcpy(&v, (const char *)base + k->offset, sizeof(v));
	return v;
}

static void accepted(const struct wave_cfg_key *k, uint64_t v)
{
	struct wave_config *cfg = NULL;
	struct wave_error err;
	char text[256];

	doc(text, sizeof(text), k, v);
	ck_assert_msg(wave_config_parse(text, strlen(text), NULL, &cfg, &err) == 0,
		      "%s refused: %s", text, err.text);
	if (k->size)
		ck_assert_msg(field(cfg, k) == v, "%s: stored %" PRIu64, text, field(cfg, k));
	wave_config_free(cfg);
}

static void refused(const struct wave_cfg_key *k, uint64_t v)
{
	struct wave_config *cfg = NULL;
	struct wave_error err;
	char text[256], path[64];

	doc(text, sizeof(text), k, v);
	snprintf(path, sizeof(path), "%s%s%s:", strcmp(k->section, "domains.<d>") == 0 ?
		 "domains.custom" : k->section, k->section[0] ? "." : "", k->name);
	ck_assert_msg(wave_config_parse(text, strlen(text), NULL, &cfg, &err) == -WAVE_ECONFIG,
		      "%s accepted", text);
	ck_assert_msg(strncmp(err.text, path, strlen(path)) == 0, "%s: error '%s' names "
		      "another key than %s", text, err.text, path);
	ck_assert_ptr_null(cfg);
}

START_TEST(numbers_have_the_tables_range)
{
	size_t n, checked = 0;
	const struct wave_cfg_key *k = wave_cfg_keys(&n);

	for (size_t i = 0; i < n; i++) {
		if (k[i].kind != CFG_UINT && k[i].kind != CFG_SLOTS)
			continue;
		accepted(&k[i], k[i].min);
		accepted(&k[i], k[i].max);
		refused(&k[i], k[i].max + 1);
		if (k[i].min > 0)
			refused(&k[i], k[i].min - 1);
		if (k[i].kind == CFG_SLOTS && k[i].max > 4)
			refused(&k[i], k[i].max - 1); /* not a power of two */
		checked++;
	}
	ck_assert_uint_ge(checked, 9);
}
END_TEST

START_TEST(defaults_are_the_tables)
{
	struct wave_config *cfg = NULL;
	size_t n;
	const struct wave_cfg_key *k = wave_cfg_keys(&n);

	ck_assert_int_eq(wave_config_parse("{}", 2, NULL, &cfg, NULL), 0);
	for (size_t i = 0; i < n; i++) {
		char def[32];

		if (k[i].size == 0 || strcmp(k[i].section, "domains.<d>") == 0)
			continue;
		ck_assert_msg(field(cfg, &k[i]) == k[i].def, "%s.%s: %" PRIu64 ", table %" PRIu64,
			      k[i].section, k[i].name, field(cfg, &k[i]), k[i].def);
		/* What the manual prints is that default (or "required"). */
		snprintf(def, sizeof(def), "%" PRIu64, k[i].def);
		ck_assert_msg(strcmp(k[i].def_text, def) == 0 ||
			      strcmp(k[i].def_text, "required") == 0,
			      "%s.%s: manual says %s, table %s", k[i].section, k[i].name,
			      k[i].def_text, def);
	}
	wave_config_free(cfg);
}
END_TEST

/* Every key of every object is known to the parser: each object's keys
 * named in an unknown-key error are exactly the table's. */
START_TEST(unknown_key_lists_the_table)
{
	static const char *const objs[][2] = {
		{ "", "{\"zz\": 1}" },
		{ "heartbeat", "{\"heartbeat\": {\"zz\": 1}}" },
		{ "channel", "{\"channel\": {\"zz\": 1}}" },
		{ "auth", "{\"auth\": {\"zz\": 1}}" },
		{ "metrics", "{\"metrics\": {\"zz\": 1}}" },
		{ "domains.<d>", "{\"domains\": {\"custom\": {\"zz\": 1}}}" },
	};
	size_t n;
	const struct wave_cfg_key *k = wave_cfg_keys(&n);

	for (size_t o = 0; o < sizeof(objs) / sizeof(objs[0]); o++) {
		struct wave_config *cfg = NULL;
		struct wave_error err;
		char want[300] = "unknown key (expected one of: ";
		int first = 1;

		for (size_t i = 0; i < n; i++) {
			if (strcmp(k[i].section, objs[o][0]) != 0)
				continue;
			strcat(want, first ? "" : ", ");
			strcat(want, k[i].name);
			first = 0;
		}
		strcat(want, ")");
		ck_assert_int_eq(wave_config_parse(objs[o][1], strlen(objs[o][1]), NULL, &cfg, &err),
				 -WAVE_ECONFIG);
		ck_assert_msg(strstr(err.text, want), "%s: '%s', expected '%s'", objs[o][1],
			      err.text, want);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("config_keys");
	TCase *tc = tcase_create("table");

	tcase_add_test(tc, numbers_have_the_tables_range);
	tcase_add_test(tc, defaults_are_the_tables);
	tcase_add_test(tc, unknown_key_lists_the_table);
	suite_add_tcase(s, tc);
	return wave_check_run(s);
}
