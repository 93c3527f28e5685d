/*
 * xform_json.c - a validating scanner over JSON text that finds values as byte spans, and the
 * JSON path subset of InputPath / InputPathsMap.
 *
 * Spans instead of a parsed tree because the target must receive the event's values as they
 * were written: a tree would re-print 0.1 as 0.10000000000000001 and refuse integers wider
 * than 64 bits, which EventBridge passes through.
 */
#include "bus/xform_internal.h"

#include <stddef.h>
#include <string.h>

#include "common/sl_alloc.h"

const char *
xform_json_ws(const char *p, const char *e)
{
	while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

static const char *
fail(const char *base, const char *at, struct xform_jerr *je, const char *what)
{
	if (je) {
		je->offset = (size_t)(at - base);
		je->what = what;
	}
	return NULL;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Length of the valid UTF-8 sequence at p, 0 if invalid (overlongs and surrogates too). */
static size_t
utf8_seq(const unsigned char *p, const unsigned char *e)
{
	unsigned char c = p[0];
	size_t n;
	unsigned cp;
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF) {
		n = 2;
		cp = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		cp = c & 0x0F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if ((size_t)(e - p) < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3F);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF))
	    || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return n;
}

static const char *
scan_string(const char *base, const char *p, const char *e, struct xform_jerr *je)
{
	p++; /* opening quote */
	while (p < e) {
		unsigned char c = (unsigned char)*p;
		if (c == '"')
			return p + 1;
		if (c < 0x20)
			return fail(base, p, je, "a control character escaped in a string");
		if (c == '\\') {
			if (p + 1 >= e)
				break;
			char x = p[1];
			if (x == 'u') {
				if (e - p < 6 || hexval(p[2]) < 0 || hexval(p[3]) < 0
				    || hexval(p[4]) < 0 || hexval(p[5]) < 0)
					return fail(base, p, je, "four hex digits after \\u");
				p += 6;
				continue;
			}
			if (!strchr("\"\\/bfnrt", x) || x == 0)
				return fail(base, p, je, "a valid escape after a backslash");
			p += 2;
			continue;
		}
		size_t n = utf8_seq((const unsigned char *)p, (const unsigned char *)e);
		if (n == 0)
			return fail(base, p, je, "valid UTF-8 text");
		p += n;
	}
	return fail(base, p, je, "a closing quote");
}

static const char *
scan_number(const char *base, const char *p, const char *e, struct xform_jerr *je)
{
	const char *s = p;
	if (p < e && *p == '-')
		p++;
	if (p < e && *p == '0') {
		p++;
	} else if (p < e && *p >= '1' && *p <= '9') {
		while (p < e && *p >= '0' && *p <= '9')
			p++;
	} else {
		return fail(base, s, je, "a JSON value");
	}
	if (p < e && *p == '.') {
		p++;
		if (p >= e || *p < '0' || *p > '9')
			return fail(base, p, je, "a digit after the decimal point");
		while (p < e && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < e && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < e && (*p == '+' || *p == '-'))
			p++;
		if (p >= e || *p < '0' || *p > '9')
			return fail(base, p, je, "a digit in the exponent");
		while (p < e && *p >= '0' && *p <= '9')
			p++;
	}
	return p;
}

static const char *
scan_value(const char *base, const char *p, const char *e, int depth, struct xform_jerr *je)
{
	if (p >= e)
		return fail(base, p, je, "a JSON value");
	switch (*p) {
	case '"': return scan_string(base, p, e, je);
	case 't':
		if (e - p >= 4 && memcmp(p, "true", 4) == 0)
			return p + 4;
		return fail(base, p, je, "a JSON value");
	case 'f':
		if (e - p >= 5 && memcmp(p, "false", 5) == 0)
			return p + 5;
		return fail(base, p, je, "a JSON value");
	case 'n':
		if (e - p >= 4 && memcmp(p, "null", 4) == 0)
			return p + 4;
		return fail(base, p, je, "a JSON value");
	case '{':
	case '[': {
		bool obj = *p == '{';
		char close = obj ? '}' : ']';
		if (depth >= XFORM_JSON_MAX_DEPTH)
			return fail(base, p, je, "at most 256 levels of nesting");
		p = xform_json_ws(p + 1, e);
		if (p < e && *p == close)
			return p + 1;
		for (;;) {
			if (obj) {
				if (p >= e || *p != '"')
					return fail(base, p, je, "a quoted member name");
				p = scan_string(base, p, e, je);
				if (!p)
					return NULL;
				p = xform_json_ws(p, e);
				if (p >= e || *p != ':')
					return fail(base, p, je, "':' after a member name");
				p = xform_json_ws(p + 1, e);
			}
			p = scan_value(base, p, e, depth + 1, je);
			if (!p)
				return NULL;
			p = xform_json_ws(p, e);
			if (p < e && *p == ',') {
				p = xform_json_ws(p + 1, e);
				continue;
			}
			if (p < e && *p == close)
				return p + 1;
			return fail(base, p, je, obj ? "',' or '}'" : "',' or ']'");
		}
	}
	default: return scan_number(base, p, e, je);
	}
}

const char *
xform_json_value(const char *base, const char *p, const char *e, struct xform_jerr *je)
{
	return scan_value(base, p, e, 0, je);
}

