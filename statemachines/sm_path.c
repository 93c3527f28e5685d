/*
 * sm_path.c - compiling and evaluating States Language paths (reference paths and the
 * JSONPath subset AWS accepts), and ResultPath placement. Filters live in sm_path_filter.c.
 *
 * Semantics follow Jayway JsonPath, which AWS uses: a definite path over a missing field
 * is an error; a multi-valued path (wildcard, slice, union, filter, "..") collects what
 * it finds, so over missing data it yields [].
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sl_alloc.h"
#include "statemachines/sm_path_int.h"

/* Deeper JSON than this is not walked by ".." (inputs are bounded at 256 KiB anyway). */
#define SM_DESCEND_MAX_DEPTH 512
#define SM_INDEX_MAX         (1L << 40)

struct sm_path {
	char *text;
	bool context, multi;
	size_t n;
	struct sm_pseg *segs;
};

/* ---- small helpers ---------------------------------------------------------------------- */

void
sm_sbuf_free(struct sm_sbuf *b)
{
	sl_free(b->s);
	b->s = NULL;
	b->len = b->cap = 0;
}

void
sm_sbuf_putn(struct sm_sbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = sl_realloc(b->s, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->s = p;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

void
sm_sbuf_puts(struct sm_sbuf *b, const char *s)
{
	sm_sbuf_putn(b, s, strlen(s));
}

void
sm_sbuf_putc(struct sm_sbuf *b, char c)
{
	sm_sbuf_putn(b, &c, 1);
}

bool
sm_utf8_valid(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		size_t len;
		uint32_t cp;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xE0) == 0xC0) {
			len = 2;
			cp = c & 0x1F;
		} else if ((c & 0xF0) == 0xE0) {
			len = 3;
			cp = c & 0x0F;
		} else if ((c & 0xF8) == 0xF0) {
			len = 4;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (i + len > n)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3F);
		}
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800)
		    || (len == 4 && cp < 0x10000) || cp > 0x10FFFF
		    || (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += len;
	}
	return true;
}

void
sm_fmt_real(double d, char *buf, size_t cap)
{
	if (!isfinite(d)) {
		snprintf(buf, cap, "null");
		return;
	}
	for (int p = 1; p <= 17; p++) {
		snprintf(buf, cap, "%.*g", p, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	if (!strpbrk(buf, ".eE") && strlen(buf) + 3 <= cap)
		strcat(buf, ".0");
}

static void
json_escape(const char *s, size_t n, struct sm_sbuf *b)
{
	sm_sbuf_putc(b, '"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		switch (c) {
		case '"': sm_sbuf_puts(b, "\\\""); break;
		case '\\': sm_sbuf_puts(b, "\\\\"); break;
		case '\n': sm_sbuf_puts(b, "\\n"); break;
		case '\r': sm_sbuf_puts(b, "\\r"); break;
		case '\t': sm_sbuf_puts(b, "\\t"); break;
		case '\b': sm_sbuf_puts(b, "\\b"); break;
		case '\f': sm_sbuf_puts(b, "\\f"); break;
		default:
			if (c < 0x20) {
				char u[8];
				snprintf(u, sizeof(u), "\\u%04x", c);
				sm_sbuf_puts(b, u);
			} else {
				sm_sbuf_putc(b, (char)c);
			}
		}
	}
	sm_sbuf_putc(b, '"');
}

void
sm_json_compact(const json_t *v, struct sm_sbuf *b)
{
	char num[64];
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		const char *k;
		json_t *x;
		bool first = true;
		sm_sbuf_putc(b, '{');
		json_object_foreach((json_t *)v, k, x)
		{
			if (!first)
				sm_sbuf_putc(b, ',');
			first = false;
			json_escape(k, strlen(k), b);
			sm_sbuf_putc(b, ':');
			sm_json_compact(x, b);
		}
		sm_sbuf_putc(b, '}');
		break;
	}
	case JSON_ARRAY:
		sm_sbuf_putc(b, '[');
		for (size_t i = 0; i < json_array_size(v); i++) {
			if (i)
				sm_sbuf_putc(b, ',');
			sm_json_compact(json_array_get(v, i), b);
		}
		sm_sbuf_putc(b, ']');
		break;
	case JSON_STRING: json_escape(json_string_value(v), json_string_length(v), b); break;
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		sm_sbuf_puts(b, num);
		break;
	case JSON_REAL:
		sm_fmt_real(json_real_value(v), num, sizeof(num));
		sm_sbuf_puts(b, num);
		break;
	case JSON_TRUE: sm_sbuf_puts(b, "true"); break;
	case JSON_FALSE: sm_sbuf_puts(b, "false"); break;
	case JSON_NULL: sm_sbuf_puts(b, "null"); break;
	}
}

