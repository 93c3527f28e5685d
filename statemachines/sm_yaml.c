/*
 * sm_yaml.c - YAML -> jansson through libyaml's document loader.
 *
 * Plain scalars are typed by the YAML 1.2 core schema, not 1.1: `yes`, `on`, `1_000` stay
 * strings and `010` is ten. Aliases point at shared nodes in the loaded document; they
 * are expanded into copies under a budget on the number of nodes produced, so a billion
 * laughs document fails fast instead of eating memory. A depth cap also stops alias
 * cycles.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "common/sl_alloc.h"
#include "statemachines/sm_load_int.h"

struct ybuild {
	yaml_document_t *doc;
	const struct sm_load_options *opts;
	const char *filename;
	struct sm_positions *pos;
	struct sm_problems *problems;
	size_t nodes;
	sl_err fatal; /* first hard error (NOMEM / LIMIT / PARSE) */
};

static sl_err yproblem(struct ybuild *b, const yaml_mark_t *m, const char *pointer, sl_err kind,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static sl_err
yproblem(struct ybuild *b, const yaml_mark_t *m, const char *pointer, sl_err kind, const char *fmt,
         ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	char *loc = sm_location_format(b->filename, m ? (unsigned)m->line + 1 : 0,
	                               m ? (unsigned)m->column + 1 : 0, pointer);
	if (!loc || sm_problems_add(b->problems, loc, pointer, "%s", msg) != SL_OK)
		kind = SL_ERR_NOMEM;
	sl_free(loc);
	if (b->fatal == SL_OK || kind == SL_ERR_NOMEM)
		b->fatal = kind;
	return kind;
}

/* ---- YAML 1.2 core schema ---------------------------------------------------------------- */

static bool
is_null_word(const char *s, size_t n)
{
	return n == 0 || (n == 1 && s[0] == '~')
	        || (n == 4
	            && (!memcmp(s, "null", 4) || !memcmp(s, "Null", 4) || !memcmp(s, "NULL", 4)));
}

static int
bool_word(const char *s, size_t n)
{
	if (n == 4 && (!memcmp(s, "true", 4) || !memcmp(s, "True", 4) || !memcmp(s, "TRUE", 4)))
		return 1;
	if (n == 5 && (!memcmp(s, "false", 5) || !memcmp(s, "False", 5) || !memcmp(s, "FALSE", 5)))
		return 0;
	return -1;
}

static bool
all_digits(const char *s, size_t n, int base)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool ok = base == 8  ? (c >= '0' && c <= '7')
		        : base == 16 ? ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')
		                        || (c >= 'A' && c <= 'F'))
		                     : (c >= '0' && c <= '9');
		if (!ok)
			return false;
	}
	return true;
}

enum ykind { Y_NOT, Y_INT, Y_FLOAT, Y_INF_NAN };

