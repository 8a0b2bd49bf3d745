/* SPDX-License-Identifier: MIT */
/*
 * One run of wave-bench-agent: an agent process runs the agent runtime
 * (wave_agent_run(), the bench_echo plugin) pinned to one CPU; a host
 * process on the other CPU opens a session (wave_host_connect()), measures
 * decision round trips one event at a time, then streams events in batches
 * and counts decisions per second. Every decision is checked: it must come
 * from the agent, answer the event it names, and arrive in order, so a lost
 * or duplicated decision fails the run instead of producing a number.
 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent_impl.h"
#include "bench_agent.h"
#include "bench_offcpu.h"

#define SETUP_TIMEOUT_MS 10000
/* The event type; bench_echo answers with type + 1. */
#define EV_TYPE ((uint16_t)(WAVE_MSG_APP_FIRST + 0x10))
/* Keys cycle over this many: the host's state, not one key per event. */
#define N_KEYS 4096u
/* Events in flight at most while streaming: fewer than N_KEYS, so no
 * event's decision can be made stale by a newer event for its key, and
 * less than a ring, so the window, not backpressure, paces the host. */
#define WINDOW 512u
/* Look at the clock once per this many batches while streaming. */
#define CLOCK_EVERY 64u

struct run_side {
	const struct bench_cfg *cfg;
	struct bench_agent_result *res;
	char uri[128];
	char cfg_json[1536];
	int ready_fd; /* agent: written once listening */
	int stop_fd;  /* agent: readable (EOF) when the run is over */
	int stop_w;   /* the parent's end of that pipe: children close it */
	/* BENCH_REC_SETS: the host asks the agent to turn recording on ('1')
	 * or off ('0') on ctl, the agent answers on ack ('k', or 'e'). */
	enum bench_rec rec;
	unsigned sets;
	int ctl[2], ack[2];
	pid_t agent_pid; /* for the host's off-CPU watch */
};

static int fail(const char *what, int err)
{
	fprintf(stderr, "wave-bench-agent: %s: %s\n", what, wave_strerror(err));
	return err;
}

/* ---- the agent process ---------------------------------------------------- */

struct agent_proc {
	struct wave_agent *a;
	struct run_side *s;
};

/* The CPU time so far of this process's trace writer threads (named
 * "wave-trace", lib/trace/trace_async.c), from the scheduler's own count
 * (/proc/self/task/TID/schedstat, ns). */
static uint64_t writers_cpu_ns(void)
{
	DIR *d = opendir("/proc/self/task");
	char path[64], buf[64];
	unsigned long long ns;
	uint64_t sum = 0;
	struct dirent *e;
	FILE *f;

	while (d && (e = readdir(d))) {
		snprintf(path, sizeof(path), "/proc/self/task/%.20s/comm", e->d_name);
		if (e->d_name[0] == '.' || !(f = fopen(path, "r")))
			continue;
		buf[0] = 0;
		if (!fgets(buf, sizeof(buf), f))
			buf[0] = 0;
		fclose(f);
		if (strncmp(buf, "wave-trace", 10) != 0)
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%.20s/schedstat", e->d_name);
		if ((f = fopen(path, "r"))) {
			if (fscanf(f, "%llu", &ns) == 1)
				sum += ns;
			fclose(f);
		}
	}
	if (d)
		closedir(d);
	return sum;
}

/* Turns recording on or off as the host asks, answering each time: 'k',
 * then (8 bytes each) the agent loop's busy time and the messages of its
 * bursts so far (agent_busy_read()), when turned off the writer threads'
 * CPU time (else 0), the bursts and those left out, all read just before (the writers' last few records
 * are still being written then). */
static void recording_turn(struct agent_proc *p)
{
	uint64_t ns[5] = { 0, 0, 0, 0, 0 };
	char c, ok;

	if (read(p->s->ctl[0], &c, 1) != 1)
		return;
	agent_busy_read(p->a, &ns[0], &ns[1], &ns[3], &ns[4]);
	if (c == '0')
		ns[2] = writers_cpu_ns();
	ok = wave_agent_record(p->a, c == '1') == 0 ? 'k' : 'e';
	if (write(p->s->ack[1], &ok, 1) != 1 || write(p->s->ack[1], ns, sizeof(ns)) != sizeof(ns))
		fail("agent: answer", -errno);
}

