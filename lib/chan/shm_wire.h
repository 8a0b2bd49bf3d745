/* SPDX-License-Identifier: MIT */
/*
 * The shm:// rendezvous messages (SOCK_SEQPACKET datagrams), a wire ABI.
 *
 *   host  -> agent: struct wave_shm_hello + SCM_RIGHTS { memfd, host doorbell eventfd }
 *   agent -> host : struct wave_shm_reply, status 0 + SCM_RIGHTS { agent doorbell eventfd }
 *                   or status = positive error code, reason text, no fds
 */
#ifndef WAVE_SHM_WIRE_H
#define WAVE_SHM_WIRE_H

#include <stdint.h>

#define WAVE_SHM_HELLO_MAGIC 0x4c454857u /* "WHEL" */
#define WAVE_SHM_REPLY_MAGIC 0x50455257u /* "WREP" */
#define WAVE_SHM_PROTO_MAJOR 1u
#define WAVE_SHM_PROTO_MINOR 0u

struct wave_shm_hello {
	uint32_t magic;
	uint16_t proto_major, proto_minor;
	uint32_t reserved[6];
};

struct wave_shm_reply {
	uint32_t magic;
	uint16_t proto_major, proto_minor;
	int32_t status; /* 0, or a positive wave/errno code */
	char reason[116];
};

_Static_assert(sizeof(struct wave_shm_hello) == 32, "wire");
_Static_assert(sizeof(struct wave_shm_reply) == 128, "wire");

#endif /* WAVE_SHM_WIRE_H */
