/* SPDX-License-Identifier: MIT */
/*
 * A program that uses an installed libwave the way an application would:
 * only <wave/wave.h>, found through pkg-config or find_package(wave).
 *
 * It checks that the headers and the library it runs with agree on the
 * version, then moves messages over a real shm:// channel: the parent listens
 * as the agent, a forked child connects as the host and sends a few events,
 * the parent checks each one (type, sequence, payload), answers with one
 * decision carrying their sum, and the child checks that answer.
 *
 * Output on success (install_consumer.sh compares it):
 *   libwave <runtime version> (headers <compile-time version>)
 *   channel: <N> messages verified, reply verified
 * Exit status 0 on success, 1 on any failure (with a message on stderr).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <wave/wave.h>

#define N_EVENTS 8
#define EVENT_TYPE (WAVE_MSG_APP_FIRST + 1)
#define REPLY_TYPE (WAVE_MSG_APP_FIRST + 2)
/* Bounds every wait so that a broken channel fails the program instead of
 * hanging it; correct runs never come near it. */
#define GUARD_MS 60000

static int fail(const char *what, int err)
{
	fprintf(stderr, "consumer: %s: %s (%d)\n", what, wave_strerror(err), err);
	return 1;
}

static uint64_t event_value(unsigned i)
{
	return 0x1000u + 7u * i;
}

/* Receives exactly one message into @m, waiting for it. */
static int recv_one(struct wave_chan *ch, struct wave_msg *m)
{
	for (;;) {
		int ret = wave_chan_recv_burst(ch, m, 1);
		if (ret == 1)
			return 0;
		if (ret < 0)
			return ret;
		ret = wave_chan_wait(ch, (int64_t)GUARD_MS * 1000000);
		if (ret == 0)
			return -ETIMEDOUT;
		if (ret < 0)
			return ret;
	}
}

/* The host end, in the child: send the events, check the agent's answer. */
static int host(const char *uri)
{
	struct wave_chan_opts opts;
	struct wave_msg ev[N_EVENTS], reply;
	struct wave_chan *ch = NULL;
	uint64_t sum = 0;
	int ret;

	wave_chan_opts_init(&opts);
	opts.host_to_agent_slots = 16;
	opts.agent_to_host_slots = 16;
	opts.timeout_ms = GUARD_MS;
	ret = wave_chan_open(uri, &opts, &ch);
	if (ret < 0)
		return fail("host: wave_chan_open", ret);
	if (wave_chan_role(ch) != WAVE_ROLE_HOST) {
		fprintf(stderr, "consumer: host: wrong role %d\n", wave_chan_role(ch));
		wave_chan_close(ch);
		return 1;
	}
	memset(ev, 0, sizeof(ev));
	for (unsigned i = 0; i < N_EVENTS; i++) {
		ev[i].type = EVENT_TYPE;
		ev[i].flags = (uint16_t)i;
		ev[i].payload.u64[0] = event_value(i);
		ev[i].payload.u64[5] = ~event_value(i);
		sum += event_value(i);
	}
	/* Half as a bulk send, half one by one as bursts. */
	ret = wave_chan_send_bulk(ch, ev, N_EVENTS / 2);
	if (ret != N_EVENTS / 2) {
		wave_chan_close(ch);
		return fail("host: wave_chan_send_bulk", ret < 0 ? ret : -EAGAIN);
	}
	for (unsigned i = N_EVENTS / 2; i < N_EVENTS; i++) {
		ret = wave_chan_send_burst(ch, &ev[i], 1);
		if (ret != 1) {
			wave_chan_close(ch);
			return fail("host: wave_chan_send_burst", ret < 0 ? ret : -EAGAIN);
		}
	}
	ret = recv_one(ch, &reply);
	if (ret < 0) {
		wave_chan_close(ch);
		return fail("host: receiving the reply", ret);
	}
	wave_chan_close(ch);
	if (reply.type != REPLY_TYPE || reply.seq != 1 || reply.payload.u64[0] != sum ||
	    reply.payload.u32[2] != N_EVENTS) {
		fprintf(stderr, "consumer: host: bad reply type %u seq %u sum %llu count %u\n",
			(unsigned)reply.type, (unsigned)reply.seq,
			(unsigned long long)reply.payload.u64[0], (unsigned)reply.payload.u32[2]);
		return 1;
	}
	return 0;
}

