/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the decision trace reader (lib/trace/trace_read.c). The
 * input is a whole trace file, as a hostile or damaged one could be. The
 * reader must read it to its end or refuse it with an error naming a byte
 * offset inside the input, never read outside it; records it gives must be
 * of a known kind, in time order, at offsets inside the input.
 *
 * Every input is read twice: as it is, and with its checksums made right
 * (header and blocks, where their lengths fit), so that mutations reach
 * the checks behind the checksums instead of all failing at them.
 *
 * Built with -fsanitize=fuzzer by clang (WAVE_FUZZ=ON), and as a plain
 * function that fuzz_replay.c calls on the stored corpus with any compiler.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/crc32c.h"
#include "core/le.h"
#include "trace/trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Out of memory aside, every refusal says where, inside the input. */
static void check_error(const struct wave_error *err, size_t size)
{
	const char *at = strstr(err->text, "offset ");

	if (err->code == -ENOMEM)
		return;
	if (!at || strtoull(at + 7, NULL, 10) > size)
		abort();
}

/* Rewrites the header's and each block's CRC in @b. */
static void fix_checksums(uint8_t *b, size_t size)
{
	size_t pos, len, bh;

	if (size < TRACE_HDR_FIXED || (pos = wave_get_le32(b + 12)) < 4 || pos > size)
		return;
	wave_put_le32(b + pos - 4, wave_crc32c(0, b, pos - 4));
	/* Format 1's block headers are shorter. */
	bh = wave_get_le16(b + 8) == 1 ? TRACE_BLK_HDR_V1 : TRACE_BLK_HDR;
	while (size - pos >= bh) {
		len = wave_get_le32(b + pos + 4);
		if (len > size - pos - bh)
			return;
		wave_put_le32(b + pos + 12,
			      wave_crc32c(wave_crc32c(0, b + pos, 12), b + pos + 16, bh - 16 + len));
		pos += bh + len;
	}
}

static void read_one(const uint8_t *data, size_t size)
{
	struct trace_reader *r;
	struct trace_rec rec;
	struct wave_error err;
	uint64_t last = 0;
	int ret;

	if (trace_reader_open_mem(data, size, "fuzz", &r, &err) < 0) {
		check_error(&err, size);
		return;
	}
	while ((ret = trace_reader_next(r, &rec, &err)) == 1) {
		if ((unsigned)rec.kind >= TRACE_KIND_COUNT || rec.t_ns < last || rec.offset >= size)
			abort();
		last = rec.t_ns;
	}
	if (ret < 0)
		check_error(&err, size);
	trace_reader_close(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy = malloc(size ? size : 1);

	read_one(data, size);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	fix_checksums(copy, size);
	read_one(copy, size);
	free(copy);
	return 0;
}
