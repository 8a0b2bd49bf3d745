/* SPDX-License-Identifier: MIT */
/*
 * The trace format (lib/trace): what is written reads back the same; a
 * truncated, corrupted, wrong-version or hostile file is refused with the
 * byte offset where it goes wrong; the size cap and rotation.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <wave/domain.h>

#include "check_run.h"
#include "core/core.h"
#include "core/crc32c.h"
#include "core/le.h"
#include "trace/trace.h"
#include "trace/trace_async.h"

static char dir[] = "/tmp/wave-check-trace-XXXXXX";

static void setup(void)
{
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
	strcpy(dir, "/tmp/wave-check-trace-XXXXXX");
}

static struct wave_msg msg_of(unsigned i)
{
	struct wave_msg m;

	memset(&m, 0, sizeof(m));
	m.type = (uint16_t)(0x100 + i % 9);
	m.flags = (uint16_t)(i % 3);
	/* Payloads of every length, trailing zeros included. */
	for (unsigned b = 0; b < i % 49; b++)
		m.payload.u8[b] = (uint8_t)(i * 7 + b + 1);
	if (i % 5 == 0)
		m.payload.u8[47] = 0x55;
	return m;
}

static void meta_of(struct trace_meta *m)
{
	memset(m, 0, sizeof(*m));
	m->domain = 1;
	m->host_id = 42;
	m->start_ns = 1000;
	strcpy(m->plugin, "sched_fifo");
	m->params = "{\"slice_us\":50}";
	m->n_setup = 1;
	m->setup[0] = msg_of(3);
}

/* Writes @n records, at times 1000 + 3 i, to @path. */
static void write_trace(const char *path, unsigned n, uint64_t cap, unsigned rotate)
{
	struct trace_writer_opts o = { path, cap, rotate };
	struct trace_meta meta;
	struct trace_writer *w;
	struct wave_error err;

	meta_of(&meta);
	ck_assert_int_eq(trace_writer_open(&o, &meta, &w, &err), 0);
	for (unsigned i = 0; i < n; i++) {
		struct wave_msg m = msg_of(i);

		trace_put(w, (enum trace_kind)(i % TRACE_KIND_COUNT),
			  1000 + 3ull * i, &m);
	}
	trace_writer_close(w);
}

static void *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	void *buf;

	ck_assert_ptr_nonnull(f);
	fseek(f, 0, SEEK_END);
	*len = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc(*len + 1);
	ck_assert_uint_eq(fread(buf, 1, *len, f), *len);
	fclose(f);
	return buf;
}

/* Reads all of @buf; returns the records read, or the error. */
static int read_all(const uint8_t *buf, size_t len, struct wave_error *err)
{
	struct trace_reader *r;
	struct trace_rec rec;
	int ret, n = 0;

	if ((ret = trace_reader_open_mem(buf, len, "t", &r, err)) < 0)
		return ret;
	while ((ret = trace_reader_next(r, &rec, err)) == 1)
		n++;
	trace_reader_close(r);
	return ret < 0 ? ret : n;
}

/* A block at @b of @n records, the @len bytes at @rec, base time 5000,
 * nothing lost, its checksum right. */
static void block_of(uint8_t *b, const char *rec, uint32_t len, uint32_t n)
{
	wave_put_le32(b, TRACE_BLOCK_MAGIC);
	wave_put_le32(b + 4, len);
	wave_put_le32(b + 8, n);
	wave_put_le64(b + 16, 5000);
	wave_put_le64(b + 24, 0);
	memcpy(b + TRACE_BLK_HDR, rec, len);
	wave_put_le32(b + 12, wave_crc32c(wave_crc32c(0, b, 12), b + 16, TRACE_BLK_HDR - 16 + len));
}

START_TEST(crc_known)
{
	/* The check value of CRC-32C. */
	ck_assert_uint_eq(wave_crc32c(0, "123456789", 9), 0xe3069283u);
	ck_assert_uint_eq(wave_crc32c(wave_crc32c(0, "1234", 4), "56789", 5), 0xe3069283u);
}
END_TEST

/* The CRC one bit at a time, as the polynomial defines it. */
static uint32_t crc_bitwise(uint32_t crc, const uint8_t *p, size_t len)
{
	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = crc & 1 ? (crc >> 1) ^ 0x82f63b78u : crc >> 1;
	}
	return ~crc;
}