/* The agent end, in the parent: check every event, answer once, then see
 * the host close. */
static int agent(struct wave_chan_listener *l)
{
	struct wave_chan *ch = NULL;
	struct wave_msg m, reply;
	uint64_t sum = 0;
	int ret;

	ret = wave_chan_accept(l, WAVE_MS(GUARD_MS), &ch);
	if (ret < 0)
		return fail("agent: wave_chan_accept", ret);
	for (unsigned i = 0; i < N_EVENTS; i++) {
		ret = recv_one(ch, &m);
		if (ret < 0) {
			wave_chan_close(ch);
			return fail("agent: receiving an event", ret);
		}
		if (m.type != EVENT_TYPE || m.seq != i + 1 || m.flags != i ||
		    m.payload.u64[0] != event_value(i) || m.payload.u64[5] != ~event_value(i) ||
		    m.tstamp == 0) {
			fprintf(stderr, "consumer: agent: event %u is wrong: type %u seq %u flags %u "
					"value %llu\n",
				i, (unsigned)m.type, (unsigned)m.seq, (unsigned)m.flags,
				(unsigned long long)m.payload.u64[0]);
			wave_chan_close(ch);
			return 1;
		}
		sum += m.payload.u64[0];
	}
	memset(&reply, 0, sizeof(reply));
	reply.type = REPLY_TYPE;
	reply.payload.u64[0] = sum;
	reply.payload.u32[2] = N_EVENTS;
	ret = wave_chan_send_bulk(ch, &reply, 1);
	if (ret != 1) {
		wave_chan_close(ch);
		return fail("agent: sending the reply", ret < 0 ? ret : -EAGAIN);
	}
	/* The host closes after reading the reply: nothing more may arrive. */
	ret = recv_one(ch, &m);
	wave_chan_close(ch);
	if (ret != -WAVE_ECLOSED) {
		fprintf(stderr, "consumer: agent: expected the host to close, got %d (%s)\n", ret,
			ret < 0 ? wave_strerror(ret) : "a message");
		return 1;
	}
	return 0;
}

int main(void)
{
	char dir[] = "/tmp/wave-consumer-XXXXXX";
	char sock[sizeof(dir) + 16], uri[sizeof(sock) + 8];
	struct wave_chan_listener *l = NULL;
	int status, ret, rc = 1;
	pid_t pid;

	/* The version: headers and library must be the same release. */
	printf("libwave %s (headers %s)\n", wave_version_string(), WAVE_VERSION_STRING);
	if (strcmp(wave_version_string(), WAVE_VERSION_STRING) != 0 ||
	    wave_version() != WAVE_VERSION_NUMBER) {
		fprintf(stderr, "consumer: version mismatch: library %s (0x%06x), headers %s (0x%06x)\n",
			wave_version_string(), wave_version(), WAVE_VERSION_STRING,
			(unsigned)WAVE_VERSION_NUMBER);
		return 1;
	}

	if (!mkdtemp(dir)) {
		perror("consumer: mkdtemp");
		return 1;
	}
	snprintf(sock, sizeof(sock), "%s/agent.sock", dir);
	snprintf(uri, sizeof(uri), "shm://%s", sock);
	ret = wave_chan_listen(uri, NULL, &l);
	if (ret < 0) {
		fail("agent: wave_chan_listen", ret);
		goto out_dir;
	}
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		perror("consumer: fork");
		goto out_listener;
	}
	if (pid == 0) {
		/* The child is the host; it must not touch the listener. */
		_exit(host(uri));
	}
	rc = agent(l);
	if (waitpid(pid, &status, 0) != pid) {
		perror("consumer: waitpid");
		rc = 1;
	} else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "consumer: host process failed (status 0x%x)\n", (unsigned)status);
		rc = 1;
	}
	if (rc == 0)
		printf("channel: %d messages verified, reply verified\n", N_EVENTS);
out_listener:
	wave_chan_listener_close(l);
out_dir:
	if (rmdir(dir) != 0) {
		perror("consumer: rmdir");
		rc = 1;
	}
	return rc;
}
