/* SPDX-License-Identifier: MIT */
/*
 * Reading decision traces (trace.h). A trace file is untrusted input: every
 * length is checked against what is left before it is used, every block's
 * checksum before its records, and each refusal names the byte offset
 * where the file went wrong.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <wave/domain.h>

#include "../core/core.h"
#include "../core/crc32c.h"
#include "../core/le.h"
#include "trace.h"

/* The largest file trace_reader_open() reads into memory. */
#define TRACE_FILE_MAX (1ull << 34)

struct trace_reader {
	const uint8_t *buf;
	size_t len;
	unsigned major;   /* the file's format */
	unsigned blk_hdr; /* the length of a block header: TRACE_BLK_HDR(_V1) */
	uint64_t lost;    /* not yet given with a record */
	uint64_t lost_total; /* in the blocks entered so far */
	const uint8_t *own; /* @buf when the reader mapped the file */
	char name[256];
	struct trace_meta meta;
	size_t first_block;
	size_t pos;      /* of the next block, or of the next record in one */
	size_t blk_end;  /* end of the current block's payload; 0: none */
	/* The blocks before it passed their checksum: in a file the reader
	 * mapped (@own), which traces only ever grow, they are not checked
	 * again after a rewind (a file rewritten meanwhile could only give
	 * other records: every read stays within the block's bounds). */
	size_t checked_end;
	/* Format 3: a record that starts at or before it is all in the block
	 * whatever its codes say (rec_fast_v3()); 0 otherwise, and once
	 * failed. */
	size_t fast_end;
	uint32_t blk_left;
	uint64_t t;
	/* Format 3's references, within the current block (trace_put()). */
	uint64_t prev[TRACE_WORDS];
	uint64_t last_tf[TRACE_KIND_COUNT];
	int failed;      /* the error every later call returns */
	char why[160];
};

