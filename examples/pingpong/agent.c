/* SPDX-License-Identifier: MIT */
/*
 * The agent half of the ping-pong demo: an offloaded decision maker.
 *
 *   wave-example-agent shm:///tmp/demo/agent.sock
 *
 * It listens on the given URI, accepts one host, and answers every event
 * the host sends with a decision (which CPU a waking task should run on,
 * see protocol.h), until the host closes the channel. In a real deployment
 * this process runs on a SmartNIC's cores or on a spare core; the host
 * keeps only the cheap part, acting on the decisions.
 *
 * When no event is pending the agent sleeps in wave_chan_wait(): it polls
 * for a few microseconds first (so a busy host is answered quickly) and
 * then sleeps on the channel's doorbell, so an idle agent costs no CPU.
 *
 * SIGINT or SIGTERM stops it cleanly. Exit status: 0 when the host left (or
 * a signal stopped it), 1 on any error.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <wave/wave.h>

#include "protocol.h"

/* Events taken from the channel at once; decisions go back as one burst. */
#define BATCH 32
/* How often a sleeping agent looks at the stop flag. */
#define TICK_NS (200 * 1000 * 1000LL)
#define TICK_MS 200

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: let sleeps end early */
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0)
		return -errno;
	return 0;
}

/* The decision for one event message. */
static int decide(const struct wave_msg *in, struct wave_msg *out)
{
	struct demo_event ev;
	struct demo_decision d;

	if (in->type != DEMO_MSG_EVENT) {
		fprintf(stderr, "agent: unexpected message type %#x\n", in->type);
		return -EPROTO;
	}
	memcpy(&ev, in->payload.u8, sizeof(ev));
	d.task = ev.task;
	d.cpu = demo_choose_cpu(&ev);
	demo_pack_decision(out, &d);
	return 0;
}

/* Sends all @n decisions. A full ring means the host has not yet read
 * earlier ones; it always does, so give it the CPU and try again. */
static int send_all(struct wave_chan *ch, const struct wave_msg *m, unsigned n)
{
	while (n > 0 && !stop) {
		int k = wave_chan_send_burst(ch, m, n);
		if (k < 0)
			return k;
		if (k == 0)
			sched_yield();
		m += k;
		n -= (unsigned)k;
	}
	return 0;
}

/* Answers events until the host closes the channel or a signal comes. */
static int serve(struct wave_chan *ch, unsigned long long *decided)
{
	struct wave_msg in[BATCH], out[BATCH];

	while (!stop) {
		int n = wave_chan_wait(ch, TICK_NS);
		if (n < 0)
			return n;
		if (n == 0)
			continue; /* nothing yet: look at the stop flag, sleep again */
		n = wave_chan_recv_burst(ch, in, BATCH);
		if (n == -WAVE_ECLOSED)
			return 0; /* the host is done and everything it sent is answered */
		if (n < 0)
			return n;
		for (int i = 0; i < n; i++)
			if (decide(&in[i], &out[i]) < 0)
				return -EPROTO;
		int ret = send_all(ch, out, (unsigned)n);
		if (ret < 0)
			return ret;
		*decided += (unsigned)n;
	}
	return 0;
}

/* Waits for one host; a host that is refused (wrong uid, bad memory) is
 * reported and the agent keeps waiting for another. */
static int accept_one(struct wave_chan_listener *l, struct wave_chan **ch)
{
	while (!stop) {
		int ret = wave_chan_accept(l, WAVE_MS(TICK_MS), ch);
		if (ret == 0)
			return 0;
		if (ret != -ETIMEDOUT)
			fprintf(stderr, "agent: a host was refused: %s\n", wave_strerror(ret));
	}
	return -EINTR;
}

int main(int argc, char **argv)
{
	struct wave_chan_listener *l;
	struct wave_chan *ch;
	unsigned long long decided = 0;
	int ret;

	if (argc != 2) {
		fprintf(stderr, "usage: %s shm:///path/to/agent.sock\n", argv[0]);
		return 2;
	}
	if ((ret = install_signals()) < 0 || (ret = wave_chan_listen(argv[1], NULL, &l)) < 0) {
		fprintf(stderr, "agent: cannot listen on %s: %s\n", argv[1], wave_strerror(ret));
		return 1;
	}
	printf("agent: listening on %s\n", argv[1]);
	fflush(stdout);
	ret = accept_one(l, &ch);
	/* One host per agent: stop listening (this removes the socket file). */
	wave_chan_listener_close(l);
	if (ret == -EINTR) {
		printf("agent: stopped before a host came\n");
		return 0;
	}
	ret = serve(ch, &decided);
	wave_chan_close(ch);
	if (ret < 0) {
		fprintf(stderr, "agent: %s\n", wave_strerror(ret));
		return 1;
	}
	printf("agent: made %llu decisions; %s\n", decided, stop ? "stopped" : "the host left");
	return 0;
}
