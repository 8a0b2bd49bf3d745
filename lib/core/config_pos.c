/* SPDX-License-Identifier: MIT */
/*
 * Positions of values in a JSON text.
 *
 * jansson reports positions for syntax errors only; a parsed json_t does not
 * remember where its values were. Rather than keep a position for every
 * value of every configuration (memory and work paid on success), we find
 * the one position we need when validation fails: walk the text again along
 * the path of the offending value, skipping everything else. jansson has
 * already accepted the text, so this walker can be small and trusting; it
 * still never reads past @len.
 */
#include <stdint.h>
#include <string.h>

#include "config_impl.h"

struct cursor {
	const char *p;
	const char *end;
	int line;
	int column;
};

/* Columns count characters: UTF-8 continuation bytes do not advance. */
static void advance(struct cursor *c)
{
	unsigned char ch = (unsigned char)*c->p++;

	if (ch == '\n') {
		c->line++;
		c->column = 1;
	} else if ((ch & 0xc0) != 0x80) {
		c->column++;
	}
}

static int peek(const struct cursor *c)
{
	return c->p < c->end ? (unsigned char)*c->p : -1;
}

static void skip_ws(struct cursor *c)
{
	while (c->p < c->end && strchr(" \t\r\n", *c->p))
		advance(c);
}

static void skip_string(struct cursor *c)
{
	advance(c); /* the opening quote */
	while (c->p < c->end && *c->p != '"') {
		if (*c->p == '\\' && c->p + 1 < c->end)
			advance(c);
		advance(c);
	}
	if (c->p < c->end)
		advance(c);
}

static void skip_value(struct cursor *c);

/* Skips an object or an array; its members are values or key: value. */
static void skip_container(struct cursor *c, char close)
{
	advance(c);
	while (c->p < c->end && *c->p != close) {
		if (strchr(",: \t\r\n", *c->p))
			advance(c);
		else
			skip_value(c);
	}
	if (c->p < c->end)
		advance(c);
}

static void skip_value(struct cursor *c)
{
	skip_ws(c);
	switch (peek(c)) {
	case '"':
		skip_string(c);
		break;
	case '{':
		skip_container(c, '}');
		break;
	case '[':
		skip_container(c, ']');
		break;
	default: /* number, true, false, null */
		while (c->p < c->end && !strchr(",]} \t\r\n", *c->p))
			advance(c);
	}
}

static unsigned hex4(const char *p)
{
	unsigned v = 0;

	for (int i = 0; i < 4; i++) {
		char ch = p[i];
		v = v * 16 + (unsigned)(ch <= '9' ? ch - '0' : (ch | 0x20) - 'a' + 10);
	}
	return v;
}

/* Encodes @cp as UTF-8 into @buf; returns the byte count. */
static size_t utf8(uint32_t cp, char *buf)
{
	if (cp < 0x80) {
		buf[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		buf[0] = (char)(0xc0 | (cp >> 6));
		buf[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		buf[0] = (char)(0xe0 | (cp >> 12));
		buf[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		buf[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	buf[0] = (char)(0xf0 | (cp >> 18));
	buf[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	buf[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	buf[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Decodes one escape at @p (just after the backslash) into @buf; returns
 * the bytes produced and sets *@used to the text consumed. */
static size_t unescape(const char *p, const char *end, char *buf, size_t *used)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char *hit;
	uint32_t cp;

	if ((hit = strchr(from, *p)) != NULL && *p) {
		buf[0] = to[hit - from];
		*used = 1;
		return 1;
	}
	/* \uXXXX, maybe a surrogate pair \uD8xx\uDCxx (jansson checked it). */
	cp = hex4(p + 1);
	*used = 5;
	if (cp >= 0xd800 && cp < 0xdc00 && p + 11 <= end) {
		cp = 0x10000 + ((cp - 0xd800) << 10) + (hex4(p + 7) - 0xdc00);
		*used = 11;
	}
	return utf8(cp, buf);
}

/* Compares the string at the cursor (its opening quote) with @key without
 * moving the cursor. */
static int string_equals(const struct cursor *c, const char *key)
{
	const char *p = c->p + 1;
	size_t klen = strlen(key), pos = 0;

	while (p < c->end && *p != '"') {
		char buf[4];
		size_t n = 1, used = 1;

		if (*p == '\\')
			n = unescape(p + 1, c->end, buf, &used), p += 1;
		else
			buf[0] = *p;
		if (pos + n > klen || memcmp(key + pos, buf, n) != 0)
			return 0;
		pos += n;
		p += used;
	}
	return pos == klen;
}

/* Moves into the object at the cursor to member @key: onto the key when
 * @at_key, else onto its value. Returns 0 when not found. */
static int enter_member(struct cursor *c, const char *key, int at_key)
{
	advance(c); /* '{' */
	for (;;) {
		skip_ws(c);
		if (peek(c) != '"')
			return 0;
		if (string_equals(c, key)) {
			if (!at_key) {
				skip_string(c);
				skip_ws(c);
				advance(c); /* ':' */
				skip_ws(c);
			}
			return 1;
		}
		skip_string(c);
		skip_ws(c);
		advance(c); /* ':' */
		skip_value(c);
		skip_ws(c);
		if (peek(c) != ',')
			return 0;
		advance(c);
	}
}

static int enter_element(struct cursor *c, size_t index)
{
	advance(c); /* '[' */
	for (size_t i = 0;; i++) {
		skip_ws(c);
		if (peek(c) == ']' || peek(c) < 0)
			return 0;
		if (i == index)
			return 1;
		skip_value(c);
		skip_ws(c);
		if (peek(c) != ',')
			return 0;
		advance(c);
	}
}

void wave_json_locate(const char *text, size_t len, const struct wave_json_seg *path,
		      size_t depth, int at_key, int *line, int *column)
{
	struct cursor c = { text, text + len, 1, 1 };

	*line = 1;
	*column = 1;
	skip_ws(&c);
	for (size_t i = 0; i < depth; i++) {
		struct cursor at = c;
		int last_key = at_key && i + 1 == depth;
		int found;

		if (path[i].key)
			found = peek(&c) == '{' && enter_member(&c, path[i].key, last_key);
		else
			found = peek(&c) == '[' && enter_element(&c, path[i].index);
		if (!found) {
			c = at; /* report the container we could not enter */
			break;
		}
	}
	*line = c.line;
	*column = c.column;
}

void wave_text_locate(const char *text, size_t offset, int *line, int *column)
{
	struct cursor c = { text, text + offset, 1, 1 };

	while (c.p < c.end)
		advance(&c);
	*line = c.line;
	*column = c.column;
}
