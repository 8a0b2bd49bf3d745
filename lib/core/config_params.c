/* SPDX-License-Identifier: MIT */
/* Plugin parameters, and the allocator the configuration code shares with
 * jansson. */
#include <errno.h>
#include <string.h>

#include "config_impl.h"
#include "params.h"

void *wave_cfg_malloc(size_t size)
{
	json_malloc_t m;
	json_free_t f;

	json_get_alloc_funcs(&m, &f);
	return m(size ? size : 1);
}

void *wave_cfg_calloc(size_t n, size_t size)
{
	void *p;

	if (size && n > SIZE_MAX / size)
		return NULL;
	p = wave_cfg_malloc(n * size);
	if (p)
		memset(p, 0, n * size);
	return p;
}

void wave_cfg_free(void *p)
{
	json_malloc_t m;
	json_free_t f;

	if (!p)
		return;
	json_get_alloc_funcs(&m, &f);
	f(p);
}

char *wave_cfg_strdup(const char *s)
{
	size_t len = strlen(s) + 1;
	char *d = wave_cfg_malloc(len);

	if (d)
		memcpy(d, s, len);
	return d;
}

struct wave_params *wave_params_new(json_t *obj, const char *where)
{
	struct wave_params *p = wave_cfg_calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->where = wave_cfg_strdup(where ? where : "params");
	if (!p->where) {
		wave_cfg_free(p);
		return NULL;
	}
	p->obj = json_incref(obj);
	return p;
}

WAVE_API void wave_params_free(struct wave_params *params)
{
	if (!params)
		return;
	json_decref(params->obj);
	wave_cfg_free(params->where);
	wave_cfg_free(params);
}

WAVE_API int wave_params_parse(const char *json, const char *where, struct wave_params **out,
			       struct wave_error *err)
{
	json_error_t jerr;
	struct wave_params *p;
	json_t *obj;

	wave_error_clear(err);
	if (!json || !out)
		return wave_error_set(err, -EINVAL, "<params>", 0, 0, "invalid argument");
	obj = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
	if (!obj) {
		/* No text at all: jansson could not allocate its lexer. */
		int code = json_error_code(&jerr) == json_error_out_of_memory || !jerr.text[0]
				   ? -ENOMEM
				   : -WAVE_ECONFIG;
		return wave_error_set(err, code, where ? where : "<params>", jerr.line,
				      jerr.column, "%s", jerr.text);
	}
	if (!json_is_object(obj)) {
		json_decref(obj);
		return wave_error_set(err, -WAVE_ECONFIG, where ? where : "<params>", 1, 1,
				      "expected an object");
	}
	p = wave_params_new(obj, where);
	json_decref(obj);
	if (!p)
		return wave_error_set(err, -ENOMEM, "<params>", 0, 0, "out of memory");
	*out = p;
	return 0;
}

/* ---- typed look-ups for the plugin runtime (params.h) ------------------ */

struct wave_params *wave_params_dup(const struct wave_params *p)
{
	struct wave_params *d;
	json_t *obj;

	/* A copy, not a reference: a plugin context lives on the agent's
	 * thread while the configuration it came from is freed on another
	 * (after a reload), and two threads dropping references to one
	 * jansson value race (json_decref() reads the count before its
	 * atomic decrement). */
	obj = p ? json_deep_copy(p->obj) : json_object();
	if (!obj)
		return NULL;
	d = wave_params_new(obj, p ? p->where : "params");
	json_decref(obj);
	return d;
}

struct param_value wave_params_get(const struct wave_params *p, const char *key)
{
	struct param_value v = { .kind = PARAM_ABSENT };
	const char *k;
	json_t *j;

	json_object_foreach (p->obj, k, j) {
		if (strcmp(k, key) != 0) {
			v.index++;
			continue;
		}
		if (json_is_integer(j)) {
			v.kind = PARAM_INT;
			v.i = (int64_t)json_integer_value(j);
		} else if (json_is_real(j)) {
			v.kind = PARAM_REAL;
			v.d = json_real_value(j);
		} else if (json_is_boolean(j)) {
			v.kind = PARAM_BOOL;
			v.b = json_is_true(j);
		} else if (json_is_string(j)) {
			v.kind = PARAM_STRING;
			v.s = json_string_value(j);
		} else {
			v.kind = PARAM_OTHER;
		}
		return v;
	}
	return v;
}

size_t wave_params_count(const struct wave_params *p)
{
	return json_object_size(p->obj);
}

const char *wave_params_key(const struct wave_params *p, size_t index)
{
	const char *k;
	json_t *j;

	json_object_foreach (p->obj, k, j)
		if (index-- == 0)
			return k;
	return NULL;
}

const char *wave_params_where(const struct wave_params *p)
{
	return p->where;
}
