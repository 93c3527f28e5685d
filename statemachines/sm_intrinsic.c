/*
 * sm_intrinsic.c - parsing and evaluating intrinsic calls such as
 *   States.Format('Hello {}', States.ArrayGetItem($.names, 0))
 * Arguments are string literals in single quotes (escapes \' \{ \} \\ only, as AWS
 * refuses any other), numbers, true/false/null, paths ($.x, $$.x) and nested calls.
 * The functions themselves are in sm_intrinsic_funcs.c.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/sl_alloc.h"
#include "statemachines/sm_path_int.h"

#define SM_INTRINSIC_MAX_DEPTH 10
#define SM_INTRINSIC_MAX_ARGS  256

enum sm_arg_kind { SM_ARG_LITERAL, SM_ARG_PATH, SM_ARG_CALL };

struct sm_iarg {
	enum sm_arg_kind kind;
	json_t *lit;
	char *raw; /* string literals: the text between the quotes, escapes intact */
	struct sm_path *path;
	struct sm_intrinsic *call;
};

struct sm_intrinsic {
	const struct sm_ifunc *fn;
	char *text;
	size_t argc;
	struct sm_iarg *args;
};

struct sm_iparse {
	const char *text;
	size_t pos;
	struct sl_error *err;
};

static sl_err
ierr(struct sm_iparse *ip, const char *what)
{
	return sl_error_set(ip->err, SL_ERR_INVALID_DEFINITION,
	                    "Invalid intrinsic function call '%s': %s at position %zu", ip->text,
	                    what, ip->pos);
}

static void
iskip(struct sm_iparse *ip)
{
	while (isspace((unsigned char)ip->text[ip->pos]))
		ip->pos++;
}

void
sm_intrinsic_free(struct sm_intrinsic *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->argc; i++) {
		json_decref(f->args[i].lit);
		sl_free(f->args[i].raw);
		sm_path_free(f->args[i].path);
		sm_intrinsic_free(f->args[i].call);
	}
	sl_free(f->args);
	sl_free(f->text);
	sl_free(f);
}

bool
sm_intrinsic_is_call(const char *text)
{
	if (!text || strncmp(text, "States.", 7) != 0)
		return false;
	const char *p = text + 7;
	if (!isalpha((unsigned char)*p))
		return false;
	while (isalnum((unsigned char)*p))
		p++;
	while (isspace((unsigned char)*p))
		p++;
	return *p == '(';
}

static sl_err
parse_string(struct sm_iparse *ip, struct sm_iarg *a)
{
	size_t start = ++ip->pos;
	size_t len = 0;
	for (;;) {
		char c = ip->text[ip->pos];
		if (c == '\0') {
			ip->pos = start - 1;
			return ierr(ip, "unterminated string literal");
		}
		if (c == '\'')
			break;
		if (c == '\\') {
			char e = ip->text[ip->pos + 1];
			if (e != '\'' && e != '{' && e != '}' && e != '\\')
				return ierr(ip,
				            "invalid escape in string literal (only \\', \\{, \\} "
				            "and \\\\ are allowed)");
			ip->pos += 2;
			len++;
			continue;
		}
		ip->pos++;
		len++;
	}
	size_t end = ip->pos++;
	a->raw = sl_strndup(ip->text + start, end - start);
	char *val = sl_malloc(len + 1);
	if (!a->raw || !val) {
		sl_free(val);
		return SL_ERR_NOMEM;
	}
	size_t n = 0;
	for (size_t i = start; i < end; i++) {
		if (ip->text[i] == '\\')
			i++;
		val[n++] = ip->text[i];
	}
	a->kind = SM_ARG_LITERAL;
	if (!sm_utf8_valid(val, n)) {
		sl_free(val);
		return ierr(ip, "string literal is not valid UTF-8");
	}
	a->lit = json_stringn(val, n);
	sl_free(val);
	return a->lit ? SL_OK : SL_ERR_NOMEM;
}