/* Long buffers run in three streams joined at the end: every length and
 * alignment around the stream sizes, whole and in two parts. */
START_TEST(crc_long)
{
	const size_t max = 4 * 768 + 40;
	uint8_t *buf = malloc(max + 8);
	uint32_t x = 12345;

	for (size_t i = 0; i < max + 8; i++) {
		x = x * 1103515245u + 12345u;
		buf[i] = (uint8_t)(x >> 16);
	}
	for (size_t off = 0; off < 8; off += 3)
		for (size_t len = 0; len <= max; len += len < 800 ? 1 : 7) {
			uint32_t want = crc_bitwise(0, buf + off, len);

			ck_assert_uint_eq(wave_crc32c(0, buf + off, len), want);
			ck_assert_uint_eq(wave_crc32c(wave_crc32c(0, buf + off, len / 3),
						      buf + off + len / 3, len - len / 3),
					  want);
		}
	free(buf);
}
END_TEST

START_TEST(round_trip)
{
	char path[128];
	struct trace_reader *r;
	struct trace_rec rec;
	struct wave_error err;
	const unsigned n = 5000; /* several blocks */

	snprintf(path, sizeof(path), "%s/a.trace", dir);
	write_trace(path, n, 1 << 30, 0);
	ck_assert_int_eq(trace_reader_open(path, &r, &err), 0);
	ck_assert_uint_eq(trace_reader_meta(r)->domain, 1);
	ck_assert_uint_eq(trace_reader_meta(r)->host_id, 42);
	ck_assert_str_eq(trace_reader_meta(r)->plugin, "sched_fifo");
	ck_assert_str_eq(trace_reader_meta(r)->params, "{\"slice_us\":50}");
	ck_assert_uint_eq(trace_reader_meta(r)->n_setup, 1);
	for (unsigned pass = 0; pass < 2; pass++) {
		for (unsigned i = 0; i < n; i++) {
			struct wave_msg m = msg_of(i);

			ck_assert_int_eq(trace_reader_next(r, &rec, &err), 1);
			ck_assert_int_eq(rec.kind, (int)(i % TRACE_KIND_COUNT));
			ck_assert_uint_eq(rec.t_ns, 1000 + 3ull * i);
			ck_assert_uint_eq(rec.msg.type, m.type);
			ck_assert_uint_eq(rec.msg.flags, m.flags);
			ck_assert_mem_eq(rec.msg.payload.u8, m.payload.u8, WAVE_MSG_PAYLOAD);
		}
		ck_assert_int_eq(trace_reader_next(r, &rec, &err), 0);
		trace_reader_rewind(r);
	}
	trace_reader_close(r);
}
END_TEST

/* All of @buf one record at a time into @recs (room for @max): the
 * records read, the end (0) or error in *@end, its text in @why. */
static unsigned read_each(const uint8_t *buf, size_t len, struct trace_rec *recs, unsigned max,
			  int *end, char *why)
{
	struct trace_reader *r;
	struct wave_error err;
	unsigned n = 0;

	ck_assert_int_eq(trace_reader_open_mem(buf, len, "t", &r, &err), 0);
	while (n < max && (*end = trace_reader_next(r, &recs[n], &err)) == 1)
		n++;
	ck_assert_uint_lt(n, max);
	strcpy(why, *end < 0 ? err.text : "");
	trace_reader_close(r);
	return n;
}

/* trace_reader_read() in batches that straddle blocks gives the records
 * trace_reader_next() gives, then the same end or the same error, again
 * at every later call. */