void
sm_fault_json(const json_t *v, char *buf, size_t cap)
{
	struct sm_sbuf b = { 0 };
	if (!v) {
		snprintf(buf, cap, "null");
		return;
	}
	sm_json_compact(v, &b);
	if (b.oom || !b.s) {
		snprintf(buf, cap, "(unavailable)");
	} else if (b.len < cap) {
		memcpy(buf, b.s, b.len + 1);
	} else {
		memcpy(buf, b.s, cap - 4);
		memcpy(buf + cap - 4, "...", 4);
	}
	sm_sbuf_free(&b);
}

void
sm_fault_set(struct sm_fault *f, const char *error, const char *fmt, ...)
{
	if (!f)
		return;
	va_list ap;
	va_start(ap, fmt);
	f->error = error;
	vsnprintf(f->cause, sizeof(f->cause), fmt, ap);
	va_end(ap);
}

sl_err
sm_nodes_push(struct sm_nodes *l, json_t *v)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		json_t **p = sl_reallocarray(l->v, cap, sizeof(*p));
		if (!p)
			return SL_ERR_NOMEM;
		l->v = p;
		l->cap = cap;
	}
	l->v[l->n++] = v;
	return SL_OK;
}

void
sm_nodes_free(struct sm_nodes *l)
{
	sl_free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

/* ---- parser ----------------------------------------------------------------------------- */

sl_err
sm_parse_error(struct sm_pparse *pp, const char *what)
{
	return sl_error_set(pp->err, SL_ERR_INVALID_DEFINITION,
	                    "Invalid JSONPath '%s': %s at position %zu", pp->text, what, pp->pos);
}

static char
peek(const struct sm_pparse *pp)
{
	return pp->text[pp->pos];
}

static void
skip_ws(struct sm_pparse *pp)
{
	while (peek(pp) == ' ' || peek(pp) == '\t')
		pp->pos++;
}

static bool
is_name_stop(char c, bool in_filter)
{
	if (c == '\0' || c == '.' || c == '[')
		return true;
	if (in_filter)
		return strchr(" \t)=!<>&|,", c) != NULL;
	return false;
}

/* Characters refused in dot notation: they mean something in bracket notation or filters. */
static bool
is_bad_name_char(char c)
{
	return strchr("]'\"()?@,* \t\n\r", c) != NULL || (unsigned char)c < 0x20;
}

static sl_err
parse_long(struct sm_pparse *pp, long *out)
{
	const char *s = pp->text + pp->pos;
	char *end;
	if (!(isdigit((unsigned char)*s) || (*s == '-' && isdigit((unsigned char)s[1]))))
		return sm_parse_error(pp, "expected an integer");
	errno = 0;
	long v = strtol(s, &end, 10);
	/* bounded well inside long so slice arithmetic cannot overflow */
	if (errno == ERANGE || v > SM_INDEX_MAX || v < -SM_INDEX_MAX)
		return sm_parse_error(pp, "integer out of range");
	pp->pos += (size_t)(end - s);
	*out = v;
	return SL_OK;
}

/* A quoted name in brackets: the quote and "\\" can be escaped; any other backslash stays
 * as written (AWS reads $['Test\"'] as the key Test\"). */
static sl_err
parse_quoted(struct sm_pparse *pp, char **out)
{
	char q = peek(pp);
	pp->pos++;
	size_t start = pp->pos;
	struct sm_sbuf b = { 0 };
	for (;;) {
		char c = peek(pp);
		if (c == '\0') {
			sm_sbuf_free(&b);
			pp->pos = start - 1;
			return sm_parse_error(pp, "unterminated quoted name");
		}
		if (c == q)
			break;
		if (c == '\\' && (pp->text[pp->pos + 1] == q || pp->text[pp->pos + 1] == '\\')) {
			sm_sbuf_putc(&b, pp->text[pp->pos + 1]);
			pp->pos += 2;
			continue;
		}
		sm_sbuf_putc(&b, c);
		pp->pos++;
	}
	pp->pos++;
	if (b.oom) {
		sm_sbuf_free(&b);
		return SL_ERR_NOMEM;
	}
	*out = b.s ? b.s : sl_strdup("");
	if (!*out)
		return SL_ERR_NOMEM;
	return SL_OK;
}

/* After "[start" (or "["), at ':': reads ":end" and ":step", each optional. */
static sl_err
parse_slice_rest(struct sm_pparse *pp, struct sm_pseg *seg)
{
	sl_err rc;
	for (int part = 1; part <= 2 && peek(pp) == ':'; part++) {
		pp->pos++;
		skip_ws(pp);
		if (peek(pp) == '-' || isdigit((unsigned char)peek(pp))) {
			if ((rc = parse_long(pp, &seg->slice[part])))
				return rc;
			seg->has[part] = true;
		}
		skip_ws(pp);
	}
	if (seg->has[2] && seg->slice[2] == 0)
		return sm_parse_error(pp, "slice step cannot be zero");
	return SL_OK;
}

static sl_err
parse_bracket(struct sm_pparse *pp, struct sm_pseg *seg)
{
	sl_err rc;
	pp->pos++; /* '[' */
	skip_ws(pp);
	char c = peek(pp);
	if (c == '*') {
		pp->pos++;
		seg->kind = SM_SEG_WILDCARD;
	} else if (c == '?') {
		pp->pos++;
		seg->kind = SM_SEG_FILTER;
		if ((rc = sm_filter_parse(pp, &seg->filter)))
			return rc;
	} else if (c == '\'' || c == '"' || c == '-' || c == ':' || isdigit((unsigned char)c)) {
		bool quoted = (c == '\'' || c == '"');
		size_t cap = 0;
		for (;;) {
			struct sm_union_item it = { 0 };
			skip_ws(pp);
			if (quoted) {
				if (peek(pp) != '\'' && peek(pp) != '"')
					return sm_parse_error(pp, "expected a quoted name");
				if ((rc = parse_quoted(pp, &it.name)))
					return rc;
			} else if (seg->n_items == 0) {
				/* an index, or the start of a slice */
				bool have = false;
				if (peek(pp) != ':') {
					if ((rc = parse_long(pp, &it.index)))
						return rc;
					have = true;
				}
				skip_ws(pp);
				if (peek(pp) == ':') {
					seg->kind = SM_SEG_SLICE;
					seg->slice[0] = it.index;
					seg->has[0] = have;
					if ((rc = parse_slice_rest(pp, seg)))
						return rc;
					goto close;
				}
			} else {
				if ((rc = parse_long(pp, &it.index)))
					return rc;
			}
			if (seg->n_items == cap) {
				cap = cap ? cap * 2 : 4;
				struct sm_union_item *p
				        = sl_reallocarray(seg->items, cap, sizeof(*p));
				if (!p) {
					sl_free(it.name);
					return SL_ERR_NOMEM;
				}
				seg->items = p;
			}
			seg->items[seg->n_items++] = it;
			skip_ws(pp);
			if (peek(pp) != ',')
				break;
			pp->pos++;
		}
		if (seg->n_items == 1) {
			struct sm_union_item it = seg->items[0];
			sl_free(seg->items);
			seg->items = NULL;
			seg->n_items = 0;
			if (it.name) {
				seg->kind = SM_SEG_NAME;
				seg->name = it.name;
			} else {
				seg->kind = SM_SEG_INDEX;
				seg->index = it.index;
			}
		} else {
			seg->kind = SM_SEG_UNION;
		}
	} else {
		return sm_parse_error(pp, "expected '*', '?', a quoted name or an index after '['");
	}
close:
	skip_ws(pp);
	if (peek(pp) != ']')
		return sm_parse_error(pp, "expected ']'");
	pp->pos++;
	return SL_OK;
}

static sl_err
parse_dot_name(struct sm_pparse *pp, struct sm_pseg *seg)
{
	size_t start = pp->pos;
	if (peek(pp) == '*') {
		pp->pos++;
		seg->kind = SM_SEG_WILDCARD;
		return SL_OK;
	}
	while (!is_name_stop(peek(pp), pp->in_filter)) {
		if (is_bad_name_char(peek(pp)))
			return sm_parse_error(pp,
			                      "unexpected character in a field name (use ['...'])");
		pp->pos++;
	}
	if (pp->pos == start)
		return sm_parse_error(pp, "expected a field name");
	seg->kind = SM_SEG_NAME;
	seg->name = sl_strndup(pp->text + start, pp->pos - start);
	return seg->name ? SL_OK : SL_ERR_NOMEM;
}

void
sm_segs_free(struct sm_pseg *segs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		sl_free(segs[i].name);
		for (size_t j = 0; j < segs[i].n_items; j++)
			sl_free(segs[i].items[j].name);
		sl_free(segs[i].items);
		sm_filter_free(segs[i].filter);
	}
	sl_free(segs);
}

