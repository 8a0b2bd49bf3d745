/* SPDX-License-Identifier: MIT */
/*
 * The handshake of the tests' scripted agents (the sched, rpc and mem host
 * tests): after accepting a host on @ch, wait for its hello, check that it
 * asks for @domain (enum wave_domain) alone, and welcome it with a 50 ms
 * heartbeat period and @timeout_ms (the scripted agents send no heartbeat:
 * a long timeout keeps the host from taking them for lost). Header only:
 * it uses the session's internal encoders (lib/session/proto.h), which
 * the tests including it link from the static library.
 */
#ifndef WAVE_TESTS_SCRIPT_WELCOME_H
#define WAVE_TESTS_SCRIPT_WELCOME_H

#include <check.h>

#include <wave/wave.h>

#include "session/proto.h"

static inline void script_welcome(struct wave_chan *ch, unsigned domain, uint32_t timeout_ms)
{
	struct wave_welcome w = { WAVE_PROTO_MAJOR, WAVE_PROTO_MINOR, WAVE_HOST_DOMAIN(domain),
				  50, timeout_ms, 7 };
	struct wave_hello he;
	struct wave_msg m;
	int n;

	while ((n = wave_chan_recv_burst(ch, &m, 1)) == 0)
		wave_chan_wait(ch, WAVE_MS(1));
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(wave_proto_hello_decode(&m, &he), 0);
	ck_assert_uint_eq(he.domains, WAVE_HOST_DOMAIN(domain));
	wave_proto_welcome(&w, &m);
	ck_assert_int_eq(wave_chan_send_burst(ch, &m, 1), 1);
}

#endif /* WAVE_TESTS_SCRIPT_WELCOME_H */
