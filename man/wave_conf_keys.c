/* SPDX-License-Identifier: MIT */
/*
 * wave_conf_keys: writes wave.conf(5) from its template, with the KEYS
 * section made from the key table the configuration parser walks
 * (lib/core/config_keys.c), so that the manual cannot drift from the code.
 * With --list, prints one key path per line instead (for the test that
 * docs/config.md lists them all).
 *
 * usage: wave_conf_keys TEMPLATE OUTPUT | wave_conf_keys --list
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/config_impl.h"

#define MARKER "%%WAVE_CONF_KEYS%%"

static const char *const section_title[][2] = {
	{ "", "Top level" },
	{ "heartbeat", "heartbeat" },
	{ "channel", "channel" },
	{ "auth", "auth" },
	{ "metrics", "metrics" },
	{ "record", "record" },
	{ "domains.<d>", "domains.<d> (one per domain: custom, sched, mem, rpc)" },
};

/* @s as mdoc text: a backslash is \e, and each sentence starts a line
 * (roff takes the end of a line for the end of a sentence). */
static void text(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\e", f);
		else if (s[0] == '.' && s[1] == ' ' && s[2] != '\0' && s[2] != '.')
			fputs(".\n", f), s++;
		else
			fputc(*s, f);
	}
}

/* Whether @section has keys of its own in the table. */
static int has_keys(const char *section)
{
	size_t n;
	const struct wave_cfg_key *k = wave_cfg_keys(&n);

	for (size_t i = 0; i < n; i++)
		if (strcmp(k[i].section, section) == 0)
			return 1;
	return 0;
}

static void range(FILE *f, const struct wave_cfg_key *k)
{
	const char *unit = k->unit ? k->unit : "";
	const char *sp = k->unit ? " " : "";

	switch (k->kind) {
	case CFG_UINT:
		if (k->min == k->max)
			fprintf(f, "Exactly %" PRIu64 ".", k->min);
		else
			fprintf(f, "From %" PRIu64 " to %" PRIu64 "%s%s.", k->min, k->max, sp, unit);
		break;
	case CFG_SLOTS:
		fprintf(f, "A power of two from %" PRIu64 " to %" PRIu64 " %s.", k->min, k->max,
			unit);
		break;
	case CFG_STRING:
		fprintf(f, "%" PRIu64 " to %" PRIu64 " bytes.", k->min, k->max);
		break;
	case CFG_ARRAY:
		fprintf(f, "%" PRIu64 " to %" PRIu64 " entries", k->min, k->max);
		if (k->item_max == 0)
			fprintf(f, ".");
		else if (strstr(k->type, "integer"))
			fprintf(f, ", each from %" PRIu64 " to %" PRIu64 ".", k->item_min,
				k->item_max);
		else
			fprintf(f, ", each of %" PRIu64 " to %" PRIu64 " bytes.", k->item_min,
				k->item_max);
		break;
	case CFG_OBJECT:
		if (has_keys(k->name))
			fprintf(f, "An object with the keys listed under its name below.");
		else
			fprintf(f, "An object.");
		break;
	case CFG_ANY:
		fprintf(f, "Any JSON object.");
		break;
	}
	fputc('\n', f);
}

static void key(FILE *f, const struct wave_cfg_key *k)
{
	fprintf(f, ".It Cm %s%s%s Pq %s%s%s\n", k->section, k->section[0] ? "." : "", k->name,
		k->type, k->unit ? ", " : "", k->unit ? k->unit : "");
	range(f, k);
	if (strcmp(k->def_text, "required") == 0) {
		fputs("Required.\n", f);
	} else if (k->def_text[0]) {
		fputs("Default: ", f);
		text(f, k->def_text);
		fputs(".\n", f);
	}
	text(f, k->doc);
	fputc('\n', f);
}

static void keys(FILE *f)
{
	size_t n;
	const struct wave_cfg_key *k = wave_cfg_keys(&n);

	for (size_t s = 0; s < sizeof(section_title) / sizeof(section_title[0]); s++) {
		fprintf(f, ".Ss %s\n.Bl -tag -width Ds\n", section_title[s][1]);
		for (size_t i = 0; i < n; i++)
			if (strcmp(k[i].section, section_title[s][0]) == 0)
				key(f, &k[i]);
		fputs(".El\n", f);
	}
}

/* Every section of the table has a title above: a key in a new section
 * must not be left out of the manual. */
static int sections_known(void)
{
	size_t n;
	const struct wave_cfg_key *k = wave_cfg_keys(&n);

	for (size_t i = 0; i < n; i++) {
		size_t s = 0;

		while (s < sizeof(section_title) / sizeof(section_title[0]) &&
		       strcmp(k[i].section, section_title[s][0]) != 0)
			s++;
		if (s == sizeof(section_title) / sizeof(section_title[0])) {
			fprintf(stderr, "wave_conf_keys: section \"%s\" of key %s has no title\n",
				k[i].section, k[i].name);
			return 0;
		}
	}
	return 1;
}

static int list(void)
{
	size_t n;
	const struct wave_cfg_key *k = wave_cfg_keys(&n);

	for (size_t i = 0; i < n; i++)
		printf("%s%s%s\n", k[i].section, k[i].section[0] ? "." : "", k[i].name);
	return 0;
}

int main(int argc, char **argv)
{
	char line[1024];
	FILE *in, *out;
	int found = 0;

	if (argc == 2 && strcmp(argv[1], "--list") == 0)
		return list();
	if (argc != 3) {
		fprintf(stderr, "usage: wave_conf_keys TEMPLATE OUTPUT | wave_conf_keys --list\n");
		return 2;
	}
	if (!sections_known())
		return 1;
	if (!(in = fopen(argv[1], "r")) || !(out = fopen(argv[2], "w"))) {
		perror("wave_conf_keys");
		return 1;
	}
	while (fgets(line, sizeof(line), in)) {
		if (strcmp(line, MARKER "\n") == 0) {
			keys(out);
			found = 1;
		} else {
			fputs(line, out);
		}
	}
	fclose(in);
	if (fclose(out) != 0 || !found) {
		fprintf(stderr, "wave_conf_keys: %s\n", found ? "cannot write the page" :
			"no " MARKER " line in the template");
		remove(argv[2]);
		return 1;
	}
	return 0;
}