sl_err
sm_parse_segments(struct sm_pparse *pp, struct sm_pseg **segs_out, size_t *n_out, bool *multi)
{
	struct sm_pseg *segs = NULL;
	size_t n = 0, cap = 0;
	sl_err rc = SL_OK;
	*multi = false;
	for (;;) {
		char c = peek(pp);
		if (c != '.' && c != '[')
			break;
		if (n == cap) {
			cap = cap ? cap * 2 : 4;
			struct sm_pseg *p = sl_reallocarray(segs, cap, sizeof(*p));
			if (!p) {
				rc = SL_ERR_NOMEM;
				goto fail;
			}
			segs = p;
		}
		struct sm_pseg *seg = &segs[n++];
		memset(seg, 0, sizeof(*seg));
		size_t seg_start = pp->pos;
		if (c == '.') {
			pp->pos++;
			if (peek(pp) == '.') {
				pp->pos++;
				seg->descend = true;
				if (peek(pp) == '[')
					rc = parse_bracket(pp, seg);
				else
					rc = parse_dot_name(pp, seg);
			} else {
				rc = parse_dot_name(pp, seg);
			}
		} else {
			rc = parse_bracket(pp, seg);
		}
		if (rc)
			goto fail;
		bool seg_multi = seg->descend || seg->kind == SM_SEG_WILDCARD
		        || seg->kind == SM_SEG_SLICE || seg->kind == SM_SEG_UNION
		        || seg->kind == SM_SEG_FILTER;
		if (seg_multi && pp->reference) {
			pp->pos = seg_start;
			rc = sm_parse_error(pp,
			                    "a reference path cannot use wildcards, slices, "
			                    "unions, filters or '..'");
			goto fail;
		}
		if (seg->kind == SM_SEG_INDEX && seg->index < 0 && pp->reference) {
			pp->pos = seg_start;
			rc = sm_parse_error(pp, "a reference path cannot use a negative index");
			goto fail;
		}
		*multi = *multi || seg_multi;
	}
	*segs_out = segs;
	*n_out = n;
	return SL_OK;
fail:
	sm_segs_free(segs, n);
	return rc;
}