/* Stops the agent once the parent closes its end of the stop pipe (or
 * dies); meanwhile turns recording on and off for the host. */
static void *agent_stopper(void *arg)
{
	struct agent_proc *p = arg;
	struct pollfd f[2] = { { .fd = p->s->stop_fd, .events = POLLIN },
			       { .fd = p->s->ctl[0], .events = POLLIN } };

	while (poll(f, p->s->ctl[0] >= 0 ? 2 : 1, -1) >= 0 || errno == EINTR) {
		if (f[0].revents)
			break;
		if (f[1].revents & POLLIN)
			recording_turn(p);
		else if (f[1].revents)
			f[1].fd = -1; /* the host is gone: only the stop pipe matters */
	}
	wave_agent_stop(p->a);
	return NULL;
}

static int agent_main(void *arg)
{
	struct run_side *s = arg;
	struct agent_proc p = { .a = NULL, .s = s };
	struct wave_config *cfg;
	struct wave_error err;
	pthread_t thr;
	int ret;

	close(s->stop_w); /* else the pipe never reads EOF */
	ret = wave_config_parse(s->cfg_json, strlen(s->cfg_json), NULL, &cfg, &err);
	if (ret < 0) {
		fprintf(stderr, "wave-bench-agent: configuration: %s\n", err.text);
		return ret;
	}
	ret = wave_agent_create(cfg, &p.a, &err);
	if (ret < 0) {
		fprintf(stderr, "wave-bench-agent: agent: %s: %s\n", err.source, err.text);
		wave_config_free(cfg);
		return ret;
	}
	/* Recording in sets: the loop's work per event, off and on, apart
	 * from its polling (a clock reading a burst; not in other runs). */
	if (s->rec == BENCH_REC_SETS)
		agent_busy_count(p.a, true);
	ret = -pthread_create(&thr, NULL, agent_stopper, &p);
	if (ret < 0) {
		wave_agent_destroy(p.a);
		wave_config_free(cfg);
		return fail("agent", ret);
	}
	if (write(s->ready_fd, "r", 1) != 1)
		ret = -errno;
	close(s->ready_fd);
	if (ret == 0)
		ret = wave_agent_run(p.a);
	/* The stopper returns once the parent closes the pipe. */
	pthread_join(thr, NULL);
	wave_agent_destroy(p.a);
	wave_config_free(cfg);
	return ret < 0 ? fail("agent", ret) : 0;
}

/* ---- the host application ------------------------------------------------- */

struct app {
	uint64_t expected; /* the event number the next decision must answer */
	uint64_t errors;   /* decisions that were not the expected one */
};

static void on_decision(struct wave_host *h, const struct wave_msg *d,
			enum wave_decision_source src, void *user)
{
	struct app *app = user;

	(void)h;
	if (src != WAVE_DECISION_AGENT || d->type != EV_TYPE + 1 ||
	    d->payload.u64[0] != app->expected || WAVE_CUSTOM_KEY(d) != app->expected % N_KEYS)
		app->errors++;
	app->expected++;
}

/* Never used while the agent is up; when it runs, the run fails. */
static int decide(struct wave_host *h, const struct wave_msg *ev, struct wave_msg *out,
		  void *user)
{
	(void)h;
	(void)user;
	out->type = EV_TYPE + 1;
	out->payload.u64[0] = ev->payload.u64[0];
	return 0;
}

static const struct wave_host_ops app_ops = {
	.size = sizeof(struct wave_host_ops),
	.on_decision = on_decision,
	.decide = decide,
	.on_state = NULL,
	.replay = NULL,
};

struct hctx {
	struct wave_host *h;
	struct app app;
	uint64_t next; /* the next event's number */
	int poll_ms;   /* 0 (busy-poll), or 1 when both sides share a CPU */
};

