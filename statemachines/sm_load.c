/*
 * sm_load.c - definition text -> jansson tree + source positions. JSON goes through
 * jansson (duplicate keys rejected), then a light second scan records where each value
 * starts, since jansson keeps no positions. YAML lives in sm_yaml.c.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/sl_alloc.h"
#include "statemachines/sm_load_int.h"

/* ---- position table: open addressing keyed by JSON pointer ------------------------------- */

struct pos_entry {
	char *pointer; /* NULL = empty slot */
	unsigned line, column, key_line, key_column;
};

struct sm_positions {
	char *filename;
	struct pos_entry *slots;
	size_t cap; /* power of two */
	size_t count;
};

static uint64_t
hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

struct sm_positions *
sm_positions_new(const char *filename)
{
	struct sm_positions *pos = SL_NEW(struct sm_positions);
	if (!pos)
		return NULL;
	if (filename && !(pos->filename = sl_strdup(filename))) {
		sl_free(pos);
		return NULL;
	}
	return pos;
}

static struct pos_entry *
slot_for(struct pos_entry *slots, size_t cap, const char *pointer)
{
	size_t i = (size_t)hash_str(pointer) & (cap - 1);
	while (slots[i].pointer && strcmp(slots[i].pointer, pointer) != 0)
		i = (i + 1) & (cap - 1);
	return &slots[i];
}

static sl_err
grow(struct sm_positions *pos)
{
	size_t ncap = pos->cap ? pos->cap * 2 : 64;
	struct pos_entry *n = sl_calloc(ncap, sizeof *n);
	if (!n)
		return SL_ERR_NOMEM;
	for (size_t i = 0; i < pos->cap; i++)
		if (pos->slots[i].pointer)
			*slot_for(n, ncap, pos->slots[i].pointer) = pos->slots[i];
	sl_free(pos->slots);
	pos->slots = n;
	pos->cap = ncap;
	return SL_OK;
}

sl_err
sm_positions_put(struct sm_positions *pos, const char *pointer, unsigned line, unsigned column,
                 unsigned key_line, unsigned key_column)
{
	if ((pos->count + 1) * 2 > pos->cap && grow(pos) != SL_OK)
		return SL_ERR_NOMEM;
	struct pos_entry *e = slot_for(pos->slots, pos->cap, pointer);
	if (!e->pointer) {
		if (!(e->pointer = sl_strdup(pointer)))
			return SL_ERR_NOMEM;
		pos->count++;
	}
	e->line = line;
	e->column = column;
	e->key_line = key_line;
	e->key_column = key_column;
	return SL_OK;
}

static const struct pos_entry *
lookup(const struct sm_positions *pos, const char *pointer)
{
	if (!pos || !pos->cap)
		return NULL;
	const struct pos_entry *e = slot_for(pos->slots, pos->cap, pointer);
	return e->pointer ? e : NULL;
}

bool
sm_positions_find(const struct sm_positions *pos, const char *pointer, unsigned *line,
                  unsigned *column)
{
	if (!pos || !pointer)
		return false;
	char *p = sl_strdup(pointer);
	if (!p)
		return false;
	/* A missing field has no position of its own: fall back to the object holding it. */
	for (;;) {
		const struct pos_entry *e = lookup(pos, p);
		if (e && e->line) {
			*line = e->line;
			*column = e->column;
			sl_free(p);
			return true;
		}
		char *slash = strrchr(p, '/');
		if (!slash)
			break;
		*slash = '\0';
	}
	sl_free(p);
	return false;
}

bool
sm_positions_find_key(const struct sm_positions *pos, const char *pointer, unsigned *line,
                      unsigned *column)
{
	const struct pos_entry *e = lookup(pos, pointer);
	if (e && e->key_line) {
		*line = e->key_line;
		*column = e->key_column;
		return true;
	}
	return sm_positions_find(pos, pointer, line, column);
}

const char *
sm_positions_filename(const struct sm_positions *pos)
{
	return pos ? pos->filename : NULL;
}

void
sm_positions_free(struct sm_positions *pos)
{
	if (!pos)
		return;
	for (size_t i = 0; i < pos->cap; i++)
		sl_free(pos->slots[i].pointer);
	sl_free(pos->slots);
	sl_free(pos->filename);
	sl_free(pos);
}

/* ---- pointers and locations -------------------------------------------------------------- */

