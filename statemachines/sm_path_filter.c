/*
 * sm_path_filter.c - JSONPath filter expressions: [?(@.a == 1)], [?(@.price < $.max)],
 * [?(@.flag)] (existence, as in Jayway), combined with && || ! and parentheses.
 *
 * Comparisons follow Jayway: numbers compare as numbers, strings by code unit order,
 * booleans and null only for (in)equality; a comparison with a missing operand is false,
 * values of different types are unequal.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/sl_alloc.h"
#include "statemachines/sm_path_int.h"

#define SM_FILTER_MAX_DEPTH 32

enum sm_fkind { SM_F_OR, SM_F_AND, SM_F_NOT, SM_F_CMP, SM_F_TEST };
enum sm_fop { SM_OP_EQ, SM_OP_NE, SM_OP_LT, SM_OP_LE, SM_OP_GT, SM_OP_GE };
enum sm_okind { SM_O_REL, SM_O_ABS, SM_O_LIT };

struct sm_operand {
	enum sm_okind kind;
	struct sm_pseg *segs;
	size_t n;
	json_t *lit;
};

struct sm_filter {
	enum sm_fkind kind;
	struct sm_filter *a, *b;
	enum sm_fop op;
	struct sm_operand l, r;
};

static void
operand_free(struct sm_operand *o)
{
	sm_segs_free(o->segs, o->n);
	json_decref(o->lit);
}

void
sm_filter_free(struct sm_filter *f)
{
	if (!f)
		return;
	sm_filter_free(f->a);
	sm_filter_free(f->b);
	operand_free(&f->l);
	operand_free(&f->r);
	sl_free(f);
}

static char
fpeek(const struct sm_pparse *pp)
{
	return pp->text[pp->pos];
}

static void
fskip(struct sm_pparse *pp)
{
	while (fpeek(pp) == ' ' || fpeek(pp) == '\t')
		pp->pos++;
}

static bool
fword(struct sm_pparse *pp, const char *w)
{
	size_t n = strlen(w);
	if (strncmp(pp->text + pp->pos, w, n) != 0)
		return false;
	char after = pp->text[pp->pos + n];
	if (isalnum((unsigned char)after) || after == '_')
		return false;
	pp->pos += n;
	return true;
}

static sl_err
parse_string_lit(struct sm_pparse *pp, json_t **out)
{
	char q = fpeek(pp);
	size_t start = ++pp->pos;
	char *buf = sl_malloc(strlen(pp->text + start) + 1);
	size_t n = 0;
	if (!buf)
		return SL_ERR_NOMEM;
	for (;;) {
		char c = fpeek(pp);
		if (c == '\0') {
			sl_free(buf);
			pp->pos = start - 1;
			return sm_parse_error(pp, "unterminated string in filter");
		}
		if (c == q)
			break;
		if (c == '\\' && pp->text[pp->pos + 1] != '\0') {
			buf[n++] = pp->text[pp->pos + 1];
			pp->pos += 2;
			continue;
		}
		buf[n++] = c;
		pp->pos++;
	}
	pp->pos++;
	if (!sm_utf8_valid(buf, n)) {
		sl_free(buf);
		return sm_parse_error(pp, "string in filter is not valid UTF-8");
	}
	*out = json_stringn(buf, n);
	sl_free(buf);
	return *out ? SL_OK : SL_ERR_NOMEM;
}

static sl_err
parse_operand(struct sm_pparse *pp, struct sm_operand *o)
{
	sl_err rc;
	char c = fpeek(pp);
	if (c == '@' || c == '$') {
		bool multi;
		bool saved_in = pp->in_filter;
		o->kind = (c == '@') ? SM_O_REL : SM_O_ABS;
		pp->pos++;
		pp->in_filter = true;
		rc = sm_parse_segments(pp, &o->segs, &o->n, &multi);
		pp->in_filter = saved_in;
		if (rc)
			return rc;
		if (multi)
			return sm_parse_error(pp,
			                      "a path inside a filter must name a single value");
		return SL_OK;
	}
	o->kind = SM_O_LIT;
	if (c == '\'' || c == '"')
		return parse_string_lit(pp, &o->lit);
	if (fword(pp, "true"))
		o->lit = json_true();
	else if (fword(pp, "false"))
		o->lit = json_false();
	else if (fword(pp, "null"))
		o->lit = json_null();
	else if (c == '-' || isdigit((unsigned char)c)) {
		const char *s = pp->text + pp->pos;
		char *end;
		size_t len = strspn(s, "-+0123456789.eE");
		bool real = strcspn(s, ".eE") < len;
		errno = 0;
		if (real) {
			double d = strtod(s, &end);
			if (end == s || errno == ERANGE || !isfinite(d))
				return sm_parse_error(pp, "invalid number in filter");
			o->lit = json_real(d);
		} else {
			long long v = strtoll(s, &end, 10);
			if (end == s || errno == ERANGE)
				return sm_parse_error(pp, "invalid number in filter");
			o->lit = json_integer(v);
		}
		pp->pos += (size_t)(end - s);
	} else {
		return sm_parse_error(pp,
		                      "expected '@', '$', a string, a number, true, false or "
		                      "null in filter");
	}
	return o->lit ? SL_OK : SL_ERR_NOMEM;
}

static bool
parse_op(struct sm_pparse *pp, enum sm_fop *op)
{
	static const struct {
		const char *t;
		enum sm_fop op;
	} ops[] = { { "==", SM_OP_EQ }, { "!=", SM_OP_NE }, { "<=", SM_OP_LE },
		    { ">=", SM_OP_GE }, { "<", SM_OP_LT },  { ">", SM_OP_GT } };
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		size_t n = strlen(ops[i].t);
		if (strncmp(pp->text + pp->pos, ops[i].t, n) == 0) {
			pp->pos += n;
			*op = ops[i].op;
			return true;
		}
	}
	return false;
}

static sl_err parse_or(struct sm_pparse *pp, struct sm_filter **out);

static sl_err
new_node(enum sm_fkind kind, struct sm_filter **out)
{
	*out = SL_NEW(struct sm_filter);
	if (!*out)
		return SL_ERR_NOMEM;
	(*out)->kind = kind;
	return SL_OK;
}

static sl_err
parse_unary(struct sm_pparse *pp, struct sm_filter **out)
{
	sl_err rc;
	struct sm_filter *f = NULL;
	if (++pp->depth > SM_FILTER_MAX_DEPTH)
		return sm_parse_error(pp, "filter nested too deeply");
	fskip(pp);
	if (fpeek(pp) == '!' && pp->text[pp->pos + 1] != '=') {
		pp->pos++;
		if ((rc = new_node(SM_F_NOT, &f)))
			goto out;
		rc = parse_unary(pp, &f->a);
	} else if (fpeek(pp) == '(') {
		pp->pos++;
		if ((rc = parse_or(pp, &f)))
			goto out;
		fskip(pp);
		if (fpeek(pp) != ')')
			rc = sm_parse_error(pp, "expected ')' in filter");
		else
			pp->pos++;
	} else {
		if ((rc = new_node(SM_F_TEST, &f)))
			goto out;
		if ((rc = parse_operand(pp, &f->l)))
			goto out;
		fskip(pp);
		if (parse_op(pp, &f->op)) {
			f->kind = SM_F_CMP;
			fskip(pp);
			rc = parse_operand(pp, &f->r);
		}
	}
out:
	pp->depth--;
	if (rc) {
		sm_filter_free(f);
		return rc;
	}
	*out = f;
	return SL_OK;
}

static sl_err
parse_binary(struct sm_pparse *pp, struct sm_filter **out, bool is_or)
{
	sl_err rc;
	struct sm_filter *left = NULL;
	const char *tok = is_or ? "||" : "&&";
	rc = is_or ? parse_binary(pp, &left, false) : parse_unary(pp, &left);
	if (rc)
		return rc;
	for (;;) {
		fskip(pp);
		if (strncmp(pp->text + pp->pos, tok, 2) != 0)
			break;
		pp->pos += 2;
		struct sm_filter *node;
		if ((rc = new_node(is_or ? SM_F_OR : SM_F_AND, &node))) {
			sm_filter_free(left);
			return rc;
		}
		node->a = left;
		left = node;
		rc = is_or ? parse_binary(pp, &node->b, false) : parse_unary(pp, &node->b);
		if (rc) {
			sm_filter_free(left);
			return rc;
		}
	}
	*out = left;
	return SL_OK;
}

static sl_err
parse_or(struct sm_pparse *pp, struct sm_filter **out)
{
	return parse_binary(pp, out, true);
}

sl_err
sm_filter_parse(struct sm_pparse *pp, struct sm_filter **out)
{
	/* called just after "[?"; the expression is normally parenthesised */
	bool saved_in = pp->in_filter;
	pp->in_filter = true;
	sl_err rc = parse_or(pp, out);
	pp->in_filter = saved_in;
	return rc;
}

