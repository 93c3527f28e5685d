/*
 * xform_internal.h - the compiled form of a target input, shared by xform.c (compile),
 * xform_render.c (render) and xform_json.c (a span scanner over JSON text). Private to bus/.
 */
#ifndef SLUICE_BUS_XFORM_INTERNAL_H
#define SLUICE_BUS_XFORM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus/transform.h"

/* ---- JSON path subset: $, .name, .*, [N], [*] ---- */

enum xform_seg_kind { XFORM_SEG_KEY, XFORM_SEG_INDEX, XFORM_SEG_ANY };

struct xform_seg {
	enum xform_seg_kind kind;
	const char *key; /* into xform_path.text, for XFORM_SEG_KEY */
	size_t key_len;
	size_t index; /* for XFORM_SEG_INDEX */
};

struct xform_path {
	char *text; /* owned copy of the path as written */
	struct xform_seg *segs;
	size_t nsegs;
	bool wildcard; /* any XFORM_SEG_ANY: the result is a list */
};

/* ---- template ---- */

/* Where a placeholder stands, which decides how its value is written. */
enum xform_pos {
	XFORM_POS_VALUE,  /* bare JSON value in a JSON template: the value's JSON text */
	XFORM_POS_STRING, /* inside a "quoted string": string contents, JSON-escaped */
	XFORM_POS_TEXT,   /* outside quotes in a string template: plain text */
};

enum xform_src {
	XFORM_SRC_VAR,            /* an InputPathsMap variable */
	XFORM_SRC_RULE_ARN,       /* aws.events.rule-arn */
	XFORM_SRC_RULE_NAME,      /* aws.events.rule-name */
	XFORM_SRC_INGESTION_TIME, /* aws.events.event.ingestion-time */
	XFORM_SRC_EVENT,          /* aws.events.event: the envelope without detail */
	XFORM_SRC_EVENT_JSON,     /* aws.events.event.json: the whole event */
};

/* Literal template text [lit_off, lit_off + lit_len), then one placeholder. */
struct xform_piece {
	size_t lit_off, lit_len;
	enum xform_src src;
	enum xform_pos pos;
	size_t var; /* index into xform.vars for XFORM_SRC_VAR */
};

struct xform_var {
	char *name;
	struct xform_path path;
};

struct xform {
	enum xform_kind kind;
	/* XFORM_INPUT */
	char *input;
	size_t input_len;
	/* XFORM_INPUT_PATH */
	struct xform_path path;
	/* XFORM_TRANSFORMER */
	bool json_template;
	char *tmpl;
	size_t tmpl_len;
	struct xform_var *vars;
	size_t nvars;
	struct xform_piece *pieces;
	size_t npieces;
	size_t tail_off; /* literal text after the last placeholder */
};

/* Parses a path into p (owning a copy of the text). false: *why says what is wrong
 * (static text), or *why is NULL on out of memory. */
bool xform_path_parse(const char *s, size_t n, struct xform_path *p, const char **why);
void xform_path_clear(struct xform_path *p);

/* Length in UTF-16 code units, as AWS counts characters. */
size_t xform_char_len(const char *s, size_t n);

/* ---- JSON span scanner (xform_json.c) ---- */

/* A validation failure: byte offset and what was expected there. */
struct xform_jerr {
	size_t offset;
	const char *what;
};

#define XFORM_JSON_MAX_DEPTH 256

/* Skips whitespace. */
const char *xform_json_ws(const char *p, const char *e);
/* Validates one JSON value starting at p (after whitespace); returns its end, or NULL and
 * fills *je (offsets relative to base). */
const char *xform_json_value(const char *base, const char *p, const char *e, struct xform_jerr *je);
/* Validates that [p, e) is exactly one JSON value with optional surrounding whitespace. */
bool xform_json_valid(const char *p, const char *e, struct xform_jerr *je);
/* End of a valid string starting at p ('"'); for already validated text. */
const char *xform_json_string_end(const char *p, const char *e);
/* End of a valid value starting at p; for already validated text. */
const char *xform_json_skip(const char *p, const char *e);

/* Line and column (1-based) of a byte offset, for messages. */
void xform_line_col(const char *s, size_t off, unsigned *line, unsigned *col);

#endif
