/* SPDX-License-Identifier: MIT */
/*
 * RPC steering in the kernel (include/wave/rpc_reuseport.h): loads
 * rpc_reuseport.bpf.c through the skeleton bpftool generated at build time
 * (the object is embedded in it, so nothing is read from disk at run time),
 * fills its maps and attaches it to a reuseport group.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/sock_diag.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <wave/rpc_reuseport.h>

#include "../../core/core.h"
#include "rpc_reuseport.skel.h"

struct wave_rpc_reuseport {
	struct rpc_reuseport_bpf *skel;
	int table_fd, workers_fd, arrivals_fd, outcomes_fd, delivered_fd;
	unsigned n_workers, n_buckets;
	int ncpus; /* slots in a per-CPU map value */
	uint64_t *reported; /* per bucket: arrivals already added to a handle */
	int fds[];  /* the workers' sockets, to detach at close */
};

/* libbpf prints to stderr unless told otherwise, and libwave logs nothing
 * unless asked: while we call libbpf, its messages go to libwave's log. */
static int libbpf_to_wave_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char line[256];
	size_t n;

	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	if (n && line[n - 1] == '\n')
		line[n - 1] = '\0';
	wave_log(level == LIBBPF_WARN ? WAVE_LOG_WARN : WAVE_LOG_DEBUG, "rpc_reuseport: libbpf: %s",
		 line);
	return 0;
}

static int sockopt_int(int fd, int level, int name, int *val)
{
	socklen_t len = sizeof(*val);

	return getsockopt(fd, level, name, val, &len) == 0 ? 0 : -errno;
}

/* The local port of @fd (network order), or 0 when it is not bound. */
static int local_port(int fd, in_port_t *port)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return -errno;
	if (ss.ss_family == AF_INET)
		*port = ((struct sockaddr_in *)&ss)->sin_port;
	else if (ss.ss_family == AF_INET6)
		*port = ((struct sockaddr_in6 *)&ss)->sin6_port;
	else
		return -EINVAL;
	return 0;
}

/* One worker socket: a bound reuseport UDP socket or a listening reuseport
 * TCP socket, of the same type and port as worker 0's. */
static int check_socket(const int *fds, unsigned w)
{
	int type, proto, reuse, listening = 0, err;
	in_port_t port, port0 = 0;

	if (fds[w] < 0)
		return -EINVAL;
	err = sockopt_int(fds[w], SOL_SOCKET, SO_TYPE, &type);
	if (!err)
		err = sockopt_int(fds[w], SOL_SOCKET, SO_PROTOCOL, &proto);
	if (!err)
		err = sockopt_int(fds[w], SOL_SOCKET, SO_REUSEPORT, &reuse);
	if (!err && type == SOCK_STREAM)
		err = sockopt_int(fds[w], SOL_SOCKET, SO_ACCEPTCONN, &listening);
	if (!err)
		err = local_port(fds[w], &port);
	if (!err && w > 0)
		err = local_port(fds[0], &port0);
	if (err) {
		wave_err("rpc_reuseport: worker %u: fd %d is not a usable socket: %s", w, fds[w],
			 strerror(-err));
		return err == -ENOTSOCK || err == -EBADF ? -EINVAL : err;
	}
	if (!((type == SOCK_DGRAM && proto == IPPROTO_UDP) ||
	      (type == SOCK_STREAM && proto == IPPROTO_TCP && listening)) ||
	    !reuse || port == 0 || (w > 0 && port != port0)) {
		wave_err("rpc_reuseport: worker %u: fd %d must be a bound UDP or listening TCP "
			 "socket with SO_REUSEPORT on worker 0's port", w, fds[w]);
		return -EINVAL;
	}
	if (w > 0) {
		int type0;
		err = sockopt_int(fds[0], SOL_SOCKET, SO_TYPE, &type0);
		if (err || type0 != type) {
			wave_err("rpc_reuseport: worker %u: UDP and TCP sockets mixed in one group", w);
			return -EINVAL;
		}
	}
	return 0;
}