START_TEST(read_in_batches)
{
	const unsigned n = 5000, max = n + 1; /* several blocks */
	struct trace_rec *one = calloc(max, sizeof(*one)), batch[7];
	char path[128], why[sizeof(((struct wave_error *)0)->text)];
	struct trace_reader *r;
	struct wave_error err;
	uint8_t *buf;
	size_t len;

	snprintf(path, sizeof(path), "%s/b.trace", dir);
	write_trace(path, n, 1 << 30, 0);
	buf = slurp(path, &len);
	for (int corrupt = 0; corrupt < 2; corrupt++) {
		unsigned got = 0, k;
		int end, ret;

		/* The last block's checksum fails: records of the others first. */
		buf[len - 5] ^= (uint8_t)corrupt;
		k = read_each(buf, len, one, max, &end, why);
		ck_assert_uint_eq(k, corrupt ? k : n);
		ck_assert_int_eq(end, corrupt ? -WAVE_ECORRUPT : 0);
		ck_assert_int_eq(trace_reader_open_mem(buf, len, "t", &r, &err), 0);
		while ((ret = trace_reader_read(r, batch, 7, &err)) > 0) {
			ck_assert_int_le(ret, 7);
			for (int i = 0; i < ret; i++, got++) {
				ck_assert_uint_lt(got, k);
				ck_assert_int_eq(batch[i].kind, one[got].kind);
				ck_assert_uint_eq(batch[i].t_ns, one[got].t_ns);
				ck_assert_uint_eq(batch[i].offset, one[got].offset);
				ck_assert_uint_eq(batch[i].msg.type, one[got].msg.type);
				ck_assert_uint_eq(batch[i].msg.flags, one[got].msg.flags);
				ck_assert_mem_eq(batch[i].msg.payload.u8, one[got].msg.payload.u8,
						 WAVE_MSG_PAYLOAD);
			}
		}
		ck_assert_uint_eq(got, k);
		ck_assert_int_eq(ret, end);
		if (corrupt)
			ck_assert_str_eq(err.text, why);
		ck_assert_int_eq(trace_reader_read(r, batch, 7, &err), end);
		ck_assert_int_eq(trace_reader_read(r, batch, 0, &err), -EINVAL);
		trace_reader_close(r);
	}
	ck_assert_int_eq(trace_reader_read(NULL, batch, 7, &err), -EINVAL);
	free(buf);
	free(one);
}
END_TEST

/* Every prefix of a file is either a shorter valid trace (cut between
 * blocks) or refused with an offset, never read past. */
START_TEST(truncated)
{
	char path[128];
	struct wave_error err;
	size_t len;
	uint8_t *buf;
	unsigned refused = 0;

	snprintf(path, sizeof(path), "%s/t.trace", dir);
	write_trace(path, 300, 1 << 30, 0);
	buf = slurp(path, &len);
	for (size_t cut = 0; cut < len; cut++) {
		/* A copy of exactly @cut bytes: ASan sees any read past it. */
		uint8_t *c = malloc(cut ? cut : 1);

		memcpy(c, buf, cut);
		if (read_all(c, cut, &err) < 0) {
			refused++;
			ck_assert_int_eq(err.code, -WAVE_ECORRUPT);
			ck_assert_ptr_nonnull(strstr(err.text, "offset "));
			ck_assert_ptr_nonnull(strstr(err.text, "truncated"));
		}
		free(c);
	}
	/* One block: every cut but the one right after the header (a trace
	 * with no records) is refused. */
	ck_assert_uint_eq(refused, len - 1);
	ck_assert_int_eq(read_all(buf, len, &err), 300);
	free(buf);
}
END_TEST

START_TEST(corrupted)
{
	char path[128];
	struct wave_error err;
	size_t len, hlen;
	uint8_t *buf;

	snprintf(path, sizeof(path), "%s/c.trace", dir);
	write_trace(path, 300, 1 << 30, 0);
	buf = slurp(path, &len);
	hlen = wave_get_le32(buf + 12);
	/* Any flipped bit is caught: by a check of the header or the block. */
	for (size_t off = 0; off < len; off += 7) {
		buf[off] ^= 0x10;
		ck_assert_int_lt(read_all(buf, len, &err), 0);
		buf[off] ^= 0x10;
	}
	buf[hlen + 30] ^= 1;
	ck_assert_int_eq(read_all(buf, len, &err), -WAVE_ECORRUPT);
	ck_assert_msg(strstr(err.text, "block checksum mismatch"), "%s", err.text);
	{
		char at[32];

		snprintf(at, sizeof(at), "offset %zu:", hlen);
		ck_assert_msg(strstr(err.text, at), "%s", err.text);
	}
	free(buf);
}
END_TEST

/* A caller's buffer may change between passes: after a rewind, its
 * blocks are checked again (the reader's own copy of a file is not). */
