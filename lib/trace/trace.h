/* SPDX-License-Identifier: MIT */
/*
 * Decision traces: what one host sent one domain of the agent and what the
 * agent decided, as a compact binary file (docs/trace.md has the layout).
 * The agent writes them (lib/agent), wave-replay and the tests read them.
 *
 * The format knows no domain: a record is a wave_msg (type, flags and the
 * 48-byte payload as they were on the wire) with its kind and time. It sits
 * just above lib/core, so that the agent, the tools and the fuzz target can
 * all use it without pulling in anything else.
 *
 * File:   header, then blocks until the end of the file.
 * Header: "WAVETRC\0", u16 major, u16 minor, u32 header length (all of it,
 *         checksum included), u32 domain, u32 flags (0), u64 host id,
 *         u64 start time (ns), u16 plugin name length, u16 setup messages,
 *         u32 params length; the plugin name, the params (JSON text), each
 *         setup message (u16 type, u16 flags, 48 payload bytes); u32
 *         CRC-32C of everything before it.
 * Block:  u32 "WBLK", u32 payload length, u32 records, u32 CRC-32C of the
 *         block's other header fields and its payload, u64 base time (ns),
 *         u64 records lost just before the block (the recorder fell
 *         behind: trace_writer_lost()); then the records. Format 1.x
 *         blocks end their header at the base time (24 bytes, nothing
 *         lost); the reader reads both.
 * Record (format 3): u8 kind << 6 | S << 5 (bits 0..4 zero); LEB128 ns
 *         since the previous record (the block's base time for its
 *         first); unless S, u16 type and u16 flags (S: those of the
 *         previous record of this kind in the block); 3 bytes, a 4-bit
 *         code per payload word k (u64, in bits 4k..4k+3): 0 zero, 1..8
 *         that many low bytes of it follow, 9 the previous record's word k
 *         in the block (zero for its first); then the bytes the codes say,
 *         word 0 first. A block decodes alone: what "previous" means
 *         starts again at each block.
 * Record (formats 1 and 2): u8 kind << 6 | payload length (trailing zero
 *         bytes of the payload are not stored), LEB128 ns since the
 *         previous record, u16 type, u16 flags, the payload's first
 *         (length) bytes.
 * All integers are little-endian.
 */
#ifndef WAVE_TRACE_TRACE_H
#define WAVE_TRACE_TRACE_H

#include <endian.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <wave/error.h>
#include <wave/msg.h>

#define TRACE_MAGIC "WAVETRC"  /* and its NUL: 8 bytes */
#define TRACE_BLOCK_MAGIC 0x4b4c4257u /* "WBLK" */
#define TRACE_MAJOR 3
#define TRACE_MINOR 0
#define TRACE_HDR_FIXED 48
#define TRACE_BLK_HDR 32
#define TRACE_BLK_HDR_V1 24
#define TRACE_PLUGIN_MAX 255
#define TRACE_PARAMS_MAX 65536
#define TRACE_SETUP_MAX 4
/* A writer's blocks; a reader accepts up to TRACE_BLOCK_MAX. */
#define TRACE_BLOCK_BYTES (64u << 10)
#define TRACE_BLOCK_MAX (1u << 20)
/* The longest record: head, 10-byte LEB128, type, flags, codes, payload. */
#define TRACE_REC_MAX (1 + 10 + 4 + 3 + WAVE_MSG_PAYLOAD)
#define TRACE_WORDS (WAVE_MSG_PAYLOAD / 8)
/* A record's head: S, the type and flags of the previous record of its kind. */
#define TRACE_REC_SAME_TYPE 0x20u
/* A payload word's code: the previous record's word. */
#define TRACE_WORD_SAME 9u

