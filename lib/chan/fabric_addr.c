/* SPDX-License-Identifier: MIT */
/* fabric:// addresses: URIs, listen and source addresses, and the address
 * blobs peers send in the handshake. Nothing here sends anything. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fabric_impl.h"

static bool prov_char_ok(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '_' || ch == ';' || ch == '-';
}

static bool name_char_ok(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '_' || ch == '.' || ch == '-';
}

/* Parses "<port>" into 1..65535. */
static int parse_port(const char *s, uint16_t *port)
{
	unsigned long v = 0;

	if (!*s)
		return -WAVE_EURI;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -WAVE_EURI;
		v = v * 10 + (unsigned long)(*s - '0');
		if (v > 65535)
			return -WAVE_EURI;
	}
	if (v == 0)
		return -WAVE_EURI;
	*port = (uint16_t)v;
	return 0;
}

/*
 * "<provider>/<host>:<port>" with a numeric IPv4 host or a bracketed IPv6
 * one, or "shm/<name>". Names are never resolved: nothing is looked up on
 * the network.
 */
int fab_parse_uri(const char *rest, struct fab_addr *a)
{
	const char *slash = strchr(rest, '/');
	char host[INET6_ADDRSTRLEN + 2];
	const char *addr, *colon;
	size_t plen, hlen;
	uint16_t port;

	memset(a, 0, sizeof(*a));
	if (!slash)
		return -WAVE_EURI;
	plen = (size_t)(slash - rest);
	if (plen >= sizeof(a->prov))
		return -WAVE_EURI;
	for (size_t i = 0; i < plen; i++)
		if (!prov_char_ok(rest[i]))
			return -WAVE_EURI;
	memcpy(a->prov, rest, plen);
	a->prov[plen] = '\0';
	addr = slash + 1;

	if (strcmp(a->prov, "shm") == 0) {
		size_t n = strlen(addr);
		if (n == 0 || n > FAB_NAME_MAX)
			return -WAVE_EURI;
		for (size_t i = 0; i < n; i++)
			if (!name_char_ok(addr[i]))
				return -WAVE_EURI;
		a->is_str = true;
		a->format = FI_ADDR_STR;
		snprintf(a->str, sizeof(a->str), "fi_ns://wave_%s", addr);
		return 0;
	}
	if (addr[0] == '[') {
		const char *close = strchr(addr, ']');
		if (!close || close[1] != ':')
			return -WAVE_EURI;
		hlen = (size_t)(close - addr - 1);
		if (hlen == 0 || hlen >= sizeof(host))
			return -WAVE_EURI;
		memcpy(host, addr + 1, hlen);
		host[hlen] = '\0';
		if (parse_port(close + 2, &port) < 0)
			return -WAVE_EURI;
		a->sa.in6.sin6_family = AF_INET6;
		a->sa.in6.sin6_port = htons(port);
		if (inet_pton(AF_INET6, host, &a->sa.in6.sin6_addr) != 1)
			return -WAVE_EURI;
		a->salen = sizeof(a->sa.in6);
		a->format = FI_SOCKADDR_IN6;
		return 0;
	}
	colon = strrchr(addr, ':');
	if (!colon)
		return -WAVE_EURI;
	hlen = (size_t)(colon - addr);
	if (hlen == 0 || hlen >= sizeof(host))
		return -WAVE_EURI;
	memcpy(host, addr, hlen);
	host[hlen] = '\0';
	if (parse_port(colon + 1, &port) < 0)
		return -WAVE_EURI;
	a->sa.in.sin_family = AF_INET;
	a->sa.in.sin_port = htons(port);
	if (inet_pton(AF_INET, host, &a->sa.in.sin_addr) != 1)
		return -WAVE_EURI;
	a->salen = sizeof(a->sa.in);
	a->format = FI_SOCKADDR_IN;
	return 0;
}

bool fab_addr_is_wildcard(const struct fab_addr *a)
{
	if (a->format == FI_SOCKADDR_IN)
		return a->sa.in.sin_addr.s_addr == htonl(INADDR_ANY);
	if (a->format == FI_SOCKADDR_IN6)
		return IN6_IS_ADDR_UNSPECIFIED(&a->sa.in6.sin6_addr);
	return false;
}

/*
 * The local address the kernel would use to reach @dst, with port 0. A UDP
 * connect() only consults the routing table; it sends nothing.
 */