START_TEST(rewound_buffer_checked_again)
{
	char path[128];
	struct trace_reader *r;
	struct trace_rec rec;
	struct wave_error err;
	size_t len;
	uint8_t *buf;
	int ret;

	snprintf(path, sizeof(path), "%s/w.trace", dir);
	write_trace(path, 300, 1 << 30, 0);
	buf = slurp(path, &len);
	ck_assert_int_eq(trace_reader_open_mem(buf, len, "t", &r, &err), 0);
	while ((ret = trace_reader_next(r, &rec, &err)) == 1)
		;
	ck_assert_int_eq(ret, 0);
	buf[len - 5] ^= 1;
	trace_reader_rewind(r);
	while ((ret = trace_reader_next(r, &rec, &err)) == 1)
		;
	ck_assert_int_eq(ret, -WAVE_ECORRUPT);
	ck_assert_msg(strstr(err.text, "block checksum mismatch"), "%s", err.text);
	trace_reader_close(r);
	/* The file's own copy, read twice: the same records both times. */
	ck_assert_int_eq(trace_reader_open(path, &r, &err), 0);
	for (int pass = 0; pass < 2; pass++) {
		unsigned n = 0;

		while ((ret = trace_reader_next(r, &rec, &err)) == 1)
			ck_assert_uint_eq(rec.t_ns, 1000 + 3ull * n++);
		ck_assert_int_eq(ret, 0);
		ck_assert_uint_eq(n, 300);
		trace_reader_rewind(r);
	}
	trace_reader_close(r);
	free(buf);
}
END_TEST

START_TEST(wrong_version)
{
	char path[128];
	struct wave_error err;
	size_t len;
	uint8_t *buf;
	char want[64];

	snprintf(path, sizeof(path), "%s/v.trace", dir);
	write_trace(path, 10, 1 << 30, 0);
	buf = slurp(path, &len);
	snprintf(want, sizeof(want), "offset 8: trace format %d.0", TRACE_MAJOR + 1);
	wave_put_le16(buf + 8, TRACE_MAJOR + 1);
	ck_assert_int_eq(read_all(buf, len, &err), -WAVE_EVERSION);
	ck_assert_msg(strstr(err.text, want), "%s", err.text);
	free(buf);
}
END_TEST

/* A well-checksummed header naming a domain that does not exist: the
 * tools index their tables by it. */
START_TEST(unknown_domain)
{
	char path[128];
	struct wave_error err;
	size_t len;
	uint8_t *buf;
	uint32_t hlen;

	snprintf(path, sizeof(path), "%s/d.trace", dir);
	write_trace(path, 10, 1 << 30, 0);
	buf = slurp(path, &len);
	hlen = wave_get_le32(buf + 12);
	wave_put_le32(buf + 16, WAVE_DOMAIN_COUNT);
	wave_put_le32(buf + hlen - 4, wave_crc32c(0, buf, hlen - 4));
	ck_assert_int_eq(read_all(buf, len, &err), -WAVE_ECORRUPT);
	ck_assert_msg(strstr(err.text, "offset 16: unknown domain"), "%s", err.text);
	free(buf);
}
END_TEST

/* Well-checksummed lies: lengths and counts that do not add up. */
START_TEST(hostile)
{
	char path[128];
	struct wave_error err;
	size_t len, hlen;
	uint8_t *buf;
	uint32_t crc;

	snprintf(path, sizeof(path), "%s/h.trace", dir);
	write_trace(path, 10, 1 << 30, 0);
	buf = slurp(path, &len);
	hlen = wave_get_le32(buf + 12);
	/* A block claiming more records than its bytes can hold. */
	wave_put_le32(buf + hlen + 8, 1000000);
	crc = wave_crc32c(0, buf + hlen, 12);
	crc = wave_crc32c(crc, buf + hlen + 16, len - hlen - 16);
	wave_put_le32(buf + hlen + 12, crc);
	ck_assert_int_eq(read_all(buf, len, &err), -WAVE_ECORRUPT);
	ck_assert_msg(strstr(err.text, "impossible"), "%s", err.text);
	/* One record fewer than there are: bytes left over in the block. */
	wave_put_le32(buf + hlen + 8, 9);
	crc = wave_crc32c(0, buf + hlen, 12);
	crc = wave_crc32c(crc, buf + hlen + 16, len - hlen - 16);
	wave_put_le32(buf + hlen + 12, crc);
	ck_assert_int_eq(read_all(buf, len, &err), -WAVE_ECORRUPT);
	ck_assert_msg(strstr(err.text, "after the block's last record"), "%s", err.text);
	/* A header whose lengths do not match its size. */
	wave_put_le16(buf + 40, 200);
	ck_assert_int_eq(read_all(buf, len, &err), -WAVE_ECORRUPT);
	ck_assert_msg(strstr(err.text, "offset 12: header length"), "%s", err.text);
	free(buf);
}
END_TEST