/* One poll; fails once the agent is no longer in control. */
static int poll_once(struct hctx *c)
{
	int ret = wave_host_poll(c->h, WAVE_MS(c->poll_ms));

	if (ret < 0)
		return ret;
	return wave_host_state(c->h) == WAVE_HOST_AGENT ? 0 : -ECONNRESET;
}

/* Sends the next event, polling while the channel to the agent is full. */
static int send_event(struct hctx *c)
{
	struct wave_msg ev;
	int ret;

	memset(&ev, 0, sizeof(ev));
	ev.type = EV_TYPE;
	ev.payload.u64[0] = c->next;
	while ((ret = wave_host_event(c->h, &ev, c->next % N_KEYS, NULL)) == -EAGAIN)
		if ((ret = poll_once(c)) < 0)
			return ret;
	if (ret == 0)
		c->next++;
	return ret;
}

/* Polls until at most @inflight events wait for their decision. */
static int drain_to(struct hctx *c, uint64_t inflight)
{
	int ret;

	while (c->next - c->app.expected > inflight)
		if ((ret = poll_once(c)) < 0)
			return ret;
	return 0;
}

/* One decision round trip: an event, and its decision applied. */
static int roundtrip(void *ctx)
{
	struct hctx *c = ctx;
	int ret = send_event(c);

	return ret < 0 ? ret : drain_to(c, 0);
}

/* Sends the next @n events in bursts of wave_host_events(), polling while
 * the channel to the agent is full. */
static int send_events(struct hctx *c, unsigned n)
{
	struct wave_msg ev[64];
	uint64_t keys[64];
	int ret;

	if (n > 64)
		return -EINVAL;
	memset(ev, 0, n * sizeof(ev[0]));
	for (unsigned i = 0; i < n; i++) {
		ev[i].type = EV_TYPE;
		ev[i].payload.u64[0] = c->next + i;
		keys[i] = (c->next + i) % N_KEYS;
	}
	for (unsigned done = 0; done < n; done += (unsigned)ret) {
		ret = wave_host_events(c->h, ev + done, keys + done, n - done, NULL);
		if (ret < 0)
			return ret;
		c->next += (unsigned)ret;
		if (ret == 0 && (ret = poll_once(c)) < 0)
			return ret;
	}
	return 0;
}

/* Streams events in batches of @batch (one wave_host_events() burst, then
 * one wave_host_poll()) for about @ms, keeping at most WINDOW in flight;
 * then waits for every decision. Rate: decided events per second. */
static int stream(void *ctx, unsigned batch, unsigned ms, double *rate)
{
	struct hctx *c = ctx;
	uint64_t first = c->next, t0 = bench_ticks(), t1, limit;
	unsigned round = 0;
	int ret;

	limit = t0 + bench_ns_to_ticks((uint64_t)ms * 1000000u);
	do {
		if ((ret = drain_to(c, WINDOW - batch)) < 0)
			return ret;
		if ((ret = send_events(c, batch)) < 0)
			return ret;
		if ((ret = poll_once(c)) < 0)
			return ret;
	} while (++round % CLOCK_EVERY != 0 || bench_ticks() < limit);
	if ((ret = drain_to(c, 0)) < 0)
		return ret;
	t1 = bench_ticks();
	*rate = (double)(c->next - first) * 1e9 / bench_ticks_to_ns(t1 - t0);
	return 0;
}

/* A latency run and a throughput run, appended to @res. */
static int measure(struct hctx *c, const struct bench_cfg *cfg, struct bench_agent_result *res)
{
	double rate[BENCH_N_BATCHES];
	int ret = bench_measure_latency(roundtrip, c, cfg, &res->lat[res->n_lat]);

	if (ret == 0) {
		res->n_lat++;
		ret = bench_measure_rates(stream, c, cfg, rate);
	}
	if (ret < 0)
		return ret;
	for (unsigned b = 0; b < BENCH_N_BATCHES; b++)
		res->tput[b][res->n_tput] = rate[b];
	res->n_tput++;
	return 0;
}

