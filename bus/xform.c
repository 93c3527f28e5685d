/*
 * xform.c - compiles a target's Input / InputPath / InputTransformer into an xform_t.
 *
 * Messages: where AWS's text was recorded (localstack snapshots, validated against AWS) it is
 * reproduced exactly ("Only one of Input, InputPath, or InputTransformer must be provided for
 * target X.", "InputTemplate for target X contains invalid placeholder Y."); API constraint
 * failures follow the service's "1 validation error detected: ..." form; the rest say what
 * was expected and where, in the same voice.
 */
#include "bus/xform_internal.h"

#include <stdio.h>
#include <string.h>

#include "common/sl_alloc.h"

static const struct {
	const char *name;
	enum xform_src src;
} reserved[] = {
	{ "aws.events.rule-arn", XFORM_SRC_RULE_ARN },
	{ "aws.events.rule-name", XFORM_SRC_RULE_NAME },
	{ "aws.events.event.ingestion-time", XFORM_SRC_INGESTION_TIME },
	{ "aws.events.event", XFORM_SRC_EVENT },
	{ "aws.events.event.json", XFORM_SRC_EVENT_JSON },
};

void
xform_free(xform_t *x)
{
	if (!x)
		return;
	sl_free(x->input);
	xform_path_clear(&x->path);
	sl_free(x->tmpl);
	for (size_t i = 0; i < x->nvars; i++) {
		sl_free(x->vars[i].name);
		xform_path_clear(&x->vars[i].path);
	}
	sl_free(x->vars);
	sl_free(x->pieces);
	sl_free(x);
}

enum xform_kind
xform_kind(const xform_t *x)
{
	return x->kind;
}

/* A member that is absent or JSON null counts as not set, as the SDKs omit nulls. */
static const json_t *
member(const json_t *obj, const char *name)
{
	const json_t *v = json_object_get(obj, name);
	return json_is_null(v) ? NULL : v;
}

/* "Value 'v' at" with the value when it is short enough to quote usefully. */
static void
quote_value(char *buf, size_t cap, const char *v, size_t n)
{
	if (v && n <= 100 && !memchr(v, '\n', n))
		snprintf(buf, cap, "Value '%.*s' at", (int)n, v);
	else
		snprintf(buf, cap, "Value at");
}

static sl_err
constraint(struct sl_error *err, unsigned index, const char *field, const char *v, size_t n,
           const char *rule)
{
	char qv[160];
	quote_value(qv, sizeof qv, v, n);
	return sl_error_set(err, SL_ERR_INVALID_ARG,
	                    "1 validation error detected: %s 'targets.%u.member.%s' failed to "
	                    "satisfy constraint: %s",
	                    qv, index, field, rule);
}

static sl_err
compile_input(xform_t *x, const char *id, unsigned index, const json_t *v, struct sl_error *err)
{
	if (!json_is_string(v))
		return sl_error_set(err, SL_ERR_SERIALIZATION,
		                    "Input for target %s must be a string of JSON text", id);
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	if (xform_char_len(s, n) > XFORM_MAX_INPUT)
		return constraint(err, index, "input", NULL, 0,
		                  "Member must have length less than or equal to 8192");
	struct xform_jerr je = { 0, "" };
	if (!xform_json_valid(s, s + n, &je)) {
		unsigned line, col;
		xform_line_col(s, je.offset, &line, &col);
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "Input for target %s is not valid JSON text: expected %s at "
		                    "line %u, column %u.",
		                    id, je.what, line, col);
	}
	x->input = sl_strndup(s, n);
	if (!x->input)
		return sl_error_set(err, SL_ERR_NOMEM, NULL);
	x->input_len = n;
	x->kind = XFORM_INPUT;
	return SL_OK;
}