/* A block whose records use up its bytes before its count, at the very
 * end of the input: refused without reading past it (ASan watches the
 * exact-size copy). */
START_TEST(records_past_block)
{
	char path[128];
	struct wave_error err;
	size_t hlen, len;
	uint8_t *buf, *c, *b;

	snprintf(path, sizeof(path), "%s/p.trace", dir);
	write_trace(path, 0, 1 << 30, 0);
	buf = slurp(path, &hlen);
	len = hlen + TRACE_BLK_HDR + 15;
	c = malloc(len);
	memcpy(c, buf, hlen);
	b = c + hlen;
	/* two records claimed, bytes for one: an event, dt 0, type 0x101,
	 * flags 0, word 0 of 6 bytes, the others zero; the second record
	 * would begin at the input's very end */
	block_of(b, "\x00\x00\x01\x01\x00\x00\x06\x00\x00\x01\x02\x03\x04\x05\x06", 15, 2);
	ck_assert_int_eq(read_all(c, len, &err), -WAVE_ECORRUPT);
	ck_assert_msg(strstr(err.text, "record runs past its block"), "%s", err.text);
	free(c);
	free(buf);
}
END_TEST

/* Format 3's references refused where they cannot be followed: a type
 * repeated before its kind had one in the block, a word code past 9,
 * unknown head bits. */
START_TEST(format_3_hostile)
{
	static const struct {
		const char *rec;
		uint32_t len;
		const char *why;
	} bad[] = {
		{ "\x20\x00\x00\x00\x00", 5, "repeats the type of a event" },
		{ "\x00\x00\x01\x01\x00\x00\x0a\x00\x00", 9, "word 0: invalid code 10" },
		{ "\x01\x00\x01\x01\x00\x00\x00\x00\x00", 9, "head 0x01: unknown bits" },
	};
	char path[128];
	struct wave_error err;
	size_t hlen;
	uint8_t *buf, *c;

	snprintf(path, sizeof(path), "%s/h3.trace", dir);
	write_trace(path, 0, 1 << 30, 0);
	buf = slurp(path, &hlen);
	c = malloc(hlen + TRACE_BLK_HDR + 16);
	memcpy(c, buf, hlen);
	for (unsigned i = 0; i < WAVE_ARRAY_SIZE(bad); i++) {
		block_of(c + hlen, bad[i].rec, bad[i].len, 1);
		ck_assert_int_eq(read_all(c, hlen + TRACE_BLK_HDR + bad[i].len, &err),
				 -WAVE_ECORRUPT);
		ck_assert_msg(strstr(err.text, bad[i].why), "%s", err.text);
	}
	free(c);
	free(buf);
}
END_TEST

/* An event and the decision that answers it (the custom domain's shape:
 * a number, the key, the sequence) take few bytes: the decision's words
 * and each kind's type are references to what came before. */