/* Every event got exactly one decision, the expected one, from the agent. */
static int verify(struct hctx *c, struct bench_agent_result *res)
{
	struct wave_host_stats st;

	if (wave_host_stats(c->h, &st) < 0)
		return -EINVAL;
	res->events += st.events;
	res->decisions += st.decisions_agent;
	if (c->app.errors || st.events != c->next || st.decisions_agent != st.events ||
	    st.stale || st.duplicates || st.bad || st.decisions_fallback || st.fallbacks) {
		fprintf(stderr, "wave-bench-agent: %llu events, %llu agent decisions, %llu wrong, "
			"%llu stale, %llu duplicate, %llu bad, %llu fallback\n",
			(unsigned long long)st.events, (unsigned long long)st.decisions_agent,
			(unsigned long long)c->app.errors, (unsigned long long)st.stale,
			(unsigned long long)st.duplicates, (unsigned long long)st.bad,
			(unsigned long long)st.decisions_fallback);
		return -EPROTO;
	}
	return 0;
}

static int host_main(void *arg)
{
	struct run_side *s = arg;
	struct hctx c = { .poll_ms = s->cfg->single_core ? 1 : 0 };
	struct wave_host_opts o;
	struct wave_error err;
	int ret;

	close(s->stop_w); /* only the parent may end the agent */
	wave_host_opts_init(&o);
	o.ops = &app_ops;
	o.user = &c.app;
	/* A loaded shared machine may stall a side for a while: not a death. */
	o.heartbeat_timeout_ms = 10000;
	o.connect_timeout_ms = SETUP_TIMEOUT_MS;
	ret = wave_host_connect(s->uri, &o, &c.h, &err);
	if (ret < 0) {
		fprintf(stderr, "wave-bench-agent: connect: %s\n", err.text);
		return ret;
	}
	ret = measure(&c, s->cfg, s->res);
	if (ret == 0)
		ret = verify(&c, s->res);
	wave_host_close(c.h);
	return ret < 0 ? fail("host", ret) : 0;
}

/* ---- a host that is a bare channel end ------------------------------------ */

/* The session's messages, as docs/sessions.md lays them out. */
#define CTL_HELLO 0x0001
#define CTL_WELCOME 0x0003
#define CTL_HEARTBEAT 0x0005

struct raw {
	struct wave_chan *ch;
	uint64_t next;     /* the next event's number; its sequence is next + 1 */
	uint64_t expected; /* the event the next decision must answer */
	uint64_t wrong;
};

static void raw_event(struct wave_msg *m, uint64_t n)
{
	memset(m, 0, sizeof(*m));
	m->type = EV_TYPE;
	m->payload.u64[0] = n;
	WAVE_CUSTOM_KEY(m) = n % N_KEYS;
	WAVE_CUSTOM_SEQ(m) = n + 1;
}

/* Receives what is there (never waits). Return: decisions, or an error. */
static int raw_recv(struct raw *r)
{
	struct wave_msg m[64];
	int n = wave_chan_recv_burst(r->ch, m, 64), got = 0;

	for (int i = 0; i < n; i++) {
		if (m[i].type == CTL_HEARTBEAT)
			continue;
		if (m[i].type != EV_TYPE + 1 || m[i].payload.u64[0] != r->expected ||
		    WAVE_CUSTOM_KEY(&m[i]) != r->expected % N_KEYS ||
		    WAVE_CUSTOM_SEQ(&m[i]) != r->expected + 1)
			r->wrong++;
		r->expected++;
		got++;
	}
	return n < 0 ? n : got;
}

static int raw_drain_to(struct raw *r, uint64_t inflight)
{
	int ret;

	while (r->next - r->expected > inflight)
		if ((ret = raw_recv(r)) < 0)
			return ret;
	return 0;
}