bool
xform_json_valid(const char *p, const char *e, struct xform_jerr *je)
{
	const char *v = xform_json_ws(p, e);
	const char *end = scan_value(p, v, e, 0, je);
	if (!end)
		return false;
	end = xform_json_ws(end, e);
	if (end != e) {
		fail(p, end, je, "the end of the text after one JSON value");
		return false;
	}
	return true;
}

const char *
xform_json_string_end(const char *p, const char *e)
{
	p++;
	for (;;) {
		const char *q = memchr(p, '"', (size_t)(e - p));
		if (!q)
			return e;
		/* the quote closes the string unless an odd run of backslashes escapes it */
		size_t bs = 0;
		while (q - bs > p && q[-1 - (ptrdiff_t)bs] == '\\')
			bs++;
		if (bs % 2 == 0)
			return q + 1;
		p = q + 1;
	}
}

/* The bytes xform_json_skip must look at inside a container; everything else is skipped in
 * a tight loop (this walk is most of the cost of rendering a large event). */
static const bool structural[256]
        = { ['"'] = true, ['{'] = true, ['['] = true, ['}'] = true, [']'] = true };

const char *
xform_json_skip(const char *p, const char *e)
{
	if (p >= e)
		return p;
	if (*p == '"')
		return xform_json_string_end(p, e);
	if (*p == '{' || *p == '[') {
		int depth = 0;
		while (p < e) {
			while (p < e && !structural[(unsigned char)*p])
				p++;
			if (p >= e)
				break;
			char c = *p;
			if (c == '"') {
				p = xform_json_string_end(p, e);
				continue;
			}
			if (c == '{' || c == '[')
				depth++;
			else if ((c == '}' || c == ']') && --depth == 0)
				return p + 1;
			p++;
		}
		return e;
	}
	while (p < e && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\t' && *p != '\n'
	       && *p != '\r')
		p++;
	return p;
}

void
xform_line_col(const char *s, size_t off, unsigned *line, unsigned *col)
{
	unsigned l = 1, c = 1;
	for (size_t i = 0; i < off; i++) {
		if (s[i] == '\n') {
			l++;
			c = 1;
		} else if (((unsigned char)s[i] & 0xC0) != 0x80) {
			c++;
		}
	}
	*line = l;
	*col = c;
}

size_t
xform_char_len(const char *s, size_t n)
{
	size_t units = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c & 0xC0) == 0x80)
			continue;
		units += c >= 0xF0 ? 2 : 1; /* astral characters are surrogate pairs */
	}
	return units;
}

/* ---- JSON path subset ---- */

static bool
name_char(unsigned char c)
{
	/* dot notation with dashes, underscores, alphanumerics and forward slashes (AWS's
	 * list), plus any other printable or non-ASCII byte that cannot be confused with syntax */
	return c > 0x20 && c != 0x7F && c != '.' && c != '[' && c != ']' && c != '"' && c != '\''
	        && c != '\\';
}

void
xform_path_clear(struct xform_path *p)
{
	sl_free(p->text);
	sl_free(p->segs);
	memset(p, 0, sizeof(*p));
}

bool
xform_path_parse(const char *s, size_t n, struct xform_path *p, const char **why)
{
	memset(p, 0, sizeof(*p));
	if (n == 0 || s[0] != '$') {
		*why = "a JSON path starts with '$'";
		return false;
	}
	/* every segment takes at least two bytes, so n / 2 bounds the count */
	size_t cap = n / 2 + 1;
	p->text = sl_strndup(s, n);
	p->segs = sl_calloc(cap, sizeof(*p->segs));
	if (!p->text || !p->segs) {
		xform_path_clear(p);
		*why = NULL;
		return false;
	}
	const char *t = p->text, *e = p->text + n;
	const char *q = t + 1;
	while (q < e) {
		struct xform_seg *sg = &p->segs[p->nsegs];
		if (*q == '.') {
			q++;
			if (q < e && *q == '*') {
				sg->kind = XFORM_SEG_ANY;
				p->wildcard = true;
				q++;
			} else {
				const char *k = q;
				while (q < e && name_char((unsigned char)*q))
					q++;
				if (q == k) {
					*why = "a member name after '.'";
					goto bad;
				}
				sg->kind = XFORM_SEG_KEY;
				sg->key = k;
				sg->key_len = (size_t)(q - k);
			}
		} else if (*q == '[') {
			q++;
			if (q < e && *q == '*') {
				sg->kind = XFORM_SEG_ANY;
				p->wildcard = true;
				q++;
			} else {
				size_t v = 0, digits = 0;
				while (q < e && *q >= '0' && *q <= '9' && digits < 10) {
					v = v * 10 + (size_t)(*q - '0');
					q++;
					digits++;
				}
				if (digits == 0 || digits == 10) {
					*why = "an array index of at most 9 digits or '*' inside [ "
					       "]";
					goto bad;
				}
				sg->kind = XFORM_SEG_INDEX;
				sg->index = v;
			}
			if (q >= e || *q != ']') {
				*why = "']' after an array index (bracket notation is only for "
				       "indexes)";
				goto bad;
			}
			q++;
		} else {
			*why = "'.' or '[' between path segments";
			goto bad;
		}
		p->nsegs++;
	}
	return true;
bad:
	xform_path_clear(p);
	return false;
}
