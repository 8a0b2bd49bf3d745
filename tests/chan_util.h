/* SPDX-License-Identifier: MIT */
/* Helpers shared by the channel tests: open a host/agent pair over any
 * transport, make and check recognisable messages. */
#ifndef WAVE_TEST_CHAN_UTIL_H
#define WAVE_TEST_CHAN_UTIL_H

#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <wave/wave.h>

struct pair {
	struct wave_chan *host, *agent;
	struct wave_chan_listener *listener;
	char dir[64];
	char uri[256];
};

/* The transport under test, from the program's first argument: "shm",
 * "file", "fabric-tcp" (fabric://tcp;ofi_rxm on 127.0.0.1) or "fabric-shm"
 * (fabric://shm, libfabric's shared-memory provider); suites are named
 * after it. */
extern const char *test_transport;
bool transport_is(const char *name);
bool transport_is_fabric(void);

/* @n divided by $WAVE_TEST_SCALE (a divisor, default 1; the sanitizer
 * builds set 10), at least 1. */
uint64_t test_scaled(uint64_t n);

/* A fresh private temporary directory (removed by pair_close / tmpdir_rm). */
/* A TCP port on 127.0.0.1 that was free a moment ago. */
int test_free_port(void);

void tmpdir_make(char dir[64]);
void tmpdir_rm(const char *dir);

/* Opens both ends; @o may be NULL. Asserts success. */
void pair_open(struct pair *p, const struct wave_chan_opts *o);
/*
 * Opens a pair across a fork(): returns the child's pid in the parent, which
 * holds p->agent; 0 in the child, which holds p->host and must leave with
 * _exit() after closing it. A channel end belongs to the process that opened
 * or accepted it: the other process never touches its inherited copy.
 */
pid_t pair_fork(struct pair *p, const struct wave_chan_opts *o);
/*
 * After pair_fork() and a close, opens the @role end again on the same URI:
 * the host opens, the agent accepts on the same listener (file:// lays the
 * file out again). Returns the open or accept's result.
 */
int pair_reopen(struct pair *p, enum wave_role role, const struct wave_chan_opts *o);
/* The URI the transport under test uses inside @dir (fabric: a fresh
 * loopback port or shm name; @dir is not used). */
void transport_uri(char *buf, size_t len, const char *dir);
void pair_close(struct pair *p);

/* A message whose every payload byte derives from @n, so corruption,
 * duplication, loss and reordering all show. */
void msg_make(struct wave_msg *m, uint64_t n);
/* Non-zero if @m is not msg_make(n) (ignoring seq and tstamp). */
int msg_check(const struct wave_msg *m, uint64_t n);

/* Receives exactly @n messages (waiting as needed) and checks they are
 * msg_make(first .. first+n-1) with consecutive seq starting at @seq. */
void recv_expect(struct wave_chan *ch, uint64_t first, unsigned n, uint32_t seq);

#endif
