/* SPDX-License-Identifier: MIT */
/*
 * One end of a fabric:// channel, for tests that put the two ends in
 * different network namespaces (tests/fabric_netns.sh).
 *
 *   fabric_peer agent URI COUNT TOKEN [MARK]
 *   fabric_peer host  URI COUNT TOKEN [MARK]
 *
 * Both ends send COUNT numbered messages and check the COUNT they receive
 * (order, contents, seq), then close. COUNT 0 means "stream until the
 * channel ends": the process then succeeds only if it sees WAVE_ECLOSED,
 * and creates the file MARK once 10000 messages have arrived. The agent
 * refuses hosts with another TOKEN and keeps listening, up to 4 times.
 * Exit status: 0 success, 2 refused (host), 1 anything else.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <wave/wave.h>

static void make(struct wave_msg *m, uint64_t n)
{
	memset(m, 0, sizeof(*m));
	m->type = (uint16_t)(WAVE_MSG_APP_FIRST + n % 1000);
	for (unsigned i = 0; i < WAVE_MSG_PAYLOAD / 8; i++)
		m->payload.u64[i] = n * 0x9e3779b97f4a7c15ull + i;
}

static bool bad(const struct wave_msg *m, uint64_t n)
{
	struct wave_msg w;

	make(&w, n);
	return m->type != w.type || m->seq != (uint32_t)(n + 1) ||
	       memcmp(m->payload.u8, w.payload.u8, WAVE_MSG_PAYLOAD) != 0;
}

/* Returns 0 when done as asked, 1 on any failure. */
static int run(struct wave_chan *ch, uint64_t count, const char *mark)
{
	struct wave_msg out[32], in[64];
	uint64_t sent = 0, got = 0;
	bool forever = count == 0, marked = false;
	int r;

	while (forever || sent < count || got < count) {
		bool moved = false;
		if (forever || sent < count) {
			unsigned n = 32;
			if (!forever && count - sent < n)
				n = (unsigned)(count - sent);
			for (unsigned i = 0; i < n; i++)
				make(&out[i], sent + i);
			r = wave_chan_send_burst(ch, out, n);
			if (r == -WAVE_ECLOSED && forever)
				return 0;
			if (r < 0) {
				fprintf(stderr, "send: %s\n", wave_strerror(r));
				return 1;
			}
			sent += (unsigned)r;
			moved |= r > 0;
		}
		if (forever || got < count) {
			r = wave_chan_recv_burst(ch, in, 64);
			if (r == -WAVE_ECLOSED && forever)
				return 0;
			if (r < 0) {
				fprintf(stderr, "recv: %s\n", wave_strerror(r));
				return 1;
			}
			for (int i = 0; i < r; i++, got++)
				if (bad(&in[i], got)) {
					fprintf(stderr, "message %llu wrong\n", (unsigned long long)got);
					return 1;
				}
			moved |= r > 0;
		}
		if (forever && !marked && got >= 10000 && mark) {
			int fd = open(mark, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
			if (fd >= 0)
				close(fd);
			marked = true;
		}
		if (!moved && (r = wave_chan_wait(ch, 1000000)) < 0) {
			fprintf(stderr, "wait: %s\n", wave_strerror(r));
			return 1;
		}
	}
	printf("%s: sent %llu, received and checked %llu\n",
	       wave_chan_role(ch) == WAVE_ROLE_HOST ? "host" : "agent", (unsigned long long)sent,
	       (unsigned long long)got);
	return 0;
}

int main(int argc, char **argv)
{
	struct wave_chan_opts o;
	struct wave_chan *ch;
	uint64_t count;
	int r;

	if (argc < 5 || (strcmp(argv[1], "agent") != 0 && strcmp(argv[1], "host") != 0)) {
		fprintf(stderr, "usage: %s agent|host URI COUNT TOKEN [MARK]\n", argv[0]);
		return 1;
	}
	count = strtoull(argv[3], NULL, 10);
	wave_chan_opts_init(&o);
	o.token = argv[4];
	o.timeout_ms = 20000;
	o.disconnect_timeout_ms = count ? 30000 : 2000;
	if (strcmp(argv[1], "agent") == 0) {
		struct wave_chan_listener *l;
		if ((r = wave_chan_listen(argv[2], &o, &l)) < 0) {
			fprintf(stderr, "listen %s: %s\n", argv[2], wave_strerror(r));
			return 1;
		}
		for (int tries = 0;; tries++) {
			r = wave_chan_accept(l, WAVE_MS(30000), &ch);
			if (r == 0)
				break;
			fprintf(stderr, "agent: accept: %s\n", wave_strerror(r));
			if (r != -WAVE_EREFUSED || tries == 3) {
				wave_chan_listener_close(l);
				return 1;
			}
		}
		wave_chan_listener_close(l);
	} else {
		/* The agent may not be listening yet: retry for a while. This
		 * only bounds a hang; it is not what makes the test pass. */
		for (int tries = 0;; tries++) {
			r = wave_chan_open(argv[2], &o, &ch);
			if (r == 0)
				break;
			if (r == -WAVE_EREFUSED)
				return 2;
			if (tries == 100) {
				fprintf(stderr, "host: open: %s\n", wave_strerror(r));
				return 1;
			}
			usleep(100000);
		}
	}
	r = run(ch, count, argc > 5 ? argv[5] : NULL);
	wave_chan_close(ch);
	return r;
}