START_TEST(compact_pairs)
{
	struct trace_writer_opts o = { NULL, 1 << 30, 0 };
	const unsigned n = 100000;
	struct trace_meta meta;
	struct trace_writer *w;
	struct trace_reader *r;
	struct trace_rec rec;
	struct wave_error err;
	char path[128];
	struct stat st;

	snprintf(path, sizeof(path), "%s/pairs.trace", dir);
	o.path = path;
	meta_of(&meta);
	ck_assert_int_eq(trace_writer_open(&o, &meta, &w, &err), 0);
	for (unsigned i = 0; i < n; i++) {
		struct wave_msg ev = { .type = 0x8010 }, dec = { .type = 0x8011 };

		ev.payload.u64[0] = dec.payload.u64[0] = 1000000 + i;
		ev.payload.u64[4] = dec.payload.u64[4] = i % 4096;
		ev.payload.u64[5] = dec.payload.u64[5] = 1000001 + i;
		trace_put(w, TRACE_EVENT, 5000 + 60ull * i, &ev);
		trace_put(w, TRACE_DECISION, 5000 + 60ull * i, &dec);
	}
	trace_writer_close(w);
	ck_assert_int_eq(stat(path, &st), 0);
	/* 3 + 2 + 3 literal bytes and 5 of head, time and codes; 5 for the
	 * decision: under 20 a pair (formats 1 and 2: 98). */
	ck_assert_msg(st.st_size < 20 * n, "%lld bytes a pair", (long long)st.st_size / n);
	ck_assert_int_eq(trace_reader_open(path, &r, &err), 0);
	for (unsigned i = 0; i < 2 * n; i++) {
		ck_assert_int_eq(trace_reader_next(r, &rec, &err), 1);
		ck_assert_uint_eq(rec.msg.type, 0x8010 + i % 2);
		ck_assert_uint_eq(rec.t_ns, 5000 + 60ull * (i / 2));
		ck_assert_uint_eq(rec.msg.payload.u64[0], 1000000 + i / 2);
		ck_assert_uint_eq(rec.msg.payload.u64[3], 0);
		ck_assert_uint_eq(rec.msg.payload.u64[4], i / 2 % 4096);
		ck_assert_uint_eq(rec.msg.payload.u64[5], 1000001 + i / 2);
	}
	ck_assert_int_eq(trace_reader_next(r, &rec, &err), 0);
	trace_reader_close(r);
}
END_TEST

/* Records lost while recording: the block after the gap says how many,
 * the reader gives the count with the record that follows, and an empty
 * block says so for a gap at the very end. */
START_TEST(lost_records)
{
	struct trace_writer_opts o = { NULL, 1 << 30, 0 };
	struct trace_meta meta;
	struct trace_writer *w;
	struct trace_reader *r;
	struct trace_rec rec;
	struct wave_error err;
	char path[128];
	unsigned n = 0;

	snprintf(path, sizeof(path), "%s/l.trace", dir);
	o.path = path;
	meta_of(&meta);
	ck_assert_int_eq(trace_writer_open(&o, &meta, &w, &err), 0);
	for (unsigned i = 0; i < 8; i++) {
		struct wave_msg m = msg_of(i);

		if (i == 5)
			trace_writer_lost(w, 7);
		trace_put(w, TRACE_EVENT, 1000 + i, &m);
	}
	trace_writer_lost(w, 2);
	trace_writer_close(w);
	ck_assert_int_eq(trace_reader_open(path, &r, &err), 0);
	while (trace_reader_next(r, &rec, &err) == 1) {
		struct wave_msg m = msg_of(n);

		ck_assert_uint_eq(rec.lost, n == 5 ? 7 : 0);
		ck_assert_mem_eq(rec.msg.payload.u8, m.payload.u8, WAVE_MSG_PAYLOAD);
		n++;
	}
	ck_assert_uint_eq(n, 8);
	ck_assert_uint_eq(trace_reader_lost(r), 9);
	trace_reader_close(r);
}
END_TEST

/* Format 1 (24-byte block headers, nothing lost) is still read. */
START_TEST(reads_format_1)
{
	char path[128];
	struct wave_error err;
	size_t hlen;
	uint8_t *buf, *c, *b;

	snprintf(path, sizeof(path), "%s/1.trace", dir);
	write_trace(path, 0, 1 << 30, 0);
	buf = slurp(path, &hlen);
	c = malloc(hlen + TRACE_BLK_HDR_V1 + 12);
	memcpy(c, buf, hlen);
	wave_put_le16(c + 8, 1);
	wave_put_le32(c + hlen - 4, wave_crc32c(0, c, hlen - 4));
	b = c + hlen;
	wave_put_le32(b, TRACE_BLOCK_MAGIC);
	wave_put_le32(b + 4, 12);
	wave_put_le32(b + 8, 1);
	wave_put_le64(b + 16, 5000);
	memcpy(b + TRACE_BLK_HDR_V1, "\x06\x00\x01\x01\x00\x00\x01\x02\x03\x04\x05\x06", 12);
	wave_put_le32(b + 12, wave_crc32c(wave_crc32c(0, b, 12), b + 16, 8 + 12));
	ck_assert_int_eq(read_all(c, hlen + TRACE_BLK_HDR_V1 + 12, &err), 1);
	free(c);
	free(buf);
}
END_TEST