static sl_err
compile_path(const char *what, const char *id, unsigned index, const char *field, const json_t *v,
             struct xform_path *p, struct sl_error *err)
{
	if (!json_is_string(v))
		return sl_error_set(err, SL_ERR_SERIALIZATION, "%s for target %s must be a string",
		                    what, id);
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	if (xform_char_len(s, n) > XFORM_MAX_PATH)
		return constraint(err, index, field, NULL, 0,
		                  "Member must have length less than or equal to 256");
	const char *why = NULL;
	if (!xform_path_parse(s, n, p, &why)) {
		if (!why)
			return sl_error_set(err, SL_ERR_NOMEM, NULL);
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "%s %.*s for target %s is not a valid JSON path: expected %s.",
		                    what, (int)(n > 300 ? 300 : n), s, id, why);
	}
	return SL_OK;
}

static bool
valid_var_name(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
		      || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static sl_err
compile_vars(xform_t *x, const char *id, unsigned index, const json_t *map, struct sl_error *err)
{
	if (!json_is_object(map))
		return sl_error_set(err, SL_ERR_SERIALIZATION,
		                    "InputPathsMap for target %s must be an object of strings", id);
	size_t n = json_object_size(map);
	if (n > XFORM_MAX_VARIABLES)
		return constraint(err, index, "inputTransformer.inputPathsMap", NULL, 0,
		                  "Member must have length less than or equal to 100");
	if (n == 0)
		return SL_OK;
	x->vars = sl_calloc(n, sizeof(*x->vars));
	if (!x->vars)
		return sl_error_set(err, SL_ERR_NOMEM, NULL);
	const char *key;
	json_t *val;
	json_object_foreach((json_t *)map, key, val)
	{
		size_t kn = strlen(key);
		if (strncmp(key, "aws.events.", 11) == 0)
			return sl_error_set(
			        err, SL_ERR_INVALID_ARG,
			        "InputPathsMap for target %s uses the reserved variable "
			        "name %.*s; names starting with aws.events are predefined.",
			        id, (int)(kn > 300 ? 300 : kn), key);
		if (kn > XFORM_MAX_VARIABLE_NAME)
			return constraint(err, index, "inputTransformer.inputPathsMap", NULL, 0,
			                  "Map keys must satisfy constraint: [Member must have "
			                  "length less than or equal to 256]");
		if (!valid_var_name(key, kn))
			return constraint(err, index, "inputTransformer.inputPathsMap", key, kn,
			                  "Map keys must satisfy constraint: [Member must satisfy "
			                  "regular expression pattern: [A-Za-z0-9\\_\\-]+]");
		struct xform_var *xv = &x->vars[x->nvars];
		xv->name = sl_strndup(key, kn);
		if (!xv->name)
			return sl_error_set(err, SL_ERR_NOMEM, NULL);
		x->nvars++;
		sl_err rc = compile_path("InputPathsMap value", id, index,
		                         "inputTransformer.inputPathsMap", val, &xv->path, err);
		if (rc != SL_OK)
			return rc;
	}
	return SL_OK;
}

/* Resolves a placeholder name to its source; false if it names nothing. */
static bool
lookup(const xform_t *x, const char *name, size_t n, enum xform_src *src, size_t *var)
{
	for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++) {
		if (strlen(reserved[i].name) == n && memcmp(reserved[i].name, name, n) == 0) {
			*src = reserved[i].src;
			return true;
		}
	}
	for (size_t i = 0; i < x->nvars; i++) {
		if (strlen(x->vars[i].name) == n && memcmp(x->vars[i].name, name, n) == 0) {
			*src = XFORM_SRC_VAR;
			*var = i;
			return true;
		}
	}
	return false;
}

/* A placeholder is '<', one or more characters that are neither space nor '<' '>' '"'
 * '\\', then '>'. Returns the length of the name, 0 if p does not start a placeholder. */
static size_t
placeholder_at(const char *p, const char *e)
{
	const char *q = p + 1;
	while (q < e && *q != '>') {
		unsigned char c = (unsigned char)*q;
		if (c <= 0x20 || c == '<' || c == '"' || c == '\\')
			return 0;
		q++;
	}
	if (q >= e || q == p + 1)
		return 0;
	return (size_t)(q - p - 1);
}