enum trace_kind {
	TRACE_EVENT,    /* from the host (outcomes of decisions are events) */
	TRACE_DECISION, /* from the plugin, as it left for the host */
	TRACE_DROPPED,  /* from the plugin, dropped by its domain before leaving */
	TRACE_TICK,     /* the agent ran the plugin's periodic tick (no message) */
	TRACE_KIND_COUNT
};
_Static_assert(TRACE_KIND_COUNT == 4, "a record's kind is two bits, each a kind");

/* What a trace is of: its header. */
struct trace_meta {
	uint32_t domain; /* enum wave_domain */
	uint64_t host_id;
	uint64_t start_ns;
	char plugin[TRACE_PLUGIN_MAX + 1];
	char *params; /* JSON text; the writer copies it, the reader owns it */
	unsigned n_setup;
	/* Messages that describe the host (sched: its SETUP), so that a file
	 * begun later or rotated can be replayed without what came before. */
	struct wave_msg setup[TRACE_SETUP_MAX];
};

struct trace_rec {
	enum trace_kind kind;
	uint64_t t_ns;
	uint64_t offset; /* of the record in the file */
	uint64_t lost;   /* records the recorder lost just before this one */
	struct wave_msg msg; /* seq 0, tstamp = t_ns */
};

/* ---- writing ----------------------------------------------------------- */

struct trace_writer_opts {
	const char *path;
	uint64_t max_bytes; /* a file's cap; at least 4 blocks */
	unsigned rotate;    /* older files kept as path.1 .. path.N; 0: stop at the cap */
};

/* The fast path (trace_put) is inline; the rest is trace_write.c's. */
struct trace_writer {
	uint8_t *buf; /* block header room, then the payload being filled */
	uint32_t len; /* payload bytes */
	uint32_t n;   /* records */
	uint64_t base_ns, last_ns;
	/* What records refer to, within the block being filled: the previous
	 * record's payload words, and each kind's last type and flags (bit
	 * 32: there was one). */
	uint64_t prev[TRACE_WORDS];
	uint64_t last_tf[TRACE_KIND_COUNT];
	bool stopped; /* at the cap without rotation, or a write failed */
	uint64_t dropped; /* records not written since it stopped */
	uint64_t lost;    /* trace_writer_lost() since the last block began */
	uint64_t file_bytes;
	int fd;
	unsigned files; /* made so far, this one included */
	struct trace_writer_opts o;
	struct trace_meta meta;
};

/* Creates @o->path and writes its header; a file there already becomes
 * path.1 (and so on) when rotating, else is replaced. 0, or -errno
 * with @err filled. */
int trace_writer_open(const struct trace_writer_opts *o, const struct trace_meta *meta,
		      struct trace_writer **out, struct wave_error *err);
/* The header of the next files (rotation) carries these. */
void trace_writer_set_setup(struct trace_writer *w, const struct wave_msg *m, unsigned n);
/* @n records were lost here (the recorder fell behind): the block being
 * filled is written, and the next one's header says so. */
void trace_writer_lost(struct trace_writer *w, uint64_t n);
/* Writes the block being filled (a checkpoint, or when it is full). */
int trace_writer_flush(struct trace_writer *w);
/* Flushes and closes; NULL is ignored. */
void trace_writer_close(struct trace_writer *w);

/* One payload word into @p (8 bytes stored, fewer kept: within
 * TRACE_REC_MAX of the record's start, whatever the codes), against the
 * previous record's @prev. Return: its code. */
static inline unsigned trace_word_put(uint8_t **p, uint64_t w, uint64_t prev)
{
	unsigned len;

	if (w == 0)
		return 0;
	if (w == prev)
		return TRACE_WORD_SAME;
	len = 8 - (unsigned)__builtin_clzll(w) / 8;
	w = htole64(w);
	memcpy(*p, &w, 8);
	*p += len;
	return len;
}

/* Appends a record of @kind at @now (ns, never going back: an earlier
 * time is taken as @w's last). Never fails: a writer that cannot write
 * counts what it loses in @w->dropped (logged once). */
