/* SPDX-License-Identifier: MIT */
#include <string.h>

#include <wave/error.h>

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