static sl_err
scan_template(xform_t *x, const char *id, struct sl_error *err)
{
	const char *t = x->tmpl, *e = x->tmpl + x->tmpl_len;
	const char *first = xform_json_ws(t, e);
	x->json_template = first < e && (*first == '{' || *first == '[');

	/* count placeholders to size the piece array once */
	size_t cap = 0;
	for (const char *p = t; p < e; p++)
		if (*p == '<' && placeholder_at(p, e))
			cap++;
	if (cap) {
		x->pieces = sl_calloc(cap, sizeof(*x->pieces));
		if (!x->pieces)
			return sl_error_set(err, SL_ERR_NOMEM, NULL);
	}

	bool in_str = false;
	const char *str_placeholder = NULL; /* first placeholder of the current string */
	size_t lit = 0;
	for (const char *p = t; p < e;) {
		if (in_str && *p == '\\' && p + 1 < e) {
			p += 2;
			continue;
		}
		if (*p == '"') {
			in_str = !in_str;
			if (!in_str && str_placeholder && x->json_template) {
				const char *n = xform_json_ws(p + 1, e);
				if (n < e && *n == ':') {
					size_t ln = placeholder_at(str_placeholder, e);
					return sl_error_set(
					        err, SL_ERR_INVALID_ARG,
					        "InputTemplate for target %s uses placeholder %.*s "
					        "in "
					        "an object key; a placeholder may only be a value.",
					        id, (int)ln, str_placeholder + 1);
				}
			}
			if (in_str)
				str_placeholder = NULL;
			p++;
			continue;
		}
		size_t ln;
		if (*p != '<' || !(ln = placeholder_at(p, e))) {
			p++;
			continue;
		}
		struct xform_piece *pc = &x->pieces[x->npieces];
		if (!lookup(x, p + 1, ln, &pc->src, &pc->var))
			return sl_error_set(
			        err, SL_ERR_INVALID_ARG,
			        "InputTemplate for target %s contains invalid placeholder "
			        "%.*s.",
			        id, (int)(ln > 300 ? 300 : ln), p + 1);
		if (x->json_template)
			pc->pos = in_str ? XFORM_POS_STRING : XFORM_POS_VALUE;
		else
			pc->pos = in_str ? XFORM_POS_STRING : XFORM_POS_TEXT;
		if (x->json_template && in_str
		    && (pc->src == XFORM_SRC_EVENT || pc->src == XFORM_SRC_EVENT_JSON))
			return sl_error_set(
			        err, SL_ERR_INVALID_ARG,
			        "InputTemplate for target %s uses %.*s inside a string; "
			        "it is not escaped, so it may only be used as a JSON value.",
			        id, (int)ln + 2, p);
		if (x->json_template && !in_str) {
			const char *n = xform_json_ws(p + ln + 2, e);
			if (n < e && *n == ':')
				return sl_error_set(
				        err, SL_ERR_INVALID_ARG,
				        "InputTemplate for target %s uses placeholder "
				        "%.*s as an object key; a placeholder may only be "
				        "a value.",
				        id, (int)ln, p + 1);
		}
		if (in_str && !str_placeholder)
			str_placeholder = p;
		pc->lit_off = lit;
		pc->lit_len = (size_t)(p - t) - lit;
		x->npieces++;
		p += ln + 2;
		lit = (size_t)(p - t);
	}
	x->tail_off = lit;
	return SL_OK;
}

/* A JSON template must be JSON once its placeholders are filled in. Checked on a copy where
 * each bare placeholder becomes "" and each in-string one spaces, the same length, so the
 * scanner's offsets point into the template as written. */
static sl_err
check_json_template(const xform_t *x, const char *id, struct sl_error *err)
{
	char *sk = sl_malloc(x->tmpl_len + 1);
	if (!sk)
		return sl_error_set(err, SL_ERR_NOMEM, NULL);
	memcpy(sk, x->tmpl, x->tmpl_len);
	for (size_t i = 0; i < x->npieces; i++) {
		const struct xform_piece *pc = &x->pieces[i];
		size_t at = pc->lit_off + pc->lit_len;
		size_t end = i + 1 < x->npieces ? x->pieces[i + 1].lit_off : x->tail_off;
		memset(sk + at, ' ', end - at);
		if (pc->pos == XFORM_POS_VALUE) { /* "" delimits itself, unlike 0 in -0 or 10 */
			sk[at] = '"';
			sk[at + 1] = '"';
		}
	}
	struct xform_jerr je = { 0, "" };
	bool ok = xform_json_valid(sk, sk + x->tmpl_len, &je);
	sl_free(sk);
	if (ok)
		return SL_OK;
	unsigned line, col;
	xform_line_col(x->tmpl, je.offset, &line, &col);
	return sl_error_set(
	        err, SL_ERR_INVALID_ARG,
	        "InputTemplate for target %s is not valid JSON: expected %s at line %u, "
	        "column %u.",
	        id, je.what, line, col);
}

