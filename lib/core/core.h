/* SPDX-License-Identifier: MIT */
/* Internal helpers shared by every layer: logging, time, branch hints. */
#ifndef WAVE_CORE_CORE_H
#define WAVE_CORE_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <wave/error.h>
#include <wave/log.h>

#define wave_likely(x) __builtin_expect(!!(x), 1)
#define wave_unlikely(x) __builtin_expect(!!(x), 0)
#define WAVE_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
/* The size of @type up to and including @member. A size-versioned public
 * structure's oldest accepted size is written this way, naming the last
 * field of its first version (0.1's), so that it stays fixed when later
 * versions grow the structure. */
#define WAVE_SIZE_TO(type, member) (offsetof(type, member) + sizeof(((type *)0)->member))

/* The level in force; cheap enough to test before formatting anything. */
extern _Atomic int wave_log_level_cur;
void wave_log_init_once(void);
void wave_log_emit(enum wave_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define wave_log(level, ...)                                                   \
	do {                                                                   \
		wave_log_init_once();                                          \
		if (wave_unlikely((int)(level) <= wave_log_level_cur))         \
			wave_log_emit((level), __VA_ARGS__);                   \
	} while (0)
#define wave_err(...) wave_log(WAVE_LOG_ERROR, __VA_ARGS__)
#define wave_warn(...) wave_log(WAVE_LOG_WARN, __VA_ARGS__)
#define wave_info(...) wave_log(WAVE_LOG_INFO, __VA_ARGS__)
#define wave_dbg(...) wave_log(WAVE_LOG_DEBUG, __VA_ARGS__)

/* CLOCK_MONOTONIC in nanoseconds: the clock of wave_msg.tstamp. */
static inline uint64_t wave_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* @ns nanoseconds as a struct timespec, for the sleeping system calls. */
static inline struct timespec wave_timespec(uint64_t ns)
{
	return (struct timespec){ (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };
}

static inline uint64_t wave_min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* The CLOCK_MONOTONIC time at which a wait of @timeout_ns ends
 * (include/wave/timeout.h): UINT64_MAX for a negative one (for ever). */
static inline uint64_t wave_deadline(int64_t timeout_ns)
{
	return timeout_ns < 0 ? UINT64_MAX : wave_now_ns() + (uint64_t)timeout_ns;
}

/* Filling a caller's struct wave_error (error.c); every one accepts a NULL
 * @err. The setters return @code, so that "return wave_error_set(...)"
 * reports and fails in one step. */
void wave_error_clear(struct wave_error *err);
int wave_error_set(struct wave_error *err, int code, const char *source, int line, int column,
		   const char *fmt, ...) __attribute__((format(printf, 6, 7)));
int wave_error_vset(struct wave_error *err, int code, const char *source, int line, int column,
		    const char *fmt, va_list ap) __attribute__((format(printf, 6, 0)));

/*
 * Copies a caller's size-versioned structure @src (its size field says
 * @src_size) over @dst, which holds the defaults and is @dst_size bytes:
 * an older, smaller structure leaves the fields it lacks at their
 * defaults. Return: 0, or -EINVAL (logged) when @src_size is below
 * @min_size (the first version's size) or above @dst_size (a newer
 * structure, whose fields this library cannot honour).
 */
int wave_struct_copy(void *dst, size_t dst_size, const void *src, size_t src_size,
		     size_t min_size, const char *what);

/*
 * Compares two secrets (access tokens) in time that depends on @n alone,
 * never on their contents: @n bytes of each are read (the caller makes
 * both buffers that long: zero padded, or @n the common length), and the
 * lengths are compared without a branch.
 */
static inline bool wave_secret_equal(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
				     size_t n)
{
	uint8_t diff = (uint8_t)(alen != blen);

	for (size_t i = 0; i < n; i++)
		diff |= (uint8_t)(a[i] ^ b[i]);
	return diff == 0;
}

/* NUMA placement of channel memory (lib/core/numa.c). */
int wave_numa_place(void *addr, size_t len, int node);

#endif /* WAVE_CORE_CORE_H */
