/* SPDX-License-Identifier: MIT */
/**
 * @file export.h
 * Symbol visibility for libwave's public API.
 *
 * libwave is built with -fvisibility=hidden; only declarations marked
 * WAVE_API are exported, and the linker version script (lib/libwave.map)
 * decides which exported names belong to which ABI node.
 */
#ifndef WAVE_EXPORT_H
#define WAVE_EXPORT_H

#if defined(WAVE_BUILDING_LIBRARY) && defined(__GNUC__)
#define WAVE_API __attribute__((visibility("default")))
#else
#define WAVE_API
#endif

#if defined(__GNUC__)
#define WAVE_NODISCARD __attribute__((warn_unused_result))
#else
#define WAVE_NODISCARD
#endif

#endif /* WAVE_EXPORT_H */
