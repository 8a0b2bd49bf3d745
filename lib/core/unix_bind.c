/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unix_bind.h"

/* A socket file nobody listens on. The probe has @fd's type: a connect
 * across types is refused as EPROTOTYPE and would hide a live socket's
 * answer. */
static bool stale_socket(int fd, const struct sockaddr_un *a)
{
	socklen_t len = sizeof(int);
	struct stat st;
	bool stale = false;
	int type, probe;

	if (lstat(a->sun_path, &st) != 0 || !S_ISSOCK(st.st_mode))
		return false; /* never remove anything but a socket */
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
		return false;
	probe = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
	if (probe >= 0) {
		stale = connect(probe, (const struct sockaddr *)a, sizeof(*a)) < 0 &&
			errno == ECONNREFUSED;
		close(probe);
	}
	return stale;
}

int wave_unix_bind(int fd, const struct sockaddr_un *a)
{
	if (bind(fd, (const struct sockaddr *)a, sizeof(*a)) == 0)
		return 0;
	if (errno != EADDRINUSE)
		return -errno;
	if (!stale_socket(fd, a))
		return -EADDRINUSE;
	unlink(a->sun_path);
	return bind(fd, (const struct sockaddr *)a, sizeof(*a)) == 0 ? 0 : -errno;
}