static int load(struct wave_rpc_reuseport *rp)
{
	struct rpc_reuseport_bpf *s;
	int err;

	s = rpc_reuseport_bpf__open();
	if (!s)
		return -errno;
	rp->skel = s;
	s->rodata->bucket_mask = rp->n_buckets - 1;
	err = bpf_map__set_max_entries(s->maps.workers, rp->n_workers);
	if (!err)
		err = bpf_map__set_max_entries(s->maps.table, rp->n_buckets);
	if (!err)
		err = bpf_map__set_max_entries(s->maps.arrivals, rp->n_buckets);
	if (!err)
		err = bpf_map__set_max_entries(s->maps.delivered, rp->n_workers);
	if (!err)
		err = rpc_reuseport_bpf__load(s);
	if (err)
		return err;
	rp->table_fd = bpf_map__fd(s->maps.table);
	rp->workers_fd = bpf_map__fd(s->maps.workers);
	rp->arrivals_fd = bpf_map__fd(s->maps.arrivals);
	rp->outcomes_fd = bpf_map__fd(s->maps.outcomes);
	rp->delivered_fd = bpf_map__fd(s->maps.delivered);
	return 0;
}

/* Maps filled (sockets, the static hash), then the program attached: the
 * group never sees a half-filled table. */
static int fill_and_attach(struct wave_rpc_reuseport *rp)
{
	int prog_fd = bpf_program__fd(rp->skel->progs.wave_rpc_steer);
	int err;

	for (unsigned w = 0; w < rp->n_workers; w++) {
		err = wave_rpc_reuseport_set_worker(rp, w, rp->fds[w]);
		if (err)
			return err;
	}
	for (unsigned b = 0; b < rp->n_buckets; b++) {
		err = wave_rpc_reuseport_set(rp, b, b % rp->n_workers);
		if (err)
			return err;
	}
	if (setsockopt(rp->fds[0], SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF, &prog_fd,
		       sizeof(prog_fd)) != 0) {
		err = -errno;
		wave_err("rpc_reuseport: attaching the program to the group: %s", strerror(-err));
		return err;
	}
	return 0;
}

int wave_rpc_reuseport_open(const int *fds, unsigned n_workers, unsigned n_buckets,
			    struct wave_rpc_reuseport **out)
{
	struct wave_rpc_reuseport *rp;
	libbpf_print_fn_t prev;
	int err;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!fds || n_workers == 0 || n_workers > WAVE_RPC_REUSEPORT_MAX_WORKERS ||
	    n_buckets < n_workers || n_buckets > WAVE_RPC_REUSEPORT_MAX_BUCKETS ||
	    (n_buckets & (n_buckets - 1)) != 0)
		return -EINVAL;
	for (unsigned w = 0; w < n_workers; w++) {
		err = check_socket(fds, w);
		if (err)
			return err;
	}
	rp = calloc(1, sizeof(*rp) + n_workers * sizeof(rp->fds[0]));
	if (!rp)
		return -ENOMEM;
	rp->reported = calloc(n_buckets, sizeof(rp->reported[0]));
	if (!rp->reported) {
		free(rp);
		return -ENOMEM;
	}
	rp->n_workers = n_workers;
	rp->n_buckets = n_buckets;
	memcpy(rp->fds, fds, n_workers * sizeof(fds[0]));
	rp->ncpus = libbpf_num_possible_cpus();
	if (rp->ncpus <= 0) {
		err = rp->ncpus < 0 ? rp->ncpus : -EINVAL;
		goto fail;
	}
	/* Process-wide, so only around our own calls (see libbpf_to_wave_log). */
	prev = libbpf_set_print(libbpf_to_wave_log);
	err = load(rp);
	libbpf_set_print(prev);
	if (err == -EPERM || err == -EACCES) {
		wave_err("rpc_reuseport: loading the steering program needs CAP_BPF and "
			 "CAP_NET_ADMIN (or root): %s; the kernel's own SO_REUSEPORT hashing "
			 "stays in force", strerror(-err));
		goto fail;
	}
	if (err) {
		wave_err("rpc_reuseport: loading the steering program: %s", strerror(-err));
		goto fail;
	}
	err = fill_and_attach(rp);
	if (err)
		goto fail;
	*out = rp;
	return 0;