static sl_err
parse_number(struct sm_iparse *ip, struct sm_iarg *a)
{
	const char *s = ip->text + ip->pos;
	size_t len = strspn(s, "-+0123456789.eE");
	bool real = strcspn(s, ".eE") < len;
	char *end;
	errno = 0;
	a->kind = SM_ARG_LITERAL;
	if (real) {
		double d = strtod(s, &end);
		if (end == s || errno == ERANGE || !isfinite(d))
			return ierr(ip, "invalid number");
		a->lit = json_real(d);
	} else {
		long long v = strtoll(s, &end, 10);
		if (end == s || errno == ERANGE)
			return ierr(ip, "invalid number");
		a->lit = json_integer(v);
	}
	ip->pos += (size_t)(end - s);
	return a->lit ? SL_OK : SL_ERR_NOMEM;
}

/* A path argument runs to the next ',' or ')' outside brackets and quotes. */
static sl_err
parse_path_arg(struct sm_iparse *ip, struct sm_iarg *a)
{
	size_t start = ip->pos;
	int brackets = 0, parens = 0;
	char quote = 0;
	for (;; ip->pos++) {
		char c = ip->text[ip->pos];
		if (c == '\0')
			break;
		if (quote) {
			if (c == '\\' && ip->text[ip->pos + 1])
				ip->pos++;
			else if (c == quote)
				quote = 0;
			continue;
		}
		if (brackets > 0 && (c == '\'' || c == '"'))
			quote = c;
		else if (c == '[')
			brackets++;
		else if (c == ']')
			brackets--;
		else if (c == '(')
			parens++;
		else if (c == ')' && parens > 0)
			parens--;
		else if (brackets == 0 && parens == 0 && (c == ',' || c == ')'))
			break;
	}
	size_t end = ip->pos;
	while (end > start && isspace((unsigned char)ip->text[end - 1]))
		end--;
	char *text = sl_strndup(ip->text + start, end - start);
	if (!text)
		return SL_ERR_NOMEM;
	struct sl_error perr;
	sl_err rc = sm_path_compile(text, SM_PATH_JSONPATH, &a->path, &perr);
	if (rc == SL_ERR_NOMEM) {
		sl_free(text);
		return rc;
	}
	if (rc) {
		ip->pos = start;
		rc = sl_error_set(
		        ip->err, SL_ERR_INVALID_DEFINITION,
		        "Invalid intrinsic function call '%s': argument %s at position %zu "
		        "(%s)",
		        ip->text, text, start, sl_error_text(&perr));
		sl_free(text);
		return rc;
	}
	sl_free(text);
	a->kind = SM_ARG_PATH;
	return SL_OK;
}

static sl_err parse_call(struct sm_iparse *ip, int depth, struct sm_intrinsic **out);

static sl_err
parse_arg(struct sm_iparse *ip, int depth, struct sm_iarg *a)
{
	const char *s = ip->text + ip->pos;
	char c = *s;
	if (c == '\'')
		return parse_string(ip, a);
	if (c == '-' || isdigit((unsigned char)c))
		return parse_number(ip, a);
	if (c == '$')
		return parse_path_arg(ip, a);
	if (strncmp(s, "States.", 7) == 0) {
		a->kind = SM_ARG_CALL;
		return parse_call(ip, depth + 1, &a->call);
	}
	static const char *words[] = { "true", "false", "null" };
	for (int i = 0; i < 3; i++) {
		size_t n = strlen(words[i]);
		if (strncmp(s, words[i], n) == 0 && !isalnum((unsigned char)s[n])) {
			ip->pos += n;
			a->kind = SM_ARG_LITERAL;
			a->lit = i == 0 ? json_true() : i == 1 ? json_false() : json_null();
			return SL_OK;
		}
	}
	return ierr(ip,
	            "expected a string in single quotes, a number, true, false, null, a "
	            "path or an intrinsic function");
}

static bool
literal_fits(const json_t *v, unsigned types)
{
	if (types == SM_T_ANY)
		return true;
	switch (json_typeof(v)) {
	case JSON_STRING: return types & SM_T_STR;
	case JSON_INTEGER: return types & (SM_T_NUM | SM_T_INT);
	case JSON_REAL:
		return (types & SM_T_NUM)
		        || ((types & SM_T_INT) && json_real_value(v) == floor(json_real_value(v)));
	case JSON_TRUE:
	case JSON_FALSE: return types & SM_T_BOOL;
	case JSON_NULL: return types & SM_T_NULL;
	default: return false;
	}
}