int fab_local_addr_towards(const struct sockaddr *dst, socklen_t dlen, struct fab_addr *out)
{
	int s = socket(dst->sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	socklen_t len = sizeof(out->sa);
	int ret = 0;

	if (s < 0)
		return -errno;
	if (connect(s, dst, dlen) < 0 || getsockname(s, &out->sa.sa, &len) < 0)
		ret = -errno;
	close(s);
	if (ret < 0)
		return ret;
	if (out->sa.sa.sa_family == AF_INET)
		out->sa.in.sin_port = 0;
	else
		out->sa.in6.sin6_port = 0;
	out->salen = len;
	return 0;
}

/* Checks that the listen address is one of this machine's: bind() to it with
 * port 0 on a throw-away socket. Never sends anything anywhere. */
int fab_check_local_addr(const struct fab_addr *a)
{
	union fab_sa tmp = a->sa;
	int s, ret = 0;

	if (a->is_str)
		return 0;
	if (a->format == FI_SOCKADDR_IN)
		tmp.in.sin_port = 0;
	else
		tmp.in6.sin6_port = 0;
	s = socket(tmp.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	if (bind(s, &tmp.sa, a->salen) < 0)
		ret = -errno;
	close(s);
	return ret;
}

/* Validates an address blob from the peer for @format. */
bool fab_peer_addr_ok(uint32_t format, const uint8_t *addr, uint32_t len)
{
	if (len == 0 || len > FAB_ADDR_MAX)
		return false;
	if (format == FI_SOCKADDR_IN) {
		struct sockaddr_in in;
		if (len != sizeof(in))
			return false;
		memcpy(&in, addr, sizeof(in));
		return in.sin_family == AF_INET && in.sin_port != 0;
	}
	if (format == FI_SOCKADDR_IN6) {
		struct sockaddr_in6 in6;
		if (len != sizeof(in6))
			return false;
		memcpy(&in6, addr, sizeof(in6));
		return in6.sin6_family == AF_INET6 && in6.sin6_port != 0;
	}
	if (format == FI_ADDR_STR)
		return memchr(addr, '\0', len) == addr + len - 1 && strstr((const char *)addr, "://");
	return false;
}

uint64_t fab_nonce(void)
{
	uint64_t n = 0;

	if (getrandom(&n, sizeof(n), GRND_NONBLOCK) != (ssize_t)sizeof(n))
		n = wave_now_ns() ^ ((uint64_t)getpid() << 32);
	return n;
}

/*
 * The shm provider keeps each endpoint in a POSIX shared-memory object named
 * "<address>:<uid>:<n>" after the address it is opened at ("fi_shm://<pid>"
 * by default). A process killed before it closes leaves its objects behind
 * (16 MiB each), and when its pid comes round again the provider refuses
 * the new process's endpoint with -EBUSY: the name is taken and the pid
 * recorded in it is alive. Our endpoints are named "wave.<pid>.<nonce>"
 * instead, which no later process repeats, and once per process the objects
 * of ours whose process is gone are removed, by the same rule the provider
 * itself uses before it reuses a name (no such process). A process whose
 * pid was taken again by another keeps its objects until that one is gone.
 */
#define FAB_SHM_PREFIX "wave."

static void shm_reap(void)
{
	DIR *d = opendir("/dev/shm");
	struct dirent *ent;
	unsigned int reaped = 0;

	if (!d)
		return;
	while ((ent = readdir(d)) != NULL) {
		unsigned long pid, uid;
		char tail;
		int n = -1;

		/* "wave.<pid>.<nonce>:<uid>:<n>" and nothing after it */
		if (strncmp(ent->d_name, FAB_SHM_PREFIX, strlen(FAB_SHM_PREFIX)) != 0 ||
		    sscanf(ent->d_name, FAB_SHM_PREFIX "%lu.%*x:%lu:%*u%n%c", &pid, &uid, &n,
			   &tail) != 2 ||
		    n < 0 || uid != (unsigned long)getuid() || pid == 0 || pid > INT32_MAX)
			continue;
		if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		if (shm_unlink(ent->d_name) == 0)
			reaped++;
	}
	closedir(d);
	if (reaped)
		wave_info("fabric: removed %u shm endpoint objects of processes that are gone", reaped);
}

void fab_shm_src(struct fab_addr *src)
{
	/* Once per process; a forked child is another process. */
	static _Atomic pid_t reaped_by;
	pid_t me = getpid();

	if (atomic_exchange(&reaped_by, me) != me)
		shm_reap();
	memset(src, 0, sizeof(*src));
	src->is_str = true;
	src->format = FI_ADDR_STR;
	snprintf(src->str, sizeof(src->str), "fi_shm://" FAB_SHM_PREFIX "%d.%016" PRIx64, (int)me,
		 fab_nonce());
	src->salen = (socklen_t)strlen(src->str) + 1;
}
