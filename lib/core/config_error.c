/* SPDX-License-Identifier: MIT */
/* struct wave_error: filling and printing the caller's error detail. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config_impl.h"

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
