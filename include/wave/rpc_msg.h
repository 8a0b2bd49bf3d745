/* SPDX-License-Identifier: MIT */
/**
 * @file rpc_msg.h
 * The messages of the rpc domain: what the host tells the agent about its
 * workers, its steering table and its load, what the agent decides, and
 * how each decision ended. The host API is in rpc.h; this is the wire.
 *
 * Model. The host has @max_workers worker numbers, each live or not, with
 * a generation that each addition advances; and a steering table of
 * @n_buckets flow buckets followed by @n_classes class entries (together
 * the table's entries, "buckets" below), each naming a worker (or
 * WAVE_RPC_NO_WORKER before the first worker) and carrying a sequence
 * number that every change of its worker advances. The table has an epoch
 * that advances when the host rewrites it whole. @n_dispatchers
 * dispatchers each have a prestaged worker, or none.
 *
 * Events, host to agent:
 *   SETUP        the sizes and the epoch; the host's first rpc message of
 *                a session (the agent makes its state then)
 *   WORKER_ADD   @worker is live, with generation @gen
 *   WORKER_DEL   @worker (generation @gen) is gone; it owns no bucket any
 *                more (the BUCKETS moving them away came first), and
 *                dispatchers that had it prestaged have none
 *   BUCKETS      @n (1..5) consecutive buckets from @bucket now have these
 *                workers and sequence numbers, in epoch @epoch: a change
 *                the host made itself, or the table replayed at resync
 *   LOAD         what @worker did in the period: queue depth now, busy
 *                time, completions and their service times
 *   ARRIVALS     @n (1..6) pairs (bucket, arrivals in the period)
 *   CLASS_LOAD   class entry @bucket's requests completed in the period
 *                and their service times (sent for the classes the
 *                application reported with wave_rpc_class_load(); a
 *                later addition: an agent that predates it refuses each
 *                one as a bad message, counts it, and carries on)
 *   REPORT       closes a period of @period_ns: the LOADs, CLASS_LOADs
 *                and ARRIVALS since the last REPORT belong to it
 * Decisions, agent to host:
 *   MOVE         steer bucket @bucket to @worker (generation @gen), based
 *                on the bucket's sequence number @seq in epoch @epoch
 *   PRESTAGE     dispatcher @bucket's next worker is @worker (generation
 *                @gen), in epoch @epoch
 * Outcome, host to agent, one per decision:
 *   OUTCOME      @decision (MOVE or PRESTAGE) about @bucket (a bucket or
 *                a dispatcher) to @worker ended with @result (enum
 *                wave_result) and @why (enum wave_rpc_abort); for a
 *                MOVE, @cur_worker, @seq and @epoch are the bucket's
 *                worker, its sequence number and the epoch after it
 *
 * Wire layout. Each message is one struct wave_msg; the payload is one of
 * the structs below, little-endian, every reserved field and unused entry
 * 0. The header's flags carry the entry count of BUCKETS and ARRIVALS and
 * are 0 in every other type. Use wave_rpc_msg_encode() and
 * wave_rpc_msg_decode(), which check every field against the sizes.
 */
#ifndef WAVE_RPC_MSG_H
#define WAVE_RPC_MSG_H

#include <stddef.h>
#include <stdint.h>

#include <wave/domain.h>
#include <wave/export.h>
#include <wave/msg.h>
#include <wave/rpc.h>