/* Format 2 (records with their payload's length) is still read. */
START_TEST(reads_format_2)
{
	char path[128];
	struct wave_error err;
	struct trace_reader *r;
	struct trace_rec rec;
	size_t hlen;
	uint8_t *buf, *c;

	snprintf(path, sizeof(path), "%s/2.trace", dir);
	write_trace(path, 0, 1 << 30, 0);
	buf = slurp(path, &hlen);
	c = malloc(hlen + TRACE_BLK_HDR + 12);
	memcpy(c, buf, hlen);
	wave_put_le16(c + 8, 2);
	wave_put_le32(c + hlen - 4, wave_crc32c(0, c, hlen - 4));
	block_of(c + hlen, "\x06\x07\x01\x01\x02\x00\x01\x02\x03\x04\x05\x06", 12, 1);
	ck_assert_int_eq(trace_reader_open_mem(c, hlen + TRACE_BLK_HDR + 12, "t", &r, &err), 0);
	ck_assert_int_eq(trace_reader_next(r, &rec, &err), 1);
	ck_assert_uint_eq(rec.t_ns, 5007);
	ck_assert_uint_eq(rec.msg.type, 0x101);
	ck_assert_uint_eq(rec.msg.flags, 2);
	ck_assert_uint_eq(rec.msg.payload.u64[0], 0x060504030201ull);
	ck_assert_uint_eq(rec.msg.payload.u64[1], 0);
	ck_assert_int_eq(trace_reader_next(r, &rec, &err), 0);
	trace_reader_close(r);
	free(c);
	free(buf);
}
END_TEST

/* Records handed to a writer thread through its ring: every record put
 * is in the trace, in order, or counted as lost where it went missing,
 * however the two threads ran (a small ring loses some, a large none). */
static void async_run(unsigned ring, unsigned n, bool lossless)
{
	struct trace_async_opts o = { { NULL, 1ull << 34, 0 }, ring, -1, 0 };
	struct trace_meta meta;
	struct trace_async *a;
	struct trace_reader *r;
	struct trace_rec rec;
	struct wave_error err;
	char path[128];
	uint64_t i = 0, got = 0;

	snprintf(path, sizeof(path), "%s/a%u.trace", dir, ring);
	o.w.path = path;
	meta_of(&meta);
	ck_assert_int_eq(trace_async_open(&o, &meta, &a, &err), 0);
	for (unsigned k = 0; k < n; k++) {
		struct wave_msg m = msg_of(k);

		trace_async_put(a, (enum trace_kind)(k % TRACE_KIND_COUNT), 1000 + k, &m);
	}
	trace_async_close(a);
	ck_assert_int_eq(trace_reader_open(path, &r, &err), 0);
	while (trace_reader_next(r, &rec, &err) == 1) {
		struct wave_msg m;

		i += rec.lost;
		m = msg_of((unsigned)i);
		ck_assert_int_eq(rec.kind, (int)(i % TRACE_KIND_COUNT));
		ck_assert_uint_eq(rec.t_ns, 1000 + i);
		ck_assert_uint_eq(rec.msg.type, m.type);
		ck_assert_mem_eq(rec.msg.payload.u8, m.payload.u8, WAVE_MSG_PAYLOAD);
		i++;
		got++;
	}
	/* The records read and those lost after the last one add up. */
	ck_assert_uint_le(i, n);
	ck_assert_uint_eq(got + trace_reader_lost(r), n);
	if (lossless)
		ck_assert_uint_eq(trace_reader_lost(r), 0);
	trace_reader_close(r);
}

START_TEST(async_every_record_or_counted)
{
	async_run(1u << 18, 200000, true);
	async_run(TRACE_ASYNC_RING_MIN, 200000, false);
}
END_TEST