fail:
	rpc_reuseport_bpf__destroy(rp->skel);
	free(rp->reported);
	free(rp);
	return err;
}

int wave_rpc_reuseport_set(struct wave_rpc_reuseport *rp, unsigned bucket, unsigned worker)
{
	uint32_t key = bucket, val = worker;

	if (!rp || bucket >= rp->n_buckets || worker >= rp->n_workers)
		return -EINVAL;
	/* An array map's 32-bit value: the program reads the old worker or the
	 * new one, never a mix. */
	return bpf_map_update_elem(rp->table_fd, &key, &val, BPF_ANY) == 0 ? 0 : -errno;
}

int wave_rpc_reuseport_get(struct wave_rpc_reuseport *rp, unsigned bucket, unsigned *worker)
{
	uint32_t key = bucket, val;

	if (!rp || !worker || bucket >= rp->n_buckets)
		return -EINVAL;
	if (bpf_map_lookup_elem(rp->table_fd, &key, &val) != 0)
		return -errno;
	*worker = val;
	return 0;
}

int wave_rpc_reuseport_set_worker(struct wave_rpc_reuseport *rp, unsigned worker, int fd)
{
	uint32_t key = worker;
	uint64_t val = (uint64_t)fd, cookie, mine;
	socklen_t len = sizeof(mine);
	int err;

	if (!rp || worker >= rp->n_workers || fd < -1)
		return -EINVAL;
	if (fd == -1) {
		err = bpf_map_delete_elem(rp->workers_fd, &key) == 0 ? 0 : -errno;
		if (err && err != -ENOENT) /* ENOENT: already empty */
			return err;
		rp->fds[worker] = -1;
		return 0;
	}
	/* The kernel refuses a socket that is in the map already (EBUSY): a
	 * slot that holds this very socket (same cookie) is left as it is. */
	if (bpf_map_lookup_elem(rp->workers_fd, &key, &cookie) == 0 &&
	    getsockopt(fd, SOL_SOCKET, SO_COOKIE, &mine, &len) == 0 && cookie == mine) {
		rp->fds[worker] = fd;
		return 0;
	}
	if (bpf_map_update_elem(rp->workers_fd, &key, &val, BPF_ANY) != 0) {
		err = -errno;
		wave_err("rpc_reuseport: worker %u: the kernel refused fd %d (%s): it must be a "
			 "socket of the group", worker, fd, strerror(-err));
		return err == -EBADF || err == -ENOTSOCK ? -EINVAL : err;
	}
	rp->fds[worker] = fd;
	return 0;
}

/* The sum over CPUs of entry @key of the per-CPU map @map_fd. */
static int percpu_sum(const struct wave_rpc_reuseport *rp, int map_fd, uint32_t key,
		      uint64_t *vals, uint64_t *sum)
{
	if (bpf_map_lookup_elem(map_fd, &key, vals) != 0)
		return -errno;
	*sum = 0;
	for (int c = 0; c < rp->ncpus; c++)
		*sum += vals[c];
	return 0;
}