sl_err
sm_path_compile(const char *text, enum sm_path_kind kind, struct sm_path **out,
                struct sl_error *err)
{
	if (!text)
		return sl_error_set(err, SL_ERR_INVALID_DEFINITION, "a path must be a string");
	struct sm_pparse pp
	        = { .text = text, .err = err, .reference = (kind == SM_PATH_REFERENCE) };
	if (!sm_utf8_valid(text, strlen(text)))
		return sm_parse_error(&pp, "text is not valid UTF-8");
	if (text[0] != '$')
		return sm_parse_error(&pp, "a path must start with '$'");
	struct sm_path *p = SL_NEW(struct sm_path);
	if (!p)
		return SL_ERR_NOMEM;
	sl_err rc;
	p->text = sl_strdup(text);
	if (!p->text) {
		rc = SL_ERR_NOMEM;
		goto fail;
	}
	pp.pos = 1;
	if (text[1] == '$') {
		p->context = true;
		pp.pos = 2;
	}
	if ((rc = sm_parse_segments(&pp, &p->segs, &p->n, &p->multi)))
		goto fail;
	if (text[pp.pos] != '\0') {
		rc = sm_parse_error(&pp, "expected '.' or '['");
		goto fail;
	}
	*out = p;
	return SL_OK;
fail:
	sm_path_free(p);
	return rc;
}