static inline void trace_put(struct trace_writer *w, enum trace_kind kind, uint64_t now,
			     const struct wave_msg *m)
{
	uint64_t dt, tf = 1ull << 32 | (uint32_t)m->flags << 16 | m->type;
	uint8_t *p, *head, *codes;
	uint32_t code = 0;

	if (w->len + TRACE_REC_MAX > TRACE_BLOCK_BYTES)
		trace_writer_flush(w);
	if (w->stopped) {
		w->dropped++;
		return;
	}
	if (w->n == 0) {
		w->base_ns = w->last_ns = now > w->last_ns ? now : w->last_ns;
		memset(w->prev, 0, sizeof(w->prev));
		memset(w->last_tf, 0, sizeof(w->last_tf));
	}
	dt = now > w->last_ns ? now - w->last_ns : 0;
	w->last_ns += dt;
	head = p = w->buf + TRACE_BLK_HDR + w->len;
	*p++ = (uint8_t)(kind << 6);
	while (dt >= 0x80) {
		*p++ = (uint8_t)(dt | 0x80);
		dt >>= 7;
	}
	*p++ = (uint8_t)dt;
	if (w->last_tf[kind] == tf) {
		*head |= TRACE_REC_SAME_TYPE;
	} else {
		p[0] = (uint8_t)m->type;
		p[1] = (uint8_t)(m->type >> 8);
		p[2] = (uint8_t)m->flags;
		p[3] = (uint8_t)(m->flags >> 8);
		p += 4;
		w->last_tf[kind] = tf;
	}
	codes = p;
	p += 3;
	for (unsigned k = 0; k < TRACE_WORDS; k++) {
		uint64_t v = le64toh(m->payload.u64[k]);

		code |= trace_word_put(&p, v, w->prev[k]) << 4 * k;
		w->prev[k] = v;
	}
	codes[0] = (uint8_t)code;
	codes[1] = (uint8_t)(code >> 8);
	codes[2] = (uint8_t)(code >> 16);
	w->len = (uint32_t)(p - (w->buf + TRACE_BLK_HDR));
	w->n++;
}

/* ---- reading ----------------------------------------------------------- */

struct trace_reader;

/* Reads the file at @path (or, with trace_reader_open_mem, @len bytes at
 * @buf, which must outlive the reader) and checks its header. 0, or
 * -WAVE_ECORRUPT / -WAVE_EVERSION / -errno with @err saying at which byte
 * offset and why. */
int trace_reader_open(const char *path, struct trace_reader **out, struct wave_error *err);
int trace_reader_open_mem(const uint8_t *buf, size_t len, const char *name,
			  struct trace_reader **out, struct wave_error *err);
const struct trace_meta *trace_reader_meta(const struct trace_reader *r);
/* The next record: 1, 0 at the end, or an error as for open (the same
 * error again on every later call; @err is only written then). Each block is checked whole before
 * its first record is given. */
int trace_reader_next(struct trace_reader *r, struct trace_rec *rec, struct wave_error *err);
/* Up to @n next records into @recs[0..n-1], for a caller that goes
 * through many (one call's cost, not one a record): how many (1 to @n), 0
 * at the end, or an error as for trace_reader_next(). Records before an
 * error or the end are given first; the next call returns it. */
int trace_reader_read(struct trace_reader *r, struct trace_rec *recs, unsigned n,
		      struct wave_error *err);
/* Records the recorder lost, in the blocks read so far (format 2). */
uint64_t trace_reader_lost(const struct trace_reader *r);
/* Starts again from the first block. A reader of a file checks each
 * block's checksum once (its copy cannot change); a reader of a caller's
 * buffer checks them again. */
void trace_reader_rewind(struct trace_reader *r);
void trace_reader_close(struct trace_reader *r);

/* A trace kind's name ("event", "decision", "dropped", "tick"). */
const char *trace_kind_name(enum trace_kind k);

#endif /* WAVE_TRACE_TRACE_H */