/* Sends events next .. next + @n - 1, receiving while the ring is full. */
static int raw_send(struct raw *r, unsigned n)
{
	struct wave_msg ev[32];
	unsigned done = 0;
	int k;

	for (unsigned i = 0; i < n; i++)
		raw_event(&ev[i], r->next + i);
	while (done < n) {
		k = wave_chan_send_burst(r->ch, ev + done, n - done);
		if (k < 0)
			return k;
		done += (unsigned)k;
		if (done < n && (k = raw_recv(r)) < 0)
			return k;
	}
	r->next += n;
	return 0;
}

static int raw_hello(struct raw *r, const char *uri)
{
	struct wave_chan_opts o;
	struct wave_msg m;
	int ret;

	wave_chan_opts_init(&o);
	o.timeout_ms = SETUP_TIMEOUT_MS;
	ret = wave_chan_open(uri, &o, &r->ch);
	if (ret < 0)
		return ret;
	memset(&m, 0, sizeof(m));
	m.type = CTL_HELLO;
	/* u16 major, u16 minor; u16 role (1: host), u16 token length (0) */
	m.payload.u32[0] = WAVE_SESSION_PROTO_MAJOR | (uint32_t)WAVE_SESSION_PROTO_MINOR << 16;
	m.payload.u32[1] = 1;
	m.payload.u32[2] = WAVE_HOST_DOMAIN(WAVE_DOMAIN_CUSTOM);
	m.payload.u32[3] = 1000; /* heartbeat period, ms: events keep it alive */
	if ((ret = wave_chan_send_burst(r->ch, &m, 1)) != 1)
		return ret < 0 ? ret : -EAGAIN;
	while ((ret = wave_chan_recv_burst(r->ch, &m, 1)) == 0)
		if ((ret = wave_chan_wait(r->ch, (int64_t)SETUP_TIMEOUT_MS * 1000000)) < 0)
			return ret;
	if (ret < 0)
		return ret;
	return m.type == CTL_WELCOME ? 0 : -WAVE_EREFUSED;
}

/* As roundtrip(): one event, and its decision. */
static int raw_roundtrip(void *ctx)
{
	struct raw *r = ctx;
	int ret = raw_send(r, 1);

	return ret < 0 ? ret : raw_drain_to(r, 0);
}

/* As stream(): batches of @batch, at most WINDOW in flight. */
static int raw_stream(void *ctx, unsigned batch, unsigned ms, double *rate)
{
	struct raw *r = ctx;
	uint64_t first = r->next, t0 = bench_ticks(), limit;
	unsigned round = 0;
	int ret;

	limit = t0 + bench_ns_to_ticks((uint64_t)ms * 1000000u);
	do {
		if ((ret = raw_drain_to(r, WINDOW - batch)) < 0 || (ret = raw_send(r, batch)) < 0 ||
		    (ret = raw_recv(r)) < 0)
			return ret;
	} while (++round % CLOCK_EVERY != 0 || bench_ticks() < limit);
	if ((ret = raw_drain_to(r, 0)) < 0)
		return ret;
	*rate = (double)(r->next - first) * 1e9 / bench_ticks_to_ns(bench_ticks() - t0);
	return 0;
}

static int raw_measure(struct raw *r, const struct bench_cfg *cfg, struct bench_agent_result *res)
{
	double rate[BENCH_N_BATCHES];
	int ret = bench_measure_latency(raw_roundtrip, r, cfg, &res->raw_lat[res->n_raw_lat]);

	if (ret == 0)
		ret = bench_measure_rates(raw_stream, r, cfg, rate);
	if (ret < 0)
		return ret;
	if (r->wrong || r->expected != r->next) {
		fprintf(stderr, "wave-bench-agent: raw host: %llu events, %llu decisions, %llu wrong\n",
			(unsigned long long)r->next, (unsigned long long)r->expected,
			(unsigned long long)r->wrong);
		return -EPROTO;
	}
	res->n_raw_lat++;
	for (unsigned b = 0; b < BENCH_N_BATCHES; b++)
		res->raw_tput[b][res->n_raw_tput] = rate[b];
	res->n_raw_tput++;
	res->events += r->next;
	res->decisions += r->expected;
	return 0;
}

