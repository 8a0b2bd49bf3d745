/* SPDX-License-Identifier: MIT */
/**
 * @file log.h
 * Logging. An embeddable library is quiet: libwave logs nothing until the
 * application asks. Two ways to switch it on:
 *
 *   - the environment variable WAVE_LOG=error|warn|info|debug, read once,
 *     the first time libwave would log; messages go to stderr;
 *   - wave_log_set_level() and wave_log_set_handler(), which take precedence
 *     over the environment once called.
 */
#ifndef WAVE_LOG_H
#define WAVE_LOG_H

#include <wave/export.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Log levels, most severe first. */
enum wave_log_level {
	WAVE_LOG_OFF = 0, /**< nothing (the default) */
	WAVE_LOG_ERROR,   /**< something failed */
	WAVE_LOG_WARN,    /**< something was refused or degraded */
	WAVE_LOG_INFO,    /**< connections, disconnections, configuration */
	WAVE_LOG_DEBUG,   /**< per-operation detail; never on a fast path */
};

/**
 * wave_log_fn - a log sink.
 * @level: the message's level.
 * @msg: the message, without a trailing newline; valid only during the call.
 * @user: the pointer given to wave_log_set_handler().
 *
 * May be called from any thread that calls into libwave, concurrently.
 */
typedef void (*wave_log_fn)(enum wave_log_level level, const char *msg, void *user);

/**
 * wave_log_set_level() - set the most verbose level that is emitted.
 * Return: 0, or -EINVAL for a level outside the enum.
 */
WAVE_API int wave_log_set_level(enum wave_log_level level);

/** wave_log_get_level() - the level in force (after reading WAVE_LOG). */
WAVE_API enum wave_log_level wave_log_get_level(void);

/**
 * wave_log_set_handler() - send log messages to @fn instead of stderr.
 * @fn: the sink, or NULL to go back to stderr.
 * @user: passed to @fn unchanged.
 *
 * Not synchronised with messages being logged at the same moment: set it
 * before starting threads that use libwave.
 */
WAVE_API void wave_log_set_handler(wave_log_fn fn, void *user);

#ifdef __cplusplus
}
#endif

#endif /* WAVE_LOG_H */