void
sm_path_free(struct sm_path *p)
{
	if (!p)
		return;
	sm_segs_free(p->segs, p->n);
	sl_free(p->text);
	sl_free(p);
}

const char *
sm_path_text(const struct sm_path *p)
{
	return p->text;
}

bool
sm_path_is_context(const struct sm_path *p)
{
	return p->context;
}

bool
sm_path_is_root(const struct sm_path *p)
{
	return p->n == 0;
}

bool
sm_path_is_multi(const struct sm_path *p)
{
	return p->multi;
}

/* ---- evaluation ------------------------------------------------------------------------- */

static sl_err
collect_descendants(json_t *v, struct sm_nodes *out, int depth)
{
	sl_err rc;
	if ((rc = sm_nodes_push(out, v)))
		return rc;
	if (depth >= SM_DESCEND_MAX_DEPTH)
		return SL_OK;
	if (json_is_object(v)) {
		const char *k;
		json_t *x;
		json_object_foreach(v, k, x)
		{
			if ((rc = collect_descendants(x, out, depth + 1)))
				return rc;
		}
	} else if (json_is_array(v)) {
		for (size_t i = 0; i < json_array_size(v); i++)
			if ((rc = collect_descendants(json_array_get(v, i), out, depth + 1)))
				return rc;
	}
	return SL_OK;
}

static json_t *
array_at(json_t *a, long idx)
{
	long n = (long)json_array_size(a);
	if (idx < 0)
		idx += n;
	if (idx < 0 || idx >= n)
		return NULL;
	return json_array_get(a, (size_t)idx);
}

static sl_err
apply_slice(const struct sm_pseg *seg, json_t *a, struct sm_nodes *out)
{
	long n = (long)json_array_size(a);
	long step = seg->has[2] ? seg->slice[2] : 1;
	long start, end;
	sl_err rc;
	/* Python's rules: negative bounds count from the end, then clamp. */
	if (step > 0) {
		start = seg->has[0] ? seg->slice[0] : 0;
		end = seg->has[1] ? seg->slice[1] : n;
		if (start < 0)
			start = start + n < 0 ? 0 : start + n;
		if (end < 0)
			end = end + n < 0 ? 0 : end + n;
		if (start > n)
			start = n;
		if (end > n)
			end = n;
		for (long i = start; i < end; i += step)
			if ((rc = sm_nodes_push(out, json_array_get(a, (size_t)i))))
				return rc;
	} else {
		start = seg->has[0] ? seg->slice[0] : n - 1;
		end = seg->has[1] ? seg->slice[1] : -n - 1;
		if (start < 0)
			start += n;
		if (start >= n)
			start = n - 1;
		if (end < 0)
			end = end + n < -1 ? -1 : end + n;
		for (long i = start; i > end && i >= 0; i += step)
			if ((rc = sm_nodes_push(out, json_array_get(a, (size_t)i))))
				return rc;
	}
	return SL_OK;
}