/* Asks the agent to turn recording on or off, and waits for it: @ns
 * gets the agent loop's busy time and the messages of its bursts so far,
 * turning it off the writer threads' CPU time (else 0), the bursts and
 * those left out (agent_busy_read()). */
static int raw_recording(const struct run_side *s, bool on, uint64_t ns[5])
{
	char c = on ? '1' : '0', ok;

	if (write(s->ctl[1], &c, 1) != 1 || read(s->ack[0], &ok, 1) != 1 ||
	    read(s->ack[0], ns, 5 * sizeof(*ns)) != (ssize_t)(5 * sizeof(*ns)))
		return -EPIPE;
	return ok == 'k' ? 0 : -EIO;
}

/* The agent loop's busy time and messages in one set, and the set's
 * events, read at the turns before and after it. */
struct loop_mark {
	uint64_t ns, msgs, events, bursts, dropped;
	bool on;
	unsigned k;
};

static void loop_set_end(struct bench_agent_result *res, const struct loop_mark *m,
			 const uint64_t ns[5], uint64_t events)
{
	res->busy_dropped += ns[4] - m->dropped;
	res->set_bursts[m->on][m->k] = ns[3] - m->bursts;
	res->set_busy_ns[m->on][m->k] = (double)(ns[0] - m->ns);
	res->set_busy_msgs[m->on][m->k] = ns[1] - m->msgs;
	res->set_events[m->on][m->k] = events - m->events;
}

/* (e) in 2 * s->sets sets, recording off, on, on, off, off, on, ...: a
 * busy spell of the shared machine hits both states alike. */
static int raw_sets(struct raw *r, const struct run_side *s, struct bench_agent_result *res)
{
	const pid_t pids[2] = { 0, s->agent_pid };
	const int cpus[2] = { s->cfg->host_cpu, s->cfg->agent_cpu };
	double rate[BENCH_N_BATCHES];
	unsigned k[2] = { 0, 0 };
	struct bench_watch w;
	struct loop_mark mark = { 0 };
	uint64_t ns[5];
	int ret = 0;

	for (unsigned i = 0; ret == 0 && i < 2 * s->sets; i++) {
		bool on = (i + i / 2) % 2; /* 0 1 1 0 0 1 1 0 ... */

		/* Turned off (again): the CPU time of the writers the sets
		 * before had, if any; the agent loop's marks the set before's end. */
		if ((ret = raw_recording(s, on, ns)) < 0)
			break;
		res->writer_ns += (double)ns[2];
		if (i)
			loop_set_end(res, &mark, ns, r->next);
		mark = (struct loop_mark){ ns[0], ns[1], r->next, ns[3], ns[4], on, k[on] };
		if ((ret = bench_watch_begin(&w, pids, 2, cpus, s->cfg->single_core ? 1 : 2)) < 0 ||
		    (ret = bench_measure_rates(raw_stream, r, s->cfg, rate)) < 0)
			break;
		res->set_offcpu[on][k[on]] = bench_watch_end(&w);
		for (unsigned b = 0; b < BENCH_N_BATCHES; b++)
			res->set_tput[on][b][k[on]] = rate[b];
		if (on)
			res->records += 2 * (r->next - mark.events); /* an event and its decision */
		k[on]++;
	}
	if (ret == 0 && (ret = raw_recording(s, false, ns)) == 0) {
		res->writer_ns += (double)ns[2];
		loop_set_end(res, &mark, ns, r->next);
	}
	if (ret == 0 && (r->wrong || r->expected != r->next))
		ret = -EPROTO;
	res->n_sets = k[0] < k[1] ? k[0] : k[1];
	res->events += r->next;
	res->decisions += r->expected;
	return ret;
}