/* Matches the core schema's int and float forms; decimal ints may carry a sign. */
static enum ykind
number_form(const char *s, size_t n, int *base)
{
	*base = 10;
	if (n > 2 && s[0] == '0' && s[1] == 'o' && all_digits(s + 2, n - 2, 8)) {
		*base = 8;
		return Y_INT;
	}
	if (n > 2 && s[0] == '0' && s[1] == 'x' && all_digits(s + 2, n - 2, 16)) {
		*base = 16;
		return Y_INT;
	}
	size_t i = (n > 0 && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
	if (all_digits(s + i, n - i, 10))
		return Y_INT;
	const char *r = s + i;
	size_t m = n - i;
	if (m == 4 && (!memcmp(r, ".inf", 4) || !memcmp(r, ".Inf", 4) || !memcmp(r, ".INF", 4)))
		return Y_INF_NAN;
	if (n == 4 && (!memcmp(s, ".nan", 4) || !memcmp(s, ".NaN", 4) || !memcmp(s, ".NAN", 4)))
		return Y_INF_NAN;
	/* [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )? */
	size_t k = 0, digits = 0;
	while (k < m && r[k] >= '0' && r[k] <= '9')
		k++, digits++;
	if (k < m && r[k] == '.') {
		k++;
		size_t frac = 0;
		while (k < m && r[k] >= '0' && r[k] <= '9')
			k++, frac++;
		if (!digits && !frac)
			return Y_NOT;
		digits += frac;
	} else if (!digits) {
		return Y_NOT;
	}
	if (k < m && (r[k] == 'e' || r[k] == 'E')) {
		k++;
		if (k < m && (r[k] == '-' || r[k] == '+'))
			k++;
		size_t e = 0;
		while (k < m && r[k] >= '0' && r[k] <= '9')
			k++, e++;
		if (!e)
			return Y_NOT;
	}
	return k == m ? Y_FLOAT : Y_NOT;
}

/* Builds the JSON value of a plain scalar; *why is set when it cannot be represented. */
static json_t *
core_scalar(const char *s, size_t n, const char **why)
{
	*why = NULL;
	if (is_null_word(s, n))
		return json_null();
	int bw = bool_word(s, n);
	if (bw >= 0)
		return json_boolean(bw);
	int base;
	enum ykind k = number_form(s, n, &base);
	if (k == Y_NOT)
		return json_stringn(s, n);
	if (k == Y_INF_NAN) {
		*why = "infinity and NaN cannot be represented in JSON";
		return NULL;
	}
	char buf[128];
	if (n >= sizeof buf) {
		*why = "number is too long";
		return NULL;
	}
	memcpy(buf, s, n);
	buf[n] = '\0';
	errno = 0;
	char *end;
	if (k == Y_INT) {
		const char *digits = base == 10 ? buf : buf + 2;
		long long v = strtoll(digits, &end, base);
		if (errno == ERANGE || *end) {
			*why = "integer is out of range";
			return NULL;
		}
		return json_integer(v);
	}
	double d = strtod(buf, &end);
	if (errno == ERANGE && isinf(d)) {
		*why = "number is out of range";
		return NULL;
	}
	return json_real(d);
}

static bool
tag_is(const yaml_node_t *node, const char *tag)
{
	return node->tag && !strcmp((const char *)node->tag, tag);
}

/* Applies an explicit !!int/!!float/!!bool/!!null tag; NULL with *why when it does not fit. */
static json_t *
tagged_scalar(const yaml_node_t *node, const char *s, size_t n, const char **why)
{
	json_t *v = core_scalar(s, n, why);
	if (!v)
		return NULL;
	bool ok = tag_is(node, YAML_INT_TAG)   ? json_is_integer(v)
	        : tag_is(node, YAML_FLOAT_TAG) ? json_is_number(v)
	        : tag_is(node, YAML_BOOL_TAG)  ? json_is_boolean(v)
	                                       : json_is_null(v);
	if (!ok) {
		json_decref(v);
		*why = "value does not match its tag";
		return NULL;
	}
	if (tag_is(node, YAML_FLOAT_TAG) && json_is_integer(v)) {
		json_t *r = json_real((double)json_integer_value(v));
		json_decref(v);
		return r;
	}
	return v;
}

/* ---- tree building ----------------------------------------------------------------------- */

static json_t *build(struct ybuild *b, int index, const char *pointer, unsigned depth,
                     const yaml_mark_t *key_mark);

static json_t *
build_scalar(struct ybuild *b, yaml_node_t *node, const char *pointer)
{
	const char *s = (const char *)node->data.scalar.value;
	size_t n = node->data.scalar.length;
	const char *why = NULL;
	json_t *v;
	bool plain = node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	if (memchr(s, '\0', n)) {
		/* as JSON does (jansson refuses \u0000): names would compare short in C */
		yproblem(b, &node->start_mark, pointer, SL_ERR_PARSE,
		         "SCHEMA_VALIDATION_FAILED: string contains a NUL character");
		return NULL;
	}
	if (tag_is(node, YAML_STR_TAG)) {
		v = plain ? core_scalar(s, n, &why) : json_stringn(s, n);
	} else if (tag_is(node, YAML_INT_TAG) || tag_is(node, YAML_FLOAT_TAG)
	           || tag_is(node, YAML_BOOL_TAG) || tag_is(node, YAML_NULL_TAG)) {
		v = tagged_scalar(node, s, n, &why);
	} else {
		yproblem(b, &node->start_mark, pointer, SL_ERR_PARSE,
		         "SCHEMA_VALIDATION_FAILED: unsupported YAML tag '%s'",
		         node->tag ? (const char *)node->tag : "");
		return NULL;
	}
	if (!v && why) {
		yproblem(b, &node->start_mark, pointer, SL_ERR_PARSE,
		         "SCHEMA_VALIDATION_FAILED: '%.*s': %s", (int)(n > 60 ? 60 : n), s, why);
		return NULL;
	}
	if (!v) {
		/* libyaml checks UTF-8, so the only way here is memory */
		yproblem(b, &node->start_mark, pointer, SL_ERR_NOMEM, "out of memory");
		return NULL;
	}
	return v;
}

static json_t *
build_sequence(struct ybuild *b, yaml_node_t *node, const char *pointer, unsigned depth)
{
	json_t *arr = json_array();
	if (!arr) {
		yproblem(b, NULL, pointer, SL_ERR_NOMEM, "out of memory");
		return NULL;
	}
	size_t i = 0;
	for (yaml_node_item_t *it = node->data.sequence.items.start;
	     it < node->data.sequence.items.top; it++, i++) {
		char *child = sm_pointer_append_index(pointer, i);
		if (!child) {
			yproblem(b, NULL, pointer, SL_ERR_NOMEM, "out of memory");
			break;
		}
		json_t *v = build(b, *it, child, depth + 1, NULL);
		sl_free(child);
		if (!v || json_array_append_new(arr, v) != 0) {
			if (v && b->fatal == SL_OK)
				yproblem(b, NULL, pointer, SL_ERR_NOMEM, "out of memory");
			break;
		}
	}
	if (b->fatal != SL_OK) {
		json_decref(arr);
		return NULL;
	}
	return arr;
}

static json_t *
build_mapping(struct ybuild *b, yaml_node_t *node, const char *pointer, unsigned depth)
{
	json_t *obj = json_object();
	if (!obj) {
		yproblem(b, NULL, pointer, SL_ERR_NOMEM, "out of memory");
		return NULL;
	}
	for (yaml_node_pair_t *p = node->data.mapping.pairs.start;
	     p < node->data.mapping.pairs.top && b->fatal == SL_OK; p++) {
		yaml_node_t *k = yaml_document_get_node(b->doc, p->key);
		if (!k || k->type != YAML_SCALAR_NODE) {
			yproblem(b, k ? &k->start_mark : &node->start_mark, pointer, SL_ERR_PARSE,
			         "SCHEMA_VALIDATION_FAILED: mapping keys must be scalars");
			break;
		}
		const char *ks = (const char *)k->data.scalar.value;
		size_t kn = k->data.scalar.length;
		if (memchr(ks, '\0', kn)) {
			yproblem(b, &k->start_mark, pointer, SL_ERR_PARSE,
			         "SCHEMA_VALIDATION_FAILED: mapping key contains a NUL character");
			break;
		}
		char *child = sm_pointer_append(pointer, ks);
		if (!child) {
			yproblem(b, NULL, pointer, SL_ERR_NOMEM, "out of memory");
			break;
		}
		if (json_object_getn(obj, ks, kn)) {
			yproblem(b, &k->start_mark, child, SL_ERR_PARSE,
			         "SCHEMA_VALIDATION_FAILED: duplicate key '%s'", ks);
			sl_free(child);
			break;
		}
		json_t *v = build(b, p->value, child, depth + 1, &k->start_mark);
		sl_free(child);
		if (!v)
			break;
		if (json_object_setn_new(obj, ks, kn, v) != 0) {
			yproblem(b, NULL, pointer, SL_ERR_NOMEM, "out of memory");
			break;
		}
	}
	if (b->fatal != SL_OK) {
		json_decref(obj);
		return NULL;
	}
	return obj;
}

static json_t *
build(struct ybuild *b, int index, const char *pointer, unsigned depth, const yaml_mark_t *key_mark)
{
	yaml_node_t *node = yaml_document_get_node(b->doc, index);
	if (!node) {
		yproblem(b, NULL, pointer, SL_ERR_PARSE,
		         "SCHEMA_VALIDATION_FAILED: broken YAML node");
		return NULL;
	}
	if (++b->nodes > b->opts->max_nodes) {
		yproblem(b, &node->start_mark, pointer, SL_ERR_LIMIT,
		         "SCHEMA_VALIDATION_FAILED: document expands to more than %zu nodes "
		         "(aliases are expanded; is this an alias bomb?)",
		         b->opts->max_nodes);
		return NULL;
	}
	if (depth > b->opts->max_depth) {
		yproblem(b, &node->start_mark, pointer, SL_ERR_LIMIT,
		         "SCHEMA_VALIDATION_FAILED: nesting deeper than %zu levels (or an alias "
		         "that contains itself)",
		         b->opts->max_depth);
		return NULL;
	}
	if (sm_positions_put(b->pos, pointer, (unsigned)node->start_mark.line + 1,
	                     (unsigned)node->start_mark.column + 1,
	                     key_mark ? (unsigned)key_mark->line + 1 : 0,
	                     key_mark ? (unsigned)key_mark->column + 1 : 0)
	    != SL_OK) {
		yproblem(b, NULL, pointer, SL_ERR_NOMEM, "out of memory");
		return NULL;
	}
	switch (node->type) {
	case YAML_SCALAR_NODE: return build_scalar(b, node, pointer);
	case YAML_SEQUENCE_NODE:
		if (!tag_is(node, YAML_SEQ_TAG))
			break;
		return build_sequence(b, node, pointer, depth);
	case YAML_MAPPING_NODE:
		if (!tag_is(node, YAML_MAP_TAG))
			break;
		return build_mapping(b, node, pointer, depth);
	default: break;
	}
	yproblem(b, &node->start_mark, pointer, SL_ERR_PARSE,
	         "SCHEMA_VALIDATION_FAILED: unsupported YAML tag '%s'",
	         node->tag ? (const char *)node->tag : "");
	return NULL;
}

static sl_err
parser_problem(struct ybuild *b, yaml_parser_t *parser)
{
	if (parser->error == YAML_MEMORY_ERROR)
		return yproblem(b, NULL, "", SL_ERR_NOMEM, "out of memory");
	const char *what = parser->problem ? parser->problem : "malformed YAML";
	if (parser->context)
		return yproblem(b, &parser->problem_mark, "", SL_ERR_PARSE,
		                "INVALID_YAML_DESCRIPTION: %s %s (line %zu)", what, parser->context,
		                parser->context_mark.line + 1);
	return yproblem(b, &parser->problem_mark, "", SL_ERR_PARSE, "INVALID_YAML_DESCRIPTION: %s",
	                what);
}

sl_err
sm_yaml_load(const char *text, size_t len, const char *filename, const struct sm_load_options *opts,
             json_t **out, struct sm_positions *pos, struct sm_problems *problems)
{
	struct ybuild b = { .opts = opts, .filename = filename, .pos = pos, .problems = problems };
	yaml_parser_t parser;
	if (!yaml_parser_initialize(&parser))
		return SL_ERR_NOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	json_t *docs = json_array();
	if (!docs) {
		yaml_parser_delete(&parser);
		return SL_ERR_NOMEM;
	}
	for (size_t ndoc = 0; b.fatal == SL_OK; ndoc++) {
		yaml_document_t doc;
		if (!yaml_parser_load(&parser, &doc)) {
			parser_problem(&b, &parser);
			break;
		}
		yaml_node_t *root = yaml_document_get_root_node(&doc);
		if (!root) {
			yaml_document_delete(&doc);
			if (ndoc == 0)
				yproblem(&b, NULL, "", SL_ERR_PARSE,
				         "SCHEMA_VALIDATION_FAILED: the definition is empty");
			break;
		}
		if (ndoc > 0 && !opts->multi_document) {
			yproblem(&b, &root->start_mark, "", SL_ERR_PARSE,
			         "SCHEMA_VALIDATION_FAILED: more than one YAML document; a "
			         "definition is one document");
			yaml_document_delete(&doc);
			break;
		}
		b.doc = &doc;
		char *root_ptr
		        = opts->multi_document ? sm_pointer_append_index("", ndoc) : sl_strdup("");
		json_t *v = root_ptr ? build(&b, 1, root_ptr, 0, NULL) : NULL;
		if (!root_ptr)
			yproblem(&b, NULL, "", SL_ERR_NOMEM, "out of memory");
		sl_free(root_ptr);
		yaml_document_delete(&doc);
		if (v && json_array_append_new(docs, v) != 0)
			yproblem(&b, NULL, "", SL_ERR_NOMEM, "out of memory");
	}
	yaml_parser_delete(&parser);
	if (b.fatal != SL_OK) {
		json_decref(docs);
		return b.fatal;
	}
	if (opts->multi_document) {
		*out = docs;
	} else {
		*out = json_incref(json_array_get(docs, 0));
		json_decref(docs);
	}
	return SL_OK;
}
