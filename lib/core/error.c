/* SPDX-License-Identifier: MIT */
/* Error codes and their text, and the caller's error detail. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <wave/error.h>

#include "core.h"

static const char *const wave_errstr[WAVE_ERRNO_MAX - WAVE_ERRNO_BASE] = {
	[WAVE_ECORRUPT - WAVE_ERRNO_BASE] = "peer corrupted the channel",
	[WAVE_ELAYOUT - WAVE_ERRNO_BASE] = "invalid shared-memory layout",
	[WAVE_EVERSION - WAVE_ERRNO_BASE] = "incompatible protocol or layout version",
	[WAVE_EREFUSED - WAVE_ERRNO_BASE] = "refused by peer or by policy",
	[WAVE_ECLOSED - WAVE_ERRNO_BASE] = "channel closed by peer",
	[WAVE_EURI - WAVE_ERRNO_BASE] = "malformed URI or unknown transport",
	[WAVE_ECONFIG - WAVE_ERRNO_BASE] = "invalid configuration",
	[WAVE_EPLUGIN - WAVE_ERRNO_BASE] = "plugin cannot be loaded",
};

WAVE_API const char *wave_strerror(int err)
{
	if (err < 0)
		err = -err;
	if (err == 0)
		return "success";
	if (err >= WAVE_ERRNO_BASE && err < WAVE_ERRNO_MAX)
		return wave_errstr[err - WAVE_ERRNO_BASE];
	if (err < WAVE_ERRNO_BASE) {
		/* strerrordesc_np() is thread-safe and never formats. */
		const char *s = strerrordesc_np(err);
		if (s)
			return s;
	}
	return "unknown error";
}

/* ---- struct wave_error: the caller's error detail --------------------- */

void wave_error_clear(struct wave_error *err)
{
	if (err)
		memset(err, 0, sizeof(*err));
}

int wave_error_vset(struct wave_error *err, int code, const char *source, int line, int column,
		    const char *fmt, va_list ap)
{
	if (!err)
		return code;
	memset(err, 0, sizeof(*err));
	err->code = code;
	err->line = line;
	err->column = column;
	/* Truncation is fine here: the text is for humans, the code for code. */
	snprintf(err->source, sizeof(err->source), "%s", source ? source : "");
	vsnprintf(err->text, sizeof(err->text), fmt, ap);
	return code;
}

int wave_error_set(struct wave_error *err, int code, const char *source, int line, int column,
		   const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	code = wave_error_vset(err, code, source, line, column, fmt, ap);
	va_end(ap);
	return code;
}

WAVE_API int wave_error_format(const struct wave_error *err, char *buf, size_t size)
{
	if (!err || !buf || size == 0)
		return -EINVAL;
	if (err->source[0] == '\0')
		return snprintf(buf, size, "%s", err->text);
	if (err->line <= 0)
		return snprintf(buf, size, "%s: %s", err->source, err->text);
	return snprintf(buf, size, "%s:%d:%d: %s", err->source, err->line, err->column, err->text);
}

int wave_struct_copy(void *dst, size_t dst_size, const void *src, size_t src_size,
		     size_t min_size, const char *what)
{
	if (src_size < min_size || src_size > dst_size) {
		wave_warn("%s: size %zu not supported (this libwave takes %zu to %zu bytes)", what,
			  src_size, min_size, dst_size);
		return -EINVAL;
	}
	memcpy(dst, src, src_size);
	return 0;
}