char *
sm_pointer_append(const char *pointer, const char *token)
{
	size_t plen = strlen(pointer), extra = 0;
	for (const char *s = token; *s; s++)
		if (*s == '~' || *s == '/')
			extra++;
	char *out = sl_malloc(plen + 1 + strlen(token) + extra + 1);
	if (!out)
		return NULL;
	memcpy(out, pointer, plen);
	char *w = out + plen;
	*w++ = '/';
	for (const char *s = token; *s; s++) {
		if (*s == '~') {
			*w++ = '~';
			*w++ = '0';
		} else if (*s == '/') {
			*w++ = '~';
			*w++ = '1';
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
	return out;
}

char *
sm_pointer_append_index(const char *pointer, size_t index)
{
	return sl_asprintf("%s/%zu", pointer, index);
}

char *
sm_location_format(const char *filename, unsigned line, unsigned column, const char *pointer)
{
	if (line && filename)
		return sl_asprintf("%s:%u:%u", filename, line, column);
	if (line)
		return sl_asprintf("%u:%u", line, column);
	return sl_strdup(pointer && *pointer ? pointer : "/");
}

/* ---- JSON -------------------------------------------------------------------------------- */

/* Walks text jansson already accepted, so it only needs to track where values start. */
struct jscan {
	const char *s, *end;
	unsigned line, col;
	struct sm_positions *pos;
	unsigned depth;
};

static void
js_adv(struct jscan *j)
{
	if (*j->s == '\n') {
		j->line++;
		j->col = 1;
	} else if (((unsigned char)*j->s & 0xC0) != 0x80) {
		j->col++; /* columns count characters, not UTF-8 continuation bytes */
	}
	j->s++;
}

static void
js_ws(struct jscan *j)
{
	while (j->s < j->end && (*j->s == ' ' || *j->s == '\t' || *j->s == '\n' || *j->s == '\r'))
		js_adv(j);
}

static unsigned
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return (unsigned)(c - '0');
	if (c >= 'a' && c <= 'f')
		return (unsigned)(c - 'a' + 10);
	if (c >= 'A' && c <= 'F')
		return (unsigned)(c - 'A' + 10);
	return 0;
}

static unsigned
js_hex4(struct jscan *j)
{
	unsigned v = 0;
	for (int i = 0; i < 4 && j->s < j->end; i++) {
		v = v * 16 + hexval(*j->s);
		js_adv(j);
	}
	return v;
}

static size_t
put_utf8(char *w, unsigned cp)
{
	if (cp < 0x80) {
		w[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		w[0] = (char)(0xC0 | (cp >> 6));
		w[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		w[0] = (char)(0xE0 | (cp >> 12));
		w[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		w[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	w[0] = (char)(0xF0 | (cp >> 18));
	w[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	w[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	w[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* Decodes a string at j->s (on the opening quote) into a new buffer when want is set. */
static char *
js_string(struct jscan *j, bool want)
{
	const char *start = j->s;
	js_adv(j);
	char *out = want ? sl_malloc((size_t)(j->end - start) + 1) : NULL;
	if (want && !out)
		return NULL;
	size_t n = 0;
	while (j->s < j->end && *j->s != '"') {
		if (*j->s != '\\') {
			if (out)
				out[n++] = *j->s;
			js_adv(j);
			continue;
		}
		js_adv(j);
		if (j->s >= j->end)
			break;
		char c = *j->s;
		js_adv(j);
		unsigned cp;
		switch (c) {
		case 'b': cp = '\b'; break;
		case 'f': cp = '\f'; break;
		case 'n': cp = '\n'; break;
		case 'r': cp = '\r'; break;
		case 't': cp = '\t'; break;
		case 'u':
			cp = js_hex4(j);
			if (cp >= 0xD800 && cp < 0xDC00 && j->end - j->s >= 6 && j->s[0] == '\\'
			    && j->s[1] == 'u') {
				js_adv(j);
				js_adv(j);
				unsigned lo = js_hex4(j);
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
			}
			break;
		default: cp = (unsigned char)c; break;
		}
		if (out)
			n += put_utf8(out + n, cp);
	}
	if (j->s < j->end)
		js_adv(j); /* closing quote */
	if (out)
		out[n] = '\0';
	return want ? out : (char *)start;
}

static sl_err js_value(struct jscan *j, const char *pointer, unsigned kl, unsigned kc);

static sl_err
js_object(struct jscan *j, const char *pointer)
{
	js_adv(j);
	for (;;) {
		js_ws(j);
		if (j->s >= j->end || *j->s == '}')
			break;
		if (*j->s == ',') {
			js_adv(j);
			continue;
		}
		unsigned kl = j->line, kc = j->col;
		char *key = js_string(j, true);
		if (!key)
			return SL_ERR_NOMEM;
		js_ws(j);
		if (j->s < j->end && *j->s == ':')
			js_adv(j);
		char *child = sm_pointer_append(pointer, key);
		sl_free(key);
		if (!child)
			return SL_ERR_NOMEM;
		sl_err rc = js_value(j, child, kl, kc);
		sl_free(child);
		if (rc != SL_OK)
			return rc;
	}
	if (j->s < j->end)
		js_adv(j);
	return SL_OK;
}

static sl_err
js_array(struct jscan *j, const char *pointer)
{
	js_adv(j);
	size_t index = 0;
	for (;;) {
		js_ws(j);
		if (j->s >= j->end || *j->s == ']')
			break;
		if (*j->s == ',') {
			js_adv(j);
			continue;
		}
		char *child = sm_pointer_append_index(pointer, index++);
		if (!child)
			return SL_ERR_NOMEM;
		const char *before = j->s;
		sl_err rc = js_value(j, child, 0, 0);
		if (j->s == before && j->s < j->end)
			js_adv(j); /* never loop in place, whatever the text */
		sl_free(child);
		if (rc != SL_OK)
			return rc;
	}
	if (j->s < j->end)
		js_adv(j);
	return SL_OK;
}

static sl_err
js_value(struct jscan *j, const char *pointer, unsigned kl, unsigned kc)
{
	js_ws(j);
	if (j->s >= j->end)
		return SL_OK;
	if (sm_positions_put(j->pos, pointer, j->line, j->col, kl, kc) != SL_OK)
		return SL_ERR_NOMEM;
	if (++j->depth > 4096)
		return SL_ERR_LIMIT; /* jansson refuses far less, so unreachable in practice */
	sl_err rc = SL_OK;
	if (*j->s == '{')
		rc = js_object(j, pointer);
	else if (*j->s == '[')
		rc = js_array(j, pointer);
	else if (*j->s == '"')
		js_string(j, false);
	else
		while (j->s < j->end && (!*j->s || !strchr(",]} \t\r\n", *j->s)))
			js_adv(j);
	j->depth--;
	return rc;
}

static sl_err
load_json(const char *text, size_t len, const char *filename, json_t **out,
          struct sm_positions *pos, struct sm_problems *problems)
{
	json_error_t jerr;
	const char *nul = memchr(text, '\0', len);
	if (nul) {
		/* jansson stops at a NUL in some places and not others: refuse it up front */
		struct jscan j = { .s = text, .end = nul, .line = 1, .col = 1 };
		while (j.s < j.end)
			js_adv(&j);
		char *loc = sm_location_format(filename, j.line, j.col, "");
		if (!loc)
			return SL_ERR_NOMEM;
		sl_err rc = sm_problems_add(problems, loc, "",
		                            "INVALID_JSON_DESCRIPTION: NUL byte in the text");
		sl_free(loc);
		return rc == SL_OK ? SL_ERR_PARSE : rc;
	}
	json_t *tree = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!tree) {
		char *loc = sm_location_format(filename, jerr.line > 0 ? (unsigned)jerr.line : 0,
		                               jerr.column > 0 ? (unsigned)jerr.column : 1, "");
		if (!loc)
			return SL_ERR_NOMEM;
		sl_err rc = sm_problems_add(problems, loc, "", "INVALID_JSON_DESCRIPTION: %s",
		                            jerr.text);
		sl_free(loc);
		return rc == SL_OK ? SL_ERR_PARSE : rc;
	}
	if (pos) {
		struct jscan j = { .s = text, .end = text + len, .line = 1, .col = 1, .pos = pos };
		sl_err rc = js_value(&j, "", 0, 0);
		if (rc != SL_OK) {
			json_decref(tree);
			return rc;
		}
	}
	*out = tree;
	return SL_OK;
}

/* ---- entry points ------------------------------------------------------------------------ */

static enum sm_format
sniff(const char *text, size_t len)
{
	size_t i = 0;
	/* A UTF-8 byte order mark says nothing about the format. */
	if (len >= 3 && (unsigned char)text[0] == 0xEF && (unsigned char)text[1] == 0xBB
	    && (unsigned char)text[2] == 0xBF)
		i = 3;
	for (; i < len; i++) {
		char c = text[i];
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		return (c == '{' || c == '[') ? SM_FORMAT_JSON : SM_FORMAT_YAML;
	}
	return SM_FORMAT_YAML;
}

sl_err
sm_definition_load_ex(const char *text, size_t len, const char *filename,
                      const struct sm_load_options *opts_in, json_t **out_tree,
                      struct sm_positions **out_pos, struct sm_problems *problems)
{
	struct sm_load_options opts = { 0 };
	if (opts_in)
		opts = *opts_in;
	if (!opts.max_nodes)
		opts.max_nodes = SM_LOAD_DEFAULT_MAX_NODES;
	if (!opts.max_depth)
		opts.max_depth = SM_LOAD_DEFAULT_MAX_DEPTH;
	*out_tree = NULL;
	if (out_pos)
		*out_pos = NULL;
	if (len > SM_DEFINITION_MAX_BYTES) {
		char *loc = sm_location_format(filename, 0, 0, "");
		if (!loc)
			return SL_ERR_NOMEM;
		sl_err rc = sm_problems_add(problems, loc, "",
		                            "SCHEMA_VALIDATION_FAILED: Definition is %zu bytes, "
		                            "more than the limit of %d bytes",
		                            len, SM_DEFINITION_MAX_BYTES);
		sl_free(loc);
		return rc == SL_OK ? SL_ERR_TOO_LARGE : rc;
	}
	enum sm_format fmt = opts.format == SM_FORMAT_AUTO ? sniff(text, len) : opts.format;
	struct sm_positions *pos = sm_positions_new(filename);
	if (!pos)
		return SL_ERR_NOMEM;
	json_t *tree = NULL;
	sl_err rc;
	if (fmt == SM_FORMAT_JSON) {
		/* jansson refuses a byte order mark; RFC 8259 lets parsers ignore it */
		if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) {
			text += 3;
			len -= 3;
		}
		struct sm_problems json_problems = { 0 };
		rc = load_json(text, len, filename, &tree, pos, &json_problems);
		if (rc == SL_ERR_PARSE && opts.format == SM_FORMAT_AUTO) {
			/* flow-style YAML ("{StartAt: A, ...}") also starts with a brace */
			struct sm_problems yaml_problems = { 0 };
			sm_positions_free(pos);
			if (!(pos = sm_positions_new(filename))) {
				sm_problems_clear(&json_problems);
				return SL_ERR_NOMEM;
			}
			rc = sm_yaml_load(text, len, filename, &opts, &tree, pos, &yaml_problems);
			sm_problems_clear(&yaml_problems);
			if (rc != SL_OK && rc != SL_ERR_NOMEM)
				rc = SL_ERR_PARSE; /* the JSON diagnosis is the one to show */
		}
		if (rc != SL_OK && rc != SL_ERR_NOMEM) {
			for (size_t i = 0; i < json_problems.count; i++)
				if (sm_problems_add(problems, json_problems.items[i].location,
				                    json_problems.items[i].pointer, "%s",
				                    json_problems.items[i].message)
				    != SL_OK)
					rc = SL_ERR_NOMEM;
		}
		sm_problems_clear(&json_problems);
	} else {
		rc = sm_yaml_load(text, len, filename, &opts, &tree, pos, problems);
	}
	if (rc != SL_OK) {
		sm_positions_free(pos);
		return rc;
	}
	*out_tree = tree;
	if (out_pos)
		*out_pos = pos;
	else
		sm_positions_free(pos);
	return SL_OK;
}

sl_err
sm_definition_load(const char *text, size_t len, const char *filename, enum sm_format fmt,
                   json_t **out_tree, struct sm_positions **out_pos, struct sm_problems *problems)
{
	struct sm_load_options opts = { .format = fmt };
	return sm_definition_load_ex(text, len, filename, &opts, out_tree, out_pos, problems);
}

sl_err
sm_definition_compile_text(const char *text, size_t len, const char *filename, enum sm_format fmt,
                           struct sm_machine **out, struct sm_problems *problems)
{
	return sm_definition_compile_text_typed(text, len, filename, fmt, SM_EXECUTION_STANDARD,
	                                        out, problems);
}

sl_err
sm_definition_compile_text_typed(const char *text, size_t len, const char *filename,
                                 enum sm_format fmt, enum sm_execution_type type,
                                 struct sm_machine **out, struct sm_problems *problems)
{
	json_t *tree;
	struct sm_positions *pos;
	*out = NULL;
	sl_err rc = sm_definition_load(text, len, filename, fmt, &tree, &pos, problems);
	if (rc != SL_OK)
		return rc == SL_ERR_NOMEM ? rc : SL_ERR_INVALID_DEFINITION;
	rc = sm_machine_compile_typed(tree, pos, type, out, problems);
	json_decref(tree);
	sm_positions_free(pos);
	return rc;
}