static const char *
type_words(unsigned types)
{
	if (types & SM_T_STR)
		return "a string";
	if (types & SM_T_INT)
		return "an integer";
	if (types & SM_T_NUM)
		return "a number";
	if (types & SM_T_BOOL)
		return "a boolean";
	if (types & SM_T_ARR)
		return "an array";
	if (types & SM_T_OBJ)
		return "an object";
	return "a value";
}

/* Arity and literal types, known at compile time. */
static sl_err
check_call(struct sm_iparse *ip, struct sm_intrinsic *f, size_t call_start)
{
	const struct sm_ifunc *fn = f->fn;
	ip->pos = call_start;
	if ((int)f->argc < fn->min_args || (fn->max_args >= 0 && (int)f->argc > fn->max_args)) {
		char what[160];
		if (fn->max_args < 0)
			snprintf(what, sizeof(what),
			         "States.%s takes at least %d argument%s, got %zu", fn->name,
			         fn->min_args, fn->min_args == 1 ? "" : "s", f->argc);
		else if (fn->min_args == fn->max_args)
			snprintf(what, sizeof(what), "States.%s takes %d argument%s, got %zu",
			         fn->name, fn->min_args, fn->min_args == 1 ? "" : "s", f->argc);
		else
			snprintf(what, sizeof(what), "States.%s takes %d to %d arguments, got %zu",
			         fn->name, fn->min_args, fn->max_args, f->argc);
		return ierr(ip, what);
	}
	for (size_t i = 0; i < f->argc; i++) {
		unsigned t = fn->types[i < 3 ? i : 3];
		const struct sm_iarg *a = &f->args[i];
		if (a->kind == SM_ARG_LITERAL && !literal_fits(a->lit, t)) {
			char what[160];
			snprintf(what, sizeof(what), "argument %zu of States.%s must be %s", i + 1,
			         fn->name, type_words(t));
			return ierr(ip, what);
		}
	}
	if (strcmp(fn->name, "Format") == 0 && f->args[0].kind == SM_ARG_LITERAL) {
		size_t holes = sm_format_placeholders(f->args[0].raw);
		if (holes != f->argc - 1) {
			char what[160];
			snprintf(what, sizeof(what),
			         "States.Format has %zu placeholder%s '{}' but %zu argument%s",
			         holes, holes == 1 ? "" : "s", f->argc - 1,
			         f->argc == 2 ? "" : "s");
			return ierr(ip, what);
		}
	}
	if (strcmp(fn->name, "JsonMerge") == 0 && f->args[2].kind == SM_ARG_LITERAL
	    && !json_is_false(f->args[2].lit))
		return ierr(ip,
		            "States.JsonMerge supports only a shallow merge: its third argument "
		            "must be false");
	return SL_OK;
}

static sl_err
parse_call(struct sm_iparse *ip, int depth, struct sm_intrinsic **out)
{
	sl_err rc;
	size_t call_start = ip->pos;
	if (depth > SM_INTRINSIC_MAX_DEPTH)
		return ierr(ip, "intrinsic functions can be nested at most 10 deep");
	if (strncmp(ip->text + ip->pos, "States.", 7) != 0)
		return ierr(ip, "expected 'States.'");
	ip->pos += 7;
	size_t name_start = ip->pos;
	while (isalnum((unsigned char)ip->text[ip->pos]))
		ip->pos++;
	const struct sm_ifunc *fn = sm_ifunc_find(ip->text + name_start, ip->pos - name_start);
	if (!fn) {
		ip->pos = call_start;
		return ierr(ip, "unknown intrinsic function");
	}
	iskip(ip);
	if (ip->text[ip->pos] != '(')
		return ierr(ip, "expected '('");
	ip->pos++;
	struct sm_intrinsic *f = SL_NEW(struct sm_intrinsic);
	if (!f)
		return SL_ERR_NOMEM;
	f->fn = fn;
	size_t cap = 0;
	iskip(ip);
	if (ip->text[ip->pos] != ')') {
		for (;;) {
			iskip(ip);
			if (f->argc == cap) {
				if (cap >= SM_INTRINSIC_MAX_ARGS) {
					rc = ierr(ip, "too many arguments");
					goto fail;
				}
				cap = cap ? cap * 2 : 4;
				struct sm_iarg *p = sl_reallocarray(f->args, cap, sizeof(*p));
				if (!p) {
					rc = SL_ERR_NOMEM;
					goto fail;
				}
				f->args = p;
			}
			struct sm_iarg *a = &f->args[f->argc++];
			memset(a, 0, sizeof(*a));
			if ((rc = parse_arg(ip, depth, a)))
				goto fail;
			iskip(ip);
			if (ip->text[ip->pos] == ',') {
				ip->pos++;
				continue;
			}
			if (ip->text[ip->pos] == ')')
				break;
			rc = ierr(ip, "expected ',' or ')'");
			goto fail;
		}
	}
	ip->pos++; /* ')' */
	size_t end = ip->pos;
	if ((rc = check_call(ip, f, call_start)))
		goto fail;
	ip->pos = end;
	f->text = sl_strndup(ip->text + call_start, end - call_start);
	if (!f->text) {
		rc = SL_ERR_NOMEM;
		goto fail;
	}
	*out = f;
	return SL_OK;
fail:
	sm_intrinsic_free(f);
	return rc;
}

