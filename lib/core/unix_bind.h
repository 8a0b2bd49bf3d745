/* SPDX-License-Identifier: MIT */
/* Binding a Unix socket where a dead process may have left its socket file. */
#ifndef WAVE_CORE_UNIX_BIND_H
#define WAVE_CORE_UNIX_BIND_H

#include <sys/un.h>

/*
 * Binds @fd to @a. When the path is taken by a socket file nobody accepts
 * on (left by a process that died without unlinking it), removes that file
 * and binds again; a live socket, or anything that is not a socket, is never
 * removed (-EADDRINUSE). Return: 0 or -errno.
 */
int wave_unix_bind(int fd, const struct sockaddr_un *a);

#endif /* WAVE_CORE_UNIX_BIND_H */
