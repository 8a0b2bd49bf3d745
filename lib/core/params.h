/* SPDX-License-Identifier: MIT */
/*
 * Plugin parameters as the plugin runtime reads them (config_params.c):
 * typed look-ups by key, with no JSON type in sight, so that a plugin
 * context does not depend on the configuration's parser.
 */
#ifndef WAVE_CORE_PARAMS_H
#define WAVE_CORE_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <wave/config.h>

enum param_kind {
	PARAM_ABSENT,
	PARAM_INT,    /* an integer: @i */
	PARAM_REAL,   /* a number with a fraction or exponent: @d */
	PARAM_BOOL,   /* @b */
	PARAM_STRING, /* @s, valid as long as the parameters */
	PARAM_OTHER,  /* null, an array or an object */
};

struct param_value {
	enum param_kind kind;
	int64_t i;
	double d;
	bool b;
	const char *s;
	size_t index; /* the key's position in the object, in file order */
};

/* A copy of the parameters, sharing nothing with @p (NULL: an empty set);
 * free it with wave_params_free(). NULL when out of memory. */
struct wave_params *wave_params_dup(const struct wave_params *p);
/* The value of @key; kind PARAM_ABSENT when there is none. */
struct param_value wave_params_get(const struct wave_params *p, const char *key);
/* How many keys, and the key at @index (file order), for naming unread ones. */
size_t wave_params_count(const struct wave_params *p);
const char *wave_params_key(const struct wave_params *p, size_t index);
/* The label of the parameters in messages ("domains.sched.params"). */
const char *wave_params_where(const struct wave_params *p);

#endif /* WAVE_CORE_PARAMS_H */