/* Applies one selector to one node (no descent). */
static sl_err
apply_one(const struct sm_pseg *seg, json_t *root, json_t *v, struct sm_nodes *out, bool *hit)
{
	sl_err rc = SL_OK;
	json_t *x;
	*hit = false;
	switch (seg->kind) {
	case SM_SEG_NAME:
		if (json_is_object(v) && (x = json_object_get(v, seg->name))) {
			*hit = true;
			rc = sm_nodes_push(out, x);
		}
		break;
	case SM_SEG_INDEX:
		if (json_is_array(v) && (x = array_at(v, seg->index))) {
			*hit = true;
			rc = sm_nodes_push(out, x);
		}
		break;
	case SM_SEG_WILDCARD:
		if (json_is_object(v)) {
			const char *k;
			json_object_foreach(v, k, x)
			{
				if ((rc = sm_nodes_push(out, x)))
					return rc;
			}
		} else if (json_is_array(v)) {
			for (size_t i = 0; i < json_array_size(v); i++)
				if ((rc = sm_nodes_push(out, json_array_get(v, i))))
					return rc;
		}
		break;
	case SM_SEG_SLICE:
		if (json_is_array(v))
			rc = apply_slice(seg, v, out);
		break;
	case SM_SEG_UNION:
		for (size_t i = 0; i < seg->n_items && !rc; i++) {
			const struct sm_union_item *it = &seg->items[i];
			if (it->name && json_is_object(v) && (x = json_object_get(v, it->name)))
				rc = sm_nodes_push(out, x);
			else if (!it->name && json_is_array(v) && (x = array_at(v, it->index)))
				rc = sm_nodes_push(out, x);
		}
		break;
	case SM_SEG_FILTER: {
		bool m;
		/* Jayway: over an array test each element, over an object test the object. */
		if (json_is_array(v)) {
			for (size_t i = 0; i < json_array_size(v); i++) {
				x = json_array_get(v, i);
				if ((rc = sm_filter_match(seg->filter, root, x, &m)))
					return rc;
				if (m && (rc = sm_nodes_push(out, x)))
					return rc;
			}
		} else if (json_is_object(v)) {
			if ((rc = sm_filter_match(seg->filter, root, v, &m)))
				return rc;
			if (m)
				rc = sm_nodes_push(out, v);
		}
		break;
	}
	}
	return rc;
}

sl_err
sm_segs_eval(const struct sm_pseg *segs, size_t n, json_t *root, json_t *start,
             struct sm_nodes *out, bool *missing, size_t *miss_at)
{
	struct sm_nodes cur = { 0 }, next = { 0 }, desc = { 0 };
	sl_err rc;
	*missing = false;
	if ((rc = sm_nodes_push(&cur, start)))
		goto done;
	for (size_t i = 0; i < n; i++) {
		const struct sm_pseg *seg = &segs[i];
		next.n = 0;
		for (size_t j = 0; j < cur.n; j++) {
			bool hit;
			if (seg->descend) {
				desc.n = 0;
				if ((rc = collect_descendants(cur.v[j], &desc, 0)))
					goto done;
				for (size_t k = 0; k < desc.n; k++)
					if ((rc = apply_one(seg, root, desc.v[k], &next, &hit)))
						goto done;
			} else if ((rc = apply_one(seg, root, cur.v[j], &next, &hit))) {
				goto done;
			}
		}
		if (next.n == 0 && (seg->kind == SM_SEG_NAME || seg->kind == SM_SEG_INDEX)
		    && !seg->descend && !*missing) {
			*missing = true;
			if (miss_at)
				*miss_at = i;
		}
		struct sm_nodes t = cur;
		cur = next;
		next = t;
	}
	*out = cur;
	cur.v = NULL;
done:
	sm_nodes_free(&cur);
	sm_nodes_free(&next);
	sm_nodes_free(&desc);
	return rc;
}

static sl_err
path_get(const struct sm_path *p, json_t *input, json_t *context, json_t **out, size_t *miss_at)
{
	json_t *start = p->context ? context : input;
	struct sm_nodes res = { 0 };
	bool missing;
	sl_err rc;
	*miss_at = 0;
	if (!start) {
		if (!p->multi)
			return SL_ERR_NOT_FOUND;
		*out = json_array();
		return *out ? SL_OK : SL_ERR_NOMEM;
	}
	if ((rc = sm_segs_eval(p->segs, p->n, start, start, &res, &missing, miss_at)))
		return rc;
	if (!p->multi) {
		if (res.n != 1) {
			sm_nodes_free(&res);
			return SL_ERR_NOT_FOUND;
		}
		*out = json_incref(res.v[0]);
		sm_nodes_free(&res);
		return SL_OK;
	}
	json_t *arr = json_array();
	if (!arr) {
		sm_nodes_free(&res);
		return SL_ERR_NOMEM;
	}
	for (size_t i = 0; i < res.n; i++) {
		if (json_array_append(arr, res.v[i])) {
			json_decref(arr);
			sm_nodes_free(&res);
			return SL_ERR_NOMEM;
		}
	}
	sm_nodes_free(&res);
	*out = arr;
	return SL_OK;
}

sl_err
sm_path_get(const struct sm_path *p, json_t *input, json_t *context, json_t **out)
{
	size_t miss_at;
	return path_get(p, input, context, out, &miss_at);
}