/* A sleeping writer is woken (a system call on the agent's thread) once
 * a quarter of the ring waits, not whenever it sleeps: the producer's view
 * of the writer's tail, refreshed only when the ring looks full, may be a
 * lap old, and judged by it every publication woke the writer. */
START_TEST(async_wakes_only_a_quarter)
{
	struct trace_async_opts o = { { NULL, 1ull << 34, 0 }, 1024, -1, 0 };
	struct trace_meta meta;
	struct trace_async *a;
	struct wave_error err;
	struct wave_msg m = msg_of(1);
	char path[128];
	unsigned k;

	snprintf(path, sizeof(path), "%s/wakes.trace", dir);
	o.w.path = path;
	meta_of(&meta);
	ck_assert_int_eq(trace_async_open(&o, &meta, &a, &err), 0);
	/* More than a quarter, all taken; the producer never looked at the
	 * tail (the ring never looked full). */
	for (k = 0; k < 320; k++)
		trace_async_put(a, TRACE_EVENT, 1000 + k, &m);
	trace_async_publish(a);
	while (wave_load_acquire(&a->tail) != a->head || !wave_load_acquire(&a->sleeping))
		usleep(100);
	a->wakes = 0;
	/* One publication's worth waits: no wake-up, however the writer runs. */
	for (k = 0; k < a->pub_every; k++)
		trace_async_put(a, TRACE_EVENT, 2000 + k, &m);
	ck_assert_uint_eq(a->wakes, 0);
	trace_async_close(a);
}
END_TEST

static off_t size_of(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_size : -1;
}

START_TEST(cap_and_rotation)
{
	char path[128], older[160];
	struct wave_error err;
	const uint64_t cap = 4 * TRACE_BLOCK_BYTES;
	size_t len;
	uint8_t *buf;
	int n0, n1, n2;

	/* No rotation: the file stops at the cap, a valid trace. */
	snprintf(path, sizeof(path), "%s/cap.trace", dir);
	write_trace(path, 40000, cap, 0);
	ck_assert_int_le(size_of(path), (off_t)cap);
	buf = slurp(path, &len);
	n0 = read_all(buf, len, &err);
	ck_assert_int_gt(n0, 1000);
	ck_assert_int_lt(n0, 40000);
	free(buf);

	/* Two older files kept; each is a valid trace, none over the cap. */
	snprintf(path, sizeof(path), "%s/rot.trace", dir);
	write_trace(path, 40000, cap, 2);
	ck_assert_int_le(size_of(path), (off_t)cap);
	buf = slurp(path, &len);
	n0 = read_all(buf, len, &err);
	free(buf);
	snprintf(older, sizeof(older), "%s.1", path);
	ck_assert_int_le(size_of(older), (off_t)cap);
	buf = slurp(older, &len);
	n1 = read_all(buf, len, &err);
	free(buf);
	snprintf(older, sizeof(older), "%s.2", path);
	buf = slurp(older, &len);
	n2 = read_all(buf, len, &err);
	free(buf);
	ck_assert_int_gt(n0, 0);
	ck_assert_int_gt(n1, 1000);
	ck_assert_int_gt(n2, 1000);
	snprintf(older, sizeof(older), "%s.3", path);
	ck_assert_int_eq(size_of(older), -1);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("trace");
	TCase *tc = tcase_create("format");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, crc_known);
	tcase_add_test(tc, crc_long);
	tcase_add_test(tc, round_trip);
	tcase_add_test(tc, read_in_batches);
	tcase_add_test(tc, rewound_buffer_checked_again);
	tcase_add_test(tc, truncated);
	tcase_add_test(tc, corrupted);
	tcase_add_test(tc, wrong_version);
	tcase_add_test(tc, unknown_domain);
	tcase_add_test(tc, hostile);
	tcase_add_test(tc, records_past_block);
	tcase_add_test(tc, cap_and_rotation);
	tcase_add_test(tc, lost_records);
	tcase_add_test(tc, reads_format_1);
	tcase_add_test(tc, reads_format_2);
	tcase_add_test(tc, format_3_hostile);
	tcase_add_test(tc, compact_pairs);
	tcase_add_test(tc, async_every_record_or_counted);
	tcase_add_test(tc, async_wakes_only_a_quarter);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return wave_check_run(suite());
}
