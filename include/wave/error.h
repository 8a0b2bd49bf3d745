/* SPDX-License-Identifier: MIT */
/**
 * @file error.h
 * Error codes of libwave.
 *
 * Every libwave function that can fail returns an int: 0 or a non-negative
 * count on success, a negative error code on failure. It never sets errno.
 * An error code is either a negated errno value (-EINVAL, -ENOMEM, -EAGAIN,
 * ...) or a negated libwave code from the enum below; libwave's own codes start
 * at WAVE_ERRNO_BASE, above every errno value, so the two never collide.
 *
 * Errno values that libwave uses with a fixed meaning:
 *   -EINVAL     an argument is invalid (NULL handle, zero count, bad option).
 *   -ENOMEM     an allocation failed; nothing was changed.
 *   -EAGAIN     the operation would block and non-blocking behaviour was asked.
 *   -ETIMEDOUT  a wait ran out of time.
 *   -ENOTSUP    the transport cannot do this (e.g. no pollable fd on a
 *               futex-only channel).
 */
#ifndef WAVE_ERROR_H
#define WAVE_ERROR_H

#include <stddef.h>

#include <wave/export.h>

#ifdef __cplusplus
extern "C" {
#endif

/** First libwave-specific error code; larger than any errno value. */
#define WAVE_ERRNO_BASE 1000

/** libwave's own error codes. Functions return them negated. */
enum wave_errno {
	/** The peer broke the protocol or the shared memory holds impossible
	 *  values (a counter out of range, a bad slot stamp). The channel is
	 *  failed; every later call on it returns this code. */
	WAVE_ECORRUPT = WAVE_ERRNO_BASE,
	/** A shared-memory layout header is wrong: bad magic, sizes or offsets
	 *  that do not fit the mapping. */
	WAVE_ELAYOUT,
	/** The peer speaks an incompatible protocol or layout version. */
	WAVE_EVERSION,
	/** The peer refused us, or we refused the peer (credentials, token). */
	WAVE_EREFUSED,
	/** The peer closed the channel (or died); no more messages will come. */
	WAVE_ECLOSED,
	/** The URI is malformed or names an unknown transport. */
	WAVE_EURI,
	/** A configuration file is invalid; see the error struct for where. */
	WAVE_ECONFIG,
	/** A plugin could not be loaded or is incompatible. */
	WAVE_EPLUGIN,
	/** One past the last code; not an error. */
	WAVE_ERRNO_MAX
};

/**
 * wave_strerror() - describe an error code.
 * @err: an error code, negative (as returned) or positive.
 *
 * Return: a constant, never NULL, string. Unknown codes give
 * "unknown error". Thread-safe.
 */
WAVE_API const char *wave_strerror(int err);

/** Bytes in wave_error.source and wave_error.text, with the final NUL. */
#define WAVE_ERROR_SOURCE_LENGTH 256
#define WAVE_ERROR_TEXT_LENGTH 512

/**
 * struct wave_error - what went wrong, for a human (configuration files,
 * plugin loading).
 * @code:     the negative error code the failing call returned (-WAVE_ECONFIG,
 *            -WAVE_EPLUGIN, -ENOMEM, ...).
 * @line:     1-based line in @source, or 0 when @source is not a text file
 *            (a plugin) or the position is unknown.
 * @column:   1-based column (in characters) on @line, or 0.
 * @source:   the file the error is about, as the caller named it (a
 *            configuration file, a plugin's path), or a short label such as
 *            "<string>"; NUL-terminated, truncated if longer.
 * @text:     the problem, NUL-terminated, without the source or position:
 *            "domains.custom.tick_us: expected a positive integer, got -5".
 * @reserved: zero; room for later fields without changing the size.
 *
 * Functions that take a struct wave_error * accept NULL (no detail wanted),
 * fill it on failure and leave it zeroed (code 0, empty strings) on success.
 * Print it with wave_error_format().
 */
struct wave_error {
	int code;
	int line;
	int column;
	char source[WAVE_ERROR_SOURCE_LENGTH];
	char text[WAVE_ERROR_TEXT_LENGTH];
	unsigned reserved[8];
};

/**
 * wave_error_format() - render @err the way compilers print diagnostics.
 * @err:  a filled error.
 * @buf:  receives "source:line:column: text", or "source: text" when the
 *        line is 0, or just "text" when the source is empty; NUL-terminated
 *        and truncated to @size.
 * @size: bytes at @buf; at least 1.
 *
 * Return: the length of the full rendering (like snprintf(); larger than or
 * equal to @size means it was truncated), or -EINVAL.
 */
WAVE_API int wave_error_format(const struct wave_error *err, char *buf, size_t size);

#ifdef __cplusplus
}
#endif

#endif /* WAVE_ERROR_H */
