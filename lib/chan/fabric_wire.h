/* SPDX-License-Identifier: MIT */
/*
 * The fabric:// wire protocol: what one libfabric transfer between two channel
 * ends carries. An ABI between two machines: fixed-width little-endian fields,
 * every offset asserted, a magic and a protocol version checked before use.
 *
 * Every transfer is a frame: a 16-byte header, then, for a DATA frame, 1 to
 * FAB_FRAME_MSGS messages of 64 bytes. Every header also carries the
 * sender's receive credit (how many messages and data frames it has consumed
 * of the other direction), so credit rides on data whenever there is data.
 *
 * Handshake: the host sends HELLO to the listener's address; the agent answers
 * with REPLY, either a refusal (from the listener's endpoint, nothing else is
 * ever sent to that host) or an acceptance naming the address of the endpoint
 * it made for this channel alone. From then on the two channel endpoints
 * exchange DATA, CREDIT, HEARTBEAT, BYE and BYE_ACK frames.
 *
 * Mailboxes (protocol 1.1). A host that wants mailboxes appends a struct
 * fab_mbox_offer to its hello: how many, and, when its provider can take
 * remote writes, where their slots are in its memory (a registered region:
 * address and key). An agent of 1.1 answers with a struct fab_mbox_accept
 * appended to its acceptance. The agent then writes a put's whole slot
 * (struct fab_mbox_slot) into the host's memory with one RMA write, or, with
 * no RMA, sends it in an MBOX frame that the host copies into the same slot.
 * Either way the host judges the slot by its put count and checksum (a write
 * still landing fails the checksum and reads as empty), and tells the agent
 * what it took in MBOX_TAKEN frames: the agent puts into a mailbox again only
 * after that. A host about to sleep sets FAB_F_SLEEPING on a frame; an agent
 * that then writes a slot (or sees the flag with a put not yet taken) sends a
 * BELL frame to wake it. 1.0 peers send and accept the shorter frames and
 * have no mailboxes.
 */
#ifndef WAVE_FABRIC_WIRE_H
#define WAVE_FABRIC_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include <wave/msg.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the fabric wire format is little-endian; add byte swapping for this machine"
#endif

#define FAB_MAGIC 0xa7u
#define FAB_PROTO_MAJOR 1u
#define FAB_PROTO_MINOR 1u

/* Messages per DATA frame, at most: one frame is one transfer. */
#define FAB_FRAME_MSGS 32u
#define FAB_HDR_SIZE 16u
#define FAB_BUF_SIZE (FAB_HDR_SIZE + FAB_FRAME_MSGS * WAVE_MSG_SIZE)
/* Address blobs exchanged in the handshake (sockaddr or shm name). */
#define FAB_ADDR_MAX 128u
#define FAB_TOKEN_MAX 64u
#define FAB_REASON_MAX 120u

enum fab_kind {
	FAB_DATA = 1,      /* count messages follow */
	FAB_CREDIT = 2,    /* header only: credit update */
	FAB_HEARTBEAT = 3, /* header only: I am alive */
	FAB_BYE = 4,       /* header only: I closed; nothing follows */
	FAB_BYE_ACK = 5,   /* header only: your BYE and all before it arrived */
	FAB_HELLO = 6,     /* struct fab_hello */
	FAB_REPLY = 7,     /* struct fab_reply */
	FAB_MBOX = 8,      /* agent: struct fab_mbox_body, a put without RMA */
	FAB_MBOX_TAKEN = 9, /* host: count struct fab_mbox_taken follow */
	FAB_BELL = 10,     /* agent: header only: a mailbox holds a put */
};

/* Header flags. */
#define FAB_F_CREDIT_REQ 0x1u /* sender is out of credit: report any progress */
#define FAB_F_ACK_WANTED 0x2u /* BYE: messages of mine are still unconsumed; ack it */
#define FAB_F_SLEEPING 0x4u   /* host: about to sleep; ring a BELL with the next put */

struct fab_hdr {
	uint8_t magic;        /* FAB_MAGIC */
	uint8_t kind;         /* enum fab_kind */
	uint16_t count;       /* DATA: messages that follow; otherwise 0 */
	uint32_t msgs_done;   /* messages of the other direction consumed */
	uint32_t frames_done; /* data frames of the other direction released */
	uint32_t flags;       /* FAB_F_* */
};

struct fab_hello {
	struct fab_hdr h;
	uint16_t proto_major, proto_minor;
	uint32_t h2a_slots;  /* ring sizes the host asks for, in messages */
	uint32_t a2h_slots;
	uint32_t rx_frames;  /* data buffers the host posted for a2h */
	uint32_t frame_msgs; /* messages per frame the host's buffers hold */
	uint32_t token_len;  /* 0 = no token */
	uint64_t nonce;      /* echoed in the reply */
	uint8_t token[FAB_TOKEN_MAX];
	uint32_t addr_len;   /* the host endpoint's address */
	uint32_t reserved;
	uint8_t addr[FAB_ADDR_MAX];
};

