/* SPDX-License-Identifier: MIT */
/* futex(2), which glibc does not wrap. */
#ifndef WAVE_CORE_FUTEX_H
#define WAVE_CORE_FUTEX_H

#include <linux/futex.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* FUTEX_WAIT (@ts relative, NULL: no limit) or FUTEX_WAKE (@val waiters),
 * _PRIVATE where @word is not shared with another process. -1 with errno
 * on failure (EAGAIN: *@word was not @val; ETIMEDOUT; EINTR). */
static inline long wave_futex(_Atomic uint32_t *word, int op, uint32_t val,
			      const struct timespec *ts)
{
	return syscall(SYS_futex, word, op, val, ts, NULL, 0);
}

#endif