#ifdef __cplusplus
extern "C" {
#define WAVE_RPC_STATIC_ASSERT static_assert
#else
#define WAVE_RPC_STATIC_ASSERT _Static_assert
#endif

/* Message types: events 0x0301.., SETUP 0x0320, decisions 0x0340..,
 * outcomes 0x0380. */
#define WAVE_RPC_WORKER_ADD (WAVE_MSG_RPC_FIRST + 0x01)
#define WAVE_RPC_WORKER_DEL (WAVE_MSG_RPC_FIRST + 0x02)
#define WAVE_RPC_BUCKETS (WAVE_MSG_RPC_FIRST + 0x03)
#define WAVE_RPC_LOAD (WAVE_MSG_RPC_FIRST + 0x04)
#define WAVE_RPC_ARRIVALS (WAVE_MSG_RPC_FIRST + 0x05)
#define WAVE_RPC_REPORT (WAVE_MSG_RPC_FIRST + 0x06)
#define WAVE_RPC_CLASS_LOAD (WAVE_MSG_RPC_FIRST + 0x07)
#define WAVE_RPC_SETUP (WAVE_MSG_RPC_FIRST + 0x20)
#define WAVE_RPC_MOVE (WAVE_MSG_RPC_FIRST + 0x40)
#define WAVE_RPC_PRESTAGE (WAVE_MSG_RPC_FIRST + 0x41)
#define WAVE_RPC_OUTCOME (WAVE_MSG_RPC_FIRST + 0x80)

/** Entries of one BUCKETS and one ARRIVALS message. */
#define WAVE_RPC_BUCKETS_PER_MSG 5
#define WAVE_RPC_ARRIVALS_PER_MSG 6

/** Payload of SETUP. Every count within the limits of rpc.h;
 *  @n_buckets a power of two. */
struct wave_rpc_wire_setup {
	uint32_t n_buckets;
	uint32_t n_classes;
	uint32_t max_workers;
	uint32_t n_dispatchers;
	uint32_t epoch;
	uint32_t reserved0;
	uint64_t report_ns;
	uint64_t reserved1[2];
};

/** Payload of WORKER_ADD and WORKER_DEL. */
struct wave_rpc_wire_worker {
	uint32_t worker;
	uint32_t gen;
	uint64_t now_ns;
	uint64_t reserved[4];
};

/** Payload of BUCKETS: flags entries from bucket @first. */
struct wave_rpc_wire_buckets {
	uint32_t first;
	uint32_t epoch;
	struct {
		uint32_t worker;
		uint32_t seq;
	} e[WAVE_RPC_BUCKETS_PER_MSG];
};

/** Payload of LOAD. */
struct wave_rpc_wire_load {
	uint32_t worker;
	uint32_t queue_depth;
	uint64_t busy_ns;
	uint64_t completions;
	uint64_t service_ns;
	uint64_t max_service_ns;
	uint64_t reserved;
};

/** Payload of CLASS_LOAD: @bucket is a class entry (n_buckets + class). */
struct wave_rpc_wire_class_load {
	uint32_t bucket;
	uint32_t reserved0;
	uint64_t completions;
	uint64_t service_ns;
	uint64_t max_service_ns;
	uint64_t reserved[2];
};

/** Payload of ARRIVALS: flags pairs. */
struct wave_rpc_wire_arrivals {
	struct {
		uint32_t bucket;
		uint32_t count;
	} e[WAVE_RPC_ARRIVALS_PER_MSG];
};

/** Payload of REPORT. */
struct wave_rpc_wire_report {
	uint64_t period_ns;
	uint64_t now_ns;
	uint64_t reserved[4];
};

/** Payload of MOVE and PRESTAGE (@seq 0 for a PRESTAGE). */
struct wave_rpc_wire_decision {
	uint32_t bucket;
	uint32_t worker;
	uint32_t gen;
	uint32_t seq;
	uint32_t epoch;
	uint32_t reserved0;
	uint64_t reserved1[3];
};

/** Payload of OUTCOME. */
struct wave_rpc_wire_outcome {
	uint32_t bucket;
	uint32_t worker;
	uint32_t gen;
	uint32_t seq;
	uint32_t epoch;
	uint32_t cur_worker;
	uint64_t now_ns;
	uint16_t decision;
	uint8_t result;
	uint8_t why;
	uint32_t reserved0;
	uint64_t reserved1;
};

#define WAVE_RPC_WIRE_SIZE_(s) WAVE_RPC_STATIC_ASSERT(sizeof(struct s) == WAVE_MSG_PAYLOAD, #s " fills the payload")
WAVE_RPC_WIRE_SIZE_(wave_rpc_wire_setup);
WAVE_RPC_WIRE_SIZE_(wave_rpc_wire_worker);
WAVE_RPC_WIRE_SIZE_(wave_rpc_wire_buckets);
WAVE_RPC_WIRE_SIZE_(wave_rpc_wire_load);
WAVE_RPC_WIRE_SIZE_(wave_rpc_wire_arrivals);
WAVE_RPC_WIRE_SIZE_(wave_rpc_wire_class_load);
WAVE_RPC_WIRE_SIZE_(wave_rpc_wire_report);
WAVE_RPC_WIRE_SIZE_(wave_rpc_wire_decision);
WAVE_RPC_WIRE_SIZE_(wave_rpc_wire_outcome);
#undef WAVE_RPC_WIRE_SIZE_
WAVE_RPC_STATIC_ASSERT(offsetof(struct wave_rpc_wire_setup, report_ns) == 24, "report_ns");
WAVE_RPC_STATIC_ASSERT(offsetof(struct wave_rpc_wire_buckets, e) == 8, "buckets e");
WAVE_RPC_STATIC_ASSERT(offsetof(struct wave_rpc_wire_load, busy_ns) == 8, "busy_ns");
WAVE_RPC_STATIC_ASSERT(offsetof(struct wave_rpc_wire_outcome, now_ns) == 24, "outcome now");
WAVE_RPC_STATIC_ASSERT(offsetof(struct wave_rpc_wire_outcome, decision) == 32, "decision");
WAVE_RPC_STATIC_ASSERT(offsetof(struct wave_rpc_wire_outcome, why) == 35, "why");

/**
 * struct wave_rpc_dims - the sizes a host announced in its SETUP, against
 * which every later message is checked.
 */
struct wave_rpc_dims {
	uint32_t n_buckets;
	uint32_t n_classes;
	uint32_t max_workers;
	uint32_t n_dispatchers;
};

/**
 * struct wave_rpc_msg - any rpc message, decoded.
 * @type:       one of the WAVE_RPC_* message types.
 * @n:          BUCKETS, ARRIVALS: entries used (the rest are 0).
 * @decision, @result, @why: OUTCOME.
 * @bucket:     BUCKETS: the first; ARRIVALS: unused; CLASS_LOAD: a class
 *              entry (n_buckets..n_buckets + n_classes - 1); MOVE, OUTCOME: a
 *              table entry (< n_buckets + n_classes); PRESTAGE, OUTCOME of
 *              a PRESTAGE: a dispatcher (< n_dispatchers).
 * @worker:     WORKER_*, LOAD, MOVE, PRESTAGE, OUTCOME: < max_workers.
 * @gen:        WORKER_*, MOVE, PRESTAGE, OUTCOME: the worker's generation.
 * @seq:        MOVE: the bucket's sequence number it was based on;
 *              OUTCOME of a MOVE: the bucket's after it.
 * @epoch:      SETUP, BUCKETS, MOVE, PRESTAGE, OUTCOME: a table epoch.
 * @cur_worker: OUTCOME of a MOVE: the bucket's worker after it.
 * @queue_depth: LOAD.
 * @dims:       SETUP: the sizes.
 * @now_ns:     WORKER_*, REPORT, OUTCOME: host CLOCK_MONOTONIC ns.
 * @busy_ns:    LOAD.
 * @completions, @service_ns, @max_service_ns: LOAD, CLASS_LOAD.
 * @period_ns:  REPORT: the period's length; SETUP: the report period.
 * @e:          BUCKETS: (worker, seq) per bucket from @bucket; ARRIVALS:
 *              (bucket, count).
 *
 * Fields a type does not have are 0 after decoding and must be 0 for
 * encoding.
 */
struct wave_rpc_msg {
	uint16_t type;
	uint16_t decision;
	uint8_t n;
	uint8_t result;
	uint8_t why;
	uint32_t bucket;
	uint32_t worker;
	uint32_t gen;
	uint32_t seq;
	uint32_t epoch;
	uint32_t cur_worker;
	uint32_t queue_depth;
	struct wave_rpc_dims dims;
	uint64_t now_ns;
	uint64_t busy_ns;
	uint64_t completions;
	uint64_t service_ns;
	uint64_t max_service_ns;
	uint64_t period_ns;
	struct {
		uint32_t a, b;
	} e[WAVE_RPC_ARRIVALS_PER_MSG];
};

/**
 * wave_rpc_dims_check() - are @d sizes a host may announce (the limits of
 * rpc.h, n_buckets a power of two)? Return: 0 or -ERANGE (-EINVAL for
 * NULL).
 */
WAVE_API int wave_rpc_dims_check(const struct wave_rpc_dims *d);

/**
 * wave_rpc_msg_decode() - check and decode one rpc message.
 * @in:   a message from the peer; untrusted, every byte is checked.
 * @dims: the sizes from the host's SETUP, or NULL to decode a SETUP (the
 *        only type decoded then; its sizes are checked with
 *        wave_rpc_dims_check()).
 * @out:  receives the decoded message; zeroed on failure.
 *
 * Return: 0, or
 *   -EINVAL   a NULL pointer, or @dims that fail wave_rpc_dims_check();
 *   -ENOMSG   @in->type is not an rpc message type (or not SETUP when
 *             @dims is NULL, or SETUP when it is not);
 *   -EBADMSG  flags, a reserved field or an unused entry not 0, an entry
 *             count out of range, a result, detail or decision type this
 *             header does not define, or a result and detail that do not
 *             go together (rpc.h lists the pairs);
 *   -ERANGE   a bucket, worker or dispatcher outside the sizes.
 */
WAVE_API int wave_rpc_msg_decode(const struct wave_msg *in, const struct wave_rpc_dims *dims,
				 struct wave_rpc_msg *out);

/**
 * wave_rpc_msg_encode() - build the wire form of an rpc message.
 * @in:   the decoded form; must pass the checks of the decoder.
 * @dims: as for wave_rpc_msg_decode().
 * @out:  receives the message (flags, seq and tstamp as the decoder wants
 *        them); untouched on failure.
 * Return: 0, or the error wave_rpc_msg_decode() would return for it.
 */
WAVE_API int wave_rpc_msg_encode(const struct wave_rpc_msg *in, const struct wave_rpc_dims *dims,
				 struct wave_msg *out);

/** wave_rpc_msg_type_name() - "worker_add", "move", ... for an rpc
 *  message type, or NULL for any other number. */
WAVE_API const char *wave_rpc_msg_type_name(uint16_t type);

/** wave_rpc_abort_name() - "none", "worker_gone", "bucket_moved",
 *  "epoch", "same_worker", "backend" for an enum wave_rpc_abort, or
 *  NULL. */
WAVE_API const char *wave_rpc_abort_name(unsigned why);

#ifdef __cplusplus
}
#endif

#endif /* WAVE_RPC_MSG_H */