static int raw_main(void *arg)
{
	struct run_side *s = arg;
	struct raw r = { 0 };
	int ret;

	close(s->stop_w);
	ret = raw_hello(&r, s->uri);
	if (ret == 0)
		ret = s->rec == BENCH_REC_SETS ? raw_sets(&r, s, s->res)
					       : raw_measure(&r, s->cfg, s->res);
	if (r.ch)
		wave_chan_close(r.ch);
	return ret < 0 ? fail("raw host", ret) : 0;
}

/* ---- the pair ------------------------------------------------------------- */

static int wait_ready(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char c;

	if (poll(&p, 1, SETUP_TIMEOUT_MS) <= 0)
		return -ETIMEDOUT;
	return read(fd, &c, 1) == 1 ? 0 : -EPIPE;
}

static int run_timeout_ms(const struct bench_cfg *cfg)
{
	return 60000 + (int)(cfg->iters / 10 + 8 * cfg->tput_ms);
}

/* Starts the agent; returns its pid through @agent and the write end of
 * its stop pipe through @stop_w. */
static int start_agent(struct run_side *s, pid_t *agent, int *stop_w)
{
	int rp[2], sp[2], ret;

	if (pipe(rp) < 0)
		return -errno;
	if (pipe(sp) < 0) {
		ret = -errno;
		close(rp[0]);
		close(rp[1]);
		return ret;
	}
	s->ready_fd = rp[1];
	s->stop_fd = sp[0];
	s->stop_w = sp[1];
	ret = bench_spawn(s->cfg->agent_cpu, agent_main, s, agent);
	close(rp[1]);
	close(sp[0]);
	if (ret == 0)
		ret = wait_ready(rp[0]);
	close(rp[0]);
	*stop_w = sp[1];
	return ret;
}

static int run_pair(struct run_side *s)
{
	pid_t agent = -1, host = -1;
	int stop_w = -1, ret, st;

	struct bench_watch w;
	double off[2] = { 0, 0 };
	unsigned n_off = 0;

	ret = start_agent(s, &agent, &stop_w);
	s->agent_pid = agent;
	/* Recording in sets compares (e) alone, with itself. */
	if (ret == 0 && s->rec != BENCH_REC_SETS)
		ret = bench_spawn(s->cfg->host_cpu, host_main, s, &host);
	bench_watch_run(&w, s->cfg, agent, host);
	if (host > 0 && (st = bench_wait_run(host, run_timeout_ms(s->cfg), &w, off, &n_off)) != 0 &&
	    ret == 0)
		ret = st < 0 ? st : -EPROTO;
	/* Then a host that is a bare channel end, on the same agent. */
	host = -1;
	if (ret == 0)
		ret = bench_spawn(s->cfg->host_cpu, raw_main, s, &host);
	bench_watch_run(&w, s->cfg, agent, host);
	if (host > 0 && (st = bench_wait_run(host, run_timeout_ms(s->cfg), &w, off, &n_off)) != 0 &&
	    ret == 0)
		ret = st < 0 ? st : -EPROTO;
	if (ret == 0 && s->res->n_off < BENCH_MAX_REPS)
		s->res->offcpu[s->res->n_off++] = off[0] > off[1] ? off[0] : off[1];
	if (stop_w >= 0)
		close(stop_w); /* the agent says goodbye and exits */
	if (agent > 0) {
		st = bench_wait(agent, ret == 0 ? SETUP_TIMEOUT_MS : 1);
		if (st != 0 && ret == 0)
			ret = st < 0 ? st : -EPROTO;
	}
	return ret;
}

/* Removes the traces a recording run left in @dir. */
static void remove_traces(const char *dir)
{
	struct dirent *e;
	DIR *d = opendir(dir);

	while (d && (e = readdir(d)))
		if (strstr(e->d_name, ".trace"))
			unlinkat(dirfd(d), e->d_name, 0);
	if (d)
		closedir(d);
}

/* Where a recording run's traces go: memory (/dev/shm) when there is
 * some, so that the run measures what recording costs the agent, not
 * what the disk sustains (at 10 M events/s a trace grows by about
 * 600 MB/s). Fills @rdir, or returns -errno. */
