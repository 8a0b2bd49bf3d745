/* SPDX-License-Identifier: MIT */
/* Internal interface of the configuration code (lib/core/config*.c), shared
 * with the agent runtime (lib/agent/). */
#ifndef WAVE_CORE_CONFIG_IMPL_H
#define WAVE_CORE_CONFIG_IMPL_H

#include <stdarg.h>
#include <stddef.h>

#include <jansson.h>

#include <wave/config.h>
#include <wave/error.h>

#include "core.h"

/* Plugin parameters: a JSON object and the label used in warnings. */
struct wave_params {
	json_t *obj;
	char *where;
};

/* Configuration memory comes from jansson's allocator, so that a test which
 * replaces it (json_set_alloc_funcs) reaches every allocation the parser
 * makes, not only jansson's own (config_params.c). */
void *wave_cfg_malloc(size_t size);
void *wave_cfg_calloc(size_t n, size_t size);
void wave_cfg_free(void *p);
char *wave_cfg_strdup(const char *s);

/* New parameters holding a reference to @obj (a JSON object); NULL when out
 * of memory. */
struct wave_params *wave_params_new(json_t *obj, const char *where);

/* What a key's value is, for the parser. */
enum wave_cfg_kind {
	CFG_UINT,   /* an integer in [min, max] */
	CFG_SLOTS,  /* a power of two in [min, max] */
	CFG_STRING, /* min..max bytes */
	CFG_ARRAY,  /* min..max entries, each in [item_min, item_max] (integers)
		     * or of item_min..item_max bytes (strings) */
	CFG_OBJECT, /* a section: its keys are those whose section is this name */
	CFG_ANY,    /* anything (a plugin's parameters) */
};

/*
 * One key of the configuration file (config_keys.c). @section is "" at the
 * top level, the name of an object ("heartbeat"), or "domains.<d>" for the
 * keys of every domain. @offset and @size place a number's value in struct
 * wave_config (struct wave_config_domain for "domains.<d>"), which the
 * parser fills from the file or from @def; @size 0 means the parser stores
 * it by hand. @type, @unit, @def_text and @doc are for the manual.
 */
struct wave_cfg_key {
	const char *section;
	const char *name;
	enum wave_cfg_kind kind;
	const char *type;
	const char *unit;
	uint64_t min, max;
	uint64_t item_min, item_max;
	uint64_t def;
	size_t offset, size;
	const char *def_text;
	const char *doc;
};

/* The whole table, in the order of the manual and of error messages. */
const struct wave_cfg_key *wave_cfg_keys(size_t *n);
/* Key @name of @section; NULL if there is none. */
const struct wave_cfg_key *wave_cfg_key(const char *section, const char *name);
/* Sets every number of @cfg the table gives a default (domains aside). */
void wave_cfg_defaults(struct wave_config *cfg);

/* One step of a path into a JSON document: an object key, or (key NULL)
 * an array index. */
struct wave_json_seg {
	const char *key;
	size_t index;
};

/*
 * Where the value at @path (depth @depth) starts in @text, or where its key
 * starts when @at_key. @text must be valid JSON (jansson accepted it). When
 * the path is not found, the position of the deepest container reached.
 * Lines and columns are 1-based; columns count characters, not bytes.
 */
void wave_json_locate(const char *text, size_t len, const struct wave_json_seg *path,
		      size_t depth, int at_key, int *line, int *column);

/* The line and column (1-based, columns in characters) of byte @offset of
 * @text, which holds at least @offset bytes. */
void wave_text_locate(const char *text, size_t offset, int *line, int *column);

#endif /* WAVE_CORE_CONFIG_IMPL_H */