static int fail(struct trace_reader *r, struct wave_error *err, int code, size_t off,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int fail(struct trace_reader *r, struct wave_error *err, int code, size_t off,
		const char *fmt, ...)
{
	char what[120];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(r->why, sizeof(r->why), "offset %zu: %s", off, what);
	r->failed = code;
	r->fast_end = 0;
	return wave_error_set(err, code, r->name, 0, 0, "%s", r->why);
}

static int hdr_parse(struct trace_reader *r, struct wave_error *err)
{
	const uint8_t *b = r->buf;
	uint32_t hlen, plug, par, nset, need;
	const uint8_t *p;

	if (r->len < TRACE_HDR_FIXED)
		return fail(r, err, -WAVE_ECORRUPT, r->len, "truncated header (%zu of %u bytes)",
			    r->len, TRACE_HDR_FIXED);
	if (memcmp(b, TRACE_MAGIC, 8) != 0)
		return fail(r, err, -WAVE_ECORRUPT, 0, "not a libwave trace (bad magic)");
	r->major = wave_get_le16(b + 8);
	if (r->major < 1 || r->major > TRACE_MAJOR)
		return fail(r, err, -WAVE_EVERSION, 8,
			    "trace format %u.%u, this reader reads 1.x to %u.x",
			    r->major, wave_get_le16(b + 10), TRACE_MAJOR);
	r->blk_hdr = r->major == 1 ? TRACE_BLK_HDR_V1 : TRACE_BLK_HDR;
	hlen = wave_get_le32(b + 12);
	plug = wave_get_le16(b + 40);
	nset = wave_get_le16(b + 42);
	par = wave_get_le32(b + 44);
	if (plug > TRACE_PLUGIN_MAX || nset > TRACE_SETUP_MAX || par > TRACE_PARAMS_MAX)
		return fail(r, err, -WAVE_ECORRUPT, 40, "header lengths out of range");
	need = TRACE_HDR_FIXED + plug + par + nset * (4 + WAVE_MSG_PAYLOAD) + 4;
	if (hlen != need)
		return fail(r, err, -WAVE_ECORRUPT, 12, "header length %u, its fields need %u",
			    hlen, need);
	if (hlen > r->len)
		return fail(r, err, -WAVE_ECORRUPT, r->len, "truncated header (%zu of %u bytes)",
			    r->len, hlen);
	if (wave_crc32c(0, b, hlen - 4) != wave_get_le32(b + hlen - 4))
		return fail(r, err, -WAVE_ECORRUPT, hlen - 4, "header checksum mismatch");
	if (wave_get_le32(b + 20) != 0)
		return fail(r, err, -WAVE_ECORRUPT, 20, "unknown header flags 0x%x",
			    wave_get_le32(b + 20));
	r->meta.domain = wave_get_le32(b + 16);
	if (r->meta.domain >= WAVE_DOMAIN_COUNT)
		return fail(r, err, -WAVE_ECORRUPT, 16, "unknown domain %u", r->meta.domain);
	r->meta.host_id = wave_get_le64(b + 24);
	r->meta.start_ns = wave_get_le64(b + 32);
	p = b + TRACE_HDR_FIXED;
	memcpy(r->meta.plugin, p, plug);
	r->meta.plugin[plug] = 0;
	p += plug;
	if (!(r->meta.params = malloc(par + 1)))
		return fail(r, err, -ENOMEM, 0, "out of memory");
	memcpy(r->meta.params, p, par);
	r->meta.params[par] = 0;
	p += par;
	r->meta.n_setup = nset;
	for (unsigned i = 0; i < nset; i++, p += 4 + WAVE_MSG_PAYLOAD) {
		memset(&r->meta.setup[i], 0, sizeof(r->meta.setup[i]));
		r->meta.setup[i].type = wave_get_le16(p);
		r->meta.setup[i].flags = wave_get_le16(p + 2);
		memcpy(r->meta.setup[i].payload.u8, p + 4, WAVE_MSG_PAYLOAD);
	}
	r->first_block = r->pos = hlen;
	return 0;
}

int trace_reader_open_mem(const uint8_t *buf, size_t len, const char *name,
			  struct trace_reader **out, struct wave_error *err)
{
	struct trace_reader *r;
	int ret;

	wave_error_clear(err);
	if ((!buf && len) || !out)
		return wave_error_set(err, -EINVAL, "trace", 0, 0, "invalid argument");
	if (!(r = calloc(1, sizeof(*r))))
		return wave_error_set(err, -ENOMEM, "trace", 0, 0, "out of memory");
	r->buf = buf;
	r->len = len;
	snprintf(r->name, sizeof(r->name), "%s", name ? name : "<trace>");
	if ((ret = hdr_parse(r, err)) < 0) {
		trace_reader_close(r);
		return ret;
	}
	*out = r;
	return 0;
}

static void unmap(const uint8_t *buf, size_t len)
{
	if (buf)
		munmap((void *)(uintptr_t)buf, len);
}

/* Maps the file read-only: the reader reads only what the blocks it is
 * asked for span, so a huge file (up to TRACE_FILE_MAX) that is corrupt
 * early costs neither its size in memory nor the time to read it all. A
 * file truncated while mapped would fault its reader (SIGBUS): traces are
 * only ever appended to, rotated by rename and pruned by unlink, which
 * leave a mapping whole. */
static int map_file(const char *path, const uint8_t **buf, size_t *len)
{
	/* Non-blocking: a FIFO's open would wait for a writer, and is refused
	 * below like anything else that is not a regular file. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK), ret = 0;
	struct stat st;
	void *m;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > TRACE_FILE_MAX) {
		close(fd);
		return -EINVAL;
	}
	*buf = NULL;
	*len = (size_t)st.st_size;
	if (*len) {
		m = mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fd, 0);
		if (m == MAP_FAILED)
			ret = -errno;
		else
			*buf = m;
	}
	close(fd);
	return ret;
}

int trace_reader_open(const char *path, struct trace_reader **out, struct wave_error *err)
{
	const uint8_t *buf = NULL;
	size_t len = 0;
	int ret;

	wave_error_clear(err);
	if (!path || !out)
		return wave_error_set(err, -EINVAL, "trace", 0, 0, "invalid argument");
	if ((ret = map_file(path, &buf, &len)) < 0)
		return wave_error_set(err, ret, path, 0, 0, "cannot read: %s",
				      ret == -EINVAL ? "not a regular file of at most 16 GiB"
						     : wave_strerror(ret));
	if ((ret = trace_reader_open_mem(buf, len, path, out, err)) < 0) {
		unmap(buf, len);
		return ret;
	}
	(*out)->own = buf;
	return 0;
}

const struct trace_meta *trace_reader_meta(const struct trace_reader *r)
{
	return r ? &r->meta : NULL;
}

uint64_t trace_reader_lost(const struct trace_reader *r)
{
	return r ? r->lost_total : 0;
}

/* A hostile count saturates rather than wraps. */
static void add_lost(struct trace_reader *r, uint64_t n)
{
	r->lost = n > UINT64_MAX - r->lost ? UINT64_MAX : r->lost + n;
	r->lost_total = n > UINT64_MAX - r->lost_total ? UINT64_MAX : r->lost_total + n;
}

/* Checks the block at r->pos and enters it. 1, 0 at the end, or an error. */
static int block_enter(struct trace_reader *r, struct wave_error *err)
{
	const uint8_t *h = r->buf + r->pos;
	size_t left = r->len - r->pos;
	uint32_t len, n, crc;

	if (left == 0)
		return 0;
	if (left < r->blk_hdr)
		return fail(r, err, -WAVE_ECORRUPT, r->pos,
			    "truncated block header (%zu of %u bytes)", left, r->blk_hdr);
	if (wave_get_le32(h) != TRACE_BLOCK_MAGIC)
		return fail(r, err, -WAVE_ECORRUPT, r->pos, "not a block (bad magic)");
	len = wave_get_le32(h + 4);
	n = wave_get_le32(h + 8);
	/* The shortest record: 6 bytes (formats 1, 2), 5 (format 3). */
	if (len > TRACE_BLOCK_MAX || n > len / (r->major >= 3 ? 5 : 6) || (n == 0) != (len == 0))
		return fail(r, err, -WAVE_ECORRUPT, r->pos + 4,
			    "block of %u bytes and %u records: impossible", len, n);
	if (len > left - r->blk_hdr)
		return fail(r, err, -WAVE_ECORRUPT, r->pos,
			    "truncated block (%zu of %u payload bytes)", left - r->blk_hdr, len);
	if (r->pos + r->blk_hdr + len > r->checked_end) {
		crc = wave_crc32c(0, h, 12);
		crc = wave_crc32c(crc, h + 16, r->blk_hdr - 16 + len);
		if (crc != wave_get_le32(h + 12))
			return fail(r, err, -WAVE_ECORRUPT, r->pos, "block checksum mismatch");
		if (r->own)
			r->checked_end = r->pos + r->blk_hdr + len;
	}
	/* Time never goes back in a trace: replay's virtual time follows it. */
	if (wave_get_le64(h + 16) < r->t)
		return fail(r, err, -WAVE_ECORRUPT, r->pos + 16,
			    "block time %llu ns is before the previous record's",
			    (unsigned long long)wave_get_le64(h + 16));
	r->t = wave_get_le64(h + 16);
	if (r->blk_hdr > TRACE_BLK_HDR_V1)
		add_lost(r, wave_get_le64(h + 24));
	r->blk_left = n;
	memset(r->prev, 0, sizeof(r->prev));
	memset(r->last_tf, 0, sizeof(r->last_tf));
	r->pos += r->blk_hdr;
	r->blk_end = r->pos + len;
	r->fast_end = r->major >= 3 && len >= TRACE_REC_MAX ? r->blk_end - TRACE_REC_MAX : 0;
	return 1;
}

/* A record's time at @p (LEB128, after its head): into r->t. @p moves
 * past it. 0 or an error. Inline: a call costs as much as the rest of a
 * record of format 2. */
static inline __attribute__((always_inline)) int
rec_time(struct trace_reader *r, size_t *p, struct wave_error *err)
{
	const uint8_t *b = r->buf;
	unsigned shift = 0;
	uint64_t dt = 0;

	for (;; ++*p, shift += 7) {
		if (*p >= r->blk_end || shift > 63)
			return fail(r, err, -WAVE_ECORRUPT, r->pos, "record time runs past its end");
		dt |= (uint64_t)(b[*p] & 0x7f) << shift;
		if (!(b[*p] & 0x80))
			break;
	}
	++*p;
	if (dt > UINT64_MAX - r->t)
		return fail(r, err, -WAVE_ECORRUPT, r->pos, "record time overflows");
	r->t += dt;
	return 0;
}

static void rec_fill(struct trace_reader *r, struct trace_rec *rec, unsigned kind, uint64_t tf)
{
	rec->kind = (enum trace_kind)kind;
	rec->t_ns = r->t;
	rec->offset = r->pos;
	rec->lost = r->lost;
	r->lost = 0;
	rec->msg.type = (uint16_t)tf;
	rec->msg.flags = (uint16_t)(tf >> 16);
	rec->msg.seq = 0;
	rec->msg.tstamp = r->t;
	r->blk_left--;
}

/* One record (formats 1 and 2) of the current block at r->pos. */
static int rec_parse_v2(struct trace_reader *r, struct trace_rec *rec, struct wave_error *err)
{
	const uint8_t *b = r->buf;
	size_t p = r->pos, end = r->blk_end;
	unsigned kind, plen;
	int ret;

	/* A block's records may use up its bytes before its count. */
	if (p >= end)
		return fail(r, err, -WAVE_ECORRUPT, p, "record runs past its block");
	kind = b[p] >> 6; /* two bits: every value is a kind */
	plen = b[p] & 0x3f;
	if (plen > WAVE_MSG_PAYLOAD)
		return fail(r, err, -WAVE_ECORRUPT, p, "record payload of %u bytes: invalid", plen);
	p++;
	if ((ret = rec_time(r, &p, err)) < 0)
		return ret;
	if (end - p < 4 + plen)
		return fail(r, err, -WAVE_ECORRUPT, r->pos, "record runs past its block");
	rec_fill(r, rec, kind, wave_get_le32(b + p));
	memset(rec->msg.payload.u8, 0, WAVE_MSG_PAYLOAD);
	memcpy(rec->msg.payload.u8, b + p + 4, plen);
	r->pos = p + 4 + plen;
	return 1;
}

/* Payload word @k of a format 3 record from its @code, its bytes at *@p
 * (moved past them). 0 or an error. */
static int rec_word(struct trace_reader *r, size_t *p, unsigned k, unsigned code,
		    struct wave_error *err)
{
	uint64_t v = 0;

	if (code == TRACE_WORD_SAME)
		return 0; /* r->prev[k] stays */
	if (code > 8)
		return fail(r, err, -WAVE_ECORRUPT, r->pos, "record word %u: invalid code %u", k,
			    code);
	if (r->blk_end - *p < code)
		return fail(r, err, -WAVE_ECORRUPT, r->pos, "record runs past its block");
	if (r->len - *p >= 8) { /* one load; the bytes past the word are masked off */
		memcpy(&v, r->buf + *p, 8);
		v = code ? le64toh(v) & (~0ull >> (64 - 8 * code)) : 0;
	} else {
		for (unsigned i = 0; i < code; i++)
			v |= (uint64_t)r->buf[*p + i] << 8 * i;
	}
	*p += code;
	r->prev[k] = v;
	return 0;
}

/* A word code's bytes, and the mask of a word of that many (0: the
 * previous record's word, code 9; codes past 9 are refused before). */
static const uint8_t word_len[16] = { 0, 1, 2, 3, 4, 5, 6, 7, 8 };
static const uint64_t word_mask[16] = {
	0, 0xff, 0xffff, 0xffffff, 0xffffffff, 0xffffffffff, 0xffffffffffff, 0xffffffffffffff,
	~0ull,
};

/* Payload word @k of a format 3 record from its code in @codes, its bytes
 * at @p (all of the record's longest form is there to read; codes past 9
 * were refused before): where the next word's bytes are. */
static inline __attribute__((always_inline)) const uint8_t *
word_fast(struct trace_reader *r, struct trace_rec *rec, const uint8_t *p, uint32_t codes,
	  unsigned k)
{
	unsigned c = codes >> 4 * k & 15;
	uint64_t x;

	memcpy(&x, p, 8);
	x = le64toh(x) & word_mask[c];
	if (c == TRACE_WORD_SAME)
		x = r->prev[k];
	r->prev[k] = x;
	rec->msg.payload.u64[k] = htole64(x);
	return p + word_len[c];
}

/* The common record of format 3, at or before r->fast_end (the caller
 * checked) and with nothing to refuse: 1, or 0 to let rec_parse_v3() read
 * it (and name what is wrong). */
static inline __attribute__((always_inline)) int rec_fast_v3(struct trace_reader *r,
							     struct trace_rec *rec)
{
	const uint8_t *b = r->buf + r->pos, *p = b + 1;
	unsigned head = b[0], kind = head >> 6;
	uint64_t dt = 0, tf;
	uint32_t codes;

	if (head & 0x1f)
		return 0;
	for (unsigned shift = 0;; shift += 7) {
		if (shift > 63)
			return 0;
		dt |= (uint64_t)(*p & 0x7f) << shift;
		if (!(*p++ & 0x80))
			break;
	}
	if (dt > UINT64_MAX - r->t)
		return 0;
	if (head & TRACE_REC_SAME_TYPE) {
		if (!(tf = r->last_tf[kind]))
			return 0;
	} else {
		tf = 1ull << 32 | wave_get_le32(p);
		p += 4;
	}
	codes = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
	/* A nibble past 9 has bit 3 and bit 1 or 2 set. */
	if (codes & 0x888888 & (codes << 1 | codes << 2))
		return 0;
	p += 3;
	r->last_tf[kind] = tf;
	r->t += dt;
	_Static_assert(TRACE_WORDS == 6, "a word_fast() per payload word");
	p = word_fast(r, rec, p, codes, 0);
	p = word_fast(r, rec, p, codes, 1);
	p = word_fast(r, rec, p, codes, 2);
	p = word_fast(r, rec, p, codes, 3);
	p = word_fast(r, rec, p, codes, 4);
	p = word_fast(r, rec, p, codes, 5);
	rec_fill(r, rec, kind, tf);
	r->pos = (size_t)(p - r->buf);
	return 1;
}

/* One record (format 3, trace_put()) of the current block at r->pos. */
static int rec_parse_v3(struct trace_reader *r, struct trace_rec *rec, struct wave_error *err)
{
	const uint8_t *b = r->buf;
	size_t p = r->pos, end = r->blk_end;
	unsigned kind, head;
	uint32_t codes;
	uint64_t tf;
	int ret;

	if (p >= end)
		return fail(r, err, -WAVE_ECORRUPT, p, "record runs past its block");
	head = b[p++];
	kind = head >> 6;
	if (head & 0x1f)
		return fail(r, err, -WAVE_ECORRUPT, r->pos, "record head 0x%02x: unknown bits",
			    head);
	if ((ret = rec_time(r, &p, err)) < 0)
		return ret;
	if (head & TRACE_REC_SAME_TYPE) {
		if (!(tf = r->last_tf[kind]))
			return fail(r, err, -WAVE_ECORRUPT, r->pos,
				    "record repeats the type of a %s its block has not had",
				    trace_kind_name((enum trace_kind)kind));
	} else {
		if (end - p < 4)
			return fail(r, err, -WAVE_ECORRUPT, r->pos, "record runs past its block");
		r->last_tf[kind] = tf = 1ull << 32 | wave_get_le32(b + p);
		p += 4;
	}
	if (end - p < 3)
		return fail(r, err, -WAVE_ECORRUPT, r->pos, "record runs past its block");
	codes = (uint32_t)b[p] | (uint32_t)b[p + 1] << 8 | (uint32_t)b[p + 2] << 16;
	p += 3;
	for (unsigned k = 0; k < TRACE_WORDS; k++) {
		if ((ret = rec_word(r, &p, k, codes >> 4 * k & 15, err)) < 0)
			return ret;
		rec->msg.payload.u64[k] = htole64(r->prev[k]);
	}
	rec_fill(r, rec, kind, tf);
	r->pos = p;
	return 1;
}

/* Anything but a common record of format 3 within its block: a block to
 * enter, formats 1 and 2, a record near its block's end or one to refuse,
 * an error. Out of line, so that the common record's path is short. */
static __attribute__((noinline)) int next_slow(struct trace_reader *r, struct trace_rec *rec,
					      struct wave_error *err)
{
	int ret;

	/* @err is filled on failure only: clearing it costs more than reading
	 * a record. */
	if (!r || !rec)
		return wave_error_set(err, -EINVAL, "trace", 0, 0, "invalid argument");
	if (r->failed)
		return wave_error_set(err, r->failed, r->name, 0, 0, "%s", r->why);
	while (r->blk_left == 0) {
		if (r->blk_end && r->pos != r->blk_end)
			return fail(r, err, -WAVE_ECORRUPT, r->pos,
				    "%zu bytes after the block's last record", r->blk_end - r->pos);
		r->blk_end = r->fast_end = 0;
		if ((ret = block_enter(r, err)) <= 0)
			return ret;
	}
	if (r->major < 3)
		return rec_parse_v2(r, rec, err);
	if (r->pos <= r->fast_end && rec_fast_v3(r, rec))
		return 1;
	return rec_parse_v3(r, rec, err);
}

int trace_reader_next(struct trace_reader *r, struct trace_rec *rec, struct wave_error *err)
{
	if (r && rec && r->blk_left && r->pos <= r->fast_end && rec_fast_v3(r, rec))
		return 1;
	return next_slow(r, rec, err);
}

int trace_reader_read(struct trace_reader *r, struct trace_rec *recs, unsigned n,
		      struct wave_error *err)
{
	unsigned i;
	int ret;

	if (!r || !recs || n == 0 || n > INT_MAX)
		return wave_error_set(err, -EINVAL, "trace", 0, 0, "invalid argument");
	for (i = 0; i < n; i++) {
		if (r->blk_left && r->pos <= r->fast_end && rec_fast_v3(r, &recs[i]))
			continue;
		/* An error stays the reader's (r->failed): the next call
		 * returns it again, with @err filled. */
		if ((ret = next_slow(r, &recs[i], i ? NULL : err)) != 1)
			return i ? (int)i : ret;
	}
	return (int)n;
}

void trace_reader_rewind(struct trace_reader *r)
{
	if (!r)
		return;
	r->pos = r->first_block;
	r->blk_end = r->fast_end = 0;
	r->blk_left = 0;
	r->t = 0;
	r->lost = r->lost_total = 0;
	r->failed = 0;
}

void trace_reader_close(struct trace_reader *r)
{
	if (!r)
		return;
	free(r->meta.params);
	unmap(r->own, r->len);
	free(r);
}