sl_err
sm_intrinsic_compile(const char *text, struct sm_intrinsic **out, struct sl_error *err)
{
	if (!text)
		return sl_error_set(err, SL_ERR_INVALID_DEFINITION,
		                    "an intrinsic function call must be a string");
	struct sm_iparse ip = { .text = text, .err = err };
	if (!sm_utf8_valid(text, strlen(text)))
		return ierr(&ip, "text is not valid UTF-8");
	struct sm_intrinsic *f;
	sl_err rc = parse_call(&ip, 1, &f);
	if (rc)
		return rc;
	iskip(&ip);
	if (text[ip.pos] != '\0') {
		sm_intrinsic_free(f);
		return ierr(&ip, "unexpected text after the call");
	}
	*out = f;
	return SL_OK;
}

/* ---- evaluation ------------------------------------------------------------------------- */

sl_err
sm_intrinsic_eval(const struct sm_intrinsic *f, json_t *input, json_t *context, json_t **out,
                  struct sm_fault *fault)
{
	json_t *stackv[8];
	json_t **argv = f->argc <= 8 ? stackv : sl_calloc(f->argc, sizeof(*argv));
	sl_err rc = SL_OK;
	size_t got = 0;
	if (!argv) {
		sm_fault_set(fault, "States.Runtime", "out of memory");
		return SL_ERR_NOMEM;
	}
	for (; got < f->argc; got++) {
		const struct sm_iarg *a = &f->args[got];
		switch (a->kind) {
		case SM_ARG_LITERAL:
			/* a copy: results may embed their arguments, and the compiled call is
			 * shared by every execution of the definition */
			argv[got] = json_deep_copy(a->lit);
			if (!argv[got]) {
				sm_fault_set(fault, "States.Runtime", "out of memory");
				rc = SL_ERR_NOMEM;
			}
			break;
		case SM_ARG_PATH:
			rc = sm_path_get(a->path, input, context, &argv[got]);
			if (rc == SL_ERR_NOT_FOUND) {
				char doc[600];
				sm_fault_json(sm_path_is_context(a->path) ? context : input, doc,
				              sizeof(doc));
				sm_fault_set(fault, "States.IntrinsicFailure",
				             "The JSONPath '%s' given to States.%s could not be "
				             "found in "
				             "the input '%s'",
				             sm_path_text(a->path), f->fn->name, doc);
				rc = SL_ERR_INVALID_ARG;
			} else if (rc == SL_ERR_NOMEM) {
				sm_fault_set(fault, "States.Runtime", "out of memory");
			}
			break;
		case SM_ARG_CALL:
			rc = sm_intrinsic_eval(a->call, input, context, &argv[got], fault);
			break;
		}
		if (rc)
			goto out;
	}
	rc = f->fn->fn(argv, f->argc,
	               f->args && f->argc && f->args[0].kind == SM_ARG_LITERAL ? f->args[0].raw
	                                                                       : NULL,
	               out, fault);
	if (rc == SL_ERR_NOMEM)
		sm_fault_set(fault, "States.Runtime", "out of memory");
out:
	for (size_t i = 0; i < got; i++)
		json_decref(argv[i]);
	if (argv != stackv)
		sl_free(argv);
	return rc;
}