struct fab_reply {
	struct fab_hdr h;
	uint16_t proto_major, proto_minor;
	int32_t status;      /* 0, or a positive wave/errno code */
	uint64_t nonce;      /* the hello's */
	uint32_t rx_frames;  /* data buffers the agent posted for h2a */
	uint32_t frame_msgs;
	uint32_t addr_len;   /* the agent channel endpoint's address */
	uint32_t reserved;
	uint8_t addr[FAB_ADDR_MAX];
	char reason[FAB_REASON_MAX]; /* NUL-terminated text when refused */
};

/* Appended to a hello by a host that wants mailboxes. */
#define FAB_MBOX_RMA 0x1u /* offer: slot 0 is at @addr under @key; accept: written so */
struct fab_mbox_offer {
	uint32_t n_mbox; /* 1 to WAVE_CHAN_MAX_MAILBOXES */
	uint32_t flags;  /* FAB_MBOX_RMA */
	uint64_t addr;   /* the target address of slot 0 for a remote write */
	uint64_t key;    /* the key of the slots' memory region */
	uint64_t reserved;
};

/* Appended to an acceptance of a hello that offered mailboxes. */
struct fab_mbox_accept {
	uint32_t n_mbox; /* as offered */
	uint32_t flags;  /* FAB_MBOX_RMA when the agent writes the slots itself */
};

/* One mailbox in the host's memory, written whole by one put. */
struct fab_mbox_slot {
	struct wave_msg msg; /* seq is @put (low bits), tstamp the agent's clock */
	uint64_t put;        /* the puts into this mailbox so far: 1, 2, ... */
	uint32_t crc;        /* CRC-32C of msg and put */
	uint32_t reserved;
	uint8_t pad[48];     /* two cache lines: slots never share one */
};

/* After the header of an MBOX frame (a put without RMA): the slot's bytes,
 * unaligned. */
struct fab_mbox_body {
	uint32_t idx;
	uint32_t reserved;
	uint8_t slot[sizeof(struct fab_mbox_slot)];
};

/* What the host took from one mailbox (low 32 bits of its count). */
struct fab_mbox_taken {
	uint32_t idx;
	uint32_t taken;
};

#define FAB_TAKEN_MAX ((FAB_BUF_SIZE - FAB_HDR_SIZE) / sizeof(struct fab_mbox_taken))

_Static_assert(sizeof(struct fab_hdr) == FAB_HDR_SIZE, "wire");
_Static_assert(sizeof(struct fab_mbox_offer) == 32, "wire");
_Static_assert(sizeof(struct fab_mbox_accept) == 8, "wire");
_Static_assert(offsetof(struct fab_mbox_slot, put) == 64, "wire");
_Static_assert(sizeof(struct fab_mbox_slot) == 128, "wire");
_Static_assert(offsetof(struct fab_mbox_body, slot) == 8, "wire");
_Static_assert(FAB_HDR_SIZE + sizeof(struct fab_mbox_body) <= FAB_BUF_SIZE, "a put fits a buffer");
_Static_assert(sizeof(struct fab_hello) + sizeof(struct fab_mbox_offer) <= FAB_BUF_SIZE, "wire");
_Static_assert(sizeof(struct fab_reply) + sizeof(struct fab_mbox_accept) <= FAB_BUF_SIZE, "wire");
_Static_assert(offsetof(struct fab_hdr, msgs_done) == 4, "wire");
_Static_assert(offsetof(struct fab_hdr, flags) == 12, "wire");
_Static_assert(offsetof(struct fab_hello, proto_major) == 16, "wire");
_Static_assert(offsetof(struct fab_hello, nonce) == 40, "wire");
_Static_assert(offsetof(struct fab_hello, token) == 48, "wire");
_Static_assert(offsetof(struct fab_hello, addr_len) == 112, "wire");
_Static_assert(offsetof(struct fab_hello, addr) == 120, "wire");
_Static_assert(sizeof(struct fab_hello) == 248, "wire");
_Static_assert(offsetof(struct fab_reply, nonce) == 24, "wire");
_Static_assert(offsetof(struct fab_reply, addr) == 48, "wire");
_Static_assert(offsetof(struct fab_reply, reason) == 176, "wire");
_Static_assert(sizeof(struct fab_reply) == 296, "wire");
_Static_assert(sizeof(struct fab_hello) <= FAB_BUF_SIZE, "hello fits a buffer");
_Static_assert(sizeof(struct fab_reply) <= FAB_BUF_SIZE, "reply fits a buffer");

#endif /* WAVE_FABRIC_WIRE_H */