/* ---- evaluation ------------------------------------------------------------------------- */

static sl_err
operand_value(const struct sm_operand *o, json_t *root, json_t *node, json_t **v)
{
	struct sm_nodes res = { 0 };
	bool missing;
	sl_err rc;
	*v = NULL;
	if (o->kind == SM_O_LIT) {
		*v = o->lit;
		return SL_OK;
	}
	rc = sm_segs_eval(o->segs, o->n, root, o->kind == SM_O_REL ? node : root, &res, &missing,
	                  NULL);
	if (rc)
		return rc;
	if (res.n == 1)
		*v = res.v[0];
	sm_nodes_free(&res);
	return SL_OK;
}

static bool
compare(enum sm_fop op, json_t *a, json_t *b)
{
	if (!a || !b)
		return false;
	if (json_is_number(a) && json_is_number(b)) {
		int c;
		if (json_is_integer(a) && json_is_integer(b)) {
			json_int_t x = json_integer_value(a), y = json_integer_value(b);
			c = x < y ? -1 : x > y;
		} else {
			double x = json_number_value(a), y = json_number_value(b);
			c = x < y ? -1 : x > y;
		}
		switch (op) {
		case SM_OP_EQ: return c == 0;
		case SM_OP_NE: return c != 0;
		case SM_OP_LT: return c < 0;
		case SM_OP_LE: return c <= 0;
		case SM_OP_GT: return c > 0;
		case SM_OP_GE: return c >= 0;
		}
	}
	if (json_is_string(a) && json_is_string(b)) {
		int c = strcmp(json_string_value(a), json_string_value(b));
		switch (op) {
		case SM_OP_EQ: return c == 0;
		case SM_OP_NE: return c != 0;
		case SM_OP_LT: return c < 0;
		case SM_OP_LE: return c <= 0;
		case SM_OP_GT: return c > 0;
		case SM_OP_GE: return c >= 0;
		}
	}
	if (op == SM_OP_EQ)
		return json_equal(a, b);
	if (op == SM_OP_NE)
		return !json_equal(a, b);
	return false;
}