int wave_rpc_reuseport_arrivals(struct wave_rpc_reuseport *rp, uint64_t *counts,
				unsigned n_buckets)
{
	uint64_t *vals;
	int err = 0;

	if (!rp || !counts || n_buckets != rp->n_buckets)
		return -EINVAL;
	vals = calloc((size_t)rp->ncpus, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	for (unsigned b = 0; b < n_buckets && !err; b++)
		err = percpu_sum(rp, rp->arrivals_fd, b, vals, &counts[b]);
	free(vals);
	return err;
}

int wave_rpc_reuseport_queued(struct wave_rpc_reuseport *rp, unsigned worker, uint64_t taken,
			      uint32_t *depth)
{
	uint32_t mem[SK_MEMINFO_VARS];
	socklen_t len = sizeof(mem);
	uint64_t *vals, sent = 0, gone;
	int err;

	if (!rp || !depth || worker >= rp->n_workers || rp->fds[worker] < 0)
		return -EINVAL;
	if (getsockopt(rp->fds[worker], SOL_SOCKET, SO_MEMINFO, mem, &len) != 0)
		return -errno;
	vals = calloc((size_t)rp->ncpus, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	err = percpu_sum(rp, rp->delivered_fd, worker, vals, &sent);
	free(vals);
	if (err)
		return err;
	gone = taken + mem[SK_MEMINFO_DROPS];
	*depth = sent > gone ? (uint32_t)wave_min_u64(sent - gone, UINT32_MAX) : 0;
	return 0;
}

int wave_rpc_reuseport_stats(struct wave_rpc_reuseport *rp, struct wave_rpc_reuseport_stats *st)
{
	uint64_t *vals;
	int err;

	if (!rp || !st)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	vals = calloc((size_t)rp->ncpus, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	err = percpu_sum(rp, rp->outcomes_fd, 0, vals, &st->steered);
	if (!err)
		err = percpu_sum(rp, rp->outcomes_fd, 1, vals, &st->fallback);
	free(vals);
	return err;
}

void wave_rpc_reuseport_close(struct wave_rpc_reuseport *rp)
{
	int one = 1;

	if (!rp)
		return;
	/* The group holds its own reference to the program: detach it through
	 * any socket still in the group, or it would steer on with a frozen
	 * table after the maps' owner is gone. */
	for (unsigned w = 0; w < rp->n_workers; w++)
		if (rp->fds[w] >= 0 &&
		    setsockopt(rp->fds[w], SOL_SOCKET, SO_DETACH_REUSEPORT_BPF, &one,
			       sizeof(one)) == 0)
			break;
	rpc_reuseport_bpf__destroy(rp->skel);
	free(rp->reported);
	free(rp);
}

/* ---- following a steering handle (<wave/rpc.h>) ------------------------------ */

static int follow_worker(void *user, uint32_t worker, int fd, int live)
{
	struct wave_rpc_reuseport *rp = user;

	if (worker >= rp->n_workers)
		return live ? -EINVAL : 0;
	return wave_rpc_reuseport_set_worker(rp, worker, live ? fd : -1);
}

static int follow_bucket(void *user, uint32_t bucket, uint32_t worker)
{
	struct wave_rpc_reuseport *rp = user;

	if (bucket >= rp->n_buckets)
		return 0; /* a class entry: the server's dispatch, not the kernel's */
	return wave_rpc_reuseport_set(rp, bucket, worker);
}

/* The arrivals counted since the last report, added to the handle's. */
static void follow_collect(void *user, struct wave_rpc *r)
{
	struct wave_rpc_reuseport *rp = user;
	uint64_t *vals = calloc((size_t)rp->ncpus, sizeof(*vals)), now = 0, n;

	for (uint32_t b = 0; vals && b < rp->n_buckets; b++) {
		if (percpu_sum(rp, rp->arrivals_fd, b, vals, &now) != 0 || now == rp->reported[b])
			continue;
		n = wave_min_u64(now - rp->reported[b], UINT32_MAX);
		if (wave_rpc_arrivals(r, b, (uint32_t)n) == 0)
			rp->reported[b] += n;
	}
	free(vals);
}

int wave_rpc_reuseport_follower(struct wave_rpc_reuseport *rp, struct wave_rpc_follower *f)
{
	if (!rp || !f)
		return -EINVAL;
	*f = (struct wave_rpc_follower){ .size = sizeof(*f),
					 .worker = follow_worker,
					 .bucket = follow_bucket,
					 .collect = follow_collect,
					 .user = rp };
	return 0;
}
