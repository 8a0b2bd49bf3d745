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

#ifdef __cplusplus
}
#endif

#endif /* WAVE_ERROR_H */