sl_err
sm_filter_match(const struct sm_filter *f, json_t *root, json_t *node, bool *match)
{
	sl_err rc;
	bool x, y;
	json_t *a, *b;
	switch (f->kind) {
	case SM_F_OR:
	case SM_F_AND:
		if ((rc = sm_filter_match(f->a, root, node, &x)))
			return rc;
		if (f->kind == SM_F_OR ? x : !x) {
			*match = x;
			return SL_OK;
		}
		if ((rc = sm_filter_match(f->b, root, node, &y)))
			return rc;
		*match = y;
		return SL_OK;
	case SM_F_NOT:
		if ((rc = sm_filter_match(f->a, root, node, &x)))
			return rc;
		*match = !x;
		return SL_OK;
	case SM_F_TEST:
		if ((rc = operand_value(&f->l, root, node, &a)))
			return rc;
		/* a path tests existence; a literal tests its own truth */
		*match = f->l.kind == SM_O_LIT ? json_is_true(a) : a != NULL;
		return SL_OK;
	case SM_F_CMP:
		if ((rc = operand_value(&f->l, root, node, &a)))
			return rc;
		if ((rc = operand_value(&f->r, root, node, &b)))
			return rc;
		*match = compare(f->op, a, b);
		return SL_OK;
	}
	*match = false;
	return SL_OK;
}
