/* SPDX-License-Identifier: MIT */
#include <wave/version.h>

WAVE_API unsigned wave_version(void)
{
	return WAVE_VERSION_NUMBER;
}

WAVE_API const char *wave_version_string(void)
{
	return WAVE_VERSION_STRING;
}
