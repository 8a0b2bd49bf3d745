/* SPDX-License-Identifier: MIT */
/*
 * Data-driven decoder cases: each folder under msg_cases/{valid,invalid}
 * holds msg.hex (a "cpus N" line, then the 64 bytes of a struct wave_msg in
 * hex; '#' starts a comment) and expected_error (0, or the errno name the
 * decoder must return: ENOMSG, EBADMSG, ERANGE). Valid messages must also
 * re-encode to the same bytes.
 *
 *   sched_msg_case DIR...    one case folder per argument
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wave/sched_msg.h>

static int expected_code(const char *name)
{
	static const struct { const char *name; int code; } codes[] = {
		{ "0", 0 }, { "ENOMSG", -ENOMSG }, { "EBADMSG", -EBADMSG }, { "ERANGE", -ERANGE },
	};

	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (!strcmp(name, codes[i].name))
			return codes[i].code;
	return 1; /* never a decoder result */
}

/* Reads "cpus N" and 64 hex bytes from @path; 0 or -1. */
static int read_msg(const char *path, uint32_t *cpus, struct wave_msg *m)
{
	char line[512], *tok, *end;
	uint8_t *bytes = (uint8_t *)m;
	size_t n = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	memset(m, 0, sizeof(*m));
	*cpus = 0;
	while (fgets(line, sizeof(line), f)) {
		if ((tok = strchr(line, '#')))
			*tok = '\0';
		if (sscanf(line, " cpus %u", cpus) == 1)
			continue;
		for (tok = strtok(line, " \t\n"); tok; tok = strtok(NULL, " \t\n")) {
			unsigned long v = strtoul(tok, &end, 16);

			if (*end || v > 0xff || n == sizeof(*m)) {
				fclose(f);
				return -1;
			}
			bytes[n++] = (uint8_t)v;
		}
	}
	fclose(f);
	return n == sizeof(*m) && *cpus ? 0 : -1;
}

static int read_expected(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "r");
	int ok = f && fgets(buf, (int)size, f);

	if (f)
		fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	return ok ? 0 : -1;
}

/* 0 when the case holds. */
static int run_case(const char *dir)
{
	char path[4096], want[64] = "";
	struct wave_sched_msg d;
	struct wave_msg m, again;
	uint32_t cpus;
	int ret, code;

	snprintf(path, sizeof(path), "%s/msg.hex", dir);
	if (read_msg(path, &cpus, &m) < 0)
		return fprintf(stderr, "%s: unreadable msg.hex\n", dir), -1;
	snprintf(path, sizeof(path), "%s/expected_error", dir);
	if (read_expected(path, want, sizeof(want)) < 0 || (code = expected_code(want)) > 0)
		return fprintf(stderr, "%s: unreadable expected_error\n", dir), -1;
	ret = wave_sched_msg_decode(&m, cpus, &d);
	if (ret != code)
		return fprintf(stderr, "%s: decode gave %d, expected %s (%d)\n", dir, ret, want, code),
		       -1;
	if (ret == 0 && (wave_sched_msg_encode(&d, cpus, &again) != 0 ||
			 memcmp(&again.payload, &m.payload, sizeof(m.payload)) != 0))
		return fprintf(stderr, "%s: does not re-encode to the same bytes\n", dir), -1;
	return 0;
}

int main(int argc, char **argv)
{
	int failed = 0;

	for (int i = 1; i < argc; i++)
		failed += run_case(argv[i]) < 0;
	printf("sched_msg_case: %d cases, %d failed\n", argc - 1, failed);
	return failed || argc < 2 ? 1 : 0;
}