/* "$['a']['b'][0]" for the first n segments of a definite path, as Jayway prints it. */
static void
render_prefix(const struct sm_path *p, size_t n, struct sm_sbuf *b)
{
	sm_sbuf_puts(b, p->context ? "$$" : "$");
	for (size_t i = 0; i < n && i < p->n; i++) {
		char num[32];
		if (p->segs[i].kind == SM_SEG_NAME) {
			sm_sbuf_puts(b, "['");
			sm_sbuf_puts(b, p->segs[i].name);
			sm_sbuf_puts(b, "']");
		} else if (p->segs[i].kind == SM_SEG_INDEX) {
			snprintf(num, sizeof(num), "[%ld]", p->segs[i].index);
			sm_sbuf_puts(b, num);
		}
	}
}

sl_err
sm_path_get_fault(const struct sm_path *p, json_t *input, json_t *context, json_t **out,
                  struct sm_fault *fault)
{
	size_t miss_at;
	sl_err rc = path_get(p, input, context, out, &miss_at);
	if (rc == SL_ERR_NOT_FOUND) {
		struct sm_sbuf b = { 0 };
		render_prefix(p, miss_at + 1, &b);
		sm_fault_set(fault, "States.Runtime",
		             "Invalid path '%s' : Missing property in path %s", p->text,
		             b.oom || !b.s ? "$" : b.s);
		sm_sbuf_free(&b);
	} else if (rc == SL_ERR_NOMEM) {
		sm_fault_set(fault, "States.Runtime", "out of memory");
	}
	return rc;
}

/* ---- ResultPath ------------------------------------------------------------------------- */

static sl_err
set_fail(const struct sm_path *p, json_t *root, struct sm_fault *fault)
{
	char in[700];
	sm_fault_json(root, in, sizeof(in));
	sm_fault_set(fault, "States.ResultPathMatchFailure",
	             "Unable to apply ResultPath '%s' to input '%s'", p->text, in);
	return SL_ERR_INVALID_ARG;
}

sl_err
sm_path_set(const struct sm_path *p, json_t *root, json_t *value, json_t **out,
            struct sm_fault *fault)
{
	if (p->multi || p->context) {
		sm_fault_set(fault, "States.ResultPathMatchFailure",
		             "ResultPath '%s' must be a reference path into the input", p->text);
		return SL_ERR_INVALID_ARG;
	}
	json_t *val = value ? json_deep_copy(value) : json_null();
	if (!val)
		goto nomem;
	if (p->n == 0) {
		*out = val;
		return SL_OK;
	}
	if (!root || !(json_is_object(root) || json_is_array(root))) {
		json_decref(val);
		return set_fail(p, root, fault);
	}
	json_t *doc = json_deep_copy(root);
	if (!doc) {
		json_decref(val);
		goto nomem;
	}
	json_t *cur = doc;
	for (size_t i = 0; i < p->n; i++) {
		const struct sm_pseg *seg = &p->segs[i];
		bool last = (i + 1 == p->n);
		if (seg->kind == SM_SEG_NAME) {
			if (!json_is_object(cur))
				goto mismatch;
			if (last) {
				if (json_object_set_new(cur, seg->name, val)) {
					json_decref(doc);
					goto nomem;
				}
				break;
			}
			json_t *x = json_object_get(cur, seg->name);
			if (!x) {
				x = json_object();
				if (!x || json_object_set_new(cur, seg->name, x)) {
					json_decref(val);
					json_decref(doc);
					goto nomem;
				}
			}
			cur = x;
		} else {
			/* arrays are not grown: only an existing element can be replaced */
			json_t *x = json_is_array(cur) && seg->index >= 0
			        ? array_at(cur, seg->index)
			        : NULL;
			if (!x)
				goto mismatch;
			if (last) {
				if (json_array_set_new(cur, (size_t)seg->index, val)) {
					json_decref(doc);
					goto nomem;
				}
				break;
			}
			cur = x;
		}
	}
	*out = doc;
	return SL_OK;
mismatch:
	json_decref(val);
	json_decref(doc);
	return set_fail(p, root, fault);
nomem:
	sm_fault_set(fault, "States.Runtime", "out of memory");
	return SL_ERR_NOMEM;
}
