/* SPDX-License-Identifier: MIT */
/* fabric:// addresses: URIs, listen and source addresses, and the address
 * blobs peers send in the handshake. Nothing here sends anything. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
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