static sl_err
compile_transformer(xform_t *x, const char *id, unsigned index, const json_t *it,
                    struct sl_error *err)
{
	if (!json_is_object(it))
		return sl_error_set(err, SL_ERR_SERIALIZATION,
		                    "InputTransformer for target %s must be an object", id);
	x->kind = XFORM_TRANSFORMER;
	const json_t *tv = member(it, "InputTemplate");
	if (!tv) /* the service prints a null value unquoted */
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "1 validation error detected: Value null at "
		                    "'targets.%u.member.inputTransformer.inputTemplate' failed to "
		                    "satisfy constraint: Member must not be null",
		                    index);
	if (!json_is_string(tv))
		return sl_error_set(err, SL_ERR_SERIALIZATION,
		                    "InputTemplate for target %s must be a string", id);
	const char *s = json_string_value(tv);
	size_t n = json_string_length(tv);
	if (n == 0)
		return constraint(err, index, "inputTransformer.inputTemplate", "", 0,
		                  "Member must have length greater than or equal to 1");
	if (xform_char_len(s, n) > XFORM_MAX_TEMPLATE)
		return constraint(err, index, "inputTransformer.inputTemplate", NULL, 0,
		                  "Member must have length less than or equal to 8192");
	if (memchr(s, 0, n))
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "InputTemplate for target %s contains a NUL character.", id);
	const json_t *map = member(it, "InputPathsMap");
	if (map) {
		sl_err rc = compile_vars(x, id, index, map, err);
		if (rc != SL_OK)
			return rc;
	}
	x->tmpl = sl_strndup(s, n);
	if (!x->tmpl)
		return sl_error_set(err, SL_ERR_NOMEM, NULL);
	x->tmpl_len = n;
	sl_err rc = scan_template(x, id, err);
	if (rc == SL_OK && x->json_template)
		rc = check_json_template(x, id, err);
	return rc;
}

sl_err
xform_new(const json_t *target, unsigned index, xform_t **out, struct sl_error *err)
{
	if (!json_is_object(target))
		return sl_error_set(err, SL_ERR_SERIALIZATION, "a target must be a JSON object");
	const json_t *idv = json_object_get(target, "Id");
	const char *id = json_is_string(idv) ? json_string_value(idv) : "";
	char idbuf[80];
	if (strlen(id) > 64) { /* keep messages bounded; real Ids are at most 64 */
		snprintf(idbuf, sizeof idbuf, "%.64s...", id);
		id = idbuf;
	}
	const json_t *in = member(target, "Input");
	const json_t *ip = member(target, "InputPath");
	const json_t *it = member(target, "InputTransformer");
	if ((in != NULL) + (ip != NULL) + (it != NULL) > 1)
		return sl_error_set(err, SL_ERR_INVALID_ARG,
		                    "Only one of Input, InputPath, or InputTransformer must be "
		                    "provided for target %s.",
		                    id);
	xform_t *x = SL_NEW(xform_t);
	if (!x)
		return sl_error_set(err, SL_ERR_NOMEM, NULL);
	sl_err rc = SL_OK;
	x->kind = XFORM_EVENT;
	if (in) {
		rc = compile_input(x, id, index, in, err);
	} else if (ip) {
		x->kind = XFORM_INPUT_PATH;
		rc = compile_path("InputPath", id, index, "inputPath", ip, &x->path, err);
	} else if (it) {
		rc = compile_transformer(x, id, index, it, err);
	}
	if (rc != SL_OK) {
		xform_free(x);
		return rc;
	}
	*out = x;
	return SL_OK;
}