static int record_dir(char *rdir, size_t size)
{
	snprintf(rdir, size, "%s/wave-bench-rec-XXXXXX",
		 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	return mkdtemp(rdir) ? 0 : -errno;
}

/* The "record" section of the agent's configuration for @rec, its traces
 * in @rdir, their writer threads on the host's CPU (on the agent's, they
 * take the agent loop's time: --writer-on-agent, which leaves the host
 * its CPU). */
static void record_cfg(const struct bench_cfg *cfg, enum bench_rec rec, const char *rdir,
		       char *out, size_t size)
{
	/* A trace per host, 64 MiB each and one older file: the agent
	 * writes, rotates and drops files as one left recording would. */
	if (rec != BENCH_REC_OFF)
		snprintf(out, size,
			 ", \"record\": {\"path\": \"%s\", \"max_bytes\": 67108864,"
			 " \"rotate\": 1, \"writer_cpu\": %d, \"enabled\": %s}",
			 rdir, cfg->writer_on_agent ? cfg->agent_cpu : cfg->host_cpu,
			 rec == BENCH_REC_ON ? "true" : "false");
}

static void close_pipes(struct run_side *s)
{
	for (unsigned i = 0; i < 2; i++) {
		if (s->ctl[i] >= 0)
			close(s->ctl[i]);
		if (s->ack[i] >= 0)
			close(s->ack[i]);
	}
}

int bench_agent_run(const struct bench_cfg *cfg, const char *plugin_dir, enum bench_rec rec,
		    unsigned sets, struct bench_agent_result *res)
{
	char dir[] = "/tmp/wave-bench-agent-XXXXXX", sock[64], rcfg[256] = "", rdir[64] = "";
	struct run_side s = { .cfg = cfg, .res = res, .ready_fd = -1, .stop_fd = -1, .stop_w = -1,
			      .rec = rec, .sets = sets, .ctl = { -1, -1 }, .ack = { -1, -1 } };
	int ret;

	if (!cfg || !plugin_dir || !res || res->n_lat >= BENCH_MAX_REPS ||
	    (rec == BENCH_REC_SETS && (sets == 0 || sets > BENCH_MAX_REPS)))
		return -EINVAL;
	if (!mkdtemp(dir))
		return -errno;
	snprintf(sock, sizeof(sock), "%s/agent.sock", dir);
	snprintf(s.uri, sizeof(s.uri), "shm://%s", sock);
	if (rec != BENCH_REC_OFF && (ret = record_dir(rdir, sizeof(rdir))) < 0) {
		rmdir(dir);
		return ret;
	}
	record_cfg(cfg, rec, rdir, rcfg, sizeof(rcfg));
	if (rec == BENCH_REC_SETS && (pipe(s.ctl) < 0 || pipe(s.ack) < 0))
		ret = -errno;
	/* spin_ns: the agent polls for a second before it sleeps, as a
	 * dedicated agent core would; alone on one CPU it must not spin. */
	else if ((ret = snprintf(s.cfg_json, sizeof(s.cfg_json),
				 "{\"listen\": [\"%s\"], \"heartbeat\": {\"timeout_ms\": 10000},"
				 " \"channel\": {\"spin_ns\": %u}, \"plugin_path\": [\"%s\"],"
				 " \"domains\": {\"custom\": {\"plugin\": \"bench_echo\"}}%s}",
				 s.uri, cfg->single_core ? 0u : 1000000000u, plugin_dir, rcfg)) < 0 ||
		 (size_t)ret >= sizeof(s.cfg_json))
		ret = -ENAMETOOLONG;
	else
		ret = run_pair(&s);
	close_pipes(&s);
	unlink(sock); /* the listener removed it; a killed agent may not have */
	rmdir(dir);
	if (rec != BENCH_REC_OFF) {
		remove_traces(rdir);
		rmdir(rdir);
	}
	snprintf(res->note, sizeof(res->note), "wave_host_event(s) + wave_host_poll(0) -> "
		 "wave_agent_run -> bench_echo, busy-polling");
	return ret;
}
