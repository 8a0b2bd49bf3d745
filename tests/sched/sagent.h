/* SPDX-License-Identifier: MIT */
/*
 * A scripted sched agent for the host-side tests (check_sched_host,
 * check_sched_threads): a real listener, channel and session handshake,
 * whose decisions a test writes one by one and whose events it checks one
 * by one. Every call asserts (Check): a message other than the expected
 * one fails the test; a missing one hangs until Check's timeout.
 */
#ifndef WAVE_TESTS_SCHED_SAGENT_H
#define WAVE_TESTS_SCHED_SAGENT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <wave/wave.h>

#define NCPU 2

/* RUN and PRESTAGE go to the CPUs' mailboxes (else the ring); set by
 * main() before the suite runs. */
extern bool sa_mbox_mode;

/* The agent's end: a listener and the one channel of the host. */
struct sagent {
	char dir[64];
	char uri[128];
	struct wave_chan_listener *l;
	struct wave_chan *ch;
	pthread_t thr;
	struct wave_sched *s; /* polled while the agent waits for messages */
};

/* Connecting: listen at @sa->uri; accept and welcome the host (@arg: the
 * struct sagent), or do that on a thread (the host blocks meanwhile),
 * then join it. */
void sa_listen(struct sagent *sa);
void *sa_accept(void *arg);
void sa_accept_start(struct sagent *sa);
void sa_accept_join(struct sagent *sa);
void sa_close(struct sagent *sa);

/* Receiving: the next message that is not a heartbeat, raw or decoded. */
void sa_recv_raw(struct sagent *sa, struct wave_msg *m);
void sa_recv(struct sagent *sa, struct wave_sched_msg *d);
/* Expects event @type about @task; returns its sequence number. */
uint64_t sa_expect(struct sagent *sa, uint16_t type, uint64_t task);
void sa_expect_outcome(struct sagent *sa, uint16_t decision, uint64_t task, uint64_t seq,
		       uint32_t cpu, unsigned result);
void sa_expect_setup(struct sagent *sa);
void sa_expect_idle(struct sagent *sa, uint32_t cpu);

/* Sending a decision (RUN and PRESTAGE to the mailboxes in sa_mbox_mode);
 * sa_stage() also lets the host stage it. */
void sa_send(struct sagent *sa, uint16_t type, uint64_t task, uint64_t seq, uint32_t cpu);
void sa_stage(struct sagent *sa, uint16_t type, uint64_t task, uint64_t seq, uint32_t cpu);

/* The scheduler: NCPU CPUs, batch 1, no heartbeat timeout (the scripted
 * agent sends none), reconnecting at once. */
void host_opts(struct wave_host_opts *ho, struct wave_sched_opts *o);
/* A scheduler connected to a fresh agent, its setup received. */
struct wave_sched *connect_sched(struct sagent *sa);
void teardown(struct sagent *sa, struct wave_sched *s);
/* A new task, its TASK_NEW received; returns its sequence number. */
uint64_t new_task(struct wave_sched *s, struct sagent *sa, uint64_t id, int runnable);
/* Runs @id on @cpu through a committed RUN; returns its sequence number. */
uint64_t run_on(struct wave_sched *s, struct sagent *sa, uint64_t id, uint64_t seq, uint32_t cpu);

#endif /* WAVE_TESTS_SCHED_SAGENT_H */
